"""Accuracy and speed of the camera QR decoders on ZXing's black-box photos.

For each decoder, in one run: codes read correctly, read *wrongly without an error* (the
failure that matters: a wrong text looks like a valid scan), found but reported undecodable
(honest: no text rather than a guess), missed, and milliseconds per image. Two baselines show
what the libraries' own text output does: `pyzbar-text` (pyzbar.decode, guessed charset) and
`zxing-text` (zxing-cpp's guessed text).

    python bench/bench_decoders.py [--quick]

Two sets: the 13 photos shipped in tests/data/qr (always measured), and the full 179 from
$QR_BLACKBOX_DIR, default ../shared/data/qr-blackbox beside the repository (measured when
there; a visible "skipped" row when not).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.devices.scanner.decoders import DECODERS, DecodedCode, decode_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")
REPO = Path(__file__).resolve().parents[1]
SUBSET_DIR = REPO / "tests/data/qr"
# Where the reference text disagrees with the symbol. qrcode-2/13 is another photo of the
# symbol of qrcode-2/12 ("...aerial photography of...", 72 bytes: the byte-mode count field
# says 72), whose ZXing reference text lacks the final "y". Read as "photography" by zxing-cpp
# and, independently, by qr_segments.py's own sampling and Reed-Solomon correction with 7, 4,
# 2 and 4 of 12 correctable errors in its four blocks. Counted as correct against the text
# below; the JSON keeps the count against the reference as it is, too.
ERRATA: dict[str, str] = {
    "qrcode-2/13.png": "The 2005 USGS aerial photography of the Washington Monument is censored.",
}


def dataset_dir() -> Path:
    env = os.environ.get("QR_BLACKBOX_DIR")
    if env:
        return Path(env)
    return REPO.parent / "shared/data/qr-blackbox"


def load_cases(root: Path, quick: bool = False) -> list[tuple[Path, bytes | str]]:
    """(image, expected) pairs: expected is the text of N.txt, or the bytes of N.bin."""
    cases: list[tuple[Path, bytes | str]] = []
    for image in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        txt, binary = image.with_suffix(".txt"), image.with_suffix(".bin")
        if binary.exists():
            cases.append((image, binary.read_bytes()))
        elif txt.exists():
            cases.append((image, txt.read_bytes().decode("utf-8")))
    return cases[::6] if quick else cases


def load_image(path: Path) -> Any:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:  # GIF, on OpenCV builds without a GIF reader
        import numpy as np
        from PIL import Image

        with Image.open(path) as pil:
            img = np.asarray(pil.convert("L"))
    return img


def _pyzbar_text(img: Any) -> list[DecodedCode]:
    from pyzbar.pyzbar import ZBarSymbol, decode

    return [DecodedCode(d.data, d.data.decode("utf-8", "replace")) for d in
            decode(img, symbols=[ZBarSymbol.QRCODE])]


def _zxing_text(img: Any) -> list[DecodedCode]:
    import zxingcpp

    only_qr = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    return [DecodedCode(b.bytes, b.text) for b in zxingcpp.read_barcodes(img, formats=only_qr)]


def _verdict(codes: list[DecodedCode], expected: bytes | str) -> str:
    if not codes:
        return "missed"
    for code in codes:
        if isinstance(expected, bytes):
            if code.raw == expected and (code.text is None or code.text.encode() == expected):
                return "correct"
        elif code.text == expected:
            return "correct"
    if any(code.text is not None for code in codes):
        return "wrong"
    return "undecodable"


Case = tuple[Any, bytes | str, str]


def measure(name: str, decode: Callable[[Any], list[DecodedCode]], cases: list[Case],
            label: str = "") -> dict[str, Any]:
    counts = {"correct": 0, "wrong": 0, "undecodable": 0, "missed": 0}
    wrong: list[str] = []
    against_reference = 0
    elapsed = 0.0
    for img, expected, where in cases:
        started = time.perf_counter()
        codes = decode(img)
        elapsed += time.perf_counter() - started
        verdict = _verdict(codes, ERRATA.get(where, expected))
        counts[verdict] += 1
        against_reference += _verdict(codes, expected) == "correct"
        if verdict == "wrong":
            wrong.append(where)
    return {"decoder": name, "set": label, "images": len(cases), **counts,
            "correct_vs_reference_text": against_reference,
            "ms_per_image": round(1000 * elapsed / max(1, len(cases)), 2),
            "wrong_images": wrong}


def _decode_with(name: str, img: Any) -> list[DecodedCode]:
    return decode_image(img, name)


def _decoders() -> dict[str, Callable[[Any], list[DecodedCode]]]:
    decoders: dict[str, Callable[[Any], list[DecodedCode]]] = {
        name: functools.partial(_decode_with, name) for name in DECODERS
    }
    decoders["pyzbar-text"] = _pyzbar_text
    decoders["zxing-text"] = _zxing_text
    return decoders


def _measure_set(root: Path, label: str, quick: bool) -> list[dict[str, Any]]:
    cases = [(load_image(path), expected, path.relative_to(root).as_posix())
             for path, expected in load_cases(root, quick)]
    decoders = _decoders()
    for decode in decoders.values():  # warm up: first calls load libraries
        decode(cases[0][0])
    return [measure(name, decode, cases, label) for name, decode in decoders.items()]


def run(quick: bool = False) -> list[dict[str, Any]]:
    rows = _measure_set(SUBSET_DIR, "shipped subset", quick=False)
    root = dataset_dir()
    if root.is_dir():
        rows += _measure_set(root, "full set", quick)
    else:
        rows.append({"name": "camera decoders, full black-box set", "value": "skipped",
                     "unit": "", "baseline": f"not found at {root}: set QR_BLACKBOX_DIR"})
        print(f"bench_decoders: full QR set not found at {root} (set QR_BLACKBOX_DIR); "
              "measured the shipped subset only", file=sys.stderr)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row, ensure_ascii=False))
