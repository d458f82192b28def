"""The speaker's parts without the daemon: WAV encoding, tones, the file output's order, the
player's bounded queue, speech failures, quiet hours, and the phrase table itself."""

from __future__ import annotations

import contextlib
import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.config_cues import AudioConfig
from agent.devices.audio import wav
from agent.devices.audio.outputs import AudioError, FileOutput
from agent.devices.audio.service import AudioService, Sound
from agent.devices.audio.speech import SpeechError
from agent.flows import phrases
from agent.flows.announce import Announcer, in_quiet_hours
from agent.flows.feedback import Feedback
from agent.flows.refusals import REASONS

TZ = ZoneInfo("Asia/Shanghai")


@given(st.binary(max_size=4000).map(lambda b: b[:len(b) // 2 * 2]), st.text(max_size=80),
       st.sampled_from([8000, 22050, 44100]))
def test_wav_round_trip(pcm: bytes, comment: str, rate: int) -> None:
    comment = comment.replace("\0", "")
    assert wav.decode(wav.encode(pcm, rate, comment)) == (pcm, rate, comment)


@given(st.binary(max_size=200))
def test_garbage_is_a_clear_wav_error(data: bytes) -> None:
    with contextlib.suppress(wav.WavError):
        wav.decode(data)


def test_tones_are_distinct_short_and_follow_the_volume() -> None:
    read, refused = wav.tone("read", 80), wav.tone("refused", 80)
    assert read != refused
    assert 0.05 < wav.duration_s(read) < 0.2 < wav.duration_s(refused) < 1.0
    assert max(abs(s) for s in memoryview(read).cast("h")) > 10_000
    assert set(wav.tone("read", 0)) == {0}


def test_file_output_numbers_in_play_order_across_restarts(tmp_path: Path) -> None:
    stop = threading.Event()
    out = FileOutput(str(tmp_path))
    out.open()
    for label in ("tone-read", "zh-x"):
        out.play(wav.tone("read", 50), wav.RATE, label, label, stop)
    again = FileOutput(str(tmp_path))  # a restart: numbering goes on
    again.open()
    again.play(wav.tone("read", 50), wav.RATE, "tone/../refused", "", stop)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["000001-tone-read.wav", "000002-zh-x.wav", "000003-tone_.._refused.wav"]


def test_file_output_keeps_the_newest(tmp_path: Path) -> None:
    out = FileOutput(str(tmp_path), keep=2)
    out.open()
    for label in ("a", "b", "c"):
        out.play(wav.silence(0.01), wav.RATE, label, "", threading.Event())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000002-b.wav", "000003-c.wav"]


def test_file_output_that_cannot_write_is_an_audio_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(AudioError, match="cannot use"):
        FileOutput(str(blocker / "sub")).open()


class SlowOutput:
    """Holds every sound until released: a speaker that is still talking."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.played: list[str] = []

    def open(self) -> None:
        pass

    def play(self, pcm: bytes, rate: int, label: str, comment: str,
             stop: threading.Event) -> None:
        self.release.wait(5)
        self.played.append(label)


def test_play_never_waits_and_drops_the_oldest_when_full() -> None:
    out = SlowOutput()
    player = AudioService(out, 50, queue_size=2, synthesize=lambda t, lang, v: (b"\0\0", 8000))
    stop = threading.Event()
    thread = threading.Thread(target=player.run, args=(stop,), daemon=True)
    thread.start()
    player.play(Sound("tone", "read"))  # taken by the thread, which now waits on the speaker
    _wait(lambda: player.idle())
    for name in ("a", "b", "c", "d"):
        player.play(Sound("speech", name, name, "zh"))  # returns at once
    assert player.dropped == 2
    out.release.set()
    _wait(lambda: len(out.played) == 3)
    assert out.played == ["tone-read", "zh-c", "zh-d"]
    stop.set()
    thread.join(2)


def test_a_sound_that_waited_too_long_is_dropped() -> None:
    out = SlowOutput()
    out.release.set()
    player = AudioService(out, 50)
    player.play(Sound("tone", "read", at=0.0))  # queued while the speaker was out
    player.play(Sound("tone", "refused"))
    stop = threading.Event()
    thread = threading.Thread(target=player.run, args=(stop,), daemon=True)
    thread.start()
    _wait(lambda: out.played == ["tone-refused"])
    assert player.dropped == 1
    stop.set()
    thread.join(2)


def test_a_failing_speech_engine_is_reported_and_tones_still_play() -> None:
    out = SlowOutput()
    out.release.set()

    def broken(text: str, lang: str, volume: int) -> tuple[bytes, int]:
        raise SpeechError("espeak-ng is not installed (Debian package espeak-ng)")

    player = AudioService(out, 50, synthesize=broken)
    stop = threading.Event()
    thread = threading.Thread(target=player.run, args=(stop,), daemon=True)
    thread.start()
    player.play(Sound("speech", "x", "你好", "zh"))
    player.play(Sound("tone", "refused"))
    _wait(lambda: out.played == ["tone-refused"])
    assert not player.health.ok
    assert "espeak-ng is not installed" in str(player.health.error)
    stop.set()
    thread.join(2)


def _wait(predicate: object, timeout_s: float = 5.0) -> None:
    from tests.support import wait_for

    wait_for(predicate, timeout_s=timeout_s)  # type: ignore[arg-type]


def _at(hh: int, mm: int) -> float:
    return datetime(2026, 12, 2, hh, mm, tzinfo=TZ).timestamp()


def test_quiet_hours_wrap_midnight() -> None:
    night = AudioConfig(quiet_hours="22:00-07:00")
    assert in_quiet_hours(night, TZ, _at(23, 0))
    assert in_quiet_hours(night, TZ, _at(6, 59))
    assert not in_quiet_hours(night, TZ, _at(7, 0))
    assert not in_quiet_hours(night, TZ, _at(12, 0))
    noon = AudioConfig(quiet_hours="12:00-13:30")
    assert in_quiet_hours(noon, TZ, _at(12, 0))
    assert not in_quiet_hours(noon, TZ, _at(13, 30))
    assert not in_quiet_hours(AudioConfig(), TZ, _at(3, 0))


@pytest.mark.parametrize("bad", ["22-07", "25:00-07:00", "22:00-22:00", "22:00 - 07:00"])
def test_bad_quiet_hours_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="quiet_hours"):
        AudioConfig(quiet_hours=bad)


def test_alarms_are_not_spoken_and_refusals_get_their_tone() -> None:
    played: list[Sound] = []
    announcer = Announcer(AudioConfig(languages=["en", "zh"]), TZ, played.append)
    announcer.feedback(Feedback("info", "警报", "Alarm", "forced_open", phrase="forced_open",
                                params={"compartment": "A01"}))
    assert played == []
    announcer.feedback(Feedback("refused", "", "", "expired", phrase="expired"))
    assert [(s.kind, s.name, s.lang) for s in played] == [
        ("tone", "refused", ""), ("speech", "expired", "en"), ("speech", "expired", "zh")]
    assert played[2].text == "二维码已过期，请在应用中刷新"


def test_the_phrase_table_covers_every_refusal_and_reads_naturally() -> None:
    assert set(REASONS) <= set(phrases.PHRASES)
    for key, phrase in phrases.PHRASES.items():
        screen_fields = set()
        for text in (phrase.zh, phrase.en):
            screen_fields |= {f for f in phrase.fields() if "{" + f + "}" in text}
        for lang in ("zh", "en"):
            spoken_fields = {f for f in phrase.fields()
                             if "{" + f + "}" in phrase.template(lang, spoken=True)}
            # hour/minute are the spoken form of the screen's hm
            assert spoken_fields <= screen_fields | {"hour", "minute"}, (key, lang)
    assert phrases.spoken("opened_pickup", {"compartment": "A03"}, "zh").startswith("A 零 三 号柜")
    assert phrases.spoken("opened_pickup", {"compartment": "B12"}, "en").startswith(
        "Compartment B 1 2 is open")
    assert [phrases.number_zh(n) for n in (0, 7, 10, 12, 20, 105, 110, 2000, 10010)] == [
        "零", "七", "十", "十二", "二十", "一百零五", "一百一十", "两千", "一万零一十"]
    assert phrases.minute_zh(5) == "零五"
    assert phrases.minute_zh(30) == "三十"
    # a fact missing leaves a gap, never a crash; braces in a fact are not a template
    assert phrases.screen("deposit_enter", {"name": "{compartment}"})[0] == \
        "投递模式：{compartment}，请扫描包裹单号"
    assert phrases.spoken("opened_pickup", {}, "zh") == " 号柜门已打开，取件后请关好柜门"
