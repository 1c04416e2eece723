"""segment-mart: the nightly customer segment mart (extract contract, ingestion, dbt build,
quality gate, publish, report). The CLI (`pipelines.ops.cli`) and the Airflow DAG call the
same functions in this package."""

__version__ = "0.1.0"
