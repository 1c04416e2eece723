"""Tier threshold advice (rpt_tier_threshold_advice) checked against independent computations on
the real marts of ``real_nights``: the percentiles against numpy, the natural breaks against a
brute-force Fisher-Jenks over every way of cutting the sorted ARR values into four classes, and
the advised thresholds against an exhaustive search of the thresholds that meet the target bands.
"""

from __future__ import annotations

import itertools

import duckdb
import numpy as np
import pytest

from tests.conftest import RealNights


def _live_arr(con: duckdb.DuckDBPyConnection) -> list[float]:
    """Live accounts' ARR from dim_accounts (not from the models under test)."""
    return [float(r[0]) for r in con.execute(
        "select arr_reporting from marts.dim_accounts where account_status = 'live' order by 1").fetchall()]


def _brute_force_jenks(values: list[float], classes: int = 4) -> tuple[list[float], float]:
    """Lowest value of each class (highest class first) and the total within-class sum of squares,
    trying every cut of the sorted distinct values (equal values are never split)."""
    distinct = sorted(set(values))
    groups = [[v for v in values if v == d] for d in distinct]

    def sse(part: list[list[float]]) -> float:
        xs = np.array([v / 1000 for g in part for v in g])
        return float(((xs - xs.mean()) ** 2).sum())

    best: tuple[float, tuple[int, ...]] | None = None
    for cuts in itertools.combinations(range(1, len(groups)), classes - 1):
        bounds = (0, *cuts, len(groups))
        total = sum(sse(groups[a:b]) for a, b in itertools.pairwise(bounds))
        if best is None or total < best[0] - 1e-9:
            best = (total, cuts)
    assert best is not None
    starts = [0, *best[1]]
    return [distinct[i] for i in reversed(starts)], best[0]


@pytest.fixture(scope="module")
def advice(real_nights: RealNights):
    with duckdb.connect(str(real_nights.settings.warehouse), read_only=True) as con:
        rows = con.execute("select * from marts.rpt_tier_threshold_advice order by tier_number").fetchdf()
        targets = con.execute("select * from config.tier_targets order by tier_number").fetchdf()
        return rows, targets, _live_arr(con)


def test_percentiles_match_numpy(advice) -> None:
    rows, _, arr = advice
    assert len(arr) >= 8, "the fixture needs live accounts"
    for column, q in (("arr_p50", 50), ("arr_p75", 75), ("arr_p90", 90), ("arr_p95", 95)):
        assert float(rows[column].iloc[0]) == pytest.approx(np.percentile(arr, q), abs=0.01), column
    assert int(rows["live_account_count"].iloc[0]) == len(arr)


def test_natural_breaks_match_brute_force_jenks(advice) -> None:
    rows, _, arr = advice
    # fewer live accounts than bins: every distinct ARR value is a bin, so the DP is the exact optimum
    assert int(rows["bin_count"].iloc[0]) == len(set(arr))
    expected, _ = _brute_force_jenks(arr)
    assert [float(v) for v in rows["natural_break_min_arr"]] == pytest.approx(expected, abs=0.01)
    assert float(rows["natural_break_account_count"].sum()) == len(arr)
    assert [sum(1 for v in arr if lo <= v < hi) for lo, hi in zip(expected, [float("inf"), *expected[:-1]], strict=True)] \
        == [int(v) for v in rows["natural_break_account_count"]]


def test_advised_thresholds_meet_the_bands_whenever_a_threshold_can(advice) -> None:
    rows, targets, arr = advice
    total_n, total_arr = len(arr), sum(arr)
    band = {int(t.tier_number): t for t in targets.itertuples()}

    def inside(tier: int, n: int, money: float) -> bool:
        t = band[tier]
        hi_n = 1.0 if t.max_account_share != t.max_account_share or t.max_account_share is None else t.max_account_share
        return (t.min_account_share <= n / total_n <= hi_n) and (t.min_arr_share <= money / total_arr <= t.max_arr_share)

    upper = float("inf")
    for tier in (1, 2, 3):
        row = rows[rows.tier_number == tier].iloc[0]
        candidates = sorted({v for v in arr if v < upper})
        meets = [c for c in candidates
                 if inside(tier, sum(1 for v in arr if c <= v < upper), sum(v for v in arr if c <= v < upper))]
        advised = float(row["advised_min_arr"])
        members = [v for v in arr if advised <= v < upper]
        assert int(row["advised_account_count"]) == len(members)
        if meets:  # a threshold exists that meets both bands: the advice is one of them, and the range is exact
            assert advised in meets
            assert bool(row["is_advised_account_share_on_target"]) and bool(row["is_advised_arr_share_on_target"])
            assert float(row["lowest_on_target_arr"]) == pytest.approx(min(meets))
            assert float(row["highest_on_target_arr"]) == pytest.approx(max(meets))
        else:
            assert row["lowest_on_target_arr"] is None or row["lowest_on_target_arr"] != row["lowest_on_target_arr"]
        upper = advised
    # Tech-touch is what is left below Scale's advised threshold
    assert int(rows[rows.tier_number == 4].iloc[0]["advised_account_count"]) == sum(1 for v in arr if v < upper)
