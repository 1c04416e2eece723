"""The per-run quality report: JSON for machines, one self-contained HTML page for people.

Failed checks come first, each with its message and example rows; then warnings; then every
check grouped by kind. No JavaScript, no external assets: it opens from disk.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pipelines.quality.model import Check, GateResult, jsonable

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1200px;color:#1f2933;padding:0 16px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e4e7eb;padding-bottom:4px}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;color:#fff}
.passed{background:#2f855a}.failed{background:#c53030}.warning{background:#b7791f}.skipped{background:#718096}
.muted{color:#616e7c} table{border-collapse:collapse;width:100%;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #e4e7eb;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f5f7fa} td.num{text-align:right} .check{border-left:4px solid #c53030;padding:6px 12px;margin:10px 0;background:#fff5f5}
.check.warning{border-color:#b7791f;background:#fffaf0} .check h3{margin:0 0 4px;font-size:14px}
.examples{overflow-x:auto} code{background:#f5f7fa;padding:0 3px;border-radius:3px;font-size:12px}
details{margin:6px 0} summary{cursor:pointer;font-weight:600}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}.card{border:1px solid #e4e7eb;border-radius:6px;padding:8px 14px;min-width:90px}
.card b{font-size:20px;display:block}
"""


def _e(v: Any) -> str:
    if v is None:
        return '<span class="muted">null</span>'
    if not isinstance(v, str):
        v = json.dumps(jsonable(v), ensure_ascii=False)
    if len(v) > 300:
        v = v[:300] + "…"
    return html.escape(v)


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f'<div class="examples"><table><tr>{head}</tr>{body}</table></div>'


def _check_block(c: Check) -> str:
    where = " · ".join(x for x in (c.kind, c.mart and f"mart {c.mart}", c.source and f"source {c.source}") if x)
    out = [f'<div class="check {c.status}"><h3>{html.escape(c.name)} '
           f'<span class="badge {c.status}">{c.status}</span></h3>'
           f'<div class="muted">{html.escape(where)}</div><p>{html.escape(c.message)}</p>']
    if c.example_rows:
        out.append(f"<div>Example rows ({len(c.example_rows)}):</div>{_table(c.example_rows)}")
    sql = c.details.get("sql") if c.details else None
    if sql:
        out.append(f"<details><summary>query</summary><pre><code>{html.escape(sql)}</code></pre></details>")
    out.append("</div>")
    return "".join(out)


def render_html(result: GateResult) -> str:
    s = result.summary()
    title = "Quarantine check" if result.scope == "quarantine" else "Quality gate"
    status = "passed" if result.passed else "failed"
    cards = "".join(
        f'<div class="card"><b>{n}</b><span class="badge {k}">{k}</span></div>'
        for k, n in s["counts"].items()
    )
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{title} {result.run_date} — segment mart</title><style>{CSS}</style></head><body>",
        f'<h1>{title} for {result.run_date} <span class="badge {status}">{status.upper()}</span></h1>',
        f'<div class="muted">started {html.escape(result.started_at)} · finished '
        f"{html.escape(result.finished_at)} · {s['checks']} checks</div>",
        f'<div class="cards">{cards}</div>',
    ]
    intake = s.get("intake") or {}
    lacking = [f"not in use: {', '.join(intake.get('entities_off') or [])}" if intake.get("entities_off") else "",
               *(f"{entity} defaulted: {', '.join(columns)}"
                 for entity, columns in (intake.get("columns_defaulted") or {}).items()),
               *(f"{entity} carried forward: {', '.join(map(str, keys))}"
                 for entity, keys in (intake.get("rows_carried_forward") or {}).items())]
    lacking = [x for x in lacking if x]
    if lacking:
        parts.append("<p><b>Tonight's data lacked</b> (details in the checks below): "
                     + "; ".join(html.escape(x) for x in lacking) + "</p>")
    if not result.passed:
        parts.append(
            "<p><b>Nothing was published.</b> The previous publish is unchanged. Fix the data or the "
            "check below, then re-run this date.</p>"
        )
    if result.failed_checks:
        parts.append(f"<h2>Failed checks ({len(result.failed_checks)})</h2>")
        parts += [_check_block(c) for c in result.failed_checks]
    if result.warnings:
        parts.append(f"<h2>Warnings ({len(result.warnings)})</h2>")
        parts += [_check_block(c) for c in result.warnings]
    if result.marts:
        parts.append("<h2>Marts validated</h2><table><tr><th>mart</th><th>rows</th><th>checks</th>"
                     "<th>failed</th></tr>")
        for mart, rows in sorted(result.marts.items()):
            mine = [c for c in result.checks if c.mart == mart]
            bad = sum(c.failed for c in mine)
            parts.append(f"<tr><td>{html.escape(mart)}</td><td class=num>{rows:,}</td>"
                         f"<td class=num>{len(mine)}</td><td class=num>{bad}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>All checks</h2>")
    kinds: dict[str, list[Check]] = {}
    for c in result.checks:
        kinds.setdefault(c.kind, []).append(c)
    for kind, items in kinds.items():
        bad = sum(c.failed for c in items)
        parts.append(f"<details{' open' if bad else ''}><summary>{html.escape(kind)} — {len(items)} checks, "
                     f"{bad} failed</summary><table><tr><th>status</th><th>mart / source</th><th>check</th>"
                     "<th>message</th></tr>")
        for c in items:
            parts.append(f'<tr><td><span class="badge {c.status}">{c.status}</span></td>'
                         f"<td>{html.escape(c.mart or c.source or '')}</td><td>{html.escape(c.name)}</td>"
                         f"<td>{html.escape(c.message)}</td></tr>")
        parts.append("</table></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_quality_report(result: GateResult, directory: Path, stem: str = "quality_report") -> tuple[Path, Path]:
    """Write ``<directory>/<stem>.json`` and ``.html`` (atomically) and return both paths."""
    json_path, html_path = directory / f"{stem}.json", directory / f"{stem}.html"
    result.report_json, result.report_html = json_path, html_path
    _atomic_write(json_path, json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n")
    _atomic_write(html_path, render_html(result))
    return json_path, html_path
