{#- SCD type 2 of CRM accounts keyed to the run date (doc block
    history_keyed_to_run_date), from snap_crm__accounts_versions. -#}
{{ scd2_from_versions(
    ref('snap_crm__accounts_versions'),
    key='account_id',
    tracked=['account_name', 'industry', 'employee_count', 'country_code', 'created_date',
             'csm_owner_id', 'is_marquee_logo', 'is_reference', 'is_partner', 'parent_account_id'],
) }}
