"""Every import of the shipped packages comes with a plain ``pip install .``.

The test venv holds the ``test`` extra too, so an import that only a test dependency brings (numpy via
pandas, once) passes every other test and fails on a newcomer's bare install. This reads the installed
package metadata instead of importing anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bare_install import REPO_ROOT, declared_requirements, runtime_closure, undeclared_imports

pytestmark = pytest.mark.unit


def test_every_import_in_the_shipped_packages_comes_with_a_plain_install():
    problems = undeclared_imports(REPO_ROOT)
    listed = "\n".join(f"  - {what}: {', '.join(places)}" for what, places in sorted(problems.items()))
    assert not problems, (
        "imported by the product but NOT brought by `pip install .` "
        f"(add to [project] dependencies, or stop importing it):\n{listed}"
    )


def test_check_names_an_import_only_a_test_extra_brings(tmp_path: Path):
    # Regression guard for the check itself: a throwaway project that declares httpx only.
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "probe"\nversion = "0"\ndependencies = ["httpx"]\n[tool.setuptools]\npackages = ["probe"]\n'
    )
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "__init__.py").write_text("")
    (tmp_path / "probe" / "mod.py").write_text(
        "import os\nimport httpx\nimport anyio\nfrom probe import other\nfrom . import sibling\n"
        "import pytest\nfrom pandas import DataFrame\nimport no_such_module_anywhere\n"
    )
    problems = undeclared_imports(tmp_path)
    assert {what.split(" ")[0] for what in problems} == {"pytest", "pandas", "no_such_module_anywhere"}
    assert problems["no_such_module_anywhere (not installed at all)"] == ["probe/mod.py:8"]
    assert next(places for what, places in problems.items() if what.startswith("pytest")) == ["probe/mod.py:6"]


def test_closure_follows_requirements_but_leaves_out_unrequested_extras():
    closure = runtime_closure(declared_requirements(REPO_ROOT))
    # prefect requires pydantic, which requires pydantic-core: two hops from the declaration.
    assert {"prefect", "pydantic", "pydantic-core"} <= closure
    # The project's own `test` extra (pytest, pandas) is not part of what `pip install .` brings.
    assert not {"pytest", "pandas"} & closure
