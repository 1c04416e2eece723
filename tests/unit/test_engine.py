"""Engine selection: the dbt target follows SEGMENT_MART_ENGINE, and a Spark night on a
machine without Java fails at once, saying what to install."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipelines.build.engine import EngineUnavailable, check_engine, dbt_target, java_major_version
from pipelines.ops import nightly
from pipelines.settings import Settings


def test_engine_selects_the_dbt_target(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SEGMENT_MART_ENGINE", raising=False)
    assert dbt_target(Settings(home=tmp_path)) == "duckdb"
    monkeypatch.setenv("SEGMENT_MART_ENGINE", "spark")
    assert dbt_target(Settings(home=tmp_path)) == "spark"
    monkeypatch.setenv("SEGMENT_MART_DBT_TARGET", "spark_thrift")
    assert dbt_target(Settings(home=tmp_path)) == "spark_thrift"
    monkeypatch.setenv("SEGMENT_MART_ENGINE", "oracle")
    with pytest.raises(ValueError, match="duckdb"):
        Settings(home=tmp_path)


def test_java_here_is_new_enough() -> None:
    import shutil

    java = shutil.which("java")
    if java is None:
        pytest.skip("no java on this machine")
    assert (java_major_version(java) or 0) >= 17


def test_spark_night_without_java_fails_before_ingesting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    settings = Settings(home=tmp_path / "home", engine="spark")
    with pytest.raises(EngineUnavailable) as info:
        check_engine(settings)
    message = str(info.value)
    assert "Java 17 or newer" in message and "openjdk-17" in message
    assert "SEGMENT_MART_ENGINE=duckdb" in message
    # the night's first step stops before any ingestion writes (no drop is even needed)
    with pytest.raises(EngineUnavailable):
        nightly.run_night(settings, dt.date(2026, 1, 5))
    assert not (settings.home / "warehouse").exists()
    assert not settings.lake.exists()
    # DuckDB nights need no Java
    check_engine(Settings(home=tmp_path / "home"))


def test_an_old_java_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_home = tmp_path / "jdk8"
    (fake_home / "bin").mkdir(parents=True)
    java = fake_home / "bin" / "java"
    java.write_text('#!/bin/sh\necho \'openjdk version "1.8.0_412"\' >&2\n')
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(fake_home))
    assert java_major_version(str(java)) == 8
    with pytest.raises(EngineUnavailable, match="version 8"):
        check_engine(Settings(home=tmp_path / "home", engine="spark"))


def test_a_cluster_night_stops_when_no_thrift_server_answers(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(home=tmp_path / "home", engine="spark", dbt_target="spark_thrift", spark_thrift_port=port)
    with pytest.raises(EngineUnavailable, match=f"no Spark Thrift server answers on 127.0.0.1:{port}") as info:
        nightly.run_night(settings, dt.date(2026, 1, 5))
    assert "make spark-cluster" in str(info.value)
    assert not settings.lake.exists()
