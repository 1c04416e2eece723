"""The scripted lifecycles (pipelines/lab/generate/lifecycles.py) and drops on jumping nights."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from pipelines.lab.generate import generate
from pipelines.lab.generate.lifecycles import LIFECYCLES, SCRIPT_FILE, Config, plan
from pipelines.lab.soak import COMPACT_NIGHTS
from pipelines.settings import Settings

CONFIG = Config.of_project(Settings().dbt_project_dir)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_the_compact_nights_show_every_lifecycle_inside_the_run() -> None:
    script = plan(list(COMPACT_NIGHTS), CONFIG)
    assert script.not_scheduled == {}
    assert sorted(lc.name for lc in script.lifecycles) == sorted(LIFECYCLES)
    for lc in script.lifecycles:
        assert COMPACT_NIGHTS[0] < lc.night <= COMPACT_NIGHTS[-1], lc.name  # inside the run, not the history
        assert lc.expectations, lc.name
        for e in lc.expectations:
            assert e.since in COMPACT_NIGHTS and (e.until is None or e.until > e.since), (lc.name, e)


def test_a_lifecycle_the_nights_cannot_show_is_named_with_the_reason() -> None:
    nights = [dt.date(2026, 1, 5) + dt.timedelta(days=i) for i in range(5)]  # five days in one month
    script = plan(nights, CONFIG)
    assert set(script.not_scheduled) == {"reactivation_in_window", "reactivation_after_window"}
    assert "reactivation window 1" in script.not_scheduled["reactivation_after_window"]
    assert plan(nights[:1], CONFIG).not_scheduled.keys() == set(LIFECYCLES)


def test_amounts_follow_the_configured_thresholds() -> None:
    # halfway between Core ($25K) and the lowest Tier 1 threshold ($40K); Scale between $5K and $25K
    assert CONFIG.core_mrr * 12 > CONFIG.tier2_min_arr and CONFIG.core_mrr * 12 < CONFIG.tier1_lowest_min_arr
    assert CONFIG.tier4_max_arr < CONFIG.scale_mrr * 12 < CONFIG.tier2_min_arr
    assert CONFIG.tier_names[2] == "Core" and CONFIG.reactivation_window_months == 1


@pytest.fixture(scope="module")
def compact(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("compact")
    start = COMPACT_NIGHTS[0] - dt.timedelta(days=60)
    summary = generate(out, accounts=8, start_date=start, days=(COMPACT_NIGHTS[-1] - start).days + 1,
                       drop_dates=COMPACT_NIGHTS, seed=3, lifecycles=True)
    return out, summary


def test_drops_only_on_the_given_nights(compact) -> None:
    out, summary = compact
    assert summary.run_dates == list(COMPACT_NIGHTS)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [d.isoformat() for d in COMPACT_NIGHTS]
    script = json.loads((out / SCRIPT_FILE).read_text())
    assert summary.lifecycle_script == out / SCRIPT_FILE
    assert script["nights"] == [d.isoformat() for d in COMPACT_NIGHTS] and script["not_scheduled"] == {}


def test_a_drop_after_a_jump_carries_every_day_since_the_previous_one(compact) -> None:
    out, _ = compact
    events = _rows(out / "2026-03-03" / "usage" / "events.csv")
    days = {e["occurred_at"][:10] for e in events if e["account_id"].startswith("acc_")}
    # the simulated accounts' events of 11 Feb .. 3 Mar (a few late ones of earlier days too)
    assert {"2026-02-11", "2026-02-20", "2026-03-01", "2026-03-03"} <= days
    assert max(days) == "2026-03-03"
    every = [e["event_id"] for d in COMPACT_NIGHTS for e in _rows(out / d.isoformat() / "usage" / "events.csv")
             if e["account_id"].startswith("acc_")]
    assert len(set(every)) > 0.99 * len(every)  # a few re-sent duplicates, nothing else twice


def test_scripted_rows_as_of_each_night(compact) -> None:
    out, _ = compact
    accounts = {d: {r["account_id"]: r for r in _rows(out / d.isoformat() / "crm" / "accounts.csv")}
                for d in COMPACT_NIGHTS}
    assert "lc_crm_restored" in accounts[COMPACT_NIGHTS[1]] and "lc_crm_restored" not in accounts[COMPACT_NIGHTS[2]]
    assert "lc_crm_restored" in accounts[COMPACT_NIGHTS[3]]
    assert accounts[COMPACT_NIGHTS[2]]["lc_csm_change"]["csm_owner_id"] == "csm_900"
    assert accounts[COMPACT_NIGHTS[3]]["lc_csm_change"]["csm_owner_id"] == "csm_901"
    subs = {d: [r for r in _rows(out / d.isoformat() / "billing" / "subscriptions.csv")
                if r["account_id"] == "lc_restated_month"] for d in (COMPACT_NIGHTS[1], COMPACT_NIGHTS[2])}
    january = [r for r in subs[COMPACT_NIGHTS[2]] if r["start_date"] == "2026-01-01"]
    assert [r["amount"] for r in january] == [f"{CONFIG.core_mrr + 100}.00"]  # restated once January closed
    assert [r["amount"] for r in subs[COMPACT_NIGHTS[1]] if r["start_date"] == "2026-01-01"] == [
        f"{CONFIG.core_mrr}.00"]
    invoices = {d: [r for r in _rows(out / d.isoformat() / "billing" / "invoices.csv")
                    if r["account_id"] == "lc_past_due"] for d in COMPACT_NIGHTS}
    assert [r["status"] for r in invoices[COMPACT_NIGHTS[2]]] == ["open"]
    assert [(r["status"], r["paid_date"]) for r in invoices[COMPACT_NIGHTS[3]]] == [("paid", "2026-03-02")]


def test_scripted_late_and_duplicate_events(compact) -> None:
    out, _ = compact
    first, second = (_rows(out / d.isoformat() / "usage" / "events.csv") for d in COMPACT_NIGHTS[:2])
    late = [e for e in second if e["account_id"] == "lc_late_event" and e["user_id"].endswith("_u5")]
    assert [e["occurred_at"][:10] for e in late] == ["2026-01-20"]  # the first night's day, in the second drop
    assert not [e for e in first if e["user_id"] == "lc_late_event_u5"]
    dup_first = {e["event_id"] for e in first if e["account_id"] == "lc_duplicate_event"}
    dup_second = [e["event_id"] for e in second if e["account_id"] == "lc_duplicate_event"]
    assert len(set(dup_second) & dup_first) == 10  # ten days re-sent
    assert len(dup_second) == len(set(dup_second)) + 1  # and the night's own event twice in one file


def test_the_simulated_accounts_are_the_same_with_or_without_lifecycles(compact, tmp_path: Path) -> None:
    out, _ = compact
    start = COMPACT_NIGHTS[0] - dt.timedelta(days=60)
    generate(tmp_path, accounts=8, start_date=start, days=(COMPACT_NIGHTS[-1] - start).days + 1,
             drop_dates=COMPACT_NIGHTS, seed=3)
    for entity in ("crm/accounts", "billing/subscriptions", "usage/events"):
        plain = _rows(tmp_path / "2026-02-10" / f"{entity}.csv")
        scripted = [r for r in _rows(out / "2026-02-10" / f"{entity}.csv") if not r["account_id"].startswith("lc_")]
        assert plain == scripted, entity
    assert not (tmp_path / SCRIPT_FILE).exists()


def test_drop_dates_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="the last simulated day"):
        generate(tmp_path, accounts=2, start_date=dt.date(2026, 1, 1), days=10, drop_dates=[dt.date(2026, 1, 5)])
    with pytest.raises(ValueError, match="not both"):
        generate(tmp_path, accounts=2, start_date=dt.date(2026, 1, 1), days=10, drop_days=2,
                 drop_dates=[dt.date(2026, 1, 10)])
