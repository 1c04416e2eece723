"""The benchmark instrument at a tiny size (a smoke test: figures are measured, never asserted)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from pipelines.intake.ingest import ingest
from pipelines.lab import benchmark
from pipelines.settings import Settings
from tests.drops import make_drop


def test_measure_sees_the_whole_process_tree(tmp_path: Path) -> None:
    # the child allocates 300 MB in a grandchild: the tree's peak and CPU time include it
    code = ("import subprocess, sys; subprocess.run([sys.executable, '-c', "
            "'x = bytearray(300 * 2**20); import time; time.sleep(0.5)'], check=True)")
    phase = benchmark.measure("tree", [sys.executable, "-c", code], {})
    assert phase.peak_rss_mb > 300 and phase.cpu_seconds > 0 and phase.wall_seconds >= 0.5


def test_floor_query_runs_over_the_lake(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "var", landing_dir=tmp_path / "landing")
    make_drop(settings.landing, dt.date(2026, 1, 5))
    ingest(settings, dt.date(2026, 1, 5))
    benchmark.run_floor(settings.home, dt.date(2026, 1, 5))
    assert not (settings.temp / "floor.duckdb").exists()


def test_quick_profile_writes_its_figures(tmp_path: Path) -> None:
    benchmark.main(["--accounts", "10", "--days", "5", "--work", str(tmp_path / "bench")])
    figures = json.loads((tmp_path / "bench" / "benchmark.json").read_text())
    labels = [p["label"] for p in figures["phases"]]
    assert labels == ["generate", "ingest 2025-01-05"]
    assert figures["phases"][1]["rows"] > 0 and figures["phases"][1]["peak_rss_mb"] > 0


def test_engines_side_by_side(capsys) -> None:
    import pytest

    assert benchmark._engines("duckdb, spark") == ["duckdb", "spark"]
    with pytest.raises(SystemExit, match="--engines"):
        benchmark._engines("duckdb,postgres")
    phases = [benchmark.Phase("dbt build 2025-01-05 (full)", 10.0, 12.0, 900.0, 1.0, "build"),
              benchmark.Phase("dbt build 2025-01-05 (full) [spark]", 95.0, 150.0, 2100.0, 1.0, "build")]
    benchmark.print_side_by_side(phases)
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("dbt build 2025-01-05 (full) ") and "95.0 s" in line and line.endswith("9.5x")


def test_measure_counts_the_cpu_of_a_descendant_nobody_waits_for(tmp_path: Path) -> None:
    # like PySpark's JVM: the grandchild burns 0.5 s of CPU and is never waited for by its parent
    flag = tmp_path / "burnt"
    grandchild = (f"import time, pathlib\nwhile time.process_time() < 0.5: pass\n"
                  f"pathlib.Path({str(flag)!r}).touch()\ntime.sleep(30)")
    code = (f"import subprocess, sys, time, pathlib\n"
            f"p = subprocess.Popen([sys.executable, '-c', {grandchild!r}])\n"
            f"while not pathlib.Path({str(flag)!r}).exists(): time.sleep(0.05)\n"
            f"time.sleep(0.3)\np.kill()")
    phase = benchmark.measure("orphan", [sys.executable, "-c", code], {})
    assert phase.cpu_seconds >= 0.45


def test_dbt_split_accounts_for_every_second_of_a_build(tmp_path: Path) -> None:
    results = tmp_path / "run_results.json"
    results.write_text(json.dumps({
        "metadata": {"invocation_started_at": "2026-01-01T00:00:02Z", "generated_at": "2026-01-01T00:00:12Z"},
        "elapsed_time": 8.0,
        "results": [{"unique_id": "model.p.a", "execution_time": 3.0}, {"unique_id": "test.p.t", "execution_time": 1.0},
                    {"unique_id": "unit_test.p.a.u", "execution_time": 2.0}],
    }))
    started = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()
    log = ["00:00:04.1 [debug] [MainThread]: Partial parsing enabled: 0 files deleted, 0 files added, 1 files changed."]
    split = benchmark.dbt_split(results, log, started, started + 13)
    assert split["seconds"] == {"start-up": 2.0, "parse": 2.0, "models": 3.0, "data tests": 1.0, "unit tests": 2.0,
                                "between nodes": 2.0, "after": 1.0}
    assert split["nodes"] == {"models": 1, "data tests": 1, "unit tests": 1}
    assert split["parse_mode"].startswith("partial: Partial parsing enabled")
    full = benchmark.dbt_split(results, ["x [info ] [MainThread]: Unable to do partial parsing because saved manifest "
                                         "not found. Starting full parse."], started, started + 13)
    assert full["parse_mode"].startswith("full: Unable to do partial parsing")
