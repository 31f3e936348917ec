"""Path -> ModelProto without reading weight bytes; dimension overrides; shape inference."""
from __future__ import annotations

import contextlib
import functools
import gc
import math
import os
from dataclasses import dataclass, field
from typing import AbstractSet, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import ModelProto, TensorProto

from onnxscore import kvcache
from onnxscore.errors import GraphError, ModelLoadError, UsageError
from onnxscore.files import NotARegularFile, open_regular
from onnxscore.inference import _short, infer_shapes  # ONNX's inference, contained in a child


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


# The largest serialized protobuf message (2**31 - 1 bytes; onnxruntime's docs, "Working with
# Large Models": "The maximum size of a protobuf file is 2GB"): no ONNX file is larger, so a larger
# file is refused before it is read (reading a 20 GB file to find that out needs 20 GB).
MAX_PROTOBUF_BYTES = 2**31 - 1


def _read_file(path: str) -> bytes:
    if not os.path.exists(path):
        raise ModelLoadError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ModelLoadError(f"{path}: is a directory, not an ONNX file")
    try:
        fd, st = open_regular(path)
        with os.fdopen(fd, "rb") as f:
            size = st.st_size
            if size > MAX_PROTOBUF_BYTES:
                raise ModelLoadError(f"{path}: {size:,} bytes, more than a protobuf can hold (2 GiB): not an ONNX "
                                     "file (a model that large keeps its weights as external data)")
            return f.read()
    except NotARegularFile as e:
        raise ModelLoadError(f"{path}: {e}, not an ONNX file") from None
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


def check_external_data(model: ModelProto, path: str) -> List[str]:
    """Warnings about external-data references; the files are never opened."""
    return _external_data_warnings([t for t in _all_tensors(model.graph)
                                    if t.data_location == TensorProto.EXTERNAL], path)


INSIDE, MISSING, ESCAPES, INVALID = "inside", "missing", "escapes", "invalid"


def external_files(external: Sequence[TensorProto], path: str) -> Dict[object, Tuple[str, str]]:
    """Each external-data location of the tensors ``external`` (each file once: a large model
    has thousands of tensors in one) -> (verdict, the first tensor's name). Verdicts:
    ``INSIDE`` a file in the model's folder; ``MISSING`` none there; ``ESCAPES`` an absolute
    path, or one that leaves the folder, by its ``..`` or through a symbolic link; ``INVALID``
    not a file name (not UTF-8: protobuf hands back bytes; or holding a NUL). Only looked up
    (``stat``), never opened."""
    base = os.path.dirname(os.path.abspath(path))
    real_base = os.path.realpath(base)
    files: Dict[object, Tuple[str, str]] = {}
    for t in external:
        location = next((e.value for e in t.external_data[:] if e.key == "location"), "")
        if location in files:
            continue
        if not isinstance(location, str) or "\0" in location or not location:
            verdict = INVALID
        else:
            target = os.path.normpath(os.path.join(base, location))
            if os.path.isabs(location) or os.path.commonpath([base, target]) != base or \
                    os.path.commonpath([real_base, os.path.realpath(target)]) != real_base:
                verdict = ESCAPES
            else:
                verdict = INSIDE if os.path.isfile(target) else MISSING
        files[location] = (verdict, t.name)
    return files


def _external_data_warnings(external: Sequence[TensorProto], path: str) -> List[str]:
    by_verdict: Dict[str, List[object]] = {}
    for location, (verdict, _) in external_files(external, path).items():
        by_verdict.setdefault(verdict, []).append(location)
    warnings = [f"external data path {repr(loc)[:60]} is not a valid file name "
                f"({'empty' if loc == '' else 'holds a NUL' if isinstance(loc, str) else 'not UTF-8'}); not followed"
                for loc in sorted(by_verdict.get(INVALID, ()), key=repr)]
    warnings += [f"external data path {loc!r} leaves the model's folder; not followed"
                 for loc in sorted(by_verdict.get(ESCAPES, ()))]
    warnings += [f"external data file {loc!r} is missing; sizes come from tensor dims (weights are never read)"
                 for loc in sorted(by_verdict.get(MISSING, ()))]
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
