"""Normalisations: tables derived from the spec formulas (function bodies where there is one).

A mean of n values is n - 1 adds + 1 divide = n FLOPs, 1 per element. Standardisation per
element: mean, x - mean, square, variance mean, * inv_std = 5; per row: + eps, sqrt, reciprocal = 3.
"""
from __future__ import annotations

import pytest
from onnx import TensorProto

import onnxscore
from onnxscore.ops import registry
from onnxscore.ops.registry import BUFFER, DATA, WEIGHT, UnknownShape
from tests.opmodels import cost, node_model, weight

FLOAT = TensorProto.FLOAT

# (id, op, input shapes, output shapes, attrs, flops); every norm has zero MACs.
NORM = [
    # Inference BN per element x*s + b' (2); per channel s = scale/sqrt(var+eps) (3), b' = B - mean*s (2).
    ("bn_4d", "BatchNormalization", [(2, 3, 4, 5), (3,), (3,), (3,), (3,)], [(2, 3, 4, 5)], {},
     2*(2*3*4*5) + 5*3),
    ("bn_2d", "BatchNormalization", [(6, 4), (4,), (4,), (4,), (4,)], [(6, 4)], {},
     2*(6*4) + 5*4),
    # Training: + batch mean (1) and variance (sub, square, mean: 3) per element,
    # + running mean/var updates (2 mul + 1 add each) per channel.
    ("bn_training", "BatchNormalization", [(2, 3, 4, 5), (3,), (3,), (3,), (3,)],
     [(2, 3, 4, 5), (3,), (3,)], {"training_mode": 1},
     (2 + 4)*(2*3*4*5) + (5 + 6)*3),
    # LayerNorm rows = prod(x[:axis]); per element 5 + scale 1 (+ bias 1), per row 3.
    ("ln_last_axis_bias", "LayerNormalization", [(2, 5, 8), (8,), (8,)], [(2, 5, 8)], {},
     2*5*8*(5 + 1 + 1) + 2*5*3),
    ("ln_axis1_no_bias", "LayerNormalization", [(2, 5, 8), (5, 8)], [(2, 5, 8)], {"axis": 1},
     2*5*8*(5 + 1) + 2*3),
    ("ln_negative_axis", "LayerNormalization", [(2, 5, 8), (5, 8), (5, 8)], [(2, 5, 8)], {"axis": -2},
     2*5*8*(5 + 1 + 1) + 2*3),
    ("ln_axis0", "LayerNormalization", [(2, 5, 8), (2, 5, 8), (2, 5, 8)], [(2, 5, 8)], {"axis": 0},
     2*5*8*(5 + 1 + 1) + 1*3),
    # GroupNorm rows = N * num_groups.
    ("group_norm", "GroupNormalization", [(2, 6, 4, 4), (6,), (6,)], [(2, 6, 4, 4)], {"num_groups": 3},
     2*6*4*4*(5 + 1 + 1) + 2*3*3),
    # InstanceNorm rows = N * C.
    ("instance_norm", "InstanceNormalization", [(2, 6, 4, 4), (6,), (6,)], [(2, 6, 4, 4)], {},
     2*6*4*4*(5 + 1 + 1) + 2*6*3),
    # RMSNorm per element: square, mean, * inv_rms, * scale = 4; per row 3.
    ("rms_norm", "RMSNormalization", [(3, 7, 16), (16,)], [(3, 7, 16)], {},
     4*(3*7*16) + 3*7*3),
    ("rms_norm_axis1", "RMSNormalization", [(3, 7, 16), (7, 16)], [(3, 7, 16)], {"axis": 1},
     4*(3*7*16) + 3*3),
    # LpNorm per row of n: n powers + (n - 1) adds + root + n divides.
    ("lp_norm_p2_axis1", "LpNormalization", [(4, 10)], [(4, 10)], {"axis": 1, "p": 2},
     4*(10 + 9 + 1 + 10)),
    ("lp_norm_p1", "LpNormalization", [(4, 10)], [(4, 10)], {"axis": 1, "p": 1},
     4*(10 + 9 + 0 + 10)),  # |x| then no root
    ("lp_norm_defaults", "LpNormalization", [(2, 3, 5)], [(2, 3, 5)], {},
     2*3*(5 + 4 + 1 + 5)),  # axis -1, p 2
    ("lp_norm_axis0", "LpNormalization", [(2, 3, 5)], [(2, 3, 5)], {"axis": 0},
     3*5*(2 + 1 + 1 + 2)),
    # MVN per element 5 (mean, x^2, mean of x^2, x - mean, divide), per row 4
    # (square of mean, E[x^2] - E[x]^2, sqrt, + eps); default axes [0, 2, 3] -> rows = C.
    ("mvn_default_axes", "MeanVarianceNormalization", [(2, 3, 4, 4)], [(2, 3, 4, 4)], {},
     5*(2*3*4*4) + 4*3),
    ("mvn_spatial_axes", "MeanVarianceNormalization", [(2, 3, 4, 4)], [(2, 3, 4, 4)], {"axes": [2, 3]},
     5*(2*3*4*4) + 4*2*3),
    # LRN per element 5 (square, * alpha/size, + bias, ^beta, divide) + window adds per position.
    # size 3 over C=5: windows [0,1] [0,2] [1,3] [2,4] [3,4] -> adds 1+2+2+2+1 = 8.
    ("lrn_size3", "LRN", [(1, 5, 2, 2)], [(1, 5, 2, 2)], {"size": 3, "alpha": 1e-4, "beta": 0.75},
     5*(1*5*2*2) + 1*2*2*(1 + 2 + 2 + 2 + 1)),
    # size 4: c - 1 .. c + 2 -> [0,2] [0,3] [1,4] [2,4] [3,4] -> adds 2+3+3+2+1 = 11.
    ("lrn_size4_asymmetric", "LRN", [(2, 5, 3, 1)], [(2, 5, 3, 1)], {"size": 4},
     5*(2*5*3*1) + 2*3*1*(2 + 3 + 3 + 2 + 1)),
]


@pytest.mark.parametrize("op,ins,outs,attrs,flops", [c[1:] for c in NORM], ids=[c[0] for c in NORM])
def test_norm(op, ins, outs, attrs, flops):
    c = cost(op, ins, outs, attrs)
    assert (c.macs, c.flops) == (0, flops)


def test_symbolic_batch_is_unknown():
    with pytest.raises(UnknownShape):
        cost("LayerNormalization", [("batch", 8), (8,)], [None], {})


@pytest.mark.parametrize("op,roles", [
    ("BatchNormalization", [DATA, WEIGHT, WEIGHT, BUFFER, BUFFER]),
    ("LayerNormalization", [DATA, WEIGHT, WEIGHT]),
    ("GroupNormalization", [DATA, WEIGHT, WEIGHT]),
    ("InstanceNormalization", [DATA, WEIGHT, WEIGHT]),
    ("RMSNormalization", [DATA, WEIGHT]),
])
def test_roles(op, roles):
    r = registry.lookup("", op)
    assert [r.role(i) for i in range(len(roles))] == roles


def test_pipeline_batchnorm_statistics_are_buffers():
    inits = [weight(n, [8]) for n in ("scale", "B", "mean", "var")]
    model = node_model("BatchNormalization", [("X", FLOAT, [1, 8, 4, 4]), "scale", "B", "mean", "var"],
                       [("Y", FLOAT, None)], initializers=inits)
    report = onnxscore.analyze(model)
    layer = report.layers[0]
    assert layer.status == "ok"
    assert (layer.macs, layer.flops) == (0, 2*(1*8*4*4) + 5*8)
    assert report.totals.params == 8 + 8  # scale + B
    assert report.totals.buffers == 8 + 8  # mean + var


def test_pipeline_layernorm_params():
    model = node_model("LayerNormalization", [("X", FLOAT, [2, 4, 16]), "g", "b"], [("Y", FLOAT, None)],
                       initializers=[weight("g", [16]), weight("b", [16])])
    report = onnxscore.analyze(model)
    assert report.layers[0].flops == 2*4*16*(5 + 1 + 1) + 2*4*3
    assert report.totals.params == 16 + 16
    assert report.totals.buffers == 0
