"""Fetch one DOSM / data.gov.my dataset over HTTP, conditionally.

The dataset's manifest in the lake remembers the source's ETag, Last-Modified and sha256, so an
unchanged source answers 304 (or the same bytes) and nothing downstream does any work.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Literal

import httpx
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.core import http
from tasks.core.config import datagovmy_base_url, dosm_base_url
from tasks.core.lake import Lake
from tasks.insightflow.contracts import Dataset, get_dataset, manifest_key


@dataclass
class Fetched:
    """A dataset's response: either new bytes to validate, or proof that the source is unchanged."""

    dataset: str
    url: str
    status: Literal["new", "not_modified", "same_content"]
    content: bytes | None = None
    sha256: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    seconds: float = 0.0

    @property
    def unchanged(self) -> bool:
        return self.status != "new"


def source_url(dataset: Dataset, dosm: str | None = None, datagovmy: str | None = None) -> str:
    base = dosm_base_url(dosm) if dataset.host == "dosm" else datagovmy_base_url(datagovmy)
    return f"{base}{dataset.path}"


def fetch(
    client: httpx.Client, lake: Lake, dataset: Dataset, url: str, policy: http.RetryPolicy | None = None
) -> Fetched:
    """GET the dataset conditionally (ETag / Last-Modified remembered in its manifest)."""
    started = time.perf_counter()
    source = (lake.read_json(manifest_key(dataset.name)) or {}).get("source") or {}
    headers = http.conditional_headers(source)
    response = http.get(client, url, what=f"dataset {dataset.name}", headers=headers, policy=policy)
    fetched = Fetched(
        dataset=dataset.name,
        url=url,
        status="not_modified",
        etag=response.headers.get("ETag") or source.get("etag"),
        last_modified=response.headers.get("Last-Modified") or source.get("last_modified"),
        content_type=response.headers.get("Content-Type"),
    )
    if response.status_code == 200:
        fetched.content = response.content
        fetched.sha256 = hashlib.sha256(fetched.content).hexdigest()
        fetched.status = "same_content" if fetched.sha256 == source.get("sha256") else "new"
    fetched.seconds = round(time.perf_counter() - started, 3)
    return fetched


# Payloads are passed in memory between tasks: NO_CACHE keeps Prefect from hashing them.
@task(name="fetch-dataset", task_run_name="fetch-{dataset_name}", cache_policy=NO_CACHE)
def fetch_dataset(dataset_name: str, url: str, lake: Lake) -> Fetched:
    """Conditionally GET one dataset; retries transient faults inside (honouring Retry-After)."""
    with httpx.Client(follow_redirects=True, headers={"User-Agent": "insightflow/0.1"}) as client:
        fetched = fetch(client, lake, get_dataset(dataset_name), url)
    logger = get_run_logger()
    if fetched.status == "not_modified":
        logger.info("%s: source unchanged (HTTP 304 for ETag %s); nothing to land", dataset_name, fetched.etag)
    elif fetched.status == "same_content":
        logger.info("%s: source content identical (sha256 %s…); nothing to land", dataset_name, fetched.sha256[:12])
    else:
        logger.info("%s: fetched %d bytes in %.2fs", dataset_name, len(fetched.content or b""), fetched.seconds)
    return fetched
