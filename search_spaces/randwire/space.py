"""Randomly wired network space (Xie et al. 2019): the search picks generators, the generators draw wiring.

Flat params (fixed keys for one set of options, so every Optuna sampler works):

* ``s{i}_kind`` (er/ba/ws), ``s{i}_n`` (nodes), ``s{i}_k`` (WS, even), ``s{i}_p`` (ER/WS, step 0.05),
  ``s{i}_m`` (BA) for each stage ``i``, or one ``kind, n, k, p, m`` set for all stages with the option
  ``share = "all"`` (then ``n`` is N and stages get their preset fraction of it);
* ``s{i}_seed`` for each stage: stages always draw independent graphs.

Params a kind does not use are ignored by :meth:`from_params` and set to fixed defaults by
:meth:`to_params`. ``k`` and ``m`` are clipped to the stage's node count (``k < n``, ``m < n``) when
``search_nodes`` lets ``n`` shrink below them. :meth:`sample` draws every param uniformly: the paper's
random-wiring baseline when kinds and parameters are pinned, its generator study when they are not.
"""

from __future__ import annotations

import random
import re
from typing import Any, Mapping, Sequence

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from nas.config import Field, SpecError
from nas.space import Cost, SearchSpace, Task, check_params
from search_spaces.randwire.dag import sources_and_sinks
from search_spaces.randwire.generators import make_genotype
from search_spaces.randwire.genotype import KIND_PARAMS, KINDS, GeneratorSpec, RandWireGenotype
from search_spaces.randwire.macro import MIN_NODES, Macro, cost, stage_nodes

SEED_MAX = 999_999
K_MAX = 16
M_MAX = 10
P_STEP = 0.05
FIELDS = ("kind", "n", "k", "p", "m")
DEFAULTS: dict[str, Any] = {"k": 4, "p": 0.75, "m": 5}  # to_params' values of params a kind does not use
KNOWN_GENERATORS: dict[str, dict[str, Any]] = {  # the paper's generators (Fig. 3, Table 2)
    "ws-4-0.75": {"kind": "ws", "k": 4, "p": 0.75},  # its best: RandWire-WS
    "er-0.2": {"kind": "er", "p": 0.2},
    "ba-5": {"kind": "ba", "m": 5},
}
KNOWN_SEEDS: tuple[int, ...] = (1, 2, 3, 4)  # one fixed seed per stage
_PAPER_FORM = re.compile(r"^\s*(er|ba|ws)\s*\(([^()]*)\)\s*$")


def _even_below(n: int) -> int:
    """The largest even number smaller than ``n``."""
    return n - 1 if (n - 1) % 2 == 0 else n - 2


def fit_spec(kind: str, n: int, seed: int, k: int = 0, p: float = 0.0, m: int = 0) -> GeneratorSpec:
    """A generator keeping only the params ``kind`` uses, ``k``/``m`` clipped below ``n``."""
    used = KIND_PARAMS[kind]
    return GeneratorSpec(kind, n, seed, k=min(k, _even_below(n)) if "k" in used else 0,
                         p=float(p) if "p" in used else 0.0, m=min(m, n - 1) if "m" in used else 0)


def draw(dist: Any, rng: random.Random) -> Any:
    """A uniform value of an Optuna distribution (categorical, stepped int or stepped float)."""
    if isinstance(dist, CategoricalDistribution):
        return rng.choice(dist.choices)
    if isinstance(dist, IntDistribution):
        return dist.low + dist.step * rng.randrange((dist.high - dist.low) // dist.step + 1)
    steps = round((dist.high - dist.low) / dist.step)
    return round(dist.low + dist.step * rng.randrange(steps + 1), 2)


class RandWireSpace(SearchSpace[RandWireGenotype]):
    """Randomly wired networks in the paper's small / regular regimes, or a tiny proxy.

    Options: ``preset``; ``channels`` (C) and ``nodes`` (N) override the preset's; ``share`` ("stage"
    or "all": generator params per stage or shared); ``kinds`` (generator kinds allowed);
    ``search_nodes`` (let N vary in [N/2, 2N]; default fixed, which keeps compute matched); ``drop_path``
    (the largest drop-path probability on nodes' input edges in full training; none in eval mode).
    """

    name = "randwire"
    genotype = RandWireGenotype
    # stem: (width x C, stride) per 3x3 conv; stages: (nodes x N, width x C, stride); head: 1x1 conv width
    PRESETS = {
        "small": {"input_shape": (3, 224, 224), "num_classes": 1000, "channels": 78, "nodes": 32, "head": 1280,
                  "stem": ((0.5, 2), (1.0, 2)), "stages": ((1.0, 1, 2), (1.0, 2, 2), (1.0, 4, 2))},
        "regular": {"input_shape": (3, 224, 224), "num_classes": 1000, "channels": 109, "nodes": 32, "head": 1280,
                    "stem": ((0.5, 2),), "stages": ((0.5, 1, 2), (1.0, 2, 2), (1.0, 4, 2), (1.0, 8, 2))},
        "proxy": {"input_shape": (1, 8, 8), "num_classes": 10, "channels": 8, "nodes": 8, "head": 64,
                  "stem": ((0.5, 1), (1.0, 1)), "stages": ((1.0, 1, 1), (1.0, 2, 2), (1.0, 4, 2))},
    }
    DEFAULT_PRESET = "small"
    WIDTH_OPTION = "channels"  # what `nas compare` scales to match compute
    OPTIONS = {
        "channels": Field(int, default=0, min=0, help="C (0: the preset's; regular's larger model uses 154)"),
        "nodes": Field(int, default=0, min=0, help=f"N, nodes per stage (0: the preset's; else >= {MIN_NODES})"),
        "share": Field(str, default="stage", choices=("stage", "all"),
                       help="generator params per stage, or one set for all stages (seeds stay per stage)"),
        "kinds": Field(list, default=list(KINDS), items=str, help="generator kinds the search may use"),
        "search_nodes": Field(bool, default=False, help="let the search vary N in [N/2, 2N]"),
        "drop_path": Field(float, default=0.0, min=0.0, max=0.9,
                           help="largest drop-path probability on nodes' input edges (training only)"),
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        preset = self.PRESETS[self.preset]
        self.channels: int = self.options["channels"] or preset["channels"]
        self.nodes: int = self.options["nodes"] or preset["nodes"]
        self.kinds = tuple(self.options["kinds"])
        self.shared = self.options["share"] == "all"
        self.macro = Macro.from_preset(preset, self.channels, self.nodes)
        self._fractions = tuple(frac for frac, _, _ in preset["stages"])
        self._groups = self._param_groups()
        self._distributions = self._make_distributions()
        self._known: dict[str, RandWireGenotype] | None = None

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """The fields, then ``nodes`` (at least ``MIN_NODES``) and ``kinds`` (known generators)."""
        checked = super().check_options(options)
        nodes = checked["nodes"] or cls.PRESETS[checked["preset"]]["nodes"]
        if nodes < MIN_NODES:
            raise SpecError(f"space.nodes: expected 0 or an integer >= {MIN_NODES}, got {nodes}")
        kinds = checked["kinds"]
        if not kinds or not set(kinds) <= set(KINDS):
            raise SpecError(f"space.kinds: expected a non-empty list of {', '.join(KINDS)}, got {list(kinds)}")
        return checked

    # ----- params --------------------------------------------------------------------------------
    def _param_groups(self) -> list[tuple[str, tuple[int, ...], int]]:
        """(key prefix, stages it sets, default node count) of each generator param set."""
        count = len(self.macro.stages)
        if self.shared:
            return [("", tuple(range(count)), self.nodes)]
        return [(f"s{i}_", (i,), shape.nodes) for i, shape in enumerate(self.macro.stages)]

    def _make_distributions(self) -> dict[str, Any]:
        """Distributions of every param set, then the per-stage seeds."""
        dists: dict[str, Any] = {}
        for prefix, _, nodes in self._groups:
            low, high = (max(MIN_NODES, nodes // 2), 2 * nodes) if self.options["search_nodes"] else (nodes, nodes)
            dists[prefix + "kind"] = CategoricalDistribution(self.kinds)
            dists[prefix + "n"] = IntDistribution(low, high)
            dists[prefix + "k"] = IntDistribution(2, max(2, min(K_MAX, _even_below(high))), step=2)
            dists[prefix + "p"] = FloatDistribution(0.0, 1.0, step=P_STEP)
            dists[prefix + "m"] = IntDistribution(1, min(M_MAX, high - 1))
        for i in range(len(self.macro.stages)):
            dists[f"s{i}_seed"] = IntDistribution(0, SEED_MAX)
        return dists

    def distributions(self) -> dict[str, Any]:
        """The flat params (see the module docstring); the keys depend only on the options."""
        return dict(self._distributions)

    def _stage_spec(self, values: Mapping[str, Any], stage: int, seed: int) -> GeneratorSpec:
        """Stage ``stage``'s generator from a param set's values."""
        n = stage_nodes(values["n"], self._fractions[stage]) if self.shared else values["n"]
        return fit_spec(values["kind"], n, seed, values["k"], round(float(values["p"]), 2), values["m"])

    def to_params(self, genotype: RandWireGenotype) -> dict[str, Any]:
        """The stage generators as params; ``ValueError`` if they fall outside :meth:`distributions`."""
        self.macro.check(genotype)
        specs = genotype.specs()
        params: dict[str, Any] = {f"s{i}_seed": spec.seed for i, spec in enumerate(specs)}
        for prefix, stages, _ in self._groups:
            ref = specs[self._fractions.index(max(self._fractions))] if self.shared else specs[stages[0]]
            values = {"kind": ref.kind, "n": ref.n, **self._defaults(prefix)}
            values.update({key: getattr(ref, key) for key in KIND_PARAMS[ref.kind]})
            if self.shared and any(self._stage_spec(values, i, specs[i].seed) != specs[i] for i in stages):
                raise ValueError("params: the genotype's stages do not share one generator (space option share='all')")
            params.update({prefix + key: values[key] for key in FIELDS})
        check_params(params, self._distributions)
        return {key: params[key] for key in self._distributions}  # in distributions() order

    def _defaults(self, prefix: str) -> dict[str, Any]:
        """Fixed values for the params a kind does not use, inside their ranges."""
        return {key: min(value, self._distributions[prefix + key].high) for key, value in DEFAULTS.items()}

    def from_params(self, params: Mapping[str, Any]) -> RandWireGenotype:
        """Draw every stage's graph from the generators the params describe."""
        return self._from_params(params)

    def _from_params(self, params: Mapping[str, Any], reuse: Sequence[RandWireGenotype] = ()) -> RandWireGenotype:
        """Generate the genotype; stages whose generator matches one in ``reuse`` keep its edges."""
        for key, dist in self._distributions.items():
            value = params.get(key, 0)
            if not isinstance(dist, CategoricalDistribution) and (isinstance(value, bool)
                                                                  or not isinstance(value, (int, float))):
                raise ValueError(f"params: {key}={value!r} is not a number")
        check_params(params, self._distributions)
        specs: list[GeneratorSpec] = [None] * len(self.macro.stages)  # type: ignore[list-item]
        for prefix, stages, _ in self._groups:
            values = {key: params[prefix + key] for key in FIELDS}
            for i in stages:
                specs[i] = self._stage_spec(values, i, params[f"s{i}_seed"])
        return make_genotype(specs, reuse)

    # ----- search operators --------------------------------------------------------------------
    def sample(self, rng: random.Random) -> RandWireGenotype:
        """Every param drawn uniformly from its distribution."""
        return self.from_params({key: draw(dist, rng) for key, dist in self._distributions.items()})

    def mutate(self, genotype: RandWireGenotype, rng: random.Random) -> RandWireGenotype:
        """Redraw one stage's graph (new seed), or step one generator param and regenerate.

        A param step moves a number one step up or down (``k`` by 2, ``p`` by 0.05) or switches the
        kind (the new kind's params drawn at random); stages whose generator is unchanged keep
        their graphs.
        """
        params = self.to_params(genotype)
        prefix = rng.choice(self._groups)[0]
        keys = self._mutable(prefix, params)
        if not keys or rng.random() < 0.5:
            key = f"s{rng.randrange(len(self.macro.stages))}_seed"
            new = rng.randrange(SEED_MAX)
            params[key] = new + 1 if new >= params[key] else new  # uniform over the other seeds
        else:
            key = prefix + rng.choice(keys)
            params[key] = self._neighbour(key, params[key], rng)
            if key.endswith("kind"):
                for name in KIND_PARAMS[params[key]]:
                    params[prefix + name] = draw(self._distributions[prefix + name], rng)
        return self._from_params(params, (genotype,))

    def _mutable(self, prefix: str, params: Mapping[str, Any]) -> list[str]:
        """Params of a set that matter for its kind and have more than one value."""
        names = ["kind", "n", *KIND_PARAMS[params[prefix + "kind"]]]
        return [name for name in names if _size(self._distributions[prefix + name]) > 1]

    def _neighbour(self, key: str, value: Any, rng: random.Random) -> Any:
        """Another kind, or the value one step up or down inside the range."""
        dist = self._distributions[key]
        if isinstance(dist, CategoricalDistribution):
            return rng.choice([c for c in dist.choices if c != value])
        step = dist.step
        moves = [v for v in (value - step, value + step) if dist.low <= v <= dist.high]
        return round(rng.choice(moves), 2) if isinstance(dist, FloatDistribution) else rng.choice(moves)

    def crossover(self, a: RandWireGenotype, b: RandWireGenotype, rng: random.Random) -> RandWireGenotype:
        """Each stage from either parent (shared generators: the generator from one, seeds mixed)."""
        self.macro.check(a)
        self.macro.check(b)
        if self.shared:
            pa, pb = self.to_params(a), self.to_params(b)
            params = dict(pa if rng.random() < 0.5 else pb)
            for i in range(a.stages):
                params[f"s{i}_seed"] = (pa if rng.random() < 0.5 else pb)[f"s{i}_seed"]
            return self._from_params(params, (a, b))
        picks = [a if rng.random() < 0.5 else b for _ in range(a.stages)]
        return RandWireGenotype(tuple(p.nodes[i] for i, p in enumerate(picks)),
                                tuple(p.edges[i] for i, p in enumerate(picks)),
                                tuple(p.generators[i] for i, p in enumerate(picks)))

    # ----- published architectures ---------------------------------------------------------------
    def known(self) -> dict[str, RandWireGenotype]:
        """The paper's ER(0.2), BA(5) and WS(4, 0.75) at this preset's N, one fixed seed per stage."""
        if self._known is None:
            self._known = {name: self._paper_genotype(**gen) for name, gen in KNOWN_GENERATORS.items()}
        return dict(self._known)

    def _paper_genotype(self, kind: str, k: int = 0, p: float = 0.0, m: int = 0) -> RandWireGenotype:
        return make_genotype([fit_spec(kind, shape.nodes, KNOWN_SEEDS[i], k, p, m)
                              for i, shape in enumerate(self.macro.stages)])

    def draw_graphs(self, generator: str, rng: random.Random) -> RandWireGenotype:
        """Fresh graphs of one generator (any :func:`parse_generator` form) at this preset's N: every
        stage gets its own seed from ``rng``, as the paper draws each network anew."""
        gen = parse_generator(generator)
        return make_genotype([fit_spec(gen["kind"], shape.nodes, rng.randrange(SEED_MAX + 1), gen["k"], gen["p"],
                                       gen["m"]) for shape in self.macro.stages])

    def parse(self, text: str) -> RandWireGenotype:
        """A generator in the paper's notation (``er(0.2)``, ``ba(5)``, ``ws(4,0.75)``) with the KNOWN seeds."""
        match = _PAPER_FORM.match(text)
        kind = match.group(1) if match else ""
        values = [v.strip() for v in match.group(2).split(",")] if match else []
        if not match or len(values) != len(KIND_PARAMS[kind]):
            raise ValueError(f"randwire: expected er(P), ba(M) or ws(K,P), got {text!r}")
        try:
            args = {name: float(v) if name == "p" else int(v) for name, v in zip(KIND_PARAMS[kind], values)}
        except ValueError:
            raise ValueError(f"randwire: {text!r}: P must be a number, K and M integers") from None
        n = min(shape.nodes for shape in self.macro.stages)
        if "k" in args and not (args["k"] % 2 == 0 and 2 <= args["k"] <= _even_below(n)):
            raise ValueError(f"randwire: {text!r}: K must be even, 2..{_even_below(n)} for N={n}")
        if "m" in args and not 1 <= args["m"] <= n - 1:
            raise ValueError(f"randwire: {text!r}: M must be 1..{n - 1} for N={n}")
        if not 0.0 <= args.get("p", 0.0) <= 1.0:
            raise ValueError(f"randwire: {text!r}: P must be in [0, 1]")
        return self._paper_genotype(kind, **args)

    # ----- model -------------------------------------------------------------------------------
    def build(self, genotype: RandWireGenotype, task: Task | None = None) -> Any:
        """The torch module (imports torch)."""
        from search_spaces.randwire.build import build

        return build(genotype, self.macro, task or self.default_task(), self.options["drop_path"])

    def cost(self, genotype: RandWireGenotype, task: Task | None = None) -> Cost:
        """Params and MACs from the genotype (equal to the built module's; see ``macro.py``)."""
        return cost(genotype, self.macro, task or self.default_task())

    def latency_blocks(self, genotype: RandWireGenotype, task: Task | None = None) -> list[str]:
        from search_spaces.randwire.latency import network_blocks

        return network_blocks(genotype, self.macro, task or self.default_task())

    def latency_universe(self, task: Task | None = None) -> list[str]:
        """Per stage: the source node, inner nodes of every in-degree and sink means of every width,
        up to the largest node count the space allows (and the published architectures' blocks)."""
        from search_spaces.randwire.latency import universe

        task = task or self.default_task()
        most = [0] * len(self.macro.stages)
        for prefix, stages, _ in self._groups:
            for stage in stages:
                most[stage] = self._distributions[prefix + "n"].high
        for genotype in self.known().values():
            if genotype.stages == len(most):
                most = [max(m, n) for m, n in zip(most, genotype.nodes)]
        return universe(self.macro, task, most)

    def latency_module(self, key: str) -> Any:
        from search_spaces.randwire.latency import module

        return module(key)

    def details(self, genotype: RandWireGenotype) -> dict[str, Any]:
        """Label, C, N and per stage: generator, node/edge counts, input/output nodes, width, stride."""
        stages = []
        for shape, n, edges, text in zip(self.macro.stages, genotype.nodes, genotype.edges, genotype.generators):
            sources, sinks = sources_and_sinks(n, edges)
            stages.append({"generator": text, "nodes": n, "edges": len(edges), "input_nodes": len(sources),
                           "output_nodes": len(sinks), "channels": shape.channels, "stride": shape.stride})
        return {"label": self.label(genotype), "channels": self.channels, "nodes": self.nodes, "stages": stages}

    def label(self, genotype: RandWireGenotype) -> str:
        """E.g. ``ws(4,0.75)x3 N=32``, or ``er(0.2)/ba(5)/ws(4,0.75) N=16/32/32``."""
        shorts = [spec.short() for spec in genotype.specs()]
        wiring = f"{shorts[0]}x{len(shorts)}" if len(set(shorts)) == 1 else "/".join(shorts)
        nodes = str(genotype.nodes[0]) if len(set(genotype.nodes)) == 1 else "/".join(map(str, genotype.nodes))
        return f"{wiring} N={nodes}"

    def draw(self, genotype: RandWireGenotype, path: str) -> None:
        from search_spaces.randwire.draw import draw_stages

        draw_stages(genotype, path, self.label(genotype))


_DASH_FORM = re.compile(r"^\s*(er|ba|ws)-([0-9.eE+-]+?)(?:-([0-9.eE+-]+))?\s*$")
_KEYWORD_FORM = re.compile(r"^\s*(er|ba|ws)\s*\(((?:\s*[a-z]+\s*=\s*[^,()]+\s*,?)*)\)\s*$")


def parse_generator(text: str) -> dict[str, Any]:
    """A random-graph generator without a seed: ``{"kind", "k", "p", "m"}`` (unused params 0).

    Accepted forms: the published names and their dash form (``ws-4-0.75``, ``er-0.2``, ``ba-5``),
    the paper's notation (``ws(4,0.75)``, ``er(0.2)``, ``ba(5)``) and keywords (``ws(k=4,p=0.75)``;
    ``n`` and ``seed`` are ignored: the network's N and a fresh seed per stage apply).
    ``ValueError`` says what is wrong.
    """
    values: list[str] = []
    match = None if "=" in text else _DASH_FORM.match(text) or _PAPER_FORM.match(text)
    if match:
        kind = match.group(1)
        values = [v.strip() for v in ",".join(g for g in match.groups()[1:] if g).split(",") if v.strip()]
        named = dict(zip(KIND_PARAMS[kind], values))
    else:
        keywords = _KEYWORD_FORM.match(text)
        if not keywords:
            raise ValueError(f"{text!r} is not a generator; expected e.g. ws-4-0.75, er(0.2), ba(m=5)")
        kind = keywords.group(1)
        pairs = [item.split("=") for item in keywords.group(2).split(",") if item.strip()]
        named = {k.strip(): v.strip() for k, v in pairs if k.strip() not in ("n", "seed")}
        values = list(named.values())
    if set(named) != set(KIND_PARAMS[kind]) or len(values) != len(KIND_PARAMS[kind]):
        raise ValueError(f"{text!r}: {kind} takes {', '.join(KIND_PARAMS[kind]).upper()}")
    try:
        out = {"kind": kind, "k": 0, "p": 0.0, "m": 0,
               **{name: float(v) if name == "p" else int(v) for name, v in named.items()}}
    except ValueError:
        raise ValueError(f"{text!r}: P must be a number, K and M integers") from None
    if not 0.0 <= out["p"] <= 1.0 or ("k" in named and (out["k"] < 2 or out["k"] % 2)) or ("m" in named and out["m"] < 1):
        raise ValueError(f"{text!r}: needs 0 <= P <= 1, an even K >= 2, M >= 1")
    return out


def _size(dist: Any) -> int:
    """Number of values of a distribution."""
    if isinstance(dist, CategoricalDistribution):
        return len(dist.choices)
    return int(round((dist.high - dist.low) / dist.step)) + 1
