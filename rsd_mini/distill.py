"""RSD: distilling ResShift into a one-step student (RSD_SPEC §4; paper §3.2–3.5).

The objective (RSD Prop. 3.1, Eq. 10): train the student G_θ so that a ResShift model trained
on its outputs, the *fake model* f_φ, coincides with the teacher f*. Its tractable form is the
min–max problem

    L_θ = max_φ  Σ_t w_t E ‖f*(x_t) − x̂₀‖² − ‖f_φ(x_t) − x̂₀‖²,     x_t ~ q(·|x̂₀, y₀)

solved by alternating K fake steps (the ordinary ResShift loss on detached student outputs,
:func:`fake_loss`) and one student step (:func:`student_loss`). The student step differentiates
through x̂₀ directly *and* through x_t into the frozen teacher and fake model (their inputs,
never their weights); ``variant="vsd"`` stops those gradients (the paper's ResShift-VSD, Alg. 2).

Everything here is model-agnostic: a model is any ``model(scaled_x_t, t, lq=lq[, noise=ε])``
returning x̂₀, so the same functions train the Swin-UNet student (:mod:`rsd_mini.distill_train`)
and the MLPs of the toy (:mod:`rsd_mini.toy`).
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rsd_mini.diffusion import Denoiser, ResShift
from rsd_mini.unet import SwinUNet, group_norm

VARIANTS = ("rsd", "vsd")


def multistep_nodes(steps: int, count: int) -> tuple[int, ...]:
    """Indices i = t − 1 of the N evenly placed multistep nodes 1 < t₁ < … < t_N = T (RSD §3.3).

    t_n = round(n·T/N): for T=15, N=4 the nodes are t = 4, 8, 11, 15 (indices 3, 7, 10, 14).
    The paper places N=4 nodes "evenly" (Table 5) with t_N = T so that the student also learns
    the one-step map from the prior, which is what inference uses; N=1 is the plain one-step
    student.
    """
    if not isinstance(count, int) or not 1 <= count <= steps:
        raise ValueError(f"count={count!r}: expected an integer number of nodes in [1, {steps}]")
    return tuple(round(n * steps / count) - 1 for n in range(1, count + 1))


def add_noise_channels(teacher: SwinUNet, channels: int = 1) -> SwinUNet:
    """The student: a copy of the teacher whose first convolution reads ``channels`` more input
    channels (the noise ε₁ of the stochastic generator) through zero-initialised weights, with
    the bias kept, so at initialisation the student computes exactly the teacher's function
    (RSD_SPEC §4a "Initialisation", official ``_add_noise``)."""
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels={channels!r}: expected a positive integer")
    config = replace(teacher.config, in_channels=teacher.config.in_channels + channels)
    student = SwinUNet(config).to(next(teacher.parameters()).device)
    state = teacher.state_dict()
    weight = state["input_blocks.0.0.weight"]
    state["input_blocks.0.0.weight"] = torch.cat([weight, weight.new_zeros(
        weight.shape[0], channels, *weight.shape[2:])], dim=1)
    student.load_state_dict(state)
    return student


def copy_frozen(model: nn.Module) -> nn.Module:
    """An independent copy of ``model`` with ``requires_grad=False`` (the frozen teacher)."""
    return copy.deepcopy(model).requires_grad_(False).eval()


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Within the block, the modules' parameters are not recorded by autograd (gradients still
    flow through them to their inputs); their ``requires_grad`` flags are restored after."""
    params = [p for m in modules if m is not None for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def _randn(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    device = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, dtype=like.dtype, device=device).to(like.device)


def _randint(high: int, batch: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
    device = generator.device if generator is not None else like.device
    return torch.randint(high, (batch,), generator=generator, device=device).to(like.device)


def student_noise(x: Tensor, channels: int, generator: torch.Generator | None = None) -> Tensor:
    """ε₁ ~ N(0, I): ``channels`` extra channels at the resolution of ``x`` (B, C, ...)."""
    return _randn((x.shape[0], channels, *x.shape[2:]), x, generator)


def student_predict(process: ResShift, student: Denoiser, x0: Tensor, y: Tensor, lq: Tensor,
                    nodes: tuple[int, ...], noise_channels: int = 1,
                    generator: torch.Generator | None = None, latent: bool = True,
                    ) -> tuple[Tensor, Tensor]:
    """Multistep student outputs x̂₀^{t_n} = G_θ(x_{t_n}, y₀, t_n, ε₁) (RSD §3.3).

    Each sample gets a node t_n drawn uniformly from ``nodes``; its input x_{t_n} ~ q(·|x₀, y₀)
    is made by noising the *real* x₀ with the forward marginal (``true_data``, RSD_SPEC §4b).
    Returns (x̂₀, node indices).
    """
    choice = _randint(len(nodes), x0.shape[0], x0, generator)
    t = torch.as_tensor(nodes, device=x0.device)[choice]
    x_t = process.q_sample(x0, y, t, _randn(tuple(x0.shape), x0, generator))
    return student_call(process, student, x_t, t, lq, noise_channels, generator, latent), t


def student_call(process: ResShift, student: Denoiser, x_t: Tensor, t: Tensor | int, lq: Tensor,
                 noise_channels: int = 1, generator: torch.Generator | None = None,
                 latent: bool = True) -> Tensor:
    """One student evaluation G_θ(x_t, y₀, t, ε₁) with fresh ε₁ (``noise_channels`` 0: none)."""
    t = process._timesteps(t, x_t.shape[0], x_t.device)
    noise = student_noise(x_t, noise_channels, generator) if noise_channels else None
    kwargs = {"noise": noise} if noise is not None else {}
    return student(process.scale_input(x_t, t, latent), t, lq=lq, **kwargs)


def one_step_sample(process: ResShift, student: Denoiser, y: Tensor, lq: Tensor | None = None,
                    noise_channels: int = 1, generator: torch.Generator | None = None,
                    latent: bool = True, clip: bool | None = None) -> Tensor:
    """RSD inference (RSD_SPEC §4c): x_T = y₀ + κ√η_T ε from the prior, then one student call
    at t = T (NFE = 1); clamped to [−1, 1] in pixel space as the official sampler does."""
    clip = (not latent) if clip is None else clip
    x_T = process.prior_sample(y, _randn(tuple(y.shape), y, generator))
    out = student_call(process, student, x_T, process.steps - 1, y if lq is None else lq,
                       noise_channels, generator, latent)
    return out.clamp(-1, 1) if clip else out


def fake_loss(process: ResShift, fake: Denoiser, x0_hat: Tensor, y: Tensor, lq: Tensor,
              generator: torch.Generator | None = None, latent: bool = True) -> Tensor:
    """Per-sample fake-model loss E‖f_φ(x_t, y₀, t) − sg(x̂₀)‖²: the ResShift loss with the
    detached student outputs as data (RSD_SPEC §4a "Practical scheme")."""
    return process.training_loss(fake, x0_hat.detach(), y, lq=lq, generator=generator, latent=latent)


@dataclass
class StudentLoss:
    """Per-sample generator loss and what the trainer logs.

    ``loss``: ℓ_b after the optional normalisations; ``distance``: E‖f*(x_t) − x̂₀‖² −
    E‖f_φ(x_t) − x̂₀‖² before them; ``normaliser``: the detached mean |f*(x_t) − x̂₀| (SiD
    normalisation); ``t``: the re-noising timesteps; ``teacher_x0``: f*(x_t).
    """

    loss: Tensor
    distance: Tensor
    normaliser: Tensor
    t: Tensor
    teacher_x0: Tensor


def student_loss(process: ResShift, teacher: Denoiser, fake: Denoiser, x0_hat: Tensor, y: Tensor,
                 lq: Tensor, generator: torch.Generator | None = None, latent: bool = True,
                 variant: str = "rsd", sid_normalization: bool = True,
                 t_power_ten: bool = False) -> StudentLoss:
    """The RSD generator loss (RSD Eq. 10 inner term with w_t ≡ 1; RSD_SPEC §4a–b).

    t ~ U{1..T}, x_t = (1 − η_t) x̂₀ + η_t y₀ + κ√η_t ε′ (reparameterised, so x_t carries the
    gradient of x̂₀), and ℓ_b = mean_CHW (f*(x_t) − x̂₀)² − mean_CHW (f_φ(x_t) − x̂₀)².

    - ``variant="rsd"``: gradients flow through x̂₀ directly, 2(f_φ − f*), and through x_t into
      the teacher and the fake model; ``"vsd"`` stops the latter (ResShift-VSD, RSD Alg. 2).
    - ``sid_normalization``: ℓ_b / (mean_CHW |f*(x_t) − x̂₀|_b + 1e-8), denominator detached.
    - ``t_power_ten``: ℓ_b · 10^{1 − i_b/(T−1)} (off in the paper's config).

    The weights of ``teacher`` and ``fake`` never receive gradients (they are frozen here); if
    they are modules with parameters, only their inputs are differentiated.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r}: expected one of {VARIANTS}")
    t = _randint(process.steps, x0_hat.shape[0], x0_hat, generator)
    x_t = process.q_sample(x0_hat, y, t, _randn(tuple(x0_hat.shape), x0_hat, generator))
    x_in = process.scale_input(x_t, t, latent)
    with frozen(*(m for m in (teacher, fake) if isinstance(m, nn.Module))), \
            torch.set_grad_enabled(variant == "rsd" and torch.is_grad_enabled()):
        teacher_x0, fake_x0 = teacher(x_in, t, lq=lq), fake(x_in, t, lq=lq)
    if variant == "vsd":
        teacher_x0, fake_x0 = teacher_x0.detach(), fake_x0.detach()
    distance = ((teacher_x0 - x0_hat).pow(2) - (fake_x0 - x0_hat).pow(2)).flatten(1).mean(1)
    normaliser = (teacher_x0 - x0_hat).detach().abs().flatten(1).mean(1)
    loss = distance / (normaliser + 1e-8) if sid_normalization else distance
    if t_power_ten:
        loss = loss * 10.0 ** (1 - t.to(loss.dtype) / (process.steps - 1))
    return StudentLoss(loss=loss, distance=distance, normaliser=normaliser, t=t, teacher_x0=teacher_x0)


# --------------------------------------------------------------------- GAN (RSD Eq. 12)
class BottleneckDiscriminator(nn.Module):
    """D_ψ: a small head on the fake UNet's bottleneck features (RSD_SPEC §4a "L_GAN"),
    randomly initialised; GroupNorm–SiLU–3×3 conv–SiLU–1×1 conv, averaged to one logit."""

    def __init__(self, channels: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(group_norm(channels), nn.SiLU(),
                                 nn.Conv2d(channels, hidden, 3, padding=1), nn.SiLU(),
                                 nn.Conv2d(hidden, 1, 1))

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features).flatten(1).mean(1)


def gan_logits(process: ResShift, fake: SwinUNet, head: BottleneckDiscriminator, x: Tensor,
               y: Tensor, lq: Tensor, generator: torch.Generator | None = None,
               latent: bool = True) -> Tensor:
    """D_ψ(bottleneck of f_φ at timestep 0): ``x`` is put at the first noise level,
    x₁ ~ q(·|x, y₀) (κ√η₁ = 0.04 in v1), the fake UNet runs its encoder at t index 0."""
    t = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    x_1 = process.q_sample(x, y, t, _randn(tuple(x.shape), x, generator))
    return head(fake.bottleneck(process.scale_input(x_1, t, latent), t, lq=lq))


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Non-saturating GAN, discriminator side: softplus(−D(real)) + softplus(D(fake)), per sample."""
    return F.softplus(-real_logits) + F.softplus(fake_logits)


def generator_gan_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating GAN, generator side: softplus(−D(G)), per sample."""
    return F.softplus(-fake_logits)


# --------------------------------------------------------------------- LPIPS (RSD §3.4)
Perceptual = Callable[[Tensor, Tensor], Tensor]


def build_lpips(device: torch.device | str = "cpu") -> Perceptual:
    """LPIPS (AlexNet, v0.1) as a loss on images in [−1, 1], through pyiqa as in the official
    trainer (RSD_SPEC §4b). Raises ``RuntimeError`` saying how to get it when pyiqa or its
    weights are not available; there is no silent fallback."""
    try:
        import pyiqa  # noqa: PLC0415 - optional extra
    except ImportError as error:
        raise RuntimeError("distill.lpips_weight > 0 needs pyiqa: pip install 'rsd-mini[metrics]' "
                           "(or pyiqa) and run once with network access so it caches the LPIPS "
                           "AlexNet weights, or set distill.lpips_weight=0") from error
    try:
        metric = pyiqa.create_metric("lpips", as_loss=True, device=torch.device(device))
    except Exception as error:  # pyiqa downloads weights on first use
        raise RuntimeError(f"pyiqa could not load LPIPS weights ({error}); run once with network "
                           "access to cache them, or set distill.lpips_weight=0") from error

    def lpips(output: Tensor, target: Tensor) -> Tensor:
        return metric((output.clamp(-1, 1) + 1) / 2, (target + 1) / 2).reshape(-1)

    return lpips
