"""The walker: visits the graph once, applies each node's rule, counts every weight once."""
from __future__ import annotations

import logging
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
import functools
from functools import partial
from itertools import accumulate
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

import onnx

from onnxscore import kvcache, ops
from onnxscore.buffers import UNCOUNTED, activation_only, computed_tables
from onnxscore.digraph import Graph
from onnxscore.graph import TRANSPARENT, bind_dims, default_opset, graph_of, weight_like
from onnxscore.model import collector_paused
from onnxscore.netscore import ACCURACY_METADATA_KEY, ALPHA, BETA, GAMMA, netscore
from onnxscore.ops.registry import ZERO as ZERO_COST
from onnxscore.ops.registry import (BUFFER, DATA, QUANT, WEIGHT, Cost, Ctx, InvalidNode, Rule, Tensor,
                                    UnknownShape, is_named)
from onnxscore.report import (ERROR, OK, SYMBOLIC, UNKNOWN, UNSUPPORTED, ZERO, LayerCost, ModelInfo,
                              Report, Totals, UnknownCause, not_onnx, unsupported_text)
from onnxscore.shapes import ConstTensor, Lost, dtype_name, peek, storage_bytes
from onnxscore.shapes.engine import Values

log = logging.getLogger(__name__)

# Claim strength: a tensor used as a parameter anywhere is a parameter.
_RANK = {WEIGHT: 3, BUFFER: 2, QUANT: 1}


class _BodyUnknown(UnknownShape):
    """A subgraph holds a node whose cost is unknown."""


@dataclass
class _Claim:
    kind: str  # WEIGHT (a parameter), BUFFER or QUANT
    layer: str
    users: Dict[str, None] = field(default_factory=dict)  # the layers that read it, in order


@dataclass
class _Walk:
    """What one walk accumulates over the graph and its subgraphs."""

    layers: List[LayerCost] = field(default_factory=list)
    claims: Dict[str, _Claim] = field(default_factory=dict)
    consts: Dict[str, ConstTensor] = field(default_factory=dict)
    unresolved: Dict[str, List[str]] = field(default_factory=lambda: defaultdict(list))
    lost: Dict[Lost, List[str]] = field(default_factory=lambda: defaultdict(list))  # cause -> layers
    chains: Dict[Lost, Tuple[str, ...]] = field(default_factory=dict)  # cause -> first layer's chain
    unsupported: Counter = field(default_factory=Counter)
    warnings: List[str] = field(default_factory=list)
    errors_logged: Set[str] = field(default_factory=set)
    logical: Dict[str, int] = field(default_factory=dict)  # packed weight -> parameter count
    formula: Optional[Cost] = Cost()  # total as polynomials; None once a cost is truly unknown
    kinds: Dict[Tuple[str, str], List[Tuple[str, bool]]] = field(default_factory=dict)  # see _claim_inputs
    # of the main graph's tensors, the step of its order that makes each, and the last that reads it
    made_at: Dict[str, int] = field(default_factory=dict)
    last_read: Dict[str, int] = field(default_factory=dict)

    def count(self, root: str) -> Optional[int]:
        """Parameters a constant holds: its logical count when packed, else its elements."""
        return self.logical.get(root, self.consts[root].numel)


def _is_default(domain: str) -> bool:
    return domain in ("", "ai.onnx")


def _root(G: Graph, name: str) -> Optional[str]:
    """The constant that tensor ``name`` is, looking through transparent ops, or None."""
    if name in G.graph["constants"]:
        return name
    roots = G.graph.get("roots")
    if roots is None:
        roots = G.graph["roots"] = _roots(G)
    return roots.get(name)


def _roots(G: Graph) -> Dict[str, str]:
    """Every tensor of ``G`` that is a constant re-typed or re-shaped (by ops in
    :data:`TRANSPARENT`), mapped to that constant: one pass in execution order."""
    consts = G.graph["constants"]
    nodes = G.nodes
    roots: Dict[str, str] = {}
    for key in G.graph["order"]:
        nd = nodes[key]
        ins = nd["inputs"]
        if nd["op_type"] in TRANSPARENT and ins and _is_default(nd["domain"]):
            first = ins[0]
            root = first if first in consts else roots.get(first)
            if root is not None:
                for out in nd["outputs"]:
                    if out and out not in consts:
                        roots[out] = root
    return roots


def _tables(G: Graph) -> Dict[str, str]:
    """The computed tables of ``G`` (see :mod:`onnxscore.buffers`), found once per graph."""
    if "tables" not in G.graph:
        G.graph["tables"] = computed_tables(G, _root)
    return G.graph["tables"]


def _claim_inputs(G: Graph, nd: dict, rule: Optional[Rule], w: _Walk, layer: str,
                  logical: Mapping[int, int], consts: Mapping[str, ConstTensor],
                  roots: Mapping[str, str], constant: int) -> Tuple[List[str], List[str]]:
    """Record each constant input of node ``nd`` (of graph ``G``, whose ``constants`` and
    ``roots`` these are; bit i of ``constant`` set for its input i if it is one) by its role;
    return the new parameters and every constant first claimed here (whose bytes this layer
    reads first). ``logical`` gives the parameter count of packed inputs (an int4 MatMulNBits
    weight holds K*N weights in K*N/2 bytes), set by the rule."""
    new: List[str] = []
    first: List[str] = []
    ins = nd["inputs"]
    op, domain = nd["op_type"], nd["domain"]
    default = _is_default(domain)
    if default and op in TRANSPARENT:
        constant &= ~1  # a transparent node whose data input is a constant prepares a weight: not its reader
    claims = w.claims
    hows = w.kinds.get((op, domain))  # how this op reads each input: worked out once
    if hows is None or len(hows) < len(ins):
        hows = w.kinds[(op, domain)] = [(rule.role(i) if rule is not None else DATA,
                                         default and activation_only(op, i)) for i in range(len(ins))]
    for i, name in enumerate(ins):
        if not constant >> i & 1:
            continue
        root = name if name in consts else roots[name]
        const = consts[root]
        role, activation = hows[i]
        table = _tables(G).get(root)  # (found once per graph)
        if table in UNCOUNTED:  # no tensor of the model (an initial state, resize scales)
            kind = None
        elif role == DATA:
            kind = (BUFFER if activation or table else WEIGHT) if weight_like(const, nd["input_dtypes"][i]) else None
        else:
            kind = role if role in (WEIGHT, BUFFER, QUANT) else None
        if kind is None:
            continue
        w.consts.setdefault(root, const)
        if i in logical:
            w.logical[root] = int(logical[i])
        claim = claims.get(root)
        if claim is None:
            claims[root] = _Claim(kind, layer, {layer: None})
            first.append(root)
            if kind == WEIGHT:
                new.append(root)
            continue
        claim.users[layer] = None
        if _RANK[kind] > _RANK[claim.kind]:
            claim.kind, claim.layer = kind, layer
            if kind == WEIGHT:
                new.append(root)
    return new, first


def _sizer(G: Graph) -> Callable[[Sequence[str], Sequence, Sequence[int]], Optional[int]]:
    """A function giving the bytes of the activation tensors among ``names`` (None when a
    shape is unknown); constants, and tensors that are a constant re-typed or re-shaped, are
    weights and left out. Each tensor's size is worked out once per graph (``sizes``)."""
    sizes = G.graph.get("sizes")
    if sizes is None:
        sizes = G.graph["sizes"] = {}
    consts = G.graph["constants"]
    roots = G.graph.get("roots")
    if roots is None:
        roots = G.graph["roots"] = _roots(G)

    def size(names: Sequence[str], shapes: Sequence, dtypes: Sequence[int]) -> Optional[int]:
        total = 0
        for name, shape, dtype in zip(names, shapes, dtypes):
            n = sizes.get(name, -1)
            if n == -1:
                if not name or name in consts or name in roots:
                    n = 0
                elif shape is None:
                    n = None
                else:
                    count = 1
                    for d in shape:
                        if not isinstance(d, int):
                            count = None
                            break
                        count *= d
                    n = None if count is None else storage_bytes(dtype, count)
                sizes[name] = n
            if n is None:
                return None
            total += n
        return total

    return size


def _looker(values):
    """How the walker looks up inputs' values: never making one that is deferred."""
    return values.peek if isinstance(values, Values) else partial(peek, values)


def _ctx(G: Graph, key: str, nd: dict, look) -> Ctx:
    values = G.graph["values"]
    ins = [Tensor(n, s, d, look(n)) if n else None
           for n, s, d in zip(nd["inputs"], nd["input_shapes"], nd["input_dtypes"])]
    outs = [Tensor(n, s, d, look(n)) if n else None
            for n, s, d in zip(nd["outputs"], nd["output_shapes"], nd["output_dtypes"])]
    return Ctx(key, nd["op_type"], nd["domain"], nd["attrs"], ins, outs, G.graph.get("opset", 0),
               subgraphs=tuple(nd["subgraphs"]), branch=nd.get("branch"), values=values)


_NO_EXTRAS = ({}, 0, 0, 0, 0)  # what a rule may set besides the cost: see Ctx


def _alike(nd: dict) -> Optional[tuple]:
    """What a rule's result depends on when it reads no input's value: the op, the shapes and
    dtypes, the attributes. Nodes with the same key cost the same (the 100,000 Add nodes of a
    chain, the Conv nodes of a stage), so their rule runs once. None when a node cannot be
    keyed: an absent optional input or output, a subgraph (an attribute that is an array makes
    an unhashable key: the caller's lookup fails and it does not reuse)."""
    if nd["subgraphs"] or "" in nd["inputs"] or "" in nd["outputs"]:
        return None
    attrs = nd["attrs"]
    return (nd["op_type"], nd["domain"], tuple(nd["input_shapes"]), tuple(nd["input_dtypes"]),
            tuple(nd["output_shapes"]), tuple(nd["output_dtypes"]),
            tuple((k, tuple(v) if v.__class__ is list else v) for k, v in attrs.items()) if attrs else ())


def _params_of(roots: Sequence[str], w: _Walk) -> int:
    return sum(w.count(r) or 0 for r in roots)


def _walk(G: Graph, w: _Walk, parent: Optional[str] = None) -> Tuple[Cost, int, bool]:
    """Cost every node of ``G`` into ``w``; returns (total cost, params, all known)."""
    macs = flops = params = 0
    known = True
    nodes = G.nodes
    consts = G.graph["constants"]
    nbytes = _sizer(G)
    roots, sizes = G.graph["roots"], G.graph["sizes"]
    lookup = functools.lru_cache(maxsize=None)(ops.lookup)  # per op type, once a walk
    look = _looker(G.graph["values"])
    top = parent is None
    scopes: Dict[Tuple[str, ...], str] = {}  # a scope's path, joined once
    memo: Dict[tuple, list] = {}  # what nodes alike share (see _alike)
    made_at, last_read = (w.made_at, w.last_read) if top else ({}, {})
    for step, key in enumerate(G.graph["order"]):
        nd = nodes[key]
        name = key if top else f"{parent}/{key}"
        rule = lookup(nd["domain"], nd["op_type"])
        sub_params: List[int] = []
        alike = _alike(nd)
        try:
            seen = memo.get(alike) if alike is not None else None
        except TypeError:  # an array-valued attribute
            alike = seen = None
        if seen is None:
            # the shapes as tuples, held once for the nodes alike; the rule's result if it
            # can be reused (below); the activation bytes by which operands are constants
            seen = ([alike[2], alike[4]] if alike is not None else
                    [tuple(nd["input_shapes"]), tuple(nd["output_shapes"])]) + [None, {}]
            if alike is not None:
                memo[alike] = seen
        in_shapes, out_shapes, hit, io = seen
        if rule is not None and rule.zero_cost and not nd["subgraphs"]:
            status, note, cost, extras = ZERO, "", ZERO_COST, _NO_EXTRAS  # moves data: no rule to run
        elif hit is not None and rule.kind != "control_flow":
            status, note, cost, extras = hit
        else:
            ctx = _ctx(G, key, nd, look)
            if nd["subgraphs"] or (rule is not None and rule.kind == "control_flow"):
                ctx.subgraph_cost = _subgraph_coster(G, key, w, name, sub_params)
            status, note, cost = _apply(rule, ctx, nd, name, w, G, key)
            extras = (ctx.logical_params, ctx.attr_params, ctx.trees, ctx.tree_nodes, ctx.tree_leaves)
            if alike is not None and (status == OK or status == ZERO) and not ctx.read_values:
                seen[2] = (status, note, cost, extras)
        logical, attr_params, trees, tree_nodes, tree_leaves = extras
        ins, outs = nd["inputs"], nd["outputs"]
        constant = 0  # a bit per operand, inputs then outputs, set for a constant
        bit = 1
        for n in ins:
            last_read[n] = step
            if n in consts or n in roots:
                constant |= bit
            bit <<= 1
        for n in outs:
            made_at[n] = step
            if n in consts or n in roots:
                constant |= bit
            bit <<= 1
        if constant & ((1 << len(ins)) - 1):
            new, first = _claim_inputs(G, nd, rule, w, name, logical, consts, roots, constant)
        else:
            new = first = ()
        moved = io.get(constant)
        if moved is None:
            moved = (nbytes(ins, nd["input_shapes"], nd["input_dtypes"]),
                     nbytes(outs, nd["output_shapes"], nd["output_dtypes"]))
            if alike is not None:
                io[constant] = moved
        elif len(outs) == 1:
            sizes[outs[0]] = moved[1]  # for peak_activation_bytes
        layer_params = (_params_of(new, w) if new else 0) + (sum(sub_params) if sub_params else 0) + attr_params
        exact = cost is not None and status != SYMBOLIC
        symbolic = status == SYMBOLIC
        scope = nd["scope"]
        w.layers.append(LayerCost(  # positionally, in the order of its fields: faster
            name, nd["op_type"], nd["domain"], in_shapes, out_shapes,
            layer_params, cost.macs if exact else None, cost.flops if exact else None, status, note,
            parent, tuple(new), scopes.get(scope) or scopes.setdefault(scope, "/".join(scope)),
            cost.macs if symbolic else None, cost.flops if symbolic else None, moved[0], moved[1],
            sum(w.consts[r].nbytes or 0 for r in first) if first else 0,
            attr_params, trees, tree_nodes, tree_leaves))
        params += layer_params
        if exact:
            macs += cost.macs
            flops += cost.flops
        elif status != UNSUPPORTED:  # unsupported ops are already flagged model-wide
            known = False
        if top and w.formula is not None:
            # the polynomial total survives exact and symbolic costs, not an unknown one (the
            # exact ones are added once, at the end: see analyze_graph)
            if symbolic:
                w.formula = w.formula + cost
            elif cost is None and status != UNSUPPORTED:
                w.formula = None
    return Cost(macs, flops), params, known


def _lost_at(G: Graph, key: str) -> Tuple[Optional[Lost], Tuple[str, ...]]:
    """Where the shapes of node ``key``'s inputs or outputs were lost, with the tensor chain."""
    shapes = G.graph.get("shapes")
    nd = G.nodes[key]
    for name in nd["inputs"] + nd["outputs"]:
        origin = shapes.origin(name) if shapes is not None and name else None
        if origin is not None:
            return origin, tuple(shapes.chain(name))
    return None, ()


def _apply(rule: Optional[Rule], ctx: Ctx, nd: dict, name: str, w: _Walk, G: Graph, key: str):
    """Run one rule: (status, note, Cost or None)."""
    if rule is None:
        op = f"{nd['domain'] or 'ai.onnx'}::{nd['op_type']}"
        w.unsupported[op] += 1
        if not_onnx(op):
            return UNSUPPORTED, f"{op} is not an ONNX operator (an exporter left it unconverted)", None
        return UNSUPPORTED, f"no cost rule for {op}", None
    try:
        cost = rule.fn(ctx)
    except _BodyUnknown as e:
        return UNKNOWN, f"{e.dims[0]} has a node of unknown cost", None
    except UnknownShape as e:
        if all(is_named(d) for d in e.dims):
            for d in e.dims:
                w.unresolved[d].append(name)
            symbolic = _symbolic_cost(rule, ctx, e)
            if symbolic is not None:
                return SYMBOLIC, f"a formula in {', '.join(sorted(set(e.dims)))}", symbolic
            return UNKNOWN, f"needs {', '.join(e.dims)}", None
        origin, chain = _lost_at(G, key)
        if origin is None:  # no shape was lost: the rule needs something else (a trip count)
            for d in e.dims:
                w.unresolved[d].append(name)
            return UNKNOWN, f"needs {', '.join(e.dims)}", None
        w.lost[origin].append(name)
        w.chains.setdefault(origin, chain)
        return UNKNOWN, f"shape lost at {origin.node} ({origin.op}): {origin.why}", None
    except InvalidNode as e:  # the model's fault, said in words
        return ERROR, f"invalid {nd['op_type']}: {e}", None
    except Exception as e:  # a malformed node must not stop the analysis of the rest
        op = nd["op_type"]
        if op not in w.errors_logged:
            w.errors_logged.add(op)
            log.debug("rule for %s failed on %s", op, name, exc_info=True)
        return ERROR, f"cannot cost this {op}: {type(e).__name__}: {e}", None
    note = getattr(ctx, "note", "")
    return (ZERO if rule.zero_cost else OK), note, cost


def _symbolic_cost(rule: Rule, ctx: Ctx, first: UnknownShape) -> Optional[Cost]:
    """The rule run again with named dims as polynomials; None if it needs concrete values."""
    if ctx.subgraphs:  # a body's cost is walked once, with concrete shapes
        return None
    ctx.symbolic = True
    try:
        return rule.fn(ctx)
    except (UnknownShape, TypeError, ValueError, ArithmeticError, KeyError, IndexError, AttributeError):
        return None  # the rule needs numbers (a log, a comparison): not a polynomial
    finally:
        ctx.symbolic = False


def _subgraph_coster(G: Graph, key: str, w: _Walk, name: str, sub_params: List[int]):
    """A callback for control-flow rules: the cost of one subgraph attribute, walked once, its
    formal inputs' symbolic dimensions bound to ``input_shapes`` when the rule passes them."""
    cache: Dict[str, Cost] = {}

    def cost(attr: str, input_shapes: Optional[Sequence] = None) -> Cost:
        if attr not in cache:
            sub = G.nodes[key]["subgraphs"].get(attr)
            if sub is None:
                raise InvalidNode(f"{G.nodes[key]['op_type']} has no {attr} graph")
            if input_shapes is not None:
                sub = bind_dims(sub, input_shapes)
            c, p, known = _walk(sub, w, parent=f"{name}/{attr}")
            sub_params.append(p)
            if not known:
                raise _BodyUnknown([attr], name)
            cache[attr] = c
        return cache[attr]

    return cost


def _unresolved_warning(unresolved: Mapping[str, List[str]], inputs: Mapping[str, Tuple],
                        exact: bool = False, kv=None) -> str:
    """Say which layers are unknown (or formulas) and which --dim would give numbers (a KV
    cache's mask length follows from the past and new tokens: those are asked for instead)."""
    free = {d for shape in inputs.values() if shape for d in shape if isinstance(d, str)}
    n = len({layer for names in unresolved.values() for layer in names})
    wanted = free & set(unresolved)
    if kv is not None and kv.total_dim in wanted and kv.past_dim and kv.seq_dim:
        wanted = (wanted - {kv.total_dim}) | {kv.past_dim, kv.seq_dim}
    hint = " ".join(f"--dim {d}=N" for d in sorted(wanted))
    other = sorted(set(unresolved) - free)
    if exact:
        names = ", ".join(sorted(set(unresolved)))
        return (f"{n} layer(s) cost a formula in {names}: the totals are exact polynomials; "
                f"pass {hint or '--dim'} for numbers, or --sweep {sorted(set(unresolved))[0]}=A,B,C")
    text = f"totals are lower bounds: {n} layer(s) have unknown cost"
    if hint:
        text += f"; pass {hint}"
    if other:
        text += f"; unresolved: {', '.join(other[:5])}{' ...' if len(other) > 5 else ''}"
    return text


def _lost_warning(causes: Sequence[UnknownCause]) -> str:
    """All the layers left unknown by lost shapes, grouped by where they were lost."""
    n = len({layer for c in causes for layer in c.layers})
    places = "; ".join(f"{c.node} ({c.op}, {len(c.layers)} layer(s)): {c.why}" for c in causes[:3])
    more = f"; and {len(causes) - 3} more place(s)" if len(causes) > 3 else ""
    return (f"totals are lower bounds: {n} layer(s) unknown, shape lost at {len(causes)} "
            f"place(s): {places}{more} (--explain shows each chain)")


def _accuracy(model: onnx.ModelProto, warnings: List[str]) -> Optional[float]:
    for prop in model.metadata_props:
        if prop.key == ACCURACY_METADATA_KEY:
            try:
                return float(prop.value)
            except ValueError:
                warnings.append(f"metadata {ACCURACY_METADATA_KEY}={prop.value!r} is not a number")
    return None


def analyze(model: Union[str, os.PathLike, onnx.ModelProto], dims: Optional[Mapping[str, int]] = None,
            input_shapes: Optional[Mapping[str, Sequence[int]]] = None,
            accuracy: Optional[float] = None, alpha: float = ALPHA, beta: float = BETA,
            gamma: float = GAMMA, values: Optional[Mapping[str, object]] = None) -> Report:
    """Analyze one model: parameters, MACs, FLOPs per layer and in total, and its NetScore.

    Parameters
    ----------
    model : str, PathLike or ModelProto
        The model; weight bytes are never read (external data files need not exist).
    dims : mapping, optional
        Values for symbolic dimensions, e.g. ``{"batch": 1, "seq": 128}``.
    input_shapes : mapping, optional
        Whole input shapes, e.g. ``{"input": (1, 3, 224, 224)}``.
    values : mapping, optional
        Values of small inputs, e.g. ``{"sr": 16000}``: shape computations and If conditions
        that depend on them are evaluated.
    accuracy : float, optional
        Top-1 accuracy in percent; defaults to the ``onnxscore.accuracy`` metadata entry.
    alpha, beta, gamma : float
        NetScore exponents.

    Examples
    --------
    >>> report = analyze("resnet50.onnx", accuracy=76.1)   # doctest: +SKIP
    >>> report.totals.macs, report.netscore.value           # doctest: +SKIP
    """
    with collector_paused():  # an analysis makes millions of objects and no cycles
        G = graph_of(model, dims, input_shapes, values)
        return analyze_graph(G, accuracy=accuracy, alpha=alpha, beta=beta, gamma=gamma)


def analyze_graph(G: Graph, accuracy: Optional[float] = None, alpha: float = ALPHA,
                  beta: float = BETA, gamma: float = GAMMA) -> Report:
    """The report of a graph made by :func:`onnxscore.load_graph`."""
    loaded = G.graph["loaded"]
    proto = loaded.proto
    w = _Walk(warnings=list(loaded.warnings))
    total, _, known = _walk(G, w)
    if w.formula is not None:
        w.formula = w.formula + total  # the symbolic costs, and now the exact ones
    params = buffers = quant = 0
    by_dtype: Counter = Counter()
    params_complete = True
    for root, claim in w.claims.items():
        const = w.consts[root]
        if const.numel is None:
            params_complete = False
            w.warnings.append(f"size of constant {root!r} is unknown; parameter count is a lower bound")
            continue
        if claim.kind == WEIGHT:
            params += w.count(root)
        elif claim.kind == BUFFER:
            buffers += const.numel
        else:
            quant += const.numel
        by_dtype[dtype_name(const.dtype)] += const.nbytes or 0
    used = _used_tensors(G, w.last_read)
    unused = [n for n in G.graph["initializers"] if n not in used]
    if unused:
        w.warnings.append(f"{len(unused)} initializer(s) are not used by any node and not counted "
                          f"(e.g. {unused[0]!r})")
    if w.unsupported:
        w.warnings.append("totals are lower bounds: " + unsupported_text(w.unsupported))
    kv = kvcache.detect(loaded.declared_inputs, loaded.dims)
    if w.unresolved:
        w.warnings.append(_unresolved_warning(w.unresolved, loaded.input_shapes,
                                              exact=w.formula is not None and not w.unsupported, kv=kv))
    causes = tuple(sorted((UnknownCause(o.node, o.op, o.why, tuple(ls), w.chains.get(o, ()))
                           for o, ls in w.lost.items()), key=lambda c: -len(c.layers)))
    if causes:
        w.warnings.append(_lost_warning(causes))
    errors = attr_params = trees = tree_nodes = tree_leaves = 0
    for layer in w.layers:
        if layer.status == ERROR:
            errors += 1
            if errors <= 5:
                w.warnings.append(f"{layer.name}: {layer.note}")
        if layer.attr_params or layer.trees or layer.tree_nodes or layer.tree_leaves:
            # fitted numbers held in attributes, each node's once (subgraph nodes included, as
            # weights), and tree ensembles' own measure
            attr_params += layer.attr_params
            trees, tree_nodes, tree_leaves = (trees + layer.trees, tree_nodes + layer.tree_nodes,
                                              tree_leaves + layer.tree_leaves)
    complete = known and not w.unsupported
    symbolic = not known and w.formula is not None and not w.unsupported
    params += attr_params
    totals = Totals(params=params, buffers=buffers, macs=total.macs, flops=total.flops,
                    weight_bytes=sum(by_dtype.values()), weight_bytes_by_dtype=dict(by_dtype),
                    quant_overhead=quant, complete=complete, params_complete=params_complete,
                    peak_activation_bytes=peak_activation_bytes(G, w.made_at, w.last_read),
                    macs_formula=w.formula.macs if symbolic else None,
                    flops_formula=w.formula.flops if symbolic else None, attr_params=attr_params,
                    trees=trees, tree_nodes=tree_nodes, tree_leaves=tree_leaves)
    if accuracy is None:
        accuracy = _accuracy(proto, w.warnings)
    info = ModelInfo(path=loaded.path, opset=default_opset(proto), producer=proto.producer_name,
                     producer_version=proto.producer_version, ir_version=proto.ir_version,
                     inputs=dict(loaded.input_shapes),
                     opsets={o.domain or "ai.onnx": o.version for o in proto.opset_import})
    shared = {root: tuple(c.users) for root, c in w.claims.items() if len(c.users) > 1 and c.kind == WEIGHT}
    return Report(model=info, totals=totals, kv_cache=kv, unknown_causes=causes,
                  data_dims=dict(G.graph["shapes"].data_dims),
                  netscore=netscore(accuracy, params, total.macs, alpha, beta, gamma),
                  layers=tuple(w.layers),
                  unresolved_dims={d: tuple(v) for d, v in sorted(w.unresolved.items())},
                  unsupported_ops=dict(sorted(w.unsupported.items())), shared_weights=shared,
                  notes=tuple(loaded.notes), warnings=tuple(w.warnings))


def _used_tensors(G: Graph, read: Optional[Mapping[str, int]] = None) -> Set[str]:
    """Every tensor a node of ``G`` or of its subgraphs reads (an If branch reads weights of
    the enclosing graph by name); ``read``: those the nodes of ``G`` itself read, if known."""
    used: Set[str] = set(read) if read is not None else set()
    for _, nd in G.nodes(data=True):
        if read is None:
            used.update(nd["inputs"])
        for sub in nd["subgraphs"].values():
            used |= _used_tensors(sub)
    return used


def peak_activation_bytes(G: Graph, made_at: Mapping[str, int], last_read: Mapping[str, int]) -> Optional[int]:
    """The most activation memory alive at once when the nodes run in graph order: a tensor
    lives from the node that makes it (graph inputs: from the start) to its last reader (graph
    outputs: to the end). ``made_at`` and ``last_read``: tensor -> the step of ``G``'s order
    that makes it, that reads it last, as the walk saw. Weights are not activations. None when
    a size is unknown."""
    end = len(G.graph["order"])
    born = dict(made_at)
    born.pop("", None)
    for name in G.graph["inputs"]:
        born.setdefault(name, -1)
    outputs = set(G.graph["outputs"])
    tensors, known = G.graph["tensors"], G.graph.get("sizes", {}).get  # the walk sized what nodes read and make
    nbytes, last = _sizer(G), last_read.get
    delta = [0] * (end + 2)
    for name, start in born.items():
        size = known(name, -1)
        if size == -1:
            shape, dtype = tensors.get(name, (None, 0))
            size = nbytes((name,), (shape,), (dtype,))
        if size is None:
            return None
        if size:  # live during steps [start, stop), stop <= end + 1
            if start < 0:
                start = 0
            stop = end if name in outputs else last(name, start)
            delta[start] += size
            delta[(stop if stop > start else start) + 1] -= size
    return max(0, max(accumulate(delta), default=0))


def annotate(G: Graph, report: Report) -> Graph:
    """Put each top-level layer's ``macs``, ``flops``, ``params`` and ``status`` on ``G``'s nodes."""
    for layer in report.top_layers:
        if layer.name in G:
            G.nodes[layer.name].update(macs=layer.macs, flops=layer.flops, params=layer.params,
                                       status=layer.status)
    return G
