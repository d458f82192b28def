"""Helpers shared by the tests: writing real config files, waiting without sleeping blindly."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.config import overlay


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_value(i) for i in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_value(i)}" for k, i in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(doc: dict[str, Any], prefix: str = "") -> str:
    """Enough TOML for config files: scalars, inline tables, tables, arrays of tables."""
    lines = [f"{k} = {_value(v)}" for k, v in doc.items()
             if not isinstance(v, dict) and not (isinstance(v, list) and v
                                                  and isinstance(v[0], dict))]
    for k, v in doc.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            lines.append(f"\n[{name}]")
            lines.append(to_toml(v, name + "."))
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                lines.append(f"\n[[{name}]]")
                lines.append(to_toml(item, name + "."))
    return "\n".join(lines)


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
    path.write_text(to_toml(doc) + "\n", encoding="utf-8")
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
