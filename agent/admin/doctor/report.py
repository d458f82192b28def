"""What a doctor check found: one line each, with what to do when it failed."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

OK, FAIL, SKIP = "ok", "fail", "skip"


@dataclass(frozen=True)
class Check:
    """`status` is ok, fail, or skip (not applicable here, or not tried because an earlier
    step failed: that step's line says why). `fix` is what to do; empty unless failed."""

    name: str
    status: str
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def _line(text: str) -> str:
    return " ".join(text.split())  # a tool's multi-line message stays on its check's line


def ok(name: str, detail: str) -> Check:
    return Check(name, OK, _line(detail))


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, FAIL, _line(detail), _line(fix))


def skip(name: str, detail: str) -> Check:
    return Check(name, SKIP, _line(detail))


def render_text(checks: Iterable[Check]) -> str:
    lines = []
    for c in checks:
        line = f"{c.status.upper():4}  {c.name:18} {c.detail}"
        if c.failed and c.fix:
            line += f" -> {c.fix}"
        lines.append(line)
    return "\n".join(lines)


def render_json(checks: list[Check]) -> str:
    return json.dumps({"ok": not any(c.failed for c in checks),
                       "checks": [asdict(c) for c in checks]}, ensure_ascii=False, indent=2)
