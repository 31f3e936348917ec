"""The PNG figure: a real PNG of a sensible size; matplotlib stays optional."""
from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest

import onnxscore
from onnxscore.errors import UsageError
from onnxscore.render.plot import block_bars, block_runs, depth_series, to_png
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
    assert [r.key for r in block_bars(tiny)] == [r.key for r in tiny.by_scope(1)]
    assert [run[0] for run in block_runs(points)] == [r.key for r in tiny.by_scope(1)]
