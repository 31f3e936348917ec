"""The PNG with --device and --measure: a row of time charts under each model's counts.

The model is tests/test_cli_device.py's three layers (a MatMul, a Relu fused into it, a
Transpose); the estimate is made on the built-in raspberry-pi-5 profile or on the made-up toy
profile whose numbers make the shares arithmetic; measurements are made up (made-up seconds,
never onnxruntime), so no time is asserted that a clock gave."""
from __future__ import annotations

import dataclasses

import onnx
import pytest
from click.testing import CliRunner

from onnxscore.cli import main
from onnxscore.device import analyze_for_estimate, estimate, load_device, parse_profile
from onnxscore.render.plot import figure, op_type_shares, to_png
from tests.render.test_plot import png_size
from tests.test_cli_device import MM_S, PROFILE, T_S, TOTAL_S, tiny
from tests.test_measure_hotspots import made_up

@pytest.fixture
def mpl():
    return pytest.importorskip("matplotlib", reason="the PNG needs matplotlib")


@pytest.fixture(scope="module")
def analyzed():
    return analyze_for_estimate(tiny())


@pytest.fixture(scope="module")
def report(analyzed):
    return analyzed[0]


@pytest.fixture(scope="module")
def pi5(analyzed):
    report, info = analyzed
    return estimate(report, load_device("raspberry-pi-5"), info)


@pytest.fixture(scope="module")
def measured(report):
    m = made_up(report, {"/body/mm": 1.5e-3, "/body/relu": 0.5e-3, "/head/t": 3e-3})
    slow = next(x for x in m.layers if x.name == "/head/t")
    return dataclasses.replace(m, mislead=(slow,), spearman=0.5)


def titles(fig):
    return [ax.get_title(loc="left") for ax in fig.axes]


def drawn(reports, **kw):
    plt = pytest.importorskip("matplotlib.pyplot", reason="the PNG needs matplotlib")
    fig = figure(reports, **kw)
    try:
        return titles(fig), len(fig.axes)
    finally:
        plt.close(fig)


def test_without_timing_the_figure_is_the_counts_alone(report):
    names, n = drawn([report])
    assert names[:3] == ["Top 1 layers by MACs", "Share per block (scope depth 1)",
                         "MACs along the depth of the network"]
    assert n == 4  # three panels and the depth chart's twin axis (cumulative share)
    assert drawn([report], estimates=[None], measurements=[None]) == (names, n)


def test_without_timing_the_png_is_unchanged(mpl, report, tmp_path):
    plain, given_none = tmp_path / "plain.png", tmp_path / "none.png"
    to_png([report], str(plain))
    to_png([report], str(given_none), estimates=[None], measurements=[None])
    assert plain.read_bytes() == given_none.read_bytes()


def test_an_estimate_adds_a_row(report, pi5):
    names, n = drawn([report], estimates=[pi5])
    assert n == 4 + 2
    assert "Top 2 layers by estimated time on raspberry-pi-5" in names  # the Relu is fused: 0 s, no bar
    assert "Share of the estimated time on raspberry-pi-5 vs share of MACs, per op type" in names


def test_a_measurement_adds_a_row(report, measured):
    names, n = drawn([report], measurements=[measured])
    assert n == 4 + 2
    assert "Top 3 layers by measured time (onnxruntime)" in names
    assert "Where MACs mislead: share of measured time above share of MACs (Spearman 0.50)" in names


def test_both_add_two_rows_per_model_given_them(report, pi5, measured):
    names, n = drawn([report, report], estimates=[pi5, None], measurements=[None, measured])
    assert n == 2 * 4 + 2 + 2
    assert names.count("Top 1 layers by MACs") == 2
    assert sum(t.startswith("Top 2 layers by estimated time") for t in names) == 1
    assert sum(t.startswith("Top 3 layers by measured time") for t in names) == 1


def test_the_png_grows_by_the_rows(mpl, report, pi5, measured, tmp_path):
    plain, est, both = tmp_path / "plain.png", tmp_path / "est.png", tmp_path / "both.png"
    to_png([report], str(plain))
    to_png([report], str(est), estimates=[pi5])
    to_png([report], str(both), estimates=[pi5], measurements=[measured])
    (w0, h0), (w1, h1), (w2, h2) = png_size(plain), png_size(est), png_size(both)
    assert w0 == w1 == w2
    assert h0 < h1 < h2
    assert h2 > 2.5 * h0  # three rows of (at least) six bar slots


def test_op_type_shares_are_the_estimates_beside_the_macs(analyzed):
    """On the toy profile: the MatMul is 8.39 ms of 9.70 and all the MACs; the Transpose 1.31 ms
    and none; the Relu, fused into the MatMul, takes 0 s and has no row."""
    report, info = analyzed
    est = estimate(report, parse_profile(PROFILE), info)
    rows = op_type_shares(report, est)
    assert [r.op_type for r in rows] == ["MatMul", "Transpose"]
    assert [r.time for r in rows] == pytest.approx([MM_S / TOTAL_S, T_S / TOTAL_S])
    assert [r.macs for r in rows] == [1.0, 0.0]
    assert op_type_shares(report, est, limit=1) == rows[:1]


def test_analyze_plot_with_device(mpl, tmp_path):
    model, profile = tmp_path / "tiny.onnx", tmp_path / "toy.toml"
    onnx.save_model(tiny(), str(model))
    profile.write_text(PROFILE)
    plain, est = tmp_path / "plain.png", tmp_path / "est.png"
    for args in ((str(model), "--plot", str(plain)), (str(model), "--device", str(profile), "--plot", str(est))):
        res = CliRunner().invoke(main, ["analyze", *args, "--no-layers"])
        assert res.exit_code == 0, res.output
    assert png_size(est)[1] > png_size(plain)[1]
