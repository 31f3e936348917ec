"""``onnxscore rank`` over a synthetic zoo of 1,000 small models: models per second, local and Dask.

The zoo is built here at run time with onnx.helper, in a temporary folder (nothing is
downloaded), from a seeded random generator: two models out of three are small CNNs (1 to 4
blocks of Conv k x k with same padding, with or without bias, some depthwise, Relu, at times a
2 x 2 MaxPool; then GlobalAveragePool, Flatten and a Gemm to 10 classes), the third an MLP of 1
to 4 Gemm layers with Relu between, on a batch of 1, 2 or 4. Every file is distinct (random
weights), and every model's parameters and MACs are known by construction (the builders'
docstrings give the formulas); each has a random top-1 in ``accuracy.csv``.

Each run is a whole process (interpreter start and imports included) under ``/usr/bin/time
-v``, with a fresh cache folder, onnxscore's bytecode compiled first as an install does
(:func:`fresh_bytecode`):

* ``onnxscore rank ZOO --accuracy accuracy.csv --format json -o OUT`` with ``--jobs 1``,
  ``--jobs 2`` and ``--scheduler local:2`` (a 2-worker Dask LocalCluster, started by the run);
* the same command again on the cache of the ``--jobs 2`` run: every model from the cache;
* onnx-tool analyzing the same files one after another in one process (``onnx_tool.Model``,
  ``graph.shape_infer`` with zero inputs, ``graph.profile``), as ``benchmarks/llm.py`` drives it;
* ``--jobs 1`` and ``--jobs 2`` again on a zoo of the first 10 models alone: what a run pays
  whatever its size (interpreter, imports, ONNX's schema registry, the pool's start), taken off
  the whole runs to give the models' own rate and the ratio of the two without it.

Every onnxscore study is checked against the hand counts (parameters, MACs and top-1 of every
model, no failure, the counts of analyzed and cached models), so a fast wrong answer fails the
run; onnx-tool's counts are compared and reported (it counts bias adds, activations and pooling
as MACs). Timings are printed, never asserted; the load average is printed with each run.

``--resume-check`` (also run by ``main``): the issue's interrupt acceptance point. 200 models;
``onnxscore rank --jobs 2`` interrupted with SIGINT (as Ctrl-C sends it to the foreground
process group) once about half are in the cache; then the same command again, which must
analyze only the rest and print how many came from the cache, and give the same JSON as an
uninterrupted run (``cached`` flags and counts aside). The interrupted run must exit 130 with
one line on stderr and leave no process behind.

    .venv/bin/python benchmarks/rank.py [--models 1000] [--runs 1] [--only resume|speed]
    ONNXSCORE_BENCH_QUICK=1 make bench            # 200 models, and the resume check
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.builders import strip_cache  # noqa: E402
TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
CLASSES = 10
N_MODELS = 1000
N_QUICK = 200
N_RESUME = 200
CACHE_FILE = "results.sqlite"  # onnxscore.cache.Cache keeps its store under this name
RUNS = ("--jobs 1", "--jobs 2", "local:2", "cached", "onnx-tool")
N_START = 10  # the zoo whose runs stand for what every run pays once
START_RUNS = ("--jobs 1, 10 models", "--jobs 2, 10 models")
GOAL_JOBS = 1.7   # --jobs 2 over --jobs 1, models per second
GOAL_CACHED = 20  # cold over fully cached, wall time


class BenchmarkError(RuntimeError):
    """onnxscore gave a wrong answer, or the interrupt check failed (not merely a slow run)."""


@dataclass(frozen=True)
class Built:
    name: str   # file stem: the model's name in the study and in accuracy.csv
    path: str
    params: int
    macs: int
    top1: float


# ---------------------------------------------------------------------------------------------
# The zoo.


def _weight(rng: np.random.Generator, name: str, shape):
    from onnx import numpy_helper

    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def cnn(rng: np.random.Generator):
    """Input [1, C, H, H] (C 1 or 3, H 8, 16 or 32); 1 to 4 blocks of Conv k x k (k 1, 3 or 5,
    pads k // 2, so H stays), with a bias 60 % of the time, depthwise (group = C = Cout) 30 % of
    the time once C >= 4, then Relu, then half of the time a 2 x 2 MaxPool of stride 2 (H halves);
    GlobalAveragePool, Flatten, Gemm(transB) to 10 classes with a bias. Per convolution

        params = Cout * (Cin / group) * k * k  (+ Cout with a bias)
        MACs   = N * Cout * H * W * (Cin / group) * k * k        (N = 1; the bias adds FLOPs only)

    and the Gemm C * 10 + 10 parameters, 1 * 10 * C MACs (M * N * K); Relu and pooling cost
    FLOPs, no MACs."""
    from onnx import TensorProto, helper

    c, h = int(rng.choice([1, 3])), int(rng.choice([8, 16, 32]))
    nodes, weights, x = [], [], "x"
    params = macs = 0
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, h])]
    for b in range(int(rng.integers(1, 5))):
        k = int(rng.choice([1, 3, 5]))
        depthwise = c >= 4 and rng.random() < 0.3
        cout, group = (c, c) if depthwise else (int(rng.integers(2, 17)), 1)
        names = [x, f"conv{b}.w"]
        weights.append(_weight(rng, f"conv{b}.w", (cout, c // group, k, k)))
        params += cout * (c // group) * k * k
        if rng.random() < 0.6:
            weights.append(_weight(rng, f"conv{b}.b", (cout,)))
            names.append(f"conv{b}.b")
            params += cout
        macs += 1 * cout * h * h * (c // group) * k * k
        nodes.append(helper.make_node("Conv", names, [f"c{b}"], name=f"conv{b}", kernel_shape=[k, k],
                                      pads=[k // 2] * 4, group=group))
        nodes.append(helper.make_node("Relu", [f"c{b}"], [f"r{b}"], name=f"relu{b}"))
        x, c = f"r{b}", cout
        if h >= 4 and rng.random() < 0.5:
            nodes.append(helper.make_node("MaxPool", [x], [f"p{b}"], name=f"pool{b}", kernel_shape=[2, 2],
                                          strides=[2, 2]))
            x, h = f"p{b}", h // 2
    nodes += [helper.make_node("GlobalAveragePool", [x], ["g"], name="gap"),
              helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
              helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["y"], name="fc", transB=1)]
    weights += [_weight(rng, "fc.w", (CLASSES, c)), _weight(rng, "fc.b", (CLASSES,))]
    params += CLASSES * c + CLASSES
    macs += 1 * CLASSES * c
    return nodes, weights, inputs, params, macs


def mlp(rng: np.random.Generator):
    """Input [B, n] (B 1, 2 or 4; n 8 to 64); 0 to 3 hidden Gemm(transB) layers of width 8 to 64
    with Relu after each, then a Gemm to 10 classes; every Gemm has a bias. Per Gemm from n to
    out features: params = out * n + out, MACs = B * out * n (M * N * K; the bias adds FLOPs)."""
    from onnx import TensorProto, helper

    batch, n = int(rng.choice([1, 2, 4])), int(rng.integers(8, 65))
    nodes, weights, x = [], [], "x"
    params = macs = 0
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, n])]
    widths = [int(rng.integers(8, 65)) for _ in range(int(rng.integers(0, 4)))] + [CLASSES]
    for j, out in enumerate(widths):
        last = j == len(widths) - 1
        weights += [_weight(rng, f"fc{j}.w", (out, n)), _weight(rng, f"fc{j}.b", (out,))]
        y = "y" if last else f"h{j}"
        nodes.append(helper.make_node("Gemm", [x, f"fc{j}.w", f"fc{j}.b"], [y], name=f"fc{j}", transB=1))
        params += out * n + out
        macs += batch * out * n
        if not last:
            nodes.append(helper.make_node("Relu", [y], [f"a{j}"], name=f"relu{j}"))
            x = f"a{j}"
        n = out
    return nodes, weights, inputs, params, macs


def build_zoo(folder: str, count: int, seed: int = 0) -> List[Built]:
    """``count`` models in ``folder/zoo`` (``m0000_cnn.onnx``, ...; every third an MLP) and
    their top-1, uniform in [50, 85] %, in ``folder/accuracy.csv`` (columns model, top1)."""
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(folder, "zoo"), exist_ok=True)
    built = []
    for i in range(count):
        kind = "mlp" if i % 3 == 2 else "cnn"
        nodes, weights, inputs, params, macs = (mlp if kind == "mlp" else cnn)(rng)
        name = f"m{i:04d}_{kind}"
        graph = helper.make_graph(nodes, name, inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                                  weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                  producer_name="onnxscore-benchmarks")
        path = os.path.join(folder, "zoo", name + ".onnx")
        onnx.save_model(model, path)
        built.append(Built(name, path, params, macs, round(float(rng.uniform(50, 85)), 2)))
    with open(os.path.join(folder, "accuracy.csv"), "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["model", "top1"])
        out.writerows([b.name, f"{b.top1:.2f}"] for b in built)
    return built


# ---------------------------------------------------------------------------------------------
# Checking a study against the hand counts.


def check_study(data: dict, built: Sequence[Built], analyzed: int, cached: int, label: str) -> None:
    """Raise BenchmarkError unless ``data`` (a study's JSON) has every model of ``built`` with
    its hand-counted parameters and MACs and its top-1 from the table, no failure, and the
    given numbers of analyzed and cached models."""
    problems = []
    rows = {r["model"]: r for r in data["rows"]}
    if len(data["rows"]) != len(built) or set(rows) != {b.name for b in built}:
        problems.append(f"{len(data['rows'])} rows for {len(built)} models")
    for b in built:
        r = rows.get(b.name)
        if r is None:
            continue
        if r["error"] is not None:
            problems.append(f"{b.name}: {r['error']}")
        elif (r["params"], r["macs"]) != (b.params, b.macs):
            problems.append(f"{b.name}: {r['params']} params and {r['macs']} MACs; by hand {b.params} and {b.macs}")
        elif r["top1"] != b.top1 or r["accuracy_source"] != "table":
            problems.append(f"{b.name}: top-1 {r['top1']} ({r['accuracy_source']}), the table says {b.top1}")
        if len(problems) >= 5:
            break
    counts = data["counts"]
    if (counts["analyzed"], counts["cached"], counts["failed"]) != (analyzed, cached, 0):
        problems.append(f"counts {counts}; expected {analyzed} analyzed, {cached} from the cache, 0 failed")
    if problems:
        raise BenchmarkError(f"{label}: " + "; ".join(problems))


# ---------------------------------------------------------------------------------------------
# onnx-tool, in a child process: ``--onnx-tool FOLDER`` prints one JSON line.


def onnx_tool_worker(folder: str) -> int:
    """Every ``*.onnx`` of ``folder`` (sorted) through onnx-tool one after another: ``Model``,
    ``graph.shape_infer`` with zero inputs of the declared shapes, ``graph.profile``."""
    import onnx
    import onnx_tool

    t0 = time.perf_counter()
    figures, errors = {}, {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".onnx"):
            continue
        try:
            model = onnx_tool.Model(os.path.join(folder, name))
            g, proto = model.graph, model.mproto.graph
            inits = {t.name for t in proto.initializer}
            feeds = {}
            for vi in proto.input:
                if vi.name not in inits:
                    tt = vi.type.tensor_type
                    feeds[vi.name] = np.zeros([d.dim_value for d in tt.shape.dim],
                                              dtype=onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type))
            g.shape_infer(feeds)
            g.profile()
            figures[name[:-5]] = (int(g.params), round(g.macs[0]))
        except Exception as e:  # noqa: BLE001 - counted and reported, as a failed row would be
            errors[name[:-5]] = f"{type(e).__name__}: {str(e)[:120]}"
    print(json.dumps({"work": time.perf_counter() - t0, "figures": figures, "errors": errors}))
    return 0


# ---------------------------------------------------------------------------------------------
# Running and timing.


@dataclass
class Timed:
    wall: float
    rss_mb: Optional[float]
    code: int
    out: str
    err: str
    load: Tuple[float, float]  # 1-minute load average before and after
    cpu: Optional[float] = None  # user + system seconds of the process and the children it waited for


def timed(cmd: List[str], cwd: str, timeout: float = 1800) -> Timed:
    """``cmd`` under ``/usr/bin/time -v`` (peak RSS of the main process), its wall time measured
    here; output captured."""
    with tempfile.NamedTemporaryFile(prefix="onnxscore-time-", suffix=".txt") as tf:
        full = [TIME, "-v", "-o", tf.name, *cmd] if TIME else list(cmd)
        before = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.run(full, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")))
        wall = time.perf_counter() - t0
        with open(tf.name, encoding="utf-8", errors="replace") as f:
            report = f.read()
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
    cpu = re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", report)
    return Timed(wall, int(rss.group(1)) / 1024 if rss else None, proc.returncode, proc.stdout, proc.stderr,
                 (before, os.getloadavg()[0]), sum(map(float, cpu)) if len(cpu) == 2 else None)


def rank_cmd(cache: str, out: str, *options: str) -> List[str]:
    return [sys.executable, "-m", "onnxscore", "rank", "zoo", "--accuracy", "accuracy.csv", "--cache-dir", cache,
            "--format", "json", "-o", out, *options]


def run_onnxscore(label: str, folder: str, built: Sequence[Built], cache: str, options: Sequence[str],
                  analyzed: int, cached: int) -> Tuple[Timed, dict]:
    """One ``onnxscore rank`` process, its study checked; (its timing, its JSON)."""
    out = os.path.join(folder, "study.json")
    t = timed(rank_cmd(cache, out, *options), folder)
    if t.code != 0:
        raise BenchmarkError(f"{label}: onnxscore rank exited {t.code}: {t.err.strip()[-2000:]}")
    with open(out, encoding="utf-8") as f:
        data = json.load(f)
    check_study(data, built, analyzed, cached, label)
    return t, data


def run_onnx_tool(folder: str, built: Sequence[Built]) -> Tuple[Timed, str]:
    t = timed([sys.executable, "-m", "benchmarks.rank", "--onnx-tool", os.path.join(folder, "zoo")], ROOT)
    if t.code != 0:
        return t, f"exit {t.code}: {t.err.strip().splitlines()[-1:]}"
    result = json.loads(t.out.strip().splitlines()[-1])
    figures, hand = result["figures"], {b.name: b for b in built}
    same_params = sum(1 for name, (p, _) in figures.items() if p == hand[name].params)
    over = [m / hand[name].macs - 1 for name, (_, m) in figures.items() if hand[name].macs]
    note = (f"{len(figures)} analyzed, {len(result['errors'])} failed; parameters = hand on {same_params}, "
            f"MACs above the hand count by {100 * min(over):.0f} % to {100 * max(over):.0f} % "
            f"(median {100 * sorted(over)[len(over) // 2]:.0f} %): it counts bias adds, Relu and pooling")
    return t, note


def speed(count: int, runs: int) -> List[str]:
    """The speed table and the ratios against the issue's goals (set for 1,000 models: with
    fewer, interpreter start and worker start weigh more); returns the ratio lines. A wrong
    answer raises BenchmarkError."""
    with tempfile.TemporaryDirectory(prefix="onnxscore-rank-") as folder:
        t0 = time.perf_counter()
        built = build_zoo(folder, count)
        print(f"{count} models built in {time.perf_counter() - t0:.1f} s "
              f"({sum(os.path.getsize(b.path) for b in built) / 2**20:.1f} MB)")
        small = os.path.join(folder, "start")
        few = build_zoo(small, min(N_START, count))  # the same seed: the zoo's first models
        has_tool = _importable("onnx_tool")
        has_dask = _importable("distributed")
        best: Dict[str, Timed] = {}
        notes: Dict[str, str] = {}
        for n in range(runs):  # interleaved, so that a change of load hits every run alike
            caches = {label: os.path.join(folder, f"cache-{label.replace(' ', '').replace(':', '')}-{n}")
                      for label in RUNS}
            plan = [("--jobs 1", ["--jobs", "1"]), ("--jobs 2", ["--jobs", "2"])]
            if has_dask:
                plan.append(("local:2", ["--scheduler", "local:2"]))
            for label, options in plan:
                _keep(best, label, run_onnxscore(label, folder, built, caches[label], options, count, 0)[0])
            for k, (label, (_, options)) in enumerate(zip(START_RUNS, plan)):
                _keep(best, label, run_onnxscore(label, small, few, os.path.join(small, f"cache-{k}-{n}"), options,
                                                 len(few), 0)[0])
            for _ in range(3):  # cheap: best of three, on the --jobs 2 run's cache
                _keep(best, "cached", run_onnxscore("cached", folder, built, caches["--jobs 2"], ["--jobs", "2"],
                                                    0, count)[0])
            if has_tool:
                t, notes["onnx-tool"] = run_onnx_tool(folder, built)
                _keep(best, "onnx-tool", t)
    if not has_dask:
        notes["local:2"] = "dask.distributed not installed (pip install onnxscore[dask]): skipped"
    if not has_tool:
        notes["onnx-tool"] = "onnx-tool not installed: skipped"
    print("\n| run | wall s | models/s | CPU s | peak RSS MB (main process) | load avg (1 min) before → after |")
    print("|---|--:|--:|--:|--:|---|")
    for label in RUNS + START_RUNS:
        t = best.get(label)
        if t is None:
            print(f"| {label} | - | - | - | - | {notes.get(label, '')} |")
            continue
        name = {"cached": "cached re-run (--jobs 2)", "onnx-tool": "onnx-tool, one process"}.get(label, label)
        # CPU: what /usr/bin/time counts, the process and the children it waited for: all of the
        # work in one process (its inference children included), not a pool's or a cluster's
        cpu = f"{t.cpu:.2f}" if t.cpu is not None and label not in ("--jobs 2", "local:2", START_RUNS[1]) else "-"
        models = min(N_START, count) if label in START_RUNS else count
        print(f"| {name} | {t.wall:.2f} | {models / t.wall:,.0f} | {cpu} | {t.rss_mb or 0:,.0f} | "
              f"{t.load[0]:.2f} → {t.load[1]:.2f} |")
    lines = []
    j1, j2, dk, ca, tool = (best.get(k) for k in RUNS)
    if j1 and j1.cpu:
        cores = j1.cpu / j1.wall
        lines.append(f"--jobs 1 keeps {cores:.2f} cores busy (CPU s / wall s: the analysis and its shape-inference "
                     f"child overlap), so on {os.cpu_count()} cores --jobs 2 can be at most "
                     f"{(os.cpu_count() or 1) / cores:.2f}x faster")
    if j1 and j2:
        r = j1.wall / j2.wall
        lines.append(f"--jobs 2 / --jobs 1, models per second: {r:.2f}x (goal >= {GOAL_JOBS}x)  "
                     f"{_verdict(r >= GOAL_JOBS)}{_goal_note(count)}")
    s1, s2 = (best.get(k) for k in START_RUNS)
    if j1 and j2 and s1 and s2 and count > N_START:
        rest = count - N_START
        w1, w2 = j1.wall - s1.wall, j2.wall - s2.wall
        lines.append(f"what every run pays (the {N_START}-model runs): --jobs 1 {s1.wall:.2f} s, --jobs 2 "
                     f"{s2.wall:.2f} s; the other {rest} models: --jobs 1 {w1:.2f} s ({rest / w1:,.0f} models/s), "
                     f"--jobs 2 {w2:.2f} s ({rest / w2:,.0f} models/s), {w1 / w2:.2f}x")
    if j1 and dk:
        lines.append(f"local:2 (Dask LocalCluster, 2 workers) / --jobs 1: {j1.wall / dk.wall:.2f}x")
    if ca:
        for cold, name in ((j2, "--jobs 2"), (j1, "--jobs 1")):
            if cold:
                r = cold.wall / ca.wall
                lines.append(f"cold {name} / cached re-run: {r:.1f}x (goal >= {GOAL_CACHED}x)  "
                             f"{_verdict(r >= GOAL_CACHED)}{_goal_note(count)}")
    if tool:
        for t, name in ((j1, "--jobs 1"), (j2, "--jobs 2")):
            if t:
                lines.append(f"onnxscore {name} / onnx-tool, models per second: {tool.wall / t.wall:.2f}x")
    print()
    for line in lines + [f"{k}: {v}" for k, v in notes.items()]:
        print(line)
    return lines


def _keep(best: Dict[str, Timed], label: str, t: Timed) -> None:
    if label not in best or t.wall < best[label].wall:
        best[label] = t


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _goal_note(count: int) -> str:
    return "" if count >= N_MODELS else f"  (the goals are for {N_MODELS:,} models; {count} here)"


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# ---------------------------------------------------------------------------------------------
# The interrupt check.


def _rows(db: str) -> int:
    """Rows in the cache's SQLite file, read-only (0 before the run has made it)."""
    if not os.path.exists(db):
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # created, the table not yet
        return 0


def _session(sid: int) -> List[str]:
    """The processes still in session ``sid`` (the interrupted run's), as ``pid command``."""
    left = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[3]) == sid and fields[0] != "Z":  # session id, not a zombie
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    command = f.read().replace(b"\0", b" ").decode(errors="replace")
                left.append(f"{pid} {command[:120]}")
        except (OSError, ValueError, IndexError):
            continue
    return left


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def resume_check(count: int = N_RESUME) -> List[str]:
    """Interrupt ``onnxscore rank --jobs 2`` after about half of ``count`` models, run it again,
    and compare with an uninterrupted run; raise BenchmarkError on any failure."""
    with tempfile.TemporaryDirectory(prefix="onnxscore-resume-") as folder:
        built = build_zoo(folder, count, seed=1)
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        ref_cache, cache = os.path.join(folder, "cache-ref"), os.path.join(folder, "cache")
        db = os.path.join(cache, CACHE_FILE)
        ref, reference = run_onnxscore("uninterrupted", folder, built, ref_cache, ["--jobs", "2"], count, 0)
        cmd = rank_cmd(cache, os.path.join(folder, "interrupted.json"), "--jobs", "2")
        # a session of its own: SIGINT to its process group is what a terminal's Ctrl-C sends;
        # SIGINT handled by default, as in a terminal's foreground job (a non-interactive shell
        # starts background commands with it ignored, and children inherit that)
        proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True,
                                preexec_fn=_default_sigint)  # noqa: PLW1509 - no threads here
        t0, at = time.perf_counter(), None
        while proc.poll() is None and time.perf_counter() - t0 < 600:
            n = _rows(db)
            if n >= count // 2:
                os.killpg(proc.pid, signal.SIGINT)
                at = n
                break
            time.sleep(0.005)
        out, err = proc.communicate(timeout=120)
        interrupted_in = time.perf_counter() - t0
        left_at_exit = _session(proc.pid)
        time.sleep(1.0)
        left = _session(proc.pid)
        kept = _rows(db)
        again_t = timed(rank_cmd(cache, os.path.join(folder, "again.json"), "--jobs", "2"), folder)
        problems = []
        if at is None:
            problems.append(f"the run ended (exit {proc.returncode}) before {count // 2} models were in the cache")
        if proc.returncode != 130:
            problems.append(f"the interrupted run exited {proc.returncode}, not 130")
        if len(err.strip().splitlines()) != 1 or "Traceback" in err:
            problems.append(f"the interrupted run wrote {len(err.strip().splitlines())} lines to stderr: "
                            f"{err[-1500:]!r}")
        if left:
            problems.append(f"{len(left)} process(es) left 1 s after the interrupted run ended: {left}")
        if again_t.code != 0:
            problems.append(f"the re-run exited {again_t.code}: {again_t.err[-1500:]}")
        summary = again_t.err.strip().splitlines()[-1] if again_t.err.strip() else ""
        if summary != f"onnxscore rank: {count} model(s): {count - kept} analyzed, {kept} from the cache, 0 failed":
            problems.append(f"the re-run's summary is {summary!r}, with {kept} models in the cache before it")
        same = False
        if again_t.code == 0:
            with open(os.path.join(folder, "again.json"), encoding="utf-8") as f:
                again = json.load(f)
            check_study(again, built, count - kept, kept, "re-run")
            same = strip_cache(again) == strip_cache(reference)
            if not same:
                problems.append("the re-run's JSON differs from the uninterrupted run's")
        lines = [f"{count} models, --jobs 2: uninterrupted run {ref.wall:.2f} s",
                 f"SIGINT to the run's process group when the cache held {at} rows, {interrupted_in:.2f} s after "
                 f"the start; exit {proc.returncode}; stderr: {err.strip()!r}",
                 f"processes of the run's session at its exit: {len(left_at_exit)}, 1 s later: {len(left)}",
                 f"in the cache after the interrupt: {kept} (written before it: {at}, while stopping: "
                 f"{kept - (at or 0)})",
                 f"re-run: {summary!r} in {again_t.wall:.2f} s",
                 f"re-run JSON = uninterrupted JSON (cached flags and counts aside): {same}"]
        print("\n".join(lines))
        if problems:
            raise BenchmarkError("interrupt check: " + "; ".join(problems))
        return lines


# ---------------------------------------------------------------------------------------------


def fresh_bytecode() -> List[str]:
    """Compile onnxscore's modules whose bytecode is missing or stale, as installing it does (pip
    compiles every module once); returns them, relative to the repository. With
    PYTHONDONTWRITEBYTECODE set (as in this project's containers), a module edited since its
    .pyc was written is compiled again by every process that imports it, 5-30 ms each
    (study.py and cli.py 13 ms, ops/contrib.py 31 ms): start-up that an installed copy never
    pays, and that would vary with whoever edited what last."""
    import compileall
    import importlib.util

    package = os.path.join(ROOT, "onnxscore")
    pycs = {}
    for folder, _, files in os.walk(package):
        for f in files:
            if f.endswith(".py"):
                pycs[os.path.join(folder, f)] = importlib.util.cache_from_source(os.path.join(folder, f))

    def stamps():
        return {src: os.stat(pyc).st_mtime_ns if os.path.exists(pyc) else None for src, pyc in pycs.items()}

    before = stamps()
    compileall.compile_dir(package, quiet=1)
    after = stamps()
    return sorted(os.path.relpath(src, ROOT) for src in pycs if after[src] != before[src])


def main(argv: Sequence[str] = ()) -> int:
    """The speed table, then the interrupt check; ``argv`` are this script's options (none when
    ``make bench`` calls it)."""
    argv = list(argv)
    if argv[:1] == ["--onnx-tool"]:
        return onnx_tool_worker(argv[1])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=N_MODELS)
    parser.add_argument("--runs", type=int, default=int(os.environ.get("ONNXSCORE_BENCH_RUNS", 1)))
    parser.add_argument("--only", choices=("speed", "resume"), default=None)
    parser.add_argument("--resume-check", action="store_true", help="the interrupt check alone")
    args = parser.parse_args(argv)
    if os.environ.get("ONNXSCORE_BENCH_QUICK", "") not in ("", "0"):
        args.models, args.runs = min(args.models, N_QUICK), 1
    if args.resume_check:
        args.only = "resume"
    print(f"{os.cpu_count()} cores, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"(1, 5, 15 min), Python {sys.version.split()[0]}")
    compiled = fresh_bytecode()
    print(f"bytecode compiled first, as an install does: {', '.join(compiled) if compiled else 'none stale'}")
    if args.only in (None, "speed"):
        speed(args.models, args.runs)
    if args.only in (None, "resume"):
        print("\ninterrupt and resume (issue acceptance point):")
        resume_check()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
