"""Stopping the cluster leaves no zombie behind: a killed child is collected even when it has not
finished exiting at the moment it stops counting as alive (CI found the Thrift server's pid still
in /proc after ``stop``)."""

import os
import signal
import subprocess
from pathlib import Path

from pipelines.build import spark_cluster


def test_a_killed_child_is_collected_not_left_a_zombie() -> None:
    proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    os.killpg(proc.pid, signal.SIGKILL)
    spark_cluster._reap(proc.pid)  # straight after the signal: the child may still be exiting
    assert not Path(f"/proc/{proc.pid}").exists()


def test_a_pid_that_is_not_our_child_returns_at_once() -> None:
    spark_cluster._reap(1, timeout=30.0)  # init: not ours to collect, nothing to wait for
