"""Tests for rsd_mini.degradations (RSD_SPEC §6; Real-ESRGAN, Wang et al. 2021)."""

import math

import pytest
import torch
import torch.nn.functional as F

from rsd_mini.degradations import (
    KERNEL_TYPES,
    BlurConfig,
    Degradation,
    DegradationConfig,
    add_gaussian_noise,
    add_poisson_noise,
    bicubic_downsample,
    bicubic_upsample,
    blur_kernel,
    circular_lowpass_kernel,
    classical_params,
    degradation_preset,
    degrade_with,
    jpeg_compress,
    quantize_8bit,
    sample_blur_kernel,
)

REAL_PRESETS = ("realesrgan", "realesrgan-test", "realesrgan-light")


def make_images(batch: int = 4, size: int = 64, seed: int = 0) -> torch.Tensor:
    """Smooth random colour fields plus oblique stripes: low and high frequencies, 8-bit levels."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, size // 8, size // 8, generator=generator)
    smooth = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    axis = torch.arange(size, dtype=torch.float32)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    stripes = 0.5 + 0.5 * torch.sin(0.8 * xx + 0.3 * yy)
    return quantize_8bit(0.7 * smooth + 0.3 * stripes)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return (10 * torch.log10(1.0 / F.mse_loss(a, b))).item()


# ----------------------------------------------------------------------------- kernels


@pytest.mark.parametrize("kind", KERNEL_TYPES)
@pytest.mark.parametrize("size", [7, 21])
def test_kernel_sums_to_one_with_requested_size(kind, size):
    kernel = blur_kernel(kind, size, sigma_x=1.5, sigma_y=0.7, theta=0.4, beta=1.7)
    assert kernel.shape == (size, size)
    assert kernel.min() >= 0
    torch.testing.assert_close(kernel.sum(), torch.tensor(1.0))


@pytest.mark.parametrize("kind", ["iso", "generalized_iso", "plateau_iso"])
def test_isotropic_kernel_is_symmetric(kind):
    kernel = blur_kernel(kind, 15, sigma_x=2.0, sigma_y=0.5, theta=0.9, beta=0.8)  # sigma_y, theta ignored
    torch.testing.assert_close(kernel, kernel.T)
    torch.testing.assert_close(kernel, kernel.flip(0))
    torch.testing.assert_close(kernel, kernel.flip(1))


@pytest.mark.parametrize("kind", ["aniso", "generalized_aniso", "plateau_aniso"])
def test_anisotropic_kernel_rotates_with_angle(kind):
    wide = blur_kernel(kind, 15, sigma_x=3.0, sigma_y=0.8, theta=0.0, beta=1.2)
    offsets = torch.arange(15, dtype=torch.float32) - 7
    spread_x = (wide.sum(0) * offsets**2).sum()  # columns are x
    spread_y = (wide.sum(1) * offsets**2).sum()
    assert spread_x > 2 * spread_y
    turned = blur_kernel(kind, 15, sigma_x=3.0, sigma_y=0.8, theta=math.pi / 2, beta=1.2)
    torch.testing.assert_close(turned, wide.T, atol=1e-6, rtol=0)
    diagonal = blur_kernel(kind, 15, sigma_x=3.0, sigma_y=0.8, theta=math.pi / 4, beta=1.2)
    assert diagonal[3, 3] > diagonal[3, 11]  # stretched along y = x, not y = -x


def test_gaussian_kernel_covariance_matches_rotated_sigma():
    sigma_x, sigma_y, theta = 2.0, 1.0, 0.5
    kernel = blur_kernel("aniso", 21, sigma_x, sigma_y, theta).double()
    offsets = torch.arange(21, dtype=torch.float64) - 10
    yy, xx = torch.meshgrid(offsets, offsets, indexing="ij")
    points = torch.stack([xx, yy])  # (x, y) offsets, x along columns
    covariance = torch.einsum("ahw,bhw,hw->ab", points, points, kernel)
    cos, sin = math.cos(theta), math.sin(theta)
    rotation = torch.tensor([[cos, -sin], [sin, cos]], dtype=torch.float64)
    expected = rotation @ torch.diag(torch.tensor([sigma_x**2, sigma_y**2], dtype=torch.float64)) @ rotation.T
    torch.testing.assert_close(covariance, expected, atol=0.05, rtol=0)


def test_shape_parameter_beta():
    gaussian = blur_kernel("iso", 11, 2.0)
    torch.testing.assert_close(blur_kernel("generalized_iso", 11, 2.0, beta=1.0), gaussian)
    for kind in ("generalized_iso", "plateau_iso"):
        shoulders = [(k[5, 6] / k[5, 5]).item() for k in (blur_kernel(kind, 11, 2.0, beta=b) for b in (0.5, 1, 2))]
        assert shoulders == sorted(shoulders) and shoulders[0] < shoulders[-1] - 0.05  # larger beta: flatter top


def test_sinc_kernel_is_low_pass():
    cutoff = math.pi / 3
    kernel = circular_lowpass_kernel(cutoff, 21)
    torch.testing.assert_close(kernel.sum(), torch.tensor(1.0))
    torch.testing.assert_close(kernel, kernel.T)
    response = torch.fft.fft2(F.pad(kernel, (0, 43, 0, 43))).abs()
    frequency = torch.fft.fftfreq(64) * 2 * math.pi
    radius = torch.hypot(frequency[:, None], frequency[None, :])
    assert response[radius < cutoff / 2].min() > 0.85
    assert response[radius > 1.5 * cutoff].max() < 0.1


def test_sampled_kernels_follow_config():
    blur = BlurConfig(kernel_size=13, sinc_prob=0.3)
    generator = seeded(0)
    kernels = [sample_blur_kernel(generator, blur) for _ in range(40)]
    for kernel in kernels:
        assert kernel.shape == (13, 13)
        torch.testing.assert_close(kernel.sum(), torch.tensor(1.0))
        assert (kernel[0] == 0).all() and (kernel[:, -1] == 0).all()  # sizes <= 11, padded to 13
    assert any(kernel.min() < 0 for kernel in kernels)  # some sinc kernels (negative lobes)
    assert len({tuple(kernel.flatten().tolist()) for kernel in kernels}) == len(kernels)


# ----------------------------------------------------------------------------- pipeline


@pytest.mark.parametrize("name", REAL_PRESETS + ("bicubic",))
def test_output_shape_range_and_8bit_levels(name):
    hr = make_images(batch=3, size=64)
    lq = Degradation(name)(hr, seeded(1))
    assert lq.shape == (3, 3, 16, 16)
    assert lq.dtype == hr.dtype
    assert lq.min() >= 0 and lq.max() <= 1
    torch.testing.assert_close(lq * 255, (lq * 255).round(), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", REAL_PRESETS)
def test_same_seed_same_output_other_seed_differs(name):
    hr = make_images(batch=3)
    degradation = Degradation(name)
    first = degradation(hr, seeded(7))
    assert torch.equal(first, degradation(hr, seeded(7)))
    assert not torch.equal(first, degradation(hr, seeded(8)))


def test_each_image_gets_its_own_draw():
    hr = make_images(batch=1).expand(4, -1, -1, -1)
    lq = Degradation("realesrgan")(hr, seeded(3))
    assert not torch.equal(lq[0], lq[1]) and not torch.equal(lq[2], lq[3])


def test_bicubic_preset_equals_bicubic_downsample():
    hr = make_images(batch=2)
    lq = Degradation("bicubic")(hr, seeded(0))
    assert torch.equal(lq, quantize_8bit(bicubic_downsample(hr, 4)))
    assert not torch.equal(lq, quantize_8bit(hr[..., ::4, ::4]))  # it does filter


def test_presets_differ_in_severity():
    hr = make_images(batch=8)
    reference = quantize_8bit(bicubic_downsample(hr))

    def mean_error(name):
        degradation = Degradation(name)
        errors = [(degradation(hr, seeded(seed)) - reference).abs().mean() for seed in range(2)]
        return torch.stack(errors).mean().item()

    assert mean_error("realesrgan") > 1.2 * mean_error("realesrgan-light")


def test_sampled_params_respect_test_preset():
    degradation = Degradation("realesrgan-test")
    generator = seeded(0)
    for _ in range(30):
        params = degradation.sample_params(generator)
        assert params.second is None  # single order
        assert 70 <= params.first_jpeg_quality <= 95 and 80 <= params.final_jpeg_quality <= 100
        assert 0.5 <= params.first.resize_scale <= 1.5
        assert params.first.kernel.shape == (13, 13)
        level_range = (1, 15) if params.first.noise_kind == "gaussian" else (0.05, 0.3)
        assert level_range[0] <= params.first.noise_level <= level_range[1]
        if params.final_kernel is not None:
            assert params.final_kernel.shape == (7, 7)


def test_official_defaults():
    config = degradation_preset("realesrgan")
    assert config == DegradationConfig()
    assert (config.blur1.kernel_size, config.blur2.kernel_size, config.scale) == (21, 15, 4)
    assert config.blur1.kernel_prob == (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    assert (config.blur1.sigma_range, config.blur2.sigma_range) == ((0.2, 3.0), (0.2, 1.5))
    assert (config.order1.noise_range, config.order2.noise_range) == ((1.0, 30.0), (1.0, 25.0))
    assert (config.second_order_prob, config.second_blur_prob, config.final_sinc_prob) == (0.5, 0.8, 0.8)


# ----------------------------------------------------------------------------- explicit parameters


def test_classical_params_without_effects_is_area_downsampling():
    hr = make_images(batch=2)
    lq = degrade_with(hr, classical_params(scale=4))
    assert torch.equal(lq, quantize_8bit(F.avg_pool2d(hr, 4)))


def test_classical_params_sliders_increase_error():
    hr = make_images(batch=2)
    clean = degrade_with(hr, classical_params())
    errors = [
        (degrade_with(hr, classical_params(blur_sigma=b, noise_sigma=n, jpeg_quality=q)) - clean).abs().mean()
        for b, n, q in [(0.5, 2.0, 95), (1.5, 8.0, 60), (3.0, 20.0, 20)]
    ]
    assert errors[0] < errors[1] < errors[2]


def test_degrade_with_default_generator_is_repeatable():
    hr = make_images(batch=1)
    params = classical_params(noise_sigma=10.0)
    assert torch.equal(degrade_with(hr, params), degrade_with(hr, params))


def test_jpeg_quality_orders_fidelity():
    image = make_images(batch=2, size=64)
    scores = [psnr(jpeg_compress(image, quality), image) for quality in (10, 30, 60, 95)]
    assert scores == sorted(scores) and scores[0] < scores[-1] - 5


@pytest.mark.parametrize("add", [lambda x, g, gray: add_gaussian_noise(x, 8.0, gray, g),
                                 lambda x, g, gray: add_poisson_noise(x, 1.0, gray, g)])
def test_gray_noise_is_equal_across_channels(add):
    image = torch.full((2, 3, 32, 32), 0.5)
    image[:, :, :, 16:] = 0.4  # two levels so Poisson noise has something to count
    gray_noise = add(image, seeded(0), True) - image
    colour_noise = add(image, seeded(0), False) - image
    assert gray_noise.abs().mean() > 1e-3
    torch.testing.assert_close(gray_noise[:, 0], gray_noise[:, 1])
    torch.testing.assert_close(gray_noise[:, 0], gray_noise[:, 2])
    assert not torch.allclose(colour_noise[:, 0], colour_noise[:, 1])


def test_bicubic_upsample_shape_and_constant():
    lr = torch.full((1, 3, 8, 12), -0.25)
    up = bicubic_upsample(lr, 4)
    assert up.shape == (1, 3, 32, 48)
    torch.testing.assert_close(up, torch.full_like(up, -0.25))
    smooth = F.interpolate(torch.rand(1, 3, 4, 4, generator=seeded(0)), size=64, mode="bilinear")
    assert psnr(bicubic_upsample(bicubic_downsample(smooth)), smooth) > 30


# ----------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "hr, match",
    [
        (torch.rand(3, 64, 64), "shape"),
        (torch.rand(1, 1, 64, 64), "shape"),
        (torch.rand(1, 3, 64, 64) * 2, r"\[0, 1\]"),
        (torch.rand(1, 3, 62, 64), "divisible"),
        ((torch.rand(1, 3, 64, 64) * 255).to(torch.uint8), "floating"),
    ],
)
@pytest.mark.parametrize("name", ["realesrgan", "bicubic"])
def test_bad_images_are_rejected(hr, match, name):
    with pytest.raises(ValueError, match=match):
        Degradation(name)(hr, seeded(0))


def test_bad_arguments_are_rejected():
    hr = make_images(batch=1)
    with pytest.raises(ValueError, match="name must be one of .*'realesrgan-light'.*got 'realesrgn'"):
        degradation_preset("realesrgn")
    with pytest.raises(ValueError, match="generator"):
        Degradation("realesrgan")(hr, 0)
    with pytest.raises(ValueError, match="scale"):
        bicubic_downsample(hr, scale=0)
    with pytest.raises(ValueError, match="kernel_prob"):
        BlurConfig(kernel_prob=(0.5, 0.5, 0.5, 0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="kernel_size"):
        BlurConfig(kernel_size=20)
    with pytest.raises(ValueError, match="pipeline"):
        DegradationConfig(pipeline="jpeg")
    with pytest.raises(ValueError, match="quality"):
        jpeg_compress(hr, 0.0)
    with pytest.raises(ValueError, match="kind"):
        blur_kernel("box", 7, 1.0)
