"""Roll-ups by scope and op type, and hotspots: they sum exactly to the totals and rank the
layers the per-layer numbers say they should."""
import os
import tempfile

import pytest

import onnxscore
from onnxscore.report import scope_key
from tests.builders import DecoderConfig, build_decoder

SUMMED = ("params", "macs", "flops", "activation_bytes", "weight_bytes")


def _sums_match(report, rows):
    for m in ("params", "macs", "flops"):
        assert sum(getattr(r, m) for r in rows) == getattr(report.totals, m), m
    assert sum(r.weight_bytes for r in rows) == report.totals.weight_bytes
    assert sum(r.count for r in rows) == len(report.top_layers)


@pytest.fixture(scope="module")
def resnet50(light_dir):
    return onnxscore.analyze(os.path.join(light_dir, "light_resnet50.onnx"))


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_scope_rollup_sums_to_totals(resnet50, depth):
    _sums_match(resnet50, resnet50.by_scope(depth))


def test_resnet50_blocks_are_named_and_repeats_recognised(resnet50):
    keys = [r.key for r in resnet50.by_scope(1)]
    assert keys[:1] == ["conv1"] and {"res2", "res3", "res4", "res5", "pred"} <= set(keys)
    depth2 = {r.key: r for r in resnet50.by_scope(2)}
    # ResNet-50 stages have 3, 4, 6, 3 bottlenecks; all but the first of each stage are alike
    for stage, blocks in (("res2", 3), ("res3", 4), ("res4", 6), ("res5", 3)):
        first = depth2[f"{stage}/{stage}_0"]
        assert first.repeats == 1  # it has the projection shortcut
        for i in range(1, blocks):
            row = depth2[f"{stage}/{stage}_{i}"]
            assert (row.pattern, row.repeats) == (f"{stage}/{stage}_N", blocks - 1)
    # a res3 bottleneck: 1x1 512->128, 3x3 128->128, 1x1 128->512 convs + 3 BNs (scale, bias)
    assert depth2["res3/res3_1"].params == 512 * 128 + 128 * 128 * 9 + 128 * 512 + 2 * (128 + 128 + 512)


def test_op_type_rollup(resnet50):
    rows = {r.key: r for r in resnet50.by_op_type()}
    _sums_match(resnet50, rows.values())
    assert rows["Conv"].count == 53 and rows["BatchNormalization"].count == 53
    assert resnet50.by_op_type()[0].key == "Conv"  # costliest first


def test_hotspots_match_the_per_layer_numbers(resnet50):
    layers = resnet50.top_layers
    total = resnet50.totals.macs
    hot = resnet50.hotspots(5, "macs")
    expected = sorted((x.macs for x in layers if x.macs), reverse=True)[:5]
    assert [h.value for h in hot] == expected
    assert hot[0].value == 1 * 64 * 112 * 112 * 3 * 7 * 7  # conv1: N*Cout*Ho*Wo*Cin*Kh*Kw
    assert hot[0].share == pytest.approx(118_013_952 / total)
    running = 0
    for h in hot:
        running += h.value
        assert h.cumulative == pytest.approx(running / total)
        assert h.layer.macs == h.value
    by_params = resnet50.hotspots(3, "params")
    assert [h.value for h in by_params] == [512 * 512 * 3 * 3] * 3  # res5 3x3 convs, no bias
    assert resnet50.top_k(2, "macs") == tuple(h.layer for h in hot[:2])


def test_memory_measure_is_bytes_moved(resnet50):
    conv1 = next(x for x in resnet50.top_layers if x.macs == 118_013_952)
    # reads 1x3x224x224 floats, writes 1x64x112x112 floats, reads 64x3x7x7 weights
    assert conv1.input_bytes == 3 * 224 * 224 * 4
    assert conv1.activation_bytes == 64 * 112 * 112 * 4
    assert conv1.weight_bytes == 64 * 3 * 7 * 7 * 4
    assert conv1.memory == (3 * 224 * 224 + 64 * 112 * 112 + 64 * 3 * 7 * 7) * 4
    assert conv1.intensity == pytest.approx(conv1.flops / conv1.memory)
    top = resnet50.hotspots(1, "memory")[0]
    assert top.value == max(x.memory or 0 for x in resnet50.top_layers)
    with pytest.raises(ValueError, match="unknown measure"):
        resnet50.hotspots(3, "latency")


def test_decoder_layers_are_identical_blocks():
    cfg = DecoderConfig(layers=4, hidden=64, heads=4, ffn=128, vocab=100, positions=32)
    path = build_decoder(cfg, tempfile.mkdtemp())
    r = onnxscore.analyze(path, dims={"seq": 8})
    rows = {x.key: x for x in r.by_scope(1)}
    assert [rows[f"h{i}"].repeats for i in range(4)] == [4] * 4
    assert rows["h0"].pattern == "hN"
    _sums_match(r, rows.values())


def test_scope_key():
    assert scope_key("layer1/layer1.0/conv1", 2) == "layer1/layer1.0"
    assert scope_key("layer1", 3) == "layer1"
    assert scope_key("", 1) == "(top)"


def test_a_block_with_an_output_of_unknown_size_has_unknown_activation_bytes():
    """Unknown is never zero: a block whose layer writes a tensor of unknown size has no
    activation-byte sum; a block whose sizes are all known sums them."""
    from onnx import TensorProto, helper

    F = TensorProto.FLOAT
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="/known/Relu"),  # [1, 8] float: 32 bytes
             helper.make_node("NonZero", ["a"], ["nz"], name="/lost/NonZero"),  # [1, ?]: data-dependent
             helper.make_node("Relu", ["a"], ["y"], name="/known/Relu_1")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [1, 8])],
                          [helper.make_tensor_value_info("y", F, None),
                           helper.make_tensor_value_info("nz", TensorProto.INT64, None)])
    r = onnxscore.analyze(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    blocks = {b.key: b for b in r.by_scope(1)}
    assert blocks["known"].activation_bytes == 2 * 1 * 8 * 4  # two Relu outputs of 8 floats
    assert blocks["lost"].activation_bytes is None
    ops = {o.key: o for o in r.by_op_type()}
    assert ops["NonZero"].activation_bytes is None and ops["Relu"].activation_bytes == 64


def test_a_parameter_named_only_bias_is_no_scope():
    """Flat node names, and the weights named ``bias`` and ``W``: such a name spells no module
    (it used to make a scope ``bias`` of every node reading it, then of every node after)."""
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    nodes = [helper.make_node("Add", ["x", "bias"], ["a"], name="n0"),
             helper.make_node("Relu", ["a"], ["r"], name="n1"),
             helper.make_node("MatMul", ["r", "W"], ["y"], name="n2"),
             helper.make_node("MatMul", ["y", "fc2.weight"], ["z"], name="n3")]
    inits = [numpy_helper.from_array(np.zeros(8, np.float32), "bias"),
             numpy_helper.from_array(np.zeros((8, 8), np.float32), "W"),
             numpy_helper.from_array(np.zeros((8, 4), np.float32), "fc2.weight")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])], inits)
    r = onnxscore.analyze(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    # the first three inherit the scope of n3's weight (their first consumer's), none is "bias" or "W"
    assert [x.scope for x in r.layers] == ["fc2"] * 4
    assert [row.key for row in r.by_scope(1)] == ["fc2"]


def test_scope_key_skips_empty_parts():
    """Leading, trailing and doubled slashes make no empty parts; no scope at all is (top)."""
    scopes = ["", "/", "//", "a", "a/", "/a", "a/b", "a//b", "/a/b", "a/b/", "a/b/c", "a/b//c", "layers.3/attn/q"]
    for depth in (1, 2, 3, 4):
        for s in scopes:
            parts = [p for p in s.split("/") if p]
            assert scope_key(s, depth) == ("/".join(parts[:depth]) if parts else "(top)"), (s, depth)


def _reference_rollup(layers, key):
    """The roll-up as one plain loop (what the fast path must equal): per key, in the order
    first met, [count, params, MACs, FLOPs, activation bytes, weight bytes, unknown]."""
    groups = {}
    for x in layers:
        g = groups.setdefault(key(x), [0, 0, 0, 0, 0, 0, 0])
        g[0] += 1
        g[1] += x.params
        g[2] += x.macs or 0
        g[3] += x.flops or 0
        g[4] = None if g[4] is None or x.activation_bytes is None else g[4] + x.activation_bytes
        g[5] += x.weight_bytes
        g[6] += x.macs is None
    return groups


def _row_sums(rows):
    return {r.key: [r.count, r.params, r.macs, r.flops, r.activation_bytes, r.weight_bytes, r.unknown]
            for r in rows}


FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures")


@pytest.mark.parametrize("name", ["tv_ssdlite_torchscript.onnx", "bert_unfused.onnx", "tiny_encoder_dynamo.onnx"])
def test_rollups_equal_a_plain_loop(name):
    """Subgraph layers left out, unknown MACs counted, unknown activation bytes kept unknown,
    polynomial costs summed: the numpy roll-ups equal a plain loop over the top-level layers."""
    path = os.path.join(FIXTURES, name)
    if not os.path.exists(path):
        pytest.skip(reason=f"fixture {name} is missing")
    r = onnxscore.analyze(path)
    assert _row_sums(r.by_op_type()) == _reference_rollup(r.top_layers, lambda x: x.op_type)
    for depth in (1, 2, 3):
        assert _row_sums(r.by_scope(depth)) == _reference_rollup(r.top_layers, lambda x: scope_key(x.scope, depth))


def test_rollups_beyond_64_bits(resnet50):
    """Counts from absurd dims pass 2**63, or their sums do: the roll-ups stay exact."""
    import dataclasses

    huge = [dataclasses.replace(x, macs=2**62 + i, flops=2**70 + i) for i, x in enumerate(resnet50.layers)]
    r = dataclasses.replace(resnet50, layers=tuple(huge))
    for rows in (r.by_op_type(), r.by_scope(1), r.by_scope(2)):
        assert sum(row.macs for row in rows) == sum(x.macs for x in huge)
        assert sum(row.flops for row in rows) == sum(x.flops for x in huge)
    conv = {row.key: row for row in r.by_op_type()}["Conv"]
    assert conv.macs == sum(x.macs for x in huge if x.op_type == "Conv")


def test_rollups_are_made_once(resnet50):
    """Renderers ask for the same roll-ups again (JSON, tables, HTML): they are kept."""
    assert resnet50.by_op_type() is resnet50.by_op_type()
    assert resnet50.by_scope(2) is resnet50.by_scope(2)
    assert resnet50.by_scope(1) is not resnet50.by_scope(2)

