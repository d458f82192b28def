"""The segments of a QR symbol (mode, ECI, bytes), read from its module matrix. No I/O.

Decoders hand over a code's bytes but not the modes they came in, and the mode matters for the
charset: bytes of a Kanji-mode segment are Shift JIS by the QR standard itself (ISO/IEC 18004
7.4.6), those of a Hanzi-mode segment GB2312 (GB/T 18284), while byte-mode bytes carry no
charset unless an ECI names one. So when a decoder's bytes are not UTF-8, the symbol is read
again here: modules -> unmasked codewords -> Reed-Solomon corrected blocks -> the bit stream's
segments. The caller trusts the result only if the segments give back exactly the bytes the
decoder found.

Tables (error-correction blocks, alignment pattern positions) are segno's transcription of
ISO/IEC 18004 Table 9 and Annex E.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from segno import consts

Matrix = list[list[bool]]  # [row][column], True = dark

LEVELS = {"L": consts.ERROR_LEVEL_L, "M": consts.ERROR_LEVEL_M, "Q": consts.ERROR_LEVEL_Q,
          "H": consts.ERROR_LEVEL_H}
# Mode indicators (ISO/IEC 18004 Table 2) and GB/T 18284's Hanzi mode.
NUMERIC, ALNUM, APPEND, BYTE, FNC1_1, ECI, KANJI, FNC1_2, HANZI = (
    1, 2, 3, 4, 5, 7, 8, 9, 13)
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


class QrFormatError(ValueError):
    """The bit stream or its blocks cannot be read."""


@dataclass(frozen=True)
class Segment:
    mode: str  # numeric | alphanumeric | byte | kanji | hanzi
    eci: int | None  # the ECI in force, None before any
    data: bytes  # numeric/alphanumeric as ASCII, kanji as Shift JIS, hanzi as GB2312


def size(version: int) -> int:
    return 17 + 4 * version


# -- where the data modules are -----------------------------------------------------------------


def function_modules(version: int) -> Matrix:
    """True where a module belongs to a finder, separator, timing, alignment, format or
    version pattern (or the dark module): everything that is not data."""
    n = size(version)
    fn = [[False] * n for _ in range(n)]

    def block(r0: int, c0: int, h: int, w: int) -> None:
        for r in range(max(0, r0), min(n, r0 + h)):
            for c in range(max(0, c0), min(n, c0 + w)):
                fn[r][c] = True

    block(0, 0, 9, 9)  # finder, separator and format info, top left
    block(0, n - 8, 9, 8)  # top right
    block(n - 8, 0, 8, 9)  # bottom left, with the dark module
    block(6, 0, 1, n)  # timing patterns
    block(0, 6, n, 1)
    if version >= 2:
        centres = consts.ALIGNMENT_POS[version - 2]
        last = centres[-1]
        for r in centres:
            for c in centres:
                if (r, c) in ((6, 6), (6, last), (last, 6)):
                    continue  # would overlap a finder
                block(r - 2, c - 2, 5, 5)
    if version >= 7:
        block(0, n - 11, 6, 3)
        block(n - 11, 0, 3, 6)
    return fn


_MASKS: tuple[Callable[[int, int], bool], ...] = (
    lambda i, j: (i + j) % 2 == 0,
    lambda i, j: i % 2 == 0,
    lambda i, j: j % 3 == 0,
    lambda i, j: (i + j) % 3 == 0,
    lambda i, j: (i // 2 + j // 3) % 2 == 0,
    lambda i, j: (i * j) % 2 + (i * j) % 3 == 0,
    lambda i, j: ((i * j) % 2 + (i * j) % 3) % 2 == 0,
    lambda i, j: ((i + j) % 2 + (i * j) % 3) % 2 == 0,
)


def read_codewords(matrix: Matrix, version: int, mask: int) -> bytes:
    """The codeword sequence, unmasked, in placement order (ISO/IEC 18004 7.7.3)."""
    n = size(version)
    if len(matrix) != n or any(len(row) != n for row in matrix):
        raise QrFormatError(f"a version {version} symbol is {n} x {n} modules")
    fn = function_modules(version)
    flip = _MASKS[mask]
    bits: list[bool] = []
    right = n - 1
    upwards = True
    while right > 0:
        if right == 6:
            right -= 1  # the vertical timing pattern takes a whole column
        rows = range(n - 1, -1, -1) if upwards else range(n)
        for i in rows:
            for j in (right, right - 1):
                if not fn[i][j]:
                    bits.append(matrix[i][j] != flip(i, j))
        upwards = not upwards
        right -= 2
    out = bytearray()
    for k in range(0, len(bits) - 7, 8):
        value = 0
        for bit in bits[k:k + 8]:
            value = value << 1 | bit
        out.append(value)
    return bytes(out)


# -- error correction ---------------------------------------------------------------------------

_EXP = [0] * 512
_LOG = [0] * 256
_x = 1
for _i in range(255):
    _EXP[_i] = _x
    _LOG[_x] = _i
    _x <<= 1
    if _x & 0x100:
        _x ^= 0x11D
for _i in range(255, 512):
    _EXP[_i] = _EXP[_i - 255]


def _mul(a: int, b: int) -> int:
    return 0 if a == 0 or b == 0 else _EXP[_LOG[a] + _LOG[b]]


def _poly_eval(poly: list[int], x: int) -> int:
    y = 0
    for coefficient in poly:  # highest degree first
        y = _mul(y, x) ^ coefficient
    return y


def rs_correct(block: bytes, nsym: int) -> bytes:
    """The block (data then `nsym` EC codewords) corrected, or QrFormatError when it has more
    errors than the code can correct. QR's generator has roots a^0 .. a^(nsym-1)."""
    msg = list(block)
    synd = [_poly_eval(msg, _EXP[i]) for i in range(nsym)]
    if not any(synd):
        return bytes(msg)
    # Berlekamp-Massey: the error locator, lowest degree first.
    err_loc, old_loc = [1], [1]
    for i in range(nsym):
        delta = synd[i]
        for j in range(1, len(err_loc)):
            delta ^= _mul(err_loc[j], synd[i - j]) if i - j >= 0 else 0
        old_loc = [0, *old_loc]
        if delta:
            if len(old_loc) > len(err_loc):
                new_loc = [_mul(c, delta) for c in old_loc]
                old_loc = [_mul(c, _EXP[255 - _LOG[delta]]) for c in err_loc]
                err_loc = new_loc
            err_loc = [a ^ _mul(delta, b) for a, b in
                       zip(err_loc + [0] * (len(old_loc) - len(err_loc)),
                           old_loc + [0] * (len(err_loc) - len(old_loc)), strict=True)]
    while err_loc and err_loc[-1] == 0:
        err_loc.pop()
    errors = len(err_loc) - 1
    if errors * 2 > nsym:
        raise QrFormatError("too many errors to correct")
    n = len(msg)
    # Chien search: position p (from the end) is in error when locator(a^-p) == 0.
    positions = [p for p in range(n)
                 if _poly_eval(err_loc[::-1], _EXP[(255 - p) % 255]) == 0]
    if len(positions) != errors:
        raise QrFormatError("error locator does not fit the block")
    # Forney: the error evaluator omega = synd * locator mod x^nsym.
    omega = [0] * nsym
    for i, s in enumerate(synd):
        for j, c in enumerate(err_loc):
            if i + j < nsym:
                omega[i + j] ^= _mul(s, c)
    for p in positions:
        x_inv = _EXP[(255 - p) % 255]
        num = 0
        for i, c in enumerate(omega):
            num ^= _mul(c, _EXP[(_LOG[x_inv] * i) % 255]) if c else 0
        den = 0
        for j in range(1, len(err_loc), 2):  # formal derivative: odd terms only
            den ^= _mul(err_loc[j], _EXP[(_LOG[x_inv] * (j - 1)) % 255])
        if den == 0:
            raise QrFormatError("error evaluator has no inverse")
        magnitude = _mul(num, _EXP[255 - _LOG[den]])
        # With generator roots from a^0, the error value carries one extra factor X.
        msg[n - 1 - p] ^= _mul(magnitude, _EXP[p % 255])
    if any(_poly_eval(msg, _EXP[i]) for i in range(nsym)):
        raise QrFormatError("correction did not give a code word")
    return bytes(msg)


def data_codewords(codewords: bytes, version: int, level: str) -> bytes:
    """De-interleave the blocks, correct each, and join their data codewords."""
    table: Any = consts.ECC  # {version: {level: (EC(blocks, total, data), ...)}}
    ecs = table[version][LEVELS[level]]
    blocks = [(ec.num_data, ec.num_total - ec.num_data) for ec in ecs
              for _ in range(ec.num_blocks)]
    total = sum(d + e for d, e in blocks)
    if len(codewords) < total:
        raise QrFormatError("fewer codewords than the version holds")
    data: list[list[int]] = [[] for _ in blocks]
    ec: list[list[int]] = [[] for _ in blocks]
    pos = 0
    for i in range(max(d for d, _ in blocks)):
        for k, (d, _) in enumerate(blocks):
            if i < d:
                data[k].append(codewords[pos])
                pos += 1
    for _ in range(blocks[0][1]):
        for k in range(len(blocks)):
            ec[k].append(codewords[pos])
            pos += 1
    out = bytearray()
    for k, (d, nsym) in enumerate(blocks):
        out += rs_correct(bytes(data[k] + ec[k]), nsym)[:d]
    return bytes(out)


# -- the bit stream -----------------------------------------------------------------------------


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def left(self) -> int:
        return len(self.data) * 8 - self.pos

    def read(self, count: int) -> int:
        if count > self.left():
            raise QrFormatError("bit stream ends inside a segment")
        value = 0
        for _ in range(count):
            byte = self.data[self.pos // 8]
            value = value << 1 | (byte >> (7 - self.pos % 8)) & 1
            self.pos += 1
        return value


def _count_bits(mode: int, version: int) -> int:
    group = 0 if version <= 9 else 1 if version <= 26 else 2
    return {NUMERIC: (10, 12, 14), ALNUM: (9, 11, 13), BYTE: (8, 16, 16),
            KANJI: (8, 10, 12), HANZI: (8, 10, 12)}[mode][group]


def parse_segments(data: bytes, version: int) -> list[Segment]:
    bits = _Bits(data)
    segments: list[Segment] = []
    eci: int | None = None
    while bits.left() >= 4:
        mode = bits.read(4)
        if mode == 0:
            break  # terminator
        if mode in (FNC1_1, FNC1_2):
            if mode == FNC1_2:
                bits.read(8)  # the application indicator
            continue
        if mode == APPEND:
            bits.read(16)
            continue
        if mode == ECI:
            first = bits.read(8)
            if first & 0x80 == 0:
                eci = first
            elif first & 0xC0 == 0x80:
                eci = (first & 0x3F) << 8 | bits.read(8)
            elif first & 0xE0 == 0xC0:
                eci = (first & 0x1F) << 16 | bits.read(16)
            else:
                raise QrFormatError("bad ECI designator")
            continue
        if mode == HANZI and bits.read(4) != 1:
            raise QrFormatError("Hanzi subset other than GB2312")
        if mode not in (NUMERIC, ALNUM, BYTE, KANJI, HANZI):
            raise QrFormatError(f"mode {mode} is not a QR mode")
        count = bits.read(_count_bits(mode, version))
        segments.append(_segment(bits, mode, count, eci))
    return segments


def _segment(bits: _Bits, mode: int, count: int, eci: int | None) -> Segment:
    out = bytearray()
    if mode == NUMERIC:
        while count >= 3:
            out += f"{_digits(bits.read(10), 1000):03d}".encode()
            count -= 3
        if count:
            out += f"{_digits(bits.read(4 if count == 1 else 7), 10 ** count):0{count}d}".encode()
        return Segment("numeric", eci, bytes(out))
    if mode == ALNUM:
        while count >= 2:
            pair = _digits(bits.read(11), 45 * 45)
            out += (_ALNUM[pair // 45] + _ALNUM[pair % 45]).encode()
            count -= 2
        if count:
            out += _ALNUM[_digits(bits.read(6), 45)].encode()
        return Segment("alphanumeric", eci, bytes(out))
    if mode == BYTE:
        return Segment("byte", eci, bytes(bits.read(8) for _ in range(count)))
    for _ in range(count):
        value = bits.read(13)
        if mode == KANJI:  # 7.4.6: back to the Shift JIS double byte
            code = (value // 0xC0) << 8 | value % 0xC0
            code += 0x8140 if code < 0x1F00 else 0xC140
        else:  # GB/T 18284: back to the GB2312 double byte
            code = (value // 0x60) << 8 | value % 0x60
            code += 0xA1A1 if code < 0x0A00 else 0xA6A1
        out += code.to_bytes(2, "big")
    return Segment("kanji" if mode == KANJI else "hanzi", eci, bytes(out))


def _digits(value: int, limit: int) -> int:
    if value >= limit:
        raise QrFormatError("numeric or alphanumeric value out of range")
    return value


def segments_from_matrix(matrix: Matrix, version: int, level: str, mask: int) -> list[Segment]:
    data = data_codewords(read_codewords(matrix, version, mask), version, level)
    return parse_segments(data, version)
