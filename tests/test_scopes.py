"""Scopes from real exports: fixtures/export_torch.py exported a ResNet-style and a transformer
encoder with both PyTorch exporters (names for TorchScript, metadata_props for torch.export)
and recorded torch's own counts in fixtures/torch_reference.json; the block roll-ups must agree
with torch module by module, and the two exporters with each other."""
import json
import os

import pytest

import onnxscore

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")
REF = json.load(open(os.path.join(FIXTURES, "torch_reference.json")))["models"]
EXPORTERS = ("torchscript", "dynamo")

# Both exporters fold every BatchNorm(C) into the conv before it: torch's 2C (gamma, beta)
# become a C-element conv bias, so a block has C fewer parameters per BatchNorm it holds.
# TinyResNet: conv1+bn1 (8 ch); layer1: 4 BNs of 8; layer2..4: 4 BNs + 1 downsample BN of 16/32/64.
FOLDED = {"conv1": 8, "layer1": 4 * 8, "layer2": 5 * 16, "layer3": 5 * 32, "layer4": 5 * 64, "fc": 0,
          "layer1/layer1.0": 2 * 8, "layer1/layer1.1": 2 * 8, "layer2/layer2.0": 3 * 16,
          "layer2/layer2.1": 2 * 16, "layer3/layer3.0": 3 * 32, "layer3/layer3.1": 2 * 32,
          "layer4/layer4.0": 3 * 64, "layer4/layer4.1": 2 * 64}


def _analyze(model, exporter):
    return onnxscore.analyze(os.path.join(FIXTURES, f"{model}_{exporter}.onnx"))


def _torch_params(key):
    ref = REF["tiny_resnet"]
    if key == "conv1":
        return ref["params_per_child"]["conv1"] + ref["params_per_child"]["bn1"]
    if "/" in key:
        return ref["params_per_depth2_module"][key.split("/")[1]]
    return ref["params_per_child"][key]


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_resnet_blocks_match_torch(exporter):
    r = _analyze("tiny_resnet", exporter)
    macs = REF["tiny_resnet"]["flop_counter"]["macs_per_module_path"]
    assert r.totals.macs == REF["tiny_resnet"]["flop_counter"]["macs_total"]
    for depth in (1, 2):
        rows = {x.key: x for x in r.by_scope(depth)}
        for m in ("params", "macs", "flops"):
            assert sum(getattr(x, m) for x in rows.values()) == getattr(r.totals, m)
        for key, folded in FOLDED.items():
            if (depth == 1) == ("/" in key):
                continue
            assert rows[key].params == _torch_params(key) - folded, key
            assert rows[key].macs == macs[key.split("/")[-1]], key
    keys = [x.key for x in r.by_scope(1)]
    assert [k for k in keys if k.startswith("layer")] == ["layer1", "layer2", "layer3", "layer4"]
    depth2 = {x.key: x for x in r.by_scope(2)}
    assert depth2["layer1/layer1.0"].repeats == 2  # two identical BasicBlocks without downsample


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_encoder_blocks_match_torch(exporter):
    r = _analyze("tiny_encoder", exporter)
    ref = REF["tiny_encoder"]
    macs = ref["flop_counter"]["macs_per_module_path"]
    assert r.totals.params == ref["params_total"]
    rows = {x.key: x for x in r.by_scope(1)}
    for m in ("params", "macs", "flops"):
        assert sum(getattr(x, m) for x in rows.values()) == getattr(r.totals, m)
    for i in range(4):
        row = rows[f"layers.{i}"]
        assert row.params == ref["params_per_depth2_module"][f"layers.{i}"]
        assert row.macs == macs[f"layers.{i}"]
        assert (row.pattern, row.repeats) == ("layers.N", 4)
    for child in ("embed", "ln_f", "head"):
        assert rows[child].params == ref["params_per_child"][child]
    assert rows["head"].macs == macs["head"]


@pytest.mark.parametrize("model", ["tiny_resnet", "tiny_encoder"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_both_exporters_give_the_same_blocks(model, depth):
    a, b = (_analyze(model, e) for e in EXPORTERS)
    rows = lambda r: {x.key: (x.params, x.macs) for x in r.by_scope(depth) if x.params or x.macs}  # noqa: E731
    assert rows(a) == rows(b)
