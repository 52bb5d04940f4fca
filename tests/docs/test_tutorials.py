"""Every tutorial in docs/tutorials/ runs as written, in a fresh folder, as a reader would run it.

How a tutorial page is read (fences must start at the beginning of a line, not indented):

- ```` ```toml title="name.toml" ```` (any language with ``title="..."``): a file, written into the
  tutorial's folder under that name before the blocks after it run.
- ```` ```bash ````: commands, run in page order with ``bash -euo pipefail`` in that folder.
- ```` ```python ```` without a title: run in page order by the venv's Python, in that folder.
- Anything else (```` ```text ````, ```` ```console ````, ```` ```toml ```` without a title ...) is
  shown, not run: output, commands for a cluster or a GPU, fragments of a spec.
- ``<!-- skip -->`` on the line before a bash or python block: shown, not run.
- ``<!-- expect: REGEX -->`` after a block that runs: its stdout and stderr together must match REGEX
  (``re.MULTILINE``). ``<!-- expect-file: PATH -->``: PATH exists in the folder once the block ran.
  The shown output beside such a comment is what the regex checks, shortened.

The folder starts empty except for what a reader has besides the installed package: the repository's
``examples/`` folder for the pages in ``NEEDS_EXAMPLES``. ``nas`` and ``python`` resolve to the venv's.
Each tutorial's wall time is printed (``-s``) and kept under ~60 s; longer ones are marked slow.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT

PAGES = ROOT / "docs" / "tutorials"
NEEDS_EXAMPLES = {"bring-your-own"}
SLOW = {"compare", "latency",  # over a minute each on one core
        "bring-your-own", "shared-studies"}  # ~40 s each: keeps make test near 15 min; .ci/run runs all four
RAY = {"search"}  # starts a local Ray instance: kept apart from the other Ray tests under xdist
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
COMMENT = re.compile(r"<!--\s*(?P<kind>skip|expect-file|expect)\s*:?\s*(?P<arg>.*?)\s*-->")
TITLE = re.compile(r'title="(?P<name>[^"]+)"')
BLOCK_TIMEOUT_S = 600


@dataclass
class Block:
    """One step of a tutorial: a file to write, or code to run, and what it must produce."""

    kind: str  # file | bash | python
    body: str
    line: int
    name: str = ""
    expect: list[str] = field(default_factory=list)
    expect_files: list[str] = field(default_factory=list)


def parse(text: str) -> list[Block]:
    """The page's files and runnable blocks in order, each with the checks that follow it."""
    blocks: list[Block] = []
    last_run: Block | None = None
    position = 0
    skip_next = False
    for fence in FENCE.finditer(text):
        last_run, skip_next = _comments(text[position:fence.start()], last_run, skip_next)
        position = fence.end()
        info = fence["info"].strip()
        language = info.split()[0] if info else ""
        line = text.count("\n", 0, fence.start()) + 1
        title = TITLE.search(info)
        if title:
            blocks.append(Block("file", fence["body"], line, name=title["name"]))
        elif language in ("bash", "python") and not skip_next:
            last_run = Block(language, fence["body"], line)
            blocks.append(last_run)
        skip_next = False
    _comments(text[position:], last_run, False)
    return blocks


def _comments(gap: str, last_run: Block | None, skip_next: bool) -> tuple[Block | None, bool]:
    """Attach the checks in the text between two fences to the last block that runs; note a skip."""
    for comment in COMMENT.finditer(gap):
        kind, arg = comment["kind"], comment["arg"]
        if kind == "skip":
            skip_next = True
            continue
        assert last_run is not None, f"<!-- {kind} --> before any block that runs"
        (last_run.expect if kind == "expect" else last_run.expect_files).append(arg)
    return last_run, skip_next


def environment() -> dict[str, str]:
    """A reader's shell: the venv's bin first, one thread per process, no Ray telemetry."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", OMP_NUM_THREADS="1",
               PYTHONUNBUFFERED="1", RAY_USAGE_STATS_ENABLED="0", MPLBACKEND="Agg")
    return env


def run_block(block: Block, folder: Path, env: dict[str, str], page: str) -> str:
    """Run one bash or python block; its stdout and stderr together."""
    command = ["bash", "-euo", "pipefail", "-c", block.body] if block.kind == "bash" else [sys.executable, "-"]
    stdin = None if block.kind == "bash" else block.body
    proc = subprocess.run(command, cwd=folder, env=env, input=stdin, capture_output=True, text=True,
                          timeout=BLOCK_TIMEOUT_S)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{page}:{block.line}: {block.kind} block exited {proc.returncode}:\n{output[-4000:]}"
    return output


def test_the_parser_reads_files_commands_skips_and_checks():
    page = ('```toml title="a.toml"\nx = 1\n```\n\n```bash\necho hi\n```\n<!-- expect: ^hi$ -->\n'
            '<!-- expect-file: a.toml -->\n```text\nhi\n```\n<!-- skip -->\n```bash\nexit 1\n```\n'
            '```python\nprint(2)\n```\n```toml\nnot = "a file"\n```\n')
    blocks = parse(page)
    assert [(b.kind, b.name) for b in blocks] == [("file", "a.toml"), ("bash", ""), ("python", "")]
    assert blocks[1].expect == ["^hi$"] and blocks[1].expect_files == ["a.toml"] and blocks[2].line == 17


def pages() -> list:
    """One test per tutorial page; slow and Ray ones marked."""
    params = []
    for path in sorted(PAGES.glob("*.md")):
        marks = [pytest.mark.slow] if path.stem in SLOW else []
        marks += [pytest.mark.xdist_group("ray")] if path.stem in RAY else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


@pytest.mark.parametrize("page", pages())
def test_tutorial_runs_as_written(page: Path, tmp_path: Path):
    blocks = parse(page.read_text())
    runs = [b for b in blocks if b.kind != "file"]
    assert runs, f"{page.name}: no bash or python block to run"
    assert any(b.expect or b.expect_files for b in runs), f"{page.name}: no <!-- expect --> check"
    if page.stem in NEEDS_EXAMPLES:
        shutil.copytree(ROOT / "examples", tmp_path / "examples",
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    env = environment()
    start = time.monotonic()
    for block in blocks:
        if block.kind == "file":
            target = tmp_path / block.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.body)
            continue
        output = run_block(block, tmp_path, env, page.name)
        for pattern in block.expect:
            assert re.search(pattern, output, re.MULTILINE), \
                f"{page.name}:{block.line}: output does not match {pattern!r}:\n{output[-4000:]}"
        for name in block.expect_files:
            assert (tmp_path / name).exists(), f"{page.name}:{block.line}: {name} was not written"
    print(f"\n{page.stem}: {time.monotonic() - start:.0f} s")
