"""The clock: NTP synchronised (systemd-timesyncd, through `timedatectl show`), and the
agent's trusted-time state.

A cart decides whether a token has expired by its clock; a cart that booted without a network
and has no RTC battery can be years off.
"""

from __future__ import annotations

from agent.admin.doctor.context import Context, command, key_values
from agent.admin.doctor.report import Check, fail, ok, skip

NTP_FIX = ("give the cart network access to its NTP servers (timedatectl timesync-status); "
           "timedatectl set-ntp true if NTP is off")


def clock_checks(ctx: Context) -> list[Check]:
    return [ntp(), trusted_time(ctx)]


def ntp() -> Check:
    rc, out = command(["timedatectl", "show"])
    if rc is None or rc != 0:
        return fail("clock ntp", f"timedatectl show failed: {out.strip()[:200]}",
                    "install systemd-timesyncd; is systemd running?")
    values = key_values(out)
    synced = values.get("NTPSynchronized")
    if synced == "yes":
        return ok("clock ntp", "NTP synchronised")
    if values.get("NTP") == "no":
        return fail("clock ntp", "NTP is off (NTP=no)", "timedatectl set-ntp true")
    return fail("clock ntp", f"not NTP synchronised (NTPSynchronized={synced or 'unknown'})",
                NTP_FIX)


def trusted_time(ctx: Context) -> Check:
    """THE HOOK for the agent's trusted clock (the time corrected from evidence such as tokens'
    `iat` and the server's `at`): the running agent reports it as the health of a `clock`
    part, `{"source", "offset_s", "alarm"}` (contract, Status). Until the agent has one this
    check says so and passes."""
    snap = ctx.service("clock")
    if snap is None:
        why = "the agent is not running" if not ctx.running else \
            "this agent has no trusted clock yet"
        return skip("clock trusted", f"trusted-time state not checked: {why}")
    alarm = snap.get("alarm")
    detail = f"source {snap.get('source')}, offset {snap.get('offset_s')} s"
    if alarm:
        return fail("clock trusted", f"{detail}: the clock is {alarm}",
                    "fix NTP (above); the agent corrects its clock from the server's time "
                    "once it reaches the broker")
    return ok("clock trusted", detail)
