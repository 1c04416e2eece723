{#- Tier threshold advice from the distribution of live accounts' ARR on the as-of date,
    one row per tier: ARR percentiles (median, p75, p90, p95), Fisher-Jenks natural
    breaks into four classes, and the ARR threshold per tier that puts the tier's share
    of accounts and of ARR inside its target band (seed tier_targets), next to the
    configured thresholds. Doc block tier_threshold_advice.

    Natural breaks: the exact optimum (least total within-class sum of squares) over
    breaks at bin boundaries of int_tier_arr_bins (at most var tier_advice_bins bins),
    by dynamic programming: a class is a run of bins (lo, hi]; its sum of squares comes
    from running totals in O(1); each stage joins the classes to the best cost of the
    stage before on the shared bin boundary (an equi-join over at most bins^2 / 2
    candidate classes). Ties go to the lower boundary.

    Advice: candidate thresholds are the bins' lowest ARR values. Tier 1 takes the
    accounts at or above its threshold, Tier 2 those between its threshold and Tier 1's
    advised one, Tier 3 those between its threshold and Tier 2's (below it: Tech-touch).
    Per tier the pick is, in order: inside both bands; the smallest total distance
    outside the bands; closest to the middle of the account band; the higher threshold.
    lowest_on_target_arr .. highest_on_target_arr is the range of candidates inside both bands. -#}
with bins as (
    select * from {{ ref('int_tier_arr_bins') }}
),

tiers as (
    select * from {{ ref('int_account_tiers_computed') }}
    where account_status = 'live'
),

distribution as (
    select * from {{ ref('int_tier_distribution_summarised') }}
),

tier_targets as (
    select * from {{ ref('tier_targets') }}
),

totals as (
    select
        count(*) as live_account_count,
        coalesce(sum(arr_reporting), 0) as total_arr_reporting,
        {{ percentile_cont('arr_reporting', 0.5) }} as arr_p50,
        {{ percentile_cont('arr_reporting', 0.75) }} as arr_p75,
        {{ percentile_cont('arr_reporting', 0.9) }} as arr_p90,
        {{ percentile_cont('arr_reporting', 0.95) }} as arr_p95,
        sum(case when arr_reporting {{ tier1_arr_operator() }} {{ var('tier1_min_arr') }} then 1 else 0 end)
            as configured_tier1_accounts,
        sum(case when arr_reporting {{ tier1_arr_operator() }} {{ var('tier1_min_arr') }} then arr_reporting else 0 end)
            as configured_tier1_arr,
        sum(case when arr_reporting >= {{ var('tier2_min_arr') }} then 1 else 0 end) as configured_tier12_accounts,
        sum(case when arr_reporting >= {{ var('tier2_min_arr') }} then arr_reporting else 0 end) as configured_tier12_arr,
        sum(case when arr_reporting >= {{ var('tier4_max_arr') }} then 1 else 0 end) as configured_tier123_accounts,
        sum(case when arr_reporting >= {{ var('tier4_max_arr') }} then arr_reporting else 0 end) as configured_tier123_arr
    from tiers
),

bin_count as (
    select coalesce(max(bin_number), 0) as bin_count from bins
),

{#- running totals with the empty prefix (boundary 0) -#}
boundaries as (
    select
        0 as boundary,
        cast(0 as {{ dbt.type_bigint() }}) as cumulative_account_count,
        cast(0 as double) as cumulative_arr_reporting,
        cast(0 as double) as cumulative_arr_k_sum,
        cast(0 as double) as cumulative_arr_k_sum_of_squares
    union all
    select
        bin_number as boundary,
        cumulative_account_count,
        cast(cumulative_arr_reporting as double) as cumulative_arr_reporting,
        cumulative_arr_k_sum,
        cumulative_arr_k_sum_of_squares
    from bins
),

{#- every candidate class: the bins after boundary lo up to boundary hi -#}
classes as (
    select
        lower_bound.boundary as lo,
        upper_bound.boundary as hi,
        (upper_bound.cumulative_arr_k_sum_of_squares - lower_bound.cumulative_arr_k_sum_of_squares)
        - (upper_bound.cumulative_arr_k_sum - lower_bound.cumulative_arr_k_sum)
          * (upper_bound.cumulative_arr_k_sum - lower_bound.cumulative_arr_k_sum)
          / (upper_bound.cumulative_account_count - lower_bound.cumulative_account_count) as class_sum_of_squares
    from boundaries as lower_bound
    cross join boundaries as upper_bound
    where lower_bound.boundary < upper_bound.boundary
),

one_class as (
    select hi, class_sum_of_squares as cost
    from classes
    where lo = 0
),

two_classes_ranked as (
    select
        classes.hi,
        classes.lo as break_1,
        one_class.cost + classes.class_sum_of_squares as cost,
        row_number() over (
            partition by classes.hi order by one_class.cost + classes.class_sum_of_squares, classes.lo
        ) as cost_rank
    from classes
    inner join one_class
        on classes.lo = one_class.hi
),

two_classes as (
    select * from two_classes_ranked where cost_rank = 1
),

three_classes_ranked as (
    select
        classes.hi,
        two_classes.break_1,
        classes.lo as break_2,
        two_classes.cost + classes.class_sum_of_squares as cost,
        row_number() over (
            partition by classes.hi order by two_classes.cost + classes.class_sum_of_squares, classes.lo
        ) as cost_rank
    from classes
    inner join two_classes
        on classes.lo = two_classes.hi
),

three_classes as (
    select * from three_classes_ranked where cost_rank = 1
),

four_classes_ranked as (
    select
        three_classes.break_1,
        three_classes.break_2,
        classes.lo as break_3,
        three_classes.cost + classes.class_sum_of_squares as cost,
        row_number() over (order by three_classes.cost + classes.class_sum_of_squares, classes.lo) as cost_rank
    from classes
    inner join three_classes
        on classes.lo = three_classes.hi
    inner join bin_count
        on classes.hi = bin_count.bin_count
),

{#- class k (1 = highest ARR) starts after boundary natural_boundary: Tier 1's class after
    break_3, Tier 2's after break_2, Tier 3's after break_1, Tier 4's after 0 -#}
natural_breaks as (
    select 1 as tier_number, break_3 as natural_boundary, cost as natural_breaks_sum_of_squares
    from four_classes_ranked where cost_rank = 1
    union all
    select 2, break_2, cost from four_classes_ranked where cost_rank = 1
    union all
    select 3, break_1, cost from four_classes_ranked where cost_rank = 1
    union all
    select 4, 0, cost from four_classes_ranked where cost_rank = 1
),

{#- a candidate threshold per bin: its lowest ARR; accounts and ARR at or above it -#}
candidates as (
    select
        bins.bin_number,
        bins.min_arr_reporting as threshold_arr,
        totals.live_account_count - boundaries.cumulative_account_count as accounts_at_or_above,
        cast(totals.total_arr_reporting as double) - boundaries.cumulative_arr_reporting as arr_at_or_above,
        totals.live_account_count,
        cast(totals.total_arr_reporting as double) as total_arr
    from bins
    inner join boundaries
        on bins.bin_number - 1 = boundaries.boundary
    cross join totals
),

{%- set band_gap -%}
    (case when account_share < min_account_share then min_account_share - account_share else 0 end
     + case when account_share > coalesce(max_account_share, 1) then account_share - coalesce(max_account_share, 1) else 0 end
     + case when arr_share < min_arr_share then min_arr_share - arr_share else 0 end
     + case when arr_share > coalesce(max_arr_share, 1) then arr_share - coalesce(max_arr_share, 1) else 0 end)
{%- endset %}
{%- set in_bands -%}
    (account_share >= min_account_share and account_share <= coalesce(max_account_share, 1)
     and arr_share >= min_arr_share and arr_share <= coalesce(max_arr_share, 1))
{%- endset %}
{%- set pick_order -%}
    case when {{ in_bands }} then 0 else 1 end,
    {{ band_gap }},
    abs(account_share - (min_account_share + coalesce(max_account_share, 1)) / 2),
    threshold_arr desc
{%- endset %}

tier1_candidates as (
    select
        candidates.bin_number,
        candidates.threshold_arr,
        candidates.accounts_at_or_above as account_count,
        candidates.arr_at_or_above as arr_reporting,
        cast(1 as double) * candidates.accounts_at_or_above / candidates.live_account_count as account_share,
        case when candidates.total_arr > 0 then candidates.arr_at_or_above / candidates.total_arr else 0 end as arr_share,
        tier_targets.min_account_share,
        tier_targets.max_account_share,
        tier_targets.min_arr_share,
        tier_targets.max_arr_share
    from candidates
    inner join tier_targets
        on tier_targets.tier_number = 1
),

tier1_pick as (
    select
        *,
        row_number() over (order by {{ pick_order }}) as pick_rank,
        min(case when {{ in_bands }} then threshold_arr end) over () as lowest_on_target_arr,
        max(case when {{ in_bands }} then threshold_arr end) over () as highest_on_target_arr
    from tier1_candidates
),

tier2_candidates as (
    select
        candidates.bin_number,
        candidates.threshold_arr,
        candidates.accounts_at_or_above - tier1.account_count as account_count,
        candidates.arr_at_or_above - tier1.arr_reporting as arr_reporting,
        cast(1 as double) * (candidates.accounts_at_or_above - tier1.account_count) / candidates.live_account_count
            as account_share,
        case when candidates.total_arr > 0
            then (candidates.arr_at_or_above - tier1.arr_reporting) / candidates.total_arr else 0 end as arr_share,
        tier_targets.min_account_share,
        tier_targets.max_account_share,
        tier_targets.min_arr_share,
        tier_targets.max_arr_share,
        tier1.accounts_at_or_above_tier,
        tier1.arr_at_or_above_tier
    from candidates
    cross join (
        select
            bin_number,
            account_count,
            arr_reporting,
            account_count as accounts_at_or_above_tier,
            arr_reporting as arr_at_or_above_tier
        from tier1_pick
        where pick_rank = 1
    ) as tier1
    inner join tier_targets
        on tier_targets.tier_number = 2
    where candidates.bin_number < tier1.bin_number
),

tier2_pick as (
    select
        *,
        row_number() over (order by {{ pick_order }}) as pick_rank,
        min(case when {{ in_bands }} then threshold_arr end) over () as lowest_on_target_arr,
        max(case when {{ in_bands }} then threshold_arr end) over () as highest_on_target_arr
    from tier2_candidates
),

tier3_candidates as (
    select
        candidates.bin_number,
        candidates.threshold_arr,
        candidates.accounts_at_or_above - tier2.accounts_above as account_count,
        candidates.arr_at_or_above - tier2.arr_above as arr_reporting,
        cast(1 as double) * (candidates.accounts_at_or_above - tier2.accounts_above) / candidates.live_account_count
            as account_share,
        case when candidates.total_arr > 0
            then (candidates.arr_at_or_above - tier2.arr_above) / candidates.total_arr else 0 end as arr_share,
        tier_targets.min_account_share,
        tier_targets.max_account_share,
        tier_targets.min_arr_share,
        tier_targets.max_arr_share
    from candidates
    cross join (
        select
            bin_number,
            accounts_at_or_above_tier + account_count as accounts_above,
            arr_at_or_above_tier + arr_reporting as arr_above
        from tier2_pick
        where pick_rank = 1
    ) as tier2
    inner join tier_targets
        on tier_targets.tier_number = 3
    where candidates.bin_number < tier2.bin_number
),

tier3_pick as (
    select
        *,
        row_number() over (order by {{ pick_order }}) as pick_rank,
        min(case when {{ in_bands }} then threshold_arr end) over () as lowest_on_target_arr,
        max(case when {{ in_bands }} then threshold_arr end) over () as highest_on_target_arr
    from tier3_candidates
),

advice as (
    select
        1 as tier_number, threshold_arr, account_count, arr_reporting, lowest_on_target_arr, highest_on_target_arr
    from tier1_pick where pick_rank = 1
    union all
    select 2, threshold_arr, account_count, arr_reporting, lowest_on_target_arr, highest_on_target_arr
    from tier2_pick where pick_rank = 1
    union all
    select 3, threshold_arr, account_count, arr_reporting, lowest_on_target_arr, highest_on_target_arr
    from tier3_pick where pick_rank = 1
),

advice_with_rest as (
    select * from advice
    union all
    {# Tech-touch: whatever the three advised tiers leave (from 0) #}
    select
        4,
        cast(0 as double),
        totals.live_account_count - coalesce(sum(advice.account_count), 0),
        cast(totals.total_arr_reporting as double) - coalesce(sum(advice.arr_reporting), 0),
        cast(null as double),
        cast(null as double)
    from totals
    left join advice
        on 1 = 1
    group by totals.live_account_count, totals.total_arr_reporting
    having count(advice.tier_number) = 3
),

configured as (
    select
        1 as tier_number,
        cast({{ var('tier1_min_arr') }} as double) as configured_min_arr,
        configured_tier1_accounts as account_count,
        cast(configured_tier1_arr as double) as arr_reporting
    from totals
    union all
    select
        2,
        cast({{ var('tier2_min_arr') }} as double),
        configured_tier12_accounts - configured_tier1_accounts,
        cast(configured_tier12_arr - configured_tier1_arr as double)
    from totals
    union all
    select
        3,
        cast({{ var('tier4_max_arr') }} as double),
        configured_tier123_accounts - configured_tier12_accounts,
        cast(configured_tier123_arr - configured_tier12_arr as double)
    from totals
    union all
    select
        4,
        cast(0 as double),
        live_account_count - configured_tier123_accounts,
        cast(total_arr_reporting - configured_tier123_arr as double)
    from totals
),

natural_classes as (
    select
        natural_breaks.tier_number,
        natural_breaks.natural_breaks_sum_of_squares,
        first_bin.min_arr_reporting as natural_break_min_arr,
        upper_boundary.cumulative_account_count - lower_boundary.cumulative_account_count as account_count,
        upper_boundary.cumulative_arr_reporting - lower_boundary.cumulative_arr_reporting as arr_reporting
    from natural_breaks
    inner join bins as first_bin
        on natural_breaks.natural_boundary + 1 = first_bin.bin_number
    inner join boundaries as lower_boundary
        on natural_breaks.natural_boundary = lower_boundary.boundary
    {# a class ends where the next higher one starts (Tier 1's at the last bin) #}
    left join natural_breaks as next_higher
        on natural_breaks.tier_number - 1 = next_higher.tier_number
    inner join bin_count
        on 1 = 1
    inner join boundaries as upper_boundary
        on coalesce(next_higher.natural_boundary, bin_count.bin_count) = upper_boundary.boundary
),

final as (
    select
        {{ as_of_date() }} as as_of_date,
        tier_targets.tier_number,
        tier_targets.tier_name,
        totals.live_account_count,
        totals.total_arr_reporting,
        bin_count.bin_count,
        totals.arr_p50,
        totals.arr_p75,
        totals.arr_p90,
        totals.arr_p95,
        tier_targets.min_account_share,
        tier_targets.max_account_share,
        tier_targets.min_arr_share,
        tier_targets.max_arr_share,
        distribution.account_share as assigned_account_share,
        distribution.arr_share as assigned_arr_share,
        configured.configured_min_arr,
        configured.account_count as configured_account_count,
        case when totals.live_account_count > 0
            then cast(1 as double) * configured.account_count / totals.live_account_count end as configured_account_share,
        case when totals.total_arr_reporting > 0
            then configured.arr_reporting / cast(totals.total_arr_reporting as double) end as configured_arr_share,
        natural_classes.natural_break_min_arr,
        natural_classes.account_count as natural_break_account_count,
        case when totals.live_account_count > 0
            then cast(1 as double) * natural_classes.account_count / totals.live_account_count end
            as natural_break_account_share,
        case when totals.total_arr_reporting > 0
            then natural_classes.arr_reporting / cast(totals.total_arr_reporting as double) end
            as natural_break_arr_share,
        natural_classes.natural_breaks_sum_of_squares,
        advice_with_rest.threshold_arr as advised_min_arr,
        advice_with_rest.account_count as advised_account_count,
        case when totals.live_account_count > 0
            then cast(1 as double) * advice_with_rest.account_count / totals.live_account_count end as advised_account_share,
        case when totals.total_arr_reporting > 0
            then advice_with_rest.arr_reporting / cast(totals.total_arr_reporting as double) end as advised_arr_share,
        advice_with_rest.lowest_on_target_arr,
        advice_with_rest.highest_on_target_arr
    from tier_targets
    cross join totals
    cross join bin_count
    left join distribution
        on tier_targets.tier_number = distribution.tier_number
    left join configured
        on tier_targets.tier_number = configured.tier_number
    left join natural_classes
        on tier_targets.tier_number = natural_classes.tier_number
    left join advice_with_rest
        on tier_targets.tier_number = advice_with_rest.tier_number
)

select * from final
