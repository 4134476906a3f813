"""The main job end to end at a toy length: teacher, student, evaluation, metrics JSON, figures."""

import json

import pytest
import torch

from rsd_mini.diffusion import ResShift
from rsd_mini.reproduce import bicubic_sampler, evaluate, one_step_sampler, run_tiny, teacher_sampler


def test_run_tiny_writes_metrics_and_figures(tmp_path):
    summary = run_tiny(tmp_path / "run", tmp_path / "figures", ["train.iterations=2"],
                       ["train.iterations=1", "distill.fake_steps=1", "train.batch_size=2"],
                       progress=False, val_images=2)
    assert summary["teacher"]["steps_trained"] == 2 and summary["student"]["steps_trained"] == 1
    assert summary["num_images"] == 2
    assert {name: m["nfe"] for name, m in summary["methods"].items()} == {
        "bicubic": 0, "teacher": 15, "teacher_1step": 1, "student": 1}
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["methods"]["student"]["mean_psnr"] == pytest.approx(summary["methods"]["student"]["mean_psnr"])
    for name in ("samples", "teacher_loss", "student_loss", "teacher_trajectory"):
        assert (tmp_path / "figures" / f"tiny_{name}.png").stat().st_size > 1000


def test_evaluate_scores_an_oracle_perfectly_against_bicubic():
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    lq = torch.nn.functional.avg_pool2d(hr, 4)

    def oracle(x, t, lq=None, noise=None):
        return hr

    process = ResShift.from_preset("resshift-v3")
    result = evaluate({"bicubic": (bicubic_sampler, 0), "oracle": (teacher_sampler(oracle, process), 4),
                       "one": (one_step_sampler(oracle, process, 1), 1)},
                      {"hr": hr, "lq": lq}, scale=4)
    methods = result["methods"]
    assert methods["oracle"]["mean_ssim"] == pytest.approx(1.0)
    assert methods["oracle"]["mean_psnr"] > 100 > methods["bicubic"]["mean_psnr"]
    assert methods["one"]["mean_psnr"] > 100
    assert methods["oracle"]["nfe"] == 4 and result["num_images"] == 2
