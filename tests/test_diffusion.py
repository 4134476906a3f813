"""The ResShift process against the official numbers (shared/reference/resshift_schedules.json)."""

import json
import math
from pathlib import Path

import pytest
import torch

from rsd_mini.diffusion import PRESETS, ResShift, sqrt_eta_schedule

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference" / "resshift_schedules.json"
TABLE = json.loads(REFERENCE.read_text())
FIELDS = ["sqrt_etas", "etas", "posterior_mean_coef1", "posterior_mean_coef2", "posterior_variance"]


@pytest.mark.parametrize("name", sorted(TABLE))
@pytest.mark.parametrize("field", FIELDS)
def test_schedule_and_posterior_match_official(name, field):
    config = TABLE[name]["config"]
    process = ResShift(**config)
    ours = getattr(process, field)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, torch.tensor(TABLE[name][field], dtype=torch.float64),
                               atol=1e-6, rtol=0)


def test_presets_are_the_paper_configs():
    v1, v3 = ResShift.from_preset("resshift-v1"), ResShift.from_preset("resshift-v3")
    assert (v1.steps, v3.steps) == (15, 4)
    assert v1.sqrt_etas[0].item() == pytest.approx(0.02)  # min(0.04/2, 0.04)
    assert v3.sqrt_etas[0].item() == pytest.approx(0.1)  # ResShift's rule, not SinSR's cap
    assert v1.etas[-1].item() == pytest.approx(0.9801)
    assert set(PRESETS) == {"resshift-v1", "resshift-v3"}
    with pytest.raises(ValueError, match="resshift-v2"):
        ResShift.from_preset("resshift-v2")


@pytest.mark.parametrize("kwargs, name", [
    (dict(steps=1, min_noise_level=0.04, kappa=2.0), "steps"),
    (dict(steps=15, min_noise_level=-1.0, kappa=2.0), "min_noise_level"),
    (dict(steps=15, min_noise_level=0.04, kappa=0.0), "kappa"),
    (dict(steps=15, min_noise_level=0.04, kappa=2.0, etas_end=1.5), "etas_end"),
])
def test_bad_schedule_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        sqrt_eta_schedule(**kwargs)


def _batch(seed=0, shape=(3, 2, 8, 8)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64)


def test_q_sample_has_the_marginal_moments():
    process = ResShift.from_preset("resshift-v1")
    x0, y = torch.zeros(20000, 1, 1, 1, dtype=torch.float64), torch.ones(20000, 1, 1, 1, dtype=torch.float64)
    torch.manual_seed(0)
    for i in (0, 7, 14):
        x_t = process.q_sample(x0, y, i)
        assert x_t.mean().item() == pytest.approx(process.etas[i].item(), abs=0.05)
        assert x_t.std().item() == pytest.approx(2 * process.sqrt_etas[i].item(), rel=0.03)


def test_posterior_matches_bayes_rule_of_the_transitions():
    """The posterior is the Gaussian product q(x_t|x_{t−1}) q(x_{t−1}|x₀): check it in closed form."""
    process = ResShift.from_preset("resshift-v1")
    x0, y = _batch()
    x_t = process.q_sample(x0, y, 9)
    mean, var = process.posterior(x0, x_t, 9)
    k2, eta_prev, alpha = 4.0, process.etas[8], process.alphas[9]
    prior_mean, prior_var = x0 + eta_prev * (y - x0), k2 * eta_prev     # q(x_{t−1}|x₀, y₀)
    lik_shift, lik_var = alpha * (y - x0), k2 * alpha                  # q(x_t|x_{t−1}, y₀)
    post_var = 1 / (1 / prior_var + 1 / lik_var)
    post_mean = post_var * (prior_mean / prior_var + (x_t - lik_shift) / lik_var)
    torch.testing.assert_close(mean, post_mean)
    torch.testing.assert_close(var, post_var.expand_as(var))


def test_posterior_at_first_step_returns_x0():
    process = ResShift.from_preset("resshift-v3")
    x0, y = _batch(1)
    mean, var = process.posterior(x0, process.q_sample(x0, y, 0), 0)
    torch.testing.assert_close(mean, x0)
    assert var.abs().max() == 0


def test_prior_std_and_scale_input_both_normalisations():
    process = ResShift.from_preset("resshift-v1")
    y = torch.zeros(4, 3, 64, 64)
    torch.manual_seed(0)
    assert process.prior_sample(y).std().item() == pytest.approx(1.98, rel=0.02)
    x = torch.ones(2, 3, 4, 4)
    latent = process.scale_input(x, 14)
    pixel = process.scale_input(x, torch.tensor([0, 14]), latent=False)
    assert latent[0, 0, 0, 0].item() == pytest.approx(1 / 2.218197, rel=1e-5)
    assert pixel[1, 0, 0, 0].item() == pytest.approx(1 / (3 * 2 * 0.99 + 1), rel=1e-5)
    assert pixel[0, 0, 0, 0].item() == pytest.approx(1 / (3 * 2 * 0.02 + 1), rel=1e-5)


@pytest.mark.parametrize("t", [-1, 15, [0, 1]])
def test_bad_timesteps_are_rejected(t):
    process = ResShift.from_preset("resshift-v1")
    x0, y = _batch()
    with pytest.raises(ValueError, match="t"):
        process.q_sample(x0, y, torch.tensor(t))


class Oracle(torch.nn.Module):
    """Returns a fixed x₀: the sampler must then end exactly at it."""

    def __init__(self, x0):
        super().__init__()
        self.x0, self.calls = x0, []

    def forward(self, x, t, lq=None):
        self.calls.append(int(t[0]))
        return self.x0


def test_sampler_calls_every_step_and_ends_at_prediction():
    process = ResShift.from_preset("resshift-v1")
    x0, y = _batch(2)
    oracle = Oracle(x0)
    out, steps = process.sample(oracle, y, generator=torch.Generator().manual_seed(0),
                                return_trajectory=True)
    assert oracle.calls == list(range(14, -1, -1))
    assert len(steps) == 15
    torch.testing.assert_close(out, x0)
    # With an oracle the chain stays on the forward marginal: x_{t−1} ≈ x₀ + η_{t−1}(y−x₀) + noise.
    assert (steps[7].x - x0).abs().mean() < (steps[0].x - x0).abs().mean()


def test_sampler_is_deterministic_given_a_generator():
    process = ResShift.from_preset("resshift-v3")
    _, y = _batch(3)

    def model(x, t, lq=None):
        return 0.5 * x + 0.1 * lq

    a = process.sample(model, y, generator=torch.Generator().manual_seed(5))
    b = process.sample(model, y, generator=torch.Generator().manual_seed(5))
    c = process.sample(model, y, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_training_loss_is_zero_for_the_oracle_and_positive_otherwise():
    process = ResShift.from_preset("resshift-v1")
    x0, y = _batch(4)
    g = torch.Generator().manual_seed(0)
    assert process.training_loss(Oracle(x0), x0, y, generator=g).abs().max() == 0
    loss = process.training_loss(lambda x, t, lq=None: torch.zeros_like(x), x0, y, generator=g)
    assert loss.shape == (x0.shape[0],)
    torch.testing.assert_close(loss, x0.pow(2).flatten(1).mean(1))


def test_training_loss_feeds_the_scaled_input_and_integer_t():
    process = ResShift.from_preset("resshift-v1")
    x0, y = _batch(5)
    seen = {}

    def model(x, t, lq=None):
        seen.update(x=x, t=t, lq=lq)
        return x

    noise = torch.randn_like(x0)
    t = torch.tensor([3, 0, 14])
    process.training_loss(model, x0, y, lq=y[:, :1], t=t, noise=noise)
    expected = process.q_sample(x0, y, t, noise) / torch.sqrt(4 * process.etas[t] + 1).view(-1, 1, 1, 1)
    torch.testing.assert_close(seen["x"], expected)
    assert seen["t"].dtype == torch.long and seen["lq"].shape[1] == 1
    assert math.isclose(process.kappa, 2.0)


def test_respaced_sampling_visits_a_subset_and_all_calls_is_the_full_chain():
    from rsd_mini.diffusion import respaced_indices

    process = ResShift.from_preset("resshift-v1")
    assert respaced_indices(15, 15) == list(range(14, -1, -1))
    assert respaced_indices(15, 4) == [14, 9, 5, 0] and respaced_indices(15, 1) == [14]
    with pytest.raises(ValueError, match="calls=0"):
        respaced_indices(15, 0)
    seen = []

    def model(x, t, lq=None):
        seen.append(int(t[0]))
        return 0.5 * lq

    y = torch.rand(2, 3, 8, 8) * 2 - 1
    full = process.sample(model, y, generator=torch.Generator().manual_seed(0))
    again = process.sample(model, y, generator=torch.Generator().manual_seed(0), calls=15)
    assert torch.equal(full, again)
    seen.clear()
    one = process.sample(model, y, generator=torch.Generator().manual_seed(0), calls=4)
    assert seen == [14, 9, 5, 0] and torch.allclose(one, 0.5 * y)


def test_skip_posterior_with_s_equal_t_minus_1_is_the_one_step_posterior():
    process = ResShift.from_preset("resshift-v1")
    x0, x_t = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    for t in range(1, 15):
        expected = process.posterior(x0, x_t, t)
        jump = process.posterior(x0, x_t, t, s=t - 1)
        torch.testing.assert_close(jump, expected)
    # Jumping t → s keeps the marginal: x_t ~ q(x_t | x₀, y₀) pushed through q(x_s | x_t, x₀, y₀)
    # has mean x₀ + η_s e₀ and variance κ²η_s (the means are linear, so check with y₀ = x₀ + e₀).
    x0, e0 = torch.zeros(1, 1, 1, 1, dtype=torch.float64), torch.ones(1, 1, 1, 1, dtype=torch.float64)
    for t, s in ((10, 3), (14, 0), (5, 2)):
        mean_t = x0 + process.etas[t] * e0
        c_t = (process.posterior(torch.zeros_like(x0), torch.ones_like(x0), t, s=s)[0]).item()
        mean, var = process.posterior(x0, mean_t, t, s=s)
        assert torch.allclose(mean, x0 + process.etas[s] * e0)
        assert math.isclose(c_t ** 2 * process.kappa ** 2 * process.etas[t] + var.item(),
                            process.kappa ** 2 * process.etas[s], rel_tol=1e-10)
