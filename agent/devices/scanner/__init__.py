"""Scanners: a serial (USB-CDC/RS232) QR scanner that sends a line per code, or a camera.

The camera's libraries (cv2, zxingcpp, pyzbar) are the optional `camera` extra and are imported
only when a camera is used.
"""

from agent.devices.scanner.lines import (
    LineReader,
    RepeatFilter,
    ScanEvent,
    TooLong,
    UnreadableScan,
    decode_scan,
)

__all__ = [
    "LineReader",
    "RepeatFilter",
    "ScanEvent",
    "TooLong",
    "UnreadableScan",
    "decode_scan",
]
