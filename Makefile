# Everything runs from the project-local virtual environment .venv, created on first use
# from requirements.lock (uv resolves and installs; pip only bootstraps uv).
# uv installs without bytecode unless asked, and where PYTHONDONTWRITEBYTECODE is set (as on
# these machines) Python then never caches it either: every process (each dbt, airflow and mf
# run, many per night and per test) compiled every module it imports from source again. So
# the install compiles it once (--compile-bytecode): importing airflow, Great Expectations,
# pandas and duckdb took 7.4 s of CPU without it and 2.9 s with it, a `dbt parse` 13.0 s and 10.5 s.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-stamp
# airflow standalone starts its components as subprocesses named `airflow`: put the venv on PATH.
export PATH := $(BIN):$(PATH)

.PHONY: install java demo test test-spark lint benchmark airflow-ui clean lock browser airflow-packages \
	spark-cluster spark-cluster-stop spark-cluster-status airflow-celery

# The report's browser test renders it in Debian's headless Chromium (Playwright drives it; a
# browser downloaded by Playwright itself cannot be fetched on these machines).
CHROMIUM := /usr/bin/chromium

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## make demo: generate demo extracts and run the nightly DAG for several consecutive days
demo: install
	$(BIN)/python -m pipelines.lab.demo

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		echo "Installing Debian's chromium for the report's browser test ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "The report's browser test needs Debian's chromium: sudo apt-get install -y chromium" >&2; exit 1; \
	fi

browser: $(CHROMIUM)

## make test: the whole test suite (unit, dbt, DAG, end-to-end, the report in a browser) in three
## pytest processes at the same time: the tests on the shared `real_nights` warehouse (marked
## by tests/conftest.py; it is built once, in that process; with them the worked examples, to
## balance the two), the other tests, and the
## DuckDB-vs-Spark parity test (with tests/conftest.py's BESIDE_SPARK, to balance; tests/spark: it starts the project's Spark cluster, a master,
## two workers and a Thrift server on 127.0.0.1, builds on it over Thrift and stops it). Most of a test's time is one process at a time
## (dbt, airflow, Spark's fixed cost per statement), so on two cores they finish far sooner side
## by side than one after another. The output of the first and the third is printed when all
## are done (and kept in var/test-real-nights.log and var/test-spark.log); any failing fails.
#: each process prints its slowest tests (setup included): where make test's time goes
DURATIONS := --durations=15 --durations-min=20

test: install browser java airflow-packages
	$(BIN)/ruff check pipelines dags tests
	@mkdir -p var
	@$(BIN)/python -m pytest -q $(DURATIONS) -m "spark or beside_spark" -p no:cacheprovider --basetemp=var/pytest-spark \
		> var/test-spark.log 2>&1 & spark=$$!; \
	$(BIN)/python -m pytest -q $(DURATIONS) -m "(real_nights or beside_real_nights) and not spark" -p no:cacheprovider \
		--basetemp=var/pytest-real-nights > var/test-real-nights.log 2>&1 & shared=$$!; \
	$(BIN)/python -m pytest -q $(DURATIONS) -m "not real_nights and not beside_real_nights and not spark and not beside_spark"; rest=$$?; \
	wait $$shared; real_nights=$$?; wait $$spark; parity=$$?; \
	echo "---- tests on the real_nights warehouse (var/test-real-nights.log) ----"; cat var/test-real-nights.log; \
	echo "---- tests/spark: DuckDB vs Spark parity (var/test-spark.log) ----"; cat var/test-spark.log; \
	test $$rest -eq 0 -a $$real_nights -eq 0 -a $$parity -eq 0

## make test-spark: only the parity test (part of make test): the same nights built and
## published on DuckDB and on the Spark cluster give the same marts (Spark's JVMs: Java 17+)
test-spark: install java
	$(BIN)/python -m pytest -q -m spark

## Spark needs Java 17+: this machine kind has it; elsewhere install Debian's (as root)
java:
	@command -v java >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless; }

## make spark-cluster: a standalone Spark master, two workers and a Thrift server on 127.0.0.1
## for the pipeline home (SEGMENT_MART_HOME); nights then run on it with
## SEGMENT_MART_ENGINE=spark SEGMENT_MART_DBT_TARGET=spark_thrift (docs/spark.md, "The cluster")
spark-cluster: install java
	$(BIN)/python -m pipelines.build.spark_cluster start

spark-cluster-status: install
	$(BIN)/python -m pipelines.build.spark_cluster status

spark-cluster-stop: install
	$(BIN)/python -m pipelines.build.spark_cluster stop

## Airflow on PostgreSQL with the CeleryExecutor needs Debian's postgresql and redis-server:
## installed here when missing (as root; `make test` runs its e2e test). Nothing is started here:
## pipelines/ops/airflow_services.py starts its own PostgreSQL and Redis, on 127.0.0.1 only.
airflow-packages:
	@if command -v redis-server >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "Installing Debian's postgresql and redis-server ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null; \
	else \
		echo "Airflow on PostgreSQL with Celery needs: sudo apt-get install -y postgresql redis-server" >&2; exit 1; \
	fi

## make airflow-celery: Airflow as teams deploy it (PostgreSQL, Redis, CeleryExecutor with two
## workers; UI on http://127.0.0.1:8080); Ctrl-C stops everything. `make airflow-ui` stays the
## embedded one (SQLite, airflow standalone).
airflow-celery: install airflow-packages
	$(BIN)/python -m pipelines.ops.airflow_services start

lint: install
	$(BIN)/ruff check pipelines dags tests

benchmark: install
	$(BIN)/python -m pipelines.lab.benchmark

## make airflow-ui: start Airflow locally (UI on http://localhost:8080) to watch the DAG
airflow-ui: install
	$(BIN)/python -m pipelines.ops.airflow_home standalone

lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf var dbt_project/target dbt_project/logs
