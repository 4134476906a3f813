"""RSD objective and trainer (RSD_SPEC §4): what reaches which weights, initialisation, resume."""

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from rsd_mini import distill
from rsd_mini.config import apply_overrides, load_config
from rsd_mini.diffusion import ResShift
from rsd_mini.distill_train import RSDTrainer, load_teacher
from rsd_mini.train import TeacherTrainer
from rsd_mini.unet import SwinUNet

SMALL = ["data.crop_size=32", "unet.image_size=32", "unet.channel_mult=[1,2]",
         "unet.num_res_blocks=[1,1]", "unet.attention_resolutions=[8]", "train.batch_size=2",
         "train.microbatch=1", "distill.fake_steps=2", "train.log_every=1"]


class ConvDenoiser(nn.Module):
    """A cheap model with the Denoiser signature: x̂₀ = conv([x, lq, noise]) + t-dependent bias."""

    def __init__(self, noise_channels=0, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(6 + noise_channels, 3, 3, padding=1)
        self.time = nn.Embedding(15, 3)

    def forward(self, x, t, lq=None, noise=None):
        inputs = [x, lq] + ([noise] if noise is not None else [])
        return self.conv(torch.cat(inputs, 1)) + self.time(t)[:, :, None, None]


@pytest.fixture
def process():
    return ResShift.from_preset("resshift-v1")


def _pair(seed=0, batch=3, size=8):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=g) * 2 - 1, torch.rand(batch, 3, size, size, generator=g) * 2 - 1


def test_multistep_nodes_are_evenly_placed_and_end_at_T():
    assert distill.multistep_nodes(15, 4) == (3, 7, 10, 14)
    assert distill.multistep_nodes(15, 1) == (14,)
    assert distill.multistep_nodes(4, 4) == (0, 1, 2, 3)
    with pytest.raises(ValueError, match="count=0"):
        distill.multistep_nodes(15, 0)


def test_student_equals_teacher_at_initialisation():
    config = load_config("rsd-tiny").unet
    torch.manual_seed(0)
    teacher = SwinUNet(config)
    for p in teacher.parameters():  # a teacher that is not the zero-initialised identity
        p.data.add_(0.02 * torch.randn_like(p))
    student = distill.add_noise_channels(teacher, channels=1)
    assert student.config.in_channels == config.in_channels + 1
    x, lq = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    t = torch.tensor([3, 14])
    expected = teacher(x, t, lq=lq)
    assert torch.equal(student(x, t, lq=lq, noise=torch.randn(2, 1, 64, 64)), expected)
    with pytest.raises(ValueError, match="channels=0"):
        distill.add_noise_channels(teacher, channels=0)


@pytest.mark.parametrize("variant", ["rsd", "vsd"])
def test_student_loss_gradients_reach_only_the_student(process, variant):
    teacher, fake, student = ConvDenoiser(seed=1), ConvDenoiser(seed=2), ConvDenoiser(1, seed=3)
    teacher.requires_grad_(False)
    x0, y = _pair()
    g = torch.Generator().manual_seed(0)
    x0_hat, _ = distill.student_predict(process, student, x0, y, y, (3, 7, 10, 14), 1, g)
    result = distill.student_loss(process, teacher, fake, x0_hat, y, y, g, variant=variant)
    result.loss.mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert all(p.grad is None for p in [*teacher.parameters(), *fake.parameters()])
    assert all(p.requires_grad for p in fake.parameters())  # the flags are restored


def _x0_gradient(process, variant, sid=False):
    teacher, fake = ConvDenoiser(seed=1), ConvDenoiser(seed=2)
    x0, y = _pair()
    x0_hat = x0.clone().requires_grad_(True)
    result = distill.student_loss(process, teacher, fake, x0_hat, y, y,
                                  torch.Generator().manual_seed(5), variant=variant,
                                  sid_normalization=sid)
    result.loss.sum().backward()
    return x0_hat.grad, result


def test_vsd_gradient_is_the_direct_part_and_rsd_adds_the_path_through_x_t(process):
    """VSD: ∂ℓ/∂x̂₀ = 2(f_φ − f*)/D exactly (RSD_SPEC §4a); RSD adds the gradient through x_t."""
    vsd, _ = _x0_gradient(process, "vsd")
    rsd, _ = _x0_gradient(process, "rsd")
    teacher, fake = ConvDenoiser(seed=1), ConvDenoiser(seed=2)
    x0, y = _pair()
    assert not torch.allclose(rsd, vsd)
    # Recompute f*, f_φ at the same x_t to check the VSD closed form.
    g = torch.Generator().manual_seed(5)
    t = torch.randint(process.steps, (3,), generator=g)
    x_t = process.q_sample(x0, y, t, torch.randn(x0.shape, generator=g))
    x_in = process.scale_input(x_t, t)
    direct = 2 * (fake(x_in, t, lq=y) - teacher(x_in, t, lq=y)) / x0[0].numel()
    torch.testing.assert_close(vsd, direct.detach())


def test_sid_normalisation_divides_by_the_detached_mean_error(process):
    _, plain = _x0_gradient(process, "rsd", sid=False)
    _, normalised = _x0_gradient(process, "rsd", sid=True)
    torch.testing.assert_close(normalised.loss, plain.distance / (plain.normaliser + 1e-8))
    assert not normalised.normaliser.requires_grad


def test_fake_loss_does_not_reach_the_student(process):
    student, fake = ConvDenoiser(1, seed=3), ConvDenoiser(seed=2)
    x0, y = _pair()
    x0_hat, _ = distill.student_predict(process, student, x0, y, y, (14,), 1)
    distill.fake_loss(process, fake, x0_hat, y, y).mean().backward()
    assert all(p.grad is None for p in student.parameters())
    assert all(p.grad is not None for p in fake.parameters())


def test_unknown_variant_is_named(process):
    x0, y = _pair()
    with pytest.raises(ValueError, match="variant='dmd'"):
        distill.student_loss(process, ConvDenoiser(), ConvDenoiser(), x0, y, y, variant="dmd")


# --------------------------------------------------------------------- trainer
def _trainer(tmp_path, *overrides, name="run"):
    config = apply_overrides(load_config("rsd-tiny"), [*SMALL, f"train.out_dir={tmp_path / name}", *overrides])
    torch.manual_seed(0)
    teacher = SwinUNet(config.unet)
    for p in teacher.parameters():
        p.data.add_(0.01 * torch.randn_like(p))
    return RSDTrainer(config, teacher=teacher, device="cpu")


def test_one_iteration_updates_student_and_fake_but_never_the_teacher(tmp_path):
    trainer = _trainer(tmp_path, "distill.gan_weight=0.003", "train.iterations=1")
    before = {name: {k: v.clone() for k, v in getattr(trainer, name).state_dict().items()}
              for name in ("teacher", "student", "fake")}
    trainer.fit(progress=False)
    after = {name: getattr(trainer, name).state_dict() for name in ("teacher", "student", "fake")}
    assert all(torch.equal(before["teacher"][k], v) for k, v in after["teacher"].items())
    assert any(not torch.equal(before["student"][k], v) for k, v in after["student"].items())
    assert any(not torch.equal(before["fake"][k], v) for k, v in after["fake"].items())
    row = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert {"loss", "distance", "normaliser", "fake_loss", "gan_d", "gan_g", "grad_norm", "lr"} <= row.keys()


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    straight = _trainer(tmp_path, "train.iterations=2", name="straight")
    straight.fit(progress=False)
    split = _trainer(tmp_path, "train.iterations=2", name="split")
    split.fit(progress=False, max_steps=1)
    resumed = _trainer(tmp_path, "train.iterations=2", name="split")
    resumed.fit(progress=False)
    assert resumed.step == 2
    for key, value in straight.student.state_dict().items():
        assert torch.equal(value, resumed.student.state_dict()[key]), key
    for key, value in straight.ema_model.state_dict().items():
        assert torch.equal(value, resumed.ema_model.state_dict()[key]), key


def test_lpips_term_uses_the_given_perceptual_function(tmp_path):
    config = apply_overrides(load_config("rsd-tiny"), [*SMALL, f"train.out_dir={tmp_path}",
                                                        "distill.lpips_weight=2.0", "train.iterations=1"])
    calls = []

    def l1(output, target):
        calls.append(output.shape)
        return (output - target).abs().flatten(1).mean(1)

    trainer = RSDTrainer(config, teacher=SwinUNet(config.unet), device="cpu", perceptual=l1)
    stats = trainer.student_step(*trainer._batch(0))
    assert calls and stats["lpips"] > 0


def test_mse_term_is_the_pixel_error_of_the_one_step_sample(tmp_path):
    """distill.mse_weight adds λ·MSE(one step from the prior, HR) to the student loss: the same
    student step with it on logs the MSE and its loss exceeds the step without it by λ·MSE."""
    def step(weight):
        config = apply_overrides(load_config("rsd-tiny"), [*SMALL, f"train.out_dir={tmp_path / str(weight)}",
                                                            f"distill.mse_weight={weight}", "train.iterations=1"])
        torch.manual_seed(0)
        trainer = RSDTrainer(config, teacher=SwinUNet(config.unet), device="cpu")
        return trainer.student_step(*trainer._batch(0))

    without, with_mse = step(0.0), step(3.0)
    assert "mse" not in without and with_mse["mse"] > 0
    assert with_mse["loss"] == pytest.approx(without["loss"] + 3.0 * with_mse["mse"], rel=1e-5, abs=1e-7)
    with pytest.raises(ValueError, match=r"distill.mse_weight=-1.0: expected >= 0"):
        apply_overrides(load_config("rsd-tiny"), ["distill.mse_weight=-1"])


def test_lpips_without_pyiqa_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyiqa", None)  # import fails as if not installed
    with pytest.raises(RuntimeError, match="lpips_weight=0"):
        distill.build_lpips()


def test_teacher_from_a_teacher_run_and_wrong_architecture(tmp_path):
    teacher_config = apply_overrides(load_config("tiny"), [
        "data.crop_size=32", "unet.image_size=32", "unet.channel_mult=[1,2]",
        "unet.num_res_blocks=[1,1]", "unet.attention_resolutions=[8]", "train.batch_size=2",
        "train.iterations=1", f"train.out_dir={tmp_path / 'teacher'}"])
    run = TeacherTrainer(teacher_config, device="cpu")
    run.fit(progress=False)
    teacher = load_teacher(run.checkpoint_path, teacher_config.unet)
    assert not any(p.requires_grad for p in teacher.parameters())
    for key, value in run.ema_model.state_dict().items():
        assert torch.equal(teacher.state_dict()[key], value)
    with pytest.raises(ValueError, match="was trained with unet="):
        load_teacher(run.checkpoint_path, load_config("tiny").unet)
    with pytest.raises(FileNotFoundError, match="distill.teacher="):
        load_teacher(tmp_path / "missing.pt", teacher_config.unet)


def test_cli_rejects_a_teacher_config():
    result = subprocess.run([sys.executable, "-m", "rsd_mini", "distill", "--config", "tiny"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "is a teacher config" in result.stderr


def test_gpu_smoke_script_runs_its_code_path_on_cpu(tmp_path):
    """benchmarks/gpu_smoke.py (full config on a GPU) with the tiny config on a CPU."""
    out = tmp_path / "smoke.json"
    subprocess.run([sys.executable, "benchmarks/gpu_smoke.py", "--config", "tiny", "--device", "cpu",
                    "--size", "32", "--microbatch", "1", "--repeats", "1", "--json", str(out)],
                   check=True, capture_output=True, cwd=__import__("pathlib").Path(__file__).parents[1])
    result = json.loads(out.read_text())
    assert result["parameters"] > 3_000_000 and result["inference_lr"]["ratio"] > 1
    assert {"teacher_fwd_bwd", "rsd_iteration", "vq_encode_batch"} <= result.keys()
