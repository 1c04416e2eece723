"""Every error and warning names the file, the rows or keys, and what to do (issue 17, item 7),
on a real night: a currency missing from the FX seed stops the night at the build, and the
orphan-usage warning of the quality gate names the accounts."""

from __future__ import annotations

import csv
import io

import pytest

from pipelines.build.dbt import DbtFailed
from pipelines.ops import nightly
from pipelines.quality import QualityGateFailed


def _edit_csv(path, edit) -> None:
    text = path.read_text()
    records = list(csv.DictReader(io.StringIO(text)))
    edit(records)
    out = io.StringIO()
    writer = csv.DictWriter(out, list(records[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    path.write_text(out.getvalue())


def test_a_missing_fx_rate_and_orphan_usage_are_named_with_what_to_do(real_home) -> None:
    # the two checks asserted here are singular data tests: the build leaves dbt's ~650 generic
    # tests out (SEGMENT_MART_DBT_BUILD_EXCLUDE; the gate reports them as not run, a warning)
    settings = real_home.settings.model_copy(update={"dbt_build_exclude": "test_type:generic"})
    night = real_home.last
    drop = settings.drop_dir(night)

    def unknown_currency(records: list[dict]) -> None:
        records[0]["currency"] = "XTS"  # ISO 4217's code for testing: in no FX seed

    def orphan_events(records: list[dict]) -> None:
        records.append(dict(records[-1], event_id="evt_orphan_1", account_id="acc_not_in_crm"))

    _edit_csv(drop / "billing" / "subscriptions.csv", unknown_currency)
    _edit_csv(drop / "usage" / "events.csv", orphan_events)
    nightly.ingest(settings, night, "billing")
    nightly.ingest(settings, night, "usage")
    with pytest.raises(DbtFailed) as failed:
        nightly.build(settings, night)
    message = str(failed.value)
    # it was: "test.segment_mart.assert_revenue_currencies_have_fx_rates: fail (1 failing row) -
    # Got 1 result, configured to fail if != 0"
    assert "assert_revenue_currencies_have_fx_rates: fail" in message
    assert "currency_code=XTS" in message
    assert "dbt_project/seeds/fx_rates.csv" in message and "What to do:" in message
    # the gate of that build says the same, and its orphan-usage warning names the account
    with pytest.raises(QualityGateFailed) as gate:
        nightly.quality_gate(settings, night)
    checks = {c.name: c for c in gate.value.result.checks}
    fx = checks["assert_revenue_currencies_have_fx_rates"]
    assert fx.status == "failed" and "currency_code=XTS" in fx.message
    assert fx.example_rows and fx.example_rows[0]["currency_code"] == "XTS"
    orphan = checks["assert_usage_events_for_known_accounts"]
    assert orphan.status == "warning"
    assert "account_id=acc_not_in_crm" in orphan.message
    assert "check the account_id in the usage export (usage/events)" in orphan.message
