"""The shapes stage: values through shape arithmetic, control flow on known conditions, named
data-dependent dims, exact floor expressions over symbolic dims, and where shapes are lost.

Every graph here is the shape computation an exporter writes (TorchScript's channel split of
ShuffleNetV2, Swin's window padding), built with onnx.helper; every expected number is worked
out by hand next to it."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import onnxscore
from onnxscore.graph import graph_of
from onnxscore.poly import Poly, evaluate
from onnxscore.report import SYMBOLIC, UNKNOWN
from tests.opmodels import weight

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def ints(name, values):
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def model(nodes, inputs, outputs=(("y", F, None),), inits=(), opset=17):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                          [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def channel_split(c=116, hw=28):
    """ShuffleNetV2's ``x.chunk(2, dim=1)`` as TorchScript exports it: Shape -> Gather(1) ->
    Div(2) -> Unsqueeze -> Slice, then a 1x1 conv on the kept half."""
    half = c // 2
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "one"], ["c"], axis=0),
        helper.make_node("Div", ["c", "two"], ["half"], name="div"),
        helper.make_node("Unsqueeze", ["half", "zero_axis"], ["end"]),
        helper.make_node("Slice", ["x", "zero1", "end", "one1"], ["left"], name="slice"),
        helper.make_node("Conv", ["left", "w"], ["y"], name="conv"),
    ]
    inits = [ints("one", 1), ints("two", 2), ints("zero_axis", [0]), ints("zero1", [0]),
             ints("one1", [1]), weight("w", [half, half, 1, 1])]
    return model(nodes, [("x", F, [1, c, hw, hw])], inits=inits), half


def test_channel_split_is_evaluated():
    m, half = channel_split()
    G = graph_of(m)
    assert int(G.graph["values"]["half"]) == 58  # 116 // 2
    assert G.graph["tensors"]["left"][0] == (1, 58, 28, 28)
    r = onnxscore.analyze(m)
    assert r.totals.complete
    assert r.totals.macs == 1 * 58 * 28 * 28 * 58 * 1 * 1  # N*Cout*H*W*Cin*Kh*Kw


def test_channel_split_over_symbolic_channels_stays_exact():
    # with C symbolic, half = C // 2: the conv costs a formula in C (the weight fixes Cin = 58,
    # so only the output spatial size matters) and H
    m, _ = channel_split()
    x = m.graph.input[0].type.tensor_type.shape
    x.dim[2].ClearField("dim_value")
    x.dim[2].dim_param = "H"
    x.dim[3].ClearField("dim_value")
    x.dim[3].dim_param = "H"
    r = onnxscore.analyze(m)
    conv = next(la for la in r.layers if la.name == "conv")
    assert conv.status == SYMBOLIC
    assert conv.macs_formula == 58 * 58 * Poly.symbol("H") ** 2  # Cout*Cin*H*W
    assert onnxscore.analyze(m, dims={"H": 28}).totals.macs == 58 * 58 * 28 * 28


def swin_padding():
    """Swin's F.pad(x, (0, 0, 0, pad, 0, pad)) over [N, H, W, C] with pad = (7 - H % 7) % 7
    computed from the input's shape; ONNX pads are 4 begins then 4 ends:
    (0, 0, 0, 0, 0, pad, pad, 0). The padded tensor is ``xp``."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i1"], ["h"], axis=0),
        helper.make_node("Mod", ["h", "w7"], ["hm"]),
        helper.make_node("Sub", ["w7", "hm"], ["hs"]),
        helper.make_node("Mod", ["hs", "w7"], ["pad"], name="pad_amount"),
        helper.make_node("Unsqueeze", ["pad", "ax0"], ["pad1"]),
        helper.make_node("Concat", ["zeros5", "pad1", "pad1", "zero1"], ["pads"], axis=0),
        helper.make_node("Pad", ["x", "pads"], ["xp"], name="pad"),
    ]
    inits = [ints("i1", 1), ints("w7", 7), ints("ax0", [0]), ints("zeros5", [0, 0, 0, 0, 0]),
             ints("zero1", [0]), weight("w", [16, 16])]
    return nodes, inits


def test_swin_padding_and_window_partition_are_evaluated():
    # then the window partition Reshape [-1, 7*7, C] and a MatMul;
    # x [1, 57, 57, 16]: pad = (7 - 57 % 7) % 7 = (7 - 1) % 7 = 6
    nodes, inits = swin_padding()
    nodes += [helper.make_node("Reshape", ["xp", "win"], ["windows"], name="partition"),
              helper.make_node("MatMul", ["windows", "w"], ["y"], name="mm")]
    m = model(nodes, [("x", F, [1, 57, 57, 16])], inits=inits + [ints("win", [-1, 49, 16])])
    G = graph_of(m)
    assert int(G.graph["values"]["pad"]) == 6  # (7 - 57 % 7) % 7
    assert G.graph["tensors"]["xp"][0] == (1, 63, 63, 16)  # 57 + 6
    assert G.graph["tensors"]["windows"][0] == (81, 49, 16)  # (63 / 7)^2 windows of 7*7
    r = onnxscore.analyze(m)
    assert r.totals.complete and r.totals.macs == 81 * 49 * 16 * 16  # windows*tokens*K*N


def test_symbolic_strided_conv_is_an_exact_floor_expression():
    # Conv k3 s2 p1 over [1, 3, H, W]: out = (H + 2 - 3) // 2 + 1 per side
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3],
                            strides=[2, 2], pads=[1, 1, 1, 1])
    m = model([node], [("x", F, [1, 3, "H", "W"])], inits=[weight("w", [16, 3, 3, 3])])
    r = onnxscore.analyze(m)
    formula = r.totals.macs_formula
    assert formula is not None
    for h, w, oh, ow in ((224, 224, 112, 112), (225, 224, 113, 112), (57, 31, 29, 16)):
        # (225 + 2 - 3) // 2 + 1 = 113; (57 - 1) // 2 + 1 = 29; (31 - 1) // 2 + 1 = 16
        assert evaluate(formula, {"H": h, "W": w}) == 16 * oh * ow * 3 * 3 * 3  # Cout*OH*OW*Cin*K*K
        assert onnxscore.analyze(m, dims={"H": h, "W": w}).totals.macs == 16 * oh * ow * 27


def _scalar(name, value, dtype):
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def test_symbolic_strided_integer_convolutions_are_exact_floor_expressions():
    """ConvInteger and QLinearConv (ddddocr's quantized OCR model) over [1, 3, H, W], k3 s2 p1:
    their output, and all after it, was unknown (ONNX infers no symbolic spatial dims); it is
    the same floor expression as Conv's."""
    U8 = TensorProto.UINT8
    conv_integer = helper.make_node("ConvInteger", ["x", "w", "xz"], ["c"], name="conv",
                                    strides=[2, 2], pads=[1, 1, 1, 1])
    qlinear = helper.make_node("QLinearConv", ["x", "s", "xz", "w", "s", "xz", "s", "xz"], ["c"], name="conv",
                               strides=[2, 2], pads=[1, 1, 1, 1])
    for node in (conv_integer, qlinear):
        nodes = [node, helper.make_node("Cast", ["c"], ["cf"], to=F),
                 helper.make_node("Conv", ["cf", "w2"], ["y"], name="after")]  # 1x1, 16 -> 8
        inits = [weight("w", [16, 3, 3, 3], U8), _scalar("xz", 0, np.uint8), _scalar("s", 0.5, np.float32),
                 weight("w2", [8, 16, 1, 1])]
        m = model(nodes, [("x", U8, [1, 3, "H", "W"])], inits=inits)
        r = onnxscore.analyze(m)
        assert not any(x.status == UNKNOWN for x in r.layers), node.op_type
        for h, w, oh, ow in ((224, 224, 112, 112), (57, 31, 29, 16)):  # (57 - 1) // 2 + 1 = 29
            # Cout*OH*OW*Cin*K*K, then the 1x1 conv: 8*OH*OW*16
            expected = 16 * oh * ow * 3 * 3 * 3 + 8 * oh * ow * 16
            assert evaluate(r.totals.macs_formula, {"H": h, "W": w}) == expected, node.op_type
            assert onnxscore.analyze(m, dims={"H": h, "W": w}).totals.macs == expected


def test_symbolic_conv_transpose_output_is_a_polynomial():
    """ConvTranspose [1, 4, H, W] by W [4, 2, 3, 3], stride 2, pads 1, output_padding 1 (the
    ONNX spec): out = 2*(H - 1) + 1 + 1*(3 - 1) + 1 - 1 - 1 = 2H; under SAME_UPPER H*2; with
    ``output_shape`` [10, 12] that (its pads are what is left: 2*(5 - 1) + 3 - 10 = 1 at H = 5,
    2*(6 - 1) + 3 - 12 = 1 at W = 6). A 1x1 conv (2 -> 8) after it costs 8*OH*OW*2 MACs; it
    was unknown (PaddleOCR's text detector: 6 layers after its ConvTranspose)."""
    double = (lambda h, w: (2 * h, 2 * w)), ((5, 7), (16, 9))
    for attrs, (out, sizes) in (({"pads": [1, 1, 1, 1], "output_padding": [1, 1]}, double),
                                ({"auto_pad": "SAME_UPPER"}, double),
                                ({"output_shape": [10, 12]}, ((lambda h, w: (10, 12)), ((5, 6),)))):
        nodes = [helper.make_node("ConvTranspose", ["x", "wt"], ["t"], name="up", strides=[2, 2], **attrs),
                 helper.make_node("Conv", ["t", "w2"], ["y"], name="after")]
        m = model(nodes, [("x", F, [1, 4, "H", "W"])], inits=[weight("wt", [4, 2, 3, 3]), weight("w2", [8, 2, 1, 1])])
        r = onnxscore.analyze(m)
        assert not any(x.status == UNKNOWN for x in r.layers), attrs
        for h, w in sizes:
            oh, ow = out(h, w)
            expected = 4 * h * w * 2 * 3 * 3 + 8 * oh * ow * 2  # N*Cin*H*W*(Cout/group)*K*K, then Cout*OH*OW*Cin
            assert evaluate(r.totals.macs_formula, {"H": h, "W": w}) == expected, attrs
            assert onnxscore.analyze(m, dims={"H": h, "W": w}).totals.macs == expected


def test_symbolic_swin_padding_evaluates_right_once_dims_are_given():
    # the same padding with H symbolic: pad = (7 - H % 7) % 7 stays exact
    nodes, inits = swin_padding()
    nodes.append(helper.make_node("MatMul", ["xp", "w"], ["y"], name="mm"))
    m = model(nodes, [("x", F, [1, "H", "H", 16])], inits=inits)
    formula = onnxscore.analyze(m).totals.macs_formula
    assert formula is not None
    for h, padded in ((56, 56), (57, 63), (50, 56)):  # H + (7 - H % 7) % 7
        assert evaluate(formula, {"H": h}) == padded * padded * 16 * 16  # rows*K*N


def branchy(cond_nodes, cond, inputs, inits=()):
    """An If on ``cond``: then a MatMul by [8, 8] (64 MACs per row), else by [8, 16] (128)."""
    then = helper.make_graph([helper.make_node("MatMul", ["a", "w8"], ["t"], name="then_mm")], "then",
                             [], [helper.make_tensor_value_info("t", F, None)])
    other = helper.make_graph([helper.make_node("MatMul", ["a", "w16"], ["e"], name="else_mm")], "else",
                              [], [helper.make_tensor_value_info("e", F, None)])
    nodes = list(cond_nodes) + [helper.make_node("If", [cond], ["y"], name="if",
                                                 then_branch=then, else_branch=other)]
    inits = list(inits) + [weight("w8", [8, 8]), weight("w16", [8, 16])]
    return model(nodes, inputs, inits=inits)


def test_if_on_a_shape_condition_takes_its_branch():
    # cond = (a.shape[1] == 8): true, so only then_branch runs: 4 rows * 8 * 8
    nodes = [helper.make_node("Shape", ["a"], ["s"]),
             helper.make_node("Gather", ["s", "i1"], ["d"], axis=0),
             helper.make_node("Equal", ["d", "eight"], ["cond"])]
    m = branchy(nodes, "cond", [("a", F, [4, 8])], [ints("i1", 1), ints("eight", 8)])
    r = onnxscore.analyze(m)
    assert r.totals.complete and r.totals.macs == 4 * 8 * 8
    layer = next(la for la in r.layers if la.name == "if")
    assert "then_branch" in layer.note and "True" in layer.note
    assert not any(la.name.endswith("else_mm") for la in r.layers)  # not walked


def test_value_of_an_input_decides_the_branch():
    # silero-vad's If on the sample rate: sr == 16000 -> then (64 MACs/row) else (128 MACs/row)
    nodes = [helper.make_node("Equal", ["sr", "k16"], ["cond"])]
    m = branchy(nodes, "cond", [("a", F, [4, 8]), ("sr", I64, [])], [ints("k16", 16000)])
    assert onnxscore.analyze(m, values={"sr": 16000}).totals.macs == 4 * 8 * 8
    assert onnxscore.analyze(m, values={"sr": 8000}).totals.macs == 4 * 8 * 16
    r = onnxscore.analyze(m)  # not given: the more expensive branch, as before
    assert r.totals.macs == 4 * 8 * 16
    assert "more expensive" in next(la for la in r.layers if la.name == "if").note


def test_nonzero_gives_a_named_dim_and_a_formula_downstream():
    # NonZero of [1, 100] -> [2, n]; Transpose -> [n, 2]; MatMul by [2, 16]: n * 2 * 16 MACs
    nodes = [helper.make_node("NonZero", ["x"], ["nz"], name="find"),
             helper.make_node("Transpose", ["nz"], ["t"], perm=[1, 0]),
             helper.make_node("Cast", ["t"], ["tf"], to=F),
             helper.make_node("MatMul", ["tf", "w"], ["y"], name="mm")]
    m = model(nodes, [("x", F, [1, 100])], inits=[weight("w", [2, 16])])
    r = onnxscore.analyze(m)
    assert r.data_dims == {"nonzero@find": "elements NonZero finds"}
    assert r.totals.macs_formula == 32 * Poly.symbol("nonzero@find")  # n * 2 * 16
    assert onnxscore.analyze(m, dims={"nonzero@find": 10}).totals.macs == 10 * 2 * 16
    assert not any("does not name a dimension" in w
                   for w in onnxscore.analyze(m, dims={"nonzero@find": 10}).warnings)


def test_nms_boxes_are_named_and_settable():
    # NonMaxSuppression keeps n boxes -> [n, 3]; a per-box head MatMul by [3, 8]: n * 3 * 8
    nodes = [helper.make_node("NonMaxSuppression", ["boxes", "scores", "k"], ["sel"], name="nms"),
             helper.make_node("Cast", ["sel"], ["self"], to=F),
             helper.make_node("MatMul", ["self", "w"], ["y"], name="head")]
    m = model(nodes, [("boxes", F, [1, 100, 4]), ("scores", F, [1, 1, 100])],
              inits=[ints("k", [50]), weight("w", [3, 8])])
    r = onnxscore.analyze(m)
    assert r.totals.macs_formula == 24 * Poly.symbol("nms@nms")  # 3 * 8 per box
    assert onnxscore.analyze(m, dims={"nms@nms": 37}).totals.macs == 37 * 3 * 8


def test_evaluation_never_makes_a_large_tensor():
    # ConstantOfShape(Shape(x)) of a [1, 512, 512] input would be 262,144 floats: its shape is
    # known, its value is never made; a 64-element one is evaluated
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("ConstantOfShape", ["s"], ["big"]),
             helper.make_node("Shape", ["small_in"], ["s2"]),
             helper.make_node("ConstantOfShape", ["s2"], ["small"]),
             helper.make_node("Add", ["x", "big"], ["y"])]
    m = model(nodes, [("x", F, [1, 512, 512]), ("small_in", F, [8, 8])],
              outputs=(("y", F, None), ("small", F, None)))
    G = graph_of(m)
    assert G.graph["tensors"]["big"][0] == (1, 512, 512)
    assert "big" not in G.graph["values"]
    assert G.graph["values"]["small"].shape == (8, 8)


def test_a_lost_shape_names_where_and_why():
    # the Reshape target is the value of a graph input: data, not known statically
    nodes = [helper.make_node("Reshape", ["x", "target"], ["r"], name="reshape"),
             helper.make_node("Relu", ["r"], ["r2"], name="relu"),
             helper.make_node("MatMul", ["r2", "w"], ["y"], name="mm")]
    m = model(nodes, [("x", F, [1, 16, 8]), ("target", I64, [3])], inits=[weight("w", [8, 8])])
    r = onnxscore.analyze(m)
    (cause,) = r.unknown_causes
    assert (cause.node, cause.op) == ("reshape", "Reshape")
    assert "'target'" in cause.why and "--value" in cause.why  # a small input: give its value
    assert "mm" in cause.layers and r.layers[2].status == UNKNOWN
    assert cause.chain[0] in ("r2", "r") and cause.chain[-1] == "r"
    assert any("shape lost at 1 place(s): reshape (Reshape" in w for w in r.warnings)
    assert not any("unk__" in str(la.output_shapes) for la in r.layers)


def test_if_branch_weights_count_as_used():
    nodes = [helper.make_node("Equal", ["sr", "k16"], ["cond"])]
    m = branchy(nodes, "cond", [("a", F, [4, 8]), ("sr", I64, [])], [ints("k16", 16000)])
    r = onnxscore.analyze(m, values={"sr": 16000})
    assert not any("not used by any node" in w for w in r.warnings)


def test_value_names_must_be_inputs():
    import pytest

    from onnxscore.errors import UsageError
    m, _ = channel_split()
    with pytest.raises(UsageError, match="--value names sr"):
        onnxscore.analyze(m, values={"sr": 16000})


def test_cli_value_and_explain(tmp_path):
    from click.testing import CliRunner

    from onnxscore.cli import main
    nodes = [helper.make_node("Reshape", ["x", "target"], ["r"], name="reshape"),
             helper.make_node("MatMul", ["r", "w"], ["y"], name="mm")]
    m = model(nodes, [("x", F, [1, 16, 8]), ("target", I64, [3])], inits=[weight("w", [8, 8])])
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    out = CliRunner().invoke(main, ["analyze", str(path), "--explain", "--no-layers"])
    assert out.exit_code == 0 and "unknown: reshape (Reshape)" in out.output
    assert "through" in out.output
    out = CliRunner().invoke(main, ["analyze", str(path), "--value", "target=2,8,8", "--format", "json"])
    assert out.exit_code == 0
    import json
    assert json.loads(out.output)["totals"]["macs"] == 2 * 8 * 8 * 8  # [2, 8, 8] x [8, 8]


def test_loop_trip_count_computed_from_a_shape():
    # M = x.shape[0] = 5 iterations of a body doing [1, 8] x [8, 8] (64 MACs), carrying h;
    # the scan output stacks 5 of them: [5, 1, 8], then a MatMul by [8, 4]: 5*8*4
    body = helper.make_graph(
        [helper.make_node("MatMul", ["h", "w"], ["h2"], name="step"),
         helper.make_node("Identity", ["cond"], ["cond_out"])],
        "body",
        [helper.make_tensor_value_info("i", I64, []), helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h", F, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h2", F, None), helper.make_tensor_value_info("h2", F, None)])
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i0"], ["m"], axis=0),
             helper.make_node("Loop", ["m", "", "h0"], ["h_final", "stacked"], name="loop", body=body),
             helper.make_node("MatMul", ["stacked", "w4"], ["y"], name="after")]
    bool_init = numpy_helper.from_array(np.array(True), "t")
    m = model(nodes, [("x", F, [5, 3]), ("h0", F, [1, 8])],
              inits=[ints("i0", 0), weight("w", [8, 8]), weight("w4", [8, 4]), bool_init])
    G = graph_of(m)
    assert G.graph["tensors"]["stacked"][0] == (5, 1, 8)
    r = onnxscore.analyze(m)
    assert r.totals.complete
    assert r.totals.macs == 5 * 1 * 8 * 8 + 5 * 1 * 8 * 4  # 5 steps of 64, then [5,1,8]x[8,4]


def test_ml_transforms_keep_their_input_shape():
    # fixtures/sklearn: SimpleImputer -> StandardScaler -> LinearRegression over 64 features;
    # ONNX infers no shape for Imputer, so without the rule the regressor's cost is unknown.
    # params 64 (imputed values) + 2*64 (offset, scale) + 64 + 1 (coefficients, intercept) = 257
    import os
    path = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "fixtures", "sklearn",
                        "imputer_scaler_linear.onnx")
    r = onnxscore.analyze(path)
    assert r.totals.complete and r.totals.params == 64 + 2 * 64 + 64 + 1
    assert next(la for la in r.layers if la.op_type == "LinearRegressor").macs == 1 * 1 * 64  # N*targets*F


def test_torch_pad_chain_reverses_rows_of_a_reshaped_value():
    # F.pad(x, (32, 32)) as TorchScript writes it (silero-vad's STFT padding): pads =
    # Concat([32, 32], zeros(2 * rank - 2)) -> Reshape [-1, 2] -> reverse rows (Slice step -1)
    # -> Transpose -> Reshape [-1] -> Cast; rows [[32, 32], [0, 0]] -> [[0, 0], [32, 32]] ->
    # [[0, 32], [0, 32]] -> pads (0, 32, 0, 32): x [1, 576] -> [1, 576 + 64]
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Shape", ["s"], ["rank"]),
        helper.make_node("Mul", ["rank", "two"], ["r2"]),
        helper.make_node("Sub", ["r2", "two"], ["nz"]),
        helper.make_node("ConstantOfShape", ["nz"], ["zeros"], value=numpy_helper.from_array(np.array([0], np.int64))),
        helper.make_node("Concat", ["lr", "zeros"], ["flat"], axis=0),
        helper.make_node("Reshape", ["flat", "rows"], ["grid"]),
        helper.make_node("Slice", ["grid", "m1", "big", "z", "m1"], ["rev"]),
        helper.make_node("Transpose", ["rev"], ["t"], perm=[1, 0]),
        helper.make_node("Reshape", ["t", "m1"], ["pads64"]),
        helper.make_node("Cast", ["pads64"], ["pads"], to=I64),
        helper.make_node("Pad", ["x", "pads"], ["xp"], mode="reflect", name="pad"),
        helper.make_node("MatMul", ["xp", "w"], ["y"], name="mm"),
    ]
    inits = [ints("two", [2]), ints("lr", [32, 32]), ints("rows", [-1, 2]), ints("m1", [-1]),
             ints("big", [-(2 ** 63)]), ints("z", [0]), weight("w", [640, 8])]
    m = model(nodes, [("x", F, [1, 576])], inits=inits)
    G = graph_of(m)
    assert G.graph["values"]["pads"].tolist() == [0, 32, 0, 32]
    assert G.graph["tensors"]["xp"][0] == (1, 640)
    assert onnxscore.analyze(m).totals.macs == 1 * 640 * 8  # rows * K * N


def test_if_on_data_names_the_size_its_branches_disagree_on():
    # torchvision's batched_nms: "if boxes.numel() == 0: return empty" else the NMS keep
    # indices; the branches give [0] and [n]: the If's output is [if@if], and a head on the
    # kept boxes costs a formula in it, here [k, 4] x [4, 8] after a Gather: k * 4 * 8
    empty = helper.make_graph([helper.make_node("Constant", [], ["e"], value=numpy_helper.from_array(
        np.zeros([0], np.int64)))], "then", [], [helper.make_tensor_value_info("e", I64, None)])
    keep = helper.make_graph([helper.make_node("NonZero", ["scores"], ["nz"], name="nz"),
                              helper.make_node("Squeeze", ["nz", "ax0"], ["k"])], "else", [],
                             [helper.make_tensor_value_info("k", I64, None)])
    nodes = [helper.make_node("ReduceMax", ["scores"], ["mx"], keepdims=0),
             helper.make_node("Equal", ["mx", "zero_f"], ["cond"]),
             helper.make_node("If", ["cond"], ["kept"], name="nms_if", then_branch=empty, else_branch=keep),
             helper.make_node("Gather", ["boxes", "kept"], ["sel"], axis=0),
             helper.make_node("MatMul", ["sel", "w"], ["y"], name="head")]
    inits = [numpy_helper.from_array(np.array(0.0, np.float32), "zero_f"), ints("ax0", [0]),
             weight("w", [4, 8])]
    m = model(nodes, [("scores", F, [100]), ("boxes", F, [100, 4])], inits=inits)
    r = onnxscore.analyze(m)
    assert "if@nms_if" in r.data_dims
    head = next(la for la in r.layers if la.name == "head")
    assert head.macs_formula == 32 * Poly.symbol("if@nms_if")  # k * 4 * 8
    assert onnxscore.analyze(m, dims={"if@nms_if": 7}).totals.macs == 7 * 4 * 8


def test_slice_of_a_data_dependent_dim_is_named_and_a_symbolic_end_is_kept():
    # keep[:1000] of n NonZero hits is min(n, 1000): named slice@; x[0:n] of a tensor n long is n
    nodes = [helper.make_node("NonZero", ["x"], ["nz"], name="nz"),
             helper.make_node("Squeeze", ["nz", "ax0"], ["idx"]),
             helper.make_node("Slice", ["idx", "z", "thousand"], ["top"], name="top"),
             helper.make_node("Shape", ["idx"], ["n"]),
             helper.make_node("Slice", ["idx", "z", "n"], ["all"], name="all"),
             helper.make_node("Cast", ["top"], ["topf"], to=F),
             helper.make_node("Cast", ["all"], ["allf"], to=F),
             helper.make_node("Unsqueeze", ["topf", "ax1"], ["t2"]),
             helper.make_node("Unsqueeze", ["allf", "ax1"], ["a2"]),
             helper.make_node("MatMul", ["t2", "w"], ["y"], name="mm_top"),
             helper.make_node("MatMul", ["a2", "w"], ["y2"], name="mm_all")]
    inits = [ints("ax0", [0]), ints("ax1", [1]), ints("z", [0]), ints("thousand", [1000]), weight("w", [1, 4])]
    m = model(nodes, [("x", F, [5000])], outputs=(("y", F, None), ("y2", F, None)), inits=inits)
    r = onnxscore.analyze(m)
    layers = {la.name: la for la in r.layers}
    assert layers["mm_top"].macs_formula == 4 * Poly.symbol("slice@top")  # rows * 1 * 4
    assert layers["mm_all"].macs_formula == 4 * Poly.symbol("nonzero@nz")


def test_a_deferred_value_is_made_when_it_decides_a_shape():
    # TopK's k = ReduceMin(Concat(1000, Shape(x)[0])): the value is deferred until TopK needs
    # it: k = min(1000, 300) = 300, so the head after it costs 300 * 1 * 8
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
             helper.make_node("Concat", ["thousand", "n1"], ["both"], axis=0),
             helper.make_node("ReduceMin", ["both"], ["k"], keepdims=1),
             helper.make_node("TopK", ["x", "k"], ["vals", "idx"], name="topk"),
             helper.make_node("Unsqueeze", ["vals", "ax1"], ["v2"]),
             helper.make_node("MatMul", ["v2", "w"], ["y"], name="head")]
    inits = [ints("i0", 0), ints("ax0", [0]), ints("ax1", [1]), ints("thousand", [1000]), weight("w", [1, 8])]
    m = model(nodes, [("x", F, [300])], inits=inits)
    r = onnxscore.analyze(m)
    assert r.totals.complete and r.totals.macs == 300 * 1 * 8


def test_roi_align_over_a_data_dependent_roi_count_is_a_formula():
    # RoIs are the boxes a NonZero keeps (n of them); sampling_ratio 2: S = 4 samples per bin;
    # per RoI bins * (8 * S + C * (7 * S + S)) FLOPs (weights, bilinear samples, the average)
    # = 49 * (32 + 16 * 32) = 26,656
    nodes = [helper.make_node("NonZero", ["keep"], ["nz"], name="nz"),
             helper.make_node("Squeeze", ["nz", "ax0"], ["idx"]),
             helper.make_node("Gather", ["boxes", "idx"], ["rois"], axis=0),
             helper.make_node("Gather", ["batch", "idx"], ["bi"], axis=0),
             helper.make_node("RoiAlign", ["x", "rois", "bi"], ["y"], name="roi", output_height=7,
                              output_width=7, sampling_ratio=2)]
    m = model(nodes, [("x", F, [1, 16, 32, 32]), ("keep", F, [100]), ("boxes", F, [100, 4]),
                      ("batch", I64, [100])], inits=[ints("ax0", [0])])
    r = onnxscore.analyze(m)
    roi = next(la for la in r.layers if la.name == "roi")
    assert roi.flops_formula == 49 * (8 * 4 + 16 * (7 * 4 + 4)) * Poly.symbol("nonzero@nz")


def test_constant_of_shape_fill_value_is_used():
    # RAFT's coords grid: Expand(x, ConstantOfShape([4], value=1)) keeps x's [1, 2, 28, 28];
    # a fill taken as 0 would make the shape [0, 2, 28, 28] and the conv after it cost nothing
    nodes = [helper.make_node("ConstantOfShape", ["four"], ["ones"],
                              value=numpy_helper.from_array(np.array([1], np.int64))),
             helper.make_node("Expand", ["x", "ones"], ["xe"]),
             helper.make_node("Conv", ["xe", "w"], ["y"], name="conv")]
    m = model(nodes, [("x", F, [1, 2, 28, 28])], inits=[ints("four", [4]), weight("w", [8, 2, 1, 1])])
    r = onnxscore.analyze(m)
    assert r.totals.macs == 1 * 8 * 28 * 28 * 2  # N*Cout*H*W*Cin


def test_a_shape_computed_from_pixel_values_says_data_decides():
    # Resize by a scale read from the image's values (its maximum): no size can be known
    nodes = [helper.make_node("ReduceMax", ["img"], ["mx"], keepdims=0),
             helper.make_node("Unsqueeze", ["mx", "ax0"], ["m1"]),
             helper.make_node("Concat", ["ones", "m1", "m1"], ["scales"], axis=0),
             helper.make_node("Resize", ["img", "", "scales"], ["big"], name="resize", mode="nearest"),
             helper.make_node("Conv", ["big", "w"], ["y"], name="conv")]
    inits = [ints("ax0", [0]), numpy_helper.from_array(np.ones(2, np.float32), "ones"), weight("w", [4, 3, 1, 1])]
    r = onnxscore.analyze(model(nodes, [("img", F, [1, 3, 64, 64])], inits=inits))
    (cause,) = r.unknown_causes
    assert cause.node == "resize" and "data decides" in cause.why and "'img'" in cause.why


def test_data_dims_are_listed_once_per_kind():
    # a detector has one NonZero per class; the report lists the kind once, with a count
    nodes = [helper.make_node("NonZero", ["x"], [f"nz{i}"], name=f"nz{i}") for i in range(3)]
    nodes.append(helper.make_node("Identity", ["x"], ["y"]))
    m = model(nodes, [("x", F, [1, 100])], outputs=[("y", F, None)] + [(f"nz{i}", I64, None) for i in range(3)])
    from onnxscore.render.summary import footer_lines
    lines = [ln for ln in footer_lines(onnxscore.analyze(m)) if ln.startswith("data-dependent")]
    assert lines == ["data-dependent: nonzero@nz0, nonzero@nz1, ... (3): elements NonZero finds; costs "
                     "after them are formulas in them, --dim nonzero@nz0=N gives numbers"]


def test_ceil_mode_pool_drops_a_window_that_starts_in_the_end_padding():
    # MaxPool k2 s2 over 6 with pads end 1, ceil_mode: ceil((6 + 1 - 2) / 2) + 1 = 4, but the
    # 4th window would start at (4 - 1) * 2 = 6 >= 6 + 0, inside the padding: onnxruntime, ONNX's
    # reference implementation and PyTorch give 3 (ONNX's shape inference says 4)
    nodes = [helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2],
                              pads=[0, 0, 1, 1], ceil_mode=1),
             helper.make_node("Conv", ["p", "w"], ["y"], name="conv")]
    m = model(nodes, [("x", F, [1, 3, 6, 6])], inits=[weight("w", [4, 3, 1, 1])])
    assert graph_of(m).graph["tensors"]["p"][0] == (1, 3, 3, 3)
    assert onnxscore.analyze(m).totals.macs == 1 * 4 * 3 * 3 * 3  # N*Cout*H*W*Cin


def test_a_declared_shape_that_its_op_contradicts_is_corrected():
    # jax2onnx 0.17 declares a Relu's output in JAX's NHWC layout ([1, 8, 8, 4]) though the
    # Conv before it made its input NCHW ([1, 4, 6, 6]); the depthwise Conv after it (group 4)
    # reads 4 channels. As onnxruntime does, the Relu's own shape is taken, and what follows it:
    # conv 1*4*6*6*(3*3*3) = 3,888 MACs, depthwise 3x3 stride 2 -> [1, 4, 2, 2]: 1*4*2*2*9 = 144
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], name="conv"),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Conv", ["r", "w2"], ["y"], name="depthwise", group=4, strides=[2, 2])]
    m = model(nodes, [("x", F, [1, 3, 8, 8])], inits=[weight("w1", [4, 3, 3, 3]), weight("w2", [4, 1, 3, 3])])
    m.graph.value_info.append(helper.make_tensor_value_info("r", F, [1, 8, 8, 4]))
    tensors = graph_of(m).graph["tensors"]
    assert (tensors["r"][0], tensors["y"][0]) == ((1, 4, 6, 6), (1, 4, 2, 2))
    r = onnxscore.analyze(m)
    assert r.totals.complete and r.totals.macs == 4 * 6 * 6 * 27 + 4 * 2 * 2 * 9
    # a declared shape that only names what is known stays (batch for 1: no contradiction)
    m.graph.value_info[0].CopyFrom(helper.make_tensor_value_info("r", F, ["batch", 4, 6, 6]))
    assert graph_of(m).graph["tensors"]["r"][0] == (1, 4, 6, 6)


def test_a_fill_value_in_external_data_is_never_read(tmp_path, monkeypatch):
    # ConstantOfShape whose value attribute points at an external file: its shape is known,
    # its value is not, and no file is opened for it (not even one beside the working folder)
    fill = numpy_helper.from_array(np.array([1], np.int64), "v")
    fill.data_location = TensorProto.EXTERNAL
    fill.ClearField("raw_data")
    entry = fill.external_data.add()
    entry.key, entry.value = "location", "fill.bin"
    nodes = [helper.make_node("ConstantOfShape", ["four"], ["ones"], value=fill),
             helper.make_node("Expand", ["x", "ones"], ["y"])]
    m = model(nodes, [("x", F, [1, 2, 3, 4])], inits=[ints("four", [4])])
    (tmp_path / "fill.bin").write_bytes(np.array([1], np.int64).tobytes())
    monkeypatch.chdir(tmp_path)
    opened = []
    real_open = open

    def spy(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    G = graph_of(m)
    assert "ones" not in G.graph["values"]
    assert not any("fill.bin" in p for p in opened)


def test_a_broadcast_of_small_values_is_not_run_when_its_output_is_large(monkeypatch):
    # [4096, 1] + [1, 4096] of constants: both inputs are small enough to hold, their sum has
    # 4096 * 4096 = 16,777,216 elements: its shape is known, it is never computed
    import onnxscore.shapes.engine as engine
    ran = []
    real = engine.evaluate
    monkeypatch.setattr(engine, "evaluate", lambda node, *a: ran.append(node.op_type) or real(node, *a))
    nodes = [helper.make_node("Add", ["col", "row"], ["grid"]),
             helper.make_node("Shape", ["grid"], ["s"]),
             helper.make_node("Identity", ["x"], ["y"])]
    inits = [ints("col", np.arange(4096).reshape(4096, 1)), ints("row", np.arange(4096).reshape(1, 4096))]
    m = model(nodes, [("x", F, [1])], outputs=(("y", F, None), ("s", I64, None)), inits=inits)
    G = graph_of(m)
    assert G.graph["tensors"]["grid"][0] == (4096, 4096)
    assert "grid" not in G.graph["values"] and "Add" not in ran
    assert G.graph["values"]["s"].tolist() == [4096, 4096]


def test_floor_dims_render_in_every_format():
    # a strided conv over symbolic H, W: shapes hold floor expressions, which JSON (through
    # dataclasses.asdict, a deep copy), CSV, text and Markdown must all render
    import copy
    import pickle

    from onnxscore.render import render
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3],
                            strides=[2, 2], pads=[1, 1, 1, 1])
    r = onnxscore.analyze(model([node], [("x", F, [1, 3, "H", "W"])], inits=[weight("w", [16, 3, 3, 3])]))
    for fmt in ("json", "csv", "text", "md"):  # (H + 2 - 3)//2 + 1 = (H + 1)//2
        assert "(H + 1)//2" in render([r], fmt), fmt
    dim = r.layers[0].output_shapes[0][2]
    assert copy.deepcopy(dim) == dim and pickle.loads(pickle.dumps(dim)) == dim


def test_small_initializers_are_decoded_only_when_asked_for():
    # a residual network's 80,000 3x3 kernels are small enough to hold, and never looked at
    from onnxscore.model import load_model
    from onnxscore.shapes import infer_graph, peek

    shape, bad = ints("shape", [2, 8]), ints("bad", [1, 2, 3])
    bad.raw_data = bad.raw_data[:5]  # 3 int64 promised, 5 bytes stored: no value
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]), helper.make_node("Conv", ["r4", "w"], ["c"]),
             helper.make_node("Unsqueeze", ["r", "bad"], ["y"])]
    m = model(nodes, [("x", F, [4, 4]), ("r4", F, [1, 3, 5, 5])], inits=[shape, bad, weight("w", [2, 3, 3, 3])])
    loaded = load_model(m)  # ONNX's inference first, as always: the Conv is then settled
    s = infer_graph(loaded.proto.graph, {"": 17}, facts=loaded.facts)
    assert s.tensors["r"][0] == (2, 8)
    assert peek(s.values, "w") is None  # the Conv needed only its shape
    assert s.values["w"].shape == (2, 3, 3, 3) and s.constants["w"].value is s.values["w"]
    assert "bad" not in s.values and s.constants["bad"].value is None


def tensor_split(first=1):
    """``torch.tensor_split(x, (first,), dim=1)`` as TorchScript writes it (MViT's class token
    split from its tokens), x [1, 5, 8]: a Loop over the boundaries [0, first] that inserts
    x[:, b[i]:b[i+1]] into a sequence, one more insert for the tail x[:, first:], then a
    SequenceAt per piece; each piece then a MatMul by its own [8, 16] weight."""
    I64 = TensorProto.INT64
    body = helper.make_graph(
        [helper.make_node("Gather", ["bounds", "i"], ["start"], axis=0),
         helper.make_node("Add", ["i", "one"], ["i1"]),
         helper.make_node("Gather", ["bounds", "i1"], ["end"], axis=0),
         helper.make_node("Unsqueeze", ["start", "zero1"], ["start1"]),
         helper.make_node("Unsqueeze", ["end", "zero1"], ["end1"]),
         helper.make_node("Slice", ["x", "start1", "end1", "axis1"], ["piece"]),
         helper.make_node("SequenceInsert", ["seq_in", "piece"], ["seq_out"]),
         helper.make_node("Identity", ["cond"], ["cond_out"])],
        "body", [helper.make_tensor_value_info("i", I64, []), helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
                 helper.make_tensor_sequence_value_info("seq_in", F, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_sequence_value_info("seq_out", F, None)])
    nodes = [helper.make_node("SequenceEmpty", [], ["empty"], dtype=F),
             helper.make_node("Loop", ["trips", "true", "empty"], ["heads"], body=body),
             helper.make_node("Slice", ["x", "first", "big", "axis1"], ["tail"]),
             helper.make_node("SequenceInsert", ["heads", "tail"], ["pieces"]),
             helper.make_node("SequenceAt", ["pieces", "zero"], ["p0"]),
             helper.make_node("SequenceAt", ["pieces", "one"], ["p1"]),
             helper.make_node("MatMul", ["p0", "w0"], ["y0"], name="mm0"),
             helper.make_node("MatMul", ["p1", "w1"], ["y1"], name="mm1")]
    inits = [ints("bounds", [0, first]), ints("trips", [1]), numpy_helper.from_array(np.array(True), "true"),
             ints("zero1", [0]), ints("axis1", [1]), ints("first", [first]), ints("big", [2 ** 62]),
             ints("zero", 0), ints("one", 1), weight("w0", [8, 16]), weight("w1", [8, 16])]
    return model(nodes, [("x", F, [1, 5, 8])], outputs=(("y0", F, None), ("y1", F, None)), inits=inits)


def test_a_sequence_built_by_a_loop_has_known_pieces():
    r = onnxscore.analyze(tensor_split())
    layers = {x.name: x for x in r.layers}
    assert layers["mm0"].input_shapes[0] == (1, 1, 8) and layers["mm1"].input_shapes[0] == (1, 4, 8)
    assert r.totals.complete and r.totals.macs == 1 * 1 * 8 * 16 + 1 * 4 * 8 * 16  # rows*K*N per piece


def test_split_to_sequence_and_back():
    """x [2, 6] split into [2, 2] and [2, 4]; the last piece by W [4, 3] (2*4*3 = 24 MACs); the
    pieces concatenated again, [2, 6], by W2 [6, 5] (2*6*5 = 60); the count of pieces, 2."""
    nodes = [helper.make_node("SplitToSequence", ["x", "sizes"], ["seq"], axis=1),
             helper.make_node("SequenceAt", ["seq", "last"], ["p"]),
             helper.make_node("MatMul", ["p", "w"], ["y"], name="mm_last"),
             helper.make_node("ConcatFromSequence", ["seq"], ["back"], axis=1),
             helper.make_node("MatMul", ["back", "w2"], ["z"], name="mm_all"),
             helper.make_node("SequenceLength", ["seq"], ["n"])]
    inits = [ints("sizes", [2, 4]), ints("last", -1), weight("w", [4, 3]), weight("w2", [6, 5])]
    m = model(nodes, [("x", F, [2, 6])], outputs=(("y", F, None), ("z", F, None), ("n", I64, None)), inits=inits)
    r = onnxscore.analyze(m)
    assert r.totals.complete and r.totals.macs == 2 * 4 * 3 + 2 * 6 * 5
    assert int(graph_of(m).graph["values"]["n"]) == 2


def test_loops_in_loops_run_their_bodies_a_bounded_number_of_times(monkeypatch):
    """A Loop of 64 iterations whose body holds another of 64, each building a sequence: run one
    by one, 64 + 64 * 64 bodies; all the Loops of a model run at most 256 (sequences.py)."""
    from onnxscore.shapes import engine, sequences

    I64, B = TensorProto.INT64, TensorProto.BOOL

    def body(inner_graph=None):
        nodes = [helper.make_node("SequenceInsert", ["seq_in", "x"], ["seq_mid"])]
        if inner_graph is not None:
            nodes.append(helper.make_node("Loop", ["trips", "true", "seq_mid"], ["seq_out"], body=inner_graph))
        else:
            nodes.append(helper.make_node("Identity", ["seq_mid"], ["seq_out"]))
        nodes.append(helper.make_node("Identity", ["cond"], ["cond_out"]))
        return helper.make_graph(
            nodes, "body", [helper.make_tensor_value_info("i", I64, []), helper.make_tensor_value_info("cond", B, []),
                            helper.make_tensor_sequence_value_info("seq_in", F, None)],
            [helper.make_tensor_value_info("cond_out", B, []), helper.make_tensor_sequence_value_info("seq_out", F, None)])

    nodes = [helper.make_node("SequenceEmpty", [], ["empty"], dtype=F),
             helper.make_node("Loop", ["trips", "true", "empty"], ["seq"], body=body(body())),
             helper.make_node("SequenceAt", ["seq", "zero"], ["y"])]
    inits = [ints("trips", [64]), numpy_helper.from_array(np.array(True), "true"), ints("zero", 0)]
    m = model(nodes, [("x", F, [1, 4])], inits=inits)
    calls = []
    real = engine.infer_graph
    monkeypatch.setattr(engine, "infer_graph", lambda *a, **k: calls.append(1) or real(*a, **k))
    onnxscore.analyze(m)
    assert sequences.MAX_UNROLLED == 256
    assert len(calls) < 2 * (256 + 64)  # the bodies run one by one, and each once as it is
