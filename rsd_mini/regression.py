"""One-step students trained from a teacher's weights, and the regression baseline.

:class:`OneStepTrainer` is what SinSR (:mod:`rsd_mini.sinsr`) and the regression baseline share:
a student initialised from the teacher, one batch per update with a per-sample objective
(:meth:`OneStepTrainer.losses`), AdamW with the configured warm-up, the EMA, and one-step
sampling from the prior x_T = y₀ + κ√η_T ε at t = T (RSD_SPEC §4c), with the checkpoints and
exact resume of :class:`rsd_mini.train.TeacherTrainer`.

:class:`RegressionTrainer` is the MMSE baseline: the RSD student (the teacher plus a
zero-initialised noise channel, :func:`rsd_mini.distill.add_noise_channels`) trained with

    min_θ E ‖G_θ(x_T, y₀, T, ε₁) − x₀‖²

against the ground truth. Its optimum is the conditional mean E[x₀ | y₀] whatever the noise
inputs (notebook 04, "MSE optimum = conditional mean"): the blurry average RSD's distribution
matching avoids, and the number the perception–distortion trade-off is measured from.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from rsd_mini.config import RegressionRunConfig
from rsd_mini.distill import add_noise_channels, copy_frozen, one_step_sample
from rsd_mini.distill_train import load_teacher
from rsd_mini.train import TeacherTrainer


class OneStepTrainer(TeacherTrainer):
    """A one-step student trained from a teacher with the objective of :meth:`losses`.

    Args:
        config: the run; its ``unet`` is the teacher's architecture.
        teacher_path: the teacher checkpoint (a teacher run's ``last.pt``, a shipped file or an
            official ResShift file), used when ``teacher`` is not given.
        noise_channels: extra noise inputs of the student (zero-initialised, so the student
            starts as the teacher's function); 0 = a plain copy of the teacher.
        teacher, dataset, device, autoencoder: as for :class:`rsd_mini.train.TeacherTrainer`.

    Attributes ``teacher`` (frozen), ``model`` (the student), ``ema_model``, ``diffusion``.
    """

    def __init__(self, config, teacher_path: str | None, noise_channels: int, teacher: nn.Module | None = None,
                 dataset: Dataset | None = None, device: str | torch.device | None = None,
                 autoencoder: nn.Module | None = None):
        if teacher is None:
            if teacher_path is None:
                raise ValueError(f"{self.name}.teacher=None: expected the teacher checkpoint path")
            teacher = load_teacher(teacher_path, config.unet)
        teacher = copy_frozen(teacher)
        student = add_noise_channels(teacher, noise_channels) if noise_channels else copy.deepcopy(teacher)
        super().__init__(config, model=student.requires_grad_(True), dataset=dataset, device=device,
                         autoencoder=autoencoder)
        self.teacher = teacher.to(self.device)
        self.noise_channels = noise_channels

    def losses(self, x0: Tensor, y: Tensor, lq: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        """Per-sample terms of the objective on one microbatch; ``loss`` is the one trained."""
        raise NotImplementedError

    def sample(self, y: Tensor, lq: Tensor, generator: torch.Generator) -> Tensor:
        """One call of the EMA student at t = T from the prior (RSD_SPEC §4c)."""
        return one_step_sample(self.diffusion, self.ema_model, y, lq, self.noise_channels, generator, self.latent)


class RegressionTrainer(OneStepTrainer):
    """The one-step MMSE baseline: the RSD student trained with MSE to the ground truth.

    Args: as :class:`OneStepTrainer`, with ``config`` a :class:`rsd_mini.config.RegressionRunConfig`
    (teacher checkpoint and noise channels in its ``regression`` section).
    """

    name = "regression"
    sections = ("diffusion", "unet", "regression")

    def __init__(self, config: RegressionRunConfig, teacher: nn.Module | None = None,
                 dataset: Dataset | None = None, device: str | torch.device | None = None,
                 autoencoder: nn.Module | None = None):
        r = config.regression
        super().__init__(config, r.teacher, r.noise_channels, teacher=teacher, dataset=dataset, device=device,
                         autoencoder=autoencoder)

    def losses(self, x0: Tensor, y: Tensor, lq: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        """mean_CHW ‖G_θ(x_T, y₀, T, ε₁) − x₀‖² with x_T and ε₁ fresh from ``generator``
        (unclamped output, so the gradient does not vanish outside [−1, 1])."""
        out = one_step_sample(self.diffusion, self.model, y, lq, self.noise_channels, generator, self.latent,
                              clip=False)
        return dict(loss=(out - x0).pow(2).flatten(1).mean(1))
