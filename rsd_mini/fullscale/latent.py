"""Super-resolution in the latent space of the VQ-f4 autoencoder: ResShift, RSD and SinSR as
the papers run them (RSD_SPEC §1 "Spaces", §4c).

What the official samplers do for one (padded) LR tile y₀ ∈ [−1, 1] (ResShift ``sampler.py``
and ``GaussianDiffusion.p_sample_loop``; SinSR/RSD ``sampler.py`` with ``one_step``):

1. z_y = E(bicubic↑4(y₀)): ``encode_first_stage(y, up_sample=True)`` upsamples with
   ``F.interpolate(..., scale_factor=4, mode="bicubic")`` (no clamp), encodes without
   quantisation under ``no_grad`` in the autoencoder's dtype, multiplies by ``scale_factor``
   = 1.0 and casts back to the input dtype;
2. z_T = z_y + κ√η_T ε (the prior);
3. the network sees z_t/√(κ²η_t + 1) and, as ``lq``, the *pixel* y₀ (same size as the latent
   for ×4 with f4):
   - ResShift teacher: T ancestral steps, x̂₀ not clipped in latent space
     (``clip_denoised = autoencoder is None``);
   - RSD student: one call at i = T − 1 with ``noise_input`` ε₁ ~ N(0, I) of ``noise_channels``
     channels at LR size, returning x̂₀;
   - SinSR (``one_step``): one call at i = T − 1 without noise input, returning x̂₀;
4. ``decode_first_stage``: ẑ₀ / ``scale_factor``, cast to the autoencoder's dtype, quantise to
   the nearest codebook vector, ``post_quant_conv``, decoder, cast back;
5. crop the padding and clamp to [−1, 1].

Precision on the GPU: ResShift's ``inference_resshift.py`` wraps sampling in
``torch.cuda.amp.autocast`` (float32 weights); SinSR/RSD convert the autoencoder with
``.half()`` (``autoencoder.use_fp16: True``) and the UNet torso with ``convert_to_fp16``
(``use_fp16=True``). Here the autoencoder keeps its own dtype (``load_autoencoder(...,
dtype=torch.float16)`` for the official setting) and the UNet runs in its dtype; wrap the call
in ``torch.autocast`` for mixed precision. Noise comes from ``generator`` (prior ε first, then
ε₁; the official draws ε₁ first, from the global CUDA stream), so outputs match the official in
distribution, not bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from rsd_mini.fullscale.autoencoder import VQAutoencoder
from rsd_mini.degradations import bicubic_upsample
from rsd_mini.srmodel import SRModel

#: How a network is called: T ancestral steps, one RSD student call with noise inputs, or one
#: SinSR call without them.
KINDS = ("teacher", "student", "one-step")


def encode_lr(autoencoder: VQAutoencoder, lq: Tensor, scale: int = 4) -> Tensor:
    """z_y = E(bicubic↑scale(y₀)), not quantised, without gradient (official
    ``encode_first_stage(y, up_sample=True)``, ``scale_factor`` 1.0; RSD_SPEC §1)."""
    _check_image("lq", lq)
    with torch.no_grad():
        return autoencoder.encode(bicubic_upsample(lq, scale=scale))


def encode_latents(autoencoder: VQAutoencoder, hr: Tensor, lq: Tensor, scale: int = 4) -> tuple[Tensor, Tensor]:
    """Training latents (z₀, z_y) = (E(x₀), E(bicubic↑scale(y₀))) of HR images (B, 3, H, W) and
    their LR images (B, 3, H/scale, W/scale), both in [−1, 1]; no gradient (RSD_SPEC §1)."""
    _check_image("hr", hr)
    _check_image("lq", lq)
    expected = (lq.shape[0], 3, lq.shape[-2] * scale, lq.shape[-1] * scale)
    if tuple(hr.shape) != expected:
        raise ValueError(f"hr has shape {tuple(hr.shape)}: expected {expected} (lq {tuple(lq.shape)} × scale={scale})")
    with torch.no_grad():
        return autoencoder.encode(hr), encode_lr(autoencoder, lq, scale)


def _check_image(name: str, image: Tensor) -> None:
    if not isinstance(image, Tensor) or image.ndim != 4 or image.shape[1] != 3:
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(f"{name} has shape {shape}: expected (B, 3, h, w)")


@dataclass
class LatentSR(SRModel):
    """A latent-space ResShift teacher, RSD student or SinSR one-step model with its autoencoder.

    An :class:`rsd_mini.srmodel.SRModel` (so :func:`rsd_mini.upscale.upscale` and
    :func:`rsd_mini.evaluate.evaluate_folder` take it as is) whose ``network`` works on VQ
    latents: ``kind`` is ``"teacher"`` (T ancestral steps), ``"student"`` (one call with
    ``noise_channels`` noise inputs, RSD) or ``"one-step"`` (one call at t = T without noise
    inputs, SinSR). ``scale`` must equal the autoencoder's factor f, so the latent has the LR
    image's size, which the network's pixel ``lq`` conditioning needs. See the module docstring
    for what :meth:`sr` reproduces.
    """

    scale: int = 4
    autoencoder: VQAutoencoder = field(kw_only=True)
    latent = True

    def __post_init__(self):
        if not isinstance(self.autoencoder, VQAutoencoder):
            raise TypeError(f"autoencoder is a {type(self.autoencoder).__name__}: expected a VQAutoencoder")
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r}: expected one of {KINDS}")
        factor = self.autoencoder.config.downsample_factor
        if self.scale != factor:
            raise ValueError(f"scale={self.scale!r}: expected the autoencoder's downsampling factor "
                             f"{factor} (the latent must have the LR image's size)")
        channels = self.noise_channels
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 0 \
                or (channels > 0) != (self.kind == "student"):
            raise ValueError(f"noise_channels={channels!r} with kind={self.kind!r}: expected a positive "
                             "integer for a student and 0 for a teacher or one-step model")
        self._check_network()

    def _check_network(self) -> None:
        config = getattr(self.network, "config", None)
        if config is None:
            return
        embed = self.autoencoder.config.embed_dim
        expected = embed + (3 if getattr(config, "cond_lq", True) else 0) + self.noise_channels
        if config.in_channels != expected or config.out_channels != embed:
            raise ValueError(f"network has in_channels={config.in_channels}, out_channels="
                             f"{config.out_channels}: expected {expected} (latent {embed} + LR 3 + noise "
                             f"{self.noise_channels}) and {embed} for this autoencoder")

    @property
    def size_multiple(self) -> int:
        """HR sides must be multiples of this: f × the network's multiple (4 · 64 = 256 for the
        official models, i.e. LR sides multiples of 64 as the official sampler pads them)."""
        return self.autoencoder.config.downsample_factor * self.network.config.size_multiple

    def to(self, device: str | torch.device) -> "LatentSR":
        self.network.to(device)
        self.autoencoder.to(device)
        return self

    def prior_mean(self, lq: Tensor) -> tuple[Tensor, Tensor]:
        """(z_y = E(bicubic↑(y₀)), the pixel y₀ as condition); h·scale and w·scale must be
        multiples of :attr:`size_multiple` (:mod:`rsd_mini.upscale` pads and tiles any size)."""
        if lq.shape[-2] * self.scale % self.size_multiple or lq.shape[-1] * self.scale % self.size_multiple:
            raise ValueError(f"lq has size {tuple(lq.shape[-2:])}: expected multiples of "
                             f"{self.size_multiple // self.scale} (pad it, or use rsd_mini.upscale)")
        return encode_lr(self.autoencoder, lq, self.scale), lq

    def image(self, x0: Tensor) -> Tensor:
        """clamp(D(ẑ₀), −1, 1), D quantising (official ``decode_first_stage``)."""
        return self.autoencoder.decode(x0, quantize=True).clamp(-1, 1)
