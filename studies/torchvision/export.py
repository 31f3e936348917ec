"""Export every torchvision ImageNet classifier (random weights) at its evaluation resolution.

The NetScore paper's large-scale comparison, redone on torchvision's ImageNet-1K weights: one
row per weights enum member with ImageNet-1K metrics (``resnet50.IMAGENET1K_V2``), exported
with the TorchScript exporter at the weight's own evaluation crop, batch 1, plus torch's own
parameter and MAC counts. Run it with the side venv (torch must never go into the project's
``.venv``), from the repository root::

    /work/side/bin/python studies/torchvision/export.py                    # every row
    /work/side/bin/python studies/torchvision/export.py --only resnet50.IMAGENET1K_V1,vit_h_14
    /work/side/bin/python studies/torchvision/export.py --force --only swin_t.IMAGENET1K_V1
    /work/side/bin/python studies/torchvision/export.py --list             # the rows, no export

``--only`` takes row names or architecture names. A row already exported (its ``.onnx`` and an
ok result in ``logs/``) is skipped unless ``--force``.

Every export runs in its own subprocess under ``nice -n 19``, one at a time, with a timeout
(``--timeout``, default 2 h) and a log ``<exports>/logs/<row>.log``; its result is
``<exports>/logs/<row>.json`` (torch's counts, the parameters no op received, the file's
facts, ``onnx.checker``, seconds and the worker's peak RSS). A failed export is recorded with a
one-line reason and the run goes on.

Nothing is downloaded:

* The model is ``torchvision.models.get_model(arch, weights=None, **kwargs)`` where ``kwargs``
  are the architecture arguments the builder would set from the weights (``num_classes`` from
  the meta categories, ``image_size`` for ViT, ``transform_input=True, init_weights=False`` for
  GoogLeNet and Inception-v3, with ``aux_logits`` False for GoogLeNet and True for Inception-v3 as
  their builders leave it; Inception-v3's auxiliary head only runs in training mode, so it is
  not in the eval-mode export). Each worker checks this against ``get_model(arch, weights=W)``
  with the checkpoint load stubbed out (on the meta device; on the CPU for RegNet, whose
  builder computes its widths with tensors): same state_dict names and shapes, same module
  tree, same top-level attributes. A mismatch fails the row.
* ``torch.manual_seed(0)``, torchvision's own init, then the recipe of
  ``fixtures/export_torchvision.py``: every norm gets random affine parameters and running
  statistics and every other parameter N(0, 0.02) noise, so that no two initializers are equal
  (the exporter deduplicates equal initializers, which would change the ONNX parameter count).
* The input is ``torch.rand(1, 3, R, R)`` (generator seed 2), R = the crop size of the
  weight's ``transforms`` (its ``functools.partial`` keyword ``crop_size``).

The export keeps BatchNormalization nodes: ``torch.onnx.export(model, (x,), f, dynamo=False,
opset_version=17, do_constant_folding=False, training=TrainingMode.PRESERVE)`` with the model in
eval mode. In the default EVAL mode the exporter folds every BatchNorm into the conv before
it (its 2*C parameters become a C-element bias), and constant folding turns Swin's relative
position bias gather into a constant: either way the ONNX parameters are no longer torch's.

Files larger than protobuf's 2 GB limit (vit_h_14, regnet_y_128gf) get their weights in one
external data file ``<row>.onnx.data`` next to ``<row>.onnx`` (the exporter writes one file per
tensor into a private temporary directory; they are gathered into one).

Rows whose architecture, builder arguments and resolution are the same (e.g.
``resnet50.IMAGENET1K_V1`` and ``IMAGENET1K_V2``: only the checkpoint differs) give the same
file: the first is exported, the others are hard links to it (``shared_with`` in the result;
``--no-share`` exports each one).

Torch's counts, on the same model and input: ``sum(p.numel() for p in model.parameters())``,
and MACs = FLOPs // 2 from ``torch.utils.flop_counter.FlopCounterMode`` around one no_grad
forward inside ``sdpa_kernel(SDPBackend.MATH)``, with nn.MultiheadAttention's fast path off
(``torch.backends.mha.set_fastpath_enabled(False)``: FlopCounterMode has no formula for the
fused ``_native_multi_head_attention`` and would count ViT's attention blocks as 0).
FlopCounterMode counts matmul-like ops only (convolution, mm, addmm, bmm, baddbmm, SDPA).

It writes ``studies/torchvision/models.csv`` (one row per weight) after every row.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_EXPORTS = Path("/work/exports/study")
CSV_NAME = "models.csv"
SEED = 0
INPUT_SEED = 2
NOISE = 0.02
OPSET = 17
TIMEOUT = 2 * 3600
PROTOBUF_LIMIT = 2**31  # bytes: larger models need external data

CSV_COLUMNS = ["row", "architecture", "weights", "acc@1", "acc@5", "num_params", "gflops", "resolution",
               "torch_params", "torch_macs", "onnx", "status", "arch_kwargs", "shared_with", "onnx_bytes",
               "export_seconds"]


# ==========================================================================
# The rows: torchvision's ImageNet-1K weights (metadata only, no download)
# ==========================================================================
def crop_size(weight) -> int:
    """The evaluation crop of a weight: the ``crop_size`` keyword of its ``transforms``
    (a ``functools.partial(ImageClassification, crop_size=...)``), read without calling it."""
    kw = getattr(weight.transforms, "keywords", None) or {}
    size = kw.get("crop_size")
    if isinstance(size, (list, tuple)):
        size = size[0]
    if not isinstance(size, int):
        raise ValueError(f"{weight}: no crop_size in its transforms {weight.transforms!r}")
    return size


def arch_kwargs(arch: str, weight) -> dict:
    """The builder arguments ``get_model(arch, weights=weight)`` sets from the weight; passed
    with ``weights=None`` instead (checked by :func:`check_architecture`)."""
    kw: dict = {}
    categories = weight.meta.get("categories")
    if categories is not None:
        kw["num_classes"] = len(categories)
    if arch.startswith("vit_"):
        # vision_transformer._vision_transformer: image_size = weights.meta["min_size"][0]
        kw["image_size"] = weight.meta["min_size"][0]
    if arch in ("googlenet", "inception_v3"):
        # with weights the builder sets transform_input=True, aux_logits=True, init_weights=False,
        # loads the checkpoint, then drops the auxiliary heads unless the caller's aux_logits
        # (default False for googlenet, True for inception_v3) asks for them. In eval mode the
        # auxiliary heads never run.
        kw.update(transform_input=True, aux_logits=arch == "inception_v3", init_weights=False)
    return kw


def study_rows() -> list[dict]:
    """One entry per weights enum member with ImageNet-1K metrics, in list_models order."""
    import torchvision
    from torchvision.models import get_model_weights, list_models

    rows = []
    for arch in list_models(module=torchvision.models):
        for w in get_model_weights(arch):
            metrics = (w.meta.get("_metrics") or {}).get("ImageNet-1K")
            if not metrics:
                continue
            acc1, acc5 = metrics.get("acc@1"), metrics.get("acc@5")
            row = {"row": f"{arch}.{w.name}", "architecture": arch, "weights": w.name,
                   "enum": f"{type(w).__name__}.{w.name}", "acc@1": acc1, "acc@5": acc5,
                   "num_params": w.meta.get("num_params"), "gflops": w.meta.get("_ops"),
                   "resolution": crop_size(w), "arch_kwargs": arch_kwargs(arch, w)}
            if acc1 is None or (isinstance(acc1, float) and math.isnan(acc1)):
                row["skip"] = (f"no ImageNet-1K accuracy (acc@1 is {acc1}; categories "
                               f"{w.meta.get('categories')!r}: a feature-extractor checkpoint, not a classifier)")
            rows.append(row)
    return rows


def group_key(row: dict) -> str:
    """Rows with the same key give the same ONNX file (only the checkpoint differs)."""
    return json.dumps([row["architecture"], row["arch_kwargs"], row["resolution"]], sort_keys=True)


# ==========================================================================
# The worker (one subprocess per row)
# ==========================================================================
def torch_setup() -> None:
    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)


def get_weight(row: dict):
    from torchvision.models import get_model_weights

    return get_model_weights(row["architecture"])[row["weights"]]


def build(row: dict):
    """The architecture of the row's weights with random weights: torch.manual_seed(0),
    get_model(arch, weights=None, **arch_kwargs)."""
    import torch
    import torchvision

    torch.manual_seed(SEED)
    return torchvision.models.get_model(row["architecture"], weights=None, **row["arch_kwargs"])


def _signature(model) -> dict:
    scalars = (bool, int, float, str, tuple)
    # a submodule set to None after construction (googlenet's aux1/aux2 when its builder drops
    # them) prints as "(aux1): None"; one never built is not printed: the same network
    modules = "\n".join(ln for ln in repr(model).splitlines() if not ln.strip().endswith("): None"))
    return {
        "state_dict": [(k, tuple(v.shape), str(v.dtype)) for k, v in model.state_dict().items()],
        "modules": modules,
        "attributes": {k: v for k, v in sorted(vars(model).items())
                       if not k.startswith("_") and k != "training" and isinstance(v, scalars)},
    }


def check_architecture(row: dict) -> str:
    """'ok' when get_model(arch, weights=None, **arch_kwargs) builds the same network as
    get_model(arch, weights=W) with the checkpoint load stubbed out (nothing downloaded); else
    what differs. Both are built on the meta device, or on the CPU for builders that compute
    with tensors (RegNet's block widths)."""
    import gc

    import torch
    import torchvision
    from torchvision.models._api import WeightsEnum

    weight = get_weight(row)

    def both():
        mine = _signature(torchvision.models.get_model(row["architecture"], weights=None, **row["arch_kwargs"]))
        gc.collect()
        saved = (WeightsEnum.get_state_dict, torch.nn.Module.load_state_dict)
        WeightsEnum.get_state_dict = lambda self, *a, **k: {}
        torch.nn.Module.load_state_dict = lambda self, *a, **k: None
        try:
            theirs = _signature(torchvision.models.get_model(row["architecture"], weights=weight))
        finally:
            WeightsEnum.get_state_dict, torch.nn.Module.load_state_dict = saved
        gc.collect()
        return mine, theirs

    try:
        with torch.device("meta"):
            mine, theirs = both()
    except NotImplementedError:  # "Cannot copy out of meta tensor": the builder computes with tensors
        mine, theirs = both()
    diffs = [k for k in mine if mine[k] != theirs[k]]
    if not diffs:
        return "ok"
    detail = []
    if "state_dict" in diffs:
        a, b = dict((n, s) for n, s, _ in mine["state_dict"]), dict((n, s) for n, s, _ in theirs["state_dict"])
        only_a = sorted(set(a) - set(b))[:3]
        only_b = sorted(set(b) - set(a))[:3]
        shape = [n for n in a if n in b and a[n] != b[n]][:3]
        detail.append(f"state_dict: only weights=None {only_a}, only weights=W {only_b}, shapes differ {shape}")
    if "attributes" in diffs:
        detail.append(f"attributes {mine['attributes']} vs {theirs['attributes']}")
    if "modules" in diffs and not detail:
        detail.append("module tree differs")
    return "; ".join(detail)


def perturb(model) -> None:
    """fixtures/export_torchvision.py's recipe: norm affine ~ U(0.5, 1.5) / U(-0.1, 0.1), running
    mean ~ U(-0.1, 0.1), running var ~ U(0.5, 1.5); every other float parameter += N(0, 0.02)."""
    import torch
    import torch.nn as nn

    g = torch.Generator().manual_seed(SEED + 1)

    def uniform_(t, lo, hi):
        t.copy_(torch.rand(t.shape, generator=g, dtype=torch.float32).to(t.dtype) * (hi - lo) + lo)

    done = set()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)):
                for name, lo, hi in (("weight", 0.5, 1.5), ("bias", -0.1, 0.1)):
                    p = getattr(m, name, None)
                    if isinstance(p, torch.Tensor):
                        uniform_(p, lo, hi)
                        done.add(id(p))
                for name, lo, hi in (("running_mean", -0.1, 0.1), ("running_var", 0.5, 1.5)):
                    b = getattr(m, name, None)
                    if isinstance(b, torch.Tensor):
                        uniform_(b, lo, hi)
        for p in model.parameters():
            if id(p) not in done and p.is_floating_point():
                p.add_(torch.randn(p.shape, generator=g) * NOISE)


def example_input(resolution: int):
    import torch

    g = torch.Generator().manual_seed(INPUT_SEED)
    return torch.rand(1, 3, resolution, resolution, generator=g)


def torch_counts(model, x) -> dict:
    """Parameters, buffers, the parameters no op receives during the forward, and
    FlopCounterMode MACs (FLOPs // 2, SDPA on the MATH backend, MHA fast path off) of one
    no_grad forward."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_flatten
    from torch.utils.flop_counter import FlopCounterMode

    # nn.MultiheadAttention's eval/no_grad fast path (torch._native_multi_head_attention) is
    # one op FlopCounterMode has no formula for: vit_b_16 would count 11.27 G instead of 17.56 G.
    # Off, it runs the in/out projections (linear) and SDPA, which are counted.
    torch.backends.mha.set_fastpath_enabled(False)
    params = dict(model.named_parameters())
    ids = {id(p) for p in params.values()}

    class SeenParams(TorchFunctionMode):
        """Records every parameter passed to a torch function (module call or functional use)."""

        def __init__(self):
            super().__init__()
            self.seen = set()

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            for a in tree_flatten((args, kwargs))[0]:
                if isinstance(a, torch.Tensor) and id(a) in ids:
                    self.seen.add(id(a))
            return func(*args, **kwargs)

    seen = SeenParams()
    counter = FlopCounterMode(display=False, depth=1)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter, seen:
        out = model(x)
    unused: dict[str, int] = {}
    for name, p in params.items():
        if id(p) not in seen.seen:
            module = name.rsplit(".", 1)[0] if "." in name else ""
            unused[module] = unused.get(module, 0) + p.numel()
    flops = int(counter.get_total_flops())
    by_op = {str(op).replace("aten.", ""): int(v) // 2 for op, v in counter.get_flop_counts().get("Global", {}).items()}
    return {
        "torch_params": sum(p.numel() for p in params.values()),
        "torch_buffers": sum(b.numel() for n, b in model.named_buffers() if not n.endswith("num_batches_tracked")),
        "torch_params_unused": sum(unused.values()),
        "unused_params_by_module": unused,
        "torch_flops": flops,
        "torch_macs": flops // 2,
        "torch_macs_by_op": by_op,
        "output_shape": list(out.shape),
    }


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def gather_external_data(tmp_onnx: Path, final: Path) -> None:
    """The exporter's one-file-per-tensor external data (in tmp_onnx's directory) -> one file
    ``<final>.data`` next to ``final``."""
    import onnx

    model = onnx.load(str(tmp_onnx), load_external_data=True)
    data = Path(str(final) + ".data")
    for stale in (final, data):
        if stale.exists():
            stale.unlink()
    onnx.save_model(model, str(final), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data.name, size_threshold=1024)


def file_facts(path: Path) -> dict:
    import collections

    import onnx

    m = onnx.load(str(path), load_external_data=False)
    ops = collections.Counter(n.op_type for n in m.graph.node)
    numel = 0
    for t in m.graph.initializer:
        numel += math.prod(t.dims)
    data = Path(str(path) + ".data")
    facts = {
        "onnx": path.name,
        "onnx_bytes": path.stat().st_size + (data.stat().st_size if data.exists() else 0),
        "external_data": data.name if data.exists() else None,
        "sha256": sha256(path),
        "opset": {o.domain or "ai.onnx": o.version for o in m.opset_import},
        "producer": f"{m.producer_name} {m.producer_version}".strip(),
        "nodes": len(m.graph.node),
        "initializers": len(m.graph.initializer),
        "initializer_numel": numel,
        "op_counts": dict(sorted(ops.items())),
    }
    try:
        onnx.checker.check_model(str(path), full_check=False)
        facts["onnx_checker"] = "ok"
    except Exception as e:  # noqa: BLE001
        facts["onnx_checker"] = one_line(e)
    return facts


def peak_rss_mb() -> int:
    """The worker's peak resident memory so far (Linux ru_maxrss is in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:400]


def worker(row_json: str, out_dir: str, result_path: str) -> int:
    import gc

    import torch

    torch_setup()
    row = json.loads(row_json)
    out_dir = Path(out_dir)
    res: dict = {"row": row["row"], "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    t0 = time.time()

    def save(**kw):
        res.update(kw)
        res["seconds"] = round(time.time() - t0, 1)
        Path(result_path).write_text(json.dumps(res, indent=1) + "\n")

    res["arch_check"] = check_architecture(row)
    print(f"architecture check: {res['arch_check']}", flush=True)
    if res["arch_check"] != "ok":
        save(status="failed", reason=f"architecture differs from get_model(weights=W): {res['arch_check']}")
        return 0
    model = build(row)
    perturb(model)
    model.eval()
    x = example_input(row["resolution"])
    t = time.time()
    res.update(torch_counts(model, x))
    res["torch_seconds"] = round(time.time() - t, 1)
    print(f"torch: {res['torch_params']} params, {res['torch_macs']} MACs, {res['torch_seconds']}s", flush=True)
    save(status="running")

    final = out_dir / f"{row['row']}.onnx"
    tmp_dir = out_dir / f".tmp_{row['row']}"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    tmp = tmp_dir / final.name
    t = time.time()
    try:
        torch.onnx.export(model, (x,), str(tmp), dynamo=False, opset_version=OPSET,
                          do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE,
                          input_names=["input"], output_names=["logits"])
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        shutil.rmtree(tmp_dir, ignore_errors=True)
        save(status="failed", reason=one_line(e), export_seconds=round(time.time() - t, 1), peak_rss_mb=peak_rss_mb())
        return 0
    res["export_seconds"] = round(time.time() - t, 1)
    del model
    gc.collect()
    for stale in (final, Path(str(final) + ".data")):
        if stale.exists():
            stale.unlink()
    extra = [p for p in tmp_dir.iterdir() if p != tmp]
    if extra:  # > 2 GB: the exporter wrote one external file per tensor
        res["exporter_external_files"] = len(extra)
        gather_external_data(tmp, final)
    else:
        tmp.replace(final)
    shutil.rmtree(tmp_dir, ignore_errors=True)
    res.update(file_facts(final))
    print(f"{final.name}: {res['onnx_bytes']} bytes, {res['nodes']} nodes, export {res['export_seconds']}s, "
          f"checker {res['onnx_checker']}", flush=True)
    save(status="ok", peak_rss_mb=peak_rss_mb())
    return 0


# ==========================================================================
# The driver
# ==========================================================================
def run_worker(row: dict, out_dir: Path, log_dir: Path, timeout: int) -> dict:
    result = log_dir / f"{row['row']}.json"
    log = log_dir / f"{row['row']}.log"
    if result.exists():
        result.unlink()
    cmd = ["nice", "-n", "19", sys.executable, str(Path(__file__).resolve()), "--worker",
           json.dumps(row), str(out_dir), str(result)]
    t0 = time.time()
    with open(log, "w") as f:
        try:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = f"timeout ({timeout}s)"
    secs = round(time.time() - t0, 1)
    res = json.loads(result.read_text()) if result.exists() else {"row": row["row"]}
    if rc != 0 or res.get("status") not in ("ok", "failed"):
        tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:]
        why = {-9: "killed by SIGKILL (out of memory?)", -11: "segmentation fault"}.get(rc, f"rc={rc}")
        stage = res.get("status", "start")
        res["status"] = "failed"
        res["reason"] = (f"worker {why} after {secs}s during stage '{stage}'"
                         + (f": {tail[0].strip()[:300]}" if tail else ""))
        shutil.rmtree(out_dir / f".tmp_{row['row']}", ignore_errors=True)
    res["wall_seconds"] = secs
    result.write_text(json.dumps(res, indent=1) + "\n")
    return res


def load_result(log_dir: Path, name: str) -> dict | None:
    path = log_dir / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def share(row: dict, donor: dict, out_dir: Path, log_dir: Path) -> dict:
    """Hard-link the donor row's file (same architecture, arguments and resolution)."""
    src = out_dir / donor["onnx"]
    dst = out_dir / f"{row['row']}.onnx"
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    res = {k: v for k, v in donor.items() if k not in ("row", "started", "wall_seconds", "shared_with")}
    res.update(row=row["row"], shared_with=donor["row"], onnx=dst.name, wall_seconds=0.0,
               started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    (log_dir / f"{row['row']}.json").write_text(json.dumps(res, indent=1) + "\n")
    return res


def csv_value(v):
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True) if v else ""
    return v


def write_csv(path: Path, rows: list[dict], log_dir: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for row in rows:
            res = load_result(log_dir, row["row"]) or {}
            if row.get("skip"):
                status = f"skipped: {row['skip']}"
            elif not res:
                status = "not run"
            elif res.get("status") == "ok":
                status = "ok"
            else:
                status = f"failed: {res.get('reason', res.get('status'))}"
            ok = res.get("status") == "ok"
            w.writerow([csv_value(v) for v in (
                row["row"], row["architecture"], row["weights"], row["acc@1"], row["acc@5"], row["num_params"],
                row["gflops"], row["resolution"], res.get("torch_params"), res.get("torch_macs"),
                res.get("onnx") if ok else None, status, row["arch_kwargs"], res.get("shared_with"),
                res.get("onnx_bytes") if ok else None,
                None if res.get("shared_with") else res.get("export_seconds"))])


def versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("torch", "torchvision", "onnx", "onnxruntime", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        return worker(*argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exports", type=Path, default=DEFAULT_EXPORTS,
                        help=f"where the .onnx files and logs/ go (default {DEFAULT_EXPORTS}; never the repo)")
    parser.add_argument("--csv", type=Path, default=HERE / CSV_NAME,
                        help="the table written (default: models.csv here)")
    parser.add_argument("--only", default="",
                        help="comma-separated row names (resnet50.IMAGENET1K_V2) or architectures")
    parser.add_argument("--force", action="store_true", help="export again rows already exported")
    parser.add_argument("--no-share", action="store_true",
                        help="export every row, even when an earlier row has the same architecture and resolution")
    parser.add_argument("--timeout", type=int, default=TIMEOUT, help=f"seconds per export (default {TIMEOUT})")
    parser.add_argument("--list", action="store_true", help="print the rows and exit")
    opts = parser.parse_args(argv)

    rows = study_rows()
    if opts.list:
        for r in rows:
            print(r["row"], r["resolution"], json.dumps(r["arch_kwargs"]), r.get("skip", ""))
        print(f"{len(rows)} rows, {len({r['architecture'] for r in rows})} architectures")
        return 0
    out_dir = opts.exports
    log_dir = out_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / "versions.json").write_text(json.dumps(versions(), indent=1) + "\n")
    only = {s for s in opts.only.split(",") if s}
    unknown = only - {r["row"] for r in rows} - {r["architecture"] for r in rows}
    if unknown:
        parser.error(f"--only: no such row or architecture: {', '.join(sorted(unknown))}")
    todo = [r for r in rows if not r.get("skip") and (not only or r["row"] in only or r["architecture"] in only)]
    # cheapest first: the many small models finish early, the 2 GB ones last
    todo.sort(key=lambda r: (r["gflops"] or 0, r["architecture"], r["row"]))
    print(f"{len(rows)} rows over {len({r['architecture'] for r in rows})} architectures; "
          f"{len(todo)} selected -> {out_dir}", flush=True)

    t_start = time.time()
    fresh: set[str] = set()
    counts = {"exported": 0, "shared": 0, "skipped": 0, "failed": 0}
    for i, row in enumerate(todo, 1):
        name = row["row"]
        prev = load_result(log_dir, name)
        target = out_dir / f"{name}.onnx"
        if not opts.force and prev and prev.get("status") == "ok" and target.exists():
            counts["skipped"] += 1
            print(f"[{i}/{len(todo)}] {name}: already exported, skipped", flush=True)
            continue
        donor = None
        if not opts.no_share:
            for other in rows:
                if other is row or group_key(other) != group_key(row):
                    continue
                res = load_result(log_dir, other["row"])
                if (res and res.get("status") == "ok" and not res.get("external_data")
                        and (out_dir / res["onnx"]).exists() and (not opts.force or other["row"] in fresh)):
                    donor = res
                    break
        if donor is not None:
            res = share(row, donor, out_dir, log_dir)
            counts["shared"] += 1
            print(f"[{i}/{len(todo)}] {name}: same file as {donor['row']} (hard link)", flush=True)
        else:
            print(f"[{i}/{len(todo)}] {name} @ {row['resolution']}px ...", flush=True)
            res = run_worker(row, out_dir, log_dir, opts.timeout)
            if res.get("status") == "ok":
                counts["exported"] += 1
                print(f"    ok in {res['wall_seconds']}s: {res['torch_params']} params, {res['torch_macs']} MACs, "
                      f"{res['onnx_bytes']} bytes", flush=True)
            else:
                counts["failed"] += 1
                print(f"    FAILED in {res['wall_seconds']}s: {res.get('reason')}", flush=True)
        fresh.add(name)
        write_csv(opts.csv, rows, log_dir)
    write_csv(opts.csv, rows, log_dir)
    print(f"done in {time.time() - t_start:.0f}s: {counts}; wrote {opts.csv}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
