"""Teacher/student comparison widgets and their static fallback."""

import datetime
import io

import numpy as np
import pytest
import torch
from PIL import Image

from rsd_mini import widgets
from rsd_mini.diffusion import ResShift
from rsd_mini.srmodel import SRModel
from rsd_mini.unet import SwinUNet, unet_preset
from rsd_mini.upscale import upscale


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


def test_comparison_takes_more_models_by_name():
    lq = torch.rand(1, 3, 8, 8) * 2 - 1
    result = widgets.run_comparison(lq, None, _model("teacher"), _model("student"), seed=2, teacher_calls=1,
                                    others={"SinSR": _model("student")})
    assert list(result.images) == ["bicubic", "teacher", "student", "SinSR"]
    assert result.calls["SinSR"] == 1 and "SinSR (1 call)" in result.timings()
    # the same weights and the same seed as the student: the same image (one seed for all models)
    assert torch.equal(result.images["SinSR"], result.images["student"])
    box = widgets.comparison_widget(lq, None, None, _model("student"), others={"SinSR": _model("student")})
    dropdowns = [part for part in _parts(box) if getattr(part, "description", "") in ("left", "right")]
    assert all("SinSR" in d.options for d in dropdowns)


def _parts(box):
    """Every widget inside ``box``, depth first."""
    for child in getattr(box, "children", ()):
        yield child
        yield from _parts(child)


def _part(box, css_class):
    return next(part for part in _parts(box) if css_class in part._dom_classes)


def test_widget_reacts_to_seed_and_steps():
    lq = torch.rand(1, 3, 8, 8) * 2 - 1
    box = widgets.comparison_widget(lq, None, _model("teacher"), _model("student"))
    full, timings = _part(box, "rsd-full"), _part(box, "rsd-timings")
    first = full.value
    assert "teacher (" in timings.value and "seed 0" in timings.value
    _part(box, "rsd-new-seed").click()
    assert full.value != first  # a new seed redraws the stochastic outputs
    assert "seed 1" in timings.value
    _part(box, "rsd-steps").value = 1
    assert "teacher (1 call)" in timings.value
    assert not any("rsd-upload" in part._dom_classes for part in _parts(box))  # upload=False: none


def _png_bytes(height, width):
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="png")
    return buffer.getvalue()


def test_prepare_upload_photo_and_lr_roles():
    image = widgets.read_upload(_png_bytes(50, 70), "photo.PNG")
    assert image.shape == (1, 3, 50, 70) and 0 <= image.min() and image.max() <= 1
    lq, hr, note = widgets.prepare_upload(image, "photo", scale=4, max_side=128)
    assert hr.shape == (1, 3, 48, 68) and lq.shape == (1, 3, 12, 17)  # cropped to ×4, shrunk ×4
    assert -1 <= lq.min() and lq.max() <= 1 and "LR input 17×12" in note and "capped" not in note
    lq, hr, note = widgets.prepare_upload(image, "photo", scale=4, max_side=8)
    assert max(lq.shape[-2:]) == 8 and "capped at 8" in note
    lq, hr, note = widgets.prepare_upload(image, "lr", scale=4, max_side=128)
    assert hr is None and lq.shape == (1, 3, 50, 70)
    with pytest.raises(ValueError, match="role='hr'"):
        widgets.prepare_upload(image, "hr")
    with pytest.raises(ValueError, match="max_side=0"):
        widgets.prepare_upload(image, "lr", max_side=0)
    with pytest.raises(ValueError, match="both sides ≥ scale=4"):
        widgets.prepare_upload(image[..., :3, :], "photo")


def _upload(name, content):
    """One file as the browser sends it to FileUpload.value."""
    return {"name": name, "type": "image/png", "size": len(content), "content": memoryview(content),
            "last_modified": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)}


def test_upload_replaces_the_image_and_reruns_every_method():
    teacher, student = _model("teacher"), _model("student")
    box = widgets.comparison_widget(torch.rand(1, 3, 8, 8) * 2 - 1, None, teacher, student, upload=True,
                                    max_side=24)
    uploader, full, status = _part(box, "rsd-upload"), _part(box, "rsd-full"), _part(box, "rsd-status")
    before = full.value
    uploader.value = (_upload("mine.png", _png_bytes(100, 60)),)
    assert "mine.png: 60×100 → LR input 14×24" in status.value and full.value != before
    left = next(p for p in _parts(box) if getattr(p, "description", "") == "left")
    assert "ground truth" in left.options
    role = next(p for p in _parts(box) if getattr(p, "description", "") == "it is the")
    role.value = "lr"  # the same file as the LR input: no ground truth, LR side capped at 24
    assert "LR input 14×24" in status.value and "ground truth" not in left.options
    uploader.value = (_upload("broken.png", b"not an image"),)
    assert status.value.startswith("⚠ broken.png")


def test_comparison_pads_and_tiles_any_size_through_upscale():
    lq = torch.rand(1, 3, 21, 150) * 2 - 1  # odd height (padded), wider than a default tile (tiled)
    teacher = _model("teacher")
    result = widgets.run_comparison(lq, None, teacher, None, seed=3, teacher_calls=2)
    assert result.images["teacher"].shape == (1, 3, 84, 600)
    assert torch.equal(result.images["teacher"], upscale(teacher, lq, torch.Generator().manual_seed(3), calls=2))
    assert result.calls == {"bicubic": 0, "teacher": 2}
