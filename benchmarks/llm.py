"""onnxscore against shape inference, onnx-tool and onnxsim on large models: time, memory, counts.

Four models are built at run time in a temporary folder (``benchmarks/models.py``): the 1.3 B
decoder of the tests and a 7B-shaped decoder, both with their weights in a sparse external
file (5.3 GB and 20.7 GB of holes), ResNet-50 from the onnx wheel and a BERT-base encoder with
inline weights. Each tool runs in its own subprocess, under ``/usr/bin/time -v`` when present,
so the peak resident memory is that tool's alone:

* baseline: ``onnx.load(load_external_data=False)``, the symbolic dims bound to values, then
  ``onnx.shape_inference.infer_shapes(data_prop=True)``: the floor of any analysis that needs
  shapes;
* onnxscore, as the CLI (``onnxscore analyze --format json``) and as ``onnxscore.analyze()``;
* onnx-tool (``Model``, ``graph.shape_infer``, ``graph.profile``), which reads every weight:
  run with a timeout and an address-space limit, and reported as killed when it hits either;
* onnxsim's ``ModelInfo`` (op counts and MACs, no parameter count), when onnxsim is installed.

"wall" is the whole process, interpreter start and imports included; "work" is the analysis
alone, timed inside the process. Timings are printed, never asserted; an onnxscore count that
differs from the hand count raises.

    .venv/bin/python benchmarks/llm.py [--quick]     # or ONNXSCORE_BENCH_QUICK=1 make bench

``--quick`` (or ``ONNXSCORE_BENCH_QUICK=1``) skips the 7B-shaped decoder and onnx-tool on the
decoders, and runs every tool once. ``ONNXSCORE_BENCH_TIMEOUT`` (seconds, default 300) and
``ONNXSCORE_BENCH_MEM_GB`` (default: 20, or 85 % of the available memory if less) bound each run.
"""
from __future__ import annotations

import datetime
import importlib.util
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
MARK = "@@RESULT "
REPEATS = 5  # runs of the fast tools; the median wall time is shown
TOOLS = ("baseline", "onnxscore CLI", "onnxscore API", "onnx-tool", "onnxsim")
SLOW_TOOLS = {"onnx-tool"}  # run once: they read every weight

# The acceptance criteria of the project's issue, for the 1.3 B and 7B-shaped decoders.
MAX_RATIO_TO_BASELINE = 2.0
MAX_RSS_MB = 150
MIN_SPEEDUP_OVER_ONNX_TOOL = 50
MAX_7B_SECONDS = 2.0


class BenchmarkError(RuntimeError):
    """onnxscore gave a wrong answer (not merely a slow one)."""


# ---------------------------------------------------------------------------------------------
# The child side: one tool on one model, printing one JSON line.


def _bind(model, dims: Dict[str, int]) -> None:
    """Set the named dims of the graph inputs and outputs to values, as onnxscore does."""
    g = model.graph
    for vi in list(g.input) + list(g.output):
        if vi.type.HasField("tensor_type"):
            for d in vi.type.tensor_type.shape.dim:
                if d.dim_param in dims:
                    d.dim_value = dims[d.dim_param]


def _work(tool: str, path: str, dims: Dict[str, int]) -> dict:
    """Run ``tool`` on ``path``; the figures it reports (None where it reports none)."""
    if tool == "baseline":
        import onnx

        t0 = time.perf_counter()
        model = onnx.load(path, load_external_data=False)
        _bind(model, dims)
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
        return {"work": time.perf_counter() - t0, "params": None, "macs": None,
                "note": f"{len(inferred.graph.value_info)} shapes inferred"}
    if tool == "onnxscore API":
        # the package imports lazily: import the analyzer before the clock starts
        from onnxscore.walk import analyze

        t0 = time.perf_counter()
        report = analyze(path, dims=dims)
        return {"work": time.perf_counter() - t0, "params": report.totals.params,
                "macs": report.totals.macs, "note": "complete" if report.totals.complete else "incomplete"}
    if tool == "onnx-tool":
        import numpy as np
        import onnx
        import onnx_tool

        t0 = time.perf_counter()
        model = onnx_tool.Model(path)  # onnx.load_model: every external weight is read
        g = model.graph
        proto = model.mproto.graph
        inits = {t.name for t in proto.initializer}
        feeds = {}
        for vi in proto.input:
            if vi.name in inits:
                continue
            shape = [d.dim_value if d.HasField("dim_value") else dims.get(d.dim_param, 1)
                     for d in vi.type.tensor_type.shape.dim]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
            feeds[vi.name] = np.zeros(shape, dtype=dtype)
        g.shape_infer(feeds)
        g.profile()
        return {"work": time.perf_counter() - t0, "params": int(g.params), "macs": round(g.macs[0]),
                "note": ""}
    if tool == "onnxsim":
        import onnx
        from onnxsim.model_info import ModelInfo

        t0 = time.perf_counter()
        model = onnx.load(path, load_external_data=False)  # ModelInfo needs no weight bytes
        _bind(model, dims)
        info = ModelInfo(model)
        macs = info.macs if isinstance(info.macs, int) else None
        return {"work": time.perf_counter() - t0, "params": None, "macs": macs,
                "note": "" if macs is not None else f"MACs {info.macs!r}"}
    raise ValueError(f"unknown tool {tool!r}")


def worker(argv: Sequence[str]) -> int:
    """``--worker TOOL PATH DIMS_JSON``: print ``@@RESULT {json}`` and exit 0, or 3 on an error."""
    tool, path, dims = argv[0], argv[1], json.loads(argv[2])
    t0 = time.perf_counter()
    try:
        result = _work(tool, path, dims)
        code = 0
    except BaseException as e:  # noqa: BLE001 (MemoryError under the address-space limit, included)
        message = str(e).strip()[:200]
        result = {"error": type(e).__name__ + (f": {message}" if message else ""), "work": time.perf_counter() - t0}
        code = 3
    result["self_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(MARK + json.dumps(result), flush=True)
    return code


# ---------------------------------------------------------------------------------------------
# The parent side: run each tool in a measured subprocess.


@dataclass
class Run:
    """One tool on one model: the median of its runs (the worst peak memory of them)."""

    tool: str
    wall: Optional[float] = None
    work: Optional[float] = None
    rss_mb: Optional[float] = None
    params: Optional[int] = None
    macs: Optional[int] = None
    error: Optional[str] = None
    note: str = ""
    skipped: Optional[str] = None
    walls: List[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.skipped is None and self.error is None


def _limit(mem_bytes: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
    return apply


def _children(pid: int) -> List[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _parse_time(text: str) -> Dict[str, str]:
    """``/usr/bin/time -v`` output as a dict; its "Command terminated by signal N" line too."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("Command terminated by signal"):
            out["signal"] = line.rsplit(" ", 1)[-1]
        key, _, value = line.rpartition(": ")
        if key:
            out[key] = value
    return out


def measure(tool: str, path: str, dims: Dict[str, int], timeout: float, mem_bytes: int) -> Run:
    """One run of ``tool`` on ``path`` in a subprocess: wall time, peak RSS and its figures."""
    if tool == "onnxscore CLI":
        argv = [sys.executable, "-m", "onnxscore", "analyze", path, "--format", "json"]
        for k, v in dims.items():
            argv += ["--dim", f"{k}={v}"]
    else:
        argv = [sys.executable, "-m", "benchmarks.llm", "--worker", tool, path, json.dumps(dims)]
    run = Run(tool)
    with tempfile.NamedTemporaryFile(prefix="onnxscore-time-", suffix=".txt") as tf:
        cmd = [TIME, "-v", "-o", tf.name, *argv] if TIME else argv
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, preexec_fn=_limit(mem_bytes))  # noqa: PLW1509 (no threads here)
        timed_out = False
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            for pid in _children(proc.pid) if TIME else [proc.pid]:
                os.kill(pid, signal.SIGKILL)  # the tool; /usr/bin/time stays to report its memory
            out, err = proc.communicate()
        run.wall = time.perf_counter() - t0
        with open(tf.name, encoding="utf-8", errors="replace") as f:
            report = _parse_time(f.read()) if TIME else {}
    if "Maximum resident set size (kbytes)" in report:
        run.rss_mb = int(report["Maximum resident set size (kbytes)"]) / 1024
    result = {}
    for line in out.splitlines():
        if line.startswith(MARK):
            result = json.loads(line[len(MARK):])
    if tool == "onnxscore CLI" and proc.returncode == 0:
        totals = json.loads(out)["totals"]
        result = {"params": totals["params"], "macs": totals["macs"],
                  "note": "complete" if totals["complete"] else "incomplete"}
    if run.rss_mb is None and "self_rss_mb" in result:
        run.rss_mb = result["self_rss_mb"]
    run.work, run.params, run.macs = result.get("work"), result.get("params"), result.get("macs")
    run.note = result.get("note", "")
    if timed_out:
        run.error = f"timeout: killed after {run.wall:.0f} s"
    elif "error" in result:
        run.error = result["error"]
    elif proc.returncode != 0:
        tail = (err.strip().splitlines() or [""])[-1][:160]
        if "signal" in report or proc.returncode < 0:
            number = int(report.get("signal") or -proc.returncode)
            status = f"killed by {signal.Signals(number).name}"
        else:
            status = f"exit {proc.returncode}"
        run.error = f"{status}: {tail}" if tail else status
    return run


def median_run(runs: List[Run]) -> Run:
    """The run with the median wall time, with every wall time and the highest peak RSS."""
    ordered = sorted(runs, key=lambda r: r.wall)
    best = ordered[(len(ordered) - 1) // 2]
    best.walls = [r.wall for r in runs]
    rss = [r.rss_mb for r in runs if r.rss_mb is not None]
    best.rss_mb = max(rss) if rss else None
    return best


# ---------------------------------------------------------------------------------------------
# Rendering.


def _secs(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:.2f}" if x < 100 else f"{x:.0f}"


def _int(x: Optional[int]) -> str:
    return "-" if x is None else f"{x:,}"


def _vs(value: Optional[int], hand: int) -> str:
    if value is None:
        return "not reported"
    if value == hand:
        return "= hand"
    diff = value - hand
    return f"{diff:+,}" if abs(diff) < 1000 else f"{100 * diff / hand:+.2f} %"


def table(rows: List[Sequence[str]], right: Sequence[int] = ()) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.rjust(w) if i in right and n else c.ljust(w)
                        for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for n, r in enumerate(rows)]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def model_table(model, runs: Dict[str, Run], mem_bytes: int) -> str:
    base = runs.get("baseline")
    tool = runs.get("onnx-tool")
    rows = [("tool", "wall s", "work s", "peak RSS MB", "params", "MACs", "params", "MACs",
             "wall / baseline", "onnx-tool / this")]
    for name in TOOLS:
        r = runs.get(name)
        if r is None:
            continue
        if r.skipped:
            rows.append((name, "skipped", "", "", "", "", "", "", "", r.skipped))
            continue
        if r.error:
            rss = "-" if r.rss_mb is None else f"{r.rss_mb:,.0f}"
            rows.append((name, f"{r.wall:.1f} (killed)", _secs(r.work), rss, "-", "-", "-", "-", "-", "-"))
            continue
        ratio = f"{r.wall / base.wall:.2f}x" if base and base.ok else "-"
        speed = "-"
        if tool and tool.ok:
            speed = f"{tool.wall / r.wall:.1f}x"
        elif tool and tool.error:  # it ran that long and gave nothing: a lower bound
            speed = f"> {tool.wall / r.wall:.0f}x"
        rows.append((name, _secs(r.wall), _secs(r.work), f"{r.rss_mb:,.0f}" if r.rss_mb is not None else "-",
                     _int(r.params), _int(r.macs), _vs(r.params, model.params), _vs(r.macs, model.macs),
                     ratio, speed))
    text = table(rows, right=(1, 2, 3, 4, 5, 8, 9))
    notes = []
    for name in TOOLS:
        r = runs.get(name)
        if r and r.error:
            rss = f"{r.rss_mb / 1024:.1f} GB" if r.rss_mb is not None else "unknown"
            limit = mem_bytes / 2**30
            at_limit = (f", the {limit:.1f} GB address-space limit reached"
                        if r.rss_mb is not None and r.rss_mb * 2**20 > 0.9 * mem_bytes else "")
            notes.append(f"  {name}: did not finish ({r.error}); at {r.wall:.1f} s, peak RSS {rss}{at_limit}")
        elif r and len(r.walls) > 1:
            notes.append(f"  {name}: wall s of {len(r.walls)} runs: "
                         + ", ".join(f"{w:.2f}" for w in r.walls) + (f"; {r.note}" if r.note else ""))
        elif r and r.ok and r.note:
            notes.append(f"  {name}: {r.note}")
    notes += [f"  note: {n}" for n in model.notes]
    return text + ("\n" + "\n".join(notes) if notes else "")


def acceptance(results: Dict[str, Dict[str, Run]], quick: bool) -> List[str]:
    """The issue's acceptance lines with the measured numbers (printed, never asserted)."""
    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    lines = []
    runs = results.get("decoder 1.3B", {})
    cli, base, tool = runs.get("onnxscore CLI"), runs.get("baseline"), runs.get("onnx-tool")
    api = runs.get("onnxscore API")
    if cli and cli.ok and base and base.ok:
        ratio = cli.wall / base.wall
        lines.append(f"1.3B decoder: onnxscore wall <= {MAX_RATIO_TO_BASELINE:g}x baseline: "
                     f"{cli.wall:.2f} s / {base.wall:.2f} s = {ratio:.2f}x  {verdict(ratio <= MAX_RATIO_TO_BASELINE)}"
                     f"  (medians of {len(cli.walls)}; best runs {min(cli.walls):.2f} s / {min(base.walls):.2f} s = "
                     f"{min(cli.walls) / min(base.walls):.2f}x)")
        if api and api.ok and base.work:
            lines.append(f"    the analysis alone, timed in process (no interpreter start, no imports): "
                         f"onnxscore.analyze {api.work:.2f} s / load + infer_shapes {base.work:.2f} s = "
                         f"{api.work / base.work:.1f}x")
        lines.append(f"1.3B decoder: onnxscore peak RSS < {MAX_RSS_MB} MB: {cli.rss_mb:.0f} MB  "
                     f"{verdict(cli.rss_mb is not None and cli.rss_mb < MAX_RSS_MB)}")
    if cli and cli.ok and tool and tool.ok:
        speedup = tool.wall / cli.wall
        lines.append(f"1.3B decoder: >= {MIN_SPEEDUP_OVER_ONNX_TOOL}x faster than onnx-tool: {tool.wall:.1f} s / "
                     f"{cli.wall:.2f} s = {speedup:.0f}x  {verdict(speedup >= MIN_SPEEDUP_OVER_ONNX_TOOL)}")
    elif cli and cli.ok and tool and tool.error:
        lines.append(f"1.3B decoder: >= {MIN_SPEEDUP_OVER_ONNX_TOOL}x faster than onnx-tool: onnx-tool did not "
                     f"finish ({tool.error}); at least {tool.wall / cli.wall:.0f}x  "
                     f"{verdict(tool.wall / cli.wall >= MIN_SPEEDUP_OVER_ONNX_TOOL)}")
    else:
        lines.append(f"1.3B decoder: >= {MIN_SPEEDUP_OVER_ONNX_TOOL}x faster than onnx-tool: not measured"
                     + (" (--quick)" if quick else ""))
    big = results.get("decoder 7B-shaped", {}).get("onnxscore CLI")
    if big and big.ok:
        lines.append(f"7B-shaped decoder: onnxscore under {MAX_7B_SECONDS:g} s: {big.wall:.2f} s  "
                     f"{verdict(big.wall < MAX_7B_SECONDS)}")
    else:
        lines.append("7B-shaped decoder: onnxscore under 2 s: not measured" + (" (--quick)" if quick else ""))
    return lines


# ---------------------------------------------------------------------------------------------


STARTUP = (("python", "pass"), ("import onnx", "import onnx"), ("import onnx_tool", "import onnx_tool"),
           ("import onnxscore.walk", "import onnxscore.walk"))


def startup_seconds(repeats: int) -> str:
    """What a process pays before any analysis: interpreter start and imports (median of runs)."""
    parts = []
    for label, code in STARTUP:
        walls = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, check=False)
            walls.append(time.perf_counter() - t0)
        if done.returncode == 0:
            parts.append(f"{label} {sorted(walls)[(len(walls) - 1) // 2]:.2f} s")
    return ", ".join(parts)


def _mem_limit() -> int:
    """20 GB, or 85 % of the memory available now if that is less (no swap: stay clear of the OOM killer)."""
    if "ONNXSCORE_BENCH_MEM_GB" in os.environ:
        return int(float(os.environ["ONNXSCORE_BENCH_MEM_GB"]) * 2**30)
    limit = 20 * 2**30
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        limit = min(limit, int(info["MemAvailable"] * 0.85))
    except (OSError, KeyError, ValueError):
        pass
    return limit


def _machine() -> str:
    mem = "?"
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            mem = f"{int(f.readline().split()[1]) / 2**20:.0f} GB"
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for dist in ("onnx", "onnx-tool", "onnxsim", "onnxscore"):
        try:
            versions.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            versions.append(f"{dist} not installed")
    return (f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores, {mem} RAM, "
            f"Python {platform.python_version()}, {', '.join(versions)}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(argv or [])
    if argv[:1] == ["--worker"]:
        return worker(argv[1:])
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from benchmarks.models import build_models

    quick = "--quick" in argv or os.environ.get("ONNXSCORE_BENCH_QUICK", "") not in ("", "0")
    timeout = float(os.environ.get("ONNXSCORE_BENCH_TIMEOUT", "300"))
    mem = _mem_limit()
    repeats = 1 if quick else REPEATS
    have_onnxsim = importlib.util.find_spec("onnxsim") is not None
    print(_machine())
    print(f"each tool in its own process{' under /usr/bin/time -v' if TIME else ''}; timeout {timeout:.0f} s, "
          f"address-space limit {mem / 2**30:.1f} GB; fast tools run {repeats}x (median wall, worst RSS)"
          + ("; --quick: no 7B-shaped decoder, no onnx-tool on the decoders" if quick else ""))
    print(f"interpreter start + imports alone (median of {repeats}): {startup_seconds(repeats)}")
    if not have_onnxsim:
        print("onnxsim: not installed (`.venv/bin/pip install onnxsim`); skipped")
    problems: List[str] = []
    results: Dict[str, Dict[str, Run]] = {}
    with tempfile.TemporaryDirectory(prefix="onnxscore-llm-") as folder:
        t0 = time.perf_counter()
        models = build_models(folder, include_7b=not quick)
        print(f"models built in {time.perf_counter() - t0:.1f} s")
        for model in models:
            runs: Dict[str, List[Run]] = {}
            skipped: Dict[str, str] = {}
            if quick and model.large:
                skipped["onnx-tool"] = "--quick"
            if not have_onnxsim:
                skipped["onnxsim"] = "not installed"
            active = [t for t in TOOLS if t not in skipped]
            for i in range(repeats):
                for tool in active:
                    if tool in SLOW_TOOLS and i:
                        continue
                    runs.setdefault(tool, []).append(measure(tool, model.path, model.dims, timeout, mem))
            merged = {t: median_run(rs) for t, rs in runs.items()}
            merged.update({t: Run(t, skipped=why) for t, why in skipped.items()})
            results[model.name] = merged
            dims = ", ".join(f"{k}={v}" for k, v in model.dims.items()) or "as declared"
            print(f"\n{model.name} ({dims}; {model.describe()}): hand count {model.params:,} params, "
                  f"{model.macs:,} MACs")
            print(model_table(model, merged, mem))
            for name in ("onnxscore CLI", "onnxscore API"):
                r = merged[name]
                if not r.ok:
                    problems.append(f"{model.name}: {name} failed: {r.error}")
                elif (r.params, r.macs) != (model.params, model.macs):
                    problems.append(f"{model.name}: {name} counted {r.params:,} params and {r.macs:,} MACs; "
                                    f"the hand count is {model.params:,} and {model.macs:,}")
    print("\nacceptance (issue), onnxscore CLI process against the baseline process:")
    for line in acceptance(results, quick):
        print("  " + line)
    if problems:
        raise BenchmarkError("; ".join(problems))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
