"""`segment-mart`: the command line. Every command calls the same function a DAG task calls."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipelines.contract import SOURCES

if TYPE_CHECKING:
    from pipelines.settings import Settings

# `--help` stays fast: plain click help (typer's rich help imports rich, ~1.3 s), and the
# settings (pydantic, ~1.7 s) and every pipeline module are imported inside the commands.
app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, rich_markup_mode=None)
log = logging.getLogger("segment_mart")
#: Libraries whose INFO lines are noise on a terminal (Great Expectations prints "Loading
#: 'datasources' ->\n[]" on every context it builds); their warnings still show.
QUIET_LOGGERS = ("great_expectations", "py.warnings")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_date(value: str | dt.date) -> dt.date:
    """A calendar date written exactly YYYY-MM-DD (``2026-3-3`` and ``20260303`` are refused)."""
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date written YYYY-MM-DD (e.g. 2026-03-03)") from None


def _date_option(flag: str, help_text: str):
    return typer.Option(flag, parser=parse_date, metavar="YYYY-MM-DD", help=help_text)


RunDate = Annotated[
    dt.date | None, _date_option("--run-date", "As-of date, YYYY-MM-DD (default: SEGMENT_MART_RUN_DATE)."),
]
Home = Annotated[Path | None, typer.Option(help="Root of what the pipeline writes (SEGMENT_MART_HOME).")]
Landing = Annotated[Path | None, typer.Option(help="Landing folder (SEGMENT_MART_LANDING_DIR).")]
Warehouse = Annotated[Path | None, typer.Option(help="Working DuckDB file (SEGMENT_MART_WAREHOUSE_PATH).")]


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _settings(home: Path | None, landing: Path | None, warehouse: Path | None) -> Settings:
    from pipelines.settings import get_settings

    return get_settings(home=home, landing_dir=landing, warehouse_path=warehouse)


def _run_date(settings: Settings, run_date: dt.date | None) -> dt.date:
    if run_date is not None:
        return run_date
    if settings.run_date is not None:
        return settings.run_date
    raise typer.BadParameter("give --run-date YYYY-MM-DD (or set SEGMENT_MART_RUN_DATE)")


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=1)


@app.command()
def contract(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the documentation page instead.")] = False,
    dbt_sources: Annotated[bool, typer.Option(
        "--dbt-sources", help="Print dbt_project/models/staging/_staging__sources.yml instead.")] = False,
) -> None:
    """Print the extract contract as JSON (or as docs/extract-contract.md, or as the dbt sources)."""
    from pipelines.build.dbt_sources import as_yaml
    from pipelines.contract import as_json, as_markdown

    if dbt_sources:
        typer.echo(as_yaml(), nl=False)
        return
    typer.echo(as_markdown() if markdown else json.dumps(as_json(), indent=2, default=str), nl=not markdown)


@app.command("config")
def show_config(home: Home = None, landing: Landing = None, warehouse: Warehouse = None) -> None:
    """Print the effective settings (environment and flags applied) and the paths they give."""
    settings = _settings(home, landing, warehouse)
    values = settings.model_dump(mode="json") | {
        "landing (effective)": str(settings.landing),
        "lake (effective)": str(settings.lake),
        "warehouse (effective)": str(settings.warehouse),
        "temp (effective)": str(settings.temp),
        "duckdb threads (effective)": str(settings.threads),
        "published (effective)": str(settings.published),
        "quality (effective)": str(settings.quality),
    }
    for name, value in values.items():
        typer.echo(f"{name:<24} {value}")


@app.command()
def generate(
    out: Annotated[Path | None, typer.Option(help="Landing folder to write (default: settings' landing).")] = None,
    accounts: Annotated[int, typer.Option(help="Number of customer accounts.")] = 200,
    start_date: Annotated[dt.date, _date_option("--start-date", "First simulated day, YYYY-MM-DD.")] = "2025-01-01",  # type: ignore[assignment]
    days: Annotated[int, typer.Option(help="Simulated days of history.")] = 400,
    drop_days: Annotated[int | None, typer.Option(help="Write drops for the last N days only (default: all).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 42,
    file_format: Annotated[str, typer.Option("--format", help="csv, parquet or jsonl.")] = "csv",
    defect: Annotated[list[str] | None, typer.Option(help="Inject a named defect into the last drop (repeatable).")] = None,
    events_per_account_day: Annotated[float | None, typer.Option(help="Mean usage events per account per day.")] = None,
    noise_component: Annotated[list[str] | None, typer.Option(
        help="Health component whose data carries no churn signal: support, sentiment (repeatable).")] = None,
    predictive_component: Annotated[list[str] | None, typer.Option(
        help="Health component with a strong churn signal: sentiment.")] = None,
    drop_date: Annotated[list[str] | None, typer.Option(
        help="Write a drop on this night only, YYYY-MM-DD (repeatable; the last one must be the last "
             "simulated day); instead of --drop-days.")] = None,
    lifecycles: Annotated[bool, typer.Option(
        "--lifecycles", help="Add one scripted account per lifecycle (churn, return, held downgrade, ...) on "
        "the drops' nights, with the expected outcomes in <out>/scripted_lifecycles.json.")] = False,
    home: Home = None,
) -> None:
    """Write realistic synthetic extracts (CRM, billing, usage) as nightly drops: the snapshot entities in
    use (SEGMENT_MART_ENTITIES_IN_USE) and the usage events."""
    _setup_logging()
    from pipelines.lab.generate import generate as generate_drops

    settings = _settings(home, None, None)
    target = out or settings.landing
    summary = generate_drops(
        target,
        accounts=accounts,
        start_date=parse_date(start_date),
        days=days,
        drop_days=drop_days,
        seed=seed,
        file_format=file_format,
        defects=tuple(defect or ()),
        events_per_account_day=events_per_account_day,
        progress=lambda msg: log.info("%s", msg),
        noise_components=tuple(noise_component or ()),
        predictive_components=tuple(predictive_component or ()),
        drop_dates=[parse_date(d) for d in drop_date] if drop_date else None,
        lifecycles=lifecycles,
        entities=settings.in_use,  # the snapshot entities the company delivers (SEGMENT_MART_ENTITIES_IN_USE)
    )
    typer.echo(f"wrote {len(summary.run_dates)} drop(s) to {target}: {summary.run_dates[0]} .. {summary.run_dates[-1]}")
    if summary.lifecycle_script is not None:
        typer.echo(f"scripted lifecycles and their expected outcomes: {summary.lifecycle_script}")


@app.command("check")
def check_extracts(run_date: RunDate = None, home: Home = None, landing: Landing = None) -> None:
    """Check that the night's extracts are present and readable (file-level checks)."""
    _setup_logging()
    from pipelines.ops import nightly

    settings = _settings(home, landing, None)
    try:
        nightly.check_extracts(settings, _run_date(settings, run_date))
    except Exception as exc:  # the message names files and actions
        _fail(exc)
    typer.echo("drop complete")


@app.command()
def ingest(
    run_date: RunDate = None,
    source: Annotated[list[str] | None, typer.Option(help=f"Source(s) to load: {', '.join(SOURCES)} (default: all).")] = None,
    home: Home = None,
    landing: Landing = None,
    warehouse: Warehouse = None,
) -> None:
    """Load a night's drop into the raw lake (quarantining bad rows)."""
    _setup_logging()
    from pipelines.ops import nightly

    settings = _settings(home, landing, warehouse)
    try:
        results = nightly.ingest_sources(settings, _run_date(settings, run_date), tuple(source or SOURCES))
    except Exception as exc:
        _fail(exc)
    for r in results:
        typer.echo(
            f"{r.source}/{r.entity}: read {r.rows_read}, loaded {r.rows_loaded}, "
            f"quarantined {r.rows_quarantined}, deduplicated {r.rows_deduplicated} ({r.duration_seconds:.1f}s)"
        )


@app.command()
def build(run_date: RunDate = None, home: Home = None, warehouse: Warehouse = None) -> None:
    """dbt build (seeds, models, tests) for the as-of date."""
    _setup_logging()
    from pipelines.ops import nightly

    settings = _settings(home, None, warehouse)
    try:
        nightly.build(settings, _run_date(settings, run_date))
    except Exception as exc:
        _fail(exc)


@app.command()
def audit(run_date: RunDate = None, home: Home = None, warehouse: Warehouse = None) -> None:
    """Run the quality gate; writes the JSON and HTML quality report."""
    _setup_logging()
    from pipelines.ops import nightly

    settings = _settings(home, None, warehouse)
    try:
        gate = nightly.quality_gate(settings, _run_date(settings, run_date))
    except Exception as exc:
        _fail(exc)
    typer.echo(f"quality gate passed; report: {gate.html_path}")


@app.command()
def publish(run_date: RunDate = None, home: Home = None, warehouse: Warehouse = None) -> None:
    """Atomically publish what `audit` passed for the date (the DuckDB file, Parquet, manifest, report)."""
    _setup_logging()
    from pipelines.ops import nightly

    settings = _settings(home, None, warehouse)
    try:
        manifest = nightly.publish(settings, _run_date(settings, run_date))
    except Exception as exc:
        _fail(exc)
    typer.echo(f"published {manifest}")


@app.command()
def run(
    run_date: RunDate = None,
    home: Home = None,
    landing: Landing = None,
    warehouse: Warehouse = None,
) -> None:
    """Every step of one night in this process (the DAG runs the same steps as tasks)."""
    _setup_logging()
    from pipelines.ops import nightly

    settings = _settings(home, landing, warehouse)
    try:
        result = nightly.run_night(settings, _run_date(settings, run_date))
    except Exception as exc:
        _fail(exc)
    typer.echo(f"night published: {result}")


@app.command()
def replay(
    from_date: Annotated[dt.date, _date_option("--from-date", "First night to restate, YYYY-MM-DD.")],
    to_date: Annotated[
        dt.date | None,
        _date_option("--to-date", "Last night, YYYY-MM-DD (default: the latest night the warehouse holds)."),
    ] = None,
    home: Home = None,
    landing: Landing = None,
    warehouse: Warehouse = None,
) -> None:
    """Restate a night: run it and every later night in order, then publish the last one."""
    _setup_logging()
    from pipelines.ops import nightly
    from pipelines.ops.preflight import latest_night

    settings = _settings(home, landing, warehouse)
    last = to_date or latest_night(settings) or from_date
    if last < from_date:
        _fail(ValueError(f"--to-date {last} is before --from-date {from_date}"))
    nights = [from_date + dt.timedelta(days=i) for i in range((last - from_date).days + 1)]
    try:
        manifest = nightly.replay_nights(settings, nights, progress=typer.echo)
    except Exception as exc:
        _fail(exc)
    typer.echo(f"replayed {len(nights)} night(s) {from_date} .. {last}; published {manifest}")


@app.command()
def soak(
    nights: Annotated[int, typer.Option(help="Nights to run, one a day from --start-date (see --step-days).")] = 30,
    accounts: Annotated[int, typer.Option(help="Simulated accounts (the scripted lifecycles come on top).")] = 20,
    start_date: Annotated[dt.date, _date_option("--start-date", "First night, YYYY-MM-DD.")] = "2026-01-05",  # type: ignore[assignment]
    step_days: Annotated[int, typer.Option(help="Days between nights (nights may jump across month ends "
                                                 "and renewals).")] = 1,
    compact: Annotated[bool, typer.Option("--compact", help="The CI's four nights that show every scripted "
                                          "lifecycle (2026-01-20, -21, 02-10, 03-03) instead of --nights.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed of the simulated accounts.")] = 42,
    fail_night: Annotated[int, typer.Option(help="1-based night first delivered corrupt (-1: the middle one, "
                                            "0: none).")] = -1,
    work: Annotated[Path, typer.Option(help="An empty pipeline home for the soak (drops, warehouse, publish, "
                                       "soak.json).")] = Path("var/soak"),
) -> None:
    """Run many nights through the DAG's functions and check invariants after every night (MRR
    against an independent recomputation, one tier per live account, contiguous tier history,
    movements summing to the MRR change, the scripted lifecycles' outcomes, a corrupt night
    that changes no published byte); stops at the first broken invariant."""
    _setup_logging()
    for name in ("pipelines", "segment_mart"):  # the soak prints its own progress and table
        logging.getLogger(name).setLevel(logging.WARNING)
    from pipelines.lab.soak import COMPACT_NIGHTS, SoakFailed, plan_nights
    from pipelines.lab.soak import soak as run_soak

    settings = _settings(work, None, None)
    try:
        dates = list(COMPACT_NIGHTS) if compact else plan_nights(parse_date(start_date), nights, step_days)
        run_soak(settings, dates, accounts=accounts, seed=seed, fail_night=fail_night or None,
                 progress=typer.echo)
    except SoakFailed as exc:
        _fail(exc)
    except (ValueError, FileExistsError) as exc:
        _fail(exc)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def metrics(ctx: typer.Context, home: Home = None, warehouse: Warehouse = None) -> None:
    """MetricFlow on the working warehouse: `segment-mart metrics query --metrics nrr_quarterly
    --group-by metric_time__quarter,retention_quarter__segment_value`; any `mf` command and its
    options follow (`segment-mart metrics list metrics`; `segment-mart metrics -- query --help`
    for mf's own help). docs/metrics.md lists the metrics."""
    from pipelines.release.metrics import run_mf

    settings = _settings(home, None, warehouse)
    try:
        done = run_mf(settings, ctx.args or ["--help"])
    except Exception as exc:
        _fail(exc)
    raise typer.Exit(code=done.returncode)



map_app = typer.Typer(help="Mappings that turn tools' exports into contract files (docs/mappings.md).",
                      no_args_is_help=True, add_completion=False, rich_markup_mode=None)
app.add_typer(map_app, name="map")


@map_app.command("list")
def map_list(home: Home = None) -> None:
    """The shipped mappings (to extend or copy) and the mappings in use (setting mappings_dir)."""
    from pipelines.intake.mapping import LIBRARY, active_mappings, shipped_mappings

    settings = _settings(home, None, None)
    try:
        shipped, active = shipped_mappings(), active_mappings(settings)
    except Exception as exc:
        _fail(exc)
    typer.echo(f"shipped ({LIBRARY}; `extends: <name>` in a mapping file):")
    for m in shipped:
        name = m.path.relative_to(LIBRARY).with_suffix("")
        typer.echo(f"  {name!s:<28} {m.entity.qualified:<22} {m.input_file:<32} {m.description}")
    typer.echo(f"in use ({settings.mappings}):" + ("" if active else " none"))
    for qualified, m in active.items():
        typer.echo(f"  {qualified:<22} <- {m.input_file:<32} {m.path.name}")


@map_app.command("preview")
def map_preview(
    run_date: RunDate = None,
    entity: Annotated[list[str] | None, typer.Option(help="Mapped entity to show, e.g. crm/accounts (repeatable; "
                                                          "default: every mapped entity).")] = None,
    rows: Annotated[int, typer.Option(help="Mapped rows to show per entity.")] = 5,
    home: Home = None,
    landing: Landing = None,
) -> None:
    """What the night's ingest would make of the mapped exports of a drop: the mapped rows, what
    would be quarantined and why (a scratch lake; the raw lake and the warehouse are untouched).
    Exits 1 when an export has a file problem or more than SEGMENT_MART_MAX_QUARANTINE_SHARE of it
    would be quarantined (the night would stop)."""
    _setup_logging()
    from pipelines.intake.map_preview import format_preview, preview

    settings = _settings(home, landing, None)
    try:
        results = preview(settings, _run_date(settings, run_date), tuple(entity or ()), rows=rows)
    except Exception as exc:
        _fail(exc)
    typer.echo(format_preview(results))
    stops = [r for r in results if (r.problems and not r.off) or (r.rows_read and r.rows_quarantined / r.rows_read
                                                  > settings.max_quarantine_share)]
    if stops:
        typer.echo(f"the night would stop: {', '.join(r.mapping.entity.qualified for r in stops)} "
                   f"(file problem, or more than {settings.max_quarantine_share:.0%} quarantined)", err=True)
        raise typer.Exit(code=1)


@app.command()
def simulate(
    policy: Annotated[Path, typer.Option("--policy", help="YAML file of named tier policies (docs/policy-lab.md).")],
    run_date: RunDate = None,
    home: Home = None,
    warehouse: Warehouse = None,
) -> None:
    """What-if tier policies: rebuild the night's tiers with each policy's dbt vars in a scratch
    warehouse and compare with the current policy (never touches the warehouse or the publish)."""
    _setup_logging()
    from pipelines.lab.policy_lab import simulate as simulate_policies

    settings = _settings(home, None, warehouse)
    try:
        result = simulate_policies(settings, policy, _run_date(settings, run_date), progress=typer.echo)
    except Exception as exc:
        _fail(exc)
    for r in result.results:
        typer.echo(f"{r.policy.name}: {len(r.moves)} account(s) would change tier -> {r.out_dir}")
    typer.echo(f"comparison: {result.out_dir / 'index.html'} (and summary.md)")


@app.command()
def calibrate(
    run_date: RunDate = None,
    apply: Annotated[bool, typer.Option("--apply", help="Write the proposed vars into dbt_project.yml "
                                                        "(the next night scores with them).")] = False,
    home: Home = None,
    warehouse: Warehouse = None,
) -> None:
    """Health thresholds from the company's own distribution: percentiles of every health measure,
    proposed thresholds and band cut points, previewed in a scratch warehouse (docs/policy-lab.md)."""
    _setup_logging()
    from pipelines.lab.calibration import apply_vars
    from pipelines.lab.calibration import calibrate as run_calibration

    settings = _settings(home, None, warehouse)
    try:
        result = run_calibration(settings, _run_date(settings, run_date), progress=typer.echo)
    except Exception as exc:
        _fail(exc)
    typer.echo((result.out_dir / "calibration.md").read_text(encoding="utf-8"))
    if apply:
        path = apply_vars(settings.dbt_project_dir, result.proposal)
        typer.echo(f"wrote {len(result.proposal)} var(s) into {path}; restate this night with "
                   f"`segment-mart replay --from-date {result.run_date}`")
    else:
        typer.echo(f"proposal: {result.out_dir / 'proposal.yml'} (adopt with --apply)")


@app.command("backtest")
def backtest_health(
    run_date: RunDate = None,
    points: Annotated[int, typer.Option(help="Past month ends to score.")] = 12,
    every_months: Annotated[int, typer.Option(help="Months between points.")] = 1,
    home: Home = None,
    warehouse: Warehouse = None,
) -> None:
    """Health-score backtest over the extracts' past: score health at past month ends with the nightly
    models in a scratch warehouse, then lift and AUC per band, tier and component (docs/policy-lab.md)."""
    _setup_logging()
    from pipelines.lab.backtest import backtest

    settings = _settings(home, None, warehouse)
    try:
        result = backtest(settings, _run_date(settings, run_date), points=points, every_months=every_months,
                          progress=typer.echo)
    except Exception as exc:
        _fail(exc)
    for r in result.rows:
        if r["analysis"] in ("health_band", "score", "health_profile"):
            auc = "" if r["churn_auc"] is None else f", churn AUC {float(r['churn_auc']):.3f}"
            if r["analysis"] == "health_profile" and r.get("default_profile_churn_auc") is not None:
                auc += f" (default weights {float(r['default_profile_churn_auc']):.3f})"
            lift = "" if r["churn_lift"] is None else f", churn lift {float(r['churn_lift']):.2f}"
            typer.echo(f"{r['analysis']:<12} {r['group_value']:<22} {r['account_days']:>6} account-days{lift}{auc}")
    typer.echo(f"backtest: {result.out_dir / 'report.html'} (and backtest.csv, summary.md)")


@app.command("spark-cluster")
def spark_cluster(
    action: Annotated[str, typer.Argument(help="start, stop or status")],
    home: Home = None,
) -> None:
    """The Spark cluster of the pipeline home (master, workers, Thrift server on 127.0.0.1):
    nights run on it with SEGMENT_MART_ENGINE=spark SEGMENT_MART_DBT_TARGET=spark_thrift
    (docs/spark.md, "The cluster")."""
    from pipelines.build import spark_cluster as cluster

    if action not in ("start", "stop", "status"):
        raise typer.BadParameter("start, stop or status", param_hint="ACTION")
    if home is not None:
        import os

        os.environ["SEGMENT_MART_HOME"] = str(home)
    raise typer.Exit(code=cluster.main([action]))


@app.command("crm-sync")
def crm_sync(
    run_date: RunDate = None,
    mode: Annotated[str | None, typer.Option(
        help="dry_run (write the files only), files (the files are the delivery) or push (send them); "
             "default: crm.mode of config/outbound.yml (SEGMENT_MART_CRM_MODE).")] = None,
    home: Home = None,
) -> None:
    """CRM write-back of a published night: the accounts whose values changed since the last successful
    sync, as Salesforce Bulk API 2.0 CSV and HubSpot batch upsert JSON, sent in push mode
    (docs/outbound.md). A rerun sends nothing the CRM already accepted."""
    _setup_logging()
    from pipelines.ops import nightly

    settings = _settings(home, None, None)
    try:
        results = nightly.crm_writeback(settings, _run_date(settings, run_date), mode=mode)
    except Exception as exc:
        _fail(exc)
    for r in results:
        typer.echo(f"{r.target} ({r.mode}): {len(r.changed)} of {r.accounts} account(s) changed, "
                   f"{len(r.synced)} synced, {len(r.failed)} not accepted; files: {', '.join(r.files) or 'none'}")


@app.command()
def notify(
    run_date: RunDate = None,
    failed_step: Annotated[str | None, typer.Option(
        help="Send the failure alert of this step instead of the digest (with --error).")] = None,
    error: Annotated[str | None, typer.Option(help="The failure's message (with --failed-step).")] = None,
    error_type: Annotated[str, typer.Option(help="The failure's error type (picks the fix command).")] = "RuntimeError",
    home: Home = None,
) -> None:
    """Send the morning digest of a published night (status, new high-priority actions per owner, CRM
    write-back), or with --failed-step the alert of a failed night with the command that fixes it."""
    _setup_logging()
    from pipelines.outbound.alerts import digest, failure, send

    settings = _settings(home, None, None)
    day = _run_date(settings, run_date)
    try:
        message = (failure(settings, day, failed_step, error_type, error or "(no message)") if failed_step
                   else digest(settings, day))
        status = send(settings, message)
    except Exception as exc:
        _fail(exc)
    typer.echo(f"{message.kind} for {day}: {status}")


if __name__ == "__main__":
    app()
