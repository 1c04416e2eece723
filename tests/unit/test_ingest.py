"""Ingestion: typing, quarantine with file/line/column/reason, file-level rejection, idempotency."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from pipelines.contract import ENTITIES, SOURCES
from pipelines.intake.ingest import ingest, ingest_source
from pipelines.intake.landing import SourceRejected
from pipelines.ops.nightly import check_extracts
from pipelines.settings import Settings
from tests.drops import DEFAULT_ENTITIES, VALID_ROWS, make_drop, write_csv, write_jsonl
from tests.raw_lake import rows

D1 = dt.date(2026, 1, 5)
D2 = dt.date(2026, 1, 6)


def quarantine(settings: Settings) -> list[tuple]:
    return rows(
        settings,
        "select source, entity, file, line, column_name, value, reason from raw._quarantine order by file, line, column_name",
    )


def table_dump(settings: Settings) -> dict[str, list[tuple]]:
    """Every raw table's rows, without the wall-clock load time, in a stable order."""
    dump = {}
    for e in DEFAULT_ENTITIES:
        dump[e.raw_table] = rows(
            settings, f"select * exclude (_loaded_at) from raw.{e.raw_table} order by all"
        )
    dump["_quarantine"] = rows(settings, "select * from raw._quarantine order by all")
    dump["_load_audit"] = rows(
        settings, "select * exclude (duration_seconds, load_id, loaded_at) from raw._load_audit order by all"
    )
    return dump


def with_row(entity: str, index: int, **changes: str) -> dict[str, list[dict[str, str]]]:
    data = [dict(r) for r in VALID_ROWS[entity]]
    data[index].update(changes)
    return {entity: data}


def test_clean_drop_loads_every_entity_with_metadata(settings: Settings) -> None:
    drop = make_drop(settings.landing, D1)
    check_extracts(settings, D1)
    results = ingest(settings, D1)
    assert {(r.source, r.entity) for r in results} == {(e.source, e.name) for e in DEFAULT_ENTITIES}
    assert all(r.rows_quarantined == 0 and r.rows_read == r.rows_loaded for r in results)
    (row,) = rows(
        settings,
        "select employee_count, country, created_date, is_reference, _run_date, _source_file, _source_line "
        "from raw.crm__accounts where account_id = 'acc_3'",
    )
    assert row == (5000, "GB", dt.date(2025, 3, 1), False, D1, str(drop / "crm" / "accounts.csv"), 4)
    audit = rows(settings, "select source, entity, rows_read, rows_loaded, status from raw._load_audit order by all")
    assert ("usage", "events", 3, 3, "loaded") in audit
    assert len([a for a in audit if a[4] == "loaded"]) == len(DEFAULT_ENTITIES)
    off = sorted((e.source, e.name, 0, 0, "off") for e in ENTITIES if e not in DEFAULT_ENTITIES)  # the contract's
    assert ("usage", "daily_counts", 0, 0, "off") in off  # off by default
    assert [a for a in audit if a[4] != "loaded"] == off


@pytest.mark.parametrize(
    ("entity", "index", "changes", "line", "column", "value", "reason"),
    [
        ("crm/accounts", 1, {"employee_count": "abc"}, 3, "employee_count", "abc",
         "unparseable integer value 'abc'"),
        ("crm/activities", 0, {"account_id": ""}, 2, "account_id", None, "missing required value"),
        ("crm/support_cases", 1, {"priority": "critical"}, 3, "priority", "critical",
         "value 'critical' is not one of: urgent, high, normal, low"),
        ("billing/invoices", 1, {"amount": "-10.00"}, 3, "amount", "-10.00",
         "value '-10.00' is below the minimum 0"),
        ("billing/subscriptions", 1, {"end_date": "2025-01-15"}, 3, "end_date", "2025-01-15",
         "end_date is not after start_date (end_date is exclusive)"),
        ("crm/accounts", 0, {"country": "USA"}, 2, "country", "USA",
         "value 'USA' does not match ^[A-Za-z]{2}$"),
        ("crm/nps_responses", 0, {"score": "11"}, 2, "score", "11", "value '11' is above the maximum 10"),
        ("usage/events", 2, {"occurred_at": "yesterday"}, 4, "occurred_at", "yesterday",
         "unparseable timestamp value 'yesterday'"),
    ],
)
def test_row_defect_is_quarantined_with_file_line_column_and_reason(
    settings: Settings, entity: str, index: int, changes: dict, line: int, column: str, value: str | None, reason: str
) -> None:
    drop = make_drop(settings.landing, D1, with_row(entity, index, **changes))
    source, name = entity.split("/")
    ingest_source(settings, D1, source)
    assert quarantine(settings) == [(source, name, str(drop / source / f"{name}.csv"), line, column, value, reason)]
    # the other rows of the file loaded; the bad one did not
    loaded = rows(settings, f"select count(*) from raw.{source}__{name}")[0][0]
    assert loaded == len(VALID_ROWS[entity]) - 1
    (audit,) = rows(
        settings,
        f"select rows_read, rows_loaded, rows_quarantined from raw._load_audit where entity = '{name}'",
    )
    assert audit == (len(VALID_ROWS[entity]), len(VALID_ROWS[entity]) - 1, 1)


def test_quarantined_record_keeps_the_whole_row(settings: Settings) -> None:
    make_drop(settings.landing, D1, with_row("crm/accounts", 1, employee_count="abc"))
    ingest_source(settings, D1, "crm")
    (record,) = rows(settings, "select record::json ->> 'account_name' from raw._quarantine")[0]
    assert record == "Beta GmbH"


def test_duplicate_key_with_different_content_quarantines_every_copy(settings: Settings) -> None:
    events = [dict(r) for r in VALID_ROWS["usage/events"]]
    events.append(dict(events[0], user_id="u_other"))  # same event_id, other content, line 5
    drop = make_drop(settings.landing, D1, {"usage/events": events})
    ingest_source(settings, D1, "usage")
    reason = "duplicate key event_id ev_1 with different content in this file (first on line 2)"
    file = str(drop / "usage" / "events.csv")
    assert quarantine(settings) == [
        ("usage", "events", file, 2, "event_id", "ev_1", reason),
        ("usage", "events", file, 5, "event_id", "ev_1", reason),
    ]
    assert rows(settings, "select event_id from raw.usage__events order by 1") == [("ev_2",), ("ev_3",)]


def test_exact_duplicate_row_loads_once_and_is_counted(settings: Settings) -> None:
    events = [dict(r) for r in VALID_ROWS["usage/events"]]
    events.append(dict(events[1]))
    make_drop(settings.landing, D1, {"usage/events": events})
    (result,) = ingest_source(settings, D1, "usage")
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined, result.rows_deduplicated) == (4, 3, 0, 1)
    assert quarantine(settings) == []


def test_malformed_csv_record_is_quarantined_with_its_line(settings: Settings) -> None:
    drop = make_drop(settings.landing, D1)
    path = drop / "crm" / "nps_responses.csv"
    path.write_text(path.read_text() + "nps_2,acc_2,2025-11-02 08:00:00,7,surplus\nnps_3,acc_3,2025-11-03 08:00:00,3\n")
    ingest_source(settings, D1, "crm")
    q = quarantine(settings)
    assert [(r[3], r[6].startswith("malformed CSV record")) for r in q] == [(3, True)]
    assert rows(settings, "select response_id, _source_line from raw.crm__nps_responses order by 1") == [
        ("nps_1", 2),
        ("nps_3", 4),
    ]


def test_extra_columns_are_kept(settings: Settings) -> None:
    accounts = [dict(r, salesforce_id=f"sf{i}") for i, r in enumerate(VALID_ROWS["crm/accounts"])]
    make_drop(settings.landing, D1, {"crm/accounts": accounts})
    ingest_source(settings, D1, "crm")
    assert rows(settings, "select salesforce_id from raw.crm__accounts order by 1") == [("sf0",), ("sf1",), ("sf2",)]


def test_optional_column_may_be_absent(settings: Settings) -> None:
    drop = make_drop(settings.landing, D1)
    columns = [c for c in VALID_ROWS["billing/subscriptions"][0] if c != "is_per_seat"]
    write_csv(drop / "billing" / "subscriptions.csv", VALID_ROWS["billing/subscriptions"], columns)
    ingest_source(settings, D1, "billing")
    assert rows(settings, "select count(*) from raw.billing__subscriptions where is_per_seat is null") == [(2,)]


# --- file-level defects -------------------------------------------------------------------


def _reject(settings: Settings, source: str) -> str:
    with pytest.raises(SourceRejected) as info:
        ingest_source(settings, D1, source)
    return str(info.value)


def test_missing_file_rejects_the_source_and_loads_nothing(settings: Settings) -> None:
    drop = make_drop(settings.landing, D1)
    (drop / "crm" / "nps_responses.csv").unlink()
    message = _reject(settings, "crm")
    assert f"{drop}/crm/nps_responses.{{csv,parquet,jsonl}}: is missing" in message
    assert "nothing of it was changed" in message
    assert rows(settings, "select count(*) from information_schema.tables where table_name = 'crm__accounts'") == [(0,)]
    with pytest.raises(SourceRejected, match="nps_responses"):
        check_extracts(settings, D1)


def test_missing_required_column(settings: Settings) -> None:
    drop = make_drop(settings.landing, D1)
    columns = [c for c in VALID_ROWS["billing/invoices"][0] if c != "currency"]
    write_csv(drop / "billing" / "invoices.csv", VALID_ROWS["billing/invoices"], columns)
    assert f"{drop}/billing/invoices.csv: lacks required column(s) currency" in _reject(settings, "billing")


def test_empty_file(settings: Settings) -> None:
    drop = make_drop(settings.landing, D1)
    (drop / "usage" / "events.csv").write_bytes(b"")
    assert f"{drop}/usage/events.csv: is empty (0 bytes)" in _reject(settings, "usage")


def test_wrong_encoding(settings: Settings) -> None:
    drop = make_drop(settings.landing, D1)
    path = drop / "crm" / "accounts.csv"
    path.write_bytes(path.read_bytes().replace(b"Beta GmbH", "Société Générale".encode("latin-1")))
    message = _reject(settings, "crm")
    assert f"{path}: is not valid UTF-8" in message and "on line 3" in message and "iconv" in message


def test_csv_that_is_really_parquet(settings: Settings) -> None:
    drop = make_drop(settings.landing, D1)
    path = drop / "billing" / "subscriptions.csv"
    pq.write_table(pa_csv.read_csv(path), path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    assert f"{path}: looks binary, not CSV text" in _reject(settings, "billing")


def test_parquet_that_is_really_csv(settings: Settings) -> None:
    drop = make_drop(settings.landing, D1)
    path = drop / "billing" / "subscriptions.csv"
    path.rename(path.with_suffix(".parquet"))
    assert "subscriptions.parquet: is not a Parquet file (no PAR1 magic bytes)" in _reject(settings, "billing")


def test_rejected_rerun_keeps_the_previous_load(settings: Settings) -> None:
    make_drop(settings.landing, D1)
    ingest(settings, D1)
    before = table_dump(settings)
    (settings.drop_dir(D1) / "crm" / "accounts.csv").write_bytes(b"")
    with pytest.raises(SourceRejected):
        ingest(settings, D1)
    after = table_dump(settings)
    assert {k: v for k, v in after.items() if k != "_load_audit"} == {
        k: v for k, v in before.items() if k != "_load_audit"
    }
    assert ("crm", "accounts", "failed") in rows(settings, "select source, entity, status from raw._load_audit")


def test_every_source_is_tried_and_all_rejections_reported(settings: Settings) -> None:
    drop = make_drop(settings.landing, D1)
    (drop / "crm" / "activities.csv").unlink()
    (drop / "usage" / "events.csv").write_bytes(b"")
    with pytest.raises(SourceRejected) as info:
        ingest(settings, D1)
    assert "activities" in str(info.value) and "events.csv: is empty" in str(info.value)
    assert rows(settings, "select count(*) from raw.billing__subscriptions") == [(2,)]


# --- idempotency and deduplication across drops -------------------------------------------------


def test_reingesting_a_date_gives_identical_tables(settings: Settings) -> None:
    make_drop(settings.landing, D1, with_row("crm/accounts", 1, employee_count="abc"))
    make_drop(settings.landing, D2)
    for d in (D1, D2):
        ingest(settings, d)
    first = table_dump(settings)
    ingest(settings, D1)
    ingest(settings, D2)
    ingest(settings, D1)
    assert table_dump(settings) == first
    assert rows(settings, "select _run_date, count(*) from raw.crm__accounts group by 1 order by 1") == [(D1, 2), (D2, 3)]


#: When each test event happened: a re-delivered event keeps its occurred_at (its identity).
OCCURRED = {"e1": f"{D1} 08:00:00", "e2": f"{D1} 09:00:00", "e3": f"{D2} 08:00:00", "e4": f"{D2} 09:00:00"}


def _events_drop(settings: Settings, run_date: dt.date, ids: list[str]) -> None:
    base = VALID_ROWS["usage/events"][0]
    events = [dict(base, event_id=i, occurred_at=OCCURRED[i]) for i in ids]
    make_drop(settings.landing, run_date, {"usage/events": events})


def test_usage_events_are_counted_once_across_drops_whatever_the_order(tmp_path: Path) -> None:
    dumps = []
    for order in ((D1, D2), (D2, D1)):
        s = Settings(home=tmp_path / f"var_{order[0]}", landing_dir=tmp_path / "landing")
        _events_drop(s, D1, ["e1", "e2"])
        _events_drop(s, D2, ["e2", "e3"])  # e2 is a late/repeated event
        for d in order:
            ingest_source(s, d, "usage")
        dumps.append(rows(s, "select event_id, _run_date from raw.usage__events order by 1"))
        if order == (D1, D2):  # in nightly order, the late copy is counted as deduplicated
            dedup = rows(s, f"select rows_deduplicated from raw._load_audit where run_date = '{D2}' and status = 'loaded'")
            assert dedup == [(1,)]
    assert dumps[0] == dumps[1] == [("e1", D1), ("e2", D1), ("e3", D2)]


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_other_formats_load_like_csv(settings: Settings, tmp_path: Path, file_format: str) -> None:
    csv_settings = Settings(home=tmp_path / "csv_var", landing_dir=tmp_path / "csv_landing")
    make_drop(csv_settings.landing, D1)
    ingest(csv_settings, D1)
    drop = make_drop(settings.landing, D1)
    for entity in DEFAULT_ENTITIES:
        path = drop / entity.source / f"{entity.name}.csv"
        if file_format == "jsonl":
            write_jsonl(path.with_suffix(".jsonl"), VALID_ROWS[entity.qualified])
        else:
            table = pa.Table.from_pylist([{k: (v or None) for k, v in r.items()} for r in VALID_ROWS[entity.qualified]])
            pq.write_table(table, path.with_suffix(".parquet"))
        path.unlink()
    ingest(settings, D1)
    for entity in DEFAULT_ENTITIES:
        sql = f"select * exclude (_loaded_at, _source_file, _source_line) from raw.{entity.raw_table} order by all"
        assert rows(settings, sql) == rows(csv_settings, sql), entity.qualified


def test_all_sources_in_contract_have_an_ingest_task() -> None:
    assert SOURCES == ("crm", "billing", "usage")


def test_drop_folder_absent_names_every_file(settings: Settings) -> None:
    with pytest.raises(SourceRejected) as info:
        check_extracts(settings, D1)
    assert str(info.value).count("is missing") == len(DEFAULT_ENTITIES)
    shutil.rmtree(settings.home, ignore_errors=True)


# --- the generator's defects, through the loader ------------------------------------------------

ROW_DEFECTS = ("unparseable_value", "missing_required", "bad_enum", "negative_amount", "end_before_start", "duplicate_key")
FILE_DEFECTS = {
    "missing_file": "is missing",
    "missing_column": "lacks required column(s) currency",
    "empty_file": "is empty (0 bytes)",
    "bad_encoding": "is not valid UTF-8",
    "wrong_format": "looks binary, not CSV text",
}


@pytest.mark.parametrize("file_format", ["csv", "parquet", "jsonl"])
def test_generated_row_defects_land_in_quarantine_where_the_generator_put_them(
    settings: Settings, file_format: str
) -> None:
    from pipelines.lab.generate import generate

    summary = generate(settings.landing, accounts=30, start_date=D1, days=10, drop_days=1, defects=ROW_DEFECTS,
                       file_format=file_format)
    run_date = dt.date.fromisoformat(str(summary.run_dates[-1]))
    ingest(settings, run_date)
    found = {(q[2], q[3], q[4]) for q in quarantine(settings)}
    for defect in summary.defects:
        assert (defect["file"], defect["line"], defect["column"]) in found, defect
        if "duplicate_of_line" in defect:
            assert (defect["file"], defect["duplicate_of_line"], defect["column"]) in found, defect
    assert len(found) == len(summary.defects) + 1  # the duplicate's first copy too


@pytest.mark.parametrize(("defect", "message"), sorted(FILE_DEFECTS.items()))
def test_generated_file_defects_reject_their_source(settings: Settings, defect: str, message: str) -> None:
    from pipelines.lab.generate import generate

    summary = generate(settings.landing, accounts=20, start_date=D1, days=5, drop_days=1, defects=(defect,))
    run_date = dt.date.fromisoformat(str(summary.run_dates[-1]))
    with pytest.raises(SourceRejected) as info:
        ingest(settings, run_date)
    assert message in str(info.value)
    assert summary.defects[0]["file"].rsplit(".", 1)[0] in str(info.value)


def test_timestamps_with_an_offset_are_converted_to_utc(settings: Settings) -> None:
    events = [dict(r) for r in VALID_ROWS["usage/events"]]
    events[0]["occurred_at"] = "2026-01-05T10:00:00+02:00"
    events[1]["occurred_at"] = "2026-01-05T09:30:00Z"
    make_drop(settings.landing, D1, {"usage/events": events})
    ingest_source(settings, D1, "usage")
    assert rows(settings, "select event_id, occurred_at from raw.usage__events order by 1") == [
        ("ev_1", dt.datetime(2026, 1, 5, 8, 0)),
        ("ev_2", dt.datetime(2026, 1, 5, 9, 30)),
        ("ev_3", dt.datetime(2026, 1, 4, 23, 59)),
    ]


def test_header_case_does_not_matter(settings: Settings) -> None:
    drop = make_drop(settings.landing, D1)
    upper = [{k.upper(): v for k, v in r.items()} for r in VALID_ROWS["crm/nps_responses"]]
    write_csv(drop / "crm" / "nps_responses.csv", upper)
    ingest_source(settings, D1, "crm")
    assert rows(settings, "select response_id, score from raw.crm__nps_responses") == [("nps_1", 9)]


def test_a_broken_json_line_rejects_the_source_naming_the_file(settings: Settings) -> None:
    drop = make_drop(settings.landing, D1)
    path = write_jsonl(drop / "usage" / "events.jsonl", VALID_ROWS["usage/events"])
    (drop / "usage" / "events.csv").unlink()
    path.write_text(path.read_text() + '{"event_id": "ev_9", broken\n')
    message = _reject(settings, "usage")
    assert f"{path}: could not be read as JSONL" in message


# --- a row's trouble stays a row's trouble: carry forward ------------------------------------------


def test_a_quarantined_snapshot_row_keeps_its_row_of_the_previous_drop(settings: Settings) -> None:
    """Issue 17, item 6: one quarantined account row made a live account vanish from the night's
    marts (and its tier history break and restart). Its key keeps the previous drop's row, flagged;
    a row bad two nights running keeps the first drop's date; a key never loaded before is not
    invented; a subscription keeps its MRR the same way."""
    D3 = dt.date(2026, 1, 7)
    make_drop(settings.landing, D1)
    ingest(settings, D1)
    accounts = [dict(r) for r in VALID_ROWS["crm/accounts"]]
    accounts[1]["employee_count"] = "abc"  # acc_2: quarantined
    accounts.append(dict(accounts[0], account_id="acc_new", employee_count="many"))  # new and bad
    subscriptions = [dict(r) for r in VALID_ROWS["billing/subscriptions"]]
    subscriptions[1]["amount"] = "-1"  # sub_2: quarantined
    make_drop(settings.landing, D2, {"crm/accounts": accounts, "billing/subscriptions": subscriptions})
    loads = {r.entity: r for r in ingest(settings, D2)}
    assert (loads["accounts"].rows_loaded, loads["accounts"].rows_quarantined,
            loads["accounts"].rows_carried_forward) == (2, 2, 1)
    assert loads["subscriptions"].rows_carried_forward == 1
    night = "select account_id, account_name, employee_count, _carried_forward_from, _source_line " \
            "from raw.crm__accounts where _run_date = '{}' order by 1"
    assert rows(settings, night.format(D2)) == [
        ("acc_1", "Acme", 120, None, 2),
        ("acc_2", "Beta GmbH", 40, D1, 3),  # yesterday's row, from yesterday's line
        ("acc_3", "Gamma, Inc", 5000, None, 4),
    ]
    assert rows(settings, f"select subscription_id, amount, _carried_forward_from from raw.billing__subscriptions "
                          f"where _run_date = '{D2}' order by 1") == [
        ("sub_1", pa.scalar(120000, pa.decimal128(18, 2)).as_py(), None),
        ("sub_2", pa.scalar(500, pa.decimal128(18, 2)).as_py(), D1)]
    # still bad the next night: carried again, from the row first delivered on D1
    make_drop(settings.landing, D3, {"crm/accounts": accounts})
    ingest(settings, D3, ("crm",))
    assert rows(settings, f"select account_id, _carried_forward_from from raw.crm__accounts "
                          f"where _run_date = '{D3}' and _carried_forward_from is not null") == [("acc_2", D1)]
    # the quarantine report names the key and what to do
    from pipelines.quality import check_quarantine

    result = check_quarantine(settings, D2, thresholds={"crm/accounts": 1.0, "billing/subscriptions": 1.0})
    (carried,) = [c for c in result.checks if c.name == "rows carried forward in crm/accounts"]
    assert carried.status == "warning"
    assert "account_id acc_2" in carried.message and "dim_accounts.is_carried_forward" in carried.message
    assert result.summary()["intake"]["rows_carried_forward"] == {
        "crm/accounts": ["acc_2"], "billing/subscriptions": ["sub_2"]}


def test_a_key_repeated_with_different_content_keeps_its_previous_row(settings: Settings) -> None:
    make_drop(settings.landing, D1)
    ingest(settings, D1, ("crm",))
    accounts = [dict(r) for r in VALID_ROWS["crm/accounts"]]
    accounts.append(dict(accounts[2], account_name="Gamma (duplicate)"))
    make_drop(settings.landing, D2, {"crm/accounts": accounts})
    ingest(settings, D2, ("crm",))
    assert rows(settings, f"select account_id, account_name, _carried_forward_from from raw.crm__accounts "
                          f"where _run_date = '{D2}' and account_id = 'acc_3'") == [("acc_3", "Gamma, Inc", D1)]


def test_an_unescaped_quote_inside_a_quoted_value_is_quarantined_never_loaded_altered(settings: Settings) -> None:
    """Issue 17: `"Acme "Big" Corp"` loaded silently as `Acme Big" Corp"` and was published.
    The record is quarantined with its line and the fix; well-formed quoting still loads, and
    a quote inside an unquoted value loads as written; the lines after it stay right."""
    make_drop(settings.landing, D1)
    ingest(settings, D1, ("crm",))
    drop = make_drop(settings.landing, D2)
    path = drop / "crm" / "accounts.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("Beta GmbH", '"Acme ""Big"" Corp"')  # well formed: loads
    lines[1] = lines[1].replace("Acme", '"Acme "Big" Corp"')  # malformed: quarantined
    lines.insert(3, 'acc_9,"Multi\nline ""quoted"" name",software,5,US,2025-01-01,,false,false,false,')
    lines.append('acc_8,5" pipe,software,5,US,2025-01-01,,false,false,false,')
    path.write_text("\n".join(lines) + "\n")
    (load,) = [r for r in ingest(settings, D2, ("crm",)) if r.entity == "accounts"]
    assert (load.rows_read, load.rows_loaded, load.rows_quarantined) == (5, 4, 1)
    (bad,) = quarantine(settings)
    assert bad[2:4] == (str(path), 2)
    assert bad[6].startswith("malformed CSV record: a quote inside a quoted value is not doubled (line 2)")
    assert rows(settings, f"select account_id, account_name, _source_line, _carried_forward_from "
                          f"from raw.crm__accounts where _run_date = '{D2}' order by 1") == [
        ("acc_1", "Acme", 2, D1),  # yesterday's row, carried forward: never the altered name
        ("acc_2", 'Acme "Big" Corp', 3, None),
        ("acc_3", "Gamma, Inc", 6, None),
        ("acc_8", '5" pipe', 7, None),
        ("acc_9", 'Multi\nline "quoted" name', 4, None),
    ]


def test_a_landing_path_that_is_a_folder_is_named_not_a_bare_oserror(settings: Settings) -> None:
    """Issue 17: `crm/accounts.csv/` stopped the night with a bare `[Errno 21]`."""
    drop = make_drop(settings.landing, D1)
    (drop / "crm" / "accounts.csv").unlink()
    (drop / "crm" / "accounts.csv").mkdir()
    with pytest.raises(SourceRejected) as info:
        check_extracts(settings, D1)
    assert f"{drop}/crm/accounts.csv: is a folder, not a file. Deliver crm/accounts as one file" in str(info.value)
    assert "Errno" not in str(info.value)
    assert "is a folder, not a file" in _reject(settings, "crm")


def test_booleans_load_as_the_contract_spells_them_and_nothing_else(settings: Settings) -> None:
    """Issue 17: `yes`/`1`/`t` loaded as booleans while the contract documented only true/false.
    The contract now states every accepted spelling; the loader accepts exactly those (not
    whatever DuckDB's cast also takes) and quarantines the rest."""
    from pipelines.contract import BOOLEAN_FALSE, BOOLEAN_TRUE, as_markdown

    spellings = [(v, True) for v in BOOLEAN_TRUE] + [(v.upper(), True) for v in BOOLEAN_TRUE]
    spellings += [(v, False) for v in BOOLEAN_FALSE] + [("on", None), ("off", None), ("2", None), ("ja", None)]
    base = VALID_ROWS["crm/activities"][0]
    activities = [dict(base, activity_id=f"a{i}", is_customer_responded=v) for i, (v, _) in enumerate(spellings)]
    make_drop(settings.landing, D1, {"crm/activities": activities})
    ingest_source(settings, D1, "crm")
    loaded = dict(rows(settings, "select activity_id, is_customer_responded from raw.crm__activities"))
    refused = {r[6] for r in quarantine(settings)}
    for i, (value, expected) in enumerate(spellings):
        if expected is None:
            assert f"a{i}" not in loaded and f"unparseable boolean value '{value}'" in refused, value
        else:
            assert loaded[f"a{i}"] is expected, value
    page = as_markdown()
    assert all(f"`{v}`" in page.split("booleans", 1)[1].split("JSON Lines", 1)[0] for v in BOOLEAN_TRUE + BOOLEAN_FALSE)


def _pyarrow_quote_rules(data: bytes, first: int = 0) -> list[int]:
    """Byte by byte, pyarrow's quoting rules: the offsets of quotes that close a quoted field and
    are followed by something other than a comma, a line end or the end of the file."""
    found, quoted, i = [], False, 0
    while i < len(data):
        if data[i] == ord('"'):
            if not quoted:
                quoted = i == first or (data[i - 1] if i else 10) in (44, 10)
            elif i + 1 < len(data) and data[i + 1] == ord('"'):
                i += 2
                continue
            else:
                if i + 1 < len(data) and data[i + 1] not in (44, 13, 10):
                    found.append(i)
                quoted = False
        i += 1
    return found


def test_the_quote_scanner_agrees_with_pyarrows_rules_whatever_the_chunks() -> None:
    """QuoteScanner (vectorised, fed in chunks) against the byte-by-byte rules, on random text of
    quotes, commas and line ends, and on well-formed CSV (no problem may be reported)."""
    import csv as pycsv
    import io
    import random

    from pipelines.intake.readers import QuoteScanner

    def scan(data: bytes, chunk: int) -> list[int]:
        scanner = QuoteScanner()
        for i in range(0, len(data), chunk):
            scanner.feed(data[i:i + chunk], has_quote=b'"' in data[i:i + chunk])
        return scanner.finish()

    rng = random.Random(7)
    for _ in range(2000):
        data = "".join(rng.choice('ab,"\n') for _ in range(rng.randint(0, 40))).encode()
        expected = _pyarrow_quote_rules(data)
        for chunk in (1, 2, 3, 7, max(1, len(data))):
            assert scan(data, chunk) == expected, (data, chunk)
    for _ in range(300):
        out = io.StringIO()
        writer = pycsv.writer(out, quoting=rng.choice([pycsv.QUOTE_MINIMAL, pycsv.QUOTE_ALL]),
                              lineterminator=rng.choice(["\n", "\r\n"]))
        writer.writerows([["".join(rng.choice('ab, "\n') for _ in range(rng.randint(0, 6))) for _ in range(3)]
                          for _ in range(5)])
        data = out.getvalue().encode()
        assert scan(data, 5) == scan(data, len(data) or 1) == [], data
    # the well-formed case in bulk goes through the vectorised path of whole blocks
    bulk = ('"evt_1","acc_1","a, b",2026-01-05 08:00:00\n' * 50_000).encode()
    assert scan(bulk, 1 << 20) == []
    at = bulk.index(b"\n", 1_000_000) + 1  # a line start in the second block
    broken = bulk[:at] + b'"evt_2","Acme "Big" Corp","x",2026-01-05\n' + bulk[at:]
    assert scan(broken, 1 << 20) == [broken.index(b'"Big')]


def test_a_night_ingested_by_an_older_loader_is_refused_before_dbt_with_the_command(settings: Settings) -> None:
    """Staging reads _carried_forward_from; a partition written before the carry forward lacks it
    (dbt would stop on 'Referenced column not found'): the build is refused naming the fix."""
    from pipelines.intake.lake import partition_files
    from pipelines.ops.preflight import NightNotReady, require_raw_data

    make_drop(settings.landing, D1)
    ingest(settings, D1)
    require_raw_data(settings, D1)  # as written today: fine
    (path,) = partition_files(settings.lake, DEFAULT_ENTITIES[0], D1)
    pq.write_table(pq.read_table(path).drop_columns(["_carried_forward_from"]), path)
    with pytest.raises(NightNotReady, match=r"crm/accounts for 2026-01-05 were written by an older version") as info:
        require_raw_data(settings, D1)
    assert "segment-mart ingest --run-date 2026-01-05" in str(info.value)
