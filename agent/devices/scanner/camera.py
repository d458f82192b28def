"""A camera as QR scanner: frames from OpenCV, codes from decoders.py.

USB cameras stall rather than fail: the device stays open and frames stop coming. The loop
therefore watches the time since the last good frame and raises when it exceeds
`frame_timeout_s`, so the supervisor closes and reopens the camera.

Stopping is prompt and clean: a blocking read gives up after at most READ_TIMEOUT_S, the loop
looks at `stop` between frames, and the capture is always released by the thread that used
it before `run` returns. (A process that exits while OpenCV's capture threads still run is
aborted by the C++ runtime: "terminate called without an active exception".)

Most frames are read quickly (one pass); every THOROUGH_EVERY-th frame gets the thorough read
(decoders.py), so a frame with nothing in it stays cheap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from agent.devices.errors import DeviceUnavailable
from agent.devices.scanner.codes import DecodedCode
from agent.devices.scanner.decoders import DECODERS, decode_image
from agent.devices.scanner.lines import RepeatFilter, ScanEvent, repeat_key
from agent.health import Health

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 1.0  # longest a blocking read may hold up a stop
THOROUGH_EVERY = 4


class CameraError(DeviceUnavailable):
    """The camera could not be opened or stopped delivering frames (names the source)."""


class CameraScanner:
    """Supervised service reading QR codes from a camera (device index, path or URL).

    `decoder` is one of decoders.DECODERS; decoders.DEFAULT_DECODER is the measured best.
    """

    name = "scanner"

    def __init__(
        self,
        source: int | str,
        decoder: str,
        on_scan: Callable[[ScanEvent], None],
        repeat_window_s: float = 2.0,
        frame_timeout_s: float = 5.0,
        max_width: int = 640,
        min_interval_s: float = 0.05,
    ) -> None:
        if decoder not in DECODERS:
            raise ValueError(f"unknown QR decoder {decoder!r}; choose one of {DECODERS}")
        # A device index from a string config value ("0") must stay an index, not a file name.
        if isinstance(source, str) and source.isdigit():
            source = int(source)
        self.source = source
        self.decoder = decoder
        self.on_scan = on_scan
        self.frame_timeout_s = frame_timeout_s
        # Decoding a 1280x720 frame costs ~2x a 640x360 one and QR codes on a cart are held
        # close to the lens, so frames are scaled down to this width first.
        self.max_width = max_width
        self.min_interval_s = min_interval_s  # caps the decode rate (2 cores, shared)
        self.repeats = RepeatFilter(repeat_window_s)
        self.health = Health(self.name)
        self.frames = 0

    def run(self, stop: threading.Event) -> None:
        try:
            import cv2
        except ImportError as exc:
            raise CameraError("opencv is not installed (the camera extra)") from exc
        # The timeouts bound a blocking open/read where the backend honours them (FFmpeg for
        # files and network streams); V4L2 gives up on its own after ~10 s of no frame.
        open_ms = int(self.frame_timeout_s * 1000)
        read_ms = int(min(self.frame_timeout_s, READ_TIMEOUT_S) * 1000)
        capture = cv2.VideoCapture(self.source, cv2.CAP_ANY, [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, open_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, read_ms])
        try:
            if not capture.isOpened():
                raise CameraError(f"cannot open camera {self.source!r}")
            last_frame = time.monotonic()
            got_first = False
            while not stop.is_set():
                ok, frame = capture.read()
                now = time.monotonic()
                if not ok or frame is None:
                    if now - last_frame > self.frame_timeout_s:
                        raise CameraError(f"no frame from camera {self.source!r} for "
                                          f"{now - last_frame:.1f} s")
                    stop.wait(0.02)
                    continue
                last_frame = now
                self.frames += 1
                if not got_first:
                    got_first = True
                    if self.health.set_ok(camera=str(self.source), decoder=self.decoder):
                        log.info("camera %s ready (decoder %s)", self.source, self.decoder)
                self._scan_frame(frame, cv2)
                spent = time.monotonic() - now
                if spent < self.min_interval_s:
                    stop.wait(self.min_interval_s - spent)
        finally:
            capture.release()

    def _scan_frame(self, frame: Any, cv2: Any) -> None:
        if frame.ndim == 3:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        height, width = frame.shape[:2]
        if width > self.max_width:
            scale = self.max_width / width
            frame = cv2.resize(frame, (self.max_width, max(1, round(height * scale))),
                               interpolation=cv2.INTER_AREA)
        thorough = self.frames % THOROUGH_EVERY == 0
        for code in decode_image(frame, self.decoder, thorough=thorough):
            event = event_from_code(code)
            if self.repeats.accept(repeat_key(event), event.mono):
                if event.error:
                    log.warning("scan rejected: %s (%s)", event.error, event.detail)
                self.on_scan(event)


def event_from_code(code: DecodedCode) -> ScanEvent:
    if code.text is None:
        return ScanEvent(None, code.raw, "unreadable", "camera", detail=code.error)
    return ScanEvent(code.text, code.raw, None, "camera")
