"""Our own shape propagation, for where ONNX shape inference leaves a dimension unknown.

ONNX inference loses a dimension whenever it would have to compute with a value it does not
track: ``Range(0, Shape(x)[1], 1)`` has an unknown length, so the positions it makes, and
everything broadcast with them, get fresh ``unk__N`` names. This pass walks the nodes once,
tracks the values of small integer tensors (shapes, indices: each element an int or a
dimension name) and fills in only what ONNX left unknown (``None`` or ``unk__*``); a dimension
ONNX knows is never changed.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from onnx import NodeProto, TensorProto, helper, numpy_helper

from onnxscore.poly import NotPolynomial, Poly

Dim = object  # int | str | None
Shape = Optional[Tuple[Dim, ...]]
Value = Optional[Tuple[Dim, ...]]  # a 0-D or 1-D integer tensor's elements


def is_unknown(d) -> bool:
    return d is None or (isinstance(d, str) and d.startswith("unk__"))


def _known(d) -> bool:
    return not is_unknown(d)


def merge(onnx_shape: Shape, ours: Shape) -> Shape:
    """ONNX's shape with its unknown dimensions filled from ours (same rank only)."""
    if ours is None:
        return onnx_shape
    if onnx_shape is None:
        return ours
    if len(onnx_shape) != len(ours):
        return onnx_shape
    return tuple(o if _known(o) or is_unknown(m) else m for o, m in zip(onnx_shape, ours))


def _broadcast(shapes: Sequence[Shape]) -> Shape:
    if any(s is None for s in shapes):
        return None
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        not_one = [d for d in dims if d != 1]
        known = [d for d in not_one if _known(d)]
        if not not_one:
            out.append(1)
        elif known:
            out.append(known[0])
        else:
            out.append(None)
    return tuple(out)


def _poly(d):
    """A dim as something to compute with: an int, a Poly, or None when not known."""
    if isinstance(d, (int, Poly)) and not isinstance(d, bool):
        return d
    if isinstance(d, str) and not is_unknown(d):
        return Poly.symbol(d)
    return None


def _dim(x):
    """A computed dim as the table stores it: a single symbol as its name, else int or Poly."""
    if isinstance(x, Poly) and len(x.terms) == 1:
        (mono, coef), = x.terms.items()
        if coef == 1 and len(mono) == 1 and mono[0][1] == 1:
            return mono[0][0]
    return x


def _arith(op: str, a: Dim, b: Dim) -> Dim:
    """``a op b`` on dims, exact or None: ints, names and polynomials alike."""
    a, b = _poly(a), _poly(b)
    if a is None or b is None:
        return None
    try:
        if op == "Add":
            return _dim(a + b)
        if op == "Sub":
            return _dim(a - b)
        if op == "Mul":
            return _dim(a * b)
        if op == "Div" and b:
            return _dim(a // b)
    except NotPolynomial:
        return None
    return None


def _reshape(in_shape: Shape, target: Value, allowzero: int) -> Shape:
    if target is None:
        return None
    out = [in_shape[i] if (t == 0 and not allowzero and in_shape and i < len(in_shape)) else t
           for i, t in enumerate(target)]
    if out.count(-1) == 1 and in_shape is not None:
        i = out.index(-1)
        out[i] = _quotient(in_shape, out[:i] + out[i + 1:])
    return tuple(None if (isinstance(d, int) and d < 0) else d for d in out)


def _quotient(total: Sequence[Dim], part: Sequence[Dim]) -> Dim:
    """prod(total) / prod(part), when it divides exactly (names cancelling)."""
    num, den = [_poly(d) for d in total], [_poly(d) for d in part]
    if any(d is None for d in num + den):
        return None
    try:
        return _dim(math.prod(num) // math.prod(den))
    except (NotPolynomial, ZeroDivisionError):
        return None


Prop = Callable[[NodeProto, List[Shape], List[Value], dict], Tuple[List[Shape], List[Value]]]
_PROPS: Dict[str, Prop] = {}


def _register(table: Dict[str, Prop], *ops: str):
    """A decorator putting a propagation function in ``table`` under each of ``ops``."""
    def register(fn: Prop) -> Prop:
        for op in ops:
            table[op] = fn
        return fn
    return register


def _prop(*ops: str):
    return _register(_PROPS, *ops)


SAME_SHAPE = ("Relu", "Gelu", "Sigmoid", "Tanh", "Erf", "Sqrt", "Exp", "Log", "Neg", "Abs",
              "Softmax", "LogSoftmax", "LayerNormalization", "RMSNormalization",
              "Dropout", "LeakyRelu", "Elu", "Selu", "HardSigmoid", "HardSwish", "Softplus",
              "Mish", "Swish", "Reciprocal", "Clip", "Not", "Floor", "Ceil", "Round", "Sign",
              "Cos", "Sin", "BatchNormalization", "InstanceNormalization", "GroupNormalization",
              "CumSum", "IsNaN", "IsInf", "Trilu")


@_prop(*SAME_SHAPE)
def _same(node, shapes, values, attrs):
    """Output(s) shaped like input 0 (Dropout's optional mask too)."""
    n = len(node.output) if node.op_type == "Dropout" else 1
    return [shapes[0]] * n, [None] * n


@_prop("Cast", "CastLike", "Identity")
def _cast(node, shapes, values, attrs):
    return [shapes[0]], [values[0]]


@_prop("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Equal", "Less", "Greater",
       "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Mod", "PRelu", "Sum", "Mean", "Where")
def _elementwise(node, shapes, values, attrs):
    value = None
    if all(v is not None for v in values) and values and all(s is not None and len(s) <= 1 for s in shapes):
        value = _value_op(node.op_type, values)
        if value is not None and all(s == () for s in shapes):
            value = value[:1]
    return [_broadcast(shapes)], [value]


_COMPARE = {"Equal": lambda a, b: a == b, "Less": lambda a, b: a < b, "Greater": lambda a, b: a > b,
            "LessOrEqual": lambda a, b: a <= b, "GreaterOrEqual": lambda a, b: a >= b}


def _value_op(op: str, values) -> Value:
    """Elementwise arithmetic, comparison and Where on small 1-D values (shape computations,
    such as ``Where(Equal(shape, -1), 1, shape)`` before an Expand)."""
    n = max(len(v) for v in values)
    if any(len(v) not in (1, n) for v in values):
        return None
    cols = [v * n if len(v) == 1 else v for v in values]
    if op in ("Add", "Sub", "Mul", "Div") and len(cols) == 2:
        return tuple(_arith(op, x, y) for x, y in zip(*cols))
    if op in _COMPARE and len(cols) == 2:
        if not all(isinstance(x, int) for col in cols for x in col):
            return None
        return tuple(int(_COMPARE[op](x, y)) for x, y in zip(*cols))
    if op == "Where" and len(cols) == 3:
        if not all(isinstance(c, int) for c in cols[0]):
            return None
        return tuple(x if c else y for c, x, y in zip(*cols))
    return None


@_prop("Shape")
def _shape(node, shapes, values, attrs):
    s = shapes[0]
    if s is None:
        return [None], [None]
    start, end = attrs.get("start", 0), attrs.get("end", len(s))
    v = tuple(s[start:end])
    return [(len(v),)], [tuple(None if is_unknown(d) else d for d in v)]


@_prop("Size")
def _size(node, shapes, values, attrs):
    s = shapes[0]
    ok = s is not None and all(isinstance(d, int) for d in s)
    return [()], [(math.prod(s),) if ok else None]


@_prop("Gather")
def _gather(node, shapes, values, attrs):
    data, idx = shapes[0], shapes[1]
    axis = attrs.get("axis", 0)
    out = None
    if data is not None and idx is not None:
        axis %= len(data)
        out = tuple(data[:axis]) + tuple(idx) + tuple(data[axis + 1:])
    value = None
    if values[0] is not None and values[1] is not None and len(data or ()) == 1:
        try:
            picked = tuple(values[0][int(i)] for i in values[1])
            value = picked
        except (IndexError, TypeError, ValueError):
            value = None
    return [out], [value]


@_prop("Unsqueeze", "Squeeze")
def _unsqueeze(node, shapes, values, attrs):
    s = shapes[0]
    axes = attrs.get("axes") if "axes" in attrs else (values[1] if len(values) > 1 else None)
    if s is None or (axes is None and node.op_type == "Unsqueeze"):
        return [None], [values[0]]
    if node.op_type == "Unsqueeze":
        if any(not isinstance(a, int) for a in axes):
            return [None], [values[0]]
        rank = len(s) + len(axes)
        axes = sorted(a % rank for a in axes)
        out = list(s)
        for a in axes:
            out.insert(a, 1)
    else:
        if axes is None:
            out = [d for d in s if d != 1]
        else:
            drop = {int(a) % len(s) for a in axes}
            out = [d for i, d in enumerate(s) if i not in drop]
    return [tuple(out)], [values[0]]


@_prop("Concat")
def _concat(node, shapes, values, attrs):
    value = None
    if all(v is not None for v in values):
        value = tuple(d for v in values for d in v)
    if any(s is None for s in shapes) or not shapes:
        return [None], [value]
    axis = attrs.get("axis", 0) % len(shapes[0])
    along = [_poly(s[axis]) for s in shapes]
    total = None if any(d is None for d in along) else _dim(sum(along))
    out = list(_broadcast([tuple(1 if i == axis else d for i, d in enumerate(s)) for s in shapes]) or ())
    if out:
        out[axis] = total
    return [tuple(out) if out else None], [value]


@_prop("Range")
def _range(node, shapes, values, attrs):
    start, limit, delta = (v[0] if v else None for v in values[:3])
    n = None
    if all(isinstance(x, int) for x in (start, limit, delta)) and delta:
        n = max(0, -(-(limit - start) // delta))
    elif delta == 1:
        n = _arith("Sub", limit, start)
    return [(n,)], [None]


@_prop("Reshape")
def _reshape_prop(node, shapes, values, attrs):
    return [_reshape(shapes[0], values[1], attrs.get("allowzero", 0))], [values[0]]


@_prop("Transpose")
def _transpose(node, shapes, values, attrs):
    s = shapes[0]
    if s is None:
        return [None], [None]
    perm = attrs.get("perm") or list(reversed(range(len(s))))
    return [tuple(s[p] for p in perm)], [None]


@_prop("MatMul")
def _matmul(node, shapes, values, attrs):
    a, b = shapes[0], shapes[1]
    if a is None or b is None or len(a) < 2 or len(b) < 2:
        return [None], [None]
    batch = _broadcast([tuple(a[:-2]), tuple(b[:-2])])
    return [None if batch is None else tuple(batch) + (a[-2], b[-1])], [None]


@_prop("Expand")
def _expand(node, shapes, values, attrs):
    target = values[1]
    return [None if target is None else _broadcast([shapes[0], target])], [None]


@_prop("ConstantOfShape")
def _constant_of_shape(node, shapes, values, attrs):
    """Shaped by its input's value; a short integer fill is tracked as a value too."""
    target, value = values[0], None
    fill = attrs.get("value")
    if target is not None and len(target) == 1 and isinstance(target[0], int) and target[0] <= 64:
        number = 0 if fill is None else numpy_helper.to_array(fill).reshape(-1)[0]
        if float(number).is_integer():
            value = (int(number),) * target[0]
    return [target], [value]


@_prop("Slice")
def _slice(node, shapes, values, attrs):
    s = shapes[0]
    starts, ends = values[1] if len(values) > 1 else None, values[2] if len(values) > 2 else None
    axes = values[3] if len(values) > 3 and values[3] is not None else None
    steps = values[4] if len(values) > 4 and values[4] is not None else None
    if s is None or starts is None or ends is None:
        return [None], [None]
    axes = axes or tuple(range(len(starts)))
    steps = steps or (1,) * len(starts)
    out, value = list(s), None
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        if not all(isinstance(x, int) for x in (st, en, ax, sp)) or sp == 0:
            return [None], [None]
        ax %= len(s)
        dim = s[ax]
        if not isinstance(dim, int):
            out[ax] = dim if (st == 0 and sp == 1 and en >= 2**31 - 1) else None
            continue
        out[ax] = len(range(*slice(st, en, sp).indices(dim)))
        if values[0] is not None and len(s) == 1:
            value = tuple(values[0][slice(st, en, sp)])
    return [tuple(out)], [value]


@_prop("Split")
def _split(node, shapes, values, attrs):
    s = shapes[0]
    n = len(node.output)
    if s is None:
        return [None] * n, [None] * n
    axis = attrs.get("axis", 0) % len(s)
    sizes = attrs.get("split") or (values[1] if len(values) > 1 else None)
    if sizes is None:
        d = s[axis]
        sizes = [d // n if isinstance(d, int) and d % n == 0 else None] * n
    outs = [tuple(size if i == axis else d for i, d in enumerate(s)) for size in sizes]
    return outs, [None] * n


# onnxruntime's com.microsoft ops, which ONNX shape inference does not know: the shapes the
# rules need, from each op's contract in onnxruntime's ContribOperators.md.
MS = "com.microsoft"
_FLOATS = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE}
_MS_PROPS: Dict[str, Prop] = {}


def _ms(*ops: str):
    return _register(_MS_PROPS, *ops)


@_ms("SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "BiasGelu", "FastGelu", "Gelu",
     "QuickGelu", "BiasAdd", "RotaryEmbedding", "GemmaRotaryEmbedding", "BiasSoftmax", "BiasDropout",
     "GroupNorm", "SkipGroupNorm", "NhwcConv")
def _ms_same(node, shapes, values, attrs):
    """Every output shaped like input 0 (the optional mean/inv-std outputs are not needed)."""
    n = len(node.output)
    return [shapes[0]] + [shapes[0] if node.op_type.startswith("Skip") and i == n - 1 else None
                          for i in range(1, n)], [None] * n


@_ms("Attention")
def _ms_attention(node, shapes, values, attrs):
    """[B, S, H_in] x packed QKV weight [H_in, 3H] -> [B, S, H] (or the v part of qkv_hidden_sizes)."""
    x, w = shapes[0], shapes[1] if len(shapes) > 1 else None
    if x is None or w is None:
        return [None] * len(node.output), [None] * len(node.output)
    sizes = attrs.get("qkv_hidden_sizes")
    hidden = sizes[2] if sizes else _arith("Div", w[1], 3)
    return [(x[0], x[1], hidden)] + [None] * (len(node.output) - 1), [None] * len(node.output)


@_ms("MultiHeadAttention", "GroupQueryAttention", "PackedMultiHeadAttention", "SparseAttention",
     "DecoderMaskedMultiHeadAttention")
def _ms_mha(node, shapes, values, attrs):
    """Output [B, S, num_heads * v_head]: the query's width, or with packed QKV (no key input)
    the query width times num_heads / (num_heads + 2 * kv_num_heads)."""
    q = shapes[0]
    n = len(node.output)
    if q is None or len(q) != 3:
        return [None] * n, [None] * n
    heads = attrs.get("num_heads")
    kv_heads = attrs.get("kv_num_heads", heads)
    packed = len(node.input) < 2 or not node.input[1]
    width = _arith("Div", _arith("Mul", q[2], heads), heads + 2 * kv_heads) if packed and heads else q[2]
    return [(q[0], q[1], width)] + [None] * (n - 1), [None] * n


@_ms("EmbedLayerNormalization")
def _ms_embed(node, shapes, values, attrs):
    """input_ids [B, S] and word embedding [V, H] -> [B, S, H], mask_index [B]."""
    ids, words = shapes[0], shapes[2] if len(shapes) > 2 else None
    if ids is None or words is None:
        return [None] * len(node.output), [None] * len(node.output)
    outs = [(ids[0], ids[1], words[1]), (ids[0],)]
    if len(node.output) > 2:
        outs.append((ids[0], ids[1], words[1]))
    return outs[:len(node.output)], [None] * len(node.output)


@_ms("MatMulNBits", "MatMulBnb4", "MatMulFpQ4")
def _ms_nbits(node, shapes, values, attrs):
    """A [..., K] times the packed K x N weight -> [..., N]."""
    a = shapes[0]
    return [None if a is None or "N" not in attrs else tuple(a[:-1]) + (attrs["N"],)], [None]


@_ms("FusedMatMul", "TransposeMatMul", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "FusedGemm")
def _ms_matmul(node, shapes, values, attrs):
    a, b = shapes[0], shapes[1] if len(shapes) > 1 else None
    if a is None or b is None or len(a) < 2 or len(b) < 2:
        return [None], [None]
    if attrs.get("transA"):
        a = tuple(a[:-2]) + (a[-1], a[-2])
    if attrs.get("transB"):
        b = tuple(b[:-2]) + (b[-1], b[-2])
    return _matmul(node, [a, b], values, attrs)


def _const_value(value: Optional[np.ndarray]) -> Value:
    if value is None or value.dtype.kind not in "iu" or value.ndim > 1:
        return None
    return tuple(int(v) for v in value.reshape(-1))


def propagate(nodes: Sequence[NodeProto], tensors: Mapping[str, Tuple[Shape, int]],
              const_values: Mapping[str, Optional[np.ndarray]]) -> Dict[str, Tuple[Shape, int]]:
    """The tensor table with ONNX's unknown dimensions filled where we can compute them."""
    table = dict(tensors)
    values: Dict[str, Value] = {k: _const_value(v) for k, v in const_values.items()}
    for node in nodes:
        default = node.domain in ("", "ai.onnx")
        fn = _PROPS.get(node.op_type) if default else _MS_PROPS.get(node.op_type) if node.domain == MS else None
        if default and node.op_type == "SimplifiedLayerNormalization":  # onnxruntime's, in ""
            fn = _same
        if fn is None:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute
                 if a.type not in (5, 10, 12)}  # not TENSOR/GRAPH/GRAPHS-valued
        shapes = [table.get(n, (None, 0))[0] if n else None for n in node.input]
        vals = [values.get(n) if n else None for n in node.input]
        try:
            out_shapes, out_values = fn(node, shapes, vals, attrs)
        except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError):
            continue  # a malformed node keeps whatever ONNX said
        in_dtypes = [table.get(n, (None, 0))[1] for n in node.input if n]
        in_dtype = in_dtypes[0] if in_dtypes else 0
        if node.domain == MS:  # contrib ops compute in the type of their first float input
            in_dtype = next((d for d in in_dtypes if d in _FLOATS), in_dtype)
        for i, (name, shape, value) in enumerate(zip(node.output, out_shapes, out_values)):
            if not name:
                continue
            old_shape, dtype = table.get(name, (None, 0))
            if not dtype and (node.op_type in SAME_SHAPE or node.domain == MS):  # ONNX left the type out
                dtype = TensorProto.BOOL if (node.op_type, i) == ("Dropout", 1) else in_dtype
            table[name] = (merge(old_shape, shape), dtype)
            if value is not None:
                values[name] = value
    return table
