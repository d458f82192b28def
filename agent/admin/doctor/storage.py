"""The data directory and the store: private, owned by the agent's user, the database whole
(`PRAGMA quick_check`), and room left on the disk for it and its backups."""

from __future__ import annotations

import os
import pwd
import sqlite3
import stat
from pathlib import Path

from agent.admin.doctor.context import Context
from agent.admin.doctor.report import Check, fail, ok
from agent.store.errors import StoreError
from agent.store.transactions import connect_read_only

AGENT_USER = "cart-agent"
# A store grows by about a kilobyte per transaction; backups are copies of it. Fail when free
# space is below MIN_FREE_BYTES or MIN_FREE_SHARE of the filesystem, whichever is smaller (a
# small dedicated partition is judged by its share).
MIN_FREE_BYTES = 64 * 1024 * 1024
MIN_FREE_SHARE = 0.10
MIN_FREE_INODES = 100


def storage_checks(ctx: Context) -> list[Check]:
    return [data_dir(ctx), store(ctx), *disk(ctx)]


def data_dir(ctx: Context) -> Check:
    path = Path(ctx.cfg.data_dir)
    if not path.is_dir():
        return fail("data dir", f"{path} does not exist",
                    "start the agent once (systemctl start cart-agent: systemd creates its "
                    "StateDirectory) or run scripts/provision-cart")
    st = path.stat()
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return fail("data dir", f"{path} mode {mode:04o} lets others in (residents' data)",
                    f"chmod 0700 {path}")
    try:
        agent = pwd.getpwnam(AGENT_USER)
    except KeyError:
        agent = None
    if agent is not None and st.st_uid != agent.pw_uid:
        owner = _user(st.st_uid)
        return fail("data dir", f"{path} belongs to {owner}, not {AGENT_USER}",
                    f"chown -R {AGENT_USER}:{AGENT_USER} {path}")
    return ok("data dir", f"{path} {mode:04o}, owner {_user(st.st_uid)}")


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def store(ctx: Context) -> Check:
    path = ctx.cfg.db_path
    if not path.exists():
        return fail("store", f"no store at {path}",
                    "start the agent once; if the cart ran before, cart-agent restore "
                    "(README: When the store is lost)")
    try:
        conn = connect_read_only(path)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except (StoreError, sqlite3.Error) as exc:
        return fail("store", f"{path}: {exc}",
                    "stop the agent and run cart-agent restore (README: When the store is lost)")
    result = "; ".join(str(r[0]) for r in rows[:3])
    if result != "ok":
        return fail("store", f"{path}: quick_check says {result}",
                    "stop the agent and run cart-agent restore (README: When the store is lost)")
    return ok("store", f"{path} quick_check ok ({path.stat().st_size // 1024} KiB)")


def disk(ctx: Context) -> list[Check]:
    out = [_free("disk", Path(ctx.cfg.data_dir))]
    backups = ctx.cfg.backup_dir
    if backups.exists() and os.stat(backups).st_dev != os.stat(ctx.cfg.data_dir).st_dev:
        out.append(_free("backup disk", backups))
    return out


def _free(name: str, path: Path) -> Check:
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    vfs = os.statvfs(probe)
    free = vfs.f_bavail * vfs.f_frsize
    size = vfs.f_blocks * vfs.f_frsize
    need = min(MIN_FREE_BYTES, int(size * MIN_FREE_SHARE))
    mib = free / 2**20
    where = f"{probe}: {mib:,.1f} MiB free of {size / 2**20:,.0f} MiB"
    if free < need:
        return fail(name, f"{where} (needs {need / 2**20:,.1f} MiB)",
                    "free space: old journal logs (journalctl --vacuum-size=50M), old "
                    "backups elsewhere; never delete cart.db or identity.json")
    if vfs.f_files and vfs.f_favail < MIN_FREE_INODES:
        return fail(name, f"{probe}: only {vfs.f_favail} inodes free",
                    "remove stray small files on that filesystem")
    return ok(name, where)
