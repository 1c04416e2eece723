{#- For every period and segment dimension, the segments of the dimension add up to the
    total (every account is in exactly one segment of each dimension), for every money
    and logo column, to the cent. -#}
{%- set measures = [
    'starting_mrr_reporting', 'new_mrr_reporting', 'expansion_mrr_reporting',
    'contraction_mrr_reporting', 'churned_mrr_reporting', 'reactivation_mrr_reporting',
    'ending_mrr_reporting', 'starting_logos', 'new_logos', 'churned_logos',
    'reactivated_logos', 'ending_logos'
] -%}
{%- for period_type, model in [('month', 'rpt_segment_retention_monthly'), ('quarter', 'rpt_segment_retention_quarterly')] %}
{{ 'union all' if not loop.first }}
select
    '{{ period_type }}' as period_type,
    dimensions.period_start_date,
    dimensions.segment_dimension
from (
    select
        period_start_date,
        segment_dimension,
        {%- for measure in measures %}
        sum({{ measure }}) as {{ measure }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ ref(model) }}
    where segment_dimension <> 'total'
    group by period_start_date, segment_dimension
) as dimensions
inner join {{ ref(model) }} as total
    on total.period_start_date = dimensions.period_start_date
    and total.segment_dimension = 'total'
where false
    {%- for measure in measures %}
    or dimensions.{{ measure }} <> total.{{ measure }}
    {%- endfor %}
{%- endfor %}
