"""The ledger's claim check (nas.ledger.shared): a driver alone skips re-reading the study, and still never
misses another driver's claim or result, on a real journal file opened by two storages (as two
processes do)."""

from __future__ import annotations

import optuna
from optuna.storages.journal import JournalFileBackend

from nas.bench.tabular import table_spec
from nas.executors.inline import InlineExecutor
from nas.ledger.shared import EVALUATED, Driver, Ledger
from nas.search.loop import Search, create_study
from nas.ledger.store import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def drivers(tmp_path, n=2):
    """``n`` (study, driver) pairs on one journal file, each through its own storage object."""
    url = f"journal:{tmp_path / 'shared.journal'}"
    optuna.create_study(study_name="s", storage=open_storage(url))
    out = []
    for _ in range(n):
        study = optuna.load_study(study_name="s", storage=open_storage(url))
        out.append((study, Driver(study)))
    return out


def evaluate(study, driver, ledger, arch_id):
    """What the search loop does for one architecture: ask, claim, tell it counted."""
    trial = study.ask()
    driver.asked(trial)
    trial.set_user_attr("arch_id", arch_id)
    assert ledger.claim(study, driver, trial, arch_id, budget=10) == ""
    trial.set_user_attr("info", {"counted": True})
    frozen = study.tell(trial, 1.0)
    driver.mine.discard(trial.number)
    del ledger.claims[arch_id]
    ledger.index(frozen)


def test_a_driver_alone_checks_its_claims_without_reading_the_study_again(tmp_path):
    [(study, me)] = drivers(tmp_path, 1)
    me._beat()
    ledger = Ledger.load(study, me)
    assert ledger.quiet == {}
    trial = study.ask()
    me.claim(trial, "a")
    assert ledger.confirm(study, skip=trial.number) is False


def test_a_driver_that_joins_later_is_seen_by_the_next_claim(tmp_path):
    (study, me), (other_study, other) = drivers(tmp_path)
    me._beat()
    ledger = Ledger.load(study, me)  # alone so far
    other._beat()  # a newcomer writes its record first, then claims
    other_ledger = Ledger.load(other_study, other)
    theirs = other_study.ask()
    other.asked(theirs)
    assert other_ledger.claim(other_study, other, theirs, "x", budget=10) == ""
    mine = study.ask()
    me.asked(mine)
    assert ledger.claim(study, me, mine, "x", budget=10) == f"trial #{theirs.number} of another driver claimed it too"
    assert ledger.quiet is None  # the newcomer is alive: every claim reads the study again


def test_a_claim_checked_after_a_newcomer_started_is_seen_by_the_newcomer(tmp_path):
    (study, me), (other_study, other) = drivers(tmp_path)
    me._beat()
    ledger = Ledger.load(study, me)
    mine = study.ask()
    me.asked(mine)
    assert ledger.claim(study, me, mine, "x", budget=10) == ""  # checked alone, without a full read
    other._beat()
    other_ledger = Ledger.load(other_study, other)
    assert other_ledger.claims == {"x": mine.number}  # the newcomer counts it and leaves it alone
    theirs = other_study.ask()
    other.asked(theirs)
    assert other_ledger.claim(other_study, other, theirs, "x", budget=10).endswith("claimed it too")


def test_results_of_a_driver_that_stopped_since_the_last_read_are_seen(tmp_path):
    (study, me), (other_study, other) = drivers(tmp_path)
    me._beat()
    other._beat()
    ledger = Ledger.load(study, me)  # the other driver is alive now
    other_ledger = Ledger.load(other_study, other)
    evaluate(other_study, other, other_ledger, "y")
    other.stop()  # it finished "y" and stopped after this driver's last read
    mine = study.ask()
    me.asked(mine)
    assert ledger.claim(study, me, mine, "y", budget=10) == EVALUATED
    assert ledger.quiet is not None  # it stopped: later claims need no full read until it changes
    assert ledger.confirm(study, skip=mine.number) is False


def test_results_of_a_live_driver_are_seen_between_its_heartbeats(tmp_path):
    (study, me), (other_study, other) = drivers(tmp_path)
    me._beat()
    other._beat()
    ledger = Ledger.load(study, me)
    other_ledger = Ledger.load(other_study, other)
    evaluate(other_study, other, other_ledger, "z")  # its record is unchanged since this driver's read
    mine = study.ask()
    me.asked(mine)
    assert ledger.claim(study, me, mine, "z", budget=10) == EVALUATED


def test_a_claim_past_the_studys_budget_is_withdrawn(tmp_path):
    budget = 1
    (study, me), (other_study, other) = drivers(tmp_path)
    me._beat()
    other._beat()
    ledger, other_ledger = Ledger.load(study, me), Ledger.load(other_study, other)
    theirs = other_study.ask()
    other.asked(theirs)
    assert other_ledger.claim(other_study, other, theirs, "p", budget=budget) == ""
    mine = study.ask()
    me.asked(mine)
    assert ledger.claim(study, me, mine, "q", budget=budget) == "the study's budget was taken by other drivers' claims"


def test_the_loop_appends_three_times_a_trial_and_reads_only_what_grew(tmp_path, nb201_table, monkeypatch):
    """Issue 9's loop overhead: a trial is one append for its creation, one for its claim (params,
    arch id, genotype, claim) and one for its result (metrics, info, state), and the journal is read
    only after it grew; Optuna's bare loop on NB201 makes 8 appends (create, 6 params, state) and 12
    reads a trial."""
    calls = {"append": 0, "read": 0}
    append, read = JournalFileBackend.append_logs, JournalFileBackend.read_logs

    def counted_append(self, logs):
        calls["append"] += 1
        return append(self, logs)

    def counted_read(self, log_number_from):
        calls["read"] += 1
        return read(self, log_number_from)

    monkeypatch.setattr(JournalFileBackend, "append_logs", counted_append)
    monkeypatch.setattr(JournalFileBackend, "read_logs", counted_read)
    spec = table_spec(str(nb201_table), "nb201", "test_acc", "random", 0, 60)
    url = f"journal:{tmp_path / 'loop.journal'}"
    study = create_study(spec, open_storage(url))
    calls.update(append=0, read=0)
    Search(spec, study, InlineExecutor(), url, None).run()
    trials = len(study.get_trials(deepcopy=False))
    assert calls["append"] <= 3 * trials + 5
    assert calls["read"] <= 3 * trials + 10
