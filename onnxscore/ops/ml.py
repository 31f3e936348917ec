"""Classical ML ops of the ``ai.onnx.ml`` domain.

Linear models, SVMs and tree ensembles keep what they learned in *attributes*, not inputs. The
rules cost the arithmetic those attributes imply and tell the walker what they hold, read from
the attribute lengths (never from the input shapes, so they are known even when a cost is not):

* **Parameters** (``ctx.attr_params``) are the fitted numbers, as scikit-learn counts its
  fitted arrays: LinearClassifier and LinearRegressor ``coefficients`` + ``intercepts``;
  SVMClassifier ``support_vectors`` + ``coefficients`` + ``rho`` + ``prob_a`` + ``prob_b``
  (Platt scaling, fitted too); SVMRegressor ``support_vectors`` + ``coefficients`` + ``rho``;
  Scaler ``offset`` + ``scale``; Imputer its imputed values. A binary LinearClassifier whose
  second row and intercept are the first negated (skl2onnx writes ``[-w, w]`` and ``[-b, b]``
  for one learned row) counts the first row only: F + 1, as scikit-learn's ``coef_`` and
  ``intercept_``.
* **Not parameters**: settings chosen rather than fitted (kernel_params, Binarizer's threshold,
  Imputer's replaced value, Normalizer's norm, post_transform), class labels, and the tables
  of lookups (LabelEncoder keys and values, CategoryMapper, OneHotEncoder categories, ZipMap
  and DictVectorizer labels): a mapping from one vocabulary to another, not weights.
* **Trees** have their own measure instead (``ctx.trees``, ``ctx.tree_nodes``,
  ``ctx.tree_leaves``): how many trees, nodes (branches and leaves) and leaves, counted by
  their ids without following links (a malformed tree may link back to its root). Their
  thresholds, leaf weights and base values are not parameters.

``X`` is ``[N, F]`` (a 1-D ``[F]`` is one sample). Encoders and mappers are lookups and
declared zero-cost. One FLOP per add, mul, div, compare or elementary function, as in
:mod:`onnxscore.ops.registry`.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from onnx import TensorProto, numpy_helper

from onnxscore.ops.elementwise import SIGMOID_FLOPS, SOFTMAX_FLOPS
from onnxscore.ops.registry import CONTROL, ML_DOMAIN, Cost, Ctx, UnknownShape, numel, rule, zero_cost

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
            if v.data_location == TensorProto.EXTERNAL:  # its bytes are in a file: never read
                raise UnknownShape([f"attribute {name} (stored as external data)"], ctx.name)
            v = numpy_helper.to_array(v)
        return np.asarray(v).reshape(-1).tolist() if not isinstance(v, (list, tuple)) else list(v)
    return []


def _size(ctx: Ctx, *names: str) -> int:
    """How many values the attributes ``names`` hold together, from their lengths (tensor
    attributes from their dims, never decoded)."""
    total = 0
    for name in names:
        v = ctx.attr(name)
        if isinstance(v, TensorProto):
            total += math.prod(v.dims)
        elif isinstance(v, (list, tuple)):
            total += len(v)
        elif v is not None:
            total += int(np.size(v))
    return total


def _mirrored(values: Sequence[Any], rows: int = 2) -> bool:
    """``values`` are 2 rows and the second is the first negated, exactly (skl2onnx's binary
    ``[-w, w]``); ``rows`` is how many rows they hold."""
    half, odd = divmod(len(values), 2)
    return rows == 2 and not odd and all(a == -b for a, b in zip(values[:half], values[half:]))


def _features(ctx: Ctx) -> Optional[int]:
    """F, the last dim of ``X``, when it is a known int."""
    x = ctx.inputs[0].shape if ctx.has_input(0) else None
    return x[-1] if x and isinstance(x[-1], int) and x[-1] > 0 else None


def _linear_classifier_params(ctx: Ctx) -> int:
    """``coefficients`` + ``intercepts``; one row and one intercept when there are 2 rows and
    the second is the first negated (rows = the intercepts, or the coefficients over F)."""
    coefficients, intercepts = _values(ctx, "coefficients"), _values(ctx, "intercepts")
    f = _features(ctx)
    rows = len(intercepts) or (len(coefficients) // f if f else 0)
    if _mirrored(coefficients, rows) and (not intercepts or _mirrored(intercepts)):
        return (len(coefficients) + len(intercepts)) // 2
    return len(coefficients) + len(intercepts)


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
    Parameters: ``coefficients`` + ``intercepts``, one row and one intercept when a binary
    model's second row and intercept are the first negated (skl2onnx's ``[-w, w]``).
    """
    ctx.attr_params = _linear_classifier_params(ctx)
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
    Parameters: ``coefficients`` + ``intercepts``.
    """
    ctx.attr_params = _size(ctx, "coefficients", "intercepts")
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
    Parameters: ``support_vectors`` + ``coefficients`` + ``rho`` + ``prob_a`` + ``prob_b``.
    """
    ctx.attr_params = _size(ctx, "support_vectors", "coefficients", "rho", "prob_a", "prob_b")
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
    N * post_transform. Parameters: ``support_vectors`` + ``coefficients`` + ``rho``.
    """
    ctx.attr_params = _size(ctx, "support_vectors", "coefficients", "rho")
    n, f = _samples(ctx)
    vectors = int(ctx.attr("n_supports", 0))
    if vectors:
        cost = _kernel_cost(ctx, n, f, vectors) + Cost.of_macs(n * vectors)
    else:
        cost = Cost.of_macs(n * f)
    extra = n + (n if ctx.attr("one_class", 0) else 0) + n * _post_transform(ctx)
    return cost + Cost.of_flops(extra)


# What a rule notes when a tree's links go back up the tree.
CYCLE_NOTE = "a tree links back to a node above it (a cycle): its depth is counted without that link"


def _depths(ctx: Ctx, roots: Sequence[Any], children: Dict[Any, Sequence[Any]]) -> int:
    """Sum over ``roots`` of the branch nodes on the longest path down from each (children
    maps a branch to its branches). Each node is expanded once and remembered, so the walk is
    linear in the nodes; a link back to a node still being walked (a malformed tree's cycle)
    is not followed, and noted."""
    depth: Dict[Any, int] = {}
    on_path = set()
    for root in roots:
        stack = [(root, False)]
        while stack:
            node, done = stack.pop()
            kids = children.get(node, ())
            if done:
                on_path.discard(node)
                depth[node] = 1 + max((depth.get(c, 0) for c in kids if c not in on_path), default=0)
            elif node not in depth and node not in on_path:
                on_path.add(node)
                stack.append((node, True))
                stack.extend((c, False) for c in kids if c not in depth and c not in on_path)
                if any(c in on_path for c in kids):
                    ctx.note = CYCLE_NOTE
    return sum(depth.get(r, 0) for r in roots)


def _legacy_trees(ctx: Ctx, weight_prefix: str) -> Tuple[int, int, int, int, int]:
    """(trees, nodes, leaves, sum of tree depths, sum over trees of the most weights held by
    one leaf). Nodes are the distinct (tree id, node id) pairs, leaves those in LEAF mode."""
    tree_ids = _values(ctx, "nodes_treeids")
    node_ids = _values(ctx, "nodes_nodeids")
    modes = [m.decode() if isinstance(m, bytes) else str(m) for m in _values(ctx, "nodes_modes")]
    true_ids = _values(ctx, "nodes_truenodeids")
    false_ids = _values(ctx, "nodes_falsenodeids")
    nodes = set(zip(tree_ids, node_ids))
    leaves = {(t, i) for t, i, m in zip(tree_ids, node_ids, modes) if m == "LEAF"}
    branches = {(t, i) for t, i, m in zip(tree_ids, node_ids, modes) if m != "LEAF"}
    children: Dict[Any, List[Any]] = {}
    roots: Dict[Any, Any] = {}
    for k, (t, i) in enumerate(zip(tree_ids, node_ids)):
        roots.setdefault(t, (t, i))
        if (t, i) in branches:
            children[(t, i)] = [(t, c) for c in (true_ids[k], false_ids[k]) if (t, c) in branches]
    depth = _depths(ctx, [r for r in roots.values() if r in branches], children)
    leaf_weights: Dict[Any, int] = {}
    for t, i in zip(_values(ctx, weight_prefix + "_treeids"), _values(ctx, weight_prefix + "_nodeids")):
        leaf_weights[(t, i)] = leaf_weights.get((t, i), 0) + 1
    most: Dict[Any, int] = {}
    for (t, _), count in leaf_weights.items():
        most[t] = max(most.get(t, 0), count)
    return len(roots), len(nodes), len(leaves), depth, sum(most.values())


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
    No parameters: trees = distinct ``nodes_treeids``, nodes = distinct (tree id, node id)
    pairs, leaves = those in LEAF mode.
    """
    classifier = ctx.op_type == "TreeEnsembleClassifier"
    ctx.trees, ctx.tree_nodes, ctx.tree_leaves, depth, adds = _legacy_trees(
        ctx, "class" if classifier else "target")
    n, _ = _samples(ctx)
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
    No parameters: trees = ``tree_roots``, leaves = the ``leaf_*`` entries, nodes = the
    leaves + the ``nodes_*`` entries, except an entry whose two branches are the same leaf
    (how a one-leaf tree is written: that tree has one node).
    """
    roots = _values(ctx, "tree_roots")
    true_ids, false_ids = _values(ctx, "nodes_truenodeids"), _values(ctx, "nodes_falsenodeids")
    true_leaf, false_leaf = _values(ctx, "nodes_trueleafs"), _values(ctx, "nodes_falseleafs")
    placeholders = sum(1 for t, f, tl, fl in zip(true_ids, false_ids, true_leaf, false_leaf)
                       if tl and fl and t == f)
    ctx.trees = len(roots)
    ctx.tree_leaves = _size(ctx, "leaf_weights")
    ctx.tree_nodes = len(true_ids) - placeholders + ctx.tree_leaves
    n, _ = _samples(ctx)
    children = {i: [c for c, leaf in ((true_ids[i], true_leaf[i]), (false_ids[i], false_leaf[i]))
                    if not leaf]
                for i in range(len(true_ids))}
    depth = _depths(ctx, roots, children)
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
    """Scaler, ``(x - offset) * scale``: flops = numel(X) * SCALER_FLOPS.

    Parameters: ``offset`` + ``scale`` (fitted, as a StandardScaler's ``mean_`` and ``scale_``).
    """
    ctx.attr_params = _size(ctx, "offset", "scale")
    return Cost.of_flops(ctx.in_numel(0) * SCALER_FLOPS)


@rule("Binarizer", "Imputer", kind="ml-transform", domain=ML_DOMAIN)
def compare_select(ctx: Ctx) -> Cost:
    """Binarizer (x > threshold) and Imputer (replace a missing value): one compare-select.

    flops = numel(X) * COMPARE_SELECT_FLOPS. Parameters: Imputer's imputed values (fitted, as a
    SimpleImputer's ``statistics_``); Binarizer's threshold and Imputer's replaced value are
    settings, not parameters.
    """
    if ctx.op_type == "Imputer":
        ctx.attr_params = _size(ctx, "imputed_value_floats", "imputed_value_int64s")
    return Cost.of_flops(ctx.in_numel(0) * COMPARE_SELECT_FLOPS)


zero_cost("ArrayFeatureExtractor", kind="data", domain=ML_DOMAIN,
          why="gathers the columns named by the indices (CONTROL)", roles={1: CONTROL})
zero_cost("FeatureVectorizer", kind="data", domain=ML_DOMAIN,
          why="concatenates its inputs into one feature vector")
zero_cost("CastMap", "DictVectorizer", "ZipMap", kind="ml-map", domain=ML_DOMAIN,
          why="converts between maps and tensors, a copy")
zero_cost("CategoryMapper", "LabelEncoder", "OneHotEncoder", kind="ml-map", domain=ML_DOMAIN,
          why="looks values up in a table given as attributes (a mapping, not parameters)")
