"""Tests of the synthetic landing-drop generator (pipelines.lab.generate)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from pipelines.contract import DUCKDB_TYPES, ENTITIES, Entity, get_entity
from pipelines.lab.generate import DEFECTS, GenerateSummary, generate
from pipelines.lab.generate.catalog import FX_TO_USD
from tests.drops import DEFAULT_ENTITIES

START = dt.date(2025, 1, 1)
PROJECT = Path(__file__).resolve().parents[2]
ROW_DEFECTS = [
    "unparseable_value", "missing_required", "bad_enum", "negative_amount", "end_before_start",
    "duplicate_key", "missing_file", "missing_column", "bad_encoding", "mass_quarantine",
]
FILE_DEFECTS = ["empty_file", "wrong_format"]


# --- reading and validating files against the contract -------------------------------------


def read_strings(path: Path) -> pa.Table:
    """Every column of a landing file as text (null = empty), in file order."""
    fmt = path.suffix.lstrip(".")
    if fmt == "csv":
        with path.open(encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh))
        opts = pacsv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=True)
        return pacsv.read_csv(path, convert_options=opts)
    if fmt == "parquet":
        table = pq.read_table(path)
        return pa.table({n: pc.cast(table.column(n), pa.string()) for n in table.column_names})
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    names = list(rows[0]) if rows else []
    def text(v: object) -> str | None:
        if v is None:
            return None
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)
    return pa.table({n: pa.array([text(r.get(n)) for r in rows], pa.string()) for n in names})


def violations(entity: Entity, path: Path) -> list[tuple[str, str, int]]:
    """Contract violations of one file: (check, column, 1-based data row)."""
    table = read_strings(path)
    table = table.append_column("_row", pa.array(np.arange(1, table.num_rows + 1)))
    con = duckdb.connect()
    con.register("t", table)
    found: list[tuple[str, str, int]] = []

    def rows(check: str, column: str, where: str) -> None:
        for (r,) in con.execute(f"select _row from t where {where} order by _row").fetchall():
            found.append((check, column, r))

    present = set(table.column_names)
    for c in entity.columns:
        if c.name not in present:
            if not c.optional_column:
                found.append(("missing_column", c.name, 0))
            continue
        col = f'"{c.name}"'
        if c.required:
            rows("required", c.name, f"{col} is null or trim({col}) = ''")
        rows("type", c.name, f"{col} is not null and try_cast({col} as {DUCKDB_TYPES[c.type]}) is null")
        if c.allowed:
            allowed = ", ".join(f"'{a}'" for a in c.allowed)
            rows("allowed", c.name, f"{col} is not null and lower({col}) not in ({allowed})")
        if c.pattern:
            rows("pattern", c.name, f"{col} is not null and not regexp_full_match({col}, '{c.pattern}')")
        if c.min_value is not None:
            rows("min", c.name, f"try_cast({col} as double) < {c.min_value}")
        if c.max_value is not None:
            rows("max", c.name, f"try_cast({col} as double) > {c.max_value}")
    typed = ", ".join(
        f'try_cast("{c.name}" as {DUCKDB_TYPES[c.type]}) as "{c.name}"' for c in entity.columns if c.name in present
    )
    con.execute(f"create view typed as select _row, {typed} from t")
    for check in entity.row_checks:
        for (r,) in con.execute(f"select _row from typed where not ({check.sql}) order by _row").fetchall():
            found.append((check.name, check.column, r))
    if entity.key in present:
        dup = con.execute(
            f'select _row from t where "{entity.key}" in '
            f'(select "{entity.key}" from t group by 1 having count(*) > 1) order by _row'
        ).fetchall()
        found += [("duplicate_key", entity.key, r) for (r,) in dup]
    return found


def entity_file(drop: Path, entity: Entity, fmt: str) -> Path:
    return drop / entity.source / f"{entity.name}.{fmt}"


def load(drop: Path, name: str, fmt: str = "csv") -> pd.DataFrame:
    source, entity = name.split("/")
    path = drop / source / f"{entity}.{fmt}"
    if fmt == "csv":
        opts = pacsv.ConvertOptions(strings_can_be_null=True)
        return pacsv.read_csv(path, convert_options=opts).to_pandas()
    return pq.read_table(path).to_pandas()


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary]:
    """400 accounts over 180 days, the last 6 days dropped, CSV."""
    out = tmp_path_factory.mktemp("world")
    summary = generate(out, accounts=400, start_date=START, days=180, drop_days=6, seed=7)
    return out, summary


@pytest.fixture(scope="module")
def history(world: tuple[Path, GenerateSummary]) -> dict[str, pd.DataFrame]:
    """The last drop's snapshots and every usage event delivered, typed."""
    out, summary = world
    last = out / summary.run_dates[-1].isoformat()
    frames = {e.qualified: load(last, e.qualified) for e in DEFAULT_ENTITIES if e.source != "usage"}
    events = []
    for d in summary.run_dates:
        ev = load(out / d.isoformat(), "usage/events")
        ev["run_date"] = pd.Timestamp(d)
        events.append(ev)
    frames["usage/events"] = pd.concat(events, ignore_index=True)
    subs = frames["billing/subscriptions"]
    for col in ("start_date", "end_date"):
        subs[col] = pd.to_datetime(subs[col])
    months = subs.billing_interval.map({"month": 1, "quarter": 3, "year": 12})
    subs["arr_usd"] = (
        subs.amount.astype(float) * np.where(subs.is_per_seat, subs.seats, 1) / months
        * subs.currency.map(FX_TO_USD) * 12
    )
    return frames


def active_arr(subs: pd.DataFrame, day: pd.Timestamp) -> pd.Series:
    active = (subs.start_date <= day) & (subs.end_date.isna() | (subs.end_date > day))
    return subs[active].groupby("account_id").arr_usd.sum()


def transitions(subs: pd.DataFrame) -> pd.DataFrame:
    """Consecutive periods of the same account and product line (next starts as prev ends)."""
    s = subs.sort_values(["account_id", "product_line", "start_date"])
    nxt = s.groupby(["account_id", "product_line"]).shift(-1)
    pairs = s.assign(next_start=nxt.start_date, next_seats=nxt.seats, next_plan=nxt.plan, next_arr=nxt.arr_usd)
    return pairs[pairs.next_start.notna() & (pairs.next_start == pairs.end_date)]


# --- API and determinism -------------------------------------------------------------------------


def test_layout_and_summary(world: tuple[Path, GenerateSummary]) -> None:
    out, summary = world
    assert summary.run_dates == [START + dt.timedelta(days=174 + i) for i in range(6)]
    expected = {out / d.isoformat() / e.source / f"{e.name}.csv" for d in summary.run_dates for e in DEFAULT_ENTITIES}
    assert set(summary.files) == expected
    assert {p.relative_to(out).parts[0] for p in out.rglob("*.csv")} == {d.isoformat() for d in summary.run_dates}
    for e in DEFAULT_ENTITIES:
        counted = sum(read_strings(entity_file(out / d.isoformat(), e, "csv")).num_rows for d in summary.run_dates)
        assert summary.rows[e.qualified] == counted > 0
    assert summary.defects == []
    assert summary.elapsed_seconds > 0
    # ~2.7 events per account and day over the whole history (the first drop holds the backlog)
    assert 2.2 < summary.rows["usage/events"] / (400 * 180) < 3.2


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    kwargs = {"accounts": 60, "start_date": START, "days": 40, "drop_days": 3}
    for fmt in ("csv", "parquet", "jsonl"):
        a = file_hashes(generate(tmp_path / f"a_{fmt}", seed=1, file_format=fmt, **kwargs).out_dir)
        b = file_hashes(generate(tmp_path / f"b_{fmt}", seed=1, file_format=fmt, **kwargs).out_dir)
        c = file_hashes(generate(tmp_path / f"c_{fmt}", seed=2, file_format=fmt, **kwargs).out_dir)
        assert a == b
        assert a.keys() == c.keys()
        assert all(a[k] != c[k] for k in a)


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="drop_days"):
        generate(tmp_path, accounts=5, start_date=START, days=5, drop_days=6)
    with pytest.raises(ValueError, match="file_format"):
        generate(tmp_path, accounts=5, start_date=START, days=5, file_format="xlsx")
    with pytest.raises(ValueError, match="unknown defect"):
        generate(tmp_path, accounts=5, start_date=START, days=5, defects=["nope"])
    with pytest.raises(ValueError, match="empty_file"):
        generate(tmp_path, accounts=5, start_date=START, days=5, defects=["empty_file", "duplicate_key"])


def test_progress_reports(tmp_path: Path) -> None:
    lines: list[str] = []
    generate(tmp_path, accounts=20, start_date=START, days=30, drop_days=1, progress=lines.append)
    assert 10 <= len(lines) <= 12
    assert "usage events written" in lines[-1]


# --- the contract --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_every_file_matches_the_contract(tmp_path: Path, fmt: str) -> None:
    summary = generate(tmp_path, accounts=120, start_date=START, days=60, drop_days=3, seed=3, file_format=fmt)
    for d in summary.run_dates:
        for e in DEFAULT_ENTITIES:
            path = entity_file(tmp_path / d.isoformat(), e, fmt)
            assert violations(e, path) == [], path


def test_csv_text_conventions(world: tuple[Path, GenerateSummary]) -> None:
    out, summary = world
    drop = out / summary.run_dates[-1].isoformat()
    raw = (drop / "crm/support_cases.csv").read_bytes()
    raw.decode("utf-8")
    lines = raw.decode().splitlines()
    header = lines[0].replace('"', "").split(",")
    assert header == [c.name for c in ENTITIES[2].columns]
    assert any(",," in line for line in lines[1:])  # empty field = null
    rows = list(csv.DictReader(lines))
    assert all(len(r["opened_at"]) == 19 and r["opened_at"][10] == " " for r in rows)
    subs = list(csv.DictReader((drop / "billing/subscriptions.csv").read_text().splitlines()))
    assert {r["is_per_seat"] for r in subs} == {"true", "false"}
    assert all(len(r["start_date"]) == 10 for r in subs)
    names = (drop / "crm/accounts.csv").read_text(encoding="utf-8")
    assert any(ord(ch) > 127 for ch in names)  # real UTF-8 names


def test_case_status_consistent_with_closed_at(history: dict[str, pd.DataFrame]) -> None:
    cases = history["crm/support_cases"]
    closed = cases.closed_at.notna()
    assert set(cases[closed].status) <= {"solved", "closed"}
    assert set(cases[~closed].status) <= {"open", "pending"}
    assert set(cases.status) == {"open", "pending", "solved", "closed"}
    assert cases[~closed].csat.isna().all()
    assert 0 < cases.csat.notna().mean() < 0.8


# --- business dynamics ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_snapshot(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """1,500 accounts, one drop: ARR per account as of the last day with firmographics."""
    out = tmp_path_factory.mktemp("big")
    summary = generate(out, accounts=1500, start_date=START, days=30, drop_days=1, seed=11,
                       events_per_account_day=0.2)
    drop = out / summary.run_dates[-1].isoformat()
    subs = load(drop, "billing/subscriptions")
    for col in ("start_date", "end_date"):
        subs[col] = pd.to_datetime(subs[col])
    months = subs.billing_interval.map({"month": 1, "quarter": 3, "year": 12})
    subs["arr_usd"] = (subs.amount.astype(float) * np.where(subs.is_per_seat, subs.seats, 1) / months
                       * subs.currency.map(FX_TO_USD) * 12)
    arr = active_arr(subs, pd.Timestamp(summary.run_dates[-1]))
    accounts = load(drop, "crm/accounts").set_index("account_id")
    return accounts.join(arr.rename("arr"), how="left").assign(active=lambda f: f.arr.notna())


def test_arr_is_concentrated_in_few_accounts(history: dict[str, pd.DataFrame]) -> None:
    subs = history["billing/subscriptions"]
    arr = active_arr(subs, subs.start_date.max())
    paying = arr[arr > 0].sort_values(ascending=False)
    assert len(paying) > 150
    top = paying.iloc[: round(0.15 * len(paying))].sum() / paying.sum()
    assert 0.45 <= top <= 0.8


def test_tier_mix_is_realistic(big_snapshot: pd.DataFrame) -> None:
    arr = big_snapshot[big_snapshot.active].arr
    share = {
        "strategic": (arr >= 100_000).mean(),
        "core": ((arr >= 25_000) & (arr < 100_000)).mean(),
        "scale": (arr < 25_000).mean(),
        "tech_touch": (arr < 5_000).mean(),
    }
    assert 0.08 <= share["strategic"] <= 0.25, share
    assert 0.25 <= share["core"] <= 0.45, share
    assert 0.35 <= share["scale"] <= 0.60, share
    assert 0.03 <= share["tech_touch"] <= 0.25, share
    strategic_arr = arr[arr >= 100_000].sum() / arr.sum()
    assert 0.45 <= strategic_arr <= 0.8


def test_size_industry_and_region_drive_spend(big_snapshot: pd.DataFrame) -> None:
    paying = big_snapshot[big_snapshot.arr > 0]
    rho = paying.employee_count.rank().corr(paying.arr.rank())
    assert rho > 0.3
    median = paying.groupby("industry").arr.median()
    regulated = median[["Banking", "Finance", "Insurance", "Healthcare"]].mean()
    traditional = median[["Retail", "Logistics", "Manufacturing"]].mean()
    assert regulated > traditional
    latam = paying[paying.country.isin(["BR", "AR", "CO", "MX"])].arr.median()
    north_america = paying[paying.country.isin(["US", "CA"])].arr.median()
    assert north_america > latam
    # CSMs cover the big accounts, not the small ones
    assert paying[paying.arr >= 100_000].csm_owner_id.notna().mean() > 0.6
    assert paying[paying.arr < 5_000].csm_owner_id.notna().mean() < 0.3
    assert 0 < paying.is_marquee_logo.mean() < 0.15
    assert paying[paying.arr < 25_000].is_marquee_logo.any()
    assert big_snapshot.parent_account_id.notna().any()
    assert big_snapshot.parent_account_id.dropna().isin(big_snapshot.index).all()


def test_billing_variety(history: dict[str, pd.DataFrame]) -> None:
    subs = history["billing/subscriptions"]
    assert set(subs.billing_interval) == {"month", "quarter", "year"}
    assert set(subs.plan) == {"free", "trial", "starter", "growth", "enterprise"}
    assert set(subs.product_line) == {"core", "analytics", "automation", "security"}
    assert subs.currency.nunique() >= 4
    assert subs.currency.value_counts().idxmax() == "USD"
    assert subs.is_per_seat.any() and not subs.is_per_seat.all()
    assert (subs[subs.plan.isin(["free", "trial"])].amount == 0).all()
    assert (subs[~subs.plan.isin(["free", "trial"])].amount > 0).all()
    trials = subs[subs.plan == "trial"]
    assert ((trials.end_date - trials.start_date).dt.days.between(14, 30)).all()
    assert subs.subscription_id.str.fullmatch(r"sub_\d{6}_\d{2}").all()
    # big accounts own more product lines
    arr = subs.groupby("account_id").arr_usd.max()
    lines = subs.groupby("account_id").product_line.nunique()
    assert lines[arr >= 100_000].mean() > lines[arr < 25_000].mean()
    # created on or before the first subscription
    accounts = history["crm/accounts"].set_index("account_id")
    first = subs.groupby("account_id").start_date.min()
    assert (pd.to_datetime(accounts.loc[first.index, "created_date"]) <= first).all()


def test_lifecycle_events_exist(history: dict[str, pd.DataFrame]) -> None:
    subs = history["billing/subscriptions"]
    last = subs.start_date.max()
    pairs = transitions(subs)
    paid = ~pairs.plan.isin(["free", "trial"]) & ~pairs.next_plan.isin(["free", "trial"])
    assert ((pairs.next_seats > pairs.seats) & paid).sum() >= 1  # seat expansion
    assert ((pairs.next_seats < pairs.seats) & paid).sum() >= 1  # contraction
    rank = {"starter": 0, "growth": 1, "enterprise": 2}
    assert (pairs[paid].next_plan.map(rank) < pairs[paid].plan.map(rank)).sum() >= 1  # downgrade
    conversions = pairs[(pairs.plan == "trial") & ~pairs.next_plan.isin(["free", "trial"])]
    assert len(conversions) >= 1
    assert ((subs.plan == "trial") & ~subs.account_id.isin(conversions.account_id)).any()  # lapsed trials
    ends = subs.groupby("account_id").end_date.agg(lambda s: s.max() if s.notna().all() else pd.NaT)
    churned = ends[ends.notna() & (ends <= last)]
    assert len(churned) >= 5
    # reactivation: a paid period starting at least 30 days after every earlier period ended
    reactivated = 0
    for _, g in subs[~subs.plan.isin(["free", "trial"])].groupby("account_id"):
        g = g.sort_values("start_date")
        prior_end = g.end_date.fillna(pd.Timestamp("2200-01-01")).cummax().shift()
        reactivated += int((g.start_date >= prior_end + pd.Timedelta(days=30)).any())
    assert reactivated >= 1
    # new logos and scheduled cancellations
    accounts = history["crm/accounts"]
    assert (pd.to_datetime(accounts.created_date) >= pd.Timestamp(START)).sum() >= 5
    assert (subs.end_date > last).any()


def test_invoices_follow_subscriptions(history: dict[str, pd.DataFrame]) -> None:
    inv = history["billing/invoices"]
    assert set(inv.status) >= {"paid", "open", "uncollectible"}
    assert (inv.status == "paid").mean() > 0.85
    assert inv[inv.status != "paid"].paid_date.isna().all()
    assert inv[inv.status == "paid"].paid_date.notna().all()
    last = pd.to_datetime(inv.issued_date).max()
    open_ = inv[inv.status == "open"]
    assert (pd.to_datetime(open_.due_date) < last).any()  # past due
    assert set(inv.account_id) <= set(history["billing/subscriptions"].account_id)
    assert set(inv.currency) == set(history["billing/subscriptions"].currency)


def test_seat_utilisation_spread(history: dict[str, pd.DataFrame]) -> None:
    subs, events = history["billing/subscriptions"], history["usage/events"]
    last = subs.start_date.max()
    occurred = pd.to_datetime(events.occurred_at)
    recent = events[occurred > last - pd.Timedelta(days=30)]
    mau = recent.groupby("account_id").user_id.nunique()
    active = (subs.start_date <= last) & (subs.end_date.isna() | (subs.end_date > last))
    seats = subs[active & (subs.product_line == "core")].groupby("account_id").seats.sum()
    utilisation = (mau / seats).dropna()
    assert (utilisation < 0.3).mean() > 0.05
    assert (utilisation > 0.9).mean() > 0.05
    # feature breadth: more features used by mature accounts than by new ones
    accounts = history["crm/accounts"].set_index("account_id")
    tenure = (last - pd.to_datetime(accounts.created_date)).dt.days
    breadth = recent.groupby("account_id").feature.nunique()
    both = pd.concat([breadth.rename("breadth"), tenure.rename("tenure")], axis=1, join="inner")
    assert both[both.tenure > 365].breadth.mean() > both[both.tenure < 120].breadth.mean()


def test_usage_decays_before_churn_and_grows_before_expansion(history: dict[str, pd.DataFrame]) -> None:
    subs, events = history["billing/subscriptions"], history["usage/events"]
    events = events.assign(ts=pd.to_datetime(events.occurred_at))
    events["day"] = events.ts.dt.floor("D")
    start = pd.Timestamp(START)
    last = subs.start_date.max()
    ends = subs.groupby("account_id").end_date.agg(lambda s: s.max() if s.notna().all() else pd.NaT)
    churned = ends[ends.notna() & (ends <= last) & (ends >= start + pd.Timedelta(days=90))]
    assert len(churned) >= 3
    before, during = [], []
    for account, end in churned.items():
        ev = events[events.account_id == account]
        last_month = ev[(ev.ts >= end - pd.Timedelta(days=30)) & (ev.ts < end)]
        earlier = ev[(ev.ts >= end - pd.Timedelta(days=90)) & (ev.ts < end - pd.Timedelta(days=60))]
        if len(last_month) and len(earlier):  # events per monthly active user
            during.append(len(last_month) / last_month.user_id.nunique())
            before.append(len(earlier) / earlier.user_id.nunique())
    assert len(during) >= 3
    assert np.mean(during) < 0.8 * np.mean(before)
    assert sum(d < b for d, b in zip(during, before, strict=True)) > len(during) / 2

    pairs = transitions(subs)
    core_exp = pairs[(pairs.product_line == "core") & (pairs.next_seats > pairs.seats)
                     & (pairs.end_date >= start + pd.Timedelta(days=100)) & (pairs.end_date <= last)]
    assert len(core_exp) >= 3
    ahead, earlier = 0, 0
    for row in core_exp.itertuples():
        ev = events[events.account_id == row.account_id]
        ahead += ((ev.ts >= row.end_date - pd.Timedelta(days=30)) & (ev.ts < row.end_date)).sum()
        earlier += ((ev.ts >= row.end_date - pd.Timedelta(days=100))
                    & (ev.ts < row.end_date - pd.Timedelta(days=70))).sum()
    assert ahead > 1.2 * earlier


def test_crm_signals(history: dict[str, pd.DataFrame]) -> None:
    acts = history["crm/activities"]
    assert set(acts.activity_type) == {"qbr", "check_in", "email", "call", "training", "escalation"}
    subs = history["billing/subscriptions"]
    arr = subs.groupby("account_id").arr_usd.max()
    qbr = acts[acts.activity_type == "qbr"].groupby("account_id").size()
    assert set(qbr.index) <= set(history["crm/accounts"].dropna(subset=["csm_owner_id"]).account_id)
    assert qbr.reindex(arr[arr >= 100_000].index, fill_value=0).mean() > qbr.reindex(
        arr[(arr < 100_000) & (arr >= 25_000)].index, fill_value=0).mean()
    response = acts.groupby("account_id").is_customer_responded.mean()
    assert response.min() < 0.3 < 0.8 < response.max()
    # NPS is lower in the 120 days before churn
    nps = history["crm/nps_responses"].assign(ts=lambda f: pd.to_datetime(f.responded_at))
    ends = subs.groupby("account_id").end_date.agg(lambda s: s.max() if s.notna().all() else pd.NaT).dropna()
    nps["churn"] = nps.account_id.map(ends)
    near = nps.churn.notna() & (nps.ts >= nps.churn - pd.Timedelta(days=120)) & (nps.ts < nps.churn)
    assert near.sum() >= 5
    assert nps[near].score.mean() < nps[nps.churn.isna()].score.mean() - 1
    cases = history["crm/support_cases"]
    cases_per_account = cases.groupby("account_id").size()
    assert cases_per_account.reindex(arr[arr >= 100_000].index, fill_value=0).mean() > \
        cases_per_account.reindex(arr[arr < 25_000].index, fill_value=0).mean()


def test_snapshots_grow_day_by_day(world: tuple[Path, GenerateSummary]) -> None:
    out, summary = world
    for e in DEFAULT_ENTITIES:
        if e.kind != "snapshot":
            continue
        previous: set[str] = set()
        for d in summary.run_dates:
            keys = set(read_strings(entity_file(out / d.isoformat(), e, "csv")).column(e.key).to_pylist())
            assert previous <= keys, (e.qualified, d)
            previous = keys
    # a subscription's end date appears once it is known and never disappears
    ends: dict[str, str] = {}
    for d in summary.run_dates:
        subs = load(out / d.isoformat(), "billing/subscriptions").dropna(subset=["end_date"])
        now = dict(zip(subs.subscription_id, subs.end_date.astype(str), strict=True))
        assert all(now.get(k) == v for k, v in ends.items())
        ends = now


def test_late_and_duplicate_events(world: tuple[Path, GenerateSummary]) -> None:
    out, summary = world
    seen: dict[str, tuple] = {}
    resent = late = 0
    for i, d in enumerate(summary.run_dates):
        table = read_strings(entity_file(out / d.isoformat(), get_entity("usage", "events"), "csv"))
        rows = list(zip(*(table.column(c.name).to_pylist() for c in get_entity("usage", "events").columns), strict=True))
        assert len({r[0] for r in rows}) == len(rows)  # unique inside the drop
        day = np.array([r[5][:10] for r in rows])
        assert (day <= d.isoformat()).all()
        known = np.array([r[0] in seen for r in rows], dtype=bool)
        if i == 0:
            assert min(day) == START.isoformat()  # the initial history load
        else:
            fresh_late = ~known & (day < d.isoformat())
            assert (day[fresh_late] >= (d - dt.timedelta(days=3)).isoformat()).all()
            assert all(seen[r[0]] == r for r, k in zip(rows, known, strict=True) if k)  # exact copies
            assert known.sum() < 0.015 * len(rows) + 3 and fresh_late.sum() < 0.02 * len(rows) + 3
            resent += int(known.sum())
            late += int(fresh_late.sum())
        for r in rows:
            seen.setdefault(r[0], r)
    assert resent >= 2 and late >= 5


# --- defects -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_row_defects_land_where_reported(tmp_path: Path, fmt: str) -> None:
    summary = generate(tmp_path, accounts=60, start_date=START, days=40, drop_days=2, seed=5,
                       file_format=fmt, defects=ROW_DEFECTS, events_per_account_day=8)
    assert sorted(d["defect"] for d in summary.defects) == sorted(ROW_DEFECTS)
    first, last = (tmp_path / d.isoformat() for d in summary.run_dates)
    for e in DEFAULT_ENTITIES:  # the earlier drop is clean
        assert violations(e, entity_file(first, e, fmt)) == []
    report = {d["defect"]: d for d in summary.defects}
    expected_check = {
        "unparseable_value": "type", "missing_required": "required", "bad_enum": "allowed",
        "negative_amount": "min", "end_before_start": "end_before_start", "duplicate_key": "duplicate_key",
    }
    by_entity: dict[str, list] = {}
    for e in DEFAULT_ENTITIES:
        path = entity_file(last, e, fmt)
        if e.qualified == "crm/nps_responses":
            assert not path.exists()
            assert report["missing_file"]["file"] == str(path)
            continue
        if e.qualified == "crm/accounts":
            rec = report["bad_encoding"]
            if fmt == "parquet":
                names = pq.read_table(path).column("account_name").cast(pa.binary()).to_pylist()
                assert names[rec["row"] - 1] == "Société Générale".encode("latin-1")
                with pytest.raises(UnicodeDecodeError):
                    names[rec["row"] - 1].decode("utf-8")
                fixed = [n.decode("latin-1" if i == rec["row"] - 1 else "utf-8") for i, n in enumerate(names)]
                table = pq.read_table(path)
                index = table.column_names.index("account_name")
                pq.write_table(table.set_column(index, "account_name", pa.array(fixed)), path)
                by_entity[e.qualified] = violations(e, path)
                continue
            raw = path.read_bytes()
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")
            assert "Société Générale" in raw.decode("latin-1").splitlines()[rec["line"] - 1]
            path.write_bytes(raw.decode("latin-1").encode("utf-8"))  # repaired for the row checks
        by_entity[e.qualified] = violations(e, path)
    assert ("missing_column", "currency", 0) in by_entity["billing/invoices"]
    assert report["missing_column"]["column"] == "currency"
    for defect, check in expected_check.items():
        rec = report[defect]
        assert rec["file"] == str(entity_file(last, next(x for x in ENTITIES if x.qualified == DEFECTS[defect]), fmt))
        assert rec["line"] == rec["row"] + (1 if fmt == "csv" else 0)
        found = [v for v in by_entity[DEFECTS[defect]] if v[0] == check]
        if defect == "duplicate_key":
            assert {r for _, _, r in found} == {rec["row"], rec["duplicate_of_line"] - (1 if fmt == "csv" else 0)}
        else:
            assert found == [(check, rec["column"], rec["row"])]
    # mass quarantine: ~30% of the last drop's events lack their account, nothing else is wrong
    events = by_entity["usage/events"]
    blank = [v for v in events if v[0] == "required" and v[1] == "account_id"]
    rows = read_strings(entity_file(last, get_entity("usage", "events"), fmt)).num_rows
    assert len(blank) == report["mass_quarantine"]["rows_affected"]
    assert 0.22 < len(blank) / rows < 0.38
    assert {v[0] for v in events} == {"required", "duplicate_key"}
    for name in ("crm/activities", "crm/support_cases", "billing/subscriptions"):
        assert len(by_entity[name]) == 1
    assert len(by_entity["crm/accounts"]) == 1
    assert len(by_entity["billing/invoices"]) == 2  # missing currency + negative amount


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_file_defects(tmp_path: Path, fmt: str) -> None:
    summary = generate(tmp_path, accounts=40, start_date=START, days=30, drop_days=2, seed=5,
                       file_format=fmt, defects=FILE_DEFECTS)
    last = tmp_path / summary.run_dates[-1].isoformat()
    report = {d["defect"]: d for d in summary.defects}
    events = last / "usage" / f"events.{fmt}"
    assert report["empty_file"]["file"] == str(events)
    assert events.stat().st_size == 0
    subs = last / "billing" / f"subscriptions.{fmt}"
    assert report["wrong_format"]["file"] == str(subs)
    head = subs.read_bytes()[:4]
    if fmt == "parquet":
        assert head != b"PAR1"
        assert subs.read_text(encoding="utf-8").startswith('"subscription_id"')
    else:
        assert head == b"PAR1"
    earlier = tmp_path / summary.run_dates[0].isoformat()
    for e in DEFAULT_ENTITIES:  # the earlier drop is intact
        assert violations(e, entity_file(earlier, e, fmt)) == []


def test_regenerating_replaces_a_drop(tmp_path: Path) -> None:
    generate(tmp_path, accounts=30, start_date=START, days=10, drop_days=1, file_format="jsonl")
    generate(tmp_path, accounts=30, start_date=START, days=10, drop_days=1, defects=["missing_file"])
    drop = tmp_path / (START + dt.timedelta(days=9)).isoformat()
    assert not list(drop.rglob("*.jsonl"))
    assert not (drop / "crm" / "nps_responses.csv").exists()


def test_fx_rates_match_the_dbt_seed() -> None:
    seed = PROJECT / "dbt_project" / "seeds" / "fx_rates.csv"
    if not seed.exists():
        pytest.skip("no dbt fx seed")
    rows = list(csv.DictReader(seed.open()))
    rates = {r["currency_code"]: float(r.get("rate") or r["rate_to_reporting"]) for r in rows}
    for code, rate in FX_TO_USD.items():
        assert rates[code] == pytest.approx(rate)


def test_scripted_tier_moves_cross_the_tier_thresholds(tmp_path: Path) -> None:
    """Every data set shows the migration rules at work (issue 12): on the last run date one
    account moves up across $25K ARR, one moves down with its renewal 60 days ahead (held),
    and one moved down two days earlier with its term renewing on the last run date."""
    summary = generate(tmp_path, accounts=40, start_date=START, days=120, drop_days=4, seed=3)
    last = summary.run_dates[-1]
    subs = pd.read_csv(tmp_path / last.isoformat() / "billing" / "subscriptions.csv",
                       parse_dates=["start_date", "end_date"])
    subs["arr_usd"] = (subs.amount * np.where(subs.is_per_seat, subs.seats, 1)
                       * subs.currency.map(FX_TO_USD) * 12)  # every scripted plan is monthly
    day = pd.Timestamp(last)

    def arr_on(account: str, when: pd.Timestamp) -> float:
        live = subs[(subs.account_id == account) & (subs.start_date <= when)
                    & (subs.end_date.isna() | (subs.end_date > when))]
        return float(live.arr_usd.sum())

    moved = {a for a in subs.account_id.unique()
             if (arr_on(a, day - pd.Timedelta(days=3)) >= 25_000) != (arr_on(a, day) >= 25_000)}
    up = [a for a in moved if arr_on(a, day) >= 25_000]
    down = [a for a in moved if arr_on(a, day) < 25_000]
    assert len(up) == 1 and len(down) == 2, (up, down)
    renewals = {a: subs[(subs.account_id == a) & (subs.start_date <= day) & (subs.end_date > day)].end_date.min()
                for a in down}
    held = [a for a, r in renewals.items() if r == day + pd.Timedelta(days=60)]
    assert len(held) == 1, renewals
    (after_renewal,) = set(down) - set(held)
    # contracted two days before the last run date, on a term that ends on it
    assert arr_on(after_renewal, day - pd.Timedelta(days=2)) < 25_000 <= arr_on(after_renewal, day - pd.Timedelta(days=3))
    assert (subs[(subs.account_id == after_renewal)].end_date == day).any()


def test_every_contract_entity_has_a_simulator_and_every_simulator_an_entity() -> None:
    """The generator's registry (pipelines/lab/generate/simulators.py) and the contract name the same
    entities: a new contract entity without a simulator, or a simulator left behind, fails here."""
    from pipelines.contract import ENTITIES
    from pipelines.lab.generate.simulators import SNAPSHOTS, STREAMS

    contract = {e.qualified for e in ENTITIES}
    assert not set(SNAPSHOTS) & set(STREAMS), "an entity is registered twice"
    registered = set(SNAPSHOTS) | set(STREAMS)
    assert not contract - registered, f"no simulator for {sorted(contract - registered)}: register one in SNAPSHOTS"
    assert not registered - contract, f"simulators for entities the contract lacks: {sorted(registered - contract)}"
    snapshot_entities = {e.qualified for e in ENTITIES if e.kind == "snapshot"}
    assert set(SNAPSHOTS) == snapshot_entities, "a nightly snapshot entity is simulated as a snapshot"
