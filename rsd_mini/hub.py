"""Ready-to-use super-resolution models: the shipped tiny checkpoints and any training run.

``rsd_mini.load("tiny-student")`` (or ``"tiny-teacher"``, or a path to a run's ``last.pt`` or a
shipped file) returns an :class:`SRModel`: the network, its ResShift process and how to call it
(T ancestral steps for a teacher, one step for an RSD student).

Shipped files (``data/checkpoints/*.pt``) hold the EMA weights in float16 (to keep the repository
small; loaded back as float32), the full config, and a ``meta`` record: the command that trained
them, the seed, the training time and the held-out metrics.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rsd_mini.checkpoint import load_checkpoint, save_checkpoint
from rsd_mini.config import DistillConfig, RegressionRunConfig, TeacherConfig, config_type, from_dict
from rsd_mini.diffusion import ResShift
from rsd_mini.distill import add_noise_channels
from rsd_mini.errors import UserError
from rsd_mini.fullscale import official, weights
from rsd_mini.fullscale.latent import LatentSR
from rsd_mini.srmodel import SRModel
from rsd_mini.train import load_run_autoencoder
from rsd_mini.unet import SwinUNet

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "data" / "checkpoints"

#: Names of the shipped checkpoints.
SHIPPED: dict[str, Path] = {
    "tiny-teacher": CHECKPOINT_DIR / "tiny_teacher.pt",
    "tiny-student": CHECKPOINT_DIR / "tiny_student.pt",
    "tiny-sinsr": CHECKPOINT_DIR / "tiny_sinsr.pt",
}


def _process(config: TeacherConfig | DistillConfig) -> ResShift:
    d = config.diffusion
    return ResShift(d.steps, d.kappa, d.min_noise_level, d.etas_end, d.power)


def _kind(config) -> tuple[str, int]:
    """(kind, noise channels) of a run's model: a teacher (T calls), an RSD or regression student
    (one call with noise inputs) or a SinSR model ("one-step": one call from x_T, no noise input)."""
    if isinstance(config, TeacherConfig):
        return "teacher", 0
    channels = (config.distill.noise_channels if isinstance(config, DistillConfig)
                else config.regression.noise_channels if isinstance(config, RegressionRunConfig) else 0)
    return ("student" if channels else "one-step"), channels


def from_state(state: dict) -> SRModel:
    """An :class:`SRModel` from a teacher, RSD, SinSR or regression checkpoint (run or shipped)."""
    values = state["config"]
    config = from_dict(config_type(values), values)
    network = SwinUNet(config.unet)
    kind, channels = _kind(config)
    if channels:
        network = add_noise_channels(network, channels)
    network.load_state_dict({k: v.float() for k, v in state["ema"].items()})
    network = network.eval().requires_grad_(False)
    if config.diffusion.latent:  # a run in VQ-f4 latents: its autoencoder comes from the config
        return LatentSR(network, _process(config), kind, config.data.scale, channels, state.get("meta", {}),
                        autoencoder=load_run_autoencoder(config.diffusion.autoencoder, torch.device("cpu")))
    return SRModel(network, _process(config), kind, config.data.scale, channels, state.get("meta", {}))


def load(name_or_path: str | Path, device: str | torch.device = "cpu") -> SRModel:
    """``load("tiny-student")``, ``load("tiny-teacher")``, an official model of the weights
    registry (``load("rsd")``, ``"resshift-v1"``, ``"sinsr-v2"``, ... from the weights folder;
    :func:`rsd_mini.fullscale.official.load_official_model`) or a run's ``load("runs/tiny/student/last.pt")``."""
    if str(name_or_path) in weights.REGISTRY and weights.REGISTRY[str(name_or_path)].kind == "unet":
        return official.load_official_model(str(name_or_path), device=device)
    path = SHIPPED.get(str(name_or_path), Path(name_or_path))
    if not path.is_file():
        official_names = [n for n, spec in weights.REGISTRY.items() if spec.kind == "unet"]
        raise FileNotFoundError(f"checkpoint {str(name_or_path)!r}: not a shipped name ({', '.join(SHIPPED)}), "
                                f"not an official one ({', '.join(official_names)}) and no such file")
    state = load_checkpoint(path)
    missing = [key for key in ("config", "ema") if not isinstance(state, dict) or key not in state]
    if missing:  # e.g. a plain state dict of another network
        raise UserError(f"{str(name_or_path)!r} is not an rsd_mini checkpoint (no {missing[0]!r} "
                         f"entry); expected a run's last.pt, a shipped name ({', '.join(SHIPPED)}) or an "
                         "official name (rsd, resshift-v1, sinsr-v2, ...) whose file is in the weights folder")
    return from_state(state).to(device)


def export(run_checkpoint: str | Path, out: str | Path, meta: dict) -> Path:
    """Write a shippable file from a run's ``last.pt``: EMA weights in float16, config, ``meta``."""
    state = load_checkpoint(run_checkpoint)
    small = dict(ema={k: v.half() if v.is_floating_point() else v for k, v in state["ema"].items()},
                 config=state["config"], meta=dict(meta, steps_trained=state["step"],
                                                   train_seconds=round(state["seconds"], 1)))
    return save_checkpoint(out, small)


def ship_tiny(run_dir: str | Path = "runs/tiny", command: str = "make reproduce") -> dict[str, Path]:
    """Export the teacher and student of a finished tiny reproduction (``run_dir`` of
    :func:`rsd_mini.reproduce.run_tiny`) to the shipped files, with the command, seeds and the
    held-out metrics of ``run_dir/metrics.json`` recorded in each file's ``meta``, and copy their
    training logs next to them."""
    import json

    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise FileNotFoundError(f"run_dir={str(run_dir)!r}: no metrics.json; run make reproduce first")
    methods = json.loads(metrics_path.read_text())["methods"]
    written = {}
    for name, sub, method in (("tiny-teacher", "teacher", "teacher"), ("tiny-student", "student", "student")):
        seed = load_checkpoint(run_dir / sub / "last.pt")["config"]["train"]["seed"]
        meta = dict(command=command, seed=seed, metrics=methods[method], bicubic=methods["bicubic"])
        written[name] = export(run_dir / sub / "last.pt", SHIPPED[name], meta)
        log = SHIPPED[name].with_suffix(".log.jsonl")  # for the loss figures of `make figures`
        log.write_text((run_dir / sub / "log.jsonl").read_text())
    return written
