"""Full-reference image metrics as the paper reports them (RSD_SPEC §6 "Metrics").

The RSD evaluation (pyiqa) computes PSNR and SSIM on the Y channel of YCbCr in the
ITU-R BT.601 "studio" form that MATLAB's ``rgb2ycbcr`` uses, Y ∈ [16/255, 235/255], on [0, 1]
images, without border crop, averaged per image. kornia does the PSNR/SSIM arithmetic.
"""

from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

# MATLAB rgb2ycbcr, Y row, for RGB in [0, 1] (BT.601, studio swing).
_Y_WEIGHTS = torch.tensor([65.481, 128.553, 24.966]) / 255.0
_Y_OFFSET = 16.0 / 255.0


def to_unit_range(image: Tensor) -> Tensor:
    """[−1, 1] → [0, 1], clamped (the network's range to the metrics' range)."""
    return ((image + 1) / 2).clamp(0, 1)


def rgb_to_y(image: Tensor) -> Tensor:
    """Y channel (B, 1, H, W) of a (B, 3, H, W) RGB image in [0, 1], MATLAB convention."""
    _check_images(image=image)
    weights = _Y_WEIGHTS.to(image.device, image.dtype).view(1, 3, 1, 1)
    return (image * weights).sum(1, keepdim=True) + _Y_OFFSET


def _prepare(pred: Tensor, target: Tensor, y_channel: bool, crop_border: int) -> tuple[Tensor, Tensor]:
    _check_images(pred=pred, target=target)
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)}: expected equal shapes")
    if crop_border:
        pred = pred[..., crop_border:-crop_border, crop_border:-crop_border]
        target = target[..., crop_border:-crop_border, crop_border:-crop_border]
    if y_channel:
        pred, target = rgb_to_y(pred), rgb_to_y(target)
    return pred.double(), target.double()


def psnr(pred: Tensor, target: Tensor, y_channel: bool = True, crop_border: int = 0) -> Tensor:
    """Per-image PSNR in dB of [0, 1] images (B, 3, H, W) → (B,)."""
    pred, target = _prepare(pred, target, y_channel, crop_border)
    mse = (pred - target).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-12))


def ssim(pred: Tensor, target: Tensor, y_channel: bool = True, crop_border: int = 0) -> Tensor:
    """Per-image SSIM (Gaussian window 11, σ 1.5) of [0, 1] images (B, 3, H, W) → (B,)."""
    pred, target = _prepare(pred, target, y_channel, crop_border)
    return kornia.metrics.ssim(pred, target, window_size=11, max_val=1.0, padding="valid").flatten(1).mean(1)


def _check_images(**images: Tensor) -> None:
    for name, image in images.items():
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"{name} has shape {tuple(image.shape)}: expected (B, 3, H, W)")
        if image.min() < -1e-6 or image.max() > 1 + 1e-6:
            raise ValueError(f"{name} has values in [{image.min():.3f}, {image.max():.3f}]: "
                             "expected [0, 1] (use to_unit_range for [−1, 1] images)")


# --------------------------------------------------------------------- beyond PSNR / SSIM
def lr_fidelity(sr: Tensor, lq: Tensor, scale: int, degrade=None) -> Tensor:
    """Per-image PSNR (RGB, dB) between the re-degraded output and the LR input, [0, 1] images:
    does the SR image explain its input? ``degrade`` defaults to the antialiased bicubic
    downsampling by ``scale`` (:func:`rsd_mini.degradations.bicubic_downsample`)."""
    from rsd_mini.degradations import bicubic_downsample

    _check_images(sr=sr, lq=lq)
    expected = (lq.shape[-2] * scale, lq.shape[-1] * scale)
    if tuple(sr.shape[-2:]) != expected:
        raise ValueError(f"sr has size {tuple(sr.shape[-2:])}: expected lq size × scale = {expected}")
    down = degrade(sr) if degrade is not None else bicubic_downsample(sr, scale=scale)
    return psnr(down.clamp(0, 1), lq, y_channel=False)


def high_frequency_ratio(image: Tensor, cutoff: float = 0.5) -> Tensor:
    """Per-image share of the Y channel's spectral energy above ``cutoff`` × Nyquist (radially),
    mean removed: low for blurry images, higher for detailed ones; compare with the ground
    truth's. [0, 1] images (B, 3, H, W) → (B,)."""
    if not 0 < cutoff < 2 ** 0.5:
        raise ValueError(f"cutoff={cutoff!r}: expected a fraction of Nyquist in (0, √2) (√2 reaches the corners)")
    y = rgb_to_y(image)[:, 0].double()
    spectrum = torch.fft.fft2(y - y.mean((-2, -1), keepdim=True)).abs().pow(2)
    fy = torch.fft.fftfreq(y.shape[-2], device=y.device, dtype=y.dtype)[:, None]
    fx = torch.fft.fftfreq(y.shape[-1], device=y.device, dtype=y.dtype)[None, :]
    high = (fy ** 2 + fx ** 2).sqrt() > cutoff * 0.5  # Nyquist is 0.5 cycles per pixel
    return (spectrum * high).sum((-2, -1)) / spectrum.sum((-2, -1)).clamp_min(1e-20)


def diversity(samples: Tensor) -> Tensor:
    """Per-image mean over pixels of the standard deviation across seeds, samples (S, B, C, H, W)
    with S ≥ 2: zero for a deterministic method."""
    if samples.ndim != 5 or samples.shape[0] < 2:
        raise ValueError(f"samples has shape {tuple(samples.shape)}: expected (S ≥ 2, B, C, H, W)")
    return samples.std(0).flatten(1).mean(1)


#: The paper's perceptual metrics, by their pyiqa names (RSD_SPEC §6; the official evaluation
#: uses ``maniqa-pipal``, Table 3 of [P] follows OSEDiff's script).
PERCEPTUAL = ("lpips", "dists", "clipiqa", "musiq", "maniqa", "maniqa-pipal", "niqe")
#: Those that compare with a ground-truth image (``metric(pred, target)``); the others score
#: the output alone (``metric(pred)``).
PERCEPTUAL_FULL_REFERENCE = ("lpips", "dists")


def perceptual_metric(name: str, device: str | torch.device = "cpu"):
    """The pyiqa metric ``name`` (one of :data:`PERCEPTUAL`) on [0, 1] images. Raises a
    ``RuntimeError`` saying how to get it when pyiqa or its weights are missing — never a silent
    fallback."""
    if name not in PERCEPTUAL:
        raise ValueError(f"name={name!r}: expected one of {PERCEPTUAL}")
    try:
        import pyiqa  # noqa: PLC0415 - optional
    except ImportError as error:
        raise RuntimeError(f"the {name} metric needs pyiqa: pip install pyiqa, then run once with "
                           "network access so it caches the metric's weights") from error
    try:
        return pyiqa.create_metric(name, device=torch.device(device))
    except Exception as error:  # pyiqa downloads weights on first use
        raise RuntimeError(f"pyiqa could not load the {name} weights ({error}); run once with "
                           "network access to cache them") from error


# --------------------------------------------------------------------- distance to the teacher
# RSD's claim (Prop. 3.1) is about distributions: for a fixed LR input y, the student's samples
# G(y, ε) should follow the teacher's conditional p*(x₀ | y). These functions compare two sets of
# S seeds drawn for the same B inputs, (S, B, 3, H, W), and report each distance beside its floor:
# the same distance between two independent seed sets of the reference (teacher) itself, which is
# what a perfect student would score with the same finite S.
def _check_seed_sets(**sets: Tensor) -> None:
    shapes = {tuple(s.shape) for s in sets.values()}
    for name, samples in sets.items():
        if samples.ndim != 5 or samples.shape[0] < 2 or samples.shape[2] != 3:
            raise ValueError(f"{name} has shape {tuple(samples.shape)}: expected (S ≥ 2, B, 3, H, W)")
    if len(shapes) != 1:
        raise ValueError(f"seed sets have shapes {sorted(shapes)}: expected one shape (S, B, 3, H, W)")


def patch_directions(patch: int, projections: int, generator: torch.Generator) -> Tensor:
    """``projections`` random unit directions in the space of RGB ``patch``×``patch`` patches,
    (3·patch², projections), drawn from ``generator`` (the slices of the sliced distance)."""
    if patch < 1 or projections < 1:
        raise ValueError(f"patch={patch}, projections={projections}: expected both >= 1")
    directions = torch.randn(3 * patch * patch, projections, generator=generator, dtype=torch.float64)
    return directions / directions.norm(dim=0, keepdim=True)


def _patch_size(directions: Tensor) -> int:
    """The patch side of directions made by :func:`patch_directions`: √(rows / 3)."""
    return round((directions.shape[0] / 3) ** 0.5)


def _located_patches(samples: Tensor, patch: int) -> Tensor:
    """(S, B, 3, H, W) → (B, L, S, 3·patch²): the non-overlapping patches at each of the L
    locations, the S seeds of one input and one location side by side."""
    s, b, c, h, w = samples.shape
    if h % patch or w % patch:
        raise ValueError(f"patch={patch}: expected a divisor of the image size {h}×{w}")
    pieces = F.unfold(samples.reshape(s * b, c, h, w).double(), patch, stride=patch)  # (S·B, D, L)
    return pieces.reshape(s, b, c * patch * patch, -1).permute(1, 3, 0, 2)


def patch_sliced_wasserstein(samples: Tensor, reference: Tensor, directions: Tensor) -> Tensor:
    """Per-input sliced Wasserstein-2 distance between the conditional distributions of RGB patches.

    For input b, the patch at location ℓ has a conditional distribution p_ℓ = x₀[ℓ] | y_b, seen
    through S seeds. W₂ splits exactly into the distance of the means and W₂ of the centred
    distributions, W₂²(p, q) = ‖m_p − m_q‖² + W₂²(p − m_p, q − m_q), and the sliced distance
    (SW₂², Bonneel et al. 2015: the mean over unit directions u of the 1-D W₂² of ⟨u, ·⟩, the
    mean squared difference of sorted projections) inherits it. So per input

        SW₂² = mean_ℓ,u ⟨u, m_ℓ − m*_ℓ⟩²  +  mean_u W₂²(⟨u, x − m⟩, ⟨u, x* − m*⟩)

    where the second, the spread of the seeds around their own per-location mean, pools the
    centred patches of all L locations (L·S points instead of S: a stable estimate of its shape).
    A shifted image moves the means; a blurred or over-sharpened one changes the spread; a set
    collapsed onto one draw (or onto the mean) has none. (S, B, 3, H, W) twice → (B,); the
    patch size is √(``directions.shape[0]`` / 3).
    """
    means, spreads = _patch_terms(samples, reference, directions)
    return (means + spreads).sqrt()


def _patch_terms(samples: Tensor, reference: Tensor, directions: Tensor) -> tuple[Tensor, Tensor]:
    """The two terms of :func:`patch_sliced_wasserstein`'s SW₂² per input: means, spreads (B,)."""
    _check_seed_sets(samples=samples, reference=reference)
    patch = _patch_size(directions)
    directions = directions.to(samples.device)
    a, b = _located_patches(samples, patch), _located_patches(reference, patch)  # (B, L, S, D)
    mean_a, mean_b = a.mean(2, keepdim=True), b.mean(2, keepdim=True)
    means = ((mean_a - mean_b) @ directions).pow(2).mean(dim=(1, 2, 3))
    spread_a = ((a - mean_a) @ directions).flatten(1, 2).sort(dim=1).values  # (B, L·S, P)
    spread_b = ((b - mean_b) @ directions).flatten(1, 2).sort(dim=1).values
    return means, (spread_a - spread_b).pow(2).mean(dim=(1, 2))


def data_patch_distance(samples: Tensor, images: Tensor, directions: Tensor) -> Tensor:
    """Unconditional: how far the patches a model makes are from the real images' patches.

    The sliced W₂ between all RGB patches of one seed's samples (every input and location
    pooled, stride 1) and all patches of the ground-truth ``images`` (B, 3, H, W), per seed: (S,)
    for samples (S, B, 3, H, W). The data has one HR image per input, so unlike
    :func:`patch_sliced_wasserstein` this sees only the patch statistics of the whole set, not
    the conditional distribution of each input (shuffling the inputs does not change it), and it
    has no floor of its own: read it against the teacher's value. It tells whether a model's
    textures moved towards the data's or away from them; the patch size is
    √(``directions.shape[0]`` / 3).
    """
    if samples.ndim != 5 or images.ndim != 4 or tuple(samples.shape[1:]) != tuple(images.shape):
        raise ValueError(f"samples {tuple(samples.shape)}, images {tuple(images.shape)}: expected "
                         "(S, B, 3, H, W) and (B, 3, H, W)")
    patch = _patch_size(directions)
    directions = directions.to(samples.device)

    def projected(batch: Tensor) -> Tensor:  # (B, 3, H, W) → sorted projections (N, P)
        pieces = F.unfold(batch.double(), patch).transpose(1, 2).reshape(-1, directions.shape[0])
        return (pieces @ directions).sort(dim=0).values

    truth = projected(images)
    return torch.stack([(projected(seed) - truth).pow(2).mean().sqrt() for seed in samples])


def mean_image_distance(samples: Tensor, reference: Tensor) -> Tensor:
    """First moment per pixel: the RMS over pixels of E_ε[x̂₀] − E_ε[x₀*], the mean over seeds
    of each set, per input (B,). A regression model sits here on target; it fails the second
    moment (:func:`diversity`)."""
    _check_seed_sets(samples=samples, reference=reference)
    return (samples.double().mean(0) - reference.double().mean(0)).pow(2).flatten(1).mean(1).sqrt()


def conditional_distance(samples: Tensor, reference: Tensor, floor_reference: Tensor,
                         generator: torch.Generator, patch: int = 4, projections: int = 64) -> dict[str, float]:
    """How far a model's conditional distribution is from the teacher's, beside the floor.

    ``samples``: S seeds of the model for B fixed inputs; ``reference`` and ``floor_reference``:
    two independent S-seed sets of the teacher for the same inputs, all (S, B, 3, H, W) in one
    range (the network's [−1, 1]). Returns the means over inputs of

    * ``patch_distance`` (:func:`patch_sliced_wasserstein`, ``patch``², ``projections`` directions
      from ``generator``) and ``patch_floor``, the same between the two teacher sets, and their
      ratio ``patch_ratio`` (1 = as close as the teacher is to itself);
    * its spread term alone, ``spread_distance`` / ``spread_floor`` (the seeds' variation around
      their own mean: blur, over-sharpening and collapse show here; its floor is small because it
      pools all locations);
    * ``mean_distance`` / ``mean_floor`` (:func:`mean_image_distance`; the patch distance's
      other term is its square on average over directions);
    * ``diversity`` and ``reference_diversity`` (:func:`diversity`), ``diversity_ratio`` and the
      teacher's own ``floor_diversity_ratio`` (≈ 1).
    """
    _check_seed_sets(samples=samples, reference=reference, floor_reference=floor_reference)
    directions = patch_directions(patch, projections, generator)
    result = {}
    for suffix, candidate in (("distance", samples), ("floor", floor_reference)):
        means, spreads = _patch_terms(candidate, reference, directions)
        result[f"patch_{suffix}"] = float((means + spreads).sqrt().mean())
        result[f"spread_{suffix}"] = float(spreads.sqrt().mean())
        result[f"mean_{suffix}"] = float(mean_image_distance(candidate, reference).mean())
    result["diversity"] = float(diversity(samples).mean())
    result["reference_diversity"] = float(diversity(reference).mean())
    result["patch_ratio"] = result["patch_distance"] / max(result["patch_floor"], 1e-12)
    result["diversity_ratio"] = result["diversity"] / max(result["reference_diversity"], 1e-12)
    result["floor_diversity_ratio"] = float(diversity(floor_reference).mean()) / max(result["reference_diversity"], 1e-12)
    return result
