"""Expectation suites: one YAML file per published mart in ``expectations/<mart>.yml``.

A suite holds what dbt does not check: the mart's row count against the previous publish,
distributions and cross-column checks in Great Expectations 1.x terms, and SQL
reconciliations across rows and marts. A mart's columns, types, nullability, keys, allowed
values and partitioning live in its dbt model YAML only (the enforced contract and the data
tests, read by the gate from dbt's manifest: :mod:`pipelines.quality.declared`); a suite that
restates one of those facts fails the gate when it disagrees. Format (see
``expectations/README.md`` for the full description)::

    mart: fct_account_tiers_daily        # must equal the file name
    description: One row per account and day with the assigned tier.
    row_count: {min: 1, max_shrink: 0.5, max_growth: 1.0}   # vs. the previous publish
    derived:                             # SQL expressions added as columns when reading
      score_gap: tier_score - (arr_contribution + expansion_contribution)
    expectations:                        # GE 1.x expectation types and their kwargs
      - expect_column_values_to_be_between: {column: score_gap, min_value: -0.01, max_value: 0.01}
      - type: expect_column_values_to_be_between     # long form, with severity and notes
        kwargs: {column: tier_score, min_value: 0, max_value: 100}
        severity: warning
        notes: Scores are 0-100 by construction.
    reconciliations:                     # SQL returning the violating rows; none = pass
      - name: segments_sum_to_total
        sql: select ... from marts.rpt_segment_retention_monthly ...

Kwargs may use ``{"$PARAMETER": "run_date"}`` (a pandas Timestamp of the run date); reconciliation
SQL may use ``$run_date`` (a DATE). ``expectations/_defaults.yml`` may set ``row_count`` defaults.
This module does not import Great Expectations until a suite is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipelines.errors import DataProblem

if TYPE_CHECKING:
    import duckdb
    import great_expectations as gx

#: Row-count bounds relative to the previous publish, unless a suite or _defaults.yml says otherwise.
DEFAULT_ROW_COUNT: dict[str, float | int | None] = {
    "min": 1,  # absolute minimum (0 allows an empty mart)
    "max": None,  # absolute maximum
    "max_shrink": 0.5,  # fail when rows < previous x (1 - max_shrink)
    "max_growth": 1.0,  # fail when rows > previous x (1 + max_growth); null = unbounded
}

SEVERITIES = ("critical", "warning", "info")
_TOP_KEYS = {
    "mart",
    "description",
    "row_count",
    "derived",
    "expectations",
    "reconciliations",
}
#: Keys of earlier suite versions whose facts now live in the dbt model YAML only.
_MOVED_TO_DBT = {
    "key": "the grain is the model's unique / unique_combination_of_columns test",
    "columns": "the columns and types are the model's enforced contract",
    "partition_by": "a daily mart is the one whose config sets meta.partition_date_column "
    "(config date_partitioned_incremental)",
}


class SuiteError(DataProblem, ValueError):
    """A suite file is malformed; the message names the file and what to fix."""


@dataclass(frozen=True)
class ExpectationSpec:
    type: str
    kwargs: dict[str, Any]
    severity: str = "critical"
    notes: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        args = [
            str(self.kwargs[k])
            for k in ("column", "column_A", "column_B", "column_list")
            if k in self.kwargs
        ]
        return f"{self.type}({', '.join(args)})"


@dataclass(frozen=True)
class Reconciliation:
    name: str
    sql: str
    description: str = ""
    severity: str = "critical"


@dataclass(frozen=True)
class MartSuite:
    mart: str
    path: Path
    description: str = ""
    row_count: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_ROW_COUNT))
    derived: dict[str, str] = field(default_factory=dict)
    expectations: tuple[ExpectationSpec, ...] = ()
    reconciliations: tuple[Reconciliation, ...] = ()

    def row_count_bounds(self, previous_rows: int | None) -> tuple[int, int | None]:
        """``(min, max)`` rows allowed tonight, given the previous publish's row count."""
        rc = self.row_count
        low = int(rc.get("min") or 0)
        high = rc.get("max")
        high = int(high) if high is not None else None
        if previous_rows is not None:
            if rc.get("max_shrink") is not None:
                low = max(low, math.ceil(previous_rows * (1 - float(rc["max_shrink"]))))
            if rc.get("max_growth") is not None:
                grown = math.floor(previous_rows * (1 + float(rc["max_growth"])))
                high = grown if high is None else min(high, grown)
        if high is not None and high < low:
            high = low
        return low, high


def _err(path: Path, msg: str) -> SuiteError:
    return SuiteError(f"{path}: {msg}")


def _parse_expectation(path: Path, i: int, raw: Any) -> ExpectationSpec:
    where = f"expectations[{i}]"
    if not isinstance(raw, dict) or not raw:
        raise _err(path, f"{where} must be a mapping, e.g. `- expect_column_values_to_not_be_null: {{column: id}}`")
    if "type" in raw:
        extra = set(raw) - {"type", "kwargs", "severity", "notes", "name", "meta"}
        if extra:
            raise _err(path, f"{where} has unknown keys {sorted(extra)}")
        etype, kwargs = raw["type"], raw.get("kwargs") or {}
        severity, notes, name = raw.get("severity", "critical"), raw.get("notes"), raw.get("name")
    elif len(raw) == 1:
        ((etype, kwargs),) = raw.items()
        kwargs = kwargs or {}
        severity, notes, name = "critical", None, None
    else:
        raise _err(path, f"{where}: use either the short form `- <type>: {{kwargs}}` or `type:`/`kwargs:` keys")
    if not isinstance(etype, str) or not etype.startswith("expect_"):
        raise _err(path, f"{where}: {etype!r} is not a Great Expectations expectation type (expect_...)")
    if not isinstance(kwargs, dict):
        raise _err(path, f"{where} ({etype}): kwargs must be a mapping")
    if severity not in SEVERITIES:
        raise _err(path, f"{where} ({etype}): severity must be one of {', '.join(SEVERITIES)}")
    return ExpectationSpec(type=etype, kwargs=dict(kwargs), severity=severity, notes=notes, name=name)


def parse_suite(path: Path, defaults: dict[str, Any] | None = None) -> MartSuite:
    """Parse one ``expectations/<mart>.yml`` file."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise _err(path, f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise _err(path, "must be a YAML mapping with at least `mart:`")
    moved = sorted(set(data) & set(_MOVED_TO_DBT))
    if moved:
        raise _err(path, "; ".join(f"`{k}:` belongs in the dbt model YAML ({_MOVED_TO_DBT[k]})" for k in moved)
                   + f": remove {', '.join(f'`{k}:`' for k in moved)} from the suite (expectations/README.md)")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise _err(path, f"unknown top-level keys {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    mart = data.get("mart")
    if mart != path.stem:
        raise _err(path, f"`mart: {mart}` must equal the file name ({path.stem})")
    row_count = dict(DEFAULT_ROW_COUNT)
    row_count.update((defaults or {}).get("row_count") or {})
    row_count.update(data.get("row_count") or {})
    if set(row_count) - set(DEFAULT_ROW_COUNT):
        raise _err(path, f"row_count keys must be among {sorted(DEFAULT_ROW_COUNT)}")
    derived = data.get("derived") or {}
    if not isinstance(derived, dict):
        raise _err(path, "`derived:` must map a new column name to a SQL expression")
    exps = data.get("expectations") or []
    if not isinstance(exps, list):
        raise _err(path, "`expectations:` must be a list")
    recs = []
    for i, r in enumerate(data.get("reconciliations") or []):
        if not isinstance(r, dict) or not r.get("name") or not r.get("sql"):
            raise _err(path, f"reconciliations[{i}] needs `name:` and `sql:` (returning the violating rows)")
        sev = r.get("severity", "critical")
        if sev not in SEVERITIES:
            raise _err(path, f"reconciliations[{i}]: severity must be one of {', '.join(SEVERITIES)}")
        recs.append(Reconciliation(r["name"], r["sql"].strip().rstrip(";"), r.get("description", ""), sev))
    return MartSuite(
        mart=mart,
        path=path,
        description=str(data.get("description") or ""),
        row_count=row_count,
        derived={str(k): str(v) for k, v in derived.items()},
        expectations=tuple(_parse_expectation(path, i, e) for i, e in enumerate(exps)),
        reconciliations=tuple(recs),
    )


def suite_files(expectations_dir: Path) -> dict[str, Path]:
    """``{mart: path}`` for every suite file (``_*.yml`` files are not suites)."""
    files: dict[str, Path] = {}
    if not expectations_dir.is_dir():
        return files
    for p in sorted([*expectations_dir.glob("*.yml"), *expectations_dir.glob("*.yaml")]):
        if not p.name.startswith("_"):
            files[p.stem] = p
    return files


def load_defaults(expectations_dir: Path) -> dict[str, Any]:
    p = expectations_dir / "_defaults.yml"
    if not p.exists():
        return {}
    data = yaml.safe_load(p.read_text()) or {}
    if not isinstance(data, dict):
        raise SuiteError(f"{p}: must be a mapping (e.g. `row_count: {{max_shrink: 0.5}}`)")
    return data


def load_suites(expectations_dir: Path) -> dict[str, MartSuite | SuiteError]:
    """Every suite by mart name; a malformed file maps to its :class:`SuiteError`."""
    defaults = load_defaults(expectations_dir)
    out: dict[str, MartSuite | SuiteError] = {}
    for mart, path in suite_files(expectations_dir).items():
        try:
            out[mart] = parse_suite(path, defaults)
        except SuiteError as exc:
            out[mart] = exc
    return out


@dataclass
class BuiltSuite:
    """A mart's ``gx.ExpectationSuite`` plus what the gate needs to report on each expectation."""

    suite: gx.ExpectationSuite
    #: per expectation index (kept in the expectation's ``meta``): (label, kind, severity)
    entries: dict[int, tuple[str, str, str]]
    #: entries that could not be built or reference missing columns: (label, kind, message)
    problems: list[tuple[str, str, str]]


#: Whole-mart expectations the gate evaluates on a partitioned (daily or monthly) mart by reducing
#: the whole mart in DuckDB to the rows whose aggregate is the mart's (one row holding the mart's
#: max, min, sum, mean or median; the distinct values), which Great Expectations then validates:
#: a batch of partitions cannot decide them, and the whole mart is never a DataFrame.
WHOLE_MART_REDUCTIONS = {
    "expect_column_max_to_be_between": "max",
    "expect_column_min_to_be_between": "min",
    "expect_column_sum_to_be_between": "sum",
    "expect_column_mean_to_be_between": "avg",
    "expect_column_median_to_be_between": "median",
    "expect_column_distinct_values_to_be_in_set": "distinct",
    "expect_column_distinct_values_to_contain_set": "distinct",
    "expect_column_distinct_values_to_equal_set": "distinct",
    "expect_column_unique_value_count_to_be_between": "distinct",
}
#: Uniqueness expectations: on a partitioned mart a key, checked as a DuckDB group-by (the kwarg
#: naming its column(s)); the key of a mart is its dbt test's, these are for anything else.
KEY_EXPECTATIONS = {"expect_column_values_to_be_unique": "column",
                    "expect_compound_columns_to_be_unique": "column_list"}


def is_whole_mart_expectation(etype: str) -> bool:
    """Whether ``etype`` states something about a whole mart that a batch of its partitions cannot
    decide: an aggregate of a column (Great Expectations' ``ColumnAggregateExpectation``), the
    row count, or uniqueness. Row-level (map) and schema expectations hold on a mart when they
    hold on every batch of it."""
    if etype in WHOLE_MART_REDUCTIONS or etype in KEY_EXPECTATIONS or etype.startswith("expect_table_row_count"):
        return True
    from great_expectations.expectations.expectation import ColumnAggregateExpectation
    from great_expectations.expectations.registry import get_expectation_impl

    try:
        return issubclass(get_expectation_impl(etype), ColumnAggregateExpectation)
    except Exception:  # unknown type: build_gx_suite reports it
        return False


#: Expectation kwargs that name columns of the batch (checked before validation).
_COLUMN_KWARGS = ("column", "column_A", "column_B", "column_list")
#: ``meta`` key carrying an expectation's position (GE does not keep result order).
INDEX_META = "segment_mart_index"


def build_gx_suite(
    suite: MartSuite, *, previous_rows: int | None, available_columns: set[str] | None = None,
    include_row_count: bool = True, expectations: tuple[ExpectationSpec, ...] | list[ExpectationSpec] | None = None,
) -> BuiltSuite:
    """The mart's ``gx.ExpectationSuite``: the row-count bounds vs. the previous publish (unless
    ``include_row_count`` is false) followed by the suite's expectations (or those of
    ``expectations``, a part of them). The grain, the columns and the allowed values are dbt's
    tests and contract, not expectations here.

    Expectations that reference a column missing from ``available_columns``, or that GE cannot
    build (unknown type, bad kwargs), are left out and returned as ``problems``.
    """
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    specs: list[tuple[str, dict[str, Any], str, str, str, str | None]] = []

    def add(etype: str, kwargs: dict[str, Any], label: str, kind: str,
            severity: str = "critical", notes: str | None = None) -> None:
        specs.append((etype, kwargs, label, kind, severity, notes))

    if include_row_count:  # a partitioned mart's row counts are checked per partition, in SQL
        low, high = suite.row_count_bounds(previous_rows)
        bound = f"{low}..{high if high is not None else 'unbounded'}"
        prev = f"previous publish: {previous_rows}" if previous_rows is not None else "first publish"
        add("expect_table_row_count_to_be_between", {"min_value": low, "max_value": high},
            f"row count within {bound} ({prev})", "row_count")
    for spec in suite.expectations if expectations is None else expectations:
        add(spec.type, spec.kwargs, spec.label, "expectation", spec.severity, spec.notes)

    expectations = []
    entries: dict[int, tuple[str, str, str]] = {}
    problems: list[tuple[str, str, str]] = []
    for i, (etype, kwargs, label, kind, severity, notes) in enumerate(specs):
        if available_columns is not None and not etype.startswith("expect_table_"):
            referenced: list[str] = []
            for k in _COLUMN_KWARGS:
                v = kwargs.get(k)
                referenced += v if isinstance(v, list) else [v] if isinstance(v, str) else []
            missing = [c for c in referenced if c not in available_columns]
            if missing:
                problems.append((label, kind, (
                    f"column{'s' if len(missing) > 1 else ''} {', '.join(missing)} not found in "
                    f"marts.{suite.mart} (has: {', '.join(sorted(available_columns))}); update "
                    f"{suite.path.name} or the dbt model"
                )))
                continue
        try:
            cfg = ExpectationConfiguration(
                type=etype, kwargs=kwargs, severity=severity, notes=notes, meta={INDEX_META: i}
            )
            expectations.append(cfg.to_domain_obj())
        except Exception as exc:  # unknown type or bad kwargs: name the file and the entry
            problems.append((label, "suite", f"invalid expectation in {suite.path.name}: {exc}"))
            continue
        entries[i] = (label, kind, severity)
    return BuiltSuite(
        suite=gx.ExpectationSuite(name=f"mart.{suite.mart}", expectations=expectations),
        entries=entries,
        problems=problems,
    )


def scaffold_suite(con: duckdb.DuckDBPyConnection, mart: str, schema: str = "marts") -> str:
    """A starting ``expectations/<mart>.yml`` for a mart that exists in ``con`` (to edit by hand):
    the default row-count bounds and, commented out, a range check per numeric column with the
    range observed now. Columns, types, nullability, keys and allowed values are declared in the
    mart's dbt model YAML, not in the suite."""
    from pipelines.warehouse import quote_ident, table_columns

    cols = table_columns(con, schema, mart)
    if not cols:
        raise ValueError(f"{schema}.{mart} does not exist")
    table = f"{schema}.{quote_ident(mart)}"
    numeric = [c for c, t in cols if t.startswith(("DECIMAL", "INTEGER", "BIGINT", "DOUBLE", "SMALLINT", "FLOAT"))]
    ranges = con.execute(
        "select " + ", ".join(f"min({quote_ident(c)}), max({quote_ident(c)})" for c in numeric) + f" from {table}"
    ).fetchone() if numeric else ()
    hints = [f"  # - expect_column_values_to_be_between: {{column: {c}, min_value: 0}}   # now {lo} .. {hi}"
             for c, lo, hi in zip(numeric, (ranges or ())[0::2], (ranges or ())[1::2], strict=True)]
    lines = [
        f"# Great Expectations suite for {schema}.{mart} (format: expectations/README.md). Columns, types,",
        "# nullability, keys and allowed values are the dbt model YAML's (contract and data tests), never here.",
        f"mart: {mart}",
        'description: "TODO: one sentence on the grain and the use of this mart."',
        f"row_count: {{max_shrink: {DEFAULT_ROW_COUNT['max_shrink']}, max_growth: {DEFAULT_ROW_COUNT['max_growth']}}}",
        "expectations:   # distributions and cross-column checks dbt does not make",
        *(hints or ["  []"]),
        "reconciliations: []   # SQL returning the violating rows: totals, bridges, agreement with other marts",
    ]
    return "\n".join(lines) + "\n"
