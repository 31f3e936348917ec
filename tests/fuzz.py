"""A structure-aware fuzzer: seeded mutations of real models, each analyzed as a user would.

A mutant must end in a report or an :class:`~onnxscore.errors.OnnxScoreError` (the one-line
message, exit 2); anything else is a bug of onnxscore, and so is a mutant that takes longer than
``TIMEOUT`` seconds. ``make test`` runs a few hundred mutants (``tests/test_fuzz.py``);
``make fuzz`` runs many more::

    .venv/bin/python -m tests.fuzz --mutants 10000 [--seed 1] [--save crashers/]

Crashers are written as ``.onnx`` files (with the seed and mutation in the name) to keep as
regression inputs in ``tests/fuzz_crashers/``, which ``tests/test_fuzz.py`` replays. Mutations: a dim or attribute set to 0, -1, 1 or a huge value; a node's
input pointed at another tensor; a node dropped or its op type swapped; a tensor's dtype
changed; an initializer's dims cut; a graph attribute removed; and random bytes flipped in the
serialized file.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
from typing import Callable, List, Optional, Tuple

from onnx import AttributeProto, ModelProto, TensorProto

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, os.pardir, "fixtures")
SEEDS = ("tiny_encoder_torchscript.onnx", "tv_shufflenet_torchscript.onnx", "tiny_rotary_dynamo.onnx",
         "sklearn/random_forest.onnx", "sklearn/svc_3class_proba.onnx", "tiny_resnet_int8.onnx")
VALUES = (0, -1, 1, 3, 2**31, 2**40)
OPS = ("Conv", "MatMul", "Reshape", "Slice", "Resize", "Loop", "If", "Scan", "Gather", "TopK",
       "NonZero", "GridSample", "LSTM", "Einsum", "Pad", "Split")
DTYPES = (TensorProto.FLOAT, TensorProto.INT64, TensorProto.STRING, TensorProto.BOOL, TensorProto.INT4, 0, 99)
TIMEOUT = 20


def _dims(model: ModelProto):
    g = model.graph
    return [d for vi in list(g.input) + list(g.output) + list(g.value_info)
            if vi.type.HasField("tensor_type") for d in vi.type.tensor_type.shape.dim]


def mutate(model: ModelProto, rng: random.Random) -> Tuple[ModelProto, str]:
    """One structural mutation of a copy of ``model``, and what it was."""
    m = ModelProto()
    m.CopyFrom(model)
    g = m.graph
    kind = rng.choice(("dim", "attr", "input", "drop", "op", "dtype", "init_dims", "graph_attr"))
    nodes = list(g.node)
    if kind == "dim" and _dims(m):
        d = rng.choice(_dims(m))
        d.dim_value = rng.choice(VALUES)
        return m, "dim"
    if kind == "attr":
        attrs = [a for n in nodes for a in n.attribute if a.type in (AttributeProto.INT, AttributeProto.INTS)]
        if attrs:
            a = rng.choice(attrs)
            if a.type == AttributeProto.INT:
                a.i = rng.choice(VALUES)
            elif a.ints:
                a.ints[rng.randrange(len(a.ints))] = rng.choice(VALUES)
            return m, f"attr-{a.name}"
    if kind == "input" and nodes:
        names = [t for n in nodes for t in list(n.input) + list(n.output) if t] + [t.name for t in g.initializer]
        n = rng.choice(nodes)
        if n.input and names:
            n.input[rng.randrange(len(n.input))] = rng.choice(names)
            return m, "input"
    if kind == "drop" and len(nodes) > 1:
        del g.node[rng.randrange(len(nodes))]
        return m, "drop"
    if kind == "op" and nodes:
        rng.choice(nodes).op_type = rng.choice(OPS)
        return m, "op"
    if kind == "dtype":
        vis = [vi for vi in list(g.input) + list(g.value_info) if vi.type.HasField("tensor_type")]
        if vis:
            rng.choice(vis).type.tensor_type.elem_type = rng.choice(DTYPES)
            return m, "dtype"
    if kind == "init_dims" and g.initializer:
        t = rng.choice(list(g.initializer))
        if t.dims:
            t.dims[rng.randrange(len(t.dims))] = rng.choice(VALUES)
            return m, "init_dims"
    if kind == "graph_attr":
        for n in nodes:
            for i, a in enumerate(n.attribute):
                if a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
                    del n.attribute[i]
                    return m, "graph_attr"
    if nodes:  # nothing of that kind here: swap an op instead
        rng.choice(nodes).op_type = rng.choice(OPS)
    return m, "op"


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def check(data: bytes, folder: str) -> Optional[str]:
    """Analyze ``data`` as a file: None when it ends as it should, else what went wrong."""
    from onnxscore.errors import OnnxScoreError
    from onnxscore.render import render
    from onnxscore.walk import analyze

    path = os.path.join(folder, "mutant.onnx")
    with open(path, "wb") as f:
        f.write(data)
    if hasattr(signal, "SIGALRM"):
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(TIMEOUT)
    try:
        report = analyze(path)
        render([report], "json")
        render([report], "text")
    except OnnxScoreError:
        return None
    except _Timeout:
        return f"took over {TIMEOUT} s"
    except Exception as e:  # noqa: BLE001 - the bug this harness looks for
        return f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    finally:
        if hasattr(signal, "SIGALRM"):
            signal.alarm(0)
    return None


def seeds() -> List[Tuple[str, ModelProto]]:
    """The seed models as the files hold them (weights included: a mutant is a whole file)."""
    out = []
    for name in SEEDS:
        path = os.path.join(FIXTURES, name)
        if os.path.exists(path):
            model = ModelProto()
            with open(path, "rb") as f:
                model.ParseFromString(f.read())
            out.append((name, model))
    return out


def run(mutants: int, seed: int = 0, save: Optional[str] = None,
        progress: Optional[Callable[[int], None]] = None) -> List[Tuple[str, str]]:
    """Analyze ``mutants`` mutants; returns (mutant id, what went wrong) for each failure."""
    rng = random.Random(seed)
    models = seeds()
    failures = []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(mutants):
            name, model = models[i % len(models)]
            if rng.random() < 0.2:
                data, what = flip_bytes(model.SerializeToString(), rng), "bytes"
            else:
                mutant, what = mutate(model, rng)
                data = mutant.SerializeToString()
            problem = check(data, folder)
            if problem is not None:
                ident = f"{seed}-{i}-{os.path.basename(name)[:-5]}-{what}"
                failures.append((ident, problem))
                if save:
                    os.makedirs(save, exist_ok=True)
                    with open(os.path.join(save, ident + ".onnx"), "wb") as f:
                        f.write(data)
            if progress and (i + 1) % 500 == 0:
                progress(i + 1)
    return failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Fuzz onnxscore with mutated real models.")
    parser.add_argument("--mutants", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default=None, help="folder for the crashers' .onnx files")
    opts = parser.parse_args(argv)
    failures = run(opts.mutants, opts.seed, opts.save,
                   progress=lambda n: print(f"{n} mutants", file=sys.stderr, flush=True))
    for ident, problem in failures:
        print(f"{ident}: {problem}")
    print(f"{opts.mutants} mutants, {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
