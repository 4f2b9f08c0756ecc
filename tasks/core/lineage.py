"""The lineage diagram a person can read in the open-source UI: a markdown artifact with a mermaid flowchart.

The open-source Prefect server keeps assets only as events (one step of lineage per event in the Event
Feed); Prefect Cloud draws the asset graph from those events. So each run also publishes
``<flow>-lineage``: every asset key its steps emitted this run (tasks/core/assets.py, the dbt node
reporter), plus the ones it left unchanged, grouped by layer (sources, lake, warehouse raw tables,
staging, intermediate, marts, report), each with its status in this run and its last
materialization time. What earlier runs materialized is remembered in the lake
(``lineage/<flow>.json``), so an unchanged dataset or a skipped dbt build still shows with the time
it last changed. The V2 UI (``/v2/artifacts/artifact/<id>``) draws the fenced ``mermaid`` block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from tasks.core.assets import Note, current_flow_run_id, noted
from tasks.core.lake import Lake
from tasks.core.orchestration import publish

STATE_PREFIX = "lineage"
LAYERS = {
    "source": "Sources",
    "lake": "Lake datasets",
    "raw": "Warehouse raw tables",
    "staging": "dbt staging",
    "intermediate": "dbt intermediate",
    "models": "dbt models",
    "marts": "dbt marts",
    "report": "Report",
}
STATUS_MARK = {"materialized": "✔ materialized", "failed": "✘ failed", "unchanged": "unchanged", "source": "source"}
STYLES = {
    "materialized": "fill:#d1fadf,stroke:#12b76a,color:#054f31",
    "failed": "fill:#fee4e2,stroke:#d92d20,color:#7a271a",
    "unchanged": "fill:#f2f4f7,stroke:#98a2b3,color:#344054",
    "source": "fill:#eff8ff,stroke:#2e90fa,color:#194185",
}


@dataclass
class Lineage:
    """The diagram's nodes: every key with its layer, status this run, last materialization and upstream keys."""

    nodes: dict[str, dict[str, Any]]

    def edges(self) -> list[tuple[str, str]]:
        return [(u, key) for key, node in self.nodes.items() for u in node.get("upstream", []) if u in self.nodes]


def state_key(flow: str) -> str:
    return f"{STATE_PREFIX}/{flow}.json"


def merge(previous: Mapping[str, Any], notes: list[Note], sources: Mapping[str, str]) -> tuple[Lineage, dict]:
    """This run's notes over the last known state; returns the lineage and the state to remember."""
    state = {k: dict(v) for k, v in (previous.get("assets") or {}).items()}
    this_run: dict[str, str] = {}
    for n in notes:
        last = state.get(n.key, {})
        entry = {"name": n.name, "layer": n.layer, "upstream": n.upstream, "status": n.status, "detail": n.detail}
        if n.status == "materialized":
            entry["at"] = n.at
        elif last.get("at"):
            entry["at"] = last["at"]  # a failure does not change when the asset last held good data
        state[n.key] = entry
        # Several materializations of one key in a run (a dataset per competition): a failure wins.
        this_run[n.key] = "failed" if this_run.get(n.key) == "failed" else n.status
    nodes: dict[str, dict[str, Any]] = {}
    for key, entry in state.items():
        nodes[key] = {**entry, "run_status": this_run.get(key, "unchanged")}
    upstream = {u for entry in state.values() for u in entry.get("upstream", [])}
    for key in sorted(upstream - set(nodes)) + sorted(set(sources) - set(nodes) - upstream):
        nodes[key] = {"name": key.split("://", 1)[-1], "layer": "source", "upstream": [], "run_status": "source"}
    for key, status in sources.items():
        if key in nodes:
            nodes[key]["detail"] = status
    return Lineage(nodes), {"assets": state}


def _when(at: str | None) -> str:
    return (at or "").replace("T", " ").replace("+00:00", " UTC")


def _label(node: Mapping[str, Any]) -> str:
    status = node["run_status"]
    lines = [node["name"]]
    when = _when(node.get("at"))
    if status == "source":
        lines.append(node.get("detail") or "referenced")
    elif status == "materialized":
        lines.append(f"{STATUS_MARK[status]} {when}")
    else:
        lines.append(f"{STATUS_MARK[status]} this run")
        lines.append(f"last materialized {when}" if when else "never materialized")
    return "<br/>".join(line.replace('"', "'").replace("<", "‹").replace(">", "›") for line in lines)


def mermaid(lineage: Lineage) -> str:
    """A left-to-right flowchart, one subgraph per layer, nodes coloured by their status in this run."""
    ids = {key: f"n{i}" for i, key in enumerate(sorted(lineage.nodes, key=_order(lineage)))}
    lines = ["flowchart LR"]
    for layer, title in LAYERS.items():
        members = [k for k in ids if lineage.nodes[k]["layer"] == layer]
        if not members:
            continue
        lines.append(f'    subgraph layer_{layer}["{title}"]')
        lines += [f'        {ids[k]}["{_label(lineage.nodes[k])}"]' for k in members]
        lines.append("    end")
    lines += [f"    {ids[u]} --> {ids[d]}" for u, d in lineage.edges()]
    for status, style in STYLES.items():
        members = [ids[k] for k in ids if lineage.nodes[k]["run_status"] == status]
        if members:
            lines.append(f"    classDef {status} {style}")
            lines.append(f"    class {','.join(members)} {status}")
    return "\n".join(lines)


def _order(lineage: Lineage):
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    return lambda key: (rank.get(lineage.nodes[key]["layer"], len(rank)), lineage.nodes[key]["name"], key)


def markdown(flow: str, lineage: Lineage) -> str:
    rows = [
        f"| {LAYERS.get(n['layer'], n['layer'])} | `{key}` | {STATUS_MARK[n['run_status']]} "
        f"| {_when(n.get('at')) or n.get('detail', '')} |"
        for key, n in sorted(lineage.nodes.items(), key=lambda kv: _order(lineage)(kv[0]))
    ]
    return "\n".join(
        [
            f"## {flow}: lineage from source to report",
            "",
            "Each box is an asset key this pipeline emits events for; its status in this run and when it was",
            "last materialized. The same keys are in the Event Feed (filter by resource) and, on Prefect Cloud,",
            "in the asset graph.",
            "",
            "```mermaid",
            mermaid(lineage),
            "```",
            "",
            "| Layer | Asset key | This run | Last materialized |",
            "|---|---|---|---|",
            *rows,
        ]
    )


def publish_lineage(flow: str, lake: Lake, sources: Mapping[str, str], flow_run_id: UUID | None = None) -> Lineage:
    """Publish the ``<flow>-lineage`` artifact from this run's asset notes; remember them in the lake.

    ``sources`` maps each source key this run read to what happened to it (``HTTP 200``, ``304``...).
    """
    run_id = flow_run_id or current_flow_run_id()
    notes = noted(run_id)
    lineage = Lineage({})
    try:  # the diagram is a view of work already done and recorded as events: never fail the run for it
        lineage, state = merge(lake.read_json(state_key(flow)) or {}, notes, sources)
        if notes:
            lake.write_json(state_key(flow), state)
        publish(
            f"the {flow}-lineage artifact",
            create_markdown_artifact,
            markdown(flow, lineage),
            key=f"{flow}-lineage",
            description=f"{flow}: asset lineage, source to report",
        )
    except Exception as exc:
        get_run_logger().warning("lineage: could not publish %s-lineage: %s", flow, exc)
    return lineage
