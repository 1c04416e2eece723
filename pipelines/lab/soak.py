"""The soak: many nights in a row, through the functions the DAG calls, with invariants after each.

``segment-mart soak --nights N --accounts A`` generates a business of A simulated accounts plus
one scripted account per lifecycle (pipelines/lab/generate/lifecycles.py) with a drop for each of
the N nights, then runs the nights in order with ``nightly.run_night`` (check, ingest,
quarantine check, dbt build, quality gate, publish: what the CLI's ``run`` and the DAG's tasks
call). After every night it checks, against the published file:

* **published**: the night published (the manifest's run date is the night);
* **mrr_oracle**: an independent recomputation of MRR from the night's subscriptions extract
  (pipelines/lab/oracle.py) equals the published ``fct_mrr_account_monthly``;
* **one_tier_per_live_account**: the night's daily tier rows are exactly the CRM extract's
  accounts, ``live`` exactly for the accounts with a subscription live that night in the
  extract, each live account with one tier and every other account none;
* **tier_history**: the SCD2 tier periods never overlap, at most one is current, and they are
  contiguous: every night's daily tier lies in exactly one period of that tier (no tier: in
  none), and an account's consecutive nights with the same tier share a period;
* **movements_sum_to_mrr_change**: per month, the movements' MRR changes sum to the change of
  total MRR, and the monthly and quarterly reports' total rows balance (starting + new +
  expansion + reactivation - contraction - churn = ending = the MRR of the period's last month);
* **scripted_outcomes**: every scripted lifecycle's expected outcome whose night has passed.

One night (``fail_night``, by default the middle one) is first delivered corrupt (a quarter of
its subscription rows with an unparseable amount: more than the 2% a night may quarantine):
the soak requires that night to fail and every byte under the published folder to stay as it
was, then re-delivers the good drop and runs the night again, which must publish.

It prints a table row per night (night, wall seconds, live accounts, tiers, movements,
invariants) with progress lines, writes ``soak.json`` after every night, and stops at the first
broken invariant, naming the night and the offending rows (``SoakFailed``).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import DataProblem
from pipelines.settings import Settings

if TYPE_CHECKING:
    from pipelines.build.dbt import DbtSession

#: Usage history generated before the first night (health and usage windows need it).
HISTORY_DAYS = 60
#: The compact schedule the CI soak runs: four nights that show every scripted lifecycle
#: (a consecutive pair for late and duplicate events, a month jump for a return within the
#: reactivation window, two for one after it, a renewal passed between the last two).
COMPACT_NIGHTS = (dt.date(2026, 1, 20), dt.date(2026, 1, 21), dt.date(2026, 2, 10), dt.date(2026, 3, 3))
INVARIANTS = ("published", "mrr_oracle", "one_tier_per_live_account", "tier_history",
              "movements_sum_to_mrr_change", "scripted_outcomes")
CORRUPT_SHARE = 4  # every 4th subscription row of the corrupt drop gets an unparseable amount


class SoakFailed(DataProblem, RuntimeError):
    """An invariant broke (or a night failed): the message names the night and the rows."""

    def __init__(self, message: str, report: SoakReport):
        super().__init__(message)
        self.report = report


@dataclass
class Problem:
    invariant: str
    message: str
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class NightResult:
    night: str
    seconds: float
    live_accounts: int = 0
    tiers: int = 0
    movements: int = 0  # movement rows of the night's month
    checked_outcomes: int = 0
    problems: list[Problem] = field(default_factory=list)
    release: str = ""

    @property
    def status(self) -> str:
        return "ok" if not self.problems else "BROKEN: " + ", ".join(sorted({p.invariant for p in self.problems}))


@dataclass
class SoakReport:
    home: str
    nights: list[str]
    accounts: int
    seed: int
    results: list[NightResult] = field(default_factory=list)
    failed_night: dict[str, Any] | None = None
    lifecycles: list[dict[str, Any]] = field(default_factory=list)  # name, account, night, checks, held
    not_scheduled: dict[str, str] = field(default_factory=dict)
    generate_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (len(self.results) == len(self.nights) and all(not r.problems for r in self.results)
                and (self.failed_night is None or self.failed_night.get("ok", False)))

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for r, night in zip(d["results"], self.results, strict=True):
            r["status"] = night.status
        d["ok"] = self.ok
        return d


# --------------------------------------------------------------------------- the run


def plan_nights(start: dt.date, nights: int, step_days: int = 1) -> list[dt.date]:
    """``nights`` run dates from ``start``, ``step_days`` apart."""
    if nights < 1 or step_days < 1:
        raise ValueError("nights and step_days must be at least 1")
    return [start + dt.timedelta(days=i * step_days) for i in range(nights)]


def soak(settings: Settings, nights: Sequence[dt.date], *, accounts: int = 20, seed: int = 42,
         fail_night: int | None = -1, report_path: Path | None = None,
         progress: Callable[[str], None] = print) -> SoakReport:
    """Generate the drops, run every night and check the invariants after each (module doc).

    ``fail_night``: the 1-based night first delivered corrupt; -1 = the middle night, None = none.
    Raises SoakFailed at the first broken invariant; returns the report when every night held.
    """
    from pipelines.lab.generate import generate
    from pipelines.lab.generate.lifecycles import SCRIPT_FILE
    from pipelines.ops import nightly

    nights = sorted(set(nights))
    if not nights:
        raise ValueError("a soak needs at least one night")
    if settings.warehouse.exists() or settings.published.exists():
        raise FileExistsError(f"the soak builds its own pipeline home, and {settings.home} already holds a warehouse "
                              f"or a publish: remove it or give another home (--work)")
    if fail_night == -1:
        fail_night = (len(nights) + 1) // 2 if len(nights) > 1 else None
    if fail_night is not None and not 1 <= fail_night <= len(nights):
        raise ValueError(f"fail_night must be between 1 and {len(nights)}, got {fail_night}")
    report_path = report_path or settings.home / "soak.json"
    report = SoakReport(str(settings.home), [d.isoformat() for d in nights], accounts, seed)
    started = time.perf_counter()

    start = nights[0] - dt.timedelta(days=HISTORY_DAYS)
    progress(f"soak: generating {accounts} simulated accounts and the scripted lifecycles, "
             f"{len(nights)} drops {nights[0]} .. {nights[-1]} into {settings.landing}")
    generate(settings.landing, accounts=accounts, start_date=start, days=(nights[-1] - start).days + 1,
             drop_dates=nights, seed=seed, lifecycles=True, dbt_project_dir=settings.dbt_project_dir)
    report.generate_seconds = round(time.perf_counter() - started, 1)
    script = json.loads((settings.landing / SCRIPT_FILE).read_text(encoding="utf-8"))
    report.not_scheduled = script["not_scheduled"]
    report.lifecycles = [{"lifecycle": lc["lifecycle"], "account_id": lc["account_id"], "night": lc["night"],
                          "event": lc["event"], "checks": 0, "held": True} for lc in script["lifecycles"]]
    for name, why in report.not_scheduled.items():
        progress(f"soak: lifecycle {name} not scheduled: {why}")
    progress(_header())

    # one dbt process for every night (as a replay runs them): dbt starts and loads the project once
    with nightly.dbt_session(settings) as dbt:
        for number, night in enumerate(nights, 1):
            progress(f"soak: night {number}/{len(nights)} {night}: running")
            if number == fail_night:
                report.failed_night = _failed_night(settings, night, progress, dbt)
                _save(report, report_path)
                if not report.failed_night["ok"]:
                    raise SoakFailed(f"night {night}: the corrupt drop {report.failed_night['problem']}", report)
            t0 = time.perf_counter()
            result = NightResult(night.isoformat(), 0.0)
            try:
                manifest = nightly.run_night(settings, night, dbt=dbt)
                result.release = manifest.release_id
            except Exception as exc:  # the night itself failed: the first invariant
                result.seconds = round(time.perf_counter() - t0, 1)
                result.problems.append(Problem("published", f"{type(exc).__name__}: {exc}"))
            else:
                result.seconds = round(time.perf_counter() - t0, 1)
                check_night(settings, night, script, result, report)
            report.results.append(result)
            _save(report, report_path)
            progress(_row(result))
            if result.problems:
                first = result.problems[0]
                rows = json.dumps(first.rows[:10], default=str, indent=2) if first.rows else ""
                raise SoakFailed(f"night {night}: invariant {first.invariant} broken: {first.message}"
                                 + (f"\noffending rows:\n{rows}" if rows else "")
                                 + f"\n(report: {report_path})", report)
    report.seconds = round(time.perf_counter() - started, 1)
    _save(report, report_path)
    held = sum(1 for lc in report.lifecycles if lc["held"] and lc["checks"])
    progress(f"soak: {len(nights)} nights published, every invariant held; {held} of "
             f"{len(report.lifecycles)} scripted lifecycles checked ({report.seconds:.0f}s; report {report_path})")
    return report


def _header() -> str:
    return f"{'night':<11} {'seconds':>8} {'live':>6} {'tiers':>6} {'movements':>9}  invariants"


def _row(r: NightResult) -> str:
    return (f"{r.night:<11} {r.seconds:>8.1f} {r.live_accounts:>6} {r.tiers:>6} {r.movements:>9}  "
            f"{r.status} ({r.checked_outcomes} scripted outcomes)")


def _save(report: SoakReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the failed night


def published_fingerprint(settings: Settings) -> dict[str, str]:
    """Every file under the published folder (sha256) and every link's target: all published bytes."""
    found: dict[str, str] = {}
    root = settings.published
    if not root.exists():
        return found
    for folder, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = "-> " + os.readlink(path)
            elif path.is_file() and name != ".publish.lock":
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def corrupt_drop(drop: Path) -> dict[str, Any]:
    """Make every CORRUPT_SHARE-th subscription row's amount unparseable (the night must stop at
    the quarantine check). Returns what was done."""
    path = drop / "billing" / "subscriptions.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    column = rows[0].index("amount")
    changed = 0
    for i in range(1, len(rows), CORRUPT_SHARE):
        rows[i][column] = "twelve hundred"
        changed += 1
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return {"file": str(path), "rows_corrupted": changed, "rows": len(rows) - 1, "column": "amount"}


def _failed_night(settings: Settings, night: dt.date, progress: Callable[[str], None],
                  dbt: DbtSession | None = None) -> dict[str, Any]:
    """Deliver the night corrupt: it must fail and leave every published byte as it was; then
    the good drop is delivered again (the caller runs the night)."""
    from pipelines.ops import nightly

    drop = settings.drop_dir(night)
    good = {p: p.read_bytes() for p in drop.rglob("*") if p.is_file()}
    before = published_fingerprint(settings)
    done = corrupt_drop(drop)
    t0 = time.perf_counter()
    outcome: dict[str, Any] = {"night": night.isoformat(), **done}
    try:
        nightly.run_night(settings, night, dbt=dbt)
    except Exception as exc:
        outcome["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    outcome["seconds"] = round(time.perf_counter() - t0, 1)
    after = published_fingerprint(settings)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    for path, content in good.items():  # the good drop, re-delivered
        path.write_bytes(content)
    outcome["published_files"] = len(before)
    outcome["published_changed"] = changed
    if "error" not in outcome:
        outcome["ok"], outcome["problem"] = False, "published although a quarter of its subscriptions is corrupt"
    elif changed:
        outcome["ok"], outcome["problem"] = False, f"failed but changed published files: {changed[:10]}"
    else:
        outcome["ok"] = True
    progress(f"soak: night {night} delivered corrupt ({done['rows_corrupted']} of {done['rows']} subscription "
             f"amounts): {outcome.get('error', 'did not fail')}; {len(before)} published files "
             f"{'unchanged' if not changed else 'CHANGED'} ({outcome['seconds']}s); good drop re-delivered")
    return outcome


# --------------------------------------------------------------------------- the invariants


def check_night(settings: Settings, night: dt.date, script: dict[str, Any], result: NightResult,
                report: SoakReport | None = None) -> NightResult:
    """Check every invariant of a published night; fills ``result`` (problems, counts)."""
    from pipelines.lab.oracle import MrrConfig, reconcile_published_mrr
    from pipelines.release import open_published, read_manifest

    manifest = read_manifest(settings)
    if manifest is None or manifest.run_date != night:
        result.problems.append(Problem("published", f"the published manifest is for "
                                       f"{manifest.run_date if manifest else 'nothing'}, not {night}"))
        return result
    con = open_published(settings)
    try:
        result.live_accounts, result.tiers = con.execute("""
            select count(*) filter (where account_status = 'live'), count(tier_number)
            from marts.fct_account_tiers_daily where as_of_date = ?""", [night]).fetchone()
        result.movements = con.execute("select count(*) from marts.fct_mrr_movements where month_start_date = ?",
                                       [night.replace(day=1)]).fetchone()[0]
        drop = settings.drop_dir(night)
        mrr = reconcile_published_mrr(con, drop / "billing" / "subscriptions.csv", MrrConfig.of(settings), night)
        if not mrr.ok:
            result.problems.append(Problem("mrr_oracle", mrr.describe(), mrr.offending_rows()))
        for invariant, check in (("one_tier_per_live_account", _tiers_match_extract),
                                 ("tier_history", _tier_history_contiguous),
                                 ("movements_sum_to_mrr_change", _movements_sum)):
            rows = check(con, night, drop)
            if rows:
                result.problems.append(Problem(invariant, f"{len(rows)} offending rows", rows[:20]))
        lifecycles = {lc["lifecycle"]: lc for lc in (report.lifecycles if report else [])}
        for lc in script["lifecycles"]:
            for expectation in lc["expect"]:
                since = dt.date.fromisoformat(expectation["since"])
                until = dt.date.fromisoformat(expectation["until"]) if expectation["until"] else None
                if night < since or (until is not None and night >= until):
                    continue
                result.checked_outcomes += 1
                trouble = check_expectation(con, expectation, night)
                if lc["lifecycle"] in lifecycles:
                    lifecycles[lc["lifecycle"]]["checks"] += 1
                if trouble is not None:
                    if lc["lifecycle"] in lifecycles:
                        lifecycles[lc["lifecycle"]]["held"] = False
                    result.problems.append(Problem("scripted_outcomes", f"{lc['lifecycle']} ({lc['account_id']}): "
                                                   f"{trouble}", [{"expectation": expectation, **({"found": trouble})}]))
    finally:
        con.close()
    return result


def _is_iso_date(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-"


def _same(actual: Any, expected: Any) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, bool):
        return isinstance(actual, bool) and actual == expected
    if isinstance(actual, dt.date):
        return actual.isoformat() == str(expected)
    if isinstance(actual, (int, float, Decimal)) and not isinstance(actual, bool):
        try:
            return Decimal(str(actual)) == Decimal(str(expected))
        except ArithmeticError:
            return False
    return str(actual) == str(expected)


def check_expectation(con: Any, expectation: dict[str, Any], night: dt.date) -> str | None:
    """None when the published marts hold the expected outcome (pipelines/lab/generate/lifecycles.py,
    ``Expectation``), else what was found."""
    where = {k: (night if v == "$night" else dt.date.fromisoformat(v) if _is_iso_date(v) else v)
             for k, v in expectation["where"].items()}
    values = expectation["values"]
    columns = list(values) if values else ["1"]
    sql = (f"select {', '.join(columns)} from marts.{expectation['mart']} where "
           + " and ".join(f"{k} = ?" for k in where))
    rows = con.execute(sql, list(where.values())).fetchall()
    named = ", ".join(f"{k} = {v.isoformat() if isinstance(v, dt.date) else v}" for k, v in where.items())
    if values is None:
        return None if not rows else f"expected no row in {expectation['mart']} where {named}, found {len(rows)}"
    if len(rows) != 1:
        return f"expected one row in {expectation['mart']} where {named}, found {len(rows)}"
    wrong = {c: {"expected": values[c], "found": str(v) if v is not None else None}
             for c, v in zip(columns, rows[0], strict=True) if not _same(v, values[c])}
    return None if not wrong else f"{expectation['mart']} where {named}: {wrong}"


def _records(con: Any, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [{n: (v.isoformat() if isinstance(v, dt.date) else str(v) if isinstance(v, Decimal) else v)
             for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


def _tiers_match_extract(con: Any, night: dt.date, drop: Path) -> list[dict[str, Any]]:
    """The night's daily tier rows against the extract: one row per CRM account and no other,
    live = a subscription live that night, a tier exactly for the live accounts."""
    with (drop / "crm" / "accounts.csv").open(newline="", encoding="utf-8") as fh:
        crm = {r["account_id"].strip() for r in csv.DictReader(fh)}
    live: set[str] = set()
    with (drop / "billing" / "subscriptions.csv").open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            start = dt.date.fromisoformat(r["start_date"].strip())
            end = dt.date.fromisoformat(r["end_date"].strip()) if r["end_date"].strip() else None
            if start <= night and (end is None or night < end):
                live.add(r["account_id"].strip())
    daily = _records(con, """
        select account_id, account_status, tier_number, assigned_tier, count(*) over (partition by account_id) as n
        from marts.fct_account_tiers_daily where as_of_date = ?""", [night])
    bad = []
    seen = set()
    for r in daily:
        seen.add(r["account_id"])
        expected_live = r["account_id"] in live
        problem = None
        if r["n"] != 1:
            problem = f"{r['n']} rows on the night"
        elif r["account_id"] not in crm:
            problem = "not in the night's CRM extract"
        elif (r["account_status"] == "live") != expected_live:
            problem = f"status {r['account_status']}, but {'a' if expected_live else 'no'} subscription is live"
        elif (r["tier_number"] is not None) != expected_live:
            problem = "a live account without a tier" if expected_live else "a tier without a live subscription"
        if problem:
            bad.append({"problem": problem, **r})
    bad += [{"problem": "in the CRM extract, no daily tier row", "account_id": a} for a in sorted(crm - seen)]
    return bad


def _tier_history_contiguous(con: Any, night: dt.date, _drop: Path) -> list[dict[str, Any]]:
    overlaps = _records(con, """
        select account_id, valid_from, valid_to, next_valid_from, 'periods overlap or end before they start' as problem
        from (
            select *, lead(valid_from) over (partition by account_id order by valid_from) as next_valid_from
            from marts.dim_account_tier_history
        ) as periods
        where (valid_to is not null and valid_to <= valid_from)
           or (next_valid_from is not null and (valid_to is null or valid_to > next_valid_from))
        order by account_id, valid_from""")
    current = _records(con, """
        select account_id, count(*) as current_periods, 'more than one current period, or a current one that ends'
            as problem
        from marts.dim_account_tier_history
        where is_current
        group by account_id
        having count(*) > 1 or count(valid_to) > 0""")
    coverage = _records(con, """
        with daily as (
            select account_id, as_of_date, tier_number from marts.fct_account_tiers_daily
        ),
        covered as (
            select daily.account_id, daily.as_of_date, daily.tier_number,
                   count(history.account_id) as periods,
                   count(*) filter (where history.tier_number = daily.tier_number) as same_tier,
                   min(history.valid_from) as period_from
            from daily
            left join marts.dim_account_tier_history as history
                on history.account_id = daily.account_id
                and history.valid_from <= daily.as_of_date
                and (history.valid_to is null or daily.as_of_date < history.valid_to)
            group by daily.account_id, daily.as_of_date, daily.tier_number
        ),
        nights as (
            select as_of_date, lag(as_of_date) over (order by as_of_date) as previous_night
            from (select distinct as_of_date from daily) as n
        ),
        split as (
            select today.account_id, today.as_of_date, today.tier_number,
                   'the same tier on consecutive nights in two periods' as problem
            from covered as today
            inner join nights on nights.as_of_date = today.as_of_date
            inner join covered as before
                on before.account_id = today.account_id and before.as_of_date = nights.previous_night
            where today.tier_number = before.tier_number and today.period_from <> before.period_from
        )
        select account_id, as_of_date, tier_number,
               case when tier_number is null then 'a night without a tier inside a period'
                    else 'a night with a tier not in exactly one period of that tier' end as problem
        from covered
        where (tier_number is null and periods > 0) or (tier_number is not null and (periods <> 1 or same_tier <> 1))
        union all
        select * from split
        order by account_id, as_of_date""")
    return overlaps + current + coverage


def _movements_sum(con: Any, night: dt.date, _drop: Path) -> list[dict[str, Any]]:
    by_month = _records(con, """
        with totals as (
            select month_start_date, sum(mrr_reporting) as mrr from marts.fct_mrr_account_monthly group by 1
        ),
        changes as (
            select month_start_date, mrr,
                   mrr - coalesce(lag(mrr) over (order by month_start_date), 0) as mrr_change
            from totals
        ),
        moved as (
            select month_start_date, sum(mrr_change_reporting) as movements from marts.fct_mrr_movements group by 1
        )
        select changes.month_start_date, changes.mrr_change, coalesce(moved.movements, 0) as movements,
               'movements do not sum to the change of total MRR' as problem
        from changes
        left join moved on moved.month_start_date = changes.month_start_date
        where abs(changes.mrr_change - coalesce(moved.movements, 0)) > 0.005
        order by 1""")
    reports = []
    for period in ("monthly", "quarterly"):
        reports += _records(con, f"""
            with totals as (
                select month_start_date, sum(mrr_reporting) as mrr from marts.fct_mrr_account_monthly group by 1
            )
            select report.period_start_date, report.starting_mrr_reporting, report.ending_mrr_reporting,
                   totals.mrr as fct_mrr,
                   'the {period} report total does not balance, or differs from the MRR' as problem
            from marts.rpt_segment_retention_{period} as report
            left join totals on totals.month_start_date = report.period_last_month
            where report.segment_dimension = 'total'
              and (abs(report.starting_mrr_reporting + report.new_mrr_reporting + report.expansion_mrr_reporting
                       + report.reactivation_mrr_reporting - report.contraction_mrr_reporting
                       - report.churned_mrr_reporting - report.ending_mrr_reporting) > 0.005
                   or abs(report.ending_mrr_reporting - coalesce(totals.mrr, 0)) > 0.005)
            order by 1""")
    return by_month + reports
