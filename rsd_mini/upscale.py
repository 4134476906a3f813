"""Super-resolve an image of any size: pad it to what the network accepts, tile it when large
(RSD_SPEC §4c, steps 1–2).

The official sampler ([RS]/[RSD] ``sampler.py`` with ``util_image.ImageSpliterTh``):

1. an LR image larger than the chop size (512 LR pixels) is cut into 512² tiles at stride 448
   (the last tile in each direction is moved back to end at the border); every tile is
   super-resolved on its own and the outputs are **averaged uniformly** where they overlap;
2. each tile (or the whole image) is reflect-padded at the bottom and right to a multiple of 64
   (window 8 × 2³ of the latent UNet), run, and cropped back to ``h·scale × w·scale``.

Here the same: ``h·scale`` and ``w·scale`` must be multiples of ``model.size_multiple`` (the
LR padding is to ``size_multiple / gcd(size_multiple, scale)``). Tile side and overlap default to
the model's own (``model.default_tile``, ``model.default_overlap``; :mod:`rsd_mini.srmodel`):
the official 512 / 64 for the latent models (VQ-f4), and :data:`DEFAULT_TILE` = 64 LR pixels
with :data:`DEFAULT_OVERLAP` = 16 for the pixel-space tiny models (256² network inputs, four
times the side of the 64² training crops, so memory stays small on a CPU; stride 48, a larger
share than the official 64 of 512, as the tiles are smaller).
Where an image side is too short to reflect the padding (reflection needs pad < side), it is
replicated instead of failing.

Sampling noise: an untiled image uses ``generator`` as is, so ``upscale(model, lq, g)`` equals
``model.sr(lq, g)`` for sizes the network accepts. A tiled image draws one seed from
``generator`` and gives each tile its own generator seeded by (seed, top, left), so a tile's
noise does not depend on how many tiles came before it (the official draws all tiles from
one global stream in order).
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from rsd_mini.data import item_generator

#: Tile side and overlap in LR pixels of the pixel-space tiny models, and of any model without
#: ``default_tile`` / ``default_overlap`` (official latent models: 512 and 64; module docstring).
DEFAULT_TILE = 64
DEFAULT_OVERLAP = 16
#: The value of ``tile`` / ``overlap`` that means "the model's default".
AUTO = "auto"


class Upscaler(Protocol):
    """What :func:`upscale` needs of a model: :class:`rsd_mini.srmodel.SRModel` has it."""

    scale: int

    @property
    def size_multiple(self) -> int: ...

    @property
    def default_tile(self) -> int: ...

    @property
    def default_overlap(self) -> int: ...

    def sr(self, lq: Tensor, generator: torch.Generator | None = None, calls: int | None = None) -> Tensor: ...


def pad_to_multiple(lq: Tensor, multiple: int) -> Tensor:
    """Pad (B, C, h, w) at the bottom and right so both sides are multiples of ``multiple``:
    reflect, as the official sampler does, or replicate along a side shorter than its pad."""
    pad_h, pad_w = -lq.shape[-2] % multiple, -lq.shape[-1] % multiple
    if pad_h:
        lq = F.pad(lq, (0, 0, 0, pad_h), mode="reflect" if pad_h < lq.shape[-2] else "replicate")
    if pad_w:
        lq = F.pad(lq, (0, pad_w, 0, 0), mode="reflect" if pad_w < lq.shape[-1] else "replicate")
    return lq


def lr_multiple(model: Upscaler) -> int:
    """The LR side multiple that makes ``side × scale`` a multiple of ``model.size_multiple``."""
    return model.size_multiple // math.gcd(model.size_multiple, model.scale)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile offsets along one side (official ``ImageSpliterTh.extract_starts``): every
    ``tile − overlap`` pixels, the last moved back to end at the border; ``[0]`` if the side
    fits in one tile."""
    if length <= tile:
        return [0]
    return sorted({min(start, length - tile) for start in range(0, length, tile - overlap)})


def tile_boxes(height: int, width: int, tile: int | None = DEFAULT_TILE,
               overlap: int = DEFAULT_OVERLAP) -> list[tuple[int, int, int, int]]:
    """The (top, left, height, width) LR boxes :func:`upscale` runs, row by row; one box (the
    whole image) when it fits in a tile or ``tile`` is None."""
    _check_tiling(tile, overlap)
    if tile is None:
        return [(0, 0, height, width)]
    return [(top, left, min(tile, height), min(tile, width))
            for top in tile_starts(height, tile, overlap) for left in tile_starts(width, tile, overlap)]


def resolve_tiling(model: Upscaler, tile: int | None | str = AUTO, overlap: int | str = AUTO) -> tuple[int | None, int]:
    """(tile, overlap) with :data:`AUTO` replaced by the model's defaults (``default_tile``,
    ``default_overlap``; :data:`DEFAULT_TILE`, :data:`DEFAULT_OVERLAP` for a model without
    them), checked."""
    if tile == AUTO:
        tile = getattr(model, "default_tile", DEFAULT_TILE)
    if overlap == AUTO:
        overlap = getattr(model, "default_overlap", DEFAULT_OVERLAP)
    _check_tiling(tile, overlap)
    return tile, overlap


def _check_tiling(tile: int | None, overlap: int) -> None:
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise ValueError(f"tile={tile!r}: expected a positive number of LR pixels or None (no tiling)")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0 or (tile is not None and overlap >= tile):
        raise ValueError(f"overlap={overlap!r}: expected an integer in [0, tile={tile})")


def _padded_sr(model: Upscaler, lq: Tensor, generator: torch.Generator | None, calls: int | None) -> Tensor:
    """Pad to the network's multiple, super-resolve, crop back to ``h·scale × w·scale``."""
    height, width = lq.shape[-2] * model.scale, lq.shape[-1] * model.scale
    return model.sr(pad_to_multiple(lq, lr_multiple(model)), generator, calls)[..., :height, :width]


@torch.no_grad()
def upscale(model: Upscaler, lq: Tensor, generator: torch.Generator | None = None, calls: int | None = None,
            tile: int | None | str = AUTO, overlap: int | str = AUTO) -> Tensor:
    """Super-resolve LR images (B, 3, h, w) in [−1, 1] of any size → (B, 3, h·scale, w·scale).

    ``calls``: teacher steps (default all T; a student makes one). ``tile``: LR side above which
    the image is tiled (None: never) with ``overlap`` LR pixels between neighbours, outputs
    averaged uniformly (RSD_SPEC §4c step 2); :data:`AUTO` (default): the model's own
    (:func:`resolve_tiling`; 512 / 64 for the official latent models as their sampler, 64 / 16
    for the tiny pixel ones). See the module docstring for padding and noise.
    """
    if not isinstance(lq, Tensor) or lq.ndim != 4 or lq.shape[1] != 3:
        raise ValueError(f"lq has shape {tuple(getattr(lq, 'shape', ()))}: expected (B, 3, h, w)")
    tile, overlap = resolve_tiling(model, tile, overlap)
    boxes = tile_boxes(lq.shape[-2], lq.shape[-1], tile, overlap)
    if len(boxes) == 1:
        return _padded_sr(model, lq, generator, calls)
    device = generator.device if generator is not None else "cpu"
    seed = int(torch.randint(2 ** 62, (), generator=generator, device=device))
    s = model.scale
    total = count = None
    for top, left, height, width in boxes:
        # item_generator is a pure function of its three integers: here (seed, top, left).
        out = _padded_sr(model, lq[..., top:top + height, left:left + width], item_generator(seed, top, left), calls)
        if total is None:
            total = out.new_zeros((*out.shape[:2], lq.shape[-2] * s, lq.shape[-1] * s))
            count = out.new_zeros((1, 1, *total.shape[-2:]))
        window = (..., slice(top * s, (top + height) * s), slice(left * s, (left + width) * s))
        total[window] += out
        count[window] += 1
    return total / count
