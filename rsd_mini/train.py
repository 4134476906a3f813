"""Training the ResShift teacher (RSD_SPEC §1 "Teacher training").

The loop of the official ``TrainerDifIR``: per update, a batch of (HR, LR) pairs, t ~ U{0..T−1},
the x₀-prediction MSE of :meth:`rsd_mini.diffusion.ResShift.training_loss` accumulated over
microbatches, AdamW with a linear warm-up then a constant (v1) or cosine (v3) learning rate,
optional AMP on CUDA, and an EMA copy of the weights (0.999 in the paper), which is the model
that is evaluated and distilled.

Reproducibility: the batch, the timesteps and the noise of update k are a pure function of
(``train.seed``, k); together with a checkpoint holding model, EMA, optimizer, scheduler, AMP
scaler, step and RNG state, a run that stops and resumes ends with the same weights, bit for
bit (in ``train.deterministic`` mode), as one that never stopped.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from rsd_mini.checkpoint import (load_checkpoint, remove_stale_temporaries, rng_state, save_checkpoint,
                                 set_rng_state)
from rsd_mini.config import DataConfig, OptimConfig, TeacherConfig, from_dict, save_config, to_dict
from rsd_mini.diffusion import ResShift
from rsd_mini.errors import stop_if_interrupted
from rsd_mini.fullscale import official, weights
from rsd_mini.fullscale.distributed import World, default_device
from rsd_mini.fullscale.latent import encode_latents
from rsd_mini.unet import SwinUNet



# --------------------------------------------------------------------- schedule and EMA
def lr_factor(step: int, warmup_steps: int, iterations: int, schedule: str,
              min_lr_ratio: float) -> float:
    """Multiplier of ``optim.lr`` for update number k = ``step`` + 1 (RSD_SPEC §1).

    Linear warm-up k/warmup for k ≤ warmup (the official trainer's ramp), then 1 (``constant``,
    v1) or a half cosine from 1 to ``min_lr_ratio`` reached at k = ``iterations`` (``cosine``, v3).
    """
    k = step + 1
    if k <= warmup_steps:
        return k / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (k - warmup_steps) / max(1, iterations - warmup_steps))
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(model: nn.Module, optim: OptimConfig) -> torch.optim.AdamW:
    """AdamW (weight decay 0 in the paper, RSD_SPEC §1)."""
    return torch.optim.AdamW(model.parameters(), lr=optim.lr, betas=optim.betas,
                             weight_decay=optim.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, optim: OptimConfig, iterations: int) -> LambdaLR:
    """:func:`lr_factor` as a ``LambdaLR`` (stepped once per update)."""
    factor = functools.partial(lr_factor, warmup_steps=optim.warmup_steps, iterations=iterations,
                               schedule=optim.schedule, min_lr_ratio=optim.min_lr / optim.lr)
    return LambdaLR(optimizer, factor)


def build_ema(model: nn.Module, rate: float) -> AveragedModel:
    """θ_EMA ← rate·θ_EMA + (1 − rate)·θ after every update, starting from θ at step 0.

    As in the official trainer, the EMA starts as a copy of the initial weights (the first
    ``update_parameters`` call copies) and buffers are not averaged (the Swin buffers are
    constant index tables and masks).
    """
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(rate), use_buffers=False)
    ema.update_parameters(model)
    return ema.requires_grad_(False).eval()


# --------------------------------------------------------------------- data
def step_seed(seed: int, step: int, stream: str) -> int:
    """A 63-bit seed that depends only on (``seed``, ``step``, ``stream``)."""
    digest = hashlib.blake2b(f"{seed}:{step}:{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def make_batch(dataset: Dataset, batch_size: int, seed: int, step: int) -> dict[str, Tensor]:
    """The (HR, LR) batch of update ``step``, a pure function of (``seed``, ``step``).

    Indices are drawn without replacement (as far as the dataset allows) from a generator seeded
    by (seed, step); the dataset's per-item crop and degradation randomness is keyed by the same
    step through ``set_epoch(step)``, and any draw from torch's global RNG is seeded too.
    """
    generator = torch.Generator().manual_seed(step_seed(seed, step, "indices"))
    rounds = math.ceil(batch_size / len(dataset))
    indices = torch.cat([torch.randperm(len(dataset), generator=generator) for _ in range(rounds)])
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(step)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(step_seed(seed, step, "items"))
        return stack_items(dataset, indices[:batch_size].tolist())


def stack_items(dataset: Dataset, indices: list[int]) -> dict[str, Tensor]:
    """``{"hr": (B,3,S,S), "lq": (B,3,S/scale,S/scale)}`` from the items at ``indices``."""
    items = [dataset[i] for i in indices]
    return {key: torch.stack([item[key] for item in items]) for key in ("hr", "lq")}


def build_dataset(data: DataConfig, seed: int, split: str = "train") -> Dataset | None:
    """The configured dataset (:mod:`rsd_mini.data`); ``None`` for a missing validation set."""
    from rsd_mini import data as sr_data

    kwargs = dict(crop_size=data.crop_size, scale=data.scale, degradation=data.degradation, seed=seed)
    if data.dataset == "mini":
        return sr_data.mini_dataset(split=split, **kwargs)
    root = data.root if split == "train" else data.val_root
    if root is None:
        if split == "train":
            raise ValueError("data.root=None: set it to the training image folder "
                             "(e.g. data.root=/path/to/ImageNet/train)")
        return None
    return sr_data.ImageFolderSR(root, **kwargs)


def load_run_autoencoder(source: str | None, device: torch.device):
    """The frozen VQ-f4 of a latent run: ``diffusion.autoencoder`` is a file or a name of
    :data:`rsd_mini.fullscale.weights.REGISTRY` found in the weights folder (RSD_SPEC §1)."""
    if source is None:
        raise ValueError("diffusion.autoencoder=None: diffusion.latent=True needs the VQ-f4 checkpoint "
                         "(a file, or 'vq-f4' from the weights folder)")
    path = weights.require(source) if source in weights.REGISTRY else Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"diffusion.autoencoder={source!r}: no such file")
    return official.load_autoencoder(path, device=device)


def pixel_space_pair(batch: dict[str, Tensor], scale: int) -> tuple[Tensor, Tensor]:
    """(x₀, y₀) in pixel space: the HR crop and the bicubic ×scale upsampled LR image."""
    from rsd_mini.degradations import bicubic_upsample

    return batch["hr"], bicubic_upsample(batch["lq"], scale=scale)


@contextmanager
def torch_settings(deterministic: bool, num_threads: int | None) -> Iterator[None]:
    """Deterministic kernels and a thread count for the duration of a run, then restored."""
    previous = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    if deterministic:  # cuBLAS refuses deterministic mode without a fixed workspace
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic)
    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])


def _seeded_model(config: TeacherConfig) -> SwinUNet:
    """``SwinUNet(config.unet)`` initialised from ``train.seed`` (global RNG left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(step_seed(config.train.seed, 0, "init"))
        return SwinUNet(config.unet)


# --------------------------------------------------------------------- the run
class TrainingRun:
    """What every trainer shares: the run folder, the JSON-lines log, atomic ``last.pt``
    checkpoints, exact resume and the loop.

    Subclasses set ``name`` and ``sections`` (the config sections a checkpoint must agree on to
    be resumed) and implement :meth:`update` (one optimisation step returning the numbers to log,
    ``loss`` among them), :meth:`sample`, :meth:`state_dict` and :meth:`load_state_dict`.

    Under ``torchrun`` the run is data-parallel (:mod:`rsd_mini.fullscale.distributed`): ``world`` is this
    process's rank, :meth:`microbatches` its shard of each global batch, and only rank 0 writes.
    """

    name = "run"
    sections: tuple[str, ...] = ("diffusion", "unet")

    def __init__(self, config, device: str | torch.device | None = None, autoencoder: nn.Module | None = None):
        self.config = config
        self.device = torch.device(device) if device is not None else default_device()
        self.world = World.from_env(self.device)
        self.latent = config.diffusion.latent
        if self.latent and autoencoder is None:
            autoencoder = load_run_autoencoder(config.diffusion.autoencoder, self.device)
        self.autoencoder = autoencoder.to(self.device).requires_grad_(False) if self.latent else None
        self._val_dataset: Dataset | None = None
        self.step, self.seconds = 0, 0.0
        self.saved_step: int | None = None

    @property
    def out_dir(self) -> Path:
        return Path(self.config.train.out_dir)

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "last.pt"

    def update(self) -> dict[str, float]:
        raise NotImplementedError

    def sample(self, y: Tensor, lq: Tensor, generator: torch.Generator) -> Tensor:
        """What the EMA model outputs for validation, in x₀-space."""
        raise NotImplementedError

    @torch.no_grad()
    def validate(self) -> float:
        """Mean Y-channel PSNR (dB) of :meth:`sample` on the first ``data.val_images`` validation
        items (fixed noise), decoded to images in latent space."""
        from rsd_mini.metrics import psnr, to_unit_range

        if self._val_dataset is None:
            self._val_dataset = build_dataset(self.config.data, self.config.train.seed, split="val")
        if self._val_dataset is None:
            return math.nan
        count = min(self.config.data.val_images, len(self._val_dataset))
        batch = {k: v.to(self.device) for k, v in stack_items(self._val_dataset, list(range(count))).items()}
        _, y, lq = self.training_triple(batch)
        generator = torch.Generator(device=self.device).manual_seed(self.config.train.seed)
        image = self.to_image(self.sample(y, lq, generator)).clamp(-1, 1)
        return float(psnr(to_unit_range(image), to_unit_range(batch["hr"])).mean())

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError

    def step_generator(self, step: int, stream: str = "diffusion") -> torch.Generator:
        """A generator for update ``step`` (a pure function of seed, step and stream)."""
        seed = step_seed(self.config.train.seed, step, stream)
        return torch.Generator(device=self.device).manual_seed(seed)

    @property
    def amp(self) -> bool:
        """Mixed precision is used on CUDA only."""
        return self.config.train.amp and self.device.type == "cuda"

    def autocast(self):
        """The forward passes' autocast context (``train.amp``, ``train.amp_dtype``)."""
        return torch.autocast(self.device.type, dtype=getattr(torch, self.config.train.amp_dtype), enabled=self.amp)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A loss scaler, enabled for float16 autocast (bfloat16 has float32's range)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp and self.config.train.amp_dtype == "float16")

    def microbatches(self, batch: dict[str, Tensor], index: int) -> Iterator[tuple[dict[str, Tensor], torch.Generator]]:
        """This process's shard of global batch ``index``, split into ``train.microbatch``-sized
        pieces on ``device``, each with the generator of its position c in the global batch
        (piece 0 uses the stream of ``index`` itself, so single-piece runs keep their numbers)."""
        shard = self.world.shard(batch)
        size = self.config.train.microbatch
        first = self.world.first_chunk(len(shard["hr"]), size)
        for c, start in enumerate(range(0, len(shard["hr"]), size), start=first):
            piece = {key: value[start:start + size].to(self.device) for key, value in shard.items()}
            yield piece, self.step_generator(index, "diffusion" if c == 0 else f"diffusion.{c}")

    def training_triple(self, piece: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """(x₀, y₀, lq) of a batch: in pixel space the HR image, the bicubic-upsampled LR image
        twice; in latent space z₀ = E(HR), z_y = E(bicubic↑LR) and the pixel LR image, which
        the network reads as its condition (RSD_SPEC §1)."""
        if self.autoencoder is None:
            x0, y = pixel_space_pair(piece, self.config.data.scale)
            return x0, y, y
        z0, z_y = encode_latents(self.autoencoder, piece["hr"], piece["lq"], self.config.data.scale)
        return z0, z_y, piece["lq"]

    def to_image(self, x: Tensor) -> Tensor:
        """An image from x₀-space: the decoded latent (quantised, straight-through) or itself."""
        return x if self.autoencoder is None else self.autoencoder.decode(x)

    def optimizer_step(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> Tensor:
        """Unscale the accumulated gradients, average them over the processes, clip them to
        ``optim.grad_clip`` and step; returns the norm before clipping."""
        params = [p for group in optimizer.param_groups for p in group["params"]]
        scaler.unscale_(optimizer)
        self.world.average_gradients(params)
        norm = torch.nn.utils.clip_grad_norm_(params, self.config.optim.grad_clip or math.inf)
        scaler.step(optimizer)
        scaler.update()
        return norm

    def shard_size(self, batch: dict[str, Tensor]) -> int:
        """How many items of ``batch`` this process handles (the divisor of its loss)."""
        return len(batch["hr"]) // self.world.size

    # ----------------------------------------------------------------- the loop
    def fit(self, progress: bool = True, resume: bool = True, max_steps: int | None = None) -> dict:
        """Train to ``train.iterations`` (or ``max_steps`` more updates, to split a run).

        Resumes from ``out_dir/last.pt`` when it exists and ``resume`` (after deleting the
        temporary files a kill mid-write left; a corrupt ``last.pt`` is a ValueError that names
        ``--no-resume``). Warns when the warm-up is longer than the run. Writes
        ``out_dir/config.yaml``, appends JSON lines to ``out_dir/log.jsonl`` (means over each
        logging window) and saves ``last.pt`` every ``checkpoint_every`` updates and at the end.
        Returns the final step and the mean loss of the last logging window.
        """
        train = self.config.train
        if self.world.is_main:
            self._warn_long_warmup()
            remove_stale_temporaries(self.checkpoint_path)
        if resume and self.checkpoint_path.is_file():
            self.load_state_dict(self._resume_state())
            if self.world.is_main:
                self._trim_log()
        elif self.step == 0 and self.world.is_main:
            (self.out_dir / "log.jsonl").unlink(missing_ok=True)  # a fresh run, a fresh log
        if self.world.is_main:
            save_config(self.config, self.out_dir / "config.yaml")
        end = train.iterations if max_steps is None else min(train.iterations, self.step + max_steps)
        window, last = [], {}
        with torch_settings(train.deterministic, train.num_threads), \
                tqdm(total=train.iterations, initial=self.step, disable=not (progress and self.world.is_main),
                     desc=self.name, dynamic_ncols=True) as bar:
            while self.step < end:
                stop_if_interrupted()  # a Ctrl-C that a finaliser swallowed still stops the run
                stats = self._timed_update()
                window.append(stats)
                bar.update(1)
                bar.set_postfix(loss=f"{stats['loss']:.4f}")
                if self.step % train.log_every == 0 or self.step == end:
                    last = self._log(_window_mean(window))
                    window = []
                if train.sample_every and self.step % train.sample_every == 0 and self.world.is_main:
                    self._log(dict(val_psnr=self.validate()))
                if self.step % train.checkpoint_every == 0 or self.step == end:
                    self.save()
        return dict(step=self.step, loss=last.get("loss"), out_dir=str(self.out_dir))

    def _resume_state(self) -> dict:
        try:
            return load_checkpoint(self.checkpoint_path, map_location=self.device)
        except ValueError as error:
            raise ValueError(f"{error}; cannot resume from it: start afresh with --no-resume (resume=False), "
                             "or use another --out") from error

    def _warn_long_warmup(self) -> None:
        warmup, iterations = self.config.optim.warmup_steps, self.config.train.iterations
        if warmup >= iterations > 0:
            warnings.warn(f"optim.warmup_steps={warmup} is not shorter than train.iterations={iterations}: the "
                          "learning rate never reaches optim.lr; lower optim.warmup_steps", stacklevel=3)

    def _timed_update(self) -> dict[str, float]:
        start = time.perf_counter()
        result = self.world.average(self.update())
        self.step += 1
        self.seconds += time.perf_counter() - start
        return result

    def _check_finite(self, loss: Tensor) -> None:
        if not torch.isfinite(loss):
            kept = (f"the last good checkpoint {self.checkpoint_path} (step {self.saved_step}) was "
                    "kept" if self.saved_step is not None else "no checkpoint had been written yet")
            raise FloatingPointError(f"step {self.step + 1}: loss is {float(loss)}, not finite; "
                                     f"training stopped and {kept}")

    def _trim_log(self) -> None:
        """Drop log rows written after the checkpoint we resume from (they will be redone)."""
        log = self.out_dir / "log.jsonl"
        if log.is_file():
            rows = [line for line in log.read_text().splitlines()
                    if line and json.loads(line)["step"] <= self.step]
            log.write_text("".join(row + "\n" for row in rows))

    def _log(self, values: dict) -> dict:
        record = dict(step=self.step, **values, seconds=round(self.seconds, 3))
        if self.world.is_main:
            with open(self.out_dir / "log.jsonl", "a") as file:
                file.write(json.dumps(record) + "\n")
        return record

    # ----------------------------------------------------------------- checkpoints
    def _check_compatible(self, saved: dict) -> None:
        """The config sections of ``sections`` must agree (as dataclasses, so what does not change
        the function, e.g. ``unet.checkpointing``, is not compared); keys a checkpoint predates
        count as their defaults."""
        saved = from_dict(type(self.config), saved)
        for section in self.sections:
            if getattr(saved, section) != getattr(self.config, section):
                raise ValueError(f"{self.checkpoint_path}: trained with {section}={to_dict(getattr(saved, section))}, "
                                 f"but the config has {section}={to_dict(getattr(self.config, section))}; use "
                                 "another --out (train.out_dir), or start afresh with --no-resume (resume=False)")

    def save(self) -> Path:
        """Atomically write ``out_dir/last.pt`` (rank 0; the others wait for it)."""
        if self.world.is_main:
            save_checkpoint(self.checkpoint_path, self.state_dict())
        self.world.barrier()
        self.saved_step = self.step
        return self.checkpoint_path


def _window_mean(window: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each logged number over the window; the learning rate is the last value."""
    mean = {key: sum(row[key] for row in window) / len(window) for key in window[-1]}
    return dict(mean, **{key: value for key, value in window[-1].items() if key.startswith("lr")})


# --------------------------------------------------------------------- teacher
class TeacherTrainer(TrainingRun):
    """Trains a ResShift teacher f_θ(x_t, y₀, t) ≈ x₀ (RSD_SPEC §1).

    Args:
        config: the run (:mod:`rsd_mini.config`).
        model: the network; default ``SwinUNet(config.unet)``.
        dataset: items ``{"hr": (3,S,S), "lq": (3,S/scale,S/scale)}`` in [−1, 1]; default
            from ``config.data``.
        device: default CUDA if available, else CPU.
        autoencoder: with ``diffusion.latent``, the VQ-f4 (default: ``diffusion.autoencoder``).

    Attributes ``model``, ``ema_model`` (the averaged copy, same class as ``model``),
    ``diffusion`` (:class:`~rsd_mini.diffusion.ResShift`) and ``step`` (updates done).
    """

    name = "teacher"

    def __init__(self, config: TeacherConfig, model: nn.Module | None = None,
                 dataset: Dataset | None = None, device: str | torch.device | None = None,
                 autoencoder: nn.Module | None = None):
        super().__init__(config, device, autoencoder)
        diffusion = config.diffusion
        self.diffusion = ResShift(diffusion.steps, diffusion.kappa, diffusion.min_noise_level,
                                  diffusion.etas_end, diffusion.power)
        self.model = (model if model is not None else _seeded_model(config)).to(self.device)
        self.dataset = dataset if dataset is not None else build_dataset(config.data, config.train.seed)
        self.optimizer = build_optimizer(self.model, config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.optim, config.train.iterations)
        self.scaler = self.grad_scaler()
        self.ema = build_ema(self.model, config.train.ema_rate)

    @property
    def ema_model(self) -> nn.Module:
        return self.ema.module

    def update(self) -> dict[str, float]:
        """Update number ``step`` + 1 on its own batch (see :func:`make_batch`)."""
        batch = make_batch(self.dataset, self.config.train.batch_size, self.config.train.seed, self.step)
        self.model.train()
        return self.train_step(batch, self.step)

    def losses(self, x0: Tensor, y: Tensor, lq: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        """Per-sample loss terms of one microbatch; ``"loss"`` is what is minimised: here the
        x₀ MSE (weight 1, RSD_SPEC §1), t and ε drawn from ``generator``. One-step trainers
        (:mod:`rsd_mini.regression`, :mod:`rsd_mini.sinsr`) override it."""
        return {"loss": self.diffusion.training_loss(self.model, x0, y, lq=lq, generator=generator,
                                                     latent=self.latent)}

    def train_step(self, batch: dict[str, Tensor], index: int) -> dict[str, float]:
        """One AdamW update on global batch number ``index``; returns the batch mean of each
        term of :meth:`losses`, the gradient norm before clipping and the learning rate.

        The gradient of the mean ``"loss"`` is accumulated over microbatches (and averaged over
        data-parallel processes); the generators come from :meth:`microbatches`.
        """
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, Tensor] = {}
        size = self.shard_size(batch)
        for piece, generator in self.microbatches(batch, index):
            x0, y, lq = self.training_triple(piece)
            with self.autocast():
                terms = self.losses(x0, y, lq, generator)
            self.scaler.scale(terms["loss"].float().sum() / size).backward()
            for key, value in terms.items():
                totals[key] = totals.get(key, 0) + value.detach().float().sum() / size
        self._check_finite(totals["loss"])
        lr = self.optimizer.param_groups[0]["lr"]
        grad_norm = self.optimizer_step(self.optimizer, self.scaler)
        self.scheduler.step()
        self.ema.update_parameters(self.model)
        return dict({key: float(value) for key, value in totals.items()}, grad_norm=float(grad_norm), lr=lr)

    # ----------------------------------------------------------------- validation
    def sample(self, y: Tensor, lq: Tensor, generator: torch.Generator) -> Tensor:
        """All T ancestral steps of the EMA teacher."""
        return self.diffusion.sample(self.ema_model, y, lq=lq, generator=generator, latent=self.latent)

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Everything needed to continue exactly (weights-only loadable)."""
        return dict(model=self.model.state_dict(), ema=self.ema_model.state_dict(),
                    ema_updates=self.ema.n_averaged.clone(), optimizer=self.optimizer.state_dict(),
                    scheduler=self.scheduler.state_dict(), scaler=self.scaler.state_dict(),
                    step=self.step, seconds=self.seconds, config=to_dict(self.config), rng=rng_state())

    def load_state_dict(self, state: dict) -> None:
        self._check_compatible(state["config"])
        self.model.load_state_dict(state["model"])
        self.ema_model.load_state_dict(state["ema"])
        self.ema.n_averaged.copy_(state["ema_updates"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.seconds, self.saved_step = state["step"], state["seconds"], state["step"]
        set_rng_state(state["rng"])
