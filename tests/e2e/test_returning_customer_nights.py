"""Issue 17's three-night scenario: a customer leaves and comes back, and every night publishes.

Three accounts over 2026-03-10..12. A2's only subscription ends on the second night (end date
2026-03-11, exclusive) and a new one starts on the third. Before the fix, night 3 failed at the
quality gate (the Great Expectations suite of the tier history did not allow the
``reactivated`` change type the model writes), and so did every night after it: the product
stopped publishing the first time a customer came back. Real nights (``nightly.run_night``,
what the CLI's ``run`` and the DAG call), no mocks.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.ops import nightly
from pipelines.release import open_published, read_manifest
from pipelines.settings import get_settings
from tests.drops import make_drop

pytestmark = pytest.mark.e2e

NIGHTS = (dt.date(2026, 3, 10), dt.date(2026, 3, 11), dt.date(2026, 3, 12))
ACCOUNTS = [
    {"account_id": a, "account_name": name, "industry": industry, "employee_count": employees, "country": country,
     "created_date": "2025-01-01", "csm_owner_id": csm, "is_marquee_logo": marquee, "is_reference": "false",
     "is_partner": "false", "parent_account_id": ""}
    for a, name, industry, employees, country, csm, marquee in (
        ("A1", "Acme", "software", "500", "US", "csm1", "false"),
        ("A2", "Beta", "retail", "50", "DE", "csm1", "false"),
        ("A3", "Gamma", "healthcare", "2000", "GB", "csm2", "true"),
    )
]


def _subscription(sid: str, account: str, plan: str, start: str, end: str, interval: str, amount: str,
                  seats: str) -> dict[str, str]:
    return {"subscription_id": sid, "account_id": account, "plan": plan, "product_line": "core",
            "start_date": start, "end_date": end, "billing_interval": interval, "amount": amount,
            "currency": "USD", "seats": seats, "is_per_seat": "false"}


def _drop(landing, night: dt.date) -> None:
    subscriptions = [
        _subscription("S1", "A1", "growth", "2025-01-01", "", "year", "120000", "100"),
        _subscription("S2", "A2", "starter", "2025-01-01", "2026-03-11", "month", "2000", "10"),
        _subscription("S3", "A3", "enterprise", "2025-01-01", "", "year", "30000", "300"),
    ]
    if night >= NIGHTS[2]:
        subscriptions.append(_subscription("S4", "A2", "starter", "2026-03-12", "", "month", "2500", "10"))
    make_drop(landing, night, {
        "crm/accounts": ACCOUNTS,
        "crm/activities": [{"activity_id": "x1", "account_id": "A1", "activity_type": "qbr",
                            "occurred_at": "2026-02-01 10:00:00", "is_customer_responded": "true"}],
        "crm/support_cases": [{"case_id": "c1", "account_id": "A1", "opened_at": "2026-02-01 10:00:00",
                               "closed_at": "2026-02-02 10:00:00", "priority": "normal", "status": "closed",
                               "csat": "5"}],
        "crm/nps_responses": [{"response_id": "n1", "account_id": "A1", "responded_at": "2026-02-01 10:00:00",
                               "score": "9"}],
        "billing/subscriptions": subscriptions,
        "billing/invoices": [{"invoice_id": "i1", "account_id": "A1", "issued_date": "2026-01-01",
                              "due_date": "2026-01-31", "amount": "120000", "currency": "USD", "status": "paid",
                              "paid_date": "2026-01-05"}],
        "usage/events": [{"event_id": f"e{night:%d}{j}", "account_id": a, "user_id": f"u{j}", "event_name": "login",
                          "feature": "dash", "occurred_at": f"{night} 0{j}:00:00"}
                         for j, a in enumerate(("A1", "A2", "A3"))],
    })


def test_a_customer_who_leaves_and_returns_publishes_every_night_with_a_reactivated_tier(tmp_path) -> None:
    settings = get_settings(home=tmp_path / "home")
    with nightly.dbt_session(settings) as dbt:  # one dbt process for the three nights
        for night in NIGHTS:
            _drop(settings.landing, night)
            manifest = nightly.run_night(settings, night, dbt=dbt)
            assert manifest.run_date == night  # published, not only built
    assert read_manifest(settings).run_date == NIGHTS[2]
    con = open_published(settings)
    try:
        history = con.execute("""
            select assigned_tier, valid_from, valid_to, is_current, change_type
            from marts.dim_account_tier_history where account_id = 'A2' order by valid_from
        """).fetchall()
        daily = con.execute("""
            select as_of_date, assigned_tier, migration_action from marts.fct_account_tiers_daily
            where account_id = 'A2' order by as_of_date
        """).fetchall()
    finally:
        con.close()
    # the first period closes on the first night without a live subscription; the return
    # opens a period of its own, 'reactivated'
    assert history == [
        ("Scale", NIGHTS[0], NIGHTS[1], False, "initial"),  # $2,000 a month: $24K ARR
        ("Core", NIGHTS[2], None, True, "reactivated"),  # back at $2,500 a month: $30K ARR
    ]
    assert daily == [
        (NIGHTS[0], "Scale", "initial"),
        (NIGHTS[1], None, "churned"),
        (NIGHTS[2], "Core", "initial"),
    ]
