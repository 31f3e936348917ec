"""ModelProto -> a graph in networkx's layout: one graph node per ONNX node, edges for tensors.

The analysis builds a light :class:`onnxscore.digraph.Graph` (networkx costs a tenth of a
second to import); :func:`load_graph` hands users the same graph as a ``networkx.DiGraph``.

Node attributes: ``op_type``, ``domain``, ``attrs`` (plain Python values), ``inputs`` and
``outputs`` (tensor names, ``""`` for an absent optional input), ``input_shapes``,
``output_shapes``, ``input_dtypes``, ``output_dtypes``, ``subgraphs`` (attribute name ->
DiGraph of the same form), ``scope`` (the module path, see :func:`node_scope`) and ``index``
(position in the ONNX graph), ``branch`` (for an If whose condition is known: the branch
taken and why). After
:func:`onnxscore.analyze` the walker's results can be put on the nodes with
:func:`onnxscore.walk.annotate` (``macs``, ``flops``, ``params``, ``status``).

Edge attributes: ``name``, ``shape``, ``dtype`` of the first tensor between the two nodes and
``tensors``, the names of all of them. ``G.graph`` holds the tensor table (``tensors``: name ->
(shape, dtype)), the constants (``constants``: name -> :class:`ConstTensor`), the graph
``inputs`` and ``outputs``, ``producers`` (tensor -> node), ``values`` (small tensors whose
value is known), ``shapes`` (the :class:`~onnxscore.shapes.Shapes` the graph was built from:
where unknown shapes were lost) and ``order`` (the nodes in an order that respects every edge).
"""
from __future__ import annotations

import ast
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import onnx
from onnx import AttributeProto, GraphProto, helper

from onnxscore.digraph import Graph, topological_order
from onnxscore.errors import GraphError
from onnxscore.model import load_model
from onnxscore.shapes import Shapes, infer_graph
from onnxscore.shapes.constants import FLOAT_TYPES, ConstTensor

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
    props = node.metadata_props
    for prop in props if props else ():  # (an empty repeated field is slow to iterate)
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
_PARAMETER_WORDS = frozenset({"weight", "bias", "w", "b", "kernel", "gamma", "beta", "scale"})


def _scope_of_weight(name: str) -> Tuple[str, ...]:
    """The module path a weight's name spells:
    ``layers.0.attn.qkv.weight`` -> (layers, layers.0, attn, qkv);
    Caffe2's ``gpu_0/res2_0_branch2a_w_0`` -> (res2, res2_0, res2_0_branch2a);
    ``inception_3a/1x1_w_0`` -> (inception_3a, 1x1); a parameter's own name alone (``bias``,
    ``W``) spells no module: ()."""
    base = _DEVICE_PREFIX.sub("", name)
    if base.lower() in _PARAMETER_WORDS:
        return ()
    if "." in base and "/" not in base:
        parts = base.split(".")[:-1]  # the last part names the parameter: weight, bias, ...
        return torch_style(".".join(parts[: i + 1]) for i in range(len(parts)))
    base = _WEIGHT_SUFFIX.sub("", base)
    if "/" in base:
        return tuple(p for p in base.split("/") if p)
    parts = [p for p in base.split("_") if p]
    return tuple("_".join(parts[: i + 1]) for i in range(len(parts)))


# Ops that only re-type or re-arrange what they read: a weight reached through them is still the
# one weight it was, counted once at the node that finally uses it; an input reached through
# them is still that input.
TRANSPARENT = frozenset({"Cast", "CastLike", "Transpose", "Reshape", "Squeeze", "Unsqueeze",
                         "Identity", "Flatten", "DequantizeLinear", "Dropout"})


def weight_like(c: ConstTensor, dtype: int = 0) -> bool:
    """Floating point (as ``dtype`` when the consumer sees a cast of it) and not a scalar: a
    weight rather than a shape, an index or a constant such as 0.5. A one-element initializer
    named as a module's parameter (``stem.lab.scale``: timm's LearnableAffineBlock; a
    ``head.bias`` of one output) is learned: exporters name their constants otherwise
    (``onnx::Mul_12``, ``val_71``, ``/Constant_output_0``)."""
    if (dtype or c.dtype) not in FLOAT_TYPES:
        return False
    if c.numel is None or c.numel > 1:
        return True
    return c.numel == 1 and c.source == "initializer" and _parameter_name(c.name)


def module_tensor_name(name: str) -> bool:
    """``a.b.gain``: a tensor named by a dotted module path, as exporters name a module's
    parameters and buffers (not ``onnx::Mul_3`` nor ``/a/b/Constant_output_0``)."""
    module, dot, last = name.rpartition(".")
    return bool(dot and module and last and not module.startswith(("onnx::", "/")))


def _parameter_name(name: str) -> bool:
    """``a.b.weight``: a dotted module path whose last part names a parameter."""
    return module_tensor_name(name) and name.rpartition(".")[2].lower() in _PARAMETER_WORDS


def _scopes_from_weight_names(G: Graph, consts: Mapping[str, ConstTensor]) -> None:
    """Flat node names (``n0``, ``n1``): scope each node that reads a weight (or makes one, as a
    Constant or ConstantOfShape does) by that weight's name."""
    known: Dict[str, Tuple[str, ...]] = {}  # constant -> its scope, () when not a weight
    modules: Dict[str, Tuple[str, ...]] = {}  # torch-style module path -> its scope

    def scope_of(names: Sequence[str]) -> Tuple[str, ...]:
        for n in names:
            scope = known.get(n)
            if scope is None:
                c = consts.get(n)
                if c is None:  # an activation
                    continue
                if not weight_like(c):
                    scope = known[n] = ()
                else:  # a module's weights share its path (``fc.weight``, ``fc.bias``)
                    module = n.rpartition(".")[0] if "/" not in n else ""
                    scope = modules.get(module) if module else None
                    if scope is None:
                        scope = _scope_of_weight(n)
                        if module:
                            modules[module] = scope
                    known[n] = scope
            if scope:
                return scope
        return ()

    for _, nd in G.nodes(data=True):
        scope = scope_of(nd["inputs"]) or scope_of(nd["outputs"])
        if scope:
            nd["scope"] = scope


def _inherit_scopes(G: Graph, producers: Mapping[str, str]) -> None:
    """Give an unscoped node (an activation, a Q/DQ pair a quantizer inserted, a Flatten) the
    scope of the node that produced its first input, else of its first consumer."""
    order = G.graph["order"]
    nodes = G.nodes
    for key in order:
        nd = nodes[key]
        if not nd["scope"] and nd["inputs"]:
            source = producers.get(nd["inputs"][0])
            if source is not None and source in nodes and nodes[source]["scope"]:
                nd["scope"] = nodes[source]["scope"]
    for key in reversed(order):
        nd = nodes[key]
        if not nd["scope"]:
            users = G._succ[key] if isinstance(G, Graph) else G.succ[key]
            if users:
                first = min(users, key=lambda k: nodes[k]["index"])
                if nodes[first]["scope"]:
                    nd["scope"] = nodes[first]["scope"]


def _attr_value(a: AttributeProto) -> Any:
    if a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
        return None  # kept as DiGraphs in ``subgraphs``
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [x.decode("utf-8", "replace") for x in v]
    return v


_INT, _INTS, _FLOAT, _GRAPH, _GRAPHS = (AttributeProto.INT, AttributeProto.INTS, AttributeProto.FLOAT,
                                       AttributeProto.GRAPH, AttributeProto.GRAPHS)


def _attrs(attributes) -> Dict[str, Any]:
    """A node's non-graph attributes as plain Python values (ints and int lists, the most
    common, read directly)."""
    out: Dict[str, Any] = {}
    for a in attributes:
        kind = a.type
        if kind == _INT:
            out[a.name] = a.i
        elif kind == _INTS:
            out[a.name] = list(a.ints)
        elif kind == _FLOAT:
            out[a.name] = a.f
        elif kind != _GRAPH and kind != _GRAPHS:
            out[a.name] = _attr_value(a)
    return out


def build_graph(graph: GraphProto, shapes: Shapes, early: Optional[Graph] = None) -> Graph:
    """One ONNX graph (or subgraph) as a graph of the networkx layout (a light
    :class:`~onnxscore.digraph.Graph`), from what the shapes stage found (:func:`infer_graph`).
    ``early`` is this graph's :func:`structure`, made while ONNX's inference ran (used when it
    was made from the same node pass as ``shapes``); else it is made here. At 200,000 nodes
    every step per node counts."""
    ops, shapes.ops = shapes.ops, None  # read by the shapes stage; let go once used
    if early is not None and early.graph.pop("keys", None) is shapes.keys:
        G = early
    else:
        if ops is None or len(ops) != len(shapes.keys):
            ops = [(node.op_type, tuple(node.input), tuple(node.output), True) for node in graph.node]
        G = _structure(graph, shapes.keys, ops, shapes.constants, shapes.producers, shapes.path,
                       shapes.opsets.get("", 0), shapes)
        del G.graph["keys"]
    _put_shapes(G, shapes)
    initializers = [t.name for t in graph.initializer]
    init_names = set(initializers)
    G.graph.update(tensors=shapes.tensors, constants=shapes.constants, producers=shapes.producers,
                   shapes=shapes, values=shapes.values,
                   inputs=[vi.name for vi in graph.input if vi.name not in init_names],
                   outputs=[vi.name for vi in graph.output], initializers=initializers)
    return G


def structure(facts, path: str, opset: int) -> Optional[Graph]:
    """What :func:`build_graph` makes before any shape is known (nodes, attributes, edges,
    order, scopes), from the :class:`~onnxscore.shapes.engine.GraphFacts` of a graph with no
    subgraph: made while ONNX's inference runs in its child. None when it cannot be made
    early: a ConstantOfShape makes a weight whose name may scope a node, known only later."""
    if facts.fills or facts.ops is None or any(op[3] for op in facts.ops):
        return None
    consts = {c.name: c for c in facts.initializers}
    consts.update((c.name, c) for c in facts.constants)
    return _structure(facts.graph, facts.keys, facts.ops, consts, facts.producers, path, opset)


def _structure(graph: GraphProto, keys: List[str], ops, consts: Mapping[str, ConstTensor],
               producers: Mapping[str, str], path: str, opset: int,
               shapes: Optional[Shapes] = None) -> Graph:
    """Nodes (without shapes), edges, the order and scopes, in one pass over the nodes;
    subgraphs are built from ``shapes``."""
    G = Graph(path=path, opset=opset)
    node_data, succ, pred = G._node, G._succ, G._pred
    index = {}
    in_order = True
    scoped = False
    for i, (key, node, (op_type, ins, outs, has_graph)) in enumerate(zip(keys, graph.node, ops)):
        attributes = node.attribute
        subgraphs = {}
        if has_graph and attributes:
            for a in attributes:
                if a.type == _GRAPH:
                    subgraphs[a.name] = build_graph(a.g, shapes.subgraphs[(i, a.name)])
                elif a.type == _GRAPHS:
                    for j, g in enumerate(a.graphs):
                        subgraphs[f"{a.name}[{j}]"] = build_graph(g, shapes.subgraphs[(i, f"{a.name}[{j}]")])
        inputs = list(ins)
        scope = node_scope(node, consts)
        scoped = scoped or bool(scope)
        node_data[key] = {
            "op_type": op_type, "domain": node.domain, "index": i, "scope": scope,
            "attrs": _attrs(attributes) if attributes else {}, "inputs": inputs, "outputs": list(outs),
            "subgraphs": subgraphs}
        succ.setdefault(key, {})
        here = pred.setdefault(key, {})
        for name in inputs:
            src = producers.get(name) if name else None
            if src is None:
                continue
            edge = here.get(src)
            if edge is not None:
                edge["tensors"].append(name)
                continue
            if src not in index:  # made by this node or a later one: the file's order is not one
                in_order = False
                if src not in succ:
                    node_data[src], succ[src], pred[src] = {}, {}, {}
            succ[src][key] = here[src] = {"name": name, "tensors": [name]}
        index[key] = i
    G.graph["order"] = list(keys) if in_order else execution_order(G, keys, path)
    G.graph["keys"] = keys  # which node pass this is (see build_graph)
    if not scoped:
        _scopes_from_weight_names(G, consts)
        scoped = any(d["scope"] for d in node_data.values())
    if scoped:
        _inherit_scopes(G, producers)
    return G


def _put_shapes(G: Graph, shapes: Shapes) -> None:
    """The shapes and dtypes of every node's inputs and outputs and of every edge's tensor,
    and the If branches the shapes stage decided."""
    tensors, branches = shapes.tensors, shapes.branches
    unknown = (None, 0)
    for nd in G._node.values():
        for names, shapes_key, dtypes_key in ((nd["inputs"], "input_shapes", "input_dtypes"),
                                              (nd["outputs"], "output_shapes", "output_dtypes")):
            if len(names) == 1:  # most tensors lists: one name
                shape, dtype = tensors.get(names[0], unknown) if names[0] else unknown
                nd[shapes_key], nd[dtypes_key] = [shape], [dtype]
            else:
                info = [tensors.get(n, unknown) if n else unknown for n in names]
                nd[shapes_key], nd[dtypes_key] = [x[0] for x in info], [x[1] for x in info]
        nd["branch"] = branches.get(nd["index"]) if branches else None
    for edges in G._pred.values():
        for edge in edges.values():
            edge["shape"], edge["dtype"] = tensors.get(edge["name"], unknown)


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
    H.graph = {k: v for k, v in G.graph.items() if k not in ("sizes", "tables")}  # shape-dependent caches
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
               input_shapes: Optional[Mapping[str, Any]] = None,
               values: Optional[Mapping[str, Any]] = None):
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
    values : mapping, optional
        Values of small inputs (a scalar or a list), e.g. ``{"sr": 16000}``: shape
        computations and If conditions that depend on them are then evaluated.
    """
    return graph_of(path, dims, input_shapes, values).to_networkx()


def graph_of(path: Union[str, os.PathLike, onnx.ModelProto], dims: Optional[Mapping[str, int]] = None,
             input_shapes: Optional[Mapping[str, Any]] = None,
             values: Optional[Mapping[str, Any]] = None) -> Graph:
    """:func:`load_graph` without the conversion to networkx (what the analysis itself uses)."""
    loaded = load_model(path, dims, input_shapes, values, early=structure, read_types=True)
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in loaded.proto.opset_import}
    shapes = infer_graph(loaded.proto.graph, opsets, loaded.path, dims=loaded.dims,
                         input_values=loaded.values, facts=loaded.facts, types=loaded.types)
    G = build_graph(loaded.proto.graph, shapes, loaded.early)
    loaded.early = None
    loaded.warnings.extend(f"--dim {n} does not name a dimension of this model"
                           for n in loaded.unused_dims if n not in shapes.data_dims)
    G.graph["loaded"] = loaded
    return G
