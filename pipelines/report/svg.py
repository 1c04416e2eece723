"""Small inline-SVG charts (line, grouped/stacked bars, horizontal bars with target bands).

Pure Python, no dependencies, no JavaScript: every chart is a self-contained ``<svg>`` string
with ``<title>`` tooltips that browsers show on hover. The SVG has a ``viewBox`` and scales
down with its container (CSS ``max-width:100%``), so charts fit a phone screen.

Conventions the report's browser test relies on:

* the plot area is one ``<rect class="plot">``; every data mark (bar, point, line) carries
  ``class="mark"`` and lies inside it: the value axis always covers the data (ticks are
  extended to the next step above the maximum and below the minimum);
* ``periods`` marks x positions that are not like the others (``"in progress"`` for the
  period containing the as-of date, ``"backcast"`` for periods before the daily history)
  with a shaded band and a legend entry.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence

PALETTE = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#2c7a7b", "#975a16", "#4a5568")
TIER_COLORS = {"Strategic": "#2b6cb0", "Core": "#2f855a", "Scale": "#c05621", "Tech-touch": "#6b46c1",
               "All": "#4a5568", "all accounts": "#4a5568"}
STATUS_COLORS = {"healthy": "#2f855a", "at-risk": "#d69e2e", "at_risk": "#d69e2e", "critical": "#c53030",
                 "unknown": "#a0aec0", "upgrade": "#2f855a", "downgrade": "#c53030",
                 # health trend and action priorities (issue 21)
                 "down": "#c53030", "same": "#718096", "up": "#2f855a", "no history": "#cbd5e0",
                 "high": "#c53030", "medium": "#d69e2e", "low": "#718096"}
#: Background of marked periods (see the module docstring).
PERIOD_FILLS = {"in progress": "#fefcbf", "backcast": "#edf2f7"}
PERIOD_LABELS = {"in progress": "in progress (period not over)", "backcast": "backcast (before the daily history)"}

Fmt = Callable[[float], str]


def pct(v: float) -> str:
    return f"{v * 100:.0f}%" if abs(v) >= 0.1 or v == 0 else f"{v * 100:.1f}%"


def money(v: float) -> str:
    a = abs(v)
    if a >= 1e6:
        return f"${v / 1e6:.1f}M"
    if a >= 1e3:
        return f"${v / 1e3:.0f}K" if a >= 1e4 else f"${v / 1e3:.1f}K"
    return f"${v:.0f}"


def count(v: float) -> str:
    """Whole things (accounts, logos, changes): never a currency, never a fraction."""
    return f"{v:,.0f}"


def num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.2g}"


def ratio(v: float) -> str:
    return f"{v:.1f}x"


def auc(v: float) -> str:
    return f"{v:.2f}"


def color_for(name: str, i: int) -> str:
    return TIER_COLORS.get(name) or STATUS_COLORS.get(name.lower()) or PALETTE[i % len(PALETTE)]


def nice_ticks(lo: float, hi: float, n: int = 5, min_step: float = 0.0) -> list[float]:
    """Evenly spaced round ticks from at or below ``lo`` to at or above ``hi``."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = max(min_step, next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw))
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    return [round(i * step, 10) for i in range(first, last + 1)]


def _esc(s: object) -> str:
    return html.escape(str(s))


def _legend(entries: Sequence[tuple[str, str]], x: float, y: float, width: float) -> tuple[str, float]:
    """Legend swatches, wrapped onto new rows; returns (svg, height used)."""
    out, cx, cy = [], x, y
    for name, fill in entries:
        w = 24 + 6.2 * len(str(name))
        if cx > x and cx + w > width - 8:
            cx, cy = x, cy + 16
        out.append(f'<rect x="{cx:.1f}" y="{cy - 9:.1f}" width="10" height="10" fill="{fill}" stroke="#cbd2d9"/>'
                   f'<text x="{cx + 14:.1f}" y="{cy:.1f}" font-size="11">{_esc(name)}</text>')
        cx += w
    return "".join(out), cy - y + 16


def _frame(width: int, height: float, title: str, body: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0f}" width="{width}" '
            f'height="{height:.0f}" role="img" aria-label="{_esc(title)}" class="chart" '
            f'font-family="system-ui,sans-serif"><title>{_esc(title)}</title>'
            f'<text x="8" y="17" font-size="13" font-weight="600">{_esc(title)}</text>{body}</svg>')


def _empty(title: str, width: int) -> str:
    return _frame(width, 60, title, '<text x="8" y="42" font-size="12" fill="#616e7c">no data</text>')


def _period_bands(periods: Mapping[str, str], xs: Sequence[str], x_of: Callable[[int], tuple[float, float]],
                  top: float, ph: float) -> tuple[str, list[tuple[str, str]]]:
    parts, kinds = [], []
    for i, x in enumerate(xs):
        kind = periods.get(x)
        if not kind:
            continue
        a, b = x_of(i)
        parts.append(f'<rect class="period" data-period="{_esc(kind)}" x="{a:.1f}" y="{top}" width="{b - a:.1f}" '
                     f'height="{ph}" fill="{PERIOD_FILLS.get(kind, "#edf2f7")}"><title>{_esc(x)}: '
                     f'{_esc(PERIOD_LABELS.get(kind, kind))}</title></rect>')
        if kind not in kinds:
            kinds.append(kind)
    return "".join(parts), [(PERIOD_LABELS.get(k, k), PERIOD_FILLS.get(k, "#edf2f7")) for k in kinds]


def _y_axis(ticks: Sequence[float], sy: Callable[[float], float], left: float, pw: float, fmt: Fmt) -> str:
    return "".join(
        f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#e4e7eb"/>'
        f'<text x="{left - 4}" y="{sy(t) + 4:.1f}" font-size="10" text-anchor="end">{_esc(fmt(t))}</text>'
        for t in ticks
    )


def line_chart(
    series: dict[str, list[tuple[str, float | None]]],
    title: str,
    *,
    fmt: Fmt = num,
    width: int = 560,
    height: int = 250,
    reference: float | None = None,
    periods: Mapping[str, str] | None = None,
    in_progress: set[tuple[str, str]] | None = None,
) -> str:
    """One line per series over shared, ordered x labels (e.g. months). Gaps for ``None``.

    Points of an in-progress period (``periods``, or ``(series, x)`` pairs in ``in_progress``
    when the x axis is not calendar time) are drawn hollow.
    """
    xs: list[str] = sorted({x for pts in series.values() for x, _ in pts})
    vals = [v for pts in series.values() for _, v in pts if v is not None]
    if not xs or not vals:
        return _empty(title, width)
    ticks = nice_ticks(min([*vals, *([reference] if reference is not None else [])]),
                       max([*vals, *([reference] if reference is not None else [])]))
    lo, hi = ticks[0], ticks[-1]
    left, right, top, bottom = 52, 14, 30, 26
    pw, ph = width - left - right, height - top - bottom
    pad = pw / (2 * len(xs))  # half a slot on each side: every point sits inside the plot

    def sx(i: int) -> float:
        return left + pad + (pw - 2 * pad) * (i / (len(xs) - 1) if len(xs) > 1 else 0.5)

    def sy(v: float) -> float:
        return top + ph - (v - lo) / (hi - lo) * ph

    bands, period_legend = _period_bands(periods or {}, xs, lambda i: (sx(i) - pad, sx(i) + pad), top, ph)
    parts = [bands, f'<rect class="plot" x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
             f'stroke="#e4e7eb"/>', _y_axis(ticks, sy, left, pw, fmt)]
    step = max(1, math.ceil(len(xs) / max(1, pw // 64)))
    for i, x in enumerate(xs):
        if i % step == 0 or (i == len(xs) - 1 and (len(xs) - 1) % step >= step / 2):
            parts.append(f'<text x="{sx(i):.1f}" y="{top + ph + 14}" font-size="10" text-anchor="middle">'
                         f'{_esc(x)}</text>')
    if reference is not None:
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(reference):.1f}" y2="{sy(reference):.1f}" '
                     f'stroke="#718096" stroke-dasharray="4 3"/>')
    legend: list[tuple[str, str]] = []
    index = {x: i for i, x in enumerate(xs)}
    for n, (name, pts) in enumerate(series.items()):
        c = color_for(name, n)
        legend.append((name, c))
        segs, cur = [], []
        for x, v in sorted(pts):
            if v is None:
                if cur:
                    segs.append(cur)
                cur = []
            else:
                cur.append((sx(index[x]), sy(v), x, v))
        if cur:
            segs.append(cur)
        for seg in segs:
            d = " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in seg)
            parts.append(f'<polyline class="mark" points="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
            for px, py, x, v in seg:
                hollow = (periods or {}).get(x) == "in progress" or (name, x) in (in_progress or ())
                parts.append(f'<circle class="mark" cx="{px:.1f}" cy="{py:.1f}" r="2.5" '
                             f'fill="{"#fff" if hollow else c}" stroke="{c}"><title>{_esc(name)} {_esc(x)}: '
                             f'{_esc(fmt(v))}</title></circle>')
    if in_progress:
        period_legend.append(("hollow point: month in progress", "#fff"))
    svg_legend, lh = _legend(legend + period_legend, left, height, width)
    return _frame(width, height + lh, title, "".join(parts) + svg_legend)


def bar_chart(
    categories: Sequence[str],
    series: dict[str, Sequence[float | None]],
    title: str,
    *,
    fmt: Fmt = num,
    stacked: bool = False,
    width: int = 560,
    height: int = 250,
    periods: Mapping[str, str] | None = None,
) -> str:
    """Vertical bars: one group per category, one bar per series (or stacked)."""
    cats = list(categories)
    if not cats or not series:
        return _empty(title, width)
    clean = {k: [float(v) if v is not None else 0.0 for v in vs] for k, vs in series.items()}
    if stacked:
        highs = [sum(max(vs[i], 0) for vs in clean.values()) for i in range(len(cats))]
        lows = [sum(min(vs[i], 0) for vs in clean.values()) for i in range(len(cats))]
    else:
        highs = lows = [v for vs in clean.values() for v in vs]
    ticks = nice_ticks(min(0.0, *lows), max(0.0, *highs), min_step=1.0 if fmt is count else 0.0)
    lo, hi = ticks[0], ticks[-1]
    left, right, top, bottom = 56, 14, 30, 26
    pw, ph = width - left - right, height - top - bottom

    def sy(v: float) -> float:
        return top + ph - (v - lo) / (hi - lo) * ph

    gw = pw / len(cats)
    nser = len(clean)
    bw = gw * 0.8 / (1 if stacked else nser)
    bands, period_legend = _period_bands(periods or {}, cats, lambda i: (left + gw * i, left + gw * (i + 1)), top, ph)
    parts = [bands, f'<rect class="plot" x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
             f'stroke="#e4e7eb"/>', _y_axis(ticks, sy, left, pw, fmt)]
    colors = [color_for(k, i) for i, k in enumerate(clean)]
    step = max(1, math.ceil(len(cats) / max(1, pw // 64)))
    for ci, cat in enumerate(cats):
        gx = left + gw * ci + gw * 0.1
        up, down = 0.0, 0.0
        for si, (name, vs) in enumerate(clean.items()):
            v = vs[ci]
            if stacked:
                base = up if v >= 0 else down
                y0, y1 = sy(base), sy(base + v)
                if v >= 0:
                    up += v
                else:
                    down += v
                x = gx
            else:
                y0, y1 = sy(0), sy(v)
                x = gx + bw * si
            parts.append(f'<rect class="mark" x="{x:.1f}" y="{min(y0, y1):.1f}" width="{max(bw - 1, 1):.1f}" '
                         f'height="{abs(y0 - y1):.1f}" fill="{colors[si]}"><title>{_esc(cat)} · {_esc(name)}: '
                         f'{_esc(fmt(v))}</title></rect>')
        if ci % step == 0:
            parts.append(f'<text x="{left + gw * ci + gw / 2:.1f}" y="{top + ph + 14}" font-size="10" '
                         f'text-anchor="middle">{_esc(cat)}</text>')
    entries = list(zip(clean, colors, strict=True)) if (nser > 1 or stacked) else []
    svg_legend, lh = _legend(entries + period_legend, left, height, width) if entries or period_legend else ("", 0)
    return _frame(width, height + lh, title, "".join(parts) + svg_legend)


def target_bars(
    rows: Sequence[tuple[str, float | None, float | None, float | None]],
    title: str,
    *,
    fmt: Fmt = pct,
    width: int = 560,
    x_max: float | None = None,
) -> str:
    """Horizontal bars ``(label, value, target_min, target_max)`` with the target band shaded."""
    if not rows:
        return _empty(title, width)
    row_h, top, left, right = 30, 30, 96, 96  # room on the right for the value label
    height = top + row_h * len(rows) + 30
    pw = width - left - right
    vals = [v for r in rows for v in r[1:] if v is not None]
    hi = max(x_max or 0.0, *vals, 1e-9)
    parts = [f'<rect class="plot" x="{left}" y="{top}" width="{pw}" height="{row_h * len(rows)}" fill="none" '
             f'stroke="#e4e7eb"/>']
    for i, (label, v, tmin, tmax) in enumerate(rows):
        y = top + i * row_h
        parts.append(f'<text x="{left - 6}" y="{y + 17}" font-size="11" text-anchor="end">{_esc(label)}</text>')
        if tmin is not None or tmax is not None:
            a = (tmin or 0.0) / hi * pw
            b = (tmax if tmax is not None else hi) / hi * pw
            parts.append(f'<rect x="{left + a:.1f}" y="{y + 2}" width="{max(b - a, 1):.1f}" height="{row_h - 6}" '
                         f'fill="#c6f6d5"><title>target {_esc(fmt(tmin or 0))}–'
                         f'{_esc(fmt(tmax) if tmax is not None else "∞")}</title></rect>')
        if v is not None:
            ok = (tmin is None or v >= tmin) and (tmax is None or v <= tmax)
            c = "#2b6cb0" if ok else "#c53030"
            w = max(v / hi * pw, 1)
            parts.append(f'<rect class="mark" x="{left}" y="{y + 8}" width="{w:.1f}" height="{row_h - 18}" '
                         f'fill="{c}"><title>{_esc(label)}: {_esc(fmt(v))}</title></rect>'
                         f'<text x="{left + w + 4:.1f}" y="{y + 17}" font-size="10">{_esc(fmt(v))}'
                         f'{"" if ok else " off target"}</text>')
    svg_legend, _ = _legend([("target band", "#c6f6d5"), ("outside target", "#c53030")], left, height - 9, width)
    return _frame(width, height, title, "".join(parts) + svg_legend)
