{#- Account health, one row per account per as-of date (a daily history). Incremental:
    each run replaces the rows of its as-of date, so a backfill can rebuild any date;
    changes vs 7 and 30 days earlier are read from this model's own history. Only live
    accounts are scored (doc block account_status): a churned account or a prospect
    keeps its row with every score null, never "critical". See doc block health_score.
    Each account is scored with its health profile's weights and status bands (doc block
    health_profiles: picked by var health_profile_by from tonight's segments, never from the
    tier, which reads health); default_profile_health_score is the score under the default
    weights, for the backtest's comparison of each profile with the default. -#}
{{ config(date_partitioned_incremental('as_of_date')) }}

{%- set weights = var('health_weights') %}
{%- set components = ['product_usage', 'cs_engagement', 'support', 'billing', 'sentiment'] %}

with components_measured as (
    select * from {{ ref('int_account_health_components_scored') }}
),

segments as (
    select * from {{ ref('int_account_segments_classified') }}
    where as_of_date = {{ as_of_date() }}
),

{%- set profiles = health_profiles_checked() %}
{%- set profile_by = var('health_profile_by') %}

components as (
    select
        components_measured.*,
        {%- if profiles %}
        case
            when segments.{{ profile_by }} in {{ customers_in_list(profiles.keys() | list) }}
                then segments.{{ profile_by }}
            else 'default'
        end as health_profile
        {%- else %}
        'default' as health_profile
        {%- endif %}
    from components_measured
    left join segments
        on components_measured.account_id = segments.account_id
),

component_rows as (
    {#- One row per account and component, with its weight share among the
        components present (a missing component's weight is redistributed). -#}
    {%- for component in components %}
    select
        account_id,
        '{{ component }}' as component,
        {{ component }}_score as component_score,
        {{ health_profile_value('health_profile', 'weights', weights[component], component) }} as component_weight
    from components
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

component_shares as (
    select
        *,
        case
            when component_score is not null
                then component_weight / sum(case when component_score is not null then component_weight end)
                    over (partition by account_id)
        end as effective_weight
    from component_rows
),

component_drag as (
    select
        account_id,
        component,
        row_number() over (
            partition by account_id
            order by effective_weight * (100 - component_score) desc, component
        ) as drag_rank
    from component_shares
    where component_score is not null
),

missing_components as (
    select
        account_id,
        count(*) as missing_component_count,
        {{ dbt.listagg('component', "', '", 'order by component') }} as missing_components
    from component_shares
    where component_score is null
    group by account_id
),

scored as (
    select
        components.account_id,
        components.as_of_date,
        components.account_status,
        components.health_profile,
        {%- for component in components %}
        components.{{ component }}_score,
        {%- endfor %}
        {%- set profile_pairs = [] %}
        {%- set default_pairs = [] %}
        {%- for component in components %}
        {%- do profile_pairs.append(['components.' ~ component ~ '_score',
                                     health_profile_value('components.health_profile', 'weights', weights[component], component)]) %}
        {%- do default_pairs.append(['components.' ~ component ~ '_score', weights[component]]) %}
        {%- endfor %}
        cast({{ round_decimal(customers_weighted_score(profile_pairs), 1) }} as decimal(5, 1)) as health_score,
        cast({{ round_decimal(customers_weighted_score(default_pairs), 1) }} as decimal(5, 1)) as default_profile_health_score,
        coalesce(missing_components.missing_component_count, 0) as missing_component_count,
        missing_components.missing_components,
        component_drag.component as weakest_component
    from components
    left join missing_components
        on components.account_id = missing_components.account_id
    left join component_drag
        on components.account_id = component_drag.account_id
        and component_drag.drag_rank = 1
),

{% if is_incremental() %}
history as (
    select
        account_id,
        as_of_date,
        health_score
    from {{ this }}
    where as_of_date in (
        cast({{ dbt.dateadd('day', -7, as_of_date()) }} as date),
        cast({{ dbt.dateadd('day', -30, as_of_date()) }} as date)
    )
),
{% endif %}

live_scored as (
    {#- only live accounts are scored: the others keep their row, with nulls -#}
    select
        account_id,
        as_of_date,
        account_status,
        case when account_status = 'live' then health_profile end as health_profile,
        case when account_status = 'live' then health_score end as health_score,
        case when account_status = 'live' then default_profile_health_score end as default_profile_health_score,
        {%- for component in components %}
        case when account_status = 'live' then {{ component }}_score end as {{ component }}_score,
        {%- endfor %}
        case when account_status = 'live' then missing_component_count end as missing_component_count,
        case when account_status = 'live' then missing_components end as missing_components,
        case when account_status = 'live' then weakest_component end as weakest_component
    from scored
),

final as (
    select
        scored.account_id,
        scored.as_of_date,
        scored.account_status,
        scored.health_profile,
        scored.health_score as health_score,
        case
            when scored.health_score >= {{ health_profile_value('scored.health_profile', 'healthy_min_score', var('health_healthy_min_score')) }} then 'healthy'
            when scored.health_score >= {{ health_profile_value('scored.health_profile', 'at_risk_min_score', var('health_at_risk_min_score')) }} then 'at-risk'
            when scored.health_score is not null then 'critical'
        end as health_status,
        scored.default_profile_health_score,
        {%- for component in components %}
        cast({{ round_decimal('scored.' ~ component ~ '_score', 1) }} as decimal(5, 1)) as {{ component }}_score,
        {%- endfor %}
        scored.missing_component_count,
        scored.missing_components,
        scored.weakest_component,
        {% if is_incremental() %}
        scored.health_score - history_7d.health_score as health_score_change_7d,
        scored.health_score - history_30d.health_score as health_score_change_30d,
        {{ health_trend('(scored.health_score - history_7d.health_score)') }} as health_trend_7d,
        {{ health_trend('(scored.health_score - history_30d.health_score)') }} as health_trend_30d
        {% else %}
        cast(null as decimal(5, 1)) as health_score_change_7d,
        cast(null as decimal(5, 1)) as health_score_change_30d,
        cast(null as {{ dbt.type_string() }}) as health_trend_7d,
        cast(null as {{ dbt.type_string() }}) as health_trend_30d
        {% endif %}
    from live_scored as scored
    {% if is_incremental() %}
    left join history as history_7d
        on scored.account_id = history_7d.account_id
        and history_7d.as_of_date = cast({{ dbt.dateadd('day', -7, as_of_date()) }} as date)
    left join history as history_30d
        on scored.account_id = history_30d.account_id
        and history_30d.as_of_date = cast({{ dbt.dateadd('day', -30, as_of_date()) }} as date)
    {% endif %}
)

select * from final
