"""Normalisations: BatchNormalization, LayerNormalization, GroupNormalization,
InstanceNormalization, RMSNormalization, LpNormalization, MeanVarianceNormalization and LRN.

Counting follows each op's spec formula (the ONNX function body where there is one). A mean of
``n`` values is ``n - 1`` adds and 1 divide, so exactly 1 FLOP per element; a sum of ``n`` values
is ``n - 1`` adds. "Row" is the group of elements that share one mean and variance.
"""
from __future__ import annotations

from typing import Sequence

from onnxscore.ops.registry import BUFFER, WEIGHT, Cost, Ctx, numel, rule

# BatchNormalization in inference form, per element: y = x * s + b' (mul, add).
BN_FLOPS = 2

# BatchNormalization per channel, folding the statistics into s and b':
# s = scale / sqrt(var + eps) (add, sqrt, div) and b' = B - mean * s (mul, sub).
BN_FOLD_FLOPS_PER_CHANNEL = 5

# BatchNormalization training mode, per element: batch mean (1) and population variance of
# x - mean (sub, square, mean: 3).
BN_TRAIN_STATS_FLOPS = 4

# BatchNormalization training mode, per channel: running_mean and running_var are each
# input * momentum + current * (1 - momentum): 2 multiplies and 1 add each.
BN_RUNNING_FLOPS_PER_CHANNEL = 6

# Standardisation per element (Layer/Group/Instance norm): mean (1), x - mean (1), square (1),
# variance as the mean of the squares (1), multiply by the inverse standard deviation (1).
STANDARDIZE_FLOPS = 5

# Per row: add epsilon to the variance, sqrt, reciprocal.
INV_STD_FLOPS_PER_ROW = 3

# Affine per element: multiply by scale; add bias.
SCALE_FLOPS = 1
BIAS_FLOPS = 1

# RMSNormalization per element: square, mean of the squares (1), multiply by the inverse RMS,
# multiply by scale.
RMS_FLOPS = 4

# MeanVarianceNormalization per element (function body): mean (1), x^2 (1), mean of x^2 (1),
# x - mean (1), divide by the standard deviation (1).
MVN_FLOPS = 5

# MeanVarianceNormalization per row: square of the mean, E[x^2] - E[x]^2, sqrt, + epsilon.
MVN_FLOPS_PER_ROW = 4

# LRN per element, besides the window sum: square (each square is shared by the windows that
# hold it), times alpha/size, + bias, ^beta, x / that.
LRN_FLOPS = 5

# LpNormalization per element: x / norm.
LP_DIVIDE_FLOPS = 1

# p-norms (LpNormalization, LpPool, GlobalLpPool): |x|^p is 1 FLOP for p = 1 (abs) and p = 2
# (x * x), 2 otherwise (abs, pow); the final root is free for p = 1, else 1 (sqrt or pow).
LP_POWER_FLOPS_P12 = 1
LP_POWER_FLOPS = 2
LP_ROOT_FLOPS = 1


def lp_norm_flops(p: float, n: int) -> int:
    """FLOPs of the p-norm of ``n`` values: n powers, n - 1 adds, one root."""
    if n <= 0:
        return 0
    power = LP_POWER_FLOPS_P12 if p in (1, 2) else LP_POWER_FLOPS
    root = 0 if p == 1 else LP_ROOT_FLOPS
    return n * power + (n - 1) + root


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def standardize_flops(elements: int, rows: int, scale: bool, bias: bool) -> int:
    """FLOPs of ``(x - mean) / sqrt(var + eps) [* scale] [+ bias]`` over ``rows`` rows."""
    per_element = STANDARDIZE_FLOPS + (SCALE_FLOPS if scale else 0) + (BIAS_FLOPS if bias else 0)
    return elements * per_element + rows * INV_STD_FLOPS_PER_ROW


@rule("BatchNormalization", kind="norm", roles={1: WEIGHT, 2: WEIGHT, 3: BUFFER, 4: BUFFER})
def batch_normalization(ctx: Ctx) -> Cost:
    """Per-channel normalisation with fixed (inference) or batch (training) statistics.

    Inference: FLOPs = BN_FLOPS * numel + BN_FOLD_FLOPS_PER_CHANNEL * C.
    Training (training_mode=1, or the extra statistics outputs of older opsets): + the batch
    mean and variance, BN_TRAIN_STATS_FLOPS * numel, and BN_RUNNING_FLOPS_PER_CHANNEL * C.
    """
    x = ctx.in_shape(0)
    channels = x[1] if len(x) > 1 else 1
    flops = BN_FLOPS * numel(x) + BN_FOLD_FLOPS_PER_CHANNEL * channels
    if ctx.attr("training_mode", 0) or ctx.has_output(1):
        flops += BN_TRAIN_STATS_FLOPS * numel(x) + BN_RUNNING_FLOPS_PER_CHANNEL * channels
    return Cost.of_flops(flops)


@rule("LayerNormalization", kind="norm", roles={1: WEIGHT, 2: WEIGHT})
def layer_normalization(ctx: Ctx) -> Cost:
    """Standardise over axes ``[axis, rank)`` then scale and (optional) bias.

    FLOPs = numel * (STANDARDIZE + SCALE [+ BIAS]) + rows * INV_STD_FLOPS_PER_ROW,
    rows = prod(x[:axis]).
    """
    x = ctx.in_shape(0)
    rows = numel(x[:_axis(int(ctx.attr("axis", -1)), len(x))])
    return Cost.of_flops(standardize_flops(numel(x), rows, True, ctx.has_input(2)))


@rule("GroupNormalization", kind="norm", roles={1: WEIGHT, 2: WEIGHT})
def group_normalization(ctx: Ctx) -> Cost:
    """Standardise each (instance, group of channels), then per-channel scale and bias.

    FLOPs = numel * (STANDARDIZE + SCALE + BIAS) + N * num_groups * INV_STD_FLOPS_PER_ROW.
    """
    x = ctx.in_shape(0)
    rows = x[0] * int(ctx.attr("num_groups"))
    return Cost.of_flops(standardize_flops(numel(x), rows, True, True))


@rule("InstanceNormalization", kind="norm", roles={1: WEIGHT, 2: WEIGHT})
def instance_normalization(ctx: Ctx) -> Cost:
    """Standardise each (instance, channel) over its spatial elements, then scale and bias.

    FLOPs = numel * (STANDARDIZE + SCALE + BIAS) + N * C * INV_STD_FLOPS_PER_ROW.
    """
    x = ctx.in_shape(0)
    return Cost.of_flops(standardize_flops(numel(x), x[0] * x[1], True, True))


@rule("RMSNormalization", kind="norm", roles={1: WEIGHT})
def rms_normalization(ctx: Ctx) -> Cost:
    """``x / sqrt(mean(x^2) + eps) * scale`` over axes ``[axis, rank)``.

    FLOPs = RMS_FLOPS * numel + INV_STD_FLOPS_PER_ROW * rows, rows = prod(x[:axis]).
    """
    x = ctx.in_shape(0)
    rows = numel(x[:_axis(int(ctx.attr("axis", -1)), len(x))])
    return Cost.of_flops(RMS_FLOPS * numel(x) + INV_STD_FLOPS_PER_ROW * rows)


@rule("LpNormalization", kind="norm")
def lp_normalization(ctx: Ctx) -> Cost:
    """``x / ||x||_p`` along ``axis`` (p = 1 or 2).

    FLOPs = rows * (lp_norm_flops(p, n) + LP_DIVIDE_FLOPS * n), n = x[axis], rows = numel / n.
    """
    x = ctx.in_shape(0)
    n = x[_axis(int(ctx.attr("axis", -1)), len(x))]
    rows = numel(x) // n if n else 0
    p = int(ctx.attr("p", 2))
    return Cost.of_flops(rows * (lp_norm_flops(p, n) + LP_DIVIDE_FLOPS * n))


@rule("MeanVarianceNormalization", kind="norm")
def mean_variance_normalization(ctx: Ctx) -> Cost:
    """``(x - E[x]) / (sqrt(E[x^2] - E[x]^2) + eps)`` over ``axes`` (default [0, 2, 3]).

    FLOPs = MVN_FLOPS * numel + MVN_FLOPS_PER_ROW * rows, rows = numel / prod(x[axes]).
    """
    x = ctx.in_shape(0)
    axes: Sequence[int] = ctx.attr("axes") or [0, 2, 3]
    n = numel([x[_axis(int(a), len(x))] for a in axes])
    rows = numel(x) // n if n else 0
    return Cost.of_flops(MVN_FLOPS * numel(x) + MVN_FLOPS_PER_ROW * rows)


def lrn_window_adds(channels: int, size: int) -> int:
    """Adds of the cross-channel square sums: per channel c, (terms in its clipped window) - 1."""
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    return sum(min(channels - 1, c + hi) - max(0, c - lo) for c in range(channels))


@rule("LRN", kind="norm")
def lrn(ctx: Ctx) -> Cost:
    """Local response normalisation across channels, windows clipped at the channel edges.

    FLOPs = LRN_FLOPS * numel + N * prod(spatial) * sum_c (window_c - 1).
    """
    x = ctx.in_shape(0)
    positions = x[0] * numel(x[2:])
    return Cost.of_flops(LRN_FLOPS * numel(x)
                         + positions * lrn_window_adds(x[1], int(ctx.attr("size"))))
