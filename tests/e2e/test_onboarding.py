"""Issue 18, "Done when": a company onboards with vendor exports, mapping files and configuration
only (no Python), and the night publishes.

The company exports Salesforce accounts (Data Loader), Stripe subscriptions (the Dashboard's
CSV) and Segment track events (JSON Lines); it has no NPS program, no CS activity log, no
invoice export and no support export (tests/vendor_drops.py writes those exports from a
generated business, as the vendors shape them). What the company writes is what this test
writes, and nothing else: three mapping files extending the shipped ones and one setting. It
previews the mapping with `segment-mart map preview`, then runs its nights with `segment-mart
run`, the commands docs/onboarding.md gives, as separate processes. The health components fed
only by the absent sources are missing for every account and their weight is redistributed:
health is product usage alone.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.lab.generate import generate
from pipelines.release import open_published
from pipelines.settings import get_settings
from tests.vendor_drops import vendor_drops

ACCOUNTS = 30
START = dt.date(2025, 3, 1)
DAYS = 400
DROP_DAYS = 2
SEED = 21
CLI = str(Path(sys.executable).with_name("segment-mart"))

#: Everything the company writes (the test counts these lines).
MAPPINGS = {
    "salesforce-accounts.yml": "extends: salesforce/accounts\n",
    "stripe-subscriptions.yml": "extends: stripe/subscriptions-csv\n",
    "segment-events.yml": "extends: segment/track-events\n",
}
SETTINGS = {"SEGMENT_MART_ENTITIES_IN_USE": "crm/accounts,billing/subscriptions,usage/events"}
ABSENT_COMPONENTS = "billing, cs_engagement, sentiment, support"

pytestmark = pytest.mark.timeout(3600)


def _lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))


def test_onboarding_with_mapping_files_and_configuration_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    summary = generate(home / "landing", accounts=ACCOUNTS, start_date=START, days=DAYS, drop_days=DROP_DAYS,
                       seed=SEED)
    nights = [dt.date.fromisoformat(str(d)) for d in summary.run_dates]
    vendor_drops(home / "landing", nights)

    # --- what the company writes: mapping files and a setting --------------------------------
    (home / "mappings").mkdir()
    for name, text in MAPPINGS.items():
        (home / "mappings" / name).write_text(text)
    env = os.environ | {"SEGMENT_MART_HOME": str(home)} | SETTINGS
    written = sum(_lines(t) for t in MAPPINGS.values()) + len(SETTINGS)

    preview = subprocess.run([CLI, "map", "preview", "--run-date", str(nights[0])], env=env,
                             capture_output=True, text=True, timeout=1200)
    assert preview.returncode == 0, preview.stdout + preview.stderr
    for entity, export in (("crm/accounts", "salesforce/Account.csv"), ("billing/subscriptions", "stripe/subscriptions.csv"),
                           ("usage/events", "segment/tracks.jsonl")):
        assert f"== {entity} <- {home / 'landing' / str(nights[0]) / export}" in preview.stdout
    assert "1 record(s) left out by `where`" in preview.stdout  # the identify call
    assert "quarantine 0 (0.0%)" in preview.stdout

    durations = []
    for night in nights:
        started = time.monotonic()
        run = subprocess.run([CLI, "run", "--run-date", str(night)], env=env, capture_output=True, text=True,
                             timeout=2400)
        durations.append(time.monotonic() - started)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
        assert "night published" in run.stdout
    print(f"onboarding: {written} lines of mapping and configuration; first night {durations[0]:.0f} s, "
          f"second {durations[1]:.0f} s ({ACCOUNTS} accounts, {DAYS} days of history; load {os.getloadavg()[0]:.1f})")

    settings = get_settings(home=home)
    with open_published(settings) as con:
        live = con.execute("""
            select account_id, health_score, product_usage_score, missing_components, missing_component_count
            from marts.fct_account_health_daily
            where as_of_date = ? and account_status = 'live' and health_score is not null
        """, [nights[-1]]).fetchall()
        accounts = con.execute("select count(*) from marts.dim_accounts").fetchone()[0]
        sources = con.execute("select count(*), count(*) filter (where account_id like '001%AAA') "
                              "from marts.dim_accounts").fetchone()
    assert accounts == ACCOUNTS and sources == (ACCOUNTS, ACCOUNTS)  # the Salesforce ids are the keys
    assert len(live) >= 10
    for account_id, health, usage, missing, count in live:
        # every component fed only by an absent source is missing; its weight went to product usage
        assert (missing, count) == (ABSENT_COMPONENTS, 4), account_id
        assert float(health) == pytest.approx(float(usage), abs=0.051), account_id
    report = (settings.published / "report.html").read_text()
    assert "crm/nps_responses is not in use" in report and "billing/invoices is not in use" in report
    assert "usage/daily_counts" not in report.split('id="data"')[1].split("</section>")[0]  # the other usage shape
