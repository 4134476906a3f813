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
and tiles any size, by default with the model's own tiles (512 / 64 LR pixels for the official
latent models, 64 / 16 for the tiny ones); the result records the tile and overlap used.
``seconds`` times that call alone; the first image includes warm-up.

Checks come before compute (issue #12): the commands probe every output path and check the
device, the folders and the tiling before the model loads, and every input image is decoded
once before the first is processed (``upscale``: before the model loads), so a bad path or a
broken file fails at once, by name, never after the work. Their failures are
:class:`rsd_mini.errors.UserError` lines naming the argument.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from rsd_mini import errors, metrics
from rsd_mini.checkpoint import write_bytes_atomic
from rsd_mini.data import PairedFolderSR, load_image, save_image, scan_images
from rsd_mini.degradations import bicubic_upsample, quantize_8bit
from rsd_mini.errors import UserError
from rsd_mini.hub import SHIPPED, load
from rsd_mini.srmodel import SRModel
from rsd_mini.upscale import AUTO, resolve_tiling, tile_boxes, upscale

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
    for name in names:  # a file that does not decode fails here, named, not mid-run
        decode_check([pairs.lq_files[name], *([pairs.gt_files[name]] if gt_dir is not None else [])])
    return pairs, names


def decode_check(paths, argument: str | None = None) -> None:
    """Decode every image of ``paths`` once (and let it go, so memory stays flat): a file that
    is not a readable RGB image fails now, by name, instead of mid-run. ``argument``: the
    command-line argument to name (a :class:`rsd_mini.errors.UserError`), else a ValueError."""
    for path in paths:
        try:
            load_image(path)
        except (ValueError, OSError) as error:
            if argument is None:
                raise
            raise UserError(f"argument {argument}: {error}; convert or remove the file") from error


def _perceptual_metrics(names, has_gt: bool, device: torch.device) -> dict:
    for name in names:
        if name in metrics.PERCEPTUAL_FULL_REFERENCE and not has_gt:
            raise ValueError(f"perceptual={name!r} compares with the ground truth: give gt_dir")
    try:
        return {name: metrics.perceptual_metric(name, device) for name in names}
    except RuntimeError as error:  # pyiqa missing, or its metric weights not downloadable
        raise UserError(f"perceptual={names!r}: {error}") from error


def _device(model: SRModel | str) -> torch.device:
    return torch.device("cpu") if isinstance(model, str) else next(model.network.parameters()).device


@torch.no_grad()
def evaluate_folder(model_or_method: SRModel | str, lq_dir: str | os.PathLike, gt_dir: str | os.PathLike | None = None,
                    steps: int | None = None, seed: int = 0, save: str | os.PathLike | None = None,
                    limit: int | None = None, *, scale: int | None = None, tile: int | None | str = AUTO,
                    overlap: int | str = AUTO, perceptual: tuple[str, ...] = (), progress: bool = False) -> dict:
    """Metrics of an :class:`SRModel` or a method of :data:`METHODS` on the LR images of
    ``lq_dir`` (all, or the first ``limit`` by name), against the same-named HR images of
    ``gt_dir`` if given.

    ``steps``: teacher calls (default all T; a student makes one). ``save``: write each output
    as ``save/NAME.png``. ``scale``: bicubic's factor (default 4; a model has its own).
    ``tile``/``overlap``: see :func:`rsd_mini.upscale.upscale` (default: the model's own).
    ``perceptual``: pyiqa metric names (:data:`rsd_mini.metrics.PERCEPTUAL`). Every image is
    decoded once before the first is processed, so a broken file fails before any work.

    Returns a JSON-ready dict: ``names``, per-image lists (``psnr``, ``ssim`` with ground truth,
    ``lr_fidelity``, ``high_frequency_ratio``, perceptual ones, ``seconds``, ``tiles``) and their
    ``mean_*``; ``method``, ``nfe`` (network calls per tile), ``steps``, ``seed``,
    ``num_images``, ``seconds_per_image``, ``scale``, ``tile``, ``overlap`` (those used; None
    for bicubic), the folders and, with ground truth, ``ground_truth_high_frequency_ratio``.
    """
    scale = _resolve_method(model_or_method, scale)
    check_steps(model_or_method, steps)
    if isinstance(model_or_method, str):
        tile = overlap = None
    else:
        tile, overlap = resolve_tiling(model_or_method, tile, overlap)  # checked before any work
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
# The arguments are defined in rsd_mini.cli (so that argument errors need no torch); these run them.
def _load_model(checkpoint: str, device: str) -> SRModel:
    """``--checkpoint`` loaded, or a UserError that says what the file is and what was expected."""
    try:
        return load(checkpoint, device)
    except UserError as error:  # e.g. a weights-only dict without rsd_mini's entries (hub.load says which)
        raise UserError(f"argument --checkpoint: {error}") from error
    except RuntimeError as error:  # torch's load_state_dict: the weights do not fit the config
        raise UserError(f"argument --checkpoint: {checkpoint!r} could not be loaded: its weights do not fit "
                        f"the network of its config ({errors.one_line(str(error))[:300]}); use the config "
                        "it was trained with") from error
    except (FileNotFoundError, ValueError, NotImplementedError) as error:
        raise UserError(f"argument --checkpoint: {checkpoint!r} could not be loaded: {error}") from error


def _tiling(args: argparse.Namespace) -> tuple[int | None | str, int | str]:
    """``--tile`` / ``--overlap``: AUTO where not given, None for ``--tile 0``; when both are
    given they are checked here, before the model loads."""
    tile = AUTO if args.tile is None else (args.tile or None)
    overlap = AUTO if args.overlap is None else args.overlap
    if tile not in (AUTO, None) and overlap != AUTO and overlap >= tile:
        raise UserError(f"argument --overlap: {overlap} is not smaller than --tile {tile}; expected an "
                        f"overlap below the tile side, e.g. --overlap {tile // 4}")
    return tile, overlap


def _model_tiling(model: SRModel, args: argparse.Namespace) -> tuple[int | None, int]:
    """The tiling used: the model's defaults where not given (checked)."""
    try:
        return resolve_tiling(model, *_tiling(args))
    except ValueError as error:
        raise UserError(f"arguments --tile/--overlap: {error} (the model's defaults are "
                        f"{model.default_tile}/{model.default_overlap}); give both, the overlap below the "
                        "tile") from error


def _check_steps(model: SRModel | str, steps: int | None) -> None:
    try:
        check_steps(model, steps, name="--steps")
    except ValueError as error:
        raise UserError(f"argument {error}") from error


def run_evaluate(args: argparse.Namespace) -> int:
    """``python -m rsd_mini evaluate``: metrics JSON of a checkpoint or bicubic on a folder.
    Output paths, device, folders and tiling are checked before the model loads; every image
    is decoded before the first is processed."""
    for flag, folder in (("--lq", args.lq), ("--gt", args.gt)):
        if folder is not None and not Path(folder).is_dir():
            raise UserError(f"argument {flag}: {str(folder)!r} is not a folder; expected a folder of images")
    errors.output_file(args.json, "--json")
    if args.save is not None:
        errors.output_folder(args.save, "--save")
    unknown = [name for name in args.perceptual if name not in metrics.PERCEPTUAL]
    if unknown:
        raise UserError(f"argument --perceptual: {unknown[0]!r} is not a metric here; expected some of "
                        f"{', '.join(metrics.PERCEPTUAL)}")
    _tiling(args)
    model = _load_model(args.checkpoint, errors.device(args.device)) if args.checkpoint else args.method
    _check_steps(model, args.steps)
    tile, overlap = (None, None) if isinstance(model, str) else _model_tiling(model, args)
    try:
        result = evaluate_folder(model, args.lq, args.gt, args.steps, args.seed, args.save, args.limit,
                                 scale=args.scale, tile=tile, overlap=overlap,
                                 perceptual=tuple(args.perceptual), progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as error:
        raise UserError(f"argument --lq/--gt: {error}") from error
    result["checkpoint"] = args.checkpoint
    _write_json(args.json, result)
    shown = ", ".join(f"{key} {result[f'mean_{key}']:.4f}" for key in (*FULL_REFERENCE, *NO_REFERENCE, *args.perceptual)
                      if f"mean_{key}" in result)
    tiling = "" if isinstance(model, str) else f", tiles {result['tile']}/{result['overlap']} LR px"
    print(f"{result['method']} on {result['num_images']} images (NFE {result['nfe']}{tiling}, "
          f"{result['seconds_per_image']:.3f} s/image): {shown}; metrics: {args.json}")
    return 0


def _write_json(path: Path, data: dict) -> None:
    write_bytes_atomic(path, json.dumps(data, indent=1).encode())


def _input_files(paths: list[Path]) -> list[Path]:
    """The image files named or inside the folders named, each decoded once to check it."""
    files = []
    for path in paths:
        if path.is_dir():
            found = scan_images(path, recursive=False)
            if not found:
                raise UserError(f"argument IMAGE: folder {str(path)!r} holds no image files; expected image "
                                "files or folders of them")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"argument IMAGE: {str(path)!r} does not exist; expected image files or folders")
    stems = [path.stem for path in files]
    if len(set(stems)) < len(stems):
        raise UserError(f"argument IMAGE: two inputs share the name "
                        f"{next(s for s in stems if stems.count(s) > 1)!r}; their outputs would overwrite "
                        "each other: rename one")
    decode_check(files, "IMAGE")
    return files


def _output_files(files: list[Path], out: Path, scale_name: str) -> list[Path]:
    """``out/STEM_x4.png`` per input, the folder created and probed, none of them a folder."""
    errors.output_folder(out, "--out")
    outputs = [out / f"{path.stem}_{scale_name}.png" for path in files]
    for output in outputs:
        if output.is_dir():
            raise UserError(f"argument --out: {str(output)!r} is a folder, where an output image goes; "
                            "choose another --out")
    return outputs


def run_upscale(args: argparse.Namespace) -> int:
    """``python -m rsd_mini upscale``: ``OUT/STEM_x4.png`` for every input image. Inputs are
    decoded and the output folder probed before the model loads."""
    files = _input_files(args.images)
    _output_files(files, args.out, "x4")
    _tiling(args)
    model = _load_model(args.checkpoint, errors.device(args.device))
    _check_steps(model, args.steps)
    tile, overlap = _model_tiling(model, args)
    outputs = _output_files(files, args.out, f"x{model.scale}")
    device = _device(model)
    for path, output in zip(tqdm(files, desc="upscale", disable=args.no_progress or len(files) < 2), outputs):
        lq = load_image(path)[None].to(device) * 2 - 1
        sr = _super_resolve(model, lq, model.scale, args.seed, args.steps, tile, overlap)
        save_image(sr[0], output, value_range=(-1.0, 1.0))
        print(f"{path} ({lq.shape[-2]}x{lq.shape[-1]}) -> {output} ({sr.shape[-2]}x{sr.shape[-1]}; "
              f"tiles {tile}/{overlap} LR px)")
    return 0
