{#- The tier each account qualifies for on the as-of date, by both methods: explicit
    rules and the weighted scorecard (var tier_method picks the one that counts).
    Carries every criterion, each scorecard contribution and a plain-language
    reason. The assigned tier (with migration rules) is int_account_tiers_assigned.
    Only live accounts (a subscription live on the as-of date) have a tier, a tier score
    and scorecard points: churned accounts and prospects get none (doc block account_status).
    Rules: doc blocks tier_rules and tier_scorecard. -#}
{%- set sw = var('scorecard_weights') %}
{%- set op = tier1_arr_operator() | trim %}
{%- set sp = var('strategic_points') %}
{%- set min_scores = var('scorecard_tier_min_scores') %}

with accounts as (
    select * from {{ ref('int_accounts_enriched') }}
),

segments as (
    select * from {{ ref('int_account_segments_classified') }}
    where as_of_date = {{ as_of_date() }}
),

health as (
    select * from {{ ref('int_account_health_scored') }}
    where as_of_date = {{ as_of_date() }}
),

tier_targets as (
    select * from {{ ref('tier_targets') }}
),

criteria as (
    select
        accounts.account_id,
        accounts.as_of_date,
        accounts.arr_reporting,
        accounts.plan_name,
        accounts.has_active_subscription,
        accounts.account_status,
        accounts.next_renewal_date,
        accounts.is_marquee_logo,
        accounts.is_partner,
        accounts.is_reference,
        segments.growth_potential,
        segments.complexity_segment,
        segments.seat_utilisation,
        segments.usage_trend,
        health.health_score,
        health.health_status,
        {#- unknown health (no component scored) is 'unknown' in every health list var -#}
        {{ tier_in_list("coalesce(health.health_status, 'unknown')", var('high_churn_risk_health_statuses')) }}
            as is_high_churn_risk,
        least(
            100,
            case when accounts.is_marquee_logo then {{ sp['marquee_logo'] }} else 0 end
            + case when accounts.is_partner then {{ sp['partner'] }} else 0 end
            + case when accounts.is_reference then {{ sp['reference'] }} else 0 end
        ) as strategic_points,
        cast(cast(round(accounts.arr_reporting, 0) as {{ dbt.type_bigint() }}) as {{ dbt.type_string() }}) as arr_text
    from accounts
    left join segments
        on accounts.account_id = segments.account_id
    left join health
        on accounts.account_id = health.account_id
),

points as (
    select
        *,
        strategic_points >= {{ var('strategic_min_points') }} as is_strategic_account,
        case
            {%- for band in var('scorecard_arr_points') %}
            when arr_reporting >= {{ band[0] }} then {{ band[1] }}
            {%- endfor %}
            else 0
        end as arr_points,
        {{ customers_map_case('growth_potential', var('scorecard_expansion_points'), 0) }} as expansion_points,
        {%- if var('scorecard_fourth_criterion') == 'health' %}
        coalesce(health_score, {{ var('scorecard_unknown_health_points') }}) as complexity_health_points
        {%- else %}
        {{ customers_map_case('complexity_segment', var('scorecard_complexity_points'), 0) }} as complexity_health_points
        {%- endif %}
    from criteria
),

contributions as (
    select
        *,
        {{ sw['arr'] }} * arr_points as arr_contribution,
        {{ sw['expansion'] }} * expansion_points as expansion_contribution,
        {{ sw['strategic'] }} * strategic_points as strategic_contribution,
        {{ sw['complexity_health'] }} * complexity_health_points as complexity_health_contribution
    from points
),

rules_applied as (
    select
        *,
        {{ sw['arr'] }} * arr_points
            + {{ sw['expansion'] }} * expansion_points
            + {{ sw['strategic'] }} * strategic_points
            + {{ sw['complexity_health'] }} * complexity_health_points as tier_score,
        case
            when account_status <> 'live' then 'no_live_subscription'
            when arr_reporting {{ op }} {{ var('tier1_min_arr') }}
                 and {{ tier_in_list("coalesce(growth_potential, 'unknown')", var('tier1_arr_rule_growth_potentials')) }}
                then 'tier1_arr'
            {%- if var('tier1_min_arr_without_growth') is not none %}
            when arr_reporting {{ op }} {{ var('tier1_min_arr_without_growth') }} and not is_high_churn_risk
                then 'tier1_large_account'
            {%- endif %}
            when arr_reporting {{ op }} {{ var('tier1_strategic_min_arr') }} and is_strategic_account
                then 'tier1_strategic'
            when arr_reporting {{ op }} {{ var('tier1_growth_min_arr') }}
                 and {{ tier_in_list("coalesce(growth_potential, 'unknown')", var('tier1_growth_potentials')) }}
                 and {{ tier_optional_condition(
                     'tier1_growth_health_statuses',
                     tier_in_list("coalesce(health_status, 'unknown')", var('tier1_growth_health_statuses') or [])
                 ) }}
                 and {{ tier_optional_condition(
                     'tier1_growth_min_seat_utilisation',
                     'coalesce(seat_utilisation, 0) >= ' ~ var('tier1_growth_min_seat_utilisation')
                 ) }}
                 and {{ tier_optional_condition(
                     'tier1_growth_min_usage_trend',
                     'coalesce(usage_trend, 0) >= ' ~ var('tier1_growth_min_usage_trend')
                 ) }}
                then 'tier1_high_growth'
            when arr_reporting >= {{ var('tier2_min_arr') }} then 'tier2_arr'
            when arr_reporting < {{ var('tier4_max_arr') }} then 'tech_touch_arr'
            when plan_name in {{ customers_in_list(var('tier4_plans')) }} then 'tech_touch_plan'
            else 'tier3_arr'
        end as rules_criterion
    from contributions
),

tiered as (
    select
        *,
        case
            when rules_criterion = 'no_live_subscription' then null
            when rules_criterion like 'tier1%' then 1
            when rules_criterion like 'tier2%' then 2
            when rules_criterion like 'tier3%' then 3
            else 4
        end as rules_tier_number,
        case
            when account_status <> 'live' then null
            when tier_score >= {{ min_scores[1] if 1 in min_scores else min_scores['1'] }} then 1
            when tier_score >= {{ min_scores[2] if 2 in min_scores else min_scores['2'] }} then 2
            when tier_score >= {{ min_scores[3] if 3 in min_scores else min_scores['3'] }} then 3
            else 4
        end as scorecard_tier_number,
        case rules_criterion
            when 'no_live_subscription' then
                case account_status
                    when 'churned' then 'no tier: no live subscription (churned)'
                    else 'no tier: never subscribed (prospect)'
                end
            when 'tier1_arr' then
                'ARR ' || arr_text || ' {{ op }} {{ var("tier1_min_arr") }} with '
                || coalesce(growth_potential, 'unknown') || ' growth potential'
            when 'tier1_large_account' then
                'ARR ' || arr_text || ' {{ op }} {{ var("tier1_min_arr_without_growth") }} and not at high churn risk'
            when 'tier1_strategic' then
                'strategic account (' || cast(strategic_points as {{ dbt.type_string() }})
                || ' strategic points) with ARR ' || arr_text || ' {{ op }} {{ var("tier1_strategic_min_arr") }}'
            when 'tier1_high_growth' then
                coalesce(growth_potential, 'unknown') || ' growth potential'
                {%- if var('tier1_growth_min_seat_utilisation') is not none or var('tier1_growth_min_usage_trend') is not none %}
                || ', expanding (seat utilisation '
                || cast(cast(round(100 * coalesce(seat_utilisation, 0), 0) as {{ dbt.type_int() }}) as {{ dbt.type_string() }})
                || '%, usage trend '
                || cast(cast(round(100 * coalesce(usage_trend, 0), 0) as {{ dbt.type_int() }}) as {{ dbt.type_string() }})
                || '%)'
                {%- endif %}
                {%- if var('tier1_growth_health_statuses') is not none %}
                || ' and ' || coalesce(health_status, 'unknown') || ' health'
                {%- endif %}
                || ' with ARR ' || arr_text || ' {{ op }} {{ var("tier1_growth_min_arr") }}'
            when 'tier2_arr' then
                'ARR ' || arr_text || ' >= {{ var("tier2_min_arr") }}'
                || case
                    when arr_reporting {{ op }} {{ var('tier1_min_arr') }}
                        then ' but not Tier 1: ' || coalesce(growth_potential, 'unknown') || ' growth potential'
                            || case when is_high_churn_risk then ' and high churn risk (' || coalesce(health_status, 'unknown') || ')' else '' end
                    else ''
                end
            when 'tech_touch_arr' then 'ARR ' || arr_text || ' < {{ var("tier4_max_arr") }}'
            when 'tech_touch_plan' then 'on the ' || plan_name || ' plan'
            else 'ARR ' || arr_text || ' < {{ var("tier2_min_arr") }}'
        end as rules_reason,
        'score ' || cast(cast(round(tier_score, 1) as decimal(5, 1)) as {{ dbt.type_string() }})
            || ' = ARR ' || cast(cast(round(arr_contribution, 1) as decimal(5, 1)) as {{ dbt.type_string() }})
            || ' + expansion ' || cast(cast(round(expansion_contribution, 1) as decimal(5, 1)) as {{ dbt.type_string() }})
            || ' + strategic ' || cast(cast(round(strategic_contribution, 1) as decimal(5, 1)) as {{ dbt.type_string() }})
            || ' + {{ var("scorecard_fourth_criterion") }} '
            || cast(cast(round(complexity_health_contribution, 1) as decimal(5, 1)) as {{ dbt.type_string() }})
            as scorecard_reason
    from rules_applied
),

methods as (
    select
        tiered.account_id,
        tiered.as_of_date,
        tiered.arr_reporting,
        tiered.plan_name,
        tiered.has_active_subscription,
        tiered.account_status,
        tiered.next_renewal_date,
        tiered.growth_potential,
        tiered.complexity_segment,
        tiered.seat_utilisation,
        tiered.usage_trend,
        tiered.health_score,
        tiered.health_status,
        tiered.is_high_churn_risk,
        tiered.strategic_points,
        tiered.is_strategic_account,
        {#- the scorecard is a tier's: a churned account or a prospect has none (no score,
            no points, no contributions), like it has no tier -#}
        {%- for column in ['arr_points', 'expansion_points', 'complexity_health_points'] %}
        case when tiered.account_status = 'live' then tiered.{{ column }} end as {{ column }},
        {%- endfor %}
        {%- for column in ['arr_contribution', 'expansion_contribution', 'strategic_contribution',
                           'complexity_health_contribution', 'tier_score'] %}
        cast(case when tiered.account_status = 'live' then tiered.{{ column }} end as decimal(6, 2)) as {{ column }},
        {%- endfor %}
        tiered.rules_criterion,
        tiered.rules_tier_number,
        tiered.rules_reason,
        tiered.scorecard_tier_number,
        case when tiered.account_status = 'live' then tiered.scorecard_reason end as scorecard_reason,
        '{{ var("tier_method") }}' as tier_method,
        {%- if var('tier_method') == 'scorecard' %}
        tiered.scorecard_tier_number as computed_tier_number,
        case
            when tiered.account_status <> 'live' then tiered.rules_reason
            else tiered.scorecard_reason
        end as computed_tier_reason
        {%- elif var('tier_method') == 'rules' %}
        tiered.rules_tier_number as computed_tier_number,
        tiered.rules_reason as computed_tier_reason
        {%- else %}
        {{ exceptions.raise_compiler_error("var tier_method must be 'rules' or 'scorecard', got " ~ var('tier_method')) }}
        {%- endif %}
    from tiered
),

final as (
    select
        methods.*,
        tier_targets.tier_name as computed_tier
    from methods
    left join tier_targets
        on methods.computed_tier_number = tier_targets.tier_number
)

select * from final
