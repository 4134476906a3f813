"""``python -m rsd_mini``: help, config printing, instant start, the thread policy, and a
2-step tiny teacher run end to end (the error cases: tests/test_cli_errors.py)."""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rsd_mini.checkpoint import load_checkpoint
from rsd_mini import cli
from rsd_mini.cli import COMMANDS, main, preset_files
from rsd_mini.config import PRESET_FILES, PRESETS, TeacherConfig, apply_overrides, from_dict


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
    assert main(["config", "train.lr=1e-4"]) == 1
    assert "unknown config key 'train.lr'" in capsys.readouterr().err


def test_preset_names_come_from_the_yaml_files_without_torch():
    assert {name: path.resolve() for name, path in preset_files().items()} == \
        {name: Path(path).resolve() for name, path in PRESET_FILES.items()}
    assert set(preset_files()) == set(PRESETS)


HEAVY = ("torch", "timm", "kornia")


@pytest.mark.parametrize("argv", [["--help"], ["weights", "list"], ["data", "list"], ["train-teacher", "--bogus"], ["bogus"],
                                  ["config", "--help"], ["evaluate", "--lq", "x"], ["upscale", "a.png", "--tile", "-1"]])
def test_commands_that_compute_nothing_import_no_torch(argv, tmp_path):
    """Issue #13: --help, weights list and argument errors start without torch, timm, kornia."""
    probe = ("import runpy, sys\n"
             f"sys.argv = ['rsd_mini', *{argv!r}]\n"
             "try:\n    runpy.run_module('rsd_mini', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))")
    env = dict(os.environ, OMP_NUM_THREADS="1", RSD_MINI_WEIGHTS=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parents[1])
    assert "HEAVY []" in done.stdout, done.stdout[-500:] + done.stderr[-500:]


@pytest.mark.parametrize("argv, workload", [
    (["evaluate", "--checkpoint", "resshift-v1"], "large"),
    (["--threads", "3", "evaluate", "--checkpoint", "tiny-teacher"], "small"),
    (["evaluate", "--method", "bicubic", "--threads", "2"], "small"),
    (["train-teacher", "--config", "resshift-v1"], "large"),
    (["train-teacher", "--config", "tiny", "diffusion.latent=true"], "large"),
    (["distill", "--config", "rsd-tiny"], "small"),
])
def test_the_thread_policy_gets_the_workload_and_threads(argv, workload, tmp_path, monkeypatch, capsys):
    """Each compute command calls rsd_mini.threads.configure before it runs (here it then stops
    at a bad folder or device, which it checks before any compute)."""
    calls = []
    monkeypatch.setattr("rsd_mini.threads.configure", lambda kind, requested=None: calls.append((kind, requested)) or 1)
    extra = (["--lq", str(tmp_path / "absent"), "--json", str(tmp_path / "m.json")] if "evaluate" in argv
             else ["--device", "tpu7", "--out", str(tmp_path / "run")])
    assert main([*argv, *extra]) == 1
    threads = int(argv[argv.index("--threads") + 1]) if "--threads" in argv else None
    assert calls == [(workload, threads)]
    assert capsys.readouterr().err.startswith("rsd_mini: error: argument")


def test_train_teacher_runs_two_steps_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train-teacher", "--config", "tiny", "--out", str(out), "--device", "cpu",
                 "--no-progress", "train.iterations=2", "train.batch_size=2", "train.microbatch=1",
                 "train.num_threads=1", "train.sample_every=2", "data.val_images=2"])
    assert code == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert str(out) in printed and "final loss" in printed
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    train_records = [r for r in log if "loss" in r]
    assert [r["step"] for r in train_records] == [2]
    assert f"{train_records[0]['loss']:.5f}" in printed
    assert [r["step"] for r in log if "val_psnr" in r] == [2] and log[-1]["val_psnr"] > 0
    state = load_checkpoint(out / "last.pt")
    assert state["step"] == 2 and state["config"]["train"]["out_dir"] == str(out)
    assert yaml.safe_load((out / "config.yaml").read_text()) == state["config"]
    # the preset's 100 warm-up updates are longer than this 2-update run: one warning line
    assert "rsd_mini: warning: optim.warmup_steps=100 is not shorter than train.iterations=2" in captured.err


def test_resume_removes_stale_temporaries_and_names_the_flag(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train-teacher", "--out", str(out), "--device", "cpu", "--no-progress", "train.iterations=1",
            "train.batch_size=2", "train.microbatch=1", "train.sample_every=0", "optim.warmup_steps=0"]
    assert main(argv) == 0
    stale = out / ".last.pt.0123456789abcdef.tmp"  # what a kill in the middle of a save leaves
    stale.write_bytes(b"half a checkpoint")
    assert main(argv) == 0 and not stale.exists()  # resumed at step 1 of 1: nothing to do
    capsys.readouterr()
    assert main([*argv, "unet.num_res_blocks=[2,1,1,1]"]) == 1  # another network in the same folder
    assert "start afresh with --no-resume" in capsys.readouterr().err


@pytest.mark.parametrize("preset, section", [("sinsr-tiny", "sinsr"), ("regression-tiny", "regression")])
def test_distill_dispatches_on_the_config_type(preset, section, tmp_path, capsys):
    """``distill --config sinsr-tiny`` trains SinSR, ``regression-tiny`` the MSE student; --teacher sets
    the section's own teacher key."""
    import torch

    teacher = Path(__file__).resolve().parents[1] / "data" / "checkpoints" / "tiny_teacher.pt"
    out = tmp_path / preset
    argv = ["distill", "--config", preset, "--teacher", str(teacher), "--out", str(out), "--device", "cpu",
            "--no-progress", "train.iterations=1", "train.batch_size=2", "train.microbatch=2"]
    assert main(argv) == 0
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["step"] == 1 and state["config"][section]["teacher"] == str(teacher)
    assert f"step 1: final student loss" in capsys.readouterr().out
