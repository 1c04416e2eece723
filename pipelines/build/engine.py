"""Which engine builds the night, and whether it can run here.

``SEGMENT_MART_ENGINE=duckdb`` (the default) builds on the embedded DuckDB warehouse;
``spark`` builds with dbt-spark. The dbt target is the engine's name unless
``SEGMENT_MART_DBT_TARGET`` names another one of dbt_project/profiles.yml (``spark_thrift``: a
Spark cluster through its Thrift server; checked to answer and to write where the gate reads). The local ``spark`` target runs Spark inside
the dbt process (PySpark starts a JVM), so it needs PySpark and Java 17 or newer: a
night on it checks both before doing anything and fails with what to install.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

from pipelines.errors import Transient
from pipelines.settings import Settings

#: Spark 4 runs on Java 17 and 21.
MIN_JAVA = 17
#: the dbt target of a Spark cluster reached through its Thrift server (dbt_project/profiles.yml)
THRIFT_TARGET = "spark_thrift"


class EngineUnavailable(Transient, RuntimeError):
    """The selected engine cannot run on this machine; the message says what to install."""


def dbt_target(settings: Settings) -> str:
    return settings.dbt_target or settings.engine


def _java_executable() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


def java_major_version(java: str) -> int | None:
    """The major version `java -version` reports (8 for 1.8), None when it cannot say."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def check_engine(settings: Settings) -> None:
    """Raise EngineUnavailable unless the night's engine can start here (cheap: no JVM)."""
    if dbt_target(settings) == THRIFT_TARGET:
        check_thrift_server(settings)
        return
    if dbt_target(settings) != "spark":
        return  # DuckDB is a Python package of the project
    missing = []
    for module, package in (("pyspark", "pyspark"), ("dbt.adapters.spark", "dbt-spark[session]")):
        if importlib.util.find_spec(module) is None:
            missing.append(f"the Python package {package} (make install installs the locked set)")
    java = _java_executable()
    if java is None:
        missing.append(
            f"Java {MIN_JAVA} or newer (`apt-get install openjdk-{MIN_JAVA}-jre-headless`, "
            "or set JAVA_HOME); none found on PATH or in JAVA_HOME"
        )
    else:
        version = java_major_version(java)
        if version is None or version < MIN_JAVA:
            missing.append(
                f"Java {MIN_JAVA} or newer (`apt-get install openjdk-{MIN_JAVA}-jre-headless`, "
                f"or point JAVA_HOME at one); {java} is version {version or 'unknown'}"
            )
    if missing:
        raise EngineUnavailable(
            "SEGMENT_MART_ENGINE=spark builds with PySpark in a local JVM, which needs:\n"
            + "\n".join(f"  - {m}" for m in missing)
            + "\nInstall it, or run the night on DuckDB (SEGMENT_MART_ENGINE=duckdb, the default)."
        )


def check_thrift_server(settings: Settings) -> None:
    """Raise EngineUnavailable unless the Thrift server of the ``spark_thrift`` target answers and
    writes where the gate and the publish will read (setting ``spark_warehouse``): a night that
    would build into one warehouse and publish from another stops before it ingests."""
    from pipelines.build.spark_marts import spark_warehouse

    where = f"{settings.spark_thrift_host}:{settings.spark_thrift_port}"
    try:
        from pyhive import hive
    except ImportError:
        raise EngineUnavailable("the spark_thrift target needs PyHive (dbt-spark[PyHive]; make install "
                                "installs the locked set)") from None
    try:
        con = hive.connect(settings.spark_thrift_host, settings.spark_thrift_port, username="segment_mart",
                           auth="NONE")
        try:
            cursor = con.cursor()
            cursor.execute("set spark.sql.warehouse.dir")
            rows = cursor.fetchall()
        finally:
            con.close()
    except Exception as exc:  # thrift transport errors have no common base worth naming
        raise EngineUnavailable(
            f"no Spark Thrift server answers on {where} ({type(exc).__name__}: {exc}): start the cluster "
            "(`make spark-cluster`, docs/spark.md) or point SEGMENT_MART_SPARK_THRIFT_HOST/PORT at one") from exc
    served = rows[0][1] if rows else ""
    if _as_path(served) != spark_warehouse(settings):
        raise EngineUnavailable(
            f"the Spark Thrift server on {where} writes to {served}, but the gate and the publish read "
            f"{spark_warehouse(settings)} (setting spark_warehouse): set SEGMENT_MART_SPARK_WAREHOUSE to "
            "the server's warehouse dir, or restart the cluster with this setting")


def _as_path(location: str) -> Path | None:
    from urllib.parse import unquote, urlparse

    parsed = urlparse(location)
    if parsed.scheme not in ("", "file"):
        return None
    return Path(unquote(parsed.path) if parsed.scheme else location)
