"""The static HTML report, on the marts dbt really builds (``real_nights``: two generated nights
ingested, built, gated and published), plus the chart and period helpers on their own."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import duckdb
import pytest

from pipelines.release import open_published
from pipelines.report import build_report
from pipelines.report import svg as charts
from pipelines.report.build import SECTIONS
from pipelines.report.columns import COLUMNS, PERIOD_MARTS
from pipelines.report.marts import Marts
from pipelines.report.periods import flag_rows, is_complete

SVG_NS = "{http://www.w3.org/2000/svg}"


def svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(s) for s in re.findall(r"<svg\b.*?</svg>", html, re.S)]  # each is well-formed


def published_db(real_nights) -> Path:
    return (real_nights.settings.published / "segment_mart.duckdb").resolve()


def render(db: Path, run_date: dt.date, out: Path) -> str:
    return build_report(None, run_date, db, out).read_text()


def private_copy(real_nights, tmp_path: Path) -> Path:
    db = tmp_path / "copy.duckdb"
    shutil.copyfile(published_db(real_nights), db)
    db.chmod(0o644)
    return db


def previous_month(day: dt.date) -> str:
    return (day.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")


# --------------------------------------------------------------------------- real marts


def test_the_report_reads_only_columns_the_real_marts_have(real_nights):
    """columns.py is the one list of what the report reads: a renamed mart column fails here."""
    con = open_published(path=published_db(real_nights))
    try:
        marts = Marts(con, real_nights.last)
        assert marts.missing() == {}
        assert set(PERIOD_MARTS) <= set(COLUMNS) <= set(marts.names)
    finally:
        con.close()


def test_every_section_renders_from_a_real_night(real_nights, tmp_path):
    html = render(published_db(real_nights), real_nights.last, tmp_path / "report.html")
    assert "No data." not in html, re.findall(r"No data\.</b>[^<]*", html)
    for _, title, _ in SECTIONS:
        assert f"<h2>{title}</h2>" in html
    assert len(svgs(html)) >= 25
    for title in ("GRR by tier, monthly", "Tier mix of live accounts (share)", "Tier migrations per month",
                  "Logo retention by cohort", "Revenue retention by cohort", "ARPA (monthly revenue per account) by tier",
                  "GRR by tier, quarterly"):
        assert title in html
    assert "<script" not in html and "<link" not in html and "https://" not in html
    # readable headers and owners, never raw column names or a bare CSM id
    at_risk = html.split('id="at-risk"')[1].split("</section>")[0]
    assert "weakest_health_component" not in at_risk and "csm_owner_id" not in at_risk
    assert "main driver (weakest health component)" in at_risk
    assert re.search(r"<td>(CSM csm_\d+|unassigned)</td>", at_risk)


def test_headline_cards_show_the_last_complete_month_with_count_and_money_formats(real_nights, tmp_path):
    html = render(published_db(real_nights), real_nights.last, tmp_path / "report.html")
    cards = {label: value for value, label in re.findall(r'<div class="card"><b>([^<]*)</b>([^<]*)<', html)}
    month = previous_month(real_nights.last)
    assert set(cards) >= {"live accounts in tiers", "ARR", f"GRR, {month}", f"NRR, {month}",
                          f"logo retention, {month}"}
    assert re.fullmatch(r"\d[\d,]*", cards["live accounts in tiers"])  # a count, not "$33"
    assert cards["ARR"].startswith("$")
    assert re.fullmatch(r"\d+\.\d%", cards[f"GRR, {month}"])


def test_the_month_in_progress_and_backcast_months_are_marked(real_nights, tmp_path):
    html = render(published_db(real_nights), real_nights.last, tmp_path / "report.html")
    assert 'data-period="in progress"' in html and 'data-period="backcast"' in html
    assert '<tr class="in-progress">' in html and '<tr class="backcast">' in html
    # the last complete month's table says so
    assert f"By tier, {previous_month(real_nights.last)} (last complete month)" in html


def _with_flags(db: Path, mart: str, complete_before: dt.date | None) -> None:
    """Add (or drop, with None) the models' period flags on ``mart`` of a private copy."""
    con = duckdb.connect(str(db))
    try:
        start = PERIOD_MARTS[mart]
        for flag in ("is_period_complete", "is_backcast"):
            con.execute(f"alter table marts.{mart} drop column if exists {flag}")
        if complete_before is not None:
            con.execute(f"alter table marts.{mart} add column is_period_complete boolean")
            con.execute(f"alter table marts.{mart} add column is_backcast boolean")
            con.execute(f"update marts.{mart} set is_period_complete = {start} < ?, is_backcast = false",
                        [complete_before])
        con.execute("checkpoint")
    finally:
        con.close()


def test_period_flags_are_read_from_the_mart_when_it_has_them(real_nights, tmp_path):
    """A mart's own is_period_complete wins: mark the last complete month incomplete too and the
    headline moves back a month; is_backcast false everywhere leaves no backcast band."""
    db = private_copy(real_nights, tmp_path)
    last_month_start = real_nights.last.replace(day=1) - dt.timedelta(days=1)
    _with_flags(db, "rpt_segment_retention_monthly", complete_before=last_month_start.replace(day=1))
    html = render(db, real_nights.last, tmp_path / "report.html")
    two_back = previous_month(last_month_start)
    assert f"GRR, {two_back}" in html and f"GRR, {previous_month(real_nights.last)}" not in html
    retention = html.split('id="retention"')[1].split('id="quarterly"')[0]
    assert 'data-period="backcast"' not in retention


def test_period_flags_are_derived_when_the_mart_lacks_them(real_nights, tmp_path):
    db = private_copy(real_nights, tmp_path)
    for mart in PERIOD_MARTS:
        _with_flags(db, mart, complete_before=None)
    html = render(db, real_nights.last, tmp_path / "report.html")
    assert "No data." not in html
    assert f"GRR, {previous_month(real_nights.last)}" in html
    assert 'data-period="in progress"' in html and 'data-period="backcast"' in html


def test_churned_accounts_are_in_no_tier(real_nights, tmp_path):
    """Health by tier counts live accounts only; a listed account without a live subscription
    shows no tier."""
    con = open_published(path=published_db(real_nights))
    try:
        live = con.execute("select count(*) from marts.dim_accounts where has_active_subscription").fetchall()[0][0]
    finally:
        con.close()
    html = render(published_db(real_nights), real_nights.last, tmp_path / "report.html")
    health = html.split('id="health"')[1].split("</section>")[0]
    totals = re.findall(r"<tr><td>(?:Strategic|Core|Scale|Tech-touch)</td>(?:<td class=n>[^<]*</td>)*?"
                        r"<td class=n>([\d,]+)</td><td class=n>[\d.–]+</td></tr>", health)
    assert sum(int(t.replace(",", "")) for t in totals) == live


def test_tier_names_order_and_colours_come_from_the_published_configuration(real_nights, tmp_path):
    """The report has no tier constants: names, order (tier number) and colours are seed
    tier_targets' as the night published it. Rename tier 1 and recolour it everywhere in a copy
    of the published file (what a renamed seed gives after a night) and the report follows."""
    db = private_copy(real_nights, tmp_path)
    con = duckdb.connect(str(db))
    try:
        for mart, column in con.execute(
                "select table_name, column_name from duckdb_columns() where schema_name = 'marts' "
                "and data_type = 'VARCHAR'").fetchall():
            con.execute(f'update marts."{mart}" set "{column}" = \'Key accounts\' where "{column}" = \'Strategic\'')
        con.execute("update marts.rpt_tier_distribution set tier_color = '#123456' where tier_number = 1")
        con.execute("update marts.rpt_tier_distribution set tier_color = '#654321' where tier_number = 4")
    finally:
        con.close()
    html = render(db, real_nights.last, tmp_path / "report.html")
    assert "Strategic" not in html and "No data." not in html
    assert "Key accounts if ARR &gt;= $100K" in html  # the glossary's tier rule
    tiers = html.split('id="tiers"')[1].split("</section>")[0]
    assert re.findall(r"<tr><td>(Key accounts|Core|Scale|Tech-touch)</td>", tiers) == [
        "Key accounts", "Core", "Scale", "Tech-touch"]
    assert re.search(r"<th[^>]*>Key accounts</th>", html.split('id="coverage"')[1])  # the CSM books' columns
    mix = next(s for s in svgs(html) if "Live accounts by tier" in ET.tostring(s, encoding="unicode"))
    fills = {r.get("fill") for r in mix.iter(f"{SVG_NS}rect")}
    assert {"#123456", "#654321"} <= fills


def test_publish_ships_the_report(real_nights):
    manifest = json.loads((real_nights.settings.published / "manifest.json").read_text())
    assert manifest["report"] == {"status": "built", "path": "report.html"}
    assert svgs((real_nights.settings.published / "report.html").read_text())


def test_empty_and_missing_marts_degrade_to_notes(tmp_path):
    db = tmp_path / "pub.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create schema marts")
    cols = ", ".join(f"{c} {'date' if c == 'as_of_date' else 'varchar'}" for c in COLUMNS["rpt_tier_distribution"])
    con.execute(f"create table marts.rpt_tier_distribution ({cols})")
    con.close()
    html = build_report(None, dt.date(2026, 1, 5), db, tmp_path / "report.html").read_text()
    assert html.count("No data.") == len(SECTIONS)
    assert "marts.rpt_tier_distribution is empty" in html
    assert "mart marts.rpt_segment_retention_monthly is not in the published file" in html


# --------------------------------------------------------------------------- helpers


def _inside(chart: ET.Element) -> list[str]:
    """Marks outside the chart's plot rectangle (bars and points; SVG user units)."""
    plot = next(r for r in chart.iter(f"{SVG_NS}rect") if r.get("class") == "plot")
    x0, y0 = float(plot.get("x")), float(plot.get("y"))
    x1, y1 = x0 + float(plot.get("width")), y0 + float(plot.get("height"))
    bad = []
    for el in chart.iter():
        if el.get("class") != "mark":
            continue
        if el.tag == f"{SVG_NS}rect":
            x, y, w, h = (float(el.get(k)) for k in ("x", "y", "width", "height"))
            if x < x0 - 0.5 or y < y0 - 0.5 or x + w > x1 + 0.5 or y + h > y1 + 0.5:
                bad.append(el.findtext(f"{SVG_NS}title") or "")
        elif el.tag == f"{SVG_NS}circle":
            cx, cy = float(el.get("cx")), float(el.get("cy"))
            if not (x0 - 0.5 <= cx <= x1 + 0.5 and y0 - 0.5 <= cy <= y1 + 0.5):
                bad.append(el.findtext(f"{SVG_NS}title") or "")
    return bad


def test_axes_contain_the_data():
    """75.4 used to get ticks 0..60, so the bar overran the chart's title."""
    assert charts.nice_ticks(0, 75.4)[-1] >= 75.4
    assert charts.nice_ticks(-3, 7.2)[0] <= -3
    bars = ET.fromstring(charts.bar_chart(["Strategic", "Core"], {"avg": [75.4, 69.5]}, "Average health"))
    stacked = ET.fromstring(charts.bar_chart(["a", "b"], {"x": [33, 40], "y": [5, 7]}, "n", stacked=True, fmt=charts.count))
    line = ET.fromstring(charts.line_chart({"Core": [("2026-01", 0.9), ("2026-02", 1.37)]}, "NRR", fmt=charts.pct,
                                           reference=1.0))
    for chart in (bars, stacked, line):
        assert _inside(chart) == []
    labels = [t.text for t in stacked.iter(f"{SVG_NS}text") if t.get("text-anchor") == "end"]
    assert all(re.fullmatch(r"\d+", s) for s in labels) and len(set(labels)) == len(labels)


def test_charts_handle_gaps_empty_input_and_mark_periods():
    line = charts.line_chart({"Core": [("2026-01", 0.9), ("2026-02", None), ("2026-03", 1.1)]}, "GRR",
                             fmt=charts.pct, periods={"2026-03": "in progress", "2026-01": "backcast"})
    assert line.count('<polyline class="mark"') == 2  # the gap splits the line
    assert 'data-period="in progress"' in line and 'data-period="backcast"' in line
    assert "no data" in charts.line_chart({}, "empty")
    bars = charts.target_bars([("Strategic", 0.3, 0.1, 0.2), ("Core", 0.35, 0.3, 0.4)], "share")
    assert bars.count("off target") == 1


def test_periods_complete_and_backcast_fallbacks():
    run = dt.date(2026, 4, 1)
    assert not is_complete(dt.date(2026, 4, 1), 1, run)
    assert is_complete(dt.date(2026, 3, 1), 1, run)
    assert not is_complete(dt.date(2026, 3, 1), 1, dt.date(2026, 3, 30))  # in progress
    assert not is_complete(dt.date(2026, 1, 1), 3, dt.date(2026, 3, 30))
    # on the night of its last day a month (and a quarter) is complete (issue 17)
    assert is_complete(dt.date(2026, 3, 1), 1, dt.date(2026, 3, 31))
    assert is_complete(dt.date(2026, 1, 1), 3, dt.date(2026, 3, 31))
    assert not is_complete(dt.date(2026, 4, 1), 1, dt.date(2026, 3, 31))
    assert is_complete(dt.date(2026, 1, 1), 3, run)
    rows = flag_rows(
        [{"period_start_date": dt.date(2026, 3, 1), "segment_source": "backcast"},
         {"period_start_date": dt.date(2026, 4, 1), "segment_source": "history"},
         {"period_start_date": dt.date(2026, 2, 1), "segment_source": "backcast", "is_backcast": False,
          "is_period_complete": False}],
        start_column="period_start_date", months=1, run_date=run, history_start=dt.date(2026, 3, 29))
    assert [(r["is_period_complete"], r["is_backcast"]) for r in rows] == [(True, True), (False, False), (False, False)]
    cohorts = flag_rows(
        [{"cohort_month": dt.date(2026, 1, 1), "month_start_date": dt.date(2026, 2, 1), "starting_tier": "Core"},
         {"cohort_month": dt.date(2026, 1, 1), "month_start_date": dt.date(2026, 2, 1), "starting_tier": "All"}],
        start_column="month_start_date", months=1, run_date=run, history_start=dt.date(2026, 3, 29))
    assert [r["is_backcast"] for r in cohorts] == [True, False]


@pytest.mark.parametrize("fmt,value,expected", [("count", 33, "33"), ("money", 33, "$33"), ("pct", 0.335, "33.5%"),
                                                ("ratio", 4.25, "4.2x"), ("days", 15, "15 days")])
def test_number_formats_follow_the_unit(fmt, value, expected):
    from pipelines.report import format as f

    assert getattr(f, fmt)(value) == expected


def test_policy_lab_sections_explain_the_advice_and_the_backtest(real_nights, tmp_path):
    html = render(published_db(real_nights), real_nights.last, tmp_path / "report.html")
    advice = html.split('id="tier-advice"')[1].split("</section>")[0]
    for text in ("median ARR", "Natural breaks", "advised", "segment-mart simulate", "What to do"):
        assert text in advice
    # two nights of daily history: no account-day has 90 days of future yet, and the section says what to run
    backtest = html.split('id="health-backtest"')[1].split("</section>")[0]
    assert "segment-mart backtest" in backtest and "90 days" in backtest


def test_backtest_section_reads_lift_and_auc_in_plain_words():
    from decimal import Decimal

    from pipelines.report.sections import backtest_html

    def row(analysis, group, key, days, churned, **extra):
        base = {"analysis": analysis, "group_value": group, "sort_key": key, "horizon_days": 90,
                "first_scored_date": dt.date(2025, 5, 31), "last_scored_date": dt.date(2025, 12, 31),
                "account_days": days, "accounts": days, "churned_account_days": churned,
                "churn_rate": Decimal(churned) / days, "contraction_rate": Decimal("0.1"),
                "expansion_rate": Decimal("0.2"), "churn_lift": None, "contraction_lift": None,
                "expansion_lift": None, "churn_auc": None, "annualised_retention": None,
                "target_retention_rate": None, "retention_uplift_over_rest": None}
        return base | extra

    rows = [row("overall", "all scored account-days", 0, 100, 10),
            row("health_band", "critical", 3, 10, 5, churn_lift=Decimal("5")),
            row("health_band", "healthy", 1, 90, 5, churn_lift=Decimal("0.55")),
            row("score", "health_score", 1, 100, 10, churn_auc=Decimal("0.81")),
            row("score", "sentiment_score", 6, 60, 8, churn_auc=Decimal("0.9")),
            row("score", "support_score", 4, 50, 6, churn_auc=Decimal("0.5")),
            row("tier", "Strategic", 1, 20, 0, annualised_retention=Decimal("1"),
                target_retention_rate=Decimal("0.98"), retention_uplift_over_rest=Decimal("0.5"))]
    html = backtest_html(rows, "rpt_health_backtest")
    assert "Critical accounts churned 5.00x as often as average" in html or "Critical accounts churned 5" in html
    assert "Components that predict churn: Sentiment (NPS)" in html
    assert "Components that do not" in html and "Support (AUC" in html
    assert "no better than chance" in html and "strong" in html
    assert "Strategic retention (annualised) 100.0% against a target of 98.0%; 50.0% above the other tiers" in html
