"""Every metric the report shows, with its formula (from docs/revenue-definitions.md and the dbt
doc blocks ``revenue_*``, ``health_*``, ``tier_*`` and ``cost_to_serve``)."""

from __future__ import annotations

from pipelines.report.format import esc

#: (metric, formula, note)
TERMS: tuple[tuple[str, str, str], ...] = (
    ("MRR", "sum of the MRR of the subscriptions active on the month's last day (on the as-of date for "
     "the month in progress); interval amount / months in the interval x seats when per seat",
     "In the reporting currency at the FX rate of the period's start; rounded to the cent per account "
     "and month."),
    ("ARR", "12 x MRR", "Of the subscriptions live on the as-of date."),
    ("Customer (logo)", "an account with a counted subscription, not suspended for non-payment, MRR > 0",
     "Trials and $0 accounts are not customers by default (vars revenue_count_*)."),
    ("New / expansion / contraction / churn / reactivation MRR",
     "starting + new + expansion + reactivation - contraction - churn = ending",
     "One movement per account and period, comparing the end of the previous period with the end "
     "of this one."),
    ("GRR (gross revenue retention)", "(starting MRR - contraction - churn) / starting MRR",
     "Never above 100%. New, reactivated and expansion MRR excluded."),
    ("NRR (net revenue retention)", "(starting MRR + expansion - contraction - churn) / starting MRR",
     "New and reactivated MRR excluded."),
    ("Logo retention", "(starting logos - churned logos) / starting logos", ""),
    ("Expansion rate", "expansion MRR / starting MRR", ""),
    ("Quick ratio", "(new + expansion + reactivation MRR) / (contraction + churn MRR)",
     "MRR gained per unit lost; empty when nothing was lost."),
    ("Trailing 12-month GRR / NRR", "per account of the cohort of customers 12 months before: "
     "GRR = sum(min(end, start)) / sum(start); NRR = sum(end) / sum(start)",
     "Each account in the segment it was in at the start of the window; empty until a full window "
     "of data exists."),
    ("Segment membership", "the segment an account was in at the start of the period",
     "So a period's figures never move when accounts later change segment."),
    ("Backcast period", "a period before the accounts' daily history: tier and value band derived "
     "from billing at the period start (ARR rule of thumb, no strategic or growth criteria)",
     "Shaded grey in charts, marked in tables; read with care."),
    ("Period in progress", "the month or quarter that contains the as-of date",
     "Its figures are partial and change every night: shaded yellow in charts, marked in tables, "
     "never used for the headline cards."),
    ("Health score", "weighted average of the components present: product usage 35%, CS engagement 20%, "
     "support 15%, billing 15%, sentiment 15%; missing components' weights redistributed",
     "Healthy >= 70, at-risk >= 40, critical below (vars health_*_min_score)."),
    ("Main driver (weakest health component)", "the component with the largest weight x (100 - score)",
     "What pulls the account's score down most."),
    ("Tier", "rules (default): Strategic if ARR >= $100K with growth room, or >= $250K not at high "
     "churn risk, or strategic and >= $50K, or high growth and >= $40K; Core >= $25K; Tech-touch < $5K "
     "or free/trial; Scale otherwise",
     "Upgrades apply at once; downgrades only after the next renewal. Accounts without a live "
     "subscription are in no tier."),
    ("Tier share", "accounts (or ARR) of the tier / all live accounts (or ARR)",
     "Compared with the targets of seed tier_targets."),
    ("ARR percentile (p50, p75, p90, p95)", "the ARR below which that share of live accounts lies, "
     "interpolated between accounts (numpy's default)", "The median is p50."),
    ("Natural breaks", "the three ARR lines that split live accounts into four classes with the least total "
     "squared distance of each account's ARR from its class average (Fisher-Jenks)",
     "Exact over at most 200 equal-count ARR bins."),
    ("Advised tier line", "the ARR threshold that puts the tier's share of accounts and of ARR inside its "
     "target bands, chosen from the top tier down", "ARR only; the nearest miss when no line meets both bands."),
    ("Churn lift (backtest)", "churn rate of the band or tier within 90 days of a scored day / the churn rate of "
     "all scored account-days", "2 = churned twice as often as average."),
    ("Churn AUC (backtest)", "chance that an account-day that did not churn within 90 days scored higher than one "
     "that did (rank-sum / Mann-Whitney, ties half)", "1 = perfect ranking, 0.5 = chance."),
    ("Annualised retention (backtest)", "(1 - churn rate within 90 days) ^ (365 / 90)",
     "Compared with the tier's annual retention target (98/90/80/70%)."),
    ("Tier migration", "a change of assigned tier in the tier history: upgrade or downgrade", ""),
    ("Health profile", "the weights and status bands an account is scored with, picked by its adoption stage "
     "(var health_profile_by); a stage without a profile uses the default",
     "Never by tier: the tier rules read health."),
    ("Health trend", "up / down / same: the health score against exactly 7 (30) days earlier; within +-5 points "
     "(var health_trend_same_max_points) is same", "No history until that day has been scored."),
    ("Action", "one per account, action type and reason; open while its condition holds, never opened twice, "
     "closed resolved, superseded, expired (a tier change past due) or churned",
     "Priority and due date per tier from seed action_playbook (dbt doc action_feed)."),
    ("Accounts per CSM", "live accounts of the tier / CSMs owning them",
     "Compared with the engagement model's range (seed tier_engagement_models)."),
    ("Annual cost to serve per account", "CSM cost ($120K) / accounts per CSM + shared ($600) + technology ($200)",
     "Worked example: $120K / 50 + $600 + $200 = $3,200."),
    ("CS cost share of ARR", "annual cost to serve / ARR", "Healthy band 5-15%."),
    ("Cohort logo retention", "active logos of the signup cohort / cohort logos", "By months since the first month."),
    ("Cohort revenue retention", "cohort MRR now / cohort MRR in its first month", "Net of expansion."),
    ("ARPA", "ending MRR / ending logos", "Average revenue per account, monthly."),
    ("ACV", "12 x ARPA", ""),
    ("Customer lifetime", "1 / annual logo churn (1 - trailing logo retention), capped at 10 years", ""),
    ("LTV", "ACV x gross margin x lifetime x NRR factor (trailing NRR)",
     "Worked examples: ACV $2,400 for 2.5 years = $6,000; ACV $20,000, 4 years, NRR 110% = $88,000."),
    ("CAC", "acquisition spend over the trailing 12 months / new logos in them",
     "Empty until seed revenue_acquisition_spend is filled in."),
    ("Payback", "CAC / ARPA (months)", ""),
    ("LTV:CAC", "LTV / CAC", "Required: enterprise 3, mid-market 4, SMB 5."),
)


def glossary() -> str:
    rows = "".join(f"<tr><th scope=row>{esc(t)}</th><td><code>{esc(f)}</code></td><td>{esc(n)}</td></tr>"
                   for t, f, n in TERMS)
    return ('<p class="muted">Full definitions: docs/revenue-definitions.md and the dbt docs of each mart.</p>'
            f'<div class="table-wrap"><table class="glossary"><thead><tr><th>metric</th><th>formula</th>'
            f"<th>notes</th></tr></thead><tbody>{rows}</tbody></table></div>")
