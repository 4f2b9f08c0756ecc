"""What a plain ``pip install .`` brings, and a way to run a script as if nothing else were installed.

The test venv also holds the ``test`` extra (pandas, moto, fakesnow, ...), so a product module that
imports something only a test dependency brings (numpy via pandas, once) passes every test and fails
on a newcomer's bare install. This module works out, from installed package metadata, the closure of
the project's ``[project] dependencies`` (following each requirement the way pip does: markers
evaluated here, extras only where a requirement names them), and offers two things on top:

- ``undeclared_imports(repo)``: every third-party import in the shipped packages that the closure does
  not bring, with file and line (the project's own test of its dependency declaration);
- run as a script, ``python tests/support/bare_install.py SCRIPT [ARGS...]`` runs SCRIPT as ``__main__`` with a
  ``sys.meta_path`` finder that refuses every top-level module only distributions outside the closure
  provide, so the child sees what a bare install would see (a test runs the flows this way).

Self-contained on purpose (standard library plus ``packaging``, which prefect requires): it must work
before anything else is imported in the child process.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.metadata as md
import re
import runpy
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

# Run as a script too (tests/flows/test_first_run.py), so it finds the repository without importing tests.
REPO_ROOT = Path(__file__).resolve().parents[2]

# `python3.11 -m venv` puts these in every venv, so a bare install has them too.
VENV_SEED = frozenset({"pip", "setuptools"})


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject(repo: Path) -> dict:
    return tomllib.loads((repo / "pyproject.toml").read_text())


def declared_requirements(repo: Path = REPO_ROOT) -> list[Requirement]:
    """The ``[project] dependencies`` of the project at ``repo``."""
    return [Requirement(spec) for spec in _pyproject(repo).get("project", {}).get("dependencies", [])]


def shipped_packages(repo: Path = REPO_ROOT) -> list[str]:
    """Top-level packages that ``pip install .`` ships (``[tool.setuptools] packages``)."""
    packages = _pyproject(repo).get("tool", {}).get("setuptools", {}).get("packages", [])
    return sorted({p.split(".")[0] for p in packages})


def _applies(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras | {""})


def runtime_closure(requirements: list[Requirement]) -> set[str]:
    """Canonical names of every installed distribution that installing ``requirements`` brings."""
    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    todo = [(canonical(r.name), frozenset(r.extras)) for r in requirements]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        names.add(name)
        try:
            requires = md.distribution(name).requires or []
        except md.PackageNotFoundError:
            continue  # not installed: an import of it is reported as "not installed at all"
        for spec in requires:
            requirement = Requirement(spec)
            if _applies(requirement, set(extras)):
                todo.append((canonical(requirement.name), frozenset(requirement.extras)))
    return names


def _imported_modules(tree: ast.AST) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
    return found


def undeclared_imports(repo: Path = REPO_ROOT) -> dict[str, list[str]]:
    """Third-party top-level modules imported by the shipped packages but not brought by the closure.

    Maps ``module (why)`` to the ``path:line`` places that import it; empty when everything is declared.
    """
    packages = shipped_packages(repo)
    allowed = runtime_closure(declared_requirements(repo))
    providers = md.packages_distributions()
    problems: dict[str, list[str]] = {}
    for package in packages:
        for path in sorted((repo / package).rglob("*.py")):
            for module, line in _imported_modules(ast.parse(path.read_text(), str(path))):
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in packages or top == "__future__":
                    continue
                dists = {canonical(d) for d in providers.get(top, [])}
                if dists & allowed:
                    continue
                why = (
                    "not installed at all"
                    if not dists
                    else f"from {', '.join(sorted(dists))}, which no declared dependency requires"
                )
                problems.setdefault(f"{top} ({why})", []).append(f"{path.relative_to(repo)}:{line}")
    return problems


def modules_outside_closure(repo: Path = REPO_ROOT) -> set[str]:
    """Top-level modules that only distributions outside the runtime closure provide."""
    allowed = (
        runtime_closure(declared_requirements(repo)) | VENV_SEED | {canonical(_pyproject(repo)["project"]["name"])}
    )
    return {
        module
        for module, dists in md.packages_distributions().items()
        if module not in sys.stdlib_module_names and not {canonical(d) for d in dists} & allowed
    }


class _RefuseModules(importlib.abc.MetaPathFinder):
    """Makes ``import X`` fail as on a bare install, for every X a test-only distribution brings."""

    def __init__(self, blocked: set[str]):
        self.blocked = blocked

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {fullname!r} (not brought by `pip install .`)", name=fullname)
        return None


def run_as_bare_install(script: str, args: list[str]) -> None:
    """Run ``script`` as ``python script args...`` would, with test-only distributions made unimportable."""
    blocked = modules_outside_closure()
    for module in list(sys.modules):
        if module.split(".")[0] in blocked:  # brought in at startup by a .pth file
            del sys.modules[module]
    sys.meta_path.insert(0, _RefuseModules(blocked))
    path = Path(script).resolve()
    sys.argv = [str(path), *args]
    sys.path[0] = str(path.parent)
    runpy.run_path(str(path), run_name="__main__")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python tests/support/bare_install.py SCRIPT [ARGS...]")
    run_as_bare_install(sys.argv[1], sys.argv[2:])
