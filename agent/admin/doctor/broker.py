"""The broker, step by step: DNS, TCP, TLS, login, and a round trip on the cart's own topics.

DNS, TCP and TLS are tried by the doctor itself (no MQTT session: nothing the broker could
confuse with the cart). Login and the round trip are the running agent's own connection when
one runs (see context.py); without one, the doctor logs in as the cart, publishes a probe at
QoS 1 on the cart's own `cmd/result` topic (an id no command has, so nobody acts on it) and
needs the broker's PUBACK (MQTT 5: with a success reason code, so an ACL refusal shows).
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import time

from agent.admin.doctor.context import Context
from agent.admin.doctor.report import Check, fail, ok, skip
from agent.contract import Topics

TIMEOUT_S = 5.0


def broker_checks(ctx: Context) -> list[Check]:
    m = ctx.cfg.mqtt
    if not m.enabled:
        return [skip("broker", "not configured (mqtt.enabled = false): the cart stays offline")]
    names = ("broker dns", "broker tcp", "broker tls", "broker login", "broker round trip")
    out: list[Check] = []
    for step in (_dns, _tcp, _tls):
        check = step(ctx)
        out.append(check)
        if check.failed:
            return out + [skip(n, f"not tried ({check.name} failed)")
                          for n in names[len(out):]]
    login = _agent_session(ctx) if ctx.running else _own_session(ctx)
    if login.failed and login.name == "broker round trip":
        return [*out, ok("broker login", f"logged in as {ctx.cfg.mqtt.username or 'anonymous'}"),
                login]
    if login.failed:
        return [*out, login, skip("broker round trip", "not tried (broker login failed)")]
    return [*out, ok("broker login", login.detail.split("; ")[0]),
            ok("broker round trip", login.detail.split("; ")[1])]


def _dns(ctx: Context) -> Check:
    host, port = ctx.cfg.mqtt.host, ctx.cfg.mqtt.port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return fail("broker dns", f"{host}: {exc.strerror}",
                    "check mqtt.host and the cart's DNS (resolvectl status)")
    addrs = sorted({str(i[4][0]) for i in infos})
    return ok("broker dns", f"{host} -> {', '.join(addrs[:3])}")


def _tcp(ctx: Context) -> Check:
    m = ctx.cfg.mqtt
    started = time.monotonic()
    try:
        with socket.create_connection((m.host, m.port), timeout=TIMEOUT_S):
            pass
    except OSError as exc:
        return fail("broker tcp", f"{m.host}:{m.port}: {exc.strerror or exc}",
                    "check mqtt.port, the mobile link and any firewall on the way")
    return ok("broker tcp", f"{m.host}:{m.port} connected in "
                            f"{(time.monotonic() - started) * 1000:.0f} ms")


def _tls(ctx: Context) -> Check:
    m = ctx.cfg.mqtt
    if not m.tls:
        return skip("broker tls", "mqtt.tls = false (plain MQTT)")
    try:
        context = ssl.create_default_context(cafile=m.ca_file or None)
        if m.cert_file:
            context.load_cert_chain(m.cert_file, m.key_file or None)
        with socket.create_connection((m.host, m.port), timeout=TIMEOUT_S) as raw, \
                context.wrap_socket(raw, server_hostname=m.host) as tls:
            version = tls.version()
    except ssl.SSLCertVerificationError as exc:
        return fail("broker tls", f"certificate not trusted: {exc.verify_message}",
                    "check mqtt.ca_file (the fleet's CA) and the cart's clock")
    except (ssl.SSLError, OSError) as exc:
        return fail("broker tls", f"handshake failed: {exc}",
                    "check that mqtt.port is the broker's TLS listener and mqtt.ca_file")
    return ok("broker tls", f"{version}, certificate verified for {m.host}")


def _agent_session(ctx: Context) -> Check:
    """The agent's own session; when passed, its detail is "login; round trip"."""
    snap = ctx.service("sync")
    if snap is None:
        return fail("broker login", "the running agent has no broker link",
                    "journalctl -u cart-agent")
    if snap.get("ok"):
        return ok("broker login", f"the agent is connected (MQTT {snap.get('protocol')}) as "
                                  f"{ctx.cfg.mqtt.username or 'anonymous'}; the broker "
                                  "acknowledges the agent's publishes on its own topics")
    return fail("broker login", f"the agent reports: {snap.get('error')}", _login_fix(ctx))


def _login_fix(ctx: Context) -> str:
    m = ctx.cfg.mqtt
    where = f"mqtt.password_file ({m.password_file})" if m.password_file else "mqtt.password"
    return (f"check mqtt.username ({m.username or 'none'}) and {where} against the broker's "
            "password file (mosquitto_passwd)")


def _own_session(ctx: Context) -> Check:
    """Log in as the cart; when passed, its detail is "login; round trip"."""
    from agent.sync.link import MQTT5, Connected, Link, LinkError, PubAck, Refused

    m = ctx.cfg.mqtt
    topics = Topics(m.topic_prefix, ctx.cfg.cart_id)
    try:
        link = Link(m, f"cart-{ctx.cfg.cart_id}", MQTT5, None, max_inflight=1)
        link.open()
    except LinkError as exc:
        return fail("broker login", str(exc), _login_fix(ctx))
    try:
        deadline = time.monotonic() + TIMEOUT_S
        mid = None
        while time.monotonic() < deadline:
            for event in link.poll(0.1):
                if isinstance(event, Refused):
                    return fail("broker login", event.reason, _login_fix(ctx))
                if isinstance(event, Connected):
                    probe = {"id": f"doctor-{os.urandom(6).hex()}", "ok": True,
                             "result": {"probe": "cart-agent doctor"}}
                    mid = link.publish(topics.result, json.dumps(probe).encode(), qos=1)
                if isinstance(event, PubAck) and event.mid == mid:
                    if event.ok:
                        return ok("broker login", f"logged in as {m.username or 'anonymous'}"
                                  f"; a probe on {topics.result} was acknowledged")
                    return fail("broker round trip", f"logged in, but a publish on "
                                f"{topics.result} was refused: {event.reason}",
                                "the broker's ACL must let the cart write its own topics "
                                "(config/mosquitto/acl)")
        what = "no CONNACK" if mid is None else "no PUBACK for the probe"
        return fail("broker login" if mid is None else "broker round trip",
                    f"{what} within {TIMEOUT_S:.0f} s",
                    "the broker is overloaded or something on the way drops packets")
    finally:
        link.close()
