"""Golden bytes and round trips of the bs and kerong lock-board codecs and their stream decoder."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from agent.devices.lockboard import bs, kerong
from agent.devices.lockboard.frames import (
    FrameError,
    LockAddress,
    LockReply,
    OpenReply,
    ProbeReply,
    Request,
    StatusReply,
    UnlockEcho,
)

FAST = settings(max_examples=200, deadline=None)
H = bytes.fromhex

# -- golden bytes (LOCKBOARD.md's examples and frames worked out from its tables) -------------


def test_bs_request_golden_bytes() -> None:
    assert bs.encode_open(2, 1) == H("8A 02 01 11 98")
    assert bs.encode_open(1, 0) == H("8A 01 00 11 9A")
    assert bs.encode_status(1) == H("80 01 00 33 B2")
    assert bs.encode_probe(1) == H("81 01 01 99 18")


def test_bs_reply_golden_bytes() -> None:
    # The reply's SS byte is the lock's state bit after the pulse: 11 = bit set, 00 = clear.
    assert bs.encode_open_reply(2, 1, 1) == H("8A 02 01 11 98")
    assert bs.encode_open_reply(2, 1, 0) == H("8A 02 01 00 89")
    assert bs.encode_read_lock(1, 1) == H("80 01 01 33 B3")
    assert bs.encode_lock_reply(1, 1, 1) == H("80 01 01 11 91")
    # doors 1 and 9 and 24 closed: G1 = 01, G2 = 01, G3 = 80
    assert bs.encode_status_reply(1, 1 | 1 << 8 | 1 << 23) == H("80 01 80 01 01 33 32")
    with pytest.raises(ValueError, match="lock 0 would read the whole board"):
        bs.encode_read_lock(1, 0)  # lock 0 is the whole-board read
    with pytest.raises(ValueError, match="a lock state bit is 0 or 1, not 2"):
        bs.encode_open_reply(1, 1, 2)


def test_bs_decode_golden_replies() -> None:
    assert bs.decode_reply(H("8A 02 01 11 98")) == OpenReply(2, 1, 1)
    assert bs.decode_reply(H("8A 02 01 00 89")) == OpenReply(2, 1, 0)
    assert bs.decode_reply(H("80 01 01 00 80")) == LockReply(1, 1, 0)
    assert bs.decode_reply(H("80 01 80 01 01 33 32")) == StatusReply(1, 0x800101)
    assert bs.decode_reply(H("81 01 01 99 18")) == ProbeReply(1)


def test_kerong_unlock_echo_decodes_as_an_acknowledgement() -> None:
    assert kerong.decode_reply(H("02 12 31 03 48")) == UnlockEcho(1, 3)
    stream = kerong.reply_stream()
    assert stream.feed(H("02 00 31 03 36 02 00 35 01 00 00 00 03 3B")) == [
        UnlockEcho(0, 1), StatusReply(0, 0x0001, 0)]


def test_kerong_golden_bytes() -> None:
    assert kerong.encode_open(0, 1) == H("02 00 31 03 36")
    assert kerong.encode_status(0) == H("02 00 30 03 35")
    assert kerong.encode_open(1, 16) == H("02 1F 31 03 55")
    assert kerong.encode_open_reply(0, 1, True) == b""  # unlock has no reply
    # board 0, locks 1 and 16 set, item sensor of lock 2 set
    reply = H("02 00 35 01 80 02 00 03 BD")
    assert kerong.encode_status_reply(0, 0x8001, 0x0002) == reply
    assert kerong.decode_reply(reply) == StatusReply(0, 0x8001, 0x0002)
    assert kerong.decode_reply(H("02 30 35 00 00 00 00 03 6A")) == StatusReply(3, 0, 0)


def test_requests_decode_as_boards_see_them() -> None:
    assert bs.decode_request(H("8A 02 01 11 98")) == Request("open", 2, 1)
    assert bs.decode_request(H("80 01 00 33 B2")) == Request("status", 1)
    assert bs.decode_request(H("80 01 05 33 B7")) == Request("read_lock", 1, 5)
    assert kerong.decode_request(H("02 00 31 03 36")) == Request("open", 0, 1)
    assert kerong.decode_request(H("02 00 30 03 35")) == Request("status", 0)


@pytest.mark.parametrize(
    ("codec", "frame"),
    [
        (bs, H("8A 02 01 11 99")),  # checksum off by one bit
        (bs, H("80 01 80 01 01 33")),  # short
        (bs, H("80 01 80 01 01 32 33")),  # wrong function byte, checksum fixed up
        (bs, H("8A 02 01 22 AB")),  # open reply with an unknown state byte
        (bs, H("80 01 01 22 A2")),  # single-lock reply with an unknown state byte
        (bs, H("80 01 00 11 90")),  # single-lock reply for lock 0
        (bs, H("55 02 01 11 45")),  # unknown command
        (kerong, H("02 00 35 01 80 02 00 03 BE")),
        (kerong, H("02 00 35 01 80 02 00 04 BE")),  # no ETX
        (kerong, H("02 01 35 01 80 02 00 03 BE")),  # lock bits in a status reply's address
        (kerong, H("02 00 35 01 80 02 00 03")),
    ],
)
def test_bad_frames_rejected(codec: object, frame: bytes) -> None:
    with pytest.raises(FrameError):
        codec.decode_reply(frame)  # type: ignore[attr-defined]


def test_address_ranges() -> None:
    with pytest.raises(ValueError, match=r"kerong address out of range: board 16"):
        kerong.encode_open(16, 1)
    with pytest.raises(ValueError, match=r"kerong address out of range: .* lock 17"):
        kerong.encode_open(0, 17)
    with pytest.raises(ValueError, match=r"bs lock address out of range: .* lock 25"):
        bs.CODEC.check(LockAddress(1, 25))
    with pytest.raises(ValueError, match=r"bs lock address out of range: board 0"):
        bs.CODEC.check(LockAddress(0, 1))
    kerong.CODEC.check(LockAddress(0, 16))


# -- round trips ------------------------------------------------------------------------------

bs_boards = st.integers(1, 255)
bs_locks = st.integers(1, 24)
k_boards = st.integers(0, 15)
k_locks = st.integers(1, 16)


@FAST
@given(bs_boards, bs_locks, st.integers(0, 1), st.integers(0, (1 << 24) - 1))
def test_bs_round_trip(board: int, lock: int, bit: int, bits: int) -> None:
    assert bs.decode_request(bs.encode_open(board, lock)) == Request("open", board, lock)
    assert bs.decode_request(bs.encode_status(board)) == Request("status", board)
    assert bs.decode_request(bs.encode_read_lock(board, lock)) == Request(
        "read_lock", board, lock)
    assert bs.decode_reply(bs.encode_open_reply(board, lock, bit)) == OpenReply(board, lock, bit)
    assert bs.decode_reply(bs.encode_lock_reply(board, lock, bit)) == LockReply(board, lock, bit)
    assert bs.decode_reply(bs.encode_status_reply(board, bits)) == StatusReply(board, bits)


@FAST
@given(k_boards, k_locks, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_kerong_round_trip(board: int, lock: int, bits: int, items: int) -> None:
    assert kerong.decode_request(kerong.encode_open(board, lock)) == Request("open", board, lock)
    assert kerong.decode_request(kerong.encode_status(board)) == Request("status", board)
    reply = kerong.encode_status_reply(board, bits, items)
    assert kerong.decode_reply(reply) == StatusReply(board, bits, items)


@FAST
@given(st.sampled_from([bs, kerong]), st.data())
def test_any_single_byte_change_is_caught(codec: object, data: st.DataObject) -> None:
    if codec is bs:
        frame = bs.encode_status_reply(data.draw(bs_boards), data.draw(st.integers(0, 2**24 - 1)))
    else:
        frame = kerong.encode_status_reply(data.draw(k_boards), data.draw(st.integers(0, 0xFFFF)))
    index = data.draw(st.integers(0, len(frame) - 1))
    flip = data.draw(st.integers(1, 255))
    bad = bytearray(frame)
    bad[index] ^= flip
    with pytest.raises(FrameError):
        codec.decode_reply(bytes(bad))  # type: ignore[attr-defined]


# -- stream decoding --------------------------------------------------------------------------


def _bs_replies() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.builds(bs.encode_open_reply, bs_boards, bs_locks, st.integers(0, 1)),
        st.builds(bs.encode_status_reply, bs_boards, st.integers(0, 2**24 - 1)),
        st.builds(bs.encode_probe_reply, bs_boards),
    )


def _kerong_replies() -> st.SearchStrategy[bytes]:
    return st.builds(
        kerong.encode_status_reply, k_boards, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)
    )


# Line noise that holds no byte able to start a frame: every frame must then come through.
BS_NOISE = st.binary(max_size=12).map(lambda b: bytes(x for x in b if x not in (0x80, 0x81, 0x8A)))
KERONG_NOISE = st.binary(max_size=12).map(lambda b: b.replace(b"\x02", b""))


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@FAST
@given(
    st.sampled_from(["bs", "kerong"]),
    st.data(),
    st.lists(st.integers(0, 10_000), max_size=20),
)
def test_stream_recovers_every_frame_through_noise_and_torn_reads(
    protocol: str, data: st.DataObject, cuts: list[int]
) -> None:
    codec, frames_st, noise_st = (
        (bs, _bs_replies(), BS_NOISE)
        if protocol == "bs"
        else (kerong, _kerong_replies(), KERONG_NOISE)
    )
    frames = data.draw(st.lists(frames_st, max_size=8))
    wire = b"".join(data.draw(noise_st) + f for f in frames) + data.draw(noise_st)
    stream = codec.reply_stream()
    got = [item for chunk in _chunks(wire, cuts) for item in stream.feed(chunk)]
    assert got == [codec.decode_reply(f) for f in frames]


@FAST
@given(st.sampled_from(["bs", "kerong"]), st.data())
def test_stream_drops_a_corrupt_frame_and_resyncs_on_the_next(
    protocol: str, data: st.DataObject
) -> None:
    codec, frames_st = (bs, _bs_replies()) if protocol == "bs" else (kerong, _kerong_replies())
    bad = bytearray(data.draw(frames_st))
    good = data.draw(frames_st)
    # No byte after the bad frame's first can start a frame (so the test has one right answer:
    # a start byte there might, 1 time in 256, make a frame with the next one's bytes).
    starts = {0x80, 0x81, 0x8A} if protocol == "bs" else {0x02}
    assume(not starts & set(bad[1:-1]))
    bad[-1] = data.draw(
        st.integers(0, 255).filter(lambda v: v != bad[-1] and v not in starts)
    )
    stream = codec.reply_stream()
    assert stream.feed(bytes(bad) + good) == [codec.decode_reply(good)]
    assert stream.bad_frames >= 1


def test_stream_finds_a_frame_behind_stray_start_bytes() -> None:
    stream = bs.reply_stream()
    good = bs.encode_status_reply(1, 0xFFFFFF)
    assert stream.feed(H("8A 80 01") + good[:3]) == []
    assert stream.feed(good[3:]) == [StatusReply(1, 0xFFFFFF)]
    assert stream.pending == b""
    ks = kerong.reply_stream()
    k = kerong.encode_status_reply(2, 0x1234, 0)
    assert ks.feed(H("02 02 02 35 99") + k) == [StatusReply(2, 0x1234, 0)]


def test_request_stream_gives_raw_frames_for_the_simulator() -> None:
    stream = bs.request_stream()
    frame = bs.encode_open(2, 1)
    assert stream.feed(b"\x00\xff" + frame[:2]) == []
    assert stream.feed(frame[2:]) == [(frame, Request("open", 2, 1))]
    ks = kerong.request_stream()
    assert ks.feed(H("02 00 31 03 36 02 00 30 03 35")) == [
        (H("02 00 31 03 36"), Request("open", 0, 1)),
        (H("02 00 30 03 35"), Request("status", 0)),
    ]
