"""Matrix products: Gemm, MatMul and Einsum.

:func:`matmul_macs` (numpy ``matmul`` semantics) is shared with the quantized twins
(MatMulInteger, QLinearMatMul), which pass the indices of their two operands.
"""
from __future__ import annotations

import math
from typing import Dict, Hashable, List, Sequence, Set, Tuple

import numpy as np

from onnxscore.ops.registry import WEIGHT, Cost, Ctx, UnknownShape, numel, rule

ELLIPSIS = "..."


def matmul_dims(a: Sequence[int], b: Sequence[int]) -> Tuple[Tuple[int, ...], int, int, int]:
    """``(batch, M, N, K)`` of numpy ``matmul(a, b)``.

    A 1-D ``a`` is a row (M = 1), a 1-D ``b`` a column (N = 1); the batch dims ``a[:-2]`` and
    ``b[:-2]`` broadcast.
    """
    k = a[-1]
    m = a[-2] if len(a) >= 2 else 1
    n = b[-1] if len(b) >= 2 else 1
    batch = tuple(np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])))
    return batch, m, n, k


def matmul_outputs(ctx: Ctx, a: int = 0, b: int = 1) -> int:
    """Output elements ``prod(broadcast batch) * M * N``: from the output shape when known."""
    try:
        return ctx.out_numel(0)
    except UnknownShape:
        batch, m, n, _ = matmul_dims(ctx.in_shape(a), ctx.in_shape(b))
        return numel(batch) * m * n


def matmul_macs(ctx: Ctx, a: int = 0, b: int = 1) -> int:
    """MACs of numpy ``matmul``: ``prod(broadcast batch) * M * N * K``, K read from operand ``a``."""
    return matmul_outputs(ctx, a, b) * ctx.in_shape(a)[-1]


@rule("MatMul", kind="matmul")
def matmul(ctx: Ctx) -> Cost:
    """Batched, broadcast matrix product with numpy 1-D promotion.

    MACs = prod(broadcast batch dims) * M * N * K.
    """
    return Cost.of_macs(matmul_macs(ctx))


def gemm_dims(ctx: Ctx) -> Tuple[int, int, int]:
    """``(M, N, K)`` of ``op(A) * op(B)``.

    A is ``(M, K)``, or ``(K, M)`` with transA; B is ``(K, N)``, or ``(N, K)`` with transB.
    """
    a = ctx.in_shape(0)
    b = ctx.in_shape(1)
    m, k = (a[1], a[0]) if ctx.attr("transA", 0) else (a[0], a[1])
    n = b[0] if ctx.attr("transB", 0) else b[1]
    return m, n, k


@rule("Gemm", kind="matmul", roles={1: WEIGHT, 2: WEIGHT})
def gemm(ctx: Ctx) -> Cost:
    """``Y = alpha * op(A) * op(B) + beta * C``.

    MACs = M * N * K. Extra FLOPs: M * N multiplies when alpha != 1; when C is present and
    beta != 0, M * N adds for the bias, plus M * N multiplies when beta != 1 (C broadcast to
    ``(M, N)`` and scaled).
    """
    m, n, k = gemm_dims(ctx)
    alpha = float(ctx.attr("alpha", 1.0))
    beta = float(ctx.attr("beta", 1.0))
    extra = m * n if alpha != 1.0 else 0
    if ctx.has_input(2) and beta != 0.0:
        extra += m * n if beta == 1.0 else 2 * m * n
    return Cost.of_macs(m * n * k, extra_flops=extra)


Labels = List[Hashable]


def parse_einsum(equation: str, shapes: Sequence[Sequence[int]]
                 ) -> Tuple[List[Labels], Labels, Dict[Hashable, int]]:
    """Labels of each operand, labels of the output and the size of every label.

    Ellipsis dims become integer labels aligned from the right (they broadcast, so a label's
    size is the largest seen); without ``->`` the output is the ellipsis dims followed by the
    letters that appear exactly once, in alphabetical order.
    """
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum {equation!r} names {len(terms)} operands, got {len(shapes)}")
    ellipsis_rank = max((len(s) - len(t.replace(ELLIPSIS, "")) for t, s in zip(terms, shapes)
                         if ELLIPSIS in t), default=0)
    operands: List[Labels] = []
    sizes: Dict[Hashable, int] = {}
    for term, shape in zip(terms, shapes):
        head, _, tail = term.partition(ELLIPSIS)
        rank_e = len(shape) - len(head) - len(tail) if ELLIPSIS in term else 0
        labels: Labels = list(head) + list(range(ellipsis_rank - rank_e, ellipsis_rank)) + list(tail)
        for label, dim in zip(labels, shape):
            sizes[label] = max(sizes.get(label, 1), int(dim))
        operands.append(labels)
    ellipsis_labels: Labels = list(range(ellipsis_rank))
    if arrow:
        head, _, tail = rhs.partition(ELLIPSIS)
        output = list(head) + (ellipsis_labels if ELLIPSIS in rhs else []) + list(tail)
    else:
        letters = [c for t in operands for c in t if isinstance(c, str)]
        output = ellipsis_labels + sorted(c for c in set(letters) if letters.count(c) == 1)
    return operands, output, sizes


def einsum_cost(equation: str, shapes: Sequence[Sequence[int]]) -> Cost:
    """Cost of an einsum from its equation and operand shapes.

    One operand (trace, sum, diagonal, transpose): a reduction of prod(all labels) terms into
    prod(output labels) results, i.e. prod(all) - prod(output) adds, 0 for a pure permutation.
    Two operands: MACs = product of the sizes of all distinct labels. Three or more: contracted
    left to right in pairs, each pair costing the product of its distinct labels and keeping the
    labels still needed by the output or a later operand.
    """
    operands, output, sizes = parse_einsum(equation, shapes)

    def size(labels: Set[Hashable]) -> int:
        return math.prod(sizes[c] for c in labels)

    if len(operands) == 1:
        return Cost.of_flops(size(set(operands[0])) - size(set(output)))
    current = set(operands[0])
    macs = 0
    for i in range(1, len(operands)):
        pair = current | set(operands[i])
        macs += size(pair)
        needed = set(output).union(*(set(t) for t in operands[i + 1:]))
        current = pair & needed
    return Cost.of_macs(macs)


@rule("Einsum", kind="matmul")
def einsum(ctx: Ctx) -> Cost:
    """General Einsum (explicit or implicit output, ellipsis, repeated labels); see :func:`einsum_cost`."""
    shapes = [ctx.in_shape(i) for i in range(len(ctx.inputs))]
    return einsum_cost(str(ctx.attr("equation", "")), shapes)
