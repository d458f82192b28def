"""The boot guard, run before every start of the agent (systemd ExecStartPre):

    /opt/cart-agent/bin/python -m agent.update.guard -c /etc/cart-agent/agent.toml

It runs from the factory install, never from a release, so a release that cannot even import
still gets rolled back. With no `current` link yet, it points `current` at the factory install.
During a trial (a new release switched to but not yet proven healthy) it counts the starts:
past MAX_STARTS, or past twice the health deadline (a hang the watchdog killed), it points
`current` back at the previous release and records the failure for the old version to report.

Stdlib only, and quick: it must not be what keeps a cart from starting.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from agent.update import slots, state

MAX_STARTS = 3
DEFAULT_DATA_DIR = "/var/lib/cart-agent"


def roll_back(data_dir: str | Path, doc: dict[str, Any], reason: str, now: float) -> None:
    """Point `current` at the trial's previous release and record why; the caller exits or
    restarts so that the previous release runs."""
    trial = doc.get("trial") or {}
    previous = trial.get("previous_path")
    if isinstance(previous, str) and Path(previous).exists():
        slots.point_current(data_dir, Path(previous))
    doc["trial"] = None
    doc["outcome"] = {"version": trial.get("version"), "ok": False, "reason": reason,
                      "rolled_back_to": trial.get("previous"), "at": now, "reported": False}
    state.save(data_dir, doc)


def check(data_dir: str | Path, factory: Path, now: float) -> str:
    """What the guard did, in words (for the journal)."""
    if slots.current_target(data_dir) is None:
        slots.point_current(data_dir, factory)
        return f"current -> {factory} (the factory install)"
    doc = state.load(data_dir)
    trial = doc.get("trial")
    if not isinstance(trial, dict):
        return "no trial"
    trial["starts"] = int(trial.get("starts", 0)) + 1
    deadline = float(trial.get("switched_at", now)) + 2 * float(trial.get("deadline_s", 180))
    if trial["starts"] > MAX_STARTS:
        reason = (f"crash loop: {trial['starts'] - 1} starts of {trial.get('version')} "
                  "without becoming healthy")
    elif now > deadline:
        reason = f"{trial.get('version')} was not healthy within its deadline"
    else:
        state.save(data_dir, doc)
        return f"trial of {trial.get('version')}: start {trial['starts']} of {MAX_STARTS}"
    roll_back(data_dir, doc, reason, now)
    return f"rolled back to {trial.get('previous')}: {reason}"


def data_dir_of(config_path: str) -> str:
    try:
        with open(config_path, "rb") as fh:
            doc = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return DEFAULT_DATA_DIR  # check-config says what is wrong with the file
    value = doc.get("data_dir")
    return value if isinstance(value, str) and value else DEFAULT_DATA_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.update.guard")
    parser.add_argument("-c", "--config", default="/etc/cart-agent/agent.toml")
    parser.add_argument("--factory", default=sys.prefix,
                        help="the install to run when no release is current (default: this "
                             "interpreter's environment)")
    args = parser.parse_args(argv)
    try:
        said = check(data_dir_of(args.config), Path(args.factory), time.time())
    except OSError as exc:  # never keep the cart from starting on the guard's account
        print(f"cart-agent guard: {exc}", file=sys.stderr)
        return 0
    print(f"cart-agent guard: {said}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
