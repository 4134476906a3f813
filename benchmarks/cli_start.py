"""How long ``python -m rsd_mini`` takes to answer commands that compute nothing (issue #13.1).

For each command: the median (and min, max) wall time of ``--repeats`` fresh processes, and
whether torch, timm or kornia got imported (one extra run under ``python -X importtime``, whose
report lists every module imported). Goal: ``--help`` in ≤ 1 s, without torch.

    python benchmarks/cli_start.py [--repeats 5] [--json cli_start.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "timm", "kornia")
#: The commands timed: (label, arguments). The last ones are argument errors (exit 2).
COMMANDS = (
    ("--help", ["--help"]),
    ("weights list", ["weights", "list"]),
    ("data list", ["data", "list"]),
    ("config --help", ["config", "--help"]),
    ("unknown command", ["bogus"]),
    ("train-teacher bad flag", ["train-teacher", "--bogus"]),
    ("evaluate missing args", ["evaluate"]),
)
GOAL_SECONDS = 1.0


def _run(args: list[str], *python_flags: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    return subprocess.run([sys.executable, *python_flags, "-m", "rsd_mini", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)


def imported_heavy(args: list[str]) -> list[str]:
    """Which of :data:`HEAVY` the command imports (from ``-X importtime``'s report)."""
    report = _run(args, "-X", "importtime").stderr
    names = {line.rpartition("|")[2].strip().split(".")[0] for line in report.splitlines()
             if line.startswith("import time:")}
    return [name for name in HEAVY if name in names]


def time_command(args: list[str], repeats: int) -> dict:
    """Wall times of ``repeats`` fresh processes running ``args``, and their exit code."""
    seconds, code = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        code = _run(args).returncode
        seconds.append(time.perf_counter() - start)
    return dict(median=statistics.median(seconds), min=min(seconds), max=max(seconds), exit_code=code,
                heavy_imports=imported_heavy(args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per command (default 5)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: expected ≥ 1")
    results = {}
    print(f"{'command':<24} {'median s':>8} {'min s':>7} {'max s':>7}  exit  imports of {'/'.join(HEAVY)}")
    for label, command_args in COMMANDS:
        result = results[label] = time_command(command_args, args.repeats)
        print(f"{label:<24} {result['median']:8.3f} {result['min']:7.3f} {result['max']:7.3f}  {result['exit_code']:>4}  "
              f"{', '.join(result['heavy_imports']) or 'none'}")
    python = time_command([], 1)  # the interpreter and argparse alone (exit 2: no command)
    help_time = results["--help"]["median"]
    print(f"--help: {help_time:.3f} s (goal ≤ {GOAL_SECONDS} s: {'met' if help_time <= GOAL_SECONDS else 'NOT met'}); "
          f"{args.repeats} repeats, median; python -m rsd_mini with no command: {python['median']:.3f} s")
    if args.json:
        args.json.write_text(json.dumps(dict(results=results, repeats=args.repeats, goal_seconds=GOAL_SECONDS,
                                             python=sys.version.split()[0]), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
