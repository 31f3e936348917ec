"""Human units: the only place raw integers become "4.09 G" or "97.7 MiB"."""
from __future__ import annotations

from typing import Optional, Sequence

_SI = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))
_BIN = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))


def printable(text: str) -> str:
    """``text`` on one line, as UTF-8 can hold it: a name or a message. The bytes of a file name
    that is not UTF-8 (which Python carries as lone surrogates, see ``os.fsdecode``) read
    ``\\xff``; control characters are escaped (``\\n``, ``\\x1b``: a newline in a file name does
    not break a line, an escape sequence does not reach the terminal)."""
    return _encodable(text).translate(_CONTROLS)


def utf8(text: str) -> bytes:
    """A document (lines and all) encoded; the bytes of a name that is not UTF-8 as ``\\xff``."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _encodable(text).encode("utf-8")


def _encodable(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: written as the bytes they stand for
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a surrogate that no undecodable byte made
            raw = text.encode("utf-8", "surrogatepass")
        return raw.decode("utf-8", "backslashreplace")
    return text


_CONTROLS = {i: f"\\x{i:02x}" for i in (*range(32), 127)}
_CONTROLS.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def si(n: Optional[float], digits: int = 3) -> str:
    """1234567 -> '1.23 M'; None (unknown) -> '?'."""
    if n is None:
        return "?"
    for scale, suffix in _SI:
        if abs(n) >= scale:
            return f"{n / scale:.{digits}g} {suffix}"
    return f"{n:.{digits}g}" if isinstance(n, float) else str(n)


def binary_bytes(n: Optional[int]) -> str:
    """Bytes in KiB/MiB/GiB (powers of 1024)."""
    if n is None:
        return "?"
    for scale, suffix in _BIN:
        if n >= scale:
            return f"{n / scale:.3g} {suffix}"
    return f"{n} B"


def shape(s) -> str:
    """(1, 3, 224, 224) -> '1x3x224x224'; symbolic dims by name, in parentheses when the name
    is not a plain word (a formula, ``x:2``, ``nms@/NonMaxSuppression``); unknown rank -> '?'."""
    if s is None:
        return "?"
    if len(s) == 0:
        return "scalar"
    return "x".join("?" if d is None else str(d) if isinstance(d, int) or str(d).isidentifier()
                    else f"({d})" for d in s)


def shapes(ss: Sequence) -> str:
    return ", ".join(shape(s) for s in ss if s is not None) if ss else ""


def percent(part: Optional[int], whole: int) -> str:
    if not part or not whole:
        return ""
    return f"{100 * part / whole:.1f}%"


class Formula(str):
    """A cell that holds an expression in symbolic dims, a polynomial cost (``512*seq**2 +
    393216*seq``) or a shape (``1xseqx128``): the text table moves a long one under its row,
    Markdown sets it as code (its ``*`` are not emphasis)."""


def shape_cell(s) -> str:
    """:func:`shape`, a :class:`Formula` when a dim is symbolic."""
    text = shape(s)
    return Formula(text) if s and any(d is not None and not isinstance(d, int) for d in s) else text


def cost_text(x):
    """An exact cost as a cell: a Poly as a :class:`Formula`, an int in SI units, blank for 0."""
    if x is not None and not isinstance(x, int):
        return Formula(x)
    return si(x) if x else ""
