"""The action feed over the shared ``mart_nights`` (tests/dbt/conftest.py: four generated nights built
with the real dbt and DuckDB; the generator moves tiers on the last three: an upgrade, a downgrade
held until renewal and a downgrade once the renewal passed). The open / keep / close rules night
after night, the tier moves' actions, and the weekly roll-up against the feed. That a rerun or a
restatement of a night gives the same feed is checked with the other customer marts
(tests/dbt/test_customers_models.py: the feed and its history are in CUSTOMER_MARTS / STATEFUL)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import duckdb
import pytest

from tests.dbt.conftest import MartNights


@pytest.fixture
def feed(mart_nights: MartNights) -> Iterator[dict]:
    with duckdb.connect(str(mart_nights.settings.warehouse), read_only=True) as con:
        cur = con.execute("select * from marts.fct_account_actions_daily order by as_of_date, action_id")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        weekly = con.execute("select week_start_date, tier_number, action_type, opened_count, closed_count "
                             "from marts.rpt_actions_weekly").fetchall()
        moves = con.execute("select as_of_date, account_id, migration_action from marts.fct_account_tiers_daily "
                            "where migration_action in ('upgrade', 'held', 'downgrade')").fetchall()
    by_night: dict = {}
    for row in rows:
        by_night.setdefault(row["as_of_date"], {})[row["action_id"]] = row
    yield {"nights": by_night, "rows": rows, "weekly": weekly, "moves": moves}


def test_actions_open_keep_and_close_night_after_night(mart_nights: MartNights, feed: dict) -> None:
    nights = mart_nights.run_dates
    assert sorted(feed["nights"]) == nights
    first = feed["nights"][nights[0]]
    assert first and all(a["is_opened_tonight"] and a["action_status"] == "open" for a in first.values())
    for before, tonight in itertools.pairwise(nights):
        was_open = {k: a for k, a in feed["nights"][before].items() if a["action_status"] == "open"}
        now = feed["nights"][tonight]
        assert set(was_open) <= set(now), "an action open last night is kept or closed tonight"
        for action_id, action in now.items():
            if action["is_opened_tonight"]:
                assert action_id not in was_open and action["opened_date"] == tonight
            else:
                old = was_open[action_id]
                assert (action["opened_date"], action["due_date"], action["priority"]) == \
                       (old["opened_date"], old["due_date"], old["priority"]), "kept as opened"
            if action["action_status"] == "closed":
                assert action["closed_date"] == tonight and action["close_reason"], action
        keys = [(a["account_id"], a["action_type"], a["reason_code"]) for a in now.values()
                if a["action_status"] == "open"]
        assert len(keys) == len(set(keys)), "never opened twice"
    closed = [a["action_id"] for a in feed["rows"] if a["action_status"] == "closed"]
    assert len(closed) == len(set(closed)), "an action closes once"
    assert any(not a["is_opened_tonight"] for n in nights[1:] for a in feed["nights"][n].values()), "some are kept"


def test_tier_moves_open_and_supersede_actions(feed: dict) -> None:
    rows = feed["rows"]
    for night, account, action in feed["moves"]:
        mine = [a for a in rows if a["account_id"] == account and a["as_of_date"] == night]
        if action in ("upgrade", "downgrade"):
            assert any(a["action_type"] == "tier_changed" and a["is_opened_tonight"] for a in mine), (account, night)
        if action == "held":
            assert any(a["action_type"] == "downgrade_pending" and a["action_status"] == "open" for a in mine)
        if action == "downgrade":
            pending = [a for a in mine if a["action_type"] == "downgrade_pending" and a["action_status"] == "closed"]
            tier_change = [a for a in mine if a["action_type"] == "tier_changed"]
            if pending:  # it was held before (not downgraded at once)
                assert pending[0]["close_reason"] == "superseded"
                assert pending[0]["superseded_by_action_id"] == tier_change[0]["action_id"]
    assert {m[2] for m in feed["moves"]} >= {"upgrade", "held", "downgrade"}


def test_weekly_roll_up_counts_the_feed(feed: dict) -> None:
    counted: dict = {}
    for a in feed["rows"]:
        week = a["as_of_date"].toordinal() - a["as_of_date"].weekday()
        key = (week, a["tier_number"], a["action_type"])
        opened, closed = counted.get(key, (0, 0))
        counted[key] = (opened + a["is_opened_tonight"], closed + (a["action_status"] == "closed"))
    weekly = {(w.toordinal(), t, k): (o, c) for w, t, k, o, c in feed["weekly"]}
    assert weekly == counted
