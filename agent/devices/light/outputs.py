"""Where a light's state goes: GPIO lines through libgpiod (the `gpiod` package, version 2:
`pip install 'cart-agent[gpio]'`), or a file of JSON lines for tests and carts without lights.

An output is named by what it lights: a compartment id, or CART for the cart's one light.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from agent.devices.errors import DeviceUnavailable, cause

CART = "*cart*"


class LightOutputs(Protocol):
    def open(self) -> None: ...

    def set(self, output: str, on: bool) -> None: ...

    def close(self) -> None: ...


class FileLights:
    """Appends `{"at", "light", "on"}` per change: what a light would have shown, in order."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
        except OSError as exc:
            raise DeviceUnavailable(f"cannot use {self.path}: {cause(exc)}") from None

    def set(self, output: str, on: bool) -> None:
        line = json.dumps({"at": round(time.time(), 3), "light": output, "on": on})
        try:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        except OSError as exc:
            raise DeviceUnavailable(f"cannot write {self.path}: {cause(exc)}") from None

    def close(self) -> None:
        pass


class GpioLights:
    """Output lines on one GPIO chip, all requested at once and driven inactive first."""

    def __init__(self, chip: str, offsets: Mapping[str, int], active_low: bool) -> None:
        self.chip = chip
        self.offsets = dict(offsets)
        self.active_low = active_low
        self._request: Any = None
        self._values: Any = None

    def open(self) -> None:
        try:
            import gpiod  # type: ignore[import-not-found, unused-ignore]
            from gpiod.line import Direction, Value  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            raise DeviceUnavailable("gpiod (libgpiod's Python bindings, version 2) is not "
                                    "installed: pip install 'cart-agent[gpio]'") from None
        settings = gpiod.LineSettings(direction=Direction.OUTPUT, output_value=Value.INACTIVE,
                                      active_low=self.active_low)
        try:
            self._request = gpiod.request_lines(
                self.chip, consumer="cart-agent",
                config={tuple(sorted(set(self.offsets.values()))): settings})
        except OSError as exc:
            raise DeviceUnavailable(f"cannot open {self.chip}: {cause(exc)}") from None
        self._values = Value

    def set(self, output: str, on: bool) -> None:
        offset = self.offsets.get(output)
        if offset is None or self._request is None:
            return
        try:
            self._request.set_value(offset,
                                    self._values.ACTIVE if on else self._values.INACTIVE)
        except OSError as exc:
            raise DeviceUnavailable(f"{self.chip} line {offset}: {cause(exc)}") from None

    def close(self) -> None:
        if self._request is not None:
            with contextlib.suppress(OSError):
                self._request.release()
            self._request = None
