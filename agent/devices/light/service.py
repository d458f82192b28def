"""Blinks the light of each opened compartment until its door is seen open.

The flows call `blink` after an open and `stop` when the door moves; both return at once. One
thread owns the outputs and writes only changes. A light whose door is never seen open stops
after `max_blink_s` (the open is then being checked, see agent/flows/open_outcome.py). A cart
light, if there is one, blinks while any compartment does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from agent.devices.light.outputs import CART, LightOutputs
from agent.health import Health


class LightService:
    name = "light"

    def __init__(self, outputs: LightOutputs, lights: Mapping[str, str], cart_light: bool,
                 blink_s: float = 0.5, max_blink_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.outputs = outputs
        self.lights = dict(lights)  # compartment id -> output name
        self.cart_light = cart_light
        self.blink_s = blink_s
        self.max_blink_s = max_blink_s
        self.clock = clock
        self.health = Health("light")
        self._since: dict[str, float] = {}  # compartment -> when its blinking began
        self._cond = threading.Condition()
        self._shown: dict[str, bool] = {}

    def blink(self, compartment: str) -> None:
        with self._cond:
            self._since[compartment] = self.clock()
            self._cond.notify()

    def stop(self, compartment: str) -> None:
        with self._cond:
            if self._since.pop(compartment, None) is not None:
                self._cond.notify()

    def blinking(self) -> set[str]:
        with self._cond:
            return set(self._since)

    def run(self, stop: threading.Event) -> None:
        self.outputs.open()
        self._shown = {}
        try:
            for name in self._names():
                self._show(name, False)
            self.health.set_ok()
            while not stop.is_set():
                self._show_all(self.clock())
                with self._cond:
                    self._cond.wait(self.blink_s / 2 if self._since else 1.0)
        finally:
            for name, on in list(self._shown.items()):
                if on:
                    self._show(name, False)
            self.outputs.close()

    def _names(self) -> set[str]:
        return set(self.lights.values()) | ({CART} if self.cart_light else set())

    def _show_all(self, now: float) -> None:
        with self._cond:
            for comp, since in list(self._since.items()):
                if now - since > self.max_blink_s:
                    del self._since[comp]
            active = dict(self._since)
        wanted = dict.fromkeys(self._names(), False)
        for comp, since in active.items():
            # On for the first half of each period, counted from this light's own start, so
            # a blink shows at once.
            on = int((now - since) / self.blink_s) % 2 == 0
            for name in (self.lights.get(comp), CART if self.cart_light else None):
                if name is not None:
                    wanted[name] = wanted[name] or on
        for name, on in wanted.items():
            self._show(name, on)

    def _show(self, name: str, on: bool) -> None:
        if self._shown.get(name) != on:
            self.outputs.set(name, on)
            self._shown[name] = on
