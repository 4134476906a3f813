"""The tiny end-to-end reproduction: the README's main command (``make reproduce``).

Trains (or resumes) the tiny ResShift teacher on the built-in mini dataset, samples it with all
T ancestral steps on the held-out validation crops, and writes the metrics (Y-channel PSNR /
SSIM against the bicubic-upsampled LR) and the figures. Later issues add the RSD student.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from rsd_mini.config import TeacherConfig, apply_overrides, load_config
from rsd_mini.diffusion import ResShift
from rsd_mini.metrics import psnr, ssim, to_unit_range
from rsd_mini.train import TeacherTrainer, build_dataset, pixel_space_pair, stack_items


def validation_batch(config: TeacherConfig, limit: int | None = None) -> dict[str, Tensor]:
    """All (or the first ``limit``) validation crops of the configured dataset, stacked."""
    dataset = build_dataset(config.data, config.train.seed, split="val")
    if dataset is None:
        raise ValueError("data.val_root=None: a validation folder is needed to evaluate")
    count = len(dataset) if limit is None else min(limit, len(dataset))
    return stack_items(dataset, list(range(count)))


@torch.no_grad()
def evaluate_teacher(model: nn.Module, process: ResShift, batch: dict[str, Tensor], scale: int,
                     seed: int = 0, chunk: int = 8) -> dict:
    """PSNR/SSIM (Y channel) of T-step pixel-space teacher samples and of the bicubic input.

    Returns per-image lists, their means, the samples, and the wall time per image.
    """
    x0, y = pixel_space_pair(batch, scale)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    samples = torch.cat([process.sample(model, y_chunk, generator=generator, latent=False)
                         for y_chunk in y.split(chunk)])
    seconds = (time.perf_counter() - start) / len(y)
    target = to_unit_range(x0)
    result = {"num_images": len(y), "nfe": process.steps, "seconds_per_image": seconds}
    for name, image in (("bicubic", y), ("teacher", samples)):
        image = to_unit_range(image)
        result[name] = {"psnr": psnr(image, target).tolist(), "ssim": ssim(image, target).tolist()}
        for metric in ("psnr", "ssim"):
            values = result[name][metric]
            result[name][f"mean_{metric}"] = sum(values) / len(values)
    result["samples"], result["bicubic_images"], result["hr_images"] = samples, y, x0
    return result


def train_tiny_teacher(out_dir: Path, overrides: list[str] = (), progress: bool = True) -> TeacherTrainer:
    """Train (or resume, or just load when finished) the tiny teacher in ``out_dir``."""
    config = apply_overrides(load_config("tiny"), [*overrides, f"train.out_dir={out_dir}"])
    trainer = TeacherTrainer(config, device="cpu")
    trainer.fit(progress=progress)
    return trainer


def run_tiny(out: Path, figures: Path, overrides: list[str] = (), progress: bool = True,
             val_images: int | None = None) -> dict:
    """Teacher training → evaluation on the held-out crops (all, or the first ``val_images``)
    → figures; returns the summary written to JSON."""
    out, figures = Path(out), Path(figures)
    figures.mkdir(parents=True, exist_ok=True)
    trainer = train_tiny_teacher(out / "teacher", overrides, progress)
    config = trainer.config
    batch = validation_batch(config, val_images)
    evaluation = evaluate_teacher(trainer.ema_model.eval(), trainer.diffusion, batch,
                                  config.data.scale, seed=config.train.seed)
    summary = _summary(trainer, evaluation)
    (out / "teacher_metrics.json").write_text(json.dumps(summary, indent=1))
    (figures / "tiny_teacher_metrics.json").write_text(json.dumps(summary, indent=1))
    _write_figures(trainer, batch, evaluation, figures)
    return summary


def _summary(trainer: TeacherTrainer, evaluation: dict) -> dict:
    keep = ("num_images", "nfe", "seconds_per_image", "bicubic", "teacher")
    return dict({k: evaluation[k] for k in keep}, steps_trained=trainer.step,
                train_seconds=round(trainer.seconds, 1), checkpoint=str(trainer.checkpoint_path))


def _write_figures(trainer: TeacherTrainer, batch: dict[str, Tensor], evaluation: dict,
                   figures: Path) -> None:
    from rsd_mini import viz

    shown = slice(0, 6)
    fig = viz.image_grid(
        [evaluation["bicubic_images"][shown], evaluation["samples"][shown], evaluation["hr_images"][shown]],
        row_titles=["bicubic ↑4 (input y₀)", f"tiny teacher, T={trainer.diffusion.steps} steps", "ground truth"])
    fig.savefig(figures / "tiny_teacher_samples.png", dpi=120, bbox_inches="tight")
    viz.plot_loss_curve(trainer.out_dir / "log.jsonl").savefig(
        figures / "tiny_teacher_loss.png", dpi=120, bbox_inches="tight")
    x0, y = pixel_space_pair({k: v[:1] for k, v in batch.items()}, trainer.config.data.scale)
    _, steps = trainer.diffusion.sample(trainer.ema_model, y, latent=False, return_trajectory=True,
                                        generator=torch.Generator().manual_seed(0))
    viz.plot_trajectory(steps).savefig(figures / "tiny_teacher_trajectory.png", dpi=120,
                                       bbox_inches="tight")
