"""The PNG figure: a real PNG of a sensible size; matplotlib stays optional."""
from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest

import onnxscore
from onnxscore.errors import UsageError
from onnxscore.render.plot import BlockBar, block_bars, block_runs, depth_series, to_png
from tests.render.test_html import scoped_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from the IHDR chunk that follows the signature."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_MAGIC and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def resnet(light_dir):
    return onnxscore.analyze(os.path.join(light_dir, "light_resnet50.onnx"), accuracy=76.1)


@pytest.fixture(scope="module")
def tiny():
    return onnxscore.analyze(scoped_model())


def test_resnet50_png(resnet, tmp_path):
    pytest.importorskip("matplotlib", reason="the PNG needs matplotlib")
    path = tmp_path / "resnet50.png"
    to_png([resnet], str(path))
    width, height = png_size(path)
    assert width > 800 and 300 < height < width


def test_one_row_per_model(resnet, tiny, tmp_path):
    pytest.importorskip("matplotlib", reason="the PNG needs matplotlib")
    one, two = tmp_path / "one.png", tmp_path / "two.png"
    to_png([resnet], str(one))
    to_png([resnet, tiny], str(two), depth=2, top=5)
    assert png_size(two)[1] > 1.6 * png_size(one)[1]
    assert png_size(two)[0] == png_size(one)[0]


def test_missing_matplotlib(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(UsageError, match="pip install matplotlib"):
        to_png([tiny], str(tmp_path / "x.png"))
    assert not (tmp_path / "x.png").exists()


def test_import_does_not_need_matplotlib():
    code = ("import sys, onnxscore, onnxscore.render.plot, onnxscore.render.html; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_chart_data(tiny):
    """The depth series skips zero-cost nodes, its running sum ends at the total; block bars
    keep graph order."""
    points = depth_series(tiny)
    assert [p.layer.op_type for p in points] == ["Conv", "Relu", "Conv", "Conv", "GlobalAveragePool", "Gemm"]
    assert points[-1].cumulative == tiny.totals.macs
    assert [b.label for b in block_bars(tiny)] == [r.key for r in tiny.by_scope(1)]
    assert [run[0] for run in block_runs(points)] == [r.key for r in tiny.by_scope(1)]


def test_block_bars_repeats_and_limit(resnet):
    """ResNet-50 at depth 2: the identical bottlenecks after each stage's first draw as one bar
    (res2_N x2, res3_N x3, res4_N x5, res5_N x2); past the limit the lightest are summed; the
    bars always add up to the totals."""
    blocks = [r for r in resnet.by_scope(2) if r.macs or r.params]
    bars = block_bars(resnet, 2)
    assert {b.label: b.blocks for b in bars if b.kind == "repeated"} == {
        "res2/res2_N": 2, "res3/res3_N": 3, "res4/res4_N": 5, "res5/res5_N": 2}
    assert len(bars) == len(blocks) - (2 + 3 + 5 + 2) + 4
    limited = block_bars(resnet, 2, limit=6)
    assert len(limited) == 6 and limited[-1].kind == "other"
    for drawn in (bars, limited):
        assert sum(b.macs for b in drawn) == resnet.totals.macs
        assert sum(b.params for b in drawn) == resnet.totals.params
        assert sum(b.blocks for b in drawn) == len(blocks)
    assert BlockBar("x", 1, 1, 1).kind == "block"


ENCODER = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "tiny_encoder_dynamo.onnx")


def test_repeated_blocks_draw_as_one_bar():
    if not os.path.exists(ENCODER):
        pytest.skip(reason=f"fixture {ENCODER} is missing (fixtures/export_torch.py makes it)")
    report = onnxscore.analyze(ENCODER)
    repeated = [r for r in report.by_scope(1) if r.repeats > 1]
    bars = block_bars(report, 1)
    (bar,) = [b for b in bars if b.kind == "repeated"]
    assert (bar.label, bar.blocks) == (repeated[0].pattern, len(repeated))
    assert bar.macs == sum(r.macs for r in repeated) and bar.params == sum(r.params for r in repeated)
    assert len(bars) == len([r for r in report.by_scope(1) if r.macs or r.params]) - len(repeated) + 1
