{#- Validity ranges [lower_bound, upper_bound) do not overlap within a partition.
    A null upper bound means open-ended. -#}
{% test mutually_exclusive_ranges(model, lower_bound_column, upper_bound_column, partition_by) %}
    with ranges as (
        select
            {{ partition_by }} as partition_key,
            {{ lower_bound_column }} as lower_bound,
            coalesce({{ upper_bound_column }}, cast('9999-12-31' as date)) as upper_bound,
            lead({{ lower_bound_column }}) over (
                partition by {{ partition_by }} order by {{ lower_bound_column }}
            ) as next_lower_bound
        from {{ model }}
    )

    select *
    from ranges
    where upper_bound <= lower_bound
       or (next_lower_bound is not null and next_lower_bound < upper_bound)
{% endtest %}
