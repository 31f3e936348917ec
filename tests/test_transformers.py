"""Real transformer exports (fixtures/export_transformers.py): a Llama from onnxruntime-genai's
model builder (int4 and fp32) and a BERT before and after onnxruntime's transformer optimizer,
analyzed as shipped, against torch's own counts recorded in fixtures/llm_bert_reference.json
(parameters: sum of p.numel(); MACs: torch.utils.flop_counter.FlopCounterMode FLOPs / 2)."""
import json
import os

import pytest

import onnxscore

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")
REF = json.load(open(os.path.join(FIXTURES, "llm_bert_reference.json")))
LLAMA_DIMS = {"batch_size": 1}


def _analyze(name, **dims):
    return onnxscore.analyze(os.path.join(FIXTURES, name), dims=dims)


def _llama_dims(phase):
    ref = REF["llama"]["macs"][phase]
    seq, past = ref["seq"], ref["past"]
    return ref["total"], dict(LLAMA_DIMS, sequence_length=seq, past_sequence_length=past,
                              total_sequence_length=past + seq)


@pytest.mark.parametrize("name", ["llm_genai_int4.onnx", "llm_genai_fp32.onnx"])
@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_genai_llama_matches_torch(name, phase):
    macs, dims = _llama_dims(phase)
    r = _analyze(name, **dims)
    assert not r.unsupported_ops and r.totals.complete, (r.unsupported_ops, r.unresolved_dims)
    assert r.totals.params == REF["llama"]["torch"]["parameters"]  # int4 weights count as weights
    assert r.totals.macs == macs
    assert r.kv_cache is not None and r.kv_cache.phase == phase
    assert r.kv_cache.past_dim == "past_sequence_length"


def test_int4_stores_what_the_file_holds():
    int4, fp32 = (_analyze(n, **_llama_dims("prefill")[1]) for n in ("llm_genai_int4.onnx", "llm_genai_fp32.onnx"))
    assert int4.totals.params == fp32.totals.params
    assert int4.totals.quant_overhead > 0 and int4.totals.weight_bytes < fp32.totals.weight_bytes / 2
    assert "uint8" in int4.totals.weight_bytes_by_dtype


@pytest.mark.parametrize("name", ["bert_unfused.onnx", "bert_fused.onnx"])
def test_bert_matches_torch_fused_or_not(name):
    r = _analyze(name, batch=1, seq=REF["bert"]["macs"]["seq"])
    assert not r.unsupported_ops and r.totals.complete, (r.unsupported_ops, r.unresolved_dims)
    assert r.totals.params == REF["bert"]["torch"]["parameters"]
    assert r.totals.macs == REF["bert"]["macs"]["total"]


def test_fused_bert_uses_contrib_ops():
    r = _analyze("bert_fused.onnx", batch=1, seq=16)
    domains = {x.op_type for x in r.layers if x.domain == "com.microsoft"}
    assert {"Attention", "SkipLayerNormalization", "EmbedLayerNormalization"} <= domains
