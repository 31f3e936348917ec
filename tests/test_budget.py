"""onnxscore check: budgets, config discovery, baselines, the cache and the CLI's exit codes."""
import dataclasses
import json
import os

import pytest
from click.testing import CliRunner
from onnx import helper

import onnxscore
from onnxscore import budget as B
from onnxscore.budget import Budget, ConfigError, Figures, evaluate, load_config, parse_quantity
from onnxscore.cache import Cache
from onnxscore.cli import check_main, main
from tests.test_compare import net

# net(): conv1 3->16, conv2 16->32 (3x3, pad 1, 16x16), fc 32->10
PARAMS = (16 * 27 + 16) + (32 * 16 * 9 + 32) + (10 * 32 + 10)      # 5,418
MACS = 16 * 256 * 27 + 32 * 256 * 144 + 32 * 10                     # 1,290,560


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def model_file(path, c1=16, accuracy=None):
    m = net(c1=c1)
    if accuracy is not None:
        helper.set_model_props(m, {"onnxscore.accuracy": str(accuracy)})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(m.SerializeToString())
    return str(path)


@pytest.mark.parametrize("text, kind, value", [
    ("4.5G", "count", 4_500_000_000), ("600M", "count", 600_000_000), ("12k", "count", 12_000),
    (25_000_000, "count", 25_000_000), ("20MB", "bytes", 20_000_000), ("16MiB", "bytes", 16 * 2**20),
    ("1.5 GiB", "bytes", int(1.5 * 2**30)), ("512", "bytes", 512), ("3e9", "count", 3_000_000_000),
])
def test_quantities(text, kind, value):
    assert parse_quantity(text, kind) == value


@pytest.mark.parametrize("text, kind", [("4.5Q", "count"), ("20MB", "count"), ("lots", "count"), ("9X", "bytes")])
def test_bad_quantities(text, kind):
    with pytest.raises(ConfigError):
        parse_quantity(text, kind, "max_x")


def test_config_found_walking_up_with_overrides(tmp_path, monkeypatch):
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n\n[tool.onnxscore]\nmax_macs = "4.5G"\n'
          'max_growth = "5%"\ndims = { seq = 128 }\n\n[[tool.onnxscore.budget]]\npath = "models/mobile/*.onnx"\n'
          'max_macs = "600M"\ndisallow_ops = ["LSTM"]\n')
    (tmp_path / "models" / "mobile").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "models" / "mobile")
    config = load_config()
    assert config.source == str(tmp_path / "pyproject.toml")
    assert config.budget_for(str(tmp_path / "models" / "big.onnx")).max_macs == 4_500_000_000
    mobile = config.budget_for(str(tmp_path / "models" / "mobile" / "m.onnx"))
    assert (mobile.max_macs, mobile.disallow_ops, mobile.max_growth, dict(mobile.dims)) == \
        (600_000_000, ("LSTM",), 0.05, {"seq": 128})


def test_dotfile_config(tmp_path):
    path = write(tmp_path / ".onnxscore.toml", 'max_params = "25M"\n')
    assert load_config(path).base.max_params == 25_000_000
    assert load_config(start=str(tmp_path)).source == path


@pytest.mark.parametrize("text, message", [
    ('[tool.onnxscore]\nmax_macks = "4G"\n', "unknown key 'max_macks'"),
    ('[tool.onnxscore]\nmax_macs = "4 parsecs"\n', "unknown unit 'parsecs'"),
    ('[tool.onnxscore]\nmax_macs = \n', "not valid TOML"),
    ('[tool.onnxscore]\nallow_unsupported = "yes"\n', "expected true or false"),
    ('[[tool.onnxscore.budget]]\nmax_macs = "1G"\n', "needs a path"),
    ('[[tool.onnxscore.budget]]\npath = "*.onnx"\nbaseline = "b.json"\n', "unknown key 'baseline'"),
])
def test_bad_configs(tmp_path, text, message):
    path = write(tmp_path / "pyproject.toml", text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    res = CliRunner().invoke(main, ["check", "--config", path, "--no-cache"])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1 and "pyproject.toml" in res.stderr


def figures(**kw):
    base = dict(params=PARAMS, macs=MACS, flops=2 * MACS, weight_bytes=PARAMS * 4,
                peak_activation_bytes=1000, complete=True, accuracy=None, op_types=("ai.onnx::Conv",),
                unsupported_ops=(), unresolved_dims=(), layers={})
    base.update(kw)
    return Figures(**base)


def test_evaluate_each_limit():
    f = figures()
    assert evaluate(f, Budget(max_params=PARAMS, max_macs=MACS), "m.onnx") == []
    (v,) = evaluate(f, Budget(max_macs=1_000_000), "m.onnx")
    # 1,290,560 over 1,000,000: +29 %
    assert str(v) == "m.onnx: MACs 1.29 M exceed budget 1.00 M (+29%)"
    (v,) = evaluate(f, Budget(max_weight_bytes=20_000), "m.onnx")
    assert "weight bytes 21.2 KiB exceed budget 19.5 KiB (+8%)" in str(v)  # 21,672 B vs 20,000 B
    assert [v.figure for v in evaluate(f, Budget(max_peak_activation_bytes=999), "m")] == ["peak_activation_bytes"]
    assert [v.figure for v in evaluate(f, Budget(disallow_ops=("Conv",)), "m")] == ["disallowed"]
    unsupported = figures(unsupported_ops=("my.ops::Frob",))
    assert [v.figure for v in evaluate(unsupported, Budget(), "m")] == ["unsupported"]
    (v,) = evaluate(figures(unsupported_ops=("ai.onnx::Erfc", "my.ops::Frob")), Budget(), "m")
    assert str(v) == ("m: not ONNX operators (an exporter left them unconverted): ai.onnx::Erfc; no cost rule "
                      "for my.ops::Frob (totals are lower bounds; set allow_unsupported = true to accept)")
    assert evaluate(unsupported, Budget(allow_unsupported=True), "m") == []
    unknown = figures(peak_activation_bytes=None, unresolved_dims=("seq",))
    assert {v.figure for v in evaluate(unknown, Budget(max_peak_activation_bytes=10), "m")} == \
        {"peak_activation_bytes", "unresolved"}


def test_min_netscore_from_config_metadata_or_missing():
    f = figures(accuracy=70.0)
    # 40*log10(70) - 10*log10(0.005418) - 10*log10(0.00129056) = 73.804 + 22.662 + 28.892 = 125.36
    assert evaluate(f, Budget(min_netscore=125.0), "m") == []
    (v,) = evaluate(f, Budget(min_netscore=125.5), "m")
    assert "NetScore 125.36 below budget 125.5" in v.message
    assert evaluate(figures(accuracy=None), Budget(min_netscore=10.0, accuracy=70.0), "m") == []
    (v,) = evaluate(figures(accuracy=None), Budget(min_netscore=10.0), "m")
    assert "cannot be computed" in v.message


def test_check_cli_within_and_over(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "pyproject.toml", f'[tool.onnxscore]\nmax_macs = {MACS}\ncache = ".cache"\n'
          '[[tool.onnxscore.budget]]\npath = "small/*.onnx"\nmax_params = "3K"\n')
    model_file(tmp_path / "a.onnx")
    model_file(tmp_path / "small" / "b.onnx", c1=15)
    res = CliRunner().invoke(main, ["check"])
    assert res.exit_code == 1
    assert res.output.splitlines() == [  # (15*27 + 15) + (32*15*9 + 32) + 330 = 5,102 vs 3,000
        "small/b.onnx: parameters 5.10 K exceed budget 3.00 K (+70%)",
        "onnxscore check: 2 model(s), 1 within budget, 1 over"]
    assert CliRunner().invoke(main, ["check", "a.onnx"]).exit_code == 0
    assert CliRunner().invoke(main, ["check", "a.onnx", "--max-macs", "1M"]).exit_code == 1
    assert check_main(["a.onnx", "--no-cache"]) == 0
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08garbage")
    res = CliRunner().invoke(main, ["check", "a.onnx", str(bad)])
    assert res.exit_code == 2 and "broken.onnx" in res.stderr
    data = json.loads(CliRunner().invoke(main, ["check", "--format", "json"]).stdout)  # broken.onnx: stderr
    assert {m["path"]: m["ok"] for m in data["models"]} == {"a.onnx": True, "small/b.onnx": False}


def test_accuracy_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "acc.json", json.dumps({"a.onnx": 70.0}))
    write(tmp_path / "pyproject.toml", '[tool.onnxscore]\nmin_netscore = 125.0\naccuracy_file = "acc.json"\n')
    model_file(tmp_path / "a.onnx")
    assert CliRunner().invoke(main, ["check", "a.onnx", "--no-cache"]).exit_code == 0
    write(tmp_path / "acc.json", json.dumps({"a.onnx": 60.0}))
    res = CliRunner().invoke(main, ["check", "a.onnx", "--no-cache"])
    assert res.exit_code == 1 and "NetScore" in res.output


def test_baseline_growth_names_the_grown_layers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "pyproject.toml", '[tool.onnxscore]\nmax_growth = "5%"\n')
    path = model_file(tmp_path / "m.onnx", c1=8)
    res = CliRunner().invoke(main, ["check", "--update-baseline", "--no-cache"])
    assert res.exit_code == 0 and "baseline written" in res.output
    baseline = json.loads((tmp_path / "onnxscore-baseline.json").read_text())
    assert baseline["schema"] == "onnxscore.baseline/1" and baseline["models"]["m.onnx"]["params"] == \
        (8 * 27 + 8) + (32 * 8 * 9 + 32) + 330
    assert CliRunner().invoke(main, ["check", "--no-cache"]).exit_code == 0
    model_file(tmp_path / "m.onnx", c1=16)  # conv1 and conv2 widen: params +2,528, MACs x2
    res = CliRunner().invoke(main, ["check", "--no-cache"])
    assert res.exit_code == 1
    lines = res.output.splitlines()
    assert any(line.startswith("m.onnx: parameters grew +87.5% over the baseline") for line in lines)
    assert any("MACs grew +100.0%" in line and "grew most: /features/conv2/Conv, /features/conv1/Conv" in line
               for line in lines)
    assert CliRunner().invoke(main, ["check", "--update-baseline", "--no-cache"]).exit_code == 0
    assert CliRunner().invoke(main, ["check", "--no-cache"]).exit_code == 0
    assert os.path.exists(path)


def test_cache_hits_skip_the_analysis_and_changes_miss(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "pyproject.toml", '[tool.onnxscore]\nmax_macs = "1G"\ncache = ".cache"\n')
    for i in range(5):
        model_file(tmp_path / f"m{i}.onnx", c1=4 + i)
    calls = []
    real = onnxscore.walk.analyze
    monkeypatch.setattr(onnxscore.walk, "analyze", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    run = lambda: json.loads(CliRunner().invoke(main, ["check", "--format", "json"]).output)  # noqa: E731
    assert not any(m["cached"] for m in run()["models"]) and len(calls) == 5
    assert all(m["cached"] for m in run()["models"]) and len(calls) == 5  # nothing re-analyzed
    model_file(tmp_path / "m2.onnx", c1=12)
    after = {m["path"]: m["cached"] for m in run()["models"]}
    assert after == {"m0.onnx": True, "m1.onnx": True, "m2.onnx": False, "m3.onnx": True, "m4.onnx": True}
    assert calls[-1] == "m2.onnx"
    # other options are other keys
    CliRunner().invoke(main, ["check", "m0.onnx", "--dim", "batch=2"])
    assert calls[-1] == "m0.onnx"


def test_cache_store(tmp_path):
    c = Cache(str(tmp_path))
    assert c.get("k") is None
    c.put("k", {"a": 1})
    assert Cache(str(tmp_path)).get("k") == {"a": 1}
    assert B.Figures.from_dict(figures().to_dict()) == figures()


@pytest.mark.parametrize("device", [None, "board"])
def test_figures_to_dict_is_asdict_without_the_latency_keys_of_no_device(device):
    layers = {"conv": {"params": 9, "macs": 81, "flops": 162}, "relu": {"params": 0, "macs": 0, "flops": 9}}
    f = figures(layers=layers, op_types=("ai.onnx::Conv", "ai.onnx::Relu"), unresolved_dims=("seq",))
    if device:
        f = dataclasses.replace(f, latency_ms=1.5, latency_device=device, latency_unknown=2)
    d = f.to_dict()
    expected = dataclasses.asdict(f)
    if device is None:
        for key in ("latency_ms", "latency_device", "latency_unknown"):
            del expected[key]
    assert d == expected and list(d) == list(expected)
    d["layers"]["conv"]["macs"] = 0  # a copy: the figures are not changed through it
    assert f.layers["conv"]["macs"] == 81


def test_markdown_violations_read_as_text(tmp_path, monkeypatch):
    # two violations of one model in one Markdown cell: joined with "; ", never an escaped <br>
    monkeypatch.chdir(tmp_path)
    model_file(tmp_path / "a.onnx")
    res = CliRunner().invoke(main, ["check", "a.onnx", "--no-cache", "--max-params", "1K",
                                    "--max-macs", "1K", "--format", "md"])
    assert res.exit_code == 1
    row = next(line for line in res.stdout.splitlines() if line.startswith("| `a.onnx`"))
    assert "exceed budget" in row and "; " in row and "&lt;" not in row and "<br>" not in row
