"""Make the example plugin (``examples/own_space``) visible without pip or a network: its
``<name>.dist-info`` (``METADATA`` and the ``entry_points.txt`` built from its ``pyproject.toml``, as
an install would write them) in a folder that goes on ``sys.path`` or ``PYTHONPATH``, beside the
example's own folder for its code.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib
import os
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Iterator

from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "own_space"


def write_dist_info(folder: Path) -> Path:
    """Write the example's dist-info into ``folder`` (created if needed); returns ``folder``."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    info = folder / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    groups = [f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in entries.items())
              for group, entries in project["entry-points"].items()]
    (info / "entry_points.txt").write_text("\n".join(groups))
    return folder


def python_path(folder: Path) -> str:
    """``PYTHONPATH`` for a subprocess that should see the plugin (dist-info in ``folder``)."""
    return os.pathsep.join([str(folder), str(EXAMPLE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)


@functools.cache
def session_folder() -> Path:
    """A dist-info folder for this process, removed when it exits (the contract test needs one at import)."""
    folder = Path(tempfile.mkdtemp(prefix="nasforge-plugin-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return write_dist_info(folder)


@contextlib.contextmanager
def visible(folder: Path | None = None) -> Iterator[None]:
    """The plugin registered (entry points) and importable inside the block, as installed; not after."""
    entries = [str(folder or session_folder()), str(EXAMPLE)]
    sys.path[:0] = entries
    importlib.invalidate_caches()
    try:
        yield
    finally:
        for entry in entries:
            sys.path.remove(entry)
