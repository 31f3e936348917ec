"""Pooling: AveragePool, MaxPool, LpPool, their Global forms, MaxRoiPool, RoiAlign and MaxUnpool.

Windowed pools read the number of output elements from the output shape (strides, pads,
dilations and ceil_mode are already in it) and charge every output element a full
``prod(kernel_shape)`` window, padded positions included. Window and bin bounds are index
arithmetic and are not counted.
"""
from __future__ import annotations

import math
from typing import Iterable, Tuple

import numpy as np

from onnxscore.ops.norm import lp_norm_flops
from onnxscore.ops.registry import CONTROL, Cost, Ctx, UnknownShape, numel, rule, zero_cost

# RoiAlign per bilinear sample and channel: w1*v1 + w2*v2 + w3*v3 + w4*v4, 4 multiplies and
# 3 adds ('max' mode: 4 multiplies and 3 max).
BILINEAR_FLOPS = 7

# RoiAlign per sample position (shared by every channel of a RoI): ly = y - y_low,
# lx = x - x_low, hy = 1 - ly, hx = 1 - lx (4 subs), then w1..w4 = hy*hx, hy*lx, ly*hx, ly*lx
# (4 multiplies).
BILINEAR_WEIGHT_FLOPS = 8


def kernel_elems(ctx: Ctx) -> int:
    """Elements of one pooling window: prod(kernel_shape)."""
    return numel(ctx.attr("kernel_shape"))


@rule("MaxPool", kind="pool")
def max_pool(ctx: Ctx) -> Cost:
    """Max over each window; the optional Indices output is free.

    FLOPs = outputs * (prod(kernel) - 1) compares.
    """
    return Cost.of_flops(ctx.out_numel(0) * (kernel_elems(ctx) - 1))


@rule("AveragePool", kind="pool")
def average_pool(ctx: Ctx) -> Cost:
    """Mean of each window (count_include_pad only changes the divisor).

    FLOPs = outputs * prod(kernel): prod(kernel) - 1 adds and 1 divide.
    """
    return Cost.of_flops(ctx.out_numel(0) * kernel_elems(ctx))


@rule("LpPool", kind="pool")
def lp_pool(ctx: Ctx) -> Cost:
    """p-norm of each window: p-th powers, sum, root.

    FLOPs = outputs * lp_norm_flops(p, prod(kernel)).
    """
    return Cost.of_flops(ctx.out_numel(0) * lp_norm_flops(float(ctx.attr("p", 2)), kernel_elems(ctx)))


def _planes(ctx: Ctx) -> Tuple[int, int]:
    """``(N * C, prod(spatial))`` of the input."""
    x = ctx.in_shape(0)
    return x[0] * x[1], numel(x[2:])


@rule("GlobalAveragePool", kind="pool")
def global_average_pool(ctx: Ctx) -> Cost:
    """Mean over all spatial positions: FLOPs = N * C * prod(spatial) (adds and 1 divide)."""
    planes, n = _planes(ctx)
    return Cost.of_flops(planes * n)


@rule("GlobalMaxPool", kind="pool")
def global_max_pool(ctx: Ctx) -> Cost:
    """Max over all spatial positions: FLOPs = N * C * (prod(spatial) - 1) compares."""
    planes, n = _planes(ctx)
    return Cost.of_flops(planes * max(n - 1, 0))


@rule("GlobalLpPool", kind="pool")
def global_lp_pool(ctx: Ctx) -> Cost:
    """p-norm over all spatial positions: FLOPs = N * C * lp_norm_flops(p, prod(spatial))."""
    planes, n = _planes(ctx)
    return Cost.of_flops(planes * lp_norm_flops(float(ctx.attr("p", 2)), n))


def _rois(ctx: Ctx, why: str) -> np.ndarray:
    """The constant RoI boxes, or UnknownShape: the cost depends on their values."""
    v = ctx.value(1)
    if v is None:
        raise UnknownShape([f"values of rois ({why})"], ctx.inputs[1].name)
    return np.asarray(v, dtype=np.float64).reshape(-1, v.shape[-1])


def _round_half_away(v: float) -> int:
    """C ``round``: halves away from zero."""
    return int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


def max_roi_bins(box: Iterable[float], scale: float, pooled: Tuple[int, int],
                 size: Tuple[int, int]) -> int:
    """Compares of one channel of one RoI: sum over bins of (bin elements - 1), empty bins 0.

    Bins follow the Caffe/ONNX Runtime definition: rounded scaled corners, an inclusive RoI of at
    least 1x1, bin b spanning [floor(b * roi / pooled), ceil((b + 1) * roi / pooled)) clipped.
    """
    x1, y1, x2, y2 = (_round_half_away(float(c) * scale) for c in box)
    spans = []
    for start, end, p, limit in ((y1, y2, pooled[0], size[0]), (x1, x2, pooled[1], size[1])):
        extent = max(end - start + 1, 1)
        spans.append([max(min(math.ceil((b + 1) * extent / p) + start, limit), 0)
                      - min(max(math.floor(b * extent / p) + start, 0), limit) for b in range(p)])
    return sum(h * w - 1 for h in spans[0] for w in spans[1] if h > 0 and w > 0)


@rule("MaxRoiPool", kind="pool", roles={1: CONTROL})
def max_roi_pool(ctx: Ctx) -> Cost:
    """Max over the bins of each RoI; bin sizes depend on the RoI boxes, so rois must be constant.

    FLOPs = C * sum over RoIs and bins of (bin elements - 1) compares.
    """
    x = ctx.in_shape(0)
    rois = _rois(ctx, "MaxRoiPool bins depend on the boxes")
    pooled = tuple(int(p) for p in ctx.attr("pooled_shape"))
    scale = float(ctx.attr("spatial_scale", 1.0))
    compares = sum(max_roi_bins(r[1:5], scale, pooled, (x[2], x[3])) for r in rois)
    return Cost.of_flops(x[1] * compares)


def roi_align_grids(ctx: Ctx, num_rois: int) -> Iterable[int]:
    """Samples per bin of each RoI: sampling_ratio^2, or the adaptive ceil(roi_h / out_h) *
    ceil(roi_w / out_w) computed from constant rois when sampling_ratio is 0."""
    ratio = int(ctx.attr("sampling_ratio", 0))
    if ratio > 0:
        return [ratio * ratio] * num_rois
    rois = _rois(ctx, "adaptive RoiAlign sampling_ratio=0 depends on the boxes")
    scale = float(ctx.attr("spatial_scale", 1.0))
    legacy = ctx.attr("coordinate_transformation_mode", "half_pixel") == "output_half_pixel"
    out_h, out_w = int(ctx.attr("output_height", 1)), int(ctx.attr("output_width", 1))
    grids = []
    for x1, y1, x2, y2 in rois[:, :4]:
        h, w = (y2 - y1) * scale, (x2 - x1) * scale
        if legacy:
            h, w = max(h, 1.0), max(w, 1.0)
        grids.append(max(math.ceil(h / out_h), 0) * max(math.ceil(w / out_w), 0))
    return grids


@rule("RoiAlign", kind="pool", roles={1: CONTROL, 2: CONTROL})
def roi_align(ctx: Ctx) -> Cost:
    """Average or max of bilinear samples in each output bin of each RoI.

    With S samples per bin (sampling_ratio^2, or adaptive from constant rois):
    FLOPs = sum over RoIs of bins * (BILINEAR_WEIGHT_FLOPS * S
            + C * (BILINEAR_FLOPS * S + reduce(S))), reduce = max(S, 1) for 'avg' (S - 1 adds and
    1 divide by max(S, 1)) or S - 1 'max' compares. Sample coordinates are index arithmetic.
    """
    y = ctx.out_shape(0)
    num_rois, channels, bins = y[0], y[1], y[2] * y[3]
    avg = ctx.attr("mode", "avg") == "avg"
    ratio = int(ctx.attr("sampling_ratio", 0))
    if ratio > 0:  # the same grid for every RoI: a formula in the RoI count when it is symbolic
        s = ratio * ratio
        reduce = max(s, 1) if avg else max(s - 1, 0)
        return Cost.of_flops(num_rois * bins * (BILINEAR_WEIGHT_FLOPS * s + channels * (BILINEAR_FLOPS * s + reduce)))
    flops = 0
    for s in roi_align_grids(ctx, num_rois):
        reduce = max(s, 1) if avg else max(s - 1, 0)
        flops += bins * (BILINEAR_WEIGHT_FLOPS * s + channels * (BILINEAR_FLOPS * s + reduce))
    return Cost.of_flops(flops)


zero_cost("MaxUnpool", kind="pool", why="scatters each value to its recorded index, zeros elsewhere",
          roles={1: CONTROL, 2: CONTROL})
