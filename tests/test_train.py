"""The teacher trainer: schedule, EMA, pure per-step batches, exact resume, NaN stop, learning."""

import json
import math

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from rsd_mini.checkpoint import load_checkpoint, save_checkpoint
from rsd_mini.config import PRESETS, OptimConfig, apply_overrides
from rsd_mini.train import (TeacherTrainer, build_ema, build_scheduler,
                            make_batch, torch_settings)
from rsd_mini.unet import SwinUNet


class PairDataset(Dataset):
    """A stand-in for rsd_mini.data: fixed random HR crops and their 4× average-pooled LR."""

    def __init__(self, n=6, size=16, noisy=False):
        g = torch.Generator().manual_seed(123)
        self.hr = torch.rand(n, 3, size, size, generator=g) * 2 - 1
        self.noisy = noisy

    def __len__(self):
        return len(self.hr)

    def __getitem__(self, i):
        hr = self.hr[i] + (0.1 * torch.randn(self.hr[i].shape) if self.noisy else 0)  # global RNG
        return {"hr": hr, "lq": nn.functional.avg_pool2d(hr[None], 4)[0]}


def _config(out_dir, *overrides):
    """The tiny preset shrunk to 16² crops and a 2-level UNet, on one CPU thread."""
    return apply_overrides(PRESETS["tiny"], [
        "data.crop_size=16", "unet.image_size=16", "unet.channel_mult=[1,2]",
        "unet.num_res_blocks=[1,1]", "unet.attention_resolutions=[8]", "unet.swin_embed_dim=32",
        "train.batch_size=4", "train.microbatch=2", "train.log_every=2", "train.ema_rate=0.9",
        "train.num_threads=1",
        "optim.warmup_steps=2", f"train.out_dir={out_dir}", *overrides])


def _trainer(config, init_seed=0, **kwargs):
    torch.manual_seed(init_seed)
    return TeacherTrainer(config, dataset=kwargs.pop("dataset", PairDataset()), device="cpu", **kwargs)


# --------------------------------------------------------------------- learning-rate schedule
def _lrs(optim, iterations):
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=optim.lr)
    scheduler = build_scheduler(optimizer, optim, iterations)
    lrs = []
    for _ in range(iterations):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_linear_warmup_then_constant():
    lrs = _lrs(OptimConfig(lr=1e-3, warmup_steps=4, schedule="constant"), 7)
    assert lrs == pytest.approx([0.25e-3, 0.5e-3, 0.75e-3, 1e-3, 1e-3, 1e-3, 1e-3], rel=1e-12)


def test_warmup_then_cosine_to_min_lr():
    lr, low, warmup, iterations = 1e-3, 1e-4, 2, 12
    lrs = _lrs(OptimConfig(lr=lr, warmup_steps=warmup, schedule="cosine", min_lr=low), iterations)
    assert lrs[:warmup] == pytest.approx([lr / 2, lr])
    expected = [low + (lr - low) * (1 + math.cos(math.pi * (k - warmup) / (iterations - warmup))) / 2
                for k in range(warmup + 1, iterations + 1)]
    assert lrs[warmup:] == pytest.approx(expected, rel=1e-12)
    assert lrs[-1] == pytest.approx(low)


# --------------------------------------------------------------------- EMA
def test_ema_starts_at_the_weights_and_averages_with_the_rate():
    model = nn.Linear(3, 2)
    theta0 = [p.detach().clone() for p in model.parameters()]
    ema = build_ema(model, rate=0.9)
    steps = [theta0]
    for value in (1.0, -2.0):
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(value)
        ema.update_parameters(model)
        steps.append([p.detach().clone() for p in model.parameters()])
    for averaged, p0, p1, p2 in zip(ema.module.parameters(), *steps):
        assert torch.allclose(averaged, 0.9 * (0.9 * p0 + 0.1 * p1) + 0.1 * p2)
        assert not averaged.requires_grad


# --------------------------------------------------------------------- batches
def test_batch_is_a_pure_function_of_seed_and_step():
    dataset = PairDataset(noisy=True)
    torch.manual_seed(1)
    first = make_batch(dataset, 4, seed=0, step=5)
    global_state = torch.get_rng_state()
    torch.rand(10)  # a different global RNG state must not matter
    again = make_batch(dataset, 4, seed=0, step=5)
    assert torch.equal(first["hr"], again["hr"]) and torch.equal(first["lq"], again["lq"])
    assert not torch.equal(first["hr"], make_batch(dataset, 4, seed=0, step=6)["hr"])
    assert not torch.equal(first["hr"], make_batch(dataset, 4, seed=1, step=5)["hr"])
    torch.set_rng_state(global_state)
    make_batch(dataset, 4, seed=0, step=5)
    assert torch.equal(torch.get_rng_state(), global_state)  # ...and the batch leaves it alone
    # Without replacement while the dataset lasts: 6 items, batch of 6 → each index once.
    hr = make_batch(dataset, 6, seed=0, step=0)["hr"]
    assert len({tuple(x.flatten()[:4].tolist()) for x in hr}) == 6


# --------------------------------------------------------------------- exact resume
def _states(trainer):
    return {"model": trainer.model.state_dict(), "ema": trainer.ema_model.state_dict(),
            "adam": [s["exp_avg_sq"] for s in trainer.optimizer.state_dict()["state"].values()]}


def test_resume_gives_bit_identical_weights(tmp_path):
    overrides = ["train.iterations=6", "train.checkpoint_every=4", "optim.schedule=cosine"]
    full = _trainer(_config(tmp_path / "full", *overrides))
    initial = {k: v.clone() for k, v in full.model.state_dict().items()}
    full.fit(progress=False)

    config = _config(tmp_path / "split", *overrides)
    assert _trainer(config).fit(progress=False, max_steps=3)["step"] == 3
    assert load_checkpoint(tmp_path / "split" / "last.pt")["step"] == 3
    resumed = _trainer(config, init_seed=1)  # another init: everything must come from last.pt
    assert resumed.fit(progress=False)["step"] == 6

    assert any(not torch.equal(initial[k], v) for k, v in full.model.state_dict().items())
    for name, expected in _states(full).items():
        got = _states(resumed)[name]
        keys = expected.keys() if isinstance(expected, dict) else range(len(expected))
        assert all(torch.equal(expected[k], got[k]) for k in keys), f"{name} differs after resume"
    log = [json.loads(line) for line in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    full_log = [json.loads(line) for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 3, 4, 6]  # the interrupted window is logged at step 3
    assert [r["loss"] for r in log if r["step"] in (2, 6)] == [r["loss"] for r in full_log if r["step"] in (2, 6)]
    assert full_log[0]["lr"] == pytest.approx(config.optim.lr)  # the lr of update 2 (end of warm-up)


def test_resume_refuses_another_network(tmp_path):
    _trainer(_config(tmp_path, "train.iterations=1")).fit(progress=False)
    other = _trainer(_config(tmp_path, "train.iterations=2", "unet.model_channels=64"))
    with pytest.raises(ValueError, match="trained with unet="):
        other.fit(progress=False)


def test_resume_accepts_older_checkpoints_and_memory_only_changes(tmp_path):
    """A checkpoint written before ``diffusion.autoencoder`` / ``unet.checkpointing`` existed
    resumes (the keys count as defaults; the autoencoder is unused in pixel space), and so does
    one with activation checkpointing switched on, which changes memory, not the function."""
    config = _config(tmp_path, "train.iterations=1", "diffusion.autoencoder=null")
    _trainer(config).fit(progress=False)
    state = load_checkpoint(tmp_path / "last.pt")
    del state["config"]["diffusion"]["autoencoder"], state["config"]["unet"]["checkpointing"]
    save_checkpoint(tmp_path / "last.pt", state)
    result = _trainer(_config(tmp_path, "train.iterations=2", "unet.checkpointing=true")).fit(progress=False)
    assert result["step"] == 2


# --------------------------------------------------------------------- non-finite loss
class NaNAfter(nn.Module):
    """A stand-in x₀ predictor that starts returning NaN at its ``calls``-th call."""

    def __init__(self, calls):
        super().__init__()
        self.conv, self.calls, self.count = nn.Conv2d(6, 3, 3, padding=1), calls, 0

    def forward(self, x, t, lq=None):
        self.count += 1
        out = self.conv(torch.cat([x, lq], 1))
        return out * math.nan if self.count >= self.calls else out


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    config = _config(tmp_path, "train.iterations=6", "train.checkpoint_every=2", "train.microbatch=4")
    trainer = _trainer(config, model=NaNAfter(calls=4))  # one call per update: update 4 is NaN
    with pytest.raises(FloatingPointError, match=r"step 4: loss is nan.*last good checkpoint "
                                                 r".*last\.pt \(step 2\) was kept"):
        trainer.fit(progress=False)
    saved = load_checkpoint(tmp_path / "last.pt")
    assert saved["step"] == 2 and torch.isfinite(saved["model"]["conv.weight"]).all()


# --------------------------------------------------------------------- learning
def test_loss_decreases_on_a_fixed_batch(tmp_path):
    trainer = _trainer(_config(tmp_path, "optim.lr=1e-3", "optim.warmup_steps=0",
                               "optim.schedule=constant", "optim.grad_clip=null"))
    batch = make_batch(trainer.dataset, 4, seed=0, step=0)
    with torch_settings(deterministic=False, num_threads=1):
        losses = [trainer.train_step(batch, 0)["loss"] for _ in range(30)]
    assert all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) < 0.5 * sum(losses[:3]), losses


def test_latent_teacher_trains_on_vq_latents_and_validates_decoded(tmp_path):
    from rsd_mini.fullscale.autoencoder import VQAutoencoder, VQConfig

    torch.manual_seed(0)
    autoencoder = VQAutoencoder(VQConfig(n_embed=16, ch=32, ch_mult=(1, 1, 2), num_res_blocks=1))
    config = _config(tmp_path, "diffusion.latent=true", "diffusion.autoencoder=null", "unet.lq_residual=false",
                     "data.crop_size=64", "train.sample_every=2", "data.val_images=2", "train.iterations=2")
    trainer = _trainer(config, autoencoder=autoencoder, dataset=PairDataset(size=64))
    z0, z_y, lq = trainer.training_triple(make_batch(trainer.dataset, 2, seed=0, step=0))
    assert z0.shape == z_y.shape == lq.shape == (2, 3, 16, 16)  # f4 latents of 64² crops, pixel LR
    torch.testing.assert_close(z0, autoencoder.encode(make_batch(trainer.dataset, 2, seed=0, step=0)["hr"]))
    trainer.fit(progress=False)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert math.isfinite(log[-1]["val_psnr"]) and math.isfinite(log[0]["loss"])


def test_latent_run_without_autoencoder_says_what_is_needed(tmp_path):
    config = _config(tmp_path, "diffusion.latent=true", "diffusion.autoencoder=null")
    with pytest.raises(ValueError, match="diffusion.autoencoder=None: diffusion.latent=True needs the VQ-f4"):
        TeacherTrainer(config, model=nn.Identity(), dataset=PairDataset())
    config = _config(tmp_path, "diffusion.latent=true", f"diffusion.autoencoder={tmp_path / 'nope.pth'}")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        TeacherTrainer(config, model=nn.Identity(), dataset=PairDataset())
def test_default_model_is_the_configured_swin_unet(tmp_path):
    trainer = _trainer(_config(tmp_path))
    assert isinstance(trainer.model, SwinUNet) and trainer.model.config == trainer.config.unet
    assert isinstance(trainer.ema_model, SwinUNet) and trainer.ema_model is not trainer.model
    assert trainer.diffusion.steps == 15 and not trainer.amp  # AMP only on CUDA


def test_initial_weights_follow_the_seed_and_a_resume_trims_redone_log_rows(tmp_path):
    from rsd_mini.config import apply_overrides, load_config
    from rsd_mini.train import TeacherTrainer

    def trainer(seed, out):
        config = apply_overrides(load_config("tiny"), [f"train.seed={seed}", f"train.out_dir={out}",
                                                       "train.checkpoint_every=1", "train.log_every=1"])
        return TeacherTrainer(config, device="cpu")

    a, b, c = trainer(0, tmp_path / "a"), trainer(0, tmp_path / "b"), trainer(1, tmp_path / "c")
    first = "input_blocks.0.0.weight"
    assert torch.equal(a.model.state_dict()[first], b.model.state_dict()[first])
    assert not torch.equal(a.model.state_dict()[first], c.model.state_dict()[first])
    log = tmp_path / "a" / "log.jsonl"
    log.parent.mkdir(parents=True)
    a.save()  # step 0
    log.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 1.0}\n')  # rows of a lost run
    trainer(0, tmp_path / "a").fit(progress=False, max_steps=1)
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == [1]
