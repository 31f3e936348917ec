"""ONNX's shape inference runs in a child process (onnxscore/inference.py): small models in one
long-lived child per process (``_InferenceServer``), reused from model to model, replaced after a
crash, never shared with a forked copy of the process, never left behind, its address space
capped; the reports are those of a child forked per model."""
from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxscore
from onnxscore import inference as I
from tests.test_regressions import regression

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the server is a forked child")

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
SQUEEZENET = os.path.join(LIGHT, "light_squeezenet.onnx")
SHUFFLENET = os.path.join(LIGHT, "light_shufflenet.onnx")
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


def _server_pid():
    server = I._InferenceServer._current
    return server.pid if server is not None and server.owner == os.getpid() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is not alive
        return f.read().split(")")[-1].split()[0] != "Z"


def _gone(pid: int, seconds: float = 30) -> bool:
    """Whether ``pid`` ends (a zombie has ended) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _alive(pid)


@pytest.fixture
def fresh_server():
    """No server before the test (the next model starts one), none left after it."""
    I._stop_inference_server()
    yield
    I._stop_inference_server()


def _relu_model() -> onnx.ModelProto:
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _relu_shape(model: onnx.ModelProto):
    return [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]


def test_one_server_for_one_model_after_another():
    onnxscore.analyze(SQUEEZENET)
    first = _server_pid()
    assert first is not None and _alive(first)
    onnxscore.analyze(SHUFFLENET)
    assert _server_pid() == first


def test_served_and_forked_inference_give_the_same_reports(monkeypatch):
    """The nine light models of onnx's wheel: every report the same, whether ONNX's inference ran
    in the server or in a child forked for the model (SERVED_NODES = 0 sends every model there)."""
    paths = sorted(glob.glob(os.path.join(LIGHT, "*.onnx")))
    assert len(paths) == 9
    served = [onnxscore.analyze(p).to_dict() for p in paths]
    monkeypatch.setattr(I, "SERVED_NODES", 0)
    pid = _server_pid()
    assert [onnxscore.analyze(p).to_dict() for p in paths] == served
    assert _server_pid() == pid  # not asked meanwhile


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the crash reproducer segfaults ONNX on Linux")
def test_a_crash_ends_the_server_and_the_next_model_gets_a_new_one():
    onnxscore.analyze(SQUEEZENET)
    before = _server_pid()
    crashed = onnxscore.analyze(regression("segfault_shape_inference_labelencoder.onnx"))
    assert "ONNX shape inference failed (it crashed (signal 11)); using declared shapes only" in crashed.warnings
    assert I._InferenceServer._current is None and not _alive(before)  # reaped, no zombie
    r = onnxscore.analyze(SQUEEZENET)
    assert not any("inference" in w for w in r.warnings)
    assert _server_pid() not in (None, before)


def test_a_server_gone_between_two_models_is_replaced_without_blaming_the_next():
    onnxscore.analyze(SQUEEZENET)
    before = _server_pid()
    os.kill(before, signal.SIGKILL)  # as the OOM killer would
    assert _gone(before)
    r = onnxscore.analyze(SQUEEZENET)
    assert not any("inference" in w for w in r.warnings)
    assert _server_pid() not in (None, before) and not os.path.exists(f"/proc/{before}")  # reaped


def test_an_interrupt_while_the_server_infers_stops_it(fresh_server):
    assert _relu_shape(I._contained_inference(_relu_model(), True)) == [2, 3]
    pid = _server_pid()

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        I._contained_inference(_relu_model(), True, meanwhile=interrupted)
    assert I._InferenceServer._current is None and not os.path.exists(f"/proc/{pid}")  # killed, reaped
    assert _relu_shape(I._contained_inference(_relu_model(), True)) == [2, 3]


def test_a_thread_that_finds_the_server_busy_forks_a_child(fresh_server):
    I._contained_inference(_relu_model(), True)
    pid = _server_pid()
    seen = []
    with I._InferenceServer._lock:  # as another thread in the middle of a request
        assert _relu_shape(I._contained_inference(_relu_model(), True, meanwhile=lambda: seen.append(1))) == [2, 3]
    assert seen == [1] and _server_pid() == pid


def test_the_server_holds_no_file_of_its_parent(fresh_server, tmp_path):
    with open(tmp_path / "held", "w") as held:
        I._contained_inference(_relu_model(), True)
        fds = os.listdir(f"/proc/{_server_pid()}/fd")
        assert str(held.fileno()) not in fds
    assert len(fds) == 5  # stdin, stdout and stderr (/dev/null), its two pipe ends


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the limit from /proc (Linux)")
def test_the_servers_address_space_is_capped(fresh_server, monkeypatch):
    """The server's RLIMIT_AS is what it mapped when started plus INFERENCE_MEMORY: here 256 MiB,
    and ONNX's data propagation holding a Slice's 2^26 steps (512 MiB of int64) fails in it;
    the next model is inferred as if nothing happened."""
    monkeypatch.setattr(I, "INFERENCE_MEMORY", 256 << 20)
    mapped = I._address_space()
    assert _relu_shape(I._contained_inference(_relu_model(), True)) == [2, 3]
    with open(f"/proc/{_server_pid()}/limits") as f:
        line = next(x for x in f if x.startswith("Max address space"))
    soft = int(line.split()[3])
    assert mapped < soft <= mapped + (256 << 20) + (64 << 20)  # (this process may have mapped a little since)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [8])
    steps = helper.make_tensor_value_info("steps", TensorProto.INT64, [2**26])
    g = helper.make_graph([helper.make_node("Slice", ["x", "s", "e", "a", "steps"], ["y"])], "g", [x, steps],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(np.array([0], np.int64), n) for n in ("s", "e", "a")])
    with pytest.raises(RuntimeError, match="bad_alloc|crashed"):
        I._contained_inference(helper.make_model(g), True)
    assert _relu_shape(I._contained_inference(_relu_model(), True)) == [2, 3]


def test_a_forked_copy_starts_its_own_server():
    onnxscore.analyze(SQUEEZENET)
    mine = _server_pid()
    requests = I._InferenceServer._current._requests
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the copy: holds nothing of ours, analyzes, reports its server's pid
        code = 1
        try:
            forgot = I._InferenceServer._current is None
            try:
                os.fstat(requests)
                forgot = False
            except OSError:
                pass
            onnxscore.analyze(SQUEEZENET)
            os.write(write_end, f"{forgot} {_server_pid()}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        forgot, theirs = f.read().split()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert forgot == "True" and theirs.isdigit() and int(theirs) != mine
    assert _gone(int(theirs))  # ended with the copy
    onnxscore.analyze(SHUFFLENET)  # ours still serves us
    assert _server_pid() == mine and _alive(mine)


SERVE_AND_EXIT = """
import sys
import onnxscore
from onnxscore import inference
onnxscore.analyze(sys.argv[1])
print(inference._InferenceServer._current.pid, flush=True)
"""


def test_the_server_ends_with_its_process():
    res = subprocess.run([sys.executable, "-c", SERVE_AND_EXIT, SQUEEZENET],
                         capture_output=True, text=True, timeout=120, env=ENV)
    assert res.returncode == 0, res.stderr
    assert _gone(int(res.stdout.split()[-1]))


SERVE_AND_WAIT = SERVE_AND_EXIT + """
import time
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_a_killed_process_takes_its_idle_server_along():
    """Killed between two models (SIGKILL: no exit handler runs), the process leaves no server."""
    proc = subprocess.Popen([sys.executable, "-c", SERVE_AND_WAIT, SQUEEZENET], stdout=subprocess.PIPE,
                            text=True, start_new_session=True, env=ENV)
    try:
        server = int(proc.stdout.readline())
        assert _alive(server)
        proc.kill()
        proc.wait()
        assert _gone(server)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.stdout.close()


def test_threads_share_one_process_and_all_get_their_shapes():
    """Analyses in threads (as a Dask worker runs them): one uses the server at a time, the
    others fork; every report is the one analyzed alone."""
    paths = sorted(glob.glob(os.path.join(LIGHT, "*.onnx")))
    alone = {p: onnxscore.analyze(p).to_dict() for p in paths}
    got, errors = {}, []

    def work(p):
        try:
            got[p] = onnxscore.analyze(p).to_dict()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and got == alone
