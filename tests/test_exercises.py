"""Every exercise checker of ``rsd_mini.exercises`` tells the three outcomes apart: a correct
answer → ``"correct"`` (printed), a wrong one → ``AssertionError`` naming the first failing case,
an answer that still raises ``NotImplementedError`` → ``"not attempted"`` and a one-line hint.

The correct answers here are written independently of the notebooks' solutions (library calls
or another closed form where there is one); the wrong ones are the mistakes students make."""

import math

import pytest
import torch
from torch import nn

from rsd_mini import distill, exercises, metrics, toy
from rsd_mini.degradations import Degradation, bicubic_upsample, blur_kernel
from rsd_mini.diffusion import ResShift
from rsd_mini.fullscale import tables

V1 = ResShift.from_preset("resshift-v1")
M, S, SIGMA = 0.3, 0.5, 0.8
K = S ** 2 / (S ** 2 + SIGMA ** 2)


class TinyDenoiser(nn.Module):
    """A Denoiser with the UNet's call signature: x̂₀ = conv([x_t, lq]) + a per-t bias."""

    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(6, 3, 3, padding=1)
        self.bias = nn.Embedding(15, 3)

    def forward(self, x, t, lq):
        t = torch.as_tensor(t).expand(x.shape[0])
        return self.conv(torch.cat([x, lq], 1)) + self.bias(t)[:, :, None, None]


def _images(seed: int, count: int = 4, size: int = 16) -> torch.Tensor:
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


X0, Y0 = _images(0), _images(1)
TEACHER, FAKE = TinyDenoiser(0), TinyDenoiser(1)
DATASET = [{"hr": _images(10 + i, 1, 32)[0], "lq": _images(20 + i, 1, 8)[0]} for i in range(8)]
TABLE = {"teacher, 15 calls": {"ms": 30.0}, "RSD student": {"ms": 2.5}}
DRAWS = torch.rand(3, 2, 3, 8, 8, generator=torch.Generator().manual_seed(3))


def _forward_step(x_prev, x0, y0, i, process, generator, noise_scale=lambda alpha: alpha.sqrt()):
    alpha = process.etas[i] - (process.etas[i - 1] if i else 0)
    return x_prev + alpha * (y0 - x0) + process.kappa * noise_scale(alpha) * torch.randn(
        x_prev.shape, generator=generator, dtype=x_prev.dtype)


def _skip_posterior(process, s, t, variance_factor=1.0):
    ratio = float(process.etas[s] / process.etas[t])
    return ratio, 1 - ratio, variance_factor * process.kappa ** 2 * (float(process.etas[s]) - ratio ** 2 * float(process.etas[t]))


def _spread_gradient(a):  # dL/da of L(a) = (k_a − k)²(a² + σ²), differentiated by hand
    k_a = a ** 2 / (a ** 2 + SIGMA ** 2)
    dk_a = 2 * a * SIGMA ** 2 / (a ** 2 + SIGMA ** 2) ** 2
    return 2 * (k_a - K) * dk_a * (a ** 2 + SIGMA ** 2) + (k_a - K) ** 2 * 2 * a


def _fake_loss(process, fake, x0_hat, y0, t, noise, detach=True):
    target = x0_hat.detach() if detach else x0_hat
    x_t = process.q_sample(target, y0, t, noise)
    return (fake(process.scale_input(x_t, t, latent=False), t, lq=y0) - target).pow(2).mean((1, 2, 3))


def _rsd_better(table, flip_lpips=False):
    out = set()
    for column in table.columns:
        if column.dataset == "realsr":
            higher = tables.METRICS[column.metric][2] or (flip_lpips and column.metric == "lpips")
            difference = table.value("RSD", column) - table.value("SinSR", column)
            if (difference > 0) == higher and difference != 0:
                out.add(column.metric)
    return out


def _solve_two(ms_many, nfe_many, ms_one, nfe_one):
    solution = torch.linalg.solve(torch.tensor([[nfe_many, 1.0], [nfe_one, 1.0]], dtype=torch.float64),
                                  torch.tensor([ms_many, ms_one], dtype=torch.float64))
    return float(solution[0]), float(solution[1])


# checker, context, correct answer, wrong answer, words the wrong-answer message must contain
CASES = {
    "forward_step": (exercises.check_forward_step, (V1,), _forward_step,
                     lambda *a: _forward_step(*a, noise_scale=lambda alpha: alpha), "t=1: variance off by"),
    "cap_threshold": (exercises.check_cap_threshold, (), lambda kappa: max(kappa, 1) * math.sqrt(0.001),
                      lambda kappa: kappa * math.sqrt(0.001), "κ=0.5: just above"),
    "scale": (exercises.check_scale, (V1,), lambda x, eta, kappa, v: x / (v + kappa ** 2 * eta) ** 0.5,
              lambda x, eta, kappa, v: x / (1 + kappa ** 2 * eta) ** 0.5, "t=1: scaled std"),
    "gaussian_kernel": (exercises.check_gaussian_kernel, (), lambda size, sigma: blur_kernel("iso", size, sigma),
                        lambda size, sigma: blur_kernel("iso", size, 1.1 * sigma), "size 21, σ 0.2: differs"),
    "make_lr": (exercises.check_make_lr, ((_images(5, 1, 64) + 1) / 2,),
                lambda hr, seed: Degradation("realesrgan-light")(hr, torch.Generator().manual_seed(seed)),
                lambda hr, seed: Degradation("realesrgan-light")(hr, torch.default_generator), "seed 123 twice"),
    "bicubic_baseline": (exercises.check_bicubic_baseline, (DATASET,),
                         lambda data, count: float(sum(metrics.psnr(metrics.to_unit_range(bicubic_upsample(d["lq"][None])),
                                                                    metrics.to_unit_range(d["hr"][None]))[0]
                                                       for d in data[:count]) / count),
                         lambda data, count: float(sum(metrics.psnr(metrics.to_unit_range(bicubic_upsample(d["lq"][None])),
                                                                    metrics.to_unit_range(d["hr"][None]), y_channel=False)[0]
                                                       for d in data[:count]) / count), "8 crops:"),
    "elbo_weights": (exercises.check_elbo_weights, (V1,),
                     lambda p: torch.stack([p.alphas[t] / (2 * p.kappa ** 2 * p.etas[t] * p.etas[t - 1]) for t in range(1, p.steps)]),
                     lambda p: p.alphas[1:] / (p.kappa ** 2 * p.etas[1:] * p.etas_prev[1:]), "t=2: w_t"),
    "skip_posterior": (exercises.check_skip_posterior, (V1,), _skip_posterior,
                       lambda p, s, t: _skip_posterior(p, s, t, variance_factor=1.5), "s=0, t=1: variance"),
    "ema": (exercises.check_ema, (), lambda rate: next(n for n in range(1, 10 ** 5) if rate ** n < 0.01),
            lambda rate: round(math.log(0.01) / math.log(rate)), "rate 0.99: after n = 458"),
    "energy_distance": (exercises.check_energy_distance, (), toy.energy_distance,
                        lambda a, b: float(torch.cdist(a, b).mean() - torch.cdist(a, a).mean()), "shift 0.0:"),
    "fake_optimum": (exercises.check_fake_optimum, (S, SIGMA), lambda theta: (K, theta - K * theta),
                     lambda theta: (K, M * (1 - K)), "θ=-0.4: intercept"),
    "envelope_gradient": (exercises.check_envelope_gradient, (M, S, SIGMA), _spread_gradient,
                          lambda a: 2 * (a ** 2 / (a ** 2 + SIGMA ** 2) - K) * a, "a=0.3: gradient -0.09"),
    "nodes": (exercises.check_nodes, (), distill.multistep_nodes,
              lambda steps, count: tuple(int(n * steps / count) - 1 for n in range(1, count + 1)), "T=4, N=3:"),
    "vsd_gradient": (exercises.check_vsd_gradient, (V1, TEACHER, FAKE, X0, Y0),
                     lambda f_star, f_phi, numel: -2 * (f_star - f_phi) / numel,
                     lambda f_star, f_phi, numel: 2 * (f_star - f_phi) / numel, "sample 0: differs"),
    "fake_loss": (exercises.check_fake_loss, (V1, FAKE, X0.clone().requires_grad_(True), Y0), _fake_loss,
                  lambda *a: _fake_loss(*a, detach=False), "sends gradients into x̂₀"),
    "psnr": (exercises.check_psnr, ((X0 + 1) / 2, (Y0 + 1) / 2),
             lambda a, b: -10 * torch.log10((a - b).pow(2).mean((1, 2, 3))),
             lambda a, b: 20 * torch.log10(1 / (a - b).pow(2).mean((1, 2, 3))), "image 0:"),
    "speedup": (exercises.check_speedup, (TABLE,), lambda table: 12.0, lambda table: 15.0, "15.000x, the table says 12.000x"),
    "diversity": (exercises.check_diversity, (DRAWS,), metrics.diversity,
                  lambda samples: samples.var(0).flatten(1).mean(1), "image 0:"),
    "improvement": (exercises.check_improvement, (),
                    lambda paper, ours, higher: (1 if higher else -1) * (ours / paper - 1) * 100,
                    lambda paper, ours, higher: (ours / paper - 1) * 100, "paper 0.2726, ours 0.25"),
    "rsd_better": (exercises.check_rsd_better, (tables.paper_table(1), tables.METRICS), _rsd_better,
                   lambda table: _rsd_better(table, flip_lpips=True), "missing ['lpips']"),
    "call_and_overhead": (exercises.check_call_and_overhead, (), _solve_two,
                          lambda ms_many, nfe_many, ms_one, nfe_one: (ms_many / nfe_many, 0.0), "per call 42"),
}


def _not_attempted(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("name", CASES)
def test_a_correct_answer_is_correct(name, capsys):
    checker, context, correct, _, _ = CASES[name]
    assert checker(correct, *context) == exercises.CORRECT
    printed = capsys.readouterr().out.strip()
    assert printed.startswith(checker.label) and ": correct — " in printed, printed


@pytest.mark.parametrize("name", CASES)
def test_a_wrong_answer_fails_with_the_first_failing_case(name):
    checker, context, _, wrong, words = CASES[name]
    with pytest.raises(AssertionError) as error:
        checker(wrong, *context)
    assert str(error.value).startswith(f"{checker.label}: wrong — "), str(error.value)
    assert words in str(error.value), str(error.value)


@pytest.mark.parametrize("name", CASES)
def test_an_answer_not_attempted_prints_one_hint_and_passes(name, capsys):
    checker, context, _, _, _ = CASES[name]
    assert checker(_not_attempted, *context) == exercises.NOT_ATTEMPTED
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and printed.startswith(f"{checker.label}: not attempted — hint: "), printed


def test_every_checker_is_tested():
    checkers = {name for name in dir(exercises) if name.startswith("check_")}
    assert checkers == {CASES[name][0].__name__ for name in CASES}


def test_mismatched_context_is_named():
    with pytest.raises(ValueError, match=r"y0 has shape \(2, 3, 16, 16\): expected x0_hat's shape \(4, 3, 16, 16\)"):
        exercises.check_fake_loss(_fake_loss, V1, FAKE, X0, Y0[:2])


def test_errors_other_than_not_implemented_are_not_hidden():
    def broken(*args):
        raise TypeError("a bug in the answer")

    with pytest.raises(TypeError, match="a bug in the answer"):
        exercises.check_nodes(broken)
