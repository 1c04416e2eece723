"""Build: dbt over the raw lake on the engine of the night (DuckDB or Spark), its results and
failures in words, the marts read back for the gate and the publish."""
