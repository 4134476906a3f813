"""Any image size through a network with size constraints: padding, tiling, uniform blending."""

import math

import pytest
import torch
import torch.nn.functional as F

from rsd_mini.upscale import (DEFAULT_OVERLAP, DEFAULT_TILE, lr_multiple, pad_to_multiple, resolve_tiling,
                              tile_boxes, tile_starts, upscale)


class Oracle:
    """An SRModel stand-in: interpolation as the 'network' (translation-equivariant), optional
    seeded noise; checks that its inputs fit the size constraint, like the Swin UNet."""

    scale, size_multiple = 4, 32

    def __init__(self, mode="bicubic", noise=0.0):
        self.mode, self.noise, self.inputs = mode, noise, []

    def sr(self, lq, generator=None, calls=None):
        assert lq.shape[-2] * 4 % 32 == 0 and lq.shape[-1] * 4 % 32 == 0, lq.shape
        self.inputs.append(tuple(lq.shape[-2:]))
        out = F.interpolate(lq, scale_factor=4, mode=self.mode)
        return out + self.noise * torch.randn(out.shape, generator=generator) if self.noise else out


def _smooth(height, width, batch=1):
    yy, xx = torch.meshgrid(torch.arange(float(height)), torch.arange(float(width)), indexing="ij")
    image = torch.stack([torch.sin(xx / 5) * torch.cos(yy / 7), torch.cos(xx / 3), torch.sin(yy / 4)])
    return 0.9 * image.expand(batch, 3, height, width)


def test_padding_reflects_and_replicates_where_the_side_is_too_short():
    lq = torch.rand(1, 3, 37, 51)
    padded = pad_to_multiple(lq, 8)
    assert padded.shape[-2:] == (40, 56) and torch.equal(padded[..., :37, :51], lq)
    torch.testing.assert_close(padded[..., 37, :51], lq[..., 35, :])  # reflection about the last row
    tiny = pad_to_multiple(torch.rand(1, 3, 3, 2), 8)  # pads 5 and 6 exceed the sides
    assert tiny.shape[-2:] == (8, 8) and torch.equal(tiny[..., 7, 7], tiny[..., 2, 1])
    assert lr_multiple(Oracle()) == 8


def test_tiles_follow_the_official_splitter():
    assert tile_starts(64, 64, 16) == [0] and tile_starts(100, 64, 16) == [0, 36]
    assert tile_starts(200, 64, 16) == [0, 48, 96, 136]  # the last tile moved back to the border
    assert tile_boxes(40, 100, 64, 16) == [(0, 0, 40, 64), (0, 36, 40, 64)]
    assert tile_boxes(500, 500, None) == [(0, 0, 500, 500)]
    for tile, overlap in ((0, 0), (16, 16), (16, -1)):
        with pytest.raises(ValueError, match="tile=|overlap="):
            tile_boxes(40, 40, tile, overlap)


def test_odd_sizes_come_back_at_exactly_scale_and_tiling_is_exact_for_a_pointwise_network():
    lq = _smooth(37, 51, batch=2)
    model = Oracle(mode="nearest")
    whole = upscale(model, lq, tile=None)
    assert whole.shape == (2, 3, 148, 204) and model.inputs == [(40, 56)]
    torch.testing.assert_close(whole, F.interpolate(lq, scale_factor=4, mode="nearest"))
    tiled = upscale(model, lq, tile=16, overlap=4)
    assert len(model.inputs) == 1 + 3 * 4  # starts [0, 12, 21] x [0, 12, 24, 35]
    torch.testing.assert_close(tiled, whole)  # averaging equal values changes nothing


def test_tiled_bicubic_equals_untiled_away_from_the_seams():
    lq = _smooth(40, 56)  # no padding, so both see the same image borders
    whole, tiled = upscale(Oracle(), lq, tile=None), upscale(Oracle(), lq, tile=24, overlap=8)
    seams = torch.zeros(whole.shape[-2:], dtype=torch.bool)
    margin = 3 * 4  # bicubic reaches 2 LR pixels; a tile border changes outputs that near it
    for top, left, height, width in tile_boxes(40, 56, 24, 8):
        rows, cols = slice(4 * top, 4 * (top + height)), slice(4 * left, 4 * (left + width))
        if top > 0:
            seams[4 * top:4 * top + margin, cols] = True
        if top + height < 40:
            seams[4 * (top + height) - margin:4 * (top + height), cols] = True
        if left > 0:
            seams[rows, 4 * left:4 * left + margin] = True
        if left + width < 56:
            seams[rows, 4 * (left + width) - margin:4 * (left + width)] = True
    assert 0.2 < (~seams).float().mean() < 0.9
    torch.testing.assert_close(tiled[..., ~seams], whole[..., ~seams], atol=1e-5, rtol=0)
    assert (tiled - whole).abs().mean() < 0.01  # the seams themselves differ only a little


def test_each_tile_has_its_own_deterministic_generator():
    lq = _smooth(40, 40)
    model = Oracle(noise=0.1)
    first = upscale(model, lq, torch.Generator().manual_seed(0), tile=16, overlap=4)
    assert torch.equal(first, upscale(model, lq, torch.Generator().manual_seed(0), tile=16, overlap=4))
    assert not torch.equal(first, upscale(model, lq, torch.Generator().manual_seed(1), tile=16, overlap=4))
    # Untiled, the generator goes straight to the model: upscale = model.sr for accepted sizes.
    torch.testing.assert_close(upscale(model, lq, torch.Generator().manual_seed(3), tile=None),
                               model.sr(lq, torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match="expected \\(B, 3, h, w\\)"):
        upscale(model, lq[0])


# --------------------------------------------------------------------- defaults per model family
class Tiled(Oracle):
    """An Oracle that carries its own tiling defaults, as SRModel and LatentSR do."""

    default_tile, default_overlap = 16, 4


def test_upscale_uses_the_model_tiling_unless_told():
    lq = _smooth(40, 40)
    model = Tiled(noise=0.1)
    auto = upscale(model, lq, torch.Generator().manual_seed(0))
    assert torch.equal(auto, upscale(model, lq, torch.Generator().manual_seed(0), tile=16, overlap=4))
    assert not torch.equal(auto, upscale(model, lq, torch.Generator().manual_seed(0), tile=None))
    plain = Oracle(noise=0.1)  # no defaults of its own: the pixel models' 64 / 16, one tile here
    assert torch.equal(upscale(plain, lq, torch.Generator().manual_seed(0)),
                       upscale(plain, lq, torch.Generator().manual_seed(0), tile=None))
    assert resolve_tiling(model) == (16, 4) and resolve_tiling(plain, tile=32) == (32, 16)
    with pytest.raises(ValueError, match="overlap=16: expected an integer in \\[0, tile=8\\)"):
        resolve_tiling(plain, tile=8)


def test_each_family_has_its_default_tiling():
    """Official latent models tile as the official sampler (512 / 64), tiny pixel ones 64 / 16."""
    from rsd_mini.diffusion import ResShift
    from rsd_mini.fullscale.autoencoder import VQAutoencoder, VQConfig
    from rsd_mini.fullscale.latent import LatentSR
    from rsd_mini.srmodel import SRModel
    from rsd_mini.unet import SwinUNet, UNetConfig

    network = SwinUNet(UNetConfig(image_size=16, in_channels=6, model_channels=32, channel_mult=(1, 2),
                                  num_res_blocks=(1, 1), attention_resolutions=(8,), swin_embed_dim=32,
                                  num_head_channels=32, window_size=4, mlp_ratio=1.0))
    process = ResShift.from_preset("resshift-v3")
    pixel = SRModel(network, process, "teacher", 4)
    latent = LatentSR(network, process, "teacher", autoencoder=VQAutoencoder(VQConfig(
        n_embed=16, ch=32, ch_mult=(1, 1, 2), num_res_blocks=1, resolution=32)))
    assert (pixel.default_tile, pixel.default_overlap) == (DEFAULT_TILE, DEFAULT_OVERLAP) == (64, 16)
    assert (latent.default_tile, latent.default_overlap) == (512, 64)
    assert resolve_tiling(latent) == (512, 64) and resolve_tiling(pixel) == (64, 16)


@pytest.mark.parametrize("lq, message", [
    (torch.full((1, 3, 8, 8), 200.0), r"values in \[200, 200\]: expected \[-1, 1\] \(it looks like \[0, 255\]"),
    (torch.full((1, 3, 8, 8), -1.5), r"values in \[-1.5, -1.5\]: expected \[-1, 1\] \(images in \[0, 1\] take"),
    (torch.full((1, 3, 8, 8), math.nan), r"NaN or infinite"),
    (torch.full((1, 3, 8, 8), math.inf), r"NaN or infinite"),
])
def test_sr_refuses_input_outside_minus_one_one(lq, message):
    from rsd_mini.diffusion import ResShift
    from rsd_mini.srmodel import SRModel

    model = SRModel(torch.nn.Identity(), ResShift.from_preset("resshift-v3"), "teacher", 4)
    with pytest.raises(ValueError, match=message):
        model.sr(lq)
