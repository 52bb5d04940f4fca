"""The NASNet-space supernet: the standalone macro network with a DARTS cell on every cell position.

In each cell, block j has one :class:`~search_spaces.supernet.MixedEdge` from every earlier state
(the two cell inputs and blocks 0..j-1), carrying the space's whole vocabulary with the channels and
strides ``build.py`` gives that input (stride 2 from the inputs of a reduction cell). Each cell holds
its own edges; the choice is shared by all cells of a type, as a genotype is. Stems, preprocessing,
auxiliary head and classifier are the standalone network's modules under the same names.

The choice per edge follows :mod:`search_spaces.supernet`, plus the path code of
:func:`~search_spaces.nasnet.space.path_ops` (two ops on one edge: a block reading one state twice).
A cell type whose choices are all ints is a single path: it concatenates what the standalone cell
does (every block, or with ``unused_states`` the blocks no chosen edge reads) and reproduces that
network exactly. Otherwise (weights) every block output is concatenated.

Under ``unused_states`` the number of concatenated states k (1..B) sets the input width of the
layers reading a cell output (the next two cells' preprocessing, auxiliary head, classifier), so
those hold one module per k, in an ``nn.ModuleDict`` keyed ``"k"`` under the standalone name; a
mixture uses k = B. With ``all_states`` (darts) there is one of each, and every name is the
standalone network's.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nas.space import Task
from search_spaces.nasnet.build import AuxHead, sequence
from search_spaces.nasnet.genotype import NASNetGenotype, all_states
from search_spaces.nasnet.macro import NetworkPlan, plan_network
from search_spaces.nasnet.space import CELLS, NASNetSpace, path_ops
from search_spaces.ops import drop_path
from search_spaces.supernet import UNUSED, Arch, Choice, MixedEdge, add_terms, path_state


def variants(make: Callable[[int], nn.Module], widths: Sequence[int]) -> nn.Module:
    """``make(k)`` itself for a single width, else one per width in a ``ModuleDict``."""
    return make(widths[0]) if len(widths) == 1 else nn.ModuleDict({str(k): make(k) for k in widths})


def pick(module: nn.Module, width: int | None) -> nn.Module:
    """The variant of ``module`` for the concatenation width ``width``."""
    return module[str(width)] if isinstance(module, nn.ModuleDict) else module


class SuperCell(nn.Module):
    """Preprocessing of the two inputs, then block j = sum over i < j + 2 of edge(j, i)(state i)."""

    def __init__(self, plans: dict[int, NetworkPlan], index: int, vocabulary: Sequence[str], blocks: int) -> None:
        super().__init__()
        widths = list(plans)
        cell = plans[widths[0]].cells[index]
        self.reduction, self.filters = cell.reduction, cell.filters
        self.pre_pp = variants(lambda k: sequence(plans[k].cells[index].pre_pp), widths if index >= 2 else widths[:1])
        self.pre_p = variants(lambda k: sequence(plans[k].cells[index].pre_p), widths if index >= 1 else widths[:1])
        # the planned first block reads state 0 then state 1: their channels after preprocessing
        channels = [cell.ops[0][1].c_in, cell.ops[1][1].c_in] + [cell.filters] * blocks
        self.sources = [i for j in range(blocks) for i in range(j + 2)]  # the state each edge reads
        self.edges = nn.ModuleList(MixedEdge(vocabulary, channels[i], cell.filters,
                                             2 if cell.reduction and i < 2 else 1) for i in self.sources)

    def forward(self, pp: torch.Tensor | None, p: torch.Tensor, arch: Sequence[Choice], concat: Sequence[int],
                widths: tuple[int | None, int | None], drop_prob: float = 0.0) -> torch.Tensor:
        states = [pick(self.pre_pp, widths[0])(p if pp is None else pp), pick(self.pre_p, widths[1])(p)]
        terms: list[torch.Tensor] = []
        for e, (i, edge) in enumerate(zip(self.sources, self.edges)):
            terms += self.edge_terms(edge, states[i], arch[e], drop_prob)
            if e + 1 == len(self.sources) or self.sources[e + 1] == 0:  # the node's last edge
                states.append(add_terms(terms, states[1]) if terms else self.zeros(states[1]))
                terms = []
        return torch.cat([states[i] for i in concat], dim=1)

    def edge_terms(self, edge: MixedEdge, x: torch.Tensor, choice: Choice, drop_prob: float) -> list[torch.Tensor]:
        """What one edge adds to its node: on a path, each chosen op's output as the standalone cell
        computes it (``none`` included, drop-path on every op but the identity); else the mixture."""
        if not isinstance(choice, int):
            h = edge(x, choice)
            return [] if h is None else [h]
        out = []
        for k in path_ops(choice, len(edge.names)):
            h = edge.ops[k](x)
            if drop_prob > 0 and self.training and not isinstance(edge.ops[k], nn.Identity):
                h = drop_path(h, drop_prob)
            out.append(h)
        return out

    def zeros(self, p: torch.Tensor) -> torch.Tensor:
        """A block output of zeros (a node nothing flows into), shaped like the cell's blocks."""
        b, _, h, w = p.shape
        s = 2 if self.reduction else 1
        return p.new_zeros(b, self.filters, (h + s - 1) // s, (w + s - 1) // s)


class NASNetSupernet(nn.Module):
    """The space's macro network with :class:`SuperCell` cells; ``forward(x, arch)`` takes one choice
    per edge of ``NASNetSpace.oneshot_edges`` and returns what the standalone network returns
    (logits, and ``(logits, aux_logits)`` in training with an auxiliary head)."""

    def __init__(self, space: NASNetSpace, task: Task) -> None:
        super().__init__()
        self.vocabulary, self.blocks, self.concat_rule = space.vocabulary, space.blocks, space.concat_rule
        widths = [self.blocks] if space.concat_rule is all_states else list(range(1, self.blocks + 1))
        filler = tuple(((0, self.vocabulary[0]), (1, self.vocabulary[0])) for _ in range(self.blocks))
        plans = {k: plan_network(NASNetGenotype(filler, tuple(range(self.blocks + 2 - k, self.blocks + 2)),
                                                filler, tuple(range(self.blocks + 2 - k, self.blocks + 2))),
                                 space.macro, task, space.options["auxiliary"]) for k in widths}
        plan = plans[widths[0]]
        self.stems = nn.ModuleList(sequence(stem) for stem in plan.stems)
        self.cells = nn.ModuleList(SuperCell(plans, i, self.vocabulary, self.blocks) for i in range(len(plan.cells)))
        self.first_pp_raw, self.aux_after, self.head_relu = plan.first_pp_raw, plan.aux_after, plan.head_relu
        if plan.aux_after >= 0:
            self.aux = variants(lambda k: AuxHead(plans[k].aux_channels, plan.classes), widths)
        self.dropout = nn.Dropout(plan.dropout) if plan.dropout else nn.Identity()
        self.classifier = variants(lambda k: nn.Linear(plans[k].features, plan.classes), widths)
        self.drop_path_max, self.drop_path_prob = space.options["drop_path"], 0.0
        self.edges_per_cell = len(self.cells[0].edges)

    def concat(self, arch: Sequence[Choice]) -> list[int]:
        """The states one cell type concatenates under ``arch`` (its slice of the choices)."""
        everything = range(2, self.blocks + 2)
        if self.concat_rule is all_states or not all(isinstance(c, int) for c in arch):
            return list(everything)
        read = {i for i, choice in zip(self.cells[0].sources, arch) if choice != UNUSED}
        return [s for s in everything if s not in read]

    def forward(self, x: torch.Tensor, arch: Arch) -> Any:  # x: (B, C, H, W)
        n = self.edges_per_cell
        if len(arch) != 2 * n:
            raise ValueError(f"nasnet supernet: arch needs {2 * n} choices (normal, then reduce edges), "
                             f"got {len(arch)}")
        choices = {"normal": arch[:n], "reduce": arch[n:]}
        concat = {cell: self.concat(choices[cell]) for cell in CELLS}
        outputs = []
        for stem in self.stems:
            x = stem(x)
            outputs.append(x)
        pp, p = (None if self.first_pp_raw else outputs[0]), outputs[-1]
        widths: tuple[int | None, int | None] = (None, None)  # None: a stem output
        aux = None
        for i, cell in enumerate(self.cells):
            kind = CELLS[cell.reduction]
            pp, p = p, cell(pp, p, choices[kind], concat[kind], widths, self.drop_path_prob)
            widths = (widths[1], len(concat[kind]))
            if i == self.aux_after and self.training:
                aux = pick(self.aux, widths[1])(p)
        if self.head_relu:
            p = F.relu(p)
        logits = pick(self.classifier, widths[1])(self.dropout(torch.flatten(F.adaptive_avg_pool2d(p, 1), 1)))
        return (logits, aux) if aux is not None else logits

    def standalone_state(self, genotype: NASNetGenotype) -> dict[str, torch.Tensor]:
        """The state dict of ``space.build(genotype)`` (same task and options) holding this supernet's
        weights; a block reading one state twice takes both its ops from that edge."""
        if genotype.blocks != self.blocks or not genotype.ops() <= set(self.vocabulary) or any(
                concat != self.concat_rule(cell) for cell, concat in
                ((genotype.normal, genotype.normal_concat), (genotype.reduce, genotype.reduce_concat))):
            raise ValueError(f"nasnet supernet: {genotype.to_text()} is not in the space "
                             f"({self.blocks} blocks, ops of {self.vocabulary}, {self.concat_rule.__name__})")
        starts = [j * (j + 3) // 2 for j in range(self.blocks)]  # each node's first edge
        first: dict[str, tuple[str, int]] = {}
        second: dict[str, tuple[str, int]] = {}  # the second op of a state read twice
        for c, cell in enumerate(self.cells):
            for j, block in enumerate(genotype.reduce if cell.reduction else genotype.normal):
                for s, (source, op) in enumerate(block):
                    edge = f"cells.{c}.edges.{starts[j] + source}"
                    target = (f"cells.{c}.ops.{2 * j + s}", self.vocabulary.index(op))
                    (second if edge in first else first)[edge] = target
        supernet = self.state_dict()
        state = path_state(supernet, first)
        state.update(path_state(supernet, {**first, **second}))
        widths = self.width_choices(genotype)
        return {rename(name, widths): value for name, value in state.items() if rename(name, widths)}

    def width_choices(self, genotype: NASNetGenotype) -> dict[str, str]:
        """Module name -> the key of its width variant ``genotype`` uses, for every ``ModuleDict``."""
        k = {False: str(len(genotype.normal_concat)), True: str(len(genotype.reduce_concat))}
        out = {}
        if isinstance(self.classifier, nn.ModuleDict):
            out["classifier"] = k[self.cells[-1].reduction]
        if isinstance(getattr(self, "aux", None), nn.ModuleDict):
            out["aux"] = k[self.cells[self.aux_after].reduction]
        for c, cell in enumerate(self.cells):
            for name, back in (("pre_pp", 2), ("pre_p", 1)):
                if isinstance(getattr(cell, name), nn.ModuleDict):
                    out[f"cells.{c}.{name}"] = k[self.cells[c - back].reduction]
        return out


def rename(name: str, widths: dict[str, str]) -> str:
    """``name`` in the standalone network: a width variant's key dropped; "" for another width's."""
    for prefix, key in widths.items():
        if name.startswith(prefix + "."):
            variant, _, leaf = name[len(prefix) + 1:].partition(".")
            return f"{prefix}.{leaf}" if variant == key else ""
    return name


def build_supernet(space: NASNetSpace, task: Task) -> NASNetSupernet:
    """The supernet of ``space``'s macro network for ``task``."""
    return NASNetSupernet(space, task)
