"""The two kinds of failure: whether retrying can help is said by type, never by message text.

Every exception class of the project derives from exactly one of these (a test walks
``pipelines/`` and checks it). A class may also keep the built-in it always had (``ValueError``,
``RuntimeError``) so that code catching that goes on working.

* :class:`DataProblem`: the input or the configuration is wrong, or a check on the data failed
  (a rejected extract, quarantine over its threshold, a failing dbt test, a failed quality gate,
  a refused publish, a night out of order, a bad mapping or setting). Running the same thing
  again gives the same answer: the DAG fails the task at once, without retries, and the message
  says what to fix.
* :class:`Transient`: something outside the data got in the way (the pipeline home's run lock
  held by another run, DuckDB's "Could not set lock on file" on the warehouse, a service or an
  endpoint not answering). The same step may well pass a little later: the DAG retries it.

Like dlt's terminal and transient exceptions; see docs/operations.md (failures).
"""

from __future__ import annotations


class DataProblem(Exception):
    """Bad input, bad configuration or failed checks: never retried."""


class Transient(Exception):
    """A passing obstacle (a lock, a busy service): retried."""
