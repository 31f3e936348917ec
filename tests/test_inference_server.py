"""ONNX's shape inference for small models runs in one long-lived child per process
(onnxscore/model.py, ``_InferenceServer``): reused from model to model, replaced after a crash,
never shared with a forked copy of the process, never left behind."""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import time

import onnx
import pytest

import onnxscore
from onnxscore import model as M
from tests.test_regressions import regression

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the server is a forked child")

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def _server_pid():
    server = M._InferenceServer._current
    return server.pid if server is not None and server.owner == os.getpid() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is not alive
        return f.read().split(")")[-1].split()[0] != "Z"


def test_one_server_for_one_model_after_another():
    onnxscore.analyze(os.path.join(LIGHT, "light_squeezenet.onnx"))
    first = _server_pid()
    assert first is not None and _alive(first)
    onnxscore.analyze(os.path.join(LIGHT, "light_shufflenet.onnx"))
    assert _server_pid() == first


def test_served_and_forked_inference_give_the_same_reports(monkeypatch):
    """The nine light models: every report the same, whether ONNX's inference ran in the
    server or in a child forked for the model (SERVED_NODES = 0 sends every model there)."""
    paths = sorted(glob.glob(os.path.join(LIGHT, "*.onnx")))
    assert len(paths) == 9
    served = [onnxscore.analyze(p).to_dict() for p in paths]
    monkeypatch.setattr(M, "SERVED_NODES", 0)
    assert [onnxscore.analyze(p).to_dict() for p in paths] == served


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the crash reproducer segfaults ONNX on Linux")
def test_a_crash_ends_the_server_and_the_next_model_gets_a_new_one():
    onnxscore.analyze(os.path.join(LIGHT, "light_squeezenet.onnx"))
    before = _server_pid()
    crashed = onnxscore.analyze(regression("segfault_shape_inference_labelencoder.onnx"))
    assert any("crashed (signal" in w for w in crashed.warnings)
    assert M._InferenceServer._current is None and not _alive(before)  # reaped, no zombie
    r = onnxscore.analyze(os.path.join(LIGHT, "light_squeezenet.onnx"))
    assert not any("inference" in w for w in r.warnings)
    assert _server_pid() not in (None, before)


def test_a_forked_copy_starts_its_own_server():
    onnxscore.analyze(os.path.join(LIGHT, "light_squeezenet.onnx"))
    mine = _server_pid()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the copy: analyze, report its server's pid
        code = 1
        try:
            onnxscore.analyze(os.path.join(LIGHT, "light_squeezenet.onnx"))
            os.write(write_end, str(_server_pid()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        theirs = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert theirs.isdigit() and int(theirs) != mine
    onnxscore.analyze(os.path.join(LIGHT, "light_shufflenet.onnx"))  # ours still serves us
    assert _server_pid() == mine and _alive(mine)


SERVE_AND_EXIT = """
import os, sys
import onnxscore
from onnxscore import model as M
onnxscore.analyze(sys.argv[1])
print(M._InferenceServer._current.pid, flush=True)
"""


def test_the_server_ends_with_its_process():
    res = subprocess.run([sys.executable, "-c", SERVE_AND_EXIT, os.path.join(LIGHT, "light_squeezenet.onnx")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    pid = int(res.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")
