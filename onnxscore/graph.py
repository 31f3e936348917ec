"""ModelProto -> a graph in networkx's layout: one graph node per ONNX node, edges for tensors.

The analysis builds a light :class:`onnxscore.digraph.Graph` (networkx costs a tenth of a
second to import); :func:`load_graph` hands users the same graph as a ``networkx.DiGraph``.

Node attributes: ``op_type``, ``domain``, ``attrs`` (plain Python values), ``inputs`` and
``outputs`` (tensor names, ``""`` for an absent optional input), ``input_shapes``,
``output_shapes``, ``input_dtypes``, ``output_dtypes``, ``subgraphs`` (attribute name ->
DiGraph of the same form), ``scope`` (the module path, see :func:`node_scope`) and ``index``
(position in the ONNX graph). After
:func:`onnxscore.analyze` the walker's results can be put on the nodes with
:func:`onnxscore.walk.annotate` (``macs``, ``flops``, ``params``, ``status``).

Edge attributes: ``name``, ``shape``, ``dtype`` of the first tensor between the two nodes and
``tensors``, the names of all of them. ``G.graph`` holds the tensor table (``tensors``: name ->
(shape, dtype)), the constants (``constants``: name -> :class:`ConstTensor`), the graph
``inputs`` and ``outputs``, ``producers`` (tensor -> node) and ``order`` (the nodes in an
order that respects every edge).
"""
from __future__ import annotations

import ast
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import onnx
from onnx import AttributeProto, GraphProto, TensorProto, helper, numpy_helper

from onnxscore.digraph import Graph, topological_order
from onnxscore.errors import GraphError
from onnxscore.model import KEEP_VALUES_UP_TO, load_model, shape_of
from onnxscore.shapes import propagate

@dataclass(frozen=True)
class ConstTensor:
    """A tensor whose value is fixed by the file: an initializer or a Constant output."""

    name: str
    shape: Optional[Tuple[int, ...]]
    dtype: int
    nbytes: Optional[int]
    external: bool = False
    value: Optional[np.ndarray] = None  # small inline constants only
    source: str = "initializer"  # initializer | Constant | ConstantOfShape

    @property
    def numel(self) -> Optional[int]:
        return None if self.shape is None else int(math.prod(self.shape))


FLOAT_TYPES = frozenset(getattr(TensorProto, n) for n in (
    "FLOAT", "DOUBLE", "FLOAT16", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2",
    "FLOAT8E5M2FNUZ", "FLOAT4E2M1", "FLOAT8E8M0") if hasattr(TensorProto, n))

_SUB_BYTE_BITS = {}
for _name, _bits in (("INT4", 4), ("UINT4", 4), ("FLOAT4E2M1", 4), ("INT2", 2), ("UINT2", 2)):
    if hasattr(TensorProto, _name):
        _SUB_BYTE_BITS[getattr(TensorProto, _name)] = _bits


def dtype_name(dtype: int) -> str:
    try:
        return TensorProto.DataType.Name(dtype).lower()
    except ValueError:
        return f"dtype{dtype}"


def storage_bytes(dtype: int, numel: int) -> Optional[int]:
    """Bytes that ``numel`` elements of ``dtype`` occupy, packed for sub-byte types."""
    if dtype in _SUB_BYTE_BITS:
        return (numel * _SUB_BYTE_BITS[dtype] + 7) // 8
    if dtype in (TensorProto.STRING, TensorProto.UNDEFINED):
        return None
    try:
        return numel * helper.tensor_dtype_to_np_dtype(dtype).itemsize
    except (KeyError, ValueError, TypeError):
        return None


def _tensor_const(t: TensorProto, name: str, source: str = "initializer") -> ConstTensor:
    shape = tuple(int(d) for d in t.dims)
    n = int(math.prod(shape))
    external = t.data_location == TensorProto.EXTERNAL
    nbytes = storage_bytes(t.data_type, n)
    if external:
        length = next((e.value for e in t.external_data if e.key == "length"), None)
        if length is not None and length.isdigit():
            nbytes = int(length)
    value = None
    # small inline constants are decoded for rules (shapes, trip counts); weights only sized
    if not external and n <= KEEP_VALUES_UP_TO and t.data_type != TensorProto.STRING:
        try:
            value = numpy_helper.to_array(t)
        except Exception:  # a malformed small tensor only loses its value
            value = None
    return ConstTensor(name, shape, t.data_type, nbytes, external, value, source)


def _constant_node_tensor(node: onnx.NodeProto) -> Optional[ConstTensor]:
    """The constant a Constant node makes, from whichever ``value*`` attribute it has."""
    out = node.output[0] if node.output else ""
    for a in node.attribute:
        if a.name == "value" and a.type == AttributeProto.TENSOR:
            return _tensor_const(a.t, out, "Constant")
        if a.name == "sparse_value" and a.type == AttributeProto.SPARSE_TENSOR:
            dims = tuple(int(d) for d in a.sparse_tensor.dims)
            n = int(math.prod(dims))
            return ConstTensor(out, dims, a.sparse_tensor.values.data_type,
                               storage_bytes(a.sparse_tensor.values.data_type, n), source="Constant")
        if a.name in ("value_float", "value_int", "value_string"):
            v = helper.get_attribute_value(a)
            dt = {"value_float": TensorProto.FLOAT, "value_int": TensorProto.INT64,
                  "value_string": TensorProto.STRING}[a.name]
            return ConstTensor(out, (), dt, storage_bytes(dt, 1), value=np.asarray(v), source="Constant")
        if a.name in ("value_floats", "value_ints", "value_strings"):
            v = helper.get_attribute_value(a)
            dt = {"value_floats": TensorProto.FLOAT, "value_ints": TensorProto.INT64,
                  "value_strings": TensorProto.STRING}[a.name]
            return ConstTensor(out, (len(v),), dt, storage_bytes(dt, len(v)),
                               value=np.asarray(v), source="Constant")
    return None


def _constant_of_shape(node: onnx.NodeProto, consts: Mapping[str, ConstTensor],
                       tensors: Mapping[str, Tuple]) -> Optional[ConstTensor]:
    """The tensor a ConstantOfShape with a constant shape input makes, sized from that shape
    (or the inferred output shape); its value is never materialised."""
    out = node.output[0]
    dtype = next((a.t.data_type for a in node.attribute if a.name == "value"), TensorProto.FLOAT)
    src = consts.get(node.input[0]) if node.input else None
    if src is None:  # a shape computed at run time makes activations, not weights
        return None
    shape: Optional[Tuple] = None
    if src.value is not None:
        shape = tuple(int(v) for v in np.asarray(src.value).reshape(-1))
    else:
        inferred = tensors.get(out, (None,))[0]
        if inferred is not None and all(isinstance(d, int) for d in inferred):
            shape = tuple(inferred)
    if shape is None or any(d < 0 for d in shape):
        return ConstTensor(out, None, dtype, None, source="ConstantOfShape")
    return ConstTensor(out, shape, dtype, storage_bytes(dtype, int(math.prod(shape))),
                       source="ConstantOfShape")


NAME_SCOPES_KEY = "pkg.torch.onnx.name_scopes"
_TORCH_PARAM = re.compile(r"^[A-Za-z_]\w*(\.\w+)+$")


def node_scope(node: onnx.NodeProto, consts: Mapping[str, "ConstTensor"]) -> Tuple[str, ...]:
    """The module path of a node, from whichever source the exporter left.

    * torch.export-based exporter: ``metadata_props[pkg.torch.onnx.name_scopes]``, a list
      literal ``['', 'layers.0', 'layers.0.attn', 'layers.0.attn.qkv', 'linear']`` whose first
      entry is the root and last the FX node; but a node with a weight named like a torch
      parameter (``conv1.weight``) belongs to that module, since the optimizer hands a Conv
      fused with its BatchNorm the BatchNorm's scope;
    * TorchScript-based exporter, tf2onnx, Paddle: a ``/``-separated node name such as
      ``/layer1/layer1.0/conv1/Conv``, whose last part names the op itself;
    * otherwise no scope here (see :func:`_scopes_from_weight_names`).
    """
    for prop in node.metadata_props:
        if prop.key == NAME_SCOPES_KEY:
            try:
                parts = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                break
            if not isinstance(parts, (list, tuple)):
                break
            scopes = [str(p) for p in parts[:-1] if str(p)]
            named = [n for n in node.input if n in consts and _TORCH_PARAM.match(n)
                     and weight_like(consts[n])]
            if named:  # its module, under the enclosing modules the metadata names
                module = named[0].rsplit(".", 1)[0]
                scopes = [p for p in scopes if module.startswith(p + ".")] + [module]
            return torch_style(scopes)
    if "/" in node.name:
        parts = [p for p in node.name.split("/") if p]
        return tuple(parts[:-1])
    return ()


def torch_style(paths) -> Tuple[str, ...]:
    """Full module paths as the TorchScript exporter names scopes: each module by its name in
    its parent, a numbered child with its parent's name (``layer1``, ``layer1.0``, ``conv1``;
    ``downsample``, ``downsample.0``), so both exporters give the same scopes."""
    out: List[str] = []
    parent = ""
    for path in paths:
        rel = path[len(parent) + 1:] if parent and path.startswith(parent + ".") else path
        if rel.isdigit() and parent:
            rel = f"{parent.rsplit('.', 1)[-1]}.{rel}"
        out.append(rel)
        parent = path
    return tuple(out)


_DEVICE_PREFIX = re.compile(r"^(gpu|cpu)_\d+/")
_WEIGHT_SUFFIX = re.compile(r"_[A-Za-z]+_\d+$")


def _scope_of_weight(name: str) -> Tuple[str, ...]:
    """The module path a weight's name spells:
    ``layers.0.attn.qkv.weight`` -> (layers, layers.0, attn, qkv);
    Caffe2's ``gpu_0/res2_0_branch2a_w_0`` -> (res2, res2_0, res2_0_branch2a);
    ``inception_3a/1x1_w_0`` -> (inception_3a, 1x1)."""
    base = _DEVICE_PREFIX.sub("", name)
    if "." in base and "/" not in base:
        parts = base.split(".")[:-1]  # the last part names the parameter: weight, bias, ...
        return torch_style(".".join(parts[: i + 1]) for i in range(len(parts)))
    base = _WEIGHT_SUFFIX.sub("", base)
    if "/" in base:
        return tuple(p for p in base.split("/") if p)
    parts = [p for p in base.split("_") if p]
    return tuple("_".join(parts[: i + 1]) for i in range(len(parts)))


def weight_like(c: ConstTensor, dtype: int = 0) -> bool:
    """Floating point (as ``dtype`` when the consumer sees a cast of it) and not a scalar: a
    weight rather than a shape, an index or a constant such as 0.5."""
    return (dtype or c.dtype) in FLOAT_TYPES and (c.numel is None or c.numel > 1)


def _scopes_from_weight_names(G: Graph, consts: Mapping[str, ConstTensor]) -> None:
    """Flat node names (``n0``, ``n1``): scope each node that reads a weight (or makes one, as a
    Constant or ConstantOfShape does) by that weight's name."""
    for _, nd in G.nodes(data=True):
        weights = [n for n in nd["inputs"] + nd["outputs"] if n in consts and weight_like(consts[n])]
        if weights:
            nd["scope"] = _scope_of_weight(weights[0])


def _inherit_scopes(G: Graph) -> None:
    """Give an unscoped node (an activation, a Q/DQ pair a quantizer inserted, a Flatten) the
    scope of the node that produced its first input, else of its first consumer."""
    order = G.graph["order"]
    for key in order:
        nd = G.nodes[key]
        if not nd["scope"]:
            sources = [u for u, _, e in G.in_edges(key, data=True) if nd["inputs"] and e["name"] == nd["inputs"][0]]
            if sources and G.nodes[sources[0]]["scope"]:
                nd["scope"] = G.nodes[sources[0]]["scope"]
    for key in reversed(order):
        nd = G.nodes[key]
        if not nd["scope"]:
            users = sorted(G.successors(key), key=lambda k: G.nodes[k]["index"])
            if users and G.nodes[users[0]]["scope"]:
                nd["scope"] = G.nodes[users[0]]["scope"]


def _attr_value(a: AttributeProto) -> Any:
    if a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
        return None  # kept as DiGraphs in ``subgraphs``
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [x.decode("utf-8", "replace") for x in v]
    return v


def _value_infos(graph: GraphProto) -> Dict[str, Tuple[Optional[Tuple], int]]:
    table: Dict[str, Tuple[Optional[Tuple], int]] = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        dtype = vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else 0
        shape = shape_of(vi.type)
        if vi.name not in table or (table[vi.name][0] is None and shape is not None):
            table[vi.name] = (shape, dtype)
    return table


def build_graph(graph: GraphProto, outer: Optional[Mapping[str, Tuple]] = None,
                outer_consts: Optional[Mapping[str, ConstTensor]] = None,
                path: str = "<model>", opset: int = 0) -> Graph:
    """One ONNX graph (or subgraph) as a graph of the networkx layout (a light
    :class:`~onnxscore.digraph.Graph`); ``outer`` is the enclosing tensor table."""
    G = Graph(path=path, opset=opset)
    tensors: Dict[str, Tuple[Optional[Tuple], int]] = dict(outer or {})
    consts: Dict[str, ConstTensor] = dict(outer_consts or {})
    for t in graph.initializer:
        c = _tensor_const(t, t.name)
        consts[t.name] = c
        tensors[t.name] = (c.shape, c.dtype)
    tensors.update({k: v for k, v in _value_infos(graph).items()
                    if k not in tensors or v[0] is not None})
    producers: Dict[str, str] = {}
    keys = []
    seen_names = set()
    for i, node in enumerate(graph.node):
        key = node.name if node.name and node.name not in seen_names else f"{node.op_type}_{i}"
        while key in seen_names:
            key = f"{key}_{i}"
        seen_names.add(key)
        keys.append(key)
        for out in node.output:
            if not out:
                continue
            if out in producers:
                raise GraphError(f"{path}: tensor {out!r} is produced by both {producers[out]!r} "
                                 f"and {key!r}")
            producers[out] = key
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            c = _constant_node_tensor(node)
            if c is not None:
                consts[c.name] = c
                if tensors.get(c.name, (None,))[0] is None:
                    tensors[c.name] = (c.shape, c.dtype)
    tensors = propagate(graph.node, tensors, {k: c.value for k, c in consts.items()})
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.domain in ("", "ai.onnx") and node.output:
            c = _constant_of_shape(node, consts, tensors)
            if c is not None:
                consts[c.name] = c
    for key, node in zip(keys, graph.node):
        subgraphs = {}
        for a in node.attribute:
            if a.type == AttributeProto.GRAPH:
                subgraphs[a.name] = build_graph(a.g, tensors, consts, path, opset)
            elif a.type == AttributeProto.GRAPHS:
                for j, g in enumerate(a.graphs):
                    subgraphs[f"{a.name}[{j}]"] = build_graph(g, tensors, consts, path, opset)
        info_in = [tensors.get(n, (None, 0)) if n else (None, 0) for n in node.input]
        info_out = [tensors.get(n, (None, 0)) if n else (None, 0) for n in node.output]
        G.add_node(key, op_type=node.op_type, domain=node.domain, index=len(G), scope=node_scope(node, consts),
                   attrs={a.name: _attr_value(a) for a in node.attribute
                          if a.type not in (AttributeProto.GRAPH, AttributeProto.GRAPHS)},
                   inputs=list(node.input), outputs=list(node.output),
                   input_shapes=[s for s, _ in info_in], input_dtypes=[d for _, d in info_in],
                   output_shapes=[s for s, _ in info_out], output_dtypes=[d for _, d in info_out],
                   subgraphs=subgraphs)
    for key, node in zip(keys, graph.node):
        for name in node.input:
            src = producers.get(name)
            if src is None:
                continue
            if G.has_edge(src, key):
                G.edges[src, key]["tensors"].append(name)
            else:
                shape, dtype = tensors.get(name, (None, 0))
                G.add_edge(src, key, name=name, shape=shape, dtype=dtype, tensors=[name])
    G.graph["order"] = execution_order(G, keys, path)
    if not any(d["scope"] for _, d in G.nodes(data=True)):
        _scopes_from_weight_names(G, consts)
    if any(d["scope"] for _, d in G.nodes(data=True)):
        _inherit_scopes(G)
    G.graph.update(tensors=tensors, constants=consts, producers=producers,
                   inputs=[vi.name for vi in graph.input if vi.name not in
                           {t.name for t in graph.initializer}],
                   outputs=[vi.name for vi in graph.output],
                   initializers=[t.name for t in graph.initializer])
    return G


def execution_order(G: Graph, keys: Sequence[str], path: str) -> List[str]:
    """The nodes in an order that respects every edge: the file's own order when it does (as
    ONNX requires), else a topological sort; a cycle is an error."""
    position = {k: i for i, k in enumerate(keys)}
    if all(position[u] < position[v] for u, v in G.edges):
        return list(keys)
    order, cycle = topological_order(G, position.__getitem__)
    if cycle is not None:
        raise GraphError(f"{path}: the graph has a cycle through {cycle[0]!r} -> {cycle[1]!r}")
    return order


def bind_dims(G: Graph, input_shapes: Sequence[Optional[Tuple]]) -> Graph:
    """A copy of subgraph ``G`` with the symbolic dimensions of its formal inputs replaced by
    the caller's concrete ones (a Loop body's carried state, a Scan slice, a score tensor)."""
    mapping: Dict[str, int] = {}
    tensors = G.graph["tensors"]
    for name, actual in zip(G.graph["inputs"], input_shapes):
        formal = tensors.get(name, (None,))[0]
        if formal is None or actual is None or len(formal) != len(actual):
            continue
        for f, a in zip(formal, actual):
            if isinstance(f, str) and isinstance(a, int):
                mapping.setdefault(f, a)
    return _substitute(G, mapping) if mapping else G


def _substitute(G: Graph, mapping: Mapping[str, int]) -> Graph:
    def sub(shape):
        return None if shape is None else tuple(mapping.get(d, d) if isinstance(d, str) else d
                                                for d in shape)

    H = G.copy()
    H.graph = dict(G.graph)
    H.graph["tensors"] = {k: (sub(s), d) for k, (s, d) in G.graph["tensors"].items()}
    for key, nd in H.nodes(data=True):
        H.nodes[key].update(
            input_shapes=[sub(x) for x in nd["input_shapes"]],
            output_shapes=[sub(x) for x in nd["output_shapes"]],
            subgraphs={k: _substitute(g, mapping) for k, g in nd["subgraphs"].items()})
    return H


def default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def load_graph(path: Union[str, os.PathLike, onnx.ModelProto], dims: Optional[Mapping[str, int]] = None,
               input_shapes: Optional[Mapping[str, Any]] = None):
    """Load a model (weights never read) and return its ``networkx.DiGraph``, shapes inferred;
    :func:`onnxscore.analyze_graph` analyzes it.

    Parameters
    ----------
    path : str, PathLike or ModelProto
        The model.
    dims : mapping, optional
        Values of symbolic dimensions, e.g. ``{"batch": 1, "seq": 128}``.
    input_shapes : mapping, optional
        Whole input shapes, e.g. ``{"x": (1, 3, 224, 224)}``.
    """
    return graph_of(path, dims, input_shapes).to_networkx()


def graph_of(path: Union[str, os.PathLike, onnx.ModelProto], dims: Optional[Mapping[str, int]] = None,
             input_shapes: Optional[Mapping[str, Any]] = None) -> Graph:
    """:func:`load_graph` without the conversion to networkx (what the analysis itself uses)."""
    loaded = load_model(path, dims, input_shapes)
    G = build_graph(loaded.proto.graph, path=loaded.path, opset=default_opset(loaded.proto))
    G.graph["loaded"] = loaded
    return G
