"""The ESC/POS receipt printer: receipts rendered to bytes (receipt.py), status answers
(status.py), byte transports (transport.py) and the supervised service (service.py)."""

from agent.devices.printer.receipt import PrinterProfile, Receipt, ReceiptLine, render_receipt
from agent.devices.printer.service import PaperOut, PrinterError, PrinterOffline, PrinterService
from agent.devices.printer.status import PrinterStatus, parse_status

__all__ = [
    "PaperOut",
    "PrinterError",
    "PrinterOffline",
    "PrinterProfile",
    "PrinterService",
    "PrinterStatus",
    "Receipt",
    "ReceiptLine",
    "parse_status",
    "render_receipt",
]
