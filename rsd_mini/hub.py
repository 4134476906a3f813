"""Ready-to-use super-resolution models: the shipped tiny checkpoints and any training run.

``rsd_mini.load("tiny-student")`` (or ``"tiny-teacher"``, or a path to a run's ``last.pt`` or a
shipped file) returns an :class:`SRModel`: the network, its ResShift process and how to call it
(T ancestral steps for a teacher, one step for an RSD student).

Shipped files (``data/checkpoints/*.pt``) hold the EMA weights in float16 (to keep the repository
small; loaded back as float32), the full config, and a ``meta`` record: the command that trained
them, the seed, the training time and the held-out metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from rsd_mini.checkpoint import load_checkpoint, save_checkpoint
from rsd_mini.config import DistillConfig, TeacherConfig, from_dict
from rsd_mini.degradations import bicubic_upsample
from rsd_mini.diffusion import ResShift
from rsd_mini.distill import add_noise_channels, one_step_sample
from rsd_mini.unet import SwinUNet

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "data" / "checkpoints"

#: Names of the shipped checkpoints.
SHIPPED: dict[str, Path] = {
    "tiny-teacher": CHECKPOINT_DIR / "tiny_teacher.pt",
    "tiny-student": CHECKPOINT_DIR / "tiny_student.pt",
}


@dataclass
class SRModel:
    """A pixel-space ResShift teacher or RSD student with what it needs to super-resolve.

    ``kind``: ``"teacher"`` (``nfe`` = T ancestral steps) or ``"student"`` (one step, with
    ``noise_channels`` extra noise inputs). ``scale``: the upscaling factor. ``meta``: how it
    was trained (shipped files) or ``{}``.
    """

    network: nn.Module
    process: ResShift
    kind: str
    scale: int
    noise_channels: int = 0
    meta: dict | None = None

    @property
    def nfe(self) -> int:
        return self.process.steps if self.kind == "teacher" else 1

    @property
    def size_multiple(self) -> int:
        """Input LR sizes × ``scale`` must be multiples of this (window × 2^downsamplings)."""
        return self.network.config.size_multiple

    def to(self, device: str | torch.device) -> "SRModel":
        self.network.to(device)
        return self

    #: Whether ``network`` works on VQ latents (:class:`rsd_mini.latent.LatentSR`) or pixels.
    latent = False

    @torch.no_grad()
    def sr(self, lq: Tensor, generator: torch.Generator | None = None, calls: int | None = None) -> Tensor:
        """Super-resolve LR images (B, 3, h, w) in [−1, 1] → (B, 3, h·scale, w·scale) in [−1, 1].

        A teacher runs ``calls`` of its T steps (default all); a student one step. The sizes
        must already fit the network (:meth:`size_multiple`); :mod:`rsd_mini.upscale` pads and
        tiles arbitrary images.
        """
        if lq.ndim != 4 or lq.shape[1] != 3:
            raise ValueError(f"lq has shape {tuple(lq.shape)}: expected (B, 3, h, w)")
        if self.kind != "teacher" and calls not in (None, 1):
            raise ValueError(f"calls={calls!r}: a {self.kind} model makes exactly one call")
        y, condition = self.prior_mean(lq)
        if self.kind == "teacher":
            x0 = self.process.sample(self.network, y, lq=condition, generator=generator, latent=self.latent,
                                     calls=calls)
        else:
            x0 = one_step_sample(self.process, self.network, y, condition, self.noise_channels, generator,
                                 latent=self.latent)
        return self.image(x0)

    def prior_mean(self, lq: Tensor) -> tuple[Tensor, Tensor]:
        """(y₀, the network's LR condition): here both the bicubic-upsampled LR image."""
        y = bicubic_upsample(lq, scale=self.scale)
        return y, y

    def image(self, x0: Tensor) -> Tensor:
        """The output image of a sampled x₀ (the samplers already clamp in pixel space)."""
        return x0


def _process(config: TeacherConfig | DistillConfig) -> ResShift:
    d = config.diffusion
    return ResShift(d.steps, d.kappa, d.min_noise_level, d.etas_end, d.power)


def from_state(state: dict) -> SRModel:
    """An :class:`SRModel` from a teacher or distillation checkpoint (run or shipped)."""
    values = state["config"]
    config = from_dict(DistillConfig if "distill" in values else TeacherConfig, values)
    network = SwinUNet(config.unet)
    kind, channels = "teacher", 0
    if isinstance(config, DistillConfig):
        kind, channels = "student", config.distill.noise_channels
        network = add_noise_channels(network, channels)
    network.load_state_dict({k: v.float() for k, v in state["ema"].items()})
    network = network.eval().requires_grad_(False)
    if config.diffusion.latent:  # a run in VQ-f4 latents: its autoencoder comes from the config
        from rsd_mini.latent import LatentSR
        from rsd_mini.train import load_run_autoencoder

        return LatentSR(network, _process(config), kind, config.data.scale, channels, state.get("meta", {}),
                        autoencoder=load_run_autoencoder(config.diffusion.autoencoder, torch.device("cpu")))
    return SRModel(network, _process(config), kind, config.data.scale, channels, state.get("meta", {}))


def load(name_or_path: str | Path, device: str | torch.device = "cpu") -> SRModel:
    """``load("tiny-student")``, ``load("tiny-teacher")``, an official model of the weights
    registry (``load("rsd")``, ``"resshift-v1"``, ``"sinsr-v2"``, ... from the weights folder;
    :func:`rsd_mini.official.load_official_model`) or a run's ``load("runs/tiny/student/last.pt")``."""
    from rsd_mini import official, weights

    if str(name_or_path) in weights.REGISTRY and weights.REGISTRY[str(name_or_path)].kind == "unet":
        return official.load_official_model(str(name_or_path), device=device)
    path = SHIPPED.get(str(name_or_path), Path(name_or_path))
    if not path.is_file():
        official_names = [n for n, spec in weights.REGISTRY.items() if spec.kind == "unet"]
        raise FileNotFoundError(f"checkpoint {str(name_or_path)!r}: not a shipped name ({', '.join(SHIPPED)}), "
                                f"not an official one ({', '.join(official_names)}) and no such file")
    return from_state(load_checkpoint(path)).to(device)


def export(run_checkpoint: str | Path, out: str | Path, meta: dict) -> Path:
    """Write a shippable file from a run's ``last.pt``: EMA weights in float16, config, ``meta``."""
    state = load_checkpoint(run_checkpoint)
    small = dict(ema={k: v.half() if v.is_floating_point() else v for k, v in state["ema"].items()},
                 config=state["config"], meta=dict(meta, steps_trained=state["step"],
                                                   train_seconds=round(state["seconds"], 1)))
    return save_checkpoint(out, small)


def ship_tiny(run_dir: str | Path = "runs/tiny", command: str = "make reproduce") -> dict[str, Path]:
    """Export the teacher and student of a finished tiny reproduction (``run_dir`` of
    :func:`rsd_mini.reproduce.run_tiny`) to the shipped files, with the command, seeds and the
    held-out metrics of ``run_dir/metrics.json`` recorded in each file's ``meta``, and copy their
    training logs next to them."""
    import json

    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise FileNotFoundError(f"run_dir={str(run_dir)!r}: no metrics.json; run make reproduce first")
    methods = json.loads(metrics_path.read_text())["methods"]
    written = {}
    for name, sub, method in (("tiny-teacher", "teacher", "teacher"), ("tiny-student", "student", "student")):
        seed = load_checkpoint(run_dir / sub / "last.pt")["config"]["train"]["seed"]
        meta = dict(command=command, seed=seed, metrics=methods[method], bicubic=methods["bicubic"])
        written[name] = export(run_dir / sub / "last.pt", SHIPPED[name], meta)
        log = SHIPPED[name].with_suffix(".log.jsonl")  # for the loss figures of `make figures`
        log.write_text((run_dir / sub / "log.jsonl").read_text())
    return written
