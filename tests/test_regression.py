"""The one-step MMSE baseline (rsd_mini.regression): initialisation, objective, resume."""

import json

import pytest
import torch

from rsd_mini.config import apply_overrides, load_config
from rsd_mini.distill import one_step_sample
from rsd_mini.regression import RegressionTrainer
from rsd_mini.unet import SwinUNet
from conftest import split_run_resumes_exactly

SMALL = ["data.crop_size=32", "unet.image_size=32", "unet.channel_mult=[1,2]", "unet.num_res_blocks=[1,1]",
         "unet.attention_resolutions=[8]", "train.batch_size=2", "train.microbatch=1", "train.log_every=1"]


def _trainer(tmp_path, *overrides, name="run"):
    config = apply_overrides(load_config("regression-tiny"), [*SMALL, f"train.out_dir={tmp_path / name}", *overrides])
    torch.manual_seed(0)
    teacher = SwinUNet(config.unet)
    for p in teacher.parameters():
        p.data.add_(0.01 * torch.randn_like(p))
    return RegressionTrainer(config, teacher=teacher, device="cpu")


def test_student_is_the_rsd_student_at_initialisation(tmp_path):
    """Teacher + one zero-initialised noise channel: the teacher's one-call prediction, whatever ε₁."""
    trainer = _trainer(tmp_path)
    assert trainer.model.config.in_channels == trainer.teacher.config.in_channels + 1
    y = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    student = one_step_sample(trainer.diffusion, trainer.model, y, y, 1, torch.Generator().manual_seed(1), latent=False)
    teacher = one_step_sample(trainer.diffusion, trainer.teacher, y, y, 0, torch.Generator().manual_seed(1), latent=False)
    torch.testing.assert_close(student, teacher)


def test_loss_is_the_mse_of_the_one_step_output_to_the_ground_truth(tmp_path):
    trainer = _trainer(tmp_path)
    x0, y = (torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(s)) * 2 - 1 for s in (2, 3))
    loss = trainer.losses(x0, y, y, torch.Generator().manual_seed(4))["loss"]
    out = one_step_sample(trainer.diffusion, trainer.model, y, y, 1, torch.Generator().manual_seed(4), latent=False,
                          clip=False)
    torch.testing.assert_close(loss, (out - x0).pow(2).flatten(1).mean(1))


def test_training_lowers_the_loss_on_a_fixed_batch(tmp_path):
    trainer = _trainer(tmp_path, "optim.lr=1e-3")
    batch = {"hr": torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5)) * 2 - 1}
    batch["lq"] = torch.nn.functional.avg_pool2d(batch["hr"], 4)
    losses = [trainer.train_step(batch, index=0)["loss"] for _ in range(6)]  # same batch, same noise
    assert losses[-1] < 0.9 * losses[0]


def test_two_iterations_resume_exactly(tmp_path):
    straight, resumed = split_run_resumes_exactly(lambda name: _trainer(tmp_path, "train.iterations=2", name=name))
    row = json.loads((tmp_path / "split" / "log.jsonl").read_text().splitlines()[-1])
    assert row["step"] == 2 and {"loss", "grad_norm", "lr"} <= row.keys()


def test_missing_teacher_and_bad_noise_channels_are_named(tmp_path):
    config = apply_overrides(load_config("regression-tiny"), ["regression.teacher=null", f"train.out_dir={tmp_path}"])
    with pytest.raises(ValueError, match="regression.teacher=None"):
        RegressionTrainer(config, device="cpu")
    with pytest.raises(ValueError, match="regression.noise_channels=-1"):
        apply_overrides(load_config("regression-tiny"), ["regression.noise_channels=-1"])
