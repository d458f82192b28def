"""Drawing the characters a printer's charset cannot encode, as dots for a GS v 0 image.

A GBK printer has no code for 𠮷 or 䶮 (both in residents' names); GB18030 would encode them
as 4 bytes such a printer prints as junk. So a line holding one is drawn here, with the
cart's own CJK fonts, on the printer's character grid (12 x 24 dots per ASCII column, 24 x 24
per Chinese character), and sent as an image.

Fonts are tried in order for each character; a character no font has is drawn as a framed
box with a cross (never a silent "?") and reported, so the print job can say so. Pillow and
the font files are loaded on first use and kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

CELL_W, CELL_H = 12, 24  # font A: one ASCII column; a Chinese character takes two
# A code point no font maps (plane 16 private use): what "no glyph" looks like in each font.
_NOT_A_CHARACTER = "\U0010fffd"


@dataclass
class Drawn:
    """A line drawn as rows of dots (True = black), and the characters no font had."""

    rows: list[list[bool]]
    missing: list[str] = field(default_factory=list)


class Glyphs:
    """The cart's fonts, for drawing whole lines on the printer's grid."""

    def __init__(self, font_paths: Sequence[str]) -> None:
        self.font_paths = tuple(font_paths)
        self._lock = threading.Lock()
        self._fonts: list[str] | None = None
        self.problems: list[str] = []  # why a font could not be used

    def _loaded(self, size: int) -> list[tuple[Any, tuple[Any, bytes]]]:
        """(font, its "no glyph" bitmap) for every usable font, at `size` pixels."""
        with self._lock:
            if self._fonts is None:
                self._fonts = []
                try:
                    from PIL import ImageFont
                except ImportError:
                    self.problems.append("Pillow is not installed")
                    return []
                for path in self.font_paths:
                    try:
                        ImageFont.truetype(path, CELL_H)
                    except OSError as exc:
                        self.problems.append(f"{path}: {exc}")
                        continue
                    self._fonts.append(path)
            paths = list(self._fonts)
        return [_font(path, size) for path in paths]

    @property
    def usable(self) -> bool:
        return bool(self._loaded(CELL_H))

    def draw_line(self, text: str, width_dots: int, align: str = "left",
                  scale: int = 1) -> Drawn:
        """`text` on one row of cells `scale` times the normal size, placed in `width_dots`
        as the printer would place text: left, centred or right."""
        cell_h = CELL_H * scale
        fonts = self._loaded(cell_h)
        cells = [(ch, (CELL_W if ch.isascii() else 2 * CELL_W) * scale) for ch in text]
        used = sum(w for _, w in cells)
        x = {"center": (width_dots - used) // 2, "right": width_dots - used}.get(align, 0)
        x = max(0, x)
        rows = [[False] * width_dots for _ in range(cell_h)]
        missing: list[str] = []
        for ch, cell_w in cells:
            if not ch.isspace():
                found = _glyph(fonts, ch)
                if found is None:
                    missing.append(ch)
                    _box(rows, x, cell_w, cell_h, width_dots)
                else:
                    _paste(rows, found, ch, x, cell_w, cell_h, width_dots)
            x += cell_w
        return Drawn(rows, missing)


@lru_cache(maxsize=16)
def _font(path: str, size: int) -> tuple[Any, tuple[Any, bytes]]:
    """The font at `size` pixels, and what its "no glyph" bitmap looks like."""
    from PIL import ImageFont

    font = ImageFont.truetype(path, size)
    return font, _signature(font, _NOT_A_CHARACTER)


def _signature(font: Any, ch: str) -> tuple[Any, bytes]:
    mask = font.getmask(ch)
    return mask.size, bytes(mask)


def _glyph(fonts: list[tuple[Any, tuple[Any, bytes]]], ch: str) -> Any:
    """The first font that has `ch` (its bitmap is not that font's "no glyph" box)."""
    for font, nothing in fonts:
        if _signature(font, ch) != nothing:
            return font
    return None


def _paste(rows: list[list[bool]], font: Any, ch: str, x0: int, cell_w: int, cell_h: int,
           width: int) -> None:
    """Draw `ch` in its cell: centred on its advance width, on a baseline shared by the
    whole line (so Latin letters and ideographs sit as they do in printed text)."""
    mask, (dx, dy) = font.getmask2(ch, mode="1")
    w, h = mask.size
    ascent, descent = font.getmetrics()
    left = x0 + (cell_w - round(font.getlength(ch))) // 2 + dx
    top = (cell_h - (ascent + descent)) // 2 + dy
    data = bytes(mask)
    for y in range(h):
        if not 0 <= top + y < cell_h:
            continue
        row = rows[top + y]
        for x in range(w):
            if data[y * w + x] and x0 <= left + x < min(width, x0 + cell_w):
                row[left + x] = True


def _box(rows: list[list[bool]], x0: int, cell_w: int, cell_h: int, width: int) -> None:
    """A framed box with a cross: unmistakably "a character is missing here"."""
    inset = max(1, cell_h // 12)
    left, right = x0 + inset, x0 + cell_w - 1 - inset
    top, bottom = inset, cell_h - 1 - inset
    for y in range(top, bottom + 1):
        for x in range(left, right + 1):
            if not 0 <= x < width:
                continue
            edge = y in (top, bottom) or x in (left, right)
            # The two diagonals, on the box's own scale.
            u = (x - left) / max(1, right - left)
            v = (y - top) / max(1, bottom - top)
            if edge or abs(u - v) < 0.06 or abs(u + v - 1) < 0.06:
                rows[y][x] = True
