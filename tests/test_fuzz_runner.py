"""`python -m fuzz`: one instrumented start-up, a forked child per target, findings reported.

(How long it takes is printed by the runner itself; it is not asserted here.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CRASHING = """
import sys
from fuzz.__main__ import fuzz_all

def boom(data: bytes) -> None:
    if data[:1] == b"x":
        raise ValueError("the fuzzer found it")

sys.exit(fuzz_all({"boom": boom, "calm": lambda data: None}, ["calm", "boom"], 2))
"""


def test_every_named_target_is_fuzzed_and_counted() -> None:
    out = subprocess.run([sys.executable, "-m", "fuzz", "--seconds", "1", "token", "mqtt_ack"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    for name in ("token", "mqtt_ack"):
        match = re.search(rf"^{name} +ok +runs=(\d+)", out.stdout, re.MULTILINE)
        assert match, out.stdout
        assert int(match.group(1)) > 100, out.stdout
    assert "INFO: Instrumenting" not in out.stderr


def test_a_crash_fails_the_run_and_keeps_the_input(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", CRASHING], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin"})
    assert out.returncode == 1, out.stdout + out.stderr[-3000:]
    assert re.search(r"^calm +ok", out.stdout, re.MULTILINE)
    assert re.search(r"^boom +CRASH", out.stdout, re.MULTILINE)
    assert "the fuzzer found it" in out.stderr
    kept = [p for p in tmp_path.glob("cart-fuzz-*/crash-*")]
    assert len(kept) == 1
    assert kept[0].read_bytes()[:1] == b"x"
    assert f"findings and logs kept in {kept[0].parent}" in out.stderr


def test_a_clean_run_leaves_no_files(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "fuzz", "--seconds", "1", "mqtt_ack"], cwd=REPO,
                         capture_output=True, text=True, timeout=120,
                         env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert list(tmp_path.iterdir()) == []
