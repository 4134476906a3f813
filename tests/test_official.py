"""Official checkpoints: the full v1 layout loads strictly; a wrong one gets a clear error."""

import json
from pathlib import Path

import pytest
import torch

import rsd_mini

from rsd_mini.fullscale.official import (CheckpointMismatchError, load_unet, official_state_dict,
                               unet_config_from_official)
from rsd_mini.unet import SwinUNet, count_parameters, unet_preset

LAYOUT = json.loads((Path(__file__).resolve().parents[1] / "data" / "reference"
                     / "unet_swin_v1_layout.json").read_text())
# ResShift's YAML (configs/realsr_swinunet_realesrgan256.yaml) writes in_channels 3 + lq_size.
RESSHIFT_PARAMS = dict(LAYOUT["config"], in_channels=3, lq_size=64)


def synthetic_official_checkpoint(seed=0):
    """A state dict with exactly the official layout (564 entries), filled with random values
    (window-index buffers get the values the official code computes)."""
    g = torch.Generator().manual_seed(seed)
    reference = official_state_dict(SwinUNetV1.get())
    state = {}
    for key, shape in LAYOUT["state_dict"].items():
        if key.endswith("relative_position_index") or key.endswith("attn_mask"):
            state[key] = reference[key].clone()
        else:
            state[key] = torch.randn(shape, generator=g) * 0.02
    return state


class SwinUNetV1:
    """One v1 model per test session (it takes a few seconds to build)."""
    _model = None

    @classmethod
    def get(cls):
        if cls._model is None:
            from rsd_mini.unet import SwinUNet
            cls._model = SwinUNet(unet_preset("v1"))
        return cls._model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    state = synthetic_official_checkpoint()
    path = tmp_path_factory.mktemp("ckpt") / "resshift_realsrx4_s15_v1.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    return state, path


def test_both_official_param_conventions_give_the_v1_config():
    assert unet_config_from_official(LAYOUT["config"]) == unet_preset("v1")
    assert unet_config_from_official(RESSHIFT_PARAMS) == unet_preset("v1")


def test_full_official_layout_loads_strictly(checkpoint):
    state, path = checkpoint
    assert len(state) == 564
    model = load_unet(path, RESSHIFT_PARAMS)
    assert count_parameters(model) == LAYOUT["num_parameters"] == 118_593_583
    loaded = model.state_dict()
    for key in ("input_blocks.0.0.weight", "middle_block.1.blocks.1.attn.qkv.weight",
                "output_blocks.11.0.out_layers.3.bias", "out.2.weight"):
        torch.testing.assert_close(loaded[key], state[key])
    exported = official_state_dict(model)
    assert {k: list(v.shape) for k, v in exported.items()} == LAYOUT["state_dict"]


def test_a_plain_state_dict_in_memory_loads_too(checkpoint):
    state, _ = checkpoint
    model = load_unet(state, LAYOUT["config"])
    torch.testing.assert_close(model.state_dict()["time_embed.2.bias"], state["time_embed.2.bias"])


def test_a_wrong_checkpoint_lists_missing_unexpected_and_misshaped_keys(checkpoint):
    state = dict(checkpoint[0])
    del state["out.2.bias"]
    state["extra.weight"] = torch.zeros(1)
    state["input_blocks.0.0.weight"] = torch.zeros(160, 7, 3, 3)  # e.g. the RSD student's conv
    with pytest.raises(CheckpointMismatchError) as info:
        load_unet(state, LAYOUT["config"])
    message = str(info.value)
    assert "missing (1): out.2.bias" in message
    assert "unexpected (1): extra.weight" in message
    assert "input_blocks.0.0.weight checkpoint (160, 7, 3, 3) vs model (160, 6, 3, 3)" in message


def test_a_tiny_checkpoint_for_the_v1_config_fails_clearly():
    from rsd_mini.unet import SwinUNet
    tiny_state = SwinUNet(unet_preset("tiny")).state_dict()
    with pytest.raises(CheckpointMismatchError, match="mis-shaped"):
        load_unet(tiny_state, LAYOUT["config"])


def test_missing_corrupt_and_unsupported_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_unet(tmp_path / "nope.pth", LAYOUT["config"])
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        load_unet(corrupt, LAYOUT["config"])
    with pytest.raises(ValueError, match="resblock_updown"):
        unet_config_from_official(dict(LAYOUT["config"], resblock_updown=True))
    with pytest.raises(ValueError, match="unknown keys.*foo"):
        unet_config_from_official(dict(LAYOUT["config"], foo=1))


def test_pickled_objects_are_refused(tmp_path):
    """weights_only=True: a checkpoint carrying arbitrary Python objects is not unpickled."""
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "obj": Path("/")}, path)
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        load_unet(path, LAYOUT["config"])


# --------------------------------------------------------------------- registry models
SMALL_UNET = dict(image_size=16, in_channels=6, model_channels=32, out_channels=3, attention_resolutions=[8],
                  dropout=0, channel_mult=[1, 2], num_res_blocks=[1, 1], conv_resample=True, dims=2,
                  use_fp16=False, num_head_channels=32, use_scale_shift_norm=True, resblock_updown=False,
                  swin_depth=2, swin_embed_dim=32, window_size=4, mlp_ratio=2, cond_lq=True)
SMALL_VQ = dict(embed_dim=3, n_embed=16, ddconfig=dict(double_z=False, z_channels=3, resolution=64, in_channels=3,
                                                       out_ch=3, ch=32, ch_mult=[1, 1, 2], num_res_blocks=1,
                                                       attn_resolutions=[], dropout=0.0, padding_mode="zeros"))


@pytest.mark.parametrize("name", ["resshift-v1", "sinsr-v1", "rsd"])
def test_registry_models_load_strictly_and_super_resolve(name, tmp_path, monkeypatch):
    import dataclasses

    from rsd_mini.fullscale import weights
    from rsd_mini.fullscale.autoencoder import VQAutoencoder, VQConfig
    from rsd_mini.distill import add_noise_channels
    from rsd_mini.fullscale.official import load_official_model, unet_config_from_official

    spec = dataclasses.replace(weights.REGISTRY[name], params=SMALL_UNET)
    vq = dataclasses.replace(weights.REGISTRY["vq-f4"], params=SMALL_VQ)
    monkeypatch.setitem(weights.REGISTRY, name, spec)
    monkeypatch.setitem(weights.REGISTRY, "vq-f4", vq)
    with pytest.raises(FileNotFoundError, match=spec.filename):
        load_official_model(name, weights_dir=tmp_path)
    torch.manual_seed(0)
    network = SwinUNet(unet_config_from_official(SMALL_UNET))
    if spec.noise_channels:
        network = add_noise_channels(network, spec.noise_channels)
    torch.save({"module." + k: v for k, v in network.state_dict().items()}, tmp_path / spec.filename)
    torch.save({"state_dict": VQAutoencoder(VQConfig.from_official(SMALL_VQ)).state_dict()}, tmp_path / vq.filename)
    model = load_official_model(name, weights_dir=tmp_path)
    assert (model.kind, model.nfe, model.noise_channels) == (spec.inference, spec.diffusion["steps"] if
                                                               spec.inference == "teacher" else 1, spec.noise_channels)
    for key, value in network.state_dict().items():
        assert torch.equal(model.network.state_dict()[key], value), key
    lq = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    out = model.sr(lq, generator=torch.Generator().manual_seed(2))
    assert out.shape == (1, 3, 64, 64) and out.abs().max() <= 1
    with pytest.raises(ValueError, match="name='vq-f4' is the autoencoder"):
        load_official_model("vq-f4", weights_dir=tmp_path)
    monkeypatch.setenv(weights.ENV_VAR, str(tmp_path))  # rsd_mini.load finds it by name
    assert torch.equal(rsd_mini.load(name).sr(lq, generator=torch.Generator().manual_seed(2)), out)
