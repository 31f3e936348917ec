"""The reproducers in ../shared/regressions (files that broke onnxscore once): each ends with a
report or a one-line message, exit 0-2, and opens no file outside the model's folder. Each runs
in its own process (a crash of a native library must not take the suite with it), from an
empty working folder. Skipped where the shared folder is not beside the repository."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REGRESSIONS = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "shared", "regressions")


def regression(name: str) -> str:
    path = os.path.abspath(os.path.join(REGRESSIONS, name))
    if not os.path.exists(path):
        pytest.skip(reason=f"{path} is not here (../shared/regressions beside the repository)")
    return path


def run(path: str, cwd) -> subprocess.CompletedProcess:
    # the timeout only keeps a hang from stalling the suite; nothing here measures speed
    return subprocess.run([sys.executable, "-m", "onnxscore", "analyze", path, "--format", "json"],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", [
    "masked_typeerror_nonutf8_location.onnx",
    "masked_validationerror_constantofshape_external_value.onnx",
    "memory_shape_inference_slice_steps_dim_2p40.onnx",
    "memory_shape_inference_constant_dims_vs_data.onnx",
    "timeout_ml_tree_depth_cycle.onnx",
    "memory_ml_tree_depth_bitflip.onnx",
    "timeout_gridsample_grid_last_dim.onnx",
    "segfault_shape_inference_labelencoder.onnx",
])
def test_regression_ends_cleanly(name, tmp_path):
    res = run(regression(name), tmp_path)
    assert res.returncode in (0, 1, 2), res.stderr[-500:]
    assert "Traceback" not in res.stderr
    if res.returncode == 2:
        assert len(res.stderr.strip().splitlines()) == 1


def test_non_utf8_external_location_is_a_warning(tmp_path):
    res = run(regression("masked_typeerror_nonutf8_location.onnx"), tmp_path)
    assert res.returncode == 0
    assert any("not a valid file name" in w for w in json.loads(res.stdout)["warnings"])


def test_grid_sample_with_an_impossible_grid_says_what_is_wrong(tmp_path):
    res = run(regression("timeout_gridsample_grid_last_dim.onnx"), tmp_path)
    layer = next(la for la in json.loads(res.stdout)["layers"] if la["op_type"] == "GridSample")
    assert layer["status"] == "error" and "1000003 coordinates" in layer["note"]


def test_external_constant_of_shape_value_is_never_read(tmp_path, monkeypatch):
    # with a fill.bin in the working folder, the old code read it (relative to the cwd)
    import onnxscore

    (tmp_path / "fill.bin").write_bytes(b"\0" * 64)
    monkeypatch.chdir(tmp_path)
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda p, *a, **k: opened.append(str(p)) or real_open(p, *a, **k))
    onnxscore.analyze(regression("masked_validationerror_constantofshape_external_value.onnx"))
    assert not any(p.endswith("fill.bin") for p in opened)


def test_a_crash_inside_onnx_shape_inference_is_contained(tmp_path):
    # ONNX's C++ inference segfaults on this LabelEncoder-for-ZipMap graph: it runs in a child
    # process, the analysis goes on with onnxscore's own shapes and says what happened
    res = run(regression("segfault_shape_inference_labelencoder.onnx"), tmp_path)
    assert res.returncode == 0
    assert any("crashed" in w for w in json.loads(res.stdout)["warnings"])


def test_contained_inference_keeps_an_outside_memory_cap(tmp_path):
    # under `ulimit -v` the child's cap may not exceed the hard limit: inference still runs
    import resource

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    model = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures", "tiny_resnet_torchscript.onnx")
    res = subprocess.run([sys.executable, "-m", "onnxscore", "analyze", model, "--format", "json"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, preexec_fn=cap)
    assert res.returncode == 0, res.stderr
    assert not any("shape inference failed" in w for w in json.loads(res.stdout)["warnings"])
