"""The systemd units: the agent's and the kiosk's, enabled (they start at boot) and running."""

from __future__ import annotations

from agent.admin.doctor.context import command, key_values
from agent.admin.doctor.report import Check, fail, ok, skip

UNITS = ("cart-agent.service", "cart-kiosk.service")


def unit_checks(screens: bool = True) -> list[Check]:
    """`screens` False (web.enabled = false): a cart without a display needs no kiosk."""
    if not screens:
        return [unit(UNITS[0]), skip("unit cart-kiosk", "no screens (web.enabled = false)")]
    return [unit(name) for name in UNITS]


def unit(name: str) -> Check:
    short = name.removesuffix(".service")
    rc, out = command(["systemctl", "show", "-p", "LoadState", "-p", "UnitFileState",
                       "-p", "ActiveState", "-p", "SubState", name])
    if rc is None or rc != 0:
        return fail(f"unit {short}", f"systemctl show failed: {out.strip()[:200]}",
                    "is systemd running? (the doctor runs on the cart itself)")
    v = key_values(out)
    if v.get("LoadState") != "loaded":
        return fail(f"unit {short}", f"{name} is {v.get('LoadState', 'not found')}",
                    "install it: scripts/provision-cart (or systemd/ in the README)")
    enabled = v.get("UnitFileState")
    state = f"{v.get('ActiveState')} ({v.get('SubState')})"
    if enabled != "enabled":
        return fail(f"unit {short}", f"{name} is {enabled}, {state}",
                    f"systemctl enable --now {name}")
    if v.get("ActiveState") != "active":
        return fail(f"unit {short}", f"{name} is enabled but {state}",
                    f"journalctl -u {name} -n 50 says why; systemctl restart {name}")
    return ok(f"unit {short}", f"{name} enabled, {state}")
