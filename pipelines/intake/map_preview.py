"""``segment-mart map preview``: run the ingest of a night's mapped exports into a scratch lake and
show what it made (docs/onboarding.md).

Apart from :mod:`pipelines.intake.mapping` because it runs the ingest (:mod:`pipelines.intake.ingest`), which
itself reads the mappings: the preview sits above both, so neither imports the other back.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.intake.mapping import Mapping, MappingError, active_mappings, inspect_mapped
from pipelines.intake.readers import FileUnreadable
from pipelines.intake.row_checks import q

if TYPE_CHECKING:
    import duckdb

    from pipelines.settings import Settings


@dataclass
class Preview:
    """What the night's ingest would make of one mapped export."""

    mapping: Mapping
    file: Path
    problems: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_deduplicated: int = 0
    rows_left_out: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    off: bool = False  # the entity is not in use: the night ignores the mapping


def preview(settings: Settings, run_date: dt.date, entities: tuple[str, ...] = (), rows: int = 5,
            examples: int = 20) -> list[Preview]:
    """Run the ingest of every mapped entity of the night's drop (or those named) into a scratch
    lake under the temp folder and report what it made: counts, the first mapped rows, the
    quarantined rows and their reasons. The raw lake and the warehouse are not touched."""
    from pipelines import warehouse
    from pipelines.intake import lake
    from pipelines.intake.ingest import _EntityLoader
    from pipelines.settings import get_settings

    mappings = active_mappings(settings)
    chosen = [m for q_, m in mappings.items() if not entities or q_ in entities]
    off = [m for m in chosen if m.entity.qualified not in settings.in_use]
    unknown = [e for e in entities if e not in mappings]
    if unknown:
        raise MappingError(f"no mapping in {settings.mappings} produces {', '.join(unknown)} "
                           f"(mapped: {', '.join(mappings) or 'none'})")
    if not chosen:
        raise MappingError(f"no mapping files in {settings.mappings} (setting mappings_dir): copy or extend a "
                           "shipped one (`segment-mart map list`), see docs/onboarding.md")
    scratch = settings.temp / "map-preview" / run_date.isoformat()
    shutil.rmtree(scratch, ignore_errors=True)
    scratch_settings = get_settings(**(settings.model_dump() | {"lake_dir": scratch / "lake"}))
    out: list[Preview] = []
    con = warehouse.in_memory(settings)
    try:
        for mapping in chosen:
            result = Preview(mapping, settings.drop_dir(run_date) / mapping.input_file)
            out.append(result)
            if mapping in off:
                result.problems = [f"{mapping.entity.qualified} is not in use (SEGMENT_MART_ENTITIES_IN_USE): the "
                                   "night ignores this mapping and its export; add the entity to the setting"]
                result.off = True
                continue
            lf, problems = inspect_mapped(mapping, settings.drop_dir(run_date))
            if lf is None:
                result.problems = [str(p) for p in problems]
                continue
            commit = lake.Commit()
            load_id = lake.new_load_id(run_date)
            loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
            with commit.atomically():
                qdir = commit.stage(lake.quarantine_dir(scratch_settings.lake, run_date, mapping.entity.source), load_id)
                try:
                    load = _EntityLoader(scratch_settings, con, lf, run_date, load_id, loaded_at, commit, qdir).load()
                except FileUnreadable as exc:
                    result.problems = [f"{lf.path}: {exc}"]
                    commit.discard()
                    continue
                commit.commit()
            result.rows_read, result.rows_loaded = load.rows_read, load.rows_loaded
            result.rows_quarantined, result.rows_deduplicated = load.rows_quarantined, load.rows_deduplicated
            result.rows_left_out = lf.mapping.skipped if lf.mapping else 0
            files = lake.partition_files(scratch_settings.lake, mapping.entity, run_date)
            columns = ", ".join(q(c) for c in (*mapping.output_columns, "_source_line"))
            if files:
                result.sample = _dicts(con, f"select {columns} from read_parquet({lake.files_sql(files)}) "
                                            f"order by _source_line limit {int(rows)}")
            qfiles = sorted(lake.quarantine_dir(scratch_settings.lake, run_date, mapping.entity.source).glob("*.parquet"))
            if qfiles and result.rows_quarantined:
                relation = f"read_parquet({lake.files_sql(qfiles)})"
                result.quarantined = _dicts(con, f"select line, column_name, value, reason from {relation} "
                                                 f"order by line, column_name limit {int(examples)}")
                result.reasons = _dicts(con, f"select column_name, regexp_replace(reason, '''[^'']*''', '''...''', 'g') "
                                             f"as reason, count(distinct line) as rows from {relation} "
                                             "group by all order by rows desc, column_name limit 20")
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def _dicts(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def format_preview(results: list[Preview], width: int = 28) -> str:
    """The preview as text for a terminal."""
    lines: list[str] = []
    for r in results:
        lines.append(f"== {r.mapping.entity.qualified} <- {r.file} (mapping {r.mapping.path})")
        if r.off:
            lines += [f"   NOT IN USE: {p}" for p in r.problems]
            continue
        if r.problems:
            lines += [f"   FILE PROBLEM: {p}" for p in r.problems]
            lines.append("   nothing of this export would load; the night's ingest would reject the source")
            continue
        share = r.rows_quarantined / r.rows_read if r.rows_read else 0.0
        lines.append(f"   read {r.rows_read}, would load {r.rows_loaded}, quarantine {r.rows_quarantined} "
                     f"({share:.1%}), deduplicate {r.rows_deduplicated}"
                     + (f"; {r.rows_left_out} record(s) left out by `where`" if r.rows_left_out else ""))
        if r.sample:
            names = list(r.sample[0])
            lines.append(f"   mapped rows (first {len(r.sample)}):")
            lines.append("   " + " | ".join(n[:width] for n in names))
            for row in r.sample:
                lines.append("   " + " | ".join(("" if v is None else str(v))[:width] for v in row.values()))
        if r.reasons:
            lines.append("   quarantined, by reason:")
            lines += [f"   {x['rows']:>6}  {x['column_name']}: {x['reason']}" for x in r.reasons]
            lines.append("   quarantined rows (line, column, value, reason):")
            lines += [f"   line {x['line']}: {x['column_name']} = {x['value']!r}: {x['reason']}" for x in r.quarantined]
    return "\n".join(lines)
