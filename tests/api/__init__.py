"""Tests of the Python API (nas.search, nas.open, nas.Run) and of the function evaluator."""

from __future__ import annotations

import subprocess
import sys


def loaded_after(code: str, modules: tuple[str, ...], cwd: str | None = None) -> str:
    """Run ``code`` in a fresh interpreter; which of ``modules`` it loaded (and what it printed first)."""
    report = f"import sys\nprint(sorted(m for m in {modules!r} if m in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", code + "\n" + report], capture_output=True, text=True, timeout=60,
                         cwd=cwd)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()
