"""Evaluate a model (or bicubic) on a folder of LR images, with or without HR ground truth, and
super-resolve image files: the ``evaluate`` and ``upscale`` commands (RSD_SPEC §6 "Metrics").

The official protocol ([RSD] ``evaluate.py``, pyiqa) measures the PNG files that inference
wrote: [0, 1] RGB, full image, no border crop, averaged per image; PSNR and SSIM on the Y
channel. Here every output is rounded to 8 bits before it is measured, so the numbers are
those of the PNGs that ``--save`` writes. Per image (:mod:`rsd_mini.metrics`):

- ``psnr``, ``ssim`` (with ground truth);
- ``lr_fidelity``: PSNR between the bicubic-downsampled output and the LR input;
- ``high_frequency_ratio``: the share of spectral energy above half Nyquist (compare it with
  ``ground_truth_high_frequency_ratio``);
- optionally pyiqa's ``lpips``, ``dists`` (with ground truth), ``clipiqa``, ``musiq``,
  ``maniqa``, ``niqe``.

Every image is sampled with a generator seeded by ``seed`` (so an image's output does not
depend on the other files in the folder) through :func:`rsd_mini.upscale.upscale`, which pads
and tiles any size. ``seconds`` times that call alone; the first image includes warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from rsd_mini import metrics
from rsd_mini.checkpoint import write_bytes_atomic
from rsd_mini.data import PairedFolderSR, _image_size, load_image, save_image, scan_images
from rsd_mini.degradations import bicubic_upsample, quantize_8bit
from rsd_mini.hub import SHIPPED, SRModel, load
from rsd_mini.upscale import DEFAULT_OVERLAP, DEFAULT_TILE, tile_boxes, upscale

#: Baselines without a network, by ``--method`` name.
METHODS = ("bicubic",)
#: Per-image metrics of every evaluation (``psnr`` and ``ssim`` need ground truth).
FULL_REFERENCE, NO_REFERENCE = ("psnr", "ssim"), ("lr_fidelity", "high_frequency_ratio")


def check_steps(model: SRModel | str, steps: int | None, name: str = "steps") -> None:
    """Raise a ValueError naming ``name`` unless ``steps`` (network calls) suits ``model``."""
    if steps is None:
        return
    if isinstance(model, str):
        raise ValueError(f"{name}={steps}: {model} makes no network calls; leave it out")
    if model.kind == "student" and steps != 1:
        raise ValueError(f"{name}={steps}: an RSD student makes exactly one call")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= model.process.steps:
        raise ValueError(f"{name}={steps!r}: expected a number of teacher calls in [1, T={model.process.steps}]")


def _resolve_method(model_or_method: SRModel | str, scale: int | None) -> int:
    """The upscaling factor, after checking ``model_or_method`` and ``scale`` agree."""
    if isinstance(model_or_method, SRModel):
        if scale not in (None, model_or_method.scale):
            raise ValueError(f"scale={scale}: the model upscales by {model_or_method.scale}")
        return model_or_method.scale
    if model_or_method not in METHODS:
        raise ValueError(f"model_or_method={model_or_method!r}: expected an SRModel or one of {METHODS}")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, int) or scale < 1):
        raise ValueError(f"scale={scale!r}: expected a positive integer")
    return scale or 4


def _pairs(lq_dir, gt_dir, scale: int, limit: int | None) -> tuple[PairedFolderSR, list[str]]:
    """The LR (and HR) files, names and sizes checked before any image is processed."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit={limit!r}: expected a positive integer or None")
    pairs = PairedFolderSR(lq_dir, gt_dir, scale=scale)  # checks names and HR = scale × LR sizes
    names = pairs.names[:limit]
    if gt_dir is None:
        for name in names:  # a file that is not an image fails here, named, not mid-run
            _image_size(pairs.lq_files[name])
    return pairs, names


def _perceptual_metrics(names, has_gt: bool, device: torch.device) -> dict:
    for name in names:
        if name in metrics.PERCEPTUAL_FULL_REFERENCE and not has_gt:
            raise ValueError(f"perceptual={name!r} compares with the ground truth: give gt_dir")
    return {name: metrics.perceptual_metric(name, device) for name in names}


def _device(model: SRModel | str) -> torch.device:
    return torch.device("cpu") if isinstance(model, str) else next(model.network.parameters()).device


@torch.no_grad()
def evaluate_folder(model_or_method: SRModel | str, lq_dir: str | os.PathLike, gt_dir: str | os.PathLike | None = None,
                    steps: int | None = None, seed: int = 0, save: str | os.PathLike | None = None,
                    limit: int | None = None, *, scale: int | None = None, tile: int | None = DEFAULT_TILE,
                    overlap: int = DEFAULT_OVERLAP, perceptual: tuple[str, ...] = (), progress: bool = False) -> dict:
    """Metrics of an :class:`SRModel` or a method of :data:`METHODS` on the LR images of
    ``lq_dir`` (all, or the first ``limit`` by name), against the same-named HR images of
    ``gt_dir`` if given.

    ``steps``: teacher calls (default all T; a student makes one). ``save``: write each output
    as ``save/NAME.png``. ``scale``: bicubic's factor (default 4; a model has its own).
    ``tile``/``overlap``: see :func:`rsd_mini.upscale.upscale`. ``perceptual``: pyiqa metric
    names (:data:`rsd_mini.metrics.PERCEPTUAL`).

    Returns a JSON-ready dict: ``names``, per-image lists (``psnr``, ``ssim`` with ground truth,
    ``lr_fidelity``, ``high_frequency_ratio``, perceptual ones, ``seconds``, ``tiles``) and their
    ``mean_*``; ``method``, ``nfe`` (network calls per tile), ``steps``, ``seed``,
    ``num_images``, ``seconds_per_image``, ``scale``, ``tile``, ``overlap``, the folders and,
    with ground truth, ``ground_truth_high_frequency_ratio``.
    """
    scale = _resolve_method(model_or_method, scale)
    check_steps(model_or_method, steps)
    tile_boxes(1, 1, tile, overlap)  # checks tile and overlap before any work
    pairs, names = _pairs(lq_dir, gt_dir, scale, limit)
    device = _device(model_or_method)
    scorers = _perceptual_metrics(perceptual, gt_dir is not None, device)
    keys = [*(FULL_REFERENCE if gt_dir is not None else ()), *NO_REFERENCE, *perceptual]
    scores: dict[str, list[float]] = {key: [] for key in (*keys, "ground_truth_high_frequency_ratio")}
    seconds, tiles = [], []
    for index, name in enumerate(tqdm(names, desc="evaluate", disable=not progress)):
        item = pairs[index]  # names are the first ones of pairs.names
        lq = item["lq"][None].to(device)
        start = time.perf_counter()
        sr = _super_resolve(model_or_method, lq, scale, seed, steps, tile, overlap)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
        tiles.append(0 if isinstance(model_or_method, str) else len(tile_boxes(*lq.shape[-2:], tile, overlap)))
        output = quantize_8bit(metrics.to_unit_range(sr))  # what a saved PNG holds
        target = metrics.to_unit_range(item["hr"][None].to(device)) if "hr" in item else None
        for key, value in _image_scores(output, metrics.to_unit_range(lq), target, scale, scorers).items():
            scores[key].append(value)
        if save is not None:
            save_image(output[0], Path(save) / f"{name}.png")
    result = dict(method=model_or_method if isinstance(model_or_method, str) else model_or_method.kind,
                  checkpoint=None, scale=scale, nfe=_nfe(model_or_method, steps), steps=steps, seed=seed,
                  tile=tile, overlap=overlap, lq_dir=str(lq_dir), gt_dir=None if gt_dir is None else str(gt_dir),
                  num_images=len(names), names=names, seconds=seconds,
                  seconds_per_image=_mean(seconds), tiles=tiles)
    for key in keys:
        result[key] = scores[key]
        result[f"mean_{key}"] = _mean(scores[key])
    if gt_dir is not None:
        result["ground_truth_high_frequency_ratio"] = _mean(scores["ground_truth_high_frequency_ratio"])
    return result


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _nfe(model_or_method: SRModel | str, steps: int | None) -> int:
    if isinstance(model_or_method, str):
        return 0
    return model_or_method.nfe if steps is None else steps


def _super_resolve(model_or_method: SRModel | str, lq: Tensor, scale: int, seed: int, steps: int | None,
                   tile: int | None, overlap: int) -> Tensor:
    """(1, 3, h·scale, w·scale) in [−1, 1]; a fresh generator seeded by ``seed`` per image."""
    if model_or_method == "bicubic":  # the input y₀ itself: plain bicubic, clamped to the image range
        return bicubic_upsample(lq, scale=scale).clamp(-1, 1)
    generator = torch.Generator().manual_seed(seed)
    return upscale(model_or_method, lq, generator, calls=steps, tile=tile, overlap=overlap)


def _image_scores(output: Tensor, lq: Tensor, target: Tensor | None, scale: int, scorers: dict) -> dict[str, float]:
    """The metrics of one image, all inputs (1, 3, H, W) in [0, 1]."""
    scores = {"lr_fidelity": metrics.lr_fidelity(output, lq, scale),
              "high_frequency_ratio": metrics.high_frequency_ratio(output)}
    if target is not None:
        scores.update(psnr=metrics.psnr(output, target), ssim=metrics.ssim(output, target),
                      ground_truth_high_frequency_ratio=metrics.high_frequency_ratio(target))
    for name, scorer in scorers.items():
        full_reference = name in metrics.PERCEPTUAL_FULL_REFERENCE
        scores[name] = scorer(output, target) if full_reference else scorer(output)
    return {key: float(torch.as_tensor(value).flatten()[0]) for key, value in scores.items()}


# --------------------------------------------------------------------- command line
def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer ≥ {minimum}, got {text!r}")
        return value
    return parse


def _sampling_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=_int_at_least(1), metavar="N",
                        help="teacher network calls, respaced (default: all T); a student makes 1")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed, the same for every image (default 0)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--tile", type=_int_at_least(0), default=DEFAULT_TILE, metavar="PX",
                        help=f"tile LR images larger than PX pixels, 0 = never (default {DEFAULT_TILE})")
    parser.add_argument("--overlap", type=_int_at_least(0), default=DEFAULT_OVERLAP, metavar="PX",
                        help=f"LR pixels shared by neighbouring tiles, averaged (default {DEFAULT_OVERLAP})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``python -m rsd_mini evaluate``."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", metavar="CKPT",
                       help=f"a shipped model ({', '.join(SHIPPED)}), an official one from the weights "
                            "folder (rsd, resshift-v1, sinsr-v2, ...) or a checkpoint path")
    which.add_argument("--method", choices=METHODS, help="a baseline without a network")
    parser.add_argument("--lq", required=True, type=Path, metavar="DIR", help="folder of LR images")
    parser.add_argument("--gt", type=Path, metavar="DIR",
                        help="folder of HR images with the same names (optional: without it, no PSNR/SSIM)")
    parser.add_argument("--json", required=True, type=Path, metavar="OUT", help="where the metrics go")
    parser.add_argument("--save", type=Path, metavar="DIR", help="also write the outputs as DIR/NAME.png")
    parser.add_argument("--limit", type=_int_at_least(1), metavar="N", help="only the first N images by name")
    parser.add_argument("--scale", type=_int_at_least(1), metavar="S", help="bicubic's factor (default 4)")
    parser.add_argument("--perceptual", nargs="+", default=[], choices=metrics.PERCEPTUAL, metavar="NAME",
                        help=f"pyiqa metrics too ({', '.join(metrics.PERCEPTUAL)}); needs pip install pyiqa")
    _sampling_arguments(parser)


def _fail(message: str):
    sys.exit(f"rsd_mini: error: {message}")


def _resolve_device(device: str | None) -> str:
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        _fail(f"argument --device: {device!r} asked for, but no CUDA device is available")
    return device


def _load_model(checkpoint: str, device: str | None) -> SRModel:
    try:
        return load(checkpoint, _resolve_device(device))
    except (FileNotFoundError, ValueError, KeyError, NotImplementedError) as error:
        _fail(f"argument --checkpoint: {checkpoint!r} could not be loaded: {error}")


def _tile(args: argparse.Namespace) -> int | None:
    return args.tile or None


def run_evaluate(args: argparse.Namespace) -> int:
    """``python -m rsd_mini evaluate``: metrics JSON of a checkpoint or bicubic on a folder."""
    for flag, folder in (("--lq", args.lq), ("--gt", args.gt)):
        if folder is not None and not Path(folder).is_dir():
            _fail(f"argument {flag}: {str(folder)!r} is not a folder")
    model = _load_model(args.checkpoint, args.device) if args.checkpoint else args.method
    try:
        check_steps(model, args.steps, name="--steps")
        result = evaluate_folder(model, args.lq, args.gt, args.steps, args.seed, args.save, args.limit,
                                 scale=args.scale, tile=_tile(args), overlap=args.overlap,
                                 perceptual=tuple(args.perceptual), progress=not args.no_progress)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        _fail(str(error))
    result["checkpoint"] = args.checkpoint
    _write_json(args.json, result)
    shown = ", ".join(f"{key} {result[f'mean_{key}']:.4f}" for key in (*FULL_REFERENCE, *NO_REFERENCE, *args.perceptual)
                      if f"mean_{key}" in result)
    print(f"{result['method']} on {result['num_images']} images (NFE {result['nfe']}, "
          f"{result['seconds_per_image']:.3f} s/image): {shown}; metrics: {args.json}")
    return 0


def _write_json(path: Path, data: dict) -> None:
    write_bytes_atomic(path, json.dumps(data, indent=1).encode())


def add_upscale_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``python -m rsd_mini upscale``."""
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE",
                        help="image files, or folders of them (not searched recursively)")
    parser.add_argument("--checkpoint", required=True, metavar="CKPT",
                        help=f"a shipped model ({', '.join(SHIPPED)}), an official one from the weights "
                            "folder (rsd, resshift-v1, sinsr-v2, ...) or a checkpoint path")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="writes DIR/STEM_x4.png per input")
    _sampling_arguments(parser)


def _input_files(paths: list[Path]) -> list[Path]:
    """The image files named or inside the folders named, each checked readable."""
    files = []
    for path in paths:
        if path.is_dir():
            found = scan_images(path, recursive=False)
            if not found:
                _fail(f"argument IMAGE: folder {str(path)!r} holds no image files")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            _fail(f"argument IMAGE: {str(path)!r} does not exist")
    for path in files:
        try:
            _image_size(path)
        except ValueError as error:
            _fail(f"argument IMAGE: {error}")
    stems = [path.stem for path in files]
    if len(set(stems)) < len(stems):
        _fail(f"argument IMAGE: two inputs share the name {next(s for s in stems if stems.count(s) > 1)!r}; "
              "their outputs would overwrite each other")
    return files


def run_upscale(args: argparse.Namespace) -> int:
    """``python -m rsd_mini upscale``: ``OUT/STEM_x4.png`` for every input image."""
    files = _input_files(args.images)
    model = _load_model(args.checkpoint, args.device)
    try:
        check_steps(model, args.steps, name="--steps")
    except ValueError as error:
        _fail(str(error))
    device = _device(model)
    for path in tqdm(files, desc="upscale", disable=args.no_progress or len(files) < 2):
        lq = load_image(path)[None].to(device) * 2 - 1
        sr = _super_resolve(model, lq, model.scale, args.seed, args.steps, _tile(args), args.overlap)
        out = save_image(sr[0], args.out / f"{path.stem}_x{model.scale}.png", value_range=(-1.0, 1.0))
        print(f"{path} ({lq.shape[-2]}x{lq.shape[-1]}) -> {out} ({sr.shape[-2]}x{sr.shape[-1]})")
    return 0
