"""Fewer journal syncs per trial: a trial's attribute writes are appended to the journal together.

Optuna's journal file appends and fsyncs every operation on its own: asking one NB201 trial is
seven syncs (create, six params), and the search loop adds its user attributes (arch id, genotype,
metrics, info) and system attributes (parents, constraints). Inside :func:`deferred`, writes that
only set attributes of an existing trial (params, user and system attributes, intermediate values)
are held back and appended, in order, together with the next other operation or when the block
ends: one lock and one fsync for all of them. The file's order of operations is this process's call
order, as before; other processes see the held writes a moment later, when they are appended.

Reads through this process's storage do not see held writes until they are appended, so a block
must not read back what it wrote (the search loop's ask and tell do not; Optuna's ``Trial`` keeps
its own params).

Optuna's storage re-reads the journal before every read and after every write (its private sync,
:func:`nas.ledger._optuna.replay_journal`: open, stat, read the new lines). The file is append-only,
so when its size is where the last operation read ended there is nothing new to read: its size,
seen by a fresh open as Optuna's own read sees it, answers that without reading (after a held
write, for one, nothing reached the file).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import JournalStorage
from optuna.storages.journal import BaseJournalBackend, JournalFileBackend
from optuna.trial import FrozenTrial

from nas.ledger._optuna import (journal_backend, journal_file_offset, journal_file_path, journal_lock,
                                journal_op_code, replace_journal_backend, replay_journal)

DEFERRABLE = frozenset(journal_op_code(name) for name in (
    "SET_TRIAL_PARAM", "SET_TRIAL_USER_ATTR", "SET_TRIAL_SYSTEM_ATTR", "SET_TRIAL_INTERMEDIATE_VALUE"))


class _HoldingBackend(BaseJournalBackend):
    """A journal backend that holds trial-attribute writes while ``holding`` is set."""

    def __init__(self, inner: BaseJournalBackend) -> None:
        self.inner = inner
        self.path = journal_file_path(inner)
        self.holding = False
        self.held: list[dict[str, Any]] = []

    def read_logs(self, log_number_from: int) -> Any:
        """The journal's operations from ``log_number_from`` on; none, without opening the file, when
        the file ends where that operation would start (an append-only file that has not grown)."""
        offset = journal_file_offset(self.inner, log_number_from)
        if offset is not None and _size(self.path) == offset:
            return ()
        return self.inner.read_logs(log_number_from)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        if self.holding and all(log.get("op_code") in DEFERRABLE for log in logs):
            self.held.extend(logs)
            return
        self.inner.append_logs(self.release() + logs)

    def release(self) -> list[dict[str, Any]]:
        held, self.held = self.held, []
        return held

    def flush(self) -> bool:
        if not self.held:
            return False
        self.inner.append_logs(self.release())
        return True

    def __getattr__(self, name: str) -> Any:  # snapshots and anything else the inner backend offers
        return getattr(self.inner, name)


def _size(path: str) -> int:
    """The file's size as a fresh open sees it (on NFS, opening revalidates cached attributes), -1 if unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return -1
    try:
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def install(storage: Any) -> bool:
    """Let ``storage`` (a JournalStorage) hold writes; False for other storages (nothing to do)."""
    backend = journal_backend(storage)
    if backend is None or not isinstance(getattr(backend, "inner", backend), JournalFileBackend):
        return False
    if not isinstance(backend, _HoldingBackend):
        replace_journal_backend(storage, _HoldingBackend(backend))
    return True


@contextlib.contextmanager
def deferred(storage: Any) -> Iterator[None]:
    """Hold trial-attribute writes to ``storage`` inside the block (see the module's docstring)."""
    backend = journal_backend(storage)
    if not isinstance(backend, _HoldingBackend) or backend.holding:
        yield
        return
    backend.holding = True
    try:
        yield
    finally:
        backend.holding = False
        flush(storage)


def flush(storage: Any) -> None:
    """Append the writes held so far (before anything that must see them: a worker, another driver)."""
    backend = journal_backend(storage)
    if isinstance(backend, _HoldingBackend) and backend.held:
        with journal_lock(storage):
            if backend.flush():
                replay_journal(storage)


def stored(storage: Any, trial_id: int) -> FrozenTrial:
    """A trial as the storage holds it, after appending this process's held writes (or having them
    refused: the journal refuses writes to a trial another process finished)."""
    try:
        flush(storage)
    except UpdateFinishedTrialError:
        pass
    settle(storage)
    return storage.get_trial(trial_id)


def settle(storage: Any, tries: int = 100) -> None:
    """Read the journal up to its end, past this process's own writes that were refused.

    Optuna's journal refuses a write to a finished trial when it reads the write back, raising
    :class:`UpdateFinishedTrialError` once per refused operation; several held writes appended
    together can thus raise on several later reads. Call this after catching that error.
    """
    if not isinstance(storage, JournalStorage):
        return
    for _ in range(tries):
        try:
            with journal_lock(storage):
                replay_journal(storage)
            return
        except UpdateFinishedTrialError:
            continue
