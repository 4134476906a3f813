"""The toy with a known answer (rsd_mini.toy): exact sampler and denoiser, energy distance, mode
measures, SinSR's deterministic sampler and losses, the expected ordering, the CLI."""

import argparse
import json
import math
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from rsd_mini import toy
from rsd_mini.diffusion import ResShift


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


def test_conditional_density_integrates_to_one_and_peaks_on_the_modes():
    config = toy.ToyConfig(modes=3)
    v = torch.linspace(-2, 2, 40001, dtype=torch.float64)
    density = toy.conditional_density(v, 0.5, config)
    assert float(density.sum() * (v[1] - v[0])) == pytest.approx(1.0, abs=1e-4)
    centres = toy.mode_centres(torch.tensor([0.5], dtype=torch.float64), 3)[0]
    peak = 1 / (3 * config.mode_std * math.sqrt(2 * math.pi))
    assert torch.allclose(toy.conditional_density(centres, 0.5, config), torch.full((3,), peak, dtype=torch.float64), rtol=1e-3)


def test_energy_distance_separates_shifted_samples():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g)
    assert abs(toy.energy_distance(a, b)) < 0.02
    assert toy.energy_distance(a, b + 1.0) > 0.5


@pytest.mark.parametrize("modes", [2, 3, 5])
def test_mode_measures_exact_samples_land_on_the_modes_with_equal_mass(modes):
    config = toy.ToyConfig(modes=modes)
    u = 0.3
    exact = toy.sample_conditional(torch.full((8000,), u), config, torch.Generator().manual_seed(2))
    on_mode, masses = toy.mode_measures(exact, u, config)
    assert on_mode == pytest.approx(0.997, abs=0.003)  # P(|z| ≤ 3) for a normal z
    assert torch.allclose(masses, torch.full((modes,), on_mode / modes), atol=0.02)
    assert toy.mass_error(masses) < 0.03
    centres = toy.mode_centres(torch.tensor([u]), modes)[0]
    at_centres = torch.stack([torch.full((modes * 10,), u), centres.repeat(10)], 1)
    on_mode, masses = toy.mode_measures(at_centres, u, config)
    assert on_mode == 1.0 and torch.allclose(masses, torch.full((modes,), 1 / modes)) and toy.mass_error(masses) < 1e-6


def test_mode_measures_score_a_smear_and_a_collapse_low():
    config = toy.ToyConfig(modes=3)
    u = 0.3
    g = torch.Generator().manual_seed(3)
    smear = torch.stack([torch.full((8000,), u), torch.rand(8000, generator=g) * 2.4 - 1.2], 1)
    on_mode, masses = toy.mode_measures(smear, u, config)
    assert on_mode < 0.45 and toy.mass_error(masses) > 0.5  # 3 discs of width 0.3 cover 0.9 of 2.4
    off_in_u = toy.sample_conditional(torch.full((8000,), u + 0.2), config, g)  # right v, wrong u
    assert toy.mode_measures(off_in_u, u, config)[0] < 0.05
    centre = toy.mode_centres(torch.tensor([u]), 3)[0, 0]
    collapsed = torch.stack([torch.full((100,), u), torch.full((100,), float(centre))], 1)
    on_mode, masses = toy.mode_measures(collapsed, u, config)
    assert on_mode == 1.0 and toy.mass_error(masses) == pytest.approx(2 / 3)


def test_exact_denoiser_is_the_conditional_mean_and_its_sampler_resolves_the_modes():
    config = toy.ToyConfig(modes=3)
    process = config.process()
    exact = toy.ExactDenoiser(process, config)
    g = torch.Generator().manual_seed(4)
    x0, y = toy.sample_prior(20000, config, g)
    t = torch.full((20000,), 2)
    x_in = process.scale_input(process.q_sample(x0, y, t, torch.randn(x0.shape, generator=g)), t)
    best = (exact(x_in, t, lq=y) - x0).pow(2).mean()
    for other in (exact(x_in, t, lq=y) * 1.03, exact(x_in, t, lq=y) + 0.02):  # the MSE optimum
        assert best < (other - x0).pow(2).mean()
    u = 0.5
    y = torch.tensor([[u, 0.0]]).expand(2000, 2).contiguous()
    samples = process.sample(exact, y, generator=g, clip=False)
    on_mode, masses = toy.mode_measures(samples, u, config)
    assert on_mode > 0.9 and toy.mass_error(masses) < 0.1, (on_mode, masses)


def test_exact_sampler_study_shows_the_last_call_fed_off_the_modes_at_kappa_1_not_at_one_half():
    """At κ = 1 the 15-step sampler hands its last call inputs off the modes far more often than
    the forward process trains it on (the exact denoiser pulls them back); κ = 0.5 shrinks that."""
    wide, narrow = (toy.exact_sampler_study(toy.ToyConfig(modes=4, kappa=kappa, eval_conditions=4), samples=1500)
                    for kappa in (1.0, 0.5))
    assert wide["last_input_off"] > 4 * wide["forward_off"] and wide["last_input_off"] > 0.1, wide
    assert narrow["last_input_off"] < 0.5 * wide["last_input_off"], (narrow, wide)
    assert narrow["on_mode"] > wide["on_mode"] > 0.9, (narrow, wide)
    assert 0 <= narrow["forward_off"] < wide["forward_off"] < 0.05, (narrow, wide)


def test_expected_floor_is_the_energy_distance_bias_and_the_drawn_floors_scatter_around_it():
    """The closed form 2 E‖X − X′‖ / n against a Monte-Carlo E‖X − X′‖, and the mean of many drawn
    floors (the "exact" row of a run) against the closed form, within 4 standard errors."""
    config = toy.ToyConfig(modes=4, eval_conditions=3, eval_samples=100, seed=5)
    g = torch.Generator().manual_seed(0)
    mean_gaps = []
    for u in toy.evaluation_conditions(config).tolist():
        pair = [toy.sample_conditional(torch.full((200_000,), u, dtype=torch.float64), config, g) for _ in range(2)]
        mean_gaps.append(float((pair[0] - pair[1]).norm(dim=1).mean()))
    monte_carlo = 2 * sum(mean_gaps) / len(mean_gaps) / config.eval_samples
    assert toy.expected_floor(config) == pytest.approx(monte_carlo, rel=0.01)
    drawn = toy.floor_draws(config, 400)
    assert drawn.unique().numel() == 400 and (drawn > 0).all()
    assert abs(float(drawn.mean()) - toy.expected_floor(config)) < 4 * float(drawn.std()) / 20, drawn.mean()
    assert toy.expected_floor(replace(config, eval_samples=400)) == pytest.approx(toy.expected_floor(config) / 4)
    assert torch.equal(toy.floor_draws(config, 3), drawn[:3])  # its own generator: reproducible
    with pytest.raises(ValueError, match="draws=0"):
        toy.floor_draws(config, 0)


def test_deterministic_sampler_puts_the_implied_noise_back():
    """SinSR's update, written the way RSD_SPEC §3 derives it, on a 3-step process."""
    process = ResShift(3, 1.5, 0.1)

    def model(x, t, lq=None):
        return torch.tanh(x * (1 + t[:, None])) + 0.1 * lq

    g = torch.Generator().manual_seed(5)
    y, x_T = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g)
    x = x_T
    for i in (2, 1, 0):
        t = torch.full((6,), i)
        f = model(process.scale_input(x, t), t, lq=y)
        if i == 0:
            x = f
            break
        eta, eta_prev = float(process.etas[i]), float(process.etas[i - 1])
        noise = (x - (1 - eta) * f - eta * y) / (process.kappa * math.sqrt(eta))
        x = (1 - eta_prev) * f + eta_prev * y + process.kappa * math.sqrt(eta_prev) * noise
    assert torch.allclose(toy.deterministic_sample(process, model, y, x_T), x, atol=1e-6)


def test_student_starts_as_the_teacher():
    teacher = toy.ToyMLP()
    student = toy.add_noise_input(teacher, 1)
    x, y, t = torch.randn(5, 2), torch.randn(5, 2), torch.arange(5)
    assert torch.equal(teacher(x, t, lq=y), student(x, t, lq=y, noise=torch.randn(5, 1)))


def test_sinsr_reduces_its_losses_and_is_a_deterministic_one_step_map():
    config = toy.ToyConfig(teacher_iterations=150, student_iterations=150, batch=128)
    process = config.process()
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    teacher = toy.train_teacher(process, config, g)
    log = []
    student = toy.train_sinsr(process, teacher, config, g, log=log)
    assert set(log[0]) == {"distill", "inverse", "consistency"} and len(log) == config.student_iterations
    first, last = ({name: sum(row[name] for row in rows) / 15 for name in log[0]} for rows in (log[:15], log[-15:]))
    assert sum(last.values()) < 0.8 * sum(first.values()), (first, last)
    assert last["distill"] < 0.8 * first["distill"] and last["consistency"] < 0.8 * first["consistency"], (first, last)
    assert last["inverse"] < first["inverse"], (first, last)  # x_T's noise in u is lost by F: a high floor
    assert student.noise_dim == 0  # SinSR's student has no noise input: x_T decides its output
    y = torch.tensor([[0.2, 0.0]]).expand(64, 2).contiguous()
    x_T = process.prior_sample(y, torch.randn(y.shape, generator=g))
    t = torch.full((64,), config.steps - 1)
    once = student(process.scale_input(x_T, t), t, lq=y)
    assert torch.equal(once, student(process.scale_input(x_T, t), t, lq=y))
    target = toy.deterministic_sample(process, teacher, y, x_T)
    assert torch.equal(target, toy.deterministic_sample(process, teacher, y, x_T))
    before = (teacher(process.scale_input(x_T, t), t, lq=y) - target).pow(2).mean()
    assert (once - target).pow(2).mean() < before  # closer to the teacher's map than at the start


@pytest.fixture(scope="module")
def fast_result():
    return toy.run_toy(toy.ToyConfig(seed=0, modes=3, **toy.FAST), snapshots=2)


def test_fast_toy_gives_the_expected_ordering(fast_result):
    r = fast_result
    assert r["rsd_ed"] < 0.5 * r["regression_ed"], r
    assert r["teacher_ed"] < 0.5 * r["regression_ed"], r
    assert r["exact_ed"] < r["teacher_ed"]
    # FAST budget (κ = 0.5): teacher ≈ 0.98, RSD ≈ 0.76 on a mode (seed 0; RSD has 400 of its 3200
    # default updates); a smear over [−1.2, 1.2] gives 0.4
    assert r["teacher_on_mode"] > 0.9 and r["rsd_on_mode"] > 0.6, r
    # K = 3: the conditional mean sits on the middle mode, so regression is "on a mode" but
    # puts all its mass there; the mass error catches it.
    assert r["regression_mass_error"] > 0.5 > r["rsd_mass_error"], r
    assert [step for step, _ in r["snapshots"]] == [0, 200, 400]


def test_same_seed_same_numbers():
    config = toy.ToyConfig(seed=1, modes=2, teacher_iterations=40, student_iterations=4, eval_conditions=2,
                           eval_samples=60)
    first, again = toy.run_toy(config), toy.run_toy(config)
    assert toy.result_to_json(first) | {"seconds": 0, "train_seconds": 0} == \
        toy.result_to_json(again) | {"seconds": 0, "train_seconds": 0}


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="modes=7"):
        toy.ToyConfig(modes=7)
    with pytest.raises(ValueError, match="seed=-1"):
        toy.ToyConfig(seed=-1)
    for kappa in (0, -0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=f"kappa={kappa!r}"):
            toy.ToyConfig(kappa=kappa)
    result = subprocess.run([sys.executable, "-m", "rsd_mini", "toy", "--modes", "9"], capture_output=True, text=True)
    assert result.returncode != 0 and "modes=9" in result.stderr
    parser = argparse.ArgumentParser()
    toy.add_cli_arguments(parser)
    with pytest.raises(SystemExit, match="--samples needs --json"):
        toy.main(parser.parse_args(["--samples"]))
    with pytest.raises(SystemExit, match="--samples with --exact-only"):
        toy.main(parser.parse_args(["--samples", "--json", "x.json", "--exact-only"]))
    with pytest.raises(SystemExit, match="--samples with --floor-draws"):
        toy.main(parser.parse_args(["--samples", "--json", "x.json", "--floor-draws", "3"]))
    with pytest.raises(SystemExit, match="--exact-only with --floor-draws"):
        toy.main(parser.parse_args(["--exact-only", "--floor-draws", "3"]))
    result = subprocess.run([sys.executable, "-m", "rsd_mini", "toy", "--floor-draws", "0"], capture_output=True, text=True)
    assert result.returncode != 0 and "--floor-draws" in result.stderr and "got '0'" in result.stderr


def test_cli_exact_only_trains_nothing_and_writes_the_study(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(toy, "train_all", None)  # any training would fail
    monkeypatch.setattr(toy, "exact_sampler_study", lambda config: dict(on_mode=0.9, ed=0.01, last_input_off=0.2,
                                                                        forward_off=0.02))
    parser = argparse.ArgumentParser()
    toy.add_cli_arguments(parser)
    out = tmp_path / "exact.json"
    assert toy.main(parser.parse_args(["--modes", "4", "--kappa", "0.5", "--exact-only", "--json", str(out)])) == 0
    saved = json.loads(out.read_text())
    assert saved["config"]["kappa"] == 0.5 and saved["config"]["modes"] == 4 and saved["last_input_off"] == 0.2
    assert "sampler 20.0%, forward process 2.0%" in capsys.readouterr().out


def test_cli_floor_draws_trains_nothing_and_writes_the_spread(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(toy, "train_all", None)  # any training would fail
    parser = argparse.ArgumentParser()
    toy.add_cli_arguments(parser)
    out = tmp_path / "floor.json"
    assert toy.main(parser.parse_args(["--seed", "1", "--modes", "5", "--floor-draws", "5", "--json", str(out)])) == 0
    saved = json.loads(out.read_text())
    config = toy.ToyConfig(seed=1, modes=5)
    assert saved["expected"] == toy.expected_floor(config) and saved["config"]["modes"] == 5
    assert saved["draws"] == pytest.approx(toy.floor_draws(config, 5).tolist(), abs=1e-6)
    low, median, high = saved["quantiles_5_50_95"]
    assert min(saved["draws"]) <= low <= median <= high <= max(saved["draws"])
    assert f"expected {saved['expected']:.4f}; 5 draws" in capsys.readouterr().out


def test_cli_writes_json_with_every_method_and_the_samples(tmp_path, monkeypatch):
    monkeypatch.setattr(toy, "FAST", dict(toy.FAST, teacher_iterations=30, student_iterations=toy.SNAPSHOTS,
                                          eval_conditions=2, eval_samples=50))
    parser = argparse.ArgumentParser()
    toy.add_cli_arguments(parser)
    out = tmp_path / "toy.json"
    assert toy.main(parser.parse_args(["--seed", "2", "--modes", "2", "--fast", "--json", str(out), "--samples",
                                       "--kappa", "0.5", "--student-iterations", str(2 * toy.SNAPSHOTS)])) == 0
    saved = json.loads(out.read_text())
    assert saved["config"]["kappa"] == 0.5 and saved["config"]["student_iterations"] == 2 * toy.SNAPSHOTS
    assert saved["config"]["teacher_iterations"] == 30  # the rest of the --fast budget is kept
    for name in ("exact", "teacher", "teacher_ddim", "rsd", "vsd", "sinsr", "regression"):
        assert {f"{name}_ed", f"{name}_on_mode", f"{name}_mass_error", f"{name}_masses"} <= saved.keys()
        assert len(saved[f"{name}_masses"]) == 2
    assert saved["modes"] == 2 and set(saved["train_seconds"]) == {"teacher", "rsd", "vsd", "sinsr", "regression"}
    loaded = toy.load_result(out)
    assert loaded["config"].modes == 2 and len(loaded["samples"]) == 2
    assert loaded["snapshots"][0][0] == 0 and len(loaded["snapshots"]) == toy.SNAPSHOTS + 1
    first = next(iter(loaded["samples"].values()))
    assert set(first) == set(toy.METHODS) and first["rsd"].shape == (50,)
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({k: v for k, v in saved.items() if k not in ("samples", "snapshots")}))
    with pytest.raises(ValueError, match="--samples"):
        toy.load_result(plain)
