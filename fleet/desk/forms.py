"""The pages that change something: log in and out, acknowledge an alarm, push a config and
send a command (each through a confirmation page that shows what will change)."""

from __future__ import annotations

import json

from bottle import Bottle, request

from agent.contract import SIGNATURES
from agent.web.guard import same_origin
from fleet.desk import actions, auth, queries
from fleet.desk.live import refresh_alarm_counts
from fleet.desk.pages import cart_arg
from fleet.desk.web import (
    DeskContext,
    Refusal,
    arg,
    form,
    guard,
    redirect,
    render,
    safe_path,
    set_cookie,
    viewer,
)
from fleet.operations import retained_desired

MAX_NOTE = 500


def _target(value: str) -> str:
    return "_all" if value == "_all" else cart_arg(value)


def _back_to(target: str, action: int) -> str:
    return f"/carts/{target}?action={action}" if target != "_all" else f"/actions#a{action}"


def install(app: Bottle, ctx: DeskContext) -> None:
    def acting(session: auth.Session) -> None:
        if not session.can_act:
            raise Refusal(403, "只读账户不能操作", "A viewer account cannot act")

    @app.get("/login")
    def login_form() -> str:
        return render("login", ctx, None, title="登录 Log in", failed=arg("failed", 4) == "1",
                      locked=arg("locked", 4) == "1", next=arg("next", 200, "/fleet"))

    @app.post("/login")
    def login() -> str:
        # No session yet, so no CSRF token to check: the Origin check keeps other sites from
        # logging someone in here.
        if not same_origin():
            raise Refusal(403, "请求来源不符", "Request from another site refused")
        name = form("username", 64).strip().lower()
        result = auth.login(ctx.db, name, form("password", auth.PASSWORD_MAX + 1))
        if not result.ok:
            return redirect("/login?failed=1" + ("&locked=1" if result.locked_until else ""))
        set_cookie(auth.open_session(ctx.db, result.username))
        return redirect(safe_path(form("next", 200), "/fleet"))

    @app.post("/logout")
    def logout() -> str:
        guard(ctx, act=False)
        auth.close_session(ctx.db, request.get_cookie("desk_session"))
        return redirect("/login")

    @app.post("/alarms/<alarm_id:int>/ack")
    def ack(alarm_id: int) -> str:
        session = guard(ctx)
        if not 0 < alarm_id < 2**63:
            raise Refusal(404, "没有这条警报", "No such alarm")
        note = form("note", MAX_NOTE).strip()
        if any(ord(c) < 32 for c in note):
            raise Refusal(400, "备注含有无效字符", "The note has invalid characters")
        with ctx.db.connection() as conn:
            row = conn.execute("UPDATE desk_alarms SET acked_at = now(), acked_by = %s, "
                               "ack_note = %s WHERE id = %s AND acked_at IS NULL "
                               "RETURNING cart, kind", (session.username, note, alarm_id)
                               ).fetchone()
            if row is not None:
                refresh_alarm_counts(conn, [row["cart"]])
        if row is not None:
            actions.record(ctx.db, session.username, "ack", row["cart"],
                           {"alarm": alarm_id, "kind": row["kind"], "note": note}, "done")
        return redirect(safe_path(form("back", 200), "/alarms"))

    # --- config push ------------------------------------------------------------------

    @app.get("/act/push")
    def push_form() -> str:
        session = viewer(ctx)
        acting(session)
        target = _target(arg("target", 32, "_all"))
        current = retained_desired(ctx.broker, target)
        card = queries.cart_card(ctx.db, target) if target != "_all" else None
        text = json.dumps((current or {}).get("config") or {}, ensure_ascii=False, indent=2)
        return render("push", ctx, session, title="推送配置 Push config", nav="fleet",
                      target=target, current=current, text=text,
                      version=actions.next_version(current, (card or {}).get("reported")),
                      signed=ctx.signer is not None)

    @app.post("/act/push/preview")
    def push_preview() -> str:
        session = guard(ctx)
        target = _target(form("target", 32))
        preview = actions.preview_push(ctx.broker, target, form("version", 20),
                                       form("document", actions.MAX_DOCUMENT))
        return render("push_confirm", ctx, session, title="确认推送 Confirm push", nav="fleet",
                      p=preview, signed=ctx.signer is not None)

    @app.post("/act/push/confirm")
    def push_confirm() -> str:
        session = guard(ctx)
        target = _target(form("target", 32))
        try:
            version = int(form("version", 20))
        except ValueError:
            raise Refusal(400, "版本号无效", "Bad version") from None
        seen = form("seen_version", 20)
        action = actions.confirm_push(ctx.db, ctx.broker, ctx.signer, session.username, target,
                                      version, form("document", actions.MAX_DOCUMENT),
                                      int(seen) if seen.isdigit() else None)
        return redirect(_back_to(target, action))

    # --- commands ---------------------------------------------------------------------

    @app.get("/act/command")
    def command_form() -> str:
        session = viewer(ctx)
        acting(session)
        cart = cart_arg(arg("cart", 32))
        return render("command", ctx, session, title="发送命令 Send command", nav="fleet",
                      cart=cart, card=queries.cart_card(ctx.db, cart), names=sorted(SIGNATURES),
                      signatures=SIGNATURES, name=arg("name", 32), args=arg("args", 200))

    @app.post("/act/command/preview")
    def command_preview() -> str:
        session = guard(ctx)
        cart = cart_arg(form("cart", 32))
        preview = actions.preview_command(cart, form("name", 32), form("args", 600))
        return render("command_confirm", ctx, session, title="确认命令 Confirm command",
                      nav="fleet", p=preview, card=queries.cart_card(ctx.db, cart),
                      args_text=form("args", 600), signed=ctx.signer is not None)

    @app.post("/act/command/confirm")
    def command_confirm() -> str:
        session = guard(ctx)
        cart = cart_arg(form("cart", 32))
        action = actions.confirm_command(ctx.db, ctx.broker, ctx.signer, session.username, cart,
                                         form("name", 32), form("args", 600))
        return redirect(_back_to(cart, action))

