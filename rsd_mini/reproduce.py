"""The tiny end-to-end reproduction: the README's main command (``make reproduce``).

1. Train (or resume, or load when finished) the tiny ResShift teacher on the mini dataset.
2. Distil it into a one-step RSD student (:mod:`rsd_mini.distill_train`).
3. Evaluate on the held-out validation crops: bicubic ↑4, the teacher with all T ancestral
   steps, the teacher's own one-step prediction x̂₀ = f*(x_T) and the student (1 step): Y-channel
   PSNR / SSIM, network calls (NFE) and wall time per image, measured in the same run.
4. Write the metrics JSON and the figures.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from rsd_mini.config import DistillConfig, TeacherConfig, apply_overrides, load_config
from rsd_mini.diffusion import ResShift
from rsd_mini.distill import one_step_sample
from rsd_mini.distill_train import RSDTrainer
from rsd_mini.metrics import high_frequency_ratio, lr_fidelity, psnr, ssim, to_unit_range
from rsd_mini.train import TeacherTrainer, build_dataset, pixel_space_pair, stack_items

#: ``sampler(y₀, generator) -> x̂₀`` in pixel space, [−1, 1].
Sampler = Callable[[Tensor, torch.Generator], Tensor]


def validation_batch(config: TeacherConfig | DistillConfig, limit: int | None = None) -> dict[str, Tensor]:
    """All (or the first ``limit``) validation crops of the configured dataset, stacked."""
    dataset = build_dataset(config.data, config.train.seed, split="val")
    if dataset is None:
        raise ValueError("data.val_root=None: a validation folder is needed to evaluate")
    count = len(dataset) if limit is None else min(limit, len(dataset))
    return stack_items(dataset, list(range(count)))


def teacher_sampler(model: nn.Module, process: ResShift) -> Sampler:
    """All T ancestral steps of the teacher (NFE = T)."""
    return lambda y, generator: process.sample(model, y, generator=generator, latent=False)


def one_step_sampler(model: nn.Module, process: ResShift, noise_channels: int) -> Sampler:
    """One call at t = T from the prior (NFE = 1): the RSD student (``noise_channels`` ≥ 1) or,
    with 0, the teacher's own x̂₀ prediction (the conditional-mean baseline)."""
    return lambda y, generator: one_step_sample(process, model, y, y, noise_channels, generator,
                                                latent=False)


def bicubic_sampler(y: Tensor, generator: torch.Generator) -> Tensor:
    """The input itself: y₀ = bicubic ↑ of the LR image (NFE = 0)."""
    return y


@torch.no_grad()
def evaluate(samplers: dict[str, tuple[Sampler, int]], batch: dict[str, Tensor], scale: int,
             seed: int = 0, chunk: int = 8) -> dict:
    """Y-channel PSNR / SSIM, the high-frequency share and the LR fidelity
    (:mod:`rsd_mini.metrics`) of each ``name: (sampler, nfe)`` against the HR crops.

    Every method gets a generator seeded with ``seed`` and the same chunks, and is timed in
    this run, so the wall times are comparable. Returns ``{"num_images", "methods": {name:
    {psnr, ssim, high_frequency_ratio, lr_fidelity (per image), their means, nfe,
    seconds_per_image}}, "images": {name: tensor}, "hr": tensor,
    "ground_truth_high_frequency_ratio"}``.
    """
    x0, y = pixel_space_pair(batch, scale)
    target = to_unit_range(x0)
    result = {"num_images": len(y), "methods": {}, "images": {}, "hr": x0,
              "ground_truth_high_frequency_ratio": float(high_frequency_ratio(target).mean())}
    for name, (sampler, nfe) in samplers.items():
        generator = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        images = torch.cat([sampler(y_chunk, generator) for y_chunk in y.split(chunk)])
        seconds = (time.perf_counter() - start) / len(y)
        unit = to_unit_range(images)
        scores = {"psnr": psnr(unit, target).tolist(), "ssim": ssim(unit, target).tolist(),
                  "high_frequency_ratio": high_frequency_ratio(unit).tolist(),
                  "lr_fidelity": lr_fidelity(unit, to_unit_range(batch["lq"]), scale).tolist()}
        scores.update({f"mean_{k}": sum(v) / len(v) for k, v in list(scores.items())})
        result["methods"][name] = dict(scores, nfe=nfe, seconds_per_image=seconds)
        result["images"][name] = images
    return result


def train_tiny_teacher(out_dir: Path, overrides: list[str] = (), progress: bool = True) -> TeacherTrainer:
    """Train (or resume, or just load when finished) the tiny teacher in ``out_dir``."""
    config = apply_overrides(load_config("tiny"), [*overrides, f"train.out_dir={out_dir}"])
    trainer = TeacherTrainer(config, device="cpu")
    trainer.fit(progress=progress)
    return trainer


def distill_tiny_student(teacher: TeacherTrainer, out_dir: Path, overrides: list[str] = (),
                         progress: bool = True) -> RSDTrainer:
    """Distil the tiny teacher's EMA weights with the ``rsd-tiny`` preset in ``out_dir``."""
    config = apply_overrides(load_config("rsd-tiny"), [
        *overrides, f"distill.teacher={teacher.checkpoint_path}", f"train.out_dir={out_dir}"])
    trainer = RSDTrainer(config, teacher=teacher.ema_model, device="cpu")
    trainer.fit(progress=progress)
    return trainer


def run_tiny(out: Path, figures: Path, overrides: list[str] = (), student_overrides: list[str] = (),
             progress: bool = True, val_images: int | None = None) -> dict:
    """Teacher → student → evaluation on the held-out crops (all, or the first
    ``val_images``) → metrics JSON and figures; returns the summary written to JSON."""
    out, figures = Path(out), Path(figures)
    figures.mkdir(parents=True, exist_ok=True)
    teacher = train_tiny_teacher(out / "teacher", overrides, progress)
    student = distill_tiny_student(teacher, out / "student", student_overrides, progress)
    batch = validation_batch(teacher.config, val_images)
    evaluation = evaluate(tiny_samplers(teacher.ema_model.eval(), student.ema_model.eval(), teacher.diffusion,
                                        student.config.distill.noise_channels),
                          batch, teacher.config.data.scale, seed=teacher.config.train.seed)
    summary = _summary(evaluation, teacher=_run_record(teacher), student=_run_record(student))
    for path in (out / "metrics.json", figures / "tiny_metrics.json"):
        path.write_text(json.dumps(summary, indent=1))
    write_figures(evaluation, teacher.ema_model, teacher.diffusion, batch, teacher.config.data.scale,
                  {"teacher": teacher.out_dir / "log.jsonl", "student": student.out_dir / "log.jsonl"}, figures)
    return summary


def tiny_samplers(teacher: nn.Module, student: nn.Module, process: ResShift,
                  noise_channels: int) -> dict[str, tuple[Sampler, int]]:
    """The methods the tiny reproduction compares, with their network calls."""
    return {"bicubic": (bicubic_sampler, 0),
            "teacher": (teacher_sampler(teacher, process), process.steps),
            "teacher_1step": (one_step_sampler(teacher, process, 0), 1),
            "student": (one_step_sampler(student, process, noise_channels), 1)}


def figures_from_shipped(figures: Path, val_images: int | None = None) -> dict:
    """Regenerate ``figures/tiny_*`` and ``tiny_metrics.json`` from the shipped checkpoints
    (no training): the same evaluation and figures as :func:`run_tiny`."""
    from rsd_mini import hub

    figures = Path(figures)
    figures.mkdir(parents=True, exist_ok=True)
    teacher, student = hub.load("tiny-teacher"), hub.load("tiny-student")
    batch = validation_batch(load_config("tiny"), val_images)
    evaluation = evaluate(tiny_samplers(teacher.network, student.network, teacher.process, student.noise_channels),
                          batch, teacher.scale, seed=teacher.meta["seed"])
    summary = _summary(evaluation, teacher=teacher.meta, student=student.meta)
    (figures / "tiny_metrics.json").write_text(json.dumps(summary, indent=1))
    logs = {name: hub.SHIPPED[f"tiny-{name}"].with_suffix(".log.jsonl") for name in ("teacher", "student")}
    write_figures(evaluation, teacher.network, teacher.process, batch, teacher.scale, logs, figures)
    return summary


def _run_record(run) -> dict:
    return dict(steps_trained=run.step, train_seconds=round(run.seconds, 1), checkpoint=str(run.checkpoint_path))


def _summary(evaluation: dict, **runs: dict) -> dict:
    methods = evaluation["methods"]
    return dict(num_images=evaluation["num_images"], methods=methods,
                ground_truth_high_frequency_ratio=evaluation["ground_truth_high_frequency_ratio"],
                speedup=methods["teacher"]["seconds_per_image"] / methods["student"]["seconds_per_image"],
                **runs)


def write_figures(evaluation: dict, teacher: nn.Module, process: ResShift, batch: dict[str, Tensor],
                  scale: int, logs: dict[str, Path], figures: Path) -> None:
    """``tiny_samples.png`` (bicubic / teacher / student / HR), ``tiny_{teacher,student}_loss.png``
    from the training logs, and ``tiny_teacher_trajectory.png``."""
    from rsd_mini import viz

    shown, images = slice(0, 6), evaluation["images"]
    fig = viz.image_grid(
        [images["bicubic"][shown], images["teacher"][shown], images["student"][shown], evaluation["hr"][shown]],
        row_titles=["bicubic ↑4 (input y₀)", f"teacher, T={process.steps} steps", "RSD student, 1 step",
                    "ground truth"])
    fig.savefig(figures / "tiny_samples.png", dpi=120, bbox_inches="tight")
    for name, keys in (("teacher", ("loss",)), ("student", ("loss", "fake_loss", "normaliser"))):
        viz.plot_training_curves(logs[name], keys).savefig(figures / f"tiny_{name}_loss.png", dpi=120,
                                                           bbox_inches="tight")
    _, y = pixel_space_pair({k: v[:1] for k, v in batch.items()}, scale)
    _, trajectory = process.sample(teacher, y, latent=False, return_trajectory=True,
                                   generator=torch.Generator().manual_seed(0))
    viz.plot_trajectory(trajectory).savefig(figures / "tiny_teacher_trajectory.png", dpi=120, bbox_inches="tight")
