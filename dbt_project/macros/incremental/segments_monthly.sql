{#- int_account_segments_monthly keeps closed months (the model's header says why that is
    safe): a night deletes the rows it must recompute (pre-hook segments_monthly_invalidate)
    and appends the account-months left without rows. On Spark (plain Parquet, no DELETE)
    the model stays a table rebuilt whole. -#}
{% macro segments_monthly_incremental() -%}
    {{ return(adapter.dispatch('segments_monthly_incremental', 'segment_mart')()) }}
{%- endmacro %}

{% macro default__segments_monthly_incremental() -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'append',
        'on_schema_change': 'append_new_columns',
        'pre_hook': "{{ segments_monthly_invalidate() }}",
        'meta': {'partition_date_column': 'computed_as_of_date'},
    }) }}
{%- endmacro %}

{% macro spark__segments_monthly_incremental() -%}
    {{ return({'materialized': 'table', 'meta': {'partition_date_column': 'computed_as_of_date'}}) }}
{%- endmacro %}

{#- What a month's membership reads of its account-month (int_account_mrr_monthly, with
    the month before's plan as previous_plan_name) and the vars it applies, as one hash:
    a row whose fingerprint is unchanged is kept. -#}
{% macro segments_monthly_inputs_fingerprint(relation) -%}
    {%- set vars_read = [
        var('revenue_segment_history_lookback_days'), var('value_band_enterprise_min_arr'),
        var('value_band_mid_market_min_arr'), var('tier4_plans'), var('tier1_min_arr'), var('tier2_min_arr'),
        var('tier4_max_arr'), var('segment_early_stage_days'), var('segment_mature_min_days'),
    ] | join('|') | replace("'", "''") -%}
    {%- set parts = [] -%}
    {%- for column in ['month_end_date', 'previous_mrr_reporting', 'mrr_reporting', 'plan_name',
                       'first_subscription_date', 'previous_plan_name', 'was_active_customer'] -%}
        {%- do parts.append("coalesce(cast(" ~ relation ~ "." ~ column ~ " as " ~ dbt.type_string() ~ "), '~')") -%}
        {%- do parts.append("'|'") -%}
    {%- endfor -%}
    {%- do parts.append("'" ~ vars_read ~ "'") -%}
    {{ dbt.hash(dbt.concat(parts)) }}
{%- endmacro %}

{#- Pre-hook of an incremental run: delete the month in progress, every row whose
    account-month is gone or whose inputs changed, and every month of an account whose
    first run starts on the as-of date. The changed account-months are found first, as a
    set difference of (account, month, fingerprint) on one row of each kept account-month,
    its 'total' row (an account-month's dimensions are computed, deleted and appended
    together), then their rows are deleted. Comparing the fingerprint on every row, as a
    correlated NOT EXISTS, probed each account-month once per dimension (16M rows at 100K
    accounts) through a join whose condition computed the hash (docs/operations.md). -#}
{% macro segments_monthly_invalidate() -%}
    {%- if is_incremental() -%}
    {%- set as_of_month = "cast('" ~ as_of_month_string() ~ "' as date)" -%}
    delete from {{ this }} as kept
    where kept.month_start_date >= {{ as_of_month }}
       or kept.account_id in (
            select account_id
            from {{ ref('int_account_segment_runs') }}
            where run_number = 1
              and valid_from = {{ as_of_date() }}
        )
       or exists (
            select 1
            from (
                select account_id, month_start_date, inputs_fingerprint
                from {{ this }}
                where segment_dimension = 'total'
                  and month_start_date < {{ as_of_month }}
                except
                select account_id, month_start_date, {{ segments_monthly_inputs_fingerprint('current_months') }}
                from (
                    select
                        *,
                        lag(plan_name) over (partition by account_id order by month_start_date) as previous_plan_name
                    from {{ ref('int_account_mrr_monthly') }}
                ) as current_months
            ) as changed_months
            where changed_months.account_id = kept.account_id
              and changed_months.month_start_date = kept.month_start_date
        )
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
