{#- FX rates to the reporting currency (var reporting_currency), one row per currency and
    validity range. The rate table (var revenue_fx_rates_model, seed fx_rates by default)
    quotes every currency in one pivot currency (var revenue_fx_pivot_currency); a rate to
    the reporting currency is the currency's pivot rate divided by the reporting
    currency's pivot rate valid on the same day, so switching the reporting currency only
    needs its own pivot rate. A new range starts whenever either of the two rates changes. -#}
with fx_rates as (
    select * from {{ ref(var('revenue_fx_rates_model')) }}
),

pivot_rates as (
    select
        upper(trim(currency_code)) as currency_code,
        cast(valid_from as date) as valid_from,
        cast(rate as decimal(24, 10)) as rate_to_pivot
    from fx_rates
    where upper(trim(quote_currency)) = '{{ var("revenue_fx_pivot_currency") }}'
      and upper(trim(currency_code)) <> '{{ var("revenue_fx_pivot_currency") }}'

    union all

    -- the pivot currency itself, at par since forever
    select
        '{{ var("revenue_fx_pivot_currency") }}' as currency_code,
        cast('1900-01-01' as date) as valid_from,
        cast(1 as decimal(24, 10)) as rate_to_pivot
),

change_dates as (
    select distinct
        currencies.currency_code,
        pivot_rates.valid_from
    from (select distinct currency_code from pivot_rates) as currencies
    inner join pivot_rates
        on pivot_rates.currency_code in (currencies.currency_code, '{{ var("reporting_currency") }}')
),

{#- each pivot rate's validity range [valid_from, valid_to): the rate on a day is the one
    whose range holds it. A range join, not a correlated "latest rate on or before the day"
    subquery: Spark plans that subquery as a nested loop per row (55-77 s on Spark for 15
    rates, docs/spark.md); two rates of a currency on the same day leave one empty range. -#}
pivot_rate_ranges as (
    select
        currency_code,
        valid_from,
        lead(valid_from) over (partition by currency_code order by valid_from) as valid_to,
        rate_to_pivot
    from pivot_rates
),

rates_on_change_dates as (
    select
        change_dates.currency_code,
        change_dates.valid_from,
        own.rate_to_pivot as currency_rate_to_pivot,
        reporting.rate_to_pivot as reporting_rate_to_pivot
    from change_dates
    left join pivot_rate_ranges as own
        on own.currency_code = change_dates.currency_code
        and own.valid_from <= change_dates.valid_from
        and (own.valid_to is null or change_dates.valid_from < own.valid_to)
    left join pivot_rate_ranges as reporting
        on reporting.currency_code = '{{ var("reporting_currency") }}'
        and reporting.valid_from <= change_dates.valid_from
        and (reporting.valid_to is null or change_dates.valid_from < reporting.valid_to)
),

final as (
    select
        currency_code,
        valid_from,
        lead(valid_from) over (partition by currency_code order by valid_from) as valid_to,
        cast(currency_rate_to_pivot / reporting_rate_to_pivot as decimal(24, 10)) as rate_to_reporting
    from rates_on_change_dates
    where currency_rate_to_pivot is not null
      and reporting_rate_to_pivot is not null
)

select * from final
