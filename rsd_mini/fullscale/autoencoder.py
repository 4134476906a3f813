"""The VQ-f4 autoencoder of the latent space (RSD_SPEC §1 "Spaces", §2 "Autoencoder").

ResShift, SinSR and RSD diffuse the latents of one frozen autoencoder, the official
``VQModelTorch`` (ResShift ``ldm/``; the taming-transformers VQGAN of Esser et al. 2021 without
its discriminator): an encoder of ``len(ch_mult) − 1`` stride-2 levels (f4: 256² RGB → 64²×3),
a 1×1 ``quant_conv``, a codebook of 8192 vectors in 3 dimensions, a 1×1 ``post_quant_conv`` and
a mirrored decoder. Module names reproduce the official state-dict keys, so
``autoencoder_vq_f4.pth`` loads strictly (:func:`rsd_mini.fullscale.official.load_autoencoder`;
55,322,782 parameters).

The three operations the papers use:

- :meth:`VQAutoencoder.encode`, E = encoder → ``quant_conv``, with **no quantisation**
  (z₀ = E(x₀), z_y = E(bicubic↑4(y₀)); official ``encode``);
- ``VQAutoencoder.quantize(z)`` (the codebook module, state-dict prefix ``quantize.``), the
  nearest codebook vector with a straight-through gradient;
- :meth:`VQAutoencoder.decode`, D = quantise (by default) → ``post_quant_conv`` → decoder.
  Gradients reach z through the straight-through quantiser (RSD's LPIPS term, RSD_SPEC §4a,
  the official ``decode(..., grad_forward=True)``).

Precision: the official samplers of SinSR and RSD run this autoencoder in float16 on the GPU
(``autoencoder.use_fp16: True`` → ``.half()``; ResShift's sampler runs it under CUDA autocast
instead). ``encode``/``decode`` therefore cast their input to the weights' dtype and the result
back to the input's dtype, as the official ``encode_first_stage``/``decode_first_stage`` do; a
float32 caller gets float32 latents from a float16 model. On a CPU keep float32.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Nearest ×2 then a 3×3 ``conv``: the same op (and key) as the official autoencoder ``Upsample``.
from rsd_mini.unet import Upsample

#: ``ddconfig`` keys of the official YAML that have one supported value here, and that value.
_FIXED_DDCONFIG = {"double_z": False, "resamp_with_conv": True, "use_linear_attn": False,
                   "attn_type": "vanilla", "give_pre_end": False, "tanh_out": False}
#: Top-level official ``params`` keys that have one supported value here.
_FIXED_PARAMS = {"remap": None, "sane_index_shape": False}
#: Rows of the codebook distance matrix computed at once (bounds memory for large images).
_QUANTIZE_CHUNK = 4096


@dataclass(frozen=True)
class VQConfig:
    """Hyper-parameters of ``VQModelTorch``, named as in the official YAML ``autoencoder.params``.

    Defaults are the VQ-f4 of ResShift/SinSR/RSD (RSD_SPEC §2): embed_dim 3, n_embed 8192,
    z_channels 3, ch 128, ch_mult (1, 2, 4), 2 ResBlocks per level, no attention outside the
    middle blocks, zero padding. ``beta``: the commitment weight of the VQ training loss
    (hard-coded 0.25 in ``VQModelTorch``; inference does not use it).
    """

    embed_dim: int = 3
    n_embed: int = 8192
    z_channels: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: tuple[int, ...] | int = 2
    attn_resolutions: tuple[int, ...] = ()
    in_channels: int = 3
    out_ch: int = 3
    resolution: int = 256
    dropout: float = 0.0
    padding_mode: str = "zeros"
    beta: float = 0.25

    def __post_init__(self):
        for name in ("ch_mult", "attn_resolutions"):
            object.__setattr__(self, name, _int_tuple(name, getattr(self, name)))
        blocks = self.num_res_blocks
        if isinstance(blocks, int) and not isinstance(blocks, bool):
            blocks = (blocks,) * len(self.ch_mult)
        object.__setattr__(self, "num_res_blocks", _int_tuple("num_res_blocks", blocks))
        self.validate()

    def validate(self) -> None:
        """Reject configurations the architecture cannot build, naming the field."""
        for name in ("embed_dim", "n_embed", "z_channels", "ch", "in_channels", "out_ch", "resolution"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: expected a positive integer")
        if not self.ch_mult or min(self.ch_mult) < 1:
            raise ValueError(f"ch_mult={self.ch_mult}: expected one or more positive multipliers")
        if len(self.num_res_blocks) != len(self.ch_mult) or min(self.num_res_blocks) < 1:
            raise ValueError(f"num_res_blocks={self.num_res_blocks}: expected a positive integer "
                             f"or one per level of ch_mult={self.ch_mult}")
        if any(self.ch * m % 32 for m in self.ch_mult):
            raise ValueError(f"ch={self.ch}, ch_mult={self.ch_mult}: every width ch·m must be a "
                             "multiple of 32 (GroupNorm with 32 groups)")
        if self.padding_mode != "zeros":
            raise ValueError(f"padding_mode={self.padding_mode!r}: only 'zeros' is supported (the "
                             "official Encoder/Decoder ignore it and pad with zeros)")
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise ValueError(f"dropout={self.dropout!r}: expected a probability in [0, 1)")
        if not (isinstance(self.beta, (int, float)) and self.beta >= 0):
            raise ValueError(f"beta={self.beta!r}: expected a non-negative number")

    @property
    def downsample_factor(self) -> int:
        """f: image side / latent side (4 for VQ-f4)."""
        return 2 ** (len(self.ch_mult) - 1)

    @classmethod
    def from_official(cls, params: Mapping) -> "VQConfig":
        """From the official ``autoencoder.params`` dict ``{"embed_dim", "n_embed", "ddconfig"}``.

        Raises ``ValueError`` naming the key for values that select another model (``double_z``
        is the KL autoencoder, ``remap`` a reduced codebook, ...) and for unknown keys.
        """
        if not isinstance(params, Mapping) or not isinstance(params.get("ddconfig"), Mapping):
            raise ValueError(f"params={params!r}: expected the official autoencoder params "
                             "{'embed_dim': ..., 'n_embed': ..., 'ddconfig': {...}}")
        params, ddconfig = dict(params), dict(params["ddconfig"])
        del params["ddconfig"]
        _pop_fixed(params, _FIXED_PARAMS, "params")
        _pop_fixed(ddconfig, _FIXED_DDCONFIG, "params['ddconfig']")
        fields = set(cls.__dataclass_fields__)
        for where, values in (("params", params), ("params['ddconfig']", ddconfig)):
            unknown = sorted(set(values) - fields)
            if unknown:
                raise ValueError(f"{where} has unknown keys {unknown}: expected VQModelTorch keys "
                                 f"{sorted(fields | set(_FIXED_PARAMS) | set(_FIXED_DDCONFIG) | {'ddconfig'})}")
        return cls(**ddconfig, **params)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _int_tuple(name: str, value) -> tuple[int, ...]:
    try:
        items = tuple(value)
    except TypeError:
        raise ValueError(f"{name}={value!r}: expected a sequence of integers") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise ValueError(f"{name}={value!r}: expected a sequence of integers")
    return items


def _pop_fixed(values: dict, fixed: Mapping, where: str) -> None:
    for key, supported in fixed.items():
        if key in values and values.pop(key) != supported:
            raise ValueError(f"{where}[{key!r}]: only {supported!r} is supported (VQModelTorch of "
                             "the SR models)")


def normalize(channels: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups and eps 1e-6 (official ``Normalize``)."""
    return nn.GroupNorm(32, channels, eps=1e-6)


class ResnetBlock(nn.Module):
    """norm–SiLU–conv3×3–norm–SiLU–dropout–conv3×3 plus a skip (a 1×1 ``nin_shortcut`` when the
    width changes); no timestep input (the autoencoder's ``temb_ch`` is 0)."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = normalize(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = normalize(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all H·W positions with 1×1-conv q, k, v and output
    projection, softmax scale C^−½, plus the input (official ``AttnBlock``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = normalize(channels)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(x)
        batch, channels, height, width = x.shape
        q, k, v = (conv(h).reshape(batch, 1, channels, height * width).transpose(2, 3)
                   for conv in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)  # (B, 1, HW, C), scale 1/√C
        return x + self.proj_out(out.transpose(2, 3).reshape(batch, channels, height, width))


class Downsample(nn.Module):
    """Zero-pad one pixel at the right and bottom only, then a stride-2 3×3 conv (official
    ``Downsample`` with ``resamp_with_conv``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Level(nn.Module):
    """One resolution of the encoder (``down.i``) or decoder (``up.i``): ResBlocks, each followed
    by attention at ``attn_resolutions``, then an optional ``downsample``/``upsample``."""

    def __init__(self, widths: list[tuple[int, int]], attention: bool, dropout: float,
                 resample: str | None = None):
        super().__init__()
        self.block = nn.ModuleList(ResnetBlock(i, o, dropout) for i, o in widths)
        self.attn = nn.ModuleList(AttnBlock(o) for _, o in widths) if attention else nn.ModuleList()
        self.downsample = Downsample(widths[-1][1]) if resample == "down" else None
        self.upsample = Upsample(widths[-1][1]) if resample == "up" else None

    def forward(self, h: Tensor) -> Tensor:
        for index, block in enumerate(self.block):
            h = block(h)
            if len(self.attn):
                h = self.attn[index](h)
        for resample in (self.downsample, self.upsample):
            if resample is not None:
                h = resample(h)
        return h


class MidBlock(nn.Module):
    """ResBlock–attention–ResBlock at the lowest resolution (``mid.block_1/attn_1/block_2``)."""

    def __init__(self, channels: int, dropout: float):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels, dropout)

    def forward(self, h: Tensor) -> Tensor:
        return self.block_2(self.attn_1(self.block_1(h)))


def _widths(first: int, out: int, count: int) -> list[tuple[int, int]]:
    """(in, out) widths of ``count`` ResBlocks that go from ``first`` to ``out`` channels."""
    return [(first if i == 0 else out, out) for i in range(count)]


class Encoder(nn.Module):
    """conv_in → levels (ResBlocks ×n, stride-2 Downsample except at the last) → mid →
    norm–SiLU–conv_out to ``z_channels`` (official ``Encoder`` with ``double_z=False``)."""

    def __init__(self, c: VQConfig):
        super().__init__()
        self.conv_in = nn.Conv2d(c.in_channels, c.ch, 3, padding=1)
        widths, resolution, self.down = [c.ch * m for m in c.ch_mult], c.resolution, nn.ModuleList()
        for i, width in enumerate(widths):
            last = i == len(widths) - 1
            self.down.append(Level(_widths(c.ch if i == 0 else widths[i - 1], width, c.num_res_blocks[i]),
                                   resolution in c.attn_resolutions, c.dropout, None if last else "down"))
            resolution //= 1 if last else 2
        self.mid = MidBlock(widths[-1], c.dropout)
        self.norm_out = normalize(widths[-1])
        self.conv_out = nn.Conv2d(widths[-1], c.z_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class Decoder(nn.Module):
    """conv_in from ``z_channels`` → mid → levels from the lowest resolution up (ResBlocks ×(n+1),
    nearest+conv Upsample except at the top) → norm–SiLU–conv_out (official ``Decoder``).
    ``up.i`` is the level of width ``ch·ch_mult[i]``, as in the official key layout."""

    def __init__(self, c: VQConfig):
        super().__init__()
        widths = [c.ch * m for m in c.ch_mult]
        resolution = c.resolution // c.downsample_factor
        self.conv_in = nn.Conv2d(c.z_channels, widths[-1], 3, padding=1)
        self.mid = MidBlock(widths[-1], c.dropout)
        levels = {}
        for i in reversed(range(len(widths))):
            first = widths[i + 1] if i + 1 < len(widths) else widths[-1]
            levels[i] = Level(_widths(first, widths[i], c.num_res_blocks[i] + 1),
                              resolution in c.attn_resolutions, c.dropout, "up" if i else None)
            resolution *= 2 if i else 1
        self.up = nn.ModuleList(levels[i] for i in range(len(widths)))
        self.norm_out = normalize(widths[0])
        self.conv_out = nn.Conv2d(widths[0], c.out_ch, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    """The codebook (official ``VectorQuantizer2``): each latent vector is replaced by its nearest
    ``embedding`` row under ‖z − e‖² = ‖z‖² + ‖e‖² − 2⟨z, e⟩ (argmin, first index on ties)."""

    def __init__(self, n_embed: int, embed_dim: int, beta: float = 0.25):
        super().__init__()
        self.beta = beta
        self.embedding = nn.Embedding(n_embed, embed_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / n_embed, 1.0 / n_embed)

    def indices(self, z: Tensor) -> Tensor:
        """Nearest codebook index per position: (B, C, H, W) → (B, H, W), no gradient."""
        flat = z.detach().permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        codebook = self.embedding.weight.detach().to(z.dtype)
        squared = codebook.pow(2).sum(1)
        chunks = [(rows.pow(2).sum(1, keepdim=True) + squared - 2 * rows @ codebook.t()).argmin(1)
                  for rows in flat.split(_QUANTIZE_CHUNK)]
        return torch.cat(chunks).reshape(z.shape[0], *z.shape[2:])

    def forward(self, z: Tensor, return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """z_q = z + sg(e − z) (and the indices if asked): the codebook vectors forward, the
        identity backward (straight-through estimator, van den Oord et al. 2017)."""
        _check_tensor("z", z, self.embedding.embedding_dim, "embed_dim")
        index = self.indices(z)
        quantized = self.embedding(index).permute(0, 3, 1, 2).to(z.dtype)
        quantized = z + (quantized - z).detach()
        return (quantized, index) if return_indices else quantized


class VQAutoencoder(nn.Module):
    """``VQModelTorch``: ``encoder``, ``decoder``, ``quantize``, ``quant_conv``,
    ``post_quant_conv`` (RSD_SPEC §2 "Autoencoder"). See the module docstring."""

    def __init__(self, config: VQConfig | None = None):
        super().__init__()
        c = VQConfig() if config is None else config
        if not isinstance(c, VQConfig):
            raise TypeError(f"config is a {type(c).__name__}: expected a VQConfig")
        self.config = c
        self.encoder = Encoder(c)
        self.decoder = Decoder(c)
        #: ``quantize(z, return_indices=False)``: the codebook, called as a function.
        self.quantize = VectorQuantizer(c.n_embed, c.embed_dim, c.beta)
        self.quant_conv = nn.Conv2d(c.z_channels, c.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(c.embed_dim, c.z_channels, 1)

    @property
    def dtype(self) -> torch.dtype:
        return self.quant_conv.weight.dtype

    def encode(self, x: Tensor) -> Tensor:
        """E(x) = quant_conv(encoder(x)), **not quantised**: images (B, in_channels, H, W),
        nominally in [−1, 1] (a bicubic upsample may overshoot slightly), H and W multiples of
        f → latents (B, embed_dim, H/f, W/f) in the dtype of ``x``."""
        f = self.config.downsample_factor
        _check_tensor("x", x, self.config.in_channels, "in_channels")
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(f"x has size {tuple(x.shape[-2:])}: expected multiples of the "
                             f"downsampling factor {f}")
        return self.quant_conv(self.encoder(x.to(self.dtype))).to(x.dtype)

    def decode(self, z: Tensor, quantize: bool = True) -> Tensor:
        """D(z) = decoder(post_quant_conv(q(z))): latents (B, embed_dim, h, w) → images
        (B, out_ch, f·h, f·w) in the dtype of ``z``. ``quantize=False`` skips the codebook (the
        official ``force_not_quantize``). Differentiable in z (straight-through quantiser)."""
        _check_tensor("z", z, self.config.embed_dim, "embed_dim")
        h = z.to(self.dtype)
        if quantize:
            h = self.quantize(h)
        return self.decoder(self.post_quant_conv(h)).to(z.dtype)

    def forward(self, x: Tensor, quantize: bool = True) -> Tensor:
        """D(E(x)), the reconstruction (official ``forward``)."""
        return self.decode(self.encode(x), quantize)


def _check_tensor(name: str, value: Tensor, channels: int, field: str) -> None:
    if not isinstance(value, Tensor) or value.ndim != 4 or value.shape[1] != channels:
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(f"{name} has shape {shape}: expected (B, {field}={channels}, H, W)")
    if not value.is_floating_point():
        raise ValueError(f"{name} has dtype {value.dtype}: expected a floating-point tensor")
