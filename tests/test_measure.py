"""Measured latency with onnxruntime (onnxscore/measure.py): inputs, the kernel -> layer mapping,
and the structure of the result. No assertion is made on any measured time: only that times
exist and are positive, that every kernel maps to a layer, and what is derived from them by
arithmetic (shares, the profile parser on made-up events)."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxscore.errors import ModelLoadError, UsageError
from onnxscore.measure import (Latency, MeasureError, generate_inputs, measure, read_profile, spearman)
from onnxscore.walk import analyze
from tests.builders import DecoderConfig, build_decoder

FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64
FEW = dict(runs=1, warmup=1, profile_runs=1)  # correctness, not timing: as few runs as possible


@pytest.fixture(scope="module")
def ort():
    return pytest.importorskip("onnxruntime", reason="onnxruntime is the optional extra onnxscore[measure]")


def _save(tmp_path, nodes, inputs, outputs, inits=(), name="model.onnx", opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = str(tmp_path / name)
    onnx.save_model(model, path)
    return path


# ---------------------------------------------------------------------------------------------
# ResNet-50 of the onnx wheel: the acceptance model

def test_resnet50_every_kernel_maps_to_a_layer(ort, light_dir):
    path = os.path.join(light_dir, "light_resnet50.onnx")
    report = analyze(path)
    m = measure(path, report=report, **FEW)
    assert m.unmapped == ()
    top = report.top_layers
    assert len(m.layers) + m.without_kernel == len(top) == 415
    # the 239 ConstantOfShape nodes that make the weights run as kernels too: nothing is folded
    assert m.without_kernel == 0
    assert [x.name for x in m.layers] == [x.name for x in top]  # graph order
    assert all(x.seconds > 0 and x.calls == 1 for x in m.layers)
    assert sum(x.share for x in m.layers) == pytest.approx(1.0)
    assert m.layer_seconds == pytest.approx(sum(x.seconds for x in m.layers))
    assert m.coverage == pytest.approx(m.layer_seconds / m.unoptimized.mean)
    known = [x for x in m.layers if x.mac_share is not None]
    assert sum(x.mac_share for x in known) == pytest.approx(1.0)
    convs = [x for x in m.layers if x.op_type == "Conv"]
    assert len(convs) == 53 and all(x.flops_per_s > 0 and x.bytes_per_s > 0 for x in convs)
    assert m.mislead and all(x.share > x.mac_share and not x.folded for x in m.mislead)
    # the 239 ConstantOfShape layers make weights from constant shapes: folded, at load
    assert sum(x.folded for x in m.layers) == 239
    assert {x.op_type for x in m.layers if x.folded} == {"ConstantOfShape"}
    gaps = [x.share - x.mac_share for x in m.mislead]
    assert gaps == sorted(gaps, reverse=True)
    assert -1 <= m.spearman <= 1
    assert m.onnxruntime_version == ort.__version__ and m.threads >= 1
    assert m.inputs == {"gpu_0/data_0": ((1, 3, 224, 224), "float32")}
    for lat in (m.optimized, m.unoptimized):
        assert lat.runs == 1 and lat.min == lat.p50 == lat.max > 0
    d = json.loads(json.dumps(m.to_dict()))
    assert d["schema"] == "onnxscore.measurement/1" and len(d["layers"]) == 415
    assert set(d["optimized"]) == {"p50", "p90", "min", "max", "mean", "spread", "runs"}


# ---------------------------------------------------------------------------------------------
# Inputs in a valid range

V, H = 50, 8  # vocabulary and width of the BERT-like model


def _bert_like(tmp_path):
    """input_ids -> Cast(int32) -> Gather(word[V, H]); token_type_ids -> Gather(type[2, H]);
    attention_mask -> Cast(float) -> multiplies the sum."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.random((V, H), dtype=np.float32), "word"),
             numpy_helper.from_array(rng.random((2, H), dtype=np.float32), "type")]
    nodes = [helper.make_node("Cast", ["input_ids"], ["ids32"], to=TensorProto.INT32),
             helper.make_node("Gather", ["word", "ids32"], ["we"]),
             helper.make_node("Gather", ["type", "token_type_ids"], ["te"]),
             helper.make_node("Add", ["we", "te"], ["e"]),
             helper.make_node("Cast", ["attention_mask"], ["mf"], to=FLOAT),
             helper.make_node("Unsqueeze", ["mf", "axis2"], ["m3"]),
             helper.make_node("Mul", ["e", "m3"], ["y"])]
    inits.append(numpy_helper.from_array(np.asarray([2], np.int64), "axis2"))
    inputs = [helper.make_tensor_value_info(n, INT64, [1, "seq"])
              for n in ("input_ids", "token_type_ids", "attention_mask")]
    return _save(tmp_path, nodes, inputs, [helper.make_tensor_value_info("y", FLOAT, [1, "seq", H])], inits,
                 name="bert_like.onnx")


def test_bert_token_ids_are_below_the_vocabulary(ort, tmp_path):
    path = _bert_like(tmp_path)
    feeds = generate_inputs(path, dims={"seq": 64})
    ids, types, mask = feeds["input_ids"], feeds["token_type_ids"], feeds["attention_mask"]
    assert ids.shape == types.shape == mask.shape == (1, 64) and ids.dtype == np.int64
    # 64 draws from [0, 50): all below V, and spread over it (all below 25 has odds 2**-64)
    assert 0 <= ids.min() and ids.max() < V and ids.max() >= V // 2
    assert set(np.unique(types)) <= {0, 1} and (mask == 1).all()
    m = measure(path, dims={"seq": 64}, **FEW)  # onnxruntime rejects an index out of range
    assert m.unmapped == () and len(m.layers) == 7


def test_an_index_out_of_range_is_what_onnxruntime_rejects(ort, tmp_path):
    """The check above can fail: ids >= V make onnxruntime raise, as a one-line MeasureError."""
    path = _bert_like(tmp_path)
    bad = {"input_ids": np.full((1, 4), V, np.int64)}
    with pytest.raises(MeasureError) as e:
        measure(path, dims={"seq": 4}, inputs=bad, **FEW)
    assert "\n" not in str(e.value) and path in str(e.value)


def _decoder(tmp_path, write_data=True):
    cfg = DecoderConfig(layers=2, hidden=32, heads=2, ffn=64, vocab=100, positions=64)
    return cfg, build_decoder(cfg, str(tmp_path / "dec"), kv_cache=True, write_data=write_data)


def test_decoder_prefill_and_one_decode_step(ort, tmp_path):
    cfg, path = _decoder(tmp_path)
    hd = cfg.hidden // cfg.heads  # 16
    prefill = {"batch": 1, "seq": 6, "past": 0}
    feeds = generate_inputs(path, dims=prefill)
    assert feeds["input_ids"].max() < cfg.vocab
    assert feeds["position_ids"].tolist() == [[0, 1, 2, 3, 4, 5]]
    assert feeds["past_key_0"].shape == (1, cfg.heads, 0, hd)  # an empty cache
    m = measure(path, dims=prefill, **FEW)
    assert m.unmapped == () and all(x.seconds > 0 for x in m.layers)
    step = {"batch": 1, "seq": 1, "past": 6}
    feeds = generate_inputs(path, dims=step)
    assert feeds["position_ids"].tolist() == [[6]]  # after 6 cached tokens
    assert feeds["past_value_1"].shape == (1, cfg.heads, 6, hd) and not feeds["past_value_1"].any()
    m = measure(path, dims=step, **FEW)
    assert m.unmapped == () and m.inputs["input_ids"] == ((1, 1), "int64")


def _decoder_with_an_unnamed_node(tmp_path):
    """The decoder with its first node's name cleared, saved beside its external data: it must
    run as a renamed copy from memory, its weights read by onnxruntime from the folder."""
    _, path = _decoder(tmp_path)
    model = onnx.load(path, load_external_data=False)
    model.graph.node[0].name = ""
    renamed = os.path.join(os.path.dirname(path), "unnamed.onnx")
    onnx.save_model(model, renamed)
    return renamed


def test_renamed_copy_with_external_data(ort, tmp_path):
    path = _decoder_with_an_unnamed_node(tmp_path)
    dims = {"batch": 1, "seq": 3, "past": 0}
    m = measure(path, dims=dims, **FEW)
    assert m.unmapped == () and m.layers[0].name == f"{onnx.load(path, load_external_data=False).graph.node[0].op_type}_0"


def test_renamed_copy_with_external_data_needs_a_recent_onnxruntime(ort, tmp_path, monkeypatch):
    path = _decoder_with_an_unnamed_node(tmp_path)
    monkeypatch.setattr(ort, "__version__", "1.20.1")
    with pytest.raises(MeasureError, match=r"onnxruntime >= 1\.21"):
        measure(path, dims={"batch": 1, "seq": 3, "past": 0}, **FEW)


def test_detector_with_data_dependent_sizes(ort, tmp_path):
    """NonMaxSuppression keeps a data-dependent number K of boxes, Gather takes them, TopK
    ranks their scores with k = K read from a Shape."""
    n = 32
    consts = [numpy_helper.from_array(np.asarray([10], np.int64), "max_out"),
              numpy_helper.from_array(np.asarray([0.5], np.float32), "iou"),
              numpy_helper.from_array(np.asarray([0.0], np.float32), "score_min"),
              numpy_helper.from_array(np.asarray([2], np.int64), "col"),
              numpy_helper.from_array(np.asarray([0], np.int64), "zero"),
              numpy_helper.from_array(np.asarray([0, 1], np.int64), "axes01")]
    nodes = [helper.make_node("NonMaxSuppression", ["boxes", "scores", "max_out", "iou", "score_min"], ["sel"]),
             helper.make_node("Gather", ["sel", "col"], ["idx2"], axis=1),
             helper.make_node("Squeeze", ["idx2"], ["idx"]),  # [K]
             helper.make_node("Squeeze", ["scores", "axes01"], ["flat"]),  # [n]
             helper.make_node("Gather", ["flat", "idx"], ["kept"]),  # [K]
             helper.make_node("Shape", ["idx"], ["k"]),
             helper.make_node("TopK", ["kept", "k"], ["top", "order"])]
    inputs = [helper.make_tensor_value_info("boxes", FLOAT, [1, n, 4]),
              helper.make_tensor_value_info("scores", FLOAT, [1, 1, n])]
    path = _save(tmp_path, nodes, inputs, [helper.make_tensor_value_info("top", FLOAT, None)], consts,
                 name="detector.onnx")
    m = measure(path, **FEW)
    assert m.unmapped == () and len(m.layers) + m.without_kernel == len(nodes)


def test_unnamed_and_repeated_node_names_are_mapped(ort, tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["a"]),  # unnamed: Relu_0
             helper.make_node("Sigmoid", ["a"], ["b"], name="dup"),
             helper.make_node("Tanh", ["b"], ["c"], name="dup"),  # repeated: Tanh_2
             helper.make_node("Neg", ["c"], ["y"], name="Relu_0")]  # takes the unnamed one's key
    path = _save(tmp_path, nodes, [helper.make_tensor_value_info("x", FLOAT, [4, 4])],
                 [helper.make_tensor_value_info("y", FLOAT, [4, 4])])
    report = analyze(path)
    m = measure(path, report=report, **FEW)
    assert m.unmapped == () and [x.name for x in m.layers] == [x.name for x in report.layers]
    assert len({x.name for x in m.layers}) == 4


def test_subgraph_kernels_map_to_nested_layers(ort, tmp_path):
    body = helper.make_graph(
        [helper.make_node("Add", ["x_in", "one"], ["x_out"]), helper.make_node("Identity", ["c_in"], ["c_out"])],
        "body", [helper.make_tensor_value_info("i", INT64, []), helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("x_in", FLOAT, [1, 4])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []), helper.make_tensor_value_info("x_out", FLOAT, [1, 4])],
        [helper.make_tensor("one", FLOAT, [1], [1.0])])
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Loop", ["trip", "cond", "r"], ["y"], body=body)]
    inits = [helper.make_tensor("trip", INT64, [], [3]), helper.make_tensor("cond", TensorProto.BOOL, [], [True])]
    path = _save(tmp_path, nodes, [helper.make_tensor_value_info("x", FLOAT, [1, 4])],
                 [helper.make_tensor_value_info("y", FLOAT, [1, 4])], inits, name="loop.onnx")
    m = measure(path, **FEW)
    assert m.unmapped == () and [x.name for x in m.layers] == ["Relu_0", "Loop_1"]
    nested = {x.name: x.calls for x in m.nested}
    assert nested == {"Loop_1/body/Add_0": 3, "Loop_1/body/Identity_1": 3}  # 3 iterations per run


# ---------------------------------------------------------------------------------------------
# One-line errors

def test_missing_external_data_is_a_one_line_error(ort, tmp_path):
    _, path = _decoder(tmp_path, write_data=False)
    with pytest.raises(ModelLoadError) as e:
        measure(path, dims={"batch": 1, "seq": 2, "past": 0}, **FEW)
    assert "\n" not in str(e.value) and "decoder.bin" in str(e.value) and "missing" in str(e.value)


@pytest.mark.parametrize("location", ["../outside.bin", "link.bin", b"odd\xff.bin"])
def test_external_data_out_of_the_folder_is_never_run(ort, tmp_path, location):
    """A location that leaves the folder (by its .., or a link in it to a file outside) or is
    not a file name: one line, and onnxruntime never reads it (a non-UTF-8 one raised a
    TypeError)."""
    (tmp_path / "outside.bin").write_bytes(b"\0" * 64)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "link.bin").symlink_to(tmp_path / "outside.bin")
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4])
    for key, value in (("location", "oddX.bin" if location == b"odd\xff.bin" else location), ("offset", "0"),
                       ("length", "64")):
        t.external_data.add(key=key, value=value)
    t.data_location = TensorProto.EXTERNAL
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [t])
    path = folder / "model.onnx"
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    path.write_bytes(data.replace(b"oddX.bin", b"odd\xff.bin"))  # protobuf writes no such string itself
    with pytest.raises(ModelLoadError, match="outside the model's folder or not a file name") as e:
        measure(str(path), **FEW)
    assert "\n" not in str(e.value)


def test_unresolved_input_shape_says_which_dim(ort, tmp_path):
    path = _bert_like(tmp_path)
    with pytest.raises(UsageError, match=r"--dim seq=N"):
        measure(path, **FEW)


def test_without_onnxruntime_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    path = _bert_like(tmp_path)
    with pytest.raises(UsageError, match=r"onnxscore\[measure\]"):
        measure(path, dims={"seq": 4})


# ---------------------------------------------------------------------------------------------
# Arithmetic on measured numbers, checked on made-up ones

def test_read_profile_averages_the_kernels_of_the_timed_runs():
    def run(ts, dur):
        return {"cat": "Session", "name": "model_run", "ts": ts, "dur": dur}

    def kernel(name, ts, dur, pool=0):
        stats = {"thread_scheduling_stats": {"sub_threads": {str(i): {} for i in range(pool)}}}
        return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur, "args": stats}

    events = [run(0, 100), kernel("a", 10, 50),                       # warm-up run: left out
              run(1000, 100), kernel("a", 1010, 30), kernel("b", 1050, 20, pool=1),
              run(2000, 100), kernel("a", 2010, 40), kernel("b", 2050, 10),
              {"cat": "Node", "name": "a_fence_before", "ts": 2011, "dur": 5}]  # not a kernel
    kernels, threads = read_profile(events, runs=2)
    # a: (30 + 40) us over the last 2 runs, b: (20 + 10) us; us -> s
    assert kernels == {"a": (pytest.approx(70e-6), 2), "b": (pytest.approx(30e-6), 2)}
    assert threads == 2  # the main thread and 1 pool thread


def test_latency_percentiles():
    lat = Latency.of([5.0, 1.0, 3.0, 2.0, 4.0])
    # sorted 1..5: p50 = 3; p90 at index 0.9 x 4 = 3.6, 4 + 0.6 x (5 - 4) = 4.6
    assert (lat.p50, lat.p90, lat.min, lat.max, lat.mean, lat.runs) == (3.0, pytest.approx(4.6), 1.0, 5.0, 3.0, 5)
    assert lat.spread == pytest.approx(4.6 / 3)


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    # ties share their mean rank: x ranks 1, 2.5, 2.5, 4 against y ranks 1, 2, 3, 4;
    # deviations (-1.5, 0, 0, 1.5) and (-1.5, -0.5, 0.5, 1.5): 4.5 / sqrt(4.5 x 5) = 0.948683
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / (4.5 * 5) ** 0.5)
    assert spearman([1, 2], [1, 2]) is None and spearman([1, 1, 1], [1, 2, 3]) is None
