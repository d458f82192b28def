"""End to end: a real daemon under a restarting supervisor (the boot guard before every start,
as systemd's ExecStartPre), a real broker, the fleet's signed `update` command, releases served
over HTTP by a server that drops connections mid-file.

Refused: a manifest signed by an untrusted key, a wheel that is not what the manifest says.
Waited for: a quiet moment (an open door holds the switch back).
Rolled back: a release that is not healthy within its deadline (the broker it reached at the
switch is gone), a release that crash-loops. Kept: a good release, with a kill -9 at every
step of the update; every start runs one of the two versions, the store stays whole and no
pending transaction is lost.
"""

from __future__ import annotations

import json
import shutil
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from agent.jws import b64url_decode, sign
from agent.update import slots
from agent.update.manifest import MANIFEST_NAME
from agent.update.updater import CRASH_ENV
from fleet.client import BrokerOptions
from fleet.keys import read_signing_key
from fleet.operations import cart_status
from fleet.rollout import Sent, roll_out, update_args
from fleet.status import collect_status
from tests.mqtt_broker import MosquittoBroker
from tests.update.cart import SupervisedCart
from tests.update.conftest import NEXT, Built
from tests.update.release_server import ReleaseServer

pytestmark = pytest.mark.timeout(400)
CART = "bc-test"


def published(www: Path, built: Built) -> Path:
    shutil.copytree(built.release, www / NEXT)
    return www


def with_rogue_signature(www: Path, built: Built) -> Path:
    """The same files and claims, signed by a key the cart does not trust, under the trusted
    key's id."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    manifest = www / NEXT / MANIFEST_NAME
    claims = json.loads(b64url_decode(manifest.read_text().split(".")[1]))
    manifest.write_text(sign(claims, Ed25519PrivateKey.generate(), "rel1"))
    return www


def with_altered_wheel(www: Path) -> Path:
    wheel = next((www / NEXT / "wheels").glob("cart_agent-*.whl"))
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    wheel.write_bytes(bytes(data))
    return www


def send_update(opts: BrokerOptions, built: Built, url: str, version: str = NEXT,
                **extra: Any) -> Sent:
    signer = (read_signing_key(built.keys / "f1.pem"), "f1")
    args = update_args(version, url, extra.get("window_s"), extra.get("deadline_s"))
    sent = roll_out(opts, [CART], args, signer, timeout_s=20)
    assert len(sent) == 1
    assert sent[0].ok, sent[0].said
    return sent[0]


def outcome_for(cart: SupervisedCart, ok: bool, text: str) -> Any:
    def check() -> dict[str, Any] | None:
        outcome = cart.outcome()
        if outcome and outcome["ok"] is ok and text in str(outcome.get("reason")):
            return outcome
        return None
    return check


def test_update_end_to_end(tmp_path: Path, built: Built) -> None:
    t0 = time.monotonic()

    def phase(name: str) -> None:
        print(f"update e2e: {name} at {time.monotonic() - t0:.1f} s")

    broker = MosquittoBroker(tmp_path / "mqtt").start()
    opts = BrokerOptions(port=broker.port)
    cart = SupervisedCart(tmp_path, broker.port, built.release_pub, built.fleet_pub).start()
    factory = str(Path(__import__("sys").prefix))
    def online(what: str = "the cart online") -> None:
        # The fleet sends nothing to a cart whose retained status says offline (a restart
        # leaves that status until the new process connects).
        cart.wait(lambda: (cart_status(opts, CART) or {}).get("state") == "online", 30, what)

    try:
        cart.wait_serving()
        online()
        assert cart.running_version() == "0.1.0"

        # Transactions that stay pending: the broker has no ingest to acknowledge them.
        for _ in range(4):
            cart.sim.scanner.scan(cart.issuer.token("ticket", service="gov"))
        cart.wait(lambda: len(cart.query("SELECT id FROM transactions WHERE state = 'pending'"
                                         " AND type = 'ticket.issue'")) == 4, 30, "4 tickets")
        pending = {row[0] for row in cart.query(
            "SELECT id FROM transactions WHERE state = 'pending'")}

        phase("serving, tickets pending")
        # --- refused before anything is installed --------------------------------------
        with ReleaseServer(with_rogue_signature(published(tmp_path / "www-sig", built),
                                                built)) as srv:
            send_update(opts, built, srv.url)
            cart.wait(outcome_for(cart, False, "signature"), 60, "the rogue release refused")
        with ReleaseServer(with_altered_wheel(published(tmp_path / "www-hash", built))) as srv:
            send_update(opts, built, srv.url)
            outcome = cart.wait(outcome_for(cart, False, "sha256"), 60,
                                "the altered wheel refused")
        assert "does not match the manifest" in outcome["reason"]
        assert not slots.release_path(cart.data_dir, NEXT).exists()
        assert cart.running_version() == "0.1.0"

        phase("refusals done")
        # --- a dropping link, kill -9 while fetching and installing, then a failed gate ---
        marks = tmp_path / "marks"
        marks.mkdir()
        cart.env[CRASH_ENV] = f"fetching,fetched,installed:{marks}"
        cart.restart()
        online()
        www = published(tmp_path / "www", built)
        with ReleaseServer(www, cut_after=3_000_000) as srv:
            send_update(opts, built, srv.url, deadline_s=15)
            cart.wait(lambda: (cart.state().get("trial") or {}).get("starts", 0) >= 1, 240,
                      "the switch to the new release")
            broker.stop()  # reached at the switch, gone now: the new version cannot be healthy
            outcome = cart.wait(outcome_for(cart, False, "not healthy"), 120, "the rollback")
            assert srv.drops > 0, "the link never dropped"
            assert srv.ranged() > 0, "no download was resumed"
        assert sorted(p.name for p in marks.iterdir()) == ["fetched", "fetching", "installed"]
        assert "not up: sync" in outcome["reason"]  # the link it had at the switch
        assert slots.current_target(cart.data_dir) == Path(factory)
        broker.start()
        cart.wait(lambda: cart.running_version() == "0.1.0", 60, "0.1.0 running again")
        online("the cart online again")

        phase("rollback done")
        # --- kill -9 at the switch and after the gate: the update still lands -------------
        cart.env[CRASH_ENV] = f"trial-recorded,switched,healthy:{marks}"
        cart.restart()
        online()
        door = cart.sim.address("A01")
        cart.sim.locker.force_open(door)  # a resident's door stands open: not a quiet moment
        with ReleaseServer(www) as srv:
            send_update(opts, built, srv.url, deadline_s=60)
            cart.wait(lambda: (cart.state().get("job") or {}).get("step") == "waiting", 60,
                      "the installed release waiting for a quiet moment")
            time.sleep(3)
            assert (cart.state().get("job") or {}).get("step") == "waiting"
            assert slots.current_target(cart.data_dir) == Path(factory)
            cart.sim.locker.close_door(door)
            cart.wait(outcome_for(cart, True, "healthy"), 180, "the new version kept")
        assert len(list(marks.iterdir())) == 6
        cart.wait(lambda: cart.running_version() == NEXT, 60, f"{NEXT} running")
        assert slots.current_target(cart.data_dir) == slots.release_path(cart.data_dir, NEXT)

        phase("update landed")
        # --- a release that crash-loops goes back by itself -------------------------------
        broken = slots.release_path(cart.data_dir, "0.1.9")
        (broken / "bin").mkdir(parents=True)
        entry = broken / "bin" / "cart-agent"
        entry.write_text("#!/bin/sh\necho 'broken release' >&2\nexit 3\n")
        entry.chmod(entry.stat().st_mode | stat.S_IXUSR)
        (broken / ".complete").write_text("ok\n")
        with ReleaseServer(www) as srv:
            send_update(opts, built, srv.url, version="0.1.9", deadline_s=60)
            outcome = cart.wait(outcome_for(cart, False, "crash loop"), 120,
                                "the crash loop rolled back")
        cart.wait(lambda: cart.running_version() == NEXT, 60, f"{NEXT} running again")

        phase("crash loop rolled back")
        # --- the fleet sees it; nothing was lost ------------------------------------------
        rows = cart.wait(lambda: [r for r in collect_status(opts, 2.5) if r["cart"] == CART
                                  and (r.get("software") or {}).get("outcome")], 30,
                         "the fleet's status")
        software = rows[0]["software"]
        assert software["running"] == NEXT
        assert software["outcome"]["version"] == "0.1.9"
        assert software["outcome"]["ok"] is False
        assert set(cart.starts) <= {factory, NEXT, "0.1.9"}
        assert cart.query("PRAGMA quick_check") == [("ok",)]
        left = {row[0] for row in cart.query("SELECT id FROM transactions")}
        assert pending <= left, "a pending transaction was lost"
        seqs = [row[0] for row in cart.query("SELECT seq FROM transactions ORDER BY seq")]
        assert seqs == list(range(1, len(seqs) + 1))
        reports = [json.loads(row[0]) for row in cart.query(
            "SELECT data FROM transactions WHERE type = 'software.update' ORDER BY seq")]
        assert [(r["version"], r["ok"]) for r in reports] == [
            (NEXT, False), (NEXT, False), (NEXT, False), (NEXT, True), ("0.1.9", False)]
        kept = sorted(p.name for p in slots.releases_dir(cart.data_dir).iterdir()
                      if not p.name.startswith(".") and p.name not in ("current", "state.json"))
        assert NEXT in kept
    finally:
        cart.stop()
        broker.close()
