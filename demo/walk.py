"""The walk-through: a day at the cart, scanned on the simulators, answered by the real daemon.

Each step prints what the resident screen says (from the daemon's feedback stream) and the
receipts, decoded back from the ESC/POS bytes the simulated printer received.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

from agent.admin.control_client import call
from agent.devices.sim.cart import SimulatedCart
from agent.devices.sim.escpos_decode import decode_escpos
from fleet.keys import issue_token, read_signing_key

REPO = Path(__file__).resolve().parents[1]
ISSUER_KEY = REPO / "config" / "demo-keys" / "demo-issuer.pem"


class Screen:
    """Listens to the daemon's feedback stream, as the resident screen does."""

    def __init__(self, data_dir: str) -> None:
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        threading.Thread(target=self._listen, args=(data_dir,), daemon=True).start()
        # An answer given before the subscription would be missed: wait for it.
        if not self._subscribed.wait(10):
            raise TimeoutError("the cart's feedback stream did not open")

    def _listen(self, data_dir: str) -> None:
        try:
            for reply in call(data_dir, {"op": "feedback_stream"}, timeout_s=3600):
                if reply.get("streaming"):
                    self._subscribed.set()
                elif "feedback" in reply:
                    with self._cond:
                        self.events.append(reply["feedback"])
                        self._cond.notify_all()
        except (ConnectionError, OSError, ValueError):
            return  # the daemon stopped: the walk-through notices by timing out

    def wait(self, after: int, timeout_s: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self.events) <= after:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no answer from the cart")
                self._cond.wait(left)
            return self.events[after]


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


class Demo:
    def __init__(self, sim: SimulatedCart, screen: Screen, cart_id: str) -> None:
        self.sim = sim
        self.screen = screen
        self.cart_id = cart_id
        self.key = read_signing_key(ISSUER_KEY)
        self.receipts_seen = 0

    def token(self, svc: str, **claims: Any) -> str:
        return issue_token(self.key, "demo-issuer", svc, cart=self.cart_id, ttl_s=7200,
                           claims=claims)

    def scan(self, code: str | bytes, label: str) -> dict[str, Any]:
        shown = code if isinstance(code, str) else repr(code)
        print(f"  scan: {label}  [{shown[:40]}{'…' if len(shown) > 40 else ''}]")
        before = len(self.screen.events)
        self.sim.scanner.scan(code)
        answer = self.screen.wait(before)
        mark = {"accepted": "OK", "refused": "NO", "deposit": ">>", "info": "i"}.get(
            answer["kind"], "?")
        print(f"  screen [{mark}] {answer['zh']}\n              {answer['en']}")
        return answer

    def door_closes(self, comp: str) -> None:
        time.sleep(0.5)   # the resident takes the parcel
        self.sim.close_door(comp)
        print(f"  (door {comp} closed)")
        time.sleep(0.4)

    def receipts(self) -> None:
        deadline = time.monotonic() + 5
        while len(self.sim.printer.receipts()) <= self.receipts_seen:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        time.sleep(0.2)
        for raw in self.sim.printer.receipts()[self.receipts_seen:]:
            print("  receipt (decoded from the printer's ESC/POS bytes):")
            for line in decode_escpos(raw).text.splitlines():
                print(f"    | {line}")
        self.receipts_seen = len(self.sim.printer.receipts())


def walk(demo: Demo) -> None:
    say("1. A courier scans the badge: deposit mode")
    badge = demo.token("courier", sub="sf-0421", name="王师傅")
    demo.scan(badge, "courier badge")
    say("2. The courier scans two parcel labels; the best-fit free compartments open")
    first = demo.scan("SF1409882734", "parcel label")
    demo.door_closes(first["details"]["compartment"])
    second = demo.scan("YT8823019911", "parcel label")
    demo.door_closes(second["details"]["compartment"])
    demo.scan(badge, "courier badge again (leaves deposit mode)")

    say("3. A resident picks up a parcel")
    pickup = demo.token("parcel", parcel="SF1409882734")
    answer = demo.scan(pickup, "pick-up code")
    demo.receipts()
    demo.door_closes(answer["details"]["compartment"])

    say("4. An elderly resident collects a pre-paid meal")
    demo.scan(demo.token("meal", order="M-20261125-017", name="李奶奶",
                         items=["红烧肉", "米饭", "青菜豆腐汤"]), "meal code")
    demo.receipts()

    say("5. Queue tickets for the government counter")
    demo.scan(demo.token("ticket", service="gov"), "ticket code")
    demo.scan(demo.token("ticket", service="gov"), "ticket code")
    demo.receipts()

    say("6. The same pick-up code again (replayed)")
    demo.scan(pickup, "replayed pick-up code")
    say("7. A forged code (payload changed, signature kept)")
    head, body, sig = pickup.split(".")
    demo.scan(f"{head}.{body[:-4]}AAAA.{sig}", "forged code")
    say("8. Garbage from the scanner")
    demo.scan(b"\xff\xfe\x01 not a code", "unreadable bytes")
