"""The board releases, its answer is lost: the cart sends nothing again, watches the door and
tells the resident and the attendant what the door showed. Through the real daemon, drivers
and a simulated bus on a pty; what is counted is the open frames that reached the board."""

from __future__ import annotations

from agent.flows.feedback import Feedback
from agent.flows.open_outcome import OOS_REASON
from tests.flows_support import Rig
from tests.support import wait_for


def deposit(rig: Rig, label: str) -> str:
    badge = rig.issuer.token("courier", sub="c-1")
    rig.scan(badge)
    answer = rig.scan(label)
    comp = str(answer.details["compartment"])
    rig.close_door(comp)
    rig.wait_tx("parcel.deposit")
    rig.scan(badge)
    return comp


def frames(rig: Rig, comp: str) -> int:
    return rig.sim.locker.open_frames_received(rig.sim.address(comp))


def heard(rig: Rig, events: list[Feedback], reason: str) -> list[Feedback]:
    return [e for e in events if e.reason == reason]


def test_pickup_with_a_lost_answer_and_a_slow_door(rig: Rig) -> None:
    comp = deposit(rig, "SF1000000001")
    before = frames(rig, comp)
    rig.sim.locker.set_spring_delay(2.5)  # longer than the open timeout and the door read
    rig.sim.locker.fault_next_reply("drop", only="open")
    rig.drain()
    rig.sim.scanner.scan(rig.issuer.token("parcel", parcel="SF1000000001"))
    answer = rig.next_answer(15)
    assert answer.kind == "accepted", answer
    assert answer.details["confirmed_by"] == "door", answer
    assert comp in answer.zh
    assert comp in answer.en
    events = rig.drain()
    assert frames(rig, comp) == before + 1
    assert rig.sim.opens(comp) == 2  # the deposit and this pick-up: released once each
    confirmed = rig.wait_tx("locker.open_confirmed")[0]["data"]
    assert confirmed["compartment"] == comp
    assert confirmed["purpose"] == "pickup"
    assert not rig.txs("locker.open_failed")
    assert not rig.txs("locker.open_unconfirmed")
    assert not heard(rig, events, "forced_open")  # the late door is ours, not an alarm
    rig.close_door(comp)
    wait_for(lambda: rig.compartment(comp).parcel is None, what="parcel taken on close")
    assert rig.compartment(comp).state == "free"


def test_pickup_with_a_lost_answer_and_a_door_that_never_opens(rig: Rig) -> None:
    comp = deposit(rig, "SF1000000002")
    before = frames(rig, comp)
    assert rig.daemon.cart is not None
    rig.daemon.cart.unconfirmed_after_s = 3.0  # the window (10 s on a cart) kept short here
    rig.sim.locker.set_spring_delay(None)
    rig.sim.locker.fault_next_reply("flip", 3, only="open")
    rig.drain()
    rig.sim.scanner.scan(rig.issuer.token("parcel", parcel="SF1000000002"))
    checking = wait_for(lambda: heard(rig, list(rig.daemon.feedback.recent()),
                                      "open_checking"), what="the checking answer")
    assert "正在确认" in checking[0].zh
    assert "Checking" in checking[0].en
    answer = rig.next_answer(15)
    assert answer.kind == "refused", answer
    assert answer.reason == "open_unconfirmed", answer
    assert comp in answer.zh
    assert "工作人员" in answer.zh
    assert "attendant" in answer.en
    assert frames(rig, comp) == before + 1  # waited 3 s with the door shut: never re-sent
    record = rig.wait_tx("locker.open_unconfirmed")[0]["data"]
    assert (record["compartment"], record["was"]) == (comp, "unknown")
    comp_now = rig.compartment(comp)
    assert comp_now.out_of_service
    assert comp_now.oos_reason == OOS_REASON
    assert comp_now.parcel == "SF1000000002"  # nothing is assumed taken
    assert not rig.txs("locker.open_failed")


def test_deposit_with_a_garbled_answer_and_a_slow_door(rig: Rig) -> None:
    rig.scan(rig.issuer.token("courier", sub="c-9"))
    rig.sim.locker.set_spring_delay(2.5)
    rig.sim.locker.fault_next_reply("truncate", 2, only="open")
    answer = rig.scan("YT2000000003", timeout_s=15)
    assert answer.kind == "deposit", answer
    assert answer.details["confirmed_by"] == "door", answer
    comp = str(answer.details["compartment"])
    assert frames(rig, comp) == 1
    rig.close_door(comp)
    stored = rig.wait_tx("parcel.deposit")[0]["data"]
    assert stored == {"label": "YT2000000003", "compartment": comp, "courier": "c-9"}


def test_staff_open_with_a_lost_answer(rig: Rig) -> None:
    assert rig.daemon.actions is not None
    rig.sim.locker.set_spring_delay(2.5)
    rig.sim.locker.fault_next_reply("noise", only="open")
    result = rig.daemon.actions.open_compartment("B01", "check", by="staff", source="console")
    assert (result["opened"], result["outcome"]) == (None, "unknown")
    wait_for(lambda: rig.txs("locker.open_confirmed"), timeout_s=10, what="door confirmation")
    assert frames(rig, "B01") == 1
    wait_for(lambda: [e for e in rig.daemon.feedback.recent()
                      if e.details.get("confirmed_by") == "door"], what="staff told")
