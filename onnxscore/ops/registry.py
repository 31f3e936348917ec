"""The registry of cost rules, keyed by the exact ``(domain, op_type)``.

Counting convention (the one place it is stated in code; the README repeats it):

* One **MAC** is one multiply-add. ``macs`` counts only the multiply-adds of the
  contractions: Conv (1-D to 3-D, any groups, dilation, strides, pads), ConvTranspose
  (``N * Cin * prod(input spatial) * Cout/group * prod(kernel)``, never doubled), Gemm and
  MatMul (batched and broadcast, 1-D operands), Einsum (any contraction), Attention
  (``Q*K^T`` and ``P*V``), LSTM/GRU/RNN (every gate, direction and time step) and their
  quantized twins. Bias additions, activations and normalisations are never MACs.
* ``flops = 2 * macs + the arithmetic of every other op`` (bias, elementwise, normalisation,
  pooling, softmax, reductions, resize). Per-element constants are named in the module that
  uses them, with the reasoning next to them.
* Ops that move or reshape data without arithmetic (Reshape, Transpose, Gather, Concat, ...)
  are declared zero-cost explicitly; an op with no declaration at all is *unsupported*, which
  is never the same as zero.

A rule is a pure function of a :class:`Ctx` (shapes, dtypes and attributes of one node)
returning a :class:`Cost`. It also declares the *role* of each input, which is what the walker
uses to count parameters: ``WEIGHT`` inputs count when they come from a constant, ``DATA``
inputs count when constant, floating point and not a scalar, ``BUFFER`` inputs are reported
apart (BatchNormalization's running statistics), ``QUANT`` inputs are quantisation overhead
(scales, zero points) and ``CONTROL`` inputs (shapes, axes, indices, pads) never count.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from onnxscore.poly import Poly

WEIGHT = "weight"
DATA = "data"
BUFFER = "buffer"
QUANT = "quant"
CONTROL = "control"
ROLES = (WEIGHT, DATA, BUFFER, QUANT, CONTROL)

DEFAULT_DOMAIN = ""
ML_DOMAIN = "ai.onnx.ml"

Dim = Any  # int, a symbolic name (str), or None when nothing is known
Shape = Optional[Tuple[Dim, ...]]


def normalize_domain(domain: str) -> str:
    """ONNX spells the default domain both ``""`` and ``"ai.onnx"``."""
    return DEFAULT_DOMAIN if domain in ("", "ai.onnx") else domain


class UnknownShape(Exception):
    """A rule needed a dimension that is not known; ``dims`` names what is missing."""

    def __init__(self, dims: Sequence[str], tensor: str = ""):
        self.dims = tuple(dims)
        self.tensor = tensor
        super().__init__(f"unresolved dimension(s) {', '.join(self.dims)} in {tensor!r}")


class InvalidNode(ValueError):
    """The node itself is malformed (attributes or shapes that contradict its op's contract);
    the message says what is wrong, in words, for the report."""


@dataclass(frozen=True)
class Cost:
    """The cost of one node: raw integer MACs and FLOPs."""

    macs: int = 0
    flops: int = 0

    @classmethod
    def of_macs(cls, macs: int, extra_flops: int = 0) -> "Cost":
        """A contraction of ``macs`` multiply-adds (2 FLOPs each) plus ``extra_flops``."""
        return cls(_whole(macs), 2 * _whole(macs) + _whole(extra_flops))

    @classmethod
    def of_flops(cls, flops: int) -> "Cost":
        return cls(0, _whole(flops))

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.macs + other.macs, self.flops + other.flops)

    def __mul__(self, k: int) -> "Cost":
        return Cost(self.macs * _whole(k), self.flops * _whole(k))

    __rmul__ = __mul__


ZERO = Cost()


def _whole(x):
    """An int, or a polynomial when dims are symbolic."""
    return x if isinstance(x, Poly) else int(x)


class Tensor(NamedTuple):
    """What a rule may know about one input or output tensor (a named tuple: the walker
    makes one per input and output of every node)."""

    name: str
    shape: Shape = None
    dtype: int = 0
    value: Optional[np.ndarray] = None  # only for small constants stored inline


def numel(shape: Sequence[int]) -> int:
    """Number of elements of a shape (1 for a scalar); a polynomial when a dim is symbolic."""
    n = math.prod(shape)
    return n if isinstance(n, Poly) else int(n)


def is_named(d) -> bool:
    """A dimension name a user can set with --dim (ONNX's own ``unk__N`` names are not, nor
    the ``?`` and ``shape of X`` that :func:`concrete` reports for what nothing names)."""
    return isinstance(d, str) and bool(d) and not d.startswith("unk__") and d != "?" and " " not in d


def concrete(shape: Shape, tensor: str = "", symbolic: bool = False) -> Tuple[int, ...]:
    """``shape`` as ints, or :class:`UnknownShape` naming the symbolic dimensions; with
    ``symbolic``, named dimensions become :class:`~onnxscore.poly.Poly` symbols instead."""
    if shape is None:
        raise UnknownShape([f"shape of {tensor}"], tensor)
    if not symbolic:
        for d in shape:
            if d.__class__ is not int:
                break
        else:  # the common case: every dim a plain int
            return shape if shape.__class__ is tuple else tuple(shape)
    if symbolic:
        missing = [str(d) if isinstance(d, str) else "?" for d in shape
                   if not isinstance(d, (int, Poly)) and not is_named(d)]
        if missing:
            raise UnknownShape(missing, tensor)
        return tuple(Poly.symbol(d) if isinstance(d, str) else d for d in shape)
    missing = [n for d in shape if not isinstance(d, int)
               for n in (d.symbols if isinstance(d, Poly) else [str(d) if isinstance(d, str) else "?"])]
    if missing:
        raise UnknownShape(list(dict.fromkeys(missing)), tensor)
    return tuple(int(d) for d in shape)


@dataclass
class Ctx:
    """One node as a rule sees it: attributes, input and output tensors, the opset."""

    name: str
    op_type: str
    domain: str
    attrs: Mapping[str, Any]
    inputs: Sequence[Optional[Tensor]]
    outputs: Sequence[Optional[Tensor]]
    opset: int = 0
    # Set by the walker for nodes with subgraphs: cost of the named graph attribute, with the
    # shapes its formal inputs take in this call when known (binds their symbolic dims).
    subgraph_cost: Optional[Callable[..., "Cost"]] = field(default=None, repr=False)
    # Set by the walker when it retries a rule with named dims as polynomials (see poly.py).
    symbolic: bool = False
    # Names of the node's graph attributes (If branches, Loop body, FlexAttention modifiers).
    subgraphs: Tuple[str, ...] = ()
    # For an If whose condition the shapes stage computed: (the branch taken, why).
    branch: Optional[Tuple[str, str]] = None
    # The shapes stage's values (name -> small array), made on demand by value().
    values: Optional[Mapping[str, np.ndarray]] = field(default=None, repr=False)
    # A rule may leave a short remark for the report (e.g. which If branch was taken).
    note: str = ""
    # A rule of an op with packed weights sets {input index: logical weight count} (an int4
    # MatMulNBits B of K*N weights is stored as K*N/2 bytes of uint8); the walker counts that.
    logical_params: Dict[int, int] = field(default_factory=dict)
    # A rule of an op that holds fitted numbers in attributes (ai.onnx.ml LinearClassifier
    # coefficients, SVM support vectors) sets how many; the walker adds them to the layer's
    # params and the total. Set before any shape is needed, so it is known when a cost is not.
    attr_params: int = 0
    # Tree ensembles' own measure, set like attr_params (their thresholds and leaf values are
    # not parameters): trees, nodes (branches and leaves) and leaves.
    trees: int = 0
    tree_nodes: int = 0
    tree_leaves: int = 0
    # Set by value(): the cost may depend on an input's value, not only on shapes and
    # attributes (the walker reuses a cost for nodes alike only when it does not).
    read_values: bool = False

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def has_input(self, i: int) -> bool:
        return i < len(self.inputs) and self.inputs[i] is not None

    def has_output(self, i: int) -> bool:
        return i < len(self.outputs) and self.outputs[i] is not None

    def in_shape(self, i: int) -> Tuple[int, ...]:
        """Concrete shape of input ``i``; raises :class:`UnknownShape` if any dim is unknown
        (in the walker's symbolic pass, named dims are polynomials instead)."""
        if not self.has_input(i):
            raise UnknownShape([f"input {i} of {self.name}"], self.name)
        t = self.inputs[i]
        return concrete(t.shape, t.name, self.symbolic)

    def out_shape(self, i: int = 0) -> Tuple[int, ...]:
        """Concrete shape of output ``i``; raises :class:`UnknownShape` if any dim is unknown
        (in the walker's symbolic pass, named dims are polynomials instead)."""
        if not self.has_output(i):
            raise UnknownShape([f"output {i} of {self.name}"], self.name)
        t = self.outputs[i]
        return concrete(t.shape, t.name, self.symbolic)

    def in_numel(self, i: int) -> int:
        return numel(self.in_shape(i))

    def out_numel(self, i: int = 0) -> int:
        return numel(self.out_shape(i))

    def value(self, i: int) -> Optional[np.ndarray]:
        """The value of input ``i`` when it is small and known (an inline constant, or computed
        by the shapes stage from shapes, constants and given values), else None."""
        self.read_values = True
        if not self.has_input(i):
            return None
        t = self.inputs[i]
        if t.value is None and self.values is not None:
            return self.values.get(t.name)
        return t.value


RuleFn = Callable[[Ctx], Cost]


@dataclass(frozen=True)
class Rule:
    """A registered rule: how to cost one ``(domain, op_type)`` and what its inputs are."""

    domain: str
    op_type: str
    kind: str
    fn: RuleFn
    roles: Mapping[int, str]
    zero_cost: bool
    doc: str

    def role(self, index: int) -> str:
        return self.roles.get(index, DATA)


_RULES: Dict[Tuple[str, str], Rule] = {}


def _add(domain: str, op_type: str, kind: str, fn: RuleFn, roles, zero: bool, doc: str) -> None:
    key = (normalize_domain(domain), op_type)
    if key in _RULES:
        raise RuntimeError(f"duplicate cost rule for {key}")
    roles = dict(roles or {})
    bad = {r for r in roles.values() if r not in ROLES}
    if bad:
        raise RuntimeError(f"unknown input role(s) {bad} for {key}")
    _RULES[key] = Rule(key[0], op_type, kind, fn, roles, zero, (doc or "").strip())


def rule(*op_types: str, kind: str, domain: str = DEFAULT_DOMAIN,
         roles: Optional[Mapping[int, str]] = None) -> Callable[[RuleFn], RuleFn]:
    """Register ``fn`` as the cost rule of each of ``op_types``.

    ``roles`` maps input index to one of WEIGHT, DATA, BUFFER, QUANT, CONTROL; an input not
    listed is DATA.
    """

    def decorate(fn: RuleFn) -> RuleFn:
        for op in op_types:
            _add(domain, op, kind, fn, roles, False, fn.__doc__ or "")
        return fn

    return decorate


def _zero(ctx: Ctx) -> Cost:
    return ZERO


def zero_cost(*op_types: str, kind: str, why: str, domain: str = DEFAULT_DOMAIN,
              roles: Optional[Mapping[int, str]] = None) -> None:
    """Declare ops that do no arithmetic (data movement, shape logic, I/O): cost is 0 by rule."""
    for op in op_types:
        _add(domain, op, kind, _zero, roles, True, why)


def lookup(domain: str, op_type: str) -> Optional[Rule]:
    return _RULES.get((normalize_domain(domain), op_type))


def all_rules() -> Tuple[Rule, ...]:
    return tuple(sorted(_RULES.values(), key=lambda r: (r.domain, r.op_type)))
