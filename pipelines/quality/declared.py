"""What dbt declares about each published mart, read from dbt's ``manifest.json``.

The dbt model YAML (``dbt_project/models/marts/*/_*__models.yml``) is the one place for a
mart's columns, types (its enforced contract), nullability, keys and allowed values (its data
tests), for which marts are daily (config ``date_partitioned_incremental`` sets
``meta.partition_date_column``) and which are monthly (the model's ``config: meta:
partition_month_column:``, the column holding the first day of the row's month, or of its
quarter). The quality gate reads them here, never from the suites:

* the schema check compares the warehouse's columns with the contract;
* ``partition_by`` of a daily mart and ``month_column`` of a monthly mart come from the model's
  config (the gate validates only the partitions that changed, :mod:`pipelines.quality.gate`);
* the key (a ``unique`` or ``unique_combination_of_columns`` test) is checked by the gate as a
  DuckDB aggregate too (:meth:`MartModel.key_tests`);
* the dbt tests on a mart are matched with the night's ``run_results.json`` (did they run?);
* :func:`restatements` finds suite expectations that restate one of those tests, so that a
  value set, a range or a not-null rule is never written twice (and never drifts).

dbt writes the manifest on every parse, build or run (``<home>/dbt_target/manifest.json``).
Pure Python and JSON: no dbt, DuckDB or Great Expectations import.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import DataProblem

if TYPE_CHECKING:
    from pipelines.quality.suites import ExpectationSpec, MartSuite

#: dbt generic tests that declare a column's allowed values.
ALLOWED_VALUE_TESTS = ("accepted_values", "relationships")
#: The model meta key of a monthly mart's month column (``partition_date_column`` is the daily
#: marts': dbt's generic tests of those read only the run's slice, macros/generic_tests/get_where_subquery.sql).
MONTH_META = "partition_month_column"


class ManifestError(DataProblem, ValueError):
    """dbt's manifest is missing or unreadable; the message says which file and what to run."""


@dataclass(frozen=True)
class DbtTest:
    """One data test on a mart, as dbt's manifest declares it."""

    unique_id: str
    #: the node name (what run_results.json and the gate report show)
    name: str
    #: the generic test's name (``not_null``, ``accepted_values``, ``relationships``,
    #: ``accepted_range``, ``unique_combination_of_columns``, ...), or ``singular``
    kind: str
    column: str | None = None
    #: the test's arguments as written in the YAML (Jinja unrendered), without ``model``
    arguments: dict[str, Any] = field(default_factory=dict)
    #: ``config: where:`` (the test checks only these rows)
    where: str | None = None

    def describe(self) -> str:
        on = f" on column {self.column}" if self.column else ""
        return f"dbt test {self.name} ({self.kind}{on})"


@dataclass(frozen=True)
class MartModel:
    """A published mart's declaration in the dbt project."""

    name: str
    #: the YAML file that declares it, relative to the dbt project (for messages)
    yaml_path: str
    #: ``(column, data_type)`` in contract order (data_type None where the YAML declares none)
    columns: tuple[tuple[str, str | None], ...]
    contract_enforced: bool
    #: the as-of-date column of a daily mart (one immutable partition per night), else None
    partition_by: str | None
    tests: tuple[DbtTest, ...] = ()
    #: the month column of a monthly mart (meta ``partition_month_column``: the first day of the
    #: row's month or quarter; closed months change only on a restatement), else None
    month_column: str | None = None

    def tests_on(self, column: str) -> list[DbtTest]:
        return [t for t in self.tests if t.column == column]

    def key_tests(self) -> list[tuple[DbtTest, list[str]]]:
        """The mart's keys as its dbt tests declare them: ``(test, columns)`` per ``unique`` and
        ``unique_combination_of_columns`` test whose columns are literal (not rendered by Jinja)."""
        out = []
        for t in self.tests:
            if t.kind == "unique" and t.column:
                out.append((t, [t.column]))
            elif t.kind == "unique_combination_of_columns":
                cols = _values(t.arguments.get("columns"))
                if cols and all(isinstance(c, str) for c in cols):
                    out.append((t, [str(c) for c in cols]))
        return out


def load_mart_models(manifest: Path, schema: str = "marts") -> dict[str, MartModel]:
    """``{mart: MartModel}`` for every model dbt builds into ``schema``. Raises
    :class:`ManifestError` when the manifest is missing or unreadable."""
    try:
        data = json.loads(Path(manifest).read_text())
    except FileNotFoundError as exc:
        raise ManifestError(
            f"no dbt manifest at {manifest}: run dbt for this date first (`segment-mart build "
            "--run-date D`); the marts' columns, types and tests are read from it") from exc
    except (OSError, ValueError) as exc:
        raise ManifestError(f"cannot read dbt's manifest {manifest}: {exc}. Run dbt again") from exc
    nodes: dict[str, Any] = data.get("nodes") or {}
    models = {uid: n for uid, n in nodes.items()
              if n.get("resource_type") == "model" and n.get("schema") == schema}
    tests: dict[str, list[DbtTest]] = {uid: [] for uid in models}
    for uid, node in nodes.items():
        if node.get("resource_type") != "test":
            continue
        meta = node.get("test_metadata") or {}
        arguments = {k: v for k, v in (meta.get("kwargs") or {}).items() if k not in ("model", "column_name")}
        test = DbtTest(
            unique_id=uid, name=node.get("name", uid), kind=meta.get("name") or "singular",
            column=node.get("column_name") or (meta.get("kwargs") or {}).get("column_name"),
            arguments=arguments, where=(node.get("config") or {}).get("where"),
        )
        attached = node.get("attached_node")
        targets = [attached] if attached else (node.get("depends_on") or {}).get("nodes") or []
        for target in targets:
            if target in tests:
                tests[target].append(test)
    out: dict[str, MartModel] = {}
    for uid, node in models.items():
        config = node.get("config") or {}
        patch = str(node.get("patch_path") or node.get("original_file_path") or "")
        out[node["name"]] = MartModel(
            name=node["name"],
            yaml_path=patch.split("://", 1)[-1],
            columns=tuple((c, v.get("data_type")) for c, v in (node.get("columns") or {}).items()),
            contract_enforced=bool((config.get("contract") or {}).get("enforced")),
            partition_by=(config.get("meta") or {}).get("partition_date_column"),
            tests=tuple(sorted(tests[uid], key=lambda t: t.name)),
            month_column=(config.get("meta") or {}).get(MONTH_META),
        )
    return out


# --------------------------------------------------------------------------- restatements


@dataclass(frozen=True)
class Restatement:
    """A suite expectation that checks what a dbt test on the same column already checks."""

    expectation: ExpectationSpec
    test: DbtTest
    #: True: the two say the same (redundant); False: they disagree; None: not comparable
    #: (dbt reads the values from a seed, a var or a where-filtered subset)
    agrees: bool | None
    detail: str

    def message(self, suite: MartSuite, model: MartModel) -> str:
        verdict = {True: "says the same as", False: "disagrees with", None: "restates"}[self.agrees]
        return (
            f"{suite.path.name} {verdict} {self.test.describe()} declared in {model.yaml_path}"
            + (f": {self.detail}" if self.detail else "")
            + ". A column's nullability and allowed values live in the dbt model YAML only; remove "
            f"this expectation from {suite.path.name} (change the dbt test if the rule itself is wrong)"
        )


def _values(value: Any) -> list[Any] | None:
    """A literal list of values, or None when dbt renders them from Jinja (a var, a macro)."""
    if isinstance(value, list) and not any(isinstance(v, str) and "{{" in v for v in value):
        return value
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _same_bound(a: Any, b: Any) -> bool:
    x, y = _number(a), _number(b)
    if a is None or b is None:
        return a is None and b is None
    return x is not None and y is not None and math.isclose(x, y, rel_tol=0, abs_tol=1e-12)


def _compare_sets(spec: ExpectationSpec, test: DbtTest, column: str) -> tuple[bool | None, str] | None:
    """An allowed-values expectation against dbt's allowed values of ``column``; None when
    ``spec`` is a pair check whose values for ``column`` dbt allows (a cross-column rule, not a
    restatement of the column's values)."""
    if test.kind == "relationships":
        return None, (f"dbt reads the allowed values from {test.arguments.get('to')} "
                      f"(column {test.arguments.get('field')})")
    dbt_values = _values(test.arguments.get("values"))
    if dbt_values is None:
        return None, f"dbt renders the allowed values from {test.arguments.get('values')!r}"
    theirs = [str(v) for v in dbt_values]
    if spec.type == "expect_column_pair_values_to_be_in_set":
        index = 0 if spec.kwargs.get("column_A") == column else 1
        used = sorted({str(pair[index]) for pair in spec.kwargs.get("value_pairs_set") or []} - set(theirs))
        return None if not used else (False, f"dbt allows {theirs}; the suite's pairs use {used}")
    if spec.type in ("expect_column_values_to_match_regex", "expect_column_values_to_match_regex_list"):
        patterns = spec.kwargs.get("regex_list") or [spec.kwargs.get("regex") or ""]
        rejected = [v for v in theirs if not any(re.search(str(rx), v) for rx in patterns)]
        return (True, f"every value dbt allows matches {patterns}") if not rejected else (
            False, f"dbt allows {rejected}, which the suite's pattern rejects")
    if spec.type == "expect_column_values_to_not_be_in_set":
        banned = sorted({str(v) for v in spec.kwargs.get("value_set") or []} & set(theirs))
        return (True, "") if not banned else (False, f"dbt allows {banned}, which the suite forbids")
    if test.where:
        return None, f"the dbt test checks only the rows where {test.where}"
    mine = [str(v) for v in spec.kwargs.get("value_set") or []]
    missing, extra = sorted(set(theirs) - set(mine)), sorted(set(mine) - set(theirs))
    if not missing and not extra:
        return True, f"both allow {theirs}"
    parts = ([f"the suite lacks {missing}"] if missing else []) + ([f"the suite adds {extra}"] if extra else [])
    return False, f"dbt allows {theirs}; " + " and ".join(parts)


def _restates(spec: ExpectationSpec, test: DbtTest, column: str) -> tuple[bool | None, str] | None:
    """How ``spec`` relates to ``test`` on the same column: None when it checks something else."""
    etype = spec.type
    if etype == "expect_column_values_to_not_be_null" and test.kind == "not_null":
        return (True, "") if not test.where else (
            False, f"dbt requires a value only where {test.where}; the suite everywhere")
    if etype == "expect_column_values_to_be_unique" and test.kind == "unique":
        return True, ""
    if etype in ("expect_column_values_to_be_in_set", "expect_column_values_to_match_regex",
                 "expect_column_values_to_match_regex_list", "expect_column_values_to_not_be_in_set",
                 "expect_column_pair_values_to_be_in_set") and test.kind in ALLOWED_VALUE_TESTS:
        return _compare_sets(spec, test, column)
    if etype == "expect_column_values_to_be_between" and test.kind == "accepted_range":
        same = (_same_bound(spec.kwargs.get("min_value"), test.arguments.get("min_value"))
                and _same_bound(spec.kwargs.get("max_value"), test.arguments.get("max_value")))
        bounds = (f"dbt: {test.arguments.get('min_value')}..{test.arguments.get('max_value')}, suite: "
                  f"{spec.kwargs.get('min_value')}..{spec.kwargs.get('max_value')}")
        return (True, bounds) if same and not test.where else (False, bounds)
    return None


def restatements(suite: MartSuite, model: MartModel) -> list[Restatement]:
    """Every expectation of ``suite`` that checks a column fact a dbt test of ``model`` declares
    (not null, unique, allowed values or set, accepted range, compound uniqueness)."""
    out = []
    for spec in suite.expectations:
        if spec.type == "expect_compound_columns_to_be_unique":
            wanted = set(spec.kwargs.get("column_list") or [])
            for test in model.tests:
                if test.kind == "unique_combination_of_columns" and set(test.arguments.get("columns") or []) == wanted:
                    out.append(Restatement(spec, test, True, f"columns {sorted(wanted)}"))
            continue
        columns = [spec.kwargs[k] for k in ("column", "column_A", "column_B") if isinstance(spec.kwargs.get(k), str)]
        for column in columns:
            for test in model.tests_on(column):
                found = _restates(spec, test, column)
                if found is not None:
                    out.append(Restatement(spec, test, *found))
    return out
