"""The whole InsightFlow flow on the sample: lake → DuckDB → dbt marts, checked against numbers this
test works out itself from the raw sample tables with plain Python (never from the warehouse's SQL).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tasks.insightflow.contracts import DATASETS
from tasks.insightflow.sample.data import SAMPLE_TABLES
from tests.support.prefect_runs import asset_events, asset_graph, reaches, settled_task_runs

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]


def expected_from_sample() -> dict:
    detail = SAMPLE_TABLES["iowrt_3d"]().to_pylist()
    abs_rows = [r for r in detail if r["series"] == "abs"]
    fuel = [r for r in SAMPLE_TABLES["fuelprice"]().to_pylist() if r["series_type"] == "level"]
    weekly: dict[date, list[dict]] = defaultdict(list)
    for r in fuel:
        weekly[r["date"].replace(day=1)].append(r)
    msic = SAMPLE_TABLES["msic"]().to_pylist()
    months = sorted({r["date"] for r in abs_rows})
    return {
        "fact_rows": len(abs_rows),
        "fact_sales": sum(r["sales"] for r in abs_rows),
        "fact_months": len(months),
        "groups": {r["group"] for r in msic if r["digits"] == 3},
        "indexed_groups": {r["group"] for r in abs_rows},
        "ron95_by_month": {m: statistics.fmean(w["ron95"] for w in ws) for m, ws in weekly.items()},
        "weeks_by_month": {m: len(ws) for m, ws in weekly.items()},
        "abs_by_group": {
            g: sorted((r["date"], r["sales"]) for r in abs_rows if r["group"] == g)
            for g in {r["group"] for r in abs_rows}
        },
    }


@pytest.fixture(scope="module")
def built_run(tmp_path_factory):
    """A home after one cold sample run, and that run's final state."""
    from flows.insightflow import insightflow

    home = tmp_path_factory.mktemp("home")
    state = insightflow(settings={"sample": True, "home": str(home)}, return_state=True)
    assert state.is_completed(), state.message
    return home, state


@pytest.fixture(scope="module")
def built(built_run):
    home, state = built_run
    return home, state.result()


def dbt_nodes_run(home: Path) -> dict[str, dict]:
    """dbt's own record of the last build in ``home`` (run_results.json + manifest.json), by unique_id."""
    target = home / "dbt" / "insightflow-dev" / "target"
    manifest = json.loads((target / "manifest.json").read_text())
    nodes = manifest["nodes"] | manifest.get("unit_tests", {})
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {
        r["unique_id"]: {
            "task_run_name": f"{node['resource_type']} {node['name']}",
            "status": r["status"],
            "message": r["message"],
            "seconds": r["execution_time"],
            "depends_on": node["depends_on"]["nodes"],
        }
        for r in results
        for node in [nodes[r["unique_id"]]]
    }


def query(home: Path, sql: str):
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_fact_table_matches_the_raw_sample(built):
    home, _ = built
    exp = expected_from_sample()
    rows, sales, months = query(
        home, "select count(*), sum(sales_myr_million), count(distinct month_start_date) from fct_retail_sales_monthly"
    )[0]
    assert rows == exp["fact_rows"]
    assert sales == pytest.approx(exp["fact_sales"], rel=1e-9)
    assert months == exp["fact_months"]


def test_fact_carries_that_months_average_fuel_prices(built):
    home, _ = built
    exp = expected_from_sample()
    got = dict(
        query(
            home,
            "select distinct month_start_date, avg_ron95_myr_per_litre from fct_retail_sales_monthly "
            "where avg_ron95_myr_per_litre is not null",
        )
    )
    assert got, "fuel prices should be joined for the months that have them"
    for month, value in got.items():
        assert abs(value - exp["ron95_by_month"][month]) <= 0.005 + 1e-9  # the mart rounds to 2 dp
    # Months before weekly fuel prices begin keep their sales rows, with null prices (left join).
    early = query(
        home,
        "select count(*), count(avg_ron95_myr_per_litre) from fct_retail_sales_monthly "
        "where month_start_date < date '2017-03-01'",
    )[0]
    assert early[0] == 26 * len(exp["indexed_groups"]) and early[1] == 0


def test_dimensions_cover_the_fact(built):
    home, _ = built
    exp = expected_from_sample()
    groups = {r[0] for r in query(home, "select msic_group_code from dim_msic_group")}
    assert groups == exp["groups"]
    flagged = {r[0] for r in query(home, "select msic_group_code from dim_msic_group where has_retail_trade_index")}
    assert flagged == exp["indexed_groups"]
    orphans = query(
        home,
        "select count(*) from fct_retail_sales_monthly f left join dim_date d using (date_key) "
        "where d.date_key is null",
    )[0][0]
    assert orphans == 0


def test_correlation_mart_agrees_with_an_independent_computation(built):
    home, _ = built
    exp = expected_from_sample()
    series = exp["abs_by_group"]["473"]
    growth = {m: 100 * (s / p - 1) for (m, s), (_, p) in zip(series[1:], series[:-1], strict=True)}
    ron95 = {m: round(v + 1e-9, 2) for m, v in exp["ron95_by_month"].items()}  # the mart's 2 dp means
    months = sorted(m for m in growth if m in ron95 and m.replace(day=1) != min(ron95) and _previous(m) in ron95)
    xs = [growth[m] for m in months]
    ys = [100 * (ron95[m] / ron95[_previous(m)] - 1) for m in months]
    expected = statistics.correlation(xs, ys)
    got, compared = query(
        home,
        "select sales_growth_ron95_change_correlation, months_compared "
        "from fct_fuel_retail_correlation where msic_group_code = '473'",
    )[0]
    assert compared == len(months)
    assert got == pytest.approx(expected, abs=0.02)
    assert got > 0.1  # the sample makes fuel retail follow the pump price; the mart must find the link


def _previous(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def test_artifacts_and_summary(built):
    _, summary = built
    assert summary["datasets"] == {"iowrt": "landed", "iowrt_3d": "landed", "fuelprice": "landed", "msic": "landed"}
    assert summary["dbt"].endswith("nodes")


def test_every_dbt_node_is_its_own_task_run_under_dbt_build_with_dbts_timing(built_run):
    home, state = built_run
    nodes = dbt_nodes_run(home)
    runs = settled_task_runs(state.state_details.flow_run_id, at_least=len(nodes) + 1)
    (dbt_build,) = [r for r in runs if r.name.startswith("dbt-build")]
    # nested under dbt-build: exactly the nodes dbt ran
    node_runs = {
        r.name: r for r in runs if [parent.id for parent in r.task_inputs.get("__parents__", [])] == [dbt_build.id]
    }

    assert len(nodes) > 100 and sorted(node_runs) == sorted(n["task_run_name"] for n in nodes.values())
    for node in nodes.values():
        run = node_runs[node["task_run_name"]]
        assert (run.state_name, node["status"] in {"success", "pass"}) == ("Completed", True)
        assert dbt_build.start_time <= run.start_time <= run.end_time <= dbt_build.end_time
        # the task run spans dbt's own timing of the node: taken when dbt ran it, not when it was reported
        assert node["seconds"] - 0.01 <= (run.end_time - run.start_time).total_seconds() <= node["seconds"] + 3
    fact = nodes["model.insightflow.fct_retail_sales_monthly"]
    upstream = {node_runs[nodes[uid]["task_run_name"]].id for uid in fact["depends_on"] if uid in nodes}
    waits_for = {i.id for i in node_runs["model fct_retail_sales_monthly"].task_inputs["wait_for"]}
    assert upstream and waits_for == upstream


# Which marts each dataset feeds, read off the dbt project's refs by hand (not from any manifest).
MARTS_OF = {
    "iowrt": {"fct_headline_vs_fuel_monthly"},
    "iowrt_3d": {"fct_retail_sales_monthly", "fct_fuel_retail_correlation"},
    "fuelprice": {"fct_headline_vs_fuel_monthly", "fct_fuel_retail_correlation", "fct_retail_sales_monthly"},
    "msic": {"dim_msic_group"},
}
REPORT_READS = {
    "fct_headline_vs_fuel_monthly",
    "fct_fuel_retail_correlation",
    "fct_retail_sales_monthly",
    "dim_msic_group",
}


def test_asset_events_chain_each_source_url_through_the_lake_and_dbt_to_the_report(built_run):
    home, state = built_run
    lake = f"file://{home}/lake"
    report = f"{lake}/reports/insightflow/latest.html"
    events = asset_events(state.state_details.flow_run_id, expect=(report,))
    graph = asset_graph(events)
    for name, dataset in DATASETS.items():
        source = f"http://127.0.0.1{dataset.path}"  # the sample server's loopback URL, its port left out
        raw = f"{lake}/raw/{name}"
        assert graph[raw] == {source}
        for mart in MARTS_OF[name]:
            path = reaches(graph, raw, f"duckdb://warehouse/main/{mart}")
            assert path and path[1].startswith("duckdb://warehouse/main/stg_"), (name, mart, path)
        assert reaches(graph, source, report), name
    assert graph[report] == {f"duckdb://warehouse/main/{m}" for m in REPORT_READS}
    # dbt sources are keyed as the lake dataset: no key anywhere is made of SQL, and every key is one dataset
    keys = {e["resource"]["prefect.resource.id"] for e in events} | {u for ups in graph.values() for u in ups}
    assert not [k for k in keys if "read_parquet" in k or "select" in k or "(" in k or "year=" in k]
    assert {k for k in keys if k.startswith(f"{lake}/raw/")} == {f"{lake}/raw/{n}" for n in DATASETS}

    landed = {
        e["resource"]["prefect.resource.id"]: e["payload"]
        for e in events
        if "/raw/" in e["resource"]["prefect.resource.id"] and e["event"].endswith("succeeded")
    }
    for name in DATASETS:
        table = SAMPLE_TABLES[name]()
        metadata = landed[f"{lake}/raw/{name}"]
        months = {(d.year, d.month) for d in table["date"].to_pylist()} if "date" in table.column_names else {None}
        assert metadata["rows"] == table.num_rows
        assert metadata["partitions_written"] == len(months) and metadata["partitions_unchanged"] == 0
        assert metadata["bytes"] == sum(p.stat().st_size for p in (home / "lake" / "raw" / name).rglob("*.parquet"))
        assert metadata["source_etag"]


def test_lineage_artifact_draws_every_asset_key_of_the_run(built_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

    home, state = built_run
    report = f"file://{home}/lake/reports/insightflow/latest.html"
    graph = asset_graph(asset_events(state.state_details.flow_run_id, expect=(report,)))
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["insightflow-lineage"])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])),
        )
    text = artifact.data
    diagram = text.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert diagram.startswith("flowchart LR")
    for key in set(graph) | {u for ups in graph.values() for u in ups}:
        assert f"`{key}`" in text, key
    for layer in ("Sources", "Lake datasets", "dbt staging", "dbt intermediate", "dbt marts", "Report"):
        assert f'["{layer}"]' in diagram, layer
    # one box per key, one arrow per upstream edge
    assert diagram.count("-->") == sum(len(ups) for ups in graph.values())
    assert diagram.count("✔ materialized 20") == len(graph)


def test_unchanged_rerun_relands_nothing_and_skips_dbt(built):
    from flows.insightflow import insightflow

    home, _ = built
    before = query(home, "select count(*), sum(sales_myr_million) from fct_retail_sales_monthly")
    mtimes = {p: p.stat().st_mtime_ns for p in (home / "lake").rglob("*") if p.is_file()}
    state = insightflow(settings={"sample": True, "home": str(home)}, return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert set(summary["datasets"].values()) == {"unchanged"} and summary["dbt"] == "skipped"
    assert {p: p.stat().st_mtime_ns for p in (home / "lake").rglob("*") if p.is_file()} == mtimes
    assert query(home, "select count(*), sum(sales_myr_million) from fct_retail_sales_monthly") == before
    # nothing was materialized, so no asset event: not for the lake, not for dbt, not for the report
    assert asset_events(state.state_details.flow_run_id, timeout_s=5) == []


def test_dbt_builds_only_models_whose_inputs_landed(tmp_path):
    from flows.insightflow import insightflow

    state = insightflow(
        settings={"sample": True, "home": str(tmp_path), "sample_faults": {"fuelprice": "html"}}, return_state=True
    )
    assert state.is_failed() and "fuelprice" in state.message
    events = asset_events(state.state_details.flow_run_id)
    lake = f"file://{tmp_path}/lake"
    (failed,) = [e for e in events if e["event"] == "prefect.asset.materialization.failed"]
    assert failed["resource"]["prefect.resource.id"] == f"{lake}/raw/fuelprice"
    assert "dataset fuelprice" in failed["payload"]["error"] and "Parquet" in failed["payload"]["error"]
    assert [r["prefect.resource.id"] for r in failed["related"] if r["prefect.resource.role"] == "asset"] == [
        "http://127.0.0.1/commodities/fuelprice.parquet"
    ]
    graph = asset_graph(events)
    assert not [k for k in graph if "fuelprice" in k]  # nothing downstream of it was built
    tables = {r[0] for r in query(tmp_path, "select table_name from information_schema.tables")}
    assert {"dim_msic_group", "stg_dosm__iowrt_3d"} <= tables
    assert not tables & {"fct_retail_sales_monthly", "int_fuelprice_monthly", "stg_datagovmy__fuelprice"}


def test_failing_dbt_test_fails_the_run_and_names_the_test(tmp_path):
    """A duplicated month in iowrt_3d breaks the fact's grain: the uniqueness test must fail the run."""
    import pyarrow as pa

    from flows.insightflow import insightflow
    from tasks.insightflow.sample.server import sample_server

    published = SAMPLE_TABLES["iowrt_3d"]()
    duplicated = pa.concat_tables([published, published.slice(0, 1)])
    server = sample_server()
    from tasks.insightflow.sample.data import parquet_bytes

    server.replace("/iowrt/iowrt_3d.parquet", parquet_bytes(duplicated))
    with server.running():
        state = insightflow(
            settings={"home": str(tmp_path), "dosm_base_url": server.url(), "datagovmy_base_url": server.url()},
            return_state=True,
        )
    assert state.is_failed()
    assert "dbt build of project 'insightflow' failed" in state.message
    assert "unique" in state.message
    nodes = dbt_nodes_run(tmp_path)
    runs = {r.name: r for r in settled_task_runs(state.state_details.flow_run_id, at_least=len(nodes) + 1)}
    failed = [n for n in nodes.values() if n["status"] in {"fail", "error"}]
    assert failed and all(n["task_run_name"] in runs for n in nodes.values())
    for node in failed:  # the failing test's own task run: Failed, with dbt's message, and named in the run's
        run = runs[node["task_run_name"]]
        assert run.state.is_failed() and node["message"] in run.state.message
        assert node["task_run_name"].split(" ", 1)[1] in state.message
    skipped = [n["task_run_name"] for n in nodes.values() if n["status"] == "skipped"]
    assert "model fct_retail_sales_monthly" in skipped
    assert {runs[name].state_name for name in skipped} == {"Skipped"}
    passed = [n["task_run_name"] for n in nodes.values() if n["status"] in {"success", "pass"}]
    assert passed and {runs[name].state_name for name in passed} == {"Completed"}
