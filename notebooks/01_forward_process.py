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
# # 01 — The ResShift forward process
#
# **Paper claim.** RSD distils ResShift (Yue et al., NeurIPS 2023), a diffusion model that does
# not diffuse an image into pure noise but *shifts the residual* $e_0 = y_0 - x_0$ between the
# high-resolution image $x_0$ and the upsampled low-resolution image $y_0$ (RSD §3.1, Eq. 2–5):
#
# $$q(x_t \mid x_0, y_0) = \mathcal N\!\big(x_0 + \eta_t e_0,\; \kappa^2 \eta_t I\big), \qquad t = 1..T,$$
#
# with $\eta_t$ growing from $\approx 0$ to $\eta_T = 0.9801$. Sampling starts near $y_0$, not at
# pure noise, which is why ResShift needs 15 steps instead of hundreds, and RSD only one.
#
# **Learning goals.**
# 1. Compute the $\eta_t$ schedule from its four numbers and explain $\sqrt{\eta_1} = 0.02$
#    (and why SinSR's copy of the code gives a different 4-step schedule).
# 2. Sample $x_t$ on a real photo and see what $\kappa$ trades: noise against the residual shift.
# 3. Derive the posterior $q(x_{t-1} \mid x_t, x_0, y_0)$ from Bayes' rule, the prior
#    (std 1.98) and the normalisation the network sees.
#
# **Prerequisites.** Gaussians (sums, products of densities), PyTorch tensors. No earlier notebook.
#
# **Runtime.** Fast mode (default): under 30 s on a laptop CPU (about 10 s on 2 cores, most of
# it importing torch). Full mode (`RSD_MINI_FULL=1`): the same on a CPU (a 256² instead of a 128²
# image); nothing trains.
#
# The paper runs this process in the 3-channel latent space of a VQ autoencoder (RSD_SPEC §1);
# here it runs on pixels so that every $x_t$ can be looked at. The algebra is the same.

# %% [markdown]
# ## Setup

# %%
# %matplotlib inline
import math
import os

import ipywidgets as widgets
import skimage.data
import torch
from IPython.display import display
from matplotlib.figure import Figure

import rsd_mini
from rsd_mini import viz
from rsd_mini.degradations import bicubic_downsample, bicubic_upsample
from rsd_mini.diffusion import ResShift

FAST = os.environ.get("RSD_MINI_FULL", "0") != "1"
torch.set_num_threads(min(2, torch.get_num_threads()))  # at most 2; OMP_NUM_THREADS=1 lowers it
SEED = 0
HR_SIZE = 128 if FAST else 256  # side of the HR image x₀ (fast mode shrinks data, not code)
print(f"rsd-mini {rsd_mini.__version__} | mode: {'fast' if FAST else 'full'} | device: cpu | "
      f"torch {torch.__version__} | threads {torch.get_num_threads()}")

# %% [markdown]
# ## 1. The schedule $\eta_t$
#
# ResShift parametrises $s_t = \sqrt{\eta_t}$ by four numbers: the number of steps $T$, the
# noise scale $\kappa$, the smallest noise level and the last value $s_T$ (`etas_end`), plus a
# bending exponent $p$ (RSD_SPEC §1, ResShift's `get_named_eta_schedule`):
#
# $$s_1 = \min\!\Big(\frac{\text{min\_noise\_level}}{\kappa},\ \text{min\_noise\_level}\Big), \qquad
#   s_T = 0.99, \qquad
#   s_t = s_1 \Big(\frac{s_T}{s_1}\Big)^{\left(\frac{t-1}{T-1}\right)^{p}} .$$
#
# Two consequences worth remembering:
# * $\eta_1 = (0.04/2)^2 = 0.0004$, **not** $0.04^2$: the *noise std* at $t=1$ is
#   $\kappa\sqrt{\eta_1} = 0.04$, about 5 grey levels of an 8-bit image in $[-1,1]$.
# * $s_T = 0.99$ is $\sqrt{\eta_T}$, so $\eta_T = 0.9801$: even $x_T$ keeps 1.99 % of $x_0$.
#
# With $\alpha_t = \eta_t - \eta_{t-1}$ ($\eta_0 = 0$) the one-step transition is
# $q(x_t \mid x_{t-1}, y_0) = \mathcal N(x_{t-1} + \alpha_t e_0, \kappa^2 \alpha_t I)$; composing
# $t$ of them adds up the shifts and the variances to the marginal above.

# %%
def sqrt_etas_inline(steps, kappa, min_noise_level, etas_end=0.99, power=0.3):
    """s_t = √η_t for t = 1..T, float64 (index 0 is t = 1)."""
    s1 = min(min_noise_level / kappa, min_noise_level)
    progress = (torch.arange(steps, dtype=torch.float64) / (steps - 1)) ** power
    return s1 * (etas_end / s1) ** progress


v1 = ResShift.from_preset("resshift-v1")  # T=15, κ=2, min_noise_level=0.04: the teacher RSD distils
ours = sqrt_etas_inline(15, kappa=2.0, min_noise_level=0.04)
assert torch.allclose(ours, v1.sqrt_etas, rtol=0, atol=1e-12)
# The official function's output (RSD_SPEC §1 table), to its 6 printed decimals:
spec_v1 = [0.020000, 0.117165, 0.176305, 0.233629, 0.291574, 0.351009, 0.412356, 0.475858,
           0.541672, 0.609910, 0.680658, 0.753985, 0.829951, 0.908606, 0.990000]
assert torch.allclose(ours, torch.tensor(spec_v1, dtype=torch.float64), atol=5e-7)
assert abs(float(v1.etas[-1]) - 0.9801) < 1e-12 and abs(float(v1.kappa * v1.sqrt_etas[0]) - 0.04) < 1e-12
print(" t   √η_t     η_t    κ√η_t     α_t")
for t in range(1, 16):
    i = t - 1
    print(f"{t:2d}  {v1.sqrt_etas[i]:.4f}  {v1.etas[i]:.4f}  {v1.kappa * v1.sqrt_etas[i]:.4f}  {v1.alphas[i]:.4f}")

# %% [markdown]
# **The 4-step v3 model, and SinSR's cap.** ResShift's journal version (v3) uses $T=4$ and a
# much larger `min_noise_level` = 0.2, so $s_1 = 0.1$. SinSR — whose code RSD builds on — copied
# the schedule function with one more term in the minimum, $\sqrt{0.001} \approx 0.0316$:
#
# $$s_1^{\text{SinSR}} = \min\!\Big(\frac{\text{min\_noise\_level}}{\kappa},\ \text{min\_noise\_level},\ \sqrt{0.001}\Big).$$
#
# For v1 the cap does not bind ($0.02 < 0.0316$), so RSD and SinSR see the same process. For v3
# it does, and every $\eta_t$ with $t < T$ moves: a v3 network run with SinSR's schedule would be
# fed timesteps whose noise levels it was not trained on. `rsd_mini` uses ResShift's rule.

# %%
def sqrt_etas_sinsr(steps, kappa, min_noise_level, etas_end=0.99, power=0.3):
    """SinSR's copy: the same formula with s₁ additionally capped at √0.001."""
    s1 = min(min_noise_level / kappa, min_noise_level, math.sqrt(0.001))
    progress = (torch.arange(steps, dtype=torch.float64) / (steps - 1)) ** power
    return s1 * (etas_end / s1) ** progress


v3 = ResShift.from_preset("resshift-v3")
assert torch.allclose(sqrt_etas_inline(4, 2.0, 0.2), v3.sqrt_etas, rtol=0, atol=1e-12)
assert torch.allclose(v3.sqrt_etas, torch.tensor([0.1, 0.520096, 0.761382, 0.99], dtype=torch.float64), atol=5e-7)
capped_v3 = sqrt_etas_sinsr(4, 2.0, 0.2)
assert torch.allclose(capped_v3, torch.tensor([0.031623, 0.376440, 0.667323, 0.99], dtype=torch.float64), atol=5e-7)
assert torch.equal(sqrt_etas_sinsr(15, 2.0, 0.04), v1.sqrt_etas)  # the cap does not bind for v1
print("v3 √η_t, ResShift rule:", [round(float(s), 4) for s in v3.sqrt_etas])
print("v3 √η_t, SinSR's cap:  ", [round(float(s), 4) for s in capped_v3])

# %%
fig = Figure(figsize=(11, 4), layout="constrained")
ax_v1, ax_v3 = fig.subplots(1, 2)
viz.plot_schedule(v1, ax=ax_v1, label="v1 (T=15), distilled by RSD")
viz.plot_schedule(v3, ax=ax_v3, label="v3 (T=4)")
ax_v3.plot(range(1, 5), capped_v3.numpy(), "k--", label=r"v3 $\sqrt{\eta_t}$ with SinSR's cap")
ax_v3.legend(fontsize=8)
fig

# %% [markdown]
# ## 2. $x_t$ travels from the HR image to the upsampled LR image
#
# The marginal is a *reparameterised* sample:
#
# $$x_t = x_0 + \eta_t (y_0 - x_0) + \kappa \sqrt{\eta_t}\, \varepsilon
#       = (1-\eta_t)\,x_0 + \eta_t\, y_0 + \kappa\sqrt{\eta_t}\,\varepsilon, \qquad \varepsilon \sim \mathcal N(0, I).$$
#
# The mean slides linearly from $x_0$ to $y_0$ while the noise grows. We take a photo, make its
# ×4 low-resolution version with antialiased bicubic down-sampling, and bring it back to the HR
# size with plain bicubic up-sampling — exactly how ResShift builds $y_0$ before encoding it.
# (Notebook 02 replaces the bicubic degradation with the realistic Real-ESRGAN pipeline.)

# %%
photo = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1).float() / 255  # (3, 300, 451) in [0, 1]
hr = photo[None, :, 22:278, 100:356]  # a 256² crop around the cat's face
hr = bicubic_downsample(hr, 256 // HR_SIZE) if HR_SIZE < 256 else hr
lr = bicubic_downsample(hr, 4)  # (1, 3, HR/4, HR/4) in [0, 1]
x0 = hr * 2 - 1  # images live in [-1, 1]
y0 = bicubic_upsample(lr * 2 - 1, 4)  # the LR image at HR size: the end point of the chain
noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(SEED))

t = 8  # the paper's t; the tensors and the network use the index i = t - 1
i = t - 1
x_t = x0 + v1.etas[i] * (y0 - x0) + v1.kappa * v1.sqrt_etas[i] * noise
assert torch.allclose(x_t, v1.q_sample(x0, y0, i, noise), atol=1e-6)
residual_noise = x_t - (x0 + v1.etas[i] * (y0 - x0))  # what is left is pure noise of std κ√η_t
assert abs(float(residual_noise.std()) / float(v1.kappa * v1.sqrt_etas[i]) - 1) < 0.02
print(f"x0 {tuple(x0.shape)}, y0 {tuple(y0.shape)}, t={t}: noise std {float(residual_noise.std()):.3f} "
      f"(expected {float(v1.kappa * v1.sqrt_etas[i]):.3f})")

# %% [markdown]
# From $t \approx 8$ on, the noise (std $\kappa\sqrt{\eta_t}$ up to 1.98, on images in $[-1, 1]$)
# hides the image, so the drift of the mean cannot be seen in $x_t$ itself. The second row shows
# what the noise is added to, the noiseless mean $\mathbb E[x_t] = x_0 + \eta_t(y_0 - x_0)$: it
# loses the HR detail step by step and ends ($\eta_T = 0.98$) almost at $y_0$.

# %%
shown_t = [1, 3, 5, 8, 11, 15]
frames = [v1.q_sample(x0, y0, t - 1, noise)[0] for t in shown_t]
means = [(x0 + v1.etas[t - 1] * (y0 - x0))[0] for t in shown_t]
assert torch.allclose(means[-1], v1.q_sample(x0, y0, 14, torch.zeros_like(noise))[0])  # the mean is x_t at ε = 0
distance_to_y0 = [float((m - y0[0]).abs().mean()) for m in means]
assert all(a > b for a, b in zip(distance_to_y0, distance_to_y0[1:]))  # the mean moves towards y₀ at every step
viz.image_grid([[x0[0], *frames, y0[0]], [x0[0], *means, y0[0]]],
               titles=["$x_0$ (HR)", *[f"t = {t}, η = {float(v1.etas[t - 1]):.2f}" for t in shown_t], "$y_0$ (LR ↑4)"],
               row_titles=["sample $x_t$", r"mean $x_0 + \eta_t(y_0 - x_0)$"], size=1.9,
               suptitle="q(x_t | x₀, y₀) on pixels, ResShift v1 schedule (values clipped to [-1, 1] for display)")

# %% [markdown]
# ## 3. What $\kappa$ does
#
# $\kappa$ multiplies the noise std, $\kappa\sqrt{\eta_t}$, while the shift $\eta_t e_0$ of the
# mean is (almost) unchanged — $\kappa$ enters $\eta_t$ only through $s_1 = 0.04/\kappa$. A small
# $\kappa$ keeps $x_T$ close to $y_0$: the prior hides little, sampling is nearly deterministic
# and the model must invent detail without room to explore. A large $\kappa$ drowns the image in
# noise, which the model must remove again in the same 15 steps. ResShift's ablation over
# $\kappa$ found smoother (less detailed) outputs as $\kappa$ grows and picked $\kappa = 2$.
#
# Below, the *same* $\varepsilon$ is used for every $\kappa$, so only $\kappa$ changes.

# %%
kappas = [0.5, 1.0, 2.0, 4.0]
grid_t = [1, 5, 10, 15]
processes = {kappa: ResShift(steps=15, kappa=kappa, min_noise_level=0.04) for kappa in kappas}
for kappa, process in processes.items():
    x_T = process.q_sample(x0, y0, 14, noise)
    noise_std = float((x_T - x0 - process.etas[-1] * (y0 - x0)).std())
    assert abs(noise_std / (kappa * 0.99) - 1) < 0.02, (kappa, noise_std)
    assert abs(float(process.etas[-1]) - 0.9801) < 1e-12  # every κ ends at the same shift
viz.image_grid([[processes[k].q_sample(x0, y0, t - 1, noise)[0] for t in grid_t] for k in kappas],
               titles=[f"t={t}" for t in grid_t], row_titles=[f"κ={k:g}" for k in kappas])

# %% [markdown]
# ## 4. Try it: $x_t$ for any $t$ and $\kappa$
#
# Move the slider (in a live Jupyter session). The figure after it shows the same comparison at
# preset values, so the notebook also reads on GitHub or as a PDF.

# %%
def show_x_t(t=8, kappa=2.0):
    process = processes[kappa]
    x_t = process.q_sample(x0, y0, t - 1, noise)
    mean = x0 + process.etas[t - 1] * (y0 - x0)
    display(viz.image_grid([x0[0], x_t[0], mean[0], y0[0]],
                           titles=["$x_0$ (HR)", f"$x_{{{t}}}$, κ={kappa:g}, noise std {kappa * float(process.sqrt_etas[t - 1]):.2f}",
                                   f"its mean, η = {float(process.etas[t - 1]):.2f}", "$y_0$ (LR ↑4)"], size=3))


widgets.interact(show_x_t, t=widgets.IntSlider(value=8, min=1, max=15, description="t"),
                 kappa=widgets.Dropdown(options=kappas, value=2.0, description="κ"));

# %%
static_t = [1, 5, 10, 15]
viz.image_grid([[v1.q_sample(x0, y0, t - 1, noise)[0] for t in static_t],
                [(x0 + v1.etas[t - 1] * (y0 - x0))[0] for t in static_t]],
               titles=[f"$x_{{{t}}}$, noise std {float(v1.kappa * v1.sqrt_etas[t - 1]):.2f}" for t in static_t],
               row_titles=["sample $x_t$", "its mean"],
               size=3, suptitle="Static version of the slider: κ = 2, t ∈ {1, 5, 10, 15}")

# %% [markdown]
# ## 5. The posterior $q(x_{t-1} \mid x_t, x_0, y_0)$ from Bayes' rule
#
# Sampling runs the chain backwards. If we knew $x_0$, the best backward step would be the
# posterior. Bayes' rule multiplies two Gaussian densities in $x_{t-1}$:
#
# * the transition, read as a likelihood: $x_t - \alpha_t e_0 \sim \mathcal N(x_{t-1}, \kappa^2\alpha_t)$;
# * the marginal at $t-1$, read as a prior: $x_{t-1} \sim \mathcal N(x_0 + \eta_{t-1} e_0, \kappa^2\eta_{t-1})$.
#
# Precisions add and means are precision-weighted:
#
# $$\frac{1}{\sigma^2} = \frac{1}{\kappa^2\alpha_t} + \frac{1}{\kappa^2\eta_{t-1}} = \frac{\eta_t}{\kappa^2 \alpha_t \eta_{t-1}},
# \qquad
# \mu = \sigma^2\Big(\frac{x_t - \alpha_t e_0}{\kappa^2\alpha_t} + \frac{x_0 + \eta_{t-1}e_0}{\kappa^2\eta_{t-1}}\Big).$$
#
# Expanding, the $e_0$ terms cancel (RSD Eq. 4):
#
# $$\mu = \frac{\eta_{t-1}}{\eta_t}\, x_t + \frac{\alpha_t}{\eta_t}\, x_0, \qquad
#   \sigma^2 = \kappa^2 \frac{\eta_{t-1}}{\eta_t}\, \alpha_t .$$
#
# $y_0$ drops out of the mean because $x_t$ already carries it. At $t = 1$, $\eta_0 = 0$: the
# variance is 0 and the mean is exactly $x_0$, so the last sampling step returns the network's
# prediction unchanged. The inline version below keeps $e_0$ and the two densities explicit, so
# the assert checks the algebra, not a copy of the final formula.

# %%
def posterior_by_bayes(x0, x_t, y0, i, process):
    """Product of the transition likelihood and the t−1 marginal, for index i ≥ 1 (t ≥ 2)."""
    eta, eta_prev, k2 = process.etas[i], process.etas_prev[i], process.kappa ** 2
    alpha, e0 = eta - eta_prev, y0 - x0
    precision = 1 / (k2 * alpha) + 1 / (k2 * eta_prev)
    variance = 1 / precision
    mean = variance * ((x_t - alpha * e0) / (k2 * alpha) + (x0 + eta_prev * e0) / (k2 * eta_prev))
    return mean, variance


x0_64, y0_64, noise_64 = x0.double(), y0.double(), noise.double()
for i in range(1, 15):
    x_t = v1.q_sample(x0_64, y0_64, i, noise_64)
    mean, variance = v1.posterior(x0_64, x_t, i)
    ours_mean, ours_variance = posterior_by_bayes(x0_64, x_t, y0_64, i, v1)
    assert torch.allclose(mean, ours_mean, rtol=0, atol=1e-10)
    assert torch.allclose(variance, ours_variance.expand_as(variance), rtol=1e-12, atol=0)
mean_t1, variance_t1 = v1.posterior(x0_64, v1.q_sample(x0_64, y0_64, 0, noise_64), 0)
assert torch.allclose(mean_t1, x0_64) and float(variance_t1.max()) == 0.0  # t=1: a point mass at x₀
spec_post_var = [0, 0.001553, 0.030660, 0.053529, 0.078156]  # RSD_SPEC §1, t = 1..5
assert torch.allclose(v1.posterior_variance[:5], torch.tensor(spec_post_var, dtype=torch.float64), atol=5e-7)
print("posterior variance, t=1..15:", [round(float(v), 4) for v in v1.posterior_variance])

# %% [markdown]
# **The reverse chain with a perfect denoiser.** Plug the true $x_0$ into the posterior at every
# step — the sampler of `rsd_mini` with a "network" that always answers $x_0$. Started from the
# true $q(x_T \mid x_0, y_0)$, each step then produces an exact sample of the marginal at $t-1$,
# so the noise shrinks as $\kappa\sqrt{\eta_{t-1}}$ and the chain lands exactly on $x_0$.
# A trained ResShift network replaces the oracle by its guess $\hat x_0 = f_\theta(x_t, y_0, t)$
# (notebook 03).

# %%
def oracle(scaled_x_t, t, lq):
    """A 'network' that knows the answer: f(x_t, y₀, t) = x₀."""
    return x0.expand(scaled_x_t.shape[0], -1, -1, -1)


x_T_true = v1.q_sample(x0, y0, 14, noise)  # an exact sample of q(x_T | x₀, y₀)
prior_noise = (x_T_true - y0) / (v1.kappa * float(v1.sqrt_etas[-1]))  # prior_sample(y0, prior_noise) = x_T_true
final, steps = v1.sample(oracle, y0, noise=prior_noise, latent=False, clip=False,
                         generator=torch.Generator().manual_seed(SEED + 1),  # not SEED: ε must be independent
                         return_trajectory=True)
assert torch.equal(final, x0) and len(steps) == 15  # NFE = T, and the last step returns f exactly
for step in steps[:-1]:  # state after step i is x_{t-1} with t - 1 = i, i.e. index i - 1
    expected_std = v1.kappa * float(v1.sqrt_etas[step.t - 1])
    measured = float((step.x - x0 - v1.etas[step.t - 1] * (y0 - x0)).std())
    assert abs(measured / expected_std - 1) < 0.03, (step.t, measured, expected_std)
viz.plot_trajectory(steps, max_columns=8)

# %% [markdown]
# ## 6. The prior: $x_T = y_0 + \kappa\sqrt{\eta_T}\,\varepsilon$, std 1.98
#
# At $t = T$ the marginal is $\mathcal N(y_0 - 0.0199\, e_0,\ 1.98^2 I)$. The sampler cannot
# know $e_0$, so it starts from $x_T = y_0 + \kappa\sqrt{\eta_T}\,\varepsilon$ (`prior_sample`),
# dropping a term that is tiny next to noise of std $\kappa\sqrt{\eta_T} = 2 \times 0.99 = 1.98$.
# The paper writes the prior as $\mathcal N(y_0, \kappa^2 I)$ — std 2 — which is an approximation
# of what the code does (RSD_SPEC §7).

# %%
x_T = y0 + v1.kappa * v1.sqrt_etas[-1] * noise
assert torch.allclose(x_T, v1.prior_sample(y0, noise), atol=1e-6)
prior_std = float(v1.kappa * v1.sqrt_etas[-1])
assert abs(prior_std - 1.98) < 1e-12
dropped = (1 - float(v1.etas[-1])) * (y0 - x0)  # the 0.0199 e₀ the prior ignores
assert float(dropped.abs().max()) < 0.02 * prior_std
print(f"prior std {prior_std:.2f}; largest dropped term |0.0199 e0| = {float(dropped.abs().max()):.4f}")

# %% [markdown]
# ## 7. What the network sees: `scale_input`
#
# $x_t$ has a variance that grows with $t$. If $x_0$ and $y_0$ have roughly unit variance (true
# for the VQ latents the paper uses), $\operatorname{Var}(x_t) \approx 1 + \kappa^2\eta_t$, so the
# official code divides by $\sqrt{\kappa^2\eta_t + 1}$ before the network (`_scale_input`,
# `latent_flag=True`; 2.218 at $t = T$). For pixels in $[-1, 1]$ it instead divides by
# $3\kappa\sqrt{\eta_t} + 1$: a 3-sigma bound on $|x_t|$, which maps $x_t$ back into roughly
# $[-1, 1]$. The tiny pixel-space teacher of notebook 03 uses the pixel rule.

# %%
def scale_inline(x_t, i, process, latent):
    eta, kappa = process.etas[i], process.kappa
    return x_t / math.sqrt(kappa ** 2 * eta + 1) if latent else x_t / (3 * kappa * math.sqrt(eta) + 1)


for i in range(15):
    x_t = v1.q_sample(x0, y0, i, noise)
    for latent in (True, False):
        assert torch.allclose(scale_inline(x_t, i, v1, latent), v1.scale_input(x_t, i, latent=latent), atol=1e-6)
    inside = float((v1.scale_input(x_t, i, latent=False).abs() <= 1).float().mean())
    assert inside > 0.99, (i, inside)  # the pixel rule keeps x_t in [-1, 1]
assert abs(math.sqrt(v1.kappa ** 2 * float(v1.etas[-1]) + 1) - 2.218197) < 1e-6  # RSD_SPEC §1
viz.image_grid([[v1.q_sample(x0, y0, t - 1, noise)[0] for t in static_t],
                [v1.scale_input(v1.q_sample(x0, y0, t - 1, noise), t - 1, latent=False)[0] for t in static_t]],
               titles=[f"t={t}" for t in static_t], row_titles=["$x_t$ (clipped)", "scale_input, pixel rule"])

# %% [markdown]
# ## Exercises
#
# Each answer sits between nbgrader's solution markers; the student edition (`notebooks/student/`,
# `make student`) has `raise NotImplementedError()` there instead. The cell below each answer
# checks it with `rsd_mini.exercises` and says *not attempted*, *wrong* (with the first failing
# case) or *correct*.
#
# **Exercise 1 — transitions add up to the marginal** (≈ 10 min). Write one step of the forward
# chain, $x_t = x_{t-1} + \alpha_t e_0 + \kappa\sqrt{\alpha_t}\,\varepsilon_t$ with
# $\alpha_t = \eta_t - \eta_{t-1}$. The checker chains it from $x_0$ and compares the mean and
# spread with the marginal $\mathcal N(x_0 + \eta_t e_0, \kappa^2\eta_t)$ at every $t$.

# %%
from rsd_mini import exercises


def forward_step(x_prev, x0, y0, i, process, generator):
    """Draw x_t given x_{t-1} (index i = t − 1), one transition of RSD Eq. 2; ε from ``generator``."""
    ### BEGIN SOLUTION
    alpha = process.alphas[i]
    eps = torch.randn(x_prev.shape, generator=generator, dtype=x_prev.dtype)
    return x_prev + alpha * (y0 - x0) + process.kappa * alpha.sqrt() * eps
    ### END SOLUTION


# %%
exercises.check_forward_step(forward_step, v1)

# %% [markdown]
# **Exercise 2 — when does SinSR's cap bite?** (≈ 10 min) For a given κ, return the smallest
# `min_noise_level` above which SinSR's schedule (`sqrt_etas_sinsr`, section 1) differs from
# ResShift's. Mind κ < 1.

# %%
def cap_threshold(kappa):
    """Smallest min_noise_level for which √0.001 < min(min_noise_level / κ, min_noise_level)."""
    ### BEGIN SOLUTION
    return max(kappa, 1.0) * math.sqrt(0.001)
    ### END SOLUTION


# %%
exercises.check_cap_threshold(cap_threshold)

# %% [markdown]
# **Exercise 3 — your own input scaling** (≈ 5 min). Suppose $x_0 = y_0$ had variance $v$ (not
# 1), e.g. another autoencoder. Write the scaling that gives $x_t$ unit variance at every $t$.

# %%
def scale_for_variance(x_t, eta, kappa, v):
    """x_t divided by its standard deviation when x₀ = y₀ has variance v."""
    ### BEGIN SOLUTION
    return x_t / math.sqrt(v + kappa ** 2 * eta)
    ### END SOLUTION


# %%
exercises.check_scale(scale_for_variance, v1)

# %% [markdown]
# ## Summary
#
# * $\sqrt{\eta_t}$ rises geometrically (bent by $p = 0.3$) from $\min(0.04/\kappa, 0.04) = 0.02$
#   to 0.99; the noise std $\kappa\sqrt{\eta_t}$ goes from 0.04 to 1.98. SinSR's extra cap
#   $\sqrt{0.001}$ changes nothing for v1 and breaks the 4-step v3 schedule.
# * $x_t = (1-\eta_t)x_0 + \eta_t y_0 + \kappa\sqrt{\eta_t}\varepsilon$ moves from the HR image to
#   the upsampled LR image; $\kappa$ sets how much noise rides along.
# * The posterior mean $\frac{\eta_{t-1}}{\eta_t}x_t + \frac{\alpha_t}{\eta_t}x_0$ follows from
#   Bayes' rule; with the true $x_0$ the reverse chain reproduces every marginal and ends at $x_0$.
# * Sampling starts at $y_0 + 1.98\,\varepsilon$; the network sees $x_t/\sqrt{\kappa^2\eta_t + 1}$
#   (latents) or $x_t/(3\kappa\sqrt{\eta_t} + 1)$ (pixels).
#
# **Where this lives in the library.**
# * `rsd_mini/diffusion.py`: `sqrt_eta_schedule`, `PRESETS`, `ResShift.q_sample`, `.posterior`,
#   `.prior_sample`, `.scale_input`, `.sample_progressive` / `.sample` (`SampleStep`).
# * `rsd_mini/degradations.py`: `bicubic_downsample`, `bicubic_upsample`.
# * `rsd_mini/viz.py`: `plot_schedule`, `image_grid`, `plot_trajectory`.
#
# **Next:** `02_degradations_and_data` — where $y_0$ really comes from: the Real-ESRGAN
# degradation pipeline and the mini dataset.
