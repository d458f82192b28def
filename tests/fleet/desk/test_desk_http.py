"""The desk over plain HTTP, attacked: redirects, bad parameters, hostile documents and
records, oversized bodies, headers on every answer."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleet.desk.rig import MANAGER, DeskRig, LightCart, http, login_http
from tests.postgres_cluster import PostgresCluster


@pytest.fixture
def bare(tmp_path: Path, pg: PostgresCluster) -> Iterator[DeskRig]:
    r = DeskRig(tmp_path, pg, carts=())
    try:
        yield r
    finally:
        r.close()


def test_login_and_redirects_stay_on_the_desk(bare: DeskRig) -> None:
    reply = http(bare, "GET", "/usage?from=2026-01-01&to=2026-01-31")
    assert reply.status == 303
    assert reply.headers["Location"] == "/login?next=%2Fusage%3Ffrom%3D2026-01-01%26to%3D2026-01-31"
    for target in ("//evil.example/x", "https://evil.example/", "/x\r\nSet-Cookie: a=b",
                   "/\\evil.example"):
        done = http(bare, "POST", "/login", {"username": MANAGER[0], "password": MANAGER[1],
                                             "next": target})
        assert done.status == 303
        assert done.headers["Location"] == "/fleet", target
    wrong = http(bare, "POST", "/login", {"username": MANAGER[0], "password": "nope" * 3})
    assert wrong.status == 303
    assert wrong.headers["Location"] == "/login?failed=1"
    assert wrong.cookie() is None
    other = http(bare, "POST", "/login", {"username": MANAGER[0], "password": MANAGER[1]},
                 headers={"Origin": "http://evil.example"})
    assert other.status == 403
    assert other.cookie() is None
    for path in ("/fleet", "/fleet/cards", "/alarms", "/usage.csv", "/actions", "/carts/bc-01"):
        assert http(bare, "GET", path).status == 303, path


def test_bad_parameters_get_a_clear_answer(bare: DeskRig) -> None:
    cookie, csrf = login_http(bare, MANAGER)
    for path, status, says in [
        ("/usage?from=yesterday", 400, "YYYY-MM-DD"),
        ("/usage?from=2020-01-01&to=2026-01-01", 400, "Range too long"),
        ("/usage?cart=../etc", 404, "No such cart"),
        ("/carts/BC%2001", 404, "No such cart"),
        ("/carts/bc-77", 404, "No cart bc-77"),
        ("/nowhere", 404, "No such page"),
    ]:
        reply = http(bare, "GET", path, cookie=cookie)
        assert reply.status == status
        assert says in reply.body, path
        assert "default-src 'self'" in reply.headers["Content-Security-Policy"]
        assert reply.headers["Cache-Control"] == "no-store"
    huge = http(bare, "POST", "/alarms/99999999999999999999999/ack", {"csrf": csrf},
                cookie)
    assert huge.status == 404
    big = http(bare, "POST", "/act/push/preview", {"csrf": csrf, "target": "_all",
                                                    "document": "x" * 200_000}, cookie)
    assert big.status == 413
    static = http(bare, "GET", "/static/desk.css")
    assert static.status == 200
    assert static.headers["Cache-Control"] == "no-cache"
    assert http(bare, "GET", "/static/../db.py").status in (403, 404)


def test_a_hostile_document_is_refused_with_its_reason(bare: DeskRig) -> None:
    cookie, csrf = login_http(bare, MANAGER)
    for document, says in [
        ('{"a":' * 3_000 + "1" + "}" * 3_000, "nested too deeply"),
        ('{"security": {"fleet_keys": {"f1": "not-a-key"}}}', "security.fleet_keys"),
        ("x = = 1", "not valid TOML or JSON"),
        ('{"version": 1}', "version: unknown key"),
    ]:
        reply = http(bare, "POST", "/act/push/preview", {"csrf": csrf, "target": "_all",
                                                        "version": "1", "document": document},
                     cookie)
        assert reply.status == 200
        assert 'id="problems"' in reply.body, document[:20]
        assert says in reply.body
        assert 'id="confirm"' not in reply.body
    assert bare.sql("SELECT count(*) FROM desk_actions")[0][0] == 0


def test_records_with_hostile_text_are_shown_and_exported_as_text(bare: DeskRig) -> None:
    light = LightCart(bare.broker.port, "bc-66")
    try:
        at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        light.send([("ticket.issue", at, {"service": "=HYPERLINK(\"http://x\")"}),
                    ("scan.rejected", at, {"reason": "<script>alert(1)</script>"}),
                    ("locker.forced_open", at, {"compartment": "<b>A1</b>"})])
    finally:
        light.close()
    bare.wait_followed()
    cookie, _ = login_http(bare, MANAGER)
    for path in ("/usage", "/alarms", "/carts/bc-66", "/fleet"):
        body = http(bare, "GET", path, cookie=cookie).body
        assert "<script>alert" not in body
        assert "<b>A1</b>" not in body, path
    csv = http(bare, "GET", "/usage.csv?per=cart", cookie=cookie).body
    assert "'=HYPERLINK" in csv
    assert "\n=HYPERLINK" not in csv.replace(",", "\n")
    assert json.dumps("<script>")  # (the page escaped it; the CSV keeps the text)


def test_the_desk_hears_the_fleet_again_after_the_broker_restarts(bare: DeskRig) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from tests.support import wait_for

    def say(cart: str, state: str) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.connect("127.0.0.1", bare.broker.port)
        client.loop_start()
        info = client.publish(f"carts/{cart}/status", json.dumps(
            {"state": state, "at": "2026-12-01T00:00:00Z"}), qos=1, retain=True)
        info.wait_for_publish(5)
        client.disconnect()
        client.loop_stop()

    say("bc-31", "online")
    wait_for(lambda: bare.sql("SELECT state FROM desk_carts WHERE cart = 'bc-31'")
             == [("online",)], timeout_s=10, what="the first status")
    bare.broker.kill()  # gone without a word; paho in the desk reconnects by itself
    bare.broker.start()
    say("bc-31", "offline")
    wait_for(lambda: bare.sql("SELECT state FROM desk_carts WHERE cart = 'bc-31'")
             == [("offline",)], timeout_s=30, what="a status after the restart")
