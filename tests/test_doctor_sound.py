"""`cart-agent doctor`'s speaker and light checks on their own: the programs, the device (the
running agent's view, or opened by the doctor), the GPIO chip's node."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from agent.admin.doctor.context import Context
from agent.admin.doctor.sound import audio, light
from agent.config import validate


def ctx(tmp: Path, live: dict[str, Any] | None = None, **patch: Any) -> Context:
    doc = {"cart_id": "bc-test", "data_dir": str(tmp / "data"), **patch}
    return Context(validate(doc), str(tmp / "agent.toml"), live)


def test_not_configured_is_skipped(tmp_path: Path) -> None:
    assert audio(ctx(tmp_path)).status == light(ctx(tmp_path)).status == "skip"


def test_file_speaker_opens_and_a_broken_one_is_named(tmp_path: Path) -> None:
    if not shutil.which("espeak-ng"):
        pytest.skip("needs espeak-ng")
    check = audio(ctx(tmp_path, audio={"kind": "file", "path": str(tmp_path / "wav")}))
    assert check.status == "ok"
    assert (tmp_path / "wav").is_dir()
    if shutil.which("aplay"):
        broken = audio(ctx(tmp_path, audio={"kind": "alsa", "device": "no-such-speaker"}))
        assert broken.status == "fail"
        assert "ALSA device no-such-speaker" in broken.detail
    live = {"audio": {"ok": False, "error": "AudioError: unplugged"}}
    seen = audio(ctx(tmp_path, live, audio={"kind": "alsa"}))
    assert seen.status == "fail"
    assert "the agent reports: AudioError: unplugged" in seen.detail


def test_missing_programs_fail_with_the_package_to_install(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    check = audio(ctx(tmp_path, audio={"kind": "alsa"}))
    assert check.status == "fail"
    assert "espeak-ng is not installed" in check.detail


def test_a_missing_gpio_chip(tmp_path: Path) -> None:
    check = light(ctx(tmp_path, light={"kind": "gpio", "chip": str(tmp_path / "gpiochip9"),
                                       "cart_line": 4}))
    assert check.status == "fail"
    assert "gpiochip9 does not exist" in check.detail
