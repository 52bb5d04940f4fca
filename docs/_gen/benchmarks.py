"""``benchmarks.md``: the repository's ``BENCHMARKS.md`` with its links rewritten for the site.

A link into ``docs/`` becomes relative to the page (which sits at the top of the site); a link to any
other file of the repository, which the site does not hold, becomes its path in code; web links and
anchors stay as they are.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "BENCHMARKS.md"
_INLINE = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)(\s+\"[^\"]*\")?\)")
_REFERENCE = re.compile(r"^(\s{0,3}\[[^\]]+\]:\s*)(\S+)(.*)$", re.MULTILINE)
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|#|/)", re.IGNORECASE)


def benchmarks_page(text: str | None = None) -> str:
    """The page's Markdown (``text``: BENCHMARKS.md's, read from the repository by default)."""
    text = SOURCE.read_text() if text is None else text
    text = _INLINE.sub(_inline, text)
    return _REFERENCE.sub(lambda m: m.group(1) + _target(m.group(2)) + m.group(3), text)


def _target(target: str) -> str:
    """A link target as seen from the site's top folder."""
    if _EXTERNAL.match(target):
        return target
    path = target.removeprefix("./")
    return path.removeprefix("docs/") if path.startswith("docs/") else target


def _inline(match: re.Match) -> str:
    bang, label, target, title = match.group(1), match.group(2), match.group(3), match.group(4) or ""
    rewritten = _target(target)
    if rewritten == target and not _EXTERNAL.match(target):  # a repository file outside docs/
        return f"{label} (`{target}`)" if label and not bang else f"`{target}`"
    return f"{bang}[{label}]({rewritten}{title})"
