"""Tiny models and rule contexts for the per-op tests (built with onnx.helper, nothing downloaded)."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper

from onnxscore.ops import registry
from onnxscore.ops.registry import Ctx, Tensor

FLOAT = TensorProto.FLOAT


def ctx(op_type: str, in_shapes: Sequence[Optional[Sequence]], out_shapes: Sequence[Optional[Sequence]],
        attrs: Optional[Mapping[str, Any]] = None, domain: str = "", dtype: int = FLOAT,
        values: Optional[Mapping[int, Any]] = None, opset: int = 23) -> Ctx:
    """A rule context: ``None`` in ``in_shapes`` is an absent optional input."""
    values = values or {}
    ins = [None if s is None else Tensor(f"in{i}", tuple(s), dtype,
                                         None if i not in values else np.asarray(values[i]))
           for i, s in enumerate(in_shapes)]
    outs = [None if s is None else Tensor(f"out{i}", tuple(s), dtype) for i, s in enumerate(out_shapes)]
    return Ctx(f"{op_type}_0", op_type, domain, dict(attrs or {}), ins, outs, opset)


def cost(op_type: str, in_shapes, out_shapes, attrs=None, domain: str = "", **kw):
    """Cost of one node through its registered rule."""
    r = registry.lookup(domain, op_type)
    assert r is not None, f"no rule for {(domain, op_type)}"
    return r.fn(ctx(op_type, in_shapes, out_shapes, attrs, domain, **kw))


def node_model(op_type: str, inputs: Sequence, outputs: Sequence, attrs: Optional[Mapping] = None,
               initializers: Sequence[TensorProto] = (), domain: str = "", opset: int = 23,
               extra_opsets: Optional[Mapping[str, int]] = None) -> onnx.ModelProto:
    """A one-node model. ``inputs``/``outputs`` are ``(name, elem_type, shape)`` triples (shape
    may hold symbolic names or None); an input named ``""`` is an absent optional input.
    Inputs that have an initializer of the same name are not declared as graph inputs."""
    init_names = {t.name for t in initializers}
    in_names = [i if isinstance(i, str) else i[0] for i in inputs]
    graph_inputs = [helper.make_tensor_value_info(n, t, s) for n, t, s in
                    (i for i in inputs if not isinstance(i, str)) if n and n not in init_names]
    graph_outputs = [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs]
    node = helper.make_node(op_type, in_names, [o[0] for o in outputs], name=f"{op_type}_0",
                            domain=domain, **dict(attrs or {}))
    graph = helper.make_graph([node], "g", graph_inputs, graph_outputs, list(initializers))
    opsets = [helper.make_opsetid("", opset)]
    for d, v in (extra_opsets or {}).items():
        opsets.append(helper.make_opsetid(d, v))
    if domain not in ("", "ai.onnx") and domain not in (extra_opsets or {}):
        opsets.append(helper.make_opsetid(domain, 1))
    return helper.make_model(graph, opset_imports=opsets)


def weight(name: str, shape: Sequence[int], dtype: int = FLOAT) -> TensorProto:
    """An initializer of ``shape`` (zeros; values never matter to onnxscore)."""
    np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
    return onnx.numpy_helper.from_array(np.zeros(shape, dtype=np_dtype), name)
