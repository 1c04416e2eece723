"""The report's sections. Each takes the published marts and returns HTML (or raises NoData)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pipelines.report import format as f
from pipelines.report import svg
from pipelines.report.format import Col, esc, table
from pipelines.report.marts import Marts, NoData
from pipelines.report.periods import IN_PROGRESS, add_months, flag_rows, mark_of, period_marks

#: Months of history in the over-time charts.
HISTORY_MONTHS = 24
#: Rows in the at-risk / expansion lists.
TOP_N = 15
#: Dimensions drawn open in the retention section; the others are folded.
PRIMARY_DIMENSIONS = ("tier", "value_band")
COMPONENTS = {"product_usage": "Product usage", "cs_engagement": "CS engagement", "support": "Support",
              "billing": "Billing", "sentiment": "Sentiment (NPS)"}
SIGNALS = {"expansion_seat_utilisation": "seats nearly full", "expansion_usage_growth": "usage growing",
           "health_at_risk": "became at-risk", "health_critical": "became critical"}


def _grid(charts: Sequence[str]) -> str:
    return f'<div class="grid">{"".join(charts)}</div>'


def _tier(row: dict[str, Any]) -> str:
    """An account's tier, or none when it has no live subscription (churned accounts are in no tier)."""
    return row["assigned_tier"] if row.get("has_active_subscription") else "no tier (no live subscription)"


def _owner(csm: Any) -> str:
    return f"CSM {csm}" if csm else "unassigned"


def _note(text: str) -> str:
    return f'<p class="muted">{text}</p>'


# --------------------------------------------------------------------------- periods


def period_rows(m: Marts, mart: str, where: str = "true", params: Sequence[Any] | None = None,
                order: str = "1") -> list[dict[str, Any]]:
    """Rows of a period mart with ``is_period_complete`` / ``is_backcast`` filled in."""
    start = "period_start_date" if "period_start_date" in m.cols(mart) else "month_start_date"
    rows = m.select(mart, where, order, params)
    return flag_rows(rows, start_column=start, months=3 if mart.endswith("quarterly") else 1,
                     run_date=m.run_date, history_start=m.history_start)


def last_complete(rows: Sequence[dict[str, Any]], key: str) -> Any:
    done = [r[key] for r in rows if r["is_period_complete"]]
    return max(done) if done else None


# --------------------------------------------------------------------------- headline


def headline(m: Marts) -> str:
    cards: list[str] = []

    def card(label: str, value: str, src: str) -> None:
        cards.append(f'<div class="card"><b>{esc(value)}</b>{esc(label)}<div class="src">{esc(src)}</div></div>')

    try:
        dist = m.select("rpt_tier_distribution", "as_of_date = (select max(as_of_date) from marts.rpt_tier_distribution)")
        card("live accounts in tiers", f.count(sum(r["account_count"] or 0 for r in dist)), "rpt_tier_distribution")
        card("ARR", svg.money(float(sum(r["arr_reporting"] or 0 for r in dist))), "rpt_tier_distribution")
    except NoData:
        pass
    try:
        rows = period_rows(m, "rpt_segment_retention_monthly", "segment_dimension = 'total'")
        month = last_complete(rows, "period_start_date")
        row = next((r for r in rows if r["period_start_date"] == month), None)
        if row:
            label = f.month(month)
            for name, col in (("GRR", "gross_revenue_retention"), ("NRR", "net_revenue_retention"),
                              ("logo retention", "logo_retention"),
                              ("trailing 12-month NRR", "trailing_net_revenue_retention")):
                card(f"{name}, {label}", f.pct(row[col]), "rpt_segment_retention_monthly")
    except NoData:
        pass
    return f'<div class="cards">{"".join(cards)}</div>' if cards else ""


# --------------------------------------------------------------------------- retention

RETENTION_METRICS = (
    ("GRR", "gross_revenue_retention", 1.0),
    ("NRR", "net_revenue_retention", 1.0),
    ("Logo retention", "logo_retention", 1.0),
    ("Expansion rate", "expansion_rate", None),
    ("Trailing 12-month GRR", "trailing_gross_revenue_retention", 1.0),
    ("Trailing 12-month NRR", "trailing_net_revenue_retention", 1.0),
)

RETENTION_TABLE = (
    Col("segment_value", "segment"), Col("starting_logos", "logos at start", f.count),
    Col("starting_mrr_reporting", "MRR at start", f.money), Col("expansion_mrr_reporting", "expansion MRR", f.money),
    Col("contraction_mrr_reporting", "contraction MRR", f.money), Col("churned_mrr_reporting", "churned MRR", f.money),
    Col("gross_revenue_retention", "GRR", f.pct), Col("net_revenue_retention", "NRR", f.pct),
    Col("logo_retention", "logo retention", f.pct), Col("quick_ratio", "quick ratio", f.ratio),
    Col("trailing_gross_revenue_retention", "trailing 12-mo GRR", f.pct),
    Col("target_retention_rate", "retention target", f.pct),
)


def _trend_charts(m: Marts, rows: list[dict[str, Any]], dim: str, label: Callable[[Any], str], start: str,
                  grain: str, bars: bool) -> list[str]:
    mine = [r for r in rows if r["segment_dimension"] == dim]
    totals = [r for r in rows if r["segment_dimension"] == "total"]
    values = sorted({r["segment_value"] for r in mine}, key=m.tier_key)[:8]
    marks = period_marks(mine + totals, lambda r: label(r[start]))
    charts = []
    for title, col, ref in RETENTION_METRICS:
        series = {v: [(label(r[start]), f.as_float(r[col])) for r in mine if r["segment_value"] == v] for v in values}
        if totals:
            series["all accounts"] = [(label(r[start]), f.as_float(r[col])) for r in totals]
        charts.append(svg.line_chart(series, f"{title} by {dim.replace('_', ' ')}, {grain}", fmt=svg.pct,
                                     reference=ref, periods=marks, colors=m.tier_colors))
    if bars:
        xs = sorted({label(r[start]) for r in mine})[-12:]
        series_b = {v: [next((f.as_float(r["expansion_mrr_reporting"]) for r in mine
                              if r["segment_value"] == v and label(r[start]) == x), None) for x in xs] for v in values}
        charts.append(svg.bar_chart(xs, series_b, f"Expansion MRR by {dim.replace('_', ' ')}, last 12 months",
                                    fmt=svg.money, stacked=True, periods={x: marks[x] for x in xs if x in marks},
                                    colors=m.tier_colors))
    return charts


def retention(m: Marts) -> str:
    mart = "rpt_segment_retention_monthly"
    rows = period_rows(m, mart, f"period_start_date >= (select max(period_start_date) from marts.{mart}) "
                                f"- interval {HISTORY_MONTHS} month", order="segment_dimension, segment_value, 1")
    if not rows:
        raise NoData(f"marts.{mart} is empty")
    month = last_complete(rows, "period_start_date")
    out = [_note(f"Monthly, last {HISTORY_MONTHS} months, from <code>{mart}</code>. Each account counts in the "
                 "segment it was in at the start of the month. Shaded yellow: the month in progress (partial, "
                 "not used for the headline figures); shaded grey: backcast months (segment derived from "
                 "billing, before the daily history). The dashed line marks 100%.")]
    if month is not None:
        last = sorted((r for r in rows if r["period_start_date"] == month and r["segment_dimension"] in ("tier", "total")),
                      key=lambda r: (r["segment_dimension"] == "total", m.tier_key(r["segment_value"])))
        out.append(table(last, RETENTION_TABLE, caption=f"By tier, {f.month(month)} (last complete month)",
                         periods=True))
    dims = sorted({r["segment_dimension"] for r in rows} - {"total"},
                  key=lambda d: (PRIMARY_DIMENSIONS.index(d) if d in PRIMARY_DIMENSIONS else 9, d))
    for d in dims:
        block = _grid(_trend_charts(m, rows, d, f.month, "period_start_date", "monthly", bars=True))
        title = f"by {esc(d.replace('_', ' '))}"
        out.append(f"<h3>{title}</h3>{block}" if d in PRIMARY_DIMENSIONS
                   else f"<details><summary>{title}</summary>{block}</details>")
    return "".join(out)


def quarterly(m: Marts) -> str:
    mart = "rpt_segment_retention_quarterly"
    rows = period_rows(m, mart, "segment_dimension in ('tier', 'total') and period_start_date >= "
                                f"(select max(period_start_date) from marts.{mart}) - interval 21 month",
                       order="segment_dimension, segment_value, 1")
    if not rows:
        raise NoData(f"marts.{mart} is empty")
    charts = _trend_charts(m, rows, "tier", f.quarter, "period_start_date", "quarterly", bars=False)[:3]
    recent = sorted({r["period_start_date"] for r in rows})[-4:]
    shown = sorted((r for r in rows if r["period_start_date"] in recent), key=lambda r: (-r["period_start_date"].toordinal(), r["segment_dimension"] == "total",
                                        m.tier_key(r["segment_value"])))
    cols = (Col("period_start_date", "quarter", f.quarter), *RETENTION_TABLE)
    return (_note(f"Quarter by quarter (charts: last 8 quarters; table: last 4), from <code>{mart}</code>; movements compare each "
                  "account's state at the end of the previous quarter with the end of the quarter.")
            + _grid(charts) + table(shown, cols, periods=True))


# --------------------------------------------------------------------------- tiers


def tier_distribution(m: Marts) -> str:
    mart = "rpt_tier_distribution"
    rows = m.select(mart, f"as_of_date = (select max(as_of_date) from marts.{mart})", "tier_number")
    if not rows:
        raise NoData(f"marts.{mart} is empty")
    acc = [(r["tier_name"], f.as_float(r["account_share"]), f.as_float(r["min_account_share"]),
            f.as_float(r["max_account_share"])) for r in rows]
    arr = [(r["tier_name"], f.as_float(r["arr_share"]), f.as_float(r["min_arr_share"]),
            f.as_float(r["max_arr_share"])) for r in rows]
    cols = (Col("tier_name", "tier"), Col("account_count", "accounts", f.count),
            Col("account_share", "share of accounts", f.pct), Col("min_account_share", "target min", f.pct),
            Col("max_account_share", "target max", f.pct), Col("arr_reporting", "ARR", f.money),
            Col("arr_share", "share of ARR", f.pct), Col("min_arr_share", "ARR target min", f.pct),
            Col("max_arr_share", "ARR target max", f.pct), Col("is_not_prioritising", "too many in Tier 1?", f.yes_no))
    return (_note(f"Live accounts (a live subscription on the as-of date) by assigned tier, from <code>{mart}</code> "
                  f"as of {f.date(rows[0]['as_of_date'])}. Accounts without a live subscription are in no tier. "
                  "Green bands are the targets; a red bar is off target.")
            + _grid([svg.target_bars(acc, "Share of accounts by tier vs target", x_max=1.0),
                     svg.target_bars(arr, "Share of ARR by tier vs target", x_max=1.0)])
            + table(rows, cols))


def _from_the_top(names: Sequence[str]) -> str:
    """'from the top: Strategic, then Core below it, then Scale; Tech-touch is the rest' for the
    configured tiers."""
    if len(names) < 2:
        return "tier by tier from the top"
    *lined, rest = names
    return (f"from the top: {lined[0]}" + "".join(f", then {n}" + (" below it" if i == 0 else "")
                                                  for i, n in enumerate(lined[1:])) + f"; {rest} is the rest")


#: The var that holds each tier's lower ARR threshold (tier 3 starts where tier 4 ends).
THRESHOLD_VARS = {1: "tier1_min_arr", 2: "tier2_min_arr", 3: "tier4_max_arr"}


def _advice_sentence(r: dict[str, Any], off_target: bool) -> str:
    name, var = r["tier_name"], THRESHOLD_VARS.get(r["tier_number"])
    if var is None:
        return ""
    lo, hi = r["lowest_on_target_arr"], r["highest_on_target_arr"]
    shares = (f"{f.pct(r['advised_account_share'])} of accounts and {f.pct(r['advised_arr_share'])} of ARR "
              f"(targets {f.pct(r['min_account_share'])}–{f.pct(r['max_account_share'])} and "
              f"{f.pct(r['min_arr_share'])}–{f.pct(r['max_arr_share'])})")
    now = (f"today's <code>{var}</code> of {f.money(r['configured_min_arr'])} gives "
           f"{f.pct(r['configured_account_share'])} / {f.pct(r['configured_arr_share'])} by ARR alone")
    if lo is None:
        return (f"<li><b>{esc(name)}</b>{' (off target today)' if off_target else ''}: no ARR line meets both "
                f"bands; the nearest is {f.money(r['advised_min_arr'])}, giving {shares}; {now}.</li>")
    span = (f"anywhere from {f.money(lo)} to {f.money(hi)}" if hi != lo else f"at {f.money(lo)}")
    return (f"<li><b>{esc(name)}</b>{' (off target today)' if off_target else ''}: a lower line "
            f"{span} keeps it inside both bands; {f.money(r['advised_min_arr'])} gives {shares}; {now}.</li>")


def threshold_advice(m: Marts) -> str:
    """ARR percentiles, natural breaks and the thresholds that meet the target bands."""
    mart = "rpt_tier_threshold_advice"
    rows = m.select(mart, f"as_of_date = (select max(as_of_date) from marts.{mart})", "tier_number")
    if not rows:
        raise NoData(f"marts.{mart} is empty")
    first = rows[0]
    assigned_off = {r["tier_number"]: not (
        r["assigned_account_share"] is not None
        and r["min_account_share"] <= r["assigned_account_share"] <= (r["max_account_share"] or 1)
        and r["min_arr_share"] <= r["assigned_arr_share"] <= (r["max_arr_share"] or 1)) for r in rows}
    cards = "".join(
        f'<div class="card"><b>{esc(f.money(first[c]))}</b>{esc(label)}<div class="src">{esc(mart)}</div></div>'
        for label, c in (("median ARR", "arr_p50"), ("75th percentile", "arr_p75"),
                         ("90th percentile", "arr_p90"), ("95th percentile", "arr_p95")))
    acc = [x for r in rows for x in (
        (f"{r['tier_name']} now", f.as_float(r["assigned_account_share"]), f.as_float(r["min_account_share"]),
         f.as_float(r["max_account_share"])),
        (f"{r['tier_name']} advised", f.as_float(r["advised_account_share"]), f.as_float(r["min_account_share"]),
         f.as_float(r["max_account_share"])))]
    arr = [x for r in rows for x in (
        (f"{r['tier_name']} now", f.as_float(r["assigned_arr_share"]), f.as_float(r["min_arr_share"]),
         f.as_float(r["max_arr_share"])),
        (f"{r['tier_name']} advised", f.as_float(r["advised_arr_share"]), f.as_float(r["min_arr_share"]),
         f.as_float(r["max_arr_share"])))]
    cols = (Col("tier_name", "tier"), Col("configured_min_arr", "configured from", f.money),
            Col("configured_account_share", "accounts (ARR rule)", f.pct),
            Col("configured_arr_share", "ARR (ARR rule)", f.pct),
            Col("natural_break_min_arr", "natural break from", f.money),
            Col("natural_break_account_share", "accounts (breaks)", f.pct),
            Col("advised_min_arr", "advised from", f.money), Col("lowest_on_target_arr", "on target from", f.money),
            Col("highest_on_target_arr", "… up to", f.money), Col("advised_account_share", "accounts (advised)", f.pct),
            Col("advised_arr_share", "ARR (advised)", f.pct))
    advice = "".join(_advice_sentence(r, assigned_off[r["tier_number"]]) for r in rows)
    misses = [r["tier_name"] for r in rows if assigned_off[r["tier_number"]]]
    return (_note(
        f"Where the tier lines could be drawn, from the ARR of the {f.count(first['live_account_count'])} live "
        f"accounts on {f.date(first['as_of_date'])} (<code>{mart}</code>). <b>Percentiles</b> say where accounts "
        "sit: half have less ARR than the median. <b>Natural breaks</b> (Fisher-Jenks, four classes) are the lines "
        "that group accounts of most similar ARR; they show where the distribution itself has gaps. The "
        "<b>advised</b> line per tier is the ARR threshold that puts the tier inside its target bands for share of "
        f"accounts and of ARR ({_from_the_top(m.tier_names)}). "
        "The advice uses ARR only; the rules' other criteria (strategic accounts, growth potential, health) still "
        "move single accounts across the lines.")
            + f'<div class="cards">{cards}</div>'
            + (f"<p>Today {', '.join(misses)} {'is' if len(misses) == 1 else 'are'} outside the target bands. "
               if misses else "<p>Every tier is inside its target bands today. ")
            + "What to do: try a line as a policy before adopting it (<code>segment-mart simulate --policy FILE "
              f"--run-date {f.date(first['as_of_date'])}</code> shows every account that would move and the CSMs "
              "it needs), then set the var in <code>dbt_project/dbt_project.yml</code>.</p>"
            + f"<ul>{advice}</ul>"
            + _grid([svg.target_bars(acc, "Share of accounts: now vs advised lines", x_max=1.0),
                     svg.target_bars(arr, "Share of ARR: now vs advised lines", x_max=1.0)])
            + table(rows, cols)
            + _note(f"Natural breaks over {f.count(first['bin_count'])} ARR bins (every distinct ARR value up to "
                    "200 bins; beyond that 200 equal-count bins)."))


SCORE_NAMES = {"health_score": "Health score (overall)"} | {f"{k}_score": v for k, v in COMPONENTS.items()}
BANDS = {"healthy": "Healthy", "at-risk": "At-risk", "critical": "Critical"}


def backtest_html(rows: Sequence[dict[str, Any]], source: str) -> str:
    """The health-score backtest (rows of rpt_health_backtest) with what it means and what to do."""
    overall = next((r for r in rows if r["analysis"] == "overall"), None)
    if overall is None:
        raise NoData(f"{source} has no overall row")
    horizon = overall["horizon_days"]
    if not overall["account_days"]:
        return _note(
            f"No scored account-day has {horizon} days of follow-up yet (<code>{source}</code>): the backtest "
            f"needs {horizon} days of daily history after the first scored day. To backtest now over the "
            "extracts' past, run <code>segment-mart backtest --run-date D</code> (docs/policy-lab.md); it scores "
            "health at past month ends with the same models and writes its own report.")
    bands = sorted((r for r in rows if r["analysis"] == "health_band"), key=lambda r: r["sort_key"])
    tiers = sorted((r for r in rows if r["analysis"] == "tier"), key=lambda r: r["sort_key"])
    scores = sorted((r for r in rows if r["analysis"] == "score"), key=lambda r: r["sort_key"])
    for r in bands:
        r["label"] = BANDS.get(r["group_value"], r["group_value"])
    for r in scores:
        r["label"] = SCORE_NAMES.get(r["group_value"], r["group_value"])
        auc = f.as_float(r["churn_auc"])
        r["verdict"] = ("no churn to rank" if auc is None else "strong" if auc >= 0.75 else "useful" if auc >= 0.65
                        else "weak" if auc >= 0.55 else "no better than chance" if auc >= 0.45 else "points the wrong way")
    for r in tiers:
        r["label"] = r["group_value"]
        ret, target = f.as_float(r["annualised_retention"]), f.as_float(r["target_retention_rate"])
        r["meets"] = "" if ret is None or target is None else ("yes" if ret >= target else "no")
    useful = [r for r in scores if r["group_value"] != "health_score" and (f.as_float(r["churn_auc"]) or 0) >= 0.65]
    weak = [r for r in scores if r["group_value"] != "health_score" and f.as_float(r["churn_auc"]) is not None
            and f.as_float(r["churn_auc"]) < 0.55]
    critical = next((r for r in bands if r["group_value"] == "critical"), None)
    top = next((r for r in tiers if r["sort_key"] == 1), None)
    findings = [f"<li>Base rates over {f.count(overall['account_days'])} scored account-days "
                f"({f.count(overall['accounts'])} accounts, {f.date(overall['first_scored_date'])} to "
                f"{f.date(overall['last_scored_date'])}): {f.pct(overall['churn_rate'])} churned, "
                f"{f.pct(overall['contraction_rate'])} contracted and {f.pct(overall['expansion_rate'])} expanded "
                f"within {horizon} days.</li>"]
    if critical and critical["churn_lift"] is not None:
        findings.append(f"<li>Critical accounts churned {f.ratio(critical['churn_lift'])}x as often as average "
                        f"({f.pct(critical['churn_rate'])}).</li>")
    overall_score = next((r for r in scores if r["group_value"] == "health_score"), None)
    if overall_score and overall_score["churn_auc"] is not None:
        findings.append(f"<li>The health score ranks a churner below a survivor {f.pct(overall_score['churn_auc'])} "
                        f"of the time (AUC; 50% is chance): {overall_score['verdict']}.</li>")
    if useful:
        findings.append("<li>Components that predict churn: " + ", ".join(
            f"{esc(r['label'])} (AUC {f.auc(r['churn_auc'])})" for r in useful) + ".</li>")
    if weak:
        findings.append("<li>Components that do not (consider a lower weight in <code>health_weights</code>): "
                        + ", ".join(f"{esc(r['label'])} (AUC {f.auc(r['churn_auc'])})" for r in weak) + ".</li>")
    if top and top["retention_uplift_over_rest"] is not None:
        findings.append(f"<li>{esc(top['label'])} retention (annualised) {f.pct(top['annualised_retention'])} against "
                        f"a target of {f.pct(top['target_retention_rate'])}; "
                        f"{f.pct(top['retention_uplift_over_rest'])} above the other tiers (the brief expects "
                        "20-30%).</li>")
    band_cols = (Col("label", "health band"), Col("account_days", "account-days", f.count),
                 Col("churn_rate", "churned", f.pct), Col("churn_lift", "churn lift", f.ratio),
                 Col("contraction_rate", "contracted", f.pct), Col("contraction_lift", "contraction lift", f.ratio),
                 Col("expansion_rate", "expanded", f.pct), Col("expansion_lift", "expansion lift", f.ratio))
    score_cols = (Col("label", "score"), Col("account_days", "account-days with it", f.count),
                  Col("churned_account_days", "of which churned", f.count), Col("churn_auc", "churn AUC", f.auc),
                  Col("verdict", "reading"))
    tier_cols = (Col("label", "tier"), Col("account_days", "account-days", f.count), Col("churn_rate", "churned", f.pct),
                 Col("churn_lift", "churn lift", f.ratio), Col("annualised_retention", "retention, annualised", f.pct),
                 Col("target_retention_rate", "target", f.pct), Col("meets", "meets target?"),
                 Col("retention_uplift_over_rest", "uplift over other tiers", f.pct),
                 Col("expansion_rate", "expanded", f.pct))
    auc_bars = svg.target_bars([(r["label"], f.as_float(r["churn_auc"]), 0.65, 1.0) for r in scores],
                               "Churn AUC by score (green: useful, 0.65+)", fmt=svg.auc, x_max=1.0)
    return (_note(
        f"Does health predict churn before it happens? Every live account's health on each scored day (from "
        f"<code>{esc(source)}</code>), set against what happened to it in the next {horizon} days (churn, "
        "contraction, expansion from the revenue movements). <b>Lift</b> is how much more often a band churned than "
        "average (2 = twice as often). <b>AUC</b> is the chance that the score put an account that later churned "
        "below one that did not: 1 is perfect, 0.5 is a coin toss. Only what was known on each day is scored.")
            + f"<ul>{''.join(findings)}</ul>"
            + _note("What to do: act on the bands with high churn lift; give more weight to the components with a "
                    "high AUC and less to those near 0.5 (<code>health_weights</code> in "
                    "<code>dbt_project/dbt_project.yml</code>); a tier below its retention target needs a different "
                    "engagement model.")
            + _grid([auc_bars])
            + table(bands, band_cols, caption="By health band")
            + table(scores, score_cols, caption="Ranking quality of the score and of each component")
            + table(tiers, tier_cols, caption="By tier, against the success targets")
            + _profile_auc_table(rows))


def _profile_auc_table(rows: Sequence[dict[str, Any]]) -> str:
    """Per health profile: the churn AUC of its own score and of the default weights on the same days."""
    profiles = [dict(r, better=_profile_verdict(r)) for r in rows if r.get("analysis") == "health_profile"]
    if not profiles:
        return ""
    cols = (Col("group_value", "health profile"), Col("account_days", "account-days", f.count),
            Col("churned_account_days", "of which churned", f.count), Col("churn_auc", "churn AUC, profile", f.auc),
            Col("default_profile_churn_auc", "churn AUC, default weights", f.auc), Col("better", "reading"))
    return table(profiles, cols, caption="Does each health profile rank churn better than the default weights?")


def _profile_verdict(r: dict[str, Any]) -> str:
    own, default = f.as_float(r.get("churn_auc")), f.as_float(r.get("default_profile_churn_auc"))
    if own is None or default is None:
        return "not enough outcomes"
    if abs(own - default) < 0.01:
        return "same as the default"
    return "profile ranks churn better" if own > default else "default weights rank churn better"


def health_backtest(m: Marts) -> str:
    mart = "rpt_health_backtest"
    rows = m.select(mart, f"as_of_date = (select max(as_of_date) from marts.{mart})", "analysis, sort_key")
    if not rows:
        raise NoData(f"marts.{mart} is empty")
    return backtest_html(rows, mart)


def tier_trends(m: Marts) -> str:
    """Tier mix over the daily history and tier migrations (dim_account_tier_history)."""
    dates = [r["as_of_date"] for r in m.rows(
        "select distinct as_of_date from marts.fct_account_tiers_daily order by 1")]
    m.cols("fct_account_tiers_daily"), m.cols("fct_account_segments_daily")
    if not dates:
        raise NoData("marts.fct_account_tiers_daily is empty")
    if len(dates) > 45:  # month ends (and the latest date) once the history is long
        ends: dict[tuple[int, int], Any] = {}
        for d in dates:
            ends[(d.year, d.month)] = d
        dates = sorted(ends.values())[-HISTORY_MONTHS:]
    mix = m.rows(
        "select t.as_of_date, t.assigned_tier, count(*) as accounts, sum(t.arr_reporting) as arr "
        "from marts.fct_account_tiers_daily t join marts.fct_account_segments_daily s "
        "on s.account_id = t.account_id and s.as_of_date = t.as_of_date "
        "where s.has_active_subscription and t.as_of_date in (select unnest(?::date[])) group by all",
        [dates])
    xs = [f.date(d) for d in dates]
    tiers = sorted({r["assigned_tier"] for r in mix if r["assigned_tier"] in m.tier_names}, key=m.tier_key)
    counts = {t: [next((r["accounts"] for r in mix if r["assigned_tier"] == t and r["as_of_date"] == d), 0)
                  for d in dates] for t in tiers}
    totals = [sum(counts[t][i] for t in tiers) or 1 for i in range(len(dates))]
    shares = {t: [c / totals[i] for i, c in enumerate(v)] for t, v in counts.items()}
    charts = [svg.bar_chart(xs, shares, "Tier mix of live accounts (share)", fmt=svg.pct, stacked=True,
                            colors=m.tier_colors),
              svg.bar_chart(xs, counts, "Live accounts by tier", fmt=svg.count, stacked=True, colors=m.tier_colors)]
    hist = m.select("dim_account_tier_history", "change_type in ('upgrade', 'downgrade')", "valid_from desc, account_id")
    by_month: dict[str, dict[str, int]] = {}
    for r in hist:
        by_month.setdefault(f.month(r["valid_from"]), {"upgrade": 0, "downgrade": 0})[r["change_type"]] += 1
    months, day = [], dates[0].replace(day=1)
    while day <= m.run_date:  # every month of the daily history, changes or not
        months.append(f.month(day))
        day = add_months(day, 1)
    months = months[-12:]
    changes = {k: [by_month.get(x, {}).get(k, 0) for x in months] for k in ("upgrade", "downgrade")}
    charts.append(svg.bar_chart(months, changes, "Tier migrations per month", fmt=svg.count,
                                periods={months[-1]: IN_PROGRESS}))
    names = {r["tier_number"]: r["assigned_tier"] for r in m.rows(
        "select distinct tier_number, assigned_tier from marts.dim_account_tier_history")}
    recent = [r | {"previous_tier": names.get(r["previous_tier_number"], r["previous_tier_number"])}
              for r in hist[:TOP_N]]
    cols = (Col("valid_from", "date", f.date), Col("account_id", "account"), Col("previous_tier", "from tier"),
            Col("assigned_tier", "to tier"), Col("change_type", "change"), Col("change_reason", "why", wrap=True))
    return (_note(f"From the daily tier history (<code>fct_account_tiers_daily</code>, {f.date(dates[0])} to "
                  f"{f.date(dates[-1])}; month ends once it is long) and the tier changes of "
                  "<code>dim_account_tier_history</code> (upgrades apply at once, downgrades after the next "
                  "renewal). Only accounts with a live subscription are in a tier.")
            + _grid(charts)
            + (table(recent, cols, caption="Latest tier changes") if recent
               else '<div class="nodata">No tier changes since the daily history began.</div>'))


# --------------------------------------------------------------------------- health, coverage


def health(m: Marts) -> str:
    mart = "dim_accounts"
    m.cols(mart)
    rows = m.rows("select assigned_tier as tier, coalesce(health_status, 'unknown') as status, count(*) as accounts, "
                  "avg(health_score) as avg_score from marts.dim_accounts where has_active_subscription group by all")
    if not rows:
        raise NoData(f"marts.{mart} has no live accounts")
    tiers = sorted({r["tier"] for r in rows if r["tier"] in m.tier_names}, key=m.tier_key)
    statuses = [s for s in ("healthy", "at-risk", "critical", "unknown") if any(r["status"] == s for r in rows)]
    counts = {s: [sum(r["accounts"] for r in rows if r["tier"] == t and r["status"] == s) for t in tiers]
              for s in statuses}
    totals = [sum(counts[s][i] for s in statuses) for i in range(len(tiers))]
    shares = {s: [c / totals[i] if totals[i] else 0 for i, c in enumerate(v)] for s, v in counts.items()}
    avg = {t: sum((f.as_float(r["avg_score"]) or 0) * r["accounts"] for r in rows if r["tier"] == t and r["avg_score"]
                  is not None) / max(1, sum(r["accounts"] for r in rows if r["tier"] == t and r["avg_score"] is not None))
           for t in tiers}
    charts = [svg.bar_chart(tiers, shares, "Health status mix by tier (share of accounts)", fmt=svg.pct, stacked=True),
              svg.bar_chart(tiers, counts, "Accounts by tier and health status", fmt=svg.count, stacked=True),
              svg.bar_chart(tiers, {"average health score": [avg[t] for t in tiers]},
                            "Average health score by tier (0-100)", fmt=svg.num)]
    table_rows = [{"tier": t, **{s: counts[s][i] for s in statuses}, "accounts": totals[i], "avg": avg[t]}
                  for i, t in enumerate(tiers)]
    cols = (Col("tier", "tier"), *(Col(s, s, f.count) for s in statuses), Col("accounts", "accounts", f.count),
            Col("avg", "average health score", f.decimal1))
    return (_note(f"Live accounts on {f.date(m.run_date)}, from <code>{mart}</code>; health score 0-100, healthy "
                  ">= 70, at-risk >= 40, critical below (the default profile's bands; var health_profiles may "
                  "give an adoption stage its own, see the health trend section).") + _grid(charts) + table(table_rows, cols))


def coverage(m: Marts) -> str:
    mart = "rpt_coverage_by_tier"
    rows = sorted(m.select(mart, f"as_of_date = (select max(as_of_date) from marts.{mart})"),
                  key=lambda r: m.tier_key(r["tier_name"]))
    if not rows:
        raise NoData(f"marts.{mart} is empty")
    charts = [
        svg.target_bars([(r["tier_name"], f.as_float(r["actual_accounts_per_csm"]), f.as_float(r["accounts_per_csm_min"]),
                          f.as_float(r["accounts_per_csm_max"])) for r in rows],
                        "Accounts per CSM by tier vs engagement model", fmt=svg.num),
        svg.target_bars([(r["tier_name"], f.as_float(r["cost_share_of_arr"]), 0.05, 0.15) for r in rows],
                        "CS cost as share of ARR (band 5-15%)"),
        svg.bar_chart([r["tier_name"] for r in rows],
                      {"cost per account": [f.as_float(r["cost_per_account_at_target"]) for r in rows]},
                      "Annual cost to serve per account (at the target ratio)", fmt=svg.money),
    ]
    cols = (Col("tier_name", "tier"), Col("account_count", "accounts", f.count), Col("arr_reporting", "ARR", f.money),
            Col("csms_assigned", "CSMs", f.count), Col("actual_accounts_per_csm", "accounts per CSM", f.decimal1),
            Col("accounts_per_csm_min", "model min", f.count), Col("accounts_per_csm_max", "model max", f.count),
            Col("cost_per_account_at_target", "cost per account at target", f.money),
            Col("annual_cost_to_serve", "annual cost to serve", f.money),
            Col("cost_share_of_arr", "cost share of ARR", f.pct))
    out = _note(f"From <code>{mart}</code>.") + _grid(charts) + table(rows, cols)
    csm = m.select("rpt_coverage_by_csm", "as_of_date = (select max(as_of_date) from marts.rpt_coverage_by_csm)",
                   "account_count desc, csm_owner_id")
    names = {t.number: t.name for t in m.tiers}
    csm_cols = (Col("csm_owner_id", "CSM"), Col("account_count", "accounts", f.count),
                Col("arr_reporting", "ARR", f.money),
                *(Col(f"tier_{n}_accounts", names.get(n, f"tier {n}"), f.count) for n in (1, 2, 3, 4)),
                Col("is_over_capacity", "over capacity?", f.yes_no),
                Col("annual_cost_per_account", "cost per account", f.money))
    return out + table(csm[:50], csm_cols, caption="CSM books (rpt_coverage_by_csm)")


# --------------------------------------------------------------------------- cohorts, unit economics


def cohorts(m: Marts) -> str:
    mart = "rpt_cohort_retention"
    rows = period_rows(m, mart, "starting_tier = 'All' and cohort_month >= "
                                f"(select max(cohort_month) from marts.{mart}) - interval 11 month "
                                "and months_since_start <= 12", order="cohort_month, months_since_start")
    if not rows:
        raise NoData(f"marts.{mart} is empty")
    cohorts_ = sorted({r["cohort_month"] for r in rows})
    horizon = range(0, 13)

    def heat(col: str, title: str) -> str:
        head = "".join(f"<th class=n>{k}</th>" for k in horizon)
        body = []
        for c in cohorts_:
            mine = {r["months_since_start"]: r for r in rows if r["cohort_month"] == c}
            size = next(iter(mine.values()))["cohort_logos"]
            cells = []
            for k in horizon:
                r = mine.get(k)
                if r is None:
                    cells.append("<td></td>")
                    continue
                v = f.as_float(r[col]) or 0.0
                shade = max(0.0, min(1.0, (v - 0.5) / 0.6))
                cls = ' class="n in-progress"' if mark_of(r) == IN_PROGRESS else " class=n"
                cells.append(f'<td{cls} style="background:rgba(43,108,176,{shade * 0.55:.2f})" '
                             f'title="{esc(mark_of(r) or "complete")}">{esc(f.pct(r[col]))}</td>')
            body.append(f"<tr><th scope=row>{esc(f.month(c))} ({size})</th>{''.join(cells)}</tr>")
        return (f'<div class="table-wrap"><table class="heat"><caption>{esc(title)}</caption><thead><tr>'
                f"<th>cohort (logos)</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")

    curves, partial = {}, set()
    for c in cohorts_[-6:]:
        mine = [r for r in rows if r["cohort_month"] == c]
        curves[f.month(c)] = [(f"{r['months_since_start']:02d}", f.as_float(r["revenue_retention"])) for r in mine]
        partial |= {(f.month(c), f"{r['months_since_start']:02d}") for r in mine if mark_of(r) == IN_PROGRESS}
    return (_note(f"Signup cohorts of the last 12 months (all tiers), from <code>{mart}</code>; columns are months "
                  "since the first month as a customer. Italic cells with a dotted border are the month in "
                  "progress.")
            + heat("logo_retention", "Logo retention by cohort") + heat("revenue_retention", "Revenue retention by cohort")
            + _grid([svg.line_chart(curves, "Revenue retention of the last 6 cohorts by months since start",
                                    fmt=svg.pct, reference=1.0, in_progress=partial)]))


def unit_economics(m: Marts) -> str:
    mart = "rpt_segment_unit_economics"
    rows = period_rows(m, mart, "segment_dimension in ('tier', 'total') and month_start_date >= "
                                f"(select max(month_start_date) from marts.{mart}) - interval 12 month",
                       order="month_start_date, segment_value")
    if not rows:
        raise NoData(f"marts.{mart} is empty")
    month = last_complete(rows, "month_start_date")
    latest = sorted((r for r in rows if r["month_start_date"] == month),
                    key=lambda r: (r["segment_dimension"] == "total", m.tier_key(r["segment_value"])))
    tiers = [r for r in latest if r["segment_dimension"] == "tier"]
    marks = period_marks(rows, lambda r: f.month(r["month_start_date"]))
    values = sorted({r["segment_value"] for r in rows if r["segment_dimension"] == "tier"}, key=m.tier_key)
    arpa = {v: [(f.month(r["month_start_date"]), f.as_float(r["arpa_reporting"])) for r in rows
                if r["segment_value"] == v] for v in values}
    charts = [svg.line_chart(arpa, "ARPA (monthly revenue per account) by tier", fmt=svg.money, periods=marks,
                             colors=m.tier_colors),
              svg.bar_chart([r["segment_value"] for r in tiers],
                            {"LTV": [f.as_float(r["ltv_reporting"]) for r in tiers]},
                            f"LTV by tier, {f.month(month)}", fmt=svg.money)]
    cols = (Col("segment_value", "segment"), Col("ending_logos", "logos", f.count),
            Col("arpa_reporting", "ARPA", f.money), Col("acv_reporting", "ACV", f.money),
            Col("annual_logo_churn_rate", "annual logo churn", f.pct),
            Col("customer_lifetime_years", "lifetime", f.years), Col("ltv_reporting", "LTV", f.money),
            Col("cac_reporting", "CAC", f.money), Col("cac_payback_months", "payback", f.months),
            Col("ltv_to_cac_ratio", "LTV:CAC", f.ratio), Col("required_ltv_to_cac", "required LTV:CAC", f.ratio))
    no_cac = all(r["cac_reporting"] is None for r in latest)
    return (_note(f"Per tier, from <code>{mart}</code>, trailing 12 months."
                  + (" CAC, payback and LTV:CAC are empty: no acquisition spend is configured (seed "
                     "<code>revenue_acquisition_spend</code>)." if no_cac else ""))
            + _grid(charts)
            + table(latest, cols, caption=f"{f.month(month)} (last complete month)" if month else "", periods=True))


# --------------------------------------------------------------------------- account lists


def at_risk(m: Marts) -> str:
    m.cols("dim_accounts"), m.cols("fct_account_health_daily")
    rows = m.rows(
        "select a.account_id, a.account_name, a.assigned_tier, a.arr_reporting, a.health_score, a.health_status, "
        "a.weakest_health_component, a.days_to_renewal, a.csm_owner_id, h.product_usage_score, "
        "h.cs_engagement_score, h.support_score, h.billing_score, h.sentiment_score "
        "from marts.dim_accounts a left join marts.fct_account_health_daily h "
        "on h.account_id = a.account_id and h.as_of_date = a.as_of_date "
        "where a.has_active_subscription and a.health_status in ('at-risk', 'critical') "
        f"order by a.arr_reporting desc nulls last, a.health_score, a.account_id limit {TOP_N}")
    if not rows:
        return '<div class="nodata">No live account is at-risk or critical today.</div>'
    for r in rows:
        weakest = r["weakest_health_component"]
        value = r.get(f"{weakest}_score") if weakest else None
        r["driver"] = (f"{COMPONENTS.get(weakest, weakest)} (score {f.score(value)})" if weakest else "no health data")
        r["owner"] = _owner(r["csm_owner_id"])
        r["account"] = f"{r['account_name'] or r['account_id']} ({r['account_id']})"
    cols = (Col("account", "account"), Col("assigned_tier", "tier"), Col("arr_reporting", "ARR", f.money),
            Col("health_score", "health score", f.score), Col("health_status", "status"),
            Col("driver", "main driver (weakest health component)", wrap=True), Col("days_to_renewal", "renewal in", f.days),
            Col("owner", "owner"))
    return _note("Live at-risk and critical accounts with the most ARR, from <code>dim_accounts</code> and "
                 "<code>fct_account_health_daily</code> (the driver is the component pulling the score down "
                 "most).") + table(rows, cols)


def expansion(m: Marts) -> str:
    m.cols("fct_mrr_movements"), m.cols("dim_accounts"), m.cols("fct_account_signals")
    rows = m.rows(
        "with moves as (select account_id, sum(expansion_mrr_reporting) as expansion_mrr, "
        "arg_max(previous_plan_name, month_start_date) as previous_plan, arg_max(plan_name, month_start_date) as plan "
        "from marts.fct_mrr_movements where movement_type = 'expansion' "
        "and month_start_date > (select max(month_start_date) from marts.fct_mrr_movements) - interval 3 month "
        "group by all), "
        "signals as (select account_id, string_agg(signal_type, ',' order by signal_type) as signal_types, "
        "string_agg(signal_detail, '; ' order by signal_type) as signal_details from marts.fct_account_signals "
        "where signal_category = 'expansion' and as_of_date > ?::date - interval 30 day group by all) "
        "select x.account_id, a.account_name, a.assigned_tier, a.has_active_subscription, a.arr_reporting, a.csm_owner_id, x.expansion_mrr, "
        "x.previous_plan, x.plan, s.signal_types, s.signal_details from moves x "
        "left join marts.dim_accounts a on a.account_id = x.account_id "
        "left join signals s on s.account_id = x.account_id "
        f"order by x.expansion_mrr desc, x.account_id limit {TOP_N}", [m.run_date])
    for r in rows:
        drivers = []
        if r["previous_plan"] and r["plan"] and r["previous_plan"] != r["plan"]:
            drivers.append(f"plan {r['previous_plan']} → {r['plan']}")
        else:
            drivers.append("more seats or subscriptions")
        if r["signal_types"]:
            drivers.append(", ".join(SIGNALS.get(s, s) for s in r["signal_types"].split(",")))
        r["driver"] = "; ".join(drivers)
        r["tier"] = _tier(r)
        r["owner"] = _owner(r["csm_owner_id"])
        r["account"] = f"{r['account_name'] or r['account_id']} ({r['account_id']})"
    cols = (Col("account", "account"), Col("tier", "tier"), Col("arr_reporting", "ARR", f.money),
            Col("expansion_mrr", "expansion MRR, last 3 months", f.money), Col("driver", "driver", wrap=True),
            Col("owner", "owner"))
    out = _note("Accounts with the most expansion MRR over the last 3 months (the month in progress included), "
                "from <code>fct_mrr_movements</code>; the driver is the plan change and any expansion signal of "
                "the last 30 days (<code>fct_account_signals</code>).")
    out += table(rows, cols) if rows else '<div class="nodata">No expansion in the last 3 months.</div>'
    sig = m.rows(
        "select s.account_id, a.account_name, a.assigned_tier, a.has_active_subscription, a.arr_reporting, a.csm_owner_id, s.signal_type, "
        "s.signal_detail, a.days_to_renewal from marts.fct_account_signals s "
        "left join marts.dim_accounts a on a.account_id = s.account_id "
        "where s.signal_category = 'expansion' and s.as_of_date = ? "
        f"order by a.arr_reporting desc nulls last, s.account_id, s.signal_type limit {TOP_N}", [m.run_date])
    for r in sig:
        r["owner"] = _owner(r["csm_owner_id"])
        r["account"] = f"{r['account_name'] or r['account_id']} ({r['account_id']})"
        r["signal"] = f"{SIGNALS.get(r['signal_type'], r['signal_type'])}: {r['signal_detail']}"
        r["tier"] = _tier(r)
    sig_cols = (Col("account", "account"), Col("tier", "tier"), Col("arr_reporting", "ARR", f.money),
                Col("signal", "signal", wrap=True), Col("days_to_renewal", "renewal in", f.days), Col("owner", "owner"))
    if sig:
        out += table(sig, sig_cols, caption=f"Expansion signals raised on {f.date(m.run_date)}")
    return out


# --------------------------------------------------------------------------- actions and health trend (issue 21)

ACTION_TYPES = {"tier_changed": "tier changed", "downgrade_pending": "downgrade pending",
                "health_fell": "health fell", "renewal_at_risk": "renewal at risk",
                "expansion_signal": "expansion signal", "owner_missing": "owner missing"}
#: the same, short enough for a chart's category axis
ACTION_TYPES_SHORT = {"tier_changed": "tier", "downgrade_pending": "downgrade", "health_fell": "health",
                      "renewal_at_risk": "renewal", "expansion_signal": "expansion", "owner_missing": "no owner"}
TRENDS = ("down", "same", "up", "no history")


def actions(m: Marts) -> str:
    """Open actions per owner and tier tonight, the night's new high-priority ones, and opened /
    closed per week (fct_account_actions_daily, rpt_actions_weekly)."""
    mart = "fct_account_actions_daily"
    m.cols(mart)
    latest = m.latest(mart)
    if latest is None:
        raise NoData(f"marts.{mart} is empty")
    rows = m.select(mart, "as_of_date = ?", "priority_rank, due_date, account_id", [latest])
    open_rows = [r for r in rows if r["action_status"] == "open"]
    priorities = sorted({(r["priority_rank"], r["priority"]) for r in open_rows})
    tiers = sorted({r["tier_name"] for r in open_rows}, key=m.tier_key)
    cards = [("open actions", len(open_rows)), ("opened tonight", sum(1 for r in rows if r["is_opened_tonight"])),
             ("closed tonight", sum(1 for r in rows if r["action_status"] == "closed")),
             ("overdue", sum(1 for r in open_rows if r["is_overdue"]))]
    out = (_note(f"Actions on {f.date(latest)} from <code>{mart}</code>: one per account, action type and reason, "
                 "open while its condition holds (seed <code>action_playbook</code> sets priority and due date per "
                 "tier; glossary: action feed).")
           + '<div class="cards">' + "".join(f'<div class="card"><b>{esc(f.count(v))}</b>{esc(k)}'
                                             f'<div class="src">{mart}</div></div>' for k, v in cards) + "</div>")
    by_tier = {p: [sum(1 for r in open_rows if r["tier_name"] == t and r["priority"] == p) for t in tiers]
               for _, p in priorities}
    by_type = {p: [sum(1 for r in open_rows if r["action_type"] == a and r["priority"] == p) for a in ACTION_TYPES]
               for _, p in priorities}
    charts = [svg.bar_chart(tiers, by_tier, "Open actions by tier and priority", fmt=svg.count, stacked=True),
              svg.bar_chart(list(ACTION_TYPES_SHORT.values()), by_type, "Open actions by type and priority", fmt=svg.count,
                            stacked=True)]
    weekly = m.select("rpt_actions_weekly", order="week_start_date")
    weeks = sorted({r["week_start_date"] for r in weekly})[-12:]
    if weeks:
        charts.append(svg.bar_chart(
            [f.date(w) for w in weeks],
            {"opened": [sum(r["opened_count"] for r in weekly if r["week_start_date"] == w) for w in weeks],
             "closed": [sum(r["closed_count"] for r in weekly if r["week_start_date"] == w) for w in weeks]},
            "Actions opened and closed per week (rpt_actions_weekly)", fmt=svg.count))
    out += _grid(charts)
    # grouped in one pass: a scan of the open actions per owner was owners x actions, both growing
    # with the accounts (5.6 s of a 20K-account publish's 17.5 s)
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for r in open_rows:
        by_owner.setdefault(_owner(r["csm_owner_id"]), []).append(r)
    owners = sorted(by_owner, key=lambda o: (o == "unassigned", o))
    top = priorities[0][1] if priorities else None
    owner_rows = []
    for owner in owners:
        mine = by_owner[owner]
        owner_rows.append({"owner": owner, **{t: sum(1 for r in mine if r["tier_name"] == t) for t in tiers},
                           "open": len(mine), "top": sum(1 for r in mine if r["priority"] == top),
                           "overdue": sum(1 for r in mine if r["is_overdue"])})
    cols = (Col("owner", "owner"), *(Col(t, t, f.count) for t in tiers), Col("open", "open actions", f.count),
            Col("top", f"{top or 'top'} priority", f.count), Col("overdue", "overdue", f.count))
    out += table(owner_rows, cols, caption="Open actions per owner and tier")
    new = [dict(r, owner=_owner(r["csm_owner_id"]), type=ACTION_TYPES.get(r["action_type"], r["action_type"]))
           for r in rows if r["is_opened_tonight"] and r["priority"] == top][:30]
    new_cols = (Col("owner", "owner"), Col("account_id", "account"), Col("tier_name", "tier"), Col("type", "action"),
                Col("due_date", "due", f.date), Col("action_reason", "reason", wrap=True))
    out += (table(new, new_cols, caption=f"New {top}-priority actions tonight") if new
            else _note(f"No new {esc(top or '')}-priority action tonight."))
    return out


def health_trend(m: Marts) -> str:
    """Health trend per tier over 7 and 30 days (fct_account_health_daily) and the largest 7-day falls."""
    mart = "fct_account_health_daily"
    m.cols(mart)
    latest = m.latest(mart)
    rows = [r for r in m.select(mart, "as_of_date = ? and health_score is not null", "account_id", [latest])]
    if not rows:
        raise NoData(f"marts.{mart} has no scored account on its latest date")
    tiers = sorted({r["assigned_tier"] for r in rows if r["assigned_tier"]}, key=m.tier_key)
    charts, tables = [], []
    for days in (7, 30):
        key = f"health_trend_{days}d"
        counts = {t: [sum(1 for r in rows if r["assigned_tier"] == tier and (r[key] or "no history") == t)
                      for tier in tiers] for t in TRENDS}
        charts.append(svg.bar_chart(tiers, counts, f"Health trend over {days} days by tier (accounts)",
                                    fmt=svg.count, stacked=True))
        tables.extend({"window": f"{days} days", "tier": tier, **{t: counts[t][i] for t in TRENDS}}
                      for i, tier in enumerate(tiers))
    cols = (Col("window", "window"), Col("tier", "tier"), *(Col(t, t, f.count) for t in TRENDS))
    falls = sorted((r for r in rows if r["health_trend_7d"] == "down"),
                   key=lambda r: (f.as_float(r["health_score_change_7d"]) or 0, r["account_id"]))[:TOP_N]
    fall_cols = (Col("account_id", "account"), Col("assigned_tier", "tier"), Col("health_score", "health score", f.score),
                 Col("health_status", "status"), Col("health_score_change_7d", "change, 7 days", f.decimal1),
                 Col("health_score_change_30d", "change, 30 days", f.decimal1), Col("health_profile", "profile"))
    return (_note(f"Live scored accounts on {f.date(latest)} from <code>{mart}</code>: the change against exactly "
                  "7 and 30 days earlier is up, down or same (within the band of var "
                  "<code>health_trend_same_max_points</code>); no history until that day has been scored. Each "
                  "account is scored with its health profile (var <code>health_profiles</code>).")
            + _grid(charts) + table(tables, cols, caption="Health trend by tier")
            + (table(falls, fall_cols, caption="Largest 7-day falls") if falls
               else _note("No account's health went down over the last 7 days (or no 7-day history yet).")))
