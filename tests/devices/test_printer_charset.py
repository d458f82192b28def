"""Receipts for GBK printers: characters outside the printer's charset (𠮷 and 䶮 are not in
GBK) print as a GS v 0 image drawn with the cart's CJK font; with no font for them, a visible
□ or a drawn box, and the rendering says so. Checked by decoding the ESC/POS bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.devices.printer.receipt import (
    DEFAULT_FONTS,
    PrinterProfile,
    Receipt,
    ReceiptLine,
    render,
)
from agent.devices.sim.escpos_decode import Raster, decode_escpos

AT = datetime(2024, 5, 1, 4, 30, tzinfo=UTC)
TX = "01HZ0000000000000000000000"
HANAZONO = DEFAULT_FONTS[0]
MICROHEI = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
needs_fonts = pytest.mark.skipif(
    not (Path(HANAZONO).is_file() and Path(MICROHEI).is_file()),
    reason="fonts-hanazono and fonts-wqy-microhei are installed by scripts/setup")


def meal(name: str = "王𠮷", items: tuple[str, ...] = ("䶮记包子", "红烧肉")) -> Receipt:
    lines = [ReceiptLine("姓名 Name", name), ReceiptLine("订单 Order", "M-1001")]
    lines += [ReceiptLine(f"  {i}. {item}", "") for i, item in enumerate(items, 1)]
    return Receipt(title_zh="长者助餐取餐单", title_en="Meal pick-up", cart_id="bc-01", at=AT,
                   tx_id=TX, lines=lines, footer=["谢谢使用 社区服务车"], tz="Asia/Shanghai")


def ink(r: Raster, x0: int, x1: int) -> int:
    return sum(sum(row[x0:x1]) for row in r.rows())


@needs_fonts
def test_gbk_printer_gets_an_image_for_what_gbk_cannot_encode() -> None:
    out = render(meal(), PrinterProfile(width_chars=32, charset="gbk"))
    assert out.notes == ()
    doc = decode_escpos(out.data)
    assert len(doc.rasters) == 2  # the name line and the 䶮 item line
    for r in doc.rasters:
        assert (r.width_bytes, r.width, r.height) == (48, 384, 24)  # the paper's full width
    name, item = doc.rasters
    # "姓名 Name" takes columns 0-8 (108 dots); 王𠮷 is right-aligned in the last 4 columns.
    assert ink(name, 0, 108) > 100
    assert ink(name, 336, 360) > 40
    assert ink(name, 360, 384) > 40
    assert ink(name, 120, 330) == 0  # the gap between label and value stays blank
    assert ink(item, 60, 84) > 40  # "  1. " is 5 columns: 䶮 starts at dot 60
    # Everything else is still text, in GBK inside the Chinese mode.
    text = [line.rstrip() for line in doc.text_lines]
    assert "长者助餐取餐单" in text
    assert "Meal pick-up" in text
    assert any(line.startswith("订单 Order") and line.endswith("M-1001") for line in text)
    assert "  2. 红烧肉" in text
    assert not any("𠮷" in line or "䶮" in line or "?" in line for line in text)
    assert [line.kind for line in doc.lines].count("raster") == 2


def test_gb18030_printer_gets_the_characters_as_text() -> None:
    out = render(meal(), PrinterProfile(charset="gb18030"))
    doc = decode_escpos(out.data)
    assert doc.rasters == []
    assert out.notes == ()
    text = [line.rstrip() for line in doc.text_lines]
    assert any(line.endswith("王𠮷") for line in text)
    assert "  1. 䶮记包子" in text


def test_no_usable_font_prints_a_visible_placeholder_and_says_so() -> None:
    out = render(meal(), PrinterProfile(charset="gbk", font_paths=("/nowhere/font.ttf",)))
    doc = decode_escpos(out.data)
    assert doc.rasters == []
    text = [line.rstrip() for line in doc.text_lines]
    assert any(line.endswith("王□") for line in text)
    assert "  1. □记包子" in text
    assert not any("?" in line for line in text)  # never a silent question mark
    assert len(out.notes) == 2
    assert "no usable font" in out.notes[0]
    assert "/nowhere/font.ttf" in out.notes[0]
    assert "U+20BB7" in out.notes[0]
    assert "U+4DAE" in out.notes[1]


@needs_fonts
def test_a_font_without_the_glyph_draws_a_box_and_says_so() -> None:
    # WenQuanYi Micro Hei has neither 𠮷 nor 䶮: the line is an image with a framed box.
    out = render(meal(items=()), PrinterProfile(charset="gbk", font_paths=(MICROHEI,)))
    doc = decode_escpos(out.data)
    assert len(doc.rasters) == 1
    box = [row[360:384] for row in doc.rasters[0].rows()]
    assert all(box[2][2:22])
    assert all(box[21][2:22])
    assert out.notes == ("no font has U+20BB7 𠮷: printed as a box",)


@needs_fonts
def test_control_bytes_in_claims_stay_neutralised_in_images() -> None:
    hostile = "\x1bd\xff\x1dV\x01王𠮷\x10\x04\x01"
    out = render(meal(name=hostile, items=("\x1b@䶮",)), PrinterProfile(charset="gbk"))
    doc = decode_escpos(out.data)  # strict: every byte is a known command or text
    names = [c.name for c in doc.commands]
    assert names.count("cut") == 1
    assert names.count("init") == 1
    assert "status_request" not in names
    assert not [c for c in doc.commands if c.name == "feed_lines" and c.args[0] == 0xFF]
    assert len(doc.rasters) == 2


def test_charset_is_checked() -> None:
    with pytest.raises(ValueError, match="charset must be one of gb18030, gbk"):
        PrinterProfile(charset="big5")
