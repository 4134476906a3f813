"""The super-resolution model a user calls: a network, its ResShift process and how to call it.

:class:`SRModel` is what :func:`rsd_mini.load` returns for the tiny pixel-space models;
:class:`rsd_mini.fullscale.latent.LatentSR` extends it to the paper's VQ-f4 latent space.
It knows nothing about where its weights come from (:mod:`rsd_mini.hub` does).

Each model family carries its own tiling for :func:`rsd_mini.upscale.upscale` (issue #12):
the official latent models cut 512-pixel LR tiles at stride 448 (overlap 64), as the official
sampler (RSD_SPEC §4c, ``chop_size=512``, ``chop_stride=448``); the tiny pixel models 64 / 16
(:data:`rsd_mini.upscale.DEFAULT_TILE`; 256² network inputs, so a CPU's memory suffices).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rsd_mini.degradations import bicubic_upsample
from rsd_mini.diffusion import ResShift
from rsd_mini.distill import one_step_sample

#: (tile, overlap) in LR pixels: the official sampler's for latent models, the tiny models' own.
LATENT_TILING = (512, 64)
PIXEL_TILING = (64, 16)


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

    #: Whether ``network`` works on VQ latents (:class:`rsd_mini.fullscale.latent.LatentSR`) or pixels.
    latent = False

    @property
    def default_tile(self) -> int:
        """LR tile side :func:`rsd_mini.upscale.upscale` uses unless told (module docstring)."""
        return (LATENT_TILING if self.latent else PIXEL_TILING)[0]

    @property
    def default_overlap(self) -> int:
        """LR pixels shared by neighbouring tiles unless told (module docstring)."""
        return (LATENT_TILING if self.latent else PIXEL_TILING)[1]

    @torch.no_grad()
    def sr(self, lq: Tensor, generator: torch.Generator | None = None, calls: int | None = None) -> Tensor:
        """Super-resolve LR images (B, 3, h, w) in [−1, 1] → (B, 3, h·scale, w·scale) in [−1, 1].

        A teacher runs ``calls`` of its T steps (default all); a student one step. The sizes
        must already fit the network (:meth:`size_multiple`); :mod:`rsd_mini.upscale` pads and
        tiles arbitrary images. Input outside [−1, 1] or not finite is refused
        (:func:`check_image_range`), rather than turned into a white or NaN image.
        """
        if lq.ndim != 4 or lq.shape[1] != 3:
            raise ValueError(f"lq has shape {tuple(lq.shape)}: expected (B, 3, h, w)")
        check_image_range(lq)
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


def check_image_range(lq: Tensor) -> None:
    """A ValueError unless ``lq`` is finite and within [−1, 1], the range the networks were
    trained on (RSD_SPEC §1: images scaled to [−1, 1]); the message says how to convert the
    usual [0, 1] and [0, 255] ranges."""
    if not torch.isfinite(lq).all():
        raise ValueError("lq holds NaN or infinite values: expected finite images in [-1, 1]")
    low, high = float(lq.min()), float(lq.max())
    if low < -1 or high > 1:
        hint = (" (it looks like [0, 255]: pass lq / 127.5 - 1)" if low >= 0 and high > 1.5 else
                " (images in [0, 1] take lq * 2 - 1)")
        raise ValueError(f"lq has values in [{low:.4g}, {high:.4g}]: expected [-1, 1]{hint}")
