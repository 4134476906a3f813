"""Teacher/student comparison widgets and their static fallback."""

import pytest
import torch

from rsd_mini import widgets
from rsd_mini.diffusion import ResShift
from rsd_mini.hub import SRModel
from rsd_mini.unet import SwinUNet, unet_preset


def _model(kind):
    config = unet_preset("tiny", image_size=32, channel_mult=(1, 2), num_res_blocks=(1, 1),
                         attention_resolutions=(8,), in_channels=6 + (kind == "student"))
    torch.manual_seed(0)
    network = SwinUNet(config).eval()
    for p in network.parameters():  # move off the zero-initialised output (lq_residual)
        p.data.add_(0.05 * torch.randn_like(p))
    return SRModel(network, ResShift.from_preset("resshift-v1"), kind, 4,
                   noise_channels=int(kind == "student"))


def test_swipe_and_zoom():
    a, b = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    mixed = widgets.swipe(a, b, 0.25)
    assert mixed[..., :2].eq(0).all() and mixed[..., 2:].eq(1).all()
    with pytest.raises(ValueError, match="position=1.5"):
        widgets.swipe(a, b, 1.5)
    assert widgets.zoom(torch.zeros(1, 3, 40, 40), (0.0, 1.0), 0.25).shape[-2:] == (10, 10)


def test_comparison_runs_every_method_and_times_it():
    lq, hr = torch.rand(1, 3, 8, 8) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    result = widgets.run_comparison(lq, hr, _model("teacher"), _model("student"), seed=1, teacher_calls=2)
    assert list(result.images) == ["bicubic", "teacher", "student", "ground truth"]
    assert all(v.shape == (1, 3, 32, 32) for v in result.images.values())
    assert set(result.seconds) == {"bicubic", "teacher", "student"}
    again = widgets.run_comparison(lq, hr, _model("teacher"), _model("student"), seed=1, teacher_calls=2)
    assert torch.equal(result.images["student"], again.images["student"])
    fig = widgets.comparison_figure(result)
    assert len(fig.axes) == 8


def test_widget_reacts_to_seed_and_steps():
    lq = torch.rand(1, 3, 8, 8) * 2 - 1
    box = widgets.comparison_widget(lq, None, _model("teacher"), _model("student"))
    images, controls = box.children
    full = images.children[0]
    first = full.value
    seed = next(c for c in controls.children if getattr(c, "description", "") == "new seed")
    seed.click()
    assert full.value != first  # a new seed redraws the stochastic outputs
    steps = next(c for c in controls.children if getattr(c, "description", "") == "teacher steps")
    steps.value = 1
    assert "seed 1" in controls.children[-1].value
