"""EfficientNet compound-scaling space (Tan & Le, 2019): scale a baseline, or search the baseline itself.

Resolution. A genotype's ``resolution`` is its input side at the ImageNet scale (224 for B0, 600
for B7). A preset maps it to the size the network runs at (``layout.run_size``):

- ``imagenet``: the genotype's resolution itself, and it is also the task's input size (the data
  pipeline crops to it, as in the paper): ``describe`` of B3 reports ``input_shape`` [3, 300, 300].
- ``proxy``: the task's own images (1x8x8 digits by default; anything up to 3x32x32 works) stand
  for 224, so B0 runs at the input's size and B3 at 300/224 of it; the stem keeps stride 1 and only
  the first two stride-2 stages reduce, so small maps are not shrunk to 1x1.

The built model resizes any input whose size differs from its run size (bilinear), so evaluators
stay generic; ``cost`` counts MACs at the run size, which is what ``count_macs`` of the built model
measures. The search parameterizations (option ``search``) are described in ``modes.py``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Mapping

from nas.config import Field, SpecError
from nas.space import Cost, SearchSpace, Task
from search_spaces.scaling.compound import coefficient_grid
from search_spaces.scaling.genotype import B0_STAGES, KNOWN, ScalingGenotype, format_stage
from search_spaces.scaling.layout import Macro, NetworkPlan, plan_cost, plan_network, run_size
from search_spaces.scaling.modes import DROPOUTS, MODES


class ScalingSpace(SearchSpace[ScalingGenotype]):
    """EfficientNet compound scaling over an MBConv stage table.

    Options: ``preset`` (``imagenet``, ``proxy``), ``search`` (``coefficients`` or ``baseline``),
    ``baseline`` (a known name or a stage table), ``phi``, ``dropout`` (of sampled genotypes),
    ``grid_step``/``grid_tolerance``/``grid_target`` (the coefficient grid sampled from and walked
    by the ``grid`` controller), ``coefficient_max`` (upper bound of alpha, beta, gamma),
    ``final_phi`` (the compound coefficient the best coefficients are scaled to in the run's report)
    and ``bn_momentum`` (of the built model's BatchNorm layers).
    """

    name = "scaling"
    genotype = ScalingGenotype
    PRESETS = {
        "imagenet": {"input_shape": (3, 224, 224), "num_classes": 1000, "native_input": True,
                     "base_size": 224, "stem_stride": 2, "max_reductions": None},
        "proxy": {"input_shape": (1, 8, 8), "num_classes": 10, "native_input": False,
                  "base_size": 0, "stem_stride": 1, "max_reductions": 2},
    }
    DEFAULT_PRESET = "imagenet"
    OPTIONS = {
        "search": Field(str, default="coefficients", choices=tuple(MODES),
                        help="what is searched: compound coefficients, or the baseline stage table"),
        "baseline": Field(str, default="efficientnet-b0",
                          help="baseline: a known architecture's name or space-separated stage strings"),
        "phi": Field(float, default=1.0, min=0.0, help="compound coefficient the coefficients are applied at"),
        "dropout": Field(float, default=0.2, choices=DROPOUTS, help="dropout of sampled genotypes"),
        "grid_step": Field(float, default=0.05, min=0.001, help="spacing of the coefficient grid"),
        "grid_tolerance": Field(float, default=0.1, min=0.0, help="allowed |alpha*beta^2*gamma^2 - target|"),
        "grid_target": Field(float, default=2.0, min=1.0, help="FLOPs factor per unit of phi"),
        "coefficient_max": Field(float, default=3.2, min=1.0, help="upper bound of alpha, beta and gamma"),
        "final_phi": Field(float, default=1.0, min=0.0,
                           help="phi the best coefficients are scaled to at the end (scaled.json)"),
        "bn_momentum": Field(float, default=0.01, min=0.0, max=1.0,
                             help="BatchNorm running-average momentum (PyTorch's convention); 0.01 is the "
                                  "reference's, 0.1 lets the averages settle within brief training"),
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        preset = self.PRESETS[self.preset]
        self.macro = Macro(preset["base_size"], preset["stem_stride"], preset["max_reductions"])
        self.baseline = _baseline(self.options["baseline"])
        self.search: str = self.options["search"]
        self.mode = MODES[self.search](self.baseline, self.options)

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """The fields, then the baseline, and for the coefficients search ``phi`` > 0 and a
        non-empty coefficient grid."""
        checked = super().check_options(options)
        _baseline(checked["baseline"])
        if checked["search"] == "coefficients":
            if checked["phi"] == 0:
                raise SpecError("space.phi: must be > 0 for the coefficients search")
            grid = coefficient_grid(checked["grid_step"], checked["grid_tolerance"], checked["grid_target"])
            if not any(max(point) <= checked["coefficient_max"] for point in grid):
                raise SpecError("space.grid_tolerance: the coefficient grid is empty; raise grid_tolerance "
                                "or coefficient_max")
        return checked

    def known(self) -> dict[str, ScalingGenotype]:
        """EfficientNet-B0 to B7 (the reference's width, depth, resolution and dropout over B0)."""
        return dict(KNOWN)

    # ----- search operators ----------------------------------------------------------------------
    def sample(self, rng: random.Random) -> ScalingGenotype:
        return self.mode.sample(rng)

    def mutate(self, genotype: ScalingGenotype, rng: random.Random) -> ScalingGenotype:
        """One change: a coefficient moved by one grid step, or one choice of one stage."""
        neighbours = self.mode.neighbours(genotype)
        if not neighbours:
            raise ValueError(f"scaling: {self.label(genotype)} has no neighbour in the {self.search} search")
        return rng.choice(neighbours)

    def neighbours(self, genotype: ScalingGenotype) -> list[ScalingGenotype]:
        return self.mode.neighbours(genotype)

    def grid(self) -> list[ScalingGenotype] | None:
        """Coefficients search: the baseline scaled by each grid point (alpha * beta^2 * gamma^2 within
        ``grid_tolerance`` of ``grid_target``) at ``phi`` (1 for the paper's grid search) and the
        ``dropout`` option, ordered by alpha, beta, gamma; baseline search: None."""
        if self.search != "coefficients":
            return None
        return [genotype for genotype, _ in self.mode.grid_points()]

    def contains(self, genotype: ScalingGenotype) -> bool:
        """Whether the current search expresses ``genotype`` (``baseline`` search: not B1-B7)."""
        try:
            self.mode.to_params(genotype)
        except ValueError:
            return False
        return True

    def crossover(self, a: ScalingGenotype, b: ScalingGenotype, rng: random.Random) -> ScalingGenotype:
        return self.mode.crossover(a, b, rng)

    def distributions(self) -> dict[str, Any]:
        return self.mode.distributions()

    def to_params(self, genotype: ScalingGenotype) -> dict[str, Any]:
        return self.mode.to_params(genotype)

    def from_params(self, params: Mapping[str, Any]) -> ScalingGenotype:
        return self.mode.from_params(params)

    # ----- model -----------------------------------------------------------------------------------
    def task_for(self, genotype: ScalingGenotype) -> Task:
        """The task a genotype is described and measured with: at ``imagenet`` its native input size."""
        task = self.default_task()
        if not self.PRESETS[self.preset]["native_input"]:
            return task
        h, w = run_size(genotype, task.input_shape[1:], self.macro)  # type: ignore[arg-type]
        return Task((task.input_shape[0], h, w), task.num_classes)

    def plan(self, genotype: ScalingGenotype, task: Task | None = None) -> NetworkPlan:
        """The laid-out network (every block's channels, stride and map size) for ``task``."""
        task = task or self.task_for(genotype)
        return plan_network(genotype, task.input_shape, task.num_classes, self.macro)

    def build(self, genotype: ScalingGenotype, task: Task | None = None) -> Any:
        from search_spaces.scaling.build import build

        return build(self.plan(genotype, task), self.options["bn_momentum"])

    def cost(self, genotype: ScalingGenotype, task: Task | None = None) -> Cost:
        """Params and conv+linear MACs at the run size, from the layout (nothing is built)."""
        params, macs = plan_cost(self.plan(genotype, task))
        return Cost(params, macs)

    def latency_blocks(self, genotype: ScalingGenotype, task: Task | None = None) -> list[str]:
        from search_spaces.scaling.latency import network_blocks

        task = task or self.task_for(genotype)
        return network_blocks(self.plan(genotype, task), task.input_shape)

    def latency_cover(self) -> list[ScalingGenotype]:
        from search_spaces.scaling.latency import cover

        return cover(self)

    def latency_module(self, key: str) -> Any:
        from search_spaces.scaling.latency import module

        return module(key)

    def describe(self, genotype: ScalingGenotype, task: Task | None = None) -> dict[str, Any]:
        """The contract fields with ``input_shape`` = what the model consumes, plus ``run_size``."""
        task = task or self.task_for(genotype)
        info = super().describe(genotype, task)
        info["run_size"] = list(self.plan(genotype, task).size)
        return info

    def details(self, genotype: ScalingGenotype) -> dict[str, Any]:
        plan = self.plan(genotype)
        return {"search": self.search, "stages": list(genotype.stages),
                "scaled_stages": [format_stage(s) for s in genotype.scaled_table()],
                "width": genotype.width, "depth": genotype.depth, "resolution": genotype.resolution,
                "dropout": genotype.dropout, "stem_channels": plan.stem, "head_channels": plan.head,
                "blocks": len(plan.blocks)}

    def label(self, genotype: ScalingGenotype) -> str:
        """``w.. d.. r.. p..`` (with the stage table when it is not the baseline's), or the known name."""
        text = f"w{genotype.width:g} d{genotype.depth:g} r{genotype.resolution} p{genotype.dropout:g}"
        if genotype.stages != self.baseline.stages:
            text += " | " + " ".join(genotype.stages)
        names = [name for name, known in KNOWN.items() if known == genotype]
        return f"{names[0]} ({text})" if names else text

    def draw(self, genotype: ScalingGenotype, path: str) -> None:
        from search_spaces.scaling.draw import draw_stages

        draw_stages(self.plan(genotype), f"{self.label(genotype)}   [{self.preset}]", path)

    def report(self, records: list[dict[str, Any]], folder: Path) -> list[str]:
        """Coefficients search: ``grid.csv``, ``heatmap.png`` and ``scaled.json``; baseline search:
        ``stages.csv`` (see ``report.py``)."""
        from search_spaces.scaling.report import write_report

        return write_report(self, records, Path(folder))


def _baseline(text: str) -> ScalingGenotype:
    """The baseline named by the ``baseline`` option (a known name or stage strings)."""
    if text in KNOWN:
        return KNOWN[text]
    try:
        return ScalingGenotype(tuple(text.split()))
    except ValueError as err:
        raise SpecError(f"space.baseline: neither a known architecture ({', '.join(KNOWN)}) nor a stage "
                        f"table like {' '.join(B0_STAGES[:2])} ...: {err}") from None
