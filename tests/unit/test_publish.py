"""Write-audit-publish on the marts dbt really builds (``real_nights``): a release costs the delta
(unchanged partitions hard-linked), refusals and crashes leave the last publish byte-identical,
publish refuses a warehouse that changed after the gate, readers always see one whole release,
and the published file is locked down and commented. That a rerun of a night (rebuilt by dbt for
real) publishes identical content checksums is proved by the replay test in tests/unit/test_cli.py,
whose last night is that rerun."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import threading
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

import pipelines.build.marts as marts_module
import pipelines.release.publish as publish_module
from pipelines.build.dbt import run_results_path
from pipelines.ops import nightly
from pipelines.quality import check_quarantine
from pipelines.quality.gate import read_gate_result
from pipelines.release import (
    CURRENT,
    MANIFEST_NAME,
    RELEASES_DIR,
    asset_uris,
    chunk_digests,
    open_published,
    published_marts,
    read_manifest,
    verify_release,
)
from pipelines.release.publish import PublishRefused, content_checksum, publish
from pipelines.settings import get_settings
from tests.warehouse import gate, sql


def daily_marts(manifest) -> list[str]:
    """The marts published by as-of date, as the manifest records them (never a list restated
    here: the action feed's mart joined them and such a list went stale)."""
    daily = sorted(name for name, mart in manifest.marts.items() if mart.partition_by == "as_of_date")
    assert "fct_account_tiers_daily" in daily
    return daily


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root``: symlink targets, file bytes (hashed) and modes, following nothing."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath, name)
            if p.name == ".publish.lock":
                continue
            if p.is_symlink():
                out[str(p.relative_to(root))] = "-> " + os.readlink(p)
            elif p.is_file():
                out[str(p.relative_to(root))] = f"{hashlib.sha256(p.read_bytes()).hexdigest()} {p.stat().st_mode:o}"
    return out


def release_dir(settings, manifest) -> Path:
    return settings.published / "releases" / manifest.release_id


def test_publish_swaps_in_a_complete_commented_release(real_nights):
    settings = real_nights.settings
    manifest = read_manifest(settings)
    pub = settings.published
    assert os.readlink(pub / "current") == f"releases/{manifest.release_id}"
    for name in ("segment_mart.duckdb", "manifest.json", "report.html", "parquet"):
        assert os.readlink(pub / name) == f"current/{name}"
    assert manifest.run_date == real_nights.last and manifest.quality["passed"] is True
    assert set(manifest.versions) >= {"segment-mart", "dbt-core", "duckdb", "great-expectations"}
    assert manifest.report["status"] == "built" and manifest.storage_version == "v1.0.0"
    assert (pub / "current" / "quality" / "quality_report.html").exists()
    assert sorted(manifest.marts) == published_marts(settings)
    con = open_published(settings)
    try:
        tag = con.execute("select tags['storage_version'] from duckdb_databases() "
                          "where database_name = current_database()").fetchone()[0]
        assert tag == "v1.0.0+"  # readable by DuckDB 1.0 and later (tests/unit/test_bi_reader.py)
        for mart, info in manifest.marts.items():
            assert con.execute(f"select count(*) from marts.{mart}").fetchone()[0] == info.rows
            if info.partition_by or info.month_column:
                column, parts = ((info.partition_by, info.partitions) if info.partition_by
                                 else (info.month_column, info.months))
                files = sorted((pub / "current" / info.parquet).glob("*.parquet"))
                assert [f.name for f in files] == [f"{column}_{key}.parquet" for key in sorted(parts)]
                if info.partition_by:
                    assert sorted(parts) == [d.isoformat() for d in real_nights.run_dates]
                else:
                    assert len(parts) > 12 and info.parquet == f"parquet/{mart}", mart
                for key, part in parts.items():
                    table = pq.read_table(pub / "current" / part["parquet"])
                    assert table.num_rows == part["rows"]
                    assert {str(v) for v in table.column(column).to_pylist()} == {key}
                assert pq.read_table(pub / "current" / info.parquet).num_rows == info.rows
            else:
                assert pq.read_table(pub / "current" / info.parquet).num_rows == info.rows
        # every table and column carries its dbt description as a comment
        missing = con.execute("select table_name, column_name from duckdb_columns() where schema_name = 'marts' "
                              "and (comment is null or comment = '')").fetchall()
        assert missing == []
        tables = con.execute("select count(*) from duckdb_tables() where schema_name = 'marts' "
                             "and comment is not null and comment <> ''").fetchone()[0]
        assert tables == len(manifest.marts)
        doc = con.execute("select comment from duckdb_columns() where table_name = 'fct_account_tiers_daily' "
                          "and column_name = 'assigned_tier'").fetchone()[0]
        assert "tier" in doc.lower()
    finally:
        con.close()
    assert manifest.build["comments"]["columns_with_comment"] == manifest.build["comments"]["columns"] > 300
    for rel, digest in manifest.files.items():
        assert hashlib.sha256((pub / "current" / rel).read_bytes()).hexdigest() == digest
    assert "segment_mart.duckdb" not in manifest.files  # digested by chunk instead
    assert manifest.chunked["segment_mart.duckdb"]["sha256"] == chunk_digests(pub / "current" / "segment_mart.duckdb")
    assert verify_release(pub / "current") == []
    assert not list((pub / "releases").glob(".tmp-*"))


def test_the_second_night_wrote_only_its_delta(real_nights):
    """Night 2 copied night 1's DuckDB file and added its partitions; night 1's partition files
    are the same inodes in both releases (hard links), only the night's files are new."""
    settings = real_nights.settings
    manifest = read_manifest(settings)
    releases = sorted((settings.published / "releases").iterdir())
    assert len(releases) == 2
    first, second = releases
    assert manifest.build["duckdb"] == "previous release + delta"
    daily = daily_marts(manifest)
    assert manifest.build["partitions_written"] == len(daily)
    assert manifest.build["partitions_linked"] == len(daily)
    d1, d2 = (d.isoformat() for d in real_nights.run_dates)
    for mart in daily:
        old = f"parquet/{mart}/as_of_date_{d1}.parquet"
        new = f"parquet/{mart}/as_of_date_{d2}.parquet"
        assert (first / old).stat().st_ino == (second / old).stat().st_ino
        assert (second / old).stat().st_nlink >= 2
        assert not (first / new).exists() and (second / new).stat().st_nlink == 1
    # a monthly mart's closed months came out unchanged: linked, not re-hashed (the gate tests of
    # tests/unit/test_quality.py show that only the month in progress can differ)
    monthly = [m for m, e in manifest.marts.items() if e.month_column]
    assert "fct_mrr_account_monthly" in monthly
    before = read_manifest_at(first)
    for mart in monthly:
        months, written = manifest.marts[mart].months, manifest.build["months_written_by_mart"].get(mart, [])
        assert len(written) <= 1 and all(k == max(k for k in months if k <= d2) for k in written), (mart, written)
        for key, entry in months.items():
            rel = f"parquet/{mart}/{manifest.marts[mart].month_column}_{key}.parquet"
            assert entry["parquet"] == rel
            if key not in written:
                assert entry == before.marts[mart].months[key]
                assert (first / rel).stat().st_ino == (second / rel).stat().st_ino
    assert manifest.build["months_linked"] == sum(len(manifest.marts[m].months) for m in monthly) \
        - manifest.build["months_written"] > 0
    assert (first / "segment_mart.duckdb").stat().st_ino != (second / "segment_mart.duckdb").stat().st_ino
    # the DuckDB file's digest: only the chunks that differ from night 1's file were hashed, the
    # others' digests are night 1's, and every one matches the bytes
    chunks = manifest.build["duckdb_chunks"]
    old_chunks = read_manifest_at(first).chunked["segment_mart.duckdb"]["sha256"]
    new_chunks = manifest.chunked["segment_mart.duckdb"]["sha256"]
    kept = sum(1 for a, b in zip(old_chunks, new_chunks, strict=False) if a == b)
    assert chunks["total"] == len(new_chunks) and chunks["hashed"] == len(new_chunks) - kept
    assert verify_release(first) == [] and verify_release(second) == []


def read_manifest_at(release: Path):
    from pipelines.release import Manifest

    return Manifest.from_dict(json.loads((release / "manifest.json").read_text()))


def test_a_delta_publish_equals_a_publish_from_nothing(real_home, tmp_path):
    """The release built from the previous one plus the night's delta has the content of a release
    built from nothing out of the same audited warehouse: the same checksums in the manifests and
    the same rows in every table of the two DuckDB files. The delta holds a closed month of a
    monthly mart restated in place (written) next to its unchanged months (linked), and a daily
    mart's partitions all linked."""
    from pipelines.release.publish import combined_checksum, partition_checksums

    settings, last = real_home.settings, real_home.last
    night = read_manifest(settings)
    mart = "fct_mrr_account_monthly"
    closed = sorted(k for k in night.marts[mart].months if k < last.isoformat())
    restated = closed[len(closed) // 2]
    day = dt.date.fromisoformat(restated)
    sql(settings, f"update marts.{mart} set plan_name = coalesce(plan_name, '') || ' (restated)' "
        f"where month_start_date = ? and account_id = (select min(account_id) from marts.{mart} "
        "where month_start_date = ?)", [day, day])
    result = gate(real_home)
    assert result.passed, result.summary()["failed"]
    delta = publish(settings, last, result, build_html_report=False)
    assert delta.build["duckdb"] == "previous release + delta" and delta.build["partitions_linked"] > 0
    assert delta.build["partitions_written"] == 0 and delta.build["months_written_by_mart"] == {mart: [restated]}
    before, after = night.marts[mart].months, delta.marts[mart].months
    assert after[restated]["checksum"] != before[restated]["checksum"]
    assert {k: v for k, v in after.items() if k != restated} == {k: v for k, v in before.items() if k != restated}
    assert {m for m in night.checksums if night.checksums[m] != delta.checksums[m]} == {mart}
    old, new = release_dir(settings, night), release_dir(settings, delta)
    assert (new / after[restated]["parquet"]).stat().st_ino != (old / before[restated]["parquet"]).stat().st_ino
    assert (new / after[closed[0]]["parquet"]).stat().st_ino == (old / before[closed[0]]["parquet"]).stat().st_ino
    assert pq.read_table(new / after[restated]["parquet"]).to_pandas()["plan_name"].str.endswith(" (restated)").sum() == 1

    fresh_settings = get_settings(home=settings.home, published_dir=tmp_path / "fresh")
    fresh = publish(fresh_settings, last, result, build_html_report=False)
    assert fresh.build["duckdb"] == "new file" and fresh.build["partitions_linked"] == 0
    assert fresh.build["months_linked"] == 0 and fresh.build["months_written"] == delta.build["months_written"] \
        + delta.build["months_linked"]
    assert fresh.checksums == delta.checksums and fresh.dataset_checksum == delta.dataset_checksum
    for name, entry in fresh.marts.items():
        for key in ("partitions", "months"):
            assert {k: (v["rows"], v["checksum"]) for k, v in getattr(entry, key).items()} == \
                {k: (v["rows"], v["checksum"]) for k, v in getattr(delta.marts[name], key).items()}, (name, key)
    files = {}
    for name, s in (("delta", settings), ("fresh", fresh_settings)):
        con = open_published(s)
        try:
            files[name] = {}
            for m, e in delta.marts.items():
                columns = [(c["name"], c["type"]) for c in e.columns]
                files[name][m] = content_checksum(con, f"marts.{m}", columns)
                if e.month_column:  # the checksum of the published rows, month by month
                    sums = partition_checksums(con, f"marts.{m}", columns, e.month_column, sorted(e.months))
                    files[name][m + " by month"] = combined_checksum(columns, {k: c for k, (_, c) in sums.items()})
            files[name]["metric views"] = con.execute(
                "select list(view_name || sql order by view_name) from duckdb_views() where schema_name = 'metrics'"
            ).fetchone()[0]
            files[name]["comments"] = con.execute(
                "select list(table_name || column_name || coalesce(comment, '') order by all) from duckdb_columns() "
                "where schema_name = 'marts'").fetchone()[0]
        finally:
            con.close()
    assert files["delta"] == files["fresh"]
    assert {m: files["delta"][m][1] for m, e in delta.marts.items() if not (e.partition_by or e.month_column)} == \
        {m: e.checksum for m, e in delta.marts.items() if not (e.partition_by or e.month_column)}
    assert {m: files["delta"][m + " by month"] for m, e in delta.marts.items() if e.month_column} == \
        {m: e.checksum for m, e in delta.marts.items() if e.month_column}
    assert verify_release(new) == [] and verify_release(release_dir(fresh_settings, fresh)) == []


def test_a_release_of_the_whole_mart_layout_is_upgraded_once(real_home):
    """A current release written before monthly marts were published by month (its manifest:
    per month only rows and fingerprint, one file per monthly mart) is reused for everything else;
    each monthly mart is written whole once, into the new layout, with the content it had, and
    the next publish links its months."""
    settings, last = real_home.settings, real_home.last
    passed = read_gate_result(settings, last)
    path = settings.published / "current" / "manifest.json"
    data = json.loads(path.read_text())
    monthly = sorted(m for m, e in data["marts"].items() if e.get("month_column"))
    for mart in monthly:
        entry = data["marts"][mart]
        entry["parquet"] = f"parquet/{mart}.parquet"
        entry["months"] = {k: {"rows": v["rows"], "fingerprint": v["fingerprint"]} for k, v in entry["months"].items()}
    os.chmod(path, 0o644)
    path.write_text(json.dumps(data))
    upgraded = publish(settings, last, passed, build_html_report=False)
    assert upgraded.build["duckdb"] == "previous release + delta" and upgraded.build["partitions_written"] == 0
    assert upgraded.build["months_linked"] == 0 and sorted(upgraded.build["months_written_by_mart"]) == monthly
    assert {m: e.checksum for m, e in upgraded.marts.items()} == {m: e["checksum"] for m, e in data["marts"].items()}
    again = publish(settings, last, passed, build_html_report=False)
    assert again.build["months_written"] == 0 and again.build["months_linked"] == upgraded.build["months_written"]
    assert again.checksums == upgraded.checksums and verify_release(release_dir(settings, again)) == []


def test_publish_needs_the_nights_gate_result(real_home):
    shutil.rmtree(real_home.settings.quality / real_home.last.isoformat())
    before = snapshot(real_home.settings.published)
    with pytest.raises(PublishRefused, match=r"no quality gate result .*segment-mart audit --run-date"):
        nightly.publish(real_home.settings, real_home.last)
    assert snapshot(real_home.settings.published) == before


def test_failed_gate_and_refusals_leave_the_publish_byte_identical(real_home):
    settings, last = real_home.settings, real_home.last
    passed = read_gate_result(settings, last)
    before = snapshot(settings.published)
    sql(settings, "update marts.fct_account_tiers_daily set tier_score = 150 where as_of_date = ?", [last])
    bad = gate(real_home)
    assert not bad.passed
    with pytest.raises(PublishRefused, match=r"(?s)tier_score.*quality_report.html"):
        publish(settings, last, bad)
    with pytest.raises(PublishRefused, match="quality gate failed"):  # the recorded result, as the DAG reads it
        nightly.publish(settings, last)
    early = check_quarantine(settings, last)
    with pytest.raises(PublishRefused, match="quarantine check"):
        publish(settings, last, early)
    with pytest.raises(PublishRefused, match=f"quality gate of {last}"):
        publish(settings, real_home.run_dates[0], passed)
    assert snapshot(settings.published) == before
    assert not list((settings.published / "releases").glob(".tmp-*"))


@pytest.mark.parametrize("change", ["earlier partition", "whole mart", "dbt ran again"])
def test_publish_refuses_a_warehouse_changed_after_the_gate(real_home, change):
    settings, last = real_home.settings, real_home.last
    passed = read_gate_result(settings, last)  # the gate that passed for this very warehouse
    assert passed.passed
    before = snapshot(settings.published)
    if change == "earlier partition":
        sql(settings, "update marts.fct_account_health_daily set health_score_change_7d = 0 "
            "where as_of_date = ?", [real_home.run_dates[0]])
        expected = f"fct_account_health_daily: partition\\(s\\) {real_home.run_dates[0]} changed"
    elif change == "whole mart":
        sql(settings, "update marts.dim_accounts set account_name = account_name || ' (renamed)'")
        expected = "dim_accounts: content changed"
    else:
        path = run_results_path(settings, last)
        path.write_text(path.read_text() + "\n")
        expected = "dbt ran again after the gate"
    with pytest.raises(PublishRefused, match=rf"(?s)changed after the quality gate ran.*{expected}.*"
                                             rf"segment-mart audit --run-date {last}"):
        nightly.publish(settings, last)
    assert snapshot(settings.published) == before
    assert not list((settings.published / "releases").glob(".tmp-*"))


def test_publish_trusts_the_gate_only_for_a_warehouse_file_untouched_since(real_home, monkeypatch):
    """The gate records what the file system says about the warehouse file before it reads the
    marts; the publish skips recomputing the fingerprint only when the file provably was not
    written since (ctime: no program can set it back), and otherwise compares contents."""
    settings, last = real_home.settings, real_home.last
    monkeypatch.setattr(marts_module, "WITNESS_SETTLE_SECONDS", 0.0)  # the copy of the home is fresh
    result = gate(real_home)
    assert result.passed and result.fingerprint["warehouse"]["file"][1] == settings.warehouse.stat().st_ino
    manifest = publish(settings, last, result, build_html_report=False)
    assert manifest.build["verify"] == "warehouse file untouched since the gate"
    before = snapshot(settings.published)
    sql(settings, "update marts.dim_accounts set account_name = account_name || ' (renamed)'")
    witnessed = result.fingerprint["warehouse"]["file"]
    os.utime(settings.warehouse, ns=(witnessed[3], witnessed[3]))  # the old modification time put back
    with pytest.raises(PublishRefused, match=r"dim_accounts: content changed"):
        publish(settings, last, result, build_html_report=False)
    assert snapshot(settings.published) == before
    # a witness taken right after the file changed is not trusted (same clock tick): contents compared
    monkeypatch.setattr(marts_module, "WITNESS_SETTLE_SECONDS", 3600.0)
    result = gate(real_home)
    assert publish(settings, last, result, build_html_report=False).build["verify"] == "fingerprints recomputed"


def test_crash_mid_publish_leaves_the_publish_byte_identical(real_home, monkeypatch):
    settings, last = real_home.settings, real_home.last
    before = snapshot(settings.published)
    passed = read_gate_result(settings, last)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(publish_module, "_file_sha256", boom)  # after the export, before the swap
    with pytest.raises(OSError, match="disk full"):
        publish(settings, last, passed)
    assert snapshot(settings.published) == before
    assert not list((settings.published / "releases").glob(".tmp-*"))
    monkeypatch.undo()
    assert publish(settings, last, passed).run_date == last


def test_a_restated_earlier_partition_is_republished(real_home):
    settings, (d1, d2) = real_home.settings, real_home.run_dates
    first = read_manifest(settings)
    sql(settings, "update marts.fct_account_health_daily set health_score_change_7d = 0 where as_of_date = ?", [d1])
    result = gate(real_home)
    assert result.passed, result.summary()["failed"]
    assert result.validated["fct_account_health_daily"] == [d1.isoformat(), d2.isoformat()]
    second = publish(settings, d2, result, build_html_report=False)
    old, new = release_dir(settings, first), release_dir(settings, second)
    restated = f"parquet/fct_account_health_daily/as_of_date_{d1}.parquet"
    untouched = f"parquet/fct_account_tiers_daily/as_of_date_{d1}.parquet"
    assert (new / restated).stat().st_ino != (old / restated).stat().st_ino
    assert (new / untouched).stat().st_ino == (old / untouched).stat().st_ino
    health_before, health_after = first.marts["fct_account_health_daily"], second.marts["fct_account_health_daily"]
    assert health_after.partitions[d1.isoformat()]["checksum"] != health_before.partitions[d1.isoformat()]["checksum"]
    assert health_after.partitions[d2.isoformat()]["checksum"] == health_before.partitions[d2.isoformat()]["checksum"]
    assert {m for m in first.checksums if first.checksums[m] != second.checksums[m]} == {"fct_account_health_daily"}
    con = open_published(settings)
    try:
        assert con.execute("select count(*) from marts.fct_account_health_daily where as_of_date = ? "
                           "and health_score_change_7d <> 0", [d1]).fetchone()[0] == 0
    finally:
        con.close()


@pytest.mark.parametrize("mart", ["dim_accounts", "fct_account_tiers_daily"])
def test_a_mart_changed_with_the_same_row_count_is_rewritten_never_linked(real_home, mart):
    """Publish reuses a mart (or a daily mart's partition) of the previous release only when the
    warehouse's content fingerprint is unchanged, never on a row count alone: a value changed
    in place (same rows) makes that mart, and only it, be written again, in the Parquet file
    and in the DuckDB file. (Issue 17's held-out audit linked whole marts on a matching row count
    and published 11 stale marts.)"""
    settings, (d1, d2) = real_home.settings, real_home.run_dates
    first = read_manifest(settings)
    daily = mart != "dim_accounts"  # a whole mart, or an earlier partition of a daily mart
    sql(settings, f"update marts.{mart} set tier_reason = 'planted: ' || tier_reason "
        f"where {'as_of_date = ? and ' if daily else ''}account_id = "
        f"(select min(account_id) from marts.{mart} where tier_reason is not null)", [d1] if daily else None)
    result = gate(real_home)
    assert result.passed, result.summary()["failed"]
    assert result.marts[mart] == first.marts[mart].rows  # the same row count as the published mart
    second = publish(settings, d2, result, build_html_report=False)
    assert second.marts[mart].rows == first.marts[mart].rows
    assert {m for m in first.checksums if first.checksums[m] != second.checksums[m]} == {mart}
    old, new = release_dir(settings, first), release_dir(settings, second)
    if not daily:
        assert second.build["marts_written"] == [mart]
        rel = f"parquet/{mart}.parquet"
    else:
        assert second.build["marts_written"] == [] and second.build["partitions_written"] == 1
        rel = f"parquet/{mart}/as_of_date_{d1}.parquet"
        assert second.marts[mart].partitions[d2.isoformat()] == first.marts[mart].partitions[d2.isoformat()]
    assert (new / rel).stat().st_ino != (old / rel).stat().st_ino
    assert pq.read_table(new / rel).to_pandas()["tier_reason"].str.startswith("planted: ").sum() == 1
    con = open_published(settings)
    try:
        assert con.execute(f"select count(*) from marts.{mart} where tier_reason like 'planted: %'").fetchone()[0] == 1
    finally:
        con.close()
    # every other whole mart was unchanged and linked, not rewritten
    assert set(second.build["marts_linked"]) == {m for m, e in first.marts.items()
                                                 if e.partition_by is None and e.month_column is None and m != mart}
    assert second.build["months_written"] == 0 and second.build["months_linked"] > 0


def test_old_releases_are_pruned_and_shared_files_survive(real_home):
    settings, last = real_home.settings, real_home.last
    passed = read_gate_result(settings, last)
    first = read_manifest(settings)
    for _ in range(2):
        manifest = publish(settings, last, passed, keep_releases=2, build_html_report=False)
    releases = sorted(p.name for p in (settings.published / "releases").iterdir())
    assert len(releases) == 2 and manifest.release_id in releases
    assert manifest.build["partitions_written"] == 0  # nothing changed: every partition linked
    assert manifest.build["marts_written"] == [] and manifest.build["comments"]["written"] == 0
    assert manifest.build["months_written"] == 0 and manifest.build["months_linked"] > 0
    assert manifest.checksums == first.checksums and manifest.dataset_checksum == first.dataset_checksum
    current = release_dir(settings, manifest)
    for mart in daily_marts(manifest):
        for part in manifest.marts[mart].partitions.values():
            f = current / part["parquet"]
            assert f.stat().st_mode & 0o777 == 0o444  # pruning never made a shared file writable
            assert pq.read_table(f).num_rows == part["rows"]


def test_the_newest_releases_are_kept_when_published_in_the_same_second(tmp_path):
    """Delta publishes take under a second: releases whose ``published_at`` ties are ordered by
    when their manifest was written, so a prune keeps the newest (the one before ``current``, which
    a reader may be opening), never an older one."""
    releases = tmp_path / RELEASES_DIR
    names = [f"2026-04-04_20261206T145715Z_{i:06x}" for i in (0xF3, 0x2A, 0xC1, 0x07)]  # not in name order
    for i, name in enumerate(names):
        (releases / name).mkdir(parents=True)
        manifest = releases / name / MANIFEST_NAME
        manifest.write_text(json.dumps({"published_at": "2026-12-06T14:57:15+00:00"}))
        os.utime(manifest, ns=(1_796_000_000_000_000_000 + i * 100_000_000,) * 2)  # 0.1 s apart
    (tmp_path / CURRENT).symlink_to(f"{RELEASES_DIR}/{names[-1]}")
    removed = publish_module._prune(tmp_path, keep=2)
    assert sorted(removed) == sorted(names[:2])
    assert sorted(p.name for p in releases.iterdir()) == sorted(names[2:])


def test_a_reader_resolves_again_when_its_release_is_pruned_before_it_opens(real_home, monkeypatch):
    """A reader that resolved ``current`` and then lost the race against two publishes and a
    prune opens the new release instead of failing."""
    settings, last = real_home.settings, real_home.last
    passed = read_gate_result(settings, last)
    stale = os.path.realpath(settings.published / "segment_mart.duckdb")
    resolved = []
    real_realpath = os.path.realpath

    def late_reader(path):
        if not resolved:  # the first resolution returns a release that no longer exists
            resolved.append(path)
            for _ in range(2):
                publish(settings, last, passed, keep_releases=1, build_html_report=False)
            assert not os.path.exists(stale)
            return stale
        return real_realpath(path)

    monkeypatch.setattr("pipelines.release.os.path.realpath", late_reader)
    con = open_published(settings)
    try:
        assert con.execute("select count(*) from marts.dim_accounts").fetchone()[0] > 0
    finally:
        con.close()
    assert os.path.dirname(stale) != os.path.dirname(real_realpath(settings.published / "segment_mart.duckdb"))


def _marked(settings, mark: str) -> None:
    sql(settings, f"update marts.dim_accounts set account_name = split_part(account_name, ' #', 1) || ' #{mark}'")


def test_readers_see_the_old_or_the_new_release_never_a_mix(real_home):
    """Two audited states of the warehouse (account names marked A or B) published in turn while
    readers query the stable path; a session holding the first release keeps reading it."""
    settings, last = real_home.settings, real_home.last
    warehouse = settings.warehouse
    states = {}
    for mark in ("A", "B"):
        _marked(settings, mark)
        result = gate(real_home)
        assert result.passed, result.summary()["failed"]
        states[mark] = (warehouse.with_name(f"state_{mark}.duckdb"), result)
        shutil.copy2(warehouse, states[mark][0])
    shutil.copy2(states["A"][0], warehouse)
    publish(settings, last, states["A"][1], keep_releases=2, build_html_report=False)
    held = open_published(settings)
    held_marks = held.execute("select distinct split_part(account_name, ' #', 2) from marts.dim_accounts").fetchall()
    stop = threading.Event()
    seen: list[str] = []
    errors: list[BaseException] = []

    def reader() -> None:
        session = held.cursor()
        while not stop.is_set():
            try:
                con = open_published(settings)
                try:
                    marks = con.execute("select distinct split_part(account_name, ' #', 2) "
                                        "from marts.dim_accounts").fetchall()
                    run_date = con.execute("select max(as_of_date) from marts.fct_account_tiers_daily").fetchone()[0]
                finally:
                    con.close()
                assert len(marks) == 1 and run_date == last, (marks, run_date)
                seen.append(marks[0][0])
                assert session.execute("select distinct split_part(account_name, ' #', 2) "
                                       "from marts.dim_accounts").fetchall() == held_marks
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for mark in ("B", "A", "B"):
            shutil.copy2(states[mark][0], warehouse)
            publish(settings, last, states[mark][1], keep_releases=2, build_html_report=False)
    finally:
        stop.set()
        for t in threads:
            t.join()
    held_after = held.execute("select count(*) from marts.dim_accounts").fetchone()[0]
    held.close()
    assert not errors, errors[0]
    assert seen and set(seen) <= {"A", "B"}
    assert held_after > 0  # its release was pruned meanwhile; the open file still reads
    con = open_published(settings)
    assert con.execute("select distinct split_part(account_name, ' #', 2) from marts.dim_accounts").fetchall() == [("B",)]
    con.close()


def test_published_file_is_read_only_without_external_access(real_nights, tmp_path):
    con = open_published(real_nights.settings)
    try:
        assert con.execute("select count(*) from marts.dim_accounts").fetchone()[0] > 0
        csv = tmp_path / "x.csv"
        csv.write_text("a\n1\n")
        for statement in (
            f"select * from read_csv('{csv}')",
            f"copy marts.dim_accounts to '{tmp_path / 'out.csv'}'",
            f"attach '{tmp_path / 'other.duckdb'}' as other",
            "install httpfs",
        ):
            with pytest.raises(duckdb.PermissionException):
                con.execute(statement)
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("set enable_external_access = true")
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("create table marts.x as select 1")
    finally:
        con.close()
    assert not (tmp_path / "out.csv").exists()


def test_asset_uris_are_distinct_airflow_assets(real_nights):
    from airflow.sdk import Asset

    settings = real_nights.settings
    uris = asset_uris(settings)
    assert sorted(uris) == published_marts(settings)
    assets = {Asset(name=f"segment_mart.marts.{m}", uri=u).uri for m, u in uris.items()}
    assert len(assets) == len(uris)  # Airflow keeps the query string (it drops #fragments)
    assert uris["dim_accounts"] == f"file://{settings.published.absolute()}/segment_mart.duckdb?table=marts.dim_accounts"


def test_manifest_round_trips(real_nights):
    settings = real_nights.settings
    data = json.loads((settings.published / "manifest.json").read_text())
    assert data["run_date"] == real_nights.last.isoformat() and data["manifest_version"] == 2
    assert data["marts"]["dim_accounts"]["columns"][0] == {"name": "account_id", "type": "VARCHAR"}
    assert data["marts"]["fct_account_tiers_daily"]["partition_by"] == "as_of_date"
    assert read_manifest(settings).to_dict() == data
