"""Costs over a grid of dimension values, evaluated from the exact polynomials: one analysis,
then arithmetic ("what does this LLM cost at 128, 2k and 32k tokens")."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple

from onnxscore.errors import UsageError
from onnxscore.poly import evaluate
from onnxscore.report import Report


@dataclass(frozen=True)
class SweepRow:
    values: Dict[str, int]
    macs: int
    flops: int
    phase: str = ""  # prefill / decode / chunk for a model with a KV cache


def parse_sweep(items: Sequence[str]) -> Dict[str, Tuple[int, ...]]:
    """``["seq=128,2048"]`` -> ``{"seq": (128, 2048)}``."""
    grid: Dict[str, Tuple[int, ...]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        parts = [v.strip() for v in values.split(",")]
        if not sep or not name.strip() or not all(p.isdigit() for p in parts):
            raise UsageError(f"--sweep {item!r}: expected NAME=V1,V2,..., e.g. --sweep seq=128,2048")
        grid[name.strip()] = tuple(int(p) for p in parts)
    return grid


def _phase(report: Report, values: Mapping[str, int]) -> str:
    kv = report.kv_cache
    if kv is None or kv.past_dim not in values or kv.seq_dim not in values:
        return ""
    past, seq = values[kv.past_dim], values[kv.seq_dim]
    return "prefill" if past == 0 else "decode" if seq == 1 else "chunk"


def sweep(report: Report, grid: Mapping[str, Sequence[int]], fixed: Optional[Mapping[str, int]] = None
          ) -> Tuple[SweepRow, ...]:
    """MACs and FLOPs at every combination of ``grid`` values (``fixed`` gives the other dims),
    from the report's totals polynomials. The report must have been made with those dims
    left symbolic."""
    t = report.totals
    if t.macs_formula is None or t.flops_formula is None:
        if t.complete:
            raise UsageError(f"{report.model.path}: nothing to sweep: the costs do not depend on "
                             f"{', '.join(grid)} (or they were fixed with --dim)")
        raise UsageError(f"{report.model.path}: costs are not exact polynomials here "
                         "(a layer is unknown or unsupported); use --dim for each value instead")
    symbols = set(getattr(t.macs_formula, "symbols", ())) | set(getattr(t.flops_formula, "symbols", ()))
    unknown = sorted(set(grid) - symbols)
    if unknown:
        raise UsageError(f"{report.model.path}: the costs do not depend on {', '.join(unknown)}; "
                         f"they depend on {', '.join(sorted(symbols)) or 'no dimension'}")
    names = list(grid)
    rows = []
    for combo in itertools.product(*(grid[n] for n in names)):
        values = dict(fixed or {}, **dict(zip(names, combo)))
        missing = sorted(symbols - set(values))
        if missing:
            raise UsageError(f"{report.model.path}: also give {', '.join(missing)} "
                             f"(--sweep {missing[0]}=... or --dim {missing[0]}=N)")
        rows.append(SweepRow(values, evaluate(t.macs_formula, values), evaluate(t.flops_formula, values),
                             _phase(report, values)))
    return tuple(rows)
