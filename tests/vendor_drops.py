"""Vendor-shaped drops from a generated business: what a company exporting from Salesforce,
Stripe and Segment delivers (tests/fixtures/vendors/README.md lists the documented columns).

:func:`vendor_drops` rewrites the generator's contract files of each drop as:

* ``salesforce/Account.csv``: a Data Loader export of Account, upper-case API names (ID, NAME,
  TYPE, PARENTID, BILLINGCOUNTRYCODE, INDUSTRY, NUMBEROFEMPLOYEES, OWNERID, CREATEDDATE, ...),
  18-character Salesforce ids, ``CREATEDDATE`` as Salesforce writes datetimes (``...T09:00:00.000Z``),
  partners as the standard Type picklist's ``Technology Partner``;
* ``stripe/subscriptions.csv``: the Dashboard's subscriptions export (id, Customer ID, Plan,
  Product, Quantity, Currency, Interval, Amount, Status, Start Date (UTC), Ended At (UTC), ...,
  ``account_id (metadata)`` holding the Salesforce account id). Stripe prices are per unit: the
  amount is per seat; the export has no interval count, so a quarterly plan is billed monthly
  at a third of its amount (the same MRR);
* ``segment/tracks.jsonl``: Segment track calls (messageId, userId, event, properties.feature,
  context.groupId = the Salesforce account id, timestamp in ISO 8601 with Z), one identify call
  per drop that the shipped mapping's ``where`` leaves out.

Every other file of the drop is removed: the company has no NPS, no CS activities, no invoices
and no support export.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path


def sf_id(prefix: str, sql: str) -> str:
    """SQL of an 18-character Salesforce-like id from a generated id's number."""
    return f"'{prefix}' || lpad(regexp_extract({sql}, '(\\d+)', 1), 12, '0') || 'AAA'"


def vendor_drops(landing: Path, run_dates: list[dt.date]) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    try:
        for run_date in run_dates:
            drop = Path(landing) / run_date.isoformat()
            for folder in ("salesforce", "stripe", "segment"):
                (drop / folder).mkdir(exist_ok=True)

            def read(name: str, drop: Path = drop) -> str:
                return f"read_csv('{drop / name}', all_varchar = true, header = true)"

            con.execute(f"""copy (
                select {sf_id('001', 'account_id')} as "ID", 'false' as "ISDELETED", account_name as "NAME",
                    case when is_partner = 'true' then 'Technology Partner' else 'Customer - Direct' end as "TYPE",
                    case when parent_account_id is not null then {sf_id('001', 'parent_account_id')} end as "PARENTID",
                    country as "BILLINGCOUNTRYCODE", industry as "INDUSTRY", employee_count as "NUMBEROFEMPLOYEES",
                    case when csm_owner_id is not null then {sf_id('005', 'csm_owner_id')} end as "OWNERID",
                    created_date || 'T09:00:00.000Z' as "CREATEDDATE", '{run_date}T02:00:00.000Z' as "LASTMODIFIEDDATE"
                from {read('crm/accounts.csv')} order by account_id
            ) to '{drop / 'salesforce' / 'Account.csv'}' (header, force_quote *)""")
            con.execute(f"""copy (
                with subs as (
                    select *, greatest(coalesce(try_cast(seats as integer), 1), 1) as quantity,
                        try_cast(amount as decimal(18, 2)) as total
                    from {read('billing/subscriptions.csv')}
                )
                select replace(subscription_id, 'sub_', 'sub_1N') as id,
                    'cus_' || regexp_extract(account_id, '(\\d+)', 1) as "Customer ID",
                    plan as "Plan", product_line as "Product", quantity as "Quantity", lower(currency) as "Currency",
                    case billing_interval when 'quarter' then 'month' else billing_interval end as "Interval",
                    cast(round(case when is_per_seat = 'true' then total else total / quantity end
                               / case billing_interval when 'quarter' then 3 else 1 end, 2) as decimal(18, 2)) as "Amount",
                    case when end_date is null or cast(end_date as date) > date '{run_date}' then 'active'
                         else 'canceled' end as "Status",
                    start_date || ' 00:00' as "Created (UTC)", start_date || ' 00:00' as "Start Date (UTC)",
                    case when end_date is not null then end_date || ' 00:00' end as "Ended At (UTC)",
                    'false' as "Cancel At Period End",
                    {sf_id('001', 'account_id')} as "account_id (metadata)"
                from subs order by subscription_id
            ) to '{drop / 'stripe' / 'subscriptions.csv'}' (header)""")
            events = drop / "usage" / "events.csv"
            con.execute(f"""copy (
                select 'track' as type, upper(event_name[1]) || replace(event_name[2:], '_', ' ') as event, event_id as "messageId",
                    user_id as "userId",
                    case when feature is not null then {{'feature': feature}} end as properties,
                    {{'library': {{'name': 'analytics-node', 'version': '2.1.0'}},
                      'groupId': {sf_id('001', 'account_id')}}} as context,
                    strftime(cast(occurred_at as timestamp), '%Y-%m-%dT%H:%M:%S.000Z') as timestamp
                from {read('usage/events.csv')}
            ) to '{drop / 'segment' / 'tracks.jsonl'}' (format json)""")
            with (drop / "segment" / "tracks.jsonl").open("a", encoding="utf-8") as fh:
                fh.write('{"type": "identify", "messageId": "identify-' + run_date.isoformat()
                         + '", "userId": "usr_new", "traits": {"plan": "growth"}, "timestamp": "'
                         + f'{run_date}T08:00:00.000Z"}}\n')
            for folder in ("crm", "billing", "usage"):
                shutil.rmtree(drop / folder)
            assert events.parent.exists() is False
    finally:
        con.close()
