"""The extract contract: one schema per entity, used by the loader, the generator and tests.

Landing layout: ``<landing>/<run_date>/<source>/<entity>.<csv|parquet|jsonl>``.
CRM and billing drops are full snapshots as of the run date; usage drops hold that
day's events and may contain late events of earlier days. Extra columns are kept.
The human-readable version of this module is ``docs/extract-contract.md``; a test
checks that the two agree. ``segment-mart contract`` prints it as JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Literal

ColumnType = Literal["string", "integer", "decimal", "boolean", "date", "timestamp"]

#: DuckDB type each contract type is loaded as.
DUCKDB_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "decimal": "DECIMAL(18,2)",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}

#: SQL type of each contract type in the dbt sources' ``data_type`` (one name DuckDB and Spark
#: both read; dbt_project/models/staging/_staging__sources.yml is generated from this module:
#: pipelines/build/dbt_sources.py).
SQL_TYPES: dict[str, str] = {
    "string": "string",
    "integer": "bigint",
    "decimal": "decimal(18,2)",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}

#: The text spellings of a boolean the loader accepts, in any letter case (the contract, not
#: DuckDB's cast rules, decides: pipelines/intake/row_checks.py). Exports write true/false (HubSpot,
#: Stripe), TRUE/FALSE (Excel), 1/0 (Salesforce reports) or yes/no; anything else is quarantined.
BOOLEAN_TRUE = ("true", "t", "yes", "y", "1")
BOOLEAN_FALSE = ("false", "f", "no", "n", "0")

FILE_FORMATS = ("csv", "parquet", "jsonl")


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool = True  # a value must be present (not null / not empty)
    description: str = ""
    allowed: tuple[str, ...] | None = None  # accepted values (compared lower-case)
    min_value: float | None = None
    max_value: float | None = None
    pattern: str | None = None  # regular expression the text value must match
    optional_column: bool = False  # the column itself may be absent from the file
    not_after_run_date: bool = False  # a value after the run date (+ tolerance) is future-dated
    #: For an optional column: what the mart uses when the column is absent (or a value is
    #: empty), and what that does. Listed in the docs and in the night's reports.
    default: str = ""


@dataclass(frozen=True)
class RowCheck:
    """A check across columns of one row: ``sql`` must be true (or null) for a valid row."""

    name: str
    column: str  # the column the quarantine row names
    sql: str  # over the typed columns
    reason: str


@dataclass(frozen=True)
class Entity:
    source: str
    name: str
    key: str  # unique inside a drop: a column, or for a composite key the columns joined by ", "
    #: snapshot: full state as of the run date; events: deduplicated across drops, first drop wins;
    #: aggregates: counts per key, a later drop's row for a key replaces an earlier drop's
    kind: Literal["snapshot", "events", "aggregates"]
    description: str
    columns: tuple[Column, ...]
    row_checks: tuple[RowCheck, ...] = field(default_factory=tuple)
    #: The mart cannot run without it: never switched off (setting ``entities_in_use``).
    always_in_use: bool = False
    #: In use when the setting ``entities_in_use`` is not set.
    in_use_by_default: bool = True
    #: What the mart does without this entity (docs, the quarantine and quality reports, the
    #: published report). Empty for the entities that are always in use.
    when_off: str = ""
    #: Another shape of the same data (``usage/daily_counts`` of ``usage/events``): while one of the
    #: two is in use, the other one being off lacks nothing, and the reports do not list it.
    alternative_to: str = ""

    @property
    def qualified(self) -> str:
        return f"{self.source}/{self.name}"

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The columns of the key (one, or several for a composite key)."""
        return tuple(k.strip() for k in self.key.split(","))

    @property
    def raw_table(self) -> str:
        """Table in the warehouse's ``raw`` schema holding this entity."""
        return f"{self.source}__{self.name}"

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


ISO_COUNTRY = r"^[A-Za-z]{2}$"
ISO_CURRENCY = r"^[A-Za-z]{3}$"

ENTITIES: tuple[Entity, ...] = (
    Entity(
        source="crm",
        name="accounts",
        key="account_id",
        kind="snapshot",
        description="One row per customer account, as the CRM knows it on the run date.",
        columns=(
            Column("account_id", "string", description="Stable account key, shared by every source."),
            Column("account_name", "string"),
            Column("industry", "string", description="Free-text industry; mapped to industry groups in dbt."),
            Column(
                "employee_count", "integer", required=False, optional_column=True, min_value=0,
                description="Employees of the customer company.",
                default="unknown: `company_size_band` is `unknown` and the licence share of employees is "
                "null, so growth potential rests on product lines alone (`unknown` when they decide nothing)",
            ),
            Column("country", "string", pattern=ISO_COUNTRY, description="ISO 3166-1 alpha-2 code (upper-cased on load)."),
            Column("created_date", "date", description="When the account was created in the CRM."),
            Column(
                "csm_owner_id", "string", required=False, optional_column=True,
                description="Assigned CSM; empty when unassigned.",
                default="unassigned: the account is in no CSM's book",
            ),
            Column(
                "is_marquee_logo", "boolean", required=False, optional_column=True,
                description="Brand the company wants to be associated with.",
                default="false: no strategic points for a marquee logo",
            ),
            Column(
                "is_reference", "boolean", required=False, optional_column=True,
                description="Agreed to act as a reference.",
                default="false: no strategic points for a reference, advocacy segment never `active`",
            ),
            Column(
                "is_partner", "boolean", required=False, optional_column=True,
                description="Partnership / co-selling relationship.",
                default="false: no strategic points for a partner",
            ),
            Column(
                "parent_account_id", "string", required=False, optional_column=True,
                description="Parent company account, if any.",
                default="no parent: no account has child accounts (complexity)",
            ),
        ),
        always_in_use=True,
    ),
    Entity(
        source="crm",
        name="activities",
        key="activity_id",
        kind="snapshot",
        description="Customer-success touchpoints (full history to the run date).",
        columns=(
            Column("activity_id", "string"),
            Column("account_id", "string"),
            Column(
                "activity_type",
                "string",
                allowed=("qbr", "check_in", "email", "call", "training", "escalation"),
            ),
            Column("occurred_at", "timestamp", description="UTC."),
            Column("is_customer_responded", "boolean"),
        ),
        when_off="health component `cs_engagement` is missing for every account (its weight goes to the "
        "other components); the engagement segment is `unknown`",
    ),
    Entity(
        source="crm",
        name="support_cases",
        key="case_id",
        kind="snapshot",
        description="Support cases (full history to the run date).",
        columns=(
            Column("case_id", "string"),
            Column("account_id", "string"),
            Column("opened_at", "timestamp", description="UTC."),
            Column("closed_at", "timestamp", required=False, description="UTC; empty while open."),
            Column("priority", "string", allowed=("urgent", "high", "normal", "low")),
            Column("status", "string", allowed=("open", "pending", "solved", "closed")),
            Column("csat", "integer", required=False, min_value=1, max_value=5),
        ),
        row_checks=(
            RowCheck(
                "closed_before_opened",
                "closed_at",
                "closed_at is null or closed_at >= opened_at",
                "closed_at is before opened_at",
            ),
        ),
        when_off="health component `support` is missing for every account (its weight goes to the other "
        "components); the support-needs segment is `unknown`",
    ),
    Entity(
        source="crm",
        name="nps_responses",
        key="response_id",
        kind="snapshot",
        description="NPS survey answers (full history to the run date).",
        columns=(
            Column("response_id", "string"),
            Column("account_id", "string"),
            Column("responded_at", "timestamp", description="UTC."),
            Column("score", "integer", min_value=0, max_value=10),
        ),
        when_off="health component `sentiment` is missing for every account (its weight goes to the other "
        "components); the advocacy segment rests on the CRM's reference flag alone",
    ),
    Entity(
        source="billing",
        name="subscriptions",
        key="subscription_id",
        kind="snapshot",
        description=(
            "One row per subscription period. `amount` is the price per billing interval before "
            "tax: for the whole subscription, or per seat when `is_per_seat` is true (then MRR = "
            "amount x seats / months in the interval)."
        ),
        columns=(
            Column("subscription_id", "string", description="Key of the period (one row per period)."),
            Column("account_id", "string"),
            Column("plan", "string", description="Plan name, e.g. free, trial, starter, growth, enterprise."),
            Column("product_line", "string", description="Product line the plan belongs to."),
            Column("start_date", "date", description="First day of service."),
            Column("end_date", "date", required=False, description="Exclusive; empty = open-ended."),
            Column("billing_interval", "string", allowed=("month", "quarter", "year")),
            Column("amount", "decimal", min_value=0, description="Per interval, before tax."),
            Column("currency", "string", pattern=ISO_CURRENCY, description="ISO 4217 code (upper-cased on load)."),
            Column("seats", "integer", min_value=0, description="Licensed quantity."),
            Column(
                "is_per_seat",
                "boolean",
                required=False,
                optional_column=True,
                description="True when `amount` is per seat; absent or empty = false.",
                default="false: `amount` is the price of the whole subscription",
            ),
        ),
        row_checks=(
            RowCheck(
                "end_before_start",
                "end_date",
                "end_date is null or end_date > start_date",
                "end_date is not after start_date (end_date is exclusive)",
            ),
        ),
        always_in_use=True,
    ),
    Entity(
        source="billing",
        name="invoices",
        key="invoice_id",
        kind="snapshot",
        description="Invoices issued to the run date.",
        columns=(
            Column("invoice_id", "string"),
            Column("account_id", "string"),
            Column("issued_date", "date"),
            Column("due_date", "date"),
            Column("amount", "decimal", min_value=0),
            Column("currency", "string", pattern=ISO_CURRENCY),
            Column("status", "string", allowed=("paid", "open", "void", "uncollectible")),
            Column("paid_date", "date", required=False, description="Empty unless paid."),
        ),
        row_checks=(
            RowCheck(
                "due_before_issued",
                "due_date",
                "due_date >= issued_date",
                "due_date is before issued_date",
            ),
        ),
        when_off="health component `billing` is missing for every account (its weight goes to the other "
        "components); no MRR is suspended for past-due invoices",
    ),
    Entity(
        source="usage",
        name="events",
        key="event_id",
        kind="events",
        description=(
            "Product-usage events of the run date, plus late events of earlier days. Deduplicated on "
            "event_id across drops: an event is counted once, under the first drop that held it."
        ),
        columns=(
            Column("event_id", "string"),
            Column("account_id", "string"),
            Column("user_id", "string", required=False,
                   description="Who produced the event; empty for events without a known user (they count as "
                   "usage, not as active users)."),
            Column("event_name", "string"),
            Column("feature", "string", required=False),
            Column(
                "occurred_at",
                "timestamp",
                not_after_run_date=True,
                description="UTC. At most SEGMENT_MART_FUTURE_EVENT_TOLERANCE_HOURS (default 24) after "
                "the end of the run date.",
            ),
        ),
        when_off="health component `product_usage` is missing for every account (its weight goes to the "
        "other components); the usage segment is `unknown` and no usage measure is computed (unless "
        "`usage/daily_counts` is in use: then the usage measures come from the daily counts)",
    ),
    Entity(
        source="usage",
        name="daily_counts",
        key="account_id, subscription_id, usage_date, feature",
        kind="aggregates",
        description=(
            "Product usage as daily aggregates, as product-analytics exports and warehouse rollups deliver "
            "it: one row per account (or subscription), day and feature, with the number of events and, "
            "when the tool counts them, the distinct active users. A drop holds the days it covers (the "
            "first drop may hold the history); a later drop's row for the same key replaces an earlier "
            "drop's (a rollup that restates recent days). The usage measures are defined for both shapes "
            "(doc block usage_shapes in dbt_project/models/intermediate/usage/_usage__docs.md)."
        ),
        columns=(
            Column("account_id", "string", required=False, optional_column=True,
                   description="Account key; give it or `subscription_id` (one of the two on every row)."),
            Column("subscription_id", "string", required=False, optional_column=True,
                   description="Subscription key: the row counts for the subscription's account "
                   "(billing/subscriptions as of the run date)."),
            Column("usage_date", "date", not_after_run_date=True,
                   description="UTC day the usage happened on."),
            Column("feature", "string", required=False,
                   description="Feature used; empty = usage not attributed to a feature (e.g. sign-ins)."),
            Column("event_count", "integer", min_value=0, description="Events of the key on the day."),
            Column("active_users", "integer", required=False, optional_column=True, min_value=0,
                   description="Distinct users with an event of the key on the day.",
                   default="no user counts: seat utilisation and stickiness are missing for every account "
                   "and product usage rests on breadth, trend and intensity"),
        ),
        row_checks=(
            RowCheck(
                "no_account_key",
                "account_id",
                "account_id is not null or subscription_id is not null",
                "neither account_id nor subscription_id is given",
            ),
        ),
        in_use_by_default=False,
        alternative_to="usage/events",
        when_off="nothing, unless `usage/events` is off too (then health component `product_usage` is missing "
        "for every account and the usage segment is `unknown`)",
    ),
)

SOURCES: tuple[str, ...] = tuple(dict.fromkeys(e.source for e in ENTITIES))

#: Columns the loader adds to every raw row.
LOAD_METADATA_COLUMNS: dict[str, str] = {
    "_run_date": "DATE",
    "_source_file": "VARCHAR",
    "_source_line": "BIGINT",
    "_loaded_at": "TIMESTAMP",
}


#: Column the loader adds to every raw row of a snapshot entity: null for a row delivered on the
#: night; for a row quarantined on the night, the run date of the earlier drop whose row the key
#: keeps instead (carried forward; docs/extract-contract.md).
CARRIED_FORWARD_COLUMN = "_carried_forward_from"
SNAPSHOT_METADATA_COLUMNS: dict[str, str] = {CARRIED_FORWARD_COLUMN: "DATE"}

#: What each metadata column holds (the dbt sources' column descriptions, pipelines/build/dbt_sources.py).
METADATA_DESCRIPTIONS: dict[str, str] = {
    "_run_date": "Run date of the drop the row was loaded from.",
    "_source_file": "Landing file the row came from.",
    "_source_line": "Line of the row in that file (CSV: header is line 1).",
    "_loaded_at": "UTC time of the load.",
    CARRIED_FORWARD_COLUMN: "Null for a row the drop delivered. For a row quarantined on this drop, the run date "
    "of the earlier drop whose row its key keeps (carried forward by the loader; docs/extract-contract.md).",
}

#: Column names a file may not use: the loader's own (above) and its working names.
RESERVED_PREFIX = "__sm_"


def reserved_names(columns: tuple[str, ...] | list[str]) -> list[str]:
    """The columns of a file that collide with the loader's own names (compared in lower case)."""
    own = {n.lower() for n in (*LOAD_METADATA_COLUMNS, *SNAPSHOT_METADATA_COLUMNS)}
    return [c for c in columns if c.lower() in own or c.lower().startswith(RESERVED_PREFIX)]


def entities_of(source: str) -> tuple[Entity, ...]:
    found = tuple(e for e in ENTITIES if e.source == source)
    if not found:
        raise ValueError(f"unknown source {source!r}; the contract knows {', '.join(SOURCES)}")
    return found


def get_entity(source: str, name: str) -> Entity:
    for e in ENTITIES:
        if e.source == source and e.name == name:
            return e
    raise KeyError(f"{source}/{name}")


def is_other_shape(entity: Entity, in_use: Iterable[str]) -> bool:
    """Is ``entity`` (off) another shape of data an entity in use delivers (``alternative_to``)?"""
    wanted = set(in_use)
    return (entity.alternative_to in wanted) or any(
        e.alternative_to == entity.qualified and e.qualified in wanted for e in ENTITIES)


def default_in_use() -> tuple[str, ...]:
    """The entities in use when the setting ``entities_in_use`` is not set (qualified names)."""
    return tuple(e.qualified for e in ENTITIES if e.always_in_use or e.in_use_by_default)


def check_in_use(names: Iterable[str]) -> tuple[str, ...]:
    """Validate a declaration of the entities a company delivers (``<source>/<entity>`` names,
    any letter case); returns them in the contract's order. ValueError names what is wrong."""
    wanted = {n.strip().lower() for n in names if n.strip()}
    known = {e.qualified for e in ENTITIES}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(
            f"unknown entit{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}: the contract knows "
            f"{', '.join(e.qualified for e in ENTITIES)} (docs/extract-contract.md)")
    required = [e.qualified for e in ENTITIES if e.always_in_use and e.qualified not in wanted]
    if required:
        raise ValueError(
            f"{', '.join(required)} cannot be switched off (the mart is built from "
            f"{'it' if len(required) == 1 else 'them'}): add {'it' if len(required) == 1 else 'them'} to "
            "SEGMENT_MART_ENTITIES_IN_USE")
    return tuple(e.qualified for e in ENTITIES if e.qualified in wanted)


def as_json() -> list[dict]:
    """The contract as plain data (``segment-mart contract``)."""
    return [asdict(e) | {"raw_table": f"raw.{e.raw_table}", "lake_path": f"raw/{e.source}/{e.name}"}
            for e in ENTITIES]


def _rule(c: Column) -> str:
    parts = []
    if c.allowed:
        parts.append("one of " + ", ".join(f"`{v}`" for v in c.allowed))
    if c.pattern:
        parts.append(f"matches `{c.pattern}`")
    if c.min_value is not None:
        parts.append(f">= {c.min_value:g}")
    if c.max_value is not None:
        parts.append(f"<= {c.max_value:g}")
    if c.optional_column:
        parts.append("column may be absent")
    return "; ".join(parts)


def as_markdown() -> str:
    """The contract as the page docs/extract-contract.md (kept in step by a test)."""
    out = [
        "# Extract contract",
        "",
        "<!-- Generated by `segment-mart contract --markdown > docs/extract-contract.md`; "
        "the source of truth is pipelines/contract.py. -->",
        "",
        "Every night the source systems deliver one drop:",
        "`<landing>/<run_date>/<source>/<entity>.<csv|parquet|jsonl>` (exactly one file per entity",
        "in use).",
        "",
        "Which entities a company delivers is declared once, in the setting `SEGMENT_MART_ENTITIES_IN_USE`",
        "(docs/configuration.md, \"Entities in use\"); by default every entity below is in use.",
        "`crm/accounts` and `billing/subscriptions` are always in use.",
        "",
        "- CRM and billing files are **full snapshots** as of the run date.",
        "- Usage files hold that day's events and may hold **late events** of earlier days;",
        "  events are deduplicated on `event_id` across drops.",
        "- Usage may come instead (or besides) as **daily counts** (`usage/daily_counts`, off by default):",
        "  a drop holds the days it covers, and a later drop's row for a key (account or subscription,",
        "  day, feature) replaces an earlier drop's.",
        "- A tool's export (Salesforce, Stripe, Segment, ...) may be delivered as it is, with a mapping",
        "  file that turns it into its entity (docs/mappings.md): the same checks and quarantine apply.",
        "- CSV: UTF-8 (a byte-order mark, as Excel's \"CSV UTF-8\" writes, is skipped), comma",
        "  separated, `\"` quoting (a quoted value may span lines), a header row; lines may end in",
        "  LF or CRLF, mixed; an empty field is null; blank lines are skipped. Dates `YYYY-MM-DD`;",
        "  timestamps `YYYY-MM-DD HH:MM:SS` in UTC (ISO 8601 with an offset is converted to UTC);",
        f"  booleans {'/'.join(f'`{v}`' for v in BOOLEAN_TRUE)} for true and "
        f"{'/'.join(f'`{v}`' for v in BOOLEAN_FALSE)} for false, in any letter case",
        "  (anything else is quarantined). JSON Lines: one object per line, UTF-8, blank lines skipped.",
        "  Parquet: columns of a fitting type (an integer, a timestamp, ...) are cast, others read as text.",
        "- Columns beyond the contract are kept (loaded as text); column order and letter case do not",
        "  matter. A column may not be named like the loader's own (`_run_date`, `_source_file`,",
        f"  `_source_line`, `_loaded_at`, or starting with `{RESERVED_PREFIX}`).",
        "- A usage event that is re-delivered keeps its `occurred_at` (the loader finds earlier copies",
        "  by time); events dated more than `SEGMENT_MART_FUTURE_EVENT_TOLERANCE_HOURS` (24) after the",
        "  end of the run date are quarantined as future-dated.",
        "",
        "What the loader does with bad input:",
        "",
        "| defect | outcome |",
        "|---|---|",
        "| unparseable value, missing required value, value outside the allowed set or range, "
        "cross-column rule broken, future-dated event, a NUL byte in a value, key repeated with "
        "different content inside one file, malformed CSV record (a wrong number of fields, or a quote "
        "inside a quoted value that is not doubled: `\"Acme \"Big\" Corp\"`, which a CSV parser would "
        "load altered) | the row goes to the quarantine (`raw._quarantine` in the raw lake) with file, "
        "line, column, value, reason and the whole record; the other rows load |",
        "| a row of a snapshot (CRM, billing) quarantined for any reason above, whose key an earlier "
        "drop delivered | the key keeps its row of the latest earlier drop: the loader copies it into "
        f"the night's partition with `{CARRIED_FORWARD_COLUMN}` (the date of the drop that delivered "
        "it), so one bad row never makes an account, a subscription's MRR, a case or an invoice vanish "
        "for a night; a warning in the quarantine and quality reports names the keys, and "
        "`dim_accounts.is_carried_forward` flags the account. A key no earlier drop delivered is not "
        "invented |",
        "| a row repeated with the same values inside one file, an event already loaded by another "
        "drop | loaded once (under the earliest drop); counted as `rows_deduplicated` in the load "
        "audit (`raw._load_audit`) |",
        "| more than `SEGMENT_MART_MAX_QUARANTINE_SHARE` (2%) of one file's rows quarantined, a "
        "snapshot file with no rows | the night stops at `check_quarantine`, before dbt |",
        "| rows read above `SEGMENT_MART_VOLUME_SPIKE_FACTOR` (10) times the median of the previous "
        "nights | a warning in the quarantine and quality reports |",
        "| an entity that is not in use (setting `SEGMENT_MART_ENTITIES_IN_USE`): its file absent, "
        "header-only or not | nothing of it is loaded; the reports list it as off and the health components "
        "fed only by it are missing for every account (below, per entity) |",
        "| missing file, missing required column, empty file, not UTF-8 (UTF-16 is named as such), "
        "not the format its extension says, a line that is not a JSON object, a column named like "
        "the loader's own or twice | the whole source is rejected: nothing of it is loaded, the "
        "error names the file (and line) and what to do |",
        "",
        "Line numbers count physical lines of the file (the CSV header is line 1, JSON Lines and",
        "Parquet rows start at 1), also after quoted values that span lines and after malformed",
        "records.",
        "",
        "Accepted rows land in the raw lake as Parquet, one partition per source, entity and run",
        "date: `<lake>/raw/<source>/<entity>/_run_date=YYYY-MM-DD/` (layout and types:",
        "`pipelines/intake/lake.py`, docs/operations.md).",
        "",
    ]
    for e in ENTITIES:
        out += [
            f"## `{e.qualified}` ({e.kind}) -> `raw.{e.raw_table}`",
            "",
            e.description,
            "",
            f"Key: `{e.key}` (unique inside a drop).",
            "",
            "| column | type | required | rule | description |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| `{c.name}` | {c.type} | {'yes' if c.required else 'no'} | {_rule(c)} | {c.description} |"
            for c in e.columns
        ]
        if e.row_checks:
            out += ["", "Row rules: " + "; ".join(f"`{r.sql}` ({r.reason} otherwise)" for r in e.row_checks) + "."]
        defaults = [c for c in e.columns if c.optional_column and c.default]
        if defaults:
            out += ["", "When a column that may be absent is absent (or a value is empty), the mart uses:", ""]
            out += [f"- `{c.name}`: {c.default}." for c in defaults]
            out += ["", "The night's quality report and the published report list every column a file left "
                    "out, so a default is never mistaken for data."]
        if e.always_in_use:
            out += ["", "Always in use: the mart is built from it (a file with no rows fails the night)."]
        else:
            out += ["", f"May be switched off (setting `SEGMENT_MART_ENTITIES_IN_USE`"
                    f"{'' if e.in_use_by_default else ', off by default'}). When off: {e.when_off}."]
        out.append("")
    out += [
        "## Load metadata",
        "",
        "Every raw row also carries `_run_date` (the drop: the partition folder), `_source_file`,",
        "`_source_line` and `_loaded_at` (UTC); a row of a snapshot also `_carried_forward_from` (null",
        "for a row the night delivered; a carried-forward row keeps the file, line and load time of the",
        "drop that delivered it). The load audit (`<lake>/raw/_load_audit/`, the view `raw._load_audit`",
        "of `pipelines.intake.lake.create_views`) holds, per run date, source and file: rows read, loaded,",
        "quarantined, deduplicated and carried forward, the optional columns the file left out, the",
        "duration, the status (`loaded`, `failed`, or `off` for an entity not in use) or error and the",
        "load id.",
        "",
    ]
    return "\n".join(out)
