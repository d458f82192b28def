"""The MQTT packets a cart needs, MQTT 3.1.1 (level 4) and 5 (level 5): pure bytes, no I/O.

Ten thousand paho clients (a thread or a socket loop each) do not fit on two cores; ten
thousand asyncio protocols over this codec do. Only what the cart's contract uses is here:
CONNECT with a last will and credentials, CONNACK, PUBLISH at QoS 0 and 1, PUBACK,
SUBSCRIBE/SUBACK, PINGREQ/PINGRESP, DISCONNECT. MQTT 5 properties are sent empty and
skipped on receipt. The brokers are the judges of these bytes: the tests run them against
Mosquitto and NATS, which close the connection on any malformed packet.
"""

from __future__ import annotations

from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14
MAX_REMAINING = 268_435_455


class ProtocolError(ValueError):
    """Bytes from the broker that are not MQTT as we speak it."""


def varint(n: int) -> bytes:
    if not 0 <= n <= MAX_REMAINING:
        raise ValueError(f"remaining length {n} out of range")
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(value: str | bytes) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else value
    if len(data) > 65535:
        raise ValueError("string longer than 65535 bytes")
    return len(data).to_bytes(2, "big") + data


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + varint(len(body)) + body


def connect(client_id: str, keepalive: int, level: int = 4, clean: bool = True,
            username: str | None = None, password: str | None = None,
            will: tuple[str, bytes] | None = None, will_qos: int = 1,
            will_retain: bool = True) -> bytes:
    flags = 0x02 if clean else 0
    payload = _string(client_id)
    if will is not None:
        flags |= 0x04 | will_qos << 3 | (0x20 if will_retain else 0)
        payload += (b"\x00" if level == 5 else b"") + _string(will[0]) + _string(will[1])
    if username is not None:
        flags |= 0x80
        payload += _string(username)
    if password is not None:
        flags |= 0x40
        payload += _string(password)
    head = _string("MQTT") + bytes([level, flags]) + keepalive.to_bytes(2, "big")
    if level == 5:
        head += b"\x00"  # no properties
    return _packet(CONNECT, 0, head + payload)


def publish(topic: str, payload: bytes, qos: int = 0, retain: bool = False,
            packet_id: int = 0, level: int = 4) -> bytes:
    body = _string(topic)
    if qos:
        body += packet_id.to_bytes(2, "big")
    if level == 5:
        body += b"\x00"
    return _packet(PUBLISH, qos << 1 | (1 if retain else 0), body + payload)


def puback(packet_id: int) -> bytes:
    # MQTT 5 allows omitting the reason code when it is 0 (success): same bytes in both.
    return _packet(PUBACK, 0, packet_id.to_bytes(2, "big"))


def subscribe(packet_id: int, topics: list[tuple[str, int]], level: int = 4) -> bytes:
    body = packet_id.to_bytes(2, "big") + (b"\x00" if level == 5 else b"")
    for topic, qos in topics:
        body += _string(topic) + bytes([qos])
    return _packet(SUBSCRIBE, 0x02, body)


PINGREQ_BYTES = _packet(PINGREQ, 0, b"")
DISCONNECT_BYTES = _packet(DISCONNECT, 0, b"")


@dataclass(frozen=True)
class Packet:
    kind: int
    flags: int
    body: bytes


@dataclass(frozen=True)
class Publish:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    packet_id: int


def _skip_properties(body: bytes, pos: int) -> int:
    length, pos = _read_varint(body, pos)
    return pos + length


def _read_varint(data: bytes | bytearray, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    for i in range(4):
        if pos + i >= len(data):
            raise IndexError
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos + i + 1
        shift += 7
    raise ProtocolError("remaining length longer than 4 bytes")


class Reader:
    """Splits a byte stream into packets (bytes may arrive in any pieces)."""

    def __init__(self, max_packet: int = 4 * 1024 * 1024) -> None:
        self._buf = bytearray()
        self.max_packet = max_packet

    def feed(self, data: bytes) -> list[Packet]:
        self._buf += data
        out: list[Packet] = []
        while len(self._buf) >= 2:
            try:
                length, start = _read_varint(self._buf, 1)
            except IndexError:
                break
            if length > self.max_packet:
                raise ProtocolError(f"packet of {length} bytes is too large")
            if len(self._buf) < start + length:
                break
            first = self._buf[0]
            out.append(Packet(first >> 4, first & 0x0F, bytes(self._buf[start:start + length])))
            del self._buf[:start + length]
        return out


def parse_connack(body: bytes) -> int:
    """The return code (3.1.1) or reason code (5): 0 is accepted."""
    if len(body) < 2:
        raise ProtocolError("short CONNACK")
    return body[1]


def parse_publish(packet: Packet, level: int) -> Publish:
    body = packet.body
    try:
        n = int.from_bytes(body[0:2], "big")
        topic = body[2:2 + n].decode("utf-8")
        pos = 2 + n
        qos = (packet.flags >> 1) & 0x03
        packet_id = 0
        if qos:
            packet_id = int.from_bytes(body[pos:pos + 2], "big")
            pos += 2
        if level == 5:
            pos = _skip_properties(body, pos)
    except (IndexError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"bad PUBLISH: {exc}") from None
    if pos > len(body) or qos == 3:
        raise ProtocolError("bad PUBLISH")
    return Publish(topic, body[pos:], qos, bool(packet.flags & 1), packet_id)


def parse_ack(body: bytes) -> tuple[int, int]:
    """PUBACK: (packet id, reason code; 0 when absent)."""
    if len(body) < 2:
        raise ProtocolError("short PUBACK")
    return int.from_bytes(body[0:2], "big"), body[2] if len(body) > 2 else 0


def parse_suback(body: bytes, level: int) -> tuple[int, list[int]]:
    if len(body) < 3:
        raise ProtocolError("short SUBACK")
    pid = int.from_bytes(body[0:2], "big")
    pos = 2
    if level == 5:
        try:
            pos = _skip_properties(body, pos)
        except IndexError:
            raise ProtocolError("bad SUBACK properties") from None
    return pid, list(body[pos:])
