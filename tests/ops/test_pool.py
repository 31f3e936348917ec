"""Pooling: tables derived from the spec.

Per output element with a window of k = prod(kernel_shape): MaxPool k - 1 compares; AveragePool
k - 1 adds + 1 divide = k; LpPool k powers + (k - 1) adds + 1 root (|x| = 1 power for p = 1 and
no root; x*x for p = 2; abs + pow = 2 otherwise).
"""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, numpy_helper

import onnxscore
from onnxscore.ops import registry
from onnxscore.ops.registry import CONTROL, DATA, UnknownShape
from tests.opmodels import cost, node_model

FLOAT = TensorProto.FLOAT

# (id, op, input shape, output shapes, attrs, flops); every pool has zero MACs.
POOL = [
    ("max_2x2_s2", "MaxPool", (1, 3, 8, 8), [(1, 3, 4, 4)], {"kernel_shape": [2, 2], "strides": [2, 2]},
     1*3*4*4*(2*2 - 1)),  # N*C*Ho*Wo*(Kh*Kw - 1)
    ("max_resnet_stem", "MaxPool", (1, 64, 112, 112), [(1, 64, 56, 56)],
     {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
     1*64*56*56*(3*3 - 1)),
    ("max_ceil_mode", "MaxPool", (1, 1, 5, 5), [(1, 1, 3, 3)],
     {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1},
     1*1*3*3*(2*2 - 1)),  # Ho = ceil((5 - 2)/2) + 1 = 3; partial edge windows charged in full
    ("max_dilated", "MaxPool", (1, 2, 6, 6), [(1, 2, 4, 4)], {"kernel_shape": [2, 2], "dilations": [2, 2]},
     1*2*4*4*(2*2 - 1)),  # Ho = 6 - ((2-1)*2 + 1) + 1 = 4; dilation spreads, not grows, the window
    ("max_1d_with_indices", "MaxPool", (2, 4, 10), [(2, 4, 8), (2, 4, 8)], {"kernel_shape": [3]},
     2*4*8*(3 - 1)),  # Indices output costs nothing
    ("avg_3x3_pad_exclude", "AveragePool", (1, 2, 5, 5), [(1, 2, 5, 5)],
     {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
     1*2*5*5*(3*3)),  # (k - 1) adds + 1 divide
    ("avg_3x3_pad_include", "AveragePool", (1, 2, 5, 5), [(1, 2, 5, 5)],
     {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1},
     1*2*5*5*(3*3)),  # only the divisor changes
    ("avg_strided_ceil", "AveragePool", (1, 1, 6, 6), [(1, 1, 3, 3)],
     {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
     1*1*3*3*(3*3)),  # Ho = ceil((6 - 3)/2) + 1 = 3
    ("avg_3d", "AveragePool", (1, 2, 4, 4, 4), [(1, 2, 2, 2, 2)],
     {"kernel_shape": [2, 2, 2], "strides": [2, 2, 2]},
     1*2*2*2*2*(2*2*2)),
    ("lp_p2", "LpPool", (1, 3, 8, 8), [(1, 3, 4, 4)], {"kernel_shape": [2, 2], "strides": [2, 2]},
     1*3*4*4*(4 + 3 + 1)),  # 4 squares + 3 adds + sqrt
    ("lp_p1", "LpPool", (1, 3, 8, 8), [(1, 3, 4, 4)],
     {"kernel_shape": [2, 2], "strides": [2, 2], "p": 1},
     1*3*4*4*(4 + 3)),  # 4 abs + 3 adds, no root
    ("lp_p3", "LpPool", (1, 3, 8, 8), [(1, 3, 4, 4)],
     {"kernel_shape": [2, 2], "strides": [2, 2], "p": 3},
     1*3*4*4*(4*2 + 3 + 1)),  # 4 * (abs, pow) + 3 adds + root
    ("global_avg", "GlobalAveragePool", (2, 8, 7, 7), [(2, 8, 1, 1)], {},
     2*8*7*7),  # N*C*(48 adds + 1 divide)
    ("global_max", "GlobalMaxPool", (2, 8, 7, 7), [(2, 8, 1, 1)], {},
     2*8*(7*7 - 1)),
    ("global_lp_p2", "GlobalLpPool", (2, 8, 7, 7), [(2, 8, 1, 1)], {},
     2*8*(49 + 48 + 1)),
    ("global_lp_p1", "GlobalLpPool", (2, 8, 7, 7), [(2, 8, 1, 1)], {"p": 1},
     2*8*(49 + 48)),
    ("global_avg_1d", "GlobalAveragePool", (3, 4, 10), [(3, 4, 1)], {},
     3*4*10),
]


@pytest.mark.parametrize("op,x,outs,attrs,flops", [c[1:] for c in POOL], ids=[c[0] for c in POOL])
def test_pool(op, x, outs, attrs, flops):
    c = cost(op, [x], outs, attrs)
    assert (c.macs, c.flops) == (0, flops)


def test_pool_symbolic_output_is_unknown():
    with pytest.raises(UnknownShape):
        cost("MaxPool", [("N", 3, 8, 8)], [("N", 3, 4, 4)], {"kernel_shape": [2, 2], "strides": [2, 2]})


# RoiAlign, per RoI: bins * (8 weight FLOPs * S + C * (7 * S + reduce)), S samples per bin,
# reduce = S for 'avg' (S - 1 adds + 1 divide), S - 1 for 'max'.
ROI_ALIGN = [
    ("avg_ratio2", {"sampling_ratio": 2, "output_height": 7, "output_width": 7}, None,
     3*49*(8*4 + 4*(7*4 + 4))),  # 3 RoIs, 7*7 bins, S = 2*2, C = 4
    ("max_ratio2", {"sampling_ratio": 2, "output_height": 7, "output_width": 7, "mode": "max"}, None,
     3*49*(8*4 + 4*(7*4 + 3))),
    ("avg_ratio1", {"sampling_ratio": 1, "output_height": 7, "output_width": 7}, None,
     3*49*(8*1 + 4*(7*1 + 1))),
]


@pytest.mark.parametrize("attrs,rois,flops", [c[1:] for c in ROI_ALIGN], ids=[c[0] for c in ROI_ALIGN])
def test_roi_align(attrs, rois, flops):
    c = cost("RoiAlign", [(1, 4, 16, 16), (3, 4), (3,)], [(3, 4, 7, 7)], attrs)
    assert (c.macs, c.flops) == (0, flops)


def test_roi_align_adaptive_with_constant_rois():
    # spatial_scale 0.5, 2x2 bins: RoI 0 is 4x4 -> ceil(4/2)^2 = 4 samples;
    # RoI 1 is w = 3*0.5 = 1.5 -> ceil(0.75) = 1, h = 7*0.5 = 3.5 -> ceil(1.75) = 2: 2 samples.
    rois = [[0, 0, 8, 8], [2, 2, 5, 9]]
    c = cost("RoiAlign", [(1, 3, 16, 16), (2, 4), (2,)], [(2, 3, 2, 2)],
             {"spatial_scale": 0.5, "output_height": 2, "output_width": 2}, values={1: rois})
    assert c.flops == 2*2*(8*4 + 3*(7*4 + 4)) + 2*2*(8*2 + 3*(7*2 + 2))


def test_roi_align_adaptive_legacy_mode_clamps_to_one_pixel():
    # output_half_pixel: a zero-size RoI becomes 1x1 -> 1 sample; half_pixel keeps 0 samples
    # (the avg still divides once by max(count, 1)).
    attrs = {"output_height": 1, "output_width": 1}
    ins, outs = [(1, 2, 4, 4), (1, 4), (1,)], [(1, 2, 1, 1)]
    legacy = cost("RoiAlign", ins, outs, {**attrs, "coordinate_transformation_mode": "output_half_pixel"},
                  values={1: [[1, 1, 1, 1]]})
    half = cost("RoiAlign", ins, outs, attrs, values={1: [[1, 1, 1, 1]]})
    assert legacy.flops == 1*(8*1 + 2*(7*1 + 1))
    assert half.flops == 1*(0 + 2*(0 + 1))


def test_roi_align_adaptive_needs_rois():
    with pytest.raises(UnknownShape):
        cost("RoiAlign", [(1, 4, 16, 16), (3, 4), (3,)], [(3, 4, 7, 7)],
             {"output_height": 7, "output_width": 7})


# MaxRoiPool on a 10x10 map, C = 2: per bin (elements - 1) compares, bins per the Caffe rule.
MAX_ROI = [
    # corners 0..3 -> extent 4, 2 bins [0,2) [2,4) per axis -> 4 bins of 2x2 = 3 compares each.
    ("even", [[0, 0, 0, 3, 3]], [2, 2], 1.0, 2*4*(2*2 - 1)),
    # x 1..5 extent 5: [1,4) [3,6) len 3; y 1..3 extent 3: [1,3) [2,4) len 2 -> 4 bins of 6.
    ("overlapping_bins", [[0, 1, 1, 5, 3]], [2, 2], 1.0, 2*4*(3*2 - 1)),
    # 8..12 extent 5 clipped at 10: bins [8,10) len 2 and [10,10) empty per axis.
    ("clipped_and_empty", [[0, 8, 8, 12, 12]], [2, 2], 1.0, 2*1*(2*2 - 1)),
    # scale 0.5: round(0.5) = 1 (halves away from zero), round(3) = 3 -> extent 3 -> 3x3 bin.
    ("round_half_away", [[0, 1, 1, 6, 6]], [1, 1], 0.5, 2*1*(3*3 - 1)),
    ("two_rois", [[0, 0, 0, 3, 3], [0, 8, 8, 12, 12]], [2, 2], 1.0, 2*4*(2*2 - 1) + 2*1*(2*2 - 1)),
]


@pytest.mark.parametrize("rois,pooled,scale,flops", [c[1:] for c in MAX_ROI], ids=[c[0] for c in MAX_ROI])
def test_max_roi_pool(rois, pooled, scale, flops):
    c = cost("MaxRoiPool", [(1, 2, 10, 10), (len(rois), 5)], [(len(rois), 2) + tuple(pooled)],
             {"pooled_shape": pooled, "spatial_scale": scale}, values={1: rois})
    assert (c.macs, c.flops) == (0, flops)


def test_max_roi_pool_needs_rois():
    with pytest.raises(UnknownShape):
        cost("MaxRoiPool", [(1, 2, 10, 10), (3, 5)], [(3, 2, 2, 2)], {"pooled_shape": [2, 2]})


def test_max_unpool_is_zero_cost():
    r = registry.lookup("", "MaxUnpool")
    assert r.zero_cost
    assert [r.role(i) for i in range(3)] == [DATA, CONTROL, CONTROL]


@pytest.mark.parametrize("op", ["RoiAlign", "MaxRoiPool"])
def test_roi_roles(op):
    r = registry.lookup("", op)
    assert r.role(1) == CONTROL
    if op == "RoiAlign":
        assert r.role(2) == CONTROL


def test_pipeline_maxpool_ceil_mode_reads_inferred_shape():
    model = node_model("MaxPool", [("x", FLOAT, [1, 4, 7, 7])], [("y", FLOAT, None)],
                       {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1})
    report = onnxscore.analyze(model)
    assert report.layers[0].status == "ok"
    assert report.layers[0].flops == 1*4*3*3*(3*3 - 1)  # Ho = ceil((7 - 3)/2) + 1 = 3


def test_pipeline_roi_align_with_constant_rois():
    rois = numpy_helper.from_array(np.array([[0, 0, 8, 8], [2, 2, 5, 9]], dtype=np.float32), "rois")
    model = node_model("RoiAlign", [("x", FLOAT, [1, 3, 16, 16]), "rois", ("idx", TensorProto.INT64, [2])],
                       [("y", FLOAT, None)], {"output_height": 2, "output_width": 2, "spatial_scale": 0.5},
                       initializers=[rois])
    report = onnxscore.analyze(model)
    assert report.layers[0].status == "ok"
    # adaptive grids as in test_roi_align_adaptive_with_constant_rois: 4 and 2 samples per bin.
    assert report.layers[0].flops == 2*2*(8*4 + 3*(7*4 + 4)) + 2*2*(8*2 + 3*(7*2 + 2))
    assert report.totals.params == 0  # rois are CONTROL
