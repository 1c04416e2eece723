"""What a failing or warning dbt data test found, in words a user can act on.

dbt reports a failed test as "Got 1 result, configured to fail if != 0": it names neither the
rows nor what to do. A data test that stores its failures (``store_failures=true``: the rows are
a relation in the warehouse) and states its fix in its config (``meta={'action': '...'}``, e.g.
``dbt_project/data-tests/assert_revenue_currencies_have_fx_rates.sql``) is explained here, for
the dbt runner's error (a failing test stops the night at the build, before the gate) and the
quality gate's dbt checks (a warning, such as the orphan-usage one): the rows it found (the
missing currency and its subscriptions; the accounts of orphan usage) and the action.

Reads the stored rows read-only: from the DuckDB warehouse, or on Spark from the relation's
Parquet files (``pipelines/build/spark_marts.py``).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.build.dbt_results import NodeResult, RunResults, RunResultsError

if TYPE_CHECKING:
    import duckdb

    from pipelines.settings import Settings

log = logging.getLogger(__name__)

#: Rows of a failing test named in a message.
ROWS_NAMED = 5


def _parts(relation_name: str) -> tuple[str, str] | None:
    """(schema, name) of a relation name such as ``"segment_mart"."dbt_test__audit"."x"``."""
    parts = [p.strip('"`') for p in re.findall(r'"[^"]*"|`[^`]*`|[^.]+', relation_name)]
    return (parts[-2], parts[-1]) if len(parts) >= 2 else None


def stored_rows(settings: Settings, relation_name: str | None, con: duckdb.DuckDBPyConnection | None = None,
                limit: int = ROWS_NAMED) -> tuple[list[dict[str, Any]], int | None]:
    """The first ``limit`` rows a test stored and how many it stored (([], None) when they cannot
    be read: nothing is raised, the caller's message just has no rows). ``con``: a connection on
    which ``<schema>.<name>`` resolves (the gate's read-only one), else one is opened."""
    import duckdb

    from pipelines.quality.model import jsonable
    from pipelines.warehouse import WarehouseLocked, in_memory, open_connection

    parts = _parts(relation_name or "")
    if parts is None:
        return [], None
    schema, name = parts
    own = None
    try:
        if settings.engine == "spark":
            from pipelines.build.spark_marts import relation_dir

            folder = relation_dir(settings, schema, name)
            own = in_memory()
            relation = f"read_parquet('{str(folder).replace(chr(39), chr(39) * 2)}/**/*.parquet')"
        else:
            if con is None:
                own = open_connection(settings.warehouse, read_only=True, wait_seconds=0)
            relation = f'"{schema}"."{name}"'
        cur = con if own is None else own
        total = cur.execute(f"select count(*) from {relation}").fetchall()[0][0]
        result = cur.execute(f"select * from {relation} limit {int(limit)}")
        names = [d[0] for d in result.description or []]
        return [jsonable(dict(zip(names, r, strict=True))) for r in result.fetchall()], int(total)
    except (duckdb.Error, OSError, WarehouseLocked) as exc:
        log.info("could not read the stored failures of %s: %s", relation_name, exc)
        return [], None
    finally:
        if own is not None:
            own.close()


def test_actions(manifest_path: Path) -> dict[str, str]:
    """``meta.action`` of every test in a dbt manifest.json, by unique id."""
    try:
        nodes = json.loads(Path(manifest_path).read_text()).get("nodes", {})
    except (OSError, ValueError):
        return {}
    return {uid: str(action) for uid, node in nodes.items()
            if node.get("resource_type") == "test"
            and (action := ((node.get("config") or {}).get("meta") or {}).get("action"))}


def _row_text(row: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in row.items() if v is not None)


def explain(settings: Settings, node: NodeResult, actions: dict[str, str],
            con: duckdb.DuckDBPyConnection | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(sentence naming the rows the test found and what to do, the rows) for a failed or warned
    test; ("", []) when it stored nothing and states no action."""
    rows, total = stored_rows(settings, node.relation_name, con) if node.relation_name else ([], None)
    text = ""
    if rows:
        more = (total or len(rows)) - len(rows)
        schema_name = ".".join(_parts(node.relation_name or "") or ())
        text = "found: " + "; ".join(_row_text(r) for r in rows) + (
            f"; and {more} more (all in {schema_name})" if more > 0 else "")
    action = actions.get(node.unique_id)
    if action:
        text += (". " if text else "") + f"What to do: {action}"
    return text, rows


def explain_failures(settings: Settings, results_file: Path, manifest_path: Path | None = None) -> list[str]:
    """One line per failed node of a dbt run (``NodeResult.describe``), with what a failed data
    test found and what to do (for the dbt runner's error message)."""
    try:
        results = RunResults.load(results_file)
    except RunResultsError:
        return []
    actions = test_actions(manifest_path or Path(results_file).with_name("manifest.json"))
    lines = []
    for node in results.failures:
        text = node.describe()
        if node.is_test:
            extra, _ = explain(settings, node, actions)
            if extra:
                text += f"\n      {extra}"
        lines.append(text)
    return lines
