"""The kiosk: the screens answer, and a resident screen is connected to them.

The resident page holds an event stream open (`/events`) for as long as it is shown; the
running agent counts those streams (web health `resident_screens`). The screens listen on
loopback by default, so a connected one is the kiosk's browser. A screen that went away is
noticed at the stream's next write (a ping every 15 s), so the count can lag by that much.
"""

from __future__ import annotations

import http.client

from agent.admin.doctor.context import Context
from agent.admin.doctor.report import Check, fail, ok, skip

MARKER = 'class="page-resident"'
KIOSK_FIX = ("systemctl restart cart-kiosk (journalctl -u cart-kiosk says why it is not "
             "showing); if the attendant console is open it returns within a minute")


def kiosk_checks(ctx: Context) -> list[Check]:
    web = ctx.cfg.web
    if not web.enabled:
        return [skip("kiosk", "no screens (web.enabled = false)")]
    host = "127.0.0.1" if web.listen in ("0.0.0.0", "::", "") else web.listen
    port = web.port
    snap = ctx.service("web") or {}
    if isinstance(snap.get("port"), int):
        port = snap["port"]  # what the agent really bound (the config may say 0 in tests)
    url = f"http://{host}:{port}/"
    try:
        conn = http.client.HTTPConnection(host, port, timeout=5)
        try:
            conn.request("GET", "/")
            reply = conn.getresponse()
            body = reply.read(65536).decode("utf-8", "replace")
        finally:
            conn.close()
    except OSError as exc:
        return [fail("kiosk", f"{url}: {exc.strerror or exc}",
                     "the agent serves the screens: systemctl status cart-agent")]
    if reply.status != 200 or MARKER not in body:
        return [fail("kiosk", f"{url} answered {reply.status}, not the resident page",
                     "check web.listen and web.port in the config")]
    if not ctx.running:
        return [fail("kiosk", f"{url} answers, but no agent answers on the control socket",
                     "systemctl start cart-agent")]
    screens = snap.get("resident_screens")
    if not isinstance(screens, int) or screens < 1:
        return [fail("kiosk", f"{url} serves the resident page, but no screen shows it",
                     KIOSK_FIX)]
    return [ok("kiosk", f"{url}: {screens} resident screen(s) showing it")]
