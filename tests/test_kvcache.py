"""A decoder with a KV cache: prefill and per-token costs, and sweeps, against the hand formula."""
import json

import pytest
from click.testing import CliRunner

import onnxscore
from onnxscore.cli import main
from onnxscore.sweep import sweep
from tests.builders import DecoderConfig, build_decoder

CFG = DecoderConfig(layers=2, hidden=64, heads=4, ffn=128, vocab=100, positions=64)
L, H, F, V = CFG.layers, CFG.hidden, CFG.ffn, CFG.vocab


def hand_macs(seq, past):
    # per layer: QKV S*H*3H, Q*K^T and P*V S*(P+S)*H each, out S*H*H, FFN 2*S*H*F; head S*H*V
    return L * (seq * H * 3 * H + 2 * seq * (past + seq) * H + seq * H * H + 2 * seq * H * F) + seq * H * V


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return build_decoder(CFG, str(tmp_path_factory.mktemp("kv")), kv_cache=True)


def test_formula_in_past_and_seq(model):
    r = onnxscore.analyze(model)
    # L*2*H = 256 for seq*past and seq**2; L*(4H^2 + 2HF) + H*V = 2*(16384 + 16384) + 6400 = 71936
    assert str(r.totals.macs_formula) == "256*past*seq + 256*seq**2 + 71936*seq"
    kv = r.kv_cache
    assert (kv.past_dim, kv.seq_dim, kv.phase, len(kv.past_inputs)) == ("past", "seq", "symbolic", 2 * L)


@pytest.mark.parametrize("seq, past, phase", [(16, 0, "prefill"), (1, 100, "decode"), (1, 1000, "decode"),
                                              (4, 8, "chunk")])
def test_prefill_and_per_token(model, seq, past, phase):
    r = onnxscore.analyze(model, dims={"seq": seq, "past": past})
    assert r.totals.macs == hand_macs(seq, past)
    assert r.totals.complete and r.kv_cache.phase == phase
    assert r.totals.params == CFG.params


def test_per_token_cost_grows_with_the_cache(model):
    a, b = (onnxscore.analyze(model, dims={"seq": 1, "past": p}).totals.macs for p in (100, 1000))
    assert b - a == L * 2 * (1000 - 100) * H  # only the attention over the cache grows


def test_sweep_equals_separate_analyses(model):
    rows = sweep(onnxscore.analyze(model), {"past": (0, 512), "seq": (1, 128)})
    assert [(x.values, x.phase) for x in rows] == [
        ({"past": 0, "seq": 1}, "prefill"), ({"past": 0, "seq": 128}, "prefill"),
        ({"past": 512, "seq": 1}, "decode"), ({"past": 512, "seq": 128}, "chunk")]
    for x in rows:
        exact = onnxscore.analyze(model, dims=x.values).totals
        assert (x.macs, x.flops) == (exact.macs, exact.flops) == (hand_macs(x.values["seq"], x.values["past"]), exact.flops)


def test_sweep_cli(model):
    res = CliRunner().invoke(main, ["analyze", model, "--sweep", "past=0,2048", "--dim", "seq=1",
                                    "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["sweep"]
    assert [(r["values"], r["phase"], r["macs"]) for r in rows] == [
        ({"seq": 1, "past": 0}, "prefill", hand_macs(1, 0)), ({"seq": 1, "past": 2048}, "decode", hand_macs(1, 2048))]
    res = CliRunner().invoke(main, ["analyze", model, "--sweep", "seq=1,2", "--dim", "seq=4"])
    assert res.exit_code == 2 and "a swept dim stays symbolic" in res.stderr
    res = CliRunner().invoke(main, ["analyze", model, "--sweep", "heads=1,2", "--dim", "seq=1", "--dim", "past=3"])
    assert res.exit_code == 2 and "do not depend on heads" in res.stderr
    csv_rows = CliRunner().invoke(main, ["analyze", model, "--sweep", "seq=1,8", "--dim", "past=0",
                                         "--format", "csv"]).stdout.splitlines()
    assert csv_rows[0] == "model,past,seq,phase,macs,flops" and csv_rows[2].endswith(f",prefill,{hand_macs(8, 0)}," +
                                                                                     csv_rows[2].rsplit(",", 1)[1])
