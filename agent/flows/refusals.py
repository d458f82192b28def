"""Why a scan was refused: stable reason codes and what the resident reads, Chinese first."""

from __future__ import annotations

REASONS: dict[str, tuple[str, str]] = {
    "unreadable": ("无法识别此二维码", "This code could not be read"),
    "bad_signature": ("二维码无效（签名错误）", "Invalid code (signature check failed)"),
    "unknown_key": ("二维码来源不受信任", "Code issued by an unknown issuer"),
    "expired": ("二维码已过期，请在应用中刷新", "Code has expired; refresh it in the app"),
    "not_yet_valid": ("二维码尚未生效", "Code is not valid yet"),
    "other_cart": ("此二维码不属于本服务车", "This code is for another cart"),
    "already_used": ("此二维码已使用", "This code was already used"),
    "revoked": ("此二维码已作废", "This code has been revoked"),
    "unknown_parcel": ("本车没有此包裹", "No such parcel at this cart"),
    "unknown_service": ("本车不提供此服务", "This service is not offered here"),
    "bad_claims": ("二维码内容不完整", "The code is missing required information"),
    "not_a_label": ("请扫描应用中的取件码", "Please scan the code from the app"),
    "label_in_use": ("此包裹已存放在本车", "This parcel is already stored here"),
    "no_free_compartment": ("没有合适的空柜格", "No free compartment fits this parcel"),
    "deposit_in_progress": ("其他快递员正在投递，请稍候",
                            "Another courier is depositing; please wait"),
    "locker_unavailable": ("柜门暂时无法打开，请联系工作人员",
                           "The locker is unavailable; please ask the attendant"),
    "compartment_failed": ("柜门未能打开，请联系工作人员",
                           "The compartment did not open; please ask the attendant"),
    "compartment_in_use": ("此柜格已存放其他物品，请联系工作人员",
                           "That compartment holds something else; please ask the attendant"),
    "out_of_service": ("此柜格暂停使用，请联系工作人员",
                       "This compartment is out of service; please ask the attendant"),
    "cart_out_of_service": ("本服务车暂停服务，请稍后再来",
                            "This cart is out of service; please come back later"),
    "storage_full": ("存储空间已满，暂停服务，请联系工作人员",
                     "Storage is full; service paused, please ask the attendant"),
    "clock_unknown": ("服务车时钟未校准，暂时无法验证二维码，请联系工作人员",
                      "The cart's clock is not set, so codes cannot be checked; "
                      "please ask the attendant"),
    "busy": ("服务车忙，请稍后再试", "The cart is busy; please try again"),
}


class ScanRefused(Exception):
    """A scan that must not open or print anything; `reason` is one of REASONS."""

    def __init__(self, reason: str, detail: str = "", **facts: object) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown refusal reason {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.facts = facts

    @property
    def zh(self) -> str:
        return REASONS[self.reason][0]

    @property
    def en(self) -> str:
        return REASONS[self.reason][1]
