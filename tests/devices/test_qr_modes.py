"""QR segments read from the symbol's modules: Kanji and Hanzi modes, whose charset the
standard fixes, are read; byte mode stays UTF-8-or-ECI. Symbols are made by segno (an
independent encoder), including the mixed Kanji + alphanumeric "北蔡-6482", and photos come
from the shipped subset of ZXing's black-box set."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.devices.scanner import qr_segments as Q

SUBSET = Path(__file__).resolve().parents[1] / "data/qr"
cv2 = pytest.importorskip("cv2", reason="opencv (camera extra) not installed")


def _image(matrix: Any, scale: int = 4, border: int = 4) -> Any:
    import numpy as np

    n = len(matrix)
    img = np.full(((n + 2 * border) * scale,) * 2, 255, dtype=np.uint8)
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                y, x = (r + border) * scale, (c + border) * scale
                img[y:y + scale, x:x + scale] = 0
    return img


def _symbol(*parts: tuple[str | bytes, str]) -> Any:
    """A symbol with exactly these (data, mode) segments: segno takes a list of them."""
    import segno
    from segno import consts

    modes = {"kanji": consts.MODE_KANJI, "alphanumeric": consts.MODE_ALPHANUMERIC,
             "byte": consts.MODE_BYTE}
    return segno.make([(data, modes[mode]) for data, mode in parts], micro=False, error="m")


def test_mixed_kanji_and_alphanumeric_is_read() -> None:
    from agent.devices.scanner.decoders import decode_image

    code = _symbol(("北蔡", "kanji"), ("-6482", "alphanumeric"))
    segments = Q.segments_from_matrix([[bool(v) for v in row] for row in code.matrix],
                                      code.version, code.error, code.mask)
    assert [(s.mode, s.data) for s in segments] == [
        ("kanji", "北蔡".encode("shift_jis")), ("alphanumeric", b"-6482")]
    (decoded,) = decode_image(_image(code.matrix), "zxing")
    assert decoded.text == "北蔡-6482"
    assert decoded.charset == "shift_jis (kanji mode)+ascii"


def test_hanzi_mode_is_gb2312() -> None:
    import segno

    from agent.devices.scanner.decoders import decode_image

    qr = segno.make("阿里", mode="hanzi", micro=False)
    (decoded,) = decode_image(_image(list(qr.matrix)), "zxing")
    assert (decoded.text, decoded.charset) == ("阿里", "gb2312 (hanzi mode)")


def test_shift_jis_in_byte_mode_stays_refused() -> None:
    import segno

    from agent.devices.scanner.decoders import decode_image

    qr = segno.make("北蔡-6482", encoding="shift_jis", mode="byte", eci=False, micro=False)
    (decoded,) = decode_image(_image(list(qr.matrix)), "zxing")
    assert decoded.text is None
    assert "not UTF-8 and no ECI" in (decoded.error or "")
    assert decoded.raw == "北蔡-6482".encode("shift_jis")


def test_kanji_then_byte_mode_without_utf8_is_refused_whole() -> None:
    from agent.devices.scanner.decoders import decode_image

    code = _symbol(("北蔡", "kanji"), ("ｶﾀｶﾅ".encode("shift_jis"), "byte"))
    (decoded,) = decode_image(_image(code.matrix), "zxing")
    assert decoded.text is None  # one uncertain segment and the whole code is refused


@pytest.mark.parametrize("errors", [0, 1, 5, 9])
def test_reed_solomon_corrects_up_to_capacity(errors: int) -> None:
    import segno

    text = "sf1234567890-pickup-bc07"
    qr = segno.make(text, error="h", micro=False, version=4, mode="byte")
    matrix = [[bool(v) for v in row] for row in qr.matrix]
    codewords = bytearray(Q.read_codewords(matrix, 4, qr.mask))
    # Version 4-H: four blocks of 25 codewords, 16 of them error correction (t = 8), the first
    # block's codewords at 0, 4, 8, ... in the interleaved sequence.
    rng = random.Random(errors)
    for index in rng.sample(range(0, 100, 4), errors):
        codewords[index] ^= rng.randrange(1, 256)
    if errors <= 8:
        data = Q.data_codewords(bytes(codewords), 4, "H")
        assert Q.parse_segments(data, 4) == [Q.Segment("byte", None, text.encode())]
    else:  # 9 > t: refused (beyond capacity a decoder may also land on another code word,
        # which is why a re-read is trusted only when it gives back the decoder's bytes)
        with pytest.raises(Q.QrFormatError):
            Q.data_codewords(bytes(codewords), 4, "H")


@pytest.mark.parametrize(("name", "text", "charset"), [
    ("qrcode-2/31.png", "今度のバージョンでは文章の暗号化ができます。", "shift_jis (kanji mode)"),
    ("qrcode-2/33.png", "\x01\x10AD:SUB:阿;;", "utf-8+gb2312 (hanzi mode)"),
])
def test_blackbox_photos_in_kanji_and_hanzi_mode(name: str, text: str, charset: str) -> None:
    from agent.devices.scanner.decoders import decode_image

    image = cv2.imread(str(SUBSET / name), cv2.IMREAD_GRAYSCALE)
    (decoded,) = decode_image(image, "zxing")
    assert (decoded.text, decoded.charset) == (text, charset)
    assert (SUBSET / name).with_suffix(".txt").read_text(encoding="utf-8") == text


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 12), st.sampled_from("LMQH"), st.integers(0, 7), st.integers(0, 2**32))
def test_any_module_matrix_reads_or_is_refused(version: int, level: str, mask: int,
                                               seed: int) -> None:
    rng = random.Random(seed)
    n = Q.size(version)
    matrix = [[rng.random() < 0.5 for _ in range(n)] for _ in range(n)]
    try:
        segments = Q.segments_from_matrix(matrix, version, level, mask)
    except Q.QrFormatError:
        return
    assert all(s.mode in ("numeric", "alphanumeric", "byte", "kanji", "hanzi") for s in segments)


def test_degenerate_corners_sample_nothing() -> None:
    from agent.devices.scanner.qr_sample import sample

    image = cv2.imread(str(SUBSET / "qrcode-2/31.png"), cv2.IMREAD_GRAYSCALE)
    assert sample(image, [(10.0, 10.0)] * 4, 3) is None
