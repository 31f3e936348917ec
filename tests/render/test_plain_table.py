"""The text tables' own drawing (render.text.PlainTable) against rich's: the same lines
whenever the table fits whole, and never a cell cut short when its names could be narrower."""
import random

import pytest
from rich import box
from rich.table import Table
from rich.text import Text

from onnxscore.render.summary import Section
from onnxscore.render.text import NAME_LEAST, console_text, draw, show

WORDS = ["conv", "layer1/0/conv2", "Relu", "[1, 3, 224, 224]", "ρ", "模型", "a_b.c", "", "x" * 30,
         "Ω/a/d", "1,234", "0", "4.09 G", "-", "m0196_cnn"]


def rich_table(section: Section) -> Table:
    """The table rich draws for ``section``: what the text report drew before PlainTable."""
    table = Table(title=Text(section.title), box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False,
                  padding=(0, 1), collapse_padding=True)
    name = 1 if section.header[0] == "#" else 0
    for i, col in enumerate(section.header):
        table.add_column(col, justify="right" if col in section.numeric else "left",
                         ratio=1 if i == name else None, overflow="fold",
                         no_wrap=col in section.numeric or col == "op",
                         min_width=NAME_LEAST if i == name else None)
    for row in section.rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


def _section(rng: random.Random) -> Section:
    n = rng.randint(1, 7)
    header = tuple(["#"] * rng.randint(0, 1) + [rng.choice(["model", "layer", "name"])]
                   + [rng.choice(["params", "MACs", "op", "share", "Spearman ρ", "front"]) + str(i)
                      for i in range(n - 1)])
    rows = tuple(tuple(rng.choice(WORDS) for _ in header) for _ in range(rng.randint(0, 6)))
    numeric = frozenset(h for h in header[1:] if rng.random() < 0.5)
    return Section(rng.choice(["Layers", "Rank correlations (3 models)", "a long title " * 8]), header, rows,
                   numeric)


def _text(renderable, width: int) -> str:
    return console_text(lambda c: c.print(renderable), width)


@pytest.mark.parametrize("seed", range(40))
def test_same_lines_as_rich_whenever_the_table_fits(seed):
    rng = random.Random(seed)
    compared = 0
    for _ in range(25):
        section = _section(rng)
        width = rng.randint(20, 160)
        cells = [section.header] + list(section.rows)
        widths = [max(len(r[i]) + r[i].count("模型") * 2 for r in cells) for i in range(len(section.header))]
        name = 1 if section.header[0] == "#" else 0
        widths[name] = max(widths[name], NAME_LEAST)
        if sum(widths) + 2 * len(widths) <= width:  # rich's table width with the name column at its least
            compared += 1
            assert _text(draw(section), width) == _text(rich_table(section), width)
    assert compared  # each seed compares some tables


def test_a_narrow_terminal_shows_every_number_whole():
    """Names shorter than NAME_LEAST: rich kept the name column 12 wide and cut the last
    columns' numbers short ("1,234" as "1,", "0" gone); the name column now gives way."""
    section = Section("Layers", ("name", "op", "params"), (("abcdefghij", "Conv", "1,234"), ("x", "Relu", "0")),
                      frozenset({"params"}))
    # name 10 + op 4 + params 6 = 20 cells, + 2 per column (padding, edges, dividers) = 26
    text = _text(draw(section), 26)
    assert " abcdefghij  Conv   1,234" in text.splitlines()
    assert " x           Relu       0" in text.splitlines()
    assert " x             Relu" in _text(rich_table(section), 26)  # rich's: the 0 is gone


def test_a_table_that_cannot_fit_folds_its_names_and_keeps_its_numbers():
    """Too wide at any width of the name column: its names fold (at "/"), as in a report with
    formulas; rich cut the numbers short."""
    section = Section("Layers", ("name", "op", "params"), (("a/" * 30 + "conv", "Conv", "1,234"),),
                      frozenset({"params"}))
    text = _text(draw(section), 30)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 30
    assert "1,234" in text and "".join(line.split()[0] for line in lines[4:-1] if line.strip()).startswith("a/a/")
    assert "1,234" not in _text(rich_table(section), 18)  # rich at a width the numbers fit in


def test_short_names_give_way_before_a_line_overflows():
    """The leaderboard of 1,000 models: names of 9, columns that need 84 at the least name width
    of 12 (4 + 12 + 5 + 6 + 6 + 9 + 8 + 12 + 5 = 67 cells, 16 between 9 columns, 1 edge)."""
    header = ("#", "model", "top-1", "params", "MACs", "density", "NetScore", "Ω/a/d", "front")
    row = ("1000", "m0838_cnn", "63.53", "5.57 K", "5.28 M", "1,376,481", "117.44", "1000/632/956", "M P")
    section = Section("Leaderboard", header, (row,), frozenset(header[2:8]))
    line = " 1000  m0838_cnn  63.53  5.57 K  5.28 M  1,376,481    117.44  1000/632/956  M P"
    assert line in _text(draw(section), 82).splitlines()
    # at 80 the line is one too wide: printed whole, not cropped (rich's console cut "M P" to "M")
    lines = console_text(lambda c: show(c, section), 80).splitlines()
    assert line in lines and lines[2].endswith("Ω/a/d  front")


def test_a_table_a_little_too_wide_folds_its_names_a_little():
    """Names of 46 and 48 columns in a table one column too wide: the name column gives 1 (only
    the 48-column name folds), it does not drop to NAME_FLOOR (20) and fold every row three times."""
    long, longer = "n_4 (model/layers.0/mlp/gate_proj_longer_name)", "n_3 (model/layers.0/self_attn/o_proj_longername)"
    assert (len(long), len(longer)) == (46, 48)
    header = ("#", "layer", "op", "MACs", "share", "cum.")
    rows = (("1", long, "MatMul", "131 K", "5.8%", "5.8%"), ("2", longer, "MatMul", "131 K", "5.8%", "11.6%"))
    lines = _text(draw(Section("Top", header, rows, frozenset({"#", "MACs", "share", "cum."}))), 80).splitlines()
    # 1 + 48 + 6 + 5 + 5 + 5 = 70 cells, 2 between each of 6 columns (10), 1 edge: 81 of 80
    assert any(long in line for line in lines) and max(len(line) for line in lines) == 80
    title, head, rule, rows_, folds = 1, 1, 1, 2, 1
    assert sum(1 for line in lines if line.strip()) == title + head + rule + rows_ + folds
