"""Receipts through the print queue to the simulated printer on a pty, for a GBK printer:
the name no GBK code exists for prints as an image, the rest as text, and a receipt printed
with placeholders says so in its print job. Plus the receipt's wording: distinct labels for
the parcel and the transaction, and a footer that does not strand one word."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import validate
from agent.devices.sim.escpos_decode import decode_escpos
from agent.flows.receipts import ReceiptRenderer
from agent.store import Tx
from tests.flows_support import Rig
from tests.support import offline_config, wait_for

HANAZONO = "/usr/share/fonts/truetype/hanazono/HanaMinA.ttf"


def meal_receipt(rig: Rig) -> tuple[bytes, dict[str, object]]:
    rig.scan(rig.issuer.token("meal", order="M-7", name="王𠮷", items=["䶮记包子", "米饭"]))
    wait_for(lambda: rig.sim.printer.receipts(), what="the meal receipt")
    job = wait_for(lambda: rig.store.query(
        "SELECT state, last_error FROM print_jobs WHERE state = 'printed'"), what="job printed")
    return rig.sim.printer.receipts()[0], job[0]


@pytest.mark.skipif(not Path(HANAZONO).is_file(), reason="fonts-hanazono (scripts/setup)")
def test_gbk_printer_through_the_queue(tmp_path: Path) -> None:
    rig = Rig(tmp_path, printer={"charset": "gbk"})
    try:
        data, job = meal_receipt(rig)
    finally:
        rig.stop()
    doc = decode_escpos(data)
    assert [(r.width_bytes, r.height) for r in doc.rasters] == [(48, 24), (48, 24)]
    text = [line.rstrip() for line in doc.text_lines]
    assert "长者助餐取餐单" in text
    assert "  2. 米饭" in text
    assert any(line.startswith("订单 Order") and line.endswith("M-7") for line in text)
    assert job == {"state": "printed", "last_error": None}


def test_no_font_prints_placeholders_and_the_job_says_so(tmp_path: Path) -> None:
    rig = Rig(tmp_path, printer={"charset": "gbk", "font_path": str(tmp_path / "gone.ttf")})
    try:
        data, job = meal_receipt(rig)
    finally:
        rig.stop()
    text = [line.rstrip() for line in decode_escpos(data).text_lines]
    assert any(line.endswith("王□") for line in text)
    assert "  1. □记包子" in text
    assert job["state"] == "printed"
    note = str(job["last_error"])
    assert "no usable font" in note
    assert "gone.ttf" in note
    assert "U+20BB7" in note


def test_pickup_receipt_labels_and_footer(tmp_path: Path) -> None:
    cfg = validate(offline_config(tmp_path))
    tx = Tx("01HZ0000000000000000000000", 1, "bc-test", "parcel.pickup",
            "2026-12-01T04:30:00.000Z", {"label": "SF1234567890", "compartment": "A01"})
    lines = [line.rstrip() for line in
             decode_escpos(ReceiptRenderer(cfg).render("pickup", tx).data).text_lines]
    parcel = [line for line in lines if line.startswith("快递单号 Parcel")]
    assert parcel
    assert parcel[0].endswith("SF1234567890")
    assert "流水号 Tx" in lines  # the transaction has its own label
    assert not any(line.startswith("单号") for line in lines)
    footer = lines[lines.index("谢谢使用 社区服务车") + 1:]
    footer = [line.strip() for line in footer if line.strip()]
    assert footer == ["Thank you - community", "service cart"]  # no word left alone
