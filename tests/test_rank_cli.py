"""``onnxscore rank``: every format, exit codes, accuracy tables, the cache, --jobs, --scheduler.

The zoo and its hand-derived figures are those of tests/test_study.py (its docstring): NetScore
order a, c, d, b, e; f has no accuracy; broken.onnx is not ONNX.
"""
import csv
import io
import json
import os
import subprocess
import sys
import threading
import types

import pytest
from click.testing import CliRunner

from onnxscore.cli import _progress_bar, main
from tests.test_study import (EST_MS, make_device_zoo, make_zoo, ns, strip_cache, timm_csv, write_model,
                              write_unrunnable)


@pytest.fixture(autouse=True)
def own_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ONNXSCORE_CACHE_DIR", str(tmp_path / "default-cache"))


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder, table = make_zoo(tmp_path)
    return "zoo", "results-imagenet.csv"


def rank(*args):
    return CliRunner().invoke(main, ["rank", *args])


def test_text_leaderboard(zoo):
    folder, table = zoo
    res = rank(folder, "--accuracy", table, "--jobs", "1", "--no-cache")
    assert res.exit_code == 2, res.output  # broken.onnx failed: exit 2 after the whole study
    out = res.stdout
    lines = out.splitlines()
    assert lines[0] == "onnxscore rank: 7 model(s) by NetScore, highest first"
    board = [line.split() for line in lines if line[:3].strip() in {"1", "2", "3", "4", "5", "-"}
             and len(line.split()) > 3]
    # rank, model, top-1, params, MACs, density, NetScore, ranks Ω/a/d, front
    assert board[0] == ["1", "a", "80.00", "100", "K", "100", "K", "800", f"{ns(80, 0.1, 1):.2f}", "1/3/2", "M", "P"]
    assert board[1] == ["2", "c", "70.00", "50", "K", "500", "K", "1,400", f"{ns(70, 0.05, 10):.2f}", "2/4/1", "P"]
    assert [b[1] for b in board] == ["a", "c", "d", "b", "e", "f"]
    assert board[5][:3] == ["-", "f", "-"]
    broken = next(line for line in lines if line.split()[:1] == ["broken"])
    assert broken.split()[-1] == "failed"
    # units wherever a score is shown
    assert "NetScore Ω = 20·log10(a^α / (p^β·m^γ)) in dB" in out.replace("\n", " ")
    assert "% top-1 per million parameters" in out
    # correlations (test_study.py: Spearman 0.1, 0.8, -0.4; Kendall 0.0, 0.6, -0.4)
    assert "Rank correlations (5 models)" in out
    assert [line.split()[-2:] for line in lines if "~" in line] == [["+0.100", "+0.000"], ["+0.800", "+0.600"],
                                                                    ["-0.400", "-0.400"]]
    notes = out[out.index("Spearman ρ and Kendall τ-b between"):]
    assert "1 model(s) without an accuracy" in notes and ": f\n" in notes
    assert "1 name(s) of the accuracy table matched no model: zz_not_here" in notes
    assert "7 model(s): 6 analyzed, 0 from the cache, 1 failed" in notes
    assert "zoo/broken.onnx: not an ONNX model" in notes


def test_markdown(zoo):
    folder, table = zoo
    res = rank(folder, "--accuracy", table, "--jobs", "1", "--no-cache", "--format", "md")
    assert res.exit_code == 2
    md = res.stdout
    assert md.startswith("### onnxscore rank: 7 model(s) by NetScore, highest first\n")
    assert "| # | model | top-1 | params | MACs | density | NetScore | Ω/a/d | front |" in md
    assert f"| 1 | a | 80.00 | 100 K | 100 K | 800 | {ns(80, 0.1, 1):.2f} | 1/3/2 | M P |" in md
    board = [line for line in md.split("\n\n")[1].splitlines()]
    assert len(board) == 2 + 7 and all(line.count(" | ") == 8 for line in board if line[1] != "-")
    assert board[-1] == "|  | broken | - | - | - | - | - | -/-/- | failed |"
    assert "| NetScore ~ density | " not in md and "| NetScore ~ info density | +0.800 | +0.600 |" in md
    assert "> 1 name(s) of the accuracy table matched no model: zz_not_here" in md
    assert "> zoo/broken.onnx: not an ONNX model" in md


def test_csv_one_row_per_model(zoo):
    folder, table = zoo
    res = rank(folder, "--accuracy", table, "--jobs", "1", "--no-cache", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["model"] for r in rows] == ["a", "c", "d", "b", "e", "f", "broken"]
    a = rows[0]
    # raw numbers: 900*100 + 100*100 parameters, B=1 so MACs the same, FLOPs 2 per MAC
    assert (a["rank"], a["params"], a["macs"], a["flops"], a["weight_bytes"]) == ("1", "100000", "100000", "200000",
                                                                                  "400000")
    assert float(a["netscore"]) == pytest.approx(ns(80, 0.1, 1), rel=1e-12)
    assert (a["rank_netscore"], a["rank_top1"], a["rank_info_density"], a["pareto_macs"], a["pareto_params"]) == \
        ("1", "3", "2", "True", "True")
    assert rows[2]["accuracy_source"] == "metadata" and rows[5]["top1"] == "" and rows[5]["rank"] == ""
    assert rows[6]["error"].startswith("zoo/broken.onnx: not an ONNX model") and rows[6]["params"] == ""


def test_json_and_stderr_summary(zoo):
    folder, table = zoo
    res = rank(folder, "--accuracy", table, "--jobs", "1", "--no-cache", "--format", "json")
    assert res.exit_code == 2
    data = json.loads(res.stdout)
    assert data["schema"] == "onnxscore.study/1" and data["by"] == "netscore"
    assert [r["model"] for r in data["rows"]] == ["a", "c", "d", "b", "e", "f", "broken"]
    assert data["pareto"] == {"macs": ["a", "d", "b"], "params": ["c", "a", "d", "b"]}
    assert data["missing_accuracy"] == ["f"] and data["unmatched_accuracy"] == ["zz_not_here"]
    # machine formats keep stdout clean: the failure and the counts go to stderr, one line each
    err = res.stderr.splitlines()
    assert err[0].startswith("onnxscore: error: zoo/broken.onnx: not an ONNX model")
    assert err[1] == "onnxscore rank: 7 model(s): 6 analyzed, 0 from the cache, 1 failed"


def test_output_file_and_by(zoo, tmp_path):
    folder, table = zoo
    res = rank(folder, "--accuracy", table, "--jobs", "1", "--no-cache", "--by", "params", "-o", "out.txt")
    assert res.exit_code == 2 and res.stdout == ""
    text = (tmp_path / "out.txt").read_text()
    assert text.startswith("onnxscore rank: 7 model(s) by parameters, fewest first")
    # params: c 50K = f 50K (both rank 1), a 100K, d 200K, e 500K, b 1M
    order = [line.split()[:2] for line in text.splitlines() if line.split()[1:2] and line.split()[1] in set("abcdef")]
    assert order == [["1", "c"], ["1", "f"], ["3", "a"], ["4", "d"], ["5", "e"], ["6", "b"]]


def test_all_analyzed_exit_0_and_json_accuracy_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_model(tmp_path / "m" / "a.onnx", 900, 1)
    write_model(tmp_path / "m" / "b.onnx", 9900, 1)
    (tmp_path / "acc.json").write_text(json.dumps([{"name": "m/a.onnx", "acc": 80}, {"name": "b", "acc": 90}]))
    res = rank("m", "--accuracy", "acc.json", "--name-column", "name", "--accuracy-column", "acc", "--jobs", "1",
               "--no-cache", "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [(r["model"], r["top1"], r["accuracy_source"]) for r in data["rows"]] == \
        [("a", 80.0, "table"), ("b", 90.0, "table")]


@pytest.mark.parametrize("text, message", [
    ("model,top1\na,80\nb,n/a\n", "onnxscore: error: results.csv: row 3: top-1 'n/a' is not a number"),
    ("name,acc\na,80\n", "onnxscore: error: results.csv: no column 'model' (columns: name, acc); "
                         "choose one with --name-column"),
])
def test_bad_accuracy_table_exit_2_one_line(zoo, tmp_path, text, message):
    folder, _ = zoo
    (tmp_path / "results.csv").write_text(text)
    res = rank(folder, "--accuracy", "results.csv", "--no-cache")
    assert res.exit_code == 2 and res.stderr == message + "\n" and res.stdout == ""


def test_usage_errors(zoo):
    folder, table = zoo
    res = rank(folder, "--cache-dir", "c", "--no-cache")
    assert res.exit_code == 2 and res.stderr == "onnxscore: error: --cache-dir and --no-cache: choose one\n"
    assert rank(folder, "--by", "speed").exit_code == 2
    assert rank(folder, "--jobs", "0").exit_code == 2
    res = rank(folder, "--accuracy", "missing.csv")
    assert res.exit_code == 2 and res.stderr.startswith("onnxscore: error: missing.csv: cannot read the accuracy table")
    res = rank(folder, "--scheduler", "local:two", "--no-cache")
    assert res.exit_code == 2 and "expected local:N with N workers" in res.stderr


def test_scheduler_without_dask(zoo, monkeypatch):
    folder, table = zoo
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    res = rank(folder, "--scheduler", "local:2", "--no-cache")
    assert res.exit_code == 2
    assert res.stderr == ("onnxscore: error: a Dask scheduler needs dask.distributed: "
                          "pip install onnxscore[dask]\n")


def test_internal_error_is_a_row_and_exit_3(zoo, monkeypatch):
    folder, table = zoo

    def bug(*args, **kwargs):
        raise KeyError("oops")

    monkeypatch.setattr("onnxscore.walk.analyze", bug)
    res = rank("zoo/a.onnx", "--jobs", "1", "--no-cache", "--format", "json")
    assert res.exit_code == 3
    row = json.loads(res.stdout)["rows"][0]
    assert row["error"] == "zoo/a.onnx: internal error (a bug in onnxscore, not in the model): KeyError: 'oops'"


def test_cache_second_run_all_from_cache(zoo, tmp_path):
    folder, table = zoo
    args = [folder, "--accuracy", table, "--jobs", "1", "--cache-dir", str(tmp_path / "c"), "--format", "json"]
    first, second = rank(*args), rank(*args)
    assert first.stderr.splitlines()[-1] == "onnxscore rank: 7 model(s): 6 analyzed, 0 from the cache, 1 failed"
    assert second.stderr.splitlines()[-1] == "onnxscore rank: 7 model(s): 0 analyzed, 6 from the cache, 1 failed"
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert [r["cached"] for r in b["rows"]] == [True] * 6 + [False]
    assert strip_cache(a) == strip_cache(b)
    text = rank(folder, "--accuracy", table, "--jobs", "1", "--cache-dir", str(tmp_path / "c")).stdout
    assert "7 model(s): 0 analyzed, 6 from the cache, 1 failed" in text


CACHED_RUN = """
import json, sys
from onnxscore.cli import main

try:
    main(sys.argv[1:], standalone_mode=False)
except SystemExit as e:
    assert not e.code, e.code
analyzer = ("onnx", "numpy", "networkx", "rich", "google", "onnxscore.walk", "onnxscore.graph",
            "onnxscore.model", "onnxscore.budget", "onnxscore.ops", "onnxscore.inference",
            "onnxscore.report", "onnxscore.sweep", "onnxscore.render.tables", "onnxscore.render.summary")
print(json.dumps(sorted(m for m in sys.modules if m in analyzer or m.startswith(tuple(a + "." for a in analyzer)))))
"""


def test_a_study_all_from_the_cache_imports_no_analyzer(tmp_path, monkeypatch):
    """Every model a cache hit: digests, one SQLite file and the study's renderer; not onnx,
    numpy, networkx, the walker, the budget module, nor a model report's classes and renderers
    (in a process of its own, so that nothing
    imported by the other tests counts)."""
    monkeypatch.chdir(tmp_path)
    for name, n in (("a", 10), ("b", 20), ("c", 30)):
        write_model(tmp_path / "zoo" / f"{name}.onnx", n, 1, 70)
    args = ["rank", "zoo", "--jobs", "2", "--cache-dir", str(tmp_path / "c"), "--format", "json"]
    first = rank(*args[1:], "-o", "first.json")
    assert first.exit_code == 0 and first.stderr.endswith("3 analyzed, 0 from the cache, 0 failed\n")
    script = tmp_path / "cached_run.py"
    script.write_text(CACHED_RUN)
    done = subprocess.run([sys.executable, str(script), *args, "-o", "again.json"], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.endswith("0 analyzed, 3 from the cache, 0 failed\n")
    assert json.loads(done.stdout) == []
    assert strip_cache(json.loads((tmp_path / "again.json").read_text())) == \
        strip_cache(json.loads((tmp_path / "first.json").read_text()))


def test_progress_bar_runs_no_thread(monkeypatch):
    """In a terminal the bar is redrawn by the study's thread as models finish: no refresh thread,
    so that the pool can fork its workers from the study's process."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    bar, track = _progress_bar()
    before = threading.active_count()
    bar.start()
    try:
        track("analyzing")(3, 10)
        assert threading.active_count() == before
        assert bar.tasks[0].completed == 3 and bar.tasks[0].total == 10
        track("measuring")(1, 8)  # with --measure, a row of its own once the analyses are done
        assert [(t.description, t.completed, t.total) for t in bar.tasks] == [("analyzing", 3, 10),
                                                                              ("measuring", 1, 8)]
    finally:
        bar.stop()


def test_default_cache_folder(zoo, tmp_path):
    folder, table = zoo
    rank(folder, "--jobs", "1")
    assert (tmp_path / "default-cache" / "results.sqlite").exists()  # $ONNXSCORE_CACHE_DIR
    res = rank(folder, "--jobs", "1", "--format", "json")
    assert res.stderr.splitlines()[-1] == "onnxscore rank: 7 model(s): 0 analyzed, 6 from the cache, 1 failed"


def test_the_configured_cache_is_checks_cache(zoo, tmp_path):
    """[tool.onnxscore] cache in pyproject.toml: rank reads and writes the cache check uses."""
    folder, table = zoo
    (tmp_path / "pyproject.toml").write_text('[tool.onnxscore]\ncache = ".onnxscore_cache"\n')
    rank(folder, "--jobs", "1")
    assert (tmp_path / ".onnxscore_cache" / "results.sqlite").exists()
    assert not (tmp_path / "default-cache").exists()  # $ONNXSCORE_CACHE_DIR (set above, line 25): not used
    res = rank(folder, "--jobs", "1", "--format", "json")
    assert res.stderr.splitlines()[-1] == "onnxscore rank: 7 model(s): 0 analyzed, 6 from the cache, 1 failed"
    res = rank(folder, "--jobs", "1", "--cache-dir", str(tmp_path / "given"), "--format", "json")  # the option first
    assert res.stderr.splitlines()[-1].endswith("6 analyzed, 0 from the cache, 1 failed")
    (tmp_path / "pyproject.toml").write_text('[tool.onnxscore]\ncache = 3\n')
    res = rank(folder, "--jobs", "1")
    assert res.exit_code == 2 and res.stderr.strip() == \
        f"onnxscore: error: {tmp_path / 'pyproject.toml'} [tool.onnxscore]: cache must be a path string"


def test_jobs_2_same_json_as_jobs_1(zoo):
    folder, table = zoo
    one = rank(folder, "--accuracy", table, "--jobs", "1", "--no-cache", "--format", "json")
    two = rank(folder, "--accuracy", table, "--jobs", "2", "--no-cache", "--format", "json")
    assert one.exit_code == two.exit_code == 2
    assert one.stdout == two.stdout and len(json.loads(one.stdout)["rows"]) == 7


@pytest.mark.parametrize("cache", [True, False])
def test_ctrl_c_is_one_line_exit_130_and_the_rerun_goes_on(zoo, tmp_path, monkeypatch, cache):
    """Ctrl-C (a KeyboardInterrupt in the study's process) at the third model: one line on
    stderr, exit 130 (128 + SIGINT), nothing on stdout; the two models finished before are in
    the cache, and the same command analyzes only the rest."""
    folder, table = zoo
    from onnxscore import study

    real, calls = study.analyze_figures, []

    def third_interrupted(path, *args):
        calls.append(path)
        if len(calls) == 3:  # folder order: a, b, broken, c, ...
            raise KeyboardInterrupt
        return real(path, *args)

    monkeypatch.setattr(study, "analyze_figures", third_interrupted)
    where = ["--cache-dir", str(tmp_path / "c")] if cache else ["--no-cache"]
    res = rank(folder, "--accuracy", table, "--jobs", "1", "--format", "json", *where)
    assert res.exit_code == 130 and res.stdout == ""
    kept = ("the analyses finished are in the cache: the same command goes on from there" if cache
            else "nothing kept (--no-cache)")
    assert res.stderr == f"onnxscore rank: interrupted, 2 of 7 model(s) done; {kept}\n"
    if cache:
        monkeypatch.setattr(study, "analyze_figures", real)
        again = rank(folder, "--accuracy", table, "--jobs", "1", "--format", "json", *where)
        assert again.stderr.splitlines()[-1] == "onnxscore rank: 7 model(s): 4 analyzed, 2 from the cache, 1 failed"


def test_ctrl_c_before_any_model_is_listed(zoo, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("onnxscore.study.rank", interrupted)
    res = rank(zoo[0], "--no-cache")
    assert res.exit_code == 130 and res.stderr == "onnxscore rank: interrupted\n"


def test_html_and_plot_are_handed_the_study(zoo, tmp_path, monkeypatch):
    """--html and --plot call onnxscore.render.study_figures (written separately) with the
    JSON form; a stand-in module records the calls."""
    folder, table = zoo
    calls = []
    fake = types.ModuleType("onnxscore.render.study_figures")
    fake.to_html = lambda data: calls.append(("html", data)) or "<html>study</html>"
    fake.plot_png = lambda data, path: calls.append(("png", data, path))
    monkeypatch.setitem(sys.modules, "onnxscore.render.study_figures", fake)
    res = rank(folder, "--accuracy", table, "--jobs", "1", "--no-cache", "--format", "json",
               "--html", "s.html", "--plot", "s.png")
    assert res.exit_code == 2
    assert (tmp_path / "s.html").read_text() == "<html>study</html>"
    assert [c[0] for c in calls] == ["html", "png"] and calls[1][2] == "s.png"
    assert calls[0][1] == json.loads(res.stdout)


def test_timm_csv_via_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_model(tmp_path / "a.onnx", 900, 1)
    timm_csv(tmp_path / "results-imagenet.csv", {"a": 80.0}, ("resnet_not_here", 75.5))
    res = rank("a.onnx", "--accuracy", "results-imagenet.csv", "--no-cache", "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["rows"][0]["top1"] == 80.0 and data["unmatched_accuracy"] == ["resnet_not_here"]
    # one model: ranks 1, on both fronts; correlations need two
    assert data["rows"][0]["ranks"] == {"netscore": 1, "top1": 1, "info_density": 1}
    assert data["correlations"] == {"spearman": {"netscore~top1": None, "netscore~info_density": None,
                                                 "top1~info_density": None},
                                    "kendall": {"netscore~top1": None, "netscore~info_density": None,
                                                "top1~info_density": None}, "n": 1}


# --------------------------------------------------------------------------- --device: estimated latency

@pytest.fixture
def device_zoo(tmp_path, monkeypatch):
    """tests/test_study.py's three models on its made-up profile: estimated ms a 0.4048, b 4.0408,
    c 0.228 (derived there by hand)."""
    monkeypatch.chdir(tmp_path)
    make_device_zoo(tmp_path)
    return "dzoo", "toy.toml"


def test_device_est_ms_column_in_every_format(device_zoo):
    folder, profile = device_zoo
    res = rank(folder, "--device", profile, "--by", "est_latency", "--jobs", "1", "--no-cache")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == "onnxscore rank: 3 model(s) by estimated latency on toy-board, fastest first"
    head = next(line for line in lines if "est. ms" in line).split()
    assert head[:7] == ["#", "model", "top-1", "params", "MACs", "est.", "ms"]
    board = [line.split() for line in lines if line.split()[1:2] and line.split()[1] in set("abc")]
    # rank, model, top-1, params, MACs, est. ms, density, NetScore, ranks, front
    assert [(b[0], b[1], b[7]) for b in board] == [("1", "c", "0.228"), ("2", "a", "0.405"), ("3", "b", "4.04")]
    assert board[0][-2:] == ["P", "L"] and board[1][-3:] == ["M", "P", "L"]
    assert "roofline estimate of latency on toy-board" in res.stdout.replace("\n", " ")

    md = rank(folder, "--device", profile, "--jobs", "1", "--no-cache", "--format", "md").stdout
    assert "| # | model | top-1 | params | MACs | est. ms | density | NetScore | Ω/a/d | front |" in md
    assert f"| 1 | a | 80.00 | 100 K | 100 K | 0.405 | 800 | {ns(80, 0.1, 1):.2f} | 1/2/2 | M P L |" in md

    out = rank(folder, "--device", profile, "--by", "est_latency", "--jobs", "1", "--no-cache", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [(r["model"], r["est_latency_unknown"], r["pareto_est_latency"]) for r in rows] == \
        [("c", "0", "True"), ("a", "0", "True"), ("b", "0", "True")]
    assert [float(r["est_latency_ms"]) for r in rows] == pytest.approx([EST_MS["c"], EST_MS["a"], EST_MS["b"]])

    out = rank(folder, "--device", profile, "--jobs", "1", "--no-cache", "--format", "json")
    data = json.loads(out.stdout)
    assert data["device"]["name"] == "toy-board"
    assert {r["model"]: r["est_latency_ms"] for r in data["rows"]} == pytest.approx(EST_MS)


def test_no_device_no_column(zoo):
    folder, table = zoo
    out = rank(folder, "--accuracy", table, "--jobs", "1", "--no-cache", "--format", "csv").stdout
    assert "est_latency" not in out.splitlines()[0]
    assert "est. ms" not in rank(folder, "--accuracy", table, "--jobs", "1", "--no-cache").stdout


def test_by_est_latency_without_device_is_one_line_exit_2(device_zoo):
    folder, _ = device_zoo
    res = rank(folder, "--by", "est_latency", "--no-cache")
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr == ("onnxscore: error: --by est_latency sorts by the estimated latency on a device: "
                          "give --device NAME|FILE.toml\n")


def test_bad_device_is_one_line_exit_2(device_zoo):
    folder, _ = device_zoo
    res = rank(folder, "--device", "no-such-board", "--no-cache")
    assert res.exit_code == 2 and res.stderr.startswith("onnxscore: error: --device no-such-board: no such")
    assert len(res.stderr.splitlines()) == 1


def test_device_estimates_from_the_cache(device_zoo, tmp_path):
    folder, profile = device_zoo
    first = rank(folder, "--device", profile, "--jobs", "1", "--cache-dir", "c", "--format", "json")
    second = rank(folder, "--device", profile, "--jobs", "1", "--cache-dir", "c", "--format", "json")
    assert second.stderr.splitlines()[-1] == "onnxscore rank: 3 model(s): 0 analyzed, 3 from the cache, 0 failed"
    assert strip_cache(json.loads(first.stdout)) == strip_cache(json.loads(second.stdout))


def test_help_says_estimates_depend_on_the_profile():
    out = CliRunner().invoke(main, ["rank", "--help"]).output
    assert "--device" in out and "est_latency" in out
    assert "depend on the profile" in " ".join(out.split())


# --------------------------------------------------------------------------- --measure: measured latency

MEASURE = ("--measure", "--runs", "2", "--warmup", "1", "--threads", "1")  # correctness, not timing


@pytest.fixture
def ort():
    return pytest.importorskip("onnxruntime", reason="onnxruntime is the optional extra onnxscore[measure]")


def test_measure_latency_in_every_format(ort, device_zoo, tmp_path):
    folder, _ = device_zoo
    res = rank(folder, *MEASURE, "--jobs", "1", "--no-cache", "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["measure"] == {"runtime": "onnxruntime", "version": ort.__version__, "provider": "CPUExecutionProvider",
                               "runs": 2, "warmup": 1, "threads": 1}
    assert all(r["latency_ms"] > 0 and r["latency_p90_ms"] >= r["latency_ms"] and r["latency_error"] is None
               for r in data["rows"])
    assert set(data["pareto"]) == {"macs", "params", "latency"} and data["pareto"]["latency"]

    text = rank(folder, *MEASURE, "--jobs", "1", "--no-cache").stdout
    head = next(line for line in text.splitlines() if "p50 ms" in line).split()
    assert head[:7] == ["#", "model", "top-1", "params", "MACs", "p50", "ms"]
    board = [line.split() for line in text.splitlines() if line.split()[1:2] and line.split()[1] in set("abc")]
    assert len(board) == 3 and all(float(b[5]) > 0 for b in board)
    assert f"measured with onnxruntime {ort.__version__}" in " ".join(text.split())

    md = rank(folder, *MEASURE, "--jobs", "1", "--no-cache", "--format", "md").stdout
    assert "| # | model | top-1 | params | MACs | p50 ms | density | NetScore | Ω/a/d | front |" in md

    rows = list(csv.DictReader(io.StringIO(rank(folder, *MEASURE, "--jobs", "1", "--no-cache", "--format",
                                                "csv").stdout)))
    assert all(float(r["latency_ms"]) > 0 and float(r["latency_p90_ms"]) > 0 and r["latency_error"] == ""
               and r["pareto_latency"] in ("True", "False") for r in rows)

    page = tmp_path / "study.html"
    res = rank(folder, *MEASURE, "--jobs", "1", "--no-cache", "--html", str(page), "-o", str(tmp_path / "s.txt"))
    assert res.exit_code == 0, res.output
    html = page.read_text()
    assert 'id="fig-top1-measured"' in html and "latency p50 (ms)" in html and "latency p90 (ms)" in html


def test_by_latency_orders_rows_by_the_measured_values(ort, device_zoo):
    folder, _ = device_zoo
    res = rank(folder, *MEASURE, "--by", "latency", "--jobs", "1", "--no-cache", "--format", "csv")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    values = [float(r["latency_ms"]) for r in rows]
    assert values == sorted(values)  # fastest first, whatever the times were
    ranks = [int(r["rank"]) for r in rows]  # competition ranks of those values
    assert ranks[0] == 1 and all(b == (a if y == x else i + 1)
                                 for i, (a, b, x, y) in enumerate(zip(ranks, ranks[1:], values, values[1:]), 1))
    text = rank(folder, *MEASURE, "--by", "latency", "--jobs", "1", "--no-cache").stdout
    assert text.splitlines()[0] == "onnxscore rank: 3 model(s) by measured latency with onnxruntime, fastest first"


def test_a_model_onnxruntime_cannot_run_keeps_its_row_exit_2(ort, device_zoo, tmp_path):
    folder, _ = device_zoo
    write_unrunnable(tmp_path / folder / "odd.onnx")
    res = rank(folder, *MEASURE, "--by", "latency", "--jobs", "1", "--no-cache", "--format", "json")
    assert res.exit_code == 2  # after the whole study
    data = json.loads(res.stdout)
    odd = data["rows"][-1]
    assert odd["model"] == "odd" and odd["error"] is None and odd["params"] == 0
    assert odd["latency_ms"] is None and odd["rank"] is None
    assert odd["latency_error"].startswith("dzoo/odd.onnx: onnxruntime cannot load the model")
    assert all(r["latency_ms"] > 0 for r in data["rows"][:3])
    # said once, on stderr, with the counts
    errors = res.stderr.splitlines()
    assert errors == ["onnxscore: error: " + odd["latency_error"],
                      "onnxscore rank: 4 model(s): 4 analyzed, 0 from the cache, 0 failed, 1 not measured"]
    text = rank(folder, *MEASURE, "--jobs", "1", "--no-cache")
    assert text.exit_code == 2 and text.stderr == ""
    notes = " ".join(text.stdout.split())
    assert notes.count("onnxruntime cannot load the model") == 1
    assert "1 model(s) not measured (listed without a latency): dzoo/odd.onnx: onnxruntime cannot load" in notes
    odd_line = next(line for line in text.stdout.splitlines() if line.split()[1:2] == ["odd"])
    assert odd_line.split()[5] == "-"  # p50 ms


def test_measure_usage_errors(device_zoo, monkeypatch):
    folder, _ = device_zoo
    res = rank(folder, "--by", "latency", "--no-cache")
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr == ("onnxscore: error: --by latency sorts by the latency measured with onnxruntime: "
                          "give --measure\n")
    assert rank(folder, "--measure", "--runs", "0", "--no-cache").exit_code == 2
    assert rank(folder, "--measure", "--threads", "-1", "--no-cache").exit_code == 2
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    res = rank(folder, "--measure", "--no-cache")
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr.splitlines() == ["onnxscore: error: measuring latency needs onnxruntime: "
                                       "pip install 'onnxscore[measure]'"]


def test_measured_latency_never_enters_the_cache(ort, device_zoo):
    folder, _ = device_zoo
    first = rank(folder, *MEASURE, "--jobs", "1", "--cache-dir", "c", "--format", "json")
    assert first.exit_code == 0, first.output
    plain = rank(folder, "--jobs", "1", "--cache-dir", "c", "--format", "json")
    assert plain.stderr.splitlines()[-1] == "onnxscore rank: 3 model(s): 0 analyzed, 3 from the cache, 0 failed"
    assert all(r["latency_ms"] is None for r in json.loads(plain.stdout)["rows"])
    again = rank(folder, *MEASURE, "--jobs", "1", "--cache-dir", "c", "--format", "json")
    assert again.stderr.splitlines()[-1] == "onnxscore rank: 3 model(s): 0 analyzed, 3 from the cache, 0 failed"
    assert all(r["latency_ms"] > 0 for r in json.loads(again.stdout)["rows"])


def test_help_says_how_models_are_measured():
    out = " ".join(CliRunner().invoke(main, ["rank", "--help"]).output.split())
    for piece in ("--measure", "--runs", "--warmup", "--threads", "latency (measured, fastest first) --measure",
                  "never cached", "one after the other"):
        assert piece in out, piece


def test_a_file_name_that_is_not_utf8(tmp_path, monkeypatch):
    """A zoo with a file whose name is not UTF-8 (bytes b"odd\\xff.onnx", as Linux allows): every
    command writes its name as ``odd\\xff``; rank's cache remembers its digest by its bytes (the
    study crashed with exit 3 in JSON, analyze in text, CSV and Markdown)."""
    if sys.platform == "win32" or sys.getfilesystemencoding().lower() != "utf-8":
        pytest.skip("a file name of undecodable bytes needs a POSIX UTF-8 file system")
    monkeypatch.chdir(tmp_path)
    odd = os.fsdecode(os.fsencode(str(tmp_path / "zoo")) + b"/odd\xff.onnx")
    write_model(tmp_path / "zoo" / "a.onnx", 900, 1, 80)
    with open(odd, "wb") as f:
        f.write(open(tmp_path / "zoo" / "a.onnx", "rb").read())
    for run in ("first", "cached"):
        res = rank("zoo", "--jobs", "1", "--cache-dir", str(tmp_path / "c"), "--format", "json")
        assert res.exit_code == 0, res.output
        assert sorted(r["model"] for r in json.loads(res.stdout)["rows"]) == ["a", "odd\\xff"]
    assert res.stderr.splitlines()[-1].endswith("0 analyzed, 2 from the cache, 0 failed")
    assert "odd\\xff" in rank("zoo", "--jobs", "1", "--no-cache").stdout
    for fmt in ("text", "csv", "md"):
        res = CliRunner().invoke(main, ["analyze", odd, "--format", fmt])
        assert res.exit_code == 0 and "odd\\xff.onnx" in res.stdout, fmt
    res = CliRunner().invoke(main, ["analyze", odd, "--format", "json"])  # the name exact, as JSON escapes it
    assert res.exit_code == 0 and os.fsencode(json.loads(res.stdout)["model"]["path"]).endswith(b"/odd\xff.onnx")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_in_the_zoo_is_a_failed_row_not_a_hang(tmp_path):
    """(In a process of its own, with a deadline: a regression fails instead of hanging.)"""
    write_model(tmp_path / "zoo" / "a.onnx", 900, 1, 80)
    os.mkfifo(tmp_path / "zoo" / "pipe.onnx")
    for options in (["--cache-dir", str(tmp_path / "c")], ["--no-cache"]):
        done = subprocess.run([sys.executable, "-m", "onnxscore", "rank", "zoo", "--jobs", "1", "--format", "json",
                               *options], cwd=tmp_path, timeout=120, capture_output=True, text=True)
        assert done.returncode == 2
        rows = {r["model"]: r for r in json.loads(done.stdout)["rows"]}
        assert rows["a"]["error"] is None
        assert rows["pipe"]["error"] == "zoo/pipe.onnx: not a regular file (a FIFO), not an ONNX file"


def test_a_newline_in_a_file_name_keeps_every_message_on_one_line(tmp_path):
    zoo = tmp_path / "zoo"
    write_model(zoo / "a\nb.onnx", 900, 1, 80)
    (zoo / "bad\nx.onnx").write_bytes(b"not an onnx model")
    res = rank(str(zoo), "--jobs", "1", "--no-cache", "--format", "json")
    assert res.exit_code == 2 and sorted(r["model"] for r in json.loads(res.stdout)["rows"]) == ["a\\nb", "bad\\nx"]
    errors = [line for line in res.stderr.splitlines() if line.startswith("onnxscore: error:")]
    assert len(errors) == 1 and "bad\\nx.onnx: not an ONNX model" in errors[0]
    res = CliRunner().invoke(main, ["analyze", str(zoo / "bad\nx.onnx")])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "bad\\nx.onnx" in res.stderr


def test_a_broken_cache_is_bad_input_not_a_bug(zoo, tmp_path):
    folder, _ = zoo
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.sqlite").write_bytes(b"not a SQLite database, only text " * 4)
    res = rank(folder, "--jobs", "1", "--cache-dir", str(tmp_path / "broken"))
    assert res.exit_code == 2 and res.stderr == (f"onnxscore: error: {tmp_path / 'broken'}: cannot open the result "
                                                 "cache (file is not a database); --no-cache goes without it\n")
