"""The converge-and-stay experiment (`python -m rsd_mini.converge`) on a very small run."""

import json

import pytest
import torch

from rsd_mini import converge

SMALL = ["train.iterations=2", "train.batch_size=2", "train.microbatch=2", "train.ema_rate=0.5"]


def test_converge_snapshots_measures_and_resumes(tmp_path):
    out = tmp_path / "rsd"
    assert converge.main([*SMALL, "--out", str(out), "--every", "1", "--images", "1", "--seeds", "2",
                          "--figures", str(tmp_path / "figures")]) == 0
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["step_0000.pt", "step_0001.pt", "step_0002.pt"]
    first = torch.load(out / "snapshots" / "step_0002.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in first.values())
    summary = json.loads((out / "convergence.json").read_text())
    assert [row["step"] for row in summary["curve"]] == [0, 1, 2]
    assert summary["teacher"]["patch_ratio"] == pytest.approx(1.0)  # the floor set against the reference
    first_row = summary["curve"][0]  # the distance to the data's patches, beside the teacher's
    assert first_row["data_ratio"] == pytest.approx(first_row["data_distance"] / first_row["teacher_data_distance"])
    assert first_row["data_distance"] > 0 and summary["final"]["teacher_data_distance"] > 0
    assert summary["goal"]["last_step"] == 2 and summary["distill"]["fake_steps"] == 2
    assert (tmp_path / "figures" / "converge_rsd.json").read_text() == (out / "convergence.json").read_text()
    assert (tmp_path / "figures" / "converge_rsd.png").stat().st_size > 0
    # a finished run is not retrained: measuring again gives the same curve from the same snapshots
    assert converge.main([*SMALL, "--out", str(out), "--every", "1", "--images", "1", "--seeds", "2"]) == 0
    again = json.loads((out / "convergence.json").read_text())
    assert again["curve"] == summary["curve"]
    snapshot = torch.load(out / "snapshots" / "step_0002.pt", weights_only=True)
    assert all(torch.equal(snapshot[k], v) for k, v in first.items())
