"""The tier-policy lab: what-if tier policies (``segment-mart simulate``) built by the same dbt
models as the nightly, never by a second implementation of the tier rules.

A policy is a set of dbt vars (thresholds, ``tier_method`` rules or scorecard, scorecard weights,
``tier1_arr_comparison`` strict or inclusive, ...; docs/policy-lab.md). For each policy of the
file, :func:`simulate` builds the tier models of the night into a scratch DuckDB file of their own
(``<home>/tmp/policy_lab/<run_date>/<policy>/sandbox.duckdb``, dbt target ``duckdb_sandbox``):

* the working warehouse is attached ``READ_ONLY`` under its own catalog name, and dbt runs with
  ``--defer --state <the night's manifest>``: every model not rebuilt (accounts, segments, health,
  seeds) is read from the working warehouse, only :data:`SIMULATED_MODELS` are built, with the
  policy's vars (``--vars``);
* the tier assignment applies the migration rules against each account's assignment of the night
  before (upgrades at once, downgrades held until the renewal): before dbt runs, the latest
  assignment before the run date of every account is copied into the scratch file, so the
  incremental ``int_account_tiers_assigned`` runs incrementally there exactly as it does at night.

Nothing is written to the working warehouse or to the published marts (a test checks the
warehouse file byte for byte). The comparison with the current policy (the working warehouse's own
rows for the run date) is written per policy under ``<home>/simulations/<run_date>/<policy>/``
(``comparison.md``, ``comparison.html``, ``distribution.csv``, ``coverage.csv``, ``moves.csv``)
and side by side for all policies in ``<home>/simulations/<run_date>/index.html`` / ``summary.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import DataProblem

if TYPE_CHECKING:
    import duckdb

    from pipelines.settings import Settings

log = logging.getLogger(__name__)

#: The models a policy rebuilds: the tier models and the roll-ups the comparison reads.
SIMULATED_MODELS = (
    "int_account_tiers_computed",
    "int_account_tiers_assigned",
    "int_tier_distribution_summarised",
    "int_csm_books_aggregated",
    "int_accounts_cost_to_serve",
    "rpt_tier_distribution",
    "rpt_coverage_by_tier",
)
#: dbt vars a policy may set (exact names or prefixes ending in "_"): the tier rules, the
#: scorecard, the review cadence and the cost-to-serve economics. Health, segment and revenue
#: vars shape the nightly history the tiers read and cannot be changed for one night alone.
POLICY_VARS = (
    "tier_method", "tier1_", "tier2_", "tier4_", "strategic_", "scorecard_",
    "high_churn_risk_health_statuses", "tier_review_cadence_months",
    "csm_annual_cost", "cs_shared_cost_per_account", "cs_technology_cost_per_account", "cs_cost_share_",
)
SANDBOX_TARGET = "duckdb_sandbox"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class PolicyError(DataProblem, ValueError):
    """The policy file is missing, unreadable or names something a policy cannot set."""


class SimulationRefused(DataProblem, RuntimeError):
    """The warehouse is not in a state a simulation can read (no night built, another date)."""


@dataclass(frozen=True)
class Policy:
    name: str
    vars: dict[str, Any]
    description: str = ""


@dataclass
class PolicyResult:
    policy: Policy
    out_dir: Path
    distribution: list[dict[str, Any]] = field(default_factory=list)
    coverage: list[dict[str, Any]] = field(default_factory=list)
    moves: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Simulation:
    run_date: dt.date
    out_dir: Path
    current_distribution: list[dict[str, Any]]
    current_coverage: list[dict[str, Any]]
    results: list[PolicyResult]


def _allowed(var: str) -> bool:
    return any(var == p or (p.endswith("_") and var.startswith(p)) for p in POLICY_VARS)


def load_policies(path: Path) -> list[Policy]:
    """The policies of a YAML file: ``policies: {<name>: {description: ..., vars: {<dbt var>: value}}}``
    (or ``<name>: {<dbt var>: value}`` directly). Raises PolicyError naming the file and the key."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"policy file {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {path} is not valid YAML: {exc}") from exc
    policies = doc.get("policies") if isinstance(doc, dict) else None
    if not isinstance(policies, dict) or not policies:
        raise PolicyError(f"policy file {path}: expected a mapping `policies:` with one or more named policies")
    out = []
    for name, body in policies.items():
        name = str(name)
        if not _NAME.fullmatch(name) or name == "current":
            raise PolicyError(f"policy file {path}: policy name {name!r} must be lowercase letters, digits, "
                              "'-' or '_' (and not 'current')")
        if not isinstance(body, dict):
            raise PolicyError(f"policy file {path}: policy {name!r} must be a mapping of dbt vars")
        description = str(body.get("description", "")) if "vars" in body else ""
        values = body.get("vars", body) if "vars" in body else body
        if not isinstance(values, dict) or not values:
            raise PolicyError(f"policy file {path}: policy {name!r} sets no dbt vars")
        for var in values:
            if var == "as_of_date" or not _allowed(str(var)):
                raise PolicyError(
                    f"policy file {path}: policy {name!r} sets {var!r}, which a policy cannot set; a policy sets "
                    f"tier vars only: {', '.join(p + '*' if p.endswith('_') else p for p in POLICY_VARS)}")
        out.append(Policy(name, dict(values), description))
    return out


def _connect_current(settings: Settings) -> duckdb.DuckDBPyConnection:
    from pipelines.build.marts import open_marts

    return open_marts(settings)


def _latest_as_of(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    try:
        row = con.execute("select max(as_of_date) from intermediate.int_account_tiers_computed").fetchone()
    except Exception:  # no tier model built yet
        return None
    return row[0] if row else None


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def sandbox_env(settings: Settings, sandbox: Path) -> dict[str, str]:
    from pipelines.build.dbt import dbt_environment

    return os.environ | dbt_environment(settings) | {
        "SEGMENT_MART_DBT_SANDBOX": str(sandbox),
        "SEGMENT_MART_DBT_WAREHOUSE_CATALOG": settings.warehouse.stem,
    }


def dbt_var(settings: Settings, name: str) -> Any:
    """A var's configured value in dbt_project/dbt_project.yml."""
    import yaml

    project = yaml.safe_load((settings.dbt_project_dir / "dbt_project.yml").read_text(encoding="utf-8"))
    return project["vars"][name]


def check_latest_night(settings: Settings, run_date: dt.date, command: str) -> None:
    """Refuse unless ``run_date`` is the latest night the working warehouse holds; ``command``
    (with ``{latest}``) is the command to suggest instead."""
    if settings.engine != "duckdb":
        # the scratch warehouse attaches the working DuckDB file; a Spark night has none
        raise SimulationRefused(f"the policy lab runs on the embedded DuckDB engine only (SEGMENT_MART_ENGINE is "
                                f"{settings.engine!r}); see docs/policy-lab.md")
    con = _connect_current(settings)
    try:
        latest = _latest_as_of(con)
    finally:
        con.close()
    if latest is None:
        raise SimulationRefused(f"the working warehouse {settings.warehouse} has no tiers yet: run a night first "
                                "(`segment-mart run --run-date D`)")
    if latest != run_date:
        raise SimulationRefused(f"the working warehouse holds the night of {latest}, not {run_date}: this reads the "
                                f"latest night built (`{command.format(latest=latest)}`)")


def _seed_previous_assignments(settings: Settings, sandbox: Path, run_date: dt.date) -> None:
    """Copy every account's latest tier assignment before the run date into the scratch file, so
    the incremental ``int_account_tiers_assigned`` applies the migration rules there."""
    from pipelines.warehouse import connect

    quoted = str(settings.warehouse.absolute()).replace("'", "''")
    with connect(sandbox) as con:
        con.execute(f"attach '{quoted}' as working (read_only)")
        con.execute("create schema if not exists intermediate")
        con.execute(
            "create table intermediate.int_account_tiers_assigned as "
            "select * from working.intermediate.int_account_tiers_assigned where as_of_date < ? "
            "qualify row_number() over (partition by account_id order by as_of_date desc) = 1", [run_date])
        con.execute("detach working")


def build_policy(settings: Settings, run_date: dt.date, policy: Policy, state_dir: Path, work: Path) -> Path:
    """Build :data:`SIMULATED_MODELS` with the policy's vars into a fresh scratch file; returns it."""
    from pipelines.build.dbt import DbtFailed, dbt_executable, failed_nodes, stream_dbt

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    sandbox = work / "sandbox.duckdb"
    if sandbox.stem == settings.warehouse.stem:  # the two catalogs need different names
        raise SimulationRefused(f"the working warehouse may not be named {sandbox.name}")
    _seed_previous_assignments(settings, sandbox, run_date)
    target = work / "dbt_target"
    args = [
        dbt_executable(), "run", "--no-use-colors",
        "--project-dir", str(settings.dbt_project_dir),
        "--profiles-dir", str(settings.dbt_project_dir),
        "--target", SANDBOX_TARGET,
        "--target-path", str(target),
        "--log-path", str(work / "dbt_logs"),
        "--vars", json.dumps({**policy.vars, "as_of_date": run_date.isoformat()}, default=str),
        "--select", *SIMULATED_MODELS,
        "--defer", "--state", str(state_dir),
    ]
    code, tail = stream_dbt(args, settings.dbt_project_dir, sandbox_env(settings, sandbox))
    if code != 0:
        produced = target / "run_results.json"
        failing = failed_nodes(produced) if produced.exists() else []
        listing = "\n".join(f"  - {f}" for f in failing) or "\n".join(f"  | {t}" for t in tail)
        raise DbtFailed(f"simulating policy {policy.name!r} for {run_date} failed (exit {code}):\n{listing}")
    return sandbox


DISTRIBUTION_SQL = """
select tier_number, tier_name, account_count, arr_reporting, account_share, arr_share,
       min_account_share, max_account_share, min_arr_share, max_arr_share,
       is_account_share_off_target, is_arr_share_off_target
from {db}.marts.rpt_tier_distribution where as_of_date = ? order by tier_number
"""
COVERAGE_SQL = """
select tier_number, tier_name, account_count, arr_reporting, accounts_per_csm_target, csms_needed_at_target,
       cost_per_account_at_target, cost_share_of_avg_arr_at_target, is_outside_cost_band_at_target,
       annual_cost_to_serve, cost_share_of_arr
from {db}.marts.rpt_coverage_by_tier where as_of_date = ? order by tier_number
"""
#: Every live account whose computed or assigned tier differs between the current policy and the
#: simulated one, with the reasons and when the move takes effect (migration rules).
MOVES_SQL = """
select
    p.account_id,
    p.arr_reporting,
    c.assigned_tier_number as current_tier_number,
    c.assigned_tier as current_tier,
    p.computed_tier_number as policy_tier_number,
    p.computed_tier as policy_tier,
    p.assigned_tier_number as policy_assigned_tier_number,
    p.assigned_tier as policy_assigned_tier,
    case
        when p.computed_tier_number < c.assigned_tier_number then 'upgrade'
        when p.computed_tier_number > c.assigned_tier_number then 'downgrade'
        else 'same tier'
    end as direction,
    case
        when p.assigned_tier_number = p.computed_tier_number then 'immediate'
        else 'waits for renewal'
    end as timing,
    p.pending_downgrade_date as effective_date_if_waiting,
    p.computed_tier_reason as policy_reason,
    c.computed_tier_reason as current_reason,
    p.tier_reason as policy_migration
from sandbox.intermediate.int_account_tiers_assigned as p
inner join warehouse.intermediate.int_account_tiers_assigned as c
    on p.account_id = c.account_id and c.as_of_date = p.as_of_date
where p.as_of_date = ?
  and p.account_status = 'live'
  and (p.computed_tier_number is distinct from c.computed_tier_number
       or p.assigned_tier_number is distinct from c.assigned_tier_number)
order by p.arr_reporting desc, p.account_id
"""


def _compare(settings: Settings, run_date: dt.date, sandbox: Path, result: PolicyResult) -> None:
    con = _connect_current(settings)
    try:
        con.execute(f"attach '{str(sandbox).replace(chr(39), chr(39) * 2)}' as sandbox (read_only)")
        result.distribution = _rows(con, DISTRIBUTION_SQL.format(db="sandbox"), [run_date])
        result.coverage = _rows(con, COVERAGE_SQL.format(db="sandbox"), [run_date])
        result.moves = _rows(con, MOVES_SQL, [run_date])
        out = result.out_dir
        out.mkdir(parents=True, exist_ok=True)
        for name, sql in (("distribution", DISTRIBUTION_SQL.format(db="sandbox")),
                          ("coverage", COVERAGE_SQL.format(db="sandbox")), ("moves", MOVES_SQL)):
            for fmt in ("csv", "parquet"):
                target = str(out / f"{name}.{fmt}").replace("'", "''")
                options = "format csv, header" if fmt == "csv" else "format parquet"
                con.execute(f"copy ({sql.replace('?', repr(run_date.isoformat()) + '::date')}) to '{target}' ({options})")
    finally:
        con.close()


def simulate(settings: Settings, policy_file: Path, run_date: dt.date, progress=log.info) -> Simulation:
    """Run every policy of ``policy_file`` for ``run_date`` (the working warehouse's latest night)
    and write the comparisons; returns them. Never writes the working warehouse or the publish."""
    from pipelines.build.dbt import target_dir
    from pipelines.ops import run_lock
    from pipelines.report.policy_report import write_reports

    policies = load_policies(policy_file)
    out_root = settings.home / "simulations" / run_date.isoformat()
    work_root = settings.temp / "policy_lab" / run_date.isoformat()
    with run_lock.exclusive(settings.home, run_date, "simulate"):
        check_latest_night(settings, run_date, f"segment-mart simulate --policy {policy_file} --run-date {{latest}}")
        con = _connect_current(settings)
        try:
            current_distribution = _rows(con, DISTRIBUTION_SQL.format(db="warehouse"), [run_date])
            current_coverage = _rows(con, COVERAGE_SQL.format(db="warehouse"), [run_date])
        finally:
            con.close()
        manifest = target_dir(settings) / "manifest.json"
        if not manifest.exists():
            raise SimulationRefused(f"no dbt manifest at {manifest}: build the night first "
                                    f"(`segment-mart build --run-date {run_date}`)")
        state_dir = work_root / "state"
        state_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(manifest, state_dir / "manifest.json")  # later dbt calls may rewrite the original
        if out_root.exists():
            shutil.rmtree(out_root)  # a rerun of the date replaces its simulations
        results = []
        for i, policy in enumerate(policies, 1):
            progress(f"policy {i} of {len(policies)}: {policy.name} ({len(policy.vars)} vars)")
            work = work_root / policy.name
            sandbox = build_policy(settings, run_date, policy, state_dir, work)
            result = PolicyResult(policy, out_root / policy.name)
            _compare(settings, run_date, sandbox, result)
            results.append(result)
            shutil.rmtree(work, ignore_errors=True)
            progress(f"policy {policy.name}: {len(result.moves)} account(s) would change tier")
        shutil.rmtree(work_root, ignore_errors=True)
    simulation = Simulation(run_date, out_root, current_distribution, current_coverage, results)
    write_reports(simulation)
    return simulation
