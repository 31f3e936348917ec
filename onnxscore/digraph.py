"""A small directed graph with networkx's attribute layout, for the analysis' hot path.

``G.graph``, ``G.nodes[n]``, ``G.nodes(data=True)``, ``G.edges[u, v]``, ``G.in_edges``,
``G.successors``: the walker reads graphs through this subset only, so it runs on this class
and on a ``networkx.DiGraph`` alike. Importing networkx costs about as much as the rest of an
analysis of a large model, so it is imported only by :meth:`Graph.to_networkx`, which
:func:`onnxscore.load_graph` calls to hand users the real thing.
"""
from __future__ import annotations

import heapq
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple


class _Nodes(dict):
    """The node table itself (node -> attribute dict), so that ``G.nodes[n]`` is a dict lookup
    in C; callable as networkx's NodeView is: ``G.nodes(data=True)``."""

    def __call__(self, data: bool = False):
        return iter(self.items()) if data else iter(self)


class _Edges:
    def __init__(self, graph: "Graph"):
        self._g = graph

    def __getitem__(self, uv) -> Dict[str, Any]:
        u, v = uv
        return self._g._succ[u][v]

    def __iter__(self) -> Iterator[Tuple]:
        return ((u, v) for u, nbrs in self._g._succ.items() for v in nbrs)

    def __len__(self) -> int:
        return sum(len(n) for n in self._g._succ.values())


class Graph:
    """Nodes with attribute dicts, directed edges with attribute dicts, graph attributes."""

    def __init__(self, **attr):
        self.graph: Dict[str, Any] = dict(attr)
        self._node: Dict[Any, Dict[str, Any]] = _Nodes()
        self._succ: Dict[Any, Dict[Any, Dict[str, Any]]] = {}
        self._pred: Dict[Any, Dict[Any, Dict[str, Any]]] = {}
        self.nodes = self._node
        self.edges = _Edges(self)

    def add_node(self, n, **attr) -> None:
        if n not in self._node:
            self._node[n] = {}
            self._succ[n] = {}
            self._pred[n] = {}
        self._node[n].update(attr)

    def add_edge(self, u, v, **attr) -> None:
        for n in (u, v):
            if n not in self._node:
                self.add_node(n)
        data = self._succ[u].setdefault(v, {})
        data.update(attr)
        self._pred[v][u] = data

    def has_edge(self, u, v) -> bool:
        return u in self._succ and v in self._succ[u]

    def in_edges(self, n, data: bool = False):
        if data:
            return [(u, n, d) for u, d in self._pred[n].items()]
        return [(u, n) for u in self._pred[n]]

    def successors(self, n) -> Iterator:
        return iter(self._succ[n])

    def __iter__(self) -> Iterator:
        return iter(self._node)

    def __len__(self) -> int:
        return len(self._node)

    def __contains__(self, n) -> bool:
        return n in self._node

    def copy(self) -> "Graph":
        """Node and edge attribute dicts copied one level deep, like ``networkx.DiGraph.copy``."""
        h = Graph(**self.graph)
        for n, d in self._node.items():
            h.add_node(n, **d)
        for u, nbrs in self._succ.items():
            for v, d in nbrs.items():
                h.add_edge(u, v, **d)
        return h

    def to_networkx(self):
        """The same graph as a ``networkx.DiGraph`` (subgraphs converted too)."""
        import networkx as nx

        g = nx.DiGraph(**self.graph)
        for n, d in self._node.items():
            attrs = dict(d)
            if isinstance(attrs.get("subgraphs"), dict):
                attrs["subgraphs"] = {k: s.to_networkx() if isinstance(s, Graph) else s
                                      for k, s in attrs["subgraphs"].items()}
            g.add_node(n, **attrs)
        for u, nbrs in self._succ.items():
            for v, d in nbrs.items():
                g.add_edge(u, v, **d)
        return g


def topological_order(graph: Graph, key: Callable[[Any], Any]) -> Tuple[List, Optional[Tuple]]:
    """Kahn's algorithm, smallest ``key`` first among the ready nodes: (order, None), or
    (partial order, an edge (u, v) on a cycle) when the graph has one."""
    indegree = {n: len(graph._pred[n]) for n in graph._node}
    ready = [(key(n), i, n) for i, n in enumerate(graph._node) if indegree[n] == 0]
    heapq.heapify(ready)
    order: List = []
    while ready:
        _, _, n = heapq.heappop(ready)
        order.append(n)
        for v in graph._succ[n]:
            indegree[v] -= 1
            if indegree[v] == 0:
                heapq.heappush(ready, (key(v), len(order), v))
    if len(order) == len(graph._node):
        return order, None
    node = next(n for n in graph._node if indegree[n] > 0)
    path: List = []
    while node not in path:  # walk backwards along remaining edges until a node repeats
        path.append(node)
        node = next(u for u in graph._pred[node] if indegree[u] > 0)
    return order, (node, path[-1])  # node feeds path[-1], and both lie on the cycle
