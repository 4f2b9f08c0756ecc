"""A newcomer's install and first run, timed: the README's own run command on a fresh copy of the repo.

    python bench/fresh_install.py                 # cold: empty uv and pip caches, as on a new machine
    python bench/fresh_install.py --warm          # uv's cache of this machine (a second clone)
    python bench/fresh_install.py --compare-pip   # also the old `pip install -e .` install, for reference

Takes the first ``<!-- ci:run -->`` command from README.md (as .ci/run does), splits it at the run of
``flows/insightflow.py`` and times the install part and the run part apart, in a fresh copy of the
repository's tracked files with none of the developer's Prefect/InsightFlow settings. Prints seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN_MARKER = "<!-- ci:run -->"


def readme_run_command() -> str:
    text = (REPO / "README.md").read_text()
    block = text.split(RUN_MARKER, 1)[1].split("```")[1]
    return next(line for line in block.splitlines()[1:] if line.strip())


def fresh_copy(into: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    clone = into / "insightflow"
    for name in filter(None, files.decode().split("\0")):
        source = REPO / name
        if source.exists():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    return clone


def fresh_env(work: Path, warm: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "INSIGHTFLOW_", "VIRTUAL_ENV"))}
    env["PREFECT_HOME"] = str(work / "prefect-home")
    if not warm:
        env["UV_CACHE_DIR"] = str(work / "uv-cache")
        env["PIP_NO_CACHE_DIR"] = "1"
    return env


def timed(command: str, cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", action="store_true", help="keep this machine's uv cache")
    parser.add_argument("--compare-pip", action="store_true", help="also time `pip install -e .`")
    args = parser.parse_args()

    command = readme_run_command()
    match = re.search(r"\s&&\s(\.venv/bin/python flows/insightflow\.py.*)$", command)
    if not match:
        sys.exit(f"README's run command does not end by running flows/insightflow.py: {command}")
    install, run = command[: match.start()], match.group(1)
    print(f"README run command: {command}")
    print(f"cache: {'warm (this machine)' if args.warm else 'cold (empty uv and pip caches)'}")

    def report(name: str, seconds: float) -> float:
        print(f"  {name:<52} {seconds:7.1f} s", flush=True)
        return seconds

    with tempfile.TemporaryDirectory(prefix="insightflow-fresh-") as tmp:
        work = Path(tmp)
        clone = fresh_copy(work)
        env = fresh_env(work, args.warm)
        installed = report("install (README)", timed(install, clone, env))
        first_run = report("first --sample run", timed(run, clone, env))
        report("install + first run", installed + first_run)
        if args.compare_pip:
            other = fresh_copy(work / "pip")
            command = "python3.11 -m venv .venv && .venv/bin/pip install -q -e ."
            report(
                "install with pip install -e . (before the lock)", timed(command, other, fresh_env(work / "pip", False))
            )


if __name__ == "__main__":
    main()
