"""Integer polynomials in dimension names."""
import math

import pytest

from onnxscore.poly import Floor, NotPolynomial, Poly, ceildiv, floordiv, mod

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


# Rounded division by a positive integer: Floor atoms -----------------------------------------

H, W = Poly.symbol("H"), Poly.symbol("W")


def test_exact_rounded_division_is_the_plain_quotient():
    assert floordiv(7 * H + 14, 7) == H + 2 and ceildiv(7 * H, 7) == H
    assert floordiv(2048 * seq, 16) == (2048 * seq) // 16
    assert mod(14 * H * W, 7) == 0 and isinstance(mod(14 * H, 7), int)
    assert floordiv(22, 7) == 3 and ceildiv(22, 7) == 4 and mod(-1, 7) == 6  # ints stay ints
    assert floordiv(H + 3, 7) != floordiv(H, 7)  # H + 3 is not a multiple of 7


def test_window_partition():
    p = floordiv(H + 6, 7)
    assert str(p) == "(H + 6)//7" and p.symbols == ("H",)
    assert p.evaluate({"H": 56}) == 8  # 62 // 7
    assert p.evaluate({"H": 57}) == 9  # 63 // 7
    assert p == ceildiv(H, 7)


def test_divisible_part_comes_out():
    assert str(floordiv(H + 7, 7)) == "H//7 + 1"
    assert floordiv(H + 7, 7) == floordiv(H, 7) + 1
    q = floordiv(2 * H + 14, 7)  # floor((2H + 14)/7) = floor(2H/7) + 2
    assert str(q) == "2*H//7 + 2"
    assert q.evaluate({"H": 10}) == 4  # 34 // 7
    assert floordiv(2 * H, 4) == floordiv(H, 2)  # common factor of the rest and the divisor
    assert str(floordiv(9 * H - 1, 7)) == "(2*H + 6)//7 + H - 1"  # 9H - 1 = 7*(H - 1) + (2H + 6)


def test_swin_pad():
    pad = ceildiv(H, 7) * 7 - H
    assert str(pad) == "7*((H + 6)//7) - H"
    assert pad.evaluate({"H": 56}) == 0  # 56 is 8 windows
    assert pad.evaluate({"H": 50}) == 6  # 50 + 6 = 56
    other = mod(7 - mod(H, 7), 7)  # Swin's own (7 - H % 7) % 7
    assert [other.evaluate({"H": h}) for h in (50, 56, 57)] == [6, 0, 6]


def test_strided_conv_output():
    out = floordiv(H + 2 * 1 - 3, 2) + 1  # k=3, s=2, p=1
    assert out == floordiv(H + 1, 2) and str(out) == "(H + 1)//2"
    assert out.evaluate({"H": 224}) == 112
    assert out.evaluate({"H": 225}) == 113
    twice = floordiv(out + 2 * 1 - 3, 2) + 1  # floor((floor((H+1)/2) + 1)/2) = floor((H + 3)/4)
    assert str(twice) == "(H + 3)//4"
    assert [twice.evaluate({"H": h}) for h in (224, 225, 227)] == [56, 57, 57]  # 224->112->56, 225->113->57


def test_atoms_in_a_cost():
    windows = floordiv(H, 7) * floordiv(W, 7)
    cost = windows * 49 * 96  # tokens * C
    assert str(cost) == "4704*(H//7)*(W//7)"
    assert cost.symbols == ("H", "W")
    assert cost.evaluate({"H": 224, "W": 230}) == 32 * 32 * 49 * 96  # 230 // 7 = 32
    assert (cost + H * W).evaluate({"H": 7, "W": 14}) == 1 * 2 * 4704 + 7 * 14
    assert cost // (49 * 96) == windows  # exact division still works with atoms
    assert cost // floordiv(H, 7) == 4704 * floordiv(W, 7)  # an atom divides like a symbol


def test_equal_atoms_compare_and_hash_equal():
    a, b = floordiv(H + 6, 7), ceildiv(H - 1 + 1, 7)
    assert a == b and hash(a) == hash(b)
    (mono, _), = a.terms.items()
    atom = mono[0][0]
    assert isinstance(atom, Floor) and atom == Floor(Poly.lift(H + 6), 7) and atom != "(H + 6)//7"
    assert len({a, b, floordiv(H + 13, 7) - 1}) == 1
    assert sorted(["W", atom, "H"]) == [atom, "H", "W"]  # by text: "(" sorts before letters
    assert floordiv(H, 7) * W == W * floordiv(H, 7)
    with pytest.raises(AttributeError):
        atom.den = 3


def test_inexact_operators_still_raise():
    with pytest.raises(NotPolynomial):
        (H + 6) // 7
    with pytest.raises(NotPolynomial):
        (H + 6) / 7
    with pytest.raises(NotPolynomial):
        H % 7
    with pytest.raises(NotPolynomial):
        floordiv(H, 7) < 3
    with pytest.raises(NotPolynomial):
        int(floordiv(H, 7))
    with pytest.raises(NotPolynomial):
        floordiv(H, W)
    with pytest.raises(ValueError):
        ceildiv(H, 0)


def test_evaluate_needs_symbols_inside_atoms():
    with pytest.raises(KeyError, match="W"):
        (H + floordiv(W, 7)).evaluate({"H": 1})


EXPRESSIONS = [
    lambda h, w: floordiv(h + 6, 7),
    lambda h, w: ceildiv(h, 7) * 7 - h,
    lambda h, w: mod(7 - mod(h, 7), 7),
    lambda h, w: floordiv(floordiv(h - 1, 2) + 1 - 1, 2) + 1,
    lambda h, w: floordiv(3 * floordiv(h, 7) * w, 2) - ceildiv(w * w + h, 5),
    lambda h, w: floordiv(h, 7) ** 2 * (w - 1) - floordiv(h, 7) * w,
    lambda h, w: -floordiv(h, 4) + floordiv(-3 * h + w, 6) + 2,
    lambda h, w: mod(floordiv(h * w, 3) + 5, 4) * floordiv(w, 2),
]


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_formula_text_is_python_and_agrees_with_ints(expr):
    p = expr(H, W)
    for h in range(0, 40):
        for w in (1, 2, 7, 9, 16):
            values = {"H": h, "W": w}
            expected = expr(h, w)  # the same expression on plain ints
            assert p.evaluate(values) == expected, (p, values)
            assert eval(str(p), {}, dict(values)) == expected, (str(p), values)
