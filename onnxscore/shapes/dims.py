"""Dimensions and small integer values as the shape rules compute with them.

A dimension is an ``int``, a name a user can set (``str``), a
:class:`~onnxscore.poly.Poly` in such names, or ``None`` when nothing is known (ONNX's own
``unk__N`` names count as unknown). A *symbolic value* is the element tuple of a 0-D or 1-D
integer tensor whose elements are such dimensions (a shape computed with ``Shape``).
"""
from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from onnx import NodeProto

from onnxscore.poly import NotPolynomial, Poly, floordiv, mod

Dim = object  # int | str | None
Shape = Optional[Tuple[Dim, ...]]
Value = Optional[Tuple[Dim, ...]]  # a 0-D or 1-D integer tensor's elements


def is_unknown(d) -> bool:
    return d is None or (isinstance(d, str) and d.startswith("unk__"))


def _known(d) -> bool:
    return not is_unknown(d)


def merge(onnx_shape: Shape, ours: Shape) -> Shape:
    """ONNX's shape with its unknown dimensions filled from ours (same rank only); a number we
    computed also replaces a name ONNX carried (a subgraph's declared ``batch`` that the
    caller's concrete shapes decide)."""
    if ours is None:
        return onnx_shape
    if onnx_shape is None:
        return ours
    if len(onnx_shape) != len(ours):
        return onnx_shape
    return tuple(o if (_known(o) and not (isinstance(o, str) and isinstance(m, int))) or is_unknown(m)
                 else m for o, m in zip(onnx_shape, ours))


def broadcast(shapes: Sequence[Shape]) -> Shape:
    if any(s is None for s in shapes):
        return None
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        not_one = [d for d in dims if d != 1]
        known = [d for d in not_one if _known(d)]
        if not not_one:
            out.append(1)
        elif known:
            out.append(known[0])
        else:
            out.append(None)
    return tuple(out)


def as_poly(d):
    """A dim as something to compute with: an int, a Poly, or None when not known."""
    if isinstance(d, (int, Poly)) and not isinstance(d, bool):
        return d
    if isinstance(d, str) and not is_unknown(d):
        return Poly.symbol(d)
    return None


def as_dim(x):
    """A computed dim as the table stores it: a single symbol as its name, else int or Poly."""
    if isinstance(x, Poly) and len(x.terms) == 1:
        (mono, coef), = x.terms.items()
        if coef == 1 and len(mono) == 1 and mono[0][1] == 1 and isinstance(mono[0][0], str):
            return mono[0][0]
    return x


def arith(op: str, a: Dim, b: Dim) -> Dim:
    """``a op b`` on dims, exact or None: ints, names and polynomials alike."""
    a, b = as_poly(a), as_poly(b)
    if a is None or b is None:
        return None
    try:
        if op == "Add":
            return as_dim(a + b)
        if op == "Sub":
            return as_dim(a - b)
        if op == "Mul":
            return as_dim(a * b)
        if op == "Div" and b:
            if isinstance(a, int) and isinstance(b, int):  # ONNX's integer Div truncates
                return abs(a) // abs(b) * (1 if (a >= 0) == (b > 0) else -1)
            if isinstance(b, int) and b > 0:  # a dim divided by a constant: exact floor
                return as_dim(floordiv(a, b))
            return as_dim(a // b)
        if op == "Mod" and b:
            if isinstance(b, int) and (b > 0 or isinstance(a, int)):
                return as_dim(mod(a, b)) if b > 0 else a % b
    except NotPolynomial:
        return None
    return None


def reshape(in_shape: Shape, target: Value, allowzero: int) -> Shape:
    if target is None:
        return None
    copy = not allowzero  # a 0 in the target copies the input's dim (unknown when it is)
    out = [(in_shape[i] if in_shape is not None and i < len(in_shape) else None)
           if (t == 0 and copy) else t for i, t in enumerate(target)]
    if out.count(-1) == 1 and in_shape is not None:
        i = out.index(-1)
        out[i] = quotient(in_shape, out[:i] + out[i + 1:])
    return tuple(None if (isinstance(d, int) and d < 0) else d for d in out)


def quotient(total: Sequence[Dim], part: Sequence[Dim]) -> Dim:
    """prod(total) / prod(part), when it divides exactly (names cancelling)."""
    num, den = [as_poly(d) for d in total], [as_poly(d) for d in part]
    if any(d is None for d in num + den):
        return None
    try:
        return as_dim(math.prod(num) // math.prod(den))
    except (NotPolynomial, ZeroDivisionError):
        return None


Prop = Callable[[NodeProto, List[Shape], List[Value], dict], Tuple[List[Shape], List[Value]]]
DEFAULT_RULES: Dict[str, Prop] = {}  # op_type -> rule, default domain
CONTRIB_RULES: Dict[str, Prop] = {}  # op_type -> rule, com.microsoft
ML_RULES: Dict[str, Prop] = {}  # op_type -> rule, ai.onnx.ml


def register(table: Dict[str, Prop], *ops: str):
    """A decorator putting a propagation function in ``table`` under each of ``ops``."""
    def register(fn: Prop) -> Prop:
        for op in ops:
            table[op] = fn
        return fn
    return register


# Window arithmetic of convolutions and pools, shared by the default-domain and contrib rules.


def str_attr(attrs: dict, name: str, default: str) -> str:
    v = attrs.get(name, default)
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def is_int(d) -> bool:
    return isinstance(d, int) and not isinstance(d, bool)


def int_list(attrs: dict, name: str, n: int, fill: int) -> List[int]:
    v = attrs.get(name)
    return [int(x) for x in v] if v else [fill] * n


def window_out(size, kernel: int, stride: int = 1, pad_begin: int = 0, pad_end: int = 0,
               dilation: int = 1, auto_pad: str = "NOTSET", ceil_mode: bool = False) -> Optional[int]:
    """Output length of one spatial axis of a convolution or pooling window, or None.

    ``floor((size + pad_begin + pad_end - dilation*(kernel - 1) - 1) / stride) + 1``; with
    ``ceil_mode`` the ceiling, less the last window when it would start in the end padding
    (what onnxruntime computes); SAME_UPPER/SAME_LOWER ``ceil(size / stride)``; VALID no pads.
    A ``size`` that is not an int (a symbolic spatial dim) gives None.
    """
    if not all(is_int(v) for v in (size, kernel, stride, dilation)) or stride <= 0:
        return None
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return -(-size // stride)
    if auto_pad == "VALID":
        pad_begin = pad_end = 0
    room = size + pad_begin + pad_end - (dilation * (kernel - 1) + 1)
    if room < 0:
        return None
    if not ceil_mode:
        return room // stride + 1
    out = -(-room // stride) + 1
    return out - 1 if (out - 1) * stride >= size + pad_begin else out


def transposed_windows(x: Sequence, w: Sequence, attrs: dict, pads: Optional[Sequence] = None) -> Optional[tuple]:
    """The output of a transposed convolution (ConvTranspose, the ONNX spec): ``[N, W[1] *
    group, *out]`` with, per spatial axis, ``out = stride*(in - 1) + output_padding +
    dilation*(kernel - 1) + 1 - pad_begin - pad_end``, ``in*stride`` under SAME_UPPER or
    SAME_LOWER, the ``output_shape`` attribute's dims when it is given. ``in`` may be symbolic
    (a name, a polynomial): so is ``out``. ``pads``: the node's when they are not its
    attribute (an input's value; None in it when not known). None when ``x``, ``w`` and the
    attributes do not fit together."""
    if x is None or w is None or len(x) < 3 or len(w) != len(x):
        return None
    n = len(x) - 2
    channels = arith("Mul", w[1], int(attrs.get("group", 1)))
    given = attrs.get("output_shape")
    if given and len(given) >= n:  # (some exporters write N and C too: the last n are spatial)
        return (x[0], channels, *(int(d) for d in given[-n:]))
    kernel = attrs.get("kernel_shape") or w[2:]
    auto_pad = str_attr(attrs, "auto_pad", "NOTSET")
    strides, dilations = int_list(attrs, "strides", n, 1), int_list(attrs, "dilations", n, 1)
    extra = int_list(attrs, "output_padding", n, 0)
    if auto_pad == "VALID":
        pads = [0] * (2 * n)
    elif pads is None:
        pads = int_list(attrs, "pads", 2 * n, 0)
    if len(kernel) != n or len(pads) != 2 * n:
        return None
    out = []
    for a in range(n):
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out.append(arith("Mul", x[2 + a], strides[a]))
        elif not (is_int(kernel[a]) and is_int(pads[a]) and is_int(pads[a + n])):
            out.append(None)
        else:
            fixed = extra[a] + dilations[a] * (kernel[a] - 1) + 1 - pads[a] - pads[a + n] - strides[a]
            out.append(arith("Add", arith("Mul", x[2 + a], strides[a]), fixed))
    return (x[0], channels, *out)


def windows(spatial: Sequence, kernel: Sequence, attrs: dict, ceil_mode: bool = False) -> tuple:
    """The output spatial dims of ``spatial`` under the node's strides, pads, dilations, auto_pad."""
    n = len(kernel)
    strides, dilations = int_list(attrs, "strides", n, 1), int_list(attrs, "dilations", n, 1)
    pads = int_list(attrs, "pads", 2 * n, 0)
    auto_pad = str_attr(attrs, "auto_pad", "NOTSET")
    return tuple(window_out(spatial[a], kernel[a], strides[a], pads[a], pads[a + n], dilations[a],
                            auto_pad, ceil_mode) for a in range(n))
