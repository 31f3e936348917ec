"""``make bench``: run every benchmark module in this folder that defines ``main()``.

Each module runs in turn under a header; the exit status is non-zero when one raises or
returns a non-zero status, after all have run.

    .venv/bin/python benchmarks/run.py [NAME ...]     # e.g. check_cache; default: all
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SKIP = {"run"}


def benchmark_names():
    """The modules of benchmarks/ that define a ``main()``, in name order."""
    names = []
    for info in sorted(pkgutil.iter_modules([HERE]), key=lambda m: m.name):
        if info.name in SKIP or info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        if callable(getattr(module, "main", None)):
            names.append(info.name)
    return names


def main(argv=None) -> int:
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    names = list(argv if argv is not None else sys.argv[1:]) or benchmark_names()
    failed = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            status = importlib.import_module(f"benchmarks.{name}").main()
        except Exception:
            traceback.print_exc()
            status = 1
        print(f"=== {name}: {'ok' if not status else 'FAILED'} in {time.perf_counter() - t0:.1f} s ===", flush=True)
        if status:
            failed.append(name)
    if failed:
        print(f"\n{len(failed)} benchmark(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
