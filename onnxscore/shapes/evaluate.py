"""Concrete values and per-node shapes from ONNX itself: its reference implementation
(``onnx.reference``) runs one node on small known inputs, and its per-node shape inference
(``onnx.shape_inference.infer_node_outputs``) gives a node's output shapes from the input
shapes and the input values we know.

Both are bounded: inputs carry values only when small (see :data:`VALUE_LIMIT`), and a node
whose output could be large (ConstantOfShape, Expand, Tile, Range, ...) is evaluated only
after its output shape is known to be small. A weight's bytes are never read (they were
dropped on load), so a node that needs one is never evaluated.
"""
from __future__ import annotations

import contextlib
import functools
import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import onnx
from onnx import NodeProto, TensorProto, helper, numpy_helper

# The most elements a computed value may have. Shape arithmetic, indices, scales and small
# masks are far below it; anything larger is an activation or a weight, known by shape only.
VALUE_LIMIT = 1 << 16
# A ConstantOfShape fill larger than a weight-sized constant is a weight or a mask: sized,
# never made (weights over this many elements have their bytes dropped on load).
FILL_LIMIT = 4096

# Never evaluated: control flow (handled by the engine), randomness, and ops whose output is
# not a function of their inputs alone.
NOT_EVALUATED = frozenset({
    "If", "Loop", "Scan", "SequenceMap", "RandomNormal", "RandomNormalLike", "RandomUniform",
    "RandomUniformLike", "Multinomial", "Bernoulli", "Dropout", "Constant",
    "SequenceConstruct", "SequenceEmpty", "SequenceInsert", "SequenceErase", "SequenceAt",
    "SequenceLength", "SplitToSequence", "ConcatFromSequence", "Optional",
    "OptionalGetElement", "OptionalHasElement"})
# Ops whose output is never larger than their inputs together (data movement, reductions,
# selections): the only ones evaluated before their output shape is known. Every other op
# (anything that broadcasts, ConstantOfShape, Expand, Tile, Range, MatMul, ...) runs only once
# its output shape is known to hold at most VALUE_LIMIT elements.
BOUNDED = frozenset({
    "NonZero", "Unique", "Compress", "TopK", "NonMaxSuppression", "Slice", "Gather",
    "GatherElements", "GatherND", "Squeeze", "Unsqueeze", "Reshape", "Flatten", "Cast",
    "CastLike", "Identity", "Concat", "Split", "Transpose", "Shape", "Size", "ReduceSum",
    "ReduceMax", "ReduceMin", "ReduceProd", "ReduceMean", "ArgMax", "ArgMin", "Not", "Neg",
    "Abs", "Floor", "Ceil", "Round", "Sqrt", "Sign", "Relu", "Sigmoid", "Exp", "Log",
    "CumSum", "ReverseSequence"})


def _log(*args) -> None:
    return None


@functools.lru_cache(maxsize=None)
def _op_class(op_type: str, version: int):
    from onnx.reference.ops import load_op

    try:
        return load_op("", op_type, version)
    except Exception:  # an op the reference implementation does not have
        return None


def evaluate(node: NodeProto, inputs: Sequence[Optional[np.ndarray]],
             opsets: Mapping[str, int]) -> Optional[List[Optional[np.ndarray]]]:
    """Run one default-domain node on concrete inputs; None when it cannot be run here."""
    if node.op_type in NOT_EVALUATED or node.domain not in ("", "ai.onnx"):
        return None
    if any(a.type == onnx.AttributeProto.TENSOR and a.t.data_location == TensorProto.EXTERNAL
           for a in node.attribute):
        return None  # its value is in a file: never read
    cls = _op_class(node.op_type, opsets.get("", 0) or onnx.defs.onnx_opset_version())
    if cls is None:
        return None
    params = {"opsets": dict(opsets), "log": _log, "new_ops": None, "verbose": 0,
              "existing_functions": {}, "evaluator_cls": None}
    try:
        with np.errstate(all="ignore"):
            op = cls(node, params)
            outs = op.run(*inputs)
    except Exception:  # the reference implementation rejects the node: keep the shape path
        return None
    if not isinstance(outs, (tuple, list)):
        outs = (outs,)
    result: List[Optional[np.ndarray]] = []
    for out in outs:
        if isinstance(out, np.ndarray) or np.isscalar(out):
            out = np.asarray(out)
            result.append(out if out.size <= VALUE_LIMIT else None)
        else:  # a sequence or an optional: not a tensor value
            result.append(None)
    return result


def _type_proto(shape, dtype: int, placeholders: Dict[str, object]) -> onnx.TypeProto:
    """A tensor TypeProto for per-node inference; polynomial dims become placeholder names."""
    if shape is None:
        return helper.make_tensor_type_proto(dtype, None)
    dims = []
    for d in shape:
        if isinstance(d, int):
            dims.append(d)
        elif isinstance(d, str) and not d.startswith("unk__"):
            dims.append(d)
        elif d is None or isinstance(d, str):
            dims.append(None)
        else:  # a Poly: ONNX passes the name through where the dim is only carried
            name = f"__onnxscore_{len(placeholders)}"
            placeholders[name] = d
            dims.append(name)
    return helper.make_tensor_type_proto(dtype, dims)


@functools.lru_cache(maxsize=None)
def _schema(op_type: str, version: int, domain: str):
    try:
        return onnx.defs.get_schema(op_type, version, domain)
    except Exception:  # SchemaError: not an op ONNX knows at this opset
        return None


def infer_node(node: NodeProto, shapes: Sequence, dtypes: Sequence[int],
               values: Sequence[Optional[np.ndarray]], opsets: Mapping[str, int],
               ) -> Optional[List[Tuple[Optional[Tuple], int]]]:
    """ONNX's shape inference for one node, given input shapes and the values we know:
    [(shape, dtype)] per output, or None when ONNX has no schema or refuses."""
    domain = "" if node.domain in ("", "ai.onnx") else node.domain
    version = opsets.get(domain, 0)
    schema = _schema(node.op_type, version or onnx.defs.onnx_opset_version(), domain)
    if schema is None:
        return None
    placeholders: Dict[str, object] = {}
    types, data = {}, {}
    for name, shape, dtype, value in zip(node.input, shapes, dtypes, values):
        if not name:
            continue
        if dtype == 0 and value is not None:
            dtype = tensor_dtype(value.dtype)
        types[name] = _type_proto(shape, dtype or TensorProto.FLOAT, placeholders)
        if value is not None and value.dtype != object:
            with contextlib.suppress(Exception):  # a dtype numpy_helper cannot write: no value
                data[name] = numpy_helper.from_array(value, name)
    imports = [helper.make_opsetid(d, v) for d, v in opsets.items()]
    try:
        out = onnx.shape_inference.infer_node_outputs(schema, node, types, data, None, imports)
    except Exception:  # InferenceError and friends: ONNX cannot say more
        return None
    result = []
    for name in node.output:
        t = out.get(name)
        if t is None or not t.HasField("tensor_type"):
            result.append((None, 0))
            continue
        tt = t.tensor_type
        shape = None
        if tt.HasField("shape"):
            shape = tuple(d.dim_value if d.HasField("dim_value")
                          else placeholders.get(d.dim_param, d.dim_param or None)
                          for d in tt.shape.dim)
        result.append((shape, tt.elem_type))
    return result


def tensor_dtype(np_dtype) -> int:
    """The ONNX dtype of a numpy dtype, 0 when ONNX has none."""
    try:
        return helper.np_dtype_to_tensor_dtype(np_dtype)
    except (KeyError, ValueError, TypeError):
        return 0


def numel(shape) -> Optional[int]:
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    return int(math.prod(shape))
