"""Alerts: the morning digest of a published night and the alert of a failed one, posted to a Slack
incoming webhook (config/outbound.yml ``alerts``; docs/outbound.md) and always written under
``<home>/alerts/<run_date>/`` (``digest.json``, ``failure.json``).

- **digest**: the published status (run date, marts and rows, quality warnings, dataset checksum,
  report path), the action feed's night (opened, closed, open, overdue) and the night's new actions
  of the priorities in dbt var ``alert_action_priorities`` per owner, and what the CRM write-back did;
- **failure**: the step that failed, the cause (the error's first lines) and the command that fixes it
  (:func:`fix_command`); the DAG adds the Airflow command that reruns the failed task.

A message identical to one already sent for the night is not sent again (``sent.jsonl``): a rerun of a
night that publishes the same content does not post the same digest twice. Slack answers 429 and 5xx
are retried with backoff, honouring Retry-After; other errors (400 invalid_payload, 403, 404
no_service, 410 channel_is_archived) are not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import ssl
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.errors import Transient
from pipelines.outbound.config import Outbound, Retries, optional, secret
from pipelines.outbound.config import load as load_config

if TYPE_CHECKING:
    from pipelines.settings import Settings

log = logging.getLogger(__name__)


class AlertFailed(Transient, RuntimeError):
    """The alert channel refused the message or stayed unreachable after the retries."""


@dataclass
class Message:
    kind: str  # digest | failure
    run_date: dt.date
    text: str  # plain text: the Slack fallback and what is logged
    blocks: list[dict[str, Any]]

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}


# --------------------------------------------------------------------------- the digest


def digest(settings: Settings, run_date: dt.date, *, config: Outbound | None = None) -> Message:
    """The morning digest of ``run_date`` from the published release (which must be that night's)."""
    from pipelines.lab.policy_lab import dbt_var
    from pipelines.release import open_published, read_manifest

    config = config or load_config(settings.outbound_config)
    manifest = read_manifest(settings)
    if manifest is None or manifest.run_date != run_date:
        published = "nothing" if manifest is None else str(manifest.run_date)
        raise AlertFailed(f"no digest for {run_date}: the published release is for {published}; "
                          f"publish the night first (`segment-mart run --run-date {run_date}`)")
    priorities = list(dbt_var(settings, "alert_action_priorities"))
    con = open_published(settings)
    try:
        counts = con.execute("""
            select
                count(*) filter (where is_opened_tonight),
                count(*) filter (where action_status = 'closed'),
                count(*) filter (where action_status = 'open'),
                count(*) filter (where is_overdue)
            from marts.fct_account_actions_daily where as_of_date = ?
        """, [run_date]).fetchone()
        new = con.execute(f"""
            select coalesce(csm_owner_id, 'unassigned') as owner, account_id, tier_name, action_type, priority,
                   due_date, action_reason
            from marts.fct_account_actions_daily
            where as_of_date = ? and is_opened_tonight and priority in ({', '.join('?' for _ in priorities)})
            order by owner = 'unassigned' desc, owner, priority_rank, due_date, account_id, action_type
        """, [run_date, *priorities]).fetchall() if priorities else []
    finally:
        con.close()
    opened, closed, open_now, overdue = (int(c or 0) for c in counts)
    quality = manifest.quality or {}
    warnings = quality.get("warnings") or []
    warnings = len(warnings) if isinstance(warnings, list) else int(warnings)
    rows = sum(m.rows for m in manifest.marts.values())
    head = (f"Segment mart {run_date}: published {len(manifest.marts)} marts ({rows:,} rows), "
            f"quality gate passed{f' with {warnings} warning(s)' if warnings else ''}; "
            f"dataset checksum {manifest.dataset_checksum[:12]}.")
    feed = (f"Actions: {opened} opened, {closed} closed tonight; {open_now} open ({overdue} overdue). "
            f"New {'/'.join(priorities) or 'no'}-priority actions: {len(new)}.")
    per_owner: dict[str, list[tuple]] = defaultdict(list)
    for row in new:
        per_owner[row[0]].append(row)
    limit = config.alerts.max_actions_per_owner
    owner_lines = []
    for owner, actions in per_owner.items():
        lines = [f"*{owner}* ({len(actions)} new)"]
        for _, account, tier, kind, priority, due, reason in actions[:limit]:
            lines.append(f"• {account} ({tier}) {kind.replace('_', ' ')}, {priority}, due {due}: {reason}")
        if len(actions) > limit:
            lines.append(f"• … and {len(actions) - limit} more (marts.fct_account_actions_daily)")
        owner_lines.append("\n".join(lines))
    crm = _crm_lines(settings, run_date)
    report = f"Report: {settings.published / 'report.html'}"
    text = "\n".join([head, feed, *owner_lines, *crm, report])
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": f"Segment mart {run_date}"}},
              _section(head), _section(feed), *(_section(o) for o in owner_lines[:40]),
              *([_section("\n".join(crm))] if crm else []), _section(report)]
    return Message("digest", run_date, text, blocks)


def _crm_lines(settings: Settings, run_date: dt.date) -> list[str]:
    out = []
    for path in sorted((settings.home / "crm").glob(f"*/{run_date.isoformat()}/sync.json")):
        sync = json.loads(path.read_text())
        out.append(f"CRM {sync['target']} ({sync['mode']}): {len(sync['changed'])} changed account(s), "
                   f"{len(sync['synced'])} synced, {len(sync['failed'])} not accepted.")
    return out


# --------------------------------------------------------------------------- failures

#: The command that fixes a failure, by the error's type (the error's own message says what was
#: wrong and where). ``{d}`` is the run date, ``{landing}`` the night's drop folder.
FIXES: dict[str, str] = {
    "SourceRejected": "deliver the corrected files to {landing} (the error names them), then "
                      "`segment-mart run --run-date {d}`",
    "QualityGateFailed": "read the quality report named above, fix the data or the rule, then "
                         "`segment-mart run --run-date {d}`",
    "NightOutOfOrder": "restate it and every later night: `segment-mart replay --from-date {d}`",
    "NightNotReady": "`segment-mart ingest --run-date {d}`, then `segment-mart run --run-date {d}`",
    "DbtFailed": "fix the model or the data dbt names above, then `segment-mart run --run-date {d}`",
    "PublishRefused": "`segment-mart audit --run-date {d}`, then `segment-mart publish --run-date {d}`",
    "RunInProgress": "wait for the running night to finish, then `segment-mart run --run-date {d}`",
    "WarehouseLocked": "wait for the process holding the warehouse, then `segment-mart run --run-date {d}`",
    "CrmSyncFailed": "the night is published; send what is left: `segment-mart crm-sync --run-date {d}`",
    "CrmSyncRefused": "the night is published; `segment-mart crm-sync` the night the error names",
    "OutboundConfigError": "fix config/outbound.yml or the credentials it names (docs/outbound.md), then "
                           "`segment-mart crm-sync --run-date {d}`",
}
DEFAULT_FIX = "`segment-mart run --run-date {d}` (reruns the whole night; every step replaces what it wrote)"


def fix_command(settings: Settings, error_type: str, run_date: dt.date) -> str:
    return FIXES.get(error_type, DEFAULT_FIX).format(d=run_date, landing=settings.drop_dir(run_date))


def failure(settings: Settings, run_date: dt.date, step: str, error_type: str, error: str,
            extra_fix: str | None = None) -> Message:
    """The alert of a failed night: the step, the cause and the command that fixes it."""
    cause = "\n".join(str(error).strip().splitlines()[:12])
    fix = fix_command(settings, error_type, run_date)
    head = f"Segment mart {run_date} FAILED at {step}: {error_type}. The last good publish is unchanged."
    lines = [head, f"Cause: {cause}", f"Fix: {fix}"]
    if extra_fix:
        lines.append(extra_fix)
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": f"Segment mart {run_date} failed"}},
              _section(head), _section(f"*Cause*\n```{cause[:2800]}```"), _section(f"*Fix*: {fix}"),
              *([_section(extra_fix)] if extra_fix else [])]
    return Message("failure", run_date, "\n".join(lines), blocks)


# --------------------------------------------------------------------------- sending


def send(settings: Settings, message: Message, *, config: Outbound | None = None) -> str:
    """Write the message under ``<home>/alerts/<run_date>/`` and post it to the channel; returns
    ``sent``, ``already sent``, ``written`` (channel none) or ``not configured``."""
    config = config or load_config(settings.outbound_config)
    folder = settings.home / "alerts" / message.run_date.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{message.kind}.json").write_text(json.dumps(message.payload(), indent=2) + "\n")
    log.info("alert (%s) for %s:\n%s", message.kind, message.run_date, message.text)
    if config.alerts.channel == "none":
        return "written"
    key = hashlib.sha256(f"{message.kind}|{message.run_date}|{message.text}".encode()).hexdigest()
    ledger = settings.home / "alerts" / "sent.jsonl"
    sent = {json.loads(line)["key"] for line in ledger.read_text().splitlines()} if ledger.exists() else set()
    if key in sent:
        log.info("alert (%s) for %s already sent; not sent again", message.kind, message.run_date)
        return "already sent"
    slack = config.alerts.slack
    try:
        url = secret(slack.webhook_url_env, slack.airflow_conn_id, "host", "Slack webhook URL")
    except Exception as exc:
        log.warning("alert (%s) for %s not sent: %s", message.kind, message.run_date, exc)
        return "not configured"
    post_json(url, message.payload(), config.retries, optional(slack.ca_bundle_env))
    with ledger.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"key": key, "kind": message.kind, "run_date": message.run_date.isoformat(),
                            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}) + "\n")
    return "sent"


def post_json(url: str, payload: dict[str, Any], retries: Retries, ca_bundle: str | None = None,
              sleep=time.sleep) -> str:
    """POST JSON; retry 429 and 5xx (Retry-After honoured, else exponential backoff); raise
    :class:`AlertFailed` on any other error or when the retries run out."""
    data = json.dumps(payload).encode()
    context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None
    attempt = 0
    while True:
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as response:
                return response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", "replace")
            if exc.code not in (429, 500, 502, 503, 504) or attempt >= retries.total:
                raise AlertFailed(f"the alert webhook answered HTTP {exc.code} {body!r} "
                                  f"(after {attempt + 1} attempt(s))") from None
            wait = _retry_after(exc.headers.get("Retry-After"))
            if wait is None:
                wait = min(retries.max_backoff_seconds, retries.backoff_factor * 2 ** attempt)
        except urllib.error.URLError as exc:
            if attempt >= retries.total:
                raise AlertFailed(f"the alert webhook is unreachable: {exc.reason}") from None
            wait = min(retries.max_backoff_seconds, retries.backoff_factor * 2 ** attempt)
        attempt += 1
        sleep(wait)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(value) - dt.datetime.now(dt.UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


