"""Receipt printer: golden bytes of a rendered receipt, status parsing, and the real service
printing over a pty to the simulator (paper out, silence, a printer lost mid-receipt)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.backoff import Backoff
from agent.devices.printer.receipt import (
    PrinterProfile,
    Receipt,
    ReceiptLine,
    columns,
    render_receipt,
    wrap,
)
from agent.devices.printer.service import PaperOut, PrinterError, PrinterOffline, PrinterService
from agent.devices.printer.status import check_status_byte, parse_status, status_bytes
from agent.devices.sim.escpos_decode import decode_escpos
from agent.devices.sim.printer import PrinterSimulator
from agent.runtime.supervisor import Supervisor
from tests.support import wait_for

AT = datetime(2024, 5, 1, 4, 30, tzinfo=UTC)  # 12:30 in Asia/Shanghai
TX = "01HZ0000000000000000000000"


def pickup_receipt(**changes: object) -> Receipt:
    fields: dict[str, object] = dict(
        title_zh="取件凭证", title_en="Parcel pick-up", cart_id="bc-01", at=AT, tx_id=TX,
        lines=[ReceiptLine("柜门 Door", "A01"), ("运费 Fee", "¥12.50")], footer=["谢谢"],
        tz="Asia/Shanghai")
    fields.update(changes)
    return Receipt(**fields)  # type: ignore[arg-type]


# -- rendering --------------------------------------------------------------------------------

GOLDEN_58MM = b"".join([
    b"\x1b@",                                                  # ESC @ init
    b"\x1ba\x01\x1bE\x01\x1d!\x11",                            # centre, bold, double size
    b"\x1c&" + b"\xc8\xa1\xbc\xfe\xc6\xbe\xd6\xa4" + b"\x1c.\n",  # FS & 取件凭证 FS .
    b"\x1d!\x00\x1bE\x00Parcel pick-up\n",
    b"\x1ba\x00" + b"-" * 32 + b"\n",
    b"\x1c&\xb9\xf1\xc3\xc5 Door" + b" " * 20 + b"A01\x1c.\n",  # 柜门: CJK counts 2 columns
    b"\x1c&\xd4\xcb\xb7\xd1 Fee" + b" " * 17 + b"\xa3\xa412.50\x1c.\n",  # 运费, ￥ = A3 A4
    b"-" * 32 + b"\n",
    b"\x1c&\xb3\xb5\xba\xc5 Cart" + b" " * 18 + b"bc-01\x1c.\n",  # 车号
    b"\x1c&\xca\xb1\xbc\xe4 Time" + b" " * 7 + b"2024-05-01 12:30\x1c.\n",  # 时间, local time
    b"\x1c&\xc1\xf7\xcb\xae\xba\xc5 Tx\x1c.\n",                # 流水号: 35 columns, wrapped
    b" " * 6 + TX.encode() + b"\n",
    b"\x1ba\x01",
    b"\x1d(k\x04\x001A2\x00",                                  # QR model 2
    b"\x1d(k\x03\x001C\x06",                                   # module size 6
    b"\x1d(k\x03\x001E1",                                      # error correction M
    b"\x1d(k\x1d\x001P0" + TX.encode(),                        # store 26 bytes (+3)
    b"\x1d(k\x03\x001Q0",                                      # print
    b"\x1c&\xd0\xbb\xd0\xbb\x1c.\n",                           # 谢谢
    b"\x1ba\x00\x1bd\x04\x1dV\x01",                            # feed 4, partial cut
])


def test_receipt_golden_bytes_native_qr() -> None:
    data = render_receipt(pickup_receipt(), PrinterProfile(width_chars=32))
    assert data == GOLDEN_58MM
    assert "¥".encode("gb18030") not in data  # the 4-byte sequence GBK printers misprint


def test_receipt_decodes_back_to_its_text() -> None:
    doc = decode_escpos(render_receipt(pickup_receipt(big_text="A023"), PrinterProfile()))
    lines = doc.text_lines
    assert lines[:2] == ["取件凭证", "Parcel pick-up"]
    assert "运费 Fee                 ￥12.50" in lines
    assert "A023" in lines
    big = next(line for line in doc.lines if line.text == "A023")
    assert (big.width, big.height, big.align) == (4, 4, "center")
    assert doc.qr_codes == [TX.encode()]
    assert doc.cuts == 1
    assert all(columns(line) <= 32 for line in lines if line != "A023")


def test_raster_qr_variant_scans_back() -> None:
    zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp (camera extra) not installed")
    np = pytest.importorskip("numpy")
    profile = PrinterProfile(width_chars=48, native_qr=False, qr_size=4)
    doc = decode_escpos(render_receipt(pickup_receipt(), profile))
    assert doc.qr_codes == []
    (image,) = doc.rasters
    assert image.width <= profile.width_dots
    pixels = np.array(image.rows(), dtype=np.uint8)
    gray = np.where(pixels == 1, 0, 255).astype(np.uint8)
    (code,) = zxingcpp.read_barcodes(gray)
    assert code.format == zxingcpp.BarcodeFormat.QRCode  # a Micro QR most readers cannot read
    assert code.text == TX


def test_no_cutter_profile_feeds_without_cutting() -> None:
    data = render_receipt(pickup_receipt(), PrinterProfile(cut=False))
    assert decode_escpos(data).cuts == 0
    assert data.endswith(b"\x1bd\x04")


def test_control_characters_in_text_cannot_become_commands() -> None:
    receipt = pickup_receipt(lines=[("菜品", "面\x1bd\xff\x1dV\x00")])
    doc = decode_escpos(render_receipt(receipt, PrinterProfile()))
    assert doc.cuts == 1
    assert any(line.endswith("面?dÿ?V?") for line in doc.text_lines)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        render_receipt(pickup_receipt(at=datetime(2024, 5, 1, 12, 0)), PrinterProfile())


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab 取件￥1 "), max_size=80),
       st.integers(min_value=2, max_value=48))
def test_wrap_fits_width_and_keeps_the_characters(text: str, width: int) -> None:
    lines = wrap(text, width)
    assert all(columns(line) <= width for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


# -- status -----------------------------------------------------------------------------------

def test_status_ok_and_problems() -> None:
    def parse(**condition: bool) -> str:
        return parse_status({n: bytes([b]) for n, b in status_bytes(**condition).items()}).state

    assert parse() == "ok"
    assert parse(paper_out=True) == "paper_out"
    assert parse(paper_near_end=True) == "paper_near_end"
    assert parse(cover_open=True) == "cover_open"
    assert parse(online=False) == "offline"
    assert parse(error=True) == "error"


def test_silence_is_unknown_never_ok() -> None:
    status = parse_status({1: b"", 2: None, 4: None})
    assert status.state == "unknown"
    assert status.paper_out is None
    assert not status.can_print
    assert "no answer" in (status.reason or "")
    # Answers to 1 and 2 without the paper sensor's: still unknown, not "paper OK".
    partial = parse_status({1: b"\x12", 2: b"\x12", 4: b""})
    assert partial.state == "unknown"
    assert partial.paper_out is False


def test_a_reported_problem_wins_over_silence_elsewhere() -> None:
    assert parse_status({1: b"", 2: b"", 4: b"\x72"}).state == "paper_out"


@pytest.mark.parametrize("garbage", [b"\xff", b"\x00", b"\x13", b"\x92", b"\x12\x12", b"A"])
def test_garbage_is_rejected(garbage: bytes) -> None:
    status = parse_status({1: garbage, 2: b"\x12", 4: b"\x12"})
    assert status.state == "unknown"
    assert "DLE EOT 1" in (status.reason or "")


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=255))
def test_fixed_bits_decide_validity(value: int) -> None:
    valid = (value & 0x01) == 0 and (value & 0x02) and (value & 0x10) and not value & 0x80
    if valid:
        assert check_status_byte(value) == value
    else:
        with pytest.raises(ValueError, match="is not a status byte"):
            check_status_byte(value)


# -- the service over a pty -------------------------------------------------------------------

@pytest.fixture
def sim(tmp_path: Path) -> Iterator[PrinterSimulator]:
    with PrinterSimulator(tmp_path / "cart-printer") as simulator:
        yield simulator


def make_service(sim: PrinterSimulator, **kwargs: object) -> PrinterService:
    return PrinterService("serial", port=sim.path, baudrate=9600, status_timeout_s=0.15,
                          **kwargs)  # type: ignore[arg-type]


def test_print_reaches_the_printer_as_the_receipt(sim: PrinterSimulator) -> None:
    service = make_service(sim)
    data = service.print_receipt(pickup_receipt(), timeout_s=5)
    assert data == render_receipt(pickup_receipt(), PrinterProfile())
    assert wait_for(lambda: sim.receipts() == [data])
    doc = decode_escpos(sim.receipts()[0])
    assert doc.text_lines[0] == "取件凭证"
    assert doc.qr_codes == [TX.encode()]
    assert sim.status_requests >= 6  # asked before and after
    assert service.health.snapshot()["status"] == "ok"


def test_paper_out_raises_and_marks_unhealthy(sim: PrinterSimulator) -> None:
    service = make_service(sim, poll_interval_s=0.05)
    supervisor = Supervisor(Backoff(initial_s=0.05, maximum_s=0.1))
    supervisor.start(service)
    try:
        assert wait_for(lambda: service.health.ok)
        sim.set_paper_out(True)
        assert wait_for(lambda: service.health.snapshot()["error"] == "paper out")
        with pytest.raises(PaperOut) as caught:
            service.print_bytes(b"\x1b@x\n", timeout_s=2)
        assert not caught.value.partial
        assert sim.receipts() == []  # nothing was sent to a printer without paper
        sim.set_paper_out(False)
        assert wait_for(lambda: service.health.ok)
        service.print_bytes(b"\x1b@x\n", timeout_s=2)
    finally:
        supervisor.stop()


def test_unknown_status_is_healthy_with_status_unknown(sim: PrinterSimulator) -> None:
    sim.set_silent(True)
    service = make_service(sim)
    assert service.query_status().state == "unknown"
    assert service.health.snapshot()["ok"] is True
    assert service.health.snapshot()["status"] == "unknown"
    service.print_bytes(b"blind\n", timeout_s=2)  # a printer that never answers prints blind
    assert wait_for(lambda: b"blind\n" in sim.output)


def test_printer_that_falls_silent_is_offline(sim: PrinterSimulator) -> None:
    service = make_service(sim)
    assert service.query_status().state == "ok"
    sim.set_silent(True)
    with pytest.raises(PrinterOffline, match="stopped answering"):
        service.print_bytes(b"lost?\n", timeout_s=2)
    assert b"lost?" not in sim.output
    assert service.health.snapshot()["ok"] is False


def test_printer_unplugged_mid_receipt(sim: PrinterSimulator) -> None:
    service = make_service(sim)
    sim.unplug_after(2000)
    big = b"\x1b@" + b"line of a long receipt\n" * 4000
    with pytest.raises(PrinterError) as caught:
        service.print_bytes(big, timeout_s=5)
    assert caught.value.partial
    assert "printer lost" in caught.value.reason
    assert service.health.ok is False
    with pytest.raises(PrinterOffline):
        service.print_bytes(b"x\n", timeout_s=1)  # still unplugged: cannot open
    sim.replug()
    service.print_bytes(b"\x1b@again\n", timeout_s=2)
    assert wait_for(lambda: b"again" in sim.output)
    assert service.health.ok


def test_supervised_service_reopens_after_replug(sim: PrinterSimulator) -> None:
    service = make_service(sim, poll_interval_s=0.05)
    supervisor = Supervisor(Backoff(initial_s=0.05, maximum_s=0.1))
    supervisor.start(service)
    try:
        assert wait_for(lambda: service.health.ok)
        sim.unplug()
        assert wait_for(lambda: not service.health.ok)
        sim.replug()
        assert wait_for(lambda: service.health.ok)
        assert supervisor.restarts()["printer"] >= 1
    finally:
        supervisor.stop()


def test_file_printer_status_is_unknown(tmp_path: Path) -> None:
    target = tmp_path / "receipts.bin"
    service = PrinterService("file", path=str(target))
    service.print_bytes(b"\x1b@hello\n")
    assert target.read_bytes() == b"\x1b@hello\n"
    assert service.query_status().state == "unknown"
    assert service.health.snapshot()["status"] == "unknown"


def test_file_printer_never_creates_a_device_node() -> None:
    service = PrinterService("file", path="/dev/cart-test-no-such-printer")
    with pytest.raises(PrinterOffline, match="unreachable"):
        service.print_bytes(b"x")
    assert not Path("/dev/cart-test-no-such-printer").exists()


class TcpPrinter:
    """A port-9100 printer on loopback: keeps what it receives, answers each DLE EOT n."""

    def __init__(self, answer: int = 0x12) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.answer = answer
        self.received = bytearray()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            while chunk := conn.recv(4096):
                self.received += chunk
                # Requests are sent one at a time and never split by this loopback peer.
                conn.sendall(bytes([self.answer]) * chunk.count(b"\x10\x04"))

    def close(self) -> None:
        self.server.close()
        self._thread.join(2)


def test_network_printer_prints_and_reports_paper_out() -> None:
    printer = TcpPrinter()
    try:
        service = PrinterService("network", host="127.0.0.1", tcp_port=printer.port,
                                 status_timeout_s=0.3)
        service.print_bytes(b"\x1b@tcp\n", timeout_s=2)
        assert wait_for(lambda: b"\x1b@tcp\n" in printer.received)
        assert service.last_status.state == "ok"
        printer.answer = 0x72  # paper sensor: paper end (and fixed bits)
        with pytest.raises(PaperOut):
            service.print_bytes(b"no paper\n", timeout_s=2)
        assert b"no paper" not in printer.received
        service.close()
    finally:
        printer.close()


def test_transport_errors_name_the_device_once(tmp_path: Path) -> None:
    from agent.devices.printer.transport import FileTransport, SerialTransport, TransportError

    missing = str(tmp_path / "cart-printer")
    with pytest.raises(TransportError) as serial_info:
        SerialTransport(missing, 9600).open()
    assert str(serial_info.value) == f"cannot open {missing}: No such file or directory"
    with pytest.raises(TransportError) as file_info:
        FileTransport("/dev/no-such-lp0").open()
    assert str(file_info.value) == "cannot open /dev/no-such-lp0: No such file or directory"
