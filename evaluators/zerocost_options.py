"""The zero-cost evaluator's options and metrics, without torch (what spec validation reads).

``[evaluator] name = "zero-cost"`` scores each candidate at initialisation with one zero-cost proxy
or several (:mod:`evaluators.proxies`), in a second or less instead of a brief training.
:class:`evaluators.zerocost.ZeroCostEvaluator` adds the scoring, which imports torch.
"""

from __future__ import annotations

from typing import Any, Mapping

from evaluators.data import load, task_of
from nas.config import Field, SpecError, validate
from nas.evaluator import DATA_OPTIONS, Evaluator
from nas.space import SearchSpace, Task

# the proxies of evaluators.proxies.PROXIES (a test keeps the two in step); those reading a data batch
PROXY_NAMES = ("synflow", "naswot", "jacob_cov", "snip", "grad_norm", "grasp", "fisher", "zico", "meco",
               "params", "flops")
DATA_PROXIES = frozenset({"naswot", "jacob_cov", "snip", "grad_norm", "grasp", "fisher", "zico", "meco"})


class ZeroCostOptions(Evaluator):
    """What ``[evaluator] name = "zero-cost"`` accepts and reports.

    Metrics: ``zero_cost`` (the one proxy's score; with several, their vote: the mean over proxies of
    the candidate's percentile among ``reference`` seeded random architectures of the space, in
    [0, 1]), ``proxy_<name>`` for each proxy, and ``proxy_seconds``.
    """

    OPTIONS = {
        "proxies": Field(list, default=["synflow"], items=str,
                         help="proxies to score with; several vote (see the metrics)"),
        "reference": Field(int, default=16, min=2,
                           help="random architectures each proxy's score is ranked among when several vote"),
        **{k: DATA_OPTIONS[k] for k in ("data", "data_dir", "dataset", "size")},  # as the trainers read data
        "batch_size": Field(int, default=64, min=2, help="images in the one batch the data proxies read"),
        "threads": Field(int, default=0, min=0, help="torch threads (0: OMP_NUM_THREADS or all cores)"),
        "device": Field(str, default="auto", choices=("auto", "cpu", "cuda"),
                        help="where to score (auto: cuda when available)"),
    }
    BUDGET: dict[str, Field] = {}

    @classmethod
    def validate_options(cls, options: Mapping[str, Any], base_dir: Any = None,
                         check_files: bool = True) -> dict[str, Any]:
        o = validate(options, cls.OPTIONS, "evaluator", base_dir=base_dir, ignore=("name",), check_files=check_files)
        if not o["proxies"]:
            raise SpecError("evaluator.proxies: expected at least one proxy; known: " + ", ".join(PROXY_NAMES))
        for name in o["proxies"]:
            if name not in PROXY_NAMES:
                raise SpecError(f"evaluator.proxies: unknown proxy {name!r}; known: {', '.join(PROXY_NAMES)}")
        if len(set(o["proxies"])) != len(o["proxies"]):
            raise SpecError(f"evaluator.proxies: a proxy is named twice in {o['proxies']}")
        return o

    @classmethod
    def metric_names(cls, options: Mapping[str, Any]) -> tuple[str, ...]:
        return ("zero_cost", "proxy_seconds") + tuple(f"proxy_{p}" for p in options.get("proxies", ["synflow"]))

    @classmethod
    def task_for(cls, options: Mapping[str, Any], space: SearchSpace) -> Task:
        return task_of(options)

    @classmethod
    def load_shared(cls, options: Mapping[str, Any]) -> Any:
        """The data set's one batch (images, labels) when a proxy reads data; else None."""
        o = validate(options, cls.OPTIONS, "evaluator", ignore=("name",), check_files=False)
        if not DATA_PROXIES & set(o["proxies"]):
            return None
        try:
            splits = load(o["data"], o["data_dir"], 0, size=o["size"], dataset=o["dataset"])
        except (OSError, ValueError) as err:
            text = str(err)
            raise SpecError(text if text.startswith("evaluator.") else f"evaluator.data_dir: {text}") from None
        count = min(o["batch_size"], len(splits.x_train))
        return splits.x_train[:count].copy(), splits.y_train[:count].copy()
