{#- MRR movement of one account over one period (month or quarter), from its state at
    the start of the period (the end of the previous period) and at the end. The
    categories are defined in models/marts/revenue/_revenue__docs.md
    (doc block revenue_movement_type). Used by int_account_mrr_monthly and
    int_account_mrr_periods so that months and quarters classify alike. -#}
{% macro revenue_movement_type(was_active, is_active, was_ever_active_before, start_mrr, end_mrr) -%}
    case
        when {{ is_active }} and not {{ was_active }} and not {{ was_ever_active_before }} then 'new'
        when {{ is_active }} and not {{ was_active }} then 'reactivation'
        when {{ was_active }} and not {{ is_active }} then 'churn'
        when {{ is_active }} and {{ end_mrr }} > {{ start_mrr }} then 'expansion'
        when {{ is_active }} and {{ end_mrr }} < {{ start_mrr }} then 'contraction'
    end
{%- endmacro %}

{#- The per-category MRR columns (all >= 0; contraction and churn are positive amounts
    subtracted from the start) for a movement type expression. Their signed sum is
    always end_mrr - start_mrr, to the cent. -#}
{% macro revenue_movement_amounts(movement_type, start_mrr, end_mrr) -%}
    case when {{ movement_type }} = 'new' then {{ end_mrr }} else 0 end as new_mrr_reporting,
    case when {{ movement_type }} = 'expansion' then {{ end_mrr }} - {{ start_mrr }} else 0 end
        as expansion_mrr_reporting,
    case when {{ movement_type }} = 'contraction' then {{ start_mrr }} - {{ end_mrr }} else 0 end
        as contraction_mrr_reporting,
    case when {{ movement_type }} = 'churn' then {{ start_mrr }} else 0 end as churned_mrr_reporting,
    case when {{ movement_type }} = 'reactivation' then {{ end_mrr }} else 0 end
        as reactivation_mrr_reporting,
    {{ end_mrr }} - {{ start_mrr }} as mrr_change_reporting
{%- endmacro %}
