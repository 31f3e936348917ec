"""onnxscore: parameters, MACs, FLOPs and NetScore of any ONNX model, layer by layer.

>>> import onnxscore
>>> report = onnxscore.analyze("model.onnx", dims={"batch": 1}, accuracy=76.1)  # doctest: +SKIP
>>> report.totals.params, report.totals.macs, report.netscore.value            # doctest: +SKIP

Names are imported on first use, so ``import onnxscore`` (and a cached ``onnxscore check``)
does not pay for onnx, numpy and networkx until an analysis needs them.
"""
import importlib

__version__ = "0.2.0"

_EXPORTS = {
    "analyze": "onnxscore.walk", "analyze_graph": "onnxscore.walk", "annotate": "onnxscore.walk",
    "load_graph": "onnxscore.graph", "netscore": "onnxscore.netscore", "NetScore": "onnxscore.netscore",
    "Report": "onnxscore.report", "LayerCost": "onnxscore.report", "Totals": "onnxscore.report",
    "ModelInfo": "onnxscore.report", "UnknownCause": "onnxscore.report", "OnnxScoreError": "onnxscore.errors",
    "ModelLoadError": "onnxscore.errors", "GraphError": "onnxscore.errors", "UsageError": "onnxscore.errors",
    "rank": "onnxscore.study", "load_accuracies": "onnxscore.study", "Study": "onnxscore.study",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    try:  # a submodule: onnxscore.walk, onnxscore.budget, ...
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError:
        raise AttributeError(f"module 'onnxscore' has no attribute {name!r}") from None


def __dir__():
    return sorted(__all__)
