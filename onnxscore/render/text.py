"""The terminal report, drawn with rich (tables that fit the terminal, 80 columns when piped)."""
from __future__ import annotations

import io
from typing import Callable, Optional, Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from onnxscore.render.summary import Section, footer_lines, report_sections, summary_rows
from onnxscore.report import Report


def draw(section: Section) -> Table:
    """A Section as a rich table whose first column folds and takes the spare width."""
    table = Table(title=Text(section.title), box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False,
                  padding=(0, 1), collapse_padding=True)
    name = 1 if section.header[0] == "#" else 0
    for i, col in enumerate(section.header):
        table.add_column(col, justify="right" if col in section.numeric else "left",
                         ratio=1 if i == name else None, overflow="fold",
                         no_wrap=col in section.numeric or col == "op",
                         min_width=12 if i == name else None)
    for row in section.rows:
        table.add_row(*(Text(cell) for cell in row))  # names may hold [brackets]: never markup
    return table


def summary_table(report: Report) -> Table:
    summary = Table(box=None, show_header=False, pad_edge=False)
    summary.add_column(style="bold")
    summary.add_column(overflow="fold")
    for label, value in summary_rows(report):
        summary.add_row(Text(label), Text(value))
    return summary


def render_one(report: Report, console: Console, top: int = 10, depth: int = 1, layers: bool = True,
               all_layers: bool = False, sweep_rows=None, explain: bool = False) -> None:
    console.print(summary_table(report))
    for section in report_sections(report, top, depth, layers, all_layers, sweep_rows):
        console.print(draw(section))
    for line in footer_lines(report, explain):
        console.print(line)


def console_text(paint: Callable[[Console], None], width: Optional[int] = None, color: bool = False) -> str:
    """Whatever ``paint`` prints, as text ``width`` columns wide (80 by default)."""
    buf = io.StringIO()
    console = Console(file=buf, width=width or 80, no_color=not color, highlight=False,
                      force_terminal=color, soft_wrap=False, markup=False)
    paint(console)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def to_text(reports: Sequence[Report], top: int = 10, depth: int = 1, layers: bool = True,
            all_layers: bool = False, width: Optional[int] = None, color: bool = False,
            sweeps=None, explain: bool = False) -> str:
    """The readable report of each model, one after the other (``sweeps``: rows per model;
    ``explain``: where each unknown shape was lost)."""
    def paint(console: Console) -> None:
        for i, report in enumerate(reports):
            if i:
                console.rule()
            render_one(report, console, top, depth, layers, all_layers, sweeps[i] if sweeps else None,
                       explain)

    return console_text(paint, width, color)
