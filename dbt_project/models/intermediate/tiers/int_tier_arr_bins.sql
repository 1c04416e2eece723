{#- Live accounts' ARR on the as-of date in at most var tier_advice_bins quantile bins,
    the input of the threshold advice (int_tier_thresholds_advised). Accounts are cut
    into equal-count bins by ARR (ntile), then every account with the same ARR is moved
    into the lowest bin that holds that value, so a bin boundary never splits equal ARR
    values and "ARR >= a bin's lowest value" is exactly the accounts of that bin and
    above. With fewer live accounts than bins, each distinct ARR value is its own bin
    (the breaks are then exact). Carries running totals for the O(1) class sums of the
    natural-breaks dynamic program. ARR in thousands (arr_k) keeps the sums of squares
    small enough for doubles. Doc block tier_threshold_advice. -#}
with tiers as (
    select * from {{ ref('int_account_tiers_computed') }}
    where account_status = 'live'
),

ranked as (
    select
        account_id,
        as_of_date,
        arr_reporting,
        ntile({{ var('tier_advice_bins') }}) over (order by arr_reporting, account_id) as quantile_bin
    from tiers
),

tie_safe as (
    select
        account_id,
        as_of_date,
        arr_reporting,
        cast(arr_reporting as double) / 1000 as arr_k,
        min(quantile_bin) over (partition by arr_reporting) as first_quantile_bin
    from ranked
),

grouped as (
    select
        first_quantile_bin,
        max(as_of_date) as as_of_date,
        count(*) as account_count,
        sum(arr_reporting) as arr_reporting,
        sum(arr_k) as arr_k_sum,
        sum(arr_k * arr_k) as arr_k_sum_of_squares,
        min(arr_reporting) as min_arr_reporting,
        max(arr_reporting) as max_arr_reporting
    from tie_safe
    group by first_quantile_bin
),

final as (
    select
        cast(row_number() over (order by first_quantile_bin) as {{ dbt.type_int() }}) as bin_number,
        as_of_date,
        account_count,
        arr_reporting,
        min_arr_reporting,
        max_arr_reporting,
        arr_k_sum,
        arr_k_sum_of_squares,
        sum(account_count) over (order by first_quantile_bin rows between unbounded preceding and current row)
            as cumulative_account_count,
        sum(arr_reporting) over (order by first_quantile_bin rows between unbounded preceding and current row)
            as cumulative_arr_reporting,
        sum(arr_k_sum) over (order by first_quantile_bin rows between unbounded preceding and current row)
            as cumulative_arr_k_sum,
        sum(arr_k_sum_of_squares) over (order by first_quantile_bin rows between unbounded preceding and current row)
            as cumulative_arr_k_sum_of_squares
    from grouped
)

select * from final
