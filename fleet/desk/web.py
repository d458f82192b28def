"""The desk's web plumbing: security headers, templates, the checks every POST passes.

Every POST is checked in the same order before its form is read: body size, Origin, a
logged-in session, the session's CSRF token, and for acting the manager role. Every POST
answers with a redirect (post/redirect/get), so a reload never repeats an action.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import bottle
from bottle import HTTPResponse, request, response

from agent.web.guard import same_origin
from fleet.client import BrokerOptions
from fleet.desk import auth, i18n
from fleet.desk.db import Database
from fleet.operations import Signer

log = logging.getLogger("fleet.desk")

HERE = Path(__file__).parent
STATIC_DIR = str(HERE / "static")
TEMPLATES = [str(HERE / "templates")]
COOKIE = "desk_session"
MAX_BODY = 96 * 1024

@dataclass
class DeskContext:
    db: Database
    broker: BrokerOptions
    signer: Signer | None
    tz: ZoneInfo
    table: str
    clock: Callable[[], float] = time.time


class Refusal(Exception):
    def __init__(self, status: int, zh: str, en: str) -> None:
        super().__init__(en)
        self.status, self.zh, self.en = status, zh, en


def render(template: str, ctx: DeskContext, session: auth.Session | None = None, /,
           **values: Any) -> str:
    now = ctx.clock()
    return str(bottle.template(template, template_lookup=TEMPLATES, session=session, tz=ctx.tz,
                               now=now, i18n=i18n, local=lambda t, f="%m-%d %H:%M":
                               i18n.local(t, ctx.tz, f), **values))


def refused_page(ctx: DeskContext, exc: Refusal, session: auth.Session | None = None
                 ) -> HTTPResponse:
    body = render("refused", ctx, session, title="未执行 Refused", zh=exc.zh, en=exc.en)
    return HTTPResponse(body, exc.status, {"Content-Type": "text/html; charset=utf-8"})


def safe_path(value: str, default: str) -> str:
    """A local path to go back to after a form: never another site, never a header break."""
    ok = (value.startswith("/") and not value.startswith("//") and "\\" not in value
          and not any(ord(c) < 32 or ord(c) == 127 for c in value))
    return value if ok else default


def redirect(to: str) -> str:
    response.status = 303
    response.set_header("Location", to)
    return ""


def form(name: str, max_len: int) -> str:
    value = request.forms.getunicode(name)
    if value is None:
        return ""
    if len(value) > max_len:
        raise Refusal(413, "输入过长，未执行", "Input too long; nothing was done")
    return str(value)


def arg(name: str, max_len: int = 64, default: str = "") -> str:
    value = request.query.getunicode(name)
    return default if value is None else str(value)[:max_len]


def current_session(ctx: DeskContext) -> auth.Session | None:
    return auth.find_session(ctx.db, request.get_cookie(COOKIE))


def set_cookie(token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=request.urlparts.scheme == "https")


def viewer(ctx: DeskContext) -> auth.Session:
    """A page: any logged-in user, else off to the login form."""
    session = current_session(ctx)
    if session is None:
        raise HTTPResponse(status=303, headers={
            "Location": "/login?" + urllib.parse.urlencode({"next": _next()})})
    return session


def _next() -> str:
    path = request.fullpath + ("?" + request.query_string if request.query_string else "")
    return path if path.startswith("/") and not path.startswith("//") else "/"


def guard(ctx: DeskContext, act: bool = True) -> auth.Session:
    """What every POST passes before its form is read; raises a refusal page."""
    if (request.content_length or 0) > MAX_BODY:
        raise Refusal(413, "请求过大，未执行", "Request too large; nothing was done")
    if not same_origin():
        log.warning("refused a POST to %s from another origin", request.path)
        raise Refusal(403, "请求来源不符，未执行",
                      "Request from another site refused; nothing was done")
    session = current_session(ctx)
    if session is None:
        raise Refusal(403, "请先登录，未执行", "Please log in first; nothing was done")
    if not auth.csrf_ok(session, request.forms.getunicode("csrf")):
        log.warning("refused a POST to %s without a valid form token", request.path)
        raise Refusal(403, "表单已失效，请刷新页面后重试，未执行",
                      "Form token missing or wrong (reload the page); nothing was done")
    if act and not session.can_act:
        log.warning("refused %s to %s (role %s)", request.path, session.username, session.role)
        raise Refusal(403, "只读账户不能操作，未执行",
                      "A viewer account cannot act; nothing was done")
    return session


def parse_day(text: str, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(text) if text else default
    except ValueError:
        raise Refusal(400, "日期格式错误", "Bad date: use YYYY-MM-DD") from None
