"""The terminal report, drawn with rich (tables that fit the terminal, 80 columns when piped)."""
from __future__ import annotations

import io
from typing import Optional, Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from onnxscore.render.summary import (HOTSPOT_HEADER, LAYER_HEADER, NUMERIC_COLUMNS, hotspot_row,
                                      layer_row, summary_rows, visible_layers)
from onnxscore.report import Report


def _table(title: str, header: Sequence[str], rows) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for i, col in enumerate(header):
        table.add_column(col, justify="right" if col in NUMERIC_COLUMNS else "left",
                         ratio=1 if i == 0 else None, overflow="fold", no_wrap=i != 0,
                         min_width=10 if i == 0 else None)
    for row in rows:
        table.add_row(*row)
    return table


def render_one(report: Report, console: Console, top: int = 10, layers: bool = True,
               all_layers: bool = False) -> None:
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
        console.print(_table(f"Top {len(hot)} layers by MACs", HOTSPOT_HEADER,
                             [hotspot_row(x, total) for x in hot]))
    if layers:
        shown, hidden = visible_layers(report, all_layers)
        title = f"All layers ({len(report.layers)}" + (
            f"; {hidden} zero-cost hidden, --all-layers shows them)" if hidden else ")")
        console.print(_table(title, LAYER_HEADER, [layer_row(x) for x in shown]))
    if not report.totals.complete:
        console.print("In the tables: ? = cost unknown, n/a = no cost rule for the op; totals are lower bounds.")
    if report.unresolved_dims:
        for dim, names in report.unresolved_dims.items():
            console.print(f"unknown: {len(names)} layer(s) need {dim} (e.g. {names[0]})")
    for w in report.warnings:
        console.print(f"warning: {w}")


def to_text(reports: Sequence[Report], top: int = 10, layers: bool = True, all_layers: bool = False,
            width: Optional[int] = None, color: bool = False) -> str:
    """The readable report of each model, one after the other."""
    buf = io.StringIO()
    console = Console(file=buf, width=width or 80, no_color=not color, highlight=False,
                      force_terminal=color, soft_wrap=False)
    for i, report in enumerate(reports):
        if i:
            console.rule()
        render_one(report, console, top=top, layers=layers, all_layers=all_layers)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"
