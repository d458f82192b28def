"""Remote commands: checked, carried out at most once per id, answered from a ledger.

The ledger row is committed as 'started' before the command runs. A redelivered id (MQTT
QoS 1 redelivers; a fleet tool retries) is answered from the ledger and never run again, also
after a restart; a row still 'started' means the process died while running it, so the answer
is "interrupted" (whether the door opened is for the operator to check, not for us to retry).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from agent.contract import COMMAND_ID_PATTERN, CommandError, check_args, rfc3339
from agent.store import Store, StoreError
from agent.sync.downlink import ControlError, peek_id, read_control, server_time

log = logging.getLogger(__name__)

ID_PATTERN = re.compile(COMMAND_ID_PATTERN)
# `cart`: optional binding, see check_envelope; `at`: the server's time (contract section 6)
ENVELOPE_KEYS = {"id", "name", "args", "cart", "at"}


def check_envelope(doc: dict[str, Any], cart_id: str) -> tuple[str, str, dict[str, Any]]:
    """The id, name and args of a command document, or CommandError."""
    cmd_id = doc.get("id")
    if not isinstance(cmd_id, str) or not ID_PATTERN.match(cmd_id):
        raise CommandError("id: must be a string of 1-64 characters [A-Za-z0-9_.:-]")
    unknown = sorted(set(doc) - ENVELOPE_KEYS)
    if unknown:
        raise CommandError(f"unknown member(s): {', '.join(unknown)}")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise CommandError("name: must be a non-empty string")
    args = doc.get("args", {})
    if not isinstance(args, dict):
        raise CommandError("args: must be an object")
    # A signed command may name its cart, so it cannot be replayed at another cart.
    if "cart" in doc and doc["cart"] != cart_id:
        raise CommandError(f"command is for cart {doc['cart']!r}, not {cart_id!r}")
    return cmd_id, name, args


def answer(cmd_id: str | None, ok: bool, result: Any = None, error: str | None = None
           ) -> dict[str, Any]:
    return {"id": cmd_id, "ok": ok, "result": result, "error": error}


class CommandDesk:
    """Turns a `cmd` message into its `cmd/result` answer, using the `commands` ledger."""

    def __init__(self, store: Store, cart_id: str,
                 handler: Callable[[str, dict[str, Any]], object],
                 clock: Callable[[], float] = time.time,
                 on_server_time: Callable[[float, bool], None] | None = None) -> None:
        self.store = store
        self.cart_id = cart_id
        self.handler = handler
        self.clock = clock
        self.on_server_time = on_server_time

    def handle(self, payload: bytes, fleet_keys: dict[str, str]) -> dict[str, Any]:
        try:
            doc = read_control(payload, fleet_keys, "command")
            cmd_id, name, args = check_envelope(doc, self.cart_id)
        except (ControlError, CommandError) as exc:
            seen_id = peek_id(payload)
            log.warning("command %s refused: %s", seen_id or "(no id)", exc)
            return answer(seen_id, False, error=str(exc))
        at = server_time(doc, "command")
        if at is not None and self.on_server_time is not None:
            self.on_server_time(at, True)  # commands are live: retained ones are refused
        previous = self._lookup(cmd_id)
        if previous is not None:
            return previous
        try:
            check_args(name, args)
        except CommandError as exc:
            log.warning("command %s refused: %s", cmd_id, exc.reason)
            return answer(cmd_id, False, error=exc.reason)
        if not self._start(cmd_id, name):
            return self._lookup(cmd_id) or answer(cmd_id, False, error="already received")
        log.info("command %s: %s", cmd_id, name)
        outcome = self._execute(cmd_id, name, args)
        self._finish(cmd_id, name, outcome)
        return outcome

    def _execute(self, cmd_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            result = self.handler(name, args)
        except CommandError as exc:
            return answer(cmd_id, False, error=exc.reason)
        except Exception as exc:  # the handler is the daemon's code; its bug must not stop sync
            log.exception("command %s (%s) failed", cmd_id, name)
            return answer(cmd_id, False, error=f"failed: {type(exc).__name__}")
        try:
            json.dumps(result)
        except (TypeError, ValueError):
            return answer(cmd_id, False, error="result is not JSON")
        return answer(cmd_id, True, result=result)

    # --- the ledger -------------------------------------------------------------------

    def _lookup(self, cmd_id: str) -> dict[str, Any] | None:
        rows = self.store.query("SELECT name, state, result FROM commands WHERE id = ?",
                                (cmd_id,))
        if not rows:
            return None
        row = rows[0]
        if row["state"] == "done" and row["result"]:
            log.info("command %s was already carried out; answering from the ledger", cmd_id)
            stored: dict[str, Any] = json.loads(row["result"])
            return stored
        # Started but never finished: the process died while running it. Say so, once and
        # for good, and never run it again.
        outcome = answer(cmd_id, False, error="interrupted: the agent stopped while running it")
        log.warning("command %s (%s) was interrupted by a restart", cmd_id, row["name"])
        self._finish(cmd_id, row["name"], outcome)
        return outcome

    def _start(self, cmd_id: str, name: str) -> bool:
        with self.store.write() as w:
            cur = w.execute(
                "INSERT INTO commands(id, name, received_at, state) VALUES (?, ?, ?, 'started') "
                "ON CONFLICT(id) DO NOTHING",
                (cmd_id, name, rfc3339(self.clock())),
            )
            return cur.rowcount == 1

    def _finish(self, cmd_id: str, name: str, outcome: dict[str, Any]) -> None:
        try:
            with self.store.write() as w:
                w.execute("UPDATE commands SET state = 'done', result = ? WHERE id = ?",
                          (json.dumps(outcome, ensure_ascii=False), cmd_id))
                w.append("command.done", {"id": cmd_id, "name": name, "ok": outcome["ok"],
                                          "result": outcome["result"], "error": outcome["error"]})
        except StoreError as exc:
            # The row stays 'started': a redelivery answers "interrupted", never runs it again.
            log.error("command %s: could not record the outcome: %s", cmd_id, exc)
