"""The home lock across real processes: a waiter gives up naming the holder, and gets the lock once it is free."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tasks.core.locks import HomeBusyError, home_lock
from tests.support import REPO_ROOT

pytestmark = pytest.mark.unit

HOLD = """
import sys, time
from pathlib import Path
from tasks.core.locks import home_lock
with home_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_second_process_waits_then_refuses_naming_the_holder_and_gets_the_lock_once_free(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path), "3"], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        busy = pytest.raises(HomeBusyError, match=rf"in use by another run \(pid {holder.pid} since ")
        with busy as err, home_lock(tmp_path, timeout_s=0.5, poll_s=0.05, what="insightflow"):
            pass
        assert 0.5 <= time.monotonic() - started < 2.5
        assert str(err.value).startswith(f"insightflow: {tmp_path} ")
        with home_lock(tmp_path, timeout_s=10, poll_s=0.05):  # waits out the holder's sleep
            assert holder.poll() is not None or time.monotonic() - started >= 2.5
            assert (tmp_path / ".lock").read_text().startswith("pid ")
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(ValueError), home_lock(tmp_path, timeout_s=1):
        raise ValueError("boom")
    with home_lock(tmp_path, timeout_s=0.2):
        pass
