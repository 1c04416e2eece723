"""The published report of a real night, rendered by Debian's headless Chromium (Playwright
drives /usr/bin/chromium; `make test` installs the Debian package when it is missing).

At a desktop width (1400 px) and a phone width (390 px): nothing is wider than the viewport
(tables scroll inside their own box), and every chart's marks lie inside its plot area (no bar
above its axis running over the chart's title). A full-page screenshot of each width is kept
under var/test-artifacts/report/ and its path printed.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from pipelines.settings import PROJECT_ROOT

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
#: Flags for this machine's closed network (docs/operations.md, "Tests").
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = PROJECT_ROOT / "var" / "test-artifacts" / "report"
WIDTHS = (1400, 390)

#: Elements sticking out of the viewport, ignoring what a scrolling box clips.
TOO_WIDE = """() => {
  const vw = document.documentElement.clientWidth, out = [];
  const clipped = el => { for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; }
    return false; };
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width && (r.right > vw + 0.5 || r.left < -0.5) && !clipped(el))
      out.push(`${el.tagName.toLowerCase()}.${el.className.baseVal ?? el.className} ${r.left.toFixed(0)}..${r.right.toFixed(0)}`);
  }
  return {vw, scrollWidth: document.documentElement.scrollWidth, out: out.slice(0, 10)};
}"""

#: Chart marks outside their chart's plot rectangle (bars by their box, points by their centre).
MARKS_OUTSIDE = """() => {
  const bad = []; let charts = 0, marks = 0;
  for (const svg of document.querySelectorAll('svg.chart')) {
    const plot = svg.querySelector('rect.plot'); if (!plot) continue; charts++;
    const p = plot.getBoundingClientRect(), tol = 1;
    for (const m of svg.querySelectorAll('.mark')) {
      marks++;
      const r = m.getBoundingClientRect();
      const [x0, x1, y0, y1] = m.tagName === 'circle'
        ? [r.x + r.width / 2, r.x + r.width / 2, r.y + r.height / 2, r.y + r.height / 2]
        : [r.left, r.right, r.top, r.bottom];
      if (x0 < p.left - tol || x1 > p.right + tol || y0 < p.top - tol || y1 > p.bottom + tol)
        bad.push(`${svg.getAttribute('aria-label')}: ${m.textContent}`);
    }
  }
  return {charts, marks, bad: bad.slice(0, 10)};
}"""


@pytest.fixture(scope="module")
def browser_page():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="segment-mart-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            yield context.new_page()
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.parametrize("width", WIDTHS)
def test_report_fits_the_screen_and_charts_contain_their_marks(real_nights, browser_page, width):
    report = (real_nights.settings.published / "report.html").resolve()
    page = browser_page
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(report.as_uri())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"report-{real_nights.last}-{width}px.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot of the report at {width} px: {shot}")

    wide = page.evaluate(TOO_WIDE)
    assert wide["scrollWidth"] <= wide["vw"], wide
    assert wide["out"] == [], wide
    marks = page.evaluate(MARKS_OUTSIDE)
    assert marks["charts"] >= 25 and marks["marks"] > 500, marks
    assert marks["bad"] == [], marks
    for table in page.query_selector_all(".table-wrap"):
        assert table.bounding_box()["width"] <= width


def test_report_shows_open_actions_per_owner_and_tier_and_health_trend(real_nights, browser_page):
    """The action feed and health trend sections as a reader sees them (issue 21): the open actions
    per owner and tier agree with the published feed, and the health trend is drawn per tier."""
    from pipelines.release import open_published

    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto((real_nights.settings.published / "report.html").resolve().as_uri())
    actions = page.locator("section#actions")
    assert actions.locator("h2").inner_text() == "Open actions by owner and tier"
    per_owner = actions.locator("table", has=page.locator("caption", has_text="Open actions per owner and tier"))
    headers = per_owner.locator("thead th").all_inner_texts()
    assert headers[0] == "owner" and "open actions" in headers
    cells = [row.locator("td").all_inner_texts() for row in per_owner.locator("tbody tr").all()]
    shown = {(r[0], h): int(v) for r in cells for h, v in zip(headers[1:], r[1:], strict=True)
             if h not in ("open actions", "overdue") and not h.endswith("priority")}
    con = open_published(real_nights.settings)
    try:
        published = con.execute(
            "select coalesce('CSM ' || csm_owner_id, 'unassigned'), tier_name, count(*) from marts.fct_account_actions_daily "
            "where as_of_date = ? and action_status = 'open' group by all", [real_nights.last]).fetchall()
    finally:
        con.close()
    assert published and {k: v for k, v in shown.items() if v} == {(o, t): n for o, t, n in published}
    assert actions.locator("svg.chart").count() >= 2 and actions.locator("svg.chart .mark").count() > 0
    trend = page.locator("section#health-trend")
    assert trend.locator("svg.chart").count() == 2
    table = trend.locator("table", has=page.locator("caption", has_text="Health trend by tier"))
    assert table.locator("thead th").all_inner_texts() == ["window", "tier", "down", "same", "up", "no history"]
    assert table.locator("tbody tr").count() >= 2
