"""The terminal report, drawn with rich (tables that fit the terminal, 80 columns when piped)."""
from __future__ import annotations

import io
from typing import Optional, Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from onnxscore.render.summary import LAYER_HEADER, layer_row, summary_rows
from onnxscore.report import Report


def _layers_table(title: str, layers, total_macs: int) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for i, col in enumerate(LAYER_HEADER):
        table.add_column(col, justify="right" if 3 <= i <= 6 else "left",
                         overflow="fold" if i == 0 else "ellipsis", no_wrap=i != 0)
    for layer in layers:
        table.add_row(*layer_row(layer, total_macs))
    return table


def render_one(report: Report, console: Console, top: int = 10, layers: bool = True) -> None:
    summary = Table(box=None, show_header=False, pad_edge=False)
    summary.add_column(style="bold")
    summary.add_column(overflow="fold")
    for label, value in summary_rows(report):
        summary.add_row(label, value)
    console.print(summary)
    for note in report.notes:
        console.print(f"note: {note}")
    total = report.totals.macs
    hot = report.top_k(top, "macs")
    if hot:
        console.print(_layers_table(f"Top {len(hot)} layers by MACs", hot, total))
    if layers:
        console.print(_layers_table(f"All layers ({len(report.layers)})", report.layers, total))
    if report.unresolved_dims:
        for dim, names in report.unresolved_dims.items():
            console.print(f"unknown: {len(names)} layer(s) need {dim} (e.g. {names[0]})")
    for w in report.warnings:
        console.print(f"warning: {w}")


def to_text(reports: Sequence[Report], top: int = 10, layers: bool = True,
            width: Optional[int] = None, color: bool = False) -> str:
    """The readable report of each model, one after the other."""
    buf = io.StringIO()
    console = Console(file=buf, width=width or 100, no_color=not color, highlight=False,
                      force_terminal=color, soft_wrap=False)
    for i, report in enumerate(reports):
        if i:
            console.rule()
        render_one(report, console, top=top, layers=layers)
    return buf.getvalue()
