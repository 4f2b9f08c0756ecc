"""Both flows on a Prefect server backed by PostgreSQL, against the same on SQLite (issue 26).

    python bench/server_database.py              # ~6 min on a loaded 2-core machine
    python bench/server_database.py --rounds 3   # medians of 3 rounds

For each backend, in rotating order per round: a fresh ``prefect server start`` (SQLite file in a temp
PREFECT_HOME, or a throwaway cluster of Debian's PostgreSQL on a loopback port, tests/support/postgres.py),
then ``python flows/insightflow.py --sample`` and ``python flows/football.py --sample`` exactly as the
README runs them, each cold (a fresh INSIGHTFLOW_HOME), timed as whole processes (interpreter start and
imports included). Prints one FIGURE per flow and backend (median wall time) and the ratio
PostgreSQL / SQLite. Needs the PostgreSQL server binaries (``bash .ci/install-postgresql``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO_ROOT, CouldNotMeasure, Report, workdir

FLOWS = ("insightflow", "football")


def _run_flows(server, home: Path) -> dict[str, float]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "INSIGHTFLOW_"))},
        **server.client_env(),
        "INSIGHTFLOW_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    walls = {}
    for flow in FLOWS:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, f"flows/{flow}.py", "--sample"], env=env, cwd=REPO_ROOT, capture_output=True, text=True
        )
        walls[flow] = time.perf_counter() - started
        if done.returncode != 0:
            raise CouldNotMeasure(f"{flow} --sample exited {done.returncode}:\n{done.stderr[-2000:]}")
    return walls


def _one(backend: str, wd: Path, bin_dir: Path | None) -> dict[str, float]:
    from tasks.core.prefect_server import local_prefect_server
    from tests.support.postgres import postgres_cluster

    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    if backend == "sqlite":
        started = time.perf_counter()
        with local_prefect_server(wd / "server", base_env=base, timeout_s=300) as server:
            start_s = time.perf_counter() - started
            return {"server start": start_s, **_run_flows(server, wd / "home")}
    assert bin_dir is not None
    with postgres_cluster(bin_dir) as cluster:
        extra = {"PREFECT_SERVER_DATABASE_CONNECTION_URL": cluster.url}
        started = time.perf_counter()
        with local_prefect_server(wd / "server", base_env=base, extra_env=extra, timeout_s=300) as server:
            start_s = time.perf_counter() - started
            return {"server start": start_s, **_run_flows(server, wd / "home")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of both backends (medians)")
    args = parser.parse_args(argv)

    from tests.support.postgres import find_bin_dir

    report = Report("server database")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        print("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: bash .ci/install-postgresql")
        return 2
    results: dict[str, list[dict[str, float]]] = {"sqlite": [], "postgresql": []}
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores; figures are wall times)", flush=True)
    try:
        for round_ in range(args.rounds):
            order = ("sqlite", "postgresql") if round_ % 2 == 0 else ("postgresql", "sqlite")
            for backend in order:
                with workdir(f"insightflow-bench-db-{backend}-") as wd:
                    results[backend].append(_one(backend, wd, bin_dir))
                report.info(f"round {round_ + 1} {backend}: {results[backend][-1]}")
    except CouldNotMeasure as exc:
        print(f"could not measure: {exc}", file=sys.stderr)
        return 1
    for what in ("server start", *FLOWS):
        medians = {b: statistics.median(r[what] for r in results[b]) for b in results}
        for backend, value in medians.items():
            runs = ", ".join(f"{r[what]:.1f}" for r in results[backend])
            report.figure(f"{what}, {backend}", value, "s", note=f"runs: {runs}")
        report.figure(f"{what}, PostgreSQL / SQLite", medians["postgresql"] / medians["sqlite"], "x")
    print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
