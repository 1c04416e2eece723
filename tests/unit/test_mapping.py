"""Mappings: tools' exports (tests/fixtures/vendors, written from each vendor's documented export
columns) turned into contract entities inside the night's ingest, with the same quarantine."""

from __future__ import annotations

import datetime as dt
import shutil
import textwrap
from pathlib import Path

import pytest

from pipelines.contract import default_in_use
from pipelines.intake.ingest import ingest_source
from pipelines.intake.landing import SourceRejected
from pipelines.intake.map_preview import preview
from pipelines.intake.mapping import (
    MappingError,
    library_path,
    load_mapping,
    shipped_mappings,
)
from pipelines.settings import Settings
from tests.drops import make_drop
from tests.raw_lake import rows

RUN = dt.date(2026, 3, 2)
VENDORS = Path(__file__).resolve().parents[1] / "fixtures" / "vendors" / "drop"


def use(settings: Settings, *mappings: str | tuple[str, str]) -> Path:
    """Deliver the vendor fixtures as the night's drop and install mappings: shipped names, or
    (file name, YAML text) pairs written into the mappings folder."""
    drop = settings.drop_dir(RUN)
    if not drop.exists():
        shutil.copytree(VENDORS, drop)
    settings.mappings.mkdir(parents=True, exist_ok=True)
    for m in mappings:
        if isinstance(m, tuple):
            (settings.mappings / m[0]).write_text(textwrap.dedent(m[1]))
        else:
            shutil.copy(library_path(m), settings.mappings / (m.replace("/", "-") + ".yml"))
    return drop


def by_line(result) -> dict[int, list[tuple[str, str]]]:
    out: dict[int, list[tuple[str, str]]] = {}
    for q in result.quarantined:
        out.setdefault(q["line"], []).append((q["column_name"], q["reason"]))
    return out


def test_every_shipped_mapping_loads_and_names_its_vendor() -> None:
    found = {str(m.path.relative_to(library_path("x").parent)): m for m in shipped_mappings()}
    assert {"salesforce/accounts.yml", "hubspot/companies.yml", "stripe/subscriptions-csv.yml",
            "stripe/subscriptions-api.yml", "chargebee/subscriptions.yml", "segment/track-events.yml",
            "zendesk/tickets.yml", "warehouse/daily-usage.yml"} <= set(found)
    assert all(m.description for m in found.values())


def test_salesforce_accounts(settings: Settings) -> None:
    use(settings, "salesforce/accounts")
    (r,) = preview(settings, RUN, rows=10)
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (6, 4, 2)
    sample = {row["account_id"]: row for row in r.sample}
    assert sample["0015g00000GammAAA"]["parent_account_id"] == "0015g00000AcmeAAA"
    assert sample["0015g00000GammAAA"]["country"] == "GB"
    assert sample["0015g00000GammAAA"]["created_date"] == dt.date(2023, 11, 20)
    assert sample["0015g00000DeltAAA"]["is_partner"] is True  # Type Technology Partner
    assert sample["0015g00000AcmeAAA"]["is_partner"] is False  # otherwise: false
    assert sample["0015g00000DeltAAA"]["industry"] == "unknown"  # empty picklist: the mapping's default
    assert by_line(r) == {6: [("account_name", "missing required value")],
                          7: [("employee_count", "unparseable integer value 'not known'")]}


def test_a_parquet_export_maps_like_its_csv(settings: Settings) -> None:
    """The same Salesforce export as Parquet (a warehouse unload): typed columns are read as text
    and converted by the same rules."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    drop = use(settings, ("sf.yml", """
        extends: salesforce/accounts
        input: {file: salesforce/Account.parquet}
        """))
    table = pacsv.read_csv(drop / "salesforce" / "Account.csv")  # NUMBEROFEMPLOYEES typed by the reader
    pq.write_table(table, drop / "salesforce" / "Account.parquet")
    (r,) = preview(settings, RUN, rows=10)
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (6, 4, 2)
    assert {row["account_id"]: row["employee_count"] for row in r.sample}["0015g00000GammAAA"] == 5400


def test_hubspot_companies_country_names_become_codes(settings: Settings) -> None:
    use(settings, "hubspot/companies")
    (r,) = preview(settings, RUN, rows=10)
    assert [row["country"] for row in r.sample] == ["US", "DE", "GB", "CA"]
    assert r.sample[0]["created_date"] == dt.date(2024, 2, 14)
    assert by_line(r) == {6: [("country", "value 'Atlantis' does not match ^[A-Za-z]{2}$")]}


def test_stripe_dashboard_csv(settings: Settings) -> None:
    use(settings, "stripe/subscriptions-csv")
    (r,) = preview(settings, RUN, rows=10)
    sample = {row["subscription_id"]: row for row in r.sample}
    delta = sample["sub_1NDeltStart1"]
    assert (delta["start_date"], delta["end_date"]) == (dt.date(2025, 1, 10), dt.date(2025, 12, 10))
    assert str(sample["sub_1NAcmeCore01"]["amount"]) == "900.00" and sample["sub_1NAcmeCore01"]["seats"] == 120
    assert sample["sub_1NAcmeCore01"]["currency"] == "usd" and sample["sub_1NAcmeCore01"]["is_per_seat"] is True
    ((column, reason),) = by_line(r)[7]
    assert column == "billing_interval" and reason.startswith("'week' of Interval is not in the values of mapping")


def test_stripe_api_json_list(settings: Settings) -> None:
    use(settings, "stripe/subscriptions-api")
    (r,) = preview(settings, RUN, rows=10)
    sample = {row["subscription_id"]: row for row in r.sample}
    beta = sample["sub_1PBetaGrow01"]  # month x 3, 13500 cents
    assert (beta["billing_interval"], str(beta["amount"]), beta["start_date"]) == ("quarter", "135.00", dt.date(2024, 7, 1))
    assert sample["sub_1PDeltStart1"]["end_date"] == dt.date(2025, 12, 10)  # ended_at, Unix seconds
    lines = by_line(r)
    assert [c for c, _ in lines[177]] == ["billing_interval"] and "'day|1'" in lines[177][0][1]
    assert lines[234] == [("account_id", "missing required value")]  # no metadata.account_id
    # the line is where the record starts in the JSON document
    text = (settings.drop_dir(RUN) / "stripe/subscriptions.json").read_text().splitlines()
    assert text[177 - 1].strip() == "{" and '"sub_1PZetaDaily1"' in text[177]


def test_chargebee_subscriptions_end_only_when_cancelled(settings: Settings) -> None:
    use(settings, "chargebee/subscriptions")
    (r,) = preview(settings, RUN, rows=10)
    sample = {row["subscription_id"]: row for row in r.sample}
    assert sample["AzZlGJTDelt1"]["end_date"] == dt.date(2025, 12, 10)
    assert sample["AzZlGJTAcme1"]["end_date"] is None
    assert sample["AzZlGJTBeta1"]["billing_interval"] == "quarter"
    assert [c for c, _ in by_line(r)[6]] == ["billing_interval"]


def test_segment_track_events(settings: Settings) -> None:
    use(settings, "segment/track-events")
    (r,) = preview(settings, RUN, rows=10)
    assert (r.rows_read, r.rows_left_out, r.rows_loaded, r.rows_quarantined) == (6, 1, 4, 2)
    beta = next(row for row in r.sample if row["event_id"] == "ajs-next-04")
    assert beta["occurred_at"] == dt.datetime(2026, 3, 1, 6, 1)  # +01:00 converted to UTC
    assert beta["feature"] is None and beta["account_id"] == "0015g00000BetaAAA"
    lines = by_line(r)
    assert lines[6] == [("account_id", "missing required value")]  # no context.groupId
    assert lines[7][0][0] == "occurred_at" and "is in the future" in lines[7][0][1]


def test_zendesk_tickets_look_up_the_account(settings: Settings) -> None:
    use(settings, "zendesk/tickets")
    (r,) = preview(settings, RUN, rows=10)
    sample = {row["case_id"]: row for row in r.sample}
    assert sample["1201"]["account_id"] == "0015g00000AcmeAAA" and sample["1201"]["csat"] == 5
    assert sample["1201"]["closed_at"] == dt.datetime(2026, 2, 11, 16, 30)
    assert (sample["1202"]["closed_at"], sample["1202"]["csat"]) == (None, None)  # open; rating offered
    assert sample["1203"]["status"] == "pending"  # hold
    assert (sample["1204"]["priority"], sample["1204"]["csat"]) == ("normal", 1)  # no priority; bad
    lines = by_line(r)
    assert lines[173] == [("account_id", "no record of zendesk/organizations.json has id = '361599999' "
                                         "(lookup of organization_id, mapping zendesk-tickets.yml)")]
    assert lines[214] == [("account_id", "missing required value")]


def test_daily_usage_rollup_per_subscription(settings: Settings) -> None:
    """Usage as daily counts (usage/daily_counts): rows name the subscription; a feature-less row
    is usage not attributed to a feature; negative counts and unparseable days are quarantined.
    Off by default (usage as events): the preview says the night would ignore the mapping."""
    use(settings, "warehouse/daily-usage")
    (r,) = preview(settings, RUN)
    assert r.off and "usage/daily_counts is not in use" in r.problems[0] and r.rows_read == 0
    settings = Settings(**settings.model_dump() | {"entities_in_use": (*default_in_use(), "usage/daily_counts")})
    (r,) = preview(settings, RUN, rows=10)
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (6, 4, 2)
    first = r.sample[0]
    assert (first["subscription_id"], first["usage_date"], first["event_count"]) == (
        "sub_1NAcmeCore01", dt.date(2026, 2, 28), 412)
    assert r.sample[3]["feature"] is None and "account_id" not in r.sample[3]  # not mapped: null in the lake
    lines = by_line(r)
    assert lines[6] == [("event_count", "value '-3' is below the minimum 0")]
    assert lines[7] == [("usage_date", "unparseable date value '03/01/2026'")]


def test_mapping_runs_inside_the_nights_ingest_with_the_same_quarantine(settings: Settings) -> None:
    """The mapped export goes through ingest_source: the lake holds the contract columns, the
    quarantine names the export's file, line and column, and keeps its whole record."""
    drop = use(settings, "stripe/subscriptions-csv")
    make_drop(settings.landing, dt.date(2026, 3, 1))  # contract files of the other billing entity
    (drop / "billing").mkdir()
    shutil.copy(settings.landing / "2026-03-01" / "billing" / "invoices.csv", drop / "billing" / "invoices.csv")
    loads = {r.entity: r for r in ingest_source(settings, RUN, "billing")}
    assert (loads["subscriptions"].rows_loaded, loads["subscriptions"].rows_quarantined) == (5, 1)
    assert loads["subscriptions"].file == str(drop / "stripe" / "subscriptions.csv")
    ((file, line, column, value, record),) = rows(
        settings, "select file, line, column_name, value, record from raw._quarantine")
    assert (file, line, column, value) == (str(drop / "stripe/subscriptions.csv"), 7, "billing_interval", "week")
    assert '"Customer Name":"Zeta Systems"' in record  # the export's own record, every column
    (amount, interval, source_line) = rows(
        settings, "select amount, billing_interval, _source_line from raw.billing__subscriptions "
                  "where subscription_id = 'sub_1NGammAddon1'")[0]
    assert (str(amount), interval, source_line) == ("60.00", "year", 5)


def test_file_level_problems_name_the_export_and_the_mapping(settings: Settings) -> None:
    drop = use(settings, ("subs.yml", """
        entity: billing/subscriptions
        input: {file: stripe/subscriptions.csv}
        columns:
          subscription_id: id
          account_id: Account Key
          plan: Plan
          product_line: Product
          start_date: Start Date (UTC)
          billing_interval: Interval
          amount: Amount
          currency: Currency
          seats: Seats
        """))
    (billing := drop / "billing").mkdir()
    (billing / "invoices.csv").write_text("invoice_id,account_id,issued_date,due_date,amount,currency,status,paid_date\n")
    with pytest.raises(SourceRejected) as err:
        ingest_source(settings, RUN, "billing")
    text = str(err.value)
    assert "stripe/subscriptions.csv: lacks column(s) that mapping" in text
    assert "Account Key (for account_id); Seats (for seats)" in text
    # the contract's own file beside the export: delivered twice
    (billing / "subscriptions.csv").write_text("subscription_id\n")
    (settings.mappings / "subs.yml").write_text((settings.mappings / "subs.yml").read_text()
                                               .replace("Account Key", "account_id (metadata)").replace("Seats", "Quantity"))
    with pytest.raises(SourceRejected, match="is delivered beside the export"):
        ingest_source(settings, RUN, "billing")
    (billing / "subscriptions.csv").unlink()
    (drop / "stripe" / "subscriptions.csv").unlink()
    with pytest.raises(SourceRejected, match=r"stripe/subscriptions.csv: is missing \(mapping .*subs.yml reads it"):
        ingest_source(settings, RUN, "billing")


def test_annual_amounts_and_overlapping_open_subscriptions(settings: Settings) -> None:
    """`per: year` turns an ARR column into the amount per billing interval; `overlaps`
    decides what two open periods of one account and product line become."""
    base = """
        extends: chargebee/subscriptions
        columns:
          amount: {from: subscriptions.mrr, per: month}
          seats: {value: 1}
          is_per_seat: {value: false}
        overlaps: %s
        """
    use(settings, ("cb.yml", base % "close_earlier"))
    (r,) = preview(settings, RUN, rows=10)
    sample = {row["subscription_id"]: row for row in r.sample}
    # Beta's quarterly period (open since 2024-07-01) is closed when the monthly one starts
    assert sample["AzZlGJTBeta1"]["end_date"] == dt.date(2025, 11, 15)
    assert sample["AzZlGJTBeta2"]["end_date"] is None
    assert str(sample["AzZlGJTBeta1"]["amount"]) == "2025.00"  # MRR 675 x 3 months
    assert str(sample["AzZlGJTAcme1"]["amount"]) == "108000.00"  # MRR 9000 x 12
    (settings.mappings / "cb.yml").write_text(textwrap.dedent(base % "quarantine_later"))
    (r,) = preview(settings, RUN, rows=10)
    assert "AzZlGJTBeta2" not in {row["subscription_id"] for row in r.sample}
    assert by_line(r)[4] == [("start_date", "starts inside subscription AzZlGJTBeta1 of the same account and "
                                            "product line (mapping cb.yml: overlaps quarantine_later)")]


@pytest.mark.parametrize(("text", "message"), [
    ("entity: crm/leads\ninput: {file: a.csv}\ncolumns: {a: b}\n", "is not a contract entity"),
    ("entity: crm/accounts\ninput: {file: a.csv}\ncolumns: {account_id: Id}\n",
     "maps nothing to required column(s) account_name, industry, country, created_date"),
    ("entity: usage/events\ninput: {file: a.xlsx}\ncolumns: {event_id: id}\n", "format 'xlsx' is not one of"),
    ("entity: crm/nps_responses\ninput: {file: a.csv}\ncolumns:\n  response_id: id\n  account_id: a\n"
     "  responded_at: {from: t, scale: 2}\n  score: s\n", "`scale` is a number, for integer and decimal"),
    ("entity: crm/nps_responses\ninput: {file: a.csv}\ncolumns:\n  response_id: id\n  account_id: a\n"
     "  responded_at: t\n  score: {from: s, otherwise: 0}\n", "`otherwise` needs a `values` map"),
    ("extends: nowhere/nothing\ncolumns: {a: b}\n", "neither a shipped mapping"),
    ("entity: crm/nps_responses\ninput: {file: ../x.csv}\ncolumns: {response_id: id}\n", "must be a path under"),
])
def test_mapping_files_are_checked_with_the_key_at_fault(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.yml"
    path.write_text(text)
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert message in str(err.value) and str(path) in str(err.value)
