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
# # 05 — Distilling the tiny teacher into a one-step student
#
# **Paper claim.** RSD (§3.2–3.5, Alg. 1) turns the 15-step ResShift teacher into a generator
# that needs **one** network call: alternate K fake-model updates (the ordinary ResShift loss on
# the student's outputs) with one student update that pushes the fake model towards the teacher,
# $\mathbb E\,\|f^*(x_t) - \hat x_0\|^2 - \|f_\phi(x_t) - \hat x_0\|^2$, with gradients through
# $\hat x_0$ and through $x_t$ into both frozen networks (RSD_SPEC §4a–b).
#
# **Learning goals.**
# 1. Build the student from the teacher (one zero-initialised noise channel) and check that it
#    starts as the teacher.
# 2. Take one RSD iteration apart — multistep inputs, fake loss, student loss, SiD normalisation
#    — and check each piece against `rsd_mini.distill`.
# 3. Distil the tiny teacher on a CPU, read the three training curves, and compare the one-step
#    student with the 15-step teacher; run a small ablation (K, N, RSD vs VSD).
#
# **Prerequisites.** Notebook 03 (the tiny teacher) and 04 (why the objective is sound).
#
# **Runtime.** Fast mode (default): about 1 min on 2 CPU cores. It loads the teacher and student
# that `make reproduce` leaves in `runs/tiny/` when they exist; otherwise it trains a 30-update
# teacher and distils it for 8 iterations, enough to run every line, **not** enough for good
# images. Full mode (`RSD_MINI_FULL=1`) runs the `rsd-tiny` preset to its end (the same run as
# `make reproduce`) and a longer ablation, on a GPU when there is one.

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import json
import os
import tempfile
import time
from pathlib import Path

import ipywidgets as widgets
import torch
from IPython.display import display

import rsd_mini
from rsd_mini import distill, viz
from rsd_mini.checkpoint import load_checkpoint
from rsd_mini.config import DistillConfig, TeacherConfig, apply_overrides, from_dict, load_config
from rsd_mini.distill_train import RSDTrainer
from rsd_mini.metrics import psnr, to_unit_range
from rsd_mini.reproduce import validation_batch
from rsd_mini.train import TeacherTrainer, pixel_space_pair

FAST = os.environ.get("RSD_MINI_FULL", "0") != "1"
torch.set_num_threads(min(2, torch.get_num_threads()))
SEED = 0
DEVICE = torch.device("cuda" if torch.cuda.is_available() and not FAST else "cpu")
ROOT = Path(rsd_mini.__file__).resolve().parents[1]
TEACHER_CKPT = ROOT / "runs" / "tiny" / "teacher" / "last.pt"  # written by `make reproduce`
STUDENT_CKPT = ROOT / "runs" / "tiny" / "student" / "last.pt"
N_VAL = 4 if FAST else 32
print(f"rsd-mini {rsd_mini.__version__} | mode: {'fast' if FAST else 'full'} | device: {DEVICE} | "
      f"cached teacher: {TEACHER_CKPT.is_file()} | cached student: {STUDENT_CKPT.is_file()}")


# %%
def restore(trainer_cls, config_cls, path, **kwargs):
    """A trainer restored from its checkpoint, with the configuration it was trained with."""
    state = load_checkpoint(path, map_location=DEVICE)
    trainer = trainer_cls(from_dict(config_cls, state["config"]), device=DEVICE, **kwargs)
    trainer.load_state_dict(state)
    return trainer


if FAST and TEACHER_CKPT.is_file():
    teacher_run = restore(TeacherTrainer, TeacherConfig, TEACHER_CKPT)
else:  # the 30-update teacher of notebook 03's fast mode, or the full tiny run
    out_dir = str(TEACHER_CKPT.parent) if not FAST else tempfile.mkdtemp(prefix="rsd-mini-teacher-")
    overrides = [f"train.out_dir={out_dir}"] + (
        ["train.iterations=30", "train.batch_size=4", "train.microbatch=4", "train.log_every=3",
         "optim.warmup_steps=3", "optim.lr=1e-3", "optim.min_lr=1e-4", "train.ema_rate=0.8"] if FAST else [])
    teacher_run = TeacherTrainer(apply_overrides(load_config("tiny"), overrides), device=DEVICE)
    teacher_run.fit(progress=not FAST)
teacher, process = teacher_run.ema_model.eval(), teacher_run.diffusion
print(f"teacher: {teacher_run.step} updates; T = {process.steps}, κ = {process.kappa}")

# %% [markdown]
# ## 1. The student starts as the teacher
#
# The generator is stochastic, $\hat x_0 = G_\theta(x_t, y_0, t, \varepsilon_1)$: the student's
# first convolution reads one more input channel, $\varepsilon_1 \sim \mathcal N(0, I)$ at the
# image's resolution, through **zero-initialised** weights (official `_add_noise`; RSD App. C).
# So at step 0 the student computes exactly the teacher's function, whatever the noise — the
# inline version below pads the weight and must agree with `distill.add_noise_channels`.

# %%
config = load_config("rsd-tiny")
student = distill.add_noise_channels(teacher, channels=config.distill.noise_channels)
weight = teacher.state_dict()["input_blocks.0.0.weight"]
padded = torch.cat([weight, torch.zeros(weight.shape[0], 1, *weight.shape[2:])], dim=1)
assert torch.equal(student.state_dict()["input_blocks.0.0.weight"], padded)

val = validation_batch(teacher_run.config, limit=N_VAL)
x0, y0 = (v.to(DEVICE) for v in pixel_space_pair(val, teacher_run.config.data.scale))
g = torch.Generator().manual_seed(SEED)
t = torch.full((len(x0),), process.steps - 1)
x_T = process.prior_sample(y0, torch.randn(y0.shape, generator=g))
with torch.no_grad():
    f_star = teacher(process.scale_input(x_T, t, latent=False), t, lq=y0)
    g_out = student(process.scale_input(x_T, t, latent=False), t, lq=y0, noise=torch.randn(len(x0), 1, 64, 64, generator=g))
assert torch.equal(f_star, g_out)
print(f"student: {student.config.in_channels} input channels (x_t, y₀, ε₁); equals the teacher at init")

# %% [markdown]
# ## 2. One RSD iteration, piece by piece
#
# **Multistep inputs** (RSD §3.3). The paper trains the student at $N = 4$ evenly placed nodes
# $t_n = \mathrm{round}(nT/N)$, the last one $t_N = T$ (the one-step map used at inference). Its
# input $x_{t_n} \sim q(\cdot \mid x_0, y_0)$ noises the **real** HR image. The `rsd-tiny`
# preset uses $N = 1$ (only $t = T$): a 3.4 M-parameter student that is only ever called at $T$
# stalls near the blurry one-call prediction when 3/4 of its updates go to the easier nodes
# (section 6 and the README have the numbers).
#
# **Fake step.** $\min_\phi \mathbb E\|f_\phi(x_t, y_0, t) - \mathrm{sg}(\hat x_0)\|^2$ — notebook
# 03's loss with the student's outputs as data.
#
# **Student step.** $t \sim \mathcal U\{1..T\}$, $x_t = \hat x_0 + \eta_t(y_0 - \hat x_0) +
# \kappa\sqrt{\eta_t}\,\varepsilon'$ (reparameterised), and per sample
# $\ell_b = \overline{(f^*(x_t) - \hat x_0)^2} - \overline{(f_\phi(x_t) - \hat x_0)^2}$, divided by
# the detached $\overline{|f^*(x_t) - \hat x_0|}$ (SiD normalisation, RSD_SPEC §4b). Below, the
# inline version of $\ell_b$ must equal the library's for the same draws.

# %%
nodes = distill.multistep_nodes(process.steps, 4)  # the paper's N = 4
assert [n + 1 for n in nodes] == [4, 8, 11, 15]
assert distill.multistep_nodes(process.steps, config.distill.nodes) == (process.steps - 1,)  # rsd-tiny: t = T
fake = distill.copy_frozen(teacher).requires_grad_(True)
x0_hat, t_n = distill.student_predict(process, student, x0, y0, y0, nodes, 1,
                                      torch.Generator().manual_seed(1), latent=False)
result = distill.student_loss(process, teacher, fake, x0_hat, y0, y0, torch.Generator().manual_seed(2),
                              latent=False)

g = torch.Generator().manual_seed(2)  # the same draws, inline
t = torch.randint(process.steps, (len(x0),), generator=g)
x_t = process.q_sample(x0_hat, y0, t, torch.randn(x0.shape, generator=g))
x_in = process.scale_input(x_t, t, latent=False)
d_teacher, d_fake = teacher(x_in, t, lq=y0) - x0_hat, fake(x_in, t, lq=y0) - x0_hat
inline = (d_teacher.pow(2) - d_fake.pow(2)).flatten(1).mean(1) / (d_teacher.detach().abs().flatten(1).mean(1) + 1e-8)
torch.testing.assert_close(inline, result.loss)

result.loss.mean().backward()
assert all(p.grad is None for p in fake.parameters()) and all(p.grad is None for p in teacher.parameters())
assert any(p.grad is not None for p in student.parameters())
student.zero_grad(set_to_none=True)
print("nodes t =", [n + 1 for n in nodes], "| node per sample:", (t_n + 1).tolist(),
      "| ℓ_b at init:", [f"{v:.1e}" for v in result.loss.tolist()])

# %% [markdown]
# At initialisation the fake model *is* the teacher, so $\ell_b = 0$ up to float error: the
# student loss only becomes informative once the fake model has moved towards the student's
# distribution — which is why the official trainer runs K = 5 fake steps per student step.

# %% [markdown]
# ## 3. Distil
#
# `RSDTrainer` runs the loop of the official trainer: K fake updates each on a fresh batch, one
# student update on another, EMA of the student, two AdamW optimisers (betas 0.9/0.95),
# checkpoints and exact resume. The `rsd-tiny` preset keeps the paper's objective, N, SiD
# normalisation and betas, uses K = 2 and a larger learning rate for a short CPU run, and turns
# LPIPS off (its AlexNet weights need a download).

# %%
if FAST and STUDENT_CKPT.is_file():
    rsd = restore(RSDTrainer, DistillConfig, STUDENT_CKPT, teacher=teacher)
else:
    out_dir = str(STUDENT_CKPT.parent) if not FAST else tempfile.mkdtemp(prefix="rsd-mini-student-")
    overrides = [f"train.out_dir={out_dir}"] + (
        ["train.iterations=8", "train.batch_size=4", "train.microbatch=4", "train.log_every=1",
         "train.ema_rate=0.5"] if FAST else [])
    rsd = RSDTrainer(apply_overrides(config, overrides), teacher=teacher, device=DEVICE)
    rsd.fit(progress=not FAST)
log = rsd.out_dir / "log.jsonl"
if not log.is_file():  # a stored out_dir may be relative to another folder: the log sits by the checkpoint
    log = STUDENT_CKPT.parent / "log.jsonl"
rows = [row for row in map(json.loads, log.read_text().splitlines()) if "fake_loss" in row]
assert len(rows) >= 2 and all(torch.isfinite(torch.tensor([r["loss"], r["fake_loss"]])).all() for r in rows)
print(f"student: {rsd.step} iterations ({rsd.step * (rsd.config.distill.fake_steps + 1)} batches) "
      f"in {rsd.seconds:.0f} s")
viz.plot_training_curves(rows, ["loss", "fake_loss", "normaliser"])

# %% [markdown]
# **Reading the curves.** The fake loss is the ResShift loss on student outputs; the student loss
# is a *difference* of two MSEs, so it can be negative and has no floor at 0; the normaliser
# $\overline{|f^* - \hat x_0|}$ is the typical size of the teacher's correction to the student.

# %% [markdown]
# ## 4. One step against fifteen
#
# The student's one call from the prior, $G_\theta(x_T, y_0, T, \varepsilon_1)$, next to the
# teacher's 15 ancestral steps and the teacher's own one-call guess $f^*(x_T)$ (the blurry MMSE
# average of notebook 03). PSNR on the Y channel; wall time measured here, same crops, same run.

# %%
def timed(fn):
    start = time.perf_counter()
    with torch.no_grad():
        out = fn()
    return out, (time.perf_counter() - start) / len(x0)


ema_student = rsd.ema_model.eval()
outputs, seconds = {}, {}
outputs["teacher, 15 steps"], seconds["teacher, 15 steps"] = timed(lambda: process.sample(
    teacher, y0, generator=torch.Generator().manual_seed(SEED), latent=False))
outputs["teacher, 1 call"], seconds["teacher, 1 call"] = timed(lambda: distill.one_step_sample(
    process, teacher, y0, y0, 0, torch.Generator().manual_seed(SEED), latent=False))
outputs["RSD student, 1 step"], seconds["RSD student, 1 step"] = timed(lambda: distill.one_step_sample(
    process, ema_student, y0, y0, 1, torch.Generator().manual_seed(SEED), latent=False))
target = to_unit_range(x0)
scores = {"bicubic": float(psnr(to_unit_range(y0), target).mean())}
scores |= {name: float(psnr(to_unit_range(out), target).mean()) for name, out in outputs.items()}
assert all(torch.isfinite(torch.tensor(list(scores.values()))))
assert seconds["RSD student, 1 step"] < seconds["teacher, 15 steps"]
for name, value in scores.items():
    print(f"{name:>20}: {value:6.2f} dB" + (f"   {seconds[name] * 1000:7.1f} ms/image" if name in seconds else ""))
print(f"student speed-up over the 15-step teacher: {seconds['teacher, 15 steps'] / seconds['RSD student, 1 step']:.1f}x")
viz.bar_chart(scores, ylabel=f"PSNR, Y channel (dB), {len(x0)} val crops")

# %% [markdown]
# ## 5. Try it: teacher or student, which seed?
#
# The generator is stochastic: a new $\varepsilon$ (prior) and $\varepsilon_1$ (noise channel)
# give another plausible image. Pick a crop and a seed; the static figure after it shows all
# crops at seed 0.

# %%
def show(crop=0, seed=0):
    g_t, g_s = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    with torch.no_grad():
        t_out = process.sample(teacher, y0[crop:crop + 1], generator=g_t, latent=False)
        s_out = distill.one_step_sample(process, ema_student, y0[crop:crop + 1], y0[crop:crop + 1], 1, g_s, latent=False)
    display(viz.image_grid([y0[crop], t_out[0], s_out[0], x0[crop]], size=3,
                           titles=["bicubic ↑4", "teacher (15)", "student (1)", "HR"]))


widgets.interact(show, crop=widgets.Dropdown(options=list(range(len(x0))), value=0, description="crop"),
                 seed=widgets.IntSlider(value=0, min=0, max=9, description="seed"));

# %%
viz.image_grid([y0, *outputs.values(), x0], titles=[f"crop {k}" for k in range(len(x0))],
               row_titles=["bicubic ↑4", *outputs, "HR"])

# %% [markdown]
# ## 6. A small ablation: K, N and RSD against VSD
#
# From the same teacher, a few short runs that change one knob each: K (fake steps per student
# step), N (multistep nodes; the preset's N = 1 trains only the one-step map) and the ResShift-VSD variant
# (stop-gradient through $f^*$ and $f_\phi$, RSD Alg. 2). Each is scored by its one-step PSNR and
# by how far a fresh look at the objective says it is from the teacher, the mean
# $\ell_b$ before normalisation on held-out crops. Fast mode is only long enough to run the code:
# read the full-mode numbers (README) for conclusions.

# %%
ABLATION = {"RSD (K=2, N=1)": [], "K=1": ["distill.fake_steps=1"], "N=4": ["distill.nodes=4"],
            "VSD": ["distill.variant=vsd"]}
short = (["train.iterations=3", "train.batch_size=2", "train.microbatch=2", "train.ema_rate=0.0"] if FAST
         else ["train.iterations=100", "train.ema_rate=0.9"])
ablation = {}
for name, extra in ABLATION.items():
    run = RSDTrainer(apply_overrides(config, [*short, *extra, "train.log_every=1",
                                              f"train.out_dir={tempfile.mkdtemp(prefix='rsd-mini-ablation-')}"]),
                     teacher=teacher, device=DEVICE)
    run.fit(progress=False)
    with torch.no_grad():
        out = distill.one_step_sample(process, run.ema_model.eval(), y0, y0, 1, torch.Generator().manual_seed(SEED), latent=False)
    ablation[name] = dict(psnr=float(psnr(to_unit_range(out), target).mean()), seconds=run.seconds)
assert all(torch.isfinite(torch.tensor(v["psnr"])) for v in ablation.values())
for name, v in ablation.items():
    print(f"{name:>15}: one-step PSNR {v['psnr']:6.2f} dB   ({v['seconds']:.0f} s)")
viz.bar_chart({k: v["psnr"] for k, v in ablation.items()}, ylabel="one-step PSNR (dB)")

# %% [markdown]
# ## Exercises
#
# **Exercise 1 — the nodes.** Return the N node indices $i_n = t_n - 1$ for a T-step teacher,
# evenly placed with $t_N = T$. The checker compares with the library for several T and N.

# %%
def my_nodes(steps, count):
    return tuple(round(n * steps / count) - 1 for n in range(1, count + 1))


# %%
def check_nodes(fn):
    for steps in (4, 15, 50):
        for count in range(1, min(steps, 6) + 1):
            assert tuple(fn(steps, count)) == distill.multistep_nodes(steps, count), (steps, count)
            assert fn(steps, count)[-1] == steps - 1, "the last node must be t = T"
    print("Exercise 1: correct.")


check_nodes(my_nodes)

# %% [markdown]
# **Exercise 2 — what VSD throws away.** With stop-gradients on $f^*$ and $f_\phi$, the gradient
# of $\ell_b$ (no normalisation) with respect to $\hat x_0$ is a closed form in $f^*(x_t)$ and
# $f_\phi(x_t)$. Return it; the checker compares with autograd on `student_loss(variant="vsd")`.

# %%
def vsd_gradient(f_star, f_phi, numel):
    return 2 * (f_phi - f_star) / numel


# %%
def check_vsd_gradient(fn):
    x = x0[:2].clone().requires_grad_(True)
    out = distill.student_loss(process, teacher, fake, x, y0[:2], y0[:2], torch.Generator().manual_seed(3),
                               latent=False, variant="vsd", sid_normalization=False)
    out.loss.sum().backward()
    g = torch.Generator().manual_seed(3)
    t = torch.randint(process.steps, (2,), generator=g)
    x_in = process.scale_input(process.q_sample(x0[:2], y0[:2], t, torch.randn(x0[:2].shape, generator=g)), t, latent=False)
    with torch.no_grad():
        expected = fn(teacher(x_in, t, lq=y0[:2]), fake(x_in, t, lq=y0[:2]), x0[0].numel())
    torch.testing.assert_close(x.grad, expected)
    print("Exercise 2: correct — VSD keeps only the direct term 2(f_φ − f*).")


check_vsd_gradient(vsd_gradient)

# %% [markdown]
# ## Summary
#
# * The student is the teacher plus one zero-initialised noise channel; it starts as the teacher.
# * One RSD iteration: K fake updates (ResShift loss on detached student outputs), then one
#   student update on the difference of two MSEs, normalised per sample, with gradients through
#   $\hat x_0$ and through $x_t$ into the frozen teacher and fake model.
# * One student call replaces fifteen teacher calls; the README gives the full tiny run's PSNR
#   and wall times (`make reproduce`).
#
# **Where this lives in the library.**
# * `rsd_mini/distill.py`: `add_noise_channels`, `multistep_nodes`, `student_predict`,
#   `fake_loss`, `student_loss`, `one_step_sample`, the GAN head and LPIPS hook.
# * `rsd_mini/distill_train.py`: `RSDTrainer`, `load_teacher`; `rsd_mini/config.py`: presets
#   `rsd-tiny`, `rsd-paper`; CLI `python -m rsd_mini distill`.
# * `rsd_mini/reproduce.py`: the teacher → student → evaluation pipeline of `make reproduce`.
#
# **Next:** `06` — one-step evaluation: metrics, widgets and the shipped checkpoints.
