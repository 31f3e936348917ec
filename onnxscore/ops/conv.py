"""Convolutions: Conv, ConvTranspose, DeformConv, CausalConvWithState and Col2Im.

Shape arithmetic shared with the quantized twins (QLinearConv, ConvInteger) lives in the small
helpers :func:`conv_macs` and :func:`conv_outputs`, which take the input indices of ``x``/``w``.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

from onnxscore.ops.registry import CONTROL, DATA, WEIGHT, Cost, Ctx, InvalidNode, UnknownShape, numel, rule

# SiLU/Swish fused into CausalConvWithState: x * sigmoid(x), sigmoid = neg, exp, add, div (4),
# plus the multiply by x.
SILU_FLOPS = 5

# DeformConv, per sampling location (per offset group) and per spatial axis: add the learned
# offset to the regular grid position, floor it, take the fraction (sub) and its complement
# 1 - fraction (sub).
DEFORM_COORD_FLOPS_PER_AXIS = 4

# DeformConv with a mask (v2): one multiply of each sampled value by its modulation scalar.
DEFORM_MASK_FLOPS = 1


def _ints(ctx: Ctx, name: str, n: int, fill: int) -> List[int]:
    """Attribute ``name`` as a list of ``n`` ints, ``fill`` when absent; strides and dilations
    must be positive (a model that says otherwise is told so, in words)."""
    v = ctx.attr(name)
    out = [fill] * n if not v else [int(i) for i in v]
    if name in ("strides", "dilations") and any(i <= 0 for i in out):
        raise InvalidNode(f"{ctx.op_type} {name} must be positive, got {out}")
    return out


def _known_output(ctx: Ctx) -> Optional[Tuple[int, ...]]:
    """The output shape when shape inference gave it, else None (then it is computed)."""
    try:
        return ctx.out_shape(0)
    except UnknownShape:
        return None


def conv_out_spatial(ctx: Ctx, x_shape: Sequence[int], kernel: Sequence[int]) -> Tuple[int, ...]:
    """Output spatial dims of a forward convolution: from the output shape when known.

    Otherwise ``floor((in + pad_begin + pad_end - ((k - 1) * d + 1)) / s) + 1`` with explicit
    pads, ``ceil(in / s)`` for SAME_UPPER/SAME_LOWER and pads of zero for VALID.
    """
    n = len(kernel)
    known = _known_output(ctx)
    if known is not None:
        return known[2:]
    spatial = x_shape[2:]
    strides = _ints(ctx, "strides", n, 1)
    dilations = _ints(ctx, "dilations", n, 1)
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return tuple(-(-i // s) for i, s in zip(spatial, strides))
    pads = [0] * (2 * n) if auto_pad == "VALID" else _ints(ctx, "pads", 2 * n, 0)
    return tuple((i + pads[a] + pads[a + n] - ((k - 1) * d + 1)) // s + 1
                 for a, (i, k, s, d) in enumerate(zip(spatial, kernel, strides, dilations)))


def _conv_weight(ctx: Ctx, x: int, w: int) -> Tuple[int, Tuple[int, ...]]:
    """``(Cin / group, kernel)`` from the weight shape, else from ``kernel_shape`` and ``group``."""
    try:
        w_shape = ctx.in_shape(w)
        return w_shape[1], w_shape[2:]
    except UnknownShape:
        kernel = ctx.attr("kernel_shape")
        if not kernel:
            raise
        return ctx.in_shape(x)[1] // int(ctx.attr("group", 1)), tuple(int(k) for k in kernel)


def conv_outputs(ctx: Ctx, x: int = 0, w: int = 1) -> int:
    """Output elements ``N * Cout * prod(out spatial)`` of a forward convolution."""
    known = _known_output(ctx)
    if known is not None:
        return numel(known)
    x_shape = ctx.in_shape(x)
    _, kernel = _conv_weight(ctx, x, w)
    return x_shape[0] * ctx.in_shape(w)[0] * numel(conv_out_spatial(ctx, x_shape, kernel))


def conv_macs(ctx: Ctx, x: int = 0, w: int = 1) -> int:
    """MACs of a forward convolution: ``N * Cout * prod(out spatial) * (Cin/group) * prod(kernel)``."""
    cin_per_group, kernel = _conv_weight(ctx, x, w)
    group = int(ctx.attr("group", 1))
    channels = ctx.inputs[x].shape[1] if ctx.has_input(x) and ctx.inputs[x].shape else None
    if group <= 0 or (isinstance(channels, int) and isinstance(cin_per_group, int)
                      and channels != cin_per_group * group):
        raise InvalidNode(f"{ctx.op_type} input has {channels} channels, but its weight and group "
                          f"{group} expect {cin_per_group} x {group}")
    return conv_outputs(ctx, x, w) * cin_per_group * numel(kernel)


@rule("Conv", kind="conv", roles={1: WEIGHT, 2: WEIGHT})
def conv(ctx: Ctx) -> Cost:
    """Convolution, 1-D to 3-D, any groups, dilations, strides, pads and auto_pad.

    MACs = N * Cout * prod(out spatial) * (Cin/group) * prod(kernel); the bias, when present,
    adds one FLOP per output element (N * Cout * prod(out spatial)).
    """
    bias = conv_outputs(ctx) if ctx.has_input(2) else 0
    return Cost.of_macs(conv_macs(ctx), extra_flops=bias)


def conv_transpose_out_spatial(ctx: Ctx, x_shape: Sequence[int], kernel: Sequence[int]) -> Tuple[int, ...]:
    """Output spatial dims of a transposed convolution: from the output shape when known.

    Otherwise the ``output_shape`` attribute, ``in * s`` for SAME_UPPER/SAME_LOWER, or
    ``s * (in - 1) + output_padding + ((k - 1) * d + 1) - pad_begin - pad_end``.
    """
    n = len(kernel)
    known = _known_output(ctx)
    if known is not None:
        return known[2:]
    spatial = x_shape[2:]
    explicit = ctx.attr("output_shape")
    if explicit:
        return tuple(int(d) for d in explicit[-n:])
    strides = _ints(ctx, "strides", n, 1)
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return tuple(i * s for i, s in zip(spatial, strides))
    dilations = _ints(ctx, "dilations", n, 1)
    out_pad = _ints(ctx, "output_padding", n, 0)
    pads = [0] * (2 * n) if auto_pad == "VALID" else _ints(ctx, "pads", 2 * n, 0)
    return tuple(s * (i - 1) + op + ((k - 1) * d + 1) - pads[a] - pads[a + n]
                 for a, (i, k, s, d, op) in enumerate(zip(spatial, kernel, strides, dilations, out_pad)))


@rule("ConvTranspose", kind="conv", roles={1: WEIGHT, 2: WEIGHT})
def conv_transpose(ctx: Ctx) -> Cost:
    """Transposed convolution: each input pixel scatters a kernel into Cout/group channels.

    MACs = N * Cin * prod(in spatial) * (Cout/group) * prod(kernel) (the fvcore/ptflops count,
    not doubled; W is ``(Cin, Cout/group, k...)``); the bias, when present, adds one FLOP per
    output element (N * Cout * prod(out spatial)).
    """
    x_shape = ctx.in_shape(0)
    w_shape = ctx.in_shape(1)
    macs = x_shape[0] * numel(x_shape[2:]) * numel(w_shape)
    bias = 0
    if ctx.has_input(2):
        cout = w_shape[1] * int(ctx.attr("group", 1))
        bias = x_shape[0] * cout * numel(conv_transpose_out_spatial(ctx, x_shape, w_shape[2:]))
    return Cost.of_macs(macs, extra_flops=bias)


@rule("DeformConv", kind="conv", roles={1: WEIGHT, 2: DATA, 3: WEIGHT, 4: DATA})
def deform_conv(ctx: Ctx) -> Cost:
    """Deformable convolution (v1, and v2 with a mask): conv MACs plus bilinear sampling.

    MACs = N * Cout * prod(out) * (Cin/group) * prod(kernel), as Conv. With n spatial axes,
    L = N * offset_group * prod(kernel) * prod(out) sampling locations each cost
    ``DEFORM_COORD_FLOPS_PER_AXIS * n`` for the coordinates plus ``2**n * (n - 1)`` multiplies
    for the 2**n corner weights; S = N * Cin * prod(kernel) * prod(out) sampled values each cost
    ``2**n`` multiplies and ``2**n - 1`` adds to interpolate, plus ``DEFORM_MASK_FLOPS`` with a
    mask. The bias, when present, adds N * Cout * prod(out).
    """
    x_shape = ctx.in_shape(0)
    _, kernel = _conv_weight(ctx, 0, 1)
    n = len(kernel)
    out_spatial = conv_out_spatial(ctx, x_shape, kernel)
    positions = x_shape[0] * numel(kernel) * numel(out_spatial)
    corners = 2 ** n
    locations = positions * int(ctx.attr("offset_group", 1))
    samples = positions * x_shape[1]
    coord_flops = locations * (DEFORM_COORD_FLOPS_PER_AXIS * n + corners * (n - 1))
    sample_flops = samples * (2 * corners - 1 + (DEFORM_MASK_FLOPS if ctx.has_input(4) else 0))
    bias = conv_outputs(ctx) if ctx.has_input(3) else 0
    return Cost.of_macs(conv_macs(ctx), extra_flops=coord_flops + sample_flops + bias)


@rule("CausalConvWithState", kind="conv", roles={1: WEIGHT, 2: WEIGHT, 3: CONTROL})
def causal_conv_with_state(ctx: Ctx) -> Cost:
    """Stateful causal depthwise 1-D convolution over the output length (past state = padding).

    MACs = B * C * L * k (weight ``(C, 1, k)``, output ``(B, C, L)``); the bias, when present,
    adds B * C * L; a fused silu/swish activation adds ``SILU_FLOPS`` per output element.
    The present state is a copy of the last k - 1 positions: no arithmetic.
    """
    try:
        outputs = ctx.out_numel(0)
    except UnknownShape:
        outputs = ctx.in_numel(0)
    k = ctx.in_shape(1)[-1]
    extra = outputs if ctx.has_input(2) else 0
    if str(ctx.attr("activation", "none")).lower() in ("silu", "swish"):
        extra += SILU_FLOPS * outputs
    return Cost.of_macs(outputs * k, extra_flops=extra)


def _col2im_axis(image: int, block: int, blocks: int, stride: int, dilation: int,
                 pad_begin: int) -> Tuple[int, int]:
    """Along one axis: ``(contributions landing inside the image, distinct image positions hit)``."""
    hits = [b * stride + k * dilation - pad_begin for b in range(blocks) for k in range(block)]
    inside = [p for p in hits if 0 <= p < image]
    return len(inside), len(set(inside))


@rule("Col2Im", kind="conv", roles={1: CONTROL, 2: CONTROL})
def col2im(ctx: Ctx) -> Cost:
    """Fold column blocks into an image, summing the overlapping patches.

    Per axis, block b and kernel offset k land at ``b * s + k * d - pad_begin``; contributions
    outside the image are dropped. Every image position receiving m > 0 contributions costs
    m - 1 adds, so adds = N * C * (prod(axis contributions) - prod(axis positions hit)); with
    no overlap (stride >= dilated block) this is 0, a pure rearrangement.
    """
    image, block = ctx.value(1), ctx.value(2)
    if image is None or block is None:
        raise UnknownShape(["image_shape" if image is None else "block_shape"], ctx.name)
    image = [int(i) for i in image.reshape(-1)]
    block = [int(b) for b in block.reshape(-1)]
    n = len(block)
    x_shape = ctx.in_shape(0)
    channels = x_shape[1] // numel(block)
    strides = _ints(ctx, "strides", n, 1)
    dilations = _ints(ctx, "dilations", n, 1)
    pads = _ints(ctx, "pads", 2 * n, 0)
    blocks = [(i + pads[a] + pads[a + n] - ((b - 1) * d + 1)) // s + 1
              for a, (i, b, s, d) in enumerate(zip(image, block, strides, dilations))]
    axes = [_col2im_axis(image[a], block[a], blocks[a], strides[a], dilations[a], pads[a])
            for a in range(n)]
    contributions = math.prod(c for c, _ in axes)
    hit = math.prod(h for _, h in axes)
    return Cost.of_flops(x_shape[0] * channels * (contributions - hit))
