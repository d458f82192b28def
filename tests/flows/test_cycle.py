"""The whole cycle through the real drivers and simulators over ptys: courier deposit, then
pick-up, meal and ticket receipts decoded back from the printer's bytes."""

from __future__ import annotations

from agent.devices.sim.escpos_decode import decode_escpos
from tests.flows_support import Rig
from tests.support import wait_for


def receipts_text(rig: Rig, count: int) -> list[str]:
    wait_for(lambda: len(rig.sim.printer.receipts()) >= count, what=f"{count} receipt(s)")
    return [decode_escpos(r).text for r in rig.sim.printer.receipts()]


def test_deposit_then_pickup(rig: Rig) -> None:
    badge = rig.issuer.token("courier", sub="c-007", name="王师傅")
    answer = rig.scan(badge)
    assert answer.kind == "deposit"
    assert answer.details["active"] is True
    assert "王师傅" in answer.zh

    answer = rig.scan("SF1234567890")
    assert answer.kind == "deposit"
    assert answer.details["compartment"] == "A01"
    assert rig.sim.opens("A01") == 1
    assert rig.compartment("A01").state == "reserved" or rig.compartment("A01").door == "open"
    assert rig.txs("parcel.deposit") == []            # recorded only when the door closes

    second = rig.scan("YT9876543210")
    assert second.details["compartment"] == "A02"
    rig.close_door("A01")
    deposit = rig.wait_tx("parcel.deposit")[0]
    assert deposit["data"] == {"label": "SF1234567890", "compartment": "A01", "courier": "c-007"}
    wait_for(lambda: rig.compartment("A01").parcel == "SF1234567890", what="A01 holds parcel")

    same_label = rig.scan("SF1234567890")
    assert same_label.kind == "refused"
    assert same_label.reason == "label_in_use"
    rig.close_door("A02")
    rig.wait_tx("parcel.deposit", 2)
    assert rig.scan(badge).details["active"] is False  # the badge again ends deposit mode

    pickup = rig.scan(rig.issuer.token("parcel", parcel="SF1234567890", cart="bc-test"))
    assert pickup.kind == "accepted", pickup
    assert pickup.details["compartment"] == "A01", pickup
    assert rig.sim.opens("A01") == 2
    tx = rig.wait_tx("parcel.pickup")[0]
    assert tx["data"]["label"] == "SF1234567890"
    assert tx["data"]["compartment"] == "A01"
    text = receipts_text(rig, 1)[0]
    assert "取件凭条" in text
    assert "SF1234567890" in text
    assert "A01" in text
    assert f"[QR: {tx['id']}]" in text
    assert "bc-test" in text
    rig.close_door("A01")
    wait_for(lambda: rig.compartment("A01").parcel is None, what="A01 emptied on close")
    assert rig.compartment("A01").state == "free"
    assert rig.compartment("A02").parcel == "YT9876543210"
    assert rig.sim.opens() == 3                       # nothing else ever opened


def test_meal_and_tickets(rig: Rig) -> None:
    meal = rig.scan(rig.issuer.token("meal", order="M-1001", name="李奶奶",
                                     items=["红烧肉", "米饭", "青菜豆腐汤"]))
    assert meal.kind == "accepted"
    assert meal.details["svc"] == "meal"
    assert rig.sim.opens() == 0                       # no compartment named: nothing opens
    numbers = []
    for service in ("gov", "gov", "property", "gov"):
        answer = rig.scan(rig.issuer.token("ticket", service=service))
        assert answer.kind == "accepted", answer
        numbers.append((service, answer.details["number"]))
    assert numbers == [("gov", 1), ("gov", 2), ("property", 1), ("gov", 3)]
    assert "政务服务 3 号" in answer.zh
    assert "No. 3" in answer.en
    texts = receipts_text(rig, 5)
    assert "李奶奶" in texts[0]
    assert "红烧肉" in texts[0]
    assert "青菜豆腐汤" in texts[0]
    assert "No. 1" in texts[1]
    assert "政务服务" in texts[1]

    boxed = rig.scan(rig.issuer.token("meal", order="M-1002", items=["饺子"],
                                      compartment="B01"))
    assert boxed.details["compartment"] == "B01"
    assert rig.sim.opens("B01") == 1
