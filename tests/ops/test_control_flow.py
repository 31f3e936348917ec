"""If, Loop and Scan: subgraphs walked, loops multiplied by their trip count."""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

import onnxscore
from onnxscore.report import UNKNOWN
from tests.opmodels import weight

F, B, I64 = TensorProto.FLOAT, TensorProto.BOOL, TensorProto.INT64
VEC_MAT = 1 * 8 * 8  # MatMul [1,8] x [8,8]: M*K*N


def _model(nodes, inits, inputs, outputs):
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])


def _loop_model(trips):
    body = helper.make_graph(
        [helper.make_node("MatMul", ["v_in", "W"], ["v_out"], name="body_mm"),
         helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond")],
        "body",
        [helper.make_tensor_value_info("i", I64, []), helper.make_tensor_value_info("cond_in", B, []),
         helper.make_tensor_value_info("v_in", F, [1, 8])],
        [helper.make_tensor_value_info("cond_out", B, []), helper.make_tensor_value_info("v_out", F, [1, 8])])
    inits = [weight("W", [8, 8]), numpy_helper.from_array(np.array(True), "cond")]
    inputs = [helper.make_tensor_value_info("x", F, [1, 8])]
    if trips is None:
        m_name = "M"
        inputs.append(helper.make_tensor_value_info("M", I64, []))
    else:
        m_name = "M"
        inits.append(numpy_helper.from_array(np.array(trips, dtype=np.int64), "M"))
    loop = helper.make_node("Loop", [m_name, "cond", "x"], ["y"], name="loop", body=body)
    return _model([loop], inits, inputs, [helper.make_tensor_value_info("y", F, [1, 8])])


def test_loop_with_known_trip_count():
    r = onnxscore.analyze(_loop_model(5))
    loop = next(x for x in r.layers if x.name == "loop")
    assert loop.macs == 5 * VEC_MAT  # trips * body
    assert loop.params == 8 * 8 and r.totals.params == 8 * 8  # W counted once, not per iteration
    assert r.totals.macs == 5 * VEC_MAT
    body = [x for x in r.layers if x.parent == "loop/body"]
    assert [x.name for x in body] == ["loop/body/body_mm", "loop/body/body_cond"]
    assert body[0].macs == VEC_MAT  # listed per iteration


def test_loop_with_unknown_trip_count_is_unknown():
    r = onnxscore.analyze(_loop_model(None))
    loop = next(x for x in r.layers if x.name == "loop")
    assert loop.status == UNKNOWN and loop.macs is None
    assert not r.totals.complete


def test_if_takes_the_more_expensive_branch():
    then_g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["t"], name="then_mm")], "then",
                               [], [helper.make_tensor_value_info("t", F, [1, 8])])
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["e"], name="else_id")], "else",
                               [], [helper.make_tensor_value_info("e", F, [1, 8])])
    node = helper.make_node("If", ["c"], ["y"], name="if", then_branch=then_g, else_branch=else_g)
    m = _model([node], [weight("W", [8, 8])],
               [helper.make_tensor_value_info("x", F, [1, 8]), helper.make_tensor_value_info("c", B, [])],
               [helper.make_tensor_value_info("y", F, [1, 8])])
    r = onnxscore.analyze(m)
    layer = next(x for x in r.layers if x.name == "if")
    assert layer.macs == VEC_MAT  # max(then 64, else 0)
    assert "then_branch 64 MACs" in layer.note and "else_branch 0 MACs" in layer.note
    assert "counted the more expensive (then_branch)" in layer.note
    assert {x.parent for x in r.layers if x.parent} == {"if/then_branch", "if/else_branch"}
    assert r.totals.macs == VEC_MAT


def test_scan_multiplies_by_scanned_length():
    body = helper.make_graph(
        [helper.make_node("MatMul", ["row", "W"], ["out"], name="body_mm")], "body",
        [helper.make_tensor_value_info("row", F, [8])], [helper.make_tensor_value_info("out", F, [8])])
    node = helper.make_node("Scan", ["xs"], ["ys"], name="scan", body=body, num_scan_inputs=1)
    m = _model([node], [weight("W", [8, 8])], [helper.make_tensor_value_info("xs", F, [5, 8])],
               [helper.make_tensor_value_info("ys", F, [5, 8])])
    r = onnxscore.analyze(m)
    assert r.totals.macs == 5 * 8 * 8  # 5 rows * ([8] x [8,8]: K*N)
