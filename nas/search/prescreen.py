"""``[prescreen]``: score the controller's proposals with zero-cost proxies and train only the best.

The controller's proposals are taken in batches of ``batch``. Each proposal is scored on the
executors (a job of stage :data:`~nas.evaluator.SCREEN`, run by the same workers as trainings, on
GPUs when they have them); when every member of a batch has its score, the best ``keep`` are trained
and the others are told PRUNED with their score and the reason (uncounted: no budget spent). A
warm-up makes the first batch ``warmup`` proposals large and trains its best ``warmup_keep`` first:
history controllers (evolution, local, guided) then take their first population from the proxy's
best, and TPE its first observations.

Scores are recorded per architecture in the trial's user attribute :data:`SCORE_ATTR` as soon as they
arrive, with the batch decision once it is made; a resumed search reuses every recorded score (an
architecture is never scored twice), trains a kept architecture whose training was interrupted
without screening it again, and puts back into the next batch those scored but not yet decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import optuna
from optuna.trial import TrialState

from nas import registry
from nas.config import Field, SpecError, validate
from nas.evaluator import COMPLETE, SCREEN, EvaluatorSpec, Job, Result
from nas.ledger._optuna import trial_id

SCORE_ATTR = "prescreen"  # trial user attribute: score, error, metrics, seconds, warmup, batch, kept, worker
WARMUP_ATTR = "nas:warmup_decided"  # study user attribute, set once the warm-up batch is decided
FIELDS = {
    "proxy": Field(list, default=["synflow"], items=str,
                   help="the proxy, or several that vote (their mean percentile among reference architectures)"),
    "direction": Field(str, default="maximize", choices=("maximize", "minimize"),
                       help="which scores are best: proxies predict accuracy after full training, and a brief "
                            "training may favour the other end (see BENCHMARKS.md)"),
    "batch": Field(int, default=8, min=1, help="proposals scored per batch (1: only the warm-up is screened)"),
    "keep": Field(int, default=1, min=1, help="proposals of each batch trained: the best by the proxy"),
    "warmup": Field(int, default=0, min=0, help="size of the first batch (0: no warm-up)"),
    "warmup_keep": Field(int, default=0, min=0,
                         help="trained from the warm-up (0: the controller's population or n_startup, else keep)"),
    "scores": Field("file", default="", help="CSV of scores made beforehand (nas bench proxies --scores, or any "
                                             "arch,<proxy> table), read instead of computing them"),
}
# options passed on to the zero-cost evaluator; data, data_dir and size default to the run evaluator's
PASSED = ("reference", "data", "data_dir", "size", "batch_size", "threads", "device")
INHERITED = ("data", "data_dir", "size")


def validate_prescreen(table: Mapping[str, Any], evaluator: Mapping[str, Any], controller: Mapping[str, Any],
                       base_dir: Path) -> dict[str, Any]:
    """The ``[prescreen]`` table with defaults filled ({} when absent: no pre-screen)."""
    if not table:
        return {}
    table = {k: v for k, v in table.items() if not (k == "scores" and v == "")}  # "" in a resolved spec: none
    if isinstance(table.get("proxy"), str):
        table["proxy"] = [table["proxy"]]
    zero_cost = registry.lookup("evaluators", "zero-cost", declaration=True)
    own = validate({k: v for k, v in table.items() if k not in PASSED}, FIELDS, "prescreen", base_dir)
    passed = {k: evaluator[k] for k in INHERITED if k in evaluator and k in zero_cost.OPTIONS}
    passed.update({k: v for k, v in table.items() if k in PASSED})
    try:
        proxies = ["synflow"] if own["scores"] else own["proxy"]  # a scores table's column may be any name
        options = zero_cost.validate_options({**passed, "proxies": proxies}, base_dir)
    except SpecError as err:
        raise SpecError(str(err).replace("evaluator.proxies", "prescreen.proxy").replace("evaluator.", "prescreen.")) from None
    if own["keep"] > own["batch"]:
        raise SpecError(f"prescreen.keep: expected at most batch ({own['batch']}), got {own['keep']}")
    if own["scores"]:
        _check_scores(own)
    if own["warmup"] and not own["warmup_keep"]:
        wanted = int(controller.get("population") or controller.get("n_startup") or own["keep"])
        own["warmup_keep"] = min(wanted, own["warmup"])
    if own["warmup_keep"] > max(own["warmup"], 0) and own["warmup"]:
        raise SpecError(f"prescreen.warmup_keep: expected at most warmup ({own['warmup']}), got {own['warmup_keep']}")
    return {**own, **{k: options[k] for k in PASSED}}


def _check_scores(own: dict[str, Any]) -> None:
    """A scores table holds one column per proxy; it is read for one proxy only."""
    if len(own["proxy"]) != 1:
        raise SpecError(f"prescreen.scores: a scores table serves one proxy; got {own['proxy']}")
    tabular = registry.lookup("evaluators", "tabular", declaration=True)
    columns = tabular.metric_names(tabular.validate_options({"table": own["scores"]}))
    if own["proxy"][0] not in columns:
        raise SpecError(f"prescreen.scores: {own['scores']} has no column {own['proxy'][0]!r}; "
                        f"columns: {', '.join(columns)}")


def screen_spec(prescreen: Mapping[str, Any], main: EvaluatorSpec) -> EvaluatorSpec:
    """The evaluator that scores proposals: zero-cost with the proxies, or a scores table."""
    if prescreen["scores"]:
        options: dict[str, Any] = {"table": prescreen["scores"], "metrics": list(prescreen["proxy"])}
        return EvaluatorSpec("tabular", options, main.space, main.space_options, main.base_dir)
    options = {"proxies": list(prescreen["proxy"]), **{k: prescreen[k] for k in PASSED}}
    return EvaluatorSpec("zero-cost", options, main.space, main.space_options, main.base_dir)


def score_of(prescreen: Mapping[str, Any], result: Result) -> tuple[float | None, dict[str, float], str]:
    """(score, metrics to record, error) of a screen job's result."""
    if result.state != COMPLETE:
        return None, {}, result.error or "the proxy gave no score"
    if prescreen["scores"]:
        name = prescreen["proxy"][0]
        return result.metrics[name], {f"proxy_{name}": result.metrics[name]}, ""
    metrics = {k: v for k, v in result.metrics.items() if k.startswith("proxy_")}
    return result.metrics["zero_cost"], metrics, ""


@dataclass
class Entry:
    """A proposal in the open batch."""

    trial: optuna.Trial
    genotype: Any
    arch_id: str
    cheap: dict[str, float]
    warmup: bool
    batch: int = -1  # the number of the batch's first trial
    record: dict[str, Any] | None = None  # the score record, once scored


@dataclass
class Screening:
    """The pre-screen's state in one driver: recorded scores by architecture and the open batch."""

    options: dict[str, Any]
    known: dict[str, dict[str, Any]] = field(default_factory=dict)  # arch_id -> score record
    open: list[Entry] = field(default_factory=list)
    warmup_open: bool = False
    screened: int = 0  # screen jobs this driver ran
    seconds: float = 0.0  # their evaluation time

    def load(self, study: optuna.Study) -> list[str]:
        """Read the recorded scores; queue again the architectures scored but not yet decided. Returns
        their arch ids."""
        trials = study.get_trials(deepcopy=False)
        for trial in trials:
            record = trial.user_attrs.get(SCORE_ATTR)
            arch_id = trial.user_attrs.get("arch_id")
            if isinstance(record, dict) and arch_id:
                if record.get("kept") is not None or arch_id not in self.known:
                    self.known[arch_id] = record
        self.warmup_open = bool(self.options["warmup"]) and not study.user_attrs.get(WARMUP_ATTR)
        waiting = {t.user_attrs.get("arch_id") for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING)}
        undecided = [a for a, r in self.known.items() if r.get("kept") is None and a not in waiting]
        by_arch = {t.user_attrs.get("arch_id"): t for t in trials if t.params}
        for arch_id in undecided:
            study.enqueue_trial(by_arch[arch_id].params, user_attrs={"rescore": True})
        return undecided

    # ----- admitting proposals ----------------------------------------------------------------------
    def admit(self, trial: optuna.Trial, genotype: Any, arch_id: str, cheap: dict[str, float],
              seed: int) -> Job | str | None:
        """Take a proposal: ``"train"`` when it was kept before (its training was interrupted), a
        screen :class:`Job` when it needs a score, None when its recorded score is reused."""
        record = self.known.get(arch_id)
        if not self.warmup_open and self.options["batch"] == 1:  # a batch of one screens nothing
            return "train"
        if record is not None and record.get("kept"):
            trial.set_user_attr(SCORE_ATTR, record)
            return "train"
        entry = Entry(trial, genotype, arch_id, cheap, warmup=self.warmup_open,
                      batch=self.open[0].trial.number if self.open else trial.number)
        self.open.append(entry)
        if record is not None:
            entry.record = {**record, "kept": None, "warmup": entry.warmup, "batch": entry.batch, "reused": True}
            trial.set_user_attr(SCORE_ATTR, entry.record)
            return None
        return Job(trial.number, trial_id(trial), genotype.to_json(), arch_id, {"stage": SCREEN}, seed)

    def full(self) -> bool:
        """Whether the open batch takes no more proposals."""
        return len(self.open) >= (self.options["warmup"] if self.warmup_open else self.options["batch"])

    def scored(self, job: Job, result: Result) -> None:
        """Record a screen job's result in its proposal (and in the trial, at once)."""
        entry = next(e for e in self.open if e.trial.number == job.trial_number)
        value, metrics, error = score_of(self.options, result)
        seconds = float(result.info.get("seconds", 0.0))
        self.screened += 1
        self.seconds += seconds
        entry.record = {"score": value, "metrics": metrics, "seconds": round(seconds, 4), "warmup": entry.warmup,
                        "batch": entry.batch, "kept": None, "worker": result.info.get("worker", ""),
                        **({"error": error} if error else {})}
        self.known[entry.arch_id] = entry.record
        entry.trial.set_user_attr(SCORE_ATTR, entry.record)

    def ready(self, closing: bool) -> bool:
        """Whether the open batch can be decided: all scored, and full (or no more proposals come)."""
        return bool(self.open) and all(e.record is not None for e in self.open) and (closing or self.full())

    def decide(self, study: optuna.Study) -> tuple[list[Entry], list[tuple[Entry, str]]]:
        """Close the open batch: (entries to train, best first; entries screened out with the reason).

        Entries are ranked by score, or by the controller when it can (a sampler's ``select(study,
        genotypes, scores)``, e.g. ``guided``'s surrogate with the score as a feature); those whose
        proxy failed come last."""
        keep = self.options["warmup_keep"] if self.warmup_open else self.options["keep"]
        ranked = self._ranked(study)
        kept = [e for e in ranked[:keep] if e.record and e.record.get("score") is not None]
        what = "warm-up" if self.warmup_open else "batch"
        proxy = "+".join(self.options["proxy"])
        out = []
        for place, entry in enumerate(ranked, 1):
            assert entry.record is not None
            entry.record["kept"] = entry in kept
            self.known[entry.arch_id] = entry.record
            if entry not in kept:
                why = (f"pre-screen: {proxy} failed: {entry.record['error']}" if entry.record.get("error") else
                       f"pre-screen: {proxy} score {entry.record['score']:.6g} ranked {place} of {len(ranked)} "
                       f"in its {what} (the best {keep} trained)")
                out.append((entry, why))
        if self.warmup_open:
            study.set_user_attr(WARMUP_ATTR, True)
            self.warmup_open = False
        self.open = []
        return kept, out

    def _ranked(self, study: optuna.Study) -> list[Entry]:
        sign = 1.0 if self.options["direction"] == "maximize" else -1.0
        ranked = sorted(self.open, key=lambda e: _rank_key(e, sign))
        select = getattr(study.sampler, "select", None)
        scored = [e for e in ranked if e.record and e.record.get("score") is not None]
        if select is None or len(scored) < 2:
            return ranked
        scores = {a: sign * float(r["score"]) for a, r in self.known.items() if r.get("score") is not None}
        order = {g.arch_id: i for i, g in enumerate(select(study, [e.genotype for e in scored], scores))}
        return sorted(scored, key=lambda e: order[e.arch_id]) + [e for e in ranked if e not in scored]

    def give_back(self) -> list[Entry]:
        """The open batch's proposals, undecided (the search is ending); their scores stay recorded."""
        entries, self.open = self.open, []
        return entries


def _rank_key(entry: Entry, sign: float) -> tuple[int, float, int]:
    """Best first: scored before failed, better score first (``sign`` 1: higher), then earlier proposals."""
    score = entry.record.get("score") if entry.record else None
    return (score is None, -sign * (score if score is not None else 0.0), entry.trial.number)


def metrics_of(record: Mapping[str, Any]) -> dict[str, float]:
    """The metrics a scored trial carries: ``prescreen`` (the score) and the proxies' values."""
    score = record.get("score")
    return {**({"prescreen": float(score)} if score is not None else {}), **record.get("metrics", {})}
