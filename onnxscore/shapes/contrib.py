"""Shape rules of onnxruntime's com.microsoft ops, which ONNX shape inference does not know:
the shapes the cost rules need, from each op's contract in onnxruntime's ContribOperators.md."""
from __future__ import annotations

from onnx import TensorProto

from onnxscore.shapes.dims import CONTRIB_RULES, arith, register
from onnxscore.shapes.rules import _matmul

MS = "com.microsoft"
# contrib ops compute in the type of their first float input
FLOATS = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE}


def _ms(*ops: str):
    return register(CONTRIB_RULES, *ops)


@_ms("SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "BiasGelu", "FastGelu", "Gelu",
     "QuickGelu", "BiasAdd", "RotaryEmbedding", "GemmaRotaryEmbedding", "BiasSoftmax", "BiasDropout",
     "GroupNorm", "SkipGroupNorm", "NhwcConv")
def _ms_same(node, shapes, values, attrs):
    """Every output shaped like input 0 (the optional mean/inv-std outputs are not needed)."""
    n = len(node.output)
    return [shapes[0]] + [shapes[0] if node.op_type.startswith("Skip") and i == n - 1 else None
                          for i in range(1, n)], [None] * n


@_ms("Attention")
def _ms_attention(node, shapes, values, attrs):
    """[B, S, H_in] x packed QKV weight [H_in, 3H] -> [B, S, H] (or the v part of qkv_hidden_sizes)."""
    x, w = shapes[0], shapes[1] if len(shapes) > 1 else None
    if x is None or w is None:
        return [None] * len(node.output), [None] * len(node.output)
    sizes = attrs.get("qkv_hidden_sizes")
    hidden = sizes[2] if sizes else arith("Div", w[1], 3)
    return [(x[0], x[1], hidden)] + [None] * (len(node.output) - 1), [None] * len(node.output)


@_ms("MultiHeadAttention", "GroupQueryAttention", "PackedMultiHeadAttention", "SparseAttention",
     "DecoderMaskedMultiHeadAttention")
def _ms_mha(node, shapes, values, attrs):
    """Output [B, S, num_heads * v_head]: the query's width, or with packed QKV (no key input)
    the query width times num_heads / (num_heads + 2 * kv_num_heads)."""
    q = shapes[0]
    n = len(node.output)
    if q is None or len(q) != 3:
        return [None] * n, [None] * n
    heads = attrs.get("num_heads")
    kv_heads = attrs.get("kv_num_heads", heads)
    packed = len(node.input) < 2 or not node.input[1]
    width = arith("Div", arith("Mul", q[2], heads), heads + 2 * kv_heads) if packed and heads else q[2]
    return [(q[0], q[1], width)] + [None] * (n - 1), [None] * n


@_ms("EmbedLayerNormalization")
def _ms_embed(node, shapes, values, attrs):
    """input_ids [B, S] and word embedding [V, H] -> [B, S, H], mask_index [B]."""
    ids, words = shapes[0], shapes[2] if len(shapes) > 2 else None
    if ids is None or words is None:
        return [None] * len(node.output), [None] * len(node.output)
    outs = [(ids[0], ids[1], words[1]), (ids[0],)]
    if len(node.output) > 2:
        outs.append((ids[0], ids[1], words[1]))
    return outs[:len(node.output)], [None] * len(node.output)


@_ms("MatMulNBits", "MatMulBnb4", "MatMulFpQ4")
def _ms_nbits(node, shapes, values, attrs):
    """A [..., K] times the packed K x N weight -> [..., N]."""
    a = shapes[0]
    return [None if a is None or "N" not in attrs else tuple(a[:-1]) + (attrs["N"],)], [None]


@_ms("FusedMatMul", "TransposeMatMul", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "FusedGemm")
def _ms_matmul(node, shapes, values, attrs):
    a, b = shapes[0], shapes[1] if len(shapes) > 1 else None
    if a is None or b is None or len(a) < 2 or len(b) < 2:
        return [None], [None]
    if attrs.get("transA"):
        a = tuple(a[:-2]) + (a[-1], a[-2])
    if attrs.get("transB"):
        b = tuple(b[:-2]) + (b[-1], b[-2])
    return _matmul(node, [a, b], values, attrs)


