"""The layout rules of docs/architecture.md, checked over the import graph so they cannot erode silently.

Every shipped module (the packages pyproject ships) is parsed with ``ast``; imports inside
``if TYPE_CHECKING:`` blocks are left out of the run-time graph (they never run) but counted for cycles
(a cycle there still means two modules that cannot be understood apart); function-local imports are kept.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

pytestmark = pytest.mark.unit

FIRST_PARTY = ("flows", "tasks", "blocks", "automations")
# Counted as code lines: blank lines, comments and docstrings do not make a module harder to hold in one's
# head, and the formatter's line wrapping should not decide when a step gets split.
MAX_MODULE_LINES = 300
# The flows may use their own wing, the core and the blocks; nothing else of ours.
# Each wing's rooms (sub-packages named by role) and the few modules that sit at the wing's top because
# every room reads them. A new module goes into a room; a new room is added here first.
ROOMS = {
    "tasks.insightflow": {
        "rooms": ("ingest", "catalog", "warehouse", "report", "sample"),
        "top": ("cli", "contracts", "freshness", "lineage", "settings", "summary"),
    },
    "tasks.football": {
        "rooms": ("sample",),
        "top": (
            "api",
            "cli",
            "freshness",
            "keys",
            "land",
            "lineage",
            "load",
            "report",
            "settings",
            "snapshots",
            "snowflake",
            "summary",
            "warehouse",
        ),
    },
    "tasks.core": {
        "rooms": ("dbt", "lake"),
        "top": (
            "assets",
            "aws",
            "charts",
            "config",
            "console",
            "http",
            "lineage",
            "locks",
            "orchestration",
            "prefect_server",
            "query",
        ),
    },
}
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


def imports_of(path: Path, type_checking: bool = False) -> set[str]:
    """First-party modules imported by ``path``: at run time, or with ``type_checking`` also for the type checker."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child) and not type_checking:
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
FULL_GRAPH = {name: imports_of(path, type_checking=True) for name, path in MODULES.items()}


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


def test_no_import_cycles_counting_type_checking_imports():
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(FULL_GRAPH.get(node, ())):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                dfs(dep)
        stack.pop()
        state[node] = 2

    for name in sorted(FULL_GRAPH):
        if name not in state:
            dfs(name)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("wing", sorted(ROOMS))
def test_every_module_of_a_wing_sits_in_a_room_or_at_its_top(wing):
    rooms, top = ROOMS[wing]["rooms"], ROOMS[wing]["top"]
    stray = sorted(
        name for name in MODULES if _under(name, wing) and name != wing and name.split(".")[2] not in (*rooms, *top)
    )
    assert not stray, f"{stray}: put each in a room of {wing} ({', '.join(rooms)}) or add the room to ROOMS"
    for room in rooms:
        assert f"{wing}.{room}" in MODULES, f"{wing}.{room} is a room, so a package with an __init__.py"
    for name in top:
        assert f"{wing}.{name}" in MODULES and MODULES[f"{wing}.{name}"].name != "__init__.py"


@pytest.mark.parametrize("wing", ["tasks.insightflow", "tasks.football"])
def test_a_room_imports_the_core_the_blocks_and_its_own_wing_only(wing):
    bad = sorted(
        (m, i)
        for m, deps in GRAPH.items()
        if _under(m, wing) and m.count(".") >= 3  # a module inside a room
        for i in deps
        if not (_under(i, "tasks.core") or _under(i, "blocks") or _under(i, wing))
    )
    assert not bad, f"a room of {wing} imports only tasks.core, blocks and {wing}: {bad}"


@pytest.mark.parametrize("wing", ["tasks.insightflow", "tasks.football"])
def test_only_the_flows_reach_into_the_sample_room(wing):
    """The offline sample is a way to run the flows, never something a step depends on."""
    bad = sorted(
        (m, i)
        for m, deps in GRAPH.items()
        if not _under(m, f"{wing}.sample") and _under(m, "tasks")
        for i in deps
        if _under(i, f"{wing}.sample")
    )
    assert not bad, f"only flows/ may import {wing}.sample: {bad}"


def test_product_code_never_imports_the_test_stand_ins():
    """standins/ (the Athena stand-in) is a test double: not shipped, never imported by what ships."""
    bad = sorted(
        name for name, path in MODULES.items() if any(m.split(".")[0] == "standins" for m in _all_imports(path))
    )
    assert not bad, f"shipped modules import standins: {bad}"


def _all_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


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


def _decorated_names(path: Path, decorator: str) -> list[tuple[str, str]]:
    """(run name, function) of each ``@<decorator>`` / ``@<decorator>(name=...)`` function: the literal
    ``name=``, else Prefect's default, the function's own name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for dec in node.decorator_list:
            target = dec.func if isinstance(dec, ast.Call) else dec
            if not (isinstance(target, ast.Name) and target.id == decorator):
                continue
            names = [k.value for k in getattr(dec, "keywords", []) if k.arg == "name"]
            name = names[0].value if names and isinstance(names[0], ast.Constant) else node.name
            found.append((name, f"{module_name(path)}.{node.name}"))
    return found


@pytest.mark.parametrize("decorator", ["task", "flow"])
def test_no_two_tasks_or_flows_share_a_name(decorator):
    """A name picks one task in the UI, the logs and automations' filters; two tasks under one name
    (football's publish and republish were both ``football-report``) cannot be told apart there."""
    by_name: dict[str, list[str]] = {}
    for path in MODULES.values():
        for name, function in _decorated_names(path, decorator):
            by_name.setdefault(name, []).append(function)
    assert len(by_name) >= (10 if decorator == "task" else 2), sorted(by_name)  # the walk found them
    shared = {name: functions for name, functions in by_name.items() if len(functions) > 1}
    assert not shared, f"@{decorator} names used more than once: {shared}"


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
