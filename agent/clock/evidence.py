"""Durable evidence of the time, kept in the store so it survives restarts and power cuts.

Two sources: the newest committed transactions (their `at`; records the cart dated while it
did not know the time say `clock = 'unknown'` and do not count), and the meta row
`clock.evidence` with the newest server time heard (an ack does not commit a transaction).
The store is reached through a narrow protocol: this package imports no store.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from agent.clock.trusted import Persist, TrustedClock
from agent.contract import parse_rfc3339, rfc3339

log = logging.getLogger(__name__)

META_KEY = "clock.evidence"
NEWEST_ROWS = 200  # records dated before a wall clock jump back can sit a little below the top


class EvidenceStore(Protocol):
    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]: ...

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str | None) -> None: ...


def newest_record(store: EvidenceStore) -> float | None:
    rows = store.query(
        "SELECT MAX(at) AS at FROM (SELECT at, clock FROM transactions ORDER BY seq DESC "
        f"LIMIT {NEWEST_ROWS}) WHERE clock IS NULL OR clock != 'unknown'")
    text = rows[0]["at"] if rows else None
    return _parse(text)


def kept_evidence(store: EvidenceStore) -> tuple[float, str] | None:
    raw = store.get_meta(META_KEY)
    if not raw:
        return None
    try:
        doc = json.loads(raw)
        at = _parse(doc.get("at"))
        kind = str(doc.get("kind") or "server")
    except (ValueError, AttributeError):
        log.warning("ignored an unreadable %s row", META_KEY)
        return None
    return None if at is None else (at, kind)


def load(clock: TrustedClock, store: EvidenceStore) -> None:
    """Give the clock what the store knows (at start, before anything is dated)."""
    newest = newest_record(store)
    if newest is not None:
        clock.loaded(newest, "store")
    kept = kept_evidence(store)
    if kept is not None:
        clock.loaded(kept[0], "store")


def keeper(store: EvidenceStore, errors: type[Exception]) -> Persist:
    """The clock's `persist` callback: writes the newest server time heard into the store.
    A store that cannot take it (a full disk) costs only this evidence, logged once."""
    failed = False

    def persist(at: float, kind: str) -> None:
        nonlocal failed
        try:
            store.set_meta(META_KEY, json.dumps({"at": rfc3339(at), "kind": kind}))
            failed = False
        except errors as exc:
            if not failed:
                log.error("could not keep the clock evidence: %s", exc)
            failed = True

    return persist


def _parse(text: object) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None
