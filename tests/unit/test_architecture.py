"""The layout rules of docs/architecture.md, checked over the import graph so they cannot erode silently.

Every shipped module (the packages pyproject ships) is parsed with ``ast``; imports inside
``if TYPE_CHECKING:`` blocks are left out (they never run), function-local imports are kept (they do).
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("flows", "tasks", "blocks", "automations")
# Counted as code lines: blank lines, comments and docstrings do not make a module harder to hold in one's
# head, and the formatter's line wrapping should not decide when a step gets split.
MAX_MODULE_LINES = 300
# The flows may use their own wing, the core and the blocks; nothing else of ours.
FLOW_ALLOWED = {
    "flows.insightflow": ("tasks.insightflow", "tasks.core", "blocks"),
    "flows.football": ("tasks.football", "tasks.core", "blocks"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def shipped_files() -> list[Path]:
    return sorted(p for pkg in FIRST_PARTY for p in (REPO_ROOT / pkg).rglob("*.py") if "__pycache__" not in p.parts)


MODULES = {module_name(p): p for p in shipped_files()}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, name: str | None) -> str | None:
    """The first-party module an import binds: ``from tasks.core import config`` -> ``tasks.core.config``."""
    if name and f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    if module in MODULES:
        return module
    return None


def imports_of(path: Path) -> set[str]:
    """First-party modules imported by ``path`` at run time (TYPE_CHECKING blocks excluded)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if (target := _resolve(alias.name, None)) is not None:
                        found.add(target)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for alias in child.names:
                    if (target := _resolve(child.module, alias.name)) is not None:
                        found.add(target)
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    found.discard(module_name(path))
    return found


GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_pyproject_ships_every_package_with_its_subpackages():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    for pkg in FIRST_PARTY:
        assert f"{pkg}*" in include, f"{pkg} and its subpackages must be shipped"
    for name, path in MODULES.items():
        if path.name != "__init__.py" and name.count(".") >= 1:
            assert (path.parent / "__init__.py").exists(), f"{path.parent} is not a package (no __init__.py)"


@pytest.mark.parametrize("flow", sorted(FLOW_ALLOWED))
def test_each_flow_imports_only_its_wing_the_core_and_blocks(flow):
    allowed = FLOW_ALLOWED[flow]
    bad = sorted(m for m in GRAPH[flow] if not any(_under(m, a) for a in allowed))
    assert not bad, f"{flow} imports {bad}; allowed: {allowed}"


@pytest.mark.parametrize(
    ("wing", "other"), [("tasks.insightflow", "tasks.football"), ("tasks.football", "tasks.insightflow")]
)
def test_a_wing_never_imports_the_other_wing(wing, other):
    bad = sorted((m, i) for m, deps in GRAPH.items() if _under(m, wing) for i in deps if _under(i, other))
    assert not bad, f"{wing} must not import {other}: {bad}"


def test_the_core_imports_neither_wing_nor_the_flows():
    bad = sorted(
        (m, i)
        for m, deps in GRAPH.items()
        if _under(m, "tasks.core")
        for i in deps
        if _under(i, "tasks.insightflow") or _under(i, "tasks.football") or _under(i, "flows")
    )
    assert not bad, f"tasks.core must stay pipeline-agnostic: {bad}"


def test_no_import_cycles():
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(GRAPH.get(node, ())):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                dfs(dep)
        stack.pop()
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            dfs(name)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_one_place_chooses_the_lake_backend():
    importers = sorted(m for m, deps in GRAPH.items() if "tasks.core.lake.s3" in deps)
    assert importers == ["tasks.core.lake"], (
        f"only open_lake (tasks/core/lake/__init__.py) picks a backend: {importers}"
    )


def code_lines(path: Path) -> int:
    """Lines of code: not blank, not a comment, not part of a docstring."""
    source = path.read_text()
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    return sum(
        1
        for number, line in enumerate(source.splitlines(), 1)
        if line.strip() and not line.strip().startswith("#") and number not in docstrings
    )


def test_no_shipped_module_is_longer_than_about_300_lines_of_code():
    long = {name: n for name, path in MODULES.items() if (n := code_lines(path)) > MAX_MODULE_LINES}
    assert not long, f"split these modules (> {MAX_MODULE_LINES} lines): {long}"


def test_tests_and_benchmarks_start_prefect_servers_through_one_helper():
    helper = REPO_ROOT / "tasks" / "core" / "prefect_server.py"
    assert '"server", "start"' in helper.read_text()
    others = sorted(
        str(p.relative_to(REPO_ROOT))
        for folder in ("tests", "bench", "flows", "tasks")
        for p in (REPO_ROOT / folder).rglob("*.py")
        if p != helper and p != Path(__file__).resolve() and '"server", "start"' in p.read_text()
    )
    assert not others, f"start Prefect servers with tasks.core.prefect_server.local_prefect_server: {others}"


def test_product_code_never_imports_the_standins():
    """standins/ are test doubles (the Athena stand-in): no shipped module may lean on them, even lazily."""
    bad = sorted(
        str(path.relative_to(REPO_ROOT))
        for path in MODULES.values()
        for node in ast.walk(ast.parse(path.read_text()))
        if (isinstance(node, ast.Import) and any(_under(a.name, "standins") for a in node.names))
        or (isinstance(node, ast.ImportFrom) and node.module and _under(node.module, "standins"))
    )
    assert not bad, f"product code imports standins: {bad}"


def test_the_standins_are_not_shipped():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert not any(p.startswith("standins") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"])
    ignored = {line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()}
    assert "standins" in ignored, ".dockerignore must keep standins/ out of the image's build context"
    copies = [line for line in (REPO_ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY")]
    assert not any("standins" in line for line in copies), copies


def test_standin_modules_stay_small():
    paths = sorted((REPO_ROOT / "standins").rglob("*.py"))
    assert paths
    long = {str(p.relative_to(REPO_ROOT)): n for p in paths if (n := code_lines(p)) > MAX_MODULE_LINES}
    assert not long, f"split these stand-in modules (> {MAX_MODULE_LINES} lines): {long}"
