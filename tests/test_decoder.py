"""A 1.3-billion-parameter decoder with 5.3 GB of (sparse) external data: exact counts, no reads."""
import builtins
import io
import os

import pytest
from click.testing import CliRunner

import onnxscore
from onnxscore.cli import main
from tests.builders import DecoderConfig, build_decoder

CFG = DecoderConfig()  # 24 layers, hidden 2048, FFN 8192, vocab 50,257, 2048 positions, tied head


@pytest.fixture(scope="module")
def decoder(tmp_path_factory):
    return build_decoder(CFG, str(tmp_path_factory.mktemp("decoder")))


def test_hand_counts_are_what_the_test_claims():
    # 50257*2048 + 2048*2048 + 24*(4*2048 + 4*2048^2 + 5*2048 + 8192 + 2*2048*8192) + 2*2048
    assert CFG.params == 1_315_723_264 > 1_000_000_000
    # seq 128: 24*(128*2048*6144 + 2*128^2*2048 + 128*2048^2 + 2*128*2048*8192) + 128*2048*50257
    assert CFG.macs(128) == 169_404_006_400


@pytest.mark.parametrize("seq", [1, 128, 2048])
def test_exact_params_and_macs_without_reading_data(decoder, seq, monkeypatch):
    data_file = os.path.join(os.path.dirname(decoder), "decoder.bin")
    assert os.path.getsize(data_file) == CFG.params * 4
    opened = []
    real_open = builtins.open

    def spy(file, *a, **k):
        opened.append(os.path.abspath(os.fspath(file)) if isinstance(file, (str, bytes, os.PathLike)) else file)
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(io, "open", spy)
    r = onnxscore.analyze(decoder, dims={"batch": 1, "seq": seq})
    assert os.path.abspath(data_file) not in opened
    assert r.totals.params == CFG.params  # the tied embedding counted once
    assert r.shared_weights.get("wte") and len(r.shared_weights["wte"]) == 2
    assert r.totals.macs == CFG.macs(seq)
    assert r.totals.weight_bytes == CFG.params * 4
    assert r.totals.complete, (r.unsupported_ops, r.unresolved_dims)


def test_data_file_absent_still_analyzes(tmp_path):
    path = build_decoder(DecoderConfig(layers=2), str(tmp_path), write_data=False)
    r = onnxscore.analyze(path, dims={"seq": 16})
    assert r.totals.params == DecoderConfig(layers=2).params
    assert r.totals.macs == DecoderConfig(layers=2).macs(16)
    assert any("missing" in w for w in r.warnings)


def test_unbound_sequence_is_unknown_and_named(decoder):
    res = CliRunner().invoke(main, ["analyze", decoder, "--format", "json"])
    assert res.exit_code == 0
    import json
    data = json.loads(res.output)
    assert "seq" in data["unresolved_dims"]
    assert any("--dim seq=N" in w for w in data["warnings"])
    assert data["totals"]["complete"] is False
    assert data["totals"]["params"] == CFG.params


def test_mac_polynomial_in_seq_through_reshape_chains(decoder):
    """Unbound seq: the exact polynomial, carried through Shape/Gather/Range and Reshape(0, -1)."""
    r = onnxscore.analyze(decoder)
    L, H, F, V = CFG.layers, CFG.hidden, CFG.ffn, CFG.vocab
    # per block: QKV S*H*3H + out S*H*H + FFN 2*S*H*F (= S*(4H^2 + 2HF)), attention 2*S^2*H; head S*H*V
    seq2, seq1 = 2 * L * H, L * (4 * H * H + 2 * H * F) + H * V
    assert (seq2, seq1) == (98_304, 1_310_885_888)
    assert str(r.totals.macs_formula) == f"{seq2}*seq**2 + {seq1}*seq"
    assert r.totals.macs_formula.evaluate({"seq": 128}) == CFG.macs(128)
    assert r.totals.flops_formula.evaluate({"seq": 128}) == onnxscore.analyze(decoder, dims={"seq": 128}).totals.flops
    assert r.totals.params == CFG.params
