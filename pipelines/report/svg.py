"""Small inline-SVG charts (line, grouped/stacked bars, horizontal bars with target bands).

Pure Python, no dependencies, no JavaScript: every chart is a self-contained ``<svg>`` string
with ``<title>`` tooltips that browsers show on hover.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

PALETTE = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#2c7a7b", "#975a16", "#4a5568")
TIER_COLORS = {"Strategic": "#2b6cb0", "Core": "#2f855a", "Scale": "#c05621", "Tech-touch": "#6b46c1"}
STATUS_COLORS = {"healthy": "#2f855a", "at-risk": "#d69e2e", "at_risk": "#d69e2e", "critical": "#c53030"}

Number = float | int
Fmt = Callable[[float], str]


def pct(v: float) -> str:
    return f"{v * 100:.0f}%" if abs(v) >= 0.1 or v == 0 else f"{v * 100:.1f}%"


def money(v: float) -> str:
    a = abs(v)
    if a >= 1e6:
        return f"${v / 1e6:.1f}M"
    if a >= 1e3:
        return f"${v / 1e3:.0f}K"
    return f"${v:.0f}"


def num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.2g}"


def color_for(name: str, i: int) -> str:
    return TIER_COLORS.get(name) or STATUS_COLORS.get(name.lower()) or PALETTE[i % len(PALETTE)]


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _esc(s: object) -> str:
    return html.escape(str(s))


def _legend(names: Sequence[str], x: float, y: float, colors: Sequence[str]) -> str:
    out, cx = [], x
    for name, c in zip(names, colors, strict=True):
        out.append(f'<rect x="{cx:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{c}"/>'
                   f'<text x="{cx + 14:.1f}" y="{y:.1f}" font-size="11">{_esc(name)}</text>')
        cx += 24 + 6.5 * len(str(name))
    return "".join(out)


def _frame(width: int, height: int, title: str, body: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{_esc(title)}" class="chart" '
            f'font-family="system-ui,sans-serif"><title>{_esc(title)}</title>'
            f'<text x="8" y="16" font-size="13" font-weight="600">{_esc(title)}</text>{body}</svg>')


def line_chart(
    series: dict[str, list[tuple[str, float | None]]],
    title: str,
    *,
    fmt: Fmt = num,
    width: int = 560,
    height: int = 260,
    y_min: float | None = None,
    y_max: float | None = None,
    reference: float | None = None,
) -> str:
    """One line per series over shared, ordered x labels (e.g. months). Gaps for ``None``."""
    xs: list[str] = sorted({x for pts in series.values() for x, _ in pts})
    vals = [v for pts in series.values() for _, v in pts if v is not None]
    if not xs or not vals:
        return _frame(width, 60, title, '<text x="8" y="40" font-size="12" fill="#616e7c">no data</text>')
    lo = min(vals + ([reference] if reference is not None else [])) if y_min is None else y_min
    hi = max(vals + ([reference] if reference is not None else [])) if y_max is None else y_max
    ticks = _nice_ticks(lo, hi)
    lo, hi = min(ticks[0], lo), max(ticks[-1], hi)
    left, right, top, bottom = 52, 12, 28, 48
    pw, ph = width - left - right, height - top - bottom

    def sx(i: int) -> float:
        return left + (pw * i / (len(xs) - 1) if len(xs) > 1 else pw / 2)

    def sy(v: float) -> float:
        return top + ph - (v - lo) / (hi - lo) * ph if hi > lo else top + ph / 2

    parts = []
    for t in ticks:
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#e4e7eb"/>'
                     f'<text x="{left - 4}" y="{sy(t) + 4:.1f}" font-size="10" text-anchor="end">{_esc(fmt(t))}</text>')
    step = max(1, math.ceil(len(xs) / 8))
    for i, x in enumerate(xs):
        if i % step == 0 or i == len(xs) - 1:
            parts.append(f'<text x="{sx(i):.1f}" y="{top + ph + 14}" font-size="10" text-anchor="middle">{_esc(x)}</text>')
    if reference is not None:
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(reference):.1f}" y2="{sy(reference):.1f}" '
                     f'stroke="#718096" stroke-dasharray="4 3"/>')
    colors = []
    index = {x: i for i, x in enumerate(xs)}
    for n, (name, pts) in enumerate(series.items()):
        c = color_for(name, n)
        colors.append(c)
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
            parts.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
            for px, py, x, v in seg:
                parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{c}"><title>{_esc(name)} {_esc(x)}: '
                             f'{_esc(fmt(v))}</title></circle>')
    parts.append(_legend(list(series), left, height - 10, colors))
    return _frame(width, height, title, "".join(parts))


def bar_chart(
    categories: Sequence[str],
    series: dict[str, Sequence[float | None]],
    title: str,
    *,
    fmt: Fmt = num,
    stacked: bool = False,
    width: int = 560,
    height: int = 260,
) -> str:
    """Vertical bars: one group per category, one bar per series (or stacked)."""
    cats = list(categories)
    if not cats or not series:
        return _frame(width, 60, title, '<text x="8" y="40" font-size="12" fill="#616e7c">no data</text>')
    clean = {k: [float(v) if v is not None else 0.0 for v in vs] for k, vs in series.items()}
    if stacked:
        totals = [sum(vs[i] for vs in clean.values()) for i in range(len(cats))]
        lo, hi = min(0.0, *totals), max(0.0, *totals)
    else:
        allv = [v for vs in clean.values() for v in vs]
        lo, hi = min(0.0, *allv), max(0.0, *allv)
    ticks = _nice_ticks(lo, hi)
    lo, hi = ticks[0], ticks[-1]
    left, right, top, bottom = 56, 12, 28, 48
    pw, ph = width - left - right, height - top - bottom

    def sy(v: float) -> float:
        return top + ph - (v - lo) / (hi - lo) * ph if hi > lo else top + ph

    parts = []
    for t in ticks:
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#e4e7eb"/>'
                     f'<text x="{left - 4}" y="{sy(t) + 4:.1f}" font-size="10" text-anchor="end">{_esc(fmt(t))}</text>')
    gw = pw / len(cats)
    nser = len(clean)
    bw = gw * 0.8 / (1 if stacked else nser)
    colors = [color_for(k, i) for i, k in enumerate(clean)]
    step = max(1, math.ceil(len(cats) / 10))
    for ci, cat in enumerate(cats):
        gx = left + gw * ci + gw * 0.1
        base = 0.0
        for si, (name, vs) in enumerate(clean.items()):
            v = vs[ci]
            if stacked:
                y0, y1 = sy(base), sy(base + v)
                x = gx
                base += v
            else:
                y0, y1 = sy(0), sy(v)
                x = gx + bw * si
            parts.append(f'<rect x="{x:.1f}" y="{min(y0, y1):.1f}" width="{max(bw - 1, 1):.1f}" '
                         f'height="{abs(y0 - y1):.1f}" fill="{colors[si]}"><title>{_esc(cat)} · {_esc(name)}: '
                         f'{_esc(fmt(v))}</title></rect>')
        if ci % step == 0:
            parts.append(f'<text x="{left + gw * ci + gw / 2:.1f}" y="{top + ph + 14}" font-size="10" '
                         f'text-anchor="middle">{_esc(cat)}</text>')
    if nser > 1 or stacked:
        parts.append(_legend(list(clean), left, height - 10, colors))
    return _frame(width, height, title, "".join(parts))


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
        return _frame(width, 60, title, '<text x="8" y="40" font-size="12" fill="#616e7c">no data</text>')
    row_h, top, left, right = 30, 30, 96, 70
    height = top + row_h * len(rows) + 30
    pw = width - left - right
    vals = [v for r in rows for v in r[1:] if v is not None]
    hi = x_max if x_max is not None else max([*vals, 1e-9]) * 1.05
    parts = []
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
            parts.append(f'<rect x="{left}" y="{y + 8}" width="{max(v / hi * pw, 1):.1f}" height="{row_h - 18}" '
                         f'fill="{c}"><title>{_esc(label)}: {_esc(fmt(v))}</title></rect>'
                         f'<text x="{left + v / hi * pw + 4:.1f}" y="{y + 17}" font-size="10">{_esc(fmt(v))}'
                         f'{"" if ok else " off target"}</text>')
    parts.append(f'<rect x="{left}" y="{height - 18}" width="10" height="10" fill="#c6f6d5"/>'
                 f'<text x="{left + 14}" y="{height - 9}" font-size="11">target band</text>'
                 f'<rect x="{left + 96}" y="{height - 18}" width="10" height="10" fill="#c53030"/>'
                 f'<text x="{left + 110}" y="{height - 9}" font-size="11">outside target</text>')
    return _frame(width, height, title, "".join(parts))
