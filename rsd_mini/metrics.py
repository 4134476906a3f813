"""Full-reference image metrics as the paper reports them (RSD_SPEC §6 "Metrics").

The RSD evaluation (pyiqa) computes PSNR and SSIM on the Y channel of YCbCr in the
ITU-R BT.601 "studio" form that MATLAB's ``rgb2ycbcr`` uses, Y ∈ [16/255, 235/255], on [0, 1]
images, without border crop, averaged per image. kornia does the PSNR/SSIM arithmetic.
"""

from __future__ import annotations

import kornia
import torch
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
