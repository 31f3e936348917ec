"""How good is the roofline estimate? Estimated latency (``--device local``) and MACs against the
latency measured with onnxruntime, over a zoo of models on this machine.

    .venv/bin/python benchmarks/latency.py [--runs 10] [--warmup 2] [--refresh] [--only NAME]

The zoo (nothing is downloaded; weights random or as the files hold them):

* the nine light models of the onnx wheel (their weights are ConstantOfShape nodes);
* the small real models of ``fixtures/`` (torch exports, torchvision's detectors, BERT with and
  without onnxruntime's fused ops at seq 128, an onnxruntime-genai LLM one decode step);
* two decoders of ``tests.builders`` (prefill of 64 tokens, one token after 128 cached);
* blocks built here with onnx.helper at three sizes each: a 3x3 CNN, a depthwise-separable
  (MobileNet-like) net, a BERT-like encoder (``benchmarks.models.build_bert``) and an MLP of
  GEMVs (batch 1, memory-bound).

For each: the measured end-to-end p50 (onnxruntime, CPU, graph optimizations at its default),
the estimate of :func:`onnxscore.device.estimate` on the calibrated ``local`` device, and the
MACs. Printed: a markdown table, the Spearman rank correlation of estimate vs measured and of
MACs vs measured over the zoo, and the median of estimate / measured. Numbers vary with the
machine and its load; nothing here is fitted to the zoo (the device is calibrated by
micro-benchmarks only).
"""
from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
FIXTURES = os.path.join(ROOT, "fixtures")
FLOAT = TensorProto.FLOAT


@dataclass(frozen=True)
class ZooModel:
    name: str
    kind: str
    path: str
    dims: Dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Models built here (random weights)

def _save(nodes, inputs, outputs, inits, folder: str, name: str) -> str:
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="onnxscore-benchmarks")
    path = os.path.join(folder, f"{name}.onnx")
    onnx.save_model(model, path)
    return path


class _Builder:
    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes: List[onnx.NodeProto] = []
        self.inits: List[TensorProto] = []

    def w(self, name: str, shape, scale: float = 0.05) -> str:
        a = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        self.inits.append(numpy_helper.from_array(a, name))
        return name

    def node(self, op: str, ins, **attrs) -> str:
        out = f"{op.lower()}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, ins, [out], name=f"{op}_{len(self.nodes)}", **attrs))
        return out

    def conv_bn_relu(self, x: str, cin: int, cout: int, k: int, group: int = 1, stride: int = 1) -> str:
        i = len(self.nodes)
        y = self.node("Conv", [x, self.w(f"c{i}.w", (cout, cin // group, k, k))], kernel_shape=[k, k],
                      pads=[k // 2] * 4, group=group, strides=[stride, stride])
        scale = self.w(f"bn{i}.s", (cout,))
        bias = self.w(f"bn{i}.b", (cout,))
        mean = self.w(f"bn{i}.m", (cout,))
        var = f"bn{i}.v"
        self.inits.append(numpy_helper.from_array(np.ones(cout, np.float32), var))
        return self.node("Relu", [self.node("BatchNormalization", [y, scale, bias, mean, var])])


def build_cnn(folder: str, name: str, channels: int, hw: int, depth: int) -> str:
    """A stem 3x3 conv to ``channels``, then ``depth`` 3x3 conv + BN + ReLU blocks, global pool."""
    b = _Builder()
    x = b.conv_bn_relu("x", 3, channels, 3)
    for _ in range(depth):
        x = b.conv_bn_relu(x, channels, channels, 3)
    y = b.node("GlobalAveragePool", [x])
    return _save(b.nodes, [helper.make_tensor_value_info("x", FLOAT, [1, 3, hw, hw])],
                 [helper.make_tensor_value_info(y, FLOAT, None)], b.inits, folder, name)


def build_depthwise(folder: str, name: str, channels: int, hw: int, blocks: int) -> str:
    """MobileNet-v1-like: a stem, then ``blocks`` x (depthwise 3x3 + BN + ReLU, pointwise 1x1 +
    BN + ReLU) at ``channels``, global pool."""
    b = _Builder()
    x = b.conv_bn_relu("x", 3, channels, 3)
    for _ in range(blocks):
        x = b.conv_bn_relu(x, channels, channels, 3, group=channels)
        x = b.conv_bn_relu(x, channels, channels, 1)
    y = b.node("GlobalAveragePool", [x])
    return _save(b.nodes, [helper.make_tensor_value_info("x", FLOAT, [1, 3, hw, hw])],
                 [helper.make_tensor_value_info(y, FLOAT, None)], b.inits, folder, name)


def build_mlp(folder: str, name: str, hidden: int, layers: int) -> str:
    """``layers`` x (MatMul [1, hidden] x [hidden, hidden] + bias + ReLU): GEMVs, memory-bound."""
    b = _Builder()
    x = "x"
    for i in range(layers):
        x = b.node("Relu", [b.node("Add", [b.node("MatMul", [x, b.w(f"fc{i}.w", (hidden, hidden))]),
                                           b.w(f"fc{i}.b", (hidden,))])])
    return _save(b.nodes, [helper.make_tensor_value_info("x", FLOAT, [1, hidden])],
                 [helper.make_tensor_value_info(x, FLOAT, None)], b.inits, folder, name)


def zoo(folder: str) -> List[ZooModel]:
    """The models of the benchmark, built in ``folder`` where needed."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from benchmarks.models import BertConfig, build_bert
    from tests.builders import DecoderConfig, build_decoder

    out: List[ZooModel] = []
    for path in sorted(glob.glob(os.path.join(LIGHT, "*.onnx"))):
        out.append(ZooModel(os.path.basename(path)[6:-5], "CNN (onnx wheel)", path))
    fixtures = {
        "tiny_resnet_torchscript": ("CNN (torch)", {}), "tiny_resnet_dynamo": ("CNN (torch)", {}),
        "tiny_resnet_int8": ("CNN int8 QDQ", {}), "tiny_encoder_torchscript": ("transformer (torch)", {}),
        "tiny_encoder_dynamo": ("transformer (torch)", {}), "tiny_rotary_torchscript": ("transformer (torch)", {}),
        "tv_shufflenet_torchscript": ("CNN (torchvision)", {}), "tv_shufflenet_dynamo": ("CNN (torchvision)", {}),
        "tv_swin_torchscript": ("transformer (torchvision)", {}), "tv_swin_v2_torchscript": ("transformer (torchvision)", {}),
        "tv_maxvit_torchscript": ("transformer (torchvision)", {}), "tv_raft_torchscript": ("optical flow (torchvision)", {}),
        "tv_ssdlite_torchscript": ("detector (torchvision)", {}), "tv_fasterrcnn_torchscript": ("detector (torchvision)", {}),
        "bert_unfused": ("BERT", {"seq": 128}), "bert_fused": ("BERT, ORT fused ops", {"seq": 128}),
        "llm_genai_fp32": ("LLM decode step", {"sequence_length": 1, "past_sequence_length": 64, "kv_cache_dim": 32}),
        "llm_genai_int4": ("LLM decode step int4", {"sequence_length": 1, "past_sequence_length": 64, "kv_cache_dim": 32}),
    }
    for name, (kind, dims) in fixtures.items():
        path = os.path.join(FIXTURES, f"{name}.onnx")
        if os.path.exists(path):
            out.append(ZooModel(name, kind, path, dims))
    cfg = DecoderConfig(layers=4, hidden=256, heads=4, ffn=1024, vocab=4000, positions=512)
    dec = build_decoder(cfg, os.path.join(folder, "decoder"), kv_cache=True)
    out.append(ZooModel("decoder_prefill64", "LLM decoder prefill", dec, {"batch": 1, "seq": 64, "past": 0}))
    out.append(ZooModel("decoder_decode@128", "LLM decoder step", dec, {"batch": 1, "seq": 1, "past": 128}))
    for c, hw, d in ((32, 56, 4), (64, 56, 4), (128, 28, 6)):
        out.append(ZooModel(f"cnn_c{c}_{hw}", "CNN 3x3", build_cnn(folder, f"cnn_c{c}_{hw}", c, hw, d)))
    for c, hw, n in ((32, 112, 4), (128, 56, 4), (256, 28, 6)):
        out.append(ZooModel(f"dw_c{c}_{hw}", "depthwise-separable",
                            build_depthwise(folder, f"dw_c{c}_{hw}", c, hw, n)))
    for h, seq in ((128, 64), (256, 128), (384, 256)):
        cfg_b = BertConfig(layers=2, hidden=h, heads=4, ffn=4 * h, vocab=2000, positions=512)
        path = build_bert(cfg_b, folder, f"encoder_h{h}.onnx")
        out.append(ZooModel(f"encoder_h{h}_s{seq}", "transformer encoder", path, {"batch": 1, "seq": seq}))
    for h, n in ((512, 4), (1024, 4), (2048, 4)):
        out.append(ZooModel(f"mlp_{h}x{n}", "MLP (GEMV)", build_mlp(folder, f"mlp_{h}x{n}", h, n)))
    return out


# ---------------------------------------------------------------------------------------------

@dataclass
class Row:
    model: ZooModel
    measured: Optional[float] = None  # p50 seconds
    spread: Optional[float] = None
    estimate: Optional[float] = None
    unfused: Optional[float] = None  # the estimate with every layer a kernel of its own
    complete: bool = True
    macs: Optional[int] = None
    compute_bound: int = 0
    layers: int = 0
    error: str = ""


def run(models: Sequence[ZooModel], device, runs: int, warmup: int, log=print) -> List[Row]:
    from onnxscore.device import analyze_for_estimate, estimate
    from onnxscore.measure import measure_latency

    rows = []
    for m in models:
        row = Row(m)
        t0 = time.perf_counter()
        try:
            report, info = analyze_for_estimate(m.path, dims=m.dims)
            est = estimate(report, device, info)
            row.estimate, row.complete = est.seconds, est.complete
            row.unfused = estimate(report, device, info, fuse=False).seconds
            row.macs, row.layers, row.compute_bound = report.totals.macs, len(est.layers), est.compute_bound
            latency, _ = measure_latency(m.path, report=report, runs=runs, warmup=warmup)
            row.measured, row.spread = latency.p50, latency.spread
        except Exception as e:  # noqa: BLE001 - one model's failure is reported, the rest run
            row.error = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
        log(f"  {m.name:28s} {time.perf_counter() - t0:5.1f} s {row.error}")
        rows.append(row)
    return rows


def _ms(seconds: Optional[float]) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3f}"


def report(rows: Sequence[Row], device) -> str:
    from onnxscore.measure import spearman

    ok = [r for r in rows if r.measured and r.estimate is not None and r.macs is not None]
    lines = ["| model | kind | measured p50 ms | spread p90/p50 | estimate ms | estimate / measured | "
             "unfused estimate ms | GMACs | layers | compute-bound |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r.error:
            lines.append(f"| {r.model.name} | {r.model.kind} | error: {r.error} | | | | | | | |")
            continue
        ratio = r.estimate / r.measured if r.measured and r.estimate is not None else None
        flag = "" if r.complete else " (lower bound)"
        lines.append(f"| {r.model.name} | {r.model.kind} | {_ms(r.measured)} | {r.spread:.2f} | "
                     f"{_ms(r.estimate)}{flag} | {'-' if ratio is None else f'{ratio:.2f}'} | "
                     f"{_ms(r.unfused)} | {r.macs / 1e9:.4f} | {r.layers} | {r.compute_bound} |")
    measured = [r.measured for r in ok]
    rho_est = spearman([r.estimate for r in ok], measured)
    rho_unfused = spearman([r.unfused for r in ok], measured)
    rho_macs = spearman([r.macs for r in ok], measured)
    lower_bounds = sum(1 for r in ok if not r.complete)
    ratios = [r.estimate / r.measured for r in ok]
    median = statistics.median(ratios) if ratios else float("nan")
    lines += ["", f"models: {len(ok)} measured of {len(rows)}",
              f"device local: float32 {device.float32 / 1e9:.1f} GFLOP/s, bandwidth {device.bandwidth / 1e9:.1f} GB/s, "
              f"per-layer overhead {device.layer_overhead_s * 1e6:.2f} us",
              f"Spearman(estimate, measured)         = {_fmt(rho_est)}",
              f"Spearman(unfused estimate, measured) = {_fmt(rho_unfused)}",
              f"Spearman(MACs, measured)             = {_fmt(rho_macs)}",
              f"estimates that are lower bounds (some layer unknown): {lower_bounds}",
              f"median(estimate / measured)          = {median:.3f} "
              f"(quartiles {np.percentile(ratios, 25):.3f} .. {np.percentile(ratios, 75):.3f})" if ratios else ""]
    return "\n".join(lines)


def _fmt(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    quick = bool(os.environ.get("ONNXSCORE_BENCH_QUICK"))
    parser.add_argument("--runs", type=int, default=int(os.environ.get("ONNXSCORE_BENCH_RUNS", 3 if quick else 10)))
    parser.add_argument("--warmup", type=int, default=1 if quick else 2)
    parser.add_argument("--refresh", action="store_true", help="calibrate this machine again")
    parser.add_argument("--only", action="append", default=[], help="run only models whose name contains this")
    args = parser.parse_args(list(argv) if argv is not None else sys.argv[1:] if __name__ == "__main__" else [])
    try:
        import onnxruntime  # noqa: F401 - only whether it is installed
    except ImportError:
        print("benchmarks/latency.py needs onnxruntime (pip install 'onnxscore[measure]'); skipped")
        return 0
    import onnxruntime as ort

    from onnxscore.device import calibrate_local, cpu_model

    t0 = time.perf_counter()
    device = calibrate_local(refresh=args.refresh)
    print(f"local device calibrated or read from the cache in {time.perf_counter() - t0:.1f} s "
          f"({'--refresh' if args.refresh else 'cached unless first run'}): {device.sources[0]}")
    print(f"{cpu_model()}, {os.cpu_count()} CPUs; onnxruntime {ort.__version__} (CPU, default threads), "
          f"numpy {np.__version__}")
    with tempfile.TemporaryDirectory(prefix="onnxscore-latency-") as folder:
        models = zoo(folder)
        if args.only:
            models = [m for m in models if any(s in m.name for s in args.only)]
        print(f"{len(models)} models, {args.runs} runs after {args.warmup} warm-up each")
        rows = run(models, device, args.runs, args.warmup)
    print()
    print(report(rows, device))
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
