"""What the resident is told after each scan, as a stream the screens and the logs consume."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Feedback:
    kind: str                 # "accepted" | "refused" | "info" | "deposit"
    zh: str
    en: str
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)
    id: int = 0
    phrase: str | None = None  # its entry in agent/flows/phrases.py: what the speaker says
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Listener = Callable[[Feedback], None]


class FeedbackBus:
    """Fan-out to any number of subscribers; a slow subscriber loses old events, never blocks.

    A listener is called on the publishing thread (the flow thread): it must only hand the
    event on (the speaker's bounded queue), never wait.
    """

    def __init__(self, keep: int = 50) -> None:
        self._lock = threading.Lock()
        self._recent: deque[Feedback] = deque(maxlen=keep)
        self._subscribers: list[queue.Queue[Feedback]] = []
        self._listeners: list[Listener] = []
        self._ids = itertools.count(1)

    def listen(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unlisten(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def publish(self, feedback: Feedback) -> Feedback:
        with self._lock:
            event = Feedback(**{**feedback.__dict__, "id": next(self._ids)})
            self._recent.append(event)
            subscribers = list(self._subscribers)
            listeners = list(self._listeners)
        for sub in subscribers:
            try:
                sub.put_nowait(event)
            except queue.Full:
                try:
                    sub.get_nowait()
                    sub.put_nowait(event)
                except (queue.Empty, queue.Full):
                    pass
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a listener's fault must never reach the flow that answered
                log.exception("feedback listener failed")
        return event

    def subscribe(self, maxsize: int = 100) -> queue.Queue[Feedback]:
        sub: queue.Queue[Feedback] = queue.Queue(maxsize)
        with self._lock:
            self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: queue.Queue[Feedback]) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    def recent(self) -> list[Feedback]:
        with self._lock:
            return list(self._recent)
