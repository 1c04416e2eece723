"""Fixed vocabularies and price lists of the synthetic B2B SaaS business.

Everything here is plain data: the simulation modules draw from these tables. FX rates
match ``dbt_project/seeds/fx_rates.csv`` (reporting currency USD) so that ARR computed
downstream equals the ARR the generator aimed at.
"""

from __future__ import annotations

import numpy as np

# --- geography ---------------------------------------------------------------------------
# code, region, weight, billing currency, UTC hour of peak usage, log-ARR adjustment
COUNTRIES: tuple[tuple[str, str, float, str, float, float], ...] = (
    ("US", "NA", 0.40, "USD", 18.0, 0.15),
    ("CA", "NA", 0.05, "CAD", 17.0, 0.10),
    ("MX", "LATAM", 0.02, "USD", 17.0, -0.45),
    ("GB", "EMEA", 0.09, "GBP", 12.0, 0.05),
    ("DE", "EMEA", 0.07, "EUR", 11.0, 0.05),
    ("FR", "EMEA", 0.05, "EUR", 11.0, 0.0),
    ("NL", "EMEA", 0.03, "EUR", 11.0, 0.0),
    ("SE", "EMEA", 0.02, "EUR", 11.0, 0.0),
    ("ES", "EMEA", 0.02, "EUR", 11.0, -0.15),
    ("IE", "EMEA", 0.01, "EUR", 12.0, 0.0),
    ("JP", "APAC", 0.03, "JPY", 3.0, 0.0),
    ("AU", "APAC", 0.04, "AUD", 1.0, -0.05),
    ("SG", "APAC", 0.02, "USD", 4.0, -0.05),
    ("IN", "APAC", 0.03, "USD", 7.0, -0.45),
    ("BR", "LATAM", 0.03, "USD", 15.0, -0.45),
    ("AR", "LATAM", 0.01, "USD", 15.0, -0.55),
    ("CO", "LATAM", 0.01, "USD", 16.0, -0.55),
)

# Company suffix by country for account names.
NAME_SUFFIX: dict[str, str] = {
    "US": "Inc", "CA": "Inc", "MX": "SA de CV", "GB": "Ltd", "DE": "GmbH", "FR": "SAS",
    "NL": "BV", "SE": "AB", "ES": "SL", "IE": "Ltd", "JP": "KK", "AU": "Pty Ltd",
    "SG": "Pte Ltd", "IN": "Pvt Ltd", "BR": "Ltda", "AR": "SRL", "CO": "SAS",
}

CURRENCIES: tuple[str, ...] = ("USD", "EUR", "GBP", "CAD", "AUD", "JPY")
#: USD per unit of currency (same as the dbt seed fx_rates.csv).
FX_TO_USD: dict[str, float] = {
    "USD": 1.0, "EUR": 1.08, "GBP": 1.27, "CAD": 0.74, "AUD": 0.66, "JPY": 0.0067,
}
#: Currencies invoiced in whole units.
ZERO_DECIMAL_CURRENCIES: frozenset[str] = frozenset({"JPY"})

# --- industries ----------------------------------------------------------------------------
# name (free text as the CRM holds it), group, weight, log-employee adj, log-ARR adj
INDUSTRIES: tuple[tuple[str, str, float, float, float], ...] = (
    ("Software", "fast-moving", 0.15, -0.2, 0.15),
    ("Technology", "fast-moving", 0.10, 0.0, 0.10),
    ("Agency", "fast-moving", 0.06, -0.7, -0.15),
    ("Startup", "fast-moving", 0.06, -1.0, -0.20),
    ("Healthcare", "regulated", 0.08, 0.4, 0.30),
    ("Finance", "regulated", 0.06, 0.3, 0.40),
    ("Banking", "regulated", 0.04, 0.6, 0.50),
    ("Insurance", "regulated", 0.04, 0.4, 0.35),
    ("Government", "regulated", 0.04, 0.7, 0.20),
    ("Manufacturing", "traditional", 0.12, 0.3, -0.20),
    ("Retail", "traditional", 0.10, 0.2, -0.30),
    ("Logistics", "traditional", 0.06, 0.1, -0.25),
    ("Professional Services", "fast-moving", 0.03, -0.3, -0.10),
)

# --- plans and products --------------------------------------------------------------------
PLANS: tuple[str, ...] = ("free", "trial", "starter", "growth", "enterprise")
FREE, TRIAL, STARTER, GROWTH, ENTERPRISE = range(5)
#: List price per seat per year in USD (0 for free and trial).
PRICE_PER_SEAT_YEAR_USD: tuple[float, ...] = (0.0, 0.0, 480.0, 1080.0, 1800.0)
#: Highest number of features (see FEATURES) a plan gives access to, and the number on day one.
PLAN_MAX_FEATURES: tuple[int, ...] = (2, 5, 4, 6, 8)
PLAN_BASE_FEATURES: tuple[int, ...] = (1, 3, 2, 3, 4)

PRODUCT_LINES: tuple[str, ...] = ("core", "analytics", "automation", "security")
#: Relative ARR weight of each line for an account that owns it.
LINE_WEIGHT: tuple[float, ...] = (1.0, 0.35, 0.30, 0.25)
#: USD ARR around which an account is likely to own the line (logistic midpoint).
LINE_ARR_MIDPOINT: tuple[float, ...] = (0.0, 45_000.0, 90_000.0, 160_000.0)

INTERVALS: tuple[str, ...] = ("month", "quarter", "year")
INTERVAL_MONTHS: tuple[int, ...] = (1, 3, 12)

# --- usage -----------------------------------------------------------------------------------
#: Features in the order accounts adopt them: core features first, advanced ones later.
FEATURES: tuple[str, ...] = (
    "dashboards", "reports", "integrations", "api",
    "automation_rules", "ai_assistant", "sso", "audit_log",
)
CORE_FEATURES: tuple[str, ...] = FEATURES[:4]
#: Two event names per feature (index 2*f and 2*f+1), then the feature-less ``login``.
EVENT_NAMES: tuple[str, ...] = (
    "dashboard_viewed", "dashboard_created",
    "report_viewed", "report_exported",
    "integration_synced", "integration_configured",
    "api_call", "api_token_created",
    "automation_run", "automation_rule_created",
    "ai_prompt_sent", "ai_answer_rated",
    "sso_login", "sso_login",
    "audit_log_viewed", "audit_log_exported",
    "login",
)
LOGIN_EVENT = len(EVENT_NAMES) - 1

# --- CRM ---------------------------------------------------------------------------------------
ACTIVITY_TYPES: tuple[str, ...] = ("qbr", "check_in", "email", "call", "training", "escalation")
PRIORITIES: tuple[str, ...] = ("urgent", "high", "normal", "low")
CASE_STATUSES: tuple[str, ...] = ("open", "pending", "solved", "closed")

NAME_FIRST: tuple[str, ...] = (
    "Acme", "Apex", "Atlas", "Aurora", "Beacon", "Blue", "Bright", "Cedar", "Cobalt", "Crest",
    "Delta", "Echo", "Ember", "Evergreen", "Falcon", "Fjord", "Granite", "Harbor", "Helix",
    "Horizon", "Iron", "Juniper", "Keystone", "Lumen", "Maple", "Meridian", "Nimbus", "Northwind",
    "Nova", "Oak", "Orbit", "Pacific", "Pinnacle", "Polar", "Prairie", "Quantum", "Radiant",
    "Redwood", "Ridge", "River", "Sage", "Sierra", "Silver", "Summit", "Terra", "Tidal", "Union",
    "Vanguard", "Vertex", "Willow", "Zenith", "Müller", "Société", "Nordström", "Café", "Málaga",
    "São", "Åkerlund", "Crème", "Zürich",
)
NAME_SECOND: tuple[str, ...] = (
    "Analytics", "Systems", "Labs", "Partners", "Logistics", "Health", "Capital", "Foods",
    "Retail", "Motors", "Networks", "Energy", "Media", "Group", "Holdings", "Works", "Dynamics",
    "Solutions", "Industries", "Bank", "Insurance", "Cloud", "Robotics", "Pharma", "Studios",
    "Markets", "Freight", "Software", "Consulting", "Digital", "Ventures", "Supply", "Care",
    "Finance", "Data", "Security", "Design", "Mobility", "Agency", "Technologies",
)


def country_arrays() -> dict[str, np.ndarray]:
    """The COUNTRIES table as column arrays."""
    return {
        "code": np.array([c[0] for c in COUNTRIES]),
        "region": np.array([c[1] for c in COUNTRIES]),
        "weight": np.array([c[2] for c in COUNTRIES]) / sum(c[2] for c in COUNTRIES),
        "currency": np.array([CURRENCIES.index(c[3]) for c in COUNTRIES], dtype=np.int8),
        "peak_hour": np.array([c[4] for c in COUNTRIES]),
        "arr_adj": np.array([c[5] for c in COUNTRIES]),
    }


def industry_arrays() -> dict[str, np.ndarray]:
    """The INDUSTRIES table as column arrays."""
    return {
        "name": np.array([i[0] for i in INDUSTRIES]),
        "weight": np.array([i[2] for i in INDUSTRIES]) / sum(i[2] for i in INDUSTRIES),
        "emp_adj": np.array([i[3] for i in INDUSTRIES]),
        "arr_adj": np.array([i[4] for i in INDUSTRIES]),
    }
