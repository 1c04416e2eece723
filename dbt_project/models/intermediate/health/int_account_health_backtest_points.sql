{#- The account-days rpt_health_backtest can score: the backtest points of every closed
    month (monthly points by default: the latest as-of date of the month in the health
    history, var backtest_points; every as-of date with 'daily'), with the health the
    account had that day (score, components, band, profile) and its assigned tier.
    Only scored days (a health score) are kept. Whether a point's follow-up window has
    passed, and what happened in it, is decided by rpt_health_backtest.
    A month's points are final once the month is over (nights only move forward; a replay
    rebuilds from its first night on), so a night computes only the month before the
    as-of date's (the month a night early in a month closes) and any later-closed month
    not kept yet, and keeps the others (config closed_month_incremental): it reads one
    month of the daily health history, not the whole history. A first build (or a full
    refresh) derives every closed month from the whole history; the result is the same
    (tests/e2e/test_soak.py compares it with a full refresh). -#}
{{ config(closed_month_incremental('point_month_start_date')) }}
{%- set scores = ['health_score', 'product_usage_score', 'cs_engagement_score', 'support_score', 'billing_score', 'sentiment_score'] %}
{%- set first_month = first_month_to_recompute('point_month_start_date') %}
{%- set month_scope %}
    where as_of_date < cast('{{ as_of_month_string() }}' as date)
    {%- if first_month %}
      and as_of_date >= cast('{{ first_month }}' as date)
    {%- endif %}
{%- endset %}

with health as (
    select * from {{ ref('int_account_health_scored') }}
    {{ month_scope }}
),

tiers as (
    select * from {{ ref('int_account_tiers_assigned') }}
    {{ month_scope }}
),

scored_dates as (
    select
        as_of_date,
        cast({{ dbt.date_trunc('month', 'as_of_date') }} as date) as point_month_start_date,
        {%- if var('backtest_points') == 'monthly' %}
        as_of_date = max(as_of_date) over (partition by {{ dbt.date_trunc('month', 'as_of_date') }}) as is_point
        {%- elif var('backtest_points') == 'daily' %}
        true as is_point
        {%- else %}
        {{ exceptions.raise_compiler_error("var backtest_points must be 'monthly' or 'daily', got " ~ var('backtest_points')) }}
        {%- endif %}
    from (select distinct as_of_date from health) as history_dates
),

final as (
    select
        scored_dates.point_month_start_date,
        health.account_id,
        health.as_of_date,
        health.health_status,
        coalesce(health.health_profile, 'default') as health_profile,
        cast(health.default_profile_health_score as double) as default_profile_health_score,
        tiers.assigned_tier_number as tier_number,
        {%- for score in scores %}
        cast(health.{{ score }} as double) as {{ score }}{{ ',' if not loop.last }}
        {%- endfor %}
    from health
    inner join scored_dates
        on health.as_of_date = scored_dates.as_of_date
    left join tiers
        on health.account_id = tiers.account_id
        and health.as_of_date = tiers.as_of_date
    where scored_dates.is_point
      and health.health_score is not null
)

select * from final
