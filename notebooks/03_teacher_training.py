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
# # 03 — Training the ResShift teacher, and sampling it in $T$ steps
#
# **Paper claim.** The teacher RSD distils is ResShift v1: a network $f_\theta(x_t, y_0, t)$
# trained to predict $x_0$ with an *unweighted* MSE over $t \sim \mathcal U\{1..T\}$ (the ELBO
# weight of RSD Eq. 46 is dropped), sampled by running the reverse chain for all $T = 15$ steps
# — 15 network calls per image (RSD_SPEC §1; RSD Table 4: 0.643 s against RSD's 0.059 s on an
# A100). RSD's whole point is to get the same quality in one call.
#
# **Learning goals.**
# 1. Write the $x_0$-prediction loss and check it against `ResShift.training_loss`.
# 2. Train the tiny pixel-space teacher (or load the one `make reproduce` trained) and read its
#    loss curve.
# 3. Sample it ancestrally, watch $\hat x_0$ along the trajectory, and measure what using fewer
#    network calls with the *same* network does — the gap that distillation closes.
#
# **Prerequisites.** Notebook 01 (schedule, posterior, `scale_input`) and 02 (the mini dataset).
#
# **Runtime.** Fast mode (default): under 1 min on 2 CPU cores (about 30 s). If `make reproduce` has left
# its finished teacher in `runs/tiny/teacher/last.pt`, fast mode loads it; otherwise it runs 30
# updates in a temporary folder — enough to exercise every line and see the loss fall, **not**
# enough for a good model (expect blurry, grey-ish samples). Full mode (`RSD_MINI_FULL=1`) trains
# the tiny preset to its end in `runs/tiny/teacher/` — the same run, resumable, as
# `make reproduce` (its wall time is in the README) — on a GPU when there is one.

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import json
import math
import os
import tempfile
from pathlib import Path

import ipywidgets as widgets
import kornia
import torch
from IPython.display import display

import rsd_mini
from rsd_mini import viz
from rsd_mini.checkpoint import load_checkpoint
from rsd_mini.config import TeacherConfig, apply_overrides, from_dict, load_config
from rsd_mini.diffusion import ResShift
from rsd_mini.metrics import psnr, rgb_to_y, to_unit_range
from rsd_mini.reproduce import validation_batch
from rsd_mini.train import TeacherTrainer, pixel_space_pair
from rsd_mini.unet import SwinUNet, count_parameters

FAST = os.environ.get("RSD_MINI_FULL", "0") != "1"
torch.set_num_threads(min(2, torch.get_num_threads()))  # at most 2; OMP_NUM_THREADS=1 lowers it
SEED = 0
DEVICE = torch.device("cuda" if torch.cuda.is_available() and not FAST else "cpu")
ROOT = Path(rsd_mini.__file__).resolve().parents[1]  # the repository (editable install)
CHECKPOINT = ROOT / "runs" / "tiny" / "teacher" / "last.pt"  # written by `make reproduce`
N_VAL = 4 if FAST else 16  # validation crops sampled below
print(f"rsd-mini {rsd_mini.__version__} | mode: {'fast' if FAST else 'full'} | device: {DEVICE} | "
      f"torch {torch.__version__} | cached teacher: {CHECKPOINT.is_file()}")

# %% [markdown]
# ## 1. The $x_0$-prediction loss
#
# The variational bound of the ResShift chain is a sum of KL divergences between the true
# posterior $q(x_{t-1} \mid x_t, x_0, y_0)$ and the model's, which uses $\hat x_0 = f_\theta$ in
# place of $x_0$. Both are Gaussians with the same variance (notebook 01), so each KL is a
# squared distance between the means, $\frac{\alpha_t}{\eta_t}(x_0 - \hat x_0)$:
#
# $$\mathcal L_{\text{ELBO}} = \sum_t w_t\, \mathbb E\,\|f_\theta(x_t, y_0, t) - x_0\|^2,\qquad
#   w_t = \frac{\alpha_t}{2\kappa^2\eta_t\eta_{t-1}} \quad \text{(RSD Eq. 46)}.$$
#
# ResShift drops $w_t$ — it is infinite at $t=1$ ($\eta_0 = 0$) and spans orders of magnitude —
# and trains the plain mean over pixels (`weighted_mse: False`):
#
# $$\mathcal L(\theta) = \mathbb E_{t, \varepsilon}\ \tfrac{1}{CHW}\big\|f_\theta\big(\mathrm{scale}(x_t), y_0, t\big) - x_0\big\|^2,
#   \qquad x_t = x_0 + \eta_t(y_0 - x_0) + \kappa\sqrt{\eta_t}\,\varepsilon .$$
#
# In the paper $x_0, y_0$ are VQ latents and the network also sees the pixel LR image; here
# (pixel space) the network's conditioning image is $y_0$ itself, concatenated on the channels.

# %%
config = load_config("tiny")
d = config.diffusion
process_check = ResShift(d.steps, d.kappa, d.min_noise_level, d.etas_end, d.power)  # T=15, κ=2: v1's schedule
val = validation_batch(config, limit=N_VAL)  # fixed 64² val crops of the mini dataset, in [-1, 1]
x0, y0 = pixel_space_pair(val, config.data.scale)  # HR crop, bicubic ↑4 of the LR crop
net = SwinUNet(config.unet).eval()  # any network will do to check the loss: a fresh one
print(f"tiny SwinUNet: {count_parameters(net):,} parameters; x0 {tuple(x0.shape)}")


def loss_inline(model, process, x0, y0, i, noise):
    """Per-sample mean over C·H·W of (f(scaled x_t, y₀, t) − x₀)², pixel-space scaling."""
    eta = process.etas[i].float().view(-1, 1, 1, 1)
    x_t = x0 + eta * (y0 - x0) + process.kappa * eta.sqrt() * noise
    scaled = x_t / (3 * process.kappa * eta.sqrt() + 1)  # notebook 01, section 7
    return (model(scaled, i, lq=y0) - x0).pow(2).flatten(1).mean(1)


i = torch.linspace(0, 14, len(x0)).round().long()  # one timestep index per sample
noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(SEED))
with torch.no_grad():
    ours = loss_inline(net, process_check, x0, y0, i, noise)
    library = process_check.training_loss(net, x0, y0, lq=y0, t=i, noise=noise, latent=False)
assert torch.allclose(ours, library, rtol=1e-5, atol=1e-7)
print("per-sample loss at t =", (i + 1).tolist(), ":", [round(v, 4) for v in library.tolist()])

# %%
p = process_check
elbo_w = {f"{t}": float(p.alphas[t - 1] / (2 * p.kappa ** 2 * p.etas[t - 1] * p.etas_prev[t - 1])) for t in range(2, 16)}
assert max(elbo_w.values()) / min(elbo_w.values()) > 100  # why ResShift uses weight 1 instead
fig = viz.bar_chart(elbo_w, ylabel="ELBO weight $w_t$ (t = 1: ∞)", fmt="{:.2g}")
fig.axes[0].set_yscale("log")
fig.axes[0].set_xlabel("t")
fig

# %% [markdown]
# ## 2. Training the tiny teacher
#
# `TeacherTrainer` runs the official loop: per update a fresh batch of (HR, LR) pairs from the
# mini dataset (plain bicubic ×4 degradation in the tiny preset), $t$ and $\varepsilon$ from a generator seeded by
# (seed, step), the loss above, AdamW with warm-up and cosine decay, gradient clipping, and an
# EMA copy of the weights — the model that is evaluated (and, in the paper, distilled).
#
# The EMA averages over roughly $1/(1-\text{rate})$ updates. The tiny preset uses 0.99 (about 100
# updates) over 600 updates; the 30-update fast run uses 0.8, or its EMA would still be ~75 %
# the random initialisation. (RSD's EMA 0.999 over 3 k steps keeps about 5 % of the teacher.)

# %%
def load_trained(path):
    """A trainer restored from a checkpoint, with the configuration it was trained with."""
    state = load_checkpoint(path, map_location=DEVICE)
    trainer = TeacherTrainer(from_dict(TeacherConfig, state["config"]), device=DEVICE)
    trainer.load_state_dict(state)
    return trainer


if FAST and CHECKPOINT.is_file():
    trainer = load_trained(CHECKPOINT)
    source = f"loaded {CHECKPOINT.relative_to(ROOT)} ({trainer.step} updates)"
else:
    out_dir = str(CHECKPOINT.parent) if not FAST else tempfile.mkdtemp(prefix="rsd-mini-teacher-")
    overrides = [f"train.out_dir={out_dir}"] + (
        ["train.iterations=30", "train.batch_size=4", "train.microbatch=4", "train.log_every=3",
         "optim.warmup_steps=3", "optim.lr=1e-3", "optim.min_lr=1e-4", "train.ema_rate=0.8"] if FAST else [])
    torch.manual_seed(SEED)  # TeacherTrainer initialises the network from torch's global generator
    trainer = TeacherTrainer(apply_overrides(load_config("tiny"), overrides), device=DEVICE)
    trainer.fit(progress=not FAST)
    source = f"trained {trainer.step} updates in {trainer.seconds:.0f} s"
teacher, process = trainer.ema_model.eval(), trainer.diffusion
# The log sits next to the checkpoint (a stored out_dir may be relative to another folder).
log = (CHECKPOINT.parent if FAST and CHECKPOINT.is_file() else trainer.out_dir) / "log.jsonl"
print(source)

# %%
rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
losses = [row["loss"] for row in rows if "loss" in row]
third = max(1, len(losses) // 3)
assert len(losses) >= 3 and sum(losses[-third:]) / third < sum(losses[:third]) / third, losses
print(f"{len(losses)} logged windows; mean loss {losses[0]:.4f} → {losses[-1]:.4f}")
viz.plot_loss_curve(rows)

# %% [markdown]
# ## 3. Ancestral sampling: 15 network calls
#
# Start from the prior $x_T = y_0 + \kappa\sqrt{\eta_T}\,\varepsilon$; at every step ask the
# network for $\hat x_0 = f_\theta(x_t, y_0, t)$ (clamped to $[-1,1]$ in pixel space) and draw
# $x_{t-1}$ from the posterior of notebook 01 with $\hat x_0$ in place of $x_0$. The last step
# returns $\hat x_0$ itself.

# %%
x0, y0 = x0.to(DEVICE), y0.to(DEVICE)
sample_15, steps = process.sample(teacher, y0, generator=torch.Generator().manual_seed(SEED), latent=False,
                                  return_trajectory=True)
assert len(steps) == process.steps == 15 and torch.equal(sample_15, steps[-1].pred_x0)
assert float(sample_15.abs().max()) <= 1  # x̂₀ is clamped in pixel space
viz.plot_trajectory(steps, max_columns=8)

# %% [markdown]
# ## 4. Fewer network calls with the same network
#
# Why not just build `ResShift(steps=4, ...)` and sample with it? Because that is a *different*
# schedule: its index 1 would mean $\eta$ of a 4-step chain, while this network has only ever
# seen the 15 noise levels of v1 (ResShift v3 is a separately trained 4-step model, with another
# `min_noise_level`). What is legitimate is to **visit a subset of the trained timesteps**. For
# any $s < t$ the forward chain from $s$ to $t$ is Gaussian with shift $\eta_t - \eta_s$, so the
# posterior has the same form as in notebook 01 with $\eta_{t-1} \to \eta_s$:
#
# $$q(x_s \mid x_t, x_0, y_0) = \mathcal N\Big(\tfrac{\eta_s}{\eta_t}x_t + \big(1 - \tfrac{\eta_s}{\eta_t}\big)x_0,\
#   \kappa^2\tfrac{\eta_s}{\eta_t}(\eta_t - \eta_s)\Big)$$
#
# (the "respacing" of DDPM and of SinSR's `space_timesteps`). Visiting all 15 indices must give
# the library's sampler exactly — the assert below. Visiting only index $T-1$ is **one** call:
# $f_\theta(x_T, y_0, T)$, the network's minimum-MSE guess from the prior, an *average* of all
# HR images compatible with $y_0$ — blurry, but often the best PSNR. A 15-step sample commits to
# one sharp image instead. RSD trains a one-call student whose output matches the 15-step
# *distribution* (notebook 04 onwards), not this average.

# %%
def sample_respaced(model, process, y0, visit, generator):
    """Ancestral sampling visiting the timestep indices ``visit`` (descending, from T − 1)."""
    x = process.prior_sample(y0, torch.randn(y0.shape, generator=generator).to(y0.device))
    for t, s in zip(visit, visit[1:] + [None]):
        with torch.no_grad():
            pred = process.predict_x0(model, x, t, lq=y0, latent=False, clip=True)
        if s is None:
            return pred
        ratio = float(process.etas[s] / process.etas[t])
        variance = process.kappa ** 2 * ratio * float(process.etas[t] - process.etas[s])
        x = ratio * x + (1 - ratio) * pred + math.sqrt(variance) * torch.randn(x.shape, generator=generator).to(x.device)


all_steps = list(range(14, -1, -1))
respaced_15 = sample_respaced(teacher, process, y0, all_steps, torch.Generator().manual_seed(SEED))
assert torch.allclose(respaced_15, sample_15, atol=1e-4)


def visits(calls):
    """``calls`` indices evenly spread from T − 1 down to 0 (just T − 1 for one call)."""
    return [14] if calls == 1 else sorted({round(14 * (1 - k / (calls - 1))) for k in range(calls)}, reverse=True)


assert visits(15) == all_steps and visits(4) == [14, 9, 5, 0] and visits(1) == [14]
print("4 calls visit t =", [s + 1 for s in visits(4)])

# %% [markdown]
# ## 5. Try it: how many network calls?
#
# The slider picks the number of calls (the visited timesteps are spread evenly), the dropdown a
# validation crop. The static figure after it shows 1, 4 and 15 calls on every crop.

# %%
def show_calls(calls=4, crop=0):
    sample = sample_respaced(teacher, process, y0[crop:crop + 1], visits(calls), torch.Generator().manual_seed(SEED))
    score = float(psnr(to_unit_range(sample), to_unit_range(x0[crop:crop + 1])))
    display(viz.image_grid([y0[crop], sample[0], x0[crop]], size=3,
                           titles=["bicubic ↑4 (y₀)", f"{calls} call(s): PSNR {score:.2f} dB", "HR"]))


widgets.interact(show_calls, calls=widgets.IntSlider(value=4, min=1, max=15, description="calls"),
                 crop=widgets.Dropdown(options=list(range(len(x0))), value=0, description="crop"));

# %%
samples = {f"{calls} call{'s' * (calls > 1)}": sample_respaced(teacher, process, y0, visits(calls),
                                                              torch.Generator().manual_seed(SEED))
           for calls in (1, 4)}
samples["15 calls"] = sample_15
viz.image_grid([y0, *samples.values(), x0], titles=[f"crop {k}" for k in range(len(x0))],
               row_titles=["bicubic ↑4", *samples, "HR"], suptitle=f"Tiny teacher ({source})")

# %% [markdown]
# ## 6. PSNR against simple baselines
#
# PSNR on the Y channel, as the paper reports it (`rsd_mini.metrics.psnr`; first checked against
# kornia's PSNR on the Y channels). Two baselines bracket the teacher: an all-grey image (the
# output of a network that learned nothing) and bicubic up-sampling (notebook 02, exercise 3).
# The trained teacher must beat grey; beating bicubic in PSNR takes the full tiny run — and even
# then, sampling trades some PSNR for sharpness (the perception–distortion trade-off).

# %%
def y_psnr_kornia(pred, target):
    return torch.stack([kornia.metrics.psnr(rgb_to_y(p[None]), rgb_to_y(t[None]), 1.0) for p, t in zip(pred, target)])


target = to_unit_range(x0)
assert torch.allclose(psnr(to_unit_range(sample_15), target), y_psnr_kornia(to_unit_range(sample_15), target).double(), atol=1e-3)
scores = {"all grey": psnr(to_unit_range(torch.zeros_like(x0)), target), "bicubic": psnr(to_unit_range(y0), target)}
scores |= {name: psnr(to_unit_range(image), target) for name, image in samples.items()}
mean_scores = {name: float(values.mean()) for name, values in scores.items()}
assert mean_scores["15 calls"] > mean_scores["all grey"], mean_scores
for name, value in mean_scores.items():
    print(f"{name:>9}: {value:6.2f} dB")
viz.bar_chart(mean_scores, ylabel=f"PSNR, Y channel (dB), {len(x0)} val crops")

# %% [markdown]
# ## Exercises
#
# **Exercise 1 — where $w_t$ comes from.** Return the ELBO weights $w_t$ for $t = 2..T$ (index
# $t-2$). The checker computes the KL divergence between the true posterior and the model's (same
# variance, means from $x_0$ and $\hat x_0$) with `torch.distributions` and compares it with
# $w_t\|x_0 - \hat x_0\|^2$.

# %%
def elbo_weights(process):
    return process.alphas[1:] / (2 * process.kappa ** 2 * process.etas[1:] * process.etas_prev[1:])


# %%
def check_elbo_weights(fn):
    weights = fn(process)
    generator = torch.Generator().manual_seed(3)
    a, b = torch.randn(1, 3, 8, 8, generator=generator, dtype=torch.float64), torch.randn(1, 3, 8, 8, generator=generator, dtype=torch.float64)
    x_t = torch.randn(1, 3, 8, 8, generator=generator, dtype=torch.float64)
    for t in range(2, 16):
        (mean_a, var), (mean_b, _) = process.posterior(a, x_t, t - 1), process.posterior(b, x_t, t - 1)
        kl = torch.distributions.kl_divergence(torch.distributions.Normal(mean_a, var.sqrt()),
                                               torch.distributions.Normal(mean_b, var.sqrt())).sum()
        assert torch.isclose(kl, weights[t - 2] * (a - b).pow(2).sum(), rtol=1e-9), f"t={t}: KL {float(kl):.4g}"
    print("Exercise 1: correct — KL(q ‖ p_θ) = w_t ‖x₀ − x̂₀‖², RSD Eq. 46.")


check_elbo_weights(elbo_weights)

# %% [markdown]
# **Exercise 2 — the skip posterior.** Return the mean coefficients and the variance of
# $q(x_s \mid x_t, x_0, y_0)$ for indices $s < t$. The checker tests that it reduces to the
# library's one-step posterior for $s = t-1$ and that it keeps the marginals for every pair:
# pushing $x_t \sim q(x_t \mid x_0, y_0)$ through it gives exactly the variance $\kappa^2\eta_s$.

# %%
def skip_posterior(process, s, t):
    """(coefficient of x_t, coefficient of x₀, variance) of q(x_s | x_t, x₀, y₀)."""
    ratio = process.etas[s] / process.etas[t]
    return ratio, 1 - ratio, process.kappa ** 2 * ratio * (process.etas[t] - process.etas[s])


# %%
def check_skip_posterior(fn):
    for t in range(1, 15):
        c_t, c_0, var = fn(process, t - 1, t)
        assert torch.isclose(torch.as_tensor(c_t), process.posterior_mean_coef1[t], rtol=1e-12)
        assert torch.isclose(torch.as_tensor(c_0), process.posterior_mean_coef2[t], rtol=1e-12)
        assert torch.isclose(torch.as_tensor(var), process.posterior_variance[t], rtol=1e-12)
        for s in range(t):
            c_t, c_0, var = fn(process, s, t)
            assert abs(float(c_t + c_0) - 1) < 1e-12, "the mean must interpolate between x_t and x₀"
            noise_var = c_t ** 2 * process.kappa ** 2 * process.etas[t] + var  # Var of x_s given x₀
            assert torch.isclose(torch.as_tensor(noise_var), process.kappa ** 2 * process.etas[s], rtol=1e-10), (s, t)
    print("Exercise 2: correct — skipping steps keeps every marginal q(x_s | x₀, y₀).")


check_skip_posterior(skip_posterior)

# %% [markdown]
# **Exercise 3 — how long does the EMA remember?** With rate $r$, the initial weights keep a
# share $r^n$ after $n$ updates. Return the smallest $n$ for which that share is below 1 %.

# %%
def ema_updates_to_forget(rate, share=0.01):
    return math.ceil(math.log(share) / math.log(rate))


# %%
def check_ema(fn):
    for rate in (0.8, 0.99, 0.999):
        n = fn(rate)
        assert rate ** n < 0.01 <= rate ** (n - 1), f"rate {rate}: n = {n} is not the smallest"
        ema = torch.nn.Linear(1, 1, bias=False)  # simulate: start at 1, average towards 0
        averaged = torch.optim.swa_utils.AveragedModel(ema, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(rate))
        with torch.no_grad():
            ema.weight.fill_(1.0)
            averaged.update_parameters(ema)
            ema.weight.fill_(0.0)
            for _ in range(n):
                averaged.update_parameters(ema)
        assert float(averaged.module.weight.detach()) < 0.01
    print(f"Exercise 3: correct — 0.99 forgets in {fn(0.99)} updates, 0.999 (ResShift and RSD) in {fn(0.999)}.")


check_ema(ema_updates_to_forget)

# %% [markdown]
# ## Summary
#
# * The teacher minimises the unweighted $x_0$ MSE; the ELBO weight $w_t$ is what makes the KL
#   of two posteriors a weighted MSE, and ResShift sets it to 1.
# * `TeacherTrainer` is the official loop (warm-up, AdamW, EMA); the tiny preset trains in
#   pixel space on the mini dataset, and every batch is a pure function of (seed, step).
# * Sampling costs one network call per visited timestep. Visiting fewer of the trained steps
#   is legitimate (skip posterior) but moves the output towards the blurry MMSE average; one
#   call is just $f_\theta(x_T)$. RSD trains a student to be sharp in one call.
#
# **Where this lives in the library.**
# * `rsd_mini/diffusion.py`: `ResShift.training_loss`, `.predict_x0`, `.sample`,
#   `.sample_progressive`, `SampleStep`.
# * `rsd_mini/train.py`: `TeacherTrainer` (`fit`, `train_step`, `validate`, checkpoints),
#   `pixel_space_pair`; `rsd_mini/config.py`: presets `tiny`, `resshift-v1`, `apply_overrides`.
# * `rsd_mini/unet.py`: `SwinUNet`, `unet_preset`; `rsd_mini/metrics.py`: `psnr`, `ssim`.
# * `rsd_mini/reproduce.py`: `validation_batch`, `evaluate` (the `make reproduce` path).
# * `rsd_mini/viz.py`: `plot_loss_curve`, `plot_trajectory`, `image_grid`, `bar_chart`.
#
# **Next:** `04` — the RSD objective: distilling this 15-step teacher into one step.
