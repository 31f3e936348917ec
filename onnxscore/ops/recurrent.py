"""Recurrent layers: LSTM, GRU and RNN.

Every gate of every direction at every time step is a contraction of ``[X_t, H_{t-1}]`` with
``[W; R]``: ``MACs = dirs * seq * batch * G * hidden * (input + hidden)`` with G = 4 (LSTM),
3 (GRU), 1 (RNN). The sum ``X_t*W^T + H_{t-1}*R^T`` is part of that dot product of length
``input + hidden``. Everything else is counted per *step element* (one direction, one time step,
one batch row, one hidden unit) from the spec's equations: bias adds, clipping, the gate
activations and the state updates.

All ``seq`` steps are counted for every batch row: ``sequence_lens`` holds runtime values, so the
count is the cost of the full padded sequence. ``input_forget`` (coupled input and forget gates)
is not modelled: W and R still hold four gates, which are projected and activated as usual.
"""
from __future__ import annotations

from typing import List, Sequence

from onnxscore.ops.elementwise import (CLIP_FLOPS_PER_BOUND, ELEMENTARY_FLOPS, ELU_FLOPS,
                                       HARD_SIGMOID_FLOPS, LEAKY_RELU_FLOPS, RELU_FLOPS,
                                       SIGMOID_FLOPS, SOFTPLUS_FLOPS, SOFTSIGN_FLOPS,
                                       THRESHOLDED_RELU_FLOPS)
from onnxscore.ops.registry import CONTROL, WEIGHT, Cost, Ctx, rule

# RNN-only activations from the spec: affine(x) = alpha * x + beta (mul, add) and
# scaled_tanh(x) = alpha * tanh(beta * x) (mul, tanh, mul).
AFFINE_FLOPS = 2
SCALED_TANH_FLOPS = 3

# FLOPs of one evaluation of each activation the spec allows; the shared ones are the constants
# of the elementwise ops, so a Sigmoid costs the same inside an LSTM as on its own.
ACTIVATION_FLOPS = {
    "relu": RELU_FLOPS,
    "tanh": ELEMENTARY_FLOPS,
    "sigmoid": SIGMOID_FLOPS,
    "affine": AFFINE_FLOPS,
    "leakyrelu": LEAKY_RELU_FLOPS,
    "thresholdedrelu": THRESHOLDED_RELU_FLOPS,
    "scaledtanh": SCALED_TANH_FLOPS,
    "hardsigmoid": HARD_SIGMOID_FLOPS,
    "elu": ELU_FLOPS,
    "softsign": SOFTSIGN_FLOPS,
    "softplus": SOFTPLUS_FLOPS,
}

# Bias per gate element: the spec adds both Wb and Rb to every gate pre-activation.
BIAS_FLOPS_PER_GATE = 2

# With the ``clip`` attribute, each activation input is clamped to [-clip, clip]: min and max.
CLIP_FLOPS = 2 * CLIP_FLOPS_PER_BOUND

# LSTM peepholes: Pi (.) C_{t-1}, Pf (.) C_{t-1}, Po (.) C_t are 3 multiplies, each added to its
# gate's pre-activation: 3 adds.
LSTM_PEEPHOLE_FLOPS = 6

# LSTM cell state C_t = f_t (.) C_{t-1} + i_t (.) c_t: 2 multiplies and 1 add.
LSTM_CELL_FLOPS = 3

# LSTM hidden state H_t = o_t (.) h(C_t): 1 multiply (h itself is an activation).
LSTM_HIDDEN_FLOPS = 1

# LSTM evaluates 5 activations per step element: f for i, f, o; g for the cell gate; h of C_t.
LSTM_ACTIVATION_INPUTS = 5

# GRU reset, linear_before_reset = 0: r_t (.) H_{t-1} is 1 multiply; its product with Rh is in
# the MACs and is summed there with X_t*Wh^T.
GRU_RESET_FLOPS = 1

# GRU reset, linear_before_reset != 0: r_t (.) (H_{t-1}*Rh^T + Rbh) is 1 multiply, and the result
# is no longer part of one dot product with X_t*Wh^T, so joining them is 1 more add.
GRU_RESET_LINEAR_BEFORE_FLOPS = 2

# GRU update H_t = (1 - z_t) (.) h_t + z_t (.) H_{t-1}: sub, 2 multiplies, add.
GRU_UPDATE_FLOPS = 4

# GRU evaluates 3 activations per step element: f for z and r, g for the hidden gate.
GRU_ACTIVATION_INPUTS = 3

# RNN evaluates 1 activation per step element: H_t = f(...).
RNN_ACTIVATION_INPUTS = 1

DEFAULT_ACTIVATIONS = {
    "LSTM": ("Sigmoid", "Tanh", "Tanh"),
    "GRU": ("Sigmoid", "Tanh"),
    "RNN": ("Tanh",),
}
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}

RNN_ROLES = {1: WEIGHT, 2: WEIGHT, 3: WEIGHT, 4: CONTROL, 5: CONTROL}


def activation_flops(name: str) -> int:
    """FLOPs of one evaluation of the spec activation ``name`` (case-insensitive)."""
    key = name.lower()
    if key not in ACTIVATION_FLOPS:
        raise ValueError(f"unknown recurrent activation {name!r}")
    return ACTIVATION_FLOPS[key]


def direction_activations(ctx: Ctx, dirs: int) -> List[Sequence[str]]:
    """The activation names of each direction: the attribute (forward list then reverse list),
    or the spec defaults."""
    default = DEFAULT_ACTIVATIONS[ctx.op_type]
    acts = ctx.attr("activations") or default
    acts = [a.decode() if isinstance(a, bytes) else str(a) for a in acts]
    n = len(default)
    if len(acts) == n * dirs:
        return [acts[d * n:(d + 1) * n] for d in range(dirs)]
    if len(acts) == n:
        return [acts] * dirs
    raise ValueError(f"{ctx.op_type} expects {n * dirs} activations, got {len(acts)}")


def recurrent_dims(ctx: Ctx):
    """``(dirs, seq, batch, input, hidden)`` from X (``layout`` 0: [seq, batch, input], 1: [batch,
    seq, input]), the ``direction`` attribute and ``hidden_size`` (or W's ``G * hidden``)."""
    x = ctx.in_shape(0)
    seq, batch = (x[1], x[0]) if ctx.attr("layout", 0) else (x[0], x[1])
    dirs = 2 if ctx.attr("direction", "forward") == "bidirectional" else 1
    hidden = ctx.attr("hidden_size")
    if not hidden:
        hidden = ctx.in_shape(1)[1] // GATES[ctx.op_type]
    return dirs, seq, batch, x[2], int(hidden)


def lstm_step_flops(ctx: Ctx, acts: Sequence[str]) -> int:
    """FLOPs of one LSTM step element with activations ``(f, g, h)``."""
    f, g, h = (activation_flops(a) for a in acts)
    flops = 3 * f + g + h + LSTM_CELL_FLOPS + LSTM_HIDDEN_FLOPS
    if ctx.has_input(3):
        flops += 4 * BIAS_FLOPS_PER_GATE
    if ctx.has_input(7):
        flops += LSTM_PEEPHOLE_FLOPS
    if ctx.attr("clip") is not None:
        flops += LSTM_ACTIVATION_INPUTS * CLIP_FLOPS
    return flops


def gru_step_flops(ctx: Ctx, acts: Sequence[str]) -> int:
    """FLOPs of one GRU step element with activations ``(f, g)``."""
    f, g = (activation_flops(a) for a in acts)
    reset = GRU_RESET_LINEAR_BEFORE_FLOPS if ctx.attr("linear_before_reset", 0) else GRU_RESET_FLOPS
    flops = 2 * f + g + reset + GRU_UPDATE_FLOPS
    if ctx.has_input(3):
        flops += 3 * BIAS_FLOPS_PER_GATE
    if ctx.attr("clip") is not None:
        flops += GRU_ACTIVATION_INPUTS * CLIP_FLOPS
    return flops


def rnn_step_flops(ctx: Ctx, acts: Sequence[str]) -> int:
    """FLOPs of one simple-RNN step element with activation ``f``."""
    flops = activation_flops(acts[0])
    if ctx.has_input(3):
        flops += BIAS_FLOPS_PER_GATE
    if ctx.attr("clip") is not None:
        flops += RNN_ACTIVATION_INPUTS * CLIP_FLOPS
    return flops


STEP_FLOPS = {"LSTM": lstm_step_flops, "GRU": gru_step_flops, "RNN": rnn_step_flops}


@rule("LSTM", kind="recurrent", roles={**RNN_ROLES, 6: CONTROL, 7: WEIGHT})
@rule("GRU", "RNN", kind="recurrent", roles=RNN_ROLES)
def recurrent(ctx: Ctx) -> Cost:
    """One recurrent layer over the whole sequence, every direction.

    MACs = dirs * seq * batch * G * hidden * (input + hidden); FLOPs = 2 * MACs
    + seq * batch * hidden * sum over directions of the step-element FLOPs.
    """
    dirs, seq, batch, inp, hidden = recurrent_dims(ctx)
    gates = GATES[ctx.op_type]
    macs = dirs * seq * batch * gates * hidden * (inp + hidden)
    step = STEP_FLOPS[ctx.op_type]
    per_element = sum(step(ctx, acts) for acts in direction_activations(ctx, dirs))
    return Cost.of_macs(macs, extra_flops=seq * batch * hidden * per_element)
