"""The run folder and its ledger (the Optuna study).

Layout of a run folder::

    spec.toml       the resolved spec (what ``nas resume`` reads)
    study.journal   Optuna journal storage (default; an RDB or gRPC URL can replace it)
    search.log      the driver's log
    driver.json     present while a driver runs: host, pid, start time
    summary.json    written at the end of a search (``nas show --json``'s content)
    best/           the best architecture: genotype.json (and a picture where the space draws)

Trial user attributes written by the search loop: ``arch_id``, ``genotype`` (at ask time);
``metrics`` (every metric, cheap ones included) and ``info`` (``counted``: it used budget;
``duplicate_of``; ``error``; ``curve``; timings; worker and device) when the trial is told.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import optuna
from optuna.storages.journal import BaseJournalBackend

from nas.config import SpecError

log = logging.getLogger(__name__)

JOURNAL_NAME = "study.journal"


def open_storage(url: str) -> Any:
    """An Optuna storage from a URL, for a process that writes to it (a driver or a worker).

    ``""``/``":memory:"`` in-memory; ``journal:PATH`` or a path ending in ``.journal`` a journal
    file; ``grpc://HOST:PORT`` Optuna's gRPC storage proxy; anything else an RDB URL
    (``sqlite:///...``, ``postgresql://...``). Opening never changes a journal's content: a torn
    last line is repaired only by :func:`repair_journal`, which the driver holding the run calls.
    Readers use :func:`open_study_readonly` instead.
    """
    if url in ("", ":memory:"):
        return optuna.storages.InMemoryStorage()
    if _is_journal(url):
        backend = optuna.storages.journal.JournalFileBackend(_journal_path(url))
        return optuna.storages.JournalStorage(backend)
    if url.startswith("grpc://"):
        return _grpc_proxy(url)
    return _open_rdb(url)


def _open_rdb(url: str, tries: int = 5) -> Any:
    """An RDB storage; drivers that create the tables of an empty database at once retry the loser."""
    import sqlalchemy.exc as sa

    for attempt in range(tries):
        try:
            return optuna.storages.RDBStorage(url)
        except (sa.IntegrityError, sa.ProgrammingError) as err:  # another process created the tables
            if attempt == tries - 1:
                raise SpecError(f"run.storage: cannot open {url!r}: {_first_line(err)}") from None
            time.sleep(0.5 * (attempt + 1))
        except Exception as err:  # sqlalchemy raises many kinds for bad URLs and unreachable servers
            raise SpecError(f"run.storage: cannot open {url!r}: {_first_line(err)}") from None
    raise AssertionError("unreachable")


def open_study_readonly(run_dir: str | Path, spec: Any) -> optuna.Study:
    """The run's study opened for reading only: the one way readers open a ledger.

    ``nas show``, ``report``, ``export``, the dashboard and any other reader call this. Nothing is
    created, appended or repaired, not even on a folder that is not a run: a journal is read
    without Optuna's file backend (which creates missing files), a torn last line is skipped (the
    next driver repairs it), an SQLite file is opened in SQLite's read-only mode, other RDBs
    without creating tables, and the study is loaded, never created.

    Args:
        run_dir: the run folder (holding ``spec.toml``).
        spec: the run's :class:`~nas.search.spec.RunSpec` (``load_spec(RunDir(run_dir).spec_file)``).

    Returns:
        The study; write calls on it raise ``PermissionError``.

    Raises:
        SpecError: ``run_dir`` is not a run, or its storage or study cannot be found.
    """
    folder = RunDir(run_dir)
    folder.check_run()
    url = spec.run["storage"] or folder.default_storage_url()
    storage = open_storage_readonly(url)
    try:
        return optuna.load_study(study_name=spec.name, storage=storage,
                                 sampler=optuna.samplers.RandomSampler(seed=0))
    except KeyError:
        raise SpecError(f"{folder.path}: its study {spec.name!r} is not in {url}") from None


def open_storage_readonly(url: str) -> Any:
    """The storage behind ``url`` for reading only (see :func:`open_study_readonly`); every write
    method of the returned storage raises ``PermissionError``."""
    return ReadOnlyStorage(_open_readonly(url))


def _open_readonly(url: str) -> Any:
    """A storage opened without creating, repairing or migrating anything."""
    if url in ("", ":memory:"):
        raise SpecError("run.storage: an in-memory study cannot be read after its search ended")
    if _is_journal(url):
        path = _journal_path(url)
        if not os.path.isfile(path):
            raise SpecError(f"{path}: no such journal file")
        return optuna.storages.JournalStorage(ReadOnlyJournal(path))
    if url.startswith("grpc://"):
        return _grpc_proxy(url)
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not os.path.isfile(path):
            raise SpecError(f"{path}: no such SQLite file")
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
    try:
        return optuna.storages.RDBStorage(url, skip_table_creation=True)
    except Exception as err:
        raise SpecError(f"run.storage: cannot open {url!r}: {_first_line(err)}") from None


class ReadOnlyJournal(BaseJournalBackend):
    """Reads an Optuna journal file without creating, locking or writing it; skips a torn last line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._offsets: dict[int, int] = {0: 0}  # log number -> byte offset of its line

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        start = max(n for n in self._offsets if n <= log_number_from)
        with open(self.path, "rb") as handle:
            handle.seek(self._offsets[start])
            data = handle.read()
        position, number = self._offsets[start], start
        lines = data.split(b"\n")
        for line in lines[:-1]:  # the part after the last newline is empty or a torn line
            position += len(line) + 1
            number += 1
            self._offsets[number] = position
            if number - 1 >= log_number_from:
                yield json.loads(line)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        raise PermissionError(f"{self.path}: opened read-only")


def repair_journal(path: str) -> int:
    """Cut a torn last line (left by a killed writer) so new entries start on a fresh line.

    Only the driver holding the run calls this, and it works under Optuna's journal lock, so no
    writer is half-way through an append. It never cuts more than the bytes after the last newline;
    if those bytes are a whole record that only lacks its newline, the newline is added instead.

    Returns:
        The number of bytes cut (0 when the file was whole or absent).
    """
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return 0
    lock = optuna.storages.journal.JournalFileSymlinkLock(path)
    lock.acquire()
    try:
        with open(path, "rb+") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return 0
            keep = _last_newline(handle, size) + 1
            handle.seek(keep)
            torn = handle.read()
            if _is_record(torn):
                handle.seek(0, os.SEEK_END)
                handle.write(b"\n")
                log.warning("%s: last record lacked its newline; added it", path)
                return 0
            handle.truncate(keep)
            log.warning("%s: cut a torn last line of %d bytes", path, size - keep)
            return size - keep
    finally:
        lock.release()


def _last_newline(handle: Any, size: int, chunk: int = 1 << 20) -> int:
    """Offset of the file's last newline byte, or -1 if it has none (read backwards in chunks)."""
    end = size
    while end > 0:
        begin = max(0, end - chunk)
        handle.seek(begin)
        found = handle.read(end - begin).rfind(b"\n")
        if found >= 0:
            return begin + found
        end = begin
    return -1


def _is_record(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


def _is_journal(url: str) -> bool:
    return url.startswith("journal:") or url.endswith(".journal")


def _journal_path(url: str) -> str:
    return url.removeprefix("journal:")


def _grpc_proxy(url: str) -> Any:
    host, _, port = url.removeprefix("grpc://").partition(":")
    return optuna.storages.GrpcStorageProxy(host=host, port=int(port or 13000))


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def is_storage_outage(err: BaseException) -> bool:
    """Whether ``err`` (or an error it was raised from) says the storage went away: server down,
    connection lost, gRPC proxy unreachable; not a bug."""
    import sqlalchemy.exc as sa

    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, (sa.OperationalError, sa.InterfaceError)):
            return True
        if isinstance(err, sa.DBAPIError) and err.connection_invalidated:
            return True
        if _grpc_unavailable(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def _grpc_unavailable(err: BaseException) -> bool:
    try:
        import grpc
    except ImportError:
        return False
    return isinstance(err, grpc.RpcError) and getattr(err, "code", lambda: None)() in (
        grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def describe_outage(err: BaseException) -> str:
    """One line about a lost storage."""
    return _first_line(err)


class RunDir:
    """A run's folder: spec, storage, log and the driver lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()
        self.searched = False  # set once a search loop ran here (a failed start may then not discard it)

    @property
    def spec_file(self) -> Path:
        return self.path / "spec.toml"

    @property
    def journal(self) -> Path:
        return self.path / JOURNAL_NAME

    @property
    def log_file(self) -> Path:
        return self.path / "search.log"

    @property
    def lock_file(self) -> Path:
        return self.path / "driver.json"

    def exists(self) -> bool:
        """Whether a run was started here."""
        return self.spec_file.exists()

    def default_storage_url(self) -> str:
        return f"journal:{self.journal}"

    def check_run(self) -> None:
        """``SpecError`` unless this folder holds a run."""
        if not self.path.is_dir():
            raise SpecError(f"{self.path}: no such run folder")
        if not self.exists():
            raise SpecError(f"{self.path}: not a run folder (no spec.toml)")

    def prepare_new(self, overwrite: bool) -> None:
        """Create the folder for a new run; refuse an existing run unless ``overwrite``."""
        if self.exists() and not overwrite:
            raise SpecError(f"{self.path}: a run already exists here; continue it with "
                            f"'nas resume {self.path}' or start over with --overwrite")
        if self.exists():
            self.check_not_running()
            self.clear()
        self.path.mkdir(parents=True, exist_ok=True)

    def clear(self) -> None:
        """Remove the files a run writes (the folder itself and anything else in it stay)."""
        for name in ("spec.toml", JOURNAL_NAME, "search.log", "summary.json", "driver.json"):
            (self.path / name).unlink(missing_ok=True)
        shutil.rmtree(self.path / "artifacts", ignore_errors=True)  # weights kept by keep_weights
        shutil.rmtree(self.path / "oneshot", ignore_errors=True)  # a one-shot run's supernet checkpoint, epochs

    def check_not_running(self) -> None:
        """``SpecError`` if a live driver on this host holds the run."""
        holder = self.lock_holder()
        if holder and holder.get("dir", str(self.path)) != str(self.path):
            return  # the lock was copied with the folder: it guards the original, not this copy
        if holder and holder.get("host") == socket.gethostname() and pid_alive(holder.get("pid", -1)):
            raise SpecError(f"{self.path}: a search is running on it (pid {holder['pid']}); stop it first")

    def lock_holder(self) -> dict[str, Any] | None:
        """The driver lock's content, if any."""
        try:
            return json.loads(self.lock_file.read_text())
        except (OSError, ValueError):
            return None

    def acquire(self) -> None:
        """Take the driver lock (after checking no live driver has it)."""
        self.check_not_running()
        self.lock_file.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                              "started": time.time(), "dir": str(self.path)}))

    def release(self) -> None:
        holder = self.lock_holder()
        if holder and holder.get("pid") == os.getpid():
            self.lock_file.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_READS = ("get_all_studies", "get_study_id_from_name", "get_study_name_from_id", "get_study_directions",
          "get_study_user_attrs", "get_study_system_attrs", "get_trial", "get_all_trials",
          "get_trial_id_from_study_id_trial_number")
_WRITES = ("create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr", "create_new_trial",
           "set_trial_param", "set_trial_state_values", "set_trial_intermediate_value", "set_trial_user_attr",
           "set_trial_system_attr")


def _delegate(name: str) -> Any:
    def read(self: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.inner, name)(*args, **kwargs)
    return read


def _refuse(name: str) -> Any:
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(f"the run's ledger is open read-only: {name} refused")
    return write


def _init(self: Any, inner: Any) -> None:
    self.inner = inner


ReadOnlyStorage = type("ReadOnlyStorage", (optuna.storages.BaseStorage,), {
    "__doc__": "An Optuna storage that reads through to another and refuses every write.",
    "__init__": _init, **{n: _delegate(n) for n in _READS}, **{n: _refuse(n) for n in _WRITES}})
