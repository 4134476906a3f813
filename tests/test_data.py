"""Tests of rsd_mini.data: image reading, the official GT crop, HR/LR datasets (RSD_SPEC §6)."""

import hashlib
import socket

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from rsd_mini import data


def write_png(path, array, mode=None):
    (Image.fromarray(array, mode) if mode else Image.fromarray(array)).save(path)
    return path


def random_uint8(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def pool_degradation(hr, generator):
    """Stand-in degradation: 4x box average plus generator-drawn noise, rounded later by the dataset."""
    lq = F.avg_pool2d(hr, 4)
    return (lq + 0.05 * torch.randn(lq.shape, generator=generator)).clamp(0, 1)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    write_png(root / "a.png", random_uint8((80, 120, 3), 1))
    write_png(root / "sub" / "b.PNG", random_uint8((70, 70), 2))
    Image.fromarray(random_uint8((90, 64, 3), 3)).save(root / "c.jpg", quality=90)
    (root / "notes.txt").write_text("not an image")
    return root


# ----------------------------------------------------------------------------- load / save
def test_grey_image_is_replicated_to_rgb(tmp_path):
    grey = random_uint8((5, 7))
    image = data.load_image(write_png(tmp_path / "g.png", grey))
    assert image.shape == (3, 5, 7) and image.dtype == torch.float32
    for channel in image:
        assert torch.equal(channel, torch.from_numpy(grey).float() / 255)


def test_rgba_and_la_are_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)   # opaque red
    rgba[0, 1] = (0, 0, 0, 0)       # transparent black -> white
    rgba[1, 0] = (0, 0, 255, 51)    # 20 % blue over white
    image = data.load_image(write_png(tmp_path / "rgba.png", rgba))
    assert torch.allclose(image[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(image[:, 0, 1], torch.ones(3))
    assert torch.allclose(image[:, 1, 0], torch.tensor([0.8, 0.8, 1.0]), atol=1e-6)
    la = np.array([[[0, 0], [100, 255]]], np.uint8)
    image = data.load_image(write_png(tmp_path / "la.png", la, "LA"))
    assert torch.allclose(image[:, 0, 0], torch.ones(3))
    assert torch.allclose(image[:, 0, 1], torch.full((3,), 100 / 255))


def test_palette_image_becomes_rgb(tmp_path):
    palette_image = Image.new("P", (3, 1))
    palette_image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    palette_image.putdata([0, 1, 2])
    palette_image.save(tmp_path / "p.png")
    image = data.load_image(tmp_path / "p.png")
    assert torch.equal(image[:, 0, :], torch.eye(3))


def test_16_bit_png_is_scaled_by_65535(tmp_path):
    values = np.array([[0, 1, 257, 30000], [40000, 65534, 65535, 12345]], np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as reopened:
        assert reopened.mode in ("I;16", "I")  # the file really holds 16-bit samples
    image = data.load_image(tmp_path / "deep.png")
    expected = torch.from_numpy(values.astype(np.float32) / 65535)
    assert torch.allclose(image[0], expected, atol=1e-7) and torch.equal(image[0], image[2])


def test_unreadable_and_missing_files_name_the_path(tmp_path):
    bad = tmp_path / "fake.png"
    bad.write_text("hello")
    with pytest.raises(ValueError, match=r"fake\.png.*not a readable image"):
        data.load_image(bad)
    truncated = tmp_path / "truncated.png"
    write_png(truncated, random_uint8((64, 64, 3)))
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated.png"):
        data.load_image(truncated)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        data.load_image(tmp_path / "missing.png")


def test_save_image_round_trips_and_leaves_no_temporary_file(tmp_path):
    image = torch.from_numpy(random_uint8((3, 6, 5))).float() / 255
    path = data.save_image(image, tmp_path / "out" / "x.png")
    assert torch.equal(data.load_image(path), image)
    data.save_image(image * 2 - 1, path, value_range=(-1, 1))
    assert torch.allclose(data.load_image(path), image, atol=1e-6)
    assert [p.name for p in path.parent.iterdir()] == ["x.png"]
    with pytest.raises(ValueError, match="image"):
        data.save_image(torch.zeros(4, 5, 5), tmp_path / "bad.png")


# ----------------------------------------------------------------------------- crops
def test_square_crop_resize_is_an_area_resized_square_window():
    """Short side 256 -> a 256² window (or its mirror) box-averaged 4x4 to 64² (RSD_SPEC §6 step 4)."""
    image = torch.rand(3, 256, 300, generator=torch.Generator().manual_seed(0))
    crop = data.random_square_crop_resize(image, 64, torch.Generator().manual_seed(1))
    assert crop.shape == (3, 64, 64)
    candidates = [F.avg_pool2d(source[None, :, :, left:left + 256], 4)[0]
                  for source in (image, image.flip(-1)) for left in range(300 - 256 + 1)]
    assert any(torch.allclose(crop, c, atol=1e-6) for c in candidates)


def test_square_crop_reflect_pads_small_images():
    image = torch.rand(3, 40, 50, generator=torch.Generator().manual_seed(0))
    crop = data.random_square_crop_resize(image, 64, torch.Generator().manual_seed(2))
    assert crop.shape == (3, 64, 64)
    # padded to exactly 64 rows: the bottom rows mirror rows above row 39 (BORDER_REFLECT_101)
    assert torch.equal(crop[:, 40:64], crop[:, 15:39].flip(1))


def test_random_crop_keeps_native_pixels_and_rejects_tiny_images():
    image = torch.rand(3, 30, 40, generator=torch.Generator().manual_seed(0))
    crop = data.random_crop(image, 16, torch.Generator().manual_seed(3))
    windows = [source[:, top:top + 16, left:left + 16] for source in (image, image.flip(-1))
               for top in range(15) for left in range(25)]
    assert any(torch.equal(crop, w) for w in windows)
    assert data.random_crop(image, 48, torch.Generator()).shape == (3, 48, 48)  # padded: 30 >= 48/2
    with pytest.raises(ValueError, match=r"30x40.*crop size 64"):
        data.random_crop(image, 64, torch.Generator())


# ----------------------------------------------------------------------------- ImageFolderSR
def test_folder_items_have_shapes_and_range(folder):
    for mode in data.CROP_MODES:
        dataset = data.ImageFolderSR(folder, crop_size=32, degradation=pool_degradation, crop_mode=mode)
        assert [p.split("images/")[1] for p in dataset.files] == ["a.png", "c.jpg", "sub/b.PNG"]
        for item in dataset:
            assert item["hr"].shape == (3, 32, 32) and item["lq"].shape == (3, 8, 8)
            for key in ("hr", "lq"):
                assert -1 <= item[key].min() and item[key].max() <= 1
            assert torch.equal(torch.round((item["lq"] + 1) / 2 * 255), (item["lq"] + 1) / 2 * 255)


def test_items_are_reproducible_per_seed_epoch_and_index(folder):
    def item(seed=0, epoch=0, index=1):
        dataset = data.ImageFolderSR(folder, crop_size=32, degradation=pool_degradation, seed=seed)
        dataset.set_epoch(epoch)
        return dataset[index]

    first = item()
    assert all(torch.equal(first[k], item()[k]) for k in ("hr", "lq"))
    for other in (item(epoch=1), item(seed=1)):
        assert not torch.equal(first["hr"], other["hr"]) and not torch.equal(first["lq"], other["lq"])


def test_items_do_not_depend_on_worker_count(folder):
    dataset = data.ImageFolderSR(folder, crop_size=32, degradation=pool_degradation, seed=5, length=6)
    dataset.set_epoch(3)
    batches = [next(iter(torch.utils.data.DataLoader(dataset, batch_size=6, num_workers=workers)))
               for workers in (0, 2)]
    assert torch.equal(batches[0]["hr"], batches[1]["hr"]) and torch.equal(batches[0]["lq"], batches[1]["lq"])


def test_preset_degradation_is_used_and_rounded(folder):
    pytest.importorskip("rsd_mini.degradations")
    from rsd_mini.degradations import bicubic_downsample

    item = data.ImageFolderSR(folder, crop_size=32, degradation="bicubic")[0]
    expected = torch.round(bicubic_downsample((item["hr"][None] + 1) / 2) * 255) / 255
    assert torch.allclose((item["lq"] + 1) / 2, expected[0], atol=1e-6)


def test_folder_argument_errors(folder, tmp_path):
    with pytest.raises(ValueError, match="crop_size=30.*scale=4"):
        data.ImageFolderSR(folder, crop_size=30)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        data.ImageFolderSR(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.ImageFolderSR(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="crop_mode='center'"):
        data.ImageFolderSR(folder, crop_mode="center")
    assert set(data.ImageFolderSR(folder, crop_size=32, degradation=None)[0]) == {"hr", "path"}


def test_too_small_image_error_names_the_file(tmp_path):
    write_png(tmp_path / "tiny.png", random_uint8((10, 10, 3)))
    dataset = data.ImageFolderSR(tmp_path, crop_size=32, degradation=None, crop_mode="crop")
    with pytest.raises(ValueError, match=r"tiny\.png.*crop size 32"):
        dataset[0]
    padded = data.ImageFolderSR(tmp_path, crop_size=32, degradation=None, crop_mode="resize")[0]
    assert padded["hr"].shape == (3, 32, 32)  # the official pipeline pads instead


# ----------------------------------------------------------------------------- paired folders
def make_pairs(root, names_lq, names_gt, lq_size=(8, 6), gt_size=(32, 24)):
    for sub, names, size in (("lq", names_lq, lq_size), ("gt", names_gt, gt_size)):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for name in names:
            write_png(root / sub / f"{name}.png", random_uint8((*size, 3)))
    return root / "lq", root / "gt"


def test_paired_folder_items(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path, ["x", "y"], ["x", "y"])
    dataset = data.PairedFolderSR(lq_dir, gt_dir)
    item = dataset[1]
    assert item["name"] == "y" and item["lq"].shape == (3, 8, 6) and item["hr"].shape == (3, 32, 24)
    assert -1 <= item["hr"].min() and item["hr"].max() <= 1
    assert set(data.PairedFolderSR(lq_dir)[0]) == {"lq", "name"}


def test_paired_folder_errors(tmp_path):
    lq_dir, gt_dir = make_pairs(tmp_path / "names", ["a", "b", "c"], ["a", "d"])
    with pytest.raises(ValueError, match=r"\['b', 'c'\].*\['d'\]"):
        data.PairedFolderSR(lq_dir, gt_dir)
    lq_dir, gt_dir = make_pairs(tmp_path / "sizes", ["a"], ["a"], gt_size=(30, 24))
    with pytest.raises(ValueError, match=r"a\.png.*30x24.*8x6"):
        data.PairedFolderSR(lq_dir, gt_dir)
    with pytest.raises(FileNotFoundError, match="absent"):
        data.PairedFolderSR(tmp_path / "absent", gt_dir)


# ----------------------------------------------------------------------------- mini dataset
def test_mini_photo_lists_are_bundled_and_disjoint():
    train, val = data.mini_photo_names("train"), data.mini_photo_names("val")
    assert train and val and not set(train) & set(val)
    assert {"motorcycle_left.png", "motorcycle_right.png"} <= set(train)
    digests = {split: {hashlib.sha256(p.read_bytes()).hexdigest() for p in data.mini_photo_paths(split)}
               for split in data.SPLITS}
    assert not digests["train"] & digests["val"]
    with pytest.raises(ValueError, match="split='test'"):
        data.mini_photo_names("test")
    with pytest.raises(ValueError, match="split='test'"):
        data.mini_dataset("test")


def test_mini_dataset_without_network(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    val = data.mini_dataset("val", crop_size=32, degradation=pool_degradation, num_crops=4)
    again = data.mini_dataset("val", crop_size=32, degradation=pool_degradation, num_crops=4)
    again.set_epoch(7)
    assert all(torch.equal(val[i][k], again[i][k]) for i in range(4) for k in ("hr", "lq"))
    train = data.mini_dataset("train", crop_size=32, degradation=pool_degradation, num_crops=3)
    first = train[2]["hr"]
    train.set_epoch(1)
    assert train[2]["hr"].shape == (3, 32, 32) and not torch.equal(first, train[2]["hr"])
    assert len(data.mini_dataset("train", crop_size=32, degradation=None)) == data.MINI_NUM_CROPS["train"]

    lq_dir, hr_dir = data.export_paired(val, tmp_path / "val")
    paired = data.PairedFolderSR(lq_dir, hr_dir)
    assert len(paired) == 4 and paired.names[0].startswith("0000_chelsea")
    assert torch.allclose(paired[0]["lq"], val[0]["lq"], atol=1e-6)
    assert torch.allclose(paired[0]["hr"], val[0]["hr"], atol=1 / 255 + 1e-6)


def test_zoom_crop_covers_a_larger_window_and_is_seeded():
    ramp = torch.arange(256.0).view(1, 1, 256).expand(3, 256, 256) / 255  # value = column / 255
    slopes = []
    for seed in range(8):
        crop = data.random_zoom_crop(ramp, 32, torch.Generator().manual_seed(seed))
        assert crop.shape == (3, 32, 32)
        torch.testing.assert_close(crop, data.random_zoom_crop(ramp, 32, torch.Generator().manual_seed(seed)))
        slopes.append(float((crop[0, 0, 1:] - crop[0, 0, :-1]).abs().mean() * 255))
    # Each output pixel spans side/32 input columns, with side in [32, 4·32].
    assert all(1 - 1e-4 <= s <= 4 + 1e-4 for s in slopes)
    assert max(slopes) - min(slopes) > 0.5  # the zoom varies with the seed


def test_train_crops_permute_colours_and_val_crops_do_not():
    train = data.mini_dataset("train", num_crops=12, degradation="bicubic", permute_colors=True)
    val = data.mini_dataset("val", num_crops=4, degradation="bicubic", permute_colors=True)
    assert train.permute_colors and not val.permute_colors
    plain = data.ImageListSR(train.files, crop_size=64, degradation="bicubic", crop_mode="zoom",
                             length=12, cache_images=True)
    differing = [i for i in range(12) if not torch.equal(train[i]["hr"], plain[i]["hr"])]
    assert differing  # some items got a non-identity permutation
    for i in differing:  # ... and it is a permutation of the same crop's channels
        assert sorted(train[i]["hr"].sum((1, 2)).tolist()) == pytest.approx(sorted(plain[i]["hr"].sum((1, 2)).tolist()))
