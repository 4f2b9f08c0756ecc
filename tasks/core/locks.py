"""One writer per ``INSIGHTFLOW_HOME``: DuckDB allows a single writing process, and two landings of
the same dataset must not interleave. Flows hold this advisory file lock while they write.

The lock is filelock's (``FileLock``: ``flock`` on Unix, a timeout with polling, the lock file left in
place so waiters never split across inodes). In the filelock this project locks (3.32; filelock #591) a contender that loses does not
truncate the file, so the holder can leave a line in it (pid and start time) that a waiter quotes when
it gives up; what is ours is that message and the timeout policy.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout


class HomeBusyError(RuntimeError):
    """Another run holds the lock on this INSIGHTFLOW_HOME for longer than we were willing to wait."""


@contextmanager
def home_lock(home: Path, timeout_s: float = 600.0, poll_s: float = 0.2, what: str = "run") -> Iterator[None]:
    """Hold an exclusive lock on ``home``; wait up to ``timeout_s`` for another run to finish."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / ".lock"
    lock = FileLock(path, thread_local=False)
    try:
        lock.acquire(timeout=timeout_s, poll_interval=poll_s)
    except Timeout:
        holder = path.read_text(errors="replace").strip() if path.exists() else ""
        raise HomeBusyError(
            f"{what}: {home} is in use by another run ({holder or 'unknown process'}) and did not become free within "
            f"{timeout_s:.0f}s; DuckDB allows one writer, so wait for that run or use another INSIGHTFLOW_HOME"
        ) from None
    try:
        # The holder's line, for a waiter's message; written through a second descriptor (flock locks the file
        # description filelock opened, not writes).
        path.write_text(f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
        yield
    finally:
        lock.release()
