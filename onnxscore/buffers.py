"""Tables an exporter computed, which torch keeps as buffers: not parameters.

Exporters write torch buffers (rotary sin/cos tables, attention masks, position-bias tables
expanded by a constant index) as initializers or Constant nodes, exactly as they write learned
weights. Nothing in the file marks the difference, and weight bytes are never read, so the
rule is structural: a constant is a **computed table** when the graph uses it the way only
such tables are used.

* **Rotary tables.** ``x * cos + rotate_half(x) * sin``: an Add (or Sub) of two Muls, each an
  activation times a constant table of at least two dims longer than 1 (positions x features).
  A learned scale (LayerScale's gamma, a gate) is one vector, never a pair of such tables.
* **Attention biases and masks.** A constant added to attention scores: the Add sits between
  a MatMul (Q x K^T, maybe scaled by a Mul or Div) and the Softmax that reads it (maybe through
  Reshapes and further Adds), and its last two dims are equal and longer than 1 (one entry per
  query and key). Shifted-window masks (0 / -100), causal masks (0 / -inf) and Swin's relative
  position bias once the exporter has expanded the learned [(2W-1)^2, heads] table by its
  constant index into [heads, W*W, W*W] are all of this kind. When the exporter keeps the
  Gather (table, constant index), the table itself is read by the Gather and counted as the
  parameter it is; only its expanded copy is a buffer.

Learned tensors used in other ways (an absolute position embedding added to the tokens, a
class token, every weight of a contraction) are untouched.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

from onnxscore.digraph import Graph

ROTARY = "rotary table"
ATTENTION_BIAS = "attention bias or mask"
# Ops between an attention score MatMul and its Softmax that keep the scores' meaning.
_SCORE_PATH = frozenset({"Mul", "Div", "Add", "Reshape", "Cast", "Identity", "Where"})
_MAX_HOPS = 8


def computed_tables(G: Graph, root: Callable[[Graph, str], Optional[str]]) -> Dict[str, str]:
    """Constant name -> why it is a computed table, for the constants of ``G`` (``root`` finds
    the constant a tensor is, looking through casts and reshapes)."""
    consts = G.graph["constants"]
    producers = G.graph["producers"]
    found: Dict[str, str] = {}

    def table(name: str) -> Optional[str]:
        r = root(G, name) if name else None
        if r is None:
            return None
        shape = consts[r].shape
        return r if shape is not None and sum(1 for d in shape if d > 1) >= 2 else None

    def op(name: str) -> Optional[dict]:
        key = producers.get(name)
        return G.nodes[key] if key is not None else None

    for key in G.graph["order"]:
        nd = G.nodes[key]
        if nd["domain"] not in ("", "ai.onnx"):
            continue
        if nd["op_type"] in ("Add", "Sub") and len(nd["inputs"]) == 2:
            muls = [op(n) for n in nd["inputs"]]
            if all(m is not None and m["op_type"] == "Mul" and len(m["inputs"]) == 2 for m in muls):
                tables = [_activation_times_table(m, table, root, G) for m in muls]
                if all(t is not None for t in tables):
                    for t in tables:
                        found[t] = ROTARY
        if nd["op_type"] == "Add" and len(nd["inputs"]) == 2:
            for i, name in enumerate(nd["inputs"]):
                t = table(name)
                other = nd["inputs"][1 - i]
                if t is None or root(G, other) is not None:
                    continue
                shape = consts[t].shape
                if len(shape) >= 2 and shape[-1] == shape[-2] > 1 and \
                        _from_scores(G, other, op) and _to_softmax(G, key):
                    found[t] = ATTENTION_BIAS
    return found


def _activation_times_table(mul: dict, table, root, G: Graph) -> Optional[str]:
    a, b = mul["inputs"]
    for x, y in ((a, b), (b, a)):
        t = table(y)
        if t is not None and root(G, x) is None:
            return t
    return None


def _from_scores(G: Graph, name: str, op) -> bool:
    """``name`` is attention scores: a MatMul's output, through scaling and earlier Adds."""
    for _ in range(_MAX_HOPS):
        nd = op(name)
        if nd is None:
            return False
        if nd["op_type"] == "MatMul":
            return True
        if nd["op_type"] not in _SCORE_PATH or not nd["inputs"]:
            return False
        name = nd["inputs"][0]
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
