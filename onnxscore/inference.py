"""ONNX's shape inference, contained: run in a child process, so that a crash of ONNX's C++ code
(a segfault on a malformed ai.onnx.ml graph) or a runaway allocation ends that child, not the
analysis.

A small model goes to this process's :class:`_InferenceServer`, one long-lived child sent one
model after another through a pipe (forking costs more than a small model's inference); a large
one to a child forked for it, which inherits the model instead of having it serialized on the
way. Either child dies with this process (``PR_SET_PDEATHSIG``), never sees a Ctrl-C (this
process stops it), writes nowhere, and has its address space capped. Without fork (Windows),
inference runs inline, contained in nothing.
"""
from __future__ import annotations

import atexit
import contextlib
import faulthandler
import functools
import os
import pickle
import signal
import struct
import sys
import threading
from typing import Callable, List, Optional, Tuple

import onnx
from onnx import ModelProto, TensorProto

try:  # imported here, not in each forked child (1.7 ms a child)
    import resource
except ImportError:  # Windows: no fork, no limits
    resource = None


# An integer tensor declared larger than this is no shape computation: ONNX's data
# propagation would try to hold its values (2^40 of them for a corrupted Slice input).
MAX_PROPAGATED = 1 << 24
_INTEGER_TYPES = {TensorProto.INT64, TensorProto.INT32, TensorProto.INT16, TensorProto.INT8,
                  TensorProto.UINT64, TensorProto.UINT32, TensorProto.UINT16, TensorProto.UINT8}

# Memory the contained ONNX inference may add to its process's address space: far more than
# any real model's inference needs, far less than a runaway allocation.
INFERENCE_MEMORY = 8 << 30

# Models served by the long-lived inference child: up to this many nodes and serialized bytes
# (weights above model.KEEP_VALUES_UP_TO elements are dropped when read, so this is mostly
# graph). Past them, a child forked for the model inherits it instead of having it serialized
# on the way, and the server keeps no large inference's memory. onnxscore.analyze of
# benchmarks/scale.py's models, one after another: served 25-30 % faster at 1,000 nodes, even
# within 10-15 % at 5,000 to 20,000, slower at 50,000 (the residual CNN 2.8 s, forked 2.2 s).
SERVED_NODES = 5_000
SERVED_BYTES = 8 << 20

# What ONNX's inference may change in a graph: its inputs' types (a subgraph's), its outputs'
# and value_info.
_INFERRED_FIELDS = ("input", "output", "value_info")

_HEADER = struct.Struct("<QB")  # a request: the serialized model's length; flags (see _inferred_payload)
_LENGTH = struct.Struct("<Q")  # an answer's length; in an answer with a table, the graph's length


def infer_shapes(model: ModelProto, subgraphs: Optional[bool] = None,
                 meanwhile: Optional[Callable[[bool], None]] = None,
                 tables: Optional[list] = None) -> Tuple[ModelProto, List[str]]:
    """ONNX shape inference with data propagation (without it when an integer tensor is
    declared too large for a shape computation), contained in a child process; on failure or
    a crash, keep the declared shapes (onnxscore's own shapes stage still runs). ``subgraphs``:
    whether any node holds a graph, if known; when none does (and there are no functions),
    the child returns only what inference adds, and ``model`` itself is returned with it in
    place. ``meanwhile(in_place)`` runs while the child infers, told whether ``model`` is the
    one returned if inference succeeds. ``tables``: see :func:`_contained_inference` (the
    tensor types are appended to it when the child read them)."""
    huge = _huge_integer_tensor(model)
    warnings = [f"integer tensor {huge!r} is declared with over {MAX_PROPAGATED:,} elements: ONNX's "
                "data propagation skipped"] if huge else []
    graph_only = subgraphs is False and not model.functions and not model.training_info
    try:
        return _contained_inference(model, huge is None, graph_only,
                                    meanwhile and functools.partial(meanwhile, graph_only), tables), warnings
    except Exception as e:  # onnx raises several types, incl. plain RuntimeError
        return model, warnings + [f"ONNX shape inference failed ({_short(e)}); using declared shapes only"]


def _huge_integer_tensor(model: ModelProto) -> Optional[str]:
    g = model.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and tt.elem_type in _INTEGER_TYPES:
            n = 1
            for d in tt.shape.dim:
                n *= d.dim_value if d.HasField("dim_value") else 1
            if n > MAX_PROPAGATED:
                return vi.name
    return None


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:120] if text else type(e).__name__


def _contained_inference(model: ModelProto, data_prop: bool, graph_only: bool = False,
                         meanwhile: Optional[Callable[[], None]] = None,
                         tables: Optional[list] = None) -> ModelProto:
    """ONNX's C++ shape inference in a child process (see the module's docstring); inline where
    fork is not available. Raises RuntimeError with ONNX's message, or "it crashed (signal N)".

    ``graph_only``, for a model without subgraphs, functions or training graphs (where ONNX's
    inference changes nothing but the main graph's inputs, outputs and value_info): the child
    sends only those, and they replace ``model``'s own, in place; not the whole model, weights
    included, both ways through the pipe. ``meanwhile`` runs in this process while the child
    infers (without fork, not at all). ``tables``, with ``graph_only``: the child also reads
    the graph's tensor types into the table of the shapes stage (name -> (shape, dtype), see
    :func:`onnxscore.shapes.engine.value_infos`), appended to ``tables``, and sends that
    instead of the value_info, which stays out of ``model``: at 200,000 tensors, reading them
    costs half a second, better spent in the child while this process reads the nodes."""
    if not hasattr(os, "fork"):
        return _infer(model, data_prop)
    flags = int(data_prop) | 2 * int(graph_only) | 4 * int(graph_only and tables is not None)
    payload = None
    if len(model.graph.node) <= SERVED_NODES and model.ByteSize() <= SERVED_BYTES:
        payload = _InferenceServer.infer(model, flags, meanwhile)  # None: busy with another thread's
    if payload is None:
        payload = _forked_inference(model, flags, meanwhile)
    if payload[:2] != b"ok":
        raise RuntimeError(payload[2:].decode("utf-8", "replace") or "no result")
    if graph_only:  # parsed in place (the bytes are our child's own serialization)
        body = memoryview(payload)[2:]
        if flags & 4:
            size = _LENGTH.unpack(body[:_LENGTH.size])[0]
            tables.append(pickle.loads(body[_LENGTH.size + size:]))
            body = body[_LENGTH.size:_LENGTH.size + size]
        for name in _INFERRED_FIELDS:
            model.graph.ClearField(name)
        model.graph.MergeFromString(body)
        return model
    inferred = ModelProto()
    inferred.ParseFromString(payload[2:])
    return inferred


def _infer(model: ModelProto, data_prop: bool) -> ModelProto:
    return onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=data_prop)


def _inferred_payload(model: ModelProto, flags: int) -> bytes:
    """In a child: b"ok" and the inferred model, or b"no" and why, in a line. ``flags``: 1,
    data propagation; 2, the main graph's inferred fields alone; 4, with 2, the value_info
    as the shapes stage's table instead: the graph's length, the graph, the pickled table
    (see :func:`_contained_inference`)."""
    try:
        inferred = _infer(model, bool(flags & 1))
        if flags & 2:
            inferred = inferred.graph
            for f, _ in inferred.ListFields():
                if f.name not in _INFERRED_FIELDS:
                    inferred.ClearField(f.name)
        if flags & 4:
            from onnxscore.shapes.engine import value_infos

            table = pickle.dumps(value_infos(inferred), protocol=pickle.HIGHEST_PROTOCOL)
            inferred.ClearField("value_info")
            graph = inferred.SerializeToString()
            return b"ok" + _LENGTH.pack(len(graph)) + graph + table
        return b"ok" + inferred.SerializeToString()
    except BaseException as e:  # noqa: BLE001 - reported to the parent as text
        return b"no" + _short(e).encode("utf-8", "replace")


# --------------------------------------------------------------------------------------------
# A child forked for one model


def _forked_inference(model: ModelProto, flags: int, meanwhile: Optional[Callable[[], None]]) -> bytes:
    """The payload of :func:`_inferred_payload`, from a child forked for this model."""
    read_end, write_end = os.pipe()

    def body() -> None:
        os.close(read_end)
        payload = _inferred_payload(model, flags)
        with os.fdopen(write_end, "wb") as out:
            out.write(payload)

    try:
        pid, masked = _fork_child(body)
    except BaseException:
        os.close(read_end)
        os.close(write_end)
        raise
    os.close(write_end)
    inp = os.fdopen(read_end, "rb")
    try:
        _unblock_interrupts(masked)  # a Ctrl-C of the meantime is raised here
        if meanwhile is not None:
            meanwhile()
        _schemas_loaded()  # once, while the first child infers: every later child inherits them
        payload = inp.read()
    except BaseException:  # noqa: BLE001 - (an interrupt) the child is not left behind
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        inp.close()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        raise RuntimeError(f"it crashed (signal {os.WTERMSIG(status)})")
    return payload


def _fork_child(body: Callable[[], None]) -> Tuple[int, bool]:
    """Fork a child that becomes an inference child (:func:`_become_child`), runs ``body`` and
    exits without running this process's code. SIGINT is blocked across the fork, so the child,
    born with it blocked, never sees a Ctrl-C (its parent stops it): the caller unblocks it
    (:func:`_unblock_interrupts` of the flag returned with the pid) once it can stop the child."""
    parent, die_with_parent = os.getpid(), _death_signal()
    masked = _block_interrupts()
    try:
        pid = os.fork()
    except BaseException:
        _unblock_interrupts(masked)
        raise
    if pid == 0:
        try:
            _become_child(parent, die_with_parent)
            body()
        finally:  # whatever happens (the parent gone: BrokenPipeError), the child exits here
            os._exit(0)
    return pid, masked


def _become_child(parent: int, die_with_parent: Optional[Callable[[], None]]) -> None:
    """In a child just forked by ``parent``: killed with it, quiet, its address space capped."""
    if die_with_parent is not None:  # killed with its parent, whatever ends the parent
        die_with_parent()
        if os.getppid() != parent:
            os._exit(0)
    quiet = os.open(os.devnull, os.O_WRONLY)  # a failed C++ assertion writes to stderr
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    os.close(quiet)
    faulthandler.disable()  # a crash here is expected and reported by the parent (pytest enables it)
    limit = _address_space() + INFERENCE_MEMORY  # on top of what the process maps now
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)  # a cap set from outside (ulimit -v) stays the cap
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _address_space() -> int:
    """Bytes of address space this process maps now (Linux), else 0."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _block_interrupts() -> bool:
    """Block SIGINT in this thread (a forked child inherits the mask); whether it was done."""
    if not hasattr(signal, "pthread_sigmask"):
        return False
    return signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def _unblock_interrupts(masked: bool) -> None:
    if masked:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@functools.lru_cache(maxsize=None)
def _death_signal() -> Optional[Callable[[], None]]:
    """On Linux, a function that has the calling process killed (SIGKILL) when its parent ends
    (``prctl(PR_SET_PDEATHSIG)``), for an inference child: a parent killed mid-analysis (a pool
    worker stopped by Ctrl-C, a Dask worker lost) leaves no child behind. None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None
    pr_set_pdeathsig, kill = 1, int(signal.SIGKILL)
    return lambda: prctl(pr_set_pdeathsig, kill, 0, 0, 0)


@functools.lru_cache(maxsize=None)
def _schemas_loaded() -> None:
    """ONNX's registry of operator schemas (every domain, every version), which ONNX builds on
    its first use, built in this process. A child forked before that builds it again, about
    25 ms of a tiny model's 28; one forked after inherits it. Building it runs no model: nothing
    a malformed graph can crash."""
    try:
        onnx.defs.get_schema("Relu")  # any lookup builds the whole registry
    except Exception:  # noqa: BLE001 - an onnx without it: every child builds its own
        pass


# --------------------------------------------------------------------------------------------
# The long-lived child for small models


class _InferenceServer:
    """A child of this process that runs ONNX's inference for one model after another: sent
    ``_HEADER`` (length, flags) and a serialized model, it answers with ``_LENGTH`` and
    :func:`_inferred_payload`. Started on first use, after ONNX's operator schemas are built
    (it inherits them), with the hygiene of any inference child (:func:`_become_child`), and
    holding no other file of this process. Started again when it crashed on a malformed model
    (that model gets "it crashed (signal N)", as from a forked child) or ended between two
    models. It dies with this process, and is killed at its exit; a process forked from this
    one forgets it (:func:`_forget_in_child`) and starts its own. One request at a time: a
    thread that finds it busy (Dask runs analyses in threads) forks a child for its model."""

    _current: Optional["_InferenceServer"] = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        requests_read, self._requests = os.pipe()
        self._replies, replies_write = os.pipe()
        self.status: Optional[int] = None  # its wait status, once reaped

        def serve() -> None:
            _close_all_but(requests_read, replies_write)
            while True:
                header = _read_exactly(requests_read, _HEADER.size)
                size, flags = _HEADER.unpack(header) if header else (0, 0)
                request = header and _read_exactly(requests_read, size)
                if request is None:  # this process closed the pipe, or ended
                    return
                try:
                    model = ModelProto.FromString(request)
                except Exception as e:  # noqa: BLE001 - reported to the parent as text
                    payload = b"no" + _short(e).encode("utf-8", "replace")
                else:
                    payload = _inferred_payload(model, flags)
                _write_all(replies_write, _LENGTH.pack(len(payload)), payload)

        try:
            self.pid, self.masked = _fork_child(serve)
        except BaseException:
            os.close(self._requests)
            os.close(self._replies)
            raise
        finally:
            os.close(requests_read)
            os.close(replies_write)
        self.owner = os.getpid()

    @classmethod
    def infer(cls, model: ModelProto, flags: int, meanwhile: Optional[Callable[[], None]]) -> Optional[bytes]:
        """The payload of :func:`_inferred_payload` for ``model``, from the server; ``meanwhile``
        runs while it infers. None, having done nothing, when another thread is using it."""
        lock = cls._lock
        if not lock.acquire(blocking=False):
            return None
        try:
            return cls._infer(model, flags, meanwhile)
        finally:
            lock.release()

    @classmethod
    def _infer(cls, model: ModelProto, flags: int, meanwhile: Optional[Callable[[], None]]) -> bytes:
        request = model.SerializeToString()
        server = cls._current
        if server is not None and (server.owner != os.getpid() or server.ended()):
            server.stop(kill=True)  # gone since its last answer (killed, out of memory): not this model's doing
            server = None
        if server is None:
            _schemas_loaded()
            server = cls._current = cls()
        try:
            _unblock_interrupts(server.masked)  # a Ctrl-C of the meantime is raised here
            server.masked = False
            _write_all(server._requests, _HEADER.pack(len(request), flags), request)  # one wake-up
            if meanwhile is not None:
                meanwhile()
            header = _read_exactly(server._replies, _LENGTH.size)
            payload = header and _read_exactly(server._replies, _LENGTH.unpack(header)[0])
        except BrokenPipeError:  # it died while being sent the model
            payload = None
        except BaseException:  # noqa: BLE001 - (an interrupt) a server in mid-answer is stopped
            server.stop(kill=True)
            raise
        if payload is None:  # it died on this model
            status = server.stop(kill=False)
            raise RuntimeError(f"it crashed (signal {os.WTERMSIG(status)})"
                               if status is not None and os.WIFSIGNALED(status)
                               else "the inference child ended without an answer")
        return payload

    def ended(self) -> bool:
        """Whether the child has ended (then reaped: :attr:`status`), without waiting."""
        if self.status is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else (SIGCHLD ignored)
                pid, status = self.pid, 0
            if pid:
                self.status = status
        return self.status is not None

    def stop(self, kill: bool) -> Optional[int]:
        """Stop using it: its pipes closed, then, if it is this process's child, killed (or
        left to end on its own: it has crashed) and reaped. Its wait status, if known."""
        if _InferenceServer._current is self:
            _InferenceServer._current = None
        self._close()
        if self.owner != os.getpid():  # the parent's, in a forked copy: not ours to wait for
            return None
        if self.status is None:
            if kill:
                with contextlib.suppress(ProcessLookupError):  # gone already
                    os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):  # reaped by someone else
                self.status = os.waitpid(self.pid, 0)[1]
        return self.status

    def _close(self) -> None:
        for fd in (self._requests, self._replies):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._requests = self._replies = -1  # never closed twice: the numbers are reused


@atexit.register
def _stop_inference_server() -> None:
    """At exit, the server is killed and reaped: no zombie, and no wait on it."""
    server = _InferenceServer._current
    if server is not None and server.owner == os.getpid():
        server.stop(kill=True)


def _forget_in_child() -> None:
    """In a process just forked from this one: the parent's server is not ours (our copies of its
    pipes are closed, so that it sees its parent's end), nor is the lock (another thread may have
    held it at the fork)."""
    server = _InferenceServer._current
    _InferenceServer._current = None
    _InferenceServer._lock = threading.Lock()
    if server is not None:
        server._close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def _close_all_but(*keep: int) -> None:
    """Close every file descriptor above 2 but ``keep``: a long-lived child holds none of its
    parent's files, sockets and pipes open after the parent closed them."""
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    try:
        high = os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        high = 1 << 16
    os.closerange(low, max(high, low))
    with contextlib.suppress(ValueError, OSError):  # not the main thread
        signal.set_wakeup_fd(-1)  # an event loop's, closed now


def _read_exactly(fd: int, n: int) -> Optional[bytes]:
    """``n`` bytes from ``fd``, or None at the end of the pipe."""
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, *parts: bytes) -> None:
    """``parts`` written to ``fd``, one after another, in as few calls as the pipe allows."""
    views = [memoryview(p) for p in parts if p]
    while views:
        n = os.writev(fd, views) if hasattr(os, "writev") else os.write(fd, views[0])
        while views and n >= len(views[0]):
            n -= len(views.pop(0))
        if views:
            views[0] = views[0][n:]
