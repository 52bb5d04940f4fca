"""MkDocs hooks: add the generated pages (``docs/_gen``) to the site as virtual files, so nothing
generated is committed and the reference cannot drift from the code."""

from __future__ import annotations

import logging

from mkdocs.structure.files import File, Files

from _gen import PAGES  # mkdocs puts this file's folder on sys.path while it loads it

log = logging.getLogger("mkdocs.hooks.reference")


def on_files(files: Files, config) -> Files:
    """Add every page of ``PAGES`` (replacing a file of the same path, e.g. a stub)."""
    for path, write in PAGES.items():
        existing = files.get_file_from_path(path)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, path, content=write()))
        log.debug("generated %s", path)
    return files
