"""Where a sound goes: the cart's speaker through ALSA (`aplay`, Debian package alsa-utils), or
a directory that keeps every sound as a WAV file (tests, and carts without a speaker)."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections import deque
from pathlib import Path
from typing import Protocol

from agent.devices.audio import wav
from agent.devices.errors import cause

PROBE_S = 0.05


class AudioError(OSError):
    """The audio device is missing or failed: a device-health item, like the printer."""


class Output(Protocol):
    def open(self) -> None: ...

    def play(self, pcm: bytes, rate: int, label: str, comment: str,
             stop: threading.Event) -> None: ...


class FileOutput:
    """One WAV per sound, `NNNNNN-label.wav`: numbered on from the highest already there, so
    the names sort in the order played, across restarts too. Only the newest `keep` are kept
    (0: all), so a cart that writes instead of playing never fills its disk."""

    NAME = re.compile(r"^(\d{6,})-.*\.wav$")

    def __init__(self, directory: str, keep: int = 0) -> None:
        self.dir = Path(directory)
        self.keep = keep
        self._next = 0
        self._written: deque[Path] = deque()

    def open(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            found = sorted((int(m.group(1)), p) for p in self.dir.iterdir()
                           if (m := self.NAME.match(p.name)))
        except OSError as exc:
            raise AudioError(f"cannot use {self.dir}: {cause(exc)}") from None
        self._written = deque(p for _, p in found)
        self._next = (found[-1][0] if found else 0) + 1

    def play(self, pcm: bytes, rate: int, label: str, comment: str,
             stop: threading.Event) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", label)[:60]
        target = self.dir / f"{self._next:06d}-{safe}.wav"
        tmp = target.with_suffix(".part")
        try:
            tmp.write_bytes(wav.encode(pcm, rate, comment))
            os.replace(tmp, target)  # a reader never sees half a file
        except OSError as exc:
            raise AudioError(f"cannot write {target}: {cause(exc)}") from None
        self._next += 1
        self._written.append(target)
        while self.keep and len(self._written) > self.keep:
            self._written.popleft().unlink(missing_ok=True)


class AlsaOutput:
    """Plays through `aplay -D DEVICE`; opening plays a moment of silence, so a missing or
    busy device shows at start, not at the first resident's scan."""

    def __init__(self, device: str, aplay: str = "aplay") -> None:
        self.device = device
        self.aplay = aplay

    def open(self) -> None:
        self.play(wav.silence(PROBE_S), wav.RATE, "probe", "", threading.Event())

    def play(self, pcm: bytes, rate: int, label: str, comment: str,
             stop: threading.Event) -> None:
        cmd = [self.aplay, "-q", "-D", self.device, "-t", "wav", "-"]
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
        except FileNotFoundError:
            raise AudioError(f"{self.aplay} is not installed (Debian package alsa-utils)") \
                from None
        deadline = wav.duration_s(pcm, rate) + 5.0
        try:
            _, err = proc.communicate(wav.encode(pcm, rate), timeout=deadline)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise AudioError(f"ALSA device {self.device}: playback hung") from None
        except BrokenPipeError:
            err = proc.communicate()[1]
        if proc.returncode != 0 and not stop.is_set():
            lines = err.decode("utf-8", "replace").strip().splitlines()
            raise AudioError(f"ALSA device {self.device}: "
                             f"{(lines[-1] if lines else 'aplay failed')[:200]}")


class NoOutput:
    def open(self) -> None:
        pass

    def play(self, pcm: bytes, rate: int, label: str, comment: str,
             stop: threading.Event) -> None:
        pass
