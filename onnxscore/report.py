"""Results as dataclasses of raw integers (frozen, but for the many LayerCost rows); units appear only in onnxscore.render."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from fractions import Fraction
import functools
from functools import cached_property
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from onnxscore.netscore import NetScore
from onnxscore.poly import Floor, Poly, evaluate

SCHEMA = "onnxscore.report/1"

OK, ZERO, UNKNOWN, UNSUPPORTED, ERROR = "ok", "zero", "unknown", "unsupported", "error"
SYMBOLIC = "symbolic"  # the cost is a polynomial in named dims (macs_formula, flops_formula)


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


@dataclass(frozen=True)
class Rollup:
    """Layers grouped by a key (a scope path or an op type), raw sums.

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
        return _rollup(self.top_layers, lambda layer: layer.op_type)

    def by_scope(self, depth: int = 1) -> Tuple[Rollup, ...]:
        """Top-level layers grouped by the first ``depth`` parts of their scope, in graph order;
        the rows sum exactly to the totals. Identical sibling blocks (same op sequence and cost)
        share a ``pattern`` such as ``layers.N`` and know how many ``repeats`` there are."""
        key = scope_keys(depth)
        rows = _rollup(self.top_layers, lambda layer: key(layer.scope), ordered=True)
        return _mark_repeats(rows, self.top_layers, key)

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
MEASURES = ("macs", "flops", "params", "memory")


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
    parts = [p for p in scope.split("/") if p]
    return "/".join(parts[:depth]) if parts else TOP


def scope_keys(depth: int) -> Callable[[str], str]:
    """:func:`scope_key` at ``depth``, worked out once per scope (many layers share one)."""
    return functools.lru_cache(maxsize=None)(functools.partial(scope_key, depth=depth))


def _rollup(layers, key, ordered: bool = False) -> Tuple[Rollup, ...]:
    """Sum ``layers`` by ``key``: costliest first (polynomial MACs by :func:`growth`), or
    (``ordered``) in the order of each group's first layer that does any work (weight-making
    nodes come early in some graphs). One pass over the layers."""
    groups: Dict[str, list] = {}  # key -> [layers, params, macs, flops, act. bytes, weight bytes,
    #                                        unknown, holds a formula, first working layer]
    for i, layer in enumerate(layers):
        k = key(layer)
        g = groups.get(k)
        if g is None:
            g = groups[k] = [[], 0, 0, 0, 0, 0, 0, False, None]
        g[0].append(layer)
        g[1] += layer.params
        if layer.macs is None:
            g[6] += 1
        else:
            g[2] += layer.macs
        g[3] += layer.flops or 0
        if layer.activation_bytes is None or g[4] is None:  # unknown, not zero
            g[4] = None
        else:
            g[4] += layer.activation_bytes
        g[5] += layer.weight_bytes
        if layer.macs_formula is not None or layer.flops_formula is not None:
            g[7] = True
        if g[8] is None and layer.status != ZERO:
            g[8] = i
    items = groups.items()
    if ordered:  # groups doing work by their first working layer, then the rest as met
        items = sorted(items, key=lambda kg: (kg[1][8] is None, kg[1][8] or 0))
    rows = [Rollup(key=k, count=len(g[0]), params=g[1], macs=g[2], flops=g[3], activation_bytes=g[4],
                   weight_bytes=g[5], unknown=g[6],
                   macs_formula=_formula_sum(g[0]) if g[7] else None,
                   flops_formula=_formula_sum(g[0], "flops") if g[7] else None)
            for k, g in items]
    return tuple(rows) if ordered else tuple(sorted(
        rows, key=lambda r: (growth(r.macs if r.macs_formula is None else r.macs_formula), r.flops, r.params),
        reverse=True))


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


def _mark_repeats(rows: Tuple[Rollup, ...], layers, key: Callable[[str], str]) -> Tuple[Rollup, ...]:
    """Mark sibling blocks that are the same block repeated: their names differ only in a
    trailing number, and they have the same sequence of layers with weights or MACs and the
    same parameters and MACs (a pooling or activation attached at a block's edge may differ).
    ``key`` gives a scope its row's key."""
    ops: Dict[str, list] = {}
    for layer in layers:
        if layer.params or layer.macs or layer.macs_formula is not None:
            ops.setdefault(key(layer.scope), []).append(layer.op_type)
    signature = {r.key: (tuple(ops.get(r.key, ())), r.params, r.macs, str(r.macs_formula)) for r in rows}
    groups: Dict[tuple, list] = {}
    for r in rows:
        if r.key == TOP:
            continue
        parent, _, last = r.key.rpartition("/")
        pattern = "/".join(filter(None, [parent, _TRAILING_INDEX.sub("N", last)]))
        groups.setdefault((pattern, signature[r.key]), []).append(r.key)
    marks = {k: (pattern, len(keys)) for (pattern, _), keys in groups.items() if len(keys) > 1
             for k in keys}
    for r in rows:  # rows made just now by _rollup, seen by no one yet: set in place
        mark = marks.get(r.key)
        if mark is not None:
            object.__setattr__(r, "pattern", mark[0])
            object.__setattr__(r, "repeats", mark[1])
    return rows
