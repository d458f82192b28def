"""A pushed [audio] change rebuilds the speaker and nothing else; its paths need a root key."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flows.test_voice import heard, sounds
from tests.mqtt_broker import MosquittoBroker
from tests.sync.synckit import Watcher
from tests.test_one_owner import REPORTED, online_rig, push

pytestmark = pytest.mark.skipif(not shutil.which("espeak-ng"), reason="needs espeak-ng")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    b = MosquittoBroker(tmp_path / "broker").start()
    yield b
    b.close()


def test_pushed_languages_take_effect_and_the_path_needs_root(tmp_path: Path,
                                                              broker: MosquittoBroker) -> None:
    rig = online_rig(tmp_path, broker.port, audio={"kind": "file",
                                                   "path": str(tmp_path / "sounds")})
    watcher = Watcher(broker.port, [REPORTED])
    try:
        rig.scan("hello")
        assert [label for label, _ in heard(rig, 3)] == ["tone-read", "tone-refused",
                                                         "zh-not_a_label"]
        flows = rig.daemon.cart
        report = push(watcher, 1, {"audio": {"languages": ["en", "zh"], "volume": 60}})
        assert report["status"] == "applied", report
        assert rig.daemon.cart is flows          # the flows were not rebuilt for a speaker
        rig.scan("hello")
        assert [label for label, _ in heard(rig, 7)[3:]] == [
            "tone-read", "tone-refused", "en-not_a_label", "zh-not_a_label"]

        report = push(watcher, 2, {"audio": {"path": str(tmp_path / "elsewhere")}})
        assert report["status"] == "rejected", report
        assert "audio.path" in report["errors"][0]
        assert rig.daemon.cfg.audio.path == str(tmp_path / "sounds")
        assert len(sounds(rig)) == 7
    finally:
        watcher.close()
        rig.stop()
