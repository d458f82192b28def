"""What the resident is told after each scan, as a stream the screens and the logs consume."""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Feedback:
    kind: str                 # "accepted" | "refused" | "info" | "deposit"
    zh: str
    en: str
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)
    id: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FeedbackBus:
    """Fan-out to any number of subscribers; a slow subscriber loses old events, never blocks."""

    def __init__(self, keep: int = 50) -> None:
        self._lock = threading.Lock()
        self._recent: deque[Feedback] = deque(maxlen=keep)
        self._subscribers: list[queue.Queue[Feedback]] = []
        self._ids = itertools.count(1)

    def publish(self, feedback: Feedback) -> Feedback:
        with self._lock:
            event = Feedback(**{**feedback.__dict__, "id": next(self._ids)})
            self._recent.append(event)
            subscribers = list(self._subscribers)
        for sub in subscribers:
            try:
                sub.put_nowait(event)
            except queue.Full:
                try:
                    sub.get_nowait()
                    sub.put_nowait(event)
                except (queue.Empty, queue.Full):
                    pass
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
