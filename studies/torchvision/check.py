"""Check onnxscore's parameters and MACs on the study's exports against torchvision and torch.

Run it with the project venv, from the repository root, after ``export.py``::

    .venv/bin/python studies/torchvision/check.py [--exports /work/exports/study] [--only a,b]

For every row of ``models.csv`` whose export is ok it calls ``onnxscore.analyze(path,
accuracy=acc@1)`` (the Python API) and compares:

* parameters with torchvision's published ``num_params`` and with torch's
  ``sum(p.numel())`` of the exported module;
* MACs with torchvision's published ``_ops`` ("GFLOPS" in its docs, but multiply-accumulates:
  see README.md) at the 3 decimals published, and with torch's FlopCounterMode MACs exactly.

Every difference gets an explanation built from what export.py measured (the parameters no op
received during the forward, FlopCounterMode's per-op MACs); a difference nothing measured
explains is marked ``UNEXPLAINED``. It writes ``check.md``, ``check.csv`` and ``accuracy.csv``
(``model,top1``: the .onnx file stem and the published acc@1, for ``onnxscore rank
--accuracy``) next to this file.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_EXPORTS = Path("/work/exports/study")

CHECK_COLUMNS = ["row", "onnx", "resolution", "acc@1",
                 "params_onnxscore", "num_params_published", "params_delta_vs_published_pct", "torch_params",
                 "params_delta_vs_torch_pct",
                 "macs_onnxscore", "gflops_published", "gmacs_onnxscore_3dp", "macs_match_published_3dp",
                 "macs_delta_vs_published_pct", "torch_macs", "macs_delta_vs_torch_pct",
                 "flops_onnxscore", "complete", "unsupported_ops", "netscore", "info_density", "analyze_seconds",
                 "explanation"]


def pct(a: int | float, b: int | float | None) -> float | None:
    if b in (None, 0):
        return None
    return 100.0 * (a - b) / b


def fmt_pct(v: float | None, digits: int = 3) -> str:
    if v is None:
        return ""
    if v == 0:
        return "0"
    return f"{v:+.{digits}f}%"


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def as_int(v: str) -> int | None:
    return int(v) if v not in ("", None) else None


def as_float(v: str) -> float | None:
    return float(v) if v not in ("", None) else None


def explain(row: dict, res: dict, sc: dict) -> list[str]:
    """Why onnxscore's numbers differ from the published or the torch ones, from measured facts."""
    notes = []
    p_pub, p_torch, p_ox = row["num_params"], row["torch_params"], sc["params"]
    unused = res.get("torch_params_unused") or 0
    unused_mods = res.get("unused_params_by_module") or {}
    if p_ox != p_torch:
        if unused and p_ox == p_torch - unused:
            heads = sorted({m.split(".")[0] for m in unused_mods})
            who = "the published num_params and torch's count include" if p_pub == p_torch else "torch's count includes"
            notes.append(f"{who} {unused:,} parameters that no op receives in the eval-mode forward "
                         f"(module {', '.join(heads)}), so the export does not hold them")
        else:
            notes.append(f"UNEXPLAINED: onnxscore {p_ox:,} vs torch {p_torch:,} parameters")
    if p_pub is not None and p_pub != p_torch:
        notes.append(f"published num_params {p_pub:,} differs from torch's {p_torch:,} for the same architecture "
                     f"({p_pub - p_torch:+,})")
    m_ox, m_torch, g_pub = sc["macs"], row["torch_macs"], row["gflops"]
    if m_ox != m_torch:
        notes.append(f"UNEXPLAINED: onnxscore {m_ox:,} vs torch {m_torch:,} MACs")
    if g_pub is not None and round(m_ox / 1e9, 3) != g_pub:
        torch_3dp = round(m_torch / 1e9, 3)
        if torch_3dp == g_pub:
            notes.append("published GFLOPS equal torch's MACs; onnxscore differs (see above)")
        else:
            notes.append(f"published {g_pub} GFLOPS vs {m_ox / 1e9:.3f} G MACs measured (torch FlopCounterMode "
                         f"{m_torch / 1e9:.3f} G): UNEXPLAINED")
    if not sc["complete"]:
        notes.append(f"onnxscore totals are lower bounds (unknown or unsupported: {sc['unsupported'] or 'see report'})")
    return notes


def analyze_one(path: Path, accuracy: float | None) -> dict:
    import onnxscore

    t = time.time()
    r = onnxscore.analyze(str(path), accuracy=accuracy)
    return {
        "params": r.totals.params, "macs": r.totals.macs, "flops": r.totals.flops,
        "complete": r.totals.complete and r.totals.params_complete,
        "unsupported": ", ".join(f"{k} x{v}" for k, v in sorted(r.unsupported_ops.items())),
        "netscore": r.netscore.value, "info_density": r.netscore.info_density,
        "seconds": round(time.time() - t, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exports", type=Path, default=DEFAULT_EXPORTS)
    parser.add_argument("--models", type=Path, default=HERE / "models.csv")
    parser.add_argument("--out", type=Path, default=HERE, help="where check.md, check.csv, accuracy.csv go")
    parser.add_argument("--only", default="", help="comma-separated row names or architectures")
    opts = parser.parse_args(argv)

    import onnxscore

    only = {s for s in opts.only.split(",") if s}
    rows = read_rows(opts.models)
    for r in rows:
        for k in ("num_params", "torch_params", "torch_macs", "resolution"):
            r[k] = as_int(r[k])
        for k in ("acc@1", "acc@5", "gflops"):
            r[k] = as_float(r[k])
    t_start = time.time()
    checked, failed, missing = [], [], []
    for row in rows:
        if only and row["row"] not in only and row["architecture"] not in only:
            continue
        if row["status"] != "ok":
            failed.append(row)
            continue
        path = opts.exports / row["onnx"]
        if not path.exists():
            missing.append(row)
            continue
        res_path = opts.exports / "logs" / f"{row['row']}.json"
        res = json.loads(res_path.read_text()) if res_path.exists() else {}
        sc = analyze_one(path, row["acc@1"])
        notes = explain(row, res, sc)
        checked.append((row, res, sc, notes))
        print(f"{row['row']}: params {sc['params']:,} (published {row['num_params']:,}), MACs {sc['macs']:,} "
              f"(published {row['gflops']} G), {sc['seconds']}s" + (f" -- {'; '.join(notes)}" if notes else ""),
              flush=True)
    seconds = time.time() - t_start

    # ---- check.csv ------------------------------------------------------------
    with open(opts.out / "check.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CHECK_COLUMNS)
        for row, res, sc, notes in checked:
            g3 = round(sc["macs"] / 1e9, 3)
            w.writerow([
                row["row"], row["onnx"], row["resolution"], row["acc@1"],
                sc["params"], row["num_params"], round(pct(sc["params"], row["num_params"]), 6),
                row["torch_params"], round(pct(sc["params"], row["torch_params"]), 6),
                sc["macs"], row["gflops"], g3, g3 == row["gflops"],
                round(pct(sc["macs"], row["gflops"] * 1e9), 6), row["torch_macs"],
                round(pct(sc["macs"], row["torch_macs"]), 6),
                sc["flops"], sc["complete"], sc["unsupported"],
                round(sc["netscore"], 4) if sc["netscore"] is not None else "",
                round(sc["info_density"], 4) if sc["info_density"] is not None else "",
                sc["seconds"], "; ".join(notes)])

    # ---- accuracy.csv -----------------------------------------------------------
    with open(opts.out / "accuracy.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["model", "top1"])
        for row in rows:
            if row["status"] == "ok" and row["acc@1"] is not None:
                w.writerow([Path(row["onnx"]).stem, row["acc@1"]])

    # ---- check.md ---------------------------------------------------------------
    n = len(checked)
    archs = {row["architecture"] for row, *_ in checked}
    p_pub = sum(sc["params"] == row["num_params"] for row, _, sc, _ in checked)
    p_torch = sum(sc["params"] == row["torch_params"] for row, _, sc, _ in checked)
    m_pub = sum(round(sc["macs"] / 1e9, 3) == row["gflops"] for row, _, sc, _ in checked)
    m_torch = sum(sc["macs"] == row["torch_macs"] for row, _, sc, _ in checked)
    torch_pub = sum(row["torch_params"] == row["num_params"] for row, *_ in checked)
    max_abs = max((abs(sc["macs"] / 1e9 - row["gflops"]) for row, _, sc, _ in checked), default=0.0)
    off = [(row, sc) for row, _, sc, _ in checked if round(sc["macs"] / 1e9, 3) != row["gflops"]]
    max_off = max((abs(pct(sc["macs"], row["gflops"] * 1e9)) for row, sc in off), default=None)
    complete = sum(sc["complete"] for *_, sc, _ in checked)
    unexplained = [row["row"] for row, _, _, notes in checked if any("UNEXPLAINED" in x for x in notes)]
    import importlib.metadata as md

    lines = [
        "# onnxscore against torchvision's published counts and torch's own",
        "",
        f"Written by `.venv/bin/python studies/torchvision/check.py` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} (onnxscore {onnxscore.__version__}, "
        f"onnx {md.version('onnx')}, Python {platform.python_version()}), over the files `export.py` wrote to "
        f"`{opts.exports}`; analyses took {seconds:.0f} s in all. The exports, the torch counts and the published "
        "numbers are in `models.csv`; this table is also `check.csv`.",
        "",
        "* **published params**: the weights' `meta[\"num_params\"]`; **torch params**: `sum(p.numel())` of the "
        "exported module.",
        "* **published GFLOPS**: the weights' `meta[\"_ops\"]`, which are multiply-accumulates in billions "
        "(README.md says where that comes from); compared at the 3 decimals published. **torch MACs**: "
        "FlopCounterMode FLOPs // 2 on the export input.",
        "* onnxscore: `onnxscore.analyze(path, accuracy=acc@1)`, `totals.params` and `totals.macs`.",
        "",
        "## Summary",
        "",
        f"* {n} weights over {len(archs)} architectures analyzed"
        + (f"; {len(failed)} row{'' if len(failed) == 1 else 's'} without an export (below)" if failed else "")
        + (f"; {len(missing)} exported files missing" if missing else "") + ".",
        f"* Every total complete (no unknown or unsupported op): {complete} of {n}.",
        f"* Parameters equal to the published `num_params`: **{p_pub} of {n}**; equal to torch's count: "
        f"{p_torch} of {n}. torch's count equals the published one for {torch_pub} of {n}.",
        f"* MACs equal to the published GFLOPS at 3 decimals: **{m_pub} of {n}**; largest |MACs / 1e9 - "
        f"published| {max_abs:.6f} G" + (f"; of the {len(off)} that differ, the largest difference is "
                                          f"{max_off:.3f}%" if off else "") + ". "
        f"Equal to torch's FlopCounterMode MACs exactly: {m_torch} of {n}.",
        "* The Δ columns in % against the published numbers carry their rounding: 0.04 GFLOPS published is "
        "anything in [0.0395, 0.0405).",
        f"* Differences nothing measured explains: {', '.join(unexplained) if unexplained else 'none'}.",
        "",
    ]
    exceptions = [(row, notes) for row, _, _, notes in checked if notes]
    if exceptions:
        lines += ["## Exceptions", ""]
        for row, notes in exceptions:
            lines.append(f"* **{row['row']}**: " + "; ".join(notes) + ".")
        lines.append("")
    if failed:
        lines += ["## Rows without an export", ""]
        for row in failed:
            lines.append(f"* **{row['row']}**: {row['status']}")
        lines.append("")
    lines += [
        "## Every model",
        "",
        "| row | px | params onnxscore | published | Δ | torch | Δ | MACs onnxscore | G (3 dp) | published GFLOPS "
        "| Δ | torch MACs | Δ | note |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row, res, sc, notes in checked:
        g3 = round(sc["macs"] / 1e9, 3)
        mark = "" if g3 == row["gflops"] else " ≠"
        lines.append(
            f"| {row['row']} | {row['resolution']} | {sc['params']:,} | {row['num_params']:,} | "
            f"{fmt_pct(pct(sc['params'], row['num_params']))} | {row['torch_params']:,} | "
            f"{fmt_pct(pct(sc['params'], row['torch_params']))} | {sc['macs']:,} | {g3:.3f}{mark} | {row['gflops']} | "
            f"{fmt_pct(pct(sc['macs'], row['gflops'] * 1e9))} | {row['torch_macs']:,} | "
            f"{fmt_pct(pct(sc['macs'], row['torch_macs']))} | {'; '.join(notes)} |")
    lines.append("")
    (opts.out / "check.md").write_text("\n".join(lines))
    print(f"{n} analyzed in {seconds:.0f}s; params == published {p_pub}/{n}, MACs == published (3 dp) {m_pub}/{n}; "
          f"wrote {opts.out / 'check.md'}, check.csv, accuracy.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
