"""Accessibility measurements in a real page: axe-core (vendored in tests/web/vendor/, MPL-2.0),
contrast computed from the rendered colours, target sizes from bounding boxes, visible labels,
placeholders that fit, controls that stay inside their panel.

Each measurement is one JavaScript function run with `page.evaluate`; `audit` runs them all on
one page and returns what failed, with the figures the report keeps (lowest contrast, smallest
target)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AXE = Path(__file__).parent / "vendor" / "axe.min.js"

# What fails a state: any serious or critical violation, and these moderate ones (the audit's
# findings: no main landmark, no h1, content outside landmarks, headings out of order).
MODERATE_FAILS = {"landmark-one-main", "page-has-heading-one", "region", "heading-order",
                  "landmark-no-duplicate-main", "landmark-unique", "empty-table-header",
                  "label-title-only"}
AA, AAA, TARGET_PX = 4.5, 7.0, 44.0

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"],
                                          rules: {"target-size": {enabled: true}}});
  return result.violations.map((v) => ({id: v.id, impact: v.impact || "", help: v.help,
    nodes: v.nodes.slice(0, 4).map((n) => n.target.join(" ") + ": " +
                                    (n.failureSummary || "").replace(/\\s+/g, " "))}));
}"""

# Every element with its own visible text: the contrast of its rendered colour against the
# background it is drawn on (the backgrounds of its ancestors blended down to the white page),
# and the product of the opacities above it (text faded with opacity is not allowed).
CONTRAST = """() => {
  const parse = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3]))
    .concat([1]);
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let bg = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  };
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.data)
      .join("").trim();
    if (!text || !el.getClientRects().length || el.closest(".sr-only")) continue;
    const style = getComputedStyle(el);
    if (style.visibility !== "visible") continue;
    let opacity = 1;
    for (let e = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
    const bg = background(el);
    const fg = over(parse(style.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
      (typeof el.className === "string" && el.className ? "." + el.className.split(" ")[0] : "");
    out.push({name: name, id: el.id, text: text.slice(0, 40),
              ratio: Math.round((hi + 0.05) / (lo + 0.05) * 100) / 100, opacity: opacity});
  }
  return out;
}"""

# Every visible control: its box, whether it has a visible <label> (text inputs), whether its
# placeholder fits, and whether it stays inside the panel (or card, or bar) that holds it.
CONTROLS = """() => {
  const canvas = document.createElement("canvas").getContext("2d");
  const out = [];
  const selector = "a[href], button, input:not([type=hidden]), select, textarea, summary";
  for (const el of document.querySelectorAll(selector)) {
    if (!el.getClientRects().length || el.closest(".sr-only")) continue;
    const r = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + " " +
      (el.textContent || el.name || "").trim().replace(/\\s+/g, " ").slice(0, 30);
    const item = {name: name, width: r.width, height: r.height, labelled: true,
                  placeholderFits: true, inside: true};
    if (el.tagName === "INPUT" && el.type !== "submit" && el.type !== "button") {
      item.labelled = [...el.labels].some((l) => l.getClientRects().length &&
                                                  l.textContent.trim().length > 0);
      if (el.placeholder) {
        canvas.font = style.font;
        const room = el.clientWidth - parseFloat(style.paddingLeft) -
          parseFloat(style.paddingRight);
        item.placeholderFits = canvas.measureText(el.placeholder).width <= room;
      }
    }
    const box = el.parentElement.closest(".panel, .card, .comp, .bar, table, main");
    if (box) {
      const b = box.getBoundingClientRect();
      item.inside = r.left >= b.left - 0.5 && r.right <= b.right + 0.5;
    }
    item.inside = item.inside && r.left >= -0.5 && r.right <= innerWidth + 0.5;
    out.push(item);
  }
  return out;
}"""


# Every English word in the page's text that a screen reader would read with Chinese rules: not
# inside an element marked lang="en". Codes and ids (SF1234567890, A01, PIN, MQTT) are not
# words to pronounce and are left out.
UNMARKED_ENGLISH = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el.getClientRects().length || el.closest("script, style")) continue;
    const words = (node.data.match(/[A-Za-z][A-Za-z'-]*[a-z][A-Za-z'-]*/g) || [])
      .filter((w) => /[a-z]{2,}/.test(w));
    const lang = (el.closest("[lang]") || document.documentElement).lang;
    if (words.length && !lang.startsWith("en")) out.push(words.join(" ").slice(0, 60));
  }
  return out;
}"""


@dataclass
class Figures:
    """The lowest figures seen over every audited state, for the report."""

    min_contrast: float = 99.0
    min_main_contrast: float = 99.0
    smallest_target: float = 9999.0
    states: int = 0
    axe_other: dict[str, int] = field(default_factory=dict)  # moderate/minor left, by rule

    def line(self) -> str:
        other = ", ".join(f"{k} x{v}" for k, v in sorted(self.axe_other.items())) or "none"
        main = f"{self.min_main_contrast:.2f}:1" if self.min_main_contrast < 99 else "-"
        target = f"{self.smallest_target:.0f} px" if self.smallest_target < 9999 else "-"
        return (f"{self.states} states: lowest text contrast {self.min_contrast:.2f}:1, "
                f"main message {main}, smallest control {target}; "
                f"other axe findings: {other}")


def inject_axe(page: Any) -> None:
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))


def audit(page: Any, figures: Figures, main: tuple[str, ...] = (),
          controls: bool = False) -> list[str]:
    """Run every check on the page as it is now; returns what failed (empty: all well).

    `main` names the ids of the main message, held to 7:1; every other text is held to 4.5:1.
    `controls` also holds every control to 44 x 44 px with a visible label."""
    inject_axe(page)
    bad: list[str] = []
    for v in page.evaluate(AXE_RUN):
        if v["impact"] in ("serious", "critical") or v["id"] in MODERATE_FAILS:
            bad.append(f"axe {v['impact']} {v['id']}: {v['help']} {v['nodes']}")
        else:
            figures.axe_other[v["id"]] = figures.axe_other.get(v["id"], 0) + 1
    for t in page.evaluate(CONTRAST):
        floor = AAA if t["id"] in main else AA
        figures.min_contrast = min(figures.min_contrast, t["ratio"])
        if t["id"] in main:
            figures.min_main_contrast = min(figures.min_main_contrast, t["ratio"])
        if t["ratio"] < floor:
            bad.append(f"contrast {t['ratio']}:1 < {floor}:1 in {t['name']} {t['text']!r}")
        if t["opacity"] < 1:
            bad.append(f"text faded with opacity {t['opacity']:.2f} in {t['name']}")
    bad += [f"English not marked lang=en: {t!r}" for t in page.evaluate(UNMARKED_ENGLISH)]
    if main and main[0] not in {t["id"] for t in page.evaluate(CONTRAST)}:
        bad.append(f"main message #{main[0]} not shown")
    if controls:
        for c in page.evaluate(CONTROLS):
            figures.smallest_target = min(figures.smallest_target, c["width"], c["height"])
            if c["width"] < TARGET_PX - 0.01 or c["height"] < TARGET_PX - 0.01:
                bad.append(f"target {c['width']:.0f}x{c['height']:.0f} px: {c['name']}")
            if not c["labelled"]:
                bad.append(f"no visible label: {c['name']}")
            if not c["placeholderFits"]:
                bad.append(f"placeholder cut off: {c['name']}")
            if not c["inside"]:
                bad.append(f"sticks out of its panel: {c['name']}")
    figures.states += 1
    return bad
