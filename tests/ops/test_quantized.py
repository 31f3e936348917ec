"""Quantized contractions and (de)quantization: tables derived from the spec formulas.

Per-element constants: zero-point shift = 1 sub; requantisation = mul, round, add zp, 2 compares
(saturate) = 5; quantize = div, round, 2 compares (+1 add with a zero point); dequantize = mul
(+1 sub with a zero point).
"""
from __future__ import annotations

import pytest
from onnx import TensorProto, helper

import onnxscore
from onnxscore.ops import registry
from onnxscore.ops.registry import DATA, QUANT, WEIGHT
from tests.opmodels import cost, node_model, weight

FLOAT, UINT8, INT8, INT32 = TensorProto.FLOAT, TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32

SCALAR = ()

# QLinearConv inputs: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B
QLINEAR_CONV = [
    ("bias_per_channel",
     [(1, 3, 8, 8), SCALAR, SCALAR, (4, 3, 3, 3), (4,), (4,), SCALAR, SCALAR, (4,)], [(1, 4, 6, 6)], {},
     1*4*6*6*3*3*3,  # N*Cout*Ho*Wo*Cin*Kh*Kw
     2*(1*4*6*6*3*3*3) + 1*3*8*8 + 4*3*3*3 + 5*1*4*6*6 + 1*4*6*6),  # + x shift + w shift + requant + bias
    ("depthwise_no_bias_strided",
     [(1, 8, 9, 9), SCALAR, SCALAR, (8, 1, 3, 3), SCALAR, SCALAR, SCALAR, SCALAR], [None],
     {"group": 8, "strides": [2, 2]},
     1*8*4*4*1*3*3,  # N*Cout*Ho*Wo*(Cin/g)*Kh*Kw, Ho = (9-3)//2+1 = 4
     2*(1*8*4*4*1*3*3) + 1*8*9*9 + 8*1*3*3 + 5*1*8*4*4),
]


@pytest.mark.parametrize("ins,outs,attrs,macs,flops", [c[1:] for c in QLINEAR_CONV],
                         ids=[c[0] for c in QLINEAR_CONV])
def test_qlinear_conv(ins, outs, attrs, macs, flops):
    c = cost("QLinearConv", ins, outs, attrs)
    assert (c.macs, c.flops) == (macs, flops)


CONV_INTEGER = [
    ("with_zero_points", [(1, 3, 8, 8), (4, 3, 3, 3), SCALAR, SCALAR], [(1, 4, 6, 6)], {},
     1*4*6*6*3*3*3, 2*(1*4*6*6*3*3*3) + 1*3*8*8 + 4*3*3*3),  # + x shift + w shift
    ("x_zero_point_only", [(1, 3, 8, 8), (4, 3, 3, 3), SCALAR], [(1, 4, 6, 6)], {},
     1*4*6*6*3*3*3, 2*(1*4*6*6*3*3*3) + 1*3*8*8),
    ("no_zero_points_padded", [(1, 3, 8, 8), (4, 3, 3, 3)], [(1, 4, 8, 8)], {"pads": [1, 1, 1, 1]},
     1*4*8*8*3*3*3, 2*(1*4*8*8*3*3*3)),
]


@pytest.mark.parametrize("ins,outs,attrs,macs,flops", [c[1:] for c in CONV_INTEGER],
                         ids=[c[0] for c in CONV_INTEGER])
def test_conv_integer(ins, outs, attrs, macs, flops):
    c = cost("ConvInteger", ins, outs, attrs)
    assert (c.macs, c.flops) == (macs, flops)


MATMUL_INTEGER = [
    ("batched_zero_points", [(2, 3, 5), (5, 7), SCALAR, SCALAR], [(2, 3, 7)],
     2*3*7*5, 2*(2*3*7*5) + 2*3*5 + 5*7),  # B*M*N*K; + A shift + B shift
    ("no_zero_points_1d", [(5,), (5, 7)], [None], 7*5, 2*(7*5)),  # N*K
]


@pytest.mark.parametrize("ins,outs,macs,flops", [c[1:] for c in MATMUL_INTEGER],
                         ids=[c[0] for c in MATMUL_INTEGER])
def test_matmul_integer(ins, outs, macs, flops):
    c = cost("MatMulInteger", ins, outs)
    assert (c.macs, c.flops) == (macs, flops)


# QLinearMatMul inputs: a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp
QLINEAR_MATMUL = [
    ("2d", [(3, 5), SCALAR, SCALAR, (5, 7), SCALAR, SCALAR, SCALAR, SCALAR], [(3, 7)],
     3*7*5, 2*(3*7*5) + 3*5 + 5*7 + 5*3*7),  # M*N*K; + a shift + b shift + requant of M*N
    ("broadcast_batched", [(2, 1, 4, 5), SCALAR, SCALAR, (3, 5, 6), SCALAR, SCALAR, SCALAR, SCALAR],
     [(2, 3, 4, 6)],
     2*3*4*6*5, 2*(2*3*4*6*5) + 2*1*4*5 + 3*5*6 + 5*2*3*4*6),
]


@pytest.mark.parametrize("ins,outs,macs,flops", [c[1:] for c in QLINEAR_MATMUL],
                         ids=[c[0] for c in QLINEAR_MATMUL])
def test_qlinear_matmul(ins, outs, macs, flops):
    c = cost("QLinearMatMul", ins, outs)
    assert (c.macs, c.flops) == (macs, flops)


ELEMENTWISE = [
    ("QuantizeLinear", [(2, 3), SCALAR, SCALAR], (1 + 1 + 2 + 1)*2*3),  # (div, round, saturate 2, add zp)*n
    ("QuantizeLinear", [(2, 3), (3,)], (1 + 1 + 2)*2*3),  # no zero point: (div, round, saturate 2)*n
    ("DequantizeLinear", [(4, 5), (4,), (4,)], (1 + 1)*4*5),  # (sub zp, mul)*n
    ("DequantizeLinear", [(4, 5), SCALAR], 1*4*5),  # int32 style, no zero point: mul*n
    ("DynamicQuantizeLinear", [(4, 5)],
     4*5*(2 + 1 + 1 + 2 + 1) + (1 + 1 + 1 + 1 + 1 + 2)),
    # n*(min and max compares, div, round, saturate 2, add zp)
    # + once: range sub, /(qmax-qmin), min/scale div, qmin - sub, round, saturate 2
]


@pytest.mark.parametrize("op,ins,flops", ELEMENTWISE, ids=[f"{c[0]}_{i}" for i, c in enumerate(ELEMENTWISE)])
def test_quantize_dequantize(op, ins, flops):
    c = cost(op, ins, [ins[0]])
    assert (c.macs, c.flops) == (0, flops)


@pytest.mark.parametrize("op,roles", [
    ("QLinearConv", {0: DATA, 1: QUANT, 2: QUANT, 3: WEIGHT, 4: QUANT, 5: QUANT, 6: QUANT, 7: QUANT,
                     8: WEIGHT}),
    ("ConvInteger", {0: DATA, 1: WEIGHT, 2: QUANT, 3: QUANT}),
    ("MatMulInteger", {0: DATA, 1: WEIGHT, 2: QUANT, 3: QUANT}),
    ("QLinearMatMul", {0: DATA, 1: QUANT, 2: QUANT, 3: WEIGHT, 4: QUANT, 5: QUANT, 6: QUANT, 7: QUANT}),
    ("QuantizeLinear", {0: DATA, 1: QUANT, 2: QUANT}),
    ("DequantizeLinear", {0: WEIGHT, 1: QUANT, 2: QUANT}),
    ("DynamicQuantizeLinear", {0: DATA}),
])
def test_roles(op, roles):
    r = registry.lookup("", op)
    assert {i: r.role(i) for i in roles} == roles


def test_pipeline_qlinear_conv():
    inits = [weight("xs", []), weight("xz", [], UINT8), weight("w", [4, 3, 3, 3], INT8),
             weight("ws", [4]), weight("wz", [4], INT8), weight("ys", []), weight("yz", [], UINT8),
             weight("b", [4], INT32)]
    model = node_model("QLinearConv",
                       [("x", UINT8, [1, 3, 8, 8]), "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                       [("y", UINT8, None)], initializers=inits)
    report = onnxscore.analyze(model)
    layer = report.layers[0]
    assert layer.status == "ok"
    assert layer.macs == 1*4*6*6*3*3*3  # N*Cout*Ho*Wo*Cin*Kh*Kw
    assert layer.flops == 2*(1*4*6*6*3*3*3) + 1*3*8*8 + 4*3*3*3 + 5*1*4*6*6 + 1*4*6*6
    assert report.totals.params == 4*3*3*3 + 4  # weight elements + bias elements, scales/zps not counted
    assert report.totals.buffers == 0


def test_pipeline_dequantized_weight_matmul():
    """QDQ weight: the int8 initializer is one parameter, counted once at the MatMul using it."""
    inits = [weight("wq", [64, 32], INT8), weight("ws", []), weight("wz", [], INT8)]
    dq = helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], name="dq")
    mm = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    graph = helper.make_graph([dq, mm], "g", [helper.make_tensor_value_info("x", FLOAT, [2, 64])],
                              [helper.make_tensor_value_info("y", FLOAT, None)], inits)
    report = onnxscore.analyze(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)]))
    layers = {layer.op_type: layer for layer in report.layers}
    assert layers["DequantizeLinear"].flops == (1 + 1)*64*32  # (sub zp, mul)*n
    assert layers["MatMul"].macs == 2*32*64  # M*N*K
    assert report.totals.params == 64*32  # the stored int8 weight, once
