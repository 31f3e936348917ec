"""--device and --measure on analyze, hotspots and compare, in every format.

The device is a made-up TOML profile (1 GFLOP/s float32, 100 MB/s, no overhead) and the model
three layers whose estimate is arithmetic (see ``tiny``); measured times are never asserted,
only the structure of what --measure reports."""
import csv
import io
import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from onnxscore.cli import main

PROFILE = '''name = "toy"
sources = ["made up for the tests"]
[peak]
float32 = 1e9      # FLOP/s
[memory]
bandwidth = 1e8    # bytes/s
'''

# /body/mm: a[64, 256] @ w[256, 256]
MM_FLOPS = 2 * 64 * 256 * 256                      # 8,388,608 (a multiply-add is 2)
MM_BYTES = 4 * (64 * 256 + 64 * 256 + 256 * 256)   # 393,216: a read, y1 written, w read
MM_S = max(MM_FLOPS / 1e9, MM_BYTES / 1e8)         # 8.388608 ms, compute-bound (3.93 ms of memory)
# /body/relu: fused into the MatMul's epilogue, 0 s
# /head/t: a Transpose, no FLOPs, 64*256 floats read and written
T_BYTES = 4 * 2 * 64 * 256                         # 131,072
T_S = T_BYTES / 1e8                                # 1.31072 ms, memory-bound
TOTAL_S = MM_S + T_S                               # 9.699328 ms


def tiny(scale=1):
    w = numpy_helper.from_array(np.full((256, 256 * scale), 0.01, np.float32), "w")
    nodes = [helper.make_node("MatMul", ["a", "w"], ["y1"], name="/body/mm"),
             helper.make_node("Relu", ["y1"], ["y2"], name="/body/relu"),
             helper.make_node("Transpose", ["y2"], ["y"], name="/head/t", perm=[1, 0])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [64, 256])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [256 * scale, 64])], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture
def files(tmp_path):
    profile = tmp_path / "toy.toml"
    profile.write_text(PROFILE)
    model = tmp_path / "tiny.onnx"
    onnx.save_model(tiny(), str(model))
    wide = tmp_path / "wide.onnx"
    onnx.save_model(tiny(scale=2), str(wide))
    return str(model), str(profile), str(wide)


def run(*args):
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, res.output
    return res.stdout


def test_json_has_the_estimate(files):
    model, profile, _ = files
    data = json.loads(run("analyze", model, "--device", profile, "--format", "json"))
    est = data["estimate"]
    assert est["schema"] == "onnxscore.estimate/1" and est["device"]["name"] == "toy"
    assert est["seconds"] == pytest.approx(TOTAL_S) and est["complete"] and est["unknown"] == 0
    assert (est["compute_bound"], est["memory_bound"]) == (1, 1)
    layers = {x["name"]: x for x in est["layers"]}
    assert layers["/body/mm"]["seconds"] == pytest.approx(MM_S) and layers["/body/mm"]["bound"] == "compute"
    assert layers["/body/mm"]["flops"] == MM_FLOPS and layers["/body/mm"]["bytes"] == MM_BYTES
    assert layers["/body/relu"]["seconds"] == 0 and layers["/head/t"]["seconds"] == pytest.approx(T_S)
    assert {r["key"]: r["seconds"] for r in est["by_scope"]["rows"]} == pytest.approx({"body": MM_S, "head": T_S})
    assert "estimate" not in json.loads(run("analyze", model, "--format", "json"))


def test_text_has_the_latency_line_and_columns(files):
    model, profile, _ = files
    out = run("analyze", model, "--device", profile)
    assert "est. latency      9.7 ms on toy (roofline" in out
    assert "1 compute-bound, 1 memory-bound layer(s)" in out
    assert "Top 2 layers by estimated time on toy" in out
    for table in ("Top 1 layers by MACs", "Blocks at depth 1", "Op types", "All layers"):
        header = out.split(table, 1)[1].split("\n")[2]
        assert "est. ms" in header, table
    assert "8.39" in out and "1.31" in out
    assert "est." not in run("analyze", model)


def test_csv_and_markdown(files):
    model, profile, _ = files
    rows = list(csv.DictReader(io.StringIO(run("analyze", model, "--device", profile, "--format", "csv"))))
    first = rows[0]
    assert first["kind"] == "estimate" and first["name"] == "toy"
    assert float(first["est_ms"]) == pytest.approx(1e3 * TOTAL_S)
    layers = {r["name"]: r for r in rows if r["kind"] == "layer"}
    assert float(layers["/body/mm"]["est_ms"]) == pytest.approx(1e3 * MM_S) and layers["/body/mm"]["bound"] == "compute"
    assert layers["/head/t"]["bound"] == "memory"
    ops = {r["name"]: r for r in rows if r["kind"] == "op_type"}
    assert float(ops["Transpose"]["est_ms"]) == pytest.approx(1e3 * T_S)
    plain = run("analyze", model, "--format", "csv")
    assert "est_ms" not in plain.splitlines()[0]
    md = run("analyze", model, "--device", profile, "--format", "md")
    assert "| est. latency | ≥" not in md and "| est. latency | 9.7 ms on toy" in md
    assert "| est. ms |" in md and "est. %" in md


def test_html_has_the_estimate(files, tmp_path):
    model, profile, _ = files
    page = tmp_path / "r.html"
    run("analyze", model, "--device", profile, "--html", str(page))
    html = page.read_text()
    assert 'id="chart-top-est"' in html and 'id="table-top-est"' in html
    assert html.count(">est. ms<") >= 4  # top layers, top by estimate, blocks, op types, all layers
    assert f'data-value="{MM_S:.6g}"' in html


def test_hotspots_by_estimated_time(files):
    model, profile, _ = files
    data = json.loads(run("hotspots", model, "--device", profile, "--by", "est", "--format", "json"))
    assert [r["name"] for r in data["rows"]] == ["/body/mm", "/head/t"]
    assert data["rows"][0]["value"] == pytest.approx(MM_S) and data["rows"][0]["share"] == pytest.approx(MM_S / TOTAL_S)
    assert data["estimate"]["seconds"] == pytest.approx(TOTAL_S)
    text = run("hotspots", model, "--device", profile)
    assert "est. latency: 9.7 ms on toy" in text and "est. ms" in text
    rows = list(csv.DictReader(io.StringIO(run("hotspots", model, "--device", profile, "--format", "csv"))))
    assert rows[0]["bound"] == "compute"
    assert "est. ms" in run("hotspots", model, "--device", profile, "--format", "md")
    res = CliRunner().invoke(main, ["hotspots", model, "--by", "est"])
    assert res.exit_code == 2 and "--device" in res.stderr


def test_compare_latency_delta(files):
    model, profile, wide = files
    # wide: w is 256 x 512: MatMul FLOPs and the Transpose's bytes double
    wide_s = max(2 * MM_FLOPS / 1e9, 4 * (64 * 256 + 64 * 512 + 256 * 512) / 1e8) + 2 * T_S
    data = json.loads(run("compare", model, wide, "--device", profile, "--format", "json"))
    lat = data["latency"]["est_seconds"]
    assert lat["a"] == pytest.approx(TOTAL_S) and lat["b"] == pytest.approx(wide_s)
    assert lat["delta"] == pytest.approx(wide_s - TOTAL_S)
    text = run("compare", model, wide, "--device", profile)
    assert "est. latency (toy)" in text and "9.7 ms" in text and "+100.0%" in text
    assert "est_seconds" in run("compare", model, wide, "--device", profile, "--format", "csv")
    assert "est. latency (toy)" in run("compare", model, wide, "--device", profile, "--format", "md")


def test_bad_device_is_one_line(files):
    model, _, _ = files
    res = CliRunner().invoke(main, ["analyze", model, "--device", "no-such-board"])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "raspberry-pi-5" in res.stderr


# ---------------------------------------------------------------------------------------------
# --measure: structure only, never times

@pytest.fixture(scope="module")
def ort():
    return pytest.importorskip("onnxruntime", reason="onnxruntime is the optional extra onnxscore[measure]")


FEW = ("--measure", "--runs", "2", "--warmup", "0", "--threads", "1")


def test_measure_json_text_md_csv_html(ort, files, tmp_path):
    model, profile, _ = files
    data = json.loads(run("analyze", model, *FEW, "--format", "json"))
    m = data["measurement"]
    assert m["schema"] == "onnxscore.measurement/1" and m["unmapped"] == []
    assert m["optimized"]["runs"] == 2 and m["onnxruntime_version"] == ort.__version__
    assert [x["name"] for x in m["layers"]] == ["/body/mm", "/body/relu", "/head/t"]
    assert sum(x["share"] for x in m["layers"]) == pytest.approx(1.0)
    text = " ".join(run("analyze", model, *FEW, "--device", profile).split())  # lines unwrapped
    for piece in ("latency (measured) p50", "0 unmapped kernel(s)", "Measured time per layer (3 layers",
                  "time share", "MAC share", "GFLOP/s", "GB/s", "est. latency", f"onnxruntime {ort.__version__}"):
        assert piece in text, piece
    assert "Top 3 layers by measured time" in run("analyze", model, *FEW, "--no-layers")
    assert "latency (measured)" in run("analyze", model, *FEW, "--format", "md")
    rows = list(csv.DictReader(io.StringIO(run("analyze", model, *FEW, "--format", "csv"))))
    assert rows[0]["kind"] == "measurement" and float(rows[0]["measured_ms"]) > 0
    assert all(r["measured_ms"] for r in rows if r["kind"] == "layer")
    page = tmp_path / "m.html"
    run("analyze", model, *FEW, "--html", str(page))
    assert 'id="table-measured"' in page.read_text()


def test_measure_hotspots_and_compare(ort, files):
    model, _, wide = files
    data = json.loads(run("hotspots", model, *FEW, "--format", "json"))
    assert all(r["measured_seconds"] > 0 for r in data["rows"]) and data["measurement"]["unmapped"] == []
    lat = json.loads(run("compare", model, wide, *FEW, "--format", "json"))["latency"]["measured_p50_seconds"]
    assert lat["a"] > 0 and lat["b"] > 0 and lat["delta"] == pytest.approx(lat["b"] - lat["a"])


def test_measure_without_onnxruntime_names_the_extra(files, monkeypatch):
    import sys

    model, _, _ = files
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    res = CliRunner().invoke(main, ["analyze", model, "--measure"])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'onnxscore[measure]'" in lines[0]
