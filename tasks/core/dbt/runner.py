"""Run a dbt project so that, inside a flow run, every model and test is its own task run in the Prefect UI.

Both pipelines call ``run_dbt``. Profiles live beside each project (``dbt/<name>/profiles.yml``)
and read everything through ``env_var()``; the caller passes those variables in ``env`` (secrets
included), which are set for the duration of the invocation only and never logged.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tasks.core.config import DBT_DIR

DBT_CONSOLE_LOG_LEVEL = "INSIGHTFLOW_DBT_CONSOLE_LOG_LEVEL"


class DbtBuildError(RuntimeError):
    """dbt finished with failing tests or erroring models; the message names each of them."""

    transient = False  # the same data fails the same tests: no flow retry (tasks/core/orchestration.py)

    def __init__(self, project: str, failures: list[str], detail: str = ""):
        self.project, self.failures = project, failures
        listed = "\n".join(f"  - {f}" for f in failures) or f"  {detail}"
        super().__init__(f"dbt build of project '{project}' failed:\n{listed}")


@dataclass
class DbtSummary:
    """The outcome of one dbt invocation, small enough to return from a task and put in an artifact."""

    project: str
    target: str
    command: str
    elapsed_s: float
    nodes: list[dict] = field(default_factory=list)
    skipped: bool = False
    reason: str = ""

    def count(self, status: str) -> int:
        return sum(1 for n in self.nodes if n["status"] == status)

    def table(self) -> list[dict]:
        return [
            {
                "node": n["name"],
                "type": n["type"],
                "status": n["status"],
                "seconds": n["seconds"],
                "message": n["message"],
            }
            for n in self.nodes
        ]


def project_dir(name: str) -> Path:
    return DBT_DIR / name


def project_fingerprint(path: Path) -> str:
    """A hash of every file dbt reads from the project, so a changed model forces a rebuild."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel.split("/")[0] in {"target", "logs", "dbt_packages"} or rel.startswith("."):
            continue
        digest.update(rel.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _node_rows(result) -> list[dict]:
    rows = []
    for r in getattr(result, "results", None) or []:
        node = r.node
        rows.append(
            {
                "name": node.name,
                "type": str(node.resource_type).split(".")[-1].lower(),
                "status": str(r.status).split(".")[-1].lower(),
                "seconds": round(float(r.execution_time or 0.0), 3),
                "message": (r.message or "")[:300]
                if str(r.status).split(".")[-1].lower() in {"fail", "error", "warn"}
                else "",
            }
        )
    return rows


def release_duckdb() -> None:
    """Close dbt-duckdb's process-wide DuckDB connection.

    dbt-duckdb keeps one DuckDB instance per process after a run; left open, it holds the warehouse
    file's lock, so a worker or test process would keep other readers and writers out.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
    if env is not None:
        env.close()


def _invoke(cli: list[str], manifest_path: Path, node_runs: bool, source_keys: Mapping[str, str]):
    """``dbtRunner().invoke(cli)``; inside a flow run with ``node_runs``, each node also shows as a task run."""
    from dbt.cli.main import dbtRunner

    from tasks.core.dbt.node_runs import NodeRunReporter
    from tasks.core.dbt.run_context import current_run

    run = current_run() if node_runs else None
    if run is None:
        result = dbtRunner().invoke(cli)
        if current_run() is not None and getattr(result.result, "results", None):
            from tasks.core.dbt.assets import emit_build_assets

            emit_build_assets(manifest_path, result.result.results, source_keys)
        return result
    from prefect import get_run_logger

    with NodeRunReporter(run, manifest_path, get_run_logger(), source_keys) as reporter:
        return dbtRunner(callbacks=[reporter]).invoke(cli)


def run_dbt(
    project: str,
    target: str,
    env: Mapping[str, str],
    *,
    args: list[str] | None = None,
    work_dir: Path,
    in_prefect: bool = True,
    source_keys: Mapping[str, str] | None = None,
) -> DbtSummary:
    """Invoke dbt (default ``build``) on ``dbt/<project>`` for ``target``.

    ``work_dir`` holds dbt's target/ and logs/ (kept between runs so partial parsing stays warm).
    Inside a flow run each executed model and test also shows as its own task run
    (tasks/core/dbt/node_runs.py); ``in_prefect=False`` runs plain dbt only (``--fast-dbt``, and
    the benchmarks' baseline, which runs outside any flow run), and inside a flow run emits the
    models' asset events afterwards from dbt's results. Models emit asset events under prefect-dbt's keys; a source is keyed
    by ``source_keys["<source>.<table>"]`` (the asset its pipeline loaded), or not at all
    (tasks/core/dbt/assets.py). Raises ``DbtBuildError`` naming every failing node.
    """
    args = list(args or ["build"])
    path = project_dir(project)
    target_path = work_dir / "target"
    log_path = work_dir / "logs"
    cli = [
        *args,
        "--target",
        target,
        "--project-dir",
        str(path),
        "--profiles-dir",
        str(path),
        "--target-path",
        str(target_path),
        "--log-path",
        str(log_path),
    ]
    # dbt prints two lines per node to stdout; a command-line run (tasks/core/console.py) asks for
    # warnings only there, while logs/dbt.log keeps every line and the node task runs carry the rest.
    if console_level := os.environ.get(DBT_CONSOLE_LOG_LEVEL):
        cli += ["--log-level", console_level, "--log-level-file", "debug"]
    started = time.perf_counter()
    with _environment(env):
        result = _invoke(cli, target_path / "manifest.json", in_prefect, source_keys or {})
        release_duckdb()
    summary = DbtSummary(
        project=project,
        target=target,
        command=" ".join(args),
        elapsed_s=round(time.perf_counter() - started, 2),
        nodes=_node_rows(result.result),
    )
    failures = [
        f"{n['type']} {n['name']} {n['status']}: {n['message']}"
        for n in summary.nodes
        if n["status"] in {"fail", "error", "runtime error", "runtimeerr"}
    ]
    if failures or not result.success:
        detail = str(result.exception) if result.exception else "dbt reported failure"
        raise DbtBuildError(project, failures, detail)
    return summary


def read_state(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def write_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(tmp, path)


def source_freshness(project: str, target: str, env: Mapping[str, str], *, work_dir: Path) -> list[dict]:
    """``dbt source freshness`` on ``dbt/<project>``: one dict per source table with a freshness policy.

    Unlike ``run_dbt`` a stale source does not raise: warn and error are verdicts on the data, which the
    caller reports. Only dbt itself failing (no result at all) raises ``DbtBuildError``.
    """
    from dbt.cli.main import dbtRunner

    path = project_dir(project)
    cli = ["source", "freshness", "--target", target, "--project-dir", str(path), "--profiles-dir", str(path)]
    cli += ["--target-path", str(work_dir / "target"), "--log-path", str(work_dir / "logs")]
    if console_level := os.environ.get(DBT_CONSOLE_LOG_LEVEL):
        cli += ["--log-level", console_level, "--log-level-file", "debug"]
    with _environment(env):
        result = dbtRunner().invoke(cli)
        release_duckdb()
    if result.result is None:
        raise DbtBuildError(project, [], f"dbt source freshness: {result.exception or 'no result'}")
    rows = []
    for r in result.result.results:
        node = r.node
        criteria = getattr(node, "freshness", None)
        warn_after = getattr(criteria, "warn_after", None)
        rows.append(
            {
                "source": node.source_name,
                "table": node.name,
                "status": str(r.status).split(".")[-1].lower(),
                "max_loaded_at": getattr(r, "max_loaded_at", None),
                "snapshotted_at": getattr(r, "snapshotted_at", None),
                "age_s": getattr(r, "age", None),
                "warn_after": f"{warn_after.count} {warn_after.period}" if warn_after and warn_after.count else "",
                "message": (getattr(r, "message", None) or "")[:300],
            }
        )
    return rows
