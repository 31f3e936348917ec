"""Tables an exporter computed, which torch keeps as buffers (or not at all): not parameters.

Exporters write torch buffers (rotary sin/cos tables, attention masks, position-bias tables
expanded by a constant index) as initializers or Constant nodes, exactly as they write learned
weights. Nothing in the file marks the difference, and weight bytes are never read, so the
rule is structural: a constant is a **computed table** when the graph uses it the way only
such tables are used.

* **Rotary tables.** ``x * cos + rotate_half(x) * sin``: an Add (or Sub) of two Muls, each an
  activation times a constant table of at least two dims longer than 1 (positions x features).
  A learned scale (LayerScale's gamma, a gate) is one vector, never a pair of such tables.
* **Attention biases and masks.** A constant added to attention scores: the Add sits between a
  MatMul (Q x K^T, maybe scaled by a Mul or Div, or capped by a Tanh as Gemma 2 does) and the
  Softmax that reads it (maybe through Reshapes and further Adds), and it has an entry per key
  (its last dim longer than 1) for each query, or one row for all (ALiBi's [heads, 1, keys]);
  fewer queries than keys in LeViT's subsampling attention, or new tokens over past ones.
  Shifted-window masks (0 / -100), causal masks (0 / -inf) and Swin's relative position bias
  once the exporter has expanded the learned [(2W-1)^2, heads] table by its constant index
  into [heads, W*W, W*W] are all of this kind. When the exporter keeps the Gather (table,
  constant index), the table itself is read by the Gather and counted as the parameter it is;
  only its expanded copy is a buffer.

* **What builds them.** An attention bias is often not one constant but computed from
  constants only, with no graph input on the way (the exporter left the computation in the
  graph): Swin's shifted-window mask built by ScatterND into a grid of zeros, Swin-V2's
  continuous position bias (a small MLP over a constant coordinate table). In that
  input-independent computation, the constants in *data* position are tables (the grid, the
  coordinates, a product the exporter folded); those in *weight* position stay parameters:
  a MatMul's or Gemm's second operand, a Conv's kernel and bias, the smaller operand of an
  elementwise op (a Linear's bias), and the table a Gather reads (Swin's learned
  [(2W-1)^2, heads] relative position table, gathered by a constant index), even when it is
  only sliced, reshaped or resized on its way there (BEiT's, interpolated to the window). A
  Shape reads no value: what it reads is not part of the computation.

* **Sinusoidal encodings.** A Sin or Cos of an input-independent table of at least two dims
  longer than 1 (positions x frequencies) is a position encoding computed in the forward
  (XCiT's and EdgeNeXt's Fourier encodings: a grid of ones summed along each axis, divided by
  constant frequencies): the constants it is computed from are tables, the frequencies too,
  though they are the smaller operand of their Div or Mul. What is in weight position stays a
  parameter (learned Fourier features: a constant grid times a learned matrix), and so does
  the smaller operand of an Add or Sub (a bias).

* **Attention from positions alone.** A Softmax of a table computed from constants only
  (ConViT's gated positional attention: its relative positions [1, N, N, 3] projected by a
  learned Linear to a score per head) is attention that no input decides: the constants in
  data position are tables, those in weight position (the Linear's) parameters.

  Here, as for sinusoids and attention biases, "computed from constants only" admits the
  input's shape: a table expanded to the batch read off a Shape is still a table (a Shape
  reads no value).

* **Input normalization.** A model that normalizes its own input (Keras's Normalization
  layer in EfficientNet and ConvNeXt, torchvision's detection transform) subtracts a mean
  from a graph input and divides by a standard deviation (or multiplies by its reciprocal):
  constants of one value per channel, statistics of the data that torch keeps as plain
  attributes and Keras as non-trainable weights. The first Sub of such a vector from a
  graph input (through layout ops and rescales by one number, like 1/255) and the Div (or
  Mul) that follows it are tables; an Add of a vector (the negated mean) is one only when
  such a Div or Mul follows (alone, it is a learned bias). A per-channel affine that
  multiplies first (a BatchNormalization of the input that an exporter folded into a Mul and
  an Add) stays a parameter. Only the graph's first nodes are looked at
  (:data:`_FIRST_NODES`): that is where exporters write a model's preprocessing.

* **Folded activations.** An exporter that folds everything computable at export time turns
  activations into constants too: RAFT's first refinement step starts from a zero flow, so
  the dynamo exporter stores its lookup grids and a conv's output as initializers. A constant
  read where an op only ever reads activations (the input of a Conv, a pooling, a norm, an
  activation function, a Split, a Resize, a GridSample) is such a folded activation.

Some constants are no tensor of the model at all, neither parameter nor buffer, though a
node other than their real reader reads them as data (:data:`UNCOUNTED`):

* **Initial recurrent states.** A constant that an LSTM, GRU or RNN starts from (its
  ``initial_h`` or ``initial_c``), expanded or tiled to the batch: torch's LSTM called without
  a state starts from zeros that the exporter writes as a constant (timm's Sequencer2d: 3,072
  of them per LSTM). Like a state given to the layer as it is (the role of those inputs), it
  is not counted: torch's recurrent layers learn no initial state (a model that learns one
  would keep it as a parameter of its own, and is undercounted here).
* **Resize scales.** The float scales (or roi) of a Resize or Upsample, concatenated from
  constants: TorchScript's ``nn.Upsample(scale_factor=2)`` writes ``Concat([1, 1], [2, 2])``
  (HRNet's fuse layers).
* **A group norm's unit affine.** TorchScript writes ``GroupNorm(G, C)`` as a Reshape to
  ``[N, G, -1]``, an InstanceNormalization with a constant scale of ones and bias of zeros
  (``[G]`` each), a Reshape back, then the learned weight and bias (``[C]``) as a Mul and an
  Add: the InstanceNormalization between two Reshapes has the identity's affine, not a
  parameter (PoolFormer's GroupNorm(1, C): 2 per norm; a diffusion UNet's GroupNorm(32, C): 64).
* **A weight standardization's affine.** timm's StdConv2d and ScaledStdConv2d standardize
  their kernel with ``F.batch_norm(weight.reshape(1, C, -1), None, None, weight=gain,
  training=True)``: a BatchNormalization whose input is a weight (a constant, reshaped), not
  an activation, and whose output is a weight again. The scale and bias that torch passes as
  ``None`` the exporter writes as constants of ones and zeros (``[C]`` each; NF-ResNet-26:
  15,424 zeros); they are the identity's affine. A learned gain reaches the scale through a
  Mul and stays a parameter, as does a constant there that is named as a module's parameter
  (``conv.gain``).

Learned tensors used in other ways (an absolute position embedding added to the tokens, a
class token, every weight of a contraction) are untouched.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

from onnxscore.digraph import Graph
from onnxscore.graph import TRANSPARENT, module_tensor_name
from onnxscore.ops.data import RANDOM_OPS
from onnxscore.shapes.evaluate import numel

ROTARY = "rotary table"
SINUSOID = "sinusoidal encoding"
POSITIONAL_ATTENTION = "attention computed from positions"
INPUT_NORMALIZATION = "input normalization"
FOLDED = "folded activation"
RNN_STATE = "initial recurrent state"
RESIZE_SCALES = "resize scales"
GROUP_NORM_UNIT = "group norm's unit affine"
STANDARDIZATION_UNIT = "weight standardization's unit affine"
# constants that are no tensor of the model
UNCOUNTED = frozenset({RNN_STATE, RESIZE_SCALES, GROUP_NORM_UNIT, STANDARDIZATION_UNIT})
# (op type, input index) -> what a constant there is, and the ops it may come through.
_FED = {("LSTM", 5): RNN_STATE, ("LSTM", 6): RNN_STATE, ("GRU", 5): RNN_STATE, ("RNN", 5): RNN_STATE,
        ("Resize", 1): RESIZE_SCALES, ("Resize", 2): RESIZE_SCALES, ("Upsample", 1): RESIZE_SCALES}
_FED_OPS = frozenset(op for op, _ in _FED)
_FEEDERS = {RNN_STATE: frozenset({"Expand", "Tile"}),  # an initial state repeated over the batch
            RESIZE_SCALES: frozenset({"Concat", "Cast", "Unsqueeze", "Squeeze", "Reshape", "Slice"})}
# (op type, input index) read only as an activation: a constant there is a folded activation.
_ACTIVATION_ONLY = frozenset(
    [(op, 0) for op in ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool",
                        "GlobalMaxPool", "GlobalLpPool", "Relu", "LeakyRelu", "Elu", "Selu", "Celu",
                        "Gelu", "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Mish", "Softmax",
                        "LogSoftmax", "Split", "Resize", "Upsample", "GridSample", "InstanceNormalization",
                        "BatchNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization",
                        "LpNormalization", "MeanVarianceNormalization", "DepthToSpace", "SpaceToDepth",
                        "RoiAlign", "MaxRoiPool")]
    + [("GridSample", 1)])


def activation_only(op_type: str, index: int) -> bool:
    """Input ``index`` of ``op_type`` is only ever an activation (see the module docstring)."""
    return (op_type, index) in _ACTIVATION_ONLY


ATTENTION_BIAS = "attention bias or mask"
# Ops between an attention score MatMul and its Softmax that keep the scores' meaning.
_SCORE_PATH = frozenset({"Mul", "Div", "Add", "Reshape", "Cast", "Identity", "Where", "Tanh"})
_MAX_HOPS = 8
_MAX_FED = 64  # tensors looked at behind one fed input


def computed_tables(G: Graph, root: Callable[[Graph, str], Optional[str]]) -> Dict[str, str]:
    """Constant name -> why it is a computed table, for the constants of ``G`` (``root`` finds
    the constant a tensor is, looking through casts and reshapes)."""
    consts, producers, tensors = G.graph["constants"], G.graph["producers"], G.graph["tensors"]
    nodes = G.nodes
    found: Dict[str, str] = {}
    present = {nd["op_type"] for _, nd in G.nodes(data=True)}
    rotary, bias = "Mul" in present, "Softmax" in present  # what each search needs to find
    trig = "Sin" in present or "Cos" in present
    if not present.isdisjoint(_FED_OPS):
        _fed_constants(G, root, found)
    if "InstanceNormalization" in present:
        _group_norm_units(G, root, found)
    if "BatchNormalization" in present:
        _standardization_units(G, root, found)
    if not present.isdisjoint(("Sub", "Add")):
        _input_normalization(G, root, found)
    if not (rotary or bias or trig):
        return found
    static = set(consts)  # tensors computed from constants only (no graph input on any path to them)

    def table(name: str) -> Optional[str]:
        r = root(G, name) if name else None
        if r is None:
            return None
        shape = consts[r].shape
        return r if shape is not None and sum(1 for d in shape if d > 1) >= 2 else None

    def op(name: str) -> Optional[dict]:
        key = producers.get(name)
        return nodes[key] if key is not None else None

    for key in G.graph["order"]:  # one pass: a node's inputs are static or not by then
        nd = nodes[key]
        ins = nd["inputs"]
        op_type = nd["op_type"]
        if bias or trig:
            if op_type in _SHAPE_ONLY:  # a shape, not a value, of what it reads: a batch Expand's
                static.update(n for n in nd["outputs"] if n)
            for n in ins:  # most nodes fail at their first input: an activation
                if n and n not in static:
                    break
            else:
                if any(ins) and not nd["subgraphs"] and op_type not in RANDOM_OPS:
                    static.update(n for n in nd["outputs"] if n)
        if ((trig and (op_type == "Sin" or op_type == "Cos")) or (bias and op_type == "Softmax")) and ins and \
                ins[0] in static and nd["domain"] in ("", "ai.onnx"):
            shape = tensors.get(ins[0], (None, 0))[0]
            if shape is not None and sum(1 for d in shape if isinstance(d, int) and d > 1) >= 2:
                r = root(G, ins[0])
                sinusoid = op_type != "Softmax"
                for t in [r] if r is not None else _built_from(G, ins[0], root, scales=sinusoid):
                    found.setdefault(t, SINUSOID if sinusoid else POSITIONAL_ATTENTION)
            continue
        if (op_type != "Add" and op_type != "Sub") or len(ins) != 2 or nd["domain"] not in ("", "ai.onnx"):
            continue
        if rotary:
            muls = [op(n) for n in ins]
            if all(m is not None and m["op_type"] == "Mul" and len(m["inputs"]) == 2 for m in muls):
                tables = [_activation_times_table(m, table, root, G) for m in muls]
                if all(t is not None for t in tables):
                    for t in tables:
                        found[t] = ROTARY
        if bias and op_type == "Add":
            for i, name in enumerate(ins):
                shape = tensors.get(name, (None, 0))[0]  # as added, after any reshape
                other = ins[1 - i]
                if name not in static or other in static or shape is None or len(shape) < 2 or \
                        not (isinstance(shape[-1], int) and shape[-1] > 1 and isinstance(shape[-2], int)) or \
                        not (_from_scores(G, other, op) and _to_softmax(G, key)):
                    continue
                t = root(G, name)
                if t is not None:
                    if consts[t].numel is None or consts[t].numel > 1:
                        found[t] = ATTENTION_BIAS
                    continue
                for t in _built_from(G, name, root):
                    found.setdefault(t, ATTENTION_BIAS)
    return found


def _fed_constants(G: Graph, root: Callable[[Graph, str], Optional[str]], found: Dict[str, str]) -> None:
    """The constants that reach an input of :data:`_FED` (through the ops that may make it)."""
    producers, nodes = G.graph["producers"], G.nodes
    for _, nd in G.nodes(data=True):
        if nd["op_type"] not in _FED_OPS or nd["domain"] not in ("", "ai.onnx"):
            continue
        for i, name in enumerate(nd["inputs"]):
            what = _FED.get((nd["op_type"], i))
            if what is None or not name:
                continue
            stack, seen = [name], set()
            while stack and len(seen) < _MAX_FED:
                t = stack.pop()
                if t in seen:
                    continue
                seen.add(t)
                r = root(G, t)
                if r is not None:
                    found.setdefault(r, what)
                    continue
                key = producers.get(t)
                src = nodes[key] if key is not None else None
                if src is not None and src["op_type"] in _FEEDERS[what] and src["domain"] in ("", "ai.onnx"):
                    stack += [n for n in src["inputs"] if n]


def _group_norm_units(G: Graph, root: Callable[[Graph, str], Optional[str]], found: Dict[str, str]) -> None:
    """The scale and bias of each InstanceNormalization that reads a Reshape's output and
    whose output only a Reshape reads: a group norm's core (see the module docstring)."""
    producers, consumers, nodes = G.graph["producers"], G._succ, G.nodes
    for key, nd in G.nodes(data=True):
        if nd["op_type"] != "InstanceNormalization" or nd["domain"] not in ("", "ai.onnx") or len(nd["inputs"]) < 3:
            continue
        src = producers.get(nd["inputs"][0])
        after = list(consumers.get(key, ()))
        if src is None or nodes[src]["op_type"] != "Reshape" or len(after) != 1 or \
                nodes[after[0]]["op_type"] != "Reshape":
            continue
        for name in nd["inputs"][1:3]:
            r = root(G, name) if name else None
            if r is not None:
                found.setdefault(r, GROUP_NORM_UNIT)


def _standardization_units(G: Graph, root: Callable[[Graph, str], Optional[str]], found: Dict[str, str]) -> None:
    """The scale and bias, not named as a module's tensors, of each BatchNormalization that
    normalizes a weight (its input a constant, re-arranged) into a weight position: a weight
    standardization's unit affine (see the module docstring)."""
    for key, nd in G.nodes(data=True):
        ins = nd["inputs"]
        if nd["op_type"] != "BatchNormalization" or nd["domain"] not in ("", "ai.onnx") or not ins or \
                root(G, ins[0]) is None or not _into_weight(G, key):
            continue
        for name in ins[1:3]:
            r = root(G, name) if name else None
            if r is not None and not module_tensor_name(r):
                found.setdefault(r, STANDARDIZATION_UNIT)


_FIRST_NODES = 256  # how far into the graph an input's normalization is looked for


def _input_normalization(G: Graph, root: Callable[[Graph, str], Optional[str]], found: Dict[str, str]) -> None:
    """The mean and the scale a graph input is normalized by (see the module docstring)."""
    consts, nodes = G.graph["constants"], G.nodes
    # the tensors followed -> None (not centered yet), "" (centered by a Sub: a table), or the
    # constant an Add centered it by (a table only if a Div or Mul by a vector follows)
    centered: Dict[str, Optional[str]] = {name: None for name in G.graph["inputs"]}
    for key in G.graph["order"][:_FIRST_NODES]:
        nd = nodes[key]
        ins, op = nd["inputs"], nd["op_type"]
        x = next((i for i, n in enumerate(ins[:2]) if n in centered), None)
        if x is None or not nd["outputs"] or nd["domain"] not in ("", "ai.onnx"):
            continue
        mean, out = centered[ins[x]], nd["outputs"][0]
        if op in TRANSPARENT:
            if x == 0:
                centered[out] = mean
            continue
        r = root(G, ins[1 - x]) if op in _ELEMENTWISE and len(ins) == 2 else None
        shape = consts[r].shape if r is not None else None
        if shape is None or sum(1 for d in shape if d > 1) > 1:
            continue
        if all(d == 1 for d in shape):
            centered[out] = mean  # a rescale by one number (1/255)
        elif mean is None and op == "Sub" and x == 0:
            found.setdefault(r, INPUT_NORMALIZATION)
            centered[out] = ""
        elif mean is None and op == "Add":
            centered[out] = r
        elif mean is not None and (op == "Mul" or (op == "Div" and x == 0)):
            for t in (mean, r):
                if t:
                    found.setdefault(t, INPUT_NORMALIZATION)


# Inputs in weight position: (op type, input index) that a learned tensor fills.
_WEIGHT_POSITION = {("MatMul", 1), ("Gemm", 1), ("Gemm", 2), ("Conv", 1), ("Conv", 2),
                    ("ConvTranspose", 1), ("ConvTranspose", 2), ("Gather", 0), ("GatherElements", 0),
                    ("GatherND", 0), ("LayerNormalization", 1), ("LayerNormalization", 2),
                    ("PRelu", 1)}
_ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div"})
_SUMS = frozenset({"Add", "Sub"})

# Ops that only move, pick or resample what they read: a learned table that reaches a weight
# position through them (BEiT's relative position table, sliced and interpolated to the window
# before its Gather) is still that learned table.
_MOVES = frozenset({"Slice", "Reshape", "Transpose", "Resize", "Concat", "Squeeze", "Unsqueeze", "Pad", "Cast",
                    "Identity", "Flatten", "Expand", "Tile", "Gather"})
_SHAPE_ONLY = frozenset({"Shape", "Size"})


def _built_from(G: Graph, name: str, root, scales: bool = False) -> List[str]:
    """The constants in data position of the input-independent computation of ``name``: not
    those in weight position, nor those that reach one through ops that only move data, nor the
    smaller operand of an elementwise op (a bias or a scale; with ``scales``, only of an Add or
    a Sub: a sinusoid's frequencies divide or multiply)."""
    consts, producers, tensors = G.graph["constants"], G.graph["producers"], G.graph["tensors"]
    out: List[str] = []
    stack, seen = [(name, False)], set()  # (tensor, whether it only moves data into a weight position)
    while stack:
        t, weight = stack.pop()
        if (t, weight) in seen or t in consts:
            continue
        seen.add((t, weight))
        key = producers.get(t)
        if key is None:
            continue
        nd = G.nodes[key]
        if nd["op_type"] in _SHAPE_ONLY:
            continue  # it reads its input's shape, none of its values
        moves = weight and nd["op_type"] in _MOVES
        sizes = [numel(tensors.get(n, (None, 0))[0]) for n in nd["inputs"]]
        for j, inp in enumerate(nd["inputs"]):
            if not inp:
                continue
            at_weight = (nd["op_type"], j) in _WEIGHT_POSITION
            r = root(G, inp)
            if r is None:
                stack.append((inp, at_weight or moves))
                continue
            if at_weight or moves:
                continue
            smaller = len(sizes) == 2 and sizes[j] is not None and sizes[1 - j] is not None and \
                sizes[j] < sizes[1 - j]
            if smaller and nd["op_type"] in (_SUMS if scales else _ELEMENTWISE):
                continue  # the smaller operand: a bias or a scale
            out.append(r)
    return out


def _into_weight(G: Graph, key) -> bool:
    """Node ``key``'s first output is a weight: it reaches a weight position through ops that
    only move data."""
    frontier, nodes = [(key, G.nodes[key]["outputs"][0])], G.nodes
    for _ in range(_MAX_HOPS):
        nxt = []
        for k, tensor in frontier:
            for user in G.successors(k):
                nd = nodes[user]
                for j, name in enumerate(nd["inputs"]):
                    if name != tensor:
                        continue
                    if (nd["op_type"], j) in _WEIGHT_POSITION:
                        return True
                    if nd["op_type"] in _MOVES and j == 0 and nd["outputs"]:
                        nxt.append((user, nd["outputs"][0]))
        if not nxt:
            return False
        frontier = nxt
    return False


def _activation_times_table(mul: dict, table, root, G: Graph) -> Optional[str]:
    a, b = mul["inputs"]
    for x, y in ((a, b), (b, a)):
        t = table(y)
        if t is not None and root(G, x) is None:
            return t
    return None


def _from_scores(G: Graph, name: str, op) -> bool:
    """``name`` is attention scores: a MatMul's (or an Einsum's) output, through scaling and
    earlier Adds (on whichever operand is not a constant)."""
    frontier = [name]
    for _ in range(_MAX_HOPS):
        nxt = []
        for t in frontier:
            nd = op(t)
            if nd is None:
                continue
            if nd["op_type"] in ("MatMul", "Einsum"):
                return True
            if nd["op_type"] in _SCORE_PATH:
                nxt += [n for n in nd["inputs"][:2] if n and n not in G.graph["constants"]]
        if not nxt:
            return False
        frontier = nxt
    return False


def _to_softmax(G: Graph, key: str) -> bool:
    """Node ``key``'s output reaches a Softmax through reshapes, masks and further Adds."""
    frontier: List[str] = [key]
    for _ in range(_MAX_HOPS):
        nxt: List[str] = []
        for k in frontier:
            for user in G.successors(k):
                op_type = G.nodes[user]["op_type"]
                if op_type in ("Softmax", "LogSoftmax"):
                    return True
                if op_type in _SCORE_PATH:
                    nxt.append(user)
        if not nxt:
            return False
        frontier = nxt
    return False
