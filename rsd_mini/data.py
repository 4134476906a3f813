"""Training and test images: reading, the official GT crop, (HR, LR) datasets (RSD_SPEC §6).

The paper trains on ImageNet with the ``RealESRGANDataset`` GT pipeline (``rescale_gt: True``,
RSD_SPEC §6 "Training data"): flip, reflect-pad to a square of the short side (min 256), random
square crop of the short side, **area-resize to 256²**; the LR image is then made on the fly by the
Real-ESRGAN degradation (:mod:`rsd_mini.degradations`) and rounded to 8 bits. Both the crop and the
degradation draw from one ``torch.Generator`` seeded by (seed, epoch, index), so an item is the same
whatever the number of DataLoader workers.

- :func:`load_image` / :func:`save_image`: files <-> float (3, H, W) tensors in [0, 1].
- :func:`random_square_crop_resize` (official GT pipeline) and :func:`random_crop` (native pixels).
- :class:`ImageListSR` / :class:`ImageFolderSR`: HR crops + on-the-fly LR, in [-1, 1].
- :class:`PairedFolderSR`: fixed LR/HR pairs (test sets such as RealSR), in [-1, 1].
- :func:`mini_dataset`: a tiny train/val set from photos bundled with scikit-image (no network).
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from rsd_mini.checkpoint import write_atomic

#: File endings treated as images (case-insensitive), as the official ``im_exts`` plus TIFF/WebP.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
CROP_MODES = ("resize", "crop", "zoom")
SPLITS = ("train", "val")

#: ``degradation`` argument: a preset name of :func:`rsd_mini.degradations.degradation_preset`, a
#: callable ``(hr (B,3,H,W) in [0,1], generator) -> lq (B,3,H/s,W/s) in [0,1]``, or None (HR only).
DegradationLike = str | Callable[[Tensor, torch.Generator], Tensor] | None


# ----------------------------------------------------------------------------- reading, writing
def load_image(path: str | os.PathLike) -> Tensor:
    """Read an image file as float32 (3, H, W) RGB in [0, 1].

    EXIF orientation is applied (as ``cv2.imread`` does in the official loader). Grey images are
    replicated to RGB; palette images become RGB; images with alpha (RGBA, LA, transparent
    palette) are composited on white, whereas the official ``cv2.IMREAD_COLOR`` drops alpha and
    keeps whatever colour hides under transparent pixels. 16-bit grey (modes ``I;16*``, ``I``) is
    divided by 65535; Pillow itself reads 16-bit RGB PNGs as 8-bit. Multi-frame files: first frame.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            array = _to_rgb_array(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"{path}: not a readable image file ({error})") from error
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] from any Pillow mode."""
    if image.mode.startswith("I"):  # 16-bit grey ("I;16", "I;16B", ...) or 32-bit "I" from 16-bit PNGs
        grey = np.clip(np.asarray(image, dtype=np.float32) / 65535.0, 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode == "F":
        raise ValueError("32-bit float images (mode 'F') have no defined range; convert them first")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:]
        return rgba[..., :3] * alpha + (1.0 - alpha)  # composite on white
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def save_image(image: Tensor, path: str | os.PathLike, value_range: tuple[float, float] = (0.0, 1.0)) -> Path:
    """Write ``image`` (3, H, W), (1, H, W) or (H, W) with values in ``value_range`` as an 8-bit PNG.

    Values are clipped to the range and rounded to 8 bits; the file is written to a temporary name
    in the same folder and moved into place with ``os.replace``, so readers never see half a file.
    """
    array = _to_uint8_array(image, value_range)
    return write_atomic(path, lambda file: Image.fromarray(array).save(file, format="PNG"))


def _to_uint8_array(image: Tensor, value_range: tuple[float, float]) -> np.ndarray:
    """(H, W, 3) or (H, W) uint8 from a (3, H, W), (1, H, W) or (H, W) tensor in ``value_range``."""
    shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
    if not isinstance(image, Tensor) or not (image.dim() == 2 or (image.dim() == 3 and image.shape[0] in (1, 3))):
        raise ValueError(f"image: expected a tensor of shape (3, H, W), (1, H, W) or (H, W), got {shape}")
    low, high = value_range
    if not high > low:
        raise ValueError(f"value_range={value_range!r}: expected (low, high) with high > low")
    unit = ((image.detach().float().cpu() - low) / (high - low)).clamp(0, 1)
    array = torch.round(unit * 255).to(torch.uint8)
    if array.dim() == 3:
        array = array[0] if array.shape[0] == 1 else array.permute(1, 2, 0)
    return array.contiguous().numpy()


# ----------------------------------------------------------------------------- crops
def _check_crop_args(img: Tensor, size: int) -> None:
    if not isinstance(img, Tensor) or img.dim() != 3:
        raise ValueError(f"img: expected a (C, H, W) tensor, got {getattr(img, 'shape', type(img).__name__)}")
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size={size!r}: expected a positive integer")
    if min(img.shape[-2:]) < 2:
        raise ValueError(f"img of size {tuple(img.shape[-2:])}: expected at least 2x2 pixels to reflect-pad")


def _random_hflip(img: Tensor, generator: torch.Generator) -> Tensor:
    """Horizontal flip with p = 0.5 (RSD_SPEC §6 step 1; ``use_hflip``, no rotation)."""
    return img.flip(-1) if torch.rand((), generator=generator).item() < 0.5 else img


def _reflect_pad_to(img: Tensor, height: int, width: int) -> Tensor:
    """Reflect-pad (cv2 ``BORDER_REFLECT_101``) at the bottom/right until the image is at least
    ``height`` x ``width``; like the official loop, each pass adds at most the current size."""
    while img.shape[-2] < height or img.shape[-1] < width:
        pad_h = min(max(0, height - img.shape[-2]), img.shape[-2] - 1)
        pad_w = min(max(0, width - img.shape[-1]), img.shape[-1] - 1)
        img = F.pad(img, (0, pad_w, 0, pad_h), mode="reflect")
    return img


def _random_window(img: Tensor, side: int, generator: torch.Generator) -> Tensor:
    """A uniformly placed ``side`` x ``side`` window of an image at least that large."""
    height, width = img.shape[-2:]
    top = int(torch.randint(0, height - side + 1, (), generator=generator))
    left = int(torch.randint(0, width - side + 1, (), generator=generator))
    return img[:, top:top + side, left:left + side]


def random_square_crop_resize(img: Tensor, size: int, generator: torch.Generator) -> Tensor:
    """The official GT pipeline (``RealESRGANDataset`` with ``rescale_gt``; RSD_SPEC §6 steps 1-4).

    1. flip horizontally with p = 0.5;
    2. reflect-pad to a square of side ``max(short side, size)`` if needed;
    3. take a random square crop of that side;
    4. area-resize it to ``size`` x ``size`` (never an upscale, since the side is >= ``size``).

    ``img`` is (C, H, W) float; the crop is (C, size, size).
    """
    _check_crop_args(img, size)
    img = _random_hflip(img, generator)
    side = max(min(img.shape[-2:]), size)
    img = _random_window(_reflect_pad_to(img, side, side), side, generator)
    if side != size:  # cv2.INTER_AREA; torch's "area" is the same box average for downscaling
        img = F.interpolate(img[None], size=(size, size), mode="area")[0]
    return img


def random_crop(img: Tensor, size: int, generator: torch.Generator) -> Tensor:
    """A native-resolution random ``size`` x ``size`` crop, after a p = 0.5 horizontal flip.

    An image smaller than the crop is reflect-padded if both sides are at least ``size / 2``;
    smaller images raise a ValueError (padding would make most of the crop a mirror image).
    Unlike :func:`random_square_crop_resize`, pixels keep their scale (ResShift's BSRGAN datasets).
    """
    _check_crop_args(img, size)
    height, width = img.shape[-2:]
    if 2 * min(height, width) < size:
        raise ValueError(f"image of size {height}x{width} is too small for crop size {size}: "
                         f"expected both sides >= {(size + 1) // 2} (half the crop) to reflect-pad")
    img = _random_hflip(img, generator)
    return _random_window(_reflect_pad_to(img, size, size), size, generator)


def random_zoom_crop(img: Tensor, size: int, generator: torch.Generator,
                     max_zoom: float = 4.0) -> Tensor:
    """A random square window of side ``size``·2^u, u ~ U[0, log2(max_zoom)] (capped by the
    image), area-resized to ``size``, after a p = 0.5 horizontal flip.

    Between :func:`random_crop` (zoom 1: mostly fine texture, which a 4× smaller LR image
    cannot determine) and :func:`random_square_crop_resize` (the whole photo shrunk to one
    crop): crops that keep object structure, so super-resolution has something to recover.
    """
    _check_crop_args(img, size)
    img = _random_hflip(img, generator)
    longest = min(max_zoom * size, min(img.shape[-2:]))
    if longest <= size:
        return random_crop(img, size, generator)
    side = int(size * (longest / size) ** float(torch.rand((), generator=generator)))
    img = _random_window(img, max(side, size), generator)
    return F.interpolate(img[None], size=(size, size), mode="area")[0] if side > size else img


_CROPS = {"resize": random_square_crop_resize, "crop": random_crop, "zoom": random_zoom_crop}


# ----------------------------------------------------------------------------- HR/LR datasets
def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The generator of one dataset item: a pure function of (seed, epoch, index), so results do
    not depend on worker count or order. ``SeedSequence`` mixes the three into 63 bits."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(((int(state[0]) << 32) | int(state[1])) >> 1)


def resolve_degradation(degradation: DegradationLike, scale: int) -> Callable | None:
    """A degradation callable from a preset name (its ``scale`` set to ``scale``), a callable, or None."""
    if degradation is None or callable(degradation):
        config_scale = getattr(getattr(degradation, "config", None), "scale", scale)
        if config_scale != scale:
            raise ValueError(f"degradation has scale {config_scale}, but the dataset has scale={scale}")
        return degradation
    if not isinstance(degradation, str):
        raise ValueError(f"degradation={degradation!r}: expected a preset name, a callable or None")
    from rsd_mini.degradations import Degradation, degradation_preset

    return Degradation(dataclasses.replace(degradation_preset(degradation), scale=scale))


class ImageListSR(Dataset):
    """HR crops of a list of image files, each with an LR image degraded on the fly (RSD_SPEC §6).

    ``dataset[i]`` is ``{"hr": (3, S, S), "lq": (3, S/scale, S/scale), "path": str}`` in [-1, 1].
    Item ``i`` uses file ``i % len(files)``; ``length`` (default: one item per file) sets the
    epoch size. The crop (``crop_mode`` "resize": official :func:`random_square_crop_resize`;
    "crop": :func:`random_crop`) and the degradation draw from :func:`item_generator` (seed,
    epoch, i). The LR image is rounded to 8 bits (official ``prepare_data``). With
    ``degradation=None`` items hold only "hr" and "path" (degrade batches on the device instead).

    ``set_epoch(e)`` selects new crops; with ``reseed_each_epoch=False`` the items never change
    (fixed validation crops). ``set_epoch`` acts on this object only: a DataLoader with
    ``persistent_workers=True`` keeps the workers' copies at their old epoch.
    ``cache_images`` keeps decoded files in memory (per worker); use it for small sets only.
    ``permute_colors`` shuffles the RGB channels of each item (seeded like the crop).
    """

    def __init__(self, files: Sequence[str | os.PathLike], crop_size: int = 256, scale: int = 4,
                 degradation: DegradationLike = "realesrgan-light", crop_mode: str = "resize",
                 seed: int = 0, length: int | None = None, reseed_each_epoch: bool = True,
                 cache_images: bool = False, permute_colors: bool = False):
        _check_sizes(crop_size, scale)
        if crop_mode not in CROP_MODES:
            raise ValueError(f"crop_mode={crop_mode!r}: expected one of {CROP_MODES}")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed={seed!r}: expected a non-negative integer")
        self.files = [str(f) for f in files]
        if not self.files:
            raise ValueError("files: expected at least one image file, got none")
        if length is not None and (not isinstance(length, int) or length < 1):
            raise ValueError(f"length={length!r}: expected a positive integer or None")
        self.crop_size, self.scale, self.crop_mode, self.seed = crop_size, scale, crop_mode, seed
        self.length = len(self.files) if length is None else length
        self.degradation = resolve_degradation(degradation, scale)
        self.reseed_each_epoch, self.cache_images = reseed_each_epoch, cache_images
        self.permute_colors = permute_colors
        self.epoch = 0
        self._cache: dict[str, Tensor] = {}

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Select the crops and degradations of ``epoch`` (no effect if ``reseed_each_epoch`` is False)."""
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch={epoch!r}: expected a non-negative integer")
        self.epoch = epoch

    def _load(self, path: str) -> Tensor:
        if not self.cache_images:
            return load_image(path)
        if path not in self._cache:
            self._cache[path] = load_image(path)
        return self._cache[path]

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of {self.length} items")
        index %= self.length
        path = self.files[index % len(self.files)]
        generator = item_generator(self.seed, self.epoch if self.reseed_each_epoch else 0, index)
        try:
            hr = _CROPS[self.crop_mode](self._load(path), self.crop_size, generator)
            if self.permute_colors:  # a colour augmentation for tiny training sets
                hr = hr[torch.randperm(3, generator=generator)]
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error
        item = {"hr": hr * 2 - 1, "path": path}
        if self.degradation is not None:
            item["lq"] = self._degrade(hr, generator) * 2 - 1
        return item

    def _degrade(self, hr: Tensor, generator: torch.Generator) -> Tensor:
        """LR image in [0, 1], rounded to 8 bits (RSD_SPEC §6: "round to 8 bits, map to [-1, 1])."""
        lq = self.degradation(hr[None], generator)[0]
        expected = (3, self.crop_size // self.scale, self.crop_size // self.scale)
        if tuple(lq.shape) != expected:
            raise ValueError(f"degradation returned shape {tuple(lq.shape)}, expected {expected}")
        return torch.round(lq.clamp(0, 1) * 255) / 255


class ImageFolderSR(ImageListSR):
    """:class:`ImageListSR` over every image under ``root`` (recursive, sorted by path), the
    counterpart of the official ``RealESRGANDataset`` on ``dir_paths`` (RSD_SPEC §6)."""

    def __init__(self, root: str | os.PathLike, crop_size: int = 256, scale: int = 4,
                 degradation: DegradationLike = "realesrgan-light", crop_mode: str = "resize",
                 seed: int = 0, extensions: Sequence[str] = IMAGE_EXTENSIONS, **kwargs):
        files = scan_images(root, extensions, recursive=True)
        if not files:
            raise ValueError(f"root={str(root)!r}: no image files ({', '.join(extensions)}) found in this folder")
        self.root = str(root)
        super().__init__(files, crop_size, scale, degradation, crop_mode, seed, **kwargs)


def _check_sizes(crop_size: int, scale: int) -> None:
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale={scale!r}: expected a positive integer")
    if not isinstance(crop_size, int) or crop_size < scale or crop_size % scale:
        raise ValueError(f"crop_size={crop_size!r}: expected a positive multiple of scale={scale}")


def scan_images(root: str | os.PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS,
                recursive: bool = True) -> list[Path]:
    """Image files in ``root`` (sorted; hidden files skipped), endings matched case-insensitively."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    suffixes = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    found = root.rglob("*") if recursive else root.iterdir()
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."))


# ----------------------------------------------------------------------------- fixed pairs
class PairedFolderSR(Dataset):
    """Fixed LR/HR pairs matched by file stem (test sets: ImageNet-Test, RealSR; RSD_SPEC §6).

    ``dataset[i]`` is ``{"lq": (3, h, w), "hr": (3, scale*h, scale*w), "name": stem}`` in [-1, 1];
    without ``gt_dir`` (e.g. RealSet65, no GT) only "lq" and "name". Folders are not searched
    recursively. Names and sizes (read from file headers) are checked when the dataset is built.
    """

    def __init__(self, lq_dir: str | os.PathLike, gt_dir: str | os.PathLike | None = None, scale: int = 4,
                 extensions: Sequence[str] = IMAGE_EXTENSIONS):
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale={scale!r}: expected a positive integer")
        self.scale = scale
        self.lq_files = _files_by_stem(lq_dir, extensions)
        self.gt_files = None if gt_dir is None else _files_by_stem(gt_dir, extensions)
        if self.gt_files is not None:
            _check_same_names(self.lq_files, self.gt_files, lq_dir, gt_dir)
            for name in self.lq_files:
                _check_pair_size(name, self.lq_files[name], self.gt_files[name], scale)
        self.names = sorted(self.lq_files)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        name = self.names[index]
        item = {"lq": load_image(self.lq_files[name]) * 2 - 1, "name": name}
        if self.gt_files is not None:
            item["hr"] = load_image(self.gt_files[name]) * 2 - 1
        return item


def _files_by_stem(folder: str | os.PathLike, extensions: Sequence[str]) -> dict[str, Path]:
    files = scan_images(folder, extensions, recursive=False)
    if not files:
        raise ValueError(f"{folder}: no image files ({', '.join(extensions)}) found in this folder")
    by_stem: dict[str, Path] = {}
    for path in files:
        if path.stem in by_stem:
            raise ValueError(f"{folder}: two images share the name {path.stem!r} "
                             f"({by_stem[path.stem].name}, {path.name}); expected unique stems")
        by_stem[path.stem] = path
    return by_stem


def _check_same_names(lq: dict, gt: dict, lq_dir, gt_dir, shown: int = 5) -> None:
    only_lq, only_gt = sorted(set(lq) - set(gt)), sorted(set(gt) - set(lq))
    if only_lq or only_gt:
        raise ValueError(f"LR and HR file names differ: {len(only_lq)} only in {lq_dir} "
                         f"(first: {only_lq[:shown]}), {len(only_gt)} only in {gt_dir} (first: {only_gt[:shown]})")


def _image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the file header."""
    try:
        with Image.open(path) as image:
            width, height = ImageOps.exif_transpose(image).size
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path}: not a readable image file ({error})") from error
    return height, width


def _check_pair_size(name: str, lq_path: Path, gt_path: Path, scale: int) -> None:
    (lh, lw), (gh, gw) = _image_size(lq_path), _image_size(gt_path)
    if (gh, gw) != (scale * lh, scale * lw):
        raise ValueError(f"{name}: HR {gt_path} is {gh}x{gw} but LR {lq_path} is {lh}x{lw}; "
                         f"expected HR = {scale} x LR = {scale * lh}x{scale * lw}")


def export_paired(dataset: Dataset, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write every item of an HR/LR dataset as 8-bit PNGs ``out_dir/lq/NAME.png`` and
    ``out_dir/hr/NAME.png`` (NAME = ``0003_chelsea``: index and source stem), readable by
    :class:`PairedFolderSR` and the evaluate CLI. Returns the (lq, hr) folders."""
    lq_dir, hr_dir = Path(out_dir) / "lq", Path(out_dir) / "hr"
    for index in range(len(dataset)):
        item = dataset[index]
        if "lq" not in item or "hr" not in item:
            raise ValueError(f"dataset item {index} has keys {sorted(item)}; expected 'lq' and 'hr' "
                             f"(build the dataset with a degradation)")
        name = f"{index:04d}_{Path(str(item.get('path', item.get('name', 'image')))).stem}"
        save_image(item["lq"], lq_dir / f"{name}.png", value_range=(-1.0, 1.0))
        save_image(item["hr"], hr_dir / f"{name}.png", value_range=(-1.0, 1.0))
    return lq_dir, hr_dir


# ----------------------------------------------------------------------------- mini dataset
#: Photos shipped inside the scikit-image wheel (``skimage/data``; none needs pooch or network).
#: The splits share no photo; the two near-identical motorcycle views are both in train.
#: Grey photos (camera, coins, moon, and the grass/gravel/brick textures) are replicated to RGB.
MINI_PHOTOS = {
    "train": ("astronaut.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "motorcycle_right.png",
              "hubble_deep_field.jpg", "retina.jpg", "moon.png", "grass.png", "gravel.png", "brick.png"),
    "val": ("chelsea.png", "ihc.png", "camera.png", "coins.png"),
}
MINI_NUM_CROPS = {"train": 256, "val": 32}


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {SPLITS}")


def mini_photo_names(split: str) -> list[str]:
    """File names (in scikit-image's data folder) of the photos of ``split``, "train" or "val"."""
    _check_split(split)
    return list(MINI_PHOTOS[split])


def mini_photo_paths(split: str) -> list[Path]:
    """Paths of the bundled photos of ``split``; never downloads anything."""
    folder = Path(str(importlib.resources.files("skimage") / "data"))
    paths = [folder / name for name in mini_photo_names(split)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"scikit-image at {folder} lacks the bundled photos {missing}; "
                                f"expected a scikit-image wheel that ships them (>= 0.19)")
    return paths


def mini_dataset(split: str = "train", crop_size: int = 64, scale: int = 4,
                 degradation: DegradationLike = "realesrgan-light", num_crops: int | None = None,
                 seed: int = 0, crop_mode: str = "zoom", permute_colors: bool = False) -> ImageListSR:
    """A tiny SR dataset from photos bundled with scikit-image (the fast CPU path; RSD_SPEC §6).

    Same code as :class:`ImageFolderSR`, on disjoint photo lists (:data:`MINI_PHOTOS`). "train":
    ``num_crops`` (default 256) random crops per epoch, new ones after ``set_epoch``. "val":
    ``num_crops`` (default 32) crops fixed by ``seed`` alone, identical on every call and epoch.
    ``crop_mode`` defaults to "zoom" (:func:`random_zoom_crop`): native-resolution 64² "crop"s
    are mostly texture that a 16² LR image does not determine (even a perfect sampler then
    loses PSNR to bicubic), and the official "resize" would shrink each whole photo to
    ``crop_size``, leaving only a handful of distinct views of 15 photos. ``permute_colors``
    shuffles the RGB channels of train crops (11 photos, 4 of them grey, carry few colours);
    off by default: in a 1000-update tiny run it traded a colour cast for colour noise.
    """
    _check_split(split)
    return ImageListSR(mini_photo_paths(split), crop_size=crop_size, scale=scale, degradation=degradation,
                       crop_mode=crop_mode, seed=seed, length=num_crops or MINI_NUM_CROPS[split],
                       reseed_each_epoch=split == "train", cache_images=True,
                       permute_colors=permute_colors and split == "train")
