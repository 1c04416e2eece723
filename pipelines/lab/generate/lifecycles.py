"""Scripted account lifecycles with their expected outcomes (``generate(..., lifecycles=True)``).

The simulated business (accounts.py, billing.py) churns, expands and returns at random, mostly
in the history before the first drop. A soak needs every lifecycle the product classifies to
happen on dates *inside* the run, and to know what the marts must say about it. This module
adds one account per lifecycle (ids ``lc_<lifecycle>``, beside the simulated ``acc_*`` ones),
placed on the run's own nights, and writes what each must produce in the published marts:

========================  ==========================================================================
new                       a prospect subscribes: tier history 'initial', movement 'new'
trial_to_paid             a trial converts: Tech-touch on the trial, then 'upgrade'; movement 'new'
expansion                 a second product line starts: movement 'expansion'
contraction               a second product line ends: movement 'contraction'
churn                     the only subscription ends: no tier ('churned'), movement 'churn'
reactivation_in_window    back within var revenue_reactivation_window_months month-ends: the gap
                          is bridged (contraction to 0, then expansion), tier 'reactivated'
reactivation_after_window back after a longer gap: 'churn' then 'reactivation', tier 'reactivated'
upgrade                   crosses the Core threshold upwards: upgraded the same night
held_downgrade            contracts below Core: tier held until the renewal, then 'downgrade'
crm_restored              missing from the CRM extract one night, back the next: no row that night,
                          the period closes after its last row, the return is 'reactivated'
csm_change                CSM owner changes
interval_change           monthly plan replaced by the annual one at the same MRR: no movement,
                          the next renewal a year out
currency_change           EUR subscription replaced by a USD one: MRR at the seed's FX rate, then
                          in USD; the difference is an expansion
seat_change               a per-seat subscription goes from 10 to 25 seats: seats and MRR follow
past_due                  an invoice unpaid past its due date + var revenue_past_due_grace_days
                          suspends MRR; paid, the account recovers
restated_month            billing of a month the run already published is restated after the
                          month closed: its MRR and the movements around it change
late_event                a usage event delivered a drop late counts from the night it arrives
duplicate_event           events re-sent in a later drop (and twice in one file) count once
========================  ==========================================================================

``plan(nights)`` places each lifecycle on the earliest nights that can show it (calendar rules:
a return within the reactivation window needs a night in a later month, and so on); one that
no choice of the given nights can show is listed under ``not_scheduled`` with the reason. The
compact schedule of the CI soak (pipelines/lab/soak.py) covers every lifecycle in four nights.

Amounts follow the project's configuration (tier thresholds, tier names, FX rates, the
reactivation window and the past-due grace), so the expectations hold for the configuration
they are planned with.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines.contract import get_entity
from pipelines.lab.generate.writers import arrow_schema

#: File written next to the drops (``<landing>/scripted_lifecycles.json``).
SCRIPT_FILE = "scripted_lifecycles.json"
LIFECYCLES: tuple[str, ...] = (
    "new", "trial_to_paid", "expansion", "contraction", "churn", "reactivation_in_window",
    "reactivation_after_window", "upgrade", "held_downgrade", "crm_restored", "csm_change",
    "interval_change", "currency_change", "seat_change", "past_due", "restated_month", "late_event",
    "duplicate_event",
)
#: Usage history of the scripted accounts before the first night (two usage windows and more).
USAGE_HISTORY_DAYS = 70
NIGHT = "$night"  # in a ``where``: the night being checked
CSM, OTHER_CSM = "csm_900", "csm_901"


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def months_between(earlier: dt.date, later: dt.date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


@dataclass(frozen=True)
class Config:
    """What the expectations depend on, read from the dbt project (vars and seeds)."""

    tier_names: dict[int, str]
    tier2_min_arr: float
    tier4_max_arr: float
    tier1_lowest_min_arr: float  # the lowest ARR any Tier 1 rule asks for
    reactivation_window_months: int
    past_due_grace_days: int | None
    eur_to_usd: Decimal

    @classmethod
    def of_project(cls, dbt_project_dir: Path) -> Config:
        import yaml

        var = yaml.safe_load((dbt_project_dir / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]
        with (dbt_project_dir / "seeds" / "tier_targets.csv").open(newline="") as fh:
            names = {int(r["tier_number"]): r["tier_name"] for r in csv.DictReader(fh)}
        with (dbt_project_dir / "seeds" / f"{var['revenue_fx_rates_model']}.csv").open(newline="") as fh:
            eur = [r for r in csv.DictReader(fh) if r["currency_code"] == "EUR" and r["quote_currency"] == "USD"]
        if var["reporting_currency"] != "USD" or not eur:
            raise ValueError("scripted lifecycles are planned for USD reporting with an EUR/USD rate in the FX seed")
        tier1 = [var["tier1_min_arr"], var["tier1_strategic_min_arr"], var["tier1_growth_min_arr"]]
        return cls(
            tier_names=names,
            tier2_min_arr=float(var["tier2_min_arr"]),
            tier4_max_arr=float(var["tier4_max_arr"]),
            tier1_lowest_min_arr=float(min(v for v in tier1 if v is not None)),
            reactivation_window_months=int(var["revenue_reactivation_window_months"]),
            past_due_grace_days=(None if var["revenue_past_due_grace_days"] is None
                                 else int(var["revenue_past_due_grace_days"])),
            eur_to_usd=Decimal(sorted(eur, key=lambda r: r["valid_from"])[-1]["rate"]),
        )

    @property
    def core_mrr(self) -> int:
        """A monthly amount well inside Core: halfway between the Core and the lowest Tier 1 ARR."""
        return round((self.tier2_min_arr + self.tier1_lowest_min_arr) / 2 / 12)

    @property
    def scale_mrr(self) -> int:
        """A monthly amount well inside Scale: halfway between Tech-touch and Core."""
        return round((self.tier4_max_arr + self.tier2_min_arr) / 2 / 12)


@dataclass
class Expectation:
    """On every night from ``since`` (until ``until``, exclusive), ``marts.<mart>`` has exactly one
    row matching ``where`` and it has ``values``; with ``values`` None, no row matches."""

    mart: str
    where: dict[str, Any]
    values: dict[str, Any] | None
    since: dt.date
    until: dt.date | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"mart": self.mart, "where": _jsonable(self.where), "values": _jsonable(self.values),
                "since": self.since.isoformat(), "until": self.until.isoformat() if self.until else None,
                "note": self.note}


@dataclass
class Lifecycle:
    name: str
    account_id: str
    night: dt.date  # the first night that shows it
    event: str
    expectations: list[Expectation] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"lifecycle": self.name, "account_id": self.account_id, "night": self.night.isoformat(),
                "event": self.event, "expect": [e.as_dict() for e in self.expectations]}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


@dataclass
class _Account:
    account_id: str
    created: dt.date
    country: str = "US"
    employees: int = 200
    csm: str = CSM
    csm_from: tuple[dt.date, str] | None = None  # (night, new CSM)
    missing_on: frozenset[dt.date] = frozenset()  # drops whose CRM extract lacks the account
    users: int = 3  # daily active users while live

    def row(self, day: dt.date) -> dict[str, Any] | None:
        if day < self.created or day in self.missing_on:
            return None
        csm = self.csm_from[1] if self.csm_from and day >= self.csm_from[0] else self.csm
        return {"account_id": self.account_id, "account_name": f"Scripted {self.account_id[3:]}",
                "industry": "Software", "employee_count": self.employees, "country": self.country,
                "created_date": self.created, "csm_owner_id": csm, "is_marquee_logo": False,
                "is_reference": False, "is_partner": False, "parent_account_id": None}


@dataclass
class _Subscription:
    subscription_id: str
    account_id: str
    start: dt.date
    end: dt.date | None
    amount: Decimal  # per interval
    plan: str = "growth"
    product_line: str = "core"
    interval: str = "month"
    currency: str = "USD"
    seats: int = 10
    per_seat: bool = False
    restated: tuple[dt.date, Decimal] | None = None  # (from drop, amount shown from then on)

    def row(self, day: dt.date) -> dict[str, Any] | None:
        if self.start > day:
            return None
        amount = self.restated[1] if self.restated and day >= self.restated[0] else self.amount
        # the end is known 30 days ahead (a notice period), never before the start
        end = self.end if self.end is not None and day >= max(self.start, self.end - dt.timedelta(days=30)) else None
        return {"subscription_id": self.subscription_id, "account_id": self.account_id, "plan": self.plan,
                "product_line": self.product_line, "start_date": self.start, "end_date": end,
                "billing_interval": self.interval, "amount": amount, "currency": self.currency,
                "seats": self.seats, "is_per_seat": self.per_seat}

    def live_on(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day < self.end)


@dataclass
class _Invoice:
    invoice_id: str
    account_id: str
    issued: dt.date
    due: dt.date
    amount: Decimal
    paid: dt.date | None

    def row(self, day: dt.date) -> dict[str, Any] | None:
        if self.issued > day:
            return None
        paid = self.paid is not None and self.paid <= day
        return {"invoice_id": self.invoice_id, "account_id": self.account_id, "issued_date": self.issued,
                "due_date": self.due, "amount": self.amount, "currency": "USD",
                "status": "paid" if paid else "open", "paid_date": self.paid if paid else None}


@dataclass
class _Event:
    event_id: str
    account_id: str
    user_id: str
    at: dt.datetime
    delivered: dt.date  # the drop that carries it


@dataclass
class Script:
    """The scripted accounts, their rows as of any drop, their events per drop, and the expectations."""

    nights: list[dt.date]
    config: Config
    lifecycles: list[Lifecycle] = field(default_factory=list)
    not_scheduled: dict[str, str] = field(default_factory=dict)
    accounts: list[_Account] = field(default_factory=list)
    subscriptions: list[_Subscription] = field(default_factory=list)
    invoices: list[_Invoice] = field(default_factory=list)
    events: list[_Event] = field(default_factory=list)

    # --- what a drop holds ------------------------------------------------------------------
    def snapshot(self, qualified: str, day: dt.date) -> pa.Table:
        """The scripted rows of a snapshot entity as of ``day`` (an empty table when none)."""
        source = {"crm/accounts": self.accounts, "billing/subscriptions": self.subscriptions,
                  "billing/invoices": self.invoices}.get(qualified, [])
        rows = [r for item in source if (r := item.row(day)) is not None]
        return pa.Table.from_pylist(rows, schema=arrow_schema(get_entity(*qualified.split("/"))))

    def events_for_drop(self, day: dt.date) -> pa.Table:
        rows = [{"event_id": e.event_id, "account_id": e.account_id, "user_id": e.user_id,
                 "event_name": "dashboard_viewed", "feature": "dashboards", "occurred_at": e.at}
                for e in self.events if e.delivered == day]
        return pa.Table.from_pylist(rows, schema=arrow_schema(get_entity("usage", "events")))

    def as_dict(self) -> dict[str, Any]:
        return {
            "nights": [d.isoformat() for d in self.nights],
            "configuration": {"reactivation_window_months": self.config.reactivation_window_months,
                              "past_due_grace_days": self.config.past_due_grace_days,
                              "core_mrr": self.config.core_mrr, "scale_mrr": self.config.scale_mrr,
                              "eur_to_usd": str(self.config.eur_to_usd)},
            "lifecycles": [lc.as_dict() for lc in self.lifecycles],
            "not_scheduled": dict(self.not_scheduled),
        }

    def write(self, out_dir: Path) -> Path:
        path = Path(out_dir) / SCRIPT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    # --- building it --------------------------------------------------------------------------
    def _account(self, name: str, **kw: Any) -> _Account:
        account = _Account(f"lc_{name}", kw.pop("created", self.nights[0] - dt.timedelta(days=400)), **kw)
        self.accounts.append(account)
        return account

    def _subscribe(self, account: _Account, start: dt.date, end: dt.date | None, amount: int | Decimal,
                   **kw: Any) -> _Subscription:
        n = sum(1 for s in self.subscriptions if s.account_id == account.account_id) + 1
        sub = _Subscription(f"lc_sub_{account.account_id[3:]}_{n:02d}", account.account_id, start, end,
                            Decimal(amount).quantize(Decimal("0.01")), **kw)
        self.subscriptions.append(sub)
        return sub

    def _usage(self) -> None:
        """Daily events of every scripted account while a subscription is live, delivered in the
        first drop on or after their day (the first drop carries the history)."""
        first, last = self.nights[0] - dt.timedelta(days=USAGE_HISTORY_DAYS), self.nights[-1]
        day = first
        while day <= last:
            drop = next(n for n in self.nights if n >= day)
            for account in self.accounts:
                subs = [s for s in self.subscriptions if s.account_id == account.account_id]
                if not any(s.live_on(day) for s in subs):
                    continue
                for u in range(1, account.users + 1):
                    at = dt.datetime.combine(day, dt.time(9 + u, 15))
                    self.events.append(_Event(f"lc_evt_{account.account_id[3:]}_{day:%Y%m%d}_{u}",
                                              account.account_id, f"{account.account_id}_u{u}", at, drop))
            day += dt.timedelta(days=1)


def _sub(script: Script, account: _Account) -> list[_Subscription]:
    return [s for s in script.subscriptions if s.account_id == account.account_id]


def plan(nights: list[dt.date], config: Config) -> Script:
    """Place every lifecycle on the given nights (sorted, distinct; the first carries the history)."""
    nights = sorted(set(nights))
    script = Script(nights, config)
    n = len(nights)
    if n < 2:
        script.not_scheduled = {name: "needs at least two nights" for name in LIFECYCLES}
        return script
    d = nights
    tier = config.tier_names
    core, scale = config.core_mrr, config.scale_mrr
    long_ago = add_months(month_start(d[0]), -6)  # subscriptions older than the run

    def k_at(preferred: int) -> int:
        return max(1, min(preferred, n - 1))

    def add(lifecycle: Lifecycle) -> None:
        script.lifecycles.append(lifecycle)

    # new: a prospect on the first night subscribes on the second
    k = k_at(1)
    a = script._account("new", created=d[0] - dt.timedelta(days=20))
    script._subscribe(a, d[k], None, core)
    add(Lifecycle("new", a.account_id, d[k], f"prospect since {a.created}, subscribes on {d[k]}", [
        Expectation("fct_account_tiers_daily", {"account_id": a.account_id, "as_of_date": d[0]},
                    {"account_status": "prospect", "assigned_tier": None, "tier_score": None}, d[0],
                    note="a prospect has no tier and no tier score"),
        Expectation("dim_account_tier_history", {"account_id": a.account_id, "valid_from": d[k]},
                    {"change_type": "initial", "assigned_tier": tier[2]}, d[k]),
        Expectation("fct_mrr_movements", {"account_id": a.account_id, "month_start_date": month_start(d[k])},
                    {"movement_type": "new", "mrr_reporting": Decimal(core)}, d[k]),
    ]))

    # trial to paid
    k = k_at(2)
    a = script._account("trial_to_paid")
    trial_start = d[k - 1] - dt.timedelta(days=5)
    script._subscribe(a, trial_start, d[k], 0, plan="trial", seats=5)
    script._subscribe(a, d[k], None, core)
    add(Lifecycle("trial_to_paid", a.account_id, d[k], f"trial from {trial_start}, paid from {d[k]}", [
        Expectation("fct_account_tiers_daily", {"account_id": a.account_id, "as_of_date": d[k - 1]},
                    {"account_status": "live", "assigned_tier": tier[4]}, d[k - 1], note="on the trial"),
        Expectation("dim_account_tier_history", {"account_id": a.account_id, "valid_from": d[k]},
                    {"change_type": "upgrade", "assigned_tier": tier[2]}, d[k]),
        Expectation("fct_mrr_movements", {"account_id": a.account_id, "month_start_date": month_start(d[k])},
                    {"movement_type": "new", "mrr_reporting": Decimal(core)}, d[k],
                    note="a trial is not a customer (var revenue_count_trials_as_customers)"),
    ]))

    # expansion: a second product line
    k = k_at(2)
    a = script._account("expansion")
    script._subscribe(a, long_ago, None, core)
    script._subscribe(a, d[k], None, 500, product_line="analytics")
    add(Lifecycle("expansion", a.account_id, d[k], f"adds the analytics line on {d[k]}", [
        Expectation("fct_mrr_movements", {"account_id": a.account_id, "month_start_date": month_start(d[k])},
                    {"movement_type": "expansion", "expansion_mrr_reporting": Decimal(500)}, d[k]),
    ]))

    # contraction: the second line ends
    k = k_at(3)
    a = script._account("contraction")
    script._subscribe(a, long_ago, None, core)
    script._subscribe(a, long_ago, d[k], 500, product_line="analytics")
    add(Lifecycle("contraction", a.account_id, d[k], f"drops the analytics line on {d[k]}", [
        Expectation("fct_mrr_movements", {"account_id": a.account_id, "month_start_date": month_start(d[k])},
                    {"movement_type": "contraction", "contraction_mrr_reporting": Decimal(500)}, d[k]),
    ]))

    # churn
    k = k_at(2)
    a = script._account("churn")
    script._subscribe(a, long_ago, d[k], core)
    add(Lifecycle("churn", a.account_id, d[k], f"its only subscription ends on {d[k]}", [
        Expectation("fct_account_tiers_daily", {"account_id": a.account_id, "as_of_date": d[k]},
                    {"account_status": "churned", "assigned_tier": None, "migration_action": "churned",
                     "tier_score": None}, d[k]),
        Expectation("dim_account_tier_history", {"account_id": a.account_id, "valid_from": d[0]},
                    {"valid_to": d[k], "is_current": False}, d[k]),
        Expectation("fct_mrr_movements", {"account_id": a.account_id, "month_start_date": month_start(d[k])},
                    {"movement_type": "churn", "churned_mrr_reporting": Decimal(core)}, d[k]),
    ]))

    # returns within and after the reactivation window
    window = config.reactivation_window_months
    for name, inside in (("reactivation_in_window", True), ("reactivation_after_window", False)):
        pair = None
        for i in range(1, n):
            for j in range(i + 1, n):
                gap = months_between(d[i], d[j])  # inactive month-ends between leaving and returning
                if (1 <= gap <= window) if inside else gap > window:
                    pair = (i, j)
                    break
            if pair:
                break
        if pair is None:
            script.not_scheduled[name] = (
                f"needs a night after the first and a later night {'1' if inside else window + 1}"
                f"{f'-{window}' if inside else '+'} calendar months later (reactivation window {window})")
            continue
        i, j = pair
        a = script._account(name)
        script._subscribe(a, long_ago, d[i], core)
        script._subscribe(a, d[j], None, core)
        left, back = month_start(d[i]), month_start(d[j])
        checks = [
            Expectation("fct_mrr_movements", {"account_id": a.account_id, "month_start_date": left},
                        {"movement_type": "churn"}, d[i], d[j], note="until the return is known"),
            Expectation("dim_account_tier_history", {"account_id": a.account_id, "valid_from": d[0]},
                        {"valid_to": d[i]}, d[i]),
            Expectation("dim_account_tier_history", {"account_id": a.account_id, "valid_from": d[j]},
                        {"change_type": "reactivated", "assigned_tier": tier[2]}, d[j]),
        ]
        if inside:
            checks += [
                Expectation("fct_mrr_movements", {"account_id": a.account_id, "month_start_date": left},
                            {"movement_type": "contraction", "mrr_reporting": Decimal(0)}, d[j],
                            note="the gap is bridged: the account never churned"),
                Expectation("fct_mrr_movements", {"account_id": a.account_id, "month_start_date": back},
                            {"movement_type": "expansion", "mrr_reporting": Decimal(core)}, d[j]),
            ]
        else:
            checks += [
                Expectation("fct_mrr_movements", {"account_id": a.account_id, "month_start_date": left},
                            {"movement_type": "churn"}, d[j]),
                Expectation("fct_mrr_movements", {"account_id": a.account_id, "month_start_date": back},
                            {"movement_type": "reactivation", "reactivation_mrr_reporting": Decimal(core)}, d[j]),
            ]
        add(Lifecycle(name, a.account_id, d[j], f"leaves on {d[i]}, back on {d[j]}", checks))

    # upgrade at once
    k = k_at(1)
    a = script._account("upgrade")
    script._subscribe(a, long_ago, d[k], scale)
    script._subscribe(a, d[k], None, core)
    add(Lifecycle("upgrade", a.account_id, d[k], f"{tier[3]} to {tier[2]} ARR on {d[k]}", [
        Expectation("fct_account_tiers_daily", {"account_id": a.account_id, "as_of_date": d[k]},
                    {"assigned_tier": tier[2], "migration_action": "upgrade"}, d[k]),
        Expectation("dim_account_tier_history", {"account_id": a.account_id, "valid_from": d[k]},
                    {"change_type": "upgrade", "previous_tier_number": 3}, d[k]),
    ]))

    # a downgrade held to the renewal, then applied
    if n >= 3:
        i = k_at(2) if n >= 4 else 1
        j = i + 1
        renewal = max(d[i] + dt.timedelta(days=1), d[j] - dt.timedelta(days=1))
        a = script._account("held_downgrade")
        script._subscribe(a, long_ago, d[i], core)
        script._subscribe(a, d[i], renewal, scale)  # the contracted term, renewing on `renewal`
        script._subscribe(a, renewal, None, scale)
        add(Lifecycle("held_downgrade", a.account_id, d[j],
                      f"contracts to {tier[3]} ARR on {d[i]}, renews on {renewal}", [
                          Expectation("fct_account_tiers_daily", {"account_id": a.account_id, "as_of_date": d[i]},
                                      {"assigned_tier": tier[2], "migration_action": "held",
                                       "is_downgrade_pending": True, "pending_downgrade_date": renewal}, d[i]),
                          Expectation("fct_account_tiers_daily", {"account_id": a.account_id, "as_of_date": d[j]},
                                      {"assigned_tier": tier[3], "migration_action": "downgrade"}, d[j]),
                          Expectation("dim_account_tier_history", {"account_id": a.account_id, "valid_from": d[j]},
                                      {"change_type": "downgrade", "assigned_tier": tier[3]}, d[j]),
                      ]))
    else:
        script.not_scheduled["held_downgrade"] = "needs three nights (contract, held, renewed)"

    # deleted from the CRM extract and restored
    if n >= 3:
        i = k_at(2) if n >= 4 else 1
        a = script._account("crm_restored", missing_on=frozenset({d[i]}))
        script._subscribe(a, long_ago, None, core)
        add(Lifecycle("crm_restored", a.account_id, d[i + 1], f"missing from the CRM extract on {d[i]} only", [
            Expectation("fct_account_tiers_daily", {"account_id": a.account_id, "as_of_date": d[i]}, None, d[i],
                        note="no row the night it is missing"),
            Expectation("dim_account_tier_history", {"account_id": a.account_id, "valid_from": d[0]},
                        {"valid_to": d[i - 1] + dt.timedelta(days=1), "is_current": False}, d[i],
                        note="closes the day after its last row, and keeps that end"),
            Expectation("dim_account_tier_history", {"account_id": a.account_id, "valid_from": d[i + 1]},
                        {"change_type": "reactivated", "assigned_tier": tier[2], "is_current": True}, d[i + 1]),
        ]))
    else:
        script.not_scheduled["crm_restored"] = "needs three nights (there, missing, back)"

    # CSM owner change
    k = k_at(3)
    a = script._account("csm_change", csm_from=(d[k], OTHER_CSM))
    script._subscribe(a, long_ago, None, core)
    add(Lifecycle("csm_change", a.account_id, d[k], f"CSM {CSM} -> {OTHER_CSM} on {d[k]}", [
        Expectation("dim_accounts", {"account_id": a.account_id, "as_of_date": NIGHT}, {"csm_owner_id": CSM},
                    d[0], d[k]),
        Expectation("dim_accounts", {"account_id": a.account_id, "as_of_date": NIGHT}, {"csm_owner_id": OTHER_CSM},
                    d[k]),
    ]))

    # monthly -> annual at the same MRR
    k = k_at(3)
    a = script._account("interval_change")
    script._subscribe(a, long_ago, d[k], core)
    script._subscribe(a, d[k], None, 12 * core, interval="year")
    add(Lifecycle("interval_change", a.account_id, d[k], f"monthly to annual on {d[k]}", [
        Expectation("fct_mrr_account_monthly", {"account_id": a.account_id, "month_start_date": month_start(d[k])},
                    {"mrr_reporting": Decimal(core), "movement_type": None}, d[k], note="same MRR, no movement"),
        Expectation("dim_accounts", {"account_id": a.account_id, "as_of_date": NIGHT},
                    {"next_renewal_date": add_months(d[k], 12)}, d[k], add_months(d[k], 12)),
    ]))

    # EUR -> USD
    k = k_at(2)
    eur, usd = Decimal(core), Decimal(core) * Decimal("1.2")
    a = script._account("currency_change", country="DE")
    script._subscribe(a, long_ago, d[k], eur, currency="EUR")
    script._subscribe(a, d[k], None, usd)
    before = add_months(month_start(d[k]), -1)
    add(Lifecycle("currency_change", a.account_id, d[k], f"EUR {eur} a month, then USD {usd} from {d[k]}", [
        Expectation("fct_mrr_account_monthly", {"account_id": a.account_id, "month_start_date": before},
                    {"mrr_reporting": (eur * config.eur_to_usd).quantize(Decimal("0.01"))}, d[k],
                    note="at the seed's EUR/USD rate"),
        Expectation("fct_mrr_movements", {"account_id": a.account_id, "month_start_date": month_start(d[k])},
                    {"movement_type": "expansion", "mrr_reporting": usd.quantize(Decimal("0.01"))}, d[k]),
    ]))

    # seats 10 -> 25 on a per-seat plan
    k = k_at(1)
    per_seat = Decimal(core) / 20  # 10 seats: half the Core MRR (Scale); 25 seats: Core
    a = script._account("seat_change")
    script._subscribe(a, long_ago, d[k], per_seat, seats=10, per_seat=True)
    script._subscribe(a, d[k], None, per_seat, seats=25, per_seat=True)
    add(Lifecycle("seat_change", a.account_id, d[k], f"10 to 25 seats on {d[k]}", [
        Expectation("fct_mrr_account_monthly", {"account_id": a.account_id, "month_start_date": month_start(d[k])},
                    {"seats": 25, "mrr_reporting": (25 * per_seat).quantize(Decimal("0.01")),
                     "movement_type": "expansion"}, d[k]),
    ]))

    # past due: suspended on one night, paid before the next
    if config.past_due_grace_days is None:
        script.not_scheduled["past_due"] = "var revenue_past_due_grace_days is null: past-due invoices never suspend"
    elif n >= 3:
        i, j = n - 2, n - 1
        due = d[i] - dt.timedelta(days=config.past_due_grace_days)
        paid = max(d[i] + dt.timedelta(days=1), d[j] - dt.timedelta(days=1))
        a = script._account("past_due")
        script._subscribe(a, long_ago, None, core)
        script.invoices.append(_Invoice("lc_inv_past_due_01", a.account_id, due - dt.timedelta(days=30), due,
                                        Decimal(core), paid))
        add(Lifecycle("past_due", a.account_id, d[i], f"invoice due {due} unpaid: suspended from {d[i]}, paid {paid}", [
            Expectation("fct_mrr_account_monthly", {"account_id": a.account_id, "month_start_date": month_start(d[i])},
                        {"is_past_due_suspended": True, "mrr_reporting": Decimal(0)}, d[i], d[j]),
            Expectation("fct_mrr_account_monthly", {"account_id": a.account_id, "month_start_date": month_start(d[j])},
                        {"is_past_due_suspended": False, "mrr_reporting": Decimal(core)}, d[j],
                        note="paid: recovered"),
        ]))
    else:
        script.not_scheduled["past_due"] = "needs three nights (before, suspended, paid)"

    # billing restated for a month the run published and that has closed since
    k = next((i for i in range(1, n) if month_start(d[i]) > month_start(d[i - 1])), None)
    a = script._account("restated_month")
    if k is not None:
        month, seen = month_start(d[k - 1]), d[k - 1]
    else:  # every night in one month: restate the month before the run
        k, month, seen = 1, add_months(month_start(d[0]), -1), d[0]
    after = add_months(month, 1)
    script._subscribe(a, long_ago, month, core)
    script._subscribe(a, month, after, core, restated=(d[k], Decimal(core + 100)))
    script._subscribe(a, after, None, core)
    add(Lifecycle("restated_month", a.account_id, d[k], f"{month:%B %Y} restated from {core} to {core + 100} on {d[k]}", [
        Expectation("fct_mrr_account_monthly", {"account_id": a.account_id, "month_start_date": month},
                    {"mrr_reporting": Decimal(core)}, seen, d[k], note="as first billed"),
        Expectation("fct_mrr_account_monthly", {"account_id": a.account_id, "month_start_date": month},
                    {"mrr_reporting": Decimal(core + 100)}, d[k], note="restated after the month closed"),
        Expectation("fct_mrr_movements", {"account_id": a.account_id, "month_start_date": after},
                    {"movement_type": "contraction", "contraction_mrr_reporting": Decimal(100)}, d[k]),
    ]))

    # late and duplicate usage events
    k = k_at(1)
    a = script._account("late_event", users=4)
    script._subscribe(a, long_ago, None, core, seats=10)
    late_at = dt.datetime.combine(d[k - 1], dt.time(16, 0))
    script.events.append(_Event(f"lc_evt_late_{d[k - 1]:%Y%m%d}", a.account_id, f"{a.account_id}_u5", late_at, d[k]))
    add(Lifecycle("late_event", a.account_id, d[k], f"an event of {d[k - 1]} arrives with the drop of {d[k]}", [
        Expectation("fct_account_segments_daily", {"account_id": a.account_id, "as_of_date": d[k - 1]},
                    {"seat_utilisation": Decimal("0.4")}, d[k - 1], note="4 active users of 10 seats"),
        Expectation("fct_account_segments_daily", {"account_id": a.account_id, "as_of_date": d[k]},
                    {"seat_utilisation": Decimal("0.5")}, d[k], note="the late user counts from its night"),
    ]))
    a = script._account("duplicate_event", users=1)
    script._subscribe(a, long_ago, None, core, seats=10)
    add(Lifecycle("duplicate_event", a.account_id, d[k],
                  f"the drop of {d[k]} re-sends 10 days of events, one of them twice", [
                      Expectation("fct_account_segments_daily", {"account_id": a.account_id, "as_of_date": d[k]},
                                  {"usage_trend": Decimal(0)}, d[k],
                                  note="one event a day in both windows: counted once, the trend is flat"),
                  ]))
    script._usage()
    # the duplicates: the 10 days before the night again, and the night's own event twice
    originals = [e for e in script.events if e.account_id == a.account_id
                 and d[k] - dt.timedelta(days=10) <= e.at.date() < d[k]]
    own = [e for e in script.events if e.account_id == a.account_id and e.at.date() == d[k]]
    script.events += [_Event(e.event_id, e.account_id, e.user_id, e.at, d[k]) for e in originals + own]
    return script
