"""The CLI: formats, exit codes, one-line errors, the ops listing."""
import csv
import io
import json
import os

import pytest
from click.testing import CliRunner
from onnx import helper

from onnxscore.cli import main
from onnxscore.ops import all_rules
from tests.opmodels import weight
from tests.test_walk import CONV_MACS, W_ELEMS, conv, model

F = 1


@pytest.fixture
def conv_path(tmp_path):
    p = tmp_path / "conv.onnx"
    p.write_bytes(model([conv()], [weight("w", [4, 3, 3, 3])], inputs=(("x", F, ["N", 3, 8, 8]),)).SerializeToString())
    return str(p)


@pytest.fixture
def custom_path(tmp_path):
    m = model([helper.make_node("Frobnicate", ["x"], ["y"], domain="my.ops")], inputs=(("x", F, [4]),))
    m.opset_import.append(helper.make_opsetid("my.ops", 1))
    p = tmp_path / "custom.onnx"
    p.write_bytes(m.SerializeToString())
    return str(p)


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_json_schema(conv_path):
    res = run("analyze", conv_path, "--format", "json", "--accuracy", "70")
    assert res.exit_code == 0
    data = json.loads(res.output)
    assert data["schema"] == "onnxscore.report/1"
    assert set(data["model"]) >= {"path", "opset", "producer", "inputs"}
    assert data["model"]["inputs"] == {"x": [1, 3, 8, 8]}
    assert data["totals"]["params"] == W_ELEMS and data["totals"]["macs"] == CONV_MACS
    assert set(data["totals"]) >= {"params", "buffers", "macs", "flops", "weight_bytes"}
    assert set(data["netscore"]) >= {"value", "accuracy", "alpha", "beta", "gamma", "info_density"}
    layer = data["layers"][0]
    assert set(layer) >= {"name", "op_type", "domain", "input_shapes", "output_shapes", "params", "macs",
                          "flops", "status"}
    assert isinstance(layer["macs"], int)
    assert {"unresolved_dims", "unsupported_ops", "warnings"} <= set(data)


def test_json_list_for_several_models(conv_path):
    data = json.loads(run("analyze", conv_path, conv_path, "--format", "json").output)
    assert isinstance(data, list) and len(data) == 2


def test_text_report(conv_path):
    res = run("analyze", conv_path, "--accuracy", "70")
    assert res.exit_code == 0
    for text in ("parameters", f"{W_ELEMS:,}", "MACs", f"{CONV_MACS:,}", "NetScore", "% top-1",
                 "GMACs", "Top 1 layers by MACs", "All layers", "batch dimension 'N'"):
        assert text in res.output
    no_acc = run("analyze", conv_path)
    assert "not computed: no accuracy" in no_acc.output


def test_csv_and_markdown(conv_path):
    rows = list(csv.DictReader(io.StringIO(run("analyze", conv_path, "--format", "csv").output)))
    assert rows[0]["op_type"] == "Conv" and int(rows[0]["macs"]) == CONV_MACS
    md = run("analyze", conv_path, "--format", "md").output
    assert md.startswith("### onnxscore:") and "<details>" in md and " | Conv | 1x4x6x6 |" in md


def test_bad_file_is_one_line_exit_2(tmp_path, conv_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01garbage")
    res = CliRunner().invoke(main, ["analyze", str(bad), conv_path, "--format", "json"])
    assert res.exit_code == 2
    errors = [line for line in res.stderr.splitlines() if line]
    assert len(errors) == 1 and "bad.onnx" in errors[0] and "Traceback" not in res.output
    assert json.loads(res.stdout)["totals"]["macs"] == CONV_MACS  # the good model is still reported


def test_bad_option_is_exit_2(conv_path):
    res = CliRunner().invoke(main, ["analyze", conv_path, "--dim", "batch"])
    assert res.exit_code == 2 and "expected NAME=INT" in res.stderr


def test_strict(custom_path):
    assert run("analyze", custom_path).exit_code == 0
    res = CliRunner().invoke(main, ["analyze", custom_path, "--strict"])
    assert res.exit_code == 1 and "my.ops::Frobnicate" in res.stderr


def test_ops_lists_every_rule():
    res = run("ops")
    assert res.exit_code == 0
    assert res.output.strip().endswith(f"{len(all_rules())} ops")
    data = json.loads(run("ops", "--format", "json", "--domain", "ai.onnx").output)
    kinds = {d["op_type"]: d["kind"] for d in data}
    assert kinds["Conv"] == "conv" and kinds["If"] == "control_flow"


def test_python_dash_m(conv_path):
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "onnxscore", "analyze", conv_path, "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["totals"]["params"] == W_ELEMS


def test_internal_error_is_exit_3_and_says_so(conv_path, tmp_path, monkeypatch):
    # a bug of onnxscore (simulated: the walker raises) is not bad input: exit 3, one line that
    # names the file and says it is ours; --debug adds the traceback; other models still analyzed
    import onnxscore.walk as walk

    real = walk.analyze_graph

    def broken(G, *a, **kw):
        if "conv" in G.graph["loaded"].path:
            raise KeyError("boom")
        return real(G, *a, **kw)

    monkeypatch.setattr(walk, "analyze_graph", broken)
    other = tmp_path / "other.onnx"
    other.write_bytes(model([conv()], [weight("w", [4, 3, 3, 3])], inputs=(("x", F, [1, 3, 8, 8]),))
                      .SerializeToString())
    res = CliRunner().invoke(main, ["analyze", conv_path, str(other), "--format", "json"])
    assert res.exit_code == 3
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error" in lines[0] and conv_path in lines[0]
    assert "--debug" in lines[0] and "Traceback" not in res.stderr
    assert json.loads(res.stdout)["totals"]["macs"] == CONV_MACS  # the other model's report
    res = CliRunner().invoke(main, ["--debug", "analyze", conv_path])
    assert res.exit_code == 3 and "Traceback" in res.stderr and "KeyError: 'boom'" in res.stderr
    res = CliRunner().invoke(main, ["check", conv_path, "--no-cache"])
    assert res.exit_code == 3 and "internal error" in res.stderr


@pytest.mark.parametrize("command", [["analyze"], ["check", "--no-cache"], ["hotspots"]])
def test_an_interrupt_is_one_line_and_exit_130(conv_path, monkeypatch, command):
    # Ctrl-C during the analysis (simulated: the walker raises it): not click's "Aborted!" and
    # exit 1, which check uses for a model over its budget
    import onnxscore.walk as walk

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(walk, "analyze_graph", interrupted)
    res = CliRunner().invoke(main, [command[0], conv_path, *command[1:]])
    assert res.exit_code == 130 and res.stderr == "onnxscore: interrupted\n"


def test_an_interrupt_while_the_cli_is_imported(monkeypatch, capsys):
    import sys

    import onnxscore.__main__ as entry

    class Interrupting:  # a Ctrl-C arriving while onnxscore.cli is imported
        def find_spec(self, name, path=None, target=None):
            if name == "onnxscore.cli":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "onnxscore.cli")
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    with pytest.raises(SystemExit) as e:
        entry.main()
    assert e.value.code == 130 and capsys.readouterr().err == "onnxscore: interrupted\n"


@pytest.mark.parametrize("args, what", [
    (["analyze", "{m}", "-o", "{d}/r.json", "--format", "json"], "r.json: cannot write"),
    (["analyze", "{m}", "--html", "{d}/r.html", "--format", "json"], "r.html: cannot write"),
    (["hotspots", "{m}", "-o", "{d}/h.txt"], "h.txt: cannot write"),
    (["compare", "{m}", "{m}", "-o", "{d}/c.md"], "c.md: cannot write"),
    (["check", "{m}", "--no-cache", "--baseline", "{d}/b.json", "--update-baseline"], "b.json: cannot write the baseline"),
])
def test_an_output_that_cannot_be_written_is_bad_input_not_a_bug(conv_path, tmp_path, args, what):
    # a folder that does not exist: one line that names the file, exit 2 (it was exit 3, "a bug")
    missing = str(tmp_path / "no" / "such" / "folder")
    res = CliRunner().invoke(main, [a.format(m=conv_path, d=missing) for a in args])
    assert res.exit_code == 2, res.output
    assert res.stderr == f"onnxscore: error: {missing}/{what} (No such file or directory)\n"


def test_text_uses_the_terminal_width(monkeypatch, tmp_path):
    # a terminal of 160 columns gets 160; piped or written to a file, 80 (never under 80)
    import shutil
    import sys

    from onnxscore.cli import terminal_width

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(shutil, "get_terminal_size", lambda fallback=(80, 24): os.terminal_size((160, 40)))
    assert terminal_width(None) == 160
    assert terminal_width(str(tmp_path / "out.txt")) is None
    monkeypatch.setattr(shutil, "get_terminal_size", lambda fallback=(80, 24): os.terminal_size((60, 40)))
    assert terminal_width(None) == 80
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    assert terminal_width(None) is None
    # COLUMNS said explicitly wins, piped or to a file too (80 at least); a non-number is ignored
    monkeypatch.setenv("COLUMNS", "132")
    assert terminal_width(None) == terminal_width(str(tmp_path / "out.txt")) == 132
    monkeypatch.setenv("COLUMNS", "40")
    assert terminal_width(None) == 80
    monkeypatch.setenv("COLUMNS", "wide")
    assert terminal_width(None) is None


def test_columns_lays_out_a_piped_report(monkeypatch, light_dir):
    # the same report piped: 80 columns wide, or COLUMNS wide when it is set
    path = os.path.join(light_dir, "light_squeezenet.onnx")
    narrow = CliRunner().invoke(main, ["analyze", path]).output
    monkeypatch.setenv("COLUMNS", "150")
    wide = CliRunner().invoke(main, ["analyze", path]).output
    assert max(map(len, narrow.splitlines())) <= 80 < max(map(len, wide.splitlines())) <= 150
