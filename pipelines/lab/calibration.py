"""Health calibrated to the company (``segment-mart calibrate``, docs/policy-lab.md).

The health measures are scored against thresholds (dbt vars: the seat utilisation, stickiness,
breadth and intensity that score 100, the trend that scores 0 or 100, the touchpoint recency
that scores 100 and 0) whose defaults fit the project's generator. A company whose usage is
10 or 100 times the generator's, or that counts usage per subscription rather than per user,
sees every account healthy or none. The calibration reads the night's measures of the live
accounts from the working warehouse and proposes, from the company's own distribution:

* per measure: its percentiles, and the threshold at the var ``health_calibration_percentile``
  (0.75: an account at the company's 75th percentile scores 100; recency: 100 within the
  days of the most recent quarter of accounts, 0 beyond the most distant quarter);
* the band cut points (``health_healthy_min_score``, ``health_at_risk_min_score``) that give
  the configured band shares (var ``health_band_shares``: the middle of each band's range),
  on the scores the proposed thresholds give.

A ``simulate``-style preview builds the night's health models with the proposed vars in a
scratch DuckDB file (the policy lab's ``duckdb_sandbox`` target, the working warehouse attached
read-only, ``--defer --state``), once with the measure thresholds (to find the cut points) and
once with everything, and compares the band shares with tonight's. Nothing is written to the
warehouse or the publish; ``--apply`` writes the proposed vars into ``dbt_project.yml``.

The quality gate's ``health distribution`` check (:func:`health_distribution_check`) warns on a
night whose healthy share is outside ``health_degenerate_healthy_share`` and names this command.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import DataProblem

if TYPE_CHECKING:
    import duckdb

    from pipelines.quality.model import Check
    from pipelines.settings import Settings

log = logging.getLogger(__name__)

BANDS = ("healthy", "at-risk", "critical")
PERCENTILES = (0.10, 0.25, 0.50, 0.75, 0.90)
HEALTH_MODELS = ("int_account_health_components_scored", "int_account_health_scored")


@dataclass(frozen=True)
class Measure:
    """One health measure (a column of int_account_health_components_scored) and how it is scored."""

    column: str
    label: str
    rule: str  # ratio: 100 at the var; spread: +-var = 100 / 0; decay: 100 within, 0 beyond; fixed
    vars: tuple[str, ...] = ()
    sql: str | None = None  # when the measure is not a column as such


MEASURES = (
    Measure("seat_utilisation", "seat utilisation (MAU / seats)", "ratio", ("health_seat_utilisation_target",)),
    Measure("stickiness", "stickiness (DAU / MAU)", "ratio", ("health_stickiness_target",)),
    Measure("feature_breadth", "feature breadth", "ratio", ("health_breadth_target",)),
    Measure("usage_intensity", "usage intensity (events / seat / day)", "ratio", ("health_usage_intensity_target",)),
    Measure("usage_trend", "usage trend, absolute (window on window)", "spread", ("health_trend_full_scale",),
            sql="abs(usage_trend)"),
    Measure("days_since_touchpoint", "days since the last CS touchpoint", "decay",
            ("health_cs_recency_full_days", "health_cs_recency_zero_days")),
    Measure("response_rate", "response rate (share answered)", "fixed"),
    Measure("qbr_attendance", "QBR attendance (share attended)", "fixed",
            sql="case when qbrs_held > 0 then 1.0 * qbrs_attended / qbrs_held end"),
    Measure("open_cases", "open support cases", "fixed", sql="case when cases_in_lookback > 0 or open_cases > 0 "
            "then open_cases end"),
    Measure("avg_csat", "average CSAT (1-5)", "fixed"),
    Measure("overdue_invoices", "overdue invoices", "fixed", sql="case when invoices_in_lookback > 0 "
            "or overdue_invoices > 0 then overdue_invoices end"),
    Measure("latest_nps_score", "latest NPS answer (0-10)", "fixed"),
)
FIXED_WHY = ("an absolute scale by design: a share of 1, a penalty per case or invoice, a survey score; "
             "its meaning must not depend on how the other accounts do")


class CalibrationRefused(DataProblem, RuntimeError):
    """The warehouse has no night to calibrate on, or too few scored accounts."""


@dataclass
class MeasureAdvice:
    measure: Measure
    accounts: int
    percentiles: dict[float, float | None]
    current: dict[str, Any]
    proposed: dict[str, Any]
    note: str = ""


@dataclass
class Calibration:
    run_date: dt.date
    out_dir: Path
    percentile: float
    target_shares: dict[str, float]
    measures: list[MeasureAdvice]
    current_cuts: dict[str, float]
    proposed_cuts: dict[str, float]
    current_shares: dict[str, float]
    measures_only_shares: dict[str, float]
    proposed_shares: dict[str, float]
    scored_accounts: int
    moves: list[dict[str, Any]] = field(default_factory=list)

    @property
    def proposal(self) -> dict[str, Any]:
        """Every var the calibration proposes (measure thresholds, then the band cut points)."""
        out: dict[str, Any] = {}
        for m in self.measures:
            out |= m.proposed
        return out | self.proposed_cuts


# --------------------------------------------------------------------------- configuration


def _vars(settings: Settings) -> dict[str, Any]:
    import yaml

    project = yaml.safe_load((settings.dbt_project_dir / "dbt_project.yml").read_text(encoding="utf-8"))
    return project["vars"]


def _band_targets(config: dict[str, Any]) -> dict[str, float]:
    """The share each band aims at: the middle of its configured range (var health_band_shares)."""
    ranges = config["health_band_shares"]
    return {band: (float(ranges[band][0]) + float(ranges[band][1])) / 2 for band in BANDS}


# --------------------------------------------------------------------------- the night's health distribution


def band_shares(con: duckdb.DuckDBPyConnection, relation: str, run_date: dt.date) -> tuple[dict[str, float], int]:
    """Share of each band among the live accounts with a health score on ``run_date`` in
    ``relation`` (int_account_health_scored or fct_account_health_daily), and their number."""
    rows = dict(con.execute(
        f"select health_status, count(*) from {relation} where as_of_date = ? and account_status = 'live' "
        "and health_status is not null group by all", [run_date]).fetchall())
    n = sum(rows.values())
    return {band: (rows.get(band, 0) / n if n else 0.0) for band in BANDS}, n


def health_distribution_check(con: duckdb.DuckDBPyConnection, settings: Settings, run_date: dt.date) -> Check:
    """The quality gate's warning for a degenerate night: the healthy share of the live scored
    accounts outside var ``health_degenerate_healthy_share`` ([0.05, 0.90]) means the scoring
    thresholds do not fit the company. A warning: the night publishes."""
    from pipelines.quality.model import Check

    low, high = (float(x) for x in _vars(settings)["health_degenerate_healthy_share"])
    try:
        shares, n = band_shares(con, "marts.fct_account_health_daily", run_date)
    except Exception as exc:  # the mart's own checks name a missing or broken mart
        return Check("health distribution", "health", "skipped", f"fct_account_health_daily unreadable: {exc}",
                     mart="fct_account_health_daily", severity="warning")
    details = {"shares": shares, "scored_accounts": n, "healthy_share_limits": [low, high]}
    text = ", ".join(f"{shares[b]:.0%} {b}" for b in BANDS)
    if n == 0:
        return Check("health distribution", "health", "skipped", "no live account has a health score tonight",
                     mart="fct_account_health_daily", severity="warning", details=details)
    if low <= shares["healthy"] <= high:
        return Check("health distribution", "health", "passed",
                     f"{n} live accounts scored: {text} (healthy share within {low:.0%}-{high:.0%})",
                     mart="fct_account_health_daily", severity="warning", observed=shares["healthy"], details=details)
    return Check(
        "health distribution", "health", "warning",
        f"{n} live accounts scored: {text}. A healthy share {'under' if shares['healthy'] < low else 'over'} "
        f"{low if shares['healthy'] < low else high:.0%} says the health thresholds do not fit this company's "
        f"data (var health_degenerate_healthy_share). Calibrate them on its own distribution: "
        f"`segment-mart calibrate --run-date {run_date}` (docs/policy-lab.md)",
        mart="fct_account_health_daily", severity="warning", observed=shares["healthy"], details=details)


# --------------------------------------------------------------------------- the proposal


def _percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _round(value: float) -> float:
    """Three significant digits: a threshold a person can read and write."""
    if value == 0:
        return 0.0
    digits = 2 - math.floor(math.log10(abs(value)))
    return round(value, max(digits, 0))


def advise_measures(con: duckdb.DuckDBPyConnection, relation: str, run_date: dt.date, config: dict[str, Any],
                    percentile: float) -> list[MeasureAdvice]:
    """Percentiles of every measure over the live accounts that have it, and the proposed
    thresholds (rules in the module doc)."""
    out = []
    for m in MEASURES:
        expr = m.sql or m.column
        values = [float(v) for (v,) in con.execute(
            f"select {expr} from {relation} where account_status = 'live' and as_of_date = ? and ({expr}) is not null",
            [run_date]).fetchall()]
        pct = {q: _percentile(values, q) for q in PERCENTILES}
        current = {v: config[v] for v in m.vars}
        proposed: dict[str, Any] = {}
        note = ""
        if m.rule == "fixed":
            note = FIXED_WHY
        elif not values:
            note = "no live account has this measure tonight: nothing to calibrate on"
        elif m.rule in ("ratio", "spread"):
            at = _percentile(values, percentile) or 0.0
            if at <= 0:
                note = (f"the {percentile:.0%} percentile is 0: the measure tells these accounts apart too little "
                        "to set a threshold on; left as configured")
            else:
                proposed = {m.vars[0]: _round(at)}
        else:  # decay: days since the last touchpoint
            full = math.floor(_percentile(values, 1 - percentile) or 0)
            zero = max(math.ceil(_percentile(values, percentile) or 0), full + 1)
            proposed = {m.vars[0]: int(full), m.vars[1]: int(zero)}
        out.append(MeasureAdvice(m, len(values), pct, current, proposed, note))
    return out


def cut_points(scores: list[float], targets: dict[str, float]) -> dict[str, float]:
    """The healthy and at-risk minimum scores that put the target shares of ``scores`` in the
    healthy and critical bands (ties stay together: the share may end a little above)."""
    ordered = sorted(scores, reverse=True)
    n = len(ordered)
    healthy_k = min(n, max(1, round(targets["healthy"] * n)))
    critical_k = min(n - healthy_k, max(0, round(targets["critical"] * n)))
    healthy_min = ordered[healthy_k - 1]
    at_risk_min = ordered[n - critical_k] if critical_k else ordered[-1]
    # the critical band starts strictly below at_risk_min: nudge it above the k-th lowest score
    if critical_k:
        above = [s for s in ordered if s > at_risk_min]
        at_risk_min = min(above) if above else at_risk_min
    at_risk_min = min(at_risk_min, healthy_min)
    return {"health_healthy_min_score": round(float(healthy_min), 1),
            "health_at_risk_min_score": round(float(at_risk_min), 1)}


# --------------------------------------------------------------------------- the sandbox preview


def _build(settings: Settings, run_date: dt.date, vars_: dict[str, Any], state_dir: Path, work: Path) -> Path:
    """Build the health models with ``vars_`` into a fresh scratch DuckDB file; returns it."""
    from pipelines.build.dbt import DbtFailed, dbt_executable, failed_nodes, stream_dbt
    from pipelines.lab.policy_lab import SANDBOX_TARGET, sandbox_env

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    sandbox = work / "sandbox.duckdb"
    target = work / "dbt_target"
    args = [
        dbt_executable(), "run", "--no-use-colors",
        "--project-dir", str(settings.dbt_project_dir), "--profiles-dir", str(settings.dbt_project_dir),
        "--target", SANDBOX_TARGET, "--target-path", str(target), "--log-path", str(work / "dbt_logs"),
        "--vars", json.dumps({**vars_, "as_of_date": run_date.isoformat()}, default=str),
        "--select", *HEALTH_MODELS, "--defer", "--state", str(state_dir),
    ]
    code, tail = stream_dbt(args, settings.dbt_project_dir, sandbox_env(settings, sandbox))
    if code != 0:
        produced = target / "run_results.json"
        failing = failed_nodes(produced) if produced.exists() else []
        listing = "\n".join(f"  - {f}" for f in failing) or "\n".join(f"  | {t}" for t in tail)
        raise DbtFailed(f"the calibration's health models for {run_date} failed (exit {code}):\n{listing}")
    return sandbox


def _sandbox_scores(sandbox: Path, run_date: dt.date) -> tuple[dict[str, float], int, list[tuple[str, float, str]]]:
    from pipelines.warehouse import connect

    with connect(sandbox, read_only=True) as con:
        shares, n = band_shares(con, "intermediate.int_account_health_scored", run_date)
        rows = con.execute(
            "select account_id, cast(health_score as double), health_status from intermediate.int_account_health_scored "
            "where as_of_date = ? and account_status = 'live' and health_score is not null order by account_id",
            [run_date]).fetchall()
    return shares, n, rows


def calibrate(settings: Settings, run_date: dt.date, progress=log.info) -> Calibration:
    """Propose the company's health thresholds from the night ``run_date`` (the working warehouse's
    latest), preview them in scratch builds and write ``<home>/calibrations/<run_date>/``."""
    from pipelines.build.dbt import target_dir
    from pipelines.build.marts import open_marts
    from pipelines.lab.policy_lab import check_latest_night
    from pipelines.ops import run_lock

    config = _vars(settings)
    percentile = float(config["health_calibration_percentile"])
    targets = _band_targets(config)
    out_dir = settings.home / "calibrations" / run_date.isoformat()
    work_root = settings.temp / "calibration" / run_date.isoformat()
    with run_lock.exclusive(settings.home, run_date, "calibrate"):
        check_latest_night(settings, run_date, "segment-mart calibrate --run-date {latest}")
        con = open_marts(settings)
        try:  # open_marts: the working warehouse read-only, its catalog in use
            relation = "intermediate.int_account_health_components_scored"
            scored = "intermediate.int_account_health_scored"
            measures = advise_measures(con, relation, run_date, config, percentile)
            current_shares, n = band_shares(con, scored, run_date)
            current = {r[0]: (r[1], r[2]) for r in con.execute(
                f"select account_id, cast(health_score as double), health_status from {scored} "
                "where as_of_date = ? and account_status = 'live' and health_score is not null", [run_date]).fetchall()}
        finally:
            con.close()
        if n == 0:
            raise CalibrationRefused(f"no live account has a health score on {run_date}: nothing to calibrate on")
        manifest = target_dir(settings) / "manifest.json"
        if not manifest.exists():
            raise CalibrationRefused(f"no dbt manifest at {manifest}: build the night first "
                                     f"(`segment-mart build --run-date {run_date}`)")
        state_dir = work_root / "state"
        state_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(manifest, state_dir / "manifest.json")
        measure_vars: dict[str, Any] = {}
        for m in measures:
            measure_vars |= m.proposed
        progress(f"calibration 1 of 2: health scored with the proposed thresholds of {len(measure_vars)} var(s)")
        sandbox = _build(settings, run_date, measure_vars, state_dir, work_root / "measures")
        measures_shares, _, rows = _sandbox_scores(sandbox, run_date)
        cuts = cut_points([score for _, score, _ in rows], targets)
        progress(f"calibration 2 of 2: band cut points {cuts}")
        sandbox = _build(settings, run_date, measure_vars | cuts, state_dir, work_root / "all")
        proposed_shares, _, final_rows = _sandbox_scores(sandbox, run_date)
    shutil.rmtree(work_root, ignore_errors=True)
    moves = [{"account_id": a, "current_score": current.get(a, (None, None))[0],
              "current_status": current.get(a, (None, None))[1], "proposed_score": score, "proposed_status": status}
             for a, score, status in final_rows]
    result = Calibration(run_date, out_dir, percentile, targets, measures,
                         {k: config[k] for k in ("health_healthy_min_score", "health_at_risk_min_score")}, cuts,
                         current_shares, measures_shares, proposed_shares, n, moves)
    write_outputs(result)
    return result


# --------------------------------------------------------------------------- outputs and --apply


def write_outputs(c: Calibration) -> None:
    import yaml

    if c.out_dir.exists():
        shutil.rmtree(c.out_dir)
    c.out_dir.mkdir(parents=True)
    (c.out_dir / "proposal.yml").write_text(
        f"# segment-mart calibrate --run-date {c.run_date}: the vars to put under `vars:` in "
        "dbt_project/dbt_project.yml\n# (or `segment-mart calibrate --run-date ... --apply`)\n"
        + yaml.safe_dump(c.proposal, sort_keys=False), encoding="utf-8")
    with (c.out_dir / "measures.csv").open("w", encoding="utf-8") as fh:
        fh.write("measure,accounts," + ",".join(f"p{int(q * 100)}" for q in PERCENTILES) + ",var,current,proposed,note\n")
        for m in c.measures:
            names = m.measure.vars or ("",)
            for var in names:
                fh.write(",".join(str(x) for x in (
                    m.measure.column, m.accounts, *("" if m.percentiles[q] is None else f"{m.percentiles[q]:.6g}"
                                                   for q in PERCENTILES),
                    var, m.current.get(var, ""), m.proposed.get(var, ""), json.dumps(m.note))) + "\n")
    with (c.out_dir / "accounts.csv").open("w", encoding="utf-8") as fh:
        fh.write("account_id,current_score,current_status,proposed_score,proposed_status\n")
        for r in c.moves:
            fh.write(",".join("" if v is None else str(v) for v in r.values()) + "\n")
    (c.out_dir / "calibration.md").write_text(format_calibration(c), encoding="utf-8")


def format_calibration(c: Calibration) -> str:
    lines = [f"# Health calibration for {c.run_date}", "",
             f"{c.scored_accounts} live accounts with a health score. Thresholds proposed at the "
             f"{c.percentile:.0%} percentile of each measure (var `health_calibration_percentile`); band cut points "
             f"for the target shares " + ", ".join(f"{b} {c.target_shares[b]:.0%}" for b in BANDS)
             + " (the middle of var `health_band_shares`).", "",
             "| measure | accounts | " + " | ".join(f"p{int(q * 100)}" for q in PERCENTILES)
             + " | var | current | proposed |", "|---|---|" + "---|" * len(PERCENTILES) + "---|---|---|"]
    for m in c.measures:
        pct = " | ".join("" if m.percentiles[q] is None else f"{m.percentiles[q]:.4g}" for q in PERCENTILES)
        names = m.measure.vars or ("",)
        for var in names:
            proposed = m.proposed.get(var, "unchanged" if var else "")
            lines.append(f"| {m.measure.label} | {m.accounts} | {pct} | {f'`{var}`' if var else ''} | "
                         f"{m.current.get(var, '')} | {proposed} |")
    notes = [f"- {m.measure.label}: {m.note}" for m in c.measures if m.note and m.measure.rule != "fixed"]
    fixed = [m.measure.label for m in c.measures if m.measure.rule == "fixed"]
    lines += ["", *notes, f"- not calibrated ({FIXED_WHY}): {', '.join(fixed)}", "",
              "| health band | tonight | with the proposed thresholds | and the proposed cut points | target |",
              "|---|---|---|---|---|"]
    for band in BANDS:
        lines.append(f"| {band} | {c.current_shares[band]:.1%} | {c.measures_only_shares[band]:.1%} | "
                     f"{c.proposed_shares[band]:.1%} | {c.target_shares[band]:.1%} |")
    lines += ["", f"Band cut points: healthy from {c.current_cuts['health_healthy_min_score']} to "
              f"{c.proposed_cuts['health_healthy_min_score']}, at-risk from {c.current_cuts['health_at_risk_min_score']} "
              f"to {c.proposed_cuts['health_at_risk_min_score']}.", "",
              "Adopt the thresholds and keep the configured bands, or adopt both: put the vars of `proposal.yml` "
              "in `dbt_project/dbt_project.yml` (or run with `--apply`); the next night scores with them, "
              f"`segment-mart replay --from-date {c.run_date}` restates this one.", ""]
    return "\n".join(lines)


def apply_vars(project_dir: Path, values: dict[str, Any]) -> Path:
    """Write ``values`` into the ``vars:`` of ``<project_dir>/dbt_project.yml``, one line each, keeping
    every comment (each var the calibration sets is a scalar on its own line). Raises KeyError naming
    a var the file does not set."""
    path = Path(project_dir) / "dbt_project.yml"
    text = path.read_text(encoding="utf-8")
    for name, value in values.items():
        pattern = re.compile(rf"^(  {re.escape(name)}:[ ]*)([^#\n]*?)([ ]*(#.*)?)$", re.M)
        if not pattern.search(text):
            raise KeyError(f"{path} sets no var {name} (a line `  {name}: <value>` under vars:)")
        rendered = json.dumps(value) if not isinstance(value, str) else value
        text = pattern.sub(lambda m, r=rendered: f"{m[1]}{r}{m[3]}", text, count=1)
    path.write_text(text, encoding="utf-8")
    return path
