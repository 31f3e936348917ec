"""Conv, ConvTranspose, DeformConv, CausalConvWithState and Col2Im: tables derived from the spec."""
from __future__ import annotations

import pytest
from onnx import TensorProto

import onnxscore
from onnxscore.ops import registry
from onnxscore.ops.registry import CONTROL, DATA, WEIGHT, UnknownShape
from tests.opmodels import cost, node_model, weight

FLOAT = TensorProto.FLOAT

# (id, input shapes, output shapes, attrs, macs, flops)
CONV = [
    ("resnet_stem_bias", [(1, 3, 224, 224), (64, 3, 7, 7), (64,)], [(1, 64, 112, 112)],
     {"strides": [2, 2], "pads": [3, 3, 3, 3]},
     1*64*112*112*3*7*7,  # N*Cout*Ho*Wo*Cin*Kh*Kw
     2*(1*64*112*112*3*7*7) + 1*64*112*112),  # 2*MACs + N*Cout*Ho*Wo bias adds
    ("no_bias", [(1, 16, 8, 8), (32, 16, 3, 3)], [(1, 32, 8, 8)], {"pads": [1, 1, 1, 1]},
     1*32*8*8*16*3*3,  # N*Cout*Ho*Wo*Cin*Kh*Kw
     2*(1*32*8*8*16*3*3)),
    ("grouped", [(2, 8, 10, 10), (12, 2, 3, 3)], [(2, 12, 8, 8)], {"group": 4},
     2*12*8*8*2*3*3,  # N*Cout*Ho*Wo*(Cin/g = 8/4)*Kh*Kw
     2*(2*12*8*8*2*3*3)),
    ("depthwise_bias", [(1, 32, 16, 16), (32, 1, 3, 3), (32,)], [(1, 32, 16, 16)],
     {"group": 32, "pads": [1, 1, 1, 1]},
     1*32*16*16*1*3*3,  # N*Cout*Ho*Wo*(Cin/g = 1)*Kh*Kw
     2*(1*32*16*16*1*3*3) + 1*32*16*16),  # + N*Cout*Ho*Wo bias
    ("dilated", [(1, 4, 16, 16), (8, 4, 3, 3)], [(1, 8, 12, 12)], {"dilations": [2, 2]},
     1*8*12*12*4*3*3,  # N*Cout*Ho*Wo*Cin*Kh*Kw, Ho = 16 - (2*(3-1)+1) + 1 = 12
     2*(1*8*12*12*4*3*3)),
    ("strided_padded", [(1, 3, 10, 9), (6, 3, 3, 3)], [(1, 6, 6, 3)],
     {"strides": [2, 3], "pads": [1, 0, 2, 1]},
     1*6*6*3*3*3*3,  # N*Cout*Ho*Wo*Cin*Kh*Kw, Ho = (10+1+2-3)//2+1 = 6, Wo = (9+0+1-3)//3+1 = 3
     2*(1*6*6*3*3*3*3)),
    ("conv1d_bias", [(4, 16, 50), (32, 16, 5), (32,)], [(4, 32, 46)], {},
     4*32*46*16*5,  # N*Cout*Lo*Cin*K, Lo = 50-5+1
     2*(4*32*46*16*5) + 4*32*46),  # + N*Cout*Lo bias
    ("conv3d", [(1, 3, 8, 16, 16), (8, 3, 3, 3, 3)], [(1, 8, 8, 16, 16)], {"pads": [1] * 6},
     1*8*8*16*16*3*3*3*3,  # N*Cout*Do*Ho*Wo*Cin*Kd*Kh*Kw
     2*(1*8*8*16*16*3*3*3*3)),
    ("same_upper", [(1, 3, 15, 15), (4, 3, 3, 3)], [(1, 4, 8, 8)],
     {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
     1*4*8*8*3*3*3,  # N*Cout*Ho*Wo*Cin*Kh*Kw, Ho = ceil(15/2) = 8
     2*(1*4*8*8*3*3*3)),
]

# Same convolutions with the output shape unknown: output spatial computed from the attributes.
CONV_NO_OUTPUT_SHAPE = [
    ("strided_padded", [(1, 3, 10, 9), (6, 3, 3, 3)], {"strides": [2, 3], "pads": [1, 0, 2, 1]},
     1*6*6*3*3*3*3),  # Ho = (10+1+2-3)//2+1 = 6, Wo = (9+0+1-3)//3+1 = 3
    ("dilated", [(1, 4, 16, 16), (8, 4, 3, 3)], {"dilations": [2, 2]},
     1*8*12*12*4*3*3),  # Ho = 16 - 5 + 1 = 12
    ("same_upper", [(1, 3, 15, 15), (4, 3, 3, 3)], {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
     1*4*8*8*3*3*3),  # Ho = ceil(15/2) = 8
    ("same_lower", [(1, 3, 15, 15), (4, 3, 3, 3)], {"auto_pad": "SAME_LOWER", "strides": [2, 2]},
     1*4*8*8*3*3*3),  # Ho = ceil(15/2) = 8
    ("valid_ignores_pads", [(1, 3, 15, 15), (4, 3, 3, 3)],
     {"auto_pad": "VALID", "strides": [2, 2], "pads": [5, 5, 5, 5]},
     1*4*7*7*3*3*3),  # Ho = (15-3)//2+1 = 7
    ("conv1d", [(4, 16, 50), (32, 16, 5)], {"strides": [2]},
     4*32*23*16*5),  # Lo = (50-5)//2+1 = 23
]


@pytest.mark.parametrize("ins,outs,attrs,macs,flops", [c[1:] for c in CONV], ids=[c[0] for c in CONV])
def test_conv(ins, outs, attrs, macs, flops):
    c = cost("Conv", ins, outs, attrs)
    assert (c.macs, c.flops) == (macs, flops)


@pytest.mark.parametrize("ins,attrs,macs", [c[1:] for c in CONV_NO_OUTPUT_SHAPE],
                         ids=[c[0] for c in CONV_NO_OUTPUT_SHAPE])
def test_conv_output_from_attributes(ins, attrs, macs):
    c = cost("Conv", ins, [None], attrs)
    assert (c.macs, c.flops) == (macs, 2 * macs)


def test_conv_bias_without_output_shape():
    c = cost("Conv", [(2, 3, 9, 9), (5, 3, 3, 3), (5,)], [None], {"strides": [2, 2]})
    assert c.macs == 2*5*4*4*3*3*3  # N*Cout*Ho*Wo*Cin*Kh*Kw, Ho = (9-3)//2+1 = 4
    assert c.flops == 2*(2*5*4*4*3*3*3) + 2*5*4*4  # + N*Cout*Ho*Wo bias


def test_conv_weight_shape_unknown_uses_kernel_shape_and_group():
    c = cost("Conv", [(1, 8, 10, 10), ("M", "C", 3, 3)], [(1, 6, 8, 8)], {"kernel_shape": [3, 3], "group": 2})
    assert c.macs == 1*6*8*8*4*3*3  # N*Cout*Ho*Wo*(Cin/g = 8/2)*Kh*Kw


def test_conv_symbolic_batch_is_unknown():
    with pytest.raises(UnknownShape):
        cost("Conv", [("N", 3, 8, 8), (4, 3, 3, 3)], [("N", 4, 6, 6)], {})


# (id, input shapes, output shapes, attrs, macs, flops)
CONV_TRANSPOSE = [
    ("stride2_bias", [(1, 16, 8, 8), (16, 8, 4, 4), (8,)], [(1, 8, 16, 16)],
     {"strides": [2, 2], "pads": [1, 1, 1, 1]},
     1*16*8*8*8*4*4,  # N*Cin*Hi*Wi*(Cout/g)*Kh*Kw
     2*(1*16*8*8*8*4*4) + 1*8*16*16),  # + N*Cout*Ho*Wo bias, Ho = 2*(8-1)+4-2 = 16
    ("output_padding_bias", [(1, 4, 5, 5), (4, 2, 3, 3), (2,)], [(1, 2, 12, 12)],
     {"strides": [2, 2], "output_padding": [1, 1]},
     1*4*5*5*2*3*3,  # N*Cin*Hi*Wi*(Cout/g)*Kh*Kw
     2*(1*4*5*5*2*3*3) + 1*2*12*12),  # Ho = 2*(5-1)+1+3 = 12
    ("grouped_bias", [(2, 8, 6, 6), (8, 3, 3, 3), (6,)], [(2, 6, 8, 8)], {"group": 2},
     2*8*6*6*3*3*3,  # N*Cin*Hi*Wi*(Cout/g = 6/2)*Kh*Kw
     2*(2*8*6*6*3*3*3) + 2*6*8*8),  # + N*(Cout = 3*2)*Ho*Wo, Ho = 6-1+3 = 8
    ("conv1d_no_bias", [(1, 4, 10), (4, 6, 3)], [(1, 6, 12)], {},
     1*4*10*6*3,  # N*Cin*Li*Cout*K
     2*(1*4*10*6*3)),
]

# Output shape unknown: bias count needs the output spatial computed from the attributes.
CONV_TRANSPOSE_NO_OUTPUT_SHAPE = [
    ("pads", [(1, 16, 8, 8), (16, 8, 4, 4), (8,)], {"strides": [2, 2], "pads": [1, 1, 1, 1]},
     1*16*8*8*8*4*4, 1*8*16*16),  # Ho = 2*(8-1)+4-1-1 = 16
    ("output_padding_dilation", [(1, 4, 5, 5), (4, 2, 3, 3), (2,)],
     {"strides": [2, 2], "output_padding": [1, 0], "dilations": [2, 1]},
     1*4*5*5*2*3*3, 1*2*14*11),  # Ho = 2*4+1+(2*2+1) = 14, Wo = 2*4+0+3 = 11
    ("output_shape_attr", [(1, 2, 3, 3), (2, 1, 3, 3), (1,)], {"strides": [2, 2], "output_shape": [8, 8]},
     1*2*3*3*1*3*3, 1*1*8*8),  # explicit output 8x8 (the formula would give 7)
    ("same_upper", [(1, 2, 5, 5), (2, 3, 3, 3), (3,)], {"strides": [2, 2], "auto_pad": "SAME_UPPER"},
     1*2*5*5*3*3*3, 1*3*10*10),  # Ho = 5*2
]


@pytest.mark.parametrize("ins,outs,attrs,macs,flops", [c[1:] for c in CONV_TRANSPOSE],
                         ids=[c[0] for c in CONV_TRANSPOSE])
def test_conv_transpose(ins, outs, attrs, macs, flops):
    c = cost("ConvTranspose", ins, outs, attrs)
    assert (c.macs, c.flops) == (macs, flops)


@pytest.mark.parametrize("ins,attrs,macs,bias", [c[1:] for c in CONV_TRANSPOSE_NO_OUTPUT_SHAPE],
                         ids=[c[0] for c in CONV_TRANSPOSE_NO_OUTPUT_SHAPE])
def test_conv_transpose_output_from_attributes(ins, attrs, macs, bias):
    c = cost("ConvTranspose", ins, [None], attrs)
    assert (c.macs, c.flops) == (macs, 2 * macs + bias)


def test_conv_transpose_equals_its_adjoint_conv():
    """A transposed conv does exactly the multiply-adds of the conv whose gradient it is."""
    up = cost("ConvTranspose", [(1, 16, 8, 8), (16, 8, 4, 4)], [(1, 8, 16, 16)],
              {"strides": [2, 2], "pads": [1, 1, 1, 1]})
    down = cost("Conv", [(1, 8, 16, 16), (16, 8, 4, 4)], [(1, 16, 8, 8)],
                {"strides": [2, 2], "pads": [1, 1, 1, 1]})
    assert up.macs == down.macs == 1*16*8*8*8*4*4  # N*C16*8*8*C8*Kh*Kw


# DeformConv 2-D: per sampling location (N*offset_group*Kh*Kw*Ho*Wo) 4 coordinate FLOPs per axis
# (add offset, floor, frac, 1-frac) * 2 axes + 4 corner weights * 1 mul; per sampled value
# (N*Cin*Kh*Kw*Ho*Wo) 4 corner muls + 3 adds (+1 mask mul).
DEFORM = [
    ("v1", [(1, 4, 8, 8), (6, 4, 3, 3), (1, 1*2*3*3, 6, 6)], [(1, 6, 6, 6)], {},
     1*6*6*6*4*3*3,  # N*Cout*Ho*Wo*Cin*Kh*Kw
     2*(1*6*6*6*4*3*3) + 1*1*3*3*6*6*(4*2 + 4*1) + 1*4*3*3*6*6*(4 + 3)),
    ("v2_mask_bias_groups", [(1, 4, 8, 8), (6, 2, 3, 3), (1, 2*2*3*3, 6, 6), (6,), (1, 2*3*3, 6, 6)],
     [(1, 6, 6, 6)], {"group": 2, "offset_group": 2},
     1*6*6*6*2*3*3,  # N*Cout*Ho*Wo*(Cin/g)*Kh*Kw
     2*(1*6*6*6*2*3*3) + 1*2*3*3*6*6*(4*2 + 4*1) + 1*4*3*3*6*6*(4 + 3 + 1) + 1*6*6*6),  # + bias
    ("v1_stride_no_output_shape", [(1, 2, 9, 9), (3, 2, 3, 3), (1, 2*3*3, 4, 4)], [None],
     {"strides": [2, 2]},
     1*3*4*4*2*3*3,  # Ho = (9-3)//2+1 = 4
     2*(1*3*4*4*2*3*3) + 1*1*3*3*4*4*(4*2 + 4*1) + 1*2*3*3*4*4*(4 + 3)),
]


@pytest.mark.parametrize("ins,outs,attrs,macs,flops", [c[1:] for c in DEFORM], ids=[c[0] for c in DEFORM])
def test_deform_conv(ins, outs, attrs, macs, flops):
    c = cost("DeformConv", ins, outs, attrs)
    assert (c.macs, c.flops) == (macs, flops)


CAUSAL = [
    ("bias_state_silu", [(2, 8, 10), (8, 1, 4), (8,), (2, 8, 3)], [(2, 8, 10), (2, 8, 3)],
     {"activation": "silu"},
     2*8*10*4,  # B*C*L*k
     2*(2*8*10*4) + 2*8*10 + 5*2*8*10),  # + bias + silu (neg, exp, add, div, mul) per output
    ("plain", [(1, 16, 1), (16, 1, 4)], [(1, 16, 1), (1, 16, 3)], {},
     1*16*1*4,  # B*C*L*k: one decode step still sees k taps (from the state)
     2*(1*16*1*4)),
    ("swish_no_bias", [(1, 4, 6), (4, 1, 3)], [(1, 4, 6), (1, 4, 2)], {"activation": "swish"},
     1*4*6*3, 2*(1*4*6*3) + 5*1*4*6),
]


@pytest.mark.parametrize("ins,outs,attrs,macs,flops", [c[1:] for c in CAUSAL], ids=[c[0] for c in CAUSAL])
def test_causal_conv_with_state(ins, outs, attrs, macs, flops):
    c = cost("CausalConvWithState", ins, outs, attrs)
    assert (c.macs, c.flops) == (macs, flops)


# (id, input shape, image_shape, block_shape, attrs, adds)
COL2IM = [
    ("no_overlap", (1, 2*2*2, 4), [4, 4], [2, 2], {"strides": [2, 2]},
     0),  # stride == block: every pixel gets one patch value, nothing summed
    ("overlap", (1, 3*2*2, 9), [4, 4], [2, 2], {},
     1*3*((1+2+2+1)**2 - 4*4)),  # N*C*(contributions - pixels); per axis pixels get 1,2,2,1
    ("padded", (2, 1*3*3, 9), [3, 3], [3, 3], {"pads": [1, 1, 1, 1]},
     2*1*((2+3+2)**2 - 3*3)),  # per axis pixels get 2,3,2 in-image values; padding dropped
    ("dilated", (1, 1*2*1, 3*3), [5, 3], [2, 1], {"dilations": [2, 1]},
     1*1*((1+1+2+1+1)*3 - 5*3)),  # axis 0 pixels get 1,1,2,1,1; axis 1 one each
]


@pytest.mark.parametrize("x,image,block,attrs,adds", [c[1:] for c in COL2IM], ids=[c[0] for c in COL2IM])
def test_col2im(x, image, block, attrs, adds):
    c = cost("Col2Im", [x, (len(image),), (len(block),)], [None], attrs, values={1: image, 2: block})
    assert (c.macs, c.flops) == (0, adds)


def test_col2im_without_block_shape_is_unknown():
    with pytest.raises(UnknownShape):
        cost("Col2Im", [(1, 8, 4), (2,), (2,)], [(1, 2, 4, 4)], {})


@pytest.mark.parametrize("op,roles", [
    ("Conv", {0: DATA, 1: WEIGHT, 2: WEIGHT}),
    ("ConvTranspose", {0: DATA, 1: WEIGHT, 2: WEIGHT}),
    ("DeformConv", {0: DATA, 1: WEIGHT, 2: DATA, 3: WEIGHT, 4: DATA}),
    ("CausalConvWithState", {0: DATA, 1: WEIGHT, 2: WEIGHT, 3: CONTROL}),
    ("Col2Im", {0: DATA, 1: CONTROL, 2: CONTROL}),
])
def test_roles(op, roles):
    r = registry.lookup("", op)
    assert {i: r.role(i) for i in roles} == roles


def test_pipeline_conv_with_bias():
    model = node_model("Conv",
                       [("x", FLOAT, [1, 3, 32, 32]), ("W", FLOAT, [16, 3, 3, 3]), ("B", FLOAT, [16])],
                       [("y", FLOAT, None)], {"pads": [1, 1, 1, 1]},
                       initializers=[weight("W", [16, 3, 3, 3]), weight("B", [16])])
    report = onnxscore.analyze(model)
    layer = report.layers[0]
    assert layer.status == "ok"
    assert layer.macs == 1*16*32*32*3*3*3  # N*Cout*Ho*Wo*Cin*Kh*Kw
    assert layer.flops == 2*(1*16*32*32*3*3*3) + 1*16*32*32  # + N*Cout*Ho*Wo bias
    assert report.totals.params == 16*3*3*3 + 16  # Cout*Cin*Kh*Kw + Cout
    assert report.totals.buffers == 0


def test_pipeline_conv_transpose():
    model = node_model("ConvTranspose", [("x", FLOAT, [1, 8, 4, 4]), ("W", FLOAT, [8, 4, 2, 2])],
                       [("y", FLOAT, None)], {"strides": [2, 2]}, initializers=[weight("W", [8, 4, 2, 2])])
    report = onnxscore.analyze(model)
    assert report.layers[0].macs == 1*8*4*4*4*2*2  # N*Cin*Hi*Wi*Cout*Kh*Kw
    assert report.totals.params == 8*4*2*2  # Cin*Cout*Kh*Kw
