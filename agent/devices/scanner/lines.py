"""What a serial scanner sends, turned into codes: no I/O, the caller passes bytes and time.

A scanner sends one code per line, ended by its configured suffix: CR, LF or CRLF, or none at
all (then only a pause ends the code). The bytes are UTF-8 or, from many scanners sold in
China, GBK/GB18030. Scanners in continuous mode send the same code again and again while it
stays in front of them.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass, field

HEAD_BYTES = 64  # what a rejected scan keeps of the bytes read


class UnreadableScan(ValueError):
    """The scanned bytes are neither UTF-8 nor GB18030 text."""


@dataclass(frozen=True)
class ScanEvent:
    """One code read by a scanner: its text, or why there is none (so a rejection is recorded).

    The one shape a scan has from the scanner to the flow that decides on it. `error` is
    "unreadable" (bytes that are not text, or a QR code in an undeclared charset) or
    "too long", with the particulars in `detail`; `raw` holds the bytes as received (only the
    first bytes of a line that was too long); `mono` is when it was read (time.monotonic).
    """

    text: str | None
    raw: bytes
    error: str | None
    source: str  # "serial" | "camera" | "test"
    at: float = field(default_factory=time.time)
    mono: float = field(default_factory=time.monotonic)
    detail: str | None = None

    @property
    def head(self) -> bytes:
        """What was read, cut to what a rejection record keeps."""
        return self.raw[:HEAD_BYTES]

    @classmethod
    def of_text(cls, text: str, source: str = "test") -> ScanEvent:
        """A scan read as this text (the fuzzer, tests)."""
        return cls(text, text.encode("utf-8", "surrogatepass"), None, source)


@dataclass(frozen=True)
class TooLong:
    """Marker for a line dropped because it exceeded `max_line` bytes.

    `head` keeps the first bytes for the rejection record; the rest was discarded unread.
    """

    length: int
    head: bytes


_TERMINATORS = frozenset(b"\r\n")


class LineReader:
    """Splits a byte stream into lines, however the reads happen to chunk it.

    CR, LF and CRLF all end a line; empty lines are never returned, so the LF of a CRLF that
    arrives in a later read does not make a second, empty code. With `idle_timeout_s` set, a
    pause that long after the last byte also ends the line (scanners with the suffix off).
    A line longer than `max_line` is dropped and reported as a `TooLong` in the returned list,
    at the place where it ended; memory stays bounded by `max_line`.
    """

    def __init__(self, max_line: int = 4096, idle_timeout_s: float | None = 0.3) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        self.max_line = max_line
        self.idle_timeout_s = idle_timeout_s
        self._buffer = bytearray()
        self._overflow = 0  # bytes of the current line discarded beyond max_line
        self._last_byte_at: float | None = None

    @property
    def pending(self) -> bool:
        return bool(self._buffer) or self._overflow > 0

    def feed(self, data: bytes, now: float) -> list[bytes | TooLong]:
        """Lines completed by `data` (received at `now`), in order, with TooLong markers."""
        out = self.flush_idle(now)
        if data:
            self._last_byte_at = now
        for byte in data:
            if byte in _TERMINATORS:
                self._end_line(out)
            elif self._overflow:
                self._overflow += 1
            elif len(self._buffer) >= self.max_line:
                self._overflow = 1
            else:
                self._buffer.append(byte)
        return out

    def flush_idle(self, now: float) -> list[bytes | TooLong]:
        """The pending line, if nothing has arrived for `idle_timeout_s`."""
        out: list[bytes | TooLong] = []
        if (
            self.idle_timeout_s is not None
            and self._last_byte_at is not None
            and self.pending
            and now - self._last_byte_at >= self.idle_timeout_s
        ):
            self._end_line(out)
        return out

    def _end_line(self, out: list[bytes | TooLong]) -> None:
        if self._overflow:
            length = len(self._buffer) + self._overflow
            out.append(TooLong(length, bytes(self._buffer[:HEAD_BYTES])))
        elif self._buffer:
            out.append(bytes(self._buffer))
        self._buffer.clear()
        self._overflow = 0


def decode_scan(raw: bytes) -> str:
    """Text of one scanned line: UTF-8, else GB18030 (strict), else UnreadableScan.

    NUL bytes are dropped anywhere (some scanners pad with them); control characters and
    whitespace around the code are stripped (STX/ETX framing, stray CR/LF); control characters
    inside it are kept (GS1 codes separate fields with GS, 0x1D).
    """
    data = raw.replace(b"\x00", b"")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise UnreadableScan(f"neither UTF-8 nor GB18030: {raw[:32]!r}") from None
    text = _strip_controls(text.lstrip("\ufeff"))
    if not text:
        raise UnreadableScan("empty scan")
    junk = _not_text(text)
    if junk is not None:
        # No second guess: bytes that are valid UTF-8 but not text could also be read as GBK,
        # but so could many a real UTF-8 string; unreadable is better than silently wrong.
        raise UnreadableScan(f"not text (U+{ord(junk):04X}): {raw[:32]!r}")
    return text


def _not_text(text: str) -> str | None:
    """The first private-use, surrogate, unassigned or C1-control character, if any: GB18030
    (and, less often, UTF-8) maps many a random byte sequence to *some* code point; these
    mean it was not text."""
    for ch in text:
        if unicodedata.category(ch) in ("Co", "Cs", "Cn") or "\x80" <= ch <= "\x9f":
            return ch
    return None


def _strip_controls(text: str) -> str:
    start, end = 0, len(text)
    while start < end and (text[start].isspace() or text[start] < " " or text[start] == "\x7f"):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] < " "
                           or text[end - 1] == "\x7f"):
        end -= 1
    return text[start:end]


class RepeatFilter:
    """Suppresses a code seen again within `window_s` of its last sighting.

    The window slides: a code held in front of a continuous-mode scanner (or camera) stays
    suppressed for as long as it keeps being seen. Several codes are tracked at once, because
    a camera can see two codes in the same frame.
    """

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._last_seen: dict[str, float] = {}

    def accept(self, text: str, now: float) -> bool:
        if len(self._last_seen) > 64:
            self._last_seen = {
                key: at for key, at in self._last_seen.items() if now - at < self.window_s
            }
        last = self._last_seen.get(text)
        self._last_seen[text] = now
        return last is None or now - last >= self.window_s or now < last

    def reset(self) -> None:
        self._last_seen.clear()


def event_from_line(line: bytes | TooLong, source: str = "serial") -> ScanEvent:
    """The event for one line out of a LineReader."""
    if isinstance(line, TooLong):
        return ScanEvent(None, line.head, "too long", source, detail=f"{line.length} bytes")
    try:
        return ScanEvent(decode_scan(line), line, None, source)
    except UnreadableScan as exc:
        return ScanEvent(None, line, "unreadable", source, detail=str(exc))


def repeat_key(event: ScanEvent) -> str:
    """What RepeatFilter compares: the text, or the raw bytes of a failed read (so a scanner in
    continuous mode does not record the same rejection many times a second)."""
    return event.text if event.text is not None else "\x00" + event.raw.hex()
