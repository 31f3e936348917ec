"""Dtypes of onnxruntime's com.microsoft ops' outputs (onnxscore/shapes/contrib.py, ``TYPES``).

ONNX shape inference knows none of these ops, so an output's dtype is onnxscore's to give, from
the op's schema: typed like its inputs of the same type variable (Attention's output like its
input), or of a fixed type (SkipLayerNormalization's float mean, EmbedLayerNormalization's int32
mask_index). Without a dtype, an output has no size in bytes, and neither has the activation
traffic of its layer nor that of every layer reading it. Cases are float16 and bfloat16 models,
where "the type of the first float input" and the schema part ways; where the installed
onnxruntime runs a case on CPU (``ort=True``), its outputs' dtypes must be the same.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import onnx
import pytest
from onnx import TensorProto, helper

import onnxscore
from onnxscore.graph import graph_of
from onnxscore.shapes import contrib
from onnxscore.shapes.dims import CONTRIB_RULES
from tests.opmodels import node_model, weight
from tests.shapes.test_contrib_shapes import const, run_in_onnxruntime

MS = "com.microsoft"
F, F16, BF16 = TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16
I32, I64, BOOL = TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL
BERT = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "bert_fused.onnx")


@dataclass(frozen=True)
class Case:
    """One node, its outputs declared without a type; ``want`` the dtype of each output."""

    id: str
    op: str
    inputs: Sequence
    want: Sequence[int]
    attrs: Mapping = field(default_factory=dict)
    inits: Sequence = ()
    ort: bool = False


H = [1, 4, 8]  # batch 1, sequence 4, hidden 8
CASES = [
    # -- the ops of a fused BERT (onnxruntime.transformers' optimizer) ----------------------
    Case("attention", "Attention", [("x", F16, H), "w", "b", ("mask", I32, [1])], [F16],
         {"num_heads": 2}, [weight("w", [8, 24], F16), weight("b", [24], F16)], ort=True),
    Case("attention_present", "Attention", [("x", F16, H), "w", "b", "", ("past", F16, [2, 1, 2, 3, 4])],
         [F16, F16], {"num_heads": 2}, [weight("w", [8, 24], F16), weight("b", [24], F16)], ort=True),
    Case("skip_layer_norm", "SkipLayerNormalization", [("x", F16, H), ("skip", F16, H), "g", "be", "bi"],
         [F16, F, F, F16],  # output and input_skip_bias_sum are T; mean and inv_std_var are U: float only
         inits=[weight("g", [8], F16), weight("be", [8], F16), weight("bi", [8], F16)], ort=True),
    Case("skip_simplified_layer_norm", "SkipSimplifiedLayerNormalization", [("x", BF16, H), ("skip", BF16, H), "g"],
         [BF16, F, F, BF16], inits=[weight("g", [8], BF16)]),
    Case("embed_layer_norm", "EmbedLayerNormalization",
         [("ids", I32, [1, 4]), ("seg", I32, [1, 4]), "we", "pe", "se", "g", "be"],
         [F16, I32, F16],  # output and embedding_sum like the embeddings (T), mask_index int32
         inits=[weight("we", [10, 8], F16), weight("pe", [16, 8], F16), weight("se", [2, 8], F16),
                weight("g", [8], F16), weight("be", [8], F16)], ort=True),
    Case("embed_layer_norm_float", "EmbedLayerNormalization",
         [("ids", I32, [1, 4]), ("seg", I32, [1, 4]), "we", "pe", "se", "g", "be"], [F, I32, F],
         inits=[weight("we", [10, 8]), weight("pe", [16, 8]), weight("se", [2, 8]), weight("g", [8]),
                weight("be", [8])], ort=True),
    Case("bias_gelu", "BiasGelu", [("a", F16, H), "b"], [F16], inits=[weight("b", [8], F16)], ort=True),
    Case("fast_gelu", "FastGelu", [("x", BF16, H), "b"], [BF16], inits=[weight("b", [8], BF16)]),
    Case("gelu", "Gelu", [("x", F16, H)], [F16], ort=True),
    Case("quick_gelu", "QuickGelu", [("x", F16, H)], [F16], ort=True),
    Case("bias_add", "BiasAdd", [("x", F16, [1, 4, 8]), "b", ("skip", F16, [1, 4, 8])], [F16],
         inits=[weight("b", [8], F16)]),
    Case("gemm_fast_gelu", "GemmFastGelu", [("x", F16, [2, 8]), "w"], [F16], inits=[weight("w", [8, 6], F16)]),
    # -- decoders ---------------------------------------------------------------------------
    Case("multi_head_attention", "MultiHeadAttention", [("q", F16, H), ("k", F16, H), ("v", F16, H)], [F16],
         {"num_heads": 2}, ort=True),
    Case("rotary_embedding", "RotaryEmbedding", [("x", F16, [1, 5, 16]), "pos", "cos", "sin"], [F16],
         {"num_heads": 2}, [weight("pos", [1, 5], I64), weight("cos", [8, 4], F16), weight("sin", [8, 4], F16)],
         ort=True),
    Case("bias_dropout", "BiasDropout", [("x", F16, H), "b"], [F16, BOOL], inits=[weight("b", [8], F16)]),
    Case("sampling", "Sampling", [("ids", I32, [2, 6]), "ml"], [I32, F],  # filtered_logits: float only
         {"vocab_size": 100}, [const("ml", [20], I32)]),
]


def _model(case: Case) -> onnx.ModelProto:
    outs = [(f"y{j}", 0, None) for j in range(len(case.want))]
    return node_model(case.op, case.inputs, outs, case.attrs, case.inits, domain=MS, opset=17)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_output_dtypes(case):
    tensors = graph_of(_model(case)).graph["tensors"]
    assert [tensors[f"y{j}"][1] for j in range(len(case.want))] == list(case.want)


ORT_CASES = [c for c in CASES if c.ort]


@pytest.mark.parametrize("case", ORT_CASES, ids=[c.id for c in ORT_CASES])
def test_onnxruntime_produces_the_same_dtypes(case):
    pytest.importorskip("onnxruntime", reason="onnxruntime runs the contrib ops (pip install onnxruntime)")
    got = run_in_onnxruntime(_model(case), len(case.want), case.op)
    assert [g.dtype for g in got] == [helper.tensor_dtype_to_np_dtype(d) for d in case.want]


def test_an_input_of_unknown_dtype_is_passed_over():
    """SkipLayerNormalization after a tensor of unknown dtype: skip, of the same type variable
    T, decides (not the first float input whatever its variable)."""
    node = helper.make_node("SkipLayerNormalization", ["x", "skip", "g", "b"], ["y", "mean", "inv", "sum"],
                            domain=MS)
    assert contrib.input_dtypes(node, [0, F16, F16, F16]) == [F16, F, F, F16]
    assert contrib.input_dtypes(node, [0, 0, 0, 0]) == [0, F, F, 0]  # the engine's default decides T
    node = helper.make_node("GroupNorm", ["x", "gamma", "beta"], ["y"], domain=MS)
    assert contrib.input_dtypes(node, [0, F, F]) == [0]  # gamma is M, not X's T


def test_beam_search_scores_are_typed_like_the_decoders_logits():
    decoder = helper.make_graph([], "decoder", [], [helper.make_tensor_value_info("logits", F16, None)])
    node = helper.make_node("BeamSearch", ["ids", "ml", "", "nb", "nr"], ["seq", "seq_scores", "scores"],
                            domain=MS, decoder=decoder)
    assert contrib.input_dtypes(node, [I32, I32, 0, I32, I32]) == [I32, F16, F16]
    node = helper.make_node("BeamSearch", ["ids", "ml", "", "nb", "nr", "lp"], ["seq", "seq_scores"], domain=MS)
    assert contrib.input_dtypes(node, [I32, I32, 0, I32, I32, F]) == [I32, F]  # length_penalty is T too


# -- the table ----------------------------------------------------------------------------------

def test_every_shape_rule_has_its_types():
    assert sorted(set(CONTRIB_RULES) ^ set(contrib.TYPES)) == []
    for op, (ins, outs) in contrib.TYPES.items():
        for t in (ins + " " + outs).split():
            assert t in contrib.DTYPE_NAMES or re.fullmatch(r"[A-Z][A-Za-z0-9_]*", t), (op, t)


# The table's departures from onnxruntime's schemas, each explained in contrib.TYPES.
DEPARTURES = {("QGemm", "outputs"): ("TY", "TYZ")}


def _schema_types(schema):
    """(inputs, outputs) as the table writes them: a type variable allowed a single type, for an
    output, is that type."""
    def name(t):
        m = re.fullmatch(r"tensor\((\w+)\)", t)
        return m.group(1) if m else t

    allowed = {c.type_param_str: c.allowed_type_strs for c in schema.type_constraints}
    ins = " ".join(name(i.typeStr) for i in schema.inputs)
    outs = " ".join(name(allowed[o.typeStr][0]) if len(allowed.get(o.typeStr, ())) == 1 else name(o.typeStr)
                    for o in schema.outputs)
    return ins, outs


def test_types_are_onnxruntimes_schemas():
    """TYPES is the type part of the schemas docs/ContribOperators.md is generated from (the
    newest version of each op the installed onnxruntime has)."""
    ort = pytest.importorskip("onnxruntime", reason="the schemas come with onnxruntime")
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state
    newest = {}
    for s in ort_state.get_all_operator_schema():
        if s.domain == MS and (s.name not in newest or s.since_version > newest[s.name].since_version):
            newest[s.name] = s
    missing = sorted(set(contrib.TYPES) - set(newest))
    if len(missing) == len(contrib.TYPES):
        pytest.skip(reason=f"onnxruntime {ort.__version__} lists no com.microsoft schema")
    wrong = {}
    for op, (ins, outs) in contrib.TYPES.items():
        if op not in newest:
            continue
        want_ins, want_outs = _schema_types(newest[op])
        for part, got, want in (("inputs", ins, want_ins), ("outputs", outs, want_outs)):
            change = DEPARTURES.get((op, part))
            if change:
                want = " ".join(change[1] if t == change[0] else t for t in want.split())
            if got != want:
                wrong[op, part] = (got, want)
    assert wrong == {}


# -- a fused BERT -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bert():
    if not os.path.exists(BERT):
        pytest.skip(reason=f"fixture {BERT} is missing (fixtures/export_transformers.py makes it)")
    return onnxscore.analyze(BERT, dims={"seq": 8})


def test_bert_contrib_layers_know_their_bytes(bert):
    """Every com.microsoft layer of the fused BERT (EmbedLayerNormalization, Attention,
    SkipLayerNormalization, BiasGelu) has a dtype for each output, so activation bytes. With
    the sequence length left symbolic no layer has bytes (they are counted for ints only)."""
    contrib_layers = [x for x in bert.top_layers if x.domain == MS]
    assert {x.op_type for x in contrib_layers} == {"EmbedLayerNormalization", "Attention",
                                                   "SkipLayerNormalization", "BiasGelu"}
    assert [x.name for x in contrib_layers if x.activation_bytes is None] == []
    attention = next(x for x in contrib_layers if x.op_type == "Attention")
    assert attention.activation_bytes == 1*8*128 * 4  # batch*seq*hidden float32


def test_bert_every_layer_knows_its_bytes(bert):
    """A default-domain MatMul after a contrib op gets its shape from onnxscore's rule; its
    dtype comes from ONNX's per-node inference, run when a dtype is unknown too."""
    assert [x.name for x in bert.top_layers if x.activation_bytes is None or x.input_bytes is None] == []
