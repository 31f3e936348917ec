"""compare: a float model against its pruned and its int8 (QDQ) variants, deltas by hand."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import onnxscore
from onnxscore.cli import main
from onnxscore.compare import compare
from onnxscore.render.compare import render_comparison
from tests.opmodels import weight

F = TensorProto.FLOAT
HW = 16 * 16  # conv output positions (3x3 kernels, pad 1, 16x16 input)


def net(c1=16, quantized=False):
    """conv1 3->c1, conv2 c1->32 (3x3, pad 1), global pool, fc 32->10; names carry scopes."""
    inits, nodes = [], []

    def conv_weight(name, shape):
        if not quantized:
            inits.append(weight(name, shape))
            return name
        inits.append(numpy_helper.from_array(np.zeros(shape, dtype=np.int8), name + "_q"))
        inits.append(numpy_helper.from_array(np.array(0.02, dtype=np.float32), name + "_scale"))
        inits.append(numpy_helper.from_array(np.array(0, dtype=np.int8), name + "_zp"))
        nodes.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_scale", name + "_zp"], [name],
                                      name=f"/features/{name}_DequantizeLinear"))
        return name

    w1, w2 = conv_weight("w1", [c1, 3, 3, 3]), conv_weight("w2", [32, c1, 3, 3])
    inits += [weight("b1", [c1]), weight("b2", [32]), weight("fc_w", [10, 32]), weight("fc_b", [10])]
    nodes += [helper.make_node("Conv", ["x", w1, "b1"], ["c1"], pads=[1] * 4, name="/features/conv1/Conv"),
              helper.make_node("Relu", ["c1"], ["r1"], name="/features/relu/Relu"),
              helper.make_node("Conv", ["r1", w2, "b2"], ["c2"], pads=[1] * 4, name="/features/conv2/Conv"),
              helper.make_node("GlobalAveragePool", ["c2"], ["p"], name="/pool/GlobalAveragePool"),
              helper.make_node("Flatten", ["p"], ["f"], name="/Flatten"),
              helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], transB=1, name="/fc/Gemm")]
    g = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("x", F, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", F, [1, 10])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])


@pytest.fixture(scope="module")
def base():
    return onnxscore.analyze(net())


def test_pruned_variant(base):
    c = compare(base, onnxscore.analyze(net(c1=8)))
    conv1 = 16 * 27 + 16, 8 * 27 + 8                 # Cout*Cin*Kh*Kw + Cout
    conv2 = 32 * 16 * 9 + 32, 32 * 8 * 9 + 32
    macs1 = 16 * HW * 27, 8 * HW * 27                # Cout*Ho*Wo*Cin*Kh*Kw
    macs2 = 32 * HW * 16 * 9, 32 * HW * 8 * 9
    assert c.totals["params"][1] - c.totals["params"][0] == (conv1[1] - conv1[0]) + (conv2[1] - conv2[0])
    assert c.totals["macs"][1] - c.totals["macs"][0] == (macs1[1] - macs1[0]) + (macs2[1] - macs2[0])
    layers = {ch.key: ch for ch in c.layers}
    assert set(layers) == {"/features/conv1/Conv", "/features/conv2/Conv", "/features/relu/Relu"}
    assert c.layers[0].key == "/features/conv2/Conv"  # the biggest change first
    assert layers["/features/conv2/Conv"].delta("macs") == macs2[1] - macs2[0]
    assert layers["/features/conv1/Conv"].delta("params") == conv1[1] - conv1[0]
    assert layers["/features/relu/Relu"].delta("flops") == (8 - 16) * HW  # one max per element
    blocks = {ch.key: ch for ch in c.blocks}
    assert blocks["features"].delta("params") == (conv1[1] - conv1[0]) + (conv2[1] - conv2[0])
    assert "fc" not in blocks and "pool" not in blocks  # unchanged blocks are not listed
    assert {ch.key for ch in c.op_types} == {"Conv", "Relu"}
    assert not c.only_a and not c.only_b


def test_int8_variant(base):
    c = compare(base, onnxscore.analyze(net(quantized=True)))
    assert c.totals["params"][0] == c.totals["params"][1]  # logical weights: the same count
    assert c.totals["macs"][0] == c.totals["macs"][1]
    w1, w2 = 16 * 3 * 3 * 3, 32 * 16 * 3 * 3
    # each conv weight: float32 (4 B) -> int8 (1 B), plus a float32 scale and an int8 zero point
    assert c.totals["weight_bytes"][1] - c.totals["weight_bytes"][0] == (w1 + w2) * (1 - 4) + 2 * (4 + 1)
    layers = {ch.key: ch for ch in c.layers}
    assert layers["/features/conv1/Conv"].delta("weight_bytes") == w1 * (1 - 4)
    assert set(c.only_b) == {"/features/w1_DequantizeLinear", "/features/w2_DequantizeLinear"}
    ops = {ch.key: ch for ch in c.op_types}
    assert ops["DequantizeLinear"].a is None and ops["DequantizeLinear"].b["flops"] == 2 * (w1 + w2)


@pytest.mark.parametrize("fmt", ["text", "md", "json", "csv"])
def test_every_format(base, fmt):
    c = compare(base, onnxscore.analyze(net(c1=8)))
    out = render_comparison(c, fmt)
    if fmt == "json":
        data = json.loads(out)
        assert data["schema"] == "onnxscore.compare/1"
        assert data["totals"]["macs"]["delta"] == c.totals["macs"][1] - c.totals["macs"][0]
    elif fmt == "csv":
        assert out.splitlines()[0].startswith("kind,name,op_a,op_b,a_params")
        assert any(line.startswith("layer,/features/conv2/Conv,Conv,Conv") for line in out.splitlines())
    else:
        assert "conv2" in out and "Totals" in out and "Δ MACs" in out


def test_cli(tmp_path):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(net().SerializeToString())
    b.write_bytes(net(c1=8).SerializeToString())
    res = CliRunner().invoke(main, ["compare", str(a), str(b), "--format", "json"])
    assert res.exit_code == 0
    assert json.loads(res.output)["totals"]["params"]["delta"] == -(16 * 27 + 16 - 8 * 27 - 8) - 32 * 8 * 9
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"nope")
    res = CliRunner().invoke(main, ["compare", str(a), str(bad)])
    assert res.exit_code == 2 and "bad.onnx" in res.stderr


def test_onnxruntime_int8_fixture():
    """fixtures/make_quantized.py: onnxruntime's static QDQ quantization of the tiny ResNet."""
    import os
    fixtures = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")
    a = onnxscore.analyze(os.path.join(fixtures, "tiny_resnet_torchscript.onnx"))
    b = onnxscore.analyze(os.path.join(fixtures, "tiny_resnet_int8.onnx"))
    c = compare(a, b)
    assert c.totals["params"][0] == c.totals["params"][1]  # int8 weights are the same weights
    assert c.totals["macs"][0] == c.totals["macs"][1]
    layers = {ch.key: ch for ch in c.layers}
    # layer4.0.conv2: 64*64*3*3 weights, float32 -> int8 saves 3 bytes each (its bias stays 4-byte int32)
    assert layers["/layer4/layer4.0/conv2/Conv"].delta("weight_bytes") == -3 * 64 * 64 * 3 * 3
    assert layers["/layer4/layer4.0/conv2/Conv"].delta("macs") == 0
    ops = {ch.key: ch for ch in c.op_types}
    assert ops["QuantizeLinear"].a is None and ops["DequantizeLinear"].a is None
    assert all(name.endswith(("QuantizeLinear", "DequantizeLinear")) for name in c.only_b)
    assert {"layer1", "layer2", "layer3", "layer4"} <= {ch.key for ch in c.blocks}


def projection(width: int, mystery: bool = False):
    """``x [1, S, 4]`` MatMul a weight [4, width] (blocks ``proj``): 1*S*4*width MACs, 4*width
    parameters; with ``mystery``, then an op of an unknown domain, which has no cost rule."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="/proj/MatMul")]
    out = "y"
    if mystery:
        nodes.append(helper.make_node("Mystery", ["y"], ["z"], domain="com.example", name="/tail/Mystery"))
        out = "z"
    g = helper.make_graph(nodes, "projection", [helper.make_tensor_value_info("x", F, [1, "S", 4])],
                          [helper.make_tensor_value_info(out, F, None)], [weight("w", [4, width])])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid("com.example", 1)] if mystery else [])
    return helper.make_model(g, opset_imports=opsets)


def test_symbolic_costs_compare_as_polynomials_never_as_zero():
    # A: 1*S*4*8 = 32*S MACs (FLOPs 2 per MAC: 64*S), 32 params; B: 1*S*4*16 = 64*S MACs, 64 params
    c = compare(onnxscore.analyze(projection(8)), onnxscore.analyze(projection(16)))
    data = c.to_dict()
    assert {k: data["totals"]["macs"][k] for k in ("a", "b", "delta")} == {"a": "32*S", "b": "64*S", "delta": "32*S"}
    assert {k: data["totals"]["flops"][k] for k in ("a", "b", "delta")} == {"a": "64*S", "b": "128*S", "delta": "64*S"}
    assert data["totals"]["params"]["delta"] == 64 - 32
    assert [(r["key"], r["delta"]["macs"]) for r in data["layers"]] == [("/proj/MatMul", "32*S")]
    assert [(r["key"], r["delta"]["macs"]) for r in data["blocks"]["rows"]] == [("proj", "32*S")]
    rows = {line.split()[0]: line.split()[1:] for line in render_comparison(c, "text").splitlines()
            if line.strip() and line.split()[0] in ("MACs", "FLOPs", "params")}  # (short formulas stay in their cells)
    assert rows == {"params": ["32", "64", "+32", "+100.0%"], "MACs": ["32*S", "64*S", "+32*S"],
                    "FLOPs": ["64*S", "128*S", "+64*S"]}
    csv_total = next(line for line in render_comparison(c, "csv").splitlines() if line.startswith("total,macs,"))
    assert csv_total.endswith(",32*S,64*S,32*S,,,,,,")
    # the same models at S = 10: integers again, 320 and 640 MACs
    at = compare(onnxscore.analyze(projection(8), {"S": 10}), onnxscore.analyze(projection(16), {"S": 10}))
    assert at.totals["macs"] == (320, 640) and at.to_dict()["totals"]["macs"]["delta"] == 320


def test_an_unknown_cost_makes_a_lower_bound_and_no_delta():
    # B's Mystery op has no rule: its MACs are >= 1*2*4*16 = 128 (at S = 2), the delta unknown
    a = onnxscore.analyze(projection(8), {"S": 2})
    b = onnxscore.analyze(projection(16, mystery=True), {"S": 2})
    c = compare(a, b)
    total = c.to_dict()["totals"]["macs"]
    assert total == {"a": 64, "b": 128, "delta": None, "a_lower_bound": False, "b_lower_bound": True}
    row = next(line for line in render_comparison(c, "text").splitlines() if line.lstrip().startswith("MACs"))
    assert row.split()[1:] == ["64", "≥128", "?"]


def generic(extra_conv: bool):
    """Nodes named as some exporters name them, by position (n0, n1, ...): a 1x1 Conv 4->4 on
    [1, 4, 8, 8] (4*4 = 16 weights, 8*8*4*4 = 1,024 MACs), then a Relu; ``extra_conv`` puts a
    second Conv between them, which shifts the Relu's name from n1 to n2. The weights' names
    (``W``, ``kernel``) spell no module, so no node has a scope."""
    ops = ["Conv", "Conv", "Relu"] if extra_conv else ["Conv", "Relu"]
    nodes, x, names = [], "x", iter(["W", "kernel"])
    inits = []
    for i, op in enumerate(ops):
        inputs = [x]
        if op == "Conv":
            inits.append(weight(next(names), [4, 4, 1, 1]))
            inputs.append(inits[-1].name)
        nodes.append(helper.make_node(op, inputs, [f"t{i}"], name=f"n{i}"))
        x = f"t{i}"
    g = helper.make_graph(nodes, "generic", [helper.make_tensor_value_info("x", F, [1, 4, 8, 8])],
                          [helper.make_tensor_value_info(x, F, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_generated_names_pair_only_layers_of_the_same_op():
    """n1 is a Relu in A and a Conv in B: not one layer. The Relus pair by position (n1 -> n2);
    B's Conv n1 is B's alone: +16 parameters, +1,024 MACs."""
    a, b = onnxscore.analyze(generic(False)), onnxscore.analyze(generic(True))
    assert not any(x.scope for x in a.layers + b.layers)
    c = compare(a, b)
    assert c.only_b == ("n1",) and not c.only_a
    assert all(ch.op_a == ch.op_b for ch in c.layers)
    assert c.totals["macs"][1] - c.totals["macs"][0] == 8 * 8 * 4 * 4
    assert "n1 -> n2" not in {ch.key for ch in c.layers}  # the Relus cost the same: no change to list


def numbered(layers):
    """MatMuls named as torch's dynamo exporter names them, by a running number
    (``node_MatMul_0``, ...), each reading its module's weight ``<module>.weight`` [8, 8] (64
    parameters; 1*8*8 = 64 MACs on x [1, 8]), which scopes it."""
    nodes, inits, x = [], [], "x"
    for i, module in enumerate(layers):
        inits.append(weight(f"{module}.weight", [8, 8]))
        nodes.append(helper.make_node("MatMul", [x, f"{module}.weight"], [f"t{i}"], name=f"node_MatMul_{i}"))
        x = f"t{i}"
    g = helper.make_graph(nodes, "numbered", [helper.make_tensor_value_info("x", F, [1, 8])],
                          [helper.make_tensor_value_info(x, F, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_a_numbered_name_in_another_scope_is_another_layer():
    """B puts a layer "stem" first: its fc1 and fc2 are node_MatMul_1 and _2, A's node_MatMul_0
    and _1. They pair by scope, not by number; B's stem is B's alone (+64 parameters)."""
    a, b = onnxscore.analyze(numbered(["fc1", "fc2"])), onnxscore.analyze(numbered(["stem", "fc1", "fc2"]))
    assert [x.scope for x in b.layers] == ["stem", "fc1", "fc2"]
    c = compare(a, b)
    assert c.only_b == ("node_MatMul_0",) and not c.only_a
    assert not c.layers  # fc1 and fc2 cost the same in both: no layer changed
    assert c.totals["params"][1] - c.totals["params"][0] == 8 * 8
