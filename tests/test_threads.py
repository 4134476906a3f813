"""The thread policy: --threads, then OMP_NUM_THREADS, then 1 (small) or all cores (large)."""

import os
import subprocess
import sys

import pytest
import torch

from rsd_mini import threads


@pytest.fixture(autouse=True)
def restore_torch_threads(monkeypatch):
    """Each test starts without OMP settings and leaves torch's thread count as it found it."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def three_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)


def test_small_workloads_run_on_one_thread(three_cores):
    torch.set_num_threads(3)
    assert threads.configure("small") == 1
    assert torch.get_num_threads() == 1


def test_large_workloads_use_every_allowed_core(three_cores):
    torch.set_num_threads(1)
    assert threads.configure("large") == 3
    assert torch.get_num_threads() == 3


def test_environment_overrides_the_workload_default(three_cores, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.configure("small") == 2
    assert torch.get_num_threads() == 2
    assert threads.configure("large") == 2


def test_requested_overrides_the_environment(three_cores, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.configure("large", requested=1) == 1
    assert torch.get_num_threads() == 1
    assert threads.configure("small", requested=2) == 2
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("requested", [0, -2, 1.5, "two", True])
def test_bad_requested_counts_name_the_argument(requested):
    with pytest.raises(ValueError, match=rf"requested={requested!r}: expected a whole number"):
        threads.configure("small", requested)


@pytest.mark.parametrize("value", ["0", "many", "1.5"])
def test_bad_environment_counts_name_the_variable(monkeypatch, value):
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    with pytest.raises(ValueError, match=f"OMP_NUM_THREADS='{value}': expected a whole number"):
        threads.configure("large")


def test_unknown_workloads_are_rejected():
    with pytest.raises(ValueError, match=r"workload='huge': expected one of \('small', 'large'\)"):
        threads.configure("huge", requested=1)


def test_passive_wait_only_while_it_can_reach_openmp(three_cores, monkeypatch):
    monkeypatch.setattr(threads, "wait_policy_applies", lambda: False)
    threads.configure("large")
    assert "OMP_WAIT_POLICY" not in os.environ  # torch loaded: setting it would only mislead
    monkeypatch.setattr(threads, "wait_policy_applies", lambda: True)
    threads.configure("small")
    assert "OMP_WAIT_POLICY" not in os.environ  # one thread: no OpenMP workers to wait
    threads.configure("large")
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    threads.configure("large")
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's choice stays


def test_configure_runs_before_torch_is_loaded():
    """In a fresh interpreter, importing the policy does not load torch, so the wait policy
    still reaches OpenMP; configure then loads torch with the chosen count."""
    code = ("import sys; from rsd_mini import threads; loaded = 'torch' in sys.modules; "
            "n = threads.configure('large', requested=2); import os, torch; "
            "print(loaded, n, torch.get_num_threads(), os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "2", "2", "PASSIVE"]
