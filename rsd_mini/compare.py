"""One command that compares the one-step methods distilled from the same tiny teacher.

``python -m rsd_mini compare --preset tiny --out runs/compare`` trains what is missing and
resumes what stopped (each method in ``OUT/<method>/``, :class:`rsd_mini.train.TrainingRun`),
probing every ``--every`` updates how far the method's conditional distribution is from the
teacher's (:func:`rsd_mini.metrics.conditional_distance`, beside its floor), then evaluates
every method on the held-out crops with S seeds each and writes ``compare.json``,
``compare.md``, ``compare_curves.png`` and ``compare_samples.png``. ``--jobs 2`` trains two
methods at once in single-threaded processes (what a 2-core machine does best with networks this
small); the evaluation then runs in the calling process.

Methods (all from the shipped ``tiny-teacher``, on the same data and batches):

* ``teacher``: the T = 15 ancestral steps (the reference; its distance is the floor);
* ``teacher_1step`` and ``bicubic``: no training, the conditional-mean guess and the input;
* ``rsd`` (the ``rsd-tiny`` preset), ``rsd_n4`` (N = 4 nodes), ``vsd`` (ResShift-VSD, RSD
  Alg. 2), ``rsd_gan`` (λ₂ = 3·10⁻³, the bottleneck discriminator; RSD Eq. 13);
* ``regression`` (MSE to the ground truth: lands on the conditional mean) and ``sinsr``
  (SinSR's losses: lands on the teacher's deterministic ODE map).

The budget is matched in network passes: each method trains for its preset's length, and the
presets are sized so that every method makes about 2,400 forward or backward passes of the tiny
network on batches of 8 (``rsd-tiny``: 200 iterations of 12 passes; ``sinsr-tiny``: 110 of 22;
``regression-tiny``: 1,200 of 2; see :mod:`rsd_mini.config` and :data:`PASSES_PER_ITERATION`;
the variants of ``rsd-tiny`` keep its 200 iterations, so VSD makes 2,000 and the GAN head adds
partial passes that are not counted). Wall time is not matched; the table
reports each method's training seconds beside it. ``--iterations N`` overrides every method's
length with the same N student updates (for smoke tests and budget sweeps).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from rsd_mini import metrics
from rsd_mini.config import DistillConfig, RegressionRunConfig, SinSRRunConfig, apply_overrides, load_config
from rsd_mini.distill_train import RSDTrainer
from rsd_mini.errors import int_at_least
from rsd_mini.regression import RegressionTrainer
from rsd_mini.reproduce import Sampler, bicubic_sampler, one_step_sampler, teacher_sampler, validation_batch
from rsd_mini.sinsr import SinSRTrainer
from rsd_mini.train import pixel_space_pair

#: The shipped teacher every method is distilled from (present in a fresh clone), as the configs
#: record it (relative to the repository) and as a file.
TEACHER_NAME = "data/checkpoints/tiny_teacher.pt"
TEACHER = Path(__file__).resolve().parent.parent / TEACHER_NAME
#: Seeds of the teacher's reference and floor sets; models draw seeds 0..S−1 (never shared, so a
#: model's noise is not coupled to the reference's).
REFERENCE_SEED, FLOOR_SEED = 10_000, 20_000
#: Network passes (forward or backward, each counted once) of one iteration of each method, for
#: the budget column (:mod:`rsd_mini.config` sizes the presets with them). RSD, K = 2: per fake
#: step a student forward and a fake forward and backward, then a student step with student,
#: teacher and fake forwards and backwards through all three (7 + 5). VSD's stop-gradients leave
#: one backward in the student step (7 + 3). SinSR: 15 teacher calls for the target, 4 student
#: forwards and 3 backwards. The GAN head's partial passes (the fake's encoder on real and
#: generated images) are not counted: ``None``.
PASSES_PER_ITERATION = {"rsd": 12, "rsd_n4": 12, "vsd": 10, "rsd_gan": None, "regression": 2, "sinsr": 22}


@dataclass(frozen=True)
class Method:
    """A trained method: its preset, overrides and label."""

    preset: str
    overrides: tuple[str, ...]
    label: str


METHODS: dict[str, Method] = {
    "rsd": Method("rsd-tiny", (), "RSD (rsd-tiny)"),
    "rsd_n4": Method("rsd-tiny", ("distill.nodes=4",), "RSD, N=4 nodes"),
    "vsd": Method("rsd-tiny", ("distill.variant=vsd",), "ResShift-VSD"),
    "rsd_gan": Method("rsd-tiny", ("distill.gan_weight=0.003",), "RSD + GAN (λ₂=3e-3)"),
    "regression": Method("regression-tiny", (), "regression (MSE)"),
    "sinsr": Method("sinsr-tiny", (), "SinSR"),
}
#: Methods without training, evaluated beside them.
BASELINES = {"teacher": "teacher, 15 steps", "teacher_1step": "teacher, one call (MMSE)", "bicubic": "bicubic ↑4"}


# --------------------------------------------------------------------- seed sets and the reference
@torch.no_grad()
def draw_seeds(sampler: Sampler, y: Tensor, seeds: list[int], chunk: int = 8) -> tuple[Tensor, float]:
    """``sampler`` on all inputs ``y`` once per seed (a generator per seed, shared by the chunks):
    (S, B, 3, H, W) and the wall seconds per image."""
    start = time.perf_counter()
    draws = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        draws.append(torch.cat([sampler(piece, generator) for piece in y.split(chunk)]))
    return torch.stack(draws), (time.perf_counter() - start) / (len(seeds) * len(y))


def teacher_reference(teacher, y: Tensor, seeds: int, cache: Path, workers: int = 1) -> dict:
    """Two independent S-seed sets of the teacher's T-step samples (the reference and the floor)
    and its seconds per image, cached in ``cache`` (15 NFE each: the expensive part).

    ``workers`` 2: the two sets are drawn side by side in two threads of this process (torch's
    operators release the GIL, so at one torch thread each they use two cores); the samples are
    the same as one after the other (each set has its own generators), the seconds per image are
    then those of the reference set with the floor set running on the other core."""
    key = dict(seeds=seeds, images=len(y), inputs=float(y.double().sum()))
    if cache.is_file():
        stored = torch.load(cache, weights_only=True)
        if stored["key"] == key:
            return stored
    sampler = teacher_sampler(teacher.network, teacher.process)
    seed_sets = ([REFERENCE_SEED + s for s in range(seeds)], [FLOOR_SEED + s for s in range(seeds)])
    with ThreadPoolExecutor(min(workers, 2)) as pool:
        (reference, seconds), (floor, _) = pool.map(lambda seed_set: draw_seeds(sampler, y, seed_set), seed_sets)
    stored = dict(key=key, reference=reference, floor=floor, seconds_per_image=seconds)
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(stored, cache)
    return stored


def distance_to_teacher(samples: Tensor, reference: dict, images: Tensor | None = None) -> dict[str, float]:
    """:func:`rsd_mini.metrics.conditional_distance` to the teacher, plus the high-frequency
    share of the samples and of the teacher's (all seeds), with a fixed projection seed. Given
    the ground-truth ``images`` of the reference's inputs, also
    :func:`rsd_mini.metrics.data_patch_distance` of the samples and of the teacher's (mean over
    seeds; the teacher's is computed once and kept in ``reference``) and their ratio
    ``data_ratio`` (< 1: the model's patches are closer to the data's than the teacher's are)."""
    result = metrics.conditional_distance(samples, reference["reference"], reference["floor"],
                                          torch.Generator().manual_seed(0))
    share = metrics.high_frequency_ratio(metrics.to_unit_range(samples.flatten(0, 1))).mean()
    teacher_share = metrics.high_frequency_ratio(metrics.to_unit_range(reference["reference"].flatten(0, 1))).mean()
    result.update(high_frequency_ratio=float(share), teacher_high_frequency_ratio=float(teacher_share),
                  high_frequency_ratio_to_teacher=float(share / teacher_share))
    if images is not None:
        directions = metrics.patch_directions(4, 64, torch.Generator().manual_seed(0))
        data = float(metrics.data_patch_distance(samples, images, directions).mean())
        if "teacher_data_distance" not in reference:  # the same for every model scored against it
            reference["teacher_data_distance"] = float(
                metrics.data_patch_distance(reference["reference"], images, directions).mean())
        teacher_data = reference["teacher_data_distance"]
        result.update(data_distance=data, teacher_data_distance=teacher_data, data_ratio=data / teacher_data)
    return result


# --------------------------------------------------------------------- training with a curve
def build_trainer(name: str, out: Path, iterations: int | None, teacher_network):
    """The trainer of method ``name`` in ``out/name`` from the shipped teacher (``teacher_network``,
    or ``None`` to load it from the config), ``iterations`` updates (``None``: the preset's)."""
    method = METHODS[name]
    config = load_config(method.preset)
    section = {DistillConfig: "distill", SinSRRunConfig: "sinsr", RegressionRunConfig: "regression"}[type(config)]
    overrides = [*method.overrides, f"{section}.teacher={TEACHER_NAME}", f"train.out_dir={out / name}"]
    if iterations is not None:
        overrides.append(f"train.iterations={iterations}")
    config = apply_overrides(config, overrides)
    trainer_class = {DistillConfig: RSDTrainer, SinSRRunConfig: SinSRTrainer, RegressionRunConfig: RegressionTrainer}
    return trainer_class[type(config)](config, teacher=teacher_network, device="cpu")


def trained_sampler(trainer) -> Sampler:
    """The trainer's EMA model, one step from the prior (pixel space: y₀ is the condition)."""
    return lambda y, generator: trainer.sample(y, y, generator)


def train_with_curve(trainer, probe: Callable[[object], dict], every: int, progress: bool = False) -> list[dict]:
    """Train to ``train.iterations`` in chunks of ``every`` updates, checkpointing and calling
    ``probe(trainer)`` after each (and at step 0); rows ``{step, train_seconds, **probe}`` go to
    ``out_dir/curve.jsonl``. Resumes from ``last.pt``; curve rows past it are dropped and redone."""
    if every < 1:
        raise ValueError(f"every={every}: expected >= 1 (updates between probes)")
    trainer.fit(progress=False, max_steps=0)  # resume (or start) and write config.yaml
    path = trainer.out_dir / "curve.jsonl"
    rows = [row for row in _read_rows(path) if row["step"] <= trainer.step]
    _write_rows(path, rows)
    while True:
        if not rows or rows[-1]["step"] != trainer.step:
            rows.append(dict(step=trainer.step, train_seconds=round(trainer.seconds, 1), **probe(trainer)))
            _write_rows(path, rows)
        if trainer.step >= trainer.config.train.iterations:
            return rows
        trainer.fit(progress=progress, resume=False, max_steps=every - trainer.step % every)


def _read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.is_file() else []


def _write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def converge_and_stay(rows: list[dict], threshold: float = 1.2, band: float = 0.1) -> dict:
    """Issue #10's goal for a distance curve (rows of :func:`train_with_curve`): the last
    ``patch_ratio`` (distance / floor) ≤ ``threshold``; the run at least twice as long as the
    first step at which it got there; over the last half every ratio within ``band`` of the last
    value; the last high-frequency share and diversity within ``band`` of the teacher's."""
    if not rows:
        raise ValueError("rows=[]: expected at least one curve row")
    last, end = rows[-1], rows[-1]["step"]
    reached = [r["step"] for r in rows if r["patch_ratio"] <= threshold]
    first = reached[0] if reached else None
    half = [r["patch_ratio"] for r in rows if r["step"] >= end / 2]
    drift = max(abs(v - last["patch_ratio"]) for v in half) / last["patch_ratio"]
    checks = dict(final_at_floor=last["patch_ratio"] <= threshold,
                  long_enough=first is not None and end >= 2 * first,
                  stays=drift <= band,
                  high_frequency=abs(last["high_frequency_ratio_to_teacher"] - 1) <= band,
                  diversity=abs(last["diversity_ratio"] - 1) <= band)
    return dict(checks, passed=all(checks.values()), first_reached=first, last_step=end,
                final_ratio=last["patch_ratio"], last_half_drift=drift,
                final_high_frequency_ratio=last["high_frequency_ratio_to_teacher"],
                final_diversity_ratio=last["diversity_ratio"])


# --------------------------------------------------------------------- evaluation and outputs
def method_metrics(samples: Tensor, seconds: float, nfe: int, batch: dict[str, Tensor], scale: int,
                   reference: dict) -> dict:
    """PSNR / SSIM / LR fidelity (means over seeds and images), the distance to the teacher and
    its floor, diversity and high-frequency share, NFE and seconds per image."""
    x0, _ = pixel_space_pair(batch, scale)
    s = samples.shape[0]
    unit = metrics.to_unit_range(samples.flatten(0, 1))
    target = metrics.to_unit_range(x0).repeat(s, 1, 1, 1)
    lq = metrics.to_unit_range(batch["lq"]).repeat(s, 1, 1, 1)
    return dict(distance_to_teacher(samples, reference, x0), psnr=float(metrics.psnr(unit, target).mean()),
                ssim=float(metrics.ssim(unit, target).mean()),
                lr_fidelity=float(metrics.lr_fidelity(unit, lq, scale).mean()), nfe=nfe, seconds_per_image=seconds)


def markdown_table(results: dict, labels: dict[str, str]) -> str:
    """The method table of ``compare.md``."""
    head = ("| method | NFE | PSNR (dB) | SSIM | LR fidelity (dB) | HF share | diversity | "
            "patch distance to teacher (floor) | ratio | distance to HR patches / teacher's | s / image | "
            "training s | updates | network passes |")
    lines = [head, "|" + "---|" * 14]
    for name, m in results.items():
        passes = m.get("network_passes")
        lines.append(f"| {labels[name]} | {m['nfe']} | {m['psnr']:.2f} | {m['ssim']:.3f} | {m['lr_fidelity']:.1f} | "
                     f"{m['high_frequency_ratio']:.4f} | {m['diversity']:.4f} | {m['patch_distance']:.4f} "
                     f"({m['patch_floor']:.4f}) | {m['patch_ratio']:.2f} | {m.get('data_ratio', float('nan')):.2f} | "
                     f"{m['seconds_per_image']:.4f} | "
                     f"{m.get('train_seconds', 0):.0f} | {m.get('steps_trained', '—')} | "
                     f"{'—' if passes is None else passes} |")
    return "\n".join(lines) + "\n"


def plot_curves(curves: dict[str, list[dict]], labels: dict[str, str]):
    """Distance to the teacher over training (ratio to the floor), the HF share and the diversity
    relative to the teacher's (and, when every curve has it, the distance to the data's patches
    relative to the teacher's), one line per method."""
    from matplotlib.figure import Figure

    keys = [("patch_ratio", "patch distance / floor"), ("high_frequency_ratio_to_teacher", "HF share / teacher's"),
            ("diversity_ratio", "diversity / teacher's")]
    if all("data_ratio" in rows[0] for rows in curves.values()):
        keys.append(("data_ratio", "distance to the HR images' patches / teacher's"))
    fig = Figure(figsize=(4.4 * len(keys), 3.8), layout="constrained")
    axes = fig.subplots(1, len(keys))
    for ax, (key, title) in zip(axes, keys):
        for name, rows in curves.items():
            ax.plot([r["step"] for r in rows], [r[key] for r in rows], marker=".", label=labels[name])
        ax.axhline(1.0, color="k", lw=0.8)
        if key == "patch_ratio":
            ax.axhline(1.2, color="k", lw=0.8, ls="--")
        elif key != "data_ratio":
            ax.axhspan(0.9, 1.1, color="0.9")
        ax.set_xlabel("student updates")
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=8)
    return fig


def sample_grid(samples: dict[str, Tensor], labels: dict[str, str], count: int = 2):
    """One row per method: two seeds of each of the first ``count`` inputs."""
    from rsd_mini import viz

    images = range(min(count, next(iter(samples.values())).shape[1]))
    rows = [[s[seed, i] for i in images for seed in (0, 1)] for s in samples.values()]
    titles = [f"image {i}, seed {seed}" for i in images for seed in (0, 1)]
    return viz.image_grid(rows, titles=titles, row_titles=[labels[n] for n in samples], size=1.6)


def train_in_parallel(out: Path, methods: list[str], iterations: int | None, every: int, seeds: int,
                      val_images: int | None, jobs: int) -> None:
    """Train (or resume) ``methods`` in up to ``jobs`` processes at once, one thread each
    (``--train-only``; each one's output in ``out/<method>/train.log``). On a few cores, single-
    threaded processes side by side use them better than one process with several threads on a
    network this small. Raises if any of them fails."""
    def one(name: str) -> int:
        command = [sys.executable, "-m", "rsd_mini.compare", "--train-only", "--out", str(out), "--methods", name,
                   "--every", str(every), "--seeds", str(seeds)]
        command += [] if iterations is None else ["--iterations", str(iterations)]
        command += [] if val_images is None else ["--val-images", str(val_images)]
        (out / name).mkdir(parents=True, exist_ok=True)
        with open(out / name / "train.log", "a") as log:
            return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"}).returncode

    with ThreadPoolExecutor(jobs) as pool:
        codes = dict(zip(methods, pool.map(one, methods)))
    failed = [name for name, code in codes.items() if code != 0]
    if failed:
        raise RuntimeError(f"training {failed} failed: see {out}/<method>/train.log")


def run(out: Path, methods: list[str], iterations: int | None, every: int, seeds: int,
        val_images: int | None, figures: Path | None = None, progress: bool = False, jobs: int = 1,
        train_only: bool = False) -> dict:
    """Train what is missing (``jobs`` > 1: that many methods at once, :func:`train_in_parallel`),
    evaluate every method, write the outputs; returns compare.json's content (``train_only``:
    stop after training, return the curves)."""
    from rsd_mini import hub

    start = time.perf_counter()
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"methods={unknown}: expected names from {list(METHODS)}")
    if seeds < 2:
        raise ValueError(f"seeds={seeds}: expected >= 2 (diversity and the floor need two draws)")
    out = Path(out)
    teacher = hub.load(TEACHER)
    config = load_config("rsd-tiny")
    batch = validation_batch(config, val_images)
    scale = config.data.scale
    _, y = pixel_space_pair(batch, scale)
    reference = teacher_reference(teacher, y, seeds, out / "teacher_reference.pt", workers=jobs)
    model_seeds = list(range(seeds))
    if jobs > 1 and len(methods) > 1:  # the reference is cached first: the processes share it
        train_in_parallel(out, methods, iterations, every, seeds, val_images, jobs)

    def probe(trainer) -> dict:
        return distance_to_teacher(draw_seeds(trained_sampler(trainer), y, model_seeds)[0], reference)

    curves, samples, results = {}, {}, {}
    for name in methods:
        trainer = build_trainer(name, out, iterations, teacher.network)
        curves[name] = train_with_curve(trainer, probe, every, progress)
        if train_only:
            continue
        samples[name], seconds = draw_seeds(trained_sampler(trainer), y, model_seeds)
        passes = PASSES_PER_ITERATION[name]
        results[name] = dict(method_metrics(samples[name], seconds, 1, batch, scale, reference),
                             train_seconds=round(trainer.seconds, 1), steps_trained=trainer.step,
                             network_passes=passes * trainer.step if passes else None)
    if train_only:
        return dict(curves=curves)
    baselines = {"teacher": (reference["floor"], reference["seconds_per_image"], teacher.process.steps),
                 "teacher_1step": (*draw_seeds(one_step_sampler(teacher.network, teacher.process, 0), y,
                                               model_seeds), 1),
                 "bicubic": (*draw_seeds(bicubic_sampler, y, model_seeds), 0)}
    for name, (images, seconds, nfe) in baselines.items():
        samples[name] = images
        results[name] = method_metrics(images, seconds, nfe, batch, scale, reference)
    labels = {**{n: m.label for n, m in METHODS.items()}, **BASELINES}
    order = [n for n in ("teacher", *methods, "teacher_1step", "bicubic")]
    budget = (dict(rule="network passes: each preset's own length", probe_every=every) if iterations is None else
              dict(rule=f"{iterations} student updates for every method", probe_every=every))
    summary = dict(command="python -m rsd_mini compare", teacher=str(TEACHER.name), num_images=len(y), seeds=seeds,
                   budget=budget,
                   methods={n: results[n] for n in order}, curves=curves,
                   total_seconds=round(time.perf_counter() - start, 1))
    _write_outputs(out, summary, {n: samples[n] for n in order}, labels, figures)
    return summary


def _write_outputs(out: Path, summary: dict, samples: dict[str, Tensor], labels: dict[str, str],
                   figures: Path | None) -> None:
    (out / "compare.json").write_text(json.dumps(summary, indent=1))
    (out / "compare.md").write_text(markdown_table(summary["methods"], labels))
    plot_curves(summary["curves"], labels).savefig(out / "compare_curves.png", dpi=110, bbox_inches="tight")
    sample_grid(samples, labels).savefig(out / "compare_samples.png", dpi=110, bbox_inches="tight")
    copy_outputs(out, figures, {name: name for name in ("compare.json", "compare.md", "compare_curves.png",
                                                        "compare_samples.png")})


def copy_outputs(out: Path, figures: Path | None, names: dict[str, str]) -> None:
    """Copy each ``out/<name>`` to ``figures/<names[name]>`` (the shipped results); nothing when
    ``figures`` is None."""
    if figures is None:
        return
    figures.mkdir(parents=True, exist_ok=True)
    for name, shipped in names.items():
        shutil.copyfile(out / name, figures / shipped)


# --------------------------------------------------------------------- command line
def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m rsd_mini compare``."""
    parser.add_argument("--preset", default="tiny", choices=["tiny"], help="the scale (only tiny so far)")
    parser.add_argument("--out", type=Path, default=Path("runs/compare"), help="run folder (resumed)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--iterations", type=int, default=None,
                        help="student updates for every method (default: each preset's own length, "
                             "which matches network passes, about 2,400 per method)")
    parser.add_argument("--every", type=int, default=25, help="updates between distance probes")
    parser.add_argument("--seeds", type=int, default=8, help="seeds S per method and per teacher set")
    parser.add_argument("--val-images", type=int, default=None, help="held-out crops (default all)")
    parser.add_argument("--figures", type=Path, default=None, help="also copy the outputs here (e.g. figures)")
    parser.add_argument("--jobs", type=int_at_least(1), default=1,
                        help="methods trained at once, one thread each (2 on a 2-core machine); default 1")
    parser.add_argument("--train-only", action="store_true", help=argparse.SUPPRESS)


def run_compare(args: argparse.Namespace) -> int:
    summary = run(args.out, args.methods, args.iterations, args.every, args.seeds, args.val_images, args.figures,
                  progress=True, jobs=args.jobs, train_only=args.train_only)
    if args.train_only:
        return 0
    print(markdown_table(summary["methods"], {**{n: m.label for n, m in METHODS.items()}, **BASELINES}))
    print(f"total {summary['total_seconds']:.0f} s; outputs in {args.out}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m rsd_mini.compare")
    add_compare_arguments(parser)
    raise SystemExit(run_compare(parser.parse_args()))
