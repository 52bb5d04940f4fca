"""``[evaluator] name = "zero-cost"``: score each candidate at initialisation with zero-cost proxies.

The network is built with the trial's seed and scored by each proxy of the spec (on the data set's
one batch where a proxy reads data). A proxy that fails on the network (NaN, infinity, an error, a
network it does not apply to) makes a failed trial with the proxy's one-line reason; the search goes on.
With several proxies, ``zero_cost`` is their vote against a fixed reference: the mean over proxies of
the candidate's percentile among ``reference`` random architectures of the space, drawn and scored
the same way on every worker (seeded), once per worker, so a score does not depend on which worker or
in which order candidates came.
"""

from __future__ import annotations

import bisect
import os
import random
from typing import Any, Mapping

import torch

from evaluators.proxies import PROXIES, score
from evaluators.proxies.inputs import proxy_options
from evaluators.zerocost_options import ZeroCostOptions
from nas.config import SpecError
from nas.evaluator import COMPLETE, Reporter, Result
from nas.space import SearchSpace


class ZeroCostEvaluator(ZeroCostOptions):
    """Scores candidates with zero-cost proxies (no training)."""

    def __init__(self, space: SearchSpace, options: Mapping[str, Any], shared: Any = None) -> None:
        super().__init__(space, options, shared)
        torch.set_num_threads(self.options["threads"] or int(os.environ.get("OMP_NUM_THREADS", 0) or os.cpu_count() or 1))
        wanted = self.options["device"]
        if wanted == "cuda" and not torch.cuda.is_available():
            raise SpecError("evaluator.device: 'cuda' requested but no CUDA device is visible")
        self.device = torch.device("cuda" if wanted == "cuda" or (wanted == "auto" and torch.cuda.is_available()) else "cpu")
        self.task = self.task_for(self.options, space)
        batch = shared if shared is not None else self.load_shared(self.options)
        self.batch = None if batch is None else (torch.tensor(batch[0], device=self.device),
                                                 torch.tensor(batch[1], device=self.device))
        self._reference: dict[str, list[float]] | None = None  # proxy -> sorted scores of the reference

    def scores(self, genotype: Any, seed: int) -> dict[str, Any]:
        """Each proxy's :class:`~evaluators.proxies.ProxyScore` of the network built with ``seed``."""
        torch.manual_seed(seed)
        net = self.space.build(genotype, self.task).to(self.device)
        return {name: score(name, net, self.batch if PROXIES[name].needs_data else None, seed=seed,
                            **proxy_options(name, self.space, genotype, self.task))
                for name in self.options["proxies"]}

    def reference(self) -> dict[str, list[float]]:
        """Sorted scores of each proxy over the reference architectures (computed once per worker)."""
        if self._reference is None:
            rng = random.Random("zero-cost-reference")
            found: dict[str, list[float]] = {name: [] for name in self.options["proxies"]}
            for index in range(self.options["reference"]):
                for name, result in self.scores(self.space.sample(rng), index).items():
                    if result.value is not None:
                        found[name].append(result.value)
            self._reference = {name: sorted(values) for name, values in found.items()}
        return self._reference

    def vote(self, values: Mapping[str, float]) -> float:
        """Mean over proxies of the value's percentile (ties count half) among the reference's scores."""
        shares = []
        for name, value in values.items():
            ranked = self.reference()[name]
            below, upto = bisect.bisect_left(ranked, value), bisect.bisect_right(ranked, value)
            shares.append((below + upto) / 2 / len(ranked) if ranked else 0.5)
        return sum(shares) / len(shares)

    def evaluate(self, genotype_json: str, budget: Mapping[str, Any], reporter: Reporter) -> Result:
        results = self.scores(self.space.from_json(genotype_json), int(budget.get("seed", 0)))
        seconds = sum(r.seconds for r in results.values())
        for name, result in results.items():
            if result.value is None:
                return Result.failed(result.error or f"{name}: no score", proxy_seconds=seconds)
        values = {name: float(r.value) for name, r in results.items()}  # type: ignore[arg-type]
        combined = next(iter(values.values())) if len(values) == 1 else self.vote(values)
        metrics = {"zero_cost": combined, "proxy_seconds": seconds, **{f"proxy_{k}": v for k, v in values.items()}}
        return Result(COMPLETE, metrics, {"device": str(self.device),
                                          "proxy_seconds": {k: round(r.seconds, 4) for k, r in results.items()}})
