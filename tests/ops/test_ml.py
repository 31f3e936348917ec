"""ai.onnx.ml ops: counts from the attribute sizes, derived from the reference semantics.

Coefficients, support vectors and trees are attributes, so these ops never add parameters.
"""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from onnxscore.ops import registry
from onnxscore.ops.registry import CONTROL, ML_DOMAIN, Cost
from tests.opmodels import cost, node_model

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
    import onnxscore
    model = _ml_model("LinearRegressor", [8, 16], [("Y", FLOAT, None)],
                      {"coefficients": [0.1]*(3*16), "intercepts": [0.0]*3, "targets": 3})
    report = onnxscore.analyze(model)
    layer = report.layers[0]
    assert layer.status == "ok"
    assert layer.macs == 8*3*16  # N*T*F
    assert layer.flops == 2*(8*3*16) + 8*3  # + intercept adds
    assert report.totals.params == 0  # coefficients are attributes


def test_pipeline_tree_ensemble_tensor_attributes():
    import onnxscore
    attrs = dict(NEW_TREES)
    for name in ("nodes_splits", "nodes_modes", "leaf_weights"):
        attrs[name] = helper.make_tensor(name, TensorProto.FLOAT if attrs[name].dtype == np.float32
                                         else TensorProto.UINT8, [len(attrs[name])],
                                         attrs[name].tolist())
    model = _ml_model("TreeEnsemble", [6, 3], [("Y", FLOAT, None)], attrs)
    report = onnxscore.analyze(model)
    assert report.layers[0].flops == 6*((2 + 1) + 2)
    assert report.totals.params == 0
