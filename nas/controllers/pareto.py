"""Non-dominated sorting and crowding distance (Deb et al. 2002, NSGA-II) for oriented values
(larger is better for every objective), and the tournament that multi-objective evolution uses."""

from __future__ import annotations

from typing import Any, Sequence

from nas.controllers.history import dominates


def nondominated_ranks(values: Sequence[Sequence[float]]) -> list[int]:
    """Front index of each point: 0 = not dominated by any, 1 = dominated only by front 0, ..."""
    n = len(values)
    dominated_by = [0] * n
    dominating: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(values[i], values[j]):
                dominating[i].append(j)
                dominated_by[j] += 1
            elif dominates(values[j], values[i]):
                dominating[j].append(i)
                dominated_by[i] += 1
    ranks = [0] * n
    front = [i for i in range(n) if dominated_by[i] == 0]
    rank = 0
    while front:
        following = []
        for i in front:
            ranks[i] = rank
            for j in dominating[i]:
                dominated_by[j] -= 1
                if dominated_by[j] == 0:
                    following.append(j)
        front, rank = following, rank + 1
    return ranks


def crowding_distances(values: Sequence[Sequence[float]], ranks: Sequence[int]) -> list[float]:
    """Crowding distance of each point within its front (boundary points: infinity)."""
    n = len(values)
    distance = [0.0] * n
    for rank in set(ranks):
        members = [i for i in range(n) if ranks[i] == rank]
        for k in range(len(values[0]) if values else 0):
            ordered = sorted(members, key=lambda i: values[i][k])
            low, high = values[ordered[0]][k], values[ordered[-1]][k]
            distance[ordered[0]] = distance[ordered[-1]] = float("inf")
            if high == low:
                continue
            for a, b, c in zip(ordered, ordered[1:], ordered[2:]):
                distance[b] += (values[c][k] - values[a][k]) / (high - low)
    return distance


def pareto_winner(sampled: Sequence[Any], population: Sequence[Any]) -> Any:
    """The tournament winner among ``sampled``: lowest non-dominated rank within ``population``,
    then largest crowding distance (members need ``values``, oriented; ``arch_id`` for identity)."""
    values = [m.values for m in population]
    ranks = nondominated_ranks(values)
    crowding = crowding_distances(values, ranks)
    index = {id(m): i for i, m in enumerate(population)}
    return min(sampled, key=lambda m: (ranks[index[id(m)]], -crowding[index[id(m)]]))


def pareto_front(values: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated points."""
    return [i for i, rank in enumerate(nondominated_ranks(values)) if rank == 0]
