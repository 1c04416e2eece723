{#- Append-only versions of CRM accounts, one slice per run date; the SCD2 view of
    them is snap_crm__accounts. seen_on = the CRM drop's run date (staging's
    snapshot_date). Doc block history_keyed_to_run_date. -#}
{{ config(date_partitioned_incremental('recorded_run_date')) }}
{{ run_date_keyed_versions(
    ref('stg_crm__accounts'),
    key='account_id',
    tracked=['account_name', 'industry', 'employee_count', 'country_code', 'created_date',
             'csm_owner_id', 'is_marquee_logo', 'is_reference', 'is_partner', 'parent_account_id'],
    seen_on='snapshot_date',
) }}
