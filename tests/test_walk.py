"""The walker: every weight counted exactly once, whatever makes it; unknown is never zero."""
import networkx as nx
import numpy as np
from onnx import TensorProto, helper, numpy_helper

import onnxscore
from onnxscore.poly import Poly
from onnxscore.report import SYMBOLIC, UNKNOWN, UNSUPPORTED
from tests.opmodels import weight

F = TensorProto.FLOAT
W_ELEMS = 4 * 3 * 3 * 3  # Cout*Cin*Kh*Kw of the conv weight used below
CONV_MACS = 1 * 4 * 6 * 6 * 3 * 3 * 3  # N*Cout*Ho*Wo*Cin*Kh*Kw for x 1x3x8x8, 3x3 kernel


def model(nodes, inits=(), inputs=(("x", F, [1, 3, 8, 8]),), outputs=(("y", F, None),), opset=21, ir=None):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(*i) for i in inputs],
                          [helper.make_tensor_value_info(*o) for o in outputs], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    if ir is not None:
        m.ir_version = ir
    return m


def conv(w="w", x="x", y="y"):
    return helper.make_node("Conv", [x, w], [y], name="conv")


def test_initializer():
    r = onnxscore.analyze(model([conv()], [weight("w", [4, 3, 3, 3])]))
    assert (r.totals.params, r.totals.macs) == (W_ELEMS, CONV_MACS)
    assert r.layers[0].params == W_ELEMS and r.layers[0].weights == ("w",)
    assert r.totals.weight_bytes == W_ELEMS * 4
    assert r.totals.weight_bytes_by_dtype == {"float": W_ELEMS * 4}


def test_constant_node():
    c = helper.make_node("Constant", [], ["w"], value=weight("wv", [4, 3, 3, 3]))
    r = onnxscore.analyze(model([c, conv()]))
    assert r.totals.params == W_ELEMS


def test_constant_of_shape():
    shape = numpy_helper.from_array(np.array([4, 3, 3, 3], dtype=np.int64), "w_shape")
    cos = helper.make_node("ConstantOfShape", ["w_shape"], ["w"],
                           value=helper.make_tensor("v", F, [1], [0.02]))
    r = onnxscore.analyze(model([cos, conv()], [shape]))
    assert r.totals.params == W_ELEMS  # the 4 shape values are not parameters
    assert r.totals.weight_bytes == W_ELEMS * 4


def test_graph_input_with_initializer():
    m = model([conv()], [weight("w", [4, 3, 3, 3])],
              inputs=(("x", F, [1, 3, 8, 8]), ("w", F, [4, 3, 3, 3])), opset=9, ir=3)
    r = onnxscore.analyze(m)
    assert r.totals.params == W_ELEMS
    assert list(r.model.inputs) == ["x"]


def test_weight_behind_dequantize_cast_transpose_reshape():
    q = numpy_helper.from_array(np.zeros([3, 3, 3, 4], dtype=np.int8), "wq")  # stored transposed
    scale = numpy_helper.from_array(np.array(0.1, dtype=np.float32), "s")
    zp = numpy_helper.from_array(np.array(0, dtype=np.int8), "zp")
    flat = numpy_helper.from_array(np.array([4, 27], dtype=np.int64), "flat")
    back = numpy_helper.from_array(np.array([4, 3, 3, 3], dtype=np.int64), "back")
    nodes = [helper.make_node("DequantizeLinear", ["wq", "s", "zp"], ["wd"]),
             helper.make_node("Cast", ["wd"], ["wc"], to=F),
             helper.make_node("Transpose", ["wc"], ["wt"], perm=[3, 0, 1, 2]),
             helper.make_node("Reshape", ["wt", "flat"], ["wr"]),
             helper.make_node("Reshape", ["wr", "back"], ["w"]), conv()]
    r = onnxscore.analyze(model(nodes, [q, scale, zp, flat, back]))
    assert r.totals.params == W_ELEMS  # counted once, at the conv
    assert r.totals.quant_overhead == 2  # one scale, one zero point
    assert r.totals.weight_bytes == W_ELEMS * 1 + 4 + 1  # int8 weight + f32 scale + int8 zp
    conv_layer = next(layer for layer in r.layers if layer.op_type == "Conv")
    assert conv_layer.params == W_ELEMS and conv_layer.weights == ("wq",)


def test_int4_weights_are_packed():
    q = helper.make_tensor("wq", TensorProto.INT4, [4, 3, 3, 3], [0] * W_ELEMS)
    scale = numpy_helper.from_array(np.array(0.1, dtype=np.float32), "s")
    nodes = [helper.make_node("DequantizeLinear", ["wq", "s"], ["w"]), conv()]
    r = onnxscore.analyze(model(nodes, [q, scale]))
    assert r.totals.params == W_ELEMS
    assert r.totals.weight_bytes_by_dtype["int4"] == (W_ELEMS + 1) // 2  # two 4-bit values a byte


def test_shared_weight_counted_once_and_listed():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="first"),
             helper.make_node("MatMul", ["h", "w"], ["y"], name="second")]
    r = onnxscore.analyze(model(nodes, [weight("w", [8, 8])], inputs=(("x", F, [2, 8]),)))
    assert r.totals.params == 8 * 8
    assert r.shared_weights == {"w": ("first", "second")}
    assert [layer.params for layer in r.layers] == [64, 0]
    assert r.totals.macs == 2 * (2 * 8 * 8)  # two MatMuls of M*K*N


def test_shape_tensors_and_scalars_are_not_parameters():
    shape = numpy_helper.from_array(np.array([2, 4, 2], dtype=np.int64), "shape")
    half = numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half")
    bias = weight("bias", [2])
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]),
             helper.make_node("Mul", ["r", "half"], ["m"]),
             helper.make_node("Add", ["m", "bias"], ["y"])]
    r = onnxscore.analyze(model(nodes, [shape, half, bias], inputs=(("x", F, [2, 8]),)))
    assert r.totals.params == 2  # only the [2] bias: shape is int64, 0.5 a scalar


def test_named_dimension_gives_an_exact_formula():
    m = model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [weight("w", [8, 8])],
              inputs=(("x", F, ["batch", "seq", 8]),))
    r = onnxscore.analyze(m)
    layer = r.layers[0]
    assert layer.status == SYMBOLIC and layer.macs is None and layer.flops is None
    assert layer.macs_formula == 64 * Poly.symbol("seq")  # B(=1)*seq*K*N = seq*8*8
    assert str(r.totals.macs_formula) == "64*seq" and str(r.totals.flops_formula) == "128*seq"
    assert r.unresolved_dims == {"seq": ("mm",)}
    assert not r.totals.complete
    assert any("--dim seq=N" in w and "exact polynomials" in w for w in r.warnings)
    assert onnxscore.analyze(m, dims={"seq": 5}).totals.macs == 1 * 5 * 8 * 8  # B*S*K*N
    assert r.to_dict()["totals"]["macs_formula"] == "64*seq"


def test_unnamed_and_minus_one_dims_are_named_after_their_input():
    # paddle2onnx writes -1 for a dynamic dim, other exporters leave it empty: both become
    # "<input>:<axis>", a dim the user can set, never a refusal
    for declared in (None, -1, "?", "unk__3"):
        m = model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [weight("w", [8, 8])],
                  inputs=(("x", F, [1, declared, 8]),))
        r = onnxscore.analyze(m)
        assert r.model.inputs["x"] == (1, "x:1", 8)
        assert r.layers[0].status == SYMBOLIC and str(r.totals.macs_formula) == "64*x:1"  # 1*S*8*8
        assert onnxscore.analyze(m, dims={"x:1": 5}).totals.macs == 1 * 5 * 8 * 8  # B*S*K*N


def test_shape_from_data_is_unknown_not_zero():
    # the Reshape target is a graph input: its value is data, so the MatMul after it is unknown
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
             helper.make_node("MatMul", ["r", "w"], ["y"], name="mm")]
    m = model(nodes, [weight("w", [8, 8])],
              inputs=(("x", F, [1, 16, 8]), ("shape", TensorProto.INT64, [3])))
    r = onnxscore.analyze(m)
    layer = r.layers[1]
    assert layer.status == UNKNOWN and layer.macs is None and layer.macs_formula is None
    assert r.totals.macs_formula is None and not r.totals.complete
    assert any("lower bounds" in w for w in r.warnings)
    # given the value, everything is known: [1, 16, 8] -> [2, 8, 8], MatMul 2*8*8*8
    r = onnxscore.analyze(m, values={"shape": [2, 8, 8]})
    assert r.totals.complete and r.totals.macs == 2 * 8 * 8 * 8


def test_unsupported_op_is_reported_not_fatal():
    custom = helper.make_node("Frobnicate", ["x", "w"], ["y"], name="frob", domain="my.ops")
    m = model([custom], [weight("w", [16])], inputs=(("x", F, [16]),))
    m.opset_import.append(helper.make_opsetid("my.ops", 1))
    r = onnxscore.analyze(m)
    assert r.layers[0].status == UNSUPPORTED and r.layers[0].macs is None
    assert r.unsupported_ops == {"my.ops::Frobnicate": 1}
    assert not r.totals.complete
    assert r.totals.params == 16  # its float constant input still counts as a weight


def test_an_op_onnx_does_not_have_is_named_as_such():
    """tf2onnx leaves TensorFlow ops it cannot convert (Erfc) in the default domain; a user
    should read that the file is not valid ONNX there, not that onnxscore lacks a rule.
    An op of ONNX without a rule would say "no cost rule"; a custom domain is not judged."""
    nodes = [helper.make_node("Erfc", ["x"], ["e"], name="erfc"),
             helper.make_node("Frobnicate", ["e"], ["y"], name="frob", domain="my.ops")]
    m = model(nodes, [], inputs=(("x", F, [16]),))
    m.opset_import.append(helper.make_opsetid("my.ops", 1))
    r = onnxscore.analyze(m)
    assert [layer.status for layer in r.layers] == [UNSUPPORTED, UNSUPPORTED]
    assert r.layers[0].note == "ai.onnx::Erfc is not an ONNX operator (an exporter left it unconverted)"
    assert r.layers[1].note == "no cost rule for my.ops::Frobnicate"
    assert r.unsupported_ops == {"ai.onnx::Erfc": 1, "my.ops::Frobnicate": 1}
    assert "totals are lower bounds: not ONNX operators (an exporter left them unconverted): " \
           "ai.onnx::Erfc (1); no cost rule for my.ops::Frobnicate (1)" in r.warnings


def test_unused_initializer_is_warned_and_not_counted():
    r = onnxscore.analyze(model([conv()], [weight("w", [4, 3, 3, 3]), weight("orphan", [100])]))
    assert r.totals.params == W_ELEMS
    assert any("not used by any node" in w for w in r.warnings)


def test_load_graph_is_a_digraph_of_ops_and_tensors():
    m = model([conv(y="c"), helper.make_node("Relu", ["c"], ["y"], name="relu")], [weight("w", [4, 3, 3, 3])])
    G = onnxscore.load_graph(m)
    assert isinstance(G, nx.DiGraph) and set(G) == {"conv", "relu"}
    assert G.edges["conv", "relu"]["name"] == "c"
    assert G.edges["conv", "relu"]["shape"] == (1, 4, 6, 6)
    assert G.edges["conv", "relu"]["dtype"] == F
    assert G.nodes["conv"]["input_shapes"] == [(1, 3, 8, 8), (4, 3, 3, 3)]
    assert G.nodes["conv"]["attrs"] == {}
    report = onnxscore.analyze_graph(G)
    onnxscore.annotate(G, report)
    assert G.nodes["conv"]["macs"] == CONV_MACS and G.nodes["conv"]["params"] == W_ELEMS


def test_peak_activation_bytes():
    # x (1x3x8x8) -> conv -> c (1x4x6x6) -> relu -> y; weights are not activations.
    # step 0 (conv): x and c alive = (192 + 144) floats; step 1 (relu): c and y = (144 + 144) floats
    m = model([conv(y="c"), helper.make_node("Relu", ["c"], ["y"])], [weight("w", [4, 3, 3, 3])])
    assert onnxscore.analyze(m).totals.peak_activation_bytes == (3 * 8 * 8 + 4 * 6 * 6) * 4
    unknown = model([conv()], [weight("w", [4, 3, 3, 3])], inputs=(("x", F, [1, 3, "h", 8]),))
    assert onnxscore.analyze(unknown).totals.peak_activation_bytes is None


def test_impossible_attributes_are_said_in_words():
    # stride 0, channels that the groups do not divide, a Scan without its body: the model's
    # fault, reported on the layer in words (not an exception name), the analysis goes on
    cases = [
        (helper.make_node("Conv", ["x", "w"], ["y"], name="c", strides=[0, 1]), [weight("w", [4, 3, 3, 3])],
         [1, 3, 8, 8], "strides must be positive"),
        (helper.make_node("Conv", ["x", "w"], ["y"], name="c", group=2), [weight("w", [4, 3, 3, 3])],
         [1, 3, 8, 8], "input has 3 channels, but its weight and group 2 expect 3 x 2"),
        (helper.make_node("Scan", ["x"], ["y"], name="c", num_scan_inputs=1), [], [4, 3], "has no body graph"),
    ]
    for node, inits, shape, words in cases:
        r = onnxscore.analyze(model([node], inits, inputs=(("x", TensorProto.FLOAT, shape),)))
        layer = r.layers[0]
        assert layer.status == "error" and words in layer.note, layer.note
        assert "Error" not in layer.note


def test_a_formula_is_not_reported_as_unknown():
    # MatMul over [1, seq, 8]: its cost is exactly 64*seq; the footer says so, not "unknown"
    from onnxscore.render.summary import footer_lines

    m = model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [weight("w", [8, 8])],
              inputs=(("x", TensorProto.FLOAT, [1, "seq", 8]),))
    lines = footer_lines(onnxscore.analyze(m))
    assert any(ln.startswith("formula: 1 layer(s) cost a polynomial in seq") for ln in lines)
    assert not any(ln.startswith("unknown:") for ln in lines)


def test_nodes_alike_cost_alike_and_a_rule_reading_a_value_is_run_for_each_node(monkeypatch):
    """The walker runs a rule once for nodes with the same op, shapes, dtypes and attributes,
    unless the rule read an input's value: two CumSum nodes on the same [2, 8] tensor differ
    only by the value of their axis input."""
    from onnxscore import ops

    x = ("x", F, [2, 8])
    axis0 = numpy_helper.from_array(np.array(0, np.int64), "axis0")
    axis1 = numpy_helper.from_array(np.array(1, np.int64), "axis1")
    nodes = [helper.make_node("Relu", ["x"], ["r0"], name="relu0"),
             helper.make_node("Relu", ["r0"], ["r1"], name="relu1"),
             helper.make_node("Relu", ["r1"], ["r2"], name="relu2"),
             helper.make_node("CumSum", ["r2", "axis0"], ["c0"], name="cum0"),
             helper.make_node("CumSum", ["r2", "axis1"], ["y"], name="cum1")]
    calls = []
    real = ops.lookup

    def counting(domain, op_type):
        rule = real(domain, op_type)
        if rule is None or op_type != "Relu":
            return rule
        fn = rule.fn
        return type(rule)(**{**rule.__dict__, "fn": lambda ctx: calls.append(ctx.name) or fn(ctx)})

    monkeypatch.setattr(ops, "lookup", counting)
    r = onnxscore.analyze(model(nodes, [axis0, axis1], inputs=(x,)))
    by_name = {layer.name: layer for layer in r.layers}
    assert [by_name[f"relu{i}"].flops for i in range(3)] == [2 * 8] * 3  # one max per element
    assert calls == ["relu0"]  # relu1 and relu2 are alike: the first one's cost is reused
    # axis 0: 8 columns of length 2 -> 8 * (2 - 1) adds; axis 1: 2 rows of 8 -> 2 * (8 - 1)
    assert (by_name["cum0"].flops, by_name["cum1"].flops) == (8 * 1, 2 * 7)
