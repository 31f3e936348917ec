"""onnxscore.study: the NetScore paper's study over a zoo of small models built here.

Every model is a MatMul chain ``x[B, n] @ W1[n, 100] @ W2[100, 100]`` (no bias), so

    params = n*100 + 100*100            (the two weight matrices)
    MACs   = B * params                 (B rows through each matrix, one MAC per multiply-add)

and with p in millions, m = B * p / 1000 in billions, NetScore (alpha=2, beta=gamma=0.5) is

    Omega = 20*log10(a**2 / sqrt(p*m)) = 40*log10(a) - 20*log10(p) - 10*log10(B) + 30.

The zoo (name: n, B -> params, MACs; top-1 %; Omega; info density a/p):

    a: n=900,  B=1  -> 100,000,   100,000; 80 (table);    40*1.903090 + 20      + 30      = 126.1236;  800
    b: n=9900, B=1  -> 1,000,000, 1,000,000; 90 (table);  40*1.954243 + 0       + 30      = 108.1697;   90
    c: n=400,  B=10 -> 50,000,    500,000; 70 (table);    40*1.845098 + 26.0206 - 10 + 30 = 119.8245; 1400
    d: n=1900, B=2  -> 200,000,   400,000; 85 (metadata); 40*1.929419 + 13.9794 - 3.0103 + 30 = 118.1459; 425
    e: n=4900, B=1  -> 500,000,   500,000; 60 (table);    40*1.778151 + 6.0206  + 30      = 107.1466;  120
    sub/f: n=400, B=1 -> 50,000,   50,000; no accuracy
    broken.onnx: not ONNX

Ranks (1 = best): NetScore a1 c2 d3 b4 e5; top-1 b1 d2 a3 c4 e5; density c1 a2 d3 e4 b5.
"""
import csv
import gc
import inspect
import io
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxscore
from onnxscore import study as S
from onnxscore.budget import figures_for
from onnxscore.cache import Cache, figures_key
from onnxscore.errors import OnnxScoreError
from tests.builders import strip_cache

HIDDEN = 100


def chain(n: int, batch: int, accuracy=None):
    """x[batch, n] @ W1[n, 100] @ W2[100, 100]: params n*100 + 10,000, MACs batch * params."""
    inits = [numpy_helper.from_array(np.zeros((n, HIDDEN), np.float32), "w1"),
             numpy_helper.from_array(np.zeros((HIDDEN, HIDDEN), np.float32), "w2")]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node("MatMul", ["h", "w2"], ["y"], name="fc2")]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, HIDDEN])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if accuracy is not None:
        helper.set_model_props(model, {"onnxscore.accuracy": str(accuracy)})
    return model


def write_model(path, n, batch, accuracy=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(chain(n, batch, accuracy).SerializeToString())
    return str(path)


ZOO = {"a": (900, 1, None), "b": (9900, 1, None), "c": (400, 10, None), "d": (1900, 2, 85),
       "e": (4900, 1, None), "sub/f": (400, 1, None)}
TABLE = {"a": 80.0, "b": 90.0, "c": 70.0, "e": 60.0}  # d's 85 is in its metadata
TIMM_HEADER = "model,top1,top1_err,top5,top5_err,param_count,img_size,crop_pct,interpolation"


def timm_csv(path, table=TABLE, extra=("zz_not_here", 99.5)):
    """A table in the format of timm's results/results-imagenet.csv (its header, as is); the
    other columns are filler (top1_err = 100 - top1), never read."""
    rows = [TIMM_HEADER] + [f"{name},{top1},{100 - top1:.3f},95.000,5.000,1.00,224,0.875,bicubic"
                            for name, top1 in [*table.items(), extra]]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def make_zoo(root):
    """The zoo of the module docstring under ``root/zoo``, with its timm-format table."""
    for name, (n, batch, acc) in ZOO.items():
        write_model(root / "zoo" / f"{name}.onnx", n, batch, acc)
    (root / "zoo" / "broken.onnx").write_bytes(b"not an onnx model")
    return str(root / "zoo"), timm_csv(root / "results-imagenet.csv")


@pytest.fixture(autouse=True)
def own_cache_dir(tmp_path, monkeypatch):
    """Never the user's ~/.cache: each test has its own default cache folder."""
    monkeypatch.setenv("ONNXSCORE_CACHE_DIR", str(tmp_path / "default-cache"))


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    folder, table = make_zoo(root)
    old = os.getcwd()
    os.chdir(root)
    try:
        yield "zoo", table
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def study(zoo):
    folder, table = zoo
    return onnxscore.rank([folder], onnxscore.load_accuracies(table), jobs=1)


def ns(a, p_millions, batch):
    """Omega with m = batch * p / 1000 GMACs (module docstring)."""
    return 40 * math.log10(a) - 20 * math.log10(p_millions) - 10 * math.log10(batch) + 30


# --------------------------------------------------------------------------- pure functions

def test_competition_ranks_share_and_skip():
    # 90 > 85 = 85 > 80: ranks 1, 2, 2, 4 (descending); ascending 80 first: 1, 2, 2, 4 reversed
    assert S.competition_ranks({"a": 90, "b": 85, "c": 85, "d": 80}) == {"a": 1, "b": 2, "c": 2, "d": 4}
    assert S.competition_ranks({"a": 90, "b": 85, "c": 85, "d": 80}, descending=False) == \
        {"d": 1, "b": 2, "c": 2, "a": 4}


def test_spearman_without_ties_is_the_d_squared_formula():
    # ranks x 1..5, y 3,4,2,1,5: d = -2,-2,1,3,0, sum d^2 = 18, rho = 1 - 6*18/(5*24) = 0.1
    assert S.spearman([5, 4, 3, 2, 1], [3, 2, 4, 5, 1]) == pytest.approx(0.1, abs=1e-12)
    assert S.spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0, abs=1e-12)


def test_spearman_and_kendall_with_ties():
    xs, ys = [1, 2, 2, 3], [1, 3, 2, 4]
    # average ranks x: 1, 2.5, 2.5, 4; y: 1, 3, 2, 4; both means 2.5
    # sxy = (-1.5)(-1.5) + 0 + 0 + 1.5*1.5 = 4.5; sxx = 4.5; syy = 2.25 + .25 + .25 + 2.25 = 5
    # rho = 4.5 / sqrt(4.5*5) = sqrt(0.9)
    assert S.spearman(xs, ys) == pytest.approx(math.sqrt(0.9), abs=1e-12)
    # 6 pairs: (1,2) (1,3) (1,4) (2,4) (3,4) concordant, (2,3) tied in x only:
    # tau-b = (5 - 0) / sqrt((5 + 0 + 1) * (5 + 0 + 0)) = 5 / sqrt(30)
    assert S.kendall_tau_b(xs, ys) == pytest.approx(5 / math.sqrt(30), abs=1e-12)
    assert S.average_ranks([3, 1, 3, 3]) == [3.0, 1.0, 3.0, 3.0]  # ranks 2, 3, 4 share their mean


def kendall_by_pairs(xs, ys):
    """Kendall's tau-b by its definition, every pair visited (O(n^2)): the reference."""
    c = d = tx = ty = 0
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            dx, dy = xs[i] - xs[j], ys[i] - ys[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                tx += 1
            elif dy == 0:
                ty += 1
            elif (dx > 0) == (dy > 0):
                c += 1
            else:
                d += 1
    denominator = math.sqrt((c + d + tx) * (c + d + ty))
    return None if len(xs) < 2 or denominator == 0 else (c - d) / denominator


def test_kendall_in_n_log_n_equals_every_pair_visited():
    """The merge-sort count (Knight) gives the same integers C, D, Tx, Ty as the definition,
    hence the very same float, with ties in x, in y and in both."""
    rng = np.random.default_rng(0)
    for trial in range(400):
        n = int(rng.integers(0, 30))
        levels = int(rng.choice([2, 3, 6, 1000]))
        xs = [float(v) / 2 for v in rng.integers(0, levels, n)]
        ys = [float(v) / 3 for v in rng.integers(0, levels, n)] if trial % 5 else [-x for x in xs]
        assert S.kendall_tau_b(xs, ys) == kendall_by_pairs(xs, ys), (xs, ys)
    # 1,000 models (a zoo's study) is no longer a million pairs in Python
    xs, ys = list(rng.random(1000)), list(rng.random(1000))
    assert S.kendall_tau_b(xs, ys) == kendall_by_pairs(xs, ys)
    # both ways of counting inversions (the merge sort is for more than 20,000 models)
    for n in (0, 1, 2, 7, 64, 257):
        values = [float(v) for v in rng.integers(0, 5, n)]
        by_pairs = sum(1 for i in range(n) for j in range(i + 1, n) if values[i] > values[j])
        assert S._inversions(values) == S._inversions(values, small=0) == by_pairs


def test_correlations_undefined_for_one_model_or_a_constant():
    assert S.spearman([1], [2]) is None and S.kendall_tau_b([1], [2]) is None
    assert S.spearman([1, 1, 1], [1, 2, 3]) is None and S.kendall_tau_b([1, 1, 1], [1, 2, 3]) is None


def test_pareto_front():
    # (top-1, cost): y is dominated by x (same top-1, higher cost); w by z (lower top-1, same cost);
    # twins u and v are equal in both: neither dominates (no strict), both on the front
    points = {"x": (70, 10), "y": (70, 20), "z": (80, 30), "w": (75, 30), "u": (90, 50), "v": (90, 50)}
    assert S.pareto_front(points) == ["x", "z", "u", "v"]


# --------------------------------------------------------------------------- accuracy tables

def test_timm_results_csv_as_is(tmp_path):
    table = onnxscore.load_accuracies(timm_csv(tmp_path / "results-imagenet.csv"))
    assert dict(table) == {"a": 80.0, "b": 90.0, "c": 70.0, "e": 60.0, "zz_not_here": 99.5}


def test_json_object_list_and_column_names(tmp_path):
    (tmp_path / "o.json").write_text('{"a": 80, "zoo/b.onnx": "90.5"}')
    assert dict(onnxscore.load_accuracies(tmp_path / "o.json")) == {"a": 80.0, "zoo/b.onnx": 90.5}
    (tmp_path / "l.json").write_text('[{"arch": "a", "acc1": 80.25}, {"arch": "b", "acc1": 70}]')
    assert dict(onnxscore.load_accuracies(str(tmp_path / "l.json"), "arch", "acc1")) == {"a": 80.25, "b": 70.0}
    (tmp_path / "t.csv").write_text("name;x\n")  # no such column: the error lists those there are
    with pytest.raises(S.AccuracyError, match=r"t.csv: no column 'model' \(columns: name;x\)"):
        onnxscore.load_accuracies(tmp_path / "t.csv")


@pytest.mark.parametrize("text, message", [
    ("model,top1\na,80\nb,eighty\n", r"bad.csv: row 3: top-1 'eighty' is not a number"),
    ("model,top1\na,80\nb,\n", r"bad.csv: row 3: top-1 '' is not a number"),
    ("model,top5\na,80\n", r"bad.csv: no column 'top1' \(columns: model, top5\); choose one with --accuracy-column"),
    ("model,top1\na,180\n", r"bad.csv: row 2: top-1 180 is not a percentage in \(0, 100\]"),
    ("model,top1\na,0.76\nb,0.81\n", r"bad.csv: every top-1 is at most 1: fractions\?"),
    ("model,top1\na,80\na,81\n", r"bad.csv: row 3: 'a' has top-1 81, but row 2 gave 80"),
    ("model,top1\n,80\n", r"bad.csv: row 2: empty model name"),
    ("model,top1\na\n", r"bad.csv: row 2: 1 cell\(s\), fewer than the header's 2"),
])
def test_bad_tables_are_one_line_errors_naming_file_and_row(tmp_path, text, message):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(S.AccuracyError, match=message) as e:
        onnxscore.load_accuracies(tmp_path / "bad.csv")
    assert "\n" not in str(e.value)


def test_bad_json_tables(tmp_path):
    for text, message in (('{"a": true}', r"key 'a': top-1 True is not a number"),
                          ('[{"model": "a"}]', r"item 1: expected an object with 'model' and 'top1'"),
                          ('{"a": ', "not valid JSON"), ('42', "expected a JSON object")):
        (tmp_path / "t.json").write_text(text)
        with pytest.raises(S.AccuracyError, match=message):
            onnxscore.load_accuracies(tmp_path / "t.json")
    with pytest.raises(S.AccuracyError, match="cannot read the accuracy table"):
        onnxscore.load_accuracies(tmp_path / "missing.csv")


def test_matching_by_path_then_stem_then_metadata(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("p", "q", "r", "s"):
        write_model(tmp_path / "models" / "x" / f"{name}.onnx", 900, 1, 50 if name == "s" else None)
    (tmp_path / "tables").mkdir()
    table_path = tmp_path / "tables" / "acc.json"
    table_path.write_text(json.dumps({
        "models/x/p.onnx": 81,       # p: path relative to the working directory (as given)
        "x/q.onnx": 82,              # q: path relative to the folder argument "models"
        "../models/x/r.onnx": 83,    # r: path relative to the table's folder
        "q": 99,                     # q's stem: the path above wins
        "s.onnx": 84,                # s: its file name, over its metadata (50)
        "nobody": 70, "zz": 71}))
    found = onnxscore.rank(["models"], onnxscore.load_accuracies(table_path), jobs=1)
    got = {r.model: (r.top1, r.accuracy_source) for r in found.rows}
    assert got == {"p": (81, "table"), "q": (82, "table"), "r": (83, "table"), "s": (84, "table")}
    assert found.unmatched_accuracy == ("nobody", "q", "zz")  # q's stem entry was never used
    plain = onnxscore.rank(["models"], {"p": 60}, jobs=1)  # a mapping; s falls back to its metadata
    assert {r.model: (r.top1, r.accuracy_source) for r in plain.rows} == \
        {"p": (60, "table"), "q": (None, "none"), "r": (None, "none"), "s": (50, "metadata")}
    assert plain.missing_accuracy == ("q", "r")


def test_colliding_stems_are_named_by_path(tmp_path):
    a = write_model(tmp_path / "one" / "net.onnx", 900, 1, 80)
    b = write_model(tmp_path / "two" / "net.onnx", 900, 1, 80)
    names = sorted(r.model for r in onnxscore.rank([a, b, a], jobs=1).rows)  # a given twice: once
    assert names == sorted([a[:-5].replace(os.sep, "/"), b[:-5].replace(os.sep, "/")])


# --------------------------------------------------------------------------- the study

def test_rows_metrics_ranks_and_order(study):
    rows = {r.model: r for r in study.rows}
    assert [r.model for r in study.rows] == ["a", "c", "d", "b", "e", "f", "broken"]
    assert [r.rank for r in study.rows] == [1, 2, 3, 4, 5, None, None]
    expected = {"a": (100_000, 100_000, 80, ns(80, 0.1, 1), 800),       # 900*100 + 100*100, B=1
                "b": (1_000_000, 1_000_000, 90, ns(90, 1.0, 1), 90),   # 9900*100 + 10,000
                "c": (50_000, 500_000, 70, ns(70, 0.05, 10), 1400),   # 400*100 + 10,000; B=10
                "d": (200_000, 400_000, 85, ns(85, 0.2, 2), 425),     # 1900*100 + 10,000; B=2
                "e": (500_000, 500_000, 60, ns(60, 0.5, 1), 120)}     # 4900*100 + 10,000
    for name, (params, macs, top1, omega, density) in expected.items():
        r = rows[name]
        assert (r.params, r.macs, r.flops, r.top1) == (params, macs, 2 * macs, top1)
        assert r.netscore == pytest.approx(omega, rel=1e-12) and r.info_density == pytest.approx(density)
        assert r.weight_bytes == 4 * params and r.complete and r.error is None
    # the docstring's four decimals, by hand with 7-digit logs (e: 71.12605 + 6.02060 + 30 = 107.14665,
    # and with 10 digits 107.1466499: it rounds down)
    assert [round(rows[m].netscore, 4) for m in "acdbe"] == [126.1236, 119.8245, 118.1459, 108.1697, 107.1466]
    assert rows["d"].accuracy_source == "metadata" and rows["a"].accuracy_source == "table"
    assert {m: dict(rows[m].ranks) for m in "abcde"} == {
        "a": {"netscore": 1, "top1": 3, "info_density": 2}, "b": {"netscore": 4, "top1": 1, "info_density": 5},
        "c": {"netscore": 2, "top1": 4, "info_density": 1}, "d": {"netscore": 3, "top1": 2, "info_density": 3},
        "e": {"netscore": 5, "top1": 5, "info_density": 4}}
    f = rows["f"]  # no accuracy: costs only (400*100 + 10,000), out of ranks and fronts
    assert (f.params, f.macs, f.top1, f.netscore, f.info_density) == (50_000, 50_000, None, None, None)
    assert set(f.ranks.values()) == {None} and not any(f.pareto.values())
    assert study.missing_accuracy == ("f",) and study.unmatched_accuracy == ("zz_not_here",)


def test_pareto_fronts(study):
    # top-1 vs MACs: a (100K, 80), d (400K, 85), c (500K, 70), e (500K, 60), b (1M, 90):
    # c and e are dominated by d (85 >= 70, 60 at 400K <= 500K); a, d, b each beat all cheaper
    assert study.pareto["macs"] == ("a", "d", "b")
    # top-1 vs params: c (50K, 70), a (100K, 80), d (200K, 85), e (500K, 60), b (1M, 90): e by d
    assert study.pareto["params"] == ("c", "a", "d", "b")
    assert {r.model for r in study.rows if r.pareto["macs"]} == {"a", "d", "b"}


def test_correlations_by_hand(study):
    # NetScore ranks a1 c2 d3 b4 e5; top-1 a3 c4 d2 b1 e5; density a2 c1 d3 b5 e4 (n = 5, no ties)
    # Spearman, 1 - 6*sum(d^2)/(5*24):
    #   NetScore~top-1:   d = -2,-2,1,3,0 -> 18 -> 1 - 108/120 = 0.1
    #   NetScore~density: d = -1,1,0,-1,1 -> 4  -> 1 - 24/120  = 0.8
    #   top-1~density:    d = 1,3,-1,-4,1 -> 28 -> 1 - 168/120 = -0.4
    # Kendall, (C - D)/10 over the 10 pairs, the second metric's ranks in the first's order:
    #   NetScore~top-1:   3,4,2,1,5 -> C 5, D 5 -> 0.0
    #   NetScore~density: 2,1,3,5,4 -> C 8, D 2 -> 0.6
    #   top-1~density (top-1 order b,d,a,c,e): 5,3,2,1,4 -> C 3, D 7 -> -0.4
    assert study.n_correlated == 5
    assert study.spearman == pytest.approx({"netscore~top1": 0.1, "netscore~info_density": 0.8,
                                            "top1~info_density": -0.4}, abs=1e-12)
    assert study.kendall == pytest.approx({"netscore~top1": 0.0, "netscore~info_density": 0.6,
                                           "top1~info_density": -0.4}, abs=1e-12)


def test_failed_model_is_a_row(study):
    broken = study.rows[-1]
    assert broken.model == "broken" and broken.path == "zoo/broken.onnx"
    assert broken.error.startswith("zoo/broken.onnx: not an ONNX model") and "\n" not in broken.error
    assert (broken.params, broken.netscore, broken.cached, broken.internal) == (None, None, False, False)
    assert study.counts == {"models": 7, "analyzed": 6, "cached": 0, "failed": 1, "without_accuracy": 1}


def test_to_dict_schema(study):
    data = study.to_dict()
    assert list(data) == ["schema", "by", "alpha", "beta", "gamma", "device", "measure", "units", "rows", "pareto",
                          "correlations", "missing_accuracy", "unmatched_accuracy", "counts"]
    assert data["device"] is None  # no --device: no estimates, no latency front
    assert data["measure"] is None  # no --measure: no measured latency, no front of it
    assert data["schema"] == "onnxscore.study/1" and (data["alpha"], data["beta"], data["gamma"]) == (2.0, 0.5, 0.5)
    assert data["units"]["netscore"] == "dB; a in %, p in millions of parameters, m in billions of MACs"
    assert list(data["rows"][0]) == ["rank", "model", "path", "top1", "accuracy_source", "params", "macs", "flops",
                                     "weight_bytes", "complete", "info_density", "netscore", "est_latency_ms",
                                     "est_latency_unknown", "latency_ms", "latency_p90_ms", "latency_error", "ranks",
                                     "pareto", "cached", "error"]
    assert (data["rows"][0]["est_latency_ms"], data["rows"][0]["est_latency_unknown"]) == (None, None)
    assert [data["rows"][0][k] for k in ("latency_ms", "latency_p90_ms", "latency_error")] == [None, None, None]
    assert data["rows"][0]["ranks"] == {"netscore": 1, "top1": 3, "info_density": 2}
    assert data["pareto"] == {"macs": ["a", "d", "b"], "params": ["c", "a", "d", "b"]}
    assert set(data["correlations"]) == {"spearman", "kendall", "n"}
    json.dumps(data, allow_nan=False)  # plain JSON


def test_by_a_cost_smallest_first_with_a_tie(zoo):
    folder, table = zoo
    by_macs = onnxscore.rank(folder, table, by="macs", jobs=1)
    # MACs: f 50K, a 100K, d 400K, c = e 500K (a tie: both 4, then 6), b 1M; the failed row last
    assert [(r.model, r.rank) for r in by_macs.rows] == [("f", 1), ("a", 2), ("d", 3), ("c", 4), ("e", 4),
                                                         ("b", 6), ("broken", None)]
    by_density = onnxscore.rank(folder, table, by="info_density", jobs=1)
    assert [r.model for r in by_density.rows] == ["c", "a", "d", "e", "b", "f", "broken"]
    with pytest.raises(OnnxScoreError, match="cannot rank by 'speed'"):
        onnxscore.rank(folder, table, by="speed")


def test_exponents_change_netscore(zoo):
    folder, table = zoo
    found = onnxscore.rank(folder, table, alpha=1.0, beta=1.0, gamma=0.0, jobs=1)
    # Omega = 20*log10(a / p): a = 80, p = 0.1 -> 20*log10(800)
    assert {r.model: r.netscore for r in found.rows}["a"] == pytest.approx(20 * math.log10(800), rel=1e-12)
    assert found.to_dict()["beta"] == 1.0


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(OnnxScoreError, match="no ONNX model found in"):
        onnxscore.rank(str(tmp_path), jobs=1)


# --------------------------------------------------------------------------- cache and scale

def test_second_run_all_from_cache_same_study(zoo, tmp_path):
    folder, table = zoo
    cache = Cache(str(tmp_path / "c"))
    first = onnxscore.rank(folder, table, jobs=1, cache=cache)
    second = onnxscore.rank(folder, table, jobs=1, cache=cache)
    assert first.counts["cached"] == 0 and first.counts["analyzed"] == 6
    # the broken model is never cached: it is tried (and fails) every time
    assert second.counts == {"models": 7, "analyzed": 0, "cached": 6, "failed": 1, "without_accuracy": 1}
    assert all(r.cached for r in second.rows if r.error is None)
    assert strip_cache(first.to_dict()) == strip_cache(second.to_dict())


def test_interrupted_run_keeps_its_progress(zoo, tmp_path, monkeypatch):
    folder, table = zoo
    calls = []
    real = S.analyze_figures
    monkeypatch.setattr(S, "analyze_figures", lambda path, *a: calls.append(path) or real(path, *a))

    class Interrupted(Exception):
        pass

    def stop_after_three(done, total):
        if done == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        onnxscore.rank(folder, table, jobs=1, cache=str(tmp_path / "c"), progress=stop_after_three)
    # analysis order is the folder's sorted order: a, b, broken (fails, not cached), then stop
    assert calls == ["zoo/a.onnx", "zoo/b.onnx", "zoo/broken.onnx"]
    calls.clear()
    again = onnxscore.rank(folder, table, jobs=1, cache=str(tmp_path / "c"))
    assert calls == ["zoo/broken.onnx", "zoo/c.onnx", "zoo/d.onnx", "zoo/e.onnx", "zoo/sub/f.onnx"]
    assert (again.counts["cached"], again.counts["analyzed"], again.counts["failed"]) == (2, 4, 1)
    fresh = onnxscore.rank(folder, table, jobs=1)
    assert strip_cache(again.to_dict()) == strip_cache(fresh.to_dict())


def test_check_and_rank_share_cache_entries(zoo, tmp_path):
    folder, table = zoo
    cache = Cache(str(tmp_path / "c"))
    figures, hit = figures_for("zoo/a.onnx", {}, {}, cache)  # what `onnxscore check` stores
    assert not hit
    found = onnxscore.rank(["zoo/a.onnx", "zoo/c.onnx"], table, jobs=1, cache=cache)
    assert {r.model: r.cached for r in found.rows} == {"a": True, "c": False}
    assert figures_for("zoo/c.onnx", {}, {}, cache)[1]  # and rank's entries serve check


def test_jobs_two_same_json_and_cache_written_per_model(zoo, tmp_path):
    folder, table = zoo
    one = onnxscore.rank(folder, table, jobs=1).to_dict()
    stops = []

    class Interrupted(Exception):
        pass

    def stop_after_two(done, total):
        if done == 2:
            stops.append(done)
            raise Interrupted

    with pytest.raises(Interrupted):
        onnxscore.rank(folder, table, jobs=2, cache=str(tmp_path / "c"), progress=stop_after_two)
    two = onnxscore.rank(folder, table, jobs=2, cache=str(tmp_path / "c"))
    # the 2 models finished before the interruption were written at once (a failed one is not)
    assert 1 <= two.counts["cached"] <= 2 and two.counts["cached"] + two.counts["analyzed"] == 6
    assert strip_cache(two.to_dict()) == strip_cache(one)
    assert onnxscore.rank(folder, table, jobs=2).to_dict() == one  # no cache: the very same JSON


def run_isolated(tmp_path, code, *args, timeout=180):
    """Run ``code`` as a script in a session of its own, output to files (no pipe to hold open),
    then kill whatever it left in that session. Killing a worker mid-analysis can leave
    processes behind: the analyzer's forked shape-inference child outlives its killed parent
    (onnxscore/model.py, _contained_inference), and they must not outlive the test."""
    script = tmp_path / "script.py"
    script.write_text(code)
    out, err = tmp_path / "script.out", tmp_path / "script.err"
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen([sys.executable, str(script), *args], stdin=subprocess.DEVNULL, stdout=o,
                                stderr=e, start_new_session=True, cwd=os.getcwd(),
                                env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        try:
            code = proc.wait(timeout=timeout)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
    assert code == 0, err.read_text()[-3000:]
    return json.loads(out.read_text())


def pool_workers(psutil, me, before=()):
    """A pool's workers: this process's children forked as copies of it, or the children of
    its forkserver (onnxscore.study._pool_context); not the forkserver, nor the resource
    tracker, nor a worker's shape-inference children, nor the children in ``before`` (this
    process's own inference child, from an analysis before the study)."""
    helpers = set(before)
    for child in me.children():
        try:
            if {"forkserver", "resource_tracker"} & set(" ".join(child.cmdline()).replace(".", " ").split()):
                helpers.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    workers = []
    for p in me.children(recursive=True):
        try:
            parent = p.ppid()
        except psutil.NoSuchProcess:
            continue
        if (parent in helpers and parent not in before) or (parent == me.pid and p.pid not in helpers):
            workers.append(p)
    return workers


POOL_KILL = inspect.getsource(pool_workers) + """
import json, os, signal, sys
import psutil
import onnxscore

killed = []

def kill_a_worker(done, total):
    # done == 0 is the call before any analysis
    if done >= 1 and not killed:
        workers = pool_workers(psutil, psutil.Process())
        if workers:
            os.kill(workers[0].pid, signal.SIGKILL)
            killed.append(workers[0].pid)

if __name__ == "__main__":
    study = onnxscore.rank(sys.argv[1], sys.argv[2], jobs=2, progress=kill_a_worker)
    print(json.dumps({"killed": killed, "study": study.to_dict()}))
"""


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="the test sweeps its processes with killpg (POSIX)")
def test_a_killed_pool_worker_loses_nothing(zoo, tmp_path):
    """A worker process killed mid-study breaks the pool; the unfinished models are analyzed
    again, each in a process of its own, and the study is the same."""
    pytest.importorskip("psutil", reason="psutil (a dependency of dask.distributed) finds the workers")
    folder, table = zoo
    expected = onnxscore.rank(folder, table, jobs=1).to_dict()
    got = run_isolated(tmp_path, POOL_KILL, folder, table)
    assert got["killed"] and got["study"] == expected


def _interrupt_disposition(pid):
    """Whether SIGINT is ignored or blocked in process ``pid`` (Linux, /proc)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    bit = 1 << (signal.SIGINT - 1)
    return bool(int(status["SigIgn"], 16) & bit or int(status["SigBlk"], 16) & bit)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads signal masks from /proc (Linux)")
def test_ctrl_c_leaves_the_workers_alone_stops_them_and_keeps_what_finished(tmp_path, monkeypatch):
    """A terminal's Ctrl-C sends SIGINT to every process of the foreground group. The pool's
    workers ignore it (the study goes on); the process running the study gets the
    KeyboardInterrupt, which stops the workers at once and propagates; what finished before
    it is in the cache, and the next run analyzes only the rest."""
    psutil = pytest.importorskip("psutil", reason="psutil (a dependency of dask.distributed) finds the workers")
    monkeypatch.chdir(tmp_path)
    folder = dask_zoo(tmp_path)  # 20 good models: every one finished is cached
    workers = []
    before = {p.pid for p in psutil.Process().children()}

    def progress(done, total):
        if done == 1:  # the workers are up: each leaves SIGINT to the study, and is sent one
            workers.extend(pool_workers(psutil, psutil.Process(), before))
            for worker in workers:
                deadline = time.monotonic() + 30  # a worker may still be starting
                while not _interrupt_disposition(worker.pid) and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert _interrupt_disposition(worker.pid)
                os.kill(worker.pid, signal.SIGINT)
        if done == 5:
            raise KeyboardInterrupt  # as the study's own process gets it from SIGINT

    with pytest.raises(KeyboardInterrupt):
        onnxscore.rank(folder, jobs=2, cache=str(tmp_path / "c"), progress=progress)
    assert len(workers) == 2
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)  # stopped
    again = onnxscore.rank(folder, jobs=2, cache=str(tmp_path / "c"))
    assert (again.counts["cached"], again.counts["analyzed"], again.counts["failed"]) == (5, 15, 0)
    assert strip_cache(again.to_dict()) == strip_cache(onnxscore.rank(folder, jobs=1).to_dict())


def test_pool_workers_are_copies_of_the_study_unless_another_thread_runs(zoo, monkeypatch):
    """--jobs 2 forks its workers from the study's process when that runs no other thread (the
    analyzer imported there once, nothing to import in a worker); with another thread running (a
    copy could inherit a lock it held), from a forkserver. The study is the same either way."""
    if threading.active_count() > 1:
        pytest.skip(reason=f"{threading.active_count() - 1} thread(s) left running by other tests")
    folder, table = zoo
    expected = onnxscore.rank(folder, table, jobs=1).to_dict()
    methods = []
    real = S._pool_context

    def spy():
        ctx = real()
        methods.append(ctx.get_start_method())
        return ctx

    monkeypatch.setattr(S, "_pool_context", spy)
    assert onnxscore.rank(folder, table, jobs=2).to_dict() == expected
    assert methods == ["fork" if sys.platform.startswith("linux") else "forkserver"]
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert onnxscore.rank(folder, table, jobs=2).to_dict() == expected
    finally:
        stop.set()
        other.join()
    assert methods[1] == "forkserver"


def test_jobs_1_leaves_the_collector_as_it_found_it(zoo, monkeypatch):
    """Between models, what existed once the analyzer was imported is left out of the
    collections (gc.freeze), and put back afterwards; objects the caller froze stay frozen."""
    folder, table = zoo
    frozen_during = []
    real = S.analyze_figures
    monkeypatch.setattr(S, "analyze_figures", lambda *a: frozen_during.append(gc.get_freeze_count()) or real(*a))
    assert gc.get_freeze_count() == 0
    onnxscore.rank(folder, table, jobs=1)
    assert frozen_during[0] == 0 and all(n > 0 for n in frozen_during[1:]) and len(frozen_during) == 7
    assert gc.get_freeze_count() == 0
    gc.freeze()  # the caller's
    try:
        mine = gc.get_freeze_count()
        onnxscore.rank(folder, table, jobs=1)
        assert gc.get_freeze_count() == mine
    finally:
        gc.unfreeze()


def _streams_are_the_process_own():
    return sys.stdout is sys.__stdout__ and sys.stderr is sys.__stderr__


@pytest.mark.parametrize("thread", [False, True])
def test_a_worker_writes_to_its_own_streams(monkeypatch, thread):
    """Forked from a process whose stderr is a progress bar's redirection, a worker writes to the
    process's own stderr, not through a copy of that bar."""
    from concurrent.futures import ProcessPoolExecutor

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)  # with a thread, from a forkserver
    if thread:
        other.start()
    try:
        with ProcessPoolExecutor(1, mp_context=S._pool_context(), initializer=S._start_worker) as pool:
            assert pool.submit(_streams_are_the_process_own).result(timeout=120)
    finally:
        stop.set()
        if thread:
            other.join()


INFERS_FOREVER = """
import sys, time
import onnx
from onnxscore import inference

onnx.shape_inference.infer_shapes = lambda *args, **kwargs: time.sleep(600)  # in the forked child
inference._contained_inference(onnx.load(sys.argv[1]), True)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_a_killed_analysis_takes_its_inference_child_along(tmp_path):
    """A process analyzing a model (a pool worker stopped by Ctrl-C, a lost Dask worker) killed
    while ONNX's inference runs in its child: the child does not outlive it."""
    psutil = pytest.importorskip("psutil", reason="psutil (a dependency of dask.distributed) finds the child")
    path = write_model(tmp_path / "a.onnx", 10, 1)
    proc = subprocess.Popen([sys.executable, "-c", INFERS_FOREVER, path], start_new_session=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    try:
        parent = psutil.Process(proc.pid)
        deadline = time.monotonic() + 60
        while not parent.children() and time.monotonic() < deadline:  # the fork is under way
            time.sleep(0.01)
        child = parent.children()[0]
        proc.kill()
        proc.wait()
        child.wait(timeout=30)  # psutil.TimeoutExpired if it outlived its parent
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# --------------------------------------------------------------------------- Dask

def dask_zoo(root, count=20):
    """``count`` tiny chains, n = 10 + 10*i, B = 1 + i % 3, top-1 50 + i in their metadata; the
    folder relative to ``root`` (the working directory), as a user would give it."""
    for i in range(count):
        write_model(root / "dz" / f"m{i:02d}.onnx", 10 + 10 * i, 1 + i % 3, 50 + i)
    return "dz"


def test_dask_local_cluster_same_json_as_one_job(tmp_path, monkeypatch):
    pytest.importorskip("distributed", reason="dask.distributed is the optional extra onnxscore[dask]")
    monkeypatch.chdir(tmp_path)
    folder = dask_zoo(tmp_path)
    local = onnxscore.rank(folder, jobs=1).to_dict()
    assert len(local["rows"]) == 20 and not any(r["error"] for r in local["rows"])
    assert onnxscore.rank(folder, scheduler="local:2").to_dict() == local


DASK_KILL = """
import json, os, signal, sys
import distributed
import onnxscore

if __name__ == "__main__":
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        killed = []

        def kill_a_worker(done, total):
            if done >= 1 and not killed:  # at the first result, others running or held
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

        study = onnxscore.rank(sys.argv[1], scheduler=cluster.scheduler_address, progress=kill_a_worker)
    print(json.dumps({"killed": killed, "study": study.to_dict()}))
    sys.stdout.flush()
    os._exit(0)  # the test sweeps what the killed worker left
"""


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="the test sweeps its processes with killpg (POSIX)")
def test_dask_worker_killed_mid_study_loses_nothing(tmp_path, monkeypatch):
    """A worker killed (SIGKILL) at the first result: Dask reschedules what it held or ran, the
    nanny restarts it, and the study (through a tcp:// scheduler address) equals a local run."""
    pytest.importorskip("distributed", reason="dask.distributed is the optional extra onnxscore[dask]")
    monkeypatch.chdir(tmp_path)
    folder = dask_zoo(tmp_path)
    # a failed row: its message names the path as given, though the workers got it absolute
    (tmp_path / "dz" / "zz_broken.onnx").write_bytes(b"garbage")
    local = onnxscore.rank(folder, jobs=1).to_dict()
    got = run_isolated(tmp_path, DASK_KILL, folder)
    assert got["killed"] and got["study"] == local
    assert local["counts"]["failed"] == 1 and local["rows"][-1]["error"].startswith("dz/zz_broken.onnx: ")


def test_no_dask_is_a_one_line_error(zoo, monkeypatch):
    folder, table = zoo
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(OnnxScoreError, match=r"pip install onnxscore\[dask\]"):
        onnxscore.rank(folder, table, scheduler="local:2")


def test_exports():
    assert onnxscore.rank is S.rank and onnxscore.load_accuracies is S.load_accuracies
    assert {"rank", "load_accuracies"} <= set(onnxscore.__all__)


# --------------------------------------------------------------------------- estimated latency on a device

# A made-up profile: float32 peak 1e12 FLOP/s, bandwidth 1e9 B/s, no overhead. Each MatMul of the
# chain moves 4 bytes per float of x, W and y (LayerCost.memory: activations read and written, and
# the weight it is the first to read) and its FLOPs / peak is at least 200 times below its bytes /
# bandwidth, so every layer is memory-bound and ms = bytes / 1e9 * 1e3 = bytes / 1e6:
#
#   a (n=900, B=1):  fc1 4*(900 + 900*100 + 100) = 364,000; fc2 4*(100 + 100*100 + 100) = 40,800
#                    -> 404,800 bytes = 0.4048 ms   (FLOPs 2*900*100 + 2*100*100 = 200,000: 0.0002 ms)
#   b (n=9900, B=1): fc1 4*(9,900 + 990,000 + 100) = 4,000,000; fc2 40,800 -> 4.0408 ms
#   c (n=400, B=10): fc1 4*(4,000 + 40,000 + 1,000) = 180,000; fc2 4*(1,000 + 10,000 + 1,000) = 48,000
#                    -> 228,000 bytes = 0.228 ms    (FLOPs 1,000,000: 0.001 ms)
#
# By estimated latency c, a, b: not the MACs order (a 100K, c 500K, b 1M). Top-1 (metadata) a 80,
# b 90, c 70: each is faster or more accurate than the others, so all three are on the latency
# front (c is off the MACs front: a has fewer MACs and a higher top-1).
TOY_PROFILE = """name = "toy-board"
sources = ["made up for the tests"]
[peak]
float32 = 1e12
[memory]
bandwidth = 1e9
"""
DEVICE_ZOO = {"a": (900, 1, 80), "b": (9900, 1, 90), "c": (400, 10, 70)}
EST_MS = {"a": 0.4048, "b": 4.0408, "c": 0.228}


def make_device_zoo(root):
    """The three models above under ``root/dzoo`` and the profile as ``root/toy.toml``."""
    for name, (n, batch, acc) in DEVICE_ZOO.items():
        write_model(root / "dzoo" / f"{name}.onnx", n, batch, acc)
    (root / "toy.toml").write_text(TOY_PROFILE)
    return str(root / "dzoo"), str(root / "toy.toml")


def test_estimated_latency_by_hand_and_as_the_device_module_computes_it(tmp_path):
    from onnxscore.device import analyze_for_estimate, latency_ms, load_device

    folder, profile = make_device_zoo(tmp_path)
    found = onnxscore.rank(folder, device=profile, jobs=1)
    device = load_device(profile)
    for r in found.rows:
        assert r.est_latency_ms == pytest.approx(EST_MS[r.model], rel=1e-12), r.model
        assert r.est_latency_unknown == 0
        report, info = analyze_for_estimate(r.path)  # independently of the study and its cache
        assert r.est_latency_ms == latency_ms(report, device, info)
    data = found.to_dict()
    assert data["device"]["name"] == "toy-board" and data["device"]["bandwidth"] == 1e9
    assert data["pareto"] == {"macs": ["a", "b"], "params": ["c", "a", "b"], "est_latency": ["c", "a", "b"]}
    assert all(set(row["pareto"]) == {"macs", "params", "est_latency"} for row in data["rows"])
    json.dumps(data, allow_nan=False)


def test_by_est_latency_smallest_first_and_needs_a_device(tmp_path):
    folder, profile = make_device_zoo(tmp_path)
    found = onnxscore.rank(folder, device=profile, by="est_latency", jobs=1)
    assert [(r.model, r.rank) for r in found.rows] == [("c", 1), ("a", 2), ("b", 3)]
    assert [r.model for r in onnxscore.rank(folder, device=profile, by="macs", jobs=1).rows] == ["a", "c", "b"]
    with pytest.raises(OnnxScoreError, match="needs a device profile"):
        onnxscore.rank(folder, by="est_latency", jobs=1)


def test_estimates_are_cached_with_the_device_in_the_key(tmp_path):
    folder, profile = make_device_zoo(tmp_path)
    cache = Cache(str(tmp_path / "c"))
    plain = onnxscore.rank(folder, jobs=1, cache=cache)  # no device: entries without a latency
    first = onnxscore.rank(folder, device=profile, jobs=1, cache=cache)
    assert plain.counts["cached"] == 0 and first.counts["cached"] == 0  # another key: analyzed again
    second = onnxscore.rank(folder, device=profile, jobs=1, cache=cache)
    assert second.counts["cached"] == 3
    assert strip_cache(first.to_dict()) == strip_cache(second.to_dict())
    # the same entries as `check --device` (figures_for): either serves the other
    from onnxscore.device import load_device
    figures, hit = figures_for(os.path.join(folder, "a.onnx"), {}, {}, cache, device=load_device(profile))
    assert hit and figures.latency_ms == pytest.approx(EST_MS["a"], rel=1e-12)
    # an edited profile is a new key: never a stale estimate
    (tmp_path / "toy.toml").write_text(TOY_PROFILE.replace("1e9", "2e9"))
    third = onnxscore.rank(folder, device=profile, jobs=1, cache=cache)
    assert third.counts["cached"] == 0
    assert {r.model: r.est_latency_ms for r in third.rows} == pytest.approx({k: v / 2 for k, v in EST_MS.items()})


def test_jobs_two_same_estimates(tmp_path):
    folder, profile = make_device_zoo(tmp_path)
    one = onnxscore.rank(folder, device=profile, jobs=1).to_dict()
    assert onnxscore.rank(folder, device=profile, jobs=2).to_dict() == one


# --------------------------------------------------------------------------- measured latency (rank(measure=True))

# Made-up timings, in seconds, that a stand-in for onnxruntime (measure_latency) returns: what the
# study does with them is checked exactly, without timing anything. Each model's samples are
# 0.5x, 1x and 1.5x its p50, so p90 = 1x + 0.8 * 0.5x = 1.4x (linear interpolation).
# By measured latency b (1 ms), c (2), a (3); top-1 b 90, c 70, a 80: b is faster and more
# accurate than both, so the front of top-1 against measured latency is b alone.
FAKE_P50 = {"a.onnx": 3e-3, "b.onnx": 1e-3, "c.onnx": 2e-3}


def fake_onnxruntime(monkeypatch, calls, done=None):
    """measure_latency and onnxruntime replaced: each call is recorded in ``calls`` as (file,
    process id, models finished by then, runs, warmup, threads)."""
    import types

    from onnxscore import measure as M

    def measure_latency(path, report=None, dims=None, runs=20, warmup=3, threads=None, seed=0, inputs=None):
        assert report is not None  # the study's own analysis: inputs from the same dims and shapes
        calls.append((os.path.basename(path), os.getpid(), done[0] if done else None, runs, warmup, threads))
        p50 = FAKE_P50[os.path.basename(path)]
        return M.Latency.of([p50 * 0.5, p50, p50 * 1.5]), int(threads or 0)

    monkeypatch.setattr(M, "measure_latency", measure_latency)
    monkeypatch.setattr(M, "_ort", lambda: types.SimpleNamespace(__version__="9.9.9"))


def test_measured_after_every_analysis_in_this_process_one_by_one(tmp_path, monkeypatch):
    folder, _ = make_device_zoo(tmp_path)
    calls, done = [], [0]

    def progress(n, total):
        done[0] = n

    fake_onnxruntime(monkeypatch, calls, done)
    found = onnxscore.rank(folder, jobs=2, measure=True, runs=2, warmup=1, threads=1, by="latency",
                           progress=progress)
    # never in a pool worker, never before the last analysis finished, each model once
    assert sorted(calls) == [(f, os.getpid(), 3, 2, 1, 1) for f in ("a.onnx", "b.onnx", "c.onnx")]
    assert [(r.model, r.rank) for r in found.rows] == [("b", 1), ("c", 2), ("a", 3)]
    for r in found.rows:
        p50 = FAKE_P50[f"{r.model}.onnx"] * 1e3
        assert (r.latency_ms, r.latency_p90_ms, r.latency_error) == (pytest.approx(p50), pytest.approx(1.4 * p50),
                                                                     None)
    data = found.to_dict()
    assert data["measure"] == {"runtime": "onnxruntime", "version": "9.9.9", "provider": "CPUExecutionProvider",
                               "runs": 2, "warmup": 1, "threads": 1}
    assert data["pareto"] == {"macs": ["a", "b"], "params": ["c", "a", "b"], "latency": ["b"]}
    assert [r["pareto"] for r in data["rows"]] == [{"macs": True, "params": True, "latency": True},
                                                   {"macs": False, "params": True, "latency": False},
                                                   {"macs": True, "params": True, "latency": False}]
    assert data["units"]["latency_ms"].startswith("milliseconds, measured with onnxruntime")
    json.dumps(data, allow_nan=False)


def test_measured_rendered_in_text_md_and_csv(tmp_path, monkeypatch):
    from onnxscore.render.study import render_study

    folder, profile = make_device_zoo(tmp_path)
    fake_onnxruntime(monkeypatch, [])
    found = onnxscore.rank(folder, jobs=1, measure=True, runs=2, warmup=1, by="latency")
    text = render_study(found, "text")
    assert text.splitlines()[0] == "onnxscore rank: 3 model(s) by measured latency with onnxruntime, fastest first"
    board = [line.split() for line in text.splitlines() if line[:3].strip() in {"1", "2", "3"}]
    # rank, model, top-1, params, MACs, p50 ms, density, NetScore, Ω/a/d, front
    assert [(b[0], b[1], b[7], b[-1]) for b in board] == [("1", "b", "1", "T"), ("2", "c", "2", "P"), ("3", "a", "3", "P")]
    assert "against measured latency (T)" in " ".join(text.split())
    assert "p50 ms: the median latency of 2 run(s) after 1 warm-up run(s), measured with onnxruntime 9.9.9" \
        in " ".join(text.split())
    md = render_study(found, "md")
    assert "| # | model | top-1 | params | MACs | p50 ms | density | NetScore | Ω/a/d | front |" in md
    assert "| 1 | b | 90.00 | 1 M | 1 M | 1 | 90.0 |" in md
    rows = list(csv.DictReader(io.StringIO(render_study(found, "csv"))))
    assert [(r["model"], float(r["latency_ms"]), float(r["latency_p90_ms"]), r["latency_error"], r["pareto_latency"])
            for r in rows] == [("b", pytest.approx(1.0), pytest.approx(1.4), "", "True"),
                               ("c", pytest.approx(2.0), pytest.approx(2.8), "", "False"),
                               ("a", pytest.approx(3.0), pytest.approx(4.2), "", "False")]
    # with a device too: both latency columns, both fronts, and the text wide enough for them
    both = render_study(onnxscore.rank(folder, jobs=1, measure=True, device=profile), "text")
    header = next(line for line in both.splitlines() if line.lstrip().startswith("#"))
    assert header.split()[5:9] == ["est.", "ms", "p50", "ms"] and header.rstrip().endswith("front")
    fronts = {line.split()[1]: line.split()[12:] for line in both.splitlines() if line.split()[1:2] in (["a"], ["b"], ["c"])}
    assert fronts == {"a": ["M", "P", "L"], "c": ["P", "L"], "b": ["M", "P", "L", "T"]}  # one line each, unfolded


def test_measured_latency_is_never_cached_nor_in_the_key(tmp_path, monkeypatch):
    folder, _ = make_device_zoo(tmp_path)
    calls = []
    fake_onnxruntime(monkeypatch, calls)
    cache = Cache(str(tmp_path / "c"))
    plain = onnxscore.rank(folder, jobs=1, cache=cache)
    measured = onnxscore.rank(folder, jobs=1, cache=cache, measure=True)
    assert measured.counts["cached"] == 3 and len(calls) == 3  # served by the plain run's entries, still measured
    assert all(r.latency_ms > 0 for r in measured.rows)
    again = onnxscore.rank(folder, jobs=1, cache=cache)
    assert again.counts["cached"] == 3 and strip_cache(again.to_dict()) == strip_cache(plain.to_dict())
    key = figures_key(os.path.join(folder, "a.onnx"), {}, {})
    assert not {"latency_ms", "latency_p90_ms"} & set(cache.get(key))
    onnxscore.rank(folder, jobs=1, cache=cache, measure=True)
    assert len(calls) == 6  # measured again: a timing is never taken from the cache


def test_latency_needs_measure_and_onnxruntime_before_any_analysis(tmp_path, monkeypatch):
    folder, _ = make_device_zoo(tmp_path)
    with pytest.raises(OnnxScoreError, match="ranking by latency needs the models measured"):
        onnxscore.rank(folder, by="latency", jobs=1)
    with pytest.raises(OnnxScoreError, match="runs >= 1"):
        onnxscore.rank(folder, measure=True, runs=0, jobs=1)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    started = []
    with pytest.raises(OnnxScoreError, match=r"pip install 'onnxscore\[measure\]'"):
        onnxscore.rank(folder, measure=True, jobs=1, progress=lambda n, total: started.append(n))
    assert started == []


def write_unrunnable(path):
    """A model onnxscore analyzes (an op without a cost rule: a lower bound) and onnxruntime
    cannot load: its op is in a domain no runtime knows."""
    node = helper.make_node("Mystery", ["x"], ["y"], domain="com.example", name="mystery")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    helper.set_model_props(model, {"onnxscore.accuracy": "50"})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return str(path)


def test_measured_with_onnxruntime_and_a_model_it_cannot_run(tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is the optional extra onnxscore[measure]")
    folder, _ = make_device_zoo(tmp_path)
    write_unrunnable(tmp_path / "dzoo" / "odd.onnx")
    (tmp_path / "dzoo" / "zz_broken.onnx").write_bytes(b"not an onnx model")
    measured = []
    found = onnxscore.rank(folder, jobs=1, measure=True, runs=2, warmup=1, threads=1, by="latency",
                           measured=lambda n, total: measured.append((n, total)))
    assert measured == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]  # a, b, c and odd: the 4 models analyzed
    rows = {r.model: r for r in found.rows}
    for name in ("a", "b", "c"):  # times are never checked: only that they are there
        assert rows[name].latency_ms > 0 and rows[name].latency_p90_ms >= rows[name].latency_ms
        assert rows[name].latency_error is None
    odd = rows["odd"]
    assert odd.error is None and odd.params == 0 and odd.latency_ms is None and odd.latency_p90_ms is None
    assert odd.latency_error.startswith(odd.path + ": onnxruntime cannot load the model")
    assert "\n" not in odd.latency_error
    broken = rows["zz_broken"]  # not analyzed: not measured, and no second message
    assert broken.error and (broken.latency_ms, broken.latency_error) == (None, None)
    # fastest first, by the values measured; then the row without a latency, then the failed one
    timed = [r.latency_ms for r in found.rows[:3]]
    assert timed == sorted(timed) and [r.rank for r in found.rows[:3]] == [1, 2, 3]
    assert [r.model for r in found.rows[3:]] == ["odd", "zz_broken"]
    # the front of top-1 against measured latency, from the values measured
    points = {r.model: (r.top1, r.latency_ms) for r in found.rows if r.latency_ms is not None}
    assert set(found.pareto["latency"]) == set(S.pareto_front(points))
    assert found.counts["failed"] == 1  # the unmeasured model is not a failed analysis
