"""The Markdown report renders as GitHub-flavoured Markdown: tables, the long one folded."""
import re

from markdown_it import MarkdownIt

import onnxscore
from onnxscore.render import render
from tests.test_compare import net


def _html(md: str) -> str:
    # CommonMark plus GFM tables, as GitHub renders a PR comment; raw <details> passes through
    return MarkdownIt("commonmark").enable("table").render(md)


def test_markdown_structure():
    r = onnxscore.analyze(net())
    md = render([r], "md", top=3, depth=1)
    lines = md.splitlines()
    assert lines[0] == "### onnxscore: `<model>`"
    # the summary comes first, then the hotspots; the per-layer table is folded last
    assert md.index("| parameters |") < md.index("**Top 3 layers by MACs") < md.index("<details>")
    html = _html(md)
    tables = html.count("<table>")
    assert tables == 5  # summary, top layers, blocks, op types, all layers
    assert "<details><summary>All layers (6; 1 zero-cost hidden" in html
    # every table row has as many cells as its header
    for block in re.findall(r"((?:^\|.*\|\n)+)", md, flags=re.M):
        widths = {row.count(" | ") for row in block.splitlines() if not row.startswith("|---")}
        assert len(widths) == 1, block
    body = html[html.index("<details>"):]
    assert "<td>/features/conv2/Conv</td>" in body  # the folded table is real Markdown, rendered


def test_pipes_and_angle_brackets_in_names_are_escaped():
    m = net()
    m.graph.node[1].name = "a|b<script>"
    html = _html(render([onnxscore.analyze(m)], "md"))
    assert "<script>" not in html and "a|b" in html
