"""A published release, read: where it lives, its manifest and a safe connection to it.

The ground floor of the release: the report, the quality gate, the outbound steps, the DAG and BI
read a release through this module only; :mod:`pipelines.release.publish` writes one (checksums, the
release writer, the atomic swap) and imports its layout from here. Layout of
``settings.published`` (the write-audit-publish itself is described in :mod:`pipelines.release.publish`)::

    releases/<run_date>_<utc-stamp>_<id>/   one immutable, read-only release
        segment_mart.duckdb  parquet/...  report.html  manifest.json  quality/...
        (parquet/<mart>.parquet: a mart published whole; parquet/<mart>/<column>_<value>.parquet:
        one file per as-of date of a daily mart, per month of a monthly mart)
    current -> releases/<release_id>        the commit point
    segment_mart.duckdb -> current/segment_mart.duckdb   stable paths for BI
    manifest.json       -> current/manifest.json
    report.html         -> current/report.html
    parquet             -> current/parquet

Readers open a path and get whichever release ``current`` named at that instant: the old one or
the new one, never a mix. :func:`open_published` resolves the symlink first, so a connection is
pinned to one release.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.warehouse import MARTS_SCHEMA, open_published_file

if TYPE_CHECKING:
    import duckdb

    from pipelines.settings import Settings

DB_NAME = "segment_mart.duckdb"
MANIFEST_NAME = "manifest.json"
REPORT_NAME = "report.html"
PARQUET_DIR = "parquet"
RELEASES_DIR = "releases"
CURRENT = "current"
#: Top-level names that always point into the current release.
STABLE_LINKS = (DB_NAME, MANIFEST_NAME, REPORT_NAME, PARQUET_DIR)
MANIFEST_VERSION = 2
#: The published DuckDB file's digest is a list of sha256 digests, one per chunk of this many
#: bytes (manifest ``chunked``): a publish re-hashes only the chunks that differ from the previous
#: release's file, never the whole file. Other files get one sha256 of their bytes (``files``).
CHUNK_BYTES = 1 << 20


@dataclass
class MartManifest:
    rows: int
    #: content checksum: sha256 over the schema and the canonical sorted row hashes (whole mart),
    #: or over the schema and the partitions' (months') content checksums (daily or monthly mart)
    checksum: str
    columns: list[dict[str, str]]  # [{"name", "type"}] in table order
    #: relative to the release directory: a file (whole mart), or a folder of one file per
    #: partition (daily mart) or per month (monthly mart)
    parquet: str
    partition_by: str | None = None
    #: row-hash sum of a whole or monthly mart (:func:`pipelines.build.marts.mart_fingerprint`)
    fingerprint: str | None = None
    #: daily marts: {as-of date: {"rows", "fingerprint", "checksum", "parquet"}}
    partitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    comment: str | None = None  # the dbt model description
    #: a monthly mart: its month column and per month {"rows", "fingerprint", "checksum",
    #: "parquet"}. The next night's quality gate compares the fingerprints with its own to find
    #: the months that changed; the next publish links the unchanged months' files and takes their
    #: checksums. (A release written before monthly marts were published by month has only
    #: "rows" and "fingerprint" per month and one file ``parquet/<mart>.parquet``.)
    month_column: str | None = None
    months: dict[str, dict[str, Any]] = field(default_factory=dict)


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
    #: files digested by chunk (the DuckDB file): relative path -> {"size", "chunk_bytes",
    #: "sha256": [one per chunk, in order]} (:func:`chunk_digests`, :func:`verify_release`)
    chunked: dict[str, dict[str, Any]] = field(default_factory=dict)
    paths: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    storage_version: str | None = None  # DuckDB storage version of segment_mart.duckdb
    build: dict[str, Any] = field(default_factory=dict)  # what this release wrote and reused
    #: views of schema `metrics` in segment_mart.duckdb: {view: description} (docs/metrics.md)
    metric_views: dict[str, str] = field(default_factory=dict)
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


# --------------------------------------------------------------------------- digests


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()


def chunk_digests(path: Path, chunk_bytes: int = CHUNK_BYTES) -> list[str]:
    """sha256 of each ``chunk_bytes`` chunk of a file, in order (the last one may be shorter)."""
    out = []
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(chunk_bytes), b""):
            out.append(hashlib.sha256(chunk).hexdigest())
    return out


def verify_release(release_dir: Path, manifest: Manifest | None = None) -> list[str]:
    """What differs between a release's files and its manifest's digests (empty: every file
    listed has the bytes the manifest says). Reads every byte: for audits and tests, not for
    every night."""
    release_dir = Path(release_dir)
    if manifest is None:
        manifest = Manifest.from_dict(json.loads((release_dir / MANIFEST_NAME).read_text()))
    problems = []
    for rel, digest in sorted(manifest.files.items()):
        path = release_dir / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif file_sha256(path) != digest:
            problems.append(f"{rel}: sha256 differs from the manifest")
    for rel, entry in sorted(manifest.chunked.items()):
        path = release_dir / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != entry["size"]:
            problems.append(f"{rel}: {path.stat().st_size} bytes, the manifest says {entry['size']}")
        else:
            bad = [i for i, (a, b) in enumerate(zip(chunk_digests(path, entry["chunk_bytes"]), entry["sha256"],
                                                   strict=True)) if a != b]
            if bad:
                problems.append(f"{rel}: chunk(s) {bad[:5]} differ from the manifest")
    return problems


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


#: how many times :func:`open_published` resolves the stable path again when the release it
#: resolved was pruned before it could be opened
OPEN_ATTEMPTS = 5


def open_published(settings: Settings | None = None, *, path: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published DuckDB file with external access disabled.

    The symlink is resolved first, so the connection is pinned to one release (and a new call
    after a publish gets the new release even inside a process that still holds the old one).
    A release pruned between resolving the symlink and opening it (publishes replaced it while
    this reader waited) is not an error: the symlink is resolved again.
    """
    import duckdb

    if path is None:
        if settings is None:
            raise TypeError("open_published needs settings or path")
        path = published_db_path(settings)
    for _ in range(OPEN_ATTEMPTS):
        real = Path(os.path.realpath(path))
        try:
            if real.exists():
                return open_published_file(real)
        except duckdb.IOException:
            if real.exists():
                raise
        if Path(os.path.realpath(path)) == real:  # not replaced meanwhile: truly missing
            raise FileNotFoundError(f"no published DuckDB file at {path}: nothing has been published yet")
    raise FileNotFoundError(f"the published DuckDB file at {path} was replaced and pruned {OPEN_ATTEMPTS} times "
                            "while this reader opened it (keep_releases too low for its readers?)")


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
