"""The attendant console plays a test prompt (headless Chromium, the real daemon, audio.kind =
"file"): the button is there only when the cart has a speaker, and pressing it plays a tone and
the test phrase in each configured language."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from agent.devices.audio import wav
from agent.flows import phrases
from tests.support import wait_for
from tests.web.a11y import Figures, audit
from tests.web.support import WebRig
from tests.web.test_attendant import flash, log_in

pytestmark = pytest.mark.browser


def test_console_plays_the_test_prompt(tmp_path: Path, pin_hash: str, browser: Any) -> None:
    if not shutil.which("espeak-ng"):
        pytest.skip("needs espeak-ng (scripts/setup installs it)")
    sounds = tmp_path / "sounds"
    rig = WebRig(tmp_path, pin_hash=pin_hash,
                 audio={"kind": "file", "path": str(sounds), "languages": ["zh", "en"]})
    # bypass_csp: only to inject axe-core for the accessibility audit (tests/web/a11y.py)
    context = browser.new_context(viewport={"width": 1024, "height": 600}, locale="zh-CN",
                                  bypass_csp=True)
    context.set_default_timeout(5000)
    page = context.new_page()
    try:
        log_in(rig, page)
        expect(flash(page)).to_contain_text("已登录")
        # the button meets the console's accessibility rules (44 px, English marked, ...);
        # findings about the rest of the console are the screens' tests' business
        findings = audit(page, Figures(), controls=True)
        assert [f for f in findings if "speaker" in f or "试听" in f] == [], findings
        page.click("#audio-test button")
        expect(flash(page)).to_contain_text("正在播放测试语音")
        wait_for(lambda: len(list(sounds.glob("*.wav"))) >= 3, what="the test prompt")
        files = sorted(sounds.glob("*.wav"))
        assert [p.name.split("-", 1)[1] for p in files] == [
            "tone-read.wav", "zh-audio_test.wav", "en-audio_test.wav"]
        assert wav.decode(files[1].read_bytes())[2] == phrases.spoken("audio_test", {}, "zh")
        expect(page.locator('[data-device="audio"] .pill')).to_have_text("正常 OK")
    finally:
        context.close()
        rig.stop()


def test_no_button_without_a_speaker(web_rig: WebRig, page: Any) -> None:
    log_in(web_rig, page)
    expect(flash(page)).to_contain_text("已登录")
    expect(page.locator("#audio-test")).to_have_count(0)
