"""The update service: carries an accepted `update` job through fetch, verify, install, a quiet
moment and the switch; after a switch, the new version's health gate. Every step is recorded
in releases/state.json first, so a restart (or a kill -9) at any point resumes or undoes it.

It runs as one supervised loop in the daemon; the runtime gives it hooks (quiet, healthy,
restart, record) and never lets it see the daemon.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import __version__
from agent.contract import CONFIG_SCHEMA
from agent.health import Health
from agent.update import guard, slots, state
from agent.update.fetch import FetchError, HashMismatch, fetch_file, fetch_small
from agent.update.install import InstallError, check_config, install, is_complete, mark_complete
from agent.update.job import UpdateJob
from agent.update.manifest import (
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    ManifestError,
    verify_manifest,
)

log = logging.getLogger(__name__)

POLL_S = 1.0
RETRY_S = 30.0
DISK_MARGIN_MB = 64
# Fault tests: "STEP[,STEP...]:DIR" kills the agent (-9) once at each STEP, leaving DIR/STEP.
CRASH_ENV = "CART_AGENT_UPDATE_CRASH_AT"


@dataclass(frozen=True)
class Hooks:
    quiet: Callable[[], str | None]  # why now is not a quiet moment, or None
    healthy: Callable[[bool], str | None]  # what is not healthy yet (arg: broker required)
    broker_up: Callable[[], bool]
    restart: Callable[[str], None]  # stop, for the service manager to start `current`
    record: Callable[[str, dict[str, Any]], None]  # one transaction
    announce: Callable[[], None]  # tell the fleet now (status and telemetry)
    release_keys: Callable[[], dict[str, str]]


def crash_point(step: str) -> None:
    steps, _, marks = os.environ.get(CRASH_ENV, "").partition(":")
    marker = Path(marks) / step
    if marks and step in steps.split(",") and not marker.exists():
        marker.write_text(step, encoding="ascii")
        os.kill(os.getpid(), signal.SIGKILL)


def python_tag() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


class JobFailed(Exception):
    """The job cannot succeed (refused release, no quiet moment in time): give up, report.
    `keep`: what was fetched and installed is sound and stays for a later command."""

    def __init__(self, reason: str, keep: bool = False) -> None:
        super().__init__(reason)
        self.keep = keep


class Updater:
    name = "update"

    def __init__(self, data_dir: str, config_path: str, hooks: Hooks,
                 clock: Callable[[], float] = time.time, version: str = __version__) -> None:
        self.data_dir = data_dir
        self.config_path = config_path
        self.hooks = hooks
        self.clock = clock
        self.version = version
        self.health = Health("update")
        self._wake = threading.Event()
        self._retry_at = 0.0
        self._switched = False
        self._waiting_said: str | None = None

    # --- from the command -----------------------------------------------------------------

    def accept(self, job: UpdateJob) -> dict[str, Any]:
        doc = state.load(self.data_dir)
        trial = doc.get("trial")
        if isinstance(trial, dict):
            return {"accepted": False, "state": "trial",
                    "reason": f"version {trial.get('version')} is on trial; try again after"}
        if job.version == self.version:
            return {"accepted": False, "state": "running", "version": self.version,
                    "reason": f"version {job.version} is already running"}
        doc["job"] = job.to_doc(self.clock())
        state.save(self.data_dir, doc)
        self._retry_at = 0.0
        self._wake.set()
        log.info("update to %s accepted (from %s)", job.version, job.url)
        self.hooks.announce()
        return {"accepted": True, "version": job.version, "state": "accepted"}

    # --- the loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self.health.set_ok()
        self._tidy()
        while not stop.is_set() and not self._switched:
            self.step()
            self._wake.wait(POLL_S)
            self._wake.clear()

    def step(self) -> None:
        doc = state.load(self.data_dir)
        trial = doc.get("trial")
        if isinstance(trial, dict):
            if trial.get("version") == self.version:
                self._gate(doc, trial)
                return
            # We are not the trial's version, so the switch itself never happened (a crash
            # between recording the trial and the rename): take the job up again.
            doc["job"], doc["trial"] = trial.get("job"), None
            state.save(self.data_dir, doc)
        self._report(doc)
        job = doc.get("job")
        if isinstance(job, dict) and self.clock() >= self._retry_at:
            try:
                self._advance(doc, job)
            except JobFailed as exc:
                self._finish(doc, job, ok=False, reason=str(exc), keep=exc.keep)

    # --- the job --------------------------------------------------------------------------

    def _set_step(self, doc: dict[str, Any], job: dict[str, Any], step: str,
                  **extra: Any) -> None:
        if job.get("step") != step or extra:
            job.update(step=step, **extra)
            state.save(self.data_dir, doc)

    def _advance(self, doc: dict[str, Any], job: dict[str, Any]) -> None:
        version, now = str(job["version"]), self.clock()
        window_ends = float(job["accepted_at"]) + int(job["window_s"])
        if now > window_ends + 86_400 and job.get("step") != "waiting":
            raise JobFailed("not downloaded and installed within a day after its window",
                            keep=True)
        release = slots.release_path(self.data_dir, version)
        if not is_complete(release):
            try:
                self._fetch_and_install(doc, job, release)
            except (ManifestError, HashMismatch, InstallError) as exc:
                shutil.rmtree(release, ignore_errors=True)
                raise JobFailed(str(exc)) from None
            except (FetchError, OSError) as exc:
                log.warning("update to %s: %s; trying again in %.0f s", version, exc, RETRY_S)
                self._set_step(doc, job, job.get("step", "fetching"), error=str(exc)[:200])
                self._retry_at = now + RETRY_S
                return
        self._set_step(doc, job, "waiting")
        not_quiet = self.hooks.quiet()
        if now > window_ends:
            # Never switch outside the window the manager chose; what was fetched and
            # installed stays, so the same command later switches at once.
            raise JobFailed("the window ended before a quiet moment"
                            + (f" ({not_quiet})" if not_quiet else ""), keep=True)
        if not_quiet is not None:
            if not_quiet != self._waiting_said:
                log.info("update to %s waits for a quiet moment: %s", version, not_quiet)
                self._waiting_said = not_quiet
            return
        self._switch(doc, job, release)

    def _fetch_and_install(self, doc: dict[str, Any], job: dict[str, Any],
                           release: Path) -> None:
        version, url = str(job["version"]), str(job["url"])
        downloads = slots.download_dir(self.data_dir, version)
        downloads.mkdir(parents=True, exist_ok=True)
        self._set_step(doc, job, "fetching")
        saved = downloads / MANIFEST_NAME
        token = saved.read_bytes() if saved.exists() else fetch_small(
            f"{url}/{version}/{MANIFEST_NAME}", MAX_MANIFEST_BYTES)
        manifest = verify_manifest(token, self.hooks.release_keys(), version)
        if manifest.python != python_tag():
            raise ManifestError(f"release is built for Python {manifest.python}, this cart "
                                f"runs {python_tag()}")
        if manifest.min_config_schema > CONFIG_SCHEMA:
            raise ManifestError(f"release needs config schema {manifest.min_config_schema}, "
                                f"this cart's is {CONFIG_SCHEMA}")
        state.write_atomic(saved, token)
        need_mb = 3 * manifest.total_bytes // (1024 * 1024) + DISK_MARGIN_MB
        free_mb = shutil.disk_usage(self.data_dir).free // (1024 * 1024)
        if free_mb < need_mb:
            raise FetchError(f"not enough disk: {free_mb} MB free, {need_mb} MB needed")
        crash_point("fetching")
        for item in manifest.files:
            fetch_file(f"{url}/{version}", item, downloads)
        crash_point("fetched")
        self._set_step(doc, job, "installing")
        install(manifest, downloads / "wheels", release)
        crash_point("installed")
        check_config(release, self.config_path)
        mark_complete(release)

    def _switch(self, doc: dict[str, Any], job: dict[str, Any], release: Path) -> None:
        previous = slots.current_target(self.data_dir)
        doc["trial"] = {"version": job["version"], "previous": self.version,
                        "previous_path": str(previous) if previous else None,
                        "switched_at": self.clock(), "starts": 0,
                        "deadline_s": int(job["deadline_s"]),
                        "need_broker": self.hooks.broker_up(), "job": job}
        doc["job"] = None
        state.save(self.data_dir, doc)
        crash_point("trial-recorded")
        slots.point_current(self.data_dir, release)
        log.info("update: switched to %s; restarting into it", job["version"])
        crash_point("switched")
        self._switched = True
        self.hooks.restart(f"switching to version {job['version']}")

    def _finish(self, doc: dict[str, Any], job: dict[str, Any], ok: bool, reason: str,
                keep: bool = False) -> None:
        log.log(logging.INFO if ok else logging.ERROR, "update to %s %s: %s", job.get("version"),
                "done" if ok else "failed", reason)
        doc["job"] = None
        doc["outcome"] = {"version": job.get("version"), "ok": ok, "reason": reason,
                          "at": self.clock(), "reported": False}
        state.save(self.data_dir, doc)
        if not ok and not keep:
            shutil.rmtree(slots.download_dir(self.data_dir, str(job.get("version"))),
                          ignore_errors=True)
        self._report(doc)

    def _report(self, doc: dict[str, Any]) -> None:
        outcome = doc.get("outcome")
        if not isinstance(outcome, dict) or outcome.get("reported"):
            return
        data = {k: outcome.get(k) for k in ("version", "ok", "reason", "rolled_back_to")}
        self.hooks.record("software.update", {**data, "running": self.version})
        outcome["reported"] = True
        state.save(self.data_dir, doc)
        self.hooks.announce()

    def _tidy(self) -> None:
        """Keep the current release and the one before it; nothing else (not during a job or
        a trial: those need what they fetched and what they would go back to)."""
        doc = state.load(self.data_dir)
        if doc.get("job") or doc.get("trial"):
            return
        previous = doc.get("previous_path")
        keep = {p for p in (slots.current_target(self.data_dir),
                            Path(previous) if isinstance(previous, str) else None) if p}
        removed = slots.keep_only(self.data_dir, keep)
        if removed:
            log.info("update: removed old releases %s", removed)

    # --- the health gate of a new version ---------------------------------------------------

    def _gate(self, doc: dict[str, Any], trial: dict[str, Any]) -> None:
        missing = self.hooks.healthy(bool(trial.get("need_broker")))
        now = self.clock()
        if missing is None:
            log.info("update: %s is healthy; keeping it", self.version)
            doc["trial"] = None
            doc["outcome"] = {"version": self.version, "ok": True, "reason": "healthy",
                              "from": trial.get("previous"), "at": now, "reported": False}
            doc["previous_path"] = trial.get("previous_path")  # the release kept beside
            state.save(self.data_dir, doc)
            crash_point("healthy")
            self._report(doc)
            self._tidy()
            return
        if now > float(trial["switched_at"]) + float(trial["deadline_s"]):
            reason = (f"{self.version} not healthy within {trial['deadline_s']} s: {missing}")
            log.error("update: %s; rolling back to %s", reason, trial.get("previous"))
            guard.roll_back(self.data_dir, doc, reason, now)
            self._switched = True
            self.hooks.restart(f"rolling back to {trial.get('previous')}")
