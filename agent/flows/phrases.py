"""Everything the cart says to a resident, in one table: what the screens show and what the
speaker says come from the same entry, so the two never disagree.

Each entry has the screen's Chinese and English; where the screen's words do not read well
aloud (a parcel label of twenty characters, a note in brackets) it also has the spoken words.
Placeholders (`{compartment}`, `{number}`, ...) are filled from the answer's facts; spoken,
they are read as a person would say them: compartment `A03` is "A 零 三" (digits one by one),
ticket 12 is "十二", a time 08:05 is "八点零五分".
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

LANGUAGES = ("zh", "en")


@dataclass(frozen=True)
class Phrase:
    zh: str
    en: str
    zh_spoken: str | None = None  # None: the screen's words, read aloud
    en_spoken: str | None = None

    def template(self, lang: str, spoken: bool) -> str:
        if lang == "zh":
            return (self.zh_spoken or self.zh) if spoken else self.zh
        return (self.en_spoken or self.en) if spoken else self.en

    def fields(self) -> set[str]:
        out: set[str] = set()
        for text in (self.zh, self.en, self.zh_spoken or "", self.en_spoken or ""):
            out |= {name for _, name, _, _ in string.Formatter().parse(text) if name}
        return out


_P = Phrase
# Refusals are keyed by their reason code (agent/flows/refusals.py).
REFUSALS: dict[str, Phrase] = {
    "unreadable": _P("无法识别此二维码", "This code could not be read"),
    "bad_signature": _P("二维码无效（签名错误）", "Invalid code (signature check failed)",
                        "二维码无效", "Invalid code"),
    "unknown_key": _P("二维码来源不受信任", "Code issued by an unknown issuer"),
    "expired": _P("二维码已过期，请在应用中刷新", "Code has expired; refresh it in the app"),
    "not_yet_valid": _P("二维码尚未生效", "Code is not valid yet"),
    "other_cart": _P("此二维码不属于本服务车", "This code is for another cart"),
    "already_used": _P("此二维码已使用", "This code was already used"),
    "revoked": _P("此二维码已作废", "This code has been revoked"),
    "unknown_parcel": _P("本车没有此包裹", "No such parcel at this cart"),
    "unknown_service": _P("本车不提供此服务", "This service is not offered here"),
    "bad_claims": _P("二维码内容不完整", "The code is missing required information"),
    "not_a_label": _P("请扫描应用中的取件码", "Please scan the code from the app"),
    "label_in_use": _P("此包裹已存放在本车", "This parcel is already stored here"),
    "no_free_compartment": _P("没有合适的空柜格", "No free compartment fits this parcel"),
    "deposit_in_progress": _P("其他快递员正在投递，请稍候",
                              "Another courier is depositing; please wait"),
    "locker_unavailable": _P("柜门暂时无法打开，请联系工作人员",
                             "The locker is unavailable; please ask the attendant"),
    "compartment_failed": _P("柜门未能打开，请联系工作人员",
                             "The compartment did not open; please ask the attendant"),
    "compartment_in_use": _P("此柜格已存放其他物品，请联系工作人员",
                             "That compartment holds something else; please ask the attendant"),
    "out_of_service": _P("此柜格暂停使用，请联系工作人员",
                         "This compartment is out of service; please ask the attendant"),
    "cart_out_of_service": _P("本服务车暂停服务，请稍后再来",
                              "This cart is out of service; please come back later"),
    "storage_full": _P("存储空间已满，暂停服务，请联系工作人员",
                       "Storage is full; service paused, please ask the attendant"),
    "clock_unknown": _P("服务车时钟未校准，暂时无法验证二维码，请联系工作人员",
                        "The cart's clock is not set, so codes cannot be checked; "
                        "please ask the attendant"),
    "busy": _P("服务车忙，请稍后再试", "The cart is busy; please try again"),
}

ANSWERS: dict[str, Phrase] = {
    "already_used_at": _P("此二维码已于 {month}月{day}日 {hm} 使用",
                          "This code was already used on {en_date}",
                          "此二维码已于{month}月{day}日{hour}点{minute}分使用"),
    "opened_pickup": _P("{compartment} 号柜门已打开，取件后请关好柜门",
                        "Compartment {compartment} is open; please close the door afterwards"),
    "opened_meal": _P("{compartment} 号柜门已打开，请取餐后关好柜门",
                      "Compartment {compartment} is open; please take your meal and close "
                      "the door"),
    "meal_printing_in": _P("正在打印餐单，请从 {compartment} 号柜取餐",
                           "Printing your meal receipt; your meal is in {compartment}"),
    "meal_printing": _P("正在打印餐单，请凭单取餐",
                        "Printing your meal receipt; please collect your meal with it"),
    "ticket_printing": _P("正在打印您的排队票：{service_zh} {number} 号",
                          "Printing your ticket: {service_en} No. {number}",
                          "正在打印您的排队票，{service_zh}，{number}号",
                          "Printing your ticket: {service_en}, number {number}"),
    "deposit_enter": _P("投递模式：{name}，请扫描包裹单号",
                        "Deposit mode for {name}: scan a parcel label",
                        "投递模式，请扫描包裹单号", "Deposit mode: scan a parcel label"),
    "deposit_leave": _P("投递模式已结束", "Deposit mode ended"),
    "opened_deposit": _P("{compartment} 号柜门已打开，放入包裹 {label} 后请关门",
                         "Compartment {compartment} is open: put parcel {label} in, then "
                         "close it",
                         "{compartment} 号柜门已打开，放入包裹后请关门",
                         "Compartment {compartment} is open: put the parcel in, then close it"),
    "deposit_stored": _P("包裹 {label} 已存入 {compartment} 号柜",
                         "Parcel {label} stored in compartment {compartment}",
                         "包裹已存入 {compartment} 号柜",
                         "Parcel stored in compartment {compartment}"),
    "opened_manual": _P("{compartment} 号柜门已由工作人员打开",
                        "Compartment {compartment} opened by staff"),
    "open_checking": _P("正在确认 {compartment} 号柜门是否已打开，请稍候",
                        "Checking whether compartment {compartment} has opened; please wait"),
    "forced_open": _P("警报：{compartment} 号柜门被非正常打开",
                      "Alarm: compartment {compartment} opened without a command"),
    "left_open": _P("{compartment} 号柜门未关，请关好柜门",
                    "Compartment {compartment} is still open; please close the door"),
    "not_sprung": _P("{compartment} 号柜门未弹开，请轻拉柜门；如仍打不开请联系工作人员",
                     "Compartment {compartment} did not spring open: pull the door gently, "
                     "or ask the attendant if it stays shut"),
    "open_unconfirmed": _P("未能确认 {compartment} 号柜门已打开，已通知工作人员，请联系工作人员",
                           "Compartment {compartment} could not be confirmed open; the "
                           "attendant has been told, please ask them"),
    "audio_test": _P("语音测试：您好，这是服务车的语音提示", "Voice test: hello, this is the cart "
                     "speaking"),
}

PHRASES: dict[str, Phrase] = {**REFUSALS, **ANSWERS}
# What a resident must not hear in the street: an alarm is for staff (as on the screen).
NOT_SPOKEN = {"forced_open"}

# --- reading aloud --------------------------------------------------------------------

ZH_DIGITS = "零一二三四五六七八九"


def spell_zh(text: object) -> str:
    """An id read character by character: digits in Chinese, letters as letters."""
    return " ".join(ZH_DIGITS[int(c)] if c.isdigit() and c.isascii() else c
                    for c in str(text) if c.isalnum())


def spell_en(text: object) -> str:
    return " ".join(c for c in str(text) if c.isalnum())


def number_zh(value: object) -> str:
    """A whole number as Chinese reads it (0-99999): 12 十二, 105 一百零五, 2000 两千."""
    try:
        n = int(str(value))
    except ValueError:
        return str(value)
    if not 0 <= n < 100_000:
        return spell_zh(str(n))
    if n == 0:
        return "零"
    units = ["", "十", "百", "千", "万"]
    digits = [int(c) for c in str(n)]
    out, zero = "", False
    for i, d in enumerate(digits):
        place = len(digits) - 1 - i
        if d == 0:
            zero = True
            continue
        if zero and out:
            out += "零"
        zero = False
        word = "两" if d == 2 and place >= 3 else ZH_DIGITS[d]
        if d == 1 and place == 1 and not out:  # 十二, not 一十二
            word = ""
        out += word + units[place]
    return out


def minute_zh(value: object) -> str:
    n = int(str(value))
    return number_zh(n) if n >= 10 or n == 0 else "零" + ZH_DIGITS[n]


SPOKEN: dict[str, dict[str, Callable[[object], str]]] = {
    "zh": {"compartment": spell_zh, "label": spell_zh, "number": number_zh, "month": number_zh,
           "day": number_zh, "hour": number_zh, "minute": minute_zh},
    "en": {"compartment": spell_en, "label": spell_en},
}


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""  # a fact not given: a gap in the sentence rather than a crash


def render(key: str, params: Mapping[str, Any], lang: str, spoken: bool = False) -> str:
    phrase = PHRASES[key]
    values = dict(params)
    if spoken:
        for name, fmt in SPOKEN.get(lang, {}).items():
            if name in values and values[name] is not None:
                try:
                    values[name] = fmt(values[name])
                except ValueError:
                    values[name] = str(values[name])
    return phrase.template(lang, spoken).format_map(_Blank(values))


def screen(key: str, params: Mapping[str, Any]) -> tuple[str, str]:
    """What the screens show: (Chinese, English)."""
    return render(key, params, "zh"), render(key, params, "en")


def spoken(key: str, params: Mapping[str, Any], lang: str) -> str:
    """What the speaker says in `lang` ("zh" or "en")."""
    return render(key, params, lang, spoken=True)


def params_for(key: str, facts: Mapping[str, Any]) -> dict[str, Any]:
    """The facts a phrase's words use, taken from an answer's details."""
    return {name: facts[name] for name in PHRASES[key].fields() if name in facts}
