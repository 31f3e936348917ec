"""Path -> ModelProto without reading weight bytes; dimension overrides; shape inference."""
from __future__ import annotations

import atexit
import contextlib
import faulthandler
import functools
import gc
import math
import os
import pickle
import signal
import struct
import sys
import threading
from dataclasses import dataclass, field
from typing import AbstractSet, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import ModelProto, TensorProto

from onnxscore import kvcache
from onnxscore.errors import GraphError, ModelLoadError, UsageError

try:  # imported here, not in each forked child of _contained_inference (1.7 ms a child)
    import resource
except ImportError:  # Windows: no fork, no limits
    resource = None


# Larger than any real tensor dimension; a dim past it is corruption, not a model.
MAX_DIM = 2**40
# 2**50 elements is a petabyte of int8: no stored tensor is that large.
MAX_ELEMENTS = 2**50


@dataclass
class LoadedModel:
    """A parsed model with its shapes inferred, and what loading it had to say."""

    path: str
    proto: ModelProto
    warnings: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)  # defaults applied, e.g. batch = 1
    input_shapes: Dict[str, Tuple] = field(default_factory=dict)  # as used for the analysis
    declared_inputs: Dict[str, Tuple] = field(default_factory=dict)  # as the file declares them
    dims: Dict[str, int] = field(default_factory=dict)  # the dimension values that were bound
    values: Dict[str, np.ndarray] = field(default_factory=dict)  # values given to inputs
    unused_dims: List[str] = field(default_factory=list)  # --dim names no declared shape has
    # what the shapes stage reads of the graph before any shape (onnxscore.shapes.GraphFacts),
    # read while ONNX's inference ran: pass it to infer_graph
    facts: Optional[object] = field(default=None, repr=False)
    # what load_model's ``early`` made of those facts meanwhile (the graph's structure)
    early: Optional[object] = field(default=None, repr=False)
    # the inferred types of the main graph's tensors (onnxscore.shapes.engine.value_infos),
    # read by ONNX's inference child: then the graph's value_info is left empty
    types: Optional[Dict[str, Tuple]] = field(default=None, repr=False)


def read_model(path: Union[str, os.PathLike]) -> ModelProto:
    """Parse ``path`` as an ONNX model without loading external data; never writes to it.
    Inline weight bytes are dropped right after parsing (see :func:`drop_weight_bytes`)."""
    path = os.fspath(path)
    model = parse_model(_read_file(path), path)
    drop_weight_bytes(model.graph, path)
    return model


def _read_file(path: str) -> bytes:
    if not os.path.exists(path):
        raise ModelLoadError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ModelLoadError(f"{path}: is a directory, not an ONNX file")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot read ({e.strerror or e})") from None


class _Scan(NamedTuple):
    """What one pass over a graph's tensors and nodes (subgraphs' included) found."""

    absurd: Optional[str]  # check_dims's message for the first tensor with an absurd dim or size
    external: List[TensorProto]  # tensors stored as external data
    subgraphs: List[onnx.GraphProto]  # graphs held in node attributes, nested ones included
    initializers: AbstractSet[str]  # names of the graph's own initializers
    # the graph's nodes and all the tensors: held, protobuf hands back the same Python objects
    # to the next pass (the shapes stage's) instead of making them again
    nodes: List[onnx.NodeProto]
    tensors: List[TensorProto]


def _scan(graph: onnx.GraphProto, path: str, drop: bool) -> _Scan:
    """:func:`drop_weight_bytes` (when ``drop``) and the tensor half of :func:`check_dims` in one
    pass, which also lists the external tensors and the subgraphs for the later steps. A
    corrupted tensor is an error at once; an absurd dim is only reported, check_dims raises it
    in its turn."""
    tensors: List[TensorProto] = []
    subgraphs: List[onnx.GraphProto] = []
    nodes = list(graph.node)
    _collect(graph, tensors, subgraphs, nodes)
    initializers = {t.name for t in tensors[:len(graph.initializer)]}
    absurd, external = None, []
    for t in tensors:
        dims = tuple(t.dims[:])  # a slice first: faster than iterating the container
        n = math.prod(dims)
        if t.data_location == TensorProto.EXTERNAL:
            external.append(t)
        elif drop and n > KEEP_VALUES_UP_TO:
            _drop_values(t, n, path)
        if absurd is None:
            bad = next((d for d in dims if d < 0 or d > MAX_DIM), None) if dims and \
                (min(dims) < 0 or max(dims) > MAX_DIM) else None
            if bad is not None:
                absurd = f"{path}: tensor {t.name!r} has an absurd dimension {bad}"
            elif n > MAX_ELEMENTS:
                absurd = f"{path}: tensor {t.name!r} has an absurd size ({'x'.join(map(str, dims))} elements)"
    return _Scan(absurd, external, subgraphs, initializers, nodes, tensors)


def _initializer_names(graph: onnx.GraphProto, known: Optional[AbstractSet[str]] = None) -> AbstractSet[str]:
    return known if known is not None else {t.name for t in graph.initializer}


def _collect(graph: onnx.GraphProto, tensors: List[TensorProto], subgraphs: List[onnx.GraphProto],
             nodes: Optional[Sequence[onnx.NodeProto]] = None) -> None:
    """Initializers and Constant-node tensors of ``graph`` and its subgraphs, in file order
    (:func:`_all_tensors`), and the subgraphs; most nodes have no attribute at all. ``nodes``:
    the graph's, if already listed."""
    tensors.extend(graph.initializer)
    for node in graph.node if nodes is None else nodes:
        attributes = node.attribute
        if not attributes:
            continue
        held = []
        for a in attributes:
            kind = a.type
            if kind == _TENSOR:
                tensors.append(a.t)
            elif kind == _GRAPH:
                held.append(a.g)
            elif kind == _GRAPHS:
                held.extend(a.graphs)
        for g in held:
            subgraphs.append(g)
            _collect(g, tensors, subgraphs)


_TENSOR, _GRAPH, _GRAPHS = onnx.AttributeProto.TENSOR, onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS


# A tensor larger than this is a weight: its bytes are never needed (shape tensors, axes and
# trip counts are tiny), so they are dropped before shape inference copies the model.
KEEP_VALUES_UP_TO = 4096


# Bits an element of a packed sub-byte type takes; every other element takes at least a byte
# in the file (a varint of int64_data included).
_PACKED_BITS = {getattr(TensorProto, n): b for n, b in (("INT4", 4), ("UINT4", 4), ("FLOAT4E2M1", 4),
                                                        ("INT2", 2), ("UINT2", 2)) if hasattr(TensorProto, n)}


def drop_weight_bytes(graph: onnx.GraphProto, path: str = "<model>") -> None:
    """Clear the stored values of large inline tensors, keeping dims and type, so that neither
    ONNX shape inference nor anything after it holds the weights in memory. A tensor whose
    dims promise more elements than its data could hold is corrupt (ONNX's inference would
    allocate the promised size): an error."""
    for t in _all_tensors(graph):
        if t.data_location == TensorProto.EXTERNAL:
            continue
        n = math.prod(t.dims)
        if n > KEEP_VALUES_UP_TO:
            _drop_values(t, n, path)


def _drop_values(t: TensorProto, n: int, path: str) -> None:
    """Clear the values of inline tensor ``t`` of ``n`` (> KEEP_VALUES_UP_TO) elements."""
    if t.data_type != TensorProto.STRING and t.ByteSize() * 8 < n * _PACKED_BITS.get(t.data_type, 8):
        label = f"tensor {t.name!r}" if t.name else "a Constant's tensor"
        raise GraphError(f"{path}: {label} declares {n:,} elements "
                         f"({'x'.join(map(str, t.dims))}) but stores {t.ByteSize():,} bytes: corrupted")
    for field_name in ("raw_data", "float_data", "int32_data", "int64_data", "double_data",
                       "uint64_data", "string_data"):
        t.ClearField(field_name)


def parse_model(data: bytes, path: str) -> ModelProto:
    """Bytes -> ModelProto, rejecting what is not a plausible ONNX model."""
    if not data:
        raise ModelLoadError(f"{path}: empty file, not an ONNX model")
    model = ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ModelLoadError(f"{path}: not an ONNX model or truncated ({_short(e)})") from None
    if not model.HasField("graph") or model.ir_version <= 0:
        raise ModelLoadError(f"{path}: not an ONNX model (no graph or IR version in the file)")
    if not model.graph.node and not model.graph.output:
        raise ModelLoadError(f"{path}: the ONNX graph is empty (no nodes, no outputs)")
    if not _strings_are_utf8(data):  # rare: look for the name (a doc_string may be at fault)
        bad = next((n for n in _model_names(model) if not isinstance(n, str)), None)
        if bad is not None:
            raise ModelLoadError(f"{path}: corrupted: a name is not valid UTF-8 ({bad[:40]!r})")
    return model


def _model_names(model: ModelProto):
    """The model's own names (opset domains, producer, metadata) and its graph's; a report
    shows them or an op lookup uses them (a doc_string may be anything)."""
    yield from (o.domain for o in model.opset_import)
    yield from (model.producer_name, model.producer_version, model.domain)
    for prop in model.metadata_props:
        yield prop.key
        yield prop.value
    for f in model.functions:  # inlined into the graph
        yield from (f.name, f.domain, *f.input, *f.output)
        for node in f.node:
            yield from (node.op_type, node.domain, *node.input, *node.output)
    yield from _names(model.graph)


def _strings_are_utf8(data: bytes) -> bool:
    """Whether every string field of the serialized model is valid UTF-8, checked in C by
    parsing it once more as proto3 (whose parser validates strings), instead of visiting
    every name in Python. False says only that *some* string is not: a name, or a doc_string."""
    try:
        _utf8_model_class()().ParseFromString(data)
    except Exception:  # noqa: BLE001 - DecodeError; or a protobuf without this: look at the names
        return False
    return True


@functools.lru_cache(maxsize=None)
def _utf8_model_class():
    """ONNX's ModelProto as a proto3 message of its own package and pool: same fields and wire
    format, but its parser rejects a string that is not UTF-8 (proto2's hands back bytes)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    file = descriptor_pb2.FileDescriptorProto()
    ModelProto.DESCRIPTOR.file.CopyToProto(file)
    package = "onnxscore_utf8_check"
    file.name, file.syntax = f"{package}.proto", "proto3"
    prefix = f".{file.package}."
    file.package = package

    def retarget(messages) -> None:
        for m in messages:
            for f in m.field:
                f.ClearField("default_value")  # proto3 has no declared defaults
                if f.type_name.startswith(prefix):
                    f.type_name = f".{package}.{f.type_name[len(prefix):]}"
            retarget(m.nested_type)

    retarget(file.message_type)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.ModelProto"))


def _names(graph: onnx.GraphProto):
    """Every node, tensor and domain name of a graph and its subgraphs (protobuf hands back
    bytes instead of str for a name that is not UTF-8)."""
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        yield vi.name
        if vi.type.HasField("tensor_type"):
            for d in vi.type.tensor_type.shape.dim:
                yield d.dim_param
    for t in graph.initializer:
        yield t.name
    for node in graph.node:
        yield node.name
        yield node.op_type
        yield node.domain
        yield from node.input
        yield from node.output
        yield from (a.name for a in node.attribute)
        for g in _subgraphs(node):
            yield from _names(g)


def _subgraphs(node: onnx.NodeProto):
    """The graphs a node holds in its attributes (If branches, Loop and Scan bodies)."""
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            yield a.g
        elif a.type == onnx.AttributeProto.GRAPHS:
            yield from a.graphs


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:120] if text else type(e).__name__


def check_external_data(model: ModelProto, path: str) -> List[str]:
    """Warnings about external-data references; the files are never opened."""
    return _external_data_warnings([t for t in _all_tensors(model.graph)
                                    if t.data_location == TensorProto.EXTERNAL], path)


def _external_data_warnings(external: Sequence[TensorProto], path: str) -> List[str]:
    base = os.path.dirname(os.path.abspath(path))
    warnings: List[str] = []
    missing, escaping, invalid = set(), set(), set()
    locations = set()
    for t in external:
        locations.add(next((e.value for e in t.external_data[:] if e.key == "location"), ""))
    for location in locations:  # each file once: a large model has thousands of tensors in one
        if not isinstance(location, str) or "\0" in location:  # protobuf hands back bytes
            invalid.add(repr(location)[:60])  # for a location that is not UTF-8: never followed
            continue
        target = os.path.normpath(os.path.join(base, location))
        if os.path.isabs(location) or os.path.commonpath([base, target]) != base:
            escaping.add(location)
        elif not os.path.exists(target):
            missing.add(location)
    for loc in sorted(invalid):
        warnings.append(f"external data path {loc} is not a valid file name (not UTF-8); not followed")
    for loc in sorted(escaping):
        warnings.append(f"external data path {loc!r} leaves the model's folder; not followed")
    for loc in sorted(missing):
        warnings.append(f"external data file {loc!r} is missing; sizes come from tensor dims "
                        "(weights are never read)")
    return warnings


def _all_tensors(graph: onnx.GraphProto) -> List[TensorProto]:
    """Initializers and Constant-node tensors of a graph and all its subgraphs."""
    tensors: List[TensorProto] = []
    _collect(graph, tensors, [])
    return tensors


def name_input_dims(model: ModelProto, initializers: Optional[AbstractSet[str]] = None) -> None:
    """Give every graph-input dim that has neither a value nor a usable name one a user can
    read and set: ``<input>:<axis>``. paddle2onnx writes ``-1`` or ``?`` for a dynamic dim,
    other exporters leave it empty or write ONNX's own ``unk__N``. A leading one is a batch dim,
    which :func:`apply_dims` then sets to 1 (``--dim x:0=N`` changes it). ``initializers``:
    the names of the graph's initializers when known (so in the functions below)."""
    init_names = _initializer_names(model.graph, initializers)
    for vi in model.graph.input:
        if vi.name in init_names or not vi.type.HasField("tensor_type"):
            continue
        for axis, d in enumerate(vi.type.tensor_type.shape.dim):
            unnamed = not d.dim_param or d.dim_param.startswith("unk__") or \
                not any(c.isalnum() for c in d.dim_param)  # Paddle writes "?"
            if d.HasField("dim_value") and d.dim_value >= 0:
                continue
            if d.HasField("dim_value") and d.dim_value != -1:
                continue  # another negative: corrupt, check_dims refuses it
            if not unnamed and not d.HasField("dim_value"):
                continue
            d.dim_param = f"{vi.name}:{axis}"  # a leading one is a batch: apply_dims sets it to 1
    for vi in list(model.graph.output) + list(model.graph.value_info):
        if vi.type.HasField("tensor_type"):
            for d in vi.type.tensor_type.shape.dim:
                if d.HasField("dim_value") and d.dim_value == -1:
                    d.Clear()


def forget_internal_dims(model: ModelProto, subgraphs: Optional[Sequence[onnx.GraphProto]] = None,
                         initializers: Optional[AbstractSet[str]] = None) -> None:
    """Clear dim names that only intermediate tensors or outputs declare (``batch`` in an If
    branch, ``seqlen`` on an output): no user can set them, and the shapes the inputs give
    decide them, so ONNX and onnxscore infer them again. The names of graph inputs' dims, and
    subgraph inputs (bound by the caller), are kept. ``subgraphs``: every graph the model's nodes
    hold, if already known (:func:`_scan`)."""
    init_names = _initializer_names(model.graph, initializers)
    free = {d.dim_param for vi in model.graph.input if vi.name not in init_names
            and vi.type.HasField("tensor_type") for d in vi.type.tensor_type.shape.dim if d.dim_param}

    def clear(graph: onnx.GraphProto) -> None:
        for vi in list(graph.output) + list(graph.value_info):
            if vi.type.HasField("tensor_type"):
                for d in vi.type.tensor_type.shape.dim:
                    if d.dim_param and d.dim_param not in free:
                        d.Clear()

    if subgraphs is None:
        subgraphs = []
        _collect(model.graph, [], subgraphs)
    for graph in [model.graph, *subgraphs]:
        clear(graph)


def check_dims(model: ModelProto, path: str, scan: Optional[_Scan] = None) -> None:
    """Reject negative or absurd dimensions in declared shapes and tensor dims (those of
    ``scan``, when the tensors were already looked at)."""
    g = model.graph
    absurd = (scan or _scan(g, path, drop=False)).absurd
    if absurd is not None:
        raise GraphError(absurd)
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if not vi.type.HasField("tensor_type"):
            continue
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and (d.dim_value < 0 or d.dim_value > MAX_DIM):
                raise GraphError(f"{path}: tensor {vi.name!r} has an absurd dimension {d.dim_value}")


def apply_dims(model: ModelProto, dims: Mapping[str, int], input_shapes: Mapping[str, Sequence[int]],
               path: str, initializers: Optional[AbstractSet[str]] = None) -> Tuple[List[str], List[str]]:
    """Fix dimensions in place: ``input_shapes`` whole, ``dims`` by name wherever the name
    appears, and a symbolic leading batch dimension of an input to 1. Returns the notes and
    the names in ``dims`` that the declared shapes do not use (they may name a dim the shapes
    stage makes, such as ``nms@<node>``)."""
    g = model.graph
    init_names = _initializer_names(g, initializers)
    real_inputs = [vi for vi in g.input if vi.name not in init_names and vi.type.HasField("tensor_type")]
    names = {vi.name for vi in g.input if vi.name not in init_names}
    for name, value in list(dims.items()) + [(k, d) for k, s in input_shapes.items() for d in s]:
        if value < 0 or value > MAX_DIM:
            raise UsageError(f"{path}: dimension {name}={value} is out of range")
    unknown = sorted(set(input_shapes) - names)
    if unknown:
        raise UsageError(f"{path}: --input names {', '.join(unknown)}, but the model's inputs are "
                         f"{', '.join(sorted(names)) or 'none'}")
    notes: List[str] = []
    values = dict(dims)
    for vi in real_inputs:
        shape = vi.type.tensor_type.shape
        if vi.name in input_shapes:
            shape.ClearField("dim")
            for d in input_shapes[vi.name]:
                shape.dim.add().dim_value = int(d)
            continue
        if len(shape.dim) < 2 or shape.dim[0].HasField("dim_value"):
            continue
        lead = shape.dim[0]  # named by name_input_dims when the file left it unnamed
        if lead.dim_param and lead.dim_param not in values:
            values[lead.dim_param] = 1
            notes.append(f"batch dimension {lead.dim_param!r} set to 1 (pass --dim {lead.dim_param}=N "
                         "to change)")
    used = set()
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if vi.type.HasField("tensor_type"):
            for d in vi.type.tensor_type.shape.dim:
                if d.dim_param and d.dim_param in values:
                    used.add(d.dim_param)
                    d.dim_value = values[d.dim_param]
    return notes, sorted(set(dims) - used)


def inline_functions(model: ModelProto) -> Tuple[ModelProto, List[str]]:
    """Expand calls of model-local functions (as the torch.export exporter writes them) so
    that their bodies are costed node by node."""
    if not model.functions:
        return model, []
    try:
        from onnx import inliner

        inlined = inliner.inline_local_functions(model)
    except Exception as e:  # an old onnx or a malformed function: cost the calls as they are
        return model, [f"model-local functions kept as calls ({_short(e)})"]
    return inlined, [f"{len(model.functions)} model-local function(s) inlined"]


# An integer tensor declared larger than this is no shape computation: ONNX's data
# propagation would try to hold its values (2^40 of them for a corrupted Slice input).
MAX_PROPAGATED = 1 << 24
_INTEGER_TYPES = {TensorProto.INT64, TensorProto.INT32, TensorProto.INT16, TensorProto.INT8,
                  TensorProto.UINT64, TensorProto.UINT32, TensorProto.UINT16, TensorProto.UINT8}


def _huge_integer_tensor(model: ModelProto) -> Optional[str]:
    g = model.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and tt.elem_type in _INTEGER_TYPES:
            n = 1
            for d in tt.shape.dim:
                n *= d.dim_value if d.HasField("dim_value") else 1
            if n > MAX_PROPAGATED:
                return vi.name
    return None


# Memory the contained ONNX inference may add to its process's address space: far more than
# any real model's inference needs, far less than a runaway allocation.
INFERENCE_MEMORY = 8 << 30


def _address_space() -> int:
    """Bytes of address space this process maps now (Linux), else 0."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _contained_inference(model: ModelProto, data_prop: bool, graph_only: bool = False,
                         meanwhile: Optional[Callable[[], None]] = None,
                         tables: Optional[list] = None) -> ModelProto:
    """ONNX's C++ shape inference in a child process, so that a crash of the native library (a
    segfault on a malformed ai.onnx.ml graph) or a runaway allocation ends that child, not the
    analysis; inline where fork is not available. A small model goes to this process's
    :class:`_InferenceServer`, a child kept for the next one (a fork costs more than a small
    model's inference); a large one to a child forked for it, which inherits the model rather
    than have it serialized on the way.

    ``graph_only``, for a model without subgraphs, functions or training graphs (where ONNX's
    inference changes nothing but the main graph's inputs, outputs and value_info): the child
    sends only those, and they replace ``model``'s own, in place; not the whole model, weights
    included, both ways through the pipe. ``meanwhile`` runs in this process while the child
    infers (without fork, not at all). ``tables``, with ``graph_only``: the child also reads
    the graph's tensor types into the table of the shapes stage (name -> (shape, dtype), see
    :func:`onnxscore.shapes.engine.value_infos`), appended to ``tables``, and sends that
    instead of the value_info, which stays out of ``model``: at 200,000 tensors, reading them
    costs half a second, better spent in the child while this process reads the nodes."""
    if not hasattr(os, "fork"):
        return _infer(model, data_prop)
    flags = int(data_prop) | 2 * int(graph_only) | 4 * int(graph_only and tables is not None)
    if len(model.graph.node) <= SERVED_NODES and model.ByteSize() <= SERVED_BYTES:
        payload = _InferenceServer.infer(model, flags, meanwhile)
    else:
        payload = _forked_inference(model, flags, meanwhile)
    if payload[:2] != b"ok":
        raise RuntimeError(payload[2:].decode("utf-8", "replace") or "no result")
    if graph_only:  # parsed in place (the bytes are our child's own serialization)
        body = memoryview(payload)[2:]
        if flags & 4:
            size = _LENGTH.unpack(body[:_LENGTH.size])[0]
            tables.append(pickle.loads(body[_LENGTH.size + size:]))
            body = body[_LENGTH.size:_LENGTH.size + size]
        for name in _INFERRED_FIELDS:
            model.graph.ClearField(name)
        model.graph.MergeFromString(body)
        return model
    inferred = ModelProto()
    inferred.ParseFromString(payload[2:])
    return inferred


# Models served by the long-lived inference child: up to this many nodes and serialized bytes
# (weights above KEEP_VALUES_UP_TO elements are dropped when read, so this is mostly graph).
SERVED_NODES = 5_000
SERVED_BYTES = 8 << 20


def _infer(model: ModelProto, data_prop: bool) -> ModelProto:
    return onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=data_prop)


def _inferred_payload(model: ModelProto, flags: int) -> bytes:
    """In a child: b"ok" and the inferred model, or b"no" and why, in a line. ``flags``: 1,
    data propagation; 2, the main graph's inferred fields alone; 4, with 2, the value_info
    as the shapes stage's table instead: the graph's length, the graph, the pickled table
    (see :func:`_contained_inference`)."""
    try:
        inferred = _infer(model, bool(flags & 1))
        if flags & 2:
            inferred = inferred.graph
            for f, _ in inferred.ListFields():
                if f.name not in _INFERRED_FIELDS:
                    inferred.ClearField(f.name)
        if flags & 4:
            from onnxscore.shapes.engine import value_infos

            table = pickle.dumps(value_infos(inferred), protocol=pickle.HIGHEST_PROTOCOL)
            inferred.ClearField("value_info")
            graph = inferred.SerializeToString()
            return b"ok" + _LENGTH.pack(len(graph)) + graph + table
        return b"ok" + inferred.SerializeToString()
    except BaseException as e:  # noqa: BLE001 - reported to the parent as text
        return b"no" + _short(e).encode("utf-8", "replace")


def _become_child(parent: int, die_with_parent: Optional[Callable[[], None]]) -> None:
    """In a child just forked by ``parent``: killed with it, quiet, its address space capped."""
    if die_with_parent is not None:  # killed with its parent, whatever ends the parent
        die_with_parent()
        if os.getppid() != parent:
            os._exit(0)
    quiet = os.open(os.devnull, os.O_WRONLY)  # a failed C++ assertion writes to stderr
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    faulthandler.disable()  # a crash here is expected and reported by the parent (pytest enables it)
    limit = _address_space() + INFERENCE_MEMORY  # on top of what the process maps now
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)  # a cap set from outside (ulimit -v) stays the cap
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _fork_child(body: Callable[[], None]) -> Tuple[int, bool]:
    """Fork a child that becomes an inference child (:func:`_become_child`), runs ``body`` and
    exits without running this process's code. SIGINT is blocked across the fork, so the child,
    born with it blocked, never sees a Ctrl-C (its parent stops it): the caller unblocks it
    (:func:`_unblock_interrupts` of the flag returned with the pid) once it can stop the child."""
    parent, die_with_parent = os.getpid(), _death_signal()
    masked = _block_interrupts()
    try:
        pid = os.fork()
    except BaseException:
        _unblock_interrupts(masked)
        raise
    if pid == 0:
        try:
            _become_child(parent, die_with_parent)
            body()
        finally:  # whatever happens (the parent gone: BrokenPipeError), the child exits here
            os._exit(0)
    return pid, masked


def _forked_inference(model: ModelProto, flags: int, meanwhile: Optional[Callable[[], None]]) -> bytes:
    """The payload of :func:`_inferred_payload`, from a child forked for this model."""
    read_end, write_end = os.pipe()

    def body() -> None:
        os.close(read_end)
        payload = _inferred_payload(model, flags)
        with os.fdopen(write_end, "wb") as out:
            out.write(payload)

    try:
        pid, masked = _fork_child(body)
    except BaseException:
        os.close(read_end)
        os.close(write_end)
        raise
    os.close(write_end)
    inp = os.fdopen(read_end, "rb")
    try:
        _unblock_interrupts(masked)  # a Ctrl-C of the meantime is raised here
        if meanwhile is not None:
            meanwhile()
        _schemas_loaded()  # once, while the first child infers: every later child inherits them
        payload = inp.read()
    except BaseException:  # noqa: BLE001 - (an interrupt) the child is not left behind
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        inp.close()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        raise RuntimeError(f"it crashed (signal {os.WTERMSIG(status)})")
    return payload


_HEADER = struct.Struct("<QB")  # payload length; flags (see _inferred_payload)
_LENGTH = struct.Struct("<Q")


class _InferenceServer:
    """A child of this process that runs ONNX's inference for one model after another: sent a
    serialized model, it answers with :func:`_inferred_payload`. It is started on first use
    (after ONNX's operator schemas are built, which it inherits) and again after it crashed
    on a malformed model (that model gets "it crashed", as from a forked child); it dies with
    this process, and a process forked from this one starts its own. One request at a time
    (a lock: Dask runs analyses in threads)."""

    _current: Optional["_InferenceServer"] = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        requests_read, self._requests = os.pipe()
        self._replies, replies_write = os.pipe()

        def serve() -> None:
            os.close(self._requests)
            os.close(self._replies)
            while True:
                header = _read_exactly(requests_read, _HEADER.size)
                if header is None:  # this process closed the pipe, or ended
                    return
                size, flags = _HEADER.unpack(header)
                model = ModelProto()
                model.ParseFromString(_read_exactly(requests_read, size) or b"")
                payload = _inferred_payload(model, flags)
                _write_all(replies_write, _LENGTH.pack(len(payload)) + payload)

        try:
            self.pid, self.masked = _fork_child(serve)
        except BaseException:
            os.close(self._requests)
            os.close(self._replies)
            raise
        finally:
            os.close(requests_read)
            os.close(replies_write)
        self.owner = os.getpid()

    @classmethod
    def infer(cls, model: ModelProto, flags: int, meanwhile: Optional[Callable[[], None]]) -> bytes:
        request = model.SerializeToString()
        with cls._lock:
            server = cls._current
            if server is None or server.owner != os.getpid():  # none yet, or the parent's
                _schemas_loaded()
                server = cls._current = cls()
            try:
                _unblock_interrupts(server.masked)  # a Ctrl-C of the meantime is raised here
                server.masked = False
                _write_all(server._requests, _HEADER.pack(len(request), flags))
                _write_all(server._requests, request)
                if meanwhile is not None:
                    meanwhile()
                header = _read_exactly(server._replies, _LENGTH.size)
                payload = _read_exactly(server._replies, _LENGTH.unpack(header)[0]) if header else None
            except BrokenPipeError:
                payload = None
            except BaseException:  # noqa: BLE001 - (an interrupt) a server in mid-answer is stopped
                server.stop(kill=True)
                raise
            if payload is None:  # it died on this model
                status = server.stop(kill=False)
                raise RuntimeError(f"it crashed (signal {os.WTERMSIG(status)})" if os.WIFSIGNALED(status)
                                   else "the inference child ended without an answer")
            return payload

    def stop(self, kill: bool) -> int:
        """Stop serving (killed, or told by its pipe closing), wait for the child; its status."""
        if _InferenceServer._current is self:
            _InferenceServer._current = None
        for fd in (self._requests, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass
        if kill:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, status = os.waitpid(self.pid, 0)
        return status


@atexit.register
def _stop_inference_server() -> None:
    """At exit, the server is told to end (its pipe closed) and waited for: no zombie."""
    server = _InferenceServer._current
    if server is not None and server.owner == os.getpid():
        server.stop(kill=False)


def _read_exactly(fd: int, n: int) -> Optional[bytes]:
    """``n`` bytes from ``fd``, or None at the end of the pipe."""
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _block_interrupts() -> bool:
    """Block SIGINT in this thread (a forked child inherits the mask); whether it was done."""
    if not hasattr(signal, "pthread_sigmask"):
        return False
    return signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def _unblock_interrupts(masked: bool) -> None:
    if masked:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@functools.lru_cache(maxsize=None)
def _death_signal() -> Optional[Callable[[], None]]:
    """On Linux, a function that has the calling process killed (SIGKILL) when its parent ends
    (``prctl(PR_SET_PDEATHSIG)``), for the child of :func:`_contained_inference`: a parent
    killed mid-analysis (a pool worker stopped by Ctrl-C, a Dask worker lost) leaves no child
    behind. None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None
    pr_set_pdeathsig, kill = 1, int(signal.SIGKILL)
    return lambda: prctl(pr_set_pdeathsig, kill, 0, 0, 0)


@functools.lru_cache(maxsize=None)
def _schemas_loaded() -> None:
    """ONNX's registry of operator schemas (every domain, every version), which ONNX builds on
    its first use, built in this process. A child forked before that builds it again, about
    25 ms of a tiny model's 28; one forked after inherits it. Building it runs no model: nothing
    a malformed graph can crash."""
    try:
        onnx.defs.get_schema("Relu")  # any lookup builds the whole registry
    except Exception:  # noqa: BLE001 - an onnx without it: every child builds its own
        pass


# What ONNX's inference may change in a graph: its inputs' types (a subgraph's), its outputs'
# and value_info.
_INFERRED_FIELDS = ("input", "output", "value_info")


def infer_shapes(model: ModelProto, subgraphs: Optional[bool] = None,
                 meanwhile: Optional[Callable[[bool], None]] = None,
                 tables: Optional[list] = None) -> Tuple[ModelProto, List[str]]:
    """ONNX shape inference with data propagation (without it when an integer tensor is
    declared too large for a shape computation), contained in a child process; on failure or
    a crash, keep the declared shapes (onnxscore's own shapes stage still runs). ``subgraphs``:
    whether any node holds a graph, if known; when none does (and there are no functions),
    the child returns only what inference adds, and ``model`` itself is returned with it in
    place. ``meanwhile(in_place)`` runs while the child infers, told whether ``model`` is the
    one returned if inference succeeds. ``tables``: see :func:`_contained_inference` (the
    tensor types are appended to it when the child read them)."""
    huge = _huge_integer_tensor(model)
    warnings = [f"integer tensor {huge!r} is declared with over {MAX_PROPAGATED:,} elements: ONNX's "
                "data propagation skipped"] if huge else []
    graph_only = subgraphs is False and not model.functions and not model.training_info
    try:
        return _contained_inference(model, huge is None, graph_only,
                                    meanwhile and functools.partial(meanwhile, graph_only), tables), warnings
    except Exception as e:  # onnx raises several types, incl. plain RuntimeError
        return model, warnings + [f"ONNX shape inference failed ({_short(e)}); using declared shapes only"]


def input_values(model: ModelProto, values: Mapping[str, object], path: str,
                 initializers: Optional[AbstractSet[str]] = None) -> Dict[str, np.ndarray]:
    """Values given to graph inputs (``--value sr=16000``), as arrays of the input's dtype; the
    declared shape of each such input becomes the value's shape."""
    g = model.graph
    init_names = _initializer_names(g, initializers)
    inputs = {vi.name: vi for vi in g.input if vi.name not in init_names}
    out: Dict[str, np.ndarray] = {}
    for name, value in values.items():
        vi = inputs.get(name)
        if vi is None:
            raise UsageError(f"{path}: --value names {name}, but the model's inputs are "
                             f"{', '.join(sorted(inputs)) or 'none'}")
        tt = vi.type.tensor_type
        try:
            arr = np.asarray(value, dtype=onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type))
        except (TypeError, ValueError, KeyError, OverflowError) as e:
            raise UsageError(f"{path}: --value {name}: {value!r} is not a value of its type "
                             f"({_short(e)})") from None
        if arr.size > 4096:
            raise UsageError(f"{path}: --value {name}: {arr.size} elements; only small values "
                             "(up to 4096) can be given")
        declared = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if len(declared) == arr.ndim + 1 and declared[0] in (1, None) and arr.ndim <= 1:
            arr = arr.reshape((1,) + arr.shape)  # sr=16000 for an input declared [1]
        tt.shape.ClearField("dim")
        for d in arr.shape:
            tt.shape.dim.add().dim_value = int(d)
        out[name] = arr
    return out


@contextlib.contextmanager
def collector_paused():
    """Python's cyclic garbage collector paused, restored as it was after: loading and the
    shapes stage make millions of small objects and no cycles, and at 200,000 nodes the
    collector's passes over them cost a third of the time. Also a decorator."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@collector_paused()
def load_model(path: Union[str, os.PathLike, ModelProto], dims: Optional[Mapping[str, int]] = None,
               input_shapes: Optional[Mapping[str, Sequence[int]]] = None,
               values: Optional[Mapping[str, object]] = None,
               early: Optional[Callable[[object, str, int], object]] = None,
               read_types: bool = False) -> LoadedModel:
    """Read, check, bind dimensions and infer shapes; the file is only ever read. While ONNX's
    inference runs in its child, the graph's nodes are read (``LoadedModel.facts``) and
    ``early(facts, path, opset)`` makes what it can of them (``LoadedModel.early``). With
    ``read_types``, the child reads the inferred types of the main graph's tensors into
    ``LoadedModel.types`` for :func:`onnxscore.shapes.infer_graph`, and the graph's
    value_info stays empty (where the child can: a graph without subgraphs)."""
    if isinstance(path, ModelProto):
        proto = ModelProto()
        proto.CopyFrom(path)
        path = "<model>"
        scan = _scan(proto.graph, path, drop=False)
    else:
        path = os.fspath(path)
        proto = parse_model(_read_file(path), path)  # read_model, with one pass over the tensors
        scan = _scan(proto.graph, path, drop=True)
    name_input_dims(proto, scan.initializers)
    check_dims(proto, path, scan)
    warnings = _external_data_warnings(scan.external, path) if path != "<model>" else []
    declared_model = proto
    proto, inline_notes = inline_functions(proto)
    if proto is not declared_model:  # calls expanded: bodies may hold subgraphs
        scan = _scan(proto.graph, path, drop=False)
    init_names = scan.initializers
    declared = {vi.name: shape_of(vi.type) for vi in proto.graph.input if vi.name not in init_names}
    given = input_values(proto, dict(values or {}), path, init_names)
    dims, tie_notes, tie_warnings = kvcache.tie_total_length(declared, dict(dims or {}),
                                                             dict(input_shapes or {}), path)
    notes, unused_dims = apply_dims(proto, dims, dict(input_shapes or {}), path, init_names)
    notes = inline_notes + notes + tie_notes
    warnings = warnings + tie_warnings
    forget_internal_dims(proto, scan.subgraphs, init_names)
    facts, made = [], []
    opset = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in proto.opset_import}.get("", 0)

    def meanwhile(in_place: bool) -> None:  # the nodes do not change: read them now
        if in_place:
            from onnxscore.shapes.engine import graph_facts

            try:
                facts.append(graph_facts(proto.graph, path))
                if early is not None:
                    made.append(early(facts[0], path, opset))
            except Exception:  # noqa: BLE001 - read again later, and raised then
                pass

    tables: Optional[list] = [] if read_types else None
    proto, inference_warnings = infer_shapes(proto, bool(scan.subgraphs), meanwhile, tables)
    loaded = LoadedModel(path, proto, warnings + inference_warnings, notes, unused_dims=unused_dims,
                         declared_inputs=declared, dims=dict(dims or {}), values=given,
                         facts=next((f for f in facts if f.graph is proto.graph), None))
    if loaded.facts is not None and made:
        loaded.early = made[0]
    if tables:
        loaded.types = tables[0]
    for vi in proto.graph.input:
        if vi.name not in init_names:
            loaded.input_shapes[vi.name] = shape_of(vi.type)
    return loaded


def shape_of(type_proto: onnx.TypeProto) -> Optional[Tuple]:
    """A TypeProto's shape: ints, symbolic names (str), or None per unknown dim."""
    if not type_proto.HasField("tensor_type"):
        return None
    tt = type_proto.tensor_type
    if not tt.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                 for d in tt.shape.dim)
