"""Teacher configs: presets, YAML files, the dict round trip and type-checked overrides."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import yaml

from rsd_mini.config import (PRESET_FILES, PRESETS, TeacherConfig, apply_overrides, from_dict,
                             load_config, save_config, to_dict)
from rsd_mini.unet import unet_preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_yaml_files_equal_the_presets(name):
    assert load_config(PRESET_FILES[name]) == PRESETS[name]
    assert load_config(name) == PRESETS[name]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_dict_and_yaml_round_trip(name, tmp_path):
    config = PRESETS[name]
    assert from_dict(type(config), to_dict(config)) == config
    assert yaml.safe_load(yaml.safe_dump(to_dict(config))) == to_dict(config)  # plain values only
    assert load_config(save_config(config, tmp_path / "run" / "config.yaml")) == config


def test_resshift_v1_is_the_papers_teacher():
    c = PRESETS["resshift-v1"]  # RSD_SPEC §1 "Teacher training"
    assert (c.diffusion.steps, c.diffusion.kappa, c.diffusion.min_noise_level, c.diffusion.latent) == (15, 2.0, 0.04, True)
    assert (c.optim.lr, c.optim.weight_decay, c.optim.warmup_steps, c.optim.schedule) == (5e-5, 0.0, 5000, "constant")
    assert (c.train.batch_size, c.train.microbatch, c.train.ema_rate, c.train.amp, c.train.iterations) == (64, 8, 0.999, True, 300_000)
    assert (c.data.crop_size, c.data.degradation, c.data.dataset) == (256, "realesrgan", "folder")
    assert c.unet == unet_preset("v1")


def test_tiny_keeps_the_process_in_pixel_space():
    tiny, v1 = PRESETS["tiny"], PRESETS["resshift-v1"]
    assert tiny.diffusion == dataclasses.replace(v1.diffusion, latent=False, autoencoder=None)
    assert (tiny.data.dataset, tiny.data.crop_size, tiny.data.degradation) == ("mini", 64, "bicubic")
    assert tiny.unet == unet_preset("tiny")


def test_overrides_are_parsed_and_coerced():
    base = PRESETS["tiny"]
    config = apply_overrides(base, ["optim.lr=1e-4", "optim.warmup_steps=7", "optim.grad_clip=null",
                                    "unet.model_channels=64", "unet.channel_mult=[1,2,2]",
                                    "unet.num_res_blocks=[1,1,1]", "unet.mlp_ratio=3",
                                    "train.amp=true", "data.root=/data/imagenet"])
    assert config.optim.lr == 1e-4 and isinstance(config.optim.lr, float)  # YAML reads "1e-4" as str
    assert config.optim.warmup_steps == 7 and config.optim.grad_clip is None
    assert config.unet.channel_mult == (1, 2, 2) and config.unet.model_channels == 64
    assert config.unet.mlp_ratio == 3.0 and isinstance(config.unet.mlp_ratio, float)
    assert config.train.amp is True and config.data.root == "/data/imagenet"
    assert base == PRESETS["tiny"]  # a new config; the preset is untouched
    assert apply_overrides(base, []) == base


def test_unknown_key_lists_the_valid_keys_and_a_suggestion():
    with pytest.raises(ValueError, match=r"'train\.lr'.*train\.iterations.*did you mean optim\.lr"):
        apply_overrides(PRESETS["tiny"], ["train.lr=1e-4"])
    with pytest.raises(ValueError, match=r"'trian\.seed'.*train\.<key>"):
        apply_overrides(PRESETS["tiny"], ["trian.seed=1"])
    with pytest.raises(ValueError, match=r"'optim\.bogus'.*optim\.lr"):
        from_dict(TeacherConfig, {"optim": {"bogus": 1}})


@pytest.mark.parametrize("override, expected", [
    ("optim.lr=fast", r"optim\.lr='fast' \(str\): expected float"),
    ("train.amp=1", r"train\.amp=1 \(int\): expected bool"),
    ("train.iterations=2.5", r"train\.iterations=2\.5 \(float\): expected int"),
    ("unet.channel_mult=3", r"unet\.channel_mult=3 \(int\): expected tuple\[int, \.\.\.\]"),
    ("unet.channel_mult=[1,two]", r"unet\.channel_mult\[1\]='two' \(str\): expected int"),
    ("optim.betas=[0.9]", r"optim\.betas=\[0\.9\] \(list\): expected tuple\[float, float\]"),
    ("optim.schedule=linear", r"optim\.schedule='linear' \(str\): expected one of \['constant', 'cosine'\]"),
])
def test_wrong_types_name_key_value_and_expected_type(override, expected):
    with pytest.raises(TypeError, match=expected):
        apply_overrides(PRESETS["tiny"], [override])


def test_malformed_overrides_and_invalid_values():
    with pytest.raises(ValueError, match="section.key=value"):
        apply_overrides(PRESETS["tiny"], ["optim.lr"])
    with pytest.raises(ValueError, match="num_res_blocks"):  # UNetConfig's own validation
        apply_overrides(PRESETS["tiny"], ["unet.channel_mult=[1,2]"])
    with pytest.raises(ValueError, match="data.crop_size=65"):
        apply_overrides(PRESETS["tiny"], ["data.crop_size=65"])


def test_load_config_from_partial_yaml_and_bad_names(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("optim:\n  lr: 3e-4\ntrain:\n  iterations: 10\n")
    config = load_config(path)
    assert config.optim.lr == 3e-4 and config.train.iterations == 10
    assert config.unet == TeacherConfig().unet  # missing sections keep the defaults
    with pytest.raises(FileNotFoundError, match="tiny.*resshift-v1|resshift-v1.*tiny"):
        load_config("tinyy")


def test_v3_preset_has_the_official_four_step_schedule():
    from rsd_mini.diffusion import ResShift

    reference = json.loads((Path(__file__).resolve().parents[1] / "data" / "reference" /
                            "resshift_schedules.json").read_text())["resshift_v3_x4_T4"]
    d = PRESETS["resshift-v3"].diffusion
    process = ResShift(d.steps, d.kappa, d.min_noise_level, d.etas_end, d.power)
    torch.testing.assert_close(process.sqrt_etas, torch.tensor(reference["sqrt_etas"], dtype=torch.float64),
                               atol=1e-6, rtol=0)
    assert d.latent and d.autoencoder == "vq-f4"
