"""One writer at a time per pipeline home: the lock every writing step of a night takes.

``<home>/.run.lock`` is an ``flock`` lock (released by the kernel when the process ends,
however it ends). dbt, the quality gate, publish and a whole ``segment-mart run`` take it
exclusively; ingestion takes it shared plus an exclusive lock on its source
(``<home>/.locks/ingest-<source>.lock``), so the three sources of a night load in parallel
while nothing else writes. A step that cannot get its lock fails at once with
:class:`RunInProgress` ("another run of this night is in progress (pid N)"), instead of
waiting on, or failing deep inside, DuckDB's own file lock. Holders describe themselves in
``<home>/.locks/holders/<pid>-<n>.json`` for that message. Nested steps of one process
(``run`` calling ``publish`` calling the gate) re-use the lock they already hold.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import itertools
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pipelines.errors import Transient

_registry_lock = threading.RLock()
#: path -> (open file, mode, depth) held by this process
_held: dict[Path, tuple[IO[str], int, int]] = {}
_serial = itertools.count()


class RunInProgress(Transient, RuntimeError):
    """Another process holds the pipeline home's run lock (or the source's ingest lock)."""


def lock_path(home: Path) -> Path:
    return Path(home) / ".run.lock"


def _locks_dir(home: Path) -> Path:
    return Path(home) / ".locks"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holders(home: Path) -> list[dict]:
    found = []
    for path in sorted((_locks_dir(home) / "holders").glob("*.json")):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if info.get("pid") != os.getpid() and _alive(int(info.get("pid", 0))):
            found.append(info)
    return found


def _message(home: Path, run_date: dt.date, step: str) -> str:
    holders = _holders(home)
    if not holders:
        return (f"another run is in progress (pid unknown: {lock_path(home)} is locked); `{step}` for "
                f"{run_date} did not start. Wait for it to finish, then re-run.")
    parts = []
    for h in holders:
        night = "of this night" if h.get("run_date") == run_date.isoformat() else f"for night {h.get('run_date')}"
        parts.append(f"another run {night} is in progress (pid {h.get('pid')}): "
                     f"`{h.get('step')}` since {h.get('started_at')}")
    return ("; ".join(parts) + f". `{step}` for {run_date} did not start: wait for that run to finish "
            "(or stop that process), then re-run.")


def _acquire(path: Path, mode: int) -> IO[str] | None:
    """Open ``path`` and lock it without waiting; None when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


@contextlib.contextmanager
def _hold(path: Path, mode: int, home: Path, run_date: dt.date, step: str) -> Iterator[None]:
    with _registry_lock:
        held = _held.get(path)
        if held is not None and (held[1] == fcntl.LOCK_EX or mode == fcntl.LOCK_SH):
            _held[path] = (held[0], held[1], held[2] + 1)
            nested = True
        else:
            if held is not None:
                raise RunInProgress(f"`{step}` needs {path} exclusively while this process holds it shared")
            handle = _acquire(path, mode)
            if handle is None:
                raise RunInProgress(_message(home, run_date, step))
            _held[path] = (handle, mode, 1)
            nested = False
    record = None
    if not nested:
        record = _locks_dir(home) / "holders" / f"{os.getpid()}-{next(_serial)}.json"
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({
            "pid": os.getpid(), "step": step, "run_date": run_date.isoformat(), "lock": str(path),
            "started_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        }))
    try:
        yield
    finally:
        with _registry_lock:
            handle, held_mode, depth = _held[path]
            if depth > 1:
                _held[path] = (handle, held_mode, depth - 1)
            else:
                del _held[path]
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
        if record is not None:
            record.unlink(missing_ok=True)


@contextlib.contextmanager
def exclusive(home: Path, run_date: dt.date, step: str) -> Iterator[None]:
    """The home's lock, alone (dbt, gate, publish, a whole night)."""
    with _hold(lock_path(home), fcntl.LOCK_EX, Path(home), run_date, step):
        yield


@contextlib.contextmanager
def ingesting(home: Path, run_date: dt.date, source: str) -> Iterator[None]:
    """The home's lock shared with the other sources' ingests, and the source's own lock."""
    home = Path(home)
    step = f"ingest {source}"
    with _hold(lock_path(home), fcntl.LOCK_SH, home, run_date, step), \
            _hold(_locks_dir(home) / f"ingest-{source}.lock", fcntl.LOCK_EX, home, run_date, step):
        yield
