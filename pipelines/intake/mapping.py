"""Mappings: declarative YAML files that turn a tool's export into one contract entity.

A company that exports from Salesforce, HubSpot, Stripe, Chargebee, Segment or Zendesk does not
write a conversion script: it puts a mapping file per entity in its mappings folder (setting
``mappings_dir``, default ``<home>/mappings``), usually a few lines extending a shipped mapping
(``mappings/`` in this repository). docs/mappings.md describes the format; in short::

    entity: billing/subscriptions             # the contract entity it produces
    input: {file: stripe/subscriptions.csv}   # the export, under the night's drop folder
    columns:                                  # contract column: where its value comes from
      subscription_id: id
      start_date: {from: Start Date (UTC), format: "%Y-%m-%d %H:%M"}
      billing_interval: {from: Interval, values: {month: month, year: year}}
      amount: {from: Amount, per: interval}
    overlaps: close_earlier

The mapping runs inside the night's ingest, as the reader of the export: every record is read
with its file line (the same streaming readers as contract files), converted in DuckDB, and
handed to the same row checks as a contract file. A value the mapping cannot convert (not in
the value map, not matching the date format, a key the lookup does not find) is quarantined
with the export's file, line, the contract column and a reason naming the export's column;
the other rules of the contract (types, allowed values, ranges) apply unchanged after it.
Nothing is dropped: records a mapping's ``where`` leaves out (e.g. Segment ``identify`` calls
in a file of track events) are counted and logged; every other record loads or is quarantined.

``segment-mart map preview`` runs the same ingest of the mapped entities into a scratch lake
and shows the mapped rows and what would be quarantined, before any night runs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipelines.contract import ENTITIES, Entity, get_entity
from pipelines.errors import DataProblem
from pipelines.intake.readers import (
    LINE,
    FileUnreadable,
    duckdb_error,
    jsonl_line_blocks,
    reject_first_bad_line,
)
from pipelines.intake.row_checks import lit, q
from pipelines.settings import PROJECT_ROOT

if TYPE_CHECKING:
    import duckdb

    from pipelines.intake.landing import FileProblem, LandingFile
    from pipelines.intake.readers import TextReader
    from pipelines.settings import Settings

log = logging.getLogger(__name__)

#: The shipped mappings (``extends: stripe/subscriptions-csv`` names ``mappings/stripe/subscriptions-csv.yml``).
LIBRARY = PROJECT_ROOT / "mappings"
INPUT_FORMATS = ("csv", "jsonl", "json", "parquet")
OVERLAP_POLICIES = ("keep", "close_earlier", "quarantine_later")
#: ``per``: the period the source amount is given for (billing/subscriptions.amount only).
AMOUNT_PERIODS = ("interval", "month", "year")
INTERVAL_MONTHS = {"month": 1, "quarter": 3, "year": 12}
EPOCH_FORMATS = {"epoch": 1_000_000, "epoch_ms": 1_000}
#: Hidden columns of a mapped batch (files may not use names starting with ``__sm_``).
ERROR_PREFIX = "__sm_maperr_"
SOURCE_PREFIX = "__sm_c"
RAW = "__sm_raw"
_OUT_FORMAT = {"date": "%Y-%m-%d", "timestamp": "%Y-%m-%d %H:%M:%S"}
_RULE_KEYS = {"from", "combine", "value", "default", "values", "otherwise", "format", "scale", "per", "when", "lookup"}
_TOP_KEYS = {"description", "extends", "entity", "input", "columns", "where", "keep", "overlaps", "source"}
JSON_BATCH_ROWS = 65_536


class MappingError(DataProblem, ValueError):
    """A mapping file is missing, unreadable or asks for something the format does not allow."""


# --------------------------------------------------------------------------- the format


@dataclass(frozen=True)
class Lookup:
    """A key join: the row's value is looked up in another file of the drop."""

    file: str  # under the drop folder
    match: str  # column (or JSON path) of that file holding the key
    take: str  # column (or JSON path) whose value the row gets
    records: str | None = None  # JSON: path of the list of records


@dataclass(frozen=True)
class Rule:
    """Where one output column's value comes from and how it is converted."""

    column: str
    sources: tuple[str, ...] = ()  # ``from``: the first non-empty of these (``combine``: all, joined by '|')
    combine: bool = False
    value: str | None = None  # a constant
    default: str | None = None  # when the source is empty
    values: tuple[tuple[str, str | None], ...] | None = None  # value map, keys compared lower-case
    otherwise: str | None = None  # for values not in the map; None = quarantine them
    keep_unmapped: bool = False  # ``otherwise: keep``: values not in the map pass unchanged
    formats: tuple[str, ...] = ()  # date/timestamp parse formats (strptime, epoch, epoch_ms)
    scale: float | None = None  # numbers: multiply (0.01 for cents)
    per: str | None = None  # amount: the period the source amount is for
    when: tuple[str, tuple[str, ...]] | None = None  # only when this source column is one of these values
    lookup: Lookup | None = None


@dataclass(frozen=True)
class Mapping:
    path: Path
    entity: Entity
    input_file: str
    input_format: str
    rules: tuple[Rule, ...]
    records: str | None = None
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()
    keep: tuple[str, ...] = ()
    overlaps: str = "keep"
    description: str = ""

    def inspect(self, drop_dir: Path) -> tuple[LandingFile | None, list[FileProblem]]:
        """The landing checks of this mapping's export (:func:`inspect_mapped`); the landing
        checks call it through the mapping, so :mod:`pipelines.intake.landing` never imports this module."""
        return inspect_mapped(self, drop_dir)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_json(self) -> bool:
        return self.input_format in ("json", "jsonl")

    @property
    def output_columns(self) -> tuple[str, ...]:
        """The mapped file's columns: the contract columns it fills, then the kept extras."""
        return tuple(r.column for r in self.rules) + self.keep

    def source_refs(self) -> tuple[str, ...]:
        """Every column (or JSON path) of the export the mapping reads, in first-use order."""
        refs: list[str] = []
        for rule in self.rules:
            refs += rule.sources
            if rule.when:
                refs.append(rule.when[0])
        refs += [w[0] for w in self.where] + list(self.keep)
        return tuple(dict.fromkeys(refs))

    def uses(self, ref: str) -> list[str]:
        """The output columns that read ``ref`` (for error messages)."""
        return [r.column for r in self.rules if ref in r.sources or (r.when and r.when[0] == ref)] + [
            k for k in self.keep if k == ref] + [f"where {w[0]}" for w in self.where if w[0] == ref]


def _problem(path: Path, message: str) -> MappingError:
    return MappingError(f"mapping {path}: {message} (docs/mappings.md)")


def _text(value: Any) -> str | None:
    """A YAML scalar as the text a file would hold (booleans as true/false)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | dict):
        raise TypeError("a list or mapping where a single value is expected")
    return str(value)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise MappingError(f"mapping file {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MappingError(f"mapping file {path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise _problem(path, "expected a mapping with `entity`, `input` and `columns`")
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise _problem(path, f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_TOP_KEYS))}")
    return doc


def library_path(name: str) -> Path:
    """The shipped mapping called ``name`` (``stripe/subscriptions-csv``)."""
    return LIBRARY / (name if name.endswith((".yml", ".yaml")) else f"{name}.yml")


def _resolved_doc(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping's YAML with ``extends`` applied: the base's keys, overridden key by key
    (``columns`` and ``input`` per entry; a column set to null is removed)."""
    doc = _read_yaml(path)
    base_name = doc.pop("extends", None)
    if base_name is None:
        return doc
    base_path = Path(str(base_name))
    if not base_path.suffix:
        base_path = library_path(str(base_name))
    elif not base_path.is_absolute():
        base_path = (path.parent / base_path) if (path.parent / base_path).exists() else library_path(str(base_name))
    if base_path.resolve() in seen:
        raise _problem(path, f"extends {base_name}, which extends it back")
    if not base_path.is_file():
        raise _problem(path, f"extends {base_name!r}, which is neither a shipped mapping "
                             f"(`segment-mart map list`) nor a file")
    base = _resolved_doc(base_path, (*seen, path.resolve()))
    merged = {**base, **{k: v for k, v in doc.items() if k not in ("columns", "input")}}
    for key in ("columns", "input"):
        if key in doc:
            if not isinstance(doc[key], dict):
                raise _problem(path, f"`{key}` must be a mapping")
            combined = {**(base.get(key) or {}), **doc[key]}
            merged[key] = {k: v for k, v in combined.items() if v is not None}
    return merged


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _parse_rule(path: Path, entity: Entity, column: str, spec: Any) -> Rule:
    where = f"column {column!r}"
    if isinstance(spec, str | int | float) and not isinstance(spec, bool):
        return Rule(column, sources=(str(spec),))
    if not isinstance(spec, dict):
        raise _problem(path, f"{where}: give the export's column name, or a mapping with `from`, `value`, ...")
    unknown = sorted(set(spec) - _RULE_KEYS)
    if unknown:
        raise _problem(path, f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_RULE_KEYS))}")
    contract = next((c for c in entity.columns if c.name == column), None)
    kind = contract.type if contract else "string"
    try:
        if spec.get("from") is not None and spec.get("combine") is not None:
            raise _problem(path, f"{where}: give `from` (first non-empty) or `combine` (joined by '|'), not both")
        combine = spec.get("combine") is not None
        given = spec.get("combine") if combine else spec.get("from")
        sources = tuple(str(s) for s in _as_list(given)) if given is not None else ()
        value = _text(spec.get("value"))
        default = _text(spec.get("default"))
        values = None
        if spec.get("values") is not None:
            if not isinstance(spec["values"], dict) or not spec["values"]:
                raise _problem(path, f"{where}: `values` must map export values to contract values")
            values = tuple((str(_text(k)).strip().lower(), _text(v)) for k, v in spec["values"].items())
        otherwise = spec.get("otherwise")
        keep_unmapped = otherwise == "keep"
        otherwise = None if keep_unmapped else _text(otherwise)
    except TypeError as exc:
        raise _problem(path, f"{where}: {exc}") from exc
    if (value is None) == (not sources):
        raise _problem(path, f"{where}: give exactly one of `from` (the export's column) or `value` (a constant)")
    if combine and values is None:
        raise _problem(path, f"{where}: `combine` joins columns with '|' for a `values` map; add one")
    if (otherwise is not None or keep_unmapped) and values is None:
        raise _problem(path, f"{where}: `otherwise` needs a `values` map")
    formats = tuple(str(f) for f in _as_list(spec["format"])) if spec.get("format") is not None else ()
    if formats and kind not in ("date", "timestamp"):
        raise _problem(path, f"{where}: `format` is for date and timestamp columns ({column} is {kind})")
    scale = spec.get("scale")
    if scale is not None and (kind not in ("integer", "decimal") or isinstance(scale, bool)
                              or not isinstance(scale, int | float)):
        raise _problem(path, f"{where}: `scale` is a number, for integer and decimal columns")
    per = spec.get("per")
    if per is not None:
        if not (entity.qualified == "billing/subscriptions" and column == "amount"):
            raise _problem(path, f"{where}: `per` is for billing/subscriptions amount only")
        if per not in AMOUNT_PERIODS:
            raise _problem(path, f"{where}: `per` is one of {', '.join(AMOUNT_PERIODS)}")
    when = None
    if spec.get("when") is not None:
        cond = spec["when"]
        if not isinstance(cond, dict) or len(cond) != 1:
            raise _problem(path, f"{where}: `when` is one export column and its values, e.g. {{Status: [solved, closed]}}")
        ((when_col, when_values),) = cond.items()
        when = (str(when_col), tuple(str(_text(v)).lower() for v in _as_list(when_values)))
    lookup = None
    if spec.get("lookup") is not None:
        lk = spec["lookup"]
        if not isinstance(lk, dict) or not {"file", "match", "take"} <= set(lk) or set(lk) - {"file", "match", "take", "records"}:
            raise _problem(path, f"{where}: `lookup` needs `file`, `match` and `take` (and `records` for a JSON list)")
        if not sources:
            raise _problem(path, f"{where}: `lookup` looks up the value of `from`; give it")
        lookup = Lookup(str(lk["file"]), str(lk["match"]), str(lk["take"]),
                        str(lk["records"]) if lk.get("records") is not None else None)
    return Rule(column, sources, combine, value, default, values, otherwise, keep_unmapped, formats,
                float(scale) if scale is not None else None, per, when, lookup)


def _input_format(path: Path, file: str, declared: Any) -> str:
    fmt = str(declared) if declared else Path(file).suffix.lstrip(".").lower()
    if fmt == "ndjson":
        fmt = "jsonl"
    if fmt not in INPUT_FORMATS:
        raise _problem(path, f"input file {file!r}: format {fmt!r} is not one of {', '.join(INPUT_FORMATS)} "
                             "(give `input: {format: ...}`)")
    return fmt


def load_mapping(path: Path) -> Mapping:
    """Read and check one mapping file (with ``extends`` applied). Raises MappingError naming
    the file and the key at fault."""
    path = Path(path)
    doc = _resolved_doc(path)
    entity_name = doc.get("entity")
    try:
        entity = get_entity(*str(entity_name).split("/", 1))
    except (KeyError, TypeError, ValueError):
        raise _problem(path, f"`entity` {entity_name!r} is not a contract entity; one of "
                             f"{', '.join(e.qualified for e in ENTITIES)}") from None
    spec = doc.get("input")
    if not isinstance(spec, dict) or not spec.get("file"):
        raise _problem(path, "`input: {file: <path under the drop folder>}` is required")
    unknown = sorted(set(spec) - {"file", "format", "records"})
    if unknown:
        raise _problem(path, f"input: unknown key(s) {', '.join(unknown)}")
    file = str(spec["file"])
    if Path(file).is_absolute() or ".." in Path(file).parts:
        raise _problem(path, f"input file {file!r} must be a path under the night's drop folder")
    fmt = _input_format(path, file, spec.get("format"))
    columns = doc.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise _problem(path, "`columns` must map contract columns to the export's columns")
    names = {c.name for c in entity.columns}
    stray = sorted(set(columns) - names)
    if stray:
        raise _problem(path, f"column(s) {', '.join(stray)} are not in the contract of {entity.qualified} "
                             f"({', '.join(c.name for c in entity.columns)}); keep an export column with `keep:`")
    missing = [c.name for c in entity.columns if c.required and not c.optional_column and c.name not in columns]
    if missing:
        raise _problem(path, f"maps nothing to required column(s) {', '.join(missing)} of {entity.qualified}")
    order = [c.name for c in entity.columns if c.name in columns]
    rules = tuple(_parse_rule(path, entity, name, columns[name]) for name in order)
    if any(r.lookup and r.lookup.records and Path(r.lookup.file).suffix != ".json" for r in rules):
        raise _problem(path, "`lookup.records` is for JSON files")
    per_amount = next((r for r in rules if r.per and r.per != "interval"), None)
    if per_amount and "billing_interval" not in columns:
        raise _problem(path, "`per` converts to the billing interval: map billing_interval too")
    where_doc = doc.get("where") or {}
    if not isinstance(where_doc, dict):
        raise _problem(path, "`where` maps export columns to the values a record must have, e.g. {type: [track]}")
    where = tuple((str(k), tuple(str(_text(v)).lower() for v in _as_list(vs))) for k, vs in where_doc.items())
    keep = tuple(str(k) for k in _as_list(doc.get("keep") or []))
    clash = [k for k in keep if k.lower() in {n.lower() for n in names} or k.startswith("__sm_")]
    if clash:
        raise _problem(path, f"`keep` column(s) {', '.join(clash)} are named like a contract column (or the "
                             "loader's own); map them under `columns` instead")
    overlaps = str(doc.get("overlaps") or "keep")
    if overlaps not in OVERLAP_POLICIES:
        raise _problem(path, f"`overlaps` is one of {', '.join(OVERLAP_POLICIES)}")
    if overlaps != "keep" and entity.qualified != "billing/subscriptions":
        raise _problem(path, "`overlaps` is for billing/subscriptions")
    records = spec.get("records")
    if records is not None and fmt != "json":
        raise _problem(path, "`input.records` is for JSON files (the path of the list of records)")
    return Mapping(path, entity, file, fmt, rules, str(records) if records is not None else None, where, keep,
                   overlaps, str(doc.get("description") or ""))


def load_mappings(directory: Path | None) -> dict[str, Mapping]:
    """The mappings of a folder (``*.yml``, ``*.yaml``), one per contract entity, by entity."""
    found: dict[str, Mapping] = {}
    if directory is None or not Path(directory).is_dir():
        return found
    for path in sorted([*Path(directory).glob("*.yml"), *Path(directory).glob("*.yaml")]):
        mapping = load_mapping(path)
        other = found.get(mapping.entity.qualified)
        if other is not None:
            raise MappingError(f"mappings {other.path} and {path} both produce {mapping.entity.qualified}; "
                               "keep one per entity")
        found[mapping.entity.qualified] = mapping
    return found


def active_mappings(settings: Settings) -> dict[str, Mapping]:
    """The mappings of the installation (setting ``mappings_dir``)."""
    return load_mappings(settings.mappings)


def shipped_mappings() -> list[Mapping]:
    return [load_mapping(p) for p in sorted(LIBRARY.rglob("*.yml"))]


# --------------------------------------------------------------------------- JSON documents


def _json_path(ref: str) -> str:
    """DuckDB JSON path of a mapping's dotted reference (``context.groupId``, ``items.data[0].price``)."""
    parts = []
    for part in ref.split("."):
        name, index = re.fullmatch(r"(.*?)((?:\[\d+\])*)", part).groups()  # type: ignore[union-attr]
        parts.append(json.dumps(name) + index if name else index)
    return "$." + ".".join(parts)


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def json_records(path: Path, records: str | None) -> Iterator[tuple[int, str]]:
    """(line, raw JSON text) of every record of a JSON document: the top-level list, or the list
    at the dotted path ``records`` (Stripe's ``data``, Zendesk's ``tickets``). Raises FileUnreadable
    naming the line."""
    text = path.read_text(encoding="utf-8-sig")
    decoder = json.JSONDecoder()
    line_at = _LineCounter(text)
    pos = _skip_ws(text, 0)
    try:
        for key in (records.split(".") if records else []):
            if pos >= len(text) or text[pos] != "{":
                raise FileUnreadable(f"line {line_at(pos)}: expected an object holding {key!r} (input records: {records})")
            pos = _skip_ws(text, pos + 1)
            while True:
                if pos < len(text) and text[pos] == "}":
                    raise FileUnreadable(f"has no {key!r} (input records: {records})")
                name, pos = decoder.raw_decode(text, pos)
                pos = _skip_ws(text, pos)
                if text[pos] != ":":
                    raise FileUnreadable(f"line {line_at(pos)}: expected ':'")
                pos = _skip_ws(text, pos + 1)
                if name == key:
                    break
                _, pos = decoder.raw_decode(text, pos)
                pos = _skip_ws(text, pos)
                if text[pos] == ",":
                    pos = _skip_ws(text, pos + 1)
        if pos >= len(text) or text[pos] != "[":
            raise FileUnreadable(f"line {line_at(pos)}: expected a list of records"
                                 + (f" at {records!r}" if records else " (or give input records: <path>)"))
        pos = _skip_ws(text, pos + 1)
        if pos < len(text) and text[pos] == "]":
            return
        while True:
            start = pos
            value, pos = decoder.raw_decode(text, pos)
            if not isinstance(value, dict):
                raise FileUnreadable(f"line {line_at(start)}: a record is not a JSON object")
            yield line_at(start), text[start:pos]
            pos = _skip_ws(text, pos)
            if pos < len(text) and text[pos] == ",":
                pos = _skip_ws(text, pos + 1)
                continue
            if pos < len(text) and text[pos] == "]":
                return
            raise FileUnreadable(f"line {line_at(pos)}: expected ',' or ']' after a record")
    except json.JSONDecodeError as exc:
        raise FileUnreadable(f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    except IndexError:
        raise FileUnreadable("ends before the JSON document does") from None


class _LineCounter:
    """Line of a character position, counted incrementally (positions only grow)."""

    def __init__(self, text: str):
        self.text, self.pos, self.line = text, 0, 1

    def __call__(self, pos: int) -> int:
        if pos < self.pos:
            return self.text.count("\n", 0, pos) + 1
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def _json_batches(path: Path, records: str | None) -> Iterator[pa.Table]:
    lines: list[int] = []
    raws: list[str] = []
    for line, raw in json_records(path, records):
        lines.append(line)
        raws.append(raw)
        if len(raws) >= JSON_BATCH_ROWS:
            yield pa.table({RAW: pa.array(raws, pa.large_string()), LINE: pa.array(lines, pa.int64())})
            lines, raws = [], []
    if raws:
        yield pa.table({RAW: pa.array(raws, pa.large_string()), LINE: pa.array(lines, pa.int64())})


# --------------------------------------------------------------------------- the SQL of a mapping


def _source_name(i: int) -> str:
    return f"{SOURCE_PREFIX}{i}"


@dataclass
class BoundMapping:
    """A mapping bound to one night's export file: what the ingest reads through."""

    mapping: Mapping
    path: Path
    drop_dir: Path
    header: tuple[str, ...] = ()  # CSV / Parquet: the export's columns as spelled
    quote_problems: tuple[tuple[int, str], ...] = ()  # CSV: malformed quotes (landing's QuoteScanner)
    skipped: int = 0  # records the mapping's `where` left out
    _lookups_loaded: bool = field(default=False, repr=False)

    # -- what the loader needs ---------------------------------------------------------------

    def error_columns(self) -> dict[str, str]:
        return {r.column: ERROR_PREFIX + r.column for r in self.mapping.rules}

    def record_sql(self) -> str:
        """The quarantine's record: the export's own record (all its columns; JSON as delivered)."""
        if self.mapping.is_json:
            return f"{RAW}::varchar"
        return "to_json(struct_pack(" + ", ".join(
            f"{q(name)} := {q(_source_name(i))}" for i, name in enumerate(self.header)) + "))::varchar"

    def row_check_options(self) -> dict[str, Any]:
        return {"mapping_errors": self.error_columns(), "record_sql": self.record_sql()}

    # -- source expressions --------------------------------------------------------------------

    def _ref_sql(self, ref: str) -> str:
        """The (trimmed, empty as null) text of one export column or JSON path, over the input batch."""
        if self.mapping.is_json:
            return f"nullif(trim(json_extract_string({RAW}, {lit(_json_path(ref))})), '')"
        folded = [h.lower() for h in self.header]
        return f"nullif(trim({q(_source_name(folded.index(ref.lower())))}), '')"

    def _rule_sql(self, rule: Rule, ref: dict[str, str]) -> tuple[str, str | None]:
        """(value SQL, error reason SQL or None) of one rule over the source CTE's columns."""
        m = self.mapping
        label = "+".join(rule.sources)
        if rule.value is not None:
            return lit(rule.value), None
        parts = [ref[s] for s in rule.sources]
        if len(parts) == 1:
            raw = parts[0]
        elif rule.combine:
            raw = "nullif(concat_ws('|', " + ", ".join(parts) + "), '')"
        else:
            raw = "coalesce(" + ", ".join(parts) + ")"
        errors: list[tuple[str, str]] = []
        value = raw
        if rule.lookup:
            lk = f"{ERROR_PREFIX}lk_{rule.column}"
            value = f"{lk}.take"
            errors.append((f"{raw} is not null and {lk}.match is null",
                           f"'no record of {rule.lookup.file} has {rule.lookup.match} = ''' || {raw} || ''' "
                           f"(lookup of {label}, mapping {m.name})'"))
            errors.append((f"{raw} is not null and {lk}.takes > 1",
                           f"'{rule.lookup.file} holds several {rule.lookup.take} for {rule.lookup.match} = ''' "
                           f"|| {raw} || ''' (lookup of {label}, mapping {m.name})'"))
        if rule.values is not None:
            cases = " ".join(f"when {lit(k)} then {lit(v) if v is not None else 'null'}" for k, v in rule.values)
            known = ", ".join(lit(k) for k, _ in rule.values)
            fallback = value if rule.keep_unmapped else (lit(rule.otherwise) if rule.otherwise is not None else "null")
            mapped = f"(case lower({value}) {cases} else {fallback} end)"
            if not rule.keep_unmapped and rule.otherwise is None:
                listed = ", ".join(k for k, _ in rule.values)
                if len(listed) > 120:
                    listed = listed[:117] + "..."
                errors.append((f"{value} is not null and lower({value}) not in ({known})",
                               f"'''' || {value} || ''' of {label} is not in the values of mapping {m.name} "
                               f"({listed}): add it under values or give otherwise'"))
            value = mapped
        if rule.formats:
            kind = m.entity.column(rule.column).type
            parsed = self._parse_sql(value, rule.formats)
            errors.append((f"{value} is not null and {parsed} is null",
                           f"'''' || {value} || ''' of {label} does not match the format "
                           f"{' or '.join(rule.formats)} (mapping {m.name})'"))
            value = f"strftime({parsed}, {lit(_OUT_FORMAT[kind])})"
        if rule.scale is not None:
            number = f"try_cast({value} as decimal(38, 10))"
            errors.append((f"{value} is not null and {number} is null",
                           f"'''' || {value} || ''' of {label} is not a number (mapping {m.name})'"))
            value = f"cast({number} * {rule.scale!r} as varchar)"
        if rule.when:
            cond_col, cond_values = rule.when
            cond = f"lower({ref[cond_col]}) in ({', '.join(lit(v) for v in cond_values)})"
            value = f"(case when {cond} then {value} end)"
            errors = [(f"{cond} and ({c})", r) for c, r in errors]
        if rule.default is not None:
            value = f"coalesce({value}, {lit(rule.default)})"
        if not errors:
            return value, None
        error = "case " + " ".join(f"when coalesce({c}, false) then {r}" for c, r in errors) + " end"
        # on a conversion error the column keeps the export's value, so the quarantine shows it
        return f"(case when ({error}) is null then {value} else {raw} end)", error

    @staticmethod
    def _parse_sql(value: str, formats: tuple[str, ...]) -> str:
        tries = []
        for fmt in formats:
            if fmt in EPOCH_FORMATS:
                number = f"try_cast({value} as double)"
                tries.append(f"make_timestamp(cast(round({number} * {EPOCH_FORMATS[fmt]}) as bigint))")
            elif fmt == "iso":
                tries.append(f"try_cast(try_cast({value} as timestamptz) as timestamp)")
            else:
                tries.append(f"try_strptime({value}, {lit(fmt)})")
        return tries[0] if len(tries) == 1 else "coalesce(" + ", ".join(tries) + ")"

    def transform_sql(self, relation: str) -> str:
        """The mapped batch: output columns (text), their error reasons, the export's columns
        (for the quarantine's record) and the line, over ``relation`` (the input batch)."""
        m = self.mapping
        refs = m.source_refs()
        ref = {r: f"__sm_r{i}" for i, r in enumerate(refs)}
        passthrough = [RAW] if m.is_json else [_source_name(i) for i in range(len(self.header))]
        source_cols = [f"{self._ref_sql(r)} as {ref[r]}" for r in refs]
        where = " and ".join(f"lower({ref[c]}) in ({', '.join(lit(v) for v in vs)})" for c, vs in m.where)
        joins = []
        for rule in m.rules:
            if rule.lookup:
                alias = f"{ERROR_PREFIX}lk_{rule.column}"
                key = ref[rule.sources[0]] if len(rule.sources) == 1 else (
                    ("concat_ws('|', " if rule.combine else "coalesce(") + ", ".join(ref[s] for s in rule.sources) + ")")
                joins.append(f"left join {self._lookup_table(rule)} as {alias} on {alias}.match = {key}")
        outputs = []
        for rule in m.rules:
            value, error = self._rule_sql(rule, ref)
            outputs.append(f"{value} as {q(rule.column)}")
            outputs.append(f"{error if error else 'cast(null as varchar)'} as {q(ERROR_PREFIX + rule.column)}")
        outputs += [f"{ref[k]} as {q(k)}" for k in m.keep]
        outputs += [q(p) for p in passthrough] + [LINE]
        sql = (f"with src as (select *, {', '.join(source_cols)} from {relation}), "
               f"kept as (select * from src{f' where coalesce({where}, false)' if where else ''}) "
               f"select {', '.join(outputs)} from kept as src " + " ".join(joins))
        per_rule = next((r for r in m.rules if r.per and r.per != "interval"), None)
        if per_rule is not None:
            months = "case lower(billing_interval) " + " ".join(
                f"when {lit(k)} then {v}" for k, v in INTERVAL_MONTHS.items()) + " end"
            divisor = 12 if per_rule.per == "year" else 1
            amount = (f"cast(cast(round(try_cast(amount as decimal(38, 10)) * ({months}) / {divisor}, 2) "
                      f"as decimal(18, 2)) as varchar)")
            sql = (f"select * replace (case when {ERROR_PREFIX}amount is null and amount is not null "
                   f"then {amount} else amount end as amount) from ({sql})")
        return sql

    # -- lookups -------------------------------------------------------------------------------

    def _lookup_table(self, rule: Rule) -> str:
        return f"__sm_lookup_{rule.column}"

    def load_lookups(self, con: duckdb.DuckDBPyConnection) -> None:
        """Read every lookup file of the drop into a temp table (match -> take, count of takes)."""
        if self._lookups_loaded:
            return
        for rule in self.mapping.rules:
            if not rule.lookup:
                continue
            lk = rule.lookup
            path = self.drop_dir / lk.file
            table = _read_lookup(con, path, lk)
            con.register("__sm_lookup_src", table)
            try:
                con.execute(f"""
                    create or replace temp table {self._lookup_table(rule)} as
                    select match, any_value(take) as take, count(distinct take) as takes
                    from __sm_lookup_src where match is not null group by match
                """)
            finally:
                con.unregister("__sm_lookup_src")
        self._lookups_loaded = True

    # -- the batches the loader reads ----------------------------------------------------------

    def _input_batches(self, con: duckdb.DuckDBPyConnection, reader: TextReader) -> Iterator[pa.Table]:
        m = self.mapping
        if m.input_format == "json":
            yield from _json_batches(self.path, m.records)
            return
        if m.input_format == "jsonl":
            for block in jsonl_line_blocks(self.path, con):
                yield block.rename_columns([RAW, LINE])
            return
        from pipelines.intake.readers import TextReader

        raw_reader = TextReader(_raw_landing_file(self.path, m.input_format, self.header, self.quote_problems))
        names = [_source_name(i) for i in range(len(self.header))]
        for batch in raw_reader.batches(con):
            table = pa.Table.from_batches([batch]).rename_columns([*names, LINE])
            if m.input_format == "csv" and table.num_rows:  # blank records (every field empty) are skipped
                import pyarrow.compute as pc

                blank = None
                for name in names:
                    col = table.column(name)
                    empty = pc.or_(pc.is_null(col), pc.equal(pc.utf8_trim_whitespace(col), ""))
                    blank = empty if blank is None else pc.and_(blank, empty)
                if blank is not None and pc.any(blank).as_py():
                    table = table.filter(pc.invert(pc.fill_null(blank, False)))
            yield table
        reader.malformed.extend(raw_reader.malformed)

    def batches(self, con: duckdb.DuckDBPyConnection, reader: TextReader) -> Iterator[pa.RecordBatch]:
        """The export's records, mapped: the batches the loader checks like a contract file's."""
        self.load_lookups(con)
        sql = self.transform_sql("__sm_map_in")
        collected: list[pa.Table] = []
        for table in self._input_batches(con, reader):
            if not table.num_rows:
                continue
            con.register("__sm_map_in", table)
            try:
                try:
                    mapped = con.sql(sql).to_arrow_table()
                except duckdb_error() as exc:
                    if self.mapping.is_json:
                        con.register("__sm_jsonl", table.rename_columns(["__sm_j", LINE]))
                        try:
                            reject_first_bad_line(con)
                        finally:
                            con.unregister("__sm_jsonl")
                    raise FileUnreadable(f"could not be mapped by {self.mapping.path} "
                                         f"({str(exc).splitlines()[0]})") from exc
            finally:
                con.unregister("__sm_map_in")
            self.skipped += table.num_rows - mapped.num_rows
            if self.mapping.overlaps != "keep":
                collected.append(mapped)
                continue
            yield from _as_text(mapped).to_batches()
        if collected:
            yield from _as_text(self._resolve_overlaps(con, pa.concat_tables(collected))).to_batches()
        if self.skipped:
            log.info("%s: %d record(s) left out by the `where` of mapping %s", self.path, self.skipped,
                     self.mapping.path)

    def _resolve_overlaps(self, con: duckdb.DuckDBPyConnection, table: pa.Table) -> pa.Table:
        """Overlapping periods of one account and product line (billing/subscriptions):
        close_earlier ends each period at the start of the next one that starts later;
        quarantine_later quarantines a period that starts inside an earlier one."""
        con.register("__sm_subs", table)
        try:
            typed = """
                select *,
                    try_cast(start_date as date) as __sm_start, try_cast(end_date as date) as __sm_end,
                    lead(try_cast(start_date as date)) over w as __sm_next_start,
                    max(coalesce(try_cast(end_date as date), date '9999-12-31')) over (
                        partition by account_id, product_line order by try_cast(start_date as date), subscription_id
                        rows between unbounded preceding and 1 preceding) as __sm_prev_end,
                    lag(subscription_id) over w as __sm_prev_id
                from __sm_subs
                window w as (partition by account_id, product_line
                             order by try_cast(start_date as date), subscription_id)
            """
            hidden = "exclude (__sm_start, __sm_end, __sm_next_start, __sm_prev_end, __sm_prev_id)"
            if self.mapping.overlaps == "close_earlier":
                sql = f"""
                    select * {hidden} replace (
                        case when {ERROR_PREFIX}end_date is null and __sm_next_start > __sm_start
                                  and coalesce(__sm_end, date '9999-12-31') > __sm_next_start
                             then strftime(__sm_next_start, '%Y-%m-%d') else end_date end as end_date)
                    from ({typed})"""
            else:
                reason = (f"'starts inside subscription ' || __sm_prev_id || ' of the same account and product line "
                          f"(mapping {self.mapping.name}: overlaps quarantine_later)'")
                sql = f"""
                    select * {hidden} replace (
                        case when {ERROR_PREFIX}start_date is null and __sm_prev_end > __sm_start
                             then {reason} else {ERROR_PREFIX}start_date end as {ERROR_PREFIX}start_date)
                    from ({typed})"""
            return con.sql(f"{sql} order by {LINE}").to_arrow_table()
        finally:
            con.unregister("__sm_subs")


def _as_text(table: pa.Table) -> pa.Table:
    """Every column but the line as plain UTF-8 strings (the loader's text arrays)."""
    fields = [pa.field(f.name, pa.int64() if f.name == LINE else pa.string()) for f in table.schema]
    return table.cast(pa.schema(fields))


def _raw_landing_file(path: Path, file_format: str, header: tuple[str, ...],
                      quote_problems: tuple[tuple[int, str], ...] = ()) -> LandingFile:
    """A landing file of an export read as plain text columns (no contract)."""
    from pipelines.intake.landing import LandingFile

    return LandingFile(_RAW_ENTITY, path, file_format, header, quote_problems=quote_problems)


_RAW_ENTITY = Entity(source="export", name="export", key="", kind="snapshot", description="", columns=())


def _read_lookup(con: duckdb.DuckDBPyConnection, path: Path, lk: Lookup) -> pa.Table:
    """(match, take) text columns of a lookup file."""
    fmt = _input_format(path, lk.file, None)
    if fmt in ("json", "jsonl"):
        blocks = list(_json_batches(path, lk.records)) if fmt == "json" else [
            b.rename_columns([RAW, LINE]) for b in jsonl_line_blocks(path, con)]
        out = []
        for block in blocks:
            con.register("__sm_lk", block)
            try:
                out.append(con.sql(
                    f"select nullif(trim(json_extract_string({RAW}, {lit(_json_path(lk.match))})), '') as match, "
                    f"nullif(trim(json_extract_string({RAW}, {lit(_json_path(lk.take))})), '') as take from __sm_lk"
                ).to_arrow_table())
            finally:
                con.unregister("__sm_lk")
        return pa.concat_tables(out) if out else pa.table({"match": pa.array([], pa.string()),
                                                          "take": pa.array([], pa.string())})
    from pipelines.intake.readers import TextReader

    header = _header(path, fmt)
    folded = [h.lower() for h in header]
    for name in (lk.match, lk.take):
        if name.lower() not in folded:
            raise FileUnreadable(f"lookup file {path} has no column {name!r}")
    reader = TextReader(_raw_landing_file(path, fmt, header))
    out = []
    for batch in reader.batches(con):
        out.append(pa.table({
            "match": batch.column(folded.index(lk.match.lower())),
            "take": batch.column(folded.index(lk.take.lower())),
        }))
    table = pa.concat_tables(out) if out else pa.table({"match": pa.array([], pa.string()),
                                                       "take": pa.array([], pa.string())})
    import pyarrow.compute as pc

    return pa.table({name: pc.if_else(pc.equal(pc.utf8_trim_whitespace(table.column(name)), ""), None,
                                      pc.utf8_trim_whitespace(table.column(name)))
                     for name in ("match", "take")})


def _header(path: Path, fmt: str) -> tuple[str, ...]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return tuple(pq.read_schema(path).names)
    import csv
    import io

    with path.open("rb") as fh:
        first = fh.readline().decode("utf-8-sig", errors="replace").rstrip("\r\n")
    return tuple(h.strip() for h in next(csv.reader(io.StringIO(first)), []))


# --------------------------------------------------------------------------- landing checks


def inspect_mapped(mapping: Mapping, drop_dir: Path) -> tuple[LandingFile | None, list[FileProblem]]:
    """The file-level checks of a mapped export (and its lookup files); its landing file when
    it passes. The contract's own file for the entity may not be delivered beside it."""
    from pipelines.intake.landing import FileProblem, LandingFile, _text_columns, candidate_paths

    path = drop_dir / mapping.input_file
    reads = f"mapping {mapping.path} reads it for {mapping.entity.qualified}"
    problems: list[FileProblem] = []
    twice = [p for p in candidate_paths(drop_dir, mapping.entity) if p.exists() and p != path]
    if twice:
        problems.append(FileProblem(twice[0], f"is delivered beside the export {path} that {reads}",
                                    "Deliver one of the two (or remove the mapping)."))
    if not path.exists():
        return None, [*problems, FileProblem(path, f"is missing ({reads})",
                                             "Deliver the export (an empty one still needs its header row), "
                                             "or fix `input: file` in the mapping, then re-run.")]
    if path.stat().st_size == 0:
        return None, [*problems, FileProblem(path, "is empty (0 bytes)", "Check the export job; re-deliver the file.")]
    has_nul = False
    header: tuple[str, ...] = ()
    quote_problems: tuple[tuple[int, str], ...] = ()
    if mapping.input_format == "parquet":
        from pipelines.intake.landing import _parquet_columns

        columns, problem = _parquet_columns(path)
        header = columns or ()
    elif mapping.input_format == "json":
        from pipelines.intake.landing import _scan_text

        problem, has_nul = _scan_text(path)
        if problem is None:
            try:
                for _ in json_records(path, mapping.records):
                    pass
            except FileUnreadable as exc:
                problem = FileProblem(path, str(exc), "Re-export the file as a JSON document (or fix `input: records`).")
    else:
        columns, problem, has_nul, quote_problems = _text_columns(path, mapping.input_format)
        header = columns or () if mapping.input_format == "csv" else ()
    if problem:
        return None, [*problems, problem]
    if header:
        folded = [h.lower() for h in header]
        repeated = sorted({h for h in header if folded.count(h.lower()) > 1})
        if repeated:
            problems.append(FileProblem(path, f"has column(s) {', '.join(repeated)} more than once (letter case "
                                        "does not count)", "Give every column its own name in the export."))
        missing = [r for r in mapping.source_refs() if r.lower() not in folded]
        if missing:
            used = "; ".join(f"{r} (for {', '.join(mapping.uses(r))})" for r in missing)
            problems.append(FileProblem(path, f"lacks column(s) that mapping {mapping.path} reads: {used}",
                                        "Add them to the export, or point the mapping at the columns the export has "
                                        "(`segment-mart map preview` shows the result)."))
    for rule in mapping.rules:
        if rule.lookup and not (drop_dir / rule.lookup.file).is_file():
            problems.append(FileProblem(drop_dir / rule.lookup.file,
                                        f"is missing (mapping {mapping.path} looks up {rule.column} in it)",
                                        "Deliver it with the night's drop, or fix `lookup: file` in the mapping."))
    if problems:
        return None, problems
    bound = BoundMapping(mapping, path, drop_dir, header, quote_problems)
    return LandingFile(mapping.entity, path, mapping.input_format, mapping.output_columns, has_nul, mapping=bound), []


# --------------------------------------------------------------------------- preview
