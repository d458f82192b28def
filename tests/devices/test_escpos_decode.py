"""The ESC/POS decoder: commands, Chinese-mode text, QR data, raster images, streaming."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.devices.printer.receipt import native_qr, raster, text_line
from agent.devices.sim.escpos_decode import EscposDecodeError, decode_escpos, tokenize


def test_text_alignment_bold_size_and_chinese_mode() -> None:
    data = (b"\x1b@\x1ba\x01\x1bE\x01\x1d!\x11" + b"\x1c&" + "取件".encode("gb18030") + b"\x1c.\n"
            + b"\x1d!\x00\x1bE\x00\x1ba\x00plain\n")
    doc = decode_escpos(data)
    first, second = doc.lines
    assert (first.text, first.align, first.bold, first.width, first.height, first.chinese) == (
        "取件", "center", True, 2, 2, True)
    assert (second.text, second.align, second.bold, second.width, second.chinese) == (
        "plain", "left", False, 1, False)
    assert [c.name for c in doc.commands][:5] == ["init", "align", "bold", "size", "chinese_on"]


def test_full_width_yen_is_two_gb18030_bytes() -> None:
    doc = decode_escpos(b"\x1c&\xa3\xa412.50\x1c.\n")
    assert doc.text_lines == ["￥12.50"]


def test_bytes_above_0x7f_outside_chinese_mode_are_the_code_page() -> None:
    assert decode_escpos(b"\xa3\xa4\n").text_lines == ["úñ"]  # PC437, not GB18030


def test_native_qr_data_is_extracted_at_print() -> None:
    doc = decode_escpos(b"\x1b@" + native_qr(b"01HZTX", 6) + b"\x1dV\x01")
    assert doc.qr_codes == [b"01HZTX"]
    assert "[QR: 01HZTX]" in doc.text
    names = [c.name for c in doc.commands]
    assert names == ["init", "qr_model", "qr_size", "qr_ec", "qr_store", "qr_print", "cut"]
    size = next(c for c in doc.commands if c.name == "qr_size")
    ec = next(c for c in doc.commands if c.name == "qr_ec")
    assert size.args == (6,)
    assert ec.args == (0x31,)
    assert doc.cuts == 1


def test_raster_round_trip() -> None:
    rows = [[(x + y) % 3 == 0 for x in range(13)] for y in range(5)]
    doc = decode_escpos(raster(rows))
    (image,) = doc.rasters
    assert (image.width_bytes, image.height) == (2, 5)
    assert [row[:13] for row in image.rows()] == rows
    assert not any(any(row[13:]) for row in image.rows())  # padding bits stay white


def test_cut_forms() -> None:
    doc = decode_escpos(b"\x1dV\x00\x1dV1\x1dVB\x03")
    assert doc.cuts == 3
    assert [c.args for c in doc.commands] == [(0,), (49,), (66, 3)]


def test_status_requests_are_commands_not_text() -> None:
    commands, complete = tokenize(b"\x10\x04\x01ab\x10\x04\x04")
    assert complete == 8
    assert [(c.name, c.args) for c in commands] == [
        ("status_request", (1,)), ("text", ()), ("status_request", (4,))]


def test_strict_mode_rejects_unknown_commands_and_bad_gb18030() -> None:
    with pytest.raises(EscposDecodeError, match="unknown command"):
        decode_escpos(b"\x1b\x99")
    with pytest.raises(EscposDecodeError, match="GB18030"):
        decode_escpos(b"\x1c&\x81\x20\x1c.")  # a lead byte without a valid trail byte
    with pytest.raises(EscposDecodeError, match="ends inside"):
        decode_escpos(b"\x1d(k\x10\x001P0abc")
    assert decode_escpos(b"\x1b\x99ok\n", strict=False).text_lines == ["ok"]


def test_incomplete_command_is_left_for_the_next_read() -> None:
    data = b"ab\x1dv0\x00\x01\x00\x02\x00\xff"  # raster header promises 2 bytes, 1 arrived
    commands, complete = tokenize(data)
    assert [c.name for c in commands] == ["text"]
    assert complete == 2


_texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Co", "Cn")),
    max_size=20)


@settings(max_examples=200, deadline=None)
@given(_texts)
def test_text_line_round_trip(text: str) -> None:
    (line,) = decode_escpos(text_line(text)).text_lines
    assert line == text.replace("¥", "￥").replace("\u00a0", " ")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([
    text_line("取件 ￥3"), text_line("hello"), native_qr(b"TX1", 4), b"\x10\x04\x02",
    raster([[True, False] * 5] * 3), b"\x1dV\x01", b"\x1b@", b"\x1d!\x11"]), max_size=8),
    st.lists(st.integers(min_value=1, max_value=40), max_size=6))
def test_streamed_tokenizing_matches_whole(parts: list[bytes], cuts: list[int]) -> None:
    """What the printer simulator does: tokenize what has arrived, keep the unfinished rest."""
    data = b"".join(parts)
    whole, _ = tokenize(data)
    streamed: list[tuple[str, bytes]] = []
    buffer, position = b"", 0
    edges = sorted({min(c, len(data)) for c in cuts} | {len(data)})
    for edge in edges:
        buffer += data[position:edge]
        position = edge
        commands, complete = tokenize(buffer)
        streamed += [(c.name, buffer[c.start : c.end]) for c in commands]
        buffer = buffer[complete:]
    assert buffer == b""
    # Text runs may come in pieces; join neighbouring pieces before comparing.
    def merged(items: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for name, raw in items:
            if out and name == "text" and out[-1][0] == "text":
                out[-1] = ("text", out[-1][1] + raw)
            else:
                out.append((name, raw))
        return out
    assert merged(streamed) == merged([(c.name, data[c.start : c.end]) for c in whole])
