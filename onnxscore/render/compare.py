"""A :class:`onnxscore.compare.Comparison` in every format."""
from __future__ import annotations

import csv
import io
import json
from typing import List, Optional, Sequence

from rich.console import Console

from onnxscore.compare import MEASURES, AtLeast, Comparison, delta
from onnxscore.poly import Poly
from onnxscore.render.summary import NUMERIC, Section
from onnxscore.render.tables import md_section
from onnxscore.render.text import console_text, show
from onnxscore.render.units import Formula, binary_bytes, si

LABELS = {"params": "params", "buffers": "buffers", "macs": "MACs", "flops": "FLOPs",
          "weight_bytes": "weight bytes"}


def _fmt(measure: str, v) -> str:
    """A value: '?' unknown, '≥' before a lower bound, a polynomial as a :class:`Formula`."""
    if v is None:
        return "?"
    if isinstance(v, AtLeast):
        return "≥" + _fmt(measure, v.value)
    if isinstance(v, Poly):
        return Formula(v)
    if measure == "weight_bytes":
        return binary_bytes(abs(v)) if v >= 0 else "-" + binary_bytes(-v)
    return f"{v:,}" if measure in ("params", "buffers") else si(v)


def _signed(measure: str, d) -> str:
    if d is None:
        return "?"
    if isinstance(d, Poly):
        return Formula(("+" if not str(d).startswith("-") else "") + str(d))
    return ("+" if d > 0 else "") + _fmt(measure, d) if d else "0"


def _pct(a, b) -> str:
    """The change in percent, when both sides are numbers."""
    if not (isinstance(a, int) and isinstance(b, int)):
        return ""
    return f"{100 * (b - a) / a:+.1f}%" if a else ("new" if b else "")


def latency_rows(estimates=None, measurements=None) -> List[dict]:
    """The latency of both models: ``{"name", "label", "a", "b"}`` in seconds (None when
    unknown) for the roofline estimate (``estimates``: the two
    :class:`~onnxscore.device.Estimate`) and the measured p50 (``measurements``)."""
    rows = []
    if estimates:
        ea, eb = estimates
        rows.append({"name": "est_seconds", "label": f"est. latency ({ea.device.name})",
                     "a": ea.seconds, "b": eb.seconds, "lower_bound": not (ea.complete and eb.complete),
                     "device": ea.device.name})
    if measurements:
        ma, mb = measurements
        rows.append({"name": "measured_p50_seconds", "label": "latency p50 (measured)",
                     "a": ma.optimized.p50, "b": mb.optimized.p50, "lower_bound": False,
                     "threads": [ma.threads, mb.threads], "onnxruntime": ma.onnxruntime_version})
    return rows


def _ms_row(row: dict) -> tuple:
    from onnxscore.render.timing import ms

    a, b = row["a"], row["b"]
    lower = "≥" if row["lower_bound"] else ""
    delta = b - a
    sign = "+" if delta > 0 else "-" if delta < 0 else ""
    return (row["label"], f"{lower}{ms(a)} ms", f"{lower}{ms(b)} ms",
            f"{sign}{ms(abs(delta))} ms" if delta else "0", f"{100 * delta / a:+.1f}%" if a else "")


def totals_section(c: Comparison, latency: Sequence[dict] = ()) -> Section:
    rows = tuple((LABELS[m], _fmt(m, a), _fmt(m, b), _signed(m, delta(a, b)), _pct(a, b))
                 for m, (a, b) in c.totals.items()) + tuple(_ms_row(r) for r in latency)
    return Section("Totals", ("", "A", "B", "delta", "change"), rows, frozenset({"A", "B", "delta", "change"}))


DELTA_COLUMNS = (("macs", "Δ MACs"), ("flops", "Δ FLOPs"), ("params", "Δ params"),
                 ("weight_bytes", "Δ weight bytes"))


def changes_section(title: str, changes, k: int, with_ops: bool = False) -> Optional[Section]:
    """The ``k`` biggest changes, as deltas (B - A) of each measure."""
    if not changes:
        return None
    rows = []
    for ch in changes[:k]:
        op = ch.op_a if ch.op_a == ch.op_b else f"{ch.op_a or '-'} -> {ch.op_b or '-'}"
        rows.append(tuple([ch.key] + ([op] if with_ops else [])
                          + [_signed(m, ch.delta(m)) for m, _ in DELTA_COLUMNS]))
    header = ("name",) + (("op",) if with_ops else ()) + tuple(label for _, label in DELTA_COLUMNS)
    more = f" (top {k} of {len(changes)})" if len(changes) > k else ""
    return Section(title + more, header, tuple(rows), NUMERIC | {label for _, label in DELTA_COLUMNS})


def comparison_sections(c: Comparison, k: int = 10, latency: Sequence[dict] = ()) -> List[Section]:
    sections = [totals_section(c, latency),
                changes_section("Layers that changed most", c.layers, k, with_ops=True),
                changes_section(f"Blocks at depth {c.depth} that changed", c.blocks, k),
                changes_section("Op types that changed", c.op_types, k)]
    return [s for s in sections if s is not None]


def _unmatched(c: Comparison) -> List[str]:
    lines = []
    for label, names in (("only in A", c.only_a), ("only in B", c.only_b)):
        if names:
            shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
            lines.append(f"{label} ({len(names)}): {shown}")
    return lines


def to_text(c: Comparison, k: int = 10, width: Optional[int] = None, latency: Sequence[dict] = ()) -> str:
    def paint(console: Console) -> None:
        console.print(f"A: {c.a.model.path}\nB: {c.b.model.path}")
        for section in comparison_sections(c, k, latency):
            show(console, section)
        for line in _unmatched(c):
            console.print(line)

    return console_text(paint, width)


def to_markdown(c: Comparison, k: int = 10, latency: Sequence[dict] = ()) -> str:
    parts = [f"### onnxscore compare: `{c.a.model.path}` → `{c.b.model.path}`\n"]
    parts += [md_section(s) for s in comparison_sections(c, k, latency)]
    parts += [f"> {line}\n" for line in _unmatched(c)]
    return "\n".join(parts)


def to_json(c: Comparison, k: int = 10, latency: Sequence[dict] = ()) -> str:
    """``Comparison.to_dict``; with latency rows, a ``latency`` object: per row (``est_seconds``,
    ``measured_p50_seconds``) the seconds of A and B and their delta."""
    data = c.to_dict()
    if latency:
        data["latency"] = {r["name"]: {**{key: v for key, v in r.items() if key not in ("name", "label")},
                                       "delta": r["b"] - r["a"]} for r in latency}
    return json.dumps(data, indent=2) + "\n"


def to_csv(c: Comparison, k: int = 10, latency: Sequence[dict] = ()) -> str:
    """One row per total, changed layer, block and op type: kind, name, a_*, b_*, delta_*
    (with latency rows: ``kind=total`` rows ``est_seconds`` and ``measured_p50_seconds`` in the
    columns a_seconds, b_seconds, delta_seconds)."""
    buf = io.StringIO()
    cols = ["kind", "name", "op_a", "op_b"] + [f"{p}_{m}" for m in MEASURES for p in ("a", "b", "delta")]
    if latency:
        cols += ["a_seconds", "b_seconds", "delta_seconds"]
    writer = csv.DictWriter(buf, cols, lineterminator="\n")
    writer.writeheader()
    totals = c.to_dict()["totals"]  # (polynomials as text, lower bounds as their bound)
    for m in c.totals:
        if m in MEASURES:
            t = totals[m]
            writer.writerow({"kind": "total", "name": m, f"a_{m}": _cell(t["a"]), f"b_{m}": _cell(t["b"]),
                             f"delta_{m}": _cell(t["delta"])})
    for r in latency:
        writer.writerow({"kind": "total", "name": r["name"], "a_seconds": f"{r['a']:.6g}",
                         "b_seconds": f"{r['b']:.6g}", "delta_seconds": f"{r['b'] - r['a']:.6g}"})
    for kind, changes in (("layer", c.layers), ("scope", c.blocks), ("op_type", c.op_types)):
        for ch in changes:
            row = {"kind": kind, "name": ch.key, "op_a": ch.op_a, "op_b": ch.op_b}
            for m in MEASURES:
                row[f"a_{m}"] = "" if ch.a is None else _cell(ch.a.get(m))
                row[f"b_{m}"] = "" if ch.b is None else _cell(ch.b.get(m))
                row[f"delta_{m}"] = _cell(ch.delta(m))
            writer.writerow(row)
    return buf.getvalue()


def _cell(v) -> str:
    """A CSV cell: empty when unknown, a polynomial as text (``64*seq``)."""
    return "" if v is None else str(v)


def render_comparison(c: Comparison, fmt: str = "text", k: int = 10, estimates=None, measurements=None) -> str:
    """``c`` in ``fmt``; ``estimates`` / ``measurements``: the pair (A, B) of
    :class:`~onnxscore.device.Estimate` / :class:`~onnxscore.measure.Measurement`, whose latency
    is added to the totals."""
    latency = latency_rows(estimates, measurements)
    return {"text": to_text, "md": to_markdown, "json": to_json, "csv": to_csv}[fmt](c, k, latency=latency)
