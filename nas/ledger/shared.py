"""What the study holds, shared safely by several drivers: liveness, claims and the study's budget.

Several drivers (processes, maybe on several hosts) may work on one study. Three records in the
study make that safe with any Optuna storage (journal file, RDB, gRPC proxy):

- **Driver records** (study system attr ``nas:driver:<id>``: host, pid, last heartbeat, stopped).
  A :class:`Driver` writes its record on start, refreshes the heartbeat from a background thread
  every :data:`HEARTBEAT_S` seconds and marks it stopped at the end.
- **Owners**: the driver that asked a trial, named in its claim, or (for a trial parked behind
  another, and for every trial while other drivers are alive) in trial system attr
  :data:`OWNER_ATTR`. A RUNNING trial is *stale* only when its owner is gone: stopped, not beating
  for :data:`GRACE_S` seconds, or (same host) its process no longer exists. A trial without an owner
  (its driver was killed right after asking, or wrote no owner because it was alone) is stale once
  no other driver is alive, or after :data:`GRACE_S`. Only stale trials are failed; their architectures
  are queued again (:meth:`Ledger.requeue`), so an interrupted evaluation is repeated, not lost.
  (Attributes of finished trials cannot change in an RDB, so records never depend on that.)
- **Claims** (trial system attr :data:`CLAIM_ATTR` = {arch_id, driver}): written before a trial is submitted.
  A driver then re-reads the study and keeps its claim only if no other live claim of the same
  architecture exists and the study's counted evaluations plus live claims do not exceed the
  budget; otherwise it withdraws. Each storage write is visible to every later read, so of two
  simultaneous claims at least one driver sees the other: both may withdraw (and try again), but
  both can never keep theirs. Architectures are thus never evaluated twice and the budget is met
  exactly, with no lock beyond what the storage already provides. A driver that no other driver
  can have written alongside since its last read checks its claim on that read (:meth:`Ledger.confirm`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from nas.ledger import batching
from nas.ledger._optuna import set_trial_system_attr, storage_of, study_id, trial_id
from nas.ledger.store import pid_alive

log = logging.getLogger(__name__)

OWNER_ATTR = "nas:owner"
CLAIM_ATTR = "nas:claim"
REQUEUED_ATTR = "requeued_from"  # user attr of a queued trial: the interrupted trial it repeats
DRIVER_PREFIX = "nas:driver:"
ELAPSED_ATTR = "nas:elapsed_s"
HEARTBEAT_S = float(os.environ.get("NAS_HEARTBEAT_S", 5.0))
GRACE_S = float(os.environ.get("NAS_GRACE_S", 30.0))  # a driver silent this long is gone
INTERRUPTED = "interrupted: the driver stopped before this trial finished"
EVALUATED = "evaluated"  # Ledger.claim: another driver evaluated the architecture meanwhile
REFRESH_S = 1.0  # a view of the study this fresh is good enough to decide whether to ask


class Driver:
    """This process as one of the study's drivers: its id, record and heartbeat thread."""

    def __init__(self, study: optuna.Study, heartbeat: float = HEARTBEAT_S) -> None:
        self.study, self.heartbeat = study, heartbeat
        self.storage, self.study_id = storage_of(study), study_id(study)
        self.id = uuid.uuid4().hex[:12]
        self.host, self.pid = socket.gethostname(), os.getpid()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.mine: set[int] = set()  # numbers of the trials this driver asked and has not finished
        self.liveness = Liveness(study, self)

    def start(self) -> None:
        """Write this driver's record and keep it fresh until :meth:`stop`."""
        self._beat()
        self._thread = threading.Thread(target=self._run, name="nas-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and mark the record stopped (its trials left RUNNING are then stale at once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self._beat(stopped=True)
        except Exception:  # the storage may be gone; the missing heartbeat says the same
            log.debug("could not mark driver %s stopped", self.id, exc_info=True)

    def asked(self, trial: optuna.Trial) -> None:
        """Note a new trial as this driver's (written to the study only while other drivers live)."""
        self.mine.add(trial.number)
        if self.liveness.others_alive():
            self.own(trial)

    def own(self, trial: optuna.Trial) -> None:
        """Name this driver as ``trial``'s owner in the study."""
        set_trial_system_attr(self.study, trial, OWNER_ATTR, self.id)

    def claim(self, trial: optuna.Trial, arch_id: str) -> None:
        """Claim ``arch_id`` for ``trial`` in the study (see the module's docstring)."""
        set_trial_system_attr(self.study, trial, CLAIM_ATTR, {"arch_id": arch_id, "driver": self.id})

    def _beat(self, stopped: bool = False) -> None:
        record = {"host": self.host, "pid": self.pid, "beat": time.time(), "stopped": stopped}
        self.storage.set_study_system_attr(self.study_id, DRIVER_PREFIX + self.id, record)

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                self._beat()
            except Exception:  # a storage outage: the search loop reports it, not this thread
                log.debug("heartbeat of driver %s failed", self.id, exc_info=True)


class Liveness:
    """Answers whether a RUNNING trial's owner still runs (driver records re-read at most once a second)."""

    def __init__(self, study: optuna.Study, driver: Driver | None = None, grace: float = GRACE_S) -> None:
        self.study, self.driver, self.grace = study, driver, grace
        self.storage = storage_of(study)
        self.study_id = driver.study_id if driver is not None else study_id(study)
        self.me = driver.id if driver is not None else ""
        self.host = socket.gethostname()
        self._records: dict[str, Any] = {}
        self._read_at = 0.0

    def owner_alive(self, trial: FrozenTrial) -> bool:
        """Whether the driver that asked ``trial`` is still running (a 'no' is checked on fresh records)."""
        if self._owner_alive(trial):
            return True
        self._read_at = 0.0
        return self._owner_alive(trial)

    def _owner_alive(self, trial: FrozenTrial) -> bool:
        if self.driver is not None and trial.number in self.driver.mine:
            return True
        owner = trial.system_attrs.get(OWNER_ATTR) or (trial.system_attrs.get(CLAIM_ATTR) or {}).get("driver")
        if owner is None:  # killed right after asking, written while alone, or left by an older version
            return _age(trial) < self.grace and self.others_alive()
        record = self._records_now().get(owner)
        if record is None:
            return _age(trial) < self.grace
        return self._alive(record)

    def _alive(self, record: dict[str, Any]) -> bool:
        if record.get("stopped"):
            return False
        if record.get("host") == self.host and not pid_alive(int(record.get("pid", -1))):
            return False
        return time.time() - float(record.get("beat", 0.0)) < self.grace

    def others_alive(self) -> bool:
        """Whether another driver of the study is alive."""
        return any(self._alive(r) for d, r in self._records_now().items() if d != self.me)

    def others(self) -> dict[str, Any]:
        """Other drivers' records, read from the study now (never from the cache)."""
        self._read_at = 0.0
        return {d: r for d, r in self._records_now().items() if d != self.me}

    def finished(self, record: dict[str, Any]) -> bool:
        """Whether a driver certainly writes nothing more: its record says stopped, or its process (on
        this host) is gone. Silence alone is not enough: a driver on another host may be stalled, not dead."""
        return bool(record.get("stopped")) or (
            record.get("host") == self.host and not pid_alive(int(record.get("pid", -1))))

    def _records_now(self) -> dict[str, Any]:
        """Driver records by id, read again when older than a second."""
        now = time.time()
        if now - self._read_at > 1.0:
            attrs = self.storage.get_study_system_attrs(self.study_id)
            self._records = {k.removeprefix(DRIVER_PREFIX): v for k, v in attrs.items()
                             if k.startswith(DRIVER_PREFIX)}
            self._read_at = now
        return self._records


@dataclass
class Ledger:
    """The study as this driver knows it: evaluations by architecture, live claims, the budget used.

    ``refresh`` reads the study again: trials that finished since the last read (any driver's) are
    indexed once, RUNNING ones are re-examined each time (live claims counted, stale ones failed).
    """

    evaluated: int = 0
    done: dict[str, FrozenTrial] = field(default_factory=dict)  # arch_id -> its evaluation (or infeasible)
    elapsed: float = 0.0
    claims: dict[str, int] = field(default_factory=dict)  # arch_id -> trial number, live claims of any driver
    stale: list[FrozenTrial] = field(default_factory=list)  # failed by this driver, in order
    final: set[int] = field(default_factory=set)  # trial numbers already indexed
    refreshed_at: float = 0.0
    liveness: Liveness | None = None
    # Other drivers' records as read just before the last full read, if every one of them had then
    # certainly finished writing (see :meth:`confirm`); None when some other driver might still write.
    quiet: dict[str, Any] | None = None

    @classmethod
    def load(cls, study: optuna.Study, driver: Driver | None = None) -> Ledger:
        """Index the study; fail trials whose driver is gone (their budget is used again)."""
        liveness = driver.liveness if driver is not None else Liveness(study)
        ledger = cls(elapsed=float(study.user_attrs.get(ELAPSED_ATTR, 0.0)), liveness=liveness)
        ledger.refresh(study)
        return ledger

    @property
    def used(self) -> int:
        """The study's budget in use: counted evaluations plus live claims of every driver."""
        return self.evaluated + len(self.claims)

    def claim(self, study: optuna.Study, driver: Driver, trial: optuna.Trial, arch_id: str, budget: int) -> str:
        """Claim ``arch_id`` for ``trial``; keep the claim only if no other driver's claim or result of
        it exists and the study's budget still has room (see the module's docstring).

        Returns "" when the claim is kept, :data:`EVALUATED` when the architecture was evaluated
        meanwhile (its result is ``done[arch_id]``), else why the claim was withdrawn.
        """
        driver.claim(trial, arch_id)
        batching.flush(storage_of(study))  # other drivers, and the check below, must see the claim
        self.confirm(study, skip=trial.number)
        if arch_id in self.done:
            return EVALUATED
        if arch_id in self.claims:
            return f"trial #{self.claims[arch_id]} of another driver claimed it too"
        if self.used >= budget:
            return "the study's budget was taken by other drivers' claims"
        self.claims[arch_id] = trial.number
        return ""

    def room(self, study: optuna.Study, budget: int) -> bool:
        """Whether the study's budget has room for one more claim (reads the study again, for all
        drivers' claims, if the last read is older than :data:`REFRESH_S`; each claim is checked anyway)."""
        if time.time() - self.refreshed_at >= REFRESH_S:
            stale = len(self.stale)
            self.refresh(study)
            if len(self.stale) > stale:
                self.requeue(study)
        return self.used < budget

    def others_at_work(self, study: optuna.Study, budget: int) -> bool:
        """Whether the study's budget is not yet met by counted evaluations and this driver should keep
        looking: other drivers hold live claims that may still leave budget to this one, or the budget
        has room again (two drivers that claimed one architecture together both withdrew: each must
        see the other's withdrawal here and claim again, or the budget is left one short)."""
        self.refresh(study)
        return self.evaluated < budget and (bool(self.claims) or self.used < budget)

    def refresh(self, study: optuna.Study, skip: int | None = None) -> None:
        """Read the study again (``skip``: a trial number to leave out of the claims, e.g. one's own)."""
        assert self.liveness is not None
        self._read(study, skip, self.liveness.others())

    def confirm(self, study: optuna.Study, skip: int) -> bool:
        """Bring the view up to date to check a claim just written (by trial ``skip``); False when
        reading the study again was not needed.

        The whole study is read again unless no other driver can have written to it since the last
        full read: the other drivers' records, read now, are the very records read just before that
        read, and each of them had then certainly finished writing (stopped, or its process gone).
        A driver that starts later writes its record before anything else; if this read missed that
        record, the newcomer's first read of the study comes after it, hence after the claim that
        this driver wrote before this read, and the newcomer sees the claim as live (this driver is
        alive) and leaves the architecture and its budget alone. If this read sees the record, the
        study is read in full, as before. So skipping the read loses no claim and no result, and
        the claim is checked against everything any other driver wrote: nothing is evaluated twice
        and the budget holds. The records are read fresh here, never from the liveness cache.
        """
        assert self.liveness is not None
        others = self.liveness.others()
        if self.quiet is not None and others == self.quiet:
            return False
        self._read(study, skip, others)
        return True

    def _read(self, study: optuna.Study, skip: int | None, others: dict[str, Any]) -> None:
        """Read every trial not yet indexed; ``others``: the other drivers' records, read just before."""
        assert self.liveness is not None
        finished = all(self.liveness.finished(r) for r in others.values())
        self.quiet = others if finished else None
        self.claims = {}
        self.refreshed_at = time.time()
        for trial in study.get_trials(deepcopy=False):
            if trial.number in self.final:
                continue
            if trial.state == TrialState.RUNNING:
                self._running(study, trial, skip)
            elif trial.state != TrialState.WAITING:
                self.index(trial)

    def index(self, trial: FrozenTrial) -> None:
        """Count a finished trial once (evaluations and infeasible results become known architectures)."""
        if trial.number in self.final:
            return
        self.final.add(trial.number)
        info = trial.user_attrs.get("info", {})
        arch_id = trial.user_attrs.get("arch_id")
        if info.get("counted"):
            self.evaluated += 1
            if arch_id:
                self.done.setdefault(arch_id, trial)
        elif arch_id and str(info.get("error", "")).startswith("infeasible") and "duplicate_of" not in info:
            self.done.setdefault(arch_id, trial)

    def _running(self, study: optuna.Study, trial: FrozenTrial, skip: int | None) -> None:
        assert self.liveness is not None
        if not self.liveness.owner_alive(trial):
            self._fail_stale(study, trial)
            return
        claim = trial.system_attrs.get(CLAIM_ATTR)
        if claim and trial.number != skip:
            self.claims.setdefault(claim["arch_id"], trial.number)

    def _fail_stale(self, study: optuna.Study, trial: FrozenTrial) -> None:
        storage, tid = storage_of(study), trial_id(trial)
        try:
            storage.set_trial_user_attr(tid, "info", {"counted": False, "error": INTERRUPTED})
            storage.set_trial_state_values(tid, TrialState.FAIL)
        except UpdateFinishedTrialError:  # its driver (or another one) finished it meanwhile
            return
        log.info("trial %d was left running by a stopped driver: marked failed", trial.number)
        self.stale.append(storage.get_trial(tid))

    def requeue(self, study: optuna.Study) -> list[str]:
        """Queue again the architectures of interrupted evaluations not evaluated since (each once:
        the queued trial's user attr :data:`REQUEUED_ATTR` names the trial it repeats)."""
        trials = study.get_trials(deepcopy=False)
        done_before = {t.user_attrs[REQUEUED_ATTR] for t in trials if REQUEUED_ATTR in t.user_attrs}
        queued: list[str] = []
        for trial in trials:
            info = trial.user_attrs.get("info", {})
            claim = trial.system_attrs.get(CLAIM_ATTR)
            arch_id = claim["arch_id"] if claim else (  # an older run's trials have no claims
                trial.user_attrs.get("arch_id") if OWNER_ATTR not in trial.system_attrs else None)
            if (trial.state != TrialState.FAIL or not arch_id or info.get("counted") or "duplicate_of" in info
                    or not str(info.get("error", "")).startswith("interrupted") or trial.number in done_before
                    or arch_id in self.done or arch_id in queued or not trial.params):
                continue
            study.enqueue_trial(trial.params, user_attrs={REQUEUED_ATTR: trial.number})
            queued.append(arch_id)
        if queued:
            log.info("queued again %d interrupted architecture(s)", len(queued))
        return queued


def released(trial: FrozenTrial) -> bool:
    """A trial that gave its architecture back: failed, uncounted, neither a duplicate nor infeasible
    (interrupted, or withdrawn because another driver holds the architecture), or screened out by a
    pre-screen (a later batch may propose it again; its score is then reused)."""
    info = trial.user_attrs.get("info", {})
    if trial.state == TrialState.PRUNED and "screened_out" in info:
        return True
    if trial.state != TrialState.FAIL:
        return False
    error = str(info.get("error", ""))
    return not info.get("counted", False) and "duplicate_of" not in info and not error.startswith("infeasible")


def _age(trial: FrozenTrial) -> float:
    start = trial.datetime_start
    return (datetime.now() - start).total_seconds() if start else 0.0
