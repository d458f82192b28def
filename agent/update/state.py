"""The update's state, in one small JSON file beside the releases, replaced atomically.

Stdlib only: the boot guard (guard.py) reads and writes it before any release is imported.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

STATE_NAME = "state.json"
RELEASES = "releases"


def releases_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / RELEASES


def state_path(data_dir: str | Path) -> Path:
    return releases_dir(data_dir) / STATE_NAME


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write beside, fsync, rename over, fsync the directory: after a crash the file is
    either the old one or the new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def load(data_dir: str | Path) -> dict[str, Any]:
    """{"job": ..., "trial": ..., "outcome": ...}; an unreadable file counts as empty (it is
    only ever replaced whole, so that means it was never written)."""
    try:
        doc = json.loads(state_path(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def save(data_dir: str | Path, doc: dict[str, Any]) -> None:
    write_atomic(state_path(data_dir), json.dumps(doc, indent=1, sort_keys=True).encode())
