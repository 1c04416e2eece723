"""Ops: running nights: the steps in order (nightly), the run lock and summary, the preflight,
Airflow (home, services, tasks, test runs) and the command line."""
