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


TRUSTED_FIX = {
    "behind": "the wall clock is behind the cart's evidence (an RTC without battery?): fix NTP "
              "(above); the cart keeps deciding by its evidence meanwhile",
    "ahead": "the wall clock runs ahead of the server's time: fix NTP (above) or set it with "
             "timedatectl set-time",
    "unknown": "the cart has no evidence of the time and an implausible clock, so it refuses "
               "codes: fix NTP (above) or let it reach the broker once",
}


def trusted_time(ctx: Context) -> Check:
    """The agent's trusted clock (agent/clock/): as the running agent has it, else from the
    store's evidence and this machine's clock (the same report as `cart-agent status`)."""
    snap = ctx.clock
    if snap is None:
        return skip("clock trusted", "trusted-time state not checked: the store cannot be read")
    alarm = snap.get("alarm")
    said = "the agent's" if snap.get("from") == "agent" else "from the store, no agent running:"
    detail = f"{said} source {snap.get('source')}, offset {snap.get('offset_s')} s"
    if alarm:
        return fail("clock trusted", f"{detail}: the clock is {alarm}",
                    TRUSTED_FIX.get(str(alarm), "fix NTP (above)"))
    return ok("clock trusted", detail)
