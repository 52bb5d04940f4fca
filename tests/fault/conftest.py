"""Fixtures of the fault tests: a real PostgreSQL server, Optuna's gRPC proxy in front of it."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import need
from tests.fault.pg import PostgresServer, free_port, pg_bin


def need_postgres() -> None:
    need(pg_bin("initdb") is not None and pg_bin("pg_ctl") is not None,
         "PostgreSQL server programs not found (Debian package 'postgresql': .ci/system-deps installs it)")
    need(importlib.util.find_spec("psycopg") is not None, "psycopg (PostgreSQL driver) not installed")


def _running_server():
    """A started throw-away server, closed when the fixture ends."""
    need_postgres()
    server = PostgresServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def postgres():
    """A running throw-away server for the module's tests."""
    yield from _running_server()


@pytest.fixture()
def own_postgres():
    """A server of the test's own (the test may stop and start it)."""
    yield from _running_server()


@pytest.fixture()
def grpc_proxy(postgres):
    """Optuna's gRPC storage proxy serving the PostgreSQL server, in its own process: grpc://... URL."""
    need(importlib.util.find_spec("grpc") is not None, "grpcio not installed")
    port = free_port()
    code = ("import optuna; optuna.storages.run_grpc_proxy_server("
            f"optuna.storages.RDBStorage({postgres.url!r}), host='127.0.0.1', port={port})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError(f"gRPC proxy did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
    yield f"grpc://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)
