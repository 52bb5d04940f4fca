"""The one adapter to Optuna's internals: every private Optuna name ``nas`` uses is used here.

Each function says why Optuna's public API does not serve. Where a public route exists (a study's
id from its name), it is taken, and the private name is not used. ``tests/nas/test_optuna_adapter.py``
checks each function against real storages (in memory, a journal file, SQLite), and
``.ci/optuna-range`` runs those tests on the lowest and highest Optuna versions ``pyproject.toml``
allows: a change of these internals in a new Optuna fails there first.

The range starts at Optuna 4.4: 4.2 has no ``UpdateFinishedTrialError`` (the journal's refusal of
a write to a finished trial, which the ledger catches, is a bare ``RuntimeError``), and 4.3's
``_tell_with_warning`` itself deep-copies the trial it has told, the copy :func:`tell_without_copy`
exists to avoid.
It ends below 5.2, after the highest version tested (5.1).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Sequence

import optuna
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import BaseJournalBackend
from optuna.storages.journal._storage import JournalOperation
from optuna.study._tell import _tell_with_warning
from optuna.trial import FrozenTrial, TrialState


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage a study reads and writes through.

    ``Study`` has no public accessor for its storage (``optuna.load_study`` may wrap the one passed
    in, e.g. an RDB storage in a cache), and the ledger needs it for what ``Study`` does not offer:
    system attributes, intermediate values written by a broker, trials read by id.
    """
    return study._storage


def study_id(study: optuna.Study) -> int:
    """The study's id in its storage, by the storage's public lookup of the study's name.

    ``Study`` keeps its id privately; ``BaseStorage.get_study_id_from_name`` serves (one storage
    read, so callers keep the id), and only :func:`storage_of` is private here.
    """
    return storage_of(study).get_study_id_from_name(study.study_name)


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """A trial's id in its storage (unique across the storage's studies, unlike its number).

    Neither ``Trial`` nor ``FrozenTrial`` exposes it; the public route,
    ``BaseStorage.get_trial_id_from_study_id_trial_number``, costs a storage read per call, and
    the search loop needs the id of every trial it submits and tells.
    """
    return trial._trial_id


def set_trial_system_attr(study: optuna.Study, trial: optuna.Trial | FrozenTrial, key: str, value: Any) -> None:
    """Set a system attribute of ``trial`` (owners, claims, parents).

    ``Trial.set_system_attr`` was deprecated in Optuna 3.1 and removed in 5.0; the storage's
    public method remains, reached through :func:`storage_of` and :func:`trial_id`.
    """
    storage_of(study).set_trial_system_attr(trial_id(trial), key, value)


def tell_without_copy(study: optuna.Study, trial: optuna.Trial, values: Sequence[float] | None,
                      state: TrialState) -> FrozenTrial:
    """Tell ``trial`` with ``state`` and ``values``; the trial as stored (read-only: never change it).

    ``Study.tell`` does the same through ``optuna.study._tell._tell_with_warning`` (validation,
    the sampler's ``after_trial``, a pruned trial's last intermediate value as its value), then
    deep-copies the trial it returns: genotypes and metrics in the user attributes, for every
    trial of the search. The stored trial is read back by id instead (storages replace a stored
    trial on change, so the object stays as told). Optuna's return value (a FrozenTrial up to
    4.3, tuples since) is not used.
    """
    _tell_with_warning(study, trial, values, state)
    return storage_of(study).get_trial(trial_id(trial))


# ----- journal storage ----------------------------------------------------------------------------------
def journal_op_code(name: str) -> int:
    """The op code Optuna's journal writes for operation ``name`` (e.g. ``"SET_TRIAL_USER_ATTR"``).

    The codes are the journal file's format, but Optuna defines them privately
    (``optuna.storages.journal._storage.JournalOperation``).

    Raises:
        KeyError: ``name`` is not a journal operation (the message lists the known ones).
    """
    try:
        return int(JournalOperation[name])
    except KeyError:
        known = ", ".join(JournalOperation.__members__)
        raise KeyError(f"unknown journal operation {name!r}; known: {known}") from None


def journal_backend(storage: Any) -> BaseJournalBackend | None:
    """The backend of a ``JournalStorage``; None for any other storage.

    ``JournalStorage`` takes its backend in its constructor and offers no accessor.
    """
    return storage._backend if isinstance(storage, JournalStorage) else None


def replace_journal_backend(storage: JournalStorage, backend: BaseJournalBackend) -> None:
    """Make a ``JournalStorage`` read and write through ``backend`` from now on.

    The run's storage is opened by whoever opens the run (a driver, a test, a benchmark); wrapping
    its backend afterwards needs the private attribute the storage reads it from.
    """
    if not isinstance(storage, JournalStorage):
        raise TypeError(f"a JournalStorage was expected, not {type(storage).__name__}")
    storage._backend = backend


def journal_file_path(backend: Any) -> str:
    """The file a ``JournalFileBackend`` appends to (kept privately by the backend)."""
    return backend._file_path


def journal_file_offset(backend: Any, log_number: int) -> int | None:
    """Where operation ``log_number`` starts in a ``JournalFileBackend``'s file, if the backend has
    read that far; None otherwise (or for another backend).

    ``read_logs`` always opens and reads the file; the backend's private index of line offsets
    says, with the file's size, whether there is anything new to read at all.
    """
    return getattr(backend, "_log_number_offset", {}).get(log_number)


def journal_lock(storage: JournalStorage) -> AbstractContextManager[Any]:
    """A ``JournalStorage``'s own lock: ``with journal_lock(storage):`` makes its other threads'
    reads and writes wait.

    The storage takes this private lock inside each public method; appending held writes and
    reading them back (:func:`replay_journal`) must be one step under the same lock.
    """
    return storage._thread_lock


def replay_journal(storage: JournalStorage) -> None:
    """Read the operations appended to the journal since the storage last read it (call holding
    :func:`journal_lock`).

    Public methods replay the journal only as part of a read or write. After appending behind the
    storage's back, its state must catch up now, and a write it refuses (to a trial another
    process finished) raises ``UpdateFinishedTrialError`` here, where the caller expects it.
    """
    storage._sync_with_backend()
