"""Issue #10's converge-and-stay experiment: does the RSD student reach the teacher's conditional
distribution and stay there, or only pass through it?

``python -m rsd_mini.converge --out runs/converge/rsd distill.fake_lr_ratio=2.5 train.iterations=600``
trains ``rsd-tiny`` with the given overrides (resumable, :class:`rsd_mini.train.TrainingRun`) and
keeps the student's EMA weights every ``--every`` updates (float16, ``OUT/snapshots/``). Then it
measures every snapshot against the teacher on ``--images`` held-out crops with ``--seeds``
seeds (:func:`rsd_mini.compare.distance_to_teacher`, the floor beside it), applies the goal
(:func:`rsd_mini.compare.converge_and_stay`) and writes ``OUT/convergence.json`` and
``OUT/convergence.png`` (and copies them to ``--figures`` as ``converge_<run folder name>.*``).

Snapshots are measured after training, not during it, so the curve costs no training time and
can be redone with other seeds or crops from the same run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from rsd_mini.compare import (TEACHER, TEACHER_NAME, converge_and_stay, copy_outputs, distance_to_teacher,
                              draw_seeds, method_metrics, plot_curves, teacher_reference, train_with_curve)
from rsd_mini.config import apply_overrides, load_config, to_dict
from rsd_mini.hub import from_state, load
from rsd_mini.reproduce import one_step_sampler, validation_batch
from rsd_mini.train import pixel_space_pair


def train(out: Path, overrides: list[str], every: int, teacher) -> None:
    """``rsd-tiny`` + ``overrides`` from the shipped teacher in ``out``, an EMA snapshot every
    ``every`` updates (and at step 0); resumes a stopped run."""
    from rsd_mini.distill_train import RSDTrainer

    config = apply_overrides(load_config("rsd-tiny"),
                             [*overrides, f"distill.teacher={TEACHER_NAME}", f"train.out_dir={out}"])
    trainer = RSDTrainer(config, teacher=teacher.network, device="cpu")

    def snapshot(trainer) -> dict:
        path = trainer.out_dir / "snapshots" / f"step_{trainer.step:04d}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.half() for k, v in trainer.ema_model.state_dict().items()}, path)
        return {}

    train_with_curve(trainer, snapshot, every, progress=True)


def measure(run: Path, images: int, seeds: int, teacher) -> dict:
    """Every snapshot of ``run`` against the teacher (reference cached in ``run/..``): the
    curve, the goal, the last snapshot's full metrics and the teacher's."""
    config = load_config(run / "config.yaml")
    batch = validation_batch(config, images)
    x0, y = pixel_space_pair(batch, config.data.scale)
    reference = teacher_reference(teacher, y, seeds, run.parent / f"teacher_reference_{images}x{seeds}.pt")
    seconds = {row["step"]: row["train_seconds"]
               for row in map(json.loads, (run / "curve.jsonl").read_text().splitlines())}
    rows, samples, per_image = [], None, 0.0
    for path in sorted((run / "snapshots").glob("step_*.pt")):
        step = int(path.stem.split("_")[1])
        student = from_state({"config": to_dict(config), "ema": torch.load(path, weights_only=True)})
        sampler = one_step_sampler(student.network, teacher.process, student.noise_channels)
        samples, per_image = draw_seeds(sampler, y, list(range(seeds)))
        rows.append(dict(step=step, train_seconds=seconds.get(step), **distance_to_teacher(samples, reference, x0)))
        print(f"step {step}: distance / floor {rows[-1]['patch_ratio']:.3f}", flush=True)
    if samples is None:
        raise ValueError(f"run={run}: no snapshots in {run / 'snapshots'}; train first")
    scale = config.data.scale
    return dict(run=str(run), distill=dict(vars(config.distill)), lr=config.optim.lr,
                iterations=config.train.iterations, ema_rate=config.train.ema_rate, images=images, seeds=seeds,
                goal=converge_and_stay(rows), final=method_metrics(samples, per_image, 1, batch, scale, reference),
                teacher=method_metrics(reference["floor"], reference["seconds_per_image"], teacher.process.steps,
                                       batch, scale, reference),
                curve=rows)


def write(summary: dict, out: Path, figures: Path | None) -> None:
    """``convergence.json`` and ``convergence.png`` in ``out`` (and as ``converge_<out's name>.*``
    in ``figures``: ``converge_rsd.*`` for the default ``runs/converge/rsd``)."""
    (out / "convergence.json").write_text(json.dumps(summary, indent=1))
    fig = plot_curves({"rsd": summary["curve"]}, {"rsd": "RSD student (EMA)"})
    fig.savefig(out / "convergence.png", dpi=110, bbox_inches="tight")
    copy_outputs(out, figures, {f"convergence.{suffix}": f"converge_{out.name}.{suffix}" for suffix in ("json", "png")})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rsd_mini.converge", description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="rsd-tiny overrides SECTION.KEY=VALUE")
    parser.add_argument("--out", type=Path, default=Path("runs/converge/rsd"), help="run folder (resumed)")
    parser.add_argument("--every", type=int, default=25, help="updates between snapshots")
    parser.add_argument("--images", type=int, default=16, help="held-out crops measured")
    parser.add_argument("--seeds", type=int, default=8, help="seeds per model and per teacher set")
    parser.add_argument("--figures", type=Path, default=None, help="also copy the outputs here")
    parser.add_argument("--measure-only", action="store_true", help="skip training; measure the snapshots")
    args = parser.parse_args(argv)
    teacher = load(TEACHER)
    if not args.measure_only:
        train(args.out, args.overrides, args.every, teacher)
    summary = measure(args.out, args.images, args.seeds, teacher)
    write(summary, args.out, args.figures)
    print(json.dumps(summary["goal"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
