"""Tables an exporter computed (rotary sin/cos, attention masks and expanded position biases)
are buffers, not parameters; learned tensors used otherwise stay parameters."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxscore
from tests.opmodels import weight

F = TensorProto.FLOAT
FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures")


def model(nodes, inputs, inits, opset=17):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, F, s) for n, s in inputs],
                          [helper.make_tensor_value_info("y", F, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def attention(bias_shape, scale=True):
    """scores = (q @ k^T) * s + bias -> Softmax -> @ v, q/k/v [1, 2, 16, 8] (2 heads, 16 tokens)."""
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["q", "kt"], ["raw"], name="qk")]
    scores = "raw"
    if scale:
        nodes.append(helper.make_node("Mul", ["raw", "s"], ["scaled"]))
        scores = "scaled"
    nodes += [helper.make_node("Add", [scores, "bias"], ["biased"], name="add_bias"),
              helper.make_node("Softmax", ["biased"], ["p"], axis=-1),
              helper.make_node("MatMul", ["p", "v"], ["y"], name="pv")]
    inits = [numpy_helper.from_array(np.array(0.35, np.float32), "s"), weight("bias", bias_shape)]
    return model(nodes, [("q", [1, 2, 16, 8]), ("k", [1, 2, 16, 8]), ("v", [1, 2, 16, 8])], inits)


def test_attention_mask_or_expanded_bias_is_a_buffer():
    for shape in ([1, 1, 16, 16], [2, 16, 16]):  # a causal mask; a bias per head
        r = onnxscore.analyze(attention(shape))
        n = int(np.prod(shape))
        assert (r.totals.params, r.totals.buffers) == (0, n), shape
    r = onnxscore.analyze(attention([1, 2, 16, 16], scale=False))
    assert r.totals.buffers == 2 * 16 * 16  # heads * queries * keys


def test_a_bias_not_added_to_scores_stays_a_parameter():
    # the same [16, 16] table added to an activation that is no attention score
    nodes = [helper.make_node("Add", ["x", "table"], ["y"], name="add")]
    r = onnxscore.analyze(model(nodes, [("x", [1, 16, 16])], [weight("table", [16, 16])]))
    assert (r.totals.params, r.totals.buffers) == (16 * 16, 0)


def rope(table_shape, gamma=False):
    """x * cos + rot(x) * sin, rot(x) = Neg then Concat halves (as exporters write it)."""
    nodes = [helper.make_node("Split", ["x"], ["a", "b"], axis=-1, num_outputs=2),
             helper.make_node("Neg", ["b"], ["nb"]),
             helper.make_node("Concat", ["nb", "a"], ["rot"], axis=-1),
             helper.make_node("Mul", ["x", "cos"], ["xc"]),
             helper.make_node("Mul", ["rot", "sin"], ["rs"]),
             helper.make_node("Add", ["xc", "rs"], ["y0"], name="rope")]
    inits = [weight("cos", table_shape), weight("sin", table_shape)]
    if gamma:  # LayerScale: a learned vector times the activation, then a residual add
        nodes += [helper.make_node("Mul", ["y0", "gamma"], ["g"]), helper.make_node("Add", ["g", "x"], ["y"])]
        inits.append(weight("gamma", [8]))
    else:
        nodes.append(helper.make_node("Identity", ["y0"], ["y"]))
    return model(nodes, [("x", [1, 2, 16, 8])], inits, opset=18)


def test_rotary_tables_are_buffers_a_learned_scale_is_not():
    r = onnxscore.analyze(rope([16, 8]))
    assert (r.totals.params, r.totals.buffers) == (0, 2 * 16 * 8)  # cos and sin, positions x dims
    r = onnxscore.analyze(rope([16, 8], gamma=True))
    assert (r.totals.params, r.totals.buffers) == (8, 2 * 16 * 8)  # gamma stays a parameter


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_rotary_transformer_from_both_exporters_matches_torch(exporter):
    # fixtures/export_rotary.py: torch counts 30,144 parameters; its 4 sin/cos tables (16 x 8
    # each, 512 elements) are buffers. The learned position embedding [1, 16, 32] is added to the
    # tokens and stays a parameter.
    with open(os.path.join(FIXTURES, "rotary_reference.json")) as f:
        ref = json.load(f)
    r = onnxscore.analyze(os.path.join(FIXTURES, ref["files"][exporter]))
    assert r.totals.params == ref["params"] == 30144
    assert r.totals.macs == ref["macs"]
    # the exporters store the tables differently: TorchScript one Constant per use (2 layers x
    # 4 uses x 128), the dynamo exporter one initializer per distinct table (2 x 128)
    assert r.totals.buffers == {"torchscript": 2 * 4 * 128, "dynamo": 2 * 128}[exporter]

