"""onnxruntime contrib ops (com.microsoft): tables derived from the operator schemas.

Per-element constants used below (named in the default-domain modules, reused by contrib.py):
score = scale 1 + softmax 5 (+ 1 per additive mask or bias tensor, + 3 soft cap); RoPE 3 per
rotated element; GELU erf 5, tanh 9; sigmoid 4; swish 6 (x * sigmoid(alpha * x)); SiLU 5;
SwiGLU 7; layer norm 5 per element + 1 scale + 1 bias, 3 per row; RMS norm 4 per element, 3 per
row; zero-point shift 1; dequantize 1; quantize 4 (div, round, 2 saturating compares);
requantize 5 (mul, round, + zero point, 2 saturating compares); dynamic quantisation
2 (range) + 4 + 1 per element and 7 per tensor. New here: attention sink 3 per softmax row,
complex multiply 6, packed-weight dequantisation 2 per weight ((q - zero point) * scale).
"""
from __future__ import annotations

import json
import os

import pytest
from onnx import TensorProto, helper

import onnxscore
from onnxscore.ops import registry
from onnxscore.ops.registry import CONTROL, DATA, QUANT, WEIGHT, UnknownShape
from tests.opmodels import cost, ctx, node_model, weight

MS = "com.microsoft"
FLOAT, UINT8, INT8, INT32, INT64 = (TensorProto.FLOAT, TensorProto.UINT8, TensorProto.INT8,
                                    TensorProto.INT32, TensorProto.INT64)
S = ()  # a scalar


def ms(op, ins, outs=None, attrs=None, **kw):
    """Cost of one com.microsoft node through its rule."""
    return cost(op, ins, outs if outs is not None else [None], attrs, domain=MS, **kw)


def run(op, ins, outs=None, attrs=None, **kw):
    """(Cost, Ctx) of one com.microsoft node, to read the logical parameters the rule set."""
    c = ctx(op, ins, outs if outs is not None else [None], attrs, domain=MS, **kw)
    return registry.lookup(MS, op).fn(c), c


def assert_cost(op, ins, outs, attrs, macs, flops, values=None):
    c = ms(op, ins, outs, attrs, values=values)
    assert (c.macs, c.flops) == (macs, flops)


def table_params(table):
    """Parametrize over a table of (id, ins, outs, attrs, macs, flops[, constant values])."""
    rows = [(t[1], t[2], t[3], t[4], t[5], t[6] if len(t) > 6 else None) for t in table]
    return pytest.mark.parametrize("ins,outs,attrs,macs,flops,values", rows, ids=[t[0] for t in table])


# ---------------------------------------------------------------------------------------------
# Attention with the packed QKV projection.

ATTENTION = [
    # BERT layer: B=2, S=8, D=16, 4 heads of 4; weights [16, 48], bias [48].
    ("bert", [(2, 8, 16), (16, 48), (48,)], [None], {"num_heads": 4},
     2*8*16*48 + 2*4*8*8*(4+4),  # B*S*D*3h + B*N*S*kv*(Hqk+Hv)
     2*(2*8*16*48 + 2*4*8*8*(4+4)) + 2*8*48 + (1+5)*(2*4*8*8)),  # + bias + scale/softmax
    ("mask_unidirectional_bias", [(2, 8, 16), (16, 48), (48,), (2, 8), None, (2, 4, 8, 8)], [None],
     {"num_heads": 4, "unidirectional": 1},
     2*8*16*48 + 2*4*8*8*8,
     2*(2*8*16*48 + 2*4*8*8*8) + 2*8*48 + (1+5+1+1)*(2*4*8*8)),  # mask + attention_bias
    # past (2, B, N, P=6, H): kv = 6 + 8.
    ("past", [(2, 8, 16), (16, 48), (48,), (2,), (2, 2, 4, 6, 4)], [None], {"num_heads": 4},
     2*8*16*48 + 2*4*8*14*8,
     2*(2*8*16*48 + 2*4*8*14*8) + 2*8*48 + (1+5+1)*(2*4*8*14)),
    # qkv_hidden_sizes [16, 16, 32]: V heads of 8; no bias.
    ("qkv_hidden_sizes", [(1, 5, 16), (16, 64)], [None], {"num_heads": 4, "qkv_hidden_sizes": [16, 16, 32]},
     1*5*16*64 + 1*4*5*5*(4+8),
     2*(1*5*16*64 + 1*4*5*5*(4+8)) + 6*(1*4*5*5)),
    ("rotary", [(1, 5, 16), (16, 48)], [None], {"num_heads": 4, "do_rotary": 1},
     1*5*16*48 + 1*4*5*5*8,
     2*(1*5*16*48 + 1*4*5*5*8) + 6*(1*4*5*5) + 3*1*5*2*4*4),  # RoPE on Q and K, B*S*2*N*H
    # shared max-length buffer: P is the constant past_sequence_length 5.
    ("shared_buffer", [(1, 1, 16), (16, 48), None, None, (2, 1, 4, 32, 4), None, S], [None],
     {"num_heads": 4, "past_present_share_buffer": 1},
     1*1*16*48 + 1*4*1*6*8,
     2*(1*1*16*48 + 1*4*1*6*8) + 6*(1*4*1*6), {6: 5}),
]


@table_params(ATTENTION)
def test_attention(ins, outs, attrs, macs, flops, values):
    assert_cost("Attention", ins, outs, attrs, macs, flops, values)


def test_attention_shared_buffer_without_length_is_unknown():
    with pytest.raises(UnknownShape):
        ms("Attention", [(1, 1, 16), (16, 48), None, None, (2, 1, 4, 32, 4), None, S], [None],
           {"num_heads": 4, "past_present_share_buffer": 1})


def test_attention_roles():
    r = registry.lookup(MS, "Attention")
    assert [r.role(i) for i in range(7)] == [DATA, WEIGHT, WEIGHT, CONTROL, DATA, CONTROL, CONTROL]


def test_q_attention():
    # int8 input (1, 4, 8), weight (8, 24), 2 heads of 4, both zero points given.
    c = ms("QAttention", [(1, 4, 8), (8, 24), (24,), S, S, None, S, S], [None], {"num_heads": 2})
    macs = 1*4*8*24 + 1*2*4*4*(4+4)
    assert (c.macs, c.flops) == (macs, 2*macs + 1*4*24*(1 + 1)  # dequantize + bias per projection
                                 + 6*(1*2*4*4) + 1*4*8 + 8*24)   # scores + input and weight shifts


def test_decoder_masked_self_attention():
    # one step: past (2, B=2, N=2, P=9, H=4), kv = 10; shared buffer off.
    c = ms("DecoderMaskedSelfAttention", [(2, 1, 8), (8, 24), (24,), None, (2, 2, 2, 9, 4), None, S],
           [None], {"num_heads": 2})
    macs = 2*1*8*24 + 2*2*1*10*8
    assert (c.macs, c.flops) == (macs, 2*macs + 2*24 + 6*(2*2*1*10))


# ---------------------------------------------------------------------------------------------
# Attention on projected Q, K, V.

MHA = [
    ("self_3d_bias", [(2, 5, 16), (2, 5, 16), (2, 5, 16), (48,)], [None], {"num_heads": 4},
     2*4*5*5*8,  # B*N*S*L*(Hqk+Hv)
     2*(2*4*5*5*8) + 6*(2*4*5*5) + 2*5*16 + 2*5*(16+16)),  # bias on Q, K, V
    ("cross_cached_kv_padding_mask", [(1, 3, 8), (1, 2, 7, 4), (1, 2, 7, 4), (24,), (1, 7)], [None],
     {"num_heads": 2},
     1*2*3*7*8,
     2*(1*2*3*7*8) + 7*(1*2*3*7) + 1*3*8),  # mask; bias on Q only
    ("packed_qkv_past_bias", [(1, 6, 2, 3, 4), None, None, None, None, (1, 2, 6, 16), (1, 2, 10, 4),
                              (1, 2, 10, 4)], [None], {"num_heads": 2},
     1*2*6*16*8,  # kv = 10 + 6
     2*(1*2*6*16*8) + 7*(1*2*6*16)),
    ("packed_kv", [(1, 2, 8), (1, 3, 2, 2, 4)], [None], {"num_heads": 2},
     1*2*2*3*8, 2*(1*2*2*3*8) + 6*(1*2*2*3)),
    ("shared_buffer", [(1, 1, 8), (1, 1, 8), (1, 1, 8), None, None, None, (1, 2, 64, 4), (1, 2, 64, 4), S],
     [None], {"num_heads": 2},
     1*2*1*(20+1)*8, 2*(1*2*1*21*8) + 6*(1*2*1*21), {8: 20}),
]


@table_params(MHA)
def test_multi_head_attention(ins, outs, attrs, macs, flops, values):
    assert_cost("MultiHeadAttention", ins, outs, attrs, macs, flops, values)


DMMHA = [
    ("self_past_bias", [(2, 1, 8), (2, 1, 8), (2, 1, 8), None, None, (2, 2, 9, 4), (2, 2, 9, 4),
                        None, None, None, (24,)], [None], {"num_heads": 2},
     2*2*1*10*8,  # kv = P + 1
     2*(2*2*1*10*8) + 6*(2*2*1*10) + 2*1*24),  # bias on q, k, v of the one new token
    ("shared_buffer", [(2, 1, 8), (2, 1, 8), (2, 1, 8), None, None, (2, 2, 64, 4), (2, 2, 64, 4), S],
     [None], {"num_heads": 2, "past_present_share_buffer": 1},
     2*2*1*21*8, 2*(2*2*1*21*8) + 6*(2*2*1*21), {7: 20}),
    ("cross_mask", [(2, 1, 8), (2, 2, 30, 4), (2, 2, 30, 4), (2, 30)], [None], {"num_heads": 2},
     2*2*1*30*8, 2*(2*2*1*30*8) + 7*(2*2*1*30)),
    ("packed_qkv", [(1, 1, 24), None, None, None, None, (1, 2, 5, 4), (1, 2, 5, 4)], [None],
     {"num_heads": 2},
     1*2*1*6*8, 2*(1*2*1*6*8) + 6*(1*2*1*6)),
]


@table_params(DMMHA)
def test_decoder_masked_multi_head_attention(ins, outs, attrs, macs, flops, values):
    assert_cost("DecoderMaskedMultiHeadAttention", ins, outs, attrs, macs, flops, values)


def test_dmmha_shared_buffer_without_length_is_unknown():
    with pytest.raises(UnknownShape):
        ms("DecoderMaskedMultiHeadAttention", [(2, 1, 8), (2, 1, 8), (2, 1, 8), None, None,
                                               (2, 2, 64, 4), (2, 2, 64, 4), S],
           [None], {"num_heads": 2, "past_present_share_buffer": 1})


GQA_ATTRS = {"num_heads": 8, "kv_num_heads": 2}
GQA = [
    # prompt, no cache: kv = S = 10; 8 query heads of 4, 2 kv heads; causal mask.
    ("prompt", [(1, 10, 32), (1, 10, 8), (1, 10, 8), None, None, (1,), S], [None], GQA_ATTRS,
     1*8*10*10*(4+4), 2*(1*8*10*10*8) + (1+5+1)*(1*8*10*10)),
    # decode: past 31 + 1.
    ("decode_past", [(1, 1, 32), (1, 1, 8), (1, 1, 8), (1, 2, 31, 4), (1, 2, 31, 4), (1,), S], [None],
     GQA_ATTRS, 1*8*1*32*8, 2*(1*8*1*32*8) + 7*(1*8*1*32)),
    # present_key length read from the output when the past is symbolic.
    ("present_shape", [(1, 1, 32), (1, 1, 8), (1, 1, 8), (1, 2, "past", 4), (1, 2, "past", 4), (1,), S],
     [None, (1, 2, 40, 4), (1, 2, 40, 4)], GQA_ATTRS,
     1*8*1*40*8, 2*(1*8*1*40*8) + 7*(1*8*1*40)),
    # shared buffer (present as long as past) with a constant total_sequence_length 33.
    ("shared_total_constant", [(1, 1, 32), (1, 1, 8), (1, 1, 8), (1, 2, 64, 4), (1, 2, 64, 4), (1,), S],
     [None, (1, 2, 64, 4), (1, 2, 64, 4)], GQA_ATTRS,
     1*8*1*33*8, 2*(1*8*1*33*8) + 7*(1*8*1*33), {6: 33}),
    # packed QKV (4 + 2*2 heads of 6), past 6 + S 4, RoPE (cos [64, 3]: rotary 6), soft cap,
    # local window, head sink.
    ("packed_rotary_softcap_sink", [(1, 4, 48), None, None, (1, 2, 6, 6), (1, 2, 6, 6), (1,), S,
                                    (64, 3), (64, 3), None, None, (4,)], [None],
     {"num_heads": 4, "kv_num_heads": 2, "do_rotary": 1, "softcap": 30.0, "local_window_size": 8},
     1*4*4*10*12,
     2*(1*4*4*10*12) + (1+5+1+3)*(1*4*4*10) + 3*(1*4*4)  # + soft cap, sink per row
     + 3*1*4*(4+2)*6),  # RoPE on Q and new K
    # per-head RMS norm of Q and K, int8 cache with scales.
    ("qk_norm_quantized_cache", [(1, 1, 16), (1, 1, 8), (1, 1, 8), (1, 1, 7, 8), (1, 1, 7, 8), (1,), S,
                                 None, None, None, None, None, (1,), (1,), (8,), (8,)], [None],
     {"num_heads": 2, "kv_num_heads": 1},
     1*2*1*8*16,
     2*(1*2*1*8*16) + 7*(1*2*1*8) + 4*(16+8) + 3*(2+1)  # norms: 4 per element, 3 per row
     + 2*8*4 + 2*1*1*8*8*1),  # quantise new K, V; dequantise 8 cached positions of K and V
    # window-sized cache of capacity 16, total 100: at most 16 resident.
    ("sliding_window_cache", [(1, 1, 32), (1, 1, 8), (1, 1, 8), (1, 2, 16, 4), (1, 2, 16, 4), (1,), S],
     [None], {**GQA_ATTRS, "sliding_window_cache": 1, "local_window_size": 16},
     1*8*1*16*8, 2*(1*8*1*16*8) + 7*(1*8*1*16), {6: 100}),
]


@table_params(GQA)
def test_group_query_attention(ins, outs, attrs, macs, flops, values):
    assert_cost("GroupQueryAttention", ins, outs, attrs, macs, flops, values)


def test_gqa_shared_buffer_is_unknown():
    with pytest.raises(UnknownShape, match="total_sequence_length"):
        ms("GroupQueryAttention", [(1, 1, 32), (1, 1, 8), (1, 1, 8), (1, 2, 64, 4), (1, 2, 64, 4), (1,), S],
           [None, (1, 2, 64, 4), (1, 2, 64, 4)], GQA_ATTRS)


def test_gqa_roles():
    r = registry.lookup(MS, "GroupQueryAttention")
    assert [r.role(i) for i in (5, 6, 7, 11, 12, 14)] == [CONTROL, CONTROL, CONTROL, WEIGHT, QUANT, WEIGHT]


SPARSE_INS = [(1, 4, 8), (1, 4, 4), (1, 4, 4), (1, 1, 8, 4), (1, 1, 8, 4), (1, 3), (1, 3), S, (1,)]
SPARSE_VALUES = {5: [[0, 1, 3]], 6: [[0, 0, 1]]}  # block row 0: block 0; row 1: blocks 0, 1


def test_sparse_attention_prompt():
    # blocks of 2, T = 4: queries 0, 1 read block 0 (2 keys), queries 2, 3 read blocks 0, 1
    # (4 keys): 12 keys per head, 2 heads of 4 sharing the one layout.
    c = ms("SparseAttention", SPARSE_INS, [None], {"num_heads": 2, "kv_num_heads": 1, "sparse_block_size": 2},
           values={**SPARSE_VALUES, 7: 4})
    assert (c.macs, c.flops) == (2*12*2*4, 2*(2*12*2*4) + (1+5+1)*(2*12))


def test_sparse_attention_decode_and_partial_block():
    # one new token, T = 4: position 3, block row 1, blocks 0 and 1: 4 keys per head.
    ins = [(1, 1, 8), (1, 1, 4), (1, 1, 4)] + SPARSE_INS[3:]
    c = ms("SparseAttention", ins, [None], {"num_heads": 2, "kv_num_heads": 1, "sparse_block_size": 2},
           values={**SPARSE_VALUES, 7: 4})
    assert (c.macs, c.flops) == (2*4*8, 2*(2*4*8) + 7*(2*4))
    # T = 3: block 1 holds only key 2, so position 2 reads 2 + 1 keys.
    c = ms("SparseAttention", ins, [None], {"num_heads": 2, "kv_num_heads": 1, "sparse_block_size": 2},
           values={**SPARSE_VALUES, 7: 3})
    assert c.macs == 2*3*8


def test_sparse_attention_without_block_mask_is_unknown():
    with pytest.raises(UnknownShape):
        ms("SparseAttention", SPARSE_INS, [None], {"num_heads": 2, "kv_num_heads": 1, "sparse_block_size": 2})


def test_packed_attention():
    # 7 tokens in sequences of 1, 2, 4: sum len^2 = 21; 2 heads of 4.
    ins = [(7, 8), (8, 24), (24,), (3, 4), (4,)]
    c = ms("PackedAttention", ins, [None], {"num_heads": 2}, values={4: [0, 1, 3, 7]})
    macs = 7*8*24 + 2*21*(4+4)
    assert (c.macs, c.flops) == (macs, 2*macs + 7*24 + 6*(2*21))
    # lengths unknown: worst case for 7 tokens in sequences of at most 4: 4^2 + 3^2 = 25.
    c = ms("PackedAttention", ins, [None], {"num_heads": 2})
    assert c.macs == 7*8*24 + 2*25*8


def test_packed_multi_head_attention():
    c = ms("PackedMultiHeadAttention", [(7, 8), (7, 8), (7, 8), (24,), (3, 4), (4,)], [None],
           {"num_heads": 2}, values={5: [0, 1, 3, 7]})
    assert (c.macs, c.flops) == (2*21*8, 2*(2*21*8) + 6*(2*21) + 7*24)  # + bias on Q, K, V
    c = ms("PackedMultiHeadAttention", [(7, 2, 3, 4), None, None, None, (3, 4), (4,), (1, 2, 4, 4)], [None],
           {"num_heads": 2}, values={5: [0, 1, 3, 7]})
    assert (c.macs, c.flops) == (2*21*8, 2*(2*21*8) + 7*(2*21))  # attention_bias


def test_paged_attention_is_unknown():
    with pytest.raises(UnknownShape, match="past_seqlens"):
        ms("PagedAttention", [(7, 32), (7, 8), (7, 8), (10, 16, 2, 4), (10, 16, 2, 4), (3,), (2,), (2, 4)],
           [None], {"num_heads": 8, "kv_num_heads": 2})


# ---------------------------------------------------------------------------------------------
# Rotary embeddings.

ROTARY = [
    ("4d", [(2, 4, 10, 16), (1,), (64, 8), (64, 8)], {}, 3*2*4*10*16),
    ("3d_heads_partial", [(2, 10, 64), (2, 10), (64, 4), (64, 4)],
     {"num_heads": 4, "rotary_embedding_dim": 8}, 3*2*10*4*8),
    ("3d_heads_from_cache", [(1, 5, 24), (1, 5), (32, 3), (32, 3)], {}, 3*1*5*4*6),  # head 2*3
]


@pytest.mark.parametrize("op", ["RotaryEmbedding", "MRotaryEmbedding"])
@pytest.mark.parametrize("ins,attrs,flops", [r[1:] for r in ROTARY], ids=[r[0] for r in ROTARY])
def test_rotary_embedding(op, ins, attrs, flops):
    c = ms(op, ins, [None], attrs)
    assert (c.macs, c.flops) == (0, flops)


def test_gemma_rotary_embedding():
    c = ms("GemmaRotaryEmbedding", [(1, 5, 8), (1, 2, 5, 8), (1, 2, 5, 8), (1, 1, 5, 8), (1, 1, 5, 8)])
    assert (c.macs, c.flops) == (0, 2*40 + 3*(80 + 40))  # sin and cos of emb; q*cos + q_rot*sin


def test_rms_norm_rotary():
    c = ms("RMSNormRotary", [(1, 2, 4, 16), (16,), S, (64, 4), (64, 4)], [None], {"rotary_embedding_dim": 8})
    rows = 1*2*4
    assert c.flops == 4*rows*16 + 3*rows + 3*rows*8


# ---------------------------------------------------------------------------------------------
# Normalisations.

NORM = [
    # n = 48 elements in 6 rows of 8.
    ("SkipLayerNormalization", [(2, 3, 8), (2, 3, 8), (8,), (8,), (8,)], {},
     48 + 48 + 48*(5+1+1) + 6*3),  # skip, bias, LN with gamma and beta
    ("SkipLayerNormalization", [(2, 3, 8), (2, 3, 8), (8,)], {}, 48 + 48*(5+1) + 6*3),
    ("SkipSimplifiedLayerNormalization", [(2, 3, 8), (2, 3, 8), (8,), (8,)], {}, 48 + 48 + 4*48 + 3*6),
    ("EmbedLayerNormalization", [(2, 5), (2, 5), (100, 8), (16, 8), (2, 8), (8,), (8,), (2, 5)], {},
     2*80 + 80*7 + 10*3 + 10),  # 2 adds of 3 tables, LN, mask index
    ("EmbedLayerNormalization", [(2, 5), None, (100, 8), (16, 8), None, (8,), (8,)], {},
     80 + 80*7 + 10*3),
    ("QEmbedLayerNormalization", [(2, 5), None, (100, 8), (16, 8), None, (8,), (8,), None, S, S, None,
                                  S, S, S, S, None, S, S], {},
     80 + 80*7 + 10*3 + 2*(2*80 + 2*8)),  # + (q - zp) * scale of the gathered rows, gamma, beta
    ("GroupNorm", [(2, 4, 4, 8), (8,), (8,)], {"groups": 2, "activation": 1},
     256*7 + 2*2*3 + 5*256),  # + SiLU
    ("GroupNorm", [(2, 8, 4, 4), (8,), (8,)], {"groups": 4, "activation": 0, "channels_last": 0},
     256*7 + 2*4*3),
    ("SkipGroupNorm", [(2, 4, 4, 8), (8,), (8,), (2, 1, 1, 8), (8,)], {"groups": 2, "activation": 0},
     256*7 + 2*2*3 + 256 + 256),
    ("GatedRMSNorm", [(2, 3, 16), (8,), (2, 3, 16)], {}, 4*96 + 3*12 + 96*(5+1)),  # SiLU gate
    ("GatedRMSNorm", [(2, 3, 16), (8,), (2, 3, 16)], {"activation": "sigmoid"}, 4*96 + 3*12 + 96*(4+1)),
    ("BranchwiseRMSNorm", [(2, 3, 4)], {}, (4-1)*24 + 3*6),  # no scale
    ("BranchwiseRMSNorm", [(2, 12), (12,)], {"num_branches": 3}, 4*24 + 3*6),
]


@pytest.mark.parametrize("op,ins,attrs,flops", NORM, ids=[f"{n[0]}-{i}" for i, n in enumerate(NORM)])
def test_norm(op, ins, attrs, flops):
    c = ms(op, ins, [None], attrs)
    assert (c.macs, c.flops) == (0, flops)


def test_simplified_layer_normalization_is_default_domain():
    r = registry.lookup("", "SimplifiedLayerNormalization")
    assert r is not None and r.role(1) == WEIGHT
    c = cost("SimplifiedLayerNormalization", [(2, 3, 8), (8,)], [None])
    assert (c.macs, c.flops) == (0, 4*48 + 3*6)


# ---------------------------------------------------------------------------------------------
# Activations and elementwise fusions (X of 6 elements unless stated).

ELEMENTWISE = [
    ("FastGelu", [(2, 3), (3,)], {}, 6*(9+1)),
    ("FastGelu", [(2, 3)], {}, 6*9),
    ("BiasGelu", [(2, 3), (3,)], {}, 6*(1+5)),
    ("Gelu", [(2, 3)], {}, 6*5),
    ("QuickGelu", [(2, 3)], {"alpha": 1.702}, 6*6),
    ("ScaledSiLU", [(2, 3)], {}, 6*6),
    ("BiasAdd", [(1, 2, 3), (3,), (1, 2, 3)], {}, 6*2),
    ("BiasSoftmax", [(2, 4, 5, 5), (2, 1, 5, 5)], {"axis": 3, "is_inner_broadcast": 0}, 200*(1+5)),
    ("BiasSplitGelu", [(1, 4, 8), (8,)], {}, 32 + 16*(5+1)),
    ("BiasDropout", [(2, 3), (3,), (2, 3)], {}, 6*2),
    ("BitmaskBiasDropout", [(2, 3), (3,)], {}, 6),
    ("SwiGLU", [(2, 8), (2, 8)], {}, 16*7),
    ("SwiGLU", [(2, 16)], {"limit": 7.0, "activation_beta": 1.0}, 8*2*(7+1+3)),  # halves, beta, clamps
    ("GatedAdd", [(2, 3, 4), (2, 3, 4), (2, 3, 1)], {}, 2*24),
    ("LinearAttentionGate", [(1, 3, 4), (4,), (4,), (1, 3, 4)], {}, 12*(1+3+1) + 12*4),
    ("ComplexMul", [(3, 4, 2), (4, 2)], {}, 12*6),
    ("ComplexMulConj", [(3, 4, 2), (3, 4, 2)], {}, 12*6),
    ("MulInteger", [(2, 3), S, (3,), S], {}, 6 + 6 + 3),
    ("IsAllFinite", [(2, 3), (4,)], {}, 2*(6+4)),
    ("ReduceSumInteger", [(2, 3, 4)], {"axes": [1], "keepdims": 1}, 24 - 8),
    ("DynamicTimeWarping", [(1, 4, 5)], {}, 4*5*3),
    ("NGramRepeatBlock", [(2, 10), (2, 50)], {"ngram_size": 3}, 2*8*2),
]


@pytest.mark.parametrize("op,ins,attrs,flops", ELEMENTWISE,
                         ids=[f"{e[0]}-{i}" for i, e in enumerate(ELEMENTWISE)])
def test_elementwise(op, ins, attrs, flops):
    c = ms(op, ins, [None], attrs)
    assert (c.macs, c.flops) == (0, flops)


def test_gated_add_projected():
    c = ms("GatedAdd", [(2, 3, 4), (2, 3, 4), (2, 3, 5), (5, 1)])
    assert (c.macs, c.flops) == (6*5, 2*(6*5) + 2*24 + 6*4)  # gate . w per row, sigmoid per row


def test_fused_activation_names():
    with pytest.raises(ValueError):
        ms("FusedConv", [(1, 3, 8, 8), (4, 3, 3, 3)], [(1, 4, 6, 6)], {"activation": "NoSuchAct"})


# ---------------------------------------------------------------------------------------------
# Convolutions and pooling.

CONV = [
    # outputs 1*4*6*6 = 144, each 3*3*3 MACs.
    ("FusedConv", [(1, 3, 8, 8), (4, 3, 3, 3), (4,)], [(1, 4, 6, 6)], {"activation": "Relu"},
     144*27, 2*144*27 + 144 + 144*1),
    ("FusedConv", [(1, 3, 8, 8), (4, 3, 3, 3), (4,), (1, 4, 6, 6)], [None],
     {"activation": "LeakyRelu"}, 144*27, 2*144*27 + 144 + 144 + 144*2),  # bias, Z, leaky relu
    ("FusedConv", [(1, 3, 8, 8), (4, 3, 3, 3)], [(1, 4, 6, 6)], {"activation": "Clip"},
     144*27, 2*144*27 + 144*2),
    ("NhwcConv", [(1, 8, 8, 3), (4, 3, 3, 3), (4,)], [None], {}, 144*27, 2*144*27 + 144),
    ("NhwcConv", [(1, 8, 8, 3), (4, 3, 3, 3)], [None], {"strides": [2, 2], "pads": [1, 1, 1, 1]},
     1*4*4*4*27, 2*(1*4*4*4*27)),  # (8 + 2 - 3)//2 + 1 = 4
    # weight [M, kH, kW, C] = [4, 3, 3, 2]: out 6x6, 1*4*6*6 = 144 outputs of 3*3*2 MACs each
    ("NhwcConv", [(1, 8, 8, 2), (4, 3, 3, 2)], [None], {}, 144*18, 2*144*18),
    ("NhwcFusedConv", [(1, 8, 8, 3), (4, 3, 3, 3), (4,)], [(1, 6, 6, 4)], {"activation": "Sigmoid"},
     144*27, 2*144*27 + 144 + 144*4),
    ("NhwcMaxPool", [(1, 8, 8, 3)], [(1, 4, 4, 3)], {"kernel_shape": [2, 2], "strides": [2, 2]}, 0, 48*3),
    ("MaxpoolWithMask", [(1, 3, 8, 8), (1, 3, 8, 8)], [(1, 3, 4, 4)], {"kernel_shape": [2, 2]}, 0, 48*3),
    ("QLinearConv", [(1, 8, 8, 3), S, S, (4, 3, 3, 3), S, S, S, S, (4,)], [(1, 6, 6, 4)],
     {"channels_last": 1}, 144*27, 2*144*27 + 192 + 108 + 5*144 + 144),  # shifts, requantize, bias
    ("QLinearConv", [(1, 3, 8, 8), S, S, (4, 3, 3, 3), S, S, S, S], [(1, 4, 6, 6)], {},
     144*27, 2*144*27 + 192 + 108 + 5*144),
    ("CausalConvWithState", [(2, 4, 10), (4, 1, 3), (4,)], [None], {"activation": "silu"},
     80*3, 2*80*3 + 80 + 5*80),
    ("CausalConvWithState", [(1, 2, 5, 6), (2, 1, 3, 3)], [None], {"ndim": 2}, 60*9, 2*60*9),
    ("VarlenCausalConvWithState", [(7, 4), (4, 1, 4), (3,), (4,), (2, 4, 3)], [None], {},
     28*4, 2*28*4 + 28),
    ("ConvTransposeWithDynamicPads", [(1, 2, 4, 4), (2, 3, 3, 3), (4,), (3,)], [None], {},
     1*16*54, 2*1*16*54 + 1*3*4*4, {2: [1, 1, 1, 1]}),  # out 1*(4-1) + 3 - 2 = 4
    ("CropAndResize", [(1, 3, 10, 10), (2, 4), (2,), (2,)], [None], {}, 0, 2*3*4*5*9, {3: [4, 5]}),
    ("CropAndResize", [(1, 3, 10, 10), (2, 4), (2,), (2,)], [(2, 3, 4, 5)], {"mode": "nearest"}, 0, 0),
    ("GridSample", [(1, 2, 4, 4), (1, 3, 3, 2)], [(1, 2, 3, 3)], {}, 0, 2*18 + 18*9),
]


@pytest.mark.parametrize("op,ins,outs,attrs,macs,flops,values",
                         [c + (None,) if len(c) == 6 else c for c in CONV],
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CONV)])
def test_conv(op, ins, outs, attrs, macs, flops, values):
    c = ms(op, ins, outs, attrs, values=values)
    assert (c.macs, c.flops) == (macs, flops)


# ---------------------------------------------------------------------------------------------
# Matrix products.

MATMUL = [
    ("FusedMatMul", [(2, 3, 4), (2, 5, 4)], [None], {"transB": 1}, 2*3*5*4, 2*120),
    ("FusedMatMul", [(2, 3, 4), (2, 5, 4)], [None], {"transB": 1, "alpha": 0.5}, 120, 240 + 30),
    ("FusedMatMul", [(3, 2, 4), (2, 4, 5)], [None], {"transBatchA": 1}, 2*3*5*4, 240),  # A -> (2, 3, 4)
    ("TransposeMatMul", [(2, 4, 3), (2, 4, 6)], [None], {"transA": 1}, 2*3*6*4, 2*144),
    ("FusedMatMulActivation", [(3, 4), (4, 5)], [None], {"activation": "Relu"}, 60, 120 + 15),
    ("FusedGemm", [(3, 4), (4, 5), (5,)], [None], {"activation": "Relu"}, 60, 120 + 15 + 15),
    ("GemmFastGelu", [(2, 3, 4), (4, 5), (5,)], [None], {}, 120, 240 + 30*(9+1)),
    ("GemmFloat8", [(3, 4), (5, 4), None, S, S], [None], {"transB": 1, "activation": "RELU"},
     60, 120 + 15*(1 + 1)),  # input-scale multiply, relu
    ("GemmFloat8", [(3, 4), (5, 4), (5,), S, S, S], [None], {"transB": 1, "beta": 1.0},
     60, 120 + 15*(1 + 1 + 4)),  # scales, C, quantise to fp8
    ("RouterGateUpProj", [(2, 3, 8), (8, 4 + 2*6)], [None], {"router_size": 4},
     6*8*16, 2*(6*8*16) + 6*6*7),  # rows*K*N; SwiGLU of 6 per row
    ("MatMulInteger16", [(2, 3, 4), (4, 5)], [None], {}, 120, 240),
    ("MatMulIntegerToFloat", [(3, 4), (4, 5), S, S, S, S, (5,)], [None], {},
     60, 120 + 12 + 20 + 15 + 15),  # shifts of A and B, dequantize, bias
    ("DynamicQuantizeMatMul", [(3, 4), (4, 5), (5,), (5,), (5,)], [None], {},
     60, 120 + 12*(7 + 1) + 7 + 20 + 15 + 15),  # quantise A + its shift, scalars, B shift, deq, bias
    ("QGemm", [(3, 4), S, S, (5, 4), S, S, (5,), S, S], [None], {"transB": 1},
     60, 120 + 12 + 20 + 15 + 15*5),  # shifts, C, requantize
    ("QGemm", [(3, 4), S, S, (4, 5), S, S], [None], {}, 60, 120 + 12 + 20 + 15*1),  # float output
    ("CDist", [(3, 4), (5, 4)], [None], {}, 3*5*4, 2*60 + 60),
    ("CDist", [(3, 4), (5, 4)], [None], {"metric": "euclidean"}, 60, 2*60 + 60 + 15),
]


@pytest.mark.parametrize("op,ins,outs,attrs,macs,flops", MATMUL,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(MATMUL)])
def test_matmul(op, ins, outs, attrs, macs, flops):
    c = ms(op, ins, outs, attrs)
    assert (c.macs, c.flops) == (macs, flops)


# ---------------------------------------------------------------------------------------------
# Packed quantized weights: cost and logical parameter count.

NBITS = {"K": 64, "N": 32, "bits": 4, "block_size": 32}
PACKED = [
    # (id, op, ins, attrs, macs, flops, logical params {input: count}, dtype, values)
    ("nbits_zp_bias", "MatMulNBits", [(1, 8, 64), (32, 2, 16), (64,), (32, 1), None, (32,)], NBITS,
     8*32*64, 2*(8*32*64) + 64*32*2 + 8*32, {1: 64*32}),  # (q - zp) * scale per weight, bias
    ("nbits_no_zp", "MatMulNBits", [(4, 64), (32, 2, 16), (64,)], NBITS,
     4*32*64, 2*(4*32*64) + 64*32*2, {1: 64*32}),
    ("nbits_empty", "MatMulNBits", [(4, 64), (0, 2, 16), (0,)], NBITS, 0, 0, {1: 0}),
    ("bnb4", "MatMulBnb4", [(2, 16), (64,), (4,)], {"K": 16, "N": 8, "block_size": 32, "quant_type": 1},
     2*8*16, 2*(2*8*16) + 128, {1: 16*8}),
    ("fpq4", "MatMulFpQ4", [(2, 16), (80,), (2,)], {"blk_quant_type": 1},
     2*8*16, 2*(2*8*16) + 128*2, {1: 16*8}, None, {2: [16, 8]}),
    ("fp4_weight", "MatMulBlockQuantizedFp4Weight", [(2, 32), (8, 16), (8, 2), S, None, (8,)], {},
     2*8*32, 2*(2*8*32) + 256*2 + 2*8, {1: 8*32}),  # two scales per weight, bias
    ("fp8_weight_w8a8", "MatMulBlockQuantizedFp8Weight", [(2, 32), (8, 32), (8, 1), S], {},
     2*8*32, 2*(2*8*32) + 256 + 64*(4+1), {}),
    ("qlora", "MatMulNBitsQLoRA", [(2, 64), (32, 2, 16), (32, 2), (4, 2, 32), (4, 2), (32, 1, 32), (32, 1)],
     {"K": 64, "N": 32},
     2*(2048 + 4*64 + 32*4), 2*(2*(2048 + 256 + 128)) + (2048 + 256 + 128)*2 + 2*32,
     {1: 2048, 3: 4*64, 5: 32*4}),
    ("mlp_skip_norm", "MatMulNBitsMlp",
     [(1, 2, 16), (1, 2, 16), (16,), (8, 1, 16), (8,), (8,), (8, 1, 16), (8,), (8,)], {"K": 16, "N": 8, "block_size": 16, "activation": "silu"},
     2*2*16*8, 2*(2*2*16*8) + (32 + 4*32 + 3*2) + 2*128*2 + 2*8*(1 + 1 + 5 + 1),
     {3: 128, 6: 128}),  # norm, dequant, biases + SiLU + product
    ("qkv", "MatMulNBitsQkv", [(1, 1, 16), None, (16,), (16, 1, 8), (16,), None, (8, 1, 8), (8,), None,
                               (8, 1, 8), (8,)], {"K": 16, "Nq": 16, "Nkv": 8, "block_size": 16},
     16*32, 2*(16*32) + (4*16 + 3) + 16*32*2, {3: 256, 6: 128, 9: 128}),
    ("packed", "MatMulPacked", [(2, 32), (8, 20), S],
     {"K": 32, "N": 8, "packed_type": 1, "activation_type": "silu"},
     2*8*32, 2*(2*8*32) + 256 + 2*8*(1 + 5), {1: 256}),
    ("gather_packed", "GatherPacked", [(100, 20), (2, 3)], {"K": 32, "packed_type": 1},
     0, 6*32, {0: 100*32}),
    # uint8 table of 10 rows of 16 bytes = 32 int4 values: 320 weights; 6 rows gathered.
    ("gather_block_uint8", "GatherBlockQuantized", [(10, 16), (2, 3), (10, 1)], {"bits": 4, "block_size": 32},
     0, 6*32*2, {0: 320}, UINT8),
    ("gather_block_int4", "GatherBlockQuantized", [(10, 32), (2, 3), (10, 1)], {"block_size": 32},
     0, 6*32*2, {}, TensorProto.INT4),
    ("gather_block_fp8", "GatherBlockQuantized", [(10, 32), (2, 3), (10, 1)], {"block_size": 32},
     0, 6*32*1, {}, TensorProto.FLOAT8E4M3FN),  # no zero point
]


@pytest.mark.parametrize("op,ins,attrs,macs,flops,logical,dtype,values",
                         [p[1:] + (None,) * (9 - len(p)) for p in PACKED], ids=[p[0] for p in PACKED])
def test_packed_weights(op, ins, attrs, macs, flops, logical, dtype, values):
    c, context = run(op, ins, [None], attrs, dtype=dtype or FLOAT, values=values)
    assert (c.macs, c.flops) == (macs, flops)
    assert context.logical_params == logical


def test_matmul_nbits_roles():
    r = registry.lookup(MS, "MatMulNBits")
    assert [r.role(i) for i in range(6)] == [DATA, WEIGHT, QUANT, QUANT, CONTROL, WEIGHT]


def test_dynamic_quantize_lstm():
    # X (seq 5, batch 2, input 3), W (1, 3, 16), R (1, 4, 16): hidden 4, bias.
    ins = [(5, 2, 3), (1, 3, 16), (1, 4, 16), (1, 32), None, None, None, None, (1,), (1,), (1,), (1,)]
    c = ms("DynamicQuantizeLSTM", ins)
    macs = 1*5*2*4*4*(3+4)  # dirs*seq*batch*4*hidden*(input+hidden)
    step = 3*4 + 1 + 1 + 3 + 1 + 4*2  # sigmoid f, tanh g, tanh h, cell, hidden, bias per gate
    quant = ((5*2*3 + 5*2*4)*(7 + 1)  # dynamic quantisation + shift of X and of every H_{t-1}
             + (1 + 5)*7  # their scale/zero-point scalars
             + 48 + 64  # W and R zero-point shifts
             + 2*1*5*2*16)  # dequantise both products of every gate
    assert (c.macs, c.flops) == (macs, 2*macs + 5*2*4*step + quant)


# ---------------------------------------------------------------------------------------------
# QLinear elementwise ops: DequantizeLinear (1 + 1 with the zero point) of the inputs, the float
# op, QuantizeLinear (4 + 1 with the zero point) of the output.

QLINEAR = [
    ("QLinearAdd", [(2, 3), S, S, (3,), S, S, S, S], [None], {}, 12 + 6 + 6 + 6*5),
    ("QLinearAdd", [(2, 3), S, None, (3,), S, None, S], [None], {}, 6 + 3 + 6 + 6*4),
    ("QLinearMul", [(2, 3), S, S, (2, 3), S, S, S, S], [None], {}, 12 + 12 + 6 + 30),
    ("QLinearSigmoid", [(2, 3), S, S, S, S], [None], {}, 12 + 6*4 + 30),
    ("QLinearLeakyRelu", [(2, 3), S, S, S, S], [None], {"alpha": 0.1}, 12 + 6*2 + 30),
    ("QLinearSoftmax", [(2, 3), S, S, S, S], [None], {"opset": 13}, 12 + 6*5 + 30),
    ("QLinearAveragePool", [(1, 2, 4, 4), S, S, S, S], [(1, 2, 2, 2)],
     {"kernel_shape": [2, 2], "strides": [2, 2]},
     32*2 + 8*4 + 8*5),
    ("QLinearGlobalAveragePool", [(1, 2, 4, 4), S, S, S, S], [None], {}, 64 + 32 + 2*5),
    ("QLinearGlobalAveragePool", [(1, 4, 4, 2), S, S, S, S], [None], {"channels_last": 1}, 64 + 32 + 2*5),
    ("QLinearReduceMean", [(2, 3, 4), S, S, S, S], [None], {"axes": [2], "keepdims": 1}, 48 + 24 + 6*5),
    ("QLinearWhere", [(2, 3), (2, 3), S, S, (3,), S, S, S, S], [None], {}, 12 + 6 + 6 + 30),
    ("QuantizeLinear", [(2, 3), S, S], [None], {}, 6*(4 + 1)),
    ("DequantizeLinear", [(2, 3), S, S], [None], {}, 6*(1 + 1)),
    ("QuantizeWithOrder", [(2, 3), S], [None], {"order_input": 1, "order_output": 1}, 6*4),
    ("DequantizeWithOrder", [(2, 3), S], [None], {"order_input": 1, "order_output": 1, "to": 1}, 6),
    ("QOrderedGelu", [(2, 3), S, S], [None], {}, 6*(1 + 5 + 4)),
    ("QOrderedLayerNormalization", [(2, 3, 8), S, (8,), (8,), S], [None], {},
     48*(1 + 4) + 48*7 + 6*3),  # dequantize, quantize; LN with scale and bias over 6 rows
]


@pytest.mark.parametrize("op,ins,outs,attrs,flops", QLINEAR,
                         ids=[f"{q[0]}-{i}" for i, q in enumerate(QLINEAR)])
def test_qlinear(op, ins, outs, attrs, flops):
    c = ms(op, ins, outs, attrs)
    assert (c.macs, c.flops) == (0, flops)


def test_qlinear_concat_requantises_only_what_differs():
    ins = [S, S, (2, 3), S, S, (2, 4), S, S]
    same_first = {0: 0.5, 1: 0, 3: 0.5, 4: 0, 6: 0.25, 7: 0}
    assert ms("QLinearConcat", ins, [None], {"axis": 1}, values=same_first).flops == 8*5
    assert ms("QLinearConcat", ins, [None], {"axis": 1}).flops == (6 + 8)*5  # values unknown
    r = registry.lookup(MS, "QLinearConcat")
    assert [r.role(i) for i in range(8)] == [QUANT, QUANT, DATA, QUANT, QUANT, DATA, QUANT, QUANT]


# ---------------------------------------------------------------------------------------------
# Mixture of experts: per token, k experts' FFN + combining k outputs (k*hidden MACs) + router
# (softmax over E, E*(floor(log2 k)+1) top-k compares, 2k-1 when normalising).

MOE = [
    # 6 tokens of 8, 4 experts of inter 16, relu, k = 1, biases.
    ("relu_top1_bias", [(2, 3, 8), (6, 4), (4, 16, 8), (4, 16), (4, 8, 16), (4, 8)], {},
     6*(8*16 + 16*8 + 8),
     2*6*(8*16 + 16*8 + 8) + 6*((16 + 8 + 16*1) + (5*4 + 4*1))),
    # fused SwiGLU (fc1 rows 2*16), k = 2 normalised, limit 7, beta 1: 7 + 1 + 3 per element.
    ("swiglu_fused_top2", [(4, 8), (4, 4), (4, 32, 8), None, (4, 8, 16)],
     {"k": 2, "activation_type": "swiglu", "swiglu_fusion": 1, "swiglu_limit": 7.0,
      "activation_beta": 1.0, "normalize_routing_weights": 1},
     4*(2*(8*32 + 16*8) + 2*8),
     2*4*(2*(8*32 + 16*8) + 2*8) + 4*(2*16*11 + (5*4 + 4*2 + 3))),
    # unfused SwiGLU: gate fc1 and up fc3.
    ("swiglu_fc3", [(4, 8), (4, 4), (4, 16, 8), None, (4, 8, 16), None, (4, 16, 8)],
     {"activation_type": "swiglu"},
     4*(8*16 + 16*8 + 16*8 + 8),
     2*4*(8*16 + 16*8 + 16*8 + 8) + 4*(16*7 + 24)),
]


@pytest.mark.parametrize("ins,attrs,macs,flops", [m[1:] for m in MOE], ids=[m[0] for m in MOE])
def test_moe(ins, attrs, macs, flops):
    c = ms("MoE", ins, [None], attrs)
    assert (c.macs, c.flops) == (macs, flops)


def test_qmoe_int4():
    # 4 tokens of 8, 4 experts of inter 16, int4: fc1 (4, 16, 8*4/8), fc2 (4, 8, 16*4/8).
    ins = [(4, 8), (4, 4), (4, 16, 4), (4, 16), None, (4, 8, 8), (4, 8)]
    c, context = run("QMoE", ins, [None], {"expert_weight_bits": 4})
    assert context.logical_params == {2: 4*16*8, 5: 4*8*16}
    macs = 4*(8*16 + 16*8 + 8)
    assert (c.macs, c.flops) == (macs, 2*macs + 4*(16*1 + 24) + (512 + 512)*2)  # + dequant all experts


def test_qmoe_fp8_bits_and_override():
    ins = [(4, 8), (4, 4), (4, 16, 8), (4, 2, 1), None, (4, 8, 16), (4, 1, 2)]
    _, context = run("QMoE", ins, [None], {"quant_type": "fp8", "block_size": 8})
    assert context.logical_params == {2: 512, 5: 512}
    ins = [(4, 8), (4, 4), (4, 16, 8), (4, 16), None, (4, 8, 4), (4, 8)]  # fc1 8-bit, fc2 2-bit
    _, context = run("QMoE", ins, [None], {"expert_weight_bits": 8, "fc2_expert_weight_bits": 2})
    assert context.logical_params == {2: 512, 5: 512}


def test_moe_packed():
    ins = [(2, 8), (2, 4), (4, 16, 10), (4, 16, 10), (4, 8, 20)]
    c, context = run("MoEPacked", ins, [None], {"gate_type": 1, "up_type": 1, "down_type": 1})
    assert context.logical_params == {2: 512, 3: 512, 4: 512}
    macs = 2*(3*128 + 8)  # gate, up, down per expert + combine
    assert (c.macs, c.flops) == (macs, 2*macs + 2*(16*7 + (5*4 + 4 + 1)) + 1536)


# ---------------------------------------------------------------------------------------------
# Linear attention, state-space and hyper-connection pieces.

def test_linear_attention_matches_default_domain():
    ins = [(2, 3, 20), (2, 3, 10), (2, 3, 12)]
    attrs = {"q_num_heads": 4, "kv_num_heads": 2, "update_rule": "linear"}
    assert ms("LinearAttention", ins, [None], attrs) == cost("LinearAttention", ins, [None], attrs)
    c = ms("LinearAttention", ins, [None], attrs)
    assert (c.macs, c.flops) == (2*3*(2*5*6 + 4*5*6), 2*(2*3*(2*5*6 + 4*5*6)) + 2*3*(4*6))


def test_linear_attention_inverse_gqa():
    # 2 query heads, 4 kv heads: each kv head is read out; d_k 5, d_v 6, 2 tokens.
    c = ms("LinearAttention", [(1, 2, 10), (1, 2, 20), (1, 2, 24)], [None],
           {"q_num_heads": 2, "kv_num_heads": 4, "update_rule": "linear"})
    assert (c.macs, c.flops) == (2*(4*5*6 + 4*5*6), 2*(2*(4*5*6 + 4*5*6)) + 2*(4*6))


def test_gated_delta_net():
    # 6 tokens; 2 query/key heads of 4; 4 value heads of 3; scalar decay; fused gates; L2 norms.
    ins = [(6, 2, 4), (6, 2, 4), (6, 4, 3), None, (6, 4), (6, 4), (1, 4, 3, 4), (4,), (4,)]
    attrs = {"gate_activation": "softplus", "beta_activation": "sigmoid", "qk_l2_norm": 1}
    c = ms("GatedDeltaNet", ins, [None], attrs)
    state = 4*4*3
    per_token = (4*3  # output scale
                 + (1 + 5)*4 + state  # exp + softplus gate per decay value, decay multiplies
                 + 2*4*3 + 4*4  # delta, sigmoid(beta)
                 + (2 + 2)*(2*4 + 4))  # L2 norm (2n) and division of each q and k vector
    assert (c.macs, c.flops) == (6*3*state, 2*(6*3*state) + 6*per_token)
    # packed QKV: width 2*2*4 + 4*3 = 28, heads from the state; plain linear rule.
    c = ms("GatedDeltaNet", [(6, 28), None, None, None, None, None, (1, 4, 3, 4)], [None],
           {"update_rule": "linear"})
    assert (c.macs, c.flops) == (6*2*state, 2*(6*2*state) + 6*4*3)


def test_hyper_connections():
    c = ms("HyperConnectionPreMix", [(2, 3, 4, 8), (2, 3, 4, 8)], [None], {"reduction_scale": 0.5})
    assert (c.macs, c.flops) == (192, 2*192 + 48)
    c = ms("HyperConnectionPostMix", [(2, 4, 8), (2, 8), (2, 4), (2, 4, 4)])
    assert (c.macs, c.flops) == (64*4, 2*64*4 + 2*64)
    assert ms("HyperConnectionPostMix", [(2, 4, 8), (2, 8), (2, 4)]).flops == 2*64
    # 3 rows of C=4 branches of H=8, rank 2.
    c = ms("HyperConnectionLowRankMix", [(3, 32), (32,), (32, 2), (2, 32), (32, 4)], [None],
           {"num_branches": 4})
    macs = 3*(32*2 + 2*32 + 32 + 32*4)  # down, up, branch sum, inject
    extra = 3*(4*32 + 3*4 + 6*2 + 4*32 + 4*4)  # RMS, ScaledSiLU, gate sigmoids, post-gate sigmoids
    assert (c.macs, c.flops) == (macs, 2*macs + extra)


def test_engram_gate():
    ins = [(1, 2, 3, 8), (1, 2, 3, 8), (1, 2, 8), (3, 8), (3, 8)]
    norm = 4*48 + 3*6  # 6 rows of 8
    c = ms("EngramGate", ins)
    assert (c.macs, c.flops) == (48, 2*48 + 2*norm + 10*6 + 48)
    c = ms("EngramGate", ins + [(3, 8)], [None, (1, 2, 3, 8)])
    assert c.flops == 2*48 + 3*norm + 10*6 + 48


def test_gated_relative_position_bias():
    c = ms("GatedRelativePositionBias", [(2, 5, 8), (8,), (1, 2, 5, 5), (4, 6), (6,), (1, 2, 1, 1)],
           [None], {"num_heads": 2})
    rows = 10*2  # tokens * heads
    assert (c.macs, c.flops) == (rows*4*6, 2*(rows*4*6) + 10*8 + rows*6 + rows*4 + rows*12 + 2*2*5*5)


# ---------------------------------------------------------------------------------------------
# Linear algebra and signal processing.

def test_inverse():
    c = ms("Inverse", [(2, 3, 3)])
    assert (c.macs, c.flops) == (2*3*3*2, 2*(2*3*3*2) + 2*(2*9 - 3))  # n^2(n-1); 2n^2 - n


def test_rfft_irfft():
    # real FFT of 16 points: 2.5 * 16 * log2 16 = 160.
    assert ms("Rfft", [(2, 16)]).flops == 2*160
    # 2-D over (8, 16): 8 real FFTs of 16, then 9 (= 16//2 + 1) complex FFTs of 8 (5*8*3 = 120).
    assert ms("Rfft", [(3, 8, 16)], [None], {"signal_ndim": 2}).flops == 3*(8*160 + 9*120)
    # inverse: the same FFT count + the 1/n scaling of the 16 outputs.
    assert ms("Irfft", [(2, 9, 2)], [(2, 16)], {"signal_ndim": 1}).flops == 2*160 + 2*16
    assert ms("Irfft", [(2, 9, 2)], [None], {"signal_ndim": 1}).flops == 2*160 + 2*16


# ---------------------------------------------------------------------------------------------
# Zero-cost declarations and unknown ops.

ZERO = ["Range", "Trilu", "Pad", "GatherND", "Unique", "ExpandDims", "TorchEmbedding", "BitmaskDropout",
        "RemovePadding", "RestorePadding", "UnfoldTensor", "ConvStateReplay", "SampleOp", "Tokenizer"]


@pytest.mark.parametrize("op", ZERO)
def test_zero_cost(op):
    r = registry.lookup(MS, op)
    assert r.zero_cost and r.doc
    assert ms(op, [(2, 3)]) == ms(op, [(2, 3)]).__class__()


def test_zero_cost_roles():
    r = registry.lookup(MS, "TorchEmbedding")
    assert [r.role(i) for i in range(4)] == [WEIGHT, CONTROL, CONTROL, CONTROL]
    assert registry.lookup(MS, "Range").role(0) == CONTROL


@pytest.mark.parametrize("op", ["BeamSearch", "GreedySearch", "Sampling", "WhisperBeamSearch", "EPContext",
                                "Snpe"])
def test_unknown(op):
    with pytest.raises(UnknownShape):
        ms(op, [(1, 5), S])


# ---------------------------------------------------------------------------------------------
# Whole pipeline: parameters, quantisation overhead and bytes through onnxscore.analyze.

def test_pipeline_matmul_nbits_int4():
    k, n, block = 256, 64, 32
    inits = [weight("B", [n, k // block, block // 2], UINT8),  # int4, two per byte
             weight("scales", [n * k // block]), weight("zp", [n, (k // block + 1) // 2], UINT8),
             weight("bias", [n])]
    model = node_model("MatMulNBits", [("A", FLOAT, [1, 8, k]), "B", "scales", "zp", "", "bias"],
                       [("Y", FLOAT, [1, 8, n])], {"K": k, "N": n, "bits": 4, "block_size": block},
                       initializers=inits, domain=MS)
    report = onnxscore.analyze(model)
    layer = report.layers[0]
    assert layer.status == "ok"
    assert report.totals.params == k*n + n  # logical int4 weights + bias
    assert report.totals.quant_overhead == n*(k // block) + n*4  # scales + packed zero points
    assert report.totals.weight_bytes == n*(k // block)*(block // 2) + n*(k // block)*4 + n*4 + n*4
    assert layer.macs == 8*n*k
    assert layer.flops == 2*(8*n*k) + k*n*2 + 8*n


def test_pipeline_matmul_nbits_without_zero_points():
    k, n, block = 64, 32, 16
    inits = [weight("B", [n, k // block, block // 2], UINT8), weight("scales", [n, k // block])]
    model = node_model("MatMulNBits", [("A", FLOAT, [2, k]), "B", "scales"], [("Y", FLOAT, [2, n])],
                       {"K": k, "N": n, "bits": 4, "block_size": block}, initializers=inits, domain=MS)
    report = onnxscore.analyze(model)
    assert report.totals.params == k*n
    assert report.totals.quant_overhead == n*(k // block)
    assert report.totals.weight_bytes == n*k // 2 + n*(k // block)*4


def test_pipeline_gqa_with_past():
    model = node_model(
        "GroupQueryAttention",
        [("q", FLOAT, [1, 1, 32]), ("k", FLOAT, [1, 1, 8]), ("v", FLOAT, [1, 1, 8]),
         ("past_key", FLOAT, [1, 2, 15, 4]), ("past_value", FLOAT, [1, 2, 15, 4]),
         ("seqlens_k", INT32, [1]), ("total_sequence_length", INT32, [])],
        [("out", FLOAT, [1, 1, 32]), ("present_key", FLOAT, [1, 2, 16, 4]),
         ("present_value", FLOAT, [1, 2, 16, 4])],
        {"num_heads": 8, "kv_num_heads": 2}, domain=MS)
    report = onnxscore.analyze(model)
    layer = report.layers[0]
    assert layer.status == "ok"
    assert layer.macs == 1*8*1*16*(4+4)  # kv = 15 past + 1
    assert layer.flops == 2*layer.macs + (1+5+1)*(1*8*1*16)
    assert report.totals.params == 0


def test_pipeline_gqa_symbolic_past_is_a_formula():
    model = node_model(
        "GroupQueryAttention",
        [("q", FLOAT, [1, 1, 32]), ("k", FLOAT, [1, 1, 8]), ("v", FLOAT, [1, 1, 8]),
         ("past_key", FLOAT, [1, 2, "past", 4]), ("past_value", FLOAT, [1, 2, "past", 4]),
         ("seqlens_k", INT32, [1]), ("total_sequence_length", INT32, [])],
        [("out", FLOAT, [1, 1, 32])], {"num_heads": 8, "kv_num_heads": 2}, domain=MS)
    layer = onnxscore.analyze(model).layers[0]
    assert layer.status == "symbolic"  # an exact polynomial in the cache length
    assert layer.macs_formula.evaluate({"past": 31}) == 1*8*1*(31+1)*8
    bound = onnxscore.analyze(model, dims={"past": 31})
    assert bound.layers[0].status == "ok"
    assert bound.layers[0].macs == 1*8*1*32*8


def test_pipeline_attention_packed_qkv_weight():
    hidden = 32
    inits = [weight("W", [hidden, 3 * hidden]), weight("b", [3 * hidden])]
    model = node_model("Attention", [("x", FLOAT, [1, 10, hidden]), "W", "b", ("mask", INT32, [1, 10])],
                       [("y", FLOAT, [1, 10, hidden])], {"num_heads": 4}, initializers=inits, domain=MS)
    report = onnxscore.analyze(model)
    assert report.totals.params == hidden*3*hidden + 3*hidden
    macs = 1*10*hidden*3*hidden + 1*4*10*10*(8+8)
    assert report.layers[0].macs == macs
    assert report.layers[0].flops == 2*macs + 10*3*hidden + (1+5+1)*(4*10*10)


def test_pipeline_skip_layer_norm_params():
    inits = [weight("gamma", [16]), weight("beta", [16]), weight("bias", [16])]
    model = node_model("SkipLayerNormalization", [("x", FLOAT, [2, 4, 16]), ("skip", FLOAT, [2, 4, 16]),
                                                  "gamma", "beta", "bias"],
                       [("y", FLOAT, [2, 4, 16])], initializers=inits, domain=MS)
    report = onnxscore.analyze(model)
    assert report.totals.params == 16 + 16 + 16
    assert report.layers[0].flops == 128 + 128 + 128*7 + 8*3


def test_pipeline_embed_layer_norm_params():
    inits = [weight("word", [1000, 16]), weight("pos", [128, 16]), weight("seg", [2, 16]),
             weight("gamma", [16]), weight("beta", [16])]
    model = node_model("EmbedLayerNormalization",
                       [("ids", INT32, [2, 8]), ("segment_ids", INT32, [2, 8]), "word", "pos", "seg",
                        "gamma", "beta", ("mask", INT32, [2, 8])],
                       [("y", FLOAT, [2, 8, 16]), ("mask_index", INT32, [2])],
                       initializers=inits, domain=MS)
    report = onnxscore.analyze(model)
    assert report.totals.params == 1000*16 + 128*16 + 2*16 + 16 + 16
    assert report.layers[0].flops == 2*256 + 256*7 + 16*3 + 16


def test_pipeline_qmoe_logical_params():
    inits = [weight("fc1", [4, 16, 4], UINT8), weight("s1", [4, 16]), weight("fc2", [4, 8, 8], UINT8),
             weight("s2", [4, 8])]
    model = node_model("QMoE",
                       [("x", FLOAT, [4, 8]), ("router", FLOAT, [4, 4]), "fc1", "s1", "", "fc2", "s2"],
                       [("y", FLOAT, [4, 8])], {"expert_weight_bits": 4}, initializers=inits, domain=MS)
    report = onnxscore.analyze(model)
    assert report.totals.params == 4*16*8 + 4*8*16  # every expert, logical int4 weights
    assert report.totals.quant_overhead == 4*16 + 4*8
    assert report.totals.weight_bytes == 4*16*4 + 4*8*8 + 4*16*4 + 4*8*4  # packed bytes + float scales


def test_pipeline_gather_block_quantized_and_torch_embedding():
    model = node_model("GatherBlockQuantized", [("data", UINT8, [100, 16]), ("ids", INT64, [2, 3]), "scales"],
                       [("y", FLOAT, [2, 3, 32])], {"bits": 4, "block_size": 32},
                       initializers=[weight("data", [100, 16], UINT8), weight("scales", [100, 1])], domain=MS)
    report = onnxscore.analyze(model)
    assert report.totals.params == 100*32
    assert report.totals.quant_overhead == 100
    model = node_model("TorchEmbedding", ["table", ("ids", INT64, [2, 3])], [("y", FLOAT, [2, 3, 8])],
                       initializers=[weight("table", [50, 8])], domain=MS)
    report = onnxscore.analyze(model)
    assert report.totals.params == 50*8
    assert report.layers[0].status == "zero"


def test_pipeline_simplified_layer_norm_default_domain():
    model = node_model("SimplifiedLayerNormalization", [("x", FLOAT, [2, 3, 8]), "scale"],
                       [("y", FLOAT, [2, 3, 8])], initializers=[weight("scale", [8])])
    report = onnxscore.analyze(model)
    assert report.layers[0].status == "ok"
    assert report.totals.params == 8
    assert report.layers[0].flops == 4*48 + 3*6


def test_pipeline_generation_driver_is_unknown():
    body = helper.make_graph([], "decoder", [], [])
    node = helper.make_node("GreedySearch", ["ids", "max_length"], ["seq"], domain=MS, decoder=body,
                            pad_token_id=0, eos_token_id=1)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("ids", INT32, [1, 4]),
                                            helper.make_tensor_value_info("max_length", INT32, [1])],
                              [helper.make_tensor_value_info("seq", INT32, [1, 16])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23), helper.make_opsetid(MS, 1)])
    report = onnxscore.analyze(model)
    assert report.layers[0].status == "unknown"
    assert not report.totals.complete


# ---------------------------------------------------------------------------------------------
# Real models: onnxruntime-genai's Llama (int4 MatMulNBits and fp32) and onnxruntime's fused
# BERT against torch's own counts (fixtures/export_transformers.py, llm_bert_reference.json).

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "fixtures")


def _fixture(name):
    path = os.path.join(FIXTURES, name)
    if not os.path.exists(path):
        pytest.skip(reason=f"fixture {name} is not in this checkout")
    return path


def _reference():
    with open(_fixture("llm_bert_reference.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("name", ["llm_genai_int4.onnx", "llm_genai_fp32.onnx"])
def test_genai_llama_matches_torch(name):
    ref = _reference()["llama"]
    path = _fixture(name)
    for phase in ("prefill", "decode"):
        shape = ref["macs"][phase]
        dims = {"batch_size": shape["batch"], "sequence_length": shape["seq"],
                "past_sequence_length": shape["past"], "total_sequence_length": shape["past"] + shape["seq"]}
        report = onnxscore.analyze(path, dims=dims)
        assert report.totals.complete, (report.unsupported_ops, report.unresolved_dims)
        # int4 MatMulNBits weights count as the logical K*N weights: the same total as fp32 and torch
        assert report.totals.params == ref["torch"]["parameters"]
        assert report.totals.macs == shape["total"]  # eager attention: Q*K^T and P*V included


def test_genai_llama_symbolic_attention():
    report = onnxscore.analyze(_fixture("llm_genai_int4.onnx"))
    gqa = [layer for layer in report.layers if layer.op_type == "GroupQueryAttention"]
    assert len(gqa) == 2 and all(layer.status == "symbolic" for layer in gqa)
    # 4 heads of 32 over total_sequence_length keys: 4*32*2 MACs per (query, key) pair
    assert gqa[0].macs_formula.evaluate({"sequence_length": 3, "total_sequence_length": 10}) == 3*10*4*32*2


def test_fused_bert_matches_torch():
    """onnxruntime's optimizer fused the BERT into EmbedLayerNormalization, Attention,
    SkipLayerNormalization and BiasGelu. ONNX shape inference does not know com.microsoft ops, so
    their output shapes are declared here as onnxruntime's symbolic shape inference would."""
    import onnx

    ref = _reference()["bert"]
    model = onnx.load(_fixture("bert_fused.onnx"))
    out_shapes = {"EmbedLayerNormalization": [["batch", "seq", 128], ["batch"]],
                  "Attention": [["batch", "seq", 128]], "SkipLayerNormalization": [["batch", "seq", 128]],
                  "BiasGelu": [["batch", "seq", 512]]}
    for node in model.graph.node:
        if node.domain == MS:
            for out, shape in zip(node.output, out_shapes[node.op_type]):
                dtype = INT32 if len(shape) == 1 else FLOAT
                model.graph.value_info.append(helper.make_tensor_value_info(out, dtype, shape))
    report = onnxscore.analyze(model, dims={"batch": ref["macs"]["batch"], "seq": ref["macs"]["seq"]})
    assert report.totals.complete
    assert report.totals.params == ref["torch"]["parameters"]
    assert report.totals.macs == ref["macs"]["total"]
    assert {layer.op_type for layer in report.layers if layer.domain == MS} == set(out_shapes)
