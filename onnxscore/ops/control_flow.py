"""If, Loop, Scan and SequenceMap: the cost of their subgraphs.

* ``If``: when the shapes stage computed the condition, only the branch taken is walked and
  costed, and the note says why; otherwise both branches are walked and listed and the node
  costs the more expensive one (by MACs, then FLOPs), and says which.
* ``Loop``: body x trip count ``M`` when ``M`` is a constant; otherwise unknown.
* ``Scan``: body x the length of the scanned axis of the first scan input.
* ``SequenceMap``: body x sequence length, which a static analysis cannot know: unknown unless
  the sequence has no elements to map.
"""
from __future__ import annotations

from onnxscore.ops.registry import CONTROL, DATA, Cost, Ctx, UnknownShape, rule


@rule("If", kind="control_flow", roles={0: CONTROL})
def if_(ctx: Ctx) -> Cost:
    """cost(taken branch) when the condition is known (a constant, a shape computation or a
    ``--value``); else max(cost(then_branch), cost(else_branch)), both branches listed."""
    if ctx.branch is not None:
        taken, why = ctx.branch
        cost = ctx.subgraph_cost(taken)
        ctx.note = f"If: {why}, so {taken} ({cost.macs} MACs / {cost.flops} FLOPs)"
        return cost
    then_c, else_c = ctx.subgraph_cost("then_branch"), ctx.subgraph_cost("else_branch")
    key = lambda c: (c.macs, c.flops)  # noqa: E731
    taken = "then_branch" if key(then_c) >= key(else_c) else "else_branch"
    ctx.note = (f"If: then_branch {then_c.macs} MACs / {then_c.flops} FLOPs, else_branch "
                f"{else_c.macs} MACs / {else_c.flops} FLOPs; counted the more expensive "
                f"({taken})")
    return max(then_c, else_c, key=key)


@rule("Loop", kind="control_flow", roles={0: CONTROL, 1: CONTROL})
def loop(ctx: Ctx) -> Cost:
    """body x M, where M (input 0) must be a constant trip count."""
    carried = [t.shape if t is not None else None for t in ctx.inputs[2:]]
    body = ctx.subgraph_cost("body", [(), ()] + carried)
    m = ctx.value(0)
    if m is None or m.size != 1:
        raise UnknownShape(["Loop trip count"], ctx.name)
    trips = int(m.reshape(-1)[0])
    ctx.note = f"Loop: body x {trips} iterations"
    return body * trips


@rule("Scan", kind="control_flow", roles={})
def scan(ctx: Ctx) -> Cost:
    """body x the scanned length: axis ``scan_input_axes[0]`` (default 0) of the first scan input."""
    n_scan = int(ctx.attr("num_scan_inputs", 1))
    first = len(ctx.inputs) - n_scan
    legacy = bool(ctx.opset and ctx.opset < 9)  # opset 8: sequence_lens input, batch axis 0
    shape = ctx.in_shape(first)
    axes = [1] * n_scan if legacy else (ctx.attr("scan_input_axes") or [0] * n_scan)
    trips = shape[axes[0] % len(shape)]
    states = [t.shape if t is not None else None for t in ctx.inputs[1 if legacy else 0:first]]
    slices = []
    for t, axis in zip(ctx.inputs[first:], axes):
        s = t.shape if t is not None else None
        slices.append(None if s is None else tuple(d for i, d in enumerate(s) if i != axis % len(s)))
    body = ctx.subgraph_cost("body", states + slices)
    ctx.note = f"Scan: body x {trips} iterations"
    return body * trips


@rule("SequenceMap", kind="control_flow", roles={0: DATA})
def sequence_map(ctx: Ctx) -> Cost:
    """body x sequence length; a sequence's length is not known statically."""
    ctx.subgraph_cost("body")
    raise UnknownShape(["SequenceMap sequence length"], ctx.name)
