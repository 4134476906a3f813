"""The paper's data sets: where they live, whether they are complete, and how two of them are built.

Every set the paper trains or tests on (RSD_SPEC §5 tables, §6 "Validation and test data") has a
manifest ``data/manifests/<name>.json``: description, sources, licence, expected layout, image
count, LR/HR sizes, the tables it feeds and the command that prepares it. This module

- finds the data root (:func:`data_root`: argument > ``$RSD_MINI_DATA`` > ``~/.cache/rsd-mini/data``);
  set ``NAME`` lives in ``<root>/NAME``;
- checks a set against its manifest (:func:`check`) and says exactly what is missing or wrong;
  an absent set is a report, never an exception;
- hands a complete test set to the evaluator (:func:`locate_testset`);
- rebuilds ImageNet-Test from ImageNet val (:func:`prepare_imagenet_test`, the official
  ``prepare_testing_imagenet.py`` recipe with seeded degradations) and reorganises the raw
  RealSR-V3 download (:func:`prepare_realsr`, as the official ``prepare_testing_realsr.py``);
- offers the ``data`` command line (:func:`add_data_arguments`, :func:`run_data`).

Both builders write each file atomically (temporary file, fsync, ``os.replace``) and skip files
already there, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from rsd_mini.checkpoint import write_bytes_atomic
from rsd_mini.paths import user_folder

if TYPE_CHECKING:
    from torch import Tensor

# torch, kornia and the image pipeline are imported inside the functions that prepare images, so
# that `python -m rsd_mini data list | check` start instantly (issue #13).

__all__ = [
    "MANIFEST_DIR",
    "DATASETS",
    "data_root",
    "Report",
    "check",
    "TestSet",
    "locate_testset",
    "official_imagenet_test_names",
    "select_imagenet_test",
    "imagenet_test_gt",
    "Prepared",
    "prepare_imagenet_test",
    "prepare_realsr",
    "add_data_arguments",
    "run_data",
]

MANIFEST_DIR = Path(__file__).resolve().parents[2] / "data" / "manifests"
DATA_ROOT_ENV = "RSD_MINI_DATA"
KINDS = ("paired", "lq-only", "class-folders")
REQUIRED_FIELDS = ("name", "title", "description", "kind", "scale", "count", "layouts", "extensions",
                   "lq_size", "gt_size", "sources", "license", "paper_tables", "prepare", "verified")
#: How many offending file names a report quotes.
SHOWN = 5
#: ImageNet-Test (RSD_SPEC §6): GT side, official seed, LR degradation preset.
IMAGENET_TEST_SIZE = 256
IMAGENET_TEST_SEED = 10000
IMAGENET_TEST_DEGRADATION = "realesrgan-test"
SELECTIONS = ("official", "recipe")
#: RealSR-V3 raw download: <Camera>/Test/4/<Camera>_<NNN>_HR.png and <Camera>_<NNN>_LR4.png.
REALSR_SCALE = 4


# ----------------------------------------------------------------------------- manifests
def _check_manifest(manifest: dict, path: Path) -> dict:
    missing = [key for key in REQUIRED_FIELDS if key not in manifest]
    if missing:
        raise ValueError(f"{path}: manifest lacks the fields {missing}; expected all of {list(REQUIRED_FIELDS)}")
    if manifest["name"] != path.stem:
        raise ValueError(f"{path}: name={manifest['name']!r}: expected the file stem {path.stem!r}")
    if manifest["kind"] not in KINDS:
        raise ValueError(f"{path}: kind={manifest['kind']!r}: expected one of {KINDS}")
    if not isinstance(manifest["count"], int) or manifest["count"] < 1:
        raise ValueError(f"{path}: count={manifest['count']!r}: expected a positive integer")
    if manifest["kind"] == "class-folders" and not isinstance(manifest.get("classes"), int):
        raise ValueError(f"{path}: classes={manifest.get('classes')!r}: expected the number of class folders")
    if not manifest["layouts"]:
        raise ValueError(f"{path}: layouts=[]: expected at least one layout")
    return manifest


def _load_manifests(folder: Path = MANIFEST_DIR) -> dict[str, dict]:
    """Every ``<name>.json`` in ``folder``, checked, by name (empty if the folder is absent)."""
    if not folder.is_dir():
        return {}
    manifests = {}
    for path in sorted(folder.glob("*.json")):
        manifests[path.stem] = _check_manifest(json.loads(path.read_text(encoding="utf-8")), path)
    return manifests


#: The manifests of ``data/manifests``, by data-set name.
DATASETS: dict[str, dict] = _load_manifests()


def _manifest(name: str) -> dict:
    if name not in DATASETS:
        known = ", ".join(DATASETS) or f"none (no manifests in {MANIFEST_DIR})"
        raise ValueError(f"name={name!r}: expected one of the data sets {known}")
    return DATASETS[name]


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """Folder holding the data sets: ``explicit`` if given, else ``$RSD_MINI_DATA`` if set and
    non-empty, else ``~/.cache/rsd-mini/data``. Set ``NAME`` lives in ``data_root() / NAME``."""
    return user_folder(explicit, DATA_ROOT_ENV, "data", "explicit")


# ----------------------------------------------------------------------------- checking
@dataclass
class Report:
    """What :func:`check` found for data set ``name`` in folder ``root``.

    ``found`` counts what is there (``lq``, ``gt``, ``pairs``, ``classes``, ``images``),
    ``missing`` lists absent folders, ``problems`` everything else that is wrong.
    """

    name: str
    root: Path
    found: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    layout: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.problems

    def summary(self) -> str:
        """A few lines for people: ready or not, and why."""
        counts = ", ".join(f"{key} {value}" for key, value in self.found.items()) or "nothing"
        if self.ok:
            folders = ", ".join(f"{key}={value}/" for key, value in self.layout.items())
            return f"{self.name}: ready at {self.root} ({counts}; {folders})"
        lines = [f"{self.name}: NOT READY at {self.root} (found: {counts})"]
        lines += [f"  missing: {item}" for item in self.missing]
        lines += [f"  problem: {item}" for item in self.problems]
        manifest = DATASETS.get(self.name, {})
        lines.append(f"  how to get it: data/DATASETS.md#{self.name}; {manifest.get('prepare', '')}".rstrip())
        return "\n".join(lines)


def _quote(names: Sequence[str]) -> str:
    shown = ", ".join(sorted(names)[:SHOWN])
    return f"{shown}, ..." if len(names) > SHOWN else shown


def _listing(folder: Path, extensions: Sequence[str]) -> tuple[dict[str, Path], list[str], list[str]]:
    """(images by stem, other non-hidden files, stems used twice) directly inside ``folder``.

    Hidden files (``.DS_Store``, our own ``.*.tmp``) and sub-folders are ignored.
    """
    images: dict[str, Path] = {}
    others, duplicates = [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        path = Path(entry.path)
        if path.suffix.lower() not in extensions:
            others.append(entry.name)
        elif path.stem in images:
            duplicates.append(path.stem)
        else:
            images[path.stem] = path
    return images, others, duplicates


def _choose_layout(root: Path, manifest: dict) -> dict[str, str]:
    """The first layout whose LR (or image) folder holds files, else the first whose folder exists,
    else the first layout (whose absence is then reported)."""
    layouts = manifest["layouts"]
    first_key = "images" if manifest["kind"] == "class-folders" else "lq"
    existing = [layout for layout in layouts if (root / layout[first_key]).is_dir()]
    for layout in existing:
        if any(not entry.name.startswith(".") for entry in os.scandir(root / layout[first_key])):
            return layout
    return (existing or layouts)[0]


#: EXIF orientations that swap width and height (transpose, rotate 90/270, transverse).
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)
_ORIENTATION_TAG = 0x0112


def _orientation(image: Image.Image) -> int | None:
    """EXIF orientation from the header. Pillow's ``getexif`` decodes a whole PNG to find an eXIf
    chunk placed after the pixels; such late chunks are rare, so PNGs use only an early one."""
    if image.format != "PNG":
        return image.getexif().get(_ORIENTATION_TAG)
    exif = Image.Exif()
    if "exif" in image.info:
        exif.load(image.info["exif"])
    return exif.get(_ORIENTATION_TAG)


def _header_size(path: Path) -> tuple[int, int] | None:
    """(height, width) as :func:`rsd_mini.data.load_image` sees it (EXIF rotation applied), read
    from the file header; None if the file is not a readable image."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if _orientation(image) in _SWAPPING_ORIENTATIONS:
                width, height = height, width
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
    return height, width


def _size_problems(sizes: dict[str, tuple[int, int] | None], images: dict[str, Path],
                   expected: Sequence[int] | None, role: str) -> list[str]:
    unreadable = [images[stem].name for stem, size in sizes.items() if size is None]
    wrong = [f"{images[stem].name} {size[0]}x{size[1]}" for stem, size in sizes.items()
             if size is not None and expected is not None and tuple(size) != tuple(expected)]
    problems = []
    if unreadable:
        problems.append(f"{len(unreadable)} unreadable {role} image(s): {_quote(unreadable)}")
    if wrong:
        problems.append(f"{len(wrong)} {role} image(s) not {expected[0]}x{expected[1]} (HxW): {_quote(wrong)}")
    return problems


def _ratio_problems(lq: dict[str, tuple[int, int] | None], gt: dict[str, tuple[int, int] | None],
                    scale: int) -> list[str]:
    wrong = []
    for stem in sorted(set(lq) & set(gt)):
        if lq[stem] is None or gt[stem] is None:
            continue  # reported as unreadable
        (lh, lw), (gh, gw) = lq[stem], gt[stem]
        if (gh, gw) != (scale * lh, scale * lw):
            wrong.append(f"{stem} (LR {lh}x{lw}, HR {gh}x{gw})")
    if not wrong:
        return []
    return [f"{len(wrong)} pair(s) whose HR is not {scale} x the LR size: {_quote(wrong)}"]


def _folder_report(report: Report, folder: Path, role: str, manifest: dict) -> dict[str, tuple[int, int] | None] | None:
    """Scan one image folder into ``report``; the image sizes by stem, or None if it is absent."""
    if not folder.is_dir():
        report.missing.append(f"{role} folder {folder}")
        return None
    images, others, duplicates = _listing(folder, manifest["extensions"])
    report.found[role] = len(images)
    if others:
        report.problems.append(f"{len(others)} file(s) in {role}/ that are not "
                               f"{'/'.join(manifest['extensions'])} images: {_quote(others)}")
    if duplicates:
        report.problems.append(f"{len(duplicates)} name(s) used twice in {role}/ (different endings): "
                               f"{_quote(duplicates)}")
    sizes = {stem: _header_size(path) for stem, path in images.items()}
    report.problems += _size_problems(sizes, images, manifest[f"{role}_size"], role)
    return sizes


def _count_problem(found: int, expected: int, what: str) -> list[str]:
    return [] if found == expected else [f"{found} {what}, expected {expected}"]


def _check_pairs(report: Report, root: Path, layout: dict, manifest: dict, count: int) -> None:
    lq = _folder_report(report, root / layout["lq"], "lq", manifest)
    gt = _folder_report(report, root / layout["gt"], "gt", manifest)
    if lq is None or gt is None:
        return
    only_lq, only_gt = sorted(set(lq) - set(gt)), sorted(set(gt) - set(lq))
    if only_lq:
        report.problems.append(f"{len(only_lq)} LR image(s) without an HR partner in gt/: {_quote(only_lq)}")
    if only_gt:
        report.problems.append(f"{len(only_gt)} HR image(s) without an LR partner in lq/: {_quote(only_gt)}")
    report.found["pairs"] = len(set(lq) & set(gt))
    report.problems += _count_problem(report.found["pairs"], count, "pairs")
    report.problems += _ratio_problems(lq, gt, manifest["scale"])


def _check_lq_only(report: Report, root: Path, layout: dict, manifest: dict, count: int) -> None:
    lq = _folder_report(report, root / layout["lq"], "lq", manifest)
    if lq is not None:
        report.problems += _count_problem(len(lq), count, "images")


def _check_class_folders(report: Report, root: Path, layout: dict, manifest: dict, count: int) -> None:
    """Count classes and images without opening any image (ImageNet train has 1.28 M files)."""
    folder = root / layout["images"]
    if not folder.is_dir():
        report.missing.append(f"image folder {folder}")
        return
    classes, empty, others, images = [], [], [], 0
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            others.append(entry.name)
            continue
        classes.append(entry.name)
        listing, stray, _ = _listing(Path(entry.path), manifest["extensions"])
        images += len(listing)
        others += [f"{entry.name}/{name}" for name in stray]
        if not listing:
            empty.append(entry.name)
    report.found.update(classes=len(classes), images=images)
    report.problems += _count_problem(len(classes), manifest["classes"], "class folders")
    report.problems += _count_problem(images, count, "images")
    if empty:
        report.problems.append(f"{len(empty)} class folder(s) without images: {_quote(empty)}")
    if others:
        report.problems.append(f"{len(others)} file(s) that are not {'/'.join(manifest['extensions'])} images "
                               f"(unpacked tars left behind?): {_quote(others)}")


_CHECKERS = {"paired": _check_pairs, "lq-only": _check_lq_only, "class-folders": _check_class_folders}


def check(name: str, root: str | os.PathLike | None = None, count: int | None = None) -> Report:
    """Compare ``<data_root(root)>/<name>`` with its manifest and report what is missing or wrong.

    Looks for: missing folders, a wrong number of images/pairs/classes (``count`` overrides the
    manifest's, e.g. after ``prepare imagenet-test --count 300``), LR files without HR partner or
    the reverse, HR not ``scale`` x LR, images of the wrong fixed size, unreadable images and
    non-image files. Never raises for an absent or broken set; an unknown ``name`` raises ValueError.
    """
    manifest = _manifest(name)
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise ValueError(f"count={count!r}: expected a positive integer or None (the manifest's count)")
    folder = data_root(root) / name
    report = Report(name=name, root=folder)
    if not folder.is_dir():
        report.missing.append(f"data set folder {folder}")
        return report
    report.layout = dict(_choose_layout(folder, manifest))
    _CHECKERS[manifest["kind"]](report, folder, report.layout, manifest, count or manifest["count"])
    return report


@dataclass(frozen=True)
class TestSet:
    """A complete test set: LR folder, HR folder (None for LR-only sets) and its size."""

    __test__ = False  # not a pytest test class

    name: str
    lq: Path
    gt: Path | None
    count: int


def locate_testset(name: str, root: str | os.PathLike | None = None, count: int | None = None) -> TestSet | None:
    """The folders of test set ``name`` if :func:`check` finds it complete, else None."""
    if _manifest(name)["kind"] == "class-folders":
        raise ValueError(f"name={name!r}: a training set; expected a test set "
                         f"({', '.join(n for n, m in DATASETS.items() if m['kind'] != 'class-folders')})")
    report = check(name, root, count)
    if not report.ok:
        return None
    gt = report.layout.get("gt")
    return TestSet(name=name, lq=report.root / report.layout["lq"], gt=None if gt is None else report.root / gt,
                   count=report.found.get("pairs", report.found.get("lq", 0)))


# ----------------------------------------------------------------------------- atomic files
def _remove_stale_temporaries(*folders: Path) -> None:
    """Delete temporaries a killed run left behind (only names :func:`rsd_mini.checkpoint.write_bytes_atomic` makes)."""
    for folder in folders:
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)


def _png_bytes(image: Tensor) -> bytes:
    """(3, H, W) in [0, 1] -> 8-bit PNG, rounded as the official ``tensor2img`` (x 255, round)."""
    import torch

    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


# ----------------------------------------------------------------------------- ImageNet-Test
def official_imagenet_test_names() -> list[str]:
    """The 3000 ImageNet val stems of ImageNet-Test in the official processing order (manifest)."""
    return list(_manifest("imagenet-test")["names"])


def select_imagenet_test(paths: Sequence[str | os.PathLike], count: int = 3000,
                         seed: int = IMAGENET_TEST_SEED) -> list[Path]:
    """The official choice of ``count`` images among ``paths`` ([RS] prepare_testing_imagenet_sr.py).

    The script seeds Python's ``random`` with 10000 and shuffles the sorted file list, a list it
    never uses again; ``RealESRGANDataset`` then draws ``random.sample(sorted paths, 3000)`` from
    the same random state. Both steps are replayed here on a private ``random.Random(seed)``.
    ``random.sample`` draws in order, so a smaller ``count`` gives the first images of the full set.
    """
    ordered = sorted(str(path) for path in paths)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= len(ordered):
        raise ValueError(f"count={count!r}: expected an integer in [1, {len(ordered)}] (the number of images)")
    rng = random.Random(seed)
    rng.shuffle(list(ordered))  # only advances the random state, as in the official script
    return [Path(path) for path in rng.sample(ordered, count)]


def imagenet_test_gt(image: Tensor, size: int = IMAGENET_TEST_SIZE) -> Tensor:
    """ImageNet-Test GT from a (3, H, W) image in [0, 1]: shorter side to ``size``, centre crop.

    As albumentations ``SmallestMaxSize`` + ``CenterCrop`` on a float image: new sides are
    ``round(side * size / min(H, W))`` (Python rounding), resized with bilinear interpolation at
    pixel centres and no antialiasing (cv2 ``INTER_LINEAR``; agrees to ~3e-5) unless the shorter
    side is already ``size``; the crop starts at ``(H' - size) // 2, (W' - size) // 2``.
    """
    import torch
    import torch.nn.functional as F

    if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image: expected a (3, H, W) tensor, got {getattr(image, 'shape', type(image).__name__)}")
    height, width = image.shape[-2:]
    factor = size / min(height, width)
    if factor != 1.0:
        new_size = (round(height * factor), round(width * factor))
        image = F.interpolate(image[None], size=new_size, mode="bilinear", align_corners=False, antialias=False)[0]
        height, width = new_size
    top, left = (height - size) // 2, (width - size) // 2
    return image[:, top:top + size, left:left + size]


@dataclass(frozen=True)
class Prepared:
    """What a builder did: the output folders and how many items it wrote or found done."""

    name: str
    lq: Path
    gt: Path
    written: int
    skipped: int


def _imagenet_val_files(imagenet_val_dir: Path) -> list[Path]:
    if not imagenet_val_dir.is_dir():
        raise FileNotFoundError(f"imagenet_val_dir={str(imagenet_val_dir)!r}: folder not found; expected the "
                                f"ImageNet val images (ILSVRC2012_val_XXXXXXXX.JPEG, flat or in class folders)")
    files = sorted(imagenet_val_dir.glob("**/*.JPEG"))  # the official glob, case-sensitive
    if not files:
        raise ValueError(f"imagenet_val_dir={str(imagenet_val_dir)!r}: no *.JPEG files found below it; expected "
                         f"the ImageNet val images (ILSVRC2012_val_XXXXXXXX.JPEG)")
    return files


def _official_selection(files: list[Path], count: int, imagenet_val_dir: Path) -> list[Path]:
    names = official_imagenet_test_names()
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= len(names):
        raise ValueError(f"count={count!r}: expected an integer in [1, {len(names)}]")
    by_stem = {path.stem: path for path in files}
    absent = [stem for stem in names[:count] if stem not in by_stem]
    if absent:
        raise ValueError(f"imagenet_val_dir={str(imagenet_val_dir)!r}: {len(absent)} of the official ImageNet-Test "
                         f"images are not in it ({_quote(absent)}); expected the full ImageNet val set")
    return [by_stem[stem] for stem in names[:count]]


def _write_selection(out_dir: Path, chosen: list[Path], imagenet_val_dir: Path, seed: int) -> None:
    lines = ["index\tname\tsource\tgenerator_seed"]
    lines += [f"{index}\t{path.stem}\t{path.relative_to(imagenet_val_dir).as_posix()}\t{seed + index}"
              for index, path in enumerate(chosen)]
    write_bytes_atomic(out_dir / "selection.tsv", ("\n".join(lines) + "\n").encode())


def prepare_imagenet_test(imagenet_val_dir: str | os.PathLike, out_dir: str | os.PathLike, count: int = 3000,
                          seed: int = IMAGENET_TEST_SEED, selection: str = "official",
                          progress: bool = True) -> Prepared:
    """Build ImageNet-Test (RSD_SPEC §6) in ``out_dir/gt`` and ``out_dir/lq`` as 8-bit PNGs.

    ``selection="official"`` takes the first ``count`` of the 3000 official images (manifest list,
    looked up by file name, so a flat or class-folder val layout both work); ``"recipe"`` re-runs
    the official draw (:func:`select_imagenet_test` with ``seed``) on this folder's own file list,
    which reproduces the official list only for the complete val set in class folders.

    Image ``index`` (processing order) gets GT :func:`imagenet_test_gt` and LR from
    ``Degradation("realesrgan-test")`` driven by ``torch.Generator().manual_seed(seed + index)``
    (the official script leaves numpy/torch unseeded, so its LR images cannot be regenerated; the
    GT images and the degradation distribution can). ``out_dir/selection.tsv`` lists the sources
    and seeds. Pairs already written are skipped, so a rerun resumes; same inputs, same bytes.
    """
    imagenet_val_dir, out_dir = Path(imagenet_val_dir), Path(out_dir)
    if selection not in SELECTIONS:
        raise ValueError(f"selection={selection!r}: expected one of {SELECTIONS}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r}: expected a non-negative integer")
    files = _imagenet_val_files(imagenet_val_dir)
    if selection == "official":
        chosen = _official_selection(files, count, imagenet_val_dir)
    else:
        chosen = select_imagenet_test(files, count, seed)
    gt_dir, lq_dir = out_dir / "gt", out_dir / "lq"
    _remove_stale_temporaries(gt_dir, lq_dir)
    _write_selection(out_dir, chosen, imagenet_val_dir, seed)
    import torch

    from rsd_mini.data import load_image
    from rsd_mini.degradations import Degradation

    degradation = Degradation(IMAGENET_TEST_DEGRADATION)
    written = 0
    for index, path in enumerate(tqdm(chosen, desc="imagenet-test", disable=not progress)):
        gt_path, lq_path = gt_dir / f"{path.stem}.png", lq_dir / f"{path.stem}.png"
        if gt_path.is_file() and lq_path.is_file():
            continue
        gt = imagenet_test_gt(load_image(path))
        lq = degradation(gt[None], torch.Generator().manual_seed(seed + index))[0]
        write_bytes_atomic(gt_path, _png_bytes(gt))
        write_bytes_atomic(lq_path, _png_bytes(lq))
        written += 1
    return Prepared("imagenet-test", lq_dir, gt_dir, written, len(chosen) - written)


# ----------------------------------------------------------------------------- RealSR
_REALSR_NAME = re.compile(r"^(?P<camera>[^_]+)_(?P<index>\d+)_(?P<kind>HR|LR\d+)\.png$")


def _realsr_camera_files(folder: Path, camera: str) -> tuple[dict[str, Path], dict[str, Path]]:
    """(HR by index, LR4 by index) of one camera's ``Test/4`` folder."""
    hr, lr = {}, {}
    for path in sorted(folder.glob(f"{camera}_*.png")):
        match = _REALSR_NAME.match(path.name)
        if match and match["camera"] == camera and match["kind"] == "HR":
            hr[match["index"]] = path
        elif match and match["camera"] == camera and match["kind"] == f"LR{REALSR_SCALE}":
            lr[match["index"]] = path
    return hr, lr


def _realsr_pairs(raw_dir: Path) -> list[tuple[str, Path, Path]]:
    """(new name, LR path, HR path) for every ``<Camera>/Test/4`` pair, cameras in sorted order."""
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"raw_dir={str(raw_dir)!r}: folder not found; expected the unpacked RealSR(V3) folder")
    cameras = sorted(p for p in raw_dir.iterdir() if (p / "Test" / str(REALSR_SCALE)).is_dir())
    if not cameras:
        raise ValueError(f"raw_dir={str(raw_dir)!r}: no <Camera>/Test/{REALSR_SCALE}/ folders; expected the unpacked "
                         f"RealSR(V3) download (Canon/Test/4/Canon_001_HR.png, Canon_001_LR4.png, ..., Nikon/...)")
    pairs = []
    for camera in cameras:
        hr, lr = _realsr_camera_files(camera / "Test" / str(REALSR_SCALE), camera.name)
        if not hr or set(hr) != set(lr):
            raise ValueError(f"raw_dir={str(raw_dir)!r}: {camera.name}/Test/{REALSR_SCALE} has {len(hr)} HR and "
                             f"{len(lr)} LR{REALSR_SCALE} files whose numbers differ (HR only: "
                             f"{_quote(sorted(set(hr) - set(lr)))}; LR only: {_quote(sorted(set(lr) - set(hr)))}); "
                             f"expected one {camera.name}_NNN_HR.png per {camera.name}_NNN_LR{REALSR_SCALE}.png")
        pairs += [(f"{camera.name}_{index}.png", lr[index], hr[index]) for index in sorted(hr)]
    return pairs


def prepare_realsr(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, progress: bool = True) -> Prepared:
    """Reorganise the raw RealSR-V3 download into ``out_dir/lq`` and ``out_dir/gt`` (RSD_SPEC §6).

    As the official ``prepare_testing_realsr.py`` ([RSD] scripts): for each camera folder with a
    ``Test/4`` sub-folder, ``<Camera>_<NNN>_LR4.png`` becomes ``lq/<Camera>_<NNN>.png`` and
    ``<Camera>_<NNN>_HR.png`` becomes ``gt/<Camera>_<NNN>.png`` (the official script names the
    folders LR_x4/ and HR_x4/). Files are copied byte for byte; existing ones are skipped.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    pairs = _realsr_pairs(raw_dir)
    lq_dir, gt_dir = out_dir / "lq", out_dir / "gt"
    _remove_stale_temporaries(lq_dir, gt_dir)
    written = 0
    for name, lr_path, hr_path in tqdm(pairs, desc="realsr", disable=not progress):
        todo = [(src, dst) for src, dst in ((lr_path, lq_dir / name), (hr_path, gt_dir / name)) if not dst.is_file()]
        for src, dst in todo:
            write_bytes_atomic(dst, src.read_bytes())
        written += bool(todo)
    return Prepared("realsr", lq_dir, gt_dir, written, len(pairs) - written)


# ----------------------------------------------------------------------------- command line
def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``data list | check [NAME...] | prepare imagenet-test --imagenet-val DIR | prepare realsr --raw DIR``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", metavar="DIR",
                        help=f"data root (default: ${DATA_ROOT_ENV}, else ~/.cache/rsd-mini/data); "
                             "set NAME lives in DIR/NAME")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    actions.add_parser("list", parents=[common], help="the known data sets and where they are expected")
    checker = actions.add_parser("check", parents=[common], help="check data sets against their manifests")
    checker.add_argument("names", nargs="*", metavar="NAME",
                         help=f"data sets to check (default: all): {', '.join(DATASETS)}")
    builder = actions.add_parser("prepare", help="build a data set from its raw download")
    targets = builder.add_subparsers(dest="target", metavar="NAME", required=True)
    imagenet = targets.add_parser("imagenet-test", parents=[common], help="ImageNet-Test from ImageNet val")
    imagenet.add_argument("--imagenet-val", required=True, metavar="DIR", help="the ImageNet val images")
    imagenet.add_argument("--count", type=int, default=3000, help="first COUNT of the 3000 images (default 3000)")
    imagenet.add_argument("--seed", type=int, default=IMAGENET_TEST_SEED,
                          help=f"degradation seeds are SEED + index (default {IMAGENET_TEST_SEED})")
    imagenet.add_argument("--selection", choices=SELECTIONS, default="official",
                          help="official: the manifest's list; recipe: redraw from this folder (default official)")
    imagenet.add_argument("--no-progress", action="store_true", help="no progress bar")
    realsr = targets.add_parser("realsr", parents=[common], help="RealSR-V3 Test/4 pairs from the raw download")
    realsr.add_argument("--raw", required=True, metavar="DIR", help="the unpacked RealSR(V3) folder")
    realsr.add_argument("--no-progress", action="store_true", help="no progress bar")


def _list(root: Path) -> int:
    print(f"data root: {root}")
    for name, manifest in DATASETS.items():
        where = root / name
        state = "present" if where.is_dir() else "absent"
        print(f"  {name:<15} {manifest['count']:>9,} {manifest['kind']:<13} {state:<7}  {manifest['title']}; "
              f"{', '.join(manifest['paper_tables'])}")
    return 0


def _check_all(names: list[str], root: Path) -> int:
    unknown = [name for name in names if name not in DATASETS]
    if unknown:
        print(f"rsd_mini: error: argument NAME: unknown data set(s) {unknown}; expected some of "
              f"{', '.join(DATASETS)}", file=sys.stderr)
        return 2
    reports = [check(name, root) for name in (names or DATASETS)]
    for report in reports:
        print(report.summary())
    return 0 if all(report.ok for report in reports) else 1


def _prepare(args: argparse.Namespace, root: Path) -> int:
    out_dir = root / args.target
    try:
        if args.target == "imagenet-test":
            done = prepare_imagenet_test(args.imagenet_val, out_dir, args.count, args.seed, args.selection,
                                         progress=not args.no_progress)
            count = args.count
        else:
            done = prepare_realsr(args.raw, out_dir, progress=not args.no_progress)
            count = None
    except (FileNotFoundError, ValueError) as error:
        print(f"rsd_mini: error: {error}", file=sys.stderr)
        return 2
    print(f"{done.name}: wrote {done.written}, kept {done.skipped} already there")
    report = check(args.target, root, count)
    print(report.summary())
    return 0 if report.ok else 1


def run_data(args: argparse.Namespace) -> int:
    """Run the ``data`` action parsed by :func:`add_data_arguments`; 0 if all is well, 1 if a set is
    incomplete, 2 on bad input."""
    root = data_root(args.root)
    if args.data_command == "list":
        return _list(root)
    if args.data_command == "check":
        return _check_all(args.names, root)
    return _prepare(args, root)
