"""Cross-check against onnx-tool where its convention matches ours.

onnx-tool counts parameters as the sum of initializers and adds bias and activation costs to
its MACs, so it agrees with onnxscore exactly on a network of bias-free Conv/Gemm layers whose
weights are initializers; on the light models (weights from ConstantOfShape) it does not.
"""
import numpy as np
import pytest
from onnx import TensorProto, helper

import onnxscore
from tests.opmodels import weight

onnx_tool = pytest.importorskip("onnx_tool", reason="onnx-tool is the cross-check baseline (pip install onnx-tool)")


def _net(path):
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Conv", ["c1", "w2"], ["c2"], strides=[2, 2], group=4, name="conv2"),
             helper.make_node("Flatten", ["c2"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w3"], ["y"], transB=1, name="fc")]
    inits = [weight("w1", [8, 3, 3, 3]), weight("w2", [16, 2, 3, 3]), weight("w3", [10, 16 * 7 * 7])]
    g = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    path.write_bytes(model.SerializeToString())
    return str(path)


def test_agrees_with_onnx_tool_on_bias_free_initializer_weights(tmp_path):
    path = _net(tmp_path / "net.onnx")
    ours = onnxscore.analyze(path)
    m = onnx_tool.Model(path)
    m.graph.shape_infer({"x": np.zeros((1, 3, 16, 16), dtype=np.float32)})
    m.graph.profile()
    # by hand: conv1 1*8*16*16*3*3*3 + conv2 1*16*7*7*(8/4)*3*3 + fc 1*784*10
    assert ours.totals.macs == 8 * 16 * 16 * 27 + 16 * 7 * 7 * 2 * 9 + 784 * 10
    assert ours.totals.macs == int(m.graph.macs[0])
    assert ours.totals.params == 8 * 27 + 16 * 18 + 10 * 784 == int(m.graph.params)
