"""Joining Ray: a local instance or a cluster, failing fast when the address does not answer; and the
entry point of one-off tasks (:meth:`nas.executors.Executor.run_task`)."""

from __future__ import annotations

import logging
import os
from typing import Any

from nas.config import SpecError

PROBE_TIMEOUT = 10.0  # seconds to wait for a cluster's address to accept a connection


def _call(target: str, kwargs: dict[str, Any]) -> Any:
    """``module:function(**kwargs)`` on a Ray worker."""
    import importlib

    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(**kwargs)


def _connect(address: str, log_to_driver: bool, runtime_env: dict[str, Any] | None = None) -> None:
    """Start a local Ray instance, or join the cluster at ``address`` (``SpecError`` within seconds
    when nothing answers there, instead of Ray's minutes of retries), with the job's ``runtime_env``."""
    import ray

    kwargs: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=log_to_driver)
    if runtime_env:
        kwargs["runtime_env"] = runtime_env
    _cluster_messages_to_stderr()
    address = address or os.environ.get("RAY_ADDRESS", "")
    if not address or address == "local":
        # "local": a new instance even when a `ray start` cluster runs on this host (plain ray.init()
        # would join it, and refuse num_cpus); RAY_ADDRESS, Ray's own variable, still selects a cluster.
        # Ray starts its workers at nice 15: on a host where anything else runs they starve, and the
        # trials are the search's real work. Nice 0 unless the user set RAY_worker_niceness.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(address="local", num_cpus=os.cpu_count(), **kwargs)
        return
    _probe(address)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, TimeoutError, ValueError) as err:
        raise SpecError(f"executor.address: cannot join the Ray cluster at {address!r}: {_first_line(err)}") from None


def _cluster_messages_to_stderr() -> None:
    """Ray's driver prints the cluster's error messages ("(raylet) a worker died ...") to stdout, where
    they would break ``nas search --json``; send them to stderr with the rest of the diagnostics."""
    from ray._private import worker

    original = getattr(worker, "print_to_stdstream", None)
    if original is None or getattr(original, "_nas_stderr", False):
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        original({**data, "is_err": True}, ignore_prefix)

    to_stderr._nas_stderr = True  # type: ignore[attr-defined]
    worker.print_to_stdstream = to_stderr


def _probe(address: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Fail fast when ``host:port`` (or ``ray://host:port``) does not accept a connection."""
    import socket

    if address == "auto" or address.startswith("local"):
        return  # Ray itself looks up a cluster on this host, and fails at once when there is none
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not port.isdigit():
        raise SpecError(f"executor.address: expected HOST:PORT, ray://HOST:PORT or 'auto', got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise SpecError(f"executor.address: no Ray cluster answers at {address!r} ({err.strerror or err})") from None


def _answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether ``host:port`` accepts a TCP connection."""
    import socket

    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _first_line(err: Exception) -> str:
    """The first non-empty line of an exception's text."""
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__
