"""The VQ-f4 autoencoder: the official layout, the operations RSD uses, strict loading."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from rsd_mini.fullscale import autoencoder as vq
from rsd_mini.fullscale.autoencoder import AttnBlock, Downsample, Upsample, VQAutoencoder, VQConfig
from rsd_mini.fullscale.official import CheckpointMismatchError, load_autoencoder

LAYOUT = json.loads((Path(__file__).resolve().parents[1] / "data" / "reference"
                     / "vq_f4_layout.json").read_text())
#: Small but structurally complete: still f4 (three levels), attention at two resolutions.
TINY = VQConfig(n_embed=16, ch=32, ch_mult=(1, 1, 2), num_res_blocks=1, resolution=32,
                attn_resolutions=(16,))


@pytest.fixture(scope="module")
def full_model():
    return VQAutoencoder()


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return VQAutoencoder(TINY).eval()


def _randomise(model, seed=0, std=0.05):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


# --------------------------------------------------------------------- official layout
def test_state_dict_matches_official_layout_exactly(full_model):
    ours = {k: list(v.shape) for k, v in full_model.state_dict().items()}
    assert len(ours) == len(LAYOUT["state_dict"]) == 205
    assert list(ours) == list(LAYOUT["state_dict"])  # same keys, same order
    assert ours == LAYOUT["state_dict"]
    assert sum(p.numel() for p in full_model.parameters()) == LAYOUT["num_parameters"] == 55_322_782


def test_official_params_give_the_default_config():
    assert VQConfig.from_official(LAYOUT["config"]) == VQConfig()
    assert VQConfig().downsample_factor == 4
    ddconfig = dict(LAYOUT["config"]["ddconfig"], num_res_blocks=[2, 2, 2])
    assert VQConfig.from_official(dict(LAYOUT["config"], ddconfig=ddconfig)) == VQConfig()


@pytest.mark.parametrize("change, match", [
    (dict(double_z=True), "double_z"),
    (dict(padding_mode="reflect"), "padding_mode"),
    (dict(resamp_with_conv=False), "resamp_with_conv"),
    (dict(ch=48), "multiple of 32"),
    (dict(ch_mult=[1, 2]), None),  # valid: an f2 model
    (dict(num_res_blocks=[2, 2]), "num_res_blocks"),
    (dict(foo=1), "unknown keys"),
])
def test_from_official_rejects_unsupported_ddconfig(change, match):
    params = dict(LAYOUT["config"], ddconfig=dict(LAYOUT["config"]["ddconfig"], **change))
    if match is None:
        assert VQConfig.from_official(params).downsample_factor == 2
        return
    with pytest.raises(ValueError, match=match):
        VQConfig.from_official(params)


def test_from_official_rejects_bad_top_level():
    with pytest.raises(ValueError, match="remap"):
        VQConfig.from_official(dict(LAYOUT["config"], remap="used.npy"))
    with pytest.raises(ValueError, match="unknown keys"):
        VQConfig.from_official(dict(LAYOUT["config"], lossconfig={}))
    with pytest.raises(ValueError, match="ddconfig"):
        VQConfig.from_official({"embed_dim": 3, "n_embed": 8192})
    with pytest.raises(ValueError, match="n_embed"):
        VQConfig(n_embed=0)


def test_norms_and_resampling_follow_the_official_code(tiny):
    norms = [m for m in tiny.modules() if isinstance(m, nn.GroupNorm)]
    assert norms and all(m.num_groups == 32 and m.eps == 1e-6 for m in norms)
    x = torch.randn(1, 32, 6, 6)
    down = Downsample(32)
    with torch.no_grad():  # a conv that copies one tap: reveals where the padding went
        down.conv.weight.zero_(), down.conv.bias.zero_()
        down.conv.weight[:, :, 0, 0] = torch.eye(32)
        assert torch.equal(down(x), x[..., ::2, ::2])  # no padding at the top/left
        down.conv.weight.zero_()
        down.conv.weight[:, :, 2, 2] = torch.eye(32)
        out = down(x)
        assert torch.equal(out[..., :2, :2], x[..., 2::2, 2::2])
        assert torch.equal(out[..., 2, :], torch.zeros_like(out[..., 2, :]))  # bottom/right: zeros
        up = Upsample(32)
        up.conv.weight.zero_(), up.conv.bias.zero_()
        up.conv.weight[:, :, 1, 1] = torch.eye(32)
        assert torch.equal(up(x), x.repeat_interleave(2, -1).repeat_interleave(2, -2))


def test_attention_is_single_head_softmax_over_positions():
    torch.manual_seed(0)
    block = AttnBlock(32)
    x = torch.randn(2, 32, 3, 5)
    with torch.no_grad():
        h = block.norm(x)
        q, k, v = (conv(h).flatten(2) for conv in (block.q, block.k, block.v))  # (B, C, HW)
        weights = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / 32 ** 0.5, dim=-1)
        expected = x + block.proj_out(torch.einsum("bij,bcj->bci", weights, v).reshape(x.shape))
        assert torch.allclose(block(x), expected, atol=1e-5)


# --------------------------------------------------------------------- operations
def test_encode_decode_shapes_and_errors(tiny):
    x = torch.rand(2, 3, 32, 24) * 2 - 1
    z = tiny.encode(x)
    assert z.shape == (2, 3, 8, 6)
    assert tiny.decode(z).shape == (2, 3, 32, 24)
    assert tiny(x).shape == x.shape
    with pytest.raises(ValueError, match="multiples of the downsampling factor 4"):
        tiny.encode(torch.zeros(1, 3, 30, 32))
    with pytest.raises(ValueError, match=r"in_channels=3"):
        tiny.encode(torch.zeros(1, 4, 32, 32))
    with pytest.raises(ValueError, match=r"expected \(B, in_channels=3, H, W\)"):
        tiny.encode(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="embed_dim=3"):
        tiny.decode(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match="floating-point"):
        tiny.decode(torch.zeros(1, 3, 8, 8, dtype=torch.long))


def test_quantize_picks_the_nearest_codebook_vector(tiny, monkeypatch):
    z = torch.randn(2, 3, 5, 7, generator=torch.Generator().manual_seed(1)) * 0.05
    codebook = tiny.quantize.embedding.weight
    quantized, index = tiny.quantize(z, return_indices=True)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 3)
    expected = torch.cdist(flat, codebook).argmin(1)
    assert torch.equal(index.flatten(), expected)
    assert torch.allclose(quantized.permute(0, 2, 3, 1).reshape(-1, 3), codebook[expected], atol=1e-6)
    monkeypatch.setattr(vq, "_QUANTIZE_CHUNK", 3)  # chunked distances give the same answer
    assert torch.equal(tiny.quantize(z, return_indices=True)[1], index)


def test_quantize_and_decode_pass_gradients_straight_through(tiny):
    tiny.requires_grad_(False)  # frozen, as in RSD: only the input gets a gradient
    z = (torch.randn(1, 3, 4, 4) * 0.05).requires_grad_()
    tiny.quantize(z).mul(torch.arange(48.).reshape(1, 3, 4, 4)).sum().backward()
    assert torch.equal(z.grad, torch.arange(48.).reshape(1, 3, 4, 4))  # identity backward
    _randomise(tiny)
    z.grad = None
    image = tiny.decode(z, quantize=True)
    image.square().mean().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0 and torch.isfinite(z.grad).all()
    assert all(p.grad is None for p in tiny.parameters())


def test_decode_quantizes_by_default(tiny):
    _randomise(tiny)
    z = torch.randn(1, 3, 4, 4) * 0.5
    with torch.no_grad():
        snapped = tiny.quantize(z)
        assert torch.equal(tiny.decode(z), tiny.decode(snapped, quantize=False))
        assert not torch.allclose(tiny.decode(z), tiny.decode(z, quantize=False))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_keeps_the_callers_dtype(tiny, dtype):
    model = load_autoencoder(tiny.state_dict(), TINY, dtype=dtype)
    assert all(p.dtype == dtype for p in model.parameters())
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    try:
        z = model.encode(x)
        out = model.decode(z)
    except RuntimeError as error:  # some CPU builds lack half kernels
        pytest.skip(f"{dtype} convolution not available on this CPU: {error}")
    assert z.dtype == out.dtype == torch.float32  # official first-stage wrappers cast back
    with torch.no_grad():
        reference = tiny.encode(x)
    assert torch.allclose(z, reference, atol=0.05, rtol=0.05)


# --------------------------------------------------------------------- loading
def test_load_autoencoder_round_trip(tmp_path, tiny):
    _randomise(tiny, seed=3)
    path = tmp_path / "vq.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in tiny.state_dict().items()}}, path)
    official_params = {"embed_dim": 3, "n_embed": 16, "ddconfig": dict(
        double_z=False, z_channels=3, resolution=32, in_channels=3, out_ch=3, ch=32, ch_mult=[1, 1, 2],
        num_res_blocks=1, attn_resolutions=[16], dropout=0.0, padding_mode="zeros")}
    for params in (TINY, official_params):
        model = load_autoencoder(path, params)
        assert not model.training and not any(p.requires_grad for p in model.parameters())
        for key, value in tiny.state_dict().items():
            assert torch.equal(model.state_dict()[key], value), key


def test_load_autoencoder_full_layout_by_default():
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(shape, generator=g) for k, shape in LAYOUT["state_dict"].items()}
    model = load_autoencoder(state)
    assert model.config == VQConfig()
    assert torch.equal(model.quantize.embedding.weight, state["quantize.embedding.weight"])


def test_load_autoencoder_errors(tmp_path, tiny):
    state = tiny.state_dict()
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_autoencoder(tmp_path / "missing.pth", TINY)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        load_autoencoder(corrupt, TINY)
    missing = {k: v for k, v in state.items() if k != "quant_conv.bias"}
    with pytest.raises(CheckpointMismatchError, match="quant_conv.bias") as error:
        load_autoencoder(missing, TINY)
    assert error.value.missing == ["quant_conv.bias"]
    mis_shaped = dict(state, **{"quantize.embedding.weight": torch.zeros(8192, 3)})
    with pytest.raises(CheckpointMismatchError, match="mis-shaped") as error:
        load_autoencoder(mis_shaped, TINY)
    assert error.value.mis_shaped == [("quantize.embedding.weight", (8192, 3), (16, 3))]
    with pytest.raises(ValueError, match="dtype=torch.int8"):
        load_autoencoder(state, TINY, dtype=torch.int8)
