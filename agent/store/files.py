"""Files beside the database: private modes whatever the umask, atomic JSON writes, and the
lock that keeps two processes from owning one data directory's store (daemon vs restore)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any

DIR_MODE = 0o700
FILE_MODE = 0o600
LOCK_NAME = "agent.lock"


def private_dir(path: Path) -> None:
    """Create `path` 0700 (parents as mkdir makes them), or tighten it to 0700: the database
    holds residents' names and what they picked up."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        with contextlib.suppress(PermissionError):  # not ours: check-config says so
            os.chmod(path, DIR_MODE)


def private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 if missing; tighten it to 0600 if it exists."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def tighten(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, PermissionError):
        if path.stat().st_mode & 0o077:
            os.chmod(path, FILE_MODE)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Write-to-temp, fsync, rename, fsync the directory: after a power cut the file is the
    old one or the new one, never half of each."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_json(path: Path) -> dict[str, Any] | None:
    """The document, None when the file does not exist; ValueError when it is damaged."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"{path} is damaged (not a JSON document)") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path} is damaged (not a JSON object)")
    return doc


class DataDirLock:
    """An exclusive flock on data_dir/agent.lock for as long as the holder lives; the kernel
    drops it when the process dies, so a kill -9 leaves nothing stale behind."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> bool:
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
