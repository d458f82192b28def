"""Voice, tones and light through the real daemon on the simulated cart, with `audio.kind =
"file"`: every sound is a WAV file in the order played. What was said is checked against the
phrase table (the words are in each file's INFO comment) and measured with sox: not silence, a
plausible length."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent.devices.audio import wav
from agent.flows import phrases
from agent.flows.feedback import Feedback
from tests.flows_support import Rig
from tests.support import wait_for

pytestmark = pytest.mark.skipif(not (shutil.which("sox") and shutil.which("espeak-ng")),
                                reason="needs sox and espeak-ng (scripts/setup installs them)")


def audio(tmp: Path, **more: Any) -> dict[str, Any]:
    return {"kind": "file", "path": str(tmp / "sounds"), "languages": ["zh", "en"], **more}


def sounds(rig: Rig) -> list[Path]:
    return sorted((rig.tmp / "sounds").glob("*.wav"))


def heard(rig: Rig, count: int) -> list[tuple[str, str]]:
    """(label, words) of the first `count` sounds, in the order played."""
    wait_for(lambda: len(sounds(rig)) >= count, timeout_s=20, what=f"{count} sound(s)")
    out = []
    for path in sounds(rig)[:count]:
        _, _, comment = wav.decode(path.read_bytes())
        out.append((re.sub(r"^\d+-|\.wav$", "", path.name), comment))
    return out


def sox_stat(path: Path) -> dict[str, float]:
    done = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True,
                          check=True)
    stats = {}
    for line in done.stderr.splitlines():
        name, _, value = line.partition(":")
        try:
            stats[name.strip()] = float(value)
        except ValueError:
            continue
    return stats


def said(answer: Feedback, lang: str) -> str:
    assert answer.phrase is not None
    return phrases.spoken(answer.phrase, answer.params, lang)


def test_every_answer_is_spoken_from_the_phrase_table_and_is_real_sound(tmp_path: Path) -> None:
    rig = Rig(tmp_path, audio=audio(tmp_path))
    try:
        meal = rig.scan(rig.issuer.token("meal", order="M-1", items=["饭"], compartment="A03"))
        assert meal.phrase == "meal_printing_in"
        assert meal.kind == "accepted"
        expected = [("tone-read", "tone-read"),
                    ("zh-meal_printing_in", said(meal, "zh")),
                    ("en-meal_printing_in", said(meal, "en"))]
        assert heard(rig, 3) == expected
        assert "A 零 三 号柜" in said(meal, "zh")     # the compartment read naturally
        assert "A03" in meal.zh                         # ... and shown as it is written
        assert meal.zh == phrases.screen("meal_printing_in", {"compartment": "A03"})[0]

        ticket = rig.scan(rig.issuer.token("ticket", service="gov"))
        assert ticket.phrase == "ticket_printing"
        number = ticket.details["number"]
        expected += [("tone-read", "tone-read"),
                     ("zh-ticket_printing", said(ticket, "zh")),
                     ("en-ticket_printing", said(ticket, "en"))]
        assert heard(rig, 6) == expected
        assert f"{phrases.number_zh(number)}号" in said(ticket, "zh")

        refused = rig.scan("hello")
        assert refused.reason == "not_a_label"
        assert refused.phrase == "not_a_label"
        expected += [("tone-read", "tone-read"), ("tone-refused", "tone-refused"),
                     ("zh-not_a_label", "请扫描应用中的取件码"),
                     ("en-not_a_label", "Please scan the code from the app")]
        assert heard(rig, 10) == expected

        token = rig.issuer.token("ticket", service="property")
        rig.scan(token)
        again = rig.scan(token)
        assert again.phrase == "already_used_at"
        assert re.search(r"已于.+月.+日.+点.+分使用", said(again, "zh")), said(again, "zh")
        assert heard(rig, 17)[-2:] == [("zh-already_used_at", said(again, "zh")),
                                       ("en-already_used_at", said(again, "en"))]

        for path in sounds(rig):
            stats = sox_stat(path)
            length, rms = stats["Length (seconds)"], stats["RMS     amplitude"]
            if "tone-" in path.name:
                assert 0.05 <= length <= 1.0, (path.name, length)
            else:
                assert 0.8 <= length <= 15.0, (path.name, length)
            assert rms > 0.01, (path.name, rms)  # not silence
    finally:
        rig.stop()


def _quiet_now(tz: ZoneInfo) -> str:
    now = datetime.now(tz)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


def test_quiet_hours_keep_the_tones_and_silence_the_speech(tmp_path: Path) -> None:
    quiet = _quiet_now(ZoneInfo("Asia/Shanghai"))
    rig = Rig(tmp_path, audio=audio(tmp_path, quiet_hours=quiet))
    try:
        refused = rig.scan("hello")
        assert refused.kind == "refused"
        accepted = rig.scan(rig.issuer.token("ticket", service="gov"))
        assert accepted.kind == "accepted"
        assert [label for label, _ in heard(rig, 3)] == ["tone-read", "tone-refused",
                                                         "tone-read"]
        time.sleep(1.0)  # nothing else follows: no speech at night
        assert len(sounds(rig)) == 3
        # The attendant's test prompt is asked for: it speaks even now.
        assert rig.daemon.facade.test_audio(by="test") == {"languages": ["zh", "en"],
                                                           "problem": None}
        assert [label for label, _ in heard(rig, 6)[3:]] == ["tone-read", "zh-audio_test",
                                                             "en-audio_test"]
    finally:
        rig.stop()


def test_a_broken_speaker_is_reported_and_changes_nothing_else(tmp_path: Path) -> None:
    if not shutil.which("aplay"):
        pytest.skip("needs aplay (alsa-utils)")
    rig = Rig(tmp_path, audio={"kind": "alsa", "device": "no-such-speaker"})
    try:
        facade = rig.daemon.facade
        # "not started" first, then the failure of the device it tried.
        wait_for(lambda: "no-such-speaker" in str(facade.devices()["audio"]["error"]),
                 what="the speaker reported")
        assert facade.devices()["audio"]["ok"] is False
        assert "no-such-speaker" in facade.test_audio(by="test")["problem"]
        meal = rig.scan(rig.issuer.token("meal", order="M-2", items=["面"], compartment="A02"))
        assert meal.kind == "accepted"
        assert meal.details["compartment"] == "A02"
        assert rig.sim.opens("A02") == 1          # the door opened
        wait_for(lambda: rig.sim.printer.receipts(), what="the meal receipt")
        devices = facade.devices()
        assert all(devices[d]["ok"] for d in ("scanner", "printer", "locker")), devices
        assert devices["light"] == {"ok": True, "error": None}  # none configured
    finally:
        rig.stop()


def light_changes(path: Path) -> list[tuple[str, bool]]:
    if not path.exists():
        return []
    return [(d["light"], d["on"]) for d in map(json.loads, path.read_text().splitlines())]


def test_the_light_blinks_until_the_door_is_seen_open(tmp_path: Path) -> None:
    lights = tmp_path / "lights.jsonl"
    rig = Rig(tmp_path, light={"kind": "file", "path": str(lights), "blink_s": 0.1})
    try:
        rig.sim.locker.set_spring_delay(1.5)  # a slow spring: the light shows the way
        meal = rig.scan(rig.issuer.token("meal", order="M-3", items=["饭"], compartment="B01"))
        assert meal.kind == "accepted"
        wait_for(lambda: rig.compartment("B01").door == "open", what="B01 seen open")
        wait_for(lambda: light_changes(lights)[-1:] == [("B01", False)], what="light off")
        b01 = [on for name, on in light_changes(lights) if name == "B01"]
        assert b01.count(True) >= 3, b01  # blinked while the door stayed shut
        assert b01 == [False] + [True, False] * b01.count(True)  # on and off, ending off
        others = {name for name, _ in light_changes(lights)} - {"B01"}
        assert all(not on for name, on in light_changes(lights) if name in others)
        settled = len(light_changes(lights))
        time.sleep(0.5)
        assert len(light_changes(lights)) == settled  # the open door stopped it
        assert rig.daemon.facade.devices()["light"]["ok"]
    finally:
        rig.stop()


def test_deposit_and_pickup_are_spoken_without_names_or_labels(tmp_path: Path) -> None:
    rig = Rig(tmp_path, audio=audio(tmp_path, languages=["zh"]))
    try:
        badge = rig.issuer.token("courier", sub="c-007", name="王师傅")
        assert rig.scan(badge).phrase == "deposit_enter"
        opened = rig.scan("SF1234567890")
        assert opened.phrase == "opened_deposit"
        comp = opened.details["compartment"]
        rig.close_door(comp)
        stored = wait_for(lambda: next((e for e in rig.drain() if e.phrase == "deposit_stored"),
                                       None), what="the parcel stored")
        assert rig.scan(badge).phrase == "deposit_leave"
        pickup = rig.scan(rig.issuer.token("parcel", parcel="SF1234567890"))
        assert pickup.phrase == "opened_pickup"
        spoken = heard(rig, 9)
        assert [label for label, _ in spoken] == [
            "tone-read", "zh-deposit_enter", "tone-read", "zh-opened_deposit",
            "zh-deposit_stored", "tone-read", "zh-deposit_leave", "tone-read",
            "zh-opened_pickup"]
        words = dict(spoken)
        assert words["zh-deposit_enter"] == "投递模式，请扫描包裹单号"
        assert words["zh-opened_deposit"] == said(opened, "zh")
        assert words["zh-deposit_stored"] == said(stored, "zh")
        assert words["zh-opened_pickup"] == \
            f"{phrases.spell_zh(comp)} 号柜门已打开，取件后请关好柜门"
        for _, text in spoken:  # shown on the screen, never said in the street
            assert "王师傅" not in text
            assert "SF1234567890" not in text
            assert "1 2 3 4" not in text
            assert "一 二 三 四" not in text
    finally:
        rig.stop()
