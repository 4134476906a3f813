"""Checkers for the notebooks' exercises: each one says *not attempted*, *wrong* or *correct*.

An exercise's answer is a function the student writes; in the notebook sources its body sits
between nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers, which the student
edition (``python -m rsd_mini.course --student``) replaces by ``raise NotImplementedError()``.
Each ``check_*`` below calls the answer on cases it builds itself and compares it with an
independent route (the library, a closed form, a simulation, autograd):

- **not attempted** — the answer raises ``NotImplementedError``: one line with a hint is printed
  and :data:`NOT_ATTEMPTED` returned, so the student edition still runs to the end;
- **wrong** — an ``AssertionError`` naming the first failing case ("t=4: variance off by 12 %"),
  so a wrong solution fails the notebook (and nbval) loudly;
- **correct** — ``"<exercise>: correct — …"`` is printed and :data:`CORRECT` returned.

Checkers are grouped by notebook (``01`` … ``07``); the notebook's own objects that an exercise
is about (the diffusion process, the trained networks, the metrics table) are arguments.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import torch
from torch import Tensor

from rsd_mini import distill, metrics, toy
from rsd_mini.degradations import Degradation, bicubic_upsample, blur_kernel
from rsd_mini.diffusion import ResShift

NOT_ATTEMPTED = "not attempted"
CORRECT = "correct"
#: SinSR caps the first noise level √η₁ at √0.001 (RSD_SPEC §1; notebook 01).
SINSR_CAP = math.sqrt(0.001)


def exercise(label: str, hint: str) -> Callable:
    """Turn ``check(answer, *context) -> note`` into a grading checker.

    ``check`` raises ``AssertionError(first failing case)`` for a wrong answer and returns a short
    note for a correct one; ``NotImplementedError`` from the answer means not attempted.
    """

    def wrap(check: Callable[..., str]) -> Callable[..., str]:
        @functools.wraps(check)
        def checker(answer: Callable, *context, **options) -> str:
            try:
                note = check(answer, *context, **options)
            except NotImplementedError:
                print(f"{label}: not attempted — hint: {hint}")
                return NOT_ATTEMPTED
            except AssertionError as error:
                raise AssertionError(f"{label}: wrong — {error}") from None
            print(f"{label}: correct — {note}")
            return CORRECT

        checker.label = label
        return checker

    return wrap


def _expect(condition: bool, message: str) -> None:
    """``assert`` that survives ``python -O``: raise the first failing case's message."""
    if not condition:
        raise AssertionError(message)


def _off(value: float, expected: float) -> str:
    """"off by 12 %" (relative to ``expected``)."""
    return f"off by {100 * abs(value / expected - 1):.0f} %" if expected else f"{value:.4g} instead of 0"


def _float(value) -> float:
    """A Python float of a number or a one-element tensor (float64 kept, autograd detached)."""
    return float(value.detach()) if isinstance(value, Tensor) else float(value)


# ---------------------------------------------------------------- 01 forward process
@exercise("01 · Exercise 1 (forward step)",
          "x_t = x_{t-1} + α_t (y₀ − x₀) + κ √α_t ε, with α_t = η_t − η_{t−1} = process.alphas[i]")
def check_forward_step(forward_step: Callable, process: ResShift) -> str:
    """Chaining ``forward_step`` T times from x₀ must give the marginal of RSD Eq. 2,
    q(x_t | x₀, y₀) = N(x₀ + η_t (y₀ − x₀), κ²η_t I), at every t."""
    generator = torch.Generator().manual_seed(1)
    x0 = 0.5 * torch.randn(1, 3, 128, 128, generator=generator, dtype=torch.float64)
    y0 = 0.5 * torch.randn(1, 3, 128, 128, generator=generator, dtype=torch.float64)
    x = x0.clone()
    for i in range(process.steps):
        x = forward_step(x, x0, y0, i, process, generator)
        residual = x - (x0 + process.etas[i] * (y0 - x0))
        variance = float(process.kappa ** 2 * process.etas[i])
        mean_error = abs(float(residual.mean()))
        _expect(mean_error < 5 * math.sqrt(variance / residual.numel()) + 1e-9,
                f"t={i + 1}: mean off by {mean_error:.3g} (expected x₀ + η_t (y₀ − x₀))")
        _expect(abs(float(residual.var()) / variance - 1) < 0.05,
                f"t={i + 1}: variance {_off(float(residual.var()), variance)} (expected κ²η_t = {variance:.4g})")
    return f"{process.steps} transitions give the marginal N(x₀ + η_t e₀, κ²η_t) at every t."


@exercise("01 · Exercise 2 (SinSR's cap)",
          "ResShift's √η₁ is min(min_noise_level/κ, min_noise_level); SinSR also caps it at √0.001")
def check_cap_threshold(cap_threshold: Callable) -> str:
    """Just below the answer's threshold SinSR's cap √0.001 must not bind (the schedules agree),
    just above it it must (RSD_SPEC §1)."""
    for kappa in (0.5, 1.0, 2.0, 4.0):
        value = float(cap_threshold(kappa))
        below = ResShift(15, kappa, value * (1 - 1e-6)).sqrt_etas[0]
        above = ResShift(15, kappa, value * (1 + 1e-6)).sqrt_etas[0]
        _expect(float(below) <= SINSR_CAP, f"κ={kappa}: just below {value:.6g} the cap already binds "
                                           f"(√η₁ = {float(below):.5f} > √0.001): too high")
        _expect(float(above) > SINSR_CAP, f"κ={kappa}: just above {value:.6g} the cap does not bind yet "
                                          f"(√η₁ = {float(above):.5f} ≤ √0.001): too low")
    return "the cap binds above max(κ, 1)·√0.001 (0.0632 for κ = 2; v3 uses 0.2, v1 0.04)."


@exercise("01 · Exercise 3 (input scaling)",
          "x_t = x₀ + κ√η_t ε here, so Var x_t = v + κ²η_t")
def check_scale(scale_for_variance: Callable, process: ResShift, v: float = 0.25) -> str:
    """With x₀ = y₀ of variance ``v`` the scaled input must have unit variance at every t (the
    official latent scaling 1/√(κ²η_t + 1) generalised; RSD_SPEC §1)."""
    generator = torch.Generator().manual_seed(2)
    signal = math.sqrt(v) * torch.randn(200_000, generator=generator, dtype=torch.float64)
    for i in range(process.steps):
        noise = torch.randn(200_000, generator=generator, dtype=torch.float64)
        x_t = signal + process.kappa * process.sqrt_etas[i] * noise  # x₀ = y₀: only noise is added
        std = float(scale_for_variance(x_t, float(process.etas[i]), process.kappa, v).std())
        _expect(abs(std - 1) < 0.01, f"t={i + 1}: scaled std {std:.3f}, expected 1")
    return "with v = 1 this is the official sqrt(κ²η_t + 1)."


# ---------------------------------------------------------------- 02 degradations and data
@exercise("02 · Exercise 1 (Gaussian kernel)",
          "torch.arange(size) − size // 2 on both axes, exp(−(x² + y²)/(2σ²)), divide by the sum")
def check_gaussian_kernel(gaussian_kernel: Callable) -> str:
    """The answer must equal the isotropic ``blur_kernel`` of the Real-ESRGAN pipeline."""
    for size, sigma in ((21, 0.2), (21, 1.0), (13, 3.0), (7, 2.5)):
        ours, library = gaussian_kernel(size, sigma), blur_kernel("iso", size, sigma)
        _expect(tuple(ours.shape) == (size, size), f"size {size}: shape {tuple(ours.shape)}, expected ({size}, {size})")
        _expect(abs(float(ours.sum()) - 1) < 1e-5, f"size {size}, σ {sigma}: sums to {float(ours.sum()):.4f}, expected 1")
        difference = float((ours.double() - library.double()).abs().max())
        _expect(difference < 1e-6, f"size {size}, σ {sigma}: differs from blur_kernel('iso') by up to {difference:.2g}")
    return "equal to blur_kernel('iso', size, sigma)."


@exercise("02 · Exercise 2 (reproducible LR)",
          "pass torch.Generator().manual_seed(seed) to Degradation('realesrgan-light')")
def check_make_lr(make_lr: Callable, hr: Tensor) -> str:
    """Same seed → same LR image whatever the global RNG did; another seed → another image."""
    first = make_lr(hr, 123)
    torch.rand(1000)  # disturb the global generator: a correct answer does not care
    expected = Degradation("realesrgan-light")(hr, torch.Generator().manual_seed(123))
    _expect(tuple(first.shape) == tuple(expected.shape), f"seed 123: shape {tuple(first.shape)}, expected {tuple(expected.shape)}")
    _expect(torch.equal(first, make_lr(hr, 123)), "seed 123 twice: different LR images (use an explicit torch.Generator)")
    _expect(not torch.equal(first, make_lr(hr, 124)), "seeds 123 and 124: the same LR image (the seed must matter)")
    return "the seed alone fixes the LR image."


@exercise("02 · Exercise 3 (bicubic baseline)",
          "stack the items' 'hr' and 'lq', psnr(to_unit_range(bicubic_upsample(lq)), to_unit_range(hr)).mean()")
def check_bicubic_baseline(bicubic_baseline_psnr: Callable, dataset, count: int = 8) -> str:
    """The answer must equal the Y-channel PSNR of bicubic ×4 computed image by image from the MSE."""
    value = float(bicubic_baseline_psnr(dataset, count))
    expected = []
    for index in range(count):  # an independent route: the MSE of the Y channels by hand
        item = dataset[index]
        up = metrics.to_unit_range(bicubic_upsample(item["lq"][None]))
        mse = (metrics.rgb_to_y(up).double() - metrics.rgb_to_y(metrics.to_unit_range(item["hr"][None])).double()).pow(2).mean()
        expected.append(float(10 * torch.log10(1 / mse)))
    mean = sum(expected) / count
    _expect(abs(value - mean) < 1e-4, f"{count} crops: {value:.4f} dB, expected {mean:.4f} dB")
    return f"bicubic baseline {value:.2f} dB on {count} val crops."


# ---------------------------------------------------------------- 03 teacher training
@exercise("03 · Exercise 1 (ELBO weight)",
          "KL of two Gaussians with the posterior variance σ_t² = κ²η_{t−1}α_t/η_t and means differing by (α_t/η_t)(x₀ − x̂₀)")
def check_elbo_weights(elbo_weights: Callable, process: ResShift) -> str:
    """KL(q(x_{t−1}|x_t, x₀) ‖ q(x_{t−1}|x_t, x̂₀)) must equal w_t ‖x₀ − x̂₀‖² for t = 2..T (RSD Eq. 46)."""
    weights = elbo_weights(process)
    generator = torch.Generator().manual_seed(3)
    a, b, x_t = (torch.randn(1, 3, 8, 8, generator=generator, dtype=torch.float64) for _ in range(3))
    for t in range(2, process.steps + 1):
        (mean_a, var), (mean_b, _) = process.posterior(a, x_t, t - 1), process.posterior(b, x_t, t - 1)
        kl = float(torch.distributions.kl_divergence(torch.distributions.Normal(mean_a, var.sqrt()),
                                                     torch.distributions.Normal(mean_b, var.sqrt())).sum())
        ours = _float(weights[t - 2]) * float((a - b).pow(2).sum())
        _expect(abs(ours / kl - 1) < 1e-9, f"t={t}: w_t ‖x₀ − x̂₀‖² {_off(ours, kl)} from the KL {kl:.4g}")
    return "KL(q ‖ p_θ) = w_t ‖x₀ − x̂₀‖², RSD Eq. 46."


@exercise("03 · Exercise 2 (skip posterior)",
          "the mean interpolates, c_t x_t + (1 − c_t) x₀; pick c_t and the variance so Var x_s = κ²η_s")
def check_skip_posterior(skip_posterior: Callable, process: ResShift) -> str:
    """For s = t − 1 the answer must be the library's posterior (RSD Eq. 4); for every s < t it
    must keep the marginal q(x_s | x₀, y₀): c_t² κ²η_t + variance = κ²η_s."""
    for t in range(1, process.steps):
        c_t, c_0, var = (_float(v) for v in skip_posterior(process, t - 1, t))
        for name, ours, library in (("coefficient of x_t", c_t, process.posterior_mean_coef1[t]),
                                    ("coefficient of x₀", c_0, process.posterior_mean_coef2[t]),
                                    ("variance", var, process.posterior_variance[t])):
            _expect(abs(ours - float(library)) <= 1e-12 + 1e-10 * abs(float(library)),
                    f"s={t - 1}, t={t}: {name} {ours:.6g}, the one-step posterior has {float(library):.6g}")
        for s in range(t):
            c_t, c_0, var = (_float(v) for v in skip_posterior(process, s, t))
            _expect(abs(c_t + c_0 - 1) < 1e-12, f"s={s}, t={t}: coefficients sum to {c_t + c_0:.6g}, expected 1")
            kept = c_t ** 2 * process.kappa ** 2 * float(process.etas[t]) + var
            target = process.kappa ** 2 * float(process.etas[s])
            _expect(abs(kept / target - 1) < 1e-10, f"s={s}, t={t}: Var x_s {_off(kept, target)} (expected κ²η_s)")
    return "skipping steps keeps every marginal q(x_s | x₀, y₀)."


@exercise("03 · Exercise 3 (EMA memory)",
          "the smallest n with rate**n < share: n = ceil(log(share) / log(rate))")
def check_ema(ema_updates_to_forget: Callable) -> str:
    """The answer must be the smallest n with rᵑ < 1 %, and torch's own EMA must agree."""
    for rate in (0.8, 0.99, 0.999):
        n = int(ema_updates_to_forget(rate))
        _expect(rate ** n < 0.01, f"rate {rate}: after n = {n} updates the share is {rate ** n:.4f}, not below 1 %")
        _expect(rate ** (n - 1) >= 0.01, f"rate {rate}: n = {n} is not the smallest (n − 1 already forgets)")
        weights = torch.nn.Linear(1, 1, bias=False)  # simulate: start at 1, average towards 0
        averaged = torch.optim.swa_utils.AveragedModel(
            weights, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(rate))
        with torch.no_grad():
            weights.weight.fill_(1.0)
            averaged.update_parameters(weights)
            weights.weight.fill_(0.0)
            for _ in range(n):
                averaged.update_parameters(weights)
        remembered = _float(averaged.module.weight)
        _expect(remembered < 0.01, f"rate {rate}: torch's EMA still holds {remembered:.4f}")
    return (f"0.99 forgets in {ema_updates_to_forget(0.99)} updates, "
            f"0.999 (ResShift and RSD) in {ema_updates_to_forget(0.999)}.")


# ---------------------------------------------------------------- 04 distillation objective
@exercise("04 · Exercise 1 (energy distance)",
          "torch.cdist gives all pairwise distances; average them")
def check_energy_distance(energy_distance: Callable) -> str:
    """The answer must equal ``toy.energy_distance`` and grow when the samples separate."""
    generator = torch.Generator().manual_seed(4)
    a = torch.randn(300, 2, generator=generator)
    for shift in (0.0, 0.5, 2.0):
        b = torch.randn(200, 2, generator=generator) + shift
        ours, library = float(energy_distance(a, b)), toy.energy_distance(a, b)
        _expect(math.isclose(ours, library, rel_tol=1e-5, abs_tol=1e-6),
                f"shift {shift}: {ours:.5f}, expected {library:.5f}")
    _expect(float(energy_distance(a, a)) < 1e-5, f"a sample against itself: {float(energy_distance(a, a)):.3g}, expected 0")
    return "equal to toy.energy_distance, zero for identical samples."


@exercise("04 · Exercise 2 (fake optimum)",
          "the fake model is ResShift trained on student samples: E[x̂₀ | x_t] for x̂₀ ~ N(θ, s²)")
def check_fake_optimum(fake_optimum: Callable, s: float, sigma: float) -> str:
    """(slope, intercept) must match a least-squares fit of x̂₀ on x_t = x̂₀ + σε over student samples."""
    generator = torch.Generator().manual_seed(5)
    for theta in (-0.4, 0.9):
        x0_hat = theta + s * torch.randn(200_000, generator=generator, dtype=torch.float64)
        x_t = x0_hat + sigma * torch.randn(200_000, generator=generator, dtype=torch.float64)
        design = torch.stack([torch.ones_like(x_t), x_t], 1)
        intercept, slope = torch.linalg.lstsq(design, x0_hat[:, None]).solution[:, 0].tolist()
        ours_slope, ours_intercept = (_float(v) for v in fake_optimum(theta))
        _expect(abs(ours_slope - slope) < 0.01, f"θ={theta}: slope {ours_slope:.4f}, least squares gives {slope:.4f}")
        _expect(abs(ours_intercept - intercept) < 0.01,
                f"θ={theta}: intercept {ours_intercept:.4f}, least squares gives {intercept:.4f}")
    return "the fake model is ResShift training on student samples."


def spread_objective(a: float, s: float, sigma: float) -> float:
    """L(a) = E‖f_{φ*}(x_t) − f*(x_t)‖² for the student x̂₀ = m + a ε_g against data N(m, s²):
    both predictors are m + k(x − m) with k = a²/(a² + σ²) and s²/(s² + σ²), x − m has variance
    a² + σ², so L(a) = (k_a − k)²(a² + σ²) (RSD Eq. 9 on a linear-Gaussian case)."""
    k_a, k = a ** 2 / (a ** 2 + sigma ** 2), s ** 2 / (s ** 2 + sigma ** 2)
    return (k_a - k) ** 2 * (a ** 2 + sigma ** 2)


@exercise("04 · Exercise 3 (envelope gradient, new case)",
          "sample x̂₀ = m + a ε_g and x_t = x̂₀ + σ ε with a requiring grad; J = mean((f* − x̂₀)² − (f_φ* − x̂₀)²) "
          "with f_φ*(x) = m + k_a (x − m) frozen (k_a a number); torch.autograd.grad(J, a)")
def check_envelope_gradient(envelope_gradient: Callable, m: float, s: float, sigma: float) -> str:
    """dJ/da at frozen φ* must equal dL/da (Prop. 3.1 and the envelope argument), here checked
    against central finite differences of the closed form :func:`spread_objective`; VSD's
    gradient, without the path through x_t, differs."""
    for a in (0.3, 0.8):
        expected = (spread_objective(a + 1e-5, s, sigma) - spread_objective(a - 1e-5, s, sigma)) / 2e-5
        ours = _float(envelope_gradient(a))
        _expect(abs(ours - expected) < 0.01 + 0.03 * abs(expected),
                f"a={a}: gradient {ours:.4f}, expected dL/da = {expected:.4f} (L(a) = (k_a − k)²(a² + σ²))")
    return f"dJ/da at frozen φ* is dL/da; at a = s = {s} both vanish: the student has the data's spread."


# ---------------------------------------------------------------- 05 distilling the tiny teacher
@exercise("05 · Exercise 1 (multistep nodes)",
          "t_n = round(n T / N) for n = 1..N, returned as indices t_n − 1")
def check_nodes(nodes: Callable) -> str:
    """The answer must equal ``distill.multistep_nodes`` for several T and N (RSD §3.3)."""
    for steps in (4, 15, 50):
        for count in range(1, min(steps, 6) + 1):
            ours, library = tuple(int(i) for i in nodes(steps, count)), distill.multistep_nodes(steps, count)
            _expect(ours == library, f"T={steps}, N={count}: {ours}, expected {library}")
    return "evenly placed nodes, the last one at t = T."


@exercise("05 · Exercise 2 (what VSD keeps)",
          "differentiate mean((f* − x̂₀)²) − mean((f_φ − x̂₀)²) in x̂₀ with f*, f_φ constants")
def check_vsd_gradient(vsd_gradient: Callable, process: ResShift, teacher, fake, x0: Tensor, y0: Tensor) -> str:
    """The closed form must equal autograd's gradient of ``student_loss(variant="vsd")`` without
    normalisation (ResShift-VSD, RSD Alg. 2) for the same draws of t and ε′."""
    x = x0[:2].clone().requires_grad_(True)
    out = distill.student_loss(process, teacher, fake, x, y0[:2], y0[:2], torch.Generator().manual_seed(3),
                               latent=False, variant="vsd", sid_normalization=False)
    out.loss.sum().backward()
    generator = torch.Generator().manual_seed(3)  # the same draws as student_loss: t, then ε′
    t = torch.randint(process.steps, (2,), generator=generator)
    x_t = process.q_sample(x0[:2], y0[:2], t, torch.randn(x0[:2].shape, generator=generator))
    x_in = process.scale_input(x_t, t, latent=False)
    with torch.no_grad():
        ours = vsd_gradient(teacher(x_in, t, lq=y0[:2]), fake(x_in, t, lq=y0[:2]), x0[0].numel())
    for b in range(2):
        difference = float((ours[b] - x.grad[b]).abs().max())
        scale = float(x.grad[b].abs().max())
        _expect(difference <= 1e-5 * scale + 1e-12,
                f"sample {b}: differs from autograd by up to {difference:.3g} (autograd's largest entry {scale:.3g})")
    return "VSD keeps only the direct term 2(f_φ − f*)/numel."


@exercise("05 · Exercise 3 (fake-model loss)",
          "x_t = process.q_sample(sg(x̂₀), y₀, t, noise); f_φ(process.scale_input(x_t, t, latent=False), t, lq=y₀); "
          "per-sample mean of (f_φ − sg(x̂₀))²")
def check_fake_loss(fake_loss: Callable, process: ResShift, fake, x0_hat: Tensor, y0: Tensor) -> str:
    """The answer must equal the ResShift loss on the detached student outputs (RSD_SPEC §4a,
    ``distill.fake_loss``) for given t and ε, train the fake model and send no gradient to x̂₀."""
    if x0_hat.shape != y0.shape:
        raise ValueError(f"y0 has shape {tuple(y0.shape)}: expected x0_hat's shape {tuple(x0_hat.shape)}")
    generator = torch.Generator().manual_seed(7)
    x0_hat = x0_hat.detach().clone().requires_grad_(True)
    t = torch.randint(process.steps, (len(x0_hat),), generator=generator)
    noise = torch.randn(x0_hat.shape, generator=generator)
    ours = fake_loss(process, fake, x0_hat, y0, t, noise)
    expected = process.training_loss(fake, x0_hat.detach(), y0, t=t, noise=noise, latent=False)
    _expect(tuple(ours.shape) == tuple(expected.shape), f"shape {tuple(ours.shape)}, expected one loss per sample {tuple(expected.shape)}")
    for b, (value, target) in enumerate(zip(ours.tolist(), expected.tolist())):
        _expect(abs(value - target) <= 1e-5 * abs(target) + 1e-10,
                f"sample {b} (t={int(t[b]) + 1}): loss {value:.6g}, expected {target:.6g}")
    _expect(ours.requires_grad, "the loss carries no gradient: the fake model must be trained by it")
    (to_student,) = torch.autograd.grad(ours.sum(), x0_hat, allow_unused=True)
    _expect(to_student is None or not bool(to_student.any()),
            "the loss sends gradients into x̂₀: use the detached student output sg(x̂₀)")
    return "the fake model's loss is notebook 03's ResShift loss on detached student outputs."


# ---------------------------------------------------------------- 06 one-step evaluation
@exercise("06 · Exercise 1 (PSNR by hand)",
          "10 log₁₀(1 / MSE) per image, the MSE over all pixels of that image")
def check_psnr(my_psnr: Callable, images: Tensor, target: Tensor) -> str:
    """On Y channels of [0, 1] images the answer must equal ``metrics.psnr`` image by image."""
    a, b = metrics.rgb_to_y(images).double(), metrics.rgb_to_y(target).double()
    ours, library = my_psnr(a, b), metrics.psnr(images, target)
    _expect(tuple(ours.shape) == tuple(library.shape), f"shape {tuple(ours.shape)}, expected one PSNR per image {tuple(library.shape)}")
    for index, (value, expected) in enumerate(zip(ours.tolist(), library.tolist())):
        _expect(abs(value - expected) < 1e-3, f"image {index}: {value:.3f} dB, expected {expected:.3f} dB")
    return "equal to metrics.psnr on the Y channel."


@exercise("06 · Exercise 2 (speed-up)",
          "divide the milliseconds of the 15-call teacher's row by the student's")
def check_speedup(speedup: Callable, table: dict) -> str:
    """The answer must be the ratio of the two rows' wall times."""
    value = float(speedup(table))
    expected = table["teacher, 15 calls"]["ms"] / table["RSD student"]["ms"]
    _expect(abs(value / expected - 1) < 1e-9, f"{value:.3f}x, the table says {expected:.3f}x")
    return f"{value:.1f}x here (15 calls against 1; the paper: 10.9x on an A100)."


@exercise("06 · Exercise 3 (diversity)",
          "samples.std(0) over the seeds, then the mean over each image's pixels")
def check_diversity(diversity: Callable, draws: Tensor) -> str:
    """On draws (S, B, C, H, W) the answer must equal ``metrics.diversity``, and be 0 for a
    deterministic method (every seed the same image)."""
    ours, library = diversity(draws), metrics.diversity(draws)
    _expect(tuple(ours.shape) == tuple(library.shape), f"shape {tuple(ours.shape)}, expected one value per image {tuple(library.shape)}")
    for index, (value, expected) in enumerate(zip(ours.tolist(), library.tolist())):
        _expect(abs(value - expected) <= 1e-5 + 1e-4 * abs(expected), f"image {index}: {value:.5f}, expected {expected:.5f}")
    repeated = draws[:1].expand_as(draws)
    _expect(float(diversity(repeated).abs().max()) < 1e-7, "the same image for every seed: expected diversity 0")
    return "the spread across seeds that tells a sampler from the MMSE guess."


# ---------------------------------------------------------------- 07 paper tables
@exercise("07 · Exercise 1 (the sign of an improvement)",
          "100 (ours − paper) / |paper|, negated when lower is better")
def check_improvement(improvement: Callable) -> str:
    """Relative change in % from the paper's value, positive when ours is *better* given the
    metric's direction (LPIPS: lower is better)."""
    cases = ((25.91, 25.40, True), (0.2726, 0.2500, False), (0.2726, 0.3000, False), (0.70, 0.77, True))
    for paper, ours, higher in cases:
        expected = (ours - paper) / abs(paper) * 100 * (1 if higher else -1)
        value = float(improvement(paper, ours, higher))
        _expect(abs(value - expected) < 1e-9, f"paper {paper}, ours {ours} ({'higher' if higher else 'lower'} is better): "
                                              f"{value:.3f} %, expected {expected:.3f} %")
    return "positive means ours is better, whichever the metric's direction."


@exercise("07 · Exercise 2 (where RSD beats SinSR)",
          "for each RealSR column compare table.value('RSD', column) with SinSR's; tables.METRICS[metric][2] gives the direction")
def check_rsd_better(rsd_better: Callable, table, directions: dict) -> str:
    """The answer must be the set of RealSR metrics on which RSD's value is the better one."""
    expected = set()
    for column in table.columns:
        if column.dataset == "realsr":
            sign = 1 if directions[column.metric][2] else -1
            if sign * table.value("RSD", column) > sign * table.value("SinSR", column):
                expected.add(column.metric)
    answer = set(rsd_better(table))
    _expect(answer == expected, f"you said {sorted(answer)}, the table says {sorted(expected)} "
                                f"(missing {sorted(expected - answer)}, extra {sorted(answer - expected)})")
    return f"{sorted(answer)}."


@exercise("07 · Exercise 3 (why not 15x)",
          "time = NFE · per_call + overhead for both methods: two equations, two unknowns")
def check_call_and_overhead(call_and_overhead: Callable) -> str:
    """From two wall times at different NFE the answer must recover the per-call time and the fixed
    overhead (autoencoder, data movement) of the model time = NFE · per_call + overhead."""
    for per_call, overhead, nfe_many, nfe_one in ((40.0, 30.0, 15, 1), (12.5, 0.0, 4, 1), (3.0, 50.0, 50, 2)):
        ms_many, ms_one = nfe_many * per_call + overhead, nfe_one * per_call + overhead
        ours_call, ours_overhead = (float(v) for v in call_and_overhead(ms_many, nfe_many, ms_one, nfe_one))
        case = f"{ms_many:g} ms at {nfe_many} calls, {ms_one:g} ms at {nfe_one}"
        _expect(abs(ours_call - per_call) < 1e-9, f"{case}: per call {ours_call:.4g} ms, expected {per_call:g}")
        _expect(abs(ours_overhead - overhead) < 1e-9, f"{case}: overhead {ours_overhead:.4g} ms, expected {overhead:g}")
    return "a fixed overhead is why one step is less than 15x faster than fifteen."
