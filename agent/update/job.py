"""What a fleet `update` command asks for, checked before anything is written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.update.manifest import ManifestError, check_version

DEFAULT_WINDOW_S = 3600
DEFAULT_DEADLINE_S = 180
MAX_WINDOW_S = 7 * 86_400


class JobError(ValueError):
    """An update command refused: the reason goes back on cmd/result."""


@dataclass(frozen=True)
class UpdateJob:
    version: str
    url: str  # the base the release was published under: URL/VERSION/manifest.jws
    window_s: int  # from acceptance: switch at a quiet moment within it, else give up
    deadline_s: int  # after the switch: healthy within it, else roll back
    cmd_id: str | None = None

    def to_doc(self, accepted_at: float) -> dict[str, Any]:
        return {"version": self.version, "url": self.url, "window_s": self.window_s,
                "deadline_s": self.deadline_s, "cmd_id": self.cmd_id,
                "accepted_at": accepted_at, "step": "accepted"}


def _bounded(args: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = args.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise JobError(f"update: {key} must be an integer {low}..{high}")
    return value


def parse(args: dict[str, Any], cmd_id: str | None = None) -> UpdateJob:
    try:
        version = check_version(args.get("version"))
    except ManifestError as exc:
        raise JobError(f"update: {exc}") from None
    url = args.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise JobError("update: url must be an http:// or https:// address")
    return UpdateJob(version=version, url=url.rstrip("/"),
                     window_s=_bounded(args, "window_s", DEFAULT_WINDOW_S, 0, MAX_WINDOW_S),
                     deadline_s=_bounded(args, "deadline_s", DEFAULT_DEADLINE_S, 10, 3600),
                     cmd_id=cmd_id)
