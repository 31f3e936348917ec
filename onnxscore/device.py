"""Device profiles and the roofline estimate of a model's latency on a device.

A :class:`Device` is a peak compute rate per dtype family (``float32``, ``float16``, ``int8``),
a memory bandwidth and a fixed time per layer; built-in profiles (``onnxscore/devices/*.toml``)
take their numbers from the vendors' published specifications, each cited in its file, and
``local`` is this machine, calibrated once by :func:`calibrate_local` and kept in the cache.

The estimate (:func:`estimate`) applies the roofline model layer by layer::

    time = overhead + max(FLOPs / peak[dtype family], bytes moved / bandwidth)

Conventions, stated once:

* **FLOPs, not MACs**: a multiply-add is 2 operations, on the layer's side (``LayerCost.flops``)
  as on the device's (peaks are operations per second, int8 ones included).
* **Bytes moved** are ``LayerCost.memory``: the activations a layer reads and writes and the
  weights it is the first to read, each counted once per layer, as if every tensor came from and
  went to memory (no cache reuse between layers).
* **Zero-cost layers still move bytes**: a Reshape, a Concat or a Transpose costs no FLOPs but
  ``bytes / bandwidth`` and the overhead. A layer that moves no activation and computes nothing
  (a Constant, a ConstantOfShape that makes a weight) costs nothing: runtimes fold it at load.
* **Folded and fused layers take 0 s** (when the graph is given, :func:`layer_info`): a layer
  whose inputs are all constants is computed once, at load; a BatchNormalization after a Conv
  is folded into its weights, an activation after a Conv, Gemm or MatMul runs in its epilogue,
  a bias Add after a MatMul is its bias: the fusions every inference runtime applies, so those
  layers move no bytes of their own (``estimate(..., fuse=False)`` counts them as kernels).
* **The dtype family** of a layer is that of its first input that is a floating-point or 8-bit
  type (:func:`dtype_family`): float16/bfloat16 -> ``float16``; int8, uint8, 4-bit and 8-bit float
  types -> ``int8``; anything else (float32, float64, integers) -> ``float32``. Dtypes are not on
  ``LayerCost``: they come from the graph (:func:`layer_info`, :func:`analyze_for_estimate`);
  without them every layer is taken as ``float32`` and the estimate says so (``info_given``).
* **Unknown stays unknown**: a layer whose FLOPs or bytes are unknown, or whose dtype family has
  no peak on the device, has no estimate (never zero); totals are sums over the estimated layers
  with the count of the others, so they are lower bounds when that count is not 0.
* **The bound** of a layer is ``compute`` when FLOPs / peak exceeds bytes / bandwidth, else
  ``memory``.
* The per-layer **overhead** is 0 for the vendor profiles (none is published); ``local`` measures
  it as the time of a tiny kernel (an add of 16 floats), the fixed cost a runtime pays per node.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import threading
import time
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

from onnxscore.errors import UsageError
from onnxscore.report import Report, scope_keys

log = logging.getLogger(__name__)

FAMILIES = ("float32", "float16", "int8")
COMPUTE, MEMORY = "compute", "memory"
LOCAL = "local"
CALIBRATION_SCHEMA = 1  # bump when the micro-benchmarks change: old calibrations are not reused

_PROFILE_KEYS = {"name", "description", "sources", "notes", "layer_overhead_s", "peak", "memory"}


@dataclass(frozen=True)
class Device:
    """What the roofline needs of a device.

    ``float32``, ``float16``, ``int8``: peak operations per second of that dtype family (a
    multiply-add is 2), None when the device has no such rate; ``bandwidth``: memory bytes per
    second (read + written); ``layer_overhead_s``: seconds every layer pays besides its work;
    ``sources``: where the numbers come from (URLs, or how they were measured); ``origin``: the
    built-in name, the file or ``local`` it was loaded from.
    """

    name: str
    float32: Optional[float]
    float16: Optional[float]
    int8: Optional[float]
    bandwidth: float
    layer_overhead_s: float = 0.0
    sources: Tuple[str, ...] = ()
    notes: str = ""
    description: str = ""
    origin: str = ""

    def peak(self, family: str) -> Optional[float]:
        """Peak operations per second of dtype ``family`` (one of :data:`FAMILIES`)."""
        if family not in FAMILIES:
            raise ValueError(f"unknown dtype family {family!r}; one of {', '.join(FAMILIES)}")
        return getattr(self, family)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sources"] = list(self.sources)
        return d


# ---------------------------------------------------------------------------------------------
# Profiles: built-in, from a file, or local


def builtin_devices() -> Tuple[str, ...]:
    """Names of the built-in profiles (files ``onnxscore/devices/<name>.toml``), and ``local``."""
    folder = _devices_folder()
    names = sorted(f[:-5] for f in os.listdir(folder) if f.endswith(".toml"))
    return tuple(names) + (LOCAL,)


def _devices_folder() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "devices")


def load_device(name_or_path: Union[str, os.PathLike], cache: Any = None) -> Device:
    """A device profile by built-in name (:func:`builtin_devices`), ``local`` (this machine,
    calibrated once and cached: see :func:`calibrate_local`, ``cache`` passed on), or the path
    of a TOML file of the same form as the built-in ones::

        name = "my-board"
        sources = ["https://vendor.example/datasheet.pdf"]
        notes = "..."                 # optional
        layer_overhead_s = 0.0        # optional, seconds per layer
        [peak]                        # operations per second; a family may be left out
        float32 = 153.6e9
        float16 = 307.2e9
        int8 = 614.4e9
        [memory]
        bandwidth = 17.068e9          # bytes per second

    A file that cannot be read or does not fit this form raises :class:`UsageError` naming the
    file and the key.
    """
    text = os.fspath(name_or_path)
    if text == LOCAL:
        return calibrate_local(cache=cache)
    builtin = os.path.join(_devices_folder(), f"{text}.toml")
    if os.sep not in text and "/" not in text and not text.endswith(".toml") and os.path.isfile(builtin):
        device = parse_profile(_read(builtin), builtin)
        return _with_origin(device, text)
    if os.path.isfile(text):
        return _with_origin(parse_profile(_read(text), text), text)
    raise UsageError(f"--device {text}: no such built-in device or file; built-in: "
                     f"{', '.join(builtin_devices())}")


def _with_origin(device: Device, origin: str) -> Device:
    return Device(**{**asdict(device), "sources": tuple(device.sources), "origin": origin})


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise UsageError(f"{path}: cannot read the device profile ({e.strerror or e})") from None


def _toml():
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:  # pragma: no cover - older Pythons: the tomli dependency
        import tomli as tomllib
    return tomllib


def parse_profile(data: Union[bytes, str], path: str = "<profile>") -> Device:
    """A :class:`Device` from the text of a TOML profile (see :func:`load_device`); errors name
    ``path`` and the key at fault, on one line."""
    tomllib = _toml()
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{path}: not a TOML device profile (not UTF-8 text)") from None
    try:
        table = tomllib.loads(data)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML ({str(e).splitlines()[0]})") from None
    unknown = sorted(set(table) - _PROFILE_KEYS)
    if unknown:
        raise UsageError(f"{path}: unknown key {unknown[0]!r} in the device profile; keys are "
                         f"{', '.join(sorted(_PROFILE_KEYS))}")
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"{path}: key 'name' must be a non-empty string")
    peak = table.get("peak")
    if not isinstance(peak, dict):
        raise UsageError(f"{path}: missing table [peak] (operations per second per dtype family: "
                         f"{', '.join(FAMILIES)})")
    bad = sorted(set(peak) - set(FAMILIES))
    if bad:
        raise UsageError(f"{path}: unknown key 'peak.{bad[0]}'; dtype families are {', '.join(FAMILIES)}")
    peaks = {f: _positive(peak.get(f), f"peak.{f}", path, optional=True) for f in FAMILIES}
    if all(v is None for v in peaks.values()):
        raise UsageError(f"{path}: table [peak] gives no rate; set at least one of {', '.join(FAMILIES)}")
    memory = table.get("memory")
    if not isinstance(memory, dict) or "bandwidth" not in memory:
        raise UsageError(f"{path}: missing key 'memory.bandwidth' (bytes per second)")
    bad = sorted(set(memory) - {"bandwidth"})
    if bad:
        raise UsageError(f"{path}: unknown key 'memory.{bad[0]}'; the [memory] table has 'bandwidth'")
    bandwidth = _positive(memory["bandwidth"], "memory.bandwidth", path)
    overhead = table.get("layer_overhead_s", 0.0)
    if isinstance(overhead, bool) or not isinstance(overhead, (int, float)) or not overhead >= 0 \
            or overhead == float("inf"):
        raise UsageError(f"{path}: key 'layer_overhead_s' must be a number of seconds >= 0, got {overhead!r}")
    sources = table.get("sources", [])
    if isinstance(sources, str):
        sources = [sources]
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise UsageError(f"{path}: key 'sources' must be a list of strings (URLs)")
    for key in ("notes", "description"):
        if not isinstance(table.get(key, ""), str):
            raise UsageError(f"{path}: key {key!r} must be a string")
    return Device(name=name.strip(), float32=peaks["float32"], float16=peaks["float16"], int8=peaks["int8"],
                  bandwidth=bandwidth, layer_overhead_s=float(overhead), sources=tuple(sources),
                  notes=table.get("notes", ""), description=table.get("description", ""), origin=path)


def _positive(value: Any, key: str, path: str, optional: bool = False) -> Optional[float]:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise UsageError(f"{path}: key {key!r} must be a positive number, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------
# Calibration of this machine

GEMM_SIZE = 2048  # float32 matrices of 16 MiB: long enough to reach the BLAS's sustained rate
COPY_BYTES = 256 << 20  # each array of the copy: larger than the last-level cache of most machines
TINY = 16  # elements of the tiny kernel whose time is the per-layer overhead
REPEATS = 7


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``model name``; on Arm the implementer and part
    numbers), else :func:`platform.processor`."""
    info = _cpuinfo()
    for key in ("model name", "Model", "Hardware"):
        if info.get(key):
            return info[key]
    if info.get("CPU part"):
        return f"arm implementer {info.get('CPU implementer', '?')} part {info['CPU part']}"
    return platform.processor() or platform.machine() or "unknown"


def _cpuinfo() -> Dict[str, str]:
    """The first value of each key of /proc/cpuinfo (empty where there is none)."""
    out: Dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() not in out:
                    out[key.strip()] = value.strip()
    except OSError:  # not Linux: the key goes without the CPU's details (the docstring's "empty")
        pass
    return out


def cpu_flags() -> Tuple[str, ...]:
    """The CPU's feature flags (x86 ``flags``, Arm ``Features``), empty when unknown."""
    info = _cpuinfo()
    return tuple((info.get("flags") or info.get("Features") or "").split())


def derived_ratios(flags: Sequence[str]) -> Tuple[float, float, str]:
    """(float16, int8) peak as a multiple of the float32 peak from the CPU's instruction set, and
    the reasoning in words. Derived, not measured: numpy has no float16 or int8 GEMM that uses
    these instructions, so measuring them with numpy would time numpy, not the CPU.

    * x86: float16 is converted to float32 to compute (F16C): x1. int8 with VNNI (``vpdpbusd``:
      4 int8 multiply-adds per 32-bit lane and instruction, where ``vfmadd231ps`` does 1): x4;
      with AVX2 only (``vpmaddubsw`` + ``vpmaddwd``: 2 instructions for those 4): x2.
    * Arm: float16 with Armv8.2-A FP16 arithmetic (``asimdhp``: 8 lanes per 128-bit vector where
      float32 has 4): x2, else x1. int8 with the dot product (``asimddp``, ``sdot``: 4 multiply-
      adds per 32-bit lane): x4, else x2 (widening ``smlal``: 8 lanes of 16 bits).
    """
    f = set(flags)
    if "asimd" in f or "neon" in f:
        fp16 = 2.0 if "asimdhp" in f else 1.0
        int8 = 4.0 if "asimddp" in f else 2.0
        return fp16, int8, (f"Arm: float16 x{fp16:g} ({'asimdhp' if fp16 > 1 else 'no asimdhp'}), "
                            f"int8 x{int8:g} ({'asimddp' if int8 > 2 else 'no asimddp'})")
    if {"avx512_vnni", "avx_vnni"} & f:
        return 1.0, 4.0, "x86: float16 x1 (F16C converts to float32), int8 x4 (VNNI vpdpbusd)"
    if "avx2" in f:
        return 1.0, 2.0, "x86: float16 x1 (F16C converts to float32), int8 x2 (AVX2 vpmaddubsw, no VNNI)"
    return 1.0, 1.0, "no float16 or int8 SIMD extension known: both at the float32 rate"


def _best(fn: Callable[[], Any], repeats: int) -> float:
    """The shortest of ``repeats`` timings of ``fn()``, in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _gemm_rate(n: int, repeats: int) -> float:
    """FLOP/s of an n x n float32 matmul (2 n**3 FLOPs), best of ``repeats`` after a warm-up."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)  # warm-up: BLAS threads started, pages touched
    return 2 * n ** 3 / _best(lambda: np.matmul(a, b, out=out), repeats)


def _copy_rate(nbytes: int, repeats: int) -> Tuple[float, int]:
    """Bytes/s of a copy of ``nbytes`` (bytes read + bytes written) split over one thread per
    CPU (numpy releases the GIL while it copies), best of ``repeats``; and the thread count."""
    import numpy as np

    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.zeros_like(src)  # both touched: no page faults in the timed copies
    workers = max(1, os.cpu_count() or 1)
    bounds = [(len(src) * i // workers, len(src) * (i + 1) // workers) for i in range(workers)]

    def copy() -> None:
        threads = [threading.Thread(target=np.copyto, args=(dst[s:e], src[s:e])) for s, e in bounds]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    copy()
    return 2 * src.nbytes / _best(copy, repeats), workers


def _tiny_kernel_time(repeats: int, calls: int = 1000) -> float:
    """Seconds of one numpy add of :data:`TINY` float32 (the best of ``repeats`` averages)."""
    import numpy as np

    x = np.ones(TINY, dtype=np.float32)
    y = np.empty_like(x)

    def tiny() -> None:
        for _ in range(calls):
            np.add(x, x, out=y)

    return _best(tiny, repeats) / calls


def run_micro_benchmarks(gemm_size: int = GEMM_SIZE, copy_bytes: int = COPY_BYTES,
                         repeats: int = REPEATS) -> Dict[str, float]:
    """Measure this machine with numpy: ``float32`` (FLOP/s of a ``gemm_size`` square float32
    GEMM, 2*n**3 FLOPs, best of ``repeats``), ``bandwidth`` (bytes/s of a copy of
    ``copy_bytes`` split over one thread per CPU, counting the bytes read and the bytes written,
    best of ``repeats``) and ``overhead`` (seconds of one add of 16 floats, best of ``repeats``
    averages over 1000 calls). The best of several runs: on a shared machine the others measure
    the neighbours."""
    gemm = _gemm_rate(gemm_size, repeats)
    bandwidth, workers = _copy_rate(copy_bytes, repeats)
    overhead = _tiny_kernel_time(repeats)
    return {"float32": gemm, "bandwidth": bandwidth, "overhead": overhead, "gemm_size": gemm_size,
            "copy_bytes": copy_bytes, "threads": workers, "repeats": repeats}


def calibration_key() -> str:
    """The cache key of this machine's calibration: the CPU model, CPU count, machine type,
    numpy's version (its BLAS does the GEMM) and the calibration schema."""
    import numpy as np

    return "onnxscore.device.local:" + json.dumps(
        {"schema": CALIBRATION_SCHEMA, "cpu": cpu_model(), "cpus": os.cpu_count(),
         "machine": platform.machine(), "numpy": np.__version__}, sort_keys=True)


def calibrate_local(cache: Any = None, refresh: bool = False) -> Device:
    """This machine as a :class:`Device`, measured once (:func:`run_micro_benchmarks`, a few
    seconds) and kept in the onnxscore cache (``cache``: an :class:`onnxscore.cache.Cache`; by
    default the user cache folder) under :func:`calibration_key`, so later calls read it.
    ``refresh`` measures again. float32 peak, bandwidth and the per-layer overhead are measured;
    the float16 and int8 peaks are derived from the float32 one (:func:`derived_ratios`)."""
    own = None
    if cache is None:
        try:
            from onnxscore.cache import Cache

            cache = own = Cache()
        except Exception as e:  # noqa: BLE001 - a read-only home: measure, do not keep
            log.debug("no cache for the calibration: %s", e)
    try:
        key = calibration_key()
        hit = cache.get(key) if cache is not None and not refresh else None
        if isinstance(hit, dict) and hit.get("schema") == CALIBRATION_SCHEMA:
            try:
                return _local_device(hit)
            except (KeyError, TypeError, ValueError):
                pass  # a damaged entry: measure again
        measured = run_micro_benchmarks()
        fp16, int8, why = derived_ratios(cpu_flags())
        entry = {"schema": CALIBRATION_SCHEMA, "cpu": cpu_model(), "measured": measured,
                 "float16_ratio": fp16, "int8_ratio": int8, "derivation": why,
                 "when": time.strftime("%Y-%m-%d %H:%M:%S")}
        if cache is not None:
            cache.put(key, entry)
        return _local_device(entry)
    finally:
        if own is not None:
            own.close()


def _local_device(entry: Mapping[str, Any]) -> Device:
    m = entry["measured"]
    fp32 = float(m["float32"])
    if not fp32 > 0 or not float(m["bandwidth"]) > 0:
        raise ValueError("calibration without a rate")
    import numpy as np

    sources = (f"measured {entry.get('when', '')} on {entry.get('cpu') or cpu_model()}: float32 = a "
               f"{m['gemm_size']}x{m['gemm_size']} float32 matmul (numpy {np.__version__}), best of "
               f"{m['repeats']}",
               f"bandwidth = a copy of {m['copy_bytes'] >> 20} MiB in {m['threads']} thread(s), bytes read + "
               f"written, best of {m['repeats']}",
               f"layer_overhead_s = one numpy add of {TINY} float32, best of {m['repeats']} x 1000 calls",
               f"float16 and int8 derived, not measured: {entry['derivation']}")
    return Device(name=LOCAL, float32=fp32, float16=fp32 * float(entry["float16_ratio"]),
                  int8=fp32 * float(entry["int8_ratio"]), bandwidth=float(m["bandwidth"]),
                  layer_overhead_s=float(m["overhead"]), sources=sources,
                  notes="this machine, calibrated by onnxscore (see sources); rates are what numpy "
                        "reaches, not the hardware's theoretical peak",
                  description=f"this machine ({entry.get('cpu', 'unknown CPU')}, {os.cpu_count()} CPUs)",
                  origin=LOCAL)


# ---------------------------------------------------------------------------------------------
# Dtype families of layers

def _dtype_sets():
    from onnx import TensorProto as T

    def ids(*names):
        return frozenset(getattr(T, n) for n in names if hasattr(T, n))

    half = ids("FLOAT16", "BFLOAT16")
    eight = ids("INT8", "UINT8", "INT4", "UINT4", "INT2", "UINT2", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ",
                "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "FLOAT8E8M0", "FLOAT4E2M1")
    floats = ids("FLOAT", "DOUBLE")
    return half, eight, floats


_SETS: Optional[tuple] = None


def dtype_family(dtypes: Sequence[int]) -> str:
    """The dtype family of a layer from its inputs' ONNX dtypes (``TensorProto`` enums, 0 when
    unknown): that of the first input that is a floating-point or 8-bit (or narrower) type, else
    ``float32``. See the module docstring."""
    global _SETS
    if _SETS is None:
        _SETS = _dtype_sets()
    half, eight, floats = _SETS
    for d in dtypes:
        if d in half:
            return "float16"
        if d in eight:
            return "int8"
        if d in floats:
            return "float32"
    return "float32"


# The layers a runtime fuses into the Conv, Gemm or MatMul before them (see layer_info).
FOLDS_INTO = frozenset({"Conv", "ConvTranspose", "Gemm"})  # affine layers after these fold into weights
EPILOGUE_HOSTS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})  # run an activation, a bias
ACTIVATIONS = frozenset({"Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh"})
AFFINE = frozenset({"Mul", "Add", "Sub", "Div"})  # with a constant scalar or vector operand

@dataclass(frozen=True)
class LayerInfo:
    """What the estimate needs of a layer besides its :class:`~onnxscore.report.LayerCost`, read
    from the graph: its dtype family (:func:`dtype_family`); ``folded`` when every input is a
    constant (the runtime computes it once, at load); ``fused_into`` the layer that absorbs it
    (see :func:`layer_info`)."""

    dtype: str = "float32"
    folded: bool = False
    fused_into: Optional[str] = None


def layer_info(G) -> Dict[str, LayerInfo]:
    """Top-level layer name -> :class:`LayerInfo`, for a graph made by
    :func:`onnxscore.graph.graph_of` (the layer names of the report that
    :func:`onnxscore.walk.analyze_graph` makes of it).

    Fusions, as inference runtimes apply them (onnxruntime, TensorRT, TFLite, OpenVINO, ncnn),
    each only when the tensor between the two layers has no other reader and is not a graph
    output; the host is a Conv, ConvTranspose, Gemm or MatMul, or the host of the layer before:

    * a BatchNormalization with constant parameters, or a Mul, Add, Sub or Div by a constant
      scalar or vector, after a Conv, ConvTranspose or Gemm: folded into its weights and bias;
    * an Add of a constant vector after a MatMul: its bias;
    * one activation (Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Tanh) after any
      host: applied in its epilogue, as the output is written.
    """
    from onnxscore.ops.data import RANDOM_OPS  # (the rules are loaded by the analysis that made G)

    nodes, order = G.nodes, G.graph["order"]
    producers, outputs = G.graph["producers"], set(G.graph["outputs"])
    tensors = G.graph["tensors"]
    constant = set(G.graph["constants"])
    readers: Dict[str, int] = {}
    for key in order:
        for name in nodes[key]["inputs"]:
            if name:
                readers[name] = readers.get(name, 0) + 1
    info: Dict[str, LayerInfo] = {}
    host: Dict[str, str] = {}  # a host layer, or a layer fused into one -> the host
    activated = set()  # hosts that already apply an activation

    def const(name: str) -> bool:
        return not name or name in constant

    def vector(name: str) -> bool:  # a constant with at most one axis longer than 1
        shape = tensors.get(name, (None, 0))[0]
        return const(name) and shape is not None and sum(1 for d in shape if d != 1) <= 1

    for key in order:
        nd = nodes[key]
        ins, op = nd["inputs"], nd["op_type"]
        family = dtype_family(nd["input_dtypes"])
        default = nd["domain"] in ("", "ai.onnx")
        if ins and all(const(n) for n in ins) and not nd["subgraphs"] and op not in RANDOM_OPS:
            constant.update(n for n in nd["outputs"] if n)
            info[key] = LayerInfo(family, folded=True)
            continue
        fused = None
        first = ins[0] if ins else ""
        source = producers.get(first)
        alone = bool(first) and readers.get(first, 0) == 1 and first not in outputs
        base = host.get(source) if alone and source is not None else None
        base_op = nodes[base]["op_type"] if base is not None else None
        if default and base is not None:
            rest = ins[1:]
            if op == "BatchNormalization" and base_op in FOLDS_INTO and all(const(n) for n in rest):
                fused = base
            elif op in AFFINE and len(ins) == 2 and vector(ins[1]) and (
                    base_op in FOLDS_INTO or (op == "Add" and base_op == "MatMul" and base == source)):
                fused = base
            elif op in ACTIVATIONS and all(const(n) for n in rest) and base not in activated:
                fused = base
                activated.add(base)
        if fused is not None:
            host[key] = fused
        elif default and op in EPILOGUE_HOSTS:
            host[key] = key
        info[key] = LayerInfo(family, fused_into=fused)
    return info


def analyze_for_estimate(model, dims: Optional[Mapping[str, int]] = None,
                         input_shapes: Optional[Mapping[str, Sequence[int]]] = None,
                         values: Optional[Mapping[str, object]] = None,
                         accuracy: Optional[float] = None, alpha: Optional[float] = None,
                         beta: Optional[float] = None,
                         gamma: Optional[float] = None) -> Tuple[Report, Dict[str, LayerInfo]]:
    """:func:`onnxscore.analyze` and :func:`layer_info` of its top-level layers, from one load of
    the model: what :func:`estimate` needs (``alpha``, ``beta``, ``gamma``: the NetScore
    exponents, the defaults when None)."""
    from onnxscore.graph import graph_of
    from onnxscore.model import collector_paused
    from onnxscore.walk import analyze_graph

    exponents = {k: v for k, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma)) if v is not None}
    with collector_paused():
        G = graph_of(model, dims, input_shapes, values)
        info = layer_info(G)
        return analyze_graph(G, accuracy=accuracy, **exponents), info


# ---------------------------------------------------------------------------------------------
# The estimate

@dataclass(frozen=True)
class LayerEstimate:
    """One top-level layer on one device. ``seconds`` is None when unknown (``why`` says why);
    ``bound`` is ``compute`` or ``memory``, None for an unknown layer or one with nothing to do."""

    name: str
    op_type: str
    scope: str
    dtype: str
    flops: Optional[int]
    bytes: Optional[int]
    compute_s: Optional[float]
    memory_s: Optional[float]
    seconds: Optional[float]
    bound: Optional[str]
    why: str = ""


@dataclass(frozen=True)
class EstimateShare:
    """Estimated layers grouped by a key (a scope at a depth, an op type): their seconds and
    share of the estimated total; ``unknown`` counts the group's layers without an estimate."""

    key: str
    count: int
    seconds: float
    share: float
    unknown: int = 0
    compute_bound: int = 0


@dataclass(frozen=True)
class Estimate:
    """The roofline estimate of a report on a device (see the module docstring)."""

    device: Device
    layers: Tuple[LayerEstimate, ...]
    info_given: bool = True  # dtypes, folded and fused layers read from the graph
    fused: bool = True  # fused layers counted as 0 s

    @cached_property
    def seconds(self) -> float:
        """Sum of the estimated layers (a lower bound when :attr:`unknown` is not 0)."""
        return sum(x.seconds for x in self.layers if x.seconds is not None)

    @property
    def milliseconds(self) -> float:
        return self.seconds * 1e3

    @cached_property
    def unknown(self) -> int:
        """Layers without an estimate."""
        return sum(1 for x in self.layers if x.seconds is None)

    @property
    def complete(self) -> bool:
        return self.unknown == 0

    @cached_property
    def compute_bound(self) -> int:
        return sum(1 for x in self.layers if x.bound == COMPUTE)

    @cached_property
    def memory_bound(self) -> int:
        return sum(1 for x in self.layers if x.bound == MEMORY)

    def by_scope(self, depth: int = 1) -> Tuple[EstimateShare, ...]:
        """Estimated seconds per block (the first ``depth`` parts of each layer's scope), in the
        order of each block's first layer; the shares sum to 1."""
        key = scope_keys(depth)
        return self._group(lambda x: key(x.scope), ordered=True)

    def by_op_type(self) -> Tuple[EstimateShare, ...]:
        """Estimated seconds per op type, the longest first; the shares sum to 1."""
        return self._group(lambda x: x.op_type, ordered=False)

    def top(self, k: int = 10) -> Tuple[LayerEstimate, ...]:
        """The ``k`` layers with the longest estimated time."""
        known = [x for x in self.layers if x.seconds]
        return tuple(sorted(known, key=lambda x: x.seconds, reverse=True)[:k])

    def _group(self, key: Callable[[LayerEstimate], str], ordered: bool) -> Tuple[EstimateShare, ...]:
        groups: Dict[str, list] = {}  # key -> [count, seconds, unknown, compute-bound]
        for x in self.layers:
            g = groups.setdefault(key(x), [0, 0.0, 0, 0])
            g[0] += 1
            if x.seconds is None:
                g[2] += 1
            else:
                g[1] += x.seconds
            g[3] += x.bound == COMPUTE
        total = self.seconds
        rows = [EstimateShare(k, g[0], g[1], g[1] / total if total else 0.0, g[2], g[3])
                for k, g in groups.items()]
        return tuple(rows) if ordered else tuple(sorted(rows, key=lambda r: r.seconds, reverse=True))

    def to_dict(self, depth: int = 1) -> dict:
        """The JSON form: raw seconds, FLOPs and bytes (units belong to the renderers)."""
        return {
            "schema": "onnxscore.estimate/1",
            "device": self.device.to_dict(),
            "seconds": self.seconds,
            "complete": self.complete,
            "unknown": self.unknown,
            "compute_bound": self.compute_bound,
            "memory_bound": self.memory_bound,
            "info_given": self.info_given,
            "fused": self.fused,
            "convention": "time = overhead + max(FLOPs / peak[dtype], bytes moved / bandwidth); "
                          "FLOPs count a multiply-add as 2",
            "layers": [asdict(x) for x in self.layers],
            "by_op_type": [asdict(r) for r in self.by_op_type()],
            "by_scope": {"depth": depth, "rows": [asdict(r) for r in self.by_scope(depth)]},
        }


def estimate_layer(layer, device: Device, info: Optional[LayerInfo] = None, fuse: bool = True) -> LayerEstimate:
    """The roofline time of one :class:`~onnxscore.report.LayerCost` on ``device`` (``info``: its
    :class:`LayerInfo`; a folded or, with ``fuse``, fused layer takes 0 s)."""
    info = info or LayerInfo()
    flops, moved = layer.flops, layer.memory
    base = dict(name=layer.name, op_type=layer.op_type, scope=layer.scope, dtype=info.dtype, flops=flops,
                bytes=moved)
    if info.folded:
        return LayerEstimate(**base, compute_s=0.0, memory_s=0.0, seconds=0.0, bound=None,
                             why="every input is a constant: computed once, at load")
    if fuse and info.fused_into is not None:
        return LayerEstimate(**base, compute_s=0.0, memory_s=0.0, seconds=0.0, bound=None,
                             why=f"fused into {info.fused_into}")
    if flops is None or moved is None:
        what = "FLOPs" if flops is None else "bytes moved"
        return LayerEstimate(**base, compute_s=None, memory_s=None, seconds=None, bound=None,
                             why=f"{what} unknown ({layer.status}{': ' + layer.note if layer.note else ''})")
    if flops == 0 and moved == 0:
        return LayerEstimate(**base, compute_s=0.0, memory_s=0.0, seconds=0.0, bound=None,
                             why="no FLOPs and no activation moved: makes a constant, at load")
    peak = device.peak(info.dtype)
    if flops and peak is None:
        return LayerEstimate(**base, compute_s=None, memory_s=moved / device.bandwidth, seconds=None,
                             bound=None, why=f"{device.name} has no {info.dtype} peak")
    compute = flops / peak if flops else 0.0
    memory = moved / device.bandwidth
    return LayerEstimate(**base, compute_s=compute, memory_s=memory,
                         seconds=device.layer_overhead_s + max(compute, memory),
                         bound=COMPUTE if compute > memory else MEMORY)


def estimate(report: Report, device: Device, info: Optional[Mapping[str, LayerInfo]] = None,
             fuse: bool = True) -> Estimate:
    """The roofline estimate of every top-level layer of ``report`` on ``device``.

    Parameters
    ----------
    report : Report
        From :func:`onnxscore.analyze`, or :func:`analyze_for_estimate` with ``info``.
    device : Device
        From :func:`load_device`.
    info : mapping, optional
        Layer name -> :class:`LayerInfo` (:func:`layer_info` of the report's graph): dtype
        families, folded and fused layers. Without it every layer is ``float32`` and runs on
        its own, and ``Estimate.info_given`` is False.
    fuse : bool
        Count fused layers (``LayerInfo.fused_into``) as 0 s, as the runtime runs them inside
        the layer they are fused into; False estimates every layer as a kernel of its own.

    Examples
    --------
    >>> report, info = analyze_for_estimate("resnet50.onnx")          # doctest: +SKIP
    >>> estimate(report, load_device("raspberry-pi-5"), info).milliseconds  # doctest: +SKIP
    """
    info = info or {}
    layers = tuple(estimate_layer(x, device, info.get(x.name), fuse) for x in report.top_layers)
    return Estimate(device, layers, info_given=bool(info), fused=fuse and bool(info))


def latency_ms(report: Report, device: Device, info: Optional[Mapping[str, LayerInfo]] = None,
               lower_bound: bool = False) -> Optional[float]:
    """The estimated latency of ``report`` on ``device`` in milliseconds, for a budget
    (``check``'s ``max_latency_ms``): None when some layer has no estimate (the sum would only
    be a lower bound), unless ``lower_bound`` asks for that sum anyway. ``info`` as for
    :func:`estimate`."""
    est = estimate(report, device, info)
    if not est.complete and not lower_bound:
        return None
    return est.milliseconds


__all__ = ["Device", "Estimate", "EstimateShare", "LayerEstimate", "LayerInfo", "FAMILIES",
           "analyze_for_estimate", "builtin_devices", "calibrate_local", "derived_ratios", "dtype_family",
           "estimate", "estimate_layer", "latency_ms", "layer_info", "load_device", "parse_profile",
           "run_micro_benchmarks"]
