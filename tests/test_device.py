"""Device profiles, the roofline estimate and the calibration cache (onnxscore/device.py).

Every expected time is arithmetic on a made-up profile, written out; nothing here times
anything (the calibration's micro-benchmark is replaced by fixed numbers)."""
from __future__ import annotations

import json
import math
import os
import re

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxscore import device as dev
from onnxscore.cache import Cache
from onnxscore.device import (Device, analyze_for_estimate, builtin_devices, calibrate_local, derived_ratios,
                              dtype_family, estimate, latency_ms, load_device, parse_profile)
from onnxscore.errors import UsageError
from onnxscore.measure import constant_layers

FLOAT, FLOAT16 = TensorProto.FLOAT, TensorProto.FLOAT16

# A made-up device whose numbers make the arithmetic easy: 1 GFLOP/s, 1 GB/s, no overhead.
GIGA = Device(name="giga", float32=1e9, float16=4e9, int8=None, bandwidth=1e9)


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _matmul(M, K, N, dtype=FLOAT, m_dim=None):
    """y = a[M, K] @ w[K, N], w a constant: one MatMul layer named 'mm'. With ``m_dim``, a is
    [1, m_dim, K] with m_dim a symbolic dim left unset (a leading dim would be taken as batch = 1)."""
    np_type = np.float16 if dtype == FLOAT16 else np.float32
    w = numpy_helper.from_array(np.zeros((K, N), np_type), "w")
    a, y = ([1, m_dim, K], [1, m_dim, N]) if m_dim else ([M, K], [M, N])
    return _model([helper.make_node("MatMul", ["a", "w"], ["y"], name="mm")],
                  [helper.make_tensor_value_info("a", dtype, a)],
                  [helper.make_tensor_value_info("y", dtype, y)], [w])


# ---------------------------------------------------------------------------------------------
# Profiles

BUILTINS = [n for n in builtin_devices() if n != "local"]


def test_builtins_are_listed():
    assert set(BUILTINS) == {"raspberry-pi-5", "jetson-orin-nano-8gb", "jetson-agx-orin-64gb"}
    assert builtin_devices()[-1] == "local"


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_profile_parses_and_cites_its_sources(name):
    d = load_device(name)
    assert d.name == name and d.origin == name
    assert d.bandwidth > 0 and d.float32 > 0
    urls = [s for s in d.sources if re.match(r"https://\S+$", s)]
    assert urls, f"{name} cites no source URL"
    assert d.notes and d.description


# Each built-in's numbers, derived again here from the figures its file cites.
EXPECTED = {
    "raspberry-pi-5": dict(
        float32=4 * 2.4e9 * 2 * 4 * 2,    # cores x Hz x 2 SIMD pipes x 4 fp32 lanes x (mul + add)
        float16=4 * 2.4e9 * 2 * 8 * 2,    # 8 fp16 lanes
        int8=4 * 2.4e9 * 2 * 16 * 2,      # SDOT: 16 int8 multiply-adds per 128-bit instruction
        bandwidth=4267e6 * 4),            # LPDDR4X-4267 x 32-bit bus (4 bytes)
    "jetson-orin-nano-8gb": dict(
        float32=1024 * 2 * 625e6,         # CUDA cores x FMA x GPU clock
        float16=8 * 4 * 256 * 2 * 625e6,  # SMs x Tensor Cores x FP16 FMA/clock x 2 x clock
        int8=8 * 4 * 512 * 2 * 625e6,     # int8 at twice the FP16 rate
        bandwidth=68e9),                  # NVIDIA's 68 GB/s
    "jetson-agx-orin-64gb": dict(
        float32=2048 * 2 * 1.3e9,
        float16=16 * 4 * 256 * 2 * 1.3e9,
        int8=16 * 4 * 512 * 2 * 1.3e9,
        bandwidth=32 * 6.4e9),            # 256-bit LPDDR5 at 6400 MT/s
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_numbers_are_the_arithmetic_of_their_file(name):
    d = load_device(name)
    for key, value in EXPECTED[name].items():
        assert getattr(d, key) == pytest.approx(value, rel=1e-12), key


def test_profile_file_loads(tmp_path):
    path = tmp_path / "board.toml"
    path.write_text('name = "board"\nsources = ["https://example.com/ds.pdf"]\nlayer_overhead_s = 2e-6\n'
                    '[peak]\nfloat32 = 1e9\n[memory]\nbandwidth = 2e9\n')
    d = load_device(str(path))
    assert (d.name, d.float32, d.float16, d.int8, d.bandwidth, d.layer_overhead_s) == \
        ("board", 1e9, None, None, 2e9, 2e-6)
    assert d.origin == str(path)


def test_profile_from_text_names_the_given_path():
    d = parse_profile('name = "t"\n[peak]\nint8 = 4e12\n[memory]\nbandwidth = 1e11\n', "inline.toml")
    assert (d.int8, d.float32, d.bandwidth, d.origin) == (4e12, None, 1e11, "inline.toml")
    with pytest.raises(UsageError, match=r"^inline\.toml: .*'memory\.bandwidth'"):
        parse_profile('name = "t"\n[peak]\nint8 = 4e12\n', "inline.toml")


BAD = [
    ('name = "x"\n[peak\nfloat32 = 1', "not valid TOML"),
    ('[peak]\nfloat32 = 1e9\n[memory]\nbandwidth = 1e9\n', "'name'"),
    ('name = "x"\n[peak]\nfloat32 = -1.0\n[memory]\nbandwidth = 1e9\n', "'peak.float32'"),
    ('name = "x"\n[peak]\nfloat32 = "fast"\n[memory]\nbandwidth = 1e9\n', "'peak.float32'"),
    ('name = "x"\n[peak]\nfp64 = 1e9\n[memory]\nbandwidth = 1e9\n', "'peak.fp64'"),
    ('name = "x"\n[peak]\n[memory]\nbandwidth = 1e9\n', "[peak] gives no rate"),
    ('name = "x"\n[peak]\nfloat32 = 1e9\n', "'memory.bandwidth'"),
    ('name = "x"\n[peak]\nfloat32 = 1e9\n[memory]\nbandwidth = 0\n', "'memory.bandwidth'"),
    ('name = "x"\nspeed = 3\n[peak]\nfloat32 = 1e9\n[memory]\nbandwidth = 1e9\n', "'speed'"),
    ('name = "x"\nsources = 3\n[peak]\nfloat32 = 1e9\n[memory]\nbandwidth = 1e9\n', "'sources'"),
    ('name = "x"\nlayer_overhead_s = -1\n[peak]\nfloat32 = 1e9\n[memory]\nbandwidth = 1e9\n', "'layer_overhead_s'"),
]


@pytest.mark.parametrize("text, key", BAD)
def test_bad_profile_is_a_one_line_error_naming_file_and_key(tmp_path, text, key):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as e:
        load_device(str(path))
    message = str(e.value)
    assert "\n" not in message and str(path) in message and key in message


def test_unknown_device_lists_the_builtins():
    with pytest.raises(UsageError, match="raspberry-pi-5.*local"):
        load_device("no-such-board")


def test_profile_that_is_not_utf8(tmp_path):
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(UsageError, match="not UTF-8"):
        load_device(str(path))


# ---------------------------------------------------------------------------------------------
# The roofline, by hand

def test_compute_bound_matmul():
    report, info = analyze_for_estimate(_matmul(64, 64, 64))
    (layer,) = report.top_layers
    assert layer.flops == 2 * 64 * 64 * 64 == 524288               # 2 x M x K x N
    assert layer.memory == (64 * 64 + 64 * 64 + 64 * 64) * 4 == 49152  # a read, y written, w read
    (x,) = estimate(report, GIGA, info).layers
    assert x.compute_s == pytest.approx(524288 / 1e9)               # 0.524288 ms
    assert x.memory_s == pytest.approx(49152 / 1e9)                 # 0.049152 ms
    assert x.bound == "compute" and x.seconds == pytest.approx(524288e-9)


def test_memory_bound_matmul():
    report, info = analyze_for_estimate(_matmul(1, 256, 256))
    (layer,) = report.top_layers
    assert layer.flops == 2 * 1 * 256 * 256 == 131072
    assert layer.memory == (256 + 256 + 256 * 256) * 4 == 264192
    (x,) = estimate(report, GIGA, info).layers
    assert x.bound == "memory" and x.seconds == pytest.approx(264192e-9)  # 0.264192 ms > 0.131072


def test_overhead_is_added_to_every_working_layer():
    slow = Device(name="slow", float32=1e9, float16=None, int8=None, bandwidth=1e9, layer_overhead_s=1e-6)
    report, info = analyze_for_estimate(_matmul(1, 256, 256))
    assert estimate(report, slow, info).seconds == pytest.approx(1e-6 + 264192e-9)


def test_float16_layer_uses_the_float16_peak():
    report, info = analyze_for_estimate(_matmul(64, 64, 64, FLOAT16))
    assert info["mm"].dtype == "float16"
    (x,) = estimate(report, GIGA, info).layers
    # 524288 FLOPs at 4e9 = 0.131072 ms; bytes (3 x 64 x 64 x 2 = 24576) at 1e9 = 0.024576 ms
    assert x.compute_s == pytest.approx(524288 / 4e9) and x.memory_s == pytest.approx(24576 / 1e9)
    assert x.bound == "compute"


def test_without_graph_info_every_layer_is_float32():
    report, _ = analyze_for_estimate(_matmul(64, 64, 64, FLOAT16))
    est = estimate(report, GIGA)
    assert not est.info_given and est.layers[0].dtype == "float32"
    assert est.layers[0].compute_s == pytest.approx(524288 / 1e9)


def test_dtype_family():
    T = TensorProto
    assert dtype_family([T.FLOAT16, T.FLOAT]) == "float16"
    assert dtype_family([T.BOOL, T.BFLOAT16]) == "float16"   # Where(cond, x, y): the first float
    assert dtype_family([T.UINT8, T.FLOAT, T.UINT8]) == "int8"  # QLinearConv
    assert dtype_family([T.INT64]) == "float32"               # a shape computation
    assert dtype_family([0, T.INT8]) == "int8"                # unknown dtypes are passed over
    assert dtype_family([]) == "float32"


# ---------------------------------------------------------------------------------------------
# Unknown stays unknown

def test_unknown_flops_stay_unknown():
    report, info = analyze_for_estimate(_matmul(0, 256, 256, m_dim="seq"))  # seq left unset
    assert report.top_layers[0].flops is None  # the premise: a formula in seq, not a number
    est = estimate(report, GIGA, info)
    (x,) = est.layers
    assert x.seconds is None and x.bound is None and "unknown" in x.why
    assert est.unknown == 1 and not est.complete and est.seconds == 0
    assert latency_ms(report, GIGA, info) is None
    assert latency_ms(report, GIGA, info, lower_bound=True) == 0


def test_a_family_without_a_peak_is_unknown():
    no_fp16 = Device(name="no-fp16", float32=1e9, float16=None, int8=None, bandwidth=1e9)
    report, info = analyze_for_estimate(_matmul(64, 64, 64, FLOAT16))
    (x,) = estimate(report, no_fp16, info).layers
    assert x.seconds is None and "no float16 peak" in x.why


# ---------------------------------------------------------------------------------------------
# Fusion and folding

def _conv_bn_relu(extra_reader=False):
    """x[1,8,16,16] -> Conv 3x3 (8->8, pad 1) -> BN -> Relu [-> also read by a second Relu]."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.random((8, 8, 3, 3), dtype=np.float32), "w")]
    inits += [numpy_helper.from_array(np.ones(8, np.float32), n) for n in ("s", "b", "m", "v")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"], name="bn"),
             helper.make_node("Relu", ["n"], ["y"], name="relu")]
    outputs = [helper.make_tensor_value_info("y", FLOAT, [1, 8, 16, 16])]
    if extra_reader:
        nodes.append(helper.make_node("Sigmoid", ["n"], ["z"], name="sig"))
        outputs.append(helper.make_tensor_value_info("z", FLOAT, [1, 8, 16, 16]))
    return _model(nodes, [helper.make_tensor_value_info("x", FLOAT, [1, 8, 16, 16])], outputs, inits)


def test_bn_and_activation_fuse_into_the_conv():
    report, info = analyze_for_estimate(_conv_bn_relu())
    assert info["bn"].fused_into == "conv" and info["relu"].fused_into == "conv"
    fused = {x.name: x for x in estimate(report, GIGA, info).layers}
    assert fused["bn"].seconds == 0 and fused["relu"].seconds == 0 and fused["conv"].seconds > 0
    # unfused, BN and Relu each read and write 8 x 16 x 16 floats: 2 x 2048 x 4 = 16384 bytes
    unfused = {x.name: x for x in estimate(report, GIGA, info, fuse=False).layers}
    assert unfused["relu"].bytes == 16384 and unfused["relu"].seconds == pytest.approx(16384e-9)


def test_a_tensor_with_two_readers_is_not_fused_away():
    _, info = analyze_for_estimate(_conv_bn_relu(extra_reader=True))
    assert info["bn"].fused_into == "conv"  # the conv's output has one reader: the BN
    assert info["relu"].fused_into is None and info["sig"].fused_into is None  # BN's output has two


def test_layers_of_constants_are_folded():
    w = numpy_helper.from_array(np.ones((4, 8), np.float32), "w")
    model = _model([helper.make_node("Transpose", ["w"], ["wt"], name="t", perm=[1, 0]),
                    helper.make_node("MatMul", ["x", "wt"], ["y"], name="mm")],
                   [helper.make_tensor_value_info("x", FLOAT, [2, 8])],
                   [helper.make_tensor_value_info("y", FLOAT, [2, 4])], [w])
    report, info = analyze_for_estimate(model)
    assert info["t"].folded and not info["mm"].folded
    est = {x.name: x for x in estimate(report, GIGA, info).layers}
    assert est["t"].seconds == 0 and est["mm"].seconds > 0


def test_a_random_op_of_constants_is_drawn_at_run_time_not_folded():
    # Bernoulli of a constant probability tensor: every input constant, yet a new draw each run
    p = numpy_helper.from_array(np.full((2, 8), 0.5, np.float32), "p")
    model = _model([helper.make_node("Bernoulli", ["p"], ["mask"], name="draw"),
                    helper.make_node("Mul", ["x", "mask"], ["y"], name="mul")],
                   [helper.make_tensor_value_info("x", FLOAT, [2, 8])],
                   [helper.make_tensor_value_info("y", FLOAT, [2, 8])], [p])
    _, info = analyze_for_estimate(model)
    assert not info["draw"].folded
    assert constant_layers(model.graph, model.ir_version) == set()


# ---------------------------------------------------------------------------------------------
# Roll-ups and the JSON form

def test_shares_sum_to_one(light_dir):
    report, info = analyze_for_estimate(os.path.join(light_dir, "light_squeezenet.onnx"))
    est = estimate(report, load_device("raspberry-pi-5"), info)
    assert est.complete
    for rows in (est.by_op_type(), est.by_scope(1), est.by_scope(2)):
        assert math.isclose(sum(r.share for r in rows), 1.0, rel_tol=1e-9)
        assert math.isclose(sum(r.seconds for r in rows), est.seconds, rel_tol=1e-9)
        assert sum(r.count for r in rows) == len(report.top_layers)
    top = est.top(3)
    assert top[0].seconds >= top[1].seconds >= top[2].seconds > 0


def test_to_dict_is_json():
    report, info = analyze_for_estimate(_matmul(64, 64, 64))
    d = json.loads(json.dumps(estimate(report, GIGA, info).to_dict()))
    assert d["schema"] == "onnxscore.estimate/1" and d["device"]["name"] == "giga"
    assert d["layers"][0]["bound"] == "compute" and d["complete"] is True
    assert d["by_op_type"][0]["key"] == "MatMul" and d["by_op_type"][0]["share"] == 1.0


# ---------------------------------------------------------------------------------------------
# A latency budget, as `check --max-latency-ms` will use it

def test_latency_budget_passes_and_fails_as_derived_by_hand(tmp_path):
    # two memory-bound layers in a chain: a[1,256] @ w1[256,256] -> h, h @ w2[256,256] -> y
    w1 = numpy_helper.from_array(np.zeros((256, 256), np.float32), "w1")
    w2 = numpy_helper.from_array(np.zeros((256, 256), np.float32), "w2")
    model = _model([helper.make_node("MatMul", ["a", "w1"], ["h"], name="mm1"),
                    helper.make_node("MatMul", ["h", "w2"], ["y"], name="mm2")],
                   [helper.make_tensor_value_info("a", FLOAT, [1, 256])],
                   [helper.make_tensor_value_info("y", FLOAT, [1, 256])], [w1, w2])
    profile = tmp_path / "budget-board.toml"
    profile.write_text('name = "budget-board"\n[peak]\nfloat32 = 1e9\n[memory]\nbandwidth = 1e9\n')
    board = load_device(str(profile))
    report, info = analyze_for_estimate(model)
    # each layer: max(131072 FLOPs / 1e9, (256 + 256 + 65536) x 4 = 264192 bytes / 1e9) = 0.264192 ms
    ms = latency_ms(report, board, info)
    assert ms == pytest.approx(2 * 0.264192)  # 0.528384 ms
    assert ms <= 0.6       # a budget of 0.6 ms passes
    assert not ms <= 0.5   # a budget of 0.5 ms fails


# ---------------------------------------------------------------------------------------------
# Calibration of this machine, cached (the micro-benchmark is replaced: no timing here)

FAKE = {"float32": 100e9, "bandwidth": 20e9, "overhead": 1e-6, "gemm_size": 2048,
        "copy_bytes": 256 << 20, "threads": 2, "repeats": 5}


def test_calibration_runs_once_then_reads_the_cache(tmp_path, monkeypatch):
    calls = []

    def fake_benchmarks(*args, **kwargs):
        calls.append(1)
        return dict(FAKE)

    monkeypatch.setattr(dev, "run_micro_benchmarks", fake_benchmarks)
    monkeypatch.setattr(dev, "cpu_flags", lambda: ("fpu", "avx2", "avx512_vnni"))
    cache = Cache(str(tmp_path))
    first = calibrate_local(cache=cache)
    second = calibrate_local(cache=cache)
    assert len(calls) == 1 and first == second
    assert (first.float32, first.bandwidth, first.layer_overhead_s) == (100e9, 20e9, 1e-6)
    assert first.float16 == 100e9 and first.int8 == 4 * 100e9  # x86 with VNNI: x1 and x4
    assert any("derived, not measured" in s for s in first.sources)
    assert load_device("local", cache=cache) == first and len(calls) == 1
    calibrate_local(cache=cache, refresh=True)
    assert len(calls) == 2
    # another numpy (or CPU) is another key: measured again
    monkeypatch.setattr(np, "__version__", "0.0.0-test")
    calibrate_local(cache=cache)
    assert len(calls) == 3


def test_a_damaged_cache_entry_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setattr(dev, "run_micro_benchmarks", lambda *a, **k: dict(FAKE))
    cache = Cache(str(tmp_path))
    cache.put(dev.calibration_key(), {"schema": dev.CALIBRATION_SCHEMA, "measured": {"float32": "x"}})
    assert calibrate_local(cache=cache).float32 == 100e9


@pytest.mark.parametrize("flags, fp16, int8", [
    (("avx2", "avx512_vnni"), 1, 4),        # vpdpbusd: 4 int8 multiply-adds per 32-bit lane
    (("avx2", "avx_vnni"), 1, 4),
    (("avx2", "fma"), 1, 2),                # vpmaddubsw + vpmaddwd: half the VNNI rate
    (("sse2",), 1, 1),
    (("fp", "asimd", "asimdhp", "asimddp"), 2, 4),  # Armv8.2-A FP16 (8 lanes) and SDOT
    (("fp", "asimd"), 1, 2),
])
def test_derived_ratios(flags, fp16, int8):
    got = derived_ratios(flags)
    assert got[:2] == (fp16, int8) and got[2]
