"""The shapes stage: every tensor's shape and dtype, and the value of every small tensor.

ONNX's shape inference runs once over the whole model first (in :mod:`onnxscore.model`).
It loses a shape wherever the graph computes one at run time (a Reshape target made of
``Shape -> Gather -> Div``, Resize sizes, Pad amounts, an If on a computed condition).
:func:`infer_graph` then walks the nodes once, in order, and for each node:

1. **evaluates** it when every input has a known value (shape arithmetic, indices, scales,
   constants, values given with ``--value``), with ONNX's reference implementation, bounded
   so that only small tensors are ever made (:mod:`onnxscore.shapes.evaluate`);
2. applies onnxscore's own **rules** (:mod:`onnxscore.shapes.rules`, ``.contrib``), which
   carry symbolic dims as exact polynomials and name the sizes only data can decide
   (``nonzero@<node>``, ``nms@<node>``: set them with ``--dim``);
3. asks ONNX's **per-node inference** for whatever is still unknown, handing it the input
   values found so far.

A dimension ONNX knew is never changed. What stays unknown is recorded with where it was
lost (:class:`Lost`): the first node whose output shape could not be derived, and why.
"""
from __future__ import annotations

from collections import ChainMap
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, MutableMapping, Optional, Sequence, Tuple

import numpy as np
from onnx import AttributeProto, GraphProto, NodeProto, TensorProto, helper

from onnxscore.errors import GraphError
from onnxscore.model import collector_paused, shape_of
from onnxscore.shapes import contrib, rules, sequences  # noqa: F401  (they register their rules)
from onnxscore.shapes.constants import (ConstTensor, constant_node_tensor, constant_of_shape,
                                        tensor_const, undecoded)
from onnxscore.shapes.dims import CONTRIB_RULES, DEFAULT_RULES, ML_RULES, Shape, is_unknown, merge
from onnxscore.shapes.evaluate import (BOUNDED, FILL_LIMIT, VALUE_LIMIT, evaluate, infer_node,
                                       numel, tensor_dtype)

MS = "com.microsoft"
ML = "ai.onnx.ml"
_GRAPH_ATTRS = (AttributeProto.GRAPH, AttributeProto.GRAPHS)
_NOT_PLAIN = (AttributeProto.GRAPH, AttributeProto.GRAPHS, AttributeProto.SPARSE_TENSORS)

# Inputs whose *value* (not only shape) decides an op's output shape.
VALUE_INPUTS = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Slice": (1, 2, 3, 4), "Pad": (1, 2, 3),
    "Resize": (1, 2, 3), "Upsample": (1,), "ConstantOfShape": (0,), "Range": (0, 1, 2),
    "TopK": (1,), "Split": (1,), "OneHot": (1,), "Squeeze": (1,), "Unsqueeze": (1,),
    "ReduceSum": (1,), "ReduceMean": (1,), "ReduceMax": (1,), "ReduceMin": (1,),
    "ReduceProd": (1,), "CenterCropPad": (1,), "Col2Im": (1, 2), "If": (0,), "Loop": (0,),
}
# What a named data-dependent dim counts, by its prefix (see rules.py).
DATA_DIMS = {
    "nonzero": "elements NonZero finds", "nms": "boxes NonMaxSuppression keeps",
    "topk": "k of a TopK whose k is computed from data", "unique": "distinct values Unique finds",
    "compress": "elements Compress keeps", "range": "length of a Range over data values",
    "if": "size an If on data decides (its branches disagree)",
    "slice": "size a Slice keeps of a symbolic dim (the smaller of the dim and the bound)",
}


@dataclass(frozen=True)
class Lost:
    """Where a shape was lost: the first node whose output shape could not be derived."""

    node: str
    op: str
    why: str


@dataclass
class Shapes:
    """What the shapes stage knows of one graph (and, through ``outer``, the graphs around it).

    ``tensors``: name -> (shape, dtype); ``constants``: name -> :class:`ConstTensor`;
    ``values``: name -> small numpy array; ``symbols``: name -> the elements of a small
    integer tensor that hold symbolic dims; ``lost``: name -> (:class:`Lost`, the input it was
    lost through, or ""); ``branches``: node index -> (the If branch taken, why);
    ``subgraphs``: (node index, attribute name) -> the subgraph's Shapes; ``data_dims``: named
    data-dependent dims -> what they count; ``keys``: one unique key per node;
    ``producers``: tensor -> node key; ``sequences``: tensor sequence -> its elements' (shape,
    dtype) (:mod:`onnxscore.shapes.sequences`).
    """

    tensors: MutableMapping[str, Tuple[Shape, int]]
    constants: MutableMapping[str, ConstTensor]
    values: MutableMapping[str, np.ndarray]
    symbols: MutableMapping[str, tuple]
    lost: MutableMapping[str, Tuple[Lost, str]]
    data_dims: Dict[str, str]
    dims: Mapping[str, int]
    opsets: Mapping[str, int]
    path: str
    keys: List[str] = field(default_factory=list)
    producers: Dict[str, str] = field(default_factory=dict)
    branches: Dict[int, Tuple[str, str]] = field(default_factory=dict)
    subgraphs: Dict[Tuple[int, str], "Shapes"] = field(default_factory=dict)
    nodes: Dict[str, NodeProto] = field(default_factory=dict)  # key -> node
    corrected: set = field(default_factory=set)  # tensors whose ONNX shape was wrong, and after
    sequences: MutableMapping[str, tuple] = field(default_factory=dict)  # name -> its elements (sequences.py)
    unrolls: List[int] = field(default_factory=lambda: [sequences.MAX_UNROLLED])  # body runs left, shared
    # per node (op type, inputs, outputs, holds a graph) as GraphFacts read them, for the graph
    # builder, which lets them go
    ops: Optional[List[Tuple[str, Tuple[str, ...], Tuple[str, ...], bool]]] = None

    def origin(self, name: str) -> Optional[Lost]:
        entry = self.lost.get(name)
        return entry[0] if entry else None

    def chain(self, name: str) -> List[str]:
        """The tensors from ``name`` back to where its shape was lost."""
        out: List[str] = []
        while name and name in self.lost and name not in out:
            out.append(name)
            name = self.lost[name][1]
        return out


def node_keys(graph: GraphProto) -> List[str]:
    """A unique key per node: its name, or ``<op_type>_<index>`` when unnamed or repeated."""
    seen: set = set()
    return [_unique_key(node.name, node.op_type, i, seen) for i, node in enumerate(graph.node)]


def _unique_key(name: str, op_type: str, i: int, seen: set) -> str:
    key = name if name and name not in seen else f"{op_type}_{i}"
    while key in seen:
        key = f"{key}_{i}"
    seen.add(key)
    return key


def value_infos(graph: GraphProto) -> Dict[str, Tuple[Optional[Tuple], int]]:
    """The types the graph declares (inputs, value_info, outputs): name -> (shape, dtype); a
    known shape wins over an unknown one for a name given twice."""
    table: Dict[str, Tuple[Optional[Tuple], int]] = {}
    read: Dict[bytes, Tuple[Optional[Tuple], int]] = {}  # a type's bytes -> (shape, dtype)
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        t = vi.type
        key = t.SerializeToString()  # most tensors share their type with many others
        entry = read.get(key)
        if entry is None:
            dtype = t.tensor_type.elem_type if t.HasField("tensor_type") else 0
            entry = read[key] = (shape_of(t), dtype)
        name = vi.name
        old = table.get(name)
        if old is None or (old[0] is None and entry[0] is not None):
            table[name] = entry
    return table


@dataclass
class GraphFacts:
    """What the shapes stage reads of a graph before any shape is known: its initializers as
    constants, and per node its key, op type, inputs, outputs and whether it holds a graph;
    the producer of each tensor, the Constant nodes' constants, the ConstantOfShape nodes.
    At 200,000 nodes reading these costs as much as the rest of the stage, so
    :func:`onnxscore.model.load_model` reads them while ONNX's inference runs."""

    graph: GraphProto
    initializers: List[ConstTensor]
    init_names: set
    nodes: List[NodeProto]
    keys: List[str]
    # per node: op_type, inputs, outputs, holds a graph (None once infer_graph has read them)
    ops: Optional[List[Tuple[str, Tuple[str, ...], Tuple[str, ...], bool]]]
    producers: Dict[str, str]
    constants: List[ConstTensor]  # of Constant nodes, in node order
    fills: List[NodeProto]  # ConstantOfShape nodes


def graph_facts(graph: GraphProto, path: str = "<model>") -> GraphFacts:
    """Read :class:`GraphFacts` (a tensor produced twice is an error)."""
    initializers, init_names = [], set()
    for t in graph.initializer:
        name = t.name
        initializers.append(tensor_const(t, name))
        init_names.add(name)
    nodes, keys, seen, producers = list(graph.node), [], set(), {}
    ops: List[Tuple[str, Tuple[str, ...], Tuple[str, ...], bool]] = []
    constants, fills = [], []
    for i, node in enumerate(nodes):
        op, outputs = node.op_type, node.output
        outputs = (outputs[0],) if len(outputs) == 1 else tuple(outputs[:])  # faster than tuple()
        key = _unique_key(node.name, op, i, seen)
        keys.append(key)
        for out in outputs:
            if not out:
                continue
            if out in producers:
                raise GraphError(f"{path}: tensor {out!r} is produced by both {producers[out]!r} "
                                 f"and {key!r}")
            producers[out] = key
        inputs, attributes = node.input, node.attribute
        n_in = len(inputs)
        inputs = (inputs[0], inputs[1]) if n_in == 2 else (inputs[0],) if n_in == 1 else tuple(inputs[:])
        has_graph = False
        if attributes:
            for a in attributes:
                if a.type in _GRAPH_ATTRS:
                    has_graph = True
                    break
        ops.append((op, inputs, outputs, has_graph))
        if op == "Constant" and node.domain in ("", "ai.onnx"):
            c = constant_node_tensor(node)
            if c is not None:
                constants.append(c)
        elif op == "ConstantOfShape" and outputs and node.domain in ("", "ai.onnx"):
            fills.append(node)
    return GraphFacts(graph, initializers, init_names, nodes, keys, ops, producers, constants, fills)


@collector_paused()
def infer_graph(graph: GraphProto, opsets: Mapping[str, int], path: str = "<model>",
                outer: Optional[Shapes] = None, dims: Optional[Mapping[str, int]] = None,
                input_values: Optional[Mapping[str, np.ndarray]] = None,
                input_shapes: Sequence[Shape] = (), facts: Optional[GraphFacts] = None,
                types: Optional[Mapping[str, Tuple[Shape, int]]] = None,
                input_sequences: Optional[Mapping[str, tuple]] = None) -> Shapes:
    """The shapes, dtypes and small values of every tensor of ``graph`` (and its subgraphs).

    ``outer`` is the enclosing graph's result (for a subgraph); ``dims`` sets named dims,
    data-dependent ones included; ``input_values`` gives graph inputs a value (``--value``);
    ``input_shapes`` are a subgraph's formal inputs' shapes at its call site (a Loop body's
    carried state), which fill what the body declares unknown or symbolic; ``facts`` are the
    graph's :class:`GraphFacts` if already read (``LoadedModel.facts``: the graph unchanged
    since), for one call: their per-node part is let go once read. ``types``: the graph's
    :func:`value_infos` if already read (``LoadedModel.types``: its value_info then left out
    of ``graph``). ``input_sequences``: the elements of a subgraph's formal inputs that are
    sequences (a Loop body's carried sequence, one iteration at a time).
    """
    if facts is None or facts.graph is not graph or facts.ops is None:
        facts = graph_facts(graph, path)
    ops, facts.ops = facts.ops, None  # 300 bytes a node: held until the graph is built
    if outer is None:
        s = Shapes({}, {}, Values(), {}, {}, {}, dict(dims or {}), dict(opsets), path)
    else:
        s = Shapes(ChainMap({}, outer.tensors), ChainMap({}, outer.constants),
                   ChainMap(Values(), outer.values), ChainMap({}, outer.symbols), ChainMap({}, outer.lost),
                   outer.data_dims, outer.dims, outer.opsets, outer.path)
        s.corrected = outer.corrected
        s.sequences = ChainMap(dict(input_sequences or {}), outer.sequences)
        s.unrolls = outer.unrolls
    for c in facts.initializers:
        s.constants[c.name] = c
        s.tensors[c.name] = (c.shape, c.dtype)
    for k, v in (value_infos(graph) if types is None else types).items():
        if k not in s.tensors or v[0] is not None:
            s.tensors[k] = v
    for vi, actual in zip(graph.input, input_shapes):
        declared, dtype = s.tensors.get(vi.name, (None, 0))
        s.tensors[vi.name] = (merge(declared, actual), dtype)
    s.keys, s.producers, s.nodes = facts.keys, facts.producers, dict(zip(facts.keys, facts.nodes))
    for c in facts.constants:
        s.constants[c.name] = c
        if s.tensors.get(c.name, (None,))[0] is None:
            s.tensors[c.name] = (c.shape, c.dtype)
    local_values = _local(s.values)
    for name, c in s.constants.maps[0].items() if outer is not None else s.constants.items():
        if undecoded(c):  # made when first looked at: most are weights, never looked at
            local_values.lazy(name, c)
        elif c.value is not None:
            s.values[name] = c.value
    for name, value in (input_values or {}).items():  # typed and shaped by model.input_values
        s.values[name] = value
        s.tensors[name] = (tuple(value.shape), s.tensors.get(name, (None, 0))[1])
    for name in (vi.name for vi in graph.input if vi.name not in facts.init_names):
        _mark_unknown(s, name, None, "", f"graph input {name!r}")
    for i, (node, (op, ins, outs, has_graph)) in enumerate(zip(facts.nodes, ops)):
        if not _settled(s, op, ins, outs, has_graph):
            _visit(s, i, node)
    s.ops = ops
    for node in facts.fills:
        c = constant_of_shape(node, s.constants, s.tensors)
        if c is not None:
            s.constants[c.name] = c
    # ONNX's unk__N names never reach the user. Most tensors share their shape tuple (one per
    # type, see value_infos): one seen clean is not looked at again (by id: the table holds
    # it, so no other tuple takes its id meanwhile)
    local = s.tensors.maps[0] if outer is not None else s.tensors
    clean = set()
    for name, (shape, dtype) in local.items():
        if shape is None or id(shape) in clean:
            continue
        if any(isinstance(d, str) and d.startswith("unk__") for d in shape):
            local[name] = (tuple(None if is_unknown(d) else d for d in shape), dtype)
        else:
            clean.add(id(shape))
    return s


def _plain_attrs(node: NodeProto) -> dict:
    """A node's attributes as Python values; a tensor stored as external data is None (its
    bytes would be read from a file, which the analysis never does)."""
    return {a.name: None if a.type == AttributeProto.TENSOR and a.t.data_location == TensorProto.EXTERNAL
            else helper.get_attribute_value(a) for a in node.attribute if a.type not in _NOT_PLAIN}


def _as_tuple(value: Optional[np.ndarray]):
    """A small integer value as the tuple of ints the symbolic rules compute with."""
    if value is None or value.dtype.kind not in "iub" or value.ndim > 1 or value.size > VALUE_LIMIT:
        return None
    return tuple(int(v) for v in value.reshape(-1))


def _known_shape(shape) -> bool:
    if shape is None:
        return False
    for d in shape:
        if d is None or (d.__class__ is str and d.startswith("unk__")):
            return False
    return True


# Ops whose outputs hold values made from their inputs' shapes alone, and the sequence ops,
# whose outputs ONNX may type fully while it knows nothing of the elements: always visited.
_FROM_SHAPES = frozenset({"Shape", "Size"}) | sequences.OPS


# Ops whose first output has their first input's shape: where a file declares another shape
# for it (jax2onnx 0.17 declares a Relu's output in JAX's NHWC layout after the Conv that made
# its input NCHW), the op's own shape is taken, as onnxruntime does, and what follows redone.
_KEEPS_SHAPE = frozenset(rules.SAME_SHAPE) | {"Cast", "CastLike", "Identity"}


def _conflict(declared: Shape, derived: Shape) -> bool:
    """Two shapes of one tensor that cannot both hold: other ranks, or other numbers in a dim."""
    if declared is None or derived is None or declared is derived:
        return False
    return len(declared) != len(derived) or any(
        a != b and a.__class__ is int and b.__class__ is int for a, b in zip(declared, derived))


def _settled(s: Shapes, op_type: str, inputs: Sequence[str], outputs: Sequence[str], has_graph: bool) -> bool:
    """Nothing to add to a node (as :attr:`GraphFacts.ops` describes it): ONNX knows every
    output's shape and dtype, and some input carries no value and no symbols, so no output can
    have a value either (most nodes of a large model: activations in, activations out; a
    Reshape of an activation by a constant shape). Not settled: an op of :data:`_KEEPS_SHAPE`
    whose output is declared with a shape its input's contradicts."""
    if op_type in _FROM_SHAPES or op_type in rules.CEIL_POOLS or s.corrected or has_graph:
        return False
    tensors = s.tensors
    for n in outputs:
        if n:
            shape, dtype = tensors.get(n, _UNKNOWN)
            if not dtype or not _known_shape(shape):
                return False
    if op_type in _KEEPS_SHAPE and inputs and inputs[0] and outputs[0] and \
            _conflict(tensors[outputs[0]][0], tensors.get(inputs[0], _UNKNOWN)[0]):
        return False
    symbols, values = s.symbols, s.values
    for n in inputs:
        if n and n not in symbols and not _available(values, n):
            return True
    return False


_UNKNOWN = (None, 0)


def _visit(s: Shapes, i: int, node: NodeProto) -> None:
    """Shapes, dtypes and values of one node's outputs (a node :func:`_settled` does not skip)."""
    default = node.domain in ("", "ai.onnx")
    ins = list(node.input)
    info = [s.tensors.get(n, (None, 0)) if n else (None, 0) for n in ins]
    shapes, dtypes = [x[0] for x in info], [x[1] for x in info]
    # values made so far, and those that decide this op's output shape (made now if deferred)
    deciding = VALUE_INPUTS.get(node.op_type, ()) if default else ()
    cvals = [s.values.get(n) if n and k in deciding else _look(s.values, n) for k, n in enumerate(ins)]
    n_out = len(node.output)
    if s.corrected and any(n in s.corrected for n in ins):  # ONNX inferred these from a wrong shape
        for name in node.output:
            if name:
                s.tensors[name] = (None, s.tensors.get(name, (None, 0))[1])
                s.corrected.add(name)
    ours: List[Shape] = [None] * n_out
    our_dtypes = [0] * n_out
    out_vals: List[Optional[np.ndarray]] = [None] * n_out
    out_syms: List[Optional[tuple]] = [None] * n_out

    if any(a.type in _GRAPH_ATTRS for a in node.attribute):
        _visit_subgraphs(s, i, node, ours, our_dtypes, out_vals)
    if default and n_out and (node.op_type in sequences.OPS or node.op_type == "Identity" and ins and
                              ins[0] in s.sequences):
        _sequence(s, node, ours, our_dtypes, out_vals)
    _apply_rule(s, node, shapes, dtypes, cvals, ours, our_dtypes, out_vals, out_syms)
    if not all(_known_shape(merge(s.tensors.get(n, (None, 0))[0], x)) for n, x in zip(node.output, ours) if n) \
            and any(n and cvals[k] is None and _available(s.values, n) for k, n in enumerate(ins)):
        cvals = [s.values.get(n) if n else None for n in ins]  # the rule needs them: make them
        _apply_rule(s, node, shapes, dtypes, cvals, ours, our_dtypes, out_vals, out_syms)
    if default and node.op_type in rules.CEIL_POOLS and any(a.name == "ceil_mode" and a.i for a in node.attribute):
        for name, shape in zip(node.output, ours):  # ONNX's own number is off here (rules.py)
            if name and shape is not None and all(isinstance(d, int) for d in shape) and \
                    s.tensors.get(name, (None, 0))[0] != shape:
                s.tensors[name] = (shape, s.tensors.get(name, (None, 0))[1])
                s.corrected.add(name)
    if default and node.op_type in _KEEPS_SHAPE and node.output and node.output[0] and \
            _conflict(s.tensors.get(node.output[0], _UNKNOWN)[0], ours[0]):
        s.tensors[node.output[0]] = (ours[0], s.tensors[node.output[0]][1])  # the op's, not the file's
        s.corrected.add(node.output[0])
    _store_shapes(s, node, ours, our_dtypes)

    if not all(_known_shape(s.tensors[n][0]) and s.tensors[n][1] for n in node.output if n):
        cvals = [s.values.get(n) if n else None for n in ins]
        inferred = infer_node(node, shapes, dtypes, cvals, s.opsets)
        if inferred is not None:
            _store_shapes(s, node, [x[0] for x in inferred], [x[1] for x in inferred])

    outputs_valued = all(v is not None or sym is not None and all(isinstance(x, int) for x in sym)
                         for v, sym in zip(out_vals, out_syms))
    present = [n for n in ins if n]
    if default and present and not outputs_valued and all(_available(s.values, n) for n in present):
        decided = all(_known_shape(s.tensors[n][0]) and not _data_dims(s.tensors[n][0])
                      for n in node.output if n)
        if decided:  # made only if something asks for it (a value is rarely needed)
            _local(s.values).defer([n for n in node.output if n], lambda: _evaluate_now(s, node))
        else:  # the shape itself needs the value (NonZero of known data, a computed size)
            _evaluate_now(s, node)
            out_vals = [_look(s.values, n) for n in node.output]

    for j, name in enumerate(node.output):
        if not name:
            continue
        shape, dtype = s.tensors[name]
        if out_vals[j] is not None:
            s.values[name] = out_vals[j]
        elif out_syms[j] is not None:
            _store_symbols(s, name, out_syms[j], shape, dtype)
        if not _known_shape(shape):
            _mark_unknown(s, name, node, s.keys[i] if i < len(s.keys) else node.name, _why(s, node, cvals))


class Values(MutableMapping):
    """Small tensors' values: made ones, and deferred ones that are made (by running their
    node) the first time something asks for them. Most computed values are never needed: a
    Range of positions only has to have a shape. ``peek`` looks without making.

    Small inline constants are held undecoded (``lazy``) and count as made: anything that
    looks at one, ``available`` and ``look`` included, decodes it first (a malformed one then
    has no value); only ``peek`` passes them by (the walker's look at every input)."""

    def __init__(self) -> None:
        self._made: Dict[str, np.ndarray] = {}
        self._deferred: Dict[str, Tuple[Callable[[], None], List[str]]] = {}  # name -> (make, all its names)
        self._lazy: Dict[str, ConstTensor] = {}  # name -> its constant, value not read yet

    def defer(self, names: Sequence[str], make: Callable[[], None]) -> None:
        group = list(names)
        for name in group:
            self._deferred[name] = (make, group)

    def lazy(self, name: str, constant: ConstTensor) -> None:
        self._lazy[name] = constant

    def peek(self, name: str) -> Optional[np.ndarray]:
        return self._made.get(name)

    def look(self, name: str) -> Optional[np.ndarray]:
        """``peek``, a constant's value decoded if need be."""
        if name in self._lazy:
            self._read(name)
        return self._made.get(name)

    def available(self, name: str) -> bool:
        if name in self._lazy:
            self._read(name)
        return name in self._made or name in self._deferred

    def _read(self, name: str) -> None:
        value = self._lazy.pop(name).value
        if value is not None:
            self._made[name] = value

    def _read_all(self) -> None:
        for name in list(self._lazy):
            self._read(name)

    def _make(self, name: str) -> None:
        entry = self._deferred.get(name)
        if entry is not None:
            make, group = entry
            for other in group:  # one run makes all the node's outputs, or none of them
                self._deferred.pop(other, None)
            make()

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._made:
            if name in self._lazy:
                self._read(name)
            if name not in self._made:
                self._make(name)
        return self._made[name]

    def __contains__(self, name) -> bool:
        if name not in self._made:
            if name in self._lazy:
                self._read(name)
            if name not in self._made:
                self._make(name)
        return name in self._made

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        self._deferred.pop(name, None)
        self._lazy.pop(name, None)
        self._made[name] = value

    def __delitem__(self, name: str) -> None:
        self._made.pop(name, None)
        self._deferred.pop(name, None)
        self._lazy.pop(name, None)

    def __iter__(self):
        self._read_all()
        return iter(self._made)

    def __len__(self) -> int:
        self._read_all()
        return len(self._made)


def _local(values) -> Values:
    return values.maps[0] if isinstance(values, ChainMap) else values


def _available(values, name: str) -> bool:
    if isinstance(values, Values):
        return values.available(name)
    return any(m.available(name) if isinstance(m, Values) else name in m for m in values.maps)


def peek(values, name: str) -> Optional[np.ndarray]:
    """A value already made, without making one that is deferred, nor decoding a small
    constant (``values.get`` does both)."""
    return _find(values, name, Values.peek)


def _look(values, name: str) -> Optional[np.ndarray]:
    """:func:`peek` for the engine, to which a small constant's value counts as made."""
    return _find(values, name, Values.look)


def _find(values, name: str, how: Callable[[Values, str], Optional[np.ndarray]]) -> Optional[np.ndarray]:
    """``how`` (:meth:`Values.peek` or :meth:`Values.look`) over ``values`` and, for a
    subgraph, the values of the graphs around it."""
    if not name:
        return None
    if isinstance(values, Values):
        return how(values, name)
    maps = values.maps if isinstance(values, ChainMap) else [values]
    for m in maps:
        v = how(m, name) if isinstance(m, Values) else m.get(name)
        if v is not None:
            return v
    return None


def _data_dims(shape: Shape) -> bool:
    return any(isinstance(d, str) and "@" in d for d in shape or ())


def _apply_rule(s: Shapes, node: NodeProto, shapes, dtypes, cvals, ours, our_dtypes, out_vals,
                out_syms) -> None:
    """onnxscore's own shape rule for the node, if it has one, into ``ours``."""
    default = node.domain in ("", "ai.onnx")
    fn = (DEFAULT_RULES.get(node.op_type) if default else
          CONTRIB_RULES.get(node.op_type) if node.domain == MS else
          ML_RULES.get(node.op_type) if node.domain == ML else None)
    if default and node.op_type == "SimplifiedLayerNormalization":  # onnxruntime's, in ""
        fn = DEFAULT_RULES.get("LayerNormalization")
    if fn is None or all(v is not None for v in out_vals):
        return
    n_out = len(node.output)
    tuples = [_as_tuple(v) if v is not None else s.symbols.get(n) if n else None
              for n, v in zip(node.input, cvals)]
    try:
        result = fn(node, shapes, tuples, _plain_attrs(node))
    except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError, ArithmeticError):
        return  # a malformed node
    r_shapes, r_values = result[0], result[1]
    r_dtypes = list(result[2]) if len(result) > 2 else [0] * n_out  # a rule may give dtypes
    for j, (shape, value) in enumerate(zip(r_shapes[:n_out], r_values[:n_out])):
        if out_vals[j] is None:
            ours[j] = merge(ours[j], shape)
            out_syms[j] = value if value is not None else out_syms[j]
        if j < len(r_dtypes) and r_dtypes[j]:
            our_dtypes[j] = r_dtypes[j]
    if node.domain == MS:  # quantized outputs take their input's type; others compute in
        our_dtypes[:] = [d or t for d, t in zip(our_dtypes, contrib.input_dtypes(node, dtypes))]
        f = next((d for d in dtypes if d in contrib.FLOATS), dtypes[0] if dtypes else 0)
        our_dtypes[:] = [d or f for d in our_dtypes]  # the type of their first float input
    elif node.op_type in rules.SAME_SHAPE:
        our_dtypes[:] = [d or (TensorProto.BOOL if (node.op_type, j) == ("Dropout", 1) else
                               (dtypes[0] if dtypes else 0)) for j, d in enumerate(our_dtypes)]


def _store_shapes(s: Shapes, node: NodeProto, shapes: Sequence[Shape], dtypes: Sequence[int]) -> None:
    """Fill what is unknown of each output's shape (a dim ONNX knew stays) and its dtype."""
    for j, name in enumerate(node.output):
        if name and j < len(shapes):
            old_shape, old_dtype = s.tensors.get(name, (None, 0))
            s.tensors[name] = (_bind(s, merge(old_shape, shapes[j])), old_dtype or dtypes[j])


def _bind(s: Shapes, shape: Shape) -> Shape:
    """Named dims the user set (``--dim``), data-dependent ones included, become numbers; the
    data-dependent names met are recorded."""
    if shape is None:
        return shape
    for d in shape:
        if isinstance(d, str) and "@" in d and d not in s.data_dims:
            s.data_dims[d] = DATA_DIMS.get(d.split("@", 1)[0], "a size decided by data")
    if not s.dims:
        return shape
    return tuple(s.dims.get(d, d) if isinstance(d, str) else d for d in shape)


def _store_symbols(s: Shapes, name: str, value: tuple, shape: Shape, dtype: int) -> None:
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        np_dtype = helper.tensor_dtype_to_np_dtype(dtype) if dtype else np.int64
        try:
            arr = np.asarray(value, dtype=np_dtype)
        except (TypeError, ValueError, OverflowError):
            return
        if shape is None or not all(isinstance(d, int) for d in shape) or numel(shape) != arr.size:
            return  # a value must have its tensor's shape (a Reshape's elements are not its shape)
        s.values[name] = arr.reshape(shape)
    elif any(v is not None for v in value):
        s.symbols[name] = value


def _evaluate_now(s: Shapes, node: NodeProto) -> None:
    """Run the node on its inputs' values (made now if deferred) when its outputs are small
    enough, and keep the values and the shapes they have."""
    cvals = [s.values.get(n) if n else None for n in node.input]
    if any(v is None for n, v in zip(node.input, cvals) if n):
        return
    sizes = [numel(s.tensors.get(n, (None,))[0]) for n in node.output if n]
    limit = FILL_LIMIT if node.op_type == "ConstantOfShape" else VALUE_LIMIT
    if any(n is not None and n > limit for n in sizes):
        return  # a weight-sized or activation-sized output: its shape is all we keep
    if any(n is None for n in sizes) and node.op_type not in BOUNDED:
        return  # it could be large, and nothing says it is not
    outs = evaluate(node, cvals, s.opsets)
    for name, value in zip(node.output, outs or ()):
        if not name or value is None:
            continue
        s.values[name] = value
        old_shape, dtype = s.tensors.get(name, (None, 0))
        s.tensors[name] = (merge(old_shape, tuple(int(d) for d in value.shape)),
                           dtype or tensor_dtype(value.dtype))


def _sequence(s: Shapes, node: NodeProto, ours, our_dtypes, out_vals) -> None:
    """A sequence op's output: a sequence's elements into ``s.sequences``, or the tensor it
    takes out of one (SequenceAt, SequenceLength, ConcatFromSequence) into ``ours``."""
    ins = list(node.input)
    values = [s.values.get(n) if n else None for n in ins]
    made, tensor = sequences.sequence_op(node.op_type, ins, values, s.tensors, s.sequences, _plain_attrs(node))
    if made is not None:
        s.sequences[node.output[0]] = made
    elif tensor is not None:
        ours[0], our_dtypes[0], out_vals[0] = tensor


def _visit_subgraphs(s: Shapes, i: int, node: NodeProto, ours, our_dtypes, out_vals) -> None:
    """Infer each subgraph in the scope it runs in; an If whose condition is known takes its
    branch: its outputs are that branch's, and the walker costs only it."""
    for a in node.attribute:
        graphs = [(a.name, a.g)] if a.type == AttributeProto.GRAPH else \
            [(f"{a.name}[{j}]", g) for j, g in enumerate(a.graphs)] if a.type == AttributeProto.GRAPHS else []
        for attr, g in graphs:
            formal = _formal_shapes(s, node, attr)
            s.subgraphs[(i, attr)] = infer_graph(g, s.opsets, s.path, outer=s, input_shapes=formal)
    if node.domain not in ("", "ai.onnx") or not node.input:
        return
    if node.op_type == "Loop":
        _loop_outputs(s, i, node, ours, our_dtypes)
        _loop_sequences(s, node)
    if node.op_type != "If":
        return
    cond = s.values.get(node.input[0])
    if cond is None or cond.size != 1:
        _either_branch(s, i, node, ours, our_dtypes)
        return
    taken = "then_branch" if bool(cond.reshape(-1)[0]) else "else_branch"
    s.branches[i] = (taken, f"condition {node.input[0]!r} is {bool(cond.reshape(-1)[0])}")
    branch = s.subgraphs.get((i, taken))
    g = next((a.g for a in node.attribute if a.name == taken), None)
    if branch is None or g is None:
        return
    for j, out in enumerate(g.output[:len(ours)]):
        shape, dtype = branch.tensors.get(out.name, (None, 0))
        ours[j], our_dtypes[j] = shape, dtype
        out_vals[j] = branch.values.get(out.name)


def _either_branch(s: Shapes, i: int, node: NodeProto, ours, our_dtypes) -> None:
    """An If whose condition only data decides (``if boxes.numel() == 0: return empty``): each
    output dim both branches agree on is kept; one they disagree on is named ``if@<node>``, a
    size data decides, settable with ``--dim`` like the others."""
    branches = []
    for attr in ("then_branch", "else_branch"):
        g = next((a.g for a in node.attribute if a.name == attr), None)
        sub = s.subgraphs.get((i, attr))
        if g is None or sub is None:
            return
        branches.append([sub.tensors.get(o.name, (None, 0)) for o in g.output])
    names = iter([f"if@{node.name or node.output[0]}"] +
                 [f"if@{node.name or node.output[0]}#{k}" for k in range(2, 64)])
    for j, ((a, da), (b, db)) in enumerate(zip(*branches)):
        if j >= len(ours) or a is None or b is None or len(a) != len(b):
            continue
        merged = []
        for x, y in zip(a, b):
            if x == y and not is_unknown(x):
                merged.append(x)
            else:
                merged.append(next(names, None))
        ours[j], our_dtypes[j] = tuple(merged), da or db


def _formal_shapes(s: Shapes, node: NodeProto, attr: str) -> List[Shape]:
    """What a Loop or Scan body's inputs are at this call: Loop (iteration number, condition,
    carried state...); Scan (state..., one slice of each scanned input)."""
    def shape(name):
        return s.tensors.get(name, (None, 0))[0] if name else None

    if node.domain not in ("", "ai.onnx") or attr != "body":
        return []
    if node.op_type == "Loop":
        return [(), ()] + [shape(n) for n in node.input[2:]]
    if node.op_type == "Scan":
        attrs = _plain_attrs(node)
        n_scan = int(attrs.get("num_scan_inputs", 1))
        first = len(node.input) - n_scan
        axes = attrs.get("scan_input_axes") or [0] * n_scan
        out = [shape(n) for n in node.input[:first]]
        for name, axis in zip(node.input[first:], axes):
            x = shape(name)
            out.append(None if x is None else tuple(d for k, d in enumerate(x) if k != axis % len(x)))
        return out
    return []


def _loop_outputs(s: Shapes, i: int, node: NodeProto, ours, our_dtypes) -> None:
    """A Loop's final carried values are shaped as the body leaves them; each scan output
    stacks one body output per iteration: [trip count, ...] when the count is known."""
    body = s.subgraphs.get((i, "body"))
    g = next((a.g for a in node.attribute if a.name == "body"), None)
    if body is None or g is None:
        return
    carried = len(node.input) - 2
    trips = s.values.get(node.input[0]) if node.input[0] else None
    count = int(trips.reshape(-1)[0]) if trips is not None and trips.size == 1 else None
    for j, out in enumerate(g.output[1:len(ours) + 1]):
        shape, dtype = body.tensors.get(out.name, (None, 0))
        if j >= carried:
            shape = None if shape is None or count is None else (count,) + tuple(shape)
        ours[j], our_dtypes[j] = shape, dtype


def _loop_sequences(s: Shapes, node: NodeProto) -> None:
    """The sequences a Loop carries, when it carries any and its trip count is known and at
    most :data:`~onnxscore.shapes.sequences.MAX_UNROLL`: its body is run once per iteration,
    its iteration number a value, each carried sequence as the previous iteration left it. All
    the Loops of a model, nested ones included, run their bodies at most
    :data:`~onnxscore.shapes.sequences.MAX_UNROLLED` times in all."""
    g = next((a.g for a in node.attribute if a.name == "body"), None)
    carried = [s.sequences.get(n) if n else None for n in node.input[2:]]
    trips = s.values.get(node.input[0]) if node.input and node.input[0] else None
    count = int(trips.reshape(-1)[0]) if trips is not None and trips.size == 1 else -1
    # (Loops nested in Loops share s.unrolls: a bounded number of body runs in all)
    if g is None or all(c is None for c in carried) or not 0 <= count <= min(sequences.MAX_UNROLL, s.unrolls[0]) \
            or len(g.input) != len(carried) + 2:
        return
    s.unrolls[0] -= count
    formal = _formal_shapes(s, node, "body")
    for it in range(count):
        given = {g.input[2 + j].name: c for j, c in enumerate(carried) if c is not None}
        body = infer_graph(g, s.opsets, s.path, outer=s, input_shapes=formal,
                           input_values={g.input[0].name: np.array(it, dtype=np.int64)}, input_sequences=given)
        carried = [body.sequences.get(g.output[1 + j].name) if c is not None and 1 + j < len(g.output) else None
                   for j, c in enumerate(carried)]
    for name, c in zip(node.output, carried):
        if name and c is not None:
            s.sequences[name] = c


def _why(s: Shapes, node: NodeProto, cvals) -> str:
    """Why this node's output shape could not be derived (its inputs' shapes being known)."""
    op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
    if node.domain not in ("", "ai.onnx", "ai.onnx.ml") and not (node.domain == MS and node.op_type in CONTRIB_RULES):
        return f"no shape rule for {op}"
    needs = [node.input[k] for k in VALUE_INPUTS.get(node.op_type, ())
             if k < len(node.input) and node.input[k] and cvals[k] is None
             and node.input[k] not in s.symbols]
    if needs:
        producer = s.producers.get(needs[0])
        src = f", made by {producer}" if producer else ""
        return f"its output shape depends on the value of {needs[0]!r}{src}, {_value_source(s, needs[0])}"
    if node.op_type == "If":
        return "the If condition is not known and its branches give different shapes"
    return f"neither ONNX nor onnxscore could derive the output shape of this {op}"


def _value_source(s: Shapes, name: str, limit: int = 200) -> str:
    """Why a value is not known, from what it is computed of: data (a size only data decides,
    or a graph input's values) or something onnxscore could not evaluate."""
    stack, seen = [name], set()
    while stack and len(seen) < limit:
        t = stack.pop()
        if t in seen or not t:
            continue
        seen.add(t)
        shape = s.tensors.get(t, (None, 0))[0]
        dims = [d for d in shape or () if isinstance(d, str) and "@" in d]
        if dims:
            return f"which data decides (it is computed from {dims[0]})"
        key = s.producers.get(t)
        node = s.nodes.get(key) if key is not None else None
        if node is None:
            if isinstance(s.tensors, ChainMap) and t in s.tensors.maps[0] and t not in s.constants:
                return f"which changes with every iteration (it comes from the body's input {t!r})"
            if t not in s.constants and not _available(s.values, t):
                n = numel(shape)
                if n is not None and n <= 4096:
                    return f"which is computed from the value of input {t!r} (give it with --value)"
                return f"which data decides (it is computed from the values of input {t!r})"
            continue
        if node.op_type in ("NonZero", "NonMaxSuppression", "Unique", "TopK"):
            return f"which data decides (it comes from {node.op_type} {key})"
        stack.extend(node.input)
    return "which is not known"


def _mark_unknown(s: Shapes, name: str, node: Optional[NodeProto], key: str, why: str) -> None:
    """Record where ``name``'s shape was lost: through its first input whose shape is lost,
    else at this node. Graph inputs with unknown dims are their own origin."""
    shape = s.tensors.get(name, (None, 0))[0]
    if _known_shape(shape):
        return
    if node is None:
        s.lost[name] = (Lost(key or name, "input", f"{why} has an unknown dimension"), "")
        return
    for inp in node.input:
        if inp and inp in s.lost:
            s.lost[name] = (s.lost[inp][0], inp)
            return
    s.lost[name] = (Lost(key, node.op_type, why), "")
