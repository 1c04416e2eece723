"""A standalone Spark cluster on this machine, laid out as it would run on many.

``segment-mart spark-cluster start`` (or ``python -m pipelines.build.spark_cluster start``) starts,
each as its own JVM from the PySpark wheel's ``bin/spark-class`` / ``bin/spark-submit``:

* a standalone **master** (``org.apache.spark.deploy.master.Master``), port setting
  ``spark_master_port`` (7077);
* ``spark_workers`` **workers** (``org.apache.spark.deploy.worker.Worker``, 2), each offering
  ``spark_worker_cores`` cores and ``spark_executor_memory`` to executors; each worker runs one
  **executor** JVM for the Thrift server's application;
* the **Thrift server** (``org.apache.spark.sql.hive.thriftserver.HiveThriftServer2``), a Spark
  application on the master, listening on ``spark_thrift_port`` (10000) for dbt-spark's
  ``thrift`` method (the ``spark_thrift`` target of dbt_project/profiles.yml). It is the
  driver: it plans every statement, and it holds the **metastore**, embedded Derby in
  ``<home>/spark/metastore_db`` (Derby admits one process, and the Thrift server is the only
  one that opens it; a cluster shared by several services would put a Hive metastore service on
  PostgreSQL or MySQL behind it). It writes the relations to the warehouse (setting
  ``spark_warehouse``, default ``<home>/spark/warehouse``), where the quality gate and the
  publish read them (:mod:`pipelines.build.spark_marts`), and reads the raw lake (``lake_dir``):
  both are paths every JVM here sees, as a shared mount or object store would be on many
  machines.

Every server binds to 127.0.0.1 (``SPARK_LOCAL_IP``, ``--host``, the Thrift server's
``hive.server2.thrift.bind.host``); the web UIs of the master and workers take a free port (0;
``status`` names them) and the Thrift application's UI is off. Every JVM has a bounded heap
(docs/spark.md, "The cluster"). Everything the cluster writes is under ``<home>/spark``: logs and
pid files in ``cluster/``, executors' work dirs and scratch.

``stop`` ends the Thrift server (its executors end with its application), then the workers, then
the master: SIGTERM to each process group this module started (ids from its pid files, checked
against the process's command line), SIGKILL after a grace period. ``status`` lists the
processes, their ports and memory. Each start waits until the process listens (the workers: until
the master lists them as alive) and fails with the end of its log otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import Transient
from pipelines.settings import Settings, get_settings

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
THRIFT_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
EXECUTOR_CLASS = "org.apache.spark.executor.CoarseGrainedExecutorBackend"
HOST = "127.0.0.1"
#: How long a JVM may take to listen (a busy 2-core machine: a JVM start is 10-60 s)
START_TIMEOUT_SECONDS = 300.0
STOP_GRACE_SECONDS = 60.0


class ClusterError(Transient, RuntimeError):
    """The cluster could not start or stop; the message names the process and its log."""


@dataclass(frozen=True)
class ClusterProcess:
    name: str  # master, worker-1, worker-2, thrift, executor-<worker>
    pid: int
    role: str  # the JVM's main class


def spark_home() -> Path:
    """The Spark distribution inside the PySpark wheel (bin/spark-class, jars/)."""
    import pyspark

    return Path(pyspark.__file__).parent


def cluster_dir(settings: Settings) -> Path:
    return settings.spark_home / "cluster"


def _pid_file(settings: Settings, name: str) -> Path:
    return cluster_dir(settings) / "pids" / f"{name}.pid"


def _log_file(settings: Settings, name: str) -> Path:
    return cluster_dir(settings) / "logs" / f"{name}.log"


def master_url(settings: Settings) -> str:
    return f"spark://{HOST}:{settings.spark_master_port}"


def _env(settings: Settings) -> dict[str, str]:
    conf = cluster_dir(settings) / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({
        "SPARK_HOME": str(spark_home()),
        # an empty conf dir of our own: no spark-env.sh or spark-defaults.conf from elsewhere
        "SPARK_CONF_DIR": str(conf),
        # every socket and web UI binds here (Spark's Utils.localHostName, WebUI.bind)
        "SPARK_LOCAL_IP": HOST,
        "SPARK_LOCAL_HOSTNAME": HOST,
        # the master's and workers' heap (the launcher reads it for the daemon classes)
        "SPARK_DAEMON_MEMORY": settings.spark_daemon_memory,
        "SPARK_LOCAL_DIRS": str(settings.spark_home / "tmp"),
        "SPARK_WORKER_DIR": str(cluster_dir(settings) / "work"),
        "SPARK_NO_DAEMONIZE": "1",
        # no REST submission server: it would listen on a fixed port (6066), nothing uses it
        "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
    })
    for key in ("SPARK_WORKER_OPTS", "SPARK_DAEMON_JAVA_OPTS", "PYSPARK_SUBMIT_ARGS"):
        env.pop(key, None)
    return env


def _alive(pid: int, role: str, home: Path | None = None) -> bool:
    """True when ``pid`` runs and is the JVM of ``role`` of the cluster in ``home`` (its class
    path starts with that cluster's conf dir): a recycled pid, or another home's cluster, is not
    ours."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z" or role.encode() not in cmdline:
        return False
    return home is None or any(arg.startswith(str(home / "conf").encode()) for arg in cmdline)


def _read_pid(settings: Settings, name: str) -> int | None:
    try:
        return int(_pid_file(settings, name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _roles(settings: Settings) -> list[tuple[str, str]]:
    workers = [(f"worker-{i}", WORKER_CLASS) for i in range(1, settings.spark_workers + 1)]
    return [("master", MASTER_CLASS), *workers, ("thrift", THRIFT_CLASS)]


def processes(settings: Settings) -> list[ClusterProcess]:
    """The running JVMs of this home's cluster: master, workers, Thrift server and executors."""
    out = []
    for name, role in _roles(settings):
        pid = _read_pid(settings, name)
        if pid is not None and _alive(pid, role, cluster_dir(settings)):
            out.append(ClusterProcess(name, pid, role))
            if role == WORKER_CLASS:
                out += [ClusterProcess(f"executor-{name}", child, EXECUTOR_CLASS)
                        for child in _children(pid) if _alive(child, EXECUTOR_CLASS)]
    return out


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (a JVM forks from any thread: /proc/<pid>/task/*/children
    would need every thread, a scan of /proc is simpler)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            out.append(int(entry.name))
    return out


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=2):
        return True
    return False


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _launch(settings: Settings, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    log = _log_file(settings, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    _pid_file(settings, name).parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        # its own session: stop() signals the whole group (spark-class execs the JVM, so the
        # pid is the JVM's; a worker's executors are its children in the same group)
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=cluster_dir(settings))
    _pid_file(settings, name).write_text(f"{proc.pid}\n")
    return proc


def _wait(settings: Settings, name: str, proc: subprocess.Popen, ready, what: str,
          timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ClusterError(f"Spark {name} exited with {proc.returncode} before {what}; "
                               f"{_log_file(settings, name)} ends:\n{_tail(_log_file(settings, name))}")
        if ready():
            return
        time.sleep(1)
    raise ClusterError(f"Spark {name} did not {what} in {timeout:.0f} s; "
                       f"{_log_file(settings, name)} ends:\n{_tail(_log_file(settings, name))}")


def _master_state(settings: Settings) -> dict | None:
    """The master's JSON status (its web UI's /json), None while it does not answer."""
    port = _web_ui_port(settings, "master")
    if port is None:
        return None
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/json/", timeout=5) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def _web_ui_port(settings: Settings, name: str) -> int | None:
    """The port a master's or worker's web UI took (port 0: a free one), from its log."""
    import re

    try:
        text = _log_file(settings, name).read_text(errors="replace")
    except OSError:
        return None
    found = re.findall(r"Bound \w+WebUI to [\d.]+, and started at http://[\d.]+:(\d+)", text)
    return int(found[-1]) if found else None


def _alive_workers(settings: Settings) -> int:
    state = _master_state(settings) or {}
    return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")


def _java_command(settings: Settings, name: str, role: str) -> list[str]:
    spark = spark_home()
    if role == MASTER_CLASS:
        return [str(spark / "bin" / "spark-class"), MASTER_CLASS,
                "--host", HOST, "--port", str(settings.spark_master_port), "--webui-port", "0"]
    if role == WORKER_CLASS:
        return [str(spark / "bin" / "spark-class"), WORKER_CLASS,
                "--host", HOST, "--port", "0", "--webui-port", "0",
                "--cores", str(settings.spark_worker_cores), "--memory", settings.spark_executor_memory,
                "--work-dir", str(cluster_dir(settings) / "work" / name), master_url(settings)]
    return _thrift_command(settings)


def _thrift_command(settings: Settings) -> list[str]:
    from pipelines.build.spark_marts import spark_warehouse_uri

    home = settings.spark_home
    cores = settings.spark_workers * settings.spark_worker_cores
    conf = {
        "spark.driver.host": HOST,
        "spark.driver.bindAddress": HOST,
        "spark.ui.enabled": "false",
        "spark.executor.memory": settings.spark_executor_memory,
        "spark.executor.cores": str(settings.spark_worker_cores),
        "spark.cores.max": str(cores),
        "spark.sql.warehouse.dir": spark_warehouse_uri(settings),
        # the embedded Derby metastore, in the pipeline home (never the current directory)
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={home / 'derby'}",
        "spark.local.dir": str(home / "tmp"),
        "spark.log.structuredLogging.enabled": "false",
        # dbt's threads run statements side by side: share the executors between their jobs
        # instead of queueing a data test behind a model's long job (FIFO, the default)
        "spark.scheduler.mode": "FAIR",
        # The driver keeps the status of past statements even with the UI off (the SQL and
        # Thrift listeners: 1,000 executions and 200 statements by default, each with its
        # plan's text, long for dbt's SQL). Over a night's ~700 statements and a run of unit
        # tests they filled a 1 GB heap: OutOfMemoryError in spark-listener-group-shared,
        # which stopped the SparkContext and failed every later statement (found by the
        # parity test, thrift.log). Keep only a few.
        "spark.sql.ui.retainedExecutions": "20",
        "spark.ui.retainedJobs": "50",
        "spark.ui.retainedStages": "50",
        "spark.ui.retainedTasks": "1000",
        "spark.sql.thriftServer.ui.retainedStatements": "20",
        "spark.sql.thriftServer.ui.retainedSessions": "20",
    }
    args = [str(spark_home() / "bin" / "spark-submit"), "--class", THRIFT_CLASS,
            "--name", "segment-mart-thrift", "--master", master_url(settings),
            "--driver-memory", settings.spark_thrift_driver_memory]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    args += ["spark-internal",
             "--hiveconf", f"hive.server2.thrift.port={settings.spark_thrift_port}",
             "--hiveconf", f"hive.server2.thrift.bind.host={HOST}",
             "--hiveconf", "hive.server2.transport.mode=binary",
             # no per-session operation logs (they would go to /tmp/<user>/operation_logs)
             "--hiveconf", "hive.server2.logging.operation.enabled=false"]
    return args


def _check_java() -> None:
    from pipelines.build.engine import (
        MIN_JAVA,
        EngineUnavailable,
        _java_executable,
        java_major_version,
    )

    java = _java_executable()
    version = java_major_version(java) if java else None
    if version is None or version < MIN_JAVA:
        raise EngineUnavailable(
            f"the Spark cluster needs Java {MIN_JAVA} or newer (`apt-get install openjdk-{MIN_JAVA}-jre-headless`, "
            f"or set JAVA_HOME); found {java or 'none'} (version {version or 'unknown'})")


def start(settings: Settings, progress=print) -> list[ClusterProcess]:
    """Start what is not running yet (master, workers, Thrift server) and wait for each.
    Idempotent: a running cluster of this home is left as it is."""
    _check_java()
    running = {p.name for p in processes(settings)}
    for folder in ("logs", "pids", "work"):
        (cluster_dir(settings) / folder).mkdir(parents=True, exist_ok=True)
    (settings.spark_home / "tmp").mkdir(parents=True, exist_ok=True)
    for name, role in _roles(settings):
        if name in running:
            continue
        if role == THRIFT_CLASS and _listening(settings.spark_thrift_port):
            raise ClusterError(f"port {settings.spark_thrift_port} is taken by another process: "
                               "set SEGMENT_MART_SPARK_THRIFT_PORT to a free one")
        if role == MASTER_CLASS and _listening(settings.spark_master_port):
            raise ClusterError(f"port {settings.spark_master_port} is taken by another process: "
                               "set SEGMENT_MART_SPARK_MASTER_PORT to a free one")
        started = time.monotonic()
        env = _env(settings)
        if role == THRIFT_CLASS:
            # Spark's launcher gives the Thrift server SPARK_DAEMON_MEMORY as heap, before
            # --driver-memory (SparkSubmitCommandBuilder, isThriftServer)
            env["SPARK_DAEMON_MEMORY"] = settings.spark_thrift_driver_memory
        proc = _launch(settings, name, _java_command(settings, name, role), env)
        if role == MASTER_CLASS:
            _wait(settings, name, proc, lambda: _listening(settings.spark_master_port)
                  and _master_state(settings) is not None, f"listen on {settings.spark_master_port}")
        elif role == WORKER_CLASS:
            want = int(name.rsplit("-", 1)[1])
            _wait(settings, name, proc, lambda w=want: _alive_workers(settings) >= w, "register with the master")
        else:
            _wait(settings, name, proc, lambda: _listening(settings.spark_thrift_port),
                  f"listen on {settings.spark_thrift_port}")
        progress(f"spark {name} started (pid {proc.pid}) in {time.monotonic() - started:.0f} s")
    return processes(settings)


def stop(settings: Settings, progress=print, grace: float = STOP_GRACE_SECONDS) -> None:
    """Stop the Thrift server, the workers (and their executors), then the master."""
    for name, role in reversed(_roles(settings)):
        pid = _read_pid(settings, name)
        if pid is not None and _alive(pid, role, cluster_dir(settings)):
            _end_group(pid, role, grace)
            progress(f"spark {name} stopped (pid {pid})")
        elif pid is not None:
            _reap(pid)  # it ended on its own (e.g. the Thrift server after an OutOfMemoryError)
        _pid_file(settings, name).unlink(missing_ok=True)
    left = [p for p in processes(settings)]
    if left:
        raise ClusterError(f"Spark processes still running after stop: {left}")


def _end_group(pid: int, role: str, grace: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)  # the session we started: its id is the JVM's pid
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid, role):
                _reap(pid)
                return
            time.sleep(0.5)
    raise ClusterError(f"Spark process {pid} ({role}) did not end")


def _reap(pid: int, timeout: float = 10.0) -> None:
    """Collect the exit status of ``pid`` when this process started it, waiting until it has
    fully exited. An exiting JVM counts as not alive as soon as its command line is gone, which
    is before it becomes a zombie; a single non-blocking wait then finds nothing to collect and
    the zombie stays in /proc (found by the parity test twice: first all four daemons, then only
    the Thrift server on a busy CI machine). A process another process started is its parent's
    (or init's) to reap."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except OSError:  # ChildProcessError included: not ours, or already collected
            return
        if done == pid:
            return
        if time.monotonic() >= deadline:
            return
        time.sleep(0.1)


@contextlib.contextmanager
def running(settings: Settings, progress=print) -> Iterator[list[ClusterProcess]]:
    """The cluster for the duration of a ``with`` block (tests, the benchmark): stopped after,
    also when starting it failed half-way."""
    try:
        yield start(settings, progress)
    finally:
        stop(settings, progress)


def memory_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MB (VmRSS, VmHWM)."""
    values = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (its own threads; /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status(settings: Settings) -> list[dict]:
    rows = []
    for p in processes(settings):
        rss, peak = memory_mb(p.pid)
        row = {"name": p.name, "pid": p.pid, "rss_mb": round(rss), "peak_rss_mb": round(peak)}
        if p.name == "master":
            row["listens"] = f"{master_url(settings)} (web UI http://{HOST}:{_web_ui_port(settings, 'master')})"
        elif p.name.startswith("worker"):
            row["listens"] = f"web UI http://{HOST}:{_web_ui_port(settings, p.name)}"
        elif p.name == "thrift":
            row["listens"] = f"thrift://{settings.spark_thrift_host}:{settings.spark_thrift_port}"
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.build.spark_cluster", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("start", "stop", "status"))
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        if args.command == "start":
            start(settings)
        elif args.command == "stop":
            stop(settings)
            return 0
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    rows = status(settings)
    for row in rows:
        print(f"{row['name']:<18} pid {row['pid']:<8} rss {row['rss_mb']:>5} MB  {row.get('listens', '')}")
    if not rows:
        print(f"no Spark cluster running for {settings.home}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
