"""Coverage-guided fuzzing with atheris: `python -m fuzz [--seconds N] [TARGET ...]`.

Each target runs in its own process for N seconds (libFuzzer's -max_total_time), starting
from the seed corpus in fuzz/seeds/; a crash prints the input and fails the run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_one(name: str) -> None:
    import atheris

    with atheris.instrument_imports():
        from fuzz.targets import TARGETS
    target = TARGETS[name]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        name = sys.argv[2]
        sys.argv = [sys.argv[0], *sys.argv[3:]]
        run_one(name)
        return 0
    from fuzz.targets import TARGETS

    parser = argparse.ArgumentParser(prog="python -m fuzz")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("targets", nargs="*", default=sorted(TARGETS))
    args = parser.parse_args()
    failed = []
    for name in args.targets:
        with tempfile.TemporaryDirectory() as corpus:
            seeds = HERE / "seeds" / name
            dirs = [corpus] + ([str(seeds)] if seeds.is_dir() else [])
            cmd = [sys.executable, "-m", "fuzz", "--one", name,
                   f"-max_total_time={args.seconds}", "-rss_limit_mb=2048",
                   "-max_len=4096", "-print_final_stats=1", *dirs]
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
        stats = [ln for ln in out.stderr.splitlines() if ln.startswith("stat::number_of_exec")]
        runs = stats[0].split(":")[-1].strip() if stats else "?"
        print(f"{name:22} {'ok' if out.returncode == 0 else 'CRASH'}  runs={runs}", flush=True)
        if out.returncode != 0:
            failed.append(name)
            print(out.stderr[-4000:], file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
