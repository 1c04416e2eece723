"""The quality gate: everything that must hold before a night's marts are published.

* intake (``pipelines/quality/intake.py``, from the raw lake's load audit and quarantine):
  quarantined share per entity against ``settings.max_quarantine_share``, empty snapshots and
  volume spikes (also run alone right after ingestion: :func:`check_quarantine`); freshness:
  every entity of every source loaded a drop for the run date, and the newest usage event
  of the night is recent enough and not in the future;
* dbt: the build's test results and node errors from ``run_results.json``;
* marts: one Great Expectations suite per mart (``expectations/<mart>.yml``), validated on pandas
  DataFrames read through a read-only DuckDB connection, plus SQL reconciliations and the schema
  compared with the previous publish. Every mart needs a suite; every suite needs its mart.

Each run writes ``<settings.quality>/<run_date>/quality_report.json`` and ``.html``.
Great Expectations, pandas and DuckDB are imported inside the functions.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.quality.db import (
    WarehouseUnavailable,
    connect_read_only,
    list_tables,
    quote_ident,
    table_columns,
)
from pipelines.quality.model import EXAMPLE_ROWS, Check, GateResult, jsonable
from pipelines.quality.suites import INDEX_META, MartSuite, SuiteError, build_gx_suite, load_suites

if TYPE_CHECKING:
    import duckdb

    from pipelines.settings import Settings

log = logging.getLogger(__name__)

#: Schema of the working warehouse holding the published marts.
MARTS_SCHEMA = "marts"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None, limit: int | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params) if params is not None else con.execute(sql)
    names = [d[0] for d in cur.description or []]
    fetched = cur.fetchmany(limit) if limit is not None else cur.fetchall()
    return [jsonable(dict(zip(names, r, strict=True))) for r in fetched]


# --------------------------------------------------------------------------- intake
# Quarantine shares, empty snapshots, volume and freshness read the raw lake, not the
# warehouse: pipelines/quality/intake.py (also behind check_quarantine, before dbt).


# --------------------------------------------------------------------------- dbt


def _dbt_checks(run_results: Path | None, run_date: dt.date) -> list[Check]:
    if run_results is None:
        return [Check("dbt run results", "dbt_test", "skipped",
                      "no run_results.json given: dbt test results not checked")]
    path = Path(run_results)
    if not path.exists():
        return [Check("dbt run results", "dbt_test", "failed",
                      f"{path} does not exist: did `dbt build` run for this date?")]
    try:
        data = json.loads(path.read_text())
        results = data["results"]
    except (ValueError, KeyError) as exc:
        return [Check("dbt run results", "dbt_test", "failed", f"{path} is not a dbt run_results.json: {exc}")]
    checks: list[Check] = []
    dbt_vars = (data.get("args") or {}).get("vars") or {}
    if isinstance(dbt_vars, str):  # `--vars` given as a YAML string
        import yaml

        try:
            dbt_vars = yaml.safe_load(dbt_vars) or {}
        except yaml.YAMLError:
            dbt_vars = {}
    as_of = dbt_vars.get("as_of_date") if isinstance(dbt_vars, dict) else None
    if as_of and str(as_of) != run_date.isoformat():
        checks.append(Check("dbt run is for this date", "dbt_build", "failed",
                            f"{path} is from a dbt run with as_of_date={as_of}, not {run_date}: "
                            "re-run dbt for this date"))
    counts: dict[str, int] = {}
    for r in results:
        uid = str(r.get("unique_id", "?"))
        status = str(r.get("status", "?"))
        rtype = uid.split(".", 1)[0]
        name = uid.split(".")[2] if uid.count(".") >= 2 else uid
        if rtype in ("test", "unit_test"):
            counts[status] = counts.get(status, 0) + 1
            if status in ("fail", "error", "warn"):
                failures = r.get("failures")
                checks.append(Check(
                    name, "dbt_test", "warning" if status == "warn" else "failed",
                    f"dbt {rtype.replace('_', ' ')} {status}"
                    + (f" with {failures} failing row{'s' if failures != 1 else ''}" if failures else "")
                    + (f": {r.get('message')}" if r.get("message") else ""),
                    observed=failures, details={"unique_id": uid, "status": status,
                                                "relation": r.get("relation_name")},
                ))
        elif status in ("error", "skipped", "fail"):
            checks.append(Check(name, "dbt_build", "failed",
                                f"dbt {rtype} {status}: {r.get('message') or ''}".rstrip(": "),
                                details={"unique_id": uid}))
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("pass", "warn", "fail", "error")) + (
        f", {counts['skipped']} skipped" if counts.get("skipped") else "")
    bad = counts.get("fail", 0) + counts.get("error", 0)
    checks.insert(0, Check("dbt tests", "dbt_test", "failed" if bad else "passed", summary,
                           details={"counts": counts, "path": str(path),
                                    "dbt_version": (data.get("metadata") or {}).get("dbt_version")}))
    return checks


# --------------------------------------------------------------------------- marts


def _gx_context() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _exception_message(info: Any) -> str | None:
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception") and info.get("exception_message"):
        return str(info["exception_message"])
    for v in info.values():
        if isinstance(v, dict) and v.get("exception_message"):
            return str(v["exception_message"])
    return None


def _describe(result: dict[str, Any], kwargs: dict[str, Any]) -> str:
    expected = {k: v for k, v in kwargs.items() if k not in ("batch_id", "column", "column_list", "result_format")}
    exp_txt = ", ".join(f"{k}={v}" for k, v in jsonable(expected).items() if v is not None)
    if "unexpected_count" in result and result.get("element_count") is not None:
        n, total = result["unexpected_count"], result["element_count"]
        pct = result.get("unexpected_percent") or 0.0
        values = result.get("partial_unexpected_list") or []
        txt = f"{n} of {total} rows unexpected ({pct:.3g}%)"
        if values and n:
            txt += f"; e.g. {', '.join(repr(v) for v in jsonable(values)[:EXAMPLE_ROWS])}"
        return txt + (f" [expected {exp_txt}]" if exp_txt and n else "")
    if "observed_value" in result:
        return f"observed {jsonable(result['observed_value'])}" + (f" [expected {exp_txt}]" if exp_txt else "")
    return f"expected {exp_txt}" if exp_txt else "no details"


def _validate_mart(
    ctx: Any, con: duckdb.DuckDBPyConnection, suite: MartSuite, run_date: dt.date,
    previous: dict[str, Any] | None,
) -> tuple[list[Check], int]:
    import pandas as pd

    mart = suite.mart
    table = f"{MARTS_SCHEMA}.{quote_ident(mart)}"
    derived = "".join(f", ({expr}) as {quote_ident(name)}" for name, expr in suite.derived.items())
    try:
        df = con.execute(f"select *{derived} from {table}").df().reset_index(drop=True)
    except Exception as exc:
        return [Check("read mart", "suite", "failed",
                      f"cannot read {table} with the derived columns of {suite.path.name}: {exc}",
                      mart=mart)], 0
    prev_rows = (previous or {}).get("rows")
    built = build_gx_suite(suite, previous_rows=prev_rows, available_columns=set(map(str, df.columns)))
    checks = [Check(label, kind, "failed", msg, mart=mart)  # type: ignore[arg-type]
              for label, kind, msg in built.problems]

    source = ctx.data_sources.add_pandas(f"mart__{mart}")
    batch_def = source.add_dataframe_asset(mart).add_batch_definition_whole_dataframe("whole")
    batch = batch_def.get_batch(batch_parameters={"dataframe": df})
    res = batch.validate(
        built.suite,
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLE_ROWS},
        expectation_parameters={"run_date": pd.Timestamp(run_date)},
    )
    by_index = {}
    for r in res.results:
        idx = (r.expectation_config.meta or {}).get(INDEX_META)
        by_index[idx] = r
    for idx, (label, kind, severity) in built.entries.items():
        r = by_index.get(idx)
        if r is None:
            checks.append(Check(label, kind, "failed", "no validation result from Great Expectations", mart=mart))  # type: ignore[arg-type]
            continue
        result = dict(r.result or {})
        kwargs = dict(r.expectation_config.kwargs)
        error = _exception_message(r.exception_info)
        status = "passed" if r.success else "failed" if severity == "critical" else "warning"
        msg = f"error while validating: {error}" if error and not r.success else _describe(result, kwargs)
        examples: list[dict[str, Any]] = []
        idx_list = result.get("partial_unexpected_index_list") or []
        if not r.success and idx_list and all(isinstance(i, int) for i in idx_list):
            examples = jsonable(df.iloc[list(idx_list)[:EXAMPLE_ROWS]].to_dict(orient="records"))
        checks.append(Check(
            label, kind, status, msg, mart=mart, severity=severity,  # type: ignore[arg-type]
            observed=jsonable(result.get("observed_value", result.get("unexpected_count"))),
            example_rows=examples,
            details={"expectation": r.expectation_config.type,
                     "kwargs": jsonable({k: v for k, v in kwargs.items() if k != "batch_id"}),
                     "suite": str(suite.path)},
        ))
    return checks, len(df)


def _schema_check(
    suite: MartSuite, current: list[tuple[str, str]], previous: dict[str, Any] | None
) -> Check:
    mart = suite.mart
    cur = dict(current)
    declared = suite.columns
    problems = []
    if declared is not None:
        for name, typ in declared.items():
            if typ is not None and name in cur and cur[name].upper() != typ:
                problems.append(f"{name} is {cur[name]}, declared {typ}")
    if problems:
        return Check("schema: column types match the declared types", "schema", "failed",
                     "; ".join(problems) + f". Update {suite.path.name} if the change is intended",
                     mart=mart, details={"columns": cur})
    prev_cols = (previous or {}).get("columns")
    if not prev_cols:
        return Check("schema vs previous publish", "schema", "passed",
                     "no previous publish to compare with", mart=mart, details={"columns": cur})
    prev = {c["name"]: c["type"] for c in prev_cols}
    added = [c for c in cur if c not in prev]
    removed = [c for c in prev if c not in cur]
    retyped = [f"{c} {prev[c]} -> {cur[c]}" for c in cur if c in prev and prev[c] != cur[c]]
    if not (added or removed or retyped):
        return Check("schema vs previous publish", "schema", "passed",
                     f"{len(cur)} columns, same names and types as the previous publish", mart=mart)
    change = "; ".join(
        part for part in (
            f"added {', '.join(added)}" if added else "",
            f"removed {', '.join(removed)}" if removed else "",
            f"retyped {', '.join(retyped)}" if retyped else "",
        ) if part
    )
    intended = declared is not None and set(declared) == set(cur) and all(
        declared[c.split(" ")[0]] is not None for c in retyped
    )
    if intended:
        return Check("schema vs previous publish", "schema", "warning",
                     f"schema changed ({change}); intended: it matches {suite.path.name}",
                     mart=mart, details={"previous": prev, "current": cur})
    return Check("schema vs previous publish", "schema", "failed",
                 f"schema changed since the previous publish ({change}). BI queries may break. "
                 f"If intended, declare the columns (with types for retyped ones) under `columns:` in "
                 f"{suite.path.name}", mart=mart, details={"previous": prev, "current": cur})


def _reconciliation_checks(con: duckdb.DuckDBPyConnection, suite: MartSuite, run_date: dt.date) -> list[Check]:
    checks = []
    for rec in suite.reconciliations:
        params = {"run_date": run_date} if "$run_date" in rec.sql else None
        try:
            n = con.execute(f"select count(*) from ({rec.sql}) as violations", params).fetchone()[0]  # type: ignore[index]
            examples = _rows(con, f"select * from ({rec.sql}) as violations", params, limit=EXAMPLE_ROWS) if n else []
        except Exception as exc:
            checks.append(Check(rec.name, "reconciliation", "failed",
                                f"the reconciliation query in {suite.path.name} failed: {exc}", mart=suite.mart,
                                details={"sql": rec.sql}))
            continue
        status = "passed" if not n else ("failed" if rec.severity == "critical" else "warning")
        msg = (rec.description + ": " if rec.description else "") + (
            "no violating rows" if not n else f"{n} violating row{'s' if n != 1 else ''}")
        checks.append(Check(rec.name, "reconciliation", status, msg, mart=suite.mart, severity=rec.severity,  # type: ignore[arg-type]
                            observed=n, example_rows=examples, details={"sql": rec.sql}))
    return checks


def _mart_checks(
    con: duckdb.DuckDBPyConnection, expectations_dir: Path, run_date: dt.date,
    previous_manifest: dict[str, Any] | None,
) -> tuple[list[Check], dict[str, int]]:
    marts = list_tables(con, MARTS_SCHEMA)
    suites = load_suites(expectations_dir)
    checks: list[Check] = []
    counts: dict[str, int] = {}
    if not marts:
        checks.append(Check("marts present", "suite", "failed",
                            f"the working warehouse has no tables in schema `{MARTS_SCHEMA}`: did dbt build run?"))
    for name in sorted(set(suites) - set(marts)):
        checks.append(Check("mart exists", "suite", "failed",
                            f"{expectations_dir / (name + '.yml')} has no mart {MARTS_SCHEMA}.{name} in the "
                            "warehouse: the mart was dropped or renamed (rename or delete the suite with it)",
                            mart=name))
    prev_marts = (previous_manifest or {}).get("marts") or {}
    ctx = None
    for mart in marts:
        suite = suites.get(mart)
        if suite is None:
            checks.append(Check("suite exists", "suite", "failed",
                                f"mart {MARTS_SCHEMA}.{mart} has no expectation suite: add "
                                f"{expectations_dir / (mart + '.yml')} (start from "
                                "pipelines.quality.scaffold_suite); every published mart needs one",
                                mart=mart))
            continue
        if isinstance(suite, SuiteError):
            checks.append(Check("suite is valid", "suite", "failed", str(suite), mart=mart))
            continue
        ctx = ctx or _gx_context()
        previous = prev_marts.get(mart)
        checks.append(_schema_check(suite, table_columns(con, MARTS_SCHEMA, mart), previous))
        mart_checks, rows = _validate_mart(ctx, con, suite, run_date, previous)
        checks += mart_checks
        checks += _reconciliation_checks(con, suite, run_date)
        counts[mart] = rows
    return checks, counts


# --------------------------------------------------------------------------- entry points


def _previous_manifest(settings: Settings) -> dict[str, Any] | None:
    from pipelines.publish import read_manifest

    m = read_manifest(settings)
    return m.to_dict() if m is not None else None


def _finish(settings: Settings, run_date: dt.date, checks: list[Check], scope: str,
            started: str, counts: dict[str, int] | None = None, write_report: bool = True) -> GateResult:
    from pipelines.quality.report import write_quality_report

    result = GateResult(run_date=run_date, passed=not any(c.failed for c in checks), checks=checks,
                        marts=counts or {}, scope=scope, started_at=started, finished_at=_now())  # type: ignore[arg-type]
    if write_report:
        stem = "quality_report" if scope == "gate" else "quarantine_report"
        result.report_json, result.report_html = write_quality_report(
            result, Path(settings.quality) / run_date.isoformat(), stem)
    level = logging.INFO if result.passed else logging.ERROR
    log.log(level, "%s for %s: %s", scope, run_date, result.summary()["counts"])
    return result


def check_quarantine(
    settings: Settings, run_date: dt.date, *, thresholds: dict[str, float] | None = None,
    write_report: bool = True,
) -> GateResult:
    """Intake checks for ``run_date`` right after ingestion (quarantined share per entity,
    empty snapshots, volume); writes ``<quality>/<run_date>/quarantine_report.{json,html}``.
    Call ``.raise_if_failed()`` on it. See :mod:`pipelines.quality.intake`."""
    from pipelines.quality import intake

    started = _now()
    return _finish(settings, run_date, intake.run_quarantine_checks(settings, run_date, thresholds),
                   "quarantine", started, write_report=write_report)


def run_quality_gate(
    settings: Settings,
    run_date: dt.date,
    *,
    dbt_run_results: Path | None = None,
    quarantine_thresholds: dict[str, float] | None = None,
    write_report: bool = True,
) -> GateResult:
    """Run every check for ``run_date`` on the working warehouse (read-only) and write the
    quality report. Does not raise on failed checks: call ``.raise_if_failed()`` on the result
    (raises :class:`~pipelines.quality.QualityGateFailed`). Raises only on bugs.
    """
    started = _now()
    previous = _previous_manifest(settings)
    checks: list[Check] = []
    counts: dict[str, int] = {}
    from pipelines.quality import intake

    checks += intake.run_intake_checks(settings, run_date, quarantine_thresholds)
    try:
        con = connect_read_only(Path(settings.warehouse))
    except WarehouseUnavailable as exc:
        checks.append(Check("open warehouse", "warehouse", "failed", str(exc)))
        return _finish(settings, run_date, checks + _dbt_checks(dbt_run_results, run_date), "gate",
                       started, write_report=write_report)
    try:
        checks += _dbt_checks(dbt_run_results, run_date)
        mart_checks, counts = _mart_checks(con, Path(settings.expectations_dir), run_date, previous)
        checks += mart_checks
    finally:
        con.close()
    return _finish(settings, run_date, checks, "gate", started, counts, write_report)
