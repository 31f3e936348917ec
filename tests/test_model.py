"""Loading: bad files give one-line errors and are never changed; external data is never read."""
import hashlib
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxscore
from onnxscore.errors import GraphError, ModelLoadError, UsageError
from onnxscore.model import load_model
from onnxscore.options import parse_dims, parse_input_shapes
from tests.opmodels import node_model, weight


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _conv_model(batch="N"):
    return node_model("Conv", [("x", TensorProto.FLOAT, [batch, 3, 8, 8]), ("w", TensorProto.FLOAT, [4, 3, 3, 3])],
                      [("y", TensorProto.FLOAT, None)], initializers=[weight("w", [4, 3, 3, 3])])


def test_random_bytes_is_rejected_and_untouched(tmp_path):
    p = tmp_path / "random.onnx"
    p.write_bytes(np.random.default_rng(0).bytes(4096))
    before = _digest(p)
    with pytest.raises(ModelLoadError, match="random.onnx"):
        onnxscore.analyze(str(p))
    assert _digest(p) == before


def test_truncated_model_is_rejected(tmp_path, light_dir):
    data = open(os.path.join(light_dir, "light_resnet50.onnx"), "rb").read()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelLoadError, match="cut.onnx"):
        onnxscore.analyze(str(p))


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"hello, this is not a model\n", "not an ONNX model"),
])
def test_not_onnx(tmp_path, content, message):
    p = tmp_path / "bad.onnx"
    p.write_bytes(content)
    with pytest.raises(ModelLoadError, match=message):
        onnxscore.analyze(str(p))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ModelLoadError, match="no such file"):
        onnxscore.analyze(str(tmp_path / "nope.onnx"))
    with pytest.raises(ModelLoadError, match="directory"):
        onnxscore.analyze(str(tmp_path))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_or_a_device_is_refused_not_read(tmp_path):
    """A FIFO named *.onnx with no writer would block the read forever, /dev/zero never end it:
    one line naming the kind of file, exit 2, before a byte is read (in a process of its own,
    with a deadline, so that a regression fails instead of hanging the suite)."""
    import subprocess
    import sys

    os.mkfifo(tmp_path / "pipe.onnx")
    cases = [("pipe.onnx", "a FIFO")]
    if os.path.exists("/dev/zero"):
        os.symlink("/dev/zero", tmp_path / "zero.onnx")
        cases.append(("zero.onnx", "a character device"))
    for name, kind in cases:
        done = subprocess.run([sys.executable, "-m", "onnxscore", "analyze", name], cwd=tmp_path, timeout=60,
                              capture_output=True, text=True)
        assert done.returncode == 2
        assert done.stderr == f"onnxscore: error: {name}: not a regular file ({kind}), not an ONNX file\n"


def test_a_file_larger_than_a_protobuf_is_refused_before_it_is_read(tmp_path):
    # 2**31 bytes (sparse: no disk used) is one more than a protobuf message can be: not ONNX,
    # said from its size (reading it whole first took 3.2 GB of memory for a 3 GB file)
    big = tmp_path / "big.onnx"
    with open(big, "wb") as f:
        f.truncate(2**31)
    with pytest.raises(ModelLoadError, match=r"big.onnx: 2,147,483,648 bytes, more than a protobuf can hold"):
        onnxscore.analyze(str(big))


def test_cycle_is_rejected():
    nodes = [helper.make_node("Relu", ["b"], ["a"], name="r1"), helper.make_node("Relu", ["a"], ["b"], name="r2")]
    g = helper.make_graph(nodes, "g", [], [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1])])
    with pytest.raises(GraphError, match="cycle"):
        onnxscore.analyze(helper.make_model(g))


def test_tensor_produced_twice_is_rejected():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r1"), helper.make_node("Relu", ["x"], ["y"], name="r2")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    with pytest.raises(GraphError, match="produced by both"):
        onnxscore.analyze(helper.make_model(g))


def test_absurd_dimension_is_rejected():
    m = _conv_model()
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 2**50
    with pytest.raises(GraphError, match="absurd dimension"):
        onnxscore.analyze(m)


def test_symbolic_batch_defaults_to_one_and_says_so():
    r = onnxscore.analyze(_conv_model("N"))
    assert r.notes == ("batch dimension 'N' set to 1 (pass --dim N=N to change)",)
    assert r.model.inputs["x"] == (1, 3, 8, 8)
    assert r.totals.macs == 1 * 4 * 6 * 6 * 3 * 3 * 3  # N*Cout*Ho*Wo*Cin*Kh*Kw


def test_dim_and_input_overrides():
    r = onnxscore.analyze(_conv_model("N"), dims={"N": 2})
    assert r.totals.macs == 2 * 4 * 6 * 6 * 3 * 3 * 3
    assert not r.notes
    r = onnxscore.analyze(_conv_model("N"), input_shapes={"x": (3, 3, 10, 10)})
    assert r.totals.macs == 3 * 4 * 8 * 8 * 3 * 3 * 3
    with pytest.raises(UsageError, match="model's inputs are x"):
        onnxscore.analyze(_conv_model(), input_shapes={"image": (1, 3, 8, 8)})
    r = onnxscore.analyze(_conv_model(), dims={"nothing": 3})
    assert any("--dim nothing" in w for w in r.warnings)


def test_parse_options():
    assert parse_dims(["batch=1", "seq = 128"]) == {"batch": 1, "seq": 128}
    assert parse_input_shapes(["x=1x3x224x224", "y=2,5"]) == {"x": (1, 3, 224, 224), "y": (2, 5)}
    for bad in (["batch"], ["batch=x"], ["=3"]):
        with pytest.raises(UsageError):
            parse_dims(bad)
    with pytest.raises(UsageError):
        parse_input_shapes(["x=1xax3"])


def _external_model(tmp_path, location):
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 3, 3, 3])
    for k, v in (("location", location), ("offset", "0"), ("length", str(4 * 3 * 3 * 3 * 4))):
        t.external_data.add(key=k, value=v)
    t.data_location = TensorProto.EXTERNAL
    m = node_model("Conv", [("x", TensorProto.FLOAT, [1, 3, 8, 8]), ("w", TensorProto.FLOAT, [4, 3, 3, 3])],
                   [("y", TensorProto.FLOAT, None)], initializers=[t])
    p = tmp_path / "ext.onnx"
    p.write_bytes(m.SerializeToString())
    return str(p)


def test_missing_external_data_is_a_warning(tmp_path):
    r = onnxscore.analyze(_external_model(tmp_path, "weights.bin"))
    assert r.totals.params == 4 * 3 * 3 * 3  # Cout*Cin*Kh*Kw, from dims alone
    assert r.totals.weight_bytes == 4 * 3 * 3 * 3 * 4  # external-data length
    assert any("'weights.bin' is missing" in w for w in r.warnings)


@pytest.mark.parametrize("location", ["../outside.bin", "/etc/passwd"])
def test_external_data_leaving_the_folder_is_flagged(tmp_path, location):
    r = onnxscore.analyze(_external_model(tmp_path, location))
    assert any("leaves the model's folder" in w for w in r.warnings)
    assert r.totals.params == 4 * 3 * 3 * 3


def test_external_data_through_a_symbolic_link_out_of_the_folder_is_flagged(tmp_path):
    """weights.bin sits in the model's folder but is a link to a file outside it: followed, it
    would be a read outside the folder."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"\0" * 432)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").symlink_to(outside / "secret.bin")
    r = onnxscore.analyze(_external_model(folder, "weights.bin"))
    assert any("'weights.bin' leaves the model's folder" in w for w in r.warnings)
    assert r.totals.params == 4 * 3 * 3 * 3


def test_an_empty_external_data_location_is_flagged(tmp_path):
    r = onnxscore.analyze(_external_model(tmp_path, ""))
    assert any("'' is not a valid file name (empty)" in w for w in r.warnings)


def test_absurd_tensor_size_is_rejected():
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**30, 2**30, 2])
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="w.bin")
    m = node_model("Relu", [("w", TensorProto.FLOAT, None)], [("y", TensorProto.FLOAT, None)], initializers=[t])
    with pytest.raises(GraphError, match="absurd size"):
        onnxscore.analyze(m)


def test_model_local_functions_are_inlined():
    fn = helper.make_function("my.fns", "Block", ["a", "w"], ["b"],
                              [helper.make_node("MatMul", ["a", "w"], ["b"])],
                              [helper.make_opsetid("", 21)])
    g = helper.make_graph([helper.make_node("Block", ["x", "w"], ["y"], domain="my.fns", name="blk")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weight("w", [8, 4])])
    m = helper.make_model(g, functions=[fn], opset_imports=[helper.make_opsetid("", 21),
                                                           helper.make_opsetid("my.fns", 1)])
    r = onnxscore.analyze(m)
    assert r.totals.macs == 2 * 8 * 4 and r.totals.params == 8 * 4  # M*K*N; K*N weights
    assert not r.unsupported_ops and any("inlined" in n for n in r.notes)


def test_corrupted_bytes_never_traceback(tmp_path, light_dir):
    """Flip bytes of a real model at random places: analyze either works or refuses in one line."""
    from click.testing import CliRunner

    from onnxscore.cli import main

    data = bytearray(open(os.path.join(light_dir, "light_squeezenet.onnx"), "rb").read())
    rng = np.random.default_rng(7)
    runner = CliRunner()
    for i in range(60):
        mutated = bytearray(data)
        for pos in rng.integers(0, len(data), size=8):
            mutated[pos] = int(rng.integers(0, 256))
        if i % 3 == 0:
            mutated = mutated[: int(rng.integers(1, len(data)))]
        p = tmp_path / f"m{i}.onnx"
        p.write_bytes(bytes(mutated))
        res = runner.invoke(main, ["analyze", str(p), "--format", "json"])
        assert res.exit_code in (0, 2), (i, res.exception)
        assert res.exception is None or isinstance(res.exception, SystemExit), (i, repr(res.exception))
        if res.exit_code == 2:
            assert len(res.stderr.strip().splitlines()) == 1 and str(p) in res.stderr


def test_batch_default_binds_the_name_everywhere_once():
    m = node_model("MatMul", [("a", TensorProto.FLOAT, ["batch", 4, 8]), ("b", TensorProto.FLOAT, ["batch", 8, 2])],
                   [("y", TensorProto.FLOAT, None)])
    r = onnxscore.analyze(m)
    assert len(r.notes) == 1 and r.totals.macs == 1 * 4 * 2 * 8  # B*M*N*K
    assert onnxscore.analyze(m, dims={"batch": 3}).totals.macs == 3 * 4 * 2 * 8


def test_zero_length_dimension_is_allowed():
    m = node_model("MatMul", [("a", TensorProto.FLOAT, [1, "past", 8]), ("b", TensorProto.FLOAT, [8, 2])],
                   [("y", TensorProto.FLOAT, None)])
    assert onnxscore.analyze(m, dims={"past": 0}).totals.macs == 0


def test_tensor_promising_more_elements_than_it_stores_is_corrupt(tmp_path):
    # dims [2^31 + 1] over one stored int64: ONNX's inference would allocate 16 GiB for it
    t = numpy_helper.from_array(np.array([7], dtype=np.int64), "c")
    t.dims[:] = [2**31 + 1]
    g = helper.make_graph([helper.make_node("Identity", ["c"], ["y"])], "g", [],
                          [helper.make_tensor_value_info("y", TensorProto.INT64, None)], [t])
    path = tmp_path / "m.onnx"
    path.write_bytes(helper.make_model(g).SerializeToString())
    with pytest.raises(GraphError, match="declares 2,147,483,649 elements"):
        load_model(str(path))


def test_huge_integer_input_skips_onnx_data_propagation():
    # a Slice's steps declared with 2^40 elements: ONNX's data propagation would try to hold them
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [8])
    steps = helper.make_tensor_value_info("steps", TensorProto.INT64, [2**40])
    g = helper.make_graph([helper.make_node("Slice", ["x", "s", "e", "a", "steps"], ["y"])], "g", [x, steps],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(np.array([0], np.int64), n) for n in ("s", "e", "a")])
    loaded = load_model(helper.make_model(g))
    assert any("data propagation skipped" in w for w in loaded.warnings)


def _relu_model(name="y", doc=""):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    g = helper.make_graph([helper.make_node("Relu", ["x"], [name], doc_string=doc)], "g", [x],
                          [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)])
    return helper.make_model(g)


def test_a_name_that_is_not_utf8_is_corrupt_a_doc_string_is_not(tmp_path):
    # one parse checks every string; a failure sends it to the names, which alone are refused
    path = tmp_path / "m.onnx"
    path.write_bytes(_relu_model("QQ").SerializeToString().replace(b"QQ", b"Q\xff"))
    with pytest.raises(ModelLoadError, match=r"not valid UTF-8 \(b'Q\\xff'\)"):
        load_model(str(path))
    path.write_bytes(_relu_model(doc="DD").SerializeToString().replace(b"DD", b"D\xff"))
    assert load_model(str(path)).input_shapes == {"x": (1, 4)}


def _conv_relu() -> onnx.ModelProto:
    """Conv 3x3 of [1, 3, 8, 8] to 4 channels, then Relu; the outputs' shapes undeclared."""
    m = node_model("Conv", [("x", TensorProto.FLOAT, [1, 3, 8, 8]), ("w", TensorProto.FLOAT, [4, 3, 3, 3])],
                   [("y", TensorProto.FLOAT, None)], initializers=[weight("w", [4, 3, 3, 3])])
    m.graph.node.append(helper.make_node("Relu", ["y"], ["z"]))
    m.graph.output.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, None))
    return m


def test_inference_of_a_graph_without_subgraphs_is_sent_back_alone():
    # the child sends only the graph's inputs, outputs and value_info: the model they make
    # is the one ONNX's inference returns whole
    from onnxscore.inference import _contained_inference

    m = _conv_relu()
    whole = _contained_inference(onnx.ModelProto.FromString(m.SerializeToString()), True)
    alone = onnx.ModelProto.FromString(m.SerializeToString())
    assert _contained_inference(alone, True, graph_only=True) is alone
    assert alone.SerializeToString(deterministic=True) == whole.SerializeToString(deterministic=True)
    assert [d.dim_value for d in alone.graph.output[1].type.tensor_type.shape.dim] == [1, 4, 6, 6]


def test_the_child_can_send_the_tensor_types_read():
    # with ``tables``, the child reads the value_info into the shapes stage's table and sends
    # that instead: the same table as read here from the whole inferred model, the value_info
    # left out of the model
    from onnxscore.inference import _contained_inference
    from onnxscore.shapes.engine import value_infos

    m = _conv_relu()
    whole = _contained_inference(onnx.ModelProto.FromString(m.SerializeToString()), True)
    tables = []
    alone = _contained_inference(onnx.ModelProto.FromString(m.SerializeToString()), True, graph_only=True,
                                 tables=tables)
    assert tables == [value_infos(whole.graph)]
    assert tables[0]["y"] == ((1, 4, 6, 6), TensorProto.FLOAT)  # (8 - 3) + 1 = 6
    assert len(alone.graph.value_info) == 0 and list(alone.graph.output) == list(whole.graph.output)


def test_the_facts_read_while_onnx_infers_are_those_the_shapes_stage_reads():
    from onnxscore.shapes import infer_graph

    loaded = load_model(_conv_model())
    assert loaded.facts is not None and loaded.facts.graph is loaded.proto.graph
    with_facts = infer_graph(loaded.proto.graph, {"": 17}, facts=loaded.facts)
    without = infer_graph(loaded.proto.graph, {"": 17})
    assert with_facts.tensors == without.tensors and with_facts.keys == without.keys == ["Conv_0"]
    # a model with subgraphs comes back whole from the child: the facts would be another graph's
    then = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    g = helper.make_graph([helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=then)], "g",
                          [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                           helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    assert load_model(helper.make_model(g)).facts is None
