"""check's budget on time: max_latency_ms with a device profile, derived by hand.

One MatMul, y = a[64, 256] @ w[256, 256], on a made-up profile of 1 GFLOP/s float32 and
100 MB/s:
  FLOPs = 2 * 64 * 256 * 256                    = 8,388,608 -> 8.388608 ms of compute
  bytes = 4 * (64*256 + 64*256 + 256*256)        =   393,216 -> 3.93216 ms of memory
  estimate = max(8.388608, 3.93216)             = 8.388608 ms (compute-bound)
"""
import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from onnxscore.budget import ConfigError, load_config
from onnxscore.cli import main

ESTIMATE_MS = 2 * 64 * 256 * 256 / 1e9 * 1e3   # 8.388608

PROFILE = '''name = "toy"
sources = ["made up for the tests"]
[peak]
float32 = {peak}
[memory]
bandwidth = 1e8
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    w = numpy_helper.from_array(np.zeros((256, 256), np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["a", "w"], ["y"], name="mm")], "g",
                          [helper.make_tensor_value_info("a", TensorProto.FLOAT, [64, 256])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 256])], [w])
    onnx.save_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "mm.onnx"))
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "toy.toml").write_text(PROFILE.format(peak="1e9"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ONNXSCORE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def check(*args):
    return CliRunner().invoke(main, ["check", *args])


def test_passes_just_above_and_fails_just_below(project):
    res = check("mm.onnx", "--device", "profiles/toy.toml", "--max-latency-ms", "8.39")
    assert res.exit_code == 0, res.output
    res = check("mm.onnx", "--device", "profiles/toy.toml", "--max-latency-ms", "8.38")
    assert res.exit_code == 1
    line, = [x for x in res.stdout.splitlines() if "latency" in x]
    assert line == f"mm.onnx: estimated latency {ESTIMATE_MS:.3f} ms on toy exceeds budget 8.38 ms (+0%)"


def test_config_keys_with_a_per_model_override(project):
    (project / "pyproject.toml").write_text(
        '[tool.onnxscore]\nmax_latency_ms = 8.39\ndevice = "profiles/toy.toml"\n\n'
        '[[tool.onnxscore.budget]]\npath = "mm.onnx"\nmax_latency_ms = 8.0\n')
    res = check("mm.onnx", "--format", "json")
    assert res.exit_code == 1
    model, = json.loads(res.stdout)["models"]
    assert model["violations"][0]["figure"] == "latency"
    assert model["violations"][0]["value"] == pytest.approx(ESTIMATE_MS) and model["violations"][0]["limit"] == 8.0
    assert model["figures"]["latency_ms"] == pytest.approx(ESTIMATE_MS) and model["figures"]["latency_device"] == "toy"
    assert check("mm.onnx", "--max-latency-ms", "9").exit_code == 0  # the command line overrides the config
    md = check("mm.onnx", "--format", "md").stdout
    assert "| est. ms |" in md and "8.39 on toy" in md


def test_a_cached_result_never_hides_a_latency_violation(project):
    args = ("mm.onnx", "--device", "profiles/toy.toml", "--max-latency-ms", "8.39")
    assert check(*args).exit_code == 0
    assert "1 from cache" in check(*args).stdout
    # the profile is halved: 0.5 GFLOP/s, the estimate doubles to 16.78 ms; the cache key holds the profile
    (project / "profiles" / "toy.toml").write_text(PROFILE.format(peak="5e8"))
    res = check(*args)
    assert res.exit_code == 1 and "from cache" not in res.stdout
    assert f"estimated latency {2 * ESTIMATE_MS:.3f} ms" in res.stdout
    # a result cached without a device is not taken for one with a device
    assert check("mm.onnx", "--max-macs", "1G").exit_code == 0
    assert check("mm.onnx", "--device", "profiles/toy.toml", "--max-latency-ms", "8").exit_code == 1


def test_local_is_refused_in_one_line(project):
    res = check("mm.onnx", "--device", "local", "--max-latency-ms", "8")
    assert res.exit_code == 2
    line, = res.stderr.strip().splitlines()
    assert "'local'" in line and "profile" in line
    (project / ".onnxscore.toml").write_text('max_latency_ms = 8\ndevice = "local"\n')
    with pytest.raises(ConfigError, match="'local'"):
        load_config()


def test_a_limit_without_a_device_is_one_line(project):
    res = check("mm.onnx", "--max-latency-ms", "8")
    assert res.exit_code == 2
    assert "max_latency_ms = 8 needs a device" in res.stderr and "mm.onnx" in res.stderr
