"""Resampling, signal processing, losses, detection and text ops.

Counting follows :mod:`onnxscore.ops.registry`: one FLOP per add, mul, div, compare and per
elementary-function evaluation; index and address arithmetic is never counted. Where the op's
work depends on values (NMS, n-gram matching) the count is the worst case, stated in the rule.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from onnxscore.ops.elementwise import LOG_SOFTMAX_FLOPS
from onnxscore.ops.registry import CONTROL, Cost, Ctx, InvalidNode, UnknownShape, numel, rule

# Taps per axis of each interpolation mode (Resize, Upsample, GridSample spell them
# differently); nearest picks one input value and does no arithmetic.
INTERP_TAPS = {"nearest": 0, "linear": 2, "bilinear": 2, "cubic": 4, "bicubic": 4}
# Grid coordinate unnormalisation, ``x * a + b`` for both align_corners modes: mul, add.
GRID_UNNORMALIZE_FLOPS = 2
# FFT of length N: (N/2) log2 N radix-2 butterflies of one complex mul (4 mul + 2 add) and two
# complex adds (2 + 2), i.e. 5 N log2 N for complex data, the convention of FFTW's benchmarks;
# real data (a real input or a real output) costs half, 2.5 N log2 N.
FFT_FLOPS_PER_NLOG2N = 5
# Inverse DFT: the 1/N scaling, one mul per output scalar (real and imaginary parts).
IDFT_SCALE_FLOPS = 1
# w[n] = a0 - a1*cos(2*pi*n/N): angle mul, cos, mul by a1, sub (Hann, Hamming).
COSINE_WINDOW_FLOPS = 4
# Blackman adds + a2*cos(4*pi*n/N): angle mul, cos, mul by a2, add.
BLACKMAN_WINDOW_FLOPS = COSINE_WINDOW_FLOPS + 4
# A triangular mel filter entry: (f - edge) / (centre - edge): sub, div.
MEL_WEIGHT_FLOPS = 2
# NLL per target: negate the picked log-probability.
NLL_FLOPS = 1
# ... times its class weight, when weights are given.
NLL_WEIGHT_FLOPS = 1
# IoU of a pair with precomputed areas: intersection (2 max, 2 min, 2 sub, 2 clamps at 0, 1 mul
# = 9), union (add, sub), ratio (div), threshold compare: 13.
IOU_FLOPS = 13
# Area of a box, (x2 - x1) * (y2 - y1): sub, sub, mul.
BOX_AREA_FLOPS = 3
# center_point_box=1: halve w and h (2 mul) and form x1, x2, y1, y2 (4 add/sub).
CENTER_BOX_FLOPS = 6
# One compare per score against score_threshold.
SCORE_THRESHOLD_FLOPS = 1
# TfIdf: one count increment per candidate n-gram window (worst case: every window matches).
NGRAM_COUNT_FLOPS = 1
# TfIdf IDF/TFIDF modes: one select or mul by the n-gram weight per output element.
NGRAM_WEIGHT_FLOPS = 1


def _taps(mode: str) -> int:
    try:
        return INTERP_TAPS[mode]
    except KeyError:
        raise ValueError(f"unknown interpolation mode {mode!r}") from None


def interp_flops(taps: Sequence[int]) -> int:
    """FLOPs to interpolate one output point from a separable ``taps[0] x taps[1] x ...`` stencil.

    Axes are collapsed one at a time, the axis with the most taps first: collapsing an axis of
    t taps costs one weighted sum (t mul + t - 1 add) for each point of the remaining stencil.
    flops = sum_i (2 t_i - 1) * prod_{j > i} t_j; e.g. bilinear 2*3 + 3 = 9, bicubic 4*7 + 7 = 35.
    """
    ordered = sorted((t for t in taps if t > 0), reverse=True)
    total = 0
    for i, t in enumerate(ordered):
        total += (2 * t - 1) * math.prod(ordered[i + 1:])
    return total


def _antialias_taps(taps: int, n_in: int, n_out: int) -> int:
    """Taps of a kernel stretched for downsampling: ``2 * ceil(half_width * n_in / n_out)``."""
    if n_out >= n_in:
        return taps
    return 2 * -(-(taps // 2) * n_in // n_out)


@rule("Resize", "Upsample", kind="resize", roles={1: CONTROL, 2: CONTROL, 3: CONTROL})
def resize(ctx: Ctx) -> Cost:
    """Resize/Upsample; roi, scales and sizes are CONTROL.

    The resized axes are those whose output length differs from the input's. Per output
    element: 0 for ``nearest``; ``interp_flops`` of 2 taps per resized axis for ``linear``
    (3 * (2^r - 1): 9 for 2-D) and 4 taps for ``cubic`` (35 for 2-D). With ``antialias=1`` a
    downsampled axis uses the reference implementation's stretched kernel of
    ``2 * ceil(half_width * n_in / n_out)`` taps. Interpolation weights are per output
    coordinate along each axis and not counted.
    """
    taps = _taps(ctx.attr("mode", "nearest"))
    if taps == 0:
        return Cost()
    x, y = ctx.in_shape(0), ctx.out_shape(0)
    antialias = ctx.op_type == "Resize" and ctx.attr("antialias", 0)
    axis_taps = [_antialias_taps(taps, i, o) if antialias else taps
                 for i, o in zip(x, y) if i != o]
    return Cost.of_flops(numel(y) * interp_flops(axis_taps))


@rule("GridSample", kind="resize")
def grid_sample(ctx: Ctx) -> Cost:
    """GridSample of ``X [N, C, D1..Dr]`` at ``grid [N, O1..Or, r]``.

    flops = numel(grid) * GRID_UNNORMALIZE_FLOPS + numel(Y) * interp_flops(taps per axis,
    over all r spatial axes): bilinear 9 and bicubic 35 per output element in 2-D, nearest 0.
    """
    grid, y = ctx.in_shape(1), ctx.out_shape(0)
    r = grid[-1]
    spatial = len(ctx.in_shape(0)) - 2
    if r != spatial:
        raise InvalidNode(f"GridSample's grid ends in {r} coordinates, but X has {spatial} spatial dims")
    taps = _taps(ctx.attr("mode", "linear"))
    return Cost.of_flops(numel(grid) * GRID_UNNORMALIZE_FLOPS + numel(y) * interp_flops([taps] * r))


@rule("AffineGrid", kind="resize", roles={1: CONTROL})
def affine_grid(ctx: Ctx) -> Cost:
    """AffineGrid: each grid point is ``theta [r, r+1]`` times the homogeneous base point.

    macs = numel(grid) * (r + 1), i.e. ``N * prod(spatial) * r * (r+1)``; the base grid is a
    constant linspace (not counted). The size input is CONTROL.
    """
    grid = ctx.out_shape(0)
    return Cost.of_macs(numel(grid) * (grid[-1] + 1))


def fft_flops(n: int, real: bool) -> int:
    """FLOPs of one FFT of length n: 5 n log2 n (complex) or half of it (real data)."""
    if n <= 1:
        return 0
    flops = FFT_FLOPS_PER_NLOG2N * n * math.log2(n)
    return int(round(flops / 2 if real else flops))


def _scalar(ctx: Ctx, i: int) -> Optional[int]:
    v = ctx.value(i)
    return None if v is None else int(np.asarray(v).reshape(-1)[0])


@rule("DFT", kind="signal", roles={1: CONTROL, 2: CONTROL})
def dft(ctx: Ctx) -> Cost:
    """DFT along one axis, counted as an FFT; dft_length and axis are CONTROL.

    flops = transforms * fft_flops(N, real) (+ numel(Y) * IDFT_SCALE_FLOPS when inverse), where
    transforms is the product of the output dims other than the axis and the last (real/imag)
    one, N the transform length, and ``real`` whether the input or output is real (last dim 1).
    Non-power-of-two lengths use the same N log2 N formula (a mixed-radix estimate).
    """
    y = ctx.out_shape(0)
    x = ctx.in_shape(0)
    if ctx.opset and ctx.opset < 20:
        axis = ctx.attr("axis", 1)
    else:
        axis = _scalar(ctx, 2) if ctx.has_input(2) else -2
        if axis is None:
            raise UnknownShape([f"axis of {ctx.name}"], ctx.name)
    axis %= len(y)
    onesided, inverse = ctx.attr("onesided", 0), ctx.attr("inverse", 0)
    n = _scalar(ctx, 1) if ctx.has_input(1) else None
    if n is None:
        if onesided and not inverse:
            if ctx.has_input(1):
                raise UnknownShape([f"dft_length of {ctx.name}"], ctx.name)
            n = x[axis]
        else:
            n = y[axis]
    transforms = numel(y) // (y[axis] * y[-1])
    flops = transforms * fft_flops(n, real=x[-1] == 1 or y[-1] == 1)
    if inverse:
        flops += numel(y) * IDFT_SCALE_FLOPS
    return Cost.of_flops(flops)


@rule("STFT", kind="signal", roles={1: CONTROL, 2: CONTROL, 3: CONTROL})
def stft(ctx: Ctx) -> Cost:
    """STFT: a window multiply and an FFT per frame; frame_step, window, frame_length are CONTROL.

    flops = batch * frames * (fft_flops(N, real) + window), with window = N muls per frame for
    a real signal (2N complex) when a window is given; N is frame_length, else the window's
    length (the spec requires them equal), else the output's bins when two-sided, else the signal
    length when frame_length is absent.
    """
    x, y = ctx.in_shape(0), ctx.out_shape(0)
    n = _scalar(ctx, 3) if ctx.has_input(3) else None
    if n is None:
        if ctx.has_input(2):
            n = ctx.in_shape(2)[0]
        elif not ctx.has_input(3):
            n = x[1]
        elif not ctx.attr("onesided", 1):
            n = y[2]
        else:
            raise UnknownShape([f"frame_length of {ctx.name}"], ctx.name)
    real = x[-1] == 1
    per_frame = fft_flops(n, real) + ((n if real else 2 * n) if ctx.has_input(2) else 0)
    return Cost.of_flops(y[0] * y[1] * per_frame)


WINDOW_FLOPS = {"HannWindow": COSINE_WINDOW_FLOPS, "HammingWindow": COSINE_WINDOW_FLOPS,
                "BlackmanWindow": BLACKMAN_WINDOW_FLOPS}


@rule(*WINDOW_FLOPS, kind="signal", roles={0: CONTROL})
def window(ctx: Ctx) -> Cost:
    """A generalised cosine window of the given size (CONTROL).

    flops = size * COSINE_WINDOW_FLOPS (Hann, Hamming) or size * BLACKMAN_WINDOW_FLOPS.
    """
    return Cost.of_flops(ctx.out_numel(0) * WINDOW_FLOPS[ctx.op_type])


@rule("MelWeightMatrix", kind="signal", roles={i: CONTROL for i in range(5)})
def mel_weight_matrix(ctx: Ctx) -> Cost:
    """MelWeightMatrix ``[dft_length/2 + 1, num_mel_bins]``; all inputs are CONTROL scalars.

    flops = numel(output) * MEL_WEIGHT_FLOPS (upper bound: every entry on a filter's slope).
    """
    return Cost.of_flops(ctx.out_numel(0) * MEL_WEIGHT_FLOPS)


def _nll_flops(ctx: Ctx, targets: int, weighted: bool) -> int:
    flops = targets * (NLL_FLOPS + (NLL_WEIGHT_FLOPS if weighted else 0))
    reduction = ctx.attr("reduction", "mean")
    if reduction in ("sum", "mean"):
        flops += targets - 1
    if reduction == "mean":
        flops += 1 + ((targets - 1) if weighted else 0)
    return flops


@rule("NegativeLogLikelihoodLoss", kind="loss", roles={1: CONTROL, 2: CONTROL})
def nll_loss(ctx: Ctx) -> Cost:
    """NegativeLogLikelihoodLoss; target indices and class weights (loss settings) are CONTROL.

    With T = numel(target): T * NLL_FLOPS (+ T * NLL_WEIGHT_FLOPS with weights); reduction
    "sum" adds T - 1; "mean" adds T - 1 and one division (and T - 1 more adds for the weight
    total with weights).
    """
    return Cost.of_flops(_nll_flops(ctx, ctx.in_numel(1), ctx.has_input(2)))


@rule("SoftmaxCrossEntropyLoss", kind="loss", roles={1: CONTROL, 2: CONTROL})
def softmax_cross_entropy(ctx: Ctx) -> Cost:
    """SoftmaxCrossEntropyLoss: a log-softmax over the classes, then the NLL of the labels.

    flops = numel(scores) * LOG_SOFTMAX_FLOPS + the NegativeLogLikelihoodLoss count.
    """
    flops = ctx.in_numel(0) * LOG_SOFTMAX_FLOPS
    return Cost.of_flops(flops + _nll_flops(ctx, ctx.in_numel(1), ctx.has_input(2)))


@rule("NonMaxSuppression", kind="detection", roles={2: CONTROL, 3: CONTROL, 4: CONTROL})
def non_max_suppression(ctx: Ctx) -> Cost:
    """NonMaxSuppression of ``boxes [B, S, 4]`` and ``scores [B, C, S]``; worst case.

    Per batch: S * (BOX_AREA_FLOPS [+ CENTER_BOX_FLOPS]). Per batch and class: the score sort
    as TopK counts it, S * (floor(log2 S) + 1) compares, S threshold compares when
    score_threshold is given, and IoU of every pair once, S(S-1)/2 * IOU_FLOPS (greedy NMS
    with no box suppressed and no output limit).
    """
    b, s, _ = ctx.in_shape(0)
    classes = ctx.in_shape(1)[1]
    per_box = BOX_AREA_FLOPS + (CENTER_BOX_FLOPS if ctx.attr("center_point_box", 0) else 0)
    per_class = s * s.bit_length() + s * (s - 1) // 2 * IOU_FLOPS
    if ctx.has_input(4):
        per_class += s * SCORE_THRESHOLD_FLOPS
    return Cost.of_flops(b * (s * per_box + classes * per_class))


@rule("TfIdfVectorizer", kind="text")
def tfidf_vectorizer(ctx: Ctx) -> Cost:
    """TfIdfVectorizer over rows of L tokens; worst case, every candidate n-gram matches.

    Candidates per row: for each n in [min_gram_length, max_gram_length] and each skip in
    [0, max_skip_count] (a single skip for n = 1), ``max(L - (n-1)(skip+1), 0)`` windows.
    flops = rows * candidates * NGRAM_COUNT_FLOPS (+ numel(Y) * NGRAM_WEIGHT_FLOPS for IDF and
    TFIDF). Matching a window against the pool is a lookup, not arithmetic.
    """
    x = ctx.in_shape(0)
    length = x[-1]
    rows = numel(x[:-1])
    candidates = 0
    for n in range(ctx.attr("min_gram_length", 1), ctx.attr("max_gram_length", 1) + 1):
        skips = 1 if n == 1 else ctx.attr("max_skip_count", 0) + 1
        candidates += sum(max(length - (n - 1) * (skip + 1), 0) for skip in range(skips))
    flops = rows * candidates * NGRAM_COUNT_FLOPS
    if ctx.attr("mode", "TF") != "TF":
        flops += ctx.out_numel(0) * NGRAM_WEIGHT_FLOPS
    return Cost.of_flops(flops)
