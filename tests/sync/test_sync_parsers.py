"""Property tests of what parses network input and builds batches: no input crashes them."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.contract import parse_rfc3339
from agent.ids import new_ulid
from agent.store import Store, Tx
from agent.sync.command_ledger import CommandDesk
from agent.sync.downlink import ControlError, read_control
from agent.sync.outbox import encode_batch, parse_ack, read_ack
from fleet.ingest import BadPayload, parse_tx_message

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


@SETTINGS
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_ack_parser_returns_ids_or_refuses(payload: bytes) -> None:
    try:
        ids = parse_ack(payload)
    except ControlError:
        return
    assert all(isinstance(i, str) for i in ids)


@SETTINGS
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
       st.sampled_from([{}, {"k1": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]))
def test_control_reader_returns_an_object_or_refuses(payload: bytes, keys: dict) -> None:
    try:
        doc = read_control(payload, keys, "command")
    except ControlError as exc:
        refused: str | None = str(exc)
    else:
        refused = None
        assert isinstance(doc, dict)
        assert not keys
    assert refused is None or refused  # a refusal always says why


@SETTINGS
@given(st.dictionaries(st.sampled_from(["id", "name", "args", "cart", "x"]), json_values,
                       max_size=5)
       | st.fixed_dictionaries({"id": st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True),
                                "name": st.sampled_from(["ping", "reprint", "open_compartment",
                                                         "set_out_of_service", "nope"]),
                                "args": st.dictionaries(st.sampled_from(
                                    ["tx_id", "compartment", "on", "jti"]), json_values,
                                    max_size=2)}))
def test_command_desk_always_answers(doc: dict[str, Any]) -> None:
    calls: list[str] = []

    def handler(name: str, args: dict[str, Any]) -> object:
        calls.append(name)
        return {"ok": name}

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "cart.db", "bc-01")
        try:
            desk = CommandDesk(store, "bc-01", handler)
            result = desk.handle(json.dumps(doc).encode(), {})
            assert set(result) == {"id", "ok", "result", "error"}
            assert isinstance(result["ok"], bool)
            assert result["ok"] == (result["error"] is None)
            assert len(calls) <= 1
            assert (not calls or result["ok"])
            again = desk.handle(json.dumps(doc).encode(), {})
            assert again == result
            assert len(calls) <= 1
        finally:
            store.close()


tx_data = st.dictionaries(st.text(max_size=6), st.text(alphabet="ab米饭青菜￥ \"\\\n", max_size=40)
                          | st.integers(), max_size=4)


@SETTINGS
@given(st.lists(tx_data, min_size=1, max_size=30), st.integers(min_value=1024, max_value=4096))
def test_batches_round_trip_and_respect_the_byte_limit(datas: list, max_bytes: int) -> None:
    txs = [Tx(id=new_ulid(), seq=i + 1, cart="bc-01", type="meal.pickup",
              at="2024-06-11T08:00:00.000Z", data=d) for i, d in enumerate(datas)]
    payload, count = encode_batch("bc-01", txs, max_bytes)
    assert 1 <= count <= len(txs)
    assert count == 1 or len(payload) <= max_bytes
    doc = json.loads(payload)
    assert doc == {"cart": "bc-01", "txs": [tx.wire() for tx in txs[:count]]}
    cart, rows, bad = parse_tx_message("carts", "carts/bc-01/tx", payload)
    assert (cart, bad) == ("bc-01", 0)
    assert [r[0] for r in rows] == [tx.id for tx in txs[:count]]


@SETTINGS
@given(st.binary(max_size=400) | json_values.map(lambda v: json.dumps(v).encode()),
       st.sampled_from(["carts/bc-01/tx", "carts/BAD/tx", "carts/bc-01/status", "x"]))
def test_ingest_parser_refuses_or_returns_valid_rows(payload: bytes, topic: str) -> None:
    try:
        cart, rows, _bad = parse_tx_message("carts", topic, payload)
    except BadPayload:
        return
    assert cart == "bc-01"
    assert all(r[1] == "bc-01" for r in rows)


def test_record_clock_and_server_time_on_the_wire() -> None:
    txs = [Tx(id=new_ulid(), seq=i + 1, cart="bc-01", type="ticket.issue",
              at="2026-12-02T08:00:00.000Z", data={}, clock=clock)
           for i, clock in enumerate(["wall", "corrected", "unknown", None])]
    wires = [tx.wire() for tx in txs]
    assert [w.get("clock") for w in wires] == [None, "corrected", "unknown", None]
    payload, count = encode_batch("bc-01", txs, 65536)
    _cart, rows, bad = parse_tx_message("carts", "carts/bc-01/tx", payload)
    assert (len(rows), bad, count) == (4, 0, 4)
    forged = json.dumps({"cart": "bc-01", "txs": [{**wires[1], "clock": "sundial"}]}).encode()
    assert parse_tx_message("carts", "carts/bc-01/tx", forged)[1:] == ([], 1)
    ids, at = read_ack(json.dumps({"ids": [txs[0].id], "at": "2026-12-02T08:00:01.000Z"}
                                  ).encode())
    assert ids == [txs[0].id]
    assert at == parse_rfc3339("2026-12-02T08:00:01.000Z")
    assert read_ack(json.dumps({"ids": [], "at": "yesterday"}).encode()) == ([], None)
    assert read_ack(b'{"ids": []}') == ([], None)
