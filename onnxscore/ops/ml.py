"""Classical ML ops of the ``ai.onnx.ml`` domain.

Linear models, SVMs and tree ensembles keep their parameters (coefficients, support vectors,
thresholds, leaf weights) in *attributes*, not inputs: the rules below cost the arithmetic they
imply, but onnxscore's parameter count (which reads inputs and initializers) does not include
them. ``X`` is ``[N, F]`` (a 1-D ``[F]`` is one sample). Encoders and mappers are lookups and
declared zero-cost. One FLOP per add, mul, div, compare or elementary function, as in
:mod:`onnxscore.ops.registry`.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
from onnx import TensorProto, numpy_helper

from onnxscore.ops.elementwise import SIGMOID_FLOPS, SOFTMAX_FLOPS
from onnxscore.ops.registry import CONTROL, ML_DOMAIN, Cost, Ctx, numel, rule, zero_cost

# Score post-transforms, per score: softmax as in Softmax; logistic is a sigmoid; softmax_zero
# adds a compare to skip zero scores; probit = sqrt(2) * erfinv(2p - 1): mul, sub, erfinv, mul.
POST_TRANSFORM_FLOPS = {
    "NONE": 0,
    "SOFTMAX": SOFTMAX_FLOPS,
    "LOGISTIC": SIGMOID_FLOPS,
    "SOFTMAX_ZERO": SOFTMAX_FLOPS + 1,
    "PROBIT": 4,
}
# TreeEnsemble (ml opset 5) spells post_transform as an int.
POST_TRANSFORM_NAMES = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")
# Kernel function applied to a dot product s (or squared distance for RBF), per kernel
# evaluation: poly (gamma*s + coef0)^degree: mul, add, pow; sigmoid tanh(gamma*s + coef0): mul,
# add, tanh; rbf exp(-gamma*s): mul, exp.
SVM_KERNEL_FLOPS = {"LINEAR": 0, "POLY": 3, "SIGMOID": 3, "RBF": 2}
# One-vs-one SVM decision per class pair: rho + s1 + s2 (2 adds) and the vote compare.
SVM_PAIR_FLOPS = 3
# One compare per tree level descended.
TREE_COMPARE_FLOPS = 1
# Binarizer, Imputer: one compare-select per element.
COMPARE_SELECT_FLOPS = 1
# Scaler: (x - offset) * scale.
SCALER_FLOPS = 2


def _values(ctx: Ctx, *names: str) -> List[Any]:
    """The first attribute of ``names`` that is set, as a flat list (lists, arrays, tensors)."""
    for name in names:
        v = ctx.attr(name)
        if v is None:
            continue
        if isinstance(v, TensorProto):
            v = numpy_helper.to_array(v)
        return np.asarray(v).reshape(-1).tolist() if not isinstance(v, (list, tuple)) else list(v)
    return []


def _samples(ctx: Ctx) -> Tuple[int, int]:
    """(N, F) of the input ``X``."""
    x = ctx.in_shape(0)
    return numel(x[:-1]), max(x[-1] if x else 1, 1)


def _post_transform(ctx: Ctx) -> int:
    name = ctx.attr("post_transform", "NONE")
    if isinstance(name, int):
        name = POST_TRANSFORM_NAMES[name]
    return POST_TRANSFORM_FLOPS[name]


@rule("LinearClassifier", kind="ml-linear", domain=ML_DOMAIN)
def linear_classifier(ctx: Ctx) -> Cost:
    """LinearClassifier with ``coefficients`` of E rows of F (E = classes, 1 when binary).

    macs = N * E * F; extra flops = N * E intercept adds (when intercepts are given)
    + N * E * POST_TRANSFORM_FLOPS + N * max(E - 1, 1) label compares.
    """
    n, f = _samples(ctx)
    rows = len(_values(ctx, "coefficients")) // f
    extra = n * rows * _post_transform(ctx) + n * max(rows - 1, 1)
    if _values(ctx, "intercepts"):
        extra += n * rows
    return Cost.of_macs(n * rows * f, extra)


@rule("LinearRegressor", kind="ml-linear", domain=ML_DOMAIN)
def linear_regressor(ctx: Ctx) -> Cost:
    """LinearRegressor with ``coefficients`` of T = ``targets`` rows of F.

    macs = N * T * F; extra flops = N * T intercept adds (when given) + N * T * post_transform.
    """
    n, f = _samples(ctx)
    targets = ctx.attr("targets", 1)
    extra = n * targets * _post_transform(ctx)
    if _values(ctx, "intercepts"):
        extra += n * targets
    return Cost.of_macs(n * targets * f, extra)


def _kernel_cost(ctx: Ctx, n: int, f: int, vectors: int) -> Cost:
    """N * V kernel evaluations of F MACs each (plus F subs for RBF) and the kernel function."""
    kernel = str(ctx.attr("kernel_type", "LINEAR")).upper()
    per_eval = SVM_KERNEL_FLOPS[kernel] + (f if kernel == "RBF" else 0)
    return Cost.of_macs(n * vectors * f, n * vectors * per_eval)


@rule("SVMClassifier", kind="ml-svm", domain=ML_DOMAIN)
def svm_classifier(ctx: Ctx) -> Cost:
    """SVMClassifier, one-vs-one over C classes with V support vectors (or linear, V = 0).

    With support vectors: N*V kernel evaluations (``_kernel_cost``), then the pairwise decisions
    use each coefficient once: macs += N * len(coefficients) (= N * (C-1) * V), plus per sample
    P = C(C-1)/2 pairs * SVM_PAIR_FLOPS and C - 1 vote compares; scores = P.
    Linear (no support vectors): macs = N * len(coefficients) (C rows of F), N * C rho adds and
    C - 1 compares; scores = C. Then N * scores * post_transform. Platt scaling (prob_a/prob_b)
    and its iterative coupling are not counted.
    """
    n, f = _samples(ctx)
    coefficients = len(_values(ctx, "coefficients"))
    vectors = len(_values(ctx, "support_vectors")) // f
    classes = max(len(_values(ctx, "classlabels_ints", "classlabels_strings")), 1)
    if vectors:
        pairs = classes * (classes - 1) // 2
        cost = _kernel_cost(ctx, n, f, vectors) + Cost.of_macs(n * coefficients)
        scores = pairs
        extra = n * (pairs * SVM_PAIR_FLOPS + max(classes - 1, 0))
    else:
        cost = Cost.of_macs(n * coefficients)
        scores = coefficients // f
        extra = n * scores + n * max(scores - 1, 0)
    return cost + Cost.of_flops(extra + n * scores * _post_transform(ctx))


@rule("SVMRegressor", kind="ml-svm", domain=ML_DOMAIN)
def svm_regressor(ctx: Ctx) -> Cost:
    """SVMRegressor with V = ``n_supports`` support vectors (or linear, V = 0).

    With support vectors: N*V kernel evaluations (``_kernel_cost``) and macs += N * V for the
    coefficients; linear: macs = N * F. Plus N rho adds, N compares when ``one_class`` and
    N * post_transform.
    """
    n, f = _samples(ctx)
    vectors = int(ctx.attr("n_supports", 0))
    if vectors:
        cost = _kernel_cost(ctx, n, f, vectors) + Cost.of_macs(n * vectors)
    else:
        cost = Cost.of_macs(n * f)
    extra = n + (n if ctx.attr("one_class", 0) else 0) + n * _post_transform(ctx)
    return cost + Cost.of_flops(extra)


def _depth(root: Any, children: Dict[Any, Sequence[Any]]) -> int:
    """Branch nodes on the longest root-to-leaf path (children maps a branch to its branches)."""
    best = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        best = max(best, depth)
        stack.extend((c, depth + 1) for c in children.get(node, ()))
    return best


def _legacy_trees(ctx: Ctx, weight_prefix: str) -> Tuple[int, int, int]:
    """(trees, sum of tree depths, sum over trees of the most weights held by one leaf)."""
    tree_ids = _values(ctx, "nodes_treeids")
    node_ids = _values(ctx, "nodes_nodeids")
    modes = [m.decode() if isinstance(m, bytes) else str(m) for m in _values(ctx, "nodes_modes")]
    true_ids = _values(ctx, "nodes_truenodeids")
    false_ids = _values(ctx, "nodes_falsenodeids")
    branches = {(t, i) for t, i, m in zip(tree_ids, node_ids, modes) if m != "LEAF"}
    children: Dict[Any, List[Any]] = {}
    roots: Dict[Any, Any] = {}
    for k, (t, i) in enumerate(zip(tree_ids, node_ids)):
        roots.setdefault(t, (t, i))
        if (t, i) in branches:
            children[(t, i)] = [(t, c) for c in (true_ids[k], false_ids[k]) if (t, c) in branches]
    depth = sum(_depth(r, children) if r in branches else 0 for r in roots.values())
    leaf_weights: Dict[Any, int] = {}
    for t, i in zip(_values(ctx, weight_prefix + "_treeids"), _values(ctx, weight_prefix + "_nodeids")):
        leaf_weights[(t, i)] = leaf_weights.get((t, i), 0) + 1
    most: Dict[Any, int] = {}
    for (t, _), count in leaf_weights.items():
        most[t] = max(most.get(t, 0), count)
    return len(roots), depth, sum(most.values())


def _aggregate_flops(ctx: Ctx, n: int, targets: int, depth: int, adds: int) -> int:
    """Descents, leaf accumulation, averaging, base values and post-transform of N samples."""
    flops = n * (depth * TREE_COMPARE_FLOPS + adds)
    aggregate = ctx.attr("aggregate_function", "SUM")
    if aggregate in ("AVERAGE", 0):
        flops += n * targets
    if _values(ctx, "base_values", "base_values_as_tensor"):
        flops += n * targets
    return flops + n * targets * _post_transform(ctx)


@rule("TreeEnsembleClassifier", "TreeEnsembleRegressor", kind="ml-tree", domain=ML_DOMAIN)
def tree_ensemble_legacy(ctx: Ctx) -> Cost:
    """TreeEnsembleClassifier/Regressor: an upper bound from the tree structure attributes.

    Per sample: one compare per level of each tree's deepest path (``sum depth``), one add (or
    min/max) per weight of each tree's fullest leaf, one division per target for AVERAGE, one
    add per target for base_values, the post-transform per target, and for the classifier
    ``classes - 1`` compares for the label. Targets are the classes or ``n_targets``.
    """
    n, _ = _samples(ctx)
    classifier = ctx.op_type == "TreeEnsembleClassifier"
    _, depth, adds = _legacy_trees(ctx, "class" if classifier else "target")
    if classifier:
        targets = max(len(_values(ctx, "classlabels_int64s", "classlabels_strings")), 1)
    else:
        targets = int(ctx.attr("n_targets", 1) or 1)
    flops = _aggregate_flops(ctx, n, targets, depth, adds)
    if classifier:
        flops += n * max(targets - 1, 0)
    return Cost.of_flops(flops)


@rule("TreeEnsemble", kind="ml-tree", domain=ML_DOMAIN)
def tree_ensemble(ctx: Ctx) -> Cost:
    """TreeEnsemble (ml opset 5): an upper bound from ``tree_roots`` and the node links.

    Per sample: one compare per level of each tree's deepest path (a BRANCH_MEMBER set test
    counts as one), one add per tree for its leaf weight, one division per target for AVERAGE
    and the post-transform per target.
    """
    n, _ = _samples(ctx)
    roots = _values(ctx, "tree_roots")
    true_ids, false_ids = _values(ctx, "nodes_truenodeids"), _values(ctx, "nodes_falsenodeids")
    true_leaf, false_leaf = _values(ctx, "nodes_trueleafs"), _values(ctx, "nodes_falseleafs")
    children = {i: [c for c, leaf in ((true_ids[i], true_leaf[i]), (false_ids[i], false_leaf[i]))
                    if not leaf]
                for i in range(len(true_ids))}
    depth = sum(_depth(r, children) for r in roots)
    targets = int(ctx.attr("n_targets", 1) or 1)
    return Cost.of_flops(_aggregate_flops(ctx, n, targets, depth, len(roots)))


@rule("Normalizer", kind="ml-transform", domain=ML_DOMAIN)
def normalizer(ctx: Ctx) -> Cost:
    """Normalizer of each row of C values by its MAX, L1 or L2 norm.

    Per row, then C divisions: MAX C - 1 compares; L1 C abs + C - 1 adds; L2 C squares,
    C - 1 adds and a sqrt.
    """
    n, c = _samples(ctx)
    norm = ctx.attr("norm", "MAX")
    per_row = {"MAX": c - 1, "L1": 2 * c - 1, "L2": 2 * c}[norm] + c
    return Cost.of_flops(n * per_row)


@rule("Scaler", kind="ml-transform", domain=ML_DOMAIN)
def scaler(ctx: Ctx) -> Cost:
    """Scaler, ``(x - offset) * scale``: flops = numel(X) * SCALER_FLOPS."""
    return Cost.of_flops(ctx.in_numel(0) * SCALER_FLOPS)


@rule("Binarizer", "Imputer", kind="ml-transform", domain=ML_DOMAIN)
def compare_select(ctx: Ctx) -> Cost:
    """Binarizer (x > threshold) and Imputer (replace a missing value): one compare-select.

    flops = numel(X) * COMPARE_SELECT_FLOPS.
    """
    return Cost.of_flops(ctx.in_numel(0) * COMPARE_SELECT_FLOPS)


zero_cost("ArrayFeatureExtractor", kind="data", domain=ML_DOMAIN,
          why="gathers the columns named by the indices (CONTROL)", roles={1: CONTROL})
zero_cost("FeatureVectorizer", kind="data", domain=ML_DOMAIN,
          why="concatenates its inputs into one feature vector")
zero_cost("CastMap", "DictVectorizer", "ZipMap", kind="ml-map", domain=ML_DOMAIN,
          why="converts between maps and tensors, a copy")
zero_cost("CategoryMapper", "LabelEncoder", "OneHotEncoder", kind="ml-map", domain=ML_DOMAIN,
          why="looks values up in a table given as attributes")
