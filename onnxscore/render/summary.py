"""The facts every format shows, as (label, value) rows, so the formats cannot drift apart."""
from __future__ import annotations

from typing import List, Tuple

from onnxscore.render.units import binary_bytes, percent, shape, si
from onnxscore.report import Report


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
    if t.quant_overhead:
        rows.insert(6, ("quant overhead", f"{t.quant_overhead:,} scale/zero-point values"))
    return rows


def layer_row(layer, total_macs: int) -> List[str]:
    return [layer.name, layer.op_type, shape(layer.output_shapes[0]) if layer.output_shapes else "",
            f"{layer.params:,}" if layer.params else "", si(layer.macs) if layer.macs != 0 else "",
            percent(layer.macs, total_macs) if layer.macs else "",
            si(layer.flops) if layer.flops != 0 else "", layer.status]


LAYER_HEADER = ["layer", "op", "output", "params", "MACs", "MACs %", "FLOPs", "status"]
