"""The figures of a study (``onnxscore rank --html FILE --plot FILE.png``): one page, one PNG.

Both read the JSON form of a study (``Study.to_dict()``, schema ``onnxscore.study/1``) and draw
the same four figures (five with a device or measured latencies, six with both), whose data come
from :func:`figures`:

1. top-1 against MACs (log x), with the Pareto front of top-1 against MACs as a step line;
2. NetScore against top-1;
3. information density against top-1;
4. top-1 against p·m (parameters in millions × MACs in billions), both axes logarithmic. With
   β = γ, Ω = 20·α·log10(a) − 20·β·log10(p·m), so the models of NetScore Ω lie on the straight
   line ``log10(a) = (Ω + 20·β·log10(p·m)) / (20·α)`` (the paper's α = 2, β = γ = 0.5:
   ``a = 10^((Ω + 10·log10(p·m)) / 40)``, i.e. ``p·m = a⁴ / 10^(Ω/10)``); lines are drawn for
   round values of Ω spanning the data (:func:`iso_netscore`). When β ≠ γ NetScore is not a
   function of p·m and no line is drawn; the caption says so.
5. only when the study has a device (``rank --device``): top-1 against the estimated latency on
   it (log x), with the Pareto front of top-1 against that latency as a step line.
6. only when the models were measured (``rank --measure``): top-1 against the p50 latency
   measured with onnxruntime (log x), with the Pareto front of top-1 against it as a step line.
   With both a device and measurements, both latency figures are drawn, side by side: the
   estimate is the profile's, the measurement this machine's, and their disagreement is news.

Bubble area is proportional to parameters. A model without an accuracy, or whose analysis
failed, stays in the leaderboard and out of the figures that need it; every caption counts
them. Only the models on a Pareto front and the first and last few by the study's measure are
labelled (labels nudged vertically so they do not overlap, dropped when no room is left); every
point of the page shows its figures on hover.

The page reuses the report page's CSS, sorting script, table and SVG helpers
(:mod:`onnxscore.render.html`); matplotlib is optional and only imported by :func:`plot_png`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from html import escape
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from onnxscore import __version__
from onnxscore.errors import UsageError
from onnxscore.render.html import CSS, JS, _svg, _table, _text, _x_axis, nice_ticks
from onnxscore.render.plot import CUMULATIVE_COLOR, MACS_COLOR, PARAMS_COLOR
from onnxscore.render.study import (CORRELATION_NOTE, LABEL, ORDER, PAIR_LABEL, correlation_title, est_ms,
                                    measure_line, measured_ms, notes, title)
from onnxscore.render.units import binary_bytes, si

FIGURE_IDS = ("fig-top1-macs", "fig-netscore-top1", "fig-density-top1", "fig-top1-pm")
LATENCY_FIGURE_ID = "fig-top1-latency"  # the fifth, when the study has a device
MEASURED_FIGURE_ID = "fig-top1-measured"  # then this one, when the models were measured
LABEL_FIRST, LABEL_LAST = 3, 3  # models labelled from each end of the study's order (besides the fronts)
NAME_CHARS = 22  # a label longer than this is cut ('mobilenet_v3_large_…'); the hover has it whole
ISO_COLOR = "#8c959f"


# ---------------------------------------------------------------------------------------------
# The figures as data (shared by the page and the PNG)


@dataclass(frozen=True)
class Axis:
    """One axis: its range, scale and round tick values (``fmt`` writes a tick)."""

    label: str
    lo: float
    hi: float
    log: bool
    ticks: Tuple[float, ...]
    fmt: Callable[[float], str]


@dataclass(frozen=True)
class Point:
    """One model in a figure: ``row`` is its index in the study's rows; ``front`` says it is on
    the Pareto front the figure highlights."""

    row: int
    model: str
    x: float
    y: float
    params: Optional[int]
    front: bool


@dataclass(frozen=True)
class IsoLine:
    """The part of the line of NetScore ``omega`` inside the axes: from ``start`` to ``end``,
    each a (p·m, top-1) pair."""

    omega: float
    start: Tuple[float, float]
    end: Tuple[float, float]


@dataclass(frozen=True)
class Figure:
    """One of the four figures: its axes, points, what was left out and why, the labels to
    draw (rows, in the order they claim room), the Pareto step line and equal-NetScore lines."""

    id: str
    title: str
    x: Axis
    y: Axis
    points: Tuple[Point, ...]
    total: int
    left_out: Tuple[Tuple[str, int], ...]
    front: str
    labels: Tuple[int, ...]
    step: Tuple[Tuple[float, float], ...] = ()
    lines: Tuple[IsoLine, ...] = ()
    note: str = ""

    def caption(self) -> str:
        """'5 of 7 models drawn; left out: 1 without an accuracy, 1 failed.' and the note."""
        text = f"{len(self.points)} of {self.total} model(s) drawn"
        if self.left_out:
            text += "; left out: " + ", ".join(f"{n} {why}" for why, n in self.left_out)
        return text + "." + (f" {self.note}" if self.note else "")


def _data(study) -> Dict[str, Any]:
    return study.to_dict() if hasattr(study, "to_dict") else study


def _fmt_num(v: float) -> str:
    return f"{v:g}"


def _fmt_count(v: float) -> str:
    return si(int(round(v))) if v >= 1 else f"{v:g}"


def _fmt_thousands(v: float) -> str:
    """A tick on a log axis of p·m or milliseconds: grouped digits from 1,000 up."""
    return f"{v:,.0f}" if v >= 1000 else f"{v:g}"


def _snap_down(v: float) -> float:
    """The largest of 1, 2, 5 × 10^k not above ``v`` (> 0)."""
    k = math.floor(math.log10(v) + 1e-9)
    if 10.0 ** k > v * (1 + 1e-9):
        k -= 1
    return next(m * 10.0 ** k for m in (5, 2, 1) if m * 10.0 ** k <= v * (1 + 1e-9))


def _snap_up(v: float) -> float:
    """The smallest of 1, 2, 5 × 10^k not below ``v`` (> 0)."""
    k = math.floor(math.log10(v) + 1e-9)
    return next(m * 10.0 ** k for m in (1, 2, 5, 10) if m * 10.0 ** k >= v * (1 - 1e-9))


def log_ticks(lo: float, hi: float, most: int = 10) -> Tuple[float, ...]:
    """1, 2, 5 × 10^k between ``lo`` and ``hi``; powers of ten only when that is more than
    ``most`` ticks (and every other one, and so on, when those still are)."""
    k0, k1 = math.floor(math.log10(lo) - 1e-9), math.ceil(math.log10(hi) + 1e-9)
    within = [m * 10.0 ** k for k in range(k0, k1 + 1) for m in (1, 2, 5)
              if lo * (1 - 1e-9) <= m * 10.0 ** k <= hi * (1 + 1e-9)]
    if len(within) <= most:
        return tuple(within)
    decades = [10.0 ** k for k in range(k0, k1 + 1) if lo * (1 - 1e-9) <= 10.0 ** k <= hi * (1 + 1e-9)]
    every = math.ceil(len(decades) / most)
    return tuple(decades[::every])


def linear_axis(label: str, values: Sequence[float], fmt: Callable[[float], str] = _fmt_num) -> Axis:
    """The data range widened by 5% on each side (not below 0 when no value is), then out to
    round ticks (about 5)."""
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.05 or max(abs(hi) * 0.02, 0.5)
    bottom = lo - pad if lo - pad >= 0 or lo < 0 else 0.0
    ticks = nice_ticks(hi + pad, 5, bottom)
    return Axis(label, ticks[0], ticks[-1], False, tuple(ticks), fmt)


def log_axis(label: str, values: Sequence[float], fmt: Callable[[float], str] = _fmt_num) -> Axis:
    """The data range widened by a factor of 1.1 on each side; within a decade, out to round
    linear ticks (as a linear axis would); otherwise out to 1, 2 or 5 × 10^k, ticked there."""
    lo, hi = min(values) / 1.1, max(values) * 1.1
    if hi / lo < 10:
        ticks = nice_ticks(hi, 5, lo)
        if ticks[0] > 0:
            return Axis(label, ticks[0], ticks[-1], True, tuple(ticks), fmt)
    lo, hi = _snap_down(lo), _snap_up(hi)
    return Axis(label, lo, hi, True, log_ticks(lo, hi), fmt)


def iso_netscore(omega: float, alpha: float, beta: float, x_range: Tuple[float, float],
                 y_range: Tuple[float, float]) -> Optional[IsoLine]:
    """The line of NetScore ``omega`` on log-log axes of p·m (x) and top-1 (y), for β = γ:
    ``log10(a) = (Ω + 20·β·log10(p·m)) / (20·α)``, a straight line of slope β/α; clipped to
    the box ``x_range`` × ``y_range``. None when it misses the box (or α = 0: no line)."""
    if alpha == 0:
        return None
    u0, u1 = math.log10(x_range[0]), math.log10(x_range[1])
    v0, v1 = math.log10(y_range[0]), math.log10(y_range[1])
    slope, icpt = beta / alpha, omega / (20 * alpha)
    if slope == 0:
        if not v0 <= icpt <= v1:
            return None
        lo, hi = u0, u1
    else:
        a, b = sorted(((v0 - icpt) / slope, (v1 - icpt) / slope))
        lo, hi = max(u0, a), min(u1, b)
        if lo >= hi:
            return None
    return IsoLine(omega, (10 ** lo, 10 ** (slope * lo + icpt)), (10 ** hi, 10 ** (slope * hi + icpt)))


def _pm(row: Mapping[str, Any]) -> Optional[float]:
    if not row["params"] or not row["macs"]:
        return None
    return row["params"] / 1e6 * row["macs"] / 1e9


def _on_front(row: Mapping[str, Any], costs: Sequence[str]) -> bool:
    return any((row.get("pareto") or {}).get(c) for c in costs)


def _points(data: Mapping[str, Any], x_of, y_of, costs: Sequence[str], why: str):
    """The points whose x and y are both known, and what was left out: failed, without an
    accuracy, or ``why`` (the figure's own reason, e.g. no MACs on a log axis)."""
    points, failed, no_acc, other = [], 0, 0, 0
    for i, r in enumerate(data["rows"]):
        if r["error"] is not None:
            failed += 1
            continue
        if r["top1"] is None:
            no_acc += 1
            continue
        x, y = x_of(r), y_of(r)
        if x is None or y is None:
            other += 1
            continue
        points.append(Point(i, r["model"], float(x), float(y), r["params"], _on_front(r, costs)))
    left = tuple((w, n) for w, n in (("without an accuracy", no_acc), (why, other), ("failed", failed)) if n)
    return tuple(points), left


def _labels(data: Mapping[str, Any], points: Sequence[Point]) -> Tuple[int, ...]:
    """Rows to label, in the order they claim room: the first few by the study's measure, the
    models on the front (cheapest first), the last few."""
    drawn = {p.row for p in points}
    ranked = [i for i, r in enumerate(data["rows"]) if r.get("rank") is not None and i in drawn]
    front = [p.row for p in sorted(points, key=lambda p: (p.x, p.y)) if p.front]
    out: List[int] = []
    for i in ranked[:LABEL_FIRST] + front + ranked[max(0, len(ranked) - LABEL_LAST):]:
        if i not in out:
            out.append(i)
    return tuple(out)


def _step(points: Sequence[Point]) -> Tuple[Tuple[float, float], ...]:
    """The front as a staircase, cheapest first: right at the model's top-1 to the next model's
    cost, then up to its top-1 (the best top-1 reachable at each cost)."""
    front = sorted({(p.x, p.y) for p in points if p.front})
    out: List[Tuple[float, float]] = []
    for x, y in front:
        if out:
            out.append((x, out[-1][1]))
        out.append((x, y))
    return tuple(out)


def _iso_lines(data: Mapping[str, Any], points: Sequence[Point], x: Axis, y: Axis) -> Tuple[Tuple[IsoLine, ...], str]:
    alpha, beta, gamma = data["alpha"], data["beta"], data["gamma"]
    if beta != gamma:
        return (), (f"β ≠ γ (β = {beta:g}, γ = {gamma:g}): NetScore is not a function of p·m alone, "
                    "so no lines of equal NetScore are drawn.")
    if alpha == 0:
        return (), "α = 0: NetScore does not depend on top-1, so no lines of equal NetScore are drawn."
    scores = [data["rows"][p.row]["netscore"] for p in points]
    scores = [s for s in scores if s is not None]
    if not scores:
        return (), ""
    lo, hi = min(scores), max(scores)
    if hi - lo < 10:  # round values around a narrow spread (or a single model), not its own
        lo, hi = (lo + hi) / 2 - 5, (lo + hi) / 2 + 5
    levels = nice_ticks(hi, 4, lo)
    lines = tuple(line for line in (iso_netscore(o, alpha, beta, (x.lo, x.hi), (y.lo, y.hi)) for o in levels)
                  if line is not None)
    how = (f"Dashed: equal NetScore Ω (dB), where log10(top-1) = (Ω + {20 * beta:g}·log10(p·m)) / {20 * alpha:g}; "
           "straight on these log-log axes; a model above a line scores more than its Ω.")
    return lines, how


DENSITY_LOG = 30  # information density on a log axis when its largest value is this many times its smallest


def _density_axis(values: Sequence[float]) -> Axis:
    """Information density spans orders of magnitude in a zoo (SqueezeNet ~47 %/M, ViT-H ~0.14):
    on a linear axis most models would sit on the floor, so past a ratio of :data:`DENSITY_LOG`
    the axis is logarithmic (and says so)."""
    label = "information density (% top-1 per M parameters)"
    if min(values) > 0 and max(values) / min(values) >= DENSITY_LOG:
        return log_axis(label[:-1] + ", log scale)", values)
    return linear_axis(label, values)


def figures(study) -> Tuple[Figure, ...]:
    """The four figures of a study (its ``to_dict()`` form, or the Study); then top-1 against the
    estimated latency when it has a device (``data["device"]``), and top-1 against the measured
    latency when its models were measured (``data["measure"]``)."""
    data = _data(study)
    total = len(data["rows"])
    out = []

    def make(fig_id, name, x_of, y_of, costs, front, why, x_axis, y_axis, extra=None):
        points, left = _points(data, x_of, y_of, costs, why)
        if not points:
            empty = Axis("", 0.0, 1.0, False, (0.0, 1.0), _fmt_num)
            return Figure(fig_id, name, empty, empty, (), total, left, front, ())
        x = x_axis([p.x for p in points])
        y = y_axis([p.y for p in points])
        fields = extra(points, x, y) if extra else {}
        return Figure(fig_id, name, x, y, points, total, left, front, _labels(data, points), **fields)

    either = "on a Pareto front (top-1 against MACs or against parameters)"
    out.append(make(
        FIGURE_IDS[0], "Top-1 against MACs", lambda r: r["macs"] or None, lambda r: r["top1"], ("macs",),
        "on the Pareto front of top-1 against MACs", "with no MACs",
        lambda v: log_axis("MACs (multiply-adds, log scale)", v, _fmt_count),
        lambda v: linear_axis("top-1 accuracy (%)", v),
        lambda pts, x, y: {"step": _step(pts)}))
    out.append(make(
        FIGURE_IDS[1], "NetScore against top-1", lambda r: r["top1"], lambda r: r["netscore"], ("macs", "params"),
        either, "without a NetScore (no parameters or no MACs)",
        lambda v: linear_axis("top-1 accuracy (%)", v),
        lambda v: linear_axis(f"NetScore Ω (dB; α={data['alpha']:g}, β={data['beta']:g}, γ={data['gamma']:g})", v)))
    out.append(make(
        FIGURE_IDS[2], "Information density against top-1", lambda r: r["top1"], lambda r: r["info_density"],
        ("macs", "params"), either, "without an information density (no parameters)",
        lambda v: linear_axis("top-1 accuracy (%)", v), _density_axis))

    def iso(pts, x, y):
        lines, note = _iso_lines(data, pts, x, y)
        return {"lines": lines, "note": note}

    out.append(make(
        FIGURE_IDS[3], "Top-1 against p·m", _pm, lambda r: r["top1"] or None, ("macs", "params"), either,
        "with no parameters or no MACs (or a top-1 of 0)",
        lambda v: log_axis("p·m = parameters (M) × MACs (G), log scale", v, _fmt_thousands),
        lambda v: log_axis("top-1 accuracy (%, log scale)", v), iso))
    device = (data.get("device") or {}).get("name")
    if device:
        fig = make(
            LATENCY_FIGURE_ID, f"Top-1 against estimated latency on {device}",
            lambda r: r.get("est_latency_ms") or None, lambda r: r["top1"], ("est_latency",),
            "on the Pareto front of top-1 against estimated latency", "without an estimated latency",
            lambda v: log_axis(f"estimated latency on {device} (ms, log scale)", v, _fmt_thousands),
            lambda v: linear_axis("top-1 accuracy (%)", v), lambda pts, x, y: {"step": _step(pts)})
        lower = sum(1 for p in fig.points if data["rows"][p.row].get("est_latency_unknown"))
        note = "Roofline estimates from the device profile, not measurements" + (
            f"; {lower} a lower bound (layers without an estimate)." if lower else ".")
        out.append(replace(fig, note=note))
    m = data.get("measure")
    if m:
        fig = make(
            MEASURED_FIGURE_ID, "Top-1 against measured latency",
            lambda r: r.get("latency_ms") or None, lambda r: r["top1"], ("latency",),
            "on the Pareto front of top-1 against measured latency", "without a measured latency",
            lambda v: log_axis("measured latency, p50 (ms, log scale)", v, _fmt_thousands),
            lambda v: linear_axis("top-1 accuracy (%)", v), lambda pts, x, y: {"step": _step(pts)})
        threads = f"{m['threads']} thread(s)" if m.get("threads") else "its default threads"
        out.append(replace(fig, note=f"p50 of {m['runs']} run(s) with onnxruntime {m['version']} on this machine's "
                                     f"CPU ({threads}); measured times vary from run to run."))
    return tuple(out)


def size_key(data: Mapping[str, Any]) -> Tuple[int, ...]:
    """Round parameter counts for the bubble legend: up to three of 1, 2, 5 × 10^k spanning the
    models' (smallest, middle, largest)."""
    params = [r["params"] for r in data["rows"] if r["params"]]
    if not params:
        return ()
    lo, hi = min(params), max(params)
    ticks = log_ticks(_snap_up(lo), max(_snap_down(hi), _snap_up(lo)))
    picks = [ticks[0], ticks[len(ticks) // 2], ticks[-1]] if len(ticks) > 2 else list(ticks)
    return tuple(sorted({int(round(t)) for t in picks}))


def bubble_radius(data: Mapping[str, Any], biggest: float, smallest: float) -> Callable[[Optional[int]], float]:
    """Radius of a model's bubble: area proportional to parameters, ``biggest`` for the model
    with the most, never below ``smallest`` (so that a tiny model stays visible)."""
    most = max((r["params"] for r in data["rows"] if r["params"]), default=0)

    def radius(params: Optional[int]) -> float:
        if not params or not most:
            return smallest
        return max(smallest, biggest * math.sqrt(params / most))

    return radius


def place_labels(items: Sequence[Tuple[int, float, float, float, str]], bounds: Tuple[float, float, float, float],
                 char_w: float, line_h: float, gap: float = 3.0) -> Dict[int, Tuple[float, float, str]]:
    """Room for each label, in the order given: ``items`` are (key, x, y, radius, text) in one
    unit (pixels or points; y may grow either way). A label goes right of its point, else left,
    at the point's height, else nudged by one, two, three line heights (up first), inside
    ``bounds`` (x0, y0, x1, y1) and clear of the labels placed before it and of the labelled
    points; a label with no room is left out. Returns key -> (x, y, "start" | "end") of the
    label's anchor (its vertical middle)."""
    bx0, bx1 = sorted((bounds[0], bounds[2]))
    by0, by1 = sorted((bounds[1], bounds[3]))
    taken: List[Tuple[float, float, float, float]] = []
    discs = {key: (x - r, y - r, x + r, y + r) for key, x, y, r, _ in items}
    placed: Dict[int, Tuple[float, float, str]] = {}

    def free(box, own):
        if box[0] < bx0 or box[2] > bx1 or box[1] < by0 or box[3] > by1:
            return False
        for other in taken + [d for k, d in discs.items() if k != own]:
            if box[0] < other[2] and other[0] < box[2] and box[1] < other[3] and other[1] < box[3]:
                return False
        return True

    for key, x, y, r, text in items:
        w = len(text) * char_w
        for dy in (0, -1, 1, -2, 2, -3, 3):
            cy = y + dy * line_h
            spot = None
            for side in (1, -1):
                lx = x + side * (r + gap)
                box = (lx, cy - line_h / 2, lx + w, cy + line_h / 2) if side == 1 else \
                      (lx - w, cy - line_h / 2, lx, cy + line_h / 2)
                if free(box, key):
                    spot = (lx, cy, "start" if side == 1 else "end"), box
                    break
            if spot:
                placed[key] = spot[0]
                taken.append(spot[1])
                break
    return placed


def _short(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[:NAME_CHARS - 1] + "…"


def _tip(row: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    """What hovering a point tells: the model, its rank, figures and fronts."""
    lines = [row["model"]]
    if row.get("rank") is not None:
        lines.append(f"#{row['rank']} by {LABEL.get(data['by'], data['by'])}")
    if row["top1"] is not None:
        lines.append(f"top-1 {row['top1']:.2f} %")
    lines.append(f"parameters {si(row['params'])} ({row['params']:,})" if row["params"] is not None else "parameters ?")
    if row["macs"] is not None:
        lines.append(f"MACs {'≥ ' if row['complete'] is False else ''}{si(row['macs'])} ({row['macs']:,})")
    if row.get("est_latency_ms") is not None:
        lower = "≥ " if row.get("est_latency_unknown") else ""
        lines.append(f"estimated latency {lower}{row['est_latency_ms']:.4g} ms on {data['device']['name']}")
    if row.get("latency_ms") is not None:
        lines.append(f"measured latency p50 {row['latency_ms']:.4g} ms, p90 {row['latency_p90_ms']:.4g} ms")
    if row["netscore"] is not None:
        lines.append(f"NetScore {row['netscore']:.2f} dB")
    if row["info_density"] is not None:
        lines.append(f"information density {row['info_density']:.3g} % per M parameters")
    on = row.get("pareto") or {}
    fronts = [name for cost, name in (("macs", "MACs"), ("params", "parameters"),
                                      ("est_latency", "estimated latency"), ("latency", "measured latency"))
              if on.get(cost)]
    if fronts:
        lines.append("Pareto front of top-1 against " + " and ".join(fronts))
    lines.append(row["path"])
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The page


def to_html(study) -> str:
    """The study as one self-contained page: the sortable leaderboard, the rank correlations,
    the four figures (and those of the estimated and measured latency; inline SVG, a point's
    figures on hover) and the notes. Nothing is fetched: the CSS and the script are inline."""
    data = _data(study)
    figs = figures(data)
    radius = bubble_radius(data, R_MAX, R_MIN)
    key = size_key(data)
    parts = ['<section class="study" id="study">',
             f'<h2>{escape(title(data))}</h2>',
             _leaderboard(data),
             f'<h3>{escape(correlation_title(data))}</h3>',
             _correlations(data),
             '<h3>Figures</h3>',
             f'<p class="table-note">Bubble area is proportional to parameters. Labelled: the models on a '
             f'Pareto front and the first and last {LABEL_FIRST} by {escape(LABEL.get(data["by"], data["by"]))} '
             f'(labels that would overlap are left out); hover any point for its figures, or a row of the '
             f'leaderboard to find its points.</p>',
             '<div class="charts">' + "".join(_figure(f, data, radius, key) for f in figs) + '</div>',
             _notes(data),
             '</section>']
    page_title = title(data)
    formula = (f"NetScore Ω = 20·log10(a^α / (p^β·m^γ)) in dB, a = top-1 in %, p = parameters in millions, "
               f"m = MACs in billions; α = {data['alpha']:g}, β = {data['beta']:g}, γ = {data['gamma']:g} "
               "(A. Wong, arXiv:1806.05512). Information density = a / p.")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="generator" content="onnxscore {escape(__version__)}">\n'
            f'<title>{escape(page_title)}</title>\n<style>{CSS}{STUDY_CSS}</style>\n</head>\n<body>\n'
            f'<header class="page"><h1>onnxscore rank</h1></header>\n<main>\n'
            + "\n".join(parts) +
            f'\n</main>\n<div id="study-tip" class="tip" hidden></div>\n'
            f'<footer class="page">{escape(formula)} Generated by onnxscore {escape(__version__)}.</footer>\n'
            f'<script>{JS}{TIP_JS}</script>\n</body>\n</html>\n')


LEADERBOARD = (("#", "num"), ("model", "text"), ("top-1 (%)", "num"), ("params (count)", "num"),
               ("MACs (count)", "num"), ("density (%/M params)", "num"), ("NetScore (dB)", "num"),
               ("rank Ω", "num"), ("rank top-1", "num"), ("rank density", "num"),
               ("Pareto MACs", "num"), ("Pareto params", "num"), ("FLOPs (count)", "num"),
               ("weights (bytes)", "num"), ("top-1 from", "text"), ("complete", "text"), ("cached", "text"),
               ("path", "text"), ("error", "text"))


def _num(value, text: str):
    return (text if value is not None else "", value)


EST_COLUMN = ("est. latency (ms)", "num")  # after MACs, when the study has a device
MEASURED_COLUMNS = (("latency p50 (ms)", "num"), ("latency p90 (ms)", "num"))  # then these, when measured


def _leaderboard(data: Mapping[str, Any]) -> str:
    rows, attrs = [], []
    device = (data.get("device") or {}).get("name")
    timed = data.get("measure") is not None
    for i, r in enumerate(data["rows"]):
        failed = r["error"] is not None
        name = f'<span class="name">{escape(r["model"])}</span>' + (' <span class="badge fail">failed</span>'
                                                                      if failed else "")
        lower = "≥" if r["complete"] is False else ""
        ranks = r.get("ranks") or {}
        front = r.get("pareto") or {}
        marks = [("●" if front.get(c) else "", None if failed else int(bool(front.get(c))))
                 for c in ("macs", "params")]
        rows.append([
            _num(r.get("rank"), str(r.get("rank"))), (name, None),
            _num(r["top1"], f"{r['top1']:.2f}" if r["top1"] is not None else ""),
            _num(r["params"], si(r["params"])), _num(r["macs"], lower + si(r["macs"])),
            _num(r["info_density"], f"{r['info_density']:.3g}" if r["info_density"] is not None else ""),
            _num(r["netscore"], f"{r['netscore']:.2f}" if r["netscore"] is not None else ""),
            *(_num(ranks.get(m), str(ranks.get(m))) for m in ("netscore", "top1", "info_density")),
            *marks,
            _num(r["flops"], lower + si(r["flops"])),
            _num(r["weight_bytes"], binary_bytes(r["weight_bytes"])),
            _text(r["accuracy_source"] if r["accuracy_source"] != "none" else "", "muted"),
            _text({True: "yes", False: "no: lower bound", None: ""}[r["complete"]]),
            _text("yes" if r["cached"] else ""),
            _text(r["path"], "scope"),
            (f'<span class="error">{escape(r["error"])}</span>' if failed else "", None)])
        if timed:
            rows[-1][5:5] = [_num(r.get("latency_ms"), measured_ms(r)),
                             _num(r.get("latency_p90_ms"), measured_ms(r, "latency_p90_ms"))]
        if device:
            rows[-1].insert(5, _num(r.get("est_latency_ms"), est_ms(r)))
        attrs.append(f' data-i="{i}"' + (' class="failed"' if failed else ""))
    caption = f"Leaderboard by {LABEL.get(data['by'], data['by'])}, {ORDER.get(data['by'], '')}"
    note = ("top-1 in %; params, MACs and FLOPs are counts (K = 10³, M = 10⁶, G = 10⁹); weights in bytes "
            "(KiB, MiB: powers of 1024); ≥: a lower bound (an op without a cost rule, or a dim left unknown). "
            "rank Ω / top-1 / density: the model's rank under each metric over the models with an accuracy "
            "(1 = best; ties share a rank). Pareto ●: on the front of top-1 against MACs, against parameters. "
            "Click a header to sort.")
    header = LEADERBOARD[:5] + ((EST_COLUMN,) if device else ()) + (MEASURED_COLUMNS if timed else ()) \
        + LEADERBOARD[5:]
    if device:
        note += (f" est. latency: the roofline estimate on {device} (≥: some layers without an estimate), "
                 "from the device profile's numbers, not a measurement.")
    if timed:
        note += " " + measure_line(data, "latency p50 / p90: the median and 90th percentile latency")
    return _table("study-leaderboard", caption, header, rows, note, attrs)


def _correlations(data: Mapping[str, Any]) -> str:
    c = data["correlations"]
    rows = []
    for k, label in PAIR_LABEL.items():
        rho, tau = c["spearman"].get(k), c["kendall"].get(k)
        rows.append([_text(label), ("–" if rho is None else f"{rho:+.3f}", rho),
                     ("–" if tau is None else f"{tau:+.3f}", tau)])
    header = (("metrics", "text"), ("Spearman ρ", "num"), ("Kendall τ-b", "num"))
    return '<div class="narrow">' + _table("study-correlations", correlation_title(data), header, rows,
                                           CORRELATION_NOTE) + "</div>"


def _notes(data: Mapping[str, Any]) -> str:
    items = "".join(f'<li class="{"warning" if line.lstrip() != line or line.endswith(":") else "info"}">'
                    f"{escape(line.strip())}</li>" for line in notes(data))
    return f'<ul class="messages">{items}</ul>'


# SVG geometry of one figure (pixels)
WIDTH, HEIGHT = 620, 500
X0, X1, TOP, BOTTOM = 58, 604, 40, 372
R_MAX, R_MIN = 13.0, 2.2
LABEL_CHAR_W, LABEL_LINE_H = 5.9, 13.0  # 10.5 px labels


def _scale(axis: Axis, p0: float, p1: float):
    if axis.log:
        l0, l1 = math.log10(axis.lo), math.log10(axis.hi)
        return lambda v: p0 + (p1 - p0) * (math.log10(v) - l0) / (l1 - l0)
    return lambda v: p0 + (p1 - p0) * (v - axis.lo) / (axis.hi - axis.lo)


def _figure(fig: Figure, data: Mapping[str, Any], radius, key: Sequence[int]) -> str:
    caption = f'<figcaption>{escape(fig.caption())}</figcaption>'
    if not fig.points:
        body = [f'<text class="empty" x="{WIDTH / 2:g}" y="{(TOP + BOTTOM) / 2:g}" text-anchor="middle">'
                f'No model has the figures this chart needs.</text>']
        return (f'<figure class="chart study-fig">{_svg(fig.id, WIDTH, HEIGHT, fig.title, fig.caption(), body)}'
                f'{caption}</figure>')
    xs, ys = _scale(fig.x, X0, X1), _scale(fig.y, BOTTOM, TOP)
    body = _x_axis(X0, X1, BOTTOM, list(fig.x.ticks), xs, fig.x.fmt, fig.x.label, TOP)
    for v in fig.y.ticks:
        y = ys(v)
        body.append(f'<line class="grid" x1="{X0:g}" x2="{X1:g}" y1="{y:.1f}" y2="{y:.1f}"/>')
        body.append(f'<text class="tick" x="{X0 - 7:g}" y="{y + 4:.1f}" text-anchor="end">'
                    f'{escape(fig.y.fmt(v))}</text>')
    body.append(f'<line class="axis" x1="{X0:g}" x2="{X0:g}" y1="{TOP:g}" y2="{BOTTOM:g}"/>')
    body.append(f'<text class="axis-label" transform="translate(13 {(TOP + BOTTOM) / 2:g}) rotate(-90)" '
                f'text-anchor="middle">{escape(fig.y.label)}</text>')
    for line in fig.lines:
        (ax, ay), (bx, by) = (xs(line.start[0]), ys(line.start[1])), (xs(line.end[0]), ys(line.end[1]))
        angle = math.degrees(math.atan2(by - ay, bx - ax))
        label = f"Ω = {line.omega:g} dB"
        body.append(f'<g class="iso" data-omega="{line.omega:g}" data-pm="{line.start[0]:.6g} {line.end[0]:.6g}" '
                    f'data-top1="{line.start[1]:.6g} {line.end[1]:.6g}">'
                    f'<line class="iso-netscore" x1="{ax:.1f}" y1="{ay:.1f}" x2="{bx:.1f}" y2="{by:.1f}"/>'
                    f'<text class="iso-label" transform="translate({bx:.1f} {by:.1f}) rotate({angle:.1f})" '
                    f'x="-4" y="-4" text-anchor="end">{escape(label)}</text></g>')
    if len(fig.step) > 1:
        d = "M" + " L".join(f"{xs(x):.1f} {ys(y):.1f}" for x, y in fig.step)
        body.append(f'<path class="pareto-step" d="{d}"/>')
    where = {}
    for p in sorted(fig.points, key=lambda p: (p.front, -radius(p.params))):  # small and front on top
        cx, cy, r = xs(p.x), ys(p.y), radius(p.params)
        where[p.row] = (cx, cy, r)
        body.append(f'<circle class="pt{" front" if p.front else ""}" data-i="{p.row}" '
                    f'data-model="{escape(p.model)}" cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}">'
                    f'<title>{escape(_tip(data["rows"][p.row], data))}</title></circle>')
    items = [(i, *where[i], _short(data["rows"][i]["model"])) for i in fig.labels]
    spots = place_labels(items, (X0 + 2, TOP, X1, BOTTOM - 2), LABEL_CHAR_W, LABEL_LINE_H)
    for i, x, y, r, text in items:
        if i not in spots:
            continue
        lx, ly, anchor = spots[i]
        if abs(ly - y) > r:  # nudged away from its point: a leader line shows which point it names
            body.append(f'<line class="leader" x1="{x:.1f}" y1="{y:.1f}" x2="{lx:.1f}" y2="{ly:.1f}"/>')
        body.append(f'<text class="pt-label" data-i="{i}" x="{lx:.1f}" y="{ly + 3.5:.1f}" '
                    f'text-anchor="{anchor}">{escape(text)}</text>')
    body += _legend(fig, radius, key)
    return (f'<figure class="chart study-fig">{_svg(fig.id, WIDTH, HEIGHT, fig.title, fig.caption(), body)}'
            f'{caption}</figure>')


def _legend(fig: Figure, radius, key: Sequence[int]) -> List[str]:
    """Two rows under the axis label: bubble sizes; then the marks (front, step, lines)."""
    out, y1, y2 = [], HEIGHT - 62, HEIGHT - 18
    x = float(X0)
    if key:
        text = "bubble area ∝ parameters:"
        out.append(f'<text class="legend" x="{x:g}" y="{y1 + 4:g}">{text}</text>')
        x += len(text) * 5.9 + 8
        for n in key:
            r = radius(n)
            out.append(f'<circle class="size-key" cx="{x + r:.1f}" cy="{y1:g}" r="{r:.1f}"/>')
            label = si(n)
            out.append(f'<text class="legend" x="{x + 2 * r + 4:.1f}" y="{y1 + 4:g}">{escape(label)}</text>')
            x += 2 * r + 4 + len(label) * 6.2 + 14
    x = float(X0)
    out.append(f'<circle class="pt front key" cx="{x + 5:g}" cy="{y2:g}" r="5"/>')
    out.append(f'<text class="legend" x="{x + 14:g}" y="{y2 + 4:g}">{escape(fig.front)}</text>')
    x += 14 + len(fig.front) * 5.9 + 16
    if fig.step:
        out.append(f'<path class="pareto-step key" d="M{x:g} {y2 + 4:g} h8 v-8 h8"/>')
        out.append(f'<text class="legend" x="{x + 22:g}" y="{y2 + 4:g}">the front</text>')
    if fig.lines:
        out.append(f'<line class="iso-netscore key" x1="{x:g}" x2="{x + 18:g}" y1="{y2:g}" y2="{y2:g}"/>')
        out.append(f'<text class="legend" x="{x + 24:g}" y="{y2 + 4:g}">equal NetScore</text>')
    return out


STUDY_CSS = f"""
figure.study-fig figcaption {{ color: var(--muted); font-size: 12px; margin: 2px 0 0 4px; }}
svg circle.pt {{ fill: {MACS_COLOR}; fill-opacity: .38; stroke: {MACS_COLOR}; stroke-opacity: .9; stroke-width: .8; }}
svg circle.pt.front {{ fill: {PARAMS_COLOR}; fill-opacity: .8; stroke: #9a5513; }}
svg circle.pt:hover, svg circle.pt.hl {{ stroke: #111; stroke-width: 2.2; fill-opacity: 1; }}
svg circle.size-key {{ fill: {MACS_COLOR}; fill-opacity: .15; stroke: {MACS_COLOR}; stroke-width: .8; }}
svg .pareto-step {{ fill: none; stroke: {PARAMS_COLOR}; stroke-width: 1.6; stroke-linejoin: round; }}
svg .iso-netscore {{ stroke: {ISO_COLOR}; stroke-width: 1; stroke-dasharray: 5 4; }}
svg .iso-label {{ fill: #57606a; font-size: 10.5px; }}
svg .pt-label {{ fill: {CUMULATIVE_COLOR}; font-size: 10.5px; paint-order: stroke; stroke: #fff;
  stroke-width: 3px; stroke-linejoin: round; pointer-events: none; }}
svg .pt-label.hl {{ font-weight: 700; }}
svg .leader {{ stroke: #9aa3ad; stroke-width: .7; }}
.narrow .table-wrap {{ display: inline-block; max-width: 100%; }}
.narrow table {{ width: auto; }}
tr.failed td {{ color: #b42318; }}
tr.hl td {{ background: #fdf1e3; }}
td .error {{ white-space: normal; display: inline-block; min-width: 260px; }}
.badge {{ font-size: 11px; border-radius: 8px; padding: 0 6px; }}
.badge.fail {{ background: #fde7e5; color: #b42318; }}
.tip {{ position: absolute; z-index: 10; max-width: 420px; padding: 6px 9px; border-radius: 6px;
  background: rgba(31, 35, 40, .92); color: #fff; font-size: 12px; line-height: 1.45;
  white-space: pre-wrap; pointer-events: none; }}
"""

TIP_JS = """
(function () {
  var tip = document.getElementById('study-tip');
  function owner(e) { return e.target.closest ? e.target.closest('[data-i]') : null; }
  function mark(i, on) {
    document.querySelectorAll('[data-i="' + i + '"]').forEach(function (el) { el.classList.toggle('hl', on); });
  }
  document.addEventListener('mouseover', function (e) {
    var el = owner(e);
    if (!el) return;
    mark(el.getAttribute('data-i'), true);
    if (el.tagName.toLowerCase() !== 'circle') return;
    var t = el.querySelector('title');  // shown by this tooltip from now on, not the browser's
    if (t) { el.setAttribute('data-tip', t.textContent); el.removeChild(t); }
    tip.textContent = el.getAttribute('data-tip');
    tip.hidden = false;
  });
  document.addEventListener('mousemove', function (e) {
    if (tip.hidden) return;
    var x = e.pageX + 14, room = document.documentElement.clientWidth + window.scrollX - tip.offsetWidth - 8;
    tip.style.left = Math.min(x, room) + 'px';
    tip.style.top = (e.pageY + 14) + 'px';
  });
  document.addEventListener('mouseout', function (e) {
    var el = owner(e);
    if (!el) return;
    mark(el.getAttribute('data-i'), false);
    tip.hidden = true;
  });
})();
"""


# ---------------------------------------------------------------------------------------------
# The PNG

FIGSIZE = (16, 12.5)  # inches: 2400 x 1875 pixels at the default 150 dpi
FIGSIZE_DEVICE = (24, 12.5)  # five figures and the legend: a 2 x 3 grid, 3600 x 1875 pixels
FIGSIZE_SIX = (24, 13.5)  # six figures (device and measured), the legend under them: 3600 x 2025 pixels
ORDINAL = {4: "fifth", 5: "sixth"}
LATENCY_NAME = {LATENCY_FIGURE_ID: "estimated latency", MEASURED_FIGURE_ID: "measured latency"}
PNG_LABEL_PT = 7.0
S_MAX_PT, S_MIN_PT = 11.0, 1.6  # bubble radii in points


def plot_png(study, path: str, dpi: int = 150) -> None:
    """Write the four figures to ``path`` as one PNG, a 2 × 2 grid of ``FIGSIZE`` inches at
    ``dpi``; with a device or measured latencies, the five figures in a 2 × 3 grid of
    ``FIGSIZE_DEVICE`` inches, the legend in the sixth cell; with both, the six figures in a
    2 × 3 grid of ``FIGSIZE_SIX`` inches, the legend under them. Needs matplotlib
    (``pip install onnxscore[plot]``)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import patheffects
        from matplotlib.lines import Line2D
    except ImportError as e:
        raise UsageError("--plot needs matplotlib: pip install matplotlib") from e

    data = _data(study)
    figs = figures(data)
    radius = bubble_radius(data, S_MAX_PT, S_MIN_PT)
    style = {"font.size": 9, "axes.titlesize": 11, "axes.titleweight": "bold", "axes.labelsize": 9,
             "axes.spines.top": False, "axes.spines.right": False, "axes.edgecolor": "#9aa3ad",
             "axes.labelcolor": "#30363d", "xtick.color": "#57606a", "ytick.color": "#57606a",
             "grid.color": "#e3e7ec", "grid.linewidth": 0.8}
    halo = [patheffects.withStroke(linewidth=2.2, foreground="white")]
    with plt.rc_context(style):
        five, six = len(figs) == 5, len(figs) == 6
        wide = five or six
        fig, axes = plt.subplots(2, 3 if wide else 2,
                                 figsize=FIGSIZE_SIX if six else FIGSIZE_DEVICE if five else FIGSIZE)
        fig.subplots_adjust(left=0.04 if wide else 0.055, right=0.985, top=0.925,
                            bottom=0.09 if five else 0.13 if six else 0.1, wspace=0.16, hspace=0.36)
        fig.suptitle(title(data), x=0.055, y=0.985, ha="left", fontsize=14, fontweight="bold")
        fig.text(0.055, 0.948, f"Bubble area ∝ parameters. Labelled: models on a Pareto front and the first and "
                 f"last {LABEL_FIRST} by {LABEL.get(data['by'], data['by'])}.", fontsize=9, color="#57606a")
        for ax, f in zip(axes.flat, figs):
            _plot_figure(ax, fig, f, data, radius, halo, narrow=wide)
        handles = [Line2D([], [], ls="", marker="o", ms=2 * radius(n), mfc=MACS_COLOR, mec=MACS_COLOR, alpha=0.4,
                          label=f"{si(n)} parameters") for n in size_key(data)]
        handles += [Line2D([], [], ls="", marker="o", ms=8, mfc=PARAMS_COLOR, mec="#9a5513",
                           label="on a Pareto front (top-1 vs MACs in the first figure; "
                                 "vs MACs or parameters in the others)"),
                    Line2D([], [], color=PARAMS_COLOR, lw=1.6, drawstyle="steps-post",
                           label="Pareto front, top-1 vs MACs"),
                    Line2D([], [], color=ISO_COLOR, lw=1, ls=(0, (5, 4)), label="equal NetScore (dB)")]
        timing = [(LATENCY_NAME[f.id], ORDINAL[i]) for i, f in enumerate(figs) if f.id in LATENCY_NAME]
        if timing:
            handles[-3].set_label("on a Pareto front (top-1 vs MACs in the first figure, "
                                  + ", ".join(f"vs {name} in the {nth}" for name, nth in timing)
                                  + ";\nvs MACs or parameters in the others)")
            handles[-2].set_label("Pareto front, top-1 vs MACs (first figure)\nor "
                                  + " or ".join(f"vs {name} ({nth})" for name, nth in timing))
        if five:
            legend_ax = axes.flat[5]
            legend_ax.axis("off")
            legend_ax.legend(handles=handles, loc="center left", ncol=1, frameon=False, fontsize=9,
                             handletextpad=0.6, labelspacing=1.4, borderaxespad=0)
        else:
            fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=8.5,
                       bbox_to_anchor=(0.5, 0.005), handletextpad=0.4, columnspacing=1.6)
        fig.savefig(path, dpi=dpi, facecolor="white")
        plt.close(fig)


def _plot_figure(ax, fig, f: Figure, data: Mapping[str, Any], radius, halo, narrow: bool = False) -> None:
    ax.set_title(f.title, loc="left")
    caption = f.caption()
    if narrow:  # wrapped to the axes: no caption runs under the figure beside it
        import textwrap

        width_pt = ax.get_window_extent().width * 72.0 / fig.dpi
        caption = textwrap.fill(caption, max(40, int(width_pt / (0.55 * 7.5))))  # 7.5 pt, generous
    ax.annotate(caption, xy=(0, 0), xycoords="axes fraction", xytext=(0, -44), textcoords="offset points",
                fontsize=7.5, color="#57606a", va="top", ha="left", wrap=not narrow)
    if not f.points:
        ax.text(0.5, 0.5, "no model has the figures this chart needs", ha="center", va="center",
                transform=ax.transAxes, color="#57606a")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    for axis, set_scale, set_lim, set_ticks in ((f.x, ax.set_xscale, ax.set_xlim, ax.set_xticks),
                                                 (f.y, ax.set_yscale, ax.set_ylim, ax.set_yticks)):
        set_scale("log" if axis.log else "linear")
        set_lim(axis.lo, axis.hi)
        set_ticks(list(axis.ticks), [axis.fmt(v) for v in axis.ticks])
        set_ticks([], minor=True)
    ax.set_xlabel(f.x.label)
    ax.set_ylabel(f.y.label)
    ax.grid(True, zorder=0)
    for line in f.lines:
        (x0, y0), (x1, y1) = line.start, line.end
        ax.plot([x0, x1], [y0, y1], color=ISO_COLOR, lw=1, ls=(0, (5, 4)), zorder=1)
    if len(f.step) > 1:
        ax.plot([x for x, _ in f.step], [y for _, y in f.step], color=PARAMS_COLOR, lw=1.6, zorder=2)
    pts = sorted(f.points, key=lambda p: (p.front, -radius(p.params)))
    ax.scatter([p.x for p in pts], [p.y for p in pts], s=[(2 * radius(p.params)) ** 2 for p in pts],
               c=[(*_rgb(PARAMS_COLOR), 0.8) if p.front else (*_rgb(MACS_COLOR), 0.35) for p in pts],
               edgecolors=["#9a5513" if p.front else MACS_COLOR for p in pts], linewidths=0.6, zorder=3)
    # Labels, placed in points (1/72 inch) from the axes' geometry, which is fixed by now.
    to_pt = 72.0 / fig.dpi
    box = ax.get_window_extent()
    where = {p.row: ax.transData.transform((p.x, p.y)) * to_pt for p in f.points}
    items = [(i, where[i][0], where[i][1], radius(data["rows"][i]["params"]), _short(data["rows"][i]["model"]))
             for i in f.labels]
    spots = place_labels(items, (box.x0 * to_pt, box.y0 * to_pt, box.x1 * to_pt, box.y1 * to_pt),
                         0.6 * PNG_LABEL_PT, 1.2 * PNG_LABEL_PT, gap=2.0)
    by_row = {p.row: p for p in f.points}
    for i, x, y, r, text in items:
        if i not in spots:
            continue
        lx, ly, anchor = spots[i]
        arrow = dict(arrowstyle="-", color="#9aa3ad", lw=0.5, shrinkA=0, shrinkB=0) if abs(ly - y) > r else None
        ax.annotate(text, xy=(by_row[i].x, by_row[i].y), xytext=(lx - x, ly - y), textcoords="offset points",
                    ha="left" if anchor == "start" else "right", va="center", fontsize=PNG_LABEL_PT,
                    color=CUMULATIVE_COLOR, path_effects=halo, arrowprops=arrow, zorder=4)
    for line in f.lines:
        (x0, y0), (x1, y1) = (ax.transData.transform(p) for p in (line.start, line.end))
        angle = math.degrees(math.atan2(y1 - y0, x1 - x0))
        ax.annotate(f"Ω = {line.omega:g} dB", xy=line.end, xytext=(-3, 3), textcoords="offset points",
                    rotation=angle, rotation_mode="anchor", ha="right", va="bottom", fontsize=7.5,
                    color="#57606a", path_effects=halo, zorder=2)


def _rgb(color: str) -> Tuple[float, float, float]:
    return tuple(int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))
