"""``python -m rsd_mini``: help, config printing, and a 2-step tiny teacher run end to end."""

import json
import runpy
import sys

import pytest
import yaml

from rsd_mini.checkpoint import load_checkpoint
from rsd_mini.cli import COMMANDS, main
from rsd_mini.config import PRESETS, TeacherConfig, apply_overrides, from_dict


def test_module_help_lists_the_commands(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["rsd_mini", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("rsd_mini", run_name="__main__")  # exactly what `python -m rsd_mini` runs
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "train-teacher" in out and all(name in out for name in COMMANDS)


def test_config_command_prints_the_overridden_preset(capsys):
    assert main(["config", "--config", "tiny", "optim.lr=1e-4", "unet.channel_mult=[1,2,2]",
                 "unet.num_res_blocks=[1,1,1]"]) == 0
    printed = from_dict(TeacherConfig, yaml.safe_load(capsys.readouterr().out))
    assert printed == apply_overrides(PRESETS["tiny"], ["optim.lr=1e-4", "unet.channel_mult=[1,2,2]",
                                                         "unet.num_res_blocks=[1,1,1]"])


def test_bad_override_exits_with_the_message(capsys):
    with pytest.raises(SystemExit, match=r"unknown config key 'train\.lr'.*optim\.lr"):
        main(["config", "train.lr=1e-4"])


def test_train_teacher_runs_two_steps_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train-teacher", "--config", "tiny", "--out", str(out), "--device", "cpu",
                 "--no-progress", "train.iterations=2", "train.batch_size=2", "train.microbatch=1",
                 "train.num_threads=1", "train.sample_every=2", "data.val_images=2"])
    assert code == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "final loss" in printed
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    train_records = [r for r in log if "loss" in r]
    assert [r["step"] for r in train_records] == [2]
    assert f"{train_records[0]['loss']:.5f}" in printed
    assert [r["step"] for r in log if "val_psnr" in r] == [2] and log[-1]["val_psnr"] > 0
    state = load_checkpoint(out / "last.pt")
    assert state["step"] == 2 and state["config"]["train"]["out_dir"] == str(out)
    assert yaml.safe_load((out / "config.yaml").read_text()) == state["config"]
