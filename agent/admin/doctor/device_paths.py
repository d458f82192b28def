"""A device node as udev should have made it: there, a character device, in the group the
agent's unit runs with (systemd/99-cart-agent.rules, cart-agent.service), group read-write."""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

# What the udev rules give each kind of node, and the unit's SupplementaryGroups.
SERIAL_GROUP = "dialout"
USB_PRINTER_GROUP = "lp"
CAMERA_GROUP = "video"


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def node_problem(path: str, group: str) -> tuple[str, str] | None:
    """(what is wrong, what to do) or None when the node is right."""
    p = Path(path)
    if not p.exists():
        why = "is a dangling link" if p.is_symlink() else "does not exist"
        return (f"{path} {why}",
                "plug the device in; check its USB ids in /etc/udev/rules.d/99-cart-agent.rules"
                " (udevadm info -a -n /dev/ttyUSB0), then udevadm trigger")
    st = os.stat(p)
    real = os.path.realpath(p)
    if not stat.S_ISCHR(st.st_mode):
        return (f"{path} ({real}) is not a character device",
                "point the config at the device node (a udev name such as /dev/cart-locker)")
    have = _group_name(st.st_gid)
    if have != group:
        return (f"{real} belongs to group {have}, not {group}",
                f"set GROUP=\"{group}\" in the device's udev rule "
                "(/etc/udev/rules.d/99-cart-agent.rules), then udevadm trigger")
    if st.st_mode & 0o060 != 0o060:
        return (f"{real} mode {stat.S_IMODE(st.st_mode):04o} lacks group read-write",
                "set MODE=\"0660\" in the device's udev rule, then udevadm trigger")
    return None
