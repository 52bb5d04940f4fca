"""Canonical form of a stage DAG, so that relabelled (isomorphic) stages get one ``arch_id``.

Every node runs the same op and the stage input/output nodes are implied by the edges (they attach
to the sources and sinks), so two stages are the same network exactly when their DAGs are
isomorphic. The form is computed in three steps:

1. **Colour refinement** (1-dimensional Weisfeiler–Lehman on the directed graph): a node's next colour
   is its colour with the sorted colours of its predecessors and of its successors; colours are
   named by the rank of their signature, so the naming depends on structure only. Sources and sinks
   (the nodes the input and output nodes attach to) are told apart from the first round on.
2. If every node ends with its own colour, ordering the nodes by colour is a canonical labelling and
   the relabelled, sorted edge list is an exact (complete) invariant: equal forms are isomorphic.
   Tied nodes that are *twins* (same predecessors, same successors) may be ordered arbitrarily,
   since swapping them is an automorphism.
3. Any other tie is broken by **individualization–refinement** (the method of nauty): each node of
   the first tied cell is given its own colour in turn (one per twin class), the refinement is
   repeated, and the lexicographically smallest resulting edge list is kept. Branches that an
   automorphism found on the way maps onto explored ones are skipped, so the many symmetric parts
   of sparse graphs (isomorphic components, mirrored subtrees) cost a few leaves, not factorially many.

The search is exhaustive, so the form is exact, not a hash that two different graphs could share
(plain WL hashing cannot tell, e.g., an 8-cycle from two 4-cycles drawn as bipartite DAGs). Only a
stage needing more than :data:`MAX_LEAVES` leaves, far beyond anything the generators produce, falls
back to the refined colour histogram, a WL certificate marked ``"wl"`` so it never equals an exact form.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

from search_spaces.randwire.dag import Edges, adjacency

MAX_LEAVES = 4096


class _TooSymmetric(Exception):
    """The individualization search exceeded its leaf budget."""


def canonical_dag(n: int, edges: Edges) -> dict[str, Any]:
    """``{"n", "edges"}``, the sorted edges in canonical labelling as ``"s,d,s,d,..."`` (or ``{"n", "wl"}``)."""
    preds, succs = adjacency(n, edges)
    colors = refine([len(p) * (n + 1) + len(s) for p, s in zip(preds, succs)], preds, succs)  # (in, out)-degree
    search = _Search(edges, preds, succs)
    try:
        search.visit(colors, [])
    except _TooSymmetric:
        histogram = Counter((colors[src], colors[dst]) for src, dst in edges)
        return {"n": n, "wl": sorted([*pair, count] for pair, count in histogram.items())}
    assert search.best is not None
    return {"n": n, "edges": ",".join(map(str, itertools.chain.from_iterable(search.best)))}


def refine(colors: list[int], preds: list[tuple[int, ...]], succs: list[tuple[int, ...]]) -> list[int]:
    """Stable colour refinement, order-preserving: a colour's rank among the cells never changes."""
    count = len(set(colors))
    nodes = range(len(colors))
    while count < len(colors):  # a discrete colouring cannot be refined further
        signatures = [(colors[v], tuple(sorted([colors[p] for p in preds[v]])),
                       tuple(sorted([colors[s] for s in succs[v]]))) for v in nodes]
        rank = {sig: i for i, sig in enumerate(sorted(set(signatures)))}
        if len(rank) == count:
            break
        colors, count = [rank[sig] for sig in signatures], len(rank)
    return colors


class _Search:
    """Individualization-refinement with automorphism pruning (a small version of nauty's search).

    Two leaves with equal edge lists give an automorphism ``g`` (the composition of their
    labellings) that fixes the paths' common prefix and maps one branch onto the other, so the later
    branch is abandoned at once; and a candidate in the orbit of an explored one, under the
    automorphisms found that fix the current path, is skipped.
    """

    def __init__(self, edges: Edges, preds: list[tuple[int, ...]], succs: list[tuple[int, ...]]) -> None:
        self.edges, self.preds, self.succs = edges, preds, succs
        self.best: Edges | None = None
        self.leaves: dict[Edges, tuple[list[int], list[int]]] = {}  # leaf -> (labelling, path)
        self.automorphisms: list[list[int]] = []
        self.budget = MAX_LEAVES

    def visit(self, colors: list[int], path: list[int]) -> int | None:
        """Explore below ``path``; the depth to unwind to when the branch proved redundant, else None."""
        target = _first_tied_cell(colors, self.preds, self.succs)
        if target is None:
            return self._leaf(colors, path)
        explored: list[int] = []
        tried: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
        for node in target:
            twins = (self.preds[node], self.succs[node])
            if twins in tried or self._same_orbit(node, explored, path):
                continue  # its subtree is an explored one up to automorphism
            tried.add(twins)
            explored.append(node)
            split = [2 * c + 1 for c in colors]
            split[node] -= 1  # its own colour, just below the rest of its cell
            unwind = self.visit(refine(split, self.preds, self.succs), path + [node])
            if unwind is not None and unwind < len(path):
                return unwind
        return None

    def _leaf(self, colors: list[int], path: list[int]) -> int | None:
        """Record a leaf; on a repeat, store the automorphism and return the depth to unwind to."""
        self.budget -= 1
        if self.budget < 0:
            raise _TooSymmetric
        order = sorted(range(len(colors)), key=lambda v: (colors[v], v))  # twins: any order will do
        label = [0] * len(colors)
        for position, node in enumerate(order):
            label[node] = position
        leaf = tuple(sorted((label[src], label[dst]) for src, dst in self.edges))
        if leaf in self.leaves:
            first_label, first_path = self.leaves[leaf]
            node_at = [0] * len(colors)
            for node, position in enumerate(first_label):
                node_at[position] = node
            self.automorphisms.append([node_at[label[v]] for v in range(len(colors))])
            return next((i for i, (a, b) in enumerate(zip(path, first_path)) if a != b), len(path))
        self.leaves[leaf] = (label, path)
        if self.best is None or leaf < self.best:
            self.best = leaf
        return None

    def _same_orbit(self, node: int, explored: list[int], path: list[int]) -> bool:
        """Whether automorphisms found so far that fix ``path`` map ``node`` onto an explored node."""
        if not explored:
            return False
        parent: dict[int, int] = {}

        def root(x: int) -> int:
            while parent.get(x, x) != x:
                x = parent[x]
            return x

        for gamma in self.automorphisms:
            if all(gamma[v] == v for v in path):
                for x, y in enumerate(gamma):
                    if x != y:
                        parent[root(x)] = root(y)
        return any(root(node) == root(e) for e in explored)


def _first_tied_cell(colors: list[int], preds: list[tuple[int, ...]],
                     succs: list[tuple[int, ...]]) -> list[int] | None:
    """Members of the lowest-coloured cell with two nodes that are not twins; None if there is none."""
    cells: dict[int, list[int]] = {}
    for node, color in enumerate(colors):
        cells.setdefault(color, []).append(node)
    if len(cells) == len(colors):
        return None
    for color in sorted(cells):
        members = cells[color]
        first = (preds[members[0]], succs[members[0]])
        if any((preds[v], succs[v]) != first for v in members[1:]):
            return members
    return None
