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


def attention(bias_shape, scale=True, queries=16):
    """scores = (q @ k^T) * s + bias -> Softmax -> @ v, k/v [1, 2, 16, 8] (2 heads, 16 tokens),
    q [1, 2, queries, 8]."""
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
    return model(nodes, [("q", [1, 2, queries, 8]), ("k", [1, 2, 16, 8]), ("v", [1, 2, 16, 8])], inits)


def test_attention_mask_or_expanded_bias_is_a_buffer():
    for shape in ([1, 1, 16, 16], [2, 16, 16]):  # a causal mask; a bias per head
        r = onnxscore.analyze(attention(shape))
        n = int(np.prod(shape))
        assert (r.totals.params, r.totals.buffers) == (0, n), shape
    r = onnxscore.analyze(attention([1, 2, 16, 16], scale=False))
    assert r.totals.buffers == 2 * 16 * 16  # heads * queries * keys


def test_a_mask_added_to_soft_capped_scores_is_a_buffer():
    """Gemma 2 caps its attention logits (scores / 50, Tanh, * 50) before the mask is added:
    the [1, 1, 16, 16] mask is a buffer all the same."""
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["q", "kt"], ["raw"], name="qk"),
             helper.make_node("Div", ["raw", "cap"], ["d"]),
             helper.make_node("Tanh", ["d"], ["t"]),
             helper.make_node("Mul", ["t", "cap"], ["capped"]),
             helper.make_node("Add", ["capped", "mask"], ["biased"], name="add_mask"),
             helper.make_node("Softmax", ["biased"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["y"], name="pv")]
    inits = [numpy_helper.from_array(np.array(50.0, np.float32), "cap"), weight("mask", [1, 1, 16, 16])]
    r = onnxscore.analyze(model(nodes, [("q", [1, 2, 16, 8]), ("k", [1, 2, 16, 8]), ("v", [1, 2, 16, 8])], inits))
    assert (r.totals.params, r.totals.buffers) == (0, 16 * 16)


def test_a_bias_of_fewer_queries_than_keys_is_a_buffer():
    """LeViT's subsampling attention (4 queries over 16 keys; its [heads, 4, 16] bias, once the
    exporter folded the gather), or a causal mask of new tokens over past + new ones."""
    for shape in ([2, 4, 16], [1, 1, 4, 16]):
        r = onnxscore.analyze(attention(shape, queries=4))
        assert (r.totals.params, r.totals.buffers) == (0, int(np.prod(shape))), shape


def test_one_row_of_bias_for_every_query_is_a_buffer():
    """ALiBi as BLOOM's dynamo export folds it: [heads, 1, keys], the same row for each query."""
    r = onnxscore.analyze(attention([2, 1, 16]))
    assert (r.totals.params, r.totals.buffers) == (0, 2 * 16)


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



def scores_plus(bias_nodes, bias, inits, einsum=False):
    """Attention over q/k/v [1, 2, 16, 8] whose scores get ``bias`` ([.., 16, 16]) added."""
    if einsum:
        nodes = [helper.make_node("Einsum", ["q", "k"], ["raw"], equation="bhid,bhjd->bhij", name="qk")]
    else:
        nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
                 helper.make_node("MatMul", ["q", "kt"], ["raw"], name="qk")]
    nodes += list(bias_nodes) + [
        helper.make_node("Add", ["raw", bias], ["biased"], name="add_bias"),
        helper.make_node("Softmax", ["biased"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["y"], name="pv")]
    return model(nodes, [("q", [1, 2, 16, 8]), ("k", [1, 2, 16, 8]), ("v", [1, 2, 16, 8])], inits)


def ints(name, values):
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def test_continuous_position_bias_mlp_over_a_constant_table():
    # Swin-V2: bias = 16 * sigmoid(MLP(coords)); the coordinate table [256, 4] is a buffer, the
    # MLP's W1 [4, 8], b1 [8] and W2 [8, 2] are parameters: 4*8 + 8 + 8*2 = 56
    nodes = [helper.make_node("MatMul", ["coords", "w1"], ["h"]),
             helper.make_node("Add", ["h", "b1"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["hr"]),
             helper.make_node("MatMul", ["hr", "w2"], ["t"]),
             helper.make_node("Transpose", ["t"], ["tt"], perm=[1, 0]),
             helper.make_node("Reshape", ["tt", "shape"], ["bias4"]),
             helper.make_node("Sigmoid", ["bias4"], ["sig"]),
             helper.make_node("Mul", ["sig", "sixteen"], ["bias"])]
    inits = [weight("coords", [256, 4]), weight("w1", [4, 8]), weight("b1", [8]), weight("w2", [8, 2]),
             ints("shape", [1, 2, 16, 16]), numpy_helper.from_array(np.array(16.0, np.float32), "sixteen")]
    r = onnxscore.analyze(scores_plus(nodes, "bias", inits))
    assert (r.totals.params, r.totals.buffers) == (4 * 8 + 8 + 8 * 2, 256 * 4)


def test_shifted_window_mask_built_by_scatter_is_a_buffer():
    # a grid of zeros [16, 16] with 3 entries set to -100 by ScatterND: both float constants
    # are the mask's, 256 + 3 elements of buffers
    nodes = [helper.make_node("ScatterND", ["grid", "where", "fill"], ["mask2"]),
             helper.make_node("Unsqueeze", ["mask2", "axes"], ["mask"])]
    inits = [weight("grid", [16, 16]), ints("where", [[0, 1], [2, 3], [4, 5]]), weight("fill", [3]),
             ints("axes", [0, 1])]
    r = onnxscore.analyze(scores_plus(nodes, "mask", inits))
    assert (r.totals.params, r.totals.buffers) == (0, 16 * 16 + 3)


def test_gathered_learned_table_stays_a_parameter_folded_copy_does_not():
    # Swin's relative position table [31, 2] (learned) gathered by a constant index [256]:
    # the table is a parameter (31 * 2); once an exporter folds the Gather into a [256, 2]
    # constant, that expanded copy is a buffer
    nodes = [helper.make_node("Gather", ["table", "index"], ["g"], axis=0),
             helper.make_node("Transpose", ["g"], ["gt"], perm=[1, 0]),
             helper.make_node("Reshape", ["gt", "shape"], ["bias"])]
    inits = [weight("table", [31, 2]), ints("index", np.arange(256) % 31), ints("shape", [1, 2, 16, 16])]
    r = onnxscore.analyze(scores_plus(nodes, "bias", inits))
    assert (r.totals.params, r.totals.buffers) == (31 * 2, 0)
    folded = [helper.make_node("Transpose", ["expanded"], ["gt"], perm=[1, 0]),
              helper.make_node("Reshape", ["gt", "shape"], ["bias"])]
    inits = [weight("expanded", [256, 2]), ints("shape", [1, 2, 16, 16])]
    r = onnxscore.analyze(scores_plus(folded, "bias", inits))
    assert (r.totals.params, r.totals.buffers) == (0, 256 * 2)


def test_scores_from_an_einsum():
    # MaxViT computes scores with an Einsum; its [1, 2, 16, 16] position bias is a buffer
    r = onnxscore.analyze(scores_plus([], "bias", [weight("bias", [1, 2, 16, 16])], einsum=True))
    assert (r.totals.params, r.totals.buffers) == (0, 2 * 16 * 16)


def test_folded_activation_is_not_a_parameter():
    # RAFT's first step from a zero flow, folded by the exporter: a constant [1, 4, 8, 8] read
    # as a Conv's input and through a Relu is an activation; the conv's kernel [8, 4, 3, 3] and
    # the Add of a learned [1, 8, 6, 6] tensor stay parameters
    nodes = [helper.make_node("Relu", ["folded"], ["r"]),
             helper.make_node("Conv", ["r", "k"], ["c"]),
             helper.make_node("Add", ["c", "learned"], ["c2"]),
             helper.make_node("Add", ["c2", "x"], ["y"])]
    inits = [weight("folded", [1, 4, 8, 8]), weight("k", [8, 4, 3, 3]), weight("learned", [1, 8, 6, 6])]
    r = onnxscore.analyze(model(nodes, [("x", [1, 8, 6, 6])], inits))
    assert (r.totals.params, r.totals.buffers) == (8 * 4 * 3 * 3 + 8 * 6 * 6, 4 * 8 * 8)


def fourier(learned_frequencies=False):
    """XCiT's Fourier position encoding as TorchScript writes it, for a 4x4 grid, 8 frequencies,
    projected by a 1x1 conv to the tokens' 6 channels and added to x [1, 6, 4, 4]: a grid of
    ones [1, 4, 4] summed along each axis (CumSum), Unsqueezed, divided by the frequencies [8],
    Sin and Cos concatenated ([1, 4, 4, 16]), Transposed to [1, 16, 4, 4], Conv (weight
    [6, 16, 1, 1], bias [6]). With ``learned_frequencies`` the grid's positions are multiplied
    by a learned matrix [1, 8] (MatMul) instead of divided by constant frequencies."""
    nodes = [helper.make_node("CumSum", ["ones", "axis1"], ["y_embed"]),
             helper.make_node("Unsqueeze", ["y_embed", "last"], ["y4"])]
    if learned_frequencies:
        nodes.append(helper.make_node("MatMul", ["y4", "freq"], ["phase"]))
        freq = weight("freq", [1, 8])
    else:
        nodes.append(helper.make_node("Div", ["y4", "dim_t"], ["phase"]))
        freq = weight("dim_t", [8])
    nodes += [helper.make_node("Sin", ["phase"], ["s"]),
              helper.make_node("Cos", ["phase"], ["c"]),
              helper.make_node("Concat", ["s", "c"], ["pos"], axis=-1),
              helper.make_node("Transpose", ["pos"], ["pos_t"], perm=[0, 3, 1, 2]),
              helper.make_node("Conv", ["pos_t", "proj.weight", "proj.bias"], ["p"]),
              helper.make_node("Add", ["x", "p"], ["y"])]
    inits = [weight("ones", [1, 4, 4]), ints("axis1", 1), ints("last", [3]), freq,
             weight("proj.weight", [6, 16, 1, 1]), weight("proj.bias", [6])]
    return model(nodes, [("x", [1, 6, 4, 4])], inits)


def test_fourier_position_encoding_is_computed_not_learned():
    # as torch counts XCiT's PositionalEncodingFourier: the projection's 6*16 + 6 = 102; the
    # grid (16) and the frequencies (8) are buffers
    r = onnxscore.analyze(fourier())
    assert (r.totals.params, r.totals.buffers) == (6 * 16 + 6, 4 * 4 + 8)
    # learned Fourier features: the frequency matrix is in a MatMul's weight position: 8 more
    r = onnxscore.analyze(fourier(learned_frequencies=True))
    assert (r.totals.params, r.totals.buffers) == (6 * 16 + 6 + 8, 4 * 4)


def preprocessed(steps):
    """x [1, 3, 8, 8] through ``steps`` ((op, constant shape), in order, each with the running
    tensor first), then a Conv (weight [4, 3, 3, 3], bias [4]): 4*27 + 4 = 112 parameters.
    "nhwc": x [1, 8, 8, 3], the steps, then a Transpose to NCHW, as tf2onnx writes Keras."""
    nhwc = steps and steps[0] == "nhwc"
    steps = steps[1:] if nhwc else steps
    nodes, inits, t = [], [weight("conv.weight", [4, 3, 3, 3]), weight("conv.bias", [4])], "x"
    for i, (op, shape) in enumerate(steps):
        inits.append(weight(f"c{i}", shape))
        nodes.append(helper.make_node(op, [t, f"c{i}"], [f"t{i}"]))
        t = f"t{i}"
    if nhwc:
        nodes.append(helper.make_node("Transpose", [t], ["nchw"], perm=[0, 3, 1, 2]))
        t = "nchw"
    nodes.append(helper.make_node("Conv", [t, "conv.weight", "conv.bias"], ["y"]))
    return model(nodes, [("x", [1, 8, 8, 3] if nhwc else [1, 3, 8, 8])], inits)


@pytest.mark.parametrize("steps,params,buffers", [
    ([("Mul", []), ("Sub", [3, 1, 1]), ("Div", [3, 1, 1])], 112, 3 + 3),  # /255, - mean, / std
    (["nhwc", ("Add", [1, 1, 1, 3]), ("Mul", [1, 1, 1, 3])], 112, 3 + 3),  # Keras's Normalization
    ([("Sub", [3, 1, 1])], 112, 3),                                         # a mean alone
    ([("Add", [3, 1, 1])], 112 + 3, 0),                                     # a bias alone: learned
    ([("Mul", [3, 1, 1]), ("Add", [3, 1, 1])], 112 + 3 + 3, 0)])           # a folded affine
def test_an_inputs_normalization_is_a_buffer(steps, params, buffers):
    """torch does not count torchvision's detection transform's image_mean and image_std,
    Keras counts its Normalization's mean and variance as non-trainable weights; a per-channel
    affine that multiplies first (an input BatchNormalization folded) stays a parameter. The
    scalar 1/255 is no tensor of the model (one value, not named as a parameter)."""
    r = onnxscore.analyze(preprocessed(steps))
    assert (r.totals.params, r.totals.buffers) == (params, buffers)


def lstm(state):
    """An LSTM over x [T=4, B=2, 8], hidden 16: W [1, 64, 8], R [1, 64, 16], B [1, 128] (4
    gates x 16), so 64*8 + 64*16 + 128 = 1,664 parameters, torch's nn.LSTM(8, 16) count. Its
    initial_h and initial_c come from ``state``: "expand" a zeros Constant [1, 1, 16] expanded
    to the batch (TorchScript's export of an LSTM called without h0), "direct" initializers
    [1, 2, 16]."""
    nodes, inits = [], [weight("W", [1, 64, 8]), weight("R", [1, 64, 16]), weight("B", [1, 128])]
    if state == "expand":
        inits.append(ints("to_batch", [1, 2, 16]))
        for s in ("h0", "c0"):
            nodes += [helper.make_node("Constant", [], [s + "_one"], value=weight(s + "_one", [1, 1, 16])),
                      helper.make_node("Expand", [s + "_one", "to_batch"], [s])]
    else:
        inits += [weight("h0", [1, 2, 16]), weight("c0", [1, 2, 16])]
    nodes.append(helper.make_node("LSTM", ["x", "W", "R", "B", "", "h0", "c0"], ["y"], hidden_size=16))
    return model(nodes, [("x", [4, 2, 8])], inits)


@pytest.mark.parametrize("state", ["expand", "direct"])
def test_an_initial_recurrent_state_is_neither_a_parameter_nor_a_buffer(state):
    """As torch counts nn.LSTM(8, 16): the zeros it starts from are no tensor of the module."""
    r = onnxscore.analyze(lstm(state))
    assert r.totals.params == 64 * 8 + 64 * 16 + 128
    assert r.totals.buffers == 0


def test_resize_scales_concatenated_from_constants_are_not_parameters():
    """TorchScript's nn.Upsample(scale_factor=2) (HRNet's fuse layers): Resize's float scales
    are Concat([1, 1], [2, 2]) of two Constants. Only the 1x1 conv's 4*4 weights count."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("Constant", [], ["keep"], value=weight("keep", [2])),
             helper.make_node("Constant", [], ["twice"], value=weight("twice", [2])),
             helper.make_node("Concat", ["keep", "twice"], ["scales"], axis=0),
             helper.make_node("Resize", ["c", "", "scales"], ["y"], mode="nearest")]
    r = onnxscore.analyze(model(nodes, [("x", [1, 4, 8, 8])], [weight("w", [4, 4, 1, 1])]))
    assert r.totals.params == 4 * 4 and r.totals.buffers == 0


def group_norm(reshaped: bool):
    """GroupNorm(2, 8) over [1, 8, 4, 4] as TorchScript writes it: Reshape to [1, 2, -1], an
    InstanceNormalization with a Constant scale and bias of [2], Reshape back, then the learned
    weight and bias [8, 1, 1] as a Mul and an Add: 8 + 8 = 16 parameters, torch's count. Without
    ``reshaped``, a plain InstanceNormalization over [1, 2, 64] whose [2] affine is learned."""
    nodes = [helper.make_node("Constant", [], ["unit_scale"], value=weight("unit_scale", [2])),
             helper.make_node("Constant", [], ["unit_bias"], value=weight("unit_bias", [2]))]
    if reshaped:
        nodes += [helper.make_node("Reshape", ["x", "groups"], ["xg"]),
                  helper.make_node("InstanceNormalization", ["xg", "unit_scale", "unit_bias"], ["n"]),
                  helper.make_node("Reshape", ["n", "back"], ["nb"]),
                  helper.make_node("Mul", ["nb", "gn.weight"], ["m"]),
                  helper.make_node("Add", ["m", "gn.bias"], ["y"])]
        inits = [ints("groups", [1, 2, -1]), ints("back", [1, 8, 4, 4]), weight("gn.weight", [8, 1, 1]),
                 weight("gn.bias", [8, 1, 1])]
        return model(nodes, [("x", [1, 8, 4, 4])], inits)
    nodes.append(helper.make_node("InstanceNormalization", ["x", "unit_scale", "unit_bias"], ["y"]))
    return model(nodes, [("x", [1, 2, 64])], [])


def test_a_group_norms_unit_affine_is_not_a_parameter():
    assert onnxscore.analyze(group_norm(True)).totals.params == 8 + 8
    assert onnxscore.analyze(group_norm(False)).totals.params == 2 + 2  # a learned affine stays


def test_attention_computed_from_positions_alone_is_a_table():
    """ConViT's gated positional self-attention: the relative positions rel_indices [1, 16, 16, 3]
    (a buffer in torch), expanded to the batch read off the input's Shape, projected by a learned
    Linear (3 -> 2 heads: weight [3, 2], bias [2]), Transposed to [B, 2, 16, 16] and Softmaxed,
    then applied to v [B, 2, 16, 8]. torch counts the Linear: 3*2 + 2 = 8; the positions
    (16*16*3 = 768) are a table, though the batch they are expanded to comes from the input."""
    nodes = [helper.make_node("Shape", ["v"], ["vs"]),
             helper.make_node("Slice", ["vs", "s0", "s1"], ["batch"]),
             helper.make_node("Concat", ["batch", "rest"], ["to"], axis=0),
             helper.make_node("Expand", ["rel_indices", "to"], ["rel"]),
             helper.make_node("MatMul", ["rel", "pos_proj.weight"], ["p0"]),
             helper.make_node("Add", ["p0", "pos_proj.bias"], ["p1"]),
             helper.make_node("Transpose", ["p1"], ["p2"], perm=[0, 3, 1, 2]),
             helper.make_node("Softmax", ["p2"], ["pos"], axis=-1),
             helper.make_node("MatMul", ["pos", "v"], ["y"])]
    inits = [weight("rel_indices", [1, 16, 16, 3]), weight("pos_proj.weight", [3, 2]), weight("pos_proj.bias", [2]),
             ints("s0", [0]), ints("s1", [1]), ints("rest", [16, 16, 3])]
    r = onnxscore.analyze(model(nodes, [("v", [1, 2, 16, 8])], inits))
    assert (r.totals.params, r.totals.buffers) == (3 * 2 + 2, 16 * 16 * 3)


def standardized_conv(gain):
    """timm's weight-standardized conv over x [1, 3, 8, 8] as TorchScript writes it: the kernel
    conv.weight [4, 3, 3, 3] Reshaped to [1, 4, 27], normalized by a BatchNormalization in
    training mode (its mean and variance ReduceMeans of the kernel), Reshaped back and read by
    the Conv, with conv.bias [4]. The BatchNormalization's bias is a Constant of zeros [4]; its
    scale: "none" (StdConv2d) a Constant of ones [4]; "computed" (ScaledStdConv2d) the learned
    conv.gain [4, 1, 1, 1] times a scalar Constant, Reshaped to [4]; "direct" conv.gain [4]
    given as it is. "activations": a plain BatchNormalization of the conv's output instead,
    its scale and bias Constants [4] and its mean and variance initializers [4]."""
    nodes = [helper.make_node("Constant", [], ["zeros"], value=weight("zeros", [4]))]
    inits = [weight("conv.weight", [4, 3, 3, 3]), weight("conv.bias", [4])]
    if gain == "activations":
        nodes += [helper.make_node("Constant", [], ["ones"], value=weight("ones", [4])),
                  helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"]),
                  helper.make_node("BatchNormalization", ["c", "ones", "zeros", "mean", "var"], ["y"])]
        return model(nodes, [("x", [1, 3, 8, 8])], inits + [weight("mean", [4]), weight("var", [4])])
    inits += [ints("flat", [1, 4, -1]), ints("back", [4, 3, 3, 3])]
    if gain == "none":
        nodes.append(helper.make_node("Constant", [], ["scale"], value=weight("ones", [4])))
    elif gain == "computed":
        nodes += [helper.make_node("Constant", [], ["s"], value=weight("s", [])),
                  helper.make_node("Mul", ["conv.gain", "s"], ["g"]),
                  helper.make_node("Reshape", ["g", "vector"], ["scale"])]
        inits += [weight("conv.gain", [4, 1, 1, 1]), ints("vector", [-1])]
    else:
        inits.append(weight("scale", [4]))
        inits[-1].name = "conv.gain"
        nodes.append(helper.make_node("Identity", ["conv.gain"], ["scale"]))
    nodes += [helper.make_node("Reshape", ["conv.weight", "flat"], ["w"]),
              helper.make_node("ReduceMean", ["w"], ["mean"], axes=[0, 2], keepdims=0),
              helper.make_node("Mul", ["w", "w"], ["w2"]),
              helper.make_node("ReduceMean", ["w2"], ["var"], axes=[0, 2], keepdims=0),
              helper.make_node("BatchNormalization", ["w", "scale", "zeros", "mean", "var"], ["wn"],
                               training_mode=1),
              helper.make_node("Reshape", ["wn", "back"], ["ws"]),
              helper.make_node("Conv", ["x", "ws", "conv.bias"], ["y"])]
    return model(nodes, [("x", [1, 3, 8, 8])], inits)


@pytest.mark.parametrize("gain,params", [
    ("none", 4 * 3 * 3 * 3 + 4),              # torch's StdConv2d(3, 4, 3): weight and bias
    ("computed", 4 * 3 * 3 * 3 + 4 + 4),      # ScaledStdConv2d: and its gain [4, 1, 1, 1]
    ("direct", 4 * 3 * 3 * 3 + 4 + 4),        # a gain named as a parameter, given as it is
    ("activations", 4 * 3 * 3 * 3 + 4 + 4 + 4)])  # an ordinary norm's scale and bias count
def test_a_weight_standardizations_unit_affine_is_not_a_parameter(gain, params):
    r = onnxscore.analyze(standardized_conv(gain))
    assert r.totals.params == params
    assert r.totals.buffers == (4 + 4 if gain == "activations" else 0)  # running mean and variance


def test_a_learned_table_resized_before_its_gather_stays_a_parameter():
    """BEiT (transformers 5) interpolates its learned relative-position table [9, 2] to the
    window before the Gather by constant indices that makes the [2, 4, 4] attention bias: the
    table, sliced, reshaped, transposed and resized (to sizes read off its own Shape), is still
    the learned table, 9 * 2 = 18 parameters; the indices are no float tensor."""
    nodes = [helper.make_node("Slice", ["table", "s0", "s9", "s0"], ["t1"]),
             helper.make_node("Reshape", ["t1", "grid"], ["t2"]),             # [1, 3, 3, 2]
             helper.make_node("Transpose", ["t2"], ["t3"], perm=[0, 3, 1, 2]),  # [1, 2, 3, 3]
             helper.make_node("Shape", ["t3"], ["shape"]),
             helper.make_node("Slice", ["shape", "s0", "s2", "s0"], ["nc"]),
             helper.make_node("Concat", ["nc", "hw"], ["sizes"], axis=0),
             helper.make_node("Resize", ["t3", "", "", "sizes"], ["t4"], mode="nearest"),
             helper.make_node("Transpose", ["t4"], ["t5"], perm=[0, 2, 3, 1]),
             helper.make_node("Reshape", ["t5", "flat"], ["t6"]),              # [9, 2]
             helper.make_node("Gather", ["t6", "index"], ["b1"], axis=0),      # [16, 2]
             helper.make_node("Reshape", ["b1", "square"], ["b2"]),            # [4, 4, 2]
             helper.make_node("Transpose", ["b2"], ["b3"], perm=[2, 0, 1]),    # [2, 4, 4]
             helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["q", "kt"], ["raw"]),
             helper.make_node("Add", ["raw", "b3"], ["biased"]),
             helper.make_node("Softmax", ["biased"], ["y"], axis=-1)]
    inits = [weight("table", [9, 2]), ints("s0", [0]), ints("s9", [9]), ints("s2", [2]), ints("grid", [1, 3, 3, 2]),
             ints("hw", [3, 3]), ints("flat", [9, 2]), ints("index", [i % 9 for i in range(16)]),
             ints("square", [4, 4, 2])]
    r = onnxscore.analyze(model(nodes, [("q", [1, 2, 4, 8]), ("k", [1, 2, 4, 8])], inits))
    assert (r.totals.params, r.totals.buffers) == (9 * 2, 0)


def test_a_one_element_parameter_is_counted_a_one_element_constant_is_not():
    """timm's LearnableAffineBlock, ``scale * x + bias`` with a learned scale and bias of one
    element each (initializers ``blk.lab.scale``, ``blk.lab.bias``): 2 parameters. The same
    Mul and Add by constants as exporters name them (TorchScript's ``onnx::Mul_3``, dynamo's
    ``val_7``, a Constant node) are constants: 0."""
    def affine(scale, bias, constant_node=False):
        nodes = [helper.make_node("Mul", ["x", scale], ["m"]), helper.make_node("Add", ["m", bias], ["y"])]
        tensors = [weight(scale, [1]), weight(bias, [1])]
        if constant_node:
            nodes = [helper.make_node("Constant", [], [t.name], value=t) for t in tensors] + nodes
            tensors = []
        return model(nodes, [("x", [1, 8])], tensors)

    assert onnxscore.analyze(affine("blk.lab.scale", "blk.lab.bias")).totals.params == 2
    assert onnxscore.analyze(affine("onnx::Mul_3", "val_7")).totals.params == 0
    assert onnxscore.analyze(affine("blk.lab.scale", "blk.lab.bias", constant_node=True)).totals.params == 0
