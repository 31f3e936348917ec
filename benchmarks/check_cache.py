"""The result cache of ``onnxscore check``: cold, warm and one-changed runs, and two runs at once.

Fifty distinct small models (the light models of the onnx wheel, each copy given its own
metadata entry so every file hashes differently) are checked by the CLI as a subprocess with
``--format json`` and a fresh ``ONNXSCORE_CACHE_DIR``:

* cold: nothing cached; warm: everything cached (the warm/cold ratio should be >= 10x);
* one changed: a single model's metadata edited, so it alone is re-analyzed;
* concurrent: two runs started together on one cold cache must agree (exit code and every
  model's figures), a third run is then all cached, and SQLite's integrity check says ok.

Timings are printed, never asserted; a wrong answer (a figure that differs, a model cached when
it must not be, a damaged cache) raises.

    .venv/bin/python benchmarks/check_cache.py
"""
from __future__ import annotations

import glob
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

import onnx

N_MODELS = 50
BUDGET = '[tool.onnxscore]\nmax_macs = "1G"\n'
LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
CACHE_FILE = "results.sqlite"  # onnxscore.cache.Cache keeps its store under this name


class BenchmarkError(RuntimeError):
    """The cache gave a wrong answer (not merely a slow one)."""


def make_models(folder: str, n: int = N_MODELS) -> List[str]:
    """``n`` distinct models cycling through the light models, paths relative to ``folder``."""
    sources = sorted(glob.glob(os.path.join(LIGHT, "*.onnx")))
    if not sources:
        raise BenchmarkError(f"the installed onnx wheel ships no light models in {LIGHT}")
    protos = [onnx.load(p) for p in sources]
    os.makedirs(os.path.join(folder, "models"), exist_ok=True)
    paths = []
    for i in range(n):
        src = sources[i % len(sources)]
        rel = f"models/{i:02d}_{os.path.basename(src)}"
        stamp(protos[i % len(protos)], os.path.join(folder, rel), str(i))
        paths.append(rel)
    return paths


def stamp(proto: onnx.ModelProto, dest: str, value: str) -> None:
    """Write ``proto`` with the metadata entry ``onnxscore.bench = value`` (so its hash differs)."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    del model.metadata_props[:]
    model.metadata_props.add(key="onnxscore.bench", value=value)
    onnx.save(model, dest)


def start(folder: str, cache: str, paths: List[str]) -> subprocess.Popen:
    env = dict(os.environ, ONNXSCORE_CACHE_DIR=cache)
    return subprocess.Popen([sys.executable, "-m", "onnxscore", "check", "--format", "json", *paths],
                            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> Tuple[int, Dict[str, dict], Dict[str, bool]]:
    """(exit code, path -> figures, path -> cached) of a finished check run."""
    out, err = proc.communicate(timeout=600)
    if proc.returncode not in (0, 1):
        raise BenchmarkError(f"onnxscore check exited {proc.returncode}:\n{err}")
    data = json.loads(out)
    figures = {m["path"]: m["figures"] for m in data["models"]}
    cached = {m["path"]: m["cached"] for m in data["models"]}
    return proc.returncode, figures, cached


def timed(folder: str, cache: str, paths: List[str]) -> Tuple[float, int, Dict[str, dict], Dict[str, bool]]:
    t0 = time.perf_counter()
    code, figures, cached = finish(start(folder, cache, paths))
    return time.perf_counter() - t0, code, figures, cached


def timed_text(folder: str, cache: str, paths: List[str]) -> float:
    """A run with the default text output (no JSON rendering of every figure)."""
    env = dict(os.environ, ONNXSCORE_CACHE_DIR=cache)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "onnxscore", "check", *paths], cwd=folder, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def integrity(cache: str) -> str:
    db = sqlite3.connect(os.path.join(cache, CACHE_FILE))
    try:
        return ", ".join(row[0] for row in db.execute("PRAGMA integrity_check"))
    finally:
        db.close()


def startup_seconds() -> float:
    """The floor of any run: the interpreter starting and importing the CLI."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import onnxscore.cli"], check=True)
    return time.perf_counter() - t0


def expect(condition: bool, message: str, problems: List[str]) -> None:
    if not condition:
        problems.append(message)


def table(rows: List[Tuple[str, str, str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    problems: List[str] = []
    with tempfile.TemporaryDirectory(prefix="onnxscore-bench-") as folder:
        paths = make_models(folder)
        with open(os.path.join(folder, "pyproject.toml"), "w", encoding="utf-8") as f:
            f.write(BUDGET)
        startup = startup_seconds()

        cache = os.path.join(folder, "cache-serial")
        cold, code, figures, cached = timed(folder, cache, paths)
        expect(not any(cached.values()), "cold run: some models came from an empty cache", problems)
        expect(len(figures) == len(paths), f"cold run: {len(figures)} of {len(paths)} models checked", problems)
        warm, warm_code, warm_figures, cached = timed(folder, cache, paths)
        expect(all(cached.values()), "warm run: some models were analyzed again", problems)
        expect(warm_code == code and warm_figures == figures, "warm run: figures differ from the cold run", problems)
        warm_text = timed_text(folder, cache, paths)

        changed = paths[7]
        stamp(onnx.load(os.path.join(folder, changed)), os.path.join(folder, changed), "changed")
        one, one_code, one_figures, cached = timed(folder, cache, paths)
        recomputed = sorted(p for p, c in cached.items() if not c)
        expect(recomputed == [changed], f"one changed: re-analyzed {recomputed}, expected [{changed!r}]", problems)
        expect(one_figures == figures, "one changed: figures differ (only metadata changed)", problems)

        shared = os.path.join(folder, "cache-concurrent")
        t0 = time.perf_counter()
        a, b = start(folder, shared, paths), start(folder, shared, paths)
        (code_a, fig_a, cached_a), (code_b, fig_b, cached_b) = finish(a), finish(b)
        both = time.perf_counter() - t0
        expect(code_a == code_b == code, f"concurrent: exit codes {code_a}, {code_b} (serial {code})", problems)
        expect(fig_a == fig_b == figures, "concurrent: the two runs' figures differ", problems)
        after, _, fig_c, cached_c = timed(folder, shared, paths)
        expect(all(cached_c.values()), "after concurrent: some models were not cached", problems)
        expect(fig_c == figures, "after concurrent: cached figures differ", problems)
        check_db = integrity(shared)
        expect(check_db == "ok", f"concurrent: PRAGMA integrity_check says {check_db!r}", problems)

    n = len(paths)
    over = sum(1 for f in figures.values() if f["macs"] > 10**9)
    ratio = cold / warm if warm else float("inf")
    print(f"{n} models ({over} over the 1 G MACs budget, exit {code}); interpreter + import onnxscore.cli "
          f"alone: {startup:.2f} s")
    print(table([
        ("run", "seconds", "notes"),
        ("cold (empty cache)", f"{cold:.2f}", f"{n} analyzed"),
        ("warm (all cached)", f"{warm:.2f}", f"{n} from cache; cold/warm = {ratio:.1f}x (target >= 10x)"),
        ("warm, text output", f"{warm_text:.2f}", f"{n} from cache, no JSON; cold/this = {cold / warm_text:.1f}x"),
        ("one model changed", f"{one:.2f}", f"re-analyzed: {', '.join(recomputed) or 'none'}"),
        ("two at once, cold", f"{both:.2f}", f"exit codes {code_a}/{code_b}, "
                                            f"figures {'identical' if fig_a == fig_b else 'DIFFER'}, "
                                            f"cached {sum(cached_a.values())}/{sum(cached_b.values())}"),
        ("third run after", f"{after:.2f}", f"{sum(cached_c.values())}/{n} from cache; integrity_check: {check_db}"),
    ]))
    if problems:
        raise BenchmarkError("; ".join(problems))
    return 0


if __name__ == "__main__":
    sys.exit(main())
