"""``generate()``: simulate the business and write nightly landing drops."""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipelines.contract import ENTITIES, FILE_FORMATS, default_in_use, get_entity
from pipelines.lab.generate import defects as dfx
from pipelines.lab.generate.accounts import simulate_accounts
from pipelines.lab.generate.billing import simulate_lifecycles
from pipelines.lab.generate.lifecycles import Config as LifecycleConfig
from pipelines.lab.generate.lifecycles import Script
from pipelines.lab.generate.lifecycles import plan as plan_lifecycles
from pipelines.lab.generate.simulators import World, snapshot_simulators
from pipelines.lab.generate.timeline import Window, to_day
from pipelines.lab.generate.usage import EVENTS_SCHEMA, UsageSimulator
from pipelines.lab.generate.writers import StreamWriter, arrow_schema, table_bytes, write_table

DEFAULT_EVENTS_PER_ACCOUNT_DAY = 2.7
DUPLICATE_SHARE = 0.002  # rows of a usage drop re-sent in one of the next 3 drops
EVENTS = "usage/events"


@dataclass
class GenerateSummary:
    """What ``generate()`` wrote."""

    out_dir: Path
    run_dates: list[dt.date]  # run dates that got a drop
    rows: dict[str, int]  # entity (source/name) -> rows written over all drops
    files: list[Path]
    defects: list[dict[str, Any]]  # see pipelines.lab.generate.defects for the keys
    elapsed_seconds: float
    accounts: int = 0
    seed: int = 0
    file_format: str = "csv"
    events_per_drop: dict[str, int] = field(default_factory=dict)  # run date -> usage rows
    lifecycle_script: Path | None = None  # scripted lifecycles and their expected outcomes (JSON)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (for the CLI)."""
        return {
            "out_dir": str(self.out_dir),
            "run_dates": [d.isoformat() for d in self.run_dates],
            "rows": dict(self.rows),
            "files": [str(f) for f in self.files],
            "defects": list(self.defects),
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "accounts": self.accounts,
            "seed": self.seed,
            "file_format": self.file_format,
            "events_per_drop": dict(self.events_per_drop),
            "lifecycle_script": str(self.lifecycle_script) if self.lifecycle_script else None,
        }


def _entity_path(drop_dir: Path, qualified: str, file_format: str) -> Path:
    source, name = qualified.split("/")
    return drop_dir / source / f"{name}.{file_format}"


def _clear_entity_files(drop_dir: Path) -> None:
    """Remove contract files of earlier runs in this drop (any format), so a drop is exactly ours."""
    for entity in ENTITIES:
        for ext in FILE_FORMATS:
            path = drop_dir / entity.source / f"{entity.name}.{ext}"
            if path.exists():
                path.unlink()


class _Run:
    """State of one generate() call."""

    def __init__(self, out_dir: Path, window: Window, seed: int, file_format: str, defects: tuple[str, ...],
                 script: Script | None = None):
        self.out_dir, self.window = out_dir, window
        self.seed, self.file_format, self.defects = seed, file_format, defects
        self.script = script
        self.rows: dict[str, int] = {e.qualified: 0 for e in ENTITIES}
        self.files: list[Path] = []
        self.applied: list[dict[str, Any]] = []
        self.events_per_drop: dict[str, int] = {}
        self.last = window.days - 1

    def drop_dir(self, i: int) -> Path:
        return self.out_dir / self.window.date(i).isoformat()

    # --- snapshots -------------------------------------------------------------------------
    def write_snapshot(self, i: int, qualified: str, table: pa.Table) -> None:
        path = _entity_path(self.drop_dir(i), qualified, self.file_format)
        entity = get_entity(*qualified.split("/"))
        table = table.cast(arrow_schema(entity))
        if self.script is not None:  # the scripted lifecycles' accounts, after the simulated ones
            table = pa.concat_tables([table, self.script.snapshot(qualified, self.window.date(i))])
        wanted = dfx.for_entity(self.defects, qualified) if i == self.last else []
        if "missing_file" in wanted:
            self.applied.append(dfx.record("missing_file", path, value="file not written"))
            return
        for defect in wanted:
            if defect in dfx.CELL_DEFECTS:
                table, row0, column, value = dfx.inject_cell(table, defect, self.seed)
                self.applied.append(dfx.record(defect, path, row0=row0, file_format=self.file_format,
                                               column=column, value=value))
        if "missing_column" in wanted:
            table = table.drop_columns([dfx.MISSING_COLUMN])
            self.applied.append(dfx.record("missing_column", path, column=dfx.MISSING_COLUMN,
                                           value="column not written"))
        path.parent.mkdir(parents=True, exist_ok=True)
        if "bad_encoding" in wanted:
            table, row0 = dfx.with_encoding_name(table, self.seed)
            if self.file_format == "parquet":
                index = table.column_names.index("account_name")
                names = dfx.latin1_strings(table.column(index).combine_chunks(), row0)
                write_table(path, table.set_column(index, "account_name", names), "parquet")
                note = "Parquet string column holding Latin-1 bytes (invalid UTF-8)"
            else:
                text = table_bytes(table, self.file_format).decode("utf-8")
                path.write_bytes(text.encode("latin-1"))
                note = "whole file encoded as Latin-1"
            self.applied.append(dfx.record("bad_encoding", path, row0=row0, file_format=self.file_format,
                                           column="account_name", value=dfx.ENCODING_NAME, note=note))
        elif "wrong_format" in wanted:
            real = "csv" if self.file_format == "parquet" else "parquet"
            path.write_bytes(table_bytes(table, real))
            self.applied.append(dfx.record("wrong_format", path, value=f"{real} content",
                                           note=f"a .{self.file_format} file holding {real} content"))
        else:
            write_table(path, table, self.file_format)
        self.rows[qualified] += table.num_rows
        self.files.append(path)

    # --- events ------------------------------------------------------------------------------
    def open_events(self, drop: int) -> _EventSink:
        return _EventSink(self, drop)


class _EventSink:
    """Usage events of one drop; applies the events defects when it is the last drop."""

    def __init__(self, run: _Run, drop: int):
        self.run, self.drop = run, drop
        self.path = _entity_path(run.drop_dir(drop), EVENTS, run.file_format)
        self.is_last = drop == run.last
        wanted = dfx.for_entity(run.defects, EVENTS) if self.is_last else []
        self.empty = "empty_file" in wanted
        self.quarantine = "mass_quarantine" in wanted
        self.duplicate = "duplicate_key" in wanted
        self.quarantined = 0
        self.first_row: tuple[pa.Table, int] | None = None  # (row, 0-based row number)
        self.writer: StreamWriter | None = None
        if self.empty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(b"")
        else:
            self.writer = StreamWriter(self.path, EVENTS_SCHEMA, run.file_format)
        self.chunk = 0

    def write(self, table: pa.Table) -> None:
        if self.writer is None or table.num_rows == 0:
            return
        if self.quarantine:
            rng = np.random.default_rng([self.run.seed, 10, self.drop, self.chunk])
            mask = dfx.quarantine_mask(table.num_rows, rng)
            if self.first_row is None and not mask.all():
                k = int(np.argmin(mask))
                self.first_row = (table.slice(k, 1), self.writer.rows + k)
            table = dfx.blank_account_ids(table, mask)
            self.quarantined += int(mask.sum())
        elif self.first_row is None:
            self.first_row = (table.slice(0, 1), self.writer.rows)
        self.chunk += 1
        self.writer.write(table)

    def close(self) -> int:
        run = self.run
        if self.writer is None:
            run.applied.append(dfx.record("empty_file", self.path, value="0 bytes"))
            run.files.append(self.path)
            return 0
        if self.duplicate:
            if self.first_row is None:
                raise ValueError("cannot inject 'duplicate_key': the last usage drop has no events")
            row, original = self.first_row
            copy = dfx.conflicting_copy(row)
            row0 = self.writer.rows
            self.writer.write(copy)
            run.applied.append(dfx.record(
                "duplicate_key", self.path, row0=row0, file_format=run.file_format, column="event_id",
                value=row.column("event_id")[0].as_py(),
                duplicate_of_line=dfx.line_of(original, run.file_format),
            ))
        if self.quarantine:
            run.applied.append(dfx.record(
                "mass_quarantine", self.path, column="account_id", value="", rows_affected=self.quarantined,
                note=f"~{dfx.QUARANTINE_SHARE:.0%} of the rows, chosen at random, have an empty account_id",
            ))
        self.writer.close()
        run.files.append(self.path)
        run.rows[EVENTS] += self.writer.rows
        return self.writer.rows


#: Health components the generator can make pure noise (knob ``noise_components``).
NOISE_COMPONENTS = ("support", "sentiment")
#: Health components the generator can make strongly predictive of churn (``predictive_components``).
PREDICTIVE_COMPONENTS = ("sentiment",)


def generate(
    out_dir: Path,
    *,
    accounts: int,
    start_date: dt.date,
    days: int,
    drop_days: int | None = None,
    seed: int = 42,
    file_format: str = "csv",
    defects: Sequence[str] = (),
    events_per_account_day: float | None = None,
    progress: Callable[[str], None] | None = None,
    noise_components: Sequence[str] = (),
    predictive_components: Sequence[str] = (),
    drop_dates: Sequence[dt.date] | None = None,
    lifecycles: bool = False,
    dbt_project_dir: Path | None = None,
    entities: Collection[str] | None = None,
) -> GenerateSummary:
    """Simulate ``accounts`` customers over ``days`` run dates and write landing drops.

    Drops go to ``<out_dir>/<run_date>/<source>/<entity>.<file_format>`` for the last
    ``drop_days`` run dates (default: all), or for the given ``drop_dates`` (any days of the
    simulated window, the last of them its last day: nights that jump, e.g. across a month end
    or a renewal). CRM and billing files are full snapshots as of the run date; usage files hold
    the events since the previous drop plus late events and re-sent duplicates, and the first
    drop also holds every event of the earlier, undropped days. ``defects`` are injected into
    the last drop and reported in the summary. Same arguments, same bytes.

    ``lifecycles`` adds one scripted account per lifecycle the product classifies (churn,
    return within and after the reactivation window, held downgrade, restated billing, ...;
    pipelines/lab/generate/lifecycles.py), placed on the drops' own nights, and writes their
    expected outcomes to ``<out_dir>/scripted_lifecycles.json``. The simulated accounts are the
    same with or without it, so tests written against the default output keep their data.
    The expectations follow the configuration of ``dbt_project_dir`` (default: the project's).

    ``entities``: the snapshot entities to write (qualified names; default: those in use by
    default, :func:`pipelines.contract.default_in_use`); usage events are always written.

    Known answers for the health backtest: ``noise_components`` (``support``, ``sentiment``) makes
    the data behind these health components carry no churn signal (churn AUC near 0.5);
    ``predictive_components`` (``sentiment``) gives that component a strong one (monthly NPS
    surveys, scores that drop in the 120 days before churn).
    """
    unknown = set(noise_components) - set(NOISE_COMPONENTS)
    if unknown:
        raise ValueError(f"noise_components: {sorted(unknown)} unknown; choose from {', '.join(NOISE_COMPONENTS)}")
    unknown = set(predictive_components) - set(PREDICTIVE_COMPONENTS)
    if unknown or set(noise_components) & set(predictive_components):
        raise ValueError(f"predictive_components: choose from {', '.join(PREDICTIVE_COMPONENTS)}, "
                         "none of them also a noise component")
    started = time.perf_counter()
    if accounts < 1:
        raise ValueError("accounts must be at least 1")
    if days < 1:
        raise ValueError("days must be at least 1")
    window = Window(to_day(start_date), days)
    if drop_dates is not None:
        if drop_days is not None:
            raise ValueError("give drop_days or drop_dates, not both")
        drops = sorted({to_day(d) - window.first for d in drop_dates})
        if not drops or drops[0] < 0 or drops[-1] != days - 1:
            raise ValueError(f"drop_dates must lie in {window.date(0)} .. {window.date(days - 1)}, the last of "
                             f"them on {window.date(days - 1)} (the last simulated day)")
    else:
        drop_days = days if drop_days is None else drop_days
        if not 1 <= drop_days <= days:
            raise ValueError(f"drop_days must be between 1 and days ({days}), got {drop_days}")
        drops = list(range(days - drop_days, days))
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if file_format not in FILE_FORMATS:
        raise ValueError(f"file_format must be one of {', '.join(FILE_FORMATS)}, got {file_format!r}")
    mean_events = DEFAULT_EVENTS_PER_ACCOUNT_DAY if events_per_account_day is None else events_per_account_day
    if mean_events < 0:
        raise ValueError("events_per_account_day must not be negative")
    wanted = dfx.validate(defects)
    say = progress or (lambda _msg: None)

    out_dir = Path(out_dir)
    acc = simulate_accounts(np.random.default_rng([seed, 1]), accounts, window)
    life = simulate_lifecycles(acc, window, seed)
    # one simulator per snapshot entity of the contract (pipelines/lab/generate/simulators.py)
    snapshots = snapshot_simulators(World(acc, life, window, seed, frozenset(noise_components),
                                          frozenset(predictive_components)),
                                    default_in_use() if entities is None else entities)
    usage = UsageSimulator(acc, life, window, seed, mean_events)
    say(f"simulated {accounts:,} accounts, {len(life.periods):,} subscription periods "
        f"({time.perf_counter() - started:.1f}s)")

    script = None
    if lifecycles:
        from pipelines.settings import Settings

        config = LifecycleConfig.of_project(dbt_project_dir or Settings().dbt_project_dir)
        script = plan_lifecycles([window.date(i) for i in drops], config)
        say(f"scripted {len(script.lifecycles)} lifecycles on {len(drops)} nights"
            + (f"; not scheduled: {', '.join(script.not_scheduled)}" if script.not_scheduled else ""))
    drop_at = {day: position for position, day in enumerate(drops)}
    run = _Run(out_dir, window, seed, file_format, wanted, script)
    for i in drops:
        _clear_entity_files(run.drop_dir(i))
    late: dict[int, list[pa.Table]] = defaultdict(list)
    resend: dict[int, list[pa.Table]] = defaultdict(list)
    sink: _EventSink | None = None
    every = max(1, days // 10)
    events_total = 0

    for i, table, lag in usage.days():
        if i > drops[-1]:
            break
        if sink is None:  # the events of every day up to the next drop go into that drop
            sink = run.open_events(next(day for day in drops if day >= i))
        delivered = [table.filter(pa.array(lag == 0))]
        for k in (1, 2, 3):
            if i + k <= drops[-1] and (lag == k).any():
                late[i + k].append(table.filter(pa.array(lag == k)))
        delivered += late.pop(i, [])
        for chunk in delivered:
            sink.write(chunk)
        for chunk in resend.pop(i, []):
            sink.write(chunk)
        if i in drop_at:  # re-send a few rows of this drop in one of the next three
            position = drop_at[i]
            fresh = pa.concat_tables(delivered)
            rng = np.random.default_rng([seed, 8, i])
            picked = rng.random(fresh.num_rows) < DUPLICATE_SHARE
            when = rng.integers(1, 4, fresh.num_rows)
            for k in (1, 2, 3):
                mask = picked & (when == k)
                if position + k < len(drops) and mask.any():
                    resend[drops[position + k]].append(fresh.filter(pa.array(mask)))
            if script is not None:
                sink.write(script.events_for_drop(window.date(i)))
            rows = sink.close()
            events_total += rows
            run.events_per_drop[window.date(i).isoformat()] = rows
            sink = None
            for qualified, snap in snapshots.items():
                run.write_snapshot(i, qualified, snap.as_of(window.first + i))
        if (i + 1) % every == 0 or i == days - 1:
            pending = sink.writer.rows if sink is not None and sink.writer is not None else 0
            say(f"{window.date(i)}: day {i + 1}/{days} ({(i + 1) / days:.0%}), "
                f"{events_total + pending:,} usage events written, "
                f"{time.perf_counter() - started:.1f}s")

    # Defects real exports carry, applied to the last drop's written CSV text (defects.py).
    run.applied += dfx.apply_text_defects(run.drop_dir(run.last), wanted, file_format, seed)
    return GenerateSummary(
        out_dir=out_dir,
        run_dates=[window.date(i) for i in drops],
        rows=run.rows,
        files=run.files,
        defects=run.applied,
        elapsed_seconds=time.perf_counter() - started,
        accounts=accounts,
        seed=seed,
        file_format=file_format,
        events_per_drop=run.events_per_drop,
        lifecycle_script=script.write(out_dir) if script is not None else None,
    )
