"""`segment-mart simulate` on the real marts of ``real_nights``: two policies in one run, each
listing exactly the accounts a hand computation says move, and the working warehouse and the
published files byte for byte unchanged afterwards."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import duckdb
import pytest
import yaml

from pipelines.lab.policy_lab import PolicyError, load_policies, simulate
from tests.conftest import RealNights


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _published(settings) -> dict[str, str]:
    root = settings.published
    return {str(p.relative_to(root)): _digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_simulate_lists_exactly_the_accounts_that_move(real_home: RealNights, tmp_path: Path) -> None:
    settings, day = real_home.settings, real_home.last
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        computed = con.execute(
            "select account_id, arr_reporting, plan_name, rules_criterion, rules_tier_number, scorecard_tier_number "
            "from intermediate.int_account_tiers_computed where as_of_date = ? and account_status = 'live'",
            [day]).fetchall()
    core = sorted(float(r[1]) for r in computed if r[3] == "tier2_arr")
    assert len(core) >= 2, "the fixture needs Core accounts by ARR"
    # a Core line between the two lowest Core-by-ARR accounts: exactly the lowest one(s) drop out of Core
    new_core_min = round((core[0] + core[1]) / 2, 2)
    expected_core = {r[0]: (4 if r[2] in ("free", "trial") else 3)
                     for r in computed if r[3] == "tier2_arr" and float(r[1]) < new_core_min}
    expected_scorecard = {r[0]: r[5] for r in computed if r[5] != r[4]}
    assert expected_core and expected_scorecard

    policy_file = tmp_path / "policies.yml"
    policy_file.write_text(yaml.safe_dump({"policies": {
        "higher-core": {"description": "Core from a higher ARR", "vars": {"tier2_min_arr": new_core_min}},
        "scorecard": {"tier_method": "scorecard"},
    }}))
    warehouse_before = _digest(settings.warehouse)
    published_before = _published(settings)

    sim = simulate(settings, policy_file, day)

    assert _digest(settings.warehouse) == warehouse_before
    assert _published(settings) == published_before
    results = {r.policy.name: r for r in sim.results}
    assert set(results) == {"higher-core", "scorecard"}

    higher = results["higher-core"]
    assert {m["account_id"]: m["policy_tier_number"] for m in higher.moves} == expected_core
    for m in higher.moves:
        assert m["direction"] == "downgrade"
        assert m["timing"] in ("immediate", "waits for renewal")
        assert (m["timing"] == "waits for renewal") == (m["effective_date_if_waiting"] is not None)
        if m["timing"] == "waits for renewal":
            assert m["effective_date_if_waiting"] > day
            assert m["policy_assigned_tier_number"] == m["current_tier_number"]
        assert "< " in m["policy_reason"] or "plan" in m["policy_reason"]

    score = results["scorecard"]
    assert {m["account_id"]: m["policy_tier_number"] for m in score.moves} == expected_scorecard
    assert all(m["timing"] == "immediate" for m in score.moves if m["direction"] == "upgrade")

    # side by side: the current distribution and each policy's, every account in one tier
    live = len(computed)
    assert sum(r["account_count"] for r in sim.current_distribution) == live
    for r in sim.results:
        assert sum(d["account_count"] for d in r.distribution) == live
        assert [c["tier_number"] for c in r.coverage] == [1, 2, 3, 4]
        with (r.out_dir / "moves.csv").open() as fh:
            assert {row["account_id"] for row in csv.DictReader(fh)} == {m["account_id"] for m in r.moves}
        assert (r.out_dir / "moves.parquet").exists() and (r.out_dir / "comparison.html").exists()
    index = (sim.out_dir / "index.html").read_text()
    summary = (sim.out_dir / "summary.md").read_text()
    for account in expected_core | expected_scorecard:
        assert account in index and account in summary
    assert not (settings.temp / "policy_lab").exists() or not any((settings.temp / "policy_lab").iterdir())


def test_policy_file_errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "p.yml"
    bad.write_text("policies:\n  cheaper:\n    health_weights: {product_usage: 1}\n")
    with pytest.raises(PolicyError, match=r"p\.yml: policy 'cheaper' sets 'health_weights'"):
        load_policies(bad)
    bad.write_text("policies: {}\n")
    with pytest.raises(PolicyError, match="one or more named policies"):
        load_policies(bad)
    with pytest.raises(PolicyError, match="does not exist"):
        load_policies(tmp_path / "missing.yml")


def test_the_policy_lab_refuses_the_spark_engine_with_a_clear_error(tmp_path: Path) -> None:
    import datetime as dt

    from pipelines.lab.policy_lab import SimulationRefused, check_latest_night
    from pipelines.settings import Settings

    with pytest.raises(SimulationRefused, match="embedded DuckDB engine only"):
        check_latest_night(Settings(home=tmp_path, engine="spark"), dt.date(2026, 4, 1), "x {latest}")
