"""The published DuckDB file opens in a DuckDB 1.x reader, the kind BI tools bundle.

A pinned old ``duckdb`` wheel is installed from PyPI into a throwaway virtual environment (made
with the project's ``uv``, kept under ``.cache/`` between runs, rebuilt on a clean clone), which
opens the published file read-only and runs typical BI queries: a group-by on the tier, a
fact joined to a dimension, and "NRR by tier last quarter" from the metrics views. Its answers
must equal the project's DuckDB's, and it must see every dbt description as a column comment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.release import open_published, published_db_path

ROOT = Path(__file__).resolve().parents[2]
#: The oldest DuckDB release the published file promises to open in (storage version v1.0.0,
#: ``settings.published_storage_version``). Pinned: a BI tool's bundled driver does not move.
BI_DUCKDB = "duckdb==1.0.0"
CACHE = ROOT / ".cache" / "bi-reader" / BI_DUCKDB.replace("==", "-")

QUERIES = {
    "tiers": """
        select assigned_tier, count(*) as accounts, sum(arr_reporting) as arr
        from marts.fct_account_tiers_daily
        where as_of_date = (select max(as_of_date) from marts.fct_account_tiers_daily)
        group by assigned_tier order by assigned_tier
    """,
    "mrr_by_region": """
        select a.region, f.month_start_date, sum(f.mrr_reporting) as mrr
        from marts.fct_mrr_account_monthly as f
        inner join marts.dim_accounts as a on a.account_id = f.account_id
        group by all order by all
    """,
    # "NRR by tier last quarter", as a BI user asks it of the published metrics views
    # (docs/metrics.md): the latest complete quarter, tiers in tier order
    "nrr_by_tier_last_quarter": """
        select segment_value as tier, nrr, grr, logo_retention, quick_ratio
        from metrics.retention_by_tier_quarter
        where period_start_date = (
            select max(period_start_date) from metrics.retention_by_tier_quarter where is_period_complete
        )
        order by segment_sort_key
    """,
    "comments": """
        select count(*) filter (where comment is not null and comment <> ''), count(*)
        from duckdb_columns() where schema_name = 'marts'
    """,
    "types": """
        select distinct data_type from duckdb_columns() where schema_name in ('marts', 'metrics') order by 1
    """,
}

READER = """
import json, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
queries = json.loads(sys.argv[2])
out = {"version": duckdb.__version__}
for name, sql in queries.items():
    out[name] = [[str(v) for v in row] for row in con.execute(sql).fetchall()]
print(json.dumps(out))
"""


@pytest.fixture(scope="session")
def old_duckdb_python() -> Path:
    """Python of a virtual environment with ``BI_DUCKDB`` (made once, then reused)."""
    python = CACHE / "bin" / "python"
    if not (CACHE / ".ready").exists():
        shutil.rmtree(CACHE, ignore_errors=True)
        uv = Path(sys.executable).with_name("uv")
        uv_cmd = [str(uv)] if uv.exists() else [sys.executable, "-m", "uv"]
        subprocess.run([*uv_cmd, "venv", "--quiet", "--python", sys.executable, str(CACHE)], check=True)
        subprocess.run([*uv_cmd, "pip", "install", "--quiet", "--python", str(python), BI_DUCKDB], check=True)
        (CACHE / ".ready").write_text(BI_DUCKDB + "\n")
    return python


def _run(python: Path, db: Path) -> dict:
    done = subprocess.run([str(python), "-c", READER, str(db), json.dumps(QUERIES)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_a_duckdb_1x_reader_opens_the_published_file(real_nights, old_duckdb_python):
    db = Path(os.path.realpath(published_db_path(real_nights.settings)))
    old = _run(old_duckdb_python, db)
    assert old["version"] == BI_DUCKDB.split("==")[1]
    con = open_published(real_nights.settings)
    try:
        for name in ("tiers", "mrr_by_region", "nrr_by_tier_last_quarter", "types"):
            new = [[str(v) for v in row] for row in con.execute(QUERIES[name]).fetchall()]
            assert old[name] == new, name
    finally:
        con.close()
    assert len(old["tiers"]) >= 2 and old["mrr_by_region"]
    nrr_by_tier = {tier: nrr for tier, nrr, *_ in old["nrr_by_tier_last_quarter"]}
    assert len(nrr_by_tier) >= 3 and all(nrr != "None" for nrr in nrr_by_tier.values()), nrr_by_tier
    with_comment, columns = (int(v) for v in old["comments"][0])
    assert with_comment == columns > 300
    # no type that BI drivers (ODBC/JDBC) map poorly: 128-bit or unsigned integers, intervals,
    # nested values (docs/quality-and-publish.md lists what BI users get)
    types = {t for (t,) in old["types"]}
    awkward = {t for t in types if t in {"HUGEINT", "UHUGEINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT",
                                         "INTERVAL", "TIME WITH TIME ZONE"}
               or t.endswith("[]") or t.startswith(("STRUCT", "MAP", "UNION"))}
    assert not awkward, awkward
