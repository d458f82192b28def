"""What each receipt says, from its transaction: pick-up, meal, queue ticket, day report.

Rendering to bytes is the printer module's pure function; this module only decides the words.
A receipt carries the cart, the time, the transaction id and a QR code of that id.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from agent.config import AgentConfig, PrinterConfig
from agent.contract import parse_rfc3339
from agent.devices.printer.receipt import (
    PrinterProfile,
    Receipt,
    ReceiptLine,
    Rendered,
    render,
    render_receipt,
)
from agent.ids import new_ulid
from agent.store import Tx

FOOTER = ("谢谢使用 社区服务车", "Thank you - community service cart")


def printer_profile(printer: PrinterConfig) -> PrinterProfile:
    return PrinterProfile(width_chars=printer.width_chars, native_qr=printer.native_qr,
                          charset=printer.charset, font_paths=printer.font_paths)


class ReceiptRenderer:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.profile = printer_profile(cfg.printer)

    def receipt(self, kind: str, tx: Tx) -> Receipt:
        base, reprint = kind.removesuffix(".reprint"), kind.endswith(".reprint")
        builder = {"pickup": self._pickup, "meal": self._meal, "ticket": self._ticket,
                   "report": self._report}.get(base)
        if builder is None:
            raise ValueError(f"no receipt of kind {kind!r}")
        title_zh, title_en, lines, big = builder(tx.data)
        footer = (("补打 REPRINT",) if reprint else ()) + FOOTER
        return Receipt(title_zh=title_zh, title_en=title_en, cart_id=self.cfg.cart_id,
                       at=datetime.fromtimestamp(parse_rfc3339(tx.at), UTC), tx_id=tx.id,
                       lines=lines, big_text=big, footer=footer, tz=self.cfg.timezone)

    def render(self, kind: str, tx: Tx) -> Rendered:
        return render(self.receipt(kind, tx), self.profile)

    @staticmethod
    def _pickup(data: dict[str, Any]) -> tuple[str, str, list[ReceiptLine], str | None]:
        return ("取件凭条", "Parcel pick-up", [
            ReceiptLine("柜格 Compartment", str(data["compartment"])),
            ReceiptLine("快递单号 Parcel", str(data["label"])),
        ], None)

    @staticmethod
    def _meal(data: dict[str, Any]) -> tuple[str, str, list[ReceiptLine], str | None]:
        lines = [ReceiptLine("姓名 Name", str(data.get("name") or "-")),
                 ReceiptLine("订单 Order", str(data["order"]))]
        lines += [ReceiptLine(f"  {i}. {item}", "") for i, item in
                  enumerate(data.get("items") or [], 1)]
        if data.get("compartment"):
            lines.append(ReceiptLine("柜格 Compartment", str(data["compartment"])))
        return ("长者助餐取餐单", "Meal pick-up", lines, None)

    def _ticket(self, data: dict[str, Any]) -> tuple[str, str, list[ReceiptLine], str | None]:
        service = self.cfg.ticket_services.get(data["service"])
        zh, en = (service.zh, service.en) if service else (data["service"], data["service"])
        return ("排队票", "Queue ticket", [ReceiptLine(zh, en)], f"No. {data['number']}")

    @staticmethod
    def _report(data: dict[str, Any]) -> tuple[str, str, list[ReceiptLine], str | None]:
        summary = data["summary"]
        lines = [ReceiptLine("日期 Day", summary["day"]),
                 ReceiptLine("投递 Parcels in", str(summary["parcels"]["in"])),
                 ReceiptLine("取件 Parcels out", str(summary["parcels"]["out"])),
                 ReceiptLine("待取 Waiting", str(summary["parcels"]["waiting"])),
                 ReceiptLine("助餐 Meals", str(summary["meals"])),
                 ReceiptLine("拒绝 Refused scans", str(summary["refused"]))]
        lines += [ReceiptLine(f"排队 Tickets {svc}", str(n))
                  for svc, n in summary["tickets"].items()]
        lines += [ReceiptLine(f"  {t}", str(n)) for t, n in summary["transactions"].items()]
        return ("日结报表", "End-of-day report", lines, None)


def test_receipt_bytes(cfg: AgentConfig) -> bytes:
    receipt = Receipt(
        title_zh="打印测试", title_en="Printer test", cart_id=cfg.cart_id,
        at=datetime.fromtimestamp(time.time(), UTC), tx_id=new_ulid(),
        lines=[ReceiptLine("中文 Chinese", "你好，社区服务车"),
               ReceiptLine("English", "Hello from the cart"),
               ReceiptLine("金额 Amount", "￥12.50")],
        footer=FOOTER, tz=cfg.timezone,
    )
    return render_receipt(receipt, ReceiptRenderer(cfg).profile)
