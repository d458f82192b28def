"""The trusted clock's rules with injected wall and boot clocks, its evidence in a real store,
and the flows deciding with it (token window, `unknown` refusal, ticket day, record clock)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.clock import BUILD_FLOOR, TrustedClock
from agent.clock import evidence as clock_evidence
from agent.contract import parse_rfc3339
from agent.flows.refusals import ScanRefused
from agent.flows.tokens import TokenVerifier
from agent.jws import key_map
from agent.store import Store, StoreError
from tests.flows_support import Issuer

TRUE = BUILD_FLOOR + 400 * 86_400  # the true time in these tests
DAY = 86_400.0


class Clocks:
    """A wall clock that can be set anywhere and a boot clock that only runs forward."""

    def __init__(self, wall: float) -> None:
        self.wall_at = wall
        self.boot = 1000.0

    def wall(self) -> float:
        return self.wall_at

    def mono(self) -> float:
        return self.boot

    def run(self, seconds: float) -> None:
        self.wall_at += seconds
        self.boot += seconds


def make(wall: float, skew: float = 120) -> tuple[TrustedClock, Clocks]:
    c = Clocks(wall)
    return TrustedClock(skew, wall=c.wall, mono=c.mono), c


def test_wall_clock_used_as_it_is_without_evidence_when_plausible() -> None:
    clock, _ = make(TRUE)
    state = clock.state()
    assert (state.now, state.source, state.alarm, state.offset_s) == (TRUE, "wall", None, 0.0)


def test_never_below_the_evidence_and_behind_raises_the_alarm() -> None:
    clock, c = make(TRUE - 2 * DAY)
    clock.loaded(TRUE, "store")
    c.run(30)
    state = clock.state()
    assert state.now == TRUE + 30  # carried forward by the boot clock
    assert (state.source, state.alarm) == ("corrected", "behind")
    assert state.public() == {"source": "corrected", "offset_s": 2 * DAY, "alarm": "behind"}
    assert clock.stamp() == (TRUE + 30, "corrected")


def test_small_lag_is_corrected_without_an_alarm_and_tiny_lag_not_at_all() -> None:
    clock, c = make(TRUE - 60)
    clock.loaded(TRUE)
    assert (clock.state().source, clock.state().alarm) == ("corrected", None)
    assert clock() == TRUE
    c.wall_at = TRUE - 0.5
    assert clock.state().source == "wall"


def test_1970_with_evidence_keeps_working_from_it() -> None:
    clock, c = make(86_400.0)
    clock.loaded(TRUE)
    c.run(3600)
    state = clock.state()
    assert state.now == TRUE + 3600
    assert state.alarm == "behind"


def test_no_evidence_and_1970_is_unknown_and_a_token_iat_does_not_end_it() -> None:
    clock, _ = make(86_400.0)
    assert clock.state().alarm == "unknown"
    assert clock.note(TRUE, "token")
    state = clock.state()
    assert state.alarm == "unknown"
    assert state.now == TRUE
    assert clock.stamp() == (TRUE, "unknown")
    clock.server_time(TRUE + 10, live=True)  # the server's word ends it
    assert clock.state().alarm == "behind"


def test_ahead_measured_on_live_server_time_only() -> None:
    clock, c = make(TRUE + 3600)
    clock.server_time(TRUE, live=False)  # a retained config: may be days old
    assert clock.state().alarm is None
    clock.server_time(TRUE + 1, live=True)
    state = clock.state()
    assert state.alarm == "ahead"
    assert state.source == "wall"
    assert state.offset_s == pytest.approx(-3599)
    c.run(600)
    assert clock.state().alarm == "ahead"  # the server's time is carried forward too
    c.wall_at = TRUE + 620  # someone set the clock right: it shows at once
    assert clock.state().alarm is None
    clock.server_time(TRUE + 615, live=True)
    assert clock.state().alarm is None


def test_ntp_synchronized_wall_clock_is_the_time() -> None:
    clock, _c = make(TRUE - DAY)
    clock.loaded(TRUE)
    clock.set_ntp(True)
    state = clock.state()
    assert (state.now, state.source, state.alarm, state.ntp) == (TRUE - DAY, "wall", None, True)


def test_implausible_evidence_is_ignored() -> None:
    clock, _ = make(TRUE)
    assert not clock.note(0.0, "server")
    assert not clock.note(TRUE + 100 * 365 * DAY, "token")
    assert clock.state().bound is None


def test_evidence_survives_a_restart_in_the_store(tmp_path: Path) -> None:
    c = Clocks(TRUE)
    first = TrustedClock(120, wall=c.wall, mono=c.mono)
    store = Store(tmp_path / "cart.db", "bc-01")
    store.use_clock(first)
    tx = store.record("ticket.issue", {"service": "gov", "number": 1})
    assert tx.clock == "wall"
    assert "clock" not in tx.wire()
    persist = clock_evidence.keeper(store, StoreError)
    persist(TRUE + 500, "server")  # an ack heard later, with no record after it
    store.close()

    c2 = Clocks(TRUE - 2 * DAY)  # power cut, the RTC lost two days
    again = TrustedClock(120, wall=c2.wall, mono=c2.mono)
    store = Store(tmp_path / "cart.db", "bc-01")
    clock_evidence.load(again, store)
    store.use_clock(again)
    assert again.state().now == TRUE + 500
    tx = store.record("ticket.issue", {"service": "gov", "number": 2})
    assert tx.clock == "corrected"
    assert tx.wire()["clock"] == "corrected"
    assert parse_rfc3339(tx.at) == TRUE + 500
    assert store.get_tx(tx.id) == tx
    store.close()


def test_records_made_while_unknown_are_no_evidence(tmp_path: Path) -> None:
    c = Clocks(86_400.0)
    clock = TrustedClock(120, wall=c.wall, mono=c.mono)
    clock.note(TRUE, "token")
    store = Store(tmp_path / "cart.db", "bc-01")
    store.use_clock(clock)
    assert store.record("scan.rejected", {"reason": "clock_unknown"}).clock == "unknown"
    after = TrustedClock(120, wall=c.wall, mono=c.mono)
    clock_evidence.load(after, store)
    assert after.state().alarm == "unknown"
    store.close()


def _verifier(issuer: Issuer, clock: TrustedClock) -> TokenVerifier:
    return TokenVerifier(key_map({issuer.kid: issuer.public}), "bc-01", 120, 4096,
                         clock=clock, trusted=clock)


def test_token_checks_use_the_trusted_time_and_learn_from_iat() -> None:
    issuer = Issuer()
    clock, _ = make(TRUE - 2 * DAY)
    clock.loaded(TRUE)
    verifier = _verifier(issuer, clock)
    with pytest.raises(ScanRefused) as refused:
        verifier.verify(issuer.token("ticket", ttl=60, now=TRUE - 3660, service="gov"))
    assert refused.value.reason == "expired"
    assert verifier.verify(issuer.token("ticket", now=TRUE - 10, service="gov")).svc == "ticket"
    # A token from 15 minutes later is refused for itself, but its verified iat raises the
    # bound for what comes after it.
    with pytest.raises(ScanRefused) as refused:
        verifier.verify(issuer.token("ticket", now=TRUE + 900, service="gov"))
    assert refused.value.reason == "not_yet_valid"
    assert clock.state().now == TRUE + 900


def test_unknown_time_refuses_codes_with_a_clear_reason() -> None:
    issuer = Issuer()
    clock, _ = make(86_400.0)
    verifier = _verifier(issuer, clock)
    token = issuer.token("ticket", now=TRUE, service="gov")
    for _ in range(2):  # scanning it again does not let its own iat vouch for it
        with pytest.raises(ScanRefused) as refused:
            verifier.verify(token)
        assert refused.value.reason == "clock_unknown"
        assert "时钟" in refused.value.zh
        assert "clock" in refused.value.en


def test_public_shape_is_the_contracts() -> None:
    clock, _ = make(TRUE)
    doc = clock.state().public()
    assert set(doc) == {"source", "offset_s", "alarm"}
    json.dumps(clock.state().detail())


def test_ntp_state_read_from_timedatectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.clock.ntp import ntp_synchronized

    exe = tmp_path / "timedatectl"
    for said, expected in (("yes", True), ("no", False), ("maybe", None)):
        exe.write_text("#!/bin/sh\n"
                       f"[ \"$*\" = 'show -p NTPSynchronized --value' ] && echo {said}\n")
        exe.chmod(0o755)
        monkeypatch.setenv("PATH", str(tmp_path))
        assert ntp_synchronized() is expected
    exe.write_text("#!/bin/sh\necho 'Failed to connect to bus' >&2; exit 1\n")
    assert ntp_synchronized() is None
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert ntp_synchronized() is None


def test_alarm_changes_are_recorded_once_each(tmp_path: Path) -> None:
    from agent.runtime.clock_watch import ClockWatch

    c = Clocks(TRUE)
    clock = TrustedClock(120, wall=c.wall, mono=c.mono)
    store = Store(tmp_path / "cart.db", "bc-01")
    store.use_clock(clock)
    ntp: list[bool | None] = [None]
    watch = ClockWatch(clock, store, ntp=lambda: ntp[0])
    watch.tick(0.0)
    clock.loaded(TRUE + DAY)  # evidence a day ahead of the wall clock
    watch.tick(5.0)
    watch.tick(10.0)
    ntp[0] = True  # NTP synchronized: the wall clock is the time again
    watch.tick(100.0)
    rows = store.query("SELECT type, clock, data FROM transactions ORDER BY seq")
    assert [r["type"] for r in rows] == ["clock.behind", "clock.ok"]
    behind = json.loads(rows[0]["data"])
    assert behind["offset_s"] == DAY
    assert behind["previous"] is None
    assert rows[0]["clock"] == "corrected"
    assert json.loads(rows[1]["data"])["ntp"] is True
    store.close()
