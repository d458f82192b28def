"""The config of what residents hear and see besides the screen: `[audio]` (spoken prompts and
tones) and `[light]` (a light over the opened compartment). Bounded like every other table."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

QUIET_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AudioConfig(_Strict):
    kind: Literal["alsa", "file", "none"] = "none"
    # `file`: the directory each sound is written to as a WAV file, in the order played;
    # the newest `keep` files are kept (0: all).
    path: Annotated[str, Field(max_length=4096)] = ""
    keep: Annotated[int, Field(ge=0, le=1_000_000)] = 1000
    # `alsa`: the PCM device (`aplay -L` lists them), e.g. "plughw:CARD=Device,DEV=0".
    device: Annotated[str, Field(min_length=1, max_length=255)] = "default"
    volume: Annotated[int, Field(ge=0, le=100)] = 80
    # "HH:MM-HH:MM" in the cart's time zone (may wrap midnight): no speech, tones kept.
    quiet_hours: Annotated[str, Field(max_length=11)] = ""
    languages: Annotated[list[Literal["zh", "en"]], Field(max_length=2)] = ["zh"]
    queue: Annotated[int, Field(ge=1, le=64)] = 8

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str) -> str:
        if value and not QUIET_HOURS.match(value):
            raise ValueError("quiet_hours is \"HH:MM-HH:MM\" (e.g. \"22:00-07:00\") or empty")
        if value and value[:5] == value[6:]:
            raise ValueError("quiet_hours must not start and end at the same time")
        return value

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each language once")
        return value

    @model_validator(mode="after")
    def _path(self) -> AudioConfig:
        if self.kind == "file" and not self.path:
            raise ValueError("kind = 'file' needs path (a directory)")
        return self

    def quiet_minutes(self) -> tuple[int, int] | None:
        """(start, end) as minutes after midnight; None without quiet hours."""
        m = QUIET_HOURS.match(self.quiet_hours)
        if m is None:
            return None
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        return h1 * 60 + m1, h2 * 60 + m2


LineOffset = Annotated[int, Field(ge=0, le=1023)]


class LightConfig(_Strict):
    kind: Literal["gpio", "file", "none"] = "none"
    # `gpio`: the GPIO character device (libgpiod) the lights are wired to.
    chip: Annotated[str, Field(min_length=1, max_length=255)] = "/dev/gpiochip0"
    # A light per compartment: compartment id -> line offset on the chip ...
    lines: Annotated[dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,8}$")], LineOffset],
                     Field(max_length=255)] = {}
    # ... and/or one light for the whole cart, blinking for whichever compartment opened.
    cart_line: LineOffset | None = None
    active_low: bool = False
    # `file`: every change of a light is appended here as a JSON line (tests, carts without).
    path: Annotated[str, Field(max_length=4096)] = ""
    blink_s: Annotated[float, Field(ge=0.1, le=5)] = 0.5
    # A door never seen open stops blinking after this long (the open is then being checked).
    max_blink_s: Annotated[float, Field(ge=1, le=600)] = 60.0

    @model_validator(mode="after")
    def _outputs(self) -> LightConfig:
        if self.kind == "file" and not self.path:
            raise ValueError("kind = 'file' needs path")
        if self.kind == "gpio" and not self.lines and self.cart_line is None:
            raise ValueError("kind = 'gpio' needs lines or cart_line")
        offsets = list(self.lines.values()) + (
            [self.cart_line] if self.cart_line is not None else [])
        if len(set(offsets)) != len(offsets):
            raise ValueError("each light needs its own line")
        return self
