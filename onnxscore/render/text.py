"""The terminal report, drawn with rich (tables that fit the terminal, 80 columns when piped)."""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

from rich.cells import cell_len, chop_cells
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from onnxscore.render.summary import MAX_ROWS, Section, footer_lines, report_sections, summary_rows
from onnxscore.render.units import Formula
from onnxscore.report import Report

GAP = 2  # spaces between columns, as rich draws box.SIMPLE_HEAD with padding (0, 1) collapsed
MOVED = "↓"  # in a cell whose formula is written under its row
DETAIL = "output"  # its symbolic shapes move under the rows when moving the formulas is not enough
NAME_FLOOR = 20  # the name column folds to this before shapes move
NAME_LEAST = 12  # the name column is never narrower, unless its names all are
LEAST = {"output": 10, "op": 12}  # after the name column, these fold if they must
INDENT = 2  # the lines under a row start this far into the name column
_BREAKS = (re.compile(r"(?<=[/, ])"), re.compile(r"(?<=[_.])|(?<=[a-z0-9])(?=[A-Z])"))  # paths, words
_SHAPE_BREAKS = (re.compile(r"(?<=[x, ])"), re.compile(r"(?<=_)"))  # 1x | sequence_lengthx | 128


def draw(section: Section):
    """A Section as a table whose first column folds and takes the spare width; a Section with
    polynomial cells (or a note) as a :class:`FormulaTable`, any other as a :class:`PlainTable`."""
    if section.note or any(isinstance(cell, Formula) for row in section.rows for cell in row):
        return FormulaTable(section)
    return PlainTable(section)


def show(console: Console, section: Section) -> None:
    """Print ``section``'s table: its lines whole (a line wider than the console, when its
    names cannot fold further, is not cut short)."""
    console.print(draw(section), crop=False)


def _name_column(section: Section) -> int:
    return 1 if section.header and section.header[0] == "#" else 0


class PlainTable:
    """A Section drawn as rich draws a table (box.SIMPLE_HEAD, padding (0, 1) collapsed, the
    title wrapped at the table's width), line by line, when every cell fits whole: rich lays
    out about a thousand rows a second, this a hundred times more. The name column is
    ``NAME_LEAST`` wide, or as wide as fits when its names are shorter. A table that does not
    fit whole is laid out as a :class:`FormulaTable` (names fold, numbers are never cut short:
    rich cropped the last columns, "1,234" as "1,")."""

    def __init__(self, section: Section):
        self.section = section

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        section = self.section
        header, rows, numeric = section.header, section.rows, section.numeric
        n = len(header)
        if not n:
            yield Segment("\n")  # as rich draws a table without columns
            return
        widths = [max([cell_len(header[i])] + [cell_len(r[i]) for r in rows]) for i in range(n)]
        name = _name_column(section)
        natural = widths[name]
        spare = options.max_width - (sum(widths) + 2 * n)  # rich's width: cells, padding, edges, dividers
        if spare < 0:
            yield FormulaTable(section)
            return
        widths[name] = max(natural, min(NAME_LEAST, natural + spare))
        title = options.update(width=sum(widths) + 2 * n, highlight=False, height=None, justify="left")
        yield from console.render(Text(section.title), title)
        right = [c in numeric for c in header]
        yield Segment("\n")
        for text in [_line(header, widths, right), _rule(widths)] + [_line(row, widths, right) for row in rows]:
            yield Segment(text + "\n")
        yield Segment("\n")


def _line(cells: Sequence[str], widths: Sequence[int], right: Sequence[bool]) -> str:
    """One line of a table: each cell padded to its column's width (on the left when the column
    is right-aligned), GAP apart."""
    return (" " + (" " * GAP).join(" " * (w - cell_len(c)) + c if r else c + " " * (w - cell_len(c))
                                   for c, w, r in zip(cells, widths, right))).rstrip()


def _rule(widths: Sequence[int]) -> str:
    """The line under a table's header, as wide as the columns drawn."""
    return " " + "─" * (_table_width(widths) - 1)


class FormulaTable:
    """A Section whose cells hold polynomials (or too wide for a :class:`PlainTable`), drawn like
    :func:`draw`'s tables at the width it is printed in. Names and numbers stay whole; a formula
    stays in its column while the table fits, else (the longest first) it is written under its
    row, ``MACs = 512*seq**2 + 393216*seq``, its cell marked ``↓`` (a column whose every cell
    moved is not drawn). When that is not enough, the layer name folds (at ``/``), long output
    shapes go under the rows too, then the name, shape and op type fold further (at ``/``, ``x``
    and camelCase); see :func:`_layout`."""

    def __init__(self, section: Section):
        self.section = section

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in formula_lines(self.section, options.max_width):
            yield Segment(line + "\n")  # whole: a line too wide is the terminal's to wrap, a file keeps it


def _table_width(widths: Sequence[int]) -> int:
    return 1 + sum(widths) + GAP * (len(widths) - 1) if widths else 0


@dataclass
class _Layout:
    """How a :class:`FormulaTable` is drawn at one width."""

    widths: List[int]
    shown: List[int]  # the columns drawn
    moved: List[Dict[int, str]]  # per row: column -> the text written under it


def _layout(section: Section, width: int) -> _Layout:
    """Which cells move under their rows, which columns are drawn and how wide: formulas move
    (the longest first) until the table fits; then the name column folds as far as it must,
    to ``NAME_FLOOR`` at the most;
    then symbolic output shapes move (the longest first; when none can stay and most shapes are
    symbolic, all of them); then the name, shape and op columns fold."""
    header, rows = section.header, section.rows
    n = len(header)
    detail = header.index(DETAIL) if DETAIL in header else None
    formula = [i for i in range(n) if i != detail and any(isinstance(r[i], Formula) for r in rows)]
    name = _name_column(section)

    def long(cell, t: float) -> bool:
        return isinstance(cell, Formula) and cell_len(cell) > t

    def plan(t: float, t_detail: float, name_width: float = float("inf")) -> _Layout:
        """Formulas longer than ``t`` move, symbolic shapes longer than ``t_detail`` too (every
        shape with ``t_detail`` < 0: the column goes)."""
        moved = [{i: r[i] for i in formula if long(r[i], t)} for r in rows]
        if detail is not None:
            for r, m in zip(rows, moved):
                if r[detail] and (t_detail < 0 or long(r[detail], t_detail)):
                    m[detail] = r[detail]
        widths = [max([cell_len(header[i]), 1] + [cell_len(MOVED if i in m else r[i])
                                                  for r, m in zip(rows, moved)]) for i in range(n)]
        widths[name] = int(min(max(widths[name], NAME_LEAST), max(name_width, cell_len(header[name]))))
        hidden = {i for i in formula if all(i in m for m in moved)}
        if detail is not None and all(detail in m or not r[detail] for r, m in zip(rows, moved)):
            hidden.add(detail)
        return _Layout(widths, [i for i in range(n) if i not in hidden], moved)

    def fits(lay: _Layout) -> bool:
        return _table_width([lay.widths[i] for i in lay.shown]) <= width

    def longest(columns, make, last: int = 0) -> _Layout:
        """The plan that keeps the longest formulas of ``columns`` in the table and fits, else
        ``make(last)``."""
        lengths = sorted({cell_len(r[i]) for r in rows for i in columns if isinstance(r[i], Formula)},
                         reverse=True)
        return next((lay for lay in map(make, lengths) if fits(lay)), make(last))

    inf = float("inf")
    lay = longest(formula, lambda t: plan(t, inf))
    if not fits(lay):  # every formula under its row, and the name column folds as far as it must
        lay = plan(0, inf)
        excess = _table_width([lay.widths[i] for i in lay.shown]) - width
        lay = plan(0, inf, max(NAME_FLOOR, lay.widths[name] - excess))
    if not fits(lay) and detail is not None:  # all shapes go if most are symbolic, else those only
        shapes = [r[detail] for r in rows if r[detail]]
        symbolic = sum(isinstance(x, Formula) for x in shapes)
        lay = longest([detail], lambda t: plan(0, t, NAME_FLOOR), -1 if 2 * symbolic > len(shapes) else 0)
    natural = max(cell_len(MOVED if name in m else r[name]) for r, m in zip(rows + (header,), lay.moved + [{}]))
    for i, least in ([(name, min(NAME_LEAST, natural))]
                     + [(header.index(c), w) for c, w in LEAST.items() if c in header]):
        excess = _table_width([lay.widths[i] for i in lay.shown]) - width
        if excess > 0 and i in lay.shown:
            lay.widths[i] = max(min(least, lay.widths[i]), lay.widths[i] - excess)
    return lay


def _pieces(text: str, width: int, breaks: Sequence[re.Pattern]) -> List[str]:
    """``text`` cut where ``breaks[0]`` allows, a piece wider than ``width`` cut where the
    next pattern allows, and so on; folded where none does."""
    if cell_len(text) <= width:
        return [text]
    if not breaks:
        return chop_cells(text, width)
    return [p for token in breaks[0].split(text) if token for p in _pieces(token, width, breaks[1:])]


def _wrap(text: str, width: int, breaks: Sequence[re.Pattern] = _BREAKS) -> List[str]:
    """``text`` in lines of at most ``width`` cells: a path broken after ``/`` (or a space),
    a name after ``_`` or ``.`` or inside camelCase, where it can; folded where it cannot."""
    if cell_len(text) <= width:
        return [text]
    lines = [""]
    for piece in _pieces(text, width, breaks):
        if lines[-1] and cell_len(lines[-1] + piece.rstrip()) > width:
            lines.append("")
        lines[-1] += piece.lstrip() if not lines[-1] else piece
    return [line.rstrip() for line in lines]


def _terms(formula: str) -> List[str]:
    """``a + b - (c + d)//7`` -> ``["a", "+ b", "- (c + d)//7"]``: split before each ``+``/``-``
    outside parentheses."""
    terms, depth, start = [], 0, 0
    for i, ch in enumerate(formula):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and formula[i:i + 3] in (" + ", " - "):
            terms.append(formula[start:i])
            start = i + 1
    return terms + [formula[start:]]


def _detail(label: str, text: str, width: int) -> List[str]:
    """``label = formula`` (``output shape``), a formula broken before a ``+``/``-`` term when
    longer than ``width``, the terms aligned after ``= ``."""
    if label == DETAIL:
        return [f"{label} {text}"]
    head = f"{label} = "
    first, *rest = _terms(text)
    lines, line = [], head + first
    for term in rest:
        if cell_len(line) + 1 + cell_len(term) > width:
            lines.append(line)
            line = " " * cell_len(head) + term
        else:
            line += " " + term
    return lines + [line]


def _details(cells: Dict[int, str], header: Sequence[str], indent: int, width: int) -> List[str]:
    """The cells moved under a row, several to a line when they fit."""
    lines: List[str] = []
    for i in sorted(cells, key=lambda i: (header[i] != DETAIL, i)):  # the shape first
        item = _detail(header[i], cells[i], width - indent)
        if len(item) == 1 and lines and cell_len(lines[-1]) + 3 + cell_len(item[0]) <= width - indent:
            lines[-1] += "   " + item[0]
        else:
            lines += item
    return [" " * indent + line for line in lines]


def formula_lines(section: Section, width: int) -> List[str]:
    """The lines of a :class:`FormulaTable` ``width`` columns wide: the title, a blank line,
    header, rule, each row with its moved cells under it, a blank line, and the note."""
    header, rows = section.header, section.rows
    lay = _layout(section, width)

    def line(cells: Sequence[str]) -> List[str]:
        parts = {i: _wrap(cells[i], lay.widths[i], _SHAPE_BREAKS if header[i] == DETAIL else _BREAKS)
                 for i in lay.shown}
        return [_line([parts[i][k] if k < len(parts[i]) else "" for i in lay.shown], widths, right)
                for k in range(max(len(p) for p in parts.values()))]

    widths = [lay.widths[i] for i in lay.shown]
    right = [header[i] in section.numeric for i in lay.shown]
    lines = _wrap(section.title, width) + [""] + line(header) + [_rule(widths)]
    indent = 1 + (lay.widths[0] + GAP if header[0] == "#" else 0) + INDENT
    for r, m in zip(rows, lay.moved):
        lines += line([MOVED if i in m else cell for i, cell in enumerate(r)])
        lines += _details(m, header, indent, width)
    lines.append("")
    if section.note:
        lines += _wrap(section.note, width) + [""]
    return lines


def summary_table(report: Report, est=None, meas=None) -> Table:
    summary = Table(box=None, show_header=False, pad_edge=False)
    summary.add_column(style="bold")
    summary.add_column(overflow="fold")
    for label, value in summary_rows(report, est, meas):
        summary.add_row(Text(label), Text(value))
    return summary


def render_one(report: Report, console: Console, top: int = 10, depth: int = 1, layers: bool = True,
               all_layers: bool = False, sweep_rows=None, explain: bool = False, est=None, meas=None,
               max_rows: int = MAX_ROWS) -> None:
    console.print(summary_table(report, est, meas))
    for section in report_sections(report, top, depth, layers, all_layers, sweep_rows, est, meas, max_rows):
        show(console, section)
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
            sweeps=None, explain: bool = False, estimates=None, measurements=None,
            max_rows: int = MAX_ROWS) -> str:
    """The readable report of each model, one after the other (``sweeps``: rows per model;
    ``explain``: where each unknown shape was lost; ``estimates``, ``measurements``: an
    :class:`~onnxscore.device.Estimate`, a :class:`~onnxscore.measure.Measurement` or None
    per model; ``max_rows``: the rows of a table of layers or blocks, 0 for all)."""
    def paint(console: Console) -> None:
        for i, report in enumerate(reports):
            if i:
                console.rule()
            render_one(report, console, top, depth, layers, all_layers, sweeps[i] if sweeps else None,
                       explain, estimates[i] if estimates else None, measurements[i] if measurements else None,
                       max_rows)

    return console_text(paint, width, color)
