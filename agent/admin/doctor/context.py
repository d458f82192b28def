"""What every check may look at: the config, and the running agent's own view when one runs.

The agent holds the devices and the broker session while it runs, so the doctor asks it
(over the control socket) instead of opening a serial port a second time or logging in with
the cart's credentials (the broker would hand the session over and kick the agent off).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from agent.config import AgentConfig


@dataclass(frozen=True)
class Context:
    cfg: AgentConfig
    config_path: str
    # The running agent's health of each part (control socket `ping`), None when none runs.
    live: dict[str, Any] | None
    # The trusted clock (`cart-agent status --json`'s `clock`), None when it cannot be read.
    clock: dict[str, Any] | None = None

    @property
    def running(self) -> bool:
        return self.live is not None

    def service(self, name: str) -> dict[str, Any] | None:
        if self.live is None:
            return None
        snap = self.live.get(name)
        return snap if isinstance(snap, dict) else None


def command(argv: list[str], timeout_s: float = 10.0) -> tuple[int | None, str]:
    """Run a system tool (found on PATH); (None, why) when it is missing or hangs."""
    exe = shutil.which(argv[0])
    if exe is None:
        return None, f"{argv[0]} not found"
    try:
        done = subprocess.run([exe, *argv[1:]], capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{argv[0]}: {exc}"
    return done.returncode, done.stdout + (done.stderr if done.returncode else "")


def key_values(text: str) -> dict[str, str]:
    """`KEY=value` lines (systemctl show, timedatectl show)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out
