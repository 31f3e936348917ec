"""Time beside the counts: the roofline estimate (:class:`onnxscore.device.Estimate`) and the
measured latency (:class:`onnxscore.measure.Measurement`) of a report, as summary rows, table
cells and sections shared by the text, Markdown and HTML renderers (seconds become "ms" here
only)."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from onnxscore.render.summary import MAX_ROWS, NUMERIC, Section, display_name, first_rows
from onnxscore.report import Report

EST_MS = "est. ms"
EST_SHARE = "est. %"  # share of the estimated total
TIMING_NUMERIC = NUMERIC | frozenset({EST_MS, EST_SHARE, "ms", "time share", "MAC share", "GFLOP/s", "GB/s",
                                      "time - MACs"})


def ms(seconds: Optional[float]) -> str:
    """Seconds as milliseconds, 3 significant digits: '?' unknown, '0' nothing, '<0.001' below
    a microsecond."""
    if seconds is None:
        return "?"
    if seconds == 0:
        return "0"
    value = seconds * 1e3
    return "<0.001" if value < 1e-3 else f"{value:.3g}"


def _pct(fraction: Optional[float]) -> str:
    return "" if fraction is None else f"{100 * fraction:.1f}%"


# ---------------------------------------------------------------------------------------------
# The estimate

def estimate_line(est) -> str:
    """'8.39 ms on my-board (roofline ...; 1 compute-bound, 0 memory-bound layers)', with
    'lower bound' when some layers have no estimate."""
    bound = f"{est.compute_bound} compute-bound, {est.memory_bound} memory-bound layer(s)"
    text = f"{ms(est.seconds)} ms on {est.device.name} (roofline: max(FLOPs / peak, bytes / bandwidth) " \
           f"per layer; {bound})"
    if not est.complete:
        text = "≥ " + text + f"; lower bound: {est.unknown} layer(s) without an estimate"
    if not est.info_given:
        text += "; dtypes unknown, float32 assumed"
    return text


def estimate_rows(est) -> List[Tuple[str, str]]:
    return [("est. latency", estimate_line(est))]


def layer_estimates(est) -> Dict[str, object]:
    """Layer name -> its :class:`~onnxscore.device.LayerEstimate` (top-level layers only)."""
    return {x.name: x for x in est.layers} if est is not None else {}


def est_cell(x) -> str:
    """A layer's estimated ms: blank for a layer without a row (inside a subgraph) or taking 0 s
    (fused, folded), '?' when unknown."""
    if x is None:
        return ""
    return "" if x.seconds == 0 else ms(x.seconds)


def share_cells(rows, key: str) -> Tuple[str, str]:
    """(est. ms, est. share) of the :class:`~onnxscore.device.EstimateShare` ``key`` of ``rows``."""
    r = rows.get(key)
    if r is None:
        return "", ""
    lower = "≥" if r.unknown else ""
    return (lower + ms(r.seconds) if r.seconds or r.unknown else ""), (_pct(r.share) if r.seconds else "")


def est_hotspot_section(report: Report, est, k: int = 10) -> Optional[Section]:
    """The ``k`` layers with the longest estimated time, share and cumulative share of the
    estimated total, and the bound."""
    top = est.top(k)
    if not top:
        return None
    total = est.seconds
    by_name = {x.name: x for x in report.top_layers}
    rows, running = [], 0.0
    for i, x in enumerate(top, 1):
        running += x.seconds
        layer = by_name.get(x.name)
        rows.append((str(i), display_name(layer) if layer is not None else x.name, x.op_type, ms(x.seconds),
                     _pct(x.seconds / total), _pct(running / total), x.bound or ""))
    title = (f"Top {len(top)} layers by estimated time on {est.device.name} "
             f"({100 * running / total:.0f}% of the estimate)")
    return Section(title, ("#", "layer", "op", EST_MS, "share", "cum.", "bound"), tuple(rows),
                   TIMING_NUMERIC | {"#"})


# ---------------------------------------------------------------------------------------------
# The measurement

def measure_rows(m) -> List[Tuple[str, str]]:
    """Latency percentiles, how the layers add up, and the rank correlation of time and MACs."""
    lat, slow = m.optimized, m.unoptimized
    rows = [
        ("latency (measured)", f"p50 {ms(lat.p50)} ms, p90 {ms(lat.p90)} ms (spread p90/p50 {lat.spread:.2f}x, "
                               f"{lat.runs} runs; onnxruntime {m.onnxruntime_version} on CPU, "
                               f"{m.threads} thread(s))"),
        ("layer times", f"sum {ms(m.layer_seconds)} ms = {100 * m.coverage:.0f}% of the unoptimized end-to-end "
                        f"{ms(slow.mean)} ms (mean of {slow.runs} profiled run(s)); {len(m.layers)} layers "
                        f"timed, {len(m.unmapped)} unmapped kernel(s)"),
        ("time vs MACs", "Spearman rank correlation " +
         ("n/a (fewer than 3 layers, or constant)" if m.spearman is None else f"{m.spearman:.3f}")
         + " over the layers with MACs"),
    ]
    rows += [("note", n) for n in m.notes]
    return rows


def _rate(v: Optional[float]) -> str:
    return "" if v is None else f"{v / 1e9:.3g}"


def measured_section(report: Report, m, top: int = 10, layers: bool = True,
                     max_rows: int = MAX_ROWS) -> Optional[Section]:
    """Measured time per layer: every timed layer in graph order (``layers``; the first
    ``max_rows``), else the ``top`` slowest; share of time beside share of MACs, achieved
    GFLOP/s and GB/s."""
    if not m.layers:
        return None
    by_name = {x.name: x for x in report.top_layers}
    note = ""
    if layers:
        shown, note = first_rows(m.layers, max_rows, "timed layers")
    else:
        shown = tuple(sorted(m.layers, key=lambda x: x.seconds, reverse=True)[:top])
    rows = tuple((display_name(by_name[x.name]) if x.name in by_name else x.name, x.op_type, ms(x.seconds),
                  _pct(x.share), _pct(x.mac_share), _rate(x.flops_per_s), _rate(x.bytes_per_s))
                 for x in shown)
    title = (f"Measured time per layer ({len(m.layers)} layers, onnxruntime, optimizations off)" if layers
             else f"Top {len(shown)} layers by measured time (onnxruntime, optimizations off)")
    return Section(title, ("layer", "op", "ms", "time share", "MAC share", "GFLOP/s", "GB/s"), rows,
                   TIMING_NUMERIC, fold=layers, note=note)


def measured_hotspot_section(report: Report, m, k: int = 10) -> Optional[Section]:
    """The ``k`` layers with the longest measured time (``hotspots --measure --by time``): share
    and cumulative share of the layers' summed time, beside their share of MACs."""
    top = measured_top(m, k)
    if not top:
        return None
    by_name = {x.name: x for x in report.top_layers}
    rows, running = [], 0.0
    for i, x in enumerate(top, 1):
        running += x.share
        rows.append((str(i), display_name(by_name[x.name]) if x.name in by_name else x.name, x.op_type,
                     ms(x.seconds), _pct(x.share), _pct(running), _pct(x.mac_share)))
    title = (f"Top {len(top)} layers by measured time ({100 * running:.0f}% of the layers' time; onnxruntime, "
             "optimizations off)")
    return Section(title, ("#", "layer", "op", "ms", "share", "cum.", "MAC share"), tuple(rows),
                   TIMING_NUMERIC | {"#", "share", "cum."})


def measured_top(m, k: int = 10) -> tuple:
    """The ``k`` top-level layers with the longest measured time, longest first (graph order
    among equals)."""
    return tuple(sorted(m.layers, key=lambda x: -x.seconds)[:k])


def mislead_section(report: Report, m, top: int = 10) -> Optional[Section]:
    """The layers whose share of measured time most exceeds their share of MACs."""
    if not m.mislead:
        return None
    by_name = {x.name: x for x in report.top_layers}
    rows = tuple((display_name(by_name[x.name]) if x.name in by_name else x.name, x.op_type, _pct(x.share),
                  _pct(x.mac_share), f"+{100 * (x.share - x.mac_share):.1f}")
                 for x in m.mislead[:top])
    rho = "n/a" if m.spearman is None else f"{m.spearman:.3f}"
    return Section(f"Where MACs mislead: share of time above share of MACs (Spearman {rho})",
                   ("layer", "op", "time share", "MAC share", "time - MACs"), rows, TIMING_NUMERIC,
                   note="time - MACs in percentage points; layers whose inputs are all constants are left out.")


def measurement_sections(report: Report, m, top: int = 10, layers: bool = True,
                         max_rows: int = MAX_ROWS) -> List[Section]:
    return [s for s in (measured_section(report, m, top, layers, max_rows), mislead_section(report, m, top)) if s]
