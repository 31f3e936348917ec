"""The three charts of a report, as data (shared with the HTML page) and as one PNG figure.

The chart data are read straight from the :class:`~onnxscore.report.Report`: hotspots,
the scope roll-up and the per-layer costs in graph order; with a latency estimate or a
measurement, the time charts beside them read those. matplotlib is optional and only
imported by :func:`to_png` and :func:`figure`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from onnxscore.errors import UsageError
from onnxscore.render.timing import measured_top, ms
from onnxscore.render.units import si
from onnxscore.report import ZERO, Hotspot, LayerCost, Report, scope_key

MACS_COLOR = "#3768c7"
PARAMS_COLOR = "#e08a2e"
CUMULATIVE_COLOR = "#3a4250"
UNKNOWN_COLOR = "#c93c37"
BAND_COLOR = "#eef1f5"
TIME_COLOR = "#2f9e6e"  # time, estimated or measured, beside MACS_COLOR


@dataclass(frozen=True)
class DepthPoint:
    """One layer that does work, at ``position`` among them in graph order; ``cumulative`` is
    the MACs of it and every layer before it (unknown costs count as nothing)."""

    position: int
    layer: LayerCost
    block: str
    cumulative: int


def top_bars(report: Report, top: int = 10) -> Tuple[Hotspot, ...]:
    """The bars of the top-layers chart: the ``top`` costliest layers by MACs (a bar needs a
    number: layers whose MACs are polynomials are left out)."""
    return report.hotspots(top, "macs", numbers=True)


@dataclass(frozen=True)
class BlockBar:
    """One row of the per-block chart: a scope block, a run of identical blocks drawn as one
    (``kind`` "repeated", ``label`` their pattern such as ``layers.N``), or the blocks left
    over when there are too many to draw (``kind`` "other"). Sums of the Rollup rows."""

    label: str
    macs: int
    params: int
    blocks: int
    kind: str = "block"


MAX_BANDS = 40  # block bands behind the depth chart; more would only be stripes
BLOCK_LIMIT = 24  # rows the per-block chart draws at most; the table lists every block


def block_bars(report: Report, depth: int = 1, limit: int = BLOCK_LIMIT) -> Tuple[BlockBar, ...]:
    """The rows of the per-block chart, in graph order: scope blocks at ``depth`` with MACs or
    parameters (others would draw empty), identical repeated blocks as one bar, and past
    ``limit`` rows the lightest blocks summed into one last "other" bar."""
    bars: list = []
    where = {}
    for r in report.by_scope(depth):
        if not (r.macs or r.params):
            continue
        if r.repeats > 1 and r.pattern in where:
            i = where[r.pattern]
            b = bars[i]
            bars[i] = BlockBar(b.label, b.macs + r.macs, b.params + r.params, b.blocks + 1, "repeated")
            continue
        if r.repeats > 1:
            where[r.pattern] = len(bars)
            bars.append(BlockBar(r.pattern, r.macs, r.params, 1, "repeated"))
        else:
            bars.append(BlockBar(r.key, r.macs, r.params, 1))
    if len(bars) <= limit:
        return tuple(bars)
    t = report.totals

    def weight(b):
        return max(b.macs / t.macs if t.macs else 0, b.params / t.params if t.params else 0)

    keep = set(sorted(range(len(bars)), key=lambda i: weight(bars[i]), reverse=True)[:limit - 1])
    rest = [b for i, b in enumerate(bars) if i not in keep]
    other = BlockBar(f"{sum(b.blocks for b in rest)} other blocks", sum(b.macs for b in rest),
                     sum(b.params for b in rest), sum(b.blocks for b in rest), "other")
    return tuple(b for i, b in enumerate(bars) if i in keep) + (other,)


def depth_series(report: Report, depth: int = 1) -> Tuple[DepthPoint, ...]:
    """Top-level layers that do work (zero-cost nodes such as weight makers are skipped), in
    graph order, with their block at ``depth`` and the running sum of MACs."""
    points, running = [], 0
    for layer in report.top_layers:
        if layer.status == ZERO:
            continue
        running += layer.macs or 0
        points.append(DepthPoint(len(points), layer, scope_key(layer.scope, depth), running))
    return tuple(points)


def block_runs(points: Sequence[DepthPoint]) -> Tuple[Tuple[str, int, int], ...]:
    """Contiguous runs of one block along the depth axis: ``(block, first, last)`` positions."""
    runs = []
    for p in points:
        if runs and runs[-1][0] == p.block:
            runs[-1][2] = p.position
        else:
            runs.append([p.block, p.position, p.position])
    return tuple(tuple(r) for r in runs)


def short(text: str, limit: int) -> str:
    """Keep the end of a long name (the distinctive part of a scoped name): '…ch2b_1'."""
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def bar_label(layer: LayerCost, limit: int = 28) -> str:
    """'name · OpType', the name shortened to fit."""
    return f"{short(layer.name, limit)} · {layer.op_type}"


def bar_name(bar: BlockBar, limit: int) -> str:
    """'stem', 'layers.N ×24' (identical blocks drawn as one), '43 other blocks'."""
    suffix = f" ×{bar.blocks}" if bar.kind == "repeated" else ""
    return short(bar.label, limit - len(suffix)) + suffix


def scope_hint(layer: LayerCost) -> str:
    """The layer's scope when it says more than its name ('' otherwise)."""
    return layer.scope if layer.scope and layer.scope not in (layer.name, f"/{layer.name}") else ""


@dataclass(frozen=True)
class OpTypeShare:
    """One op type: its share of the estimated time beside its share of the model's MACs
    (fractions of 1; None when the MACs of every layer of the type are unknown)."""

    op_type: str
    time: float
    macs: Optional[float]


def op_type_shares(report: Report, est, limit: int = 10) -> Tuple[OpTypeShare, ...]:
    """The ``limit`` op types with the longest estimated time (``est``, an
    :class:`~onnxscore.device.Estimate` of ``report``), longest first: where the count and the
    clock disagree (a LayerNorm's share of the time far above its share of MACs)."""
    macs = {r.key: None if r.unknown == r.count else r.macs for r in report.by_op_type()}
    total = report.totals.macs

    def share(op_type: str) -> Optional[float]:
        m = macs.get(op_type, 0)
        return None if m is None else (m / total if total else 0.0)

    return tuple(OpTypeShare(r.key, r.share, share(r.key)) for r in est.by_op_type() if r.seconds)[:limit]


def time_label(name: str, op_type: str, limit: int = 24) -> str:
    """'name · OpType' of a timed layer, the name shortened to fit."""
    return f"{short(name, limit)} · {op_type}"


def model_name(report: Report) -> str:
    path = report.model.path.replace("\\", "/")
    return path.rsplit("/", 1)[-1] or path


STYLE = {"font.size": 9, "axes.titlesize": 10.5, "axes.titleweight": "bold",
         "axes.labelsize": 9, "axes.spines.top": False, "axes.spines.right": False,
         "axes.edgecolor": "#9aa3ad", "axes.labelcolor": "#30363d", "xtick.color": "#57606a",
         "ytick.color": "#30363d", "grid.color": "#e3e7ec", "grid.linewidth": 0.8}


def to_png(reports: Sequence[Report], path: str, depth: int = 1, top: int = 10,
           estimates: Optional[Sequence] = None, measurements: Optional[Sequence] = None) -> None:
    """Write the top-layers, per-block and along-depth charts of each report to ``path``
    as one PNG: a row of three panels per model. ``estimates`` (an
    :class:`~onnxscore.device.Estimate` or None per report) add a row below it: the top layers
    by estimated time and each op type's share of the estimate beside its share of MACs;
    ``measurements`` (a :class:`~onnxscore.measure.Measurement` or None per report) another:
    the top layers by measured time and where MACs mislead (share of time above share of MACs)."""
    plt = _pyplot()
    with plt.rc_context(STYLE):
        fig = _draw(plt, reports, depth, top, estimates, measurements)
        fig.savefig(path, dpi=110, facecolor="white")
        plt.close(fig)


def figure(reports: Sequence[Report], depth: int = 1, top: int = 10, estimates: Optional[Sequence] = None,
           measurements: Optional[Sequence] = None):
    """The matplotlib Figure :func:`to_png` writes (the caller closes it: ``plt.close(fig)``)."""
    plt = _pyplot()
    with plt.rc_context(STYLE):
        return _draw(plt, reports, depth, top, estimates, measurements)


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise UsageError("--plot needs matplotlib: pip install matplotlib") from e
    return plt


def _draw(plt, reports, depth, top, estimates, measurements):
    """One row of three panels per report, then a row for its estimate and one for its
    measurement when given: the top layers in the first column, the shares across the other two."""
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    rows = []  # (kind, report, timing, slots)
    for i, r in enumerate(reports):
        rows.append(("counts", r, None, max(len(top_bars(r, top)), len(block_bars(r, depth)), 6)))
        est = estimates[i] if estimates else None
        meas = measurements[i] if measurements else None
        if est is not None:
            rows.append(("est", r, est, max(len(est.top(top)), len(op_type_shares(r, est, top)), 6)))
        if meas is not None:
            rows.append(("meas", r, meas, max(len(measured_top(meas, top)), len(meas.mislead[:top]), 6)))
    if not rows:
        rows.append(("none", None, None, 6))
    heights = [0.42 * n + 1.6 for *_, n in rows]
    fig = plt.figure(figsize=(19, sum(heights) + 0.5 * len(rows)))
    grid = fig.add_gridspec(len(rows), 3, width_ratios=[1.05, 1.0, 1.45], height_ratios=heights)
    for k, (kind, report, timing, n) in enumerate(rows):
        if kind in ("counts", "none"):
            ax_top, ax_blocks, ax_depth = (fig.add_subplot(grid[k, c]) for c in range(3))
            if report is None:
                continue
            _plot_top(ax_top, report, top, n, FuncFormatter)
            _plot_blocks(ax_blocks, report, depth, n, PercentFormatter)
            _plot_depth(ax_depth, report, depth, FuncFormatter, PercentFormatter)
            if len(reports) > 1:
                ax_top.annotate(model_name(report), xy=(0, 1), xycoords="axes fraction",
                                xytext=(0, 26), textcoords="offset points", fontsize=12,
                                fontweight="bold", ha="left", va="bottom")
            continue
        ax_left, ax_right = fig.add_subplot(grid[k, 0]), fig.add_subplot(grid[k, 1:])
        if kind == "est":
            _plot_est_top(ax_left, timing, top, n)
            shares = op_type_shares(report, timing, top)
            _plot_pairs(ax_right, [(r.op_type, r.time, r.macs, "") for r in shares], n, PercentFormatter,
                        f"Share of the estimated time on {timing.device.name} vs share of MACs, per op type",
                        "share of the estimated time", "no op type has an estimated time")
        else:
            _plot_measured_top(ax_left, timing, top, n)
            rho = "n/a" if timing.spearman is None else f"{timing.spearman:.2f}"
            _plot_pairs(ax_right, [(time_label(x.name, x.op_type, 40), x.share, x.mac_share,
                                    f"+{100 * (x.share - x.mac_share):.1f} pts")
                                   for x in timing.mislead[:top]], n, PercentFormatter,
                        f"Where MACs mislead: share of measured time above share of MACs (Spearman {rho})",
                        "share of the measured time", "no layer takes more of the time than of the MACs")
    fig.tight_layout(h_pad=3.0, w_pad=2.5)
    return fig


def _si_axis(value, _pos=None) -> str:
    return si(int(value)) if value else "0"


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#57606a")
    ax.set_xticks([])
    ax.set_yticks([])


def _plot_top(ax, report: Report, top: int, slots: int, FuncFormatter) -> None:
    """Horizontal bars from the top, one of ``slots`` rows each (so bar heights match the
    neighbouring block chart)."""
    hot = top_bars(report, top)
    ax.set_title(f"Top {len(hot)} layers by MACs" if hot else "Top layers by MACs", loc="left")
    if not hot:
        _empty(ax, "no layer has MACs")
        return
    y = range(len(hot))
    ax.barh(y, [h.value for h in hot], color=MACS_COLOR, height=0.68, zorder=2)
    labels = [bar_label(h.layer, 24) + (f"\n{short(scope_hint(h.layer), 30)}" if scope_hint(h.layer) else "")
              for h in hot]
    ax.set_yticks(list(y), labels, linespacing=1.25)
    ax.set_ylim(slots - 0.5, -0.5)
    ax.xaxis.set_major_formatter(FuncFormatter(_si_axis))
    ax.set_xlabel("MACs per layer (multiply-adds)")
    ax.grid(axis="x", zorder=0)
    ax.tick_params(axis="y", length=0)
    biggest = hot[0].value
    for i, h in enumerate(hot):
        ax.text(h.value + biggest * 0.015, i, f"{si(h.value)}  {100 * h.share:.1f}%",
                va="center", fontsize=8, color="#30363d")
    ax.set_xlim(0, biggest * 1.3)


def _plot_blocks(ax, report: Report, depth: int, slots: int, PercentFormatter) -> None:
    rows = block_bars(report, depth)
    ax.set_title(f"Share per block (scope depth {depth})", loc="left")
    t = report.totals
    if not rows or not (t.macs or t.params):
        _empty(ax, "no block has MACs or parameters")
        return
    y = list(range(len(rows)))
    macs = [100 * r.macs / t.macs if t.macs else 0 for r in rows]
    params = [100 * r.params / t.params if t.params else 0 for r in rows]
    ax.barh([i - 0.19 for i in y], macs, height=0.36, color=MACS_COLOR, label="MACs", zorder=2)
    ax.barh([i + 0.19 for i in y], params, height=0.36, color=PARAMS_COLOR, label="parameters",
            zorder=2)
    for i, (m, p) in enumerate(zip(macs, params)):
        for dy, v in ((-0.19, m), (0.19, p)):
            ax.text(v + 0.6, i + dy, f"{v:.1f}%", va="center", fontsize=7.5, color="#30363d")
    ax.set_yticks(y, [bar_name(r, 22) for r in rows])
    for tick, r in zip(ax.get_yticklabels(), rows):
        if r.kind == "other":
            tick.set_color("#57606a")
            tick.set_fontstyle("italic")
    ax.set_ylim(slots - 0.5, -0.5)
    ax.xaxis.set_major_formatter(PercentFormatter(decimals=0))
    ax.set_xlabel("share of the model total (%)")
    ax.set_xlim(0, min(100, max(macs + params) * 1.15 + 1) + 4)
    ax.grid(axis="x", zorder=0)
    ax.tick_params(axis="y", length=0)
    ax.legend(loc="best", frameon=False, fontsize=8.5)


def _plot_depth(ax, report: Report, depth: int, FuncFormatter, PercentFormatter) -> None:
    points = depth_series(report, depth)
    ax.set_title("MACs along the depth of the network", loc="left")
    if not points:
        _empty(ax, "no layer does any work")
        return
    x = [p.position + 1 for p in points]  # 1-based, as the HTML chart
    macs = [p.layer.macs or 0 for p in points]
    peak = max(macs) or 1
    runs = block_runs(points)
    if 1 < len(runs) <= MAX_BANDS:
        for i, (block, first, last) in enumerate(runs):
            if i % 2 == 0:
                ax.axvspan(first + 0.5, last + 1.5, color=BAND_COLOR, zorder=0, lw=0)
            if (last - first + 1) / len(points) > 0.045:
                ax.text((first + last) / 2 + 1, 0.985, short(block, 14), transform=ax.get_xaxis_transform(),
                        ha="center", va="top", fontsize=8, color="#57606a")
    ax.bar(x, macs, width=0.85, color=MACS_COLOR, zorder=2)
    unknown = [p.position + 1 for p in points if p.layer.macs is None]
    if unknown:
        ax.plot(unknown, [0] * len(unknown), "^", color=UNKNOWN_COLOR, ms=5, zorder=3,
                clip_on=False, label="cost unknown")
    ax.set_xlim(0.5, len(points) + 0.5)
    ax.set_ylim(0, peak * 1.12)
    ax.yaxis.set_major_formatter(FuncFormatter(_si_axis))
    ax.set_ylabel("MACs per layer (bars)", color=MACS_COLOR)
    ax.set_xlabel(f"layer position in graph order ({len(points)} layers that do work)")
    ax.grid(axis="y", zorder=1)
    total = report.totals.macs
    if total:
        cum = ax.twinx()
        cum.plot(x, [100 * p.cumulative / total for p in points], color=CUMULATIVE_COLOR, lw=1.6)
        cum.set_ylim(0, 112)
        cum.yaxis.set_major_formatter(PercentFormatter(decimals=0))
        cum.set_ylabel("cumulative share of MACs (line, %)", color=CUMULATIVE_COLOR)
        cum.spines["top"].set_visible(False)
        cum.spines["right"].set_visible(True)
    if unknown:
        ax.legend(loc="upper left", frameon=False, fontsize=8.5, bbox_to_anchor=(0, 0.93))


def _bar_values(ax, values, labels, texts, slots: int, colors) -> None:
    """Horizontal bars from the top, one of ``slots`` rows each, ``texts`` right of them."""
    y = range(len(values))
    ax.barh(y, values, color=colors, height=0.68, zorder=2)
    ax.set_yticks(list(y), labels)
    ax.set_ylim(slots - 0.5, -0.5)
    ax.grid(axis="x", zorder=0)
    ax.tick_params(axis="y", length=0)
    biggest = max(values) or 1
    for i, (v, text) in enumerate(zip(values, texts)):
        ax.text(v + biggest * 0.015, i, text, va="center", fontsize=8, color="#30363d")
    ax.set_xlim(0, biggest * 1.5)


def _plot_est_top(ax, est, top: int, slots: int) -> None:
    """The layers with the longest estimated time, coloured by their bound (as the HTML chart)."""
    bars = est.top(top)
    name = est.device.name
    ax.set_title(f"Top {len(bars)} layers by estimated time on {name}" if bars
                 else f"Top layers by estimated time on {name}", loc="left")
    if not bars:
        _empty(ax, "no layer has an estimated time")
        return
    _bar_values(ax, [x.seconds * 1e3 for x in bars], [time_label(x.name, x.op_type) for x in bars],
                [f"{ms(x.seconds)} ms  {100 * x.seconds / est.seconds:.1f}%" for x in bars], slots,
                [MACS_COLOR if x.bound == "compute" else PARAMS_COLOR for x in bars])
    lower = "" if est.complete else "≥ "
    ax.set_xlabel(f"estimated ms per layer ({lower}{ms(est.seconds)} ms in all)\n"
                  "blue: compute-bound, orange: memory-bound")


def _plot_measured_top(ax, m, top: int, slots: int) -> None:
    """The layers with the longest measured time and their share of the layers' time."""
    bars = measured_top(m, top)
    ax.set_title(f"Top {len(bars)} layers by measured time (onnxruntime)" if bars
                 else "Top layers by measured time (onnxruntime)", loc="left")
    if not bars:
        _empty(ax, "no layer was timed")
        return
    _bar_values(ax, [x.seconds * 1e3 for x in bars], [time_label(x.name, x.op_type) for x in bars],
                [f"{ms(x.seconds)} ms  {100 * x.share:.1f}%" for x in bars], slots, TIME_COLOR)
    ax.set_xlabel(f"measured ms per layer (optimizations off)\nend-to-end p50 {ms(m.optimized.p50)} ms, "
                  f"{m.threads} thread(s)")


def _plot_pairs(ax, rows, slots: int, PercentFormatter, title: str, time_name: str, empty: str) -> None:
    """Paired bars per row ``(label, time share, MAC share, note)``: time above, MACs below (a
    MAC share of None is unknown: no bar, '?')."""
    ax.set_title(title, loc="left")
    if not rows:
        _empty(ax, empty)
        return
    y = list(range(len(rows)))
    time = [100 * r[1] for r in rows]
    macs = [None if r[2] is None else 100 * r[2] for r in rows]
    ax.barh([i - 0.19 for i in y], time, height=0.36, color=TIME_COLOR, label=time_name, zorder=2)
    ax.barh([i + 0.19 for i in y], [m or 0 for m in macs], height=0.36, color=MACS_COLOR, label="share of MACs",
            zorder=2)
    right = min(115.0, max(time + [m or 0 for m in macs]) * 1.4) or 1.0  # room for the values right of the bars
    for i, (t, m, r) in enumerate(zip(time, macs, rows)):
        ax.text(t + right * 0.006, i - 0.19, f"{t:.1f}%" + (f"  {r[3]}" if r[3] else ""), va="center",
                fontsize=7.5, color="#30363d")
        ax.text((m or 0) + right * 0.006, i + 0.19, "?" if m is None else f"{m:.1f}%", va="center", fontsize=7.5,
                color="#30363d")
    ax.set_yticks(y, [r[0] for r in rows])
    ax.set_ylim(slots - 0.5, -0.5)
    ax.xaxis.set_major_formatter(PercentFormatter(decimals=0))
    ax.set_xlabel("share of the model total (%)")
    ax.set_xlim(0, right)
    ax.grid(axis="x", zorder=0)
    ax.tick_params(axis="y", length=0)
    ax.legend(loc="lower right", frameon=False, fontsize=8.5)
