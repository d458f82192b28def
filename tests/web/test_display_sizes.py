"""The screens on the cart's own panels: 800x480, 1024x600 and 1280x800, in headless Chromium.

The resident screen fits whole at each size, idle (with the out-of-service note and the
offline line, its tallest state) and answering (a long answer with a big compartment number):
no scrolling, no element past the screen's edge, no text cut off inside its box, and no
counter service name broken across lines ("缴费服务" must not leave "务" alone). The attendant
console, login and day report never need sideways scrolling and cut nothing off; the console
is a page that grows with the cart's compartments and receipts, so it may scroll down.
A screenshot of each is kept in the test's temporary directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from agent.flows.feedback import Feedback
from tests.web.support import WebRig, login

pytestmark = pytest.mark.browser

SIZES = [(800, 480), (1024, 600), (1280, 800)]

# Every visible element (text only for screen readers aside): outside the viewport (left/right
# always; below only where the page must not scroll), or holding more than its box shows where
# its overflow is clipped.
OVERFLOWS = """(mayScrollDown) => {
  const bad = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > innerWidth) bad.push(`page ${doc.scrollWidth}px wide`);
  if (!mayScrollDown && doc.scrollHeight > innerHeight)
    bad.push(`page ${doc.scrollHeight}px high`);
  for (const el of document.body.querySelectorAll("*")) {
    const style = getComputedStyle(el);
    const box = el.tagName !== "HTML" && el.tagName !== "BODY";
    if (style.display === "none" || style.visibility === "hidden") continue;
    if (el.closest(".sr-only")) continue;  // for screen readers: a clipped 1 px box on purpose
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
      (el.className && typeof el.className === "string" ? "." + el.className.split(" ")[0] : "");
    if (r.left < -0.5 || r.right > innerWidth + 0.5)
      bad.push(`${name} sideways ${r.left}..${r.right}`);
    if (!mayScrollDown && (r.top < -0.5 || r.bottom > innerHeight + 0.5))
      bad.push(`${name} below the screen ${r.top}..${r.bottom}`);
    const clipX = style.overflowX !== "visible", clipY = style.overflowY !== "visible";
    if (box && clipX && el.scrollWidth > el.clientWidth + 1)
      bad.push(`${name} cuts off ${el.scrollWidth - el.clientWidth}px sideways`);
    if (box && clipY && el.scrollHeight > el.clientHeight + 1)
      bad.push(`${name} cuts off ${el.scrollHeight - el.clientHeight}px below`);
  }
  return bad;
}"""

# For each service name in the queue-ticket hint: the line tops of its characters.
WORD_LINES = """(words) => {
  const hint = document.querySelector(".code-ticket .hint");
  const text = hint.firstChild;
  return words.map((word) => {
    const start = text.data.indexOf(word);
    const tops = new Set();
    for (let i = start; i < start + word.length; i++) {
      const range = document.createRange();
      range.setStart(text, i);
      range.setEnd(text, i + 1);
      tops.add(Math.round(range.getBoundingClientRect().top));
    }
    return [word, tops.size];
  });
}"""


@pytest.fixture
def sized(browser: Any) -> Any:
    contexts: list[Any] = []

    def make(width: int, height: int) -> Any:
        context = browser.new_context(viewport={"width": width, "height": height},
                                      locale="zh-CN")
        context.set_default_timeout(5000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def check(page: Any, shot: Path, may_scroll_down: bool = False) -> None:
    page.screenshot(path=str(shot))
    assert page.evaluate(OVERFLOWS, may_scroll_down) == [], shot.name


def test_resident_screen_fits_each_panel(web_rig: WebRig, sized: Any, tmp_path: Path) -> None:
    rig = web_rig
    assert rig.daemon.actions is not None
    rig.daemon.actions.set_out_of_service(True, by="test", reason="display check")
    for width, height in SIZES:
        page = sized(width, height)
        page.goto(rig.base + "/")
        expect(page.locator("body")).to_have_attribute("data-live", "1")
        expect(page.locator("#oos")).to_be_visible()
        expect(page.locator("#offline")).to_be_visible()
        check(page, tmp_path / f"resident-idle-{width}x{height}.png")
        names = [zh for zh in ("政务服务", "物业服务", "缴费服务")]
        assert page.evaluate(WORD_LINES, names) == [[name, 1] for name in names]

        # The longest answers the flows give, some with a compartment number shown big.
        for kind, zh, en, big in [
            ("refused", "未能确认 B02 号柜门已打开，已通知工作人员，请联系工作人员",
             "Compartment B02 could not be confirmed open; the attendant has been told, "
             "please ask them", None),
            ("deposit", "B02 号柜门已打开，放入包裹 SF1234567890123 后请关门",
             "Compartment B02 is open: put parcel SF1234567890123 in, then close it", "B02"),
            ("info", "正在确认 B02 号柜门是否已打开，请稍候",
             "Checking whether compartment B02 has opened; please wait", "B02"),
        ]:
            rig.daemon.feedback.publish(Feedback(kind=kind, zh=zh, en=en,
                                                 details={"compartment": "B02"}))
            expect(page.locator("#answer-zh")).to_have_text(zh)
            if big:
                expect(page.locator("#answer-big")).to_have_text(big)
            else:
                expect(page.locator("#answer-big")).to_be_hidden()
            check(page, tmp_path / f"resident-{kind}-{width}x{height}.png")


def test_attendant_pages_fit_each_panel(web_rig: WebRig, sized: Any, tmp_path: Path) -> None:
    rig = web_rig
    rig.scan(rig.issuer.token("meal", order="M-1", name="李奶奶", items=["米饭"]))
    rig.scan(rig.issuer.token("ticket", service="bills"))
    cookie, _ = login(rig)
    name, value = cookie.split("=", 1)
    for width, height in SIZES:
        page = sized(width, height)
        page.goto(rig.base + "/attendant")
        check(page, tmp_path / f"login-{width}x{height}.png")
        page.context.add_cookies([{"name": name, "value": value, "url": rig.base}])
        page.goto(rig.base + "/attendant")
        expect(page.locator("#grid")).to_contain_text("B02")
        expect(page.locator("#receipts table")).to_be_visible()
        page.locator("#comp-A01 summary").click()  # an open actions form, too
        check(page, tmp_path / f"console-{width}x{height}.png", may_scroll_down=True)
        page.goto(rig.base + "/attendant/report")
        check(page, tmp_path / f"report-{width}x{height}.png", may_scroll_down=True)
