"""Measured latency with onnxruntime, per layer, beside onnxscore's counts.

:func:`measure` runs a model in onnxruntime on the CPU (the optional extra
``onnxscore[measure]``; imported only here, and only when called):

1. **Inputs** are generated from the shapes onnxscore resolved (``Report.model.inputs``, so the
   same ``dims``) and the dtypes the model declares (:func:`generate_inputs`): floats uniform in
   [0, 1); integer inputs in a valid range (token ids below the size of the embedding table
   their ``Gather`` reads, any index below the size of the axis it indexes); attention masks all
   ones; position ids ``past .. past + seq - 1``; KV-cache ``past_*`` inputs zeros (a past length
   of 0 is an empty tensor); other booleans False, other integers 0.
2. **End-to-end latency**, graph optimizations at onnxruntime's default (``ORT_ENABLE_ALL``):
   ``warmup`` runs, then ``runs`` timed ones: p50, p90, min, max, spread (p90 / p50).
3. **Per layer**: a second session with ``ORT_DISABLE_ALL`` (so each ONNX node runs as one
   kernel) and ``enable_profiling``. Every node of a copy of the model is named after
   onnxscore's layer (its name, or ``<op_type>_<index>`` when unnamed or repeated; ``<parent>/
   <attribute>/<key>`` inside a subgraph), so the profile's ``<name>_kernel_time`` events map one
   to one onto layers; their durations are averaged over the profiled runs. Reported: each
   layer's time and share of the layers' total beside its share of MACs, the achieved FLOP/s and
   bytes/s, the kernels that map to no layer (0 expected), the sum of layer times against the
   unoptimized end-to-end latency of the same runs, the layers whose share of time most exceeds
   their share of MACs ("where MACs mislead") and the Spearman rank correlation of time and MACs
   over the layers; both leave out the layers whose inputs are all constants (an optimizing
   runtime computes them once, at load: the ConstantOfShape nodes that make the light models'
   weights), which the unoptimized session runs every time.

Unlike the rest of onnxscore, measuring **runs the model with its real weights**: onnxruntime
reads them itself, from the file and its external-data files. onnxscore reads none of them, and
refuses a model whose external data is missing or lies outside the model's folder.
Numbers measured here vary from run to run and machine to machine: they belong in reports and
benchmarks, never in tests.
"""
from __future__ import annotations

import functools
import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import onnx
from onnx import AttributeProto, ModelProto, TensorProto

from onnxscore.errors import ModelLoadError, OnnxScoreError, UsageError
from onnxscore.ops.data import RANDOM_OPS
from onnxscore.report import Report

EXTRA = "onnxscore[measure]"
PROVIDER = "CPUExecutionProvider"
_KERNEL_SUFFIX = "_kernel_time"
_EXTERNAL_FOLDER_KEY = "session.model_external_initializers_file_folder_path"

_CACHE_INPUT = re.compile(r"past|cache", re.IGNORECASE)
_MASK_INPUT = re.compile(r"mask", re.IGNORECASE)
_POSITION_INPUT = re.compile(r"position|pos_ids", re.IGNORECASE)

# Ops through which an integer input keeps its values (its indices reach a Gather unchanged).
_PASS_THROUGH = frozenset({"Cast", "CastLike", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Identity",
                           "Expand", "Transpose", "Tile", "Slice", "Concat", "Split"})


class MeasureError(OnnxScoreError):
    """onnxruntime could not load or run the model."""


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise UsageError(f"measuring latency needs onnxruntime: pip install '{EXTRA}'") from None
    return onnxruntime


# ---------------------------------------------------------------------------------------------
# Results

@dataclass(frozen=True)
class Latency:
    """End-to-end seconds of ``runs`` timed runs: percentiles (linear interpolation), extremes,
    mean, and ``spread`` = p90 / p50."""

    p50: float
    p90: float
    min: float
    max: float
    mean: float
    spread: float
    runs: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> "Latency":
        a = np.asarray(samples, dtype=float)
        p50, p90 = (float(x) for x in np.percentile(a, [50, 90]))
        return cls(p50=p50, p90=p90, min=float(a.min()), max=float(a.max()), mean=float(a.mean()),
                   spread=p90 / p50 if p50 > 0 else float("nan"), runs=len(a))


@dataclass(frozen=True)
class LayerTime:
    """One layer's kernel, measured: mean ``seconds`` per run (``calls`` kernel runs per model
    run: more than 1 inside a loop body), ``share`` of the layers' summed time beside
    ``mac_share`` of their MACs (None when the layer's MACs are unknown), and the achieved rates
    ``flops_per_s`` and ``bytes_per_s`` (bytes moved, ``LayerCost.memory``). ``folded``: every
    input is a constant, so an optimizing runtime computes the layer once, at load (its time here
    is the unoptimized session's); such layers are left out of ``mislead`` and ``spearman``."""

    name: str
    op_type: str
    scope: str
    seconds: float
    calls: float
    share: float
    macs: Optional[int]
    mac_share: Optional[float]
    flops: Optional[int]
    bytes: Optional[int]
    flops_per_s: Optional[float]
    bytes_per_s: Optional[float]
    folded: bool = False


@dataclass(frozen=True)
class Measurement:
    """What :func:`measure` found (see the module docstring). Seconds throughout."""

    path: str
    onnxruntime_version: str
    provider: str
    threads: int  # intra-op threads the profiled kernels ran on (main thread + pool)
    inputs: Dict[str, Tuple[Tuple[int, ...], str]]  # name -> (shape, dtype) fed
    optimized: Latency  # ORT_ENABLE_ALL
    unoptimized: Latency  # ORT_DISABLE_ALL, the profiled runs, wall clock
    layers: Tuple[LayerTime, ...]  # top-level layers with a kernel, in graph order
    nested: Tuple[LayerTime, ...]  # layers inside subgraphs (their time is inside their parent's)
    unmapped: Tuple[str, ...]  # kernels that map to no layer
    without_kernel: int  # top-level layers no kernel ran for (constants folded at load, ...)
    layer_seconds: float  # sum of the top-level layers' mean times
    coverage: float  # layer_seconds / unoptimized.mean
    spearman: Optional[float]  # rank correlation of layer time and MACs (folded layers left out)
    mislead: Tuple[LayerTime, ...]  # share of time most above share of MACs, worst first (idem)
    profiled_runs: int = 0
    notes: Tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """The JSON form (schema ``onnxscore.measurement/1``): raw seconds, FLOP/s and bytes/s."""
        d = asdict(self)
        d["schema"] = "onnxscore.measurement/1"
        d["inputs"] = {k: {"shape": list(s), "dtype": t} for k, (s, t) in self.inputs.items()}
        d["unmapped"] = list(self.unmapped)
        d["notes"] = list(self.notes)
        return d


# ---------------------------------------------------------------------------------------------
# The model as onnxruntime will run it

@dataclass
class _Runnable:
    """The model as onnxruntime runs it: ``proto`` named as onnxscore names its layers; ``same``
    when that changed nothing (every node already had a unique name, no function to inline),
    so onnxruntime can load the file itself; ``external`` when weights live in other files."""

    proto: ModelProto
    same: bool
    external: bool

    @functools.cached_property
    def serialized(self) -> bytes:
        """``proto``'s bytes, made once for every session (weights included)."""
        return self.proto.SerializeToString()


def _load_for_run(path: str) -> _Runnable:
    """The model with its inline weights (onnxruntime needs them), functions inlined as onnxscore
    inlines them, every node named after its onnxscore layer; external data checked, not read."""
    from onnxscore.model import _read_file, inline_functions, parse_model

    proto = parse_model(_read_file(path), path)
    external = _check_external_data(proto, path)
    inlined, _ = inline_functions(proto)
    before = _node_names(inlined.graph)
    name_nodes(inlined.graph)
    return _Runnable(inlined, inlined is proto and before == _node_names(inlined.graph), external)


def _node_names(graph: onnx.GraphProto) -> List[str]:
    names = []
    for node in graph.node:
        names.append(node.name)
        for a in node.attribute:
            if a.type == AttributeProto.GRAPH:
                names += _node_names(a.g)
            elif a.type == AttributeProto.GRAPHS:
                for g in a.graphs:
                    names += _node_names(g)
    return names


def _check_external_data(proto: ModelProto, path: str) -> bool:
    """A one-line error when a weight file is missing, outside the model's folder or not a file
    name (:func:`~onnxscore.model.external_files`): onnxruntime would read it; whether the model
    has external data at all."""
    from onnxscore.model import ESCAPES, INVALID, MISSING, _all_tensors, external_files

    files = external_files([t for t in _all_tensors(proto.graph) if t.data_location == TensorProto.EXTERNAL],
                           path)
    for location, (verdict, tensor) in files.items():
        if verdict in (ESCAPES, INVALID):
            raise ModelLoadError(f"{path}: external data {location!r} of {tensor!r} is outside the "
                                 "model's folder or not a file name; onnxscore does not run it")
        if verdict == MISSING:
            raise ModelLoadError(f"{path}: external data file {location!r} is missing; measuring runs "
                                 "the model with its weights")
    return bool(files)


def name_nodes(graph: onnx.GraphProto, prefix: str = "") -> List[str]:
    """Name every node of ``graph`` (and of its subgraphs) after its onnxscore layer: the key of
    :func:`onnxscore.shapes.node_keys`, ``<parent>/<attribute>/<key>`` inside a subgraph, as the
    walker names them. Returns the names, outer graph's first."""
    from onnxscore.shapes import node_keys

    names: List[str] = []
    for node, key in zip(graph.node, node_keys(graph)):
        name = prefix + key
        node.name = name
        names.append(name)
        for a in node.attribute:
            if a.type == AttributeProto.GRAPH:
                names += name_nodes(a.g, f"{name}/{a.name}/")
            elif a.type == AttributeProto.GRAPHS:
                for j, g in enumerate(a.graphs):
                    names += name_nodes(g, f"{name}/{a.name}[{j}]/")
    return names


# ---------------------------------------------------------------------------------------------
# Inputs

def _np_dtype(elem_type: int, name: str, path: str):
    if elem_type == TensorProto.STRING:
        raise UsageError(f"{path}: input {name!r} is a string tensor; pass it with inputs={{...}}")
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"{path}: input {name!r} has a dtype ({elem_type}) that cannot be made from "
                         "numpy; pass it with inputs={...}") from None


def _index_bounds(graph: onnx.GraphProto, report: Report) -> Dict[str, int]:
    """Graph input -> the exclusive upper bound of the values it may hold: the size of the axis
    of every Gather (GatherElements, GatherND, ScatterElements, ScatterND, EmbedLayerNormalization)
    its values reach as indices, through ops that keep values (Cast, Reshape, ...); the
    smallest when several."""
    shapes = {x.name: x.input_shapes for x in report.layers}
    consumers: Dict[str, List[Tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name:
                consumers.setdefault(name, []).append((node, i))

    def dim(node: onnx.NodeProto, input_index: int, axis: int) -> Optional[int]:
        shape = (shapes.get(node.name) or ())[input_index:input_index + 1]
        shape = shape[0] if shape else None
        if not shape or not -len(shape) <= axis < len(shape):
            return None
        d = shape[axis]
        return d if isinstance(d, int) and d > 0 else None

    def axis_of(node: onnx.NodeProto, default: int = 0) -> int:
        return next((a.i for a in node.attribute if a.name == "axis"), default)

    def bound(node: onnx.NodeProto, i: int) -> Optional[int]:
        op, ms = node.op_type, node.domain == "com.microsoft"
        if op in ("Gather", "GatherElements", "ScatterElements") and i == 1 and not ms:
            return dim(node, 0, axis_of(node))
        if op in ("GatherND", "ScatterND") and i == 1:
            batch = next((a.i for a in node.attribute if a.name == "batch_dims"), 0)
            data = (shapes.get(node.name) or [None])[0]
            if not data:
                return None
            dims = [d for d in data[batch:] if isinstance(d, int) and d > 0]
            return min(dims) if dims else None
        if op == "EmbedLayerNormalization" and ms:
            table = {0: 2, 1: 4, 8: 3}.get(i)  # input_ids, segment_ids, position_ids -> their table
            return dim(node, table, 0) if table is not None else None
        return None

    out: Dict[str, int] = {}
    for vi in graph.input:
        found: List[int] = []
        todo, seen = [vi.name], set()
        while todo:
            tensor = todo.pop()
            if tensor in seen:
                continue
            seen.add(tensor)
            for node, i in consumers.get(tensor, ()):
                b = bound(node, i)
                if b is not None:
                    found.append(b)
                elif node.op_type in _PASS_THROUGH and (i == 0 or node.op_type == "Concat"):
                    todo.extend(o for o in node.output if o)
        if found:
            out[vi.name] = min(found)
    return out


def make_inputs(proto: ModelProto, report: Report, seed: int = 0,
                given: Optional[Mapping[str, Any]] = None, path: str = "<model>") -> Dict[str, np.ndarray]:
    """Feeds for every graph input of ``proto`` (initializers excluded), following the rules of
    the module docstring; shapes from ``report.model.inputs``; ``given`` arrays are used as
    they are (cast to the input's dtype)."""
    rng = np.random.default_rng(seed)
    graph = proto.graph
    init = {t.name for t in graph.initializer}
    bounds = _index_bounds(graph, report)
    kv = report.kv_cache
    past_inputs = set(kv.past_inputs) if kv is not None else set()
    offset = (kv.past or 0) if kv is not None else 0
    given = dict(given or {})
    feeds: Dict[str, np.ndarray] = {}
    for vi in graph.input:
        name = vi.name
        if name in init or not vi.type.HasField("tensor_type"):
            continue
        dtype = _np_dtype(vi.type.tensor_type.elem_type, name, path)
        if name in given:
            feeds[name] = np.asarray(given[name], dtype=dtype)
            continue
        shape = report.model.inputs.get(name)
        if shape is None:
            from onnxscore.model import shape_of
            shape = shape_of(vi.type)
        unresolved = [d for d in (shape or ()) if not isinstance(d, int)]
        if shape is None or unresolved:
            dim = next((d for d in unresolved if isinstance(d, str)), None)
            hint = f"pass dims={{{dim!r}: N}} (--dim {dim}=N)" if dim else "pass its shape"
            raise UsageError(f"{path}: input {name!r} has an unresolved shape {shape}; {hint}")
        shape = tuple(int(d) for d in shape)
        integer = np.issubdtype(dtype, np.integer)
        if name in past_inputs or (_CACHE_INPUT.search(name) and len(shape) >= 3):
            value = np.zeros(shape, dtype=dtype)
        elif _MASK_INPUT.search(name):
            value = np.ones(shape, dtype=dtype)
        elif integer and _POSITION_INPUT.search(name):
            n = shape[-1] if shape else 1
            positions = np.arange(offset, offset + n)
            if name in bounds:
                positions = positions % bounds[name]
            value = np.broadcast_to(positions, shape).astype(dtype) if shape else np.asarray(offset, dtype)
        elif integer:
            high = bounds.get(name)
            if high is not None:
                info = np.iinfo(dtype)
                value = rng.integers(0, min(high, int(info.max) + 1), size=shape).astype(dtype)
            else:
                value = np.zeros(shape, dtype=dtype)
        elif dtype == np.bool_:
            value = np.zeros(shape, dtype=dtype)
        else:
            value = rng.random(shape).astype(dtype)
        feeds[name] = np.ascontiguousarray(value)
    return feeds


def generate_inputs(path: str, report: Optional[Report] = None, dims: Optional[Mapping[str, int]] = None,
                    seed: int = 0, given: Optional[Mapping[str, Any]] = None) -> Dict[str, np.ndarray]:
    """The inputs :func:`measure` feeds ``path`` (without running it): see :func:`make_inputs`."""
    path = os.fspath(path)
    if report is None:
        from onnxscore.walk import analyze
        report = analyze(path, dims=dims)
    return make_inputs(_load_for_run(path).proto, report, seed, given, path)


# ---------------------------------------------------------------------------------------------
# Running

# onnxruntime finds the external data of a model loaded from memory only from 1.21 on (the
# session option below); before, only a model loaded from its file.
_FOLDER_OPTION_SINCE = (1, 21)


def _version(text: str) -> Tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:2])


def _session(ort, model: _Runnable, path: str, level, threads: Optional[int],
             profile_prefix: Optional[str] = None):
    """An onnxruntime session of ``model``: from the file itself when onnxscore's names are its
    own, else from the renamed copy in memory (its external data found in the model's folder)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.log_severity_level = 3  # errors only: unused initializers are no news here
    if threads:
        so.intra_op_num_threads = int(threads)
    if profile_prefix is not None:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    if model.same:
        source = path
    else:
        if model.external and _version(ort.__version__) < _FOLDER_OPTION_SINCE:
            raise MeasureError(f"{path}: measuring needs its nodes renamed after onnxscore's layers, and "
                               f"onnxruntime {ort.__version__} cannot run a renamed copy whose weights are "
                               "in external data files; install onnxruntime >= 1.21")
        so.add_session_config_entry(_EXTERNAL_FOLDER_KEY, os.path.dirname(os.path.abspath(path)))
        source = model.serialized
    try:
        return ort.InferenceSession(source, so, providers=[PROVIDER])
    except Exception as e:  # onnxruntime raises its own types: one line, its first
        raise MeasureError(f"{path}: onnxruntime cannot load the model ({_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def _run(session, feeds: Mapping[str, np.ndarray], path: str) -> float:
    t0 = time.perf_counter()
    try:
        session.run(None, dict(feeds))
    except Exception as e:  # noqa: BLE001 - onnxruntime's own error types
        raise MeasureError(f"{path}: onnxruntime failed to run the model ({_first_line(e)})") from None
    return time.perf_counter() - t0


def _timed(session, feeds, runs: int, warmup: int, path: str) -> List[float]:
    for _ in range(warmup):
        _run(session, feeds, path)
    return [_run(session, feeds, path) for _ in range(runs)]


def read_profile(events: Sequence[Mapping[str, Any]], runs: int) -> Tuple[Dict[str, Tuple[float, int]], int]:
    """Per node name, (total seconds, calls) of its kernels over the last ``runs`` model runs of
    an onnxruntime profile (``cat == "Node"`` events named ``<node>_kernel_time``, ``dur`` in
    microseconds, inside a ``model_run`` event); and the most threads a kernel ran on."""
    model_runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                        key=lambda e: e["ts"])[-runs:]
    windows = [(e["ts"], e["ts"] + e["dur"]) for e in model_runs]
    kernels: Dict[str, List[float]] = {}
    threads = 1
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith(_KERNEL_SUFFIX):
            continue
        ts = e.get("ts", -1)
        if not any(a <= ts <= b for a, b in windows):
            continue
        name = e["name"][:-len(_KERNEL_SUFFIX)]
        entry = kernels.setdefault(name, [0.0, 0])
        entry[0] += e.get("dur", 0) * 1e-6
        entry[1] += 1
        stats = (e.get("args") or {}).get("thread_scheduling_stats") or {}
        if isinstance(stats, dict):
            threads = max(threads, 1 + len(stats.get("sub_threads") or {}))
    return {k: (v[0], v[1]) for k, v in kernels.items()}, threads


def spearman(x: Sequence[float], y: Sequence[float]) -> Optional[float]:
    """Spearman's rank correlation (ties share their mean rank): the Pearson correlation of the
    ranks. None with fewer than 3 pairs or when either side is constant."""
    if len(x) != len(y) or len(x) < 3:
        return None
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(values: Sequence[float]) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a), dtype=float)
    sorted_a = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and sorted_a[j + 1] == sorted_a[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _prepare(path, report, dims, runs: int, warmup: int, seed: int, inputs):
    """What both measurements start from: onnxruntime, the report (made when not given), the
    model as it will run, and its inputs."""
    if runs < 1 or warmup < 0:
        raise UsageError(f"runs must be >= 1 and warmup >= 0 (got runs={runs}, warmup={warmup})")
    ort = _ort()
    path = os.fspath(path)
    if report is None:
        from onnxscore.walk import analyze
        report = analyze(path, dims=dims)
    model = _load_for_run(path)
    return ort, path, report, model, make_inputs(model.proto, report, seed, inputs, path)


def measure_latency(path: str, report: Optional[Report] = None, dims: Optional[Mapping[str, int]] = None,
                    runs: int = 20, warmup: int = 3, threads: Optional[int] = None, seed: int = 0,
                    inputs: Optional[Mapping[str, Any]] = None) -> Tuple[Latency, int]:
    """End-to-end latency only (step 2 of :func:`measure`, no profiled session): the
    :class:`Latency` of ``runs`` runs after ``warmup``, graph optimizations at onnxruntime's
    default, and the ``intra_op_num_threads`` asked for (0: onnxruntime's default). For ranking
    many models by measured latency (``rank``); arguments as :func:`measure`."""
    ort, path, report, model, feeds = _prepare(path, report, dims, runs, warmup, seed, inputs)
    session = _session(ort, model, path, ort.GraphOptimizationLevel.ORT_ENABLE_ALL, threads)
    return Latency.of(_timed(session, feeds, runs, warmup, path)), int(threads or 0)


def measure(path: str, report: Optional[Report] = None, dims: Optional[Mapping[str, int]] = None,
            runs: int = 20, warmup: int = 3, threads: Optional[int] = None,
            profile_runs: Optional[int] = None, mislead_k: int = 10, seed: int = 0,
            inputs: Optional[Mapping[str, Any]] = None) -> Measurement:
    """Measure ``path`` in onnxruntime on the CPU (see the module docstring).

    Parameters
    ----------
    path : str
        The ONNX file (its external data, if any, beside it).
    report : Report, optional
        Its :func:`onnxscore.analyze` report; made here (with ``dims``) when not given. Its
        resolved input shapes are the shapes fed, its layers those the kernels map onto.
    dims : mapping, optional
        Values of symbolic dims when ``report`` is not given, e.g. ``{"seq": 128}``.
    runs, warmup : int
        Timed and untimed end-to-end runs of the optimized session.
    threads : int, optional
        onnxruntime's ``intra_op_num_threads``; its default (one per core) when None.
    profile_runs : int, optional
        Runs of the profiled, unoptimized session (after ``warmup``); ``min(runs, 5)`` when None.
    mislead_k : int
        How many "where MACs mislead" layers to keep.
    seed : int
        Seed of the generated inputs.
    inputs : mapping, optional
        Arrays for some inputs, used instead of generated ones.

    Raises
    ------
    UsageError
        onnxruntime is not installed, or an input's shape is unresolved.
    ModelLoadError
        The file is unreadable, or its external data is missing or outside its folder.
    MeasureError
        onnxruntime cannot load or run the model.
    """
    ort, path, report, model, feeds = _prepare(path, report, dims, runs, warmup, seed, inputs)
    level = ort.GraphOptimizationLevel
    profile_runs = max(1, min(runs, 5)) if profile_runs is None else max(1, int(profile_runs))

    optimized = _session(ort, model, path, level.ORT_ENABLE_ALL, threads)
    fast = Latency.of(_timed(optimized, feeds, runs, warmup, path))
    del optimized

    with tempfile.TemporaryDirectory(prefix="onnxscore-profile-") as tmp:
        profiled = _session(ort, model, path, level.ORT_DISABLE_ALL, threads,
                            profile_prefix=os.path.join(tmp, "profile"))
        slow_samples = _timed(profiled, feeds, profile_runs, warmup, path)
        profile_file = profiled.end_profiling()
        with open(profile_file, encoding="utf-8") as f:
            events = json.load(f)
        del profiled
    kernels, used_threads = read_profile(events, profile_runs)
    slow = Latency.of(slow_samples)
    return _summarize(path, ort.__version__, report, kernels, used_threads, feeds, fast, slow,
                      profile_runs, mislead_k, frozenset(constant_layers(model.proto.graph, model.proto.ir_version)))



def constant_layers(graph: onnx.GraphProto, ir_version: int = 4) -> set:
    """Names of the nodes of ``graph`` whose every input is a constant (an initializer, or the
    output of such a node): what constant folding computes at load. From IR version 4 on, an
    initializer also listed as a graph input is a default the caller may override: not a constant
    (before, every initializer was listed as an input)."""
    inputs = {vi.name for vi in graph.input} if ir_version >= 4 else set()
    constant = {t.name for t in graph.initializer if t.name not in inputs}
    out = set()
    for node in graph.node:
        if node.op_type in RANDOM_OPS or any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS)
                                          for a in node.attribute):
            continue
        if all(not n or n in constant for n in node.input):
            out.add(node.name)
            constant.update(n for n in node.output if n)
    return out


def _summarize(path: str, version: str, report: Report, kernels: Mapping[str, Tuple[float, int]],
               threads: int, feeds: Mapping[str, np.ndarray], fast: Latency, slow: Latency,
               profile_runs: int, mislead_k: int, folded: frozenset = frozenset()) -> Measurement:
    """The per-layer table from the profile's kernels (seconds and calls over ``profile_runs``);
    ``folded``: the layers of :func:`constant_layers`."""
    top = {x.name for x in report.top_layers}
    by_name = {x.name: x for x in report.layers}
    unmapped = tuple(sorted(k for k in kernels if k not in by_name))
    measured = [(x, kernels[x.name]) for x in report.top_layers if x.name in kernels]
    nested_measured = [(x, kernels[x.name]) for x in report.layers if x.name not in top and x.name in kernels]
    total = sum(s for _, (s, _) in measured) / profile_runs
    macs_total = sum(x.macs for x, _ in measured if x.macs is not None)

    def row(x, seconds_calls) -> LayerTime:
        seconds, calls = seconds_calls[0] / profile_runs, seconds_calls[1] / profile_runs
        return LayerTime(
            name=x.name, op_type=x.op_type, scope=x.scope, seconds=seconds, calls=calls,
            share=seconds / total if total else 0.0, macs=x.macs,
            mac_share=None if x.macs is None else (x.macs / macs_total if macs_total else 0.0),
            flops=x.flops, bytes=x.memory,
            flops_per_s=x.flops / seconds if x.flops is not None and seconds > 0 else None,
            bytes_per_s=x.memory / seconds if x.memory is not None and seconds > 0 else None,
            folded=x.name in folded)

    layers = tuple(row(x, sc) for x, sc in measured)
    nested = tuple(row(x, sc) for x, sc in nested_measured)
    known = [x for x in layers if x.macs is not None and not x.folded]
    rho = spearman([x.seconds for x in known], [x.macs for x in known])
    mislead = tuple(sorted((x for x in known if x.share > x.mac_share), key=lambda x: x.mac_share - x.share)
                    [:mislead_k])
    notes = []
    if unmapped:
        notes.append(f"{len(unmapped)} kernel(s) map to no onnxscore layer, e.g. {unmapped[0]!r}")
    return Measurement(
        path=path, onnxruntime_version=version, provider=PROVIDER, threads=threads,
        inputs={k: (tuple(int(d) for d in v.shape), str(v.dtype)) for k, v in feeds.items()},
        optimized=fast, unoptimized=slow, layers=layers, nested=nested, unmapped=unmapped,
        without_kernel=len(top) - len(measured), layer_seconds=total,
        coverage=total / slow.mean if slow.mean > 0 else float("nan"), spearman=rho, mislead=mislead,
        profiled_runs=profile_runs, notes=tuple(notes))


__all__ = ["Latency", "LayerTime", "Measurement", "MeasureError", "constant_layers", "generate_inputs",
           "make_inputs", "measure", "measure_latency", "name_nodes", "read_profile", "spearman"]
