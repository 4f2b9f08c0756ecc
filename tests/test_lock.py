"""One locked dependency set: uv.lock agrees with pyproject.toml, and everything installs from it.

The README's install, CI (which runs the README's commands) and the Dockerfile all install exactly
uv.lock (``uv sync --locked`` / ``--frozen``); these tests fail when pyproject.toml changes without
``uv lock`` or when one of the three stops installing from the lock.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

pytestmark = pytest.mark.unit


def uv(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The uv the README installs into the venv (also the test extra's ``uv`` pin)."""
    return subprocess.run(
        [sys.executable, "-m", "uv", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_lock_agrees_with_pyproject():
    result = uv("lock", "--check", cwd=REPO_ROOT)
    assert result.returncode == 0, f"uv.lock is out of date with pyproject.toml; run `uv lock`:\n{result.stderr}"


def test_the_check_fails_when_pyproject_gains_a_dependency_the_lock_lacks(tmp_path: Path):
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text()
    # A package nothing else in the lock requires, so the lock cannot already satisfy it.
    pyproject.write_text(text.replace("dependencies = [\n", 'dependencies = [\n    "six==1.16.0",\n', 1))
    assert pyproject.read_text() != text
    result = uv("lock", "--check", cwd=tmp_path)
    assert result.returncode != 0
    assert "six" in result.stderr or "update" in result.stderr.lower(), result.stderr


def test_readme_ci_and_dockerfile_install_from_the_lock():
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = {
        marker: readme.split(marker, 1)[1].split("```")[1]
        for marker in ("<!-- ci:run -->", "<!-- ci:test -->")
        if marker in readme
    }
    assert set(blocks) == {"<!-- ci:run -->", "<!-- ci:test -->"}
    for marker, block in blocks.items():
        assert re.search(r"uv sync\b[^\n]*--locked", block), f"the README's {marker} install no longer uses uv.lock"
        assert "pip install -e" not in block and "pip install -q -e" not in block, marker
    assert "--extra test" in blocks["<!-- ci:test -->"]

    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"^COPY pyproject.toml uv.lock ", dockerfile, re.M)
    assert re.search(r"uv sync --frozen --no-dev", dockerfile), "the image no longer installs exactly uv.lock"
    assert "pip install -r" not in dockerfile

    # The uv the README pins is the one the Dockerfile and the test extra pin.
    pins = set(re.findall(r"uv==([0-9.]+)", readme + (REPO_ROOT / "pyproject.toml").read_text()))
    pins |= set(re.findall(r"UV_VERSION=([0-9.]+)", dockerfile))
    assert len(pins) == 1, f"uv is pinned to different versions: {sorted(pins)}"


@pytest.mark.parametrize("package", ["boto3", "prefect", "dbt-core", "fastapi"])
def test_the_lock_pins_each_package_to_one_version(package: str):
    lock = (REPO_ROOT / "uv.lock").read_text()
    versions = re.findall(rf'^name = "{package}"\nversion = "([^"]+)"', lock, re.M)
    assert len(versions) == 1, f"{package}: {versions}"
