"""A study (``onnxscore rank``) as text, Markdown, CSV or JSON.

Every renderer reads the JSON form (``Study.to_dict()``, schema ``onnxscore.study/1``), so a saved
study renders the same as a fresh one. Units exist only here: the leaderboard's legend states
NetScore's and information density's wherever they are shown.
"""
from __future__ import annotations

import csv
import io
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import orjson

from onnxscore.render.units import si

FORMATS = ("text", "md", "csv", "json")
LABEL = {"netscore": "NetScore", "top1": "top-1", "info_density": "info density", "params": "parameters",
         "macs": "MACs", "flops": "FLOPs", "weight_bytes": "weight bytes", "est_latency": "estimated latency",
         "latency": "measured latency"}
ORDER = {"netscore": "highest first", "top1": "highest first", "info_density": "highest first",
         "params": "fewest first", "macs": "fewest first", "flops": "fewest first",
         "weight_bytes": "fewest first", "est_latency": "fastest first", "latency": "fastest first"}
PAIR_LABEL = {"netscore~top1": "NetScore ~ top-1", "netscore~info_density": "NetScore ~ info density",
              "top1~info_density": "top-1 ~ info density"}
HEADER = ("#", "model", "top-1", "params", "MACs", "density", "NetScore", "Ω/a/d", "front")
EST_HEADER = "est. ms"  # after MACs, when the study has a device
MEASURED_HEADER = "p50 ms"  # after MACs (and est. ms), when the models were measured
NUMERIC = frozenset(HEADER[2:8]) | {"#", EST_HEADER, MEASURED_HEADER}
SHOWN = 10  # names listed in a note before "and N more"
CSV_COLUMNS = ("rank", "model", "path", "top1", "accuracy_source", "params", "macs", "flops", "weight_bytes",
               "complete", "info_density", "netscore", "rank_netscore", "rank_top1", "rank_info_density",
               "pareto_macs", "pareto_params", "cached", "error")
EST_CSV_COLUMNS = ("est_latency_ms", "est_latency_unknown")  # after weight_bytes, with a device
MEASURED_CSV_COLUMNS = ("latency_ms", "latency_p90_ms", "latency_error")  # then these, when measured
FRONT_MARKS = (("macs", "M"), ("params", "P"), ("est_latency", "L"), ("latency", "T"))


def _data(study) -> Dict[str, Any]:
    return study.to_dict() if hasattr(study, "to_dict") else study


def _num(x: Optional[float], spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _density(x: Optional[float]) -> str:
    """Three significant digits, never an exponent: 1,400 / 425 / 90.0 / 2.98."""
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def _front(row: Mapping[str, Any]) -> str:
    if row["error"] is not None:
        return "failed"
    return " ".join(mark for cost, mark in FRONT_MARKS if row["pareto"].get(cost))


def device_name(data: Mapping[str, Any]) -> Optional[str]:
    """The name of the study's device profile, None without one."""
    device = data.get("device")
    return device["name"] if device else None


def measured(data: Mapping[str, Any]) -> bool:
    """Whether the study's models were measured (``rank --measure``)."""
    return data.get("measure") is not None


def header(data: Mapping[str, Any]) -> Tuple[str, ...]:
    """:data:`HEADER`, with :data:`EST_HEADER` after MACs when the study has a device, then
    :data:`MEASURED_HEADER` when its models were measured."""
    return HEADER[:5] + ((EST_HEADER,) if device_name(data) else ()) \
        + ((MEASURED_HEADER,) if measured(data) else ()) + HEADER[5:]


def measured_ms(row: Mapping[str, Any], key: str = "latency_ms") -> str:
    """The measured latency in ms, 3 significant digits, ``-`` not measured."""
    value = row.get(key)
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def est_ms(row: Mapping[str, Any]) -> str:
    """The estimated latency in ms, 3 significant digits (``≥`` a lower bound), ``-`` unknown."""
    bound = row.get("est_latency_unknown") and row.get("est_latency_ms") is not None
    return ("≥" if bound else "") + measured_ms(row, "est_latency_ms")


def leaderboard_rows(data: Mapping[str, Any]) -> List[Tuple[str, ...]]:
    """One tuple of cells per row, in the study's order (the columns of :func:`header`); a
    lower-bound MACs count or latency reads ``≥``."""
    out, est, timed = [], bool(device_name(data)), measured(data)
    for r in data["rows"]:
        if r["error"] is not None:
            out.append(("", r["model"], *("-" for _ in range(5 + est + timed)), "-/-/-", _front(r)))
            continue
        macs = si(r["macs"]) if r["complete"] else "≥" + si(r["macs"])
        out.append((str(r["rank"]) if r["rank"] is not None else "-", r["model"], _num(r["top1"], ".2f"),
                    si(r["params"]), macs, *((est_ms(r),) if est else ()),
                    *((measured_ms(r),) if timed else ()), _density(r["info_density"]),
                    _num(r["netscore"], ".2f"),
                    "/".join(str(r["ranks"][m]) if r["ranks"].get(m) is not None else "-"
                             for m in ("netscore", "top1", "info_density")),
                    _front(r)))
    return out


def title(data: Mapping[str, Any]) -> str:
    n = data["counts"]["models"]
    on = f" on {device_name(data)}" if data["by"] == "est_latency" and device_name(data) else \
        " with onnxruntime" if data["by"] == "latency" else ""
    return f"onnxscore rank: {n} model(s) by {LABEL[data['by']]}{on}, {ORDER[data['by']]}"


def legend(data: Mapping[str, Any]) -> List[str]:
    """What the columns mean, with the units of every score shown."""
    lower = any(r["complete"] is False for r in data["rows"])
    fronts = ["against MACs (M)", "against parameters (P)"]
    fronts += ["against estimated latency (L)"] if device_name(data) else []
    fronts += ["against measured latency (T)"] if measured(data) else []
    return [f"top-1 in %. NetScore Ω = 20·log10(a^α / (p^β·m^γ)) in dB, with a = top-1 in %, p = "
            f"parameters in millions, m = MACs in billions; α={data['alpha']:g}, β={data['beta']:g}, "
            f"γ={data['gamma']:g}. density = information density, % top-1 per million parameters.",
            "Ω/a/d: the model's ranks under NetScore, top-1 and density, over the models with an "
            "accuracy (1 = best; equal values share a rank: 1, 2, 2, 4). front: on the Pareto front of "
            "top-1 " + ", ".join(fronts) + "."
            + (" ≥: a lower bound (an op without a cost rule, or a dim left unknown)." if lower else "")] \
        + ([f"est. ms: the roofline estimate of latency on {device_name(data)} in milliseconds (per layer "
            "max(FLOPs / peak, bytes moved / bandwidth), summed; ≥: some layers have no estimate). "
            "Estimates depend on the device profile's numbers; they are not measurements."]
           if device_name(data) else []) \
        + ([measure_line(data)] if measured(data) else [])


def measure_line(data: Mapping[str, Any], label: str = MEASURED_HEADER + ": the median latency") -> str:
    """How the models were measured, and that the numbers are this machine's, this run's."""
    m = data["measure"]
    threads = f"{m['threads']} thread(s)" if m.get("threads") else "onnxruntime's default threads"
    return (f"{label} of {m['runs']} run(s) after {m['warmup']} warm-up run(s), measured "
            f"with onnxruntime {m['version']} on this machine's CPU ({threads}, graph optimizations on), one "
            "model at a time after every analysis. Measured times vary from run to run and machine to "
            "machine; they are never cached.")


def correlation_rows(data: Mapping[str, Any]) -> List[Tuple[str, str, str]]:
    c = data["correlations"]
    return [(PAIR_LABEL[k], _num(c["spearman"].get(k), "+.3f"), _num(c["kendall"].get(k), "+.3f"))
            for k in PAIR_LABEL]


def correlation_title(data: Mapping[str, Any]) -> str:
    return f"Rank correlations ({data['correlations']['n']} models)"


CORRELATION_NOTE = ("Spearman ρ and Kendall τ-b between the metrics' ranks, over the models that have "
                    "all three; - when fewer than 2 do, or a metric is constant.")


def _names(names: Sequence[str]) -> str:
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def notes(data: Mapping[str, Any]) -> List[str]:
    """Models without accuracy, unmatched names, cache hits, then each failed model's error."""
    out = []
    if data["missing_accuracy"]:
        out.append(f"{len(data['missing_accuracy'])} model(s) without an accuracy, listed with their costs "
                   f"and left out of the ranks, fronts and correlations: {_names(data['missing_accuracy'])}")
    if data["unmatched_accuracy"]:
        out.append(f"{len(data['unmatched_accuracy'])} name(s) of the accuracy table matched no model: "
                   f"{_names(data['unmatched_accuracy'])}")
    out.append(summary_line(data))
    failed = [r for r in data["rows"] if r["error"] is not None]
    if failed:
        out.append(f"{len(failed)} model(s) failed:")
        out += [f"  {r['error']}" if r["error"].startswith(r["path"]) else f"  {r['path']}: {r['error']}"
                for r in failed]
    unmeasured = not_measured(data)
    if unmeasured:
        out.append(f"{len(unmeasured)} model(s) not measured (listed without a latency):")
        out += [f"  {r['latency_error']}" for r in unmeasured]
    return out


def not_measured(data: Mapping[str, Any]) -> List[Mapping[str, Any]]:
    """The rows analyzed but not measured: onnxruntime could not load or run the model."""
    return [r for r in data["rows"] if r.get("latency_error") is not None]


def summary_line(data: Mapping[str, Any]) -> str:
    c = data["counts"]
    unmeasured = f", {len(not_measured(data))} not measured" if not_measured(data) else ""
    return (f"{c['models']} model(s): {c['analyzed']} analyzed, {c['cached']} from the cache, "
            f"{c['failed']} failed{unmeasured}")


BOTH_WIDTH = 90  # columns of the text report with both est. ms and p50 ms: no cell folds


def to_text(study, width: Optional[int] = None) -> str:
    """The leaderboard, its legend, the rank correlations, then the notes; 80 columns (or
    ``width``), at least :data:`BOTH_WIDTH` when the leaderboard has both an estimated and a
    measured latency column."""
    from onnxscore.render.summary import Section
    from onnxscore.render.text import console_text, show

    data = _data(study)
    if device_name(data) and measured(data):
        width = max(width or 80, BOTH_WIDTH)

    def paint(console) -> None:
        show(console, Section(title(data), header(data), tuple(leaderboard_rows(data)), NUMERIC))
        for line in legend(data):
            console.print(line)
        console.print()
        show(console, Section(correlation_title(data), ("metrics", "Spearman ρ", "Kendall τ-b"),
                              tuple(correlation_rows(data)), frozenset({"Spearman ρ", "Kendall τ-b"})))
        console.print(CORRELATION_NOTE)
        console.print()
        for line in notes(data):
            console.print(line)

    return console_text(paint, width)


def to_markdown(study) -> str:
    from onnxscore.render.tables import _md_escape, md_table

    data = _data(study)
    parts = [f"### {_md_escape(title(data))}\n", md_table(header(data), leaderboard_rows(data)) + "\n"]
    parts += [_md_escape(line) + "\n" for line in legend(data)]
    parts.append(f"**{_md_escape(correlation_title(data))}**\n")
    parts.append(md_table(("metrics", "Spearman ρ", "Kendall τ-b"), correlation_rows(data)) + "\n")
    parts.append(_md_escape(CORRELATION_NOTE) + "\n")
    parts += [f"> {_md_escape(line.strip())}\n" for line in notes(data)]
    return "\n".join(parts)


def _cell(v):
    return "" if v is None else v


def to_csv(study) -> str:
    """One row per model, raw numbers (floats as computed), empty cells for unknowns."""
    data = _data(study)
    buf = io.StringIO()
    at, front = CSV_COLUMNS.index("weight_bytes") + 1, CSV_COLUMNS.index("pareto_params") + 1
    timing, fronts = (), ()
    if device_name(data):
        timing, fronts = timing + EST_CSV_COLUMNS, fronts + ("pareto_est_latency",)
    if measured(data):
        timing, fronts = timing + MEASURED_CSV_COLUMNS, fronts + ("pareto_latency",)
    columns = CSV_COLUMNS[:at] + timing + CSV_COLUMNS[at:front] + fronts + CSV_COLUMNS[front:]
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    for r in data["rows"]:
        row = {k: _cell(r[k]) for k in columns if k in r}
        row.update({f"rank_{m}": _cell(r["ranks"].get(m)) for m in ("netscore", "top1", "info_density")})
        row.update({f"pareto_{c}": r["pareto"].get(c, False) for c, _ in FRONT_MARKS
                    if f"pareto_{c}" in columns})
        writer.writerow(row)
    return buf.getvalue()


def to_json(study) -> str:
    """Schema ``onnxscore.study/1``, indented by two spaces."""
    return orjson.dumps(_data(study), option=orjson.OPT_INDENT_2).decode() + "\n"


def render_study(study, fmt: str = "text", width: Optional[int] = None) -> str:
    """A :class:`onnxscore.study.Study` (or its ``to_dict()``) in one of :data:`FORMATS`."""
    if fmt == "text":
        return to_text(study, width)
    return {"md": to_markdown, "csv": to_csv, "json": to_json}[fmt](study)
