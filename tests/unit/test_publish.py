"""Write-audit-publish: atomic swap, refusals leave the last publish byte-identical, reruns give the
same checksums, readers always see one whole release, the published file is locked down."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

import pipelines.publish as publish_module
from pipelines.publish import (
    PublishRefused,
    asset_uris,
    open_published,
    publish,
    published_marts,
    read_manifest,
)
from pipelines.quality import check_quarantine, run_quality_gate
from pipelines.quality.testing import DEMO_SUITES, build_demo_warehouse, demo_settings

RUN = dt.date(2026, 1, 5)
NEXT = RUN + dt.timedelta(days=1)


@pytest.fixture
def settings(tmp_path):
    return demo_settings(tmp_path)


def night(settings, run_date=RUN, **kwargs):
    build_demo_warehouse(settings, run_date, **kwargs)
    return run_quality_gate(settings, run_date)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root``: symlink targets and file bytes (hashed), following nothing."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath, name)
            if p.name == ".publish.lock":
                continue
            if p.is_symlink():
                out[str(p.relative_to(root))] = "-> " + os.readlink(p)
            elif p.is_file():
                out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_publish_swaps_in_a_complete_release(settings):
    gate = night(settings)
    manifest = publish(settings, RUN, gate)
    pub = settings.published
    assert os.readlink(pub / "current") == f"releases/{manifest.release_id}"
    for name in ("segment_mart.duckdb", "manifest.json", "report.html", "parquet"):
        assert os.readlink(pub / name) == f"current/{name}"
    assert read_manifest(settings) == manifest
    assert manifest.run_date == RUN and manifest.quality["passed"] is True
    assert set(manifest.versions) >= {"segment-mart", "dbt-core", "duckdb", "great-expectations"}
    assert manifest.report["status"] == "built"
    assert (pub / "current" / "quality" / "quality_report.html").exists()
    con = open_published(settings)
    try:
        for mart, info in manifest.marts.items():
            assert con.execute(f"select count(*) from marts.{mart}").fetchone()[0] == info.rows
            assert pq.read_table(pub / info.parquet).num_rows == info.rows
        assert sorted(manifest.marts) == published_marts(settings) == sorted(DEMO_SUITES)
    finally:
        con.close()
    for rel, digest in manifest.files.items():
        assert hashlib.sha256((pub / "current" / rel).read_bytes()).hexdigest() == digest
    assert not list((pub / "releases").glob(".tmp-*"))


def test_failed_gate_and_refusals_leave_the_publish_byte_identical(settings):
    publish(settings, RUN, night(settings))
    before = snapshot(settings.published)

    bad = night(settings, NEXT, defect="tier")
    assert not bad.passed
    with pytest.raises(PublishRefused, match=r"(?s)assigned_tier.*quality_report.html"):
        publish(settings, NEXT, bad)
    assert snapshot(settings.published) == before

    build_demo_warehouse(settings, NEXT, quarantined={"crm": 500})
    early = check_quarantine(settings, NEXT)
    assert not early.passed
    with pytest.raises(PublishRefused):
        publish(settings, NEXT, early)
    assert snapshot(settings.published) == before

    good = night(settings, NEXT)
    with pytest.raises(PublishRefused, match="quality gate of 2026-01-06"):
        publish(settings, RUN, good)
    build_demo_warehouse(settings, NEXT, accounts=25)  # warehouse changed after the gate
    with pytest.raises(PublishRefused, match="changed since the gate ran"):
        publish(settings, NEXT, good)
    assert snapshot(settings.published) == before
    assert not list((settings.published / "releases").glob(".tmp-*"))

    # the next good night publishes normally
    manifest = publish(settings, NEXT, night(settings, NEXT, accounts=25))
    assert read_manifest(settings).run_date == NEXT
    assert manifest.marts["dim_accounts"].rows == 25


def test_crash_mid_publish_leaves_the_publish_byte_identical(settings, monkeypatch):
    publish(settings, RUN, night(settings))
    before = snapshot(settings.published)
    gate = night(settings, NEXT)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(publish_module, "_file_sha256", boom)  # after export, before the swap
    with pytest.raises(OSError, match="disk full"):
        publish(settings, NEXT, gate)
    assert snapshot(settings.published) == before
    assert not list((settings.published / "releases").glob(".tmp-*"))
    monkeypatch.undo()
    assert publish(settings, NEXT, gate).run_date == NEXT


def test_rerun_gives_identical_content_checksums(settings):
    first = publish(settings, RUN, night(settings))
    build_demo_warehouse(settings, RUN)
    con = duckdb.connect(str(settings.warehouse))  # same rows, different physical order
    con.execute("create or replace table marts.dim_accounts as select * from marts.dim_accounts order by account_id desc")
    con.close()
    second = publish(settings, RUN, run_quality_gate(settings, RUN))
    assert second.release_id != first.release_id
    assert second.checksums == first.checksums
    assert second.dataset_checksum == first.dataset_checksum
    assert second.row_counts == first.row_counts
    # and a real change of one value changes that mart's checksum only
    build_demo_warehouse(settings, RUN)
    con = duckdb.connect(str(settings.warehouse))
    con.execute("update marts.dim_accounts set account_name = 'Renamed' where account_id = 'A0002'")
    con.close()
    third = publish(settings, RUN, run_quality_gate(settings, RUN))
    changed = {m for m in first.checksums if first.checksums[m] != third.checksums[m]}
    assert changed == {"dim_accounts"}


def test_old_releases_are_pruned(settings):
    for i in range(4):
        publish(settings, RUN, night(settings, accounts=20 + i), keep_releases=2)
    releases = sorted(p.name for p in (settings.published / "releases").iterdir())
    assert len(releases) == 2
    assert os.readlink(settings.published / "current").split("/")[-1] in releases


def test_readers_see_the_old_or_the_new_release_never_a_mix(settings):
    sizes = [20, 24, 28, 32, 22]
    publish(settings, RUN, night(settings, accounts=sizes[0]), keep_releases=2)
    held = open_published(settings)  # a BI session holding the file open across every publish
    held_rows = held.execute("select count(*) from marts.dim_accounts").fetchone()[0]
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def reader() -> None:
        session = held.cursor()  # one DuckDB connection per thread, same open release
        while not stop.is_set():
            try:
                con = open_published(settings)
                try:
                    accounts = con.execute("select count(*) from marts.dim_accounts").fetchone()[0]
                    tiers = con.execute("select count(*) from marts.fct_account_tiers_daily").fetchone()[0]
                    health = con.execute("select count(*) from marts.fct_account_health_daily").fetchone()[0]
                    dist = con.execute("select sum(account_count) from marts.rpt_tier_distribution").fetchone()[0]
                finally:
                    con.close()
                assert accounts == tiers == health == dist, (accounts, tiers, health, dist)
                seen.append(accounts)
                still = session.execute("select count(*) from marts.dim_accounts").fetchone()[0]
                assert still == held_rows
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for n in sizes[1:]:
            publish(settings, RUN, night(settings, accounts=n), keep_releases=2)
    finally:
        stop.set()
        for t in threads:
            t.join()
    held_after = held.execute("select count(*) from marts.fct_account_tiers_daily").fetchone()[0]
    held.close()
    assert not errors, errors[0]
    assert seen and set(seen) <= set(sizes)
    assert held_after == held_rows  # its release was pruned meanwhile; the open file still reads
    assert open_published(settings).execute("select count(*) from marts.dim_accounts").fetchone()[0] == sizes[-1]


def test_published_file_is_read_only_without_external_access(settings, tmp_path):
    publish(settings, RUN, night(settings))
    con = open_published(settings)
    try:
        assert con.execute("select count(*) from marts.dim_accounts").fetchone()[0] == 20
        csv = tmp_path / "x.csv"
        csv.write_text("a\n1\n")
        for sql in (
            f"select * from read_csv('{csv}')",
            f"copy marts.dim_accounts to '{tmp_path / 'out.csv'}'",
            f"attach '{tmp_path / 'other.duckdb'}' as other",
            "install httpfs",
        ):
            with pytest.raises(duckdb.PermissionException):
                con.execute(sql)
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("set enable_external_access = true")
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("create table marts.x as select 1")
    finally:
        con.close()
    assert not (tmp_path / "out.csv").exists()


def test_asset_uris_are_distinct_airflow_assets(settings):
    from airflow.sdk import Asset

    uris = asset_uris(settings)
    assert sorted(uris) == sorted(DEMO_SUITES)
    assets = {Asset(name=f"segment_mart.marts.{m}", uri=u).uri for m, u in uris.items()}
    assert len(assets) == len(uris)  # Airflow keeps the query string (it drops #fragments)
    assert uris["dim_accounts"] == f"file://{settings.published.absolute()}/segment_mart.duckdb?table=marts.dim_accounts"


def test_manifest_round_trips(settings):
    manifest = publish(settings, RUN, night(settings), build_html_report=False)
    data = json.loads((settings.published / "manifest.json").read_text())
    assert data["run_date"] == "2026-01-05"
    assert data["report"] == {"status": "skipped"}
    assert data["marts"]["dim_accounts"]["columns"][0] == {"name": "account_id", "type": "VARCHAR"}
    assert read_manifest(settings) == manifest
