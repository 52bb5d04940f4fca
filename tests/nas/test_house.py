"""The house rules of ``nas/``: no import cycles, no module-level import of ``evaluators`` or a space,
modules under ~400 lines, and Optuna's private names only in the one adapter."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAS = ROOT / "nas"
MAX_LINES = 400
ADAPTER = NAS / "ledger" / "_optuna.py"


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in NAS.rglob("*.py")}


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    """Edges between nas modules (imports anywhere in a module, functions included) and the
    module-level imports of ``evaluators``/``search_spaces``."""
    mods = _modules()
    edges: dict[str, set[str]] = {}
    upward: list[str] = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        top = set(map(id, tree.body))
        deps: set[str] = set()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:  # ``from pkg import mod`` depends on pkg.mod; ``from mod import name`` on mod
                base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for target in targets:
                if id(node) in top and target.startswith(("evaluators", "search_spaces")):
                    upward.append(f"{name} imports {target} at module level")
                hits = [m for m in mods if target == m or target.startswith(m + ".")]
                if hits:
                    deps.add(max(hits, key=len))
        edges[name] = deps - {name}
    return edges, upward


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first walk (one per back edge)."""
    state: dict[str, int] = {}
    found: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                found.append(stack[stack.index(dep):] + [dep])
            elif not state.get(dep):
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if not state.get(node):
            visit(node, [])
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_nas_has_no_import_cycles():
    edges, _ = import_graph()
    assert len(edges) > 50  # the walk saw the tree
    assert cycles(edges) == []


def test_nas_imports_no_evaluator_or_space_at_module_level():
    _, upward = import_graph()
    assert upward == []


def test_packages_import_no_package_that_imports_them_back():
    """Capabilities stand in layers: no two packages of ``nas`` import each other (through any module)."""
    edges, _ = import_graph()
    packages: dict[str, set[str]] = {}
    for module, deps in edges.items():
        package = ".".join(module.split(".")[:2])
        packages.setdefault(package, set()).update(".".join(d.split(".")[:2]) for d in deps)
    for package in packages:
        packages[package].discard(package)
    assert cycles(packages) == []


def test_modules_stay_small():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in _modules().values()}
    for folder in ("evaluators", "search_spaces"):
        sizes.update({str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in (ROOT / folder).rglob("*.py")})
    assert {path: n for path, n in sizes.items() if n > MAX_LINES} == {}


PRIVATE = re.compile(r"\boptuna\.[\w.]*\._\w+|\._(storage|trial_id|study_id|backend|log_number_offset|file_path|thread_lock"
                     r"|sync_with_backend|tell_with_warning)\b|\bJournalOperation\b|\b_tell_with_warning\b")


def test_private_optuna_names_live_only_in_the_adapter():
    offenders = []
    for folder in ("nas", "evaluators", "search_spaces"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ADAPTER:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if PRIVATE.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
    assert PRIVATE.search(ADAPTER.read_text())  # the pattern does match what the adapter holds


MAX_FUNCTION_LINES = 40


def test_functions_stay_short():
    """Functions of nas/, evaluators/ and search_spaces/ under ~40 lines (their docstrings not counted)."""
    long = []
    for folder in ("nas", "evaluators", "search_spaces"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    first = node.body[0]
                    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                        lines -= first.end_lineno - first.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []
