"""The lake interface and its local-directory backend (the embedded default).

Keys are POSIX-style paths relative to the lake root (``raw/iowrt/year=2024/month=01/data.parquet``).
Every write replaces one object atomically: readers see the old bytes or the new bytes, never a
partial file. Locally that is write-aside-then-``os.replace``; on S3 a single PUT is already atomic.
"""

from __future__ import annotations

import json
import os
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

TMP_MARKER = ".tmp-"


class Lake(ABC):
    """Atomic object storage addressed by relative keys."""

    @abstractmethod
    def read(self, key: str) -> bytes | None:
        """The object's bytes, or None if it does not exist."""

    @abstractmethod
    def write(self, key: str, data: bytes) -> None:
        """Create or atomically replace the object at ``key``."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object if it exists."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (a folder, recursive), sorted; in-flight temporary objects excluded."""

    @abstractmethod
    def uri(self, key: str = "") -> str:
        """Where ``key`` lives, as a path or ``s3://`` URI that other tools (DuckDB, Athena) can read."""

    def read_json(self, key: str) -> Any | None:
        data = self.read(key)
        return None if data is None else json.loads(data)

    def write_json(self, key: str, value: Any) -> None:
        self.write(key, json.dumps(value, indent=2, sort_keys=True, default=str).encode())


class LocalLake(Lake):
    """A lake in a local directory (the embedded default, ``$INSIGHTFLOW_HOME/lake``).

    Replacing by rename is atomic against a killed process. Surviving power loss as well needs each
    file flushed to disk before the rename: ``fsync=True`` (or ``INSIGHTFLOW_LAKE_FSYNC=1``) does that,
    at ~10 ms per object on this class of disk, so it is off by default for a development lake.
    """

    def __init__(self, root: str | os.PathLike[str], fsync: bool | None = None):
        self.root = Path(root).resolve()
        self.fsync = os.environ.get("INSIGHTFLOW_LAKE_FSYNC") == "1" if fsync is None else fsync

    def __repr__(self) -> str:
        return f"LocalLake({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise ValueError(f"lake key {key!r} escapes the lake root {self.root}")
        return path

    def read(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # The temporary name never ends in .parquet/.json, so globs like */*.parquet cannot see it.
        tmp = path.with_name(f"{TMP_MARKER}{uuid.uuid4().hex}-{path.name}.partial")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if self.fsync:
            _fsync_dir(path.parent)

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # Drop emptied partition folders so globs and Glue listings stay tidy.
        parent = path.parent
        while parent != self.root and parent.exists() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.exists():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(TMP_MARKER)
        )

    def sweep_temporary(self, prefix: str) -> int:
        """Remove write-aside files a killed process left behind; returns how many."""
        base = self._path(prefix)
        count = 0
        if base.exists():
            for p in base.rglob(f"{TMP_MARKER}*"):
                p.unlink(missing_ok=True)
                count += 1
        return count

    def uri(self, key: str = "") -> str:
        return str(self._path(key)) if key else str(self.root)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
