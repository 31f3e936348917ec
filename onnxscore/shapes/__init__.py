"""The shapes stage (load -> **shapes** -> graph): every tensor's shape, dtype and small value.

:func:`infer_graph` is the entry point; see :mod:`onnxscore.shapes.engine` for how a node's
outputs are derived, :mod:`.rules` and :mod:`.contrib` for onnxscore's own shape rules,
:mod:`.evaluate` for the bounded use of ONNX's reference implementation and per-node
inference, :mod:`.constants` for tensors the file fixes.
"""
from onnxscore.shapes.constants import ConstTensor, dtype_name, storage_bytes
from onnxscore.shapes.dims import is_unknown, merge
from onnxscore.shapes.engine import Lost, Shapes, Values, infer_graph, node_keys, peek

__all__ = ["ConstTensor", "Lost", "Shapes", "dtype_name", "infer_graph", "is_unknown", "merge",
           "node_keys", "peek", "storage_bytes", "Values"]
