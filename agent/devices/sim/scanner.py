"""A serial QR scanner on a pseudo-terminal: what it "scans" arrives at the driver as bytes."""

from __future__ import annotations

from pathlib import Path

from agent.devices.sim.pty import PtyPort


class ScannerSimulator:
    def __init__(self, link_path: str | Path) -> None:
        self.port = PtyPort(link_path)

    @property
    def path(self) -> str:
        return self.port.path

    def scan(self, code: str | bytes, suffix: bytes = b"\r\n", encoding: str = "utf-8") -> None:
        """Send one code as the scanner would: its bytes, then the configured suffix.

        `encoding="gb18030"` imitates the many scanners sold in China that send GBK.
        """
        data = code.encode(encoding) if isinstance(code, str) else code
        self.port.write(data + suffix)

    def send(self, data: bytes) -> None:
        """Raw bytes, e.g. half a line, to test how the driver reassembles reads."""
        self.port.write(data)

    def unplug(self) -> None:
        self.port.unplug()

    def replug(self) -> None:
        self.port.replug()

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> ScannerSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
