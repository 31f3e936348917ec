"""Elementwise ops: unary math, activations, broadcast binary and variadic ops, softmax family.

Every rule here is ``flops = numel(output) * per-element constant``; the output shape already
carries the broadcasting, so ``[2, 3, 4] + [4]`` costs 24 FLOPs. The constants below follow the
convention of :mod:`onnxscore.ops.registry`: each add, sub, mul, div, compare, min, max, select
and each evaluation of an elementary function (exp, log, sqrt, erf, tanh, sin, pow, ...) is one
FLOP, and a composite op is the sum of its elementary steps. Activations that branch on the sign
of ``x`` are counted branch-free (both sides computed, then a select), since values are unknown.
"""
from __future__ import annotations

from onnxscore.ops.registry import CONTROL, WEIGHT, Cost, Ctx, rule

# One basic operation or one elementary-function evaluation per element (Abs, Exp, Sin, Add, ...).
ELEMENTARY_FLOPS = 1
# relu(x) = max(x, 0).
RELU_FLOPS = 1
# leaky_relu(x) = max(x, alpha*x): mul, max. PRelu is the same with a learned slope.
LEAKY_RELU_FLOPS = 2
# thresholded_relu(x) = x if x > alpha else 0: one compare-select.
THRESHOLDED_RELU_FLOPS = 1
# sigmoid(x) = 1 / (1 + exp(-x)): neg, exp, add, div.
SIGMOID_FLOPS = 4
# elu(x) = x if x >= 0 else alpha*(exp(x) - 1): exp, sub, mul, select.
ELU_FLOPS = 4
# selu(x) = gamma * (x if x > 0 else alpha*(exp(x) - 1)): exp, sub, mul, select, mul.
SELU_FLOPS = 5
# celu(x) = max(0, x) + min(0, alpha*(exp(x/alpha) - 1)): div, exp, sub, mul, min, max, add.
CELU_FLOPS = 7
# hard_sigmoid(x) = max(0, min(1, alpha*x + beta)): mul, add, min, max.
HARD_SIGMOID_FLOPS = 4
# hard_swish(x) = x * hard_sigmoid(x): the four of hard_sigmoid plus one mul.
HARD_SWISH_FLOPS = HARD_SIGMOID_FLOPS + 1
# softplus(x) = log(exp(x) + 1): exp, add, log.
SOFTPLUS_FLOPS = 3
# softsign(x) = x / (1 + |x|): abs, add, div.
SOFTSIGN_FLOPS = 3
# mish(x) = x * tanh(log(1 + exp(x))): exp, add, log, tanh, mul.
MISH_FLOPS = 5
# swish(x) = x * sigmoid(alpha*x): mul by alpha, sigmoid, mul by x.
SWISH_FLOPS = 1 + SIGMOID_FLOPS + 1
# swiglu(a, b) = swish(a) * b: swish, then one mul.
SWIGLU_FLOPS = SWISH_FLOPS + 1
# gelu(x) = 0.5 * x * (1 + erf(x / sqrt(2))): div, erf, add, mul, mul.
GELU_ERF_FLOPS = 5
# gelu_tanh(x) = 0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3))): x^3 (2 mul), mul, add, mul,
# tanh, add, mul, mul.
GELU_TANH_FLOPS = 9
# shrink(x) = x + bias if x < -lambd, x - bias if x > lambd, else 0: two compares, one add/sub.
SHRINK_FLOPS = 3
# clip(x) = min(max(x, lo), hi): one max or min per bound given.
CLIP_FLOPS_PER_BOUND = 1
# where(c, x, y): one select per element.
WHERE_FLOPS = 1
# softmax over a row: max-reduce (1 compare per element), sub the max, exp, sum-reduce (1 add
# per element), div by the sum: 5 per element (the per-row one-off savings are ignored).
SOFTMAX_FLOPS = 5
# log_softmax = x - max - log(sum(exp(x - max))): compare, sub, exp, add, sub per element; the
# one log per row is not counted.
LOG_SOFTMAX_FLOPS = 5
# hardmax: one compare per element to find the row's argmax; writing the one-hot costs nothing.
HARDMAX_FLOPS = 1

UNARY_FLOPS = {
    **{op: ELEMENTARY_FLOPS for op in (
        "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Erf", "Sin", "Cos", "Tan", "Asin",
        "Acos", "Atan", "Sinh", "Cosh", "Tanh", "Asinh", "Acosh", "Atanh", "Ceil", "Floor",
        "Round", "Sign", "IsInf", "IsNaN", "Not", "BitwiseNot")},
    "Relu": RELU_FLOPS,
    "LeakyRelu": LEAKY_RELU_FLOPS,
    "ThresholdedRelu": THRESHOLDED_RELU_FLOPS,
    "Sigmoid": SIGMOID_FLOPS,
    "Elu": ELU_FLOPS,
    "Selu": SELU_FLOPS,
    "Celu": CELU_FLOPS,
    "HardSigmoid": HARD_SIGMOID_FLOPS,
    "HardSwish": HARD_SWISH_FLOPS,
    "Softplus": SOFTPLUS_FLOPS,
    "Softsign": SOFTSIGN_FLOPS,
    "Mish": MISH_FLOPS,
    "Swish": SWISH_FLOPS,
    "Shrink": SHRINK_FLOPS,
    "Softmax": SOFTMAX_FLOPS,
    "LogSoftmax": LOG_SOFTMAX_FLOPS,
    "Hardmax": HARDMAX_FLOPS,
}

BINARY_FLOPS = {op: ELEMENTARY_FLOPS for op in (
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Equal", "Greater", "GreaterOrEqual", "Less",
    "LessOrEqual", "And", "Or", "Xor", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitShift")}


@rule("Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Erf", "Sin", "Cos", "Tan", "Asin",
      "Acos", "Atan", "Sinh", "Cosh", "Tanh", "Asinh", "Acosh", "Atanh", "Ceil", "Floor",
      "Round", "Sign", "IsInf", "IsNaN", "Not", "BitwiseNot", kind="elementwise")
@rule("Relu", "LeakyRelu", "ThresholdedRelu", "Sigmoid", "Elu", "Selu", "Celu", "HardSigmoid",
      "HardSwish", "Softplus", "Softsign", "Mish", "Swish", "Shrink", kind="activation")
@rule("Softmax", "LogSoftmax", "Hardmax", kind="softmax")
def unary(ctx: Ctx) -> Cost:
    """An elementwise unary op or activation.

    flops = numel(Y) * UNARY_FLOPS[op_type] (see the named constants of this module).
    """
    return Cost.of_flops(ctx.out_numel(0) * UNARY_FLOPS[ctx.op_type])


@rule("Add", "Sub", "Mul", "Div", "Pow", "Mod", "Equal", "Greater", "GreaterOrEqual", "Less",
      "LessOrEqual", "And", "Or", "Xor", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitShift",
      kind="elementwise")
def binary(ctx: Ctx) -> Cost:
    """A broadcast binary op (arithmetic, comparison, logical, bitwise).

    flops = numel(C) * 1: the output shape holds the broadcast, so ``[2,3,4] + [4]`` is 24.
    """
    return Cost.of_flops(ctx.out_numel(0) * BINARY_FLOPS[ctx.op_type])


@rule("PRelu", kind="activation", roles={1: WEIGHT})
def prelu(ctx: Ctx) -> Cost:
    """PRelu, ``max(x, slope*x)`` with a learned (broadcast) slope.

    flops = numel(Y) * LEAKY_RELU_FLOPS (mul, max).
    """
    return Cost.of_flops(ctx.out_numel(0) * LEAKY_RELU_FLOPS)


def _n_inputs(ctx: Ctx) -> int:
    return sum(1 for i in range(len(ctx.inputs)) if ctx.has_input(i))


@rule("Sum", "Max", "Min", "Mean", kind="elementwise")
def variadic(ctx: Ctx) -> Cost:
    """A broadcast variadic op over n inputs.

    flops = numel(Y) * (n - 1) for Sum/Max/Min; Mean adds one division per element when n > 1
    (a single input is a copy).
    """
    n = _n_inputs(ctx)
    per_element = max(n - 1, 0)
    if ctx.op_type == "Mean" and n > 1:
        per_element += 1
    return Cost.of_flops(ctx.out_numel(0) * per_element)


@rule("Clip", kind="activation", roles={1: CONTROL, 2: CONTROL})
def clip(ctx: Ctx) -> Cost:
    """Clip, ``min(max(x, lo), hi)``; bounds are CONTROL (attributes before opset 11).

    flops = numel(Y) * CLIP_FLOPS_PER_BOUND * bounds, where bounds is the number of min/max
    inputs given (opset >= 11) or 2 (opset < 11, whose attributes default to the float range).
    """
    if ctx.opset and ctx.opset < 11 and len(ctx.inputs) <= 1:
        bounds = 2
    else:
        bounds = int(ctx.has_input(1)) + int(ctx.has_input(2))
    return Cost.of_flops(ctx.out_numel(0) * CLIP_FLOPS_PER_BOUND * bounds)


@rule("Where", kind="elementwise", roles={0: CONTROL})
def where(ctx: Ctx) -> Cost:
    """Where, a broadcast select on a boolean condition (CONTROL).

    flops = numel(output) * WHERE_FLOPS.
    """
    return Cost.of_flops(ctx.out_numel(0) * WHERE_FLOPS)


@rule("Gelu", kind="activation")
def gelu(ctx: Ctx) -> Cost:
    """Gelu, exact (erf) or ``approximate="tanh"``.

    flops = numel(Y) * GELU_ERF_FLOPS, or numel(Y) * GELU_TANH_FLOPS for the tanh form.
    """
    per_element = GELU_TANH_FLOPS if ctx.attr("approximate", "none") == "tanh" else GELU_ERF_FLOPS
    return Cost.of_flops(ctx.out_numel(0) * per_element)


@rule("SwiGLU", kind="activation")
def swiglu(ctx: Ctx) -> Cost:
    """SwiGLU, ``swish_alpha(A) * B`` with A and B of the output's shape.

    flops = numel(Y) * SWIGLU_FLOPS.
    """
    return Cost.of_flops(ctx.out_numel(0) * SWIGLU_FLOPS)
