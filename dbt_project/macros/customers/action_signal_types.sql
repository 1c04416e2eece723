{#- Every signal_type the action signals can hold (doc action_signals): one renewal
    signal per day count of var signal_renewal_days (renewal_60d, renewal_30d, ...), then
    the fixed ones of int_account_signals_detected. The accepted_values test of
    fct_account_signals.signal_type reads this list (dbt renders a test's arguments when it
    runs), so a changed var changes the model and its test together. -#}
{% macro action_signal_types() -%}
    {%- set types = [] -%}
    {%- for days in var('signal_renewal_days') -%}
        {%- do types.append('renewal_' ~ days ~ 'd') -%}
    {%- endfor -%}
    {%- do return(types + ['health_at_risk', 'health_critical', 'expansion_seat_utilisation',
                           'expansion_usage_growth', 'tier_changed', 'downgrade_pending']) -%}
{%- endmacro %}
