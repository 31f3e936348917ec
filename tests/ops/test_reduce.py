"""Reductions, scans, TopK and Det: hand counts from the spec definitions.

Folding m values into one takes m - 1 binary ops, so a reduction of n_in elements into n_out
outputs takes n_in - n_out, whatever keepdims says.
"""
from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from onnxscore.ops import registry
from onnxscore.ops.registry import CONTROL, DATA, Cost, UnknownShape
from tests.opmodels import cost, node_model

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64

# (id, op, input shapes, output shapes, attrs, flops)
REDUCE = [
    # keepdims=0: [2,3,4] -> [2,4]; 8 outputs each folding 3 values: 8*(3-1) adds.
    ("sum_keepdims0", "ReduceSum", [(2, 3, 4), (1,)], [(2, 4)], {"keepdims": 0}, 8*(3 - 1)),
    ("sum_keepdims1", "ReduceSum", [(2, 3, 4), (1,)], [(2, 1, 4)], {}, 8*(3 - 1)),
    ("sum_all", "ReduceSum", [(2, 3, 4)], [(1, 1, 1)], {}, 2*3*4 - 1),  # no axes: reduce all
    # Mean over 12 values per output: 11 adds + 1 divide, 2 outputs.
    ("mean_two_axes", "ReduceMean", [(2, 3, 4), (2,)], [(2, 1, 1)], {}, 2*(11 + 1)),
    ("mean_opset13_attr", "ReduceMean", [(2, 3, 4)], [(2, 4)], {"axes": [1], "keepdims": 0},
     8*(2 + 1)),
    ("max", "ReduceMax", [(5, 6), (1,)], [(5, 1)], {}, 5*(6 - 1)),  # compares
    ("min", "ReduceMin", [(5, 6), (1,)], [(1, 6)], {}, 6*(5 - 1)),
    ("prod", "ReduceProd", [(5, 6), (1,)], [(5, 1)], {}, 5*(6 - 1)),  # muls
    ("l1", "ReduceL1", [(5, 6), (1,)], [(5, 1)], {}, 5*6 + 5*(6 - 1)),  # abs each, adds
    # L2: square each, adds, sqrt per output.
    ("l2", "ReduceL2", [(3, 4)], [(1, 1)], {}, 3*4 + (3*4 - 1) + 1),
    ("sum_square", "ReduceSumSquare", [(3, 4), (1,)], [(3,)], {"keepdims": 0}, 3*4 + 3*(4 - 1)),
    ("log_sum", "ReduceLogSum", [(3, 4), (1,)], [(3,)], {"keepdims": 0}, 3*(4 - 1) + 3),  # + log
    # exp each, adds, log per output.
    ("log_sum_exp", "ReduceLogSumExp", [(3, 4), (1,)], [(3,)], {"keepdims": 0},
     3*4 + 3*(4 - 1) + 3),
    # noop_with_empty_axes=1 with no axes is an identity.
    ("noop_no_axes", "ReduceSum", [(3, 4)], [(3, 4)], {"noop_with_empty_axes": 1}, 0),
    ("noop_empty_axes", "ReduceL2", [(3, 4), (0,)], [(3, 4)], {"noop_with_empty_axes": 1}, 0),
    ("noop_with_axes", "ReduceSum", [(3, 4), (1,)], [(3, 1)], {"noop_with_empty_axes": 1},
     3*(4 - 1)),
    # ArgMax/ArgMin: n - 1 compares per row.
    ("argmax_keepdims0", "ArgMax", [(2, 5)], [(2,)], {"axis": 1, "keepdims": 0}, 2*(5 - 1)),
    ("argmin_axis0", "ArgMin", [(2, 5)], [(1, 5)], {"axis": 0}, 5*(2 - 1)),
    # TopK, heap of k: n * (floor(log2 k) + 1) compares per row.
    ("topk_k5", "TopK", [(2, 100), (1,)], [(2, 5), (2, 5)], {}, 2*100*(2 + 1)),  # log2 5 -> 2
    ("topk_k1", "TopK", [(2, 100), (1,)], [(2, 1), (2, 1)], {}, 2*100*1),
    ("topk_k8_axis0", "TopK", [(16, 3), (1,)], [(8, 3), (8, 3)], {"axis": 0}, 3*16*(3 + 1)),
]


@pytest.mark.parametrize("case", REDUCE, ids=lambda c: c[0])
def test_reduce_flops(case):
    _, op, ins, outs, attrs, flops = case
    assert cost(op, ins, outs, attrs) == Cost(0, flops)


# (id, op, input shape, axis, attrs, flops)
SCANS = [
    ("cumsum_axis1", "CumSum", (2, 5), 1, {}, 2*(5 - 1)),  # rows * (n - 1) adds
    ("cumsum_axis0", "CumSum", (2, 5), 0, {}, 5*(2 - 1)),
    ("cumsum_negative_axis", "CumSum", (2, 5), -1, {}, 2*(5 - 1)),
    ("cumsum_exclusive", "CumSum", (2, 5), 1, {"exclusive": 1}, 2*(5 - 2)),  # 0, x0, then adds
    ("cumsum_reverse", "CumSum", (2, 5), 1, {"reverse": 1}, 2*(5 - 1)),
    ("cumprod", "CumProd", (3, 4), 1, {}, 3*(4 - 1)),
    ("cumprod_exclusive_len1", "CumProd", (3, 1), 1, {"exclusive": 1}, 0),
]


@pytest.mark.parametrize("case", SCANS, ids=lambda c: c[0])
def test_scans(case):
    _, op, shape, axis, attrs, flops = case
    assert cost(op, [shape, ()], [shape], attrs, values={1: axis}) == Cost(0, flops)


def test_cumsum_axis_unknown_needs_its_value():
    with pytest.raises(UnknownShape):
        cost("CumSum", [(2, 5), ()], [(2, 5)])
    assert cost("CumSum", [(6,), ()], [(6,)]).flops == 6 - 1  # rank 1: only one axis


# (id, shape, macs, extra flops): LU macs sum_{j<n} j^2, extras n^2 - 1 (pivots, divides, product).
DET = [
    ("2x2", (2, 2), 1, 2*2 - 1),
    ("batch_3x3", (2, 3, 3), 2*(1 + 4), 2*(3*3 - 1)),
    ("4x4", (4, 4), 1 + 4 + 9, 4*4 - 1),
    ("1x1", (1, 1), 0, 0),
]


@pytest.mark.parametrize("case", DET, ids=lambda c: c[0])
def test_det(case):
    _, shape, macs, extra = case
    assert cost("Det", [shape], [shape[:-2]]) == Cost(macs, 2*macs + extra)


@pytest.mark.parametrize("op,index,role", [
    ("ReduceSum", 1, CONTROL), ("ReduceMean", 1, CONTROL), ("ReduceLogSumExp", 1, CONTROL),
    ("ReduceMax", 0, DATA), ("TopK", 1, CONTROL), ("CumSum", 1, CONTROL), ("CumProd", 1, CONTROL),
])
def test_roles(op, index, role):
    assert registry.lookup("", op).role(index) == role


def test_pipeline_reduce_mean_axes_initializer():
    import onnxscore
    axes = helper.make_tensor("axes", INT64, [2], [2, 3])
    model = node_model("ReduceMean", [("x", FLOAT, [1, 32, 7, 7]), ("axes", INT64, [2])],
                       [("y", FLOAT, None)], {"keepdims": 0}, initializers=[axes])
    report = onnxscore.analyze(model)
    layer = report.layers[0]
    assert layer.status == "ok"
    assert layer.flops == 1*32*(7*7 - 1 + 1)  # per output: 48 adds + 1 divide
    assert report.totals.params == 0


def test_pipeline_cumsum_with_constant_axis():
    import onnxscore
    axis = helper.make_tensor("axis", INT64, [], [1])
    model = node_model("CumSum", [("x", FLOAT, [3, 10]), ("axis", INT64, [])],
                       [("y", FLOAT, None)], initializers=[axis])
    report = onnxscore.analyze(model)
    assert report.layers[0].flops == 3*(10 - 1)


def test_pipeline_topk():
    import onnxscore
    k = helper.make_tensor("k", INT64, [1], [4])
    model = node_model("TopK", [("x", FLOAT, [2, 50]), ("k", INT64, [1])],
                       [("v", FLOAT, None), ("i", INT64, None)], initializers=[k])
    report = onnxscore.analyze(model)
    assert report.layers[0].flops == 2*50*(2 + 1)  # floor(log2 4) + 1 = 3 levels
    assert report.totals.params == 0
