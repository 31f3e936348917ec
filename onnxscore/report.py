"""Results as dataclasses of raw integers (frozen, but for the many LayerCost and Rollup rows); units appear only in onnxscore.render."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from fractions import Fraction
import functools
from functools import cached_property
from itertools import compress, repeat
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from onnxscore.netscore import NetScore
from onnxscore.poly import Floor, Poly, evaluate
from onnxscore.options import MEASURES

SCHEMA = "onnxscore.report/1"

OK, ZERO, UNKNOWN, UNSUPPORTED, ERROR = "ok", "zero", "unknown", "unsupported", "error"
SYMBOLIC = "symbolic"  # the cost is a polynomial in named dims (macs_formula, flops_formula)


@functools.lru_cache(maxsize=None)
def not_onnx(op: str) -> bool:
    """``ai.onnx::Op`` names no operator of the ONNX standard (an exporter's own op left in the
    default domain, as tf2onnx leaves ``Erfc``); other domains are not judged."""
    domain, _, op_type = op.rpartition("::")
    if domain != "ai.onnx":
        return False
    import onnx.defs

    return not onnx.defs.has(op_type)


def unsupported_text(ops: Mapping[str, Optional[int]]) -> str:
    """What the ops without a cost rule are ("domain::op" -> node count, or None for no count):
    those ONNX does not have said apart from those onnxscore has no rule for."""
    def listed(head: str, names: List[str]) -> List[str]:
        return [head + ", ".join(op if ops[op] is None else f"{op} ({ops[op]})" for op in names)] if names else []
    foreign = sorted(op for op in ops if not_onnx(op))
    missing = sorted(op for op in ops if not not_onnx(op))
    return "; ".join(listed("not ONNX operators (an exporter left them unconverted): ", foreign)
                     + listed("no cost rule for ", missing))


@dataclass
class LayerCost:
    """One ONNX node: its shapes and what it costs. ``macs``/``flops`` are None when unknown.
    Read-only by convention but not frozen: a frozen dataclass takes four times as long to
    make, and a 200,000-node model makes 200,000 of these.

    ``parent`` names the If/Loop/Scan node whose subgraph holds this node; such nodes are
    listed for detail and their cost is already inside the parent's (per iteration for loops).
    """

    # (the walker makes these with positional arguments: a new field goes at the end)
    name: str
    op_type: str
    domain: str
    input_shapes: Tuple
    output_shapes: Tuple
    params: int
    macs: Optional[int]
    flops: Optional[int]
    status: str
    note: str = ""
    parent: Optional[str] = None
    weights: Tuple[str, ...] = ()
    scope: str = ""  # module path, "/"-separated ("layer1/layer1.0/conv1"); "" when flat
    macs_formula: Any = None  # a Poly in the named dims when the status is "symbolic"
    flops_formula: Any = None
    input_bytes: Optional[int] = None  # activations read (constant inputs excluded)
    activation_bytes: Optional[int] = None  # outputs written
    weight_bytes: int = 0  # constants this layer is the first to read
    attr_params: int = 0  # of params, the fitted numbers held in node attributes (ai.onnx.ml)
    trees: int = 0  # a tree ensemble's own measure (not parameters): trees, nodes, leaves
    tree_nodes: int = 0
    tree_leaves: int = 0
    # derived when made (fields, so that JSON encoders write them with the rest):
    memory: Optional[int] = field(init=False, default=None)  # bytes moved: activations read and
    # written plus weights read
    intensity: Optional[float] = field(init=False, default=None)  # arithmetic intensity: FLOPs per
    # byte moved (low means memory-bound)

    def __post_init__(self) -> None:
        if self.input_bytes is not None and self.activation_bytes is not None:
            moved = self.input_bytes + self.activation_bytes + self.weight_bytes
            self.memory = moved
            if self.flops is not None and moved:
                self.intensity = self.flops / moved


@dataclass
class Rollup:
    """Layers grouped by a key (a scope path or an op type), raw sums. Read-only by convention
    but not frozen, as :class:`LayerCost`: a 200,000-layer model can have 40,000 blocks, and a
    frozen dataclass takes five times as long to make.

    ``unknown`` counts the layers whose MACs/FLOPs are unknown (their cost is not in the sums).
    ``pattern`` and ``repeats`` mark a block that has identical siblings: ``layers.N`` x 24.
    """

    key: str
    count: int
    params: int
    macs: int
    flops: int
    activation_bytes: Optional[int]  # None when a layer's output size is unknown
    weight_bytes: int
    unknown: int = 0
    pattern: str = ""
    repeats: int = 1
    macs_formula: Any = None  # the group's MACs as a Poly when some of its layers are symbolic
    flops_formula: Any = None  # and its FLOPs


@dataclass(frozen=True)
class Hotspot:
    """One of the top-k layers: ``value`` by the chosen measure, its share of the total, and the
    running share of the layers ranked above it and itself.

    When costs are polynomials in symbolic dims and no values were given, ``value`` is the
    polynomial (ranked by :func:`growth`) and ``share``/``cumulative`` are None: a share of a
    polynomial total depends on the dims."""

    layer: "LayerCost"
    value: Any  # an int; a Poly when ranked by growth
    share: Optional[float]
    cumulative: Optional[float]


@dataclass(frozen=True)
class Totals:
    """Whole-model figures. ``complete`` is False when some cost is unknown or unsupported,
    so ``macs``/``flops`` are lower bounds."""

    params: int
    buffers: int
    macs: int
    flops: int
    weight_bytes: int
    weight_bytes_by_dtype: Dict[str, int] = field(default_factory=dict)
    quant_overhead: int = 0
    complete: bool = True
    params_complete: bool = True
    peak_activation_bytes: Optional[int] = None  # most activation bytes alive at once, graph order
    macs_formula: Any = None  # the whole model as a Poly in the named dims, when that is exact
    flops_formula: Any = None
    attr_params: int = 0  # of params, the fitted numbers held in node attributes (ai.onnx.ml)
    trees: int = 0  # tree ensembles' own measure (not parameters): trees, nodes, leaves
    tree_nodes: int = 0
    tree_leaves: int = 0


@dataclass(frozen=True)
class UnknownCause:
    """One place where shapes were lost, and the layers whose cost is unknown because of it.

    ``node`` is the first node whose output shape could not be derived, ``op`` its op type
    (``input`` for a graph input with an unknown dim), ``why`` the reason in words, ``layers``
    the layers left unknown, ``chain`` the tensors from the first such layer back to ``node``.
    """

    node: str
    op: str
    why: str
    layers: Tuple[str, ...]
    chain: Tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelInfo:
    path: str
    opset: int
    producer: str
    producer_version: str
    ir_version: int
    inputs: Dict[str, Tuple]  # name -> shape as analysed (ints, or names left symbolic)
    opsets: Dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """Everything :func:`onnxscore.analyze` found out about one model."""

    model: ModelInfo
    totals: Totals
    netscore: NetScore
    layers: Tuple[LayerCost, ...]
    unresolved_dims: Dict[str, Tuple[str, ...]]  # dimension -> layers it leaves unknown
    unsupported_ops: Dict[str, int]  # "domain::op" -> node count
    shared_weights: Dict[str, Tuple[str, ...]]  # tensor -> the layers that use it
    notes: Tuple[str, ...] = ()
    warnings: Tuple[str, ...] = ()
    kv_cache: Any = None  # onnxscore.kvcache.KVCache for decoders with past key/value inputs
    unknown_causes: Tuple[UnknownCause, ...] = ()  # where shapes were lost, most layers first
    data_dims: Dict[str, str] = field(default_factory=dict)  # data-dependent dim -> what it counts

    @cached_property
    def top_layers(self) -> Tuple[LayerCost, ...]:
        """Top-level layers (not inside a subgraph): these add up to the totals."""
        if all(layer.parent is None for layer in self.layers):
            return self.layers
        return tuple(layer for layer in self.layers if layer.parent is None)

    def top_k(self, k: int = 10, by: str = "macs") -> Tuple[LayerCost, ...]:
        """The ``k`` top-level layers with the largest ``by`` (see :data:`MEASURES`)."""
        return tuple(h.layer for h in self.hotspots(k, by))

    def hotspots(self, k: int = 10, by: str = "macs", at: Optional[Mapping[str, int]] = None,
                 numbers: bool = False) -> Tuple[Hotspot, ...]:
        """The ``k`` costliest top-level layers by ``by``, with share and cumulative share of
        the model total of that measure (layers of unknown or zero cost are not ranked).

        Polynomial costs (symbolic dims) are ranked by their value ``at`` the given dim values
        when these cover every dim they hold, else by :func:`growth` (the leading term), their
        value the polynomial and their shares None. With ``numbers``, only the layers whose
        cost is a number are ranked, with shares of their sum (a chart's bars)."""
        if by not in MEASURES:
            raise ValueError(f"unknown measure {by!r}; choose one of {', '.join(MEASURES)}")
        key = ("hotspots", k, by, tuple(sorted(at.items())) if at is not None else None, numbers)
        hot = self._rollups.get(key)
        if hot is None:  # (one rendering ranks the same layers for its table, columns and charts)
            hot = self._rollups[key] = self._hotspots(k, by, at, numbers)
        return hot

    def _hotspots(self, k: int, by: str, at: Optional[Mapping[str, int]], numbers: bool) -> Tuple[Hotspot, ...]:
        values = [(layer, measure(layer, by) if numbers else cost(layer, by)) for layer in self.top_layers]
        formulas = [v for _, v in values if isinstance(v, Poly)]
        if formulas and at is not None and all(set(f.symbols) <= set(at) for f in formulas):
            values = [(layer, None if v is None else evaluate(v, at)) for layer, v in values]
        elif formulas:
            ranked = sorted(((layer, v) for layer, v in values if v), key=lambda lv: growth(lv[1]),
                            reverse=True)
            return tuple(Hotspot(layer, v, None, None) for layer, v in ranked[:k])
        total = sum(v for _, v in values if v)
        ranked = sorted(((layer, v) for layer, v in values if v), key=lambda lv: lv[1], reverse=True)
        out, running = [], 0
        for layer, v in ranked[:k]:
            running += v
            out.append(Hotspot(layer, v, v / total, running / total))
        return tuple(out)

    def by_op_type(self) -> Tuple[Rollup, ...]:
        """Count, params, MACs, FLOPs and bytes per op type, costliest first."""
        rows = self._rollups.get("op_type")
        if rows is None:
            table = self._table
            rows = self._rollups["op_type"] = _rollup(table, table.op_types, table.op_type_of)
        return rows

    def by_scope(self, depth: int = 1) -> Tuple[Rollup, ...]:
        """Top-level layers grouped by the first ``depth`` parts of their scope, in graph order;
        the rows sum exactly to the totals. Identical sibling blocks (same op sequence and cost)
        share a ``pattern`` such as ``layers.N`` and know how many ``repeats`` there are."""
        rows = self._rollups.get(depth)
        if rows is None:
            table = self._table
            blocks, block_of = _numbered([scope_key(scope, depth) for scope in table.scopes])
            rows = self._rollups[depth] = _rollup(table, blocks, block_of[table.scope_of], blocks=True)
        return rows

    @cached_property
    def _table(self) -> "_Table":
        return _Table(self.layers)

    @cached_property
    def _rollups(self) -> Dict[Any, Tuple[Rollup, ...]]:
        """The roll-ups made so far ("op_type", the scope depth, or a ranking's arguments): one
        rendering asks for them several times (the JSON, the tables and the HTML report of one
        command)."""
        return {}

    def to_dict(self, depth: int = 1, objects: bool = False) -> dict:
        """The JSON form (schema ``onnxscore.report/1``), raw integers throughout. With
        ``objects`` the layers and roll-up rows stay dataclasses (polynomials unconverted), for
        an encoder that writes dataclasses itself (see :func:`onnxscore.render.tables.to_json`)."""
        def rows(items) -> list:
            return list(items) if objects else [_formulas_as_text(asdict(x)) for x in items]

        ns = asdict(self.netscore)
        return {
            "schema": SCHEMA,
            "model": asdict(self.model),
            "totals": _formulas_as_text(asdict(self.totals)),
            "netscore": {k: ns[k] for k in ("value", "accuracy", "alpha", "beta", "gamma",
                                            "info_density", "missing", "units")},
            "layers": rows(self.layers),
            "by_op_type": rows(self.by_op_type()),
            "by_scope": {"depth": depth, "rows": rows(self.by_scope(depth))},
            "unresolved_dims": {k: list(v) for k, v in self.unresolved_dims.items()},
            "unknown_causes": [asdict(c) for c in self.unknown_causes],
            "data_dims": dict(self.data_dims),
            "unsupported_ops": dict(self.unsupported_ops),
            "shared_weights": {k: list(v) for k, v in self.shared_weights.items()},
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "kv_cache": None if self.kv_cache is None else dict(asdict(self.kv_cache),
                                                                description=self.kv_cache.describe()),
        }


def _formulas_as_text(d: dict) -> dict:
    """Polynomials as strings (``98304*seq**2 + 1310885888*seq``) for JSON."""
    for key in ("macs_formula", "flops_formula"):
        if d.get(key) is not None:
            d[key] = str(d[key])
    return d


TOP = "(top)"  # the key of layers that sit at the top of the scope tree


def measure(layer: LayerCost, by: str) -> int:
    """A layer's value for a ranking measure; unknown counts as 0 (it is flagged elsewhere)."""
    if by == "memory":
        return layer.memory or 0
    return getattr(layer, by) or 0


def cost(layer: LayerCost, by: str):
    """A layer's exact value for a ranking measure: an int, the Poly when its dims are symbolic
    (``macs_formula``, ``flops_formula``), None when unknown."""
    if by == "memory":
        return layer.memory
    value = getattr(layer, by)
    return getattr(layer, f"{by}_formula", None) if value is None else value


def _lead(name) -> Tuple[int, Fraction]:
    """Degree and leading coefficient of one factor: a dim name is ``n``; ``floor(q / k)``
    grows as ``q / k``."""
    if not isinstance(name, Floor):
        return 1, Fraction(1)
    degree, coefficients = growth(name.num)
    return degree, Fraction(coefficients[0]) / name.den


def growth(x) -> Tuple[int, Tuple]:
    """How fast a cost grows when every symbolic dim grows alike (all = n, n large): the total
    degree of its leading term, then the coefficients of ``n**degree``, ``n**(degree - 1)``, ...
    down to the constant. Sorting by it ranks ``256*seq*total`` above ``32768*seq`` above
    ``25600*seq + 51200`` above any int."""
    if not isinstance(x, Poly):
        return 0, (x,)
    by_degree: Dict[int, Fraction] = {}
    for mono, c in x.terms.items():
        degree, coefficient = 0, Fraction(c)
        for name, p in mono:
            d, lead = _lead(name)
            degree, coefficient = degree + d * p, coefficient * lead ** p
        by_degree[degree] = by_degree.get(degree, 0) + coefficient
    top = max(by_degree)
    return top, tuple(by_degree.get(d, 0) for d in range(top, -1, -1))


def leading_term(x):
    """The terms of ``x`` of the highest total degree (``512*seq*total`` of
    ``512*seq*total + 284672*seq``); an int as it is."""
    if not isinstance(x, Poly):
        return x
    degree = {m: sum(p * _lead(name)[0] for name, p in m) for m in x.terms}
    top = max(degree.values())
    return Poly.simplify(Poly({m: c for m, c in x.terms.items() if degree[m] == top}))


def scope_key(scope: str, depth: int) -> str:
    """The first ``depth`` parts of a ``/``-separated scope; ``(top)`` for unscoped layers."""
    parts = scope.split("/", depth)[:depth]
    if "" in parts:  # a leading, trailing or doubled slash, or no scope: the parts that are not empty
        parts = [p for p in scope.split("/") if p][:depth]
    return "/".join(parts) if parts else TOP


def scope_keys(depth: int) -> Callable[[str], str]:
    """:func:`scope_key` at ``depth``, worked out once per scope (many layers share one)."""
    return functools.lru_cache(maxsize=None)(functools.partial(scope_key, depth=depth))


class _Table:
    """The top-level layers of ``layers`` as roll-ups read them, made once for all the roll-ups
    of a report: reading 200,000 layer objects is most of a roll-up's time. A column per field:
    numbers as numpy arrays that sum exactly (:func:`_summable`), unknown (None) as 0
    (``no_macs``, ``no_act`` say which); each layer's scope and op type as its number among the
    distinct ones (``scopes``, ``op_types``)."""

    def __init__(self, layers: Sequence[LayerCost]) -> None:
        import numpy as np  # (loaded with onnx, as every analysed model was)

        columns = _read(layers)
        parent = columns.pop()
        if parent.count(None) < len(parent):  # some layers are inside a subgraph (see top_layers)
            top = [p is None for p in parent]
            columns, layers = [list(compress(c, top)) for c in columns], tuple(compress(layers, top))
        scope, op_type, status, params, macs, flops, act, weight, self.macs_formula, self.flops_formula = columns
        self.layers = layers
        self.scopes, self.scope_of = _numbered(scope)
        self.op_types, self.op_type_of = _numbered(op_type)
        self.params, self.weight_bytes = _summable(params), _summable(weight)
        self.no_macs, self.macs = _known(macs)
        self.no_act, self.activation_bytes = _known(act)
        self.flops = _known(flops)[1]
        self.working = np.array(status, dtype=object) != ZERO
        self.symbolic = _held(self.macs_formula, self.flops_formula)  # the layers holding a polynomial
        weighted = ((self.params != 0) | (self.macs != 0)).tolist()  # the layers with weights or MACs
        for i in self.symbolic:
            weighted[i] = weighted[i] or self.macs_formula[i] is not None
        self.weighted = np.array(weighted, dtype=bool)
        self.weighted_ops = list(compress(op_type, weighted))


def _read(layers: Sequence[LayerCost]) -> List[list]:
    """The fields of ``layers`` that roll-ups read, a list each, in one loop of appends (a
    third faster than a list of tuples transposed by zip): scope, op type, status, params,
    MACs, FLOPs, activation bytes, weight bytes, MACs and FLOPs formulas, parent."""
    columns: List[list] = [[] for _ in range(11)]
    scope, op_type, status, params, macs, flops, act, weight, macs_formula, flops_formula, parent = (
        c.append for c in columns)
    for x in layers:
        scope(x.scope)
        op_type(x.op_type)
        status(x.status)
        params(x.params)
        macs(x.macs)
        flops(x.flops)
        act(x.activation_bytes)
        weight(x.weight_bytes)
        macs_formula(x.macs_formula)
        flops_formula(x.flops_formula)
        parent(x.parent)
    return columns


def _held(*columns: Sequence[Any]) -> List[int]:
    """The positions at which some of ``columns`` holds a value (not None); when none does,
    found out by a scan in C."""
    if all(c.count(None) == len(c) for c in columns):
        return []
    return [i for i, values in enumerate(zip(*columns)) if any(v is not None for v in values)]


def _numbered(keys: Sequence[str]) -> Tuple[List[str], Any]:
    """The distinct ``keys`` in the order first met, and the number of each key among them
    (a numpy array)."""
    import numpy as np

    distinct = list(dict.fromkeys(keys))
    number = dict(zip(distinct, range(len(distinct))))
    return distinct, np.fromiter(map(number.__getitem__, keys), np.intp, len(keys))


def _summable(values: Sequence[int]):
    """``values`` as a numpy array whose sums are exact: int64 when no sum of them can
    overflow it, else Python ints (an object array: absurd dims make counts beyond 64 bits)."""
    import numpy as np

    array = np.array(values)  # int64 when every value is an int that fits in one (none: float64)
    if array.dtype == np.int64 and max(int(array.max()), -int(array.min())) * len(array) < 2**63:
        return array
    return np.array(values, dtype=object)


def _known(values: Sequence[Optional[int]]):
    """Which of ``values`` are None (unknown), and ``values`` with None as 0 (:func:`_summable`)."""
    import numpy as np

    if None not in values:
        return np.zeros(len(values), dtype=bool), _summable(values)
    unknown = [v is None for v in values]
    return np.array(unknown, dtype=bool), _summable([0 if u else v for v, u in zip(values, unknown)])


def _rollup(table: _Table, names: List[str], row_of, blocks: bool = False) -> Tuple[Rollup, ...]:
    """Sum the layers of ``table`` into a row per name (``row_of``: each layer's), costliest
    first (polynomial MACs by :func:`growth`), or (``blocks``) in the order of each row's first
    layer that does any work (weight-making nodes come early in some graphs), then the rest as
    met, with the repeated blocks marked (:func:`_repeats`)."""
    import numpy as np

    def total(values) -> list:
        out = np.zeros(len(names), dtype=values.dtype)
        np.add.at(out, row_of, values)
        return out.tolist()

    def count(flags=None) -> list:
        return np.bincount(row_of if flags is None else row_of[flags], minlength=len(names)).tolist()

    params, macs, flops, weight = (total(c) for c in (table.params, table.macs, table.flops, table.weight_bytes))
    act = [None if unknown else s for s, unknown in zip(total(table.activation_bytes), count(table.no_act))]
    macs_formula, flops_formula = _formula_sums(table, row_of, len(names))
    if not blocks:
        rows = map(Rollup, names, count(), params, macs, flops, act, weight, count(table.no_macs), repeat(""),
                   repeat(1), macs_formula, flops_formula)
        return tuple(sorted(rows, key=lambda r: (growth(r.macs if r.macs_formula is None else r.macs_formula),
                                                 r.flops, r.params), reverse=True))
    sequences: List[List[str]] = [[] for _ in names]  # the op types of each row's weighted layers
    for r, op in zip(row_of[table.weighted].tolist(), table.weighted_ops):
        sequences[r].append(op)
    patterns, repeats = _repeats(names, sequences, params, macs, macs_formula)
    rows = list(map(Rollup, names, count(), params, macs, flops, act, weight, count(table.no_macs), patterns,
                    repeats, macs_formula, flops_formula))
    first = np.full(len(names), len(row_of))  # each row's first working layer (none: after the last)
    np.minimum.at(first, row_of[table.working], np.flatnonzero(table.working))
    return tuple(rows[r] for r in np.argsort(first, kind="stable").tolist())


def _formula_sums(table: _Table, row_of, n: int) -> Tuple[list, list]:
    """Each of the ``n`` rows' MACs and FLOPs as a polynomial (:func:`_formula_sum`) when some of
    its layers hold one (``row_of``: each layer's row), else None."""
    macs: list = [None] * n
    flops: list = [None] * n
    if table.symbolic:
        rows = row_of.tolist()
        held: Dict[int, list] = {rows[i]: [] for i in table.symbolic}  # the layers of those rows
        for r, layer in zip(rows, table.layers):
            if r in held:
                held[r].append(layer)
        for r, layers in held.items():
            macs[r], flops[r] = _formula_sum(layers), _formula_sum(layers, "flops")
    return macs, flops


def _formula_sum(layers, by: str = "macs"):
    """Exact MACs (or FLOPs) of ``layers`` as a Poly when some are symbolic and none is unknown."""
    formula = by + "_formula"
    if not any(getattr(x, formula) is not None for x in layers):
        return None
    if any(getattr(x, by) is None and getattr(x, formula) is None and x.status != ZERO for x in layers):
        return None
    total = sum((getattr(x, formula) if getattr(x, by) is None else getattr(x, by))
                for x in layers if x.status != ZERO)
    return total if isinstance(total, Poly) else None


_TRAILING_INDEX = re.compile(r"\d+$")


def _repeats(keys: Sequence[str], sequences: Sequence[Sequence[str]], params: Sequence[int],
             macs: Sequence[int], formulas: Sequence[Any]) -> Tuple[List[str], List[int]]:
    """Each block's ``pattern`` and number of ``repeats`` (``""`` and 1 if it has no twin).
    Sibling blocks are the same block repeated when their names differ only in a trailing number
    (``h/layers.3``: ``h/layers.N``) and they have the same sequence of layers with weights or
    MACs (``sequences``: each block's op types) and the same parameters and MACs (a pooling or
    activation attached at a block's edge may differ)."""
    patterns = list(map(_TRAILING_INDEX.sub, repeat("N"), keys))  # (a key's last part holds its number)
    signatures = list(zip(patterns, map(tuple, sequences), params, macs, map(str, formulas)))
    alike = Counter(signatures)
    repeats = [1 if key == TOP else alike[s] for key, s in zip(keys, signatures)]
    return [p if n > 1 else "" for p, n in zip(patterns, repeats)], repeats
