"""CRM write-back and alerts against a local HTTPS server on 127.0.0.1 that speaks the vendors'
documented shapes (tests/outbound_server.py): Salesforce Bulk API 2.0 ingest jobs, HubSpot companies
batch upsert, a Slack incoming webhook. The values are hand-made here (the e2e test,
tests/e2e/test_actions_nights.py, reads them from real published marts)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest

from pipelines.outbound import alerts, crm
from pipelines.outbound.config import CRM_VALUES, OutboundConfigError, Retries, load
from pipelines.settings import PROJECT_ROOT, get_settings
from tests.outbound_server import TOKEN, OutboundServer

NIGHT = dt.date(2026, 4, 3)


@pytest.fixture
def server(tmp_path):
    with OutboundServer(tmp_path) as srv:
        yield srv


@pytest.fixture
def push_env(server, monkeypatch):
    for name, value in {
        "SEGMENT_MART_SALESFORCE_INSTANCE_URL": server.url, "SEGMENT_MART_SALESFORCE_ACCESS_TOKEN": TOKEN,
        "SEGMENT_MART_SALESFORCE_CA_BUNDLE": str(server.ca_file), "SEGMENT_MART_HUBSPOT_HOST": server.url,
        "SEGMENT_MART_HUBSPOT_ACCESS_TOKEN": TOKEN, "SEGMENT_MART_HUBSPOT_CA_BUNDLE": str(server.ca_file),
        "SEGMENT_MART_SLACK_WEBHOOK_URL": f"{server.url}/services/T0/B0/x",
        "SEGMENT_MART_SLACK_CA_BUNDLE": str(server.ca_file),
    }.items():
        monkeypatch.setenv(name, value)


def config(tmp_path: Path, mode: str = "push", batch_size: int = 100):
    """The shipped config/outbound.yml with test knobs (fast polling, small batches, 1 s backoff)."""
    cfg = load(PROJECT_ROOT / "config" / "outbound.yml")
    cfg.crm.mode = mode
    cfg.crm.salesforce.poll_seconds = 0.05
    cfg.crm.hubspot.batch_size = batch_size
    cfg.retries = Retries(total=3, backoff_factor=0.1, max_backoff_seconds=1)
    return cfg


def values(n: int, **changes) -> dict[str, dict[str, str | None]]:
    out = {f"acc_{i}": {v: f"{v}-{i}" for v in CRM_VALUES} for i in range(n)}
    for account, change in changes.items():
        out[account] = {**out[account], **change}
    return out


def sync(settings, cfg, target, vals, night=NIGHT):
    return crm._sync_target(settings, night, cfg.crm, target, vals, cfg.retries)


def test_shipped_configuration_maps_every_value() -> None:
    cfg = load(PROJECT_ROOT / "config" / "outbound.yml")
    assert cfg.crm.mode == "dry_run", "dry-run is the default"
    assert set(cfg.crm.salesforce.fields) == set(CRM_VALUES) == set(cfg.crm.hubspot.properties)


def test_configuration_errors_name_what_is_wrong(tmp_path: Path, monkeypatch) -> None:
    bad = tmp_path / "outbound.yml"
    bad.write_text("crm:\n  targets: [salesforce]\n  salesforce:\n    external_id_field: X__c\n"
                   "    fields: {tier: T__c}\n")
    with pytest.raises(OutboundConfigError, match=r"crm\.salesforce\.fields must map exactly .*missing: tier_reason"):
        load(bad)
    with pytest.raises(OutboundConfigError, match="does not exist"):
        load(tmp_path / "nope.yml")
    monkeypatch.delenv("SEGMENT_MART_HUBSPOT_ACCESS_TOKEN", raising=False)
    settings = get_settings(home=tmp_path / "home")
    with pytest.raises(OutboundConfigError, match="no HubSpot access token: set environment variable "
                                                  "SEGMENT_MART_HUBSPOT_ACCESS_TOKEN"):
        sync(settings, config(tmp_path), "hubspot", values(1))


def test_upsert_files_hold_the_changed_accounts_in_each_vendors_format(tmp_path: Path) -> None:
    settings = get_settings(home=tmp_path / "home")
    cfg = config(tmp_path, mode="files", batch_size=2)
    first = values(3, acc_1={"tier": None})
    sf = sync(settings, cfg, "salesforce", first)
    rows = list(csv.reader(io.StringIO(Path(sf.files[0]).read_text())))
    assert rows[0] == [cfg.crm.salesforce.external_id_field, *(cfg.crm.salesforce.fields[v] for v in CRM_VALUES)]
    assert [r[0] for r in rows[1:]] == ["acc_0", "acc_1", "acc_2"]
    assert rows[2][1] == crm.SALESFORCE_NULL, "Bulk API 2.0 sets a field to null with #N/A"
    hs = sync(settings, cfg, "hubspot", first)
    bodies = [json.loads(Path(f).read_text()) for f in hs.files]
    assert [len(b["inputs"]) for b in bodies] == [2, 1], "at most batch_size inputs per request"
    item = bodies[0]["inputs"][1]
    assert item["idProperty"] == cfg.crm.hubspot.id_property and item["id"] == "acc_1"
    assert item["properties"][cfg.crm.hubspot.properties["tier"]] == "", "an empty string clears a property"
    # files mode: written = delivered; the next night writes only what changed since
    second = values(3, acc_1={"tier": None}, acc_2={"health_status": "critical"})
    assert sync(settings, cfg, "salesforce", second, NIGHT + dt.timedelta(days=1)).changed == ["acc_2"]
    assert sync(settings, cfg, "hubspot", second, NIGHT + dt.timedelta(days=1)).changed == ["acc_2"]


def test_dry_run_writes_files_and_moves_no_baseline(tmp_path: Path, server) -> None:
    settings = get_settings(home=tmp_path / "home")
    cfg = config(tmp_path, mode="dry_run")
    for _ in range(2):
        result = sync(settings, cfg, "salesforce", values(2))
        assert result.changed == ["acc_0", "acc_1"] and result.synced == [] and result.files
    assert server.requests == [], "a dry run sends nothing"
    assert crm.read_state(settings, "salesforce")["accounts"] == {}


@pytest.mark.parametrize("target", ["salesforce", "hubspot"])
def test_push_retries_rate_limits_keeps_refused_accounts_and_never_sends_twice(
        tmp_path: Path, server, push_env, target) -> None:
    settings = get_settings(home=tmp_path / "home")
    cfg = config(tmp_path, batch_size=2)
    prefix = "/services/data/" if target == "salesforce" else "/crm/v3/"
    server.throttle(prefix, 1, 429)
    server.throttle(prefix, 1, 503)
    server.refuse = {"acc_1"}
    first = sync(settings, cfg, target, values(3))
    assert server.answered(prefix, 429) and server.answered(prefix, 503), "throttled, then retried"
    assert first.synced == ["acc_0", "acc_2"] and list(first.failed) == ["acc_1"]
    assert dict(server.upserts[target]) == {"acc_0": 1, "acc_2": 1}
    log = [json.loads(line) for line in (crm.target_dir(settings, target) / "sync_log.jsonl").read_text().splitlines()]
    assert sorted(entry["account_id"] for entry in log) == ["acc_0", "acc_2"]
    # the rerun of the same night sends only what the CRM refused
    server.refuse = set()
    rerun = sync(settings, cfg, target, values(3))
    assert rerun.changed == ["acc_1"] and rerun.synced == ["acc_1"]
    # and a third run sends nothing at all
    before = len(server.requests)
    assert sync(settings, cfg, target, values(3)).changed == []
    assert len(server.requests) == before
    assert dict(server.upserts[target]) == {"acc_0": 1, "acc_1": 1, "acc_2": 1}, "one upsert per account"


def test_push_that_cannot_reach_the_crm_keeps_everything_unsynced(tmp_path: Path, server, push_env) -> None:
    settings = get_settings(home=tmp_path / "home")
    cfg = config(tmp_path)
    server.throttle("/crm/v3/", 10, 503)  # more than the retries
    result = sync(settings, cfg, "hubspot", values(2))
    assert set(result.failed) == {"acc_0", "acc_1"} and "HTTP 503" in result.failed["acc_0"]
    assert len(server.answered("/crm/v3/", 503)) == cfg.retries.total + 1
    assert crm.read_state(settings, "hubspot")["accounts"] == {}


def test_an_older_night_is_refused(tmp_path: Path) -> None:
    settings = get_settings(home=tmp_path / "home")
    cfg = config(tmp_path, mode="files")
    sync(settings, cfg, "salesforce", values(1), NIGHT)
    with pytest.raises(crm.CrmSyncRefused, match=f"already holds the values of {NIGHT}.*crm-sync --run-date {NIGHT}"):
        sync(settings, cfg, "salesforce", values(1), NIGHT - dt.timedelta(days=1))


def test_slack_post_retries_rate_limits_and_stops_on_client_errors(tmp_path: Path, server) -> None:
    url = f"{server.url}/services/T0/B0/x"
    waits: list[float] = []
    server.throttle("/services/T0", 2, 429)
    assert alerts.post_json(url, {"text": "hi"}, Retries(total=3), str(server.ca_file), sleep=waits.append) == "ok"
    assert waits == [1.0, 1.0], "Retry-After honoured"
    with pytest.raises(alerts.AlertFailed, match="HTTP 400 'no_text'"):
        alerts.post_json(url, {"blocks": []}, Retries(total=3), str(server.ca_file), sleep=waits.append)
    assert len(waits) == 2, "a 400 is not retried"


def test_failure_alert_names_the_cause_and_the_fix_and_is_sent_once(tmp_path: Path, server, push_env) -> None:
    settings = get_settings(home=tmp_path / "home")
    cfg = config(tmp_path)
    cfg.alerts.channel = "slack"
    message = alerts.failure(settings, NIGHT, "quality_gate", "QualityGateFailed",
                             "quality gate failed for 2026-04-03: 2 critical check(s)\nreport: /x/report.html")
    assert "FAILED at quality_gate" in message.text and "report: /x/report.html" in message.text
    assert f"`segment-mart run --run-date {NIGHT}`" in message.text
    assert alerts.send(settings, message, config=cfg) == "sent"
    assert alerts.send(settings, message, config=cfg) == "already sent"
    assert len(server.slack_messages) == 1 and server.slack_messages[0]["text"] == message.text
    assert json.loads((settings.home / "alerts" / str(NIGHT) / "failure.json").read_text())["text"] == message.text
    out_of_order = alerts.failure(settings, NIGHT, "check_extracts", "NightOutOfOrder", "older night")
    assert f"segment-mart replay --from-date {NIGHT}" in out_of_order.text


def test_cli_sends_a_failure_alert_and_refuses_a_write_back_before_any_publish(tmp_path: Path, server, push_env,
                                                                               monkeypatch) -> None:
    from typer.testing import CliRunner

    from pipelines.ops.cli import app

    home = tmp_path / "home"
    monkeypatch.setenv("SEGMENT_MART_HOME", str(home))
    runner = CliRunner()
    result = runner.invoke(app, ["notify", "--run-date", str(NIGHT), "--failed-step", "publish",
                                 "--error-type", "PublishRefused", "--error", "the gate result is stale"])
    assert result.exit_code == 0 and f"failure for {NIGHT}: " in result.output, result.output
    assert f"segment-mart audit --run-date {NIGHT}" in (home / "alerts" / str(NIGHT) / "failure.json").read_text()
    result = runner.invoke(app, ["crm-sync", "--run-date", str(NIGHT), "--mode", "push"])
    assert result.exit_code == 1 and "nothing has been published yet" in result.output
    assert server.answered("/services/data/") == [] and server.answered("/crm/") == []
