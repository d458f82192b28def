"""WAV audio without I/O: tones, and RIFF encoding and decoding of 16-bit mono PCM.

Every sound is 16-bit signed little-endian mono at RATE (espeak-ng's own rate, so speech and
tones need no resampling). A written file carries what it says in a LIST/INFO `ICMT` chunk:
players skip it, tests and people read it back (`soxi`, `decode`).
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from functools import lru_cache

RATE = 22_050
FADE_S = 0.005  # a tone that starts or stops at full level clicks

# (frequency Hz, seconds) segments; 0 Hz is a pause. A read is one short high blip; a refusal
# two falling low notes, different enough to tell apart without looking.
TONES: dict[str, list[tuple[float, float]]] = {
    "read": [(1320.0, 0.09)],
    "refused": [(440.0, 0.15), (0.0, 0.06), (330.0, 0.22)],
}


class WavError(ValueError):
    """Bytes that are not a 16-bit mono PCM WAV."""


@lru_cache(maxsize=32)
def tone(name: str, volume: int, rate: int = RATE) -> bytes:
    """The PCM of a named tone at `volume` (0-100). Kept once made: computing it holds the
    interpreter for milliseconds, which a decision on the flow thread must not wait for."""
    peak = 0.6 * 32767 * max(0, min(100, volume)) / 100
    out = array("h")
    fade = max(1, int(FADE_S * rate))
    for freq, seconds in TONES[name]:
        n = int(seconds * rate)
        for i in range(n):
            if freq <= 0:
                out.append(0)
                continue
            env = min(1.0, i / fade, (n - 1 - i) / fade)
            out.append(int(peak * env * math.sin(2 * math.pi * freq * i / rate)))
    if sys.byteorder != "little":  # WAV is little-endian
        out.byteswap()
    return out.tobytes()


def silence(seconds: float, rate: int = RATE) -> bytes:
    return bytes(2 * int(seconds * rate))


def encode(pcm: bytes, rate: int = RATE, comment: str = "") -> bytes:
    """A RIFF WAV file of 16-bit mono `pcm`, with `comment` as its INFO/ICMT text."""
    if len(pcm) % 2:
        pcm = pcm[:-1]
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if comment:
        text = comment.encode("utf-8") + b"\0"
        if len(text) % 2:
            text += b"\0"
        info = b"INFO" + b"ICMT" + struct.pack("<I", len(text)) + text
        chunks += b"LIST" + struct.pack("<I", len(info)) + info
    chunks += b"data" + struct.pack("<I", len(pcm)) + pcm
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def decode(data: bytes) -> tuple[bytes, int, str]:
    """(pcm, rate, comment) of a 16-bit mono WAV. A data size past the end (what a streaming
    writer such as `espeak-ng --stdout` puts there) means "to the end"."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("not a RIFF WAVE file")
    pos, rate, pcm, comment = 12, 0, b"", ""
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            if len(body) < 16:
                raise WavError("short fmt chunk")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if (tag, channels, bits) != (1, 1, 16):
                raise WavError(f"not 16-bit mono PCM (format {tag}, {channels} ch, {bits} bit)")
        elif cid == b"data":
            pcm = body
        elif cid == b"LIST" and body[:4] == b"INFO":
            comment = _icmt(body[4:])
        pos += 8 + size + (size % 2)
    if not rate:
        raise WavError("no fmt chunk")
    return pcm[:len(pcm) // 2 * 2], rate, comment


def _icmt(info: bytes) -> str:
    pos = 0
    while pos + 8 <= len(info):
        cid, size = info[pos:pos + 4], struct.unpack("<I", info[pos + 4:pos + 8])[0]
        if cid == b"ICMT":
            return info[pos + 8:pos + 8 + size].rstrip(b"\0").decode("utf-8", "replace")
        pos += 8 + size + (size % 2)
    return ""


def duration_s(pcm: bytes, rate: int = RATE) -> float:
    return len(pcm) / 2 / rate
