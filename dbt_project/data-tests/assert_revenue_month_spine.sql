{#- The month_spine macro: 2024-11-15 .. 2025-03-01 gives exactly the five months
    Nov 2024 .. Mar 2025, contiguous, each a first of the month. -#}
with spine as (
    {{ month_spine("cast('2024-11-15' as date)", "cast('2025-03-01' as date)") }}
),

expected as (
    select cast('2024-11-01' as date) as month_start_date
    union all select cast('2024-12-01' as date)
    union all select cast('2025-01-01' as date)
    union all select cast('2025-02-01' as date)
    union all select cast('2025-03-01' as date)
),

missing as (
    select month_start_date from expected
    except
    select month_start_date from spine
),

unexpected as (
    select month_start_date from spine
    except
    select month_start_date from expected
),

duplicates as (
    select month_start_date from spine group by month_start_date having count(*) > 1
)

select 'missing' as problem, month_start_date from missing
union all
select 'unexpected', month_start_date from unexpected
union all
select 'duplicate', month_start_date from duplicates
