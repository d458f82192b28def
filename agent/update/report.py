"""`software` as the cart reports it (telemetry, status, `cart-agent status`): the version
running, the one pending (accepted, downloading, installed and waiting, or on trial) and the
last outcome."""

from __future__ import annotations

from typing import Any

from agent import __version__
from agent.update import state


def software_report(data_dir: str, running: str | None = __version__) -> dict[str, Any]:
    doc = state.load(data_dir)
    job, trial, outcome = doc.get("job"), doc.get("trial"), doc.get("outcome")
    out: dict[str, Any] = {"running": running, "pending": None, "step": None, "outcome": None}
    if isinstance(trial, dict):
        out["pending"], out["step"] = trial.get("version"), "trial"
    elif isinstance(job, dict):
        out["pending"], out["step"] = job.get("version"), job.get("step")
    if isinstance(outcome, dict):
        out["outcome"] = {k: outcome.get(k) for k in ("version", "ok", "reason")}
    return out
