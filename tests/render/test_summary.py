"""The summary's inputs line: an LLM's key/value cache inputs, two per layer, as one entry each."""
import os

import onnxscore
from onnxscore.render import render
from onnxscore.render.summary import inputs_line

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "fixtures")


def test_numbered_inputs_of_one_shape_are_one_entry():
    cache = {f"past_key_values.{i}.{kv}": (1, 8, "past", 128) for i in range(32) for kv in ("key", "value")}
    line = inputs_line({"input_ids": (1, "seq"), **cache})
    assert line == ("input_ids: 1xseq; past_key_values.{0..31}.key: 1x8xpastx128; "
                    "past_key_values.{0..31}.value: 1x8xpastx128")


def test_numbers_that_do_not_run_on_are_counted():
    assert inputs_line({"a1": (2,), "a3": (2,), "a7": (2,)}) == "aN (3 of them): 2"
    assert inputs_line({"a1": (2,), "a2": (3,)}) == "a1: 2; a2: 3"  # shapes differ: apart
    assert inputs_line({}) == "none"


def test_the_genai_fixtures_text_summary():
    """onnxruntime-genai's builder: 2 layers, a key and a value input each."""
    r = onnxscore.analyze(os.path.join(FIXTURES, "llm_genai_int4.onnx"))
    text = " ".join(render([r], "text", width=200).split())
    assert "past_key_values.{0..1}.key: 1x2xpast_sequence_lengthxkv_cache_dim;" in text
    assert "past_key_values.0.key" not in text.split("KV cache")[0]
