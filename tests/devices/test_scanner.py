"""Scanners: the pure line reader and decoding, the serial scanner over a real pty (under the
supervisor, through unplug and replug), and the camera decoders on real photos."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.backoff import Backoff
from agent.devices.scanner.lines import (
    LineReader,
    RepeatFilter,
    ScanEvent,
    TooLong,
    UnreadableScan,
    decode_scan,
)
from agent.devices.scanner.serial_scanner import SerialScanner
from agent.devices.sim.scanner import ScannerSimulator
from agent.runtime.supervisor import Supervisor
from tests.support import wait_for

# -- LineReader -------------------------------------------------------------------------------

def test_cr_lf_and_crlf_each_end_one_line() -> None:
    reader = LineReader()
    assert reader.feed(b"A\rB\nC\r\nD", 0.0) == [b"A", b"B", b"C"]
    assert reader.feed(b"\r\n", 0.0) == [b"D"]


def test_crlf_split_across_reads_gives_no_empty_line() -> None:
    reader = LineReader()
    assert reader.feed(b"TOKEN\r", 0.0) == [b"TOKEN"]
    assert reader.feed(b"\n", 1.0) == []
    assert reader.feed(b"NEXT\r", 1.1) == [b"NEXT"]


def test_idle_pause_ends_a_code_without_suffix() -> None:
    reader = LineReader(idle_timeout_s=0.3)
    assert reader.feed(b"NOSUF", 10.0) == []
    assert reader.flush_idle(10.2) == []
    assert reader.flush_idle(10.3) == [b"NOSUF"]
    assert reader.flush_idle(11.0) == []
    # The next code after a pause does not glue onto a previous one left pending.
    reader.feed(b"ONE", 20.0)
    assert reader.feed(b"TWO\r", 21.0) == [b"ONE", b"TWO"]


def test_no_idle_timeout_waits_for_the_suffix() -> None:
    reader = LineReader(idle_timeout_s=None)
    reader.feed(b"PART", 0.0)
    assert reader.flush_idle(100.0) == []
    assert reader.feed(b"IAL\n", 100.0) == [b"PARTIAL"]


def test_over_long_line_is_dropped_and_reported_with_bounded_memory() -> None:
    reader = LineReader(max_line=8)
    out = reader.feed(b"12345678", 0.0)
    assert out == []
    assert reader.pending
    out = reader.feed(b"9" * 10_000, 0.0)
    assert out == []
    assert len(reader._buffer) <= 8
    out = reader.feed(b"\rOK\r", 0.0)
    assert out == [TooLong(10_008, b"12345678"), b"OK"]
    assert reader.feed(b"12345678\r", 0.0) == [b"12345678"]  # exactly max_line is fine


_line = st.binary(min_size=1, max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_line, st.sampled_from([b"\r", b"\n", b"\r\n"])), max_size=10),
       st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_any_chunking_gives_the_same_lines(lines: list[tuple[bytes, bytes]],
                                           cuts: list[int]) -> None:
    stream = b"".join(line + end for line, end in lines)
    reader = LineReader(max_line=4096, idle_timeout_s=0.3)
    out: list[bytes | TooLong] = []
    position = 0
    for edge in sorted({min(c, len(stream)) for c in cuts} | {len(stream)}):
        out += reader.feed(stream[position:edge], 5.0)
        position = edge
    assert out == [line for line, _ in lines]
    assert not reader.pending


# -- decode_scan and the repeat filter ------------------------------------------------------

def test_utf8_and_gb18030_scans() -> None:
    assert decode_scan("取件码 A01".encode()) == "取件码 A01"
    assert decode_scan("取件码 A01".encode("gb18030")) == "取件码 A01"
    assert decode_scan(b"\x02eyJhbGciOiJFZERTQSJ9.x.y\x03\x00") == "eyJhbGciOiJFZERTQSJ9.x.y"
    assert decode_scan(b"01\x1d10ABC") == "01\x1d10ABC"  # GS1 separator kept inside


@pytest.mark.parametrize("raw", [b"\xff\xfe\xfd", b"\x81", b"abc\x80", b"\x00\x00", b" \r\n"])
def test_unreadable_scans(raw: bytes) -> None:
    with pytest.raises(UnreadableScan):
        decode_scan(raw)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_decode_scan_reads_any_utf8(text: str) -> None:
    try:
        result = decode_scan(text.encode("utf-8", "surrogatepass"))
    except UnreadableScan:
        return  # blank, or surrogates/private use/unassigned: not scannable text
    assert result == result.strip()
    assert result in text.replace("\x00", "")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=1,
               max_size=12))
def test_decode_scan_reads_gbk_chinese(text: str) -> None:
    raw = text.encode("gb18030")
    try:
        as_utf8: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        as_utf8 = None
    if as_utf8 is None:
        assert decode_scan(raw) == text
        return
    # Rare GBK bytes are valid UTF-8 too: UTF-8 is read first (the contract), or the scan is
    # unreadable; never a second guess.
    with contextlib.suppress(UnreadableScan):
        assert decode_scan(raw) == as_utf8.strip()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_decode_scan_never_returns_junk(raw: bytes) -> None:
    try:
        text = decode_scan(raw)
    except UnreadableScan:
        return
    assert text
    assert "\x00" not in text
    assert text == text.strip()
    assert not any(0xE000 <= ord(ch) <= 0xF8FF or 0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def test_repeat_filter_window_slides_and_tracks_several_codes() -> None:
    repeats = RepeatFilter(window_s=2.0)
    assert repeats.accept("A", 0.0)
    assert repeats.accept("B", 0.5)
    assert not repeats.accept("A", 1.0)
    assert not repeats.accept("A", 2.5)  # still held in front of the scanner: window slides
    assert repeats.accept("A", 4.6)
    assert not repeats.accept("B", 1.9)
    assert repeats.accept("B", 4.0)


# -- SerialScanner over a pty -----------------------------------------------------------------

class Collector:
    def __init__(self) -> None:
        self.events: list[ScanEvent] = []
        self._lock = threading.Lock()

    def __call__(self, event: ScanEvent) -> None:
        with self._lock:
            self.events.append(event)

    def texts(self) -> list[str | None]:
        with self._lock:
            return [e.text for e in self.events]


@pytest.fixture
def scanner_sim(tmp_path: Path) -> Iterator[ScannerSimulator]:
    with ScannerSimulator(tmp_path / "cart-scanner") as sim:
        yield sim


@pytest.fixture
def running(scanner_sim: ScannerSimulator) -> Iterator[tuple[SerialScanner, Collector]]:
    collector = Collector()
    scanner = SerialScanner(scanner_sim.path, 9600, collector, repeat_window_s=1.0,
                            idle_timeout_s=0.15)
    supervisor = Supervisor(Backoff(initial_s=0.05, maximum_s=0.1))
    supervisor.start(scanner)
    assert wait_for(lambda: scanner.health.ok)
    yield scanner, collector
    supervisor.stop()


def test_serial_scans_with_every_suffix(scanner_sim: ScannerSimulator,
                                        running: tuple[SerialScanner, Collector]) -> None:
    _, got = running
    scanner_sim.scan("CODE-CR", suffix=b"\r")
    scanner_sim.scan("CODE-LF", suffix=b"\n")
    scanner_sim.scan("CODE-CRLF", suffix=b"\r\n")
    scanner_sim.scan("CODE-NONE", suffix=b"")  # only the pause ends it
    assert wait_for(lambda: len(got.texts()) == 4)
    assert got.texts() == ["CODE-CR", "CODE-LF", "CODE-CRLF", "CODE-NONE"]
    event = got.events[0]
    assert (event.source, event.error, event.raw) == ("serial", None, b"CODE-CR")
    assert abs(event.at - time.time()) < 5
    assert event.mono <= time.monotonic()


def test_serial_crlf_split_across_writes(scanner_sim: ScannerSimulator,
                                         running: tuple[SerialScanner, Collector]) -> None:
    _, got = running
    scanner_sim.send(b"SPLIT-1\r")
    assert wait_for(lambda: got.texts() == ["SPLIT-1"])
    time.sleep(0.05)  # the LF comes in a later read
    scanner_sim.send(b"\nSPL")
    time.sleep(0.05)
    scanner_sim.send(b"IT-2\r\n")
    assert wait_for(lambda: len(got.texts()) == 2)
    time.sleep(0.2)
    assert got.texts() == ["SPLIT-1", "SPLIT-2"]


def test_serial_gb18030_and_invalid_bytes(scanner_sim: ScannerSimulator,
                                          running: tuple[SerialScanner, Collector]) -> None:
    _, got = running
    scanner_sim.scan("取件 A01", encoding="gb18030")
    scanner_sim.scan("取件 A02")
    scanner_sim.scan(b"\xff\xfe\x80bad")
    assert wait_for(lambda: len(got.events) == 3)
    assert got.texts()[:2] == ["取件 A01", "取件 A02"]
    bad = got.events[2]
    assert (bad.text, bad.error, bad.raw) == (None, "unreadable", b"\xff\xfe\x80bad")


def test_serial_repeats_are_suppressed(scanner_sim: ScannerSimulator,
                                       running: tuple[SerialScanner, Collector]) -> None:
    _, got = running
    for _ in range(5):  # a continuous-mode scanner holding one code
        scanner_sim.scan("SAME")
    scanner_sim.scan("OTHER")
    assert wait_for(lambda: got.texts() == ["SAME", "OTHER"])
    time.sleep(1.1)
    scanner_sim.scan("SAME")  # after the window: a new scan
    assert wait_for(lambda: got.texts() == ["SAME", "OTHER", "SAME"])


def test_serial_too_long_line_is_an_error_event(scanner_sim: ScannerSimulator,
                                                running: tuple[SerialScanner, Collector]) -> None:
    _, got = running
    scanner_sim.scan(b"X" * 5000)
    scanner_sim.scan("AFTER")
    assert wait_for(lambda: len(got.events) == 2)
    too_long, after = got.events
    assert too_long.error == "too long"
    assert too_long.text is None
    assert len(too_long.raw) <= 64
    assert after.text == "AFTER"


def test_serial_scanner_survives_unplug_and_replug(
        scanner_sim: ScannerSimulator, running: tuple[SerialScanner, Collector]) -> None:
    scanner, got = running
    scanner_sim.scan("BEFORE")
    assert wait_for(lambda: got.texts() == ["BEFORE"])
    scanner_sim.unplug()
    assert wait_for(lambda: not scanner.health.ok)
    assert scanner.health.error
    scanner_sim.replug()
    assert wait_for(lambda: scanner.health.ok)
    scanner_sim.scan("AFTER")
    assert wait_for(lambda: got.texts() == ["BEFORE", "AFTER"])


# -- camera decoders on real photos ---------------------------------------------------------

def blackbox_dir() -> Path:
    """The photos shipped with the repository (a licensed subset of ZXing's black-box set)."""
    return Path(__file__).resolve().parents[1] / "data/qr"


@pytest.fixture
def cv2() -> Any:
    return pytest.importorskip("cv2", reason="opencv (camera extra) not installed")


@pytest.mark.parametrize("decoder", ["zxing", "pyzbar"])
@pytest.mark.parametrize("name", ["qrcode-1/4.png", "qrcode-3/10.png", "qrcode-5/05.png"])
def test_decoders_read_blackbox_photos(cv2: Any, decoder: str, name: str) -> None:
    from agent.devices.scanner.decoders import decode_image

    image_path = blackbox_dir() / name
    expected = image_path.with_suffix(".txt").read_text(encoding="utf-8")
    codes = decode_image(cv2.imread(str(image_path)), decoder)
    assert [c.text for c in codes] == [expected]


@pytest.mark.parametrize("decoder", ["zxing", "pyzbar"])
def test_shift_jis_without_eci_is_undecodable_not_wrong(cv2: Any, decoder: str) -> None:
    from agent.devices.scanner.decoders import decode_image

    image_path = blackbox_dir() / "qrcode-2/17.png"  # "ﾃﾞｻﾞｲﾝQR..." in Shift-JIS, no ECI
    (code,) = decode_image(cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE), decoder)
    assert code.text is None
    assert code.error
    assert "no ECI" in code.error
    assert code.raw.decode("shift_jis").startswith("ﾃﾞｻﾞｲﾝQR")


def _qr_image(data: str | bytes, **options: Any) -> Any:
    import numpy as np
    import segno

    matrix = segno.make_qr(data, **options).matrix_iter(scale=4, border=4)
    return np.array([[0 if dark else 255 for dark in row] for row in matrix], dtype=np.uint8)


@pytest.mark.parametrize("decoder", ["zxing", "pyzbar"])
def test_utf8_chinese_without_eci_is_read_from_bytes(cv2: Any, decoder: str) -> None:
    from agent.devices.scanner.decoders import decode_image

    # pyzbar's text mode reads many such short strings as Japanese, without an error.
    for text in ("取件", "红烧牛肉面", "王小明"):
        (code,) = decode_image(_qr_image(text, encoding="utf-8", eci=False), decoder)
        assert code.text == text


def test_gb18030_is_trusted_only_with_eci(cv2: Any) -> None:
    from agent.devices.scanner.decoders import decode_image

    (with_eci,) = decode_image(_qr_image("测试取件", encoding="gb18030", eci=True), "zxing")
    assert (with_eci.text, with_eci.eci) == ("测试取件", 29)
    (without,) = decode_image(_qr_image("测试取件", encoding="gb18030", eci=False), "zxing")
    assert without.text is None
    assert without.raw == "测试取件".encode("gb18030")


def test_camera_scanner_reads_frames_and_reopens_when_they_stop(cv2: Any,
                                                                tmp_path: Path) -> None:
    from agent.devices.scanner.camera import CameraError, CameraScanner

    frames = [_qr_image("CAM-1")] * 3 + [_qr_image("CAM-2")]
    frames += [_qr_image("测试", encoding="gb18030", eci=False)]
    for i, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"frame_{i:03d}.png"), cv2.resize(frame, (200, 200)))
    got = Collector()
    camera = CameraScanner(str(tmp_path / "frame_%03d.png"), "zxing", got, frame_timeout_s=0.3,
                           min_interval_s=0.0)
    with pytest.raises(CameraError, match="no frame"):
        camera.run(threading.Event())  # the sequence ends: the watchdog gives up on it
    assert camera.frames == 5
    assert camera.health.ok
    assert got.texts() == ["CAM-1", "CAM-2", None]
    assert got.events[2].error == "unreadable"
    assert got.events[2].source == "camera"
    assert got.events[2].raw == "测试".encode("gb18030")


@pytest.mark.parametrize(("name", "thorough", "read"), [
    ("qrcode-2/12.png", False, False), ("qrcode-2/12.png", True, True),  # small: 2x pass
    ("qrcode-4/34.png", True, True),
    ("qrcode-4/08.png", False, False), ("qrcode-4/08.png", True, True),  # curved surface
])
def test_thorough_read_of_hard_photos(cv2: Any, name: str, thorough: bool, read: bool) -> None:
    from agent.devices.scanner.decoders import decode_image

    image = cv2.imread(str(blackbox_dir() / name), cv2.IMREAD_GRAYSCALE)
    expected = (blackbox_dir() / name).with_suffix(".txt").read_text(encoding="utf-8")
    codes = decode_image(image, "zxing", thorough=thorough)
    assert [c.text for c in codes] == ([expected] if read else [])


def test_serial_scanner_error_names_the_port_once(tmp_path: Path) -> None:
    from agent.devices.errors import DeviceUnavailable
    from agent.devices.scanner.serial_scanner import SerialScanner

    missing = str(tmp_path / "cart-scanner")
    scanner = SerialScanner(missing, 9600, Collector())
    with pytest.raises(DeviceUnavailable) as info:
        scanner.run(threading.Event())
    assert str(info.value) == f"cannot open {missing}: No such file or directory"
