"""Constants: tensors whose value the file fixes (initializers, Constant and ConstantOfShape
outputs), sized from their dims; only small ones are decoded, weights never are."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from onnxscore.model import KEEP_VALUES_UP_TO

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

    @functools.cached_property
    def numel(self) -> Optional[int]:
        return None if self.shape is None else int(math.prod(self.shape))


class _InlineConst(ConstTensor):
    """A small inline constant whose ``value`` is decoded from its TensorProto when first read:
    most are weights (a residual network's 3x3 kernels) whose value nothing ever asks for."""

    def __init__(self, name: str, shape: Tuple[int, ...], dtype: int, nbytes: Optional[int],
                 tensor: TensorProto, source: str) -> None:
        # the fields but ``value``, which the property below reads when first asked
        _set_fields(self, name=name, shape=shape, dtype=dtype, nbytes=nbytes, external=False,
                    source=source, _tensor=tensor, numel=int(math.prod(shape)))

    @functools.cached_property
    def value(self) -> Optional[np.ndarray]:
        try:
            return numpy_helper.to_array(self._tensor)
        except Exception:  # a malformed small tensor only loses its value
            return None


def _set_fields(c: ConstTensor, **fields) -> ConstTensor:
    """Set a new constant's fields at once: faster than the frozen dataclass's __init__, one
    attribute at a time (a large model has 100,000 initializers); ``numel`` among them, the
    cached property's value known already."""
    c.__dict__.update(fields)
    return c


def undecoded(c: ConstTensor) -> bool:
    """Whether reading ``c.value`` may decode it now (a small inline constant not read yet)."""
    return "value" not in c.__dict__


FLOAT_TYPES = frozenset(getattr(TensorProto, n) for n in (
    "FLOAT", "DOUBLE", "FLOAT16", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2",
    "FLOAT8E5M2FNUZ", "FLOAT4E2M1", "FLOAT8E8M0") if hasattr(TensorProto, n))

_SUB_BYTE_BITS = {}
for _name, _bits in (("INT4", 4), ("UINT4", 4), ("FLOAT4E2M1", 4), ("INT2", 2), ("UINT2", 2)):
    if hasattr(TensorProto, _name):
        _SUB_BYTE_BITS[getattr(TensorProto, _name)] = _bits


@functools.lru_cache(maxsize=None)
def dtype_name(dtype: int) -> str:
    try:
        return TensorProto.DataType.Name(dtype).lower()
    except ValueError:
        return f"dtype{dtype}"


def storage_bytes(dtype: int, numel: int) -> Optional[int]:
    """Bytes that ``numel`` elements of ``dtype`` occupy, packed for sub-byte types."""
    if dtype in _SUB_BYTE_BITS:
        return (numel * _SUB_BYTE_BITS[dtype] + 7) // 8
    size = _ITEMSIZE.get(dtype, -1)
    if size == -1:
        size = _ITEMSIZE[dtype] = _itemsize(dtype)
    return None if size is None else numel * size


_ITEMSIZE: dict = {}


def _itemsize(dtype: int) -> Optional[int]:
    if dtype in (TensorProto.STRING, TensorProto.UNDEFINED):
        return None
    try:
        return helper.tensor_dtype_to_np_dtype(dtype).itemsize
    except (KeyError, ValueError, TypeError):
        return None


def tensor_const(t: TensorProto, name: str, source: str = "initializer") -> ConstTensor:
    shape = tuple(t.dims[:])  # a slice first: faster than iterating the container
    n = math.prod(shape)
    dtype = t.data_type
    nbytes = storage_bytes(dtype, n)
    external = t.data_location == TensorProto.EXTERNAL
    if external:
        for e in t.external_data[:]:
            if e.key == "length":
                if e.value.isdigit():
                    nbytes = int(e.value)
                break
    # small inline constants are decoded for rules (shapes, trip counts), when one asks;
    # weights only sized
    elif n <= KEEP_VALUES_UP_TO and dtype != TensorProto.STRING:
        return _InlineConst(name, shape, dtype, nbytes, t, source)
    return _set_fields(object.__new__(ConstTensor), name=name, shape=shape, dtype=dtype, nbytes=nbytes,
                       external=external, value=None, source=source, numel=n)


def constant_node_tensor(node: onnx.NodeProto) -> Optional[ConstTensor]:
    """The constant a Constant node makes, from whichever ``value*`` attribute it has."""
    out = node.output[0] if node.output else ""
    for a in node.attribute:
        if a.name == "value" and a.type == AttributeProto.TENSOR:
            return tensor_const(a.t, out, "Constant")
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


def constant_of_shape(node: onnx.NodeProto, consts: Mapping[str, ConstTensor],
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


