"""How a football run is wired: the typed settings a deployment may override, and the runtime resolved once.

The flow's parameters are what a person picks for one tick (competitions, season, target, a full check or
refresh). Everything else (the home, the API or the offline sample, the blocks, where Snowflake reads the
lake, the dbt selection) is one ``FootballSettings`` parameter whose defaults run locally; Prefect
validates it and draws it as a form. ``open_runtime`` resolves it once into a ``Runtime``: the API
session (root URL and token), the lake, and dbt's environment, loaded from the blocks on first use.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Literal

from prefect import get_run_logger
from pydantic import BaseModel, ConfigDict, Field, model_validator

from blocks import names
from tasks.core import config
from tasks.core.lake import Lake, open_lake
from tasks.football.api import FetchSession, base_url, resolve_token
from tasks.football.freshness import DEFAULT_ALLOWED_DAYS

Target = Literal["dev", "prod"]
PROJECT = "football"
COMPETITION_CODE = re.compile(r"^[A-Z0-9]{2,5}$")


class FootballSettings(BaseModel):
    """Where a football tick reads and writes, and how it builds: defaults run on a laptop with no cloud."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: str | None = Field(
        None,
        description="INSIGHTFLOW_HOME: local lake, DuckDB warehouse, dbt state (default $INSIGHTFLOW_HOME or ./.insightflow)",
    )
    sample: bool = Field(False, description="Fetch from a loopback server serving the deterministic sample (offline)")
    sample_matchday: int | None = Field(
        None, ge=0, description="With sample: the season as it stood after this many matchdays (default: all played)"
    )
    football_base_url: str | None = Field(
        None, description="football-data.org API or a mirror (default $FOOTBALL_DATA_BASE_URL or the public API)"
    )
    token_block: str = Field(names.FOOTBALL_DATA_TOKEN, description="Secret block with the API token")
    snowflake_block: str = Field(names.SNOWFLAKE, description="SnowflakeConnector block (target prod)")
    lake_block: str = Field(names.LAKE, description="S3Bucket block holding the lake (target prod)")
    lake_target: Target | None = Field(
        None, description="Lake of another target than the warehouse's (default: the same)"
    )
    storage_integration: str | None = Field(
        None, description="Snowflake storage integration the COPY INTO stage reads the lake through"
    )
    snowflake_stage_url: str | None = Field(None, description="The stage's URL (default: the lake's raw/football/)")
    run_dbt_build: bool = Field(True, description="Build the dbt project after loading (false: land and load only)")
    dbt_select: list[str] | None = Field(None, description="dbt --select for the build (default: every node)")
    lock_timeout_s: float = Field(900.0, gt=0, description="How long to wait for another run holding this home's lock")
    freshness_as_of: date | None = Field(
        None, description="Judge the standings' lateness as of this day (default: today)"
    )
    stale_after_days: int = Field(
        DEFAULT_ALLOWED_DAYS, ge=1, description="Days in season without a new matchday before the standings are stale"
    )

    @model_validator(mode="after")
    def _matchday_needs_the_sample(self) -> FootballSettings:
        if self.sample_matchday is not None and not self.sample:
            raise ValueError("sample_matchday applies to the offline sample: set sample too")
        return self


def competition_codes(competitions: list[str] | None) -> list[str]:
    """The tick's competitions, upper-cased and deduplicated in order (default PL); a malformed code is an error."""
    codes = list(dict.fromkeys(c.strip().upper() for c in (competitions or ["PL"])))
    bad = [c for c in codes if not COMPETITION_CODE.match(c)]
    if bad:
        raise ValueError(f"not football-data.org competition codes: {', '.join(bad)} (e.g. PL, BL1, SA, PD, FL1, CL)")
    return codes


@dataclass(frozen=True)
class Runtime(config.RunHome):
    """One tick's environment, resolved once from its target, settings, blocks and the process environment."""

    PROJECT = PROJECT
    target: Target
    settings: FootballSettings
    lake: Lake
    session: FetchSession

    @property
    def warehouse(self) -> str:
        return str(self.warehouse_path) if self.target == "dev" else f"snowflake ({self.settings.snowflake_block})"

    @cached_property
    def dbt_env(self) -> dict[str, str]:
        """dbt's environment: the local DuckDB for dev; on prod, Snowflake's from the connector block (loaded on first use)."""
        if self.target == "dev":
            return config.dev_warehouse_env(self.home)
        from prefect_snowflake.database import SnowflakeConnector

        from tasks.football.snowflake import snowflake_dbt_env

        return snowflake_dbt_env(SnowflakeConnector.load(self.settings.snowflake_block))


@contextmanager
def open_runtime(
    target: Target, settings: FootballSettings, sample: tuple[str, str] | None = None
) -> Iterator[Runtime]:
    """The API session (the sample's ``(url, token)`` when given, else the API and the token block) and the lake."""
    if sample:
        root, token = sample
        get_run_logger().info("sample mode: serving the deterministic football-data.org sample from %s", root)
    else:
        root, token = base_url(settings.football_base_url), resolve_token(settings.token_block)
    session = FetchSession(root=root, token=token)
    try:
        lake = open_lake(settings.lake_target or target, settings.home, settings.lake_block)
        yield Runtime(target=target, settings=settings, lake=lake, session=session)
    finally:
        session.close()
