"""Shared test settings: one torch thread per pytest-xdist worker (2 workers share 2 cores)."""

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


def split_run_resumes_exactly(make_trainer):
    """Two iterations in one go and the same two split by a stop after the first give the same
    weights; returns (straight, resumed). ``make_trainer(name)`` builds a 2-iteration trainer in
    its own run folder ``name``."""
    straight = make_trainer("straight")
    straight.fit(progress=False)
    make_trainer("split").fit(progress=False, max_steps=1)
    resumed = make_trainer("split")
    resumed.fit(progress=False)
    assert resumed.step == 2
    for name in ("ema_model", "model"):
        ours = getattr(resumed, name).state_dict()
        for key, value in getattr(straight, name).state_dict().items():
            assert torch.equal(value, ours[key]), f"{name}.{key}"
    return straight, resumed
