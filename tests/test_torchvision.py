"""Small torchvision exports (fixtures/export_torchvision.py, both PyTorch exporters) whose
graphs compute shapes at run time: every cost known and equal to torch's own count.

The reference numbers are torch's, recorded by the export script in
fixtures/torchvision_reference.json: ``flop_counter.macs_total`` is
``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2) on the input the model was exported
with, ``data_dependent_sizes`` what the model produced on it (proposals kept, ...).
"""
from __future__ import annotations

import json
import os

import pytest

import onnxscore
from onnxscore.report import UNKNOWN

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures")

with open(os.path.join(FIXTURES, "torchvision_reference.json")) as f:
    SMALL = json.load(f)["small"]


def analyze(name: str, exporter: str, **kw):
    path = os.path.join(FIXTURES, f"tv_{name}_{exporter}.onnx")
    if not os.path.exists(path):
        pytest.skip(reason=f"{path} is not committed")
    return onnxscore.analyze(path, **kw)


@pytest.mark.parametrize("name, exporter", [
    ("shufflenet", "torchscript"),  # channel split: Shape -> Gather -> Add -> Div -> Mul -> Slice
    ("shufflenet", "dynamo"),
    ("swin", "torchscript"),  # window padding computed from the input's shape: 16->21, 8->14, ...
    ("swin", "dynamo"),
    ("swin_v2", "torchscript"),  # PatchMergingV2 pads 7 to 8, continuous position bias MLP
    ("maxvit", "torchscript"),  # block and grid partitions, Einsum scores
    ("raft", "torchscript"),  # coordinate grids from ConstantOfShape fills, bilinear lookups
])
def test_classifiers_and_flow_cost_exactly_torchs_macs(name, exporter):
    r = analyze(name, exporter)
    assert r.totals.complete, [la.name for la in r.top_layers if la.status == UNKNOWN][:5]
    assert not r.unknown_causes and not r.data_dims
    assert r.totals.macs == SMALL[name]["flop_counter"]["macs_total"]


def test_both_exporters_agree_on_swins_parameters():
    # the dynamo exporter folds the relative position bias and mask tables differently, but
    # both are buffers: the learned parameters are the same
    assert analyze("swin", "torchscript").totals.params == analyze("swin", "dynamo").totals.params


def test_single_stage_detector_head_and_postprocess():
    # SSDlite: the head runs on every anchor (known); the postprocess per class (NonZero of the
    # score threshold, TopK, NMS) gets named sizes, never an unknown shape
    r = analyze("ssdlite", "torchscript")
    assert r.totals.macs == SMALL["ssdlite"]["flop_counter"]["macs_total"]
    assert {d.split("@")[0] for d in r.data_dims} >= {"nonzero", "nms"}
    assert all("data decides" in c.why or "@" in c.why for c in r.unknown_causes)


def test_two_stage_detector_box_head_is_a_formula_in_the_proposals():
    # Faster R-CNN: the RPN keeps `keep[:post_nms_top_n]` proposals (slice@); the box head and
    # predictor cost a fixed number of MACs per proposal. With the 50 proposals the model kept
    # on the reference input, the total is torch's.
    ref = SMALL["fasterrcnn"]
    r = analyze("fasterrcnn", "torchscript")
    proposals = [d for d in r.data_dims if d.startswith("slice@/rpn/")]
    assert len(proposals) == 1
    heads = [row for row in r.by_scope(2) if row.key in ("roi_heads/box_head", "roi_heads/box_predictor")]
    assert all(row.macs_formula is not None and row.macs_formula.symbols == (proposals[0],) for row in heads)
    kept = ref["data_dependent_sizes"]["rpn.proposals"]["value"]
    r = analyze("fasterrcnn", "torchscript", dims={proposals[0]: kept})
    assert sum(la.macs or 0 for la in r.top_layers) == ref["flop_counter"]["macs_total"]
