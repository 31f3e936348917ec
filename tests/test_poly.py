"""Integer polynomials in dimension names."""
import math

import pytest

from onnxscore.poly import NotPolynomial, Poly

seq, past = Poly.symbol("seq"), Poly.symbol("past")


def test_arithmetic_and_text():
    p = 2048 * seq * 6144 + 2 * seq * seq * 2048
    assert str(p) == "4096*seq**2 + 12582912*seq"
    assert p.evaluate({"seq": 128}) == 2048 * 128 * 6144 + 2 * 128 * 128 * 2048
    assert str(seq * (seq + past) - seq * past) == "seq**2"
    assert str(1 - seq) == "-seq + 1"
    assert math.prod([1, seq, 16, 128]) == 2048 * seq
    assert seq * 0 == 0 and isinstance(seq - seq, int)


def test_exact_division_only():
    assert (2048 * seq) // 16 == 128 * seq
    assert (seq * past * 4) // seq == 4 * past
    with pytest.raises(NotPolynomial):
        (3 * seq) // 2
    with pytest.raises(NotPolynomial):
        seq // (seq + 1)


@pytest.mark.parametrize("op", [lambda: seq < 3, lambda: int(seq), lambda: range(seq), lambda: seq % 2,
                                lambda: max(seq, 4)])
def test_needing_a_value_raises(op):
    with pytest.raises(TypeError):
        op()


def test_evaluate_needs_every_symbol():
    with pytest.raises(KeyError, match="past"):
        (seq * past).evaluate({"seq": 1})
