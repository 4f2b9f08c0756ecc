"""How an InsightFlow run is wired: the typed settings a deployment may override, and the runtime resolved once.

The flow's own parameters are what a person picks for one run (datasets, target, full refresh, the day
freshness is judged against). Everything else (where the home is, the sources' hosts, the offline sample,
which blocks, whether and how dbt runs) is one ``InsightFlowSettings`` parameter: a pydantic model whose
defaults run locally, which Prefect validates and draws as a form in the UI. ``open_runtime`` resolves it
once (the home lock, the lake, each source's URL, dbt's environment) into a ``Runtime`` that the stages
read, as dagster-open-platform's environment helpers do, instead of seventeen loose parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from prefect import get_run_logger
from pydantic import BaseModel, ConfigDict, Field, model_validator

from blocks import names
from tasks.core import config
from tasks.core.lake import Lake, LocalLake, open_lake
from tasks.core.locks import home_lock
from tasks.insightflow.contracts import DATASETS
from tasks.insightflow.ingest.fetch import source_url

Target = Literal["dev", "prod"]
PROJECT = "insightflow"


class InsightFlowSettings(BaseModel):
    """Where an InsightFlow run reads and writes, and how it builds: defaults run on a laptop with no cloud."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: str | None = Field(
        None,
        description="INSIGHTFLOW_HOME: local lake, DuckDB warehouse, dbt state (default $INSIGHTFLOW_HOME or ./.insightflow)",
    )
    sample: bool = Field(
        False, description="Fetch from a loopback server publishing the deterministic sample (offline)"
    )
    sample_faults: dict[str, str] = Field(
        default_factory=dict,
        description='With sample: serve a broken payload for a dataset to try the failure path, e.g. {"fuelprice": "html"}',
    )
    sample_release: int = Field(
        0, ge=0, description="With sample: the N-th later release (N new months, each revising the 3 before it)"
    )
    dosm_base_url: str | None = Field(
        None, description="Mirror of storage.dosm.gov.my (default $INSIGHTFLOW_DOSM_BASE_URL)"
    )
    datagovmy_base_url: str | None = Field(
        None, description="Mirror of storage.data.gov.my (default $INSIGHTFLOW_DATAGOVMY_BASE_URL)"
    )
    run_dbt: bool = Field(True, description="Build and test the dbt project after landing (false: land the lake only)")
    dbt_node_tasks: bool = Field(
        True,
        description="One Prefect task run per dbt model and test (~1.2x a plain dbt build); false runs dbt in one task",
    )
    catalog_mode: Literal["partitions", "crawler"] = Field(
        "partitions",
        description="prod: register Glue partitions directly, or start the Glue crawler named in the Athena block",
    )
    lake_block: str = Field(names.LAKE, description="S3Bucket block holding the lake (target prod)")
    aws_credentials_block: str = Field(names.AWS_CREDENTIALS, description="AwsCredentials block (target prod)")
    athena_block: str = Field(names.ATHENA, description="AthenaTarget block: dbt's Athena target, the Glue crawler")
    lock_timeout_s: float = Field(900.0, gt=0, description="How long to wait for another run holding this home's lock")

    @model_validator(mode="after")
    def _sample_options_need_the_sample(self) -> InsightFlowSettings:
        if (self.sample_faults or self.sample_release) and not self.sample:
            raise ValueError("sample_faults and sample_release apply to the offline sample: set sample too")
        if unknown := sorted(set(self.sample_faults) - set(DATASETS)):
            raise ValueError(f"sample_faults: unknown dataset(s) {', '.join(unknown)}; known: {', '.join(DATASETS)}")
        return self


def dataset_names(datasets: list[str] | None) -> list[str]:
    """The datasets a run fetches: the given ones in order (each once), or every contract; an unknown name is an error."""
    chosen = list(dict.fromkeys(datasets or DATASETS))
    if unknown := sorted(set(chosen) - set(DATASETS)):
        raise ValueError(f"unknown dataset(s) {', '.join(unknown)}; known: {', '.join(DATASETS)}")
    return chosen


@dataclass(frozen=True)
class Runtime(config.RunHome):
    """One run's environment, resolved once from its target, settings, blocks and the process environment."""

    PROJECT = PROJECT
    target: Target
    settings: InsightFlowSettings
    lake: Lake
    sample_url: str | None = None

    @property
    def warehouse(self) -> str:
        return str(self.warehouse_path) if self.target == "dev" else "athena"

    @cached_property
    def dbt_env(self) -> dict[str, str]:
        """dbt's environment: the local DuckDB and lake for dev; on prod, Athena's from the blocks (loaded on first use)."""
        if self.target == "dev":
            return config.dev_warehouse_env(self.home)
        from tasks.insightflow.warehouse.athena import load_dbt_prod_env

        return load_dbt_prod_env(
            athena_block=self.settings.athena_block, credentials_block=self.settings.aws_credentials_block
        )

    def source_url(self, dataset: str) -> str:
        """Where ``dataset`` is fetched from: the sample server, the settings' mirror, the environment's, or the real host."""
        dosm = self.sample_url or self.settings.dosm_base_url
        datagovmy = self.sample_url or self.settings.datagovmy_base_url
        return source_url(DATASETS[dataset], dosm, datagovmy)


@contextmanager
def open_runtime(target: Target, settings: InsightFlowSettings, sample_url: str | None = None) -> Iterator[Runtime]:
    """Hold the home's lock and open the lake for the run; a local lake first loses a crashed run's temporary files."""
    with home_lock(config.insightflow_home(settings.home), timeout_s=settings.lock_timeout_s, what=PROJECT):
        lake = open_lake(target, settings.home, settings.lake_block)
        if isinstance(lake, LocalLake):
            lake.sweep_temporary("raw")
            lake.sweep_temporary("history")
        if sample_url:
            get_run_logger().info("sample mode: serving the deterministic sample from %s", sample_url)
        yield Runtime(target=target, settings=settings, lake=lake, sample_url=sample_url)
