"""Tests of rsd_mini.fullscale.prepare: manifests, data-set checks, ImageNet-Test and RealSR builders, CLI.

Everything runs on tiny fake layouts in tmp_path; nothing is downloaded.
"""

import argparse
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rsd_mini.fullscale import prepare


# ----------------------------------------------------------------------------- helpers
def write_image(path, height, width, seed=0, fmt=None, quality=90):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(array).save(path, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return path


def make_pairs(folder, names, lq_size=(8, 10), scale=4, lq="lq", gt="gt"):
    for index, name in enumerate(names):
        write_image(folder / lq / f"{name}.png", *lq_size, seed=index)
        write_image(folder / gt / f"{name}.png", scale * lq_size[0], scale * lq_size[1], seed=100 + index)
    return folder


def problems_text(report):
    return "\n".join(report.problems)


# ----------------------------------------------------------------------------- manifests
#: Image counts stated in RSD_SPEC §5/§6 and the StableSR/OSEDiff releases.
SPEC_COUNTS = {"imagenet-train": 1281167, "imagenet-test": 3000, "realsr": 100, "realset65": 65,
               "div2k-val-512": 3000, "realsr-512": 100, "drealsr-512": 93}


def test_every_manifest_parses_and_has_the_required_fields():
    files = sorted(prepare.MANIFEST_DIR.glob("*.json"))
    assert {path.stem for path in files} == set(SPEC_COUNTS)
    for path in files:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        missing = [key for key in prepare.REQUIRED_FIELDS if key not in manifest]
        assert not missing, f"{path.name} lacks {missing}"
        assert manifest["name"] == path.stem
        assert manifest["scale"] == 4
        assert manifest["count"] == SPEC_COUNTS[path.stem]
        assert manifest["kind"] in prepare.KINDS
        assert manifest["sources"] and all(source["url"].startswith("https://") for source in manifest["sources"])
        assert manifest["paper_tables"] and manifest["license"] and manifest["prepare"]
        key = "images" if manifest["kind"] == "class-folders" else "lq"
        assert all(key in layout for layout in manifest["layouts"])
        if manifest["kind"] == "paired":
            assert all("gt" in layout for layout in manifest["layouts"])
        for size_key in ("lq_size", "gt_size"):
            if manifest[size_key] is not None and manifest["lq_size"] and manifest["gt_size"]:
                assert [4 * side for side in manifest["lq_size"]] == manifest["gt_size"]
    assert set(prepare.DATASETS) == set(SPEC_COUNTS)


def test_imagenet_test_names_are_3000_distinct_val_images_matching_the_published_ones():
    names = prepare.official_imagenet_test_names()
    assert len(names) == len(set(names)) == 3000
    assert all(re.fullmatch(r"ILSVRC2012_val_\d{8}", name) and 1 <= int(name[-8:]) <= 50000 for name in names)
    # The RSD README shows the set's first two files; ResShift's testdata/Val_SR holds the first 32.
    assert sorted(names)[:2] == ["ILSVRC2012_val_00000067", "ILSVRC2012_val_00000073"]


def test_a_manifest_without_a_required_field_is_rejected(tmp_path):
    manifest = json.loads((prepare.MANIFEST_DIR / "realsr.json").read_text())
    del manifest["count"]
    (tmp_path / "realsr.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="count"):
        prepare._load_manifests(tmp_path)


# ----------------------------------------------------------------------------- data root
def test_data_root_prefers_argument_then_environment_then_home_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RSD_MINI_DATA", str(tmp_path / "from_env"))
    assert prepare.data_root(tmp_path / "given") == tmp_path / "given"
    assert prepare.data_root() == tmp_path / "from_env"
    monkeypatch.setenv("RSD_MINI_DATA", "")
    assert prepare.data_root() == Path.home() / ".cache" / "rsd-mini" / "data"
    monkeypatch.delenv("RSD_MINI_DATA")
    assert prepare.data_root() == Path.home() / ".cache" / "rsd-mini" / "data"
    assert prepare.data_root("~/x") == Path.home() / "x"
    with pytest.raises(ValueError, match="explicit=3"):
        prepare.data_root(3)


def test_check_uses_the_environment_root(tmp_path, monkeypatch):
    make_pairs(tmp_path / "realsr", ["a", "b"])
    monkeypatch.setenv("RSD_MINI_DATA", str(tmp_path))
    assert prepare.check("realsr", count=2).ok


# ----------------------------------------------------------------------------- check
def test_check_ok_paired_set(tmp_path):
    make_pairs(tmp_path / "realsr", ["Canon_001", "Canon_002", "Nikon_001"])
    (tmp_path / "realsr" / "lq" / ".DS_Store").write_bytes(b"\0")  # hidden files are ignored
    report = prepare.check("realsr", tmp_path, count=3)
    assert report.ok, report.summary()
    assert report.found == {"lq": 3, "gt": 3, "pairs": 3}
    assert report.root == tmp_path / "realsr"
    assert "ready" in report.summary()


def test_check_reports_an_absent_set_without_raising(tmp_path):
    report = prepare.check("realsr", tmp_path)
    assert not report.ok
    assert str(tmp_path / "realsr") in report.missing[0]
    assert "NOT READY" in report.summary() and "prepare realsr" in report.summary()


def test_check_reports_a_missing_gt_folder(tmp_path):
    make_pairs(tmp_path / "realsr", ["a", "b"])
    shutil.rmtree(tmp_path / "realsr" / "gt")
    report = prepare.check("realsr", tmp_path, count=2)
    assert not report.ok
    assert report.missing == [f"gt folder {tmp_path / 'realsr' / 'gt'}"]


def test_check_reports_a_wrong_count(tmp_path):
    make_pairs(tmp_path / "realsr", ["a", "b"])
    report = prepare.check("realsr", tmp_path)  # the manifest expects 100
    assert not report.ok
    assert "2 pairs, expected 100" in problems_text(report)


def test_check_reports_unpaired_names(tmp_path):
    folder = make_pairs(tmp_path / "realsr", ["a", "b", "c"])
    (folder / "gt" / "c.png").rename(folder / "gt" / "z.png")
    report = prepare.check("realsr", tmp_path, count=2)
    text = problems_text(report)
    assert "1 LR image(s) without an HR partner in gt/: c" in text
    assert "1 HR image(s) without an LR partner in lq/: z" in text
    assert report.found["pairs"] == 2


def test_check_reports_hr_that_is_not_four_times_the_lr(tmp_path):
    folder = make_pairs(tmp_path / "realsr", ["a", "b"])
    write_image(folder / "gt" / "b.png", 32, 41)  # LR is 8x10
    report = prepare.check("realsr", tmp_path, count=2)
    assert not report.ok
    assert "1 pair(s) whose HR is not 4 x the LR size: b (LR 8x10, HR 32x41)" in problems_text(report)


def test_check_reports_fixed_sizes_non_images_and_unreadable_files(tmp_path):
    folder = make_pairs(tmp_path / "imagenet-test", ["x", "y"], lq_size=(64, 64))
    write_image(folder / "lq" / "y.png", 32, 32)
    write_image(folder / "gt" / "y.png", 128, 128)
    (folder / "lq" / "notes.txt").write_text("not an image")
    (folder / "gt" / "x.png").write_bytes(b"broken")
    text = problems_text(prepare.check("imagenet-test", tmp_path, count=2))
    assert "1 lq image(s) not 64x64 (HxW): y.png 32x32" in text
    assert "1 gt image(s) not 256x256 (HxW): y.png 128x128" in text
    assert "1 file(s) in lq/ that are not .png images: notes.txt" in text
    assert "1 unreadable gt image(s): x.png" in text


def test_check_accepts_the_official_folder_names(tmp_path):
    make_pairs(tmp_path / "realsr", ["Canon_001", "Canon_002"], lq="LR_x4", gt="HR_x4")
    report = prepare.check("realsr", tmp_path, count=2)
    assert report.ok, report.summary()
    assert report.layout == {"lq": "LR_x4", "gt": "HR_x4"}


def test_check_lq_only_set_in_a_flat_folder(tmp_path):
    folder = tmp_path / "realset65"
    write_image(folder / "a.png", 20, 30)
    write_image(folder / "b.jpeg", 17, 23, fmt="JPEG")
    write_image(folder / "c.jpg", 40, 10, fmt="JPEG")
    report = prepare.check("realset65", tmp_path, count=3)
    assert report.ok, report.summary()
    assert report.found == {"lq": 3}
    assert "3 images, expected 65" in problems_text(prepare.check("realset65", tmp_path))


def test_check_class_folders_counts_without_opening_images(tmp_path, monkeypatch):
    manifest = {**prepare.DATASETS["imagenet-train"], "classes": 3}
    monkeypatch.setitem(prepare.DATASETS, "imagenet-train", manifest)
    folder = tmp_path / "imagenet-train"
    for index, wnid in enumerate(["n01440764", "n01443537"]):
        for item in range(2):
            (folder / wnid).mkdir(parents=True, exist_ok=True)
            (folder / wnid / f"{wnid}_{item}.JPEG").write_bytes(b"not decoded by check")
    (folder / "n01484850").mkdir()
    (folder / "n01484850.tar").write_bytes(b"left over")
    report = prepare.check("imagenet-train", tmp_path, count=4)
    assert report.found == {"classes": 3, "images": 4}
    text = problems_text(report)
    assert "1 class folder(s) without images: n01484850" in text
    assert "n01484850.tar" in text
    shutil.rmtree(folder / "n01484850")
    (folder / "n01484850.tar").unlink()
    report = prepare.check("imagenet-train", tmp_path, count=4)
    assert "2 class folders, expected 3" in problems_text(report)


def test_check_rejects_unknown_names_and_bad_counts(tmp_path):
    with pytest.raises(ValueError, match=r"name='nope'.*realsr"):
        prepare.check("nope", tmp_path)
    with pytest.raises(ValueError, match="count=0"):
        prepare.check("realsr", tmp_path, count=0)


# ----------------------------------------------------------------------------- locate_testset
def test_locate_testset_returns_folders_only_when_complete(tmp_path):
    assert prepare.locate_testset("realsr", tmp_path) is None
    make_pairs(tmp_path / "realsr", ["a", "b"], lq="LR_x4", gt="HR_x4")
    found = prepare.locate_testset("realsr", tmp_path, count=2)
    assert found == prepare.TestSet("realsr", tmp_path / "realsr" / "LR_x4", tmp_path / "realsr" / "HR_x4", 2)
    write_image(tmp_path / "realset65" / "lq" / "a.png", 9, 9)
    assert prepare.locate_testset("realset65", tmp_path, count=1).gt is None
    with pytest.raises(ValueError, match="training set"):
        prepare.locate_testset("imagenet-train", tmp_path)


# ----------------------------------------------------------------------------- ImageNet-Test recipe
def test_select_imagenet_test_is_seeded_order_free_and_prefix_stable():
    paths = [f"val/n{index % 7:08d}/ILSVRC2012_val_{index:08d}.JPEG" for index in range(1, 501)]
    chosen = prepare.select_imagenet_test(paths, count=40)
    assert len(set(chosen)) == 40 and set(map(str, chosen)) <= set(paths)
    assert prepare.select_imagenet_test(list(reversed(paths)), count=40) == chosen
    assert prepare.select_imagenet_test(paths, count=5) == chosen[:5]
    assert prepare.select_imagenet_test(paths, count=40, seed=1) != chosen
    with pytest.raises(ValueError, match="count=501"):
        prepare.select_imagenet_test(paths, count=501)


def test_imagenet_test_gt_crops_the_centre_when_the_short_side_is_256():
    image = torch.rand(3, 300, 256)
    assert torch.equal(prepare.imagenet_test_gt(image), image[:, 22:278, :])


@pytest.mark.parametrize("height, width", [(100, 150), (300, 403)])  # up; down with 343.9 -> 344
def test_imagenet_test_gt_resizes_bilinearly_at_pixel_centres_without_antialiasing(height, width):
    columns = np.random.default_rng(height).random(width)  # varies along x only
    image = torch.from_numpy(columns).expand(3, height, width).clone()
    out = prepare.imagenet_test_gt(image)
    assert out.shape == (3, 256, 256)
    new_width = round(width * 256 / height)  # albumentations SmallestMaxSize rounding
    left = (new_width - 256) // 2
    target = np.arange(left, left + 256)
    source = (target + 0.5) * width / new_width - 0.5  # cv2 INTER_LINEAR: pixel centres, no antialiasing
    expected = np.interp(source, np.arange(width), columns)  # clamps at the borders as cv2 does
    np.testing.assert_allclose(out[1, 100].numpy(), expected, atol=1e-6)
    torch.testing.assert_close(out, out[:, :1].expand(3, 256, 256))  # every row alike
    with pytest.raises(ValueError, match="image"):
        prepare.imagenet_test_gt(torch.rand(100, 150))


def test_select_imagenet_test_replays_the_official_random_calls():
    """[RS] prepare_testing_imagenet_sr.py: random.seed(10000); random.shuffle(sorted list);
    then RealESRGANDataset: random.sample(sorted paths, 3000), all on the module's one state."""
    import random

    paths = [f"val/n{index % 3:08d}/ILSVRC2012_val_{index:08d}.JPEG" for index in range(1, 301)]
    ordered = sorted(paths)
    rng = random.Random(10000)
    rng.shuffle(list(ordered))
    assert [str(path) for path in prepare.select_imagenet_test(paths, count=30)] == rng.sample(ordered, 30)


@pytest.fixture
def fake_val(tmp_path):
    """Six small JPEGs in two class folders; three carry names of the official ImageNet-Test list."""
    official = prepare.official_imagenet_test_names()
    names = official[:3] + ["ILSVRC2012_val_90000001", "ILSVRC2012_val_90000002", "ILSVRC2012_val_90000003"]
    for index, name in enumerate(names):
        write_image(tmp_path / "val" / f"n0000000{index % 2}" / f"{name}.JPEG", 40 + 6 * index, 52, seed=index,
                    fmt="JPEG")
    return tmp_path / "val"


def file_bytes(folder):
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*.png"))}


def test_prepare_imagenet_test_writes_pairs_deterministically_and_resumes(fake_val, tmp_path):
    first = prepare.prepare_imagenet_test(fake_val, tmp_path / "data" / "imagenet-test", count=4,
                                          selection="recipe", progress=False)
    assert (first.written, first.skipped) == (4, 0)
    report = prepare.check("imagenet-test", tmp_path / "data", count=4)
    assert report.ok, report.summary()  # 64x64 LR, 256x256 GT, paired names
    again = prepare.prepare_imagenet_test(fake_val, tmp_path / "again", count=4, selection="recipe", progress=False)
    reference = file_bytes(first.lq.parent)
    assert file_bytes(again.lq.parent) == reference and len(reference) == 8
    lq_files = sorted(first.lq.iterdir())
    assert len({path.read_bytes() for path in lq_files}) == 4
    stamps = {path: path.stat().st_mtime_ns for path in first.gt.iterdir()}
    lq_files[1].unlink()
    resumed = prepare.prepare_imagenet_test(fake_val, first.lq.parent, count=4, selection="recipe", progress=False)
    assert (resumed.written, resumed.skipped) == (1, 3)
    assert file_bytes(first.lq.parent) == reference
    untouched = [path for path in stamps if path.stem != lq_files[1].stem]
    assert all(path.stat().st_mtime_ns == stamps[path] for path in untouched)
    rows = (first.lq.parent / "selection.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["index", "name", "source", "generator_seed"] and len(rows) == 5


def test_prepare_imagenet_test_draws_each_degradation_from_its_own_generator(tmp_path):
    for name in ("ILSVRC2012_val_00000001", "ILSVRC2012_val_00000002"):  # the same pixels twice
        write_image(tmp_path / "val" / f"{name}.JPEG", 64, 80, seed=7, fmt="JPEG")
    done = prepare.prepare_imagenet_test(tmp_path / "val", tmp_path / "out", count=2, selection="recipe",
                                         progress=False)
    gt, lq = sorted(done.gt.iterdir()), sorted(done.lq.iterdir())
    assert gt[0].read_bytes() == gt[1].read_bytes()
    assert lq[0].read_bytes() != lq[1].read_bytes()
    seeds = [row.split("\t")[3] for row in (tmp_path / "out" / "selection.tsv").read_text().splitlines()[1:]]
    assert seeds == ["10000", "10001"]


def test_prepare_imagenet_test_official_selection_takes_the_manifest_names(fake_val, tmp_path):
    done = prepare.prepare_imagenet_test(fake_val, tmp_path / "out", count=3, progress=False)
    assert sorted(path.stem for path in done.gt.iterdir()) == sorted(prepare.official_imagenet_test_names()[:3])
    with pytest.raises(ValueError, match="not in it"):
        prepare.prepare_imagenet_test(fake_val, tmp_path / "out", count=4, progress=False)


def test_prepare_imagenet_test_rejects_bad_inputs(fake_val, tmp_path):
    with pytest.raises(FileNotFoundError, match="imagenet_val_dir"):
        prepare.prepare_imagenet_test(tmp_path / "absent", tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no \*\.JPEG"):
        prepare.prepare_imagenet_test(tmp_path / "empty", tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="selection='best'"):
        prepare.prepare_imagenet_test(fake_val, tmp_path / "out", selection="best", progress=False)
    with pytest.raises(ValueError, match="count=7"):
        prepare.prepare_imagenet_test(fake_val, tmp_path / "out", count=7, selection="recipe", progress=False)


# ----------------------------------------------------------------------------- RealSR
@pytest.fixture
def raw_realsr(tmp_path):
    """A miniature RealSR(V3) download: two cameras, two Test/4 pairs each, plus x2 and Train noise."""
    raw = tmp_path / "RealSR(V3)"
    for camera in ("Canon", "Nikon"):
        for number, size in (("001", (6, 7)), ("002", (5, 9))):
            write_image(raw / camera / "Test" / "4" / f"{camera}_{number}_LR4.png", *size, seed=int(number))
            write_image(raw / camera / "Test" / "4" / f"{camera}_{number}_HR.png", 4 * size[0], 4 * size[1])
            write_image(raw / camera / "Test" / "2" / f"{camera}_{number}_LR2.png", 3, 3)
        write_image(raw / camera / "Train" / "4" / f"{camera}_100_HR.png", 8, 8)
    return raw


def test_prepare_realsr_reorganises_test_x4_pairs(raw_realsr, tmp_path):
    done = prepare.prepare_realsr(raw_realsr, tmp_path / "data" / "realsr", progress=False)
    expected = ["Canon_001.png", "Canon_002.png", "Nikon_001.png", "Nikon_002.png"]
    assert sorted(p.name for p in done.lq.iterdir()) == sorted(p.name for p in done.gt.iterdir()) == expected
    assert (done.lq / "Nikon_002.png").read_bytes() == (raw_realsr / "Nikon/Test/4/Nikon_002_LR4.png").read_bytes()
    assert (done.gt / "Canon_001.png").read_bytes() == (raw_realsr / "Canon/Test/4/Canon_001_HR.png").read_bytes()
    assert prepare.check("realsr", tmp_path / "data", count=4).ok
    assert (done.written, done.skipped) == (4, 0)
    rerun = prepare.prepare_realsr(raw_realsr, tmp_path / "data" / "realsr", progress=False)
    assert (rerun.written, rerun.skipped) == (0, 4)


def test_prepare_realsr_rejects_incomplete_or_foreign_folders(raw_realsr, tmp_path):
    (raw_realsr / "Nikon" / "Test" / "4" / "Nikon_002_HR.png").unlink()
    with pytest.raises(ValueError, match=r"Nikon/Test/4 has 1 HR and 2 LR4 .*LR only: 002"):
        prepare.prepare_realsr(raw_realsr, tmp_path / "out", progress=False)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(ValueError, match="raw_dir=.*Test/4"):
        prepare.prepare_realsr(tmp_path / "elsewhere", tmp_path / "out", progress=False)
    with pytest.raises(FileNotFoundError, match="raw_dir"):
        prepare.prepare_realsr(tmp_path / "absent", tmp_path / "out", progress=False)


# ----------------------------------------------------------------------------- command line
def run_cli(argv):
    parser = argparse.ArgumentParser(prog="rsd_mini data")
    prepare.add_data_arguments(parser)
    return prepare.run_data(parser.parse_args(argv))


def test_cli_list_check_and_prepare(raw_realsr, tmp_path, monkeypatch, capsys):
    root = str(tmp_path / "data")
    assert run_cli(["list", "--root", root]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in prepare.DATASETS)
    assert run_cli(["check", "realsr", "--root", root]) == 1
    assert "NOT READY" in capsys.readouterr().out
    assert run_cli(["check", "realsr", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    monkeypatch.setitem(prepare.DATASETS, "realsr", {**prepare.DATASETS["realsr"], "count": 4})
    assert run_cli(["prepare", "realsr", "--raw", str(raw_realsr), "--root", root, "--no-progress"]) == 0
    assert "realsr: ready" in capsys.readouterr().out
    assert run_cli(["check", "realsr", "--root", root]) == 0
    assert run_cli(["prepare", "imagenet-test", "--imagenet-val", str(tmp_path / "absent"), "--root", root]) == 2
    assert "imagenet_val_dir" in capsys.readouterr().err
