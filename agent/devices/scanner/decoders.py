"""QR decoding of camera frames, from the symbol's bytes rather than a decoder's guessed text.

Decoders guess a charset when a QR code carries no ECI: zbar's text mode reads many short
UTF-8 Chinese strings as Japanese or Big5 without any error, zxing-cpp reads GBK as Latin-1.
A wrong text is worse than none (a parcel label read wrongly opens nothing, or the wrong
thing), so the rule here is: the bytes are UTF-8, or the symbol declares its charset with an
ECI, or the QR mode itself fixes it (Kanji mode is Shift JIS, Hanzi mode GB2312: read from
the symbol's modules, qr_modes.py), or the code is reported as undecodable.

A thorough read (`thorough=True`, the default) tries harder when the first pass read nothing:
an image no wider than a camera frame is read again at twice the size (small codes need more
than one pixel per module for the binarizer), and a symbol that was found but failed its
error correction is given to OpenCV's reader for curved surfaces, whose text is taken only
when it is plain ASCII (its charset handling is a guess). The camera reads most frames quickly
and only some thoroughly (camera.py).

cv2, zxingcpp and pyzbar are the optional `camera` extra: imported on first use only.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any

from agent.devices.scanner.codes import ECI_CODECS, DecodedCode

if TYPE_CHECKING:
    import numpy as np

DECODERS = ("zxing", "pyzbar")
# Measured by bench/bench_decoders.py on the 179 ZXing black-box photos: see the README's
# figures. Neither reader here misreads a code silently (the libraries' own text modes do).
DEFAULT_DECODER = "zxing"
THOROUGH_MAX_WIDTH = 640  # images up to this wide get the 2x second pass


class DecoderUnavailable(RuntimeError):
    """The decoder's library (the `camera` extra) is not installed."""


def decode_image(img: np.ndarray, decoder: str = DEFAULT_DECODER,
                 thorough: bool = True) -> list[DecodedCode]:
    """QR codes in a grayscale or BGR image, each with its bytes and its text or an error."""
    if decoder == "zxing":
        return _decode_zxing(_to_gray(img), thorough)
    if decoder == "pyzbar":
        return _decode_pyzbar(img)
    raise ValueError(f"unknown QR decoder {decoder!r}; choose one of {', '.join(DECODERS)}")


def text_from_segments(segments: list[tuple[int | None, bytes]]) -> DecodedCode:
    """Text of a symbol given as (ECI or None, bytes) segments, or an undecodable result.

    Bytes before any ECI must be UTF-8 (ASCII included); after an ECI, its charset rules.
    """
    raw = b"".join(data for _, data in segments)
    ecis = [eci for eci, _ in segments if eci is not None]
    parts: list[str] = []
    charsets: list[str] = []
    for eci, data in segments:
        codec = "utf-8" if eci is None else ECI_CODECS.get(eci)
        if codec is None:
            what = "binary" if eci == 899 else f"unsupported ECI {eci}"
            return DecodedCode(raw, None, f"undecodable: {what}", None, eci)
        try:
            parts.append(data.decode(codec))
        except UnicodeDecodeError:
            why = "not UTF-8 and no ECI" if eci is None else f"not valid {codec} (ECI {eci})"
            return DecodedCode(raw, None, f"undecodable: {why}", None, ecis[0] if ecis else None)
        if data:
            charsets.append(codec)
    charset = "+".join(dict.fromkeys(charsets)) or "utf-8"
    return DecodedCode(raw, "".join(parts), None, charset, ecis[0] if ecis else None)


def split_eci(data: bytes) -> list[tuple[int | None, bytes]]:
    """Split ECI-protocol bytes (after the symbology identifier) into (ECI, bytes) segments.

    In the ECI protocol `\\nnnnnn` switches the charset and a literal backslash is doubled.
    """
    segments: list[tuple[int | None, bytes]] = []
    eci: int | None = None
    current = bytearray()
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == 0x5C and data[i + 1 : i + 2] == b"\\":
            current.append(0x5C)
            i += 2
        elif byte == 0x5C and len(data) >= i + 7 and data[i + 1 : i + 7].isdigit():
            if current or eci is not None:
                segments.append((eci, bytes(current)))
            current = bytearray()
            eci = int(data[i + 1 : i + 7])
            i += 7
        else:
            current.append(byte)
            i += 1
    segments.append((eci, bytes(current)))
    return segments


def _decode_zxing(gray: np.ndarray, thorough: bool) -> list[DecodedCode]:
    try:
        import zxingcpp
    except ImportError as exc:
        raise DecoderUnavailable("zxing-cpp is not installed (the camera extra)") from exc
    found = _zxing_read(zxingcpp, gray, zxingcpp.Binarizer.LocalAverage, thorough)
    codes = [_zxing_code(gray, b) for b in found if b.valid]
    if codes or not thorough:
        return codes
    height, width = gray.shape[:2]
    if width <= THOROUGH_MAX_WIDTH:
        import cv2

        bigger = cv2.resize(gray, (width * 2, height * 2), interpolation=cv2.INTER_LINEAR)
        for binarizer in (zxingcpp.Binarizer.LocalAverage, zxingcpp.Binarizer.GlobalHistogram):
            again = [b for b in _zxing_read(zxingcpp, bigger, binarizer, False) if b.valid]
            if again:
                return [_zxing_code(bigger, b) for b in again]
    if any(not b.valid for b in found):  # a symbol is there but failed: maybe a curved one
        return _opencv_curved(gray)
    return []


def _zxing_read(zxingcpp: Any, gray: Any, binarizer: Any, with_errors: bool) -> Any:
    # HexECI gives the symbology identifier and the bytes with the ECI switches kept, in one
    # read: `.bytes` alone drops the ECIs, `.text` is transcoded with a guessed charset.
    return zxingcpp.read_barcodes(
        gray, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode),
        text_mode=zxingcpp.TextMode.HexECI, binarizer=binarizer, return_errors=with_errors,
    )


def _zxing_code(gray: Any, barcode: Any) -> DecodedCode:
    with_eci = bytes.fromhex(barcode.text)
    ident, body = with_eci[:3], with_eci[3:]
    # ]Q2, ]Q4 and ]Q6 are the modifiers that say the data follows the ECI protocol.
    if ident[:2] == b"]Q" and ident[2:3] in (b"2", b"4", b"6"):
        code = text_from_segments(split_eci(body))
    else:
        code = text_from_segments([(None, barcode.bytes)])
    if code.text is None:
        # Maybe Kanji or Hanzi mode, whose charset the standard fixes: read the modes.
        from agent.devices.scanner.qr_modes import reread, text_from_modes

        segments = reread(gray, barcode)
        if segments is not None:
            return text_from_modes(segments, code.raw)
    return code


def _opencv_curved(gray: Any) -> list[DecodedCode]:
    import cv2

    # Its reader logs each QR mode it does not know; errors still raise.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_FATAL)
    detector = cv2.QRCodeDetector()
    try:
        found, corners = detector.detect(gray)
        text = detector.decodeCurved(gray, corners)[0] if found else ""
    except cv2.error:
        return []
    if not text or not text.isascii():
        return []  # OpenCV's text of non-ASCII bytes is a charset guess: not taken
    return [DecodedCode(text.encode("ascii"), text, None, "ascii")]


_ZBAR_CFG_BINARY = 4  # zbar >= 0.23: hand over the symbol's bytes without charset conversion


def _decode_pyzbar(img: np.ndarray) -> list[DecodedCode]:
    try:
        import numpy as np
        from pyzbar import wrapper as zbar
    except ImportError as exc:
        raise DecoderUnavailable("pyzbar is not installed (the camera extra)") from exc
    gray = _to_gray(img)
    height, width = gray.shape
    pixels = np.ascontiguousarray(gray, dtype=np.uint8)  # zbar reads it in place: keep it alive
    scanner = zbar.zbar_image_scanner_create()
    image = zbar.zbar_image_create()
    try:
        qr = zbar.ZBarSymbol.QRCODE
        enable, binary = zbar.ZBarConfig.CFG_ENABLE, _ZBAR_CFG_BINARY
        # pyzbar's decode() enables every symbology (3.3x slower) and converts the bytes to
        # text with a guessed charset; configure the scanner ourselves instead.
        zbar.zbar_image_scanner_set_config(scanner, zbar.ZBarSymbol.NONE, enable, 0)
        zbar.zbar_image_scanner_set_config(scanner, qr, enable, 1)
        if zbar.zbar_image_scanner_set_config(scanner, qr, binary, 1) != 0:
            raise DecoderUnavailable("libzbar too old: no binary mode (needs zbar >= 0.23)")
        zbar.zbar_image_set_format(image, _fourcc("Y800"))
        zbar.zbar_image_set_size(image, width, height)
        zbar.zbar_image_set_data(image, pixels.ctypes.data_as(ctypes.c_void_p), pixels.size, None)
        if zbar.zbar_scan_image(scanner, image) < 0:
            raise ValueError("zbar rejected the image")
        codes = []
        symbol = zbar.zbar_image_first_symbol(image)
        while symbol:
            raw = ctypes.string_at(
                zbar.zbar_symbol_get_data(symbol), zbar.zbar_symbol_get_data_length(symbol)
            )
            # zbar's binary mode drops ECI designators, so only UTF-8 can be trusted.
            codes.append(text_from_segments([(None, raw)]))
            symbol = zbar.zbar_symbol_next(symbol)
        return codes
    finally:
        zbar.zbar_image_destroy(image)
        zbar.zbar_image_scanner_destroy(scanner)


def _fourcc(code: str) -> int:
    a, b, c, d = (ord(ch) for ch in code)
    return a | (b << 8) | (c << 16) | (d << 24)


def _to_gray(img: Any) -> Any:
    if img.ndim == 2:
        return img
    import cv2

    code = cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(img, code)
