"""Tensor sequences: what each element is (its shape and dtype), through the sequence ops.

ONNX's shape inference types a sequence by one element type for all, and gives no element a
shape once elements differ or a Loop builds the sequence. TorchScript writes
``torch.tensor_split(x, (1,), dim=2)`` (MViT's class token split from its tokens) as a Loop
that slices ``x`` at each boundary and inserts the slice into a sequence, one more
SequenceInsert for the tail, then a SequenceAt per piece: without the elements' shapes,
everything after the pieces was unknown. Here a sequence is the tuple of its elements' (shape,
dtype), known when each op's inputs are: SequenceEmpty, SequenceConstruct, SequenceInsert,
SequenceErase, SequenceAt, SequenceLength, SplitToSequence, ConcatFromSequence and Identity; a
Loop that carries a sequence is run once per iteration when its trip count is known and small
(``engine._loop_sequences``).
"""
from __future__ import annotations

from typing import Mapping, MutableMapping, Optional, Sequence, Tuple

import numpy as np

from onnxscore.shapes.dims import Shape

Element = Tuple[Shape, int]  # (shape, dtype) of one element
OPS = frozenset({"SequenceEmpty", "SequenceConstruct", "SequenceInsert", "SequenceErase", "SequenceAt",
                 "SequenceLength", "SplitToSequence", "ConcatFromSequence"})
MAX_UNROLL = 64  # iterations of a sequence-building Loop run one by one, at most
MAX_UNROLLED = 256  # body runs in all, for one model (Loops in Loops would multiply)
MAX_ELEMENTS = 1024  # the most elements a sequence is followed with (a SplitToSequence into 1s)


def _position(value: Optional[np.ndarray], length: int, default: int, insert: bool = False) -> Optional[int]:
    """A position in a sequence of ``length`` from a scalar input (negative from the end; an
    insert may be at ``length``), or ``default`` when the input is absent; None when unknown
    or out of range."""
    if value is None:
        return default if default is not None else None
    if value.size != 1:
        return None
    p = int(value.reshape(-1)[0])
    p = p + length if p < 0 else p
    return p if 0 <= p <= (length if insert else length - 1) else None


def sequence_op(op: str, inputs: Sequence[str], values: Sequence[Optional[np.ndarray]], tensors,
                sequences: MutableMapping[str, tuple], attrs: Mapping):
    """The outputs of one sequence op: (output name, sequence) pairs for ``sequences``, and
    (shape, dtype, value) for a tensor output (SequenceAt, SequenceLength,
    ConcatFromSequence), or None for what is not known."""
    def seq(k):
        return sequences.get(inputs[k]) if k < len(inputs) and inputs[k] else None

    def present(k):
        return k < len(inputs) and bool(inputs[k])

    def element(k) -> Element:
        shape, dtype = tensors.get(inputs[k], (None, 0))
        return shape, dtype

    if op == "SequenceEmpty":
        return (), None
    if op == "Identity":  # of a sequence (opset 14)
        return seq(0), None
    if op == "SequenceConstruct":
        return tuple(element(k) for k in range(len(inputs)) if inputs[k]), None
    if op == "SplitToSequence":
        return _split(element(0), values[1] if present(1) else None, attrs), None
    items = seq(0)
    if items is None:
        return None, None
    if op == "SequenceInsert":
        at = _position(values[2] if present(2) else None, len(items), len(items), insert=True)
        if at is None or (present(2) and values[2] is None):
            return None, None
        return items[:at] + (element(1),) + items[at:], None
    if op == "SequenceErase":
        if not items:
            return None, None
        at = _position(values[1] if present(1) else None, len(items), len(items) - 1)
        if at is None or (present(1) and values[1] is None):
            return None, None
        return items[:at] + items[at + 1:], None
    if op == "SequenceAt":
        at = _position(values[1] if present(1) else None, len(items), None)
        if at is None:
            return None, None
        shape, dtype = items[at]
        return None, (shape, dtype, None)
    if op == "SequenceLength":
        return None, ((), 7, np.array(len(items), dtype=np.int64))  # int64 scalar
    if op == "ConcatFromSequence":
        return None, (_concat(items, int(attrs.get("axis", 0)), int(attrs.get("new_axis", 0))), 0, None)
    return None, None


def _split(x: Element, split: Optional[np.ndarray], attrs: Mapping) -> Optional[tuple]:
    """SplitToSequence of ``x`` along ``axis``: by the sizes in ``split`` (a scalar: pieces of
    that size, the last the rest), else into pieces of 1 (dropped when not ``keepdims``)."""
    shape, dtype = x
    if shape is None:
        return None
    axis = int(attrs.get("axis", 0))
    if not -len(shape) <= axis < len(shape):
        return None
    axis %= len(shape)
    n = shape[axis]
    if not isinstance(n, int):
        return None
    if split is None:
        keep = int(attrs.get("keepdims", 1))
        one = shape[:axis] + ((1,) if keep else ()) + shape[axis + 1:]
        return tuple((one, dtype) for _ in range(n)) if n <= MAX_ELEMENTS else None
    sizes = [int(v) for v in split.reshape(-1)]
    if split.ndim == 0:
        if sizes[0] <= 0:
            return None
        sizes = [sizes[0]] * (n // sizes[0]) + ([n % sizes[0]] if n % sizes[0] else [])
    if sum(sizes) != n or any(v < 0 for v in sizes):
        return None
    return tuple((shape[:axis] + (v,) + shape[axis + 1:], dtype) for v in sizes)


def _concat(items: tuple, axis: int, new_axis: int) -> Shape:
    """ConcatFromSequence's output: the elements joined along ``axis`` (stacked along a new one
    with ``new_axis``); None unless every element's shape is known and they agree."""
    shapes = [shape for shape, _ in items]
    if not shapes or any(s is None for s in shapes) or len({len(s) for s in shapes}) != 1:
        return None
    rank = len(shapes[0]) + (1 if new_axis else 0)
    if not -rank <= axis < rank:
        return None
    axis %= rank
    if new_axis:
        if len(set(shapes)) != 1:
            return None
        return shapes[0][:axis] + (len(shapes),) + shapes[0][axis:]
    rest = {s[:axis] + s[axis + 1:] for s in shapes}
    sizes = [s[axis] for s in shapes]
    if len(rest) != 1 or not all(isinstance(v, int) for v in sizes):
        return None
    first = shapes[0]
    return first[:axis] + (sum(sizes),) + first[axis + 1:]
