"""The outbound configuration: ``config/outbound.yml`` (setting ``outbound_config``, environment
``SEGMENT_MART_OUTBOUND_CONFIG``), the one place that says which CRMs are written, with which field
names and external id, in which mode, and where the alerts go. Credentials are never in it: each is
read from the environment variable it names, or, inside an Airflow task, from the Airflow connection
it names (docs/outbound.md)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipelines.errors import DataProblem

#: The values the write-back keeps on a CRM account, in file order (docs/outbound.md).
CRM_VALUES = ("tier", "tier_reason", "health_score", "health_status", "weakest_health_component", "arr",
              "next_renewal_date", "open_actions")
MODE_ENV = "SEGMENT_MART_CRM_MODE"


class OutboundConfigError(DataProblem, ValueError):
    """The outbound configuration file is missing or wrong (a data-like error: never retried)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Retries(_Strict):
    total: int = Field(default=5, ge=0)
    backoff_factor: float = Field(default=1.0, ge=0)
    max_backoff_seconds: float = Field(default=60.0, gt=0)

    def urllib3(self):
        """The urllib3 Retry both vendors' clients take: 429 and 5xx, every method (an upsert is
        safe to repeat), Retry-After honoured."""
        from urllib3.util.retry import Retry

        return Retry(total=self.total, backoff_factor=self.backoff_factor, backoff_max=self.max_backoff_seconds,
                     status_forcelist=(429, 500, 502, 503, 504), allowed_methods=None,
                     respect_retry_after_header=True, raise_on_status=False)


class SalesforceConnection(_Strict):
    instance_url_env: str = "SEGMENT_MART_SALESFORCE_INSTANCE_URL"
    access_token_env: str = "SEGMENT_MART_SALESFORCE_ACCESS_TOKEN"
    ca_bundle_env: str | None = "SEGMENT_MART_SALESFORCE_CA_BUNDLE"
    airflow_conn_id: str | None = None


class Salesforce(_Strict):
    object: str = "Account"
    external_id_field: str
    api_version: str = "62.0"
    poll_seconds: float = Field(default=2.0, gt=0)
    fields: dict[str, str]
    connection: SalesforceConnection = SalesforceConnection()

    @model_validator(mode="after")
    def _every_value_mapped(self) -> Salesforce:
        _check_mapping("crm.salesforce.fields", self.fields)
        return self


class HubSpotConnection(_Strict):
    access_token_env: str = "SEGMENT_MART_HUBSPOT_ACCESS_TOKEN"
    host_env: str | None = "SEGMENT_MART_HUBSPOT_HOST"
    ca_bundle_env: str | None = "SEGMENT_MART_HUBSPOT_CA_BUNDLE"
    airflow_conn_id: str | None = None


class HubSpot(_Strict):
    object: Literal["companies"] = "companies"
    id_property: str
    batch_size: int = Field(default=100, ge=1, le=100)
    properties: dict[str, str]
    connection: HubSpotConnection = HubSpotConnection()

    @model_validator(mode="after")
    def _every_value_mapped(self) -> HubSpot:
        _check_mapping("crm.hubspot.properties", self.properties)
        return self


class Crm(_Strict):
    mode: Literal["dry_run", "files", "push"] = "dry_run"
    targets: list[Literal["salesforce", "hubspot"]] = Field(default_factory=list)
    salesforce: Salesforce | None = None
    hubspot: HubSpot | None = None

    @model_validator(mode="after")
    def _targets_configured(self) -> Crm:
        for target in self.targets:
            if getattr(self, target) is None:
                raise ValueError(f"crm.targets lists {target} but there is no crm.{target} section")
        return self


class SlackConnection(_Strict):
    webhook_url_env: str = "SEGMENT_MART_SLACK_WEBHOOK_URL"
    ca_bundle_env: str | None = "SEGMENT_MART_SLACK_CA_BUNDLE"
    airflow_conn_id: str | None = None


class Alerts(_Strict):
    channel: Literal["slack", "none"] = "none"
    slack: SlackConnection = SlackConnection()
    max_actions_per_owner: int = Field(default=10, ge=1)


class Outbound(_Strict):
    retries: Retries = Retries()
    crm: Crm = Crm()
    alerts: Alerts = Alerts()


def _check_mapping(where: str, mapping: dict[str, str]) -> None:
    unknown = sorted(set(mapping) - set(CRM_VALUES))
    missing = [v for v in CRM_VALUES if v not in mapping]
    if unknown or missing:
        raise ValueError(f"{where} must map exactly {', '.join(CRM_VALUES)}"
                         + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                         + (f"; missing: {', '.join(missing)}" if missing else ""))


def load(path: Path) -> Outbound:
    """The configuration in ``path``, validated; the mode overridden by ``SEGMENT_MART_CRM_MODE``."""
    import yaml

    try:
        raw: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise OutboundConfigError(f"outbound configuration {path} does not exist: copy config/outbound.yml "
                                  "there or point SEGMENT_MART_OUTBOUND_CONFIG at it") from None
    except yaml.YAMLError as exc:
        raise OutboundConfigError(f"outbound configuration {path} is not valid YAML: {exc}") from exc
    mode = os.environ.get(MODE_ENV)
    if mode:
        raw.setdefault("crm", {})["mode"] = mode
    try:
        return Outbound.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise OutboundConfigError(f"outbound configuration {path}: {problems} (docs/outbound.md)") from exc


def secret(env: str | None, conn_id: str | None, part: str, what: str) -> str:
    """A credential: the environment variable ``env``, else ``part`` (host, password, login) of the
    Airflow connection ``conn_id`` (inside an Airflow task); raises naming both when neither has it."""
    value = os.environ.get(env) if env else None
    if value:
        return value
    if conn_id:
        value = _airflow_connection_part(conn_id, part)
        if value:
            return value
    where = " or ".join(filter(None, [f"environment variable {env}" if env else None,
                                      f"Airflow connection {conn_id!r} ({part})" if conn_id else None]))
    raise OutboundConfigError(f"no {what}: set {where} (docs/outbound.md)")


def optional(env: str | None) -> str | None:
    return os.environ.get(env) or None if env else None


def _airflow_connection_part(conn_id: str, part: str) -> str | None:
    """Inside an Airflow task only: a CLI run must not import Airflow (seconds, and Airflow reads and
    may create its own home and reconfigures logging), so Airflow is asked only when the process has
    imported its task SDK already."""
    if "airflow.sdk" not in sys.modules:
        return None
    try:
        from airflow.sdk import Connection

        conn = Connection.get(conn_id)
    except Exception:  # not in an Airflow task, or no such connection
        return None
    return getattr(conn, part, None) or None
