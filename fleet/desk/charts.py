"""Charts as server-rendered SVG: no script, no CDN, nothing the CSP would have to allow.

Every bar carries its numbers as data attributes and a <title> (what a pointer or a screen
reader gets), so the figures can be read back and checked against SQL. Colours come from
classes in desk.css: inline styles are refused by the pages' CSP, presentation attributes
are not needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

W, H = 720, 240
PAD_L, PAD_R, PAD_T, PAD_B = 44, 8, 12, 40


@dataclass
class Series:
    metric: str
    key: str
    label: str
    css: str
    values: dict[str, float] = field(default_factory=dict)


def _nice_max(value: float) -> float:
    """The top of the axis: four grid steps of 1, 2 or 5 times a power of ten (counts are
    whole numbers, so the grid lines are too)."""
    need = max(value, 1.0) / 4
    power = 1.0
    while True:
        for m in (1, 2, 5):
            if m * power >= need:
                return 4.0 * m * power
        power *= 10


def _fmt(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _short(cat: str) -> str:
    """Axis text of a period: 2026-12-01 -> 12-01, 2026-12-01 08:00 -> 08:00."""
    if len(cat) == 10 and cat[4] == "-":
        return cat[5:]
    if len(cat) == 16 and cat[4] == "-":
        return cat[-5:]
    return cat


def bar_chart(title: str, categories: list[str], series: list[Series], stacked: bool = False,
              tick_every: int = 1, css: str = "chart",
              labels: dict[str, str] | None = None) -> str:
    """Bars per category: side by side, or stacked when `stacked`."""
    if not categories or not series:
        return f'<p class="empty">{escape(title)}: —</p>'
    totals = [sum(s.values.get(c, 0) for s in series) if stacked
              else max(s.values.get(c, 0) for s in series) for c in categories]
    top = _nice_max(max(totals))
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    slot = plot_w / len(categories)
    bar_w = max(1.0, slot * 0.8 / (1 if stacked else len(series)))
    out = [f'<svg class="{css}" viewBox="0 0 {W} {H}" role="img" '
           f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">',
           f"<title>{escape(title)}</title>"]
    for i in range(5):  # grid lines and their values
        y = PAD_T + plot_h * i / 4
        out.append(f'<line class="grid" x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" '
                   f'y2="{y:.1f}"/><text class="axis" x="{PAD_L - 4}" y="{y + 4:.1f}" '
                   f'text-anchor="end">{_fmt(top * (4 - i) / 4)}</text>')
    # One group per series (its class and what it counts); each bar carries its period and
    # value. Stacked bars start where the series below ended.
    base = dict.fromkeys(categories, 0.0)
    safe = [escape(c) for c in categories]
    for si, s in enumerate(series):
        label = escape(s.label)
        out.append(f'<g class="bar {escape(s.css)}" data-metric="{escape(s.metric)}" '
                   f'data-key="{escape(s.key)}">')
        for ci, cat in enumerate(categories):
            value = s.values.get(cat, 0)
            h = plot_h * value / top
            x = PAD_L + slot * ci + slot * 0.1 + (0 if stacked else bar_w * si)
            y = PAD_T + plot_h - h - (plot_h * base[cat] / top if stacked else 0)
            text = _fmt(value)
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                       f'height="{max(h, 0):.1f}" data-period="{safe[ci]}" '
                       f'data-value="{text}"><title>{safe[ci]} · {label}: {text}</title></rect>')
            if stacked:
                base[cat] += value
        out.append("</g>")
    for ci, cat in enumerate(categories):
        if ci % tick_every == 0:
            label = (labels or {}).get(cat, _short(cat))
            x0 = PAD_L + slot * ci + slot * 0.1
            out.append(f'<text class="axis" x="{x0 + slot * 0.4:.1f}" y="{H - PAD_B + 14}" '
                       f'text-anchor="middle">{escape(label)}</text>')
    out.append(_legend(series))
    out.append("</svg>")
    return "".join(out)


def _legend(series: list[Series]) -> str:
    parts, x = [], PAD_L
    for s in series:
        parts.append(f'<rect class="swatch {escape(s.css)}" x="{x}" y="{H - 16}" width="10" '
                     f'height="10"/><text class="legend" x="{x + 14}" y="{H - 7}">'
                     f"{escape(s.label)}</text>")
        x += 24 + 7 * len(s.label)
    return "".join(parts)


def hbar_chart(title: str, items: list[tuple[str, str, float]], metric: str,
               css: str = "s-refused") -> str:
    """Horizontal bars (label, key, value), largest first: refusals by reason."""
    if not items:
        return f'<p class="empty">{escape(title)}: —</p>'
    items = sorted(items, key=lambda i: -i[2])
    row_h, label_w = 22, 230
    height = PAD_T + row_h * len(items) + 8
    top = _nice_max(max(i[2] for i in items))
    plot_w = W - label_w - 60
    out = [f'<svg class="chart hchart" viewBox="0 0 {W} {height}" role="img" '
           f'aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for i, (label, key, value) in enumerate(items):
        y = PAD_T + i * row_h
        w = plot_w * value / top
        out.append(f'<text class="axis" x="{label_w - 6}" y="{y + 15}" text-anchor="end">'
                   f"{escape(label)}</text>"
                   f'<rect class="bar {css}" x="{label_w}" y="{y + 3}" width="{w:.1f}" '
                   f'height="{row_h - 6}" data-metric="{escape(metric)}" '
                   f'data-key="{escape(key)}" data-value="{_fmt(value)}"><title>'
                   f"{escape(label)}: {_fmt(value)}</title></rect>"
                   f'<text class="value" x="{label_w + w + 6:.1f}" y="{y + 15}">'
                   f"{_fmt(value)}</text>")
    out.append("</svg>")
    return "".join(out)
