"""Publish (write-audit-publish): the audited marts as a new immutable release, swapped in atomically.

The marts are built and audited in the working warehouse. The quality gate runs once per night
and records a fingerprint of exactly what it validated; :func:`publish` never re-runs the gate:
it recomputes the fingerprint (unless the warehouse file provably was not written since the gate
read it: :func:`pipelines.build.marts.unchanged_since`), refuses when the warehouse changed after the gate, and only then
writes a NEW release directory and makes it current with ONE atomic rename. Layout of
``settings.published``::

    releases/<run_date>_<utc-stamp>_<id>/   one immutable, read-only release
        segment_mart.duckdb                       every mart in schema `marts`, with comments, and the
                                                  metrics as views in schema `metrics` (pipelines/release/metric_views.py)
        parquet/<mart>.parquet                    a mart published whole
        parquet/<mart>/<column>_<value>.parquet   a daily mart: one file per as-of date; a monthly
                                                  mart: one file per month (its month column)
        report.html  manifest.json  quality/...
    current -> releases/<release_id>        the commit point: replaced with os.replace
    segment_mart.duckdb -> current/segment_mart.duckdb   stable paths for BI (symlinks that
    manifest.json       -> current/manifest.json         never change; they follow `current`)
    report.html         -> current/report.html
    parquet             -> current/parquet

A release costs the night's delta: partitions (a daily mart's as-of dates, a monthly mart's
months) whose fingerprint equals the previous release's are hard-linked from it (same bytes, same
checksums, no rewrite); only new or changed partitions and changed whole marts are written. The
DuckDB file is a clone of the previous release's file (copy-on-write where the file system can,
else an in-kernel copy: no decoding) with the changed partitions and months deleted and
re-inserted and changed whole marts replaced; without a usable previous
release it is built from nothing. Its digest is one sha256 per chunk (manifest ``chunked``): the
chunks whose bytes equal the previous file's keep the previous manifest's digests, only the
others are hashed.
It is created in DuckDB storage version ``settings.published_storage_version`` (readable by
DuckDB 1.x BI drivers) and carries every dbt model and column description as a comment.

Readers open a path and get whichever release ``current`` named at that instant: the old one or
the new one, never a mix, never a half-written file. A reader holding a file open keeps reading
the release it opened (its inode stays even after pruning; hard-linked Parquet files stay while
any release links them). A refused or crashed publish leaves the previous release and every
published path byte-identical; a temp directory ``releases/.tmp-*`` left by a crash is removed
by the next publish.

Content checksums hash every row in a canonical, order-independent way, per partition (as-of
date or month) for partitioned marts, and are combined per mart (with the schema), so re-running a
night gives the same checksums although file bytes differ, and a release built from the previous
one plus the delta has the checksums of one built from nothing.

Reading a release (its layout, :class:`~pipelines.release.Manifest`, ``open_published``) is
:mod:`pipelines.release`: this module writes releases and imports the layout from there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.build.marts import (
    MARTS_SCHEMA,
    changed_partitions,
    mart_fingerprint,
    partition_filter,
    partition_key,
    quote_ident,
)
from pipelines.errors import DataProblem, Transient
from pipelines.quality.model import GateResult, QualityGateFailed
from pipelines.release import (
    CHUNK_BYTES,
    CURRENT,
    DB_NAME,
    MANIFEST_NAME,
    PARQUET_DIR,
    RELEASES_DIR,
    REPORT_NAME,
    STABLE_LINKS,
    Manifest,
    MartManifest,
    file_sha256,
    read_manifest,
)

if TYPE_CHECKING:
    import duckdb

    from pipelines.settings import Settings

log = logging.getLogger(__name__)

PUB_CATALOG = "pub"
#: Floating-point values enter the content checksum with this many significant digits
#: (parallel sums in DuckDB are not bit-reproducible from run to run).
CHECKSUM_FLOAT_DIGITS = 12


class PublishRefused(DataProblem, RuntimeError):
    """Publish was not attempted (gate failed, warehouse changed after it, nothing validated)."""


class PublishBusy(Transient):
    """Another publish holds the published folder's lock: nothing was touched; try again."""


# --------------------------------------------------------------------------- checksums


def content_checksum(con: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]]) -> tuple[int, str]:
    """``(rows, sha256)`` of a table's content, independent of row order and file layout.

    Each row becomes a canonical text (NULL as ``\\N``, floats with
    :data:`CHECKSUM_FLOAT_DIGITS` significant digits), hashed with md5; the sorted row hashes
    are hashed with sha256, and that with the column names and types.
    """
    parts = []
    for name, typ in columns:
        q = quote_ident(name)
        if typ.upper() in ("DOUBLE", "FLOAT", "REAL"):
            expr = f"printf('%.{CHECKSUM_FLOAT_DIGITS}g', {q} + 0.0)"  # + 0.0 turns -0.0 into 0.0
        else:
            expr = f"cast({q} as varchar)"
        parts.append(f"coalesce({expr}, '\\N')")
    row = f"concat_ws(chr(31), {', '.join(parts)})" if parts else "''"
    n, digest = con.execute(
        f"select count(*), sha256(coalesce(string_agg(h, '' order by h), '')) "
        f"from (select md5({row}) as h from {table})"
    ).fetchone()  # type: ignore[misc]
    schema = json.dumps([[c, t] for c, t in columns])
    return int(n), hashlib.sha256(f"{schema}\n{digest}".encode()).hexdigest()


def partition_checksums(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]], partition_by: str,
    keys: list[str],
) -> dict[str, tuple[int, str]]:
    """``{partition: (rows, sha256)}`` for the partitions ``keys`` (ISO dates, or
    :data:`pipelines.build.marts.NULL_PARTITION`) of ``table`` by the date column ``partition_by``
    (a daily mart's as-of date, a monthly mart's month), each computed like
    :func:`content_checksum` on that partition's rows (one grouped query)."""
    if not keys:
        return {}
    parts = []
    for name, typ in columns:
        q = quote_ident(name)
        if typ.upper() in ("DOUBLE", "FLOAT", "REAL"):
            expr = f"printf('%.{CHECKSUM_FLOAT_DIGITS}g', {q} + 0.0)"
        else:
            expr = f"cast({q} as varchar)"
        parts.append(f"coalesce({expr}, '\\N')")
    row = f"concat_ws(chr(31), {', '.join(parts)})"
    where, params = partition_filter(partition_by, keys)
    rows = con.execute(
        f"select p, count(*), sha256(coalesce(string_agg(h, '' order by h), '')) from ("
        f"select {quote_ident(partition_by)} as p, md5({row}) as h from {table} where {where}) group by p",
        params,
    ).fetchall()
    schema = json.dumps([[c, t] for c, t in columns])
    return {partition_key(p): (int(n), hashlib.sha256(f"{schema}\n{digest}".encode()).hexdigest())
            for p, n, digest in rows}


def combined_checksum(columns: list[tuple[str, str]], partitions: dict[str, str]) -> str:
    """A partitioned mart's content checksum: its schema and its partitions' (a daily mart's as-of
    dates, a monthly mart's months) checksums. A function of the content only: the same rows give
    the same checksum whichever partitions were written or linked."""
    schema = [[c, t] for c, t in columns]
    return hashlib.sha256(json.dumps([schema, sorted(partitions.items())]).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    return file_sha256(path)


def _delta_chunk_digests(path: Path, previous_path: Path | None, previous: dict[str, Any] | None,
                         ) -> tuple[dict[str, Any], int]:
    """``path``'s chunk digests (:func:`pipelines.release.chunk_digests`) and how many chunks were
    hashed: a chunk whose bytes equal the same chunk of ``previous_path`` (the previous release's
    file, immutable) takes its digest from the previous manifest's entry ``previous``; only the
    chunks the publish changed are hashed. Comparing bytes costs a fraction of hashing them."""
    chunk_bytes = CHUNK_BYTES
    before: list[str] = []
    if previous is not None and previous.get("chunk_bytes") == chunk_bytes and previous_path is not None \
            and previous_path.is_file() and previous_path.stat().st_size == previous.get("size"):
        before = previous["sha256"]
    digests: list[str] = []
    hashed = 0
    with contextlib.ExitStack() as stack:
        new = stack.enter_context(path.open("rb"))
        old = stack.enter_context(previous_path.open("rb")) if before else None
        while chunk := new.read(chunk_bytes):
            i = len(digests)
            if old is not None and i < len(before) and old.read(chunk_bytes) == chunk:
                digests.append(before[i])
            else:
                digests.append(hashlib.sha256(chunk).hexdigest())
                hashed += 1
    return {"size": path.stat().st_size, "chunk_bytes": chunk_bytes, "sha256": digests}, hashed


#: ioctl FICLONE (linux/fs.h): share the source's extents (copy-on-write) where the file system can
_FICLONE = 0x40049409


def _clone_file(src: Path, dst: Path) -> str:
    """Copy ``src`` to a new file ``dst``: a copy-on-write clone where the file system supports it
    (btrfs, XFS: no bytes copied; later writes to ``dst`` never reach ``src``), otherwise an
    in-kernel copy (``copy_file_range``/``sendfile``: nothing passes through Python). Returns how."""
    import fcntl

    with src.open("rb") as fin, dst.open("xb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
            return "clone"
        except OSError:
            pass
    shutil.copyfile(src, dst)
    return "copy"


# --------------------------------------------------------------------------- publishing


def _versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import pipelines

    out = {"segment-mart": pipelines.__version__, "python": platform.python_version()}
    for dist in ("dbt-core", "dbt-duckdb", "dbt-metricflow", "duckdb", "great-expectations", "pandas", "pyarrow",
                 "apache-airflow"):
        with contextlib.suppress(PackageNotFoundError):
            out[dist] = version(dist)
    return out


@contextlib.contextmanager
def _publish_lock(published: Path) -> Iterator[None]:
    import fcntl

    published.mkdir(parents=True, exist_ok=True)
    with (published / ".publish.lock").open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise PublishBusy(f"another publish is running on {published}") from exc
            raise
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically (a new symlink renamed over the old one)."""
    if link.is_symlink() and os.readlink(link) == target:
        return
    tmp = link.with_name(f".{link.name}.{uuid.uuid4().hex[:8]}.tmp")
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check_gate(run_date: dt.date, gate: GateResult) -> None:
    if not gate.passed:
        raise PublishRefused(f"refusing to publish {run_date}: {QualityGateFailed(gate)}")
    if gate.scope != "gate":
        raise PublishRefused("refusing to publish: that result is a quarantine check, not the full quality gate")
    if gate.run_date != run_date:
        raise PublishRefused(f"refusing to publish {run_date} with the quality gate of {gate.run_date}")
    if not gate.marts:
        raise PublishRefused(f"refusing to publish {run_date}: the quality gate validated no marts")
    if not (gate.fingerprint or {}).get("marts"):
        raise PublishRefused(
            f"refusing to publish {run_date}: the quality gate result carries no fingerprint of the marts "
            f"(written by an older version); re-run the gate: `segment-mart audit --run-date {run_date}`")


def _changed_since_gate(
    con: duckdb.DuckDBPyConnection, settings: Settings, run_date: dt.date, gate: GateResult,
) -> tuple[list[str], str]:
    """What differs between the warehouse now and the state the gate validated (empty: nothing),
    and how that was established.

    When the warehouse file provably was not written since the gate took its witness
    (:func:`pipelines.build.marts.unchanged_since`), the gate's fingerprint stands; otherwise every
    mart's fingerprint is recomputed (one aggregate scan per mart inside DuckDB) and compared with
    the gate's. The dbt run results' sha256 is compared either way.
    """
    from pipelines.build.dbt import run_results_path
    from pipelines.build.marts import list_marts, mart_columns, unchanged_since

    expected: dict[str, Any] = gate.fingerprint["marts"]
    problems = []
    now = list_marts(con)
    if sorted(now) != sorted(expected):
        problems.append(f"the gate validated marts {sorted(expected)}, the warehouse now has {sorted(now)}")
    untouched = unchanged_since(gate.fingerprint.get("warehouse"), settings)
    for mart in [] if untouched else sorted(set(now) & set(expected)):
        fp = expected[mart]
        current = mart_fingerprint(con, mart, mart_columns(con, mart), fp.get("partition_by"))
        if current["columns"] != fp["columns"]:
            problems.append(f"marts.{mart}: columns changed")
        elif "partitions" in fp:
            before, after = fp["partitions"], current["partitions"]
            diff = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            if diff:
                problems.append(f"marts.{mart}: partition(s) {', '.join(diff[:5])}{' ...' if len(diff) > 5 else ''} "
                                "changed")
        elif (current["rows"], current["hash"]) != (fp["rows"], fp["hash"]):
            problems.append(f"marts.{mart}: {fp['rows']} rows at the gate, {current['rows']} now"
                            if current["rows"] != fp["rows"] else f"marts.{mart}: content changed")
    recorded = gate.fingerprint.get("dbt_run_results")
    path = run_results_path(settings, run_date)
    if recorded is not None:
        digest = _file_sha256(path) if path.exists() else None
        if digest != recorded:
            problems.append(f"dbt ran again after the gate ({path} changed)")
    return problems, ("warehouse file untouched since the gate" if untouched else "fingerprints recomputed")


def _dbt_descriptions(settings: Settings) -> tuple[dict[str, dict[str, Any]], Path]:
    """``{model: {"description", "columns": {column: description}}}`` from dbt's manifest.json
    in the dbt target folder (written by every dbt invocation, whichever adapter built the marts)."""
    from pipelines.build.dbt import target_dir

    path = target_dir(settings) / "manifest.json"
    try:
        nodes = json.loads(path.read_text()).get("nodes", {})
    except FileNotFoundError:
        return {}, path
    out: dict[str, dict[str, Any]] = {}
    for node in nodes.values():
        if node.get("resource_type") != "model":
            continue
        out[node["name"]] = {
            "description": (node.get("description") or "").strip(),
            "columns": {c: (v.get("description") or "").strip() for c, v in (node.get("columns") or {}).items()},
        }
    return out, path


def _apply_comments(
    con: duckdb.DuckDBPyConnection, mart: str, columns: list[tuple[str, str]], docs: dict[str, Any] | None,
) -> tuple[str | None, int, int]:
    """COMMENT ON the published table and its columns from the dbt docs; returns the table
    comment, how many columns have one and how many comments were (re)written. A table kept
    from the previous release's file keeps its comments: only those that differ from the docs
    are written (each COMMENT ON is a catalog change, ~4 ms, and a mart has up to 40 columns)."""
    table = f"{PUB_CATALOG}.{MARTS_SCHEMA}.{quote_ident(mart)}"
    if not docs:
        return None, 0, 0
    comment = docs.get("description") or None
    had_table = con.execute(
        "select comment from duckdb_tables() where database_name = ? and schema_name = ? and table_name = ?",
        [PUB_CATALOG, MARTS_SCHEMA, mart]).fetchone()
    had = dict(con.execute(
        "select column_name, comment from duckdb_columns() where database_name = ? and schema_name = ? "
        "and table_name = ?", [PUB_CATALOG, MARTS_SCHEMA, mart]).fetchall())
    written = 0
    # COMMENT ON takes no prepared parameters: a quoted literal (or NULL to clear one).
    if (had_table[0] if had_table else None) != comment:
        con.execute(f"comment on table {table} is {_sql_text(comment)}")
        written += 1
    n = 0
    for col, _ in columns:
        text = docs["columns"].get(col) or None
        if had.get(col) != text:
            con.execute(f"comment on column {table}.{quote_ident(col)} is {_sql_text(text)}")
            written += 1
        n += text is not None
    return comment, n, written


def _sql_text(value: str | None) -> str:
    return "null" if value is None else "'" + value.replace("'", "''") + "'"


class _ReleaseWriter:
    """Writes one release's DuckDB file and Parquet files from the marts, reusing the previous
    release wherever the fingerprint says nothing changed."""

    def __init__(self, con: duckdb.DuckDBPyConnection, settings: Settings, gate: GateResult,
                 release: Path, previous: Manifest | None, previous_dir: Path | None) -> None:
        self.con, self.settings, self.gate, self.release = con, settings, gate, release
        self.previous, self.previous_dir = previous, previous_dir
        self.linked: dict[str, str] = {}  # rel path -> sha256 (from the previous manifest)
        self.stats: dict[str, Any] = {"partitions_written": 0, "partitions_linked": 0,
                                      "months_written": 0, "months_linked": 0, "months_written_by_mart": {},
                                      "marts_written": [], "marts_linked": []}
        self.metric_views: dict[str, str] = {}

    # ---------------------------------------------------------------- DuckDB file
    def open_db(self) -> None:
        import time

        version = self.settings.published_storage_version
        db = self.release / DB_NAME
        prev = self.previous
        reuse = (prev is not None and prev.manifest_version >= 2 and prev.storage_version == version
                 and self.previous_dir is not None and (self.previous_dir / DB_NAME).is_file())
        started = time.perf_counter()
        if reuse:
            assert self.previous_dir is not None
            self.stats["copy_method"] = _clone_file(self.previous_dir / DB_NAME, db)
            os.chmod(db, 0o644)
        self.stats["duckdb"] = "previous release + delta" if reuse else "new file"
        self.stats["copy_seconds"] = round(time.perf_counter() - started, 3)
        self.stats["copy_bytes"] = db.stat().st_size if reuse else 0
        quoted = str(db).replace("'", "''")
        option = "" if reuse else f" (storage_version '{version}')"
        self.con.execute(f"attach '{quoted}' as {PUB_CATALOG}{option}")
        self.reuse = reuse
        self.con.execute(f"create schema if not exists {PUB_CATALOG}.{MARTS_SCHEMA}")

    def close_db(self) -> None:
        self.con.execute("checkpoint " + PUB_CATALOG)
        self.con.execute(f"detach {PUB_CATALOG}")
        db = self.release / DB_NAME
        wal = db.with_name(db.name + ".wal")
        if wal.exists():  # a clean detach leaves none; never ship one
            raise RuntimeError(f"DuckDB left a WAL file next to the new release: {wal}")

    def _published_tables(self) -> set[str]:
        return {r[0] for r in self.con.execute(
            "select table_name from duckdb_tables() where database_name = ? and schema_name = ?",
            [PUB_CATALOG, MARTS_SCHEMA]).fetchall()}

    def _link(self, rel: str, previous_rel: str | None = None) -> None:
        """Hard-link ``rel`` to the previous release's ``previous_rel`` (same inode: no bytes
        written; its sha256 comes from the previous manifest)."""
        assert self.previous_dir is not None and self.previous is not None
        src = previous_rel or rel
        target = self.release / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(self.previous_dir / src, target)
        self.linked[rel] = self.previous.files[src]

    def _copy_parquet(self, select: str, rel: str, params: list[Any] | None = None) -> None:
        target = self.release / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        quoted = str(target).replace("'", "''")
        self.con.execute(f"copy ({select}) to '{quoted}' (format parquet, compression zstd)", params)

    # ---------------------------------------------------------------- marts
    def write(self) -> dict[str, MartManifest]:
        fingerprints: dict[str, Any] = self.gate.fingerprint["marts"]
        docs, docs_path = _dbt_descriptions(self.settings)
        stale = self._published_tables() - set(fingerprints)
        for mart in sorted(stale):
            self.con.execute(f"drop table {PUB_CATALOG}.{MARTS_SCHEMA}.{quote_ident(mart)}")
        out: dict[str, MartManifest] = {}
        commented = total = comments_written = 0
        for mart in sorted(fingerprints):
            fp = fingerprints[mart]
            columns = [(c, t) for c, t in fp["columns"]]
            prev = self.previous.marts.get(mart) if (self.reuse and self.previous) else None
            same_schema = (prev is not None and mart in self._published_tables()
                           and [[c["name"], c["type"]] for c in prev.columns] == fp["columns"]
                           and prev.partition_by == fp.get("partition_by"))
            writer = (self._write_partitioned if fp.get("partition_by") else
                      self._write_monthly if fp.get("month_column") else self._write_whole)
            entry = writer(mart, fp, columns, prev if same_schema else None)
            if entry.rows != self.gate.marts.get(mart):
                raise PublishRefused(
                    f"marts.{mart} has {entry.rows} rows but the quality gate validated "
                    f"{self.gate.marts.get(mart)}: re-run the gate (`segment-mart audit --run-date "
                    f"{self.gate.run_date}`), then publish")
            entry.comment, n, w = _apply_comments(self.con, mart, columns, docs.get(mart))
            commented += n
            comments_written += w
            total += len(columns)
            out[mart] = entry
        self.stats["comments"] = {"source": str(docs_path) if docs else None,
                                  "columns_with_comment": commented, "columns": total, "written": comments_written}
        if not docs:
            log.warning("no dbt manifest at %s: the published file carries no column comments", docs_path)
        self.metric_views = self._write_metric_views()
        return out

    def _write_metric_views(self) -> dict[str, str]:
        """(Re)create schema ``metrics``: one view per :data:`pipelines.release.metric_views.VIEWS`, generated
        from dbt's semantic manifest of this build, with the metrics' descriptions as comments.
        Views cost nothing to write; they are re-created whole every night, so a changed metric
        definition reaches BI with the next publish. Returns ``{view: description}``."""
        from pipelines.build.dbt import target_dir
        from pipelines.release.metric_views import (
            METRICS_SCHEMA,
            SEMANTIC_MANIFEST,
            VIEWS,
            MetricViewError,
            load_semantic_manifest,
            view_comment,
            view_sql,
        )

        try:
            semantic = load_semantic_manifest(target_dir(self.settings) / SEMANTIC_MANIFEST)
        except MetricViewError as exc:
            raise PublishRefused(f"refusing to publish {self.gate.run_date}: {exc}") from exc
        schema = f"{PUB_CATALOG}.{METRICS_SCHEMA}"
        self.con.execute(f"drop schema if exists {schema} cascade")
        self.con.execute(f"create schema {schema}")
        # The names inside a view bind in the catalog the view lives in (at CREATE and whenever it
        # is read, DuckDB 1.0 included), so `marts.<mart>` is the published mart, whatever name a
        # BI tool attaches the file under.
        try:
            out = {}
            for view in VIEWS:
                name = f"{schema}.{quote_ident(view.name)}"
                self.con.execute(f"create view {name} as\n{view_sql(semantic, view, MARTS_SCHEMA)}")
                self.con.execute(f"comment on view {name} is {_sql_text(view.description)}")
                for column, text in view_comment(semantic, view).items():
                    self.con.execute(f"comment on column {name}.{quote_ident(column)} is {_sql_text(text or None)}")
                out[view.name] = view.description
        except MetricViewError as exc:
            raise PublishRefused(f"refusing to publish {self.gate.run_date}: {exc}") from exc
        self.stats["metric_views"] = sorted(out)
        return out

    def _write_whole(self, mart: str, fp: dict[str, Any], columns: list[tuple[str, str]],
                     prev: MartManifest | None) -> MartManifest:
        rel = f"{PARQUET_DIR}/{mart}.parquet"
        if prev is not None and prev.fingerprint == fp["hash"] and prev.rows == fp["rows"] \
                and prev.parquet == rel:
            self._link(rel)
            self.stats["marts_linked"].append(mart)
            return MartManifest(rows=prev.rows, checksum=prev.checksum, columns=prev.columns, parquet=rel,
                                fingerprint=fp["hash"])
        table = f"{PUB_CATALOG}.{MARTS_SCHEMA}.{quote_ident(mart)}"
        self.con.execute(f"create or replace table {table} as select * from {MARTS_SCHEMA}.{quote_ident(mart)} "
                         "order by all")
        rows, checksum = content_checksum(self.con, table, columns)
        self._copy_parquet(f"select * from {table}", rel)
        self.stats["marts_written"].append(mart)
        return MartManifest(rows=rows, checksum=checksum, columns=_columns(columns), parquet=rel,
                            fingerprint=fp["hash"])

    def _write_partitioned(self, mart: str, fp: dict[str, Any], columns: list[tuple[str, str]],
                           prev: MartManifest | None) -> MartManifest:
        """A daily mart, as-of date by as-of date (:meth:`_write_parts`)."""
        pcol: str = fp["partition_by"]
        partitions, changed = self._write_parts(mart, pcol, fp, columns, prev)
        self.stats["partitions_written"] += len(changed)
        self.stats["partitions_linked"] += len(partitions) - len(changed)
        return MartManifest(
            rows=sum(p["rows"] for p in partitions.values()),
            checksum=combined_checksum(columns, {k: v["checksum"] for k, v in partitions.items()}),
            columns=_columns(columns), parquet=f"{PARQUET_DIR}/{mart}", partition_by=pcol, partitions=partitions)

    def _write_monthly(self, mart: str, fp: dict[str, Any], columns: list[tuple[str, str]],
                       prev: MartManifest | None) -> MartManifest:
        """A monthly mart (``meta.partition_month_column``), month by month like a daily mart by
        as-of date (:meth:`_write_parts`). A previous entry without per-month checksums and files
        (a release of the whole-mart layout) is not reusable: the mart is written whole, once."""
        mcol: str = fp["month_column"]
        usable = (prev is not None and prev.month_column == mcol and bool(prev.months)
                  and all("checksum" in m and "parquet" in m for m in prev.months.values()))
        if not usable:
            prev = None
        months, changed = self._write_parts(mart, mcol, fp, columns, prev)
        self.stats["months_written"] += len(changed)
        self.stats["months_linked"] += len(months) - len(changed)
        if changed:
            self.stats["months_written_by_mart"][mart] = changed
        return MartManifest(
            rows=sum(m["rows"] for m in months.values()),
            checksum=combined_checksum(columns, {k: v["checksum"] for k, v in months.items()}),
            columns=_columns(columns), parquet=f"{PARQUET_DIR}/{mart}", fingerprint=fp["hash"],
            month_column=mcol, months=months)

    def _write_parts(self, mart: str, column: str, fp: dict[str, Any], columns: list[tuple[str, str]],
                     prev: MartManifest | None) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """The parts of a mart partitioned by the date ``column`` (a daily mart's as-of dates, a
        monthly mart's months; ``fp``'s fingerprint per part, ``prev``'s manifest entry per part):
        a part whose fingerprint equals the previous release's keeps its rows in the cloned DuckDB
        file, its Parquet file (a hard link) and its content checksum (from the previous manifest,
        not re-hashed); new and changed parts are deleted and re-inserted in the DuckDB file,
        written as Parquet and hashed; a part gone is deleted. ``prev`` None
        (new mart, changed schema, no usable previous file): every part is written. Returns the
        manifest entries per part and the parts written."""
        kind = "months" if fp.get("month_column") else "partitions"
        parts: dict[str, list[Any]] = fp[kind]
        prev_parts: dict[str, dict[str, Any]] = getattr(prev, kind) if prev else {}
        table = f"{PUB_CATALOG}.{MARTS_SCHEMA}.{quote_ident(mart)}"
        source = f"{MARTS_SCHEMA}.{quote_ident(mart)}"
        if prev is None:
            changed = sorted(parts)
            self.con.execute(f"create or replace table {table} as select * from {source} limit 0")
        else:
            changed = changed_partitions(fp, asdict(prev))
            gone = sorted(k for k in prev_parts if k not in parts or k in changed)
            if gone:
                where, params = partition_filter(column, gone)
                self.con.execute(f"delete from {table} where {where}", params)
        if changed:
            where, params = partition_filter(column, changed)
            self.con.execute(
                f"insert into {table} select * from {source} where {where} "
                f"order by {', '.join(quote_ident(c) for c in [column, *(c for c, _ in columns if c != column)])}",
                params)
        sums = partition_checksums(self.con, source, columns, column, changed)
        out: dict[str, dict[str, Any]] = {}
        for key in sorted(parts):
            rel = f"{PARQUET_DIR}/{mart}/{column}_{key}.parquet"
            if key in changed:
                rows, checksum = sums[key]
                where, params = partition_filter(column, [key])
                self._copy_parquet(f"select * from {table} where {where}", rel, params)
            else:
                before = prev_parts[key]
                rows, checksum = before["rows"], before["checksum"]
                self._link(rel, before["parquet"])
            out[key] = {"rows": rows, "fingerprint": parts[key][1], "checksum": checksum, "parquet": rel}
        return out, changed


def _columns(columns: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": c, "type": t} for c, t in columns]


def _build_report(settings: Settings, run_date: dt.date, release: Path) -> dict[str, Any]:
    try:
        from pipelines.report import build_report

        build_report(settings, run_date, release / DB_NAME, release / REPORT_NAME)
        return {"status": "built", "path": REPORT_NAME}
    except Exception as exc:  # the data publish matters more than its report; say so loudly
        log.exception("the HTML report failed to build; publishing the marts with an error page")
        error = f"{type(exc).__name__}: {exc}"
        import html

        (release / REPORT_NAME).write_text(
            "<!doctype html><meta charset=utf-8><title>segment mart report unavailable</title>"
            f"<h1>Report for {run_date} unavailable</h1><p>The marts were published, but the report "
            f"failed to build:</p><pre>{html.escape(error)}</pre>"
        )
        return {"status": "failed", "error": error}


def _release_time(path: Path) -> tuple[str, int]:
    """When a release was published, for keeping the newest ones: the manifest's ``published_at``
    (seconds), then its file's mtime in nanoseconds. Delta publishes can take under a second, so
    on ``published_at`` alone two releases tie and the sort kept an arbitrary one of them: a prune
    removed the release just before ``current`` (which a reader may still be opening) and kept an
    older one."""
    manifest = path / MANIFEST_NAME
    try:
        return json.loads(manifest.read_text())["published_at"], manifest.stat().st_mtime_ns
    except (OSError, ValueError, KeyError):
        stat = path.stat()
        return dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).isoformat(timespec="seconds"), stat.st_mtime_ns


def _make_writable(path: Path) -> None:
    """Make a release's folders writable so its entries can be unlinked. Files are left alone:
    a hard-linked Parquet file shares its inode (and mode) with other releases."""
    for dirpath, dirs, _ in os.walk(path):
        os.chmod(dirpath, 0o755)
        for name in dirs:
            os.chmod(os.path.join(dirpath, name), 0o755)


def _remove_tree(path: Path) -> None:
    with contextlib.suppress(OSError):
        _make_writable(path)
    shutil.rmtree(path, ignore_errors=True)


def _prune(published: Path, keep: int) -> list[str]:
    releases_dir = published / RELEASES_DIR
    current = os.path.realpath(published / CURRENT)
    for tmp in releases_dir.glob(".tmp-*"):  # left by a crashed publish (we hold the lock)
        _remove_tree(tmp)
    releases = sorted(
        (p for p in releases_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=_release_time, reverse=True,
    )
    removed = []
    for old in releases[max(keep, 1):]:
        if os.path.realpath(old) == current:
            continue
        _remove_tree(old)
        removed.append(old.name)
    return removed


def _freeze(path: Path, skip: set[str]) -> None:
    """Make a release's new files read-only on disk, so nobody opens them read-write by mistake
    (``skip``: files hard-linked from an earlier release, already read-only)."""
    for dirpath, _, files in os.walk(path):
        for name in files:
            full = os.path.join(dirpath, name)
            if Path(full).relative_to(path).as_posix() not in skip:
                os.chmod(full, 0o444)


def _fsync_new(root: Path, skip: set[str]) -> None:
    """fsync every file written for this release (not the hard-linked ones) and every folder."""
    for dirpath, _, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            if Path(full).relative_to(root).as_posix() in skip:
                continue
            fd = os.open(full, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def publish(
    settings: Settings,
    run_date: dt.date,
    gate: GateResult,
    *,
    keep_releases: int | None = None,
    build_html_report: bool = True,
) -> Manifest:
    """Publish the audited marts of ``run_date`` (see the module docstring).

    Refuses (:class:`PublishRefused`, nothing touched) unless ``gate`` is a passed full gate for
    ``run_date`` whose fingerprint still matches the warehouse: the gate is never re-run here.
    """
    import time

    from pipelines.build.marts import open_marts

    _check_gate(run_date, gate)
    keep = keep_releases or settings.keep_releases
    published = Path(settings.published)
    now = dt.datetime.now(dt.UTC)
    release_id = f"{run_date.isoformat()}_{now:%Y%m%dT%H%M%SZ}_{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    with _publish_lock(published):
        releases_dir = published / RELEASES_DIR
        releases_dir.mkdir(parents=True, exist_ok=True)
        tmp = releases_dir / f".tmp-{release_id}"
        final = releases_dir / release_id
        con = open_marts(settings)
        try:
            checked = time.perf_counter()
            changed, verify = _changed_since_gate(con, settings, run_date, gate)
            if changed:
                raise PublishRefused(
                    f"refusing to publish {run_date}: the working warehouse changed after the quality gate ran "
                    f"({'; '.join(changed)}). Re-run the gate (`segment-mart audit --run-date {run_date}`), "
                    "then publish again")
            verify_seconds = time.perf_counter() - checked
            previous = read_manifest(settings)
            previous_dir = Path(os.path.realpath(published / CURRENT)) if previous is not None else None
            tmp.mkdir()
            writer = _ReleaseWriter(con, settings, gate, tmp, previous, previous_dir)
            writer.open_db()
            marts = writer.write()
            writer.close_db()
        except BaseException:
            with contextlib.suppress(Exception):
                con.close()
            _remove_tree(tmp)
            raise
        con.close()
        try:
            quality = {k: v for k, v in gate.summary().items() if k not in ("report_json", "report_html")}
            quality_paths = {}
            for src in (gate.report_json, gate.report_html):
                if src and Path(src).exists():
                    (tmp / "quality").mkdir(exist_ok=True)
                    shutil.copy2(src, tmp / "quality" / Path(src).name)
                    quality_paths[Path(src).suffix.lstrip(".")] = f"quality/{Path(src).name}"
            quality["reports"] = quality_paths
            quality["source_reports"] = {"json": str(gate.report_json or ""), "html": str(gate.report_html or "")}
            quality["validated_partitions"] = dict(gate.validated)
            report = (_build_report(settings, run_date, tmp) if build_html_report
                      else {"status": "skipped"})
            files, chunked = {}, {}
            hashed = time.perf_counter()
            for p in sorted(tmp.rglob("*")):
                if p.is_file():
                    rel = p.relative_to(tmp).as_posix()
                    if rel == DB_NAME:
                        chunked[rel], n = _delta_chunk_digests(
                            p, previous_dir / DB_NAME if writer.reuse and previous_dir else None,
                            previous.chunked.get(DB_NAME) if writer.reuse and previous else None)
                        writer.stats["duckdb_chunks"] = {"total": len(chunked[rel]["sha256"]), "hashed": n}
                    else:
                        files[rel] = writer.linked.get(rel) or _file_sha256(p)
            writer.stats["digest_seconds"] = round(time.perf_counter() - hashed, 3)
            dataset = hashlib.sha256(
                json.dumps(sorted((m, v.checksum) for m, v in marts.items())).encode()
            ).hexdigest()
            build = {**writer.stats, "verify": verify, "verify_seconds": round(verify_seconds, 3),
                     "seconds": round(time.perf_counter() - started, 3)}
            manifest = Manifest(
                run_date=run_date,
                release_id=release_id,
                published_at=now.isoformat(timespec="seconds"),
                marts=marts,
                dataset_checksum=dataset,
                versions=_versions(),
                quality=quality,
                files=files,
                chunked=chunked,
                paths={
                    "release_dir": f"{RELEASES_DIR}/{release_id}",
                    "duckdb": DB_NAME,
                    "report": REPORT_NAME if report.get("status") == "built" else None,
                    "parquet": {m: v.parquet for m, v in marts.items()},
                },
                report=report,
                storage_version=settings.published_storage_version,
                build=build,
                metric_views=writer.metric_views,
            )
            (tmp / MANIFEST_NAME).write_text(json.dumps(manifest.to_dict(), indent=2) + "\n")
            linked = set(writer.linked)
            _freeze(tmp, linked)
            _fsync_new(tmp, linked)
            os.rename(tmp, final)
            _fsync_dir(releases_dir)
        except BaseException:
            _remove_tree(tmp)
            raise
        # The commit point: one atomic rename of the `current` symlink.
        _replace_symlink(published / CURRENT, f"{RELEASES_DIR}/{release_id}")
        for name in STABLE_LINKS:
            _replace_symlink(published / name, f"{CURRENT}/{name}")
        _fsync_dir(published)
        removed = _prune(published, keep)
    log.info("published %s as release %s (%d marts; %s; pruned %s)", run_date, release_id, len(marts),
             {k: build[k] for k in ("duckdb", "partitions_written", "partitions_linked", "months_written",
                                    "months_linked", "seconds")},
             removed or "none")
    return manifest
