"""Synthetic models built with onnx.helper for the whole-pipeline tests."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import onnx
from onnx import TensorProto, helper, numpy_helper
import numpy as np

FLOAT = TensorProto.FLOAT


@dataclass(frozen=True)
class DecoderConfig:
    """A GPT-style decoder: learned positions, pre-LN blocks, tied LM head."""

    layers: int = 24
    hidden: int = 2048
    heads: int = 16
    ffn: int = 8192
    vocab: int = 50257
    positions: int = 2048

    @property
    def params(self) -> int:
        """Hand count: embeddings + per block (2 LN, QKV, out proj, 2 FFN) + final LN."""
        H, F = self.hidden, self.ffn
        block = (2 * H                 # ln1 scale + bias
                 + H * 3 * H + 3 * H   # qkv weight + bias
                 + H * H + H           # output projection weight + bias
                 + 2 * H               # ln2 scale + bias
                 + H * F + F           # fc1 weight + bias
                 + F * H + H)          # fc2 weight + bias
        return self.vocab * H + self.positions * H + self.layers * block + 2 * H

    def macs(self, seq: int, batch: int = 1, past: int = 0) -> int:
        """Hand count of multiply-adds for ``batch`` x ``seq`` new tokens after ``past`` cached.

        Per block: QKV S*H*3H, Q*K^T heads*S*(P+S)*hd = S*(P+S)*H, P*V S*(P+S)*H, out proj
        S*H*H, fc1 S*H*F, fc2 S*F*H; then the tied LM head S*H*V.
        """
        H, F, S, P = self.hidden, self.ffn, seq, past
        block = S * H * 3 * H + 2 * S * (P + S) * H + S * H * H + 2 * S * H * F
        return batch * (self.layers * block + S * H * self.vocab)


def _external(name: str, shape, location: str, offset: int) -> TensorProto:
    t = TensorProto(name=name, data_type=FLOAT, dims=list(shape))
    length = int(np.prod(shape)) * 4
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        t.external_data.add(key=key, value=str(value))
    t.data_location = TensorProto.EXTERNAL
    return t


def build_decoder(cfg: DecoderConfig, folder: str, name: str = "decoder.onnx",
                  data_name: str = "decoder.bin", write_data: bool = True, kv_cache: bool = False,
                  opset: int = 17) -> str:
    """Write the model to ``folder`` with all weights in one sparse external file; return its path.

    The data file is only ``truncate``d to its size (a hole, no bytes written), which is
    enough for a file that no correct analyzer reads. Opset 17 as PyTorch exports it: Split by
    sizes, GELU as x * 0.5 * (1 + erf(x / sqrt 2)); from opset 20 the Gelu op. With ``kv_cache`` the model takes
    ``position_ids`` and per-layer ``past_key_i``/``past_value_i`` of shape
    [batch, heads, past, head_dim] and returns the present ones (as Hugging Face exports do).
    """
    H, F, heads = cfg.hidden, cfg.ffn, cfg.heads
    hd = H // heads
    inits, nodes = [], []
    offset = 0

    def w(n, shape):
        nonlocal offset
        inits.append(_external(n, shape, data_name, offset))
        offset += int(np.prod(shape)) * 4
        return n

    def const(n, values):
        inits.append(numpy_helper.from_array(np.asarray(values, dtype=np.int64), n))
        return n

    def node(op, ins, outs=None, **attrs):
        out = outs or [f"{op.lower()}_{len(nodes)}"]
        nodes.append(helper.make_node(op, ins, out, name=f"{op}_{len(nodes)}", **attrs))
        return out[0]

    wte, wpe = w("wte", (cfg.vocab, H)), w("wpe", (cfg.positions, H))
    # Reshape(-1) as exporters write them: the sequence length and the merged width are inferred
    heads_shape = const("heads_shape", [0, -1, heads, hd])
    merge_shape = const("merge_shape", [0, 0, -1])
    zero, one, idx1 = const("zero", 0), const("one", 1), const("idx1", 1)
    inits.append(numpy_helper.from_array(np.asarray(hd ** -0.5, dtype=np.float32), "scale"))
    split_sizes = const("split_sizes", [H, H, H])
    for value, label in ((0.5, "half"), (1.0, "one_f"), (2 ** 0.5, "sqrt2")):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), label))

    def gelu(x):
        if opset >= 20:
            return node("Gelu", [x])
        erf = node("Erf", [node("Div", [x, "sqrt2"])])
        return node("Mul", [node("Mul", [x, "half"]), node("Add", [erf, "one_f"])])

    if kv_cache:
        positions = "position_ids"
    else:
        seq_len = node("Gather", [node("Shape", ["input_ids"]), idx1], axis=0)
        positions = node("Range", [zero, seq_len, one])
    x = node("Add", [node("Gather", [wte, "input_ids"]), node("Gather", [wpe, positions])])
    cache_io = []
    for i in range(cfg.layers):
        p = f"h{i}."
        h = node("LayerNormalization", [x, w(p + "ln1.g", (H,)), w(p + "ln1.b", (H,))], axis=-1)
        qkv = node("Add", [node("MatMul", [h, w(p + "qkv.w", (H, 3 * H))]), w(p + "qkv.b", (3 * H,))])
        q, k, v = (f"{p}{t}" for t in "qkv")
        if opset >= 18:
            node("Split", [qkv], [q, k, v], axis=-1, num_outputs=3)
        else:
            node("Split", [qkv, split_sizes], [q, k, v], axis=-1)
        q, k, v = (node("Transpose", [node("Reshape", [t, heads_shape])], perm=[0, 2, 1, 3]) for t in (q, k, v))
        if kv_cache:  # present = Concat(past, current) along the sequence axis
            k = node("Concat", [f"past_key_{i}", k], [f"present_key_{i}"], axis=2)
            v = node("Concat", [f"past_value_{i}", v], [f"present_value_{i}"], axis=2)
            cache_io.append(i)
        scores = node("Mul", [node("MatMul", [q, node("Transpose", [k], perm=[0, 1, 3, 2])]), "scale"])
        ctx = node("MatMul", [node("Softmax", [scores], axis=-1), v])
        merged = node("Reshape", [node("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_shape])
        attn = node("Add", [node("MatMul", [merged, w(p + "proj.w", (H, H))]), w(p + "proj.b", (H,))])
        x = node("Add", [x, attn])
        h = node("LayerNormalization", [x, w(p + "ln2.g", (H,)), w(p + "ln2.b", (H,))], axis=-1)
        h = gelu(node("Add", [node("MatMul", [h, w(p + "fc1.w", (H, F))]), w(p + "fc1.b", (F,))]))
        h = node("Add", [node("MatMul", [h, w(p + "fc2.w", (F, H))]), w(p + "fc2.b", (H,))])
        x = node("Add", [x, h])
    x = node("LayerNormalization", [x, w("lnf.g", (H,)), w("lnf.b", (H,))], axis=-1)
    node("MatMul", [x, node("Transpose", [wte], perm=[1, 0])], ["logits"])

    cache = ["batch", heads, "past", hd]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])]
    outputs = [helper.make_tensor_value_info("logits", FLOAT, ["batch", "seq", cfg.vocab])]
    if kv_cache:
        inputs.append(helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "seq"]))
        for i in cache_io:
            inputs += [helper.make_tensor_value_info(f"past_{t}_{i}", FLOAT, cache) for t in ("key", "value")]
            outputs += [helper.make_tensor_value_info(f"present_{t}_{i}", FLOAT, [None] * 4) for t in ("key", "value")]
    graph = helper.make_graph(nodes, "decoder", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="onnxscore-tests")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    onnx.save_model(model, path)  # tensors already point at external data: nothing is written for them
    if write_data:
        with open(os.path.join(folder, data_name), "wb") as f:
            f.truncate(offset)
    return path


def strip_cache(data: dict) -> dict:
    """A study's JSON (``Study.to_dict()``) without what says where the figures came from: the
    rows' ``cached`` flags and the analyzed and cached counts (a copy)."""
    data = json.loads(json.dumps(data))
    for row in data["rows"]:
        row.pop("cached")
    data["counts"].pop("analyzed")
    data["counts"].pop("cached")
    return data
