# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 — The RSD objective: why "a ResShift trained on the student equals the teacher" works
#
# **Paper claim.** RSD (§3.2, Prop. 3.1, Eq. 9–10; RSD_SPEC §4a) trains a generator $G_\theta$ so
# that $f^{G_\theta}$, the ResShift model one would train on its samples, coincides with the teacher
# $f^*$. This bilevel problem has a tractable min–max form whose inner problem is ordinary ResShift
# training (the *fake model*), and whose gradient needs no derivative of the inner optimum.
#
# **Learning goals.**
# 1. See that the MSE-optimal predictor is a conditional expectation, hence $f^{G} = f^*$ exactly
#    when the generator's distribution matches the data's.
# 2. Derive the min–max form and its gradient (envelope argument), and check the gradient
#    identity numerically on a linear-Gaussian case with a closed-form optimum.
# 3. Run the toy with a known answer: RSD ≈ teacher ≪ regression, and watch RSD training.
#
# **Prerequisites.** Notebooks 01 and 03 (the ResShift process and its $x_0$ loss).
#
# **Runtime.** Fast mode (default): about 1 min on 2 CPU cores (the toy at its `FAST` budget).
# Full mode (`RSD_MINI_FULL=1`): the toy at its default budget, about 1 min per seed at 1 thread
# (`python -m rsd_mini toy --seed S --modes K` runs the same).

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import math
import os

import ipywidgets as widgets
import torch
from IPython.display import display
from matplotlib.figure import Figure

import rsd_mini
from rsd_mini import toy

FAST = os.environ.get("RSD_MINI_FULL", "0") != "1"
torch.set_num_threads(min(2, torch.get_num_threads()))
SEED = 0
print(f"rsd-mini {rsd_mini.__version__} | mode: {'fast' if FAST else 'full'} | device: cpu")

# %% [markdown]
# ## 1. The bilevel problem
#
# Let $p_\theta(\hat x_0, y_0)$ be the student's joint distribution ($y_0$ from the data, $\hat x_0 =
# G_\theta(\cdot)$) and $q(x_t \mid \hat x_0, y_0)$ the ResShift forward process. Training ResShift
# on student samples gives
#
# $$f^{G_\theta} = \arg\min_f \sum_t w_t\,\mathbb E_{p_\theta(\hat x_0, y_0)\,q(x_t\mid \hat x_0, y_0)}\|f(x_t, y_0, t) - \hat x_0\|^2 ,$$
#
# and RSD minimises $\mathcal L(\theta) = \sum_t w_t \mathbb E\,\|f^{G_\theta}(x_t) - f^*(x_t)\|^2$
# (RSD Eq. 9). **Why it is sound:** the minimiser of an MSE is the conditional expectation,
# $f^{G_\theta}(x_t, y_0, t) = \mathbb E_\theta[\hat x_0 \mid x_t, y_0]$, and the teacher is (ideally)
# $\mathbb E_{\text{data}}[x_0 \mid x_t, y_0]$. The conditional expectations at *every* noise level
# determine the distribution (Tweedie / denoising score matching), so $\mathcal L(\theta) = 0$ iff
# $p_\theta(\hat x_0\mid y_0) = p_{\text{data}}(x_0\mid y_0)$.
#
# A numerical look at the first fact: fit the best linear predictor of $x_0$ from $x_t = x_0 +
# \sigma\varepsilon$ by least squares on samples of $x_0 \sim \mathcal N(m, s^2)$; it must equal the
# conditional expectation $m + k(x - m)$, $k = s^2/(s^2 + \sigma^2)$.

# %%
m, s, sigma = 0.3, 0.5, 0.8
k = s ** 2 / (s ** 2 + sigma ** 2)
g = torch.Generator().manual_seed(SEED)
x0 = m + s * torch.randn(200_000, generator=g, dtype=torch.float64)
x_t = x0 + sigma * torch.randn(200_000, generator=g, dtype=torch.float64)
design = torch.stack([torch.ones_like(x_t), x_t], 1)
intercept, slope = torch.linalg.lstsq(design, x0[:, None]).solution[:, 0].tolist()
print(f"least squares: {intercept:.4f} + {slope:.4f}·x   |   E[x0|x_t]: {m * (1 - k):.4f} + {k:.4f}·x")
assert abs(slope - k) < 0.01 and abs(intercept - m * (1 - k)) < 0.01

# %% [markdown]
# ## 2. The tractable form and its gradient
#
# Expanding the square and using that $f^{G_\theta}$ is the conditional mean of $\hat x_0$
# (Prop. 3.1, Eq. 10):
#
# $$\mathcal L(\theta) = \max_\phi\ J(\theta, \phi),\qquad
#   J(\theta, \phi) = \sum_t w_t\,\mathbb E\Big[\|f^*(x_t) - \hat x_0\|^2 - \|f_\phi(x_t) - \hat x_0\|^2\Big],$$
#
# with $\hat x_0 = G_\theta(\cdot)$ and $x_t = (1-\eta_t)\hat x_0 + \eta_t y_0 + \kappa\sqrt{\eta_t}\,\varepsilon'$
# reparameterised. The inner maximisation over $\phi$ is ResShift training on student samples (the
# *fake model*). **Envelope argument:** at the inner optimum $\phi^*(\theta)$, $\partial_\phi J = 0$,
# so
#
# $$\frac{d\mathcal L}{d\theta} = \frac{\partial J}{\partial\theta}\Big|_{\phi = \phi^*(\theta)} ,$$
#
# the gradient of $J$ at *frozen* $\phi$ — through $\hat x_0$ directly **and** through $x_t$ into
# $f^*$ and $f_\phi$. No derivative of $\phi^*$ is needed. ResShift-VSD (Alg. 2) drops the second
# path and keeps only the direct term $2(f_\phi - f^*)$.
#
# **Check on a linear-Gaussian case.** Data $x_0 \sim \mathcal N(m, s^2)$, noising $x_t = x_0 + \sigma\varepsilon$,
# teacher $f^*(x) = m + k(x - m)$. Student $\hat x_0 = \theta + s\,\varepsilon_g$. The fake optimum is
# $f_{\phi^*}(x) = \theta + k(x - \theta)$, so $f_{\phi^*} - f^* = (1-k)(\theta - m)$ and
#
# $$\mathcal L(\theta) = (1-k)^2(\theta - m)^2, \qquad \frac{d\mathcal L}{d\theta} = 2(1-k)^2(\theta - m).$$
#
# Below, autograd differentiates a Monte Carlo estimate of $J(\theta, \phi^*)$ at frozen $\phi^*$;
# it must match the closed form (and $J(\theta, \phi^*)$ itself must match $\mathcal L(\theta)$).

# %%
def J(theta, phi, n=400_000, seed=1, stop_gradient=False):
    """Monte Carlo J(θ, φ) with common random numbers; f_φ(x) = φ₀ + φ₁ x (frozen), f* the teacher."""
    g = torch.Generator().manual_seed(seed)
    x0_hat = theta + s * torch.randn(n, generator=g, dtype=torch.float64)
    x_t = x0_hat + sigma * torch.randn(n, generator=g, dtype=torch.float64)
    f_star, f_phi = m + k * (x_t - m), phi[0] + phi[1] * x_t
    if stop_gradient:  # ResShift-VSD
        f_star, f_phi = f_star.detach(), f_phi.detach()
    return ((f_star - x0_hat) ** 2 - (f_phi - x0_hat) ** 2).mean()


rows = []
for theta_value in (-0.5, 0.0, 0.3, 1.2):
    theta = torch.tensor(theta_value, dtype=torch.float64, requires_grad=True)
    phi_star = torch.tensor([theta_value * (1 - k), k], dtype=torch.float64)  # θ + k(x − θ)
    value = J(theta, phi_star)
    (grad,) = torch.autograd.grad(value, theta)
    theta_vsd = torch.tensor(theta_value, dtype=torch.float64, requires_grad=True)
    (grad_vsd,) = torch.autograd.grad(J(theta_vsd, phi_star, stop_gradient=True), theta_vsd)
    exact_value, exact_grad = (1 - k) ** 2 * (theta_value - m) ** 2, 2 * (1 - k) ** 2 * (theta_value - m)
    rows.append((theta_value, float(value), exact_value, float(grad), exact_grad, float(grad_vsd)))
    assert abs(float(value) - exact_value) < 0.01, (theta_value, float(value), exact_value)
    assert abs(float(grad) - exact_grad) < 0.01, (theta_value, float(grad), exact_grad)
print(f"{'θ':>5} {'J(θ,φ*)':>9} {'L(θ)':>8} {'dJ/dθ|φ*':>9} {'dL/dθ':>8} {'VSD':>8}")
for r in rows:
    print(f"{r[0]:5.2f} {r[1]:9.4f} {r[2]:8.4f} {r[3]:9.4f} {r[4]:8.4f} {r[5]:8.4f}")

# %% [markdown]
# The envelope gradient equals $d\mathcal L/d\theta$; the VSD gradient $2(1-k)(\theta - m)$ has the
# right sign here but another scale: in this one-parameter case both point the same way, while in
# general VSD optimises a sum of per-$t$ marginal KLs rather than the trajectory KL (RSD_SPEC §4a).

# %% [markdown]
# ## 3. A toy with a known answer
#
# `rsd_mini.toy`: $x_0 = (u, v)$, the "LR image" $y_0 = (u, 0)$ loses $v$, and $v \mid u$ is a
# mixture of K narrow Gaussians — so $p(x_0 \mid y_0)$ can be sampled exactly. Teacher, fake model and
# students are small MLPs with the UNet's call signature, trained by the very functions that train
# the image models (`rsd_mini.distill`). Each method is scored by the energy distance between its
# samples and exact ones, averaged over fixed $y_0$. The regression student (MSE from the prior)
# learns the conditional *mean*, which lies between the modes.

# %%
config = toy.ToyConfig(seed=SEED, modes=3, **(toy.FAST if FAST else {}))
result = toy.run_toy(config, snapshots=8)
names = ["exact", "teacher", "rsd", "vsd", "regression"]
for name in names:
    print(f"{name:>10}: energy distance {result[f'{name}_ed']:.4f}")
print(f"({result['seconds']:.0f} s)")
assert result["rsd_ed"] < 0.5 * result["regression_ed"] and result["teacher_ed"] < 0.5 * result["regression_ed"]


# %%
def scatter_methods(samples: dict, u: float):
    fig = Figure(figsize=(12, 2.6), layout="constrained")
    axes = fig.subplots(1, len(names), sharey=True)
    for ax, name in zip(axes, names):
        v = samples[name][:, 1]
        ax.hist(v.numpy(), bins=60, range=(-1.2, 1.4), color="C0" if name != "exact" else "C2")
        ax.set_title(f"{name}" + (f"  ED {result[name + '_ed']:.3f}" if name != "exact" else ""), fontsize=9)
        ax.set_xlabel(f"v | u = {u:.2f}")
    return fig


u0 = list(result["samples"])[1]
scatter_methods(result["samples"][u0], u0)

# %% [markdown]
# ## 4. Try it: RSD training, step by step
#
# One-step samples of the RSD student at $y_0 = (0.5, 0)$ during training; it starts as the
# teacher's one-call prediction (the blurry mean) and spreads into the modes. The static figure
# after the slider shows all snapshots.

# %%
snapshots = result["snapshots"]
exact_v = toy.sample_conditional(torch.full((2000,), 0.5), config, torch.Generator().manual_seed(3))[:, 1]


def show_snapshot(index=len(snapshots) - 1):
    step, samples = snapshots[index]
    fig = Figure(figsize=(5, 2.6), layout="constrained")
    ax = fig.subplots()
    ax.hist(exact_v.numpy(), bins=60, range=(-1.2, 1.4), alpha=0.5, color="C2", label="exact", density=True)
    ax.hist(samples[:, 1].numpy(), bins=60, range=(-1.2, 1.4), alpha=0.6, color="C0", label="RSD student", density=True)
    ax.set_title(f"after {step} student updates"), ax.legend(fontsize=8)
    display(fig)


widgets.interact(show_snapshot, index=widgets.IntSlider(value=len(snapshots) - 1, min=0, max=len(snapshots) - 1,
                                                        description="snapshot"));

# %%
fig = Figure(figsize=(12, 2.4), layout="constrained")
for ax, (step, samples) in zip(fig.subplots(1, len(snapshots), sharey=True), snapshots):
    ax.hist(samples[:, 1].numpy(), bins=40, range=(-1.2, 1.4), color="C0")
    ax.set_title(f"step {step}", fontsize=8)
fig

# %% [markdown]
# ## Exercises
#
# **Exercise 1 — energy distance.** Return $2\mathbb E\|X - Y\| - \mathbb E\|X - X'\| - \mathbb E\|Y - Y'\|$
# for samples `a` (N, D) and `b` (M, D). The checker compares with `toy.energy_distance`.

# %%
def my_energy_distance(a, b):
    return float(2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean() - torch.cdist(b, b).mean())


# %%
def check_energy_distance(fn):
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(300, 2, generator=g), torch.randn(200, 2, generator=g) + 0.5
    assert math.isclose(fn(a, b), toy.energy_distance(a, b), rel_tol=1e-6)
    assert fn(a, b) > fn(a, a.flip(0))
    print("Exercise 1: correct.")


check_energy_distance(my_energy_distance)

# %% [markdown]
# **Exercise 2 — the fake model's optimum.** In the linear-Gaussian case, return the slope and
# intercept of $f_{\phi^*}(x) = \mathbb E_\theta[\hat x_0 \mid x_t = x]$ for student mean θ. The
# checker fits it by least squares on student samples.

# %%
def fake_optimum(theta):
    return k, theta * (1 - k)


# %%
def check_fake_optimum(fn):
    g = torch.Generator().manual_seed(5)
    for theta in (-0.4, 0.9):
        x0_hat = theta + s * torch.randn(200_000, generator=g, dtype=torch.float64)
        x_t = x0_hat + sigma * torch.randn(200_000, generator=g, dtype=torch.float64)
        fit = torch.linalg.lstsq(torch.stack([torch.ones_like(x_t), x_t], 1), x0_hat[:, None]).solution[:, 0]
        slope, intercept = fn(theta)
        assert abs(slope - float(fit[1])) < 0.01 and abs(intercept - float(fit[0])) < 0.01
    print("Exercise 2: correct — the fake model is ResShift training on student samples.")


check_fake_optimum(fake_optimum)

# %% [markdown]
# ## Summary
#
# * $f^{G}$ is a conditional expectation; it equals the teacher at every noise level iff the
#   student's distribution is the data's — that is the RSD objective (Eq. 9).
# * The min–max form (Prop. 3.1) turns the inner problem into ResShift training of a fake model;
#   the envelope argument gives the student's gradient at frozen $\phi$, through $\hat x_0$ and
#   through $x_t$ into $f^*$ and $f_\phi$ (VSD keeps only the direct term).
# * On the toy, one-step RSD lands near the multistep teacher while regression collapses between
#   the modes.
#
# **Where this lives in the library.** `rsd_mini/distill.py` (`fake_loss`, `student_loss`,
# `student_predict`, `one_step_sample`), `rsd_mini/toy.py` (`ToyConfig`, `run_toy`,
# `energy_distance`; CLI `python -m rsd_mini toy`).
#
# **Next:** `05` — distilling the tiny image teacher.
