"""`python -m rsd_mini compare` end to end on a very small budget, and its resume after a kill."""

import argparse
import json
import shutil

import pytest
import torch

from rsd_mini import compare, hub
from rsd_mini.checkpoint import load_checkpoint

SMALL = dict(methods=["regression"], iterations=2, every=1, seeds=2, val_images=1)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """One uninterrupted small comparison (its folder, its summary)."""
    root = tmp_path_factory.mktemp("compare")
    return root, compare.run(root / "out", figures=root / "figures", **SMALL)


def test_compare_writes_its_table_curves_and_figures(whole):
    root, summary = whole
    assert list(summary["methods"]) == ["teacher", "regression", "teacher_1step", "bicubic"]
    teacher, regression = summary["methods"]["teacher"], summary["methods"]["regression"]
    assert teacher["patch_ratio"] == pytest.approx(1.0) and teacher["nfe"] == 15 and regression["nfe"] == 1
    assert summary["methods"]["bicubic"]["diversity"] == 0 and regression["steps_trained"] == 2
    assert regression["network_passes"] == 2 * 2 and summary["budget"]["rule"] == "2 student updates for every method"
    assert [row["step"] for row in summary["curves"]["regression"]] == [0, 1, 2]
    for name in ("compare.json", "compare.md", "compare_curves.png", "compare_samples.png"):
        assert (root / "figures" / name).read_bytes() == (root / "out" / name).read_bytes()
    assert json.loads((root / "out" / "compare.json").read_text())["seeds"] == 2
    assert "| regression (MSE) | 1 |" in (root / "out" / "compare.md").read_text()


def test_compare_resumes_an_interrupted_run_exactly(whole, tmp_path, monkeypatch):
    root, summary = whole
    split = tmp_path / "split"
    split.mkdir()
    shutil.copy(root / "out" / "teacher_reference.pt", split)  # the cached teacher sets are reused
    real, calls = compare.distance_to_teacher, []

    def killed_at_the_second_probe(samples, reference):
        calls.append(1)
        if len(calls) == 2:  # after update 1 was checkpointed, before its curve row was written
            raise KeyboardInterrupt
        return real(samples, reference)

    monkeypatch.setattr(compare, "distance_to_teacher", killed_at_the_second_probe)
    with pytest.raises(KeyboardInterrupt):
        compare.run(split, **SMALL)
    assert [json.loads(line)["step"] for line in (split / "regression/curve.jsonl").open()] == [0]
    monkeypatch.setattr(compare, "distance_to_teacher", real)
    resumed = compare.run(split, **SMALL)

    def without_wall_time(curves):
        return [{k: v for k, v in row.items() if k != "train_seconds"} for row in curves["regression"]]

    assert without_wall_time(resumed["curves"]) == without_wall_time(summary["curves"])
    whole_state, split_state = (load_checkpoint(run / "regression/last.pt") for run in (root / "out", split))
    for key, value in whole_state["ema"].items():
        torch.testing.assert_close(split_state["ema"][key], value, rtol=0, atol=0)


def test_compare_trains_methods_in_parallel_processes(whole, tmp_path):
    root, summary = whole
    shutil.copy(root / "out" / "teacher_reference.pt", tmp_path)
    parallel = compare.run(tmp_path, **dict(SMALL, methods=["regression", "sinsr"]), jobs=2)
    assert [parallel["methods"][m]["steps_trained"] for m in ("regression", "sinsr")] == [2, 2]
    assert "regression" in (tmp_path / "regression" / "train.log").read_text()  # its progress went to its log

    def without_wall_time(rows):
        return [{k: v for k, v in row.items() if k != "train_seconds"} for row in rows]

    # a method trained in its own process is the method trained in this one, update for update
    assert without_wall_time(parallel["curves"]["regression"]) == without_wall_time(summary["curves"]["regression"])


def test_teacher_reference_in_two_threads_draws_the_same_sets(whole, tmp_path):
    """``--jobs 2`` draws the teacher's reference and floor sets side by side: the same samples."""
    root, _ = whole
    stored = torch.load(root / "out" / "teacher_reference.pt", weights_only=True)
    config = compare.load_config("rsd-tiny")
    _, y = compare.pixel_space_pair(compare.validation_batch(config, SMALL["val_images"]), config.data.scale)
    teacher = hub.load(compare.TEACHER)
    side_by_side = compare.teacher_reference(teacher, y, SMALL["seeds"], tmp_path / "reference.pt", workers=2)
    assert stored["key"] == side_by_side["key"]
    for name in ("reference", "floor"):
        torch.testing.assert_close(side_by_side[name], stored[name], rtol=0, atol=0)
    assert not torch.equal(side_by_side["reference"], side_by_side["floor"])


def test_compare_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"methods=\['gan'\]: expected names from"):
        compare.run(tmp_path, ["gan"], 2, 1, 2, 1)
    with pytest.raises(ValueError, match="seeds=1: expected >= 2"):
        compare.run(tmp_path, ["rsd"], 2, 1, 1, 1)
    with pytest.raises(ValueError, match="every=0: expected >= 1"):
        compare.train_with_curve(object(), lambda trainer: {}, 0)
    parser = argparse.ArgumentParser()
    compare.add_compare_arguments(parser)
    args = parser.parse_args(["--methods", "rsd", "sinsr", "--iterations", "3"])
    assert args.methods == ["rsd", "sinsr"] and args.iterations == 3 and args.seeds == 8
    assert parser.parse_args([]).iterations is None  # default: each preset's own length (matched passes)
    assert parser.parse_args(["--jobs", "2"]).jobs == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["--jobs", "0"])


def _rows(ratios, hf=1.0, div=1.0):
    return [dict(step=25 * i, patch_ratio=r, high_frequency_ratio_to_teacher=hf, diversity_ratio=div)
            for i, r in enumerate(ratios)]


def test_converge_and_stay_checks_each_part_of_the_goal():
    good = compare.converge_and_stay(_rows([2.0, 1.5, 1.15, 1.1, 1.12, 1.1, 1.11]))
    assert good["passed"] and good["first_reached"] == 50 and good["last_step"] == 150
    assert not compare.converge_and_stay(_rows([2.0, 1.5, 1.3, 1.19]))["long_enough"]  # got there at the end
    overshoot = compare.converge_and_stay(_rows([2.0, 1.1, 1.0, 1.05, 1.3, 1.5, 1.8]))
    assert not overshoot["final_at_floor"] and not overshoot["stays"] and not overshoot["passed"]
    wobbly = compare.converge_and_stay(_rows([2.0, 1.1, 1.0, 0.8, 1.15, 0.85, 1.0]))
    assert wobbly["final_at_floor"] and not wobbly["stays"]
    assert not compare.converge_and_stay(_rows([1.0, 1.0, 1.0], hf=1.2))["high_frequency"]
    assert not compare.converge_and_stay(_rows([1.0, 1.0, 1.0], div=0.8))["passed"]
    with pytest.raises(ValueError, match="rows=\\[\\]"):
        compare.converge_and_stay([])


def test_fake_lr_ratio_sets_the_fake_models_learning_rate(tmp_path):
    from rsd_mini.config import apply_overrides, load_config

    trainer = compare.build_trainer("rsd", tmp_path, 1, None)
    assert trainer.optimizer_fake.param_groups[0]["lr"] == trainer.optimizer.param_groups[0]["lr"]
    config = apply_overrides(trainer.config, ["distill.fake_lr_ratio=2.5"])
    faster = type(trainer)(config, teacher=trainer.teacher, device="cpu")
    assert faster.optimizer_fake.param_groups[0]["lr"] == pytest.approx(2.5 * faster.optimizer.param_groups[0]["lr"])
    with pytest.raises(ValueError, match="distill.fake_lr_ratio=0.0: expected > 0"):
        apply_overrides(load_config("rsd-tiny"), ["distill.fake_lr_ratio=0"])
