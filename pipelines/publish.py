"""Publish (write-audit-publish): copy the audited marts into a new release and swap it in.

The marts are built and audited in the working warehouse. Only after the quality gate passed,
:func:`publish` writes them into a NEW DuckDB file plus one Parquet file per mart, in a new
release directory, with the HTML report and ``manifest.json``, and then makes that release
current with ONE atomic rename. Layout of ``settings.published``::

    releases/<run_date>_<utc-stamp>_<id>/   one immutable, read-only release
        segment_mart.duckdb  parquet/<mart>.parquet  report.html  manifest.json  quality/...
    current -> releases/<release_id>        the commit point: replaced with os.replace
    segment_mart.duckdb -> current/segment_mart.duckdb   stable paths for BI (symlinks that
    manifest.json       -> current/manifest.json         never change; they follow `current`)
    report.html         -> current/report.html
    parquet             -> current/parquet

Readers open a path and get whichever release ``current`` named at that instant: the old one or
the new one, never a mix, never a half-written file. A reader holding a file open keeps reading
the release it opened (its inode stays even after pruning). A refused or crashed publish leaves
the previous release and every published path byte-identical; a temp directory
``releases/.tmp-*`` left by a crash is removed by the next publish.

Content checksums hash every mart's rows in a canonical, order-independent way (with the schema),
so re-running a night gives the same checksums although file bytes differ.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.quality.db import connect_read_only, list_tables, quote_ident, table_columns
from pipelines.quality.model import GateResult, QualityGateFailed

if TYPE_CHECKING:
    import duckdb

    from pipelines.settings import Settings

log = logging.getLogger(__name__)

#: How many releases to keep (the current one included); ``settings.keep_releases`` overrides it.
DB_NAME = "segment_mart.duckdb"
MANIFEST_NAME = "manifest.json"
REPORT_NAME = "report.html"
PARQUET_DIR = "parquet"
RELEASES_DIR = "releases"
CURRENT = "current"
MARTS_SCHEMA = "marts"
#: Top-level names that always point into the current release.
STABLE_LINKS = (DB_NAME, MANIFEST_NAME, REPORT_NAME, PARQUET_DIR)
#: DuckDB settings for every connection to a published file: read-only, no file system or
#: network access (no read_csv, COPY, ATTACH, extension installs), and locked so SQL cannot undo it.
PUBLISHED_CONFIG: dict[str, Any] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}
#: Floating-point values enter the content checksum with this many significant digits
#: (parallel sums in DuckDB are not bit-reproducible from run to run).
CHECKSUM_FLOAT_DIGITS = 12
MANIFEST_VERSION = 1


class PublishRefused(RuntimeError):
    """Publish was not attempted (gate failed, warehouse changed, another publish running)."""


@dataclass
class MartManifest:
    rows: int
    checksum: str  # content checksum: sha256 over schema + canonical sorted row hashes
    columns: list[dict[str, str]]  # [{"name", "type"}] in table order
    parquet: str  # relative to the release directory


@dataclass
class Manifest:
    run_date: dt.date
    release_id: str
    published_at: str
    marts: dict[str, MartManifest]
    dataset_checksum: str  # sha256 over the marts' names and content checksums
    versions: dict[str, str]
    quality: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256 of the bytes
    paths: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    manifest_version: int = MANIFEST_VERSION

    def __str__(self) -> str:
        rows = sum(m.rows for m in self.marts.values())
        return (f"release {self.release_id} for {self.run_date}: {len(self.marts)} marts, {rows:,} rows, "
                f"dataset checksum {self.dataset_checksum[:12]}")

    @property
    def checksums(self) -> dict[str, str]:
        return {m: v.checksum for m, v in self.marts.items()}

    @property
    def row_counts(self) -> dict[str, int]:
        return {m: v.rows for m, v in self.marts.items()}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_date"] = self.run_date.isoformat()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        d = dict(d)
        d["run_date"] = dt.date.fromisoformat(d["run_date"])
        d["marts"] = {k: MartManifest(**v) for k, v in d["marts"].items()}
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


# --------------------------------------------------------------------------- reading


def published_db_path(settings: Settings) -> Path:
    """The stable path BI opens (a symlink into the current release)."""
    return Path(settings.published) / DB_NAME


def read_manifest(settings: Settings) -> Manifest | None:
    """The current release's manifest, or None before the first publish."""
    path = Path(settings.published) / MANIFEST_NAME
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None


def open_published(settings: Settings | None = None, *, path: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published DuckDB file with external access disabled.

    The symlink is resolved first, so the connection is pinned to one release (and a new call
    after a publish gets the new release even inside a process that still holds the old one).
    """
    import duckdb

    if path is None:
        if settings is None:
            raise TypeError("open_published needs settings or path")
        path = published_db_path(settings)
    real = Path(os.path.realpath(path))
    if not real.exists():
        raise FileNotFoundError(f"no published DuckDB file at {path}: nothing has been published yet")
    return duckdb.connect(str(real), read_only=True, config=dict(PUBLISHED_CONFIG))


def published_marts(settings: Settings) -> list[str]:
    """Names of the published marts, from the suites in ``expectations/`` (every published mart
    has one; the gate enforces it). Cheap and static: safe to call while a DAG file is parsed."""
    from pipelines.quality.suites import suite_files

    return sorted(suite_files(Path(settings.expectations_dir)))


def asset_uris(settings: Settings, marts: list[str] | None = None) -> dict[str, str]:
    """``{mart: uri}`` for Airflow Assets, one per published mart.

    ``file://<published>/segment_mart.duckdb?table=marts.<mart>``: Airflow 3 keeps the query
    string (sorted) but drops fragments, so ``#marts.<mart>`` would collapse every mart into the
    same Asset. Suggested Asset name: ``segment_mart.marts.<mart>``.
    """
    base = published_db_path(settings).absolute().as_posix()
    return {m: f"file://{base}?table={MARTS_SCHEMA}.{m}" for m in (marts if marts is not None else published_marts(settings))}


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


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- publishing


def _versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import pipelines

    out = {"segment-mart": pipelines.__version__, "python": platform.python_version()}
    for dist in ("dbt-core", "dbt-duckdb", "duckdb", "great-expectations", "pandas", "pyarrow", "apache-airflow"):
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
                raise PublishRefused(f"another publish is running on {published}") from exc
            raise
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


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


def _export(settings: Settings, gate: GateResult, release: Path) -> dict[str, MartManifest]:
    """Copy every mart from the working warehouse (attached read-only) into a new DuckDB file
    (rows sorted, column comments kept) and Parquet files; return their manifests."""
    import duckdb

    db_path = release / DB_NAME
    (release / PARQUET_DIR).mkdir(parents=True)
    # Fails early with a clear message when a writer holds the warehouse.
    connect_read_only(Path(settings.warehouse)).close()
    con = duckdb.connect(str(db_path))
    try:
        with contextlib.suppress(duckdb.Error):
            con.execute("set TimeZone = 'UTC'")
        wh = str(Path(settings.warehouse).absolute()).replace("'", "''")
        con.execute(f"attach '{wh}' as wh (read_only)")
        marts = list_tables(con, MARTS_SCHEMA, catalog="wh")
        if sorted(marts) != sorted(gate.marts):
            raise PublishRefused(
                "the working warehouse changed since the quality gate ran: gate validated "
                f"{sorted(gate.marts)}, warehouse now has {sorted(marts)}; re-run the gate"
            )
        con.execute(f"create schema {MARTS_SCHEMA}")
        out: dict[str, MartManifest] = {}
        for mart in marts:
            q = f"{MARTS_SCHEMA}.{quote_ident(mart)}"
            con.execute(f"create table {q} as select * from wh.{q} order by all")
            for col, comment in con.execute(
                "select column_name, comment from duckdb_columns() where database_name = 'wh' "
                "and schema_name = ? and table_name = ? and comment is not null",
                [MARTS_SCHEMA, mart],
            ).fetchall():
                con.execute(f"comment on column {q}.{quote_ident(col)} is ?", [comment])
            cols = table_columns(con, MARTS_SCHEMA, mart)
            rows, checksum = content_checksum(con, q, cols)
            if rows != gate.marts[mart]:
                raise PublishRefused(
                    f"marts.{mart} has {rows} rows but the quality gate validated "
                    f"{gate.marts[mart]}: the warehouse changed since the gate ran; re-run the gate"
                )
            rel = f"{PARQUET_DIR}/{mart}.parquet"
            target = str(release / rel).replace("'", "''")
            con.execute(f"copy {q} to '{target}' (format parquet, compression zstd)")
            out[mart] = MartManifest(rows=rows, checksum=checksum,
                                     columns=[{"name": c, "type": t} for c, t in cols], parquet=rel)
        con.execute("detach wh")
        con.execute("checkpoint")
    finally:
        con.close()
    wal = db_path.with_name(db_path.name + ".wal")
    if wal.exists():  # a clean close leaves none; never ship one
        raise RuntimeError(f"DuckDB left a WAL file next to the new release: {wal}")
    return out


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


def _release_time(path: Path) -> str:
    try:
        return json.loads((path / MANIFEST_NAME).read_text())["published_at"]
    except (OSError, ValueError, KeyError):
        return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).isoformat()


def _make_writable(path: Path) -> None:
    for dirpath, dirs, files in os.walk(path):
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)
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


def _freeze(path: Path) -> None:
    """Make a release read-only on disk, so nobody opens it read-write by mistake."""
    for dirpath, _, files in os.walk(path):
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o444)


def publish(
    settings: Settings,
    run_date: dt.date,
    gate: GateResult,
    *,
    keep_releases: int | None = None,
    build_html_report: bool = True,
) -> Manifest:
    """Publish the audited marts of ``run_date`` (see the module docstring).

    Refuses (:class:`PublishRefused`, nothing touched) unless ``gate`` is a passed full gate
    for ``run_date`` whose marts and row counts still match the warehouse.
    """
    _check_gate(run_date, gate)
    keep = keep_releases or settings.keep_releases
    published = Path(settings.published)
    now = dt.datetime.now(dt.UTC)
    release_id = f"{run_date.isoformat()}_{now:%Y%m%dT%H%M%SZ}_{uuid.uuid4().hex[:6]}"
    with _publish_lock(published):
        releases_dir = published / RELEASES_DIR
        releases_dir.mkdir(parents=True, exist_ok=True)
        tmp = releases_dir / f".tmp-{release_id}"
        final = releases_dir / release_id
        try:
            tmp.mkdir()
            marts = _export(settings, gate, tmp)
            quality = {k: v for k, v in gate.summary().items() if k not in ("report_json", "report_html")}
            quality_paths = {}
            for src in (gate.report_json, gate.report_html):
                if src and Path(src).exists():
                    (tmp / "quality").mkdir(exist_ok=True)
                    shutil.copy2(src, tmp / "quality" / Path(src).name)
                    quality_paths[Path(src).suffix.lstrip(".")] = f"quality/{Path(src).name}"
            quality["reports"] = quality_paths
            quality["source_reports"] = {"json": str(gate.report_json or ""), "html": str(gate.report_html or "")}
            report = (_build_report(settings, run_date, tmp) if build_html_report
                      else {"status": "skipped"})
            files = {
                p.relative_to(tmp).as_posix(): _file_sha256(p)
                for p in sorted(tmp.rglob("*")) if p.is_file()
            }
            dataset = hashlib.sha256(
                json.dumps(sorted((m, v.checksum) for m, v in marts.items())).encode()
            ).hexdigest()
            manifest = Manifest(
                run_date=run_date,
                release_id=release_id,
                published_at=now.isoformat(timespec="seconds"),
                marts=marts,
                dataset_checksum=dataset,
                versions=_versions(),
                quality=quality,
                files=files,
                paths={
                    "release_dir": f"{RELEASES_DIR}/{release_id}",
                    "duckdb": DB_NAME,
                    "report": REPORT_NAME if report.get("status") == "built" else None,
                    "parquet": {m: v.parquet for m, v in marts.items()},
                },
                report=report,
            )
            (tmp / MANIFEST_NAME).write_text(json.dumps(manifest.to_dict(), indent=2) + "\n")
            _freeze(tmp)
            _fsync_tree(tmp)
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
    log.info("published %s as release %s (%d marts; pruned %s)", run_date, release_id, len(marts), removed or "none")
    return manifest
