"""What every route of the screens uses to read a request and answer it: the refusal with its
words, the outcome of an action, rendering, redirects, bounded form fields, and the checks of
where a request comes from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bottle
from bottle import HTTPResponse, request, response

HERE = Path(__file__).parent
TEMPLATE_LOOKUP = [str(HERE / "templates")]
TOO_LONG = ("输入过长，未执行", "Input too long; nothing was done")
TX_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Refusal(Exception):
    """A request refused before anything was done, with the words to tell the attendant."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


@dataclass(frozen=True)
class Outcome:
    zh: str
    en: str
    back: str = "/attendant"


def render(name: str, **values: Any) -> str:
    return str(bottle.template(name, template_lookup=TEMPLATE_LOOKUP, **values))


def refused_page(status: int, zh: str, en: str, back: str = "/attendant") -> HTTPResponse:
    body = render("refused", title="未执行 Refused", zh=zh, en=en, back=back)
    return HTTPResponse(body, status, {"Content-Type": "text/html; charset=utf-8"})


def redirect(to: str) -> str:
    # Set on the shared response rather than returned as an HTTPResponse, which would replace
    # its headers and so drop a session cookie set for this answer.
    response.status = 303
    response.set_header("Location", to)
    return ""


def field(name: str, max_len: int) -> str:
    value = request.forms.getunicode(name)
    if value is None:
        return ""
    if len(value) > max_len:
        raise Refusal(*TOO_LONG)
    return str(value).strip()


def client_address() -> str:
    """Who is guessing PINs: the peer address as the server saw it (never a header)."""
    return str(request.environ.get("REMOTE_ADDR") or "")[:64]
