"""The Swin-UNet teacher: layout, shapes, conditioning and the official window mask."""

import dataclasses

import pytest
import torch

from rsd_mini.unet import (SwinBlock, SwinUNet, UNetConfig, Upsample, _shifted_window_mask,
                           count_parameters, timestep_embedding, unet_preset)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return SwinUNet(unet_preset("tiny")).eval()


def _inputs(batch=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 3, size, size, generator=g), torch.randint(0, 15, (batch,), generator=g),
            torch.randn(batch, 3, size, size, generator=g))


def test_tiny_is_a_laptop_model_and_keeps_the_shape(tiny):
    assert 1_000_000 <= count_parameters(tiny) <= 4_000_000
    x, t, lq = _inputs()
    assert tiny(x, t, lq=lq).shape == x.shape


def test_larger_inputs_than_image_size_work(tiny):
    x, t, lq = _inputs(batch=1, size=96)
    assert tiny(x, t, lq=lq).shape == x.shape


def test_time_and_lq_change_the_output(tiny):
    for p in tiny.parameters():  # zero-initialised output convs would hide the conditioning
        torch.nn.init.normal_(p, std=0.05) if p.ndim > 1 else None
    x, t, lq = _inputs()
    out = tiny(x, t, lq=lq)
    assert not torch.allclose(out, tiny(x, (t + 1) % 15, lq=lq))
    assert not torch.allclose(out, tiny(x, t, lq=torch.zeros_like(lq)))
    # Samples do not interact (GroupNorm is per sample, attention is within the sample).
    torch.testing.assert_close(tiny(x[:1], t[:1], lq=lq[:1]), out[:1], atol=1e-5, rtol=1e-5)


def test_timestep_embedding_is_cos_then_sin():
    emb = timestep_embedding(torch.tensor([0, 3]), 8)
    torch.testing.assert_close(emb[0], torch.tensor([1.0] * 4 + [0.0] * 4))
    freqs = torch.exp(-torch.log(torch.tensor(1e4)) * torch.arange(4) / 4)
    torch.testing.assert_close(emb[1], torch.cat([torch.cos(3 * freqs), torch.sin(3 * freqs)]))
    assert timestep_embedding(torch.tensor([1]), 7).shape == (1, 7)


@pytest.mark.parametrize("bad, match", [
    (dict(x=torch.zeros(1, 3, 48, 48), lq=torch.zeros(1, 3, 48, 48)), "multiples of 32"),
    (dict(lq=torch.zeros(1, 3, 32, 32)), "lq/noise has size"),
    (dict(lq=torch.zeros(1, 1, 64, 64)), "in_channels=6"),
    (dict(t=torch.zeros(1)), "integer timesteps"),
])
def test_bad_inputs_name_the_problem(tiny, bad, match):
    args = dict(x=torch.zeros(1, 3, 64, 64), t=torch.zeros(1, dtype=torch.long), lq=torch.zeros(1, 3, 64, 64))
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        tiny(args["x"], args["t"], lq=args["lq"])


@pytest.mark.parametrize("kwargs, match", [
    (dict(model_channels=48), "multiple of 32"),
    (dict(num_res_blocks=(1, 1)), "num_res_blocks"),
    (dict(image_size=80), "image_size=80"),
    (dict(num_head_channels=48), "num_head_channels"),
])
def test_bad_configs_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        unet_preset("tiny", **kwargs)
    with pytest.raises(ValueError, match="v2"):
        unet_preset("v2")


def test_v1_config_matches_the_paper():
    c = unet_preset("v1")
    assert (c.model_channels, c.channel_mult, c.num_res_blocks) == (160, (1, 2, 2, 4), (2, 2, 2, 2))
    assert (c.swin_embed_dim, c.window_size, c.num_head_channels, c.size_multiple) == (192, 8, 32, 64)
    assert UNetConfig(**c.to_dict()) == c


def _standard_swin_labels(height, width, window, shift):
    """Swin's textbook region labels (regions in both axes), for contrast with the official mask."""
    labels = torch.zeros(height, width)
    bands = lambda n: torch.where(torch.arange(n) < n - window, 0, torch.where(torch.arange(n) < n - shift, 1, 2))
    labels += 3 * bands(height)[:, None] + bands(width)[None, :]
    return labels


def test_official_window_mask_quirk_is_reproduced():
    """The official mask labels token (a, b) of window (i, j) by the row band of i·w + b.

    The last window row of a 16×16 map with window 8 and shift 4 has two row bands; the
    textbook mask splits it by rows (a), the official one by columns (b) of the token.
    """
    mask = _shifted_window_mask(16, 16, 8, 4)
    assert mask.shape == (4, 64, 64)
    assert set(mask.unique().tolist()) == {0.0, -100.0}
    assert (mask[0] == 0).all()  # top-left window is one region
    last = mask[3].view(8, 8, 8, 8)  # (a, b) query × (a', b') key
    assert last[0, 0, 7, 0] == 0  # same column band (b = b' = 0), different rows: allowed
    assert last[0, 0, 0, 7] == -100  # b=0 vs b'=7 are in different bands
    textbook = _standard_swin_labels(16, 16, 8, 4)[8:, 8:].reshape(-1)
    assert textbook[0] != textbook[7 * 8]  # the textbook mask would separate rows instead


def test_activation_checkpointing_keeps_outputs_and_gradients():
    config = unet_preset("tiny")
    torch.manual_seed(0)
    plain = SwinUNet(config).train()
    for p in plain.parameters():  # non-zero heads so every block gets a gradient
        torch.nn.init.normal_(p, std=0.05) if p.ndim > 1 else None
    checkpointed = SwinUNet(dataclasses.replace(config, checkpointing=True)).train()
    checkpointed.load_state_dict(plain.state_dict())
    x, t, lq = _inputs()
    grads = []
    for model in (plain, checkpointed):
        model.zero_grad()
        out = model(x, t, lq=lq)
        out.square().mean().backward()
        grads.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert any(g.abs().sum() > 0 for g in grads[1][1])


def test_building_on_the_meta_device_leaves_later_models_intact():
    """The shifted-window mask is cached; a model first built on the meta device (to count
    parameters cheaply) must not leave a meta tensor in the cache for later models."""
    config = unet_preset("tiny")
    with torch.device("meta"):
        SwinUNet(config)
    model = SwinUNet(config).to("cpu")
    assert all(buffer.device.type == "cpu" for buffer in model.buffers())


def _relative_error(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("size", [(5, 7), (8, 8)])
def test_upsample_at_low_resolution_is_nearest_then_conv(size):
    """The phase decomposition computes nearest ×2 then the 3×3 conv (the official Upsample),
    values and gradients, on odd sizes too."""
    torch.manual_seed(0)
    up = Upsample(16)
    x = torch.randn(2, 16, *size, requires_grad=True)
    reference_x = x.detach().clone().requires_grad_()
    out = up(x)
    upsampled = torch.nn.functional.interpolate(reference_x, scale_factor=2, mode="nearest")
    reference = up.conv(upsampled)
    assert out.shape == reference.shape == (2, 16, 2 * size[0], 2 * size[1])
    assert _relative_error(out, reference) < 1e-5
    grad = torch.randn_like(out)
    weight_grad = torch.autograd.grad(out, up.conv.weight, grad, retain_graph=True)[0]
    out.backward(grad)
    reference_weight_grad = torch.autograd.grad(reference, up.conv.weight, grad, retain_graph=True)[0]
    reference.backward(grad)
    assert _relative_error(x.grad, reference_x.grad) < 1e-5
    assert _relative_error(weight_grad, reference_weight_grad) < 1e-5


@pytest.mark.parametrize("shift, size", [(False, 8), (True, 8), (True, 16)])
def test_window_attention_matches_timm_in_training_and_inference(shift, size):
    """Our bias-once attention (baddbmm while training on the CPU, SDPA otherwise) computes
    timm's WindowAttention with the official mask, values and bias-table gradients; size 16 on a
    block built for 8 exercises the mask computed on the fly."""
    torch.manual_seed(0)
    block = SwinBlock(64, 8, num_heads=2, window_size=4, shift=shift, mlp_ratio=2.0, dropout=0.0)
    torch.nn.init.normal_(block.attn.relative_position_bias_table, std=0.5)
    ws, n = block.window_size, block.window_size ** 2
    windows = torch.randn(2 * (size // ws) ** 2, n, 64)
    mask = _shifted_window_mask(size, size, ws, ws // 2) if shift else None
    reference = block.attn(windows, mask=mask)
    table = block.attn.relative_position_bias_table
    reference_grad = torch.autograd.grad(reference.square().sum(), table)[0]
    out = block._window_attention(windows, block._bias(size, size))
    assert _relative_error(out, reference) < 1e-5
    assert _relative_error(torch.autograd.grad(out.square().sum(), table)[0], reference_grad) < 1e-5
    with torch.no_grad():
        assert _relative_error(block._window_attention(windows, block._bias(size, size)), reference) < 1e-5


def test_the_whole_unet_traces_into_one_graph_for_torch_compile(tiny):
    """``torch.compile`` sees one graph, no breaks (the Upsample's strided view once asked for
    ``storage_offset()``, which split the UNet into 12 graphs and hit the recompile limit)."""
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(tiny)(*_inputs()[:2], lq=_inputs()[2])
    assert explanation.graph_break_count == 0, [reason.reason for reason in explanation.break_reasons]
    assert explanation.graph_count == 1
