"""The one adapter to Optuna's internals (nas.ledger._optuna), and the journal batching built on it,
against real Optuna storages: in memory, a journal file, SQLite.

Each test checks what ``nas`` relies on, so that a new Optuna that changes one of these internals
fails here (``.ci/optuna-range`` runs this file on the lowest and highest Optuna versions allowed).
"""

from __future__ import annotations

import copy
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import JournalStorage
from optuna.storages.journal import BaseJournalBackend, JournalFileBackend
from optuna.trial import TrialState

from nas.ledger import batching
from nas.ledger._optuna import (journal_backend, journal_file_offset, journal_file_path, journal_lock,
                                journal_op_code, replace_journal_backend, replay_journal, set_trial_system_attr,
                                storage_of, study_id, tell_without_copy, trial_id)

ROOT = Path(__file__).resolve().parents[2]
KINDS = ["memory", "journal", "sqlite"]
X = {"x": IntDistribution(0, 9)}

optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_storage(kind: str, folder: Path) -> Any:
    """A fresh storage of ``kind`` (its files in ``folder``)."""
    if kind == "memory":
        return optuna.storages.InMemoryStorage()
    if kind == "journal":
        return JournalStorage(JournalFileBackend(str(folder / "study.journal")))
    return optuna.storages.RDBStorage(f"sqlite:///{folder / 'study.db'}")


def journal_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class Recording(BaseJournalBackend):
    """A journal backend that counts the calls it passes on; ``gate`` False: reads find nothing new."""

    def __init__(self, inner: BaseJournalBackend) -> None:
        self.inner, self.reads, self.appends, self.gate = inner, 0, [], True

    def read_logs(self, log_number_from: int) -> Any:
        if not self.gate:
            return ()
        self.reads += 1
        return self.inner.read_logs(log_number_from)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self.appends.append(len(logs))
        self.inner.append_logs(logs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_the_optuna_in_use_is_one_the_project_allows():
    """pyproject's bounds hold the Optuna these tests run on (and .ci/optuna-range's, when it names one)."""
    from packaging.specifiers import SpecifierSet

    pinned = re.search(r'"optuna(>=[^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert optuna.__version__ in SpecifierSet(pinned), (optuna.__version__, pinned)
    expected = os.environ.get("NAS_OPTUNA_VERSION")
    assert expected in (None, optuna.__version__), f"expected Optuna {expected}, loaded {optuna.__version__}"


# ----- study and trial ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_storage_of_is_what_the_study_reads_and_writes(kind, tmp_path):
    given = make_storage(kind, tmp_path)
    study = optuna.create_study(study_name="s", storage=given)
    storage = storage_of(study)
    if kind != "sqlite":  # Optuna wraps an RDB storage in its cache
        assert storage is given
    storage.set_study_user_attr(study_id(study), "k", [1, 2])
    assert study.user_attrs["k"] == [1, 2]


@pytest.mark.parametrize("kind", KINDS)
def test_study_id_names_the_study_among_several(kind, tmp_path):
    storage = make_storage(kind, tmp_path)
    a = optuna.create_study(study_name="a", storage=storage)
    b = optuna.create_study(study_name="b", storage=storage)
    assert study_id(a) != study_id(b)
    assert storage.get_study_name_from_id(study_id(b)) == "b"
    b.ask()
    assert [t.number for t in storage.get_all_trials(study_id(b))] == [0]
    assert storage.get_all_trials(study_id(a)) == []


@pytest.mark.parametrize("kind", KINDS)
def test_trial_id_finds_live_and_frozen_trials_in_their_storage(kind, tmp_path):
    storage = make_storage(kind, tmp_path)
    a = optuna.create_study(study_name="a", storage=storage)
    b = optuna.create_study(study_name="b", storage=storage)
    a.ask(), a.ask()
    live = b.ask()
    [frozen] = b.get_trials(deepcopy=False)
    assert trial_id(live) == trial_id(frozen) == storage.get_trial_id_from_study_id_trial_number(study_id(b), 0)
    assert trial_id(live) != live.number  # an id is the storage's, a number the study's
    assert storage.get_trial(trial_id(live)).number == 0


@pytest.mark.parametrize("kind", KINDS)
def test_set_trial_system_attr_is_stored_with_the_trial(kind, tmp_path):
    study = optuna.create_study(storage=make_storage(kind, tmp_path))
    live = study.ask()
    set_trial_system_attr(study, live, "nas:claim", {"arch_id": "a", "driver": "d"})
    [frozen] = study.get_trials(deepcopy=False)
    set_trial_system_attr(study, frozen, "nas:owner", "d")
    [stored] = study.get_trials(deepcopy=False)
    assert stored.system_attrs["nas:claim"] == {"arch_id": "a", "driver": "d"}
    assert stored.system_attrs["nas:owner"] == "d"


# ----- telling ----------------------------------------------------------------------------------------------
class AfterTrial(optuna.samplers.RandomSampler):
    """A random sampler that notes what ``after_trial`` was told."""

    def __init__(self) -> None:
        super().__init__(seed=0)
        self.told: list[tuple[int, TrialState, Any]] = []

    def after_trial(self, study: Any, trial: Any, state: TrialState, values: Any) -> None:
        self.told.append((trial.number, state, values))


@pytest.mark.parametrize("kind", KINDS)
def test_tell_without_copy_records_state_and_values_and_tells_the_sampler(kind, tmp_path):
    sampler = AfterTrial()
    study = optuna.create_study(storage=make_storage(kind, tmp_path), sampler=sampler, directions=["maximize"] * 2)
    done, failed = study.ask(X), study.ask(X)
    done.set_user_attr("metrics", {"acc": 0.9})
    stored = tell_without_copy(study, done, [0.9, 2.0], TrialState.COMPLETE)
    assert stored.state == TrialState.COMPLETE and stored.values == [0.9, 2.0]
    assert stored.user_attrs["metrics"] == {"acc": 0.9} and stored.params == done.params
    assert tell_without_copy(study, failed, None, TrialState.FAIL).state == TrialState.FAIL
    assert [(t.state, t.values) for t in study.get_trials()] == [(TrialState.COMPLETE, [0.9, 2.0]),
                                                                 (TrialState.FAIL, None)]
    assert sampler.told == [(0, TrialState.COMPLETE, [0.9, 2.0]), (1, TrialState.FAIL, None)]


@pytest.mark.parametrize("kind", ["memory", "journal"])
def test_tell_without_copy_gives_a_pruned_trial_its_last_intermediate_value(kind, tmp_path):
    study = optuna.create_study(storage=make_storage(kind, tmp_path))
    trial = study.ask(X)
    trial.report(0.25, 1), trial.report(0.5, 2)
    stored = tell_without_copy(study, trial, None, TrialState.PRUNED)
    assert stored.state == TrialState.PRUNED and stored.value == 0.5


def test_tell_without_copy_copies_nothing_where_study_tell_deep_copies(monkeypatch):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    first, second = study.ask(X), study.ask(X)
    first.set_user_attr("genotype", {"cells": [[0, "conv"]] * 50})

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("deep copy")

    monkeypatch.setattr(copy, "deepcopy", refuse)
    assert tell_without_copy(study, first, [1.0], TrialState.COMPLETE).value == 1.0
    with pytest.raises(AssertionError, match="deep copy"):  # the test can fail: study.tell does copy
        study.tell(second, 1.0)


def test_tell_without_copy_refuses_a_trial_another_process_finished(tmp_path):
    path = str(tmp_path / "study.journal")
    mine = optuna.create_study(study_name="s", storage=JournalStorage(JournalFileBackend(path)))
    theirs = optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(path)))
    trial = mine.ask(X)
    storage_of(theirs).set_trial_state_values(trial_id(trial), TrialState.FAIL)
    with pytest.raises((ValueError, UpdateFinishedTrialError)):
        tell_without_copy(mine, trial, [1.0], TrialState.COMPLETE)
    assert storage_of(mine).get_trial(trial_id(trial)).state == TrialState.FAIL


# ----- the journal --------------------------------------------------------------------------------------------
def test_journal_op_codes_are_those_optuna_writes(tmp_path):
    path = tmp_path / "study.journal"
    study = optuna.create_study(storage=JournalStorage(JournalFileBackend(str(path))))
    trial = study.ask()
    seen = len(journal_lines(path))

    def written(action: Any) -> list[int]:
        nonlocal seen
        action()
        lines = journal_lines(path)
        new, seen = lines[seen:], len(lines)
        return [line["op_code"] for line in new]

    code = journal_op_code
    assert written(lambda: study.set_user_attr("k", 1)) == [code("SET_STUDY_USER_ATTR")]
    assert written(lambda: storage_of(study).set_study_system_attr(study_id(study), "k", 1)) == [
        code("SET_STUDY_SYSTEM_ATTR")]
    assert written(lambda: study.ask()) == [code("CREATE_TRIAL")]
    assert written(lambda: trial.suggest_int("x", 0, 9)) == [code("SET_TRIAL_PARAM")]
    assert written(lambda: trial.set_user_attr("k", 1)) == [code("SET_TRIAL_USER_ATTR")]
    assert written(lambda: set_trial_system_attr(study, trial, "k", 1)) == [code("SET_TRIAL_SYSTEM_ATTR")]
    assert written(lambda: trial.report(0.5, 1)) == [code("SET_TRIAL_INTERMEDIATE_VALUE")]
    assert written(lambda: tell_without_copy(study, trial, [1.0], TrialState.COMPLETE)) == [
        code("SET_TRIAL_STATE_VALUES")]
    assert code("CREATE_STUDY") == journal_lines(path)[0]["op_code"]


def test_an_unknown_journal_operation_lists_the_known_ones():
    with pytest.raises(KeyError, match="SET_TRIAL_USER_ATTR"):
        journal_op_code("SET_TRIAL_COLOUR")


@pytest.mark.parametrize("kind", KINDS)
def test_journal_backend_is_the_one_the_storage_was_made_with(kind, tmp_path):
    storage = make_storage(kind, tmp_path)
    backend = journal_backend(storage)
    if kind != "journal":
        assert backend is None
        with pytest.raises(TypeError):
            replace_journal_backend(storage, Recording(JournalFileBackend(str(tmp_path / "j"))))
        return
    assert isinstance(backend, JournalFileBackend)
    recording = Recording(backend)
    replace_journal_backend(storage, recording)
    assert journal_backend(storage) is recording
    study = optuna.create_study(storage=storage)
    study.set_user_attr("k", 1)
    assert recording.appends == [1, 1] and recording.reads >= 2  # create, attribute; each read back


def test_journal_file_path_and_offsets_follow_the_file(tmp_path):
    path = tmp_path / "study.journal"
    backend = JournalFileBackend(str(path))
    study = optuna.create_study(storage=JournalStorage(backend))
    study.ask(X)
    study.set_user_attr("k", 1)
    assert journal_file_path(backend) == str(path)
    lines = len(journal_lines(path))
    assert journal_file_offset(backend, 0) == 0
    assert journal_file_offset(backend, lines) == path.stat().st_size  # where the next operation will start
    assert journal_file_offset(backend, lines + 1) is None  # not read that far
    assert journal_file_offset(object(), 0) is None  # another backend


def test_journal_lock_holds_the_storages_own_lock(tmp_path):
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "study.journal")))
    study = optuna.create_study(storage=storage)
    writer = threading.Thread(target=study.set_user_attr, args=("k", 1))
    with journal_lock(storage):
        writer.start()
        writer.join(timeout=0.2)
        assert writer.is_alive()  # the storage's write waits for the lock
    writer.join(timeout=5)
    assert not writer.is_alive() and study.user_attrs == {"k": 1}


def test_replay_journal_reads_what_another_storage_appended(tmp_path):
    path = str(tmp_path / "study.journal")
    mine = JournalStorage(JournalFileBackend(path))
    optuna.create_study(study_name="s", storage=mine)
    theirs = JournalStorage(JournalFileBackend(path))
    gate = Recording(journal_backend(mine))
    replace_journal_backend(mine, gate)
    sid = mine.get_study_id_from_name("s")
    theirs.set_study_user_attr(sid, "k", 1)
    gate.gate = False
    assert mine.get_study_user_attrs(sid) == {}  # its own reads see nothing new while the gate is shut
    gate.gate = True
    with journal_lock(mine):
        replay_journal(mine)
    gate.gate = False
    assert mine.get_study_user_attrs(sid) == {"k": 1}


# ----- batching on the adapter -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_install_holds_writes_of_journal_files_only(kind, tmp_path):
    storage = make_storage(kind, tmp_path)
    assert batching.install(storage) is (kind == "journal")
    if kind == "journal":
        wrapped = journal_backend(storage)
        assert batching.install(storage) and journal_backend(storage) is wrapped  # once
    with batching.deferred(storage):  # nothing to hold elsewhere: writes go through
        study = optuna.create_study(storage=storage)
        study.ask(X).set_user_attr("k", 1)
    assert study.get_trials()[0].user_attrs == {"k": 1}


def journal_with_recording(tmp_path: Path) -> tuple[Path, JournalStorage, Recording]:
    path = tmp_path / "study.journal"
    recording = Recording(JournalFileBackend(str(path)))
    storage = JournalStorage(recording)
    assert batching.install(storage)
    return path, storage, recording


def test_deferred_writes_reach_the_file_together_when_the_block_ends(tmp_path):
    path, storage, recording = journal_with_recording(tmp_path)
    study = optuna.create_study(study_name="s", storage=storage)
    with batching.deferred(storage):
        trial = study.ask(X)  # create: appended at once, the param held
        lines = len(journal_lines(path))
        appends = len(recording.appends)
        trial.set_user_attr("arch_id", "a")
        set_trial_system_attr(study, trial, "nas:parents", ["b"])
        trial.report(0.5, 1)
        assert len(journal_lines(path)) == lines and len(recording.appends) == appends  # held
    assert recording.appends[appends:] == [4]  # param, user attr, system attr, intermediate value: one append
    new = journal_lines(path)[lines:]
    assert [line["op_code"] for line in new] == [journal_op_code(n) for n in (
        "SET_TRIAL_PARAM", "SET_TRIAL_USER_ATTR", "SET_TRIAL_SYSTEM_ATTR", "SET_TRIAL_INTERMEDIATE_VALUE")]
    other = optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(path))))
    [seen] = other.get_trials()
    assert seen.user_attrs == {"arch_id": "a"} and seen.system_attrs["nas:parents"] == ["b"]
    assert seen.intermediate_values == {1: 0.5} and "x" in seen.params


def test_flush_appends_held_writes_for_another_process_to_see(tmp_path):
    path, storage, _ = journal_with_recording(tmp_path)
    study = optuna.create_study(study_name="s", storage=storage)
    other = optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(path))))
    with batching.deferred(storage):
        trial = study.ask(X)
        trial.set_user_attr("arch_id", "a")
        assert other.get_trials()[0].user_attrs == {}
        batching.flush(storage)
        assert other.get_trials()[0].user_attrs == {"arch_id": "a"}
        tell_without_copy(study, trial, [1.0], TrialState.COMPLETE)  # the state goes out at once
        assert other.get_trials()[0].state == TrialState.COMPLETE


def test_a_read_skips_the_file_when_it_has_not_grown(tmp_path):
    path, storage, recording = journal_with_recording(tmp_path)
    study = optuna.create_study(study_name="s", storage=storage)
    study.ask(X)
    reads = recording.reads
    study.get_trials()
    assert recording.reads == reads  # the file ends where the last read did: nothing opened
    JournalStorage(JournalFileBackend(str(path))).set_study_user_attr(study_id(study), "k", 1)
    assert study.user_attrs == {"k": 1} and recording.reads == reads + 1


def test_stored_keeps_another_process_verdict_over_held_writes(tmp_path):
    path, storage, _ = journal_with_recording(tmp_path)
    study = optuna.create_study(study_name="s", storage=storage)
    other = JournalStorage(JournalFileBackend(str(path)))
    with batching.deferred(storage):
        trial = study.ask(X)
        trial.set_user_attr("metrics", {"acc": 1.0})
        other.set_trial_state_values(trial_id(trial), TrialState.FAIL)  # e.g. judged stale by another driver
        stored = batching.stored(storage, trial_id(trial))  # the held writes are refused on reading them back
    assert stored.state == TrialState.FAIL
    study.get_trials()  # nothing refused is left to raise on a later read
    reader = JournalStorage(JournalFileBackend(str(path)))
    assert reader.get_trial(trial_id(trial)).user_attrs == {}  # (this process's Trial keeps its own copy)


def test_settle_reads_past_every_refused_write(tmp_path):
    path, storage, _ = journal_with_recording(tmp_path)
    study = optuna.create_study(study_name="s", storage=storage)
    other = JournalStorage(JournalFileBackend(str(path)))
    trial = study.ask(X)
    other.set_trial_state_values(trial_id(trial), TrialState.FAIL)
    with batching.deferred(storage):
        trial.set_user_attr("a", 1)
        trial.set_user_attr("b", 2)
        with pytest.raises(UpdateFinishedTrialError):  # the first refusal surfaces on the flush's read
            batching.flush(storage)
        batching.settle(storage)  # the second one here, swallowed
    assert study.get_trials()[0].state == TrialState.FAIL  # a later read raises nothing
    lines = journal_lines(path)
    assert [line["op_code"] for line in lines[-2:]] == [journal_op_code("SET_TRIAL_USER_ATTR")] * 2
    assert JournalStorage(JournalFileBackend(str(path))).get_trial(trial_id(trial)).user_attrs == {}
