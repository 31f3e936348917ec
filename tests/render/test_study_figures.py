"""The study's figures (``onnxscore rank --html/--plot``), from study dicts written here by hand.

The study (schema ``onnxscore.study/1``): nine models, p = parameters in millions, m = MACs in
billions, a = top-1 in %, NetScore Ω = 20·log10(a² / (p^0.5·m^0.5)) = 40·log10(a) − 10·log10(p·m):

    model      p     m     a    p·m    Ω = 40·log10(a) − 10·log10(p·m)     density a/p
    tiny       1     0.1   50   0.1    67.9588 + 10      = 77.9588         50
    mid        5     0.5   70   2.5    73.8039 − 3.9794  = 69.8245         14
    <b>&"x     2     3     60   6      71.1261 − 7.7815  = 63.3445         30
    big        25    4     76   100    75.2326 − 20      = 55.2326         3.04
    huge       100   10    78   1000   75.6838 − 30      = 45.6838         0.78
    bloat      50    20    74   1000   74.7693 − 30      = 44.7693         1.48
    noacc      2     0.3   -    (no accuracy)
    nomacs     0.5   0     30   (no MACs: no NetScore)                     60
    broken     (failed: not an ONNX file)

Pareto front of top-1 against MACs, cheapest first, keeping a model when its top-1 beats every
cheaper one: nomacs (0 G, 30), tiny (0.1 G, 50), mid (0.5 G, 70), <b>&"x (3 G, 60 < 70: no),
big (4 G, 76), huge (10 G, 78), bloat (20 G, 74: no).
Against parameters: nomacs (0.5 M, 30), tiny (1, 50), <b>&"x (2, 60), mid (5, 70), big (25, 76),
bloat (50, 74: no), huge (100, 78). So bloat is on neither front; <b>&"x on the parameters' only.
"""
from __future__ import annotations

import math
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from html.parser import HTMLParser

import pytest

from onnxscore.errors import UsageError
from onnxscore.render.study_figures import (FIGURE_IDS, LATENCY_FIGURE_ID, MEASURED_FIGURE_ID, figures, iso_netscore,
                                            linear_axis, log_axis, place_labels, plot_png, size_key, to_html)
from tests.render.test_html import Page

EVIL = '<b>&"x'
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]


def row(model, p, m, a, *, ranks=(None, None, None), macs_front=False, params_front=False, error=None):
    """One row of the study as ``Study.to_dict()`` writes it; p in millions, m in billions."""
    if error:
        return {"rank": None, "model": model, "path": f"zoo/{model}.onnx", "top1": None, "accuracy_source": "none",
                "params": None, "macs": None, "flops": None, "weight_bytes": None, "complete": None,
                "info_density": None, "netscore": None,
                "ranks": {"netscore": None, "top1": None, "info_density": None},
                "pareto": {"macs": False, "params": False}, "cached": False, "error": error}
    params, macs = round(p * 1e6), round(m * 1e9)
    netscore = (20 * math.log10(a ** 2 / (p ** 0.5 * m ** 0.5)) if a is not None and p and m else None)
    return {"rank": ranks[0], "model": model, "path": f"zoo/{model}.onnx", "top1": a,
            "accuracy_source": "table" if a is not None else "none", "params": params, "macs": macs,
            "flops": 2 * macs, "weight_bytes": 4 * params, "complete": True,
            "info_density": a / p if a is not None else None, "netscore": netscore,
            "ranks": dict(zip(("netscore", "top1", "info_density"), ranks)),
            "pareto": {"macs": macs_front, "params": params_front}, "cached": model == "big", "error": None}


def hand_study(beta=0.5, gamma=0.5):
    # ranks (NetScore, top-1, density): NetScore tiny > mid > <b>&"x > big > huge > bloat;
    # top-1 huge 78 > big 76 > bloat 74 > mid 70 > <b>&"x 60 > tiny 50 > nomacs 30;
    # density nomacs 60 > tiny 50 > <b>&"x 30 > mid 14 > big 3.04 > bloat 1.48 > huge 0.78.
    rows = [row("tiny", 1, 0.1, 50, ranks=(1, 6, 2), macs_front=True, params_front=True),
            row("mid", 5, 0.5, 70, ranks=(2, 4, 4), macs_front=True, params_front=True),
            row(EVIL, 2, 3, 60, ranks=(3, 5, 3), params_front=True),
            row("big", 25, 4, 76, ranks=(4, 2, 5), macs_front=True, params_front=True),
            row("huge", 100, 10, 78, ranks=(5, 1, 7), macs_front=True, params_front=True),
            row("bloat", 50, 20, 74, ranks=(6, 3, 6)),
            row("noacc", 2, 0.3, None),
            row("nomacs", 0.5, 0, 30, ranks=(None, 7, 1), macs_front=True, params_front=True),
            row("broken", 0, 0, None, error="zoo/broken.onnx: not an ONNX file (protobuf parse error)")]
    return {"schema": "onnxscore.study/1", "by": "netscore", "alpha": 2.0, "beta": beta, "gamma": gamma,
            "units": {"params": "count", "macs": "count",
                      "netscore": "dB; a in %, p in millions of parameters, m in billions of MACs",
                      "info_density": "% top-1 per million parameters"},
            "rows": rows,
            "pareto": {"macs": ["nomacs", "tiny", "mid", "big", "huge"],
                       "params": ["nomacs", "tiny", EVIL, "mid", "big", "huge"]},
            "correlations": {"spearman": {"netscore~top1": -0.6, "netscore~info_density": 0.8,
                                          "top1~info_density": -0.5},
                             "kendall": {"netscore~top1": -0.467, "netscore~info_density": 0.6,
                                         "top1~info_density": None}, "n": 6},
            "missing_accuracy": ["noacc"], "unmatched_accuracy": ["ghost"],
            "counts": {"models": 9, "analyzed": 7, "cached": 1, "failed": 1, "without_accuracy": 1}}


ORDER = ["tiny", "mid", EVIL, "big", "huge", "bloat", "noacc", "nomacs", "broken"]
DRAWN = {"fig-top1-macs": {"tiny", "mid", EVIL, "big", "huge", "bloat"},  # nomacs: no MACs on a log axis
         "fig-netscore-top1": {"tiny", "mid", EVIL, "big", "huge", "bloat"},  # nomacs: no NetScore
         "fig-density-top1": {"tiny", "mid", EVIL, "big", "huge", "bloat", "nomacs"},
         "fig-top1-pm": {"tiny", "mid", EVIL, "big", "huge", "bloat"}}
FRONT = {"fig-top1-macs": {"tiny", "mid", "big", "huge"},  # the MACs front
         "fig-netscore-top1": DRAWN["fig-netscore-top1"] - {"bloat"},  # either front
         "fig-density-top1": DRAWN["fig-density-top1"] - {"bloat"},
         "fig-top1-pm": DRAWN["fig-top1-pm"] - {"bloat"}}


class Svg(HTMLParser):
    """Per SVG id: its circles (attributes and tooltip), paths, equal-NetScore groups and texts."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.figs, self._svg, self._text, self._title = {}, None, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg":
            self._svg = a.get("id")
            self.figs[self._svg] = {"circles": [], "paths": [], "iso": [], "texts": []}
        elif self._svg is None:
            return
        elif tag == "circle":
            self.figs[self._svg]["circles"].append([a, ""])
        elif tag == "path":
            self.figs[self._svg]["paths"].append(a)
        elif tag == "g" and a.get("class") == "iso":
            self.figs[self._svg]["iso"].append([a, ""])
        elif tag == "text":
            self._text = [a, ""]
        elif tag == "title":
            self._title = ""

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "svg":
            self._svg = None
        elif tag == "text" and self._text is not None:
            fig = self.figs[self._svg]
            fig["texts"].append(tuple(self._text))
            if self._text[0].get("class") == "iso-label":
                fig["iso"][-1][1] = self._text[1]
            self._text = None
        elif tag == "title" and self._title is not None:
            circles = self.figs[self._svg]["circles"] if self._svg else []
            if circles and not circles[-1][1]:
                circles[-1][1] = self._title
            self._title = None

    def handle_data(self, data):
        if self._text is not None:
            self._text[1] += data
        if self._title is not None:
            self._title += data

    def points(self, fig_id):
        return [a for a, _ in self.figs[fig_id]["circles"] if "pt" in a.get("class", "").split()
                and "key" not in a.get("class", "").split()]

    def labels(self, fig_id):
        return [t for a, t in self.figs[fig_id]["texts"] if a.get("class") == "pt-label"]


@pytest.fixture(scope="module")
def page():
    text = to_html(hand_study())
    return text, Page(text), Svg(text)


def test_leaderboard_rows_in_order(page):
    _, tables, _ = page
    assert tables.ids["study-leaderboard"] == "table"
    assert [t.replace(" failed", "") for t in tables.texts("study-leaderboard", "model")] == ORDER
    assert tables.column("study-leaderboard", "#") == [1, 2, 3, 4, 5, 6, None, None, None]
    assert tables.column("study-leaderboard", "params (count)") == [
        1_000_000, 5_000_000, 2_000_000, 25_000_000, 100_000_000, 50_000_000, 2_000_000, 500_000, None]
    assert tables.column("study-leaderboard", "MACs (count)")[:2] == [100_000_000, 500_000_000]
    assert tables.column("study-leaderboard", "NetScore (dB)")[:6] == pytest.approx(
        [77.9588, 69.8245, 63.3445, 55.2326, 45.6838, 44.7693], abs=1e-4)
    assert tables.column("study-leaderboard", "density (%/M params)")[7] == 60  # nomacs: 30 / 0.5
    assert tables.column("study-leaderboard", "rank top-1") == [6, 4, 5, 2, 1, 3, None, 7, None]
    assert tables.column("study-leaderboard", "Pareto MACs") == [1, 1, 0, 1, 1, 0, 0, 1, None]
    assert tables.column("study-leaderboard", "Pareto params") == [1, 1, 1, 1, 1, 0, 0, 1, None]
    assert tables.texts("study-leaderboard", "Pareto MACs") == ["●", "●", "", "●", "●", "", "", "●", ""]
    errors = tables.texts("study-leaderboard", "error")
    assert errors[-1] == "zoo/broken.onnx: not an ONNX file (protobuf parse error)" and not any(errors[:-1])
    # every field of a row has its column, units in the headers
    header = tables.tables["study-leaderboard"]["header"]
    for label in ("top-1 (%)", "top-1 from", "FLOPs (count)", "weights (bytes)", "NetScore (dB)",
                  "rank Ω", "rank density", "complete", "cached", "path"):
        assert label in header, label
    assert tables.texts("study-leaderboard", "cached")[3] == "yes"  # big came from the cache


def test_correlations_table(page):
    _, tables, _ = page
    assert tables.texts("study-correlations", "metrics") == ["NetScore ~ top-1", "NetScore ~ info density",
                                                             "top-1 ~ info density"]
    assert tables.column("study-correlations", "Spearman ρ") == [-0.6, 0.8, -0.5]
    assert tables.column("study-correlations", "Kendall τ-b") == [-0.467, 0.6, None]
    assert tables.texts("study-correlations", "Kendall τ-b")[2] == "–"


def test_one_point_per_drawable_model(page):
    _, tables, svg = page
    for fig_id in FIGURE_IDS:
        assert tables.ids[fig_id] == "svg", fig_id
        pts = svg.points(fig_id)
        assert len(pts) == len(DRAWN[fig_id]), fig_id
        assert {p["data-model"] for p in pts} == DRAWN[fig_id], fig_id
        assert {p["data-model"] for p in pts if "front" in p["class"].split()} == FRONT[fig_id], fig_id
        # every point has its hover label: the model's name first
        tips = [t for a, t in svg.figs[fig_id]["circles"] if "pt" in a["class"].split() and "key" not in a["class"]]
        assert sorted(t.split("\n")[0] for t in tips) == sorted(DRAWN[fig_id])
        # and every drawn model is labelled here (few models: there is room for all of them)
        assert set(svg.labels(fig_id)) == DRAWN[fig_id], fig_id


def test_captions_count_what_is_left_out(page):
    text, _, _ = page
    assert "6 of 9 model(s) drawn; left out: 1 without an accuracy, 1 with no MACs, 1 failed." in text
    assert ("6 of 9 model(s) drawn; left out: 1 without an accuracy, 1 without a NetScore (no parameters "
            "or no MACs), 1 failed.") in text
    assert "7 of 9 model(s) drawn; left out: 1 without an accuracy, 1 failed." in text


def test_tooltip_figures(page):
    _, _, svg = page
    (tip,) = [t for a, t in svg.figs["fig-top1-pm"]["circles"] if a.get("data-model") == "big"]
    assert tip.split("\n") == ["big", "#4 by NetScore", "top-1 76.00 %", "parameters 25 M (25,000,000)",
                               "MACs 4 G (4,000,000,000)", "NetScore 55.23 dB",
                               "information density 3.04 % per M parameters",
                               "Pareto front of top-1 against MACs and parameters", "zoo/big.onnx"]


def vertices(d):
    return [tuple(float(v) for v in pair.split()) for pair in re.split(r"[ML]", d) if pair.strip()]


def test_pareto_step_line(page):
    """The staircase through the MACs front, cheapest first: tiny, (mid's MACs, tiny's top-1),
    mid, (big's MACs, mid's top-1), big, (huge's MACs, big's top-1), huge; nomacs (on the front,
    MACs 0) cannot be drawn on a log axis."""
    _, _, svg = page
    (path,) = [p for p in svg.figs["fig-top1-macs"]["paths"] if p.get("class") == "pareto-step"]
    centre = {p["data-model"]: (float(p["cx"]), float(p["cy"])) for p in svg.points("fig-top1-macs")}
    steps = vertices(path["d"])
    front = [centre[m] for m in ("tiny", "mid", "big", "huge")]
    assert steps[0::2] == front
    assert steps[1::2] == [(b[0], a[1]) for a, b in zip(front, front[1:])]
    assert front[0][1] > front[1][1] > front[2][1] > front[3][1]  # higher top-1 is higher on the page
    for other in ("fig-netscore-top1", "fig-density-top1", "fig-top1-pm"):
        assert not [p for p in svg.figs[other]["paths"] if p.get("class") == "pareto-step"]


def test_equal_netscore_lines(page):
    """Figure 4's axes: p·m from 0.1 to 1000, widened by 1.1 and out to 1-2-5: 0.05 to 2000;
    top-1 50 to 78, widened by 1.1 (45.45 to 85.8), within a decade so out to steps of 10:
    40 to 90. NetScore from 44.77 to 77.96: round values 40, 50, 60, 70, 80.

    With α = 2, β = γ = 0.5 the line of Ω is p·m = a⁴ / 10^(Ω/10). Its ends, where it leaves
    the box: Ω = 40: at a = 40, p·m = 2,560,000 / 10⁴ = 256; at a = 90 it would be 6561 > 2000,
    so it leaves at p·m = 2000, a = (2000·10⁴)^(1/4) = 66.874. Ω = 50: a = 40 at 25.6, a = 90 at
    656.1. Ω = 60: 2.56 and 65.61. Ω = 70: 0.256 and 6.561. Ω = 80: a = 40 at 0.0256 < 0.05, so it
    enters at p·m = 0.05, a = (0.05·10⁸)^(1/4) = 47.287, and leaves at a = 90, p·m = 0.6561."""
    _, _, svg = page
    expected = {40: (256, 40, 2000, 66.874), 50: (25.6, 40, 656.1, 90), 60: (2.56, 40, 65.61, 90),
                70: (0.256, 40, 6.561, 90), 80: (0.05, 47.287, 0.6561, 90)}  # p·m, a at each end
    got = {}
    for attrs, label in svg.figs["fig-top1-pm"]["iso"]:
        omega = float(attrs["data-omega"])
        assert label == f"Ω = {omega:g} dB"
        pm, top1 = ([float(v) for v in attrs[k].split()] for k in ("data-pm", "data-top1"))
        got[omega] = (pm[0], top1[0], pm[1], top1[1])
    assert sorted(got) == sorted(expected)
    for omega, ends in expected.items():
        assert got[omega] == pytest.approx(ends, rel=1e-4), omega
    for fig_id in FIGURE_IDS[:3]:
        assert not svg.figs[fig_id]["iso"]


def test_iso_netscore_other_exponents():
    """α = 1, β = γ = 1: Ω = 20·log10(a) − 20·log10(p·m), so a = 10^(Ω/20)·p·m: Ω = 0 is the
    diagonal a = p·m, from (1, 1) to (100, 100) of a box 1-100 by 1-100; Ω = 20 (a = 10·p·m)
    from (1, 10) to (10, 100). A line outside the box, or α = 0, gives None."""
    line = iso_netscore(0, 1, 1, (1, 100), (1, 100))
    assert (line.start, line.end) == (pytest.approx((1, 1)), pytest.approx((100, 100)))
    line = iso_netscore(20, 1, 1, (1, 100), (1, 100))
    assert (line.start, line.end) == (pytest.approx((1, 10)), pytest.approx((10, 100)))
    assert iso_netscore(60, 1, 1, (1, 100), (1, 100)) is None  # a = 1000·p·m > 100 everywhere
    assert iso_netscore(0, 0, 1, (1, 100), (1, 100)) is None


def test_beta_not_gamma_draws_no_lines():
    study = hand_study(beta=0.5, gamma=0.25)
    text = to_html(study)
    svg = Svg(text)
    assert not svg.figs["fig-top1-pm"]["iso"]
    assert "β ≠ γ (β = 0.5, γ = 0.25): NetScore is not a function of p·m alone" in text
    assert len(svg.points("fig-top1-pm")) == 6  # the points are still drawn


def no_accuracy_study():
    """The hand study with no accuracy for any model (and one that failed)."""
    study = hand_study()
    for r in study["rows"]:
        if r["error"] is None:
            r.update(top1=None, netscore=None, info_density=None, rank=None, accuracy_source="none",
                     ranks={"netscore": None, "top1": None, "info_density": None},
                     pareto={"macs": False, "params": False})
    return study


def test_no_accuracy_at_all():
    """The leaderboard lists every model, each figure is drawn empty and says why (the PNG:
    see test_png)."""
    text = to_html(no_accuracy_study())
    svg, tables = Svg(text), Page(text)
    assert len(tables.tables["study-leaderboard"]["rows"]) == 9
    for fig_id in FIGURE_IDS:
        assert svg.points(fig_id) == [] and tables.ids[fig_id] == "svg"
    assert text.count("0 of 9 model(s) drawn; left out: 8 without an accuracy, 1 failed.") == 2 * 4  # desc, caption


def test_one_model_round_levels():
    """One model (tiny: p·m = 0.1, a = 50, Ω = 77.96): the levels are round values around it,
    77.96 ± 5 in steps of 2.5: 72.5, 75, ..., 85. The axes: p·m 0.0909..0.11, within a decade, out
    to steps of 0.005: 0.09..0.11; top-1 45.45..55 out to steps of 2: 44..56. With p·m = a⁴/10^(Ω/10),
    only two lines cross that box: Ω = 77.5 from (0.09, (0.09·10^7.75)^¼ = 47.43) to (0.11, 49.87),
    Ω = 80 from (0.09, (9·10⁶)^¼ = 54.77) to where a = 56: p·m = 56⁴/10⁸ = 0.098345. (Ω = 75 at
    p·m = 0.11 is a = 43.19 < 44; Ω = 82.5 at 0.09 is 63.25 > 56.)"""
    study = hand_study()
    study["rows"] = study["rows"][:1]
    fig4 = figures(study)[3]
    assert (fig4.x.lo, fig4.x.hi, fig4.y.lo, fig4.y.hi) == pytest.approx((0.09, 0.11, 44, 56))
    assert [line.omega for line in fig4.lines] == [77.5, 80]
    assert fig4.lines[0].start + fig4.lines[0].end == pytest.approx((0.09, 47.43, 0.11, 49.87), abs=5e-3)
    assert fig4.lines[1].start + fig4.lines[1].end == pytest.approx((0.09, 54.77, 0.098345, 56), abs=5e-3)


def test_names_are_escaped(page):
    text, tables, svg = page
    assert EVIL not in text and "<b>" not in text
    assert "&lt;b&gt;&amp;&quot;x" in text
    assert tables.texts("study-leaderboard", "model")[2] == EVIL  # reads back unchanged
    assert EVIL in svg.labels("fig-density-top1")


def test_no_network_references(page):
    text, tables, _ = page
    assert set(re.findall(r"https?://[^\s\"'<>)]*", text)) <= {"http://www.w3.org/2000/svg"}
    assert not tables.refs
    assert "@import" not in text and "url(" not in text and "<link" not in text and "<script src" not in text
    assert text.count("<script") == 1


def test_axes_from_data():
    """Linear: 50..78 widened by 5% (1.4) is 48.6..79.4, out to steps of 10: 40..80; never below 0
    for values that are not. Log: 1e8..1e10 widened by 1.1 is 9.09e7..1.1e10, out to 1-2-5: 5e7..2e10."""
    x = linear_axis("a", [50, 78])
    assert (x.lo, x.hi, x.ticks) == (40, 80, (40, 50, 60, 70, 80))
    assert linear_axis("d", [0.78, 60]).lo == 0
    y = log_axis("m", [1e8, 1e10])
    assert (y.lo, y.hi) == pytest.approx((5e7, 2e10))
    assert y.ticks == pytest.approx((5e7, 1e8, 2e8, 5e8, 1e9, 2e9, 5e9, 1e10, 2e10))
    macs = figures(hand_study())[0].x  # 1e8..2e10 MACs: 9.09e7..2.2e10, out to 5e7..5e10, in SI units
    assert [macs.fmt(v) for v in macs.ticks] == ["50 M", "100 M", "200 M", "500 M", "1 G", "2 G", "5 G",
                                                 "10 G", "20 G", "50 G"]
    within = log_axis("a", [50, 78])  # 45.45..85.8, less than a decade: out to steps of 10
    assert (within.lo, within.hi, within.ticks) == (40, 90, (40, 50, 60, 70, 80, 90))
    wide = log_axis("pm", [0.01, 1e6])  # 0.005..2e6: more than 10 1-2-5 ticks, so powers of ten
    assert wide.ticks == pytest.approx(tuple(10.0 ** k for k in range(-2, 7)))
    wider = log_axis("pm", [1e-3, 1e9])  # 13 powers of ten: every other one
    assert wider.ticks == pytest.approx(tuple(10.0 ** k for k in range(-3, 10, 2)))


def test_size_key():
    # parameters 0.5 M .. 100 M: 1-2-5 values 0.5, 1, 2, 5, 10, 20, 50, 100 M; first, middle, last
    assert size_key(hand_study()) == (500_000, 10_000_000, 100_000_000)


def test_place_labels_nudges_and_drops():
    """Three labels 6 units wide at one spot: the first goes right of its point, the second left,
    the third a line up (right); a label with no room left in the bounds is dropped."""
    items = [(k, 50.0, 50.0, 2.0, "abc") for k in range(3)]
    spots = place_labels(items, (0, 0, 100, 100), char_w=2.0, line_h=10.0, gap=1.0)
    assert spots == {0: (53.0, 50.0, "start"), 1: (47.0, 50.0, "end"), 2: (53.0, 40.0, "start")}
    crowded = [(k, 5.0, 5.0, 1.0, "abcdef") for k in range(20)]  # labels 12 wide, 10 high
    spots = place_labels(crowded, (0, 0, 30, 12), char_w=2.0, line_h=10.0, gap=3.0)
    assert spots == {0: (9.0, 5.0, "start")}  # one line of room, right of the point (left: x < 0)


def synthetic(n=70, seed=3):
    """A zoo of ``n`` made-up models, ranked as the study would (the figures only read the dict)."""
    from onnxscore.study import competition_ranks, pareto_front

    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        p, m = 10 ** rnd.uniform(0, 2.5), 10 ** rnd.uniform(-1.3, 1.3)
        a = None if i % 23 == 5 else round(min(89.0, 50 + 8 * math.log10(p) + 6 * math.log10(m) + rnd.uniform(0, 9)), 2)
        rows.append(row(f"model_family_{i:02d}_variant", p, m, a))
    ok = [i for i, r in enumerate(rows) if r["top1"] is not None]
    for metric in ("netscore", "top1", "info_density"):
        ranks = competition_ranks({i: rows[i][metric] for i in ok})
        for i in ok:
            rows[i]["ranks"][metric] = ranks[i]
    for cost in ("macs", "params"):
        for i in pareto_front({i: (rows[i]["top1"], rows[i][cost]) for i in ok}):
            rows[i]["pareto"][cost] = True
    for r in rows:
        r["rank"] = r["ranks"]["netscore"]
    rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, r["model"]))
    study = hand_study()
    study.update(rows=rows, missing_accuracy=[r["model"] for r in rows if r["top1"] is None],
                 counts={"models": n, "analyzed": n, "cached": 0, "failed": 0})
    return study


def test_seventy_models_html():
    study = synthetic()
    with_accuracy = sum(1 for r in study["rows"] if r["top1"] is not None)
    assert 60 < with_accuracy < 70
    svg = Svg(to_html(study))
    for fig_id in FIGURE_IDS:
        assert len(svg.points(fig_id)) == with_accuracy, fig_id
        labels = svg.labels(fig_id)
        assert 0 < len(labels) < with_accuracy / 2, fig_id  # only the fronts and the ends are labelled
    assert len(figures(study)[0].labels) < 30


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_MAGIC and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


@pytest.mark.parametrize("study, dpi", [(hand_study(), 150), (synthetic(), 150), (synthetic(), 80),
                                        (no_accuracy_study(), 50)],
                         ids=["hand", "seventy", "seventy-80dpi", "no-accuracy"])
def test_png(study, dpi, tmp_path):
    pytest.importorskip("matplotlib", reason="the PNG needs matplotlib")
    from matplotlib.image import imread

    path = tmp_path / "study.png"
    plot_png(study, str(path), dpi=dpi)
    assert png_size(path) == (16 * dpi, 12.5 * dpi)  # FIGSIZE, 16 x 12.5 inches
    assert 20_000 < os.path.getsize(path) < 5_000_000
    pixels = imread(str(path))
    assert pixels.shape == (12.5 * dpi, 16 * dpi, 4)
    assert pixels[..., :3].std() > 0.05  # drawn on, not a blank canvas


def test_missing_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(UsageError, match="pip install matplotlib"):
        plot_png(hand_study(), str(tmp_path / "x.png"))
    assert not (tmp_path / "x.png").exists()


def test_import_does_not_need_matplotlib():
    code = "import sys, onnxscore.render.study_figures; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# A test-only script run after the page's own: sort by top-1 (one click on its header), then hover
# big's point in the first figure, as a user would.
CLICK_AND_HOVER = """<script>
document.querySelectorAll('#study-leaderboard thead th')[2].click();
document.querySelector('#fig-top1-macs circle.pt[data-model="big"]')
  .dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
</script></body>"""


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (apt-get install chromium)")
def test_chromium_renders_sorts_and_hovers(tmp_path):
    page = tmp_path / "study.html"
    page.write_text(to_html(hand_study()).replace("</body>", CLICK_AND_HOVER), encoding="utf-8")
    profile = tempfile.mkdtemp()
    try:
        dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                             capture_output=True, text=True, timeout=120).stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    tables, svg = Page(dom), Svg(dom)
    assert tables.ids.get("study-leaderboard") == "table" and tables.ids.get("study-correlations") == "table"
    for fig_id in FIGURE_IDS:
        assert len(svg.points(fig_id)) == len(DRAWN[fig_id]), fig_id
    # sorted by top-1, highest first; the models without one keep their order at the end
    assert [t.replace(" failed", "") for t in tables.texts("study-leaderboard", "model")] == [
        "huge", "big", "bloat", "mid", EVIL, "tiny", "nomacs", "noacc", "broken"]
    assert 'aria-sort="descending"' in dom
    # the hover: big's points and row are highlighted, the tooltip shows its figures
    tip = re.search(r'<div id="study-tip" class="tip"( hidden="")?>([^<]*)</div>', dom)
    assert tip and tip.group(1) is None and tip.group(2).startswith("big\n#4 by NetScore")
    assert len(re.findall(r'<circle class="pt front hl" data-i="3"', dom)) == 4
    assert re.search(r'<tr data-i="3" class="hl">', dom)



# --------------------------------------------------------------------------- with a device: a fifth figure

# Estimated ms on a made-up device (rank --device): bloat has none (left out); huge's is a lower
# bound (2 layers without an estimate); noacc has no accuracy, broken failed. Front of top-1
# against it, fastest first: nomacs (0.5 ms, 30), tiny (2, 50), mid (5, 70), <b>&"x (8, 60 < 70:
# no), big (20, 76), huge (100, 78).
EST = {"tiny": 2.0, "mid": 5.0, EVIL: 8.0, "big": 20.0, "huge": 100.0, "bloat": None, "noacc": 3.0,
       "nomacs": 0.5, "broken": None}
LATENCY_DRAWN = {"nomacs", "tiny", "mid", EVIL, "big", "huge"}
LATENCY_FRONT = LATENCY_DRAWN - {EVIL}


def device_study():
    data = hand_study()
    data["device"] = {"name": "toy-board", "float32": 1e12, "float16": None, "int8": None, "bandwidth": 1e9,
                      "layer_overhead_s": 0.0, "sources": ["made up"], "notes": "", "description": "",
                      "origin": "toy.toml"}
    for r in data["rows"]:
        r["est_latency_ms"] = EST[r["model"]]
        r["est_latency_unknown"] = None if r["error"] else 2 if r["model"] == "huge" else 0
        r["pareto"]["est_latency"] = r["model"] in LATENCY_FRONT
    data["pareto"]["est_latency"] = ["nomacs", "tiny", "mid", "big", "huge"]
    return data


def test_no_device_no_fifth_figure(page):
    text, tables, _ = page
    assert LATENCY_FIGURE_ID not in text and len(figures(hand_study())) == 4


def test_fifth_figure_top1_against_estimated_latency():
    text = to_html(device_study())
    tables, svg = Page(text), Svg(text)
    assert tables.ids[LATENCY_FIGURE_ID] == "svg"
    for fig_id in FIGURE_IDS:  # the other four as they were
        assert {p["data-model"] for p in svg.points(fig_id)} == DRAWN[fig_id]
    pts = svg.points(LATENCY_FIGURE_ID)
    assert len(pts) == len(LATENCY_DRAWN) and {p["data-model"] for p in pts} == LATENCY_DRAWN  # one per model
    assert {p["data-model"] for p in pts if "front" in p["class"].split()} == LATENCY_FRONT
    fig = figures(device_study())[4]
    assert fig.title == "Top-1 against estimated latency on toy-board" and fig.x.log and not fig.y.log
    assert fig.x.label == "estimated latency on toy-board (ms, log scale)"
    assert {(p.model, p.x, p.y) for p in fig.points} >= {("nomacs", 0.5, 30.0), ("huge", 100.0, 78.0)}
    # the front as a staircase, fastest first
    assert fig.step == ((0.5, 30.0), (2.0, 30.0), (2.0, 50.0), (5.0, 50.0), (5.0, 70.0), (20.0, 70.0), (20.0, 76.0),
                        (100.0, 76.0), (100.0, 78.0))
    assert any(a.get("class") == "pareto-step" for a in svg.figs[LATENCY_FIGURE_ID]["paths"])
    assert fig.caption() == ("6 of 9 model(s) drawn; left out: 1 without an accuracy, 1 without an estimated "
                             "latency, 1 failed. Roofline estimates from the device profile, not measurements; "
                             "1 a lower bound (layers without an estimate).")
    (tip,) = [t for a, t in svg.figs[LATENCY_FIGURE_ID]["circles"] if a.get("data-model") == "huge"]
    assert "estimated latency ≥ 100 ms on toy-board" in tip.split("\n")
    assert "Pareto front of top-1 against MACs and parameters and estimated latency" in tip
    # the leaderboard has the column
    assert tables.column("study-leaderboard", "est. latency (ms)")[:2] == [2.0, 5.0]


@pytest.mark.parametrize("dpi", [150, 60])
def test_png_with_a_device_is_a_2_by_3_grid(dpi, tmp_path):
    pytest.importorskip("matplotlib", reason="the PNG needs matplotlib")
    from matplotlib.image import imread

    path = tmp_path / "study.png"
    plot_png(device_study(), str(path), dpi=dpi)
    assert png_size(path) == (24 * dpi, 12.5 * dpi)  # FIGSIZE_DEVICE, 24 x 12.5 inches
    pixels = imread(str(path))
    assert pixels[..., :3].std() > 0.05
    # the fifth figure (second row, second column) is drawn on
    h, w = pixels.shape[:2]
    assert pixels[h // 2:, w // 3:2 * w // 3, :3].std() > 0.05


# --------------------------------------------------------------------------- measured latency (rank --measure)

# p50 ms as measured (made up): bloat could not be measured (left out); noacc has no accuracy,
# broken failed. Front of top-1 against it, fastest first: mid (3 ms, 70), tiny (4, 50 < 70: no),
# big (6, 76), nomacs (8, 30: no), <b>&"x (9, 60: no), huge (20, 78).
MEASURED = {"tiny": 4.0, "mid": 3.0, EVIL: 9.0, "big": 6.0, "huge": 20.0, "bloat": None, "noacc": 1.0,
            "nomacs": 8.0, "broken": None}
MEASURED_DRAWN = {"tiny", "mid", EVIL, "big", "huge", "nomacs"}
MEASURED_FRONT = {"mid", "big", "huge"}


def measured_study(data=None):
    data = data or hand_study()
    data["measure"] = {"runtime": "onnxruntime", "version": "9.9.9", "provider": "CPUExecutionProvider", "runs": 2,
                       "warmup": 1, "threads": None}
    for r in data["rows"]:
        p50 = MEASURED[r["model"]]
        r["latency_ms"], r["latency_p90_ms"] = p50, None if p50 is None else 1.5 * p50
        r["latency_error"] = "zoo/bloat.onnx: onnxruntime cannot load the model (made up)" if r["model"] == "bloat" \
            else None
        r["pareto"]["latency"] = r["model"] in MEASURED_FRONT
    data["pareto"]["latency"] = ["mid", "big", "huge"]
    return data


def test_no_measure_no_measured_figure(page):
    text, _, _ = page
    assert MEASURED_FIGURE_ID not in text
    assert MEASURED_FIGURE_ID not in {f.id for f in figures(device_study())}


def test_figure_top1_against_measured_latency():
    text = to_html(measured_study())
    tables, svg = Page(text), Svg(text)
    assert tables.ids[MEASURED_FIGURE_ID] == "svg" and LATENCY_FIGURE_ID not in text  # no device: no estimate
    pts = svg.points(MEASURED_FIGURE_ID)
    assert len(pts) == len(MEASURED_DRAWN) and {p["data-model"] for p in pts} == MEASURED_DRAWN
    assert {p["data-model"] for p in pts if "front" in p["class"].split()} == MEASURED_FRONT
    (fig,) = [f for f in figures(measured_study()) if f.id == MEASURED_FIGURE_ID]
    assert fig.title == "Top-1 against measured latency" and fig.x.log and not fig.y.log
    assert fig.x.label == "measured latency, p50 (ms, log scale)"
    assert fig.step == ((3.0, 70.0), (6.0, 70.0), (6.0, 76.0), (20.0, 76.0), (20.0, 78.0))
    assert fig.caption() == ("6 of 9 model(s) drawn; left out: 1 without an accuracy, 1 without a measured latency, "
                             "1 failed. p50 of 2 run(s) with onnxruntime 9.9.9 on this machine's CPU (its default "
                             "threads); measured times vary from run to run.")
    (tip,) = [t for a, t in svg.figs[MEASURED_FIGURE_ID]["circles"] if a.get("data-model") == "big"]
    assert "measured latency p50 6 ms, p90 9 ms" in tip.split("\n")
    assert "Pareto front of top-1 against MACs and parameters and measured latency" in tip
    assert tables.column("study-leaderboard", "latency p50 (ms)")[:2] == [4.0, 3.0]  # the study's order
    assert tables.column("study-leaderboard", "latency p90 (ms)")[:2] == [6.0, 4.5]
    assert "1 model(s) not measured (listed without a latency):" in text and "(made up)" in text


def test_with_a_device_both_latency_figures():
    data = measured_study(device_study())
    ids = [f.id for f in figures(data)]
    assert ids == [*FIGURE_IDS, LATENCY_FIGURE_ID, MEASURED_FIGURE_ID]
    tables = Page(to_html(data))
    header = tables.tables["study-leaderboard"]["header"]
    assert header[4:8] == ["MACs (count)", "est. latency (ms)", "latency p50 (ms)", "latency p90 (ms)"]
    assert tables.column("study-leaderboard", "est. latency (ms)")[:2] == [2.0, 5.0]
    assert tables.column("study-leaderboard", "latency p50 (ms)")[:2] == [4.0, 3.0]


@pytest.mark.parametrize("with_device, inches", [(False, (24, 12.5)), (True, (24, 13.5))])
def test_png_with_measured_latency(with_device, inches, tmp_path):
    pytest.importorskip("matplotlib", reason="the PNG needs matplotlib")
    from matplotlib.image import imread

    dpi = 60
    path = tmp_path / "study.png"
    plot_png(measured_study(device_study() if with_device else None), str(path), dpi=dpi)
    assert png_size(path) == (inches[0] * dpi, inches[1] * dpi)  # FIGSIZE_DEVICE, or FIGSIZE_SIX with both
    pixels = imread(str(path))
    h, w = pixels.shape[:2]
    # the last figure drawn on: the fifth (second row, middle) alone, the sixth (second row, right) with both
    column = slice(2 * w // 3, w) if with_device else slice(w // 3, 2 * w // 3)
    assert pixels[h // 2:, column, :3].std() > 0.05
