"""DuckDB vs a Spark cluster: the same nights built, gated and published by the same code on
both engines give the same marts and the same published files.

The cluster is the project's own (``pipelines.build.spark_cluster``): a standalone master, two
workers and a Thrift server, each a JVM of its own on 127.0.0.1 with a bounded heap; dbt builds
over Thrift (target ``spark_thrift``), and the gate and the publish read the marts' Parquet from
the warehouse location the Thrift server writes to (setting ``spark_warehouse``).

A small generated business (accounts, a year and a bit of billing, usage) lands once, three
nights, plus two accounts written into the drops by hand (:func:`add_lifecycle_accounts`): one
that churns on night 2 and returns on night 3, one whose new subscription on night 3 crosses
the Tier 2 ARR threshold (an upgrade). Usage comes in both shapes (issue 18): every other
account with usage delivers it as daily counts per subscription with active users
(:func:`deliver_usage_as_counts`), the others as events, so the counts' own models and the Spark
increment are built and compared on the cluster every night too. Each engine has its own
pipeline home and ingests the drops night by night into its own raw lake. DuckDB runs every night whole
(``nightly.run_night``, what ``segment-mart run`` does). On the cluster, nights 1 and 2 run check,
ingest, the models, gate and publish; night 3 runs whole with ``run_night``: seeds, models,
contracts, every unit test and every data test (nothing excluded: dbt's ``not_null``,
``unique`` and ``accepted_values`` too), the quality gate and the publish.

After each night every mart and every type 2 history is compared row by row (Spark's marts
read as the gate reads them). Equal means: the same columns (for marts also the same
types), the same number of rows and, after sorting, the same values; DOUBLE columns to a
relative and absolute tolerance of 1e-9 (the histories' floats: the engines sum in
different orders), every other type exactly. The published manifests must agree too: every
mart's columns, row count and content checksum, the dataset checksum, and what each later
night's publish re-used from the one before.

This module is the `spark` marker: `make test` runs it in a pytest process of its own next to
the rest of the suite, `make test-spark` alone (docs/spark.md has the measured time). The last
test stops the cluster and checks that nothing of it is left.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import math
import shutil
import socket
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.build import spark_cluster
from pipelines.build.dbt import DbtFailed, run_dbt, run_results_path
from pipelines.build.dbt_results import RunResults
from pipelines.build.marts import open_marts
from pipelines.build.spark_marts import attach_spark_relations
from pipelines.contract import default_in_use
from pipelines.lab.generate import generate
from pipelines.lab.generate.daily_counts import roll_up_events
from pipelines.ops import nightly
from pipelines.release import Manifest, open_published, read_manifest
from pipelines.settings import Settings
from tests.listening import listening_addresses

#: the module builds three nights on both engines and starts and stops a cluster (docs/spark.md
#: has the measured time); beyond the suite's default per-test timeout, within CI's 90 minutes
pytestmark = [pytest.mark.spark, pytest.mark.timeout(5400)]

ACCOUNTS = 30
START = dt.date(2025, 3, 1)
DAYS = 400
DROP_DAYS = 3
SEED = 5
#: floats: DuckDB and Spark add them up in different orders
REL_TOL = ABS_TOL = 1e-9
#: compared besides the marts: the type 2 histories that replace dbt's snapshots
SCHEMAS = ("marts", "snapshots")
MODELS_ONLY = ("--exclude", "resource_type:test", "resource_type:unit_test")
#: the accounts written into the drops by hand (add_lifecycle_accounts)
RETURNING = "acc_returning"
UPGRADING = "acc_upgrading"
#: usage comes in both shapes (docs/extract-contract.md): events, and daily counts per subscription
#: with active users for every other generated account (deliver_usage_as_counts)
IN_USE = (*default_in_use(), "usage/daily_counts")
#: compared besides SCHEMAS: the counts' own model (issue 18), not published
COUNTS_RESOLVED = "intermediate.int_usage_daily_counts_resolved"


def _duckdb_relations(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, list[tuple[str, str]]]:
    rows = con.execute(
        """select table_name, column_name, data_type from information_schema.columns
        where table_schema = ? order by table_name, ordinal_position""",
        [schema],
    ).fetchall()
    relations: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        relations.setdefault(table, []).append((column, data_type))
    return relations


def _rows(con: duckdb.DuckDBPyConnection, relation: str, columns: list[tuple[str, str]]) -> list[tuple]:
    """All rows, sorted by every non-float column first (floats may differ in the last bits)."""
    exact = [f'"{c}"' for c, t in columns if t not in ("DOUBLE", "FLOAT")]
    floats = [f'"{c}"' for c, t in columns if t in ("DOUBLE", "FLOAT")]
    order = ", ".join(f"{c} nulls first" for c in exact + floats) or "1"
    select = ", ".join(f'"{c}"' for c, _ in columns)
    return con.execute(f"select {select} from {relation} order by {order}").fetchall()


def _same_value(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        # Spark writes TIMESTAMP as UTC instants (DuckDB reads TIMESTAMPTZ), DuckDB keeps
        # naive UTC times: compare the instants
        return _naive_utc(a) == _naive_utc(b)
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=ABS_TOL)  # type: ignore[arg-type]
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return Decimal(str(a)) == Decimal(str(b))
    return a == b


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def compare_engines(duck_settings: Settings, spark_settings: Settings, also: tuple[str, ...] = ()) -> dict[str, int]:
    """Assert every relation of SCHEMAS, and each ``schema.name`` of ``also``, is the same on both
    engines; returns rows per relation.

    Spark's marts are read the way the gate and the publish read them (``open_marts``: views
    with the contract's columns and types); its histories and ``also`` through
    ``attach_spark_relations`` in DuckDB's column order."""
    counts: dict[str, int] = {}
    with duckdb.connect(str(duck_settings.warehouse), read_only=True) as duck:
        expected = {s: _duckdb_relations(duck, s) for s in SCHEMAS}
        spark = open_marts(spark_settings)
        try:
            for schema in SCHEMAS:
                if schema == "marts":
                    attached = [r for r, in spark.execute(
                        "select table_name from information_schema.tables where table_schema = 'marts'"
                    ).fetchall()]
                else:
                    order = {name: [c for c, _ in cols] for name, cols in expected[schema].items()}
                    attached = attach_spark_relations(spark, spark_settings, schema, order, column_order=order)
                assert sorted(attached) == sorted(expected[schema]), f"{schema}: relations differ"
                for name, columns in expected[schema].items():
                    relation = f"{schema}.{name}"
                    spark_columns = _duckdb_relations(spark, schema)[name] if schema == "marts" else [
                        (r[0], None) for r in spark.execute(f"select * from {relation} limit 0").description]
                    want_columns = columns if schema == "marts" else [(c, None) for c, _ in columns]
                    # marts: names and types (the published files' schema); histories: names
                    assert spark_columns == want_columns, f"{relation}: columns differ"
                    counts[relation] = _assert_same_rows(duck, spark, relation, columns)
            for relation in also:
                schema, name = relation.split(".")
                columns = _duckdb_relations(duck, schema)[name]
                assert attach_spark_relations(spark, spark_settings, schema, [name],
                                              column_order={name: [c for c, _ in columns]}) == [name], relation
                counts[relation] = _assert_same_rows(duck, spark, relation, columns)
        finally:
            spark.close()
    return counts


def _assert_same_rows(duck: duckdb.DuckDBPyConnection, spark: duckdb.DuckDBPyConnection, relation: str,
                      columns: list[tuple[str, str]]) -> int:
    want, got = _rows(duck, relation, columns), _rows(spark, relation, columns)
    assert len(got) == len(want), f"{relation}: {len(got)} rows on Spark, {len(want)} on DuckDB"
    for i, (w, g) in enumerate(zip(want, got, strict=True)):
        bad = [(c, w[j], g[j]) for j, (c, _) in enumerate(columns) if not _same_value(w[j], g[j])]
        assert not bad, f"{relation} row {i}: (column, duckdb, spark) {bad[:5]}"
    return len(want)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _append_rows(path: Path, rows: list[dict[str, str]]) -> None:
    """Add rows to a generated CSV extract in its own column order."""
    with path.open(newline="") as f:
        header = next(csv.reader(f))
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, quoting=csv.QUOTE_MINIMAL)
        writer.writerows([{c: row.get(c, "") for c in header} for row in rows])


def add_lifecycle_accounts(landing: Path, run_dates: list[dt.date]) -> None:
    """Two accounts the parity must cover, in the nightly snapshots of CRM and billing:

    - ``acc_returning``: a monthly customer since 2025-06-01; night 2's snapshot ends its
      subscription the day before (churned: no tier on night 2), night 3's adds a new one
      starting that day (returned: a tier again, change_type ``reactivated``);
    - ``acc_upgrading``: USD 1,500 a month (ARR 18,000: Scale) since 2025-06-01; night 3's
      snapshot ends it the day before and starts USD 3,000 a month (ARR 36,000, over the
      Tier 2 minimum of 25,000: Core, an upgrade, which takes effect at once).
    """
    first, second, third = run_dates
    for run_date in run_dates:
        drop = landing / run_date.isoformat()
        _append_rows(drop / "crm" / "accounts.csv", [
            {"account_id": account, "account_name": name, "industry": "Software", "employee_count": "120",
             "country": "US", "created_date": "2025-05-20", "is_marquee_logo": "false",
             "is_reference": "false", "is_partner": "false"}
            for account, name in ((RETURNING, "Returning Ltd"), (UPGRADING, "Upgrading Inc"))])

        def sub(sub_id: str, account: str, start: str, end: str, amount: str) -> dict[str, str]:
            return {"subscription_id": sub_id, "account_id": account, "plan": "growth", "product_line": "core",
                    "start_date": start, "end_date": end, "billing_interval": "month", "amount": amount,
                    "currency": "USD", "seats": "20", "is_per_seat": "false"}

        churned = (second - dt.timedelta(days=1)).isoformat() if run_date >= second else ""
        upgraded = (third - dt.timedelta(days=1)).isoformat() if run_date >= third else ""
        subs = [sub("sub_returning_1", RETURNING, "2025-06-01", churned, "2000.00"),
                sub("sub_upgrading_1", UPGRADING, "2025-06-01", upgraded, "1500.00")]
        if run_date >= third:
            subs += [sub("sub_returning_2", RETURNING, third.isoformat(), "", "2000.00"),
                     sub("sub_upgrading_2", UPGRADING, third.isoformat(), "", "3000.00")]
        _append_rows(drop / "billing" / "subscriptions.csv", subs)
    assert first < second < third


def deliver_usage_as_counts(landing: Path, run_dates: list[dt.date]) -> set[str]:
    """Usage in both shapes at once (issue 18): every other account with usage (by id) delivers it
    as daily counts per subscription with active users instead of events, as a product-analytics
    export would (``roll_up_events``: a later drop restates the days its late events touched, so
    the Spark increment has whole activity dates to overwrite); the other accounts keep their
    events. Returns the accounts whose usage comes as counts."""
    by_drop: dict[dt.date, tuple[list[str], list[list[str]]]] = {}
    for run_date in run_dates:
        with (landing / run_date.isoformat() / "usage" / "events.csv").open(newline="") as f:
            reader = csv.reader(f)
            by_drop[run_date] = (next(reader), list(reader))
    header = by_drop[run_dates[0]][0]
    key = header.index("account_id")
    accounts = sorted({row[key] for _, rows in by_drop.values() for row in rows})
    counted = set(accounts[1::2])
    rollup = landing.parent / "counts_rollup"
    for run_date, (header, rows) in by_drop.items():
        drop, scratch = landing / run_date.isoformat(), rollup / run_date.isoformat()
        (scratch / "usage").mkdir(parents=True)
        (scratch / "billing").mkdir()
        shutil.copyfile(drop / "billing" / "subscriptions.csv", scratch / "billing" / "subscriptions.csv")
        for path, keep in ((drop / "usage" / "events.csv", False), (scratch / "usage" / "events.csv", True)):
            with path.open("w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(header)
                writer.writerows(row for row in rows if (row[key] in counted) == keep)
    assert roll_up_events(rollup, run_dates, with_users=True, by_subscription=True) > 0
    for run_date in run_dates:
        shutil.move(rollup / run_date.isoformat() / "usage" / "daily_counts.csv",
                    landing / run_date.isoformat() / "usage" / "daily_counts.csv")
    shutil.rmtree(rollup)
    return counted


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The Spark home's settings, with its cluster running (free ports: other clusters may run
    on this machine); stopped at the end of the module (also by test_cluster_stops_cleanly)."""
    root = tmp_path_factory.mktemp("parity")
    settings = Settings(
        home=root / "spark", engine="spark", dbt_target="spark_thrift", landing_dir=root / "landing",
        spark_master_port=_free_port(), spark_thrift_port=_free_port(), entities_in_use=IN_USE,
    )
    try:
        spark_cluster.start(settings)
        yield settings
    finally:
        spark_cluster.stop(settings)


@pytest.fixture(scope="module")
def nights(cluster: Settings) -> Iterator[dict]:
    """Each night on both engines, from the same landing folder, each in its own pipeline home.

    Spark runs without generated code (SEGMENT_MART_DBT_SPARK_CODEGEN=false, dbt_project/profiles.yml):
    on 30 accounts compiling each stage's Java costs more CPU than it saves."""
    with pytest.MonkeyPatch.context() as env, _cluster_failure_explained(cluster):
        env.setenv("SEGMENT_MART_DBT_SPARK_CODEGEN", "false")
        yield from _nights(cluster)


#: what in the cluster's and dbt's logs says why a night failed
LOG_PROBLEM = ("ERROR", "Exception", "OutOfMemory", "Killed", "[error]")
#: lines with those words that every good night logs too
LOG_NOISE = ("pipeout", "SCHEMA_NOT_FOUND", "ERROR=0", "logging to ERROR")


@contextlib.contextmanager
def _cluster_failure_explained(settings: Settings) -> Iterator[None]:
    """A night that fails on the cluster fails the module with a short message that says why:
    the error, which of the cluster's JVMs are still alive, and the last problems in their logs
    and dbt's. Every test that shares the fixture repeats it, so a whole traceback (run_dbt's
    source included) pushed the cause out of the part of CI's output that was kept."""
    try:
        yield
    except Exception as exc:
        alive = sorted(p.name for p in spark_cluster.processes(settings))
        lines = [f"{type(exc).__name__}: {exc}", f"cluster JVMs alive: {', '.join(alive) or 'none'}"]
        logs = sorted((spark_cluster.cluster_dir(settings) / "logs").glob("*.log"))
        for log in [*logs, settings.home / "dbt_logs" / "dbt.log"]:
            try:
                text = log.read_text(errors="replace").splitlines()
            except OSError:
                continue
            problems = [line[:300] for line in text
                        if any(word in line for word in LOG_PROBLEM) and not any(n in line for n in LOG_NOISE)][-12:]
            if problems:
                lines += [f"-- last problems in {log.name}:", *problems]
        pytest.fail("\n".join(lines), pytrace=False)


def _nights(cluster: Settings) -> Iterator[dict]:
    spark = cluster
    landing = spark.landing
    duck = Settings(home=spark.home.parent / "duckdb", engine="duckdb", landing_dir=landing, entities_in_use=IN_USE)
    summary = generate(landing, accounts=ACCOUNTS, start_date=START, days=DAYS, drop_days=DROP_DAYS, seed=SEED)
    run_dates = [dt.date.fromisoformat(str(d)) for d in summary.run_dates]
    # before the hand-written accounts (no usage), from the generator's clean CSV
    counted = deliver_usage_as_counts(landing, run_dates)
    add_lifecycle_accounts(landing, run_dates)
    compared: dict[dt.date, dict[str, int]] = {}
    published: dict[dt.date, dict[str, Manifest]] = {}
    with nightly.dbt_session(duck) as duck_dbt:  # DuckDB's nights in one dbt process
        for i, run_date in enumerate(run_dates):
            nightly.run_night(duck, run_date, dbt=duck_dbt)
            if i == len(run_dates) - 1:
                nightly.run_night(spark, run_date)
            else:
                nightly.check_extracts(spark, run_date)
                nightly.ingest_sources(spark, run_date)
                run_dbt(spark, run_date, "build", *MODELS_ONLY)
                nightly.publish(spark, run_date, nightly.quality_gate(spark, run_date))
            compared[run_date] = compare_engines(duck, spark, also=(COUNTS_RESOLVED,))
            published[run_date] = {"duckdb": read_manifest(duck), "spark": read_manifest(spark)}
    night_results = RunResults.load(run_results_path(spark, run_dates[-1]))
    duck_results = RunResults.load(run_results_path(duck, run_dates[-1]))
    # a night leaves the unit tests out (pipelines.ops.nightly.build): run them all on the cluster here
    try:
        unit_results = run_dbt(spark, run_dates[-1], "test", "--select", "test_type:unit")
    except DbtFailed:
        unit_results = run_results_path(spark, run_dates[-1])
    yield {"duckdb": duck, "spark": spark, "run_dates": run_dates, "counted": counted, "compared": compared,
           "published": published,
           "night_results": night_results, "duck_results": duck_results, "unit_tests": RunResults.load(unit_results)}


def test_every_mart_and_history_is_the_same_on_both_engines(nights: dict) -> None:
    for run_date, counts in nights["compared"].items():
        # every published mart was compared (17 today), not a fixed count that goes stale
        compared = {r.split(".", 1)[1] for r in counts if r.startswith("marts.")}
        assert compared == set(nights["published"][run_date]["duckdb"].marts), run_date
        assert len(compared) >= 15, run_date
        # the comparison saw data, not empty tables
        for relation in ("marts.dim_accounts", "marts.fct_account_tiers_daily", "marts.fct_mrr_account_monthly",
                         "marts.rpt_segment_retention_monthly", "snapshots.snap_crm__accounts"):
            assert counts[relation] > 0, (run_date, relation)


def test_daily_counts_build_the_same_marts_on_both_engines(nights: dict) -> None:
    """Usage delivered as daily counts (``usage/daily_counts``, issue 18) beside events: the counts'
    own model (subscriptions resolved to accounts, the latest drop of a key, the Spark increment
    overwriting whole activity dates) held the same rows on both engines after every night, and
    the usage measures built from it reached the health score of the accounts whose usage comes
    only as counts (every mart equal on both engines: the first test). This replaces the
    session-mode module test_daily_counts_parity, which built two more nights of a separate
    business on each engine (a third of this marker's time) to prove the same on Spark."""
    for run_date, counts in nights["compared"].items():
        assert counts[COUNTS_RESOLVED] > 0, run_date
    counted = sorted(nights["counted"])
    assert counted
    with duckdb.connect(str(nights["duckdb"].warehouse), read_only=True) as con:
        live, scored = con.execute(
            f"""select count(*), count(product_usage_score) from marts.fct_account_health_daily
            where as_of_date = ? and account_status = 'live' and account_id in ({", ".join("?" * len(counted))})""",
            [nights["run_dates"][-1], *counted]).fetchone()
        resolved = con.execute(f"select count(distinct account_id) from {COUNTS_RESOLVED}").fetchone()[0]
    assert live > 0 and scored > 0, (live, scored)  # the counts reached the health score on both engines
    assert 0 < resolved <= len(counted)  # only the counted accounts' usage came as counts


def test_the_nights_hold_a_return_and_an_upgrade(nights: dict) -> None:
    """The lifecycle the parity must cover happened, as the published tier history (equal on
    both engines, above) shows it: the returning account's new tier period on night 3 is
    `reactivated` after a night without a tier, the upgrading account's is an `upgrade`."""
    third = nights["run_dates"][-1]
    with open_published(nights["spark"]) as con:
        periods = con.execute(
            "select account_id, valid_from, change_type, assigned_tier from marts.dim_account_tier_history "
            "where account_id in (?, ?) order by account_id, valid_from", [RETURNING, UPGRADING]).fetchall()
    by_account: dict[str, list[tuple]] = {}
    for account, valid_from, change, tier in periods:
        by_account.setdefault(account, []).append((valid_from, change, tier))
    assert by_account[RETURNING][-1][:2] == (third, "reactivated"), by_account[RETURNING]
    assert by_account[UPGRADING][-1][:3] == (third, "upgrade", "Core"), by_account[UPGRADING]
    assert by_account[UPGRADING][-2][2] == "Scale", by_account[UPGRADING]


def test_spark_night_ran_every_test(nights: dict) -> None:
    """The last night's build on the cluster ran every data test of the project, dbt's built-in
    not_null, unique and accepted_values included, and all passed; then every unit test (a
    production night leaves them out) passed on the cluster too."""
    results, duck = nights["night_results"], nights["duck_results"]
    assert {r.resource_type for r in results.tests} == {"test"}
    names = sorted(r.name for r in results.tests)
    assert names == sorted(r.name for r in duck.tests)
    for kind in ("not_null_", "unique_", "accepted_values_", "relationships_"):
        assert any(n.startswith(kind) for n in names), kind
    assert len(names) >= 500
    assert not results.failures
    units = nights["unit_tests"]
    # the project's on-run-start/end hooks run with any dbt command and report as 'operation'
    unit_results = [r for r in units.results if r.resource_type != "operation"]
    assert {r.resource_type for r in unit_results} == {"unit_test"} and len(unit_results) >= 35
    assert not units.failures, [r.describe() for r in units.failures]


def test_both_engines_publish_the_same_marts(nights: dict) -> None:
    """The gate passed and the publish wrote the same BI files from Spark's Parquet: every
    mart with the same columns, row count and content checksum as the DuckDB night's."""
    for run_date, manifests in nights["published"].items():
        duck, spark = manifests["duckdb"], manifests["spark"]
        assert duck is not None and spark is not None, run_date
        assert duck.run_date == spark.run_date == run_date
        assert sorted(spark.marts) == sorted(duck.marts), run_date
        for mart, want in duck.marts.items():
            got = spark.marts[mart]
            assert (got.columns, got.rows, got.checksum) == (want.columns, want.rows, want.checksum), (run_date, mart)
        assert spark.dataset_checksum == duck.dataset_checksum, run_date
    # the published DuckDB file opens and holds the marts
    with open_published(nights["spark"]) as con:
        tiers = con.execute("select count(*) from marts.fct_account_tiers_daily").fetchone()[0]
    assert tiers == nights["published"][nights["run_dates"][-1]]["duckdb"].marts["fct_account_tiers_daily"].rows > 0


def test_spark_publish_writes_only_the_delta(nights: dict) -> None:
    """The fingerprint of Spark's partitioned Parquet is stable across builds: each later
    night's publish copied the previous release and re-linked the earlier nights' partitions,
    exactly as the DuckDB night did."""
    for run_date in nights["run_dates"][1:]:
        manifests = nights["published"][run_date]
        duck, spark = manifests["duckdb"].build, manifests["spark"].build
        assert spark["duckdb"] == "previous release + delta", run_date
        assert spark["partitions_linked"] > 0, run_date
        for key in ("partitions_written", "partitions_linked", "marts_linked"):
            assert spark[key] == duck[key], (run_date, key)


def test_daily_marts_keep_every_night_on_spark(nights: dict) -> None:
    """insert_overwrite added each night's partition and kept the earlier ones, in the warehouse
    the Thrift server writes to."""
    con = duckdb.connect()
    attach_spark_relations(con, nights["spark"], "marts", ["fct_account_tiers_daily"])
    dates = [r[0] for r in con.execute(
        "select distinct as_of_date from marts.fct_account_tiers_daily order by 1"
    ).fetchall()]
    assert dates == nights["run_dates"]


def test_cluster_ran_as_separate_processes_on_loopback(nights: dict) -> None:
    """Master, two workers with an executor each and the Thrift server, each its own JVM, and
    every port they listen on bound to 127.0.0.1."""
    settings = nights["spark"]
    procs = spark_cluster.processes(settings)
    names = sorted(p.name for p in procs)
    assert names == ["executor-worker-1", "executor-worker-2", "master", "thrift", "worker-1", "worker-2"]
    assert len({p.pid for p in procs}) == 6
    pids = {p.pid for p in procs}
    listening = listening_addresses(pids)
    assert listening, "no listening socket found for the cluster's processes"
    assert {addr for addr, _ in listening} == {"127.0.0.1"}, listening
    assert (("127.0.0.1", settings.spark_thrift_port) in listening
            and ("127.0.0.1", settings.spark_master_port) in listening), listening


def test_cluster_stops_cleanly(nights: dict) -> None:
    """`stop` ends every JVM of the cluster (executors included) and frees its ports."""
    settings = nights["spark"]
    pids = [p.pid for p in spark_cluster.processes(settings)]
    spark_cluster.stop(settings)
    assert spark_cluster.processes(settings) == []
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    for port in (settings.spark_thrift_port, settings.spark_master_port):
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
