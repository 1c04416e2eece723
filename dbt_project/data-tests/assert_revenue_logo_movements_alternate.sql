{#- An account's logo movements follow its life: new once (its first movement), then
    churn and reactivation alternating (churn only after new or reactivation,
    reactivation only after churn). A reactivation classified as new, a churn counted
    twice or a return without a churn fails here, whatever the classification macro
    says. Returns the offending movements. -#}
with movements as (
    select * from {{ ref('fct_mrr_movements') }}
    where movement_type in ('new', 'churn', 'reactivation')
),

ordered as (
    select
        account_id,
        month_start_date,
        movement_type,
        lag(movement_type) over (partition by account_id order by month_start_date) as previous_logo_movement
    from movements
),

final as (
    select *
    from ordered
    where (movement_type = 'new' and previous_logo_movement is not null)
       or (movement_type = 'churn' and coalesce(previous_logo_movement, 'churn') = 'churn')
       or (movement_type = 'reactivation' and coalesce(previous_logo_movement, '') <> 'churn')
)

select * from final
