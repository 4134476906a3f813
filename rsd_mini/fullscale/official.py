"""Loading the official ResShift / SinSR / RSD checkpoints into rsd-mini modules (RSD_SPEC §1–2).

Official checkpoints are plain state dicts (sometimes wrapped in ``{"state_dict": ...}`` and/or
prefixed with ``module.`` by DDP). They are read with ``torch.load(weights_only=True)`` and loaded
strictly: a checkpoint that does not fit raises :class:`CheckpointMismatchError` listing the
missing, unexpected and mis-shaped keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from os import PathLike
from pathlib import Path

import torch
from torch import Tensor, nn

from rsd_mini.diffusion import ResShift
from rsd_mini.distill import add_noise_channels
from rsd_mini.fullscale import weights
from rsd_mini.fullscale.autoencoder import VQAutoencoder, VQConfig
from rsd_mini.fullscale.latent import LatentSR
from rsd_mini.unet import SwinUNet, UNetConfig

#: Official ``model.params`` keys that only have one supported value here.
_FIXED_PARAMS = {"dims": 2, "conv_resample": True, "resblock_updown": False, "patch_norm": False,
                 "cond_mask": False}
#: Official keys with no effect on the function (precision is chosen at run time).
_IGNORED_PARAMS = {"use_fp16", "num_heads"}
#: Buffers that the official model stores but rsd-mini recomputes (timm keeps them
#: non-persistent); they are checked against ours, then dropped.
_DERIVED_BUFFER = "relative_position_index"


class CheckpointMismatchError(ValueError):
    """A state dict that does not fit the model; the message lists every differing key."""

    def __init__(self, source: str, missing: list[str], unexpected: list[str],
                 mis_shaped: list[tuple[str, tuple, tuple]]):
        self.missing, self.unexpected, self.mis_shaped = missing, unexpected, mis_shaped
        lines = [f"checkpoint {source} does not fit the model:"]
        lines += [f"  missing ({len(missing)}): {_preview(missing)}"] if missing else []
        lines += [f"  unexpected ({len(unexpected)}): {_preview(unexpected)}"] if unexpected else []
        lines += [f"  mis-shaped ({len(mis_shaped)}): " + _preview(
            [f"{k} checkpoint {tuple(a)} vs model {tuple(b)}" for k, a, b in mis_shaped])] if mis_shaped else []
        super().__init__("\n".join(lines))


def _preview(items: list[str], limit: int = 8) -> str:
    more = f", … (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def unet_config_from_official(params: Mapping) -> UNetConfig:
    """Translate an official YAML ``model.params`` dict into a :class:`UNetConfig`.

    Both conventions give the same 6-channel first conv (RSD_SPEC §1): SinSR declares
    ``in_channels: 6``; ResShift declares ``in_channels: 3, lq_size: 64`` and adds the LR
    channels itself (identity feature extractor when ``lq_size == image_size``).
    """
    params = dict(params)
    for key, supported in _FIXED_PARAMS.items():
        if key in params and params.pop(key) != supported:
            raise ValueError(f"params[{key!r}]: only {supported!r} is supported (UNetModelSwin of "
                             "the SR models)")
    for key in _IGNORED_PARAMS & set(params):
        params.pop(key)
    lq_size = params.pop("lq_size", None)
    if lq_size is not None and params.get("cond_lq", True):
        if lq_size != params.get("image_size"):
            raise ValueError(f"params['lq_size']={lq_size}: only lq_size == image_size (identity "
                             "feature extractor) is supported")
        params["in_channels"] = params.get("in_channels", 3) + 3
    valid = set(UNetConfig.__dataclass_fields__)
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ValueError(f"params has unknown keys {unknown}: expected official UNetModelSwin keys "
                         f"{sorted(valid | set(_FIXED_PARAMS) | _IGNORED_PARAMS | {'lq_size'})}")
    return UNetConfig(**params)


def read_state_dict(checkpoint: str | PathLike | Mapping[str, Tensor]) -> tuple[dict[str, Tensor], str]:
    """A state dict from a path or a mapping: unwraps ``state_dict`` and strips ``module.``."""
    source = "<state dict>"
    if isinstance(checkpoint, (str, PathLike)):
        path = Path(checkpoint)
        source = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint={source!r}: no such file")
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # pickle/zip errors have many types
            raise ValueError(f"checkpoint={source!r}: not a readable torch checkpoint ({error})") from error
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"checkpoint is a {type(checkpoint).__name__}: expected a path or a state dict")
    for wrapper in ("state_dict", "model"):
        if wrapper in checkpoint and isinstance(checkpoint[wrapper], Mapping):
            checkpoint = checkpoint[wrapper]
    state = {k.removeprefix("module."): v for k, v in checkpoint.items()}
    return state, source


def load_state_dict_strict(model: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """Load with every key and shape checked first, so the error lists all differences."""
    state = _drop_derived_buffers(model, state, source)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mis_shaped = [(k, tuple(state[k].shape), tuple(expected[k].shape))
                  for k in sorted(set(state) & set(expected)) if state[k].shape != expected[k].shape]
    if missing or unexpected or mis_shaped:
        raise CheckpointMismatchError(source, missing, unexpected, mis_shaped)
    model.load_state_dict(state, strict=True)


def _drop_derived_buffers(model: nn.Module, state: Mapping[str, Tensor], source: str) -> dict:
    ours = dict(model.named_buffers())
    kept = {}
    for key, value in state.items():
        if key.endswith(_DERIVED_BUFFER) and key in ours:
            if not torch.equal(value.to(ours[key].dtype), ours[key].cpu()):
                raise ValueError(f"checkpoint {source}: {key} differs from the window layout of "
                                 "this configuration (wrong window_size?)")
            continue
        kept[key] = value
    return kept


def load_unet(checkpoint: str | PathLike | Mapping[str, Tensor], params: Mapping | UNetConfig,
              device: str | torch.device = "cpu") -> SwinUNet:
    """Build the teacher from official ``model.params`` and load an official checkpoint strictly.

    ``forward(x_t, t, lq=lq)`` of the result computes the same function as the official
    ``UNetModelSwin`` (checked by ``benchmarks/unet_vs_official.py`` against the official code).
    """
    config = params if isinstance(params, UNetConfig) else unet_config_from_official(params)
    model = SwinUNet(config)
    state, source = read_state_dict(checkpoint)
    load_state_dict_strict(model, state, source)
    return model.to(device).eval()


def official_state_dict(model: SwinUNet) -> dict[str, Tensor]:
    """Our weights in the official layout (adds back the derived ``relative_position_index``)."""
    state = dict(model.state_dict())
    for name, buffer in model.named_buffers():
        if name.endswith(_DERIVED_BUFFER):
            state[name] = buffer.clone()
    return state


def load_autoencoder(checkpoint: str | PathLike | Mapping[str, Tensor], params: Mapping | VQConfig | None = None,
                     device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> VQAutoencoder:
    """The frozen VQ-f4 autoencoder from an official ``autoencoder_vq_f4.pth`` (RSD_SPEC §2).

    ``params``: the official ``autoencoder.params`` dict or a :class:`VQConfig` (default: the
    f4 config). Loaded strictly (:class:`CheckpointMismatchError` lists every differing key),
    returned in ``eval()`` mode with ``requires_grad=False``. ``dtype``: e.g. ``torch.float16``,
    as the official SinSR/RSD samplers run it on the GPU (``autoencoder.use_fp16``); keep the
    default float32 on a CPU.
    """
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype={dtype!r}: expected a floating-point torch.dtype or None")
    config = VQConfig() if params is None else params if isinstance(params, VQConfig) else VQConfig.from_official(params)
    model = VQAutoencoder(config)
    state, source = read_state_dict(checkpoint)
    load_state_dict_strict(model, state, source)
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)


def load_official_model(name: str, weights_dir: str | PathLike | None = None, device: str | torch.device = "cpu",
                        fp16: bool = False, download: bool = False):
    """An official SR model of :data:`rsd_mini.fullscale.weights.REGISTRY` (``"resshift-v1"``, ``"resshift-v3"``,
    ``"sinsr-v1"``, ``"rsd"``, ...) with the VQ-f4 autoencoder, ready to super-resolve as the
    official sampler does (:class:`rsd_mini.fullscale.latent.LatentSR`, RSD_SPEC §4c).

    The network is built from the registry's official ``model.params`` (plus the RSD student's
    noise input channel, appended after the 6 input channels as the official ``_add_noise``
    does) and both files are loaded strictly. ``fp16``: the autoencoder in float16 as the
    SinSR/RSD samplers run it (GPU); wrap calls in ``torch.autocast`` for a mixed-precision UNet.
    ``download``: fetch missing files (else a missing file raises ``FileNotFoundError`` saying
    where to put it).
    """
    spec = weights.get_spec(name)
    if spec.kind != "unet":
        raise ValueError(f"name={name!r} is the {spec.kind}: expected an SR model, one of "
                         f"{[n for n, s in weights.REGISTRY.items() if s.kind == 'unet']}")
    network = SwinUNet(unet_config_from_official(spec.params))
    if spec.noise_channels:
        network = add_noise_channels(network, spec.noise_channels)
    state, source = read_state_dict(weights.require(spec, weights_dir, download))
    load_state_dict_strict(network, state, source)
    vq = weights.get_spec("vq-f4")
    autoencoder = load_autoencoder(weights.require(vq, weights_dir, download), vq.params, device,
                                   torch.float16 if fp16 else None)
    return LatentSR(network.to(device).eval().requires_grad_(False), ResShift(**spec.diffusion), spec.inference,
                    noise_channels=spec.noise_channels, meta=dict(name=spec.name, file=str(source)),
                    autoencoder=autoencoder)


def check_contents(spec: weights.WeightSpec, path: Path) -> int:
    """Raise :class:`WeightsIntegrityError` unless ``path`` opens with
    ``torch.load(weights_only=True)`` as a state dict with exactly the tensor names and shapes of
    ``spec``'s network (built on the meta device from ``spec.params``, so it costs no memory);
    returns the number of tensors. Catches junk saved under an official name, which a size and
    digest check cannot when the publisher gives neither."""
    try:
        state, _ = read_state_dict(path)
    except (ValueError, TypeError) as error:
        cause = error.__cause__ or error
        first = (str(cause).strip().splitlines() or [""])[0][:120]
        raise weights.WeightsIntegrityError(f"{path}: not a torch checkpoint that opens with weights_only=True "
                                    f"({type(cause).__name__}: {first}); download it again: python -m "
                                    f"rsd_mini weights download {spec.name}") from error
    with torch.device("meta"):
        expected = {key: tuple(value.shape) for key, value in _network(spec).state_dict().items()}
    # The derived relative_position_index buffers are in official files but not in our state dicts.
    derived = {key for key in state if key not in expected and key.endswith("relative_position_index")}
    found = {key: tuple(getattr(value, "shape", ("not a tensor",))) for key, value in state.items()
             if key not in derived}
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    mis_shaped = [(k, found[k], expected[k]) for k in sorted(set(found) & set(expected)) if found[k] != expected[k]]
    if missing or unexpected or mis_shaped:
        error = CheckpointMismatchError(str(path), missing, unexpected, mis_shaped)
        head, *parts = [line.strip() for line in str(error).splitlines()]
        summary = f"{head} {'; '.join(parts)}"
        raise weights.WeightsIntegrityError(f"{summary} (not the {spec.name} weights?); download it again: python -m "
                                    f"rsd_mini weights download {spec.name}")
    return len(found)


def _network(spec: weights.WeightSpec) -> nn.Module:
    """The network ``spec``'s file holds, built from its official ``params``."""
    if spec.kind == "autoencoder":
        return VQAutoencoder(VQConfig.from_official(spec.params))
    config = unet_config_from_official(spec.params)  # + the RSD student's noise inputs
    return SwinUNet(replace(config, in_channels=config.in_channels + spec.noise_channels))
