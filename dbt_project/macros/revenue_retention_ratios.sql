{#- The period retention ratios over a row's flows (doc blocks revenue_grr, revenue_nrr,
    revenue_logo_retention, revenue_expansion_rate, revenue_quick_ratio in
    models/marts/revenue/_revenue__docs.md): one definition, used by the model that
    computes them (int_segment_retention_periods) and by the data test that re-checks the
    published marts against their own flows
    (data-tests/assert_revenue_segment_ratios_match_flows.sql), so a policy var
    (revenue_nrr_includes_reactivation, revenue_quick_ratio_includes_reactivation) changes
    both at once. `prefix` qualifies the flow columns (e.g. 'periods.'); each ratio is null
    when its denominator is 0. -#}

{% macro revenue_gross_revenue_retention(prefix='') -%}
    case
        when {{ prefix }}starting_mrr_reporting > 0
            then cast(1 as double) * (
                {{ prefix }}starting_mrr_reporting - {{ prefix }}contraction_mrr_reporting
                - {{ prefix }}churned_mrr_reporting
            ) / {{ prefix }}starting_mrr_reporting
    end
{%- endmacro %}

{% macro revenue_net_revenue_retention(prefix='') -%}
    case
        when {{ prefix }}starting_mrr_reporting > 0
            then cast(1 as double) * (
                {{ prefix }}starting_mrr_reporting + {{ prefix }}expansion_mrr_reporting
                {%- if var('revenue_nrr_includes_reactivation') %} + {{ prefix }}reactivation_mrr_reporting{% endif %}
                - {{ prefix }}contraction_mrr_reporting - {{ prefix }}churned_mrr_reporting
            ) / {{ prefix }}starting_mrr_reporting
    end
{%- endmacro %}

{% macro revenue_logo_retention(prefix='') -%}
    case
        when {{ prefix }}starting_logos > 0
            then cast(1 as double) * ({{ prefix }}starting_logos - {{ prefix }}churned_logos) / {{ prefix }}starting_logos
    end
{%- endmacro %}

{% macro revenue_expansion_rate(prefix='') -%}
    case
        when {{ prefix }}starting_mrr_reporting > 0
            then cast(1 as double) * {{ prefix }}expansion_mrr_reporting / {{ prefix }}starting_mrr_reporting
    end
{%- endmacro %}

{% macro revenue_quick_ratio(prefix='') -%}
    case
        when {{ prefix }}contraction_mrr_reporting + {{ prefix }}churned_mrr_reporting > 0
            then cast(1 as double) * (
                {{ prefix }}new_mrr_reporting + {{ prefix }}expansion_mrr_reporting
                {%- if var('revenue_quick_ratio_includes_reactivation') %} + {{ prefix }}reactivation_mrr_reporting{% endif %}
            ) / ({{ prefix }}contraction_mrr_reporting + {{ prefix }}churned_mrr_reporting)
    end
{%- endmacro %}
