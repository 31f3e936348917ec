"""Shape rules of onnxruntime's com.microsoft ops (onnxscore/shapes/contrib.py).

ONNX shape inference knows none of these ops, so every case is a one-node model built with
onnx.helper whose outputs are declared without a shape: only onnxscore's rule can give it. The
expected shapes are worked out by hand next to each case; where the installed onnxruntime has a
CPU kernel for the op (``ort=True``) the case is also run there and must produce those shapes.
Then whole QOperator chains show what the rules are for: the cost downstream becomes exact.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxscore
import onnxscore.ops  # noqa: F401  (registers every cost rule)
from onnxscore.graph import graph_of
from onnxscore.ops import registry
from onnxscore.report import OK
from onnxscore.shapes import contrib
from onnxscore.shapes.dims import window_out
from onnxscore.shapes.dims import CONTRIB_RULES
from tests.opmodels import node_model, weight

MS = "com.microsoft"
F, F16, BF16 = TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16
U8, I8, I16, I32, I64 = TensorProto.UINT8, TensorProto.INT8, TensorProto.INT16, TensorProto.INT32, TensorProto.INT64
BOOL, U32, STR = TensorProto.BOOL, TensorProto.UINT32, TensorProto.STRING

# com.microsoft ops with a cost rule and, on purpose, no shape rule.
EXEMPT = {
    # An execution provider's compiled graph: its outputs are whatever the payload produces. In
    # an EP-context model these nodes are the graph, and their outputs are graph outputs whose
    # declared shapes the engine reads; nothing in the file lets a rule derive them.
    "EPContext",
    # The same for an SNPE DLC payload.
    "Snpe",
}


def const(name, value, dtype):
    """An initializer holding ``value`` (its values matter only where a rule reads them)."""
    return numpy_helper.from_array(np.asarray(value, dtype=helper.tensor_dtype_to_np_dtype(dtype)), name)


# The scale and zero point every QLinear case shares.
QP = [const("s", 0.1, F), const("z", 128, U8)]


@dataclass(frozen=True)
class Case:
    """One node: inputs as node_model takes them, the expected shape of each output (None:
    unknown), the dtypes the rule fixes (0: not checked), whether onnxruntime runs it on CPU."""

    id: str
    op: str
    inputs: Sequence
    expect: Sequence
    attrs: Mapping = field(default_factory=dict)
    inits: Sequence = ()
    dtypes: Sequence = ()
    ort: bool = False


CASES = [
    # -- QOperator elementwise, pooling, concat ----------------------------------------------
    Case("qlinear_add", "QLinearAdd", [("a", U8, [1, 8, 4, 4]), "s", "z", ("b", U8, [8, 1, 1]), "s", "z", "s", "z"],
         [(1, 8, 4, 4)], inits=QP, ort=True),  # [1,8,4,4] broadcast with [8,1,1]
    Case("qlinear_add_symbolic", "QLinearAdd",  # a named dim flows through (a leading one is bound to 1)
         [("a", U8, [1, 8, "H", 4]), "s", "z", ("b", U8, [8, 1, 1]), "s", "z", "s", "z"], [(1, 8, "H", 4)], inits=QP),
    Case("qlinear_mul", "QLinearMul", [("a", U8, [2, 3]), "s", "z", ("b", U8, [3]), "s", "z", "s", "z"],
         [(2, 3)], inits=QP, ort=True),
    Case("qlinear_sigmoid", "QLinearSigmoid", [("x", U8, [2, 3]), "s", "z", "s", "z"], [(2, 3)], inits=QP, ort=True),
    Case("qlinear_leaky_relu", "QLinearLeakyRelu", [("x", U8, [2, 3]), "s", "z", "s", "z"], [(2, 3)],
         {"alpha": 0.1}, QP, ort=True),
    Case("qlinear_softmax", "QLinearSoftmax", [("x", U8, [2, 3]), "s", "z", "s", "z"], [(2, 3)], {"opset": 13}, QP,
         ort=True),
    Case("qlinear_global_average_pool", "QLinearGlobalAveragePool", [("x", U8, [1, 8, 5, 7]), "s", "z", "s", "z"],
         [(1, 8, 1, 1)], inits=QP, ort=True),  # N, C kept, H, W -> 1
    Case("qlinear_global_average_pool_nhwc", "QLinearGlobalAveragePool",
         [("x", U8, [1, 5, 7, 8]), "s", "z", "s", "z"], [(1, 1, 1, 8)], {"channels_last": 1}, QP, ort=True),
    Case("qlinear_average_pool", "QLinearAveragePool", [("x", U8, [1, 3, 9, 9]), "s", "z", "s", "z"],
         [(1, 3, 5, 5)],  # (9 + 1 + 1 - 3)//2 + 1 = 5
         {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, QP, ort=True),
    Case("qlinear_average_pool_ceil", "QLinearAveragePool", [("x", U8, [1, 3, 6, 6]), "s", "z", "s", "z"],
         # ceil((6 + 0 + 1 - 2)/2) + 1 = 4, but window 4 would start at (4-1)*2 = 6 >= 6 + 0, in
         # the end padding: dropped, 3 (onnxruntime's count; ONNX's own inference says 4)
         [(1, 3, 3, 3)], {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 1, 1], "ceil_mode": 1}, QP,
         ort=True),
    Case("qlinear_average_pool_same_upper", "QLinearAveragePool", [("x", U8, [1, 3, 7, 7]), "s", "z", "s", "z"],
         [(1, 3, 4, 4)], {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, QP,
         ort=True),  # ceil(7 / 2) = 4
    Case("qlinear_average_pool_valid", "QLinearAveragePool", [("x", U8, [1, 3, 7, 7]), "s", "z", "s", "z"],
         [(1, 3, 3, 3)], {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "VALID"}, QP,
         ort=True),  # (7 - 3)//2 + 1 = 3
    Case("qlinear_average_pool_nhwc", "QLinearAveragePool", [("x", U8, [1, 9, 9, 3]), "s", "z", "s", "z"],
         [(1, 4, 4, 3)], {"kernel_shape": [3, 3], "strides": [2, 2], "channels_last": 1}, QP,
         ort=True),  # (9 - 3)//2 + 1 = 4
    Case("qlinear_average_pool_symbolic_spatial", "QLinearAveragePool",
         [("x", U8, [1, "C", "H", 9]), "s", "z", "s", "z"], [(1, "C", None, 4)],  # (9 - 3)//2 + 1 = 4
         {"kernel_shape": [3, 3], "strides": [2, 2]}, QP),
    Case("qlinear_concat", "QLinearConcat", ["s", "z", ("a", U8, [1, 2, 4]), "s", "z", ("b", U8, [1, 3, 4]), "s", "z"],
         [(1, 5, 4)], {"axis": 1}, QP, ort=True),  # 2 + 3 = 5
    Case("qlinear_concat_three", "QLinearConcat",
         ["s", "z", ("a", U8, [2, 2]), "s", "z", ("b", U8, [2, 3]), "s", "z", ("c", U8, [2, 1]), "s", "z"],
         [(2, 6)], {"axis": -1}, QP, ort=True),  # 2 + 3 + 1 = 6
    Case("qlinear_where", "QLinearWhere",
         [("c", BOOL, [2, 1]), ("x", U8, [1, 3]), "s", "z", ("y", U8, [2, 3]), "s", "z", "s", "z"], [(2, 3)],
         inits=QP, ort=True),  # [2,1], [1,3], [2,3] broadcast
    Case("qlinear_reduce_mean", "QLinearReduceMean", [("x", U8, [2, 3, 4]), "s", "z", "s", "z"], [(2, 4)],
         {"axes": [1], "keepdims": 0}, QP),
    Case("qlinear_reduce_mean_keepdims", "QLinearReduceMean", [("x", U8, [2, 3, 4]), "s", "z", "s", "z"],
         [(2, 1, 1)], {"axes": [1, -1]}, QP),
    Case("quantize_linear", "QuantizeLinear", [("x", F, [2, 3]), "s", "z"], [(2, 3)], inits=QP, ort=True),
    Case("quantize_linear_no_zero_point", "QuantizeLinear", [("x", F, [2, 3]), "s"], [(2, 3)], inits=QP,
         dtypes=[U8], ort=True),  # the schema's default type
    Case("dequantize_linear", "DequantizeLinear", [("x", U8, [2, 3]), "s", "z"], [(2, 3)], inits=QP, ort=True),
    # -- QOperator contractions ---------------------------------------------------------------
    Case("qlinear_conv", "QLinearConv", [("x", U8, [1, 3, 10, 10]), "s", "z", "w", "s", "zw", "s", "z"],
         [(1, 6, 5, 5)],  # (10 + 1 + 1 - 3)//2 + 1 = 5
         {"strides": [2, 2], "pads": [1, 1, 1, 1]}, QP + [weight("w", [6, 3, 3, 3], I8), const("zw", 0, I8)],
         ort=True),
    Case("qlinear_conv_nhwc", "QLinearConv", [("x", U8, [1, 10, 10, 3]), "s", "z", "w", "s", "zw", "s", "z"],
         [(1, 4, 4, 6)], {"strides": [2, 2], "channels_last": 1},  # (10 - 3)//2 + 1 = 4
         QP + [weight("w", [6, 3, 3, 3], I8), const("zw", 0, I8)], ort=True),
    Case("qlinear_conv_same_lower_grouped", "QLinearConv",
         [("x", U8, [1, 3, 10, 9]), "s", "z", "w", "s", "zw", "s", "z"],
         [(1, 6, 4, 5)], {"strides": [3, 2], "auto_pad": "SAME_LOWER", "group": 3},  # ceil(10/3), ceil(9/2)
         QP + [weight("w", [6, 1, 3, 3], I8), const("zw", 0, I8)], ort=True),
    Case("qlinear_conv_symbolic", "QLinearConv", [("x", U8, [1, 3, "H", "W"]), "s", "z", "w", "s", "zw", "s", "z"],
         [(1, 6, None, None)], {"strides": [2, 2], "pads": [1, 1, 1, 1]},  # strided symbolic dims: unknown
         QP + [weight("w", [6, 3, 3, 3], I8), const("zw", 0, I8)]),
    Case("qgemm_quantized", "QGemm", [("a", U8, [4, 8]), "s", "z", "b", "s", "zw", "", "s", "z"], [(4, 5)],
         {"transB": 1}, QP + [weight("b", [5, 8], I8), const("zw", 0, I8)], ort=True),  # (M, N) = (4, 5)
    Case("qgemm_float", "QGemm", [("a", U8, [8, 4]), "s", "z", "b", "s", "zw"], [(4, 5)], {"transA": 1},
         QP + [weight("b", [8, 5], I8), const("zw", 0, I8)], dtypes=[F], ort=True),  # no y_scale: float
    Case("qattention", "QAttention", [("x", U8, [2, 5, 8]), "w", "b", "s", "s", "", "z", "zw"],
         [(2, 5, 8), (2, 2, 2, 5, 4)],  # hidden 24/3 = 8; present (2, B, N, 0 + S, 8/2)
         {"num_heads": 2}, QP + [weight("w", [8, 24], U8), weight("b", [24]), const("zw", 128, U8)], ort=True),
    Case("dynamic_quantize_matmul", "DynamicQuantizeMatMul", [("a", F, [2, 5, 8]), "b", "s", "zw"], [(2, 5, 6)],
         inits=QP + [weight("b", [8, 6], U8), const("zw", 0, U8)], ort=True),
    Case("matmul_integer_to_float", "MatMulIntegerToFloat", [("a", U8, [2, 5, 8]), "b", "s", "s", "z", "zw"],
         [(2, 5, 6)], inits=QP + [weight("b", [8, 6], U8), const("zw", 0, U8)], ort=True),
    Case("matmul_integer16", "MatMulInteger16", [("a", I16, [2, 3]), "b"], [(2, 4)], inits=[weight("b", [3, 4], I16)],
         dtypes=[I32], ort=True),
    Case("mul_integer", "MulInteger", [("a", U8, [2, 3]), "z", ("b", U8, [3]), "z"], [(2, 3)], inits=QP,
         dtypes=[I32]),
    Case("reduce_sum_integer", "ReduceSumInteger", [("x", U8, [2, 3, 4])], [(2, 4)], {"axes": [1], "keepdims": 0},
         dtypes=[I32]),
    Case("dynamic_quantize_lstm", "DynamicQuantizeLSTM",
         [("x", F, [5, 2, 4]), "W", "R", "", "", "", "", "", "ws", "wz", "ws", "wz"],
         [(5, 2, 2, 3), (2, 2, 3), (2, 2, 3)],  # Y [seq, dirs, batch, hidden], Y_h and Y_c [dirs, batch, hidden]
         {"hidden_size": 3, "direction": "bidirectional"},
         [weight("W", [2, 4, 12], I8), weight("R", [2, 3, 12], I8), const("ws", [1, 1], F), const("wz", [0, 0], I8)],
         ort=True),
    Case("qembed_layer_normalization", "QEmbedLayerNormalization",
         [("ids", I32, [2, 5]), "", "we", "pe", "", "g", "b", ("m", I32, [2, 5]), "s", "s", "", "s", "s",
          "z", "z", "", "z", "z"], [(2, 5, 8), (2,)],
         inits=QP + [weight("we", [10, 8], U8), weight("pe", [16, 8], U8), weight("g", [8], U8),
                     weight("b", [8], U8)], dtypes=[0, I32], ort=True),
    Case("qordered_gelu", "QOrderedGelu", [("x", I8, [2, 8]), "s", "s"], [(2, 8)], inits=QP, dtypes=[I8]),
    Case("qordered_layer_normalization", "QOrderedLayerNormalization", [("x", I8, [2, 8]), "s", "g", "", "s"],
         [(2, 8)], inits=QP + [weight("g", [8])], dtypes=[I8]),
    Case("quantize_with_order", "QuantizeWithOrder", [("x", F, [4, 32]), "s"], [(4, 32)], inits=QP, dtypes=[I8]),
    Case("dequantize_with_order", "DequantizeWithOrder", [("x", I8, [4, 32]), "s"], [(4, 32)], {"to": F16},
         QP, dtypes=[F16]),
    Case("gather_block_quantized_uint8", "GatherBlockQuantized", ["d", ("i", I64, [2, 3]), "sc"],
         [(2, 3, 32)],  # indices + the 16 packed bytes * 8 / 4 bits = 32 columns (scales [10, 32/16])
         {"bits": 4, "block_size": 16}, [weight("d", [10, 16], U8), weight("sc", [10, 2])], ort=True),
    Case("gather_block_quantized_uint8_8bit", "GatherBlockQuantized", ["d", ("i", I64, [3]), "sc"], [(3, 32)],
         {"bits": 8, "block_size": 16}, [weight("d", [10, 32], U8), weight("sc", [10, 2])], ort=True),
    Case("gather_block_quantized_int4", "GatherBlockQuantized", ["d", ("i", I64, [2, 3]), "sc"], [(2, 3, 32)],
         {"block_size": 16}, [helper.make_tensor("d", TensorProto.INT4, [10, 32], [0] * 320),
                              weight("sc", [10, 2])], ort=True),  # int4: the shape is already logical
    # -- convolutions and pooling -------------------------------------------------------------
    Case("fused_conv", "FusedConv", [("x", F, [1, 3, 11, 11]), "w"], [(1, 4, 4, 4)],
         {"activation": "Relu", "strides": [2, 2], "dilations": [2, 2]},  # (11 - 2*(3-1) - 1)//2 + 1 = 4
         [weight("w", [4, 3, 3, 3])], ort=True),
    Case("nhwc_conv", "NhwcConv", [("x", F, [1, 10, 10, 8]), "w"], [(1, 5, 5, 16)],
         {"strides": [2, 2], "pads": [1, 1, 1, 1]},  # weight [M, kH, kW, C]; (10 + 2 - 3)//2 + 1 = 5
         [weight("w", [16, 3, 3, 8])]),
    Case("nhwc_fused_conv", "NhwcFusedConv", [("x", F16, [1, 10, 10, 8]), "w"], [(1, 5, 5, 4)],
         {"strides": [2, 2], "pads": [1, 1, 1, 1], "activation": "Relu"},  # weight [M, C, kH, kW]
         [weight("w", [4, 8, 3, 3], F16)]),
    Case("nhwc_max_pool", "NhwcMaxPool", [("x", U8, [1, 9, 9, 3])], [(1, 4, 4, 3)],
         {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, ort=True),  # ceil((9 - 3)/2) + 1 = 4
    Case("maxpool_with_mask", "MaxpoolWithMask", [("x", F, [1, 1, 6, 6]), ("m", I32, [1, 1, 6, 6])], [(1, 1, 3, 3)],
         {"kernel_shape": [2, 2], "strides": [2, 2]}, ort=True),  # (6 - 2)//2 + 1 = 3
    Case("conv_transpose_with_dynamic_pads", "ConvTransposeWithDynamicPads", [("x", F, [1, 2, 5, 5]), "w", "p"],
         # H: 2*(5-1) + 1 + 2*(3-1) + 1 - 1 - 2 = 11; W: 2*(5-1) + 1 + 1*(3-1) + 1 - 0 - 1 = 11
         [(1, 3, 11, 11)], {"strides": [2, 2], "output_padding": [1, 1], "dilations": [2, 1]},
         [weight("w", [2, 3, 3, 3]), const("p", [1, 0, 2, 1], I64)], ort=True),
    Case("conv_transpose_with_dynamic_pads_runtime_pads", "ConvTransposeWithDynamicPads",
         [("x", F, [1, 2, 5, 5]), "w", ("p", I64, [4])], [(1, 6, None, None)], {"group": 2},  # C = 3 * 2 groups
         [weight("w", [2, 3, 3, 3])]),
    Case("causal_conv_with_state", "CausalConvWithState", [("x", F, [1, 8, 5]), "w"], [(1, 8, 5), (1, 8, 6)],
         {"dilation": 2}, [weight("w", [8, 1, 4])], ort=True),  # state length (4 - 1) * 2 = 6
    Case("varlen_causal_conv_with_state", "VarlenCausalConvWithState",
         [("x", F, [7, 8]), "w", ("cu", I32, [3]), "", ("st", F, [2, 8, 3]), ("cc", I32, [2])],
         [(7, 8), (2, 8, 3), (2, 2, 8)], {"state_update_capacity": 2}, [weight("w", [8, 1, 4])]),
    # -- matrix products ----------------------------------------------------------------------
    Case("fused_matmul", "FusedMatMul", [("a", F, [2, 8, 5]), ("b", F, [2, 6, 8])], [(2, 5, 6)],
         {"transA": 1, "transB": 1}, ort=True),
    Case("fused_matmul_trans_batch", "FusedMatMul", [("a", F, [3, 2, 4, 5]), ("b", F, [2, 4, 5, 6])],
         [(2, 4, 3, 6)], {"transBatchA": 1}, ort=True),  # A read as [2, 4, 3, 5]
    Case("fused_matmul_vector", "FusedMatMul", [("a", F, [5]), ("b", F, [2, 5, 6])], [(2, 6)], ort=True),
    Case("transpose_matmul", "TransposeMatMul", [("a", F, [8, 5]), ("b", F, [8, 6])], [(5, 6)], {"transA": 1}),
    Case("fused_matmul_activation", "FusedMatMulActivation", [("a", F, [2, 5, 8]), ("b", F, [8, 6])], [(2, 5, 6)],
         {"activation": "Relu"}),
    Case("fused_gemm", "FusedGemm", [("a", F, [8, 4]), ("b", F, [5, 8])], [(4, 5)],
         {"transA": 1, "transB": 1, "activation": "Relu"}, ort=True),
    Case("gemm_fast_gelu", "GemmFastGelu", [("x", F, [2, 3, 8]), "w"], [(2, 3, 6)], inits=[weight("w", [8, 6])]),
    Case("gemm_float8", "GemmFloat8", [("a", F16, [4, 8]), ("b", F16, [5, 8])], [(4, 5)],
         {"transB": 1, "dtype": F16}, dtypes=[F16]),
    Case("matmul_nbits", "MatMulNBits", [("a", F, [2, 3, 32]), "b", "sc"], [(2, 3, 8)],
         {"K": 32, "N": 8, "bits": 4, "block_size": 16}, [weight("b", [8, 2, 8], U8), weight("sc", [16])], ort=True),
    Case("matmul_bnb4", "MatMulBnb4", [("a", F, [2, 3, 32]), "b", "am"], [(2, 3, 8)],
         {"K": 32, "N": 8, "block_size": 16, "quant_type": 1}, [weight("b", [128], U8), weight("am", [16])],
         ort=True),
    Case("matmul_fpq4", "MatMulFpQ4", [("a", F, [2, 3, 32]), "b", "bs"], [(2, 3, 8)],  # B_shape (32, 8)
         inits=[weight("b", [160], U8), const("bs", [32, 8], I64)]),
    Case("matmul_nbits_qlora", "MatMulNBitsQLoRA", [("x", F, [3, 32]), "w", "sc", "la", "las", "lb", "lbs"],
         [(3, 8)], {"K": 32, "N": 8}, [weight("w", [8, 1, 16], U8), weight("sc", [8, 1]), weight("la", [4, 1, 32], U8),
                                       weight("las", [4, 1]), weight("lb", [8, 1, 32], U8), weight("lbs", [8, 1])]),
    Case("matmul_packed", "MatMulPacked", [("a", F16, [3, 32]), "b"], [(3, 8)], {"K": 32, "N": 8, "packed_type": 0},
         [weight("b", [8, 18], U8)]),
    Case("matmul_fp4_weight", "MatMulBlockQuantizedFp4Weight", [("a", F16, [3, 32]), "b", "bs", "gs"], [(3, 8)],
         inits=[weight("b", [8, 16], U8), weight("bs", [8, 2], U8), const("gs", 1, F)]),  # N = B.shape[0]
    Case("matmul_fp8_weight", "MatMulBlockQuantizedFp8Weight", [("a", F16, [3, 32]), "b", "bs"], [(3, 8)],
         inits=[helper.make_tensor("b", TensorProto.FLOAT8E4M3FN, [8, 32], [0.0] * 256), weight("bs", [8, 1])]),
    Case("matmul_nbits_mlp", "MatMulNBitsMlp", [("a", F, [2, 3, 32]), ("skip", F, [2, 3, 32]), "ns", "gb", "gs", "",
                                                "ub", "us"], [(2, 3, 8), (2, 3, 32)],
         {"K": 32, "N": 8, "block_size": 32, "activation": "silu"},
         [weight("ns", [32]), weight("gb", [8, 1, 16], U8), weight("gs", [8]), weight("ub", [8, 1, 16], U8),
          weight("us", [8])]),
    Case("matmul_nbits_qkv", "MatMulNBitsQkv", [("a", F, [1, 32]), ("skip", F, [1, 32]), "ns", "qb", "qs", "",
                                                "kb", "ks", "", "vb", "vs"],
         [(1, 16), (1, 8), (1, 8), (1, 32)], {"K": 32, "Nq": 16, "Nkv": 8, "block_size": 32},
         [weight("ns", [32]), weight("qb", [16, 1, 16], U8), weight("qs", [16]), weight("kb", [8, 1, 16], U8),
          weight("ks", [8]), weight("vb", [8, 1, 16], U8), weight("vs", [8])]),
    Case("router_gate_up_proj", "RouterGateUpProj", [("x", BF16, [3, 8]), "w"], [(3, 4), (3, 6)],
         {"router_size": 4}, [weight("w", [8, 4 + 2 * 6], BF16)]),  # inter = (16 - 4) / 2 = 6
    Case("cdist", "CDist", [("a", F, [3, 4]), ("b", F, [5, 4])], [(3, 5)], ort=True),
    # -- attention ------------------------------------------------------------------------------
    Case("attention_with_past", "Attention", [("x", F, [2, 5, 8]), "w", "b", "", ("past", F, [2, 2, 2, 3, 4])],
         [(2, 5, 8), (2, 2, 2, 8, 4)], {"num_heads": 2},  # present length 3 past + 5 new = 8
         [weight("w", [8, 24]), weight("b", [24])], ort=True),
    Case("attention_qkv_hidden_sizes", "Attention", [("x", F, [2, 5, 8]), "w", "b"], [(2, 5, 12), None],
         {"num_heads": 2, "qkv_hidden_sizes": [8, 8, 12]}, [weight("w", [8, 28]), weight("b", [28])]),
    Case("attention_shared_buffer", "Attention",
         [("x", F, [2, 1, 8]), "w", "b", "", ("past", F, [2, 2, 2, 16, 4]), "", "psl"], [(2, 1, 8), (2, 2, 2, 16, 4)],
         {"num_heads": 2, "past_present_share_buffer": 1},
         [weight("w", [8, 24]), weight("b", [24]), const("psl", 3, I32)]),
    Case("decoder_masked_self_attention", "DecoderMaskedSelfAttention",
         [("x", F, [2, 1, 8]), "w", "b", "", ("past", F, [2, 2, 2, 16, 4]), "", "psl"],
         [(2, 1, 8), (2, 2, 2, 16, 4)], {"num_heads": 2, "past_present_share_buffer": 1},
         [weight("w", [8, 24]), weight("b", [24]), const("psl", 3, I32)]),
    Case("packed_attention", "PackedAttention", [("x", F, [7, 8]), "w", "b", ("off", I32, [2, 5]),
                                                 ("cu", I32, [3])], [(7, 8)],  # 24 / 3
         {"num_heads": 2}, [weight("w", [8, 24]), weight("b", [24])]),
    Case("multi_head_attention_with_past", "MultiHeadAttention",
         [("q", F, [2, 5, 16]), ("k", F, [2, 7, 16]), ("v", F, [2, 7, 16]), "", "", "", ("pk", F, [2, 2, 3, 8]),
          ("pv", F, [2, 2, 3, 8])], [(2, 5, 16), (2, 2, 10, 8), (2, 2, 10, 8)],  # 3 past + 7 new
         {"num_heads": 2}, ort=True),
    Case("multi_head_attention_value_width", "MultiHeadAttention",
         [("q", F, [2, 5, 16]), ("k", F, [2, 7, 16]), ("v", F, [2, 7, 32])],
         [(2, 5, 32), (2, 2, 7, 8), (2, 2, 7, 16)], {"num_heads": 2}, ort=True),  # H_v = 32 / 2
    Case("multi_head_attention_packed_kv", "MultiHeadAttention", [("q", F, [2, 5, 16]), ("kv", F, [2, 7, 2, 2, 8])],
         [(2, 5, 16), (2, 2, 7, 8), (2, 2, 7, 8)], {"num_heads": 2}),
    Case("multi_head_attention_packed_qkv", "MultiHeadAttention", [("qkv", F, [2, 5, 2, 3, 8])],
         [(2, 5, 16), (2, 2, 5, 8), (2, 2, 5, 8)], {"num_heads": 2}),  # 2 heads * 8
    Case("multi_head_attention_cached_kv", "MultiHeadAttention",
         [("q", F, [2, 5, 16]), ("k", F, [2, 2, 7, 8]), ("v", F, [2, 2, 7, 8])],
         [(2, 5, 16), (2, 2, 7, 8), (2, 2, 7, 8)], {"num_heads": 2}, ort=True),
    Case("decoder_masked_multi_head_attention", "DecoderMaskedMultiHeadAttention",
         [("q", F, [2, 1, 16]), ("k", F, [2, 1, 16]), ("v", F, [2, 1, 16]), "", "", ("pk", F, [2, 2, 32, 8]),
          ("pv", F, [2, 2, 32, 8]), "psl"], [(2, 1, 16), (2, 2, 32, 8), (2, 2, 32, 8)],
         {"num_heads": 2, "past_present_share_buffer": 1}, [const("psl", 3, I32)]),
    Case("decoder_masked_multi_head_attention_packed", "DecoderMaskedMultiHeadAttention", [("qkv", F, [2, 1, 48])],
         [(2, 1, 16)], {"num_heads": 2}),  # 48 / 3
    Case("group_query_attention", "GroupQueryAttention",
         [("q", F, [1, 5, 128]), ("k", F, [1, 5, 32]), ("v", F, [1, 5, 32]), "", "", "sk", "total"],
         [(1, 5, 128), (1, 2, 5, 16), (1, 2, 5, 16)],  # head 128 / 8 = 16, present length = total 5
         {"num_heads": 8, "kv_num_heads": 2}, [const("sk", [4], I32), const("total", 5, I32)], ort=True),
    Case("group_query_attention_packed", "GroupQueryAttention", [("qkv", F, [1, 5, 192]), "", "", "", "", "sk", "total"],
         [(1, 5, 128), (1, 2, 5, 16), (1, 2, 5, 16)],  # head 192 / (8 + 2*2) = 16, output 8 * 16
         {"num_heads": 8, "kv_num_heads": 2}, [const("sk", [4], I32), const("total", 5, I32)], ort=True),
    Case("group_query_attention_past", "GroupQueryAttention",
         [("q", F, [1, 1, 128]), ("k", F, [1, 1, 32]), ("v", F, [1, 1, 32]), ("pk", F, [1, 2, 7, 16]),
          ("pv", F, [1, 2, 7, 16]), "sk", "total"], [(1, 1, 128), (1, 2, 8, 16), (1, 2, 8, 16)],  # max(7, 8)
         {"num_heads": 8, "kv_num_heads": 2}, [const("sk", [7], I32), const("total", 8, I32)], ort=True),
    Case("group_query_attention_shared_buffer", "GroupQueryAttention",
         [("q", F, [1, 1, 128]), ("k", F, [1, 1, 32]), ("v", F, [1, 1, 32]), ("pk", F, [1, 2, 16, 16]),
          ("pv", F, [1, 2, 16, 16]), "sk", "total"], [(1, 1, 128), (1, 2, 16, 16), (1, 2, 16, 16)],  # max(16, 8)
         {"num_heads": 8, "kv_num_heads": 2}, [const("sk", [7], I32), const("total", 8, I32)], ort=True),
    Case("group_query_attention_runtime_total", "GroupQueryAttention",
         [("q", F, [1, 1, 128]), ("k", F, [1, 1, 32]), ("v", F, [1, 1, 32]), ("pk", F, [1, 2, "past", 16]),
          ("pv", F, [1, 2, "past", 16]), ("sk", I32, [1]), ("total", I32, [])], [(1, 1, 128), None, None],
         {"num_heads": 8, "kv_num_heads": 2}),
    Case("sparse_attention", "SparseAttention",
         [("q", F, [1, 4, 64]), ("k", F, [1, 4, 16]), ("v", F, [1, 4, 16]), ("pk", F, [1, 2, 128, 8]),
          ("pv", F, [1, 2, 128, 8]), ("rows", I32, [1, 9]), ("cols", I32, [1, 20]), ("total", I32, []),
          ("kts", I32, [1])], [(1, 4, 64), (1, 2, 128, 8), (1, 2, 128, 8)],
         {"num_heads": 8, "kv_num_heads": 2, "sparse_block_size": 16}),
    Case("packed_multi_head_attention", "PackedMultiHeadAttention",
         [("q", F, [7, 16]), ("k", F, [7, 16]), ("v", F, [7, 24]), "", ("off", I32, [2, 5]), ("cu", I32, [3])],
         [(7, 24)], {"num_heads": 2}),
    Case("packed_multi_head_attention_packed_qkv", "PackedMultiHeadAttention",
         [("qkv", F, [7, 2, 3, 8]), "", "", "", ("off", I32, [2, 5]), ("cu", I32, [3])], [(7, 16)],
         {"num_heads": 2}),  # 2 heads * 8
    Case("paged_attention", "PagedAttention",
         [("q", F16, [7, 64]), ("k", F16, [7, 16]), ("v", F16, [7, 16]), ("kc", F16, [10, 16, 2, 8]),
          ("vc", F16, [10, 16, 2, 8]), ("cu", I32, [3]), ("past", I32, [2]), ("bt", I32, [2, 4])],
         [(7, 64), (10, 16, 2, 8), (10, 16, 2, 8)], {"num_heads": 8, "kv_num_heads": 2}),
    Case("paged_attention_packed", "PagedAttention",
         [("qkv", F16, [7, 96]), "", "", ("kc", F16, [10, 16, 2, 8]), ("vc", F16, [10, 16, 2, 8]),
          ("cu", I32, [3]), ("past", I32, [2]), ("bt", I32, [2, 4])],
         [(7, 64), (10, 16, 2, 8), (10, 16, 2, 8)],  # head 96 / (8 + 2*2) = 8, output 8 * 8
         {"num_heads": 8, "kv_num_heads": 2}),
    Case("gated_relative_position_bias", "GatedRelativePositionBias",
         [("q", F, [2, 5, 8]), "qb", ("rp", F, [1, 2, 5, 5]), "w", "b", "eco"], [(2, 2, 5, 5)], {"num_heads": 2},
         [weight("qb", [8]), weight("w", [4, 6]), weight("b", [6]), weight("eco", [1, 2, 1, 1])]),
    Case("rotary_embedding", "RotaryEmbedding", [("x", F, [1, 5, 16]), "pos", "cos", "sin"], [(1, 5, 16)],
         {"num_heads": 2}, [weight("pos", [1, 5], I64), weight("cos", [8, 4]), weight("sin", [8, 4])], ort=True),
    Case("m_rotary_embedding", "MRotaryEmbedding", [("x", F, [1, 5, 16]), "pos", "cos", "sin"], [(1, 5, 16)],
         {"num_heads": 2, "mrope_section": [1, 1, 2]},
         [weight("pos", [3, 1, 5], I64), weight("cos", [8, 4]), weight("sin", [8, 4])], ort=True),
    Case("gemma_rotary_embedding", "GemmaRotaryEmbedding",
         [("emb", F, [1, 5, 8]), ("q", F16, [1, 2, 5, 8]), ("qr", F16, [1, 2, 5, 8]), ("k", F16, [1, 1, 5, 8]),
          ("kr", F16, [1, 1, 5, 8])], [(1, 2, 5, 8), (1, 1, 5, 8)]),  # like q and like k, not like emb
    Case("rms_norm_rotary", "RMSNormRotary",
         [("x", BF16, [1, 5, 2, 16]), "sc", ("pos", I64, [1, 5]), "cos", "sin"], [(1, 5, 24), (1, 5, 2, 12)],
         {"input_start": 4, "rotary_embedding_dim": 8},  # width 16 - 4 = 12; 2 heads * 12 = 24
         [weight("sc", [12]), weight("cos", [16, 4], BF16), weight("sin", [16, 4], BF16)], dtypes=[BF16, F]),
    Case("linear_attention", "LinearAttention", [("q", F, [1, 5, 16]), ("k", F, [1, 5, 16]), ("v", F, [1, 5, 24])],
         [(1, 5, 24), (1, 2, 8, 12)],  # d_k = 16/2, d_v = 24/2; output 2 * 12
         {"q_num_heads": 2, "kv_num_heads": 2, "update_rule": "linear"}, ort=True),
    Case("linear_attention_inverse_gqa", "LinearAttention",
         [("q", F, [1, 5, 8]), ("k", F, [1, 5, 16]), ("v", F, [1, 5, 24])],
         [(1, 5, 24), (1, 2, 8, 12)],  # max(1, 2) heads * 12
         {"q_num_heads": 1, "kv_num_heads": 2, "update_rule": "linear"}, ort=True),
    Case("linear_attention_gate", "LinearAttentionGate", [("a", F, [1, 5, 4]), "dt", "ds", ("b", F, [1, 5, 4])],
         [(1, 5, 4), (1, 5, 4)], inits=[weight("dt", [4]), weight("ds", [4])], ort=True),
    Case("gated_delta_net", "GatedDeltaNet",
         [("q", F, [5, 2, 8]), ("k", F, [5, 2, 8]), ("v", F, [5, 4, 6]), "", ("d", F, [5, 4]), ("b", F, [5, 4]),
          ("st", F, [1, 4, 6, 8])], [(5, 4, 6), (1, 4, 6, 8)], ort=True),  # max(2, 4) heads of 6
    Case("gated_delta_net_packed", "GatedDeltaNet",
         [("qkv", F, [5, 2 * 2 * 8 + 4 * 6]), "", "", "", ("d", F, [5, 4]), ("b", F, [5, 4]), ("st", F, [1, 4, 6, 8])],
         [(5, 4, 6), (1, 4, 6, 8)], ort=True),  # H_q = (56 - 4*6) / (2*8) = 2
    Case("engram_gate", "EngramGate", [("k", F, [1, 5, 2, 8]), ("q", F, [1, 5, 2, 8]), ("v", F, [1, 5, 8]), "ks", "qs"],
         [(1, 5, 2, 8)], inits=[weight("ks", [2, 8]), weight("qs", [2, 8])], ort=True),
    # -- normalisation and activations ----------------------------------------------------------
    Case("skip_layer_normalization", "SkipLayerNormalization",
         [("x", F, [2, 3, 8]), ("skip", F, [2, 3, 8]), "g", "b", "bias"], [(2, 3, 8), (2, 3, 1), (2, 3, 1), (2, 3, 8)],
         inits=[weight("g", [8]), weight("b", [8]), weight("bias", [8])], ort=True),
    Case("skip_simplified_layer_normalization", "SkipSimplifiedLayerNormalization",
         [("x", F, [2, 3, 8]), ("skip", F, [2, 3, 8]), "g"], [(2, 3, 8), (2, 3, 1), (2, 3, 1), (2, 3, 8)],
         inits=[weight("g", [8])], ort=True),
    Case("skip_layer_normalization_two_outputs", "SkipLayerNormalization",
         [("x", F, [2, 3, 8]), ("skip", F, [2, 3, 8]), "g"], [(2, 3, 8), (2, 3, 1)],  # the mean, not the sum
         inits=[weight("g", [8])], dtypes=[0, F], ort=True),
    Case("embed_layer_normalization", "EmbedLayerNormalization",
         [("ids", I32, [2, 5]), "", "we", "pe", "", "g", "b", ("m", I32, [2, 5])], [(2, 5, 8), (2,), (2, 5, 8)],
         inits=[weight("we", [10, 8]), weight("pe", [16, 8]), weight("g", [8]), weight("b", [8])],
         dtypes=[0, I32], ort=True),
    Case("group_norm", "GroupNorm", [("x", F, [1, 4, 4, 8]), "g", "b"], [(1, 4, 4, 8)],
         {"groups": 2, "activation": 0, "epsilon": 1e-5}, [weight("g", [8]), weight("b", [8])]),
    Case("skip_group_norm", "SkipGroupNorm", [("x", F, [1, 4, 4, 8]), "g", "b", ("skip", F, [1, 4, 4, 8])],
         [(1, 4, 4, 8), (1, 4, 4, 8)], {"groups": 2, "activation": 0, "epsilon": 1e-5},
         [weight("g", [8]), weight("b", [8])]),
    Case("gated_rms_norm", "GatedRMSNorm", [("x", F, [2, 16]), "s", ("g", F, [2, 16])], [(2, 16)],
         inits=[weight("s", [4])], ort=True),
    Case("branchwise_rms_norm", "BranchwiseRMSNorm", [("x", F, [2, 3, 8])], [(2, 3, 8)], ort=True),
    Case("bias_gelu", "BiasGelu", [("a", F, [2, 4]), ("b", F, [4])], [(2, 4)], ort=True),
    Case("fast_gelu", "FastGelu", [("x", F, [2, 3, 8])], [(2, 3, 8)], ort=True),
    Case("gelu", "Gelu", [("x", F, [2, 3, 8])], [(2, 3, 8)], ort=True),
    Case("quick_gelu", "QuickGelu", [("x", F, [2, 3, 8])], [(2, 3, 8)], ort=True),
    Case("bias_add", "BiasAdd", [("x", F, [2, 3, 8]), "b", ("skip", F, [2, 3, 8])], [(2, 3, 8)],
         inits=[weight("b", [8])]),
    Case("bias_softmax", "BiasSoftmax", [("x", F, [2, 4, 8]), ("b", F, [2, 4, 8])], [(2, 4, 8)], {"axis": -1}),
    Case("scaled_silu", "ScaledSiLU", [("x", F, [2, 8])], [(2, 8)], ort=True),
    Case("gated_add", "GatedAdd", [("x", F, [2, 8]), ("y", F, [2, 8]), ("g", F, [2, 1])], [(2, 8)], ort=True),
    Case("bias_split_gelu", "BiasSplitGelu", [("x", F, [1, 4, 16]), "b"], [(1, 4, 8)],  # 16 / 2
         inits=[weight("b", [16])]),
    Case("swiglu_fused", "SwiGLU", [("g", F, [2, 16])], [(2, 8)]),  # one [.., 2 * 8] projection
    Case("swiglu", "SwiGLU", [("g", F, [2, 16]), ("u", F, [2, 16])], [(2, 16)]),
    Case("bias_dropout", "BiasDropout", [("x", F, [2, 40]), "b"], [(2, 40), (2, 40)], inits=[weight("b", [40])],
         dtypes=[0, BOOL]),
    Case("bitmask_dropout", "BitmaskDropout", [("x", F, [2, 40])], [(2, 40), (3,)],  # ceil(2*40 / 32) = 3
         dtypes=[0, U32]),
    Case("bitmask_bias_dropout", "BitmaskBiasDropout", [("x", F, [2, 40]), "b"], [(2, 40), (3,)],
         inits=[weight("b", [40])], dtypes=[0, U32]),
    Case("hyper_connection_pre_mix", "HyperConnectionPreMix", [("x", F, [2, 3, 8]), ("p", F, [2, 3, 8])], [(2, 8)],
         ort=True),
    Case("hyper_connection_pre_mix_flat", "HyperConnectionPreMix", [("x", F, [2, 24]), ("p", F, [2, 3])], [(2, 8)],
         {"num_branches": 3}, ort=True),  # 24 / 3
    Case("hyper_connection_post_mix", "HyperConnectionPostMix", [("x", F, [2, 3, 8]), ("o", F, [2, 8]),
                                                                 ("p", F, [2, 3])], [(2, 3, 8)], ort=True),
    Case("hyper_connection_low_rank_mix", "HyperConnectionLowRankMix", [("x", F, [2, 24]), "ns", "dw", "uw", "iw"],
         [(2, 8), (2, 3), (2, 24)], {"num_branches": 3},  # H = 24 / 3, C = 3
         [weight("ns", [24]), weight("dw", [24, 4]), weight("uw", [4, 24]), weight("iw", [24, 3])]),
    Case("moe", "MoE", [("x", F, [2, 3, 8]), ("r", F, [6, 4]), "f1", "", "f2"], [(2, 3, 8)], {"k": 2},
         [weight("f1", [4, 16, 8]), weight("f2", [4, 8, 16])], ort=True),
    Case("qmoe", "QMoE", [("x", F, [6, 16]), ("r", F, [6, 4]), "f1", "s1", "", "f2", "s2"], [(6, 16)],
         {"k": 2, "expert_weight_bits": 8},
         [weight("f1", [4, 32, 16], U8), weight("s1", [4, 32]), weight("f2", [4, 16, 32], U8), weight("s2", [4, 16])],
         ort=True),
    Case("moe_packed", "MoEPacked", [("x", F16, [6, 16]), ("r", F, [6, 4]), "g", "u", "d"], [(6, 16)],
         inits=[weight("g", [4, 8, 10], U8), weight("u", [4, 8, 10], U8), weight("d", [4, 16, 6], U8)]),
    # -- data movement, signal processing, linear algebra -----------------------------------
    Case("complex_mul", "ComplexMul", [("a", F, [2, 3, 2]), ("b", F, [3, 2])], [(2, 3, 2)]),
    Case("complex_mul_conj", "ComplexMulConj", [("a", F, [3, 2]), ("b", F, [4, 1, 2])], [(4, 3, 2)]),
    Case("is_all_finite", "IsAllFinite", [("x", F, [3, 4]), ("y", F, [2])], [()], dtypes=[BOOL]),
    Case("inverse", "Inverse", [("x", F, [3, 4, 4])], [(3, 4, 4)], ort=True),
    Case("trilu", "Trilu", [("x", F, [3, 4, 5])], [(3, 4, 5)], ort=True),
    Case("gather_nd", "GatherND", [("x", F, [3, 4, 5]), "idx"], [(2, 5)],  # [2] + x[2:]
         inits=[weight("idx", [2, 2], I64)], ort=True),
    Case("torch_embedding", "TorchEmbedding", ["w", ("i", I64, [2, 3])], [(2, 3, 4)], inits=[weight("w", [10, 4])]),
    Case("gather_packed", "GatherPacked", ["d", ("i", I64, [2, 3])], [(2, 3, 32)], {"K": 32, "packed_type": 0},
         [weight("d", [10, 18], U8)], dtypes=[BF16]),  # output_dtype defaults to bfloat16
    Case("expand_dims", "ExpandDims", [("x", F, [3, 4]), "ax"], [(3, 4, 1)], inits=[const("ax", -1, I32)], ort=True),
    Case("pad", "Pad", [("x", F, [3, 4]), "p"], [(6, 7)],  # 3 + 1 + 2, 4 + 0 + 3
         inits=[const("p", [1, 0, 2, 3], I64)], ort=True),
    Case("range", "Range", ["a", "b", "c"], [(3,)],  # ceil((11 - 2) / 3) = 3
         inits=[const("a", 2, I64), const("b", 11, I64), const("c", 3, I64)], ort=True),
    Case("unique", "Unique", [("x", F, [6])], [(None,), (6,), (None,)], dtypes=[0, I64, I64]),  # data decides
    Case("tokenizer", "Tokenizer", [("x", STR, [2])], [(2, None)],
         {"mark": 0, "mincharnum": 1, "pad_value": "#", "separators": [" "]}),
    Case("unfold_tensor", "UnfoldTensor", [("x", F, [2, 10, 3])], [(2, 3, 3, 4)],  # (10 - 4)//3 + 1 = 3, + size 4
         {"dim": 1, "size": 4, "step": 3}, ort=True),
    Case("remove_padding", "RemovePadding", [("x", F, [2, 5, 8]), ("cnt", I32, [2])],
         [(None, 8), (2, 5), (3,), (1,)], dtypes=[0, I32, I32, I32]),  # the token count is data
    Case("restore_padding", "RestorePadding", [("x", F, [8, 16]), ("off", I32, [2, 5])], [(2, 5, 16)]),
    Case("crop_and_resize", "CropAndResize", [("x", F, [1, 3, 8, 8]), "r", "bi", "cs"], [(2, 3, 4, 5)],
         inits=[weight("r", [2, 4]), weight("bi", [2], I32), const("cs", [4, 5], I32)], ort=True),
    Case("grid_sample", "GridSample", [("x", F, [1, 3, 8, 8]), ("g", F, [1, 4, 5, 2])], [(1, 3, 4, 5)], ort=True),
    Case("rfft", "Rfft", [("x", F, [2, 8])], [(2, 5, 2)], {"signal_ndim": 1}),  # 8//2 + 1 = 5, re and im
    Case("irfft", "Irfft", [("x", F, [2, 5, 2])], [(2, 8)], {"signal_ndim": 1}),  # 2 * (5 - 1) = 8
    Case("dynamic_time_warping", "DynamicTimeWarping", [("x", F, [4, 5])], [(2, None)], dtypes=[I32]),
    Case("ngram_repeat_block", "NGramRepeatBlock", [("ids", I64, [2, 4]), ("sc", F, [2, 10])], [(2, 10)],
         {"ngram_size": 2}, ort=True),
    Case("conv_state_replay", "ConvStateReplay", [("a", F, [64]), ("b", F, [32]), ("c", F, [48]), "meta"], [(48,)],
         inits=[weight("meta", [8], I64)]),
    Case("sample_op", "SampleOp", [("x", F, [2, 3])], [(2, 3)], ort=True),
    # -- generation drivers: shapes from the values of their scalar inputs ------------------
    Case("beam_search", "BeamSearch", [("ids", I32, [2, 6]), "ml", "", "nb", "nr"],
         [(2, 2, 20), (2, 2), (14, 2, 4, 100)],  # (B, R, max_length), (B, R), (20 - 6, B, beams, vocab)
         {"vocab_size": 100}, [const("ml", [20], I32), const("nb", [4], I32), const("nr", [2], I32)],
         dtypes=[I32]),
    Case("whisper_beam_search", "WhisperBeamSearch", [("feats", F, [2, 6]), "ml", "", "nb", "nr"],
         [(2, 2, 20), (2, 2), (14, 2, 4, None), None, (2,)], {},
         [const("ml", [20], I32), const("nb", [4], I32), const("nr", [2], I32)], dtypes=[I32]),
    Case("greedy_search", "GreedySearch", [("ids", I32, [2, 6]), "ml"], [(2, 20)],
         inits=[const("ml", [20], I32)], dtypes=[I32]),
    Case("sampling", "Sampling", [("ids", I32, [2, 6]), "ml"], [(2, 20), (2, 100)], {"vocab_size": 100},
         [const("ml", [20], I32)], dtypes=[I32]),
]


def _model(case: Case) -> onnx.ModelProto:
    """The case's node, its outputs declared with neither shape nor type."""
    outs = [(f"y{j}", 0, None) for j in range(len(case.expect))]
    return node_model(case.op, case.inputs, outs, case.attrs, case.inits, domain=MS, opset=17)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_output_shapes(case):
    tensors = graph_of(_model(case)).graph["tensors"]
    assert [tensors[f"y{j}"][0] for j in range(len(case.expect))] == list(case.expect)


@pytest.mark.parametrize("case", [c for c in CASES if c.dtypes], ids=[c.id for c in CASES if c.dtypes])
def test_fixed_output_dtypes(case):
    tensors = graph_of(_model(case)).graph["tensors"]
    for j, dtype in enumerate(case.dtypes):
        if dtype:
            assert tensors[f"y{j}"][1] == dtype, f"output {j}"


def _feeds(model: onnx.ModelProto) -> dict:
    rng = np.random.default_rng(0)
    feeds = {}
    for vi in model.graph.input:
        t = vi.type.tensor_type
        shape = [d.dim_value for d in t.shape.dim]
        if t.elem_type == BOOL:
            feeds[vi.name] = rng.integers(0, 2, shape).astype(bool)
        elif t.elem_type in (I32, I64):  # valid indices, lengths, counts
            feeds[vi.name] = np.zeros(shape, helper.tensor_dtype_to_np_dtype(t.elem_type))
        else:
            feeds[vi.name] = (rng.random(shape) * 4).astype(helper.tensor_dtype_to_np_dtype(t.elem_type))
    return feeds


ORT_CASES = [c for c in CASES if c.ort]


def run_in_onnxruntime(model: onnx.ModelProto, outputs: int, op: str) -> list:
    """``model``'s ``outputs`` first outputs, declared untyped, computed by onnxruntime's CPU
    kernels on generated inputs (skips the test where there is no kernel for ``op``)."""
    import onnxruntime as ort
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    del model.graph.output[:]
    model.graph.output.extend(helper.make_value_info(f"y{j}", onnx.TypeProto()) for j in range(outputs))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except ort_state.NotImplemented:
        pytest.skip(reason=f"onnxruntime {ort.__version__} has no CPU kernel for {op} of these types")
    return session.run(None, _feeds(model))


@pytest.mark.parametrize("case", ORT_CASES, ids=[c.id for c in ORT_CASES])
def test_onnxruntime_produces_the_same_shapes(case):
    """The shape onnxruntime's CPU kernel produces agrees with the rule's, dim by dim (a dim the
    rule leaves unknown is not compared), and so do the dtypes the rule fixes."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime runs the contrib ops (pip install onnxruntime)")
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state
    if not any(s.name == case.op and s.domain == MS for s in ort_state.get_all_operator_schema()):
        pytest.skip(reason=f"onnxruntime {ort.__version__} does not have {case.op} yet")
    got = run_in_onnxruntime(_model(case), len(case.expect), case.op)
    for j, want in enumerate(case.expect):
        if want is not None:
            assert len(got[j].shape) == len(want)
            assert all(w is None or w == g for w, g in zip(want, got[j].shape)), (j, got[j].shape)
    for j, dtype in enumerate(case.dtypes):
        if dtype:
            assert got[j].dtype == helper.tensor_dtype_to_np_dtype(dtype), (j, got[j].dtype)


# -- the meta-tests ---------------------------------------------------------------------------

def test_every_contrib_cost_rule_has_a_shape_rule():
    """A com.microsoft op with a cost rule must get a shape rule, or be exempt with a reason."""
    costed = {r.op_type for r in registry.all_rules() if r.domain == MS}
    assert sorted(costed - set(CONTRIB_RULES) - EXEMPT) == []
    assert sorted(EXEMPT - costed) == [], "exempt ops that have no cost rule"
    assert sorted(EXEMPT & set(CONTRIB_RULES)) == [], "exempt ops that have a shape rule after all"


def test_every_shape_rule_is_tested_here():
    """Each com.microsoft shape rule appears in CASES, so a new rule cannot slip in untested."""
    assert sorted(set(CONTRIB_RULES) - {c.op for c in CASES}) == []


# -- the window arithmetic --------------------------------------------------------------------

@pytest.mark.parametrize("args, kwargs, want", [
    ((56, 3, 2, 1, 1), {}, 28),                     # (56 + 1 + 1 - 3)//2 + 1 = 28
    ((224, 7, 2, 3, 3), {}, 112),                   # (224 + 3 + 3 - 7)//2 + 1 = 112
    ((11, 3, 2), {"dilation": 2}, 4),               # (11 - (2*(3-1) + 1))//2 + 1 = 4
    ((7, 3, 2), {"auto_pad": "SAME_UPPER"}, 4),     # ceil(7/2) = 4
    ((7, 3, 2), {"auto_pad": "SAME_LOWER"}, 4),     # ceil(7/2) = 4
    ((7, 3, 2, 5, 5), {"auto_pad": "VALID"}, 3),    # pads ignored: (7 - 3)//2 + 1 = 3
    ((112, 3, 2, 0, 0), {"ceil_mode": True}, 56),   # ceil((112 - 3)/2) + 1 = 56, starts at 110 < 112
    ((6, 2, 2, 0, 1), {"ceil_mode": True}, 3),      # ceil(5/2) + 1 = 4, but start 6 >= 6: 3
    ((5, 2, 2), {"ceil_mode": True}, 3),            # ceil(3/2) + 1 = 3, start 4 < 5
    ((2, 3, 1), {}, None),                          # no room for one window
    (("H", 3, 1, 1, 1), {}, None),                  # a symbolic spatial dim stays unknown (for now)
])
def test_window_out(args, kwargs, want):
    assert window_out(*args, **kwargs) == want


# -- dtypes typed like an input ---------------------------------------------------------------

def test_input_dtypes_table():
    """QLinear outputs take their quantized input's type, QGemm/QLinearConv the output zero
    point's, GemmaRotaryEmbedding q's and k's."""
    node = helper.make_node("QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["c"], domain=MS)
    assert contrib.input_dtypes(node, [I8, F, I8, I8, F, I8, F, I8]) == [I8]
    node = helper.make_node("QLinearConv", ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy"], ["y"], domain=MS)
    assert contrib.input_dtypes(node, [U8, F, U8, I8, F, I8, F, U8]) == [U8]
    node = helper.make_node("QGemm", ["a", "sa", "za", "b", "sb", "zb"], ["y"], domain=MS)
    assert contrib.input_dtypes(node, [U8, F, U8, I8, F, I8]) == [0]  # no y_zero_point: the rule says float
    node = helper.make_node("GemmaRotaryEmbedding", ["emb", "q", "qr", "k", "kr"], ["o1", "o2"], domain=MS)
    assert contrib.input_dtypes(node, [F, F16, F16, F16, F16]) == [F16, F16]


def test_qlinear_output_is_typed_like_its_input():
    case = next(c for c in CASES if c.id == "qlinear_add")
    assert graph_of(_model(case)).graph["tensors"]["y0"][1] == U8


# -- the cost downstream ----------------------------------------------------------------------

def _qoperator_resnet_block() -> onnx.ModelProto:
    """QOperator residual block as onnxruntime's quantizer writes it (opset 13 + com.microsoft 1):
    QLinearConv (default domain) x2 -> QLinearAdd -> QLinearGlobalAveragePool -> a 1x1 QLinearConv
    head, and Flatten -> QGemm."""
    def qconv(name, x, w, y, **attrs):
        return helper.make_node("QLinearConv", [x, "s", "z", w, "s", "zw", "s", "z", w + "_b"], [y], name=name, **attrs)

    nodes = [
        qconv("conv1", "x", "w1", "c1", strides=[2, 2], pads=[1, 1, 1, 1]),
        qconv("conv2", "c1", "w2", "c2", pads=[1, 1, 1, 1]),
        helper.make_node("QLinearAdd", ["c1", "s", "z", "c2", "s", "z", "s", "z"], ["add"], name="add", domain=MS),
        helper.make_node("QLinearGlobalAveragePool", ["add", "s", "z", "s", "z"], ["gap"], name="gap", domain=MS),
        qconv("head_conv", "gap", "w3", "logits_map"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("QGemm", ["flat", "s", "z", "wg", "s", "zw", "wg_b", "s", "z"], ["logits"], name="fc",
                         domain=MS, transB=1),
    ]
    inits = QP + [const("zw", 0, I8),
                  weight("w1", [16, 3, 3, 3], I8), weight("w1_b", [16], I32),
                  weight("w2", [16, 16, 3, 3], I8), weight("w2_b", [16], I32),
                  weight("w3", [10, 16, 1, 1], I8), weight("w3_b", [10], I32),
                  weight("wg", [10, 16], I8), weight("wg_b", [10], I32)]
    graph = helper.make_graph(nodes, "qresnet", [helper.make_tensor_value_info("x", U8, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("logits_map", U8, None),
                               helper.make_tensor_value_info("logits", U8, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(MS, 1)])


def test_qoperator_chain_onnx_alone_leaves_the_contrib_outputs_shapeless():
    inferred = onnx.shape_inference.infer_shapes(_qoperator_resnet_block())
    shaped = {vi.name for vi in inferred.graph.value_info if vi.type.tensor_type.HasField("shape")}
    assert "c2" in shaped  # the default-domain QLinearConv ONNX knows
    assert not {"add", "gap", "flat"} & shaped


def test_qoperator_chain_shapes():
    tensors = graph_of(_qoperator_resnet_block()).graph["tensors"]
    assert tensors["c1"][0] == (1, 16, 16, 16)      # (32 + 1 + 1 - 3)//2 + 1 = 16
    assert tensors["add"][0] == (1, 16, 16, 16)     # c1 + c2, same shape
    assert tensors["gap"][0] == (1, 16, 1, 1)       # N, C kept, H, W -> 1
    assert tensors["flat"][0] == (1, 16)            # Flatten: ONNX, now that gap has a shape
    assert tensors["logits"][0] == (1, 10)          # QGemm (M, N)


def test_qoperator_chain_default_domain_conv_after_a_contrib_op():
    tensors = graph_of(_qoperator_resnet_block()).graph["tensors"]
    assert tensors["gap"][1] == U8
    assert tensors["logits_map"][0] == (1, 10, 1, 1)  # 1x1 conv of [1, 16, 1, 1] to 10 channels


def test_qoperator_chain_costs_are_exact():
    report = onnxscore.analyze(_qoperator_resnet_block())
    layers = {layer.name: layer for layer in report.layers}
    assert all(layer.status in (OK, "zero") for layer in report.layers), \
        {n: layer.status for n, layer in layers.items()}
    assert layers["conv1"].macs == 1*16*16*16 * 3*3*3            # N*Cout*H*W * Cin*Kh*Kw = 110592
    assert layers["conv2"].macs == 1*16*16*16 * 16*3*3           # 589824
    assert layers["head_conv"].macs == 1*10*1*1 * 16*1*1         # after the pool: 160
    assert layers["fc"].macs == 1*10*16                          # M*N*K = 160
    # QLinearAdd: dequantize both inputs (mul + zero point each), add, quantize (div, round,
    # 2 saturate compares, + zero point), per element of [1, 16, 16, 16]
    assert layers["add"].flops == 4096 * (2 + 2) + 4096 * (1 + 4 + 1)
    # the pool: dequantize (2 per element), the means (1 per element), quantize the 16 outputs
    assert layers["gap"].flops == 4096 * 2 + 4096 + 16 * (4 + 1)
    assert report.totals.macs == 110592 + 589824 + 160 + 160


def _chain(nodes, inputs, inits=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                              [helper.make_tensor_value_info("out", F, None)], list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)])


def _layer(model, name):
    return next(layer for layer in onnxscore.analyze(model).layers if layer.name == name)


def test_fused_conv_then_conv():
    model = _chain([helper.make_node("FusedConv", ["x", "w1"], ["h"], name="fused", domain=MS, activation="Relu",
                                     strides=[2, 2], pads=[1, 1, 1, 1]),
                    helper.make_node("Conv", ["h", "w2"], ["out"], name="conv", pads=[1, 1, 1, 1])],
                   [("x", F, [1, 3, 56, 56])], [weight("w1", [8, 3, 3, 3]), weight("w2", [16, 8, 3, 3])])
    layer = _layer(model, "conv")
    assert layer.status == OK
    assert layer.macs == 1*16*28*28 * 8*3*3  # (56 + 2 - 3)//2 + 1 = 28 in, 28 out


def test_nhwc_conv_cost_reads_its_nhwc_weight():
    """NhwcConv's weight is [M, kH, kW, C] (onnxruntime's fusion_nhwc_conv writes it so): the
    output shape the rule gives is what makes the count right."""
    model = _chain([helper.make_node("NhwcConv", ["x", "w"], ["out"], name="nhwc", domain=MS, strides=[2, 2],
                                     pads=[1, 1, 1, 1])], [("x", F, [1, 56, 56, 8])], [weight("w", [16, 3, 3, 8])])
    layer = _layer(model, "nhwc")
    assert layer.output_shapes[0] == (1, 28, 28, 16)  # (56 + 2 - 3)//2 + 1 = 28
    assert layer.macs == 1*28*28*16 * 3*3*8


def test_qlinear_average_pool_own_cost_needs_its_output():
    model = _chain([helper.make_node("QLinearAveragePool", ["x", "s", "z", "s", "z"], ["out"], name="pool",
                                     domain=MS, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
                   [("x", U8, [1, 8, 56, 56])], QP)
    layer = _layer(model, "pool")
    assert layer.status == OK
    outputs = 1*8*28*28  # (56 + 2 - 3)//2 + 1 = 28
    # dequantize 2 per input element, 3*3 adds/divide per output, quantize 4 + zero point per output
    assert layer.flops == 1*8*56*56 * 2 + outputs * 9 + outputs * (4 + 1)


def test_matmul_fpq4_then_matmul():
    model = _chain([helper.make_node("MatMulFpQ4", ["x", "b", "bs"], ["h"], name="fpq4", domain=MS),
                    helper.make_node("MatMul", ["h", "w"], ["out"], name="mm")],
                   [("x", F, [2, 5, 32])], [weight("b", [160], U8), const("bs", [32, 8], I64), weight("w", [8, 4])])
    layer = _layer(model, "mm")
    assert layer.status == OK
    assert layer.macs == 2*5*4*8  # batch*M*N*K with h [2, 5, 8]


def test_gather_block_quantized_embedding_then_lm_head():
    model = _chain([helper.make_node("GatherBlockQuantized", ["table", "ids", "sc"], ["h"], name="embed",
                                     domain=MS, bits=4, block_size=16),
                    helper.make_node("MatMul", ["h", "w"], ["out"], name="head")],
                   [("ids", I64, [1, 7])], [weight("table", [100, 16], U8), weight("sc", [100, 2]),
                                            weight("w", [32, 100])])
    layer = _layer(model, "head")
    assert layer.status == OK
    assert layer.macs == 1*7*100*32  # h [1, 7, 16 * 8/4 = 32]


def test_qattention_then_matmul_is_symbolic_in_the_sequence():
    model = _chain([helper.make_node("QAttention", ["x", "w", "b", "s", "s", "", "z", "zw"], ["h"], name="attn",
                                     domain=MS, num_heads=2),
                    helper.make_node("MatMul", ["h", "w2"], ["out"], name="proj")],
                   [("x", U8, [1, "seq", 8])],
                   QP + [weight("w", [8, 24], U8), weight("b", [24]), const("zw", 128, U8), weight("w2", [8, 8])])
    layer = _layer(model, "proj")
    assert layer.status == "symbolic"
    assert layer.macs_formula.evaluate({"seq": 5}) == 1*5*8*8  # h [1, seq, 24/3]
