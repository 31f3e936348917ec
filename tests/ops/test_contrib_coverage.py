"""Meta-tests for onnxruntime's contrib ops: ``contrib_covered.txt`` lists every op
``onnxscore/ops/contrib.py`` covers, so coverage can only grow.

Each listed op must have a rule, exist in the installed onnxruntime's schemas and be listed by
``onnxscore ops``; the required list below must stay covered; and no com.microsoft rule may be
registered without being listed.
"""
from __future__ import annotations

import json
import os
from typing import List, Tuple

import pytest
from click.testing import CliRunner

import onnxscore.ops  # noqa: F401  (registers every rule)
from onnxscore.cli import main
from onnxscore.ops import registry

MS = "com.microsoft"
COVERED_FILE = os.path.join(os.path.dirname(__file__), "contrib_covered.txt")

# The ops the contrib-op issue asked for, the first list through DynamicQuantizeLSTM and the
# rest; SimplifiedLayerNormalization is registered by onnxruntime in the default domain.
REQUIRED = [
    "Attention", "MultiHeadAttention", "GroupQueryAttention", "PackedAttention",
    "PackedMultiHeadAttention", "DecoderMaskedMultiHeadAttention", "RotaryEmbedding",
    "GemmaRotaryEmbedding", "SkipLayerNormalization", "SkipSimplifiedLayerNormalization",
    "ai.onnx:SimplifiedLayerNormalization", "EmbedLayerNormalization", "FastGelu", "BiasGelu",
    "Gelu", "QuickGelu", "BiasAdd", "BiasSoftmax", "FusedConv", "FusedGemm", "FusedMatMul",
    "TransposeMatMul", "MatMulNBits", "MatMulIntegerToFloat", "DynamicQuantizeMatMul",
    "MatMulInteger16", "QGemm", "QLinearAdd", "QLinearMul", "QLinearConcat",
    "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearSigmoid", "QLinearSoftmax",
    "QLinearLeakyRelu", "QLinearConv", "QAttention", "GatherBlockQuantized",
    "DynamicQuantizeLSTM",
    "MatMulBnb4", "SparseAttention", "GroupNorm", "SkipGroupNorm", "BiasSplitGelu", "NhwcConv",
    "NhwcMaxPool", "QuantizeLinear", "DequantizeLinear", "Range", "Trilu", "Pad", "GatherND",
    "Unique", "ExpandDims", "Inverse", "Rfft", "Irfft", "CDist", "ComplexMul", "ComplexMulConj",
    "TorchEmbedding", "MoE", "QMoE", "Tokenizer", "EPContext", "Snpe", "SampleOp", "BeamSearch",
    "GreedySearch", "Sampling", "WhisperBeamSearch",
]


def split(entry: str) -> Tuple[str, str]:
    """``(domain, op_type)`` of a list entry: ``Op`` is com.microsoft, ``domain:Op`` names it."""
    domain, _, op = entry.rpartition(":")
    domain = domain or MS
    return ("" if domain == "ai.onnx" else domain), op


def covered() -> List[str]:
    with open(COVERED_FILE) as f:
        return [s for s in (line.strip() for line in f) if s and not s.startswith("#")]


COVERED = covered()


def test_list_has_no_duplicates():
    assert len(COVERED) == len(set(COVERED)) > 100


@pytest.mark.parametrize("entry", COVERED)
def test_listed_op_has_a_documented_rule(entry):
    r = registry.lookup(*split(entry))
    assert r is not None, f"{entry} is listed but has no rule"
    assert r.doc.strip()


def test_every_contrib_rule_is_listed():
    listed = {split(e) for e in COVERED}
    registered = {(r.domain, r.op_type) for r in registry.all_rules() if r.domain == MS}
    assert not registered - listed, "rules missing from contrib_covered.txt"


def test_required_ops_are_covered():
    missing = sorted(set(REQUIRED) - set(COVERED))
    assert not missing, f"required contrib ops not covered: {missing}"


def test_listed_ops_exist_in_onnxruntime():
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as ort
    except ImportError:
        pytest.skip(reason="onnxruntime is not installed (pip install onnxscore[test])")
    schemas = {(s.domain, s.name) for s in ort.get_all_operator_schema()}
    unknown = [e for e in COVERED if split(e) not in schemas]
    assert not unknown, f"not an onnxruntime op: {unknown}"


def _listed_by_cli(domain: str) -> set:
    result = CliRunner().invoke(main, ["ops", "--domain", domain, "--format", "json"])
    assert result.exit_code == 0, result.output
    return {(d["domain"], d["op_type"]) for d in json.loads(result.output)}


def test_ops_command_lists_every_covered_op():
    listed = _listed_by_cli(MS) | _listed_by_cli("ai.onnx")
    missing = [e for e in COVERED if (split(e)[0] or "ai.onnx", split(e)[1]) not in listed]
    assert not missing


def test_ops_command_text_lists_the_contrib_domain():
    result = CliRunner().invoke(main, ["ops", "--domain", MS])
    assert result.exit_code == 0
    lines = [line.split() for line in result.output.splitlines() if line.strip()]
    assert {parts[1] for parts in lines if parts[0] == MS} >= {split(e)[1] for e in COVERED
                                                             if split(e)[0] == MS}
