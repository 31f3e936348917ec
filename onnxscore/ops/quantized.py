"""Quantized ops: QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger and (de)quantization.

The integer contractions cost what their float twins cost (shape arithmetic imported from
:mod:`onnxscore.ops.conv` and :mod:`onnxscore.ops.matmul`), computed on zero-point-shifted
operands: ``sum((x - x_zp) * (w - w_zp))``. Each operand whose zero point is given costs one
subtraction per element for that shift. The combined requantisation multiplier
``x_scale * w_scale / y_scale`` depends only on the scales and is not counted per element.
"""
from __future__ import annotations

from onnxscore.ops.conv import conv_macs, conv_outputs
from onnxscore.ops.matmul import matmul_macs, matmul_outputs
from onnxscore.ops.registry import DATA, QUANT, WEIGHT, Cost, Ctx, rule

# Zero-point shift of one element: x - x_zero_point.
ZERO_POINT_FLOPS = 1

# Saturation to the integer range: one compare against each bound (max with qmin, min with qmax).
SATURATE_FLOPS = 2

# Rounding to the nearest integer (ties to even).
ROUND_FLOPS = 1

# QuantizeLinear per element without its zero point: x / y_scale (div), round, saturate.
QUANTIZE_FLOPS = 1 + ROUND_FLOPS + SATURATE_FLOPS

# Requantising an int32 accumulator: acc * multiplier (mul), round, + y_zero_point (add), saturate.
REQUANTIZE_FLOPS = 1 + ROUND_FLOPS + 1 + SATURATE_FLOPS

# DequantizeLinear per element without its zero point: * x_scale.
DEQUANTIZE_FLOPS = 1

# DynamicQuantizeLinear, per element: maximum(0, max(x)) and minimum(0, min(x)) take n compares
# each (n - 1 for the reduction, 1 against zero).
RANGE_FLOPS = 2

# DynamicQuantizeLinear, once: y_scale = range (sub) / (qmax - qmin) (div); the zero point
# qmin - min / y_scale (div, sub), rounded and saturated.
DYNAMIC_SCALAR_FLOPS = 1 + 1 + 1 + 1 + ROUND_FLOPS + SATURATE_FLOPS


def _shift(ctx: Ctx, operand: int, zero_point: int) -> int:
    """FLOPs of subtracting the zero point (input ``zero_point``) from operand ``operand``."""
    return ZERO_POINT_FLOPS * ctx.in_numel(operand) if ctx.has_input(zero_point) else 0


@rule("QLinearConv", kind="conv", roles={1: QUANT, 2: QUANT, 3: WEIGHT, 4: QUANT, 5: QUANT,
                                          6: QUANT, 7: QUANT, 8: WEIGHT})
def qlinear_conv(ctx: Ctx) -> Cost:
    """Quantized convolution with requantised output.

    MACs = N * Cout * prod(out) * (Cin/group) * prod(kernel), as Conv. Extra FLOPs: zero-point
    shifts of x and w (one per element each), the int32 bias (N * Cout * prod(out)) when B is
    present, and ``REQUANTIZE_FLOPS`` per output element.
    """
    outputs = conv_outputs(ctx, x=0, w=3)
    extra = _shift(ctx, 0, 2) + _shift(ctx, 3, 5) + REQUANTIZE_FLOPS * outputs
    if ctx.has_input(8):
        extra += outputs
    return Cost.of_macs(conv_macs(ctx, x=0, w=3), extra_flops=extra)


@rule("ConvInteger", kind="conv", roles={1: WEIGHT, 2: QUANT, 3: QUANT})
def conv_integer(ctx: Ctx) -> Cost:
    """Integer convolution into int32.

    MACs as Conv; extra FLOPs: one subtraction per element of x and of w whose zero point is given.
    """
    return Cost.of_macs(conv_macs(ctx, x=0, w=1), extra_flops=_shift(ctx, 0, 2) + _shift(ctx, 1, 3))


@rule("MatMulInteger", kind="matmul", roles={1: WEIGHT, 2: QUANT, 3: QUANT})
def matmul_integer(ctx: Ctx) -> Cost:
    """Integer matrix product into int32.

    MACs as MatMul (prod(batch) * M * N * K); extra FLOPs: one subtraction per element of A and
    of B whose zero point is given.
    """
    return Cost.of_macs(matmul_macs(ctx, a=0, b=1), extra_flops=_shift(ctx, 0, 2) + _shift(ctx, 1, 3))


@rule("QLinearMatMul", kind="matmul", roles={0: DATA, 1: QUANT, 2: QUANT, 3: WEIGHT, 4: QUANT,
                                             5: QUANT, 6: QUANT, 7: QUANT})
def qlinear_matmul(ctx: Ctx) -> Cost:
    """Quantized matrix product with requantised output.

    MACs as MatMul; extra FLOPs: zero-point shifts of a and b (one per element each) and
    ``REQUANTIZE_FLOPS`` per output element.
    """
    extra = _shift(ctx, 0, 2) + _shift(ctx, 3, 5) + REQUANTIZE_FLOPS * matmul_outputs(ctx, a=0, b=3)
    return Cost.of_macs(matmul_macs(ctx, a=0, b=3), extra_flops=extra)


@rule("QuantizeLinear", kind="quant", roles={1: QUANT, 2: QUANT})
def quantize_linear(ctx: Ctx) -> Cost:
    """``y = saturate(round(x / y_scale) + y_zero_point)``.

    Per element: ``QUANTIZE_FLOPS`` (div, round, saturate), plus 1 add when the zero point is given.
    """
    per_element = QUANTIZE_FLOPS + (1 if ctx.has_input(2) else 0)
    return Cost.of_flops(per_element * ctx.in_numel(0))


@rule("DequantizeLinear", kind="quant", roles={0: WEIGHT, 1: QUANT, 2: QUANT})
def dequantize_linear(ctx: Ctx) -> Cost:
    """``y = (x - x_zero_point) * x_scale``; x is usually a stored quantized weight.

    Per element: ``DEQUANTIZE_FLOPS`` (mul), plus ``ZERO_POINT_FLOPS`` when the zero point is given.
    """
    per_element = DEQUANTIZE_FLOPS + (ZERO_POINT_FLOPS if ctx.has_input(2) else 0)
    return Cost.of_flops(per_element * ctx.in_numel(0))


@rule("DynamicQuantizeLinear", kind="quant")
def dynamic_quantize_linear(ctx: Ctx) -> Cost:
    """Scale and zero point from the data range, then uint8 quantization.

    FLOPs = n * (``RANGE_FLOPS`` + ``QUANTIZE_FLOPS`` + 1 zero-point add) + ``DYNAMIC_SCALAR_FLOPS``.
    """
    n = ctx.in_numel(0)
    return Cost.of_flops(n * (RANGE_FLOPS + QUANTIZE_FLOPS + 1) + DYNAMIC_SCALAR_FLOPS)
