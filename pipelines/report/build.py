"""The static HTML report shipped with every release: one self-contained file, inline CSS and
inline SVG charts, no JavaScript, no server. It reads only the published DuckDB file.

Every section names the mart it reads; when a mart or a column it needs is missing or empty the
section shows a clear "no data" note instead of failing the report. Column names are looked up
among a few candidates so the report survives small renames in the dbt models.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.report import svg

if TYPE_CHECKING:
    import duckdb

    from pipelines.settings import Settings

SCHEMA = "marts"
#: Months of history shown in the over-time charts.
HISTORY_MONTHS = 24
#: Rows in the top at-risk / top expansion tables.
TOP_N = 15
TIER_ORDER = ("Strategic", "Core", "Scale", "Tech-touch")
#: Cost-to-serve band (share of ARR) drawn when the mart does not carry its own.
DEFAULT_COST_BAND = (0.05, 0.15)

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#1f2933;padding:0 16px}
h1{font-size:24px;margin:0} h2{font-size:18px;margin:32px 0 6px;border-bottom:2px solid #e4e7eb;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 4px}.muted{color:#616e7c}.grid{display:flex;flex-wrap:wrap;gap:12px}
.chart{max-width:100%;height:auto;border:1px solid #eef1f4;border-radius:6px;background:#fff}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0 10px}th,td{border:1px solid #e4e7eb;padding:3px 7px;text-align:left}
th{background:#f5f7fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
.nodata{background:#fffaf0;border-left:4px solid #d69e2e;padding:6px 12px;margin:8px 0}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:14px 0}.card{border:1px solid #e4e7eb;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:20px}.src{font-size:11px;color:#616e7c}
nav a{margin-right:12px}
"""


class NoData(Exception):
    """A section cannot be drawn; the message says which mart / column is missing."""


class _Marts:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._cols: dict[str, list[str]] = {}
        for table, column in con.execute(
            "select table_name, column_name from duckdb_columns() where schema_name = ? order by table_name, column_index",
            [SCHEMA],
        ).fetchall():
            self._cols.setdefault(table, []).append(column)

    @property
    def names(self) -> list[str]:
        return sorted(self._cols)

    def need(self, mart: str) -> list[str]:
        if mart not in self._cols:
            raise NoData(f"mart {SCHEMA}.{mart} is not in the published file")
        return self._cols[mart]

    def col(self, mart: str, *candidates: str, required: bool = True) -> str | None:
        cols = self.need(mart)
        for c in candidates:
            if c in cols:
                return c
        if required:
            raise NoData(f"{SCHEMA}.{mart} has none of the columns {', '.join(candidates)}")
        return None

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        cur = self.con.execute(sql, list(params) if params else [])
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def count(self, mart: str) -> int:
        self.need(mart)
        return int(self.con.execute(f'select count(*) from {SCHEMA}."{mart}"').fetchone()[0])  # type: ignore[index]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _t(mart: str) -> str:
    return f"{SCHEMA}.{_q(mart)}"


def _e(v: Any) -> str:
    return html.escape(str(v))


def _fmt_cell(v: Any, col: str) -> str:
    if v is None:
        return "–"
    if (isinstance(v, float | int) and not isinstance(v, bool)) or type(v).__name__ == "Decimal":
        f = float(v)
        lc = col.lower()
        if any(k in lc for k in ("share", "rate", "grr", "nrr", "retention", "ratio_of")) and abs(f) <= 5:
            return f"{f * 100:.1f}%"
        if any(k in lc for k in ("mrr", "arr", "cost", "usd", "revenue", "amount")):
            return f"${f:,.0f}"
        return f"{f:,.0f}" if f == int(f) else f"{f:,.2f}"
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


def _table(rows: list[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return '<div class="nodata">no rows</div>'
    cols = list(columns or rows[0].keys())
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cls = ' class="n"' if (isinstance(v, int | float) and not isinstance(v, bool)) or type(v).__name__ == "Decimal" else ""
            cells.append(f"<td{cls}>{_e(_fmt_cell(v, c))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _no_data(reason: str) -> str:
    return f'<div class="nodata"><b>No data.</b> {_e(reason)}</div>'


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def _tier_key(name: Any) -> tuple[int, str]:
    s = str(name)
    return (TIER_ORDER.index(s) if s in TIER_ORDER else len(TIER_ORDER), s)


# --------------------------------------------------------------------------- sections


def _kpis(m: _Marts) -> str:
    cards = []

    def card(label: str, value: str, src: str) -> None:
        cards.append(f'<div class="card"><b>{_e(value)}</b>{_e(label)}<div class="src">{_e(src)}</div></div>')

    try:
        mart = "fct_account_tiers_daily"
        d = m.col(mart, "as_of_date")
        arr = m.col(mart, "arr_reporting", "arr_usd", "arr", required=False)
        r = m.rows(f"select count(*) as n{f', sum({_q(arr)}) as arr' if arr else ''} from {_t(mart)} "
                   f"where {_q(d)} = (select max({_q(d)}) from {_t(mart)})")[0]  # type: ignore[arg-type]
        card("accounts tiered", f"{r['n']:,}", mart)
        if arr and r.get("arr") is not None:
            card("ARR", svg.money(float(r["arr"])), mart)
    except NoData:
        pass
    try:
        mart, dim, val, month = _retention_cols(m)
        g = m.col(mart, "gross_revenue_retention", "grr", required=False)
        n = m.col(mart, "net_revenue_retention", "nrr", required=False)
        lg = m.col(mart, "logo_retention", "logo_retention_rate", required=False)
        total = _total_filter(m, mart, dim, val)
        if total:
            r2 = m.rows(f"select * from {_t(mart)} where {total} order by {_q(month)} desc limit 1")
            if r2:
                for label, c in (("GRR, latest month", g), ("NRR, latest month", n), ("logo retention, latest month", lg)):
                    if c and r2[0].get(c) is not None:
                        card(label, svg.pct(float(r2[0][c])), mart)
    except NoData:
        pass
    return f'<div class="cards">{"".join(cards)}</div>' if cards else ""


def _retention_cols(m: _Marts, mart: str = "rpt_segment_retention_monthly") -> tuple[str, str, str, str]:
    dim = m.col(mart, "segment_dimension", "dimension")
    val = m.col(mart, "segment_value", "segment")
    month = m.col(mart, "period_start_date", "month_start_date", "month", "month_start", "period_month")
    return mart, dim, val, month  # type: ignore[return-value]


_TOTAL_VALUES = ("total", "Total", "all", "All")


def _total_filter(m: _Marts, mart: str, dim: str, val: str) -> str | None:
    """SQL filter for the total rows of a retention mart, if it has them."""
    is_total = m.col(mart, "is_total", required=False)
    if is_total:
        return _q(is_total)
    values = ", ".join(f"'{v}'" for v in _TOTAL_VALUES)
    n = m.con.execute(f"select count(*) from {_t(mart)} where {_q(dim)} in ({values})").fetchone()[0]  # type: ignore[index]
    return f"{_q(dim)} in ({values})" if n else None


#: Dimensions drawn open in the retention section; the others are folded.
PRIMARY_DIMENSIONS = ("tier", "value_band")


def _retention(m: _Marts) -> str:
    mart, dim, val, month = _retention_cols(m)
    candidates = [
        ("GRR", ("gross_revenue_retention", "grr")),
        ("NRR", ("net_revenue_retention", "nrr")),
        ("Logo retention", ("logo_retention", "logo_retention_rate")),
        ("Expansion rate", ("expansion_rate",)),
        ("Trailing 12-month GRR", ("trailing_gross_revenue_retention",)),
        ("Trailing 12-month NRR", ("trailing_net_revenue_retention",)),
        ("Trailing 12-month logo retention", ("trailing_logo_retention",)),
    ]
    metrics = [(label, c) for label, cols in candidates if (c := m.col(mart, *cols, required=False))]
    expansion = m.col(mart, "expansion_mrr_reporting", "expansion_mrr", "expansion_mrr_usd", required=False)
    if not metrics:
        raise NoData(f"{SCHEMA}.{mart} has no GRR / NRR / logo retention columns")
    rows = m.rows(
        f"select * from {_t(mart)} where {_q(month)} >= (select max({_q(month)}) from {_t(mart)}) "
        f"- interval {HISTORY_MONTHS} month order by {_q(dim)}, {_q(val)}, {_q(month)}"
    )
    if not rows:
        raise NoData(f"{SCHEMA}.{mart} is empty")
    totals = {str(v) for v in _TOTAL_VALUES}
    dims = sorted({str(r[dim]) for r in rows} - totals,
                  key=lambda d: (PRIMARY_DIMENSIONS.index(d) if d in PRIMARY_DIMENSIONS else 9, d))
    out = [f'<p class="muted">Monthly, last {HISTORY_MONTHS} months, from <code>{mart}</code> (the latest '
           "month is in progress). Each account counts in the segment it was in at the start of the month. "
           "The dashed line marks 100%.</p>"]
    total_rows = [r for r in rows if str(r[dim]) in totals]
    for d in dims:
        mine = [r for r in rows if str(r[dim]) == d]
        values = sorted({str(r[val]) for r in mine}, key=_tier_key)[:8]
        charts = []
        for label, col in metrics:
            series = {v: [(_month(r[month]), _f(r[col])) for r in mine if str(r[val]) == v] for v in values}
            if total_rows:
                series["all accounts"] = [(_month(r[month]), _f(r[col])) for r in total_rows]
            ref = None if label == "Expansion rate" else 1.0
            charts.append(svg.line_chart(series, f"{label} by {d.replace('_', ' ')}", fmt=svg.pct, reference=ref))
        if expansion:
            months = sorted({_month(r[month]) for r in mine})[-12:]
            series_b = {
                v: [next((_f(r[expansion]) for r in mine if str(r[val]) == v and _month(r[month]) == mo), None)
                    for mo in months]
                for v in values
            }
            charts.append(svg.bar_chart(months, series_b, f"Expansion MRR by {d.replace('_', ' ')} (last 12 months)",
                                        fmt=svg.money, stacked=True))
        title = f"by {_e(d.replace('_', ' '))}"
        block = f"<div class='grid'>{''.join(charts)}</div>"
        if d in PRIMARY_DIMENSIONS:
            out.append(f"<h3>{title}</h3>{block}")
        else:
            out.append(f"<details><summary>{title}</summary>{block}</details>")
    return "".join(out)


def _month(v: Any) -> str:
    if isinstance(v, dt.datetime | dt.date):
        return v.strftime("%Y-%m")
    return str(v)[:7]


def _latest(m: _Marts, mart: str, date_col: str) -> str:
    return f"{_q(date_col)} = (select max({_q(date_col)}) from {_t(mart)})"


def _tier_distribution(m: _Marts) -> str:
    mart = "rpt_tier_distribution"
    tier = m.col(mart, "tier_name", "assigned_tier", "tier")
    d = m.col(mart, "as_of_date", required=False)
    acc = m.col(mart, "account_share")
    arr = m.col(mart, "arr_share", required=False)
    where = f"where {_latest(m, mart, d)}" if d else ""
    order = m.col(mart, "tier_number", "assigned_tier_number", required=False)
    rows = m.rows(f"select * from {_t(mart)} {where} order by {_q(order or tier)}")
    if not rows:
        raise NoData(f"{SCHEMA}.{mart} is empty")
    acc_rows = [(str(r[tier]), _f(r[acc]), _f(r.get("min_account_share")), _f(r.get("max_account_share"))) for r in rows]
    charts = [svg.target_bars(acc_rows, "Share of accounts by tier vs target", x_max=1.0)]
    if arr:
        arr_rows = [(str(r[tier]), _f(r[arr]), _f(r.get("min_arr_share")), _f(r.get("max_arr_share"))) for r in rows]
        charts.append(svg.target_bars(arr_rows, "Share of ARR by tier vs target", x_max=1.0))
    cols = [c for c in (tier, "account_count", acc, "min_account_share", "max_account_share", "arr_reporting",
                        arr, "min_arr_share", "max_arr_share", "is_not_prioritising") if c and c in rows[0]]
    when = f" as of {rows[0][d]}" if d else ""
    return (f'<p class="muted">From <code>{mart}</code>{_e(when)}. Green bands are the targets; a red bar is '
            "off target.</p>" + f"<div class='grid'>{''.join(charts)}</div>" + _table(rows, cols))


def _health(m: _Marts) -> str:
    mart = "fct_account_health_daily"
    d = m.col(mart, "as_of_date")
    status = m.col(mart, "health_status", "health_category", "health_band")
    score = m.col(mart, "health_score", "score", required=False)
    tier = m.col(mart, "assigned_tier", "tier", required=False)
    if tier:
        src = f"select {_q(tier)} as tier, {_q(status)} as status{f', {_q(score)} as score' if score else ''} " \
              f"from {_t(mart)} where {_latest(m, mart, d)}"
        used = f"<code>{mart}</code>"
    else:
        tmart = "fct_account_tiers_daily"
        ttier = m.col(tmart, "assigned_tier")
        td = m.col(tmart, "as_of_date")
        src = (f"select t.{_q(ttier)} as tier, h.{_q(status)} as status{f', h.{_q(score)} as score' if score else ''} "
               f"from {_t(mart)} h join {_t(tmart)} t on t.account_id = h.account_id and t.{_q(td)} = h.{_q(d)} "
               f"where h.{_latest(m, mart, d)}")
        used = f"<code>{mart}</code> joined with <code>{tmart}</code>"
    rows = m.rows(f"select tier, status, count(*) as accounts{', avg(score) as avg_score' if score else ''} "
                  f"from ({src}) group by all")
    if not rows:
        raise NoData(f"{SCHEMA}.{mart} has no rows on its latest date")
    tiers = sorted({str(r["tier"]) for r in rows}, key=_tier_key)
    statuses = [s for s in ("healthy", "at-risk", "at_risk", "critical") if any(r["status"] == s for r in rows)]
    statuses += sorted({str(r["status"]) for r in rows} - set(statuses))
    counts = {s: [sum(r["accounts"] for r in rows if str(r["tier"]) == t and str(r["status"]) == s) for t in tiers]
              for s in statuses}
    totals = [sum(counts[s][i] for s in statuses) for i in range(len(tiers))]
    shares = {s: [c / totals[i] if totals[i] else 0 for i, c in enumerate(v)] for s, v in counts.items()}
    charts = [svg.bar_chart(tiers, shares, "Health status mix by tier (share of accounts)", fmt=svg.pct, stacked=True),
              svg.bar_chart(tiers, counts, "Accounts by tier and health status", stacked=True)]
    table_rows = [{"tier": t, **{s: counts[s][i] for s in statuses}, "accounts": totals[i]} for i, t in enumerate(tiers)]
    if score:
        avg = {t: sum((r["avg_score"] or 0) * r["accounts"] for r in rows if str(r["tier"]) == t) / totals[i]
               for i, t in enumerate(tiers) if totals[i]}
        charts.append(svg.bar_chart(tiers, {"average health score": [avg.get(t) for t in tiers]},
                                    "Average health score by tier"))
        for tr in table_rows:
            tr["avg_health_score"] = round(avg.get(tr["tier"], 0), 1)
    return (f'<p class="muted">Latest date, from {used}.</p>'
            f"<div class='grid'>{''.join(charts)}</div>" + _table(table_rows))


def _coverage(m: _Marts) -> str:
    mart = "rpt_coverage_by_tier"
    tier = m.col(mart, "tier_name", "assigned_tier", "tier")
    d = m.col(mart, "as_of_date", required=False)
    rows = m.rows(f"select * from {_t(mart)}{f' where {_latest(m, mart, d)}' if d else ''}")
    if not rows:
        raise NoData(f"{SCHEMA}.{mart} is empty")
    rows.sort(key=lambda r: _tier_key(r[tier]))
    charts = []
    per_csm = m.col(mart, "actual_accounts_per_csm", "accounts_per_csm", required=False)
    if per_csm:
        lo = m.col(mart, "accounts_per_csm_min", "target_accounts_per_csm_min", required=False)
        hi = m.col(mart, "accounts_per_csm_max", "target_accounts_per_csm_max", required=False)
        charts.append(svg.target_bars(
            [(str(r[tier]), _f(r[per_csm]), _f(r.get(lo)) if lo else None, _f(r.get(hi)) if hi else None) for r in rows],
            "Accounts per CSM by tier vs engagement model", fmt=svg.num))
    share = m.col(mart, "cost_share_of_arr", "cs_cost_share_of_arr", required=False)
    if share:
        charts.append(svg.target_bars(
            [(str(r[tier]), _f(r[share]), *DEFAULT_COST_BAND) for r in rows],
            "CS cost as share of ARR (target band 5-15%)"))
    cost = m.col(mart, "cost_per_account_at_target", "annual_cost_to_serve_per_account", required=False)
    if cost:
        charts.append(svg.bar_chart([str(r[tier]) for r in rows], {"cost per account": [_f(r[cost]) for r in rows]},
                                    "Annual cost to serve per account (at the target ratio)", fmt=svg.money))
    out = f'<p class="muted">From <code>{mart}</code>.</p><div class="grid">{"".join(charts)}</div>' + _table(rows)
    if "rpt_coverage_by_csm" in m.names:
        csm = m.rows(f"select * from {_t('rpt_coverage_by_csm')} limit 200")
        csm_d = "as_of_date" if csm and "as_of_date" in csm[0] else None
        if csm_d:
            csm = m.rows(f"select * from {_t('rpt_coverage_by_csm')} where {_latest(m, 'rpt_coverage_by_csm', csm_d)} "
                         "limit 50")
        out += "<h3>CSM books (<code>rpt_coverage_by_csm</code>, first 50)</h3>" + _table(csm)
    return out


def _account_label_join(m: _Marts, alias: str) -> tuple[str, str]:
    """(select expression, join clause) adding the account name when dim_accounts has it."""
    try:
        name = m.col("dim_accounts", "account_name", required=False)
    except NoData:
        return "", ""
    if not name:
        return "", ""
    return f", a.{_q(name)} as account_name", f" left join {_t('dim_accounts')} a on a.account_id = {alias}.account_id"


def _top_at_risk(m: _Marts) -> str:
    if "dim_accounts" in m.names:  # the run date's view of every account, with health and tier
        mart = "dim_accounts"
        status = m.col(mart, "health_status")
        arr = m.col(mart, "arr_reporting", "arr_usd", "arr", required=False)
        wanted = ["account_id", "account_name", "assigned_tier", arr, "health_score", status,
                  "weakest_health_component", "days_to_renewal", "csm_owner_id"]
        cols = [c for c in wanted if c and c in m.need(mart)]
        order = f"{_q(arr)} desc nulls last, " if arr else ""
        rows = m.rows(
            f"select {', '.join(_q(c) for c in cols)} from {_t(mart)} "
            f"where {_q(status)} in ('at-risk', 'at_risk', 'critical') "
            f"order by {order}{'health_score, ' if 'health_score' in cols else ''}account_id limit {TOP_N}"
        )
        source = f"<code>{mart}</code>"
    else:
        mart, tmart = "fct_account_health_daily", "fct_account_tiers_daily"
        d = m.col(mart, "as_of_date")
        status = m.col(mart, "health_status", "health_category", "health_band")
        score = m.col(mart, "health_score", "score", required=False)
        td = m.col(tmart, "as_of_date")
        ttier = m.col(tmart, "assigned_tier")
        arr = m.col(tmart, "arr_reporting", "arr_usd", "arr", required=False)
        rows = m.rows(
            f"select h.account_id, t.{_q(ttier)} as tier"
            f"{f', t.{_q(arr)} as arr' if arr else ''}, h.{_q(status)} as health_status"
            f"{f', h.{_q(score)} as health_score' if score else ''} "
            f"from {_t(mart)} h join {_t(tmart)} t on t.account_id = h.account_id and t.{_q(td)} = h.{_q(d)} "
            f"where h.{_latest(m, mart, d)} and h.{_q(status)} in ('at-risk', 'at_risk', 'critical') "
            f"order by {'arr desc nulls last, ' if arr else ''}{'health_score, ' if score else ''}h.account_id "
            f"limit {TOP_N}"
        )
        source = f"<code>{mart}</code> and <code>{tmart}</code>"
    if not rows:
        return _no_data(f"no at-risk or critical accounts on the latest date of {SCHEMA}.{mart}")
    return (f'<p class="muted">At-risk and critical accounts with the most ARR, latest date, from {source}.</p>'
            + _table(rows))


def _top_expansion(m: _Marts) -> str:
    mart = "fct_mrr_movements"
    kind = m.col(mart, "movement_type", "movement", "change_category")
    amount = m.col(mart, "expansion_mrr_reporting", "mrr_change_reporting", "expansion_mrr", "mrr_change")
    month = m.col(mart, "month_start_date", "month", "month_start", "period_start_date")
    name_sel, name_join = _account_label_join(m, "x")
    rows = m.rows(
        f"select x.account_id{name_sel}, sum(x.{_q(amount)}) as expansion_mrr_last_3_months, "
        f"count(*) as expansion_months from {_t(mart)} x{name_join} "
        f"where x.{_q(kind)} = 'expansion' and x.{_q(month)} > (select max({_q(month)}) from {_t(mart)}) - interval 3 month "
        f"group by all order by expansion_mrr_last_3_months desc, x.account_id limit {TOP_N}"
    )
    out = (f'<p class="muted">Accounts with the most expansion MRR over the last 3 months, from <code>{mart}</code>.'
           "</p>" + (_table(rows) if rows else _no_data("no expansion movements in the last 3 months")))
    # Forward-looking: expansion signals, when the signals mart has them.
    try:
        smart = "fct_account_signals"
        stype = m.col(smart, "signal_type", "signal", "signal_name")
        cat = m.col(smart, "signal_category", required=False)
        want = [c for c in ("account_id", "as_of_date", stype, "signal_detail", "assigned_tier", "csm_owner_id",
                            "days_to_renewal") if c in m.need(smart)]
        where = f"{_q(cat)} = 'expansion'" if cat else f"{_q(stype)} ilike '%expan%'"
        d = "as_of_date" if "as_of_date" in want else None
        sig = m.rows(f"select {', '.join(_q(c) for c in want)} from {_t(smart)} where {where}"
                     f"{f' and {_latest(m, smart, d)}' if d else ''} order by {', '.join(_q(c) for c in want[:3])} "
                     f"limit {TOP_N}")
        if sig:
            out += f"<h3>Expansion signals raised on the latest date (<code>{smart}</code>)</h3>" + _table(sig)
    except NoData:
        pass
    return out


SECTIONS = (
    ("retention", "Retention and expansion by tier and segment", _retention),
    ("tiers", "Tier distribution against targets", _tier_distribution),
    ("health", "Health distribution by tier", _health),
    ("coverage", "Coverage and cost to serve", _coverage),
    ("at-risk", "Top at-risk accounts", _top_at_risk),
    ("expansion", "Top expansion accounts", _top_expansion),
)


def render(con: duckdb.DuckDBPyConnection, run_date: dt.date) -> str:
    m = _Marts(con)
    body = []
    for anchor, title, fn in SECTIONS:
        try:
            content = fn(m)
        except NoData as exc:
            content = _no_data(str(exc))
        except Exception as exc:  # a broken section must not take the whole report down
            content = _no_data(f"this section failed: {type(exc).__name__}: {exc}")
        body.append(f'<section id="{anchor}"><h2>{_e(title)}</h2>{content}</section>')
    marts = "".join(f"<tr><td>{_e(n)}</td><td class=n>{m.count(n):,}</td></tr>" for n in m.names)
    nav = "".join(f'<a href="#{a}">{_e(t)}</a>' for a, t, _ in SECTIONS)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><title>Segment mart {run_date}</title>"
        f"<style>{CSS}</style></head><body>"
        f"<h1>Customer segments and tiers — {run_date}</h1>"
        f'<div class="muted">Static report of the published segment mart. Data as of {run_date}.</div>'
        f"<nav>{nav}</nav>{_kpis(m)}{''.join(body)}"
        f"<h2>Published marts</h2><table><tr><th>mart</th><th>rows</th></tr>{marts}</table>"
        "</body></html>"
    )


def build_report(settings: Settings | None, run_date: dt.date, published_db: Path, out_path: Path) -> Path:
    """Write the static HTML report for ``run_date`` from ``published_db`` to ``out_path``.

    Opens ``published_db`` read-only with external access disabled; writes atomically.
    ``settings`` is accepted for symmetry with the other entry points (unused today).
    """
    from pipelines.publish import open_published

    con = open_published(path=Path(published_db))
    try:
        text = render(con, run_date)
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
