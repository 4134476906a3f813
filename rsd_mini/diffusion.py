"""The ResShift diffusion process (Yue et al., NeurIPS 2023; RSD_SPEC §1).

ResShift diffuses from the high-resolution image x₀ towards the (upsampled) low-resolution
image y₀ by shifting the residual e₀ = y₀ − x₀ with a monotone schedule η_t and adding noise of
variance κ²η_t:

    q(x_t | x₀, y₀) = N(x₀ + η_t e₀, κ² η_t I)                             (RSD Eq. 3)

Indexing: the paper uses t ∈ {1..T}; tensors here are indexed by i = t − 1 ∈ {0..T−1}, which is
also the integer the network receives (as in the official code). ``etas[0]`` is η₁.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import Tensor

#: The paper's configurations (RSD_SPEC §1). v1/v2 are the 15-step NeurIPS models that RSD
#: distils; v3 is the 4-step journal model.
PRESETS: dict[str, dict[str, float]] = {
    "resshift-v1": dict(steps=15, kappa=2.0, min_noise_level=0.04, etas_end=0.99, power=0.3),
    "resshift-v3": dict(steps=4, kappa=2.0, min_noise_level=0.2, etas_end=0.99, power=0.3),
}

#: A model call: ``model(scaled_x_t, t, lq=lq) -> x̂₀``.
Denoiser = Callable[..., Tensor]


def sqrt_eta_schedule(steps: int, min_noise_level: float, kappa: float,
                      etas_end: float = 0.99, power: float = 0.3) -> torch.Tensor:
    """ResShift's exponential schedule of √η_t (RSD_SPEC §1, RSD Eq. 5).

    √η₁ = min(min_noise_level/κ, min_noise_level) (ResShift's rule; SinSR's copy also caps it at
    √0.001, which changes the 4-step v3 schedule), √η_T = ``etas_end`` and, in between,
    √η_t = √η₁ · (√η_T/√η₁)^{((t−1)/(T−1))^p}. Returned in float64, index 0 = t=1.
    """
    _check_positive("min_noise_level", min_noise_level)
    _check_positive("kappa", kappa)
    _check_positive("power", power)
    if not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps={steps!r}: expected an integer >= 2")
    start = min(min_noise_level / kappa, min_noise_level)
    if not start < etas_end < 1:
        raise ValueError(f"etas_end={etas_end!r}: expected {start} < etas_end < 1")
    progress = torch.linspace(0, 1, steps, dtype=torch.float64) ** power
    return start * (etas_end / start) ** progress


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
        raise ValueError(f"{name}={value!r}: expected a positive finite number")


def _at(values: Tensor, t: Tensor, like: Tensor) -> Tensor:
    """Gather ``values[t]`` per sample and broadcast it against ``like`` (B, ...)."""
    out = values.to(like.device)[t].to(like.dtype)
    return out.reshape(-1, *([1] * (like.ndim - 1)))


@dataclass(frozen=True)
class SampleStep:
    """One ancestral step: the state x_{t−1} and the network's x₀ prediction at x_t."""

    t: int
    x: Tensor
    pred_x0: Tensor


class ResShift:
    """The ResShift Markov chain, its posterior and sampler, and its training loss.

    Args:
        steps: T, the number of diffusion steps.
        kappa: κ, the noise scale.
        min_noise_level: the noise std κ√η₁ at t=1 (before the ``min`` rule, see
            :func:`sqrt_eta_schedule`).
        etas_end: √η_T.
        power: p, the exponent that bends the schedule.
    """

    def __init__(self, steps: int, kappa: float, min_noise_level: float,
                 etas_end: float = 0.99, power: float = 0.3):
        self.steps, self.kappa = steps, float(kappa)
        self.min_noise_level, self.etas_end, self.power = min_noise_level, etas_end, power
        self.sqrt_etas = sqrt_eta_schedule(steps, min_noise_level, kappa, etas_end, power)
        self.etas = self.sqrt_etas ** 2
        self.etas_prev = torch.cat([self.etas.new_zeros(1), self.etas[:-1]])
        self.alphas = self.etas - self.etas_prev  # α_t = η_t − η_{t−1} (RSD Eq. 2)
        # Posterior q(x_{t−1} | x_t, x₀, y₀) (RSD Eq. 4).
        self.posterior_mean_coef1 = self.etas_prev / self.etas
        self.posterior_mean_coef2 = self.alphas / self.etas
        self.posterior_variance = self.kappa ** 2 * self.etas_prev / self.etas * self.alphas

    @classmethod
    def from_preset(cls, name: str) -> "ResShift":
        """``ResShift.from_preset("resshift-v1")`` (T=15) or ``"resshift-v3"`` (T=4)."""
        if name not in PRESETS:
            raise ValueError(f"name={name!r}: expected one of {sorted(PRESETS)}")
        return cls(**PRESETS[name])

    def __repr__(self) -> str:
        return (f"ResShift(steps={self.steps}, kappa={self.kappa}, "
                f"min_noise_level={self.min_noise_level}, etas_end={self.etas_end}, "
                f"power={self.power})")

    # ----------------------------------------------------------------- forward process
    def _timesteps(self, t: Tensor | int, batch: int, device: torch.device) -> Tensor:
        t = torch.as_tensor(t, device=device, dtype=torch.long)
        if t.ndim == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"t has shape {tuple(t.shape)}: expected a scalar or ({batch},)")
        if t.min() < 0 or t.max() >= self.steps:
            raise ValueError(f"t={t.tolist()}: expected indices in [0, {self.steps - 1}]")
        return t

    def q_sample(self, x0: Tensor, y: Tensor, t: Tensor | int,
                 noise: Tensor | None = None) -> Tensor:
        """x_t = x₀ + η_t (y₀ − x₀) + κ√η_t ε, the marginal q(x_t | x₀, y₀) (RSD Eq. 3)."""
        _check_same_shape(x0=x0, y=y)
        t = self._timesteps(t, x0.shape[0], x0.device)
        if noise is None:
            noise = torch.randn_like(x0)
        eta, sqrt_eta = _at(self.etas, t, x0), _at(self.sqrt_etas, t, x0)
        return x0 + eta * (y - x0) + self.kappa * sqrt_eta * noise

    def posterior(self, x0: Tensor, x_t: Tensor, t: Tensor | int,
                  s: int | None = None) -> tuple[Tensor, Tensor]:
        """Mean and variance of q(x_{t−1} | x_t, x₀, y₀) (RSD Eq. 4).

        mean = (η_{t−1}/η_t) x_t + (α_t/η_t) x₀ and variance = κ² (η_{t−1}/η_t) α_t; y₀ drops
        out of the mean because x_t already carries it. At t=1 (index 0) the variance is 0.

        ``s``: an earlier index to jump to, q(x_s | x_t, x₀, y₀) with η_{t−1} → η_s (the
        "respaced" sampler that visits a subset of the trained timesteps; notebook 03 derives it).
        """
        _check_same_shape(x0=x0, x_t=x_t)
        t = self._timesteps(t, x0.shape[0], x0.device)
        if s is None or bool((t == s + 1).all()):
            mean = _at(self.posterior_mean_coef1, t, x_t) * x_t + _at(self.posterior_mean_coef2, t, x0) * x0
            return mean, _at(self.posterior_variance, t, x0).expand_as(x0)
        eta_t, eta_s = _at(self.etas, t, x0), float(self.etas[s])
        ratio = eta_s / eta_t
        return ratio * x_t + (1 - ratio) * x0, (self.kappa ** 2 * ratio * (eta_t - eta_s)).expand_as(x0)

    def prior_sample(self, y: Tensor, noise: Tensor | None = None) -> Tensor:
        """x_T = y₀ + κ√η_T ε, the start of sampling (std 1.98 for κ=2; RSD_SPEC §1)."""
        if noise is None:
            noise = torch.randn_like(y)
        return y + self.kappa * float(self.sqrt_etas[-1]) * noise

    def scale_input(self, x_t: Tensor, t: Tensor | int, latent: bool = True) -> Tensor:
        """The network sees a normalised x_t (official ``_scale_input``).

        latent=True: x_t / √(κ²η_t + 1), unit variance for latents. latent=False (pixel space):
        x_t / (3κ√η_t + 1), which keeps pixels roughly in [−1, 1].
        """
        t = self._timesteps(t, x_t.shape[0], x_t.device)
        if latent:
            return x_t / torch.sqrt(_at(self.etas, t, x_t) * self.kappa ** 2 + 1)
        return x_t / (_at(self.sqrt_etas, t, x_t) * self.kappa * 3 + 1)

    # ----------------------------------------------------------------- training
    def training_loss(self, model: Denoiser, x0: Tensor, y: Tensor, lq: Tensor | None = None,
                      t: Tensor | None = None, noise: Tensor | None = None,
                      generator: torch.Generator | None = None, latent: bool = True) -> Tensor:
        """Per-sample x₀-prediction loss mean_{CHW} ‖f_θ(x_t, y₀, t) − x₀‖² (RSD_SPEC §1).

        t ~ U{0..T−1} and ε ~ N(0, I) are drawn from ``generator`` unless given. ResShift uses
        weight 1 instead of the ELBO weight α_t/(2κ²η_tη_{t−1}) (RSD Eq. 46). ``lq`` is the
        network's conditioning image (the pixel LR; defaults to ``y``).
        """
        batch = x0.shape[0]
        if t is None:
            device = generator.device if generator is not None else x0.device
            t = torch.randint(self.steps, (batch,), generator=generator, device=device)
        if noise is None:
            noise = _randn_like(x0, generator)
        x_t = self.q_sample(x0, y, t, noise)
        pred = model(self.scale_input(x_t, t, latent), t, lq=y if lq is None else lq)
        return (pred - x0).pow(2).flatten(1).mean(1)

    # ----------------------------------------------------------------- sampling
    def predict_x0(self, model: Denoiser, x_t: Tensor, t: Tensor | int, lq: Tensor,
                   latent: bool = True, clip: bool = False) -> Tensor:
        """f_θ(x_t, y₀, t), optionally clamped to [−1, 1] (official: clamp in pixel space)."""
        t = self._timesteps(t, x_t.shape[0], x_t.device)
        pred = model(self.scale_input(x_t, t, latent), t, lq=lq)
        return pred.clamp(-1, 1) if clip else pred

    def sample_progressive(self, model: Denoiser, y: Tensor, lq: Tensor | None = None,
                           noise: Tensor | None = None, generator: torch.Generator | None = None,
                           latent: bool = True, clip: bool | None = None,
                           calls: int | None = None) -> Iterator[SampleStep]:
        """Ancestral sampling (RSD_SPEC §1): x_T from the prior, then for i = T−1..0 draw
        x_{t−1} ~ N(posterior mean at x̂₀ = f_θ(x_t), posterior variance); the last step
        returns x̂₀ exactly. Yields one :class:`SampleStep` per network call (NFE = T).

        ``clip`` defaults to the official choice: clamp x̂₀ in pixel space, not in latents.
        ``calls``: visit only that many trained timesteps (:func:`respaced_indices`), jumping
        with the skip posterior; ``None`` = all T.
        """
        clip = (not latent) if clip is None else clip
        lq = y if lq is None else lq
        if noise is None:
            noise = _randn_like(y, generator)
        visit = respaced_indices(self.steps, self.steps if calls is None else calls)
        x = self.prior_sample(y, noise)
        for i, s in zip(visit, [*visit[1:], None]):
            t = torch.full((y.shape[0],), i, device=y.device, dtype=torch.long)
            with torch.no_grad():
                pred = self.predict_x0(model, x, t, lq, latent, clip)
                if s is None:
                    x = pred
                else:
                    mean, variance = self.posterior(pred, x, t, s)
                    x = mean + variance.sqrt() * _randn_like(x, generator)
            yield SampleStep(t=i, x=x, pred_x0=pred)

    def sample(self, model: Denoiser, y: Tensor, lq: Tensor | None = None,
               noise: Tensor | None = None, generator: torch.Generator | None = None,
               latent: bool = True, clip: bool | None = None,
               return_trajectory: bool = False,
               calls: int | None = None) -> Tensor | tuple[Tensor, list[SampleStep]]:
        """Run all T ancestral steps (or ``calls`` of them); returns x̂₀ (and the steps if asked)."""
        steps = list(self.sample_progressive(model, y, lq, noise, generator, latent, clip, calls))
        return (steps[-1].x, steps) if return_trajectory else steps[-1].x


def respaced_indices(steps: int, calls: int) -> list[int]:
    """``calls`` timestep indices spread evenly from T − 1 down to 0, descending ([T − 1] for
    one call): the subset a respaced sampler visits."""
    if not isinstance(calls, int) or not 1 <= calls <= steps:
        raise ValueError(f"calls={calls!r}: expected an integer number of network calls in [1, {steps}]")
    if calls == 1:
        return [steps - 1]
    return sorted({round((steps - 1) * (1 - k / (calls - 1))) for k in range(calls)}, reverse=True)


def _randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise shaped like ``x``; drawn on the generator's device, then moved."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=device).to(x.device)


def _check_same_shape(**tensors: Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"shape mismatch {shapes}: expected equal shapes")
