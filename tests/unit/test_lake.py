"""The raw lake: layout, Spark-readable types, atomic partition replacement, bounded dedup reads."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from pipelines.contract import ENTITIES, get_entity
from pipelines.intake import lake, readers
from pipelines.intake.ingest import ingest, ingest_source
from pipelines.settings import Settings
from tests.drops import DEFAULT_ENTITIES, VALID_ROWS, make_drop, write_csv

D1 = dt.date(2026, 1, 5)
ROOT = Path(__file__).resolve().parents[2]
EVENTS = get_entity("usage", "events")


def test_layout_is_source_entity_run_date(settings: Settings) -> None:
    make_drop(settings.landing, D1)
    ingest(settings, D1)
    for entity in DEFAULT_ENTITIES:
        (path,) = lake.partition_files(settings.lake, entity, D1)
        assert path.parent == settings.lake / "raw" / entity.source / entity.name / f"_run_date={D1}"
        assert lake.load_id_of(path)
    assert list((settings.lake / "raw" / "_load_audit" / f"run_date={D1}").glob("source=*/*.parquet"))
    assert list((settings.lake / "raw" / "_quarantine" / f"run_date={D1}").glob("source=*/*.parquet"))


def test_files_hold_only_types_spark_reads(settings: Settings) -> None:
    accounts = [dict(r, salesforce_id=f"sf{i}") for i, r in enumerate(VALID_ROWS["crm/accounts"])]
    make_drop(settings.landing, D1, {"crm/accounts": accounts})
    ingest(settings, D1)
    expected = {"string": pa.string(), "integer": pa.int64(), "decimal": pa.decimal128(18, 2),
                "boolean": pa.bool_(), "date": pa.date32(), "timestamp": pa.timestamp("us")}
    for entity in DEFAULT_ENTITIES:
        (path,) = lake.partition_files(settings.lake, entity, D1)
        schema = pq.read_schema(path)
        contract = {c.name: expected[c.type] for c in entity.columns}
        assert {n: schema.field(n).type for n in contract} == contract, entity.qualified
        assert schema.field("_source_line").type == pa.int64()
        assert schema.field("_loaded_at").type == pa.timestamp("us")  # no time zone, microseconds
        assert "_run_date" not in schema.names, "the run date is the partition folder"
        parquet = pq.ParquetFile(path).schema
        for i in range(len(parquet)):
            column = parquet.column(i)
            assert column.physical_type != "INT96", column.name
            assert "NANOS" not in str(column.logical_type), column.name
            assert "isAdjustedToUTC=true" not in str(column.logical_type), column.name
    assert pq.read_schema(lake.partition_files(settings.lake, get_entity("crm", "accounts"), D1)[0]).field(
        "salesforce_id").type == pa.string()


def test_the_dbt_sources_read_the_lake_as_lake_py_says() -> None:
    sources = yaml.safe_load((ROOT / "dbt_project/models/staging/_staging__sources.yml").read_text())
    (raw,) = [s for s in sources["sources"] if s["name"] == "raw"]
    template = raw["config"]["meta"]["external_location"]
    assert raw["config"]["meta"]["formatter"] == "template"
    root = Path("/LAKE")
    for table in raw["tables"]:
        entity = next(e for e in ENTITIES if e.raw_table == table["name"])
        rendered = template.replace('{{ env_var("SEGMENT_MART_DBT_LAKE", "../var/lake") }}', str(root))
        rendered = rendered.replace("${lake_path}", table["config"]["meta"]["lake_path"])
        assert rendered == lake.relation_sql(root, entity), entity.qualified


def test_a_rerun_replaces_the_partitions_and_a_failed_one_changes_nothing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_drop(settings.landing, D1)
    ingest(settings, D1)
    accounts = get_entity("crm", "accounts")
    (first,) = lake.partition_files(settings.lake, accounts, D1)
    ingest(settings, D1)
    (second,) = lake.partition_files(settings.lake, accounts, D1)
    assert first != second and not first.exists()
    before = {p: p.read_bytes() for p in settings.lake.rglob("*") if p.is_file()}

    def crash(self: lake.Commit) -> None:
        raise KeyboardInterrupt("killed before the swap")

    monkeypatch.setattr(lake.Commit, "commit", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest_source(settings, D1, "crm")
    after = {p: p.read_bytes() for p in settings.lake.rglob("*") if p.is_file()}
    assert after == before, "a crashed ingest leaves the old partitions, byte for byte"
    assert not [p for p in settings.lake.rglob(".tmp-*")]


def test_replace_dir_swaps_atomically_and_recover_repairs_an_interrupted_fallback(tmp_path: Path) -> None:
    target = tmp_path / "entity" / "_run_date=2026-01-05"
    target.mkdir(parents=True)
    (target / "old.parquet").write_text("old")
    new = lake.staging_dir(target, "x1")
    (new / "new.parquet").write_text("new")
    lake.replace_dir(new, target)
    assert [p.name for p in target.iterdir()] == ["new.parquet"] and not new.exists()
    # the fallback path (no renameat2) interrupted between its two renames: recover() puts it back
    aside = target.parent / f".old-{target.name}-abcd1234"
    os.rename(target, aside)
    lake.recover(target.parent)
    assert [p.name for p in target.iterdir()] == ["new.parquet"]


def test_event_dedup_reads_only_partitions_that_can_hold_the_same_events(settings: Settings) -> None:
    base = VALID_ROWS["usage/events"][0]
    old_day, day = D1 - dt.timedelta(days=10), D1
    make_drop(settings.landing, old_day,
              {"usage/events": [dict(base, event_id="e_old", occurred_at=f"{old_day} 08:00:00")]})
    make_drop(settings.landing, day - dt.timedelta(days=1),
              {"usage/events": [dict(base, event_id="e_late", occurred_at=f"{day - dt.timedelta(days=1)} 08:00:00")]})
    for d in (old_day, day - dt.timedelta(days=1)):
        ingest_source(settings, d, "usage")
    # an event of ten days ago cannot be in this drop's time range: its partition is never opened
    (old_file,) = lake.partition_files(settings.lake, EVENTS, old_day)
    old_file.write_bytes(b"not parquet at all")
    make_drop(settings.landing, day, {"usage/events": [
        dict(base, event_id="e_late", occurred_at=f"{day - dt.timedelta(days=1)} 08:00:00"),  # re-sent
        dict(base, event_id="e_new", occurred_at=f"{day} 07:00:00"),
    ]})
    (load,) = ingest_source(settings, day, "usage")
    assert (load.rows_read, load.rows_loaded, load.rows_deduplicated) == (2, 1, 1)
    assert pq.read_table(lake.partition_files(settings.lake, EVENTS, day)[0]).column("event_id").to_pylist() == [
        "e_new"]


def test_events_out_of_time_order_are_sorted_so_statistics_prune(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 2048)  # many small batches = many row groups
    base = VALID_ROWS["usage/events"][0]
    stamps = [dt.datetime(2026, 1, 5) - dt.timedelta(minutes=7 * i) for i in range(2000)]
    random.Random(1).shuffle(stamps)
    rows = [dict(base, event_id=f"e{i}", occurred_at=f"{t:%Y-%m-%d %H:%M:%S}") for i, t in enumerate(stamps)]
    drop = make_drop(settings.landing, D1)
    write_csv(drop / "usage" / "events.csv", rows)
    (load,) = ingest_source(settings, D1, "usage")
    assert load.rows_loaded == 2000
    spans = []
    for path in lake.partition_files(settings.lake, EVENTS, D1):
        meta = pq.ParquetFile(path).metadata
        index = meta.schema.to_arrow_schema().get_field_index("occurred_at")
        spans += [(meta.row_group(g).column(index).statistics.min, meta.row_group(g).column(index).statistics.max)
                  for g in range(meta.num_row_groups)]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), "row groups in time order"
    lines = pq.read_table(lake.partition_files(settings.lake, EVENTS, D1)[0]).column("_source_line").to_pylist()
    assert sorted(lines) == list(range(2, 2002)), "every row kept its line"


def test_recovering_one_source_leaves_another_sources_staging_alone(tmp_path: Path) -> None:
    # the audit and quarantine trees are shared by sources that ingest in parallel
    day = tmp_path / "raw" / "_quarantine" / "run_date=2026-01-05"
    usage_staging = lake.staging_dir(day / "source=usage", "load1")
    crm_leftover = lake.staging_dir(day / "source=crm", "load0")
    lake.recover_source(tmp_path, "crm")
    assert usage_staging.exists() and not crm_leftover.exists()
