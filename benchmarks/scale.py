"""onnxscore against the floor of any shape-aware analysis, on graphs of 1k to 200k nodes.

Three families, built here with onnx.helper at run time (nothing is downloaded):

* **chain**: ``x -> Add(bias) -> Relu -> Add(bias) -> ...`` on a [1, 64] tensor, one shared bias;
* **residual CNN**: blocks ``Conv 3x3 -> Relu -> Conv 3x3 -> Add(skip) -> Relu`` on
  [1, 8, 16, 16], weights inline (8x8x3x3 + 8 per convolution, each its own initializer);
* **decoder**: the GPT-style decoder of ``tests.builders`` (31 nodes per block) at hidden 64,
  4 heads, FFN 256, vocab 512, with as many blocks as the node count asks; weights as external
  data in a sparse file (never read by either side).

The **floor** is ``onnx.load(path, load_external_data=False)`` followed by
``onnx.shape_inference.infer_shapes(model, data_prop=True)``: what any analysis that needs shapes
has to do, and nothing more. **onnxscore** is the CLI, ``python -m onnxscore analyze MODEL
--format json -o OUT``. Both run in their own process under ``/usr/bin/time -v`` (wall time
includes the interpreter and imports; peak RSS is that process's alone), best of ``--runs``.
Every onnxscore report is checked against the hand count of its parameters and MACs, so a fast
wrong answer fails the run.

    .venv/bin/python benchmarks/scale.py [--sizes 1000,10000,50000,200000] [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from tests.builders import DecoderConfig, build_decoder  # noqa: E402

FLOAT = TensorProto.FLOAT
SIZES = (1_000, 10_000, 50_000, 200_000)
FAMILIES = ("chain", "residual CNN", "decoder")
DECODER_NODES_PER_BLOCK = 31  # tests.builders at opset 17: see build_decoder
DECODER_FIXED_NODES = 7       # Shape, Gather, Range, 2 embedding Gathers, their Add; final LN, head
FLOOR = ("import sys, onnx\n"
         "m = onnx.load(sys.argv[1], load_external_data=False)\n"
         "onnx.shape_inference.infer_shapes(m, data_prop=True)\n")


@dataclass
class Built:
    family: str
    path: str
    nodes: int
    params: int
    macs: int


def chain(n: int, folder: str) -> Built:
    """``n`` nodes alternating Add (one shared [64] bias) and Relu: 64 parameters, no MACs."""
    nodes, x = [], "x"
    for i in range(n):
        out = f"t{i}"
        nodes.append(helper.make_node("Add", [x, "bias"], [out], name=f"add{i}") if i % 2 == 0
                     else helper.make_node("Relu", [x], [out], name=f"relu{i}"))
        x = out
    nodes[-1].output[0] = "y"
    bias = numpy_helper.from_array(np.zeros(64, np.float32), "bias")
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", FLOAT, [1, 64])], [bias])
    return Built("chain", _save(graph, folder, "chain.onnx"), n, 64, 0)


def residual_cnn(n: int, folder: str) -> Built:
    """``n // 5`` blocks of 5 nodes; per convolution 8*8*3*3 + 8 = 584 parameters and
    16*16 * 8 * 8*3*3 = 147,456 MACs (output positions x output channels x kernel volume)."""
    blocks = max(1, n // 5)
    nodes, inits, x = [], [], "x"
    rng = np.random.default_rng(0)
    for b in range(blocks):
        convs = []
        for j in range(2):
            w, bias = f"b{b}.c{j}.w", f"b{b}.c{j}.b"
            inits.append(numpy_helper.from_array(rng.standard_normal((8, 8, 3, 3)).astype(np.float32), w))
            inits.append(numpy_helper.from_array(np.zeros(8, np.float32), bias))
            convs.append((w, bias))
        c0 = helper.make_node("Conv", [x, *convs[0]], [f"b{b}.h0"], name=f"b{b}.conv0", pads=[1, 1, 1, 1])
        r0 = helper.make_node("Relu", [f"b{b}.h0"], [f"b{b}.r0"], name=f"b{b}.relu0")
        c1 = helper.make_node("Conv", [f"b{b}.r0", *convs[1]], [f"b{b}.h1"], name=f"b{b}.conv1", pads=[1, 1, 1, 1])
        add = helper.make_node("Add", [f"b{b}.h1", x], [f"b{b}.s"], name=f"b{b}.add")
        out = f"b{b}.out"
        r1 = helper.make_node("Relu", [f"b{b}.s"], [out], name=f"b{b}.relu1")
        nodes += [c0, r0, c1, add, r1]
        x = out
    nodes[-1].output[0] = "y"
    graph = helper.make_graph(nodes, "resnet", [helper.make_tensor_value_info("x", FLOAT, [1, 8, 16, 16])],
                              [helper.make_tensor_value_info("y", FLOAT, [1, 8, 16, 16])], inits)
    per_conv_params, per_conv_macs = 8 * 8 * 3 * 3 + 8, 16 * 16 * 8 * 8 * 3 * 3
    return Built("residual CNN", _save(graph, folder, "resnet.onnx"), 5 * blocks,
                 2 * blocks * per_conv_params, 2 * blocks * per_conv_macs)


def decoder(n: int, folder: str) -> Built:
    """The tests' decoder with ``(n - 7) // 31`` blocks, batch 1 and sequence 16: its hand
    counts are ``DecoderConfig.params`` and ``.macs``."""
    cfg = DecoderConfig(layers=max(1, (n - DECODER_FIXED_NODES) // DECODER_NODES_PER_BLOCK),
                        hidden=64, heads=4, ffn=256, vocab=512, positions=64)
    path = build_decoder(cfg, folder)
    return Built("decoder", path, DECODER_FIXED_NODES + DECODER_NODES_PER_BLOCK * cfg.layers,
                 cfg.params, cfg.macs(16))


BUILDERS = {"chain": chain, "residual CNN": residual_cnn, "decoder": decoder}
DIMS = {"decoder": ["--dim", "batch=1", "--dim", "seq=16"]}
FLOOR_DIMS = {"decoder": {"batch": 1, "seq": 16}}


def _save(graph, folder: str, name: str) -> str:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="onnxscore-benchmarks")
    path = os.path.join(folder, name)
    onnx.save_model(model, path)
    return path


def _timed(cmd: List[str]) -> Tuple[float, float, str]:
    """(wall seconds, peak RSS MB, stderr) of ``cmd`` under ``/usr/bin/time -v``."""
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    err = proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", err)
    h, m, s = wall.groups()
    seconds = int(h or 0) * 3600 + int(m) * 60 + float(s)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1)) / 1024
    return seconds, rss, err


def _floor_script(folder: str, dims: Dict[str, int]) -> str:
    """The floor as a script; symbolic input dims bound to ``dims`` first (as ``--dim`` does)."""
    bind = ("for vi in m.graph.input:\n"
            "    for d in vi.type.tensor_type.shape.dim:\n"
            f"        if d.dim_param in {dims!r}: d.dim_value = {dims!r}[d.dim_param]\n") if dims else ""
    path = os.path.join(folder, "floor.py")
    with open(path, "w") as f:
        f.write(FLOOR.replace("onnx.shape_inference", bind + "onnx.shape_inference", 1) if bind else FLOOR)
    return path


def measure(built: Built, runs: int, folder: str) -> Dict[str, float]:
    floor = _floor_script(folder, FLOOR_DIMS.get(built.family, {}))
    out = os.path.join(folder, "report.json")
    cli = [sys.executable, "-m", "onnxscore", "analyze", built.path, "--format", "json", "-o", out,
           *DIMS.get(built.family, [])]
    best: Dict[str, float] = {}
    for _ in range(runs):
        for key, cmd in (("floor", [sys.executable, floor, built.path]), ("onnxscore", cli)):
            wall, rss, _ = _timed(cmd)
            best[key + "_s"] = min(best.get(key + "_s", wall), wall)
            best[key + "_mb"] = max(best.get(key + "_mb", rss), rss)
    with open(out) as f:
        totals = json.load(f)["totals"]
    if totals["params"] != built.params or totals["macs"] != built.macs:
        raise AssertionError(f"{built.family} {built.nodes:,} nodes: onnxscore says {totals['params']:,} "
                             f"parameters and {totals['macs']:,} MACs; by hand {built.params:,} and "
                             f"{built.macs:,}")
    return best


def main(argv=()) -> int:
    """Run the table; ``argv`` are this script's options (none when ``make bench`` calls it)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--runs", type=int, default=int(os.environ.get("ONNXSCORE_BENCH_RUNS", 3)))
    args = parser.parse_args(argv)
    if os.environ.get("ONNXSCORE_BENCH_QUICK"):
        args.sizes, args.runs = "1000,10000", 1
    sizes = [int(s) for s in args.sizes.split(",")]
    print("| graph | nodes | onnxscore s | floor s | time ratio | onnxscore MB | floor MB | RSS ratio |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for family in args.families.split(","):
        for n in sizes:
            with tempfile.TemporaryDirectory(prefix="onnxscore-scale-") as folder:
                built = BUILDERS[family](n, folder)
                r = measure(built, args.runs, folder)
            print(f"| {family} | {built.nodes:,} | {r['onnxscore_s']:.2f} | {r['floor_s']:.2f} | "
                  f"{r['onnxscore_s'] / r['floor_s']:.1f}x | {r['onnxscore_mb']:,.0f} | {r['floor_mb']:,.0f} | "
                  f"{r['onnxscore_mb'] / r['floor_mb']:.1f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
