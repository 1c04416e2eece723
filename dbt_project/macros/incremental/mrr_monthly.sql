{#- int_account_mrr_monthly keeps closed months (the model's header says why that is
    safe): a night deletes the rows it must recompute (pre-hook mrr_monthly_invalidate)
    and appends, per account, the months after its last kept row (every month of an
    account left without rows). On Spark (plain Parquet, no DELETE) the model stays a
    table rebuilt whole. -#}
{% macro mrr_monthly_incremental() -%}
    {{ return(adapter.dispatch('mrr_monthly_incremental', 'segment_mart')()) }}
{%- endmacro %}

{% macro default__mrr_monthly_incremental() -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'append',
        'on_schema_change': 'append_new_columns',
        'pre_hook': "{{ mrr_monthly_invalidate() }}",
        'meta': {'partition_date_column': 'computed_as_of_date'},
    }) }}
{%- endmacro %}

{% macro spark__mrr_monthly_incremental() -%}
    {{ return({'materialized': 'table', 'meta': {'partition_date_column': 'computed_as_of_date'}}) }}
{%- endmacro %}

{#- The fingerprint of each account's billing inputs that decide its months before
    `boundary` (a date expression: the first day of a month), one row per account (and
    per `group_columns`): subscriptions that started before the boundary (an end date on
    or after it counts as the boundary: every reference date before it sees them active),
    past-due suspensions that started before it (likewise for their end), and the vars the
    monthly rules read. A month before the boundary reads nothing else of the billing
    snapshot (its reference date, its last day, is before the boundary). `subscriptions`
    and `suspensions` are relations with int_subscriptions_normalised's and
    int_invoices_past_due's columns (and `group_columns`). -#}
{% macro mrr_monthly_inputs_fingerprints(subscriptions, suspensions, boundary, group_columns=[]) -%}
    {%- set vars_read = [
        var('revenue_count_trials_as_customers'), var('revenue_count_zero_mrr_as_customers'),
        var('revenue_reactivation_window_months'),
    ] | join('|') | replace("'", "''") -%}
    {%- set subscription_row = dbt.concat([
        "'s'", "'|'", fingerprint_part('subscription_id'), "'|'", fingerprint_part('plan_name'), "'|'",
        fingerprint_part('product_line'), "'|'", fingerprint_part('seats'), "'|'", fingerprint_part('start_date'), "'|'",
        fingerprint_part('case when end_date is null or end_date > ' ~ boundary ~ ' then ' ~ boundary ~ ' else end_date end'),
        "'|'", fingerprint_part('is_trial'), "'|'", fingerprint_part('mrr_reporting'), "'|'", fingerprint_part('arr_reporting'),
    ]) -%}
    {%- set suspension_row = dbt.concat([
        "'p'", "'|'", fingerprint_part('invoice_id'), "'|'", fingerprint_part('suspended_from'), "'|'",
        fingerprint_part('case when suspended_until is null or suspended_until > ' ~ boundary ~ ' then ' ~ boundary ~ ' else suspended_until end'),
    ]) -%}
    {%- set carried = group_columns | map('string') | join(', ') ~ (', ' if group_columns else '') -%}
    select
        account_id,
        {{ carried }}
        {{ dbt.hash(dbt.concat(["'" ~ vars_read ~ "'", "'|'", fingerprint_list_agg('row_fingerprint')])) }} as inputs_fingerprint
    from (
        select account_id, {{ carried }}{{ dbt.hash(subscription_row) }} as row_fingerprint
        from {{ subscriptions }}
        where start_date < {{ boundary }}

        union all

        select account_id, {{ carried }}{{ dbt.hash(suspension_row) }} as row_fingerprint
        from {{ suspensions }}
        where suspended_from < {{ boundary }}
    ) as input_rows
    group by account_id{{ (', ' ~ group_columns | join(', ')) if group_columns }}
{%- endmacro %}

{% macro fingerprint_part(expression) -%}
    coalesce(cast({{ expression }} as {{ dbt.type_string() }}), '~')
{%- endmacro %}

{#- The values of a group, sorted and joined: equal sets give equal strings. -#}
{% macro fingerprint_list_agg(expression) -%}
    {{ return(adapter.dispatch('fingerprint_list_agg', 'segment_mart')(expression)) }}
{%- endmacro %}

{% macro default__fingerprint_list_agg(expression) -%}
    string_agg({{ expression }}, ',' order by {{ expression }})
{%- endmacro %}

{% macro spark__fingerprint_list_agg(expression) -%}
    array_join(array_sort(collect_list({{ expression }})), ',')
{%- endmacro %}

{#- Pre-hook of an incremental run. Each account's latest row carries the fingerprint of
    the inputs of its months before inputs_boundary_month (the month of the as-of date of
    the night that computed it). An account keeps its rows before keep_before (that
    boundary, or the as-of month when earlier, less var revenue_reactivation_window_months:
    a month nearer the boundary may yet be bridged or unbridged by a later one) when
    tonight's inputs give the same fingerprint at that boundary (so it is still billed)
    and one of those rows is a customer month (else its first active month may still
    move). Every other row is deleted: the months a night can change, and every month of
    an account whose inputs before the boundary were restated. -#}
{% macro mrr_monthly_invalidate() -%}
    {%- if is_incremental() -%}
    {%- set window = var('revenue_reactivation_window_months') | int -%}
    {%- set as_of_month = "cast('" ~ as_of_month_string() ~ "' as date)" -%}
    delete from {{ this }} as kept
    where not exists (
        select 1
        from (
            select
                latest.account_id,
                cast({{ dbt.dateadd('month', -1 * window,
                    'case when latest.inputs_boundary_month < ' ~ as_of_month
                    ~ ' then latest.inputs_boundary_month else ' ~ as_of_month ~ ' end') }} as date) as keep_before
            from (
                select
                    account_id,
                    inputs_fingerprint,
                    inputs_boundary_month,
                    row_number() over (partition by account_id order by month_start_date desc) as recency
                from {{ this }}
            ) as latest
            inner join (
                {#- at the boundaries of the latest month's rows (one: the latest night's); an
                    account whose latest row has another is recomputed whole -#}
                {%- set boundaries = '(select distinct inputs_boundary_month from ' ~ this
                    ~ ' where month_start_date = (select max(month_start_date) from ' ~ this ~ ')) as boundaries' %}
                {{ mrr_monthly_inputs_fingerprints(
                    '(select subscriptions.*, boundaries.inputs_boundary_month from ' ~ ref('int_subscriptions_normalised')
                        ~ ' as subscriptions cross join ' ~ boundaries ~ ') as subscriptions',
                    '(select suspensions.*, boundaries.inputs_boundary_month from ' ~ ref('int_invoices_past_due')
                        ~ ' as suspensions cross join ' ~ boundaries ~ ') as suspensions',
                    'inputs_boundary_month', ['inputs_boundary_month']) }}
            ) as current_inputs
                on current_inputs.account_id = latest.account_id
                and current_inputs.inputs_boundary_month = latest.inputs_boundary_month
                and current_inputs.inputs_fingerprint = latest.inputs_fingerprint
            where latest.recency = 1
        ) as keepers
        where keepers.account_id = kept.account_id
          and kept.month_start_date < keepers.keep_before
          and exists (
            select 1
            from {{ this }} as customer_month
            where customer_month.account_id = keepers.account_id
              and customer_month.is_active_customer
              and customer_month.month_start_date < keepers.keep_before
          )
    )
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- int_account_mrr_periods keeps the account-periods whose months did not change: a
    period reads its months and the month before it, so an account's periods from the
    first month int_account_mrr_monthly computed since the kept periods were (the month
    periods from that month, the quarters from its quarter) are deleted by the pre-hook
    and computed again; the others are kept. On Spark, a table rebuilt whole. -#}
{% macro mrr_periods_incremental() -%}
    {{ return(adapter.dispatch('mrr_periods_incremental', 'segment_mart')()) }}
{%- endmacro %}

{% macro default__mrr_periods_incremental() -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'append',
        'on_schema_change': 'append_new_columns',
        'pre_hook': "{{ mrr_periods_invalidate() }}",
        'meta': {'partition_date_column': 'computed_as_of_date'},
    }) }}
{%- endmacro %}

{% macro spark__mrr_periods_incremental() -%}
    {{ return({'materialized': 'table', 'meta': {'partition_date_column': 'computed_as_of_date'}}) }}
{%- endmacro %}

{#- Per account, the first month of int_account_mrr_monthly computed since the kept rows
    of `kept` (a relation with computed_as_of_date) were: after the night of the latest of
    them (a night whose build of `kept` failed included), or on the as-of date (tonight's,
    also when the night is run again). -#}
{% macro mrr_months_changed_since(kept) -%}
    select account_id, min(month_start_date) as first_changed_month
    from {{ ref('int_account_mrr_monthly') }}
    where computed_as_of_date > (select max(computed_as_of_date) from {{ kept }})
       or computed_as_of_date = {{ as_of_date() }}
    group by account_id
{%- endmacro %}

{#- Pre-hook of an incremental run: delete the periods that read a changed month, and
    every period of an account no longer billed. -#}
{% macro mrr_periods_invalidate() -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as kept
    where exists (
            select 1
            from ({{ mrr_months_changed_since(this) }}) as changed
            where changed.account_id = kept.account_id
              and kept.period_start_date >= case
                    when kept.period_type = 'quarter'
                        then cast({{ dbt.date_trunc('quarter', 'changed.first_changed_month') }} as date)
                    else changed.first_changed_month
                end
        )
       or not exists (
            select 1
            from {{ ref('int_account_mrr_monthly') }} as monthly
            where monthly.account_id = kept.account_id
              and monthly.month_start_date = kept.last_month_in_period
        )
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
