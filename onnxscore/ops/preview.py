"""Ops of the preview domains: FlexAttention (ai.onnx.preview) and the optimizer steps and
Gradient of ai.onnx.preview.training.

Optimizer FLOPs are per element of each optimized tensor X, read off the pseudo code of the
ONNX spec; the scalar learning-rate arithmetic, done once per node, is added as a constant.
"""
from __future__ import annotations

from onnxscore.ops.elementwise import SOFTMAX_FLOPS
from onnxscore.ops.registry import CONTROL, Cost, Ctx, UnknownShape, rule

PREVIEW = "ai.onnx.preview"
TRAINING = "ai.onnx.preview.training"

# Adagrad per element: G_reg = nc*X + G (2), H_new = H + G_reg^2 (2), sqrt(H_new) + eps (2),
# X_new = X - r * G_reg / H_adaptive (3).
ADAGRAD_FLOPS = 9
# Adagrad once: r = R / (1 + T * decay_factor): mul, add, div.
ADAGRAD_SCALAR_FLOPS = 3
# Adam per element: G_reg (2), V_new = a*V + (1-a)*G_reg (3), H_new = b*H + (1-b)*G_reg^2 (4),
# H_sqrt = sqrt(H_new) + eps (2), X_new = X - R_adj * V_new / H_sqrt (3), X_final = c*X_new (1).
ADAM_FLOPS = 15
# Adam once: R_adjusted = R * sqrt(1 - beta**T) / (1 - alpha**T): 2 pow, 2 sub, sqrt, mul, div.
ADAM_SCALAR_FLOPS = 7
# Momentum per element: G_reg (2), V_new = a*V + b*G_reg (3), X_new = X - R*V_new (2);
# Nesterov's X_new = X - R*(G_reg + a*V_new) costs 4 instead of 2.
MOMENTUM_FLOPS = 7
NESTEROV_FLOPS = 9

# FlexAttention scales each score once: Scores = (Q @ K^T) * scale.
SCORE_SCALE_FLOPS = 1

# Inputs after R and T come in groups: (X..., G..., H...) or (X..., G..., V..., H...).
_GROUPS = {"Adagrad": 3, "Momentum": 3, "Adam": 4}


def _optimized_elements(ctx: Ctx) -> int:
    n = (len(ctx.inputs) - 2) // _GROUPS[ctx.op_type]
    return sum(ctx.in_numel(2 + i) for i in range(n))


@rule("Adagrad", "Adam", "Momentum", kind="training", domain=TRAINING, roles={0: CONTROL, 1: CONTROL})
def optimizer(ctx: Ctx) -> Cost:
    """One optimizer step: per-element FLOPs of the spec's pseudo code over every optimized X."""
    n = _optimized_elements(ctx)
    if ctx.op_type == "Adagrad":
        return Cost.of_flops(ADAGRAD_FLOPS * n + ADAGRAD_SCALAR_FLOPS)
    if ctx.op_type == "Adam":
        return Cost.of_flops(ADAM_FLOPS * n + ADAM_SCALAR_FLOPS)
    nesterov = ctx.attr("mode", "standard") == "nesterov"
    return Cost.of_flops((NESTEROV_FLOPS if nesterov else MOMENTUM_FLOPS) * n)


@rule("Gradient", kind="training", domain=TRAINING)
def gradient(ctx: Ctx) -> Cost:
    """The backward pass of a part of the graph: not knowable from this node alone (unknown)."""
    raise UnknownShape(["Gradient backward-pass cost"], ctx.name)


@rule("FlexAttention", kind="attention", domain=PREVIEW)
def flex_attention(ctx: Ctx) -> Cost:
    """Attention with optional score_mod / prob_mod subgraphs over the whole score tensor.

    MACs = B * q_heads * q_seq * kv_seq * (head + v_head) for Q*K^T and P*V; FLOPs add the
    scaling of each score, the softmax, and the cost of each modifier subgraph (run once).
    """
    b, q_heads, q_seq, head = ctx.in_shape(0)
    kv_seq = ctx.in_shape(1)[2]
    v_head = ctx.in_shape(2)[3]
    scores = b * q_heads * q_seq * kv_seq
    cost = Cost.of_macs(scores * (head + v_head), extra_flops=(SCORE_SCALE_FLOPS + SOFTMAX_FLOPS) * scores)
    for attr in ("score_mod", "prob_mod"):
        if attr in ctx.subgraphs:
            cost = cost + ctx.subgraph_cost(attr, [(b, q_heads, q_seq, kv_seq)])
    return cost
