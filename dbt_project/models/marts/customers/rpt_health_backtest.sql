{#- Published roll-up: the health-score backtest. Every scored account-day of the health
    history (live accounts; monthly points by default: the latest as-of date of each month,
    var backtest_points) whose follow-up window of var backtest_horizon_days (90) has fully
    passed by the run date, joined to what happened to the account in that window (churn,
    contraction, expansion: the revenue movements of the months ending inside it). One row
    per analysis and group:
    - overall: the base rates;
    - health_band / tier: outcome rates, lift over the base rate, and per tier the logo
      retention (annualised) against the tier's target and its uplift over the other tiers;
    - score: ROC AUC of the health score and of each component for churn, computed by the
      rank-sum (Mann-Whitney) formula with average ranks for ties: the chance that a random
      account-day that did not churn scores higher than one that did (1 = perfect, 0.5 = no
      better than chance);
    - health_profile: per health profile (doc block health_profiles), the churn AUC of the
      health score the profile gave its account-days, and in default_profile_churn_auc the AUC
      of the default-weight score on the same account-days: does the profile rank churners
      better than the default would?
    Only what was known on each day is scored: the health rows are the ones built for that
    as-of date (doc block health_backtest). The points come from
    int_account_health_backtest_points, which keeps closed months (their points never change)
    and reads only the month a night closes; the outcomes are joined here, every night, since a
    restated billing month can change them. -#}
{%- set horizon = var('backtest_horizon_days') %}
{%- set scores = ['health_score', 'product_usage_score', 'cs_engagement_score', 'support_score', 'billing_score', 'sentiment_score'] %}

with points as (
    {#- the backtest points of the closed months, kept month by month -#}
    select * from {{ ref('int_account_health_backtest_points') }}
),

movements as (
    select * from {{ ref('fct_mrr_movements') }}
),

retention_targets as (
    select * from {{ ref('revenue_segment_targets') }}
    where segment_dimension = 'tier'
),

tier_targets as (
    select * from {{ ref('tier_targets') }}
),

account_days as (
    select
        account_id,
        as_of_date,
        {{ dbt.dateadd('day', horizon, 'as_of_date') }} as horizon_end_date,
        health_status,
        health_profile,
        default_profile_health_score,
        tier_number,
        {%- for score in scores %}
        {{ score }}{{ ',' if not loop.last }}
        {%- endfor %}
    from points
    where as_of_date <= {{ dbt.dateadd('day', -1 * horizon, as_of_date()) }}
),

movement_months as (
    select
        account_id,
        movement_type,
        {{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'month_start_date')) }} as month_end_date
    from movements
    where movement_type in ('churn', 'contraction', 'expansion')
),

outcomes as (
    select
        account_days.account_id,
        account_days.as_of_date,
        max(case when movement_months.movement_type = 'churn' then 1 else 0 end) as is_churned,
        max(case when movement_months.movement_type = 'contraction' then 1 else 0 end) as is_contracted,
        max(case when movement_months.movement_type = 'expansion' then 1 else 0 end) as is_expanded
    from account_days
    left join movement_months
        on account_days.account_id = movement_months.account_id
        and movement_months.month_end_date > account_days.as_of_date
        and movement_months.month_end_date <= account_days.horizon_end_date
    group by account_days.account_id, account_days.as_of_date
),

scored as (
    select
        account_days.*,
        outcomes.is_churned,
        outcomes.is_contracted,
        outcomes.is_expanded
    from account_days
    inner join outcomes
        on account_days.account_id = outcomes.account_id
        and account_days.as_of_date = outcomes.as_of_date
),

{%- set counts %}
        count(*) as account_days,
        count(distinct account_id) as accounts,
        coalesce(sum(is_churned), 0) as churned_account_days,
        coalesce(sum(is_contracted), 0) as contracted_account_days,
        coalesce(sum(is_expanded), 0) as expanded_account_days,
        min(as_of_date) as first_scored_date,
        max(as_of_date) as last_scored_date
{%- endset %}

overall as (
    select
        'overall' as analysis,
        'all scored account-days' as group_value,
        0 as sort_key,
        {{ counts }}
    from scored
),

by_band as (
    select
        'health_band' as analysis,
        health_status as group_value,
        case health_status when 'healthy' then 1 when 'at-risk' then 2 else 3 end as sort_key,
        {{ counts }}
    from scored
    group by health_status
),

by_tier as (
    select
        'tier' as analysis,
        tier_targets.tier_name as group_value,
        scored.tier_number as sort_key,
        {{ counts | replace('account_id', 'scored.account_id') | replace('(as_of_date)', '(scored.as_of_date)') }}
    from scored
    inner join tier_targets
        on scored.tier_number = tier_targets.tier_number
    group by tier_targets.tier_name, scored.tier_number
),

score_values as (
    {%- for score in scores %}
    select
        '{{ score }}' as score_name,
        'score' as analysis,
        '{{ score }}' as group_value,
        {{ loop.index }} as sort_key,
        account_id,
        as_of_date,
        {{ score }} as score_value,
        is_churned,
        is_contracted,
        is_expanded
    from scored
    where {{ score }} is not null
    union all
    {%- endfor %}
    {#- per profile: its own score, and the default-weight score of the same account-days -#}
    {%- for kind, column in [['profile', 'health_score'], ['default', 'default_profile_health_score']] %}
    select
        '{{ kind }}|' || health_profile as score_name,
        '{{ "health_profile" if kind == "profile" else "health_profile_default" }}' as analysis,
        health_profile as group_value,
        {{ scores | length + 1 }} as sort_key,
        account_id,
        as_of_date,
        {{ column }} as score_value,
        is_churned,
        is_contracted,
        is_expanded
    from scored
    where health_score is not null and default_profile_health_score is not null
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

score_ranked as (
    select
        *,
        rank() over (partition by score_name order by score_value)
        + cast(1 as double) * (count(*) over (partition by score_name, score_value) - 1) / 2 as average_rank
    from score_values
),

by_score as (
    select
        analysis,
        group_value,
        min(sort_key) as sort_key,
        {{ counts }},
        sum(case when is_churned = 0 then average_rank else 0 end) as not_churned_rank_sum
    from score_ranked
    group by score_name, analysis, group_value
),

groups as (
    select *, cast(null as double) as not_churned_rank_sum from overall
    union all
    select *, cast(null as double) from by_band
    union all
    select *, cast(null as double) from by_tier
    union all
    select * from by_score
),

rates as (
    select
        groups.*,
        case when account_days > 0 then cast(1 as double) * churned_account_days / account_days end as churn_rate,
        case when account_days > 0 then cast(1 as double) * contracted_account_days / account_days end
            as contraction_rate,
        case when account_days > 0 then cast(1 as double) * expanded_account_days / account_days end as expansion_rate,
        case
            when churned_account_days > 0 and account_days > churned_account_days
                then (not_churned_rank_sum
                      - cast(1 as double) * (account_days - churned_account_days) * (account_days - churned_account_days + 1) / 2)
                     / (cast(1 as double) * churned_account_days * (account_days - churned_account_days))
        end as churn_auc
    from groups
),

base as (
    select churn_rate, contraction_rate, expansion_rate from rates where analysis = 'overall'
),

tier_retention as (
    select
        rates.group_value,
        power(1 - rates.churn_rate, cast(365 as double) / {{ horizon }}) as annualised_retention,
        power(
            1 - cast(1 as double) * (totals.churned - rates.churned_account_days) / nullif(totals.days - rates.account_days, 0),
            cast(365 as double) / {{ horizon }}
        ) as rest_annualised_retention
    from rates
    cross join (
        select sum(account_days) as days, sum(churned_account_days) as churned from rates where analysis = 'tier'
    ) as totals
    where rates.analysis = 'tier'
),

final as (
    select
        {{ as_of_date() }} as as_of_date,
        cast(rates.analysis as {{ dbt.type_string() }}) as analysis,
        cast(rates.group_value as {{ dbt.type_string() }}) as group_value,
        cast(rates.sort_key as integer) as sort_key,
        cast({{ horizon }} as integer) as horizon_days,
        cast(rates.first_scored_date as date) as first_scored_date,
        cast(rates.last_scored_date as date) as last_scored_date,
        cast(rates.account_days as bigint) as account_days,
        cast(rates.accounts as bigint) as accounts,
        cast(rates.churned_account_days as bigint) as churned_account_days,
        cast(rates.contracted_account_days as bigint) as contracted_account_days,
        cast(rates.expanded_account_days as bigint) as expanded_account_days,
        cast({{ round_decimal('rates.churn_rate', 6) }} as decimal(18, 6)) as churn_rate,
        cast({{ round_decimal('rates.contraction_rate', 6) }} as decimal(18, 6)) as contraction_rate,
        cast({{ round_decimal('rates.expansion_rate', 6) }} as decimal(18, 6)) as expansion_rate,
        cast({{ round_decimal(
            "case when rates.analysis in ('health_band', 'tier') and base.churn_rate > 0 then rates.churn_rate / base.churn_rate end", 6
        ) }} as decimal(18, 6)) as churn_lift,
        cast({{ round_decimal(
            "case when rates.analysis in ('health_band', 'tier') and base.contraction_rate > 0 then rates.contraction_rate / base.contraction_rate end", 6
        ) }} as decimal(18, 6)) as contraction_lift,
        cast({{ round_decimal(
            "case when rates.analysis in ('health_band', 'tier') and base.expansion_rate > 0 then rates.expansion_rate / base.expansion_rate end", 6
        ) }} as decimal(18, 6)) as expansion_lift,
        cast({{ round_decimal('rates.churn_auc', 6) }} as decimal(18, 6)) as churn_auc,
        cast({{ round_decimal('profile_default.churn_auc', 6) }} as decimal(18, 6)) as default_profile_churn_auc,
        cast({{ round_decimal('tier_retention.annualised_retention', 6) }} as decimal(18, 6)) as annualised_retention,
        cast(retention_targets.target_retention_rate as decimal(18, 6)) as target_retention_rate,
        cast({{ round_decimal(
            'case when tier_retention.rest_annualised_retention > 0 then tier_retention.annualised_retention / tier_retention.rest_annualised_retention - 1 end', 6
        ) }} as decimal(18, 6)) as retention_uplift_over_rest
    from rates
    cross join base
    left join tier_retention
        on rates.analysis = 'tier' and rates.group_value = tier_retention.group_value
    left join retention_targets
        on rates.analysis = 'tier' and rates.group_value = retention_targets.segment_value
    left join rates as profile_default
        on rates.analysis = 'health_profile' and profile_default.analysis = 'health_profile_default'
        and rates.group_value = profile_default.group_value
    where rates.analysis <> 'health_profile_default'
)

select * from final
