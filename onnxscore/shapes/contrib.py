"""Shape rules of onnxruntime's com.microsoft ops, which ONNX shape inference does not know.

Every com.microsoft op with a cost rule (but EPContext and Snpe, see the end) has a rule here
giving each output the shape its schema documents (the operator schemas compiled into
onnxruntime, ``get_all_operator_schema()``, from which ``docs/ContribOperators.md`` is
generated), so the op's own cost and every node downstream of it can be counted. Where
onnxruntime's ``onnxruntime/tools/symbolic_shape_infer.py`` states a contract, the rule says so
("symbolic_shape_infer: ..."). Dims are ints, names or polynomials
(:mod:`onnxscore.shapes.dims`); a dim the inputs do not decide is None, never a guess: a
data-dependent length (Unique, RemovePadding's token count), a symbolic spatial dim of a
strided window (for now), a value that is not a constant.

Dtypes. Every op's input and output types are in :data:`TYPES`, as its schema states them:
an output of a fixed type (SkipLayerNormalization's float mean, EmbedLayerNormalization's int32
mask_index) or typed like its inputs of the same type variable (QLinearAdd's C like A,
Attention's output like input). :func:`input_dtypes` reads it. A rule returns the dtype of an
output an attribute or an absent input chooses (int32 of MatMulInteger16, uint8 of
QuantizeLinear without a zero point, float of QGemm without y_scale, GemmFloat8's ``dtype``),
and wins; the engine's default for what neither decides is the first float input's dtype.

Conv and pool windows: :func:`window_out`, on ints; a symbolic spatial dim stays unknown.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

from onnx import TensorProto

from onnxscore.shapes.dims import (CONTRIB_RULES, arith, as_dim, as_poly, broadcast, is_int,
                                   register, str_attr, transposed_windows, windows)
from onnxscore.shapes.rules import _matmul

MS = "com.microsoft"
# contrib ops compute in the type of their first float input
FLOATS = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE}

F32, F16, BF16 = TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16
I32, I64, U8, I8, U32 = (TensorProto.INT32, TensorProto.INT64, TensorProto.UINT8, TensorProto.INT8,
                         TensorProto.UINT32)
BOOL = TensorProto.BOOL

# op_type -> (the type of each input, the type of each output), as onnxruntime's schema states
# them (docs/ContribOperators.md, generated from the schemas compiled into onnxruntime): a type
# variable (T, T1, M, ...) or a fixed type ("float", "int32"; also a variable allowed only one
# type, as SkipLayerNormalization's U). A variadic last input repeats its type. Departures from
# the schema: QGemm's quantized Y is typed like y_zero_point (TYZ; the schema's TY, and float
# without y_scale, which its rule gives). tests/shapes/test_contrib_dtypes.py checks this table
# against the installed onnxruntime's schemas.
TYPES: Dict[str, Tuple[str, str]] = {
    "Attention": ("T T T M T T M", "T T"),
    "BeamSearch": ("F I I I I T T M M I I I", "int32 T T"),
    "BiasAdd": ("T T T", "T"),
    "BiasDropout": ("T T T T1 T2", "T bool"),
    "BiasGelu": ("T T", "T"),
    "BiasSoftmax": ("T T", "T"),
    "BiasSplitGelu": ("T T", "T"),
    "BitmaskBiasDropout": ("T T T T1 T2", "T uint32"),
    "BitmaskDropout": ("T T1 T2", "T uint32"),
    "BranchwiseRMSNorm": ("T M", "T"),
    "CDist": ("T T", "T"),
    "CausalConvWithState": ("T T T T", "T T T"),
    "ComplexMul": ("T T", "T"),
    "ComplexMulConj": ("T T", "T"),
    "ConvStateReplay": ("T T T TI", "T"),
    "ConvTransposeWithDynamicPads": ("T T int64 T", "T"),
    "CropAndResize": ("T1 T1 T2 T2", "T1"),
    "DecoderMaskedMultiHeadAttention": ("T T T M T T T M M M T", "T T T QK"),
    "DecoderMaskedSelfAttention": ("T T T M T T M M M", "T T"),
    "DequantizeLinear": ("T1 T2 T1", "T2"),
    "DequantizeWithOrder": ("Q S", "F"),
    "DynamicQuantizeLSTM": ("T T2 T2 T T1 T T T T T2 T T2", "float float float"),
    "DynamicQuantizeMatMul": ("T1 T2 T1 T2 T1", "float"),
    "DynamicTimeWarping": ("F", "int32"),
    "EmbedLayerNormalization": ("T1 T1 T T T T T T1 T1", "T int32 T"),
    "EngramGate": ("T T T T T T", "T T"),
    "ExpandDims": ("T int32", "T"),
    "FastGelu": ("T T", "T"),
    "FusedConv": ("T T T T", "T"),
    "FusedGemm": ("T T T", "T"),
    "FusedMatMul": ("T T", "T"),
    "FusedMatMulActivation": ("T T", "T"),
    "GatedAdd": ("T T T T", "T"),
    "GatedDeltaNet": ("T T T TI TG TG TS TS TS TI TI", "T float float"),
    "GatedRMSNorm": ("T T T", "T"),
    "GatedRelativePositionBias": ("T T T T T T M", "T"),
    "GatherBlockQuantized": ("T1 Tind T2 T1", "T2"),
    "GatherND": ("T Tind", "T"),
    "GatherPacked": ("T1 Tind", "T2"),
    "Gelu": ("T", "T"),
    "GemmFastGelu": ("T T T", "T"),
    "GemmFloat8": ("TA TB TC TS TS TS", "TR"),
    "GemmaRotaryEmbedding": ("U T T T T", "float16 float16"),
    "GreedySearch": ("I I I T I I I", "int32"),
    "GridSample": ("T1 T1", "T2"),
    "GroupNorm": ("T M M", "T"),
    "GroupQueryAttention": ("T T T T_CACHE T_CACHE M M T T int64 T T T_KV_SCALE T_KV_SCALE T T M",
                           "T T_CACHE T_CACHE T"),
    "HyperConnectionLowRankMix": ("T T T T T T T", "T T T"),
    "HyperConnectionPostMix": ("T T M M", "T"),
    "HyperConnectionPreMix": ("T M", "T"),
    "Inverse": ("T", "T"),
    "Irfft": ("T", "T"),
    "IsAllFinite": ("V", "bool"),
    "LinearAttention": ("T T T S T T", "T S"),
    "LinearAttentionGate": ("T TF TF T", "T T"),
    "MRotaryEmbedding": ("T M T T", "T"),
    "MatMulBlockQuantizedFp4Weight": ("T T1 T2 T3 T3 T", "T"),
    "MatMulBlockQuantizedFp8Weight": ("T T1 T2 T2 T", "T"),
    "MatMulBnb4": ("T1 T2 T1", "T1"),
    "MatMulFpQ4": ("T1 T2 T3", "float"),
    "MatMulInteger16": ("T1 T2", "T3"),
    "MatMulIntegerToFloat": ("T1 T2 T3 T3 T1 T2 T3", "T3"),
    "MatMulNBits": ("T1 T2 T1 T3 T4 T1", "T1"),
    "MatMulNBitsMlp": ("T1 T1 T1 T2 T1 T1 T2 T1 T1", "T1 T1"),
    "MatMulNBitsQLoRA": ("T TQ T TQ T TQ T", "T"),
    "MatMulNBitsQkv": ("T1 T1 T1 T2 T1 T1 T2 T1 T1 T2 T1 T1", "T1 T1 T1 T1"),
    "MatMulPacked": ("T1 T2 Tscale", "T1"),
    "MaxpoolWithMask": ("T int32", "float"),
    "MoE": ("T T T T T T T T", "T"),
    "MoEPacked": ("T TR T2 T2 T2 TR", "T"),
    "MulInteger": ("T T T T", "int32"),
    "MultiHeadAttention": ("T T T T M T T T M M", "T T T QK"),
    "NGramRepeatBlock": ("Tid T", "float"),
    "NhwcConv": ("T T T", "T"),
    "NhwcFusedConv": ("T T T T", "T"),
    "NhwcMaxPool": ("T", "T"),
    "PackedAttention": ("T T T M M T", "T"),
    "PackedMultiHeadAttention": ("T T T T M M T", "T"),
    "Pad": ("T int64 T", "T"),
    "PagedAttention": ("T T T T_CACHE T_CACHE S S S T T S T T T T_KV_SCALE T_KV_SCALE S", "T T_CACHE T_CACHE"),
    "QAttention": ("T1 T2 T3 T3 T3 T4 T1 T2 T3", "T3 T3"),
    "QEmbedLayerNormalization": ("T1 T1 T2 T2 T2 T2 T2 T1 T T T T T T2 T2 T2 T2 T2", "float int32"),
    "QGemm": ("TA T TA TB T TB TC T TYZ", "TYZ"),
    "QLinearAdd": ("T float T T float T float T", "T"),
    "QLinearAveragePool": ("T float T float T", "T"),
    "QLinearConcat": ("TF T8 TV", "T8"),
    "QLinearConv": ("T1 float T1 T2 float T2 float T3 T4", "T3"),
    "QLinearGlobalAveragePool": ("T float T float T", "T"),
    "QLinearLeakyRelu": ("T float T float T", "T"),
    "QLinearMul": ("T float T T float T float T", "T"),
    "QLinearReduceMean": ("T float T float T", "T"),
    "QLinearSigmoid": ("T float T float T", "T"),
    "QLinearSoftmax": ("T float T float T", "T"),
    "QLinearWhere": ("B T TF T T TF T TF T", "T"),
    "QMoE": ("T T T1 T2 T T1 T2 T T1 T2 T T1 T1 T1 T T4 T4 T4 T4 T2 T2", "T"),
    "QOrderedGelu": ("Q S S", "int8"),
    "QOrderedLayerNormalization": ("Q S F F S", "int8"),
    "QuantizeLinear": ("T1 T1 T2", "T2"),
    "QuantizeWithOrder": ("F S", "int8"),
    "QuickGelu": ("T", "T"),
    "RMSNormRotary": ("T F I TCos TCos TI", "TOut float"),
    "Range": ("T T T", "T"),
    "ReduceSumInteger": ("T1", "T2"),
    "RemovePadding": ("T M", "T int32 int32 int32"),
    "RestorePadding": ("T M", "T"),
    "Rfft": ("T", "T"),
    "RotaryEmbedding": ("T M T T", "T"),
    "RouterGateUpProj": ("T T", "T T"),
    "SampleOp": ("T", "T"),
    "Sampling": ("I I I T I I I I I", "int32 float"),
    "ScaledSiLU": ("T M", "T"),
    "SkipGroupNorm": ("T M M T T", "T T"),
    "SkipLayerNormalization": ("T T T T T", "T float float T"),
    "SkipSimplifiedLayerNormalization": ("T T T T", "T float float T"),
    "SparseAttention": ("T T T T T M M M M T T", "T T T"),
    "SwiGLU": ("T T", "T"),
    "Tokenizer": ("T", "string"),
    "TorchEmbedding": ("T int64 int64 bool", "T"),
    "TransposeMatMul": ("T T", "T"),
    "Trilu": ("T int64", "T"),
    "UnfoldTensor": ("T", "T"),
    "Unique": ("T", "T int64 int64"),
    "VarlenCausalConvWithState": ("T T M T T M T T", "T T T"),
    "WhisperBeamSearch": ("F I I I I T T M M I I I I I T", "int32 T T float T"),
}

DTYPE_NAMES = {name.lower(): value for name, value in TensorProto.DataType.items()}  # "float": 1, ...
# The beam searches' scores are of the type of the logits their decoder subgraph returns
# (length_penalty and repetition_penalty, of that type too, are optional and seldom given).
DECODER_TYPED = {"BeamSearch": "T", "WhisperBeamSearch": "T"}


def input_dtypes(node, dtypes: Sequence[int]) -> List[int]:
    """Per output of ``node``, the dtype its schema gives it (:data:`TYPES`): a fixed type, or
    the dtype of the first input of the same type variable whose dtype is known (an input of
    unknown dtype is passed over: the next one of that variable decides). 0 when neither says
    (a type chosen by an attribute, or no input of that variable at hand): the shape rule or
    the engine's default decides."""
    sig = TYPES.get(node.op_type)
    if sig is None:
        return [0] * len(node.output)
    ins, outs = sig[0].split(), sig[1].split()
    known: Dict[str, int] = {}
    for k, name in enumerate(node.input):
        var = ins[min(k, len(ins) - 1)] if ins else ""
        if name and k < len(dtypes) and dtypes[k] and var not in known:
            known[var] = dtypes[k]
    decoded = DECODER_TYPED.get(node.op_type)
    if decoded and decoded not in known:
        known[decoded] = _logits_dtype(node)
    types = outs[:len(node.output)] + [""] * (len(node.output) - len(outs))
    return [DTYPE_NAMES.get(t) or known.get(t, 0) for t in types]


def _logits_dtype(node) -> int:
    """The dtype of the logits (first output) of ``node``'s decoder subgraph, 0 when unknown."""
    for a in node.attribute:
        if a.name == "decoder" and a.HasField("g") and a.g.output:
            return a.g.output[0].type.tensor_type.elem_type
    return 0


def _ms(*ops: str):
    return register(CONTRIB_RULES, *ops)


# ---------------------------------------------------------------------------------------------
# Helpers.

def _at(seq: Sequence, i: int):
    """Element ``i`` of ``seq``, None past its end (an absent trailing optional input)."""
    return seq[i] if 0 <= i < len(seq) else None


def _has(node, i: int) -> bool:
    return i < len(node.input) and bool(node.input[i])


def _result(node, shapes: Sequence = (), dtypes: Sequence[int] = ()):
    """One shape, one (absent) value and one dtype (0: the engine decides) per node output."""
    n = len(node.output)
    shapes = list(shapes)[:n] + [None] * (n - len(shapes))
    types = list(dtypes)[:n] + [0] * (n - len(dtypes))
    return shapes, [None] * n, types


def _div(a, b):
    """``a / b`` when it divides exactly (ints, names and polynomials alike), else None."""
    if is_int(a) and is_int(b):
        return a // b if b and a % b == 0 else None
    return arith("Div", a, b)


def _total(dims: Sequence) -> object:
    """The product of ``dims`` as a dim, or None when one is unknown."""
    polys = [as_poly(d) for d in dims]
    return None if any(p is None for p in polys) else as_dim(math.prod(polys))


def _last(shape, dim) -> Optional[tuple]:
    """``shape`` with its last dim replaced by ``dim``."""
    return None if not shape else tuple(shape[:-1]) + (dim,)


def _conv(x, w, attrs: dict, channels_last: bool = False, weight_last: bool = False):
    """Output of a convolution: ``[N, M, *out]`` (``[N, *out, M]`` channels-last).

    The kernel is ``kernel_shape``, else the weight's spatial dims: ``[M, C/group, *k]``, or
    ``[M, *k, C/group]`` with ``weight_last`` (NhwcConv, as onnxruntime's fusion_nhwc_conv
    writes it and symbolic_shape_infer reads it).
    """
    if x is None or len(x) < 3:
        return None
    spatial = tuple(x[1:-1]) if channels_last else tuple(x[2:])
    kernel = attrs.get("kernel_shape")
    if not kernel:
        if w is None or len(w) != len(x):
            return None
        kernel = tuple(w[1:-1]) if weight_last else tuple(w[2:])
    if len(kernel) != len(spatial):
        return None
    out = windows(spatial, list(kernel), attrs)
    m = w[0] if w is not None and len(w) == len(x) else None
    return (x[0], *out, m) if channels_last else (x[0], m, *out)


def _pool(x, attrs: dict, channels_last: bool = False):
    """Output of a pooling window (``kernel_shape``): ``[N, C, *out]`` or ``[N, *out, C]``."""
    kernel = attrs.get("kernel_shape")
    if x is None or not kernel or len(x) != len(kernel) + 2:
        return None
    spatial = tuple(x[1:-1]) if channels_last else tuple(x[2:])
    out = windows(spatial, list(kernel), attrs, bool(attrs.get("ceil_mode", 0)))
    return (x[0], *out, x[-1]) if channels_last else (x[0], x[1], *out)


def _reduce(x, attrs: dict):
    """Reduction over ``axes`` (all when absent), the axes kept as 1 unless ``keepdims=0``."""
    if x is None:
        return None
    axes = attrs.get("axes")
    axes = {int(a) % len(x) for a in axes} if axes else set(range(len(x)))
    keep = attrs.get("keepdims", 1)
    return tuple(1 if i in axes else d for i, d in enumerate(x) if keep or i not in axes)


def _mm(a, b):
    """numpy.matmul's shape, 1-D operands included."""
    if a is None or b is None or not a or not b:
        return None
    if len(a) == 1 and len(b) == 1:
        return ()
    if len(a) == 1:
        out = _matmul(None, [(1,) + tuple(a), b], [None, None], {})[0][0]
        return None if out is None else out[:-2] + out[-1:]
    if len(b) == 1:
        out = _matmul(None, [a, tuple(b) + (1,)], [None, None], {})[0][0]
        return None if out is None else out[:-1]
    return _matmul(None, [a, b], [None, None], {})[0][0]


def _gemm(a, b, attrs: dict):
    """``(M, N)`` of Gemm-style ``op(A) op(B)`` with transA/transB."""
    if a is None or b is None or len(a) != 2 or len(b) != 2:
        return None
    m = a[1] if attrs.get("transA") else a[0]
    n = b[0] if attrs.get("transB") else b[1]
    return (m, n)


# ---------------------------------------------------------------------------------------------
# Shaped like input 0.

@_ms("BiasGelu", "FastGelu", "Gelu", "QuickGelu", "BiasAdd", "RotaryEmbedding", "MRotaryEmbedding",
     "BiasSoftmax", "GroupNorm", "GatedRMSNorm", "BranchwiseRMSNorm", "GatedAdd", "ScaledSiLU",
     "HyperConnectionPostMix", "Inverse", "Trilu", "SampleOp", "MoE", "QMoE", "MoEPacked",
     "QOrderedGelu", "QOrderedLayerNormalization", "QuantizeWithOrder", "DequantizeWithOrder",
     "QuantizeLinear", "DequantizeLinear", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax")
def _ms_same(node, shapes, values, attrs):
    """Output shaped like input 0 (symbolic_shape_infer: BiasGelu, FastGelu, Gelu, QuickGelu,
    BiasAdd, RotaryEmbedding, GroupNorm, BranchwiseRMSNorm, ScaledSiLU, HyperConnectionPostMix,
    DequantizeLinear, QuantizeLinear). Fixed output types: int8 of the QOrdered ops and
    QuantizeWithOrder, ``to`` of DequantizeWithOrder, uint8 of a QuantizeLinear without a zero
    point (its schema's default)."""
    fixed = {"QOrderedGelu": I8, "QOrderedLayerNormalization": I8, "QuantizeWithOrder": I8,
             "DequantizeWithOrder": int(attrs.get("to", 0) or 0)}.get(node.op_type, 0)
    if node.op_type == "QuantizeLinear" and not _has(node, 2):
        fixed = U8
    return _result(node, [_at(shapes, 0)], [fixed])


@_ms("SkipLayerNormalization", "SkipSimplifiedLayerNormalization")
def _ms_skip_layer_norm(node, shapes, values, attrs):
    """output and input_skip_bias_sum (output 3) like input 0; mean and inv_std_var (float)
    ``[*X[:-1], 1]``, as LayerNormalization's (symbolic_shape_infer: SkipLayerNormalization)."""
    x = _at(shapes, 0)
    stat = None if x is None else tuple(x[:-1]) + (1,)
    return _result(node, [x, stat, stat, x], [0, F32, F32, 0])


@_ms("SkipGroupNorm")
def _ms_skip_group_norm(node, shapes, values, attrs):
    """Y and the sum S like X (symbolic_shape_infer: SkipGroupNorm)."""
    return _result(node, [_at(shapes, 0)] * 2)


@_ms("BiasDropout", "BitmaskBiasDropout", "BitmaskDropout")
def _ms_dropout(node, shapes, values, attrs):
    """output like data; the mask like data (bool) for BiasDropout, bit-packed for the Bitmask
    ops: ``ceil(numel / 32)`` uint32 words."""
    x = _at(shapes, 0)
    if node.op_type == "BiasDropout":
        return _result(node, [x, x], [0, BOOL])
    n = _total(x) if x is not None else None
    return _result(node, [x, None if not is_int(n) else (-(-n // 32),)], [0, U32])


@_ms("GemmaRotaryEmbedding")
def _ms_gemma_rotary(node, shapes, values, attrs):
    """output1 like q (input 1), output2 like k (input 3); emb is only the angles."""
    return _result(node, [_at(shapes, 1), _at(shapes, 3)])


@_ms("NGramRepeatBlock")
def _ms_ngram(node, shapes, values, attrs):
    """scores_out like scores (input 1)."""
    return _result(node, [_at(shapes, 1)])


@_ms("ConvStateReplay")
def _ms_conv_state_replay(node, shapes, values, attrs):
    """destination_out is the destination backing (input 2), same shape."""
    return _result(node, [_at(shapes, 2)])


@_ms("LinearAttentionGate")
def _ms_linear_attention_gate(node, shapes, values, attrs):
    """decay like a, beta like b (input 3)."""
    return _result(node, [_at(shapes, 0), _at(shapes, 3)])


@_ms("EngramGate")
def _ms_engram_gate(node, shapes, values, attrs):
    """output and gated_value_normed like key, ``(B, S, hc_mult, H)``."""
    return _result(node, [_at(shapes, 0)] * 2)


# ---------------------------------------------------------------------------------------------
# Elementwise with broadcasting.

@_ms("QLinearAdd", "QLinearMul")
def _ms_qlinear_binary(node, shapes, values, attrs):
    """C: the broadcast of A (input 0) and B (input 3) (symbolic_shape_infer: QLinearBinary)."""
    return _result(node, [broadcast([_at(shapes, 0), _at(shapes, 3)])])


@_ms("QLinearWhere")
def _ms_qlinear_where(node, shapes, values, attrs):
    """Z: the broadcast of condition, X (input 1) and Y (input 4)."""
    return _result(node, [broadcast([_at(shapes, 0), _at(shapes, 1), _at(shapes, 4)])])


@_ms("ComplexMul", "ComplexMulConj")
def _ms_complex_mul(node, shapes, values, attrs):
    """C: the broadcast of A and B (``[..., 2]`` each)."""
    return _result(node, [broadcast([_at(shapes, 0), _at(shapes, 1)])])


@_ms("MulInteger")
def _ms_mul_integer(node, shapes, values, attrs):
    """C (int32): the broadcast of A (input 0) and B (input 2)."""
    return _result(node, [broadcast([_at(shapes, 0), _at(shapes, 2)])], [I32])


@_ms("IsAllFinite")
def _ms_is_all_finite(node, shapes, values, attrs):
    """A bool scalar."""
    return _result(node, [()], [BOOL])


# ---------------------------------------------------------------------------------------------
# Pooling and reduction.

@_ms("QLinearGlobalAveragePool")
def _ms_qlinear_global_average_pool(node, shapes, values, attrs):
    """``[N, C, 1, ...]``, or ``[N, 1, ..., C]`` with channels_last: N and C kept, the other
    dims 1 (its schema)."""
    x = _at(shapes, 0)
    if x is None or len(x) < 2:
        return _result(node)
    if attrs.get("channels_last", 0):
        return _result(node, [(x[0],) + (1,) * (len(x) - 2) + (x[-1],)])
    return _result(node, [(x[0], x[1]) + (1,) * (len(x) - 2)])


@_ms("QLinearAveragePool", "NhwcMaxPool", "MaxpoolWithMask")
def _ms_pool(node, shapes, values, attrs):
    """AveragePool/MaxPool output: kernel_shape, strides, pads, dilations, ceil_mode, auto_pad
    (:func:`window_out`); NhwcMaxPool and ``channels_last`` are ``[N, *spatial, C]``."""
    last = node.op_type == "NhwcMaxPool" or bool(attrs.get("channels_last", 0))
    return _result(node, [_pool(_at(shapes, 0), attrs, last)])


@_ms("QLinearReduceMean")
def _ms_qlinear_reduce_mean(node, shapes, values, attrs):
    """ReduceMean over ``axes`` (all by default), keepdims by default."""
    return _result(node, [_reduce(_at(shapes, 0), attrs)])


@_ms("ReduceSumInteger")
def _ms_reduce_sum_integer(node, shapes, values, attrs):
    """ReduceSum over ``axes`` into int32, keepdims by default."""
    return _result(node, [_reduce(_at(shapes, 0), attrs)], [I32])


# ---------------------------------------------------------------------------------------------
# Convolutions.

@_ms("FusedConv", "NhwcConv", "NhwcFusedConv", "QLinearConv")
def _ms_conv(node, shapes, values, attrs):
    """Conv's output (:func:`window_out` per spatial axis, M output channels from the weight).

    FusedConv: NCHW. NhwcFusedConv: NHWC data, ``[M, C/group, kH, kW]`` weight (its schema).
    NhwcConv: NHWC data and weight ``[M, kH, kW, C/group]`` (symbolic_shape_infer: NhwcConv).
    QLinearConv: x is input 0, w input 3, NHWC data with ``channels_last``.
    """
    op = node.op_type
    w = _at(shapes, 3 if op == "QLinearConv" else 1)
    last = op in ("NhwcConv", "NhwcFusedConv") or bool(attrs.get("channels_last", 0))
    return _result(node, [_conv(_at(shapes, 0), w, attrs, last, weight_last=op == "NhwcConv")])


@_ms("ConvTransposeWithDynamicPads")
def _ms_conv_transpose_dynamic_pads(node, shapes, values, attrs):
    """ConvTranspose (:func:`transposed_windows`) with its pads from input 2; pads given but
    not constant: the spatial dims unknown."""
    x = _at(shapes, 0)
    n = len(x) - 2 if x is not None else 0
    pads = _at(values, 2) if _has(node, 2) else (0,) * (2 * n)
    if pads is None:
        pads = (None,) * (2 * n)
    return _result(node, [transposed_windows(x, _at(shapes, 1), attrs, pads)])


@_ms("CausalConvWithState")
def _ms_causal_conv_with_state(node, shapes, values, attrs):
    """output like input (its last dim ``input_channels`` in the extended channels-last mode);
    present_state like past_state, else ``(B, C, (k - 1) * dilation)`` for the default 1-D
    channels-first layout without a state window."""
    x, w, past = _at(shapes, 0), _at(shapes, 1), _at(shapes, 3)
    out = x
    if x is not None and int(attrs.get("input_channels", 0) or 0):
        out = _last(x, int(attrs["input_channels"]))
    state = past
    plain = (int(attrs.get("ndim", 1)) == 1 and not attrs.get("channels_last", 0)
             and not attrs.get("state_window", 0))
    if state is None and plain and x is not None and w is not None and len(w) == 3 and is_int(w[2]):
        length = int(attrs.get("state_length", 0) or 0) or (w[2] - 1) * int(attrs.get("dilation", 1))
        state = (x[0], x[1], length)
    return _result(node, [out, state])


@_ms("VarlenCausalConvWithState")
def _ms_varlen_causal_conv_with_state(node, shapes, values, attrs):
    """output like input ``(T, C)``; final_state like initial_state (input 4); state_update
    ``(B, state_update_capacity, C)`` when the capacity is set."""
    x, state = _at(shapes, 0), _at(shapes, 4)
    cap = int(attrs.get("state_update_capacity", 0) or 0)
    update = None
    if cap and x is not None and state is not None:
        update = (state[0], cap, x[-1])
    return _result(node, [x, state, update])


# ---------------------------------------------------------------------------------------------
# Matrix products.

def _fused_operands(shapes, attrs):
    """A and B of FusedMatMul after transBatchA/B (first dim moved after the other batch dims)
    and transA/B, as the cost rule reads them."""
    out = []
    for i, tb, t in ((0, "transBatchA", "transA"), (1, "transBatchB", "transB")):
        s = _at(shapes, i)
        if s is None:
            return None, None
        s = list(s)
        if attrs.get(tb, 0) and len(s) > 2:
            s = s[1:-1] + [s[0], s[-1]]
        if attrs.get(t, 0) and len(s) >= 2:
            s[-1], s[-2] = s[-2], s[-1]
        out.append(tuple(s))
    return out[0], out[1]


@_ms("FusedMatMul", "TransposeMatMul", "FusedMatMulActivation")
def _ms_fused_matmul(node, shapes, values, attrs):
    """MatMul of the transposed operands (transA/transB on the last two dims, transBatchA/B)."""
    return _result(node, [_mm(*_fused_operands(shapes, attrs))])


@_ms("MatMulIntegerToFloat", "DynamicQuantizeMatMul", "GemmFastGelu")
def _ms_matmul(node, shapes, values, attrs):
    """numpy.matmul of A and B (symbolic_shape_infer: GemmFastGelu); the float output type is
    the scales' (MatMulIntegerToFloat) or A's."""
    return _result(node, [_mm(_at(shapes, 0), _at(shapes, 1))])


@_ms("MatMulInteger16")
def _ms_matmul_integer16(node, shapes, values, attrs):
    """numpy.matmul into int32 (symbolic_shape_infer: MatMulInteger)."""
    return _result(node, [_mm(_at(shapes, 0), _at(shapes, 1))], [I32])


@_ms("FusedGemm")
def _ms_fused_gemm(node, shapes, values, attrs):
    """Gemm's ``(M, N)`` with transA/transB."""
    return _result(node, [_gemm(_at(shapes, 0), _at(shapes, 1), attrs)])


@_ms("GemmFloat8")
def _ms_gemm_float8(node, shapes, values, attrs):
    """Gemm's ``(M, N)``, of the type named by ``dtype`` (float by default)."""
    return _result(node, [_gemm(_at(shapes, 0), _at(shapes, 1), attrs)],
                   [int(attrs.get("dtype", F32) or F32)])


@_ms("QGemm")
def _ms_qgemm(node, shapes, values, attrs):
    """``(M, N)`` of A (input 0) and B (input 3); float when y_scale (input 7) is absent."""
    y = _gemm(_at(shapes, 0), _at(shapes, 3), attrs)
    return _result(node, [y], [0 if _has(node, 7) else F32])


@_ms("MatMulNBits", "MatMulBnb4", "MatMulNBitsQLoRA", "MatMulPacked")
def _ms_nbits(node, shapes, values, attrs):
    """A ``[..., K]`` times the packed weight of logical ``K x N`` (attribute N) ->
    ``[..., N]`` (symbolic_shape_infer: MatMulNBits)."""
    a = _at(shapes, 0)
    return _result(node, [None if "N" not in attrs else _last(a, int(attrs["N"]))])


@_ms("MatMulFpQ4")
def _ms_fpq4(node, shapes, values, attrs):
    """``[..., N]`` with ``(K, N)`` the value of B_shape (input 2)."""
    b_shape = _at(values, 2)
    n = b_shape[-1] if b_shape else None
    return _result(node, [None if n is None else _last(_at(shapes, 0), n)])


@_ms("MatMulBlockQuantizedFp4Weight", "MatMulBlockQuantizedFp8Weight")
def _ms_block_quantized_weight(node, shapes, values, attrs):
    """``[..., N]``, N = B.shape[0] (B is ``[N, K/2]`` packed NVFP4 or ``[N, K]`` FP8)."""
    b = _at(shapes, 1)
    return _result(node, [None if not b else _last(_at(shapes, 0), b[0])])


@_ms("MatMulNBitsMlp")
def _ms_nbits_mlp(node, shapes, values, attrs):
    """Y ``[..., N]``; input_skip_bias_sum like A."""
    a = _at(shapes, 0)
    return _result(node, [None if "N" not in attrs else _last(a, int(attrs["N"])), a])


@_ms("MatMulNBitsQkv")
def _ms_nbits_qkv(node, shapes, values, attrs):
    """Q ``[..., Nq]``, K and V ``[..., Nkv]``; input_skip_bias_sum like A."""
    a = _at(shapes, 0)
    nq, nkv = attrs.get("Nq"), attrs.get("Nkv")
    q = None if nq is None else _last(a, int(nq))
    kv = None if nkv is None else _last(a, int(nkv))
    return _result(node, [q, kv, kv, a])


@_ms("RouterGateUpProj")
def _ms_router_gate_up_proj(node, shapes, values, attrs):
    """router ``[..., router_size]``, activated ``[..., inter]`` with W ``(K, router_size +
    2 * inter)``."""
    x, w = _at(shapes, 0), _at(shapes, 1)
    size = attrs.get("router_size")
    if x is None or size is None:
        return _result(node)
    inter = None if w is None else _div(arith("Sub", w[-1], int(size)), 2)
    return _result(node, [_last(x, int(size)), _last(x, inter)])


@_ms("CDist")
def _ms_cdist(node, shapes, values, attrs):
    """``(M, K)`` for A ``(M, N)`` and B ``(K, N)``."""
    a, b = _at(shapes, 0), _at(shapes, 1)
    return _result(node, [None if not a or not b else (a[0], b[0])])


# ---------------------------------------------------------------------------------------------
# Gathers, padding, data movement.

@_ms("GatherND")
def _ms_gather_nd(node, shapes, values, attrs):
    """``indices[:-1] + data[indices[-1]:]`` (symbolic_shape_infer: GatherND)."""
    data, idx = _at(shapes, 0), _at(shapes, 1)
    if data is None or not idx or not is_int(idx[-1]) or idx[-1] > len(data):
        return _result(node)
    return _result(node, [tuple(idx[:-1]) + tuple(data[idx[-1]:])])


@_ms("TorchEmbedding")
def _ms_torch_embedding(node, shapes, values, attrs):
    """``indices.shape + (M,)`` for the ``N x M`` weight."""
    w, idx = _at(shapes, 0), _at(shapes, 1)
    return _result(node, [None if w is None or idx is None or len(w) != 2 else tuple(idx) + (w[1],)])


@_ms("GatherPacked")
def _ms_gather_packed(node, shapes, values, attrs):
    """``indices.shape + (K,)``, of type ``output_dtype`` (bfloat16 by default)."""
    idx = _at(shapes, 1)
    k = attrs.get("K")
    return _result(node, [None if idx is None or k is None else tuple(idx) + (int(k),)],
                   [int(attrs.get("output_dtype", BF16) or BF16)])


def _logical_table(data, scales, attrs):
    """The logical shape of GatherBlockQuantized's table: data's, or with the last dim
    unpacked ``* 8 / bits`` for uint8 data packing sub-byte codes. The dtype is not at hand, so
    the reading that agrees with the scales (same rank; on the quantize axis ``ceil(dim /
    block_size)``, elsewhere the dim or 1) decides; when both or neither agree, the last dim
    is unknown."""
    bits = int(attrs.get("bits", 4))
    if bits >= 8 or not data or not is_int(data[-1]):
        return tuple(data)
    candidates = [tuple(data), tuple(data[:-1]) + (data[-1] * 8 // bits,)]
    if scales is None or len(scales) != len(data):
        return tuple(data[:-1]) + (None,)
    q_axis = int(attrs.get("quantize_axis", 1)) % len(data)
    block = int(attrs.get("block_size", 128))

    def fits(shape):
        for a, (d, s) in enumerate(zip(shape, scales)):
            if not (is_int(d) and is_int(s)):
                continue
            want = (-(-d // block) if block else 1) if a == q_axis else d
            if s != want and not (a != q_axis and s == 1):
                return False
        return True

    fitting = [c for c in candidates if fits(c)]
    return fitting[0] if len(fitting) == 1 else tuple(data[:-1]) + (None,)


@_ms("GatherBlockQuantized")
def _ms_gather_block_quantized(node, shapes, values, attrs):
    """Gather of the logical table along ``gather_axis`` (default 0): ``data[:axis] + indices +
    data[axis + 1:]`` (symbolic_shape_infer: GatherBlockQuantized), with uint8 data's packed last
    dim unpacked (:func:`_logical_table`); typed like the scales."""
    data, idx = _at(shapes, 0), _at(shapes, 1)
    if data is None or idx is None or not data:
        return _result(node)
    table = _logical_table(data, _at(shapes, 2), attrs)
    axis = int(attrs.get("gather_axis", 0)) % len(table)
    return _result(node, [tuple(table[:axis]) + tuple(idx) + tuple(table[axis + 1:])])


@_ms("ExpandDims")
def _ms_expand_dims(node, shapes, values, attrs):
    """X with a 1 inserted at the value of ``axis`` (input 1; negative counts from the end of
    the output)."""
    x, axis = _at(shapes, 0), _at(values, 1)
    if x is None or not axis or not is_int(axis[0]):
        return _result(node)
    at = axis[0] % (len(x) + 1)
    return _result(node, [tuple(x[:at]) + (1,) + tuple(x[at:])])


@_ms("Pad")
def _ms_pad(node, shapes, values, attrs):
    """Each dim grows by its begin and end pads, the value of input 2 (1-D, ``2 * rank``)."""
    x, pads = _at(shapes, 0), _at(values, 1)
    if x is None or pads is None or len(pads) != 2 * len(x):
        return _result(node)
    r = len(x)
    return _result(node, [tuple(arith("Add", d, arith("Add", pads[a], pads[a + r]))
                                for a, d in enumerate(x))])


@_ms("Range")
def _ms_range(node, shapes, values, attrs):
    """``max(0, ceil((limit - start) / delta))`` elements (delta defaults to 1), from the
    values of integer scalars."""
    start, limit = _at(values, 0), _at(values, 1)
    delta = _at(values, 2) if _has(node, 2) else (1,)
    if not (start and limit and delta) or not all(is_int(v[0]) for v in (start, limit, delta)) \
            or not delta[0]:
        return _result(node)
    return _result(node, [(max(0, -(-(limit[0] - start[0]) // delta[0])),)])


@_ms("Unique")
def _ms_unique(node, shapes, values, attrs):
    """y and counts: as many as the distinct values, a data-dependent length (unknown); idx
    like x; idx and counts are int64."""
    x = _at(shapes, 0)
    return _result(node, [(None,), None if x is None else (_total(x),), (None,)], [0, I64, I64])


@_ms("Tokenizer")
def _ms_tokenizer(node, shapes, values, attrs):
    """X's shape plus the token axis, whose length the strings decide (unknown)."""
    x = _at(shapes, 0)
    return _result(node, [None if x is None else tuple(x) + (None,)])


@_ms("UnfoldTensor")
def _ms_unfold_tensor(node, shapes, values, attrs):
    """Axis ``dim`` becomes ``(d - size) // step + 1`` and ``size`` is appended
    (symbolic_shape_infer: UnfoldTensor)."""
    x = _at(shapes, 0)
    size, step = attrs.get("size"), int(attrs.get("step", 1))
    if x is None or size is None or not x:
        return _result(node)
    dim = int(attrs.get("dim", -1)) % len(x)
    out = list(x)
    d = x[dim]
    out[dim] = (d - int(size)) // step + 1 if is_int(d) else \
        (arith("Add", arith("Sub", d, int(size)), 1) if step == 1 else None)
    return _result(node, [tuple(out) + (int(size),)])


@_ms("RemovePadding")
def _ms_remove_padding(node, shapes, values, attrs):
    """input ``(B, S, H)`` -> output ``(token_count, H)`` with the token count decided by data
    (unknown), token_offset ``(B, S)``, cumulated_seq_len ``(B + 1)``, max_seq_len ``(1)``, all
    int32 (symbolic_shape_infer: RemovePadding)."""
    x = _at(shapes, 0)
    if x is None or len(x) != 3:
        return _result(node, [], [0, I32, I32, I32])
    return _result(node, [(None, x[2]), (x[0], x[1]), (arith("Add", x[0], 1),), (1,)],
                   [0, I32, I32, I32])


@_ms("RestorePadding")
def _ms_restore_padding(node, shapes, values, attrs):
    """``(B, S, H)`` from token_offset ``(B, S)`` and input ``(token_count, H)``
    (symbolic_shape_infer: RestorePadding)."""
    x, offset = _at(shapes, 0), _at(shapes, 1)
    if x is None or offset is None or len(x) != 2 or len(offset) != 2:
        return _result(node)
    return _result(node, [(offset[0], offset[1], x[1])])


@_ms("CropAndResize")
def _ms_crop_and_resize(node, shapes, values, attrs):
    """``(num_rois, C, crop_height, crop_width)``, the crop size being the value of input 3."""
    x, rois, size = _at(shapes, 0), _at(shapes, 1), _at(values, 3)
    if x is None or rois is None or len(x) != 4:
        return _result(node)
    h, w = (size[0], size[1]) if size and len(size) == 2 else (None, None)
    return _result(node, [(rois[0], x[1], h, w)])


@_ms("GridSample")
def _ms_grid_sample(node, shapes, values, attrs):
    """``(N, C, H_out, W_out)`` from X ``(N, C, H, W)`` and grid ``(N, H_out, W_out, 2)``."""
    x, grid = _at(shapes, 0), _at(shapes, 1)
    if x is None or grid is None or len(x) != 4 or len(grid) != 4:
        return _result(node)
    return _result(node, [(x[0], x[1], grid[1], grid[2])])


@_ms("QLinearConcat")
def _ms_qlinear_concat(node, shapes, values, attrs):
    """Concat along ``axis`` of the tensors of the (tensor, scale, zero point) triples from
    input 2."""
    parts = [_at(shapes, i) for i in range(2, len(node.input), 3)]
    if not parts or any(p is None for p in parts) or len({len(p) for p in parts}) != 1:
        return _result(node)
    axis = int(attrs.get("axis", 0)) % len(parts[0])
    along = [as_poly(p[axis]) for p in parts]
    total = None if any(d is None for d in along) else as_dim(sum(along))
    rest = broadcast([tuple(1 if a == axis else d for a, d in enumerate(p)) for p in parts])
    out = list(rest)
    out[axis] = total
    return _result(node, [tuple(out)])


# ---------------------------------------------------------------------------------------------
# Signal processing, linear algebra.

@_ms("Rfft")
def _ms_rfft(node, shapes, values, attrs):
    """One-sided: the last signal dim n becomes ``n // 2 + 1`` and a last dim of 2 (real,
    imaginary) is appended."""
    x = _at(shapes, 0)
    if not x:
        return _result(node)
    n = x[-1]
    half = n // 2 + 1 if is_int(n) else None
    return _result(node, [tuple(x[:-1]) + (half, 2)])


@_ms("Irfft")
def _ms_irfft(node, shapes, values, attrs):
    """``[..., m, 2]`` -> ``[..., 2 * (m - 1)]``: the inverse of the one-sided Rfft of an even n."""
    x = _at(shapes, 0)
    if not x or len(x) < 2:
        return _result(node)
    m = x[-2]
    return _result(node, [tuple(x[:-2]) + (2 * (m - 1) if is_int(m) else None,)])


@_ms("DynamicTimeWarping")
def _ms_dynamic_time_warping(node, shapes, values, attrs):
    """``(2, O)`` int32, ``max(M, N) <= O < M + N`` decided by the path (unknown)
    (symbolic_shape_infer: DynamicTimeWarping)."""
    return _result(node, [(2, None)], [I32])


# ---------------------------------------------------------------------------------------------
# Attention.

def _attention_present(x, past, heads, head, share: bool):
    """``(2, B, N, P + S, H)``, or the past's shape when past and present share a buffer."""
    if past is not None and len(past) == 5:
        return tuple(past) if share else (*past[:3], arith("Add", past[3], x[1]), past[4])
    return (2, x[0], heads, x[1], head) if heads else None


@_ms("Attention", "QAttention", "DecoderMaskedSelfAttention")
def _ms_attention(node, shapes, values, attrs):
    """Input ``[B, S, D]`` and packed QKV weight ``[D, hq + hk + hv]`` -> output ``[B, S, hv]``
    (``qkv_hidden_sizes``, else a third of the weight's width); present ``(2, B, N, P + S,
    hk / N)``, the past's shape with ``past_present_share_buffer`` (symbolic_shape_infer:
    Attention). The past is input 4 (input 8 for QAttention)."""
    x, w = _at(shapes, 0), _at(shapes, 1)
    if x is None or w is None or len(x) != 3 or len(w) != 2:
        return _result(node)
    sizes = attrs.get("qkv_hidden_sizes")
    hk, hv = (sizes[1], sizes[2]) if sizes else (_div(w[1], 3),) * 2
    heads = attrs.get("num_heads")
    past = _at(shapes, 8 if node.op_type == "QAttention" else 4)
    share = bool(attrs.get("past_present_share_buffer", 0))
    head = _div(hk, heads) if heads and (not sizes or sizes[1] == sizes[2]) else None
    present = _attention_present(x, past, heads, head, share) if head is not None else None
    return _result(node, [(x[0], x[1], hv), present])


@_ms("PackedAttention")
def _ms_packed_attention(node, shapes, values, attrs):
    """Input ``[T, D]`` -> ``[T, hv]`` (symbolic_shape_infer: PackedAttention)."""
    x, w = _at(shapes, 0), _at(shapes, 1)
    if x is None or w is None or len(x) != 2 or len(w) != 2:
        return _result(node)
    sizes = attrs.get("qkv_hidden_sizes")
    return _result(node, [(x[0], sizes[2] if sizes else _div(w[1], 3))])


def _mha_widths(q, k, v, heads):
    """``(v_hidden, kv_len, head_k, head_v)`` of MultiHeadAttention's query, key and value:
    packed QKV ``[B, S, N, 3, H]``; key ``[B, L, hidden]``, packed KV ``[B, L, N, 2, H]`` or
    cached ``[B, N, L, H]``; value ``[B, L, v_hidden]`` or ``[B, N, L, H_v]``."""
    if len(q) == 5:
        width = arith("Mul", q[2], q[4])
        return width, q[1], q[4], q[4]
    head = _div(q[2], heads) if heads else None
    if k is None:
        return q[2], None, head, head
    if len(k) == 5:
        return arith("Mul", k[2], k[4]), k[1], k[4], k[4]
    if v is not None and len(v) == 4:
        return arith("Mul", v[1], v[3]), k[2] if len(k) == 4 else k[1], head, v[3]
    if v is not None and len(v) == 3:
        return v[2], k[1], head, _div(v[2], heads) if heads else None
    return q[2], k[1] if len(k) == 3 else None, head, head


@_ms("MultiHeadAttention")
def _ms_multi_head_attention(node, shapes, values, attrs):
    """Output ``[B, S, v_hidden]``; present_key/value ``[B, N, P + L, H]`` (the past's shape
    when past_sequence_length says the buffer is shared; the key's own when it is already
    ``[B, N, L, H]``) (symbolic_shape_infer: MultiHeadAttention)."""
    q, k, v = _at(shapes, 0), _at(shapes, 1), _at(shapes, 2)
    if q is None or len(q) not in (3, 5):
        return _result(node)
    heads = attrs.get("num_heads")
    width, kv_len, head_k, head_v = _mha_widths(q, k, v, heads)
    past_k, past_v = _at(shapes, 6), _at(shapes, 7)
    if past_k is not None and len(past_k) != 4:
        past_k = past_v = None
    if k is not None and len(k) == 4:
        pk, pv = k, v
    elif past_k is not None and _has(node, 8):
        pk, pv = past_k, past_v
    else:
        total = kv_len if past_k is None else arith("Add", past_k[2], kv_len)
        pk = (q[0], heads, total, head_k) if heads else None
        pv = (q[0], heads, total, head_v) if heads else None
    return _result(node, [(q[0], q[1], width), pk, pv])


@_ms("DecoderMaskedMultiHeadAttention")
def _ms_decoder_masked_mha(node, shapes, values, attrs):
    """Output ``[B, 1, v_hidden]``: the query's width, a third of a packed QKV query's, the
    value's width (``N * H_v`` for a 4-D value); present_key/value like past_key/value (one
    shared max-length buffer) (symbolic_shape_infer: DecoderMaskedMultiHeadAttention)."""
    q, k, v = _at(shapes, 0), _at(shapes, 1), _at(shapes, 2)
    if q is None or len(q) != 3:
        return _result(node)
    if k is None:
        width = _div(q[2], 3)
    elif v is not None and len(v) == 4:
        width = arith("Mul", v[1], v[3])
    elif v is not None and len(v) == 3:
        width = v[2]
    else:
        width = q[2]
    return _result(node, [(q[0], q[1], width), _at(shapes, 5), _at(shapes, 6)])


@_ms("GroupQueryAttention", "SparseAttention")
def _ms_gqa(node, shapes, values, attrs):
    """Output ``[B, S, N * H]``: the query's width, or with packed QKV (no key input) the
    query width times N / (N + 2 * N_kv) (symbolic_shape_infer: GroupQueryAttention).

    SparseAttention's present key/value share the past's buffer (its schema): the past's shape.
    GroupQueryAttention's present key/value are ``[B, N_kv, max(P, total), H]`` for a constant
    total_sequence_length (input 6) and past length P (0 without a past), as onnxruntime
    allocates them; a runtime total leaves them unknown (the cost rule then reads P + S).
    """
    q = _at(shapes, 0)
    if q is None or len(q) != 3:
        return _result(node)
    heads = attrs.get("num_heads")
    kv_heads = attrs.get("kv_num_heads", heads)
    packed = not _has(node, 1)
    if packed:
        head = _div(q[2], heads + 2 * kv_heads) if heads else None
        width = arith("Mul", head, heads) if head is not None else None
    else:
        head, width = (_div(q[2], heads) if heads else None), q[2]
    if node.op_type == "SparseAttention":
        return _result(node, [(q[0], q[1], width), _at(shapes, 3), _at(shapes, 4)])
    present, total, past_len = None, _at(values, 6), 0
    if _has(node, 3):
        past = _at(shapes, 3)
        past_len = past[2] if past is not None and len(past) == 4 else None
    if total and is_int(total[0]) and is_int(past_len) and kv_heads and head is not None:
        present = (q[0], kv_heads, max(past_len, total[0]), head)
    return _result(node, [(q[0], q[1], width), present, present])


@_ms("PackedMultiHeadAttention")
def _ms_packed_mha(node, shapes, values, attrs):
    """``[T, v_hidden]``: the value's width, or ``N * H`` of a packed ``[T, N, 3, H]`` query
    (symbolic_shape_infer: PackedMultiHeadAttention)."""
    q, v = _at(shapes, 0), _at(shapes, 2)
    if v is not None and len(v) == 2:
        return _result(node, [(v[0], v[1])])
    if q is not None and len(q) == 4:
        return _result(node, [(q[0], arith("Mul", q[1], q[3]))])
    if q is not None and len(q) == 2:
        return _result(node, [tuple(q)])
    return _result(node)


@_ms("PagedAttention")
def _ms_paged_attention(node, shapes, values, attrs):
    """Output ``(T, N * v_head_size)``: the query's shape, but for packed QKV (no key input,
    ``N * H`` of a ``(N + 2 * N_kv) * H`` query) and the LATENT layout (``N * v_head_size``);
    key_cache_out and value_cache_out alias the caches (symbolic_shape_infer: PagedAttention)."""
    q = _at(shapes, 0)
    caches = [_at(shapes, 3), _at(shapes, 4) if _has(node, 4) else None]
    if q is None or len(q) != 2:
        return _result(node, [None] + caches)
    heads, kv_heads = attrs.get("num_heads"), attrs.get("kv_num_heads", 0)
    width = q[1]
    if str_attr(attrs, "kv_cache_layout", "SEPARATE") == "LATENT":
        head = _div(q[1], heads) if heads else None
        v_head = int(attrs.get("v_head_size", 0) or 0) or head
        width = arith("Mul", v_head, heads) if heads and v_head is not None else None
    elif not _has(node, 1):
        head = _div(q[1], heads + 2 * kv_heads) if heads else None
        width = arith("Mul", head, heads) if head is not None else None
    return _result(node, [(q[0], width)] + caches)


@_ms("GatedRelativePositionBias")
def _ms_gated_relative_position_bias(node, shapes, values, attrs):
    """``(B, N, S, S)``: B and S from token_offset ``(B, S)`` when given, else from the query
    ``(B, S, N * H)`` (symbolic_shape_infer: GatedRelativePositionBias)."""
    heads, offset, q = attrs.get("num_heads"), _at(shapes, 6), _at(shapes, 0)
    if offset is not None and len(offset) == 2:
        return _result(node, [(offset[0], heads, offset[1], offset[1])])
    if q is not None and len(q) == 3:
        return _result(node, [(q[0], heads, q[1], q[1])])
    return _result(node)


@_ms("RMSNormRotary")
def _ms_rms_norm_rotary(node, shapes, values, attrs):
    """X ``[B, S, heads, stride]`` -> Y ``[B, S, heads * width]`` (``[1, B * S, heads * width]``
    with flatten_batch), width = input_width or stride - input_start; normalized_fp32
    ``[B, S, heads, width]`` (float). Y is float16 with output_fp16, else bfloat16."""
    x = _at(shapes, 0)
    y_type = F16 if attrs.get("output_fp16", 0) else BF16
    if x is None or len(x) != 4:
        return _result(node, [], [y_type, F32])
    width = int(attrs.get("input_width", 0) or 0) or arith("Sub", x[3], int(attrs.get("input_start", 0) or 0))
    flat = arith("Mul", x[2], width)
    y = (1, arith("Mul", x[0], x[1]), flat) if attrs.get("flatten_batch", 0) else (x[0], x[1], flat)
    return _result(node, [y, (x[0], x[1], x[2], width)], [y_type, F32])


# ---------------------------------------------------------------------------------------------
# Embeddings and normalisation.

@_ms("EmbedLayerNormalization", "QEmbedLayerNormalization")
def _ms_embed(node, shapes, values, attrs):
    """input_ids ``[B, S]`` and word embedding ``[V, H]`` -> ``[B, S, H]``; mask_index ``[B]``
    (int32); embedding_sum ``[B, S, H]`` (symbolic_shape_infer: EmbedLayerNormalization)."""
    ids, words = _at(shapes, 0), _at(shapes, 2)
    if ids is None or words is None or len(ids) != 2 or len(words) != 2:
        return _result(node, [], [0, I32])
    out = (ids[0], ids[1], words[1])
    return _result(node, [out, (ids[0],), out], [0, I32])


@_ms("BiasSplitGelu")
def _ms_bias_split_gelu(node, shapes, values, attrs):
    """``(N, S, D)`` -> ``(N, S, D / 2)`` (symbolic_shape_infer: BiasSplitGelu)."""
    x = _at(shapes, 0)
    return _result(node, [None if not x else _last(x, _div(x[-1], 2))])


@_ms("SwiGLU")
def _ms_swiglu(node, shapes, values, attrs):
    """Shaped like one half: gate's shape with up given, else gate's last dim halved."""
    gate = _at(shapes, 0)
    if _has(node, 1):
        return _result(node, [gate])
    return _result(node, [None if not gate else _last(gate, _div(gate[-1], 2))])


@_ms("HyperConnectionPreMix")
def _ms_hyper_pre_mix(node, shapes, values, attrs):
    """Grouped ``(..., C, H)`` -> ``(..., H)``; flattened ``(..., C * H)`` with num_branches ->
    ``(..., H)`` (symbolic_shape_infer: HyperConnectionPreMix)."""
    x = _at(shapes, 0)
    branches = int(attrs.get("num_branches", 0) or 0)
    if not x:
        return _result(node)
    if branches:
        return _result(node, [_last(x, _div(x[-1], branches))])
    return _result(node, [tuple(x[:-2]) + (x[-1],) if len(x) >= 2 else None])


@_ms("HyperConnectionLowRankMix")
def _ms_hyper_low_rank_mix(node, shapes, values, attrs):
    """streams ``(..., C * H)`` -> pre_output ``(..., H)``, post_gate ``(..., C)``,
    streams_out like streams (symbolic_shape_infer: HyperConnectionLowRankMix)."""
    x = _at(shapes, 0)
    c = int(attrs.get("num_branches", 0) or 0)
    if not x or not c:
        return _result(node, [None, None, x])
    return _result(node, [_last(x, _div(x[-1], c)), _last(x, c), x])


# ---------------------------------------------------------------------------------------------
# Recurrent and state-space ops.

@_ms("DynamicQuantizeLSTM")
def _ms_dynamic_quantize_lstm(node, shapes, values, attrs):
    """As LSTM: Y ``[seq, dirs, batch, hidden]``, Y_h and Y_c ``[dirs, batch, hidden]``; dirs
    from W ``[dirs, input, 4 * hidden]``, hidden from ``hidden_size`` or R ``[dirs, hidden,
    4 * hidden]``."""
    x, w, r = _at(shapes, 0), _at(shapes, 1), _at(shapes, 2)
    if x is None or len(x) != 3:
        return _result(node)
    dirs = w[0] if w else (2 if str_attr(attrs, "direction", "forward") == "bidirectional" else 1)
    hidden = attrs.get("hidden_size") or (r[1] if r and len(r) == 3 else None)
    state = (dirs, x[1], hidden)
    return _result(node, [(x[0], dirs, x[1], hidden), state, state])


@_ms("LinearAttention")
def _ms_linear_attention(node, shapes, values, attrs):
    """Output ``(B, T, max(H_q, H_kv) * d_v)``; present_state ``(B, H_kv, d_k, d_v)`` (with a
    leading ``state_window`` axis when set), ``d_k = query / H_q``, ``d_v = value / H_kv``."""
    q, v = _at(shapes, 0), _at(shapes, 2)
    hq, hkv = attrs.get("q_num_heads"), attrs.get("kv_num_heads")
    if q is None or v is None or len(q) != 3 or len(v) != 3 or not hq or not hkv:
        return _result(node)
    dk, dv = _div(q[2], hq), _div(v[2], hkv)
    state = (q[0], hkv, dk, dv)
    window = int(attrs.get("state_window", 0) or 0)
    return _result(node, [(q[0], q[1], arith("Mul", max(hq, hkv), dv)),
                          (window, *state) if window else state])


@_ms("GatedDeltaNet")
def _ms_gated_delta_net(node, shapes, values, attrs):
    """Output ``(*tokens, max(H_q, H_v), D_v)`` for query ``(*tokens, H_q, D_k)`` and value
    ``(*tokens, H_v, D_v)`` (tokens ``(T,)`` or ``(B, S)``), or packed QKV ``(*tokens, 2 * H_q *
    D_k + H_v * D_v)`` with the heads from initial_state ``(B, H_v, D_v, D_k)``; final_state like
    initial_state (float)."""
    q, state = _at(shapes, 0), _at(shapes, 6)
    if q is None:
        return _result(node, [None, state], [0, F32])
    if _has(node, 1):
        v = _at(shapes, 2)
        if v is None or len(q) < 3 or len(v) != len(q):
            return _result(node, [None, state], [0, F32])
        hq, hv, dv, tokens = q[-2], v[-2], v[-1], tuple(q[:-2])
    else:
        if state is None or len(state) != 4:
            return _result(node, [None, state], [0, F32])
        _, hv, dv, dk = state
        room = arith("Sub", q[-1], arith("Mul", hv, dv))
        hq = _div(room, arith("Mul", 2, dk)) if room is not None else None
        tokens = tuple(q[:-1])
    heads = max(hq, hv) if is_int(hq) and is_int(hv) else (hv if hq == hv else None)
    return _result(node, [tokens + (heads, dv), state], [0, F32])


# ---------------------------------------------------------------------------------------------
# Text generation drivers: shapes from their integer inputs' values.

def _scalar(values, i):
    v = _at(values, i)
    return v[0] if v and is_int(v[0]) else None


@_ms("BeamSearch", "WhisperBeamSearch", "GreedySearch", "Sampling")
def _ms_generation(node, shapes, values, attrs):
    """sequences (int32): ``(B, num_return_sequences, max_length)`` for the beam searches,
    ``(B, max_length)`` for GreedySearch and Sampling; sequences_scores ``(B, R)``; scores
    ``(max_length - S, B, num_beams, vocab_size)``; Sampling's filtered_logits ``(B,
    vocab_size)``; non_speech_probs ``(B)``. Lengths and counts are the values of the scalar
    inputs (max_length, num_beams, num_return_sequences) when constant."""
    ids = _at(shapes, 0)
    if ids is None or len(ids) < 1:
        return _result(node, [], [I32])
    b = ids[0]
    max_len = _scalar(values, 1)
    vocab = int(attrs.get("vocab_size", -1))
    vocab = vocab if vocab > 0 else None
    if node.op_type in ("GreedySearch", "Sampling"):
        return _result(node, [(b, max_len), (b, vocab)], [I32])
    beams, ret = _scalar(values, 3), _scalar(values, 4)
    steps = arith("Sub", max_len, ids[1]) if max_len is not None and len(ids) > 1 else None
    return _result(node, [(b, ret, max_len), (b, ret), (steps, b, beams, vocab), None, (b,)], [I32])


# EPContext and Snpe have a cost rule and no shape rule: they run a compiled graph (an
# execution provider's context, an SNPE DLC) whose outputs only that payload decides; the
# shapes the file declares for them (graph outputs, value_info) are all there is, and the
# engine reads those already. tests/shapes/test_contrib_shapes.py lists them as exempt.
