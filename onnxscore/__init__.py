"""onnxscore: parameters, MACs, FLOPs and NetScore of any ONNX model, layer by layer.

>>> import onnxscore
>>> report = onnxscore.analyze("model.onnx", dims={"batch": 1}, accuracy=76.1)  # doctest: +SKIP
>>> report.totals.params, report.totals.macs, report.netscore.value            # doctest: +SKIP
"""
from onnxscore.errors import GraphError, ModelLoadError, OnnxScoreError, UsageError
from onnxscore.graph import load_graph
from onnxscore.netscore import NetScore, netscore
from onnxscore.report import LayerCost, ModelInfo, Report, Totals
from onnxscore.walk import analyze, analyze_graph, annotate

__version__ = "0.1.0"

__all__ = [
    "analyze", "analyze_graph", "annotate", "load_graph", "netscore", "NetScore", "Report",
    "LayerCost", "Totals", "ModelInfo", "OnnxScoreError", "ModelLoadError", "GraphError",
    "UsageError", "__version__",
]
