"""Reductions, scans, TopK and Det.

A reduction of ``n_in`` input elements into ``n_out`` outputs performs ``n_in - n_out`` binary
combines (adds, compares or multiplies), whatever ``keepdims`` says: each output is a fold of its
``n_in / n_out`` inputs. Ops that transform elements before folding (abs, square, exp) or the
result after it (divide, sqrt, log) add the per-element steps named below, one FLOP each as in
:mod:`onnxscore.ops.registry`.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from onnxscore.ops.registry import CONTROL, Cost, Ctx, UnknownShape, numel, rule

# (FLOPs per input element before the fold, FLOPs per output element after it):
REDUCE_EXTRA_FLOPS = {
    "ReduceSum": (0, 0),
    "ReduceMax": (0, 0),
    "ReduceMin": (0, 0),
    "ReduceProd": (0, 0),
    # mean: one division per output.
    "ReduceMean": (0, 1),
    # sum |x|: one abs per input.
    "ReduceL1": (1, 0),
    # sqrt(sum x^2): one square per input, one sqrt per output.
    "ReduceL2": (1, 1),
    # sum x^2: one square per input.
    "ReduceSumSquare": (1, 0),
    # log(sum x): one log per output.
    "ReduceLogSum": (0, 1),
    # log(sum exp(x)), as the spec defines it: one exp per input, one log per output.
    "ReduceLogSumExp": (1, 1),
}


def _reduction_is_noop(ctx: Ctx) -> bool:
    """True when ``noop_with_empty_axes=1`` and no axes are given (the op is an identity)."""
    if not ctx.attr("noop_with_empty_axes", 0) or ctx.attr("axes") is not None:
        return False
    if not ctx.has_input(1):
        return True
    axes = ctx.value(1)
    if axes is not None:
        return axes.size == 0
    try:
        return numel(ctx.in_shape(1)) == 0
    except UnknownShape:
        return False


@rule(*REDUCE_EXTRA_FLOPS, kind="reduce", roles={1: CONTROL})
def reduce(ctx: Ctx) -> Cost:
    """A Reduce* op; axes (input 1 from opset 13/18, an attribute before) are CONTROL.

    flops = (n_in - n_out) + n_in * per_input + n_out * per_output (REDUCE_EXTRA_FLOPS);
    0 when ``noop_with_empty_axes=1`` and axes are empty.
    """
    if _reduction_is_noop(ctx):
        return Cost()
    n_in, n_out = ctx.in_numel(0), ctx.out_numel(0)
    per_input, per_output = REDUCE_EXTRA_FLOPS[ctx.op_type]
    return Cost.of_flops((n_in - n_out) + n_in * per_input + n_out * per_output)


@rule("ArgMax", "ArgMin", kind="reduce")
def arg_reduce(ctx: Ctx) -> Cost:
    """ArgMax/ArgMin: a compare-fold along ``axis``.

    flops = n_in - n_out compares (each row of n costs n - 1).
    """
    return Cost.of_flops(ctx.in_numel(0) - ctx.out_numel(0))


def _axis_length(shape: Tuple[int, ...], axis: int) -> int:
    return shape[int(axis) % len(shape)]


@rule("CumSum", "CumProd", kind="scan", roles={1: CONTROL})
def cumulative(ctx: Ctx) -> Cost:
    """CumSum/CumProd along the axis given by input 1 (CONTROL, needs a constant value).

    flops = rows * (n - 1) adds/muls for an inclusive scan of rows of length n, and
    rows * (n - 2) for ``exclusive=1`` (the first output is 0 or 1, the second a copy).
    """
    shape = ctx.in_shape(0)
    value = ctx.value(1)
    if value is not None:
        axis = int(np.asarray(value).reshape(-1)[0])
    elif len(shape) == 1:
        axis = 0
    else:
        raise UnknownShape([f"axis of {ctx.op_type}"], ctx.name)
    n = _axis_length(shape, axis)
    rows = numel(shape) // n if n else 0
    per_row = max(n - 2, 0) if ctx.attr("exclusive", 0) else max(n - 1, 0)
    return Cost.of_flops(rows * per_row)


@rule("TopK", kind="sort", roles={1: CONTROL})
def topk(ctx: Ctx) -> Cost:
    """TopK along ``axis``; K (input 1 from opset 10, attribute before) is CONTROL.

    Counted as a bounded binary heap of k items: each of the n elements of a row descends at
    most the heap's ``floor(log2 k) + 1`` levels with one compare per level, so
    flops = rows * n * (floor(log2 k) + 1) compares (n per row for k = 1; sorting the k results
    is included in the heap bound). k is read from the output shape.
    """
    x = ctx.in_shape(0)
    y = ctx.out_shape(0)
    axis = ctx.attr("axis", -1)
    n = _axis_length(x, axis)
    k = _axis_length(y, axis)
    rows = numel(x) // n if n else 0
    return Cost.of_flops(rows * n * int(k).bit_length())


@rule("Det", kind="linalg")
def det(ctx: Ctx) -> Cost:
    """Det of ``[*, n, n]`` matrices by LU factorisation with partial pivoting.

    Per matrix: elimination step j (j = n-1 .. 1 rows and columns left) updates j*j entries
    with one multiply-add each, so macs = sum j^2 = (n-1) n (2n-1) / 6 (~n^3/3); plus
    n(n-1)/2 pivot-search compares, n(n-1)/2 multiplier divisions and n - 1 multiplies for
    the product of the pivots: extra flops = n^2 - 1.
    """
    x = ctx.in_shape(0)
    n = x[-1]
    batch = numel(x[:-2])
    macs = (n - 1) * n * (2 * n - 1) // 6
    extra = n * n - 1 if n > 0 else 0
    return Cost.of_macs(batch * macs, batch * extra)
