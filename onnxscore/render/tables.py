"""JSON, CSV and Markdown renderings of reports."""
from __future__ import annotations

import csv
import io
import json
from typing import Sequence

import orjson

from onnxscore.render.summary import MAX_ROWS, Section, footer_lines, report_sections, summary_rows
from onnxscore.render.units import Formula, shapes
from onnxscore.report import Report

CSV_COLUMNS = ["model", "kind", "name", "op_type", "domain", "scope", "input_shapes", "output_shapes",
               "params", "macs", "flops", "input_bytes", "activation_bytes", "weight_bytes", "memory",
               "intensity", "status", "parent", "count", "repeats", "note"]


def to_json(reports: Sequence[Report], **options) -> str:
    """:func:`to_json_bytes` as text."""
    return to_json_bytes(reports, **options).decode()


def to_json_bytes(reports: Sequence[Report], depth: int = 1, sweeps=None, indent: bool = False, estimates=None,
                  measurements=None, **_) -> bytes:
    """One object per model (a list when there are several), with the roll-ups at ``depth``
    (and ``sweep``: the costs at each swept value), as UTF-8. Compact (one line) unless
    ``indent`` (two spaces). Written by orjson, a C encoder that writes the rows' dataclasses
    directly: a report of 200,000 layers takes a fraction of a second, where ``json.dumps``
    took half a minute; its bytes go to a file as they are (100 MB decoded to text and encoded
    back took 0.17 s). Polynomials (formulas, dims such as "past + seq") are
    written as text. With ``estimates`` / ``measurements`` (one or None per model), an
    ``estimate`` object (``Estimate.to_dict``) and a ``measurement`` object
    (``Measurement.to_dict``)."""
    timing = dict(estimates=estimates, measurements=measurements)
    try:
        return orjson.dumps(_documents(reports, depth, sweeps, objects=True, **timing), default=str,
                            option=orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
                            | (orjson.OPT_INDENT_2 if indent else 0))
    except TypeError:  # an integer beyond 64 bits (a count from absurd dims): the standard encoder
        return (json.dumps(_documents(reports, depth, sweeps, **timing), default=str,
                           indent=2 if indent else None) + "\n").encode()


def _documents(reports: Sequence[Report], depth: int, sweeps, objects: bool = False, estimates=None,
               measurements=None):
    data = [r.to_dict(depth, objects=objects) for r in reports]
    for d, rows in zip(data, sweeps or ()):
        d["sweep"] = [{"values": x.values, "phase": x.phase, "macs": x.macs, "flops": x.flops} for x in rows]
    for d, est in zip(data, estimates or ()):
        if est is not None:
            d["estimate"] = est.to_dict(depth)
    for d, m in zip(data, measurements or ()):
        if m is not None:
            d["measurement"] = m.to_dict()
    return data[0] if len(data) == 1 else data


def _blank(v):
    return "" if v is None else v


def _ms(seconds) -> str:
    return "" if seconds is None else f"{seconds * 1e3:.6g}"


def _csv_rate(value) -> str:
    return "" if value is None else f"{value:.6g}"


def to_csv(reports: Sequence[Report], depth: int = 1, sweeps=None, estimates=None, measurements=None,
           **_) -> str:
    """Raw integers, one row per layer (``kind=layer``), then one per block at ``depth``
    (``kind=scope``) and per op type (``kind=op_type``). Unknown costs are empty cells.
    With ``sweeps``, the sweep table alone: model, the swept dims, phase, macs, flops.

    With ``estimates`` (one or None per model), the columns ``est_ms`` (estimated
    milliseconds; empty when unknown) and ``bound`` (compute or memory), and a first row
    ``kind=estimate`` per model (name: the device; est_ms: the total; count: layers without an
    estimate). With ``measurements``, the columns ``measured_ms``, ``time_share``,
    ``mac_share``, ``flop_per_s``, ``byte_per_s`` (per layer), and a row ``kind=measurement``
    (measured_ms: the p50 end-to-end latency; note: p90, threads, onnxruntime version)."""
    if sweeps:
        return _sweep_csv(reports, sweeps)
    est_on = any(e is not None for e in estimates or ())
    meas_on = any(m is not None for m in measurements or ())
    columns = CSV_COLUMNS + (["est_ms", "bound"] if est_on else []) + (
        ["measured_ms", "time_share", "mac_share", "flop_per_s", "byte_per_s"] if meas_on else [])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    for i, r in enumerate(reports):
        est = estimates[i] if est_on else None
        meas = measurements[i] if meas_on else None
        per_layer = {x.name: x for x in est.layers} if est is not None else {}
        timed = {x.name: x for x in meas.layers + meas.nested} if meas is not None else {}
        if est is not None:
            writer.writerow({"model": r.model.path, "kind": "estimate", "name": est.device.name,
                             "est_ms": _ms(est.seconds), "count": est.unknown,
                             "note": f"roofline; {est.compute_bound} compute-bound, {est.memory_bound} "
                                     f"memory-bound layers" + ("" if est.complete else "; lower bound")})
        if meas is not None:
            lat = meas.optimized
            writer.writerow({"model": r.model.path, "kind": "measurement", "name": "p50",
                             "measured_ms": _ms(lat.p50), "count": lat.runs,
                             "note": f"p90 {_ms(lat.p90)} ms; {meas.threads} thread(s); onnxruntime "
                                     f"{meas.onnxruntime_version}; {len(meas.unmapped)} unmapped kernel(s)"})
        for x in r.layers:
            extra = {}
            if est is not None:
                e = per_layer.get(x.name)
                extra.update(est_ms=_ms(e.seconds) if e is not None else "", bound=(e.bound or "") if e else "")
            if meas is not None:
                t = timed.get(x.name)
                if t is not None:
                    extra.update(measured_ms=_ms(t.seconds), time_share=f"{t.share:.6g}",
                                 mac_share=_csv_rate(t.mac_share), flop_per_s=_csv_rate(t.flops_per_s),
                                 byte_per_s=_csv_rate(t.bytes_per_s))
            writer.writerow({**extra,
                "model": r.model.path, "kind": "layer", "name": x.name, "op_type": x.op_type,
                "domain": x.domain, "scope": x.scope, "input_shapes": shapes(x.input_shapes),
                "output_shapes": shapes(x.output_shapes), "params": x.params, "macs": _blank(x.macs),
                "flops": _blank(x.flops), "input_bytes": _blank(x.input_bytes),
                "activation_bytes": _blank(x.activation_bytes), "weight_bytes": x.weight_bytes,
                "memory": _blank(x.memory),
                "intensity": "" if x.intensity is None else f"{x.intensity:.6g}",
                "status": x.status, "parent": x.parent or "", "note": x.note})
        shares = {"scope": {s.key: s for s in est.by_scope(depth)} if est is not None else {},
                  "op_type": {s.key: s for s in est.by_op_type()} if est is not None else {}}
        for kind, rows in (("scope", r.by_scope(depth)), ("op_type", r.by_op_type())):
            for row in rows:
                share = shares[kind].get(row.key)
                writer.writerow({**({"est_ms": _ms(share.seconds)} if share is not None else {}),
                    "model": r.model.path, "kind": kind, "name": row.key,
                    "scope": row.key if kind == "scope" else "", "params": row.params, "macs": row.macs,
                    "flops": row.flops, "activation_bytes": row.activation_bytes,
                    "weight_bytes": row.weight_bytes, "count": row.count, "repeats": row.repeats,
                    "note": row.pattern})
    return buf.getvalue()


def _sweep_csv(reports, sweeps) -> str:
    names = list(dict.fromkeys(n for rows in sweeps for x in rows for n in x.values))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["model", *names, "phase", "macs", "flops"])
    for r, rows in zip(reports, sweeps):
        for x in rows:
            writer.writerow([r.model.path, *(x.values.get(n, "") for n in names), x.phase, x.macs, x.flops])
    return buf.getvalue()


def _md_escape(text: str) -> str:
    """Text as Markdown shows it: ``*`` (a product in a formula) is not emphasis."""
    return str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace("*", "\\*")


def _md_cell(cell) -> str:
    """A cell; a polynomial as code, which shows it as written."""
    return f"`{cell}`" if isinstance(cell, Formula) else _md_escape(cell)


def md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def md_section(section: Section) -> str:
    table = md_table(section.header, section.rows)
    if section.note:
        table += f"\n\n{_md_escape(section.note)}"
    if section.fold:
        return f"<details><summary>{_md_escape(section.title)}</summary>\n\n{table}\n\n</details>\n"
    return f"**{_md_escape(section.title)}**\n\n{table}\n"


def to_markdown(reports: Sequence[Report], top: int = 10, depth: int = 1, layers: bool = True,
                all_layers: bool = False, sweeps=None, explain: bool = False, estimates=None,
                measurements=None, max_rows: int = MAX_ROWS, **_) -> str:
    """GitHub-flavoured Markdown: the summary first, the long per-layer table folded (with
    ``estimates`` / ``measurements``, one or None per model: the estimated and measured time;
    ``max_rows``: the rows of a table of layers or blocks, 0 for all)."""
    parts = []
    for i, r in enumerate(reports):
        est = estimates[i] if estimates else None
        meas = measurements[i] if measurements else None
        parts.append(f"### onnxscore: `{r.model.path}`\n")
        parts.append(md_table(["figure", "value"], summary_rows(r, est, meas)) + "\n")
        rows = sweeps[i] if sweeps else None
        parts += [md_section(s) for s in report_sections(r, top, depth, layers, all_layers, rows, est, meas,
                                                         max_rows)]
        parts += [f"> {_md_escape(line)}\n" for line in footer_lines(r, explain)]
    return "\n".join(parts)
