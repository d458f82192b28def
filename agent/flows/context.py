"""What every flow needs, built once by the daemon: config, store, devices, feedback."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.clock import TrustedClock
from agent.config import AgentConfig
from agent.contract import rfc3339
from agent.devices.lockboard.frames import LockAddress, LockerUnavailable
from agent.devices.lockboard.unlock import OpenResult
from agent.devices.protocols import Light, Locker
from agent.flows import phrases
from agent.flows.compartments import Compartments
from agent.flows.feedback import Feedback, FeedbackBus
from agent.flows.refusals import ScanRefused
from agent.flows.tokens import TokenVerifier
from agent.jws import key_map
from agent.store import Store, Writer

log = logging.getLogger("agent.flows")


@dataclass
class CartContext:
    cfg: AgentConfig
    store: Store
    locker: Locker | None
    feedback: FeedbackBus
    clock: Callable[[], float] = time.time
    trusted: TrustedClock | None = None  # the daemon's clock: evidence, `unknown` refusals
    compartments: Compartments = field(init=False)
    verifier: TokenVerifier = field(init=False)
    wake_printer: Callable[[], None] = lambda: None
    light: Light | None = None

    def __post_init__(self) -> None:
        self.compartments = Compartments(self.store)
        sec = self.cfg.security
        self.verifier = TokenVerifier(key_map(sec.token_keys), self.cfg.cart_id,
                                      sec.clock_skew_s, sec.max_token_bytes, clock=self.clock,
                                      trusted=self.trusted)

    def say(self, kind: str, phrase: str, reason: str | None = None,
            params: dict[str, Any] | None = None, **details: Any) -> Feedback:
        """Answer with an entry of the phrase table: the screens' words and the speaker's
        come from it, filled from `details` (and `params`, facts only the words use)."""
        return self._answer(kind, phrase, reason, params or {}, details)

    def _answer(self, kind: str, phrase: str, reason: str | None, params: dict[str, Any],
                details: dict[str, Any]) -> Feedback:
        words = phrases.params_for(phrase, {**details, **params})
        zh, en = phrases.screen(phrase, words)
        event = self.feedback.publish(Feedback(kind=kind, zh=zh, en=en, reason=reason,
                                               details=details, at=self.clock(),
                                               phrase=phrase, params=words))
        log.info("feedback %s: %s / %s", kind, zh, en,
                 extra={"fields": {"reason": reason, **{k: str(v) for k, v in details.items()}}})
        return event

    def refuse(self, refusal: ScanRefused, **details: Any) -> Feedback:
        return self._answer("refused", refusal.reason, refusal.reason, {},
                            {"detail": refusal.detail, **details, **refusal.facts})

    def light_on(self, comp_id: str) -> None:
        """Blink the compartment's light (if the cart has one) until its door is seen open."""
        if self.light is not None:
            self.light.blink(comp_id)

    def light_off(self, comp_id: str) -> None:
        if self.light is not None:
            self.light.stop(comp_id)

    def open_lock(self, board: int, lock: int) -> OpenResult:
        if self.locker is None:
            raise LockerUnavailable("no locker configured on this cart")
        return self.locker.open(LockAddress(board, lock),
                                timeout_s=self.cfg.locker.open_timeout_s * 3 + 1)

    def queue_print(self, w: Writer, tx_id: str, kind: str) -> None:
        if self.cfg.printer.kind == "none":
            return
        w.execute("INSERT INTO print_jobs(tx_id, kind, created_at, state, attempts) "
                  "VALUES (?, ?, ?, 'queued', 0)", (tx_id, kind, rfc3339(self.clock())))
