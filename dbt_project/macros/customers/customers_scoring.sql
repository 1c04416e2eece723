{#- Scoring helpers of the customer models (issue 3). Numbers come from vars; these
    macros only shape SQL. -#}

{#- Weighted average of 0-100 scores that skips null scores and redistributes their
    weight over the scores present: sum(w * s) / sum(w of non-null s). Null when every
    score is null. `pairs` is a list of [score_sql, weight] pairs. -#}
{% macro customers_weighted_score(pairs) -%}
    {%- for pair in pairs if pair[1] is undefined or pair[1] is none -%}
        {{ exceptions.raise_compiler_error(
            "No weight for " ~ pair[0] ~ ": a weights var (e.g. health_usage_subweights) lacks its key; "
            ~ "give every measure a weight (0 leaves it out) - docs/configuration.md") }}
    {%- endfor %}
    (
        (
            {%- for pair in pairs %}
            coalesce(({{ pair[0] }}) * {{ pair[1] }}, 0){% if not loop.last %} +{% endif %}
            {%- endfor %}
        )
        / nullif(
            {%- for pair in pairs %}
            case when ({{ pair[0] }}) is not null then {{ pair[1] }} else 0 end{% if not loop.last %} +{% endif %}
            {%- endfor %},
            0
        )
    )
{%- endmacro %}

{#- 0-100 score of a ratio against the target that scores 100 (capped at 100). -#}
{% macro customers_ratio_score(ratio_sql, target) -%}
    (100.0 * least(1.0, greatest(0.0, ({{ ratio_sql }}) / {{ target }})))
{%- endmacro %}

{#- 0-100 score that is 100 up to `full_at` and falls linearly to 0 at `zero_at`
    (for "days since" style measures). -#}
{% macro customers_decay_score(value_sql, full_at, zero_at) -%}
    (
        case
            when ({{ value_sql }}) is null then null
            when ({{ value_sql }}) <= {{ full_at }} then 100.0
            when ({{ value_sql }}) >= {{ zero_at }} then 0.0
            else cast(100 as double) * ({{ zero_at }} - ({{ value_sql }})) / ({{ zero_at }} - {{ full_at }})
        end
    )
{%- endmacro %}

{#- A SQL list literal of strings from a var holding a list, e.g. ('free', 'trial'). -#}
{% macro customers_in_list(values) -%}
    ({% for v in values %}'{{ v }}'{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}

{#- A case expression mapping keys of a dict var to values (numbers), e.g. segment
    labels to points. Unknown keys give `default`. -#}
{% macro customers_map_case(expression, mapping, default='null') -%}
    case {{ expression }}
        {%- for key, value in mapping.items() %}
        when '{{ key }}' then {{ value }}
        {%- endfor %}
        else {{ default }}
    end
{%- endmacro %}

{#- Rows of the as-of date partition are replaced on every run: deleting them first
    keeps a rerun idempotent even when the new run produces no row for a key that
    the old run had (delete+insert alone only deletes keys present in the new rows).
    Per engine: macros/incremental/as_of_date_partitions.sql. -#}
{% macro customers_delete_as_of_partition() -%}
    {{ delete_date_partition('as_of_date') }}
{%- endmacro %}

{#- Filter of the daily marts: on an incremental run only the as-of date partition is
    (re)built; on the first run or a full refresh the whole intermediate history is.
    Applied to every daily input (each import CTE), not only to the one the final
    select filters: a left join's right side is not narrowed by a filter on its left
    side, and the hash join would read the right side's whole history every night. -#}
{% macro customers_daily_filter(relation_alias) -%}
    {%- if is_incremental() -%}
        where {{ relation_alias }}.as_of_date = {{ as_of_date() }}
    {%- endif -%}
{%- endmacro %}

{#- The parts of a row hash: each column cast to text, nulls as a marker, separated by
    '|' (for dbt.concat). -#}
{% macro customers_hash_parts(columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append("coalesce(cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), '<null>')") -%}
        {%- if not loop.last %}{% do parts.append("'|'") %}{% endif -%}
    {%- endfor -%}
    {{ return(parts) }}
{%- endmacro %}
