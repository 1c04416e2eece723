"""The static HTML report: self-contained, SVG charts, clear notes when a mart is missing or empty."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

import duckdb
import pytest

from pipelines.publish import publish
from pipelines.quality import run_quality_gate
from pipelines.quality.testing import build_demo_warehouse, demo_settings
from pipelines.report import build_report
from pipelines.report import svg as charts

RUN = dt.date(2026, 1, 5)


@pytest.fixture
def published(tmp_path):
    settings = demo_settings(tmp_path)
    build_demo_warehouse(settings, RUN)
    publish(settings, RUN, run_quality_gate(settings, RUN), build_html_report=False)
    return settings


def svgs(html: str) -> list[str]:
    found = re.findall(r"<svg\b.*?</svg>", html, re.S)
    for s in found:
        ET.fromstring(s)  # every chart is well-formed SVG
    return found


def test_report_is_self_contained_with_charts(published, tmp_path):
    out = build_report(published, RUN, published.published / "segment_mart.duckdb", tmp_path / "r" / "report.html")
    html = out.read_text()
    assert len(svgs(html)) >= 6
    for title in ("Retention and expansion by tier and segment", "Tier distribution against targets",
                  "Health distribution by tier", "Coverage and cost to serve", "Top at-risk accounts",
                  "Top expansion accounts"):
        assert title in html
    assert "GRR by tier" in html and "NRR by tier" in html and "Share of ARR by tier vs target" in html
    assert "Strategic" in html and "Tech-touch" in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html and "<link" not in html
    # the demo has no coverage mart: that section says so instead of failing
    assert "mart marts.rpt_coverage_by_tier is not in the published file" in html


def test_publish_ships_the_report(tmp_path):
    settings = demo_settings(tmp_path)
    build_demo_warehouse(settings, RUN)
    manifest = publish(settings, RUN, run_quality_gate(settings, RUN))
    html = (settings.published / "report.html").read_text()
    assert manifest.report == {"status": "built", "path": "report.html"}
    assert svgs(html)


def test_empty_and_missing_marts_degrade_to_notes(tmp_path):
    db = tmp_path / "pub.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create schema marts")
    con.execute("create table marts.rpt_tier_distribution (as_of_date date, tier_number integer, tier_name varchar, "
                "account_share double, arr_share double)")
    con.close()
    html = build_report(None, RUN, db, tmp_path / "report.html").read_text()
    assert html.count("No data.") == 6
    assert "marts.rpt_tier_distribution is empty" in html
    assert "mart marts.rpt_segment_retention_monthly is not in the published file" in html


def test_charts_handle_gaps_and_empty_input():
    line = charts.line_chart({"Core": [("2026-01", 0.9), ("2026-02", None), ("2026-03", 1.1)]}, "GRR", fmt=charts.pct)
    ET.fromstring(line)
    assert line.count("<polyline") == 2  # the gap splits the line
    assert "no data" in charts.line_chart({}, "empty")
    bars = charts.target_bars([("Strategic", 0.3, 0.1, 0.2), ("Core", 0.35, 0.3, 0.4)], "share")
    assert "off target" in bars and bars.count("off target") == 1
