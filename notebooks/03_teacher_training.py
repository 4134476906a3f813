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
# 2. Read the loss curve of the trained tiny pixel-space teacher, and watch a training run start.
# 3. Sample it ancestrally, watch $\hat x_0$ along the trajectory, and measure what using fewer
#    network calls with the *same* network does — the gap that distillation closes.
#
# **Prerequisites.** Notebook 01 (schedule, posterior, `scale_input`) and 02 (the mini dataset).
#
# **Runtime.** Fast mode (default): under 1 min on 2 CPU cores. The results shown are those of
# a real, finished teacher (1000 updates, about 10 min on 2 cores): the one `make reproduce` left
# in `runs/tiny/teacher/last.pt` when it exists, otherwise the **shipped** `tiny-teacher`
# (`rsd_mini.load`, made by the same command) and its training log. A 12-update live run in a
# temporary folder only shows the training loop start; it is never used as the result. Every
# figure says which model made it. Full mode (`RSD_MINI_FULL=1`) trains the tiny preset to its
# end in `runs/tiny/teacher/` — the same run, resumable, as `make reproduce` — on a GPU when
# there is one.

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
from matplotlib.figure import Figure

import rsd_mini
from rsd_mini import hub, viz
from rsd_mini.checkpoint import load_checkpoint
from rsd_mini.config import TeacherConfig, apply_overrides, from_dict, load_config
from rsd_mini.diffusion import ResShift
from rsd_mini.metrics import high_frequency_ratio, psnr, rgb_to_y, to_unit_range
from rsd_mini.reproduce import validation_batch
from rsd_mini.train import TeacherTrainer, pixel_space_pair
from rsd_mini.unet import SwinUNet, count_parameters

FAST = os.environ.get("RSD_MINI_FULL", "0") != "1"
torch.set_num_threads(min(2, torch.get_num_threads()))  # at most 2; OMP_NUM_THREADS=1 lowers it
SEED = 0
DEVICE = torch.device("cuda" if torch.cuda.is_available() and not FAST else "cpu")
ROOT = Path(rsd_mini.__file__).resolve().parents[1]  # the repository (editable install)
CHECKPOINT = ROOT / "runs" / "tiny" / "teacher" / "last.pt"  # written by `make reproduce`
N_VAL = 8 if FAST else 32  # held-out crops evaluated: fast mode, the first 8 of the README's 32 (runtime)
print(f"rsd-mini {rsd_mini.__version__} | mode: {'fast' if FAST else 'full'} | device: {DEVICE} | "
      f"torch {torch.__version__} | `make reproduce` teacher present: {CHECKPOINT.is_file()}")

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


x0_few, y0_few = x0[:4], y0[:4]  # four crops are enough to check the formula
i = torch.linspace(0, 14, len(x0_few)).round().long()  # one timestep index per sample
noise = torch.randn(x0_few.shape, generator=torch.Generator().manual_seed(SEED))
with torch.no_grad():
    ours = loss_inline(net, process_check, x0_few, y0_few, i, noise)
    library = process_check.training_loss(net, x0_few, y0_few, lq=y0_few, t=i, noise=noise, latent=False)
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
# The EMA averages over roughly $1/(1-\text{rate})$ updates. The tiny preset uses 0.995 (about
# 200 updates) over its 1000 updates, so the evaluated weights average the last fifth of the run
# (the cell below checks that the preset still says so). The 12-update live run at the end of
# this section uses 0.8, or its EMA would still be about 94 % the random initialisation
# ($0.995^{12}$). (RSD's EMA 0.999 over 3 k steps keeps about 5 % of the teacher it starts from.)
#
# **Which teacher is shown.** Training the preset to its end takes about 10 min on 2 cores, so
# fast mode does not train it: it loads the teacher of a finished run — the one `make reproduce`
# wrote to `runs/tiny/teacher/` if present, otherwise the shipped `tiny-teacher` made by the same
# command — together with that run's own training log. Full mode trains (or resumes) it here.

# %%
def load_trained(path):
    """A trainer restored from a checkpoint, with the configuration it was trained with."""
    state = load_checkpoint(path, map_location=DEVICE)
    trainer = TeacherTrainer(from_dict(TeacherConfig, state["config"]), device=DEVICE)
    trainer.load_state_dict(state)
    return trainer


preset = load_config("tiny").train
assert (preset.ema_rate, preset.iterations) == (0.995, 1000), "the text above quotes the tiny preset: update it"
if not FAST or CHECKPOINT.is_file():
    if not FAST:  # full mode: train (or resume) the preset to its end, as `make reproduce` does
        torch.manual_seed(SEED)  # TeacherTrainer initialises the network from torch's global generator
        trainer = TeacherTrainer(apply_overrides(load_config("tiny"), [f"train.out_dir={CHECKPOINT.parent}"]),
                                 device=DEVICE)
        trainer.fit(progress=True)
    else:
        trainer = load_trained(CHECKPOINT)
    teacher, process = trainer.ema_model.eval(), trainer.diffusion
    SOURCE = f"{'full-mode' if not FAST else '`make reproduce`'} run, {trainer.step} updates (runs/tiny/teacher)"
    log = CHECKPOINT.parent / "log.jsonl"  # the log sits next to the checkpoint
    REFERENCE = CHECKPOINT.parents[1] / "metrics.json"  # written by `make reproduce` when it finished
else:
    shipped = rsd_mini.load("tiny-teacher", device=DEVICE)
    teacher, process = shipped.network, shipped.process
    SOURCE = f"shipped tiny-teacher, {shipped.meta['steps_trained']} updates (`{shipped.meta['command']}`)"
    log = hub.SHIPPED["tiny-teacher"].with_suffix(".log.jsonl")  # its training log, shipped beside it
    REFERENCE = ROOT / "figures" / "tiny_metrics.json"  # the shipped models' held-out metrics
print(f"teacher: {SOURCE}; log: {log.relative_to(ROOT)}")

# %%
rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
losses = [row["loss"] for row in rows if "loss" in row]
third = max(1, len(losses) // 3)
first_third, last_third = sum(losses[:third]) / third, sum(losses[-third:]) / third
assert len(losses) >= 3 and last_third < first_third, losses
print(f"{len(losses)} logged means over {rows[0]['step']} updates each; mean loss {first_third:.4f} over the "
      f"first third of the run, {last_third:.4f} over the last third")
fig = viz.plot_loss_curve(rows)
fig.axes[0].set_title(f"Training loss — {SOURCE}", fontsize=9)
fig

# %% [markdown]
# The loss is a mean over random $t$ and random crops, so it is noisy from one logged window to
# the next; what falls is its trend (first third against last third above). Most of the drop
# comes in the first few hundred updates.
#
# **Watch it start (live demo, not the result).** The same trainer, from random weights, for 12
# updates of batch 4 in a temporary folder that is deleted afterwards. Twelve updates are enough
# to see every line run and the loss logged — at this point it still jumps up and down with the
# random $t$ of each batch — and far too few for a useful model: nothing below uses this network.

# %%
DEMO_UPDATES = 12
with tempfile.TemporaryDirectory(prefix="rsd-mini-03-") as demo_dir:
    torch.manual_seed(SEED)  # TeacherTrainer initialises the network from torch's global generator
    demo = TeacherTrainer(apply_overrides(load_config("tiny"), [
        f"train.out_dir={demo_dir}", f"train.iterations={DEMO_UPDATES}", "train.batch_size=4", "train.microbatch=4",
        "train.log_every=2", "optim.warmup_steps=3", "optim.lr=1e-3", "optim.min_lr=1e-4", "train.ema_rate=0.8"]),
        device=DEVICE)
    demo.fit(progress=False)
    demo_rows = [json.loads(line) for line in (demo.out_dir / "log.jsonl").read_text().splitlines() if line.strip()]
assert not Path(demo_dir).exists()  # the temporary folder (checkpoints included) is gone
demo_losses = [row["loss"] for row in demo_rows if "loss" in row]
assert demo.step == DEMO_UPDATES and all(math.isfinite(v) for v in demo_losses)
print(f"live demo: {demo.step} updates in {demo.seconds:.0f} s; logged losses "
      f"{', '.join(f'{v:.4f}' for v in demo_losses)}")
fig = viz.plot_loss_curve(demo_rows)
fig.axes[0].set_title(f"Live demo: the first {DEMO_UPDATES} updates from random weights (not the result)", fontsize=9)
fig

# %% [markdown]
# ## 3. Ancestral sampling: 15 network calls
#
# Start from the prior $x_T = y_0 + \kappa\sqrt{\eta_T}\,\varepsilon$; at every step ask the
# network for $\hat x_0 = f_\theta(x_t, y_0, t)$ (clamped to $[-1,1]$ in pixel space) and draw
# $x_{t-1}$ from the posterior of notebook 01 with $\hat x_0$ in place of $x_0$. The last step
# returns $\hat x_0$ itself.
#
# What to look for in the bottom row: at $t = 15$ the state is almost pure noise and
# $\hat x_0$ is the network's blurry average of every HR image compatible with $y_0$; as $t$
# falls the state carries more of one particular image and $\hat x_0$ commits to its detail. The
# share of spectral energy above half Nyquist (`high_frequency_ratio`, notebook 06) measures it.

# %%
SHOWN = 4  # crops sampled step by step and drawn below (sections 3–5)
x0, y0 = x0.to(DEVICE), y0.to(DEVICE)
sample_15, steps = process.sample(teacher, y0[:SHOWN], generator=torch.Generator().manual_seed(SEED), latent=False,
                                  return_trajectory=True)
assert len(steps) == process.steps == 15 and torch.equal(sample_15, steps[-1].pred_x0)
assert float(sample_15.abs().max()) <= 1  # x̂₀ is clamped in pixel space
detail = [float(high_frequency_ratio(to_unit_range(step.pred_x0)).mean()) for step in steps]
assert detail[-1] > 1.5 * detail[0], detail  # x̂₀ sharpens along the trajectory
print("high-frequency share of x̂₀ at t = 15, 11, 7, 3, 1:", [round(detail[k], 3) for k in (0, 4, 8, 12, 14)],
      f"(HR crops: {float(high_frequency_ratio(to_unit_range(x0[:SHOWN])).mean()):.3f})")
fig = viz.plot_trajectory(steps, max_columns=8)
fig.suptitle(f"Sampling trajectory of crop 0 — {SOURCE}", fontsize=10)
fig

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
respaced_15 = sample_respaced(teacher, process, y0[:SHOWN], all_steps, torch.Generator().manual_seed(SEED))
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
# validation crop. The static figure after it shows 1, 4 and 15 calls on the first four crops.

# %%
def show_calls(calls=4, crop=0):
    sample = sample_respaced(teacher, process, y0[crop:crop + 1], visits(calls), torch.Generator().manual_seed(SEED))
    score = float(psnr(to_unit_range(sample), to_unit_range(x0[crop:crop + 1])))
    display(viz.image_grid([y0[crop], sample[0], x0[crop]], size=3,
                           titles=["bicubic ↑4 (y₀)", f"{calls} call(s): PSNR {score:.2f} dB", "HR"]))


widgets.interact(show_calls, calls=widgets.IntSlider(value=4, min=1, max=15, description="calls"),
                 crop=widgets.Dropdown(options=list(range(len(x0))), value=0, description="crop"));

# %%
shown_samples = {f"{calls} call{'s' * (calls > 1)}": sample_respaced(teacher, process, y0[:SHOWN], visits(calls),
                                                                    torch.Generator().manual_seed(SEED))
                 for calls in (1, 4)}
shown_samples["15 calls"] = sample_15
viz.image_grid([y0[:SHOWN], *shown_samples.values(), x0[:SHOWN]], titles=[f"crop {k}" for k in range(SHOWN)],
               row_titles=["bicubic ↑4", *shown_samples, "HR"], size=2.4, suptitle=f"{SOURCE}, seed {SEED}")

# %% [markdown]
# ## 6. PSNR and detail against simple baselines
#
# PSNR on the Y channel, as the paper reports it (`rsd_mini.metrics.psnr`; first checked against
# kornia's PSNR on the Y channels), sampled in the chunks of 8 and with the seeded generator of
# `make reproduce`. Fast mode evaluates the first 8 of the README's 32 held-out crops (the three
# samplers on all 32 would take most of the minute): exactly the first chunk of `make
# reproduce`'s evaluation, so every per-crop PSNR must equal the one recorded in the run's
# metrics file (asserted), and the README's 32-crop means are printed beside. Full mode
# evaluates all 32. Two baselines: an all-grey image (a network that learned nothing) and
# bicubic up-sampling (notebook 02). Beside PSNR, the high-frequency share says how much detail
# each output has (ground truth: dashed line).
#
# What the trained teacher shows: **one call** — the MMSE average — has the best PSNR, above
# bicubic, and hardly more detail than bicubic; **15 calls** commit to one sharp image, with
# about three times the detail, and pay for it in PSNR (a posterior sample has twice the MSE of
# the posterior mean: the perception–distortion trade-off). 4 calls sit in between. That is the
# gap RSD closes: the detail of 15 calls for the price of one.

# %%
def y_psnr_kornia(pred, target):
    return torch.stack([kornia.metrics.psnr(rgb_to_y(p[None]), rgb_to_y(t[None]), 1.0) for p, t in zip(pred, target)])


def sample_chunked(calls, chunk=8):
    """``calls`` network calls on every crop, in the chunks and with the one generator of
    ``rsd_mini.reproduce.evaluate`` (so that the noise draws are those of `make reproduce`)."""
    generator = torch.Generator().manual_seed(SEED)
    return torch.cat([sample_respaced(teacher, process, y, visits(calls), generator) for y in y0.split(chunk)])


target = to_unit_range(x0)
samples = {f"{calls} call{'s' * (calls > 1)}": sample_chunked(calls) for calls in (1, 4, 15)}
assert torch.allclose(psnr(to_unit_range(samples["15 calls"]), target),
                      y_psnr_kornia(to_unit_range(samples["15 calls"]), target).double(), atol=1e-3)
outputs = {"all grey": torch.zeros_like(x0), "bicubic": y0, **samples}
mean_psnr = {name: float(psnr(to_unit_range(image), target).mean()) for name, image in outputs.items()}
mean_detail = {name: float(high_frequency_ratio(to_unit_range(image)).mean()) for name, image in outputs.items()}
hr_detail = float(high_frequency_ratio(target).mean())
for name in outputs:
    print(f"{name:>9}: PSNR {mean_psnr[name]:6.2f} dB   detail (HF share) {mean_detail[name]:.3f}")
print(f"{'HR':>9}: detail {hr_detail:.3f}")
assert mean_psnr["15 calls"] > mean_psnr["all grey"] + 5, mean_psnr  # it learned something
assert mean_psnr["1 call"] > mean_psnr["15 calls"] and mean_detail["15 calls"] > 2 * mean_detail["1 call"]
if REFERENCE.is_file():  # the record of the run this teacher comes from (README table)
    methods = json.loads(REFERENCE.read_text())["methods"]
    reference = {"bicubic": methods["bicubic"], "1 call": methods["teacher_1step"], "15 calls": methods["teacher"]}
    for name, row in reference.items():
        per_crop = torch.tensor(row["psnr"][:len(x0)])
        print(f"{name:>9}: {REFERENCE.relative_to(ROOT)} records {float(per_crop.mean()):.2f} dB on these "
              f"{len(x0)} crops; on all 32 (README) {row['mean_psnr']:.2f} dB, detail {row['mean_high_frequency_ratio']:.3f}")
        ours = psnr(to_unit_range(outputs[name]), target)
        torch.testing.assert_close(ours, per_crop.to(ours.dtype), atol=0.02, rtol=0)

fig = Figure(figsize=(11, 3.6), layout="constrained")
ax_psnr, ax_detail = fig.subplots(1, 2)
viz.bar_chart({k: v for k, v in mean_psnr.items() if k != "all grey"}, ax=ax_psnr, zero=False,
              ylabel="PSNR, Y channel (dB)", title=f"PSNR, {len(x0)} held-out crops (all grey: {mean_psnr['all grey']:.1f} dB)")
viz.bar_chart({k: v for k, v in mean_detail.items() if k != "all grey"}, ax=ax_detail, fmt="{:.3f}",
              ylabel="high-frequency share", reference=("HR", hr_detail), title="detail")
fig.suptitle(f"Teacher: {SOURCE}", fontsize=10)
fig

# %% [markdown]
# ## Exercises
#
# Each answer sits between nbgrader's solution markers; the student edition (`notebooks/student/`,
# `make student`) has `raise NotImplementedError()` there instead. The cell below each answer
# checks it with `rsd_mini.exercises` and says *not attempted*, *wrong* (with the first failing
# case) or *correct*.
#
# **Exercise 1 — where $w_t$ comes from** (≈ 15 min). Return the ELBO weights $w_t$ for
# $t = 2..T$ (index $t-2$). The checker computes the KL divergence between the true posterior and
# the model's (same variance, means from $x_0$ and $\hat x_0$) with `torch.distributions` and
# compares it with $w_t\|x_0 - \hat x_0\|^2$.

# %%
from rsd_mini import exercises


def elbo_weights(process):
    """w_t = KL(q(x_{t−1}|x_t, x₀) ‖ q(x_{t−1}|x_t, x̂₀)) / ‖x₀ − x̂₀‖² for t = 2..T (RSD Eq. 46)."""
    ### BEGIN SOLUTION
    return process.alphas[1:] / (2 * process.kappa ** 2 * process.etas[1:] * process.etas_prev[1:])
    ### END SOLUTION


# %%
exercises.check_elbo_weights(elbo_weights, process)

# %% [markdown]
# **Exercise 2 — the skip posterior** (≈ 15 min). Return the mean coefficients and the variance
# of $q(x_s \mid x_t, x_0, y_0)$ for indices $s < t$. The checker tests that it reduces to the
# library's one-step posterior for $s = t-1$ and that it keeps the marginals for every pair:
# pushing $x_t \sim q(x_t \mid x_0, y_0)$ through it gives exactly the variance $\kappa^2\eta_s$.

# %%
def skip_posterior(process, s, t):
    """(coefficient of x_t, coefficient of x₀, variance) of q(x_s | x_t, x₀, y₀), indices s < t."""
    ### BEGIN SOLUTION
    ratio = process.etas[s] / process.etas[t]
    return ratio, 1 - ratio, process.kappa ** 2 * ratio * (process.etas[t] - process.etas[s])
    ### END SOLUTION


# %%
exercises.check_skip_posterior(skip_posterior, process)

# %% [markdown]
# **Exercise 3 — how long does the EMA remember?** (≈ 5 min) With rate $r$, the initial weights
# keep a share $r^n$ after $n$ updates. Return the smallest $n$ for which that share is below 1 %.

# %%
def ema_updates_to_forget(rate, share=0.01):
    """Smallest n with rate ** n < share."""
    ### BEGIN SOLUTION
    return math.ceil(math.log(share) / math.log(rate))
    ### END SOLUTION


# %%
exercises.check_ema(ema_updates_to_forget)

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
