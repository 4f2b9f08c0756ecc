"""The data lake: one small interface (``Lake``), two backends, and the one place that picks between them.

``base`` holds the interface and the local-directory backend, ``s3`` the S3 backend (prefect-aws
``S3Bucket`` block); ``open_lake`` chooses by target, so no caller imports a backend by name.
"""

from __future__ import annotations

import os

from blocks import names
from tasks.core import config
from tasks.core.lake.base import TMP_MARKER, Lake, LocalLake

__all__ = ["TMP_MARKER", "Lake", "LocalLake", "open_lake"]


def open_lake(target: str, home: str | os.PathLike[str] | None = None, lake_block: str = names.LAKE) -> Lake:
    """The lake for a target: the local directory for ``dev``, the ``S3Bucket`` block ``lake_block`` for ``prod``."""
    if target == "dev":
        return LocalLake(config.lake_dir(home))
    if target == "prod":
        from tasks.core.lake.s3 import S3Lake  # boto3/prefect-aws load only when a run needs S3

        return S3Lake.from_block_name(lake_block)
    raise ValueError(f"unknown target {target!r}; expected 'dev' or 'prod'")
