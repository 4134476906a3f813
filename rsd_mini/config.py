"""Teacher-training configurations: dataclasses, YAML files, presets and type-checked overrides.

A :class:`TeacherConfig` holds everything one ResShift teacher run needs (RSD_SPEC §1 "Teacher
training", §2 for the network). It nests one dataclass per concern::

    diffusion  the ResShift process (T, κ, schedule) and the space it runs in
    data       which images, crop, scale factor and degradation
    optim      AdamW and the learning-rate schedule
    train      iterations, batch, EMA, AMP, seeds, logging and checkpoint cadence
    unet       the Swin-UNet (:class:`rsd_mini.unet.UNetConfig`)

Configs are frozen; :func:`apply_overrides` returns a new one. Every value passes through
:func:`from_dict`, which checks it against the field's type, so a YAML file, a preset and a
command-line override are validated the same way.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from rsd_mini.unet import UNetConfig, unet_preset

#: The folder that holds one YAML file per preset.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


@dataclass(frozen=True)
class DiffusionConfig:
    """The ResShift process (RSD_SPEC §1); defaults are the paper's v1 teacher.

    ``latent``: diffuse VQ-f4 latents (the paper) or pixels (the laptop-CPU teacher).
    ``autoencoder``: with ``latent``, the VQ-f4 checkpoint: a file, or a name of
    :data:`rsd_mini.fullscale.weights.REGISTRY` (``"vq-f4"``) looked up in the weights folder.
    """

    steps: int = 15
    kappa: float = 2.0
    min_noise_level: float = 0.04
    etas_end: float = 0.99
    power: float = 0.3
    latent: bool = True
    autoencoder: str | None = "vq-f4"

    def __post_init__(self):
        if not self.latent:  # pixel space has no autoencoder: one value, so configs compare equal
            object.__setattr__(self, "autoencoder", None)


@dataclass(frozen=True)
class DataConfig:
    """Training images and their degradation (RSD_SPEC §1, Real-ESRGAN pipeline).

    ``dataset``: ``"mini"`` (the bundled sample set) or ``"folder"`` (images under ``root``).
    ``val_root``: a folder of validation images for ``"folder"`` runs (none: no validation).
    ``val_images``: how many validation images :meth:`TeacherTrainer.validate` samples.
    """

    dataset: Literal["mini", "folder"] = "folder"
    root: str | None = None
    val_root: str | None = None
    crop_size: int = 256
    scale: int = 4
    degradation: str = "realesrgan"
    val_images: int = 8

    def __post_init__(self):
        if self.crop_size % self.scale:
            raise ValueError(f"data.crop_size={self.crop_size}: expected a multiple of "
                             f"data.scale={self.scale}")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW and its learning-rate schedule (RSD_SPEC §1: lr 5e-5, 5k linear warm-up, wd 0).

    ``schedule``: after the warm-up, ``"constant"`` (v1) or ``"cosine"`` down to ``min_lr`` at
    the last iteration (v3). ``grad_clip``: max global gradient norm, ``None`` = no clipping
    (the official trainer does not clip).
    """

    lr: float = 5e-5
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 5000
    schedule: Literal["constant", "cosine"] = "constant"
    min_lr: float = 2e-5
    grad_clip: float | None = None


@dataclass(frozen=True)
class TrainConfig:
    """The loop (RSD_SPEC §1). ``batch_size`` samples per update, split into chunks of
    ``microbatch`` whose gradients are accumulated. ``*_every`` count updates
    (``sample_every`` 0 = no validation).
    ``num_threads``: CPU threads for torch (``None``: leave torch's default).
    """

    iterations: int = 300_000
    batch_size: int = 64
    microbatch: int = 8
    ema_rate: float = 0.999
    amp: bool = True
    amp_dtype: Literal["float16", "bfloat16"] = "float16"
    seed: int = 123456
    log_every: int = 200
    checkpoint_every: int = 10_000
    sample_every: int = 10_000
    out_dir: str = "runs/teacher-resshift-v1"
    deterministic: bool = False
    num_threads: int | None = None

    def __post_init__(self):
        for name in ("iterations", "batch_size", "microbatch", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name}={getattr(self, name)}: expected >= 1")
        if not 0 <= self.ema_rate < 1:
            raise ValueError(f"train.ema_rate={self.ema_rate}: expected 0 <= ema_rate < 1")


@dataclass(frozen=True)
class TeacherConfig:
    """One ResShift teacher run; the defaults are the paper's v1 teacher (RSD_SPEC §1–2)."""

    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)


@dataclass(frozen=True)
class RSDConfig:
    """The distillation itself (RSD_SPEC §4; defaults are the paper's ``configs/RSD.yaml``).

    ``teacher``: checkpoint of the teacher, a run of :class:`~rsd_mini.train.TeacherTrainer`
    (its EMA weights are used) or an official ResShift file. ``nodes``: N multistep nodes, evenly
    placed with t_N = T (RSD §3.3). ``fake_steps``: K fake updates per student update, each on a
    fresh batch. ``noise_channels``: the student's extra noise input. ``variant``: ``"rsd"`` or
    ``"vsd"`` (stop-gradient through f*, f_φ; RSD Alg. 2). ``lpips_weight`` λ₁ (needs pyiqa
    and its weights), ``gan_weight`` λ₂ (0 = no discriminator head). ``mse_weight``: a pixel
    MSE between the one-step sample from the prior and x₀, beside or in the place of LPIPS (the
    official trainer has an ``mse_loss`` switch, off in the paper's config; 0 = off).
    ``fake_lr_ratio``: the fake model's (and head's) learning rate over the student's
    ``optim.lr`` (the paper: 1; > 1 lets f_φ track the moving student, the two-time-scale rule
    of DMD2).
    """

    teacher: str | None = None
    nodes: int = 4
    fake_steps: int = 5
    noise_channels: int = 1
    variant: Literal["rsd", "vsd"] = "rsd"
    sid_normalization: bool = True
    t_power_ten: bool = False
    lpips_weight: float = 2.0
    gan_weight: float = 3e-3
    mse_weight: float = 0.0
    fake_lr_ratio: float = 1.0

    def __post_init__(self):
        if self.fake_lr_ratio <= 0:
            raise ValueError(f"distill.fake_lr_ratio={self.fake_lr_ratio}: expected > 0")
        for name in ("nodes", "fake_steps", "noise_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"distill.{name}={getattr(self, name)}: expected >= 1")
        for name in ("lpips_weight", "gan_weight", "mse_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"distill.{name}={getattr(self, name)}: expected >= 0")


@dataclass(frozen=True)
class DistillConfig:
    """One RSD distillation run; defaults are the paper's (RSD_SPEC §4b): AdamW lr 5e-5 constant,
    betas (0.9, 0.95), no warm-up, fp32, batch 64 in microbatches of 8, 3000 student updates with
    K=5, EMA 0.999. ``unet`` is the teacher's architecture."""

    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        lr=5e-5, betas=(0.9, 0.95), warmup_steps=0, schedule="constant"))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        iterations=3000, amp=False, log_every=20, checkpoint_every=1000, sample_every=1000,
        out_dir="runs/rsd-resshift-v1"))
    unet: UNetConfig = field(default_factory=UNetConfig)
    distill: RSDConfig = field(default_factory=RSDConfig)


@dataclass(frozen=True)
class SinSRConfig:
    """SinSR's distillation (RSD_SPEC §3; defaults are the official ``configs/SinSR.yaml``).

    ``teacher``: the teacher checkpoint, as ``distill.teacher``. The three loss weights:
    ``distill_weight`` (the distillation loss, weight 1 in the code), ``inverse_weight``
    (``learn_xT: True``, weight 1) and ``consistency_weight`` (``finetune_use_gt: 1.0``).
    """

    teacher: str | None = None
    distill_weight: float = 1.0
    inverse_weight: float = 1.0
    consistency_weight: float = 1.0

    def __post_init__(self):
        for name in ("distill_weight", "inverse_weight", "consistency_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"sinsr.{name}={getattr(self, name)}: expected >= 0")


@dataclass(frozen=True)
class SinSRRunConfig:
    """One SinSR run; defaults are the official ``configs/SinSR.yaml`` (RSD_SPEC §3): AdamW lr 5e-5,
    weight decay 0, default betas, 5k-iteration linear warm-up then constant (its halving
    milestone is the last iteration), fp32, batch 64, EMA 0.999, 500k iterations (the paper
    reports ≈ 30k, the README "a few thousand"). Microbatches of 8 (the official 64 per GPU
    would not fit one GPU; the gradient is the same). ``unet`` is the teacher's architecture."""

    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-5, warmup_steps=5000, schedule="constant"))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        iterations=500_000, amp=False, log_every=200, checkpoint_every=2000, sample_every=2000,
        out_dir="runs/sinsr-resshift-v1"))
    unet: UNetConfig = field(default_factory=UNetConfig)
    sinsr: SinSRConfig = field(default_factory=SinSRConfig)


@dataclass(frozen=True)
class RegressionConfig:
    """The one-step MMSE baseline: the RSD student (``teacher`` plus ``noise_channels``
    zero-initialised noise inputs) trained with MSE to the ground truth."""

    teacher: str | None = None
    noise_channels: int = 1

    def __post_init__(self):
        if self.noise_channels < 0:
            raise ValueError(f"regression.noise_channels={self.noise_channels}: expected >= 0")


@dataclass(frozen=True)
class RegressionRunConfig:
    """One regression run (:class:`rsd_mini.regression.RegressionTrainer`); same sections as a
    distillation run."""

    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(warmup_steps=0))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        iterations=3000, amp=False, log_every=20, checkpoint_every=1000, sample_every=1000,
        out_dir="runs/regression-resshift-v1"))
    unet: UNetConfig = field(default_factory=UNetConfig)
    regression: RegressionConfig = field(default_factory=RegressionConfig)


#: The run type of a config dict, told by its method section (a teacher run has none).
RUN_TYPES: dict[str, type] = {"distill": DistillConfig, "sinsr": SinSRRunConfig, "regression": RegressionRunConfig}


def config_type(values: dict) -> type:
    """The config class of a nested dict (a YAML file, a checkpoint's ``config``)."""
    return next((cls for section, cls in RUN_TYPES.items() if section in values), TeacherConfig)


PRESETS: dict[str, TeacherConfig | DistillConfig] = {
    # The paper's teacher, ResShift v1 (RSD_SPEC §1): AdamW wd 0, lr 5e-5 after 5k linear
    # warm-up, batch 64 in microbatches of 8, AMP, EMA 0.999, 300k iterations, VQ-f4 latents of
    # 256² Real-ESRGAN-degraded ImageNet crops. Set data.root to the ImageNet training folder.
    "resshift-v1": TeacherConfig(),
    # ResShift v3 (RSD_SPEC §1, the journal version): T = 4, min noise level 0.2, batch 96, lr
    # 5e-5 cosine to 2e-5 over 400k iterations. For inference with the official
    # resshift_realsrx4_s4_v3.pth; its training adds an LPIPS-VGG term that rsd-mini does not.
    "resshift-v3": TeacherConfig(
        diffusion=DiffusionConfig(steps=4, min_noise_level=0.2),
        optim=OptimConfig(schedule="cosine", min_lr=2e-5),
        train=TrainConfig(iterations=400_000, batch_size=96, microbatch=8,
                          out_dir="runs/teacher-resshift-v3")),
    # A laptop-CPU teacher with the same process (T=15, κ=2, min noise 0.04) in pixel space on
    # 64² crops of the bundled mini dataset; about 11 minutes on 2 CPU cores. Plain bicubic ×4
    # degradation: on the Real-ESRGAN-style presets a 3 M-parameter network trained for minutes
    # on 11 photos does not even beat the bicubic input as a regressor (README, "Tiny models").
    "tiny": TeacherConfig(
        diffusion=DiffusionConfig(latent=False),
        data=DataConfig(dataset="mini", crop_size=64, degradation="bicubic", val_images=8),
        optim=OptimConfig(lr=5e-4, warmup_steps=100, schedule="cosine", min_lr=5e-5, grad_clip=1.0),
        # ≈ 0.65 s per update on 2 idle CPU cores (batch 8 at 64²): 1000 updates ≈ 11 minutes.
        train=TrainConfig(iterations=1000, batch_size=8, microbatch=8, ema_rate=0.995, amp=False,
                          seed=0, log_every=25, checkpoint_every=100, sample_every=0,
                          out_dir="runs/teacher-tiny", deterministic=True),
        unet=unet_preset("tiny"),
    ),
    # SinSR as in the official configs/SinSR.yaml (RSD_SPEC §3) on one GPU, from the ResShift v1
    # teacher: lr 5e-5 after 5k linear warm-up, batch 64, EMA 0.999, the three losses at weight 1.
    "sinsr-paper": SinSRRunConfig(sinsr=SinSRConfig(teacher="weights/resshift_realsrx4_s15_v1.pth")),
    # SinSR on CPU from the shipped tiny teacher (data/checkpoints/tiny_teacher.pt, present in a
    # fresh clone), same data, lr and clipping as rsd-tiny. Budget: rsd-tiny's network passes
    # (forward or backward, each counted once): an RSD iteration (K=2, N=1) makes 7 forward and 5
    # backward passes, 200 iterations 2400; a SinSR iteration makes 15 teacher calls for the
    # target, 4 student forwards and 3 backwards, so 110 iterations make 2420. A shorter EMA
    # horizon for the shorter run (0.95^110 ≈ 0.004 of the initial weights left; 0.99^200 ≈ 0.13).
    "sinsr-tiny": SinSRRunConfig(
        diffusion=DiffusionConfig(latent=False),
        data=DataConfig(dataset="mini", crop_size=64, degradation="bicubic", val_images=8),
        optim=OptimConfig(lr=2e-4, warmup_steps=0, schedule="constant", grad_clip=1.0),
        train=TrainConfig(iterations=110, batch_size=8, microbatch=8, ema_rate=0.95, amp=False,
                          seed=0, log_every=10, checkpoint_every=50, sample_every=0,
                          out_dir="runs/sinsr-tiny", deterministic=True),
        unet=unet_preset("tiny"),
        sinsr=SinSRConfig(teacher="data/checkpoints/tiny_teacher.pt"),
    ),
    # The one-step MMSE baseline from the same shipped teacher and data: the RSD student trained
    # with MSE to the ground truth. Same budget rule as sinsr-tiny: one forward and one backward
    # pass per iteration, so 1200 iterations make rsd-tiny's 2400 passes.
    "regression-tiny": RegressionRunConfig(
        diffusion=DiffusionConfig(latent=False),
        data=DataConfig(dataset="mini", crop_size=64, degradation="bicubic", val_images=8),
        optim=OptimConfig(lr=2e-4, warmup_steps=0, schedule="constant", grad_clip=1.0),
        train=TrainConfig(iterations=1200, batch_size=8, microbatch=8, ema_rate=0.99, amp=False,
                          seed=0, log_every=10, checkpoint_every=50, sample_every=0,
                          out_dir="runs/regression-tiny", deterministic=True),
        unet=unet_preset("tiny"),
        regression=RegressionConfig(teacher="data/checkpoints/tiny_teacher.pt"),
    ),
    # RSD as in the paper (RSD_SPEC §4b) on one GPU: batch 64 = 8 accumulated microbatches of 8.
    # Set distill.teacher to the official resshift_realsrx4_s15_v1.pth and data.root to ImageNet.
    "rsd-paper": DistillConfig(distill=RSDConfig(teacher="weights/resshift_realsrx4_s15_v1.pth")),
    # The tiny teacher distilled on CPU (the README's main command): the paper's objective, betas
    # and SiD normalisation; K = 2 and a larger lr (2e-4) for the short run; no LPIPS (its AlexNet
    # weights cannot be downloaded offline) and no GAN. One node (N = 1, t = T): the tiny student
    # is only ever called at t = T, and with the paper's N = 4 this 3.4 M network spent 3/4 of its
    # updates on nodes whose inputs already hold most of x₀ and stalled near the teacher's blurry
    # one-call prediction (27.4–27.6 dB, high-frequency share 0.018 after 360 iterations at
    # lr 5e-4); with N = 1 it reaches the teacher's sample statistics in 200 (README, results).
    # lr 5e-4 with N = 1 overshoots (ringing; 22.9 dB, high-frequency share 0.071 at 200).
    "rsd-tiny": DistillConfig(
        diffusion=DiffusionConfig(latent=False),
        data=DataConfig(dataset="mini", crop_size=64, degradation="bicubic", val_images=8),
        optim=OptimConfig(lr=2e-4, betas=(0.9, 0.95), warmup_steps=0, schedule="constant", grad_clip=1.0),
        # ≈ 3–4 s per iteration (K=2 fake + 1 student update) on 2 CPU cores: ≈ 12 minutes.
        train=TrainConfig(iterations=200, batch_size=8, microbatch=8, ema_rate=0.99, amp=False,
                          seed=0, log_every=10, checkpoint_every=50, sample_every=0,
                          out_dir="runs/rsd-tiny", deterministic=True),
        unet=unet_preset("tiny"),
        distill=RSDConfig(teacher="runs/tiny/teacher/last.pt", nodes=1, fake_steps=2, lpips_weight=0.0,
                          gan_weight=0.0),
    ),
}

#: The YAML file of each preset, kept equal to :data:`PRESETS` by a test.
PRESET_FILES: dict[str, Path] = {
    "resshift-v1": CONFIG_DIR / "teacher_resshift_v1.yaml",
    "resshift-v3": CONFIG_DIR / "teacher_resshift_v3.yaml",
    "tiny": CONFIG_DIR / "teacher_tiny.yaml",
    "rsd-paper": CONFIG_DIR / "rsd_paper.yaml",
    "rsd-tiny": CONFIG_DIR / "rsd_tiny.yaml",
    "sinsr-paper": CONFIG_DIR / "sinsr_paper.yaml",
    "sinsr-tiny": CONFIG_DIR / "sinsr_tiny.yaml",
    "regression-tiny": CONFIG_DIR / "regression_tiny.yaml",
}


# --------------------------------------------------------------------- dict round trip
def to_dict(config: Any) -> dict:
    """A nested dict of plain YAML/torch-safe values (tuples become lists)."""
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return to_dict(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def from_dict(cls: type, values: dict, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``values``, checking each value against its field type.

    Missing keys keep the field's default; an unknown key raises ``ValueError`` listing the valid
    ones; a value of the wrong type raises ``TypeError`` naming key, value and expected type.
    """
    if not isinstance(values, dict):
        raise TypeError(f"{prefix.rstrip('.') or 'config'}={values!r}: expected a mapping")
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = [key for key in values if key not in valid]
    if unknown:
        raise ValueError(_unknown_key_message(prefix + str(unknown[0]), [prefix + v for v in valid]))
    kwargs = {key: _coerce(value, hints[key], prefix + key) for key, value in values.items()}
    return cls(**kwargs)


def _unknown_key_message(key: str, valid: list[str]) -> str:
    everywhere = [f"{section}.{name}" for section, cls in _sections().items()
                  for name in (f.name for f in dataclasses.fields(cls))]
    name = key.rpartition(".")[2]
    same_name = [k for k in everywhere if k.rpartition(".")[2] == name]  # train.lr → optim.lr
    close = same_name or difflib.get_close_matches(key, everywhere, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"unknown config key {key!r}: valid keys are {', '.join(valid)}{hint}"


def _sections() -> dict[str, type]:
    hints = typing.get_type_hints(DistillConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(DistillConfig)}


def _coerce(value: Any, expected: Any, key: str) -> Any:
    """``value`` as type ``expected`` (int → float, list → tuple), or a ``TypeError``."""
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if dataclasses.is_dataclass(expected):
        return from_dict(expected, value, key + ".")
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        candidates = [a for a in args if a is not type(None)]
        return _coerce(value, candidates[0], key) if len(candidates) == 1 else _fail(key, value, expected)
    if origin is Literal:
        return value if value in args else _fail(key, value, f"one of {list(args)}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return _fail(key, value, expected)
        item_types = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(item_types) != len(value):
            return _fail(key, value, expected)
        return tuple(_coerce(v, t, f"{key}[{i}]") for i, (v, t) in enumerate(zip(value, item_types)))
    return _coerce_scalar(value, expected, key)


def _coerce_scalar(value: Any, expected: type, key: str) -> Any:
    if expected is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif expected is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif expected in (bool, str) and isinstance(value, expected):
        return value
    return _fail(key, value, expected)


def _fail(key: str, value: Any, expected: Any) -> typing.NoReturn:
    name = expected if isinstance(expected, str) else _type_name(expected)
    raise TypeError(f"config key {key}={value!r} ({type(value).__name__}): expected {name}")


def _type_name(expected: Any) -> str:
    return getattr(expected, "__name__", None) if isinstance(expected, type) else str(expected).replace("typing.", "")


# --------------------------------------------------------------------- loading and overrides
def load_config(name_or_path: str | Path) -> TeacherConfig | DistillConfig:
    """A preset by name (``"tiny"``, ``"resshift-v1"``, ``"rsd-tiny"``, ``"rsd-paper"``) or a YAML
    file by path (its class told by its method section, :func:`config_type`)."""
    if str(name_or_path) in PRESETS:
        return PRESETS[str(name_or_path)]
    path = Path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"config {str(name_or_path)!r}: not a preset ({', '.join(PRESETS)}) "
                                "and no such YAML file")
    values = yaml.safe_load(path.read_text()) or {}
    return from_dict(config_type(values), values)


def save_config(config: TeacherConfig, path: str | Path) -> Path:
    """Write ``config`` as YAML (the format :func:`load_config` reads)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_to_yaml(config))
    return path


def config_to_yaml(config: TeacherConfig) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def apply_overrides(config: TeacherConfig | DistillConfig, overrides: list[str]) -> TeacherConfig | DistillConfig:
    """``apply_overrides(c, ["optim.lr=1e-4", "unet.channel_mult=[1,2,2]"])`` → a new config.

    Each override is ``section.key=value``; the value is parsed with ``yaml.safe_load`` and
    type-checked against the field. All overrides are applied at once, so fields that must
    agree (``unet.channel_mult`` and ``unet.num_res_blocks``) can change together.
    """
    values = to_dict(config)
    for override in overrides:
        key, value = _parse_override(override)
        section, _, name = key.partition(".")
        if section not in values or not name or "." in name:
            raise ValueError(_unknown_key_message(key, [f"{s}.<key>" for s in values]))
        if name not in values[section]:
            raise ValueError(_unknown_key_message(key, [f"{section}.{k}" for k in values[section]]))
        values[section][name] = value
    return from_dict(type(config), values)


def _parse_override(override: str) -> tuple[str, Any]:
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"override {override!r}: expected section.key=value, e.g. optim.lr=1e-4")
    return key.strip(), yaml.safe_load(text)
