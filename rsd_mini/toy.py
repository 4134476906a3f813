"""A toy with a known answer: RSD on a two-dimensional "super-resolution" problem (RSD_SPEC §4).

x₀ = (u, v). The "LR image" y₀ = (u, 0) keeps u and loses v; given u, v follows a K-mode
Gaussian mixture with known centres, so the true conditional p(x₀ | y₀) can be sampled exactly
and the optimal teacher E[x₀ | x_t, y₀] is known in closed form (:class:`ExactDenoiser`).
The same ResShift process (:class:`rsd_mini.diffusion.ResShift`) runs on these 2-vectors, with
small MLPs as teacher, fake model and students, trained by the same functions as the images
(:mod:`rsd_mini.distill`). Each method is scored against exact samples of p(x₀ | y₀) at fixed
y₀ by the energy distance (ED) and by two mode measures (:func:`mode_measures`): the share of
samples within 3σ of a true mode and the mass of each mode against the truth (1/K each):

* the T-step teacher (ancestral sampler; the target of distillation), and its deterministic
  sampler (SinSR's, :func:`deterministic_sample`);
* the RSD student (RSD Prop. 3.1 / Eq. 10: gradients through x̂₀ and through x_t into f*, f_φ);
* the ResShift-VSD student (RSD Alg. 2: stop-gradient through f*, f_φ);
* the SinSR student: the teacher's deterministic map x_T → x₀ distilled into one step with
  SinSR's distillation, inverse and consistency-preserving losses (:mod:`rsd_mini.sinsr`);
* a regression student (MSE to x₀ from the prior: the conditional mean, which falls between
  the modes).

Expected: teacher ≈ RSD ≈ exact (ED near the floor, ≥ 90 % on a mode); regression off the
modes; SinSR at best the teacher's deterministic map, which a one-step MLP smooths at the
boundaries between the basins of the modes.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from rsd_mini import distill, sinsr
from rsd_mini.checkpoint import write_bytes_atomic
from rsd_mini.diffusion import ResShift
from rsd_mini.errors import int_at_least


@dataclass(frozen=True)
class ToyConfig:
    """The toy problem and its training budget (the defaults run in 6–8 minutes at 1 thread).

    ``kappa`` 0.5, not 1: at κ = 1 the 15-step ancestral sampler, even with the exact denoiser,
    feeds its last call (t = 1) inputs x₁ off the modes 9–21 % of the time (K = 3–5), where the
    forward process the teacher is trained on puts 2.7 %; the exact denoiser pulls them back by its
    closed form, a trained one cannot (it never saw them), and 15–18 % of the teacher's samples fell
    between the modes for K ≥ 4. At κ = 0.5 the sampler's x₁ is off 0–5 % of the time
    (:func:`exact_sampler_study`; the note of issue #10).
    Teacher (and regression): 4000 Adam steps at ``lr`` 1e-2 with cosine decay on the
    Fourier-feature :class:`ToyMLP` (``frequencies``; ``()`` gives the plain MLP on raw inputs,
    which smears the modes: 59 % of the teacher's samples on a mode, seed 0, K = 3, κ = 1). With
    the features, lr 1e-3 still left it too close to the identity at the low noise levels (82 % on
    a mode; 89.6 % at 3e-3, 93.1 % at 1e-2).
    ``student_iterations`` 3200 for each one-step student: at κ = 0.5 RSD's share on a mode kept
    rising with its budget (seed 0, K = 4: 88.4 % after 800, 90.6 % after 1600, 92.0 % after 3200).
    ``nodes`` = 1: the toy scores only the one-step map from the prior, so the students are
    trained at t = T alone; with the image default N = 4 a 128-wide MLP spends its capacity on
    the easier nodes near the data and converges much more slowly here (energy distance 0.22 vs
    0.04 after 600 iterations, seed 0, K = 3, before the Fourier features). ``student_lr`` 1e-3
    for the RSD/VSD student and fake model and for SinSR."""

    seed: int = 0
    modes: int = 3
    mode_std: float = 0.05
    kappa: float = 0.5
    steps: int = 15
    hidden: int = 128
    frequencies: tuple[float, ...] = (1, 2, 4, 8)
    batch: int = 256
    teacher_iterations: int = 4000
    student_iterations: int = 3200
    fake_steps: int = 5
    nodes: int = 1
    sid_normalization: bool = True
    lr: float = 1e-2
    student_lr: float = 1e-3
    eval_conditions: int = 8
    eval_samples: int = 400

    def process(self) -> ResShift:
        """The ResShift process of this toy: ``steps``, ``kappa``, minimum noise level 0.04."""
        return ResShift(self.steps, self.kappa, 0.04)

    def __post_init__(self):
        object.__setattr__(self, "frequencies", tuple(self.frequencies))  # JSON gives a list
        if not isinstance(self.modes, int) or not 2 <= self.modes <= 5:
            raise ValueError(f"modes={self.modes!r}: expected an integer in 2..5")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r}: expected a non-negative integer")
        if not isinstance(self.kappa, (int, float)) or not 0 < self.kappa < math.inf:
            raise ValueError(f"kappa={self.kappa!r}: expected a positive number (the noise scale κ)")
        for name in ("teacher_iterations", "student_iterations", "fake_steps", "batch", "eval_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r}: expected >= 1")


#: The default-budget result of seed 0, K = 3 that notebook 04 plots in fast mode, written by
#: ``python -m rsd_mini toy --seed 0 --modes 3 --json figures/toy_seed0_K3.json --samples``.
SHIPPED_RESULT = Path(__file__).resolve().parents[1] / "figures" / "toy_seed0_K3.json"

#: RSD training snapshots saved with ``--samples`` (after the one at step 0).
SNAPSHOTS = 8

#: A shorter budget for the tests.
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


def conditional_density(v: Tensor, u: float, config: ToyConfig) -> Tensor:
    """The exact density p(v | u) at the points ``v``: the equal-weight mixture of N(c_k(u), σ²)."""
    centres = mode_centres(torch.tensor([float(u)], dtype=v.dtype), config.modes)[0]
    z = (v[:, None] - centres[None, :]) / config.mode_std
    return torch.exp(-0.5 * z ** 2).mean(1) / (config.mode_std * math.sqrt(2 * math.pi))


def mode_measures(samples: Tensor, u: float, config: ToyConfig) -> tuple[float, Tensor]:
    """The share of samples on a true mode and the mass of each mode, at y₀ = (u, 0).

    Mode k is the point (u, c_k(u)) with spread σ = ``mode_std`` in v; a sample (N, 2) is on it
    when its Euclidean distance to that point is ≤ 3σ, which holds for 99.7 % of exact samples
    (the discs do not overlap: centres are ≥ 0.4 apart, 6σ = 0.3). Returns (on-mode share,
    masses (K,): the share of samples on each mode; they sum to the on-mode share)."""
    centres = mode_centres(torch.tensor([float(u)], dtype=samples.dtype), config.modes)[0]
    points = torch.stack([torch.full_like(centres, float(u)), centres], 1)
    near = torch.cdist(samples, points) <= 3 * config.mode_std
    return float(near.any(1).float().mean()), near.float().mean(0)


def mass_error(masses: Tensor) -> float:
    """Total variation between a method's (mode 1, …, mode K, off-mode) masses and the truth's
    (1/K each, none off): 0 for a perfect sampler, 1 − 1/K for a collapse onto one mode, 1 when
    every sample is off the modes."""
    off = 1 - float(masses.sum())
    return 0.5 * (float((masses - 1 / len(masses)).abs().sum()) + off)


class ExactDenoiser(nn.Module):
    """The teacher at its optimum: f(x_t, y₀, t) = E[x₀ | x_t, y₀] in closed form, with the
    model signature of :class:`ToyMLP` (it receives the scaled x_t of ``scale_input``).

    Given u, the v-coordinate of x_t is (1 − η_t) v₀ + κ√η_t ε (y₀ has v = 0; RSD Eq. 3), so
    mode k has likelihood N((1 − η_t) c_k, s²) with s² = (1 − η_t)² σ² + κ² η_t, and inside
    mode k, E[v₀ | x, k] = c_k + (1 − η_t) σ²/s² · (x − (1 − η_t) c_k); u₀ = u exactly.
    Sampling with it isolates the sampler's own error from the teacher's learning error."""

    def __init__(self, process: ResShift, config: ToyConfig):
        super().__init__()
        self.process, self.config = process, config

    def forward(self, x: Tensor, t: Tensor, lq: Tensor | None = None, noise: Tensor | None = None) -> Tensor:
        eta = self.process.etas.to(x.dtype)[t][:, None]
        kappa2, std2 = self.process.kappa ** 2, self.config.mode_std ** 2
        v_t = (x * torch.sqrt(eta * kappa2 + 1))[:, 1:]  # undo scale_input (latent=True)
        centres = mode_centres(lq[:, 0], self.config.modes)
        keep = 1 - eta
        s2 = keep ** 2 * std2 + kappa2 * eta
        responsibility = torch.softmax(-(v_t - keep * centres) ** 2 / (2 * s2), 1)
        inside = centres + keep * std2 / s2 * (v_t - keep * centres)
        return torch.stack([lq[:, 0], (responsibility * inside).sum(1)], 1)


# --------------------------------------------------------------------- models
class ToyMLP(nn.Module):
    """x̂₀ = MLP([x, y₀, sin(πf·x), cos(πf·x), sin(πf·y₀), cos(πf·y₀), ε₁, embedding(t)]), the
    Denoiser signature of the UNet; x is the scaled x_t.

    The Fourier features (``frequencies`` f) let a small MLP draw the sharp staircase that
    E[x₀ | x_t, y₀] is at low noise (plateaus on the modes, steps between them): on raw inputs
    the 128-wide MLP stays near the identity there and the sampler smears the modes (the study
    in the note of issue #10 item 5: neither width 256, 4× the iterations, batch 1024, lr 3e-3
    nor a FiLM time embedding changed that; these features did)."""

    def __init__(self, hidden: int = 128, noise_dim: int = 0, steps: int = 15,
                 frequencies: tuple[float, ...] = (1, 2, 4, 8)):
        super().__init__()
        self.noise_dim, self.frequencies = noise_dim, tuple(frequencies)
        self.register_buffer("angles", math.pi * torch.tensor(self.frequencies, dtype=torch.float32), persistent=False)
        self.features = 4 * (1 + 2 * len(self.frequencies))
        self.time = nn.Embedding(steps, 16)
        self.net = nn.Sequential(nn.Linear(self.features + noise_dim + 16, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 2))

    def forward(self, x: Tensor, t: Tensor, lq: Tensor | None = None, noise: Tensor | None = None) -> Tensor:
        z = torch.cat([x, lq], 1)
        phase = (z[:, :, None] * self.angles).flatten(1)
        parts = [z, phase.sin(), phase.cos()] + ([noise] if noise is not None else []) + [self.time(t)]
        return self.net(torch.cat(parts, 1))


def add_noise_input(teacher: ToyMLP, noise_dim: int = 1) -> ToyMLP:
    """The MLP version of :func:`rsd_mini.distill.add_noise_channels`: zero weights on ε₁."""
    student = ToyMLP(teacher.net[0].out_features, noise_dim, teacher.time.num_embeddings, teacher.frequencies)
    state = teacher.state_dict()
    w, n = state["net.0.weight"], teacher.features
    state["net.0.weight"] = torch.cat([w[:, :n], w.new_zeros(w.shape[0], noise_dim), w[:, n:]], 1)
    student.load_state_dict(state)
    return student


# --------------------------------------------------------------------- training
def _adam(model: nn.Module, lr: float, betas=(0.9, 0.999)) -> torch.optim.Adam:
    return torch.optim.Adam(model.parameters(), lr=lr, betas=betas)


def _fit(model: ToyMLP, loss, config: ToyConfig, generator: torch.Generator) -> ToyMLP:
    """``teacher_iterations`` Adam steps on ``loss(model, x₀, y₀)`` (per sample) over fresh
    pairs, lr ``lr`` with cosine decay to 0."""
    optimizer = _adam(model, config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.teacher_iterations)
    for _ in range(config.teacher_iterations):
        x0, y = sample_prior(config.batch, config, generator)
        value = loss(model, x0, y).mean()
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        schedule.step()
    return model.eval().requires_grad_(False)


def train_teacher(process: ResShift, config: ToyConfig, generator: torch.Generator) -> ToyMLP:
    """The ResShift x₀ loss (RSD_SPEC §1; t ~ U{1..T}, weight 1) on fresh pairs every step."""
    return _fit(ToyMLP(config.hidden, 0, config.steps, config.frequencies), lambda model, x0, y: process.training_loss(
        model, x0, y, generator=generator), config, generator)


def train_distilled(process: ResShift, teacher: ToyMLP, config: ToyConfig, generator: torch.Generator,
                    variant: str = "rsd", snapshots: int = 0, probe: Tensor | None = None) -> tuple[ToyMLP, list]:
    """RSD (or ResShift-VSD) distillation: K fake steps, then one student step, each on a fresh
    batch; two Adam optimisers with betas (0.9, 0.95) as in the paper (RSD_SPEC §4b).

    ``snapshots``: also return that many one-step sample sets on ``probe`` y₀ during training,
    after a first one at step 0 (where the student is the teacher's one-call prediction)."""
    student = add_noise_input(teacher).requires_grad_(True).train()
    fake = copy.deepcopy(teacher).requires_grad_(True).train()
    opt_student, opt_fake = _adam(student, config.student_lr, (0.9, 0.95)), _adam(fake, config.student_lr, (0.9, 0.95))
    nodes = distill.multistep_nodes(config.steps, config.nodes)
    every = max(1, config.student_iterations // snapshots) if snapshots else 0
    history = []

    @torch.no_grad()
    def snapshot(step: int) -> None:  # the same noise each time, drawn apart from ``generator``
        noise = torch.Generator().manual_seed(config.seed + 2)
        history.append((step, distill.one_step_sample(process, student, probe, probe, 1, noise, clip=False)))

    if every and probe is not None:
        snapshot(0)
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
            snapshot(step + 1)
    return student.eval().requires_grad_(False), history


def train_regression(process: ResShift, config: ToyConfig, generator: torch.Generator) -> ToyMLP:
    """A one-step student trained with MSE to x₀ from the prior x_T: the conditional mean."""
    last = config.steps - 1

    def loss(model: ToyMLP, x0: Tensor, y: Tensor) -> Tensor:
        x_T = process.prior_sample(y, torch.randn(y.shape, generator=generator))
        t = torch.full((len(y),), last)
        return (model(process.scale_input(x_T, t), t, lq=y) - x0).pow(2).mean(1)

    return _fit(ToyMLP(config.hidden, 0, config.steps, config.frequencies), loss, config, generator)


# --------------------------------------------------------------------- SinSR
def deterministic_sample(process: ResShift, model: nn.Module, y: Tensor, x_T: Tensor) -> Tensor:
    """The teacher's deterministic map F(x_T, y₀) (SinSR's sampler, :func:`rsd_mini.sinsr.deterministic_sample`;
    RSD_SPEC §3): T calls, no noise after x_T."""
    return sinsr.deterministic_sample(process, model, y, x_T=x_T, clip=False)


def train_sinsr(process: ResShift, teacher: ToyMLP, config: ToyConfig, generator: torch.Generator,
                log: list | None = None) -> ToyMLP:
    """SinSR in 2-D: a copy of the teacher (no noise input; SinSR's student is deterministic)
    trained on :func:`rsd_mini.sinsr.sinsr_loss` (RSD_SPEC §3; RSD App. C, Eq. 36–38): the
    distillation loss on (x_T, F(x_T, y₀)) pairs of the teacher's deterministic sampler, the
    inverse loss (the same network at timestep index 0 maps F back to x_T) and the
    consistency-preserving loss on the ground truth, weight 1 each as SinSR.
    ``student_iterations`` Adam steps at ``student_lr`` on fresh batches (RSD's student gets as
    many updates). ``log``: append the batch mean of each loss at every step."""
    student = copy.deepcopy(teacher).requires_grad_(True).train()
    optimizer = _adam(student, config.student_lr)
    for _ in range(config.student_iterations):
        x0, y = sample_prior(config.batch, config, generator)
        losses = sinsr.sinsr_loss(process, student, teacher, x0, y, y, generator)
        optimizer.zero_grad(set_to_none=True)
        losses.loss.mean().backward()
        optimizer.step()
        if log is not None:
            log.append({name: getattr(losses, name).mean().item() for name in ("distill", "inverse", "consistency")})
    return student.eval().requires_grad_(False)


# --------------------------------------------------------------------- evaluation
def evaluation_conditions(config: ToyConfig) -> Tensor:
    """The fixed u values of the y₀ = (u, 0) the methods are scored on."""
    return torch.linspace(-0.9, 0.9, config.eval_conditions)


#: The methods scored, in table order ("exact": a second exact sample set, the noise floor).
METHODS = ("exact", "teacher", "teacher_ddim", "rsd", "vsd", "sinsr", "regression")


@torch.no_grad()
def method_samples(process: ResShift, models: dict, u: float, config: ToyConfig,
                   generator: torch.Generator) -> dict[str, Tensor]:
    """``eval_samples`` draws of each method of :data:`METHODS` at y₀ = (u, 0): the teacher by
    its T-step ancestral sampler and by the deterministic one, the students in one call."""
    y = torch.tensor([[u, 0.0]]).expand(config.eval_samples, 2).contiguous()
    x_T = process.prior_sample(y, torch.randn(y.shape, generator=generator))
    out = {"exact": sample_conditional(y[:, 0], config, generator),
           "teacher": process.sample(models["teacher"], y, generator=generator, clip=False),
           "teacher_ddim": deterministic_sample(process, models["teacher"], y, x_T)}
    for name, noise_channels in (("rsd", 1), ("vsd", 1), ("sinsr", 0), ("regression", 0)):
        out[name] = distill.one_step_sample(process, models[name], y, y, noise_channels, generator, clip=False)
    return out


def score(samples: dict[str, Tensor], reference: Tensor, u: float, config: ToyConfig) -> dict[str, dict]:
    """ED to ``reference`` (exact samples), on-mode share and mode masses of each method at u."""
    out = {}
    for name, values in samples.items():
        on_mode, masses = mode_measures(values, u, config)
        out[name] = dict(ed=energy_distance(values, reference), on_mode=on_mode, masses=masses)
    return out


def summarise(per_condition: dict[str, list[dict]]) -> dict:
    """Means over the evaluation conditions: ``{method}_ed``, ``{method}_on_mode``,
    ``{method}_mass_error`` (mean total variation of :func:`mass_error`) and ``{method}_masses``."""
    out = {}
    for name, rows in per_condition.items():
        n = len(rows)
        out[f"{name}_ed"] = sum(r["ed"] for r in rows) / n
        out[f"{name}_on_mode"] = sum(r["on_mode"] for r in rows) / n
        out[f"{name}_mass_error"] = sum(mass_error(r["masses"]) for r in rows) / n
        out[f"{name}_masses"] = [round(float(m), 4) for m in sum(r["masses"] for r in rows) / n]
    return out


def train_all(process: ResShift, config: ToyConfig, snapshots: int = 0) -> tuple[dict, list, dict]:
    """Teacher, RSD, VSD, SinSR and regression students from one seed; returns (models, RSD
    training snapshots at y₀ = (0.5, 0) including step 0, training seconds per model)."""
    torch.manual_seed(config.seed)  # initial weights
    g = torch.Generator().manual_seed(config.seed)
    probe_u = torch.full((config.eval_samples,), 0.5)
    probe = torch.stack([probe_u, torch.zeros_like(probe_u)], 1)
    models, seconds = {}, {}

    def timed(name: str, train):
        start = time.perf_counter()
        out = train()
        seconds[name] = round(time.perf_counter() - start, 1)
        return out

    models["teacher"] = timed("teacher", lambda: train_teacher(process, config, g))
    models["rsd"], history = timed("rsd", lambda: train_distilled(process, models["teacher"], config, g, "rsd",
                                                                  snapshots, probe))
    models["vsd"], _ = timed("vsd", lambda: train_distilled(process, models["teacher"], config, g, "vsd"))
    models["sinsr"] = timed("sinsr", lambda: train_sinsr(process, models["teacher"], config, g))
    models["regression"] = timed("regression", lambda: train_regression(process, config, g))
    return models, history, seconds


def run_toy(config: ToyConfig, snapshots: int = 0) -> dict:
    """Train everything and score it on ``eval_conditions`` fixed y₀, each against its own set
    of exact samples. Returns the :func:`summarise` keys for every method of :data:`METHODS`,
    ``per_condition`` scores, ``samples`` (every method's draws at every condition), the RSD
    ``snapshots`` (``snapshots`` of them after step 0), ``train_seconds``, the config and the
    wall time."""
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        process = config.process()
        models, history, train_seconds = train_all(process, config, snapshots)
        per_condition, samples = {name: [] for name in METHODS}, {}
        eval_g = torch.Generator().manual_seed(config.seed + 1)
        for u in evaluation_conditions(config).tolist():
            drawn = method_samples(process, models, u, config, eval_g)
            reference = sample_conditional(torch.full((config.eval_samples,), u), config, eval_g)
            for name, row in score(drawn, reference, u, config).items():
                per_condition[name].append(row)
            samples[round(u, 3)] = drawn
    result = summarise(per_condition)
    result.update(per_condition=per_condition, samples=samples, snapshots=history, config=asdict(config),
                  train_seconds=train_seconds, seconds=time.perf_counter() - start)
    return result


@torch.no_grad()
def exact_sampler_study(config: ToyConfig, samples: int = 4000) -> dict:
    """The T-step ancestral sampler with the exact denoiser (no learning) at the
    ``eval_conditions`` y₀, ``samples`` draws each: what the sampler alone can do at this κ.

    Returns the mean ``on_mode`` share and ``ed`` of its final samples, and where the input x₁
    of its last network call lies: ``last_input_off`` is the share of those x₁ off every mode
    (:func:`mode_measures`), ``forward_off`` the same share for x₁ ~ q(x₁ | x₀, y₀) with exact x₀,
    the inputs the teacher is trained on at t = 1. When the first is much larger, the sampler
    leans on the exact denoiser pulling those inputs back far outside the training data, which
    a trained teacher cannot learn (issue #10: at κ = 1, K = 4 the trained network at t = 1
    alone costs 9 points on a mode)."""
    process = config.process()
    exact, g = ExactDenoiser(process, config), torch.Generator().manual_seed(config.seed + 1)
    rows = []
    for u in evaluation_conditions(config).tolist():
        y = torch.tensor([[u, 0.0]]).expand(samples, 2).contiguous()
        final, steps = process.sample(exact, y, generator=g, clip=False, return_trajectory=True)
        x1_forward = process.q_sample(sample_conditional(y[:, 0], config, g), y, 0,
                                      noise=torch.randn(y.shape, generator=g))
        reference = sample_conditional(y[:, 0], config, g)
        rows.append(dict(on_mode=mode_measures(final, u, config)[0], ed=energy_distance(final, reference),
                         last_input_off=1 - mode_measures(steps[-2].x, u, config)[0],
                         forward_off=1 - mode_measures(x1_forward, u, config)[0]))
    return {key: sum(row[key] for row in rows) / len(rows) for key in rows[0]}


def expected_floor(config: ToyConfig) -> float:
    """The expected value of :func:`run_toy`'s "exact" row: the ED between two independent sets
    of ``eval_samples`` exact draws, averaged over the evaluation conditions.

    :func:`energy_distance` averages over every pair, each point with itself included, so between
    two sets of n draws of one distribution its expectation is 2 E‖X − X′‖ / n, not 0: the floor
    is the estimator's bias. Here X − X′ = (0, v − v′) with v − v′ an equal mixture of
    N(c_i − c_j, 2σ²) over the K² pairs of modes, and E|N(m, s²)| = s√(2/π) e^{−m²/2s²} +
    m erf(m / s√2), so the expectation is closed form; it depends on K, σ and n, not on the seed."""
    s = config.mode_std * math.sqrt(2)
    means = []
    for u in evaluation_conditions(config).double():
        centres = mode_centres(u[None], config.modes)[0]
        m = (centres[:, None] - centres[None, :]).abs()
        folded = s * math.sqrt(2 / math.pi) * torch.exp(-m ** 2 / (2 * s ** 2)) + m * torch.erf(m / (s * math.sqrt(2)))
        means.append(float(folded.mean()))
    return 2 * sum(means) / len(means) / config.eval_samples


@torch.no_grad()
def floor_draws(config: ToyConfig, draws: int) -> Tensor:
    """``draws`` independent copies of :func:`run_toy`'s "exact" row (two exact sets of
    ``eval_samples`` at each condition, their ED averaged over the conditions), from a generator
    of their own (seed + 2): how far one run's floor can fall from :func:`expected_floor`."""
    if not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws={draws!r}: expected a positive integer")
    g = torch.Generator().manual_seed(config.seed + 2)
    conditions = evaluation_conditions(config).tolist()
    out = torch.empty(draws)
    for d in range(draws):
        eds = []
        for u in conditions:
            u_batch = torch.full((config.eval_samples,), u)
            eds.append(energy_distance(sample_conditional(u_batch, config, g), sample_conditional(u_batch, config, g)))
        out[d] = sum(eds) / len(eds)
    return out


# --------------------------------------------------------------------- saved results
def summary_keys() -> list[str]:
    """The per-method keys of :func:`summarise`, in table order."""
    return [f"{name}_{measure}" for name in METHODS for measure in ("ed", "on_mode", "mass_error", "masses")]


def result_to_json(result: dict, samples: bool = False) -> dict:
    """The summary of :func:`run_toy` as plain JSON (and, with ``samples``, the v-coordinates of
    every method's draws per condition and of the RSD snapshots, rounded to 1e-4)."""
    out = {key: result[key] for key in summary_keys()}
    out.update(seed=result["config"]["seed"], modes=result["config"]["modes"], seconds=result["seconds"],
               train_seconds=result["train_seconds"], config=result["config"])
    if samples:
        def v(x: Tensor) -> list[float]:
            return [round(float(value), 4) for value in x[:, 1]]
        out["samples"] = {str(u): {name: v(x) for name, x in drawn.items()} for u, drawn in result["samples"].items()}
        out["snapshots"] = [[step, v(x)] for step, x in result["snapshots"]]
    return out


def parse_result(saved: dict) -> dict:
    """The inverse of ``result_to_json(result, samples=True)``: samples as tensors of v (N,),
    keyed by u, and the config as a :class:`ToyConfig`."""
    if "samples" not in saved:
        raise ValueError("saved result has no 'samples': expected one written with samples=True (--samples)")
    return saved | dict(config=ToyConfig(**saved["config"]),
                        samples={float(u): {name: torch.tensor(v) for name, v in drawn.items()}
                                 for u, drawn in saved["samples"].items()},
                        snapshots=[(step, torch.tensor(v)) for step, v in saved["snapshots"]])


def load_result(path: str | Path) -> dict:
    """A result saved by ``python -m rsd_mini toy --json PATH --samples`` (:func:`parse_result`)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"path={str(path)!r}: no such file; expected a toy result, written by "
                                f"python -m rsd_mini toy --seed 0 --modes 3 --json {path} --samples")
    try:
        return parse_result(json.loads(Path(path).read_text()))
    except ValueError as error:
        raise ValueError(f"path={str(path)!r}: {error}") from None


# --------------------------------------------------------------------- CLI
def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", type=int, default=3, help="K, the number of modes of v given u (2..5)")
    parser.add_argument("--kappa", type=float, default=ToyConfig.kappa,
                        help=f"the noise scale κ of the ResShift process (default {ToyConfig.kappa:g})")
    parser.add_argument("--student-iterations", type=int, default=None,
                        help=f"updates of each one-step student (default {ToyConfig.student_iterations}; "
                             f"--fast: {FAST['student_iterations']})")
    parser.add_argument("--json", type=Path, help="write the energy distances and mode measures here")
    parser.add_argument("--samples", action="store_true",
                        help="also write every method's samples and the RSD training snapshots to --json "
                             "(what notebook 04 plots)")
    parser.add_argument("--fast", action="store_true", help="the shorter budget of the tests")
    parser.add_argument("--exact-only", action="store_true",
                        help="train nothing: score the ancestral sampler with the exact denoiser at this κ, and "
                             "where the input of its last call lies against the forward process's")
    parser.add_argument("--floor-draws", type=int_at_least(1), default=None, metavar="N",
                        help="train nothing: draw the exact-vs-exact floor N times and print its expected value "
                             "(closed form) and spread")


def floor_study(config: ToyConfig, draws: int, json_path: Path | None) -> int:
    """``--floor-draws``: the expected floor and the spread of ``draws`` drawn ones, printed and
    (``json_path``) saved."""
    drawn = floor_draws(config, draws)
    low, median, high = (float(q) for q in torch.quantile(drawn, torch.tensor([0.05, 0.5, 0.95])))
    expected = expected_floor(config)
    print(f"seed {config.seed}, K={config.modes}: exact-vs-exact ED, expected {expected:.4f}; {draws} draws: "
          f"mean {float(drawn.mean()):.4f}, 5 / 50 / 95 % {low:.4f} / {median:.4f} / {high:.4f}")
    save_study(json_path, dict(expected=expected, draws=[round(float(d), 6) for d in drawn],
                               quantiles_5_50_95=[low, median, high]), config)
    return 0


def exact_study(config: ToyConfig, json_path: Path | None) -> int:
    """``--exact-only``: :func:`exact_sampler_study`, printed and (``json_path``) saved."""
    study = exact_sampler_study(config)
    print(f"seed {config.seed}, K={config.modes}, kappa={config.kappa:g}, exact denoiser: on a mode "
          f"{study['on_mode']:.1%}, ED {study['ed']:.4f}; last call's input off the modes: sampler "
          f"{study['last_input_off']:.1%}, forward process {study['forward_off']:.1%}")
    save_study(json_path, study, config)
    return 0


def save_study(json_path: Path | None, study: dict, config: ToyConfig) -> None:
    """Write a train-nothing study with its config to ``json_path`` (atomically; nothing if None)."""
    if json_path:
        write_bytes_atomic(json_path, json.dumps(study | dict(config=asdict(config)), indent=1).encode())


def main(args: argparse.Namespace) -> int:
    try:
        budget = FAST if args.fast else {}
        if args.student_iterations is not None:
            budget = budget | dict(student_iterations=args.student_iterations)
        config = ToyConfig(seed=args.seed, modes=args.modes, kappa=args.kappa, **budget)
    except ValueError as error:
        raise SystemExit(f"rsd_mini: error: {error}")
    if args.samples and args.json is None:
        raise SystemExit("rsd_mini: error: --samples needs --json PATH: expected a file to write them to")
    train_nothing = [flag for flag, on in (("--exact-only", args.exact_only),
                                           ("--floor-draws", args.floor_draws is not None)) if on]
    if args.samples and train_nothing:
        raise SystemExit(f"rsd_mini: error: --samples with {train_nothing[0]}: expected one of them ({train_nothing[0]} "
                         "trains nothing, so there are no method samples to write)")
    if len(train_nothing) > 1:
        raise SystemExit("rsd_mini: error: --exact-only with --floor-draws: expected one of them")
    if args.floor_draws is not None:
        return floor_study(config, args.floor_draws, args.json)
    if args.exact_only:
        return exact_study(config, args.json)
    result = run_toy(config, snapshots=SNAPSHOTS if args.samples else 0)
    print(f"seed {config.seed}, K={config.modes} ({result['seconds']:.0f} s)")
    print(f"{'method':>13} {'ED':>7} {'on mode':>8} {'mass TV':>8}")
    for name in METHODS:
        print(f"{name:>13} {result[name + '_ed']:7.4f} {result[name + '_on_mode']:8.1%} "
              f"{result[name + '_mass_error']:8.3f}")
    if args.json:
        write_bytes_atomic(args.json, json.dumps(result_to_json(result, args.samples), indent=1).encode())
    return 0
