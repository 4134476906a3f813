"""A toy with a known answer: RSD on a two-dimensional "super-resolution" problem (RSD_SPEC §4).

x₀ = (u, v). The "LR image" y₀ = (u, 0) keeps u and loses v; given u, v follows a K-mode
Gaussian mixture with known centres, so the true conditional p(x₀ | y₀) can be sampled exactly.
The same ResShift process (:class:`rsd_mini.diffusion.ResShift`) runs on these 2-vectors, with
small MLPs as teacher, fake model and students, trained by the same functions as the images
(:mod:`rsd_mini.distill`). Each method is scored by the energy distance between its samples and
exact samples of p(x₀ | y₀), averaged over fixed y₀:

* the T-step teacher (the target of distillation);
* the RSD student (RSD Prop. 3.1 / Eq. 10: gradients through x̂₀ and through x_t into f*, f_φ);
* the ResShift-VSD student (RSD Alg. 2: stop-gradient through f*, f_φ);
* a regression student (MSE to x₀ from the prior: the conditional mean, which falls between
  the modes).

Expected ordering: RSD ≈ teacher ≪ regression.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from rsd_mini import distill
from rsd_mini.checkpoint import write_bytes_atomic
from rsd_mini.diffusion import ResShift


@dataclass(frozen=True)
class ToyConfig:
    """The toy problem and its training budget (the defaults run in about a minute at 1 thread).

    ``nodes`` = 1: the toy scores only the one-step map from the prior, so the students are
    trained at t = T alone; with the image default N = 4 a 128-wide MLP spends its capacity on
    the easier nodes near the data and converges much more slowly here (energy distance 0.22 vs
    0.04 after 600 iterations, seed 0, K = 3). ``student_lr`` 1e-3 for both optimisers."""

    seed: int = 0
    modes: int = 3
    mode_std: float = 0.05
    kappa: float = 1.0
    steps: int = 15
    hidden: int = 128
    batch: int = 256
    teacher_iterations: int = 4000
    student_iterations: int = 800
    fake_steps: int = 5
    nodes: int = 1
    sid_normalization: bool = True
    lr: float = 1e-3
    student_lr: float = 1e-3
    eval_conditions: int = 8
    eval_samples: int = 400

    def __post_init__(self):
        if not isinstance(self.modes, int) or not 2 <= self.modes <= 5:
            raise ValueError(f"modes={self.modes!r}: expected an integer in 2..5")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r}: expected a non-negative integer")
        for name in ("teacher_iterations", "student_iterations", "fake_steps", "batch", "eval_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r}: expected >= 1")


#: A shorter budget for tests and notebook 04.
FAST = dict(teacher_iterations=1500, student_iterations=400, eval_conditions=6, eval_samples=300)


# --------------------------------------------------------------------- the problem
def mode_centres(u: Tensor, modes: int) -> Tensor:
    """Centres (B, K) of v given u: K evenly spaced levels in [−0.8, 0.8], bent by 0.2·u²."""
    levels = torch.linspace(-0.8, 0.8, modes, dtype=u.dtype, device=u.device)
    return levels[None, :] + 0.2 * u[:, None] ** 2


def sample_prior(batch: int, config: ToyConfig, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(x₀, y₀) pairs: u ~ U(−1, 1), v | u ~ mixture; y₀ = (u, 0)."""
    u = torch.rand(batch, generator=generator) * 2 - 1
    return sample_conditional(u, config, generator), torch.stack([u, torch.zeros_like(u)], 1)


def sample_conditional(u: Tensor, config: ToyConfig, generator: torch.Generator) -> Tensor:
    """Exact samples x₀ ~ p(x₀ | y₀ = (u, 0)), one per entry of ``u``."""
    k = torch.randint(config.modes, u.shape, generator=generator)
    centre = mode_centres(u, config.modes).gather(1, k[:, None])[:, 0]
    v = centre + config.mode_std * torch.randn(u.shape, generator=generator)
    return torch.stack([u, v], 1)


def energy_distance(a: Tensor, b: Tensor) -> float:
    """Energy distance 2E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖ between two samples (N, D) (≥ 0)."""
    ab = torch.cdist(a, b).mean()
    aa, bb = torch.cdist(a, a).mean(), torch.cdist(b, b).mean()
    return float(2 * ab - aa - bb)


# --------------------------------------------------------------------- models
class ToyMLP(nn.Module):
    """x̂₀ = MLP([scaled x_t, y₀, ε₁, embedding(t)]) with the Denoiser signature of the UNet."""

    def __init__(self, hidden: int = 128, noise_dim: int = 0, steps: int = 15):
        super().__init__()
        self.noise_dim = noise_dim
        self.time = nn.Embedding(steps, 16)
        self.net = nn.Sequential(nn.Linear(4 + noise_dim + 16, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                 nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 2))

    def forward(self, x: Tensor, t: Tensor, lq: Tensor | None = None, noise: Tensor | None = None) -> Tensor:
        parts = [x, lq] + ([noise] if noise is not None else []) + [self.time(t)]
        return self.net(torch.cat(parts, 1))


def add_noise_input(teacher: ToyMLP, noise_dim: int = 1) -> ToyMLP:
    """The MLP version of :func:`rsd_mini.distill.add_noise_channels`: zero weights on ε₁."""
    student = ToyMLP(teacher.net[0].out_features, noise_dim, teacher.time.num_embeddings)
    state = teacher.state_dict()
    w = state["net.0.weight"]
    state["net.0.weight"] = torch.cat([w[:, :4], w.new_zeros(w.shape[0], noise_dim), w[:, 4:]], 1)
    student.load_state_dict(state)
    return student


# --------------------------------------------------------------------- training
def _adam(model: nn.Module, lr: float, betas=(0.9, 0.999)) -> torch.optim.Adam:
    return torch.optim.Adam(model.parameters(), lr=lr, betas=betas)


def train_teacher(process: ResShift, config: ToyConfig, generator: torch.Generator) -> ToyMLP:
    """The ResShift x₀ loss (RSD_SPEC §1) on fresh pairs every step."""
    model = ToyMLP(config.hidden, 0, config.steps)
    optimizer = _adam(model, config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.teacher_iterations)
    for _ in range(config.teacher_iterations):
        x0, y = sample_prior(config.batch, config, generator)
        loss = process.training_loss(model, x0, y, generator=generator).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval().requires_grad_(False)


def train_distilled(process: ResShift, teacher: ToyMLP, config: ToyConfig, generator: torch.Generator,
                    variant: str = "rsd", snapshots: int = 0, probe: Tensor | None = None) -> tuple[ToyMLP, list]:
    """RSD (or ResShift-VSD) distillation: K fake steps, then one student step, each on a fresh
    batch; two Adam optimisers with betas (0.9, 0.95) as in the paper (RSD_SPEC §4b).

    ``snapshots``: also return that many one-step sample sets on ``probe`` y₀ during training."""
    student = add_noise_input(teacher).requires_grad_(True).train()
    fake = copy.deepcopy(teacher).requires_grad_(True).train()
    opt_student, opt_fake = _adam(student, config.student_lr, (0.9, 0.95)), _adam(fake, config.student_lr, (0.9, 0.95))
    nodes = distill.multistep_nodes(config.steps, config.nodes)
    every = max(1, config.student_iterations // snapshots) if snapshots else 0
    history = []
    for step in range(config.student_iterations):
        for _ in range(config.fake_steps):
            x0, y = sample_prior(config.batch, config, generator)
            with torch.no_grad():
                x0_hat, _ = distill.student_predict(process, student, x0, y, y, nodes, 1, generator)
            loss = distill.fake_loss(process, fake, x0_hat, y, y, generator).mean()
            opt_fake.zero_grad(set_to_none=True)
            loss.backward()
            opt_fake.step()
        x0, y = sample_prior(config.batch, config, generator)
        x0_hat, _ = distill.student_predict(process, student, x0, y, y, nodes, 1, generator)
        loss = distill.student_loss(process, teacher, fake, x0_hat, y, y, generator, variant=variant,
                                    sid_normalization=config.sid_normalization).loss.mean()
        opt_student.zero_grad(set_to_none=True)
        loss.backward()
        opt_student.step()
        if every and (step + 1) % every == 0 and probe is not None:
            with torch.no_grad():
                history.append((step + 1, distill.one_step_sample(process, student, probe, probe, 1, generator)))
    return student.eval().requires_grad_(False), history


def train_regression(process: ResShift, config: ToyConfig, generator: torch.Generator) -> ToyMLP:
    """A one-step student trained with MSE to x₀ from the prior x_T: the conditional mean."""
    model = ToyMLP(config.hidden, 0, config.steps)
    optimizer = _adam(model, config.lr)
    for _ in range(config.teacher_iterations):
        x0, y = sample_prior(config.batch, config, generator)
        x_T = process.prior_sample(y, torch.randn(y.shape, generator=generator))
        t = torch.full((len(y),), config.steps - 1)
        loss = (model(process.scale_input(x_T, t), t, lq=y) - x0).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval().requires_grad_(False)


# --------------------------------------------------------------------- evaluation
def evaluation_conditions(config: ToyConfig) -> Tensor:
    """The fixed u values of the y₀ = (u, 0) the methods are scored on."""
    return torch.linspace(-0.9, 0.9, config.eval_conditions)


@torch.no_grad()
def method_samples(process: ResShift, models: dict, u: float, config: ToyConfig,
                   generator: torch.Generator) -> dict[str, Tensor]:
    """``eval_samples`` draws of each method (and exact ones) at y₀ = (u, 0)."""
    y = torch.tensor([[u, 0.0]]).expand(config.eval_samples, 2).contiguous()
    out = {"exact": sample_conditional(y[:, 0], config, generator),
           "teacher": process.sample(models["teacher"], y, generator=generator, clip=False)}
    for name in ("rsd", "vsd"):
        out[name] = distill.one_step_sample(process, models[name], y, y, 1, generator, clip=False)
    out["regression"] = distill.one_step_sample(process, models["regression"], y, y, 0, generator, clip=False)
    return out


def run_toy(config: ToyConfig, progress: bool = False, snapshots: int = 0) -> dict:
    """Train everything and score it; returns ``{teacher,rsd,vsd,regression,exact}_ed`` (mean
    energy distance to exact samples), per-condition values, samples at the first few
    conditions, optional RSD training snapshots, the config and the wall time."""
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # initial weights
        g = torch.Generator().manual_seed(config.seed)
        process = ResShift(config.steps, config.kappa, 0.04)
        teacher = train_teacher(process, config, g)
        probe_u = torch.full((config.eval_samples,), 0.5)
        probe = torch.stack([probe_u, torch.zeros_like(probe_u)], 1)
        models = {"teacher": teacher}
        models["rsd"], history = train_distilled(process, teacher, config, g, "rsd", snapshots, probe)
        models["vsd"], _ = train_distilled(process, teacher, config, g, "vsd")
        models["regression"] = train_regression(process, config, g)
        distances = {name: [] for name in ("exact", "teacher", "rsd", "vsd", "regression")}
        samples = {}
        eval_g = torch.Generator().manual_seed(config.seed + 1)
        for u in evaluation_conditions(config).tolist():
            drawn = method_samples(process, models, u, config, eval_g)
            reference = sample_conditional(torch.full((config.eval_samples,), u), config, eval_g)
            for name, values in drawn.items():
                distances[name].append(energy_distance(values, reference))
            samples[round(u, 3)] = drawn
    result = {f"{name}_ed": sum(v) / len(v) for name, v in distances.items()}
    result.update(per_condition=distances, samples=samples, snapshots=history, config=asdict(config),
                  seconds=time.perf_counter() - start)
    return result


# --------------------------------------------------------------------- CLI
def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", type=int, default=3, help="K, the number of modes of v given u (2..5)")
    parser.add_argument("--json", type=Path, help="write the energy distances here")
    parser.add_argument("--fast", action="store_true", help="the shorter budget of the tests and notebook 04")


def main(args: argparse.Namespace) -> int:
    try:
        config = ToyConfig(seed=args.seed, modes=args.modes, **(FAST if args.fast else {}))
    except ValueError as error:
        raise SystemExit(f"rsd_mini: error: {error}")
    result = run_toy(config)
    keys = ("exact_ed", "teacher_ed", "rsd_ed", "vsd_ed", "regression_ed")
    print(f"seed {config.seed}, K={config.modes}: " + ", ".join(f"{k} {result[k]:.4f}" for k in keys)
          + f" ({result['seconds']:.0f} s)")
    if args.json:
        summary = {k: result[k] for k in keys} | dict(seed=config.seed, modes=config.modes,
                                                       seconds=result["seconds"], config=result["config"])
        write_bytes_atomic(args.json, json.dumps(summary, indent=1).encode())
    return 0
