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
# # 06 — One step, as good as fifteen? Evaluating the shipped tiny models
#
# **Paper claim.** The RSD student matches or beats its 15-step ResShift teacher with one network
# call (RSD Tables 1–4: 0.059 s against 0.643 s per image on an A100), and sits at a better point
# of the perception–distortion trade-off than one-step baselines (RSD_SPEC §5).
#
# **Learning goals.**
# 1. Evaluate with the paper's protocol (Y-channel PSNR/SSIM) plus what PSNR misses: fidelity to
#    the LR input, detail (high-frequency energy) and diversity across seeds.
# 2. Place bicubic, the teacher at 1/4/15 calls, its one-call MMSE guess, a VSD student and the
#    RSD student on a perception–distortion plot and on a speed–NFE plot.
# 3. Compare teacher and student on the same image interactively, and know the limits of a
#    3 M-parameter model trained for minutes.
#
# **Prerequisites.** Notebooks 03 and 05.
#
# **Runtime.** Fast mode (default): about 1 min on 2 CPU cores, from the checkpoints shipped in
# `data/checkpoints/` (`tiny-teacher`, `tiny-student`, made by `make reproduce` + `make ship`).
# The VSD student is distilled here for a few iterations in fast mode (read its numbers as a
# code path, not a result); full mode (`RSD_MINI_FULL=1`) distils it as long as the RSD student
# and evaluates all 32 validation crops.

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import os
import tempfile
import time

import torch
from IPython.display import display

import rsd_mini
from rsd_mini import metrics, viz, widgets
from rsd_mini.config import apply_overrides, load_config
from rsd_mini.degradations import bicubic_upsample
from rsd_mini.distill_train import RSDTrainer
from rsd_mini.hub import SRModel, load
from rsd_mini.reproduce import validation_batch

FAST = os.environ.get("RSD_MINI_FULL", "0") != "1"
torch.set_num_threads(min(2, torch.get_num_threads()))
SEED = 0
N_VAL = 8 if FAST else 32
teacher, student = load("tiny-teacher"), load("tiny-student")
print(f"rsd-mini {rsd_mini.__version__} | mode: {'fast' if FAST else 'full'} | teacher: "
      f"{teacher.meta['steps_trained']} updates | student: {student.meta['steps_trained']} iterations")

# %% [markdown]
# ## 1. What the shipped files record
#
# Each shipped file holds the EMA weights (float16), the full config and how it was made: the
# command, the seed, the training time and the held-out metrics of that run.

# %%
for name, model in (("tiny-teacher", teacher), ("tiny-student", student)):
    meta = model.meta
    print(f"{name}: `{meta['command']}`, seed {meta['seed']}, {meta['train_seconds']:.0f} s of training, "
          f"PSNR {meta['metrics']['mean_psnr']:.2f} dB (bicubic {meta['bicubic']['mean_psnr']:.2f} dB)")
assert teacher.kind == "teacher" and teacher.nfe == 15 and student.kind == "student" and student.nfe == 1

# %% [markdown]
# ## 2. Metrics
#
# * **PSNR / SSIM** on the Y channel (MATLAB BT.601), the paper's distortion metrics.
# * **LR fidelity**: bicubic-downsample the output and compare with the input (PSNR, RGB). A good
#   SR image explains its LR input; a hallucinating one may not.
# * **High-frequency share**: the fraction of the Y channel's spectral energy above half the
#   Nyquist frequency. Blurry images have little; the ground truth sets the target.
# * **Diversity**: per-pixel standard deviation across seeds — zero for a deterministic method.
#
# The paper's perceptual metrics (LPIPS, CLIPIQA, MUSIQ, …) need pyiqa and downloaded weights;
# `rsd_mini.metrics.perceptual_metric` says how to get them and is not used here.
#
# First an inline check: the high-frequency share by hand with `torch.fft` equals the library's.

# %%
val = validation_batch(load_config("tiny"), limit=N_VAL)
lq, hr = val["lq"], val["hr"]
target = metrics.to_unit_range(hr)


def hf_share_inline(image):
    y = metrics.rgb_to_y(image)[:, 0].double()
    power = torch.fft.fftshift(torch.fft.fft2(y - y.mean((-2, -1), keepdim=True)), dim=(-2, -1)).abs() ** 2
    h, w = y.shape[-2:]
    fy, fx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    high = (fy ** 2 + fx ** 2).sqrt() > 0.5
    return (power * high).sum((-2, -1)) / power.sum((-2, -1))


inline = hf_share_inline(target)
library = metrics.high_frequency_ratio(target)
print("high-frequency share of the HR crops:", [f"{v:.3f}" for v in library.tolist()])
torch.testing.assert_close(inline, library.double(), atol=0.02, rtol=0.1)


# %%
def score(images: torch.Tensor) -> dict:
    unit = metrics.to_unit_range(images)
    return dict(psnr=float(metrics.psnr(unit, target).mean()), ssim=float(metrics.ssim(unit, target).mean()),
                lr_fidelity=float(metrics.lr_fidelity(unit, metrics.to_unit_range(lq), scale=4).mean()),
                hf=float(metrics.high_frequency_ratio(unit).mean()))


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - start) / len(lq)


# %% [markdown]
# ## 3. The table
#
# The VSD student (RSD Alg. 2: no gradient through the teacher and fake model) is distilled from
# the same teacher with the same preset; the "regression" row is the teacher's own one-call
# prediction $f^*(x_T)$, the minimum-MSE estimate a regression student converges to.

# %%
vsd_overrides = ["distill.variant=vsd", f"train.out_dir={tempfile.mkdtemp(prefix='rsd-mini-vsd-')}"] + (
    ["train.iterations=4", "train.batch_size=4", "train.microbatch=4", "train.ema_rate=0.5"] if FAST else [])
vsd_run = RSDTrainer(apply_overrides(load_config("rsd-tiny"), vsd_overrides), teacher=teacher.network, device="cpu")
vsd_run.fit(progress=False)
vsd = SRModel(vsd_run.ema_model.eval(), teacher.process, "student", 4, noise_channels=1)

methods = {"bicubic": (lambda: bicubic_upsample(lq, scale=4), 0)}
for calls in (1, 4, 15):
    methods[f"teacher, {calls} call{'s' * (calls > 1)}"] = (
        lambda calls=calls: teacher.sr(lq, torch.Generator().manual_seed(SEED), calls=calls), calls)
methods["regression (f*(x_T))"] = methods.pop("teacher, 1 call")
methods[f"VSD student ({vsd_run.step} it.)"] = (lambda: vsd.sr(lq, torch.Generator().manual_seed(SEED)), 1)
methods["RSD student"] = (lambda: student.sr(lq, torch.Generator().manual_seed(SEED)), 1)
table, outputs = {}, {}
with torch.no_grad():
    for name, (fn, nfe) in methods.items():
        outputs[name], seconds = timed(fn)
        table[name] = dict(score(outputs[name]), nfe=nfe, ms=1000 * seconds)
table["ground truth"] = dict(score(hr), nfe=0, ms=0.0)
print(f"{'method':>24} {'PSNR':>6} {'SSIM':>6} {'LR-fid':>7} {'HF':>6} {'NFE':>4} {'ms/img':>7}")
for name, row in table.items():
    print(f"{name:>24} {row['psnr']:6.2f} {row['ssim']:6.3f} {row['lr_fidelity']:7.2f} {row['hf']:6.3f} "
          f"{row['nfe']:4d} {row['ms']:7.1f}")
assert table["RSD student"]["ms"] < table["teacher, 15 calls"]["ms"]
assert table["regression (f*(x_T))"]["hf"] < table["ground truth"]["hf"]  # the MMSE guess is blurrier
assert table["RSD student"]["hf"] > 2 * table["regression (f*(x_T))"]["hf"]  # one step, yet not the blurry average
assert abs(table["RSD student"]["psnr"] - table["teacher, 15 calls"]["psnr"]) < 1.0  # one step ≈ fifteen

# %% [markdown]
# ## 4. Perception–distortion and speed–NFE
#
# Left: PSNR (distortion, higher is better) against the distance of the high-frequency share from
# the ground truth's (a crude realism proxy, lower is better). Right: wall time per image against
# the number of network calls — the teacher's cost grows linearly, the student pays one call.

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(11, 4), layout="constrained")
ax1, ax2 = fig.subplots(1, 2)
hf_true = table["ground truth"]["hf"]
for name, row in table.items():
    if name == "ground truth":
        continue
    ax1.scatter(abs(row["hf"] - hf_true), row["psnr"])
    ax1.annotate(name, (abs(row["hf"] - hf_true), row["psnr"]), fontsize=8)
    if row["nfe"]:
        ax2.scatter(row["nfe"], row["ms"])
        ax2.annotate(name, (row["nfe"], row["ms"]), fontsize=8)
ax1.set_xlabel("|HF share − ground truth's|  (lower: more realistic detail)"), ax1.set_ylabel("PSNR (dB)")
ax2.set_xlabel("network calls (NFE)"), ax2.set_ylabel("ms per image (CPU)")
for ax in (ax1, ax2):
    ax.grid(alpha=0.3)
fig

# %% [markdown]
# ## 5. Diversity across seeds
#
# The student is a stochastic generator (noise in $x_T$ and in its extra channel); the MMSE guess
# is (almost) deterministic. Three seeds each:

# %%
with torch.no_grad():
    draws = {name: torch.stack([fn(seed) for seed in range(3)]) for name, fn in {
        "teacher, 15 calls": lambda s: teacher.sr(lq[:4], torch.Generator().manual_seed(s)),
        "RSD student": lambda s: student.sr(lq[:4], torch.Generator().manual_seed(s)),
    }.items()}
spread = {name: float(metrics.diversity(d).mean()) for name, d in draws.items()}
print({k: round(v, 4) for k, v in spread.items()})
assert all(v > 0 for v in spread.values())

# %% [markdown]
# ## 6. Try it: teacher against student
#
# Swipe between any two methods, zoom, redraw the stochastic outputs with a new seed, change the
# number of teacher calls; the wall time of each method is shown. The static figure after it is
# the same comparison at seed 0.

# %%
crop = 0
display(widgets.comparison_widget(lq[crop:crop + 1], hr[crop:crop + 1], teacher, student))

# %%
widgets.comparison_figure(widgets.run_comparison(lq[crop:crop + 1], hr[crop:crop + 1], teacher, student, seed=SEED))

# %% [markdown]
# ## 7. Honest limits of a tiny model
#
# * The shipped models are 3.4 M-parameter pixel-space networks trained for minutes on 11 photos
#   with bicubic ×4 degradation. They do not restore real-world degradations (noise, JPEG, blur);
#   the paper's models (118 M parameters, VQ-f4 latents, ImageNet, Real-ESRGAN degradations) do.
# * PSNR rewards the blurry MMSE average: a sampler (teacher or student) that commits to one sharp
#   image loses PSNR against it even when it is the better-looking output — read PSNR together
#   with the detail and fidelity columns (and LPIPS/CLIPIQA when pyiqa's weights are available).
# * Wall times are CPU times of a tiny network; ratios, not absolute numbers, carry over.

# %% [markdown]
# ## Exercises
#
# **Exercise 1 — PSNR by hand.** Return the per-image PSNR (dB) of two [0, 1] Y-channel tensors.

# %%
def my_psnr(a, b):
    return 10 * torch.log10(1 / (a - b).pow(2).flatten(1).mean(1))


# %%
def check_psnr(fn):
    a, b = metrics.rgb_to_y(metrics.to_unit_range(outputs["RSD student"])), metrics.rgb_to_y(target)
    torch.testing.assert_close(fn(a.double(), b.double()), metrics.psnr(metrics.to_unit_range(outputs["RSD student"]), target))
    print("Exercise 1: correct.")


check_psnr(my_psnr)

# %% [markdown]
# **Exercise 2 — the speed-up.** From the table, return how many times faster the RSD student is
# than the 15-call teacher. The checker compares with the table.

# %%
def speedup(table):
    return table["teacher, 15 calls"]["ms"] / table["RSD student"]["ms"]


# %%
def check_speedup(fn):
    value = fn(table)
    assert abs(value - table["teacher, 15 calls"]["ms"] / table["RSD student"]["ms"]) < 1e-9
    print(f"Exercise 2: correct — {value:.1f}x here (15 calls against 1; the paper: 10.9x on an A100).")


check_speedup(speedup)

# %% [markdown]
# ## Summary
#
# * One student call costs about one teacher call; the teacher needs 15.
# * PSNR alone favours blur; detail, fidelity to the input and diversity complete the picture.
# * `python -m rsd_mini evaluate --checkpoint tiny-student --lq DIR --gt DIR --json out.json`
#   computes the same metrics on any folder; `upscale` super-resolves images of any size.
#
# **Where this lives in the library.** `rsd_mini/metrics.py` (PSNR, SSIM, `lr_fidelity`,
# `high_frequency_ratio`, `diversity`, `perceptual_metric`), `rsd_mini/hub.py` (`load`, shipped
# checkpoints), `rsd_mini/widgets.py`, `rsd_mini/evaluate.py`, `rsd_mini/upscale.py`.
#
# **Next:** `07` — full scale: the official checkpoints and the paper's tables.
