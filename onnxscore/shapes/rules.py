"""Shape and symbolic-value rules of default-domain ops (and a few ai.onnx.ml ones), where
ONNX inference gives up."""
from __future__ import annotations

import math

from onnx import TensorProto, numpy_helper

from onnxscore.poly import Poly, ceildiv, floordiv
from onnxscore.shapes.dims import (DEFAULT_RULES, ML_RULES, Value, arith, as_dim, as_poly, broadcast,
                                   is_unknown, register, reshape, transposed_windows, windows)


def _prop(*ops: str):
    return register(DEFAULT_RULES, *ops)


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
    return [broadcast(shapes)], [value]


_COMPARE = {"Equal": lambda a, b: a == b, "Less": lambda a, b: a < b, "Greater": lambda a, b: a > b,
            "LessOrEqual": lambda a, b: a <= b, "GreaterOrEqual": lambda a, b: a >= b}


def _value_op(op: str, values) -> Value:
    """Elementwise arithmetic, comparison and Where on small 1-D values (shape computations,
    such as ``Where(Equal(shape, -1), 1, shape)`` before an Expand)."""
    n = max(len(v) for v in values)
    if any(len(v) not in (1, n) for v in values):
        return None
    cols = [v * n if len(v) == 1 else v for v in values]
    if op in ("Add", "Sub", "Mul", "Div", "Mod") and len(cols) == 2:
        return tuple(arith(op, x, y) for x, y in zip(*cols))
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
    along = [as_poly(s[axis]) for s in shapes]
    total = None if any(d is None for d in along) else as_dim(sum(along))
    out = list(broadcast([tuple(1 if i == axis else d for i, d in enumerate(s)) for s in shapes]) or ())
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
        n = arith("Sub", limit, start)
    elif isinstance(delta, int) and delta > 0:
        n = arith("Div", arith("Add", arith("Sub", limit, start), delta - 1), delta)  # ceil
    if n is None and not any(isinstance(x, (str, Poly)) for x in (start, limit, delta)):
        n = data_dim("range", node)  # bounds that only data decides
    return [(n,)], [None]


@_prop("Reshape")
def _reshape_prop(node, shapes, values, attrs):
    return [reshape(shapes[0], values[1], attrs.get("allowzero", 0))], [values[0]]


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
    batch = broadcast([tuple(a[:-2]), tuple(b[:-2])])
    return [None if batch is None else tuple(batch) + (a[-2], b[-1])], [None]


@_prop("Expand")
def _expand(node, shapes, values, attrs):
    target = values[1]
    return [None if target is None else broadcast([shapes[0], target])], [None]


@_prop("ConstantOfShape")
def _constant_of_shape(node, shapes, values, attrs):
    """Shaped by its input's value; a short integer fill is tracked as a value too."""
    target, value = values[0], None
    fill = attrs.get("value")
    known = fill is not None or "value" not in attrs  # no attribute: zeros; an external one: unknown
    if known and target is not None and len(target) == 1 and isinstance(target[0], int) and target[0] <= 64:
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
    if "starts" in attrs:  # opset < 10: bounds are attributes
        starts, ends, axes = attrs.get("starts"), attrs.get("ends"), attrs.get("axes")
    if s is None or starts is None or ends is None:
        return [None], [None]
    axes = axes or tuple(range(len(starts)))
    steps = steps or (1,) * len(starts)
    out, value = list(s), None
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        if not all(isinstance(x, int) for x in (st, ax, sp)) or sp == 0:
            return [None], [None]
        ax %= len(s)
        dim = s[ax]
        if not isinstance(en, int):  # a symbolic end: x[st:n] of a tensor n long is n - st
            named = isinstance(dim, (str, Poly)) and not is_unknown(dim)
            out[ax] = arith("Sub", dim, st) if en == dim and sp == 1 and st >= 0 else \
                data_dim("slice", node) if named else None
            continue
        if not isinstance(dim, int):
            if st == 0 and sp == 1 and en >= 2**31 - 1:
                out[ax] = dim
            elif isinstance(dim, (str, Poly)) and not is_unknown(dim):
                out[ax] = data_dim("slice", node)  # min(dim, bound): a size of its own
            else:
                out[ax] = None
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




def data_dim(kind: str, node) -> str:
    """The name of a size only data decides, after what it counts and the node that makes
    it: ``nms@/postprocess/NonMaxSuppression``. Set it with ``--dim`` like any named dim."""
    return f"{kind}@{node.name or node.output[0]}"


@_prop("NonZero")
def _nonzero(node, shapes, values, attrs):
    """[rank of X, the number of non-zero elements]."""
    s = shapes[0]
    return [None if s is None else (len(s), data_dim("nonzero", node))], [None]


@_prop("NonMaxSuppression")
def _nms(node, shapes, values, attrs):
    """[selected boxes, 3] (batch, class, box index of each kept box)."""
    return [(data_dim("nms", node), 3)], [None]


@_prop("TopK")
def _topk(node, shapes, values, attrs):
    """X with axis ``axis`` cut to k; k named when only data decides it (a known k is ONNX's)."""
    s, k = shapes[0], values[1] if len(values) > 1 else None
    if s is None:
        return [None, None], [None, None]
    axis = attrs.get("axis", -1) % len(s)
    size = k[0] if k else data_dim("topk", node)
    out = tuple(size if i == axis else d for i, d in enumerate(s))
    return [out, out], [None, None]


@_prop("Unique")
def _unique(node, shapes, values, attrs):
    """Y: the unique values (flattened, or slices along ``axis``); indices and counts one per
    unique value; inverse_indices one per input element (or per slice)."""
    s = shapes[0]
    if s is None:
        return [None] * 4, [None] * 4
    u = data_dim("unique", node)
    axis = attrs.get("axis")
    if axis is None:
        y, inverse = (u,), (numel_dim(s),)
    else:
        axis %= len(s)
        y, inverse = tuple(u if i == axis else d for i, d in enumerate(s)), (s[axis],)
    return [y, (u,), inverse, (u,)][:len(node.output)], [None] * len(node.output)


@_prop("Compress")
def _compress(node, shapes, values, attrs):
    """The kept slices along ``axis`` (or the kept elements of the flattened input)."""
    s = shapes[0]
    if s is None:
        return [None], [None]
    c = data_dim("compress", node)
    axis = attrs.get("axis")
    if axis is None:
        return [(c,)], [None]
    axis %= len(s)
    return [tuple(c if i == axis else d for i, d in enumerate(s))], [None]


def numel_dim(shape):
    """The product of dims as a dim (int, name or polynomial), or None."""
    total = 1
    for d in shape:
        total = arith("Mul", total, d)
    return total


def _spatial(node, shapes, attrs, kernel):
    """Output spatial dims of a conv or pool over symbolic input dims, as exact floor
    expressions (ONNX's inference knows only numbers): out = floor((in + pads - d*(k-1) - 1)
    / s) + 1, ceil with ``ceil_mode``; SAME_* pads give ceil(in / s)."""
    x = shapes[0]
    if x is None or kernel is None or all(isinstance(d, int) for d in x[2:]):
        return None
    n = len(kernel)
    strides = attrs.get("strides") or [1] * n
    dilations = attrs.get("dilations") or [1] * n
    pads = attrs.get("pads") or [0] * (2 * n)
    auto = attrs.get("auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    ceil = bool(attrs.get("ceil_mode", 0))
    out = []
    for i, size in enumerate(x[2:]):
        size = as_poly(size)
        if size is None:
            out.append(None)
            continue
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            out.append(as_dim(ceildiv(size, strides[i])))
            continue
        span = dilations[i] * (kernel[i] - 1) + 1
        total = size + (0 if auto == "VALID" else pads[i] + pads[i + n]) - span
        div = ceildiv if ceil else floordiv
        out.append(as_dim(div(total, strides[i]) + 1))
    return out


@_prop("Conv", "ConvInteger", "QLinearConv")
def _conv(node, shapes, values, attrs):
    """[N, M, spatial...] with M = W's first dim (W: QLinearConv's input 3, the others' 1)."""
    at = 3 if node.op_type == "QLinearConv" else 1
    w = shapes[at] if len(shapes) > at else None
    kernel = attrs.get("kernel_shape") or (list(w[2:]) if w is not None else None)
    spatial = _spatial(node, shapes, attrs, kernel)
    if spatial is None or w is None:
        return [None], [None]
    return [(shapes[0][0], w[0]) + tuple(spatial)], [None]


@_prop("ConvTranspose")
def _conv_transpose(node, shapes, values, attrs):
    """[N, W[1] * group, spatial...]: :func:`transposed_windows`."""
    return [transposed_windows(shapes[0], shapes[1] if len(shapes) > 1 else None, attrs)], [None]


# Pools whose ceil_mode output ONNX's shape inference overstates: its C++ inference keeps a last
# window that would start in the end padding, which onnxruntime and ONNX's own reference
# implementation drop (as PyTorch does). The engine takes this rule's numbers over ONNX's.
CEIL_POOLS = ("MaxPool", "AveragePool", "LpPool")


@_prop("MaxPool", "AveragePool", "LpPool")
def _pool(node, shapes, values, attrs):
    """[N, C, spatial...]; MaxPool's optional indices shaped the same."""
    x = shapes[0]
    if attrs.get("ceil_mode") and x is not None and all(isinstance(d, int) for d in x[2:]):
        out = tuple(x[:2]) + windows(x[2:], attrs.get("kernel_shape"), attrs, ceil_mode=True)
        return [out] * len(node.output), [None] * len(node.output)
    spatial = _spatial(node, shapes, attrs, attrs.get("kernel_shape"))
    if spatial is None:
        return [None] * len(node.output), [None] * len(node.output)
    out = tuple(shapes[0][:2]) + tuple(spatial)
    return [out] * len(node.output), [None] * len(node.output)


@_prop("Pad")
def _pad(node, shapes, values, attrs):
    """Each padded axis grows by its begin and end pads (symbolic pads included; opset < 11
    gives them as the ``pads`` attribute, opset 18 may list ``axes``)."""
    s = shapes[0]
    pads = attrs.get("pads") or (values[1] if len(values) > 1 else None)
    if s is None or pads is None:
        return [None], [None]
    axes = values[3] if len(values) > 3 and values[3] is not None else range(len(s))
    axes = [int(a) % len(s) for a in axes]
    if len(pads) != 2 * len(axes):
        return [None], [None]
    out = list(s)
    for i, axis in enumerate(axes):
        out[axis] = arith("Add", arith("Add", s[axis], pads[i]), pads[i + len(axes)])
    return [tuple(out)], [None]


@register(ML_RULES, "Imputer", "Scaler", "Normalizer", "Binarizer")
def _ml_same(node, shapes, values, attrs):
    """ai.onnx.ml transforms that keep X's shape (Scaler and Normalizer output floats)."""
    float_out = node.op_type in ("Scaler", "Normalizer")
    return [shapes[0]], [None], [TensorProto.FLOAT if float_out else 0]
