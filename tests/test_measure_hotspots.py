"""``onnxscore hotspots --measure --by time``: layers ranked by the time measured per layer.

The ranking, shares and columns are checked on a made-up measurement (made-up seconds, so exact);
the command itself runs onnxruntime on tests/test_cli_device.py's three-layer model, and only the
structure of what it prints is checked, never a time."""
import csv
import io
import json

import pytest
from click.testing import CliRunner

from onnxscore.cli import main
from onnxscore.measure import Latency, LayerTime, Measurement
from onnxscore.render.hotspots import render_hotspots
from onnxscore.walk import analyze
from tests.test_cli_device import files  # noqa: F401  (a fixture: model, profile, a wider model)

FEW = ("--measure", "--runs", "2", "--warmup", "1", "--threads", "1")




@pytest.fixture
def ort():
    return pytest.importorskip("onnxruntime", reason="onnxruntime is the optional extra onnxscore[measure]")


def made_up(report, seconds):
    """A measurement of ``report`` whose layers took ``seconds`` (layer name -> s)."""
    total = sum(seconds.values())
    macs = sum(x.macs or 0 for x in report.top_layers)
    layers = tuple(LayerTime(name=x.name, op_type=x.op_type, scope=x.scope, seconds=seconds[x.name], calls=1.0,
                             share=seconds[x.name] / total, macs=x.macs, mac_share=(x.macs or 0) / macs, flops=x.flops,
                             bytes=x.memory, flops_per_s=None, bytes_per_s=None)
                   for x in report.top_layers)
    lat = Latency.of([total])
    return Measurement(path=report.model.path, onnxruntime_version="9.9.9", provider="CPUExecutionProvider",
                       threads=1, inputs={}, optimized=lat, unoptimized=lat, layers=layers, nested=(), unmapped=(),
                       without_kernel=0, layer_seconds=total, coverage=1.0, spearman=None, mislead=())


def test_by_time_ranks_by_measured_seconds_with_shares(files):
    model, _, _ = files
    report = analyze(model)
    # the Transpose (no MACs) measured slowest: 3 ms of 5; the MatMul 1.5 ms; the Relu 0.5 ms
    m = made_up(report, {"/body/mm": 1.5e-3, "/body/relu": 0.5e-3, "/head/t": 3e-3})
    data = json.loads(render_hotspots([report], "json", k=2, by="time", measurements=[m]))
    assert data["by"] == "time"
    assert [(r["name"], r["value"], r["measured_seconds"]) for r in data["rows"]] == \
        [("/head/t", 3e-3, 3e-3), ("/body/mm", 1.5e-3, 1.5e-3)]
    assert [r["share"] for r in data["rows"]] == pytest.approx([0.6, 0.3])
    assert [r["cumulative"] for r in data["rows"]] == pytest.approx([0.6, 0.9])
    text = render_hotspots([report], "text", k=2, by="time", measurements=[m])
    assert "Top 2 layers by measured time (90% of the layers' time" in " ".join(text.split())
    rows = [line.split() for line in text.splitlines() if line.split()[:1] in (["1"], ["2"])]
    # #, layer, op, ms, share, cum., MAC share: the Transpose has no MACs, the MatMul all of them
    assert rows == [["1", "/head/t", "Transpose", "3", "60.0%", "60.0%", "0.0%"],
                    ["2", "/body/mm", "MatMul", "1.5", "30.0%", "90.0%", "100.0%"]]
    md = render_hotspots([report], "md", k=2, by="time", measurements=[m])
    assert "| # | layer | op | ms | share | cum. | MAC share |" in md
    out = list(csv.DictReader(io.StringIO(render_hotspots([report], "csv", k=2, by="time", measurements=[m]))))
    assert [(r["by"], r["name"], float(r["value"])) for r in out] == [("time", "/head/t", 3e-3),
                                                                      ("time", "/body/mm", 1.5e-3)]


def test_by_time_of_a_model_not_measured_is_empty(files):
    model, _, _ = files
    report = analyze(model)
    assert json.loads(render_hotspots([report], "json", by="time", measurements=[None]))["rows"] == []
    assert "no layer has any measured time" in render_hotspots([report], "text", by="time", measurements=[None])


def test_hotspots_measure_by_time(ort, files):
    model, profile, _ = files
    res = CliRunner().invoke(main, ["hotspots", model, *FEW, "--by", "time", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    values = [r["value"] for r in data["rows"]]
    assert {r["name"] for r in data["rows"]} == {"/body/mm", "/body/relu", "/head/t"}
    assert all(v > 0 for v in values) and values == sorted(values, reverse=True)  # slowest first, as measured
    assert [r["measured_seconds"] for r in data["rows"]] == values
    assert data["rows"][-1]["cumulative"] == pytest.approx(1.0)
    res = CliRunner().invoke(main, ["hotspots", model, *FEW, "--by", "time", "--device", profile])
    assert res.exit_code == 0, res.output
    head = next(line for line in res.stdout.splitlines() if line.lstrip().startswith("#")).split()
    assert head == ["#", "layer", "op", "ms", "est.", "ms", "share", "cum.", "MAC", "share"]


def test_by_time_needs_measure(files):
    model, _, _ = files
    res = CliRunner().invoke(main, ["hotspots", model, "--by", "time"])
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr == "onnxscore: error: --by time ranks by the time measured per layer: give --measure\n"
    help_text = " ".join(CliRunner().invoke(main, ["hotspots", "--help"]).output.split())
    assert "the time measured per layer (time, with --measure)" in help_text
