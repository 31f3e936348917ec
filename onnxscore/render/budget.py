"""The output of ``onnxscore check``: one line per violation, then a summary."""
from __future__ import annotations

import json

from onnxscore.budget import CheckResult
from onnxscore.render.tables import md_table
from onnxscore.render.units import binary_bytes, si


def _summary(result: CheckResult) -> str:
    n, over = len(result.models), len(result.over_budget)
    cached = sum(1 for m in result.models if m.cached)
    text = f"onnxscore check: {n} model(s), {n - over} within budget, {over} over"
    if result.errors:
        text += f", {len(result.errors)} unusable"
    if cached:
        text += f" ({cached} from cache)"
    if result.baseline_written:
        text = f"onnxscore check: baseline written to {result.baseline_written} ({n} model(s))"
    return text


def _latency(f) -> str:
    """The estimated latency cell: 'ms on device', '≥' when a lower bound."""
    if f.latency_ms is None:
        return ""
    return f"{'≥' if f.latency_unknown else ''}{f.latency_ms:.3g} on {f.latency_device}"


def render_check(result: CheckResult, fmt: str = "text") -> str:
    """Text: ``path: figure ... exceed budget ... (+N%)`` lines and a summary; ``md`` a table
    for a CI job summary; ``json`` every model with its figures and violations."""
    if fmt == "json":
        return json.dumps({"schema": "onnxscore.check/1", "baseline_written": result.baseline_written,
                           "errors": list(result.errors),
                           "models": [{"path": m.path, "ok": not m.violations, "cached": m.cached,
                                       "violations": [{"figure": v.figure, "message": v.message,
                                                       "value": v.value, "limit": v.limit}
                                                      for v in m.violations],
                                       "figures": m.figures.summary()}
                                      for m in result.models]}, indent=2) + "\n"
    if fmt == "md":
        latency = any(m.figures.latency_device is not None for m in result.models)
        rows = [(f"`{m.path}`", "over budget" if m.violations else "ok", si(m.figures.params),
                 si(m.figures.macs), binary_bytes(m.figures.weight_bytes))
                + ((_latency(m.figures),) if latency else ()) + ("; ".join(v.message for v in m.violations) or "",)
                for m in result.models]
        body = md_table(["model", "status", "params", "MACs", "weight bytes"] + (["est. ms"] if latency else [])
                        + ["violations"], rows)
        errors = "".join(f"\n> error: {e}\n" for e in result.errors)
        return f"### {_summary(result)}\n\n{body}\n{errors}"
    lines = [str(v) for m in result.models for v in m.violations]
    return "\n".join(lines + [_summary(result)]) + "\n"
