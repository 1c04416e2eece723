{#- Monthly segment retention report (one row per month, segment dimension and value);
    body in macros/revenue_segment_retention_report.sql. -#}
{{ revenue_segment_retention_report('month') }}
