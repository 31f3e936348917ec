"""Integer polynomials in dimension names: the exact cost of a model whose dims are symbolic.

``Poly.symbol("seq") * 2048 * 6144`` is ``12582912*seq``; products, sums and exact division by
an integer or a monomial stay polynomials. Anything else (comparing, ``int()`` of a
non-constant, inexact division with ``//``, ``/`` or ``%``) raises :class:`NotPolynomial`, a
``TypeError``, so a rule that needs a concrete value fails loudly and its cost is reported
unknown, never guessed.

Where a shape really is a rounded quotient (a strided conv's ``(H + 2 - 3) // 2 + 1``, a window
partition's ``(H + 6) // 7``), a rule says so explicitly with :func:`floordiv`, :func:`ceildiv`
or :func:`mod` by a positive integer. An inexact quotient becomes a :class:`Floor` atom, one
integer ``floor(q / k)``, which a monomial holds like a dimension name:
``floordiv(H, 7) * floordiv(W, 7) * 49`` is ``49*(H//7)*(W//7)``, still exact, still Python.
"""
from __future__ import annotations

import math
import operator
from typing import Dict, Mapping, Tuple, Union

Name = Union[str, "Floor"]
Monomial = Tuple[Tuple[Name, int], ...]  # ((name, power), ...) sorted by name; () is the constant
Number = Union[int, "Poly"]


class NotPolynomial(TypeError):
    """An operation whose result is not an integer polynomial (or needs a concrete value)."""


def _order(name: Name) -> Tuple[str, bool]:
    """How names sort in a monomial: by their text, a plain name before an atom of equal text."""
    return str(name), isinstance(name, Floor)


def _mono(powers: Mapping[Name, int]) -> Monomial:
    return tuple(sorted(((n, p) for n, p in powers.items() if p), key=lambda np: _order(np[0])))


def _mul_mono(a: Monomial, b: Monomial) -> Monomial:
    powers: Dict[Name, int] = dict(a)
    for name, p in b:
        powers[name] = powers.get(name, 0) + p
    return _mono(powers)


def _value(name: Name, values: Mapping[str, int]) -> int:
    return name.evaluate(values) if isinstance(name, Floor) else int(values[name])


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
        """Exact division by an int or a monomial; anything inexact is not a polynomial (a
        rounded quotient is :func:`floordiv`, asked for by name)."""
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
            terms[_mono({n: p - divisor.get(n, 0) for n, p in powers.items()})] = c // coef
        return Poly.simplify(Poly(terms))

    def __rfloordiv__(self, other: Number) -> Number:
        return Poly.lift(other) // self

    def __truediv__(self, other: Number) -> Number:
        return self // other

    def __mod__(self, other):
        raise NotPolynomial("a remainder needs concrete dimensions (or an explicit poly.mod)")

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
        return hash(frozenset(self.terms.items()))

    # use ------------------------------------------------------------------------------------
    @property
    def symbols(self) -> Tuple[str, ...]:
        """The dimension names a user can set (``--dim``), those inside atoms included."""
        names = set()
        for m in self.terms:
            for n, _ in m:
                names.update(n.symbols if isinstance(n, Floor) else (n,))
        return tuple(sorted(names))

    def evaluate(self, values: Mapping[str, int]) -> int:
        missing = [s for s in self.symbols if s not in values]
        if missing:
            raise KeyError(f"no value for {', '.join(missing)}")
        total = 0
        for m, c in self.terms.items():
            term = c
            for name, p in m:
                term *= _value(name, values) ** p
            total += term
        return total

    def __str__(self) -> str:
        """Highest degree first: ``98304*seq**2 + 1310885888*seq`` (Python syntax); an atom is
        bare only where Python's precedence keeps it whole (``H//7 + 1``), else in parentheses
        (``49*(H//7)*(W//7)``)."""
        def degree(m):
            return -sum(p for _, p in m), [(_order(n), p) for n, p in m]

        parts = []
        for m in sorted(self.terms, key=degree):
            c = self.terms[m]
            lone = len(m) == 1 and m[0][1] == 1 and (c == 1 or (c == -1 and parts))
            factors = [_factor(name, p, lone) for name, p in m]
            body = "*".join(([str(abs(c))] if abs(c) != 1 or not factors else []) + factors)
            parts.append(("- " if c < 0 else "+ ") + body)
        text = " ".join(parts)
        return text[2:] if text.startswith("+ ") else "-" + text[2:]

    __repr__ = __str__


def _factor(name: Name, p: int, lone: bool) -> str:
    text = str(name)
    if isinstance(name, Floor) and not lone:
        text = f"({text})"
    return text if p == 1 else f"{text}**{p}"


class Floor:
    """``floor(num / den)`` as one integer: an atom a monomial holds like a dimension name.

    Made only by :func:`floordiv`, in its canonical form: ``den >= 2``, every coefficient of
    ``num`` (its constant too) in ``[0, den)`` and their gcd with ``den`` is 1, so equal
    expressions built the same way compare and hash equal. Atoms sort among names by their text
    (``str``), which is Python: ``(H + 6)//7``.
    """

    __slots__ = ("num", "den", "_text")

    def __init__(self, num: "Poly", den: int):
        inner = str(num)
        text = f"{inner}//{den}" if len(num.terms) == 1 else f"({inner})//{den}"
        object.__setattr__(self, "num", num)
        object.__setattr__(self, "den", den)
        object.__setattr__(self, "_text", text)

    def __setattr__(self, name, value):
        raise AttributeError("a Floor atom is immutable")

    def __copy__(self) -> "Floor":
        return self  # immutable: a copy is the atom itself (dataclasses.asdict deep-copies)

    def __deepcopy__(self, memo) -> "Floor":
        return self

    def __reduce__(self):
        return Floor, (self.num, self.den)

    @property
    def symbols(self) -> Tuple[str, ...]:
        return self.num.symbols

    def evaluate(self, values: Mapping[str, int]) -> int:
        return self.num.evaluate(values) // self.den

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Floor({self._text})"

    def __eq__(self, other) -> bool:
        if isinstance(other, Floor):
            return self.den == other.den and self.num == other.num
        if isinstance(other, str):
            return False
        return NotImplemented

    def __hash__(self) -> int:
        return hash((Floor, self._text))

    def _cmp(self, other, op):
        if isinstance(other, (str, Floor)):
            return op(_order(self), _order(other))
        return NotImplemented

    def __lt__(self, other):
        return self._cmp(other, operator.lt)

    def __le__(self, other):
        return self._cmp(other, operator.le)

    def __gt__(self, other):
        return self._cmp(other, operator.gt)

    def __ge__(self, other):
        return self._cmp(other, operator.ge)


def _integer(x, what: str) -> Number:
    if isinstance(x, Poly):
        return x
    if isinstance(x, bool):
        raise NotPolynomial(f"{what} {x!r} is not an integer")
    try:
        return operator.index(x)
    except TypeError:
        raise NotPolynomial(f"{what} {x!r} is not an integer") from None


def _divisor(k) -> int:
    k = _integer(k, "divisor")
    if isinstance(k, Poly):
        raise NotPolynomial(f"rounded division by {k}: only a positive integer divisor is supported")
    if k <= 0:
        raise ValueError(f"rounded division by {k}: the divisor must be a positive integer")
    return k


def floordiv(p: Number, k: int) -> Number:
    """``floor(p / k)`` for an int or Poly ``p`` and a positive int ``k``, exactly.

    An int for an int; the plain quotient when every coefficient divides; else the part of
    ``p`` divisible by ``k`` plus a :class:`Floor` atom of the rest:
    ``floor((k*a + r) / k) = a + floor(r / k)``, so ``floordiv(H + 7, 7)`` is ``H//7 + 1``. A
    nested atom folds, ``floor((floor(x/a) + s) / k) = floor((x + a*s) / (a*k))``, so two
    stride-2 convs give ``(H + 3)//4``, not a quotient of a quotient.
    """
    p, k = _integer(p, "dividend"), _divisor(k)
    if not isinstance(p, Poly):
        return p // k
    whole: Dict[Monomial, int] = {}
    rest: Dict[Monomial, int] = {}
    for m, c in p.terms.items():
        whole[m], rest[m] = divmod(c, k)
    rest = {m: c for m, c in rest.items() if c}
    quotient = Poly.simplify(Poly(whole))
    if not rest or list(rest) == [()]:  # 0 <= constant < k
        return quotient
    g = math.gcd(k, *rest.values())
    rest, k = {m: c // g for m, c in rest.items()}, k // g
    for m, c in rest.items():
        if c == 1 and len(m) == 1 and m[0][1] == 1 and isinstance(m[0][0], Floor):
            inner: Floor = m[0][0]
            others = Poly({n: d for n, d in rest.items() if n != m})
            return quotient + floordiv(inner.num + inner.den * others, inner.den * k)
    return quotient + Poly({((Floor(Poly(rest), k), 1),): 1})


def ceildiv(p: Number, k: int) -> Number:
    """``ceil(p / k)`` for an int or Poly ``p`` and a positive int ``k``: ``floordiv(p + k - 1, k)``."""
    p, k = _integer(p, "dividend"), _divisor(k)
    return -(-p // k) if not isinstance(p, Poly) else floordiv(p + (k - 1), k)


def mod(p: Number, k: int) -> Number:
    """``p mod k`` in ``[0, k)`` (Python's ``%``) for a positive int ``k``: ``p - k*floordiv(p, k)``."""
    p, k = _integer(p, "dividend"), _divisor(k)
    return p % k if not isinstance(p, Poly) else p - k * floordiv(p, k)


def formula(x: Number) -> str:
    """An int or a Poly as text."""
    return str(x)


def evaluate(x: Number, values: Mapping[str, int]) -> int:
    return x.evaluate(values) if isinstance(x, Poly) else int(x)
