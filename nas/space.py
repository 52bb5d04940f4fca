"""The search-space protocol: sampling, structure-aware variation, flat Optuna params, build and cost.

Every random choice takes an explicit ``random.Random``. ``build`` imports torch lazily (from the
space's ``build.py``); everything else here is plain Python so the search core stays torch-free.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Iterable, Mapping, TypeVar

from nas.config import Field, SpecError, validate
from nas.genotype import Genotype

G = TypeVar("G", bound=Genotype)


@dataclass(frozen=True)
class Task:
    """What a built network consumes and predicts."""

    input_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {"input_shape": list(self.input_shape), "num_classes": self.num_classes}


@dataclass(frozen=True)
class Cost:
    """Model size and compute, from the genotype alone."""

    params: int  # trainable parameters of the model as built, auxiliary heads excluded
    flops: int  # multiply-accumulates of one forward pass (conv and linear layers)


class SearchSpace(ABC, Generic[G]):
    """A family of architectures.

    Subclasses set ``name``, ``genotype``, ``PRESETS`` (macro settings by name, each with at least
    ``input_shape`` and ``num_classes``) and optionally extra ``OPTIONS`` and ``EVALUATOR_DEFAULTS``
    (evaluator name -> options its networks train best with, e.g. AdamW for transformers; the
    spec's own ``[evaluator]`` values win); they implement the abstract methods. Options come from
    the run spec's ``[space]`` table.

    Latency lookup tables (optional: ``nas latency build-lut`` and ``latency_pred_ms``). A space
    supports them by implementing, conventionally in its folder's ``latency.py``:

    - ``latency_blocks(genotype, task) -> list[str]`` (torch-free): the blocks the network is made
      of, one key per occurrence, at their real input shapes (``nas.block_keys.block_key``:
      ``kind:args@CxHxW``); glue left out of the list is absorbed by the table's fitted correction.
      A block eager torch computes but whose result never reaches the output is prefixed with
      ``~`` (``nas.block_keys.DEAD``): exported graphs drop it, so only torch tables count it.
    - ``latency_graph_terms(genotype, task, rules) -> list[str]`` (optional, torch-free): the
      kernels a graph runtime's optimizer leaves under the target's detected ``rules``
      (``nas.latency.rules.RuntimeRules``; none without), as ``^`` keys (``nas.block_keys.GRAPH``;
      see ``search_spaces/graph_kernels.py``), which only graph-runtime tables ask for and price.
    - ``latency_cover() -> genotypes`` (torch-free): a family whose blocks include every block any
      genotype of the space, with its options, can produce; ``latency_universe`` (what build-lut
      measures) is their union plus the published architectures the space contains. A space may
      override ``latency_universe`` instead, where listing the blocks directly is simpler (randwire).
    - ``latency_module(key) -> nn.Module`` (torch, imported lazily): the block alone, taking one
      tensor per input shape of its key; the shared kinds (``op``, ``conv``, ``sum``, ``cat``, ...)
      are built by ``search_spaces.latency_blocks.generic_module``.

    A test samples genotypes and checks that their blocks lie inside the universe
    (``tests/evaluators/test_lut.py``): add a new space to its list.
    """

    name: ClassVar[str]
    genotype: ClassVar[type[Genotype]]
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    DEFAULT_PRESET: ClassVar[str] = ""
    OPTIONS: ClassVar[dict[str, Field]] = {}
    EVALUATOR_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {}
    WIDTH_OPTION: ClassVar[str] = ""  # the option that scales every layer's channels ("": none)
    DEPTH_OPTION: ClassVar[str] = ""  # the option that repeats cells/blocks per stage, the genotype unchanged ("": none)

    def __init__(self, **options: Any) -> None:
        self.options = self.check_options(options)
        self.preset: str = self.options["preset"]

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """The ``[space]`` options checked, defaults filled: ``preset`` and ``OPTIONS`` field by field.

        A space whose options constrain one another (e.g. a value that must suit the preset)
        overrides this, calls ``super().check_options`` and raises ``SpecError`` naming the field.
        ``nas.registry.make_space`` calls it before the constructor, so whatever the constructor
        raises afterwards is a bug, not bad input.

        Raises:
            SpecError: the message starts with the dotted path of the wrong option.
        """
        return validate(options, cls.option_fields(), "space", ignore=("name",))

    @classmethod
    def option_fields(cls) -> dict[str, Field]:
        """What ``[space]`` accepts besides ``name``: ``preset`` and ``OPTIONS`` (the docs' reference reads it)."""
        return {"preset": Field(str, default=cls.DEFAULT_PRESET, choices=tuple(cls.PRESETS),
                                help="macro settings by name: input shape, classes, stem and widths"),
                **cls.OPTIONS}

    # ----- identity and data ---------------------------------------------------------------
    def from_json(self, text: str) -> G:
        """Genotype from JSON text; ``ValueError`` says what is wrong."""
        return self.genotype.from_json(text)  # type: ignore[return-value]

    def from_dict(self, data: Mapping[str, Any]) -> G:
        """Genotype from parsed JSON data."""
        return self.genotype.from_dict(data)  # type: ignore[return-value]

    def known(self) -> dict[str, G]:
        """Published architectures of this space by name."""
        return {}

    def get_known(self, name: str) -> G:
        """A published architecture by name; ``KeyError`` lists the known names."""
        known = self.known()
        if name not in known:
            raise KeyError(f"unknown {self.name} architecture {name!r}; known: {', '.join(sorted(known)) or '(none)'}")
        return known[name]

    def baselines(self) -> dict[str, G]:
        """Hand-designed networks expressed in this space (``nas compare``'s ``baseline`` arms) by name."""
        return {}

    def evaluator_defaults(self, evaluator: str) -> dict[str, Any]:
        """Options the space's networks want from evaluator ``evaluator`` unless a spec sets them."""
        return dict(self.EVALUATOR_DEFAULTS.get(evaluator, {}))

    def default_task(self) -> Task:
        """The preset's input shape and class count."""
        preset = self.PRESETS[self.preset]
        return Task(tuple(preset["input_shape"]), int(preset["num_classes"]))  # type: ignore[arg-type]

    # ----- search operators ------------------------------------------------------------------
    @abstractmethod
    def sample(self, rng: random.Random) -> G:
        """A uniformly random architecture."""

    @abstractmethod
    def mutate(self, genotype: G, rng: random.Random) -> G:
        """A structure-aware random neighbour; leaves ``genotype`` alone."""

    @abstractmethod
    def crossover(self, a: G, b: G, rng: random.Random) -> G:
        """A child mixing two parents."""

    def contains(self, genotype: G) -> bool:
        """Whether ``to_params`` can express ``genotype`` exactly (published architectures may lie
        outside a space's searchable part, e.g. another op vocabulary)."""
        return True

    def neighbours(self, genotype: G) -> list[G] | None:
        """Every architecture one mutation away, where the space can list them; None otherwise."""
        return None

    def grid(self) -> list[G] | None:
        """Every point of the space's finite grid, in the order the ``grid`` controller visits them.

        None (the default) where the space, with its options, has no grid; the ``grid`` controller
        then fails at spec validation. Each point must round-trip through ``to_params``.
        """
        return None

    @abstractmethod
    def distributions(self) -> dict[str, Any]:
        """Flat, fixed-key Optuna distributions covering the space."""

    @abstractmethod
    def to_params(self, genotype: G) -> dict[str, Any]:
        """Flat params of ``distributions()`` that encode ``genotype``."""

    @abstractmethod
    def from_params(self, params: Mapping[str, Any]) -> G:
        """Inverse of :meth:`to_params`; ``ValueError`` when the params make no valid genotype."""

    # ----- model --------------------------------------------------------------------------------
    @abstractmethod
    def build(self, genotype: G, task: Task | None = None) -> Any:
        """The ``torch.nn.Module`` for ``genotype`` (torch is imported here, lazily)."""

    @abstractmethod
    def cost(self, genotype: G, task: Task | None = None) -> Cost:
        """Params and multiply-accumulates computed from the genotype, without building it."""

    def describe(self, genotype: G, task: Task | None = None) -> dict[str, Any]:
        """JSON-able description: space, arch id, cost, task and the space's own details."""
        task = task or self.default_task()
        cost = self.cost(genotype, task)
        return {"space": self.name, "preset": self.preset, "arch_id": genotype.arch_id,
                "params": cost.params, "flops": cost.flops,
                "input_shape": list(task.input_shape), "num_classes": task.num_classes,
                "genotype": genotype.to_dict(), **self.details(genotype)}

    def details(self, genotype: G) -> dict[str, Any]:
        """Space-specific extras for :meth:`describe` (e.g. the standard string form)."""
        return {}

    def label(self, genotype: G) -> str:
        """A short one-line text form for tables and logs."""
        return genotype.arch_id

    def draw(self, genotype: G, path: str) -> None:
        """Render a picture of the architecture to ``path`` (PNG)."""
        raise NotImplementedError(f"space {self.name!r} cannot draw architectures")

    # ----- latency lookup tables (optional capability; protocol in the class docstring) ----------
    def latency_blocks(self, genotype: G, task: Task | None = None) -> list[str]:
        """Block keys of ``genotype``'s network, one per occurrence, at their input shapes."""
        raise NotImplementedError(f"space {self.name!r} does not list latency blocks")

    def latency_graph_terms(self, genotype: G, task: Task | None = None, rules: Any = None) -> list[str]:
        """The kernels a graph runtime with the target's ``rules`` runs for ``genotype``'s network
        beyond what its blocks say (``nas.block_keys.GRAPH`` keys; none by default): asked by
        graph-runtime tables only, with the rules stored in them."""
        return []

    def latency_cover(self) -> Iterable[G]:
        """Genotypes whose blocks together cover every block the space can produce."""
        raise NotImplementedError(f"space {self.name!r} does not list latency blocks")

    def latency_universe(self, task: Task | None = None) -> list[str]:
        """Every block key the space can produce (the cover's, and those of the published architectures
        the space contains)."""
        from nas.block_keys import strip_dead

        keys: dict[str, None] = {}
        for genotype in self.latency_cover():
            keys.update(dict.fromkeys(map(strip_dead, self.latency_blocks(genotype, task))))
        for genotype in self.known().values():
            if self.contains(genotype):
                keys.update(dict.fromkeys(map(strip_dead, self.latency_blocks(genotype, task))))
        return list(keys)

    def latency_module(self, key: str) -> Any:
        """The ``torch.nn.Module`` of one block key (torch is imported here, lazily)."""
        raise NotImplementedError(f"space {self.name!r} cannot build latency blocks")

    # ----- one-shot supernets (optional capability) ---------------------------------------------
    def oneshot_edges(self) -> list[tuple[str, tuple[str, ...]]]:
        """The supernet's edges, each ``(name, candidate ops)``; a genotype is one choice per edge.

        Names are ``group/edge`` (a group is a cell type: ``cell``, ``normal``, ``reduce``).
        """
        raise NotImplementedError(f"space {self.name!r} has no supernet (one-shot search: nb201, nasnet)")

    def oneshot_path(self, genotype: G) -> list[int]:
        """``genotype`` as one op index per :meth:`oneshot_edges` edge (``-1``: the edge is unused)."""
        raise NotImplementedError(f"space {self.name!r} has no supernet (one-shot search: nb201, nasnet)")

    def oneshot_derive(self, weights: list[list[float]], prevent_collapse: bool = True) -> G:
        """The genotype of the strongest choices given each edge's op weights (architecture
        probabilities); with ``prevent_collapse``, a cell type left without any parametric op takes
        the strongest parametric op of its edges (see :func:`nas.oneshot.collapsed`)."""
        raise NotImplementedError(f"space {self.name!r} has no supernet (one-shot search: nb201, nasnet)")

    def oneshot_fair(self, rng: random.Random) -> list[G]:
        """FairNAS's strict fairness: as many genotypes as an edge has ops, such that every op of every
        used edge is trained once in the group (default: a random permutation per edge)."""
        edges = self.oneshot_edges()
        width = max(len(ops) for _, ops in edges)
        columns = [rng.sample(range(len(ops)), len(ops)) * (width // len(ops) + 1) for _, ops in edges]
        return [self.oneshot_from_path([column[k] for column in columns]) for k in range(width)]

    def oneshot_from_path(self, path: list[int]) -> G:
        """The genotype of one op index per edge (the inverse of :meth:`oneshot_path`)."""
        names = [ops for _, ops in self.oneshot_edges()]
        return self.oneshot_derive([[1.0 if k == i else 0.0 for k in range(len(ops))]
                                    for i, ops in zip(path, names)], prevent_collapse=False)

    def build_supernet(self, task: Task | None = None) -> Any:
        """The ``torch.nn.Module`` supernet (``forward(x, arch)``; torch is imported here, lazily)."""
        raise NotImplementedError(f"space {self.name!r} has no supernet (one-shot search: nb201, nasnet)")

    def oneshot_latency(self, table: Any, task: Task | None = None) -> tuple[float, list[list[float]]]:
        """A latency table's prediction split for one-shot search: milliseconds of what every genotype
        runs (stem, reductions, head), and per edge and op the milliseconds that choice adds."""
        raise NotImplementedError(f"space {self.name!r} cannot split latency by edge")

    def report(self, records: list[dict[str, Any]], folder: Path) -> list[str]:
        """Write space-specific outputs of a finished search into the run folder.

        Called at the end of every search (and resume); failures are logged, never fatal.

        Args:
            records: the evaluated trials, one per unique architecture, as ``nas.search.summary.trial_record``
                dicts; those with objective values come first, best first by the first objective,
                then the failed and pruned ones in trial order.
            folder: the run folder.

        Returns:
            The names of the files written, relative to ``folder`` (the default writes none).
        """
        return []


def path_ops(index: int, n: int) -> tuple[int, ...]:
    """The ops one entry of a one-shot path runs on its edge, for a vocabulary of ``n`` ops.

    ``-1``: none (unused edge); ``k`` in ``0..n-1``: op k; ``n + a * n + b``: ops a and b, in that
    order (a block reads this state twice, which NASNet and AmoebaNet cells may do). ``ValueError``
    for anything else.
    """
    if index == -1:
        return ()
    if 0 <= index < n:
        return (index,)
    if n <= index < n + n * n:
        return divmod(index - n, n)
    raise ValueError(f"one-shot path: entry {index} is neither -1, an op index below {n}, nor a pair code "
                     f"below {n + n * n}")


def check_params(params: Mapping[str, Any], distributions: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming a missing param or a value outside its distribution."""
    for key, dist in distributions.items():
        if key not in params:
            raise ValueError(f"params: missing {key!r}")
        choices = getattr(dist, "choices", None)
        if choices is not None and params[key] not in choices:
            raise ValueError(f"params: {key}={params[key]!r} not in {list(choices)}")
        low, high = getattr(dist, "low", None), getattr(dist, "high", None)
        if choices is None and low is not None and not low <= params[key] <= high:
            raise ValueError(f"params: {key}={params[key]!r} outside [{low}, {high}]")


def width_of(space: SearchSpace) -> int:
    """The width a space instance builds at (its option, else its preset's value)."""
    knob = space.WIDTH_OPTION
    if not knob:
        return 0
    macro = getattr(space, "macro", None)
    from_macro = macro.get(knob, 0) if isinstance(macro, dict) else 0
    return int(space.options.get(knob) or from_macro or getattr(space, knob, 0) or getattr(space, "channels", 0))


def depth_of(space: SearchSpace) -> int:
    """The depth a space instance builds at (its depth option, else its preset's; 0: it has none)."""
    knob = space.DEPTH_OPTION
    if not knob:
        return 0
    macro = getattr(space, "macro", None)
    return int(space.options.get(knob) or (macro.get(knob, 0) if isinstance(macro, dict) else 0))


def require_latency_support(space: SearchSpace, where: str) -> None:
    """``SpecError`` naming ``where`` unless ``space`` implements the latency-block protocol."""
    if type(space).latency_blocks is SearchSpace.latency_blocks:
        raise SpecError(f"{where}: space {space.name!r} does not list latency blocks, so it has no lookup "
                        "table (see the protocol in nas.space.SearchSpace)")
