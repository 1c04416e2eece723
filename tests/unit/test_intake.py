"""Inputs real exports carry (issue 12, items 5 and 6), through the real loader and the intake
checks; driven by the generator's named defects (pipelines/lab/generate/defects.py) where one exists.
Each of these failed (or passed silently) on the loader that wrote DuckDB tables."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipelines.contract import get_entity
from pipelines.intake import lake
from pipelines.intake.ingest import ingest, ingest_source
from pipelines.intake.landing import SourceRejected
from pipelines.lab.generate import generate
from pipelines.ops import nightly
from pipelines.ops.run_lock import RunInProgress
from pipelines.quality import QualityGateFailed, check_quarantine
from pipelines.quality.intake import run_intake_checks
from pipelines.settings import Settings
from tests.drops import VALID_ROWS, make_drop, write_csv
from tests.raw_lake import rows

D1 = dt.date(2026, 1, 5)
ROOT = Path(__file__).resolve().parents[2]


def quarantine(settings: Settings, entity: str) -> list[tuple]:
    return rows(settings, "select line, column_name, value, reason from raw._quarantine "
                          f"where entity = '{entity}' order by line, column_name")


def generated(settings: Settings, *defects: str, accounts: int = 30, drop_days: int = 1):
    summary = generate(settings.landing, accounts=accounts, start_date=D1, days=12, drop_days=drop_days,
                       defects=defects, seed=3)
    return summary, [dt.date.fromisoformat(str(d)) for d in summary.run_dates]


def report(summary, defect: str) -> dict:
    (found,) = [d for d in summary.defects if d["defect"] == defect]
    return found


def check(result_checks, name: str):
    (found,) = [c for c in result_checks if c.name == name]
    return found


# --- files as real exports write them --------------------------------------------------------


def test_crlf_header_with_lf_rows_loads_every_row_on_its_line(settings: Settings) -> None:
    summary, (night,) = generated(settings, "crlf_header")
    path = Path(report(summary, "crlf_header")["file"])
    assert path.read_bytes().split(b"\n", 1)[0].endswith(b"\r")
    (load,) = ingest_source(settings, night, "usage")
    assert load.rows_read == load.rows_loaded == summary.events_per_drop[night.isoformat()]
    assert load.rows_quarantined == 0
    lines = rows(settings, "select min(_source_line), max(_source_line), count(*) from raw.usage__events")
    assert lines == [(2, load.rows_read + 1, load.rows_read)]


def test_utf8_byte_order_mark_is_skipped(settings: Settings) -> None:
    summary, (night,) = generated(settings, "utf8_bom")
    assert Path(report(summary, "utf8_bom")["file"]).read_bytes().startswith(b"\xef\xbb\xbf")
    nightly.check_extracts(settings, night, ("crm",))
    loads = {r.entity: r for r in ingest_source(settings, night, "crm")}
    assert loads["accounts"].rows_loaded == loads["accounts"].rows_read > 0
    assert rows(settings, "select count(*) from raw.crm__accounts where account_id is null") == [(0,)]


def test_utf16_is_reported_as_utf16_with_an_iconv_hint(settings: Settings) -> None:
    summary, (night,) = generated(settings, "utf16")
    with pytest.raises(SourceRejected) as info:
        ingest_source(settings, night, "crm")
    message = str(info.value)
    assert f"{report(summary, 'utf16')['file']}: is UTF-16 (LE) text, not UTF-8" in message
    assert "iconv -f UTF-16LE -t UTF-8" in message and "binary" not in message


@pytest.mark.parametrize("where", ["early", "late"])
def test_a_nul_byte_quarantines_its_row_with_its_line_wherever_it_is(settings: Settings, where: str) -> None:
    if where == "late":  # the generator's defect: the last row, beyond the first 64 KiB
        summary, (night,) = generated(settings, "nul_byte", accounts=300)
        defect = report(summary, "nul_byte")
        assert Path(defect["file"]).stat().st_size > 64 * 1024
        expected_line, column = defect["line"], defect["column"]
    else:  # in the first 64 KiB (the old loader rejected the source with no line)
        night = D1
        drop = make_drop(settings.landing, night)
        path = drop / "crm" / "activities.csv"
        path.write_bytes(path.read_bytes().replace(b"act_2", b"act\x00_2"))
        expected_line, column = 3, "activity_id"
    loads = {r.entity: r for r in ingest_source(settings, night, "crm")}
    assert loads["activities"].rows_quarantined == 1
    (bad,) = quarantine(settings, "activities")
    assert bad[0] == expected_line and bad[1] == column and "NUL byte" in bad[3]


def test_future_dated_events_are_quarantined_with_a_configurable_tolerance(tmp_path: Path) -> None:
    strict = Settings(home=tmp_path / "strict", landing_dir=tmp_path / "landing")
    summary, (night,) = generated(strict, "future_events")
    defect = report(summary, "future_events")
    (load,) = ingest_source(strict, night, "usage")
    assert load.rows_quarantined == len(defect["lines"])
    found = quarantine(strict, "events")
    assert [f[0] for f in found] == defect["lines"]
    assert all(f[1] == "occurred_at" and "is in the future" in f[3] and "24 h" in f[3] for f in found)
    lenient = Settings(home=tmp_path / "lenient", landing_dir=tmp_path / "landing",
                       future_event_tolerance_hours=24 * 400)
    (load,) = ingest_source(lenient, night, "usage")
    assert load.rows_quarantined == 0


def test_freshness_is_bounded_on_both_sides(tmp_path: Path) -> None:
    events = [dict(e, occurred_at=f"{D1 - dt.timedelta(days=5)} 08:00:00") for e in VALID_ROWS["usage/events"]]
    events.append(dict(events[0], event_id="ev_future", occurred_at=f"{D1 + dt.timedelta(days=365)} 08:00:00"))
    default = Settings(home=tmp_path / "default", landing_dir=tmp_path / "landing")
    make_drop(default.landing, D1, {"usage/events": events})
    ingest(default, D1)
    recent = check(run_intake_checks(default, D1), "usage events recent")
    assert recent.status == "failed" and "stale" in recent.message  # not passed at -8746 h
    # a future event accepted by a generous ingest still fails the gate's bound
    lenient = Settings(home=tmp_path / "lenient", landing_dir=tmp_path / "landing",
                       future_event_tolerance_hours=24 * 400)
    ingest(lenient, D1)
    gate = Settings(home=lenient.home, landing_dir=lenient.landing)  # the default tolerance
    recent = check(run_intake_checks(gate, D1), "usage events recent")
    assert recent.status == "failed" and "future-dated" in recent.message and recent.observed < -8000


def test_a_header_only_snapshot_stops_the_night_before_dbt(settings: Settings) -> None:
    _, (night,) = generated(settings, "header_only")
    with pytest.raises(QualityGateFailed) as info:
        nightly.run_night(settings, night)
    assert "crm/accounts loaded no rows" in str(info.value)
    assert not (settings.home / "dbt_target").exists(), "dbt must not run"
    # the empty snapshot is the night's partition: nothing falls back to an older drop
    assert lake.partition_files(settings.lake, get_entity("crm", "accounts"), night)


def test_quarantine_share_is_measured_per_entity(settings: Settings) -> None:
    summary, (night,) = generated(settings, "bad_accounts", accounts=200)
    assert report(summary, "bad_accounts")["rows_affected"] == 10
    ingest(settings, night)
    ((read, quarantined),) = rows(settings, "select sum(rows_read), sum(rows_quarantined) from raw._load_audit "
                                            "where source = 'crm'")
    assert quarantined / read < 0.02, "per source the share would pass"
    result = check_quarantine(settings, night)
    assert not result.passed
    (failed,) = result.failed_checks
    assert failed.name == "quarantine share of crm/accounts" and failed.observed == pytest.approx(10 / 200)
    # the message names the file, the first lines and their reasons, and what to do
    first = failed.example_rows[0]
    assert f"rows of {settings.drop_dir(night) / 'crm' / 'accounts.csv'} quarantined" in failed.message
    assert f"line {first['line']} {first['column_name']}: {first['reason']}" in failed.message
    assert "Fix these rows in the export and re-deliver it" in failed.message


def test_columns_named_like_the_loaders_own_are_rejected_by_name(settings: Settings) -> None:
    summary, (night,) = generated(settings, "loader_column")
    with pytest.raises(SourceRejected) as info:
        ingest_source(settings, night, "billing")
    assert f"{report(summary, 'loader_column')['file']}: has column(s) _source_line whose names the loader uses" in str(
        info.value)
    assert "Binder" not in str(info.value)


def test_a_run_date_column_is_rejected_and_a_line_column_is_just_data(settings: Settings) -> None:
    drop = make_drop(settings.landing, D1)
    accounts = [dict(r, _run_date="1999-01-01") for r in VALID_ROWS["crm/accounts"]]
    write_csv(drop / "crm" / "accounts.csv", accounts)
    with pytest.raises(SourceRejected, match="has column\\(s\\) _run_date whose names the loader uses"):
        ingest_source(settings, D1, "crm")
    events = [dict(r, _line="99") for r in VALID_ROWS["usage/events"]]
    write_csv(drop / "usage" / "events.csv", events)
    ingest_source(settings, D1, "usage")
    assert rows(settings, "select _line, _source_line from raw.usage__events order by 2") == [
        ("99", 2), ("99", 3), ("99", 4)]


def test_line_numbers_stay_right_after_multiline_values_and_malformed_records(settings: Settings) -> None:
    summary, (night,) = generated(settings, "multiline_record")
    defect = report(summary, "multiline_record")
    ingest_source(settings, night, "crm")
    found = quarantine(settings, "support_cases")
    assert (defect["malformed_line"], "(row)") in [f[:2] for f in found]
    assert (defect["line"], "csat", "five") in [f[:3] for f in found]
    assert rows(settings, "select min(_source_line) from raw.crm__support_cases") == [(defect["multiline_line"],)]


def test_a_volume_spike_is_a_warning_in_the_quarantine_report(settings: Settings) -> None:
    _, nights = generated(settings, "volume_spike", drop_days=4)  # the first drop holds the history
    for night in nights:
        ingest_source(settings, night, "usage")
        ingest_source(settings, night, "crm")
        ingest_source(settings, night, "billing")
    result = check_quarantine(settings, nights[-1])
    assert result.passed
    (warning,) = [c for c in result.checks if c.status == "warning"]
    assert warning.name == "volume of usage/events" and warning.observed > 10
    assert "volume of usage/events" in json.loads(result.report_json.read_text()).__repr__()


# --- one writer at a time --------------------------------------------------------------------


def _hold_lock(settings: Settings, how: str) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import datetime as dt, sys, time
        from pipelines.ops import run_lock
        with {how}:
            print("held", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_fails_at_once_naming_the_running_one(settings: Settings) -> None:
    proc = _hold_lock(settings, f"run_lock.exclusive({str(settings.home)!r}, dt.date(2026, 1, 5), 'run')")
    try:
        started = time.monotonic()
        with pytest.raises(RunInProgress) as info:
            nightly.build(settings, D1)
        assert time.monotonic() - started < 5
        assert f"another run of this night is in progress (pid {proc.pid})" in str(info.value)
        with pytest.raises(RunInProgress, match=f"pid {proc.pid}"):
            nightly.ingest(settings, D1, "crm")
    finally:
        proc.kill()
        proc.wait()
    make_drop(settings.landing, D1)
    assert nightly.ingest(settings, D1, "crm")  # the lock went with the process


def test_sources_ingest_in_parallel_but_one_source_once(settings: Settings) -> None:
    make_drop(settings.landing, D1)
    proc = _hold_lock(settings, f"run_lock.ingesting({str(settings.home)!r}, dt.date(2026, 1, 5), 'usage')")
    try:
        assert nightly.ingest(settings, D1, "crm")  # another source: allowed
        with pytest.raises(RunInProgress, match="ingest usage"):
            nightly.ingest(settings, D1, "usage")
        with pytest.raises(RunInProgress):
            nightly.build(settings, D1)
    finally:
        proc.kill()
        proc.wait()


def test_json_lines_keep_their_line_numbers_across_blank_lines_and_crlf(settings: Settings) -> None:
    drop = make_drop(settings.landing, D1)
    (drop / "usage" / "events.csv").unlink()
    lines = [json.dumps({k: (v or None) for k, v in r.items()}) for r in VALID_ROWS["usage/events"]]
    bad = json.dumps(dict(VALID_ROWS["usage/events"][0], event_id="ev_9", occurred_at="soon"))
    text = "\ufeff" + lines[0] + "\r\n\r\n" + lines[1] + "\r\n\n" + bad + "\n" + lines[2]  # no final newline
    (drop / "usage" / "events.jsonl").write_bytes(text.encode())
    (load,) = ingest_source(settings, D1, "usage")
    assert (load.rows_read, load.rows_loaded, load.rows_quarantined) == (4, 3, 1)
    assert quarantine(settings, "events") == [(5, "occurred_at", "soon", "unparseable timestamp value 'soon'")]
    assert rows(settings, "select _source_line from raw.usage__events order by 1") == [(1,), (3,), (6,)]
    (drop / "usage" / "events.jsonl").write_text(lines[0] + "\n[1, 2]\n")
    with pytest.raises(SourceRejected, match="line 2 is not a JSON object"):
        ingest_source(settings, D1, "usage")


def test_freshness_names_a_missing_drop_and_a_partition_that_is_not_the_audited_one(settings: Settings) -> None:
    drop = make_drop(settings.landing, D1)
    ingest(settings, D1)
    (drop / "crm" / "nps_responses.csv").write_bytes(b"")  # a rerun of crm is rejected: audit says failed
    with pytest.raises(SourceRejected):
        ingest_source(settings, D1, "crm")
    # an ingest killed between two partition swaps: billing's partition is from another load
    (path,) = lake.partition_files(settings.lake, get_entity("billing", "invoices"), D1)
    path.rename(path.with_name(lake.part_file_name("20260105-interrupted", 0)))
    checks = {c.source: c for c in run_intake_checks(settings, D1) if c.name == f"drop for {D1} loaded"}
    assert checks["crm"].status == "failed" and "crm/nps_responses failed to load: is empty" in checks["crm"].message
    assert checks["billing"].status == "failed"
    assert "not the one the load audit recorded" in checks["billing"].message
    assert f"segment-mart ingest --run-date {D1} --source billing" in checks["billing"].message
    assert checks["usage"].status == "passed"
