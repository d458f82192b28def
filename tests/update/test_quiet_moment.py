"""What holds an update's switch back, on the real daemon with its simulators: an open door, a
deposit session, a receipt waiting to print. Each alone makes the moment not quiet; when it
ends the moment is quiet again. (The updater's waiting on this answer is in
test_updater_steps.py; the end-to-end run holds a switch behind an open door.)"""

from __future__ import annotations

from pathlib import Path

from agent.runtime.updates import not_quiet
from tests.flows_support import Rig
from tests.support import wait_for


def test_door_deposit_session_and_printing_each_hold_the_switch(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    try:
        facade = rig.daemon.facade

        def why() -> str | None:
            return not_quiet(facade, facade)

        wait_for(lambda: why() is None, what="a quiet cart at start")

        badge = rig.issuer.token("courier", sub="c-1")
        assert rig.scan(badge).details["active"] is True
        assert why() == "a deposit session is active"
        assert rig.scan(badge).details["active"] is False
        wait_for(lambda: why() is None, what="quiet after the deposit session")

        rig.sim.printer.set_paper_out()
        assert rig.scan(rig.issuer.token("ticket", service="gov")).kind == "accepted"
        wait_for(lambda: why() == "a receipt is printing", what="the receipt to wait")
        rig.sim.printer.set_paper_out(False)
        wait_for(lambda: why() is None, 30, what="the receipt printed")

        meal = rig.scan(rig.issuer.token("meal", order="M-9", items=["面"], compartment="A02"))
        assert meal.kind == "accepted", meal
        wait_for(lambda: (why() or "").startswith("door(s) open"), what="the open door")
        rig.close_door("A02")
        wait_for(lambda: why() is None, 30, what="quiet once the door closed")
    finally:
        rig.stop()
