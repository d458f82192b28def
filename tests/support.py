"""Helpers shared by the tests: writing real config files, waiting without sleeping blindly."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.config import overlay
from agent.toml_write import to_toml


def offline_config(tmp: Path, **patch: Any) -> dict[str, Any]:
    """A cart with no devices, no broker and no screens: the daemon must still run."""
    doc: dict[str, Any] = {
        "cart_id": "bc-test",
        "data_dir": str(tmp / "data"),
        "scanner": {"kind": "none"},
        "printer": {"kind": "none"},
        "locker": {"enabled": False},
        "mqtt": {"enabled": False},
        "web": {"enabled": False},
    }
    return overlay(doc, patch)


def write_config(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(to_toml(doc), encoding="utf-8")
    return path


def wait_for(predicate: Callable[[], Any], timeout_s: float = 10.0, interval_s: float = 0.02,
             what: str = "condition") -> Any:
    """Poll until `predicate` returns something true and return it; AssertionError naming
    `what` when it has not within `timeout_s`. The one way the tests wait."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def wait_scanner_open(data_dir: Path | str, timeout_s: float = 30.0) -> None:
    """Until the running daemon's scanner has its port open (asked over the control socket).
    It drops what waited on the port when it opens it, so a scan sent earlier is lost."""
    from agent.admin.control_client import call

    def scanner_open() -> bool:
        try:
            ping = next(iter(call(str(data_dir), {"op": "ping"}, timeout_s=5)))
        except (OSError, StopIteration):
            return False
        return bool((ping.get("health", {}).get("scanner") or {}).get("ok"))

    wait_for(scanner_open, timeout_s=timeout_s, what="the scanner's port to open")


def fill_disk(path: Path) -> None:
    """Write `path` until its filesystem is full. Unbuffered: a buffered file would raise
    ENOSPC once more on close, for the bytes still waiting in its buffer."""
    import errno

    with path.open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise


def can_mount() -> bool:
    import os
    import shutil

    return os.geteuid() == 0 and shutil.which("mount") is not None


class Mounted:
    """A small tmpfs (as root): a full disk or a read-only filesystem for a test."""

    def __init__(self, path: Path, size: str = "1m", read_only: bool = False) -> None:
        import subprocess

        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        opts = f"size={size}" + (",ro" if read_only else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], check=True)

    def remount(self, size: str) -> None:
        import subprocess

        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)

    def close(self) -> None:
        import subprocess

        subprocess.run(["umount", "-l", str(self.path)], check=False)
