"""The NetScore paper's study over a model zoo: every model analyzed, then ranked.

A. Wong, "NetScore: Towards Universal Metrics for Large-scale Performance Analysis of Deep
Neural Networks for Practical On-Device Edge Usage", arXiv:1806.05512 (2018), compares networks
by NetScore, top-1 accuracy and information density side by side. :func:`rank` does that for
any set of ONNX files and returns a :class:`Study`:

* **Ranks** under each of the three metrics (higher is better), over the models with an
  accuracy. Ties share a rank and the next rank skips ("competition" ranking: 1, 2, 2, 4).
  Values are compared exactly as computed (two identical models tie; no rounding).
* **Pareto fronts** of top-1 against MACs and against parameters: a model is on a front when
  no other model has a top-1 at least as high and a cost at most as high, one of them strictly.
  Two models equal in both are both on it.
* **Rank correlations** between the three metrics over the models that have all three:
  Spearman's rho (Pearson's correlation of the ranks, ties given their average rank; with no
  ties it equals ``1 - 6*sum(d**2) / (n*(n**2 - 1))``) and Kendall's tau-b
  (``(C - D) / sqrt((C + D + Tx) * (C + D + Ty))``: C concordant pairs, D discordant, Tx pairs
  tied in x only, Ty in y only). None when fewer than two models or a metric is constant.

Accuracy (top-1 in %) comes from a table (:func:`load_accuracies`), matched to a model by its
path (as given, relative to the working directory, to the folder it was found in, to the
table's folder, or its file name), then by its file stem; otherwise from the model's
``onnxscore.accuracy`` metadata. A model without one keeps its costs in the study and is left
out of the accuracy-based ranks, fronts and correlations.

Each model's figures come from the result cache of ``onnxscore check`` when the file and the
options are unchanged (same key: file SHA-256, onnxscore version, dims, input shapes, values);
every model analyzed is written to the cache as soon as it finishes, so an interrupted study
loses only the analyses in flight. Analyses run in this process (``jobs=1``), in ``jobs``
local processes, or on a Dask distributed cluster (``scheduler``); the study is the same.

With a ``device`` (:func:`onnxscore.device.load_device`), each row also has ``est_latency_ms``,
the roofline estimate on it that ``check``'s ``max_latency_ms`` uses (the device's profile is in
the cache key); ``est_latency_unknown`` counts the layers without an estimate (then the value is
a lower bound; None when no layer has one). The rows may be sorted by it (``by="est_latency"``,
smallest first) and there is a third Pareto front, top-1 against it. The estimate depends on
the profile: ``local`` is this machine's calibration, not a measurement of each model.

With ``measure=True``, each model is also run in onnxruntime on the CPU
(:func:`onnxscore.measure.measure_latency`: ``warmup`` untimed runs, then ``runs`` timed ones,
graph optimizations on) and its row has ``latency_ms`` and ``latency_p90_ms``, the measured p50
and p90. The models are measured in the process that runs the study, one after the other, once
every analysis has finished (never in the pool's workers or on Dask: timings taken side by side
would disturb each other). Measured times are not a function of the file: they never enter the
cache, nor its key. A model onnxruntime cannot run keeps its row, with ``latency_error`` (one
line) and no latency. The rows may be sorted by it (``by="latency"``, fastest first) and there
is a Pareto front of top-1 against it.
"""
from __future__ import annotations

import bisect
import contextlib
import csv
import functools
import gc
import io
import json
import math
import os
import signal
import sys
from dataclasses import dataclass
from typing import (Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple,
                    Union)

from onnxscore.cache import Cache, figures_keys, usable_hit
from onnxscore.errors import OnnxScoreError, UsageError
from onnxscore.netscore import ALPHA, BETA, GAMMA, netscore
from onnxscore.render.units import printable

SCHEMA = "onnxscore.study/1"
METRICS = ("netscore", "top1", "info_density")  # the paper's three; higher is better
COSTS = ("params", "macs", "flops", "weight_bytes")  # smaller is better
EST_LATENCY = "est_latency"  # by the roofline estimate on the study's device, smallest first
LATENCY = "latency"  # by the p50 latency measured with onnxruntime (measure=True), smallest first
BY = METRICS + COSTS + (EST_LATENCY, LATENCY)
PARETO_COSTS = ("macs", "params")  # always; plus EST_LATENCY with a device, LATENCY when measured
PAIRS = (("netscore", "top1"), ("netscore", "info_density"), ("top1", "info_density"))
UNITS = {"params": "count", "macs": "count", "est_latency_ms": "milliseconds, estimated on the device",
         "latency_ms": "milliseconds, measured with onnxruntime on this machine's CPU (p50; latency_p90_ms: p90)",
         "netscore": "dB; a in %, p in millions of parameters, m in billions of MACs",
         "info_density": "% top-1 per million parameters"}
DASK_RETRIES = 3  # a task whose worker is lost is also rescheduled by Dask (allowed-failures)
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".onnxscore_cache", ".tox"}

Progress = Callable[[int, int], None]


class AccuracyError(OnnxScoreError):
    """An accuracy table that cannot be read: missing column, non-numeric top-1, ..."""


# --------------------------------------------------------------------------- accuracy tables

class AccuracyTable(dict):
    """Model name or path -> top-1 in %, remembering the file it came from (``path``), so that
    paths in it can be read relative to its folder."""

    path: Optional[str] = None


def _norm(name: str) -> str:
    """A name or path as the tables and the models are compared: ``/`` separators, no ``./``."""
    text = str(name).strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text


def _top1(path: str, where: str, raw: Any) -> float:
    """One top-1 cell as a percentage in (0, 100], or a one-line error naming file and row."""
    value = None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        try:
            value = float(text[:-1] if text.endswith("%") else text)
        except ValueError:
            value = None
    if value is None or not math.isfinite(value):
        raise AccuracyError(f"{path}: {where}: top-1 {raw!r} is not a number")
    if not 0 < value <= 100:
        raise AccuracyError(f"{path}: {where}: top-1 {value:g} is not a percentage in (0, 100]")
    return value


def _csv_entries(path: str, text: str, name_column: str, accuracy_column: str):
    reader = csv.reader(io.StringIO(text), delimiter="\t" if path.lower().endswith(".tsv") else ",")
    header = next(reader, None)
    if not header:
        raise AccuracyError(f"{path}: empty accuracy table (expected a header row with "
                            f"{name_column!r} and {accuracy_column!r})")
    header = [h.strip() for h in header]
    for column, option in ((name_column, "--name-column"), (accuracy_column, "--accuracy-column")):
        if column not in header:
            raise AccuracyError(f"{path}: no column {column!r} (columns: {', '.join(header)}); "
                                f"choose one with {option}")
    i_name, i_acc = header.index(name_column), header.index(accuracy_column)
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        where = f"row {reader.line_num}"
        if len(row) <= max(i_name, i_acc):
            raise AccuracyError(f"{path}: {where}: {len(row)} cell(s), fewer than the header's {len(header)}")
        yield where, row[i_name], row[i_acc]


def _json_entries(path: str, text: str, name_column: str, accuracy_column: str):
    try:
        data = json.loads(text)
    except ValueError as e:
        raise AccuracyError(f"{path}: not valid JSON ({e})") from None
    if isinstance(data, dict):
        for name, value in data.items():
            yield f"key {name!r}", name, value
    elif isinstance(data, list):
        for i, item in enumerate(data, 1):
            if not isinstance(item, dict) or name_column not in item or accuracy_column not in item:
                raise AccuracyError(f"{path}: item {i}: expected an object with {name_column!r} and "
                                    f"{accuracy_column!r} (--name-column, --accuracy-column)")
            if not isinstance(item[name_column], str):
                raise AccuracyError(f"{path}: item {i}: {name_column!r} is not a string")
            yield f"item {i}", item[name_column], item[accuracy_column]
    else:
        raise AccuracyError(f"{path}: expected a JSON object (model -> top-1 in %) or a list of objects")


def load_accuracies(path: Union[str, os.PathLike], name_column: str = "model",
                    accuracy_column: str = "top1") -> AccuracyTable:
    """Read a table of top-1 accuracies (in %) from CSV or JSON.

    Parameters
    ----------
    path : str or PathLike
        A CSV file with a header row (``.tsv``: tab-separated), or JSON: an object
        ``{"resnet50": 76.13, ...}`` or a list of objects ``[{"model": ..., "top1": ...}]``.
        JSON is recognised by the ``.json`` suffix or a leading ``{`` or ``[``. timm's
        ``results/results-imagenet.csv`` (``model,top1,top1_err,top5,...``) works as it is.
    name_column, accuracy_column : str
        The columns (or keys, for a list of objects) of the model name and of the top-1.

    Returns
    -------
    AccuracyTable
        A dict of name -> top-1 in %, with ``path`` set to the file.

    Raises
    ------
    AccuracyError
        One line naming the file and the row: a missing column, a top-1 that is not a number or
        not in (0, 100], an empty name, a name given two different values, or a table whose every
        value is at most 1 (fractions, not percentages).
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except OSError as e:
        raise AccuracyError(f"{path}: cannot read the accuracy table ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise AccuracyError(f"{path}: not a text file (expected CSV or JSON)") from None
    is_json = path.lower().endswith(".json") or text.lstrip()[:1] in ("{", "[")
    entries = (_json_entries if is_json else _csv_entries)(path, text, name_column, accuracy_column)
    table, first = AccuracyTable(), {}
    for where, name, raw in entries:
        name = _norm(name)
        if not name:
            raise AccuracyError(f"{path}: {where}: empty model name")
        value = _top1(path, where, raw)
        if name in table and table[name] != value:
            raise AccuracyError(f"{path}: {where}: {name!r} has top-1 {value:g}, but {first[name]} "
                                f"gave {table[name]:g}")
        table[name] = value
        first.setdefault(name, where)
    if table and all(v <= 1 for v in table.values()):
        raise AccuracyError(f"{path}: every top-1 is at most 1: fractions? give percentages "
                            "(76.13, not 0.7613)")
    table.path = path
    return table


# --------------------------------------------------------------------------- finding models

@dataclass(frozen=True)
class _Model:
    path: str  # as given, or the folder as given joined with the path found below it
    root: Optional[str]  # the folder argument it was found in


def find_models(paths: Iterable[Union[str, os.PathLike]]) -> List[_Model]:
    """Files as given; folders searched recursively for ``*.onnx`` (sorted by their path below
    the folder; VCS, virtualenv, cache and hidden folders skipped). A path given twice counts
    once."""
    out, seen, cwd = [], set(), os.getcwd()
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            found = []  # (path below the folder, path)
            for folder, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
                below = os.path.relpath(folder, p)
                found += [(_norm(os.path.join(below, f)), os.path.join(folder, f)) for f in files
                          if f.endswith(".onnx")]
            items = [_Model(f, p) for _, f in sorted(found)]
        else:
            items = [_Model(p, None)]
        for m in items:
            key = os.path.normcase(os.path.normpath(os.path.join(cwd, m.path)))  # abspath, one getcwd
            if key not in seen:
                seen.add(key)
                out.append(m)
    return out


def _stem(path: str) -> str:
    base = os.path.basename(path)
    return base[:-5] if base.lower().endswith(".onnx") else base


def model_names(models: Sequence[_Model]) -> List[str]:
    """Each model's name: its file stem, or its path without ``.onnx`` when stems collide."""
    stems = [_stem(m.path) for m in models]
    counts: Dict[str, int] = {}
    for s in stems:
        counts[s] = counts.get(s, 0) + 1
    return [s if counts[s] == 1 else _norm(m.path)[:-5] if _norm(m.path).lower().endswith(".onnx")
            else _norm(m.path) for s, m in zip(stems, models)]


def _candidates(m: _Model, table_dir: Optional[str],
                absolute: Callable[[str], str] = os.path.abspath) -> List[str]:
    """The names a table may give the model, by path first. ``absolute``: ``os.path.abspath``,
    memoized by a caller with many models (relpath makes both its paths absolute, each a
    getcwd)."""
    names = [_norm(m.path)]
    path = absolute(m.path)
    for base in (".", m.root, table_dir):
        if base is not None:
            start = absolute(base)
            if path.startswith(start) and path[len(start):len(start) + 1] == os.sep:
                names.append(_norm(path[len(start) + 1:]))  # below it: what relpath gives
                continue
            try:
                names.append(_norm(os.path.relpath(path, start)))
            except ValueError:  # another drive (Windows)
                pass
    names.append(os.path.basename(m.path))
    return list(dict.fromkeys(names))


def match_accuracies(models: Sequence[_Model], table: Mapping[str, float]
                     ) -> Tuple[List[Optional[float]], Tuple[str, ...]]:
    """Each model's top-1 from ``table`` (by path, then by file stem; None when absent), and the
    table's names that matched no model, sorted."""
    by_norm = {}
    for name, value in table.items():
        by_norm.setdefault(_norm(name), (name, value))
    table_dir = os.path.dirname(table.path) if getattr(table, "path", None) else None
    used, found = set(), []
    absolute = functools.lru_cache(maxsize=None)(os.path.abspath)
    for m in models:
        hit = next((by_norm[c] for c in _candidates(m, table_dir, absolute) if c in by_norm), None) \
            or by_norm.get(_stem(m.path))
        if hit is not None:
            used.add(hit[0])
        found.append(None if hit is None else float(hit[1]))
    return found, tuple(sorted(name for name in table if name not in used))


# --------------------------------------------------------------------------- the analyses

def analyze_figures(path: str, dims: Mapping[str, int], input_shapes: Mapping[str, Sequence[int]],
                    values: Optional[Mapping[str, Any]] = None, device=None) -> Dict[str, Any]:
    """The work of one model: ``{"figures": Figures.to_dict(), "error": None, "internal": False}``
    or its error in one line; with ``device`` (a :class:`onnxscore.device.Device`), the figures
    hold the estimated latency on it, as :func:`onnxscore.budget.figures_for` computes it. Pure:
    the same file and options give the same result, nothing is written, so a process pool or a
    Dask cluster may run it again after a lost worker."""
    from onnxscore.budget import figures_for  # the analyzer: imported by the first model analyzed

    try:
        figures, _ = figures_for(path, dims, input_shapes, None, values, device)
        return {"figures": figures.to_dict(), "error": None, "internal": False}
    except OnnxScoreError as e:
        return {"figures": None, "error": _first_line(str(e), path) or type(e).__name__, "internal": False}
    except Exception as e:  # noqa: BLE001 - a bug of onnxscore: the row says so, the study goes on
        return {"figures": None, "internal": True,
                "error": f"{printable(path)}: internal error (a bug in onnxscore, not in the model): "
                         f"{type(e).__name__}: {_first_line(str(e), path)}"}


def _first_line(text: str, path: Optional[str] = None) -> str:
    """The first line of a message; ``path`` in it written on one line first (a file name may
    hold a newline), so that the line still names the file."""
    if path:
        text = text.replace(path, printable(path))
    return text.strip().splitlines()[0] if text.strip() else ""


NOT_MEASURED = {"latency_ms": None, "latency_p90_ms": None, "latency_error": None}


def measure_figures(path: str, dims: Mapping[str, int], input_shapes: Mapping[str, Sequence[int]],
                    values: Optional[Mapping[str, Any]] = None, runs: int = 20, warmup: int = 3,
                    threads: Optional[int] = None) -> Dict[str, Any]:
    """The measured latency of one model: ``{"latency_ms": p50, "latency_p90_ms": p90,
    "latency_error": None}``, or the latencies None and why in one line. The model is analyzed
    again here (the inputs fed are generated from its report: the same ``dims``,
    ``input_shapes`` and ``values`` as the study's), then timed by
    :func:`onnxscore.measure.measure_latency`. Not pure: call it in the process that runs the
    study, one model at a time."""
    try:
        from onnxscore.measure import measure_latency
        from onnxscore.walk import analyze

        report = analyze(path, dims, input_shapes, values=values or None)
        latency, _ = measure_latency(path, report, runs=runs, warmup=warmup, threads=threads)
        return {"latency_ms": latency.p50 * 1e3, "latency_p90_ms": latency.p90 * 1e3, "latency_error": None}
    except OnnxScoreError as e:
        error = _first_line(str(e), path) or type(e).__name__
    except Exception as e:  # noqa: BLE001 - a bug of onnxscore: the row says so, the study goes on
        error = (f"internal error while measuring (a bug in onnxscore, not in the model): "
                 f"{type(e).__name__}: {_first_line(str(e), path)}")
    shown = printable(path)
    return dict(NOT_MEASURED, latency_error=error if error.startswith(shown) else f"{shown}: {error}")


# the key ``onnxscore check`` caches a model's figures under: either command's results serve the other
ANALYZER = ("onnxscore.walk", "onnxscore.budget")  # what a pool's worker needs imported


def _pool_context():
    """How a pool's workers start. On Linux, when this process runs no other thread: as copies
    of it (fork), once it has imported the analyzer and built ONNX's registry of operator
    schemas, so that each worker starts ready, with nothing to import or build (once for all
    the workers, in one process: their pages shared until written). Else from a forkserver
    where there is one (a new interpreter that imports the analyzer, then forks the workers:
    0.2-0.3 s before the first of them exists, more than a hundred small models' analyses),
    else spawn. Never a fork of a process that runs another thread (a progress bar's, a
    notebook's): the copy could inherit a lock that thread held, and deadlock."""
    import importlib
    import multiprocessing
    import threading

    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods and threading.active_count() == 1:
        for name in ANALYZER:
            importlib.import_module(name)
        from onnxscore.inference import _schemas_loaded

        _schemas_loaded()
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(ANALYZER))
        return ctx
    return multiprocessing.get_context("spawn")


# Between two analyses in one process, only the youngest generation is collected: every object
# an analysis made is in it (the CLI runs with the collector off), and a full collection, which
# also visits everything imported and empties the interpreter's type cache, costs 10-20 ms: more
# than the analysis of a small model. A full one runs every this many models. What exists once
# the analyzer is imported is left out of them (``gc.freeze``), which brings a full collection
# from about 11 ms to 0.1 ms (0.1 s less over 1,000 small models with --jobs 1).
FULL_COLLECTION_EVERY = 100


def _collect_after(n: int) -> None:
    """What the ``n``-th analysis (or measurement) in this process left in cycles, collected
    before the next: the youngest generation, and everything every :data:`FULL_COLLECTION_EVERY`."""
    gc.collect(0 if n % FULL_COLLECTION_EVERY else 2)

DIED = ("the analysis process died (killed, out of memory or crashed) twice; "
        "analyze it alone: onnxscore analyze {path}")


@contextlib.contextmanager
def _interrupts_held():
    """SIGINT blocked in this thread meanwhile. The processes started meanwhile (a process
    pool's forkserver, its workers and resource tracker; a LocalCluster's workers) inherit the
    mask, also through exec: a terminal's Ctrl-C, sent to every process of the foreground group,
    reaches only the process running the study, which stops the others. One received meanwhile
    is raised when this ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    was = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if signal.SIGINT not in was:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextlib.contextmanager
def _interrupts_ignored():
    """SIGINT ignored meanwhile, in the main thread, for a LocalCluster's start: its worker
    processes are started from threads of their own and by exec, which keeps an ignored signal
    ignored (Python then installs no handler of its own, nor does asyncio), so they leave a
    Ctrl-C to this process, which closes the cluster. A Ctrl-C while the cluster starts (a
    second or two) is lost. Elsewhere than in the main thread, nothing changes."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _start_worker() -> None:
    """A pool worker ignores SIGINT, which a terminal's Ctrl-C sends to every process of the
    foreground group: the process running the study stops the workers (:func:`_stop_pool`),
    and a worker never dies of it on its own, with a traceback, between two models. It writes
    (a warning) to its own standard streams: forked from the study's process, it holds copies
    of what replaced them there (a progress bar's redirection), which would draw a stale bar."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("stdout", "stderr"):
        if getattr(sys, f"__{name}__", None) is not None:
            setattr(sys, name, getattr(sys, f"__{name}__"))
    # Collections as with --jobs 1: explicit, between models (:func:`_analyze_chunk`), whatever
    # the study's process did; and what the worker inherited (the analyzer, imported before the
    # fork) is left out of them: a full collection visits only what the analyses made, and
    # writes none of the pages the worker shares with its parent.
    gc.disable()
    gc.freeze()


def _stop_pool(pool) -> None:
    """Stop a process pool at once: the workers are killed with the analyses in flight (their
    shape-inference children die with them, see :func:`onnxscore.inference._contained_inference`),
    nothing more starts, and the pool's threads and queues are wound up before this returns.
    What finished is already in the cache."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            process.kill()
        except (OSError, ValueError, AttributeError):  # gone already, or closed
            pass
    pool.shutdown(wait=True, cancel_futures=True)  # the pool sees its workers dead: no waiting


# Models a pool task analyzes, at most: one task a model spent more on sending it and its
# result between processes than on analyzing a small one.
CHUNK = 16


_analyzed_here = 0  # models analyzed by this process, in a pool's worker


def _analyze_chunk(paths: Sequence[str], args: tuple) -> List[Dict[str, Any]]:
    """:func:`analyze_figures` of each model, in a pool's worker, which collects what each
    analysis left in cycles before the next (see :func:`_start_worker`)."""
    global _analyzed_here
    out = []
    for path in paths:
        out.append(analyze_figures(path, *args))
        _analyzed_here += 1
        _collect_after(_analyzed_here)
    return out


def _run_local(todo: Sequence[int], models: Sequence[_Model], args: tuple, jobs: int,
               finished: Callable[[Iterable[Tuple[int, Dict[str, Any]]]], None]) -> None:
    """Analyze ``todo`` in this process (``jobs == 1`` or one model) or in a pool of ``jobs``
    processes; ``finished`` is given the models done, as (index, result), a pool's task at a
    time. If a worker process dies, the pool breaks: the models not finished are analyzed
    again, each in a process of its own, so that a model that kills its process is a failed row
    and the others are unharmed."""
    if jobs <= 1 or len(todo) <= 1:
        frozen = False
        try:
            for n, i in enumerate(todo, 1):
                finished([(i, analyze_figures(models[i].path, *args))])
                if n < len(todo):  # before the next, what this analysis left in cycles
                    if n == 1 and not gc.get_freeze_count():  # the analyzer is imported by now
                        gc.freeze()
                        frozen = True
                    _collect_after(n)
        finally:
            if frozen:
                gc.unfreeze()
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    rounds = [list(todo)]
    isolated = False
    while rounds:
        batch = rounds.pop(0)
        pool = ProcessPoolExecutor(max_workers=min(jobs, len(batch)), mp_context=_pool_context(),
                                   initializer=_start_worker)
        broken: List[int] = []
        futures = {}
        size = max(1, min(CHUNK, len(batch) // (jobs * 4)))  # a few chunks a worker, to balance the end
        chunks = [batch[k:k + size] for k in range(0, len(batch), size)]
        try:
            with _interrupts_held():  # the pool's processes start here: none of them sees a Ctrl-C
                for n, chunk in enumerate(chunks):
                    try:
                        futures[pool.submit(_analyze_chunk, [models[i].path for i in chunk], args)] = chunk
                    except BrokenProcessPool:  # a worker died while the rest were being submitted
                        broken += [i for c in chunks[n:] for i in c]
                        break
            for future in as_completed(futures):
                try:
                    results = future.result()
                except BrokenProcessPool:
                    broken += futures[future]
                    continue
                finished(zip(futures[future], results))
        except BaseException:  # an interrupt (Ctrl-C), or ``finished`` raised: stop at once
            _stop_pool(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if broken and isolated:
            finished([(i, {"figures": None, "internal": False,
                           "error": f"{models[i].path}: " + DIED.format(path=models[i].path)}) for i in broken])
        elif broken:
            rounds += [[i] for i in sorted(broken)]
            isolated = True


def _dask_client(scheduler):
    """(client, cluster) for ``local``, ``local:N``, an address, or a ``distributed.Client``."""
    try:
        import distributed
    except ImportError:
        raise UsageError("a Dask scheduler needs dask.distributed: pip install onnxscore[dask]") from None
    import logging

    if not isinstance(scheduler, str):
        return scheduler, None
    if scheduler == "local" or scheduler.startswith("local:"):
        n = scheduler.partition(":")[2] or str(os.cpu_count() or 1)
        if not n.isdigit() or int(n) < 1:
            raise UsageError(f"scheduler {scheduler!r}: expected local:N with N workers, e.g. local:4")
        with _interrupts_ignored():  # its processes leave a Ctrl-C to this one
            # warnings of its workers (a task cancelled by an interrupt, an event loop held by
            # a long analysis) are not the study's: errors only
            cluster = distributed.LocalCluster(n_workers=int(n), threads_per_worker=1, processes=True,
                                               dashboard_address=None, silence_logs=logging.ERROR)
        return distributed.Client(cluster, set_as_default=False), cluster
    try:
        return distributed.Client(scheduler, timeout="20s", set_as_default=False), None
    except (OSError, TimeoutError, ValueError) as e:
        raise UsageError(f"cannot reach the Dask scheduler at {scheduler} ({type(e).__name__}: "
                         f"{_first_line(str(e))}); start one with `dask scheduler`, or use "
                         "local:N") from None


def _run_dask(todo: Sequence[int], models: Sequence[_Model], args: tuple, scheduler,
              finished: Callable[[Iterable[Tuple[int, Dict[str, Any]]]], None]) -> None:
    """Analyze ``todo`` on a Dask cluster. Workers get absolute paths (they must see the same
    files: one machine, or a shared file system); messages are given back the paths as given.
    Each submission has its own key (``pure=False``): a file changed between two studies is
    never served an old result by a long-lived scheduler. A task whose worker is lost is
    rescheduled by Dask; ``retries`` covers a task that raised."""
    client, cluster = _dask_client(scheduler)
    from distributed import as_completed

    futures = {}
    try:
        for i in todo:
            futures[client.submit(analyze_figures, os.path.abspath(models[i].path), *args,
                                  pure=False, retries=DASK_RETRIES)] = i
        for future, result in as_completed(list(futures), loop=client.loop, with_results=True,
                                               raise_errors=False):
            i = futures[future]
            path, full = models[i].path, os.path.abspath(models[i].path)
            if isinstance(result, BaseException) or not isinstance(result, dict):
                result = {"figures": None, "internal": False,
                          "error": f"{path}: the Dask task failed ({type(result).__name__}: "
                                   f"{_first_line(str(result))})"}
            elif result.get("error") and full != path:
                result = dict(result, error=result["error"].replace(full, path))
            finished([(i, result)])
    finally:
        if futures:
            try:
                client.cancel(list(futures))
            except Exception:  # noqa: BLE001 - a closed or lost client: nothing left to cancel
                pass
        if cluster is not None or isinstance(scheduler, str):
            client.close()
        if cluster is not None:
            cluster.close()


# --------------------------------------------------------------------------- ranks and statistics

def competition_ranks(values: Mapping[Any, float], descending: bool = True) -> Dict[Any, int]:
    """key -> rank, 1 the best; equal values share a rank and the next skips (1, 2, 2, 4)."""
    order = sorted(values.items(), key=lambda kv: -kv[1] if descending else kv[1])
    ranks, previous, rank = {}, None, 0
    for position, (key, value) in enumerate(order, 1):
        if value != previous:
            rank, previous = position, value
        ranks[key] = rank
    return ranks


def average_ranks(xs: Sequence[float]) -> List[float]:
    """Ranks 1..n of ``xs`` (ascending), ties given the mean of the ranks they span."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> Optional[float]:
    """Spearman's rho: Pearson's correlation of the average ranks. None when n < 2 or either
    side is constant."""
    n = len(xs)
    if n < 2:
        return None
    rx, ry = average_ranks(xs), average_ranks(ys)
    mean = (n + 1) / 2
    sxy = sum((a - mean) * (b - mean) for a, b in zip(rx, ry))
    sxx = sum((a - mean) ** 2 for a in rx)
    syy = sum((b - mean) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def kendall_tau_b(xs: Sequence[float], ys: Sequence[float]) -> Optional[float]:
    """Kendall's tau-b = (C - D) / sqrt((C + D + Tx) * (C + D + Ty)); a pair tied in both counts
    in none. None when n < 2 or either side is constant.

    Counted without visiting every pair (W. R. Knight, JASA 61, 1966): with the pairs sorted
    by x then y, D is the number of inversions of the ys (:func:`_inversions`) and, of the
    n0 = n(n-1)/2 pairs, n1 are tied in x, n2 in y, n3 in both, so C + D = n0 - n1 - n2 + n3,
    Tx = n1 - n3, Ty = n2 - n3: the same integers as visiting every pair, so the same value."""
    n = len(xs)
    if n < 2:
        return None
    pairs = sorted(zip(xs, ys))
    n0 = n * (n - 1) // 2
    n1 = _tied_pairs([x for x, _ in pairs])
    n3 = _tied_pairs(pairs)
    d = _inversions([y for _, y in pairs])
    n2 = _tied_pairs(sorted(ys))
    c = n0 - n1 - n2 + n3 - d
    tx, ty = n1 - n3, n2 - n3
    denominator = math.sqrt((c + d + tx) * (c + d + ty))
    if denominator == 0:
        return None
    return (c - d) / denominator


def _tied_pairs(ordered: Sequence[Any]) -> int:
    """Pairs of equal items in a sorted sequence: t(t-1)/2 for each run of t equal items."""
    total, run = 0, 1
    for i in range(1, len(ordered) + 1):
        if i < len(ordered) and ordered[i] == ordered[i - 1]:
            run += 1
        else:
            total += run * (run - 1) // 2
            run = 1
    return total


def _inversions(values: Sequence[float], small: int = 20_000) -> int:
    """Pairs i < j with values[i] > values[j] (equal values are not inverted). Up to ``small``
    values, each is placed in a sorted list of those before it (``bisect``: the shifting is C,
    fast at a zoo's size); beyond, a bottom-up merge sort, which counts, each time an item of
    the right half goes before items of the left."""
    if len(values) <= small:
        seen: List[float] = []
        count = 0
        for v in values:
            at = bisect.bisect_right(seen, v)
            count += len(seen) - at
            seen.insert(at, v)
        return count
    items, n, count, width = list(values), len(values), 0, 1
    while width < n:
        merged = []
        for lo in range(0, n, 2 * width):
            left, right = items[lo:lo + width], items[lo + width:lo + 2 * width]
            i = j = 0
            while i < len(left) and j < len(right):
                if right[j] < left[i]:
                    count += len(left) - i
                    merged.append(right[j])
                    j += 1
                else:
                    merged.append(left[i])
                    i += 1
            merged += left[i:]
            merged += right[j:]
        items, width = merged, 2 * width
    return count


def pareto_front(points: Mapping[Any, Tuple[float, float]]) -> List[Any]:
    """The keys of ``points`` (key -> (top-1, cost)) that no other point dominates (a top-1 at
    least as high and a cost at most as high, one strictly), by cost then key."""
    by_cost: Dict[float, List[Any]] = {}
    for key, (_, cost) in points.items():
        by_cost.setdefault(cost, []).append(key)
    front, best = [], -math.inf  # the highest top-1 among strictly cheaper points
    for cost in sorted(by_cost):
        keys = by_cost[cost]
        top = max(points[k][0] for k in keys)
        if top > best:
            front += sorted(k for k in keys if points[k][0] == top)
            best = top
    return front


# --------------------------------------------------------------------------- the study

@dataclass(frozen=True)
class Row:
    """One model of a study: its figures (raw integers), its metrics, ranks and fronts. A model
    that could not be analyzed has ``error`` (one line) and no figures; ``internal`` says the
    error is a bug of onnxscore."""

    model: str
    path: str
    top1: Optional[float]
    accuracy_source: str  # table | metadata | none
    params: Optional[int]
    macs: Optional[int]
    flops: Optional[int]
    weight_bytes: Optional[int]
    complete: Optional[bool]
    info_density: Optional[float]
    netscore: Optional[float]
    ranks: Mapping[str, Optional[int]]
    pareto: Mapping[str, bool]
    cached: bool
    error: Optional[str]
    rank: Optional[int] = None  # under the study's ``by``
    internal: bool = False
    est_latency_ms: Optional[float] = None  # on the study's device; None: no device, or no estimate
    est_latency_unknown: Optional[int] = None  # layers without an estimate (then a lower bound)
    latency_ms: Optional[float] = None  # p50 measured with onnxruntime; None: not measured, or failed
    latency_p90_ms: Optional[float] = None
    latency_error: Optional[str] = None  # why the model could not be measured (one line)

    def to_dict(self) -> Dict[str, Any]:
        costs = PARETO_COSTS + tuple(c for c in (EST_LATENCY, LATENCY) if c in self.pareto)
        return {"rank": self.rank, "model": self.model, "path": self.path, "top1": self.top1,
                "accuracy_source": self.accuracy_source, "params": self.params, "macs": self.macs,
                "flops": self.flops, "weight_bytes": self.weight_bytes, "complete": self.complete,
                "info_density": self.info_density, "netscore": self.netscore,
                "est_latency_ms": self.est_latency_ms, "est_latency_unknown": self.est_latency_unknown,
                "latency_ms": self.latency_ms, "latency_p90_ms": self.latency_p90_ms,
                "latency_error": self.latency_error,
                "ranks": {m: self.ranks.get(m) for m in METRICS},
                "pareto": {c: bool(self.pareto.get(c)) for c in costs},
                "cached": self.cached, "error": self.error}


@dataclass(frozen=True)
class Study:
    """The study of a set of models: rows sorted by ``by`` (best first; rows without that
    measure, then failed rows, at the end), Pareto fronts, rank correlations and counts."""

    rows: Tuple[Row, ...]
    by: str
    alpha: float
    beta: float
    gamma: float
    pareto: Mapping[str, Tuple[str, ...]]
    spearman: Mapping[str, Optional[float]]
    kendall: Mapping[str, Optional[float]]
    n_correlated: int
    missing_accuracy: Tuple[str, ...]
    unmatched_accuracy: Tuple[str, ...]
    counts: Mapping[str, int]
    device: Optional[Mapping[str, Any]] = None  # the profile of the estimates (Device.to_dict())
    measure: Optional[Mapping[str, Any]] = None  # how the latencies were measured; None: not measured

    @property
    def failed(self) -> Tuple[Row, ...]:
        return tuple(r for r in self.rows if r.error is not None)

    def to_dict(self) -> Dict[str, Any]:
        """The JSON form, schema ``onnxscore.study/1`` (raw integers; floats as computed);
        ``device`` is None, or the profile of the rows' ``est_latency_ms``; ``measure`` is None,
        or how the rows' ``latency_ms`` were measured (onnxruntime's version, provider, runs,
        warmup, threads)."""
        costs = pareto_costs(self.device, self.measure)
        return {"schema": SCHEMA, "by": self.by, "alpha": float(self.alpha), "beta": float(self.beta),
                "gamma": float(self.gamma), "device": dict(self.device) if self.device is not None else None,
                "measure": dict(self.measure) if self.measure is not None else None,
                "units": dict(UNITS), "rows": [r.to_dict() for r in self.rows],
                "pareto": {c: list(self.pareto.get(c, ())) for c in costs},
                "correlations": {"spearman": dict(self.spearman), "kendall": dict(self.kendall),
                                 "n": self.n_correlated},
                "missing_accuracy": list(self.missing_accuracy),
                "unmatched_accuracy": list(self.unmatched_accuracy),
                "counts": dict(self.counts)}


def _shown(value):
    """A row's text as every format can write it (a path that is not UTF-8: ``\\xff``)."""
    return printable(value) if isinstance(value, str) else value


def pareto_costs(device, measure) -> Tuple[str, ...]:
    """The costs a study has a Pareto front against: MACs and parameters; the estimated latency
    with a ``device``, the measured one with ``measure``."""
    return PARETO_COSTS + ((EST_LATENCY,) if device is not None else ()) + ((LATENCY,) if measure is not None else ())


def _pair_key(a: str, b: str) -> str:
    return f"{a}~{b}"


def build_study(names: Sequence[str], paths: Sequence[str], figures: Sequence[Optional[Mapping[str, Any]]],
                table_top1: Sequence[Optional[float]], cached: Sequence[bool],
                errors: Sequence[Optional[str]], internal: Sequence[bool], unmatched: Sequence[str] = (),
                by: str = "netscore", alpha: float = ALPHA, beta: float = BETA,
                gamma: float = GAMMA, device: Optional[Mapping[str, Any]] = None,
                latencies: Optional[Sequence[Optional[Mapping[str, Any]]]] = None,
                measure: Optional[Mapping[str, Any]] = None) -> Study:
    """The study from each model's figures (``Figures.to_dict()`` or None when it failed): a pure
    function of its inputs, so every way of running the analyses gives the same study. With
    ``device`` (``Device.to_dict()``), the figures hold the estimated latency on it. With
    ``measure`` (how the models were measured), ``latencies`` has each model's
    :func:`measure_figures` (None for a model whose analysis failed)."""
    _check_by(by, device, measure)
    n = len(names)
    base = []
    for i in range(n):
        f = figures[i]
        top1, source = table_top1[i], "table" if table_top1[i] is not None else "none"
        if top1 is None and f is not None:
            meta = f.get("accuracy")
            if isinstance(meta, (int, float)) and 0 < meta <= 100:
                top1, source = float(meta), "metadata"
        value = density = est = unknown = None
        if f is not None:
            ns = netscore(top1, f["params"], f["macs"], alpha, beta, gamma)
            value, density = ns.value, ns.info_density
            if device is not None and f.get("latency_device") is not None:
                unknown = int(f.get("latency_unknown") or 0)
                layers = len(f.get("layers") or ())
                est = None if layers and unknown >= layers else float(f["latency_ms"])
        base.append({"model": _shown(names[i]), "path": _shown(_norm(paths[i])), "top1": top1,
                     "accuracy_source": source,
                     "params": f["params"] if f else None, "macs": f["macs"] if f else None,
                     "flops": f["flops"] if f else None, "weight_bytes": f["weight_bytes"] if f else None,
                     "complete": bool(f["complete"]) if f else None, "info_density": density,
                     "netscore": value, "cached": bool(cached[i]) and f is not None, "error": _shown(errors[i]),
                     "internal": bool(internal[i]), "est_latency_ms": est, "est_latency_unknown": unknown,
                     **(NOT_MEASURED if measure is None or latencies[i] is None or f is None
                        else {k: _shown(latencies[i].get(k)) for k in NOT_MEASURED})})
    ok = [i for i in range(n) if figures[i] is not None]
    ranks = {m: competition_ranks({i: base[i][m] for i in ok if base[i][m] is not None}) for m in METRICS}
    costs = pareto_costs(device, measure)
    attr = {c: c for c in COSTS + METRICS}
    attr[EST_LATENCY], attr[LATENCY] = "est_latency_ms", "latency_ms"
    fronts = {}
    for cost in costs:
        points = {i: (base[i]["top1"], base[i][attr[cost]]) for i in ok
                  if base[i]["top1"] is not None and base[i][attr[cost]] is not None}
        fronts[cost] = set(pareto_front(points))
    measured = {i: base[i][attr[by]] for i in ok if base[i][attr[by]] is not None}
    by_rank = competition_ranks(measured, descending=by in METRICS)

    def order(i):
        if i in measured:
            return (0, by_rank[i], names[i], paths[i])
        return (1 if figures[i] is not None else 2, 0, names[i], paths[i])

    rows = tuple(Row(**base[i], ranks={m: ranks[m].get(i) for m in METRICS},
                     pareto={c: i in fronts[c] for c in costs}, rank=by_rank.get(i))
                 for i in sorted(range(n), key=order))
    pareto = {}
    for cost in costs:
        on = [r for r in rows if r.pareto[cost]]
        pareto[cost] = tuple(r.model for r in sorted(on, key=lambda r: (getattr(r, attr[cost]), -r.top1, r.model)))
    full = [r for r in rows if all(getattr(r, m) is not None for m in METRICS)]
    full.sort(key=lambda r: (r.model, r.path))
    rho, tau = {}, {}
    for a, b in PAIRS:
        xs, ys = [getattr(r, a) for r in full], [getattr(r, b) for r in full]
        rho[_pair_key(a, b)], tau[_pair_key(a, b)] = spearman(xs, ys), kendall_tau_b(xs, ys)
    missing = tuple(sorted(r.model for r in rows if r.error is None and r.top1 is None))
    failed = sum(1 for r in rows if r.error is not None)
    from_cache = sum(1 for r in rows if r.cached)
    counts = {"models": n, "analyzed": n - failed - from_cache, "cached": from_cache, "failed": failed,
              "without_accuracy": len(missing)}
    return Study(rows, by, alpha, beta, gamma, pareto, rho, tau, len(full), missing, tuple(unmatched), counts,
                 dict(device) if device is not None else None, dict(measure) if measure is not None else None)


def _check_by(by: str, device, measure) -> None:
    if by not in BY:
        raise UsageError(f"cannot rank by {by!r}: choose one of {', '.join(BY)}")
    if by == EST_LATENCY and device is None:
        raise UsageError("ranking by est_latency needs a device profile to estimate on: give --device "
                         "NAME|FILE.toml (device= in Python)")
    if by == LATENCY and not measure:
        raise UsageError("ranking by latency needs the models measured with onnxruntime: give --measure "
                         "(measure=True in Python)")


def _measure_all(models: Sequence[_Model], ok: Sequence[int], args: tuple, runs: int, warmup: int,
                 threads: Optional[int], progress: Optional[Progress] = None) -> List[Optional[Dict[str, Any]]]:
    """:func:`measure_figures` of the models ``ok`` (those analyzed), one after the other in this
    process; None for the others. ``progress(done, len(ok))`` after each."""
    out: List[Optional[Dict[str, Any]]] = [None] * len(models)
    if progress is not None:
        progress(0, len(ok))
    for n, i in enumerate(ok, 1):
        out[i] = measure_figures(models[i].path, *args, runs=runs, warmup=warmup, threads=threads)
        if progress is not None:
            progress(n, len(ok))
        if len(ok) > 1:  # what this analysis and its session left in cycles, before the next
            _collect_after(n)
    return out


def measure_settings(runs: int, warmup: int, threads: Optional[int]) -> Dict[str, Any]:
    """How a study's models are measured (``Study.measure``); checks the numbers and that
    onnxruntime is installed (a one-line :class:`UsageError` naming the extra otherwise)."""
    from onnxscore.measure import PROVIDER, _ort

    if runs < 1 or warmup < 0 or (threads is not None and threads < 0):
        raise UsageError(f"measuring needs runs >= 1, warmup >= 0 and threads >= 0 (got runs={runs}, "
                         f"warmup={warmup}, threads={threads})")
    return {"runtime": "onnxruntime", "version": _ort().__version__, "provider": PROVIDER, "runs": int(runs),
            "warmup": int(warmup), "threads": int(threads) if threads else None}


def rank(paths: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
         accuracies: Union[None, str, os.PathLike, Mapping[str, float]] = None, *,
         by: str = "netscore", dims: Optional[Mapping[str, int]] = None,
         input_shapes: Optional[Mapping[str, Sequence[int]]] = None,
         values: Optional[Mapping[str, Any]] = None,
         alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA,
         jobs: Optional[int] = None, scheduler=None, cache=None,
         progress: Optional[Progress] = None, device=None, measure: bool = False, runs: int = 20,
         warmup: int = 3, threads: Optional[int] = None, measured: Optional[Progress] = None) -> Study:
    """Analyze every model and rank them: the NetScore paper's study of a model zoo.

    Parameters
    ----------
    paths : path or sequence of paths
        ONNX files, and folders searched recursively for ``*.onnx``.
    accuracies : mapping, path or None
        Model name or path -> top-1 in %, or the path of a table for :func:`load_accuracies`.
        Matched by path, then by file stem; else the model's ``onnxscore.accuracy`` metadata.
    by : str
        The order of the rows: ``netscore``, ``top1``, ``info_density`` (highest first) or
        ``params``, ``macs``, ``flops``, ``weight_bytes``, ``est_latency``, ``latency`` (smallest
        first; ``est_latency`` needs ``device``, ``latency`` needs ``measure``).
    dims, input_shapes, values
        As for :func:`onnxscore.analyze`, the same for every model.
    alpha, beta, gamma : float
        NetScore exponents.
    jobs : int, optional
        Local processes (default: ``os.cpu_count()``; 1 analyzes in this process).
    scheduler : str or distributed.Client, optional
        Run the analyses on Dask instead: ``"tcp://HOST:8786"`` (an existing scheduler; workers
        must see the same files), ``"local:N"`` (a LocalCluster of N single-threaded worker
        processes) or a ``distributed.Client``. Needs ``pip install onnxscore[dask]``.
    cache : onnxscore.cache.Cache, optional
        The result cache of ``onnxscore check``: unchanged models are not analyzed again, and
        each analyzed model is written to it as soon as it finishes.
    progress : callable, optional
        ``progress(done, total)``, called as models finish (cache hits included).
    device : str, PathLike or onnxscore.device.Device, optional
        A device profile (a built-in name, a TOML file, ``local``: see
        :func:`onnxscore.device.load_device`): each row gets ``est_latency_ms``, the roofline
        estimate on it (that of ``check``'s ``max_latency_ms``, cached with the profile in the
        key), and the study a Pareto front of top-1 against it. The estimates depend on the
        profile's numbers; ``local`` is calibrated once on this machine.
    measure : bool
        Also run each model in onnxruntime on the CPU (``pip install onnxscore[measure]``): each
        row gets ``latency_ms`` and ``latency_p90_ms`` (the p50 and p90 of ``runs`` timed runs
        after ``warmup`` untimed ones, on ``threads`` intra-op threads, None: onnxruntime's
        default), and the study a Pareto front of top-1 against it. The models are measured in
        this process, one after the other, after every analysis; never cached. A model that
        onnxruntime cannot run keeps its row, with ``latency_error``.
    runs, warmup, threads : int
        How each model is measured (with ``measure``).
    measured : callable, optional
        ``measured(done, total)``, called as models are measured (with ``measure``, once every
        analysis has finished; ``total`` counts the models analyzed).

    Returns
    -------
    Study
        A model that could not be analyzed is a row with its error, never the end of the study.

    Examples
    --------
    >>> study = rank(["zoo/"], "results-imagenet.csv")          # doctest: +SKIP
    >>> [(r.model, r.netscore, r.ranks["top1"]) for r in study.rows[:3]]  # doctest: +SKIP
    """
    _check_by(by, device, measure)
    settings = measure_settings(runs, warmup, threads) if measure else None  # onnxruntime there, first
    if jobs is not None and jobs < 1:
        raise UsageError(f"jobs={jobs}: expected at least 1")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    models = find_models(paths)
    if not models:
        raise UsageError("no ONNX model found in " + ", ".join(os.fspath(p) for p in paths))
    if isinstance(accuracies, (str, os.PathLike)):
        accuracies = load_accuracies(accuracies)
    table = accuracies if accuracies is not None else {}
    for name, value in table.items():
        _top1("accuracies", f"key {name!r}", value)
    table_top1, unmatched = match_accuracies(models, table)
    dims, input_shapes, values = dict(dims or {}), dict(input_shapes or {}), dict(values or {}) or None

    owned = isinstance(cache, (str, os.PathLike))
    if owned:
        cache = Cache(os.fspath(cache))
    if isinstance(device, (str, os.PathLike)):
        from onnxscore.device import load_device
        try:
            device = load_device(device, cache=cache)
        except BaseException:
            if owned:
                cache.close()
            raise
    args = (dims, input_shapes, values, device)
    total = len(models)
    results: Dict[int, Dict[str, Any]] = {}
    cached = [False] * total
    keys: List[Optional[str]] = [None] * total
    todo = []
    try:
        hits: Dict[str, Any] = {}
        if cache is not None:
            keys = figures_keys([m.path for m in models], *args, cache=cache)
            hits = cache.get_many([k for k in keys if k is not None])
        for i in range(total):
            hit = hits.get(keys[i]) if keys[i] is not None else None
            if usable_hit(hit, device):
                results[i], cached[i] = {"figures": hit, "error": None, "internal": False}, True
            else:
                todo.append(i)
        if progress is not None:
            progress(len(results), total)  # the total, and the cache hits, before any analysis

        def finished(done: Iterable[Tuple[int, Dict[str, Any]]]) -> None:
            """Models done: each written to the cache and reported as it comes, in one
            transaction (committed even if ``progress`` raises: what finished is kept)."""
            with cache.batch() if cache is not None else contextlib.nullcontext():
                for i, result in done:
                    if result.get("figures") is not None and cache is not None and keys[i] is not None:
                        cache.put(keys[i], result["figures"])
                    results[i] = result
                    if progress is not None:
                        progress(len(results), total)

        if todo and scheduler is not None:
            _run_dask(todo, models, args, scheduler, finished)
        elif todo:
            _run_local(todo, models, args, jobs or os.cpu_count() or 1, finished)
    finally:
        if owned:
            cache.close()
    figures = [results[i]["figures"] for i in range(total)]
    latencies = None
    if settings is not None:  # after every analysis, here, one at a time: nothing runs beside a timing
        latencies = _measure_all(models, [i for i in range(total) if figures[i] is not None],
                                 (dims, input_shapes, values), runs, warmup, threads, measured)
    return build_study(model_names(models), [m.path for m in models], figures, table_top1, cached,
                       [results[i]["error"] for i in range(total)],
                       [bool(results[i].get("internal")) for i in range(total)], unmatched,
                       by, alpha, beta, gamma, device.to_dict() if device is not None else None,
                       latencies, settings)
