"""Both screens, every state, at the cart's three panel sizes, measured for accessibility.

axe-core runs on each state (idle, offline, out of service; accepted for each service, each
refusal, deposit mode, a door left open; login, console, report, a refused page): any serious
or critical violation fails, and so do the moderate ones the audit found (a.11y.MODERATE_FAILS).
Besides axe: the contrast of every text from its rendered colours (main message 7:1, the rest
4.5:1, nothing faded with opacity), the live region that announces each answer, the mark that
tells accepted from refused by shape and word, and on the attendant pages every control at
least 44 x 44 CSS px with a visible label, inside its panel. One page per size watches the same
cart, so each state is made once and measured three times. The lowest figures are printed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from agent.flows.feedback import Feedback
from agent.flows.refusals import REASONS
from tests.mqtt_broker import MosquittoBroker
from tests.support import wait_for
from tests.web.a11y import Figures, audit
from tests.web.support import SCREENSHOTS, WebRig, login, request

pytestmark = pytest.mark.browser

SIZES = [(800, 480), (1024, 600), (1280, 800)]
ANSWER_MAIN = ("answer-zh", "answer-en", "answer-big", "answer-mark-zh", "answer-mark-en")
MARK = {"accepted": "ok", "refused": "no", "deposit": "deposit", "info": "info"}

# What a screen reader and a sighted reader each get from the answer now on screen.
ANSWER_STATE = """() => {
  const live = document.getElementById("announce");
  const shapes = [...document.querySelectorAll("#answer-mark .shape")]
    .filter((g) => getComputedStyle(g).display !== "none").map((g) => g.classList[1]);
  const h1s = [...document.querySelectorAll("h1")].filter((h) => h.getClientRects().length);
  return {role: live.getAttribute("role"), polite: live.getAttribute("aria-live"),
          shown: live.getClientRects().length > 0, said: live.textContent,
          mark: document.getElementById("answer-mark").dataset.mark, shapes: shapes,
          word: document.getElementById("answer-mark-text").innerText.replace(/\\s+/g, " "),
          mains: document.querySelectorAll("main").length,
          h1: h1s.map((h) => h.id || h.textContent.trim().slice(0, 12))};
}"""


@pytest.fixture
def pages(browser: Any) -> Iterator[list[Any]]:
    """One page per panel size, each in its own context (its own cookies)."""
    contexts = []
    out = []
    for width, height in SIZES:
        # bypass_csp: the pages' policy (default-src 'self') would refuse the injected axe.
        context = browser.new_context(viewport={"width": width, "height": height},
                                      locale="zh-CN", bypass_csp=True)
        context.set_default_timeout(6000)
        contexts.append(context)
        out.append(context.new_page())
    try:
        yield out
    finally:
        for context in contexts:
            context.close()


def size(page: Any) -> str:
    return "{width}x{height}".format(**page.viewport_size)


def check_all(pages: list[Any], figures: Figures, state: str, shot: bool = True,
              **kw: Any) -> None:
    bad = []
    for page in pages:
        if shot:  # the attendant pages scroll: the whole page
            page.screenshot(path=str(SCREENSHOTS / f"a11y/{state}-{size(page)}.png"),
                            full_page=bool(kw.get("controls")))
        bad += [f"{state} {size(page)}: {b}" for b in audit(page, figures, **kw)]
    assert bad == [], "\n".join(bad)


def check_answer(pages: list[Any], figures: Figures, state: str, fb: Feedback, mark: str,
                 shot: bool = True) -> dict[str, Any]:
    for page in pages:
        expect(page.locator("#answer-zh")).to_have_text(fb.zh)
    seen = pages[0].evaluate(ANSWER_STATE)
    for page in pages[1:]:
        assert page.evaluate(ANSWER_STATE) == seen
    assert (seen["role"], seen["polite"], seen["shown"]) == ("status", "polite", True)
    assert fb.zh in seen["said"], seen["said"]
    assert fb.en in seen["said"], seen["said"]
    assert (seen["mark"], seen["shapes"]) == (mark, [f"shape-{mark}"]), seen
    assert (seen["mains"], seen["h1"]) == (1, ["answer-zh"]), seen
    check_all(pages, figures, state, shot, main=ANSWER_MAIN)
    return seen


def test_resident_screen_states(tmp_path: Path, pages: list[Any]) -> None:
    figures = Figures()
    broker = MosquittoBroker(tmp_path / "broker").start()
    rig = WebRig(tmp_path, web={"answer_s": 600},  # answers stay while they are measured
                 mqtt={"enabled": True, "port": broker.port, "reconnect_min_s": 0.2,
                       "reconnect_max_s": 1.0})
    try:
        assert rig.daemon.actions is not None
        sync = rig.daemon.sync
        assert sync is not None
        wait_for(sync.online, what="sync online")
        for page in pages:
            page.goto(rig.base + "/")
            expect(page.locator("body")).to_have_attribute("data-live", "1")
            expect(page.locator("#offline")).to_be_hidden()
        check_all(pages, figures, "idle", main=("idle-zh",))

        rig.daemon.actions.set_out_of_service(True, by="test", reason="a11y")
        broker.stop()
        for page in pages:
            expect(page.locator("#oos")).to_be_visible()
            expect(page.locator("#offline")).to_be_visible(timeout=8000)
        check_all(pages, figures, "offline-out-of-service", main=("idle-zh",))
        rig.daemon.actions.set_out_of_service(False, by="test")
        for page in pages:
            expect(page.locator("#oos")).to_be_hidden()
        check_all(pages, figures, "offline", main=("idle-zh",))

        # Deposit mode: a courier's badge, a parcel label, the door closed, the badge again.
        badge = rig.issuer.token("courier", sub="c-007", name="王师傅")
        for state, code in (("deposit-mode", badge), ("deposit-open", "SF1234567890")):
            fb = rig.scan(code)
            assert fb.kind == "deposit", fb
            check_answer(pages, figures, state, fb, "deposit")
        rig.close_door("A01")
        stored = wait_for(lambda: next((f for f in rig.drain() if f.kind == "deposit"), None),
                          what="the parcel stored")
        check_answer(pages, figures, "deposit-stored", stored, "deposit", shot=False)
        end = rig.scan(badge)
        check_answer(pages, figures, "deposit-end", end, MARK[end.kind], shot=False)

        # Accepted, for each service.
        pickup = rig.issuer.token("parcel", parcel="SF1234567890", cart="bc-test")
        words = {}
        parcel = rig.scan(pickup)
        assert parcel.kind == "accepted"
        words["accepted"] = check_answer(pages, figures, "accepted-parcel", parcel, "ok")
        rig.close_door("A01")
        meal = rig.scan(rig.issuer.token("meal", order="M-1", name="李奶奶", items=["米饭"]))
        assert meal.kind == "accepted"
        check_answer(pages, figures, "accepted-meal", meal, "ok")
        ticket = rig.scan(rig.issuer.token("ticket", service="gov"))
        assert ticket.kind == "accepted"
        check_answer(pages, figures, "accepted-ticket", ticket, "ok")

        # Refused: the real one first, then every other reason the flows can give.
        again = rig.scan(pickup)
        assert again.kind == "refused"
        words["refused"] = check_answer(pages, figures, "refused-already-used", again, "no")
        longest = max(REASONS, key=lambda r: len(REASONS[r][1]))
        for reason, (zh, en) in REASONS.items():
            fb = rig.daemon.feedback.publish(Feedback(kind="refused", zh=zh, en=en,
                                                      reason=reason))
            check_answer(pages, figures, f"refused-{reason}", fb, "no",
                         shot=reason == longest)

        # A door left open: a request to the resident, a warning triangle.
        fb = rig.daemon.feedback.publish(Feedback(
            kind="info", zh="A01 号柜门未关，请关好柜门", reason="left_open",
            en="Compartment A01 is still open; please close the door",
            details={"compartment": "A01"}))
        check_answer(pages, figures, "door-left-open", fb, "notice")

        # Accepted and refused differ in shape and in words, not only in colour.
        assert words["accepted"]["shapes"] != words["refused"]["shapes"]
        assert words["accepted"]["word"] != words["refused"]["word"]
        print("\nresident screen:", figures.line())
    finally:
        rig.stop()
        broker.close()


def test_attendant_pages(web_rig: WebRig, pages: list[Any]) -> None:
    rig = web_rig
    figures = Figures()
    rig.scan(rig.issuer.token("meal", order="M-1", name="李奶奶", items=["米饭"]))
    rig.scan(rig.issuer.token("ticket", service="bills"))
    for page in pages:
        page.goto(rig.base + "/attendant")
        expect(page.locator("#pin")).to_be_visible()
    check_all(pages, figures, "login", controls=True)

    for page in pages:
        page.fill("#pin", "000000")
        page.click("form.login button[type=submit]")
        expect(page.locator(".flash")).to_contain_text("PIN 不正确")
    check_all(pages, figures, "login-wrong-pin", controls=True, shot=False)

    cookie, csrf = login(rig)
    name, value = cookie.split("=", 1)
    # Deposit mode on and the cart out of service: the console's most coloured state.
    assert request(rig, "POST", "/attendant/deposit", {"csrf": csrf, "on": "1"},
                   cookie).status == 303
    assert rig.daemon.actions is not None
    rig.daemon.actions.set_out_of_service(True, by="test", reason="a11y", compartment="A04")
    for page in pages:
        page.context.add_cookies([{"name": name, "value": value, "url": rig.base}])
        page.goto(rig.base + "/attendant")
        expect(page.locator("#deposit-state")).to_contain_text("开启")
        page.locator("#comp-A01 summary").click()  # an open actions panel
        expect(page.locator("#open-reason-A01")).to_be_visible()
    check_all(pages, figures, "console", controls=True)

    for page in pages:
        page.goto(rig.base + "/attendant/report")
        expect(page.locator("#tickets")).to_be_visible()
    check_all(pages, figures, "report", controls=True)

    for page in pages:
        page.goto(rig.base + "/no-such-page")
    check_all(pages, figures, "not-found", controls=True, shot=False)
    print("\nattendant pages:", figures.line())


# What the first audit found, in one page: the accepted colours at 4.35:1, English faded with
# opacity, a 96 x 24 button, a field with only a placeholder (cut off), a button wider than its
# panel, and no main landmark or h1.
AUDIT_FINDINGS = """<!doctype html><html lang="zh-CN"><head><title>t</title></head>
<body style="margin:0">
<section style="background:#e3f2e8;color:#2f7d4f;font-size:40px">
  <p id="msg">柜门已打开</p><p style="opacity:.85">The door is open</p></section>
<div class="panel" style="width:200px">
  <button style="width:96px;height:24px;padding:0">补打 Reprint</button>
  <input name="tx" placeholder="交易编号 Transaction id" style="width:120px">
  <button style="width:400px;height:50px">开始投递 Turn on, no badge</button></div>
</body></html>"""


def test_the_audit_catches_what_the_first_audit_found(pages: list[Any]) -> None:
    page = pages[1]
    page.set_content(AUDIT_FINDINGS)
    found = "\n".join(audit(page, Figures(), main=("msg",), controls=True))
    for finding in ("contrast 4.35:1 < 7.0:1 in p#msg", "faded with opacity 0.85",
                    "target 96x24 px", "no visible label: input", "placeholder cut off",
                    "sticks out of its panel: button 开始投递", "landmark-one-main",
                    "page-has-heading-one", "region",
                    "English not marked lang=en: 'The door is open'"):
        assert finding in found, found
