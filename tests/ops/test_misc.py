"""Resampling, signal, loss, detection and text ops: hand counts from the spec formulas.

Interpolating one output point from a t-tap stencil per axis collapses one axis at a time, each
1-D weighted sum of t values costing t mul + (t - 1) add: bilinear is 2 lerps along W and 1
along H, (2 + 1) * 3 = 9 FLOPs; bicubic is 4 + 1 sums of 7, 35 FLOPs.
"""
from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from onnxscore.ops import registry
from onnxscore.ops.misc import interp_flops
from onnxscore.ops.registry import CONTROL, DATA, Cost, UnknownShape
from tests.opmodels import cost, node_model, weight

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64

# (id, op, input shapes, output shapes, attrs, flops)
RESIZE = [
    # 2-D bilinear, 4x4 -> 8x8: per output (2 + 1) lerps * 3 FLOPs.
    ("linear_2d", "Resize", [(1, 3, 4, 4), (), (4,)], [(1, 3, 8, 8)], {"mode": "linear"},
     1*3*8*8*(2 + 1)*3),
    ("nearest", "Resize", [(1, 3, 4, 4), (), (4,)], [(1, 3, 8, 8)], {"mode": "nearest"}, 0),
    ("default_mode_nearest", "Resize", [(1, 3, 4, 4), (), (4,)], [(1, 3, 8, 8)], {}, 0),
    # Only W resized: 1 lerp per output.
    ("linear_1_axis", "Resize", [(1, 3, 4, 4), (), (4,)], [(1, 3, 4, 8)], {"mode": "linear"},
     1*3*4*8*3),
    # Trilinear on a 5-D tensor: 4 + 2 + 1 lerps.
    ("linear_3d", "Resize", [(1, 2, 2, 2, 2), (), (5,)], [(1, 2, 4, 4, 4)], {"mode": "linear"},
     1*2*4*4*4*(4 + 2 + 1)*3),
    # Bicubic: 4 sums of 4 taps along W, 1 along H, each 4 mul + 3 add.
    ("cubic_2d", "Resize", [(1, 3, 4, 4), (), (4,)], [(1, 3, 8, 8)], {"mode": "cubic"},
     1*3*8*8*(4 + 1)*(4 + 3)),
    # Antialiased 2x downsampling stretches the linear kernel to 2*ceil(1*8/4) = 4 taps per axis.
    ("linear_antialias_down", "Resize", [(1, 1, 8, 8), (), (4,)], [(1, 1, 4, 4)],
     {"mode": "linear", "antialias": 1}, 1*1*4*4*(4 + 1)*(4 + 3)),
    # Antialias has no effect when upsampling.
    ("linear_antialias_up", "Resize", [(1, 1, 4, 4), (), (4,)], [(1, 1, 8, 8)],
     {"mode": "linear", "antialias": 1}, 1*1*8*8*(2 + 1)*3),
    # Upsample (opset 9): same interpolation.
    ("upsample_linear", "Upsample", [(1, 1, 2, 2), (4,)], [(1, 1, 4, 4)], {"mode": "linear"},
     1*1*4*4*(2 + 1)*3),
    ("upsample_nearest", "Upsample", [(1, 1, 2, 2), (4,)], [(1, 1, 4, 4)], {}, 0),
    # GridSample: grid unnormalisation x*a + b (2) per coordinate + interpolation per output.
    ("grid_sample_bilinear", "GridSample", [(1, 2, 4, 4), (1, 3, 3, 2)], [(1, 2, 3, 3)], {},
     1*3*3*2*2 + 1*2*3*3*(2 + 1)*3),
    ("grid_sample_bicubic_v16", "GridSample", [(1, 2, 4, 4), (1, 3, 3, 2)], [(1, 2, 3, 3)],
     {"mode": "bicubic"}, 1*3*3*2*2 + 1*2*3*3*(4 + 1)*(4 + 3)),
    ("grid_sample_nearest", "GridSample", [(1, 2, 4, 4), (1, 3, 3, 2)], [(1, 2, 3, 3)],
     {"mode": "nearest"}, 1*3*3*2*2),
    ("grid_sample_3d", "GridSample", [(1, 2, 4, 4, 4), (1, 2, 2, 2, 3)], [(1, 2, 2, 2, 2)],
     {"mode": "linear"}, 1*2*2*2*3*2 + 1*2*2*2*2*(4 + 2 + 1)*3),
    # Windows: angle mul, cos, mul, sub (+ mul, cos, mul, add for Blackman's second term).
    ("hann", "HannWindow", [()], [(10,)], {}, 10*4),
    ("hamming", "HammingWindow", [()], [(10,)], {}, 10*4),
    ("blackman", "BlackmanWindow", [()], [(10,)], {}, 10*(4 + 4)),
    # Mel matrix [dft_length/2 + 1, mel bins], sub and div per entry.
    ("mel", "MelWeightMatrix", [(), (), (), (), ()], [(257, 80)], {}, 257*80*2),
    # NLL, T = N = 4 targets: negate each; mean: 3 adds + 1 divide.
    ("nll_mean", "NegativeLogLikelihoodLoss", [(4, 5), (4,)], [()], {}, 4*1 + (4 - 1) + 1),
    ("nll_sum", "NegativeLogLikelihoodLoss", [(4, 5), (4,)], [()], {"reduction": "sum"},
     4*1 + (4 - 1)),
    ("nll_none", "NegativeLogLikelihoodLoss", [(4, 5), (4,)], [(4,)], {"reduction": "none"}, 4*1),
    # With class weights: + a mul per target and the weight total (3 adds) for the mean.
    ("nll_weighted_mean", "NegativeLogLikelihoodLoss", [(4, 5), (4,), (5,)], [()], {},
     4*(1 + 1) + (4 - 1) + 1 + (4 - 1)),
    # Spatial NLL: target [N, d1] = 2*3 values.
    ("nll_spatial_sum", "NegativeLogLikelihoodLoss", [(2, 5, 3), (2, 3)], [()],
     {"reduction": "sum"}, 2*3*1 + (2*3 - 1)),
    # SCE: log-softmax (5 per score) then the NLL mean.
    ("sce_mean", "SoftmaxCrossEntropyLoss", [(4, 5), (4,)], [()], {},
     4*5*5 + 4*1 + (4 - 1) + 1),
]


@pytest.mark.parametrize("case", RESIZE, ids=lambda c: c[0])
def test_misc_flops(case):
    _, op, ins, outs, attrs, flops = case
    assert cost(op, ins, outs, attrs) == Cost(0, flops)


@pytest.mark.parametrize("taps,flops", [
    ([2], 3),  # one lerp
    ([2, 2], 2*3 + 3),
    ([4, 4], 4*7 + 7),
    ([2, 8], 2*15 + 3),  # the 8-tap axis first: 2 sums of 8, then 1 of 2
    ([], 0),
])
def test_interp_flops(taps, flops):
    assert interp_flops(taps) == flops


def test_affine_grid_is_a_contraction():
    # theta [N, 2, 3] times homogeneous base points [H*W, 3]: N*H*W*2*3 MACs.
    c = cost("AffineGrid", [(2, 2, 3), (4,)], [(2, 4, 5, 2)])
    assert c == Cost.of_macs(2*4*5*2*3)
    c3 = cost("AffineGrid", [(1, 3, 4), (5,)], [(1, 2, 3, 4, 3)])
    assert c3 == Cost.of_macs(1*2*3*4*3*4)  # N*D*H*W*3*4


# (id, input shapes, output shape, attrs, values, opset, flops); FFT 5 N log2 N, real half.
DFT = [
    ("real_n8", [(1, 8, 1)], (1, 8, 2), {}, {}, 20, 1*5*8*3 // 2),  # log2 8 = 3
    ("complex_batch", [(4, 16, 2)], (4, 16, 2), {}, {}, 20, 4*5*16*4),  # log2 16 = 4
    # Inverse: + the 1/N scale on each of 8 complex outputs (16 scalars).
    ("inverse_complex", [(1, 8, 2)], (1, 8, 2), {"inverse": 1}, {}, 20, 5*8*3 + 8*2),
    # Onesided real forward: N is the input length, not the 5 output bins.
    ("onesided", [(1, 8, 1)], (1, 5, 2), {"onesided": 1}, {}, 20, 5*8*3 // 2),
    # dft_length 16 zero-pads the 8-sample signal.
    ("dft_length", [(1, 8, 1), ()], (1, 16, 2), {}, {1: 16}, 20, 5*16*4 // 2),
    # Axis input 1 on [2, 4, 8, 2]: transforms over axis 1 of length 4; 2*8 of them.
    ("axis_input", [(2, 4, 8, 2), (), ()], (2, 4, 8, 2), {}, {2: 1}, 20, 2*8*5*4*2),
    # Opset 17: axis attribute, default 1.
    ("opset17_axis_attr", [(2, 8, 1)], (2, 8, 2), {}, {}, 17, 2*5*8*3 // 2),
]


@pytest.mark.parametrize("case", DFT, ids=lambda c: c[0])
def test_dft(case):
    _, ins, out, attrs, values, opset, flops = case
    assert cost("DFT", ins, [out], attrs, values=values, opset=opset) == Cost(0, flops)


def test_dft_onesided_unknown_length():
    with pytest.raises(UnknownShape):
        cost("DFT", [(1, 8, 1), ()], [(1, 5, 2)], {"onesided": 1})


def test_stft():
    # 64 real samples, window 16, step 16: 4 frames of 9 bins; per frame 2.5*16*log2 16 + 16 muls.
    c = cost("STFT", [(1, 64, 1), (), (16,)], [(1, 4, 9, 2)], values={1: 16})
    assert c == Cost(0, 1*4*(5*16*4 // 2 + 16))
    # No window, frame_length 8, complex signal: 5*8*3 per frame, no window muls.
    c = cost("STFT", [(2, 32, 2), (), None, ()], [(2, 7, 8, 2)], {"onesided": 0}, values={1: 4, 3: 8})
    assert c == Cost(0, 2*7*5*8*3)


def test_stft_frame_length_from_window_or_output():
    # frame_length given at run time: the window's length (16) is the frame length.
    c = cost("STFT", [(1, 64, 1), (), (16,), ()], [(1, 4, 9, 2)], values={1: 16})
    assert c == Cost(0, 1*4*(5*16*4 // 2 + 16))
    # No window, two-sided: the 16 output bins are the frame length.
    c = cost("STFT", [(1, 64, 1), (), None, ()], [(1, 4, 16, 2)], {"onesided": 0}, values={1: 16})
    assert c == Cost(0, 1*4*(5*16*4 // 2))
    # No window, one-sided: 9 bins could be 16 or 17 samples.
    with pytest.raises(UnknownShape):
        cost("STFT", [(1, 64, 1), (), None, ()], [(1, 4, 9, 2)], values={1: 16})


def test_non_max_suppression():
    # B=1, S=10 boxes, C=2 classes, score_threshold given. Per batch 10 areas (3 each); per
    # class a sort of 10*(floor(log2 10)+1) = 10*4 compares, 10 threshold compares and
    # 10*9/2 = 45 IoUs of 13 FLOPs.
    c = cost("NonMaxSuppression", [(1, 10, 4), (1, 2, 10), (), (), ()], [(5, 3)])
    assert c == Cost(0, 1*(10*3 + 2*(10*4 + 10*1 + 45*13)))
    # center_point_box adds 6 per box; no score threshold.
    c = cost("NonMaxSuppression", [(2, 4, 4), (2, 1, 4), ()], [(2, 3)], {"center_point_box": 1})
    assert c == Cost(0, 2*(4*(3 + 6) + 1*(4*3 + 6*13)))  # 4.bit_length() = 3, 4*3/2 = 6 pairs


def test_tfidf_vectorizer():
    # Rows of 6 tokens, 1- and 2-grams, skips 0..1: 6 unigrams + 5 (skip 0) + 4 (skip 1) bigrams.
    attrs = {"mode": "TF", "min_gram_length": 1, "max_gram_length": 2, "max_skip_count": 1,
             "ngram_counts": [0, 3], "ngram_indexes": list(range(7)), "pool_int64s": list(range(9))}
    assert cost("TfIdfVectorizer", [(2, 6)], [(2, 7)], attrs) == Cost(0, 2*(6 + 5 + 4))
    # TFIDF: + one weight mul per output element.
    attrs["mode"] = "TFIDF"
    assert cost("TfIdfVectorizer", [(2, 6)], [(2, 7)], attrs) == Cost(0, 2*(6 + 5 + 4) + 2*7)
    # 1-D input, bigrams only with skip 0..2 on 3 tokens: 2 + 1 + 0 windows.
    attrs.update(mode="TF", min_gram_length=2, max_skip_count=2)
    assert cost("TfIdfVectorizer", [(3,)], [(7,)], attrs) == Cost(0, 2 + 1)


@pytest.mark.parametrize("op,index,role", [
    ("Resize", 1, CONTROL), ("Resize", 2, CONTROL), ("Resize", 3, CONTROL), ("Resize", 0, DATA),
    ("Upsample", 1, CONTROL), ("AffineGrid", 1, CONTROL), ("DFT", 1, CONTROL), ("DFT", 2, CONTROL),
    ("STFT", 1, CONTROL), ("STFT", 2, CONTROL), ("STFT", 3, CONTROL), ("HannWindow", 0, CONTROL),
    ("MelWeightMatrix", 4, CONTROL), ("NegativeLogLikelihoodLoss", 1, CONTROL),
    ("SoftmaxCrossEntropyLoss", 1, CONTROL), ("NonMaxSuppression", 0, DATA),
    ("NonMaxSuppression", 1, DATA), ("NonMaxSuppression", 2, CONTROL),
    ("NonMaxSuppression", 3, CONTROL), ("NonMaxSuppression", 4, CONTROL),
])
def test_roles(op, index, role):
    assert registry.lookup("", op).role(index) == role


def test_pipeline_resize_scales_are_not_params():
    import onnxscore
    scales = helper.make_tensor("scales", FLOAT, [4], [1.0, 1.0, 2.0, 2.0])
    model = node_model("Resize", [("x", FLOAT, [1, 3, 4, 4]), "", ("scales", FLOAT, [4])],
                       [("y", FLOAT, None)], {"mode": "linear"}, initializers=[scales])
    report = onnxscore.analyze(model)
    layer = report.layers[0]
    assert layer.status == "ok"
    assert layer.flops == 1*3*8*8*(2 + 1)*3
    assert report.totals.params == 0  # float scales are CONTROL


def test_pipeline_resize_roi_and_sizes():
    import onnxscore
    roi = helper.make_tensor("roi", FLOAT, [8], [0, 0, 0, 0, 1, 1, 1, 1])
    sizes = helper.make_tensor("sizes", INT64, [4], [1, 2, 6, 6])
    model = node_model("Resize", [("x", FLOAT, [1, 2, 3, 3]), ("roi", FLOAT, [8]), "",
                                  ("sizes", INT64, [4])],
                       [("y", FLOAT, None)], {"mode": "cubic"}, initializers=[roi, sizes])
    report = onnxscore.analyze(model)
    assert report.layers[0].flops == 1*2*6*6*(4 + 1)*(4 + 3)
    assert report.totals.params == 0


def test_pipeline_affine_grid_theta_constant():
    import onnxscore
    size = helper.make_tensor("size", INT64, [4], [1, 3, 4, 5])
    model = node_model("AffineGrid", [("theta", FLOAT, [1, 2, 3]), ("size", INT64, [4])],
                       [("grid", FLOAT, None)], initializers=[weight("theta", [1, 2, 3]), size])
    report = onnxscore.analyze(model)
    assert report.layers[0].macs == 1*4*5*2*3  # N*H*W*2*3
    assert report.totals.params == 1*2*3  # a constant float theta is model data
