"""Gemm, MatMul and Einsum: tables derived from the spec (numpy matmul/einsum semantics)."""
from __future__ import annotations

import pytest
from onnx import TensorProto

import onnxscore
from onnxscore.ops import registry
from onnxscore.ops.registry import DATA, WEIGHT, UnknownShape
from tests.opmodels import cost, node_model, weight

FLOAT = TensorProto.FLOAT

# M=3, K=5, N=7 throughout, so a swapped dimension changes the count.
# (id, input shapes, output shape, attrs, macs, flops)
GEMM = [
    ("plain_bias", [(3, 5), (5, 7), (7,)], (3, 7), {},
     3*7*5,  # M*N*K
     2*(3*7*5) + 3*7),  # + M*N bias adds
    ("transA", [(5, 3), (5, 7), (7,)], (3, 7), {"transA": 1},
     3*7*5, 2*(3*7*5) + 3*7),
    ("transB", [(3, 5), (7, 5), (3, 7)], (3, 7), {"transB": 1},
     3*7*5, 2*(3*7*5) + 3*7),
    ("transA_transB_no_C", [(5, 3), (7, 5)], (3, 7), {"transA": 1, "transB": 1},
     3*7*5, 2*(3*7*5)),
    ("alpha", [(3, 5), (5, 7), (7,)], (3, 7), {"alpha": 0.5},
     3*7*5, 2*(3*7*5) + 3*7 + 3*7),  # + M*N bias adds + M*N alpha multiplies
    ("beta_zero_ignores_C", [(3, 5), (5, 7), (7,)], (3, 7), {"beta": 0.0},
     3*7*5, 2*(3*7*5)),
    ("beta_scaled", [(3, 5), (5, 7), (1, 7)], (3, 7), {"beta": 2.0},
     3*7*5, 2*(3*7*5) + 3*7 + 3*7),  # + M*N bias adds + M*N beta multiplies
    ("alpha_no_C", [(3, 5), (5, 7), None], (3, 7), {"alpha": 2.0, "beta": 3.0},
     3*7*5, 2*(3*7*5) + 3*7),  # + M*N alpha multiplies only
]


@pytest.mark.parametrize("ins,out,attrs,macs,flops", [c[1:] for c in GEMM], ids=[c[0] for c in GEMM])
def test_gemm(ins, out, attrs, macs, flops):
    c = cost("Gemm", ins, [out], attrs)
    assert (c.macs, c.flops) == (macs, flops)


# (id, A shape, B shape, output shape, macs)
MATMUL = [
    ("2d", (3, 5), (5, 7), (3, 7), 3*7*5),  # M*N*K
    ("batched", (2, 3, 5), (2, 5, 7), (2, 3, 7), 2*3*7*5),  # B*M*N*K
    ("broadcast_batched", (2, 1, 4, 5), (3, 5, 6), (2, 3, 4, 6), 2*3*4*6*5),  # B1*B2*M*N*K
    ("broadcast_weight", (2, 8, 64), (64, 32), (2, 8, 32), 2*8*32*64),  # B*M*N*K
    ("1d_x_2d", (5,), (5, 7), (7,), 7*5),  # N*K (M = 1)
    ("2d_x_1d", (3, 5), (5,), (3,), 3*5),  # M*K (N = 1)
    ("1d_x_1d", (5,), (5,), (), 5),  # K (dot product)
    ("1d_x_3d", (5,), (2, 5, 7), (2, 7), 2*7*5),  # B*N*K
    ("3d_x_1d", (2, 3, 5), (5,), (2, 3), 2*3*5),  # B*M*K
]


@pytest.mark.parametrize("a,b,out,macs", [c[1:] for c in MATMUL], ids=[c[0] for c in MATMUL])
def test_matmul(a, b, out, macs):
    c = cost("MatMul", [a, b], [out])
    assert (c.macs, c.flops) == (macs, 2 * macs)


@pytest.mark.parametrize("a,b,out,macs", [c[1:] for c in MATMUL], ids=[c[0] for c in MATMUL])
def test_matmul_without_output_shape(a, b, out, macs):
    c = cost("MatMul", [a, b], [None])
    assert (c.macs, c.flops) == (macs, 2 * macs)


def test_matmul_symbolic_is_unknown():
    with pytest.raises(UnknownShape):
        cost("MatMul", [("batch", 3, 5), (5, 7)], [("batch", 3, 7)])


# (id, equation, input shapes, macs, flops)
EINSUM = [
    ("batched_matmul", "bij,bjk->bik", [(2, 3, 4), (2, 4, 5)], 2*3*4*5, 2*(2*3*4*5)),  # b*i*j*k
    ("attention_scores", "bhqd,bhkd->bhqk", [(2, 4, 6, 8), (2, 4, 7, 8)],
     2*4*6*7*8, 2*(2*4*6*7*8)),  # b*h*q*k*d
    ("implicit", "ij,jk", [(3, 4), (4, 5)], 3*4*5, 2*(3*4*5)),  # i*j*k
    ("implicit_sums_shared_batch", "bij,bjk", [(2, 3, 4), (2, 4, 5)], 2*3*4*5, 2*(2*3*4*5)),
    ("spaces", "bij, bjk -> bik", [(2, 3, 4), (2, 4, 5)], 2*3*4*5, 2*(2*3*4*5)),
    ("ellipsis", "...ij,...jk->...ik", [(2, 3, 4, 5), (2, 3, 5, 6)], 2*3*4*5*6, 2*(2*3*4*5*6)),
    ("ellipsis_broadcast", "...ij,...jk->...ik", [(2, 1, 4, 5), (3, 5, 6)],
     2*3*4*5*6, 2*(2*3*4*5*6)),  # batch (2,1) x (3,) -> (2,3), then i*j*k
    ("ellipsis_implicit", "...ij,jk", [(7, 3, 4), (4, 5)], 7*3*4*5, 2*(7*3*4*5)),
    ("outer", "i,j->ij", [(3,), (4,)], 3*4, 2*(3*4)),
    ("trace", "ii->", [(5, 5)], 0, 5 - 1),  # 5 diagonal terms summed: 4 adds
    ("trace_implicit", "ii", [(5, 5)], 0, 5 - 1),
    ("row_sum", "ij->i", [(3, 4)], 0, 3*4 - 3),  # 12 terms into 3 sums: 3*(4-1) adds
    ("transpose", "ij->ji", [(3, 4)], 0, 0),  # pure permutation
    ("diagonal", "ii->i", [(5, 5)], 0, 0),  # pure selection
    ("three_operands", "ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)],
     2*3*4 + 2*4*5, 2*(2*3*4 + 2*4*5)),  # (ij,jk -> ik): i*j*k, then (ik,kl -> il): i*k*l
    ("three_operands_keep_for_later", "ij,kl,jl->ik", [(2, 3), (4, 5), (3, 5)],
     2*3*4*5 + 2*3*4*5, 2*(2*3*4*5 + 2*3*4*5)),  # (ij,kl -> ijkl): i*j*k*l, then (ijkl,jl -> ik)
]


@pytest.mark.parametrize("eq,ins,macs,flops", [c[1:] for c in EINSUM], ids=[c[0] for c in EINSUM])
def test_einsum(eq, ins, macs, flops):
    c = cost("Einsum", ins, [None], {"equation": eq})
    assert (c.macs, c.flops) == (macs, flops)


@pytest.mark.parametrize("op,roles", [
    ("Gemm", {0: DATA, 1: WEIGHT, 2: WEIGHT}),
    ("MatMul", {0: DATA, 1: DATA}),
    ("Einsum", {0: DATA, 1: DATA}),
])
def test_roles(op, roles):
    r = registry.lookup("", op)
    assert {i: r.role(i) for i in roles} == roles


def test_pipeline_gemm():
    model = node_model("Gemm", [("x", FLOAT, [2, 64]), ("W", FLOAT, [10, 64]), ("b", FLOAT, [10])],
                       [("y", FLOAT, None)], {"transB": 1},
                       initializers=[weight("W", [10, 64]), weight("b", [10])])
    report = onnxscore.analyze(model)
    layer = report.layers[0]
    assert layer.status == "ok"
    assert layer.macs == 2*10*64  # M*N*K
    assert layer.flops == 2*(2*10*64) + 2*10  # + M*N bias
    assert report.totals.params == 10*64 + 10  # N*K + N


def test_pipeline_matmul_with_weight():
    model = node_model("MatMul", [("x", FLOAT, [2, 8, 64]), ("W", FLOAT, [64, 32])], [("y", FLOAT, None)],
                       initializers=[weight("W", [64, 32])])
    report = onnxscore.analyze(model)
    layer = report.layers[0]
    assert layer.status == "ok"
    assert layer.macs == 2*8*32*64  # B*M*N*K
    assert layer.flops == 2*(2*8*32*64)
    assert report.totals.params == 64*32  # K*N
    assert report.totals.buffers == 0


def test_pipeline_einsum():
    model = node_model("Einsum", [("q", FLOAT, [2, 4, 6, 8]), ("k", FLOAT, [2, 4, 7, 8])],
                       [("s", FLOAT, None)],
                       {"equation": "bhqd,bhkd->bhqk"})
    report = onnxscore.analyze(model)
    assert report.layers[0].macs == 2*4*6*7*8  # b*h*q*k*d
    assert report.totals.params == 0
