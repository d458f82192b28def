"""A camera scanner on a recorded video stops cleanly: `cart-agent scan-test`, the daemon on
SIGTERM, and a pushed config that rebuilds the scanner all end with exit status 0, never the
C++ runtime's abort ("terminate called without an active exception", status 134) that a
process exiting under a running OpenCV capture gets. Real processes, a real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.mqtt_broker import MosquittoBroker
from tests.support import write_config
from tests.sync.synckit import DESIRED, REPORTED, STATUS, Watcher, cart_document, push

cv2 = pytest.importorskip("cv2", reason="opencv (camera extra) not installed")
ABORT = "terminate called"


def qr_frame(text: str) -> Any:
    import numpy as np
    import segno

    matrix = segno.make(text, micro=False).matrix_iter(scale=6, border=4)
    code = np.array([[0 if dark else 255 for dark in row] for row in matrix], dtype=np.uint8)
    canvas = np.full((360, 640), 255, dtype=np.uint8)
    canvas[60:300, 200:440] = cv2.resize(code, (240, 240), interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "scans.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 360))
    for text in ("CAM-VIDEO-1", "CAM-VIDEO-2"):
        for _ in range(20):
            writer.write(qr_frame(text))
    writer.release()
    return path


def agent(*args: str) -> list[str]:
    return [sys.executable, "-m", "agent", *args]


def camera_config(tmp_path: Path, video: Path, **extra: Any) -> Path:
    doc = {"cart_id": "bc-01", "data_dir": str(tmp_path / "data"),
           "scanner": {"kind": "camera", "camera": str(video)},
           "printer": {"kind": "none"}, "locker": {"enabled": False},
           "mqtt": {"enabled": False}, "web": {"enabled": False}}
    return write_config(tmp_path / "agent.toml", {**doc, **extra})


def test_scan_test_on_a_recorded_video_exits_cleanly(tmp_path: Path, video: Path) -> None:
    cfg = camera_config(tmp_path, video)
    for _ in range(2):
        done = subprocess.run(agent("scan-test", "--count", "1", "-c", str(cfg)),
                              capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stdout) == (0, "CAM-VIDEO-1\n"), done.stderr
        assert ABORT not in done.stderr


def test_camera_error_names_the_camera(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-video.avi"
    cfg = camera_config(tmp_path, missing)
    done = subprocess.run(agent("scan-test", "--count", "1", "-c", str(cfg)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert str(missing) in done.stderr
    assert "/dev/cart-scanner" not in done.stderr
    assert ABORT not in done.stderr


def test_daemon_stops_cleanly_on_sigterm_and_after_a_scanner_change(
    tmp_path: Path, video: Path
) -> None:
    broker = MosquittoBroker(tmp_path / "broker").start()
    watcher = Watcher(broker.port, [STATUS, REPORTED])
    doc = cart_document(tmp_path / "data", broker.port,
                        {"scanner": {"kind": "camera", "camera": str(video)}})
    cfg = write_config(tmp_path / "agent.toml", doc)
    proc = subprocess.Popen(agent("run", "-c", str(cfg)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        watcher.wait_for(STATUS, lambda s: s.get("state") == "online", timeout_s=20)
        report = push(watcher, DESIRED, {"version": 1, "config": {
            "scanner": {"decoder": "pyzbar", "repeat_window_s": 0.5}}})
        assert report["status"] == "applied", report
        time.sleep(1.5)  # the rebuilt camera is reading frames
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        watcher.close()
        broker.close()
    assert proc.returncode == 0, stderr[-2000:]
    assert ABORT not in stderr
    assert "rebuilding devices and flows" in stderr  # the scanner really was rebuilt
