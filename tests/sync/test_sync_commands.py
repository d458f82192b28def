"""Commands over a real broker: carried out at most once per id, answered from the ledger,
bad ones refused with a reason on cmd/result."""

from __future__ import annotations

import json

from tests.sync.synckit import CMD, RESULT, send


def done_txs(cart) -> list[dict]:
    rows = cart.store.query("SELECT data FROM transactions WHERE type = 'command.done' "
                            "ORDER BY seq")
    return [json.loads(r["data"]) for r in rows]


def test_builtin_commands(broker, make_cart, make_watcher):
    watcher = make_watcher(broker.port, [RESULT])
    cart = make_cart(broker.port).start()
    cart.wait_online()
    result = send(watcher, {"id": "c-1", "name": "ping", "args": {}})
    assert result["id"] == "c-1"
    assert result["ok"] is True
    assert result["error"] is None
    assert result["result"]["pong"] is True
    assert set(result) == {"id", "ok", "result", "error"}
    cart.record(2)
    result = send(watcher, {"id": "c-2", "name": "sync_now"})  # args may be left out
    assert result["ok"] is True
    assert result["result"]["pending"] >= 0
    assert cart.executed == []  # built-ins never reach the daemon's handler
    assert [d["name"] for d in done_txs(cart)] == ["ping", "sync_now"]


def test_a_command_id_is_carried_out_at_most_once(broker, make_cart, make_watcher):
    watcher = make_watcher(broker.port, [RESULT])
    cart = make_cart(broker.port).start()
    cart.wait_online()
    cmd = {"id": "open-7", "name": "open_compartment", "args": {"compartment": "A01"}}
    first = send(watcher, cmd)
    assert first == {"id": "open-7", "ok": True, "result": {"done": "open_compartment"},
                     "error": None}
    again = send(watcher, cmd)
    assert again == first
    assert cart.executed == [("open_compartment", {"compartment": "A01"})]

    # After a restart with the same store: still answered from the ledger, not run.
    cart.stop()
    cart.start()
    cart.wait_online()
    assert send(watcher, cmd) == first
    assert len(cart.executed) == 1
    assert len(done_txs(cart)) == 1

    # The daemon's refusal is an answer too, kept in the ledger like a success.
    failing = {"id": "open-8", "name": "open_compartment", "args": {"compartment": "Z99"}}
    result = send(watcher, failing)
    assert result["ok"] is False
    assert result["error"] == "no such compartment: Z99"
    assert send(watcher, failing) == result
    assert len(cart.executed) == 2


def test_started_but_never_finished_is_answered_interrupted(broker, make_cart, make_watcher):
    watcher = make_watcher(broker.port, [RESULT])
    cart = make_cart(broker.port)
    # What a crash between "started" and "done" leaves in the ledger.
    with cart.store.write() as w:
        w.execute("INSERT INTO commands(id, name, received_at, state) "
                  "VALUES ('open-9', 'open_compartment', '2024-01-01T00:00:00Z', 'started')")
    cart.start()
    cart.wait_online()
    cmd = {"id": "open-9", "name": "open_compartment", "args": {"compartment": "A01"}}
    result = send(watcher, cmd)
    assert result["ok"] is False
    assert result["error"].startswith("interrupted")
    assert send(watcher, cmd) == result
    assert cart.executed == []
    assert [d["error"][:11] for d in done_txs(cart)] == ["interrupted"]


def test_bad_commands_are_refused_with_a_reason(broker, make_cart, make_watcher):
    watcher = make_watcher(broker.port, [RESULT])
    cart = make_cart(broker.port).start()
    cart.wait_online()
    cases = [
        (b"not json", None, "not valid JSON"),
        (b"\xff", None, "not UTF-8"),
        (b'"a string"', None, "not a JSON object"),
        ({"id": 5, "name": "ping"}, None, "id: must be a string"),
        ({"id": "bad id!", "name": "ping"}, "bad id!", "id: must be a string"),
        ({"id": "b1", "name": "ping", "extra": 1}, "b1", "unknown member(s): extra"),
        ({"id": "b2", "name": 3}, "b2", "name: must be a non-empty string"),
        ({"id": "b3", "name": "ping", "args": [1]}, "b3", "args: must be an object"),
        ({"id": "b4", "name": "self_destruct"}, "b4", "unknown command 'self_destruct'"),
        ({"id": "b5", "name": "open_compartment", "args": {}}, "b5",
         "missing argument 'compartment'"),
        ({"id": "b6", "name": "open_compartment", "args": {"compartment": 1}}, "b6",
         "argument 'compartment' must be str"),
        ({"id": "b7", "name": "set_out_of_service", "args": {"on": 1}}, "b7",
         "argument 'on' must be bool"),
        ({"id": "b8", "name": "reprint", "args": {"tx_id": "x", "copies": 2}}, "b8",
         "unknown argument(s): copies"),
        ({"id": "b9", "name": "revoke_token", "args": {"jti": "x" * 200}}, "b9",
         "must be 1-128 characters"),
        ({"id": "b10", "name": "ping", "cart": "bc-02"}, "b10", "for cart 'bc-02'"),
        (json.dumps({"id": "b11", "name": "ping", "args": {"x": "a" * 300_000}}), None,
         "more than 262144"),
        (b"[" * 50_000 + b"]" * 50_000, None, "nested too deeply"),
    ]
    for payload, expected_id, reason in cases:
        result = send(watcher, payload)
        assert result["ok"] is False, payload
        assert result["result"] is None, payload
        assert result["id"] == expected_id, (payload, result)
        assert reason in result["error"], (reason, result["error"])
    assert cart.executed == []
    assert cart.service.online()
    # Refused ids were not burnt: the same id, well formed, runs.
    ok = send(watcher, {"id": "b5", "name": "open_compartment", "args": {"compartment": "A1"}})
    assert ok["ok"] is True
    assert len(cart.executed) == 1


def test_a_retained_command_is_refused_not_run_at_reconnect(broker, make_cart, make_watcher):
    watcher = make_watcher(broker.port, [RESULT])
    # Left retained on the broker while the cart was away.
    watcher.publish(CMD, json.dumps({"id": "r-1", "name": "open_compartment",
                                     "args": {"compartment": "A01"}}), retain=True)
    cart = make_cart(broker.port).start()
    cart.wait_online()
    result = watcher.wait_for(RESULT)
    assert result["ok"] is False
    assert "retained commands are refused" in result["error"]
    assert cart.executed == []
