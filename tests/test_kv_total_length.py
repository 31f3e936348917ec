"""The attention mask's length of a KV-cache decoder is past + new tokens (onnxscore.kvcache
tie_total_length): onnxruntime-genai's `total_sequence_length`, Hugging Face Optimum's
`past_sequence_length + 1`. Given past and seq, it follows; given it and one of them, the other.

The genai Llama (fixtures/llm_genai_config.json): hidden 128, 4 heads of 32, 2 KV heads, FFN 200,
vocab 256, 2 layers. Per new token its 11 matmuls (MatMulNBits in int4, MatMul in fp32) cost
    per layer: qkv 128*256 (128 q + 64 k + 64 v) + o_proj 128*128 + gate, up 2*128*200 + down 200*128
             = 32768 + 16384 + 51200 + 25600 = 125952
    2 layers + lm_head 128*256: 2*125952 + 32768 = 284672 MACs
and each GroupQueryAttention B*N*S*T*2H = 4*S*T*64 = 256*S*T MACs (Q*K^T and P*V over T keys),
2 layers: 512*S*T, with T = P + S.
"""
import json
import os

import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

import onnxscore
from onnxscore.cli import main
from onnxscore.errors import UsageError
from onnxscore.kvcache import detect, mask_length_dim, tie_total_length
from onnxscore.model import load_model

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")
GENAI = ["llm_genai_int4.onnx", "llm_genai_fp32.onnx"]
P, S, T = "past_sequence_length", "sequence_length", "total_sequence_length"


def hand_macs(past, seq):
    return 284672 * seq + 512 * seq * (past + seq)


def _path(name):
    path = os.path.join(FIXTURES, name)
    if not os.path.exists(path):
        pytest.skip(reason=f"fixture {name} is missing (fixtures/export_transformers.py makes it)")
    return path


def _genai_inputs(total=T):
    cache = ("batch_size", 2, P, "kv_cache_dim")
    return {"input_ids": ("batch_size", S), "attention_mask": ("batch_size", total),
            **{f"past_key_values.{i}.{kv}": cache for i in range(2) for kv in ("key", "value")}}


# declared inputs -> the tied dim (None: the graph does not say the mask is past + new)
CASES = [
    ("genai", _genai_inputs(), T),
    ("optimum +1", _genai_inputs("past_sequence_length + 1"), "past_sequence_length + 1"),
    ("optimum sum", _genai_inputs("past_sequence_length + sequence_length"),
     "past_sequence_length + sequence_length"),
    ("short names", {"input_ids": ("b", "s"), "attention_mask": ("b", "p + 1"), "past_key_0": ("b", 2, "p", 8)},
     "p + 1"),
    ("4-D mask", dict(_genai_inputs(), attention_mask=("batch_size", 1, S, T)), T),
    ("mask is the new tokens", _genai_inputs(S), None),
    ("mask is the past", _genai_inputs(P), None),
    ("name not a length", _genai_inputs("width"), None),
    ("onnxscore's own name", _genai_inputs("attention_mask:1"), None),
    ("encoder mask", {**{k: v for k, v in _genai_inputs().items() if k != "attention_mask"},
                      "encoder_attention_mask": ("batch_size", "encoder_sequence_length")}, None),
    ("dim of another input", dict(_genai_inputs(), encoder_hidden_states=("batch_size", T, 128)), None),
    ("no cache", {"input_ids": ("batch_size", S), "attention_mask": ("batch_size", T)}, None),
]


@pytest.mark.parametrize("declared, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_which_mask_dim_is_tied(declared, expected):
    kv = detect(declared, {})
    got = None if kv is None else kv.total_dim
    assert got == expected
    if kv is not None:
        assert got == mask_length_dim(declared, kv.past_inputs, kv.past_dim, kv.seq_dim)


TIES = [
    # (given dims, --input shapes) -> (dims after, note)
    ({P: 5, S: 3}, {}, {P: 5, S: 3, T: 8}, f"{T} = {P} + {S} = 8 (attention mask)"),  # 5 + 3
    ({P: 0, S: 16}, {}, {P: 0, S: 16, T: 16}, f"{T} = {P} + {S} = 16 (attention mask)"),  # prefill
    ({T: 8, S: 3}, {}, {P: 5, S: 3, T: 8}, f"{P} = {T} - {S} = 5 (attention mask)"),  # 8 - 3
    ({T: 8, P: 5}, {}, {P: 5, S: 3, T: 8}, f"{S} = {T} - {P} = 3 (attention mask)"),  # 8 - 5
    ({P: 5}, {"input_ids": (1, 3)}, {P: 5, T: 8}, f"{T} = {P} + {S} = 8 (attention mask)"),  # S from --input
    ({P: 5, S: 3, T: 8}, {}, {P: 5, S: 3, T: 8}, None),  # consistent: nothing to add
    ({T: 5, P: 5}, {}, {P: 5, T: 5}, None),  # T <= P: only a shared buffer; S not derivable
    ({P: 5}, {}, {P: 5}, None),  # one of them: nothing follows
    ({T: 8}, {}, {T: 8}, None),
]


@pytest.mark.parametrize("dims, shapes, after, note", TIES)
def test_tie(dims, shapes, after, note):
    out, notes, warnings = tie_total_length(_genai_inputs(), dims, shapes)
    assert (out, notes, warnings) == (after, [note] if note else [], [])


def test_contradictions():
    with pytest.raises(UsageError, match="longer than past_sequence_length"):
        tie_total_length(_genai_inputs(), {P: 5, S: 3, T: 9}, {})  # 9 > 5 + 3
    with pytest.raises(UsageError, match="shorter than sequence_length=3"):
        tie_total_length(_genai_inputs(), {S: 3, T: 2}, {})  # the mask covers the new tokens
    # fewer than P + S: a max-length buffer of 256 shared by past and present, 20 tokens in it
    out, notes, warnings = tie_total_length(_genai_inputs(), {P: 256, S: 1, T: 20}, {})
    assert out == {P: 256, S: 1, T: 20} and not notes
    assert len(warnings) == 1 and "shared max-length cache buffer of 256 holding 20" in warnings[0]


def test_optimum_plus_one_through_load_model():
    """A tiny Optimum-style graph: the mask's length 'past_sequence_length + 1' is bound too."""
    mask = "past_sequence_length + 1"
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", S]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", mask]),
              helper.make_tensor_value_info("past_key_values.0.key", TensorProto.FLOAT, ["batch_size", 2, P, 4])]
    outputs = [helper.make_tensor_value_info(f"o{i}", t, None) for i, t in
               enumerate((TensorProto.INT64, TensorProto.INT64, TensorProto.FLOAT))]
    nodes = [helper.make_node("Identity", [vi.name], [o.name]) for vi, o in zip(inputs, outputs)]
    model = helper.make_model(helper.make_graph(nodes, "optimum", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 17)])
    loaded = load_model(model, dims={P: 7, S: 1})
    assert loaded.input_shapes["attention_mask"] == (1, 8)  # 7 + 1
    assert loaded.dims == {P: 7, S: 1, mask: 8}
    assert f"{mask} = {P} + {S} = 8 (attention mask)" in loaded.notes


@pytest.mark.parametrize("name", GENAI)
@pytest.mark.parametrize("past, seq, phase", [(0, 16, "prefill"), (15, 1, "decode"), (16, 1, "decode"),
                                              (5, 3, "chunk")])
def test_genai_past_and_seq_alone_give_numbers(name, past, seq, phase):
    r = onnxscore.analyze(_path(name), dims={P: past, S: seq})
    assert r.totals.complete and r.totals.macs_formula is None and not r.unresolved_dims
    # (0, 16): 284672*16 + 512*16*16 = 4554752 + 131072 = 4685824, torch's prefill count
    # (15, 1): 284672 + 512*1*16 = 292864;  (16, 1): 284672 + 512*17 = 293376, torch's decode step
    # (5, 3): 284672*3 + 512*3*8 = 854016 + 12288 = 866304
    assert r.totals.macs == hand_macs(past, seq)
    assert r.kv_cache.phase == phase and r.kv_cache.total_dim == T
    assert f"{T} = {P} + {S} = {past + seq} (attention mask)" in r.notes
    assert r.model.inputs["attention_mask"] == (1, past + seq)
    # the same as giving all three, FLOPs included, and the symbolic polynomials at T = P + S
    explicit = onnxscore.analyze(_path(name), dims={P: past, S: seq, T: past + seq}).totals
    assert (r.totals.macs, r.totals.flops) == (explicit.macs, explicit.flops)
    symbolic = onnxscore.analyze(_path(name)).totals
    values = {S: seq, T: past + seq}
    assert (symbolic.macs_formula.evaluate(values), symbolic.flops_formula.evaluate(values)) == \
        (r.totals.macs, r.totals.flops)


def test_genai_hand_numbers_are_torchs():
    ref = json.load(open(os.path.join(FIXTURES, "llm_bert_reference.json")))["llama"]["macs"]
    assert hand_macs(ref["prefill"]["past"], ref["prefill"]["seq"]) == ref["prefill"]["total"]
    assert hand_macs(ref["decode"]["past"], ref["decode"]["seq"]) == ref["decode"]["total"]


@pytest.mark.parametrize("name", GENAI)
def test_genai_symbolic_says_total_is_tied(name):
    r = onnxscore.analyze(_path(name))
    assert str(r.totals.macs_formula) == "512*sequence_length*total_sequence_length + 284672*sequence_length"
    assert r.kv_cache.phase == "symbolic" and r.kv_cache.total_dim == T
    text = r.kv_cache.describe()
    assert f"attention-mask length '{T}' = past + new" in text and f"({T} follows)" in text
    hint = next(w for w in r.warnings if "exact polynomials" in w)  # asks for what the user sets
    assert f"--dim {P}=N --dim {S}=N" in hint and f"--dim {T}=N" not in hint


def test_cli():
    path = _path(GENAI[0])

    def run(*dims):
        args = ["analyze", path, "--format", "json"] + [a for d in dims for a in ("--dim", d)]
        return CliRunner().invoke(main, args)

    res = run(f"{P}=15", f"{S}=1")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["totals"]["macs"] == 292864  # 284672 + 512*16
    res = run(f"{T}=16", f"{S}=1")
    assert res.exit_code == 0 and json.loads(res.stdout)["totals"]["macs"] == 292864  # P = 16 - 1 = 15 follows
    res = run(f"{P}=5", f"{S}=3", f"{T}=9")
    assert res.exit_code == 2 and "total_sequence_length=9 is longer than" in res.stderr
    # a shared 256-long buffer with 20 tokens: GQA reads 20 keys, 284672 + 512*20 = 294912
    res = run(f"{P}=256", f"{S}=1", f"{T}=20")
    out = json.loads(res.stdout)
    assert res.exit_code == 0 and out["totals"]["macs"] == 294912
    assert any("shared max-length" in w for w in out["warnings"])
