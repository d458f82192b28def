"""One readable sentence for a device that could not be opened or used.

pyserial wraps the OS error in its own text and both repeat the path:
`[Errno 2] could not open port /dev/x: [Errno 2] No such file or directory: '/dev/x'`.
Put behind "cannot open /dev/x: " that named the device three times. Here the device is named
once by the caller and the cause is the operating system's own short words.
"""

from __future__ import annotations

import errno
import os


def cause(exc: BaseException) -> str:
    """The reason in a few words, without the path: "No such file or directory"."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code in errno.errorcode:
        return os.strerror(code)
    text = str(exc).strip()
    # pyserial without an errno: "could not open port /dev/x: reason"; keep what follows.
    if text.startswith("could not open port") and ": " in text:
        text = text.split(": ", 1)[1]
    return text or type(exc).__name__


def cannot_open(device: str, exc: BaseException) -> str:
    return f"cannot open {device}: {cause(exc)}"


class DeviceUnavailable(OSError):
    """A device that cannot be opened or used; the message names it once, with the cause."""
