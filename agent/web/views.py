"""The routes of both screens: the resident display (`/`, `/events`) and the attendant console
(`/attendant/...`).

Every POST is checked in the same order before anything else: body size, Origin, session,
CSRF token. Then the form fields are checked (length, known compartment, a reason), and only
then does the action run, through the cart's actions (agent.ports.CartActions) on the flow
thread. Every POST answers with
a redirect and a flash message (post/redirect/get), so a reload never repeats an action.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import bottle
from bottle import Bottle, request, response

from agent.flows.actions import MAX_REASON, ActionError
from agent.ports import CartActions, ConfigView, Feeds, HealthView, ReadModel
from agent.web import present
from agent.web.auth import Lockout, Session, Sessions, csrf_ok
from agent.web.guard import same_origin
from agent.web.requests import (
    DAY,
    TOO_LONG,
    TX_ID,
    Outcome,
    Refusal,
    client_address,
    field,
    redirect,
    refused_page,
    render,
)
from agent.web.stream import resident_stream

log = logging.getLogger("agent.web")

HERE = Path(__file__).parent
STATIC_DIR = str(HERE / "static")
COOKIE = "cart_console"
MAX_BODY = 16 * 1024
BY = "attendant"
Page = TypeVar("Page", bound=Callable[..., Any])


@dataclass
class WebContext:
    actions: CartActions
    read: ReadModel
    health: HealthView
    config: ConfigView
    feeds: Feeds
    sessions: Sessions
    lockout: Lockout
    stopping: Callable[[], bool]


def build_app(web: WebContext) -> Bottle:
    app = Bottle(catchall=True)
    read, health = web.read, web.health

    def cfg() -> Any:
        return web.config.config  # the config in effect now (a push may replace it)

    def current_session() -> Session | None:
        return web.sessions.get(request.get_cookie(COOKIE))

    def set_cookie(session: Session) -> None:
        response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict", path="/")

    def guard(authenticated: bool = True) -> Session:
        """The checks every POST passes before its form is even read; raises a 403 page."""
        if (request.content_length or 0) > MAX_BODY:
            raise refused_page(413, *TOO_LONG)
        if not same_origin():
            log.warning("refused a POST to %s from another origin", request.path)
            raise refused_page(403, "请求来源不符，未执行", "Request from another site refused; "
                               "nothing was done")
        session = current_session()
        if session is None and not authenticated:
            # The login form outlived its session (idle, or the daemon restarted).
            raise refused_page(403, "页面已过期，请返回重新输入 PIN",
                               "The page expired; go back and enter the PIN again")
        if session is None or (authenticated and not session.authenticated):
            raise refused_page(403, "请先登录", "Please log in first; nothing was done")
        if not csrf_ok(session, request.forms.getunicode("csrf")):
            log.warning("refused a POST to %s without a valid form token", request.path)
            raise refused_page(403, "表单已失效，请刷新页面后重试，未执行",
                               "Form token missing or wrong (reload the page); nothing was done")
        return session

    def actions() -> CartActions:
        return web.actions

    def get(path: str) -> Callable[[Page], Page]:
        def register(page: Page) -> Page:
            app.route(path, "GET", page)
            return page
        return register

    def post_raw(path: str) -> Callable[[Page], Page]:
        def register(page: Page) -> Page:
            app.route(path, "POST", page)
            return page
        return register

    def post(path: str) -> Callable[[Callable[[], Outcome]], Callable[[], Any]]:
        """Register an attendant action: guard, run, flash the outcome, redirect back."""
        def register(act: Callable[[], Outcome]) -> Callable[[], Any]:
            def handler() -> str:
                session = guard()
                back = "/attendant"
                try:
                    outcome = act()
                    back = outcome.back
                    session.flash.append(("ok", outcome.zh, outcome.en))
                except Refusal as exc:
                    session.flash.append(("error", exc.zh, exc.en))
                except ActionError as exc:
                    session.flash.append(("error", "未执行", f"Not done: {exc}"))
                except (TimeoutError, queue.Full):
                    session.flash.append(("error", "服务车忙，请稍后再试",
                                          "The cart is busy; try again"))
                return redirect(back)
            app.route(path, "POST", handler)
            return handler
        return register

    def compartment_field() -> str:
        comp = field("compartment", 8)
        if not comp:
            raise Refusal("请选择柜格", "Choose a compartment")
        if comp not in present.compartment_ids(read):
            raise Refusal(f"本车没有 {comp} 号柜", f"No compartment {comp} on this cart")
        return comp

    def reason_field(what_zh: str = "原因", what_en: str = "A reason") -> str:
        reason = field("reason", MAX_REASON)
        if not reason:
            raise Refusal(f"请填写{what_zh}，未执行", f"{what_en} is required; nothing was done")
        if any(ord(c) < 32 for c in reason):
            raise Refusal("原因含有无效字符，未执行", "The reason has invalid characters")
        return reason

    def on_field() -> bool:
        value = field("on", 8)
        if value not in ("0", "1"):
            raise Refusal("请求无效", "Bad request")
        return value == "1"

    # --- the resident screen ---------------------------------------------------------------

    @get("/")
    def resident() -> str:
        now = cfg()
        services = [(s.zh, s.en) for s in now.ticket_services.values()]
        return render("resident", title="便民服务车 Service cart", cart_id=now.cart_id,
                      locker=bool(now.locker.enabled and now.locker.compartments),
                      services=services, status=present.resident_status(read, health),
                      tz=now.timezone, answer_s=now.web.answer_s)

    @get("/events")
    def events() -> Any:
        response.content_type = "text/event-stream; charset=utf-8"
        return resident_stream(web.feeds, read, health, web.stopping,
                               lambda: cfg().web.answer_s)

    @get("/static/<path:path>")
    def static(path: str) -> Any:
        return bottle.static_file(path, root=STATIC_DIR)

    # --- logging in and out -------------------------------------------------------------

    @get("/attendant")
    def console() -> str:
        session = current_session()
        if session is None or not session.authenticated:
            return login_page(session)
        flash, session.flash = session.flash, []
        now = cfg()
        return render("console", title="工作人员 Attendant", cart_id=now.cart_id,
                      csrf=session.csrf, flash=flash, devices=present.devices(health),
                      sync=present.sync_state(read, health, now.tz),
                      grid=present.grid(read, now.tz), deposit=read.deposit_active(),
                      cart_oos=read.out_of_service(), receipts=present.receipts(read, now),
                      audio=now.audio.kind != "none")

    def login_page(session: Session | None) -> str:
        if session is None:
            session = web.sessions.create()
            set_cookie(session)
        flash, session.flash = session.flash, []
        # The lock is said once: by the flash right after a try, by the notice otherwise.
        until = None if flash else web.lockout.locked_until(client_address())
        now = cfg()
        return render("login", title="工作人员登录 Attendant login", cart_id=now.cart_id,
                      csrf=session.csrf, flash=flash,
                      locked=present.local_time(now.tz, until, "%H:%M:%S") if until else "",
                      no_pin=not now.security.attendant_pin_hash)

    @post_raw("/attendant/login")
    def login() -> str:
        session = guard(authenticated=False)
        try:
            pin = field("pin", 64)
        except Refusal as exc:
            session.flash.append(("error", exc.zh, exc.en))
            return redirect("/attendant")
        if not pin:
            session.flash.append(("error", "请输入 PIN", "Enter the PIN"))
            return redirect("/attendant")
        now = cfg()
        result = web.lockout.attempt(pin, now.security.attendant_pin_hash,
                                     now.web.lockout_failures, now.web.lockout_s,
                                     client=client_address())
        if result.ok:
            fresh = web.sessions.login(session)
            set_cookie(fresh)
            fresh.flash.append(("ok", "已登录", "Logged in"))
            log.info("attendant logged in")
            return redirect("/attendant")
        if result.no_pin:
            session.flash.append(("error", "尚未设置工作人员 PIN，无法登录",
                                  "no attendant PIN configured (cart-agent hash-pin)"))
        elif result.locked_until is not None:
            when = present.local_time(now.tz, result.locked_until, "%H:%M:%S")
            session.flash.append(("error", f"PIN 错误次数过多，已锁定至 {when}",
                                  f"Too many wrong PINs: locked until {when}"))
            if result.failures >= now.web.lockout_failures:
                log.warning("attendant console locked until %s after %d wrong PINs", when,
                            result.failures)
        else:
            left = now.web.lockout_failures - result.failures
            session.flash.append(("error", f"PIN 不正确，还可尝试 {left} 次",
                                  f"Wrong PIN; {left} tries left before the lock"))
            log.warning("wrong attendant PIN (%d of %d)", result.failures,
                        now.web.lockout_failures)
        return redirect("/attendant")

    @post_raw("/attendant/logout")
    def logout() -> str:
        session = guard()
        web.sessions.drop(session.token)
        fresh = web.sessions.create()
        fresh.flash.append(("ok", "已退出", "Logged out"))
        set_cookie(fresh)
        log.info("attendant logged out")
        return redirect("/attendant")

    # --- actions --------------------------------------------------------------------------

    @post("/attendant/open")
    def open_compartment() -> Outcome:
        comp = compartment_field()
        reason = reason_field("开柜原因", "A reason for opening")
        result = actions().open_compartment(comp, reason, by=BY, source="console")
        if result.get("outcome") == "unknown":
            log.warning("attendant open of %s: no answer from the lock board (%s)", comp,
                        result["tx_id"])
            return Outcome(f"{comp} 号柜：锁板未回复，未重发开锁指令，正在观察柜门是否打开",
                           f"Compartment {comp}: no answer from the lock board; the open was "
                           "not sent again, watching whether the door opens")
        log.info("attendant opened %s (%s)", comp, result["tx_id"])
        return Outcome(f"{comp} 号柜门已打开（已记录原因）",
                       f"Compartment {comp} opened; the reason is recorded")

    @post("/attendant/service")
    def compartment_service() -> Outcome:
        comp = compartment_field()
        on = on_field()
        reason = reason_field()
        actions().set_out_of_service(on, by=BY, compartment=comp, reason=reason)
        log.info("attendant set %s %s", comp, "out of service" if on else "back in service")
        if on:
            return Outcome(f"{comp} 号柜已停用", f"Compartment {comp} is out of service")
        return Outcome(f"{comp} 号柜已恢复使用", f"Compartment {comp} is back in service")

    @post("/attendant/cart-service")
    def cart_service() -> Outcome:
        on = on_field()
        reason = reason_field()
        actions().set_out_of_service(on, by=BY, reason=reason)
        log.info("attendant set the cart %s", "out of service" if on else "back in service")
        if on:
            return Outcome("整车已暂停服务", "The cart is out of service")
        return Outcome("整车已恢复服务", "The cart is back in service")

    @post("/attendant/deposit")
    def deposit() -> Outcome:
        on = on_field()
        active = actions().deposit_mode(on, BY)["deposit_mode"]
        log.info("attendant turned deposit mode %s", "on" if active else "off")
        if active:
            return Outcome("投递模式已开启，请扫描包裹单号", "Deposit mode on: scan parcel labels")
        return Outcome("投递模式已关闭", "Deposit mode off")

    @post("/attendant/reprint")
    def reprint() -> Outcome:
        tx_id = field("tx_id", 26).upper()
        if not TX_ID.match(tx_id):
            raise Refusal("请输入 26 位交易编号", "Enter a 26-character transaction id")
        try:
            actions().reprint(tx_id, by=BY)
        except ActionError:
            raise Refusal("没有这笔交易的凭条，未补打",
                          f"No receipt for transaction {tx_id}; nothing printed") from None
        log.info("attendant reprinted the receipt of %s", tx_id)
        return Outcome("正在补打凭条", f"Reprinting the receipt of {tx_id}")

    @post("/attendant/audio-test")
    def audio_test() -> Outcome:
        result = actions().test_audio(by=BY)
        log.info("attendant played the test prompt")
        if result["problem"]:
            raise Refusal("扬声器故障，测试语音无法播放", f"The speaker fails: {result['problem']}")
        return Outcome("正在播放测试语音", f"Playing the test prompt "
                       f"({', '.join(result['languages'])})")

    def day_field(value: str | None) -> str | None:
        if not value:
            return None
        if len(value) > 10 or not DAY.match(value):
            raise Refusal("日期格式应为 YYYY-MM-DD", "The day must be YYYY-MM-DD")
        return value

    @get("/attendant/report")
    def report_page() -> Any:
        session = current_session()
        if session is None or not session.authenticated:
            return redirect("/attendant")
        flash, session.flash = session.flash, []
        try:
            raw = read.day_report(day_field(request.query.getunicode("day")))
        except (Refusal, ValueError) as exc:
            zh, en = (exc.zh, exc.en) if isinstance(exc, Refusal) else ("日期无效", str(exc))
            session.flash.append(("error", zh, en))
            return redirect("/attendant/report")
        now = cfg()
        return render("report", title="日报 Day report", cart_id=now.cart_id,
                      csrf=session.csrf, flash=flash, report=present.report(now, raw))

    @post("/attendant/report/print")
    def print_report() -> Outcome:
        day = day_field(field("day", 10))
        try:
            result = actions().print_report(day, by=BY)
        except ValueError as exc:
            raise Refusal("日期无效", str(exc)) from None
        log.info("attendant printed the report of %s", result["day"])
        return Outcome(f"正在打印 {result['day']} 日报", f"Printing the report of {result['day']}",
                       back=f"/attendant/report?day={result['day']}")

    # --- errors ---------------------------------------------------------------------------

    def error_page(status: int, zh: str, en: str) -> Callable[[Any], str]:
        def page(_: Any) -> str:
            return render("refused", title=en, zh=zh, en=en, back="/")
        app.error(status)(page)
        return page

    error_page(404, "没有这个页面", "Not found")
    error_page(405, "不允许的请求方式", "Method not allowed")
    error_page(500, "内部错误，已记录", "Internal error; it was logged")
    return app
