"""Three runs of the real flow on the same inputs: same warehouse, and a lake untouched after the first."""

from __future__ import annotations

import pytest

from tests.support.hardening import lake_snapshot, warehouse_checksums

pytestmark = pytest.mark.integration


def test_three_runs_on_the_same_inputs_give_the_same_warehouse_and_leave_the_lake_untouched(cold_home):
    from flows.insightflow import insightflow

    home = cold_home["home"]
    assert cold_home["summary"]["dbt"] != "skipped"
    assert cold_home["warehouse"]["fct_retail_sales_monthly"][0] > 0
    for run in (2, 3):
        state = insightflow(settings={"sample": True, "home": str(home)}, return_state=True)
        assert state.is_completed(), state.message
        summary = state.result()
        assert set(summary["datasets"].values()) == {"unchanged"}, f"run {run}: {summary}"
        assert summary["dbt"] == "skipped", f"run {run}: {summary}"
        assert warehouse_checksums(home / "warehouse.duckdb") == cold_home["warehouse"], f"run {run}"
        assert lake_snapshot(home / "lake") == cold_home["lake"], f"run {run}: a lake file was rewritten"
