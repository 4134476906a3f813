"""The ResShift teacher network: a UNet with Swin-transformer layers (RSD_SPEC §2).

Same structure, parameter names and function as the official ``UNetModelSwin`` of ResShift /
SinSR, so official checkpoints load strictly (see :mod:`rsd_mini.fullscale.official`), built from timm's
window-attention parameters and MLP.

Faster than the official code at the same function (issue #13, ``benchmarks/unet_vs_official.py``):
the ×2 upsampling convolution runs at the low resolution (:class:`Upsample`), and each Swin block
adds its relative-position bias and shifted-window mask once per call and computes attention
in one ``baddbmm`` while training on the CPU, SDPA otherwise (:func:`window_softmax_attention`).

Layout (v1: 118,593,583 parameters): a 3×3 input conv on [scaled x_t, LR image]; per level
ResBlock(+Swin) ×n then a strided-conv Downsample; middle ResBlock–Swin–ResBlock; mirrored output
levels with skip concatenation and nearest+conv Upsample; GroupNorm–SiLU–conv head. The network
predicts x₀ (``predict_type: xstart``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache

import torch
import torch.nn.functional as F
from timm.layers import Mlp
from timm.models.swin_transformer import WindowAttention
from torch import Tensor, nn


@dataclass(frozen=True)
class UNetConfig:
    """Hyper-parameters, named as in the official YAML ``model.params`` (RSD_SPEC §2).

    ``in_channels`` counts every input channel of the first conv: 3 for x_t plus 3 for the LR
    image (SinSR's convention; ResShift's YAML writes 3 and adds the LR channels internally,
    see :func:`rsd_mini.fullscale.official.unet_config_from_official`).
    """

    image_size: int = 64
    in_channels: int = 6
    model_channels: int = 160
    out_channels: int = 3
    num_res_blocks: tuple[int, ...] = (2, 2, 2, 2)
    attention_resolutions: tuple[int, ...] = (64, 32, 16, 8)
    channel_mult: tuple[int, ...] = (1, 2, 2, 4)
    dropout: float = 0.0
    conv_resample: bool = True
    num_head_channels: int = 32
    use_scale_shift_norm: bool = True
    swin_depth: int = 2
    swin_embed_dim: int = 192
    window_size: int = 8
    mlp_ratio: float = 4.0
    cond_lq: bool = True
    #: rsd-mini option, not in the official model (keep False to load official weights): the
    #: output is ``lq + head(h)`` with a zero-initialised head, so an untrained network predicts
    #: x̂₀ = y₀ (the upsampled LR) and training only learns the correction. Needs ``lq`` in the
    #: space of x₀ (pixel-space ResShift, where lq = y₀).
    lq_residual: bool = False
    #: Activation checkpointing while training (``torch.utils.checkpoint``, non-reentrant):
    #: each UNet block recomputes its activations in the backward pass, trading about one extra
    #: forward for memory (the full model at micro-batch 8 on one GPU). Same function, same weights,
    #: so configs that differ only here compare equal (a run resumes, a teacher loads).
    checkpointing: bool = field(default=False, compare=False)

    def __post_init__(self):
        for name in ("num_res_blocks", "attention_resolutions", "channel_mult"):
            value = getattr(self, name)
            object.__setattr__(self, name, tuple(value) if not isinstance(value, int) else value)
        if isinstance(self.num_res_blocks, int):
            object.__setattr__(self, "num_res_blocks", (self.num_res_blocks,) * len(self.channel_mult))
        self.validate()

    def validate(self) -> None:
        """Reject configurations the architecture cannot build, naming the field."""
        if len(self.num_res_blocks) != len(self.channel_mult):
            raise ValueError(f"num_res_blocks={self.num_res_blocks}: expected one entry per "
                             f"level of channel_mult={self.channel_mult}")
        widths = [self.model_channels * m for m in self.channel_mult] + [self.swin_embed_dim]
        if any(w % 32 for w in widths):
            raise ValueError(f"model_channels={self.model_channels}, channel_mult={self.channel_mult},"
                             f" swin_embed_dim={self.swin_embed_dim}: every width must be a multiple"
                             " of 32 (GroupNorm with 32 groups)")
        if self.swin_embed_dim % self.num_head_channels:
            raise ValueError(f"num_head_channels={self.num_head_channels}: expected a divisor of "
                             f"swin_embed_dim={self.swin_embed_dim}")
        if self.lq_residual and not self.cond_lq:
            raise ValueError("lq_residual=True with cond_lq=False: the residual needs the lq input")
        if self.image_size % self.size_multiple:
            raise ValueError(f"image_size={self.image_size}: expected a multiple of "
                             f"{self.size_multiple} (window × 2^downsamplings)")

    @property
    def size_multiple(self) -> int:
        """Inputs must be a multiple of this (window 8 × 2³ = 64 for v1; RSD_SPEC §2)."""
        return self.window_size * 2 ** (len(self.channel_mult) - 1)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


UNET_PRESETS: dict[str, UNetConfig] = {
    # The paper's teacher (ResShift v1/v2, RSD_SPEC §2): 118,593,583 parameters.
    "v1": UNetConfig(),
    # A laptop-CPU teacher of the same family for 64² pixel-space crops (~2.6 M parameters):
    # one ResBlock per level, Swin layers at the two coarsest resolutions, window 4.
    "tiny": UNetConfig(image_size=64, model_channels=32, channel_mult=(1, 2, 2, 4),
                       num_res_blocks=(1, 1, 1, 1), attention_resolutions=(16, 8),
                       swin_embed_dim=64, window_size=4, mlp_ratio=2.0, lq_residual=True),
}


def unet_preset(name: str, **overrides) -> UNetConfig:
    """``unet_preset("v1")`` or ``unet_preset("tiny", model_channels=64)``."""
    if name not in UNET_PRESETS:
        raise ValueError(f"name={name!r}: expected one of {sorted(UNET_PRESETS)}")
    valid = {f.name for f in fields(UNetConfig)}
    unknown = set(overrides) - valid
    if unknown:
        raise ValueError(f"overrides {sorted(unknown)}: not UNetConfig fields {sorted(valid)}")
    return replace(UNET_PRESETS[name], **overrides)


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal embedding of integer timesteps, ordered [cos, sin] as in the official code."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups, the only normalisation of the network (Swin layers included)."""
    return nn.GroupNorm(32, channels)


class ResBlock(nn.Module):
    """Residual block with FiLM ("scale-shift") time conditioning: h = GN(h)(1 + s) + b."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int, dropout: float,
                 use_scale_shift_norm: bool):
        super().__init__()
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(group_norm(channels), nn.SiLU(),
                                       nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, out_channels * (2 if use_scale_shift_norm else 1)))
        self.out_layers = nn.Sequential(group_norm(out_channels), nn.SiLU(), nn.Dropout(dropout),
                                        nn.Conv2d(out_channels, out_channels, 3, padding=1))
        nn.init.zeros_(self.out_layers[-1].weight)  # the block starts as the identity
        nn.init.zeros_(self.out_layers[-1].bias)
        self.skip_connection = (nn.Identity() if out_channels == channels
                                else nn.Conv2d(channels, out_channels, 1))

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.in_layers(x)
        emb = self.emb_layers(emb).to(h.dtype)[..., None, None]
        if self.use_scale_shift_norm:
            scale, shift = emb.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + emb)
        return self.skip_connection(x) + h


class Downsample(nn.Module):
    """Strided 3×3 convolution (``conv_resample``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


#: ``_PHASE_TAPS[p, a, k]``: along one axis, nearest ×2 followed by a 3-tap kernel reads, for an
#: output of parity p, only two input neighbours a ∈ {0, 1} (rows i−1+p and i+p for output row
#: 2i+p); tap k of the 3×3 kernel lands on neighbour a where the entry is 1.
_PHASE_TAPS = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]],
                            [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])


class Upsample(nn.Module):
    """Nearest-neighbour ×2 followed by a 3×3 convolution (the official ``Upsample``), computed
    at the low resolution.

    Output pixel (2i+p, 2j+q) of upsample-then-conv sees only the 2×2 input pixels of rows
    i−1+p, i+p and columns j−1+q, j+q, with some 3×3 taps summed (``_PHASE_TAPS``). So one 2×2
    convolution with 4·C outputs (one block of C per phase (p, q)) over the input padded by one
    computes all four phases: 16 instead of 36 multiply-adds per input pixel and channel pair,
    and no upsampled copy of the input. Same parameter ``conv`` and same function (up to float
    rounding, ~10⁻⁶ relative) as upsample-then-conv; its backward is the exact adjoint.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def phase_kernel(self) -> Tensor:
        """The 2×2 kernel of the four phases, (4·C_out, C_in, 2, 2), ordered (p, q, c_out)."""
        taps = _PHASE_TAPS.to(self.conv.weight)
        kernel = torch.einsum("pay,qbx,oiyx->pqoiab", taps, taps, self.conv.weight)
        return kernel.reshape(4 * self.conv.out_channels, self.conv.in_channels, 2, 2)

    def forward(self, x: Tensor) -> Tensor:
        c = self.conv.out_channels
        phases = F.conv2d(F.pad(x, (1, 1, 1, 1)), self.phase_kernel(), self.conv.bias.repeat(4))
        b, _, h, w = phases.shape  # (B, 4C, H+1, W+1); phase (p, q) starts at row p, column q
        s_b, s_c, s_h, s_w = phases.stride()
        # out[b, c, i, p, j, q] = phases[b, (2p + q)·C + c, i + p, j + q], a plain strided view
        out = phases.as_strided((b, c, h - 1, 2, w - 1, 2),
                                (s_b, s_c, s_h, 2 * c * s_c + s_h, s_w, c * s_c + s_w))
        return out.reshape(b, c, 2 * (h - 1), 2 * (w - 1))


@lru_cache(maxsize=32)
def _shifted_window_mask(height: int, width: int, window: int, shift: int) -> Tensor:
    """The additive attention mask (0 / −100) of shifted windows, exactly as the official code
    computes it. The official label map is laid out (1, 1, H, W) but indexed as if it were
    (1, H, W, 1), and its windows are flattened column-major; the result is that token (a, b)
    of window (i, j) is labelled by the band of global row i·window + b. The released
    checkpoints were trained with this mask, so we keep it (it is a deterministic function)."""
    rows = torch.arange(height, device="cpu")  # cached: never on a default meta device
    band = torch.where(rows < height - window, 0, torch.where(rows < height - shift, 1, 2))
    labels = band.view(height // window, 1, 1, window).expand(-1, width // window, window, -1)
    labels = labels.reshape(-1, window * window).float()   # token index a·window + b → band(b)
    mask = labels[:, None, :] - labels[:, :, None]
    return mask.masked_fill(mask != 0, -100.0)


class SwinBlock(nn.Module):
    """(Shifted-)window attention block on (B, C, H, W) maps with GroupNorm (RSD_SPEC §2)."""

    def __init__(self, dim: int, resolution: int, num_heads: int, window_size: int,
                 shift: bool, mlp_ratio: float, dropout: float):
        super().__init__()
        if resolution <= window_size:  # one window covers the map: no shift (as official)
            window_size, shift = resolution, False
        self.window_size, self.shift_size = window_size, window_size // 2 if shift else 0
        self.resolution = resolution
        self.norm1 = group_norm(dim)
        self.attn = WindowAttention(dim, num_heads, window_size=window_size, qkv_bias=True,
                                    proj_drop=dropout)
        self.norm2 = group_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=dropout, use_conv=True)
        if self.shift_size:
            self.register_buffer("attn_mask", self._mask(resolution, resolution))

    def _mask(self, height: int, width: int) -> Tensor:
        return _shifted_window_mask(height, width, self.window_size, self.shift_size).clone()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self._attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))

    def _attention(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        ws, shift = self.window_size, self.shift_size
        if shift:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(2, 3))
        windows = (x.view(b, c, h // ws, ws, w // ws, ws).permute(0, 2, 4, 3, 5, 1)
                   .reshape(-1, ws * ws, c))
        out = self._window_attention(windows, self._bias(h, w))
        out = out.view(b, h // ws, w // ws, ws, ws, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, h, w)
        return torch.roll(out, shifts=(shift, shift), dims=(2, 3)) if shift else out

    def _bias(self, height: int, width: int) -> Tensor:
        """Relative-position bias plus, for shifted windows, the window mask, added once per
        call for all windows: (windows of one image or 1, heads, N, N)."""
        n = self.window_size ** 2
        table, index = self.attn.relative_position_bias_table, self.attn.relative_position_index
        bias = table[index.view(-1)].view(n, n, -1).permute(2, 0, 1)  # (heads, N, N)
        if not self.shift_size:
            return bias[None]
        same_size = height == width == self.resolution
        mask = self.attn_mask if same_size else self._mask(height, width).to(bias.device)
        return bias + mask[:, None]

    def _window_attention(self, windows: Tensor, bias: Tensor) -> Tensor:
        """W-MSA: proj(softmax(q kᵀ/√d + bias) v) per window and head, windows (B·nW, N, C)."""
        bw, n, c = windows.shape
        heads = self.attn.num_heads
        qkv = self.attn.qkv(windows).view(bw, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        bias = bias.expand(bw // len(bias), *bias.shape).reshape(bw, heads, n, n)
        out = window_softmax_attention(*qkv.unbind(0), bias, self.attn.scale)
        out = out.transpose(1, 2).reshape(bw, n, c)
        return self.attn.proj_drop(self.attn.proj(out))


def window_softmax_attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, scale: float) -> Tensor:
    """softmax(q kᵀ·scale + bias) v for (windows, heads, N, d) inputs.

    Torch's fused CPU kernel (SDPA) has no gradient for an additive bias, so when the learned
    relative-position bias needs one SDPA falls back to its unfused path, which checks every row
    for −∞; there, one ``baddbmm`` (scores and bias in one pass) and one ``bmm`` are faster. In
    inference, and on GPUs (whose SDPA kernels give the bias its gradient), SDPA is used."""
    bias = bias.to(q.dtype)  # float32 parameters beside float16/bfloat16 activations
    if not (bias.requires_grad and q.device.type == "cpu"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)
    bw, heads, n, d = q.shape
    scores = torch.baddbmm(bias.reshape(-1, n, n), q.reshape(-1, n, d),
                           k.reshape(-1, n, d).transpose(1, 2), alpha=scale)
    return torch.bmm(scores.softmax(-1), v.reshape(-1, n, d)).view(bw, heads, n, d)


class PatchConv(nn.Module):
    """A 1×1 convolution named ``proj`` (the official patch (un)embedding at patch size 1)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class SwinLayer(nn.Module):
    """The official ``BasicLayer``: 1×1 conv C→E, Swin blocks (every second one shifted),
    1×1 conv E→C; no outer residual."""

    def __init__(self, channels: int, resolution: int, config: UNetConfig):
        super().__init__()
        dim = config.swin_embed_dim
        self.patch_embed = PatchConv(channels, dim)
        self.blocks = nn.ModuleList(
            SwinBlock(dim, resolution, dim // config.num_head_channels, config.window_size,
                      shift=i % 2 == 1, mlp_ratio=config.mlp_ratio, dropout=config.dropout)
            for i in range(config.swin_depth))
        self.patch_unembed = PatchConv(dim, channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x)
        for block in self.blocks:
            x = block(x)
        return self.patch_unembed(x)


class TimestepSequential(nn.Sequential):
    """A sequence whose ResBlocks also receive the time embedding."""

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


class SwinUNet(nn.Module):
    """f_θ(x_t, y₀, t): the ResShift x₀-predictor (official ``UNetModelSwin``).

    ``forward(x_t, t, lq=lq)``: ``x_t`` is the already scaled state
    (:meth:`rsd_mini.diffusion.ResShift.scale_input`), ``t`` the integer index i = t−1 per
    sample, ``lq`` the conditioning image at the same spatial size, concatenated on channels.
    """

    def __init__(self, config: UNetConfig | None = None):
        super().__init__()
        self.config = config = config or UNetConfig()
        ch, emb_dim = config.model_channels, config.model_channels * 4
        self.time_embed = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.input_blocks = nn.ModuleList([TimestepSequential(nn.Conv2d(config.in_channels, ch, 3, padding=1))])
        skips, resolution = [ch], config.image_size
        for level, mult in enumerate(config.channel_mult):
            for j in range(config.num_res_blocks[level]):
                layers = [self._resblock(ch, ch := config.model_channels * mult)]
                if j == 0 and resolution in config.attention_resolutions:
                    layers.append(SwinLayer(ch, resolution, config))
                self.input_blocks.append(TimestepSequential(*layers))
                skips.append(ch)
            if level < len(config.channel_mult) - 1:
                self.input_blocks.append(TimestepSequential(Downsample(ch)))
                skips.append(ch)
                resolution //= 2
        self.middle_block = TimestepSequential(self._resblock(ch, ch), SwinLayer(ch, resolution, config),
                                               self._resblock(ch, ch))
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(config.channel_mult))):
            for j in range(config.num_res_blocks[level] + 1):
                layers = [self._resblock(ch + skips.pop(), ch := config.model_channels * mult)]
                if j == 0 and resolution in config.attention_resolutions:
                    layers.append(SwinLayer(ch, resolution, config))
                if level and j == config.num_res_blocks[level]:
                    layers.append(Upsample(ch))
                    resolution *= 2
                self.output_blocks.append(TimestepSequential(*layers))
        self.out = nn.Sequential(group_norm(ch), nn.SiLU(),
                                 nn.Conv2d(ch, config.out_channels, 3, padding=1))
        if config.lq_residual:
            nn.init.zeros_(self.out[-1].weight)
            nn.init.zeros_(self.out[-1].bias)

    def _resblock(self, channels: int, out_channels: int) -> ResBlock:
        c = self.config
        return ResBlock(channels, c.model_channels * 4, out_channels, c.dropout, c.use_scale_shift_norm)

    def forward(self, x: Tensor, t: Tensor, lq: Tensor | None = None,
                noise: Tensor | None = None) -> Tensor:
        """x̂₀ from the scaled x_t, integer timesteps t, the LR condition and, for an RSD
        student (RSD_SPEC §4a "Initialisation"), the extra noise input channel(s) ε₁."""
        h, emb, skips = self._encode(x, t, lq, noise)
        for block in self.output_blocks:
            h = self._run(block, torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h) + lq.to(h.dtype) if self.config.lq_residual else self.out(h)

    def bottleneck(self, x: Tensor, t: Tensor, lq: Tensor | None = None,
                   noise: Tensor | None = None) -> Tensor:
        """The middle-block features (B, C_max, H/2^L, W/2^L), which RSD's GAN head reads."""
        return self._encode(x, t, lq, noise)[0]

    def _encode(self, x: Tensor, t: Tensor, lq: Tensor | None,
                noise: Tensor | None) -> tuple[Tensor, Tensor, list[Tensor]]:
        inputs = [x] + [v.to(x.dtype) for v in (lq, noise) if v is not None]
        self._check_input(inputs, t, lq)
        emb = self.time_embed(timestep_embedding(t, self.config.model_channels))
        h, skips = torch.cat(inputs, dim=1), []
        for block in self.input_blocks:
            h = self._run(block, h, emb)
            skips.append(h)
        return self._run(self.middle_block, h, emb), emb, skips

    def _run(self, block: nn.Module, h: Tensor, emb: Tensor) -> Tensor:
        """``block(h, emb)``, recomputed in the backward pass under ``config.checkpointing``."""
        if self.config.checkpointing and torch.is_grad_enabled() and self.training:
            return torch.utils.checkpoint.checkpoint(block, h, emb, use_reentrant=False)
        return block(h, emb)

    @property
    def bottleneck_channels(self) -> int:
        return self.config.model_channels * self.config.channel_mult[-1]

    def _check_input(self, inputs: list[Tensor], t: Tensor, lq: Tensor | None) -> None:
        x, channels = inputs[0], sum(v.shape[1] for v in inputs)
        if channels != self.config.in_channels:
            raise ValueError(f"x_t, lq and noise have {channels} channels together: expected "
                             f"in_channels={self.config.in_channels}")
        for v in inputs[1:]:
            if v.shape[2:] != x.shape[2:]:
                raise ValueError(f"lq/noise has size {tuple(v.shape[2:])}: expected the size of "
                                 f"x_t {tuple(x.shape[2:])}")
        if self.config.lq_residual and (lq is None or lq.shape[1] != self.config.out_channels):
            raise ValueError(f"lq={None if lq is None else tuple(lq.shape)}: lq_residual=True "
                             f"needs an lq of out_channels={self.config.out_channels} channels")
        m = self.config.size_multiple
        if x.shape[2] % m or x.shape[3] % m:
            raise ValueError(f"x_t has size {tuple(x.shape[2:])}: expected multiples of {m}; pad "
                             "the input (the official sampler reflect-pads)")
        if t.shape != (x.shape[0],) or t.is_floating_point():
            raise ValueError(f"t has shape {tuple(t.shape)} and dtype {t.dtype}: expected integer "
                             f"timesteps of shape ({x.shape[0]},)")


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
