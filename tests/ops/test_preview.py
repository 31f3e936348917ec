"""ai.onnx.preview FlexAttention and ai.onnx.preview.training optimizer steps."""
import pytest
from onnx import TensorProto, helper

import onnxscore
from onnxscore.report import UNKNOWN
from tests.opmodels import cost, node_model

F = TensorProto.FLOAT
TRAINING = "ai.onnx.preview.training"


@pytest.mark.parametrize("op, ins, attrs, flops", [
    # R, T, then X1, X2, G1, G2, H1, H2: optimized elements 6 + 4
    ("Adagrad", [(), (), (2, 3), (4,), (2, 3), (4,), (2, 3), (4,)], {}, 9 * (6 + 4) + 3),
    # R, T, X, G, V, H
    ("Adam", [(), (), (5,), (5,), (5,), (5,)], {}, 15 * 5 + 7),
    ("Momentum", [(), (), (3, 3), (3, 3), (3, 3)], {"mode": "standard"}, 7 * 9),
    ("Momentum", [(), (), (3, 3), (3, 3), (3, 3)], {"mode": "nesterov"}, 9 * 9),
])
def test_optimizers(op, ins, attrs, flops):
    c = cost(op, ins, [None], attrs, domain=TRAINING)
    assert (c.macs, c.flops) == (0, flops)


def _flex(score_mod=None):
    attrs = {} if score_mod is None else {"score_mod": score_mod}
    return node_model("FlexAttention", [("q", F, [1, 2, 3, 4]), ("k", F, [1, 2, 5, 4]), ("v", F, [1, 2, 5, 6])],
                      [("y", F, [1, 2, 3, 6])], attrs, domain="ai.onnx.preview", opset=23)


SCORES = 1 * 2 * 3 * 5  # B*heads*Lq*Lkv


def test_flex_attention_plain():
    r = onnxscore.analyze(_flex())
    assert r.totals.macs == SCORES * (4 + 6)  # Q*K^T (head 4) + P*V (v_head 6)
    assert r.totals.flops == 2 * SCORES * 10 + (1 + 5) * SCORES  # + scale, softmax per score


def test_flex_attention_score_mod_is_bound_to_the_score_shape():
    mod = helper.make_graph(
        [helper.make_node("Tanh", ["s"], ["t"])], "soft_cap",
        [helper.make_tensor_value_info("s", F, ["B", "H", "L", "S"])],
        [helper.make_tensor_value_info("t", F, ["B", "H", "L", "S"])])
    r = onnxscore.analyze(_flex(mod))
    layer = next(x for x in r.layers if x.parent is None)
    assert layer.status != UNKNOWN, layer.note
    assert r.totals.flops == 2 * SCORES * 10 + (1 + 5) * SCORES + SCORES  # + one tanh per score


def test_gradient_is_unknown_not_zero():
    m = node_model("Gradient", [("x", F, [2])], [("dx", F, [2])], {"xs": ["x"], "y": "x"},
                   domain=TRAINING)
    r = onnxscore.analyze(m)
    assert r.layers[0].status == UNKNOWN and r.layers[0].flops is None
