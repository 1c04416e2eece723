{#- The daily usage counts of int_usage_daily_counts_resolved, over the staging rows a query
    hands it (counts_sql: a select of stg_usage__daily_counts rows): a row naming a subscription
    counts for the subscription's account (billing/subscriptions as of the run); of the copies
    of one key (account or subscription, day, feature) delivered by several drops the latest
    counts; then one row per account, activity date and feature. days_sql, when given, keeps only
    the account-days it selects: a select over the CTE `resolved` (columns account_id,
    occurred_date, loaded_run_date) returning the recompute keys (usage_recompute_keys).
    One copy, used by the nightly increment, the first build and the features model's backfill
    recompute. Rows whose subscription is unknown on the as-of date have no account: they are
    not counted (the data test assert_usage_counts_for_known_keys lists them). Rows of 0 events
    are kept, so a restatement to 0 replaces the earlier count. -#}
{% macro usage_daily_counts_sql(counts_sql, days_sql=none) -%}
with counts as (
    {{ counts_sql }}
),

subscriptions as (
    select
        subscription_id,
        account_id
    from {{ ref('stg_billing__subscriptions') }}
),

resolved as (
    select
        coalesce(counts.account_id, subscriptions.account_id) as account_id,
        counts.account_id as given_account_id,
        counts.subscription_id,
        counts.usage_date as occurred_date,
        counts.feature,
        counts.event_count,
        counts.active_user_count,
        counts.loaded_run_date
    from counts
    left join subscriptions
        on counts.account_id is null
        and counts.subscription_id = subscriptions.subscription_id
    where counts.usage_date <= {{ as_of_date() }}
),

{%- if days_sql %}

scope_days as (
    {{ days_sql }}
),

scoped as (
    select resolved.*
    from resolved
    inner join scope_days
        on {% for key in usage_recompute_keys() %}resolved.{{ key }} = scope_days.{{ key }}{% if not loop.last %}
        and {% endif %}{% endfor %}
),
{%- endif %}

ranked as (
    select
        *,
        row_number() over (
            partition by given_account_id, subscription_id, occurred_date, feature
            order by loaded_run_date desc
        ) as drop_rank
    from {{ 'scoped' if days_sql else 'resolved' }}
),

latest as (
    select * from ranked where drop_rank = 1
),

final as (
    select
        account_id,
        occurred_date as activity_date,
        feature,
        cast(sum(event_count) as {{ dbt.type_bigint() }}) as event_count,
        max(active_user_count) as active_user_count,
        max(loaded_run_date) as last_loaded_run_date
    from latest
    where account_id is not null
    group by account_id, occurred_date, feature
)

select * from final
{%- endmacro %}


{#- The earliest usage_date of the daily counts delivered by the night's drop, as an ISO date
    string found at compile time (none when the drop delivered none, or at parse time): a
    literal bound the scan of the history is pruned with. -#}
{% macro usage_counts_earliest_night_date() -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set found = run_query(
        "select cast(min(usage_date) as " ~ dbt.type_string() ~ ") from " ~ ref('stg_usage__daily_counts')
        ~ " where loaded_run_date = " ~ as_of_date()
    ) -%}
    {{ return(found.columns[0].values()[0] if found and found.rows | length > 0 else none) }}
{%- endmacro %}
