"""Long tables of layers and blocks in the text and Markdown reports: the first ``max_rows`` rows
in graph order and a note that says how many there are; ``max_rows=0`` and the machine formats
keep every row."""
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import onnxscore
from onnxscore.cli import main
from onnxscore.render import MAX_ROWS, render

N = 7  # MatMuls, one a block


def chain(n: int = N):
    """``x [1, 4]`` through n MatMuls by a 4 x 4 weight, node i named ``/blk{i}/MatMul`` (block
    ``blk{i}`` at depth 1): each 1*4*4 = 16 MACs and 16 parameters."""
    nodes, weights, x = [], [], "x"
    for i in range(n):
        weights.append(numpy_helper.from_array(np.ones((4, 4), np.float32), f"blk{i}.w"))
        nodes.append(helper.make_node("MatMul", [x, f"blk{i}.w"], [f"y{i}"], name=f"/blk{i}/MatMul"))
        x = f"y{i}"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 4])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def layer_rows(text: str):
    """The layer names of the per-layer table, in order (text or Markdown)."""
    table = text[text.index("All layers"):]
    return re.findall(r"^\|? ?(/blk\d+/MatMul)\b", table, flags=re.M)


def block_rows(text: str):
    table = text[text.index("Blocks at depth 1"):text.index("Op types")]
    return re.findall(r"^\|? ?(blk\d+)\b", table, flags=re.M)


@pytest.fixture(scope="module")
def report():
    r = onnxscore.analyze(chain())
    assert (r.totals.params, r.totals.macs) == (N * 16, N * 16)  # 7 x 16
    return r


@pytest.mark.parametrize("fmt", ["text", "md"])
def test_the_first_rows_and_a_note_that_counts_them_all(report, fmt):
    out = render([report], fmt, max_rows=3)
    assert layer_rows(out) == ["/blk0/MatMul", "/blk1/MatMul", "/blk2/MatMul"]
    assert block_rows(out) == ["blk0", "blk1", "blk2"]
    flat = " ".join(out.split())  # (the text report wraps the note at 80 columns)
    assert "The first 3 of 7 layers (graph order)" in flat and "The first 3 of 7 blocks (graph order)" in flat
    assert "All layers (7)" in out and "Blocks at depth 1 (7)" in out  # the titles count every row
    assert "MatMul 7 112 112" in " ".join(re.sub(r"[|]", " ", out).split())  # op types: all 7 (7 x 16)


@pytest.mark.parametrize("fmt", ["text", "md"])
@pytest.mark.parametrize("max_rows", [0, N, MAX_ROWS])
def test_every_row_when_they_fit_or_with_no_limit(report, fmt, max_rows):
    out = render([report], fmt, max_rows=max_rows)
    assert layer_rows(out) == [f"/blk{i}/MatMul" for i in range(N)]
    assert block_rows(out) == [f"blk{i}" for i in range(N)]
    assert "The first" not in out


def test_the_html_tables(report):
    from onnxscore.render.html import to_html
    from tests.render.test_html import Page

    page = Page(to_html([report], max_rows=3))
    assert page.texts("table-layers", "layer") == ["/blk0/MatMul", "/blk1/MatMul", "/blk2/MatMul"]
    assert page.texts("table-blocks", "block") == ["blk0", "blk1", "blk2"]
    assert len(page.tables["table-op-types"]["rows"]) == 1  # MatMul: op types are never cut
    every = Page(to_html([report], max_rows=0))
    assert len(every.tables["table-layers"]["rows"]) == len(every.tables["table-blocks"]["rows"]) == N
    html = " ".join(to_html([report], max_rows=3).split())
    assert "The first 3 of 7 layers (graph order)" in html and "The first 3 of 7 blocks (graph order)" in html


def test_the_cli_option_and_the_machine_formats(tmp_path):
    path = tmp_path / "chain.onnx"
    path.write_bytes(chain().SerializeToString())
    res = CliRunner().invoke(main, ["analyze", str(path), "--max-rows", "2"])
    assert res.exit_code == 0 and layer_rows(res.stdout) == ["/blk0/MatMul", "/blk1/MatMul"]
    res = CliRunner().invoke(main, ["analyze", str(path), "--max-rows", "2", "--format", "json"])
    assert res.exit_code == 0 and len(json.loads(res.stdout)["layers"]) == N
    res = CliRunner().invoke(main, ["analyze", str(path), "--max-rows", "2", "--format", "csv"])
    assert res.exit_code == 0 and sum(line.split(",")[1] == "layer" for line in res.stdout.splitlines()) == N
    res = CliRunner().invoke(main, ["analyze", str(path), "--max-rows", "-1"])
    assert res.exit_code == 2 and "--max-rows" in res.stderr
