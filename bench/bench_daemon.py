"""The daemon's footprint: cold start to READY=1, idle RSS and CPU.

Baselines from the same run: the start of a bare interpreter that only imports the same
third-party libraries (what any Python agent with these parts pays), and that process's RSS.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMPORTS = "import paho.mqtt.client, sqlite_utils, serial, escpos.printer, pydantic, cryptography"


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp: str) -> Path:
    path = Path(tmp) / "agent.toml"
    path.write_text(f"""cart_id = "bench-01"
data_dir = "{tmp}/data"
log_level = "WARNING"
[scanner]
kind = "none"
[printer]
kind = "none"
[locker]
enabled = false
[mqtt]
host = "127.0.0.1"
port = 9
[web]
enabled = true
port = {_free_port()}
""")
    return path


def _start_to_ready(cfg: Path, notify_path: Path) -> tuple[float, subprocess.Popen[bytes]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.settimeout(30)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "-c", str(cfg)], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while b"READY=1" not in sock.recv(4096):
            pass
    finally:
        sock.close()
    return time.perf_counter() - start, proc


def run(quick: bool = False) -> list[dict[str, object]]:
    idle_s = 5.0 if quick else 60.0
    starts = 1 if quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        cfg = _config(tmp)
        ready_times, import_times = [], []
        for i in range(starts):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", IMPORTS], check=True, cwd=REPO)
            import_times.append(time.perf_counter() - t0)
            elapsed, proc = _start_to_ready(cfg, Path(tmp) / f"notify{i}.sock")
            ready_times.append(elapsed)
            if i < starts - 1:
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)
        cpu_before = _cpu_s(proc.pid)
        time.sleep(idle_s)
        cpu_used = _cpu_s(proc.pid) - cpu_before
        rss = _rss_kb(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        base = subprocess.Popen([sys.executable, "-c", IMPORTS + "; import time; time.sleep(3)"],
                                cwd=REPO)
        time.sleep(2.0)
        base_rss = _rss_kb(base.pid)
        base.wait()
    ready = sorted(ready_times)[len(ready_times) // 2]
    imports = sorted(import_times)[len(import_times) // 2]
    return [
        {"name": "cold start to READY=1", "value": round(ready * 1000), "unit": "ms",
         "baseline": "python importing the same libraries", "baseline_value":
         round(imports * 1000), "ratio": round(ready / imports, 2)},
        {"name": "idle RSS (broker unreachable, web on)", "value": rss // 1024, "unit": "MiB",
         "baseline": "python holding the same imports", "baseline_value": base_rss // 1024,
         "ratio": round(rss / base_rss, 2)},
        {"name": f"idle CPU over {idle_s:.0f} s", "value": round(cpu_used / idle_s * 100, 2),
         "unit": "% of one core", "baseline": "none (absolute)", "ratio": None},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
