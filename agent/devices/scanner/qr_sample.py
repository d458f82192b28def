"""A QR symbol's module matrix sampled from a photo, where a decoder already found it.

The decoder gives the symbol's four corners, its version, error-correction level and mask; the
image inside the corners is warped onto a grid of `size` x `size` modules, thresholded, and
each module read at its centre. The finder patterns must come out right, or the sample is
refused (the caller then keeps the decoder's answer as it was). cv2 and numpy are the camera
extra.
"""

from __future__ import annotations

from typing import Any

from agent.devices.scanner.qr_segments import Matrix, size

PX = 8  # pixels per module in the warped image
_FINDER = [
    [True] * 7,
    [True, False, False, False, False, False, True],
    [True, False, True, True, True, False, True],
    [True, False, True, True, True, False, True],
    [True, False, True, True, True, False, True],
    [True, False, False, False, False, False, True],
    [True] * 7,
]


def sample(gray: Any, corners: list[tuple[float, float]], version: int) -> Matrix | None:
    """Modules of the symbol whose outer corners (top-left, top-right, bottom-right,
    bottom-left, in image pixels) are given; None when the finder patterns do not match."""
    import cv2
    import numpy as np

    n = size(version)
    side = n * PX
    src = np.array(corners, dtype=np.float32)
    dst = np.array([[0, 0], [side, 0], [side, side], [0, side]], dtype=np.float32)
    try:
        warp = cv2.getPerspectiveTransform(src, dst)
        img = cv2.warpPerspective(gray, warp, (side, side), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
        _, binary = cv2.threshold(img, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    except cv2.error:
        return None  # degenerate corners: nothing to sample
    # The mean of the module's middle: a little blur or misregistration does not flip it.
    cells = binary.reshape(n, PX, n, PX)[:, PX // 4: PX - PX // 4, :, PX // 4: PX - PX // 4]
    dark = cells.mean(axis=(1, 3)) < 128
    matrix = [[bool(v) for v in row] for row in dark]
    return matrix if _finders_ok(matrix) else None


def _finders_ok(matrix: Matrix, allowed_errors: int = 6) -> bool:
    n = len(matrix)
    errors = 0
    for r0, c0 in ((0, 0), (0, n - 7), (n - 7, 0)):
        for r in range(7):
            for c in range(7):
                errors += matrix[r0 + r][c0 + c] != _FINDER[r][c]
    return errors <= allowed_errors
