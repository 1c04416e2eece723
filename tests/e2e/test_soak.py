"""The CI soak: every scripted lifecycle happens on the run's own nights, every night publishes,
and every invariant holds after every night (pipelines/soak.py, the functions the DAG calls).

The compact schedule (``soak.COMPACT_NIGHTS``: 2026-01-20, -21, 02-10, 03-03) shows all 18
scripted lifecycles in four nights; the second night is first delivered corrupt and must fail
without changing a published byte. What each lifecycle must produce in the published marts
is written by the generator next to the drops (scripted_lifecycles.json) and checked by the
soak after every night from the night it happens on.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pipelines.generate.lifecycles import LIFECYCLES, SCRIPT_FILE
from pipelines.settings import get_settings
from pipelines.soak import COMPACT_NIGHTS, NightResult, SoakReport, check_night, soak

pytestmark = pytest.mark.e2e

#: The night each scripted lifecycle shows on the compact schedule.
NIGHT_OF = {
    "new": "2026-01-21", "upgrade": "2026-01-21", "seat_change": "2026-01-21", "late_event": "2026-01-21",
    "duplicate_event": "2026-01-21",
    "trial_to_paid": "2026-02-10", "expansion": "2026-02-10", "churn": "2026-02-10", "currency_change": "2026-02-10",
    "reactivation_in_window": "2026-02-10", "past_due": "2026-02-10", "restated_month": "2026-02-10",
    "contraction": "2026-03-03", "reactivation_after_window": "2026-03-03", "held_downgrade": "2026-03-03",
    "crm_restored": "2026-03-03", "csm_change": "2026-03-03", "interval_change": "2026-03-03",
}


@pytest.fixture(scope="module")
def soaked(tmp_path_factory: pytest.TempPathFactory) -> SoakReport:
    settings = get_settings(home=tmp_path_factory.mktemp("soak") / "home")
    return soak(settings, COMPACT_NIGHTS, accounts=12, seed=7, progress=lambda _line: None)


def test_every_night_publishes_and_every_invariant_holds(soaked: SoakReport) -> None:
    assert soaked.ok
    assert [r.night for r in soaked.results] == [d.isoformat() for d in COMPACT_NIGHTS]
    assert all(r.release and not r.problems for r in soaked.results)
    assert all(r.live_accounts > 20 and r.tiers == r.live_accounts for r in soaked.results)


def test_every_scripted_lifecycle_happens_inside_the_run_and_holds(soaked: SoakReport) -> None:
    assert soaked.not_scheduled == {}
    assert sorted(NIGHT_OF) == sorted(LIFECYCLES)
    assert {lc["lifecycle"]: lc["night"] for lc in soaked.lifecycles} == NIGHT_OF
    unchecked = [lc["lifecycle"] for lc in soaked.lifecycles if not lc["checks"] or not lc["held"]]
    assert unchecked == []
    assert soaked.results[-1].checked_outcomes >= 35


def test_a_corrupt_night_fails_without_touching_the_publish(soaked: SoakReport) -> None:
    failed = soaked.failed_night
    assert failed is not None and failed["night"] == "2026-01-21"
    assert failed["ok"] and failed["published_changed"] == [] and failed["published_files"] > 10
    assert failed["error"].startswith("QualityGateFailed: quarantine check failed")
    # the good drop, re-delivered, published that night
    assert soaked.results[1].release.startswith("2026-01-21_")


def test_the_soak_notices_an_outcome_that_does_not_hold(soaked: SoakReport) -> None:
    """The scripted checks can fail: the same published marts against a planted wrong outcome
    (the pre-fix label of a return to the CRM extract, issue 17) break the invariant."""
    settings = get_settings(home=soaked.home)
    script = json.loads((settings.landing / SCRIPT_FILE).read_text())
    restored = next(lc for lc in script["lifecycles"] if lc["lifecycle"] == "crm_restored")
    for expectation in restored["expect"]:
        if expectation["values"] and expectation["values"].get("change_type") == "reactivated":
            expectation["values"]["change_type"] = "downgrade"
    script["lifecycles"] = [restored]
    result = check_night(settings, COMPACT_NIGHTS[-1], script, NightResult(COMPACT_NIGHTS[-1].isoformat(), 0.0))
    assert [p.invariant for p in result.problems] == ["scripted_outcomes"]
    assert "'expected': 'downgrade', 'found': 'reactivated'" in result.problems[0].message
    assert dt.date.fromisoformat(result.night) == COMPACT_NIGHTS[-1]
