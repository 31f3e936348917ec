"""The result cache under two ``onnxscore check`` processes at once, with no timing assumption.

Two runs start together on one cold cache (``ONNXSCORE_CACHE_DIR``) over 20 distinct models:
however their reads and writes interleave, both must exit as the budget says, report the same
figures (the ones written below as arithmetic), leave every model cached for a third run, and
leave an SQLite file that passes ``PRAGMA integrity_check``.
"""
import json
import os
import sqlite3
import subprocess
import sys

import pytest
from onnx import TensorProto, helper

from tests.opmodels import weight

WIDTHS = range(1, 21)  # 20 models: one conv each, Cout = width


def macs(width: int) -> int:
    return 1 * width * 6 * 6 * 3 * 3 * 3  # N*Cout*Ho*Wo*Cin*Kh*Kw, x 1x3x8x8, 3x3 kernel, no padding


BUDGET = macs(10)  # widths 11..20 are over


def conv_model(width: int):
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3])
    graph = helper.make_graph([node], f"conv{width}",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [weight("w", [width, 3, 3, 3])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


@pytest.fixture
def project(tmp_path):
    (tmp_path / "pyproject.toml").write_text(f"[tool.onnxscore]\nmax_macs = {BUDGET}\n")
    (tmp_path / "models").mkdir()
    paths = []
    for w in WIDTHS:
        rel = f"models/conv{w:02d}.onnx"
        (tmp_path / rel).write_bytes(conv_model(w).SerializeToString())
        paths.append(rel)
    return tmp_path, paths


def start(folder, cache, paths):
    env = dict(os.environ, ONNXSCORE_CACHE_DIR=str(cache))
    return subprocess.Popen([sys.executable, "-m", "onnxscore", "check", "--format", "json", *paths],
                            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc):
    out, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 1), f"exit {proc.returncode}:\n{err}"
    data = json.loads(out)
    assert data["errors"] == []
    return proc.returncode, {m["path"]: m for m in data["models"]}


def test_two_runs_at_once_share_one_cache(project, tmp_path):
    folder, paths = project
    cache = tmp_path / "cache"
    a, b = start(folder, cache, paths), start(folder, cache, paths)
    (code_a, models_a), (code_b, models_b) = finish(a), finish(b)

    assert code_a == code_b == 1  # widths 11..20 exceed the budget
    figures_a = {p: m["figures"] for p, m in models_a.items()}
    figures_b = {p: m["figures"] for p, m in models_b.items()}
    assert figures_a == figures_b
    assert sorted(figures_a) == paths
    for w, path in zip(WIDTHS, paths):
        assert figures_a[path]["macs"] == macs(w), path
        assert figures_a[path]["params"] == w * 3 * 3 * 3, path  # Cout*Cin*Kh*Kw
        assert models_a[path]["ok"] is models_b[path]["ok"] is (w <= 10), path

    code_c, models_c = finish(start(folder, cache, paths))
    assert code_c == 1
    assert {p: m["cached"] for p, m in models_c.items()} == {p: True for p in paths}
    assert {p: m["figures"] for p, m in models_c.items()} == figures_a

    db = sqlite3.connect(cache / "results.sqlite")
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("SELECT COUNT(*) FROM results").fetchone() == (len(paths),)
    finally:
        db.close()
