"""The domain brief's worked examples, end to end: from extracts delivered through the public
extract contract (docs/extract-contract.md) to the published marts.

Each night runs every real step (``pipelines.ops.nightly.run_night``: check_extracts, ingest,
check_quarantine, dbt build, quality gate, publish) and the assertions read the PUBLISHED
DuckDB file (``pipelines.release.open_published``). The dbt unit tests prove the formulas on
made-up inputs of the last model; these prove that the inputs are derived right from what a
customer delivers.

Two pipeline homes, to keep the number of dbt builds small:

* ``default_home`` (shipped configuration), three nights: 2026-04-01, 2026-04-02, 2026-05-04
  (the first two without dbt's data tests, which the last night runs on the marts asserted here;
  the literal home's night runs the singular ones, whose warnings it asserts).
  - cost to serve: one CSM owns 50 live accounts (and 4 churned ones, which are in no
    book): $120K / 50 + $600 + $200 = $3,200 per account, 10.7% of a $30K account, 21.3% of
    $15K, 5.3% of $60K;
  - SMB unit economics (region LATAM): ACV $2,400, CAC $1,000 -> payback 5 months, logo
    churn 40%/year -> lifetime 2.5 years -> LTV $6,000, LTV:CAC 6:1;
  - mid-market unit economics (region APAC): ACV $20,000 (annual plans at exactly $16,000
    ARR among them), logo churn 25%/year -> 4 years, NRR 110% -> LTV $88,000;
  - the tier cases under the default rule: $150K at high churn risk with no room is Core,
    $40K healthy and expanding with high growth potential is Strategic, $120K with no room
    is Core;
  - migration: an account crossing up into Core is upgraded the same night; an account that
    contracts below Core keeps Core (pending) until its renewal on 2026-05-01 and is
    downgraded on the first night after it;
  - then a re-delivery of the last night with a subscription in a currency the FX seed does
    not know: the night stops at dbt build naming the currency test, nothing is published.
* ``literal_home``: the operator's written rule "Tier 1 if ARR > $100K OR (ARR > $50K AND
  strategic) OR (ARR > $75K AND high growth potential)" configured as docs/configuration.md
  says (a copy of the dbt project with those vars), one night: $150K and $120K are
  Strategic, $40K is Core. The same night carries three inputs the gate must report as
  warnings without failing: billing for an account the CRM does not have, usage of an
  unknown account, and a subscription delivered twice under two ids.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import yaml

from pipelines.build.dbt import DbtFailed
from pipelines.ops import nightly
from pipelines.release import open_published, read_manifest
from pipelines.settings import Settings, get_settings
from tests.drops import DEFAULT_ENTITIES, write_csv

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parents[2]
N1, N2, N3 = dt.date(2026, 4, 1), dt.date(2026, 4, 2), dt.date(2026, 5, 4)
LAST_COMPLETE_MONTH = dt.date(2026, 3, 1)
CSM = "csm_050"
COUNTRY = {"NA": "US", "LATAM": "BR", "APAC": "JP", "EMEA": "DE"}
PRODUCT_LINES = ("core", "analytics", "automation")

#: docs/configuration.md, "The operator's literal Tier 1 rule".
LITERAL_RULE_VARS = {
    "tier1_arr_comparison": "strict",
    "tier1_min_arr": 100000,
    "tier1_arr_rule_growth_potentials": ["high", "medium", "low", "unknown"],
    "tier1_min_arr_without_growth": None,
    "tier1_strategic_min_arr": 50000,
    "tier1_growth_min_arr": 75000,
    "tier1_growth_potentials": ["high"],
    "tier1_growth_health_statuses": None,
    "tier1_growth_min_seat_utilisation": None,
    "tier1_growth_min_usage_trend": None,
}


# --------------------------------------------------------------------------- the extracts


@dataclass
class Subscription:
    account_id: str
    monthly_amount: str  # per billing interval when interval != month
    start: dt.date
    end: dt.date | None = None
    interval: str = "month"
    product_line: str = "core"
    plan: str = "growth"
    seats: int = 10
    currency: str = "USD"


@dataclass
class Business:
    """What the source systems know; ``drop(run_date)`` writes the night's extract as of then."""

    accounts: list[dict[str, str]] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    activities: list[dict[str, str]] = field(default_factory=list)
    cases: list[dict[str, str]] = field(default_factory=list)
    nps: list[dict[str, str]] = field(default_factory=list)
    events: list[tuple[str, str, str, dt.datetime]] = field(default_factory=list)  # account, user, feature, at
    extra_subscription_rows: list[dict[str, str]] = field(default_factory=list)  # written as delivered

    def account(self, account_id: str, region: str, *, employees: int = 50, csm: str | None = CSM,
                industry: str = "software", marquee: bool = False) -> str:
        self.accounts.append({
            "account_id": account_id, "account_name": f"Account {account_id}", "industry": industry,
            "employee_count": str(employees), "country": COUNTRY[region], "created_date": "2023-06-01",
            "csm_owner_id": csm or "", "is_marquee_logo": str(marquee).lower(), "is_reference": "false",
            "is_partner": "false", "parent_account_id": "",
        })
        return account_id

    def subscribe(self, account_id: str, amount: str, start: dt.date, end: dt.date | None = None, **kw) -> None:
        self.subscriptions.append(Subscription(account_id, amount, start, end, **kw))

    def drop(self, landing: Path, run_date: dt.date) -> None:
        """The night's files, as of the run date: snapshots hold what started by then."""
        day = run_date.isoformat()
        numbered: list[tuple[str, Subscription]] = []
        per_account: dict[str, int] = {}
        for s in self.subscriptions:  # ids numbered per account, in the order they were added
            per_account[s.account_id] = per_account.get(s.account_id, -1) + 1
            numbered.append((f"sub_{s.account_id}_{per_account[s.account_id]:02d}", s))
        subs = [s for _, s in numbered if s.start <= run_date]
        sub_rows = [{
            "subscription_id": sid, "account_id": s.account_id, "plan": s.plan,
            "product_line": s.product_line, "start_date": s.start.isoformat(),
            "end_date": s.end.isoformat() if s.end else "", "billing_interval": s.interval,
            "amount": s.monthly_amount, "currency": s.currency, "seats": str(s.seats), "is_per_seat": "false",
        } for sid, s in numbered if s.start <= run_date] + self.extra_subscription_rows
        live = sorted({s.account_id for s in subs if s.end is None or s.end > run_date})
        invoices = [{
            "invoice_id": f"inv_{a}", "account_id": a, "issued_date": "2026-03-01", "due_date": "2026-03-31",
            "amount": "100.00", "currency": "USD", "status": "paid", "paid_date": "2026-03-10",
        } for a in live]
        events = [(a, u, f, at) for a, u, f, at in self.events if at.date() <= run_date]
        if run_date != N1:  # later drops hold that day's events only (the first one the history)
            events = [e for e in events if e[3].date() == run_date]
        event_rows = [{
            "event_id": f"ev_{a}_{u}_{at:%Y%m%d%H%M}", "account_id": a, "user_id": u, "event_name": "use",
            "feature": f, "occurred_at": f"{at:%Y-%m-%d %H:%M:%S}",
        } for a, u, f, at in events]
        rows = {
            "crm/accounts": self.accounts, "crm/activities": self.activities, "crm/support_cases": self.cases,
            "crm/nps_responses": self.nps, "billing/subscriptions": sub_rows, "billing/invoices": invoices,
            "usage/events": event_rows,
        }
        for entity in DEFAULT_ENTITIES:
            write_csv(landing / day / entity.source / f"{entity.name}.csv", rows[entity.qualified],
                      [c.name for c in entity.columns])


def _healthy(b: Business, account_id: str, at: dt.date) -> None:
    """A touchpoint answered a week ago and a promoter's NPS: CS engagement and sentiment 100."""
    b.activities.append({"activity_id": f"act_{account_id}", "account_id": account_id, "activity_type": "check_in",
                         "occurred_at": f"{at - dt.timedelta(days=7)} 10:00:00", "is_customer_responded": "true"})
    b.nps.append({"response_id": f"nps_{account_id}", "account_id": account_id,
                  "responded_at": f"{at - dt.timedelta(days=20)} 09:00:00", "score": "10"})


def _critical(b: Business, account_id: str, at: dt.date) -> None:
    """Health 30: an unanswered QBR 200 days ago (CS 0), two open urgent cases (support 30), a
    detractor's NPS of 0 (sentiment 0), invoices paid (billing 100), no usage (missing)."""
    b.activities.append({"activity_id": f"act_{account_id}", "account_id": account_id, "activity_type": "qbr",
                         "occurred_at": f"{at - dt.timedelta(days=200)} 10:00:00", "is_customer_responded": "false"})
    for k in (1, 2):
        b.cases.append({"case_id": f"case_{account_id}_{k}", "account_id": account_id,
                        "opened_at": f"{at - dt.timedelta(days=10 * k)} 09:00:00", "closed_at": "",
                        "priority": "urgent", "status": "open", "csat": ""})
    b.nps.append({"response_id": f"nps_{account_id}", "account_id": account_id,
                  "responded_at": f"{at - dt.timedelta(days=30)} 09:00:00", "score": "0"})


def _expanding_usage(b: Business, account_id: str, users: int, until: dt.date, later: tuple[dt.date, ...]) -> None:
    """Every licensed user active every day, twice as busy over the last 30 days as over the 30
    before (usage trend +100%), on every feature; one event per user on each later night."""
    for back in range(60):
        day = until - dt.timedelta(days=back)
        for u in range(users):
            for k in range(2 if back < 30 else 1):
                at = dt.datetime.combine(day, dt.time(8 + k, u))
                b.events.append((account_id, f"u{u}", PRODUCT_LINES[(u + k) % 3], at))
    for day in later:
        for u in range(users):
            b.events.append((account_id, f"u{u}", PRODUCT_LINES[u % 3], dt.datetime.combine(day, dt.time(9, u))))


def tier_cases(b: Business) -> None:
    """DOMAIN.md's narrative cases (region EMEA)."""
    lines_start = dt.date(2024, 1, 1)
    # $150K, no room (owns every product line, 83% of its staff licensed), critical health
    b.account("T150", "EMEA", employees=120)
    for line in PRODUCT_LINES:
        b.subscribe("T150", "50000.00", lines_start, interval="year", product_line=line, plan="enterprise", seats=100)
    _critical(b, "T150", N1)
    # $120K, no room, healthy
    b.account("T120", "EMEA", employees=120)
    for line in PRODUCT_LINES:
        b.subscribe("T120", "40000.00", lines_start, interval="year", product_line=line, plan="enterprise", seats=100)
    _healthy(b, "T120", N1)
    # $40K, high growth potential (10% of its staff licensed, one product line of three),
    # healthy, expanding now (every seat used, usage up)
    b.account("T40", "EMEA", employees=100)
    b.subscribe("T40", "40000.00", lines_start, interval="year", seats=10)
    _healthy(b, "T40", N1)
    _expanding_usage(b, "T40", users=10, until=N1, later=(N2, N3))


def default_business() -> Business:
    b = Business()
    since = dt.date(2024, 6, 1)
    # --- cost to serve (region NA): the worked accounts and fillers, 50 live accounts in all
    for account_id, monthly in [("A30", "2500.00"), ("A15", "1250.00"), ("A60", "5000.00")]:
        b.account(account_id, "NA")
        b.subscribe(account_id, monthly, since)
    for k in range(26):
        b.account(f"F{k:02d}", "NA")
        b.subscribe(f"F{k:02d}", "1000.00", since)
    # --- SMB unit economics (region LATAM): 5 customers at $200 MRR in March 2025; 2 churn,
    # 3 expand to $1,000 together (NRR 100%, logo retention 60%); 4 new at $100 (ARPA $200)
    for k in range(1, 6):
        b.account(f"S{k}", "LATAM", industry="retail")
    b.subscribe("S1", "200.00", since, dt.date(2025, 9, 1), plan="starter")
    b.subscribe("S1", "400.00", dt.date(2025, 9, 1), plan="starter")
    for account_id in ("S2", "S3"):
        b.subscribe(account_id, "200.00", since, dt.date(2025, 10, 1), plan="starter")
        b.subscribe(account_id, "300.00", dt.date(2025, 10, 1), plan="starter")
    b.subscribe("S4", "200.00", since, dt.date(2025, 7, 1), plan="starter")
    b.subscribe("S5", "200.00", since, dt.date(2025, 12, 1), plan="starter")
    for k, start in enumerate([dt.date(2025, 5, 10), dt.date(2025, 8, 3), dt.date(2025, 11, 20),
                               dt.date(2026, 2, 14)], start=1):
        b.account(f"SN{k}", "LATAM", industry="retail")
        b.subscribe(f"SN{k}", "100.00", start, plan="starter")
    # --- mid-market unit economics (region APAC): 8 customers at $1,250 MRR in March 2025;
    # 2 churn, 6 expand to $11,000 together (NRR 110%, logo retention 75%); 3 new on annual
    # plans of exactly $16,000 ARR (ACV 20,000)
    for k in range(1, 9):
        b.account(f"M{k}", "APAC", industry="finance")
    for k in range(1, 5):
        b.subscribe(f"M{k}", "1250.00", since, dt.date(2025, 10, 1))
        b.subscribe(f"M{k}", "2000.00", dt.date(2025, 10, 1))
    for k in (5, 6):
        b.subscribe(f"M{k}", "1250.00", since, dt.date(2025, 11, 1))
        b.subscribe(f"M{k}", "1500.00", dt.date(2025, 11, 1))
    b.subscribe("M7", "1250.00", since, dt.date(2025, 8, 1))
    b.subscribe("M8", "1250.00", since, dt.date(2026, 1, 1))
    for k, start in enumerate([dt.date(2025, 6, 1), dt.date(2025, 9, 1), dt.date(2025, 12, 1)], start=1):
        b.account(f"MN{k}", "APAC", industry="finance")
        b.subscribe(f"MN{k}", "16000.00", start, interval="year")
    # --- tier cases and migration (region EMEA)
    tier_cases(b)
    # U: Scale ($15K) until 2 April, then $60K: Core at once
    b.account("U", "EMEA", employees=60)
    b.subscribe("U", "1250.00", dt.date(2024, 1, 1), N2, seats=50)
    b.subscribe("U", "5000.00", N2, seats=50)
    # R: Core ($48K) until 2 April, then $15K on a term renewing on 1 May: held, then downgraded
    b.account("R", "EMEA", employees=60)
    b.subscribe("R", "4000.00", dt.date(2024, 1, 1), N2, seats=50)
    b.subscribe("R", "1250.00", N2, dt.date(2026, 5, 1), seats=50)
    b.subscribe("R", "1250.00", dt.date(2026, 5, 1), seats=50)
    return b


def _write_spend(project: Path) -> None:
    """Acquisition spend of the SMB example's new logos: $4,000 over the trailing year."""
    with (project / "seeds" / "revenue_acquisition_spend.csv").open("a") as fh:
        fh.write("region,LATAM,2025-06-01,4000,USD\n")


def _project_copy(root: Path, extra_vars: dict | None = None) -> Path:
    project = root / "dbt_project"
    shutil.copytree(PROJECT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    if extra_vars:
        path = project / "dbt_project.yml"
        config = yaml.safe_load(path.read_text())
        config["vars"].update(extra_vars)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    return project


def _home(root: Path, project: Path) -> Settings:
    return get_settings(home=root / "home", dbt_project_dir=project)


# --------------------------------------------------------------------------- the nights


@pytest.fixture(scope="module")
def default_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("worked_default")
    project = _project_copy(root)  # the shipped vars; only the spend seed gets the example's rows
    _write_spend(project)
    settings = _home(root, project)
    # the nights before the last leave dbt's data tests out (SEGMENT_MART_DBT_BUILD_EXCLUDE; the
    # gate warns and passes): what is asserted here is what the published marts hold, and the
    # last night runs every data test on them (the literal home's night too)
    history = settings.model_copy(update={"dbt_build_exclude": "resource_type:test"})
    business = default_business()
    with nightly.dbt_session(settings) as dbt:  # one dbt process for the three nights
        for run_date in (N1, N2, N3):
            business.drop(settings.landing, run_date)
            nightly.run_night(history if run_date != N3 else settings, run_date, dbt=dbt)
    yield settings


@pytest.fixture(scope="module")
def literal_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("worked_literal")
    # the gate's warnings asserted here come from singular data tests: the night leaves dbt's
    # generic tests out (SEGMENT_MART_DBT_BUILD_EXCLUDE; the default home's last night runs them)
    settings = _home(root, _project_copy(root, LITERAL_RULE_VARS)).model_copy(
        update={"dbt_build_exclude": "test_type:generic"})
    b = Business()
    tier_cases(b)
    # billing for an account the CRM does not have (its CRM row never came)
    b.subscribe("B404", "900.00", dt.date(2025, 1, 1))
    # usage of an account nobody knows
    b.events.append(("GHOST", "g1", "core", dt.datetime(2026, 3, 30, 12, 0)))
    # one subscription delivered twice, under two ids
    b.account("DUP", "NA")
    b.subscribe("DUP", "1000.00", dt.date(2025, 1, 1))
    b.drop(settings.landing, N1)
    twice = {"subscription_id": "sub_DUP_copy", "account_id": "DUP", "plan": "growth", "product_line": "core",
             "start_date": "2025-01-01", "end_date": "", "billing_interval": "month", "amount": "1000.00",
             "currency": "USD", "seats": "10", "is_per_seat": "false"}
    b.extra_subscription_rows.append(twice)
    b.drop(settings.landing, N1)
    yield settings, nightly.run_night(settings, N1)


def _query(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    con = open_published(settings)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


# --------------------------------------------------------------------------- cost to serve


def test_cost_to_serve_per_account_and_share_of_arr(default_home: Settings) -> None:
    rows = dict((r[0], r[1:]) for r in _query(default_home, """
        select account_id, annual_cost_to_serve, round(100 * cost_share_of_arr, 1), cost_band_status
        from marts.dim_accounts where account_id in ('A30', 'A15', 'A60')
    """))
    assert rows == {
        "A30": (Decimal("3200.00"), Decimal("10.7"), "within band"),
        "A15": (Decimal("3200.00"), Decimal("21.3"), "above band"),
        "A60": (Decimal("3200.00"), Decimal("5.3"), "within band"),
    }


def test_a_csm_book_counts_live_accounts_only(default_home: Settings) -> None:
    (book,) = _query(default_home, """
        select account_count, annual_cost_per_account from marts.rpt_coverage_by_csm where csm_owner_id = ?
    """, [CSM])
    assert book == (50, Decimal("3200.00"))  # 50 live; its 4 churned accounts are in no book
    churned = _query(default_home, """
        select account_id, assigned_tier, health_status, annual_cost_to_serve
        from marts.dim_accounts where csm_owner_id = ? and account_status = 'churned' order by 1
    """, [CSM])
    assert churned == [(a, None, None, None) for a in ("M7", "M8", "S4", "S5")]


# --------------------------------------------------------------------------- unit economics


def _economics(settings: Settings, region: str) -> tuple:
    (row,) = _query(settings, """
        select ending_logos, arpa_reporting, acv_reporting, trailing_logo_retention, annual_logo_churn_rate,
               customer_lifetime_years, trailing_net_revenue_retention, ltv_reporting, cac_reporting,
               cac_payback_months, ltv_to_cac_ratio, is_period_complete
        from marts.rpt_segment_unit_economics
        where month_start_date = ? and segment_dimension = 'region' and segment_value = ?
    """, [LAST_COMPLETE_MONTH, region])
    return row


def test_smb_unit_economics(default_home: Settings) -> None:
    (logos, arpa, acv, retention, churn, lifetime, nrr, ltv, cac, payback, ltv_to_cac, complete) = _economics(
        default_home, "LATAM")
    assert (logos, arpa, acv) == (7, Decimal("200.00"), Decimal("2400.00"))
    assert (retention, churn, lifetime, nrr) == (Decimal("0.6"), Decimal("0.4"), Decimal("2.5"), Decimal("1"))
    assert ltv == Decimal("6000.00")
    assert (cac, payback, ltv_to_cac) == (Decimal("1000.00"), Decimal("5"), Decimal("6"))
    assert complete


def test_mid_market_unit_economics(default_home: Settings) -> None:
    (logos, _arpa, acv, retention, churn, lifetime, nrr, ltv, cac, *_rest) = _economics(default_home, "APAC")
    assert (logos, acv) == (9, Decimal("20000.00"))  # exact: annual plans of 16,000 are 16,000.00 ARR
    assert (retention, churn, lifetime, nrr) == (Decimal("0.75"), Decimal("0.25"), Decimal("4"), Decimal("1.1"))
    assert ltv == Decimal("88000.00")
    assert cac is None  # no acquisition spend for this segment


def test_annual_plans_arr_is_exact(default_home: Settings) -> None:
    rows = _query(default_home, """
        select account_id, mrr_reporting, arr_reporting from marts.fct_mrr_account_monthly
        where month_start_date = ? and account_id like 'MN%' order by 1
    """, [LAST_COMPLETE_MONTH])
    assert rows == [(f"MN{k}", Decimal("1333.33"), Decimal("16000.00")) for k in (1, 2, 3)]


def test_the_month_in_progress_is_marked(default_home: Settings) -> None:
    periods = dict(_query(default_home, """
        select period_start_date, is_period_complete from marts.rpt_segment_retention_monthly
        where segment_dimension = 'total' and period_start_date >= ?
    """, [LAST_COMPLETE_MONTH]))
    assert periods == {dt.date(2026, 3, 1): True, dt.date(2026, 4, 1): True, dt.date(2026, 5, 1): False}
    # the daily history starts on 1 April: March's membership is backcast, May's is not
    flags = dict(_query(default_home, """
        select period_start_date, is_backcast from marts.rpt_segment_retention_monthly
        where segment_dimension = 'tier' and segment_value = 'Core' and period_start_date >= ?
    """, [LAST_COMPLETE_MONTH]))
    assert flags[dt.date(2026, 3, 1)] and not flags[dt.date(2026, 5, 1)]


# --------------------------------------------------------------------------- tiers


def _tiers_on(settings: Settings, run_date: dt.date, accounts: tuple[str, ...]) -> dict[str, tuple]:
    rows = _query(settings, f"""
        select account_id, assigned_tier, rules_criterion from marts.fct_account_tiers_daily
        where as_of_date = ? and account_id in ({', '.join('?' for _ in accounts)})
    """, [run_date, *accounts])
    return {r[0]: r[1:] for r in rows}


def test_tier_cases_under_the_default_rule(default_home: Settings) -> None:
    assert _tiers_on(default_home, N1, ("T150", "T40", "T120")) == {
        "T150": ("Core", "tier2_arr"),  # $150K, no growth potential, high churn risk
        "T40": ("Strategic", "tier1_high_growth"),  # $40K, high growth potential, expanding, healthy
        "T120": ("Core", "tier2_arr"),  # $120K, no expansion room
    }
    (t150,) = _query(default_home, """
        select health_status, growth_potential, is_high_churn_risk from marts.fct_account_tiers_daily
        where as_of_date = ? and account_id = 'T150'
    """, [N1])
    assert t150 == ("critical", "low", True)


def test_tier_cases_under_the_literal_rule(literal_home) -> None:
    settings, _manifest = literal_home
    assert _tiers_on(settings, N1, ("T150", "T40", "T120")) == {
        "T150": ("Strategic", "tier1_arr"),
        "T40": ("Core", "tier2_arr"),
        "T120": ("Strategic", "tier1_arr"),
    }


def test_upgrade_at_once_downgrade_after_the_renewal(default_home: Settings) -> None:
    daily = _query(default_home, """
        select account_id, as_of_date, assigned_tier, migration_action, pending_downgrade_date
        from marts.fct_account_tiers_daily where account_id in ('U', 'R') order by 1, 2
    """)
    assert daily == [
        ("R", N1, "Core", "initial", None),
        ("R", N2, "Core", "held", dt.date(2026, 5, 1)),  # qualifies for Scale, keeps Core until the renewal
        ("R", N3, "Scale", "downgrade", None),  # the renewal has passed and it still qualifies lower
        ("U", N1, "Scale", "initial", None),
        ("U", N2, "Core", "upgrade", None),  # the same night
        ("U", N3, "Core", "confirmed", None),
    ]
    history = _query(default_home, """
        select account_id, assigned_tier, valid_from, valid_to, change_type from marts.dim_account_tier_history
        where account_id in ('U', 'R') order by 1, 3
    """)
    assert history == [
        ("R", "Core", N1, N3, "initial"),
        ("R", "Scale", N3, None, "downgrade"),
        ("U", "Scale", N1, N2, "initial"),
        ("U", "Core", N2, None, "upgrade"),
    ]


# --------------------------------------------------------------------------- what the gate reports


def test_the_gate_reports_the_suspicious_inputs_as_warnings(literal_home) -> None:
    settings, manifest = literal_home
    assert manifest.run_date == N1  # published: warnings never fail the night
    report = json.loads((settings.quality / N1.isoformat() / "quality_report.json").read_text())
    warned = {c["name"]: c for c in report["results"] if c["status"] == "warning" and c["kind"] == "dbt_test"}
    for test in ("assert_marts_revenue_accounts_in_dim_accounts", "assert_usage_events_for_known_accounts",
                 "assert_billing_subscriptions_do_not_overlap"):
        assert test in warned, sorted(warned)
        assert warned[test]["observed"] == 1
    # the rows are kept in the warehouse: the operator sees which account and which ids
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        audit = {r[0]: r[1] for r in con.execute("""
            select table_name, table_schema from information_schema.tables
            where table_name in ('assert_marts_revenue_accounts_in_dim_accounts',
                                 'assert_usage_events_for_known_accounts', 'assert_billing_subscriptions_do_not_overlap')
        """).fetchall()}
        assert len(audit) == 3, audit
        schema = audit["assert_marts_revenue_accounts_in_dim_accounts"]
        assert con.execute(f"select account_id from {schema}.assert_marts_revenue_accounts_in_dim_accounts").fetchall() == [
            ("B404",)]
        assert con.execute(f"select account_id from {schema}.assert_usage_events_for_known_accounts").fetchall() == [
            ("GHOST",)]
        assert con.execute(f"""select subscription_id, overlapping_subscription_id
                               from {schema}.assert_billing_subscriptions_do_not_overlap""").fetchall() == [
            ("sub_DUP_00", "sub_DUP_copy")]


def test_a_currency_without_fx_rate_stops_the_night_and_keeps_the_publish(default_home: Settings) -> None:
    """Runs last in this module: re-delivers the last night with a subscription in ZAR."""
    before = read_manifest(default_home)
    business = default_business()
    business.account("ZA1", "EMEA")
    business.subscribe("ZA1", "9000.00", dt.date(2026, 1, 1), currency="ZAR")
    business.drop(default_home.landing, N3)
    with pytest.raises(DbtFailed) as failed:
        nightly.run_night(default_home, N3)
    assert "assert_revenue_currencies_have_fx_rates" in str(failed.value)
    after = read_manifest(default_home)
    assert after is not None and before is not None and after.release_id == before.release_id
    with duckdb.connect(str(default_home.warehouse), read_only=True) as con:
        (schema,) = con.execute("""select table_schema from information_schema.tables
                                   where table_name = 'assert_revenue_currencies_have_fx_rates'""").fetchone()
        rows = con.execute(f"""select currency_code, subscriptions_without_rate, example_account_id
                               from {schema}.assert_revenue_currencies_have_fx_rates""").fetchall()
    assert rows == [("ZAR", 1, "ZA1")]
