"""PSNR/SSIM as the paper computes them (MATLAB Y channel, per image)."""

import math

import pytest
import torch

from rsd_mini.metrics import psnr, rgb_to_y, ssim, to_unit_range


def _pair(seed=0, noise=0.05):
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(2, 3, 32, 32, generator=g)
    return (clean + noise * torch.randn(clean.shape, generator=g)).clamp(0, 1), clean


def test_y_channel_is_matlab_bt601():
    white, black = torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1)
    assert rgb_to_y(white).item() == pytest.approx(235 / 255, abs=1e-4)
    assert rgb_to_y(black).item() == pytest.approx(16 / 255)


def test_psnr_matches_its_definition_and_orders_noise_levels():
    noisy, clean = _pair()
    mse = (noisy - clean).pow(2).flatten(1).mean(1).double()
    torch.testing.assert_close(psnr(noisy, clean, y_channel=False), 10 * torch.log10(1 / mse))
    assert (psnr(*_pair(noise=0.02)) > psnr(*_pair(noise=0.1))).all()
    # Y in studio swing compresses differences by 219/255 relative to a full-swing gray.
    gray_noisy, gray_clean = noisy.mean(1, keepdim=True).expand(-1, 3, -1, -1), clean.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    gap = psnr(gray_noisy, gray_clean) - psnr(gray_noisy, gray_clean, y_channel=False)
    torch.testing.assert_close(gap, torch.full((2,), -20 * math.log10(219 / 255), dtype=torch.float64), atol=1e-3, rtol=0)


def test_ssim_is_one_for_identical_images_and_lower_with_noise():
    noisy, clean = _pair()
    torch.testing.assert_close(ssim(clean, clean), torch.ones(2, dtype=torch.float64))
    assert (ssim(noisy, clean) < 0.99).all()
    assert (ssim(*_pair(noise=0.02)) > ssim(*_pair(noise=0.1))).all()


def test_border_crop_and_errors():
    noisy, clean = _pair()
    noisy[..., :2, :] = 1 - clean[..., :2, :]  # damage only the border
    assert (psnr(noisy, clean, crop_border=2) > psnr(noisy, clean)).all()
    with pytest.raises(ValueError, match="expected \\[0, 1\\]"):
        psnr(clean * 2 - 1, clean)
    with pytest.raises(ValueError, match="equal shapes"):
        ssim(clean[:, :, :16], clean)
    with pytest.raises(ValueError, match="pred has shape"):
        psnr(clean[:, :1], clean[:, :1])
    torch.testing.assert_close(to_unit_range(torch.tensor([-1.0, 0.0, 1.0, 2.0])), torch.tensor([0.0, 0.5, 1.0, 1.0]))


def test_high_frequency_ratio_separates_blurry_from_detailed():
    from rsd_mini.data import mini_dataset
    from rsd_mini.degradations import bicubic_upsample
    from rsd_mini.metrics import high_frequency_ratio, to_unit_range

    item = mini_dataset("val", num_crops=4, degradation="bicubic")
    hr = torch.stack([item[i]["hr"] for i in range(4)])
    lq = torch.stack([item[i]["lq"] for i in range(4)])
    sharp = high_frequency_ratio(to_unit_range(hr))
    blurry = high_frequency_ratio(to_unit_range(bicubic_upsample(lq, scale=4)))
    assert (blurry < sharp).all() and ((0 <= blurry) & (sharp <= 1)).all()


def test_lr_fidelity_is_high_for_the_ground_truth_and_checks_sizes():
    from rsd_mini.degradations import bicubic_downsample
    from rsd_mini.metrics import lr_fidelity

    hr = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    lq = bicubic_downsample(hr, scale=4).clamp(0, 1)
    assert (lr_fidelity(hr, lq, 4) > 40).all()
    assert (lr_fidelity(torch.rand(2, 3, 32, 32), lq, 4) < 25).all()
    with pytest.raises(ValueError, match="expected lq size"):
        lr_fidelity(hr[..., :28, :28], lq, 4)


def test_diversity_and_perceptual_metric_errors(monkeypatch):
    import sys

    from rsd_mini.metrics import diversity, perceptual_metric

    same = torch.zeros(3, 2, 3, 4, 4)
    assert torch.equal(diversity(same), torch.zeros(2))
    assert (diversity(torch.randn(3, 2, 3, 4, 4)) > 0).all()
    with pytest.raises(ValueError, match="S ≥ 2"):
        diversity(torch.zeros(1, 2, 3, 4, 4))
    monkeypatch.setitem(sys.modules, "pyiqa", None)
    with pytest.raises(RuntimeError, match="pip install pyiqa"):
        perceptual_metric("lpips")
    with pytest.raises(ValueError, match="name='psnr'"):
        perceptual_metric("psnr")


# --------------------------------------------------------------------- distance to the teacher
def _seed_set(seed, seeds=8, inputs=4, size=32):
    """S draws of a synthetic conditional distribution: fixed smooth inputs (one per b) plus a
    seed-dependent fine texture, the way an SR model's samples vary around the input."""
    import kornia

    g = torch.Generator().manual_seed(1234)  # the inputs are the same for every set
    base = 2 * kornia.filters.gaussian_blur2d(torch.randn(inputs, 3, size, size, generator=g), (9, 9), (2.0, 2.0))
    noise = torch.randn(seeds * inputs, 3, size, size, generator=torch.Generator().manual_seed(seed))
    texture = kornia.filters.gaussian_blur2d(noise, (3, 3), (0.7, 0.7)).view(seeds, inputs, 3, size, size)
    return (base + 0.5 * texture).clamp(-1, 1)


def _blur(x):
    import kornia

    return kornia.filters.gaussian_blur2d(x.flatten(0, 1), (5, 5), (1.0, 1.0)).view_as(x)


def _distance(candidate):
    from rsd_mini.metrics import conditional_distance

    return conditional_distance(candidate, _seed_set(1), _seed_set(2), torch.Generator().manual_seed(0))


def test_conditional_distance_of_a_second_draw_is_at_the_floor():
    d = _distance(_seed_set(3))
    assert 0.9 < d["patch_ratio"] < 1.1 and d["patch_floor"] > 0
    assert d["spread_distance"] < 1.5 * d["spread_floor"] and d["mean_distance"] < 1.1 * d["mean_floor"]
    assert 0.95 < d["diversity_ratio"] < 1.05 and 0.95 < d["floor_diversity_ratio"] < 1.05


@pytest.mark.parametrize("case", ["blurred", "shifted", "sharpened", "collapsed"])
def test_conditional_distance_separates_wrong_distributions(case):
    same = _seed_set(3)
    candidate = {"blurred": _blur(same), "shifted": same.roll(1, -1),
                 "sharpened": (2 * same - _blur(same)).clamp(-1, 1),  # unsharp mask, amount 1
                 "collapsed": same[:1].expand_as(same)}[case]
    d = _distance(candidate)
    assert d["patch_ratio"] > 1.15, d
    if case in ("blurred", "sharpened", "collapsed"):  # the seeds' spread is wrong
        assert d["spread_distance"] > 3 * d["spread_floor"], d
        assert abs(d["diversity_ratio"] - 1) > 0.3, d
    if case in ("shifted", "sharpened", "collapsed"):  # the conditional mean is wrong
        assert d["patch_ratio"] > 1.4 and d["mean_distance"] > 1.3 * d["mean_floor"], d


def test_patch_distance_of_a_constant_offset_is_its_projection():
    """A set moved by a constant c has the same spread, so SW₂² = c² mean_u ⟨u, 1⟩² exactly."""
    from rsd_mini.metrics import patch_directions, patch_sliced_wasserstein

    reference = _seed_set(1, seeds=3, inputs=2, size=8).double()
    directions = patch_directions(2, 16, torch.Generator().manual_seed(0))
    expected = (0.1 * directions.sum(0)).pow(2).mean().sqrt()
    distance = patch_sliced_wasserstein(reference + 0.1, reference, directions)
    torch.testing.assert_close(distance, expected.expand(2), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(patch_sliced_wasserstein(reference, reference, directions),
                               torch.zeros(2, dtype=torch.float64))


def test_conditional_distance_errors():
    from rsd_mini.metrics import conditional_distance, patch_directions

    ok = torch.zeros(2, 1, 3, 8, 8)
    with pytest.raises(ValueError, match="samples has shape"):
        conditional_distance(ok[:1], ok, ok, torch.Generator())
    with pytest.raises(ValueError, match="expected one shape"):
        conditional_distance(ok, ok[..., :4, :4], ok[..., :4, :4], torch.Generator())
    with pytest.raises(ValueError, match="patch=3: expected a divisor"):
        conditional_distance(ok, ok, ok, torch.Generator(), patch=3)
    with pytest.raises(ValueError, match="projections=0"):
        patch_directions(4, 0, torch.Generator())


def test_data_patch_distance_is_zero_for_the_data_and_grows_with_blur_and_offset():
    """The unconditional distance to the ground truth: the images themselves (in any order of
    the inputs) at 0; a blurred copy and a shifted-intensity copy clearly above another seed of
    the same synthetic distribution."""
    from rsd_mini.metrics import data_patch_distance, patch_directions

    directions = patch_directions(4, 64, torch.Generator().manual_seed(0))
    truth = _seed_set(1)[0]
    copies = torch.stack([truth, truth.flip(0)])  # a second "seed": the inputs shuffled
    torch.testing.assert_close(data_patch_distance(copies, truth, directions), torch.zeros(2, dtype=torch.float64))
    other = data_patch_distance(_seed_set(3), truth, directions).mean()
    blurred = data_patch_distance(_blur(_seed_set(3)), truth, directions).mean()
    offset = data_patch_distance(_seed_set(3) + 0.2, truth, directions).mean()
    assert other > 0 and blurred > 2 * other and offset > 2 * other, (other, blurred, offset)
    with pytest.raises(ValueError, match=r"samples \(8, 4, 3, 32, 32\), images \(4, 3, 16, 16\)"):
        data_patch_distance(_seed_set(3), truth[..., :16, :16], directions)
