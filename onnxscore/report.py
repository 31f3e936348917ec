"""Results as frozen dataclasses of raw integers; units appear only in onnxscore.render."""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Dict, Optional, Tuple

from onnxscore.netscore import NetScore

SCHEMA = "onnxscore.report/1"

OK, ZERO, UNKNOWN, UNSUPPORTED, ERROR = "ok", "zero", "unknown", "unsupported", "error"


@dataclass(frozen=True)
class LayerCost:
    """One ONNX node: its shapes and what it costs. ``macs``/``flops`` are None when unknown.

    ``parent`` names the If/Loop/Scan node whose subgraph holds this node; such nodes are
    listed for detail and their cost is already inside the parent's (per iteration for loops).
    """

    name: str
    op_type: str
    domain: str
    input_shapes: Tuple
    output_shapes: Tuple
    params: int
    macs: Optional[int]
    flops: Optional[int]
    status: str
    note: str = ""
    parent: Optional[str] = None
    weights: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Totals:
    """Whole-model figures. ``complete`` is False when some cost is unknown or unsupported,
    so ``macs``/``flops`` are lower bounds."""

    params: int
    buffers: int
    macs: int
    flops: int
    weight_bytes: int
    weight_bytes_by_dtype: Dict[str, int] = field(default_factory=dict)
    quant_overhead: int = 0
    complete: bool = True
    params_complete: bool = True


@dataclass(frozen=True)
class ModelInfo:
    path: str
    opset: int
    producer: str
    producer_version: str
    ir_version: int
    inputs: Dict[str, Tuple]  # name -> shape as analysed (ints, or names left symbolic)
    opsets: Dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """Everything :func:`onnxscore.analyze` found out about one model."""

    model: ModelInfo
    totals: Totals
    netscore: NetScore
    layers: Tuple[LayerCost, ...]
    unresolved_dims: Dict[str, Tuple[str, ...]]  # dimension -> layers it leaves unknown
    unsupported_ops: Dict[str, int]  # "domain::op" -> node count
    shared_weights: Dict[str, Tuple[str, ...]]  # tensor -> the layers that use it
    notes: Tuple[str, ...] = ()
    warnings: Tuple[str, ...] = ()

    @property
    def top_layers(self) -> Tuple[LayerCost, ...]:
        """Top-level layers (not inside a subgraph): these add up to the totals."""
        return tuple(layer for layer in self.layers if layer.parent is None)

    def top_k(self, k: int = 10, by: str = "macs") -> Tuple[LayerCost, ...]:
        """The ``k`` top-level layers with the largest ``by`` (macs, flops or params)."""
        ranked = sorted(self.top_layers, key=lambda layer: getattr(layer, by) or 0, reverse=True)
        return tuple(layer for layer in ranked[:k] if (getattr(layer, by) or 0) > 0)

    def by_op_type(self) -> Dict[str, Dict[str, int]]:
        """Count, params, MACs and FLOPs per op type over the top-level layers."""
        out: Dict[str, Dict[str, int]] = {}
        for layer in self.top_layers:
            row = out.setdefault(layer.op_type, Counter())
            row["count"] += 1
            row["params"] += layer.params
            row["macs"] += layer.macs or 0
            row["flops"] += layer.flops or 0
        return {k: dict(v) for k, v in out.items()}

    def to_dict(self) -> dict:
        """The JSON form (schema ``onnxscore.report/1``), raw integers throughout."""
        ns = asdict(self.netscore)
        return {
            "schema": SCHEMA,
            "model": asdict(self.model),
            "totals": asdict(self.totals),
            "netscore": {k: ns[k] for k in ("value", "accuracy", "alpha", "beta", "gamma",
                                            "info_density", "missing", "units")},
            "layers": [asdict(layer) for layer in self.layers],
            "unresolved_dims": {k: list(v) for k, v in self.unresolved_dims.items()},
            "unsupported_ops": dict(self.unsupported_ops),
            "shared_weights": {k: list(v) for k, v in self.shared_weights.items()},
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }
