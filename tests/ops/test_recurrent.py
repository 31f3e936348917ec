"""LSTM, GRU and RNN: tables derived from the spec's equations.

Per step element (one direction, time step, batch row and hidden unit), with the default
activations (sigmoid = neg, exp, add, div = 4; tanh = 1):
  LSTM: 3 sigmoids (12) + tanh of the cell gate (1) + tanh of C_t (1) + C_t = f*C + i*c (3)
        + H_t = o*tanh(C_t) (1) = 18; bias + 4 gates * 2; peepholes + 6; clip + 5 inputs * 2.
  GRU:  2 sigmoids (8) + tanh (1) + r*H (1, or mul + add = 2 with linear_before_reset)
        + H_t = (1-z)*h + z*H (4) = 14 (15); bias + 3 gates * 2; clip + 3 inputs * 2.
  RNN:  tanh (1); bias + 2; clip + 2.
"""
from __future__ import annotations

import pytest
from onnx import TensorProto

import onnxscore
from onnxscore.ops import registry
from onnxscore.ops.registry import CONTROL, DATA, WEIGHT, UnknownShape
from tests.opmodels import cost, node_model, weight

FLOAT = TensorProto.FLOAT

# (id, op, input shapes, attrs, macs, flops); outputs are not read by the rule.
RECURRENT = [
    ("lstm_forward", "LSTM", [(5, 2, 10), (1, 32, 10), (1, 32, 8)], {"hidden_size": 8},
     1*5*2*4*8*(10+8),  # dirs*seq*batch*G*hidden*(input+hidden)
     2*(1*5*2*4*8*(10+8)) + 1*5*2*8*18),  # + dirs*seq*batch*hidden*18
    ("lstm_bidirectional_bias", "LSTM", [(4, 3, 6), (2, 20, 6), (2, 20, 5), (2, 40)],
     {"hidden_size": 5, "direction": "bidirectional"},
     2*4*3*4*5*(6+5),  # dirs*seq*batch*G*hidden*(input+hidden)
     2*(2*4*3*4*5*(6+5)) + 2*4*3*5*(18 + 4*2)),  # + 4 gates * (Wb + Rb)
    ("lstm_reverse", "LSTM", [(4, 3, 6), (1, 20, 6), (1, 20, 5)],
     {"hidden_size": 5, "direction": "reverse"},
     1*4*3*4*5*(6+5),
     2*(1*4*3*4*5*(6+5)) + 1*4*3*5*18),
    # layout=1: X is [batch=3, seq=7, input=4]; hidden read from W: 16 / 4 gates = 4.
    ("lstm_layout1_hidden_from_w", "LSTM", [(3, 7, 4), (1, 16, 4), (1, 16, 4)], {"layout": 1},
     1*7*3*4*4*(4+4),  # dirs*seq*batch*G*hidden*(input+hidden)
     2*(1*7*3*4*4*(4+4)) + 1*7*3*4*18),
    ("lstm_bias_states_peepholes", "LSTM",
     [(2, 1, 3), (1, 8, 3), (1, 8, 2), (1, 16), (1,), (1, 1, 2), (1, 1, 2), (1, 6)], {"hidden_size": 2},
     1*2*1*4*2*(3+2),
     2*(1*2*1*4*2*(3+2)) + 1*2*1*2*(18 + 4*2 + 6)),  # + bias 8 + peepholes 3 mul + 3 add
    ("lstm_peepholes_no_bias", "LSTM",
     [(2, 1, 3), (1, 8, 3), (1, 8, 2), None, None, None, None, (1, 6)], {"hidden_size": 2},
     1*2*1*4*2*(3+2),
     2*(1*2*1*4*2*(3+2)) + 1*2*1*2*(18 + 6)),
    # f = HardSigmoid (mul, add, max, min = 4), g = Relu (1), h = Softsign (abs, add, div = 3),
    # clip on all 5 activation inputs (min + max each).
    ("lstm_custom_activations_clip", "LSTM", [(2, 2, 3), (1, 8, 3), (1, 8, 2)],
     {"hidden_size": 2, "activations": ["HardSigmoid", "Relu", "Softsign"], "clip": 3.0},
     1*2*2*4*2*(3+2),
     2*(1*2*2*4*2*(3+2)) + 1*2*2*2*(3*4 + 1 + 3 + 3 + 1 + 5*2)),
    ("gru_bias", "GRU", [(4, 2, 3), (1, 18, 3), (1, 18, 6), (1, 36)], {"hidden_size": 6},
     1*4*2*3*6*(3+6),  # dirs*seq*batch*G*hidden*(input+hidden)
     2*(1*4*2*3*6*(3+6)) + 1*4*2*6*(14 + 3*2)),
    ("gru_bias_linear_before_reset", "GRU", [(4, 2, 3), (1, 18, 3), (1, 18, 6), (1, 36)],
     {"hidden_size": 6, "linear_before_reset": 1},
     1*4*2*3*6*(3+6),
     2*(1*4*2*3*6*(3+6)) + 1*4*2*6*(15 + 3*2)),
    ("gru_bidirectional_linear_before_reset", "GRU", [(2, 3, 4), (2, 15, 4), (2, 15, 5)],
     {"hidden_size": 5, "direction": "bidirectional", "linear_before_reset": 1},
     2*2*3*3*5*(4+5),
     2*(2*2*3*3*5*(4+5)) + 2*2*3*5*15),
    ("gru_clip", "GRU", [(1, 1, 2), (1, 6, 2), (1, 6, 2)], {"hidden_size": 2, "clip": 1.0},
     1*1*1*3*2*(2+2),
     2*(1*1*1*3*2*(2+2)) + 1*1*1*2*(14 + 3*2)),
    ("rnn", "RNN", [(6, 1, 8), (1, 16, 8), (1, 16, 16)], {"hidden_size": 16},
     1*6*1*1*16*(8+16),  # dirs*seq*batch*G*hidden*(input+hidden), G = 1
     2*(1*6*1*1*16*(8+16)) + 6*1*16*1),  # + tanh
    ("rnn_bias_state", "RNN", [(6, 1, 8), (1, 16, 8), (1, 16, 16), (1, 32), None, (1, 1, 16)],
     {"hidden_size": 16},
     1*6*1*1*16*(8+16),
     2*(1*6*1*1*16*(8+16)) + 6*1*16*(1 + 2)),
    # Forward Sigmoid (4), reverse Relu (1), both with bias (2 each).
    ("rnn_bidirectional_two_activations", "RNN", [(3, 2, 4), (2, 5, 4), (2, 5, 5), (2, 10)],
     {"direction": "bidirectional", "activations": ["Sigmoid", "Relu"]},
     2*3*2*1*5*(4+5),
     2*(2*3*2*1*5*(4+5)) + 3*2*5*((4 + 2) + (1 + 2))),
]


@pytest.mark.parametrize("op,ins,attrs,macs,flops", [c[1:] for c in RECURRENT],
                         ids=[c[0] for c in RECURRENT])
def test_recurrent(op, ins, attrs, macs, flops):
    c = cost(op, ins, [None], attrs)
    assert (c.macs, c.flops) == (macs, flops)


def test_layout_does_not_swap_input_size():
    # layout=0 X [seq=2, batch=3, input=5] and layout=1 X [batch=3, seq=2, input=5] cost the same.
    a = cost("RNN", [(2, 3, 5), (1, 4, 5), (1, 4, 4)], [None], {})
    b = cost("RNN", [(3, 2, 5), (1, 4, 5), (1, 4, 4)], [None], {"layout": 1})
    assert a == b
    assert a.macs == 1*2*3*1*4*(5+4)


def test_unknown_activation_is_an_error():
    with pytest.raises(ValueError):
        cost("RNN", [(2, 1, 3), (1, 4, 3), (1, 4, 4)], [None], {"activations": ["Swish"]})


def test_symbolic_sequence_is_unknown():
    with pytest.raises(UnknownShape):
        cost("LSTM", [("seq", 1, 3), (1, 8, 3), (1, 8, 2)], [None], {"hidden_size": 2})


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_roles(op):
    r = registry.lookup("", op)
    assert [r.role(i) for i in range(6)] == [DATA, WEIGHT, WEIGHT, WEIGHT, CONTROL, CONTROL]
    if op == "LSTM":
        assert (r.role(6), r.role(7)) == (CONTROL, WEIGHT)


def test_pipeline_lstm_params_exclude_states():
    inits = [weight("W", [1, 32, 10]), weight("R", [1, 32, 8]), weight("B", [1, 64]),
             weight("h0", [1, 2, 8]), weight("c0", [1, 2, 8])]
    model = node_model("LSTM", [("X", FLOAT, [5, 2, 10]), "W", "R", "B", "", "h0", "c0"],
                       [("Y", FLOAT, None), ("Y_h", FLOAT, None)], {"hidden_size": 8},
                       initializers=inits)
    report = onnxscore.analyze(model)
    layer = report.layers[0]
    assert layer.status == "ok"
    assert layer.macs == 1*5*2*4*8*(10+8)  # dirs*seq*batch*G*hidden*(input+hidden)
    assert layer.flops == 2*(1*5*2*4*8*(10+8)) + 1*5*2*8*(18 + 4*2)
    assert report.totals.params == 1*32*10 + 1*32*8 + 1*64  # W + R + B, not h0/c0
    assert report.totals.buffers == 0


def test_pipeline_gru_bidirectional():
    inits = [weight("W", [2, 18, 4]), weight("R", [2, 18, 6])]
    model = node_model("GRU", [("X", FLOAT, [3, 1, 4]), "W", "R"], [("Y", FLOAT, None)],
                       {"hidden_size": 6, "direction": "bidirectional"}, initializers=inits)
    report = onnxscore.analyze(model)
    assert report.layers[0].macs == 2*3*1*3*6*(4+6)
    assert report.layers[0].flops == 2*(2*3*1*3*6*(4+6)) + 2*3*1*6*14
    assert report.totals.params == 2*18*4 + 2*18*6  # W + R
