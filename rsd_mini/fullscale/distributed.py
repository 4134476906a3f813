"""Data-parallel training over several processes (``torchrun``), on GPUs (NCCL) or CPUs (gloo).

Every process builds the same global batch of update k (a pure function of seed and k, see
:func:`rsd_mini.train.make_batch`), keeps its own contiguous shard, and splits the shard into
microbatches. Microbatch c of the *global* batch draws its timesteps and noise from its own
generator, keyed by (seed, k, c), so a run on W processes sees exactly the numbers one process
would see, provided ``batch_size / W`` is a multiple of ``microbatch``.

Each process divides its loss by its shard size; :meth:`World.average_gradients` then averages
the gradients, which makes them the gradient of the global mean loss. This is what
``DistributedDataParallel`` does with ``no_sync`` for accumulation; one explicit all-reduce per
optimiser step is used instead of the wrapper because an RSD iteration backpropagates through two
frozen networks and updates two models in turn (RSD_SPEC §4b), which the wrapper's hooks do not
fit. Only rank 0 writes the log and the checkpoints.

Launch: ``torchrun --nproc_per_node=N -m rsd_mini distill --config rsd-paper ...``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class World:
    """This process's place among ``size`` data-parallel processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, device: torch.device | None = None) -> "World":
        """Read ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (set by ``torchrun``) and join the process
        group (NCCL on CUDA, gloo on CPU); a single process when ``WORLD_SIZE`` is unset or 1."""
        size = _env_int("WORLD_SIZE", 1)
        world = cls(_env_int("RANK", 0), size, _env_int("LOCAL_RANK", 0))
        if size > 1 and not dist.is_initialized():
            cuda = device is not None and device.type == "cuda"
            dist.init_process_group("nccl" if cuda else "gloo")
        return world

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """This rank's contiguous slice of a global batch ``{"hr", "lq"}``."""
        total = len(batch["hr"])
        if total % self.size:
            raise ValueError(f"train.batch_size={total}: expected a multiple of the {self.size} "
                             "data-parallel processes")
        per_rank = total // self.size
        return {key: value[self.rank * per_rank:(self.rank + 1) * per_rank] for key, value in batch.items()}

    def first_chunk(self, shard_size: int, microbatch: int) -> int:
        """Index, in the global batch, of this rank's first microbatch."""
        return self.rank * -(-shard_size // microbatch)

    def average_gradients(self, parameters) -> None:
        """Replace each gradient by its mean over the processes (one flat all-reduce)."""
        if self.size == 1:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)  # SUM: gloo has no AVG
        flat /= self.size
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def average(self, values: dict[str, float]) -> dict[str, float]:
        """The mean of each logged number over the processes."""
        if self.size == 1:
            return values
        keys = sorted(values)
        flat = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
        dist.all_reduce(flat)
        return {key: float(v) / self.size for key, v in zip(keys, flat)}

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()


def default_device(world: World | None = None) -> torch.device:
    """``cuda:LOCAL_RANK`` when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", world.local_rank if world else _env_int("LOCAL_RANK", 0))
    return torch.device("cpu")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r}: expected an integer") from None
