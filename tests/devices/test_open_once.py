"""One open frame per open, ever: a board that releases but whose answer is lost, cut short or
garbled, at every byte of the answer, behind a door that springs at once, slowly or never.

What is asserted is what crossed the pty: the simulator's raw received bytes hold the open
frame exactly once, and the lock really released exactly once. Then kerong's three ways of
answering an unlock (nothing, an echo, a status frame), each on its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.devices.lockboard.bus import LockBus
from agent.devices.lockboard.frames import LockAddress
from agent.devices.sim.lockbus import Fault, LockBusSimulator

A = LockAddress(1, 3)
OPEN_S, STATUS_S = 0.3, 0.15


@pytest.fixture
def bs_sim(tmp_path: Path) -> Iterator[LockBusSimulator]:
    with LockBusSimulator(tmp_path / "cart-locker", "bs") as simulator:
        yield simulator


def bus_for(sim: LockBusSimulator) -> LockBus:
    return LockBus(sim.path, sim.codec.name, sim.codec.baudrate, 1,
                   open_timeout_s=OPEN_S, status_timeout_s=STATUS_S)


def assert_one_frame(sim: LockBusSimulator, address: LockAddress = A) -> None:
    assert sim.open_frames_received(address) == 1  # in the raw bytes, valid or not
    assert sim.opens_received(address) == 1
    assert sim.open_count(address) == 1  # and it did release, once


# Every way the bs answer `8A 01 03 00 88` can fail to arrive whole: lost; cut after each byte;
# one bit flipped in each byte (command, board, lock, state, checksum); replaced by noise.
LOST_ANSWERS: list[tuple[Fault, int]] = [
    ("drop", 0), ("truncate", 1), ("truncate", 2), ("truncate", 3), ("truncate", 4),
    ("flip", 0), ("flip", 1), ("flip", 2), ("flip", 3), ("flip", 4), ("noise", 0),
]


@pytest.mark.parametrize(("fault", "arg"), LOST_ANSWERS)
def test_lost_answer_behind_a_slow_door_is_unknown_and_never_resent(
    bs_sim: LockBusSimulator, fault: Fault, arg: int
) -> None:
    bs_sim.set_spring_delay(0.6)  # the door still reads closed while the driver looks
    bs_sim.fault_next_reply(fault, arg, only="open")
    with bus_for(bs_sim) as bus:
        result = bus.open_lock(A)
        assert (result.outcome, result.door_open) == ("unknown", False), result
        assert "not sent again" in (result.error or "")
        assert_one_frame(bs_sim)
        time.sleep(0.7)
        assert bus.door_closed(A) is False  # it had released: the door shows it now
    assert_one_frame(bs_sim)


@pytest.mark.parametrize(("fault", "arg"), [("drop", 0), ("truncate", 3), ("flip", 3)])
def test_lost_answer_with_the_door_already_open_is_released(
    bs_sim: LockBusSimulator, fault: Fault, arg: int
) -> None:
    bs_sim.fault_next_reply(fault, arg, only="open")
    with bus_for(bs_sim) as bus:
        result = bus.open_lock(A)
    assert (result.outcome, result.door_open, result.reply_lost) == ("released", True, True)
    assert_one_frame(bs_sim)


def test_lost_answer_and_lost_door_read(bs_sim: LockBusSimulator) -> None:
    bs_sim.set_spring_delay(None)  # unlocked, but nothing pushes the door
    bs_sim.fault_next_reply("drop", only="open")
    bs_sim.fault_next_reply("drop", only="read_lock")
    with bus_for(bs_sim) as bus:
        result = bus.open_lock(A)
    assert (result.outcome, result.door_open) == ("unknown", None)
    assert_one_frame(bs_sim)
    assert bs_sim.door_closed(A)


def test_cable_pulled_after_the_frame_went_out(bs_sim: LockBusSimulator) -> None:
    bs_sim.fault_next_reply("unplug", only="open")
    bus = bus_for(bs_sim)
    bus.open()
    try:
        result = bus.open_lock(A)
    finally:
        bus.close()
    assert result.outcome == "unknown"
    assert "port failed" in (result.error or "")
    assert_one_frame(bs_sim)


def test_late_answer_is_not_taken_for_the_door_read(bs_sim: LockBusSimulator) -> None:
    bs_sim.set_spring_delay(None)
    bs_sim.set_reply_delay(0.35, only="open")  # after the driver gave up on it
    with bus_for(bs_sim) as bus:
        result = bus.open_lock(A)
        assert result.outcome == "unknown"
        assert result.door_open in (False, None)
        assert bus.board_health()[1]["bad_frames"] + bus.board_health()[1]["timeouts"] >= 1
    assert_one_frame(bs_sim)


# -- kerong: three answers to an unlock, and a slow door ----------------------------------------


@pytest.fixture
def kerong_sim(tmp_path: Path) -> Iterator[LockBusSimulator]:
    with LockBusSimulator(tmp_path / "cart-locker", "kerong") as simulator:
        yield simulator


@pytest.mark.parametrize(("answer", "note"), [
    ("silence", None),
    ("echo", "the board echoed the unlock"),
    ("status", "the board answered the unlock with its status"),
])
def test_kerong_answers_to_an_unlock(
    kerong_sim: LockBusSimulator, answer: str, note: str | None
) -> None:
    kerong_sim.kerong_unlock_answer = answer  # type: ignore[assignment]
    with bus_for(kerong_sim) as bus:
        result = bus.open_lock(A)
        health = bus.board_health()[1]
    assert (result.outcome, result.door_open, result.note) == ("released", True, note)
    assert_one_frame(kerong_sim)
    # None of the three is a fault of the board: no timeout, no bad frame counted.
    assert health["ok"]
    assert health["timeouts"] == 0
    assert health["bad_frames"] == 0
    if answer == "silence":
        assert kerong_sim.sent[:3] == bytes.fromhex("02 10 35")  # first bytes: a status read
    else:
        wire = {"echo": "02 12 31 03 48", "status": "02 10 35"}[answer]
        assert kerong_sim.sent.startswith(bytes.fromhex(wire))


@pytest.mark.parametrize("answer", ["silence", "echo", "status"])
def test_kerong_slow_door_is_unknown_and_never_resent(
    kerong_sim: LockBusSimulator, answer: str
) -> None:
    kerong_sim.kerong_unlock_answer = answer  # type: ignore[assignment]
    kerong_sim.set_spring_delay(1.0)
    with bus_for(kerong_sim) as bus:
        result = bus.open_lock(A)
    assert (result.outcome, result.door_open) == ("unknown", False)
    assert_one_frame(kerong_sim)


def test_kerong_garbled_answer_to_the_unlock(kerong_sim: LockBusSimulator) -> None:
    kerong_sim.kerong_unlock_answer = "status"
    kerong_sim.fault_next_reply("flip", 4, only="open")
    with bus_for(kerong_sim) as bus:
        result = bus.open_lock(A)
    assert result.outcome == "released"
    assert "garbled" in (result.note or "")
    assert_one_frame(kerong_sim)
