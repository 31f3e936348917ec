"""Data movement and shape ops: zero-cost by declaration, CONTROL on their steering inputs.

Only ScatterElements/ScatterND with a ``reduction`` do arithmetic: one combine per update.
"""
from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from onnxscore.ops import registry
from onnxscore.ops.registry import CONTROL, DATA, Cost
from tests.opmodels import cost, node_model, weight

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64

ZERO_COST = [
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Transpose", "DepthToSpace",
    "SpaceToDepth", "Concat", "Split", "Slice", "Gather", "GatherElements", "GatherND", "Compress",
    "Scatter", "TensorScatter", "Expand", "Tile", "Pad", "CenterCropPad", "ReverseSequence",
    "Trilu", "Cast", "CastLike", "BitCast", "Dropout", "Shape", "Size", "Constant",
    "ConstantOfShape", "EyeLike", "Range", "OneHot", "NonZero", "Unique", "Optional",
    "OptionalGetElement", "OptionalHasElement", "SequenceAt", "SequenceConstruct", "SequenceEmpty",
    "SequenceErase", "SequenceInsert", "SequenceLength", "ConcatFromSequence", "SplitToSequence",
    "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Bernoulli",
    "Multinomial", "StringConcat", "StringNormalizer", "StringSplit", "RegexFullMatch",
    "ImageDecoder",
]


@pytest.mark.parametrize("op", ZERO_COST)
def test_zero_cost_declared_with_a_reason(op):
    r = registry.lookup("", op)
    assert r is not None and r.zero_cost
    assert r.doc  # the `why`
    assert cost(op, [(64, 64), (2,)], [(4096,)]) == Cost(0, 0)


@pytest.mark.parametrize("op,indices", [
    ("Reshape", [1]), ("Squeeze", [1]), ("Unsqueeze", [1]), ("Split", [1]),
    ("Slice", [1, 2, 3, 4]), ("Gather", [1]), ("GatherElements", [1]), ("GatherND", [1]),
    ("Compress", [1]), ("Scatter", [1]), ("ScatterElements", [1]), ("ScatterND", [1]),
    ("TensorScatter", [2]), ("Expand", [1]), ("Tile", [1]), ("Pad", [1, 2, 3]),
    ("CenterCropPad", [1]), ("ReverseSequence", [1]), ("Trilu", [1]), ("CastLike", [1]),
    ("Dropout", [1, 2]), ("Shape", [0]), ("Size", [0]), ("ConstantOfShape", [0]),
    ("EyeLike", [0]), ("Range", [0, 1, 2]), ("OneHot", [1, 2]), ("SequenceAt", [1]),
    ("SequenceErase", [1]), ("SequenceInsert", [2]), ("SplitToSequence", [1]),
    ("RandomNormalLike", [0]), ("RandomUniformLike", [0]),
])
def test_control_inputs(op, indices):
    r = registry.lookup("", op)
    for i in indices:
        assert r.role(i) == CONTROL, (op, i)


@pytest.mark.parametrize("op,index", [
    ("Gather", 0), ("GatherND", 0), ("Concat", 1), ("ScatterND", 2), ("TensorScatter", 1),
])
def test_data_inputs(op, index):
    assert registry.lookup("", op).role(index) == DATA


# (id, op, data, indices, updates, reduction, flops)
SCATTER = [
    ("elements_none", "ScatterElements", (4, 5), (2, 3), (2, 3), "none", 0),  # a copy
    ("elements_add", "ScatterElements", (4, 5), (2, 3), (2, 3), "add", 2*3),  # one add per update
    ("elements_max", "ScatterElements", (4, 5), (2, 3), (2, 3), "max", 2*3),
    ("nd_mul", "ScatterND", (10, 8), (4, 1), (4, 8), "mul", 4*8),  # 4 rows of 8 updates
    ("nd_none", "ScatterND", (10, 8), (4, 1), (4, 8), "none", 0),
]


@pytest.mark.parametrize("case", SCATTER, ids=lambda c: c[0])
def test_scatter_reduction(case):
    _, op, data, idx, upd, reduction, flops = case
    assert cost(op, [data, idx, upd], [data], {"reduction": reduction}) == Cost(0, flops)


def test_scatter_default_reduction_is_none():
    assert cost("ScatterND", [(10, 8), (4, 1), (4, 8)], [(10, 8)]) == Cost(0, 0)


def test_pipeline_gather_embedding_table_counts():
    import onnxscore
    model = node_model("Gather", [("table", FLOAT, [1000, 64]), ("ids", INT64, [1, 16])],
                       [("y", FLOAT, None)], initializers=[weight("table", [1000, 64])])
    report = onnxscore.analyze(model)
    layer = report.layers[0]
    assert layer.status == "zero"  # a declared zero-cost op, not an unknown
    assert (layer.macs, layer.flops) == (0, 0)
    assert report.totals.params == 1000*64  # vocab * width


def test_pipeline_gather_constant_indices_not_counted():
    import onnxscore
    model = node_model("Gather", [("table", FLOAT, [1000, 64]), ("ids", INT64, [16])],
                       [("y", FLOAT, None)],
                       initializers=[weight("table", [1000, 64]), weight("ids", [16], INT64)])
    report = onnxscore.analyze(model)
    assert report.totals.params == 1000*64  # the 16 indices are CONTROL


def test_pipeline_reshape_shape_is_control():
    import onnxscore
    shape = helper.make_tensor("shape", INT64, [2], [4, 6])
    model = node_model("Reshape", [("x", FLOAT, [2, 3, 4]), ("shape", INT64, [2])],
                       [("y", FLOAT, None)], initializers=[shape])
    report = onnxscore.analyze(model)
    assert report.layers[0].status == "zero"
    assert (report.totals.params, report.totals.flops) == (0, 0)


def test_pipeline_pad_float_constant_value_is_control():
    import onnxscore
    pads = helper.make_tensor("pads", INT64, [4], [0, 1, 0, 1])
    model = node_model("Pad", [("x", FLOAT, [2, 3]), ("pads", INT64, [4]), ("v", FLOAT, [1])],
                       [("y", FLOAT, None)], initializers=[pads, weight("v", [1])])
    report = onnxscore.analyze(model)
    assert (report.totals.params, report.totals.flops) == (0, 0)
