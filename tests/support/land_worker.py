"""A forking worker for the crash-safety test: imports once, then lands in a fresh child per command.

stdin lines: ``land <lake_dir> <table.parquet>``; for each, it forks a child that runs
``tasks.insightflow.ingest.land.land`` and answers ``pid <n>`` at once, then ``done <exit-status> <seconds>`` when the
child ends (killed children report a negative status). Forking keeps Python start-up and imports
out of the kill window, so every SIGKILL lands inside land() itself.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pyarrow.parquet as pq

from tasks.core.lake import LocalLake
from tasks.insightflow.contracts import IOWRT_3D
from tasks.insightflow.ingest.fetch import Fetched
from tasks.insightflow.ingest.land import land


def main() -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        command, lake_dir, table_path = line.split()
        assert command == "land"
        table = pq.read_table(table_path)
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                land(
                    LocalLake(lake_dir),
                    IOWRT_3D,
                    table,
                    Fetched(
                        dataset=IOWRT_3D.name, url=table_path, status="new", content=b"", sha256=Path(table_path).stem
                    ),
                )
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                sys.stderr.flush()
                os._exit(code)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"done {os.waitstatus_to_exitcode(status)} {time.perf_counter() - started:.3f}", flush=True)


if __name__ == "__main__":
    main()
