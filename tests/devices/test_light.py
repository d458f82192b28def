"""The light service without the daemon: a compartment's light and the cart's light blink
while the door is shut, stop when told, stop by themselves after max_blink_s, and end dark."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from agent.config_cues import LightConfig
from agent.devices.errors import DeviceUnavailable
from agent.devices.light.outputs import CART, FileLights, GpioLights
from agent.devices.light.service import LightService
from tests.support import wait_for


class Recorder:
    def __init__(self) -> None:
        self.changes: list[tuple[str, bool]] = []
        self.closed = False

    def open(self) -> None:
        pass

    def set(self, output: str, on: bool) -> None:
        self.changes.append((output, on))

    def close(self) -> None:
        self.closed = True


def test_blink_stop_and_give_up() -> None:
    out = Recorder()
    light = LightService(out, {"A01": "A01", "A02": "A02"}, cart_light=True, blink_s=0.1,
                         max_blink_s=1.0)
    stop = threading.Event()
    thread = threading.Thread(target=light.run, args=(stop,), daemon=True)
    thread.start()
    wait_for(lambda: light.health.ok)
    assert set(out.changes) == {("A01", False), ("A02", False), (CART, False)}
    light.blink("A01")
    wait_for(lambda: out.changes.count(("A01", True)) >= 3, what="A01 blinking")
    assert ("A02", True) not in out.changes
    assert (CART, True) in out.changes           # the cart's light blinks with any
    light.stop("A01")
    wait_for(lambda: out.changes[-1][1] is False and "A01" not in light.blinking())
    light.blink("A02")                            # never seen open: gives up after 1 s
    wait_for(lambda: "A02" not in light.blinking(), timeout_s=3, what="A02 given up")
    stop.set()
    thread.join(2)
    last = {name: on for name, on in out.changes}
    assert last == {"A01": False, "A02": False, CART: False}
    assert out.closed


def test_file_lights_and_missing_gpio_are_clear_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "f"
    blocker.write_text("")
    with pytest.raises(DeviceUnavailable, match="cannot use"):
        FileLights(str(blocker / "lights.jsonl")).open()
    gpio = GpioLights(str(tmp_path / "no-gpiochip"), {"A01": 3}, active_low=False)
    with pytest.raises(DeviceUnavailable, match=r"gpiod|no-gpiochip"):
        gpio.open()


def test_light_config_says_which_lights_exist() -> None:
    with pytest.raises(ValueError, match="needs lines or cart_line"):
        LightConfig(kind="gpio")
    with pytest.raises(ValueError, match="its own line"):
        LightConfig(kind="gpio", lines={"A01": 3}, cart_line=3)
    assert LightConfig(kind="gpio", cart_line=5).cart_line == 5
