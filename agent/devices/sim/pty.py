"""A pseudo-terminal standing in for a USB-serial or RS485 adapter.

The driver opens `path`, a symlink to the pty's slave side, the way a cart's driver opens the
udev name `/dev/cart-locker`. `unplug()` closes both sides and removes the link (the driver's
next read or write fails, as when the cable is pulled); `replug()` makes a new pty behind the
same link, so a driver that reopens by path finds the device again.
"""

from __future__ import annotations

import errno
import os
import select
import termios
import threading
import tty
from pathlib import Path


class PtyPort:
    def __init__(self, link_path: str | Path) -> None:
        self.link = Path(link_path)
        self._lock = threading.Lock()
        self._master: int | None = None
        self._slave: int | None = None
        self.plugged = False
        self.replug()

    @property
    def path(self) -> str:
        return str(self.link)

    def replug(self) -> None:
        with self._lock:
            if self.plugged:
                return
            master, slave = os.openpty()
            for fd in (master, slave):
                tty.setraw(fd, termios.TCSANOW)
            # The simulator keeps the slave open too: otherwise the master reads EIO whenever
            # the driver has the port closed (between reconnects).
            tmp = self.link.with_name(self.link.name + ".tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(os.ttyname(slave))
            os.replace(tmp, self.link)
            self._master, self._slave, self.plugged = master, slave, True

    def unplug(self) -> None:
        with self._lock:
            if not self.plugged:
                return
            self.link.unlink(missing_ok=True)
            for fd in (self._master, self._slave):
                if fd is not None:
                    os.close(fd)
            self._master = self._slave = None
            self.plugged = False

    close = unplug

    def read(self, max_bytes: int = 4096, timeout_s: float = 0.05) -> bytes:
        """Bytes the driver wrote, or b"" after `timeout_s` (or while unplugged)."""
        master = self._master
        if master is None:
            threading.Event().wait(timeout_s)
            return b""
        try:
            ready, _, _ = select.select([master], [], [], timeout_s)
            if not ready:
                return b""
            return os.read(master, max_bytes)
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EBADF):
                return b""
            raise
        except ValueError:  # fd closed by unplug() while we selected
            return b""

    def write(self, data: bytes) -> None:
        """Send bytes to the driver (as the device would). Dropped while unplugged."""
        master = self._master
        if master is None:
            return
        view = memoryview(data)
        while view:
            try:
                written = os.write(master, view)
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF):
                    return
                raise
            view = view[written:]

    def __enter__(self) -> PtyPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unplug()
