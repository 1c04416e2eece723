"""Airflow as teams deploy it: a PostgreSQL metadata database, the CeleryExecutor with a Redis
broker and Celery workers, each component a process of its own.

The embedded default stays ``make demo`` / ``make airflow-ui`` (:mod:`pipelines.ops.airflow_home`:
SQLite, the LocalExecutor, ``airflow standalone``). This module starts the other layout on one
machine, from the Debian packages ``postgresql`` and ``redis-server`` (``make airflow-services``
installs them when missing; ``apt-get`` as root):

* **PostgreSQL**: a database cluster of its own (``initdb`` into ``<airflow home>/postgres``,
  trust authentication for the ``airflow`` role, listening on 127.0.0.1 only, its socket in that
  folder), database ``airflow``. As root, PostgreSQL's programs run as the ``postgres`` user
  (``initdb`` refuses root);
* **Redis**: ``redis-server`` on 127.0.0.1 only, no persistence (the broker's queue is
  transient; task state is in PostgreSQL);
* the Airflow components, each its own process: ``api-server`` (the UI and the execution API the
  tasks report to), ``scheduler``, ``dag-processor`` and ``celery worker`` (``celery_workers``,
  default 2, ``worker_concurrency`` task processes each).

Configuration reaches every component as ``AIRFLOW__*`` variables
(:meth:`CeleryAirflow.airflow_env`) on top of :class:`pipelines.ops.airflow_home.AirflowHome`'s:
``AIRFLOW__CORE__EXECUTOR=CeleryExecutor``, ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` (psycopg2),
``AIRFLOW__CELERY__BROKER_URL`` (redis) and ``AIRFLOW__CELERY__RESULT_BACKEND`` (the same
PostgreSQL database). Everything is stopped by :meth:`CeleryAirflow.stop` (the process groups
this module started, then ``pg_ctl stop``).

Usage::

    python -m pipelines.ops.airflow_services start     # prepare and start everything, then wait (Ctrl-C stops)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.errors import DataProblem
from pipelines.ops.airflow_home import AirflowHome, airflow_home, prepare
from pipelines.settings import get_settings

HOST = "127.0.0.1"
#: Debian's PostgreSQL programs (initdb, pg_ctl, postgres) are not on PATH
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
START_TIMEOUT_SECONDS = 180.0


class ServiceError(DataProblem, RuntimeError):
    """A service could not start; the message names it, its log and what to install."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's program folder."""
    found = sorted(Path("/").glob(POSTGRES_BIN_GLOB.lstrip("/")), key=lambda p: int(p.parent.name)
                   if p.parent.name.isdigit() else 0)
    if not found or not (found[-1] / "initdb").exists():
        raise ServiceError("PostgreSQL is not installed: `make airflow-services` installs it "
                           "(as root: apt-get install postgresql)")
    return found[-1]


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=2):
        return True
    return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _as_postgres_user() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its programs as the `postgres` user."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ServiceError("running as root needs `runuser` (util-linux) to start PostgreSQL as user postgres")
    return [runuser, "-u", "postgres", "--"]


@dataclass
class Postgres:
    """A PostgreSQL database cluster of our own in ``folder``, on 127.0.0.1:``port``."""

    folder: Path
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://airflow@{HOST}:{self.port}/airflow"

    def _own(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            for path in self.folder.rglob("*"):
                shutil.chown(path, "postgres", "postgres")

    def start(self) -> None:
        bin_dir = postgres_bin()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)
        if os.geteuid() == 0:
            closed = [p for p in self.folder.absolute().parents if not p.stat().st_mode & 0o001]
            if closed:
                raise ServiceError(
                    f"PostgreSQL runs as user postgres, which cannot reach {self.folder}: {closed[0]} is closed "
                    "to other users; put the PostgreSQL folder where every parent folder is world-searchable")
        if not (self.data / "PG_VERSION").exists():
            self._own()
            out = subprocess.run(
                [*_as_postgres_user(), str(bin_dir / "initdb"), "-D", str(self.data), "-U", "airflow",
                 "--auth=trust", "--encoding=UTF8", "--no-instructions"],
                capture_output=True, text=True)
            if out.returncode != 0:
                raise ServiceError(f"initdb failed in {self.data}:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
        self._own()
        if _listening(self.port):
            raise ServiceError(f"port {self.port} is taken: choose another one for PostgreSQL")
        # listen on the loopback interface only; the socket in our folder, not /var/run
        options = f"-c listen_addresses={HOST} -p {self.port} -k {self.folder}"
        out = subprocess.run(
            [*_as_postgres_user(), str(bin_dir / "pg_ctl"), "start", "-D", str(self.data), "-l", str(self.log),
             "-w", "-t", str(int(START_TIMEOUT_SECONDS)), "-o", options],
            capture_output=True, text=True)
        if out.returncode != 0:
            raise ServiceError(f"PostgreSQL did not start; {self.log} ends:\n{_tail(self.log)}")
        exists = self.psql("select 1 from pg_database where datname = 'airflow'").strip()
        if exists != "1":
            self.psql("create database airflow owner airflow", database="postgres")

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run(
            ["psql", "-h", HOST, "-p", str(self.port), "-U", "airflow", "-d", database, "-tA", "-c", sql],
            capture_output=True, text=True)
        if out.returncode != 0:
            raise ServiceError(f"psql on port {self.port} failed: {out.stderr.strip()}")
        return out.stdout

    def stop(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        subprocess.run([*_as_postgres_user(), str(postgres_bin() / "pg_ctl"), "stop", "-D", str(self.data),
                        "-m", "fast", "-w"], capture_output=True, text=True)


@dataclass
class Redis:
    folder: Path
    port: int
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise ServiceError("redis-server is not installed: `make airflow-services` installs it "
                               "(as root: apt-get install redis-server)")
        self.folder.mkdir(parents=True, exist_ok=True)
        log = self.folder / "redis.log"
        # no persistence: the broker's queue is transient, task state lives in PostgreSQL
        self.proc = subprocess.Popen(
            [server, "--bind", HOST, "--port", str(self.port), "--protected-mode", "yes", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder), "--logfile", str(log), "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_for(lambda: _listening(self.port), self.proc, f"redis-server on port {self.port}", log)

    def stop(self) -> None:
        if self.proc is not None:
            _end(self.proc)


def _wait_for(ready, proc: subprocess.Popen, what: str, log: Path, timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{what} exited with {proc.returncode}; {log} ends:\n{_tail(log)}")
        if ready():
            return
        time.sleep(1)
    raise ServiceError(f"{what} did not start in {timeout:.0f} s; {log} ends:\n{_tail(log)}")


def _end(proc: subprocess.Popen, grace: float = 60.0) -> None:
    """SIGTERM to the process group we started (its id is the child's pid), SIGKILL after ``grace``."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group (task processes)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class CeleryAirflow:
    """Airflow on PostgreSQL with the CeleryExecutor, for one pipeline home."""

    home: AirflowHome
    postgres: Postgres
    redis: Redis
    celery_workers: int = 2
    worker_concurrency: int = 2
    components: dict[str, subprocess.Popen] = field(default_factory=dict)

    def airflow_env(self) -> dict[str, str]:
        return {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url,
            "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.postgres.url.replace("+psycopg2", ""),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
        }

    def start(self) -> None:
        self.postgres.start()
        self.redis.start()
        self.home.extra_env |= self.airflow_env()
        prepare(self.home)  # db migrate on PostgreSQL, the warehouse pool
        logs = self.home.path / "components"
        logs.mkdir(parents=True, exist_ok=True)
        commands = {"api-server": ["api-server", "--host", HOST, "--port", str(self.home.api_port)],
                    "scheduler": ["scheduler"], "dag-processor": ["dag-processor"]}
        for i in range(1, self.celery_workers + 1):
            # --skip-serve-logs: a worker's log server listens on every interface (Airflow 3.3,
            # airflow/utils/serve_logs/core.py: uvicorn host ""); the API server reads the task
            # logs from the logs folder the workers share here (remote logging on many machines)
            commands[f"celery-worker-{i}"] = ["celery", "worker", "--celery-hostname", f"worker{i}@%h",
                                              "--concurrency", str(self.worker_concurrency), "--skip-serve-logs"]
        for name, args in commands.items():
            log = (logs / f"{name}.log").open("ab")
            self.components[name] = self.home.popen(*args, stdout=log, stderr=subprocess.STDOUT,
                                                    stdin=subprocess.DEVNULL, start_new_session=True)
            log.close()
        _wait_for(lambda: _listening(self.home.api_port), self.components["api-server"],
                  f"airflow api-server on port {self.home.api_port}", logs / "api-server.log")

    def stop(self) -> None:
        # workers first (SIGTERM: a Celery worker finishes its running tasks' bookkeeping), then
        # the scheduler and the rest, then the services
        for name in sorted(self.components, key=lambda n: (not n.startswith("celery"), n)):
            _end(self.components[name])
        self.components.clear()
        self.redis.stop()
        self.postgres.stop()


def celery_airflow(path: Path, settings=None, api_port: int | None = None, extra_env: dict | None = None,
                   celery_workers: int = 2) -> CeleryAirflow:
    settings = settings or get_settings()
    home = airflow_home(path, settings=settings, api_port=api_port or free_port(), extra_env=extra_env)
    return CeleryAirflow(home, Postgres(path / "postgres", free_port()), Redis(path / "redis", free_port()),
                         celery_workers=celery_workers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.ops.airflow_services", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("start",))
    parser.add_argument("--airflow-home", type=Path, default=None, help="default: <SEGMENT_MART_HOME>/airflow-celery")
    parser.add_argument("--port", type=int, default=8080, help="API server / UI port")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers")
    args = parser.parse_args(argv)
    settings = get_settings()
    airflow = celery_airflow((args.airflow_home or settings.home / "airflow-celery").absolute(), settings,
                             api_port=args.port, celery_workers=args.workers)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        airflow.start()
        print(f"Airflow (CeleryExecutor, PostgreSQL on {HOST}:{airflow.postgres.port}, Redis on "
              f"{HOST}:{airflow.redis.port}, {args.workers} Celery workers) on http://{HOST}:{args.port}; "
              "Ctrl-C stops it", flush=True)
        while all(p.poll() is None for p in airflow.components.values()):
            time.sleep(5)
        print("an Airflow component exited; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        airflow.stop()


if __name__ == "__main__":
    sys.exit(main())
