"""Asset keys and materialization events, the way Prefect's own materializing tasks emit them.

Prefect 3.8 keeps assets only as events: ``prefect.asset.materialization.succeeded|failed`` for the
asset written (upstream assets as related resources with role ``asset``, the tool with role
``asset-materialized-by``) and ``prefect.asset.referenced`` for each upstream. The open-source server
stores them in its event log (Event Feed); Prefect Cloud draws its asset graph from the same events.

A ``@materialize`` task emits whenever it completes, with keys fixed when the task is defined. Our
steps need keys known only at run time (the lake is a directory or a bucket) and must stay silent
when nothing was written (a 304, an unchanged partition set, a skipped dbt build: the asset did not
change, and an event would claim it had). So ``materialized`` opens Prefect's own ``AssetContext``
around one asset, lets the caller attach metadata with ``prefect.assets.add_asset_metadata``, and
has the context emit its events: the event shapes are Prefect's, only the decision is ours. Events
emitted inside a task run carry that task run and its flow run as related resources.

Every materialization is also noted for the flow run that made it (``noted``), so the run can draw
its lineage diagram (tasks/core/lineage.py) from exactly the keys it emitted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from prefect.assets import Asset, AssetProperties, add_asset_metadata
from prefect.context import AssetContext, FlowRunContext, TaskRunContext
from prefect.states import Completed, Failed
from prefect.types.names import MAX_ASSET_KEY_LENGTH, RESTRICTED_ASSET_CHARACTERS

# Loopback hosts serve the sample and the test fixtures on a port picked per process: the port names
# the process, not the dataset, so it is left out of the key (keys stay stable from run to run).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
ERROR_LIMIT = 1_000

_lock = threading.Lock()
_notes: dict[UUID, list[Note]] = {}


@dataclass
class Note:
    """One asset this run materialized (or failed to): what the lineage diagram shows for its node."""

    key: str
    name: str
    layer: str
    status: str  # materialized | failed
    at: str  # ISO 8601, UTC
    upstream: list[str] = field(default_factory=list)
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def clean_key(text: str) -> str:
    """``text`` without the characters Prefect forbids in asset keys, cut to the longest key allowed."""
    for char in RESTRICTED_ASSET_CHARACTERS:
        text = text.replace(char, "")
    return text[:MAX_ASSET_KEY_LENGTH]


def url_key(url: str) -> str:
    """The asset key of a source URL: no query string, fragment or credentials, no loopback port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host if host in LOOPBACK_HOSTS or parts.port is None else f"{host}:{parts.port}"
    return clean_key(f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}")


def location_key(uri: str) -> str:
    """The asset key of a lake location: ``s3://…`` as is, a local path as ``file://<absolute path>``."""
    if "://" in uri:
        return clean_key(uri.rstrip("/"))
    return clean_key("file://" + uri.rstrip("/"))


def current_flow_run_id() -> UUID | None:
    task_ctx = TaskRunContext.get()
    if task_ctx is not None and task_ctx.task_run is not None:
        return task_ctx.task_run.flow_run_id
    flow_ctx = FlowRunContext.get()
    return flow_ctx.flow_run.id if flow_ctx is not None and flow_ctx.flow_run is not None else None


def note(flow_run_id: UUID | None, entry: Note) -> None:
    """Remember a materialization for ``flow_run_id``'s lineage diagram (kept in this process only)."""
    if flow_run_id is None:
        return
    with _lock:
        _notes.setdefault(flow_run_id, []).append(entry)


def noted(flow_run_id: UUID | None, *, pop: bool = True) -> list[Note]:
    """Every materialization noted for the flow run, in order; ``pop`` forgets them."""
    with _lock:
        return list((_notes.pop if pop else _notes.get)(flow_run_id, []) or [])


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextmanager
def materialized(
    key: str,
    upstream: Iterable[str] = (),
    *,
    name: str,
    layer: str,
    by: str | None = None,
    description: str | None = None,
    url: str | None = None,
) -> Iterator[Materialization]:
    """Materialize asset ``key`` from ``upstream`` keys, or report that it failed.

    Inside the block call ``add_asset_metadata(key, {...})`` (or ``m.add(...)``). Leaving it normally
    emits ``…materialization.succeeded`` unless ``m.skip()`` was called (nothing was written); leaving
    it with an exception emits ``…materialization.failed`` with the exception as ``error`` in the
    payload, then re-raises.
    """
    properties = AssetProperties(name=name, description=description, url=url)
    asset = Asset(key=key, properties=properties)
    upstream_assets = {Asset(key=u) for u in dict.fromkeys(upstream)}
    ctx = AssetContext(downstream_assets={asset}, direct_asset_dependencies=upstream_assets, materialized_by=by)
    handle = Materialization(key)
    flow_run_id = current_flow_run_id()
    with ctx:
        try:
            yield handle
        except BaseException as exc:
            cause = (str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}")[:ERROR_LIMIT]
            ctx.add_asset_metadata(key, {"error": cause})
            ctx.emit_events(Failed(message=cause))
            note(
                flow_run_id, Note(key, name, layer, "failed", now_iso(), sorted(u.key for u in upstream_assets), cause)
            )
            raise
        if handle.skipped:
            return
        ctx.emit_events(Completed())
        note(flow_run_id, Note(key, name, layer, "materialized", now_iso(), sorted(u.key for u in upstream_assets)))


def failed(key: str, upstream: Iterable[str], cause: str, *, name: str, layer: str, by: str | None = None) -> None:
    """Emit ``…materialization.failed`` for ``key`` with ``cause``, outside any step that wrote it."""
    try:
        with materialized(key, upstream, name=name, layer=layer, by=by):
            raise StepFailed(cause)
    except StepFailed:
        pass


class StepFailed(RuntimeError):
    """The cause of a failed materialization reported after the fact (its ``error`` is the message)."""

    def __str__(self) -> str:
        return self.args[0] if self.args else ""


class Materialization:
    """Handle for one ``materialized`` block: metadata for the event, or a decision not to emit it."""

    def __init__(self, key: str):
        self.key = key
        self.skipped = False

    def add(self, metadata: Mapping[str, Any]) -> None:
        add_asset_metadata(self.key, dict(metadata))

    def skip(self) -> None:
        """Nothing was written: emit no event (the asset's last materialization still stands)."""
        self.skipped = True
