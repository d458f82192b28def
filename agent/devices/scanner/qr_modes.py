"""Text of a QR code from its segments' modes, where the mode itself fixes the charset.

The rule of decoders.py stands (bytes are UTF-8, or an ECI names their charset, or the code is
undecodable); this adds the two cases where the QR standard names the charset by the mode:
Kanji-mode characters are Shift JIS (ISO/IEC 18004 7.4.6, e.g. a code reading 北蔡-6482 as a
Kanji segment and an alphanumeric one), Hanzi-mode characters GB2312 (GB/T 18284). Numeric and
alphanumeric segments are ASCII. Byte-mode segments still need UTF-8 or an ECI.
"""

from __future__ import annotations

from typing import Any

from agent.devices.scanner.codes import ECI_CODECS, DecodedCode
from agent.devices.scanner.qr_segments import QrFormatError, Segment, segments_from_matrix


def text_from_modes(segments: list[Segment], raw: bytes) -> DecodedCode:
    """A DecodedCode for these segments: text when every segment's charset is certain."""
    parts: list[str] = []
    charsets: list[str] = []
    first_eci = next((s.eci for s in segments if s.eci is not None), None)
    for seg in segments:
        codecs: tuple[str, ...]
        if seg.mode in ("numeric", "alphanumeric"):
            codecs = ("ascii",)
        elif seg.mode == "kanji":
            # cp932 also knows the NEC row-13 symbols (①, ㈱) that Japanese encoders emit.
            codecs = ("shift_jis", "cp932")
        elif seg.mode == "hanzi":
            codecs = ("gb2312",)
        elif seg.eci is None:
            codecs = ("utf-8",)
        elif seg.eci in ECI_CODECS:
            codecs = (ECI_CODECS[seg.eci],)
        else:
            what = "binary" if seg.eci == 899 else f"unsupported ECI {seg.eci}"
            return DecodedCode(raw, None, f"undecodable: {what}", None, seg.eci)
        text = _decode(seg.data, codecs)
        if text is None:
            why = ("not UTF-8 and no ECI" if seg.mode == "byte" and seg.eci is None
                   else f"{seg.mode} segment not valid {codecs[0]}")
            return DecodedCode(raw, None, f"undecodable: {why}", None, first_eci)
        parts.append(text)
        if seg.data:
            charsets.append(f"{codecs[0]} ({seg.mode} mode)" if seg.mode in ("kanji", "hanzi")
                            else codecs[0])
    charset = "+".join(dict.fromkeys(charsets)) or "utf-8"
    return DecodedCode(raw, "".join(parts), None, charset, first_eci)


def _decode(data: bytes, codecs: tuple[str, ...]) -> str | None:
    for codec in codecs:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return None


def reread(gray: Any, barcode: Any) -> list[Segment] | None:
    """The segments of a code zxing-cpp found in `gray`, read again from the image's modules,
    or None when that fails or does not give back exactly zxing's bytes."""
    from agent.devices.scanner.qr_sample import sample

    extra = barcode.extra if isinstance(barcode.extra, dict) else {}
    version, level, mask = str(extra.get("Version", "")), extra.get("ECLevel"), extra.get(
        "DataMask")
    if not version.isdigit() or level not in ("L", "M", "Q", "H") or not isinstance(mask, int):
        return None  # a Micro QR or rMQR symbol, or no symbol information
    p = barcode.position
    corners = [(p.top_left.x, p.top_left.y), (p.top_right.x, p.top_right.y),
               (p.bottom_right.x, p.bottom_right.y), (p.bottom_left.x, p.bottom_left.y)]
    matrix = sample(gray, corners, int(version))
    if matrix is None:
        return None
    try:
        segments = segments_from_matrix(matrix, int(version), str(level), mask)
    except QrFormatError:
        return None
    if b"".join(s.data for s in segments) != bytes(barcode.bytes):
        return None  # a misread module somewhere: trust nothing of it
    return segments
