"""Coverage-guided fuzzing with atheris: `python -m fuzz [--seconds N] [TARGET ...]`.

Every target runs for N seconds (libFuzzer's -max_total_time), starting from its seed corpus
in fuzz/seeds/; a crash prints the input's traceback, keeps the input, and fails the run.

Start-up used to cost ~20 s per target: each target's process instrumented every module it
imported, pydantic, numpy and the standard library included. Now only our own code (and the
pure-Python parsers it hands outside bytes to) is instrumented, once, and each target runs in
a process forked from that one, so the whole run takes about N seconds per target.

    python -m fuzz --one TARGET [libFuzzer args] [CORPUS_DIR or CRASH_FILE ...]

runs one target in this process, e.g. to replay a crash file.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Coverage feedback where the parsing happens: our code and the stdlib's pure-Python TOML
# parser. Third-party packages are imported uninstrumented (pydantic's core is Rust anyway).
INSTRUMENTED = ["agent", "fleet", "fuzz", "tomllib"]

Target = Callable[[bytes], None]


def instrumented_targets() -> dict[str, Target]:
    import atheris

    # atheris writes a line per instrumented module to stderr: noise in every CI log.
    with contextlib.redirect_stderr(io.StringIO()), \
            atheris.instrument_imports(include=INSTRUMENTED):
        from fuzz.targets import TARGETS
    return TARGETS


def libfuzzer_args(seconds: int, artifacts: Path) -> list[str]:
    return [f"-max_total_time={seconds}", "-rss_limit_mb=2048", "-max_len=4096",
            "-timeout=10", "-print_final_stats=1", f"-artifact_prefix={artifacts}/"]


def _fuzz_here(target: Target, argv: list[str]) -> None:
    import atheris

    atheris.Setup([sys.argv[0], *argv], target)
    atheris.Fuzz()  # libFuzzer ends the process


def _fork_one(name: str, target: Target, argv: list[str], log: Path) -> int:
    """Fuzz `target` in a child forked from this (already instrumented) process; its output
    goes to `log`. Returns the child's exit status (0: no finding)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 70
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            _fuzz_here(target, argv)
        except SystemExit as exc:
            # atheris ends a crashing run with SystemExit raised inside libFuzzer's callback;
            # libFuzzer writes the crash input from its C exit handler, which os._exit would
            # skip: leave through C's exit() (and not back through the parent's frames).
            ctypes.CDLL(None).exit(exc.code if isinstance(exc.code, int) else 1)
        except BaseException as exc:  # noqa: BLE001 - report, end the child; the parent counts
            print(f"fuzz {name}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _runs(log_text: str) -> str:
    for line in log_text.splitlines():
        if line.startswith("stat::number_of_executed_units"):
            return line.split(":")[-1].strip()
    return "?"


def fuzz_all(targets: dict[str, Target], names: list[str], seconds: int) -> int:
    """Fuzz each named target for `seconds`; 0 when none crashed, 1 otherwise."""
    work = Path(tempfile.mkdtemp(prefix="cart-fuzz-"))
    failed: list[str] = []
    for name in names:
        corpus = work / "corpus" / name
        corpus.mkdir(parents=True)
        seeds = HERE / "seeds" / name
        dirs = [str(corpus)] + ([str(seeds)] if seeds.is_dir() else [])
        log = work / f"{name}.log"
        started = time.monotonic()
        code = _fork_one(name, targets[name], [*libfuzzer_args(seconds, work), *dirs], log)
        text = log.read_text(errors="replace")
        took = time.monotonic() - started
        print(f"{name:22} {'ok' if code == 0 else 'CRASH'}  runs={_runs(text)}  "
              f"{took:.1f} s", flush=True)
        if code != 0:
            failed.append(name)
            print(text[-4000:], file=sys.stderr)
    if failed:
        print(f"findings and logs kept in {work}", file=sys.stderr)
        return 1
    for path in sorted(work.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    work.rmdir()
    return 0


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        _fuzz_here(instrumented_targets()[sys.argv[2]], sys.argv[3:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m fuzz")
    parser.add_argument("--seconds", type=int, default=30, help="per target (default 30)")
    parser.add_argument("targets", nargs="*", help="default: every target")
    args = parser.parse_args()
    if args.seconds < 1:
        parser.error("--seconds must be 1 or more")
    started = time.monotonic()
    targets = instrumented_targets()
    unknown = sorted(set(args.targets) - set(targets))
    if unknown:
        parser.error(f"no such target: {', '.join(unknown)} (targets: {', '.join(targets)})")
    names = args.targets or sorted(targets)
    print(f"instrumented in {time.monotonic() - started:.1f} s; {len(names)} target(s), "
          f"{args.seconds} s each", flush=True)
    code = fuzz_all(targets, names, args.seconds)
    print(f"fuzzing took {time.monotonic() - started:.1f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
