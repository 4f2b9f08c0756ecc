"""Embedded defaults and environment settings shared by both pipelines.

Everything here has a default that runs on a laptop with no cloud: the lake is a directory and the
warehouse a DuckDB file under ``INSIGHTFLOW_HOME``. Production swaps in blocks through flow parameters.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

REPO_ROOT = Path(__file__).resolve().parents[2]
# The dbt projects ship beside the code; INSIGHTFLOW_DBT_DIR points elsewhere (e.g. a baked image path).
DBT_DIR = Path(os.environ.get("INSIGHTFLOW_DBT_DIR") or REPO_ROOT / "dbt").resolve()

DEFAULT_HOME = "./.insightflow"
DEFAULT_DOSM_BASE_URL = "https://storage.dosm.gov.my"
DEFAULT_DATAGOVMY_BASE_URL = "https://storage.data.gov.my"


def insightflow_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding the local lake and warehouse (``INSIGHTFLOW_HOME``, default ``./.insightflow``)."""
    value = home or os.environ.get("INSIGHTFLOW_HOME") or DEFAULT_HOME
    return Path(value).expanduser().resolve()


def lake_dir(home: str | os.PathLike[str] | None = None) -> Path:
    return insightflow_home(home) / "lake"


def warehouse_path(home: str | os.PathLike[str] | None = None) -> Path:
    return insightflow_home(home) / "warehouse.duckdb"


def dbt_work_dir(home: str | os.PathLike[str] | None, project: str, target: str) -> Path:
    """Where a dbt project keeps its target/ and logs/ for one target (kept between runs: partial parsing stays warm)."""
    return insightflow_home(home) / "dbt" / f"{project}-{target}"


def dev_warehouse_env(home: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """What both dbt projects' ``dev`` profiles read: the DuckDB warehouse file and the local lake."""
    return {"INSIGHTFLOW_WAREHOUSE_PATH": str(warehouse_path(home)), "INSIGHTFLOW_LAKE_DIR": str(lake_dir(home))}


class RunHome:
    """A run's local state from its ``target``, ``settings.home`` and the dbt ``PROJECT``: both flows' runtimes mix it in."""

    PROJECT: ClassVar[str]
    target: str
    settings: Any  # a flow's settings model, with a ``home`` field

    @property
    def home(self) -> str | None:
        return self.settings.home

    @property
    def home_dir(self) -> Path:
        return insightflow_home(self.home)

    @property
    def warehouse_path(self) -> Path:
        return warehouse_path(self.home)

    @property
    def dbt_work_dir(self) -> Path:
        return dbt_work_dir(self.home, self.PROJECT, self.target)


def dosm_base_url(override: str | None = None) -> str:
    return (override or os.environ.get("INSIGHTFLOW_DOSM_BASE_URL") or DEFAULT_DOSM_BASE_URL).rstrip("/")


def datagovmy_base_url(override: str | None = None) -> str:
    return (override or os.environ.get("INSIGHTFLOW_DATAGOVMY_BASE_URL") or DEFAULT_DATAGOVMY_BASE_URL).rstrip("/")
