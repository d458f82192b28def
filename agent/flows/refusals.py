"""Why a scan was refused: stable reason codes and what the resident reads, Chinese first."""

from __future__ import annotations

from agent.flows.phrases import REFUSALS

# What the resident reads (Chinese, English), from the one table of what the cart says.
REASONS: dict[str, tuple[str, str]] = {code: (p.zh, p.en) for code, p in REFUSALS.items()}


class ScanRefused(Exception):
    """A scan that must not open or print anything; `reason` is one of REASONS."""

    def __init__(self, reason: str, detail: str = "", **facts: object) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown refusal reason {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.facts = facts

    @property
    def zh(self) -> str:
        return REASONS[self.reason][0]

    @property
    def en(self) -> str:
        return REASONS[self.reason][1]
