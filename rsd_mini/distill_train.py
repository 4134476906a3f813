"""The RSD distillation loop (RSD_SPEC §4b, the official ``RSDTrainer``).

Per student update: K fake updates, each on a fresh batch (student in eval, fake in train:
the ResShift loss on detached multistep student outputs, plus λ₂ × the discriminator loss when
the GAN head is on), then one student update on another fresh batch (the RSD loss with SiD
normalisation, plus λ₂ × the generator GAN loss and λ₁ × LPIPS when on), then the EMA of the
student. Two AdamW optimisers; gradients accumulated over microbatches; atomic checkpoints and
exact resume as for the teacher (:class:`rsd_mini.train.TrainingRun`).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from rsd_mini import distill
from rsd_mini.checkpoint import load_checkpoint, rng_state, set_rng_state
from rsd_mini.config import DistillConfig, from_dict, to_dict
from rsd_mini.diffusion import ResShift
from rsd_mini.fullscale.official import load_unet
from rsd_mini.train import TrainingRun, build_dataset, build_ema, make_batch, step_seed
from rsd_mini.unet import SwinUNet, UNetConfig


def load_teacher(checkpoint: str | Path, unet: UNetConfig, device: str | torch.device = "cpu") -> SwinUNet:
    """The frozen teacher f*: the EMA weights of a :class:`~rsd_mini.train.TeacherTrainer` run
    (``last.pt``) or an official ResShift checkpoint (loaded strictly), built as ``unet``."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"distill.teacher={str(checkpoint)!r}: no such file; train a teacher "
                                "first (python -m rsd_mini train-teacher) or download the official one")
    state = load_checkpoint(path)
    if isinstance(state, dict) and {"ema", "config"} <= state.keys():  # one of our runs
        saved = from_dict(UNetConfig, state["config"]["unet"])
        if saved != unet:  # dataclass equality: activation checkpointing does not count
            raise ValueError(f"distill.teacher={str(path)!r} was trained with unet={to_dict(saved)}, "
                             f"but the config has unet={to_dict(unet)}")
        model = SwinUNet(unet)
        model.load_state_dict(state["ema"])
        return distill.copy_frozen(model.to(device))
    return distill.copy_frozen(load_unet(state, unet, device))


class RSDTrainer(TrainingRun):
    """Distils a ResShift teacher into a one-step student (RSD_SPEC §4).

    Args:
        config: the run (:class:`rsd_mini.config.DistillConfig`).
        teacher: the teacher network; default loaded from ``distill.teacher``.
        dataset: training items as for the teacher; default from ``config.data``.
        perceptual: the LPIPS function (default :func:`rsd_mini.distill.build_lpips` when
            ``distill.lpips_weight`` > 0).

    Attributes ``teacher`` (frozen), ``student``, ``fake``, ``head`` (the GAN discriminator
    head or ``None``), ``ema_model`` (the averaged student, what is evaluated), ``diffusion``.
    """

    name = "rsd"
    sections = ("diffusion", "unet", "distill")

    def __init__(self, config: DistillConfig, teacher: nn.Module | None = None,
                 dataset: Dataset | None = None, device: str | torch.device | None = None,
                 perceptual: distill.Perceptual | None = None, autoencoder: nn.Module | None = None):
        super().__init__(config, device, autoencoder)
        d, rsd = config.diffusion, config.distill
        self.diffusion = ResShift(d.steps, d.kappa, d.min_noise_level, d.etas_end, d.power)
        self.nodes = distill.multistep_nodes(d.steps, rsd.nodes)
        if teacher is None:
            if rsd.teacher is None:
                raise ValueError("distill.teacher=None: expected the teacher checkpoint path")
            teacher = load_teacher(rsd.teacher, config.unet, self.device)
        self.teacher = distill.copy_frozen(teacher).to(self.device)
        self.student = distill.add_noise_channels(self.teacher, rsd.noise_channels).requires_grad_(True)
        self.fake = copy.deepcopy(self.teacher).requires_grad_(True)
        self.head = self._seeded_head() if rsd.gan_weight > 0 else None
        self.dataset = dataset if dataset is not None else build_dataset(config.data, config.train.seed)
        self.optimizer = self._adamw(self.student.parameters())
        fake_params = list(self.fake.parameters()) + (list(self.head.parameters()) if self.head else [])
        self.optimizer_fake = self._adamw(fake_params, rsd.fake_lr_ratio)
        self.scaler, self.scaler_fake = self.grad_scaler(), self.grad_scaler()
        self.ema = build_ema(self.student, config.train.ema_rate)
        self.perceptual = perceptual
        if rsd.lpips_weight > 0 and perceptual is None:
            self.perceptual = distill.build_lpips(self.device)

    def _adamw(self, params, lr_ratio: float = 1.0) -> torch.optim.AdamW:
        o = self.config.optim
        return torch.optim.AdamW(params, lr=o.lr * lr_ratio, betas=o.betas, weight_decay=o.weight_decay)

    def _seeded_head(self) -> distill.BottleneckDiscriminator:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(step_seed(self.config.train.seed, 0, "head"))
            return distill.BottleneckDiscriminator(self.fake.bottleneck_channels).to(self.device)

    @property
    def ema_model(self) -> nn.Module:
        return self.ema.module

    # ----------------------------------------------------------------- one iteration
    def update(self) -> dict[str, float]:
        """K fake updates, then one student update, each on a fresh batch (RSD_SPEC §4b)."""
        k = self.config.distill.fake_steps
        fake = [self.fake_step(*self._batch(j)) for j in range(k)]
        stats = self.student_step(*self._batch(k))
        stats.update({key: sum(f[key] for f in fake) / k for key in fake[0]})
        return stats

    def _batch(self, j: int) -> tuple[dict[str, Tensor], int]:
        """Batch j of this iteration (j < K: fake steps; j = K: the student step) and its index."""
        index = self.step * (self.config.distill.fake_steps + 1) + j
        train = self.config.train
        return make_batch(self.dataset, train.batch_size, train.seed, index), index

    def _chunks(self, batch: dict[str, Tensor], index: int):
        """This process's divisor and its microbatches (x₀, y₀, lq, HR image, generator) of
        batch ``index``."""
        pieces = ((*self.training_triple(piece), piece["hr"], generator)
                  for piece, generator in self.microbatches(batch, index))
        return self.shard_size(batch), pieces

    def fake_step(self, batch: dict[str, Tensor], index: int) -> dict[str, float]:
        """min_{φ,ψ} E‖f_φ(x_t) − sg(x̂₀)‖² + λ₂ L_D (RSD_SPEC §4a, §4b "Fake step")."""
        rsd, process = self.config.distill, self.diffusion
        self.student.eval()
        self.fake.train()
        self.optimizer_fake.zero_grad(set_to_none=True)
        totals = dict(fake_loss=0.0, gan_d=0.0)
        size, chunks = self._chunks(batch, index)
        latent = self.latent
        for x0, y, lq, _, generator in chunks:
            with self.autocast():
                with torch.no_grad():
                    x0_hat, _ = distill.student_predict(process, self.student, x0, y, lq, self.nodes,
                                                        rsd.noise_channels, generator, latent)
                fake = distill.fake_loss(process, self.fake, x0_hat, y, lq, generator, latent).float().sum() / size
                loss = fake
                if self.head is not None:
                    real_logits = distill.gan_logits(process, self.fake, self.head, x0, y, lq, generator, latent)
                    fake_logits = distill.gan_logits(process, self.fake, self.head, x0_hat, y, lq, generator, latent)
                    gan_d = distill.discriminator_loss(real_logits, fake_logits).float().sum() / size
                    loss = loss + rsd.gan_weight * gan_d
                    totals["gan_d"] += float(gan_d.detach())
            self.scaler_fake.scale(loss).backward()
            totals["fake_loss"] += float(fake.detach())
        self._check_finite(torch.tensor(totals["fake_loss"]))
        self.optimizer_step(self.optimizer_fake, self.scaler_fake)
        return totals if self.head is not None else dict(fake_loss=totals["fake_loss"])

    def student_step(self, batch: dict[str, Tensor], index: int) -> dict[str, float]:
        """min_θ mean_b ℓ_b + λ₂ L_G + λ₁ LPIPS (RSD Eq. 13) (+ ``mse_weight`` × MSE to x₀ when on),
        then the EMA (RSD_SPEC §4b)."""
        self.student.train()
        self.fake.eval()
        self.optimizer.zero_grad(set_to_none=True)
        totals = dict(loss=0.0, distance=0.0, normaliser=0.0)
        size, chunks = self._chunks(batch, index)
        for x0, y, lq, hr, generator in chunks:
            with self.autocast():
                loss = self._student_terms(x0, y, lq, hr, generator, size, totals)
            self.scaler.scale(loss).backward()
            totals["loss"] += float(loss.detach())
        self._check_finite(torch.tensor(totals["loss"]))
        totals["lr"] = self.optimizer.param_groups[0]["lr"]
        totals["grad_norm"] = float(self.optimizer_step(self.optimizer, self.scaler))
        self.ema.update_parameters(self.student)
        return totals

    def _student_terms(self, x0: Tensor, y: Tensor, lq: Tensor, hr: Tensor, generator: torch.Generator,
                       size: int, totals: dict[str, float]) -> Tensor:
        """The student's loss on one microbatch, divided by the process's batch ``size``; adds
        what it logs to ``totals``."""
        rsd, process, latent = self.config.distill, self.diffusion, self.latent
        x0_hat, _ = distill.student_predict(process, self.student, x0, y, lq, self.nodes,
                                            rsd.noise_channels, generator, latent)
        result = distill.student_loss(process, self.teacher, self.fake, x0_hat, y, lq, generator,
                                      latent=latent, variant=rsd.variant,
                                      sid_normalization=rsd.sid_normalization,
                                      t_power_ten=rsd.t_power_ten)
        loss = result.loss.float().sum() / size
        totals["distance"] += float(result.distance.detach().sum()) / size
        totals["normaliser"] += float(result.normaliser.sum()) / size
        if self.head is not None:
            with distill.frozen(self.fake, self.head):
                logits = distill.gan_logits(process, self.fake, self.head, x0_hat, y, lq, generator, latent)
            gan_g = distill.generator_gan_loss(logits).float().sum() / size
            loss = loss + rsd.gan_weight * gan_g
            totals["gan_g"] = totals.get("gan_g", 0.0) + float(gan_g.detach())
        if self.perceptual is not None or rsd.mse_weight > 0:
            loss = loss + self._supervised_terms(self.to_image(self._one_step(y, lq, generator)), hr, size, totals)
        return loss

    def _supervised_terms(self, image: Tensor, hr: Tensor, size: int, totals: dict[str, float]) -> Tensor:
        """λ₁ LPIPS and ``mse_weight`` × pixel MSE of the one-step image against the HR image
        (RSD §3.4), divided by ``size``; adds them to ``totals``."""
        rsd, loss = self.config.distill, image.new_zeros((), dtype=torch.float32)
        if self.perceptual is not None:
            lpips = self.perceptual(image, hr).float().sum() / size
            loss = loss + rsd.lpips_weight * lpips
            totals["lpips"] = totals.get("lpips", 0.0) + float(lpips.detach())
        if rsd.mse_weight > 0:
            mse = (image.float() - hr.float()).pow(2).flatten(1).mean(1).sum() / size
            loss = loss + rsd.mse_weight * mse
            totals["mse"] = totals.get("mse", 0.0) + float(mse.detach())
        return loss

    def _one_step(self, y: Tensor, lq: Tensor, generator: torch.Generator) -> Tensor:
        """ẑ₀ = G(x_T, y₀, T, ε) from the prior, whose image LPIPS (and the MSE) compares (RSD §3.4)."""
        return distill.one_step_sample(self.diffusion, self.student, y, lq, self.config.distill.noise_channels,
                                       generator, self.latent, clip=False)

    # ----------------------------------------------------------------- validation
    def sample(self, y: Tensor, lq: Tensor, generator: torch.Generator) -> Tensor:
        """One step of the EMA student from the prior (RSD_SPEC §4c)."""
        return distill.one_step_sample(self.diffusion, self.ema_model, y, lq, self.config.distill.noise_channels,
                                       generator, self.latent)

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Everything needed to continue exactly (weights-only loadable)."""
        return dict(student=self.student.state_dict(), fake=self.fake.state_dict(),
                    head=self.head.state_dict() if self.head is not None else None,
                    ema=self.ema_model.state_dict(), ema_updates=self.ema.n_averaged.clone(),
                    optimizer=self.optimizer.state_dict(), optimizer_fake=self.optimizer_fake.state_dict(),
                    scaler=self.scaler.state_dict(), scaler_fake=self.scaler_fake.state_dict(),
                    step=self.step, seconds=self.seconds, config=to_dict(self.config), rng=rng_state())

    def load_state_dict(self, state: dict) -> None:
        self._check_compatible(state["config"])
        self.student.load_state_dict(state["student"])
        self.fake.load_state_dict(state["fake"])
        if self.head is not None:
            self.head.load_state_dict(state["head"])
        self.ema_model.load_state_dict(state["ema"])
        self.ema.n_averaged.copy_(state["ema_updates"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.optimizer_fake.load_state_dict(state["optimizer_fake"])
        for name in ("scaler", "scaler_fake"):  # absent from checkpoints older than AMP support
            if name in state:
                getattr(self, name).load_state_dict(state[name])
        self.step, self.seconds, self.saved_step = state["step"], state["seconds"], state["step"]
        set_rng_state(state["rng"])
