"""Intake checks: what ingestion delivered for a night, read from the raw lake.

They never open the DuckDB warehouse (ingestion does not write it), so ``check_quarantine``
can run right after the parallel ingest tasks, before dbt. The full quality gate
(``pipelines/quality/gate.py``) runs the same checks again.

* quarantine share per **entity** (one landing file), against
  ``settings.max_quarantine_share`` or an override (``thresholds={"crm": .., "crm/accounts": ..}``);
  measured per source, 10 bad accounts among 200 would hide behind thousands of good
  activities;
* a snapshot entity that delivered no rows fails the night: dbt would otherwise build the
  night on zero accounts (or, before the lake, silently on the previous day's snapshot);
* rows carried forward (a snapshot row quarantined tonight whose key keeps its earlier row,
  pipelines/intake/ingest.py) are a warning naming the keys;
* the entities that are off and the optional columns a file left out are listed (passed checks
  with their details: the manifest and the published report show them);
* a volume spike (rows read above ``settings.volume_spike_factor`` times the median of the
  previous nights) is a warning;
* freshness: every entity of every source loaded a drop for the run date, its partition is
  the one the audit recorded (not a half-finished rerun), and the newest usage event of the
  night's drop is neither older than ``max_event_lag_hours`` before the end of the run date
  nor later than ``future_event_tolerance_hours`` after it (bounded on both sides).
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import TYPE_CHECKING, Any

from pipelines.contract import CARRIED_FORWARD_COLUMN, ENTITIES, SOURCES, get_entity, is_other_shape
from pipelines.intake import lake
from pipelines.quality.model import EXAMPLE_ROWS, Check, jsonable

if TYPE_CHECKING:
    import duckdb

    from pipelines.settings import Settings

#: Previous nights whose median volume is the baseline of the spike warning.
VOLUME_BASELINE_NIGHTS = 7


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None, limit: int | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params) if params is not None else con.execute(sql)
    names = [d[0] for d in cur.description or []]
    fetched = cur.fetchmany(limit) if limit is not None else cur.fetchall()
    return [jsonable(dict(zip(names, r, strict=True))) for r in fetched]


def _no_audit(settings: Settings, kind: str) -> Check:
    return Check("load audit present", kind, "failed",  # type: ignore[arg-type]
                 f"no load audit in {lake.raw_dir(settings.lake) / lake.AUDIT}: ingestion has not run for "
                 "this pipeline home (run `segment-mart ingest` first)")


def _audit(con: duckdb.DuckDBPyConnection, settings: Settings, run_date: dt.date) -> list[dict[str, Any]]:
    return _rows(con, f"""
        select source, entity, file, rows_read, rows_loaded, rows_quarantined, rows_deduplicated,
            status, error, load_id, columns_defaulted, coalesce(rows_carried_forward, 0) as rows_carried_forward
        from {lake.audit_relation_sql(settings.lake)}
        where run_date = ? order by source, entity
    """, [run_date])


def entities_in_use_check(audit: list[dict[str, Any]], run_date: dt.date) -> Check:
    """Which entities were off on the night (status ``off`` in its load audit), and what their
    absence does: one check, passed, in the quarantine and the quality reports (and the manifest,
    through GateResult.summary)."""
    in_use = {f"{r['source']}/{r['entity']}" for r in audit if r["status"] != "off"}
    # an entity off whose other shape is in use (usage as daily counts instead of events) lacks nothing
    off = [e for r in audit if r["status"] == "off"
           if not is_other_shape(e := get_entity(r["source"], r["entity"]), in_use)]
    ignored = [r["file"] for r in audit if r["status"] == "off" and r["file"]]
    if not off:
        message = f"every entity of the contract is in use on {run_date}"
    else:
        message = (f"{len(off)} entit{'y is' if len(off) == 1 else 'ies are'} off on {run_date} "
                   "(SEGMENT_MART_ENTITIES_IN_USE): " + "; ".join(f"{e.qualified}: {e.when_off}" for e in off))
        if ignored:
            message += f". Delivered anyway and not read: {', '.join(ignored)}"
    return Check("entities in use", "quarantine", "passed", message, severity="info",
                 details={"entities_off": [e.qualified for e in off],
                          "when_off": {e.qualified: e.when_off for e in off}, "files_not_read": ignored})


def _carried_check(con: duckdb.DuckDBPyConnection, settings: Settings, row: dict[str, Any],
                   run_date: dt.date) -> list[Check]:
    """The keys whose row was quarantined tonight and that keep their row of an earlier drop
    (pipelines/intake/ingest.py, carry forward): a warning naming them and what to do."""
    carried = int(row.get("rows_carried_forward") or 0)
    if not carried:
        return []
    entity = get_entity(row["source"], row["entity"])
    files = lake.partition_files(settings.lake, entity, run_date)
    found = _rows(con, f"""
        select "{entity.key}" as key, {CARRIED_FORWARD_COLUMN} as carried_forward_from,
            _source_file as from_file, _source_line as from_line
        from read_parquet({lake.files_sql(files)}, union_by_name = true)
        where {CARRIED_FORWARD_COLUMN} is not null order by 1
    """) if files else []
    keys = [r["key"] for r in found]
    shown = ", ".join(str(k) for k in keys[:20]) + (f" and {len(keys) - 20} more" if len(keys) > 20 else "")
    where = " (flagged in dim_accounts.is_carried_forward)" if entity.qualified == "crm/accounts" else ""
    return [Check(
        f"rows carried forward in {entity.qualified}", "quarantine", "warning",
        f"{entity.qualified}: {carried} row(s) of {row['file']} were quarantined tonight; their "
        f"{entity.key} keep their row of an earlier drop, carried forward{where}: {entity.key} {shown}. "
        "Their values are not tonight's: fix these rows in the export (the quarantined rows above say why "
        "each was refused) and re-run the night",
        source=entity.source, severity="warning", observed=carried, example_rows=found[:EXAMPLE_ROWS],
        details={"entity": entity.qualified, "carried_forward": keys,
                 "carried_forward_from": sorted({str(r["carried_forward_from"]) for r in found})},
    )]


def _defaults_check(row: dict[str, Any]) -> list[Check]:
    """The optional columns a loaded file left out, with the default each one gets."""
    if not row.get("columns_defaulted"):
        return []
    entity = get_entity(row["source"], row["entity"])
    names = [n for n in str(row["columns_defaulted"]).split(",") if n]
    defaults = {n: entity.column(n).default for n in names}
    return [Check(
        f"columns defaulted in {entity.qualified}", "quarantine", "passed",
        f"{row['file']} has no column {', '.join(names)}: the mart uses the documented defaults, which are "
        "not data: " + "; ".join(f"{n} = {d}" for n, d in defaults.items())
        + f". Add the column{'s' if len(names) > 1 else ''} to the export to use real values "
        f"(docs/extract-contract.md, {entity.qualified})",
        source=entity.source, severity="info", observed=len(names),
        details={"entity": entity.qualified, "file": row["file"], "columns_defaulted": defaults},
    )]


def _threshold(thresholds: dict[str, float] | None, source: str, entity: str, default: float) -> float:
    overrides = thresholds or {}
    return overrides.get(f"{source}/{entity}", overrides.get(source, default))


def quarantine_checks(
    con: duckdb.DuckDBPyConnection, settings: Settings, run_date: dt.date,
    thresholds: dict[str, float] | None = None,
) -> list[Check]:
    """Quarantine share per entity, empty snapshots, volume spikes (see the module doc)."""
    if not lake.has_audit(settings.lake):
        return [_no_audit(settings, "quarantine")]
    audit = _audit(con, settings, run_date)
    if not audit:
        return [Check("load audit present", "quarantine", "failed",
                      f"the load audit has no rows for run date {run_date}: ingestion did not run for "
                      "this date (run `segment-mart ingest` for it first)")]
    has_quarantine = lake.has_quarantine(settings.lake)
    history = _volume_history(con, settings, run_date)
    checks: list[Check] = [entities_in_use_check(audit, run_date)]
    for row in audit:
        if row["status"] != "loaded":
            continue  # off (the check above names it) or rejected (the freshness check names it)
        checks += _defaults_check(row)
        checks += _carried_check(con, settings, row, run_date)
        source, entity = row["source"], row["entity"]
        qualified = f"{source}/{entity}"
        read, quarantined = int(row["rows_read"] or 0), int(row["rows_quarantined"] or 0)
        share = quarantined / read if read else 0.0
        limit = _threshold(thresholds, source, entity, settings.max_quarantine_share)
        details: dict[str, Any] = {"entity": qualified, "file": row["file"], "rows_read": read,
                                   "rows_quarantined": quarantined, "share": share, "threshold": limit}
        examples: list[dict[str, Any]] = []
        if quarantined and has_quarantine:
            where = "run_date = ? and source = ? and entity = ?"
            details["by_reason"] = _rows(con, f"""
                select column_name, reason, count(*) as rows
                from {lake.quarantine_relation_sql(settings.lake)} where {where}
                group by all order by rows desc, column_name limit 20
            """, [run_date, source, entity])
            examples = _rows(con, f"""
                select entity, file, line, column_name, value, reason, record
                from {lake.quarantine_relation_sql(settings.lake)} where {where}
                order by line, column_name
            """, [run_date, source, entity], limit=EXAMPLE_ROWS)
        failed = share > limit
        where_lines = "; ".join(f"line {e['line']} {e['column_name']}: {e['reason']}" for e in examples[:3])
        msg = (f"{qualified}: {quarantined} of {read} rows of {row['file']} quarantined ({share:.2%}); "
               f"threshold {limit:.2%}" + (f" ({where_lines}{', ...' if quarantined > 3 else ''})" if examples else "")
               + (" - above the threshold: the night fails. Fix these rows in the export and re-deliver it "
                  "(every quarantined row with its reason: raw._quarantine and the quarantine report), or raise "
                  "SEGMENT_MART_MAX_QUARANTINE_SHARE if such a share is expected" if failed else ""))
        checks.append(Check(f"quarantine share of {qualified}", "quarantine", "failed" if failed else "passed",
                            msg, source=source, observed=share, example_rows=examples, details=details))
        if get_entity(source, entity).kind == "snapshot" and not int(row["rows_loaded"] or 0):
            checks.append(Check(
                f"snapshot {qualified} has rows", "quarantine", "failed",
                f"{qualified} loaded no rows for {run_date} ({read} read): a full snapshot with no rows "
                "would make the night's marts lose every account. The night fails; check the export "
                f"({row['file']}) and re-deliver it", source=source, observed=0,
            ))
        checks += _volume_check(source, entity, read, history.get((source, entity), []), settings)
    return checks


def _volume_history(con: duckdb.DuckDBPyConnection, settings: Settings,
                    run_date: dt.date) -> dict[tuple[str, str], list[int]]:
    rows = con.execute(f"""
        select source, entity, rows_read from (
            select source, entity, rows_read,
                row_number() over (partition by source, entity order by run_date desc) as recency
            from {lake.audit_relation_sql(settings.lake)}
            where run_date < ? and status = 'loaded'
        ) where recency <= {VOLUME_BASELINE_NIGHTS}
    """, [run_date]).fetchall()
    history: dict[tuple[str, str], list[int]] = {}
    for source, entity, read in rows:
        history.setdefault((source, entity), []).append(int(read or 0))
    return history


def _volume_check(source: str, entity: str, read: int, previous: list[int], settings: Settings) -> list[Check]:
    if not previous:
        return []
    baseline = statistics.median(previous)
    factor = settings.volume_spike_factor
    if baseline <= 0 or read <= factor * baseline:
        return []
    return [Check(
        f"volume of {source}/{entity}", "quarantine", "warning",
        f"{source}/{entity} read {read:,} rows, {read / baseline:.1f}x the median of the previous "
        f"{len(previous)} night(s) ({baseline:,.0f}); above the spike factor {factor:g} "
        "(SEGMENT_MART_VOLUME_SPIKE_FACTOR). Check the export for re-sent history or duplicates",
        source=source, severity="warning", observed=read / baseline,
        details={"rows_read": read, "baseline_median": baseline, "previous_nights": previous},
    )]


def freshness_checks(con: duckdb.DuckDBPyConnection, settings: Settings, run_date: dt.date) -> list[Check]:
    """Every entity loaded a drop for the run date, as recorded; usage events recent, not future."""
    if not lake.has_audit(settings.lake):
        return [_no_audit(settings, "freshness")]
    audit = {(r["source"], r["entity"]): r for r in _audit(con, settings, run_date)}
    checks: list[Check] = []
    for source in SOURCES:
        problems = []
        off = []
        for entity in (e for e in ENTITIES if e.source == source):
            row = audit.get((source, entity.name))
            if row is not None and row["status"] == "off":
                off.append(entity.name)
            elif row is None:
                problems.append(f"no drop loaded for {entity.qualified} on {run_date}")
            elif row["status"] != "loaded":
                problems.append(f"{entity.qualified} failed to load: {row['error'] or 'no error text'}")
            else:
                ids = {lake.load_id_of(p) for p in lake.partition_files(settings.lake, entity, run_date)}
                if ids != {row["load_id"]}:
                    problems.append(
                        f"the raw lake partition of {entity.qualified} for {run_date} is not the one the load "
                        f"audit recorded (load {row['load_id']}; found {sorted(i or '?' for i in ids) or 'none'}): "
                        f"an ingest was interrupted. Re-run `segment-mart ingest --run-date {run_date} "
                        f"--source {source}`")
        if problems:
            checks.append(Check(f"drop for {run_date} loaded", "freshness", "failed", "; ".join(problems),
                                source=source))
        else:
            checks.append(Check(f"drop for {run_date} loaded", "freshness", "passed",
                                f"every entity of {source} in use loaded a drop for {run_date}"
                                + (f" (off: {', '.join(off)})" if off else ""), source=source))
    events = audit.get(("usage", "events"))
    if events is not None and events["status"] == "off":
        checks.append(Check("usage events recent", "freshness", "skipped",
                            "usage/events is not in use (SEGMENT_MART_ENTITIES_IN_USE)", source="usage"))
    else:
        checks.append(_events_recent(settings, run_date))
    if "usage/daily_counts" in settings.in_use:
        checks.append(_counts_recent(con, settings, run_date))
    return checks


def _counts_recent(con: duckdb.DuckDBPyConnection, settings: Settings, run_date: dt.date) -> Check:
    """The newest day of the night's daily usage counts: a rollup delivered on the run date covers
    it or the day before; older than ``max_event_lag_hours`` before the end of the run date is stale."""
    counts = get_entity("usage", "daily_counts")
    files = lake.partition_files(settings.lake, counts, run_date)
    newest = con.execute(f"select max(usage_date) from read_parquet({lake.files_sql(files)})").fetchall()[0][0] \
        if files else None
    if newest is None:
        return Check("usage counts recent", "freshness", "failed",
                     f"the usage drop for {run_date} delivered no daily counts: the usage extract is stale",
                     source="usage")
    end_of_day = dt.datetime.combine(run_date + dt.timedelta(days=1), dt.time())
    # a day's counts are complete at its end: the lag is measured from there
    lag_h = (end_of_day - dt.datetime.combine(newest + dt.timedelta(days=1), dt.time())).total_seconds() / 3600
    max_lag = settings.max_event_lag_hours
    status, why = ("failed", ": the usage extract is stale") if lag_h > max_lag else ("passed", "")
    return Check(
        "usage counts recent", "freshness", status,
        f"newest day of the daily usage counts for {run_date} is {newest}, {lag_h:.0f} h before the end of the "
        f"run date (allowed: {max_lag:g} h){why}",
        source="usage", observed=lag_h, details={"newest_usage_date": newest, "max_lag_hours": max_lag},
    )


def _events_recent(settings: Settings, run_date: dt.date) -> Check:
    import pyarrow.parquet as pq

    events = get_entity("usage", "events")
    newest: dt.datetime | None = None
    for path in lake.partition_files(settings.lake, events, run_date):
        meta = pq.ParquetFile(path).metadata
        index = meta.schema.to_arrow_schema().get_field_index("occurred_at")
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(index).statistics
            if stats is not None and stats.has_min_max and meta.row_group(g).num_rows:
                newest = stats.max if newest is None else max(newest, stats.max)
    if newest is None:
        return Check("usage events recent", "freshness", "failed",
                     f"the usage drop for {run_date} added no events (none delivered, or all already "
                     "delivered by earlier drops): the usage extract is stale", source="usage")
    end_of_day = dt.datetime.combine(run_date + dt.timedelta(days=1), dt.time())
    lag_h = (end_of_day - newest).total_seconds() / 3600
    max_lag, tolerance = settings.max_event_lag_hours, settings.future_event_tolerance_hours
    if lag_h > max_lag:
        status, why = "failed", ": the usage extract is stale"
    elif -lag_h > tolerance:
        status, why = "failed", (f": after the end of the run date by more than the tolerance of "
                                 f"{tolerance:g} h (future-dated events)")
    else:
        status, why = "passed", ""
    return Check(
        "usage events recent", "freshness", status,
        f"newest event of the drop for {run_date} at {newest.isoformat()} is {lag_h:.1f} h before the end of "
        f"the run date (allowed: {-tolerance:g} to {max_lag:g} h){why}",
        source="usage", observed=lag_h,
        details={"newest_event": newest, "max_lag_hours": max_lag, "future_tolerance_hours": tolerance},
    )


def run_quarantine_checks(settings: Settings, run_date: dt.date,
                          thresholds: dict[str, float] | None = None) -> list[Check]:
    """:func:`quarantine_checks` on its own in-memory DuckDB connection (reads Parquet only)."""
    from pipelines import warehouse

    con = warehouse.in_memory(settings)
    try:
        return quarantine_checks(con, settings, run_date, thresholds)
    finally:
        con.close()


def run_intake_checks(settings: Settings, run_date: dt.date,
                      thresholds: dict[str, float] | None = None) -> list[Check]:
    """Quarantine and freshness checks for the full gate."""
    from pipelines import warehouse

    con = warehouse.in_memory(settings)
    try:
        return quarantine_checks(con, settings, run_date, thresholds) + freshness_checks(con, settings, run_date)
    finally:
        con.close()
