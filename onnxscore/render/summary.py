"""The facts every format shows, as (label, value) rows, so the formats cannot drift apart."""
from __future__ import annotations

from typing import List, Tuple

from onnxscore.render.units import binary_bytes, percent, shape, si
from onnxscore.report import UNSUPPORTED, ZERO, Report


def netscore_line(report: Report) -> str:
    """'Ω = 78.23 dB-like ...' with its units, or what is missing."""
    ns = report.netscore
    exps = f"α={ns.alpha:g}, β={ns.beta:g}, γ={ns.gamma:g}"
    if ns.value is None:
        return f"not computed: {ns.missing} ({exps})"
    return (f"{ns.value:.2f}  (Ω = 20·log10(a^α / (p^β·m^γ)); a = {ns.accuracy:g} % top-1, "
            f"p = {ns.params / 1e6:.4g} M params, m = {ns.macs / 1e9:.4g} GMACs; {exps})")


def density_line(report: Report) -> str:
    d = report.netscore.info_density
    return "-" if d is None else f"{d:.3g} % top-1 per million parameters"


def summary_rows(report: Report) -> List[Tuple[str, str]]:
    """Model facts, inputs used, totals and NetScore."""
    m, t = report.model, report.totals
    lower = "" if t.complete else "  (lower bound: see warnings)"
    by_dtype = ", ".join(f"{k} {binary_bytes(v)}" for k, v in sorted(t.weight_bytes_by_dtype.items()))
    rows = [
        ("model", m.path),
        ("producer", f"{m.producer or '?'} {m.producer_version}".strip()),
        ("opset", f"{m.opset} (IR {m.ir_version})"),
        ("inputs", "; ".join(f"{k}: {shape(v)}" for k, v in m.inputs.items()) or "none"),
        ("parameters", f"{si(t.params)} ({t.params:,})" + ("" if t.params_complete else "  (lower bound)")),
        ("buffers", f"{si(t.buffers)} ({t.buffers:,}; BatchNorm running statistics)" if t.buffers else "0"),
        ("MACs", f"{si(t.macs)} ({t.macs:,}){lower}"),
        ("FLOPs", f"{si(t.flops)} ({t.flops:,}){lower}"),
        ("weight bytes", f"{binary_bytes(t.weight_bytes)}" + (f" ({by_dtype})" if by_dtype else "")),
        ("NetScore", netscore_line(report)),
        ("info density", density_line(report)),
    ]
    if report.shared_weights:
        shared = sorted(report.shared_weights.items())
        text = ", ".join(f"{name} ({len(users)} layers)" for name, users in shared[:5])
        rows.insert(5, ("shared weights", text + (f" and {len(shared) - 5} more" if len(shared) > 5 else "")
                        + ": each counted once"))
    if t.quant_overhead:
        rows.insert(6, ("quant overhead", f"{t.quant_overhead:,} scale/zero-point values"))
    return rows


def _cost_cell(value, status: str) -> str:
    """A MACs/FLOPs cell: blank for zero, '?' when unknown, 'n/a' when the op has no rule."""
    if value is None:
        return "n/a" if status == UNSUPPORTED else "?"
    return si(value) if value else ""


def layer_row(layer) -> List[str]:
    return [layer.name, layer.op_type, shape(layer.output_shapes[0]) if layer.output_shapes else "",
            f"{layer.params:,}" if layer.params else "", _cost_cell(layer.macs, layer.status),
            _cost_cell(layer.flops, layer.status)]


def hotspot_row(layer, total_macs: int) -> List[str]:
    return layer_row(layer)[:5] + [percent(layer.macs, total_macs)]


def visible_layers(report: Report, all_layers: bool = False):
    """The layers a human table shows (zero-cost ones only with ``all_layers``), and how many
    were hidden."""
    if all_layers:
        return report.layers, 0
    shown = tuple(layer for layer in report.layers if layer.status != ZERO)
    return shown, len(report.layers) - len(shown)


LAYER_HEADER = ["layer", "op", "output", "params", "MACs", "FLOPs"]
HOTSPOT_HEADER = ["layer", "op", "output", "params", "MACs", "share"]
NUMERIC_COLUMNS = {"params", "MACs", "FLOPs", "share"}
