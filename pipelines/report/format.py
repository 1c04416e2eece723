"""Number formats by unit and HTML tables that scroll inside their own box."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pipelines.report.periods import mark_of


def esc(v: Any) -> str:
    return html.escape(str(v))


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


def money(v: Any) -> str:
    f = _num(v)
    return "–" if f is None else f"${f:,.0f}"


def pct(v: Any) -> str:
    f = _num(v)
    return "–" if f is None else f"{f * 100:.1f}%"


def count(v: Any) -> str:
    f = _num(v)
    return "–" if f is None else f"{f:,.0f}"


def score(v: Any) -> str:
    f = _num(v)
    return "–" if f is None else f"{f:.0f}"


def decimal1(v: Any) -> str:
    f = _num(v)
    return "–" if f is None else f"{f:,.1f}"


def ratio(v: Any) -> str:
    f = _num(v)
    return "–" if f is None else f"{f:.1f}x"


def auc(v: Any) -> str:
    """A ranking quality (ROC AUC, 0-1) with two decimals: 0.50 is chance."""
    f = _num(v)
    return "–" if f is None else f"{f:.2f}"


def months(v: Any) -> str:
    f = _num(v)
    return "–" if f is None else f"{f:.1f} months"


def years(v: Any) -> str:
    f = _num(v)
    return "–" if f is None else f"{f:.1f} years"


def days(v: Any) -> str:
    f = _num(v)
    return "–" if f is None else f"{f:,.0f} days"


def yes_no(v: Any) -> str:
    return "–" if v is None else ("yes" if v else "no")


def date(v: Any) -> str:
    if v is None:
        return "–"
    return v.isoformat() if isinstance(v, dt.date) else str(v)


def month(v: Any) -> str:
    return v.strftime("%Y-%m") if isinstance(v, dt.date) else str(v)[:7]


def quarter(v: Any) -> str:
    return f"{v.year}-Q{(v.month - 1) // 3 + 1}" if isinstance(v, dt.date) else str(v)


def text(v: Any) -> str:
    return "–" if v is None else str(v)


NUMERIC = {money, pct, count, score, decimal1, ratio, auc, months, years, days}


@dataclass(frozen=True)
class Col:
    key: str
    header: str
    fmt: Callable[[Any], str] = text
    wrap: bool = False  # long text (reasons, drivers) wraps instead of widening the table

    @property
    def numeric(self) -> bool:
        return self.fmt in NUMERIC


def _cls(c: Col) -> str:
    return " class=n" if c.numeric else (" class=w" if c.wrap else "")


def table(rows: Sequence[dict[str, Any]], cols: Sequence[Col], *, caption: str = "", periods: bool = False) -> str:
    """A table in a box that scrolls sideways on narrow screens, never the page.

    With ``periods``, rows of an in-progress or backcast period get a marked "period" cell.
    """
    if not rows:
        return '<div class="nodata">no rows</div>'
    head = "".join(f'<th{_cls(c)}>{esc(c.header)}</th>' for c in cols)
    if periods:
        head += "<th>period</th>"
    body = []
    for r in rows:
        cells = "".join(f"<td{_cls(c)}>{esc(c.fmt(r.get(c.key)))}</td>" for c in cols)
        cls = ""
        if periods:
            mark = mark_of(r)
            cls = f' class="{mark.replace(" ", "-")}"' if mark else ""
            cells += f'<td>{f"<span class=badge>{esc(mark)}</span>" if mark else "complete"}</td>'
        body.append(f"<tr{cls}>{cells}</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def as_float(v: Any) -> float | None:
    if v is None:
        return None
    return float(v) if isinstance(v, int | float | Decimal) else None
