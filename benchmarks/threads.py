"""The thread cliff (issue #13): small workloads beside one busy process, default vs 1 thread.

Runs three real command lines, each three ways, and prints their wall times and ratios:

- ``toy``: ``python -m rsd_mini toy --fast`` (the 2-D toy, the tests' budget);
- ``evaluate``: the shipped tiny teacher on a few LR crops of the mini dataset's val split
  (written to a temporary folder), a few respaced steps;
- ``train``: a few tiny-teacher training updates (``train-teacher --config tiny``).

Ways: ``alone`` with the CLI's default thread policy (``OMP_NUM_THREADS`` removed from the
environment, no ``--threads``); ``busy`` the same beside one busy process this script starts
(a pure-Python spin loop, bounded by ``--busy-limit`` seconds and killed when done);
``busy_1thread`` beside the same busy process with ``--threads 1``. The goal: beside a busy
process the default is never slower than one thread, i.e. ``busy / busy_1thread ≤ 1``.

``--all-cores`` adds the alternative the policy was chosen against: every core with OpenMP's
passive wait (what ``--threads N`` sets) alone and beside the busy process, and every core with
the active (spinning) wait beside it; the ratios say what one thread costs on an idle machine and
what each wait policy costs beside a busy one.

    python benchmarks/threads.py [--json threads.json] [--iterations 10] [--images 2] [--repeats 3] [--all-cores]

The machine's load average is printed with each run: on a shared machine "alone" means
"without our busy process", not idle.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

WAYS = ("alone", "busy", "busy_1thread")


def workloads(tmp: Path, iterations: int, images: int, steps: int) -> dict[str, list[str]]:
    """The three command lines (arguments after ``python -m rsd_mini``)."""
    return {
        "toy": ["toy", "--fast", "--seed", "0"],
        "evaluate": ["evaluate", "--checkpoint", "tiny-teacher", "--lq", str(write_lr_crops(tmp, images)),
                     "--json", str(tmp / "evaluate.json"), "--steps", str(steps), "--no-progress"],
        "train": ["train-teacher", "--config", "tiny", f"train.iterations={iterations}",
                  "optim.warmup_steps=1", "--out", str(tmp / "train"), "--no-resume", "--no-progress"],
    }


def write_lr_crops(tmp: Path, images: int) -> Path:
    """``images`` LR crops of the mini dataset's val split as PNGs; returns their folder."""
    from rsd_mini.data import export_paired, mini_dataset

    lq_dir, _ = export_paired(mini_dataset("val", num_crops=images), tmp / "mini")
    return lq_dir


@contextmanager
def busy_process(limit_s: float):
    """One CPU-bound Python process for at most ``limit_s`` seconds, killed on exit."""
    spin = f"import time\nend = time.time() + {limit_s}\nwhile time.time() < end:\n    pass\n"
    process = subprocess.Popen([sys.executable, "-c", spin])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def run_once(arguments: list[str], threads: int | None, wait_policy: str | None = None) -> float:
    """Wall seconds of ``python -m rsd_mini [--threads N] ARGUMENTS`` under the CLI's policy
    (``wait_policy``: an ``OMP_WAIT_POLICY`` to force, else the CLI's choice)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    if wait_policy:
        env["OMP_WAIT_POLICY"] = wait_policy
    command = [sys.executable, "-m", "rsd_mini", *(["--threads", str(threads)] if threads else []),
               *arguments]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(arguments: list[str], busy_limit_s: float, repeats: int, all_cores: bool = False) -> dict:
    """The ways for one workload, each alternated ``repeats`` times (medians reported); the busy
    process lives only across the busy runs."""
    cores = len(os.sched_getaffinity(0))
    alone = [("alone", None, None)] + ([("alone_all_cores", cores, None)] if all_cores else [])
    busy = [("busy", None, None), ("busy_1thread", 1, None)] + (
        [("busy_all_cores_passive", cores, None), ("busy_all_cores_active", cores, "ACTIVE")] if all_cores else [])
    runs: dict[str, list[float]] = {}

    def one(way: str, threads: int | None, wait_policy: str | None) -> None:
        runs.setdefault(way, []).append(run_once(arguments, threads, wait_policy))
        print(f"  {way:22s} {runs[way][-1]:7.1f} s  (load {os.getloadavg()[0]:.1f})", flush=True)

    for _ in range(repeats if all_cores else 1):
        for way in alone:
            one(*way)
    with busy_process(busy_limit_s):
        for _ in range(repeats):
            for way in busy:
                one(*way)
    times = {way: statistics.median(values) for way, values in runs.items()}
    times["runs"] = runs
    times["ratio_default_vs_1thread_under_load"] = times["busy"] / times["busy_1thread"]
    times["slowdown_from_load"] = times["busy"] / times["alone"]
    if all_cores:
        times["speedup_all_cores_alone"] = times["alone"] / times["alone_all_cores"]
        times["ratio_all_cores_passive_vs_1thread_under_load"] = times["busy_all_cores_passive"] / times["busy_1thread"]
        times["ratio_all_cores_active_vs_1thread_under_load"] = times["busy_all_cores_active"] / times["busy_1thread"]
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10, help="tiny-teacher training updates")
    parser.add_argument("--images", type=int, default=2, help="LR crops for evaluate")
    parser.add_argument("--steps", type=int, default=4, help="teacher calls per image in evaluate")
    parser.add_argument("--repeats", type=int, default=1,
                        help="alternations of the two busy ways (medians are reported)")
    parser.add_argument("--only", nargs="+", choices=("toy", "evaluate", "train"), help="a subset")
    parser.add_argument("--busy-limit", type=float, default=900.0,
                        help="seconds after which the busy process stops by itself (default 900)")
    parser.add_argument("--all-cores", action="store_true",
                        help="also every core (passive wait) alone and beside the busy process, and the active wait")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    for name in ("iterations", "images", "steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}={getattr(args, name)}: expected a whole number ≥ 1")
    print(f"{len(os.sched_getaffinity(0))} cores; busy process: one pure-Python spin loop")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, arguments in workloads(Path(tmp), args.iterations, args.images, args.steps).items():
            if args.only and name not in args.only:
                continue
            print(f"{name}: python -m rsd_mini {' '.join(arguments)}", flush=True)
            results[name] = measure(arguments, args.busy_limit, args.repeats, args.all_cores)
    print(f"\n{'workload':10s} {'alone s':>8s} {'busy s':>8s} {'busy 1t s':>10s} {'default/1t':>11s}")
    for name, r in results.items():
        print(f"{name:10s} {r['alone']:8.1f} {r['busy']:8.1f} {r['busy_1thread']:10.1f} "
              f"{r['ratio_default_vs_1thread_under_load']:11.2f}")
    if args.all_cores:
        print(f"\n{'workload':10s} {'all cores alone: speed-up':>26s} {'busy, passive / 1t':>19s} {'busy, active / 1t':>18s}")
        for name, r in results.items():
            print(f"{name:10s} {r['speedup_all_cores_alone']:26.2f} "
                  f"{r['ratio_all_cores_passive_vs_1thread_under_load']:19.2f} "
                  f"{r['ratio_all_cores_active_vs_1thread_under_load']:18.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
