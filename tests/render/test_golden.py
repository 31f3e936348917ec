"""Golden files: every rendering of a tiny scoped model, compared exactly.

The renderers only format what the Report holds; these files pin the layout. After an
intended change, run ``pytest tests/render/test_golden.py --update-goldens`` and review the diff.
"""
import pytest
from onnx import helper

import onnxscore
from onnxscore.compare import compare
from onnxscore.netscore import ACCURACY_METADATA_KEY
from onnxscore.render import render
from onnxscore.render.compare import render_comparison
from onnxscore.render.hotspots import render_hotspots
from tests.test_compare import net


@pytest.fixture(scope="module")
def report():
    m = net()
    helper.set_model_props(m, {ACCURACY_METADATA_KEY: "71.5"})
    return onnxscore.analyze(m)


@pytest.mark.parametrize("fmt, ext", [("text", "txt"), ("json", "json"), ("csv", "csv"), ("md", "md")])
def test_analyze(report, golden, fmt, ext):
    golden(f"analyze.{ext}", render([report], fmt, top=3, depth=2, **({"indent": True} if fmt == "json" else {})))


def test_compact_json_is_the_report_dict(report):
    """The compact JSON (orjson, layers written from their dataclasses) holds exactly what
    ``Report.to_dict`` does, and the indented one is the same document."""
    import json

    compact = render([report], "json", depth=2)
    assert "\n" not in compact.rstrip("\n")
    assert json.loads(compact) == json.loads(json.dumps(report.to_dict(2), default=str))
    assert json.loads(render([report], "json", depth=2, indent=True)) == json.loads(compact)


@pytest.mark.parametrize("fmt, ext", [("text", "txt"), ("json", "json"), ("csv", "csv"), ("md", "md")])
def test_hotspots(report, golden, fmt, ext):
    golden(f"hotspots.{ext}", render_hotspots([report], fmt, k=3, by="flops"))


@pytest.mark.parametrize("fmt, ext", [("text", "txt"), ("json", "json"), ("csv", "csv"), ("md", "md")])
def test_compare(report, golden, fmt, ext):
    golden(f"compare.{ext}", render_comparison(compare(report, onnxscore.analyze(net(c1=8)), 2), fmt, 5))


def test_json_with_an_integer_beyond_64_bits(report):
    """orjson cannot write an int over 64 bits (a count made from absurd dims, found by the
    fuzzer): the standard encoder writes that report instead, same document."""
    import dataclasses
    import json

    big = dataclasses.replace(report, totals=dataclasses.replace(report.totals, flops=2**70))
    assert json.loads(render([big], "json"))["totals"]["flops"] == 2**70
    assert json.loads(render([big], "json", indent=True)) == json.loads(render([big], "json"))


@pytest.mark.parametrize("fmt", ["text", "json", "csv", "md"])
def test_bytes_are_the_text_encoded(report, fmt):
    """What ``analyze -o`` writes (JSON straight from its encoder) is the rendering as UTF-8."""
    from onnxscore.render import render_bytes

    options = dict(top=3, depth=2, **({"indent": True} if fmt == "json" else {}))
    assert render_bytes([report], fmt, **options) == render([report], fmt, **options).encode()


def test_analyze_writes_the_same_bytes_to_a_file_and_to_stdout(tmp_path):
    import onnx
    from click.testing import CliRunner

    from onnxscore.cli import main

    path, out = str(tmp_path / "net.onnx"), tmp_path / "out.json"
    onnx.save(net(), path)
    to_stdout = CliRunner().invoke(main, ["analyze", path, "--format", "json"], catch_exceptions=False)
    CliRunner().invoke(main, ["analyze", path, "--format", "json", "-o", str(out)], catch_exceptions=False)
    assert out.read_bytes() == to_stdout.stdout_bytes
    assert to_stdout.stdout_bytes.decode() == render([onnxscore.analyze(path)], "json")
