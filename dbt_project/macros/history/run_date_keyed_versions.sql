{#- Type 2 history of a source entity keyed to the run date, built as two models that
    run alike on DuckDB and on Spark's plain Parquet (no MERGE): doc block
    history_keyed_to_run_date.

    run_date_keyed_versions: the body of the append-only `<name>_versions` model
    (config date_partitioned_incremental('recorded_run_date')). A run records, in its
    own run-date slice, each row whose tracked values differ from the key's latest
    version recorded before that run date (or whose key is new), with
    `changed_run_date` = `seen_on` (the run date the values were first seen). -#}
{% macro run_date_keyed_versions(source_relation, key, tracked, seen_on) -%}
with source_rows as (
    select
        {{ key }},
        {%- for column in tracked %}
        {{ column }},
        {%- endfor %}
        {{ dbt.hash(dbt.concat(customers_hash_parts(tracked))) }} as row_hash,
        cast({{ seen_on }} as {{ dbt.type_timestamp() }}) as changed_run_date
    from {{ source_relation }}
),

{% if is_incremental() %}
recorded_versions as (
    select
        {{ key }},
        row_hash,
        row_number() over (partition by {{ key }} order by recorded_run_date desc) as recency_rank
    from {{ this }}
    where recorded_run_date < {{ as_of_date() }}
),

latest_versions as (
    select {{ key }}, row_hash from recorded_versions where recency_rank = 1
),
{% else %}
latest_versions as (
    select
        cast(null as {{ dbt.type_string() }}) as {{ key }},
        cast(null as {{ dbt.type_string() }}) as row_hash
    where 1 = 0
),
{% endif %}

final as (
    select
        source_rows.*,
        {{ as_of_date() }} as recorded_run_date
    from source_rows
    left join latest_versions
        on source_rows.{{ key }} = latest_versions.{{ key }}
    where latest_versions.{{ key }} is null
       or latest_versions.row_hash <> source_rows.row_hash
)

select * from final
{%- endmacro %}

{#- scd2_from_versions: the body of the SCD2 model over `<name>_versions`, with the
    columns of a dbt snapshot (timestamp strategy, updated_at = changed_run_date):
    dbt_valid_from = the version's changed_run_date, dbt_valid_to = the next version's
    (null = current), dbt_updated_at, dbt_scd_id = md5(key|updated_at). Consecutive
    versions with the same values (possible only after a backfill replaced a run date's
    slice with other data) collapse into the first. Rebuilt whole every run: one row
    per change, small. -#}
{% macro scd2_from_versions(versions_relation, key, tracked) -%}
with versions as (
    select * from {{ versions_relation }}
),

ordered as (
    select
        *,
        lag(row_hash) over (partition by {{ key }} order by recorded_run_date) as previous_row_hash
    from versions
),

changes as (
    select *
    from ordered
    where previous_row_hash is null
       or previous_row_hash <> row_hash
),

final as (
    select
        {{ key }},
        {%- for column in tracked %}
        {{ column }},
        {%- endfor %}
        row_hash,
        changed_run_date,
        {{ dbt.hash(dbt.concat([
            "coalesce(cast(" ~ key ~ " as " ~ dbt.type_string() ~ "), '')",
            "'|'",
            "coalesce(cast(changed_run_date as " ~ dbt.type_string() ~ "), '')",
        ])) }} as dbt_scd_id,
        changed_run_date as dbt_updated_at,
        changed_run_date as dbt_valid_from,
        lead(changed_run_date) over (partition by {{ key }} order by recorded_run_date) as dbt_valid_to
    from changes
)

select * from final
{%- endmacro %}
