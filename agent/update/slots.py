"""Which release runs: the symlink releases/current, replaced in one atomic step.

systemd starts releases/current/bin/cart-agent; switching is a new symlink renamed over the
old one (rename(2) is atomic), so after a crash at any moment `current` names either the old
release or the new one. Only the current release and the one before it are kept.

Stdlib only: the boot guard uses it before any release is imported.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from agent.update.state import fsync_dir, releases_dir

CURRENT = "current"
DOWNLOADS = ".download"


def current_link(data_dir: str | Path) -> Path:
    return releases_dir(data_dir) / CURRENT


def current_target(data_dir: str | Path) -> Path | None:
    """Where `current` points (absolute), or None when there is no link yet."""
    link = current_link(data_dir)
    try:
        target = os.readlink(link)
    except OSError:
        return None
    return (link.parent / target).resolve() if not os.path.isabs(target) else Path(target)


def point_current(data_dir: str | Path, target: Path) -> None:
    """Make `current` point at `target` in one rename. A release under releases/ is linked
    relatively (the data dir may be moved); anything else (the factory install) absolutely."""
    rel = releases_dir(data_dir)
    rel.mkdir(parents=True, exist_ok=True)
    value = target.name if target.parent.resolve() == rel.resolve() else str(target)
    tmp = rel / f".{CURRENT}.new"
    tmp.unlink(missing_ok=True)
    os.symlink(value, tmp)
    os.replace(tmp, rel / CURRENT)
    fsync_dir(rel)


def release_path(data_dir: str | Path, version: str) -> Path:
    return releases_dir(data_dir) / version


def download_dir(data_dir: str | Path, version: str) -> Path:
    return releases_dir(data_dir) / DOWNLOADS / version


def keep_only(data_dir: str | Path, keep: set[Path]) -> list[str]:
    """Remove every release directory (and download) but those in `keep`; their names."""
    rel = releases_dir(data_dir)
    kept = {p.resolve() for p in keep}
    removed: list[str] = []
    if not rel.is_dir():
        return removed
    for entry in sorted(rel.iterdir()):
        if entry.name.startswith(".") or entry.is_symlink() or not entry.is_dir():
            continue
        if entry.resolve() not in kept:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    downloads = rel / DOWNLOADS
    if downloads.is_dir():
        for entry in downloads.iterdir():
            if release_path(data_dir, entry.name).resolve() not in kept:
                shutil.rmtree(entry, ignore_errors=True)
    return removed
