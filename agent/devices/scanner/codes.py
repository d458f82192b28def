"""What a QR decoder finds in an image (a DecodedCode), and the ECI charsets it reads them by:
shared by the decoders (decoders.py) and the reading of QR modes (qr_modes.py)."""

from __future__ import annotations

from dataclasses import dataclass

# ECI assignment number -> Python codec (AIM ECI specification). Only charsets the symbol
# names explicitly; 899 is "binary" and has no text.
ECI_CODECS: dict[int, str] = {
    0: "cp437", 1: "latin-1", 2: "cp437", 3: "latin-1", 4: "iso8859-2", 5: "iso8859-3",
    6: "iso8859-4", 7: "iso8859-5", 8: "iso8859-6", 9: "iso8859-7", 10: "iso8859-8",
    11: "iso8859-9", 12: "iso8859-10", 13: "iso8859-11", 15: "iso8859-13", 16: "iso8859-14",
    17: "iso8859-15", 18: "iso8859-16", 20: "shift_jis", 21: "cp1250", 22: "cp1251",
    23: "cp1252", 24: "cp1256", 25: "utf-16-be", 26: "utf-8", 27: "ascii", 28: "big5",
    29: "gb18030", 30: "euc-kr", 32: "gb18030", 170: "ascii",
}


@dataclass(frozen=True)
class DecodedCode:
    """One QR symbol found in an image: its bytes, and its text when that is certain."""

    raw: bytes
    text: str | None
    error: str | None = None  # why text is None, e.g. "undecodable: not UTF-8 and no ECI"
    charset: str | None = None
    eci: int | None = None
