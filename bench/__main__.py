"""`python -m bench [--quick] [--only NAME] [--json FILE]`: run every benchmark, print a table
and a JSON summary. `--quick` runs each in a reduced form (CI checks that they run)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from typing import Any

MODULES = ["bench_store", "bench_tokens", "bench_lockbus", "bench_scan", "bench_decoders",
           "bench_audio", "bench_drain", "bench_daemon", "bench_fleet", "bench_desk"]


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpu_count": os.cpu_count(),
            "machine": platform.machine(), "system": platform.platform(terse=True)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--json", help="also write the summary to this file")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    failures = []
    for name in MODULES:
        if args.only and not any(o in name for o in args.only):
            continue
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench.{name}":
                continue
            raise
        started = time.perf_counter()
        try:
            produced = module.run(quick=args.quick)
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the rest
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        for row in produced:
            row.setdefault("bench", name)
            rows.append(row)
        print(f"[{name}: {time.perf_counter() - started:.1f} s]", file=sys.stderr)
    print(table(rows))
    summary = {"machine": machine(), "quick": args.quick, "results": rows,
               "failures": failures}
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, ensure_ascii=False, indent=1)
    for failure in failures:
        print(f"benchmark failed: {failure}", file=sys.stderr)
    return 1 if failures else 0


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def table(rows: list[dict[str, Any]]) -> str:
    head = ["benchmark", "value", "unit", "baseline", "ratio"]
    body = []
    for r in rows:
        if "decoder" in r:  # accuracy rows: correct, silently wrong, not read, speed
            where = f", {r['set']}" if r.get("set") else ""
            body.append([f"camera decoder {r['decoder']} ({r['images']} photos{where})",
                         f"{r['correct']} ok / {r['wrong']} wrong / "
                         f"{r['missed'] + r['undecodable']} unread",
                         f"{r['ms_per_image']} ms/img", "same photos, same run", ""])
            continue
        value = r.get("value", r.get("p50_ms"))
        unit = r.get("unit", "ms (p50)" if "p50_ms" in r else "")
        if "p99_ms" in r:
            value = f"{_fmt(r['p50_ms'])} / {_fmt(r['p99_ms'])}"
            unit = "ms p50/p99"
        baseline = r.get("baseline", "")
        bval = r.get("baseline_value", r.get("baseline_ms"))
        body.append([str(r.get("name")), _fmt(value), str(unit),
                     f"{baseline} = {_fmt(bval)}" if bval is not None else str(baseline),
                     _fmt(r.get("ratio"))])
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
