{#- Grain test: no two rows share the same values of `columns`. -#}
{% test unique_combination_of_columns(model, columns) %}
    select
        {{ columns | join(', ') }},
        count(*) as n_rows
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}
