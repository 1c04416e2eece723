"""A project-local Airflow: the one place that configures, prepares and runs it.

Everything Airflow writes lives under one folder (default ``<settings.home>/airflow``):
the SQLite metadata database, the generated ``airflow.cfg``, task logs and the
generated admin password. Configuration is passed as ``AIRFLOW__*`` environment
variables (they override ``airflow.cfg``), so the same settings reach every
component and every ``airflow`` subcommand started from here:

* dags folder = this repository's ``dags/``; no example DAGs;
* LocalExecutor on the SQLite metadata database (fine for one machine);
* the ``segment_mart_warehouse`` pool with **one** slot: every task that opens the
  DuckDB warehouse for writing runs in it, so only one process writes at a time;
* the virtual environment's ``bin`` first on ``PATH`` (``airflow standalone`` starts
  its components as subprocesses named ``airflow``; dbt is found next to python);
* ``SEGMENT_MART_*`` variables passed through, ``SEGMENT_MART_HOME`` pinned to the
  home the tasks must use.

Usage::

    python -m pipelines.ops.airflow_home prepare              # db migrate + pool (idempotent)
    python -m pipelines.ops.airflow_home dags-test 2026-03-29 2026-03-30
    python -m pipelines.ops.airflow_home standalone           # UI on http://localhost:8080
    python -m pipelines.ops.airflow_home env                  # shell exports for plain `airflow ...`
    python -m pipelines.ops.airflow_home dbt-nodes            # refresh dags/dbt_nodes.json from dbt
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pipelines.ops.dag_test_runs import DagTestOutput, TaskSection, fix_run_start, write_task_logs
from pipelines.settings import PROJECT_ROOT, Settings, get_settings

DAG_ID = "segment_mart_nightly"
WAREHOUSE_POOL = "segment_mart_warehouse"
DAGS_FOLDER = PROJECT_ROOT / "dags"
VENV_BIN = Path(sys.executable).parent
DEFAULT_API_PORT = 8080
#: Settings of the project-local Airflow kept in the Airflow home (``KEY=value`` lines), so
#: that `standalone` after `make demo` sees the same pipeline home and DAG dates.
PINNED_ENV_FILE = "segment_mart.env"


@dataclass
class AirflowHome:
    """A prepared (or to-be-prepared) project-local Airflow installation."""

    path: Path
    settings: Settings
    api_port: int = DEFAULT_API_PORT
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def database(self) -> Path:
        return self.path / "airflow.db"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def _secret(self, name: str) -> str:
        """A random secret created once per Airflow home (all components must share it)."""
        file = self.path / f".{name}"
        if not file.exists():
            self.path.mkdir(parents=True, exist_ok=True)
            file.write_text(secrets.token_urlsafe(32))
            file.chmod(0o600)
        return file.read_text().strip()

    def pinned_env(self) -> dict[str, str]:
        file = self.path / PINNED_ENV_FILE
        if not file.exists():
            return {}
        pairs = (line.split("=", 1) for line in file.read_text().splitlines() if "=" in line)
        return {k.strip(): v.strip() for k, v in pairs if not k.startswith("#")}

    def pin(self, values: Mapping[str, str]) -> None:
        """Remember SEGMENT_MART_* values for later commands on this home (e.g. the UI)."""
        merged = self.pinned_env() | dict(values)
        self.path.mkdir(parents=True, exist_ok=True)
        lines = ["# written by pipelines.ops.airflow_home; read by every command on this Airflow home"]
        lines += [f"{k}={v}" for k, v in sorted(merged.items())]
        (self.path / PINNED_ENV_FILE).write_text("\n".join(lines) + "\n")

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment every ``airflow`` command on this home runs with."""
        # Values pinned on this home (e.g. by `make demo`) apply unless the caller's environment sets them.
        env = self.pinned_env() | dict(os.environ if base is None else base)
        env |= {
            "AIRFLOW_HOME": str(self.path),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.database}",
            # Two cores: a few parallel task processes; the pool serialises warehouse writers.
            "AIRFLOW__CORE__PARALLELISM": env.get("AIRFLOW__CORE__PARALLELISM", "4"),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": env.get("AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG", "4"),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": env.get(
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "True"
            ),
            "AIRFLOW__API__PORT": str(self.api_port),
            # Local only: the UI and API listen on the loopback interface, not on 0.0.0.0.
            "AIRFLOW__API__HOST": env.get("AIRFLOW__API__HOST", "127.0.0.1"),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt_secret"),
            "AIRFLOW__API__SECRET_KEY": self._secret("api_secret_key"),
            # A local, single-user installation: the UI opens without a login.
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "SEGMENT_MART_HOME": str(self.settings.home),
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "NO_COLOR": env.get("NO_COLOR", "1"),
        }
        return env | self.extra_env

    def airflow(self, *args: str, check: bool = True, capture: bool = False, **kwargs) -> subprocess.CompletedProcess:
        """Run ``airflow <args>`` on this home."""
        return subprocess.run(
            [str(VENV_BIN / "airflow"), *args],
            env=self.env(),
            check=check,
            text=True,
            capture_output=capture,
            **kwargs,
        )

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen([str(VENV_BIN / "airflow"), *args], env=self.env(), **kwargs)


def airflow_home(
    path: Path | None = None,
    settings: Settings | None = None,
    api_port: int = DEFAULT_API_PORT,
    extra_env: Mapping[str, str] | None = None,
) -> AirflowHome:
    settings = settings or get_settings()
    return AirflowHome(
        path=(path or settings.home / "airflow").resolve(),
        settings=settings,
        api_port=api_port,
        extra_env=dict(extra_env or {}),
    )


def prepare(home: AirflowHome, quiet: bool = True) -> AirflowHome:
    """Create or upgrade the metadata database and the warehouse pool. Idempotent."""
    home.path.mkdir(parents=True, exist_ok=True)
    home.settings.home.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    home.airflow("db", "migrate", capture=quiet)
    home.airflow(
        "pools", "set", WAREHOUSE_POOL, "1",
        "Writers of the DuckDB warehouse (one read-write process per file)",
        capture=quiet,
    )
    if not quiet:
        print(f"Airflow home {home.path} ready in {time.monotonic() - started:.1f}s")
    return home


@dataclass(frozen=True)
class DagTestResult:
    run_date: dt.date
    returncode: int
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def dags_test(
    home: AirflowHome,
    run_dates: Iterable[dt.date],
    *,
    stop_on_failure: bool = True,
    echo: bool = False,
    dag_id: str = DAG_ID,
    log: TextIO | None = None,
    on_step: Callable[[dt.date, str, str, TaskSection], None] | None = None,
    on_warning: Callable[[dt.date, str], None] | None = None,
) -> list[DagTestResult]:
    """``airflow dags test <dag> <date>`` for each date in order (one process per date).

    Each night's output goes to ``log`` (and stdout with ``echo``); ``on_step`` / ``on_warning``
    get its task starts and ends and our own warnings. Afterwards every task's log is written
    where the UI reads it and the run's start is corrected (see ``pipelines.ops.dag_test_runs``).
    """
    results: list[DagTestResult] = []
    for run_date in run_dates:
        started = time.monotonic()
        output = DagTestOutput(
            on_step=(lambda task, event, section, d=run_date: on_step(d, task, event, section)) if on_step else None,
            on_warning=(lambda line, d=run_date: on_warning(d, line)) if on_warning else None,
        )
        proc = home.popen(
            "dags", "test", dag_id, run_date.isoformat(),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        )
        lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            output.feed(line)
            if log is not None:
                log.write(line)
            if echo:
                sys.stdout.write(line)
        code = proc.wait()
        if output.run_id:
            write_task_logs(home.logs, dag_id, output)
            fix_run_start(home.database, dag_id, output.run_id)
        result = DagTestResult(run_date, code, round(time.monotonic() - started, 1), "".join(lines))
        results.append(result)
        if echo:
            state = "succeeded" if result.ok else f"FAILED (exit {code})"
            print(f"== {dag_id} {run_date}: {state} in {result.seconds:.0f}s", flush=True)
        if not result.ok and stop_on_failure:
            break
    return results


def standalone(home: AirflowHome, stop_timeout: float = 30.0) -> int:
    """`airflow standalone` on this home (scheduler, dag processor, triggerer, API server + UI).

    The UI listens on 127.0.0.1 only (``AIRFLOW__API__HOST``). Ctrl-C (SIGINT) or SIGTERM stops
    it: we pass SIGINT on to standalone (which stops its components), give it ``stop_timeout``
    seconds, then end the session we started it in (SIGTERM, then SIGKILL).

    Why the care (seen on Airflow 3.3): started from a shell script or any background job,
    SIGINT arrives *ignored*, Python then installs no KeyboardInterrupt handler, and standalone
    inherits the ignore: Ctrl-C reached the components (they install their own handlers and
    exit) but standalone itself never ran its shutdown and looped forever over zombie children,
    until SIGTERM. So this process installs its own handlers, and standalone starts in its own
    session with SIGINT back to the default.
    """
    import signal

    prepare(home, quiet=False)
    print(
        f"Starting Airflow on http://127.0.0.1:{home.api_port} (no login: local single-user setup).\n"
        f"DAG '{DAG_ID}' is paused at creation; unpause it or trigger a date from the UI.\n"
        f"Pipeline home: {home.settings.home}; Airflow home: {home.path}. Stop with Ctrl-C.",
        flush=True,
    )
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    proc = home.popen("standalone", start_new_session=True,
                      preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        print("\nStopping Airflow ...", flush=True)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not abandon the stop
        return stop_session(proc, stop_timeout)


def stop_session(proc: subprocess.Popen, timeout: float) -> int:
    """Stop a process started with ``start_new_session=True`` and everything in its session."""
    import signal

    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            if sig == signal.SIGINT:
                proc.send_signal(sig)
            else:
                os.killpg(proc.pid, sig)  # the session we started (its id is the child's pid)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            if sig == signal.SIGINT:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)  # leftovers of the session, if any
            break
        except subprocess.TimeoutExpired:
            continue
    print("Airflow stopped.", flush=True)
    return 0


def dbt_node_list(manifest: Mapping) -> dict:
    """The DAG's view of a dbt manifest: models, seeds and snapshots with parents and tests."""
    kinds = ("model", "seed", "snapshot")
    nodes = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] in kinds}
    tests: dict[str, set[str]] = {uid: set() for uid in nodes}
    # a night's data tests; unit tests run in `make test`, not in a night (pipelines.ops.nightly.build)
    checks = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    for check in checks:
        for parent in check.get("depends_on", {}).get("nodes", []):
            if parent in tests:
                tests[parent].add(check["unique_id"])
    listed = []
    for uid, node in sorted(nodes.items()):
        layer = node["fqn"][1] if node["resource_type"] == "model" and len(node["fqn"]) > 2 else f"{node['resource_type']}s"
        description = (node.get("description") or "").strip().splitlines()
        listed.append(
            {
                "unique_id": uid,
                "name": node["name"],
                "resource_type": node["resource_type"],
                "layer": layer,
                "depends_on": sorted(p for p in node.get("depends_on", {}).get("nodes", []) if p in nodes),
                "tests": sorted(tests[uid]),
                "description": description[0] if description else "",
            }
        )
    return {
        "about": "dbt nodes shown by the segment_mart_nightly DAG; regenerate with "
        "`python -m pipelines.ops.airflow_home dbt-nodes` after changing the dbt project",
        "nodes": listed,
    }


def parse_dbt_nodes(settings: Settings | None = None) -> dict:
    """`dbt parse` the project (into a scratch target) and return :func:`dbt_node_list`."""
    import json
    import tempfile

    settings = settings or get_settings()
    with tempfile.TemporaryDirectory(prefix="segment-mart-dbt-parse-") as scratch:
        env = os.environ | {
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "SEGMENT_MART_DBT_WAREHOUSE": str(Path(scratch) / "parse.duckdb"),
        }
        proc = subprocess.run(
            [str(VENV_BIN / "dbt"), "parse", "--project-dir", str(settings.dbt_project_dir),
             "--profiles-dir", str(settings.dbt_project_dir), "--target-path", scratch,
             "--log-path", scratch, "--no-partial-parse"],
            cwd=settings.dbt_project_dir, env=env, capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"dbt parse failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}")
        manifest = json.loads((Path(scratch) / "manifest.json").read_text())
    return dbt_node_list(manifest)


def write_dbt_nodes(settings: Settings | None = None, path: Path | None = None) -> Path:
    """Refresh ``dags/dbt_nodes.json`` from the dbt project (the DAG's per-model tasks)."""
    import json

    path = path or DAGS_FOLDER / "dbt_nodes.json"
    text = json.dumps(parse_dbt_nodes(settings), indent=1, sort_keys=True) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def shell_exports(home: AirflowHome) -> str:
    env = home.env(base={"PATH": os.environ.get("PATH", "")})
    keys = sorted(k for k in env if k.startswith(("AIRFLOW", "SEGMENT_MART_")) or k in ("PATH", "PYTHONPATH"))
    return "\n".join(f"export {k}={_shell_quote(env[k])}" for k in keys)


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.ops.airflow_home", description=__doc__.split("\n")[0])
    parser.add_argument("--airflow-home", type=Path, default=None, help="default: <SEGMENT_MART_HOME>/airflow")
    parser.add_argument("--port", type=int, default=DEFAULT_API_PORT, help="API server / UI port")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="migrate the metadata DB and create the warehouse pool")
    sub.add_parser("standalone", help="run every Airflow component locally with the UI")
    sub.add_parser("env", help="print shell exports to run plain `airflow ...` on this home")
    sub.add_parser("dbt-nodes", help="refresh dags/dbt_nodes.json (the DAG's per-model tasks) from dbt")
    test = sub.add_parser("dags-test", help=f"airflow dags test {DAG_ID} for each date, in order")
    test.add_argument("dates", nargs="+", type=dt.date.fromisoformat)
    args = parser.parse_args(argv)

    home = airflow_home(args.airflow_home, api_port=args.port)
    if args.command == "prepare":
        prepare(home, quiet=False)
    elif args.command == "standalone":
        return standalone(home)
    elif args.command == "env":
        print(shell_exports(home))
    elif args.command == "dbt-nodes":
        print(f"wrote {write_dbt_nodes(home.settings)}")
    elif args.command == "dags-test":
        prepare(home)
        results = dags_test(home, args.dates, echo=True)
        return 0 if all(r.ok for r in results) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
