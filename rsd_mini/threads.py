"""How many CPU threads a command uses: one for small models, all cores for large ones.

Why (issue #13, measured on 2 cores): torch's default is one thread per core. Beside one other
busy process, a small model (the tiny teacher, the 2-D toy) then spends its time waiting at the
end of every parallel region for the thread the scheduler parked, and runs 5–8× *slower* than
with one thread. Small workloads have little to split anyway, so they run single-threaded; large
ones (the v1 teacher, VQ-f4, a GPU run's data side) keep the cores.

Precedence, highest first:

1. ``requested`` (the command line's ``--threads N``);
2. ``OMP_NUM_THREADS`` in the environment (what ``make test`` and every OpenMP user already set);
3. the workload: ``"small"`` → 1 thread, ``"large"`` → every core this process may run on
   (``os.sched_getaffinity``, so ``taskset`` and container CPU sets are respected).

OpenMP's wait policy: with more than one thread, idle OpenMP workers spin before they sleep,
which burns the cycles a neighbouring process needs. ``OMP_WAIT_POLICY=PASSIVE`` makes them
sleep at once. The OpenMP runtime reads it only when it is loaded, i.e. when ``torch`` is first
imported; :func:`configure` therefore sets it (unless the user set it) only when ``torch`` is not
imported yet and more than one thread is chosen, and reports in :func:`wait_policy_applies`
whether it could. Call :func:`configure` before anything imports torch (the CLI does, right
after parsing its arguments) for the policy to take effect.
"""

from __future__ import annotations

import os
import sys

WORKLOADS = ("small", "large")


def available_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _positive_int(name: str, value) -> int:
    """``value`` as a thread count ≥ 1, or a ValueError naming ``name``."""
    if isinstance(value, bool):
        raise ValueError(f"{name}={value!r}: expected a whole number of threads ≥ 1")
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r}: expected a whole number of threads ≥ 1") from None
    if count < 1 or (isinstance(value, float) and value != count):
        raise ValueError(f"{name}={value!r}: expected a whole number of threads ≥ 1")
    return count


def choose(workload: str, requested: int | None = None) -> int:
    """The thread count for ``workload`` under the precedence of the module docstring."""
    if workload not in WORKLOADS:
        raise ValueError(f"workload={workload!r}: expected one of {WORKLOADS}")
    if requested is not None:
        return _positive_int("requested", requested)
    if os.environ.get("OMP_NUM_THREADS", "").strip():
        return _positive_int("OMP_NUM_THREADS", os.environ["OMP_NUM_THREADS"].strip())
    return 1 if workload == "small" else available_cores()


def wait_policy_applies() -> bool:
    """Whether ``OMP_WAIT_POLICY`` set now still reaches the OpenMP runtime (torch not loaded)."""
    return "torch" not in sys.modules


def configure(workload: str, requested: int | None = None) -> int:
    """Choose the thread count for ``workload`` ("small" or "large"), apply it to torch and
    return it. ``requested`` (e.g. ``--threads``) wins, then ``OMP_NUM_THREADS``, then the
    workload's default (1 or all cores). With several threads and torch not yet imported, also
    sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already chose a policy."""
    count = choose(workload, requested)
    if count > 1 and wait_policy_applies():
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch  # here, after the wait policy is in the environment

    torch.set_num_threads(count)
    return count
