"""The main job end to end at a toy length: training, evaluation, metrics JSON and figures."""

import json

import pytest
import torch

from rsd_mini.diffusion import ResShift
from rsd_mini.reproduce import evaluate_teacher, run_tiny


def test_run_tiny_writes_metrics_and_figures(tmp_path):
    summary = run_tiny(tmp_path / "run", tmp_path / "figures", ["train.iterations=2"],
                       progress=False, val_images=2)
    assert summary["steps_trained"] == 2 and summary["num_images"] == 2 and summary["nfe"] == 15
    saved = json.loads((tmp_path / "run" / "teacher_metrics.json").read_text())
    assert saved["teacher"]["mean_psnr"] == pytest.approx(summary["teacher"]["mean_psnr"])
    for name in ("samples", "loss", "trajectory"):
        assert (tmp_path / "figures" / f"tiny_teacher_{name}.png").stat().st_size > 1000


def test_evaluate_teacher_scores_an_oracle_perfectly_against_bicubic():
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    lq = torch.nn.functional.avg_pool2d(hr, 4)

    def oracle(x, t, lq=None):
        return hr

    result = evaluate_teacher(oracle, ResShift.from_preset("resshift-v3"), {"hr": hr, "lq": lq}, scale=4)
    assert result["teacher"]["mean_ssim"] == pytest.approx(1.0)
    assert result["teacher"]["mean_psnr"] > 100 > result["bicubic"]["mean_psnr"]
    assert result["nfe"] == 4 and result["num_images"] == 2
