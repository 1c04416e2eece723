{#- Product usage delivered as daily counts (usage/daily_counts), one row per account,
    activity date and feature: subscriptions resolved to their accounts, the latest drop's copy
    of each key (macro usage_daily_counts_sql). Incremental like the event-based daily usage:
    each night recomputes the account-days the night's drop touched (DuckDB: delete+insert of
    those (account, day) pairs, every feature row of them; Spark: the whole activity dates),
    from every copy known on the as-of date. A first build (or full refresh) processes the
    history in one statement: the counts are far fewer rows than the events they aggregate.
    Empty when usage/daily_counts is off (the default). Doc block usage_shapes. -#}
{{ config(date_partitioned_incremental('activity_date', unique_key=['account_id', 'activity_date'])) }}

{% if is_incremental() %}
{%- set earliest = usage_counts_earliest_night_date() %}
{%- set night_counts %}
    select *
    from {{ ref('stg_usage__daily_counts') }}
    {%- if earliest %}
    where usage_date >= cast('{{ earliest }}' as date)
    {%- else %}
    where 1 = 0
    {%- endif %}
{%- endset %}
{%- set night_days %}
    select distinct {{ usage_recompute_keys() | join(', ') }}
    from resolved
    where loaded_run_date = {{ as_of_date() }}
{%- endset %}
{{ usage_daily_counts_sql(night_counts, night_days) }}
{% else %}
{{ usage_daily_counts_sql('select * from ' ~ ref('stg_usage__daily_counts')) }}
{% endif %}
