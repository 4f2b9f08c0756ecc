"""A throwaway PostgreSQL cluster on loopback, from Debian's PostgreSQL binaries, for a Prefect server.

``initdb`` + ``pg_ctl`` under a temporary directory, on a free 127.0.0.1 port, password (SCRAM) auth,
one database; stopped and removed on exit. PostgreSQL refuses to run as root, so as root the cluster
belongs to the ``postgres`` user (``runuser``), as Debian's own clusters do. ``.ci/install-postgresql``
installs the binaries; without them ``find_bin_dir`` returns None and the caller decides (skip locally,
fail under CI).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tasks.core.prefect_server import free_port

BIN_GLOB = "/usr/lib/postgresql/*/bin"


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding initdb, pg_ctl and postgres, else None."""
    candidates = sorted(Path("/").glob(BIN_GLOB.lstrip("/")), key=lambda p: int(p.parent.name), reverse=True)
    for bin_dir in candidates:
        if all((bin_dir / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return bin_dir
    return None


def postgres_bin_dir(*, skip_without: bool) -> Path | None:
    """``find_bin_dir()``, failing the test under CI without the binaries; elsewhere skip it or return None."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL binaries missing (/usr/lib/postgresql/*/bin): .ci/install-postgresql installs them")
        if skip_without:
            pytest.skip("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin (bash .ci/install-postgresql)")
    return bin_dir


@dataclass(frozen=True)
class Cluster:
    port: int
    user: str
    password: str
    database: str
    version: str

    @property
    def url(self) -> str:
        """The server's ``PREFECT_SERVER_DATABASE_CONNECTION_URL`` (alias ``PREFECT_API_DATABASE_CONNECTION_URL``)."""
        return f"postgresql+asyncpg://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"


@contextmanager
def postgres_cluster(bin_dir: Path, database: str = "prefect") -> Iterator[Cluster]:
    """Start a new cluster (data, socket and log in a temp dir) and yield it; stop it and delete it after."""
    as_root = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="insightflow-pg-"))
    data, password = root / "data", secrets.token_hex(12)
    (root / "pwfile").write_text(password + "\n")
    if as_root:
        shutil.chown(root, "postgres")
        shutil.chown(root / "pwfile", "postgres")
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    port = free_port()

    def run(*args: str) -> str:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120, cwd=root)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    pg_ctl = str(bin_dir / "pg_ctl")
    started = False
    try:
        run(
            str(bin_dir / "initdb"), "-D", str(data), "-U", "prefect", f"--pwfile={root / 'pwfile'}",
            "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C",
        )  # fmt: skip
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
        run(pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "postgres.log"), "-w", "-t", "60", "start")
        started = True
        env = {**os.environ, "PGPASSWORD": password}
        psql = [str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "prefect", "-d", "postgres", "-tAc"]
        subprocess.run([*psql, f"create database {database}"], env=env, check=True, capture_output=True, timeout=60)
        version = subprocess.run(
            [*psql, "show server_version"], env=env, check=True, capture_output=True, text=True, timeout=60
        ).stdout.strip()
        yield Cluster(port, "prefect", password, database, version)
    finally:
        if started:
            try:
                run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
            except RuntimeError:
                pass
        shutil.rmtree(root, ignore_errors=True)
