"""The fuzzer of tests/fuzz.py, briefly (make fuzz runs it at length): a few hundred seeded
mutants of real models, each ending in a report or a one-line refusal."""
import random

from tests import fuzz


def test_mutants_end_in_a_report_or_a_refusal():
    failures = fuzz.run(200, seed=20261126)
    assert not failures, failures[:5]


def test_the_harness_catches_a_bug(tmp_path, monkeypatch):
    # a rule that raises is what the harness exists to find: it must report it
    import onnxscore.walk as walk

    def broken(*args, **kwargs):
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(walk, "analyze_graph", broken)
    name, model = fuzz.seeds()[0]
    assert fuzz.check(model.SerializeToString(), str(tmp_path)) == "ZeroDivisionError: planted"


def test_mutations_change_the_model():
    rng = random.Random(1)
    _, model = fuzz.seeds()[0]
    changed = sum(fuzz.mutate(model, rng)[0].SerializeToString() != model.SerializeToString()
                  for _ in range(50))
    assert changed >= 45


def test_kept_crashers_now_end_cleanly(tmp_path):
    # mutants the fuzzer once found failing (their names: seed-index-model-mutation)
    import glob
    import os

    kept = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "fuzz_crashers", "*.onnx")))
    assert kept
    for path in kept:
        with open(path, "rb") as f:
            assert fuzz.check(f.read(), str(tmp_path)) is None, path
