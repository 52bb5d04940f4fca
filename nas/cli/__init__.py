"""The ``nas`` command: one module per verb group, each registering its commands on :data:`main`."""

from nas.cli import bench, compare, describe, export, latency, report, search, train  # noqa: F401  (registers the verbs)
from nas.cli.base import main

__all__ = ["main"]
