"""A throw-away PostgreSQL server in a temporary folder (Debian's ``postgresql`` binaries).

The server refuses to run as root, so under root every server command runs as the unprivileged
user ``nobody`` (through ``runuser``). Used by the fault tests and the shared-study benchmark.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def pg_bin(name: str) -> str | None:
    """Path of a PostgreSQL server program (Debian keeps them out of PATH), or None."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """``initdb`` + ``pg_ctl start/stop`` on a free port; ``url`` is a trust-auth superuser URL."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nas-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://nas@127.0.0.1:{self.port}/postgres"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            os.chmod(self.root, 0o755)
            self.data.mkdir()
            shutil.chown(self.data, "nobody")
            self._as_user = ["runuser", "-u", "nobody", "--"]
        self._run(pg_bin("initdb"), "-D", str(self.data), "-U", "nas", "--auth=trust", "-E", "UTF8", "--no-sync")

    def _run(self, *cmd: str | None) -> None:
        subprocess.run([*self._as_user, *[c for c in cmd if c]], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.data / "server.log"), "-o", options,
                  "-w", "start")

    def stop(self) -> None:
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        """Stop the server if it runs and delete its folder."""
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
