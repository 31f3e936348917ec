"""JSON, CSV and Markdown renderings of reports."""
from __future__ import annotations

import csv
import io
import json
from typing import Sequence

from onnxscore.render.summary import (HOTSPOT_HEADER, LAYER_HEADER, hotspot_row, layer_row,
                                      summary_rows, visible_layers)
from onnxscore.render.units import shapes
from onnxscore.report import Report

CSV_COLUMNS = ["model", "name", "op_type", "domain", "input_shapes", "output_shapes", "params",
               "macs", "flops", "status", "parent", "note"]


def to_json(reports: Sequence[Report]) -> str:
    """One object per model; a list when there are several."""
    data = [r.to_dict() for r in reports]
    return json.dumps(data[0] if len(data) == 1 else data, indent=2) + "\n"


def to_csv(reports: Sequence[Report]) -> str:
    """One row per layer (raw integers; empty cells for unknown costs)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in reports:
        for layer in r.layers:
            writer.writerow([r.model.path, layer.name, layer.op_type, layer.domain,
                             shapes(layer.input_shapes), shapes(layer.output_shapes), layer.params,
                             "" if layer.macs is None else layer.macs,
                             "" if layer.flops is None else layer.flops, layer.status,
                             layer.parent or "", layer.note])
    return buf.getvalue()


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(reports: Sequence[Report], top: int = 10, layers: bool = True,
                all_layers: bool = False, **_) -> str:
    """GitHub-flavoured Markdown: the summary first, the long per-layer table folded."""
    parts = []
    for r in reports:
        parts.append(f"### onnxscore: `{r.model.path}`\n")
        parts.append(_md_table(["figure", "value"], summary_rows(r)) + "\n")
        hot = r.top_k(top, "macs")
        if hot:
            parts.append(f"**Top {len(hot)} layers by MACs**\n")
            parts.append(_md_table(HOTSPOT_HEADER, [hotspot_row(x, r.totals.macs) for x in hot]) + "\n")
        if layers:
            shown, hidden = visible_layers(r, all_layers)
            extra = f"; {hidden} zero-cost hidden" if hidden else ""
            parts.append(f"<details><summary>All layers ({len(r.layers)}{extra})</summary>\n")
            parts.append(_md_table(LAYER_HEADER, [layer_row(x) for x in shown]))
            parts.append("\n</details>\n")
        for note in r.notes:
            parts.append(f"> note: {_md_escape(note)}\n")
        for w in r.warnings:
            parts.append(f"> warning: {_md_escape(w)}\n")
    return "\n".join(parts)
