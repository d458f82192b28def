"""The speaker and the lights, when configured: the programs the speaker needs, the device
(the agent's own view while it runs; without it the speaker is played a moment of silence),
the GPIO chip's node."""

from __future__ import annotations

import shutil

from agent.admin.doctor.context import Context
from agent.admin.doctor.device_paths import node_problem
from agent.admin.doctor.report import Check, fail, ok, skip
from agent.devices.audio.outputs import AlsaOutput, AudioError, FileOutput

GPIO_GROUP = "cart-agent"  # systemd/99-cart-agent.rules


def sound_checks(ctx: Context) -> list[Check]:
    return [audio(ctx), light(ctx)]


def audio(ctx: Context) -> Check:
    a = ctx.cfg.audio
    if a.kind == "none":
        return skip("audio", "not configured (audio.kind = \"none\")")
    if a.languages and shutil.which("espeak-ng") is None:
        return fail("audio", "espeak-ng is not installed: nothing can be spoken",
                    "apt-get install espeak-ng")
    if a.kind == "alsa" and shutil.which("aplay") is None:
        return fail("audio", "aplay is not installed: nothing can be played",
                    "apt-get install alsa-utils")
    what = f"ALSA device {a.device}" if a.kind == "alsa" else f"WAV files in {a.path}"
    fix = "aplay -L lists the devices; set audio.device, then restart the agent"
    if ctx.running:
        snap = ctx.service("audio") or {"ok": False, "error": "not started by the agent"}
        if snap.get("ok"):
            return ok("audio", f"{what}; plays (the running agent's view)")
        return fail("audio", f"{what}; the agent reports: {snap.get('error')}", fix)
    try:
        (AlsaOutput(a.device) if a.kind == "alsa" else FileOutput(a.path)).open()
    except AudioError as exc:
        return fail("audio", str(exc), fix)
    return ok("audio", f"{what}; opens")


def light(ctx: Context) -> Check:
    li = ctx.cfg.light
    if li.kind == "none":
        return skip("light", "not configured (light.kind = \"none\")")
    if li.kind == "file":
        return ok("light", f"recorded in {li.path}")
    problem = node_problem(li.chip, GPIO_GROUP)
    if problem:
        return fail("light", *problem)
    if ctx.running:
        snap = ctx.service("light") or {"ok": False, "error": "not started by the agent"}
        if snap.get("ok"):
            return ok("light", f"{li.chip}; lines held (the running agent's view)")
        return fail("light", f"{li.chip}; the agent reports: {snap.get('error')}",
                    "pip install 'cart-agent[gpio]'; check light.lines against the wiring")
    return ok("light", f"{li.chip}: the node is right (lines are requested by the agent)")
