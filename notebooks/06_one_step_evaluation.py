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
# Fast mode evaluates the first 8 of the 32 held-out crops (the 15-call teacher on all 32 costs
# most of a minute by itself) and prints the README's 32-crop numbers beside its own. The VSD
# student is distilled here for a few iterations in fast mode (read its numbers as a code path,
# not a result); full mode (`RSD_MINI_FULL=1`) distils it as long as the RSD student and
# evaluates all 32 crops.

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from IPython.display import display

import rsd_mini
from rsd_mini import metrics, viz, widgets
from rsd_mini.config import apply_overrides, load_config
from rsd_mini.degradations import bicubic_upsample
from rsd_mini.distill_train import RSDTrainer
from rsd_mini.hub import load
from rsd_mini.srmodel import SRModel
from rsd_mini.reproduce import validation_batch

FAST = os.environ.get("RSD_MINI_FULL", "0") != "1"
torch.set_num_threads(min(2, torch.get_num_threads()))
SEED = 0
N_VAL = 8 if FAST else 32  # of the 32 held-out crops; fast mode: the first 8 (runtime, see above)
ROOT = Path(rsd_mini.__file__).resolve().parents[1]
RECORDED = json.loads((ROOT / "figures" / "tiny_metrics.json").read_text())  # the README's table, 32 crops
teacher, student, sinsr = load("tiny-teacher"), load("tiny-student"), load("tiny-sinsr")
print(f"rsd-mini {rsd_mini.__version__} | mode: {'fast' if FAST else 'full'} | teacher: "
      f"{teacher.meta['steps_trained']} updates | student: {student.meta['steps_trained']} iterations | "
      f"SinSR: {sinsr.meta['steps_trained']} iterations")

# %% [markdown]
# ## 1. What the shipped files record
#
# Each shipped file holds the EMA weights (float16), the full config and how it was made: the
# command, the seed, the training time and the held-out metrics of that run.

# %%
for name, model in (("tiny-teacher", teacher), ("tiny-student", student), ("tiny-sinsr", sinsr)):
    meta = model.meta
    print(f"{name}: `{meta['command']}`, seed {meta['seed']}, {meta['train_seconds']:.0f} s of training, "
          f"PSNR {meta['metrics']['mean_psnr']:.2f} dB (bicubic {meta['bicubic']['mean_psnr']:.2f} dB)")
assert teacher.kind == "teacher" and teacher.nfe == 15 and student.kind == "student" and student.nfe == 1
assert sinsr.nfe == 1 and sinsr.noise_channels == 0  # SinSR distils the deterministic sampler: no noise channel

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
# prediction $f^*(x_T)$, the minimum-MSE estimate a regression student converges to. The last
# column repeats the README's number for the same method on all 32 crops (`figures/tiny_metrics.json`;
# the RSD student's from its own shipped file), where there is one. The SinSR row is the shipped
# `tiny-sinsr`: SinSR's losses (RSD_SPEC §3) teach it the teacher's *deterministic* sampler, one
# fixed image per noise $x_T$, where RSD matches the teacher's stochastic one.
#
# **Reading the VSD row in fast mode.** Two iterations of batch 2 (one iteration costs about
# 2 s of CPU here) leave the VSD student near where every student starts, the teacher's blurry
# one-call prediction (a few noisy updates cost it some PSNR, notebook 05 section 6, but add no
# detail). If its PSNR is above the RSD student's, that
# is the blurry average's advantage, not a better student: its detail (HF) stays near the
# regression row's, far below the RSD student's (asserted below). Only full mode, with as many
# iterations as the RSD student, compares the two methods.
#
# The ground-truth row has no PSNR/SSIM (it *is* the reference); its detail is the target.

# %%
with tempfile.TemporaryDirectory(prefix="rsd-mini-06-vsd-") as vsd_dir:
    vsd_overrides = ["distill.variant=vsd", f"train.out_dir={vsd_dir}"] + (
        ["train.iterations=2", "train.batch_size=2", "train.microbatch=2", "train.ema_rate=0.5"] if FAST else [])
    vsd_run = RSDTrainer(apply_overrides(load_config("rsd-tiny"), vsd_overrides), teacher=teacher.network, device="cpu")
    vsd_run.fit(progress=False)
assert not Path(vsd_dir).exists()
vsd = SRModel(vsd_run.ema_model.eval(), teacher.process, "student", 4, noise_channels=student.noise_channels)

methods = {"bicubic": (lambda: bicubic_upsample(lq, scale=4), 0)}
for calls in (1, 4, 15):
    methods[f"teacher, {calls} call{'s' * (calls > 1)}"] = (
        lambda calls=calls: teacher.sr(lq, torch.Generator().manual_seed(SEED), calls=calls), calls)
methods["regression (f*(x_T))"] = methods.pop("teacher, 1 call")
VSD_NAME = f"VSD student ({vsd_run.step} it.)"
methods[VSD_NAME] = (lambda: vsd.sr(lq, torch.Generator().manual_seed(SEED)), 1)
methods["SinSR student"] = (lambda: sinsr.sr(lq, torch.Generator().manual_seed(SEED)), 1)
methods["RSD student"] = (lambda: student.sr(lq, torch.Generator().manual_seed(SEED)), 1)
table, outputs = {}, {}
with torch.no_grad():
    for name, (fn, nfe) in methods.items():
        outputs[name], seconds = timed(fn)
        table[name] = dict(score(outputs[name]), nfe=nfe, ms=1000 * seconds)
table["ground truth"] = dict(score(hr), nfe=0, ms=0.0)
recorded = {"bicubic": RECORDED["methods"]["bicubic"], "teacher, 15 calls": RECORDED["methods"]["teacher"],
            "regression (f*(x_T))": RECORDED["methods"]["teacher_1step"], "RSD student": student.meta["metrics"],
            "SinSR student": sinsr.meta["metrics"]}
print(f"{'method':>24} {'PSNR':>6} {'SSIM':>6} {'LR-fid':>7} {'HF':>6} {'NFE':>4} {'ms/img':>7}   PSNR / HF, 32 crops (README)")
for name, row in table.items():
    quality = "     —      —" if name == "ground truth" else f"{row['psnr']:6.2f} {row['ssim']:6.3f}"
    readme = (f"   {recorded[name]['mean_psnr']:6.2f} / {recorded[name]['mean_high_frequency_ratio']:.3f}"
              if name in recorded else "")
    print(f"{name:>24} {quality} {row['lr_fidelity']:7.2f} {row['hf']:6.3f} {row['nfe']:4d} {row['ms']:7.1f}{readme}")
print(f"{N_VAL} crops here; ground-truth detail on all 32: {RECORDED['ground_truth_high_frequency_ratio']:.3f}")
assert table["RSD student"]["ms"] < table["teacher, 15 calls"]["ms"]
assert table["regression (f*(x_T))"]["hf"] < table["ground truth"]["hf"]  # the MMSE guess is blurrier
assert table["RSD student"]["hf"] > 2 * table["regression (f*(x_T))"]["hf"]  # one step, yet not the blurry average
assert abs(table["RSD student"]["psnr"] - table["teacher, 15 calls"]["psnr"]) < 1.0  # one step ≈ fifteen
if FAST:  # the VSD row is still the blurry start (text above)
    assert table[VSD_NAME]["hf"] < 0.5 * table["RSD student"]["hf"], table[VSD_NAME]

# %% [markdown]
# ## 4. Perception–distortion and speed–NFE
#
# Left: PSNR (distortion, higher is better) against the distance of the high-frequency share from
# the ground truth's (a crude realism proxy, lower is better): the one-call regression sits at
# high PSNR and far from the ground truth's detail, the 15-call teacher and the RSD student at
# lower PSNR and close to it. Right: wall time per image against the number of network calls —
# the teacher's cost grows linearly, the student pays one call. The three one-call methods share
# x = 1, so the methods are told apart by marker and legend, not by labels on the points.

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(12, 4.2), layout="constrained")
ax1, ax2 = fig.subplots(1, 2)
hf_true = table["ground truth"]["hf"]
for index, (name, row) in enumerate((n, r) for n, r in table.items() if n != "ground truth"):
    style = dict(color=f"C{index}", marker="osD^vP*"[index % 7], s=60, label=name)
    ax1.scatter(abs(row["hf"] - hf_true), row["psnr"], **style)
    if row["nfe"]:
        ax2.scatter(row["nfe"], row["ms"], **style)
ax1.set_xlabel("|HF share − ground truth's|  (lower: more realistic detail)"), ax1.set_ylabel("PSNR (dB)")
ax2.set_xlabel("network calls (NFE)"), ax2.set_ylabel("ms per image (CPU, this run)")
ax1.set_title(f"Perception–distortion, {N_VAL} held-out crops", fontsize=10)
ax2.set_title("Speed against network calls", fontsize=10)
for ax in (ax1, ax2):
    ax.grid(alpha=0.3)
ax1.legend(fontsize=8, loc="best")
ax2.legend(fontsize=8, loc="upper left")
fig.suptitle(f"Shipped tiny-teacher and tiny-student; VSD student distilled here for {vsd_run.step} iterations",
             fontsize=10)
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
# ## 6. Try it: teacher against student (and SinSR)
#
# The shipped `tiny-sinsr` (SinSR's three losses from the same teacher, one call) is one more
# method in the list. Swipe between any two methods, zoom, redraw the stochastic outputs with a new seed, change the
# number of teacher calls; the wall time of each method is shown. The static figure after it is
# the same comparison at seed 0: the whole crop in the top row, the central 35 % of it enlarged
# (nearest neighbour, so single pixels show) in the bottom row.

# %%
crop = 0
display(widgets.comparison_widget(lq[crop:crop + 1], hr[crop:crop + 1], teacher, student, others={"SinSR": sinsr}))

# %%
ZOOM = 0.35  # share of the crop's side shown enlarged in the bottom row
fig = widgets.comparison_figure(widgets.run_comparison(lq[crop:crop + 1], hr[crop:crop + 1], teacher, student,
                                                       seed=SEED, others={"SinSR": sinsr}), size=ZOOM)
columns = len(fig.axes) // 2
for ax, label in ((fig.axes[0], f"crop {crop}, {hr.shape[-1]}²"), (fig.axes[columns], f"centre {ZOOM:.0%}, enlarged")):
    ax.text(-0.06, 0.5, label, transform=ax.transAxes, rotation=90, ha="right", va="center", fontsize=9)
fig.suptitle(f"Shipped tiny-teacher against tiny-student and tiny-sinsr, seed {SEED}", fontsize=10)
fig

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
# ## 8. Distance to the teacher's distribution
#
# RSD's claim (Prop. 3.1) is about distributions: for a fixed LR input $y$, the student's samples
# $G_\theta(y, \epsilon)$ should follow the teacher's conditional $p^*(x_0 \mid y)$. PSNR cannot see
# that. Draw $S$ seeds from a model and from the teacher for the same inputs and compare, at each
# location $\ell$, the distribution of the RGB $4\times4$ patch $x_0[\ell]$. Wasserstein-2 splits
# exactly into a mean and a spread part, $W_2^2(p, q) = \lVert m_p - m_q\rVert^2 + W_2^2(p - m_p,
# q - m_q)$; slicing (projecting onto random unit directions $u$, where 1-D optimal transport
# sorts) keeps the split:
#
# $$SW_2^2 = \operatorname{mean}_{\ell,u} \langle u, m_\ell - m^*_\ell\rangle^2 + \operatorname{mean}_u
#   W_2^2\big(\langle u, x - m\rangle, \langle u, x^* - m^*\rangle\big),$$
#
# the spread term pooling the centred patches of all locations (many points, a stable estimate).
# A shifted image moves the means; a blurred, over-sharpened or collapsed (deterministic) one
# changes the spread. With finite $S$ even a perfect student is not at 0: the **floor** is the
# same distance between two independent seed sets of the teacher. `rsd_mini.metrics.conditional_distance`
# reports both, with the per-pixel mean distance and the diversity ratio. Here 4 seeds on 2 crops
# (figures/compare.json holds the full evaluation); first the inline check.

# %%
def sliced_w2_inline(a, b, directions, patch=4):  # a, b: (S, B, 3, H, W)
    def located(x):  # (B, L, S, 3·patch²)
        s, n = x.shape[:2]
        cols = torch.nn.functional.unfold(x.flatten(0, 1).double(), patch, stride=patch)
        return cols.view(s, n, cols.shape[1], -1).permute(1, 3, 0, 2)
    pa, pb = located(a), located(b)
    ma, mb = pa.mean(2, keepdim=True), pb.mean(2, keepdim=True)
    mean_term = ((ma - mb) @ directions).pow(2).mean((1, 2, 3))
    ra = ((pa - ma) @ directions).flatten(1, 2).sort(1).values
    rb = ((pb - mb) @ directions).flatten(1, 2).sort(1).values
    return (mean_term + (ra - rb).pow(2).mean((1, 2))).sqrt()


with torch.no_grad():
    sets = {name: torch.stack([model.sr(lq[:2], torch.Generator().manual_seed(seed)) for seed in seeds])
            for name, model, seeds in (("teacher", teacher, range(100, 104)), ("teacher, floor", teacher, range(200, 204)),
                                       ("RSD student", student, range(4)), ("SinSR student", sinsr, range(4)))}
    sets["teacher, one call"] = torch.stack([teacher.sr(lq[:2], torch.Generator().manual_seed(s), calls=1)
                                              for s in range(4)])
directions = metrics.patch_directions(4, 64, torch.Generator().manual_seed(0))
torch.testing.assert_close(sliced_w2_inline(sets["RSD student"], sets["teacher"], directions),
                           metrics.patch_sliced_wasserstein(sets["RSD student"], sets["teacher"], directions))
for name in ("RSD student", "SinSR student", "teacher, one call"):
    d = metrics.conditional_distance(sets[name], sets["teacher"], sets["teacher, floor"], torch.Generator().manual_seed(0))
    print(f"{name:>18}: patch distance {d['patch_distance']:.4f} (floor {d['patch_floor']:.4f}, ratio "
          f"{d['patch_ratio']:.2f}), spread {d['spread_distance']:.4f} (floor {d['spread_floor']:.4f}), "
          f"diversity ratio {d['diversity_ratio']:.2f}")
assert d["diversity_ratio"] < 0.5 and d["spread_distance"] > 2 * d["spread_floor"]  # the one-call guess collapses

# %% [markdown]
# **And against the real images?** The data has one HR image per LR input, so no conditional
# distance to the data exists; what can be compared is the *set's* patch statistics.
# `rsd_mini.metrics.data_patch_distance` pools every 4×4 patch of one seed's outputs (all crops and
# locations) and takes the sliced W₂ to the pooled patches of the HR crops, per seed. It has no floor
# of its own, so read it against the teacher's samples. On the 16 and 32 crops of notebook 05's long
# runs and comparison, the RSD students end about 10 % nearer the data than the teacher's samples
# are (the comparison's `rsd` row, this student's recipe: 0.89): they match the teacher's denoiser,
# which was trained on the data, not its 15-step sampler. Here, 2 crops and 4 seeds, and a pooled
# measure needs many crops: on these two the student comes out *further* than the teacher, which
# says more about two crops than about the student.

# %%
to_data = {name: float(metrics.data_patch_distance(sets[name], hr[:2], directions).mean()) for name in sets}
for name, value in to_data.items():
    print(f"{name:>18}: distance to the HR crops' patches {value:.4f} ({value / to_data['teacher']:.2f} of the teacher's)")
assert to_data["teacher, one call"] > 1.2 * to_data["teacher"]  # the blurry MMSE guess has the wrong textures

# %% [markdown]
# ## Exercises
#
# Each answer sits between nbgrader's solution markers; the student edition (`notebooks/student/`,
# `make student`) has `raise NotImplementedError()` there instead. The cell below each answer
# checks it with `rsd_mini.exercises` and says *not attempted*, *wrong* (with the first failing
# case) or *correct*.
#
# **Exercise 1 — PSNR by hand** (≈ 5 min). Return the per-image PSNR (dB) of two [0, 1]
# Y-channel tensors (B, 1, H, W).

# %%
from rsd_mini import exercises


def my_psnr(a, b):
    """Per-image PSNR in dB of images a, b in [0, 1], shape (B, 1, H, W)."""
    ### BEGIN SOLUTION
    return 10 * torch.log10(1 / (a - b).pow(2).flatten(1).mean(1))
    ### END SOLUTION


# %%
exercises.check_psnr(my_psnr, metrics.to_unit_range(outputs["RSD student"]), target)

# %% [markdown]
# **Exercise 2 — the speed-up** (≈ 5 min). From the table, return how many times faster the RSD
# student is than the 15-call teacher.

# %%
def speedup(table):
    """Wall time of the 15-call teacher divided by the RSD student's, from ``table``."""
    ### BEGIN SOLUTION
    return table["teacher, 15 calls"]["ms"] / table["RSD student"]["ms"]
    ### END SOLUTION


# %%
exercises.check_speedup(speedup, table)

# %% [markdown]
# **Exercise 3 — diversity** (≈ 5 min). A distilled one-step model must stay a *sampler*: RSD
# matches the teacher's conditional distribution, not its mean (section 5). Return, for draws
# of shape (seeds, B, C, H, W), each image's mean over pixels of the standard deviation across
# seeds. The checker compares with `metrics.diversity` on the draws of section 5 and on a
# deterministic method.

# %%
def my_diversity(samples):
    """Per-image mean over pixels of the std across seeds, samples (S ≥ 2, B, C, H, W)."""
    ### BEGIN SOLUTION
    return samples.std(0).flatten(1).mean(1)
    ### END SOLUTION


# %%
exercises.check_diversity(my_diversity, draws["RSD student"])

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
