"""The one place that names what the report reads from the published marts.

Every section selects exactly these columns (``Marts.select``), never guesses among candidate
names: a renamed or dropped column makes that section say "No data" in a nightly report and
makes ``tests/unit/test_report.py`` fail (it checks this list against the marts dbt builds).

``PERIOD_FLAGS`` are the period marts' completeness / backcast flags. They are read when the
mart has them; until then :mod:`pipelines.report.periods` derives them from the period start,
the run date and the daily history.
"""

from __future__ import annotations

SCHEMA = "marts"

#: Tier names in display order (the assigned tiers of the account marts).
TIER_ORDER = ("Strategic", "Core", "Scale", "Tech-touch")

RETENTION_COLUMNS = (
    "period_start_date", "segment_dimension", "segment_value", "segment_source",
    "starting_mrr_reporting", "expansion_mrr_reporting", "contraction_mrr_reporting", "churned_mrr_reporting",
    "ending_mrr_reporting", "starting_logos", "ending_logos",
    "gross_revenue_retention", "net_revenue_retention", "logo_retention", "expansion_rate", "quick_ratio",
    "trailing_gross_revenue_retention", "trailing_net_revenue_retention", "trailing_logo_retention",
    "target_retention_rate",
)

COLUMNS: dict[str, tuple[str, ...]] = {
    "rpt_segment_retention_monthly": RETENTION_COLUMNS,
    "rpt_segment_retention_quarterly": RETENTION_COLUMNS,
    "rpt_cohort_retention": (
        "cohort_month", "starting_tier", "months_since_start", "month_start_date", "cohort_logos",
        "active_logos", "logo_retention", "revenue_retention",
    ),
    "rpt_segment_unit_economics": (
        "month_start_date", "segment_dimension", "segment_value", "segment_source", "ending_logos",
        "arpa_reporting", "acv_reporting", "annual_logo_churn_rate", "customer_lifetime_years", "ltv_reporting",
        "cac_reporting", "cac_payback_months", "ltv_to_cac_ratio", "required_ltv_to_cac",
    ),
    "rpt_tier_distribution": (
        "as_of_date", "tier_number", "tier_name", "account_count", "arr_reporting", "account_share", "arr_share",
        "min_account_share", "max_account_share", "min_arr_share", "max_arr_share", "is_not_prioritising",
    ),
    "rpt_tier_threshold_advice": (
        "as_of_date", "tier_number", "tier_name", "live_account_count", "arr_p50", "arr_p75", "arr_p90", "arr_p95",
        "bin_count", "min_account_share", "max_account_share", "min_arr_share", "max_arr_share",
        "assigned_account_share", "assigned_arr_share", "configured_min_arr", "configured_account_share",
        "configured_arr_share", "natural_break_min_arr", "natural_break_account_share", "natural_break_arr_share",
        "advised_min_arr", "advised_account_share", "advised_arr_share", "lowest_on_target_arr",
        "highest_on_target_arr", "is_advised_account_share_on_target", "is_advised_arr_share_on_target",
        "is_configured_on_target",
    ),
    "rpt_health_backtest": (
        "as_of_date", "analysis", "group_value", "sort_key", "horizon_days", "first_scored_date", "last_scored_date",
        "account_days", "accounts", "churned_account_days", "churn_rate", "contraction_rate", "expansion_rate",
        "churn_lift", "contraction_lift", "expansion_lift", "churn_auc", "default_profile_churn_auc", "annualised_retention",
        "target_retention_rate", "retention_uplift_over_rest",
    ),
    "rpt_coverage_by_tier": (
        "as_of_date", "tier_number", "tier_name", "account_count", "arr_reporting", "csms_assigned",
        "actual_accounts_per_csm", "accounts_per_csm_min", "accounts_per_csm_max", "cost_per_account_at_target",
        "annual_cost_to_serve", "cost_share_of_arr",
    ),
    "rpt_coverage_by_csm": (
        "csm_owner_id", "as_of_date", "account_count", "arr_reporting", "tier_1_accounts", "tier_2_accounts",
        "tier_3_accounts", "tier_4_accounts", "is_over_capacity", "annual_cost_per_account",
    ),
    "dim_accounts": (
        "account_id", "as_of_date", "account_name", "csm_owner_id", "has_active_subscription", "arr_reporting",
        "health_score", "health_status", "weakest_health_component", "assigned_tier", "days_to_renewal",
    ),
    "fct_account_health_daily": (
        "account_id", "as_of_date", "product_usage_score", "cs_engagement_score", "support_score",
        "billing_score", "sentiment_score", "health_score", "health_status", "tier_number", "assigned_tier",
        "health_score_change_7d", "health_score_change_30d", "health_trend_7d", "health_trend_30d", "health_profile",
    ),
    # the action feed (issue 21)
    "fct_account_actions_daily": (
        "action_id", "as_of_date", "account_id", "action_type", "action_reason", "action_status", "opened_date",
        "due_date", "close_reason", "is_opened_tonight", "is_overdue", "priority", "priority_rank", "tier_number",
        "tier_name", "csm_owner_id",
    ),
    "rpt_actions_weekly": (
        "week_start_date", "tier_number", "tier_name", "action_type", "opened_count", "closed_count",
        "open_at_week_end_count", "overdue_at_week_end_count", "is_week_complete",
    ),
    "fct_account_tiers_daily": ("account_id", "as_of_date", "assigned_tier", "arr_reporting"),
    "fct_account_segments_daily": ("account_id", "as_of_date", "has_active_subscription"),
    "dim_account_tier_history": (
        "account_id", "assigned_tier", "tier_number", "previous_tier_number", "valid_from", "change_type",
        "change_reason",
    ),
    "fct_account_signals": ("account_id", "as_of_date", "signal_type", "signal_category", "signal_detail"),
    "fct_mrr_movements": (
        "account_id", "month_start_date", "movement_type", "previous_plan_name", "plan_name",
        "expansion_mrr_reporting",
    ),
}

#: Period marts and the column that holds each row's period start.
PERIOD_MARTS: dict[str, str] = {
    "rpt_segment_retention_monthly": "period_start_date",
    "rpt_segment_retention_quarterly": "period_start_date",
    "rpt_cohort_retention": "month_start_date",
    "rpt_segment_unit_economics": "month_start_date",
}
PERIOD_FLAGS = ("is_period_complete", "is_backcast")
