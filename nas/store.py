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
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import optuna

from nas.config import SpecError

JOURNAL_NAME = "study.journal"


def open_storage(url: str) -> Any:
    """An Optuna storage from a URL.

    ``""``/``":memory:"`` in-memory; ``journal:PATH`` or a path ending in ``.journal`` a journal
    file; ``grpc://HOST:PORT`` Optuna's gRPC storage proxy; anything else an RDB URL
    (``sqlite:///...``, ``postgresql://...``).
    """
    if url in ("", ":memory:"):
        return optuna.storages.InMemoryStorage()
    if url.startswith("journal:") or url.endswith(".journal"):
        path = url.removeprefix("journal:")
        repair_journal(path)
        backend = optuna.storages.journal.JournalFileBackend(path)
        return optuna.storages.JournalStorage(backend)
    if url.startswith("grpc://"):
        host, _, port = url.removeprefix("grpc://").partition(":")
        return optuna.storages.GrpcStorageProxy(host=host, port=int(port or 13000))
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as err:  # sqlalchemy raises many kinds for bad URLs and unreachable servers
        raise SpecError(f"run.storage: cannot open {url!r}: {str(err).splitlines()[0]}") from None


def repair_journal(path: str) -> None:
    """Cut a half-written last line left by a killed process, so new entries start on a fresh line."""
    if not os.path.exists(path):
        return
    with open(path, "rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        chunk = min(size, 1 << 20)
        handle.seek(size - chunk)
        tail = handle.read(chunk)
        cut = tail.rfind(b"\n")
        handle.truncate(size - chunk + cut + 1 if cut >= 0 else 0)


class RunDir:
    """A run's folder: spec, storage, log and the driver lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()

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

    def check_not_running(self) -> None:
        """``SpecError`` if a live driver on this host holds the run."""
        holder = self.lock_holder()
        if holder and holder.get("host") == socket.gethostname() and _alive(holder.get("pid", -1)):
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
                                              "started": time.time()}))

    def release(self) -> None:
        holder = self.lock_holder()
        if holder and holder.get("pid") == os.getpid():
            self.lock_file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
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
