"""A receipt rendered to ESC/POS bytes: the same input gives the same bytes.

python-escpos's `text()` is not used: it sends GB18030 without the printer's Chinese-mode
command and turns `￥` into `?` on lines without an ideograph (FACTS.md). Here every line with
a non-ASCII character goes inside FS & ... FS . in the printer's charset (`gb18030`, or `gbk`
for the many printers that know only GBK/GB2312), and `¥` (U+00A5, a 4-byte GB18030 sequence
GBK printers print as junk) becomes `￥` (U+FFE5, 2 bytes: A3 A4).

A line holding a character the charset cannot encode (𠮷 and 䶮 are outside GBK) is drawn with
the cart's CJK fonts and sent as a GS v 0 image as wide as the paper (glyphs.py); without a
usable font each such character prints as a visible □, and the rendering says so in `notes`.
The only I/O is reading those fonts, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import segno

from agent.devices.printer.glyphs import Glyphs

INIT = b"\x1b@"
CHINESE_ON = b"\x1c&"  # FS &
CHINESE_OFF = b"\x1c."  # FS .
BOLD_ON, BOLD_OFF = b"\x1bE\x01", b"\x1bE\x00"
ALIGN = {"left": b"\x1ba\x00", "center": b"\x1ba\x01", "right": b"\x1ba\x02"}
LF = b"\n"
DOTS_PER_CHAR = 12  # font A: 12 dots wide, so 32 chars = 384 dots (58 mm), 48 = 576 (80 mm)
CHARSETS = {"gb18030": "gb18030", "gbk": "gbk"}
# Debian's fonts-hanazono covers CJK Extension A and the Extension B characters of names
# (䶮, 𠮷); WenQuanYi Micro Hei (the screens' font) is the last resort.
DEFAULT_FONTS = (
    "/usr/share/fonts/truetype/hanazono/HanaMinA.ttf",
    "/usr/share/fonts/truetype/hanazono/HanaMinB.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)
PLACEHOLDER = "□"  # in GB2312, so in every charset here


@dataclass(frozen=True)
class PrinterProfile:
    width_chars: int = 32  # 32 for 58 mm paper, 48 for 80 mm
    native_qr: bool = True  # GS ( k; without it the QR code is sent as a raster image
    cut: bool = True  # has a cutter (GS V); otherwise just feed for tearing
    qr_size: int = 6  # dots per QR module, 1..16
    charset: str = "gb18030"  # what the printer's Chinese mode takes: gb18030 | gbk
    font_paths: tuple[str, ...] = DEFAULT_FONTS  # for characters the charset cannot encode

    def __post_init__(self) -> None:
        if not 16 <= self.width_chars <= 64:
            raise ValueError("width_chars must be 16..64")
        if not 1 <= self.qr_size <= 16:
            raise ValueError("qr_size must be 1..16")
        if self.charset not in CHARSETS:
            raise ValueError(f"charset must be one of {', '.join(CHARSETS)}")

    @property
    def width_dots(self) -> int:
        return self.width_chars * DOTS_PER_CHAR


@dataclass(frozen=True)
class ReceiptLine:
    label: str
    value: str = ""


@dataclass(frozen=True)
class Receipt:
    """What a receipt says. `at` must carry a time zone; it is printed in `tz` (an IANA name,
    e.g. "Asia/Shanghai"), or in the system's local zone when `tz` is None."""

    title_zh: str
    title_en: str
    cart_id: str
    at: datetime
    tx_id: str
    lines: Sequence[ReceiptLine | tuple[str, str]] = ()
    big_text: str | None = None  # e.g. a queue ticket's number, printed large
    qr_data: str | None = None  # defaults to tx_id
    footer: Sequence[str] = ()
    tz: str | None = None


@dataclass(frozen=True)
class Rendered:
    """A receipt's bytes, and what did not print as it should (empty when all did)."""

    data: bytes
    notes: tuple[str, ...] = ()


def render_receipt(receipt: Receipt, profile: PrinterProfile) -> bytes:
    return render(receipt, profile).data


def render(receipt: Receipt, profile: PrinterProfile) -> Rendered:
    if receipt.at.tzinfo is None:
        raise ValueError("receipt time must be timezone-aware")
    width = profile.width_chars
    lines = LineWriter(profile)
    text_line = lines.line
    out = bytearray(INIT)

    out += ALIGN["center"] + BOLD_ON
    title_size = 2 if columns(receipt.title_zh) * 2 <= width else 1
    out += _sized(title_size)
    for chunk in wrap(receipt.title_zh, width // title_size):
        out += text_line(chunk, "center", title_size)
    out += _sized(1) + BOLD_OFF
    for chunk in wrap_words(receipt.title_en, width):
        out += text_line(chunk, "center")
    out += ALIGN["left"] + text_line("-" * width)

    for item in receipt.lines:
        label, value = (item.label, item.value) if isinstance(item, ReceiptLine) else item
        for row in label_value(label, value, width):
            out += text_line(row)

    if receipt.big_text:
        scale = next((s for s in (4, 3, 2) if columns(receipt.big_text) * s <= width), 1)
        out += ALIGN["center"] + BOLD_ON + _sized(scale)
        for chunk in wrap(receipt.big_text, width // scale):
            out += text_line(chunk, "center", scale)
        out += _sized(1) + BOLD_OFF + ALIGN["left"]

    out += text_line("-" * width)
    local = receipt.at.astimezone(ZoneInfo(receipt.tz) if receipt.tz else None)
    for label, value in (
        ("车号 Cart", receipt.cart_id),
        ("时间 Time", local.strftime("%Y-%m-%d %H:%M")),
        ("流水号 Tx", receipt.tx_id),
    ):
        for row in label_value(label, value, width):
            out += text_line(row)

    out += ALIGN["center"]
    qr_data = (receipt.qr_data if receipt.qr_data is not None else receipt.tx_id).encode()
    out += native_qr(qr_data, profile.qr_size) if profile.native_qr else raster_qr(
        qr_data, profile.qr_size, profile.width_dots)
    for line in receipt.footer:
        for chunk in wrap_words(line, width):
            out += text_line(chunk, "center")
    out += ALIGN["left"]
    # Feed the last line past the cutter (or the tear bar) before cutting.
    out += b"\x1bd\x04"
    if profile.cut:
        out += b"\x1dV\x01"  # GS V 1: partial cut, which most 58/80 mm cutters support
    return Rendered(bytes(out), tuple(lines.notes))


def _sized(scale: int) -> bytes:
    return b"\x1d!" + bytes([((scale - 1) << 4) | (scale - 1)])  # GS ! n: width and height


# Characters that are not text on paper and would otherwise reach the printer as commands
# (a meal item named "\x1bd\xff" must not feed 255 lines), or print as junk.
_REPLACE = {0xA5: "￥", 0xA0: " ", 0x09: " "}


def clean(text: str) -> str:
    text = text.translate(_REPLACE)
    return "".join(ch if ch >= " " and ch != "\x7f" and not "\x80" <= ch <= "\x9f" else "?"
                   for ch in text)


def text_line(text: str) -> bytes:
    """One line of text and LF in GB18030 (see LineWriter for other charsets)."""
    return LineWriter(PrinterProfile()).line(text)


@lru_cache(maxsize=4)
def glyphs_for(font_paths: tuple[str, ...]) -> Glyphs:
    return Glyphs(font_paths)


class LineWriter:
    """Lines of one receipt in the profile's charset; `notes` collects what printed as a
    placeholder."""

    def __init__(self, profile: PrinterProfile) -> None:
        self.profile = profile
        self.codec = CHARSETS[profile.charset]
        self.notes: list[str] = []

    def line(self, text: str, align: str = "left", scale: int = 1) -> bytes:
        text = clean(text)
        if text.isascii():
            return text.encode("ascii") + LF
        try:
            return CHINESE_ON + text.encode(self.codec) + CHINESE_OFF + LF
        except UnicodeEncodeError:
            return self._outside_charset(text, align, scale)

    def _outside_charset(self, text: str, align: str, scale: int) -> bytes:
        strangers = [ch for ch in dict.fromkeys(text) if not _encodes(ch, self.codec)]
        glyphs = glyphs_for(self.profile.font_paths)
        if glyphs.usable:
            drawn = glyphs.draw_line(text, self.profile.width_dots, align, scale)
            if drawn.missing:
                self.notes.append(f"no font has {_names(drawn.missing)}: printed as a box")
            # GS v 0 advances the paper by the image's height: no LF after it.
            return raster(drawn.rows, feed=False)
        self.notes.append(f"no usable font ({'; '.join(glyphs.problems) or 'none configured'})"
                          f": {_names(strangers)} printed as {PLACEHOLDER}")
        shown = "".join(PLACEHOLDER if ch in strangers else ch for ch in text)
        return CHINESE_ON + shown.encode(self.codec) + CHINESE_OFF + LF


def _encodes(ch: str, codec: str) -> bool:
    try:
        ch.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _names(chars: list[str]) -> str:
    return ", ".join(f"U+{ord(ch):04X} {ch}" for ch in chars)


def columns(text: str) -> int:
    """Printed width: in Chinese mode every non-ASCII character is a double-width glyph."""
    return sum(1 if ch.isascii() else 2 for ch in clean(text))


def wrap(text: str, width: int) -> list[str]:
    """Split into lines of at most `width` columns, at spaces where possible (for Latin words);
    CJK text may break between any two characters."""
    text = clean(text)
    lines: list[str] = []
    current, used = "", 0
    for token in _tokens(text):
        size = columns(token)
        if used + size <= width:
            current, used = current + token, used + size
            continue
        if token.isspace():  # a break: drop the space
            lines.append(current.rstrip())
            current, used = "", 0
            continue
        if current.strip():
            lines.append(current.rstrip())
        current, used = "", 0
        for ch in token:  # a token wider than the line: hard split
            if used + columns(ch) > width:
                lines.append(current)
                current, used = "", 0
            current, used = current + ch, used + columns(ch)
    if current.strip() or not lines:
        lines.append(current.rstrip())
    return lines


def wrap_words(text: str, width: int) -> list[str]:
    """wrap(), with the lines evened out: as few lines as wrap() needs, but as narrow as
    possible, so a centred footer does not leave one word alone on its last line."""
    lines = wrap(text, width)
    best = lines
    for narrower in range(width - 1, 0, -1):
        candidate = wrap(text, narrower)
        if len(candidate) != len(lines):
            break
        best = candidate
    return best


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    word = ""
    for ch in text:
        if ch.isascii() and not ch.isspace():
            word += ch
            continue
        if word:
            tokens.append(word)
            word = ""
        tokens.append(ch)
    if word:
        tokens.append(word)
    return tokens


def label_value(label: str, value: str, width: int) -> list[str]:
    """`label      value` on one line when both fit, else the label then the value right-aligned."""
    gap = width - columns(label) - columns(value)
    if gap >= 1:
        return [clean(label) + " " * gap + clean(value)]
    rows = wrap(label, width)
    for chunk in wrap(value, width):
        rows.append(" " * (width - columns(chunk)) + chunk)
    return rows


def native_qr(data: bytes, size: int) -> bytes:
    """GS ( k: select model 2, module size, error correction M, store the data, print it."""
    def fn(function: int, params: bytes) -> bytes:
        body = bytes([0x31, function]) + params  # cn = 49: QR code
        return b"\x1d(k" + len(body).to_bytes(2, "little") + body

    return (fn(0x41, b"\x32\x00") + fn(0x43, bytes([size])) + fn(0x45, b"\x31")
            + fn(0x50, b"\x30" + data) + fn(0x51, b"\x30"))


def raster_qr(data: bytes, size: int, max_width_dots: int) -> bytes:
    """The QR code as a GS v 0 raster image, for printers without native QR.

    segno would make a Micro QR for short data, which neither zbar nor OpenCV reads (and most
    phones do not either): micro=False.
    """
    qr = segno.make(data, error="m", micro=False)
    modules = qr.symbol_size(scale=1, border=4)[0]
    scale = max(1, min(size, max_width_dots // modules))
    rows = [[bool(bit) for bit in row] for row in qr.matrix_iter(scale=scale, border=4)]
    return raster(rows)


def raster(rows: list[list[bool]], feed: bool = True) -> bytes:
    """GS v 0 m=0: rows packed 8 dots per byte, most significant bit leftmost, 1 = black;
    `feed` adds a line feed after it (a QR code's margin), none for a line of text."""
    height = len(rows)
    width = len(rows[0]) if rows else 0
    width_bytes = (width + 7) // 8
    out = bytearray(b"\x1dv0\x00" + width_bytes.to_bytes(2, "little")
                    + height.to_bytes(2, "little"))
    for row in rows:
        packed = bytearray(width_bytes)
        for x, black in enumerate(row):
            if black:
                packed[x // 8] |= 0x80 >> (x % 8)
        out += packed
    return bytes(out) + (LF if feed else b"")
