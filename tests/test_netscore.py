"""NetScore (Wong, arXiv:1806.05512): Omega = 20*log10(a^alpha / (p^beta * m^gamma))."""
import math

import pytest
from onnx import helper

import onnxscore
from onnxscore.netscore import ACCURACY_METADATA_KEY, netscore
from tests.test_walk import CONV_MACS, W_ELEMS, conv, model
from tests.opmodels import weight


def test_formula_by_hand():
    # a = 76.1 %, p = 25.557032 M, m = 4.089184 G:
    # 40*log10(76.1) - 10*log10(25.557032) - 10*log10(4.089184)
    expected = 40 * math.log10(76.1) - 10 * math.log10(25.557032) - 10 * math.log10(4.089184)
    ns = netscore(76.1, 25_557_032, 4_089_184_000)
    assert ns.value == pytest.approx(expected, abs=1e-9)
    assert ns.value == pytest.approx(75.26 - 14.08 - 6.12, abs=0.01)  # 40*1.8814, 10*1.4075, 10*0.6116
    assert ns.info_density == pytest.approx(76.1 / 25.557032)


def test_exponents_are_settable():
    ns = netscore(50.0, 1_000_000, 1_000_000_000, alpha=1, beta=1, gamma=1)
    assert ns.value == pytest.approx(20 * math.log10(50.0))  # p = 1 M, m = 1 G


def test_units_shift_by_constants():
    # a as a fraction instead of percent shifts every score by 20*2*log10(1/100) = -80
    a, p, m = 70.0, 5e6, 1e9
    in_percent = 20 * math.log10(a**2 / ((p / 1e6) ** 0.5 * (m / 1e9) ** 0.5))
    as_fraction = 20 * math.log10((a / 100) ** 2 / ((p / 1e6) ** 0.5 * (m / 1e9) ** 0.5))
    assert as_fraction - in_percent == pytest.approx(-80)
    assert netscore(a, int(p), int(m)).value == pytest.approx(in_percent)


@pytest.mark.parametrize("acc, params, macs, missing", [
    (None, 10, 10, "no accuracy"),
    (120.0, 10, 10, "not a top-1 percentage"),
    (50.0, 0, 10, "no parameters"),
    (50.0, 10, 0, "no MACs"),
])
def test_missing_inputs_say_why(acc, params, macs, missing):
    ns = netscore(acc, params, macs)
    assert ns.value is None and missing in ns.missing


def test_accuracy_from_metadata_and_option():
    m = model([conv()], [weight("w", [4, 3, 3, 3])])
    helper.set_model_props(m, {ACCURACY_METADATA_KEY: "61.5"})
    r = onnxscore.analyze(m)
    assert r.netscore.accuracy == 61.5
    assert r.netscore.value == pytest.approx(20 * math.log10(61.5**2 / ((W_ELEMS / 1e6) ** 0.5 * (CONV_MACS / 1e9) ** 0.5)))
    assert onnxscore.analyze(m, accuracy=70.0).netscore.accuracy == 70.0  # the option wins
