"""Meta-tests: every ONNX op of the default and ai.onnx.ml domains has a rule, and every rule is
documented, so a new op in a future onnx release cannot slip in uncounted."""
from __future__ import annotations

import onnx.defs
import pytest

import onnxscore.ops  # noqa: F401  (registers every rule)
from onnxscore.ops import registry
from onnxscore.ops.registry import DEFAULT_DOMAIN, ML_DOMAIN, Cost, rule, zero_cost

DOMAINS = (DEFAULT_DOMAIN, ML_DOMAIN)
SCHEMA_OPS = sorted({(s.domain, s.name) for s in onnx.defs.get_all_schemas_with_history()
                     if s.domain in DOMAINS})
RULES = registry.all_rules()


def test_the_schema_list_is_not_empty():
    assert len(SCHEMA_OPS) > 200


def test_every_onnx_op_has_a_rule():
    missing = [f"{d or 'ai.onnx'}:{op}" for d, op in SCHEMA_OPS if registry.lookup(d, op) is None]
    assert not missing, f"ops without a cost rule: {missing}"


@pytest.mark.parametrize("r", RULES, ids=lambda r: f"{r.domain or 'ai.onnx'}:{r.op_type}")
def test_rule_is_documented(r):
    assert isinstance(r.kind, str) and r.kind.strip()
    if r.zero_cost:
        assert r.doc.strip(), "a zero-cost declaration needs its `why`"
    else:
        assert r.doc.strip(), "a counting rule needs a docstring with its formula"
        assert r.fn.__doc__ and r.fn.__doc__.strip()


def test_duplicate_registration_raises():
    domain = "test.onnxscore.duplicate"
    try:
        zero_cost("Dup", kind="data", why="a test op", domain=domain)
        with pytest.raises(RuntimeError, match="duplicate"):
            zero_cost("Dup", kind="data", why="again", domain=domain)

        with pytest.raises(RuntimeError, match="duplicate"):
            @rule("Dup", kind="data", domain=domain)
            def dup(ctx):
                """Never registered."""
                return Cost()
        # An existing rule of the default domain cannot be shadowed either, under either spelling.
        with pytest.raises(RuntimeError, match="duplicate"):
            zero_cost("Add", kind="elementwise", why="shadow", domain="ai.onnx")
    finally:
        registry._RULES.pop((domain, "Dup"), None)
    assert registry.lookup(domain, "Dup") is None
    assert not registry.lookup("", "Add").zero_cost


def test_ops_command_lists_every_schema_op():
    import json

    from click.testing import CliRunner

    from onnxscore.cli import main

    listed = {(d["domain"], d["op_type"]) for d in
              json.loads(CliRunner().invoke(main, ["ops", "--format", "json"]).output)}
    missing = [(d, op) for d, op in SCHEMA_OPS if (d or "ai.onnx", op) not in listed]
    assert not missing
