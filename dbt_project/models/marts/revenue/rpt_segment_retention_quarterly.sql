{#- Quarterly segment retention report (one row per quarter, segment dimension and value);
    body in macros/revenue_segment_retention_report.sql. -#}
{{ revenue_segment_retention_report('quarter') }}
