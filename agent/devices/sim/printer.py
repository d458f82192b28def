"""An ESC/POS receipt printer on a pseudo-terminal.

It keeps every byte it receives and answers the real-time status requests (DLE EOT 1, 2, 4)
with the bytes a real printer sends for its condition: paper out, cover open, or silence
(printers without status support, or switched off). It finds the requests with the same
tokenizer the tests decode receipts with, so a 0x10 0x04 inside image data is not mistaken
for one.

The simulator serves from its own thread, started by the constructor; `close()` stops it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from agent.devices.printer.status import status_bytes
from agent.devices.sim.escpos_decode import tokenize
from agent.devices.sim.pty import PtyPort


class PrinterSimulator:
    def __init__(self, link_path: str | Path) -> None:
        self.port = PtyPort(link_path)
        self._lock = threading.Lock()
        self._output = bytearray()
        self._parsed = 0  # offset in _output up to which commands have been tokenized
        self._unplug_after: int | None = None
        self.paper_out = False
        self.paper_near_end = False
        self.cover_open = False
        self.silent = False
        self.status_requests = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="sim-printer", daemon=True)
        self._thread.start()

    @property
    def path(self) -> str:
        return self.port.path

    @property
    def output(self) -> bytes:
        """Every byte received so far, status requests included."""
        with self._lock:
            return bytes(self._output)

    def receipts(self) -> list[bytes]:
        """The print data split after each cut, with the status requests taken out."""
        data = self.output
        commands, _ = tokenize(data, strict=False)
        receipts: list[bytes] = []
        current = bytearray()
        for command in commands:
            if command.name == "status_request":
                continue
            current += data[command.start : command.end]
            if command.name == "cut":
                receipts.append(bytes(current))
                current.clear()
        if current:
            receipts.append(bytes(current))
        return receipts

    def clear(self) -> None:
        with self._lock:
            self._output.clear()
            self._parsed = 0

    def set_paper_out(self, out: bool = True) -> None:
        self.paper_out = out

    def set_silent(self, silent: bool = True) -> None:
        self.silent = silent

    def unplug(self) -> None:
        self.port.unplug()

    def replug(self) -> None:
        self.port.replug()

    def unplug_after(self, n_bytes: int) -> None:
        """Pull the cable once `n_bytes` more bytes have arrived (a printer lost mid-receipt)."""
        with self._lock:
            self._unplug_after = len(self._output) + n_bytes

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.port.close()

    def __enter__(self) -> PrinterSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            data = self.port.read(4096, 0.02)
            if not data:
                continue
            answers = bytearray()
            with self._lock:
                self._output += data
                commands, complete = tokenize(bytes(self._output[self._parsed :]), strict=False)
                self._parsed += complete
                unplug = self._unplug_after is not None and len(self._output) >= self._unplug_after
                if unplug:
                    self._unplug_after = None
            for command in commands:
                if command.name == "status_request":
                    self.status_requests += 1
                    answer = self._answer(command.args[0])
                    if answer is not None:
                        answers.append(answer)
            if unplug:
                self.port.unplug()
            elif answers:
                self.port.write(bytes(answers))

    def _answer(self, n: int) -> int | None:
        if self.silent:
            return None
        return status_bytes(
            online=True, cover_open=self.cover_open, paper_out=self.paper_out,
            paper_near_end=self.paper_near_end,
        ).get(n)
