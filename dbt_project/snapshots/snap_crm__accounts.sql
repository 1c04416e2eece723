{#- SCD type 2 of CRM accounts, keyed to the run date of the CRM drop (staging's
    snapshot_date), never the wall clock: see macro run_date_keyed_snapshot and doc
    block snapshots_keyed_to_run_date. -#}
{% snapshot snap_crm__accounts %}
{{
    config(
        unique_key='account_id',
        strategy='timestamp',
        updated_at='changed_run_date',
    )
}}
{{ run_date_keyed_snapshot(
    ref('stg_crm__accounts'),
    key='account_id',
    tracked=['account_name', 'industry', 'employee_count', 'country_code', 'created_date',
             'csm_owner_id', 'is_marquee_logo', 'is_reference', 'is_partner', 'parent_account_id'],
    seen_on='snapshot_date',
) }}
{% endsnapshot %}
