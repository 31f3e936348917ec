"""``onnxscore hotspots``: the top-k layers of each model by one measure, in every format."""
from __future__ import annotations

import csv
import io
import json
from typing import Optional, Sequence

from rich.console import Console

from onnxscore.render.summary import _with_column, hotspot_section
from onnxscore.render.tables import md_section
from onnxscore.render.text import console_text, show
from onnxscore.report import Report

EST = "est"  # --by est: rank by the roofline estimate (needs a device)
TIME = "time"  # --by time: rank by the time measured per layer (needs a measurement)


def hotspot_dicts(report: Report, k: int, by: str, est=None, meas=None) -> list:
    """The rows of ``report.hotspots``; a polynomial value as text (``256*seq*total``), its
    share and cumulative share null (ranked by leading term). With ``est`` each row has
    ``est_seconds`` and ``bound`` (``by="est"`` ranks by them: ``value`` is the seconds and the
    shares are of the estimated total); with ``meas``, ``measured_seconds`` (``by="time"`` ranks
    by them: the shares are of the layers' summed time)."""
    timed = {x.name: x.seconds for x in meas.layers} if meas is not None else {}
    per_layer = {x.name: x for x in est.layers} if est is not None else {}
    if by == EST:
        rows, running, total = [], 0.0, est.seconds
        for i, x in enumerate(est.top(k), 1):
            running += x.seconds
            rows.append({"rank": i, "name": x.name, "op_type": x.op_type, "scope": x.scope, "value": x.seconds,
                         "share": x.seconds / total, "cumulative": running / total})
    elif by == TIME:
        from onnxscore.render.timing import measured_top

        rows, running = [], 0.0
        for i, x in enumerate(measured_top(meas, k) if meas is not None else (), 1):  # None: it failed
            running += x.share
            rows.append({"rank": i, "name": x.name, "op_type": x.op_type, "scope": x.scope, "value": x.seconds,
                         "share": x.share, "cumulative": running})
    else:
        rows = [{"rank": i, "name": h.layer.name, "op_type": h.layer.op_type, "scope": h.layer.scope,
                 "value": h.value if isinstance(h.value, int) else str(h.value), "share": h.share,
                 "cumulative": h.cumulative}
                for i, h in enumerate(report.hotspots(k, by), 1)]
    for row in rows:
        if est is not None:
            x = per_layer.get(row["name"])
            row["est_seconds"] = None if x is None else x.seconds
            row["bound"] = None if x is None else x.bound
        if meas is not None:
            row["measured_seconds"] = timed.get(row["name"])
    return rows


def _columns(est, meas) -> list:
    return (["est_seconds", "bound"] if est else []) + (["measured_seconds"] if meas else [])


def render_hotspots(reports: Sequence[Report], fmt: str = "text", k: int = 10, by: str = "macs",
                    width: Optional[int] = None, estimates=None, measurements=None) -> str:
    """Top-k layers by ``by`` (macs, flops, params, memory, ``est``: the estimated time, with
    ``estimates``, or ``time``: the measured time, with ``measurements``) with share and
    cumulative share; ``estimates`` and ``measurements`` (one or None per model) add the
    estimated and measured time of each layer."""
    ests = list(estimates or [None] * len(reports))
    meass = list(measurements or [None] * len(reports))
    if fmt == "json":
        data = []
        for r, est, meas in zip(reports, ests, meass):
            d = {"schema": "onnxscore.hotspots/1", "model": r.model.path, "by": by, "k": k,
                 "rows": hotspot_dicts(r, k, by, est, meas)}
            if est is not None:
                d["estimate"] = {"device": est.device.name, "seconds": est.seconds, "complete": est.complete,
                                 "unknown": est.unknown, "compute_bound": est.compute_bound,
                                 "memory_bound": est.memory_bound}
            if meas is not None:
                d["measurement"] = meas.to_dict()
            data.append(d)
        return json.dumps(data[0] if len(data) == 1 else data, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        extra = _columns(any(e is not None for e in ests), any(m is not None for m in meass))
        writer = csv.DictWriter(buf, ["model", "by", "rank", "name", "op_type", "scope", "value",
                                      "share", "cumulative"] + extra, lineterminator="\n")
        writer.writeheader()
        for r, est, meas in zip(reports, ests, meass):
            for row in hotspot_dicts(r, k, by, est, meas):
                writer.writerow({key: ("" if v is None else v) for key, v in dict(row, model=r.model.path,
                                                                                 by=by).items()})
        return buf.getvalue()
    sections = []
    for r, est, meas in zip(reports, ests, meass):
        if by == TIME:
            s = _time_section(r, k, est, meas)
        else:
            s = hotspot_section(r, k, by, est=est)
        if s is not None and meas is not None and by != TIME:
            from onnxscore.render.timing import ms

            timed = {x.name: x.seconds for x in meas.layers}
            names = [row["name"] for row in hotspot_dicts(r, k, by, est)]
            s = _with_column(s, "ms", [ms(timed[n]) if n in timed else "" for n in names], s.header[3])
        sections.append((r, s, _lines(est, meas)))
    what = "estimated time" if by == EST else "measured time" if by == TIME else by
    if fmt == "md":
        return "\n".join(f"### onnxscore hotspots: `{r.model.path}`\n\n" + "".join(f"> {x}\n\n" for x in lines)
                         + (md_section(s) if s else f"no layer has any {what}\n") for r, s, lines in sections)

    def paint(console: Console) -> None:
        for r, s, lines in sections:
            console.print(f"{r.model.path}")
            for line in lines:
                console.print(line)
            if s:
                show(console, s)
            else:
                console.print(f"no layer has any {what}")

    return console_text(paint, width)


def _time_section(report: Report, k: int, est, meas):
    """The top-k layers by measured time (none when the model was not measured), with their
    estimated time when there is an estimate."""
    from onnxscore.render.timing import EST_MS, est_cell, layer_estimates, measured_hotspot_section, measured_top

    s = measured_hotspot_section(report, meas, k) if meas is not None else None
    if s is not None and est is not None:
        per_layer = layer_estimates(est)
        s = _with_column(s, EST_MS, [est_cell(per_layer.get(x.name)) for x in measured_top(meas, k)], "ms")
    return s


def _lines(est, meas) -> list:
    """The estimated and measured latency of a model, one line each."""
    from onnxscore.render.timing import estimate_rows, measure_rows

    rows = (estimate_rows(est) if est is not None else []) + (measure_rows(meas)[:1] if meas is not None else [])
    return [f"{label}: {value}" for label, value in rows]
