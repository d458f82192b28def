"""A missing, empty or damaged cart.db never becomes a new cart: the real daemon refuses to
start, and `cart-agent restore` brings the store back without re-opening a door or reusing a
seq. Run as separate processes on the simulated cart, as on a real one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.store import Store
from tests.faults.harness import REPO, FaultCart
from tests.support import wait_for


def agent(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def start_refused(cart: FaultCart) -> str:
    """`cart-agent run` must exit 1 at once, saying why, and write nothing."""
    before = {p.name: p.stat().st_size for p in cart.data_dir.glob("cart.db*")}
    done = agent("run", "-c", str(cart.config), timeout=30)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "refusing" in done.stderr
    assert "cart-agent restore" in done.stderr
    after = {p.name: p.stat().st_size for p in cart.data_dir.glob("cart.db*")}
    assert after == before
    return done.stderr


def answers(cart: FaultCart, reason: str) -> int:
    return sum(1 for (data,) in cart.query("SELECT data FROM transactions WHERE type = "
                                           "'scan.rejected'") if json.loads(data)["reason"]
               == reason)


def deposit(cart: FaultCart, badge: str, label: str) -> str:
    cart.sim.scanner.scan(badge)
    wait_for(lambda: cart.query("SELECT 1 FROM transactions WHERE type = 'deposit_mode' AND "
                                "data LIKE '%enter%' ORDER BY seq DESC LIMIT 1"),
             what="deposit mode")
    opens = {c: cart.sim.opens(c) for c in ("A01", "A02", "A03")}
    cart.sim.scanner.scan(label)
    comp = wait_for(lambda: next((c for c in opens if cart.sim.opens(c) > opens[c]), None),
                    what=f"a compartment to open for {label}")
    wait_for(lambda: cart.query("SELECT 1 FROM compartments WHERE id = ? AND door = 'open'",
                                (comp,)), what=f"{comp} seen open")
    cart.sim.close_door(comp)
    wait_for(lambda: cart.query("SELECT 1 FROM compartments WHERE parcel = ?", (label,)),
             what=f"{label} stored")
    cart.sim.scanner.scan(badge)  # leave deposit mode
    wait_for(lambda: cart.query("SELECT COUNT(*) FROM transactions WHERE type = "
                                "'deposit_mode'")[0][0] % 2 == 0, what="deposit mode left")
    return comp


@pytest.mark.timeout(120)
@pytest.mark.parametrize("loss", ["truncate", "delete"])
def test_lost_store_is_refused_then_restored_without_reopening_a_door(tmp_path: Path,
                                                                      loss: str) -> None:
    cart = FaultCart(tmp_path, broker_port=None)
    try:
        cart.start()
        badge = cart.issuer.token("courier", sub="c-1")
        ticket = cart.issuer.token("ticket", service="gov")
        held = deposit(cart, badge, "SF0000000042")
        cart.sim.scanner.scan(ticket)
        wait_for(lambda: cart.query("SELECT 1 FROM transactions WHERE type = 'ticket.issue'"),
                 what="ticket")
        last_seq = cart.query("SELECT MAX(seq) FROM transactions")[0][0]
        pending = cart.pending()
        assert cart.stop() == 0
        db = cart.db
        if loss == "truncate":
            db.write_bytes(b"")
        else:
            db.unlink()
        start_refused(cart)

        done = agent("restore", "-c", str(cart.config))
        assert done.returncode == 0, done.stderr
        assert "seq continues at" in done.stdout

        cart.start()
        # seq goes on past everything the cart ever numbered; nothing pending was forgotten
        restored = cart.query("SELECT seq, data FROM transactions WHERE type = "
                              "'store.restored'")
        assert restored
        assert restored[0][0] == last_seq + 1
        assert cart.pending() >= pending
        # the used ticket stays used; its service numbers on
        cart.sim.scanner.scan(ticket)
        wait_for(lambda: answers(cart, "already_used") == 1, what="the replay refused")
        cart.sim.scanner.scan(cart.issuer.token("ticket", service="gov"))
        wait_for(lambda: len(cart.query("SELECT 1 FROM transactions WHERE type = "
                                        "'ticket.issue'")) == 2, what="second ticket")
        numbers = [json.loads(d)["number"] for (d,) in cart.query(
            "SELECT data FROM transactions WHERE type = 'ticket.issue' ORDER BY seq")]
        assert numbers == [1, 2]
        # the stored parcel is still where it was: a new deposit goes elsewhere...
        held_opens = cart.sim.opens(held)
        other = deposit(cart, badge, "SF0000000043")
        assert other != held
        assert cart.sim.opens(held) == held_opens
        # ...and its own pick-up code still opens its compartment
        cart.sim.scanner.scan(cart.issuer.token("parcel", parcel="SF0000000042"))
        wait_for(lambda: cart.sim.opens(held) == held_opens + 1, what="the pick-up")
        seqs = [s for (s,) in cart.query("SELECT seq FROM transactions ORDER BY seq")]
        assert seqs == sorted(set(seqs))
        assert seqs[-1] > last_seq + 1
    finally:
        cart.close()


@pytest.mark.timeout(60)
def test_damaged_last_page_is_refused_at_start(tmp_path: Path) -> None:
    cart = FaultCart(tmp_path, broker_port=None)
    try:
        store = Store(cart.db, "bc-test")
        for i in range(400):
            store.record("ticket.issue", {"service": "gov", "number": i, "pad": "x" * 200})
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        size = cart.db.stat().st_size
        with cart.db.open("r+b") as fh:  # scribble over the middle of the last page
            fh.seek(size - 4096 + 100)
            fh.write(os.urandom(3000))
        stderr = start_refused(cart)
        assert "quick_check" in stderr
    finally:
        cart.close()


@pytest.mark.timeout(60)
def test_wiped_data_dir_with_backups_elsewhere(tmp_path: Path) -> None:
    backups = tmp_path / "sdcard"
    cart = FaultCart(tmp_path, broker_port=None, backup={"dir": str(backups)})
    try:
        cart.start()
        wait_for(lambda: any(backups.glob("cart-*.db")), what="the first backup")
        cart.sim.scanner.scan(cart.issuer.token("ticket", service="gov"))
        wait_for(lambda: cart.query("SELECT 1 FROM transactions WHERE type = 'ticket.issue'"),
                 what="ticket")
        assert cart.stop() == 0
        shutil.rmtree(cart.data_dir)
        start_refused(cart)
        done = agent("restore", "-c", str(cart.config))
        assert done.returncode == 0, done.stderr
        cart.start()
        assert cart.query("SELECT COUNT(*) FROM transactions WHERE type = 'store.restored'")
    finally:
        cart.close()


def test_restore_refuses_while_the_daemon_runs(tmp_path: Path) -> None:
    cart = FaultCart(tmp_path, broker_port=None)
    try:
        cart.start()
        wait_for(lambda: any((cart.data_dir / "backups").glob("cart-*.db")), what="a backup")
        done = agent("restore", "-c", str(cart.config))
        assert done.returncode == 1
        assert "stop it first" in done.stderr
        assert cart.proc is not None
        assert cart.proc.poll() is None
    finally:
        cart.close()


MODES = """
import os, sys, stat
os.umask(0)
from pathlib import Path
from agent.store import Store
from agent.store.backup import StoreKeeper
data = Path(sys.argv[1]) / "data"
store = Store(data / "cart.db", "bc-01")
store.record("x", {})
StoreKeeper(store, data / "backups", 900, 3).backup()
for p in [data, data / "cart.db", data / "cart.db-wal", data / "cart.db-shm",
          data / "identity.json", data / "backups", *sorted((data / "backups").iterdir())]:
    print(p.name, oct(stat.S_IMODE(p.stat().st_mode)))
"""


def test_data_dir_0700_and_files_0600_whatever_the_umask(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", MODES, str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=30, check=True).stdout
    modes = dict(line.split() for line in out.splitlines())
    assert modes.pop("data") == "0o700"
    assert modes.pop("backups") == "0o700"
    assert modes
    assert set(modes.values()) == {"0o600"}, modes


def test_damaged_identity_is_refused_and_restore_uses_the_copy_beside_the_backups(
        tmp_path: Path) -> None:
    from agent.store import StoreRefused
    from agent.store.backup import StoreKeeper
    from agent.store.restore import restore

    data = tmp_path / "data"
    store = Store(data / "cart.db", "bc-01")
    keeper = StoreKeeper(store, data / "backups", 900, 3)
    store.record("ticket.issue", {"n": 1})
    keeper.backup()
    store.record("ticket.issue", {"n": 2})
    keeper.write_identity()
    store.close()
    (data / "identity.json").write_bytes(b"\x00garbage")
    with pytest.raises(StoreRefused, match="damaged"):
        Store(data / "cart.db", "bc-01")
    (data / "cart.db").write_bytes(b"")  # and the database is gone too
    report = restore("bc-01", data / "cart.db", data / "backups")
    assert report.backup_seq == 1
    assert report.restored_seq == 2
    store = Store(data / "cart.db", "bc-01")  # consistent again: opens
    assert [r["type"] for r in store.query("SELECT type FROM transactions ORDER BY seq")] == [
        "ticket.issue", "store.restored"]
    store.close()
