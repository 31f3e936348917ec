"""Elementwise ops: numel(output) times a per-element count derived from the spec formula.

Each add, mul, div, compare, min/max, select and elementary function (exp, log, erf, tanh, ...)
is one FLOP; sign-dependent activations are counted branch-free.
"""
from __future__ import annotations

import pytest
from onnx import TensorProto

from onnxscore.ops import registry
from onnxscore.ops.registry import CONTROL, DATA, WEIGHT, UnknownShape
from tests.opmodels import cost, node_model, weight

FLOAT = TensorProto.FLOAT
BOOL = TensorProto.BOOL

# (id, op, input shapes, output shapes, attrs, flops); every elementwise op has zero MACs.
UNARY = [
    ("abs", "Abs", [(2, 3)], [(2, 3)], {}, 2*3*1),
    ("exp", "Exp", [(4, 5)], [(4, 5)], {}, 4*5*1),
    ("sqrt_scalar", "Sqrt", [()], [()], {}, 1),
    ("acosh", "Acosh", [(7,)], [(7,)], {}, 7*1),
    ("is_nan", "IsNaN", [(3, 3)], [(3, 3)], {}, 3*3*1),
    ("bitwise_not", "BitwiseNot", [(8,)], [(8,)], {}, 8*1),
    ("relu", "Relu", [(1, 16, 8, 8)], [(1, 16, 8, 8)], {}, 1*16*8*8*1),  # max(x, 0)
    ("leaky_relu", "LeakyRelu", [(2, 10)], [(2, 10)], {"alpha": 0.1}, 2*10*2),  # mul, max
    ("thresholded_relu", "ThresholdedRelu", [(2, 10)], [(2, 10)], {}, 2*10*1),  # compare-select
    ("sigmoid", "Sigmoid", [(2, 10)], [(2, 10)], {}, 2*10*4),  # neg, exp, add, div
    ("elu", "Elu", [(2, 10)], [(2, 10)], {}, 2*10*4),  # exp, sub, mul, select
    ("selu", "Selu", [(2, 10)], [(2, 10)], {}, 2*10*5),  # exp, sub, mul, select, mul gamma
    ("celu", "Celu", [(2, 10)], [(2, 10)], {}, 2*10*7),  # div, exp, sub, mul, min, max, add
    ("hard_sigmoid", "HardSigmoid", [(2, 10)], [(2, 10)], {}, 2*10*4),  # mul, add, min, max
    ("hard_swish", "HardSwish", [(2, 10)], [(2, 10)], {}, 2*10*(4 + 1)),  # hard_sigmoid, mul x
    ("softplus", "Softplus", [(2, 10)], [(2, 10)], {}, 2*10*3),  # exp, add, log
    ("softsign", "Softsign", [(2, 10)], [(2, 10)], {}, 2*10*3),  # abs, add, div
    ("mish", "Mish", [(2, 10)], [(2, 10)], {}, 2*10*5),  # exp, add, log, tanh, mul
    ("swish", "Swish", [(2, 10)], [(2, 10)], {"alpha": 1.5}, 2*10*(1 + 4 + 1)),  # mul a, sigmoid, mul x
    ("shrink", "Shrink", [(2, 10)], [(2, 10)], {}, 2*10*3),  # 2 compares, add/sub
    ("gelu_erf", "Gelu", [(2, 5)], [(2, 5)], {}, 2*5*5),  # div, erf, add, mul, mul
    ("gelu_tanh", "Gelu", [(2, 5)], [(2, 5)], {"approximate": "tanh"},
     2*5*9),  # x^3 (2), mul, add, mul, tanh, add, mul, mul
    # Softmax per element: max-fold compare, sub, exp, sum-fold add, div.
    ("softmax", "Softmax", [(2, 3, 4)], [(2, 3, 4)], {"axis": -1}, 2*3*4*5),
    ("softmax_axis1", "Softmax", [(2, 3, 4)], [(2, 3, 4)], {"axis": 1}, 2*3*4*5),
    ("log_softmax", "LogSoftmax", [(4, 7)], [(4, 7)], {}, 4*7*5),  # compare, sub, exp, add, sub
    ("hardmax", "Hardmax", [(4, 7)], [(4, 7)], {}, 4*7*1),  # argmax compares
]

BINARY = [
    ("add_broadcast_row", "Add", [(2, 3, 4), (4,)], [(2, 3, 4)], {}, 2*3*4),  # one add per output
    ("add_both_broadcast", "Add", [(1, 3, 1), (2, 1, 5)], [(2, 3, 5)], {}, 2*3*5),
    ("sub_scalar", "Sub", [(6, 7), ()], [(6, 7)], {}, 6*7),
    ("mul", "Mul", [(4, 4), (4, 4)], [(4, 4)], {}, 4*4),
    ("div", "Div", [(8,), (1,)], [(8,)], {}, 8),
    ("pow", "Pow", [(3, 5), ()], [(3, 5)], {}, 3*5),
    ("mod", "Mod", [(3, 5), (5,)], [(3, 5)], {"fmod": 1}, 3*5),
    ("equal", "Equal", [(2, 6), (2, 6)], [(2, 6)], {}, 2*6),
    ("less_or_equal", "LessOrEqual", [(2, 6), ()], [(2, 6)], {}, 2*6),
    ("and", "And", [(9,), (9,)], [(9,)], {}, 9),
    ("bit_shift", "BitShift", [(9,), (9,)], [(9,)], {"direction": "LEFT"}, 9),
    # PRelu: mul by the broadcast slope, max.
    ("prelu", "PRelu", [(1, 3, 4, 4), (3, 1, 1)], [(1, 3, 4, 4)], {}, 1*3*4*4*2),
    # Where: one select per broadcast output element.
    ("where", "Where", [(2, 3), (3,), ()], [(2, 3)], {}, 2*3*1),
    # SwiGLU: swish(A) (mul alpha, sigmoid 4, mul) then * B.
    ("swiglu", "SwiGLU", [(2, 8), (2, 8)], [(2, 8)], {}, 2*8*(1 + 4 + 1 + 1)),
]

VARIADIC = [
    ("sum_3", "Sum", [(2, 3), (2, 3), (2, 3)], [(2, 3)], {}, 2*3*(3 - 1)),  # n-1 adds per element
    ("sum_broadcast", "Sum", [(4, 1), (1, 5), (5,)], [(4, 5)], {}, 4*5*(3 - 1)),
    ("sum_1", "Sum", [(2, 3)], [(2, 3)], {}, 0),  # one input: a copy
    ("mean_3", "Mean", [(2, 3), (2, 3), (2, 3)], [(2, 3)], {}, 2*3*(3 - 1 + 1)),  # + divide
    ("mean_1", "Mean", [(2, 3)], [(2, 3)], {}, 0),
    ("max_2", "Max", [(4, 1), (1, 5)], [(4, 5)], {}, 4*5*(2 - 1)),
    ("min_4", "Min", [(7,), (7,), (7,), (7,)], [(7,)], {}, 7*(4 - 1)),
]

CLIP = [
    ("both_bounds", [(2, 5), (), ()], {}, 23, 2*5*2),  # max(lo), min(hi)
    ("min_only", [(2, 5), ()], {}, 23, 2*5*1),
    ("max_only", [(2, 5), None, ()], {}, 23, 2*5*1),
    ("no_bounds", [(2, 5)], {}, 23, 0),
    ("opset6_attrs", [(2, 5)], {"min": 0.0, "max": 6.0}, 6, 2*5*2),  # attribute bounds
]


@pytest.mark.parametrize("case", UNARY + BINARY + VARIADIC, ids=lambda c: c[0])
def test_elementwise_flops(case):
    _, op, ins, outs, attrs, flops = case
    c = cost(op, ins, outs, attrs)
    assert c.macs == 0
    assert c.flops == flops


@pytest.mark.parametrize("case", CLIP, ids=lambda c: c[0])
def test_clip(case):
    _, ins, attrs, opset, flops = case
    c = cost("Clip", ins, [(2, 5)], attrs, opset=opset)
    assert c == registry.Cost(0, flops)


@pytest.mark.parametrize("op,index,role", [
    ("Clip", 1, CONTROL), ("Clip", 2, CONTROL), ("Where", 0, CONTROL), ("Where", 1, DATA),
    ("PRelu", 1, WEIGHT), ("Add", 1, DATA), ("Sum", 2, DATA),
])
def test_roles(op, index, role):
    assert registry.lookup("", op).role(index) == role


def test_unknown_output_shape_is_unknown():
    with pytest.raises(UnknownShape):
        cost("Add", [("n", 4), (4,)], [("n", 4)])


def _add_model(b_shape):
    return node_model("Add", [("x", FLOAT, [1, 8, 768]), ("b", FLOAT, b_shape)],
                      [("y", FLOAT, None)], initializers=[weight("b", b_shape)])


def test_pipeline_add_bias_counts_params():
    import onnxscore
    report = onnxscore.analyze(_add_model([768]))
    layer = report.layers[0]
    assert layer.status == "ok"
    assert layer.macs == 0
    assert layer.flops == 1*8*768  # one add per output element
    assert report.totals.params == 768  # a float DATA constant with more than one element


def test_pipeline_add_scalar_is_not_a_param():
    import onnxscore
    report = onnxscore.analyze(_add_model([]))
    assert report.layers[0].flops == 1*8*768
    assert report.totals.params == 0  # a scalar DATA constant is not a parameter


def test_pipeline_prelu_slope_is_a_weight():
    import onnxscore
    model = node_model("PRelu", [("x", FLOAT, [1, 4, 5, 5]), ("s", FLOAT, [4, 1, 1])],
                       [("y", FLOAT, None)], initializers=[weight("s", [4, 1, 1])])
    report = onnxscore.analyze(model)
    assert report.layers[0].flops == 1*4*5*5*2  # mul, max
    assert report.totals.params == 4  # C slopes


def test_pipeline_clip_bounds_are_not_params():
    import onnxscore
    model = node_model("Clip", [("x", FLOAT, [2, 6]), ("lo", FLOAT, [1]), ("hi", FLOAT, [1])],
                       [("y", FLOAT, None)], initializers=[weight("lo", [1]), weight("hi", [1])])
    report = onnxscore.analyze(model)
    assert report.layers[0].flops == 2*6*2
    assert report.totals.params == 0


def test_pipeline_where_with_mask_constant():
    import onnxscore
    model = node_model("Where", [("c", BOOL, [4, 4]), ("x", FLOAT, [4, 4]), ("fill", FLOAT, [])],
                       [("y", FLOAT, None)], initializers=[weight("c", [4, 4], BOOL), weight("fill", [])])
    report = onnxscore.analyze(model)
    assert report.layers[0].flops == 4*4*1
    assert report.totals.params == 0  # condition is CONTROL, the fill value a scalar
