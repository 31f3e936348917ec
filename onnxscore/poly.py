"""Integer polynomials in dimension names: the exact cost of a model whose dims are symbolic.

``Poly.symbol("seq") * 2048 * 6144`` is ``12582912*seq``; products, sums and exact division by
an integer or a monomial stay polynomials. Anything else (comparing, ``int()`` of a
non-constant, inexact division) raises :class:`NotPolynomial`, a ``TypeError``, so a rule that
needs a concrete value fails loudly and its cost is reported unknown, never guessed.
"""
from __future__ import annotations

from typing import Dict, Mapping, Tuple, Union

Monomial = Tuple[Tuple[str, int], ...]  # ((name, power), ...) sorted by name; () is the constant
Number = Union[int, "Poly"]


class NotPolynomial(TypeError):
    """An operation whose result is not an integer polynomial (or needs a concrete value)."""


def _mul_mono(a: Monomial, b: Monomial) -> Monomial:
    powers: Dict[str, int] = dict(a)
    for name, p in b:
        powers[name] = powers.get(name, 0) + p
    return tuple(sorted(powers.items()))


class Poly:
    """An immutable polynomial with integer coefficients; a constant one is an ``int``."""

    __slots__ = ("terms",)

    def __init__(self, terms: Mapping[Monomial, int]):
        self.terms: Dict[Monomial, int] = {m: c for m, c in terms.items() if c}

    @classmethod
    def symbol(cls, name: str) -> "Poly":
        return cls({((name, 1),): 1})

    @staticmethod
    def lift(x: Number) -> "Poly":
        if isinstance(x, Poly):
            return x
        if isinstance(x, bool) or not isinstance(x, int):
            raise NotPolynomial(f"not an integer: {x!r}")
        return Poly({(): x})

    @staticmethod
    def simplify(p: "Poly") -> Number:
        """A constant polynomial as a plain int."""
        if not p.terms:
            return 0
        if len(p.terms) == 1 and () in p.terms:
            return p.terms[()]
        return p

    # arithmetic -----------------------------------------------------------------------------
    def __add__(self, other: Number) -> Number:
        other = Poly.lift(other)
        terms = dict(self.terms)
        for m, c in other.terms.items():
            terms[m] = terms.get(m, 0) + c
        return Poly.simplify(Poly(terms))

    __radd__ = __add__

    def __neg__(self) -> Number:
        return Poly.simplify(Poly({m: -c for m, c in self.terms.items()}))

    def __sub__(self, other: Number) -> Number:
        return self + (-Poly.lift(other))

    def __rsub__(self, other: Number) -> Number:
        return Poly.lift(other) + (-self)

    def __mul__(self, other: Number) -> Number:
        other = Poly.lift(other)
        terms: Dict[Monomial, int] = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in other.terms.items():
                m = _mul_mono(m1, m2)
                terms[m] = terms.get(m, 0) + c1 * c2
        return Poly.simplify(Poly(terms))

    __rmul__ = __mul__

    def __pow__(self, k: int) -> Number:
        if not isinstance(k, int) or k < 0:
            raise NotPolynomial(f"power {k!r}")
        out: Number = 1
        for _ in range(k):
            out = out * self
        return out

    def __floordiv__(self, other: Number) -> Number:
        """Exact division by an int or a monomial; anything inexact is not a polynomial."""
        other = Poly.lift(other)
        if len(other.terms) != 1:
            raise NotPolynomial(f"division by {other}")
        (mono, coef), = other.terms.items()
        divisor = dict(mono)
        terms: Dict[Monomial, int] = {}
        for m, c in self.terms.items():
            powers = dict(m)
            if c % coef or any(powers.get(n, 0) < p for n, p in divisor.items()):
                raise NotPolynomial(f"({self}) / ({other}) is not exact")
            left = {n: p - divisor.get(n, 0) for n, p in powers.items() if p - divisor.get(n, 0)}
            terms[tuple(sorted(left.items()))] = c // coef
        return Poly.simplify(Poly(terms))

    def __rfloordiv__(self, other: Number) -> Number:
        return Poly.lift(other) // self

    def __truediv__(self, other: Number) -> Number:
        return self // other

    def __mod__(self, other):
        raise NotPolynomial("a remainder needs concrete dimensions")

    def __int__(self) -> int:
        raise NotPolynomial(f"{self} is not a concrete integer")

    __index__ = __int__

    def __float__(self) -> float:
        raise NotPolynomial(f"{self} is not a concrete number")

    def __bool__(self) -> bool:
        return bool(self.terms)

    def _compare(self, other):
        raise NotPolynomial(f"comparing {self} needs concrete dimensions")

    __lt__ = __le__ = __gt__ = __ge__ = _compare

    def __eq__(self, other) -> bool:
        if isinstance(other, (int, Poly)) and not isinstance(other, bool):
            return self.terms == Poly.lift(other).terms
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.terms.items())))

    # use ------------------------------------------------------------------------------------
    @property
    def symbols(self) -> Tuple[str, ...]:
        return tuple(sorted({n for m in self.terms for n, _ in m}))

    def evaluate(self, values: Mapping[str, int]) -> int:
        missing = [s for s in self.symbols if s not in values]
        if missing:
            raise KeyError(f"no value for {', '.join(missing)}")
        total = 0
        for m, c in self.terms.items():
            term = c
            for name, p in m:
                term *= int(values[name]) ** p
            total += term
        return total

    def __str__(self) -> str:
        """Highest degree first: ``98304*seq**2 + 1310885888*seq`` (Python syntax)."""
        def degree(m):
            return -sum(p for _, p in m), m

        parts = []
        for m in sorted(self.terms, key=degree):
            c = self.terms[m]
            factors = [name if p == 1 else f"{name}**{p}" for name, p in m]
            body = "*".join(([str(abs(c))] if abs(c) != 1 or not factors else []) + factors)
            parts.append(("- " if c < 0 else "+ ") + body)
        text = " ".join(parts)
        return text[2:] if text.startswith("+ ") else "-" + text[2:]

    __repr__ = __str__


def formula(x: Number) -> str:
    """An int or a Poly as text."""
    return str(x)


def evaluate(x: Number, values: Mapping[str, int]) -> int:
    return x.evaluate(values) if isinstance(x, Poly) else int(x)
