"""Is the system clock NTP-synchronized? `timedatectl show` where systemd is there to ask.

None means nobody knows (no timedatectl, no systemd, a timeout): the trusted clock then goes
by its evidence alone. Run from the daemon's main loop, never from a reading (it forks).
"""

from __future__ import annotations

import logging
import shutil
import subprocess

log = logging.getLogger(__name__)

TIMEOUT_S = 2.0


def ntp_synchronized() -> bool | None:
    exe = shutil.which("timedatectl")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "show", "-p", "NTPSynchronized", "--value"],
                             capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("timedatectl failed: %s", exc)
        return None
    value = out.stdout.strip()
    if out.returncode != 0 or value not in ("yes", "no"):
        return None  # e.g. "Failed to connect to bus" in a container without systemd
    return value == "yes"
