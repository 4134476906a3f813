"""Metrics beyond PSNR/SSIM: high-frequency share, LR fidelity, pyiqa access (rsd_mini.metrics)."""

import sys
import types

import pytest
import torch
import torch.nn.functional as F

from rsd_mini.degradations import bicubic_downsample, bicubic_upsample
from rsd_mini.metrics import (PERCEPTUAL, PERCEPTUAL_FULL_REFERENCE, high_frequency_ratio, lr_fidelity,
                              perceptual_metric)


def _detailed(seed=0, size=64):
    """Smooth shapes plus fine texture, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = F.interpolate(torch.rand(2, 3, size // 8, size // 8, generator=g), size=(size, size), mode="bicubic")
    return (0.7 * coarse + 0.3 * torch.rand(2, 3, size, size, generator=g)).clamp(0, 1)


def test_bicubic_upsampling_lowers_the_high_frequency_share():
    hr = _detailed()
    blurry = bicubic_upsample(bicubic_downsample(hr, scale=4), scale=4).clamp(0, 1)
    assert (high_frequency_ratio(blurry) < 0.5 * high_frequency_ratio(hr)).all()
    # A higher cut leaves less energy above it; a flat image has none.
    assert (high_frequency_ratio(hr, cutoff=0.8) < high_frequency_ratio(hr, cutoff=0.3)).all()
    assert torch.equal(high_frequency_ratio(torch.full((1, 3, 8, 8), 0.5)), torch.zeros(1, dtype=torch.float64))
    with pytest.raises(ValueError, match="cutoff=0"):
        high_frequency_ratio(hr, cutoff=0)


def test_lr_fidelity_uses_the_given_degradation():
    hr = _detailed(1)
    area = lambda image: F.avg_pool2d(image, 4)  # noqa: E731
    lq = area(hr)
    assert (lr_fidelity(hr, lq, 4, degrade=area) > 60).all()  # exact up to float error
    assert (lr_fidelity(hr, lq, 4) < lr_fidelity(hr, lq, 4, degrade=area)).all()


def test_perceptual_metric_passes_through_pyiqa_and_explains_a_failed_download(monkeypatch):
    created = []
    fake = types.SimpleNamespace(create_metric=lambda name, device: created.append((name, device)) or "metric")
    monkeypatch.setitem(sys.modules, "pyiqa", fake)
    assert perceptual_metric("musiq") == "metric" and created == [("musiq", torch.device("cpu"))]

    def offline(name, device):
        raise OSError("could not download weights")

    monkeypatch.setitem(sys.modules, "pyiqa", types.SimpleNamespace(create_metric=offline))
    with pytest.raises(RuntimeError, match="network access"):
        perceptual_metric("lpips")
    assert set(PERCEPTUAL_FULL_REFERENCE) < set(PERCEPTUAL)
