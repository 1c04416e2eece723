{#- Append-only versions of billing subscription periods, one slice per run date; the
    SCD2 view of them is snap_billing__subscriptions. Billing staging does not expose
    its drop's run date: seen_on = the run's as-of date (its latest drop on or before
    it is that date's drop on a normal night). Doc block history_keyed_to_run_date. -#}
{{ config(date_partitioned_incremental('recorded_run_date')) }}
{{ run_date_keyed_versions(
    ref('stg_billing__subscriptions'),
    key='subscription_id',
    tracked=['account_id', 'plan_name', 'product_line', 'start_date', 'end_date', 'billing_interval',
             'amount', 'currency_code', 'seats', 'is_per_seat'],
    seen_on=as_of_date(),
) }}
