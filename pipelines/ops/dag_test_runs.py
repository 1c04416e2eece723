"""Make `airflow dags test` runs look like scheduled ones in the UI, and summarise their output.

Why (Airflow 3.3 source): ``airflow dags test`` runs ``DAG.test()``
(``airflow/sdk/definitions/dag.py``), which runs every task **in-process**
(``InProcessTestSupervisor`` in ``airflow/sdk/execution_time/supervisor.py``). Task logs then go to
the command's stdout only: the per-attempt file that the API server reads
(``FileTaskHandler._read`` in ``airflow/utils/log/file_task_handler.py``:
``<logs>/dag_id=…/run_id=…/task_id=…/attempt=N.log``, else the worker's log server, which
does not exist for an in-process run: "Log file not found on worker") is only written by the
task supervisor that executors start (``supervise(log_path=…)``). ``DAG.test()`` also creates the
run with ``start_date=logical_date`` (``get_or_create_dagrun(start_date=logical_date or
run_after, …)``), so a run of 2026-03-29 executed months later shows a duration of months; the
real start is the run's ``run_after``.

So after each `dags test` this module writes each task's section of the output to the file the
API server reads, and sets the run's ``start_date`` to its ``run_after``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+) map_index=(-?\d+)")
_RUNNING = re.compile(r"\[DAG TEST\] running task <TaskInstance: [^.\s]+\.(\S+) (\S+) \[")
_END = re.compile(r"\[DAG TEST\] end task task_id=(\S+)")
_STATE = re.compile(r"new_state=(\w+)")
_WARNING = re.compile(r"\[(warning|error|critical)\s*\]")
#: Loggers that are ours: pipelines.*, the DAG file (Airflow loads it as unusual_prefix_*_<file>).
_OURS = re.compile(r"\[(pipelines[.\w]*|segment_mart[.\w]*|unusual_prefix_\w+_segment_mart_nightly)\]")


@dataclass
class TaskSection:
    task_id: str
    map_index: int
    run_id: str = ""
    attempt: int = 1
    lines: list[str] = field(default_factory=list)
    state: str | None = None


@dataclass
class DagTestOutput:
    """Reads the output of one `airflow dags test`, line by line.

    ``on_step(task_id, event, section)`` is called with ``"start"`` and ``"end"`` for every
    task; ``on_warning(line)`` for every warning or error logged by our own code.
    """

    on_step: Callable[[str, str, TaskSection], None] | None = None
    on_warning: Callable[[str], None] | None = None
    sections: list[TaskSection] = field(default_factory=list)
    _current: TaskSection | None = None
    _attempts: dict[str, int] = field(default_factory=dict)

    def feed(self, line: str) -> None:
        if m := _START.search(line):
            task_id = m.group(1)
            self._attempts[task_id] = self._attempts.get(task_id, 0) + 1
            self._current = TaskSection(task_id, int(m.group(2)), attempt=self._attempts[task_id])
            self.sections.append(self._current)
            if self.on_step:
                self.on_step(task_id, "start", self._current)
        section = self._current
        if section is not None:
            section.lines.append(line)
            if not section.run_id and (m := _RUNNING.search(line)):
                section.run_id = m.group(2)
            if m := _STATE.search(line):
                section.state = m.group(1)
        if self.on_warning and _WARNING.search(line) and _OURS.search(line):
            self.on_warning(line.rstrip())
        if section is not None and (m := _END.search(line)) and m.group(1) == section.task_id:
            if self.on_step:
                self.on_step(section.task_id, "end", section)
            self._current = None

    @property
    def run_id(self) -> str | None:
        return next((s.run_id for s in self.sections if s.run_id), None)


def task_log_path(logs: Path, dag_id: str, section: TaskSection) -> Path:
    """Airflow 3's default ``[logging] log_filename_template``, as the API server renders it."""
    mapped = f"map_index={section.map_index}/" if section.map_index >= 0 else ""
    return logs / f"dag_id={dag_id}" / f"run_id={section.run_id}" / f"task_id={section.task_id}" / (
        f"{mapped}attempt={section.attempt}.log")


def write_task_logs(logs: Path, dag_id: str, output: DagTestOutput) -> list[Path]:
    """Write each task's part of the output where the API server looks for the task's log."""
    written = []
    for section in output.sections:
        if not section.run_id:
            continue
        path = task_log_path(logs, dag_id, section)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(section.lines), encoding="utf-8")
        written.append(path)
    return written


def fix_run_start(database: Path, dag_id: str, run_id: str) -> int:
    """Set a `dags test` run's start_date (recorded as its logical date) to its run_after.

    Only runs whose start_date still equals their logical date are touched; returns the count.
    The project-local metadata DB is SQLite (pipelines.ops.airflow_home); ``dag_run`` with these
    columns is Airflow 3's schema.
    """
    con = sqlite3.connect(database, timeout=30)
    try:
        with con:
            cur = con.execute(
                "update dag_run set start_date = run_after where dag_id = ? and run_id = ? "
                "and start_date = logical_date and run_after is not null", (dag_id, run_id))
        return cur.rowcount
    finally:
        con.close()
