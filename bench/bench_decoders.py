"""Accuracy and speed of the camera QR decoders on ZXing's black-box photos.

For each decoder, in one run: codes read correctly, read *wrongly without an error* (the
failure that matters: a wrong text looks like a valid scan), found but reported undecodable
(honest: no text rather than a guess), missed, and milliseconds per image. Two baselines show
what the libraries' own text output does: `pyzbar-text` (pyzbar.decode, guessed charset) and
`zxing-text` (zxing-cpp's guessed text).

    python bench/bench_decoders.py [--quick]

The photos are found in ../shared/data/qr-blackbox from the repository root, or $QR_BLACKBOX_DIR.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.devices.scanner.decoders import DECODERS, DecodedCode, decode_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")


def dataset_dir() -> Path:
    env = os.environ.get("QR_BLACKBOX_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared/data/qr-blackbox"


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

    return [DecodedCode(b.bytes, b.text) for b in
            zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)]


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


def measure(name: str, decode: Callable[[Any], list[DecodedCode]],
            cases: list[tuple[Any, bytes | str, str]]) -> dict[str, Any]:
    counts = {"correct": 0, "wrong": 0, "undecodable": 0, "missed": 0}
    wrong: list[str] = []
    elapsed = 0.0
    for img, expected, label in cases:
        started = time.perf_counter()
        codes = decode(img)
        elapsed += time.perf_counter() - started
        verdict = _verdict(codes, expected)
        counts[verdict] += 1
        if verdict == "wrong":
            wrong.append(label)
    return {"decoder": name, "images": len(cases), **counts,
            "ms_per_image": round(1000 * elapsed / max(1, len(cases)), 2),
            "wrong_images": wrong}


def run(quick: bool = False) -> list[dict[str, Any]]:
    root = dataset_dir()
    if not root.is_dir():
        raise FileNotFoundError(f"QR black-box set not found at {root} (set QR_BLACKBOX_DIR)")
    cases = [(load_image(path), expected, str(path.relative_to(root)))
             for path, expected in load_cases(root, quick)]
    decoders: dict[str, Callable[[Any], list[DecodedCode]]] = {
        name: (lambda img, n=name: decode_image(img, n)) for name in DECODERS
    }
    decoders["pyzbar-text"] = _pyzbar_text
    decoders["zxing-text"] = _zxing_text
    for decode in decoders.values():  # warm up: first calls load libraries
        decode(cases[0][0])
    return [measure(name, decode, cases) for name, decode in decoders.items()]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row, ensure_ascii=False))
