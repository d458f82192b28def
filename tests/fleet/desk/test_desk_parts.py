"""The desk's parts against a real PostgreSQL, without a browser: migrations, accounts and
sessions, `cart-fleet desk-user`, the transactions follower, the live fold under hostile
payloads, the charts' markup."""

from __future__ import annotations

import datetime as dt
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent.ids import new_ulid
from fleet.cli import main
from fleet.desk import auth, i18n
from fleet.desk.attention import CartLive, assess
from fleet.desk.charts import Series, bar_chart, hbar_chart
from fleet.desk.db import Database, DeskDbError
from fleet.desk.follow import Follower
from fleet.desk.i18n import reason_text
from fleet.desk.live import LiveFleet
from fleet.desk.schema import LATEST, migrate
from fleet.storage_pg import PostgresStorage
from tests.postgres_cluster import PostgresCluster

T0 = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai


@pytest.fixture
def db_url(pg: PostgresCluster) -> str:
    return pg.create_database(f"parts_{new_ulid().lower()}")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    migrate(database)
    yield database
    database.close()


# --- migrations ---------------------------------------------------------------------------


def test_migrations_are_forward_only_and_refuse_a_newer_schema(db: Database) -> None:
    assert migrate(db) == LATEST  # again: nothing to do
    assert db.query("SELECT version FROM desk_schema") == [{"version": LATEST}]
    db.execute("INSERT INTO desk_schema(version, note) VALUES (99, 'from the future')")
    with pytest.raises(DeskDbError, match="newer than this desk knows"):
        migrate(db)


# --- accounts and sessions ----------------------------------------------------------------


def test_passwords_lockout_and_sessions(db: Database) -> None:
    with pytest.raises(auth.AuthError, match="10-128"):
        auth.add_user(db, "boss", "short", "manager")
    with pytest.raises(auth.AuthError, match="bad user name"):
        auth.add_user(db, "Boss Man", "long enough pw", "manager")
    assert auth.add_user(db, "boss", "long enough pw", "manager") is True
    stored = db.one("SELECT password_hash FROM desk_users")
    assert stored is not None
    assert stored["password_hash"].startswith("scrypt$32768$8$1$")
    assert "long enough pw" not in stored["password_hash"]

    assert auth.login(db, "boss", "long enough pw").role == "manager"
    assert not auth.login(db, "nobody", "long enough pw").ok
    for _ in range(auth.LOCKOUT_FAILURES - 1):
        assert not auth.login(db, "boss", "wrong password").ok
    locked = auth.login(db, "boss", "wrong password")
    assert not locked.ok
    assert locked.locked_until is not None
    assert not auth.login(db, "boss", "long enough pw").ok  # locked: even the right one
    db.execute("UPDATE desk_users SET locked_until = now() - interval '1 s'")
    assert auth.login(db, "boss", "long enough pw").ok

    token = auth.open_session(db, "boss")
    session = auth.find_session(db, token)
    assert session is not None
    assert session.can_act
    assert len(session.csrf) >= 32
    assert db.one("SELECT token_hash FROM desk_sessions")["token_hash"] != token
    assert auth.csrf_ok(session, session.csrf)
    assert not auth.csrf_ok(session, "x")
    assert auth.find_session(db, token + "x") is None
    db.execute("UPDATE desk_sessions SET last_seen = now() - interval '31 minutes'")
    assert auth.find_session(db, token) is None  # idle too long

    token = auth.open_session(db, "boss")
    assert auth.add_user(db, "boss", "another long pw", "viewer") is False  # updated
    assert auth.find_session(db, token) is None  # a new password ends the sessions
    token = auth.open_session(db, "boss")
    viewer = auth.find_session(db, token)
    assert viewer is not None
    assert not viewer.can_act
    auth.close_session(db, token)
    assert auth.find_session(db, token) is None


def test_desk_user_command(db_url: str, capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    assert main(["desk-user", "add", "alice", "--role", "manager", "--password-stdin",
                 "--db", db_url]) == 0
    assert "added alice (manager)" in capsys.readouterr().out
    assert main(["desk-user", "list", "--db", db_url]) == 0
    assert "alice" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["desk-user", "add", "bob", "--password-stdin", "--db", db_url]) == 2
    assert "10-128 characters" in capsys.readouterr().err
    assert main(["desk-user", "remove", "bob", "--db", db_url]) == 2
    assert main(["desk-user", "remove", "alice", "--db", db_url]) == 0
    assert main(["desk-user", "list", "--db", "desk.db"]) == 2
    assert "postgresql://" in capsys.readouterr().err
    assert main(["desk-user", "list", "--db", "postgresql://nobody@127.0.0.1:1/x"]) == 1
    assert "cannot reach the database" in capsys.readouterr().err


# --- the follower -------------------------------------------------------------------------


class Rows:
    """Rows stored with the ingest's own storage class, as the ingest would."""

    def __init__(self, url: str) -> None:
        self.storage = PostgresStorage(url)
        self.seq: dict[str, int] = {}

    def add(self, cart: str, type_: str, at: dt.datetime, data: dict[str, Any],
            received_at: dt.datetime | None = None, seq: int | None = None) -> str:
        if seq is None:
            seq = self.seq[cart] = self.seq.get(cart, 0) + 1
        ident = new_ulid()
        self.storage.store([(ident, cart, seq, type_, at.isoformat(), json.dumps(data))],
                           (received_at or dt.datetime.now(dt.UTC)).isoformat())
        return ident

    def close(self) -> None:
        self.storage.close()


def usage(db: Database) -> dict[tuple[str, str, str], tuple[int, float]]:
    """The hourly counts per cart, after checking every rollup agrees with them."""
    rollups_agree(db)
    return {(r["cart"], r["metric"], r["key"]): (r["n"], r["total"]) for r in db.query(
        "SELECT cart, metric, key, sum(n)::int AS n, sum(total) AS total FROM desk_usage "
        "WHERE cart <> '*' GROUP BY 1, 2, 3")}


def rollups_agree(db: Database, tz: str = "Asia/Shanghai") -> None:
    def rows(sql: str) -> set[tuple[Any, ...]]:
        return {tuple(r.values()) for r in db.query(sql, {"tz": tz})}

    hourly = "(SELECT * FROM desk_usage WHERE cart <> '*')"
    assert rows("SELECT hour, metric, key, n, total FROM desk_usage WHERE cart = '*'") == rows(
        f"SELECT hour, metric, key, sum(n) AS n, sum(total) AS t FROM {hourly} h GROUP BY 1, 2, 3")
    for cart_col in ("cart", "'*'"):
        who = "cart <> '*'" if cart_col == "cart" else "cart = '*'"
        assert rows(f"SELECT day, metric, key, n, total FROM desk_usage_day WHERE {who}") == rows(
            f"SELECT (hour AT TIME ZONE %(tz)s)::date, metric, key, sum(n) AS n, sum(total) AS t "
            "FROM "
            f"{hourly} h GROUP BY 1, {cart_col}, 2, 3".replace(", '*', 2", ", 2"))
        assert rows(f"SELECT month, metric, hod, n FROM desk_usage_month_hod WHERE {who} "
                    "AND n <> 0") == rows(
            "SELECT date_trunc('month', hour AT TIME ZONE %(tz)s)::date, metric, "
            "extract(hour FROM hour AT TIME ZONE %(tz)s)::smallint, sum(n) FROM "
            f"{hourly} h WHERE metric <> 'parcel.wait' AND metric <> 'scan.rejected' "
            f"GROUP BY 1, {cart_col}, 2, 3".replace(", '*', 2", ", 2"))
    assert rows("SELECT month, cart, metric, key, n, total FROM desk_usage_month") == rows(
        "SELECT date_trunc('month', hour AT TIME ZONE %(tz)s)::date, cart, metric, key, "
        f"sum(n) AS n, sum(total) AS t FROM {hourly} h GROUP BY 1, 2, 3, 4")


def test_the_follower_derives_alarms_parcels_and_usage_once(db: Database, db_url: str) -> None:
    rows = Rows(db_url)
    try:
        h = dt.timedelta(hours=1)
        rows.add("bc-01", "parcel.deposit", T0, {"label": "SF1", "compartment": "A01"})
        rows.add("bc-01", "parcel.deposit", T0 + h, {"label": "SF2", "compartment": "A02"})
        rows.add("bc-01", "parcel.pickup", T0 + 3 * h, {"label": "SF1", "compartment": "A01"})
        rows.add("bc-01", "ticket.issue", T0, {"service": "gov", "number": 1})
        rows.add("bc-01", "ticket.issue", T0, {"service": "<b>x</b>", "number": 2})
        rows.add("bc-01", "scan.rejected", T0, {"reason": "expired"})
        rows.add("bc-01", "locker.forced_open", T0, {"compartment": "A03", "parcel": None})
        rows.add("bc-01", "locker.open_failed", T0, {"compartment": "A04", "error": "stuck"})
        rows.add("bc-01", "config.rejected", T0, {"scope": "cart", "version": 7,
                                                   "errors": ["colour: unknown key"]})
        follower = Follower(db)
        assert follower.tick() == 9
        assert follower.tick() == 0
        first = usage(db)
        assert first[("bc-01", "parcel.deposit", "")] == (2, 0)
        assert first[("bc-01", "parcel.pickup", "")] == (1, 0)
        assert first[("bc-01", "parcel.wait", "b1-4h")] == (1, 3 * 3600)
        assert first[("bc-01", "ticket.issue", "<b>x</b>")] == (1, 0)
        assert first[("bc-01", "scan.rejected", "expired")] == (1, 0)
        kinds = {r["kind"] for r in db.query("SELECT kind FROM desk_alarms")}
        assert kinds == {"forced_open", "open_failed", "config_rejected"}
        card = db.one("SELECT comp_known, comp_in_use, comp_oos, alarms_open FROM desk_carts")
        assert card == {"comp_known": 4, "comp_in_use": 1, "comp_oos": 1, "alarms_open": 3}

        # A restart that forgot the cursor sees everything again: nothing changes.
        db.execute("DELETE FROM desk_meta WHERE key = 'follow_cursor'")
        again = Follower(db)
        assert again.tick() == 9
        assert usage(db) == first
        assert db.one("SELECT count(*) AS n FROM desk_alarms")["n"] == 3
        assert db.one("SELECT count(*) AS n FROM desk_parcels")["n"] == 2

        # A row stamped before the cursor but committed after it (the ingest stamps, then
        # commits): still counted, once.
        late = again._cursor()[0] - dt.timedelta(seconds=3)
        rows.add("bc-01", "ticket.issue", T0, {"service": "gov", "number": 3}, received_at=late)
        assert again.tick() == 1
        assert again.tick() == 0
        assert usage(db)[("bc-01", "ticket.issue", "gov")] == (2, 0)

        # A pickup stored before its deposit (a batch resent late): the parcel still closes.
        rows.add("bc-02", "parcel.pickup", T0 + 2 * h, {"label": "SF9", "compartment": "B01"},
                 seq=2)
        again.tick()
        rows.add("bc-02", "parcel.deposit", T0, {"label": "SF9", "compartment": "B01"}, seq=1)
        again.tick()
        parcel = db.one("SELECT picked_at FROM desk_parcels WHERE label = 'SF9'")
        assert parcel is not None
        assert parcel["picked_at"] == T0 + 2 * h
        assert usage(db)[("bc-02", "parcel.wait", "b1-4h")] == (1, 2 * 3600)

        # Out of service goes by seq, not by the order rows arrive in.
        rows.add("bc-02", "compartment.out_of_service", T0, {"compartment": "B02", "on": False},
                 seq=4)
        rows.add("bc-02", "compartment.out_of_service", T0, {"compartment": "B02", "on": True},
                 seq=3)
        again.tick()
        oos = db.one("SELECT oos FROM desk_compartments WHERE compartment = 'B02'")
        assert oos == {"oos": False}

        # Started in another time zone, the desk counts its days and hours in that one.
        from fleet.desk.usage import ensure_zone

        assert ensure_zone(db, ZoneInfo("America/New_York")) is True
        assert ensure_zone(db, ZoneInfo("America/New_York")) is False
        rollups_agree(db, "America/New_York")
        days = {r["day"] for r in db.query("SELECT DISTINCT day FROM desk_usage_day")}
        # 02:00-04:59 UTC is still the day before in New York; 05:00 (a pickup) is midnight.
        assert days == {dt.date(2026, 11, 30), dt.date(2026, 12, 1)}
    finally:
        rows.close()


# --- the live fold ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_live_state_survives_hostile_payloads(db: Database) -> None:
    live = LiveFleet(db, offline_alarm_s=600)
    for topic, payload in [
        ("carts/bc-01/status", b"\xff\xfe garbage"),
        ("carts/bc-01/status", b"[1, 2, 3]"),
        ("carts/bc-01/status", b'{"state": "hacked"}'),
        ("carts/bc-01/status", json.dumps({"state": "online", "at": 5}).encode()),
        ("carts/BC-01/status", b'{"state": "online"}'),
        ("carts/../x/status", b'{"state": "online"}'),
        ("carts/" + "a" * 40 + "/status", b'{"state": "online"}'),
        ("carts/bc-02/telemetry", json.dumps({"at": "yesterday", "queue": [1], "devices": "x",
                                              "disk_free_mb": "lots"}).encode()),
        ("carts/bc-02/telemetry", b"{" * 100_000),
        ("carts/bc-02/config/reported", b'{"status": "rejected", "errors": "not a list"}'),
        ("carts/bc-02/config/desired", b"not.a.jws"),
        ("carts/_all/config/desired", b'{"version": "7"}'),
        ("carts/bc-02/cmd/result", b'{"id": 5}'),
        ("other/bc-02/status", b'{"state": "online"}'),
    ]:
        live.on_message(topic, payload, False)
    assert live.flush() == 2
    carts = {r["cart"]: r for r in db.query("SELECT cart, state FROM desk_carts")}
    assert carts == {"bc-01": {"cart": "bc-01", "state": "online"},
                     "bc-02": {"cart": "bc-02", "state": "unknown"}}


def test_offline_too_long_raises_an_alarm_that_clears_when_back(db: Database) -> None:
    clock = Clock()
    live = LiveFleet(db, offline_alarm_s=600, clock=clock)
    live.on_message("carts/bc-01/status", b'{"state": "online", "at": "2027-01-15T08:00:00Z"}',
                    False)
    live.flush()
    live.on_message("carts/bc-01/status", b'{"state": "offline", "at": "2027-01-15T08:00:00Z"}',
                    False)
    live.flush()
    clock.now += 599
    live.flush()
    assert db.query("SELECT kind FROM desk_alarms") == []
    clock.now += 2
    live.flush()
    live.flush()  # once only
    assert db.query("SELECT kind, cleared_at FROM desk_alarms") == [
        {"kind": "offline", "cleared_at": None}]
    assert db.one("SELECT alarms_open, rank FROM desk_carts")["alarms_open"] == 1
    live.on_message("carts/bc-01/status", b'{"state": "online", "at": "2027-01-15T08:11:00Z"}',
                    False)
    live.flush()
    assert db.one("SELECT cleared_at IS NOT NULL AS cleared FROM desk_alarms")["cleared"]
    # A restart remembers what was open and the telemetry it had.
    again = LiveFleet(db, offline_alarm_s=600, clock=clock)
    again.load()
    assert again.carts["bc-01"].state == "online"


def test_every_device_a_cart_reports_has_desk_words() -> None:
    from agent.runtime.facade import DEVICES as REPORTED

    assert set(REPORTED) == set(i18n.DEVICES)
    assert all(zh and en and zh != en for zh, en in i18n.DEVICES.values())


def test_attention_reasons_in_words() -> None:
    now = 1_800_000_000.0
    c = CartLive("bc-01", "online", now - 60, now, {"state": "online"},
                 {"queue": {"pending": 900, "oldest_pending_s": 7200.0},
                  "devices": {"printer": {"ok": False, "error": "paper out"},
                              "scanner": {"ok": False, "error": "not running"},
                              "locker": {"ok": True, "error": None}},
                  "disk_free_mb": 50, "clock": {"alarm": "behind"}}, now,
                 {"version": 3, "status": "applied"}, {"version": 4}, 300.0)
    a = assess(c, fleet_desired=None, now=now)
    codes = [r["code"] for r in a.reasons]
    assert codes == ["paper_out", "device", "backlog", "disk_low", "config_pending", "clock"]
    assert set(a.conditions) == {"paper_out", "clock"}
    speaker = {"code": "device", "device": "audio", "error": "no sound card"}
    assert reason_text(speaker, ZoneInfo("Asia/Shanghai"), now)[0].startswith("语音播报")
    offline = assess(CartLive("bc-02", "offline", now - 7200), None, now)
    assert offline.score > a.score - 100
    assert offline.reasons[0]["code"] == "offline"


# --- charts -------------------------------------------------------------------------------


def test_charts_escape_what_they_show_and_parse_as_svg() -> None:
    hostile = '<script>alert(1)</script>"'
    svg = bar_chart("t", ["2026-12-01", "2026-12-02"],
                    [Series("ticket.issue", hostile, hostile, "s-ticket-0",
                            {"2026-12-01": 3})], stacked=True)
    assert "<script>" not in svg
    root = ET.fromstring(svg)
    group = next(g for g in root.iter("g") if "bar" in g.get("class", ""))
    assert [b.get("data-value") for b in group.iter("rect")] == ["3", "0"]
    assert group.get("data-key") == hostile
    assert "<script>" not in hbar_chart("r", [(hostile, hostile, 2.0)], "scan.rejected")
    ET.fromstring(hbar_chart("r", [(hostile, hostile, 2.0)], "scan.rejected"))


# --- cart-fleet desk ------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "says"), [
    (["--db", "desk.db"], "postgresql://"),
    (["--db", "postgresql://x@127.0.0.1/x", "--listen", "nowhere"], "HOST:PORT"),
    (["--db", "postgresql://x@127.0.0.1/x", "--timezone", "Asia/Kolkata"], "whole-hour"),
    (["--db", "postgresql://x@127.0.0.1/x", "--timezone", "Mars/Olympus"], "unknown time zone"),
    (["--db", "postgresql://x@127.0.0.1/x", "--offline-alarm", "soon"], "bad ttl"),
    (["--db", "postgresql://x@127.0.0.1/x", "--key", "k.pem"], "--key and --kid go together"),
])
def test_desk_refuses_bad_options(capsys: Any, argv: list[str], says: str) -> None:
    assert main(["desk", *argv]) == 2
    assert says in capsys.readouterr().err


def test_desk_serves_and_stops_on_sigterm(db_url: str, tmp_path: Any) -> None:
    import signal
    import subprocess
    import sys
    import urllib.request

    from tests.mqtt_broker import free_port, wait_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fleet.cli", "desk", "--db", db_url,
                             "--listen", f"127.0.0.1:{port}", "--port", str(free_port())],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_port("127.0.0.1", port, 20)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as reply:
            page = reply.read().decode()
            headers = reply.headers
        assert "登录" in page
        assert "Log in" in page
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        out = proc.stdout.read() if proc.stdout else ""
        assert "broker unreachable" in out  # it said so, and served anyway
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
