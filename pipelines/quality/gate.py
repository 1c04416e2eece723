"""The quality gate: everything that must hold before a night's marts are published.

* intake (``pipelines/quality/intake.py``, from the raw lake's load audit and quarantine):
  quarantined share per entity against ``settings.max_quarantine_share``, empty snapshots and
  volume spikes (also run alone right after ingestion: :func:`check_quarantine`); freshness:
  every entity of every source loaded a drop for the run date, and the newest usage event
  of the night is recent enough and not in the future;
* dbt: the build's test results and node errors from ``run_results.json``;
* marts: the columns and types against the mart's enforced dbt contract and against the previous
  publish, and whether the night's dbt run ran every dbt test on the mart (what dbt declares is
  read from its manifest, :mod:`pipelines.quality.declared`: the model YAML is the one place for
  a column's type, nullability and allowed values); one Great Expectations suite per mart
  (``expectations/<mart>.yml``: row counts, distributions, cross-column checks), validated on
  pandas DataFrames read through a read-only DuckDB connection, plus SQL reconciliations. Every
  mart needs a suite; every suite needs its mart; a suite expectation that restates a dbt test
  fails when the two disagree. A daily mart (dbt's ``meta.partition_date_column``) is validated on
  the night's partition plus the partitions changed since the last release; a monthly mart
  (``meta.partition_month_column``) on the months changed since the last release plus the month
  in progress. What needs the whole of such a mart (row count, key, aggregate expectations) is a
  DuckDB aggregate over the warehouse, never a DataFrame of the whole mart.

Each run writes ``<settings.quality>/<run_date>/quality_report.json`` and ``.html``.
Great Expectations, pandas and DuckDB are imported inside the functions.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import DataProblem
from pipelines.quality.declared import (
    MONTH_META,
    ManifestError,
    MartModel,
    load_mart_models,
    restatements,
)
from pipelines.quality.model import EXAMPLE_ROWS, Check, GateResult, jsonable
from pipelines.quality.suites import (
    INDEX_META,
    KEY_EXPECTATIONS,
    WHOLE_MART_REDUCTIONS,
    ExpectationSpec,
    MartSuite,
    SuiteError,
    build_gx_suite,
    is_whole_mart_expectation,
    load_suites,
)
from pipelines.warehouse import WarehouseUnavailable, quote_ident

if TYPE_CHECKING:
    import duckdb

    from pipelines.build.dbt_results import RunResults
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


def _load_run_results(run_results: Path | None) -> tuple[RunResults | None, list[Check]]:
    from pipelines.build.dbt_results import RunResults, RunResultsError

    if run_results is None:
        return None, [Check("dbt run results", "dbt_test", "skipped",
                            "no run_results.json given: dbt test results not checked")]
    try:
        return RunResults.load(Path(run_results)), []
    except RunResultsError as exc:
        return None, [Check("dbt run results", "dbt_test", "failed", str(exc))]


def _dbt_checks(results: RunResults, run_date: dt.date, models: dict[str, MartModel],
                explain: Any = None) -> list[Check]:
    """The night's dbt results: every failed or warning test and every node error (named, with
    the mart it tests), the test counts, and per mart whether each of its dbt tests ran.
    ``explain(node)``: (what a failed or warned data test found and what to do, its rows)
    (pipelines/build/dbt_failures.py), appended to the check's message."""
    path = results.path
    mart_of = {t.unique_id: m.name for m in models.values() for t in m.tests}
    checks: list[Check] = []
    if results.as_of_date and results.as_of_date != run_date.isoformat():
        checks.append(Check("dbt run is for this date", "dbt_build", "failed",
                            f"{path} is from a dbt run with as_of_date={results.as_of_date}, not {run_date}: "
                            "re-run dbt for this date"))
    for r in results.tests:
        if r.failed or r.warned:
            kind = r.resource_type.replace("_", " ")
            found, examples = explain(r) if explain is not None else ("", [])
            checks.append(Check(
                r.name, "dbt_test", "warning" if r.warned else "failed",
                f"dbt {kind} {r.status}"
                + (f" with {r.failures} failing row{'s' if r.failures != 1 else ''}" if r.failures else "")
                + (f": {r.message}" if r.message else "") + (f"; {found}" if found else ""),
                mart=mart_of.get(r.unique_id), observed=r.failures, example_rows=examples,
                details={"unique_id": r.unique_id, "status": r.status, "relation": r.relation_name},
            ))
    for r in results.build_problems:
        checks.append(Check(r.name, "dbt_build", "failed",
                            f"dbt {r.resource_type} {r.status}: {r.message or ''}".rstrip(": "),
                            details={"unique_id": r.unique_id}))
    counts = results.test_counts()
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("pass", "warn", "fail", "error")) + (
        f", {counts['skipped']} skipped" if counts.get("skipped") else "")
    bad = sum(1 for r in results.tests if r.failed)
    checks.insert(0, Check("dbt tests", "dbt_test", "failed" if bad else "passed", summary,
                           details={"counts": counts, "path": str(path), "dbt_version": results.dbt_version}))
    return checks + [_dbt_coverage(results, model) for _, model in sorted(models.items())]


def _dbt_coverage(results: RunResults, model: MartModel) -> Check:
    """Whether the night's dbt run ran every data test dbt declares on ``model``: the suites do not
    restate those checks, so a test left out of the build (setting dbt_build_exclude) leaves its
    fact unchecked tonight. Reported as a warning naming the tests; failures are their own checks."""
    from collections import Counter

    statuses: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    not_run = []
    for test in model.tests:
        r = results.get(test.unique_id)
        if r is None:
            not_run.append(test.name)
            continue
        statuses[r.status] += 1
        kinds[test.kind] += 1
    ran = sum(statuses.values())
    what = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
    status_txt = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    details = {"tests": len(model.tests), "ran": ran, "statuses": dict(statuses), "kinds": dict(kinds),
               "yaml": model.yaml_path}
    if not_run:
        return Check("dbt tests of the mart ran", "dbt_test", "warning",
                     f"{len(not_run)} of {len(model.tests)} dbt tests declared on marts.{model.name} "
                     f"({model.yaml_path}) did not run tonight, e.g. {', '.join(not_run[:3])}: what they check is "
                     "unchecked tonight (left out of the build? setting dbt_build_exclude)",
                     mart=model.name, severity="warning", observed=len(not_run),
                     details=details | {"not_run": not_run})
    return Check("dbt tests of the mart ran", "dbt_test", "passed",
                 f"{ran} dbt tests ran ({status_txt}): {what or 'none declared'}", mart=model.name,
                 observed=ran, details=details)


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


def _gx_batches() -> Any:
    """The one pandas batch definition (whole DataFrame) of an ephemeral Great Expectations
    context that every mart of the night is validated through: a batch is only the DataFrame it
    is given, so one data source serves every mart and batch (one per mart cost ~10 ms each)."""
    source = _gx_context().data_sources.add_pandas("marts")
    return source.add_dataframe_asset("mart").add_batch_definition_whole_dataframe("whole")


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


def _batches(partitions: dict[str, list[Any]], keys: list[str], max_rows: int) -> list[list[str]]:
    """Group partition keys into batches of at most ``max_rows`` rows (at least one partition each),
    so a restatement or a first publish of many partitions never becomes one huge DataFrame."""
    batches: list[list[str]] = []
    current: list[str] = []
    size = 0
    for key in keys:
        rows = int(partitions[key][0])
        if current and size + rows > max_rows:
            batches.append(current)
            current, size = [], 0
        current.append(key)
        size += rows
    if current:
        batches.append(current)
    return batches


class _ReadFailed(DataProblem):
    """A batch of a mart could not be read with its suite's derived columns (the message says why):
    reported as the mart's failed check, never raised out of the gate."""


def _run_gx(batch_def: Any, built: Any, frames: Any, run_date: dt.date) -> dict[int, list[tuple[Any, Any, Any]]]:
    """Validate ``built.suite`` on each ``(DataFrame, partitions)`` of ``frames`` (read one at a
    time) through ``batch_def`` (:func:`_gx_batches`); per expectation index, its results with the
    DataFrame (kept only when it failed, for example rows) and the partitions."""
    import pandas as pd

    outcomes: dict[int, list[tuple[Any, Any, Any]]] = {}
    for df, part in frames:
        batch = batch_def.get_batch(batch_parameters={"dataframe": df})
        res = batch.validate(
            built.suite,
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLE_ROWS},
            expectation_parameters={"run_date": pd.Timestamp(run_date)},
        )
        for r in res.results:
            idx = (r.expectation_config.meta or {}).get(INDEX_META)
            outcomes.setdefault(idx, []).append((r, None if r.success else df, part))
    return outcomes


def _expectation_checks(
    suite: MartSuite, built: Any, outcomes: dict[int, list[tuple[Any, Any, Any]]], batches: list[list[str]] | None,
    partition_by: str | None, evaluated: str | None = None, rows_at: Any = None,
) -> list[Check]:
    """One check per expectation of ``built`` from its results over every batch: failed when any
    batch fails (totals of unexpected rows over the batches), with example rows and, for a
    partitioned mart, the partitions validated and those holding the failure. ``rows_at(df, partitions, positions)``:
    the example rows of a failing batch (default: its DataFrame's rows at those positions)."""
    mart = suite.mart
    checks = []
    for idx, (label, kind, severity) in built.entries.items():
        results = outcomes.get(idx)
        if not results:
            checks.append(Check(label, kind, "failed", "no validation result from Great Expectations", mart=mart))  # type: ignore[arg-type]
            continue
        failing = [x for x in results if not x[0].success]
        r, df, _ = failing[0] if failing else results[0]
        result = dict(r.result or {})
        if len(results) > 1 and "unexpected_count" in result:  # totals over every batch
            result["unexpected_count"] = sum(int((x[0].result or {}).get("unexpected_count") or 0) for x in results)
            result["element_count"] = sum(int((x[0].result or {}).get("element_count") or 0) for x in results)
            total = result["element_count"] or 1
            result["unexpected_percent"] = 100.0 * result["unexpected_count"] / total
        kwargs = dict(r.expectation_config.kwargs)
        error = _exception_message(r.exception_info)
        status = "passed" if not failing else "failed" if severity == "critical" else "warning"
        msg = f"error while validating: {error}" if error and failing else _describe(result, kwargs)
        examples: list[dict[str, Any]] = []
        idx_list = result.get("partial_unexpected_index_list") or []
        if failing and df is not None and idx_list and all(isinstance(i, int) for i in idx_list):
            positions = list(idx_list)[:EXAMPLE_ROWS]
            examples = (rows_at(df, failing[0][2], positions) if rows_at is not None
                        else jsonable(df.iloc[positions].to_dict(orient="records")))
        details: dict[str, Any] = {"expectation": r.expectation_config.type,
                                   "kwargs": jsonable({k: v for k, v in kwargs.items() if k != "batch_id"}),
                                   "suite": str(suite.path)}
        if evaluated:
            details["evaluated"] = evaluated
        if batches is not None:
            details["partitions"] = [k for b in batches for k in b]
            if failing:
                details["failing_partitions"] = _failing_partitions(failing, partition_by or "")
                msg += f" in {partition_by} {', '.join(details['failing_partitions'][:5])}"
        checks.append(Check(
            label, kind, status, msg, mart=mart, severity=severity,  # type: ignore[arg-type]
            observed=jsonable(result.get("observed_value", result.get("unexpected_count"))),
            example_rows=examples, details=details,
        ))
    return checks


def _columns_read(built: Any, columns: list[tuple[str, str]], partition_by: str | None) -> list[str] | None:
    """The mart's columns the expectations of ``built`` read, in table order, plus the partition
    column (which names the failing partitions); None (every column) when one of them may read
    others: a ``row_condition``, or a kind whose outcome is not a function of the columns its
    kwargs name (``expect_table_columns_*`` and the like). Map expectations of a column, a pair or
    a list of columns, a column's aggregate and the table's row count read nothing else, and Great
    Expectations' cost grows with the width of the DataFrame it is given (it hashes the batch and
    copies it to find the unexpected rows)."""
    from great_expectations.expectations.expectation import (
        ColumnAggregateExpectation,
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    kinds = (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation, ColumnAggregateExpectation)
    wanted = {partition_by} if partition_by else set()
    for e in built.suite.expectations:
        if getattr(e, "row_condition", None):
            return None
        if e.expectation_type in ("expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"):
            continue
        if not isinstance(e, kinds):
            return None
        for attr in _COLUMN_ATTRS:
            value = getattr(e, attr, None)
            wanted |= {value} if isinstance(value, str) else set(value or [])
    names = [c for c, _ in columns]
    return [c for c in names if c in wanted] or names[:1]


#: Attributes of an expectation naming the columns it reads (its kwargs of the same names).
_COLUMN_ATTRS = ("column", "column_A", "column_B", "column_list")


def _vectorizable(df: Any) -> Any:
    """``df`` with the same values in the dtypes Great Expectations compares in numpy: its pandas
    ``expect_column_values_to_be_between`` is vectorized only for int64 / float64 and
    datetime64[ns] columns and calls a Python function per row for any other dtype
    (``great_expectations/expectations/metrics/column_map_metrics/column_values_between.py``),
    while DuckDB hands pandas 3 its DATE as datetime64[us] and INTEGER as int32. Dates widen to
    nanoseconds unless out of that range (after 2262), narrow integers to int64 unless one is
    NULL (a nullable Int32 stays: as a float its values would print as 7.0 in the report)."""
    import numpy as np
    import pandas as pd

    for name in df.columns:
        dtype = df[name].dtype
        try:
            if isinstance(dtype, np.dtype) and dtype.kind == "M" and dtype != np.dtype("datetime64[ns]"):
                df[name] = df[name].astype("datetime64[ns]")
            elif (dtype.kind in "iu" and getattr(dtype, "itemsize", 8) < 8
                  and not (isinstance(dtype, pd.api.extensions.ExtensionDtype) and df[name].hasnans)):
                df[name] = df[name].astype("int64")
        except (OverflowError, ValueError):  # pandas' OutOfBoundsDatetime is a ValueError
            continue
    return df


def _validate_mart(
    batches_gx: Any, con: duckdb.DuckDBPyConnection, suite: MartSuite, run_date: dt.date,
    previous: dict[str, Any] | None, columns: list[tuple[str, str]], batches: list[list[str]] | None,
    partition_by: str | None = None, expectations: list[ExpectationSpec] | None = None,
) -> list[Check]:
    """Great Expectations on DataFrames: the whole mart (``batches`` None) or, for a mart
    partitioned by ``partition_by`` (daily or monthly), each batch of partitions, one DataFrame
    at a time. ``expectations``: the suite's to validate (default: all of them). One check per
    expectation, failed when any batch fails.

    A DataFrame holds the columns the expectations read (:func:`_columns_read`) and every derived
    column of the suite (a broken derived expression fails the mart whether or not it is used);
    a failure's example rows are the failing batch's whole rows, read again (the same scan, every
    column) only then."""
    from pipelines.build.marts import partition_filter

    mart = suite.mart
    table = f"{MARTS_SCHEMA}.{quote_ident(mart)}"
    derived = "".join(f", ({expr}) as {quote_ident(name)}" for name, expr in suite.derived.items())
    available = {c for c, _ in columns} | set(suite.derived)
    built = build_gx_suite(suite, previous_rows=(previous or {}).get("rows"), available_columns=available,
                           include_row_count=batches is None, expectations=expectations)
    checks = [Check(label, kind, "failed", msg, mart=mart)  # type: ignore[arg-type]
              for label, kind, msg in built.problems]
    if not built.entries or batches == []:
        return checks
    read = _columns_read(built, columns, partition_by)
    narrow = (", ".join(quote_ident(c) for c in read) if read is not None else "*") + derived

    def query(part: list[str] | None, select: str) -> Any:
        """The rows of the partitions ``part`` (every row when None), the columns ``select``."""
        where, params = "", None
        if part is not None:
            cond, params = partition_filter(partition_by or "", part)
            where = f" where {cond}"
        try:
            return con.execute(f"select {select} from {table}{where}", params).df().reset_index(drop=True)
        except Exception as exc:
            raise _ReadFailed(f"cannot read {table} with the derived columns of {suite.path.name}: {exc}") from exc

    def frames() -> Any:
        for part in batches if batches is not None else [None]:
            yield _vectorizable(query(part, narrow)), part

    def rows_at(df: Any, part: list[str] | None, positions: list[int]) -> list[dict[str, Any]]:
        """The rows at ``positions`` of the batch ``df``, every column: the same scan (DuckDB keeps
        the insertion order) with all of them; the batch's own columns if the two disagree."""
        rows = jsonable(df.iloc[positions].to_dict(orient="records"))
        if read is None:
            return rows
        full = query(part, "*" + derived)
        whole = jsonable(full.iloc[positions].to_dict(orient="records")) if len(full) == len(df) else []
        same = len(whole) == len(rows) and all({c: w[c] for c in r} == r for w, r in zip(whole, rows, strict=False))
        return whole if same else rows

    try:
        outcomes = _run_gx(batches_gx, built, frames(), run_date)
        return checks + _expectation_checks(suite, built, outcomes, batches, partition_by, rows_at=rows_at)
    except _ReadFailed as exc:
        return [*checks, Check("read mart", "suite", "failed", str(exc), mart=mart)]


def _whole_mart_checks(
    batches_gx: Any, con: duckdb.DuckDBPyConnection, suite: MartSuite, run_date: dt.date, columns: list[tuple[str, str]],
    expectations: list[ExpectationSpec], partition_by: str,
) -> list[Check]:
    """The suite's expectations on a partitioned mart that only the whole mart can decide
    (:func:`pipelines.quality.suites.is_whole_mart_expectation`), as DuckDB aggregates over the
    warehouse, never a DataFrame of the whole mart: an aggregate of a column is reduced in DuckDB
    to the rows whose aggregate is the mart's, which Great Expectations validates with the
    expectation as written; uniqueness is a key check (:func:`_key_check`). A row-count
    expectation is the suite's ``row_count:`` (checked from the fingerprint); others are refused."""
    mart = suite.mart
    table = f"{MARTS_SCHEMA}.{quote_ident(mart)}"
    derived = "".join(f", ({expr}) as {quote_ident(name)}" for name, expr in suite.derived.items())
    available = {c for c, _ in columns} | set(suite.derived)
    checks: list[Check] = []
    for spec in expectations:
        if spec.type in KEY_EXPECTATIONS:
            value = spec.kwargs.get(KEY_EXPECTATIONS[spec.type])
            key = [value] if isinstance(value, str) else list(value or [])
            missing = [c for c in key if c not in available]
            if missing or not key:
                checks.append(Check(spec.label, "key", "failed", f"{suite.path.name}: {spec.type} names no column "
                                    f"of marts.{mart} ({', '.join(missing) or 'none'})", mart=mart))
                continue
            checks.append(_key_check(con, mart, key, f"{suite.path.name} ({spec.type})", None, None,
                                     name=spec.label, severity=spec.severity, derived=derived))
            continue
        reduction = WHOLE_MART_REDUCTIONS.get(spec.type)
        column = spec.kwargs.get("column")
        if reduction is None or not isinstance(column, str) or "row_condition" in spec.kwargs:
            what = ("a row count is the suite's `row_count:`" if spec.type.startswith("expect_table_row_count")
                    else "the gate reduces max, min, sum, mean, median and distinct values of a column in DuckDB; "
                    "write this one as a reconciliation (SQL returning the violating rows)")
            checks.append(Check(spec.label, "expectation", "failed",
                                f"{suite.path.name}: {spec.type} needs the whole of marts.{mart}, which the gate "
                                f"validates by {partition_by} partitions and never reads whole into a DataFrame: {what}",
                                mart=mart, details={"suite": str(suite.path), "expectation": spec.type}))
            continue
        q = quote_ident(column)
        source = f"(select *{derived} from {table}) as m"
        sql = (f"select distinct {q} from {source}" if reduction == "distinct"
               else f"select {reduction}({q}) as {q} from {source}")
        built = build_gx_suite(suite, previous_rows=None, available_columns=available, include_row_count=False,
                               expectations=[spec])
        checks += [Check(label, kind, "failed", msg, mart=mart)  # type: ignore[arg-type]
                   for label, kind, msg in built.problems]
        if not built.entries:
            continue
        try:
            df = con.execute(sql).df()
        except Exception as exc:
            checks.append(Check(spec.label, "expectation", "failed", f"cannot evaluate in DuckDB ({sql}): {exc}",
                                mart=mart))
            continue
        outcomes = _run_gx(batches_gx, built, [(df, None)], run_date)
        checks += _expectation_checks(suite, built, outcomes, None, None,
                                      evaluated=f"whole mart, reduced in DuckDB: {sql}")
    return checks


def _key_check(
    con: duckdb.DuckDBPyConnection, mart: str, key: list[str], declared: str, partition_by: str | None,
    validated: list[str] | None, *, name: str | None = None, where: str | None = None,
    severity: str = "critical", derived: str = "",
) -> Check:
    """``key`` is unique in ``marts.<mart>``: a DuckDB group-by counting the duplicated keys, over
    the whole mart, or over the partitions ``validated`` tonight when the key holds the partition
    column ``partition_by`` (a duplicate then lies within one partition, and the others are
    unchanged since they were validated)."""
    from pipelines.build.marts import partition_filter

    table = f"{MARTS_SCHEMA}.{quote_ident(mart)}"
    cols = ", ".join(quote_ident(c) for c in key)
    filters, params = ([f"({where})"] if where else []), []
    scope = "the whole mart"
    if partition_by is not None and partition_by in key and validated is not None:
        cond, params = partition_filter(partition_by, validated)
        filters.insert(0, cond)
        scope = f"the {len(validated)} {partition_by} partition(s) validated tonight (the key holds {partition_by})"
    source = f"(select *{derived} from {table})" if derived else table
    sql = (f"select {cols}, count(*) as rows from {source} as m{' where ' + ' and '.join(filters) if filters else ''} "
           "group by all having count(*) > 1")
    label = name or f"key ({', '.join(key)}) is unique" + (f" where {where}" if where else "")
    details = {"key": key, "declared": declared, "scope": scope, "sql": sql}
    try:
        n = con.execute(f"select count(*) from ({sql}) as d", params).fetchone()[0]  # type: ignore[index]
        examples = _rows(con, f"select * from ({sql}) as d order by rows desc, {cols}", params,
                         limit=EXAMPLE_ROWS) if n else []
    except Exception as exc:
        return Check(label, "key", "failed", f"the key check of {declared} failed in DuckDB: {exc}", mart=mart,
                     details=details)
    if not n:
        return Check(label, "key", "passed", f"no duplicate ({', '.join(key)}) in {scope}", mart=mart,
                     observed=0, details=details)
    where_txt = ""
    if partition_by is not None and partition_by in key:
        parts = sorted({str(r.get(partition_by)) for r in examples})
        where_txt = f" in {partition_by} {', '.join(parts)}"
    return Check(label, "key", "failed" if severity == "critical" else "warning",
                 f"{n} duplicated key{'s' if n != 1 else ''} ({', '.join(key)}){where_txt}, declared unique by "
                 f"{declared}; e.g. {examples[0]}", mart=mart, severity=severity,  # type: ignore[arg-type]
                 observed=n, example_rows=examples, details=details)


def _failing_partitions(failing: list[tuple[Any, Any, list[str] | None]], column: str) -> list[str]:
    """Partitions of the failing batches that hold an example of the failure (all of a batch's
    partitions when Great Expectations gave no row indexes, e.g. for table-level expectations)."""
    from pipelines.build.marts import partition_key

    found: set[str] = set()
    for result, df, part in failing:
        idx = (result.result or {}).get("partial_unexpected_index_list") or []
        if idx and all(isinstance(i, int) for i in idx) and column in df.columns:
            found |= {partition_key(v.date() if hasattr(v, "date") else v) for v in df.iloc[list(idx)][column]}
        else:
            found |= set(part or [])
    return sorted(found)


def _partition_checks(
    suite: MartSuite, col: str, fingerprint: dict[str, Any], validate: list[str], run_date: dt.date,
    previous: dict[str, Any] | None,
) -> list[Check]:
    """What a mart partitioned by ``col`` must hold besides its expectations, from the
    fingerprint's counts: the night's partition exists, no partition is later than the run date,
    and the mart's row count is within the suite's bounds (vs. the previous publish)."""
    mart = suite.mart
    parts: dict[str, list[Any]] = fingerprint["partitions"]
    night = run_date.isoformat()
    checks = []
    later = sorted(k for k in parts if k > night)
    if later:
        checks.append(Check(
            f"no {col} after the run date", "expectation", "failed",
            f"marts.{mart} holds {len(later)} partition(s) after {night} (latest {later[-1]}): this night is "
            f"older than nights already built. To restate {night}, replay it and every later night in "
            "order (docs/operations.md, 'Restating an older night'); the last replayed night publishes",
            mart=mart, observed=later[-1], details={"later_partitions": later[:20]}))
    else:
        checks.append(Check(f"no {col} after the run date", "expectation", "passed",
                            f"latest partition {max(parts) if parts else 'none'}", mart=mart))
    if night not in parts and int(suite.row_count.get("min") or 0) > 0:
        # A mart whose suite allows an empty night (row_count min: 0, e.g. fct_account_signals
        # on a night when no account enters a signal's state) may have no partition for it.
        checks.append(Check(f"partition {col} = run date exists", "row_count", "failed",
                            f"marts.{mart} has no rows with {col} = {night}: did dbt build run for this date?",
                            mart=mart, observed=0))
    return [*checks, _row_count_check(suite, fingerprint, previous, {"partitions_validated": validate})]


def _row_count_check(suite: MartSuite, fingerprint: dict[str, Any], previous: dict[str, Any] | None,
                     details: dict[str, Any]) -> Check:
    """The suite's row-count bounds of a partitioned mart (the whole mart vs. the previous publish),
    counted from the fingerprint (a DuckDB aggregate) instead of a DataFrame of the whole mart."""
    before = (previous or {}).get("rows")
    low, high = suite.row_count_bounds(before)
    rows = int(fingerprint["rows"])
    bound = f"{low}..{high if high is not None else 'unbounded'}"
    ok = rows >= low and (high is None or rows <= high)
    return Check(
        f"row count within {bound} ({f'previous publish: {before}' if before is not None else 'first publish'})",
        "row_count", "passed" if ok else "failed", f"observed {rows} rows" + ("" if ok else f" [expected {bound}]"),
        mart=suite.mart, observed=rows, details=details)


def _months_to_validate(fingerprint: dict[str, Any], previous: dict[str, Any] | None,
                        run_date: dt.date) -> tuple[list[str], list[str], list[str]]:
    """``(validate, changed, in_progress)`` of a monthly mart: the months whose fingerprint differs
    from the previous release's (all of them without a comparable one) and the month in progress
    (the latest month starting on or before the run date, and any after it: the expectations may
    read the run date, so it is validated every night)."""
    from pipelines.build.marts import NULL_PARTITION, changed_partitions

    months = sorted(k for k in fingerprint["months"] if k != NULL_PARTITION)
    night = run_date.isoformat()
    started = [k for k in months if k <= night]
    in_progress = [k for k in months if k > night or (started and k == started[-1])]
    changed = changed_partitions(fingerprint, previous)
    return sorted(set(changed) | set(in_progress)), changed, in_progress


def _canonical_types(con: duckdb.DuckDBPyConnection, declared: set[str], known: dict[str, str]) -> dict[str, str]:
    """DuckDB's name of each type a dbt contract declares (``string`` -> ``VARCHAR``,
    ``decimal(18,2)`` -> ``DECIMAL(18,2)``), asked of DuckDB itself and kept in ``known``;
    unknown names stay as written."""
    for name in declared - set(known):
        try:
            known[name] = str(con.execute(f"select typeof(cast(null as {name}))").fetchone()[0])  # type: ignore[index]
        except Exception:
            known[name] = name.upper()
    return known


def _contract_check(con: duckdb.DuckDBPyConnection, model: MartModel, current: list[tuple[str, str]],
                    known_types: dict[str, str] | None = None) -> Check:
    """The mart's columns, their order and types equal its dbt contract (manifest.json)."""
    mart = model.name
    cur = dict(current)
    types = _canonical_types(con, {t for _, t in model.columns if t}, {} if known_types is None else known_types)
    declared = [(c, types[t] if t else None) for c, t in model.columns]
    problems = []
    if not model.contract_enforced:
        problems.append("its dbt contract is not enforced (config contract: {enforced: true})")
    missing = [c for c, _ in declared if c not in cur]
    extra = [c for c in cur if c not in dict(declared)]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if extra:
        problems.append(f"not in the contract: {', '.join(extra)}")
    retyped = [f"{c} is {cur[c]}, the contract says {t}" for c, t in declared if t and c in cur and cur[c] != t]
    problems += retyped
    if not (missing or extra) and [c for c, _ in declared] != list(cur):
        problems.append("the columns are in another order than the contract's")
    if problems:
        return Check("schema: columns match the dbt contract", "schema", "failed",
                     f"marts.{mart} does not match its contract in {model.yaml_path}: " + "; ".join(problems)
                     + ". Rebuild it with dbt (`segment-mart build`); change the model YAML if the schema change "
                     "is intended", mart=mart, details={"columns": cur, "contract": dict(declared)})
    return Check("schema: columns match the dbt contract", "schema", "passed",
                 f"{len(cur)} columns, names, order and types as in {model.yaml_path}", mart=mart)


def _schema_check(mart: str, yaml_path: str, current: list[tuple[str, str]], previous: dict[str, Any] | None,
                  contract_ok: bool) -> Check:
    """The schema against the previous publish: a change BI users will see. Intended (a warning)
    when the mart matches its dbt contract, whose change is the declaration; failed otherwise."""
    cur = dict(current)
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
    if contract_ok:
        return Check("schema vs previous publish", "schema", "warning",
                     f"schema changed ({change}); intended: it matches the dbt contract in {yaml_path}. "
                     "BI queries reading the changed columns may need updating",
                     mart=mart, details={"previous": prev, "current": cur})
    return Check("schema vs previous publish", "schema", "failed",
                 f"schema changed since the previous publish ({change}) and does not match the dbt contract "
                 f"in {yaml_path}. BI queries may break", mart=mart, details={"previous": prev, "current": cur})


def _restatement_checks(suite: MartSuite, model: MartModel) -> list[Check]:
    """Suite expectations that restate a dbt test on the same column: failed when they disagree
    (or cannot be compared), a warning when they say the same (redundant)."""
    checks = []
    for r in restatements(suite, model):
        checks.append(Check(
            f"{r.expectation.label} restates a dbt test", "suite", "warning" if r.agrees else "failed",
            r.message(suite, model), mart=suite.mart, severity="warning" if r.agrees else "critical",
            details={"suite": str(suite.path), "expectation": r.expectation.type,
                     "kwargs": jsonable(r.expectation.kwargs), "dbt_test": r.test.unique_id,
                     "dbt_yaml": model.yaml_path, "agrees": r.agrees}))
    return checks


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
    previous_manifest: dict[str, Any] | None, batch_rows: int, models: dict[str, MartModel],
) -> tuple[list[Check], dict[str, int], dict[str, Any], dict[str, list[str]]]:
    """Schema, suites, expectations, partition checks and reconciliations of every mart (``models``:
    what dbt declares about each, :func:`pipelines.quality.declared.load_mart_models`); also
    returns the row counts, the fingerprint of every mart and the partitions validated per
    partitioned mart."""
    from pipelines.build.marts import changed_partitions, list_marts, mart_columns, mart_fingerprint

    marts = list_marts(con)
    suites = load_suites(expectations_dir)
    checks: list[Check] = []
    counts: dict[str, int] = {}
    fingerprints: dict[str, Any] = {}
    validated: dict[str, list[str]] = {}
    if not marts:
        checks.append(Check("marts present", "suite", "failed",
                            f"the working warehouse has no tables in schema `{MARTS_SCHEMA}`: did dbt build run?"))
    for name in sorted(set(suites) - set(marts)):
        checks.append(Check("mart exists", "suite", "failed",
                            f"{expectations_dir / (name + '.yml')} has no mart {MARTS_SCHEMA}.{name} in the "
                            "warehouse: the mart was dropped or renamed (rename or delete the suite with it)",
                            mart=name))
    prev_marts = (previous_manifest or {}).get("marts") or {}
    batches_gx = None
    known_types: dict[str, str] = {}
    fingerprint_seconds = ge_seconds = sql_seconds = 0.0
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
        model = models.get(mart)
        if model is None:
            checks.append(Check("dbt model of the mart", "schema", "failed",
                                f"marts.{mart} is not a model of dbt's manifest: its columns, types and tests are "
                                "declared nowhere. Run dbt for this date (`segment-mart build`), or drop the table",
                                mart=mart))
            continue
        batches_gx = batches_gx or _gx_batches()
        previous = prev_marts.get(mart)
        columns = mart_columns(con, mart)
        contract = _contract_check(con, model, columns, known_types)
        checks += [contract, _schema_check(mart, model.yaml_path, columns, previous, not contract.failed)]
        checks += _restatement_checks(suite, model)
        partition_by = model.partition_by
        month_column = model.month_column if partition_by is None else None
        grain = partition_by or month_column
        if grain is not None and grain not in dict(columns):
            checks.append(Check("partition column exists", "schema", "failed",
                                f"dbt's {model.yaml_path} makes marts.{mart} a "
                                f"{'daily' if partition_by else 'monthly'} mart partitioned by {grain} "
                                f"({'meta.partition_date_column' if partition_by else 'meta.' + MONTH_META}), "
                                "but it has no such column", mart=mart))
            continue
        clock = time.perf_counter()
        fingerprint = mart_fingerprint(con, mart, columns, partition_by, month_column)
        fingerprint_seconds += time.perf_counter() - clock
        fingerprints[mart] = fingerprint
        counts[mart] = fingerprint["rows"]
        batches = None
        validate: list[str] | None = None
        if partition_by is not None:
            night = run_date.isoformat()
            parts = fingerprint["partitions"]
            validate = sorted(set(changed_partitions(fingerprint, previous)) | ({night} & set(parts)))
            checks += _partition_checks(suite, partition_by, fingerprint, validate, run_date, previous)
            batches = _batches(parts, validate, batch_rows)
        elif month_column is not None:
            parts = fingerprint["months"]
            validate, changed, in_progress = _months_to_validate(fingerprint, previous, run_date)
            checks.append(_row_count_check(suite, fingerprint, previous, {
                "partitions_validated": validate, "partitions_changed": changed, "partition_in_progress": in_progress,
                "partitions_kept": len(parts) - len(validate), "month_column": month_column}))
            batches = _batches(parts, validate, batch_rows)
        if validate is not None:
            validated[mart] = validate
        whole = [e for e in suite.expectations if is_whole_mart_expectation(e.type)] if grain else []
        per_batch = [e for e in suite.expectations if e not in whole]
        clock = time.perf_counter()
        checks += _validate_mart(batches_gx, con, suite, run_date, previous, columns, batches, grain, per_batch)
        ge_seconds += time.perf_counter() - clock
        clock = time.perf_counter()
        if whole:
            checks += _whole_mart_checks(batches_gx, con, suite, run_date, columns, whole, grain or "")
        for test, key in model.key_tests():
            checks.append(_key_check(con, mart, key, f"dbt test {test.name} in {model.yaml_path}", grain, validate,
                                     where=test.where))
        checks += _reconciliation_checks(con, suite, run_date)
        sql_seconds += time.perf_counter() - clock
    log.info("gate on %d marts (%s rows): fingerprint %.2f s, Great Expectations %.2f s, SQL checks %.2f s",
             len(fingerprints), f"{sum(counts.values()):,}", fingerprint_seconds, ge_seconds, sql_seconds)
    return checks, counts, fingerprints, validated


# --------------------------------------------------------------------------- entry points


def _previous_manifest(settings: Settings) -> dict[str, Any] | None:
    from pipelines.release import read_manifest

    m = read_manifest(settings)
    return m.to_dict() if m is not None else None


def _finish(settings: Settings, run_date: dt.date, checks: list[Check], scope: str,
            started: str, counts: dict[str, int] | None = None, write_report: bool = True,
            fingerprint: dict[str, Any] | None = None, validated: dict[str, list[str]] | None = None,
            ) -> GateResult:
    from pipelines.quality.report import write_quality_report

    result = GateResult(run_date=run_date, passed=not any(c.failed for c in checks), checks=checks,
                        marts=counts or {}, scope=scope, started_at=started, finished_at=_now(),  # type: ignore[arg-type]
                        fingerprint=fingerprint or {}, validated=validated or {})
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
    """Run every check for ``run_date`` on the marts (read-only, through
    :func:`pipelines.build.marts.open_marts`) and write the quality report. Daily marts (dbt's
    ``meta.partition_date_column``) are validated on the night's partition plus any partition that changed since
    the last publish; monthly marts (``meta.partition_month_column``) on the months that changed since
    the last publish plus the month in progress; the others whole. The result carries the marts'
    fingerprint, which the publish checks against the warehouse it publishes.

    Does not raise on failed checks: call ``.raise_if_failed()`` on the result (raises
    :class:`~pipelines.quality.QualityGateFailed`). Raises only on bugs.
    """
    from pipelines.build.marts import open_marts, warehouse_witness

    started = _now()
    previous = _previous_manifest(settings)
    checks: list[Check] = []
    counts: dict[str, int] = {}
    from pipelines.quality import intake

    checks += intake.run_intake_checks(settings, run_date, quarantine_thresholds)
    from pipelines.build.dbt import target_dir

    results, problems = _load_run_results(dbt_run_results)
    try:
        models = load_mart_models(target_dir(settings) / "manifest.json", MARTS_SCHEMA)
    except ManifestError as exc:
        problems.append(Check("dbt manifest", "schema", "failed", str(exc)))
        models = None

    def dbt_checks(explain: Any = None) -> list[Check]:
        return problems + (_dbt_checks(results, run_date, models or {}, explain) if results is not None else [])

    if models is None:  # without dbt's declarations the marts cannot be checked
        return _finish(settings, run_date, checks + dbt_checks(), "gate", started, write_report=write_report)
    witness = warehouse_witness(settings)  # before the marts are read: a write meanwhile shows
    try:
        con = open_marts(settings)
    except WarehouseUnavailable as exc:
        checks.append(Check("open warehouse", "warehouse", "failed", str(exc)))
        return _finish(settings, run_date, checks + dbt_checks(), "gate", started, write_report=write_report)
    try:
        from functools import partial

        from pipelines.build import dbt_failures

        actions = dbt_failures.test_actions(target_dir(settings) / "manifest.json")
        checks += dbt_checks(partial(dbt_failures.explain, settings, actions=actions, con=con))
        mart_checks, counts, fingerprint, validated = _mart_checks(
            con, Path(settings.expectations_dir), run_date, previous, settings.quality_batch_rows, models)
        checks += mart_checks
        if "fct_account_health_daily" in counts:
            from pipelines.lab.calibration import health_distribution_check

            checks.append(health_distribution_check(con, settings, run_date))
    finally:
        con.close()
    fingerprint = {"marts": fingerprint, "dbt_run_results": _file_digest(dbt_run_results), "warehouse": witness}
    return _finish(settings, run_date, checks, "gate", started, counts, write_report, fingerprint, validated)


def _file_digest(path: Path | None) -> str | None:
    """sha256 of a (small) file, or None when there is none."""
    import hashlib

    if path is None or not Path(path).exists():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_gate_result(settings: Settings, run_date: dt.date) -> GateResult | None:
    """The quality gate's last result for ``run_date`` (its ``quality_report.json``), or None."""
    path = Path(settings.quality) / run_date.isoformat() / "quality_report.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    result = GateResult.from_dict(data)
    result.report_json = path
    html = path.with_suffix(".html")
    result.report_html = html if html.exists() else None
    return result
