"""Attention: Attention, RotaryEmbedding and LinearAttention.

Attention's contractions are ``Q*K^T`` and ``P*V`` over the total key length (past + current);
the scaling, soft cap, mask and softmax are FLOPs per score. LinearAttention's contractions are
the recurrent state write (outer product accumulated into the state), the delta-rule read-back
and the query read-out.
"""
from __future__ import annotations

from typing import Tuple

from onnxscore.ops.elementwise import SOFTMAX_FLOPS  # per score: max, sub, exp, sum, divide
from onnxscore.ops.registry import CONTROL, DATA, Cost, Ctx, numel, rule

# Soft cap per score: softcap * tanh(score / softcap): div, tanh, mul.
SOFTCAP_FLOPS = 3

# Additive mask per score (attn_mask, is_causal, a sliding window or nonpad_kv_seqlen): 1 add.
MASK_FLOPS = 1

# Scaling: the spec multiplies each element of Q and of the present K by sqrt(scale).
SCALE_FLOPS = 1

# RoPE per rotated element: each pair (x1, x2) becomes (cos*x1 - sin*x2, sin*x1 + cos*x2):
# 4 multiplies and 2 add/sub per pair, so 3 per rotated element.
ROPE_FLOPS = 3

UPDATE_RULES = ("linear", "gated", "delta", "gated_delta")

# LinearAttention: exp of each decay value (log-space gate).
DECAY_EXP_FLOPS = 1

# LinearAttention: decayed state exp(g) * S, 1 multiply per state element.
DECAY_STATE_FLOPS = 1

# LinearAttention delta rule per value element: beta * (v - S^T k): sub, mul.
DELTA_FLOPS = 2

# LinearAttention output scaling per output element: scale * (q^T S).
OUTPUT_SCALE_FLOPS = 1


def _heads_and_size(shape: Tuple[int, ...], heads_attr) -> Tuple[int, int, int]:
    """``(heads, seq, head_size)`` of a 4-D ``[B, heads, seq, size]`` or 3-D ``[B, seq, heads*size]``
    tensor (``heads_attr`` gives the heads of the 3-D form)."""
    if len(shape) == 4:
        return shape[1], shape[2], shape[3]
    if not heads_attr:
        raise ValueError("3-D attention inputs need q_num_heads and kv_num_heads")
    heads = int(heads_attr)
    return heads, shape[1], shape[2] // heads


@rule("Attention", kind="attention", roles={3: CONTROL, 4: DATA, 5: DATA, 6: CONTROL})
def attention(ctx: Ctx) -> Cost:
    """Scaled dot-product attention with MHA, GQA/MQA and a KV cache.

    MACs = B * q_heads * q_seq * kv_len * (head_qk + head_v) with kv_len = past + current.
    Extra FLOPs: sqrt(scale) times each Q and present-K element; per score (B * q_heads * q_seq *
    kv_len) the soft cap when set, one add when a mask applies, and the softmax. Causal, window
    and padding masks do not shrink the count: every score is computed, then masked.
    """
    q = ctx.in_shape(0)
    batch = q[0]
    q_heads, q_seq, head_qk = _heads_and_size(q, ctx.attr("q_num_heads"))
    kv_heads, kv_seq, _ = _heads_and_size(ctx.in_shape(1), ctx.attr("kv_num_heads"))
    _, _, head_v = _heads_and_size(ctx.in_shape(2), ctx.attr("kv_num_heads"))
    past = ctx.in_shape(4)[2] if ctx.has_input(4) else 0
    kv_len = past + kv_seq
    scores = batch * q_heads * q_seq * kv_len
    macs = scores * (head_qk + head_v)
    extra = SCALE_FLOPS * (batch * q_heads * q_seq * head_qk + batch * kv_heads * kv_len * head_qk)
    if float(ctx.attr("softcap", 0.0)) > 0.0:
        extra += SOFTCAP_FLOPS * scores
    masked = (ctx.has_input(3) or ctx.has_input(6) or ctx.attr("is_causal", 0)
              or ctx.attr("left_window_size", -1) >= 0 or ctx.attr("right_window_size", -1) >= 0)
    if masked:
        extra += MASK_FLOPS * scores
    extra += SOFTMAX_FLOPS * scores
    return Cost.of_macs(macs, extra_flops=extra)


@rule("RotaryEmbedding", kind="attention", roles={1: CONTROL, 2: CONTROL, 3: CONTROL})
def rotary_embedding(ctx: Ctx) -> Cost:
    """Rotary position embedding of the first ``rotary_embedding_dim`` features of every head.

    FLOPs = ROPE_FLOPS * (vectors) * rotary_dim, vectors = B * heads * seq; rotary_dim defaults to
    head_size. cos/sin caches are precomputed buffers, not learned: CONTROL.
    """
    x = ctx.in_shape(0)
    if len(x) == 4:
        vectors, head = numel(x[:3]), x[3]
    else:
        heads = ctx.attr("num_heads")
        if not heads:
            raise ValueError("3-D RotaryEmbedding input needs num_heads")
        vectors, head = x[0] * x[1] * int(heads), x[2] // int(heads)
    rotary_dim = int(ctx.attr("rotary_embedding_dim", 0)) or head
    return Cost.of_flops(ROPE_FLOPS * vectors * rotary_dim)


@rule("LinearAttention", kind="attention", roles={3: CONTROL})
def linear_attention(ctx: Ctx) -> Cost:
    """Recurrent linear attention, counted token by token as the spec defines it.

    Per token (B * T of them), with state S of ``kv_heads x d_k x d_v``:
    MACs = kv_heads*d_k*d_v (write k (x) v into S) + q_heads*d_k*d_v (read q^T S)
    [+ kv_heads*d_k*d_v (delta rules: S^T k)].
    FLOPs = 2 * MACs + q_heads*d_v (output scale)
    [gated: + decay values exp + kv_heads*d_k*d_v decay multiplies]
    [delta: + kv_heads*d_v*DELTA_FLOPS].
    Chunk-parallel prefill kernels do different arithmetic; this is the recurrent definition.
    """
    q = ctx.in_shape(0)
    q_heads = int(ctx.attr("q_num_heads"))
    kv_heads = int(ctx.attr("kv_num_heads"))
    tokens = q[0] * q[1]
    d_k = q[2] // q_heads
    d_v = ctx.in_shape(2)[2] // kv_heads
    rule_name = ctx.attr("update_rule", "gated_delta")
    if rule_name not in UPDATE_RULES:
        raise ValueError(f"unknown LinearAttention update_rule {rule_name!r}")
    state = kv_heads * d_k * d_v
    macs = state + q_heads * d_k * d_v
    extra = OUTPUT_SCALE_FLOPS * q_heads * d_v
    if rule_name in ("gated", "gated_delta"):
        extra += DECAY_EXP_FLOPS * ctx.in_shape(4)[2] + DECAY_STATE_FLOPS * state
    if rule_name in ("delta", "gated_delta"):
        macs += state
        extra += DELTA_FLOPS * kv_heads * d_v
    return Cost.of_macs(tokens * macs, extra_flops=tokens * extra)
