"""onnxruntime's contrib ops (domain ``com.microsoft``), and its SimplifiedLayerNormalization.

Sources: the operator schemas compiled into onnxruntime (``get_all_operator_schema()``: the
doc strings, inputs and attribute defaults quoted below) and onnxruntime's
``docs/ContribOperators.md``, which is generated from the same schemas.

The counting convention is the one of :mod:`onnxscore.ops.registry`: MACs only for the
contractions (projections, ``Q*K^T`` and ``P*V``, convolutions, expert FFNs, the weighted
combination of expert outputs); ``flops = 2 * macs`` plus every other arithmetic step, with the
per-element constants of the default-domain modules wherever the math is the same (softmax,
GELU, RMS and layer normalisation, quantisation, RoPE). What is new here is named below.

* **Fused ops cost what their parts cost**: FusedConv is Conv + add + activation, BiasGelu is
  Add + Gelu, SkipLayerNormalization is two adds + LayerNormalization, MatMulNBits is a
  DequantizeLinear of the packed weight (once per call, ``(q - zero_point) * scale``; the zero
  point applies even when it is the default ``2^(bits-1)``) + MatMul (+ bias).
* **Packed quantized weights count as their logical weights**: a rule sets
  ``ctx.logical_params`` (MatMulNBits: ``K * N`` for a uint8 ``[N, k_blocks, blob]`` blob), so the
  walker reports K*N parameters while the stored bytes stay the file's.
* **Attention-like ops** score ``B * heads * q_len * kv_len`` pairs over the total key length
  (past + current); every score costs the scale (``SCORE_SCALE_FLOPS``), the softmax, one add
  per additive mask or bias tensor, and the soft cap when set. Masks never shrink the count.
  Runtime lengths (``seqlens_k``, ``past_sequence_length`` with a shared buffer) are read from
  shapes when the shapes carry them, from small constant inputs when those are given, and are
  otherwise unknown; only the packed (padding-free) attentions fall back to a stated worst case,
  every sequence as long as the padded length.
* **QLinear elementwise ops** are counted as their schemas define them: a DequantizeLinear of
  each input, the float op, a QuantizeLinear of the output.
* **Routers and MoE**: a token runs its ``k`` selected experts, so MACs count ``k`` expert FFNs
  per token plus the combination of their outputs; parameters count every expert.
* Generation drivers (BeamSearch, GreedySearch, Sampling, WhisperBeamSearch) run a subgraph a
  runtime number of times and EPContext/Snpe hold a compiled graph the file does not describe:
  their rules raise :class:`UnknownShape`, so the report says their cost is unknown.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from onnx import TensorProto

from onnxscore.ops.attention import (DECAY_EXP_FLOPS, DECAY_STATE_FLOPS, DELTA_FLOPS, MASK_FLOPS,
                                     OUTPUT_SCALE_FLOPS, ROPE_FLOPS, SOFTCAP_FLOPS, linear_attention)
from onnxscore.ops.conv import (SILU_FLOPS, conv_macs, conv_out_spatial, conv_outputs,
                                conv_transpose_out_spatial)
from onnxscore.ops.elementwise import (CLIP_FLOPS_PER_BOUND, ELEMENTARY_FLOPS, GELU_ERF_FLOPS,
                                       GELU_TANH_FLOPS, LEAKY_RELU_FLOPS, RELU_FLOPS, SIGMOID_FLOPS,
                                       SOFTMAX_FLOPS, SOFTPLUS_FLOPS, SWIGLU_FLOPS, SWISH_FLOPS,
                                       UNARY_FLOPS, WHERE_FLOPS)
from onnxscore.ops.matmul import gemm, gemm_dims, matmul_dims, matmul_macs, matmul_outputs
from onnxscore.ops.misc import IDFT_SCALE_FLOPS, INTERP_TAPS, fft_flops, grid_sample, interp_flops
from onnxscore.ops.norm import (INV_STD_FLOPS_PER_ROW, LP_DIVIDE_FLOPS, RMS_FLOPS, lp_norm_flops,
                                rms_normalization, standardize_flops)
from onnxscore.ops.norm import SCALE_FLOPS as NORM_SCALE_FLOPS
from onnxscore.ops.pool import kernel_elems, max_pool
from onnxscore.ops.preview import SCORE_SCALE_FLOPS
from onnxscore.ops.quantized import (DEQUANTIZE_FLOPS, DYNAMIC_SCALAR_FLOPS, QUANTIZE_FLOPS,
                                     RANGE_FLOPS, REQUANTIZE_FLOPS, ZERO_POINT_FLOPS,
                                     dequantize_linear, qlinear_conv, quantize_linear)
from onnxscore.ops.recurrent import recurrent
from onnxscore.ops.registry import (CONTROL, DATA, DEFAULT_DOMAIN, QUANT, WEIGHT, Cost, Ctx,
                                    UnknownShape, concrete, numel, rule, zero_cost)

MS = "com.microsoft"

# ---------------------------------------------------------------------------------------------
# Constants new to this module (the shared ones are imported above).

# A learned attention sink / smooth softmax adds one logit to each softmax row's denominator:
# subtract the row max, exp, add to the sum.
SINK_FLOPS_PER_ROW = 3

# Dequantising one packed weight, ``(q - zero_point) * scale``: the DequantizeLinear of the
# unfused graph, counted once per call.
WEIGHT_DEQUANT_FLOPS = ZERO_POINT_FLOPS + DEQUANTIZE_FLOPS

# Dynamic quantisation of one activation element, as DynamicQuantizeLinear: its share of the
# min/max range, x / scale, round, saturate, + zero point.
DYNAMIC_QUANTIZE_FLOPS = RANGE_FLOPS + QUANTIZE_FLOPS + 1

# Mask index of EmbedLayerNormalization: one compare-and-count per mask element.
MASK_INDEX_FLOPS = 1

# Complex product (a + bi)(c + di) = (ac - bd) + (ad + bc)i: 4 multiplies, 2 add/sub per complex
# element; ComplexMulConj multiplies by the conjugate, the same count.
COMPLEX_MUL_FLOPS = 6

# Squared ReLU (relu2): relu, then one multiply.
RELU2_FLOPS = RELU_FLOPS + 1

# GEGLU: gelu_tanh(gate) * up.
GEGLU_FLOPS = GELU_TANH_FLOPS + 1

# GatedDeltaNet / LinearAttentionGate softplus gate: + dt_bias, softplus, * -exp(A_log).
SOFTPLUS_GATE_FLOPS = 1 + SOFTPLUS_FLOPS + 1

# GatedDeltaNet sigmoid ("kda") gate: + dt_bias, * exp(A_log), sigmoid, * lower bound.
SIGMOID_GATE_FLOPS = 3 + SIGMOID_FLOPS

# EngramGate per (token, hyper-connection) after the dot product: / sqrt(hidden), abs, max,
# sqrt, sign, multiply by the sign, then the sigmoid.
ENGRAM_GATE_FLOPS = 6 + SIGMOID_FLOPS

# IsAllFinite: classify each element (isinf/isnan), and-fold the verdicts.
ALL_FINITE_FLOPS = 2

# DynamicTimeWarping per cost-matrix cell: min of three predecessors (2 compares) + the cell cost.
DTW_FLOPS_PER_CELL = 3

# GatedRelativePositionBias per (batch, head, position): the two gate sums' sigmoids (2 * 4) and
# gate_u * (gate_r * eco_a - 1) + 2 (mul, sub, mul, add).
GATE_UR_FLOPS = 2 * SIGMOID_FLOPS + 4


# ---------------------------------------------------------------------------------------------
# Helpers.

def _str(ctx: Ctx, name: str, default: str) -> str:
    v = ctx.attr(name, default)
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    return str(v)


def _int_value(ctx: Ctx, i: int) -> Optional[int]:
    """The first element of input ``i`` when it is a small constant, else None."""
    v = ctx.value(i)
    if v is None:
        return None
    flat = np.asarray(v).reshape(-1)
    return int(flat[0]) if flat.size else None


def _raw_shape(ctx: Ctx, i: int) -> Optional[Tuple[int, ...]]:
    """Shape of input ``i`` when fully known, else None (never raises)."""
    if not ctx.has_input(i):
        return None
    try:
        return concrete(ctx.inputs[i].shape, ctx.inputs[i].name)
    except UnknownShape:
        return None


def _out_raw(ctx: Ctx, i: int) -> Optional[Tuple[int, ...]]:
    if not ctx.has_output(i):
        return None
    try:
        return ctx.out_shape(i)
    except UnknownShape:
        return None


def _dim(ctx: Ctx, i: int, axis: int, output: bool = False):
    """One dimension of input (or output) ``i``: an int (a polynomial in the walker's symbolic
    pass), or :class:`UnknownShape` naming only that dimension, so an unknown head size does not
    hide a known sequence length."""
    tensors = ctx.outputs if output else ctx.inputs
    t = tensors[i] if i < len(tensors) else None
    if t is None or t.shape is None:
        which = "output" if output else "input"
        raise UnknownShape([f"shape of {which} {i} of {ctx.name}"], ctx.name)
    return concrete((t.shape[axis],), t.name, ctx.symbolic)[0]


def _dim_or_none(ctx: Ctx, i: int, axis: int, output: bool = False):
    try:
        return _dim(ctx, i, axis, output)
    except UnknownShape:
        return None


def _rows(shape: Sequence[int]) -> int:
    """Rows of a ``[..., features]`` tensor: the product of all but the last dim."""
    return numel(shape[:-1])


def _broadcast_numel(ctx: Ctx, *inputs: int) -> int:
    """Output elements: from the output shape when known, else the inputs' broadcast shape."""
    out = _out_raw(ctx, 0)
    if out is not None:
        return numel(out)
    return numel(np.broadcast_shapes(*(ctx.in_shape(i) for i in inputs)))


def _zp(ctx: Ctx, operand: int, zero_point: int) -> int:
    """Zero-point shift of operand ``operand`` when input ``zero_point`` is given."""
    return ZERO_POINT_FLOPS * ctx.in_numel(operand) if ctx.has_input(zero_point) else 0


def _dequant(ctx: Ctx, x: int, zero_point: int) -> int:
    """DequantizeLinear of input ``x``: ``(x - zp) * scale`` per element."""
    return ctx.in_numel(x) * DEQUANTIZE_FLOPS + _zp(ctx, x, zero_point)


def _quant(ctx: Ctx, n: int, zero_point: int) -> int:
    """QuantizeLinear of ``n`` output elements (+ the zero point when input ``zero_point`` is given)."""
    return n * (QUANTIZE_FLOPS + (1 if ctx.has_input(zero_point) else 0))


_FUSED_ACTIVATIONS = {k.lower(): v for k, v in UNARY_FLOPS.items()}
_FUSED_ACTIVATIONS.update({"": 0, "identity": 0, "none": 0, "clip": 2 * CLIP_FLOPS_PER_BOUND,
                           "gelu": GELU_ERF_FLOPS, "fastgelu": GELU_TANH_FLOPS,
                           "quickgelu": SWISH_FLOPS, "silu": SILU_FLOPS, "relu2": RELU2_FLOPS,
                           "relu_squared": RELU2_FLOPS})


def fused_activation_flops(name: str) -> int:
    """FLOPs of one evaluation of a fused activation named as in FusedConv/FusedGemm
    (``Relu``, ``LeakyRelu``, ``Tanh``, ``Sigmoid``, ``HardSigmoid``, ``Clip``, ...): the default
    domain's constant for the op of that name; none or ``Identity`` is 0."""
    key = (name or "").lower()
    if key not in _FUSED_ACTIVATIONS:
        raise ValueError(f"unknown fused activation {name!r}")
    return _FUSED_ACTIVATIONS[key]


def swiglu_flops(ctx: Ctx, limit_attr: str = "limit") -> int:
    """Clamped SwiGLU per output, ``clamp(G) * sigmoid(alpha * clamp(G)) * (clamp(L) + beta)``.

    SWIGLU_FLOPS (alpha mul, sigmoid, mul, mul), + 1 when ``activation_beta`` is nonzero, + one
    bound on G and two on L when the limit attribute is set (> 0).
    """
    flops = SWIGLU_FLOPS
    if float(ctx.attr("activation_beta", 0.0)) != 0.0:
        flops += 1
    limit = ctx.attr(limit_attr)
    if limit is not None and float(limit) > 0.0:
        flops += 3 * CLIP_FLOPS_PER_BOUND
    return flops


def attention_scores(batch: int, heads: int, q_len: int, kv_len: int, head_qk: int, head_v: int,
                     masks: int = 0, softcap: bool = False, sink: bool = False) -> Cost:
    """``Q*K^T`` and ``P*V`` over ``kv_len`` keys, and the per-score work.

    MACs = B * heads * q_len * kv_len * (head_qk + head_v). Per score: SCORE_SCALE_FLOPS,
    SOFTMAX_FLOPS, MASK_FLOPS per additive mask/bias, SOFTCAP_FLOPS when capped; per softmax row
    SINK_FLOPS_PER_ROW with a sink.
    """
    scores = batch * heads * q_len * kv_len
    per_score = SCORE_SCALE_FLOPS + SOFTMAX_FLOPS + MASK_FLOPS * masks
    if softcap:
        per_score += SOFTCAP_FLOPS
    extra = per_score * scores
    if sink:
        extra += SINK_FLOPS_PER_ROW * batch * heads * q_len
    return Cost.of_macs(scores * (head_qk + head_v), extra_flops=extra)


def _shared_past_length(ctx: Ctx, length_input: int) -> int:
    """Past length when past and present share one max-length buffer: a runtime value."""
    v = _int_value(ctx, length_input)
    if v is None:
        raise UnknownShape([(f"past_sequence_length of {ctx.name} (past and present share a "
                             f"max-length buffer)")], ctx.name)
    return v


def _rotary_dim(ctx: Ctx, head: int) -> int:
    return int(ctx.attr("rotary_embedding_dim", 0) or 0) or head


# ---------------------------------------------------------------------------------------------
# Attention with the input projection: Attention, QAttention, DecoderMaskedSelfAttention.

def _projected_attention(ctx: Ctx, *, bias: int, mask: int, past: int, attention_bias: int,
                         past_length: Optional[int], projection_extra_per_output: int = 0) -> Cost:
    """Attention that takes the input ``[B, S, D]`` and a packed ``[D, hq + hk + hv]`` weight.

    MACs = B*S*D*(hq + hk + hv) (projection) + B*N*S*(P + S)*(hq/N + hv/N) (scores); the bias
    adds B*S*(hq + hk + hv); ``projection_extra_per_output`` FLOPs per projected value (the
    dequantisation of QAttention); rotary (``do_rotary``) ROPE_FLOPS per rotated element of Q
    and K.
    """
    b, s, d_in = ctx.in_shape(0)
    width = ctx.in_shape(1)[1]
    heads = int(ctx.attr("num_heads"))
    sizes = ctx.attr("qkv_hidden_sizes")
    hq, hk, hv = (int(x) for x in sizes) if sizes else (width // 3,) * 3
    p = 0
    if ctx.has_input(past):
        if not ctx.attr("past_present_share_buffer", 0):
            p = _dim(ctx, past, 3)
        elif past_length is None:
            raise UnknownShape([(f"past length of {ctx.name} (past and present share a "
                                 f"max-length buffer)")], ctx.name)
        else:
            p = _shared_past_length(ctx, past_length)
    projected = b * s * (hq + hk + hv)
    extra = projected * projection_extra_per_output + (projected if ctx.has_input(bias) else 0)
    head_qk, head_v = hq // heads, hv // heads
    if ctx.attr("do_rotary", 0):
        extra += ROPE_FLOPS * b * s * 2 * heads * _rotary_dim(ctx, head_qk)
    masks = int(ctx.has_input(mask) or bool(ctx.attr("unidirectional", 0)))
    masks += int(attention_bias >= 0 and ctx.has_input(attention_bias))
    core = attention_scores(b, heads, s, p + s, head_qk, head_v, masks=masks)
    return Cost.of_macs(b * s * d_in * (hq + hk + hv), extra_flops=extra) + core


@rule("Attention", kind="attention", domain=MS,
      roles={1: WEIGHT, 2: WEIGHT, 3: CONTROL, 4: DATA, 5: CONTROL, 6: CONTROL})
def ms_attention(ctx: Ctx) -> Cost:
    """Multi-head self-attention with its packed QKV input projection.

    input ``[B, S, D]``, weights ``[D, hq + hk + hv]`` (``qkv_hidden_sizes``, else three equal
    parts), optional past ``(2, B, N, P, H)``. MACs = B*S*D*(hq + hk + hv) + B*N*S*(P + S)*(hq/N
    + hv/N); FLOPs add the bias (B*S*(hq + hk + hv)), scale + softmax per score, one add per
    score for a mask (mask_index or unidirectional) and one for attention_bias, and RoPE on Q
    and K with ``do_rotary``. With ``past_present_share_buffer`` P is the value of
    past_sequence_length (input 6), unknown unless constant.
    """
    return _projected_attention(ctx, bias=2, mask=3, past=4, attention_bias=5, past_length=6)


@rule("QAttention", kind="attention", domain=MS,
      roles={1: WEIGHT, 2: WEIGHT, 3: QUANT, 4: QUANT, 5: CONTROL, 6: QUANT, 7: QUANT, 8: DATA})
def q_attention(ctx: Ctx) -> Cost:
    """Quantized Attention: an integer QKV projection, then float attention.

    As com.microsoft Attention (weight ``[D, 3 * hidden]``), plus the zero-point shifts of the
    input and weight when their zero points are given (one per element) and the dequantisation
    of each int32 projection output (DEQUANTIZE_FLOPS per value, before the bias add).
    """
    cost = _projected_attention(ctx, bias=2, mask=5, past=8, attention_bias=-1, past_length=None,
                                projection_extra_per_output=DEQUANTIZE_FLOPS)
    return cost + Cost.of_flops(_zp(ctx, 0, 6) + _zp(ctx, 1, 7))


@rule("DecoderMaskedSelfAttention", kind="attention", domain=MS,
      roles={1: WEIGHT, 2: WEIGHT, 3: CONTROL, 4: DATA, 5: CONTROL, 6: CONTROL, 7: CONTROL,
             8: CONTROL})
def decoder_masked_self_attention(ctx: Ctx) -> Cost:
    """One decoding step of self-attention with the packed QKV projection (S = 1).

    As com.microsoft Attention; past ``(2, B, N, P, H)``, and with ``past_present_share_buffer``
    P is the value of past_sequence_length (input 6).
    """
    return _projected_attention(ctx, bias=2, mask=3, past=4, attention_bias=5, past_length=6)


# ---------------------------------------------------------------------------------------------
# Attention on projected Q, K, V.

def _bias_adds(ctx: Ctx, bias: int, b: int, s: int, kv_len_new: int, heads: int, head_qk: int,
               head_v: int, kv_is_new: bool) -> int:
    """The projection bias added to Q (and to the new K and V)."""
    if not ctx.has_input(bias):
        return 0
    adds = b * s * heads * head_qk
    if kv_is_new:
        adds += b * kv_len_new * heads * (head_qk + head_v)
    return adds


@rule("MultiHeadAttention", kind="attention", domain=MS,
      roles={3: WEIGHT, 4: CONTROL, 5: CONTROL, 6: DATA, 7: DATA, 8: CONTROL, 9: CONTROL})
def multi_head_attention(ctx: Ctx) -> Cost:
    """Multi-head self/cross attention on projected Q, K, V, with the projection bias.

    Query ``[B, S, hidden]`` or packed QKV ``[B, S, N, 3, H]``; key ``[B, L, hidden]``, packed KV
    ``[B, L, N, 2, H]`` or cached ``[B, N, L, H]``; optional past ``[B, N, P, H]``. MACs =
    B*N*S*(P + L)*(H_qk + H_v). FLOPs: the bias (on Q, and on K and V when they are new),
    scale + softmax per score, one add per score for key_padding_mask/unidirectional and one
    for attention_bias. With past_sequence_length (input 8, buffer sharing) P is its value.
    """
    q = ctx.in_shape(0)
    if len(q) == 5:
        b, s, heads, _, head_qk = q
        head_v, kv_new, kv_is_new = head_qk, s, True
    else:
        b, s, hidden = q
        heads = int(ctx.attr("num_heads"))
        head_qk = hidden // heads
        k = ctx.in_shape(1)
        if len(k) == 5:
            kv_new, head_v, kv_is_new = k[1], k[4], True
        elif len(k) == 4:
            kv_new, head_v, kv_is_new = k[2], ctx.in_shape(2)[3], False
        else:
            kv_new, head_v, kv_is_new = k[1], ctx.in_shape(2)[2] // heads, True
    p = 0
    if ctx.has_input(6):
        p = _shared_past_length(ctx, 8) if ctx.has_input(8) else _dim(ctx, 6, 2)
    masks = int(ctx.has_input(4) or bool(ctx.attr("unidirectional", 0))) + int(ctx.has_input(5))
    core = attention_scores(b, heads, s, p + kv_new, head_qk, head_v, masks=masks)
    return core + Cost.of_flops(_bias_adds(ctx, 3, b, s, kv_new, heads, head_qk, head_v, kv_is_new))


@rule("DecoderMaskedMultiHeadAttention", kind="attention", domain=MS,
      roles={3: CONTROL, 4: CONTROL, 5: DATA, 6: DATA, 7: CONTROL, 8: CONTROL, 9: CONTROL,
             10: WEIGHT})
def decoder_masked_multi_head_attention(ctx: Ctx) -> Cost:
    """One decoding step (S = 1) of self or cross attention on projected Q, K, V.

    Self attention: query ``[B, 1, hidden]`` (or packed QKV ``[B, 1, 2*hidden + v_hidden]``),
    key/value ``[B, 1, ...]``, past ``[B, N, P, H]``: kv_len = P + 1, with P the value of
    past_sequence_length (input 7) under ``past_present_share_buffer``. Cross attention: key
    ``[B, N, L, H]``: kv_len = L. MACs = B*N*S*kv_len*2H; FLOPs add the bias, scale + softmax
    per score, one add per score for mask_index and one for attention_bias.
    """
    q = ctx.in_shape(0)
    b, s, width = q
    heads = int(ctx.attr("num_heads"))
    k = ctx.in_shape(1) if ctx.has_input(1) else None
    if k is not None and len(k) == 4:
        head_qk = width // heads
        kv_len, head_v, kv_is_new = k[2], ctx.in_shape(2)[3], False
    else:
        if k is None:  # packed QKV: 2 * hidden + v_hidden, equal sizes
            head_qk = width // 3 // heads
            head_v = head_qk
        else:
            head_qk = width // heads
            head_v = ctx.in_shape(2)[2] // heads
        p = 0
        if ctx.has_input(5):
            p = (_shared_past_length(ctx, 7) if ctx.attr("past_present_share_buffer", 0)
                 else _dim(ctx, 5, 2))
        kv_len, kv_is_new = p + s, True
    masks = int(ctx.has_input(3)) + int(ctx.has_input(4))
    core = attention_scores(b, heads, s, kv_len, head_qk, head_v, masks=masks)
    return core + Cost.of_flops(_bias_adds(ctx, 10, b, s, s, heads, head_qk, head_v, kv_is_new))


def _gqa_kv_length(ctx: Ctx, s: int) -> int:
    """Total key length of GroupQueryAttention: see its rule."""
    total = _int_value(ctx, 6)
    if ctx.attr("sliding_window_cache", 0):
        capacity = _dim(ctx, 3, 2)
        return capacity if total is None else min(total, capacity)
    if total is not None:
        return total
    present = _dim_or_none(ctx, 1, 2, output=True)
    if not ctx.has_input(3):
        return present if present is not None else s
    past = _dim_or_none(ctx, 3, 2)
    if present is not None and (past is None or present != past):
        return present
    if present is not None:  # present as long as past: one shared max-length buffer
        raise UnknownShape([(f"total_sequence_length of {ctx.name} (past and present share a "
                             f"max-length buffer)")], ctx.name)
    return _dim(ctx, 3, 2) + s


@rule("GroupQueryAttention", kind="attention", domain=MS,
      roles={3: DATA, 4: DATA, 5: CONTROL, 6: CONTROL, 7: CONTROL, 8: CONTROL, 9: CONTROL,
             10: CONTROL, 11: WEIGHT, 12: QUANT, 13: QUANT, 14: WEIGHT, 15: WEIGHT, 16: CONTROL})
def group_query_attention(ctx: Ctx) -> Cost:
    """Grouped-query attention with a KV cache (N query heads, N_kv key/value heads).

    Query ``[B, S, N*H]`` (key/value ``[B, S, N_kv*H]``) or packed ``[B, S, (N + 2*N_kv)*H]``.
    kv_len, the total key length: the constant value of total_sequence_length when given; else
    the present_key length when it differs from past_key's; else past length + S; no cache: S.
    A present buffer as long as the past one is a shared max-length buffer whose filled length
    is a runtime value: unknown. ``sliding_window_cache``: at most the cache capacity.
    MACs = B*N*S*kv_len*2H. FLOPs: scale + softmax per score, one add per score for the causal /
    local-window mask and one for attention_bias, the soft cap, SINK_FLOPS_PER_ROW per row with
    head_sink or smooth_softmax; RoPE (``do_rotary``) on Q and the new K; per-head RMS norms of Q
    and K (q/k_norm_weight); with a quantized cache (k/v_scale), quantising the new K, V and
    dequantising the kv_len cached positions read.
    """
    q = ctx.in_shape(0)
    b, s, width = q
    heads, kv_heads = int(ctx.attr("num_heads")), int(ctx.attr("kv_num_heads"))
    head = width // heads if ctx.has_input(1) else width // (heads + 2 * kv_heads)
    kv_len = _gqa_kv_length(ctx, s)
    window = int(ctx.attr("local_window_size", -1)) > 0
    masks = int(bool(ctx.attr("causal", 1)) or window) + int(ctx.has_input(10))
    sink = ctx.has_input(11) or int(ctx.attr("smooth_softmax", -1)) > 0
    softcap = float(ctx.attr("softcap", 0.0)) > 0.0
    cost = attention_scores(b, heads, s, kv_len, head, head, masks=masks, softcap=softcap, sink=sink)
    q_elems, k_elems = b * s * heads * head, b * s * kv_heads * head
    extra = 0
    if ctx.attr("do_rotary", 0):
        rot = 2 * ctx.in_shape(7)[1] if ctx.has_input(7) else head
        extra += ROPE_FLOPS * b * s * (heads + kv_heads) * rot
    if ctx.has_input(14) and ctx.has_input(15):
        extra += RMS_FLOPS * (q_elems + k_elems) + INV_STD_FLOPS_PER_ROW * b * s * (heads + kv_heads)
    if ctx.has_input(12) or ctx.has_input(13):
        extra += 2 * k_elems * QUANTIZE_FLOPS + 2 * b * kv_heads * kv_len * head * DEQUANTIZE_FLOPS
    return cost + Cost.of_flops(extra)


def _packed_lengths(ctx: Ctx, tokens: int, cumulative: int, token_offset: int) -> int:
    """sum over sequences of length^2 for a packed batch.

    Exact from a constant cumulative_sequence_length; otherwise the worst case for ``tokens``
    tokens in sequences of at most S (token_offset is ``[B, S]``): full sequences first,
    ``(T // S) * S^2 + (T % S)^2``.
    """
    cu = ctx.value(cumulative)
    if cu is not None:
        lengths = np.diff(np.asarray(cu, dtype=np.int64).reshape(-1))
        return int((lengths * lengths).sum())
    longest = ctx.in_shape(token_offset)[1]
    ctx.note = "worst case: packed sequences assumed full length (cumulative_sequence_length is runtime)"
    return (tokens // longest) * longest * longest + (tokens % longest) ** 2


@rule("PackedAttention", kind="attention", domain=MS,
      roles={1: WEIGHT, 2: WEIGHT, 3: CONTROL, 4: CONTROL, 5: CONTROL})
def packed_attention(ctx: Ctx) -> Cost:
    """Attention over a packed batch (no padding) with its QKV projection.

    input ``[T, D]``, weights ``[D, hq + hk + hv]``. MACs = T*D*(hq + hk + hv) + N*sum_i(len_i^2)
    *(hq/N + hv/N); the lengths are exact from a constant cumulative_sequence_length, else the
    worst case for T tokens in sequences of at most S (token_offset ``[B, S]``), noted on the
    layer. FLOPs add the bias, scale + softmax per score and one add per score for
    attention_bias.
    """
    t, d_in = ctx.in_shape(0)
    width = ctx.in_shape(1)[1]
    heads = int(ctx.attr("num_heads"))
    sizes = ctx.attr("qkv_hidden_sizes")
    hq, hk, hv = (int(x) for x in sizes) if sizes else (width // 3,) * 3
    pairs = _packed_lengths(ctx, t, 4, 3)
    core = attention_scores(1, heads, 1, pairs, hq // heads, hv // heads, masks=int(ctx.has_input(5)))
    proj = Cost.of_macs(t * d_in * (hq + hk + hv), extra_flops=t * (hq + hk + hv))
    return proj + core


@rule("PackedMultiHeadAttention", kind="attention", domain=MS,
      roles={3: WEIGHT, 4: CONTROL, 5: CONTROL, 6: CONTROL})
def packed_multi_head_attention(ctx: Ctx) -> Cost:
    """MultiHeadAttention over a packed batch: query ``[T, hidden]`` or packed ``[T, N, 3, H]``.

    MACs = N*sum_i(len_i^2)*(H_qk + H_v), lengths as for PackedAttention; FLOPs add the bias
    on Q, K and V, scale + softmax per score and one add per score for attention_bias.
    """
    q = ctx.in_shape(0)
    if len(q) == 4:
        t, heads, _, head_qk = q
        head_v = head_qk
    else:
        t, hidden = q
        heads = int(ctx.attr("num_heads"))
        head_qk = hidden // heads
        head_v = ctx.in_shape(2)[1] // heads
    pairs = _packed_lengths(ctx, t, 5, 4)
    core = attention_scores(1, heads, 1, pairs, head_qk, head_v, masks=int(ctx.has_input(6)))
    bias = t * heads * (2 * head_qk + head_v) if ctx.has_input(3) else 0
    return core + Cost.of_flops(bias)


def _sparse_keys_per_query(row_ptr: np.ndarray, cols: np.ndarray, block: int, total: int,
                           positions: range) -> int:
    """Keys read by queries at ``positions`` of one layout: each reads the blocks of its block
    row, a block holding ``min(block, total - c * block)`` existing keys."""
    keys = 0
    for p in positions:
        r = p // block
        for c in cols[int(row_ptr[r]):int(row_ptr[r + 1])]:
            if c >= 0:
                keys += max(0, min(block, total - int(c) * block))
    return keys


@rule("SparseAttention", kind="attention", domain=MS,
      roles={3: DATA, 4: DATA, 5: CONTROL, 6: CONTROL, 7: CONTROL, 8: CONTROL, 9: CONTROL,
             10: CONTROL})
def sparse_attention(ctx: Ctx) -> Cost:
    """Block-sparse causal attention with a KV cache (Phi-3-small).

    The query at absolute position p (the S new tokens are T - S .. T - 1, T the value of
    total_sequence_length) reads the key blocks of block row ``p // sparse_block_size`` in its
    head's layout (head h uses layout h % num_layout), from the CSR block_row_indices /
    block_col_indices. MACs = B * sum over heads and queries of keys * 2H. Needs the three
    constant inputs; they are otherwise unknown. FLOPs add scale + softmax + the causal mask
    per score and RoPE on Q and the new K with ``do_rotary``.
    """
    q = ctx.in_shape(0)
    b, s, width = q
    heads, kv_heads = int(ctx.attr("num_heads")), int(ctx.attr("kv_num_heads"))
    head = width // heads if ctx.has_input(1) else width // (heads + 2 * kv_heads)
    total = _int_value(ctx, 7)
    row_ptr, cols = ctx.value(5), ctx.value(6)
    if total is None or row_ptr is None or cols is None:
        raise UnknownShape([f"total_sequence_length and block mask values of {ctx.name}"], ctx.name)
    row_ptr, cols = np.atleast_2d(row_ptr), np.atleast_2d(cols)
    block = int(ctx.attr("sparse_block_size"))
    positions = range(total - s, total)
    per_layout = [_sparse_keys_per_query(row_ptr[i], cols[i], block, total, positions)
                  for i in range(row_ptr.shape[0])]
    keys = sum(per_layout[h % len(per_layout)] for h in range(heads))
    scores = b * keys
    extra = (SCORE_SCALE_FLOPS + SOFTMAX_FLOPS + MASK_FLOPS) * scores
    if ctx.attr("do_rotary", 0):
        extra += ROPE_FLOPS * b * s * (heads + kv_heads) * head
    return Cost.of_macs(scores * 2 * head, extra_flops=extra)


@rule("PagedAttention", kind="attention", domain=MS,
      roles={3: DATA, 4: DATA, 5: CONTROL, 6: CONTROL, 7: CONTROL, 8: CONTROL, 9: CONTROL,
             10: CONTROL, 11: WEIGHT, 12: WEIGHT, 13: WEIGHT, 14: QUANT, 15: QUANT, 16: CONTROL})
def paged_attention(ctx: Ctx) -> Cost:
    """Attention over a block-paged KV cache: unknown.

    Each sequence's key length is its past_seqlens entry plus its new tokens, runtime values
    the shapes do not carry (the cache is a pool of blocks shared by all sequences).
    """
    raise UnknownShape([f"past_seqlens values of {ctx.name} (paged KV cache)"], ctx.name)


# ---------------------------------------------------------------------------------------------
# Rotary embeddings.

def _rotary_vectors(ctx: Ctx) -> Tuple[int, int]:
    """``(vectors, head_size)`` of a RotaryEmbedding input: 4-D ``[B, N, S, H]``, or
    ``[..., hidden]`` with ``num_heads`` (else H from the cos cache, ``2 * cos.shape[1]``)."""
    x = ctx.in_shape(0)
    if len(x) == 4:
        return numel(x[:3]), x[3]
    heads = int(ctx.attr("num_heads", 0) or 0)
    if heads:
        head = x[-1] // heads
    else:
        head = 2 * ctx.in_shape(2)[-1]
        heads = x[-1] // head
    return _rows(x) * heads, head


@rule("RotaryEmbedding", "MRotaryEmbedding", kind="attention", domain=MS,
      roles={1: CONTROL, 2: CONTROL, 3: CONTROL})
def ms_rotary_embedding(ctx: Ctx) -> Cost:
    """RoPE of the first ``rotary_embedding_dim`` (default head size) features of every head.

    FLOPs = ROPE_FLOPS * vectors * rotary_dim, as the default-domain RotaryEmbedding; M-RoPE's
    three position streams only change which cache rows are gathered.
    """
    vectors, head = _rotary_vectors(ctx)
    return Cost.of_flops(ROPE_FLOPS * vectors * _rotary_dim(ctx, head))


@rule("GemmaRotaryEmbedding", kind="attention", domain=MS)
def gemma_rotary_embedding(ctx: Ctx) -> Cost:
    """``q * cos(emb) + q_rot * sin(emb)`` and the same for k.

    FLOPs = 2 * numel(emb) (sin, cos) + ROPE_FLOPS * (numel(q) + numel(k)) (2 mul, 1 add each).
    """
    return Cost.of_flops(2 * ELEMENTARY_FLOPS * ctx.in_numel(0)
                         + ROPE_FLOPS * (ctx.in_numel(1) + ctx.in_numel(3)))


@rule("RMSNormRotary", kind="attention", domain=MS,
      roles={1: WEIGHT, 2: CONTROL, 3: CONTROL, 4: CONTROL, 5: CONTROL})
def rms_norm_rotary(ctx: Ctx) -> Cost:
    """RMS norm of a slice of ``width`` features per head, then partial RoPE.

    X ``[B, S, heads, stride]``, width = input_width or stride - input_start; rows = B*S*heads.
    FLOPs = RMS_FLOPS * rows * width + INV_STD_FLOPS_PER_ROW * rows + ROPE_FLOPS * rows *
    rotary_embedding_dim.
    """
    x = ctx.in_shape(0)
    width = int(ctx.attr("input_width", 0) or 0) or x[-1] - int(ctx.attr("input_start", 0) or 0)
    rows = _rows(x)
    rot = int(ctx.attr("rotary_embedding_dim"))
    return Cost.of_flops(RMS_FLOPS * rows * width + INV_STD_FLOPS_PER_ROW * rows + ROPE_FLOPS * rows * rot)


# ---------------------------------------------------------------------------------------------
# Normalisations.

rule("SimplifiedLayerNormalization", kind="norm", domain=DEFAULT_DOMAIN,
     roles={1: WEIGHT})(rms_normalization)


@rule("SkipLayerNormalization", kind="norm", domain=MS, roles={2: WEIGHT, 3: WEIGHT, 4: WEIGHT})
def skip_layer_normalization(ctx: Ctx) -> Cost:
    """``LayerNorm(input + skip [+ bias]) * gamma [+ beta]`` over the hidden size.

    FLOPs = numel (+ skip) [+ numel (+ bias)] + standardize_flops(numel, rows, scale, beta),
    rows = numel / hidden; input_skip_bias_sum is that sum, free.
    """
    x = ctx.in_shape(0)
    n = numel(x)
    adds = n + (n if ctx.has_input(4) else 0)
    return Cost.of_flops(adds + standardize_flops(n, _rows(x), True, ctx.has_input(3)))


@rule("SkipSimplifiedLayerNormalization", kind="norm", domain=MS, roles={2: WEIGHT, 3: WEIGHT})
def skip_simplified_layer_normalization(ctx: Ctx) -> Cost:
    """``RMSNorm(input + skip [+ bias]) * gamma`` over the hidden size.

    FLOPs = numel [+ numel with bias] + RMS_FLOPS * numel + INV_STD_FLOPS_PER_ROW * rows.
    """
    x = ctx.in_shape(0)
    n = numel(x)
    adds = n + (n if ctx.has_input(3) else 0)
    return Cost.of_flops(adds + RMS_FLOPS * n + INV_STD_FLOPS_PER_ROW * _rows(x))


@rule("EmbedLayerNormalization", kind="norm", domain=MS,
      roles={0: CONTROL, 1: CONTROL, 2: WEIGHT, 3: WEIGHT, 4: WEIGHT, 5: WEIGHT, 6: WEIGHT,
             7: CONTROL, 8: CONTROL})
def embed_layer_normalization(ctx: Ctx) -> Cost:
    """BERT embeddings: gather word, position (and segment) rows, add, LayerNorm.

    With T = B*S tokens of ``hidden``: FLOPs = T*hidden per added table (1, or 2 with a
    segment table) + standardize_flops(T*hidden, T, gamma, beta) + T * MASK_INDEX_FLOPS with a
    mask. The three tables, gamma and beta are parameters.
    """
    tokens = ctx.in_numel(0)
    hidden = ctx.in_shape(2)[-1]
    n = tokens * hidden
    flops = n * (2 if ctx.has_input(4) else 1) + standardize_flops(n, tokens, True, True)
    if ctx.has_input(7):
        flops += tokens * MASK_INDEX_FLOPS
    return Cost.of_flops(flops)


@rule("QEmbedLayerNormalization", kind="norm", domain=MS,
      roles={0: CONTROL, 1: CONTROL, 2: WEIGHT, 3: WEIGHT, 4: WEIGHT, 5: WEIGHT, 6: WEIGHT,
             7: CONTROL, **{i: QUANT for i in range(8, 18)}})
def q_embed_layer_normalization(ctx: Ctx) -> Cost:
    """EmbedLayerNormalization on int8 tables: the gathered rows, gamma and beta are dequantised.

    FLOPs = EmbedLayerNormalization's + WEIGHT_DEQUANT_FLOPS per gathered element of each table
    (T*hidden each) and per element of gamma and beta (2 * hidden).
    """
    tokens = ctx.in_numel(0)
    hidden = ctx.in_shape(2)[-1]
    n = tokens * hidden
    tables = 3 if ctx.has_input(4) else 2
    flops = n * (tables - 1) + standardize_flops(n, tokens, True, True)
    flops += WEIGHT_DEQUANT_FLOPS * (tables * n + 2 * hidden)
    if ctx.has_input(7):
        flops += tokens * MASK_INDEX_FLOPS
    return Cost.of_flops(flops)


def _group_norm_flops(ctx: Ctx) -> int:
    x = ctx.in_shape(0)
    n = numel(x)
    flops = standardize_flops(n, x[0] * int(ctx.attr("groups")), True, True)
    if int(ctx.attr("activation", 0)) == 1:
        flops += SILU_FLOPS * n
    return flops


@rule("GroupNorm", kind="norm", domain=MS, roles={1: WEIGHT, 2: WEIGHT})
def ms_group_norm(ctx: Ctx) -> Cost:
    """Group normalisation (NHWC by default) with an optional SiLU.

    FLOPs = standardize_flops(numel, N * groups, gamma, beta) + SILU_FLOPS * numel with
    ``activation=1``; the layout does not change the count.
    """
    return Cost.of_flops(_group_norm_flops(ctx))


@rule("SkipGroupNorm", kind="norm", domain=MS, roles={1: WEIGHT, 2: WEIGHT, 4: WEIGHT})
def skip_group_norm(ctx: Ctx) -> Cost:
    """GroupNorm of ``x + skip [+ bias]``: GroupNorm's FLOPs + numel per added tensor."""
    n = ctx.in_numel(0)
    return Cost.of_flops(_group_norm_flops(ctx) + n + (n if ctx.has_input(4) else 0))


@rule("GatedRMSNorm", kind="norm", domain=MS, roles={1: WEIGHT})
def gated_rms_norm(ctx: Ctx) -> Cost:
    """``RMSNorm(X) * scale * act(gate)`` over groups of C = len(scale) features.

    FLOPs = RMS_FLOPS * numel + INV_STD_FLOPS_PER_ROW * numel / C + numel * (act + 1 multiply),
    act = SILU_FLOPS (silu/swish) or SIGMOID_FLOPS (sigmoid).
    """
    n = ctx.in_numel(0)
    c = ctx.in_shape(1)[-1]
    act = SIGMOID_FLOPS if _str(ctx, "activation", "silu").lower() == "sigmoid" else SILU_FLOPS
    return Cost.of_flops(RMS_FLOPS * n + INV_STD_FLOPS_PER_ROW * (n // c) + n * (act + 1))


@rule("BranchwiseRMSNorm", kind="norm", domain=MS, roles={1: WEIGHT})
def branchwise_rms_norm(ctx: Ctx) -> Cost:
    """RMS norm of each branch of H features (``[..., C, H]``, or ``[..., C*H]`` with num_branches).

    FLOPs = RMS_FLOPS * numel (less the scale multiply without a scale) + INV_STD_FLOPS_PER_ROW
    * numel / H.
    """
    x = ctx.in_shape(0)
    branches = int(ctx.attr("num_branches", 0) or 0)
    h = x[-1] // branches if branches else x[-1]
    n = numel(x)
    per = RMS_FLOPS - (0 if ctx.has_input(1) else NORM_SCALE_FLOPS)
    return Cost.of_flops(per * n + INV_STD_FLOPS_PER_ROW * (n // h))


# ---------------------------------------------------------------------------------------------
# Activations and elementwise fusions.

@rule("FastGelu", kind="activation", domain=MS, roles={1: WEIGHT})
def fast_gelu(ctx: Ctx) -> Cost:
    """tanh-approximated GELU of ``X [+ bias]``: numel * (GELU_TANH_FLOPS [+ 1])."""
    n = ctx.in_numel(0)
    return Cost.of_flops(n * (GELU_TANH_FLOPS + (1 if ctx.has_input(1) else 0)))


@rule("BiasGelu", kind="activation", domain=MS, roles={1: WEIGHT})
def bias_gelu(ctx: Ctx) -> Cost:
    """Exact GELU of ``A + B``: numel * (1 + GELU_ERF_FLOPS)."""
    return Cost.of_flops(ctx.in_numel(0) * (1 + GELU_ERF_FLOPS))


@rule("Gelu", kind="activation", domain=MS)
def ms_gelu(ctx: Ctx) -> Cost:
    """Exact (erf) GELU: numel * GELU_ERF_FLOPS."""
    return Cost.of_flops(ctx.in_numel(0) * GELU_ERF_FLOPS)


@rule("QuickGelu", "ScaledSiLU", kind="activation", domain=MS, roles={1: CONTROL})
def quick_gelu(ctx: Ctx) -> Cost:
    """``x * sigmoid(alpha * x)``: QuickGelu, and ScaledSiLU (``z * sigmoid(z)``, z = scale * x).

    FLOPs = numel * SWISH_FLOPS, the default-domain Swish.
    """
    return Cost.of_flops(ctx.in_numel(0) * SWISH_FLOPS)


@rule("BiasAdd", kind="elementwise", domain=MS, roles={1: WEIGHT})
def bias_add(ctx: Ctx) -> Cost:
    """``X + bias + skip``: 2 adds per element."""
    return Cost.of_flops(2 * ctx.in_numel(0))


@rule("BiasSoftmax", kind="softmax", domain=MS, roles={1: CONTROL})
def bias_softmax(ctx: Ctx) -> Cost:
    """``softmax(scores + bias)``: numel * (1 + SOFTMAX_FLOPS); the bias is a mask (CONTROL)."""
    return Cost.of_flops(ctx.in_numel(0) * (1 + SOFTMAX_FLOPS))


@rule("BiasSplitGelu", kind="activation", domain=MS, roles={1: WEIGHT})
def bias_split_gelu(ctx: Ctx) -> Cost:
    """``(X + bias)`` split in halves L, R, then ``L * gelu(R)``.

    FLOPs = numel(X) + numel(X)/2 * (GELU_ERF_FLOPS + 1).
    """
    n = ctx.in_numel(0)
    return Cost.of_flops(n + n // 2 * (GELU_ERF_FLOPS + 1))


@rule("BiasDropout", "BitmaskBiasDropout", kind="elementwise", domain=MS,
      roles={1: WEIGHT, 3: CONTROL, 4: CONTROL})
def bias_dropout(ctx: Ctx) -> Cost:
    """``Dropout(data + bias) [+ residual]``: one add per element per added tensor.

    FLOPs = numel [+ numel with the residual]; the dropout is counted as the default-domain
    Dropout (an identity at inference).
    """
    n = ctx.in_numel(0)
    return Cost.of_flops(n * (1 + (1 if ctx.has_input(2) else 0)))


@rule("SwiGLU", kind="activation", domain=MS)
def ms_swiglu(ctx: Ctx) -> Cost:
    """Clamped SwiGLU of gate and up (or of one ``[.., 2*inter]`` projection split in halves).

    FLOPs = numel(output) * swiglu_flops: SWIGLU_FLOPS, + 1 for a nonzero activation_beta,
    + 3 clamp bounds when ``limit`` > 0.
    """
    n = ctx.in_numel(0) if ctx.has_input(1) else ctx.in_numel(0) // 2
    return Cost.of_flops(n * swiglu_flops(ctx))


@rule("GatedAdd", kind="elementwise", domain=MS, roles={3: WEIGHT})
def gated_add(ctx: Ctx) -> Cost:
    """``X + Y * g`` per row; projected mode ``g = sigmoid(gate . gate_weight)``.

    FLOPs = 2 * numel(X); projected: + rows * K MACs and rows * SIGMOID_FLOPS.
    """
    n = ctx.in_numel(0)
    if not ctx.has_input(3):
        return Cost.of_flops(2 * n)
    gate = ctx.in_shape(2)
    rows = _rows(gate)
    return Cost.of_macs(rows * gate[-1], extra_flops=2 * n + rows * SIGMOID_FLOPS)


@rule("LinearAttentionGate", kind="activation", domain=MS, roles={1: WEIGHT, 2: WEIGHT})
def linear_attention_gate(ctx: Ctx) -> Cost:
    """``decay = decay_scale * softplus(a + dt_bias)`` [and ``beta = sigmoid(b)``].

    FLOPs = numel(a) * SOFTPLUS_GATE_FLOPS [+ numel(b) * SIGMOID_FLOPS].
    """
    flops = ctx.in_numel(0) * SOFTPLUS_GATE_FLOPS
    if ctx.has_input(3):
        flops += ctx.in_numel(3) * SIGMOID_FLOPS
    return Cost.of_flops(flops)


@rule("ComplexMul", "ComplexMulConj", kind="elementwise", domain=MS)
def complex_mul(ctx: Ctx) -> Cost:
    """Broadcast complex product of ``[..., 2]`` tensors (ComplexMulConj: by the conjugate).

    FLOPs = numel(C) / 2 * COMPLEX_MUL_FLOPS.
    """
    return Cost.of_flops(_broadcast_numel(ctx, 0, 1) // 2 * COMPLEX_MUL_FLOPS)


@rule("MulInteger", kind="elementwise", domain=MS, roles={1: QUANT, 3: QUANT})
def mul_integer(ctx: Ctx) -> Cost:
    """``(A - A_zp) * (B - B_zp)`` into int32: the zero-point shifts + 1 multiply per output."""
    return Cost.of_flops(_broadcast_numel(ctx, 0, 2) + _zp(ctx, 0, 1) + _zp(ctx, 2, 3))


@rule("IsAllFinite", kind="reduce", domain=MS)
def is_all_finite(ctx: Ctx) -> Cost:
    """Whether every element of every input is finite: ALL_FINITE_FLOPS per element."""
    return Cost.of_flops(ALL_FINITE_FLOPS * sum(ctx.in_numel(i) for i in range(len(ctx.inputs))
                                               if ctx.has_input(i)))


@rule("ReduceSumInteger", kind="reduce", domain=MS)
def reduce_sum_integer(ctx: Ctx) -> Cost:
    """Integer sum over ``axes``: numel(X) - numel(reduced) adds."""
    x = ctx.in_shape(0)
    axes = ctx.attr("axes") or range(len(x))
    reduced = numel([x[a % len(x)] for a in axes])
    n = numel(x)
    return Cost.of_flops(n - n // reduced if reduced else 0)


# ---------------------------------------------------------------------------------------------
# Convolutions and pooling.

def _nhwc_conv(ctx: Ctx) -> Tuple[int, int]:
    """``(MACs, outputs)`` of a channels-last convolution. NhwcConv's weight is
    ``[M, kH, kW, C/group]`` (as onnxruntime's ``fusion_nhwc_conv.py`` writes it),
    NhwcFusedConv's ``[M, C/group, kH, kW]``; either way a MAC count is outputs times the
    product of the weight's non-leading dims."""
    w = ctx.in_shape(1)
    out = _out_raw(ctx, 0)
    if out is not None:
        outputs = numel(out)
    else:
        x = ctx.in_shape(0)
        nchw = (x[0], x[-1], *x[1:-1])
        kernel = ctx.attr("kernel_shape") or (w[1:-1] if ctx.op_type == "NhwcConv" else w[2:])
        spatial = conv_out_spatial(dataclasses.replace(ctx, outputs=[None]), nchw, kernel)
        outputs = x[0] * w[0] * numel(spatial)
    return outputs * numel(w[1:]), outputs


def _fused_conv_extra(ctx: Ctx, outputs: int) -> int:
    extra = outputs if ctx.has_input(2) else 0
    if ctx.has_input(3):
        extra += outputs
    return extra + outputs * fused_activation_flops(_str(ctx, "activation", ""))


@rule("FusedConv", kind="conv", domain=MS, roles={1: WEIGHT, 2: WEIGHT})
def fused_conv(ctx: Ctx) -> Cost:
    """``activation(Conv(X, W) + B + Z)``.

    Conv's MACs; per output element the bias, the Z add and ``fused_activation_flops``.
    """
    outputs = conv_outputs(ctx)
    return Cost.of_macs(conv_macs(ctx), extra_flops=_fused_conv_extra(ctx, outputs))


@rule("NhwcConv", kind="conv", domain=MS, roles={1: WEIGHT, 2: WEIGHT})
def nhwc_conv(ctx: Ctx) -> Cost:
    """Conv on ``[N, H, W, C]`` data with an ``[M, kH, kW, C/group]`` weight.

    MACs = outputs * (C/group) * prod(kernel), outputs = N * M * prod(out spatial); the bias
    adds one FLOP per output.
    """
    macs, outputs = _nhwc_conv(ctx)
    return Cost.of_macs(macs, extra_flops=outputs if ctx.has_input(2) else 0)


@rule("NhwcFusedConv", kind="conv", domain=MS, roles={1: WEIGHT, 2: WEIGHT})
def nhwc_fused_conv(ctx: Ctx) -> Cost:
    """NhwcConv + Z add + activation, as FusedConv."""
    macs, outputs = _nhwc_conv(ctx)
    return Cost.of_macs(macs, extra_flops=_fused_conv_extra(ctx, outputs))


rule("NhwcMaxPool", kind="pool", domain=MS)(max_pool)
rule("MaxpoolWithMask", kind="pool", domain=MS, roles={1: CONTROL})(max_pool)
rule("GridSample", kind="resize", domain=MS)(grid_sample)


@rule("CausalConvWithState", kind="conv", domain=MS, roles={1: WEIGHT, 2: WEIGHT, 3: CONTROL})
def ms_causal_conv_with_state(ctx: Ctx) -> Cost:
    """Stateful causal depthwise convolution, 1-D to 3-D (``ndim``), either layout.

    MACs = outputs * prod(kernel) (weight ``(C, 1, k...)``); the bias adds one FLOP per output
    and a fused silu/swish SILU_FLOPS; the state is a copy.
    """
    outputs = numel(_out_raw(ctx, 0) or ctx.in_shape(0))
    k = numel(ctx.in_shape(1)[2:])
    extra = outputs if ctx.has_input(2) else 0
    if _str(ctx, "activation", "none").lower() in ("silu", "swish"):
        extra += SILU_FLOPS * outputs
    return Cost.of_macs(outputs * k, extra_flops=extra)


@rule("VarlenCausalConvWithState", kind="conv", domain=MS,
      roles={1: WEIGHT, 2: CONTROL, 3: WEIGHT, 4: DATA, 5: CONTROL, 6: DATA, 7: DATA})
def varlen_causal_conv_with_state(ctx: Ctx) -> Cost:
    """CausalConvWithState over a packed ``[T, C]`` batch.

    MACs = T*C*k; + T*C for the bias (input 3), SILU_FLOPS per output fused; the CUDA dynamic
    mode (kernel_delta) adds the two tap deltas and the previous_mask multiply: 3 per output.
    """
    outputs = ctx.in_numel(0)
    k = ctx.in_shape(1)[-1]
    extra = outputs if ctx.has_input(3) else 0
    if _str(ctx, "activation", "none").lower() in ("silu", "swish"):
        extra += SILU_FLOPS * outputs
    if ctx.has_input(6):
        extra += 3 * outputs
    return Cost.of_macs(outputs * k, extra_flops=extra)


@rule("ConvTransposeWithDynamicPads", kind="conv", domain=MS, roles={1: WEIGHT, 2: CONTROL, 3: WEIGHT})
def conv_transpose_dynamic_pads(ctx: Ctx) -> Cost:
    """ConvTranspose whose pads are input 2 (its bias is input 3).

    MACs = N * Cin * prod(in spatial) * (Cout/group) * prod(kernel); the bias adds one FLOP per
    output element (output spatial from the output shape, else from the constant pads).
    """
    x, w = ctx.in_shape(0), ctx.in_shape(1)
    macs = x[0] * numel(x[2:]) * numel(w)
    bias = 0
    if ctx.has_input(3):
        out = _out_raw(ctx, 0)
        if out is None:
            pads = ctx.value(2)
            attrs = dict(ctx.attrs)
            if pads is not None:
                attrs["pads"] = [int(p) for p in np.asarray(pads).reshape(-1)]
            elif ctx.has_input(2):
                raise UnknownShape([f"pads of {ctx.name}"], ctx.name)
            spatial = conv_transpose_out_spatial(dataclasses.replace(ctx, attrs=attrs), x, w[2:])
            out = (x[0], w[1] * int(ctx.attr("group", 1)), *spatial)
        bias = numel(out)
    return Cost.of_macs(macs, extra_flops=bias)


@rule("CropAndResize", kind="resize", domain=MS, roles={1: CONTROL, 2: CONTROL, 3: CONTROL})
def crop_and_resize(ctx: Ctx) -> Cost:
    """Crops of the feature map resized to ``[crop_h, crop_w]``.

    FLOPs = numel(Y) * interp_flops of 2x2 taps (bilinear, 9), 0 for nearest; Y is
    ``[num_rois, C, crop_h, crop_w]`` (crop_size must be constant when Y's shape is unknown).
    """
    taps = INTERP_TAPS[_str(ctx, "mode", "bilinear").lower()]
    if taps == 0:
        return Cost()
    out = _out_raw(ctx, 0)
    if out is None:
        size = ctx.value(3)
        if size is None:
            raise UnknownShape([f"crop_size of {ctx.name}"], ctx.name)
        size = [int(v) for v in np.asarray(size).reshape(-1)]
        out = (ctx.in_shape(1)[0], ctx.in_shape(0)[1], *size)
    return Cost.of_flops(numel(out) * interp_flops([taps, taps]))


# ---------------------------------------------------------------------------------------------
# Matrix products.

def _fused_matmul_shapes(ctx: Ctx) -> Tuple[List[int], List[int]]:
    """Operand shapes after transBatchA/B (first dim moved before the last two) and transA/B."""
    shapes = []
    for i, tb, t in ((0, "transBatchA", "transA"), (1, "transBatchB", "transB")):
        s = list(ctx.in_shape(i))
        if ctx.attr(tb, 0) and len(s) > 2:
            s = s[1:-1] + [s[0], s[-1]]
        if ctx.attr(t, 0) and len(s) >= 2:
            s[-1], s[-2] = s[-2], s[-1]
        shapes.append(s)
    return shapes[0], shapes[1]


def _fused_matmul_cost(ctx: Ctx) -> Tuple[int, int]:
    a, b = _fused_matmul_shapes(ctx)
    batch, m, n, k = matmul_dims(a, b)
    outputs = numel(batch) * m * n
    return outputs * k, outputs


@rule("FusedMatMul", "TransposeMatMul", kind="matmul", domain=MS, roles={1: WEIGHT})
def fused_matmul(ctx: Ctx) -> Cost:
    """``alpha * op(A) @ op(B)``, op transposing the last two dims (and the batch dims).

    transBatchA/B move the first dim after the other batch dims. MACs = prod(batch) * M * N * K
    of the transposed operands; + M*N*prod(batch) multiplies when alpha != 1.
    """
    macs, outputs = _fused_matmul_cost(ctx)
    return Cost.of_macs(macs, extra_flops=outputs if float(ctx.attr("alpha", 1.0)) != 1.0 else 0)


@rule("FusedMatMulActivation", kind="matmul", domain=MS, roles={1: WEIGHT})
def fused_matmul_activation(ctx: Ctx) -> Cost:
    """FusedMatMul, then ``fused_activation_flops(activation)`` per output element."""
    macs, outputs = _fused_matmul_cost(ctx)
    extra = outputs if float(ctx.attr("alpha", 1.0)) != 1.0 else 0
    extra += outputs * fused_activation_flops(_str(ctx, "activation", ""))
    return Cost.of_macs(macs, extra_flops=extra)


@rule("FusedGemm", kind="matmul", domain=MS, roles={1: WEIGHT, 2: WEIGHT})
def fused_gemm(ctx: Ctx) -> Cost:
    """Gemm (alpha, beta, C as the default domain), then the activation per output element."""
    m, n, _ = gemm_dims(ctx)
    return gemm(ctx) + Cost.of_flops(m * n * fused_activation_flops(_str(ctx, "activation", "")))


@rule("GemmFastGelu", kind="matmul", domain=MS, roles={1: WEIGHT, 2: WEIGHT})
def gemm_fast_gelu(ctx: Ctx) -> Cost:
    """``FastGelu(X @ W [+ bias])``: MatMul's MACs; per output the bias and GELU_TANH_FLOPS."""
    outputs = matmul_outputs(ctx)
    extra = outputs * (GELU_TANH_FLOPS + (1 if ctx.has_input(2) else 0))
    return Cost.of_macs(matmul_macs(ctx), extra_flops=extra)


@rule("GemmFloat8", kind="matmul", domain=MS,
      roles={1: WEIGHT, 2: WEIGHT, 3: QUANT, 4: QUANT, 5: QUANT})
def gemm_float8(ctx: Ctx) -> Cost:
    """Gemm for float and float 8: ``act(alpha * op(A) op(B) + beta * C)`` (beta defaults to 0).

    MACs = M*N*K; per output: alpha (!= 1), one multiply by the input scales when scaleA or
    scaleB is given, C's add (and multiply when beta != 1) when beta != 0, the activation (RELU
    RELU_FLOPS, GELU GELU_ERF_FLOPS) and QUANTIZE_FLOPS with scaleY.
    """
    m, n, k = gemm_dims(ctx)
    mn = m * n
    per = 1 if float(ctx.attr("alpha", 1.0)) != 1.0 else 0
    if ctx.has_input(3) or ctx.has_input(4):
        per += 1
    beta = float(ctx.attr("beta", 0.0))
    if ctx.has_input(2) and beta != 0.0:
        per += 1 if beta == 1.0 else 2
    per += {"RELU": RELU_FLOPS, "GELU": GELU_ERF_FLOPS}.get(_str(ctx, "activation", "NONE").upper(), 0)
    if ctx.has_input(5):
        per += QUANTIZE_FLOPS
    return Cost.of_macs(mn * k, extra_flops=mn * per)


@rule("RouterGateUpProj", kind="matmul", domain=MS, roles={1: WEIGHT})
def router_gate_up_proj(ctx: Ctx) -> Cost:
    """One GEMM ``X @ W`` (N = router_size + 2*inter), then SwiGLU of the gate/up halves.

    MACs = rows * K * N; FLOPs add rows * inter * swiglu_flops.
    """
    x, w = ctx.in_shape(0), ctx.in_shape(1)
    rows = _rows(x)
    inter = (w[1] - int(ctx.attr("router_size"))) // 2
    return Cost.of_macs(rows * x[-1] * w[1], extra_flops=rows * inter * swiglu_flops(ctx))


# ---------------------------------------------------------------------------------------------
# Quantized contractions.

@rule("MatMulInteger16", kind="matmul", domain=MS, roles={1: WEIGHT})
def matmul_integer16(ctx: Ctx) -> Cost:
    """int16 MatMul into int32: MACs = prod(batch) * M * N * K."""
    return Cost.of_macs(matmul_macs(ctx))


@rule("MatMulIntegerToFloat", kind="matmul", domain=MS,
      roles={1: WEIGHT, 2: QUANT, 3: QUANT, 4: QUANT, 5: QUANT, 6: WEIGHT})
def matmul_integer_to_float(ctx: Ctx) -> Cost:
    """Integer MatMul, dequantised to float, + bias.

    MACs as MatMul; FLOPs add the zero-point shifts of A and B (when given), DEQUANTIZE_FLOPS
    per output (``* a_scale * b_scale``) and the bias.
    """
    outputs = matmul_outputs(ctx)
    extra = _zp(ctx, 0, 4) + _zp(ctx, 1, 5) + outputs * DEQUANTIZE_FLOPS
    if ctx.has_input(6):
        extra += outputs
    return Cost.of_macs(matmul_macs(ctx), extra_flops=extra)


@rule("DynamicQuantizeMatMul", kind="matmul", domain=MS,
      roles={1: WEIGHT, 2: QUANT, 3: QUANT, 4: WEIGHT})
def dynamic_quantize_matmul(ctx: Ctx) -> Cost:
    """Integer MatMul of a dynamically quantised A and a quantized B, dequantised, + bias.

    A is quantised as DynamicQuantizeLinear does. MACs as MatMul; FLOPs: numel(A) *
    (DYNAMIC_QUANTIZE_FLOPS + ZERO_POINT_FLOPS) + DYNAMIC_SCALAR_FLOPS, B's zero-point shift
    when given, DEQUANTIZE_FLOPS per output, bias.
    """
    a = ctx.in_numel(0)
    outputs = matmul_outputs(ctx)
    extra = a * (DYNAMIC_QUANTIZE_FLOPS + ZERO_POINT_FLOPS) + DYNAMIC_SCALAR_FLOPS
    extra += _zp(ctx, 1, 3) + outputs * DEQUANTIZE_FLOPS + (outputs if ctx.has_input(4) else 0)
    return Cost.of_macs(matmul_macs(ctx), extra_flops=extra)


@rule("QGemm", kind="matmul", domain=MS,
      roles={1: QUANT, 2: QUANT, 3: WEIGHT, 4: QUANT, 5: QUANT, 6: WEIGHT, 7: QUANT, 8: QUANT})
def q_gemm(ctx: Ctx) -> Cost:
    """Quantized Gemm, requantised (y_scale given) or dequantised to float.

    ``op(A - a_zp) op(B - b_zp)`` in int32 [+ C]. MACs = M*N*K; FLOPs add the zero-point shifts
    of A and B, M*N for C, and per output REQUANTIZE_FLOPS (quantized output) or
    DEQUANTIZE_FLOPS (float output); alpha folds into that one output scale.
    """
    a, b = ctx.in_shape(0), ctx.in_shape(3)
    m, k = (a[1], a[0]) if ctx.attr("transA", 0) else (a[0], a[1])
    n = b[0] if ctx.attr("transB", 0) else b[1]
    mn = m * n
    extra = _zp(ctx, 0, 2) + _zp(ctx, 3, 5) + (mn if ctx.has_input(6) else 0)
    extra += mn * (REQUANTIZE_FLOPS if ctx.has_input(7) else DEQUANTIZE_FLOPS)
    return Cost.of_macs(mn * k, extra_flops=extra)


def _nbits_matmul(ctx: Ctx, k: int, n: int, bias: int, per_weight: int) -> Cost:
    """``A [..., K] @ dequant(B)^T [K, N]`` (+ bias): rows*K*N MACs, per_weight FLOPs per weight."""
    rows = _rows(ctx.in_shape(0))
    extra = k * n * per_weight + (rows * n if bias >= 0 and ctx.has_input(bias) else 0)
    return Cost.of_macs(rows * n * k, extra_flops=extra)


@rule("MatMulNBits", kind="matmul", domain=MS,
      roles={1: WEIGHT, 2: QUANT, 3: QUANT, 4: CONTROL, 5: WEIGHT})
def matmul_nbits(ctx: Ctx) -> Cost:
    """MatMul with a block-quantized 2..8-bit weight: packed B ``[N, k_blocks, blob_size]``.

    Parameters: K*N (the logical weight), while the file stores the packed blob. MACs =
    rows(A) * N * K; FLOPs add WEIGHT_DEQUANT_FLOPS per weight (``(q - zp) * scale``, the zero
    point defaulting to 2^(bits-1)), once per call, and the bias (rows * N). An empty B (a 0 in
    its shape) is an omitted projection: no weights, no arithmetic.
    """
    k, n = int(ctx.attr("K")), int(ctx.attr("N"))
    packed = _raw_shape(ctx, 1)
    if packed is not None and numel(packed) == 0:
        ctx.logical_params[1] = 0
        return Cost()
    ctx.logical_params[1] = k * n
    return _nbits_matmul(ctx, k, n, 5, WEIGHT_DEQUANT_FLOPS)


@rule("MatMulBnb4", kind="matmul", domain=MS, roles={1: WEIGHT, 2: QUANT})
def matmul_bnb4(ctx: Ctx) -> Cost:
    """MatMul with an FP4/NF4 weight (bitsandbytes): B is ``[(N*K + 1) / 2]`` uint8.

    Parameters: K*N. MACs = rows(A) * N * K; FLOPs add DEQUANTIZE_FLOPS per weight (the 4-bit
    code's value times its block's absmax), once per call.
    """
    k, n = int(ctx.attr("K")), int(ctx.attr("N"))
    ctx.logical_params[1] = k * n
    return _nbits_matmul(ctx, k, n, -1, DEQUANTIZE_FLOPS)


@rule("MatMulFpQ4", kind="matmul", domain=MS, roles={1: WEIGHT, 2: CONTROL})
def matmul_fpq4(ctx: Ctx) -> Cost:
    """MatMul with a pre-packed int4 blob whose logical ``[K, N]`` is the B_shape input.

    Parameters: K*N; MACs = rows(A) * N * K; FLOPs add DEQUANTIZE_FLOPS per weight (+ the zero
    point for blk_quant_type 1). Needs B_shape as a constant.
    """
    shape = ctx.value(2)
    if shape is None:
        raise UnknownShape([f"B_shape of {ctx.name}"], ctx.name)
    k, n = (int(v) for v in np.asarray(shape).reshape(-1)[-2:])
    ctx.logical_params[1] = k * n
    per = DEQUANTIZE_FLOPS + (ZERO_POINT_FLOPS if int(ctx.attr("blk_quant_type", 1)) == 1 else 0)
    return _nbits_matmul(ctx, k, n, -1, per)


@rule("MatMulBlockQuantizedFp4Weight", kind="matmul", domain=MS,
      roles={1: WEIGHT, 2: QUANT, 3: QUANT, 4: QUANT, 5: WEIGHT})
def matmul_fp4_weight(ctx: Ctx) -> Cost:
    """Weight-only NVFP4: B ``[N, K/2]`` uint8, two E2M1 values per byte.

    Parameters: N*K. MACs = rows(A) * N * K; FLOPs add 2 * DEQUANTIZE_FLOPS per weight (the
    per-block and the global scale) and the bias.
    """
    b = ctx.in_shape(1)
    n, k = b[0], 2 * b[1]
    ctx.logical_params[1] = n * k
    return _nbits_matmul(ctx, k, n, 5, 2 * DEQUANTIZE_FLOPS)


@rule("MatMulBlockQuantizedFp8Weight", kind="matmul", domain=MS,
      roles={1: WEIGHT, 2: QUANT, 3: QUANT, 4: WEIGHT})
def matmul_fp8_weight(ctx: Ctx) -> Cost:
    """MatMul with a block-scaled FP8 weight ``[N, K]``.

    MACs = rows(A) * N * K; FLOPs add DEQUANTIZE_FLOPS per weight, the bias and, with a_scale
    (W8A8), ``QUANTIZE_FLOPS + DEQUANTIZE_FLOPS`` per element of A.
    """
    n, k = ctx.in_shape(1)
    cost = _nbits_matmul(ctx, k, n, 4, DEQUANTIZE_FLOPS)
    if ctx.has_input(3):
        cost = cost + Cost.of_flops(ctx.in_numel(0) * (QUANTIZE_FLOPS + DEQUANTIZE_FLOPS))
    return cost


@rule("MatMulNBitsQLoRA", kind="matmul", domain=MS,
      roles={1: WEIGHT, 2: QUANT, 3: WEIGHT, 4: QUANT, 5: WEIGHT, 6: QUANT})
def matmul_nbits_qlora(ctx: Ctx) -> Cost:
    """``X W^T + (X A^T) B^T``: a block-quantized base weight and a quantized LoRA adapter.

    W is ``[N, K]``, A ``[R, K]``, B ``[N, R]`` (R from lora_A_scales). Parameters: K*N + R*K +
    N*R (an empty adapter holds 0). MACs = rows * (N*K + R*K + N*R); FLOPs add
    WEIGHT_DEQUANT_FLOPS per weight of each non-empty matrix and rows * N for the sum.
    """
    k, n = int(ctx.attr("K")), int(ctx.attr("N"))
    r = ctx.in_shape(4)[0]
    empty_a = numel(_raw_shape(ctx, 3) or (1,)) == 0
    empty_b = numel(_raw_shape(ctx, 5) or (1,)) == 0
    ctx.logical_params.update({1: k * n, 3: 0 if empty_a else r * k, 5: 0 if empty_b else n * r})
    rows = _rows(ctx.in_shape(0))
    weights = k * n + (0 if empty_a else r * k) + (0 if empty_b else n * r)
    macs = rows * k * n
    extra = weights * WEIGHT_DEQUANT_FLOPS
    if not empty_b:
        macs += rows * (r * k + n * r)
        extra += rows * n
    return Cost.of_macs(macs, extra_flops=extra)


def _norm_prologue(ctx: Ctx, skip: int, scale: int) -> int:
    """The optional fused (Skip)SimplifiedLayerNormalization of A."""
    if not ctx.has_input(scale):
        return 0
    a = ctx.in_shape(0)
    n = numel(a)
    return (n if ctx.has_input(skip) else 0) + RMS_FLOPS * n + INV_STD_FLOPS_PER_ROW * _rows(a)


_MLP_ACTIVATIONS = {"silu": SILU_FLOPS, "swish": SILU_FLOPS, "gelu": GELU_ERF_FLOPS,
                    "gelu_tanh": GELU_TANH_FLOPS, "fastgelu": GELU_TANH_FLOPS, "relu": RELU_FLOPS,
                    "quickgelu": SWISH_FLOPS, "relu2": RELU2_FLOPS, "relu_squared": RELU2_FLOPS,
                    "identity": 0}


@rule("MatMulNBitsMlp", kind="matmul", domain=MS,
      roles={2: WEIGHT, 3: WEIGHT, 4: QUANT, 5: WEIGHT, 6: WEIGHT, 7: QUANT, 8: WEIGHT})
def matmul_nbits_mlp(ctx: Ctx) -> Cost:
    """``act(A' W_gate^T + b) * (A' W_up^T + b)``, A' optionally RMS-normalised (with skip).

    Parameters: 2*K*N. MACs = 2 * rows * K * N; FLOPs: the norm, WEIGHT_DEQUANT_FLOPS per
    weight, the biases, and rows * N * (activation + 1 multiply).
    """
    k, n = int(ctx.attr("K")), int(ctx.attr("N"))
    ctx.logical_params.update({3: k * n, 6: k * n})
    rows = _rows(ctx.in_shape(0))
    act = _str(ctx, "activation", "silu").lower()
    if act not in _MLP_ACTIVATIONS:
        raise ValueError(f"unknown MatMulNBitsMlp activation {act!r}")
    extra = _norm_prologue(ctx, 1, 2) + 2 * k * n * WEIGHT_DEQUANT_FLOPS
    extra += rows * n * (int(ctx.has_input(5)) + int(ctx.has_input(8)) + _MLP_ACTIVATIONS[act] + 1)
    return Cost.of_macs(2 * rows * k * n, extra_flops=extra)


@rule("MatMulNBitsQkv", kind="matmul", domain=MS,
      roles={2: WEIGHT, 3: WEIGHT, 4: QUANT, 5: WEIGHT, 6: WEIGHT, 7: QUANT, 8: WEIGHT,
             9: WEIGHT, 10: QUANT, 11: WEIGHT})
def matmul_nbits_qkv(ctx: Ctx) -> Cost:
    """RMSNorm (with skip) of A, then three block-quantized projections of Nq, Nkv, Nkv columns.

    Parameters: K*(Nq + 2*Nkv). MACs = rows * K * (Nq + 2*Nkv); FLOPs: the norm,
    WEIGHT_DEQUANT_FLOPS per weight, the biases.
    """
    k, nq, nkv = int(ctx.attr("K")), int(ctx.attr("Nq")), int(ctx.attr("Nkv"))
    ctx.logical_params.update({3: k * nq, 6: k * nkv, 9: k * nkv})
    rows = _rows(ctx.in_shape(0))
    width = nq + 2 * nkv
    extra = _norm_prologue(ctx, 1, 2) + k * width * WEIGHT_DEQUANT_FLOPS
    extra += rows * sum(w for w, i in ((nq, 5), (nkv, 8), (nkv, 11)) if ctx.has_input(i))
    return Cost.of_macs(rows * k * width, extra_flops=extra)


@rule("MatMulPacked", kind="matmul", domain=MS, roles={1: WEIGHT, 2: QUANT})
def matmul_packed(ctx: Ctx) -> Cost:
    """``A @ dequant(B)^T`` with a block-packed ``[N, row_bytes]`` weight of logical ``[N, K]``.

    Parameters: K*N. MACs = rows * K * N; FLOPs add DEQUANTIZE_FLOPS per weight, rows * N for
    global_scale, and the epilogue activation (relu2, silu) per output.
    """
    k, n = int(ctx.attr("K")), int(ctx.attr("N"))
    ctx.logical_params[1] = k * n
    cost = _nbits_matmul(ctx, k, n, -1, DEQUANTIZE_FLOPS)
    rows = _rows(ctx.in_shape(0))
    act = _str(ctx, "activation_type", "none").lower()
    per = (1 if ctx.has_input(2) else 0) + _MLP_ACTIVATIONS.get(act, 0)
    return cost + Cost.of_flops(rows * n * per)


@rule("GatherPacked", kind="data", domain=MS, roles={0: WEIGHT, 1: CONTROL})
def gather_packed(ctx: Ctx) -> Cost:
    """Rows of a packed ``[vocab, row_bytes]`` table of logical ``[vocab, K]``, dequantised.

    Parameters: vocab * K; FLOPs = DEQUANTIZE_FLOPS per gathered element (numel(indices) * K).
    """
    k = int(ctx.attr("K"))
    table = _raw_shape(ctx, 0)
    if table is not None:
        ctx.logical_params[0] = table[0] * k
    return Cost.of_flops(ctx.in_numel(1) * k * DEQUANTIZE_FLOPS)


_FLOAT_CODES = frozenset(getattr(TensorProto, n) for n in (
    "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "FLOAT4E2M1")
    if hasattr(TensorProto, n))


@rule("GatherBlockQuantized", kind="data", domain=MS, roles={0: WEIGHT, 1: CONTROL, 2: QUANT, 3: QUANT})
def gather_block_quantized(ctx: Ctx) -> Cost:
    """Gather from a block-quantized table, dequantising what is gathered.

    Parameters: the logical table: numel(data), times ``8 / bits`` for uint8 data packed along
    its last dim (bits < 8). FLOPs = gathered elements * (DEQUANTIZE_FLOPS + ZERO_POINT_FLOPS
    for integer codes, whose zero point defaults to 0 or 2^(bits-1); FP8/FP4 have none).
    """
    dtype = ctx.inputs[0].dtype if ctx.has_input(0) else 0
    bits = int(ctx.attr("bits", 4))
    logical = list(ctx.in_shape(0))
    if dtype == TensorProto.UINT8 and bits < 8:
        logical[-1] = logical[-1] * 8 // bits
        ctx.logical_params[0] = numel(logical)
    axis = int(ctx.attr("gather_axis", 0)) % len(logical)
    gathered = ctx.in_numel(1) * (numel(logical) // logical[axis] if logical[axis] else 0)
    per = DEQUANTIZE_FLOPS + (0 if dtype in _FLOAT_CODES else ZERO_POINT_FLOPS)
    return Cost.of_flops(gathered * per)


@rule("DynamicQuantizeLSTM", kind="recurrent", domain=MS,
      roles={1: WEIGHT, 2: WEIGHT, 3: WEIGHT, 4: CONTROL, 5: CONTROL, 6: CONTROL, 7: WEIGHT,
             8: QUANT, 9: QUANT, 10: QUANT, 11: QUANT})
def dynamic_quantize_lstm(ctx: Ctx) -> Cost:
    """LSTM with int8 W ``[dirs, input, 4*hidden]`` and R ``[dirs, hidden, 4*hidden]``.

    The default-domain LSTM count (every gate, direction and step), plus the quantisation: X
    (once per direction) and H_{t-1} (every step) are quantised dynamically
    (DYNAMIC_QUANTIZE_FLOPS + ZERO_POINT_FLOPS per element, DYNAMIC_SCALAR_FLOPS per tensor), W
    and R are shifted by their zero points once, and both int32 products of every gate are
    dequantised (DEQUANTIZE_FLOPS each).
    """
    x = ctx.in_shape(0)
    r = ctx.in_shape(2)
    hidden = int(ctx.attr("hidden_size", 0) or 0) or r[1]
    dirs = 2 if _str(ctx, "direction", "forward") == "bidirectional" else 1
    seq, batch, inp = x
    lstm = dataclasses.replace(ctx, op_type="LSTM", attrs={**ctx.attrs, "hidden_size": hidden,
                                                           "layout": 0})
    cost = recurrent(lstm)
    per_act = DYNAMIC_QUANTIZE_FLOPS + ZERO_POINT_FLOPS
    extra = dirs * (seq * batch * inp + seq * batch * hidden) * per_act
    extra += dirs * (1 + seq) * DYNAMIC_SCALAR_FLOPS
    extra += ZERO_POINT_FLOPS * (ctx.in_numel(1) + ctx.in_numel(2))
    extra += 2 * dirs * seq * batch * 4 * hidden * DEQUANTIZE_FLOPS
    return cost + Cost.of_flops(extra)


# ---------------------------------------------------------------------------------------------
# QLinear elementwise, pooling and softmax: DequantizeLinear of the inputs, the float op,
# QuantizeLinear of the output (the semantics the schemas state).

@rule("QLinearAdd", "QLinearMul", kind="quant", domain=MS,
      roles={1: QUANT, 2: QUANT, 4: QUANT, 5: QUANT, 6: QUANT, 7: QUANT})
def qlinear_binary(ctx: Ctx) -> Cost:
    """``quantize(dequantize(A) op dequantize(B))``, broadcast.

    FLOPs = DequantizeLinear of A and of B (zero points when given) + numel(C) * (1 +
    QUANTIZE_FLOPS [+ 1 with C's zero point]).
    """
    out = _broadcast_numel(ctx, 0, 3)
    return Cost.of_flops(_dequant(ctx, 0, 2) + _dequant(ctx, 3, 5) + out + _quant(ctx, out, 7))


_QLINEAR_UNARY = {"QLinearSigmoid": SIGMOID_FLOPS, "QLinearLeakyRelu": LEAKY_RELU_FLOPS,
                  "QLinearSoftmax": SOFTMAX_FLOPS}


@rule(*_QLINEAR_UNARY, kind="quant", domain=MS, roles={1: QUANT, 2: QUANT, 3: QUANT, 4: QUANT})
def qlinear_unary(ctx: Ctx) -> Cost:
    """``quantize(f(dequantize(X)))`` for f = Sigmoid, LeakyRelu, Softmax.

    FLOPs = DequantizeLinear of X + numel * (the default-domain constant of f + QUANTIZE_FLOPS
    [+ 1 with Y's zero point]).
    """
    n = ctx.in_numel(0)
    return Cost.of_flops(_dequant(ctx, 0, 2) + n * _QLINEAR_UNARY[ctx.op_type] + _quant(ctx, n, 4))


@rule("QLinearAveragePool", kind="quant", domain=MS, roles={1: QUANT, 2: QUANT, 3: QUANT, 4: QUANT})
def qlinear_average_pool(ctx: Ctx) -> Cost:
    """Dequantize -> AveragePool -> Quantize.

    FLOPs = DequantizeLinear of X + outputs * prod(kernel) + QuantizeLinear of the outputs.
    """
    outputs = ctx.out_numel(0)
    return Cost.of_flops(_dequant(ctx, 0, 2) + outputs * kernel_elems(ctx) + _quant(ctx, outputs, 4))


@rule("QLinearGlobalAveragePool", kind="quant", domain=MS,
      roles={1: QUANT, 2: QUANT, 3: QUANT, 4: QUANT})
def qlinear_global_average_pool(ctx: Ctx) -> Cost:
    """Dequantize -> GlobalAveragePool -> Quantize, either layout.

    FLOPs = DequantizeLinear of X + numel(X) (the means) + QuantizeLinear of the N*C outputs.
    """
    x = ctx.in_shape(0)
    planes = x[0] * (x[-1] if ctx.attr("channels_last", 0) else x[1])
    return Cost.of_flops(_dequant(ctx, 0, 2) + numel(x) + _quant(ctx, planes, 4))


@rule("QLinearReduceMean", kind="quant", domain=MS, roles={1: QUANT, 2: QUANT, 3: QUANT, 4: QUANT})
def qlinear_reduce_mean(ctx: Ctx) -> Cost:
    """Dequantize -> ReduceMean -> Quantize.

    FLOPs = DequantizeLinear of X + numel(X) (each mean of n values is n - 1 adds and a
    divide) + QuantizeLinear of the outputs.
    """
    x = ctx.in_shape(0)
    axes = ctx.attr("axes") or range(len(x))
    outputs = numel(x) // max(numel([x[a % len(x)] for a in axes]), 1)
    return Cost.of_flops(_dequant(ctx, 0, 2) + numel(x) + _quant(ctx, outputs, 4))


@rule("QLinearWhere", kind="quant", domain=MS,
      roles={0: CONTROL, 2: QUANT, 3: QUANT, 5: QUANT, 6: QUANT, 7: QUANT, 8: QUANT})
def qlinear_where(ctx: Ctx) -> Cost:
    """Where on dequantised X and Y, quantised to Z.

    FLOPs = the two DequantizeLinears + numel(Z) * (WHERE_FLOPS + QUANTIZE_FLOPS + 1).
    """
    out = _broadcast_numel(ctx, 0, 1, 4)
    return Cost.of_flops(_dequant(ctx, 1, 3) + _dequant(ctx, 4, 6) + out * WHERE_FLOPS + _quant(ctx, out, 8))


_QCONCAT_ROLES = {0: QUANT, 1: QUANT, **{i: QUANT for i in range(2, 2 + 3 * 1024) if (i - 2) % 3}}


@rule("QLinearConcat", kind="quant", domain=MS, roles=_QCONCAT_ROLES)
def qlinear_concat(ctx: Ctx) -> Cost:
    """Concat of (tensor, scale, zero point) triples into Y's quantisation.

    An input whose scale and zero point equal Y's is copied; any other (or any whose values are
    not constants) is requantised, REQUANTIZE_FLOPS per element.
    """
    y_scale, y_zp = ctx.value(0), ctx.value(1)
    flops = 0
    for i in range(2, len(ctx.inputs), 3):
        if not ctx.has_input(i):
            continue
        scale, zp = ctx.value(i + 1), ctx.value(i + 2)
        same = (y_scale is not None and scale is not None and y_zp is not None and zp is not None
                and np.array_equal(scale, y_scale) and np.array_equal(zp, y_zp))
        if not same:
            flops += ctx.in_numel(i) * REQUANTIZE_FLOPS
    return Cost.of_flops(flops)


@rule("QLinearConv", kind="conv", domain=MS,
      roles={1: QUANT, 2: QUANT, 3: WEIGHT, 4: QUANT, 5: QUANT, 6: QUANT, 7: QUANT, 8: WEIGHT})
def ms_qlinear_conv(ctx: Ctx) -> Cost:
    """The default-domain QLinearConv count; with ``channels_last`` the data is NHWC.

    MACs = outputs * (Cin/group) * prod(kernel); FLOPs add the zero-point shifts of x and w, the
    bias and REQUANTIZE_FLOPS per output.
    """
    if not ctx.attr("channels_last", 0):
        return qlinear_conv(ctx)
    nhwc = dataclasses.replace(ctx, inputs=[ctx.inputs[0], ctx.inputs[3]])
    macs, outputs = _nhwc_conv(nhwc)
    extra = _zp(ctx, 0, 2) + _zp(ctx, 3, 5) + REQUANTIZE_FLOPS * outputs
    if ctx.has_input(8):
        extra += outputs
    return Cost.of_macs(macs, extra_flops=extra)


rule("QuantizeLinear", kind="quant", domain=MS, roles={1: QUANT, 2: QUANT})(quantize_linear)
rule("DequantizeLinear", kind="quant", domain=MS, roles={0: WEIGHT, 1: QUANT, 2: QUANT})(dequantize_linear)


@rule("QuantizeWithOrder", kind="quant", domain=MS, roles={1: QUANT})
def quantize_with_order(ctx: Ctx) -> Cost:
    """Symmetric int8 quantisation into a cuBLASLt layout: numel * QUANTIZE_FLOPS."""
    return Cost.of_flops(ctx.in_numel(0) * QUANTIZE_FLOPS)


@rule("DequantizeWithOrder", kind="quant", domain=MS, roles={0: WEIGHT, 1: QUANT})
def dequantize_with_order(ctx: Ctx) -> Cost:
    """Symmetric int8 dequantisation from a cuBLASLt layout: numel * DEQUANTIZE_FLOPS."""
    return Cost.of_flops(ctx.in_numel(0) * DEQUANTIZE_FLOPS)


@rule("QOrderedGelu", kind="quant", domain=MS, roles={1: QUANT, 2: QUANT})
def q_ordered_gelu(ctx: Ctx) -> Cost:
    """Gelu on int8 data: dequantise, exact GELU, quantise (symmetric, no zero points).

    FLOPs = numel * (DEQUANTIZE_FLOPS + GELU_ERF_FLOPS + QUANTIZE_FLOPS).
    """
    return Cost.of_flops(ctx.in_numel(0) * (DEQUANTIZE_FLOPS + GELU_ERF_FLOPS + QUANTIZE_FLOPS))


@rule("QOrderedLayerNormalization", kind="quant", domain=MS,
      roles={1: QUANT, 2: WEIGHT, 3: WEIGHT, 4: QUANT})
def q_ordered_layer_normalization(ctx: Ctx) -> Cost:
    """LayerNormalization on int8 data, over axes ``[axis, rank)``: dequantise, normalise, quantise.

    FLOPs = numel * (DEQUANTIZE_FLOPS + QUANTIZE_FLOPS) + standardize_flops(numel, rows, scale,
    B), rows = prod(X[:axis]).
    """
    x = ctx.in_shape(0)
    n = numel(x)
    axis = int(ctx.attr("axis", -1)) % len(x)
    return Cost.of_flops(n * (DEQUANTIZE_FLOPS + QUANTIZE_FLOPS)
                         + standardize_flops(n, numel(x[:axis]), True, ctx.has_input(3)))


# ---------------------------------------------------------------------------------------------
# Mixture of experts.

_EXPERT_ACTIVATIONS = {"relu": RELU_FLOPS, "gelu": GELU_ERF_FLOPS, "silu": SILU_FLOPS,
                       "identity": 0, "relu2": RELU2_FLOPS, "relu_squared": RELU2_FLOPS,
                       "geglu": GEGLU_FLOPS}


def _expert_activation(ctx: Ctx, default: str = "relu") -> Tuple[str, int]:
    """``(name, FLOPs per intermediate element)`` of the expert activation."""
    act = _str(ctx, "activation_type", default).lower()
    if act == "swiglu":
        return act, swiglu_flops(ctx, limit_attr="swiglu_limit")
    if act not in _EXPERT_ACTIVATIONS:
        raise ValueError(f"unknown MoE activation_type {act!r}")
    return act, _EXPERT_ACTIVATIONS[act]


def router_flops(experts: int, k: int, normalize: bool) -> int:
    """Per token: softmax over the experts, top-k as TopK counts it (experts * (floor(log2 k)
    + 1) compares) and, when normalising, k - 1 adds and k divides."""
    flops = SOFTMAX_FLOPS * experts + experts * int(k).bit_length()
    if normalize:
        flops += 2 * k - 1
    return flops


def moe_cost(tokens: int, hidden: int, inter: int, experts: int, k: int, fc1_rows: int,
             fc3: bool, biases: Sequence[bool], act_flops: int, normalize: bool) -> Cost:
    """``tokens`` tokens, each through ``k`` experts.

    Per token and selected expert: MACs = hidden*fc1_rows (FC1) + inter*hidden (FC2)
    [+ inter*hidden (separate FC3)], extra FLOPs = the biases of FC1, FC2, FC3 and
    ``act_flops`` per intermediate element. Per token: k*hidden MACs combining the expert
    outputs with their routing weights and :func:`router_flops`.
    """
    macs = hidden * fc1_rows + inter * hidden + (inter * hidden if fc3 else 0)
    extra = sum(size for size, b in zip((fc1_rows, hidden, inter), biases) if b)
    extra += inter * act_flops
    total_macs = tokens * (k * macs + k * hidden)
    per_token = k * extra + router_flops(experts, k, normalize)
    return Cost.of_macs(total_macs, extra_flops=tokens * per_token)


def _fc1_rows(act: str, inter: int, fused: int) -> int:
    return 2 * inter if act in ("swiglu", "geglu") and fused else inter


@rule("MoE", kind="moe", domain=MS,
      roles={1: DATA, 2: WEIGHT, 3: WEIGHT, 4: WEIGHT, 5: WEIGHT, 6: WEIGHT, 7: WEIGHT})
def moe(ctx: Ctx) -> Cost:
    """Mixture of experts: each token runs its top-``k`` experts (``moe_cost``).

    fc1 ``[E, fusion*inter, hidden]`` (fusion 2 for fused SwiGLU/GEGLU, ``swiglu_fusion`` 1 or 2),
    fc2 ``[E, hidden, inter]``, fc3 ``[E, inter, hidden]`` the separate up projection. Parameters
    count every expert; MACs only the ``k`` selected per token.
    """
    x = ctx.in_shape(0)
    hidden = x[-1]
    experts, _, inter = ctx.in_shape(4)
    act, act_flops = _expert_activation(ctx)
    rows = _fc1_rows(act, inter, int(ctx.attr("swiglu_fusion", 0)))
    return moe_cost(_rows(x), hidden, inter, experts, int(ctx.attr("k", 1)), rows, ctx.has_input(6),
                    (ctx.has_input(3), ctx.has_input(5), ctx.has_input(7)), act_flops,
                    bool(ctx.attr("normalize_routing_weights", 0)))


_QMOE_FP4 = ("fp4", "nvfp4", "wfp4afp8")


@rule("QMoE", kind="moe", domain=MS,
      roles={1: DATA, 2: WEIGHT, 3: QUANT, 4: WEIGHT, 5: WEIGHT, 6: QUANT, 7: WEIGHT, 8: WEIGHT,
             9: QUANT, 10: WEIGHT, 11: QUANT, 12: QUANT, 13: QUANT, 14: DATA, 15: QUANT, 16: QUANT,
             17: QUANT, 18: QUANT, 19: QUANT, 20: QUANT})
def qmoe(ctx: Ctx) -> Cost:
    """MoE with quantized expert weights: MoE's count + dequantising every expert's weights.

    Parameters: the logical weights, numel(packed) * 8 / bits for each of fc1, fc2, fc3 (bits:
    the fc*_expert_weight_bits or expert_weight_bits for 'int', 8 for 'fp8', 4 for the FP4
    types). The dequantisation, as the DequantizeLinear of each expert weight in the unfused
    graph, costs once per call: WEIGHT_DEQUANT_FLOPS per weight for 'int', DEQUANTIZE_FLOPS for
    'fp8', 2 * DEQUANTIZE_FLOPS (block and global scale) for the FP4 types.
    """
    qtype = _str(ctx, "quant_type", "int").lower()
    base = int(ctx.attr("expert_weight_bits", 4))
    logical: Dict[int, int] = {}
    for idx, fc in ((2, "fc1"), (5, "fc2"), (8, "fc3")):
        shape = _raw_shape(ctx, idx)
        if shape is None:
            continue
        bits = 8 if qtype == "fp8" else 4 if qtype in _QMOE_FP4 else \
            int(ctx.attr(f"{fc}_expert_weight_bits", 0) or 0) or base
        logical[idx] = numel(shape) * 8 // bits
    ctx.logical_params.update(logical)
    x = ctx.in_shape(0)
    hidden = x[-1]
    experts = ctx.in_shape(2)[0]
    if 2 not in logical or 5 not in logical:
        raise UnknownShape([f"expert weight shapes of {ctx.name}"], ctx.name)
    fc1_rows = logical[2] // (experts * hidden)
    inter = logical[5] // (experts * hidden)
    _, act_flops = _expert_activation(ctx)
    cost = moe_cost(_rows(x), hidden, inter, experts, int(ctx.attr("k", 1)), fc1_rows,
                    ctx.has_input(8), (ctx.has_input(4), ctx.has_input(7), ctx.has_input(10)),
                    act_flops, bool(ctx.attr("normalize_routing_weights", 0)))
    per = WEIGHT_DEQUANT_FLOPS if qtype == "int" else DEQUANTIZE_FLOPS if qtype == "fp8" \
        else 2 * DEQUANTIZE_FLOPS
    return cost + Cost.of_flops(sum(logical.values()) * per)


@rule("MoEPacked", kind="moe", domain=MS,
      roles={1: DATA, 2: WEIGHT, 3: WEIGHT, 4: WEIGHT, 5: DATA})
def moe_packed(ctx: Ctx) -> Cost:
    """MoE on block-packed gate ``[E, inter, bytes]``, up (swiglu) and down ``[E, hidden, bytes]``.

    Parameters: E*inter*hidden per packed gate/up/down weight. MoE's count (SwiGLU with separate
    gate and up, or relu2 without up; routing normalised by default) + DEQUANTIZE_FLOPS per
    weight, once per call.
    """
    x = ctx.in_shape(0)
    hidden = x[-1]
    experts, inter, _ = ctx.in_shape(2)
    weights = {2: experts * inter * hidden, 4: experts * hidden * inter}
    if ctx.has_input(3):
        weights[3] = experts * inter * hidden
    ctx.logical_params.update(weights)
    _, act_flops = _expert_activation(ctx, default="swiglu")
    cost = moe_cost(_rows(x), hidden, inter, experts, int(ctx.attr("k", 1)), inter,
                    ctx.has_input(3), (False, False, False), act_flops,
                    bool(ctx.attr("normalize_routing_weights", 1)))
    return cost + Cost.of_flops(sum(weights.values()) * DEQUANTIZE_FLOPS)


# ---------------------------------------------------------------------------------------------
# Linear attention and state-space pieces.

@rule("LinearAttention", kind="attention", domain=MS, roles={3: CONTROL})
def ms_linear_attention(ctx: Ctx) -> Cost:
    """The default-domain LinearAttention count; with inverse GQA (kv_num_heads > q_num_heads)
    each of the kv heads is read out, adding ``(kv - q) * d_k * d_v`` MACs and ``(kv - q) * d_v``
    output scalings per token."""
    cost = linear_attention(ctx)
    q_heads, kv_heads = int(ctx.attr("q_num_heads")), int(ctx.attr("kv_num_heads"))
    if kv_heads > q_heads:
        q = ctx.in_shape(0)
        tokens, d_k, d_v = q[0] * q[1], q[2] // q_heads, ctx.in_shape(2)[2] // kv_heads
        extra = kv_heads - q_heads
        cost = cost + Cost.of_macs(tokens * extra * d_k * d_v,
                                   extra_flops=tokens * extra * d_v * OUTPUT_SCALE_FLOPS)
    return cost


@rule("GatedDeltaNet", kind="attention", domain=MS,
      roles={3: CONTROL, 6: DATA, 7: WEIGHT, 8: WEIGHT, 9: CONTROL, 10: CONTROL})
def gated_delta_net(ctx: Ctx) -> Cost:
    """Token-major gated delta network, counted token by token as the recurrence defines it.

    Per token, with Hv value heads and a ``Dk x Dv`` state each: MACs = Hv*Dk*Dv (write
    ``k (x) delta``) + Hv*Dk*Dv (read ``S^T q``) [+ Hv*Dk*Dv (delta rules: ``S^T k``)];
    FLOPs add OUTPUT_SCALE_FLOPS * Hv*Dv, [gated: DECAY_EXP_FLOPS per decay value + Hv*Dk*Dv
    decay multiplies, + the fused gate: SOFTPLUS_GATE_FLOPS or SIGMOID_GATE_FLOPS per decay
    value], [delta: DELTA_FLOPS * Hv*Dv, + SIGMOID_FLOPS per beta with beta_activation
    'sigmoid'], [qk_l2_norm: the L2 norm and division of each of the Hq + Hk query/key vectors].
    """
    q = ctx.in_shape(0)
    if ctx.has_input(1):
        tokens, hq, dk = numel(q[:-2]), q[-2], q[-1]
        hk = ctx.in_shape(1)[-2]
        v = ctx.in_shape(2)
        hv, dv = v[-2], v[-1]
    else:
        _, hv, dv, dk = ctx.in_shape(6)
        tokens = _rows(q)
        hq = hk = (q[-1] - hv * dv) // (2 * dk)
    update = _str(ctx, "update_rule", "gated_delta")
    state = hv * dk * dv
    read = max(hq, hv)
    macs = state + read * dk * dv
    extra = OUTPUT_SCALE_FLOPS * read * dv
    if update in ("gated", "gated_delta"):
        decay = ctx.in_numel(4) // tokens
        gate = _str(ctx, "gate_activation", "none").lower()
        gate_flops = SOFTPLUS_GATE_FLOPS if gate in ("softplus", "qwen") else \
            SIGMOID_GATE_FLOPS if gate in ("sigmoid", "kda") else 0
        extra += (DECAY_EXP_FLOPS + gate_flops) * decay + DECAY_STATE_FLOPS * state
    if update in ("delta", "gated_delta"):
        macs += state
        extra += DELTA_FLOPS * hv * dv
        if _str(ctx, "beta_activation", "none").lower() == "sigmoid":
            extra += SIGMOID_FLOPS * hv
    if ctx.attr("qk_l2_norm", 0):
        extra += (hq + hk) * (lp_norm_flops(2, dk) + LP_DIVIDE_FLOPS * dk)
    return Cost.of_macs(tokens * macs, extra_flops=tokens * extra)


@rule("HyperConnectionPreMix", kind="elementwise", domain=MS, roles={1: DATA})
def hyper_connection_pre_mix(ctx: Ctx) -> Cost:
    """``Y[..., h] = reduction_scale * sum_c X[..., c, h] * pre_mix[..., c, h]``.

    MACs = numel(X) (a contraction over the C branches); + numel(Y) multiplies when
    reduction_scale != 1.
    """
    x = ctx.in_shape(0)
    branches = int(ctx.attr("num_branches", 0) or 0) or x[-2]
    n = numel(x)
    scale = n // branches if float(ctx.attr("reduction_scale", 1.0)) != 1.0 else 0
    return Cost.of_macs(n, extra_flops=scale)


@rule("HyperConnectionPostMix", kind="elementwise", domain=MS, roles={2: DATA, 3: DATA})
def hyper_connection_post_mix(ctx: Ctx) -> Cost:
    """``Y[k, h] = sum_c stream_mix[c, k] * streams[c, h] + post_mix[k, h] * block_output[h]``.

    MACs = numel(Y) * C with stream_mix (identity without); FLOPs add 2 per output (the
    injection's multiply and add).
    """
    x = ctx.in_shape(0)
    branches = int(ctx.attr("num_branches", 0) or 0) or x[-2]
    n = numel(x)
    return Cost.of_macs(n * branches if ctx.has_input(3) else 0, extra_flops=2 * n)


@rule("HyperConnectionLowRankMix", kind="elementwise", domain=MS,
      roles={1: WEIGHT, 2: WEIGHT, 3: WEIGHT, 4: WEIGHT})
def hyper_connection_low_rank_mix(ctx: Ctx) -> Cost:
    """One hyper-connection block with a rank-R gate network, per row of C*H stream features.

    MACs per row = C*H*R (down) + R*C*H (up) + C*H (sum over branches) + C*H*C (inject);
    FLOPs per row add the prologue (2*C*H with prev_block_output), the per-branch RMS norm
    (RMS_FLOPS*C*H + INV_STD_FLOPS_PER_ROW*C), ScaledSiLU (SWISH_FLOPS*R), the gate sigmoids
    (SIGMOID_FLOPS*C*H), reduction_scale (H, when != 1) and the post gate (C * (SIGMOID_FLOPS +
    1 for gate_div != 1 + 1 for gate_mul != 1)).
    """
    x = ctx.in_shape(0)
    c = int(ctx.attr("num_branches"))
    width = x[-1]
    h = width // c
    r = ctx.in_shape(2)[-1]
    rows = _rows(x)
    macs = width * r + r * width + width + width * c
    extra = RMS_FLOPS * width + INV_STD_FLOPS_PER_ROW * c + SWISH_FLOPS * r + SIGMOID_FLOPS * width
    if ctx.has_input(5):
        extra += 2 * width
    if float(ctx.attr("reduction_scale", 1.0)) != 1.0:
        extra += h
    extra += c * (SIGMOID_FLOPS + int(float(ctx.attr("gate_div", 1.0)) != 1.0)
                  + int(float(ctx.attr("gate_mul", 1.0)) != 1.0))
    return Cost.of_macs(rows * macs, extra_flops=rows * extra)


@rule("EngramGate", kind="elementwise", domain=MS, roles={3: WEIGHT, 4: WEIGHT, 5: WEIGHT})
def engram_gate(ctx: Ctx) -> Cost:
    """Engram gate over rows = B*S*hc key/query vectors of H features.

    MACs = rows*H (the key . query dot products); FLOPs add the two RMS norms (RMS_FLOPS*rows*H
    + INV_STD_FLOPS_PER_ROW*rows each), ENGRAM_GATE_FLOPS per row, rows*H gate * value
    multiplies, and a third RMS norm when gated_value_normed is produced.
    """
    k = ctx.in_shape(0)
    rows, h = _rows(k), k[-1]
    norm = RMS_FLOPS * rows * h + INV_STD_FLOPS_PER_ROW * rows
    extra = 2 * norm + ENGRAM_GATE_FLOPS * rows + rows * h
    if ctx.has_output(1):
        extra += norm
    return Cost.of_macs(rows * h, extra_flops=extra)


@rule("GatedRelativePositionBias", kind="attention", domain=MS,
      roles={1: WEIGHT, 2: DATA, 3: WEIGHT, 4: WEIGHT, 5: WEIGHT, 6: CONTROL})
def gated_relative_position_bias(ctx: Ctx) -> Cost:
    """Gated relative position bias: ``gate_u_1 * rel_pos`` with gates from a small linear.

    With T query tokens, N heads of size Hs, gate width D and rel_pos ``[1, N, S, S]``: MACs =
    T*N*Hs*D (gate_ur_linear); FLOPs add the query bias (T*N*Hs), the linear's bias (T*N*D),
    the pairwise sums (T*N*(D - 2)), GATE_UR_FLOPS per (token, head) and B*N*S*S multiplies.
    """
    q = ctx.in_shape(0)
    tokens = _rows(q)
    heads = int(ctx.attr("num_heads"))
    hs, d = ctx.in_shape(3)
    rel = ctx.in_shape(2)
    batch = q[0] if len(q) == 3 else tokens // rel[-1]
    per_row = tokens * heads
    extra = tokens * q[-1] + per_row * d + per_row * (d - 2) + per_row * GATE_UR_FLOPS
    extra += batch * heads * rel[-2] * rel[-1]
    return Cost.of_macs(per_row * hs * d, extra_flops=extra)


# ---------------------------------------------------------------------------------------------
# Linear algebra, signal processing, distances.

@rule("Inverse", kind="linalg", domain=MS)
def inverse(ctx: Ctx) -> Cost:
    """Inverse of ``[*, n, n]`` matrices: LU with partial pivoting, then the n unit columns.

    Per matrix: LU (n-1)n(2n-1)/6 MACs, forward substitution of the unit columns (zeros above
    the diagonal skipped) (n-1)n(n+1)/6, back substitution n*n(n-1)/2: n^2 (n-1) MACs in all,
    the classical n^3. Extra FLOPs: n(n-1)/2 pivot compares, n(n-1)/2 multiplier divisions and
    n^2 pivot divisions in the back substitution: 2n^2 - n.
    """
    x = ctx.in_shape(0)
    n = x[-1]
    batch = numel(x[:-2])
    return Cost.of_macs(batch * n * n * (n - 1), batch * (2 * n * n - n))


def _multi_fft_flops(dims: Sequence[int], last_real: bool) -> int:
    """FLOPs of a d-dimensional transform of ``dims`` with a real last axis: the real FFT along
    the last axis, then complex FFTs along the others over the n_last//2 + 1 half spectrum."""
    n_last = dims[-1]
    half = n_last // 2 + 1
    flops = numel(dims[:-1]) * fft_flops(n_last, real=last_real)
    for i, n in enumerate(dims[:-1]):
        others = numel([d for j, d in enumerate(dims[:-1]) if j != i]) * half
        flops += others * fft_flops(n, real=False)
    return flops


@rule("Rfft", kind="signal", domain=MS)
def rfft(ctx: Ctx) -> Cost:
    """One-sided FFT of a real signal over its last ``signal_ndim`` dims.

    As ``fft_flops`` counts it: 2.5 n log2 n along the last axis, then 5 n log2 n along each
    other axis over the half spectrum.
    """
    x = ctx.in_shape(0)
    d = int(ctx.attr("signal_ndim", 1))
    return Cost.of_flops(numel(x[:-d]) * _multi_fft_flops(x[-d:], last_real=True))


@rule("Irfft", kind="signal", domain=MS)
def irfft(ctx: Ctx) -> Cost:
    """Inverse of Rfft, ``[..., n//2 + 1, 2]`` to ``[..., n]``.

    n from the output shape, else 2 * (m - 1). FLOPs = Rfft's count + IDFT_SCALE_FLOPS per
    output (the 1/n).
    """
    x = ctx.in_shape(0)
    d = int(ctx.attr("signal_ndim"))
    out = _out_raw(ctx, 0)
    dims = list(x[-d - 1:-1])
    dims[-1] = out[-1] if out is not None else 2 * (dims[-1] - 1)
    batch = numel(x[:-d - 1])
    return Cost.of_flops(batch * _multi_fft_flops(dims, last_real=True)
                         + batch * numel(dims) * IDFT_SCALE_FLOPS)


@rule("CDist", kind="matmul", domain=MS)
def cdist(ctx: Ctx) -> Cost:
    """Pairwise distances of A ``[M, N]`` and B ``[K, N]`` (sqeuclidean or euclidean).

    Per pair: N differences and N multiply-adds of their squares: MACs = M*K*N, extra FLOPs =
    M*K*N subtractions (+ M*K square roots for euclidean).
    """
    m, n = ctx.in_shape(0)
    k = ctx.in_shape(1)[0]
    extra = m * k * n * ELEMENTARY_FLOPS
    if _str(ctx, "metric", "sqeuclidean") == "euclidean":
        extra += m * k * ELEMENTARY_FLOPS
    return Cost.of_macs(m * k * n, extra_flops=extra)


@rule("DynamicTimeWarping", kind="signal", domain=MS)
def dynamic_time_warping(ctx: Ctx) -> Cost:
    """Dynamic time warping over an M x N cost matrix.

    FLOPs = M * N * DTW_FLOPS_PER_CELL; the backtrack is index logic.
    """
    x = ctx.in_shape(0)
    return Cost.of_flops(x[-2] * x[-1] * DTW_FLOPS_PER_CELL)


@rule("NGramRepeatBlock", kind="text", domain=MS, roles={0: CONTROL})
def ngram_repeat_block(ctx: Ctx) -> Cost:
    """Ban the tokens that would repeat an n-gram already generated.

    Per batch row, each of the S - n + 1 earlier n-gram starts is compared with the last n - 1
    tokens (worst case, all compared): FLOPs = B * max(S - n + 1, 0) * (n - 1).
    """
    b, s = ctx.in_shape(0)
    n = int(ctx.attr("ngram_size"))
    return Cost.of_flops(b * max(s - n + 1, 0) * (n - 1))


# ---------------------------------------------------------------------------------------------
# No arithmetic: data movement, shape logic, copies.

zero_cost("Range", kind="constant", domain=MS,
          why="generates an index sequence from scalars (CONTROL)",
          roles={0: CONTROL, 1: CONTROL, 2: CONTROL})
zero_cost("Trilu", kind="data", domain=MS, why="keeps a triangle and zeroes the rest; k is CONTROL",
          roles={1: CONTROL})
zero_cost("Pad", kind="data", domain=MS,
          why="copies the input into a larger tensor of constant, edge or reflected values; pads "
              "and value are CONTROL", roles={1: CONTROL, 2: CONTROL})
zero_cost("GatherND", kind="data", domain=MS,
          why="copies the slices named by the indices (CONTROL)", roles={1: CONTROL})
zero_cost("Unique", kind="data", domain=MS, why="index and selection logic over the values, no arithmetic")
zero_cost("ExpandDims", kind="shape", domain=MS, why="inserts a dimension; the axis is CONTROL",
          roles={1: CONTROL})
zero_cost("TorchEmbedding", kind="data", domain=MS,
          why="gathers rows of the embedding table (a parameter); indices, padding_idx and "
              "scale_grad_by_freq are CONTROL", roles={0: WEIGHT, 1: CONTROL, 2: CONTROL, 3: CONTROL})
zero_cost("BitmaskDropout", kind="data", domain=MS,
          why="an identity at inference, as Dropout; ratio and training_mode are CONTROL",
          roles={1: CONTROL, 2: CONTROL})
zero_cost("RemovePadding", kind="data", domain=MS,
          why="copies the non-padding tokens together; the token counts are CONTROL",
          roles={1: CONTROL})
zero_cost("RestorePadding", kind="data", domain=MS,
          why="copies tokens back to their padded positions and zero-fills; token_offset is CONTROL",
          roles={1: CONTROL})
zero_cost("UnfoldTensor", kind="data", domain=MS, why="copies sliding windows of one dimension")
zero_cost("ConvStateReplay", kind="data", domain=MS,
          why="rebuilds the convolution history by copying (its schema: 'without performing "
              "convolution arithmetic'); metadata is CONTROL", roles={3: CONTROL})
zero_cost("SampleOp", kind="data", domain=MS,
          why="the sample echo operator: its kernel copies X to Y")
zero_cost("Tokenizer", kind="string", domain=MS,
          why="string splitting by separators or a regular expression, no numeric arithmetic "
              "(as the default domain's StringSplit)")


# ---------------------------------------------------------------------------------------------
# Cost not knowable from the file.

@rule("BeamSearch", "GreedySearch", "Sampling", "WhisperBeamSearch", kind="generation", domain=MS,
      roles={i: CONTROL for i in range(16)})
def generation_loop(ctx: Ctx) -> Cost:
    """A text-generation driver: unknown.

    It runs its decoder subgraph once per generated token, a number decided at run time
    (end-of-sequence, max_length, beams).
    """
    raise UnknownShape([(f"{ctx.op_type} decoding steps of {ctx.name} (a subgraph loop of "
                         f"runtime length)")], ctx.name)


@rule("EPContext", "Snpe", kind="opaque", domain=MS)
def opaque_context(ctx: Ctx) -> Cost:
    """An execution provider's compiled graph or an SNPE DLC payload: unknown.

    The arithmetic inside EPContext / Snpe is not described by the file.
    """
    raise UnknownShape([f"{ctx.op_type} payload of {ctx.name} (a compiled graph)"], ctx.name)
