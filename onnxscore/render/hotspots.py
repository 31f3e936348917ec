"""``onnxscore hotspots``: the top-k layers of each model by one measure, in every format."""
from __future__ import annotations

import csv
import io
import json
from typing import Optional, Sequence

from rich.console import Console

from onnxscore.render.summary import hotspot_section
from onnxscore.render.tables import md_section
from onnxscore.render.text import console_text, draw
from onnxscore.report import Report


def hotspot_dicts(report: Report, k: int, by: str) -> list:
    """The rows of ``report.hotspots``; a polynomial value as text (``256*seq*total``), its
    share and cumulative share null (ranked by leading term)."""
    return [{"rank": i, "name": h.layer.name, "op_type": h.layer.op_type, "scope": h.layer.scope,
             "value": h.value if isinstance(h.value, int) else str(h.value), "share": h.share,
             "cumulative": h.cumulative}
            for i, h in enumerate(report.hotspots(k, by), 1)]


def render_hotspots(reports: Sequence[Report], fmt: str = "text", k: int = 10, by: str = "macs",
                    width: Optional[int] = None) -> str:
    """Top-k layers by ``by`` (macs, flops, params or memory) with share and cumulative share."""
    if fmt == "json":
        data = [{"schema": "onnxscore.hotspots/1", "model": r.model.path, "by": by, "k": k,
                 "rows": hotspot_dicts(r, k, by)} for r in reports]
        return json.dumps(data[0] if len(data) == 1 else data, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, ["model", "by", "rank", "name", "op_type", "scope", "value",
                                      "share", "cumulative"], lineterminator="\n")
        writer.writeheader()
        for r in reports:
            for row in hotspot_dicts(r, k, by):
                writer.writerow(dict(row, model=r.model.path, by=by))
        return buf.getvalue()
    sections = [(r, hotspot_section(r, k, by)) for r in reports]
    if fmt == "md":
        return "\n".join(f"### onnxscore hotspots: `{r.model.path}`\n\n" +
                         (md_section(s) if s else f"no layer has any {by}\n") for r, s in sections)

    def paint(console: Console) -> None:
        for r, s in sections:
            console.print(f"{r.model.path}")
            console.print(draw(s) if s else f"no layer has any {by}")

    return console_text(paint, width)
