"""What the speaker says: a tone for every scan read, another for a refusal, and each answer
of the resident screen spoken from the phrase table in the configured languages, except in
quiet hours (tones only).

It runs on the thread that answered (the flow thread, or the scanner's for the read tone) and
only hands sounds to the player's bounded queue: it never waits for the speaker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from agent.config_cues import AudioConfig
from agent.devices.audio.service import Sound
from agent.flows import phrases
from agent.flows.feedback import Feedback

# What the resident screen shows (agent/web/present.py): the same answers are spoken.
SPOKEN_KINDS = {"accepted", "refused", "deposit", "info"}


def in_quiet_hours(cfg: AudioConfig, tz: ZoneInfo, now: float) -> bool:
    window = cfg.quiet_minutes()
    if window is None:
        return False
    local = datetime.fromtimestamp(now, tz)
    minute = local.hour * 60 + local.minute
    start, end = window
    return start <= minute < end if start < end else minute >= start or minute < end


class Announcer:
    def __init__(self, cfg: AudioConfig, tz: ZoneInfo, play: Callable[[Sound], None],
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.tz = tz
        self.play = play
        self.clock = clock

    def scan_read(self) -> None:
        self.play(Sound("tone", "read"))

    def feedback(self, event: Feedback) -> None:
        if event.kind not in SPOKEN_KINDS:
            return
        if event.kind == "refused":
            self.play(Sound("tone", "refused"))
        if event.phrase is None or event.phrase in phrases.NOT_SPOKEN \
                or event.phrase not in phrases.PHRASES:
            return
        if in_quiet_hours(self.cfg, self.tz, self.clock()):
            return
        self._speak(event.phrase, event.params, self.cfg.languages)

    def test_prompt(self) -> list[str]:
        """The attendant's test: a tone and the test phrase in each language, quiet hours or
        not (someone asked for it). Returns the languages spoken."""
        languages: list[str] = list(self.cfg.languages) or ["zh"]
        self.play(Sound("tone", "read"))
        self._speak("audio_test", {}, languages)
        return languages

    def _speak(self, phrase: str, params: dict[str, object], languages: Sequence[str]) -> None:
        for lang in languages:
            self.play(Sound("speech", phrase, phrases.spoken(phrase, params, lang), lang))
