"""The simulator's MQTT codec and its carts, against a real Mosquitto (MQTT 5) and the
reference ingest: a simulated cart must speak exactly the cart's contract."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.ingest import IngestWorker
from fleetsim import wire
from fleetsim.accounting import account
from fleetsim.cart import CartSettings
from fleetsim.fleet import Fleet
from tests.mqtt_broker import MosquittoBroker
from tests.support import wait_for
from tests.sync.synckit import Watcher


@given(st.integers(0, wire.MAX_REMAINING))
def test_varint_round_trip(n):
    encoded = wire.varint(n)
    assert wire._read_varint(encoded, 0) == (n, len(encoded))


@given(st.binary(max_size=300), st.lists(st.integers(1, 50), max_size=20))
def test_reader_splits_packets_from_any_pieces(payload, cuts):
    stream = wire.publish("carts/a/tx", payload, 1, False, 7, 5) + wire.PINGREQ_BYTES
    reader = wire.Reader()
    packets = []
    pos = 0
    for cut in [*cuts, len(stream)]:
        packets += reader.feed(stream[pos:pos + cut])
        pos += cut
    assert [p.kind for p in packets] == [wire.PUBLISH, wire.PINGREQ]
    msg = wire.parse_publish(packets[0], 5)
    assert (msg.topic, msg.payload, msg.qos, msg.packet_id) == ("carts/a/tx", payload, 1, 7)


def test_reader_refuses_garbage():
    with pytest.raises(wire.ProtocolError):
        wire.Reader().feed(b"\x30\xff\xff\xff\xff\x01")
    with pytest.raises(wire.ProtocolError):
        wire.Reader(max_packet=10).feed(b"\x30\x7f")
    with pytest.raises(wire.ProtocolError):
        wire.parse_publish(wire.Packet(wire.PUBLISH, 0, b"\x00\x09ab"), 4)
    with pytest.raises(wire.ProtocolError):
        wire.parse_connack(b"")


def test_accounting_finds_each_kind_of_fault():
    ledger = {"a": [(1, "a1"), (2, "a2"), (3, "a3")]}
    assert account([("a", 1, "a1"), ("a", 2, "a2"), ("a", 3, "a3")], ledger).whole
    lost = account([("a", 1, "a1"), ("a", 3, "a3")], ledger)
    assert lost.lost == 1
    assert lost.gaps == 1
    twice = account([("a", 1, "a1"), ("a", 2, "a2"), ("a", 3, "a3"), ("a", 3, "x")], ledger)
    assert twice.twice == 1
    assert twice.extra == 1
    assert not twice.whole


def test_simulated_carts_speak_the_contract(tmp_path: Path):
    with MosquittoBroker(tmp_path / "broker") as broker:
        ingest = IngestWorker(port=broker.port, db_url=str(tmp_path / "ingest.db")).start()
        watcher = Watcher(broker.port, ["carts/+/status", "carts/+/config/reported",
                                        "carts/+/cmd/result", "carts/+/telemetry"])
        try:
            report = asyncio.run(_run(broker.port, watcher))
        finally:
            ingest.stop()
        statuses = {t.split("/")[1]: json.loads(p) for t, p, _r in watcher.messages
                    if t.endswith("/status")}
        assert set(statuses) == {f"sim-{i:05d}" for i in range(1, 21)}
        # The last word of sim-00001 is its will (the connection was cut, not closed).
        assert statuses["sim-00001"]["state"] == "offline"
        assert statuses["sim-00002"]["state"] == "online"
        assert statuses["sim-00002"]["since"]
        assert statuses["sim-00002"]["agent_version"]
        reports = [json.loads(p) for t, p, _r in watcher.messages
                   if t == "carts/sim-00003/config/reported"]
        assert [(r["version"], r["fleet_version"], r["status"]) for r in reports] == [
            (None, 4, "applied"), (7, 4, "applied")]
        results = [json.loads(p) for t, p, _r in watcher.messages if t.endswith("cmd/result")]
        assert results == [{"id": "c1", "ok": True, "result": "pong", "error": None}]
        assert any(t.endswith("/telemetry") for t, _p, _r in watcher.messages)
        assert report["levels"] == [5]  # Mosquitto speaks MQTT 5
        assert report["stored"] == report["created"] == 200
        watcher.close()


async def _run(port: int, watcher: Watcher) -> dict[str, object]:
    settings = CartSettings(keepalive=5, ack_timeout_s=2.0, telemetry_interval_s=0.5)
    fleet = Fleet([("127.0.0.1", port)], 20, settings)
    await fleet.connect_all(30)
    assert fleet.online_count == 20
    watcher.publish("carts/_all/config/desired", json.dumps({"version": 4, "config": {}}),
                    retain=True)
    watcher.publish("carts/sim-00003/config/desired", json.dumps({"version": 7, "config": {}}),
                    retain=True)
    watcher.publish("carts/sim-00003/config/desired", json.dumps({"version": 6, "config": {}}),
                    retain=True)  # older: ignored, versions only go forward
    watcher.publish("carts/sim-00004/cmd", json.dumps({"id": "c1", "name": "ping", "args": {}}))
    made = await fleet.load(200, 1.0)
    await fleet.wait(lambda: fleet.pending() == 0, 30, "acks")
    fleet.carts[0].transport.abort()  # type: ignore[union-attr]  # a cut: the will
    await fleet.wait(lambda: fleet.online_count == 20 and fleet.counters["disconnects"] == 1,
                     30, "the reconnect")
    await asyncio.to_thread(wait_for, lambda: len([
        t for t, _p, _r in watcher.messages if t == "carts/sim-00003/config/reported"]) >= 2,
        10, 0.02, "reports")
    fleet.carts[0].power_off()

    def last_status() -> bytes:
        return [p for t, p, _r in watcher.messages if t == "carts/sim-00001/status"][-1]

    await asyncio.to_thread(wait_for, lambda: b'"offline"' in last_status(), 10, 0.02,
                            "the will")
    snapshot = list(watcher.messages)
    await fleet.close()
    watcher.messages[:] = snapshot
    fleet.check_ledger()
    return {"levels": next(iter(fleet._levels.values())), "created": made,
            "stored": fleet.counters["acked_txs"]}
