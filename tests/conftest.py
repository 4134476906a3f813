"""Shared test settings: one torch thread per pytest-xdist worker (2 workers share 2 cores)."""

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
