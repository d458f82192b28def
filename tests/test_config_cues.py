"""`[audio]` and `[light]` through `cart-agent check-config`: each problem named by its key, a
light wired to no compartment refused, a missing speech program only a warning (the cart must
still start: it reports the speaker failing instead)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import offline_config, write_config
from tests.test_config import cli

COMPARTMENTS = [{"id": "A01", "board": 1, "lock": 1}, {"id": "A02", "board": 1, "lock": 2}]


def test_audio_and_light_problems_are_named_by_key(tmp_path: Path) -> None:
    bad = write_config(tmp_path / "bad.toml", offline_config(
        tmp_path, locker={"compartments": COMPARTMENTS},
        audio={"kind": "file", "volume": 101, "quiet_hours": "22-7", "languages": ["fr"]},
        light={"kind": "gpio", "lines": {"A01": 3, "B09": 4}, "blink_s": 0}))
    out = cli("check-config", "-c", str(bad))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert "audio.volume: Input should be less than or equal to 100" in lines
    assert any(line.startswith("audio.quiet_hours: quiet_hours is") for line in lines), lines
    assert any(line.startswith("audio.languages[0]:") for line in lines), lines
    assert any(line.startswith("light.blink_s:") for line in lines), lines

    typo = write_config(tmp_path / "typo.toml", offline_config(
        tmp_path, locker={"compartments": COMPARTMENTS},
        light={"kind": "gpio", "lines": {"A01": 3, "B09": 4}}))
    out = cli("check-config", "-c", str(typo))
    assert out.returncode == 2
    assert out.stderr.strip() == "light.lines.B09: no compartment B09 in locker.compartments"


def test_a_missing_speech_program_is_only_a_warning(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    conf = write_config(tmp_path / "agent.toml", offline_config(
        tmp_path, audio={"kind": "alsa", "languages": ["zh", "en"], "quiet_hours": "22:00-07:00"}))
    monkeypatch.setenv("PATH", str(tmp_path))  # neither espeak-ng nor aplay found
    out = cli("check-config", "-c", str(conf))
    assert out.returncode == 0, out.stderr
    assert "warning: audio: espeak-ng is not installed (Debian package espeak-ng)" in out.stderr
    assert "warning: audio: aplay is not installed (Debian package alsa-utils)" in out.stderr
    assert "audio            alsa, speaks zh, en, quiet 22:00-07:00" in out.stdout
