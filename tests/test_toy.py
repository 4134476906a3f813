"""The toy with a known answer (rsd_mini.toy): exact sampler, energy distance, expected ordering."""

import json
import subprocess
import sys

import pytest
import torch

from rsd_mini import toy


def test_exact_conditional_has_the_modes_and_weights():
    config = toy.ToyConfig(modes=4)
    g = torch.Generator().manual_seed(0)
    u = torch.full((4000,), 0.5)
    v = toy.sample_conditional(u, config, g)[:, 1]
    centres = toy.mode_centres(u[:1], 4)[0]
    nearest = (v[:, None] - centres[None]).abs().argmin(1)
    shares = torch.bincount(nearest, minlength=4).float() / len(v)
    assert torch.allclose(shares, torch.full((4,), 0.25), atol=0.03)
    assert (v - centres[nearest]).std() == pytest.approx(config.mode_std, rel=0.1)


def test_energy_distance_separates_shifted_samples():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g)
    assert abs(toy.energy_distance(a, b)) < 0.02
    assert toy.energy_distance(a, b + 1.0) > 0.5


def test_student_starts_as_the_teacher():
    teacher = toy.ToyMLP()
    student = toy.add_noise_input(teacher, 1)
    x, y, t = torch.randn(5, 2), torch.randn(5, 2), torch.arange(5)
    assert torch.equal(teacher(x, t, lq=y), student(x, t, lq=y, noise=torch.randn(5, 1)))


@pytest.fixture(scope="module")
def fast_result():
    return toy.run_toy(toy.ToyConfig(seed=0, modes=3, **toy.FAST))


def test_fast_toy_gives_the_expected_ordering(fast_result):
    r = fast_result
    assert r["rsd_ed"] < 0.5 * r["regression_ed"], r
    assert r["teacher_ed"] < 0.5 * r["regression_ed"], r
    assert r["exact_ed"] < r["teacher_ed"]


def test_same_seed_same_numbers(fast_result):
    again = toy.run_toy(toy.ToyConfig(seed=0, modes=3, **toy.FAST))
    assert {k: v for k, v in again.items() if k.endswith("_ed")} == \
        {k: v for k, v in fast_result.items() if k.endswith("_ed")}


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="modes=7"):
        toy.ToyConfig(modes=7)
    with pytest.raises(ValueError, match="seed=-1"):
        toy.ToyConfig(seed=-1)
    result = subprocess.run([sys.executable, "-m", "rsd_mini", "toy", "--modes", "9"], capture_output=True, text=True)
    assert result.returncode != 0 and "modes=9" in result.stderr


def test_cli_writes_json(tmp_path, monkeypatch):
    import argparse

    monkeypatch.setattr(toy, "FAST", dict(toy.FAST, teacher_iterations=50, student_iterations=5,
                                          eval_conditions=2, eval_samples=50))
    parser = argparse.ArgumentParser()
    toy.add_cli_arguments(parser)
    out = tmp_path / "toy.json"
    assert toy.main(parser.parse_args(["--seed", "2", "--modes", "2", "--fast", "--json", str(out)])) == 0
    saved = json.loads(out.read_text())
    assert {"teacher_ed", "rsd_ed", "regression_ed", "vsd_ed"} <= saved.keys() and saved["modes"] == 2
