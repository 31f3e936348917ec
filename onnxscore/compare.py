"""Before/after: two reports side by side, and the layers, blocks and op types that changed.

Layers are matched by name first; the rest by a normalised name (``_quant``, which
onnxruntime's QOperator quantization appends, removed); a name matches only a layer of the same
op or of one of its forms (Conv, QLinearConv, ConvInteger: one op's name holds the other's), in
the same scope when both have one, as generated names (``n15``, ``node_MatMul_3``) say nothing
across models. The rest pair up within the same scope (or both unscoped), in graph order among
the layers of the same op type. What is left unmatched (the Q/DQ nodes a quantizer inserts,
say) is listed apart, and counted in the block and op-type changes.

A cost is an int, a polynomial (:class:`~onnxscore.poly.Poly`) when the model's dims are
symbolic, or unknown: a layer's is None, a total's an :class:`AtLeast`, the lower bound the
known costs make. A delta of polynomials is a polynomial; with an unknown side it is None.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from onnxscore.poly import Poly
from onnxscore.report import ZERO, LayerCost, Report, Rollup, cost, growth

MEASURES = ("params", "macs", "flops", "weight_bytes")
_SUFFIXES = re.compile(r"_quant$")  # onnxruntime's QOperator format renames Conv to Conv_quant


@dataclass(frozen=True)
class AtLeast:
    """A total that is only a lower bound: some layer's cost is unknown."""

    value: int


def delta(va, vb):
    """``vb - va``: an int, a polynomial, or None when a side is unknown or only a bound."""
    if va is None or vb is None or isinstance(va, AtLeast) or isinstance(vb, AtLeast):
        return None
    return vb - va


def magnitude(d) -> Tuple[int, tuple]:
    """How large a delta is, to rank changes: a polynomial above any int, by :func:`growth` of
    its absolute value; unknown as 0."""
    if isinstance(d, Poly):
        degree, coefficients = growth(d)
        sign = -1 if coefficients[0] < 0 else 1
        return degree, tuple(sign * c for c in coefficients)
    return 0, (abs(d or 0),)


@dataclass(frozen=True)
class Change:
    """One row matched across the two models; a side is None when the row exists only in the
    other. ``a`` and ``b`` map each of :data:`MEASURES` to its raw integer, a polynomial for
    MACs and FLOPs in symbolic dims, None if unknown."""

    key: str
    a: Optional[Mapping[str, object]]
    b: Optional[Mapping[str, object]]
    op_a: str = ""
    op_b: str = ""

    def delta(self, measure: str):
        """b - a for ``measure``; a missing side counts as 0, an unknown value gives None."""
        return delta(0 if self.a is None else self.a.get(measure), 0 if self.b is None else self.b.get(measure))

    @property
    def size(self) -> Tuple[Tuple[int, tuple], ...]:
        return tuple(magnitude(self.delta(m)) for m in ("macs", "params", "flops", "weight_bytes"))

    @property
    def changed(self) -> bool:
        return any(self.delta(m) for m in MEASURES)


@dataclass(frozen=True)
class Comparison:
    """Totals of both models and what changed, each list sorted by the size of the change;
    ``layers`` holds matched layers only, the unmatched are ``only_a`` and ``only_b``."""

    a: Report
    b: Report
    totals: Dict[str, Tuple[object, object]]  # measure -> (A, B): see totals_of
    layers: Tuple[Change, ...]
    blocks: Tuple[Change, ...]
    op_types: Tuple[Change, ...]
    only_a: Tuple[str, ...]
    only_b: Tuple[str, ...]
    depth: int = 1

    def to_dict(self, k: Optional[int] = None) -> dict:
        """JSON form (schema ``onnxscore.compare/1``): raw integers, polynomials as strings
        (``64*seq``), null when unknown; a total that is a lower bound has its bound and
        ``a_lower_bound`` / ``b_lower_bound`` true."""
        def rows(changes):
            return [{"key": c.key, "op_a": c.op_a, "op_b": c.op_b, "a": _jsonable(c.a), "b": _jsonable(c.b),
                     "delta": {m: _json_value(c.delta(m)) for m in MEASURES}} for c in changes[:k]]

        def total(va, vb):
            return {"a": _json_value(va), "b": _json_value(vb), "delta": _json_value(delta(va, vb)),
                    "a_lower_bound": isinstance(va, AtLeast), "b_lower_bound": isinstance(vb, AtLeast)}

        return {"schema": "onnxscore.compare/1", "a": self.a.model.path, "b": self.b.model.path,
                "totals": {m: total(va, vb) for m, (va, vb) in self.totals.items()},
                "layers": rows(self.layers), "blocks": {"depth": self.depth, "rows": rows(self.blocks)},
                "op_types": rows(self.op_types), "only_a": list(self.only_a), "only_b": list(self.only_b)}


def _json_value(v):
    if isinstance(v, AtLeast):
        return v.value
    return str(v) if isinstance(v, Poly) else v


def _jsonable(values: Optional[Mapping[str, object]]):
    return None if values is None else {m: _json_value(v) for m, v in values.items()}


def _values(x: LayerCost) -> Dict[str, object]:
    return {"params": x.params, "macs": cost(x, "macs"), "flops": cost(x, "flops"), "weight_bytes": x.weight_bytes}


def _rollup_values(r: Rollup) -> Dict[str, object]:
    """A group's figures: its MACs and FLOPs the polynomial when some layer is symbolic, None
    when some layer's is unknown."""
    macs = r.macs_formula if r.macs_formula is not None else None if r.unknown else r.macs
    flops = r.flops_formula if r.flops_formula is not None else None if r.unknown else r.flops
    return {"params": r.params, "macs": macs, "flops": flops, "weight_bytes": r.weight_bytes}


def totals_of(r: Report) -> Dict[str, object]:
    """A report's totals as :class:`Comparison` holds them: MACs and FLOPs the polynomial when
    its dims are symbolic, else an int, an :class:`AtLeast` when some cost is unknown (and the
    parameters when some count is)."""
    t = r.totals
    out: Dict[str, object] = {"params": t.params if t.params_complete else AtLeast(t.params), "buffers": t.buffers}
    for m in ("macs", "flops"):
        formula = getattr(t, f"{m}_formula")
        out[m] = formula if formula is not None else getattr(t, m) if t.complete else AtLeast(getattr(t, m))
    out["weight_bytes"] = t.weight_bytes
    return out


def _normal(name: str) -> str:
    return _SUFFIXES.sub("", name)


def same_op(a: str, b: str) -> bool:
    """Whether two op types are one computation in two forms: equal, or one's name within the
    other's (Conv in QLinearConv, ConvInteger, FusedConv; MatMul in MatMulNBits, QLinearMatMul)."""
    return a == b or a in b or b in a


def _alike(x: LayerCost, y: LayerCost) -> bool:
    """Whether two layers of one name can be one layer: of one op (:func:`same_op`) and in one
    scope when both have one (torch's dynamo numbers its nodes, ``node_MatMul_21``: a layer
    added before shifts every later number)."""
    return same_op(x.op_type, y.op_type) and (x.scope == y.scope or not x.scope or not y.scope)


def match_layers(a: Sequence[LayerCost], b: Sequence[LayerCost]) -> List[Tuple[Optional[LayerCost], Optional[LayerCost]]]:
    """Pairs of layers: by name, then by normalised name (layers that can be one, see
    :func:`_alike`), then by position among the layers of the same op type within the same
    scope."""
    pairs: List[Tuple[Optional[LayerCost], Optional[LayerCost]]] = []
    left = {x.name: x for x in a}
    right = {x.name: x for x in b}
    for name in list(left):
        y = right.get(name)
        if y is not None and _alike(left[name], y):
            pairs.append((left.pop(name), right.pop(name)))
    normal: Dict[str, str] = {}
    for y in right.values():
        normal.setdefault(_normal(y.name), y.name)
    for name in list(left):
        other = normal.get(_normal(name))
        if other in right and _alike(left[name], right[other]):
            pairs.append((left.pop(name), right.pop(other)))
    scoped_a: Dict[Tuple[str, str], List[LayerCost]] = {}
    scoped_b: Dict[Tuple[str, str], List[LayerCost]] = {}
    for x in left.values():
        if x.status != ZERO:
            scoped_a.setdefault((x.scope, x.op_type), []).append(x)
    for y in right.values():
        if y.status != ZERO:
            scoped_b.setdefault((y.scope, y.op_type), []).append(y)
    for key, xs in scoped_a.items():
        for x, y in zip(xs, scoped_b.get(key, [])):
            pairs.append((left.pop(x.name), right.pop(y.name)))
    pairs += [(x, None) for x in left.values()] + [(None, y) for y in right.values()]
    return pairs


def _rollup_changes(a: Sequence[Rollup], b: Sequence[Rollup]) -> Tuple[Change, ...]:
    ra, rb = {r.key: r for r in a}, {r.key: r for r in b}
    keys = list(ra) + [k for k in rb if k not in ra]
    changes = [Change(k, _rollup_values(ra[k]) if k in ra else None, _rollup_values(rb[k]) if k in rb else None)
               for k in keys]
    return tuple(sorted((c for c in changes if c.changed), key=lambda c: c.size, reverse=True))


def compare(a: Report, b: Report, depth: int = 1) -> Comparison:
    """What changed from ``a`` to ``b``: totals, layers, blocks at ``depth`` and op types."""
    ta, tb = totals_of(a), totals_of(b)
    totals = {m: (ta[m], tb[m]) for m in ta}
    changes, only_a, only_b = [], [], []
    for x, y in match_layers(a.top_layers, b.top_layers):
        if x is None:
            only_b.append(y.name)
        elif y is None:
            only_a.append(x.name)
        key = x.name if x is not None else y.name
        if x is not None and y is not None and x.name != y.name:
            key = f"{x.name} -> {y.name}"
        changes.append(Change(key, None if x is None else _values(x), None if y is None else _values(y),
                              "" if x is None else x.op_type, "" if y is None else y.op_type))
    matched = (c for c in changes if c.a is not None and c.b is not None)
    layers = tuple(sorted((c for c in matched if c.changed or c.op_a != c.op_b),
                          key=lambda c: c.size, reverse=True))
    return Comparison(a, b, totals, layers, _rollup_changes(a.by_scope(depth), b.by_scope(depth)),
                      _rollup_changes(a.by_op_type(), b.by_op_type()), tuple(only_a), tuple(only_b), depth)
