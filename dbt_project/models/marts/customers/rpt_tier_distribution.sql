{#- Published roll-up: share of accounts and of ARR per tier on the run date against
    the target ranges (seed tier_targets), with off-target and not-prioritising flags. -#}
with distribution as (
    select * from {{ ref('int_tier_distribution_summarised') }}
),

final as (
    select
        cast(as_of_date as date) as as_of_date,
        cast(tier_number as integer) as tier_number,
        cast(tier_name as {{ dbt.type_string() }}) as tier_name,
        cast(tier_color as {{ dbt.type_string() }}) as tier_color,
        cast(account_count as integer) as account_count,
        cast(arr_reporting as decimal(18, 2)) as arr_reporting,
        cast(total_accounts as integer) as total_accounts,
        cast(total_arr_reporting as decimal(18, 2)) as total_arr_reporting,
        cast(account_share as decimal(18, 6)) as account_share,
        cast(arr_share as decimal(18, 6)) as arr_share,
        cast(min_account_share as decimal(18, 6)) as min_account_share,
        cast(max_account_share as decimal(18, 6)) as max_account_share,
        cast(min_arr_share as decimal(18, 6)) as min_arr_share,
        cast(max_arr_share as decimal(18, 6)) as max_arr_share,
        cast(is_account_share_off_target as boolean) as is_account_share_off_target,
        cast(is_arr_share_off_target as boolean) as is_arr_share_off_target,
        cast(is_not_prioritising as boolean) as is_not_prioritising
    from distribution
)

select * from final
