"""Online backups of the store (SQLite's backup API) and the keeper that takes them.

A backup is a consistent copy taken through a second, read-only connection while the daemon
keeps writing (WAL: readers do not block the writer). Each is written to a temp name, checked
with quick_check, fsynced, then renamed to `cart-<store>-<seq>.db`, so a file with that name
is always whole. A copy of identity.json goes beside it, so a lost data directory can still
be restored from a backup directory on another device.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.contract import rfc3339
from agent.health import Health
from agent.store import identity
from agent.store.files import fsync_dir, private_dir, write_json
from agent.store.transactions import Store

log = logging.getLogger(__name__)

PREFIX = "cart-"
SUFFIX = ".db"
IDENTITY_EVERY_S = 1.0
MAX_SINCE_BACKUP = 2000  # more transactions than this since the last backup: back up now


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    seq: int
    at: str


def take(store: Store, dest_dir: Path) -> BackupInfo:
    private_dir(dest_dir)
    for stale in dest_dir.glob(f"{PREFIX}*{SUFFIX}.tmp"):  # a copy cut short by a kill
        stale.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True, timeout=30)
    try:
        seq = int(src.execute("SELECT COALESCE(MAX(seq), 0) FROM transactions").fetchone()[0])
        final = dest_dir / f"{PREFIX}{store.store_id}-{seq:012d}{SUFFIX}"
        tmp = final.with_name(final.name + ".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600)
        os.close(fd)
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)  # one step: a consistent snapshot of one read transaction
            dst.execute("PRAGMA journal_mode=DELETE")
            check = dst.execute("PRAGMA quick_check").fetchall()
            seq = int(dst.execute("SELECT COALESCE(MAX(seq), 0) FROM transactions")
                      .fetchone()[0])
        finally:
            dst.close()
        if check != [("ok",)]:
            tmp.unlink(missing_ok=True)
            raise sqlite3.DatabaseError(f"backup copy failed quick_check: {check[:3]}")
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        final = dest_dir / f"{PREFIX}{store.store_id}-{seq:012d}{SUFFIX}"
        os.replace(tmp, final)
        fsync_dir(dest_dir)
    finally:
        src.close()
    return BackupInfo(final, seq, rfc3339(time.time()))


def listing(dest_dir: Path) -> list[Path]:
    """Backups in `dest_dir`, newest (highest seq) first."""
    if not dest_dir.is_dir():
        return []
    found = [p for p in dest_dir.iterdir()
             if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX) and p.is_file()]
    return sorted(found, key=lambda p: (p.stem.rsplit("-", 1)[-1], p.stat().st_mtime),
                  reverse=True)


def prune(dest_dir: Path, store_id: str, keep: int) -> None:
    mine = [p for p in listing(dest_dir) if p.name.startswith(f"{PREFIX}{store_id}-")]
    for old in mine[keep:]:
        old.unlink(missing_ok=True)


class StoreKeeper:
    """Supervised service: identity.json within a second of each new transaction, a backup
    every `interval_s` (and when many tokens were used since the last), old backups pruned."""

    name = "store-keeper"

    def __init__(self, store: Store, backup_dir: Path, interval_s: float, keep: int) -> None:
        self.store = store
        self.data_dir = store.path.parent
        self.backup_dir = backup_dir
        self.interval_s = interval_s
        self.keep = keep
        self.health = Health("store-keeper")
        self._written_seq = -1
        self._next_backup = 0.0

    def _identity(self) -> dict[str, Any]:
        ident = identity.read(self.data_dir) or identity.new(
            self.store.cart_id, self.store.store_id, rfc3339(time.time()), self.store.path.name)
        return ident

    def write_identity(self, force: bool = False) -> dict[str, Any] | None:
        last = self.store.last_seq()
        if last == self._written_seq and not force:
            return None
        ident = self._identity()
        backup = ident.get("backup") or {}
        with self.store._lock:  # one read transaction on the store's own connection
            snap = identity.snapshot(self.store.conn, int(backup.get("seq") or 0))
        ident.update(snap)
        identity.write(self.data_dir, ident)
        self._written_seq = snap["last_seq"]
        return ident

    def backup(self) -> BackupInfo:
        info = take(self.store, self.backup_dir)
        ident = self._identity()
        ident["backup"] = {"file": info.path.name, "seq": info.seq, "at": info.at}
        with self.store._lock:
            ident.update(identity.snapshot(self.store.conn, info.seq))
        identity.write(self.data_dir, ident)
        write_json(self.backup_dir / identity.NAME, {**ident, "version": identity.VERSION})
        self._written_seq = ident["last_seq"]
        prune(self.backup_dir, self.store.store_id, self.keep)
        log.info("store backed up to %s (seq %d)", info.path, info.seq)
        return info

    def _try_backup(self) -> None:
        """A backup device that fails (full, unplugged, read-only) is reported in health and
        tried again next interval; identity.json keeps being written meanwhile."""
        try:
            self.backup()
        except (OSError, sqlite3.Error) as exc:
            if self.health.set_error(f"backup failed: {exc}"):
                log.error("backup to %s failed: %s", self.backup_dir, exc)
        else:
            if not self.health.ok:
                self.health.set_ok()
                log.info("backups work again")

    def _backup_due(self, now: float, ident: dict[str, Any] | None) -> bool:
        if now >= self._next_backup:
            return True
        since = (ident or {}).get("since_backup") or {}
        return len(since.get("transactions") or ()) > MAX_SINCE_BACKUP

    def run(self, stop: threading.Event) -> None:
        newest = listing(self.backup_dir)
        age = time.time() - newest[0].stat().st_mtime if newest else None
        self._next_backup = time.monotonic() + (
            0.0 if age is None else max(0.0, self.interval_s - age))
        self.health.set_ok()
        try:
            if age is None:  # a store with no backup yet: take one before anything happens
                self._next_backup = time.monotonic() + self.interval_s
                self._try_backup()
            while not stop.wait(IDENTITY_EVERY_S):
                ident = self.write_identity()
                now = time.monotonic()
                if self._backup_due(now, ident):
                    self._next_backup = now + self.interval_s
                    self._try_backup()
        finally:
            try:
                self.write_identity(force=True)
            except Exception:  # stopping: log it; the next start checks the store anyway
                log.exception("could not write the store identity on stop")
