"""Before/after: two reports side by side, and the layers, blocks and op types that changed.

Layers are matched by name first; the rest by a normalised name (``_quant``, which
onnxruntime's QOperator quantization appends, removed); then, within the same scope, in graph
order among the layers of the same op type. What is left unmatched (the Q/DQ nodes a
quantizer inserts, say) is listed apart, and counted in the block and op-type changes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from onnxscore.report import ZERO, LayerCost, Report, Rollup

MEASURES = ("params", "macs", "flops", "weight_bytes")
_SUFFIXES = re.compile(r"_quant$")  # onnxruntime's QOperator format renames Conv to Conv_quant


@dataclass(frozen=True)
class Change:
    """One row matched across the two models; a side is None when the row exists only in the
    other. ``a`` and ``b`` map each of :data:`MEASURES` to its raw integer (None if unknown)."""

    key: str
    a: Optional[Mapping[str, Optional[int]]]
    b: Optional[Mapping[str, Optional[int]]]
    op_a: str = ""
    op_b: str = ""

    def delta(self, measure: str) -> Optional[int]:
        """b - a for ``measure``; a missing side counts as 0, an unknown value gives None."""
        va = 0 if self.a is None else self.a.get(measure)
        vb = 0 if self.b is None else self.b.get(measure)
        return None if va is None or vb is None else vb - va

    @property
    def size(self) -> Tuple[int, ...]:
        return tuple(abs(self.delta(m) or 0) for m in ("macs", "params", "flops", "weight_bytes"))


@dataclass(frozen=True)
class Comparison:
    """Totals of both models and what changed, each list sorted by the size of the change;
    ``layers`` holds matched layers only, the unmatched are ``only_a`` and ``only_b``."""

    a: Report
    b: Report
    totals: Dict[str, Tuple[int, int]]
    layers: Tuple[Change, ...]
    blocks: Tuple[Change, ...]
    op_types: Tuple[Change, ...]
    only_a: Tuple[str, ...]
    only_b: Tuple[str, ...]
    depth: int = 1

    def to_dict(self, k: Optional[int] = None) -> dict:
        """JSON form (schema ``onnxscore.compare/1``), raw integers throughout."""
        def rows(changes):
            return [{"key": c.key, "op_a": c.op_a, "op_b": c.op_b, "a": c.a, "b": c.b,
                     "delta": {m: c.delta(m) for m in MEASURES}} for c in changes[:k]]

        return {"schema": "onnxscore.compare/1", "a": self.a.model.path, "b": self.b.model.path,
                "totals": {m: {"a": va, "b": vb, "delta": vb - va} for m, (va, vb) in self.totals.items()},
                "layers": rows(self.layers), "blocks": {"depth": self.depth, "rows": rows(self.blocks)},
                "op_types": rows(self.op_types), "only_a": list(self.only_a), "only_b": list(self.only_b)}


def _values(x) -> Dict[str, Optional[int]]:
    return {"params": x.params, "macs": x.macs, "flops": x.flops, "weight_bytes": x.weight_bytes}


def _normal(name: str) -> str:
    return _SUFFIXES.sub("", name)


def match_layers(a: Sequence[LayerCost], b: Sequence[LayerCost]) -> List[Tuple[Optional[LayerCost], Optional[LayerCost]]]:
    """Pairs of layers: by name, then by normalised name, then by position among the layers of
    the same op type within the same scope."""
    pairs: List[Tuple[Optional[LayerCost], Optional[LayerCost]]] = []
    left = {x.name: x for x in a}
    right = {x.name: x for x in b}
    for name in list(left):
        if name in right:
            pairs.append((left.pop(name), right.pop(name)))
    normal: Dict[str, str] = {}
    for y in right.values():
        normal.setdefault(_normal(y.name), y.name)
    for name in list(left):
        other = normal.get(_normal(name))
        if other in right:
            pairs.append((left.pop(name), right.pop(other)))
    scoped_a: Dict[Tuple[str, str], List[LayerCost]] = {}
    scoped_b: Dict[Tuple[str, str], List[LayerCost]] = {}
    for x in left.values():
        if x.status != ZERO and x.scope:
            scoped_a.setdefault((x.scope, x.op_type), []).append(x)
    for y in right.values():
        if y.status != ZERO and y.scope:
            scoped_b.setdefault((y.scope, y.op_type), []).append(y)
    for key, xs in scoped_a.items():
        for x, y in zip(xs, scoped_b.get(key, [])):
            pairs.append((left.pop(x.name), right.pop(y.name)))
    pairs += [(x, None) for x in left.values()] + [(None, y) for y in right.values()]
    return pairs


def _rollup_changes(a: Sequence[Rollup], b: Sequence[Rollup]) -> Tuple[Change, ...]:
    ra, rb = {r.key: r for r in a}, {r.key: r for r in b}
    keys = list(ra) + [k for k in rb if k not in ra]
    changes = [Change(k, _values(ra[k]) if k in ra else None, _values(rb[k]) if k in rb else None)
               for k in keys]
    return tuple(sorted((c for c in changes if any(c.size)), key=lambda c: c.size, reverse=True))


def compare(a: Report, b: Report, depth: int = 1) -> Comparison:
    """What changed from ``a`` to ``b``: totals, layers, blocks at ``depth`` and op types."""
    totals = {"params": (a.totals.params, b.totals.params), "buffers": (a.totals.buffers, b.totals.buffers),
              "macs": (a.totals.macs, b.totals.macs), "flops": (a.totals.flops, b.totals.flops),
              "weight_bytes": (a.totals.weight_bytes, b.totals.weight_bytes)}
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
    layers = tuple(sorted((c for c in matched if any(c.size) or c.op_a != c.op_b),
                          key=lambda c: c.size, reverse=True))
    return Comparison(a, b, totals, layers, _rollup_changes(a.by_scope(depth), b.by_scope(depth)),
                      _rollup_changes(a.by_op_type(), b.by_op_type()), tuple(only_a), tuple(only_b), depth)
