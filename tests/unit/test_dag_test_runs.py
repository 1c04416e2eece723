"""`airflow dags test` output made visible in the UI: per-task log files where the API server
reads them, the run's real start date, and the demo's progress/warning callbacks."""

from __future__ import annotations

import sqlite3

from pipelines.ops.dag_test_runs import DagTestOutput, fix_run_start, task_log_path, write_task_logs

RUN = "manual__2026-11-30T07:59:33.781128+00:00"
OUTPUT = f"""\
2026-11-30T07:59:33.7Z [info     ] Filling up the DagBag [airflow.models.dagbag] loc=dagbag.py:1
2026-11-30T07:59:33.9Z [info     ] [DAG TEST] starting task_id=check_extracts map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-11-30T07:59:33.9Z [info     ] [DAG TEST] running task <TaskInstance: segment_mart_nightly.check_extracts {RUN} [TaskInstanceState.SCHEDULED] ti_id=1> [airflow.sdk.definitions.dag] loc=dag.py:1504
2026-11-30T07:59:40.0Z [info     ] drop is complete: crm, billing, usage [pipelines.ops.nightly] loc=nightly.py:29
2026-11-30T07:59:40.1Z [warning  ] drop has an extra file x.csv [pipelines.intake.landing] loc=landing.py:9
2026-11-30T07:59:40.2Z [warning  ] section/key [openlineage/namespace] not found in config [airflow.sdk._shared.configuration.parser] loc=parser.py:1455
2026-11-30T07:59:40.3Z [info     ] Task instance state updated [airflow.api_fastapi] new_state=success rows_affected=1
2026-11-30T07:59:40.4Z [info     ] [DAG TEST] end task task_id=check_extracts map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1563
2026-11-30T07:59:40.5Z [info     ] [DAG TEST] starting task_id=dbt.marts.dim_accounts map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-11-30T07:59:40.5Z [info     ] [DAG TEST] running task <TaskInstance: segment_mart_nightly.dbt.marts.dim_accounts {RUN} [TaskInstanceState.SCHEDULED] ti_id=2> [airflow.sdk.definitions.dag] loc=dag.py:1504
2026-11-30T07:59:40.6Z [error    ] dbt reported failures [unusual_prefix_0375_segment_mart_nightly] loc=segment_mart_nightly.py:300
2026-11-30T07:59:40.7Z [info     ] Task instance state updated [airflow.api_fastapi] new_state=failed rows_affected=1
2026-11-30T07:59:40.8Z [info     ] [DAG TEST] end task task_id=dbt.marts.dim_accounts map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1563
"""


def test_output_is_split_per_task_and_written_where_the_ui_reads_it(tmp_path):
    steps, warnings = [], []
    out = DagTestOutput(on_step=lambda task, event, s: steps.append((task, event, s.state)), on_warning=warnings.append)
    for line in OUTPUT.splitlines(keepends=True):
        out.feed(line)
    assert steps == [("check_extracts", "start", None), ("check_extracts", "end", "success"),
                     ("dbt.marts.dim_accounts", "start", None), ("dbt.marts.dim_accounts", "end", "failed")]
    assert out.run_id == RUN
    # our warnings and errors only, not Airflow's
    assert [w.split("] ", 1)[1].split(" [")[0] for w in warnings] == ["drop has an extra file x.csv",
                                                                     "dbt reported failures"]
    paths = write_task_logs(tmp_path, "segment_mart_nightly", out)
    assert paths[0] == tmp_path / "dag_id=segment_mart_nightly" / f"run_id={RUN}" / "task_id=check_extracts" / "attempt=1.log"
    text = paths[0].read_text()
    assert "drop is complete" in text and "dim_accounts" not in text and "Filling up" not in text
    assert "dbt reported failures" in paths[1].read_text()
    assert task_log_path(tmp_path, "d", out.sections[1]).name == "attempt=1.log"


def test_a_dags_test_run_gets_its_real_start_date(tmp_path):
    db = tmp_path / "airflow.db"
    con = sqlite3.connect(db)
    con.execute("create table dag_run (dag_id text, run_id text, logical_date text, start_date text, run_after text)")
    con.execute("insert into dag_run values ('d', 'r1', '2026-03-29 00:00:00.000000', '2026-03-29 00:00:00.000000', "
                "'2026-11-30 07:59:33.781128')")
    con.execute("insert into dag_run values ('d', 'r2', '2026-03-30 00:00:00.000000', '2026-11-30 08:00:00.000000', "
                "'2026-11-30 07:59:58.000000')")
    con.commit()
    con.close()
    assert fix_run_start(db, "d", "r1") == 1
    assert fix_run_start(db, "d", "r2") == 0  # a scheduled run's own start is left alone
    con = sqlite3.connect(db)
    assert con.execute("select run_id, start_date from dag_run order by run_id").fetchall() == [
        ("r1", "2026-11-30 07:59:33.781128"), ("r2", "2026-11-30 08:00:00.000000")]
