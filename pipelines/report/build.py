"""The static HTML report shipped with every release: one self-contained file, inline CSS and
inline SVG charts, no JavaScript, no server. It reads only the release: the published DuckDB
file, and the release's copy of the quality report for what tonight's extracts lacked
(entities off, optional columns defaulted, rows carried forward: section "Data behind this report").

Every section names the mart it reads; the columns it reads are listed once, in
``pipelines/report/columns.py``. When a mart or one of those columns is missing or the mart is
empty, the section shows a clear "No data" note naming it instead of failing the report (and
the report's tests fail, since they check the list against the marts dbt builds).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.report import sections
from pipelines.report.format import esc
from pipelines.report.glossary import glossary
from pipelines.report.marts import Marts, NoData

if TYPE_CHECKING:
    import duckdb

    from pipelines.settings import Settings

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#1f2933;padding:0 16px}
h1{font-size:24px;margin:0;overflow-wrap:anywhere} h2{font-size:18px;margin:32px 0 6px;border-bottom:2px solid #e4e7eb;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 4px}.muted{color:#616e7c}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,480px),1fr));gap:12px}
.chart{display:block;width:100%;max-width:100%;height:auto;border:1px solid #eef1f4;border-radius:6px;background:#fff}
.table-wrap{max-width:100%;overflow-x:auto;margin:6px 0 12px;border:1px solid #e4e7eb;border-radius:4px}
table{border-collapse:collapse;font-size:12.5px}th,td{border-bottom:1px solid #e4e7eb;padding:3px 8px;text-align:left;white-space:nowrap}
th{background:#f5f7fa;font-weight:600}td.w{white-space:normal;min-width:16em;max-width:28em}.n{text-align:right;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding:4px 8px}
table.glossary td,table.glossary th{white-space:normal;vertical-align:top;min-width:12em}
tr.in-progress td,td.in-progress{background:#fefcbf;font-style:italic}td.in-progress{outline:1px dotted #975a16}
tr.backcast td{background:#edf2f7}.badge{font-size:11px;padding:0 4px;border-radius:3px;background:#fff;border:1px solid #cbd2d9}
.nodata{background:#fffaf0;border-left:4px solid #d69e2e;padding:6px 12px;margin:8px 0}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:14px 0}.card{border:1px solid #e4e7eb;border-radius:6px;padding:8px 14px;min-width:120px;flex:1 1 140px}
.card b{display:block;font-size:20px}.src{font-size:11px;color:#616e7c;overflow-wrap:anywhere}
nav{display:flex;flex-wrap:wrap;gap:4px 12px}code{overflow-wrap:anywhere}
details summary{cursor:pointer;font-weight:600;margin:10px 0}
"""

SECTIONS = (
    ("retention", "Retention and expansion by tier and segment", sections.retention),
    ("quarterly", "Quarterly retention by tier", sections.quarterly),
    ("tiers", "Tier distribution against targets", sections.tier_distribution),
    ("tier-advice", "Where to draw the tier lines: threshold advice", sections.threshold_advice),
    ("tier-trends", "Tier mix and tier migrations", sections.tier_trends),
    ("health", "Health distribution by tier", sections.health),
    ("health-trend", "Health trend: up, down or same over 7 and 30 days", sections.health_trend),
    ("health-backtest", "Does health predict churn? The health-score backtest", sections.health_backtest),
    ("coverage", "Coverage and cost to serve", sections.coverage),
    ("cohorts", "Cohort retention", sections.cohorts),
    ("unit-economics", "Unit economics by tier", sections.unit_economics),
    ("actions", "Open actions by owner and tier", sections.actions),
    ("at-risk", "Top at-risk accounts", sections.at_risk),
    ("expansion", "Top expansion accounts", sections.expansion),
)


def data_notes(intake: dict | None) -> str:
    """What tonight's data lacked (the quality gate's ``intake`` summary: entities off, optional
    columns defaulted, snapshot rows carried forward from the previous drop), so that nobody
    mistakes a default for data. Empty when the gate's summary is not at hand."""
    if not intake:
        return ""
    from pipelines.contract import ENTITIES

    when_off = {e.qualified: e.when_off for e in ENTITIES}
    items = [f"<li><b>{esc(name)} is not in use</b> (not delivered): {esc(when_off.get(name, ''))}.</li>"
             for name in intake.get("entities_off") or []]
    for entity, columns in (intake.get("columns_defaulted") or {}).items():
        items += [f"<li><b>{esc(entity)} has no column <code>{esc(c)}</code></b>: the default is used, "
                  f"{esc(default)}.</li>" for c, default in columns.items()]
    for entity, keys in (intake.get("rows_carried_forward") or {}).items():
        shown = ", ".join(str(k) for k in keys[:10]) + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")
        items.append(f"<li><b>{esc(entity)}: {len(keys)} row(s) carried forward</b> from the previous drop "
                     f"(tonight's row was quarantined): {esc(shown)}.</li>")
    if not items:
        return ('<section id="data"><h2>Data behind this report</h2><p class="muted">Every entity of the '
                "extract contract was delivered with every column; nothing was carried forward.</p></section>")
    return ('<section id="data"><h2>Data behind this report</h2><div class="nodata">Tonight\'s extracts '
            f"lacked the following; the figures below use the defaults named here, not data.<ul>{''.join(items)}"
            "</ul></div></section>")


def health_notes(warning: str | None) -> str:
    """The quality gate's warning of a degenerate health distribution (pipelines/lab/calibration.py):
    the night published, but its health bands say more about the thresholds than the accounts."""
    if not warning:
        return ""
    return ('<section id="health-calibration"><div class="nodata"><b>Health thresholds do not fit this '
            f"company's data.</b> {esc(warning)}</div></section>")


def render(con: duckdb.DuckDBPyConnection, run_date: dt.date, intake: dict | None = None,
           health_warning: str | None = None) -> str:
    m = Marts(con, run_date)
    body = []
    for anchor, title, fn in SECTIONS:
        try:
            content = fn(m)
        except NoData as exc:
            content = _no_data(str(exc))
        except Exception as exc:  # a broken section must not take the whole report down
            content = _no_data(f"this section failed: {type(exc).__name__}: {exc}")
        body.append(f'<section id="{anchor}"><h2>{esc(title)}</h2>{content}</section>')
    body.append(f'<section id="glossary"><h2>Glossary: every metric and its formula</h2>{glossary(m.tier_names)}</section>')
    marts = "".join(f"<tr><td>{esc(n)}</td><td class=n>{m.count(n):,}</td></tr>" for n in m.names)
    nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t, _ in (*SECTIONS, ("glossary", "Glossary", None)))
    try:
        headline = sections.headline(m)
    except Exception as exc:
        headline = _no_data(f"headline figures failed: {type(exc).__name__}: {exc}")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><title>Segment mart {run_date}</title>"
        f"<style>{CSS}</style></head><body>"
        f"<h1>Customer segments and tiers — {run_date}</h1>"
        f'<div class="muted">Static report of the published segment mart, data as of {run_date}. Headline '
        "figures are for the last complete month; the month in progress is shaded yellow and backcast "
        "months grey in every chart and marked in every table.</div>"
        f"<nav>{nav}</nav>{data_notes(intake)}{health_notes(health_warning)}{headline}{''.join(body)}"
        '<h2>Published marts</h2><div class="table-wrap"><table><thead><tr><th>mart</th><th class=n>rows</th></tr>'
        f"</thead><tbody>{marts}</tbody></table></div>"
        "</body></html>"
    )


def _no_data(reason: str) -> str:
    return f'<div class="nodata"><b>No data.</b> {esc(reason)}</div>'


def _intake_summary(release: Path) -> dict | None:
    """The quality gate's ``intake`` summary from the release's copy of the gate's report."""
    import json

    try:
        return json.loads((release / "quality" / "quality_report.json").read_text()).get("intake")
    except (OSError, ValueError):
        return None


def _health_warning(release: Path) -> str | None:
    """The message of the gate's ``health distribution`` warning, from the release's copy of the report."""
    import json

    try:
        checks = json.loads((release / "quality" / "quality_report.json").read_text()).get("results") or []
    except (OSError, ValueError):
        return None
    return next((c.get("message") for c in checks if isinstance(c, dict) and c.get("kind") == "health"
                 and c.get("status") == "warning"), None)


def build_report(settings: Settings | None, run_date: dt.date, published_db: Path, out_path: Path) -> Path:
    """Write the static HTML report for ``run_date`` from ``published_db`` to ``out_path``.

    Opens ``published_db`` read-only with external access disabled; writes atomically.
    ``settings`` is accepted for symmetry with the other entry points (unused today).
    """
    from pipelines.release import open_published

    con = open_published(path=Path(published_db))
    try:
        release = Path(published_db).parent
        text = render(con, run_date, _intake_summary(release), _health_warning(release))
    finally:
        con.close()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path
