"""Hand-written landing drops for tests: a small valid drop, edited per test."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

from pipelines.contract import ENTITIES, default_in_use

#: The entities a drop holds when the setting entities_in_use is not set.
DEFAULT_ENTITIES = tuple(e for e in ENTITIES if e.qualified in default_in_use())

VALID_ROWS: dict[str, list[dict[str, str]]] = {
    "crm/accounts": [
        {"account_id": "acc_1", "account_name": "Acme", "industry": "software", "employee_count": "120",
         "country": "US", "created_date": "2025-01-01", "csm_owner_id": "csm_001", "is_marquee_logo": "false",
         "is_reference": "true", "is_partner": "false", "parent_account_id": ""},
        {"account_id": "acc_2", "account_name": "Beta GmbH", "industry": "retail", "employee_count": "40",
         "country": "DE", "created_date": "2025-02-01", "csm_owner_id": "", "is_marquee_logo": "false",
         "is_reference": "false", "is_partner": "false", "parent_account_id": ""},
        {"account_id": "acc_3", "account_name": "Gamma, Inc", "industry": "finance", "employee_count": "5000",
         "country": "GB", "created_date": "2025-03-01", "csm_owner_id": "csm_002", "is_marquee_logo": "true",
         "is_reference": "false", "is_partner": "true", "parent_account_id": "acc_1"},
    ],
    "crm/activities": [
        {"activity_id": "act_1", "account_id": "acc_1", "activity_type": "qbr",
         "occurred_at": "2025-12-01 10:00:00", "is_customer_responded": "true"},
        {"activity_id": "act_2", "account_id": "acc_3", "activity_type": "email",
         "occurred_at": "2025-12-02 11:00:00", "is_customer_responded": "false"},
    ],
    "crm/support_cases": [
        {"case_id": "case_1", "account_id": "acc_1", "opened_at": "2025-12-01 09:00:00",
         "closed_at": "2025-12-02 09:00:00", "priority": "high", "status": "closed", "csat": "4"},
        {"case_id": "case_2", "account_id": "acc_2", "opened_at": "2025-12-03 09:00:00",
         "closed_at": "", "priority": "normal", "status": "open", "csat": ""},
    ],
    "crm/nps_responses": [
        {"response_id": "nps_1", "account_id": "acc_1", "responded_at": "2025-11-01 08:00:00", "score": "9"},
    ],
    "billing/subscriptions": [
        {"subscription_id": "sub_1", "account_id": "acc_1", "plan": "enterprise", "product_line": "core",
         "start_date": "2025-01-01", "end_date": "", "billing_interval": "year", "amount": "120000.00",
         "currency": "USD", "seats": "100", "is_per_seat": "false"},
        {"subscription_id": "sub_2", "account_id": "acc_2", "plan": "starter", "product_line": "core",
         "start_date": "2025-02-01", "end_date": "2026-02-01", "billing_interval": "month", "amount": "500.00",
         "currency": "EUR", "seats": "5", "is_per_seat": "false"},
    ],
    "billing/invoices": [
        {"invoice_id": "inv_1", "account_id": "acc_1", "issued_date": "2025-01-01", "due_date": "2025-01-31",
         "amount": "120000.00", "currency": "USD", "status": "paid", "paid_date": "2025-01-20"},
        {"invoice_id": "inv_2", "account_id": "acc_2", "issued_date": "2025-12-01", "due_date": "2025-12-31",
         "amount": "500.00", "currency": "EUR", "status": "open", "paid_date": ""},
    ],
    "usage/events": [
        {"event_id": "ev_1", "account_id": "acc_1", "user_id": "u_1", "event_name": "login", "feature": "",
         "occurred_at": "2026-01-05 08:00:00"},
        {"event_id": "ev_2", "account_id": "acc_1", "user_id": "u_2", "event_name": "report_run",
         "feature": "reports", "occurred_at": "2026-01-05 09:00:00"},
        {"event_id": "ev_3", "account_id": "acc_3", "user_id": "u_9", "event_name": "login", "feature": "",
         "occurred_at": "2026-01-04 23:59:00"},
    ],
}


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = columns or list(rows[0])
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({k: (v or None) for k, v in r.items()}) + "\n" for r in rows))
    return path


def make_drop(landing: Path, run_date: dt.date, rows: dict[str, list[dict[str, str]]] | None = None) -> Path:
    """Write a complete valid drop (CSV); `rows` replaces the rows of chosen entities."""
    drop = landing / run_date.isoformat()
    data = VALID_ROWS | (rows or {})
    for entity in DEFAULT_ENTITIES:
        write_csv(drop / entity.source / f"{entity.name}.csv", data[entity.qualified])
    return drop
