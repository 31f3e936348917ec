"""The models of the LLM benchmark, built at run time (nothing is downloaded), with hand counts.

* the 1.3 B decoder of the tests (``tests.builders.DecoderConfig()``), weights in a sparse file;
* a 7B-shaped decoder: 32 layers, hidden 4096, 32 heads, FFN 11008, vocab 32000 (the same
  GPT-style block, so two FFN matrices, not LLaMA's three: 5.17 B parameters, 20.7 GB of holes);
* ResNet-50 from the onnx wheel (``light_resnet50.onnx``), counted by hand below;
* a BERT-base-shaped encoder built here with onnx.helper, weights inline (438 MB).

Every hand count is arithmetic on the architecture, never the output of an analyzer.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.builders import DecoderConfig, build_decoder

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64
LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
SEQ = 128

DECODER_1B3 = DecoderConfig()  # 24 x 2048, FFN 8192, vocab 50257: 1,315,723,264 parameters
DECODER_7B = DecoderConfig(layers=32, hidden=4096, heads=32, ffn=11008, vocab=32000)


@dataclass(frozen=True)
class BertConfig:
    """A BERT-base encoder: word, position and token-type embeddings, post-LN blocks, pooler."""

    layers: int = 12
    hidden: int = 768
    heads: int = 12
    ffn: int = 3072
    vocab: int = 30522
    positions: int = 512
    types: int = 2

    @property
    def params(self) -> int:
        """Hand count: embeddings + embedding LN + per block (Q, K, V, out, 2 LN, 2 FFN) + pooler."""
        H, F = self.hidden, self.ffn
        block = (4 * (H * H + H)       # Q, K, V and output projections, weight + bias
                 + 2 * 2 * H           # two LayerNorms, scale + bias
                 + H * F + F           # intermediate weight + bias
                 + F * H + H)          # output weight + bias
        return (self.vocab + self.positions + self.types) * H + 2 * H + self.layers * block + H * H + H

    def macs(self, seq: int, batch: int = 1) -> int:
        """Hand count: per block Q, K, V, out 4*S*H*H, Q*K^T and P*V 2*S*S*H, FFN 2*S*H*F;
        then the pooler H*H on the first token."""
        H, F, S = self.hidden, self.ffn, seq
        return batch * (self.layers * (4 * S * H * H + 2 * S * S * H + 2 * S * H * F) + H * H)


BERT_BASE = BertConfig()  # 109,482,240 parameters, the published BERT-base count


def resnet50_counts() -> Tuple[int, int]:
    """(parameters, MACs) of ResNet-50 at 224x224, by hand from the architecture.

    Convolutions have no bias; each is followed by a BatchNorm whose scale and shift are
    parameters (its running statistics are buffers). The stride of a stage's first block is in
    its 3x3 convolution and in the 1x1 projection of its shortcut. One MAC per weight per output
    position; BatchNorm, ReLU, pooling and the residual adds cost no MACs.
    """
    params = macs = 0

    def conv(cin: int, cout: int, k: int, out_hw: int) -> None:
        nonlocal params, macs
        params += cin * cout * k * k + 2 * cout  # weight + BatchNorm scale and shift
        macs += out_hw * out_hw * cout * cin * k * k

    conv(3, 64, 7, 112)
    cin = 64
    for width, blocks, hw in ((64, 3, 56), (128, 4, 28), (256, 6, 14), (512, 3, 7)):
        for b in range(blocks):
            first_hw = hw * 2 if b == 0 and width != 64 else hw  # the 1x1 before the strided 3x3
            conv(cin, width, 1, first_hw)
            conv(width, width, 3, hw)
            conv(width, 4 * width, 1, hw)
            if b == 0:
                conv(cin, 4 * width, 1, hw)  # projection shortcut
            cin = 4 * width
    params += 2048 * 1000 + 1000  # fully connected classifier, weight + bias
    macs += 2048 * 1000
    return params, macs


def build_bert(cfg: BertConfig, folder: str, name: str = "bert.onnx", seed: int = 0) -> str:
    """Write a BERT-shaped encoder with inline float32 weights to ``folder``; return its path.

    Inputs ``input_ids``, ``token_type_ids`` and ``attention_mask`` are ``[batch, seq]`` int64;
    outputs are the last hidden state and the pooled first token, as Hugging Face exports them:
    Gather embeddings, LayerNormalization, MatMul + Add, Softmax, GELU as ``0.5*x*(1+Erf(x/sqrt 2))``.
    """
    H, F, heads = cfg.hidden, cfg.ffn, cfg.heads
    hd = H // heads
    rng = np.random.default_rng(seed)
    inits: List[TensorProto] = []
    nodes: List[onnx.NodeProto] = []

    def w(n: str, shape, value=None) -> str:
        if value is None:
            array = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
        else:
            array = np.full(shape, value, dtype=np.float32)
        inits.append(numpy_helper.from_array(array, n))
        return n

    def const(n: str, values, dtype=np.int64) -> str:
        inits.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), n))
        return n

    def node(op: str, ins, outs=None, **attrs) -> str:
        out = outs or [f"{op.lower()}_{len(nodes)}"]
        nodes.append(helper.make_node(op, ins, out, name=f"{op}_{len(nodes)}", **attrs))
        return out[0]

    def linear(x: str, p: str, n_in: int, n_out: int) -> str:
        return node("Add", [node("MatMul", [x, w(p + ".w", (n_in, n_out))]), w(p + ".b", (n_out,))])

    def layer_norm(x: str, p: str) -> str:
        return node("LayerNormalization", [x, w(p + ".g", (H,), 1.0), w(p + ".b", (H,), 0.0)],
                    axis=-1, epsilon=1e-12)

    heads_shape = const("heads_shape", [0, 0, heads, hd])
    merge_shape = const("merge_shape", [0, 0, H])
    zero, one, idx1 = const("zero", 0), const("one", 1), const("idx1", 1)
    mask_axes = const("mask_axes", [1, 2])
    for n, v in (("sqrt_hd", hd ** 0.5), ("mask_one", 1.0), ("mask_big", -10000.0),
                 ("sqrt2", 2 ** 0.5), ("half", 0.5), ("f_one", 1.0)):
        const(n, v, np.float32)

    # embeddings: word + position + token type, then LayerNorm
    seq_len = node("Gather", [node("Shape", ["input_ids"]), idx1], axis=0)
    positions = node("Range", [zero, seq_len, one])
    x = node("Add", [node("Gather", [w("word_emb", (cfg.vocab, H)), "input_ids"]),
                     node("Gather", [w("pos_emb", (cfg.positions, H)), positions])])
    x = node("Add", [x, node("Gather", [w("type_emb", (cfg.types, H)), "token_type_ids"])])
    x = layer_norm(x, "emb_ln")
    # additive mask [batch, 1, 1, seq]: 0 where attended, -10000 where masked
    mask = node("Cast", [node("Unsqueeze", ["attention_mask", mask_axes])], to=FLOAT)
    mask = node("Mul", [node("Sub", ["mask_one", mask]), "mask_big"])

    for i in range(cfg.layers):
        p = f"layer{i}."
        q, k, v = (node("Transpose", [node("Reshape", [linear(x, p + t, H, H), heads_shape])], perm=[0, 2, 1, 3])
                   for t in ("q", "k", "v"))
        scores = node("Div", [node("MatMul", [q, node("Transpose", [k], perm=[0, 1, 3, 2])]), "sqrt_hd"])
        probs = node("Softmax", [node("Add", [scores, mask])], axis=-1)
        ctx = node("Reshape", [node("Transpose", [node("MatMul", [probs, v])], perm=[0, 2, 1, 3]), merge_shape])
        x = layer_norm(node("Add", [linear(ctx, p + "attn_out", H, H), x]), p + "ln1")
        h = linear(x, p + "ffn_in", H, F)
        erf = node("Erf", [node("Div", [h, "sqrt2"])])
        h = node("Mul", [node("Mul", [h, node("Add", [erf, "f_one"])]), "half"])
        x = layer_norm(node("Add", [linear(h, p + "ffn_out", F, H), x]), p + "ln2")
    node("Identity", [x], ["last_hidden_state"])
    first = node("Gather", [x, zero], axis=1)  # [batch, H]: the [CLS] token
    node("Tanh", [linear(first, "pooler", H, H)], ["pooler_output"])

    ids = [helper.make_tensor_value_info(n, INT64, ["batch", "seq"])
           for n in ("input_ids", "token_type_ids", "attention_mask")]
    outs = [helper.make_tensor_value_info("last_hidden_state", FLOAT, ["batch", "seq", H]),
            helper.make_tensor_value_info("pooler_output", FLOAT, ["batch", H])]
    graph = helper.make_graph(nodes, "bert", ids, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="onnxscore-benchmarks")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    onnx.save_model(model, path)
    return path


@dataclass(frozen=True)
class BenchModel:
    """One model of the benchmark: where it is, the dims to bind, and its hand counts."""

    name: str
    path: str
    params: int
    macs: int
    dims: Dict[str, int] = field(default_factory=dict)
    large: bool = False  # a decoder whose weights onnx-tool would read (skipped by --quick)
    data_file: Optional[str] = None  # the external data, if any
    notes: Tuple[str, ...] = ()  # what explains another tool's different count

    def describe(self) -> str:
        """File sizes, e.g. ``model 67 KB + sparse data 5.26 GB (0 bytes allocated)``."""
        text = f"model {_size(os.path.getsize(self.path))}"
        if self.data_file:
            st = os.stat(self.data_file)
            text += f" + sparse data {_size(st.st_size)} ({_size(st.st_blocks * 512)} allocated on disk)"
        return text


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def decoder(name: str, cfg: DecoderConfig, folder: str) -> BenchModel:
    """A decoder of ``tests.builders`` written to ``folder`` with its sparse data file."""
    path = build_decoder(cfg, folder)
    return BenchModel(name, path, cfg.params, cfg.macs(SEQ), {"batch": 1, "seq": SEQ}, large=True,
                      data_file=os.path.join(folder, "decoder.bin"), notes=(ONNX_TOOL_SHAPES, ONNX_TOOL_MACS))


ONNX_TOOL_SHAPES = ("onnx-tool counts the int64 shape constants of the two Reshapes as parameters "
                    "(4 + 3 elements)")
ONNX_TOOL_SHAPES_BERT = ("onnx-tool counts the int64 shape constants of the two Reshapes and of the mask's "
                         "Unsqueeze as parameters (4 + 3 + 2 elements)")
ONNX_TOOL_MACS = ("onnx-tool also counts elementwise ops, normalisation, Softmax, activations and pooling "
                  "as MACs; onnxscore and the hand counts count the multiply-adds of Conv/MatMul/Gemm only "
                  "(the rest is in onnxscore's FLOPs)")
RESNET_LIGHT = ("the light model's weights are ConstantOfShape outputs, not initializers: onnx-tool "
                "counts initializers only (here the Reshape shape), onnxscore counts both")


def build_models(folder: str, include_7b: bool = True) -> List[BenchModel]:
    """Build (or locate) every benchmark model under ``folder``, in the order they are run."""
    dims = {"batch": 1, "seq": SEQ}
    models = [decoder("decoder 1.3B", DECODER_1B3, os.path.join(folder, "decoder-1.3b"))]
    if include_7b:
        models.append(decoder("decoder 7B-shaped", DECODER_7B, os.path.join(folder, "decoder-7b")))
    resnet_params, resnet_macs = resnet50_counts()
    models.append(BenchModel("ResNet-50", os.path.join(LIGHT, "light_resnet50.onnx"), resnet_params, resnet_macs,
                             notes=(RESNET_LIGHT, ONNX_TOOL_MACS)))
    models.append(BenchModel("BERT-base", build_bert(BERT_BASE, os.path.join(folder, "bert")),
                             BERT_BASE.params, BERT_BASE.macs(SEQ), dims,
                             notes=(ONNX_TOOL_SHAPES_BERT, ONNX_TOOL_MACS)))
    return models
