"""The shared ``real_nights`` fixture really publishes what dbt built, night after night."""

from __future__ import annotations

from pipelines.publish import open_published, read_manifest


def test_real_nights_publish_every_mart_of_the_last_night(real_nights):
    manifest = read_manifest(real_nights.settings)
    assert manifest is not None
    assert manifest.run_date == real_nights.last
    assert len(manifest.marts) >= 15
    con = open_published(real_nights.settings)
    try:
        for mart, entry in manifest.marts.items():
            rows = con.execute(f"select count(*) from marts.{mart}").fetchone()[0]
            assert rows == entry.rows, mart
        tiers = con.execute(
            "select count(*) from marts.fct_account_tiers_daily where as_of_date = ?", [real_nights.last]
        ).fetchone()[0]
        assert tiers > 0
    finally:
        con.close()
