"""Degradations that turn a high-resolution image x_0 into its low-resolution observation y.

RSD and its ResShift teacher train on the second-order Real-ESRGAN pipeline (Wang et al. 2021,
"Real-ESRGAN", §3; RSD_SPEC §6 "Degradation"), per image:

1. order 1: blur (k_1) -> random resize -> Gaussian or Poisson noise -> JPEG;
2. order 2 (with probability ``second_order_prob``): blur (k_2, p ``second_blur_prob``) -> random
   resize -> noise;
3. final stage, in either order with p 0.5: {resize to H/s x W/s + sinc filter} and JPEG;
4. round to 8-bit levels.

The ImageNet-Test set uses the same code with milder, single-order settings (preset
``"realesrgan-test"``). Every random choice is drawn from an explicit ``torch.Generator``, so a
seed fixes the output bit for bit. kornia does the filtering, JPEG and grey conversion; the
blur-kernel families and Poisson noise, which kornia lacks, are written here.

Known differences from the official code (``basicsr``): kornia's JPEG rounds with the
differentiable polynomial ``round(x) + (x - round(x))^3`` instead of a hard round; the first-order
resize asks for an output *size* (as the second order does) rather than a ``scale_factor``; and
random choices are per image, where the official trainer shares resize scale/mode and the order
of the final stage across a batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import kornia
import torch
import torch.nn.functional as F

__all__ = [
    "BlurConfig",
    "OrderConfig",
    "DegradationConfig",
    "degradation_preset",
    "blur_kernel",
    "circular_lowpass_kernel",
    "sample_blur_kernel",
    "OrderParams",
    "DegradationParams",
    "classical_params",
    "quantize_8bit",
    "blur",
    "resize",
    "add_gaussian_noise",
    "add_poisson_noise",
    "add_noise",
    "jpeg_compress",
    "bicubic_downsample",
    "bicubic_upsample",
    "degrade_with",
    "Degradation",
]

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
ISOTROPIC_KERNEL_TYPES = ("iso", "generalized_iso", "plateau_iso")
RESIZE_MODES = ("area", "bilinear", "bicubic")
NOISE_KINDS = ("gaussian", "poisson")
PIPELINES = ("realesrgan", "bicubic")
RESIZE_DIRECTIONS = ("up", "down", "keep")


# ----------------------------------------------------------------------------- input checks


def _check_scale(scale: int) -> None:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")


def _check_image(name: str, image: torch.Tensor, *, scale: int | None = None, unit_range: bool = True) -> None:
    """Raise ValueError unless ``image`` is a float (B, 3, H, W) tensor in [0, 1] with H, W divisible by scale."""
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"{name} must be a tensor of shape (B, 3, H, W), got {shape}")
    if not image.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {image.dtype}")
    if unit_range and image.numel() and (image.min() < 0 or image.max() > 1):
        raise ValueError(
            f"{name} must lie in [0, 1], got values in [{image.min().item():.4g}, {image.max().item():.4g}]"
        )
    if scale is not None and (image.shape[-2] % scale or image.shape[-1] % scale):
        raise ValueError(f"{name} height and width must be divisible by scale={scale}, got {tuple(image.shape[-2:])}")


def _check_generator(generator: torch.Generator) -> None:
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")


def _check_choice(name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")


def _check_odd_size(name: str, size: int, minimum: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < minimum or size % 2 == 0:
        raise ValueError(f"{name} must be an odd int >= {minimum}, got {size!r}")


def _check_range(name: str, value: tuple[float, float], minimum: float = 0.0) -> None:
    if len(value) != 2 or not minimum <= value[0] <= value[1]:
        raise ValueError(f"{name} must be a (low, high) pair with {minimum} <= low <= high, got {value!r}")


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


def _check_distribution(name: str, probs: tuple[float, ...], length: int) -> None:
    if len(probs) != length or min(probs) < 0 or abs(sum(probs) - 1.0) > 1e-6:
        raise ValueError(f"{name} must be {length} non-negative probabilities summing to 1, got {probs!r}")


# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class BlurConfig:
    """How one blur kernel is drawn (Real-ESRGAN §3.1; RSD_SPEC §6).

    Kernel sizes are drawn from the odd numbers 3, 5, ..., ``kernel_size - 2`` (official
    ``range(3, blur_kernel_size, 2)``) and zero-padded to ``kernel_size``.
    """

    kernel_size: int = 21
    kernel_list: tuple[str, ...] = KERNEL_TYPES
    kernel_prob: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sigma_range: tuple[float, float] = (0.2, 3.0)
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)
    sinc_prob: float = 0.1

    def __post_init__(self) -> None:
        _check_odd_size("kernel_size", self.kernel_size, minimum=5)
        for kind in self.kernel_list:
            _check_choice("kernel_list entry", kind, KERNEL_TYPES)
        _check_distribution("kernel_prob", self.kernel_prob, len(self.kernel_list))
        _check_range("sigma_range", self.sigma_range, minimum=1e-3)
        _check_range("betag_range", self.betag_range, minimum=1e-3)
        _check_range("betap_range", self.betap_range, minimum=1e-3)
        _check_probability("sinc_prob", self.sinc_prob)


@dataclass(frozen=True)
class OrderConfig:
    """Resize, noise and JPEG settings of one degradation order (official ``degradation:`` block).

    ``noise_range`` is the Gaussian sigma in 8-bit units; ``jpeg_range`` of the second order is
    the quality of the final JPEG (official ``jpeg_range2``).
    """

    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple[float, float] = (1.0, 30.0)
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (30.0, 95.0)

    def __post_init__(self) -> None:
        _check_distribution("resize_prob", self.resize_prob, len(RESIZE_DIRECTIONS))
        _check_range("resize_range", self.resize_range, minimum=1e-3)
        if not self.resize_range[0] <= 1.0 <= self.resize_range[1]:
            raise ValueError(f"resize_range must contain 1, got {self.resize_range!r}")
        _check_probability("gaussian_noise_prob", self.gaussian_noise_prob)
        _check_range("noise_range", self.noise_range)
        _check_range("poisson_scale_range", self.poisson_scale_range)
        _check_probability("gray_noise_prob", self.gray_noise_prob)
        _check_range("jpeg_range", self.jpeg_range, minimum=1.0)
        if self.jpeg_range[1] > 100:
            raise ValueError(f"jpeg_range must lie in [1, 100], got {self.jpeg_range!r}")


def _second_blur() -> BlurConfig:
    return BlurConfig(kernel_size=15, sigma_range=(0.2, 1.5))


def _second_order() -> OrderConfig:
    return OrderConfig(
        resize_prob=(0.3, 0.4, 0.3), resize_range=(0.3, 1.2), noise_range=(1.0, 25.0), poisson_scale_range=(0.05, 2.5)
    )


@dataclass(frozen=True)
class DegradationConfig:
    """Every parameter of the Real-ESRGAN second-order pipeline; defaults are the paper's training
    values ([RS] ``configs/realsr_swinunet_realesrgan256.yaml``, RSD_SPEC §6).

    ``pipeline="bicubic"`` ignores the rest and gives the plain antialiased bicubic x``scale``.
    ``blur2.kernel_size`` also sets the size of the final sinc kernel, as in the official code.
    """

    pipeline: str = "realesrgan"
    scale: int = 4
    blur1: BlurConfig = field(default_factory=BlurConfig)
    blur2: BlurConfig = field(default_factory=_second_blur)
    order1: OrderConfig = field(default_factory=OrderConfig)
    order2: OrderConfig = field(default_factory=_second_order)
    second_order_prob: float = 0.5
    second_blur_prob: float = 0.8
    final_sinc_prob: float = 0.8

    def __post_init__(self) -> None:
        _check_choice("pipeline", self.pipeline, PIPELINES)
        _check_scale(self.scale)
        for name in ("second_order_prob", "second_blur_prob", "final_sinc_prob"):
            _check_probability(name, getattr(self, name))


def _test_blur(kernel_size: int, sigma_range: tuple[float, float], betag_range: tuple[float, float], sinc_prob: float):
    return BlurConfig(
        kernel_size=kernel_size,
        kernel_prob=(0.6, 0.4, 0.0, 0.0, 0.0, 0.0),
        sigma_range=sigma_range,
        betag_range=betag_range,
        betap_range=(1.0, 1.2),
        sinc_prob=sinc_prob,
    )


def _realesrgan_test() -> DegradationConfig:
    """[RS] ``configs/degradation_testing_realesrgan.yaml``: how ImageNet-Test was made (RSD_SPEC §6)."""
    return DegradationConfig(
        blur1=_test_blur(13, (0.2, 0.8), (1.0, 1.5), sinc_prob=0.1),
        blur2=_test_blur(7, (0.2, 0.5), (0.5, 0.8), sinc_prob=0.0),
        order1=OrderConfig(
            resize_range=(0.5, 1.5), noise_range=(1.0, 15.0), poisson_scale_range=(0.05, 0.3), jpeg_range=(70.0, 95.0)
        ),
        order2=OrderConfig(
            resize_prob=(0.3, 0.4, 0.3),
            resize_range=(0.8, 1.2),
            noise_range=(1.0, 10.0),
            poisson_scale_range=(0.05, 0.2),
            jpeg_range=(80.0, 100.0),
        ),
        second_order_prob=0.0,
        second_blur_prob=0.2,
        final_sinc_prob=0.2,
    )


def _realesrgan_light() -> DegradationConfig:
    """Between the paper's training and test settings, for the tiny CPU model: kernels at most 11
    (first) / 7 (second) wide, half the blur sigma, a third of the noise, JPEG >= 60, a gentler
    resize, second order at p 0.2 and the final sinc at p 0.5."""
    return DegradationConfig(
        blur1=BlurConfig(kernel_size=13, sigma_range=(0.2, 1.5)),
        blur2=BlurConfig(kernel_size=9, sigma_range=(0.2, 1.0)),
        order1=OrderConfig(
            resize_range=(0.5, 1.5), noise_range=(1.0, 10.0), poisson_scale_range=(0.05, 1.0), jpeg_range=(60.0, 95.0)
        ),
        order2=OrderConfig(
            resize_prob=(0.3, 0.4, 0.3),
            resize_range=(0.6, 1.2),
            noise_range=(1.0, 8.0),
            poisson_scale_range=(0.05, 0.8),
            jpeg_range=(60.0, 95.0),
        ),
        second_order_prob=0.2,
        final_sinc_prob=0.5,
    )


def _realesrgan_mild() -> DegradationConfig:
    """The mildest Real-ESRGAN-style setting, for the shipped tiny models (a 3 M-parameter
    network trained for minutes on 11 photos): one order only, the test-set blur (σ ≤ 0.8),
    a gentle resize, noise σ ≤ 5 (8-bit units), JPEG ≥ 85, a final sinc filter at p 0.1."""
    return DegradationConfig(
        blur1=_test_blur(13, (0.2, 0.8), (1.0, 1.5), sinc_prob=0.1),
        blur2=_test_blur(7, (0.2, 0.5), (0.5, 0.8), sinc_prob=0.0),
        order1=OrderConfig(resize_range=(0.8, 1.2), noise_range=(1.0, 5.0), poisson_scale_range=(0.05, 0.2),
                           jpeg_range=(85.0, 95.0)),
        second_order_prob=0.0,
        second_blur_prob=0.0,
        final_sinc_prob=0.1,
    )


_PRESETS = {
    "realesrgan": DegradationConfig,
    "realesrgan-test": _realesrgan_test,
    "realesrgan-light": _realesrgan_light,
    "realesrgan-mild": _realesrgan_mild,
    "bicubic": lambda: DegradationConfig(pipeline="bicubic"),
}


def degradation_preset(name: str) -> DegradationConfig:
    """The degradation settings called ``name``: "realesrgan" (paper training), "realesrgan-test"
    (ImageNet-Test), "realesrgan-light", "realesrgan-mild" (tiny CPU models) or "bicubic"
    (plain bicubic x4)."""
    if name not in _PRESETS:
        raise ValueError(f"name must be one of {tuple(_PRESETS)}, got {name!r}")
    return _PRESETS[name]()


# ----------------------------------------------------------------------------- blur kernels


def _mesh_grid(kernel_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel offsets from the kernel centre: x along columns, y along rows (float64)."""
    axis = torch.arange(kernel_size, dtype=torch.float64) - kernel_size // 2
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return xx, yy


def _mahalanobis(kernel_size: int, sigma_x: float, sigma_y: float, theta: float) -> torch.Tensor:
    """p^T Sigma^-1 p on the grid, Sigma = R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T (Real-ESRGAN Eq. 2)."""
    xx, yy = _mesh_grid(kernel_size)
    along = xx * math.cos(theta) + yy * math.sin(theta)  # coordinates in the rotated frame
    across = -xx * math.sin(theta) + yy * math.cos(theta)
    return (along / sigma_x) ** 2 + (across / sigma_y) ** 2


def _normalise(kernel: torch.Tensor) -> torch.Tensor:
    return (kernel / kernel.sum()).float()


def blur_kernel(
    kind: str,
    kernel_size: int,
    sigma_x: float,
    sigma_y: float | None = None,
    theta: float = 0.0,
    beta: float = 1.0,
) -> torch.Tensor:
    """A (kernel_size, kernel_size) float32 blur kernel summing to 1 (Real-ESRGAN §3.1).

    With q = p^T Sigma^-1 p: Gaussian exp(-q/2), generalized Gaussian exp(-q^beta / 2), plateau
    1 / (1 + q^beta). Isotropic kinds use sigma_x on both axes and ignore sigma_y and theta;
    anisotropic ones stretch by sigma_x along the direction ``theta`` (radians from the x axis).
    """
    _check_choice("kind", kind, KERNEL_TYPES)
    _check_odd_size("kernel_size", kernel_size, minimum=1)
    sigma_y = sigma_x if sigma_y is None or kind in ISOTROPIC_KERNEL_TYPES else sigma_y
    theta = 0.0 if kind in ISOTROPIC_KERNEL_TYPES else theta
    if min(sigma_x, sigma_y) <= 0 or beta <= 0:
        raise ValueError(f"sigma_x, sigma_y and beta must be positive, got {sigma_x!r}, {sigma_y!r}, {beta!r}")
    q = _mahalanobis(kernel_size, sigma_x, sigma_y, theta)
    if kind in ("iso", "aniso"):
        return _normalise(torch.exp(-0.5 * q))
    if kind.startswith("generalized"):
        return _normalise(torch.exp(-0.5 * q**beta))
    return _normalise(1.0 / (1.0 + q**beta))


def circular_lowpass_kernel(cutoff: float, kernel_size: int) -> torch.Tensor:
    """2-D sinc (circular ideal low-pass) kernel with cutoff ``cutoff`` in radians, pi = Nyquist.

    h(r) = cutoff * J1(cutoff * r) / (2 pi r), h(0) = cutoff^2 / (4 pi), truncated to the square and
    normalised to sum 1 (Real-ESRGAN §3.1, "sinc filter", for ringing and overshoot artifacts).
    """
    _check_odd_size("kernel_size", kernel_size, minimum=1)
    if not 0 < cutoff <= math.pi:
        raise ValueError(f"cutoff must lie in (0, pi], got {cutoff!r}")
    xx, yy = _mesh_grid(kernel_size)
    radius = torch.hypot(xx, yy)
    safe_radius = torch.where(radius > 0, radius, torch.ones_like(radius))
    kernel = cutoff * torch.special.bessel_j1(cutoff * safe_radius) / (2 * math.pi * safe_radius)
    return _normalise(torch.where(radius > 0, kernel, torch.full_like(kernel, cutoff**2 / (4 * math.pi))))


def _pad_kernel(kernel: torch.Tensor, size: int) -> torch.Tensor:
    pad = (size - kernel.shape[-1]) // 2
    return F.pad(kernel, (pad, pad, pad, pad))


# ----------------------------------------------------------------------------- random draws


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    """U(low, high); like numpy, low > high is allowed and samples (high, low)."""
    return low + (high - low) * torch.rand((), generator=generator, dtype=torch.float64).item()


def _chance(generator: torch.Generator, probability: float) -> bool:
    return torch.rand((), generator=generator, dtype=torch.float64).item() < probability


def _choice(generator: torch.Generator, options: tuple, weights: tuple[float, ...] | None = None):
    weights = torch.ones(len(options), dtype=torch.float64) if weights is None else torch.tensor(weights)
    return options[torch.multinomial(weights, 1, generator=generator).item()]


def _sample_beta(generator: torch.Generator, beta_range: tuple[float, float]) -> float:
    """Shape beta below or above 1 with equal odds (official ``random_bivariate_generalized_Gaussian``)."""
    if _chance(generator, 0.5):
        return _uniform(generator, beta_range[0], 1.0)
    return _uniform(generator, 1.0, beta_range[1])


def _sample_sinc(generator: torch.Generator, kernel_size: int, lowest_cutoff: float) -> torch.Tensor:
    return circular_lowpass_kernel(_uniform(generator, lowest_cutoff, math.pi), kernel_size)


def _kernel_sizes(padded_size: int) -> tuple[int, ...]:
    return tuple(range(3, padded_size, 2))


def sample_blur_kernel(generator: torch.Generator, blur: BlurConfig) -> torch.Tensor:
    """Draw one kernel as the official ``RealESRGANDataset.__getitem__`` does, padded to ``blur.kernel_size``.

    With p ``sinc_prob`` a sinc kernel (cutoff in [pi/3, pi] below size 13, else [pi/5, pi]);
    otherwise a kind from ``kernel_list``, sigmas from ``sigma_range``, angle in [-pi, pi].
    """
    size = _choice(generator, _kernel_sizes(blur.kernel_size))
    if _chance(generator, blur.sinc_prob):
        kernel = _sample_sinc(generator, size, math.pi / 3 if size < 13 else math.pi / 5)
        return _pad_kernel(kernel, blur.kernel_size)
    kind = _choice(generator, blur.kernel_list, blur.kernel_prob)
    sigma_x = sigma_y = _uniform(generator, *blur.sigma_range)
    theta = 0.0
    if kind not in ISOTROPIC_KERNEL_TYPES:
        sigma_y = _uniform(generator, *blur.sigma_range)
        theta = _uniform(generator, -math.pi, math.pi)
    beta = 1.0
    if kind.startswith("generalized"):
        beta = _sample_beta(generator, blur.betag_range)
    elif kind.startswith("plateau"):
        beta = _sample_beta(generator, blur.betap_range)
    return _pad_kernel(blur_kernel(kind, size, sigma_x, sigma_y, theta, beta), blur.kernel_size)


# ----------------------------------------------------------------------------- explicit parameters


@dataclass(frozen=True, eq=False)
class OrderParams:
    """The choices of one order: blur -> resize -> noise (RSD_SPEC §6).

    ``kernel`` None skips the blur. The output size is ``reference * resize_scale``, where the
    reference is the HR size in order 1 and the LR size (HR / scale) in order 2.
    ``noise_level`` is sigma in 8-bit units for "gaussian", the scale for "poisson"; 0 adds none.
    """

    kernel: torch.Tensor | None
    resize_scale: float
    resize_mode: str
    noise_kind: str
    noise_level: float
    gray_noise: bool

    def __post_init__(self) -> None:
        _check_choice("resize_mode", self.resize_mode, RESIZE_MODES)
        _check_choice("noise_kind", self.noise_kind, NOISE_KINDS)
        if self.resize_scale <= 0 or self.noise_level < 0:
            raise ValueError(
                f"resize_scale must be > 0 and noise_level >= 0, got {self.resize_scale!r}, {self.noise_level!r}"
            )


@dataclass(frozen=True, eq=False)
class DegradationParams:
    """Every choice of one Real-ESRGAN degradation; ``None`` skips a JPEG, the second order or the sinc."""

    first: OrderParams
    first_jpeg_quality: float | None
    second: OrderParams | None
    final_kernel: torch.Tensor | None
    final_resize_mode: str
    final_jpeg_quality: float | None
    final_sinc_first: bool

    def __post_init__(self) -> None:
        _check_choice("final_resize_mode", self.final_resize_mode, RESIZE_MODES)
        for name in ("first_jpeg_quality", "final_jpeg_quality"):
            quality = getattr(self, name)
            if quality is not None and not 1 <= quality <= 100:
                raise ValueError(f"{name} must be None or lie in [1, 100], got {quality!r}")


def classical_params(
    blur_sigma: float = 0.0,
    noise_sigma: float = 0.0,
    jpeg_quality: float | None = None,
    scale: int = 4,
    kernel_size: int = 21,
) -> DegradationParams:
    """The classical model y = JPEG((x * k_sigma) down_s + n) as explicit parameters, for sliders.

    Isotropic Gaussian blur (0: none), area down-sampling by ``scale``, colour Gaussian noise of
    sigma ``noise_sigma`` in 8-bit units, then JPEG at ``jpeg_quality`` (None: none).
    """
    _check_scale(scale)
    kernel = blur_kernel("iso", kernel_size, blur_sigma) if blur_sigma > 0 else None
    first = OrderParams(kernel, 1.0 / scale, "area", "gaussian", noise_sigma, gray_noise=False)
    return DegradationParams(first, jpeg_quality, None, None, "area", None, final_sinc_first=True)


# ----------------------------------------------------------------------------- image operations


def quantize_8bit(image: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to the 256 levels of an 8-bit image, as the official pipeline ends."""
    return torch.clamp((image * 255.0).round(), 0, 255) / 255.0


def blur(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Correlate every channel with ``kernel`` (kornia ``filter2d``), reflect border like basicsr ``filter2D``.

    Images narrower than the kernel radius fall back to a replicated border.
    """
    border = "reflect" if kernel.shape[-1] // 2 < min(image.shape[-2:]) else "replicate"
    return kornia.filters.filter2d(image, kernel[None].to(image), border_type=border)


def resize(image: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize to ``size`` with ``mode`` in {area, bilinear, bicubic}, without antialias, as the official trainer."""
    _check_choice("mode", mode, RESIZE_MODES)
    if tuple(image.shape[-2:]) == tuple(size):
        return image  # every mode is the identity at the same size
    return F.interpolate(image, size=size, mode=mode)


def add_gaussian_noise(image: torch.Tensor, sigma: float, gray: bool, generator: torch.Generator) -> torch.Tensor:
    """x + n, n ~ N(0, (sigma/255)^2), clipped to [0, 1]; ``gray`` shares one noise map across channels."""
    batch, _, height, width = image.shape
    shape = (batch, 1, height, width) if gray else image.shape
    noise = torch.randn(shape, generator=generator, dtype=image.dtype, device=generator.device)
    return torch.clamp(image + noise.to(image.device) * (sigma / 255.0), 0, 1)


def _poisson_levels(image: torch.Tensor) -> torch.Tensor:
    """2^ceil(log2(#distinct values)) per image: the photon count that makes them distinguishable."""
    counts = [float(torch.unique(single).numel()) for single in image]
    return image.new_tensor([2.0 ** math.ceil(math.log2(count)) for count in counts]).view(-1, 1, 1, 1)


def add_poisson_noise(image: torch.Tensor, scale: float, gray: bool, generator: torch.Generator) -> torch.Tensor:
    """Shot noise (official ``generate_poisson_noise_pt``): on the 8-bit image, or its luma if ``gray``."""
    source = quantize_8bit(kornia.color.rgb_to_grayscale(image) if gray else image)
    levels = _poisson_levels(source)
    counts = torch.poisson((source * levels).to(generator.device), generator=generator).to(image.device)
    return torch.clamp(image + scale * (counts / levels - source), 0, 1)


def add_noise(image: torch.Tensor, kind: str, level: float, gray: bool, generator: torch.Generator) -> torch.Tensor:
    """Gaussian (sigma ``level`` in 8-bit units) or Poisson (scale ``level``) noise; level 0 returns the image."""
    _check_choice("kind", kind, NOISE_KINDS)
    if level == 0:
        return image
    if kind == "gaussian":
        return add_gaussian_noise(image, level, gray, generator)
    return add_poisson_noise(image, level, gray, generator)


def jpeg_compress(image: torch.Tensor, quality: float | None) -> torch.Tensor:
    """JPEG-compress at ``quality`` in [1, 100] with kornia's codec; None returns the image unchanged."""
    if quality is None:
        return image
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must lie in [1, 100], got {quality!r}")
    qualities = torch.full((image.shape[0],), float(quality), dtype=image.dtype, device=image.device)
    return kornia.enhance.jpeg_codec_differentiable(torch.clamp(image, 0, 1), qualities)


def bicubic_downsample(hr: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """Antialiased bicubic down-sampling by ``scale`` (kernel widened by ``scale``, as PIL / MATLAB
    ``imresize``), clamped to [0, 1]; hr is (B, 3, H, W) in [0, 1] with H, W divisible by ``scale``."""
    _check_scale(scale)
    _check_image("hr", hr, scale=scale)
    size = (hr.shape[-2] // scale, hr.shape[-1] // scale)
    return torch.clamp(F.interpolate(hr, size=size, mode="bicubic", antialias=True, align_corners=False), 0, 1)


def bicubic_upsample(lr: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """Plain bicubic up-sampling by ``scale``, no clamp: exactly how ResShift brings y to the HR size
    before encoding it (``F.interpolate(y, scale_factor=sf, mode='bicubic')`` in
    ``GaussianDiffusion.encode_first_stage``). Works on any value range, e.g. [-1, 1]."""
    _check_scale(scale)
    _check_image("lr", lr, unit_range=False)
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)


# ----------------------------------------------------------------------------- the pipeline


def _scaled_size(reference: tuple[int, int], factor: float) -> tuple[int, int]:
    # The 1e-6 keeps 48 * (1/3) from flooring to 15.
    return tuple(max(1, int(side * factor + 1e-6)) for side in reference)


def _apply_order(
    image: torch.Tensor, order: OrderParams, reference: tuple[int, int], generator: torch.Generator
) -> torch.Tensor:
    if order.kernel is not None:
        image = blur(image, order.kernel)
    image = resize(image, _scaled_size(reference, order.resize_scale), order.resize_mode)
    return add_noise(image, order.noise_kind, order.noise_level, order.gray_noise, generator)


def _resize_and_sinc(image: torch.Tensor, params: DegradationParams, lr_size: tuple[int, int]) -> torch.Tensor:
    image = resize(image, lr_size, params.final_resize_mode)
    return image if params.final_kernel is None else blur(image, params.final_kernel)


def degrade_with(
    hr: torch.Tensor, params: DegradationParams, generator: torch.Generator | None = None, scale: int = 4
) -> torch.Tensor:
    """Apply one explicit set of choices to every image of ``hr`` (B, 3, H, W) in [0, 1] (RSD_SPEC §6).

    Only the noise samples come from ``generator`` (None: a fresh generator seeded 0, so sliders
    redraw the same noise). Returns the 8-bit-quantised LR image (B, 3, H/scale, W/scale).
    """
    _check_scale(scale)
    _check_image("hr", hr, scale=scale)
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    _check_generator(generator)
    lr_size = (hr.shape[-2] // scale, hr.shape[-1] // scale)
    out = _apply_order(hr, params.first, tuple(hr.shape[-2:]), generator)
    out = jpeg_compress(out, params.first_jpeg_quality)
    if params.second is not None:
        out = _apply_order(out, params.second, lr_size, generator)
    if params.final_sinc_first:  # Real-ESRGAN: other orders of sinc/JPEG/resize give twisted lines
        out = jpeg_compress(_resize_and_sinc(out, params, lr_size), params.final_jpeg_quality)
    else:
        out = _resize_and_sinc(jpeg_compress(out, params.final_jpeg_quality), params, lr_size)
    return quantize_8bit(out)


def _sample_order(generator: torch.Generator, blur_config: BlurConfig | None, order: OrderConfig) -> OrderParams:
    kernel = None if blur_config is None else sample_blur_kernel(generator, blur_config)
    direction = _choice(generator, RESIZE_DIRECTIONS, order.resize_prob)
    resize_scale = 1.0
    if direction == "up":
        resize_scale = _uniform(generator, 1.0, order.resize_range[1])
    elif direction == "down":
        resize_scale = _uniform(generator, order.resize_range[0], 1.0)
    mode = _choice(generator, RESIZE_MODES)
    if _chance(generator, order.gaussian_noise_prob):
        kind, level = "gaussian", _uniform(generator, *order.noise_range)
    else:
        kind, level = "poisson", _uniform(generator, *order.poisson_scale_range)
    return OrderParams(kernel, resize_scale, mode, kind, level, _chance(generator, order.gray_noise_prob))


class Degradation:
    """The degradation x_0 -> y used to make training pairs: ``Degradation("realesrgan")(hr, generator)``.

    Each image of the batch gets its own choices, all drawn from ``generator``, so one seed fixes
    the output bit for bit (RSD_SPEC §6; Real-ESRGAN, Wang et al. 2021).
    """

    def __init__(self, config: DegradationConfig | str = "realesrgan"):
        config = degradation_preset(config) if isinstance(config, str) else config
        if not isinstance(config, DegradationConfig):
            raise ValueError(f"config must be a DegradationConfig or a preset name, got {type(config).__name__}")
        self.config = config

    def sample_params(self, generator: torch.Generator) -> DegradationParams:
        """Draw the choices for one image (official ``RealESRGANDataset`` + trainer ``prepare_data``)."""
        _check_generator(generator)
        config = self.config
        if config.pipeline != "realesrgan":
            raise ValueError(f"sample_params needs pipeline 'realesrgan', got {config.pipeline!r}")
        first = _sample_order(generator, config.blur1, config.order1)
        first_quality = _uniform(generator, *config.order1.jpeg_range)
        second = None
        if _chance(generator, config.second_order_prob):
            second_blur = config.blur2 if _chance(generator, config.second_blur_prob) else None
            second = _sample_order(generator, second_blur, config.order2)
        final_kernel = None
        if _chance(generator, config.final_sinc_prob):
            size = _choice(generator, _kernel_sizes(config.blur2.kernel_size))
            final_kernel = _pad_kernel(_sample_sinc(generator, size, math.pi / 3), config.blur2.kernel_size)
        return DegradationParams(
            first=first,
            first_jpeg_quality=first_quality,
            second=second,
            final_kernel=final_kernel,
            final_resize_mode=_choice(generator, RESIZE_MODES),
            final_jpeg_quality=_uniform(generator, *config.order2.jpeg_range),
            final_sinc_first=_chance(generator, 0.5),
        )

    def __call__(self, hr: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Degrade ``hr`` (B, 3, H, W) in [0, 1] to the 8-bit LR image (B, 3, H/scale, W/scale)."""
        scale = self.config.scale
        _check_image("hr", hr, scale=scale)
        _check_generator(generator)
        if self.config.pipeline == "bicubic":
            return quantize_8bit(bicubic_downsample(hr, scale))
        images = [degrade_with(image[None], self.sample_params(generator), generator, scale) for image in hr]
        return torch.cat(images)
