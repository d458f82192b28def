"""The player: one supervised thread with a bounded queue, so sound never delays a decision.

The flows hand sounds over with `play`, which never blocks: when the queue is full the oldest
waiting sound is dropped (a prompt for a resident who has gone is worth less than the next
one), and so is one that waited longer than STALE_S. A failing device (ALSA) makes the
service unhealthy and restarted like any device; a failing speech engine is reported too,
and tones keep playing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from agent.devices.audio import speech, wav
from agent.devices.audio.outputs import Output
from agent.health import Health

log = logging.getLogger(__name__)
Synthesize = Callable[[str, str, int], tuple[bytes, int]]
# A sound still waiting after this long is for someone who has gone (the speaker was out, or
# restarting): dropped rather than played to the next resident.
STALE_S = 15.0


@dataclass(frozen=True)
class Sound:
    kind: Literal["tone", "speech"]
    name: str        # the tone's name, or the phrase spoken (agent/flows/phrases.py)
    text: str = ""   # speech: the words
    lang: str = ""   # speech: "zh" or "en"
    at: float = field(default_factory=time.monotonic, compare=False)

    @property
    def label(self) -> str:
        return f"tone-{self.name}" if self.kind == "tone" else f"{self.lang}-{self.name}"


class AudioService:
    name = "audio"

    def __init__(self, output: Output, volume: int, queue_size: int = 8,
                 synthesize: Synthesize = speech.synthesize) -> None:
        self.output = output
        self.volume = volume
        self.health = Health("audio")
        self._synthesize = synthesize
        self._pending: deque[Sound] = deque(maxlen=queue_size)
        self._cond = threading.Condition()
        self._speech_error: str | None = None
        self.dropped = 0
        self.played = 0

    def play(self, sound: Sound) -> None:
        """Queue a sound; returns at once whatever the device is doing."""
        with self._cond:
            if len(self._pending) == self._pending.maxlen:
                self.dropped += 1
            self._pending.append(sound)
            self._cond.notify()

    def idle(self) -> bool:
        with self._cond:
            return not self._pending

    def run(self, stop: threading.Event) -> None:
        self.output.open()
        for name in wav.TONES:  # made now, not while a resident's scan is being decided
            wav.tone(name, self.volume)
        self._report()
        while not stop.is_set():
            with self._cond:
                if not self._pending:
                    self._cond.wait(0.25)
                    continue
                sound = self._pending.popleft()
            if time.monotonic() - sound.at > STALE_S:
                self.dropped += 1
                continue
            self._play(sound, stop)

    def _play(self, sound: Sound, stop: threading.Event) -> None:
        if sound.kind == "tone":
            pcm, rate, comment = wav.tone(sound.name, self.volume), wav.RATE, sound.label
        else:
            try:
                pcm, rate = self._synthesize(sound.text, sound.lang, self.volume)
            except speech.SpeechError as exc:
                if self._speech_error != str(exc):
                    log.error("speech failed: %s", exc)
                self._speech_error = str(exc)
                self._report()
                return
            self._speech_error = None
            comment = sound.text
        self.output.play(pcm, rate, sound.label, comment, stop)  # AudioError: restarted
        self.played += 1
        self._report()

    def _report(self) -> None:
        if self._speech_error:
            self.health.set_error(f"speech: {self._speech_error}")
        elif self.health.set_ok():
            log.info("audio ready")
