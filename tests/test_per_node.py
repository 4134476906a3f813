"""Per-node distances of a multistep student (`python -m rsd_mini.per_node`) on one crop."""

import json
from types import SimpleNamespace

import pytest
import torch

from rsd_mini import hub, per_node
from rsd_mini.compare import TEACHER


def test_per_node_cli_writes_rows_per_node_and_the_figure(tmp_path):
    out = tmp_path / "out"
    assert per_node.main(["tiny-student", "--nodes", "2", "--images", "1", "--seeds", "2", "--out", str(out),
                          "--figures", str(tmp_path)]) == 0
    summary = json.loads((out / "per_node.json").read_text())
    assert summary["nodes"] == [8, 15] and summary["update_share"] == {"8": 0.5, "15": 0.5}
    for row in summary["rows"]:
        assert row["student_tiny-student"]["diversity"] > 0 and row["teacher_1step"]["diversity"] > 0
        assert row["student_tiny-student"]["patch_floor"] == row["teacher_1step"]["patch_floor"] > 0
    assert (tmp_path / "per_node.json").read_text() == (out / "per_node.json").read_text()
    assert (tmp_path / "per_node.png").stat().st_size > 0


def test_the_teacher_as_a_noiseless_student_is_the_teachers_one_call(tmp_path):
    teacher = hub.load(TEACHER)
    as_student = SimpleNamespace(network=teacher.network, noise_channels=0)
    summary = per_node.measure({"self": as_student}, nodes=1, images=1, seeds=2, cache=tmp_path / "ref.pt")
    (row,) = summary["rows"]
    assert row["t"] == 15
    assert row["self"] == pytest.approx(row["teacher_1step"], rel=0, abs=1e-6)
    with pytest.raises(ValueError, match="seeds=1"):
        per_node.measure({"self": as_student}, nodes=1, images=1, seeds=1, cache=tmp_path / "ref.pt")


def test_noise_kept_separates_a_copy_of_the_input_from_an_output_without_its_noise():
    from rsd_mini.diffusion import ResShift

    process = ResShift.from_preset("resshift-v1")
    g = torch.Generator().manual_seed(123)  # not noise_kept's seed: its noise must be independent of x0
    x0, y = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1, torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    copy = per_node.noise_kept(process, lambda x, t, lq: x, 3, 0, x0, y)  # returns x_t (scaled)
    blank = per_node.noise_kept(process, lambda x, t, lq: torch.zeros_like(x), 3, 0, x0, y)
    assert copy > 0.5 and abs(blank) < 0.05


def test_per_node_refuses_names_that_do_not_match_the_checkpoints(tmp_path, capsys):
    for names in (["a"], ["a", "a"]):
        with pytest.raises(SystemExit) as error:
            per_node.main(["tiny-student", "tiny-sinsr", "--names", *names, "--out", str(tmp_path)])
        assert error.value.code == 2
        assert "expected 2 different names" in capsys.readouterr().err
