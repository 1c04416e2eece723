"""The nightly CRM write-back: the values a customer-success team keeps on a CRM account, written
in the CRM's own upsert format, for the accounts whose values changed since the last successful sync.

For each target of ``crm.targets`` (config/outbound.yml, :mod:`pipelines.outbound.config`):

- **values** per account, read from the published marts for the run date (never the working
  warehouse: only what the quality gate passed leaves the mart): tier and tier reason
  (``fct_account_tiers_daily``), health score, status and weakest component
  (``fct_account_health_daily``), ARR and next renewal (``fct_account_tiers_daily``), and the
  number of open actions (``fct_account_actions_daily``);
- **changed** = accounts whose values differ from what the CRM last accepted (``state.json``: a
  hash of the values per account, moved only by a successful sync), so a rerun of a night sends
  nothing the CRM already has;
- **files** under ``<home>/crm/<target>/<run_date>/``: Salesforce a Bulk API 2.0 ingest CSV
  (``upsert.csv``: the external id field, then the mapped fields; ``#N/A`` sets a field to null),
  HubSpot the body of ``POST /crm/v3/objects/companies/batch/upsert`` (``batch_upsert_NNNN.json``,
  at most ``batch_size`` inputs each, keyed by ``idProperty``); ``sync.json`` says what this run did;
- **mode**: ``dry_run`` (default) writes the files only; ``files`` counts the written files as
  delivered; ``push`` sends them through the vendor's client (simple-salesforce's Bulk 2.0 upsert:
  create job, upload CSV, UploadComplete, poll, successful/failed results; hubspot-api-client's
  companies batch upsert), retrying 429 and 5xx with backoff and honouring Retry-After, and marks
  each account synced once the CRM accepted it (``sync_log.jsonl`` gets one line per account sent
  and accepted). Accounts the CRM refused stay changed and go again on the next run.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import DataProblem, Transient
from pipelines.outbound.config import CRM_VALUES, Crm, Outbound, Retries, optional, secret
from pipelines.outbound.config import load as load_config

if TYPE_CHECKING:
    from pipelines.settings import Settings

log = logging.getLogger(__name__)

#: Bulk API 2.0: the CSV value that sets a field to null (an empty value leaves it unchanged).
SALESFORCE_NULL = "#N/A"


class CrmSyncRefused(DataProblem, RuntimeError):
    """The night cannot be synced (not published yet, or older than what the CRM already holds)."""


class CrmSyncFailed(Transient, RuntimeError):
    """The CRM refused some accounts, or could not be reached after the retries; what it accepted
    stays synced, the rest goes again on the next run (transient: retrying is right)."""


@dataclass
class TargetSync:
    target: str
    mode: str
    run_date: str
    accounts: int = 0  # accounts with values on the run date
    changed: list[str] = field(default_factory=list)  # accounts written to the files
    files: list[str] = field(default_factory=list)
    synced: list[str] = field(default_factory=list)  # accepted by the CRM (push) / delivered (files)
    failed: dict[str, str] = field(default_factory=dict)  # account -> the CRM's error
    requests: list[str] = field(default_factory=list)  # job ids / batch files sent

    def summary(self) -> dict[str, Any]:
        return {"target": self.target, "mode": self.mode, "accounts": self.accounts, "changed": len(self.changed),
                "synced": len(self.synced), "failed": len(self.failed), "files": self.files}


# --------------------------------------------------------------------------- values


def account_values(settings: Settings, run_date: dt.date) -> dict[str, dict[str, str | None]]:
    """``{account_id: {value: text or None}}`` for every account of the published marts on ``run_date``."""
    from pipelines.release import open_published

    con = open_published(settings)
    try:
        rows = con.execute("""
            select
                t.account_id, t.assigned_tier, t.tier_reason, h.health_score, h.health_status,
                h.weakest_component, t.arr_reporting, t.next_renewal_date,
                coalesce(a.open_actions, 0) as open_actions
            from marts.fct_account_tiers_daily as t
            left join marts.fct_account_health_daily as h
                on t.account_id = h.account_id and t.as_of_date = h.as_of_date
            left join (
                select account_id, count(*) as open_actions
                from marts.fct_account_actions_daily
                where as_of_date = ? and action_status = 'open'
                group by account_id
            ) as a on t.account_id = a.account_id
            where t.as_of_date = ?
            order by t.account_id
        """, [run_date, run_date]).fetchall()
    finally:
        con.close()
    if not rows:
        raise CrmSyncRefused(
            f"the published marts hold no accounts for {run_date}: publish the night first "
            f"(`segment-mart run --run-date {run_date}`), then `segment-mart crm-sync --run-date {run_date}`")
    return {r[0]: dict(zip(CRM_VALUES, (_text(v) for v in r[1:]), strict=True)) for r in rows}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def values_hash(values: dict[str, str | None]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- state and files


def target_dir(settings: Settings, target: str) -> Path:
    return settings.home / "crm" / target


def read_state(settings: Settings, target: str) -> dict[str, Any]:
    path = target_dir(settings, target) / "state.json"
    if not path.exists():
        return {"synced_through": None, "accounts": {}}
    return json.loads(path.read_text())


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    os.replace(tmp, path)


def _mark_synced(settings: Settings, target: str, run_date: dt.date, accounts: list[str],
                 values: dict[str, dict[str, str | None]], via: str) -> None:
    """Move the baseline of ``accounts`` to tonight's values and log each (atomic state file)."""
    if not accounts:
        return
    state = read_state(settings, target)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for account in accounts:
        state["accounts"][account] = {"hash": values_hash(values[account]), "run_date": run_date.isoformat()}
    state["synced_through"] = max(filter(None, [state.get("synced_through"), run_date.isoformat()]))
    _write_json(target_dir(settings, target) / "state.json", state)
    with (target_dir(settings, target) / "sync_log.jsonl").open("a", encoding="utf-8") as f:
        for account in accounts:
            f.write(json.dumps({"run_date": run_date.isoformat(), "account_id": account, "via": via,
                                "hash": values_hash(values[account]), "at": now}) + "\n")


def salesforce_csv(cfg: Crm, values: dict[str, dict[str, str | None]], accounts: list[str]) -> str:
    """Bulk API 2.0 ingest CSV: the external id field, then the mapped fields (LF, comma)."""
    sf = cfg.salesforce
    assert sf is not None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([sf.external_id_field, *(sf.fields[v] for v in CRM_VALUES)])
    for account in accounts:
        row = values[account]
        writer.writerow([account, *(SALESFORCE_NULL if row[v] is None else row[v] for v in CRM_VALUES)])
    return out.getvalue()


def hubspot_batches(cfg: Crm, values: dict[str, dict[str, str | None]], accounts: list[str]) -> list[dict[str, Any]]:
    """Bodies of ``POST /crm/v3/objects/companies/batch/upsert``: at most batch_size inputs each,
    keyed by ``idProperty``; an empty string clears a property."""
    hs = cfg.hubspot
    assert hs is not None
    inputs = [{"idProperty": hs.id_property, "id": account,
               "properties": {hs.properties[v]: values[account][v] or "" for v in CRM_VALUES}}
              for account in accounts]
    return [{"inputs": inputs[i:i + hs.batch_size]} for i in range(0, len(inputs), hs.batch_size)]


# --------------------------------------------------------------------------- the sync


def crm_sync(settings: Settings, run_date: dt.date, *, config: Outbound | None = None,
             mode: str | None = None) -> list[TargetSync]:
    """Write (and, in push mode, send) the night's changed accounts to every configured CRM.

    Raises :class:`CrmSyncRefused` for a night that is not published or older than what a CRM
    already holds, :class:`CrmSyncFailed` when a CRM refused accounts or stayed unreachable
    (after every target was tried; what it accepted stays synced)."""
    config = config or load_config(settings.outbound_config)
    cfg = config.crm if mode is None else config.crm.model_copy(update={"mode": Crm.model_validate({"mode": mode}).mode})
    if not cfg.targets:
        log.info("CRM write-back: no targets in %s", settings.outbound_config)
        return []
    values = account_values(settings, run_date)
    results, failures = [], []
    for target in cfg.targets:
        result = _sync_target(settings, run_date, cfg, target, values, config.retries)
        results.append(result)
        if result.failed:
            failures.append(result)
    if failures:
        lines = [f"  {r.target}: {len(r.failed)} account(s) not accepted, e.g. "
                 + "; ".join(f"{a}: {e}" for a, e in list(r.failed.items())[:3]) for r in failures]
        raise CrmSyncFailed(
            f"CRM write-back for {run_date}: the CRM did not accept every account:\n" + "\n".join(lines)
            + f"\nWhat was accepted is synced; the rest goes again with `segment-mart crm-sync --run-date {run_date}` "
            f"(sync records under {settings.home / 'crm'})")
    return results


def _sync_target(settings: Settings, run_date: dt.date, cfg: Crm, target: str,
                 values: dict[str, dict[str, str | None]], retries: Retries) -> TargetSync:
    state = read_state(settings, target)
    through = state.get("synced_through")
    if through and through > run_date.isoformat():
        raise CrmSyncRefused(
            f"{target} already holds the values of {through}: syncing {run_date} would write older values over "
            f"them. Sync {through} or a later night (`segment-mart crm-sync --run-date {through}`)")
    known = state["accounts"]
    changed = [a for a in sorted(values) if known.get(a, {}).get("hash") != values_hash(values[a])]
    result = TargetSync(target, cfg.mode, run_date.isoformat(), accounts=len(values), changed=changed)
    night = target_dir(settings, target) / run_date.isoformat()
    night.mkdir(parents=True, exist_ok=True)
    for old in [*night.glob("upsert*.csv"), *night.glob("batch_upsert_*.json")]:
        old.unlink()  # this run's files say what is unsynced now
    if changed:
        if target == "salesforce":
            path = night / "upsert.csv"
            path.write_text(salesforce_csv(cfg, values, changed), encoding="utf-8")
            result.files.append(str(path))
        else:
            for i, body in enumerate(hubspot_batches(cfg, values, changed), 1):
                path = night / f"batch_upsert_{i:04d}.json"
                _write_json(path, body)
                result.files.append(str(path))
    if cfg.mode == "files":
        result.synced = list(changed)
        _mark_synced(settings, target, run_date, result.synced, values, "files")
    elif cfg.mode == "push" and changed:
        push = _push_salesforce if target == "salesforce" else _push_hubspot
        push(settings, run_date, cfg, result, values, retries)
    _write_json(night / "sync.json", {**asdict(result), "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
    log.info("CRM write-back %s for %s (%s): %d of %d account(s) changed, %d synced, %d failed; files %s",
             target, run_date, cfg.mode, len(changed), len(values), len(result.synced), len(result.failed),
             result.files or "none")
    return result


# --------------------------------------------------------------------------- push: Salesforce


def _push_salesforce(settings: Settings, run_date: dt.date, cfg: Crm, result: TargetSync,
                     values: dict[str, dict[str, str | None]], retries: Retries) -> None:
    """Bulk API 2.0 upsert through simple-salesforce: create the job, upload the CSV, close it
    (UploadComplete), poll until JobComplete, then read successfulResults / failedResults."""
    import requests
    from requests.adapters import HTTPAdapter
    from simple_salesforce import Salesforce

    sf_cfg = cfg.salesforce
    assert sf_cfg is not None
    conn = sf_cfg.connection
    instance_url = secret(conn.instance_url_env, conn.airflow_conn_id, "host", "Salesforce instance URL")
    token = secret(conn.access_token_env, conn.airflow_conn_id, "password", "Salesforce access token")
    ca_bundle = optional(conn.ca_bundle_env)

    class Adapter(HTTPAdapter):
        """Retries (429/5xx, Retry-After) and, when configured, the CA bundle to verify TLS with:
        requests lets REQUESTS_CA_BUNDLE in the environment win over ``Session.verify`` (its
        merge_environment_settings), so the bundle is applied where the request is sent."""

        def send(self, request, **kwargs):
            if ca_bundle:
                kwargs["verify"] = ca_bundle
            return super().send(request, **kwargs)

    session = requests.Session()
    adapter = Adapter(max_retries=retries.urllib3())
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    sf = Salesforce(instance_url=instance_url, session_id=token, version=sf_cfg.api_version, session=session)
    bulk = getattr(sf.bulk2, sf_cfg.object)
    external_id = sf_cfg.external_id_field
    sent = set(result.changed)
    try:
        jobs = bulk.upsert(csv_file=result.files[0], external_id_field=external_id, wait=sf_cfg.poll_seconds)
    except Exception as exc:  # the job could not be created, uploaded or completed
        result.failed = {a: f"{type(exc).__name__}: {exc}" for a in result.changed}
        return
    accepted: list[str] = []
    for job in jobs:
        job_id = job["job_id"]
        result.requests.append(job_id)
        for row in csv.DictReader(io.StringIO(bulk.get_successful_records(job_id))):
            if row.get(external_id) in sent:
                accepted.append(row[external_id])
        for row in csv.DictReader(io.StringIO(bulk.get_failed_records(job_id))):
            if row.get(external_id) in sent:
                result.failed[row[external_id]] = row.get("sf__Error") or "failed"
    for account in sent - set(accepted) - set(result.failed):
        result.failed[account] = "not in the job's successful or failed results (unprocessed)"
    result.synced = sorted(accepted)
    _mark_synced(settings, "salesforce", run_date, result.synced, values, "bulk2 " + ",".join(result.requests))


# --------------------------------------------------------------------------- push: HubSpot


def _push_hubspot(settings: Settings, run_date: dt.date, cfg: Crm, result: TargetSync,
                  values: dict[str, dict[str, str | None]], retries: Retries) -> None:
    """Companies batch upsert through hubspot-api-client, one request per batch file; each batch's
    accepted accounts are marked synced before the next is sent."""
    from hubspot import HubSpot
    from hubspot.crm.companies import (
        BatchInputSimplePublicObjectBatchInputUpsert,
        SimplePublicObjectBatchInputUpsert,
    )

    hs_cfg = cfg.hubspot
    assert hs_cfg is not None
    conn = hs_cfg.connection
    token = secret(conn.access_token_env, conn.airflow_conn_id, "password", "HubSpot access token")
    options: dict[str, Any] = {"access_token": token, "retry": retries.urllib3()}
    host = optional(conn.host_env) or _hubspot_host(conn.airflow_conn_id)
    if host:
        options["host"] = host.rstrip("/")
    ca_bundle = optional(conn.ca_bundle_env)
    if ca_bundle:
        options["ssl_ca_cert"] = ca_bundle
    api = HubSpot(**options).crm.companies.batch_api
    for path in result.files:
        body = json.loads(Path(path).read_text())
        ids = [i["id"] for i in body["inputs"]]
        request = BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
            SimplePublicObjectBatchInputUpsert(id_property=i["idProperty"], id=i["id"], properties=i["properties"])
            for i in body["inputs"]])
        result.requests.append(Path(path).name)
        try:
            response = api.upsert(batch_input_simple_public_object_batch_input_upsert=request)
        except Exception as exc:  # ApiException after the retries, or the connection failed
            status = getattr(exc, "status", None)
            reason = f"HTTP {status}: {getattr(exc, 'body', exc)}" if status else f"{type(exc).__name__}: {exc}"
            result.failed.update({a: reason for a in ids})
            continue
        refused: dict[str, str] = {}
        for error in getattr(response, "errors", None) or []:
            context = error.context or {}
            named = [v for values_ in context.values() for v in values_ if v in ids]
            for account in named or ids:  # an error that names no input fails the whole batch
                refused[account] = f"{error.category}: {error.message}"
        accepted = [a for a in ids if a not in refused]
        result.failed.update(refused)
        result.synced.extend(accepted)
        _mark_synced(settings, "hubspot", run_date, accepted, values, f"batch upsert {Path(path).name}")


def _hubspot_host(conn_id: str | None) -> str | None:
    from pipelines.outbound.config import _airflow_connection_part

    return _airflow_connection_part(conn_id, "host") if conn_id else None
