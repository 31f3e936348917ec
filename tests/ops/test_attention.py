"""Attention, RotaryEmbedding and LinearAttention: tables derived from the spec.

Attention, per score (B * q_heads * q_seq * kv_len): softmax 5 (max, sub, exp, sum, div), an
additive mask 1, a soft cap 3 (div, tanh, mul); plus sqrt(scale) times each element of Q and
of the present K (past + current).
"""
from __future__ import annotations

import pytest
from onnx import TensorProto

import onnxscore
from onnxscore.ops import registry
from onnxscore.ops.registry import CONTROL, DATA, UnknownShape
from tests.opmodels import cost, node_model, weight

FLOAT = TensorProto.FLOAT

# (id, input shapes, attrs, macs, flops)
ATTENTION = [
    # MHA 4-D: B=2, heads=4, q_seq=6, kv_seq=10, head_qk=8, head_v=16.
    ("mha_4d", [(2, 4, 6, 8), (2, 4, 10, 8), (2, 4, 10, 16)], {},
     2*4*6*10*(8+16),  # B*q_heads*q_seq*kv_len*(head_qk+head_v)
     2*(2*4*6*10*(8+16)) + (2*4*6*8 + 2*4*10*8) + 5*(2*4*6*10)),  # + scale Q, K + softmax
    # 3-D GQA: q_heads=8 of size 4 (hidden 32), kv_heads=2 (K hidden 8, V hidden 2*5).
    ("gqa_3d", [(2, 6, 32), (2, 10, 8), (2, 10, 10)], {"q_num_heads": 8, "kv_num_heads": 2},
     2*8*6*10*(4+5),  # B*q_heads*q_seq*kv_len*(head_qk+head_v)
     2*(2*8*6*10*(4+5)) + (2*8*6*4 + 2*2*10*4) + 5*(2*8*6*10)),
    # 4-D GQA decode step with a KV cache of 32: kv_len = 32 + 1; float mask; softcap.
    ("gqa_past_mask_softcap", [(1, 8, 1, 16), (1, 2, 1, 16), (1, 2, 1, 16), (1, 1, 1, 33),
                               (1, 2, 32, 16), (1, 2, 32, 16)], {"softcap": 30.0},
     1*8*1*33*(16+16),  # B*q_heads*q_seq*(past+kv_seq)*(head_qk+head_v)
     2*(1*8*1*33*(16+16)) + (1*8*1*16 + 1*2*33*16) + (3 + 1 + 5)*(1*8*1*33)),
    # 3-D MQA with past: kv_heads=1, past 4 + current 2.
    ("mqa_3d_past", [(1, 2, 24), (1, 2, 6), (1, 2, 6), None, (1, 1, 4, 6), (1, 1, 4, 6)],
     {"q_num_heads": 4, "kv_num_heads": 1},
     1*4*2*6*(6+6),  # B*q_heads*q_seq*(4+2)*(head_qk+head_v)
     2*(1*4*2*6*(6+6)) + (1*4*2*6 + 1*1*6*6) + 5*(1*4*2*6)),
    ("causal_3d", [(1, 5, 12), (1, 5, 12), (1, 5, 12)],
     {"q_num_heads": 3, "kv_num_heads": 3, "is_causal": 1},
     1*3*5*5*(4+4),
     2*(1*3*5*5*(4+4)) + (1*3*5*4 + 1*3*5*4) + (1 + 5)*(1*3*5*5)),
    ("sliding_window", [(1, 2, 4, 8), (1, 2, 6, 8), (1, 2, 6, 8)], {"left_window_size": 2},
     1*2*4*6*(8+8),
     2*(1*2*4*6*(8+8)) + (1*2*4*8 + 1*2*6*8) + (1 + 5)*(1*2*4*6)),
    ("nonpad_kv_seqlen", [(2, 2, 3, 4), (2, 2, 9, 4), (2, 2, 9, 4), None, None, None, (2,)], {},
     2*2*3*9*(4+4),  # full padded kv length: the valid lengths are runtime values
     2*(2*2*3*9*(4+4)) + (2*2*3*4 + 2*2*9*4) + (1 + 5)*(2*2*3*9)),
]


@pytest.mark.parametrize("ins,attrs,macs,flops", [c[1:] for c in ATTENTION], ids=[c[0] for c in ATTENTION])
def test_attention(ins, attrs, macs, flops):
    c = cost("Attention", ins, [None], attrs)
    assert (c.macs, c.flops) == (macs, flops)


def test_attention_3d_without_heads_is_an_error():
    with pytest.raises(ValueError):
        cost("Attention", [(1, 5, 12), (1, 5, 12), (1, 5, 12)], [None], {})


def test_attention_symbolic_is_unknown():
    with pytest.raises(UnknownShape):
        cost("Attention", [(1, 4, "seq", 8), (1, 4, "seq", 8), (1, 4, "seq", 8)], [None], {})


def test_attention_roles():
    r = registry.lookup("", "Attention")
    assert [r.role(i) for i in range(7)] == [DATA, DATA, DATA, CONTROL, DATA, DATA, CONTROL]


ROTARY = [
    ("full_4d", [(2, 4, 10, 16), (10, 8), (10, 8), (2, 10)], {},
     3*2*4*10*16),  # 3 per rotated element * B*heads*seq*head
    ("partial_3d", [(2, 10, 64), (2, 10, 4), (2, 10, 4)], {"num_heads": 4, "rotary_embedding_dim": 8},
     3*2*10*4*8),  # 3 * B*seq*heads*rotary_dim (head 16, only 8 rotated)
    ("partial_4d", [(1, 2, 3, 16), (3, 2), (3, 2)], {"rotary_embedding_dim": 4},
     3*1*2*3*4),
    ("interleaved_3d_full", [(1, 5, 24), (1, 5, 6), (1, 5, 6)], {"num_heads": 2, "interleaved": 1},
     3*1*5*2*12),  # head = 24 / 2
]


@pytest.mark.parametrize("ins,attrs,flops", [c[1:] for c in ROTARY], ids=[c[0] for c in ROTARY])
def test_rotary_embedding(ins, attrs, flops):
    c = cost("RotaryEmbedding", ins, [None], attrs)
    assert (c.macs, c.flops) == (0, flops)


def test_rotary_roles():
    r = registry.lookup("", "RotaryEmbedding")
    assert [r.role(i) for i in range(4)] == [DATA, CONTROL, CONTROL, CONTROL]


# B=2, T=3, q_heads=4, kv_heads=2, d_k=5, d_v=6: q (2, 3, 4*5), k (2, 3, 2*5), v (2, 3, 2*6).
QKV = [(2, 3, 20), (2, 3, 10), (2, 3, 12)]
LINEAR_ATTENTION = [
    ("linear", QKV, {"update_rule": "linear"},
     2*3*(2*5*6 + 4*5*6),  # tokens*(write kv_heads*d_k*d_v + read q_heads*d_k*d_v)
     2*(2*3*(2*5*6 + 4*5*6)) + 2*3*(4*6)),  # + output scale q_heads*d_v
    ("gated_per_key_decay", QKV + [None, (2, 3, 2*5)], {"update_rule": "gated"},
     2*3*(2*5*6 + 4*5*6),
     2*(2*3*(2*5*6 + 4*5*6)) + 2*3*(4*6 + 2*5 + 2*5*6)),  # + exp(decay) + decay * state
    ("delta", QKV + [None, None, (2, 3, 2)], {"update_rule": "delta"},
     2*3*(2*5*6 + 4*5*6 + 2*5*6),  # + read-back S^T k
     2*(2*3*(2*5*6 + 4*5*6 + 2*5*6)) + 2*3*(4*6 + 2*2*6)),  # + beta * (v - S^T k)
    ("gated_delta_default_past", QKV + [(2, 2, 5, 6), (2, 3, 2), (2, 3, 2)], {},
     2*3*(2*5*6 + 4*5*6 + 2*5*6),
     2*(2*3*(2*5*6 + 4*5*6 + 2*5*6)) + 2*3*(4*6 + 2 + 2*5*6 + 2*2*6)),
]


@pytest.mark.parametrize("ins,attrs,macs,flops", [c[1:] for c in LINEAR_ATTENTION],
                         ids=[c[0] for c in LINEAR_ATTENTION])
def test_linear_attention(ins, attrs, macs, flops):
    c = cost("LinearAttention", ins, [None], {"q_num_heads": 4, "kv_num_heads": 2, **attrs})
    assert (c.macs, c.flops) == (macs, flops)


def test_linear_attention_unknown_rule():
    with pytest.raises(ValueError):
        cost("LinearAttention", QKV, [None], {"q_num_heads": 4, "kv_num_heads": 2, "update_rule": "x"})


def test_pipeline_attention_mask_is_not_a_parameter():
    model = node_model("Attention", [("Q", FLOAT, [1, 2, 4, 8]), ("K", FLOAT, [1, 2, 4, 8]),
                                     ("V", FLOAT, [1, 2, 4, 8]), "mask"],
                       [("Y", FLOAT, None)], initializers=[weight("mask", [4, 4])])
    report = onnxscore.analyze(model)
    layer = report.layers[0]
    assert layer.status == "ok"
    assert layer.macs == 1*2*4*4*(8+8)  # B*heads*q_seq*kv_len*(head_qk+head_v)
    assert layer.flops == 2*(1*2*4*4*(8+8)) + (1*2*4*8 + 1*2*4*8) + (1 + 5)*(1*2*4*4)
    assert report.totals.params == 0


def test_pipeline_rotary_caches_are_not_parameters():
    model = node_model("RotaryEmbedding", [("X", FLOAT, [1, 2, 5, 8]), "cos", "sin"],
                       [("Y", FLOAT, None)],
                       initializers=[weight("cos", [1, 5, 4]), weight("sin", [1, 5, 4])])
    report = onnxscore.analyze(model)
    assert report.layers[0].flops == 3*1*2*5*8
    assert report.totals.params == 0
