"""Latent-space ResShift / RSD / SinSR inference with a tiny VQ-f4 and a tiny Swin-UNet."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rsd_mini.fullscale.autoencoder import VQAutoencoder, VQConfig
from rsd_mini.data import save_image
from rsd_mini.diffusion import ResShift
from rsd_mini.distill import add_noise_channels
from rsd_mini.evaluate import evaluate_folder
from rsd_mini.fullscale.latent import LatentSR, encode_latents, encode_lr
from rsd_mini.unet import SwinUNet, UNetConfig
from rsd_mini.upscale import upscale

TINY_VQ = VQConfig(n_embed=16, ch=32, ch_mult=(1, 1, 2), num_res_blocks=1, resolution=32)
# Latent multiple 8 (window 4 × 2¹), so LR sides are multiples of 8 and HR sides of 32.
TINY_UNET = UNetConfig(image_size=16, in_channels=6, model_channels=32, channel_mult=(1, 2),
                       num_res_blocks=(1, 1), attention_resolutions=(8,), swin_embed_dim=32,
                       num_head_channels=32, window_size=4, mlp_ratio=1.0)


def _randomise(model, seed, std=0.05):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    autoencoder = _randomise(VQAutoencoder(TINY_VQ), 1).eval().requires_grad_(False)
    with torch.no_grad():  # a codebook spread over the latents' range, so decoding varies
        autoencoder.quantize.embedding.weight.normal_(0, 0.3)
    network = SwinUNet(TINY_UNET).eval().requires_grad_(False)
    return autoencoder, network, ResShift.from_preset("resshift-v3")


def _model(parts, kind="teacher", network=None, noise_channels=0):
    autoencoder, teacher, process = parts
    return LatentSR(network or teacher, process, kind, noise_channels=noise_channels, autoencoder=autoencoder)


def _lq(batch=2, height=8, width=8, seed=0):
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _seeded(seed=0):
    return torch.Generator().manual_seed(seed)


class Recorder:
    """Records every network call (scaled input, t, lq, noise) through a forward pre-hook."""

    def __init__(self, network):
        self.calls = []
        self.handle = network.register_forward_pre_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs):
        self.calls.append(dict(x=args[0].clone(), t=args[1].clone(), lq=kwargs.get("lq"), noise=kwargs.get("noise")))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def test_teacher_output_shape_range_and_determinism(parts):
    model = _model(parts)
    lq = _lq()
    out = model.sr(lq, _seeded(0))
    assert out.shape == (2, 3, 32, 32)
    assert out.min() >= -1 and out.max() <= 1 and torch.isfinite(out).all()
    assert torch.equal(out, model.sr(lq, _seeded(0)))
    assert not torch.equal(out, model.sr(lq, _seeded(1)))
    assert model.nfe == 4 and model.scale == 4


def test_teacher_starts_from_the_encoded_bicubic_prior_with_pixel_lq(parts):
    autoencoder, _, process = parts
    model, lq = _model(parts), _lq(1)
    with Recorder(model.network) as record:
        model.sr(lq, _seeded(5))
    # Independently: z_y = E(bicubic×4(y₀)), z_T = z_y + κ√η_T ε, input z_T / √(κ²η_T + 1).
    z_y = autoencoder.encode(F.interpolate(lq, scale_factor=4, mode="bicubic"))
    eps = torch.randn(z_y.shape, generator=_seeded(5))
    expected = (z_y + 2.0 * 0.99 * eps) / math.sqrt(4.0 * 0.99 ** 2 + 1)
    first = record.calls[0]
    assert torch.allclose(first["x"], expected, atol=1e-5)
    assert torch.equal(first["lq"], lq) and first["noise"] is None  # the pixel LR, not z_y
    assert [int(c["t"][0]) for c in record.calls] == [3, 2, 1, 0]


def test_teacher_calls_are_respected(parts):
    model = _model(parts)
    for calls, expected in ((None, 4), (2, 2), (1, 1)):
        with Recorder(model.network) as record:
            model.sr(_lq(1), _seeded(0), calls=calls)
        assert len(record.calls) == expected
        assert int(record.calls[0]["t"][0]) == 3  # always starts at t = T


def test_output_is_the_quantised_decoding_of_the_last_prediction(parts):
    autoencoder, network, _ = parts
    model, outputs = _model(parts, "one-step"), []
    handle = network.register_forward_hook(lambda module, args, out: outputs.append(out))
    try:
        sr = model.sr(_lq(1), _seeded(2))
    finally:
        handle.remove()
    assert len(outputs) == 1
    assert torch.equal(sr, autoencoder.decode(outputs[0], quantize=True).clamp(-1, 1))
    assert not torch.equal(sr, autoencoder.decode(outputs[0], quantize=False).clamp(-1, 1))


def test_student_gets_noise_channels_and_starts_as_the_one_step_teacher(parts):
    autoencoder, teacher, process = parts
    student = add_noise_channels(teacher, 1).eval()
    model = _model(parts, "student", network=student, noise_channels=1)
    lq = _lq()
    with Recorder(student) as record:
        out = model.sr(lq, _seeded(3))
    assert len(record.calls) == 1 and model.nfe == 1
    call = record.calls[0]
    assert call["noise"].shape == (2, 1, 8, 8) and int(call["t"][0]) == process.steps - 1
    # The noise weights start at zero, so the student equals SinSR-style one call of the teacher.
    assert torch.allclose(out, _model(parts, "one-step").sr(lq, _seeded(3)), atol=1e-5)
    with torch.no_grad():
        student.input_blocks[0][0].weight[:, -1].fill_(0.5)
    assert not torch.equal(model.sr(lq, _seeded(3)), model.sr(lq, _seeded(4)))
    with pytest.raises(ValueError, match="calls=3"):
        model.sr(lq, _seeded(0), calls=3)


def test_gradients_reach_the_student_through_decoder_and_quantiser(parts):
    autoencoder, teacher, process = parts
    student = add_noise_channels(teacher, 1).train().requires_grad_(True)
    lq = _lq(1)
    z_y = encode_lr(autoencoder, lq)
    x_in = process.scale_input(process.prior_sample(z_y), process.steps - 1)
    t = torch.full((1,), process.steps - 1)
    z0 = student(x_in, t, lq=lq, noise=torch.randn(1, 1, 8, 8))
    autoencoder.decode(z0).square().mean().backward()  # an image-space loss such as LPIPS
    grads = [p.grad for p in student.parameters() if p.grad is not None]
    assert grads and sum(g.abs().sum() for g in grads) > 0
    assert all(p.grad is None for p in autoencoder.parameters())


def test_encode_latents(parts):
    autoencoder = parts[0]
    lq, hr = _lq(2, 8, 12), torch.rand(2, 3, 32, 48) * 2 - 1
    z0, z_y = encode_latents(autoencoder, hr.requires_grad_(), lq)
    assert z0.shape == z_y.shape == (2, 3, 8, 12) and not z0.requires_grad
    assert torch.equal(z0, autoencoder.encode(hr.detach()))
    assert torch.equal(z_y, autoencoder.encode(F.interpolate(lq, scale_factor=4, mode="bicubic")))
    with pytest.raises(ValueError, match=r"hr has shape \(2, 3, 32, 32\)"):
        encode_latents(autoencoder, torch.zeros(2, 3, 32, 32), lq)
    with pytest.raises(ValueError, match="lq has shape"):
        encode_latents(autoencoder, hr, lq[0])


def test_size_multiple_of_the_official_configuration(parts):
    autoencoder, _, process = parts
    stand_in = nn.Module()
    stand_in.config = UNetConfig()  # the v1 teacher: latent multiple 64
    model = LatentSR(stand_in, process, "teacher", autoencoder=autoencoder)
    assert model.size_multiple == 256  # HR pixels: LR sides multiples of 64, as the official pads
    assert _model(parts).size_multiple == 32


def test_invalid_models_and_inputs(parts):
    autoencoder, network, process = parts
    with pytest.raises(ValueError, match="kind='ddim'"):
        LatentSR(network, process, "ddim", autoencoder=autoencoder)
    with pytest.raises(ValueError, match="noise_channels=0 with kind='student'"):
        LatentSR(network, process, "student", autoencoder=autoencoder)
    with pytest.raises(ValueError, match="noise_channels=1 with kind='teacher'"):
        LatentSR(network, process, "teacher", noise_channels=1, autoencoder=autoencoder)
    with pytest.raises(ValueError, match="scale=2"):
        LatentSR(network, process, "teacher", scale=2, autoencoder=autoencoder)
    with pytest.raises(ValueError, match="in_channels=6"):
        LatentSR(network, process, "student", noise_channels=1, autoencoder=autoencoder)
    with pytest.raises(TypeError, match="expected a VQAutoencoder"):
        LatentSR(network, process, "teacher", autoencoder=network)
    model = _model(parts)
    with pytest.raises(ValueError, match="multiples of 8"):
        model.sr(_lq(1, 8, 12))
    with pytest.raises(ValueError, match=r"expected \(B, 3, h, w\)"):
        model.sr(torch.zeros(1, 1, 8, 8))


def test_upscale_pads_and_tiles_a_latent_model(parts):
    model = _model(parts, "one-step")
    lq = _lq(1, 8, 16)
    assert torch.equal(upscale(model, lq, _seeded(0)), model.sr(lq, _seeded(0)))
    odd = upscale(model, _lq(1, 10, 13), _seeded(0))  # padded to 16 × 16
    assert odd.shape == (1, 3, 40, 52)
    tiled = upscale(model, _lq(1, 20, 24), _seeded(0), tile=16, overlap=4)
    assert tiled.shape == (1, 3, 80, 96) and tiled.abs().max() <= 1


def test_evaluate_folder_accepts_a_latent_model(parts, tmp_path):
    for index, (height, width) in enumerate(((8, 8), (12, 8))):
        lq = _lq(1, height, width, seed=index)[0]
        hr = F.interpolate(lq[None], scale_factor=4, mode="bicubic")[0].clamp(-1, 1)
        save_image(lq, tmp_path / "lq" / f"img{index}.png", value_range=(-1.0, 1.0))
        save_image(hr, tmp_path / "gt" / f"img{index}.png", value_range=(-1.0, 1.0))
    result = evaluate_folder(_model(parts), tmp_path / "lq", tmp_path / "gt", steps=2, seed=0,
                             save=tmp_path / "out")
    assert result["num_images"] == 2 and result["method"] == "teacher" and result["nfe"] == 2
    assert all(math.isfinite(v) for v in result["psnr"] + result["ssim"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img0.png", "img1.png"]
