"""Asset keys of dbt nodes: prefect-dbt's ``<adapter>://<relation>`` for models, the caller's keys for sources.

prefect-dbt keys a node by its relation name (``format_resource_id``): ``"warehouse"."main"."stg_dosm__iowrt"``
on DuckDB becomes ``duckdb://warehouse/main/stg_dosm__iowrt``, and the same key fills a Prefect Cloud asset
graph whether prefect-dbt's runner or our node reporter emitted it. For a *source*, though, the
relation is whatever the adapter reads: on DuckDB our sources are ``read_parquet(…)`` SQL over the
lake, and a key made of that SQL changes with the lake path and any edit and never meets the asset
that landed the data. A source therefore takes the key its pipeline gives it (the lake dataset, the
warehouse raw table), by ``<source name>.<table>``; a source without one, or any relation that is
not a plain dotted name, gets no key at all (never one built from SQL).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# A relation dbt can name: up to three dotted parts, each an identifier, optionally quoted.
PLAIN_RELATION = re.compile(r'^(?:"[^"().\s]+"|`[^`().\s]+`|[\w$-]+)(?:\.(?:"[^"().\s]+"|`[^`().\s]+`|[\w$-]+)){0,2}$')
ASSET_DESCRIPTION_LIMIT = 2_500
# dbt folders under models/ that name a layer of the diagram; other models are shown as "models".
LAYERS = ("staging", "intermediate", "marts")
# Node types that write a relation, hence materialize an asset.
MATERIALIZED_TYPES = frozenset({"model", "seed", "snapshot"})


def read_manifest(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def source_name(entry: Mapping[str, Any]) -> str:
    """``<source name>.<table>`` for a source entry of the manifest, '' for any other node."""
    if entry.get("resource_type") != "source":
        return ""
    return f"{entry.get('source_name')}.{entry.get('name')}"


def layer(entry: Mapping[str, Any]) -> str:
    fqn = entry.get("fqn") or []
    return next((part for part in fqn[1:-1] if part in LAYERS), "models")


def node_asset(entry: Mapping[str, Any], adapter: str | None, source_keys: Mapping[str, str]) -> dict[str, str] | None:
    """The event resource (key, name, description) of one manifest entry, or None if it has no stable key."""
    from prefect_dbt.utilities import format_asset_name, format_resource_id

    if entry.get("resource_type") == "source":
        key = source_keys.get(source_name(entry))
        name = entry.get("name") or ""
    else:
        relation = (entry.get("relation_name") or "").strip()
        if not relation or not adapter or not PLAIN_RELATION.match(relation):
            return None
        key, name = format_resource_id(adapter, relation), format_asset_name(relation)
    if not key:
        return None
    resource = {"prefect.resource.id": key, "prefect.resource.name": name}
    if description := (entry.get("description") or "")[:ASSET_DESCRIPTION_LIMIT]:
        resource["prefect.asset.description"] = description
    return resource


def model_keys(manifest_path: Path, names: list[str]) -> dict[str, str]:
    """The asset keys of the named models in a dbt manifest (for steps that read them, like a report)."""
    manifest = read_manifest(manifest_path)
    adapter = (manifest.get("metadata") or {}).get("adapter_type")
    keys: dict[str, str] = {}
    for entry in (manifest.get("nodes") or {}).values():
        if entry.get("resource_type") == "model" and entry.get("name") in names:
            resource = node_asset(entry, adapter, {})
            if resource is not None:
                keys[entry["name"]] = resource["prefect.resource.id"]
    return keys


def built_model_keys(work_dir: Path, names: Sequence[str]) -> list[str]:
    """The asset keys of the named models as the last dbt build in ``work_dir`` made them; [] before any build.

    A step that reads marts (a report) names them as its upstream assets with these keys.
    """
    try:
        return sorted(model_keys(work_dir / "target" / "manifest.json", list(names)).values())
    except (OSError, ValueError):
        return []


def emit_build_assets(manifest_path: Path, results: list[Any], source_keys: Mapping[str, str]) -> int:
    """After a dbt run without node task runs (``--fast-dbt``), the same asset events, from dbt's results.

    Called in the flow or task run that ran dbt, so the events carry that run; returns how many
    nodes materialized (or failed to). Nodes dbt skipped emit nothing, as with node task runs.
    """
    from tasks.core.assets import failed, materialized

    manifest = read_manifest(manifest_path)
    adapter = (manifest.get("metadata") or {}).get("adapter_type")
    entries = {**(manifest.get("sources") or {}), **(manifest.get("nodes") or {})}
    count = 0
    for result in results:
        status = str(result.status).split(".")[-1].lower()
        entry = entries.get(result.node.unique_id) or {}
        if entry.get("resource_type") not in MATERIALIZED_TYPES or status == "skipped":
            continue
        if ((entry.get("config") or {}).get("meta") or {}).get("prefect", {}).get("enable_assets") is False:
            continue
        resource = node_asset(entry, adapter, source_keys)
        if resource is None:
            continue
        upstream = [
            r["prefect.resource.id"]
            for r in (node_asset(entries.get(u) or {}, adapter, source_keys) for u in entry["depends_on"]["nodes"])
            if r
        ]
        key = resource["prefect.resource.id"]
        name = entry.get("name") or key
        if status in {"error", "fail", "runtime error", "runtimeerr"}:
            failed(key, upstream, f"{name} {status}: {result.message or ''}", name=name, layer=layer(entry), by="dbt")
        else:
            with materialized(
                key,
                upstream,
                name=name,
                layer=layer(entry),
                by="dbt",
                description=resource.get("prefect.asset.description"),
            ):
                pass
        count += 1
    return count
