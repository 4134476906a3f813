"""The paper's distillation config end to end on a CPU: the full UNetModelSwin teacher, fake and
student (118.6 M parameters each) and the full VQ-f4, on the smallest input the architecture
allows (one 256² HR crop → a 64² latent), with every term of RSD Eq. 13 switched on. Synthetic
weights: the official files cannot be downloaded here."""

import torch
from torch.utils.data import Dataset

from rsd_mini.fullscale.autoencoder import VQAutoencoder, VQConfig
from rsd_mini.config import PRESETS, apply_overrides
from rsd_mini.distill_train import RSDTrainer
from rsd_mini.unet import SwinUNet, count_parameters


class CropDataset(Dataset):
    """Two fixed 256² HR crops and their 4× average-pooled LR images."""

    def __init__(self):
        self.hr = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def __len__(self):
        return len(self.hr)

    def __getitem__(self, i):
        return {"hr": self.hr[i], "lq": torch.nn.functional.avg_pool2d(self.hr[i][None], 4)[0]}


def l1_perceptual(image, target):
    """A stand-in for pyiqa's LPIPS (its AlexNet weights are not downloadable here)."""
    return (image - target).abs().mean(dim=(1, 2, 3))


def test_paper_distillation_step_runs_on_the_full_models(tmp_path):
    config = apply_overrides(PRESETS["rsd-paper"], [
        "train.batch_size=1", "train.microbatch=1", "distill.fake_steps=1", "distill.teacher=null",
        "train.num_threads=2", f"train.out_dir={tmp_path}"])
    assert config.diffusion.latent and config.distill.lpips_weight == 2.0 and config.distill.gan_weight == 3e-3
    torch.manual_seed(0)
    teacher = SwinUNet(config.unet)
    for p in teacher.parameters():  # the official zero-initialised heads would hide the gradient path
        torch.nn.init.normal_(p, std=0.02) if p.ndim > 1 and p.abs().sum() == 0 else None
    autoencoder = VQAutoencoder(VQConfig())
    assert count_parameters(teacher) == 118_593_583 and count_parameters(autoencoder) == 55_322_782
    trainer = RSDTrainer(config, teacher=teacher, dataset=CropDataset(), device="cpu",
                         perceptual=l1_perceptual, autoencoder=autoencoder)
    before = {name: p.detach().clone() for name, p in trainer.student.named_parameters()}
    teacher_before = trainer.teacher.state_dict()["out.2.weight"].clone()

    stats = trainer.update()

    for key in ("loss", "fake_loss", "gan_d", "gan_g", "lpips", "grad_norm", "normaliser"):
        assert torch.isfinite(torch.tensor(stats[key])), (key, stats)
    assert stats["grad_norm"] > 0
    moved = [n for n, p in trainer.student.named_parameters() if not torch.equal(p, before[n])]
    assert "input_blocks.0.0.weight" in moved and "out.2.weight" in moved
    assert torch.equal(trainer.teacher.state_dict()["out.2.weight"], teacher_before)
    assert not any(p.requires_grad for p in trainer.teacher.parameters())
    assert all(p.grad is None for p in trainer.autoencoder.parameters())
