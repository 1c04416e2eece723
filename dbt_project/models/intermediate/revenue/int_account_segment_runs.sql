{#- The segment history of the daily account marts as runs: one row per account,
    reporting dimension and stretch of consecutive days with the same segment value
    (valid_from to valid_until, both observed days), known on the as-of date. Pairs the
    start and end bounds of int_account_segment_run_bounds (the n-th start of an
    account and dimension with its n-th end; a run without an end yet goes on to the
    as-of date). One row per change, not per day: int_account_segments_monthly reads
    this instead of every daily row (doc block revenue_segment_membership). -#}
with run_bounds as (
    {#- only what was known on the as-of date: a backfill of an earlier date run after
        later nights must give the same tables as the original night -#}
    select * from {{ ref('int_account_segment_run_bounds') }}
    where as_of_date <= {{ as_of_date() }}
),

run_starts as (
    select
        account_id,
        segment_dimension,
        segment_value,
        bound_date as valid_from,
        row_number() over (partition by account_id, segment_dimension order by bound_date) as run_number
    from run_bounds
    where bound_type = 'start'
),

run_ends as (
    select
        account_id,
        segment_dimension,
        bound_date as valid_until,
        row_number() over (partition by account_id, segment_dimension order by bound_date) as run_number
    from run_bounds
    where bound_type = 'end'
),

final as (
    select
        run_starts.account_id,
        run_starts.segment_dimension,
        run_starts.run_number,
        run_starts.segment_value,
        run_starts.valid_from,
        coalesce(run_ends.valid_until, {{ as_of_date() }}) as valid_until
    from run_starts
    left join run_ends
        on run_ends.account_id = run_starts.account_id
        and run_ends.segment_dimension = run_starts.segment_dimension
        and run_ends.run_number = run_starts.run_number
)

select * from final
