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
# # 02 — Degradations and data: where $y_0$ comes from
#
# **Paper claim.** RSD, like its teacher ResShift and the SinSR baseline, is trained for
# *real-world* super-resolution: every low-resolution training image is made on the fly from an
# ImageNet crop by the second-order **Real-ESRGAN** degradation pipeline (Wang et al. 2021) —
# random blur, resize, noise and JPEG, twice — and tested on ImageNet-Test (a milder version of
# the same pipeline) and on real photos (RSD App. C; RSD_SPEC §6). Plain bicubic ×4 only turns
# the LR image back into the HR-sized $y_0$ that the diffusion shifts towards.
#
# **Learning goals.**
# 1. Down- and up-sample by ×4 with bicubic interpolation and see why antialiasing matters.
# 2. Walk through the Real-ESRGAN pipeline stage by stage: the blur-kernel families (isotropic,
#    anisotropic, generalised, plateau, sinc), resize, Gaussian/Poisson noise and JPEG.
# 3. Use the bundled mini dataset: disjoint train/val photos, crops and degradations fixed by
#    a seed.
#
# **Prerequisites.** Notebook 01 (what $x_0$ and $y_0$ are). Convolution and sampling basics.
#
# **Runtime.** Fast mode (default): under 30 s on a laptop CPU (about 10 s on 2 cores; 128²
# images). Full mode (`RSD_MINI_FULL=1`): about the same on a CPU (256² images, more random draws).

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import hashlib
import json
import math
import os
from pathlib import Path

import ipywidgets as widgets
import torch
import torch.nn.functional as F
from IPython.display import display

import rsd_mini
from rsd_mini import viz
from rsd_mini.config import load_config
from rsd_mini.data import load_image, mini_dataset, mini_photo_names, mini_photo_paths
from rsd_mini.degradations import (BlurConfig, Degradation, add_noise, bicubic_downsample, bicubic_upsample, blur,
                                   blur_kernel, circular_lowpass_kernel, classical_params, degrade_with,
                                   jpeg_compress, quantize_8bit, resize, sample_blur_kernel)
from rsd_mini.metrics import psnr, rgb_to_y, to_unit_range

FAST = os.environ.get("RSD_MINI_FULL", "0") != "1"
torch.set_num_threads(min(2, torch.get_num_threads()))  # at most 2; OMP_NUM_THREADS=1 lowers it
SEED = 0
HR_SIZE = 128 if FAST else 256  # side of the HR crop used for the pipeline figures
DRAWS = 4 if FAST else 6  # random degradations shown per preset
ROOT = Path(rsd_mini.__file__).resolve().parents[1]  # the repository (editable install)
print(f"rsd-mini {rsd_mini.__version__} | mode: {'fast' if FAST else 'full'} | device: cpu | "
      f"torch {torch.__version__} | threads {torch.get_num_threads()}")

# %%
astronaut = load_image(mini_photo_paths("train")[0])  # (3, 512, 512) in [0, 1], bundled with scikit-image
hr = astronaut[None, :, 0:256, 128:384]  # the face, 256²
hr = bicubic_downsample(hr, 256 // HR_SIZE) if HR_SIZE < 256 else hr
print(f"HR crop {tuple(hr.shape)} from {mini_photo_paths('train')[0].name}")

# %% [markdown]
# ## 1. Bicubic ×4, and why the antialias flag matters
#
# Bicubic interpolation reconstructs a continuous image with the cubic kernel
#
# $$k(x) = \begin{cases} (a+2)|x|^3 - (a+3)|x|^2 + 1 & |x| \le 1\\ a|x|^3 - 5a|x|^2 + 8a|x| - 4a & 1 < |x| < 2 \\ 0 & \text{else}\end{cases}$$
#
# and samples it on the new grid. Shrinking by 4 and sampling every 4th position would keep
# frequencies the small grid cannot represent: they *alias* into false patterns. MATLAB's
# `imresize` and PIL therefore stretch the kernel by the scale factor when shrinking — a
# low-pass filter before sampling. In PyTorch that is `antialias=True` (which also uses PIL's
# $a=-0.5$; plain bicubic uses $a=-0.75$).
#
# * **Down** (making a bicubic LR image): antialiased, clamped to $[0, 1]$.
# * **Up** (making $y_0$ from the LR image, as ResShift's `encode_first_stage` does): plain
#   `F.interpolate(scale_factor=4, mode="bicubic")`, no clamp. Here antialias must stay **off**:
#   it would change the kernel ($a$) and with it every $y_0$ the teacher was trained on.

# %%
def bicubic_down_inline(hr, scale=4):
    size = (hr.shape[-2] // scale, hr.shape[-1] // scale)
    return F.interpolate(hr, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def bicubic_up_inline(lr, scale=4):
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)


lr = bicubic_down_inline(hr)
assert torch.equal(lr, bicubic_downsample(hr))
y0 = bicubic_up_inline(lr * 2 - 1)  # in [-1, 1], the HR-sized end point of the diffusion
assert torch.equal(y0, bicubic_upsample(lr * 2 - 1))
with_antialias = F.interpolate(lr * 2 - 1, scale_factor=4, mode="bicubic", antialias=True)
assert (with_antialias - y0).abs().max() > 1e-2  # antialias=True would change y₀: the library keeps it off
assert torch.equal(Degradation("bicubic")(hr, torch.Generator()), quantize_8bit(lr))  # the "bicubic" preset
print(f"LR {tuple(lr.shape)}; y0 range [{float(y0.min()):.3f}, {float(y0.max()):.3f}] (bicubic overshoots, no clamp)")

# %% [markdown]
# A zone plate $\cos(\pi r^2/256)$ has a frequency that grows with the radius and reaches the
# Nyquist limit at the border. After ×4 down-sampling everything beyond a quarter of that is
# unrepresentable: the antialiased result turns it into flat grey, the plain one into false rings.

# %%
axis = torch.arange(256, dtype=torch.float64) - 127.5
radius = torch.hypot(*torch.meshgrid(axis, axis, indexing="ij"))
zone_plate = (0.5 + 0.5 * torch.cos(math.pi * radius ** 2 / 256)).float().expand(1, 3, 256, 256).contiguous()
zone_aa = bicubic_downsample(zone_plate)
zone_plain = F.interpolate(zone_plate, size=(64, 64), mode="bicubic").clamp(0, 1)
outer = F.interpolate(radius[None, None], size=(64, 64), mode="area")[0, 0] > 80  # beyond the ×4 Nyquist radius
assert zone_aa[0, 0][outer].std() < 0.05 < 0.1 < zone_plain[0, 0][outer].std()
viz.image_grid([zone_plate[0], zone_aa[0], zone_plain[0]], value_range=(0, 1), size=3,
               titles=["zone plate, 256²", "×4 antialiased (library)", "×4 without antialias: aliasing"])

# %% [markdown]
# ## 2. The Real-ESRGAN second-order pipeline
#
# Real photos are blurred by optics and motion, resized by software, noisy, and JPEG-compressed
# — often several times. Real-ESRGAN models this with two rounds of a "classical" degradation
# and a final stage (RSD_SPEC §6 lists every range):
#
# 1. **order 1:** blur $k_1$ → random resize (up/down/keep) → Gaussian or Poisson noise → JPEG;
# 2. **order 2** (probability 0.5): blur $k_2$ (p 0.8) → resize → noise;
# 3. **final:** {resize to the LR size + sinc filter} and JPEG, in either order;
# 4. round to 8 bits.
#
# ### 2a. Blur-kernel families
#
# With a pixel offset $p$ and covariance $\Sigma = R_\theta\,\mathrm{diag}(\sigma_x^2, \sigma_y^2)\,R_\theta^\top$,
# let $q = p^\top \Sigma^{-1} p$. Then (each normalised to sum 1)
#
# | family | kernel | shape |
# |---|---|---|
# | Gaussian (iso: $\sigma_x=\sigma_y$, $\theta=0$; aniso) | $\exp(-q/2)$ | the usual bell |
# | generalised Gaussian, shape $\beta$ | $\exp(-q^\beta/2)$ | $\beta<1$: sharp peak, heavy tails; $\beta>1$: flat top |
# | plateau, shape $\beta$ | $1/(1+q^\beta)$ | flat top, slowly decaying tails |
# | sinc (circular low-pass, cut-off $\omega_c$) | $\omega_c J_1(\omega_c r) / (2\pi r)$ | ringing: negative lobes |
#
# The sinc kernel imitates the *ringing and overshoot* that sharpening and JPEG leave near edges.

# %%
def grid_inline(size):
    axis = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return xx, yy  # x along columns, y along rows


def kernel_inline(kind, size, sigma_x, sigma_y, theta, beta=1.0):
    xx, yy = grid_inline(size)
    rotation = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]], dtype=torch.float64)
    sigma = rotation @ torch.diag(torch.tensor([sigma_x ** 2, sigma_y ** 2], dtype=torch.float64)) @ rotation.T
    p = torch.stack([xx, yy], dim=-1)
    q = torch.einsum("...i,ij,...j->...", p, torch.linalg.inv(sigma), p)
    kernel = {"aniso": torch.exp(-0.5 * q), "generalized_aniso": torch.exp(-0.5 * q ** beta),
              "plateau_aniso": 1 / (1 + q ** beta)}[kind]
    return (kernel / kernel.sum()).float()


def sinc_inline(cutoff, size):
    xx, yy = grid_inline(size)
    r = torch.hypot(xx, yy)
    kernel = cutoff * torch.special.bessel_j1(cutoff * r) / (2 * math.pi * r)
    kernel[size // 2, size // 2] = cutoff ** 2 / (4 * math.pi)  # the limit r → 0
    return (kernel / kernel.sum()).float()


for kind, beta in (("aniso", 1.0), ("generalized_aniso", 0.5), ("generalized_aniso", 3.0), ("plateau_aniso", 1.5)):
    ours = kernel_inline(kind, 21, 3.0, 1.2, math.pi / 5, beta)
    assert torch.allclose(ours, blur_kernel(kind, 21, 3.0, 1.2, math.pi / 5, beta), atol=1e-7), kind
assert torch.allclose(sinc_inline(math.pi / 3, 21), circular_lowpass_kernel(math.pi / 3, 21), atol=1e-7)
assert circular_lowpass_kernel(math.pi / 3, 21).min() < 0  # the negative lobes that make rings

gallery = {"iso σ=2": blur_kernel("iso", 21, 2.0),
           "aniso 3×1, θ=π/5": blur_kernel("aniso", 21, 3.0, 1.0, math.pi / 5),
           "gen. β=0.5": blur_kernel("generalized_iso", 21, 2.0, beta=0.5),
           "gen. β=4": blur_kernel("generalized_iso", 21, 2.0, beta=4.0),
           "plateau β=2": blur_kernel("plateau_aniso", 21, 3.0, 1.5, -math.pi / 4, beta=2.0),
           "sinc ω=π/3": circular_lowpass_kernel(math.pi / 3, 21)}
viz.kernel_grid(list(gallery.values()), titles=list(gallery))

# %% [markdown]
# The same kernels applied to the HR crop (the sinc one with its sharpening-like rings), and
# eight kernels drawn exactly as the training pipeline draws its first-order kernel
# (sizes 3–19 padded to 21, σ ∈ [0.2, 3], kind by the probabilities of RSD_SPEC §6).

# %%
viz.image_grid([blur(hr, kernel)[0] for kernel in gallery.values()], titles=list(gallery), value_range=(0, 1))

# %%
kernel_generator = torch.Generator().manual_seed(SEED)
drawn = [sample_blur_kernel(kernel_generator, BlurConfig()) for _ in range(8)]
for kernel in drawn:
    assert kernel.shape == (21, 21) and abs(float(kernel.sum()) - 1) < 1e-5
viz.kernel_grid(drawn, titles=[f"draw {k}" for k in range(8)])

# %% [markdown]
# ### 2b. One degradation, stage by stage
#
# `Degradation("realesrgan").sample_params(generator)` draws every choice of one degradation
# (kernels, resize factors and modes, noise kind and level, JPEG qualities, the order of the final
# stage) into a `DegradationParams`; `degrade_with(hr, params, generator)` applies them, drawing
# only the noise from the generator. Below we apply the same choices by hand with the library's
# single-stage functions and check that we land on the library's LR image bit for bit.

# %%
def degrade_inline(hr, params, generator, scale=4):
    lr_size = (hr.shape[-2] // scale, hr.shape[-1] // scale)
    stages, out = {}, hr
    for name, order, reference in (("order 1", params.first, hr.shape[-2:]), ("order 2", params.second, lr_size)):
        if order is not None:
            out = out if order.kernel is None else blur(out, order.kernel)
            out = resize(out, tuple(max(1, int(s * order.resize_scale + 1e-6)) for s in reference), order.resize_mode)
            out = add_noise(out, order.noise_kind, order.noise_level, order.gray_noise, generator)
            stages[name] = out = jpeg_compress(out, params.first_jpeg_quality) if name == "order 1" else out
    sinc = (lambda image: image) if params.final_kernel is None else (lambda image: blur(image, params.final_kernel))
    if params.final_sinc_first:
        out = jpeg_compress(sinc(resize(out, lr_size, params.final_resize_mode)), params.final_jpeg_quality)
    else:
        out = sinc(resize(jpeg_compress(out, params.final_jpeg_quality), lr_size, params.final_resize_mode))
    return stages | {"final LR (8 bit)": quantize_8bit(out)}


realesrgan = Degradation("realesrgan")
# The first seed whose draw uses every stage: a second order and a final sinc filter.
seed = next(s for s in range(100) if (p := realesrgan.sample_params(torch.Generator().manual_seed(s))).second is not None
            and p.final_kernel is not None)
params = realesrgan.sample_params(torch.Generator().manual_seed(seed))
stages = degrade_inline(hr, params, torch.Generator().manual_seed(SEED))
assert torch.equal(stages["final LR (8 bit)"], degrade_with(hr, params, torch.Generator().manual_seed(SEED)))
for name, order in (("order 1", params.first), ("order 2", params.second)):
    print(f"{name}: blur {'none' if order.kernel is None else 'yes'}, resize ×{order.resize_scale:.2f} "
          f"({order.resize_mode}), {order.noise_kind} noise {order.noise_level:.2f} (grey: {order.gray_noise})")
print(f"JPEG q {params.first_jpeg_quality:.0f} then q {params.final_jpeg_quality:.0f}; "
      f"final resize {params.final_resize_mode}, sinc {'first' if params.final_sinc_first else 'after JPEG'}")
viz.image_grid([hr[0], *(image[0] for image in stages.values())], value_range=(0, 1), size=2.5,
               titles=[f"HR {HR_SIZE}²", *(f"{n}, {tuple(i.shape[-2:])}" for n, i in stages.items())])

# %% [markdown]
# **Why the order-2 image can be smaller than the final LR image.** The two orders resize against
# different references: order 1 against the HR size (×0.15–1.5), order 2 against the *final LR*
# size (×0.3–1.2), as Real-ESRGAN does. So a second-order factor below 1 shrinks the image
# below the LR size (the factor of this draw is printed above and below), and the final stage resizes
# it up to exactly HR/4: a photo that was shrunk once more and enlarged again, with the detail
# the shrink removed gone for good. The cell checks the sizes.

# %%
lr_side = HR_SIZE // 4
expected_order2 = max(1, int(lr_side * params.second.resize_scale + 1e-6))
assert stages["order 2"].shape[-1] == expected_order2 and stages["final LR (8 bit)"].shape[-1] == lr_side
print(f"order 2: LR size {lr_side} × {params.second.resize_scale:.2f} = {expected_order2} pixels; "
      f"final stage: back to {lr_side} (HR {HR_SIZE} / 4)")

# %% [markdown]
# ## 3. Try it: the classical degradation $y = \mathrm{JPEG}_q\big((x * k_\sigma)\!\downarrow_4 + n_\sigma\big)$
#
# One round of the pipeline with explicit values (`classical_params`): isotropic Gaussian blur,
# area down-sampling ×4, Gaussian noise of std $\sigma_n$ (8-bit units), JPEG at quality $q$.
# With everything off it is plain area down-sampling — checked first.

# %%
area_only = degrade_with(hr, classical_params(blur_sigma=0.0, noise_sigma=0.0, jpeg_quality=None))
assert torch.equal(area_only, quantize_8bit(F.interpolate(hr, size=(HR_SIZE // 4, HR_SIZE // 4), mode="area")))


def show_classical(blur_sigma=1.0, noise_sigma=10.0, jpeg_quality=50):
    lq = degrade_with(hr, classical_params(blur_sigma, noise_sigma, jpeg_quality))
    score = float(psnr(bicubic_upsample(lq).clamp(0, 1), hr))
    display(viz.image_grid([hr[0], lq[0], bicubic_upsample(lq)[0].clamp(0, 1)], value_range=(0, 1), size=3,
                           titles=["HR", f"LR: blur σ={blur_sigma:g}, noise {noise_sigma:g}, JPEG q{jpeg_quality}",
                                   f"LR ↑4 bicubic, PSNR {score:.1f} dB"]))


widgets.interact(show_classical,
                 blur_sigma=widgets.FloatSlider(value=1.0, min=0.0, max=4.0, step=0.2, description="blur σ"),
                 noise_sigma=widgets.FloatSlider(value=10.0, min=0.0, max=50.0, step=1.0, description="noise σ"),
                 jpeg_quality=widgets.IntSlider(value=50, min=5, max=100, step=5, description="JPEG q"));

# %%
presets = [(0.0, 0.0, None), (2.5, 0.0, None), (0.0, 25.0, None), (0.0, 0.0, 15), (2.5, 25.0, 15)]
preset_lq = [degrade_with(hr, classical_params(*values))[0] for values in presets]
viz.image_grid(preset_lq, value_range=(0, 1), size=2.5,
               titles=[f"σ_blur={b:g}, σ_noise={n:g}, q={q or 'off'}" for b, n, q in presets],
               suptitle="Static version of the sliders")

# %% [markdown]
# ## 4. Random draws of the three presets
#
# * `realesrgan` — the paper's training distribution (RSD_SPEC §6);
# * `realesrgan-test` — how ImageNet-Test was made: one order, noise σ ≤ 15, JPEG ≥ 70, little blur;
# * `realesrgan-light` — between the two (and `realesrgan-mild`, lighter still). The tiny CPU
#   teacher of notebook 03 trains on plain `bicubic` ×4: a model trained for minutes on 11 photos
#   does not yet beat the bicubic input under the Real-ESRGAN-style presets (README).
#
# Every choice is drawn from an explicit `torch.Generator`: the same seed gives the same LR
# image bit for bit, which is what makes training runs resumable and test sets reproducible.

# %%
preset_names = ["realesrgan-test", "realesrgan-light", "realesrgan"]
rows = []
for name in preset_names:
    degradation = Degradation(name)
    rows.append([bicubic_upsample(degradation(hr, torch.Generator().manual_seed(s)))[0].clamp(0, 1) for s in range(DRAWS)])
    again = degradation(hr, torch.Generator().manual_seed(0))
    assert torch.equal(again, degradation(hr, torch.Generator().manual_seed(0))), f"{name}: same seed, same LR"
    assert not torch.equal(again, degradation(hr, torch.Generator().manual_seed(1))), f"{name}: new seed, new LR"
    assert torch.equal(again, (again * 255).round() / 255), f"{name}: 8-bit values"
viz.image_grid(rows, value_range=(0, 1), titles=[f"seed {s}" for s in range(DRAWS)], row_titles=preset_names)

# %% [markdown]
# ## 5. The mini dataset
#
# The paper trains on ImageNet (1.28 M photos). The fast path of this project uses photos that
# ship inside the scikit-image wheel, so it needs no download: 11 for training and 4 for
# validation, never shared. `mini_dataset(split)` cuts 64² HR crops (16² LR after its default
# `realesrgan-light` degradation; the tiny preset of notebook 03 asks for `bicubic`), both in
# $[-1, 1]$. They are **zoom crops**, not native-resolution ones: a random square window of side
# $64 \cdot 2^u$ pixels, $u \sim \mathcal U[0, 2]$ (64² to 256² of the photo), area-resized to
# 64². Native 64² crops of a 512² photo are mostly texture that a 16² LR image does not determine;
# a zoomed window keeps object structure — a whole face can fit in one crop (below).
#
# * **train**: 256 crops per epoch; `set_epoch(e)` draws new crops and degradations, and each
#   item is a pure function of (seed, epoch, index), whatever the number of loader workers;
# * **val**: 32 crops fixed by the seed alone, identical in every epoch and on every machine.

# %%
train_set, val_set = mini_dataset("train", seed=SEED), mini_dataset("val", seed=SEED)
assert set(mini_photo_names("train")).isdisjoint(mini_photo_names("val"))
photo_hashes = {split: {hashlib.sha256(load_image(p).numpy().tobytes()).hexdigest() for p in mini_photo_paths(split)}
                for split in ("train", "val")}
assert photo_hashes["train"].isdisjoint(photo_hashes["val"])  # disjoint in content, not only in name
assert len(photo_hashes["train"]) == len(mini_photo_names("train"))  # no duplicate photo inside train either
item = val_set[3]
assert item["hr"].shape == (3, 64, 64) and item["lq"].shape == (3, 16, 16)
assert -1 <= float(item["hr"].min()) and float(item["hr"].max()) <= 1
assert torch.equal(item["lq"], mini_dataset("val", seed=SEED)[3]["lq"])  # same seed → same LR, new object
val_set.set_epoch(5)
assert torch.equal(item["lq"], val_set[3]["lq"])  # validation crops never change
train_set.set_epoch(3)
first = train_set[7]["lq"]
assert torch.equal(first, train_set[7]["lq"])  # same (seed, epoch, index) → same LR
train_set.set_epoch(4)
assert not torch.equal(first, train_set[7]["lq"])  # a new epoch, a new crop and degradation
print(f"train: {len(train_set)} crops of {len(mini_photo_names('train'))} photos; "
      f"val: {len(val_set)} crops of {len(mini_photo_names('val'))} photos")

# %%
train_set.set_epoch(0)
shown = 6
for split, dataset in (("train", train_set), ("val", val_set)):
    items = [dataset[i] for i in range(shown)]
    display(viz.image_grid([[it["lq"] for it in items], [bicubic_upsample(it["lq"][None])[0] for it in items],
                            [it["hr"] for it in items]],
                           titles=[os.path.basename(it["path"]) for it in items],
                           row_titles=["LR 16²", "y₀ = LR ↑4", "HR 64² (zoom crop)"],
                           suptitle=f"mini_dataset('{split}'), realesrgan-light"))

# %% [markdown]
# **Which bicubic baseline?** Bicubic up-sampling of *this* dataset's LR images (its default
# `realesrgan-light` degradation: blur, noise, JPEG; the baseline of Exercise 3) scores lower
# than the README's bicubic row, 27.00 dB. That row is another measurement: all 32 validation
# crops degraded with plain **bicubic** ×4, the degradation the tiny teacher is trained and
# evaluated on (`data.degradation: bicubic` in the `tiny` preset). Same HR crops, different LR
# images; the cell computes both on all 32 and checks the second against the shipped metrics.

# %%
tiny_data = load_config("tiny").data
bicubic_val = mini_dataset("val", crop_size=tiny_data.crop_size, degradation=tiny_data.degradation, seed=SEED)
assert tiny_data.degradation == "bicubic" and len(bicubic_val) == len(val_set) == 32


def bicubic_psnr(dataset):
    """Mean Y-channel PSNR of LR ↑4 (bicubic) against HR over every crop of ``dataset``."""
    hr = torch.stack([dataset[i]["hr"] for i in range(len(dataset))])
    lq = torch.stack([dataset[i]["lq"] for i in range(len(dataset))])
    return float(psnr(to_unit_range(bicubic_upsample(lq)), to_unit_range(hr)).mean()), hr


light_psnr, light_hr = bicubic_psnr(val_set)
plain_psnr, plain_hr = bicubic_psnr(bicubic_val)
assert torch.equal(light_hr, plain_hr)  # the same HR crops: only the degradation differs
shipped = json.loads((ROOT / "figures" / "tiny_metrics.json").read_text())["methods"]["bicubic"]["mean_psnr"]
assert abs(plain_psnr - shipped) < 1e-3, (plain_psnr, shipped)
print(f"bicubic ↑4 on the 32 val crops: {light_psnr:.2f} dB with realesrgan-light LR, {plain_psnr:.2f} dB with "
      f"bicubic LR (figures/tiny_metrics.json, README: {shipped:.2f} dB)")

# %% [markdown]
# ## Exercises
#
# Each answer sits between nbgrader's solution markers; the student edition (`notebooks/student/`,
# `make student`) has `raise NotImplementedError()` there instead. The cell below each answer
# checks it with `rsd_mini.exercises` and says *not attempted*, *wrong* (with the first failing
# case) or *correct*.
#
# **Exercise 1 — an isotropic Gaussian kernel from scratch** (≈ 5 min). Return the
# `size`×`size` kernel $\propto \exp(-(x^2+y^2)/(2\sigma^2))$, centred, summing to 1.

# %%
from rsd_mini import exercises


def gaussian_kernel(size, sigma):
    """The isotropic Gaussian blur kernel of the Real-ESRGAN pipeline, (size, size), sum 1."""
    ### BEGIN SOLUTION
    axis = torch.arange(size, dtype=torch.float64) - size // 2
    kernel = torch.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / (2 * sigma ** 2))
    return (kernel / kernel.sum()).float()
    ### END SOLUTION


# %%
exercises.check_gaussian_kernel(gaussian_kernel)

# %% [markdown]
# **Exercise 2 — a reproducible LR image** (≈ 5 min). Write `make_lr(hr, seed)` that degrades
# `hr` with the `realesrgan-light` preset and returns the same image every time it is called with
# the same seed (whatever happened to torch's global random state in between).

# %%
def make_lr(hr, seed):
    """LR image of ``hr`` (1, 3, H, W) under ``Degradation("realesrgan-light")``, fixed by ``seed``."""
    ### BEGIN SOLUTION
    return Degradation("realesrgan-light")(hr, torch.Generator().manual_seed(seed))
    ### END SOLUTION


# %%
exercises.check_make_lr(make_lr, hr)

# %% [markdown]
# **Exercise 3 — the bicubic baseline** (≈ 10 min). Notebook 03 compares the teacher with the
# simplest super-resolver: bicubic up-sampling of the LR image. Return the mean PSNR (dB, Y
# channel, as the paper computes it with `rsd_mini.metrics.psnr` on $[0,1]$ images) of
# $y_0 = \mathrm{LR}{\uparrow}4$ against the HR crop over the first `count` validation items.

# %%
def bicubic_baseline_psnr(dataset, count=8):
    """Mean Y-channel PSNR of bicubic ×4 against HR over ``dataset[0:count]`` (items 'hr', 'lq')."""
    ### BEGIN SOLUTION
    hr = torch.stack([dataset[i]["hr"] for i in range(count)])
    lq = torch.stack([dataset[i]["lq"] for i in range(count)])
    return float(psnr(to_unit_range(bicubic_upsample(lq)), to_unit_range(hr)).mean())
    ### END SOLUTION


# %%
exercises.check_bicubic_baseline(bicubic_baseline_psnr, val_set, 8)

# %% [markdown]
# ## Summary
#
# * Bicubic ×4 down-sampling must be antialiased (a low-pass before sampling); the up-sampling
#   that makes $y_0$ must *not* use `antialias=True`, or it changes the kernel ResShift used.
# * Real-ESRGAN degradations: Gaussian / generalised / plateau / sinc kernels, random resize,
#   Gaussian or Poisson noise, JPEG, twice, in a random order at the end, rounded to 8 bits.
# * Every random choice comes from an explicit `torch.Generator`, so a seed fixes an LR image;
#   the mini dataset's train and val photos are disjoint and its val crops never change.
#
# **Where this lives in the library.**
# * `rsd_mini/degradations.py`: `bicubic_downsample`, `bicubic_upsample`, `blur_kernel`,
#   `circular_lowpass_kernel`, `sample_blur_kernel`, `blur`, `resize`, `add_noise`,
#   `jpeg_compress`, `classical_params`, `degrade_with`, `Degradation`, `degradation_preset`.
# * `rsd_mini/data.py`: `mini_dataset`, `mini_photo_names`, `ImageListSR`, `ImageFolderSR`,
#   `PairedFolderSR`, `load_image`.
# * `rsd_mini/viz.py`: `kernel_grid`, `image_grid`.
#
# **Next:** `03_teacher_training` — train the tiny ResShift teacher on these pairs and sample it.
