"""SinSR: distilling ResShift's *deterministic* sampler into one step (Wang et al., CVPR 2024;
RSD_SPEC §3; RSD App. C Eq. 36–38), the baseline RSD is compared with (RSD Tables 1–2, 5).

1. **The deterministic sampler** (:func:`deterministic_sample`). ResShift's ancestral step draws
   x_{t−1} from the posterior; SinSR replaces it by the non-Markov map that keeps every marginal
   q(x_t | x₀, y₀) = N((1 − η_t)x₀ + η_t y₀, κ²η_t I) and adds no noise. Put the noise the model
   implies at x_t, ε̂ = (x_t − (1 − η_t) f − η_t y₀) / (κ√η_t) with f = f_θ(x_t, y₀, t), into the
   marginal at t − 1:

       x_{t−1} = k_t f + m_t x_t + j_t y₀,
       m_t = √(η_{t−1}/η_t),  j_t = η_{t−1} − √(η_{t−1}η_t),
       k_t = 1 − η_{t−1} + √(η_{t−1}η_t) − √(η_{t−1}/η_t)             (:func:`ddim_coefficients`)

   At t = 1 (η₀ = 0) the step returns f exactly. Starting from x_T = y₀ + κ√η_T ε, the T
   teacher calls define a deterministic map x_T ↦ F(x_T, y₀): one noise, one image.

2. **The losses** (per sample, mean over C·H·W, weight 1 each in the official config):

   - distillation (:func:`distillation_loss`): ‖f_θ(x_T, y₀, T) − F(x_T, y₀)‖²;
   - inverse (:func:`inverse_loss`, official ``learn_xT``): ‖f_θ(F(x_T, y₀), y₀, 0) − x_T‖². The
     *same* network, told timestep index 0, learns the inverse map x₀ ↦ x_T; its input is
     scaled with the t = T factor. The timestep is the "head" that selects the direction;
   - consistency-preserving (:func:`consistency_loss`, official ``finetune_use_gt``):
     ‖f_θ(sg(f_θ(x₀, y₀, 0)), y₀, T) − x₀‖² on the *ground truth* x₀: invert the real image
     to a noise, then ask the one-step map to bring it back.

3. **The trainer** (:class:`SinSRTrainer`): the student is a copy of the teacher (no noise input:
   SinSR's one-step map is deterministic in x_T), trained on fresh (x_T, F(x_T, y₀)) pairs, the
   T teacher calls of each batch run under ``no_grad``. Inference is one call at t = T on
   x_T = y₀ + κ√η_T ε (:func:`rsd_mini.distill.one_step_sample` with no noise channels).

Everything but the trainer is model-agnostic (``model(scaled_x_t, t, lq=lq) -> x̂₀``), so the toy
can use it too. Where we differ from the official code: nothing in the objective; the teacher
target is clamped to [−1, 1] in pixel space and not in latents, as the official
``clip_denoised=first_stage_model is None``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from rsd_mini.config import SinSRRunConfig
from rsd_mini.diffusion import Denoiser, ResShift, _randn_like
from rsd_mini.regression import OneStepTrainer


# --------------------------------------------------------------------- deterministic sampler
def ddim_coefficients(process: ResShift) -> tuple[Tensor, Tensor, Tensor]:
    """(k_t, m_t, j_t) of the deterministic step x_{t−1} = k_t f + m_t x_t + j_t y₀ for every
    index i = t − 1 (float64, shape (T,); SinSR's marginal-preserving sampler, RSD_SPEC §3)."""
    eta, eta_prev = process.etas, process.etas_prev
    m = torch.sqrt(eta_prev / eta)
    j = eta_prev - torch.sqrt(eta_prev * eta)
    k = 1 - eta_prev + torch.sqrt(eta_prev * eta) - m
    return k, m, j


def deterministic_step(process: ResShift, pred_x0: Tensor, x_t: Tensor, y: Tensor, t: int) -> Tensor:
    """x_{t−1} = k_t f + m_t x_t + j_t y₀ from x_t at index ``t`` and the prediction f (RSD_SPEC §3)."""
    if not isinstance(t, int) or not 0 <= t < process.steps:
        raise ValueError(f"t={t!r}: expected an integer index in [0, {process.steps - 1}]")
    k, m, j = (float(c[t]) for c in ddim_coefficients(process))
    return k * pred_x0 + m * x_t + j * y


@torch.no_grad()
def deterministic_sample(process: ResShift, model: Denoiser, y: Tensor, lq: Tensor | None = None,
                         x_T: Tensor | None = None, generator: torch.Generator | None = None,
                         latent: bool = True, clip: bool | None = None) -> Tensor:
    """F(x_T, y₀): the T deterministic steps from x_T (default y₀ + κ√η_T ε with ε from
    ``generator``), one model call each; returns the last prediction (RSD_SPEC §3).

    ``clip`` defaults to the official choice: clamp f to [−1, 1] in pixel space, not in latents.
    """
    if x_T is None:
        x_T = process.prior_sample(y, _randn_like(y, generator))
    lq = y if lq is None else lq
    x = x_T
    for i in reversed(range(process.steps)):
        pred = process.predict_x0(model, x, i, lq, latent, clip=(not latent) if clip is None else clip)
        x = deterministic_step(process, pred, x, y, i)
    return x


# --------------------------------------------------------------------- losses
def _call(process: ResShift, model: Denoiser, x: Tensor, t: int, lq: Tensor, latent: bool) -> Tensor:
    """f_θ(x, y₀, index ``t``) with the input scaled by the t = T factor, as every SinSR call is
    (the official code scales the x₀ → x_T call with T too)."""
    scaled = process.scale_input(x, process.steps - 1, latent)
    return model(scaled, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device), lq=lq)


def _mse(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).pow(2).flatten(1).mean(1)


def distillation_loss(process: ResShift, student: Denoiser, x_T: Tensor, target: Tensor, lq: Tensor,
                      latent: bool = True) -> Tensor:
    """Per-sample ‖f_θ(x_T, y₀, T) − F(x_T, y₀)‖² (SinSR's distillation loss, RSD App. C;
    ``target`` = :func:`deterministic_sample` of the teacher from the same x_T)."""
    return _mse(_call(process, student, x_T, process.steps - 1, lq, latent), target)


def inverse_loss(process: ResShift, student: Denoiser, x0: Tensor, x_T: Tensor, lq: Tensor,
                 latent: bool = True) -> Tensor:
    """Per-sample ‖f_θ(F(x_T, y₀), y₀, 0) − x_T‖² (SinSR's inverse loss, official ``learn_xT``):
    at timestep index 0 the network maps the teacher's image ``x0`` back to its noise ``x_T``."""
    return _mse(_call(process, student, x0, 0, lq, latent), x_T)


def consistency_loss(process: ResShift, student: Denoiser, x0: Tensor, lq: Tensor,
                     latent: bool = True) -> Tensor:
    """Per-sample ‖f_θ(sg(f_θ(x₀, y₀, 0)), y₀, T) − x₀‖² on the ground truth x₀ (SinSR's
    consistency-preserving loss, official ``finetune_use_gt``): the inverse call runs under
    ``no_grad``, only the forward call is trained."""
    with torch.no_grad():
        x_T = _call(process, student, x0, 0, lq, latent)
    return _mse(_call(process, student, x_T, process.steps - 1, lq, latent), x0)


@dataclass
class SinSRLoss:
    """The three per-sample terms and their weighted sum ``loss``."""

    loss: Tensor
    distill: Tensor
    inverse: Tensor
    consistency: Tensor


def sinsr_loss(process: ResShift, student: Denoiser, teacher: Denoiser, x0: Tensor, y: Tensor, lq: Tensor,
               generator: torch.Generator | None = None, latent: bool = True, distill_weight: float = 1.0,
               inverse_weight: float = 1.0, consistency_weight: float = 1.0) -> SinSRLoss:
    """SinSR's objective on one batch (RSD_SPEC §3; official ``training_losses_distill``):
    x_T = y₀ + κ√η_T ε, F = the teacher's deterministic sample from x_T, then the weighted
    distillation, inverse and consistency-preserving terms. A term of weight 0 is not computed."""
    x_T = process.prior_sample(y, _randn_like(y, generator))
    target = deterministic_sample(process, teacher, y, lq, x_T, latent=latent)
    zero = x0.new_zeros(x0.shape[0])
    distill = distillation_loss(process, student, x_T, target, lq, latent) if distill_weight else zero
    inverse = inverse_loss(process, student, target, x_T, lq, latent) if inverse_weight else zero
    consistency = consistency_loss(process, student, x0, lq, latent) if consistency_weight else zero
    loss = distill_weight * distill + inverse_weight * inverse + consistency_weight * consistency
    return SinSRLoss(loss=loss, distill=distill, inverse=inverse, consistency=consistency)


# --------------------------------------------------------------------- trainer
class SinSRTrainer(OneStepTrainer):
    """Distils a ResShift teacher with SinSR's objective into a one-step model (RSD_SPEC §3).

    Args:
        config: the run (:class:`rsd_mini.config.SinSRRunConfig`).
        teacher: the teacher network; default loaded from ``sinsr.teacher``.
        dataset, device, autoencoder: as for :class:`rsd_mini.train.TeacherTrainer`.

    The student is a copy of the teacher (no noise channel). Attributes ``teacher`` (frozen),
    ``model`` (the student), ``ema_model`` (what is evaluated and shipped), ``diffusion``.
    Per update: one batch, AdamW with the configured warm-up (5k linear in the official config),
    the EMA; checkpoints and exact resume as every :class:`rsd_mini.train.TrainingRun`.
    """

    name = "sinsr"
    sections = ("diffusion", "unet", "sinsr")

    def __init__(self, config: SinSRRunConfig, teacher: nn.Module | None = None, dataset: Dataset | None = None,
                 device: str | torch.device | None = None, autoencoder: nn.Module | None = None):
        super().__init__(config, config.sinsr.teacher, noise_channels=0, teacher=teacher, dataset=dataset,
                         device=device, autoencoder=autoencoder)

    def losses(self, x0: Tensor, y: Tensor, lq: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        s = self.config.sinsr
        result = sinsr_loss(self.diffusion, self.model, self.teacher, x0, y, lq, generator, self.latent,
                            s.distill_weight, s.inverse_weight, s.consistency_weight)
        return dict(loss=result.loss, distill=result.distill, inverse=result.inverse,
                    consistency=result.consistency)
