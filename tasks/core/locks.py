"""One writer per ``INSIGHTFLOW_HOME``: DuckDB allows a single writing process, and two landings of
the same dataset must not interleave. Flows hold this advisory file lock while they write.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class HomeBusyError(RuntimeError):
    """Another run holds the lock on this INSIGHTFLOW_HOME for longer than we were willing to wait."""


@contextmanager
def home_lock(home: Path, timeout_s: float = 600.0, poll_s: float = 0.2, what: str = "run") -> Iterator[None]:
    """Hold an exclusive lock on ``home``; wait up to ``timeout_s`` for another run to finish."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / ".lock"
    fh = open(path, "a+")
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "unknown process"
                    raise HomeBusyError(
                        f"{what}: {home} is in use by another run ({holder}) and did not become free within "
                        f"{timeout_s:.0f}s; DuckDB allows one writer, so wait for that run or use another INSIGHTFLOW_HOME"
                    ) from None
                time.sleep(poll_s)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
        fh.flush()
        yield
    finally:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        finally:
            fh.close()
