"""Scan-to-unlock with the speaker on: sound never delays a decision.

The same measurement as bench_scan (last byte of a scan on the scanner's pty to the open frame
on the lock bus's pty, through the real daemon) on one cart with `audio.kind = "file"`,
speaking every answer in Mandarin and English with espeak-ng and writing every tone and prompt
as a WAV. Scans take turns, so all three kinds meet the same load on a shared machine:

- without audio (the announcer detached for that scan): the baseline;
- with audio: the read tone queued before the decision, the answer spoken after it;
- with audio and the speech cache cleared first: every answer rendered by espeak-ng anew (the
  worst case: a new compartment or ticket number every time).
"""

from __future__ import annotations

import shutil
import statistics
import time

from agent.runtime.daemon import Daemon
from bench.bench_scan import _percentile, measure


def run(quick: bool = False) -> list[dict[str, object]]:
    if shutil.which("espeak-ng") is None:
        return [{"name": "scan-to-unlock with audio", "value": "skipped: no espeak-ng"}]
    from agent.devices.audio import speech
    from agent.flows.announce import Announcer

    n = 30 if quick else 300
    announcers: list[Announcer] = []

    def turn(daemon: Daemon, i: int) -> None:
        if not announcers and daemon.announcer is not None:
            announcers.append(daemon.announcer)
        daemon.announcer = None if i % 3 == 0 else announcers[0]
        if i % 3 == 2:
            speech.synthesize.cache_clear()

    latencies, _ = measure(n, lambda tmp: {"audio": {
        "kind": "file", "path": f"{tmp}/sounds", "languages": ["zh", "en"]}}, turn)
    groups = [latencies[k::3] for k in range(3)]
    base = statistics.median(groups[0])
    rows: list[dict[str, object]] = []
    for name, values in (("scan-to-unlock, speaking every answer (zh+en, file)", groups[1]),
                         ("scan-to-unlock, speech rendered anew every time", groups[2])):
        p50 = statistics.median(values)
        rows.append({"name": name, "p50_ms": round(p50, 2),
                     "p99_ms": round(_percentile(values, 0.99), 2), "samples": len(values),
                     "baseline": "the scans between them, without audio",
                     "baseline_ms": round(base, 2), "ratio": round(p50 / base, 2)})
    rows.append(_hand_over(2_000 if quick else 20_000))
    return rows


def _hand_over(n: int) -> dict[str, object]:
    """What the flow thread itself pays per answer: publishing it with the announcer listening
    (phrase rendered for two languages, three sounds queued) against publishing it alone."""
    from zoneinfo import ZoneInfo

    from agent.config_cues import AudioConfig
    from agent.devices.audio.outputs import NoOutput
    from agent.devices.audio.service import AudioService
    from agent.flows.announce import Announcer
    from agent.flows.feedback import Feedback, FeedbackBus

    event = Feedback("refused", "此二维码已使用", "This code was already used", "already_used",
                     phrase="already_used")
    player = AudioService(NoOutput(), 80, queue_size=8)  # not running: play() only queues
    announcer = Announcer(AudioConfig(kind="file", path="-", languages=["zh", "en"]),
                          ZoneInfo("Asia/Shanghai"), player.play)

    def per_publish_us(bus: FeedbackBus) -> float:
        started = time.perf_counter()
        for _ in range(n):
            bus.publish(event)
        return (time.perf_counter() - started) / n * 1e6

    plain, speaking = FeedbackBus(), FeedbackBus()
    speaking.listen(announcer.feedback)
    base = min(per_publish_us(plain) for _ in range(3))
    value = min(per_publish_us(speaking) for _ in range(3))
    return {"name": "an answer handed to the speaker (flow thread's cost)",
            "value": round(value, 1), "unit": "µs/answer",
            "baseline": "the same answer published without audio",
            "baseline_value": round(base, 1), "ratio": round(value / base, 2)}


if __name__ == "__main__":
    for row in run():
        print(row)
