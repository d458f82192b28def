"""Real-time status of an ESC/POS printer: DLE EOT n requests and their one-byte answers.

n=1 printer status, n=2 offline cause, n=4 roll paper sensor. Every answer byte has fixed
bits (bit 1 and bit 4 set, bit 0 and bit 7 clear: 0b0xx1xx10), which is how an answer is told
from noise or a stray byte. A printer that does not answer is in an *unknown* state, never
"paper OK" (python-escpos's paper_status() says OK when nothing answers; FACTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

STATUS_REQUESTS = (1, 2, 4)
OK_BYTE = 0x12  # fixed bits only: nothing to report


class InvalidStatus(ValueError):
    """A byte that cannot be a DLE EOT answer."""


def status_request(n: int) -> bytes:
    if n not in (1, 2, 3, 4):
        raise ValueError(f"DLE EOT {n} is not a status request")
    return bytes([0x10, 0x04, n])


def check_status_byte(value: int) -> int:
    if value & 0x93 != 0x12:
        raise InvalidStatus(f"0x{value:02X} is not a status byte (fixed bits 0x12/0x93)")
    return value


@dataclass(frozen=True)
class PrinterStatus:
    """What the printer said. `state` is one of
    "ok", "paper_near_end", "paper_out", "cover_open", "offline", "error", "unknown";
    the flags are None when the printer did not say."""

    state: str
    online: bool | None = None
    cover_open: bool | None = None
    paper_out: bool | None = None
    paper_near_end: bool | None = None
    error: bool | None = None
    reason: str | None = None  # why the state is unknown, or what the printer reported

    @property
    def known(self) -> bool:
        return self.state != "unknown"

    @property
    def can_print(self) -> bool:
        return self.state in ("ok", "paper_near_end")


UNKNOWN = PrinterStatus("unknown", reason="no answer")


def parse_status(answers: dict[int, bytes | None]) -> PrinterStatus:
    """Combine the answers to DLE EOT 1, 2 and 4 (None or b"" where the printer was silent,
    absent where it was not asked).

    An answer must be exactly one valid status byte; garbage makes that answer count as
    silence, with the reason kept. A problem any answer reports wins over silence elsewhere:
    "paper out" is known even when the offline-cause request went unanswered.
    """
    flags: dict[str, bool | None] = dict.fromkeys(
        ("online", "cover_open", "paper_out", "paper_near_end", "error"))
    problems: list[str] = []
    for n in STATUS_REQUESTS:
        if n not in answers:  # not asked (the caller gave up after an earlier silence)
            problems.append("")
            continue
        raw = answers[n]
        if not raw:
            problems.append(f"no answer to DLE EOT {n}")
            continue
        if len(raw) != 1:
            problems.append(f"DLE EOT {n}: expected 1 byte, got {raw[:8].hex()}")
            continue
        try:
            value = check_status_byte(raw[0])
        except InvalidStatus as exc:
            problems.append(f"DLE EOT {n}: {exc}")
            continue
        if n == 1:
            flags["online"] = not value & 0x08
        elif n == 2:
            flags["cover_open"] = bool(value & 0x04)
            flags["error"] = bool(value & 0x40)
            flags["paper_out"] = bool(value & 0x20) or bool(flags["paper_out"])
        else:
            # Bits 5-6 (both set) paper end; bits 2-3 (both set) paper near end. Some
            # printers set only one bit of each pair, so either counts.
            flags["paper_out"] = bool(value & 0x60) or bool(flags["paper_out"])
            flags["paper_near_end"] = bool(value & 0x0C)
    reason = "; ".join(p for p in problems if p) or None
    if flags["paper_out"]:
        state = "paper_out"
    elif flags["cover_open"]:
        state = "cover_open"
    elif flags["error"]:
        state = "error"
    elif flags["online"] is False:
        state = "offline"
    elif problems:
        state = "unknown"
    elif flags["paper_near_end"]:
        state = "paper_near_end"
    else:
        state = "ok"
    return PrinterStatus(state, reason=reason, **flags)


def status_bytes(
    online: bool = True,
    cover_open: bool = False,
    paper_out: bool = False,
    paper_near_end: bool = False,
    error: bool = False,
) -> dict[int, int]:
    """The answers a printer in this condition gives (the simulator's side of parse_status)."""
    offline = not online or cover_open or paper_out or error
    return {
        1: OK_BYTE | (0x08 if offline else 0),
        2: OK_BYTE | (0x04 if cover_open else 0) | (0x20 if paper_out else 0)
        | (0x40 if error else 0),
        4: OK_BYTE | (0x60 if paper_out else 0) | (0x0C if paper_out or paper_near_end else 0),
    }
