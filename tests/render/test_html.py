"""The HTML page: charts and tables are where the tests look for them, every figure in a table
is the Report's raw integer, nothing is fetched from the network, names are escaped."""
from __future__ import annotations

import os
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxscore
from onnxscore.render.html import nice_ticks, to_html
from onnxscore.render.summary import visible_layers

F = TensorProto.FLOAT
EVIL = '<script>alert("x")</script>'
CHARTS = ("chart-top-layers", "chart-blocks", "chart-depth")
TABLES = ("table-top-layers", "table-blocks", "table-op-types", "table-layers")


class Page(HTMLParser):
    """What the tests read from a page: elements by id, each table's header and body cells
    (attributes and text), the marks drawn inside each chart, every src/href."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.ids, self.tables, self.marks, self.refs = {}, {}, {}, []
        self._table = self._svg = self._cell = None
        self._in_body = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.refs += [(k, v) for k, v in attrs if k in ("src", "href")]
        if "id" in a:
            self.ids[a["id"]] = tag
        if tag == "svg":
            self._svg = a.get("id")
            self.marks[self._svg] = []
        elif self._svg and tag in ("rect", "path", "line"):
            self.marks[self._svg].append(a)
        if tag == "table" and "id" in a:
            self._table = a["id"]
            self.tables[self._table] = {"header": [], "rows": []}
        elif self._table and tag == "tbody":
            self._in_body = True
        elif self._table and tag == "tr" and self._in_body:
            self.tables[self._table]["rows"].append([])
        elif self._table and tag in ("td", "th"):
            self._cell = [a, ""]

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag == "svg":
            self._svg = None

    def handle_endtag(self, tag):
        if tag == "svg":
            self._svg = None
        elif tag == "table":
            self._table, self._in_body = None, False
        elif tag in ("td", "th") and self._cell is not None:
            attrs, text = self._cell
            table = self.tables[self._table]
            if self._in_body:
                table["rows"][-1].append((attrs, text.strip()))
            else:
                table["header"].append(text.strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def column(self, table_id: str, name: str):
        """The ``data-value`` of every row in column ``name``, as Python numbers (None if empty)."""
        table = self.tables[table_id]
        i = table["header"].index(name)
        out = []
        for row in table["rows"]:
            v = row[i][0]["data-value"]
            out.append(None if v == "" else (float(v) if "." in v or "e" in v else int(v)))
        return out

    def texts(self, table_id: str, name: str):
        table = self.tables[table_id]
        i = table["header"].index(name)
        return [row[i][1] for row in table["rows"]]


def w(name, shape):
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def scoped_model():
    """stem (Conv+Relu) -> block.0 and block.1 (Conv) -> head (pool, Flatten, Gemm), scoped by
    TorchScript-style node names; the costliest Conv has a name that is HTML."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="/stem/conv/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["b"], name="/stem/relu/Relu"),
        helper.make_node("Conv", ["b", "w2"], ["c"], name=EVIL, pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c", "w3"], ["d"], name="/block.1/conv/Conv", pads=[0, 0, 0, 0]),
        helper.make_node("GlobalAveragePool", ["d"], ["e"], name="/head/pool/GlobalAveragePool"),
        helper.make_node("Flatten", ["e"], ["f"], name="/head/flatten/Flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="/head/fc/Gemm", transB=1),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", F, [1, 10])],
                          [w("w1", [8, 3, 3, 3]), w("w2", [16, 8, 3, 3]), w("w3", [16, 16, 1, 1]),
                           w("fw", [10, 16]), w("fb", [10])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])


@pytest.fixture(scope="module")
def tiny():
    return onnxscore.analyze(scoped_model())


@pytest.fixture(scope="module")
def resnet(light_dir):
    return onnxscore.analyze(os.path.join(light_dir, "light_resnet50.onnx"), accuracy=76.1)


def check_page(report, depth=1, top=10):
    text = to_html([report], depth=depth, top=top)
    page = Page(text)
    for chart in CHARTS:
        assert page.ids.get(chart) == "svg", chart
        assert any(m.get("class", "").startswith(("bar", "bars")) for m in page.marks[chart]), chart
    for table in TABLES:
        assert page.ids.get(table) == "table", table
    ranked = report.hotspots(len(report.layers) + 1, "macs")
    hot = report.hotspots(top, "macs")
    assert len(page.tables["table-top-layers"]["rows"]) == min(top, len(ranked))
    assert page.column("table-top-layers", "MACs") == [h.value for h in hot]
    assert page.column("table-top-layers", "params") == [h.layer.params for h in hot]
    assert page.column("table-top-layers", "FLOPs") == [h.layer.flops for h in hot]
    assert page.column("table-top-layers", "share") == pytest.approx([h.share for h in hot], rel=1e-5)
    assert page.texts("table-top-layers", "layer") == [h.layer.name for h in hot]

    blocks = report.by_scope(depth)
    assert len(page.tables["table-blocks"]["rows"]) == len(blocks)
    assert page.texts("table-blocks", "block") == [r.key for r in blocks]
    for column, field in (("layers", "count"), ("params", "params"), ("MACs", "macs"), ("FLOPs", "flops"),
                          ("activations", "activation_bytes"), ("weights", "weight_bytes")):
        assert page.column("table-blocks", column) == [getattr(r, field) for r in blocks], column

    ops = report.by_op_type()
    assert len(page.tables["table-op-types"]["rows"]) == len(ops)
    assert page.texts("table-op-types", "op type") == [r.key for r in ops]
    for column, field in (("layers", "count"), ("params", "params"), ("MACs", "macs"), ("FLOPs", "flops")):
        assert page.column("table-op-types", column) == [getattr(r, field) for r in ops], column

    shown, _ = visible_layers(report)
    assert len(page.tables["table-layers"]["rows"]) == len(shown)
    assert page.column("table-layers", "MACs") == [x.macs for x in shown]
    assert page.column("table-layers", "params") == [x.params for x in shown]
    assert page.column("table-layers", "bytes moved") == [x.memory for x in shown]
    return text, page


def test_tiny_page(tiny):
    assert len(tiny.by_scope(1)) == 4  # stem, <script>alert("x")<, block.1, head
    check_page(tiny)


def test_tiny_page_top_larger_than_ranked(tiny):
    _, page = check_page(tiny, top=50)
    assert len(page.tables["table-top-layers"]["rows"]) == 4  # 3 Conv + Gemm have MACs


def test_resnet50_page(resnet):
    text, page = check_page(resnet)
    assert resnet.top_layers[0].macs == 0  # weight makers first: the depth chart skips them
    assert "175 layers that do work" in text
    assert page.column("table-top-layers", "MACs")[0] == 118013952  # conv1: 1*64*112*112*3*7*7


def test_resnet50_depth_two(resnet):
    check_page(resnet, depth=2, top=5)


def test_no_network_references(resnet):
    text = to_html([resnet])
    page = Page(text)
    assert not [ref for ref in page.refs if re.match(r"\s*(https?:)?//", ref[1])]
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.IGNORECASE)
    assert "@import" not in text and "url(" not in text and "<link" not in text
    assert text.count("<script") == 1 and "<script src" not in text  # the inline sorter only


def test_names_are_escaped(tiny):
    text = to_html([tiny])
    assert EVIL not in text and "<script>alert" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    page = Page(text)
    assert EVIL in page.texts("table-top-layers", "layer")  # the name reads back unchanged
    assert page.ids["chart-top-layers"] == "svg"


def test_several_reports_one_page(tiny, resnet):
    text = to_html([tiny, resnet])
    assert text.count("<!DOCTYPE html>") == 1
    assert 'id="model-0"' in text and 'id="model-1"' in text
    assert 'href="#model-1"' in text
    for chart in CHARTS:
        assert text.count(f'<svg id="{chart}"') == 2


def test_charts_without_macs():
    """A model with no contraction draws empty charts with a message, not a broken page."""
    node = helper.make_node("Relu", ["x"], ["y"], name="relu")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", F, [1, 4])],
                          [helper.make_tensor_value_info("y", F, [1, 4])])
    report = onnxscore.analyze(helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)]))
    page = Page(to_html([report]))
    for chart in CHARTS[:2]:
        assert page.ids[chart] == "svg"
    assert page.tables["table-top-layers"]["rows"] == []
    assert len(page.tables["table-op-types"]["rows"]) == 1


def test_symbolic_costs_are_polynomials_not_unknowns():
    """x [1, S, 4] MatMul a [4, 8] weight: 1*S*4*8 = 32*S MACs and 64*S FLOPs in every table
    (not '?', not the exact part alone), no share of a polynomial total, no 'lower bound'
    callout, and charts that say they need --dim."""
    from tests.test_compare import projection

    report = onnxscore.analyze(projection(8))
    text = to_html([report])
    page = Page(text)
    assert page.texts("table-layers", "MACs") == ["32*S"] and page.column("table-layers", "MACs") == [None]
    assert page.texts("table-layers", "FLOPs") == ["64*S"]
    assert page.texts("table-top-layers", "MACs") == ["32*S"] and page.texts("table-top-layers", "share") == [""]
    assert page.texts("table-blocks", "MACs") == ["32*S"] and page.texts("table-blocks", "MACs share") == [""]
    assert page.texts("table-op-types", "MACs") == ["32*S"] and page.texts("table-op-types", "FLOPs") == ["64*S"]
    assert "exact polynomials in S" in text and "lower bounds" not in text
    for chart in CHARTS:
        assert page.ids[chart] == "svg" and page.marks[chart] == []  # no bar drawn from a partial sum
    assert text.count("give --dim NAME=VALUE to chart them") == len(CHARTS) * 2  # (the title and the text)
    at = Page(to_html([onnxscore.analyze(projection(8), {"S": 10})]))  # S = 10: 320 MACs, numbers again
    assert at.column("table-layers", "MACs") == [320] and at.column("table-top-layers", "share") == [1.0]


@pytest.mark.parametrize("top, expected", [
    (0, [0, 1]),
    (118013952, [0, 50e6, 100e6, 150e6]),  # steps of 1, 2, 2.5 or 5 x 10^k
    (0.586, [0, 0.2, 0.4, 0.6]),
    (7, [0, 2, 4, 6, 8]),
])
def test_nice_ticks(top, expected):
    ticks = nice_ticks(top, 4 if top > 100 else 5)
    assert ticks == pytest.approx(expected)
    assert ticks[-1] >= top
