{#- Published roll-up: tier threshold advice from the ARR distribution of live accounts on
    the run date, one row per tier: percentiles, natural breaks, the advised threshold
    that puts the tier inside its target bands, next to the configured threshold and
    the shares each gives. Doc block tier_threshold_advice. -#}
with advised as (
    select * from {{ ref('int_tier_thresholds_advised') }}
),

final as (
    select
        cast(as_of_date as date) as as_of_date,
        cast(tier_number as integer) as tier_number,
        cast(tier_name as {{ dbt.type_string() }}) as tier_name,
        cast(live_account_count as integer) as live_account_count,
        cast(total_arr_reporting as decimal(18, 2)) as total_arr_reporting,
        cast(bin_count as integer) as bin_count,
        cast(arr_p50 as decimal(18, 2)) as arr_p50,
        cast(arr_p75 as decimal(18, 2)) as arr_p75,
        cast(arr_p90 as decimal(18, 2)) as arr_p90,
        cast(arr_p95 as decimal(18, 2)) as arr_p95,
        cast(min_account_share as decimal(18, 6)) as min_account_share,
        cast(max_account_share as decimal(18, 6)) as max_account_share,
        cast(min_arr_share as decimal(18, 6)) as min_arr_share,
        cast(max_arr_share as decimal(18, 6)) as max_arr_share,
        cast(assigned_account_share as decimal(18, 6)) as assigned_account_share,
        cast(assigned_arr_share as decimal(18, 6)) as assigned_arr_share,
        cast(configured_min_arr as decimal(18, 2)) as configured_min_arr,
        cast(configured_account_count as integer) as configured_account_count,
        cast(configured_account_share as decimal(18, 6)) as configured_account_share,
        cast(configured_arr_share as decimal(18, 6)) as configured_arr_share,
        cast(natural_break_min_arr as decimal(18, 2)) as natural_break_min_arr,
        cast(natural_break_account_count as integer) as natural_break_account_count,
        cast(natural_break_account_share as decimal(18, 6)) as natural_break_account_share,
        cast(natural_break_arr_share as decimal(18, 6)) as natural_break_arr_share,
        cast(advised_min_arr as decimal(18, 2)) as advised_min_arr,
        cast(advised_account_count as integer) as advised_account_count,
        cast(advised_account_share as decimal(18, 6)) as advised_account_share,
        cast(advised_arr_share as decimal(18, 6)) as advised_arr_share,
        cast(lowest_on_target_arr as decimal(18, 2)) as lowest_on_target_arr,
        cast(highest_on_target_arr as decimal(18, 2)) as highest_on_target_arr,
        cast(coalesce(
            advised_account_share >= min_account_share and advised_account_share <= coalesce(max_account_share, 1),
            false
        ) as boolean) as is_advised_account_share_on_target,
        cast(coalesce(
            advised_arr_share >= min_arr_share and advised_arr_share <= coalesce(max_arr_share, 1),
            false
        ) as boolean) as is_advised_arr_share_on_target,
        cast(coalesce(
            configured_account_share >= min_account_share and configured_account_share <= coalesce(max_account_share, 1)
            and configured_arr_share >= min_arr_share and configured_arr_share <= coalesce(max_arr_share, 1),
            false
        ) as boolean) as is_configured_on_target
    from advised
)

select * from final
