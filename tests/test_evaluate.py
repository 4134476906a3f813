"""The evaluate / upscale commands: metrics of a folder, any image size, clear errors."""

import dataclasses
import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from rsd_mini import hub, metrics
from rsd_mini.config import apply_overrides, load_config
from rsd_mini.data import load_image
from rsd_mini.degradations import bicubic_downsample, bicubic_upsample, quantize_8bit
from rsd_mini.errors import UserError
from rsd_mini import cli
from rsd_mini.cli import build_parser
from rsd_mini.evaluate import METHODS, check_steps, evaluate_folder, run_evaluate, run_upscale
from rsd_mini.train import TeacherTrainer

SMALL = ["data.crop_size=32", "unet.image_size=32", "unet.channel_mult=[1,2]", "unet.num_res_blocks=[1,1]",
         "unet.attention_resolutions=[8]", "train.iterations=1", "train.batch_size=2"]


@pytest.fixture(scope="module")
def teacher_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    TeacherTrainer(apply_overrides(load_config("tiny"), [*SMALL, f"train.out_dir={out}"]), device="cpu").fit(progress=False)
    return out / "last.pt"


def _png(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)


@pytest.fixture
def folders(tmp_path):
    """hr/{a,b}.png (64×64 and 80×48) and their bicubic ×1/4 in lq/."""
    g = torch.Generator().manual_seed(0)
    for name, (height, width) in {"a": (64, 64), "b": (80, 48)}.items():
        coarse = torch.rand(1, 3, height // 8, width // 8, generator=g)
        smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic")
        hr = (0.8 * smooth + 0.2 * torch.rand(1, 3, height, width, generator=g)).clamp(0, 1)  # with fine detail
        _png(tmp_path / "hr" / f"{name}.png", hr[0])
        _png(tmp_path / "lq" / f"{name}.png", bicubic_downsample(hr, scale=4)[0])
    return tmp_path / "lq", tmp_path / "hr"


def _parse(command, argv):
    return build_parser([command]).parse_args([command, *map(str, argv), "--no-progress"])


def _evaluate(*argv):
    return run_evaluate(_parse("evaluate", argv))


def _upscale(*argv):
    return run_upscale(_parse("upscale", argv))


def test_bicubic_metrics_are_those_of_the_saved_pngs(folders, tmp_path):
    lq_dir, hr_dir = folders
    result = evaluate_folder("bicubic", lq_dir, hr_dir, save=tmp_path / "sr")
    assert result["names"] == ["a", "b"] and result["nfe"] == 0 and result["num_images"] == 2
    for index, name in enumerate(result["names"]):
        lq, hr = load_image(lq_dir / f"{name}.png")[None], load_image(hr_dir / f"{name}.png")[None]
        expected = quantize_8bit(metrics.to_unit_range(bicubic_upsample(lq * 2 - 1, scale=4)))
        # equal up to the float error of the [0, 1] -> [-1, 1] -> [0, 1] round trip
        assert result["psnr"][index] == pytest.approx(float(metrics.psnr(expected, hr)), abs=1e-4)
        saved = load_image(tmp_path / "sr" / f"{name}.png")[None]
        assert result["psnr"][index] == pytest.approx(float(metrics.psnr(saved, hr)), abs=1e-4)
        assert result["lr_fidelity"][index] == pytest.approx(float(metrics.lr_fidelity(expected, lq, 4)), abs=1e-4)
    assert result["mean_psnr"] == pytest.approx(sum(result["psnr"]) / 2)
    assert result["mean_high_frequency_ratio"] < result["ground_truth_high_frequency_ratio"]
    lr_only = evaluate_folder("bicubic", lq_dir, limit=1)
    assert lr_only["num_images"] == 1 and "psnr" not in lr_only and "ground_truth_high_frequency_ratio" not in lr_only
    assert lr_only["lr_fidelity"] == result["lr_fidelity"][:1]


def test_cli_writes_the_json(folders, tmp_path, capsys):
    lq_dir, hr_dir = folders
    assert _evaluate("--method", "bicubic", "--lq", lq_dir, "--gt", hr_dir, "--json", tmp_path / "m" / "b.json") == 0
    saved = json.loads((tmp_path / "m" / "b.json").read_text())
    assert {"psnr", "ssim", "lr_fidelity", "high_frequency_ratio", "mean_psnr", "mean_ssim", "mean_lr_fidelity",
            "mean_high_frequency_ratio", "nfe", "seconds_per_image", "num_images", "method", "checkpoint",
            "steps", "seed"} <= saved.keys()
    assert saved["method"] == "bicubic" and saved["checkpoint"] is None and saved["num_images"] == 2
    assert saved["tile"] is None and saved["overlap"] is None  # bicubic does not tile
    assert "bicubic on 2 images" in capsys.readouterr().out


def test_a_teacher_checkpoint_tiles_any_size_deterministically(folders, teacher_checkpoint, tmp_path):
    lq_dir, hr_dir = folders
    _evaluate("--checkpoint", teacher_checkpoint, "--lq", lq_dir, "--gt", hr_dir, "--steps", 2, "--tile", 8,
              "--overlap", 2, "--json", tmp_path / "t.json", "--save", tmp_path / "sr")
    saved = json.loads((tmp_path / "t.json").read_text())
    assert saved["method"] == "teacher" and saved["nfe"] == 2 and saved["steps"] == 2
    assert saved["checkpoint"] == str(teacher_checkpoint) and saved["tiles"] == [9, 6]  # 16² and 20×12 LR
    assert (saved["tile"], saved["overlap"]) == (8, 2)
    assert Image.open(tmp_path / "sr" / "b.png").size == (48, 80)
    again = evaluate_folder(hub.load(teacher_checkpoint), lq_dir, hr_dir, steps=2, tile=8, overlap=2)
    assert again["psnr"] == saved["psnr"]


def test_the_json_records_the_model_default_tiling(folders, teacher_checkpoint, tmp_path):
    lq_dir, _ = folders
    _evaluate("--checkpoint", teacher_checkpoint, "--lq", lq_dir, "--steps", 1, "--json", tmp_path / "t.json")
    saved = json.loads((tmp_path / "t.json").read_text())
    assert (saved["tile"], saved["overlap"]) == (64, 16) and saved["tiles"] == [1, 1]  # a pixel model: 64 / 16
    _evaluate("--checkpoint", teacher_checkpoint, "--lq", lq_dir, "--steps", 1, "--tile", 32, "--json", tmp_path / "u.json")
    saved = json.loads((tmp_path / "u.json").read_text())
    assert (saved["tile"], saved["overlap"]) == (32, 16)  # the model's overlap with the user's tile
    with pytest.raises(UserError, match=r"arguments --tile/--overlap: overlap=16: .*tile=12.*defaults are 64/16"):
        _evaluate("--checkpoint", teacher_checkpoint, "--lq", lq_dir, "--tile", 12, "--json", tmp_path / "v.json")


def test_steps_must_suit_the_model(teacher_checkpoint):
    teacher = hub.load(teacher_checkpoint)
    check_steps(teacher, 15)
    for model, steps, message in ((teacher, 16, "in \\[1, T=15\\]"), ("bicubic", 2, "no network calls"),
                                  (dataclasses.replace(teacher, kind="student"), 4, "exactly one call")):
        with pytest.raises(ValueError, match=f"steps={steps}: .*{message}"):
            check_steps(model, steps)


@pytest.mark.parametrize("case, message", [
    ("missing-lq", "argument --lq: '{tmp}/nowhere' is not a folder"),
    ("missing-gt", "argument --gt: '{tmp}/nowhere' is not a folder"),
    ("names", "LR and HR file names differ"),
    ("size", "expected HR = 4 x LR = 64x64"),
    ("not-image", "{tmp}/lq/a.png: not a readable image file"),
    ("not-image-lr-only", "{tmp}/lq/a.png: not a readable image file"),
    ("unknown-checkpoint", "argument --checkpoint: 'tiny-nonesuch' could not be loaded"),
    ("bicubic-steps", "--steps=3: bicubic makes no network calls"),
    ("fr-metric-without-gt", "perceptual='lpips' compares with the ground truth"),
    ("pyiqa-missing", "pip install pyiqa"),
    ("unknown-metric", "argument --perceptual: 'psnrx' is not a metric here; expected some of lpips"),
])
def test_errors_name_the_argument_and_value(folders, tmp_path, monkeypatch, case, message):
    lq_dir, hr_dir = folders
    lq_arg, gt_arg, extra = lq_dir, hr_dir, []
    which = ["--method", "bicubic"]
    if case == "missing-lq":
        lq_arg = tmp_path / "nowhere"
    elif case == "missing-gt":
        gt_arg = tmp_path / "nowhere"
    elif case == "names":
        (hr_dir / "a.png").rename(hr_dir / "c.png")
    elif case == "size":
        _png(hr_dir / "a.png", torch.zeros(3, 60, 64))
    elif case.startswith("not-image"):
        (lq_dir / "a.png").write_text("not a png")
    elif case == "unknown-checkpoint":
        which = ["--checkpoint", "tiny-nonesuch"]
    elif case == "bicubic-steps":
        extra = ["--steps", 3]
    elif case == "pyiqa-missing":
        monkeypatch.setitem(sys.modules, "pyiqa", None)
        extra = ["--perceptual", "musiq"]
    elif case == "fr-metric-without-gt":
        extra = ["--perceptual", "lpips"]
    elif case == "unknown-metric":
        extra = ["--perceptual", "psnrx"]
    args = [*which, "--lq", lq_arg, "--json", tmp_path / "x.json", *extra]
    if case not in ("not-image-lr-only", "fr-metric-without-gt"):
        args += ["--gt", gt_arg]
    with pytest.raises(UserError) as failure:
        _evaluate(*args)
    assert message.format(tmp=tmp_path) in str(failure.value)
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("argv, message", [
    ([], "one of the arguments --checkpoint --method is required"),
    (["--method", "bicubic", "--checkpoint", "tiny-teacher"], "not allowed with argument"),
    (["--method", "bicubic", "--limit", "0"], "argument --limit: expected an integer ≥ 1, got '0'"),
])
def test_argparse_rejects_both_neither_and_bad_numbers(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        _evaluate(*argv, "--lq", tmp_path, "--json", tmp_path / "x.json")
    assert message in capsys.readouterr().err


def test_perceptual_metrics_are_reported_when_pyiqa_answers(folders, monkeypatch):
    lq_dir, hr_dir = folders
    fake = {"lpips": lambda pred, target: (pred - target).abs().mean().reshape(1, 1),
            "musiq": lambda pred: pred.mean().reshape(1)}
    monkeypatch.setattr(metrics, "perceptual_metric", lambda name, device: fake[name])
    result = evaluate_folder("bicubic", lq_dir, hr_dir, perceptual=("lpips", "musiq"))
    assert len(result["lpips"]) == 2 and 0 < result["mean_lpips"] < 0.1 and 0 < result["mean_musiq"] < 1


def test_upscale_command_writes_stem_x4_for_files_and_folders(folders, teacher_checkpoint, tmp_path, capsys):
    lq_dir, _ = folders
    assert _upscale(lq_dir / "b.png", "--checkpoint", teacher_checkpoint, "--steps", 1, "--out", tmp_path / "up") == 0
    assert Image.open(tmp_path / "up" / "b_x4.png").size == (48, 80) and "b_x4.png" in capsys.readouterr().out
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.png").write_bytes(b"\x89PNG broken")
    for inputs, message in (([tmp_path / "none.png"], "none.png' does not exist"),
                            ([tmp_path / "other"], "notes.png: not a readable image file"),
                            ([lq_dir, lq_dir / "a.png"], "two inputs share the name 'a'")):
        with pytest.raises(UserError) as failure:
            _upscale(*inputs, "--checkpoint", teacher_checkpoint, "--out", tmp_path / "up")
        assert message in str(failure.value)


def test_the_command_line_names_agree_with_their_sources():
    """cli.py lists the shipped models present and the methods without importing torch; they
    are hub's and ours."""
    present = sorted(name for name, path in hub.SHIPPED.items() if path.is_file())
    assert cli.shipped_names() == present and cli.METHODS == METHODS
