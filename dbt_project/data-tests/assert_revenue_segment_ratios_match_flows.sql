{#- For every period (month and quarter), segment dimension and segment of the published
    retention marts: GRR, NRR, logo retention, expansion rate and the quick ratio equal
    their definition over the row's own flows (macros/revenue_retention_ratios.sql, the
    macros the model computes them with, so the policy vars apply to both), to the 6
    decimals the marts keep; and each is null exactly when its denominator is 0. -#}
{%- set ratios = {
    'gross_revenue_retention': revenue_gross_revenue_retention('periods.'),
    'net_revenue_retention': revenue_net_revenue_retention('periods.'),
    'logo_retention': revenue_logo_retention('periods.'),
    'expansion_rate': revenue_expansion_rate('periods.'),
    'quick_ratio': revenue_quick_ratio('periods.'),
} -%}
with monthly as (
    select 'month' as period_type, * from {{ ref('rpt_segment_retention_monthly') }}
),

quarterly as (
    select 'quarter' as period_type, * from {{ ref('rpt_segment_retention_quarterly') }}
),

periods as (
    select * from monthly
    union all
    select * from quarterly
),

recomputed as (
    select
        periods.period_type,
        periods.period_start_date,
        periods.segment_dimension,
        periods.segment_value,
        {%- for column, formula in ratios.items() %}
        periods.{{ column }},
        {{ formula }} as expected_{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from periods
),

final as (
    {%- for column in ratios %}
    select
        period_type,
        period_start_date,
        segment_dimension,
        segment_value,
        '{{ column }}' as ratio,
        cast({{ column }} as double) as published,
        expected_{{ column }} as expected
    from recomputed
    where ({{ column }} is null) <> (expected_{{ column }} is null)
       or abs(cast({{ column }} as double) - expected_{{ column }}) > 0.000001
    {{ 'union all' if not loop.last }}
    {%- endfor %}
)

select * from final
