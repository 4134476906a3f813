"""SinSR (RSD_SPEC §3): the deterministic sampler, the three losses, the trainer, tiny-sinsr."""

import json

import pytest
import torch
from torch import nn

import rsd_mini
from rsd_mini import sinsr
from rsd_mini.config import PRESETS, apply_overrides, load_config
from rsd_mini.degradations import bicubic_upsample
from rsd_mini.diffusion import ResShift
from rsd_mini.distill import one_step_sample
from rsd_mini.unet import SwinUNet, unet_preset
from conftest import split_run_resumes_exactly

SMALL = ["data.crop_size=32", "unet.image_size=32", "unet.channel_mult=[1,2]", "unet.num_res_blocks=[1,1]",
         "unet.attention_resolutions=[8]", "train.batch_size=2", "train.microbatch=1", "train.log_every=1"]


class ConvDenoiser(nn.Module):
    """A cheap model with the Denoiser signature: x̂₀ = conv([x, lq]) + t-dependent bias."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(6, 3, 3, padding=1)
        self.time = nn.Embedding(15, 3)

    def forward(self, x, t, lq=None):
        return self.conv(torch.cat([x, lq], 1)) + self.time(t)[:, :, None, None]


@pytest.fixture
def process():
    return ResShift.from_preset("resshift-v1")


def _images(seed, batch=3, size=8):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=g) * 2 - 1


# --------------------------------------------------------------------- deterministic sampler
def test_step_matches_the_official_formula_on_a_hand_computed_case(process):
    """t = 2 of v1 (RSD_SPEC §1 table: η₁ = 0.000400, η₂ = 0.013728): m = √(η₁/η₂) = 0.17070,
    j = η₁ − √(η₁η₂) = −0.0019433, k = 1 − η₁ + √(η₁η₂) − m = 0.83124; with f = 0.5, x_t = 1,
    y₀ = 2: x₁ = 0.83124·0.5 + 0.17070·1 − 0.0019433·2 = 0.58243."""
    k, m, j = sinsr.ddim_coefficients(process)
    assert (float(k[1]), float(m[1]), float(j[1])) == pytest.approx((0.83124, 0.17070, -0.0019433), abs=2e-5)
    out = sinsr.deterministic_step(process, torch.tensor(0.5), torch.tensor(1.0), torch.tensor(2.0), 1)
    assert float(out) == pytest.approx(0.58243, abs=5e-5)


def test_step_keeps_the_marginals_with_an_exact_prediction(process):
    """With f = x₀ the step maps x_t = (1−η_t)x₀ + η_t y₀ + κ√η_t ε to the marginal at t − 1
    with the *same* ε: the derivation of the sampler (RSD_SPEC §3)."""
    x0, y, noise = _images(0), _images(1), torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    for i in range(1, process.steps):
        x_t = process.q_sample(x0, y, i, noise)
        expected = process.q_sample(x0, y, i - 1, noise)
        torch.testing.assert_close(sinsr.deterministic_step(process, x0, x_t, y, i), expected,
                                   rtol=1e-5, atol=1e-5)
    last = sinsr.deterministic_step(process, x0, process.q_sample(x0, y, 0, noise), y, 0)
    assert torch.equal(last, x0)  # t = 1: k = 1, m = j = 0


def test_step_rejects_a_bad_index(process):
    with pytest.raises(ValueError, match="t=15"):
        sinsr.deterministic_step(process, torch.zeros(1), torch.zeros(1), torch.zeros(1), 15)


def test_sampler_is_deterministic_in_x_T_and_an_oracle_lands_on_x0(process):
    model, y = ConvDenoiser(), _images(3)
    a = sinsr.deterministic_sample(process, model, y, generator=torch.Generator().manual_seed(0), latent=False)
    b = sinsr.deterministic_sample(process, model, y, generator=torch.Generator().manual_seed(0), latent=False)
    c = sinsr.deterministic_sample(process, model, y, generator=torch.Generator().manual_seed(1), latent=False)
    assert torch.equal(a, b) and not torch.equal(a, c)
    x0 = _images(4) * 0.9
    oracle = lambda x, t, lq: x0  # noqa: E731 - predicts the right x₀ everywhere
    assert torch.equal(sinsr.deterministic_sample(process, oracle, y, latent=False), x0)


def test_sampler_calls_each_index_once_from_T_down(process):
    seen = []

    def model(x, t, lq):
        seen.append(int(t[0]))
        return torch.zeros_like(x)

    sinsr.deterministic_sample(process, model, _images(5), latent=False)
    assert seen == list(range(14, -1, -1))


# --------------------------------------------------------------------- losses
def test_distillation_loss_is_zero_when_the_student_reproduces_the_teachers_map(process):
    teacher, y = ConvDenoiser(seed=4), _images(6)
    x_T = process.prior_sample(y, torch.randn(y.shape, generator=torch.Generator().manual_seed(0)))
    target = sinsr.deterministic_sample(process, teacher, y, x_T=x_T, latent=False)
    unscale = float(process.kappa * process.sqrt_etas[-1]) * 3 + 1  # pixel-space input scaling at t = T

    def student(x, t, lq):  # the teacher's deterministic map itself, called at t = T
        assert (t == 14).all()
        return sinsr.deterministic_sample(process, teacher, lq, x_T=x * unscale, latent=False)

    assert float(sinsr.distillation_loss(process, student, x_T, target, y, latent=False).max()) < 1e-10
    assert (sinsr.distillation_loss(process, ConvDenoiser(seed=5), x_T, target, y, latent=False) > 1e-3).all()


def test_inverse_loss_calls_index_0_with_the_t_T_scaling(process):
    x0, x_T = _images(7), _images(8) * 2
    calls = []

    def exact_inverse(x, t, lq):
        calls.append((x, t))
        return x_T

    assert torch.equal(sinsr.inverse_loss(process, exact_inverse, x0, x_T, x0, latent=False), torch.zeros(3))
    x, t = calls[0]
    assert torch.equal(t, torch.zeros(3, dtype=torch.long))
    torch.testing.assert_close(x, process.scale_input(x0, 14, latent=False))


def test_consistency_loss_trains_only_the_forward_call(process):
    model, x0 = ConvDenoiser(seed=1), _images(9)
    loss = sinsr.consistency_loss(process, model, x0, x0, latent=False)
    loss.sum().backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    t0, tT = torch.zeros(3, dtype=torch.long), torch.full((3,), 14)
    x_T = model(process.scale_input(x0, 14, latent=False), t0, lq=x0).detach()
    expected = (model(process.scale_input(x_T, 14, latent=False), tT, lq=x0) - x0).pow(2).flatten(1).mean(1)
    expected.sum().backward()
    torch.testing.assert_close(loss, expected)
    for a, p in zip(got, model.parameters()):
        torch.testing.assert_close(a, p.grad)
    assert model.time.weight.grad[0].abs().sum() == 0  # index 0 (the inverse call) gets no gradient


def test_sinsr_loss_is_the_weighted_sum_and_skips_zero_weights(process):
    teacher, student, x0, y = ConvDenoiser(seed=2), ConvDenoiser(seed=3), _images(10), _images(11)
    full = sinsr.sinsr_loss(process, student, teacher, x0, y, y, torch.Generator().manual_seed(0), latent=False,
                            distill_weight=1.0, inverse_weight=0.5, consistency_weight=2.0)
    torch.testing.assert_close(full.loss, full.distill + 0.5 * full.inverse + 2.0 * full.consistency)
    assert (full.inverse > full.distill).all()  # x_T has variance κ²η_T ≈ 3.9 per pixel
    only = sinsr.sinsr_loss(process, student, teacher, x0, y, y, torch.Generator().manual_seed(0), latent=False,
                            inverse_weight=0.0, consistency_weight=0.0)
    torch.testing.assert_close(only.loss, full.distill)
    assert torch.equal(only.inverse, torch.zeros(3))


# --------------------------------------------------------------------- presets
def test_sinsr_paper_is_the_official_config():
    c = PRESETS["sinsr-paper"]  # wyf0912/SinSR configs/SinSR.yaml
    assert (c.optim.lr, c.optim.weight_decay, c.optim.betas, c.optim.warmup_steps, c.optim.schedule,
            c.optim.grad_clip) == (5e-5, 0.0, (0.9, 0.999), 5000, "constant", None)
    assert (c.train.batch_size, c.train.ema_rate, c.train.amp, c.train.iterations) == (64, 0.999, False, 500_000)
    assert (c.sinsr.distill_weight, c.sinsr.inverse_weight, c.sinsr.consistency_weight) == (1.0, 1.0, 1.0)
    assert c.unet == unet_preset("v1") and c.diffusion.latent and c.data.degradation == "realesrgan"
    assert c.sinsr.teacher.endswith("resshift_realsrx4_s15_v1.pth")


def test_negative_weight_is_named():
    with pytest.raises(ValueError, match="sinsr.inverse_weight=-1.0"):
        apply_overrides(load_config("sinsr-tiny"), ["sinsr.inverse_weight=-1"])


# --------------------------------------------------------------------- trainer
def _trainer(tmp_path, *overrides, name="run"):
    config = apply_overrides(load_config("sinsr-tiny"), [*SMALL, f"train.out_dir={tmp_path / name}", *overrides])
    torch.manual_seed(0)
    teacher = SwinUNet(config.unet)
    for p in teacher.parameters():
        p.data.add_(0.01 * torch.randn_like(p))
    return sinsr.SinSRTrainer(config, teacher=teacher, device="cpu")


def test_student_starts_as_the_teacher_and_only_it_is_trained(tmp_path):
    trainer = _trainer(tmp_path, "train.iterations=1")
    teacher = {k: v.clone() for k, v in trainer.teacher.state_dict().items()}
    assert trainer.model.config == trainer.teacher.config  # no noise channel
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in teacher.items())
    trainer.fit(progress=False)
    assert all(torch.equal(v, trainer.teacher.state_dict()[k]) for k, v in teacher.items())
    assert any(not torch.equal(v, trainer.model.state_dict()[k]) for k, v in teacher.items())
    row = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert {"loss", "distill", "inverse", "consistency", "grad_norm", "lr"} <= row.keys()
    assert row["loss"] == pytest.approx(row["distill"] + row["inverse"] + row["consistency"], rel=1e-5)


def test_two_iterations_resume_exactly(tmp_path):
    straight, resumed = split_run_resumes_exactly(lambda name: _trainer(tmp_path, "train.iterations=2", name=name))
    model = rsd_mini.load(resumed.checkpoint_path)  # a run's last.pt: its EMA weights, one call
    assert model.kind == "one-step" and model.nfe == 1 and model.noise_channels == 0
    lq = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    y = bicubic_upsample(lq, scale=4)
    expected = one_step_sample(resumed.diffusion, resumed.ema_model, y, y, 0, torch.Generator().manual_seed(3),
                               latent=False)
    torch.testing.assert_close(model.sr(lq, torch.Generator().manual_seed(3)), expected)


def test_missing_teacher_is_named(tmp_path):
    config = apply_overrides(load_config("sinsr-tiny"), ["sinsr.teacher=null", f"train.out_dir={tmp_path}"])
    with pytest.raises(ValueError, match="sinsr.teacher=None"):
        sinsr.SinSRTrainer(config, device="cpu")


# --------------------------------------------------------------------- the shipped model
def test_tiny_sinsr_loads_and_super_resolves_in_one_call():
    model = rsd_mini.load("tiny-sinsr")
    assert model.nfe == 1 and model.noise_channels == 0 and model.scale == 4
    assert {"command", "seed", "metrics"} <= model.meta.keys()
    calls = []
    model.network.register_forward_hook(lambda module, args, output: calls.append(1))
    lq = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    a = model.sr(lq, torch.Generator().manual_seed(1))
    assert a.shape == (2, 3, 64, 64) and a.abs().max() <= 1 and len(calls) == 1
    assert torch.equal(a, model.sr(lq, torch.Generator().manual_seed(1)))
    assert not torch.equal(a, model.sr(lq, torch.Generator().manual_seed(2)))  # x_T is its input
