"""Plain-Python helpers for a stage DAG on nodes ``0..n-1`` given as ``(src, dst)`` edge pairs.

The stage's extra input node feeds every node without predecessors (a *source*) and its extra output
node averages every node without successors (a *sink*); both are implied by the edges.
"""

from __future__ import annotations

import heapq
from typing import Any

Edges = tuple[tuple[int, int], ...]


def is_index(value: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def adjacency(n: int, edges: Edges) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """Sorted predecessor and successor tuples of every node."""
    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for src, dst in edges:
        succs[src].append(dst)
        preds[dst].append(src)
    return [tuple(sorted(p)) for p in preds], [tuple(sorted(s)) for s in succs]


def in_degrees(n: int, edges: Edges) -> list[int]:
    """Number of predecessors of every node."""
    degrees = [0] * n
    for _, dst in edges:
        degrees[dst] += 1
    return degrees


def sources_and_sinks(n: int, edges: Edges) -> tuple[list[int], list[int]]:
    """Nodes fed by the stage input, and nodes averaged into the stage output."""
    has_pred, has_succ = [False] * n, [False] * n
    for src, dst in edges:
        has_succ[src], has_pred[dst] = True, True
    return [v for v in range(n) if not has_pred[v]], [v for v in range(n) if not has_succ[v]]


def topological_order(n: int, edges: Edges) -> list[int]:
    """Kahn's order, smallest ready node first (deterministic); shorter than ``n`` if there is a cycle."""
    preds, succs = adjacency(n, edges)
    waiting = [len(p) for p in preds]
    ready = [v for v in range(n) if not waiting[v]]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for nxt in succs[node]:
            waiting[nxt] -= 1
            if not waiting[nxt]:
                heapq.heappush(ready, nxt)
    return order


def find_cycle(n: int, edges: Edges) -> list[int] | None:
    """One directed cycle as a node list (first node repeated at the end), or None for a DAG."""
    if all(src < dst for src, dst in edges):
        return None  # every edge goes forward: acyclic
    order = topological_order(n, edges)
    if len(order) == n:
        return None
    done = set(order)
    preds = adjacency(n, edges)[0]
    node = min(v for v in range(n) if v not in done)
    path: list[int] = []
    seen: dict[int, int] = {}
    while node not in seen:  # a node Kahn could not order has a predecessor it could not order either
        seen[node] = len(path)
        path.append(node)
        node = next(p for p in preds[node] if p not in done)
    cycle = path[seen[node]:] + [node]
    return cycle[::-1]  # walked against the edges: reverse to follow them


def check_dag(n: int, edges: Any, where: str) -> Edges:
    """The sorted edge tuple of a valid DAG on ``n`` nodes; ``ValueError`` naming ``where`` otherwise."""
    if not isinstance(edges, tuple):
        raise ValueError(f"{where}: expected a list of [src, dst] edges, got {type(edges).__name__}")
    if all(type(e) is tuple and len(e) == 2 and type(e[0]) is int and type(e[1]) is int  # noqa: E721
           and 0 <= e[0] < e[1] < n for e in edges) and all(a < b for a, b in zip(edges, edges[1:])):
        return edges  # fast path: sorted, unique, in range and all forward (hence acyclic)
    pairs = []
    for edge in edges:
        if not (isinstance(edge, tuple) and len(edge) == 2 and is_index(edge[0]) and is_index(edge[1])):
            raise ValueError(f"{where}: edge {_show(edge)} is not a pair of node indices")
        src, dst = edge
        if not (0 <= src < n and 0 <= dst < n):
            raise ValueError(f"{where}: edge ({src}, {dst}) out of range: nodes are 0..{n - 1}")
        if src == dst:
            raise ValueError(f"{where}: self-loop ({src}, {dst}) makes a cycle")
        pairs.append((src, dst))
    ordered = tuple(sorted(set(pairs)))
    if len(ordered) != len(pairs):
        duplicate = next(p for p in ordered if pairs.count(p) > 1)
        raise ValueError(f"{where}: duplicate edge {duplicate}")
    cycle = find_cycle(n, ordered)
    if cycle:
        raise ValueError(f"{where}: edges form a cycle {' -> '.join(map(str, cycle))}; a stage must be a DAG")
    return ordered


def depths(n: int, edges: Edges) -> list[int]:
    """Longest-path distance of every node from the sources (sources are at depth 0)."""
    preds = adjacency(n, edges)[0]
    depth = [0] * n
    for node in topological_order(n, edges):
        if preds[node]:
            depth[node] = 1 + max(depth[p] for p in preds[node])
    return depth


def _show(value: Any) -> str:
    """Tuples shown as JSON lists, as the user wrote them."""
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value)
