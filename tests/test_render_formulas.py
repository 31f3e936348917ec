"""Reports whose costs are polynomials in symbolic dims: readable tables at 80 and 160 columns
(names and numbers whole, long formulas under their rows) and hotspots ranked by leading term."""
import os
import re

import numpy as np
import pytest
from markdown_it import MarkdownIt
from onnx import TensorProto, helper, numpy_helper

import onnxscore
from onnxscore.poly import Poly, floordiv
from onnxscore.render import render
from onnxscore.render.hotspots import render_hotspots
from onnxscore.render.summary import Section
from onnxscore.render.text import FormulaTable, draw, formula_lines
from onnxscore.render.units import Formula
from onnxscore.report import growth, leading_term

LLM = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures", "llm_genai_int4.onnx")
S, T = Poly.symbol("sequence_length"), Poly.symbol("total_sequence_length")


@pytest.fixture(scope="module")
def llm():
    if not os.path.exists(LLM):
        pytest.skip(reason=f"fixture {LLM} is missing")
    return onnxscore.analyze(LLM)


def tiny():
    """x[1, seq, 64]: proj = x @ W[64, 128] (8192*seq MACs); scores = x @ x^T (64*seq**2)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", 64])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "z")]
    w = numpy_helper.from_array(np.zeros((64, 128), np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="proj"),
             helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1], name="t"),
             helper.make_node("MatMul", ["x", "xt"], ["z"], name="scores")]
    graph = helper.make_graph(nodes, "g", [x], outs, [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _words(text):
    return set(re.findall(r"[\w./*,]+", text))


# ---- tables ------------------------------------------------------------------------------------

@pytest.mark.parametrize("width", [80, 160])
def test_names_and_numbers_stay_whole(llm, width):
    text = render([llm], "text", width=width)
    assert max(len(line) for line in text.splitlines()) <= width
    words = _words(text)
    # op types whole (before: 'SkipSimplifiedLayerNormaliza' at 80, columns cut to 'l', 'pa')
    for op in ("SkipSimplifiedLayerNormalization", "SimplifiedLayerNormalization", "GroupQueryAttention",
               "MatMulNBits"):
        assert op in words, op
    # parameters whole: per op type, per block (before: '32,' and '284')
    for number in ("284,672", "32,768", "285,312"):
        assert number in words, number
    op_types = text[text.index("Op types"):text.index("All layers")]
    assert re.search(r"^ GroupQueryAttention +2 ", op_types, re.M)  # name and count on one line
    assert re.search(r"^ block +layers +params ", text, re.M)  # the block table keeps its headers
    # each formula is written whole somewhere, in its cell or under its row
    for formula in ("512*sequence_length*total_sequence_length + 251904*sequence_length",
                    "256*sequence_length*total_sequence_length",
                    "540*sequence_length*total_sequence_length + 576*sequence_length"):
        assert formula in text, formula


def test_wide_terminal_keeps_layer_names_and_shapes_in_their_columns(llm):
    text = render([llm], "text", width=160)
    layers = text[text.index("All layers"):]
    row = next(line for line in layers.splitlines() if "/post_attention_layernorm/SkipLayerNorm" in line)
    assert "/model/layers.0/post_attention_layernorm/SkipLayerNorm" in row
    assert "SkipSimplifiedLayerNormalization" in row and "1xsequence_lengthx128" in row
    # the block table fits: its formula stays in its cell
    blocks = text[text.index("Blocks at depth 1"):text.index("Op types")]
    assert re.search(r"^ model +32 +285,312 +512\*sequence_length\*total_sequence_length \+ "
                     r"251904\*sequence_length ", blocks, re.M)


def test_narrow_terminal_writes_long_formulas_under_their_rows(llm):
    text = render([llm], "text", width=80)
    blocks = text[text.index("Blocks at depth 1"):text.index("Op types")].splitlines()
    model = next(i for i, line in enumerate(blocks) if line.startswith(" model "))
    assert blocks[model].split()[:4] == ["model", "32", "285,312", "↓"]
    assert blocks[model + 1] == "   MACs = 512*sequence_length*total_sequence_length + 251904*sequence_length"
    assert "32768*sequence_length" in next(line for line in blocks if line.startswith(" lm_head "))


def test_formula_layout_on_a_section():
    long = Formula("540*sequence_length*total_sequence_length + 576*sequence_length")
    section = Section("t", ("layer", "op", "params", "MACs"),
                      (("a/b/c", "SkipSimplifiedLayerNormalization", "1,024", long),
                       ("d", "Gemm", "", Formula("4*seq")),
                       ("e", "Relu", "", "")), frozenset({"params", "MACs"}))
    assert isinstance(draw(section), FormulaTable)
    wide = formula_lines(section, 120)
    assert any(line.rstrip().endswith(long) for line in wide)  # fits: in its column
    narrow = formula_lines(section, 70)  # 1 + 12 + 32 + 6 + 5 + 3*2 = 62 columns with MACs moved
    assert max(len(line) for line in narrow) <= 70
    first = narrow.index(next(line for line in narrow if line.startswith(" a/b/c")))
    assert narrow[first].split() == ["a/b/c", "SkipSimplifiedLayerNormalization", "1,024", "↓"]
    assert narrow[first + 1] == "   MACs = 540*sequence_length*total_sequence_length"
    assert narrow[first + 2] == "          + 576*sequence_length"  # broken before a term, aligned
    assert any(line.split() == ["d", "Gemm", "4*seq"] for line in narrow)  # a short one stays
    # a column whose every cell moved is not drawn
    only = Section("t", ("layer", "MACs"), (("a", long),), frozenset({"MACs"}))
    lines = formula_lines(only, 40)
    assert lines[2].split() == ["layer"] and lines[4].split() == ["a"]


def test_formulas_break_between_terms_only():
    # a Floor atom's '+' is inside parentheses: the line breaks before '+ 3*H', not in '(H + 6)'
    section = Section("t", ("layer", "MACs"), (("conv", Formula("49*((H + 6)//7)*((W + 6)//7) + 3*H - 1")),),
                      frozenset({"MACs"}))
    assert formula_lines(section, 40)[5:7] == ["   MACs = 49*((H + 6)//7)*((W + 6)//7)",
                                               "          + 3*H - 1"]


def test_exact_reports_keep_the_rich_table():
    text = render([onnxscore.analyze(tiny(), dims={"seq": 8})], "text", width=80)
    assert "↓" not in text and " = " not in text.split("Top", 1)[1]
    section = Section("t", ("layer", "MACs"), (("a", "1.2 M"),), frozenset({"MACs"}))
    assert not isinstance(draw(section), FormulaTable)


def test_markdown_sets_formulas_as_code():
    md = render([onnxscore.analyze(tiny())], "md")
    assert "| `64*seq**2` |" in md  # the scores layer's MACs
    html = MarkdownIt("commonmark").enable("table").render(md)
    assert "<em>" not in html and "<strong>seq" not in html  # no '*' read as emphasis
    assert "<td><code>64*seq**2 + 8192*seq</code></td>" in html  # the MatMul op type
    assert "| MACs | 64\\*seq\\*\\*2 + 8192\\*seq  (exact, dims symbolic) |" in md  # text: escaped
    assert "<td>64*seq**2 + 8192*seq  (exact, dims symbolic)</td>" in html


# ---- hotspots ----------------------------------------------------------------------------------

def test_growth_orders_by_degree_then_coefficients():
    assert growth(64 * S * S) > growth(8192 * S) > growth(10**12)  # degree first
    assert growth(32768 * S) > growth(25600 * S + 51200)  # then the leading coefficient
    assert growth(25600 * S + 51200) > growth(25600 * S)  # then the next degree
    assert growth(256 * S * T) == growth(256 * S * S)  # all dims grow alike
    assert growth(floordiv(S, 7) * 49) == growth(7 * S)  # floor(S/7) grows as S/7
    assert leading_term(512 * S * T + 284672 * S) == 512 * S * T
    assert leading_term(5) == 5


def test_tiny_model_ranks_the_quadratic_layer_first():
    report = onnxscore.analyze(tiny())
    hot = report.hotspots(5, "macs")
    # scores: 64*seq**2 (degree 2) beats proj: 8192*seq (degree 1) though 64 < 8192
    assert [h.layer.name for h in hot] == ["scores", "proj"]
    assert [h.value for h in hot] == [64 * Poly.symbol("seq") ** 2, 8192 * Poly.symbol("seq")]
    assert hot[0].share is None and hot[0].cumulative is None
    # at seq=100: scores 64*100*100 = 640,000 < proj 8192*100 = 819,200; total 1,459,200
    at = report.hotspots(5, "macs", at={"seq": 100})
    assert [(h.layer.name, h.value) for h in at] == [("proj", 819_200), ("scores", 640_000)]
    assert at[0].share == pytest.approx(819_200 / 1_459_200)
    assert at[1].cumulative == pytest.approx(1.0)


LEADING = [  # MACs by hand: hidden 128 (heads*head_dim), qkv out 256, mlp 200, vocab 256;
    # S = sequence_length new tokens attend to T = total_sequence_length keys. A MatMulNBits
    # costs S*K*N; attention S*T*128 for Q.K^T and as much for P.V: 256*S*T, degree 2, so it
    # ranks above every MatMulNBits (degree 1) whatever the coefficients
    "/model/layers.0/attn/GroupQueryAttention",  # 256*S*T
    "/model/layers.1/attn/GroupQueryAttention",  # 256*S*T, a tie: graph order
    "/model/layers.0/attn/qkv_proj/MatMul_Q4",   # 32768*S = 128*256*S (K*N of the qkv weight)
    "/model/layers.1/attn/qkv_proj/MatMul_Q4",   # 32768*S
    "/lm_head/MatMul_Q4",                        # 32768*S = 128*256*S
    "/model/layers.0/mlp/gate_proj/MatMul_Q4",   # 25600*S = 128*200*S
    "/model/layers.0/mlp/up_proj/MatMul_Q4",     # 25600*S
    "/model/layers.0/mlp/down_proj/MatMul_Q4",   # 25600*S = 200*128*S
    "/model/layers.1/mlp/gate_proj/MatMul_Q4",   # 25600*S
    "/model/layers.1/mlp/up_proj/MatMul_Q4",     # 25600*S; then down_proj.1 25600*S, o_proj 16384*S
]


def test_llm_hotspots_rank_by_leading_term(llm):
    hot = llm.hotspots(10, "macs")  # before: () - no layer had integer MACs
    assert [h.layer.name for h in hot] == LEADING
    assert hot[0].value == 256 * S * T and hot[2].value == 32768 * S and hot[5].value == 25600 * S
    assert [h.layer.name for h in llm.hotspots(13, "macs")[-3:]] == [
        "/model/layers.1/mlp/down_proj/MatMul_Q4", "/model/layers.0/attn/o_proj/MatMul_Q4",
        "/model/layers.1/attn/o_proj/MatMul_Q4"]  # 25600*S, then 16384*S = 128*128*S twice


def test_llm_hotspots_at_dim_values(llm):
    # S=1, T=64: GQA 256*64 = 16384, qkv/lm_head 32768, gate/up/down 25600, o_proj 16384;
    # total 512*64 + 284672 = 317440. The 16384 ties keep graph order: GQA.0 before o_proj.0
    hot = llm.hotspots(10, "macs", at={"sequence_length": 1, "total_sequence_length": 64})
    assert [h.value for h in hot] == [32768] * 3 + [25600] * 6 + [16384]
    assert hot[-1].layer.name == "/model/layers.0/attn/GroupQueryAttention"
    assert hot[0].share == pytest.approx(32768 / 317440)
    assert hot[-1].cumulative == pytest.approx((3 * 32768 + 6 * 25600 + 16384) / 317440)


@pytest.mark.parametrize("width", [80, 160])
def test_llm_hotspot_table_says_how_it_ranks(llm, width):
    text = render_hotspots([llm], "text", k=10, by="macs", width=width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "Top 10 layers by MACs, ranked by leading term" in text
    assert "MACs grow as 512*sequence_length*total_sequence_length" in " ".join(text.split())
    ranked = [line.split()[1] for line in text.splitlines() if re.match(r"^ *\d+  /", line)]
    assert ranked == LEADING
    assert text.count("256*sequence_length*total_sequence_length") == 2


def test_sweep_ranks_hotspots_at_the_costliest_point(llm):
    from onnxscore.sweep import sweep
    rows = sweep(llm, {"sequence_length": (1, 128), "total_sequence_length": (128, 4096)})
    text = render([llm], "text", width=160, sweeps=[rows], layers=False)
    assert "Top 10 layers by MACs at sequence_length=128, total_sequence_length=4096" in text
    # there GQA = 256*128*4096 = 134,217,728 each, of 512*128*4096 + 284672*128 = 304,873,472
    first = next(line for line in text.split("Top 10", 1)[1].splitlines() if line.startswith("  1  "))
    assert first.split()[-3:] == ["M", "44.0%", "44.0%"]  # 134 M


def test_hotspot_json_writes_polynomials_as_text(llm):
    import json
    rows = json.loads(render_hotspots([llm], "json", k=2))["rows"]
    assert rows[0]["value"] == "256*sequence_length*total_sequence_length"
    assert rows[0]["share"] is None and rows[0]["cumulative"] is None


def test_op_types_rank_polynomials_first(llm):
    assert [r.key for r in llm.by_op_type()[:3]] == ["GroupQueryAttention", "MatMulNBits", "Sub"]


def test_charts_need_numbers_the_html_tables_rank_polynomials():
    from onnxscore.render.html import to_html
    from onnxscore.render.plot import top_bars
    from tests.render.test_html import Page

    report = onnxscore.analyze(tiny())
    assert top_bars(report) == ()  # both layers cost a polynomial: no bar
    html = to_html([report])
    assert "Top layers by MACs (no layer has MACs)" not in html  # (both have MACs: polynomials)
    assert "The costs are polynomials in seq: give --dim NAME=VALUE to chart them." in html
    page = Page(html)  # by the leading term: 64*seq**2 (scores) above 8192*seq (proj)
    assert page.texts("table-top-layers", "layer") == ["scores", "proj"]
    assert page.texts("table-top-layers", "MACs") == ["64*seq**2", "8192*seq"]


def test_rollups_carry_flops_formulas(llm):
    """Op types add their layers' FLOPs as polynomials too (a symbolic block's FLOPs were the
    sum of its exact layers only, `1`): each row's formula is the sum of its layers' FLOPs,
    formula or number."""
    for r in llm.by_op_type():
        layers = [x for x in llm.top_layers if x.op_type == r.key and x.status != "zero"]
        want = sum((x.flops_formula if x.flops is None else x.flops) for x in layers)
        if isinstance(want, Poly):
            assert r.flops_formula == want
        else:
            assert r.flops_formula is None and r.flops == want
    gqa = next(r for r in llm.by_op_type() if r.key == "GroupQueryAttention")
    assert isinstance(gqa.flops_formula, Poly)
    assert str(gqa.flops_formula) in render([llm], "text", width=160)
