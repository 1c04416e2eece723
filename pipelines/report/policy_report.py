"""The written comparison of ``segment-mart simulate``: per policy and side by side with the current
policy, in Markdown (for a ticket or a review) and self-contained HTML (the report's own helpers)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.report import format as f
from pipelines.report import svg
from pipelines.report.format import Col, esc, table

if TYPE_CHECKING:
    from pipelines.lab.backtest import Backtest
    from pipelines.lab.policy_lab import PolicyResult, Simulation

DIST_COLS = (Col("tier_name", "tier"), Col("account_count", "accounts", f.count),
             Col("account_share", "share of accounts", f.pct), Col("account_band", "target"),
             Col("arr_reporting", "ARR", f.money), Col("arr_share", "share of ARR", f.pct),
             Col("arr_band", "ARR target"), Col("on_target", "on target?"))
COVERAGE_COLS = (Col("tier_name", "tier"), Col("account_count", "accounts", f.count),
                 Col("accounts_per_csm_target", "accounts per CSM (model)", f.count),
                 Col("csms_needed_at_target", "CSMs needed", f.count),
                 Col("cost_per_account_at_target", "cost per account", f.money),
                 Col("cost_share_of_avg_arr_at_target", "cost as % of ARR", f.pct),
                 Col("cost_band", "5-15% band?"))
MOVE_COLS = (Col("account_id", "account"), Col("arr_reporting", "ARR", f.money),
             Col("current_tier", "current tier"), Col("policy_tier", "tier under the policy"),
             Col("direction", "move"), Col("timing", "when"), Col("effective_date_if_waiting", "moves on", f.date),
             Col("policy_reason", "why (policy's rule)", wrap=True), Col("current_reason", "today's rule", wrap=True))

EXPLAIN = (
    "Each policy is the nightly tier models run again with other settings (dbt vars) on the same night's "
    "accounts, health and segments; nothing else changes and nothing is published. <b>Tier distribution</b>: "
    "a tier outside its target band (green) is off target; if Tier 1 holds too many accounts nothing is "
    "prioritised. <b>CSMs needed</b>: accounts in the tier divided by the engagement model's accounts per CSM "
    "(seed tier_engagement_models), rounded up. <b>Cost as % of ARR</b>: a CSM's cost at that ratio plus shared "
    "and technology cost per account, over the tier's average ARR; the brief's healthy band is 5-15%. "
    "<b>Accounts that would change tier</b>: upgrades happen at once; a downgrade waits until the account's next "
    "renewal has passed (migration rules), so its date is shown. Adopt a policy by putting its vars in "
    "dbt_project/dbt_project.yml; the next night applies them.")


def _band(lo: Any, hi: Any) -> str:
    if lo is None and hi is None:
        return ""
    return f"{f.pct(lo or 0)}–{f.pct(hi) if hi is not None else 'any'}"


def _dist_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r | {"account_band": _band(r["min_account_share"], r["max_account_share"]),
                 "arr_band": _band(r["min_arr_share"], r["max_arr_share"]),
                 "on_target": "no" if (r["is_account_share_off_target"] or r["is_arr_share_off_target"]) else "yes"}
            for r in rows]


def _cov_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r | {"cost_band": "" if r["cost_share_of_avg_arr_at_target"] is None
                 else ("outside" if r["is_outside_cost_band_at_target"] else "inside")} for r in rows]


def _totals(rows: list[dict[str, Any]]) -> tuple[int, float]:
    csms = sum(int(r["csms_needed_at_target"] or 0) for r in rows)
    cost = sum(float(r["cost_per_account_at_target"] or 0) * int(r["account_count"] or 0) for r in rows)
    arr = sum(float(r["arr_reporting"] or 0) for r in rows)
    return csms, (cost / arr if arr else 0.0)


def _side_by_side(sim: Simulation) -> list[dict[str, Any]]:
    out = []
    for name, dist, cov, moves in (("current", sim.current_distribution, sim.current_coverage, None),
                                   *((r.policy.name, r.distribution, r.coverage, r.moves) for r in sim.results)):
        csms, cost_share = _totals(cov)
        row: dict[str, Any] = {"policy": name, "csms": csms, "cost_share": cost_share,
                               "off_target": ", ".join(r["tier_name"] for r in dist
                                                       if r["is_account_share_off_target"] or r["is_arr_share_off_target"])
                               or "none",
                               "moves": "" if moves is None else str(len(moves)),
                               "waiting": "" if moves is None else str(sum(m["timing"] != "immediate" for m in moves))}
        for r in dist:
            row[f"t{r['tier_number']}"] = f"{f.pct(r['account_share'])} / {f.pct(r['arr_share'])}"
        out.append(row)
    return out


def summary_cols(distribution: list[dict[str, Any]]) -> tuple[Col, ...]:
    """The side-by-side columns: one per configured tier, named as the night's distribution names
    it (seed tier_targets), in tier-number order."""
    tiers = sorted({(int(r["tier_number"]), str(r["tier_name"])) for r in distribution})
    return (Col("policy", "policy"),
            *(Col(f"t{n}", f"{name}: accounts / ARR" if i == 0 else name) for i, (n, name) in enumerate(tiers)),
            Col("off_target", "tiers off target"), Col("csms", "CSMs needed", f.count),
            Col("cost_share", "CS cost as % of ARR", f.pct), Col("moves", "accounts changing tier"),
            Col("waiting", "of which wait for renewal"))


def _md_table(rows: list[dict[str, Any]], cols: tuple[Col, ...]) -> str:
    if not rows:
        return "_none_\n"
    head = "| " + " | ".join(c.header for c in cols) + " |\n|" + "---|" * len(cols) + "\n"
    body = "".join("| " + " | ".join(str(c.fmt(r.get(c.key))).replace("|", "/") for c in cols) + " |\n" for r in rows)
    return head + body


def _policy_html(sim: Simulation, res: PolicyResult) -> str:
    dist = _dist_rows(res.distribution)
    current = {r["tier_number"]: r for r in sim.current_distribution}
    acc = [(f"{r['tier_name']} now", f.as_float(current.get(r["tier_number"], {}).get("account_share")),
            f.as_float(r["min_account_share"]), f.as_float(r["max_account_share"])) for r in dist]
    acc = [x for pair in zip(acc, [(f"{r['tier_name']} policy", f.as_float(r["account_share"]),
                                    f.as_float(r["min_account_share"]), f.as_float(r["max_account_share"]))
                                   for r in dist], strict=True) for x in pair]
    arr = [x for r in dist for x in (
        (f"{r['tier_name']} now", f.as_float(current.get(r["tier_number"], {}).get("arr_share")),
         f.as_float(r["min_arr_share"]), f.as_float(r["max_arr_share"])),
        (f"{r['tier_name']} policy", f.as_float(r["arr_share"]), f.as_float(r["min_arr_share"]),
         f.as_float(r["max_arr_share"])))]
    settings = ", ".join(f"<code>{esc(k)}: {esc(v)}</code>" for k, v in res.policy.vars.items())
    return (f'<section id="{esc(res.policy.name)}"><h2>Policy {esc(res.policy.name)}</h2>'
            + (f"<p>{esc(res.policy.description)}</p>" if res.policy.description else "")
            + f'<p class="muted">Settings: {settings}</p>'
            + '<div class="grid">' + svg.target_bars(acc, "Share of accounts: now vs policy", x_max=1.0)
            + svg.target_bars(arr, "Share of ARR: now vs policy", x_max=1.0) + "</div>"
            + table(dist, DIST_COLS, caption="Tier distribution under the policy")
            + table(_cov_rows(res.coverage), COVERAGE_COLS, caption="CSMs and cost to serve under the policy")
            + table(res.moves, MOVE_COLS, caption=f"{len(res.moves)} account(s) would change tier")
            + "</section>")


def _page(title: str, body: str) -> str:
    from pipelines.report.build import CSS

    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
            f"content='width=device-width,initial-scale=1'><title>{esc(title)}</title><style>{CSS}</style></head>"
            f"<body><h1>{esc(title)}</h1>{body}</body></html>")


def write_reports(sim: Simulation) -> None:
    """``index.html`` and ``summary.md`` for all policies, ``comparison.{html,md}`` per policy."""
    sim.out_dir.mkdir(parents=True, exist_ok=True)
    summary = _side_by_side(sim)
    summary_columns = summary_cols(sim.current_distribution)
    current_html = (table(_dist_rows(sim.current_distribution), DIST_COLS, caption="Tier distribution today")
                    + table(_cov_rows(sim.current_coverage), COVERAGE_COLS, caption="CSMs and cost to serve today"))
    title = f"Tier policy simulation, night of {sim.run_date}"
    body = (f'<p class="muted">{EXPLAIN}</p>' + table(summary, summary_columns, caption="Policies side by side")
            + f'<section id="current"><h2>Current policy</h2>{current_html}</section>'
            + "".join(_policy_html(sim, r) for r in sim.results))
    _write(sim.out_dir / "index.html", _page(title, body))
    md = [f"# {title}\n", EXPLAIN.replace("<b>", "**").replace("</b>", "**") + "\n",
          "## Policies side by side\n", _md_table(summary, summary_columns)]
    for res in sim.results:
        part = [f"## Policy {res.policy.name}\n", (res.policy.description + "\n") if res.policy.description else "",
                "Settings: " + ", ".join(f"`{k}: {v}`" for k, v in res.policy.vars.items()) + "\n",
                "### Tier distribution (current, then policy)\n", _md_table(_dist_rows(sim.current_distribution), DIST_COLS),
                "\n", _md_table(_dist_rows(res.distribution), DIST_COLS),
                "### CSMs and cost to serve (current, then policy)\n", _md_table(_cov_rows(sim.current_coverage), COVERAGE_COLS),
                "\n", _md_table(_cov_rows(res.coverage), COVERAGE_COLS),
                f"### {len(res.moves)} account(s) would change tier\n", _md_table(res.moves, MOVE_COLS)]
        md.extend(part)
        _write(res.out_dir / "comparison.md", "\n".join(part))
        _write(res.out_dir / "comparison.html", _page(f"{title}: policy {res.policy.name}",
                                                      f'<p class="muted">{EXPLAIN}</p>' + current_html
                                                      + _policy_html(sim, res)))
    _write(sim.out_dir / "summary.md", "\n".join(md))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def write_backtest_report(result: Backtest) -> None:
    """``report.html`` (the nightly report's backtest section) and ``summary.md`` of a backtest run."""
    from pipelines.report.sections import SCORE_NAMES, backtest_html

    title = f"Health-score backtest, known on {result.run_date}"
    points = ", ".join(p.isoformat() for p in result.points)
    body = (f'<p class="muted">Health scored at {len(result.points)} past month ends ({esc(points)}) by the nightly '
            "models in a scratch warehouse (docs/policy-lab.md).</p>"
            + backtest_html([dict(r) for r in result.rows], f"backtests/{result.run_date}/backtest.parquet"))
    _write(result.out_dir / "report.html", _page(title, body))
    cols = (Col("analysis", "analysis"), Col("group_value", "group"), Col("account_days", "account-days", f.count),
            Col("churn_rate", "churn rate", f.pct), Col("churn_lift", "churn lift", f.ratio),
            Col("churn_auc", "churn AUC", f.auc), Col("annualised_retention", "retention (annualised)", f.pct),
            Col("target_retention_rate", "target", f.pct), Col("retention_uplift_over_rest", "uplift over rest", f.pct))
    rows = [r | {"group_value": SCORE_NAMES.get(r["group_value"], r["group_value"])} for r in result.rows]
    _write(result.out_dir / "summary.md", f"# {title}\n\nPoints: {points}\n\n" + _md_table(rows, cols))
