"""Where a multistep RSD student stands at each of its nodes (issue #10: why N = 4 falls short
at tiny scale).

A student trained with N nodes t₁ < … < t_N = T (RSD §3.3) is called at node t_n on x_{t_n} ~
q(·|x₀, y₀), made from the *real* image, and its outputs x̂₀^{t_n} (over x_{t_n} and ε₁) are
pushed towards the teacher's conditional distribution p(x₀|y₀) — the same target at every node.
For each node this module draws S seeds of that one call (a fresh x_{t_n} and ε₁ per seed) on
held-out crops and reports their distance to the teacher's T-step samples over the floor
(:func:`rsd_mini.compare.distance_to_teacher`, the reference of :func:`rsd_mini.compare.teacher_reference`),
with diversity, detail and how much of x_{t_n}'s noise the output keeps (:func:`noise_kept`),
beside the teacher's own one call f(x_{t_n}) from the same inputs. The share of the student's
updates spent at each node (1/N: nodes are drawn uniformly) goes with it.

``python -m rsd_mini.per_node runs/compare/rsd_n4/last.pt runs/compare/rsd/last.pt --figures figures``
writes ``per_node.json`` and ``per_node.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import Tensor

from rsd_mini.compare import TEACHER, copy_outputs, distance_to_teacher, draw_seeds, teacher_reference
from rsd_mini.config import load_config
from rsd_mini.distill import multistep_nodes, student_call
from rsd_mini.reproduce import validation_batch
from rsd_mini.train import pixel_space_pair


def node_call(process, network, index: int, noise_channels: int, x0: Tensor, y: Tensor, noise: Tensor,
              generator: torch.Generator) -> Tensor:
    """One call of ``network`` (a student with ``noise_channels`` ≥ 1, or the teacher with 0) at
    timestep index ``index`` on x_t = q(x₀, y₀, ``noise``), clamped to [−1, 1] as the samplers do."""
    x_t = process.q_sample(x0, y, index, noise)
    return student_call(process, network, x_t, index, y, noise_channels, generator, latent=False).clamp(-1, 1)


def node_sampler(process, network, index: int, noise_channels: int):
    """:func:`node_call` with fresh noise, as a :data:`rsd_mini.compare.Sampler` over
    ``cat([y₀, x₀], dim=1)`` (:func:`draw_seeds` chunks one tensor, so each crop's y₀ and real x₀
    travel together)."""
    def sample(both: Tensor, generator: torch.Generator) -> Tensor:
        y, x0 = both.chunk(2, dim=1)
        noise = torch.randn(x0.shape, generator=generator)
        return node_call(process, network, index, noise_channels, x0, y, noise, generator)
    return sample


@torch.no_grad()
def noise_kept(process, network, index: int, noise_channels: int, x0: Tensor, y: Tensor, seed: int = 0) -> float:
    """How much of x_{t_n}'s forward noise the call passes into its output: the correlation of
    its error x̂₀ − x₀ with κ√η_t ε (one seed, all crops; 0 for a perfect denoiser, 1 for an error
    that is the noise itself)."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(x0.shape, generator=generator)
    error = node_call(process, network, index, noise_channels, x0, y, noise, generator) - x0
    return float(torch.corrcoef(torch.stack([error.flatten(), noise.flatten()]))[0, 1])


@torch.no_grad()
def measure(students: dict, nodes: int, images: int, seeds: int, cache: Path) -> dict:
    """At each of the ``nodes`` evenly placed nodes (``distill.multistep_nodes``): every student's
    one call and the teacher's, S seeds on ``images`` held-out crops of the ``rsd-tiny`` data,
    against the teacher's T-step reference (cached in ``cache``)."""
    from rsd_mini import hub

    if seeds < 2:
        raise ValueError(f"seeds={seeds}: expected >= 2 (diversity and the floor need two draws)")
    teacher = hub.load(TEACHER)
    config = load_config("rsd-tiny")
    batch = validation_batch(config, images)
    x0, y = pixel_space_pair(batch, config.data.scale)
    reference = teacher_reference(teacher, y, seeds, cache)
    models = {**{name: (s.network, s.noise_channels) for name, s in students.items()},
              "teacher_1step": (teacher.network, 0)}
    both, model_seeds, rows = torch.cat([y, x0], dim=1), list(range(seeds)), []
    for index in multistep_nodes(teacher.process.steps, nodes):
        row = dict(t=index + 1)
        for name, (network, channels) in models.items():
            samples, _ = draw_seeds(node_sampler(teacher.process, network, index, channels), both, model_seeds)
            row[name] = dict(distance_to_teacher(samples, reference),
                             noise_correlation=noise_kept(teacher.process, network, index, channels, x0, y))
        rows.append(row)
    return dict(nodes=[row["t"] for row in rows], images=len(y), seeds=seeds, rows=rows,
                update_share={str(row["t"]): 1 / len(rows) for row in rows})


def plot(summary: dict, labels: dict[str, str]):
    """Distance / floor, diversity / teacher's and detail / teacher's against the node t."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    keys = (("patch_ratio", "patch distance / floor"), ("diversity_ratio", "diversity / teacher's"),
            ("high_frequency_ratio_to_teacher", "HF share / teacher's"))
    t = [row["t"] for row in summary["rows"]]
    for ax, (key, title) in zip(axes, keys):
        for name, label in labels.items():
            ax.plot(t, [row[name][key] for row in summary["rows"]], marker="o", label=label)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set(title=title, xlabel="node t (x_t made from the real image)", xticks=t)
    axes[0].legend(fontsize=8)
    return fig


def main(argv: list[str] | None = None) -> int:
    from rsd_mini import hub

    parser = argparse.ArgumentParser(prog="python -m rsd_mini.per_node", description=__doc__.split("\n\n")[0])
    parser.add_argument("students", nargs="+", type=Path, help="student checkpoints (run last.pt or shipped)")
    parser.add_argument("--names", nargs="+", help="a name per checkpoint (default: its run folder, or its file name)")
    parser.add_argument("--nodes", type=int, default=4, help="N: the evenly placed nodes measured")
    parser.add_argument("--images", type=int, default=16, help="held-out crops")
    parser.add_argument("--seeds", type=int, default=8, help="seeds per model and per teacher set")
    parser.add_argument("--out", type=Path, default=Path("runs/per_node"), help="output folder")
    parser.add_argument("--figures", type=Path, default=None, help="also copy the outputs here")
    parser.add_argument("--reference", type=Path, default=None,
                        help="teacher reference cache (default OUT/teacher_reference_IMAGESxSEEDS.pt)")
    args = parser.parse_args(argv)
    cache = args.reference or args.out / f"teacher_reference_{args.images}x{args.seeds}.pt"
    names = args.names or [path.parent.name if path.stem == "last" else path.stem for path in args.students]
    if len(names) != len(args.students) or len(set(names)) != len(names):
        parser.error(f"--names {' '.join(names)}: expected {len(args.students)} different names, one per checkpoint")
    students = {f"student_{name}": hub.load(path) for name, path in zip(names, args.students)}
    summary = measure(students, args.nodes, args.images, args.seeds, cache)
    summary["students"] = {name: str(path) for name, path in zip(students, args.students)}
    labels = {**{name: f"student {name.removeprefix('student_')}, one call" for name in students},
              "teacher_1step": "teacher, one call f(x_t)"}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "per_node.json").write_text(json.dumps(summary, indent=1))
    plot(summary, labels).savefig(args.out / "per_node.png", dpi=110, bbox_inches="tight")
    copy_outputs(args.out, args.figures, {f"per_node.{suffix}": f"per_node.{suffix}" for suffix in ("json", "png")})
    for row in summary["rows"]:
        print(f"t={row['t']}: " + ", ".join(f"{n} {row[n]['patch_ratio']:.2f}" for n in labels), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
