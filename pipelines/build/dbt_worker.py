"""One dbt process that serves many dbt commands: the other end of ``pipelines.build.dbt.DbtSession``.

Started by the pipeline as ``python -m pipelines.build.dbt_worker`` (never imported by it). It reads one
request per line on stdin (JSON: ``args``, the dbt command line without ``dbt``; ``parse``, the
arguments of the ``dbt parse`` that loads the project; ``env``, variables to set first, such as
the night's as-of date), runs it with dbt's programmatic entry point (``dbtRunner``), lets dbt
print its log to stdout as usual, then prints :data:`DONE` and the exit code dbt's CLI would have
returned (0 success, 1 a node failed, 2 dbt itself failed).

Why a process of its own that lives for many nights: starting Python and importing dbt costs
~1.5 s a command, and loading the project (even dbt's partial parse: reading the saved parse,
checking every file, writing manifest.json and the semantic manifest) another 2-5 s, the same for
every night of a replay or a soak. The worker parses once (``dbt parse``) and hands the parsed
manifest to every later command (``dbtRunner(manifest=...)``: dbt then skips parsing). The project
must not change while a session runs. Why not in the pipeline's own process: dbt keeps global
state (flags, adapters, logging) and the DuckDB file must be free between commands, so the gate
and publish, in the pipeline's process, can open it. dbt-duckdb closes its database when its last
connection closes (``LocalEnvironment.notify_closed``), and keeps the environment object at class
level (``DuckDBConnectionManager._ENV``) for the life of the process: :func:`_release_duckdb`
closes it after every command, so nothing can hold the file between two commands.
"""

from __future__ import annotations

import json
import os
import sys

#: Printed alone on a line after each command, followed by its exit code.
DONE = "\x1esegment-mart dbt worker: done "


def _release_duckdb() -> None:
    """Close dbt-duckdb's database handle if one is still open (see the module's docstring)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter
        return
    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()
        DuckDBConnectionManager._ENV = None


def main() -> int:
    from dbt.cli.main import dbtRunner
    from dbt_common.events.functions import reset_metadata_vars

    manifest = None
    while line := sys.stdin.readline():
        request = json.loads(line)
        os.environ.update(request.get("env") or {})
        # dbt reads DBT_ENV_CUSTOM_ENV_* once per process for its artifacts' metadata
        reset_metadata_vars()
        code = 0
        try:
            if manifest is None:
                parsed = dbtRunner().invoke(["parse", *request["parse"]])
                if parsed.success:
                    manifest = parsed.result
                else:
                    code = 2
                    print(f"dbt parse failed: {parsed.exception or 'see the log above'}", flush=True)
            if code == 0:
                result = dbtRunner(manifest=manifest).invoke(request["args"])
                if result.exception is not None:
                    print(f"dbt failed: {type(result.exception).__name__}: {result.exception}", flush=True)
                code = 0 if result.success else (2 if result.exception is not None else 1)
        except Exception as exc:  # report it like a failed command; the session decides what to do
            print(f"dbt worker: {type(exc).__name__}: {exc}", flush=True)
            code = 2
        finally:
            _release_duckdb()
        sys.stdout.flush()
        print(f"{DONE}{code}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
