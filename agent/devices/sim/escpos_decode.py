"""ESC/POS bytes back to commands and text: the printer's side of the wire, without a printer.

Tests use it to check what a driver sent; the printer simulator uses `tokenize` to find status
requests in the stream; the demo shows printed receipts as text. It knows the commands this
project sends plus the common ones around them; anything else is an error in strict mode.

Bytes below 0x20 are always commands: in Chinese mode a GB18030 character's second to fourth
bytes are 0x30 or above, so a command byte can never be taken for part of a character.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10


class EscposDecodeError(ValueError):
    pass


@dataclass(frozen=True)
class Command:
    """One command (or run of text) and where it sits in the input."""

    name: str
    start: int
    end: int
    args: tuple[int, ...] = ()
    data: bytes = b""


# ESC/FS/GS + this byte -> (name, number of argument bytes) for fixed-length commands.
_FIXED: dict[int, dict[int, tuple[str, int]]] = {
    ESC: {
        0x40: ("init", 0), 0x61: ("align", 1), 0x45: ("bold", 1), 0x2D: ("underline", 1),
        0x64: ("feed_lines", 1), 0x4A: ("feed_dots", 1), 0x32: ("line_spacing_default", 0),
        0x33: ("line_spacing", 1), 0x74: ("code_page", 1), 0x21: ("print_mode", 1),
        0x4D: ("font", 1), 0x47: ("double_strike", 1), 0x52: ("charset", 1),
        0x70: ("drawer_pulse", 3), 0x7B: ("upside_down", 1), 0x56: ("rotate", 1),
        0x20: ("char_spacing", 1), 0x24: ("position", 2), 0x63: ("panel_buttons", 2),
    },
    GS: {
        0x21: ("size", 1), 0x42: ("reverse", 1), 0x68: ("barcode_height", 1),
        0x77: ("barcode_width", 1), 0x48: ("hri_position", 1), 0x66: ("hri_font", 1),
        0x4C: ("left_margin", 2), 0x57: ("print_width", 2), 0x61: ("asb", 1),
        0x72: ("transmit_status", 1), 0x49: ("printer_id", 1),
    },
    FS: {
        0x26: ("chinese_on", 0), 0x2E: ("chinese_off", 0), 0x21: ("chinese_mode", 1),
        0x2D: ("chinese_underline", 1), 0x53: ("chinese_spacing", 2), 0x57: ("chinese_quad", 1),
        0x43: ("chinese_code", 1),
    },
    DLE: {0x04: ("status_request", 1), 0x05: ("realtime_request", 1), 0x14: ("realtime_cmd", 3)},
}
_SINGLE = {0x0A: "lf", 0x0D: "cr", 0x09: "tab", 0x0C: "form_feed"}
_QR_FUNCTIONS = {0x41: "qr_model", 0x43: "qr_size", 0x45: "qr_ec", 0x50: "qr_store",
                 0x51: "qr_print", 0x52: "qr_info"}


class _Incomplete(Exception):
    pass


def tokenize(data: bytes, strict: bool = True) -> tuple[list[Command], int]:
    """Commands and text runs in `data`, and the offset where an unfinished command starts.

    The offset is len(data) when everything was complete; a stream reader keeps the bytes
    from there and tokenizes them again with what arrives next.
    """
    commands: list[Command] = []
    i = 0
    while i < len(data):
        byte = data[i]
        if byte >= 0x20:
            end = i
            while end < len(data) and data[end] >= 0x20:
                end += 1
            commands.append(Command("text", i, end, data=data[i:end]))
            i = end
            continue
        try:
            command = _command_at(data, i, strict)
        except _Incomplete:
            return commands, i
        commands.append(command)
        i = command.end
    return commands, len(data)


def _need(data: bytes, end: int) -> None:
    if len(data) < end:
        raise _Incomplete


def _command_at(data: bytes, i: int, strict: bool) -> Command:
    byte = data[i]
    if byte in _SINGLE:
        return Command(_SINGLE[byte], i, i + 1)
    if byte not in _FIXED:
        if strict:
            raise EscposDecodeError(f"unknown control byte 0x{byte:02X} at {i}")
        return Command("unknown", i, i + 1, data=data[i : i + 1])
    _need(data, i + 2)
    second = data[i + 1]
    if byte == GS and second == 0x28:  # GS ( X pL pH <pL + 256*pH bytes>
        _need(data, i + 5)
        size = data[i + 3] | (data[i + 4] << 8)
        end = i + 5 + size
        _need(data, end)
        return _gs_paren(data[i + 2], data[i + 5 : end], i, end)
    if byte == GS and second == 0x76:  # GS v 0 m xL xH yL yH <xL..xH * yL..yH bytes>
        _need(data, i + 8)
        width_bytes = data[i + 4] | (data[i + 5] << 8)
        height = data[i + 6] | (data[i + 7] << 8)
        end = i + 8 + width_bytes * height
        _need(data, end)
        return Command("raster", i, end, (data[i + 3], width_bytes, height), data[i + 8 : end])
    if byte == GS and second == 0x56:  # GS V m, or GS V m n for the "feed then cut" forms
        _need(data, i + 3)
        mode = data[i + 2]
        if mode in (0, 1, 48, 49):
            return Command("cut", i, i + 3, (mode,))
        _need(data, i + 4)
        return Command("cut", i, i + 4, (mode, data[i + 3]))
    known = _FIXED[byte].get(second)
    if known is None:
        if strict:
            raise EscposDecodeError(f"unknown command 0x{byte:02X} 0x{second:02X} at {i}")
        return Command("unknown", i, i + 2, data=data[i : i + 2])
    name, argc = known
    end = i + 2 + argc
    _need(data, end)
    return Command(name, i, end, tuple(data[i + 2 : end]))


def _gs_paren(kind: int, body: bytes, start: int, end: int) -> Command:
    # GS ( k with cn=49 (0x31) is the QR code; fn says which of its functions.
    if kind == 0x6B and len(body) >= 2 and body[0] == 0x31 and body[1] in _QR_FUNCTIONS:
        name = _QR_FUNCTIONS[body[1]]
        if name == "qr_store":  # m=48, then the data
            return Command(name, start, end, tuple(body[2:3]), body[3:])
        return Command(name, start, end, tuple(body[2:]))
    return Command(f"gs_paren_{chr(kind)}", start, end, (kind,), body)


@dataclass(frozen=True)
class Raster:
    """A GS v 0 image: rows of `width_bytes` bytes, most significant bit leftmost, 1 = black."""

    width_bytes: int
    height: int
    data: bytes

    @property
    def width(self) -> int:
        return self.width_bytes * 8

    def rows(self) -> list[list[bool]]:
        return [
            [bool(self.data[y * self.width_bytes + x // 8] & (0x80 >> (x % 8)))
             for x in range(self.width)]
            for y in range(self.height)
        ]


@dataclass(frozen=True)
class PrintedLine:
    """One printed line, or a QR code, image or cut in the flow of the paper."""

    kind: str  # "text" | "qr" | "raster" | "cut"
    text: str = ""
    align: str = "left"
    bold: bool = False
    width: int = 1  # character size multipliers from GS !
    height: int = 1
    chinese: bool = False  # printed (at least partly) in Chinese mode


@dataclass
class Document:
    commands: list[Command]
    lines: list[PrintedLine] = field(default_factory=list)
    qr_codes: list[bytes] = field(default_factory=list)
    rasters: list[Raster] = field(default_factory=list)
    cuts: int = 0

    @property
    def text_lines(self) -> list[str]:
        return [line.text for line in self.lines if line.kind == "text"]

    @property
    def text(self) -> str:
        """The receipt as a person would read it, QR codes and images as [markers]."""
        out = []
        for line in self.lines:
            if line.kind == "text":
                out.append(line.text)
            elif line.kind == "qr":
                out.append(f"[QR: {line.text}]")
            elif line.kind == "raster":
                out.append(f"[image {line.text}]")
            else:
                out.append("-- cut --")
        return "\n".join(out)


_ALIGN = {0: "left", 48: "left", 1: "center", 49: "center", 2: "right", 50: "right"}


class _State:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.align = "left"
        self.bold = False
        self.width = self.height = 1
        self.chinese = False


def decode_escpos(data: bytes, strict: bool = True) -> Document:
    """Decode a whole ESC/POS byte stream; strict mode rejects unknown or unfinished commands
    and text that is not valid GB18030 in Chinese mode."""
    commands, complete = tokenize(data, strict)
    if complete != len(data) and strict:
        raise EscposDecodeError(f"stream ends inside a command at {complete}")
    doc = Document(commands)
    state = _State()
    pending: list[str] = []
    line_attrs: PrintedLine | None = None  # attributes where the current line began
    qr_data = b""

    def end_line() -> None:
        nonlocal line_attrs
        attrs = line_attrs or PrintedLine("text", align=state.align)
        doc.lines.append(PrintedLine("text", "".join(pending), attrs.align, attrs.bold,
                                     attrs.width, attrs.height, attrs.chinese))
        pending.clear()
        line_attrs = None

    for cmd in commands:
        name = cmd.name
        if name == "text":
            if line_attrs is None:
                line_attrs = PrintedLine("text", align=state.align, bold=state.bold,
                                         width=state.width, height=state.height,
                                         chinese=state.chinese)
            elif state.chinese and not line_attrs.chinese:
                line_attrs = PrintedLine("text", align=line_attrs.align, bold=line_attrs.bold,
                                         width=line_attrs.width, height=line_attrs.height,
                                         chinese=True)
            pending.append(_decode_text(cmd.data, state.chinese, strict))
        elif name == "lf":
            end_line()
        elif name == "feed_lines":
            if pending:
                end_line()
            doc.lines.extend(PrintedLine("text", align=state.align) for _ in range(cmd.args[0]))
        elif name == "init":
            state.reset()
        elif name == "align":
            state.align = _ALIGN.get(cmd.args[0], "left")
        elif name == "bold":
            state.bold = bool(cmd.args[0] & 1)
        elif name == "size":
            state.width = ((cmd.args[0] >> 4) & 0x07) + 1
            state.height = (cmd.args[0] & 0x07) + 1
        elif name == "chinese_on":
            state.chinese = True
        elif name == "chinese_off":
            state.chinese = False
        elif name == "qr_store":
            qr_data = cmd.data
        elif name == "qr_print":
            if pending:
                end_line()
            doc.qr_codes.append(qr_data)
            doc.lines.append(PrintedLine("qr", qr_data.decode("utf-8", "replace"), state.align))
        elif name == "raster":
            if pending:
                end_line()
            raster = Raster(cmd.args[1], cmd.args[2], cmd.data)
            doc.rasters.append(raster)
            doc.lines.append(PrintedLine("raster", f"{raster.width}x{raster.height}",
                                         state.align))
        elif name == "cut":
            if pending:
                end_line()
            doc.cuts += 1
            doc.lines.append(PrintedLine("cut"))
    if pending:
        end_line()
    return doc


def _decode_text(data: bytes, chinese: bool, strict: bool) -> str:
    if not chinese:
        # Outside Chinese mode bytes above 0x7F come from the code page; PC437 is the default.
        return data.decode("cp437")
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        if strict:
            raise EscposDecodeError(f"invalid GB18030 text in Chinese mode: {data!r}") from exc
        return data.decode("gb18030", "replace")
