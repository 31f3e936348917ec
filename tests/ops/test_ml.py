"""ai.onnx.ml ops: counts from the attribute sizes, derived from the reference semantics.

Coefficients, support vectors and the like are attributes: each rule says how many fitted
numbers they hold (``ctx.attr_params``, counted as parameters as scikit-learn counts its fitted
arrays), and tree ensembles how many trees, nodes and leaves they have (not parameters).
fixtures/sklearn/ holds real skl2onnx exports with scikit-learn's own counts.
"""
from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import onnxscore
from onnxscore.ops import registry
from onnxscore.ops.ml import CYCLE_NOTE
from onnxscore.ops.registry import CONTROL, ML_DOMAIN, Cost, UnknownShape
from onnxscore.render import render
from tests.opmodels import cost, ctx, node_model

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64


def ml(op, ins, outs, attrs=None):
    return cost(op, ins, outs, attrs, domain=ML_DOMAIN)


def test_linear_classifier():
    # N=5, F=4, 3 classes: 5*3*4 MACs; 5*3 intercept adds, 5*3*5 softmax, 5*(3-1) label compares.
    attrs = {"coefficients": [0.0]*(3*4), "intercepts": [0.0]*3, "classlabels_ints": [0, 1, 2],
             "post_transform": "SOFTMAX"}
    assert ml("LinearClassifier", [(5, 4)], [(5,), (5, 3)], attrs) == \
        Cost.of_macs(5*3*4, 5*3 + 5*3*5 + 5*(3 - 1))


def test_linear_classifier_binary_no_intercepts():
    # One coefficient row: 1 score per sample, 1 compare for the label; LOGISTIC 4 per score.
    attrs = {"coefficients": [0.0]*4, "classlabels_ints": [0, 1], "post_transform": "LOGISTIC"}
    assert ml("LinearClassifier", [(5, 4)], [(5,), (5, 2)], attrs) == Cost.of_macs(5*1*4, 5*1*4 + 5*1)


def test_linear_regressor():
    # N=5, F=4, 2 targets: 5*2*4 MACs, 5*2 intercept adds.
    attrs = {"coefficients": [0.0]*(2*4), "intercepts": [0.0]*2, "targets": 2}
    assert ml("LinearRegressor", [(5, 4)], [(5, 2)], attrs) == Cost.of_macs(5*2*4, 5*2)
    # 1-D input is one sample; no intercepts.
    assert ml("LinearRegressor", [(4,)], [(1, 1)], {"coefficients": [0.0]*4}) == Cost.of_macs(4)


def test_svm_classifier_rbf():
    # N=2, F=3, 3 classes with 2+2+1 = 5 support vectors, (3-1)*5 = 10 coefficients.
    attrs = {"kernel_type": "RBF", "kernel_params": [0.5, 0.0, 0.0], "classlabels_ints": [0, 1, 2],
             "vectors_per_class": [2, 2, 1], "support_vectors": [0.0]*(5*3),
             "coefficients": [0.0]*((3 - 1)*5), "rho": [0.0]*3}
    macs = 2*5*3 + 2*10  # N*V*F kernel dots, N*coefficients decision sums
    extra = 2*5*(3 + 2)  # per kernel: F subs, mul by -gamma, exp
    extra += 2*(3*3 + 2)  # 3 pairs * (2 adds + vote compare), argmax over 3 votes
    assert ml("SVMClassifier", [(2, 3)], [(2,), (2, 3)], attrs) == Cost.of_macs(macs, extra)


def test_svm_classifier_linear_mode():
    # No support vectors: 2 classes * F=3 coefficients; 2 rho adds and 1 compare per sample.
    attrs = {"coefficients": [0.0]*(2*3), "rho": [0.0], "classlabels_ints": [0, 1]}
    assert ml("SVMClassifier", [(4, 3)], [(4,), (4, 2)], attrs) == Cost.of_macs(4*2*3, 4*2 + 4*1)


def test_svm_regressor():
    # N=3, F=5, 4 POLY support vectors: 3*4*5 dots + 3*4 coefficient MACs; kernel mul, add, pow.
    attrs = {"kernel_type": "POLY", "kernel_params": [1.0, 0.0, 2.0], "n_supports": 4,
             "support_vectors": [0.0]*(4*5), "coefficients": [0.0]*4, "rho": [0.0]}
    assert ml("SVMRegressor", [(3, 5)], [(3, 1)], attrs) == Cost.of_macs(3*4*5 + 3*4, 3*4*3 + 3*1)
    # Linear (no support vectors), one_class: F MACs, rho add, sign compare.
    attrs = {"coefficients": [0.0]*5, "rho": [0.0], "one_class": 1}
    assert ml("SVMRegressor", [(3, 5)], [(3, 1)], attrs) == Cost.of_macs(3*5, 3*(1 + 1))


# Two legacy trees: tree 0 = root 0 -> (leaf 1, node 2 -> (leaf 3, leaf 4)), depth 2;
# tree 1 = root 0 -> (leaf 1, leaf 2), depth 1.
LEGACY_TREES = {
    "nodes_treeids": [0, 0, 0, 0, 0, 1, 1, 1],
    "nodes_nodeids": [0, 1, 2, 3, 4, 0, 1, 2],
    "nodes_modes": ["BRANCH_LEQ", "LEAF", "BRANCH_LT", "LEAF", "LEAF", "BRANCH_GT", "LEAF", "LEAF"],
    "nodes_truenodeids": [1, 0, 3, 0, 0, 1, 0, 0],
    "nodes_falsenodeids": [2, 0, 4, 0, 0, 2, 0, 0],
    "nodes_featureids": [0, 0, 1, 0, 0, 2, 0, 0],
    "nodes_values": [0.5, 0, 0.5, 0, 0, 0.5, 0, 0],
}


def test_tree_ensemble_regressor():
    # One weight per leaf: per sample 2 + 1 compares and 1 + 1 adds; N=10.
    attrs = dict(LEGACY_TREES, n_targets=1, target_treeids=[0, 0, 0, 1, 1],
                 target_nodeids=[1, 3, 4, 1, 2], target_ids=[0]*5, target_weights=[1.0]*5)
    assert ml("TreeEnsembleRegressor", [(10, 3)], [(10, 1)], attrs) == Cost(0, 10*((2 + 1) + (1 + 1)))
    # AVERAGE: + 1 divide per target; base_values: + 1 add per target.
    attrs.update(aggregate_function="AVERAGE", base_values=[0.0])
    assert ml("TreeEnsembleRegressor", [(10, 3)], [(10, 1)], attrs) == \
        Cost(0, 10*((2 + 1) + (1 + 1) + 1 + 1))


def test_tree_ensemble_classifier():
    # Two class weights per leaf: 2 + 2 adds; 2 classes with LOGISTIC (4 each), 1 label compare.
    attrs = dict(LEGACY_TREES, classlabels_int64s=[0, 1], post_transform="LOGISTIC",
                 class_treeids=[0, 0, 0, 0, 0, 0, 1, 1, 1, 1],
                 class_nodeids=[1, 1, 3, 3, 4, 4, 1, 1, 2, 2],
                 class_ids=[0, 1]*5, class_weights=[0.5]*10)
    assert ml("TreeEnsembleClassifier", [(10, 3)], [(10,), (10, 2)], attrs) == \
        Cost(0, 10*((2 + 1) + (2 + 2) + 2*4 + (2 - 1)))


def test_tree_ensemble_single_leaf_tree_has_no_compare():
    attrs = {"nodes_treeids": [0], "nodes_nodeids": [0], "nodes_modes": ["LEAF"],
             "nodes_truenodeids": [0], "nodes_falsenodeids": [0], "target_treeids": [0],
             "target_nodeids": [0], "target_ids": [0], "target_weights": [1.0], "n_targets": 1}
    assert ml("TreeEnsembleRegressor", [(4, 2)], [(4, 1)], attrs) == Cost(0, 4*1)  # one add


# TreeEnsemble (ml opset 5): roots [0, 2]; node 0 -> (node 1, leaf 0), node 1 -> (leaf 1,
# leaf 2): depth 2; node 2 -> (leaf 3, leaf 4): depth 1.
NEW_TREES = {
    "tree_roots": [0, 2],
    "nodes_featureids": [0, 1, 2],
    "nodes_splits": np.array([0.5, 0.5, 0.5], dtype=np.float32),
    "nodes_modes": np.array([0, 0, 0], dtype=np.uint8),
    "nodes_truenodeids": [1, 1, 3],
    "nodes_trueleafs": [0, 1, 1],
    "nodes_falsenodeids": [0, 2, 4],
    "nodes_falseleafs": [1, 1, 1],
    "leaf_targetids": [0, 0, 0, 0, 0],
    "leaf_weights": np.array([1, 2, 3, 4, 5], dtype=np.float32),
    "n_targets": 1,
}


def test_tree_ensemble():
    # Per sample 2 + 1 compares and one leaf add per tree (2); N=6.
    assert ml("TreeEnsemble", [(6, 3)], [(6, 1)], dict(NEW_TREES)) == Cost(0, 6*((2 + 1) + 2))
    # aggregate_function 0 = AVERAGE: + 1 divide; post_transform 2 = LOGISTIC: + 4.
    attrs = dict(NEW_TREES, aggregate_function=0, post_transform=2)
    assert ml("TreeEnsemble", [(6, 3)], [(6, 1)], attrs) == Cost(0, 6*((2 + 1) + 2 + 1 + 4))


@pytest.mark.parametrize("op,attrs,shape,flops", [
    ("Normalizer", {"norm": "MAX"}, (2, 4), 2*((4 - 1) + 4)),  # compares, divides
    ("Normalizer", {"norm": "L1"}, (2, 4), 2*(4 + (4 - 1) + 4)),  # abs, adds, divides
    ("Normalizer", {"norm": "L2"}, (2, 4), 2*(4 + (4 - 1) + 1 + 4)),  # squares, adds, sqrt, divides
    ("Scaler", {"scale": [2.0], "offset": [1.0]}, (3, 4), 3*4*2),  # sub, mul
    ("Binarizer", {}, (3, 4), 3*4*1),
    ("Imputer", {"imputed_value_floats": [0.0], "replaced_value_float": -1.0}, (3, 4), 3*4*1),
])
def test_transforms(op, attrs, shape, flops):
    assert ml(op, [shape], [shape], attrs) == Cost(0, flops)


@pytest.mark.parametrize("op", ["ArrayFeatureExtractor", "FeatureVectorizer", "CastMap",
                                "DictVectorizer", "ZipMap", "CategoryMapper", "LabelEncoder",
                                "OneHotEncoder"])
def test_zero_cost(op):
    r = registry.lookup(ML_DOMAIN, op)
    assert r.zero_cost and r.doc
    assert ml(op, [(3, 4), (2,)], [(3, 2)]) == Cost(0, 0)


def test_array_feature_extractor_indices_are_control():
    assert registry.lookup(ML_DOMAIN, "ArrayFeatureExtractor").role(1) == CONTROL


def _ml_model(op, x_shape, y_outputs, attrs):
    return node_model(op, [("X", FLOAT, x_shape)], y_outputs, attrs, domain=ML_DOMAIN,
                      extra_opsets={ML_DOMAIN: 5})


def test_pipeline_linear_regressor():
    model = _ml_model("LinearRegressor", [8, 16], [("Y", FLOAT, None)],
                      {"coefficients": [0.1]*(3*16), "intercepts": [0.0]*3, "targets": 3})
    report = onnxscore.analyze(model)
    layer = report.layers[0]
    assert layer.status == "ok"
    assert layer.macs == 8*3*16  # N*T*F
    assert layer.flops == 2*(8*3*16) + 8*3  # + intercept adds
    assert layer.params == layer.attr_params == 3*16 + 3  # coefficients + intercepts
    assert report.totals.params == report.totals.attr_params == 3*16 + 3


def test_pipeline_tree_ensemble_tensor_attributes():
    attrs = dict(NEW_TREES)
    for name in ("nodes_splits", "nodes_modes", "leaf_weights"):
        attrs[name] = helper.make_tensor(name, TensorProto.FLOAT if attrs[name].dtype == np.float32
                                         else TensorProto.UINT8, [len(attrs[name])],
                                         attrs[name].tolist())
    model = _ml_model("TreeEnsemble", [6, 3], [("Y", FLOAT, None)], attrs)
    report = onnxscore.analyze(model)
    assert report.layers[0].flops == 6*((2 + 1) + 2)
    assert report.totals.params == 0
    t = report.totals
    assert (t.trees, t.tree_nodes, t.tree_leaves) == (2, 3 + 5, 5)  # roots; branches + leaves; leaves


# Parameters held in attributes -------------------------------------------------------------

def _rule_ctx(op, ins, outs, attrs):
    """The context after the op's rule ran (what the walker reads)."""
    c = ctx(op, ins, outs, attrs, domain=ML_DOMAIN)
    registry.lookup(ML_DOMAIN, op).fn(c)
    return c


def _mirror(row):
    return [-v for v in row] + list(row)


ROW = [0.5, -1.0, 0.0, 2.0]
SVM_RBF = {"kernel_type": "RBF", "kernel_params": [0.5, 0.0, 0.0], "classlabels_ints": [0, 1, 2],
           "vectors_per_class": [2, 2, 1], "support_vectors": [0.0]*(5*3),
           "coefficients": [0.0]*((3 - 1)*5), "rho": [0.0]*3}


@pytest.mark.parametrize("op,x,outs,attrs,params", [
    ("LinearClassifier", (1, 64), [(1,), (1, 10)],
     {"coefficients": [0.1]*(10*64), "intercepts": [0.0]*10, "classlabels_ints": list(range(10))},
     10*64 + 10),  # coefficients + intercepts
    # skl2onnx's binary [-w, w], [-b, b]: one learned row and its intercept
    ("LinearClassifier", (1, 4), [(1,), (1, 2)],
     {"coefficients": _mirror(ROW), "intercepts": [0.3, -0.3], "classlabels_ints": [0, 1]}, 4 + 1),
    ("LinearClassifier", (1, 4), [(1,), (1, 2)],
     {"coefficients": _mirror(ROW), "classlabels_ints": [0, 1]}, 4),  # no intercepts: F from X
    # two rows learned apart: all of them
    ("LinearClassifier", (1, 4), [(1,), (1, 2)],
     {"coefficients": ROW + ROW, "intercepts": [0.3, -0.3], "classlabels_ints": [0, 1]}, 2*4 + 2),
    ("LinearClassifier", (1, 4), [(1,), (1, 2)],
     {"coefficients": _mirror(ROW), "intercepts": [0.3, 0.3], "classlabels_ints": [0, 1]}, 2*4 + 2),
    # one row of F = 4 whose halves happen to mirror: one row, not two
    ("LinearClassifier", (1, 4), [(1,), (1, 2)],
     {"coefficients": [1.0, 2.0, -1.0, -2.0], "classlabels_ints": [0, 1]}, 4),
    ("LinearRegressor", (5, 4), [(5, 2)],
     {"coefficients": [0.0]*(2*4), "intercepts": [0.0]*2, "targets": 2}, 2*4 + 2),
    ("SVMClassifier", (2, 3), [(2,), (2, 3)], dict(SVM_RBF), 5*3 + (3 - 1)*5 + 3),  # SVs + coef + rho
    ("SVMClassifier", (2, 3), [(2,), (2, 3)], dict(SVM_RBF, prob_a=[1.0]*3, prob_b=[0.0]*3),
     5*3 + (3 - 1)*5 + 3 + 3 + 3),  # + Platt scaling's prob_a, prob_b
    ("SVMClassifier", (4, 3), [(4,), (4, 2)],
     {"coefficients": [0.0]*(2*3), "rho": [0.0], "classlabels_ints": [0, 1]}, 2*3 + 1),  # linear
    ("SVMRegressor", (3, 5), [(3, 1)],
     {"kernel_type": "POLY", "kernel_params": [1.0, 0.0, 2.0], "n_supports": 4,
      "support_vectors": [0.0]*(4*5), "coefficients": [0.0]*4, "rho": [0.0]}, 4*5 + 4 + 1),
    ("Scaler", (3, 4), [(3, 4)], {"scale": [2.0]*4, "offset": [1.0]*4}, 4 + 4),  # scale + offset
    ("Scaler", (3, 4), [(3, 4)], {"scale": [2.0]}, 1),  # one scale for all features
    ("Imputer", (3, 4), [(3, 4)], {"imputed_value_floats": [0.0]*4, "replaced_value_float": -1.0}, 4),
    ("Imputer", (3, 4), [(3, 4)], {"imputed_value_int64s": [7], "replaced_value_int64": 0}, 1),
    ("Binarizer", (3, 4), [(3, 4)], {"threshold": 0.5}, 0),  # a setting, not fitted
    ("Normalizer", (3, 4), [(3, 4)], {"norm": "L2"}, 0),
    ("LabelEncoder", (3,), [(3,)], {"keys_int64s": [1, 2, 3], "values_int64s": [7, 8, 9]}, 0),  # a mapping
    ("CategoryMapper", (3,), [(3,)], {"cats_int64s": [1, 2], "cats_strings": ["a", "b"]}, 0),
    ("OneHotEncoder", (3,), [(3, 2)], {"cats_int64s": [1, 2]}, 0),
    ("ZipMap", (3, 2), [(3,)], {"classlabels_int64s": [0, 1]}, 0),
    ("TreeEnsembleRegressor", (10, 3), [(10, 1)],
     dict(LEGACY_TREES, n_targets=1, target_treeids=[0, 0, 0, 1, 1], target_nodeids=[1, 3, 4, 1, 2],
          target_ids=[0]*5, target_weights=[1.0]*5, base_values=[0.5]), 0),  # trees are their own measure
    ("TreeEnsemble", (6, 3), [(6, 1)], dict(NEW_TREES), 0),
])
def test_attribute_params(op, x, outs, attrs, params):
    assert _rule_ctx(op, [x], outs, attrs).attr_params == params


def test_attribute_params_known_without_shapes():
    # X of unknown shape: the cost is unknown, the parameters are not.
    c = ctx("SVMRegressor", [None], [(3, 1)], {"n_supports": 2, "support_vectors": [0.0]*(2*5),
                                               "coefficients": [0.0]*2, "rho": [0.0]}, domain=ML_DOMAIN)
    c.inputs = [registry.Tensor("X", None, FLOAT)]
    with pytest.raises(UnknownShape):
        registry.lookup(ML_DOMAIN, "SVMRegressor").fn(c)
    assert c.attr_params == 2*5 + 2 + 1  # support vectors + coefficients + rho
    model = _ml_model("LinearRegressor", None, [("Y", FLOAT, None)],
                      {"coefficients": [0.1]*16, "intercepts": [0.0]})
    report = onnxscore.analyze(model)
    assert report.layers[0].macs is None
    assert report.totals.params == 16 + 1


def _logistic_regression(classes=10, features=64):
    """A LinearClassifier as skl2onnx writes a LogisticRegression of ``classes`` over ``features``."""
    attrs = {"coefficients": [0.01]*(classes*features), "intercepts": [0.0]*classes,
             "classlabels_ints": list(range(classes)), "multi_class": 1, "post_transform": "SOFTMAX"}
    return _ml_model("LinearClassifier", [1, features],
                     [("label", INT64, [1]), ("probabilities", FLOAT, [1, classes])], attrs)


def test_pipeline_logistic_regression_650():
    report = onnxscore.analyze(_logistic_regression(10, 64))
    assert report.totals.params == 10*64 + 10 == 650  # coef_.size + intercept_.size
    assert report.totals.attr_params == 650
    assert report.netscore.params == 650
    assert [r.params for r in report.by_op_type()] == [650]
    assert report.layers[0].macs == 10*64


def test_pipeline_binary_logistic_regression_counts_the_learned_row():
    attrs = {"coefficients": _mirror([0.25]*64), "intercepts": [2.5, -2.5], "classlabels_ints": [0, 1],
             "post_transform": "LOGISTIC"}
    model = _ml_model("LinearClassifier", [1, 64], [("label", INT64, [1]), ("probabilities", FLOAT, [1, 2])],
                      attrs)
    report = onnxscore.analyze(model)
    assert report.totals.params == 64 + 1  # as scikit-learn: coef_ (1 x 64) + intercept_ (1)
    assert report.layers[0].macs == 2*64  # the runtime still computes both rows


def test_attribute_params_inside_a_loop_count_once():
    body = helper.make_graph(
        [helper.make_node("LinearRegressor", ["v_in"], ["v_out"], name="body_lr", domain=ML_DOMAIN,
                          coefficients=[0.1]*(8*8), intercepts=[0.0]*8, targets=8),
         helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond")],
        "body",
        [helper.make_tensor_value_info("i", INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", FLOAT, [1, 8])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", FLOAT, [1, 8])])
    inits = [onnx.numpy_helper.from_array(np.array(True), "cond"),
             onnx.numpy_helper.from_array(np.array(5, dtype=np.int64), "M")]
    loop = helper.make_node("Loop", ["M", "cond", "x"], ["y"], name="loop", body=body)
    graph = helper.make_graph([loop], "g", [helper.make_tensor_value_info("x", FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", FLOAT, [1, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21),
                                                    helper.make_opsetid(ML_DOMAIN, 3)])
    report = onnxscore.analyze(model)
    assert report.totals.params == 8*8 + 8  # once, not per iteration
    assert sum(layer.params for layer in report.top_layers) == report.totals.params
    assert next(x for x in report.layers if x.name == "loop").params == 8*8 + 8


# Trees: their own measure ------------------------------------------------------------------

def _trees(op, attrs, x=(10, 3)):
    c = _rule_ctx(op, [x], [(x[0], 1)], attrs)
    return c.trees, c.tree_nodes, c.tree_leaves


REGRESSOR_WEIGHTS = {"n_targets": 1, "target_treeids": [0, 0, 0, 1, 1], "target_nodeids": [1, 3, 4, 1, 2],
                     "target_ids": [0]*5, "target_weights": [1.0]*5}


def test_tree_counts():
    # LEGACY_TREES and NEW_TREES are the same two trees: 2 + 1 branches, 3 + 2 leaves.
    assert _trees("TreeEnsembleRegressor", dict(LEGACY_TREES, **REGRESSOR_WEIGHTS)) == (2, 5 + 3, 3 + 2)
    assert _trees("TreeEnsemble", dict(NEW_TREES)) == (2, 3 + 5, 5)
    # A one-leaf tree: the legacy LEAF root; in opset 5 one entry whose branches are the same leaf.
    one = {"nodes_treeids": [0], "nodes_nodeids": [0], "nodes_modes": ["LEAF"], "nodes_truenodeids": [0],
           "nodes_falsenodeids": [0], "target_treeids": [0], "target_nodeids": [0], "target_ids": [0],
           "target_weights": [1.0], "n_targets": 1}
    assert _trees("TreeEnsembleRegressor", one) == (1, 1, 1)
    one_v5 = {"tree_roots": [0], "nodes_featureids": [0], "nodes_splits": np.array([0.5], np.float32),
              "nodes_modes": np.array([0], np.uint8), "nodes_truenodeids": [0], "nodes_trueleafs": [1],
              "nodes_falsenodeids": [0], "nodes_falseleafs": [1], "leaf_targetids": [0],
              "leaf_weights": np.array([1.0], np.float32), "n_targets": 1}
    assert _trees("TreeEnsemble", one_v5) == (1, 1, 1)


def test_tree_link_back_to_root_ends():
    # Node 1's true branch points back at root 0: depth 2 (0 -> 1), counted by ids, noted.
    attrs = {"nodes_treeids": [0, 0, 0, 0], "nodes_nodeids": [0, 1, 2, 3],
             "nodes_modes": ["BRANCH_LEQ", "BRANCH_LEQ", "LEAF", "LEAF"],
             "nodes_truenodeids": [1, 0, 0, 0], "nodes_falsenodeids": [2, 3, 0, 0],
             "target_treeids": [0, 0], "target_nodeids": [2, 3], "target_ids": [0, 0],
             "target_weights": [1.0, 1.0], "n_targets": 1}
    c = ctx("TreeEnsembleRegressor", [(4, 2)], [(4, 1)], attrs, domain=ML_DOMAIN)
    assert registry.lookup(ML_DOMAIN, "TreeEnsembleRegressor").fn(c) == Cost(0, 4*(2 + 1))  # compares, add
    assert (c.trees, c.tree_nodes, c.tree_leaves) == (1, 4, 2)
    assert c.note == CYCLE_NOTE


def test_tree_with_shared_nodes_is_walked_once_per_node():
    # 60 branches, each with both links to the next: 2**60 paths, one longest path of 60.
    n = 60
    attrs = {"nodes_treeids": [0]*(n + 1), "nodes_nodeids": list(range(n + 1)),
             "nodes_modes": ["BRANCH_LEQ"]*n + ["LEAF"], "nodes_truenodeids": list(range(1, n + 1)) + [0],
             "nodes_falsenodeids": list(range(1, n + 1)) + [0], "target_treeids": [0], "target_nodeids": [n],
             "target_ids": [0], "target_weights": [1.0], "n_targets": 1}
    c = ctx("TreeEnsembleRegressor", [(1, 2)], [(1, 1)], attrs, domain=ML_DOMAIN)
    assert registry.lookup(ML_DOMAIN, "TreeEnsembleRegressor").fn(c) == Cost(0, n + 1)  # compares, add
    assert (c.trees, c.tree_nodes, c.tree_leaves) == (1, n + 1, 1)
    assert c.note == ""


def test_trees_in_the_summary_and_json():
    attrs = dict(LEGACY_TREES, **REGRESSOR_WEIGHTS)
    report = onnxscore.analyze(_ml_model("TreeEnsembleRegressor", [10, 3], [("Y", FLOAT, [10, 1])], attrs))
    t = report.totals
    assert (t.params, t.trees, t.tree_nodes, t.tree_leaves) == (0, 2, 8, 5)
    assert "trees             2 trees, 8 nodes, 5 leaves" in render([report], "text")
    d = report.to_dict()
    assert {k: d["totals"][k] for k in ("trees", "tree_nodes", "tree_leaves", "attr_params")} == \
        {"trees": 2, "tree_nodes": 8, "tree_leaves": 5, "attr_params": 0}
    assert (d["layers"][0]["trees"], d["layers"][0]["tree_nodes"], d["layers"][0]["tree_leaves"]) == (2, 8, 5)
    # No trees, no line; parameters held in attributes are said so.
    text = render([onnxscore.analyze(_logistic_regression())], "text")
    assert "trees " not in text
    assert "650 (650; 650 in node attributes)" in text


# Real exports: skl2onnx models against scikit-learn's own counts ---------------------------

SKLEARN = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "fixtures", "sklearn")
SKLEARN_REF = os.path.join(SKLEARN, "sklearn_reference.json")
SKLEARN_MODELS = (json.load(open(SKLEARN_REF))["models"] if os.path.exists(SKLEARN_REF) else {})


@pytest.mark.parametrize("name", sorted(SKLEARN_MODELS) or ["(none)"])
def test_sklearn_exports_match_sklearn_counts(name):
    path = os.path.join(SKLEARN, f"{name}.onnx")
    if not os.path.exists(path):
        pytest.skip(reason=f"{path} missing: run fixtures/sklearn/export_sklearn.py")
    ref = SKLEARN_MODELS[name]
    t = onnxscore.analyze(path).totals
    assert t.params == t.attr_params == ref["params"], ref["counted"]
    assert (t.trees, t.tree_nodes, t.tree_leaves) == \
        (ref.get("trees", 0), ref.get("tree_nodes", 0), ref.get("tree_leaves", 0))


def _as_tree_ensemble(legacy: onnx.NodeProto) -> dict:
    """A one-target TreeEnsembleRegressor's trees as TreeEnsemble (ml opset 5) attributes."""
    a = {x.name: helper.get_attribute_value(x) for x in legacy.attribute}
    keys = list(zip(a["nodes_treeids"], a["nodes_nodeids"]))
    branch = [k for k, m in zip(keys, a["nodes_modes"]) if m != b"LEAF"]
    leaf = [k for k, m in zip(keys, a["nodes_modes"]) if m == b"LEAF"]
    b_index, l_index = {k: i for i, k in enumerate(branch)}, {k: i for i, k in enumerate(leaf)}
    at = {k: i for i, k in enumerate(keys)}
    weight = dict(zip(zip(a["target_treeids"], a["target_nodeids"]), a["target_weights"]))
    true_ids, true_leaf, false_ids, false_leaf = [], [], [], []
    for t, i in branch:
        for child, ids, leafs in ((a["nodes_truenodeids"][at[(t, i)]], true_ids, true_leaf),
                                  (a["nodes_falsenodeids"][at[(t, i)]], false_ids, false_leaf)):
            ids.append(l_index[(t, child)] if (t, child) in l_index else b_index[(t, child)])
            leafs.append(int((t, child) in l_index))
    return {"tree_roots": [b_index[(t, 0)] for t in sorted(set(a["nodes_treeids"]))],
            "nodes_featureids": [a["nodes_featureids"][at[k]] for k in branch],
            "nodes_splits": np.array([a["nodes_values"][at[k]] for k in branch], np.float32),
            "nodes_modes": np.zeros(len(branch), np.uint8), "nodes_truenodeids": true_ids,
            "nodes_trueleafs": true_leaf, "nodes_falsenodeids": false_ids, "nodes_falseleafs": false_leaf,
            "leaf_targetids": [0]*len(leaf), "leaf_weights": np.array([weight[k] for k in leaf], np.float32),
            "n_targets": 1}


def test_sklearn_trees_as_tree_ensemble_opset5():
    # skl2onnx writes the legacy op; the same trees written for TreeEnsemble count the same.
    path = os.path.join(SKLEARN, "gradient_boosting.onnx")
    if not os.path.exists(path):
        pytest.skip(reason=f"{path} missing: run fixtures/sklearn/export_sklearn.py")
    ref = SKLEARN_MODELS["gradient_boosting"]
    legacy = next(n for n in onnx.load(path).graph.node if n.op_type == "TreeEnsembleRegressor")
    attrs = _as_tree_ensemble(legacy)
    for name in ("nodes_splits", "nodes_modes", "leaf_weights"):
        attrs[name] = onnx.numpy_helper.from_array(attrs[name], name)
    model = node_model("TreeEnsemble", [("X", FLOAT, [1, 64])], [("Y", FLOAT, [1, 1])], attrs,
                       domain=ML_DOMAIN, opset=21, extra_opsets={ML_DOMAIN: 5})
    report = onnxscore.analyze(model)
    t = report.totals
    assert (t.params, t.trees, t.tree_nodes, t.tree_leaves) == \
        (0, ref["trees"], ref["tree_nodes"], ref["tree_leaves"])
    # same depths too: the legacy op costs one more add, for its base value
    assert report.layers[0].flops + 1 == onnxscore.analyze(path).layers[0].flops
