"""The facts every format shows, as (label, value) rows, so the formats cannot drift apart."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import FrozenSet, List, Optional, Sequence, Tuple

from onnxscore.poly import Poly
from onnxscore.render import MAX_ROWS
from onnxscore.render.units import binary_bytes, cost_text, percent, shape, shape_cell, si
from onnxscore.report import SYMBOLIC, UNSUPPORTED, ZERO, Report, cost, leading_term


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


def params_line(t) -> str:
    """'650 (650; 650 in node attributes)': the total, and how much of it attributes hold."""
    held = f"; {t.attr_params:,} in node attributes" if t.attr_params else ""
    return f"{si(t.params)} ({t.params:,}{held})" + ("" if t.params_complete else "  (lower bound)")


_NUMBER = re.compile(r"\d+")


def inputs_line(inputs) -> str:
    """The model's inputs and their shapes; inputs of one shape whose names differ in one number
    only are one entry, ``past_key_values.{0..31}.key: 1x8xpastx128`` (an LLM has two per
    layer), or ``name.N.key (5 of them)`` when the numbers do not run on."""
    groups = {}
    for name, dims in inputs.items():
        groups.setdefault((_NUMBER.sub("#", name), tuple(dims) if dims is not None else None), []).append(name)
    return "; ".join(f"{_numbered(names)}: {shape(dims)}" for (_, dims), names in groups.items()) or "none"


def _numbered(names: Sequence[str]) -> str:
    if len(names) == 1:
        return names[0]
    runs = [[int(x) for x in _NUMBER.findall(n)] for n in names]
    varying = [i for i in range(len(runs[0])) if len({r[i] for r in runs}) > 1]
    values = sorted(r[varying[0]] for r in runs) if len(varying) == 1 else []
    numbers = ["N" if i in varying else str(x) for i, x in enumerate(runs[0])]
    suffix = f" ({len(names)} of them)"
    if values and values == list(range(values[0], values[0] + len(values))):
        numbers[varying[0]], suffix = f"{{{values[0]}..{values[-1]}}}", ""
    pieces = _NUMBER.split(names[0])
    return "".join(p + (numbers[i] if i < len(numbers) else "") for i, p in enumerate(pieces)) + suffix


def summary_rows(report: Report, est=None, meas=None) -> List[Tuple[str, str]]:
    """Model facts, inputs used, totals and NetScore; with ``est`` (an
    :class:`~onnxscore.device.Estimate`) the estimated latency, with ``meas`` (a
    :class:`~onnxscore.measure.Measurement`) the measured one."""
    m, t = report.model, report.totals
    lower = "" if t.complete else "  (lower bound: see warnings)"
    by_dtype = ", ".join(f"{k} {binary_bytes(v)}" for k, v in sorted(t.weight_bytes_by_dtype.items()))
    rows = [
        ("model", m.path),
        ("producer", f"{m.producer or '?'} {m.producer_version}".strip()),
        ("opset", f"{m.opset} (IR {m.ir_version})"),
        ("inputs", inputs_line(m.inputs)),
        ("parameters", params_line(t)),
        ("buffers", f"{si(t.buffers)} ({t.buffers:,}; running statistics, computed tables: not parameters)"
         if t.buffers else "0"),
        ("MACs", f"{t.macs_formula}  (exact, dims symbolic)" if t.macs_formula is not None
         else f"{si(t.macs)} ({t.macs:,}){lower}"),
        ("FLOPs", f"{t.flops_formula}  (exact, dims symbolic)" if t.flops_formula is not None
         else f"{si(t.flops)} ({t.flops:,}){lower}"),
        ("weight bytes", f"{binary_bytes(t.weight_bytes)}" + (f" ({by_dtype})" if by_dtype else "")),
        ("peak activations", "unknown (a tensor shape is unresolved)" if t.peak_activation_bytes is None
         else binary_bytes(t.peak_activation_bytes) + " (most alive at once, graph order)"),
        ("NetScore", netscore_line(report)),
        ("info density", density_line(report)),
    ]
    if report.shared_weights:
        shared = sorted(report.shared_weights.items())
        text = ", ".join(f"{name} ({len(users)} layers)" for name, users in shared[:5])
        rows.insert(5, ("shared weights", text + (f" and {len(shared) - 5} more" if len(shared) > 5 else "")
                        + ": each counted once"))
    if report.kv_cache is not None:
        rows.append(("KV cache", report.kv_cache.describe()))
    if t.quant_overhead:
        rows.insert(6, ("quant overhead", f"{t.quant_overhead:,} scale/zero-point values"))
    if t.tree_nodes or t.trees:
        rows.insert([label for label, _ in rows].index("parameters") + 1, ("trees", trees_line(t)))
    if est is not None or meas is not None:
        from onnxscore.render.timing import estimate_rows, measure_rows

        rows += (estimate_rows(est) if est is not None else []) + (measure_rows(meas) if meas is not None else [])
    return rows


def trees_line(t) -> str:
    """'3 trees, 45 nodes, 24 leaves': tree ensembles' own measure, apart from parameters."""
    return f"{t.trees:,} trees, {t.tree_nodes:,} nodes, {t.tree_leaves:,} leaves"


def cost_cell(value, status: str, formula=None) -> str:
    """A MACs/FLOPs cell: blank for zero, '?' when unknown, 'n/a' when the op has no rule, the
    polynomial (a :class:`Formula`) when the dims are symbolic."""
    if value is None:
        if formula is not None:
            return cost_text(formula)
        return "n/a" if status == UNSUPPORTED else "?"
    return si(value) if value else ""


@dataclass(frozen=True)
class Section:
    """A titled table: what the text and Markdown renderers draw, so they cannot drift apart.
    ``numeric`` names the right-aligned columns; ``fold`` asks Markdown to fold a long table;
    ``note`` is a line under it. A cell may be a :class:`Formula` (a polynomial cost)."""

    title: str
    header: Tuple[str, ...]
    rows: Tuple[Tuple[str, ...], ...]
    numeric: FrozenSet[str] = frozenset()
    fold: bool = False
    note: str = ""


def first_rows(items: Sequence, max_rows: int, what: str) -> Tuple[Sequence, str]:
    """The first ``max_rows`` of ``items`` (all of them when ``max_rows`` is 0 or they are no
    more), and the note that says how many were left out ("" when none)."""
    if not max_rows or len(items) <= max_rows:
        return items, ""
    return items[:max_rows], (f"The first {max_rows:,} of {len(items):,} {what} (graph order): --max-rows N "
                              "shows more, --max-rows 0 all; --format csv or json lists every one.")


MEASURE_LABEL = {"macs": "MACs", "flops": "FLOPs", "params": "params", "memory": "bytes moved"}
NUMERIC = frozenset({"params", "MACs", "FLOPs", "share", "cum.", "layers", "act. bytes", "bytes moved",
                     "FLOP/B", "count", "weights"})


def display_name(layer) -> str:
    """The layer's name, with its scope when the name does not already spell it
    (torch.export names nodes ``node_Conv_291``; its scope is ``layer1/layer1.0/conv1``)."""
    if not layer.scope or layer.scope.split("/")[-1] in layer.name:
        return layer.name
    return f"{layer.name} ({layer.scope})"


def _value(v: int, by: str) -> str:
    return binary_bytes(v) if by == "memory" else (f"{v:,}" if by == "params" else si(v))


def _with_column(section: Section, label: str, cells: Sequence[str], after: str) -> Section:
    """``section`` with a column ``label`` of ``cells`` (one per row) after column ``after``."""
    i = section.header.index(after) + 1
    return replace(section, header=section.header[:i] + (label,) + section.header[i:],
                   rows=tuple(row[:i] + (cell,) + row[i:] for row, cell in zip(section.rows, cells)),
                   numeric=section.numeric | {label})


def hotspot_section(report: Report, k: int = 10, by: str = "macs", at=None, est=None) -> Optional[Section]:
    """The top-k layers by ``by`` with share and cumulative share of the model total. Polynomial
    costs are ranked at the dim values ``at`` when given (the title says which), else by their
    leading term, without shares (the note says so). With ``est`` (an
    :class:`~onnxscore.device.Estimate`) an ``est. ms`` column; ``by="est"`` ranks by it."""
    if est is not None:
        from onnxscore.render.timing import EST_MS, est_cell, est_hotspot_section, layer_estimates

        if by == "est":
            return est_hotspot_section(report, est, k)
        section = hotspot_section(report, k, by, at)
        if section is None:
            return None
        per_layer = layer_estimates(est)
        cells = [est_cell(per_layer.get(h.layer.name)) for h in report.hotspots(k, by, at)]
        return _with_column(section, EST_MS, cells, section.header[-1])
    hot = report.hotspots(k, by, at)
    if not hot:
        return None
    label = MEASURE_LABEL[by]
    if hot[0].share is None:  # polynomials, no values: ranked by growth
        rows = tuple((str(i), display_name(h.layer), h.layer.op_type, cost_text(h.value))
                     for i, h in enumerate(hot, 1))
        total = getattr(report.totals, f"{by}_formula", None)
        lead = leading_term(total if isinstance(total, Poly) else hot[0].value)
        note = (f"Ranked by leading term (highest total degree, then coefficient): {label} grow as {lead}; "
                f"--dim values (or analyze --sweep) give numbers and shares.")
        return Section(f"Top {len(hot)} layers by {label}, ranked by leading term", ("#", "layer", "op", label),
                       rows, NUMERIC | {"#"}, note=note)
    rows = tuple((str(i), display_name(h.layer), h.layer.op_type, _value(h.value, by), f"{100 * h.share:.1f}%",
                  f"{100 * h.cumulative:.1f}%") for i, h in enumerate(hot, 1))
    where = ""
    if at and any(isinstance(cost(x, by), Poly) for x in report.top_layers):
        where = " at " + ", ".join(f"{n}={v}" for n, v in at.items())
    title = f"Top {len(hot)} layers by {label}{where} ({100 * hot[-1].cumulative:.0f}% of all {label})"
    return Section(title, ("#", "layer", "op", label, "share", "cum."), rows, NUMERIC | {"#"})


def _rollup_macs(r) -> str:
    if r.macs_formula is not None:
        return cost_text(r.macs_formula)
    return si(r.macs) if r.macs else ""


def _rollup_flops(r) -> str:
    if r.flops_formula is not None:
        return cost_text(r.flops_formula)
    return si(r.flops) if r.flops else ""


def _block_name(r) -> str:
    return f"{r.key} (x{r.repeats} identical)" if r.repeats > 1 else r.key


def _without(section: Section, column: str) -> Section:
    """``section`` without one of its columns."""
    i = section.header.index(column)
    return replace(section, header=section.header[:i] + section.header[i + 1:],
                   rows=tuple(row[:i] + row[i + 1:] for row in section.rows))


def _shares(report: Report, section: Section) -> Section:
    """No share column when the total is a polynomial: a share of it depends on the dims."""
    return section if report.totals.macs_formula is None else _without(section, "share")


def _with_estimate(section: Section, keys: Sequence[str], shares) -> Section:
    """``section`` with ``est. ms`` and ``est. share`` columns for the roll-up rows ``keys``
    (``shares``: :class:`~onnxscore.device.EstimateShare` rows)."""
    from onnxscore.render.timing import EST_MS, EST_SHARE, share_cells

    by_key = {r.key: r for r in shares}
    cells = [share_cells(by_key, k) for k in keys]
    section = _with_column(section, EST_MS, [c[0] for c in cells], section.header[-1])
    return _with_column(section, EST_SHARE, [c[1] for c in cells], EST_MS)


def scope_section(report: Report, depth: int = 1, est=None, max_rows: int = MAX_ROWS) -> Optional[Section]:
    """Blocks at ``depth`` in graph order (the first ``max_rows``), with their share of MACs;
    repeats marked (with ``est``, the estimated time of each block and its share of the
    estimate)."""
    every = report.by_scope(depth)
    if len(every) <= 1:
        return None
    rows, note = first_rows(every, max_rows, "blocks")
    total = report.totals.macs
    body = tuple((_block_name(r), str(r.count), f"{r.params:,}" if r.params else "", _rollup_macs(r),
                  percent(r.macs, total) if r.macs_formula is None else "",
                  _rollup_flops(r), binary_bytes(r.activation_bytes))
                 for r in rows)
    section = _shares(report, Section(f"Blocks at depth {depth} ({len(every)})",
                                      ("block", "layers", "params", "MACs", "share", "FLOPs", "act. bytes"),
                                      body, NUMERIC, note=note))
    if est is None:
        return section
    # the estimate, which counts the bytes moved, takes the place of the activation bytes (80 columns)
    return _with_estimate(_without(section, "act. bytes"), [r.key for r in rows], est.by_scope(depth))


def op_type_section(report: Report, est=None) -> Section:
    """Count, params, MACs and FLOPs per op type, costliest first (with ``est``, the estimated
    time of each op type and its share of the estimate)."""
    total = report.totals.macs
    ops = report.by_op_type()
    body = tuple((r.key, str(r.count), f"{r.params:,}" if r.params else "", _rollup_macs(r),
                  percent(r.macs, total) if r.macs_formula is None else "", _rollup_flops(r))
                 for r in ops)
    section = _shares(report, Section("Op types", ("op", "count", "params", "MACs", "share", "FLOPs"), body,
                                      NUMERIC))
    return section if est is None else _with_estimate(section, [r.key for r in ops], est.by_op_type())


def layer_section(report: Report, all_layers: bool = False, est=None, max_rows: int = MAX_ROWS) -> Section:
    """Every layer in graph order (zero-cost ones only with ``all_layers``; the first
    ``max_rows``; with ``est``, each layer's estimated time in place of its FLOP/B)."""
    shown, hidden = visible_layers(report, all_layers)
    shown, note = first_rows(shown, max_rows, "layers" if all_layers or not hidden else "layers with a cost")
    title = f"All layers ({len(report.layers)}" + (
        f"; {hidden} zero-cost hidden, --all-layers shows them)" if hidden else ")")
    rows = tuple((display_name(x), x.op_type, shape_cell(x.output_shapes[0]) if x.output_shapes else "",
                  si(x.params) if x.params else "", cost_cell(x.macs, x.status, x.macs_formula),
                  cost_cell(x.flops, x.status, x.flops_formula),
                  "" if x.intensity is None else f"{x.intensity:.2g}") for x in shown)
    section = Section(title, ("layer", "op", "output", "params", "MACs", "FLOPs", "FLOP/B"), rows, NUMERIC,
                      fold=True, note=note)
    if est is None:
        return section
    from onnxscore.render.timing import EST_MS, est_cell, layer_estimates

    per_layer = layer_estimates(est)
    # the estimate takes the place of the arithmetic intensity that decides its bound (80 columns)
    return _with_column(_without(section, "FLOP/B"), EST_MS, [est_cell(per_layer.get(x.name)) for x in shown],
                        "FLOPs")


def sweep_section(rows) -> Optional[Section]:
    """Costs at each swept value (exact integers from the polynomials)."""
    if not rows:
        return None
    names = list(rows[0].values)
    phase = any(r.phase for r in rows)
    header = tuple(names) + (("phase",) if phase else ()) + ("MACs", "FLOPs")
    body = tuple(tuple(str(r.values[n]) for n in names) + ((r.phase,) if phase else ())
                 + (f"{si(r.macs)} ({r.macs:,})", si(r.flops)) for r in rows)
    return Section(f"Costs over {', '.join(names)}", header, body, NUMERIC | set(names))


def report_sections(report: Report, top: int = 10, depth: int = 1, layers: bool = True,
                    all_layers: bool = False, sweep_rows=None, est=None, meas=None,
                    max_rows: int = MAX_ROWS) -> List[Section]:
    """The tables of an ``analyze`` report, in reading order; ``est`` (an
    :class:`~onnxscore.device.Estimate`) adds estimated-time columns and the top layers by
    estimated time, ``meas`` (a :class:`~onnxscore.measure.Measurement`) the measured time per
    layer and where MACs mislead. Tables of layers and blocks show their first ``max_rows``
    rows (0: all)."""
    at = max(sweep_rows, key=lambda r: r.macs).values if sweep_rows else None  # the costliest point
    sections = [sweep_section(sweep_rows), hotspot_section(report, top, "macs", at, est)]
    if est is not None:
        sections.append(hotspot_section(report, top, "est", est=est))
    sections += [scope_section(report, depth, est, max_rows), op_type_section(report, est)]
    if layers:
        sections.append(layer_section(report, all_layers, est, max_rows))
    if meas is not None:
        from onnxscore.render.timing import measurement_sections

        sections += measurement_sections(report, meas, top, layers, max_rows)
    return [s for s in sections if s is not None]


def visible_layers(report: Report, all_layers: bool = False):
    """The layers a human table shows (zero-cost ones only with ``all_layers``), and how many
    were hidden."""
    if all_layers:
        return report.layers, 0
    shown = tuple(layer for layer in report.layers if layer.status != ZERO)
    return shown, len(report.layers) - len(shown)


def explain_lines(report: Report) -> List[str]:
    """Where each unknown cost comes from: the place its shape was lost, why, the layers it
    leaves unknown and the tensors in between."""
    lines = []
    for c in report.unknown_causes:
        shown = ", ".join(c.layers[:3]) + (f", ... ({len(c.layers)})" if len(c.layers) > 3 else "")
        lines.append(f"unknown: {c.node} ({c.op}): {c.why}; leaves {len(c.layers)} layer(s) "
                     f"unknown: {shown}")
        if c.chain:
            lines.append("  through " + " <- ".join(c.chain))
    return lines


def data_dim_lines(data_dims) -> List[str]:
    """The sizes only data decides, one line per kind (a detector has hundreds of them)."""
    kinds: dict = {}
    for name, what in data_dims.items():
        kinds.setdefault(name.split("@", 1)[0], (what, []))[1].append(name)
    lines = []
    for kind, (what, names) in kinds.items():
        shown = ", ".join(names[:2]) + (f", ... ({len(names)})" if len(names) > 2 else "")
        lines.append(f"data-dependent: {shown}: {what}; costs after them are formulas in them, "
                     f"--dim {names[0]}=N gives numbers")
    return lines


def footer_lines(report: Report, explain: bool = False) -> List[str]:
    """Notes, unknowns and warnings, one line each (``explain``: the chain of every lost shape)."""
    lines = [f"note: {n}" for n in report.notes]
    if report.totals.macs_formula is not None:
        lines.append("Costs are polynomials in the symbolic dims: exact for every value.")
    elif not report.totals.complete:
        lines.append("In the tables: ? = cost unknown, n/a = no cost rule for the op; totals are lower bounds.")
    named = {d: v for d, v in report.unresolved_dims.items() if d not in report.data_dims}
    status = {layer.name: layer.status for layer in report.layers}
    for dim, names in named.items():  # a formula is known, only a number is missing
        exact = [n for n in names if status.get(n) == SYMBOLIC]
        unknown = [n for n in names if status.get(n) != SYMBOLIC]
        if exact:
            lines.append(f"formula: {len(exact)} layer(s) cost a polynomial in {dim} "
                         f"(--dim {dim}=N for numbers; e.g. {exact[0]})")
        if unknown:
            lines.append(f"unknown: {len(unknown)} layer(s) need {dim} (e.g. {unknown[0]})")
    by_data = {d: v for d, v in report.unresolved_dims.items() if d in report.data_dims}
    if by_data:  # one line for all, however many a detector has
        layers = {name for names in by_data.values() for name in names}
        kinds: dict = {}
        for d in by_data:
            kinds[d.split("@", 1)[0]] = kinds.get(d.split("@", 1)[0], 0) + 1
        lines.append(f"unknown: {len(layers)} layer(s) need sizes only data decides ("
                     + ", ".join(f"{n} {k}@" for k, n in kinds.items()) + "): a formula where "
                     "they are polynomial, else set them with --dim")
    lines += data_dim_lines(report.data_dims)
    lines += [f"warning: {w}" for w in report.warnings]
    if explain:
        lines += explain_lines(report)
    return lines
