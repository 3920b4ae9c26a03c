"""Tests for dirac.data: image folders, measurement folders, embedded photo/face crops, registry."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from dirac.data import (
    TEST_PHOTOS,
    FaceCrops,
    ImageFolderDataset,
    MeasurementFolderDataset,
    PhotoCrops,
    available_datasets,
    build_dataset,
    find_images,
    load_image,
    split_of,
)
from dirac.data.embedded import _ROTATION_PAD, _original_photo, _rotated_crop, max_box_reach, rotated_box_reach
from dirac.data.transforms import pil_to_tensor
from dirac.factory import dataset_from_config


def _noise_image(h: int, w: int, mode: str, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    arr = rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8)
    if mode == "RGBA":
        arr[..., 3] = 255
    return Image.fromarray(arr[..., 0] if channels == 1 else arr, mode=mode)


@pytest.fixture()
def image_tree(tmp_path: Path) -> Path:
    """Mixed grey/RGB/RGBA, PNG/JPG, nested folders, one corrupt file, one hidden file, one non-image."""
    root = tmp_path / "images"
    (root / "sub" / "deep").mkdir(parents=True)
    _noise_image(40, 60, "RGB", 0).save(root / "a.png")
    _noise_image(50, 50, "L", 1).save(root / "sub" / "b.jpg", quality=95)
    _noise_image(30, 45, "RGBA", 2).save(root / "sub" / "deep" / "c.png")
    _noise_image(36, 36, "RGB", 3).save(root / "d.PNG")
    _noise_image(36, 36, "RGB", 4).save(root / ".hidden.png")
    (root / "notes.txt").write_text("not an image")
    (root / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    return root


def _all(root: Path, **kwargs) -> ImageFolderDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ImageFolderDataset(root, split="all", **kwargs)


# ----------------------------------------------------------------------------------------------- folder


def test_find_images_recursive_sorted_filtered(image_tree: Path) -> None:
    files = find_images(image_tree)
    assert files == sorted(files)
    assert files == ["a.png", "d.PNG", "sub/b.jpg", "sub/broken.png", "sub/deep/c.png"]
    assert find_images(image_tree, extensions=(".JPG",)) == ["sub/b.jpg"]


def test_corrupt_file_skipped_with_one_warning(image_tree: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = ImageFolderDataset(image_tree, image_size=16, split="all")
    assert len(caught) == 1
    assert "skipped 1" in str(caught[0].message) and "broken.png" in str(caught[0].message)
    assert ds.skipped == ["sub/broken.png"]
    assert len(ds) == 4 and "sub/broken.png" not in ds.files


@pytest.mark.parametrize("crop", ["center", "resize", "random"])
@pytest.mark.parametrize("channels", [1, 3])
def test_folder_shapes_and_range(image_tree: Path, crop: str, channels: int) -> None:
    ds = _all(image_tree, image_size=24, channels=channels, crop=crop, random_scale=(1.0, 1.5))
    for i in range(len(ds)):
        x = ds[i]
        assert x.shape == (channels, 24, 24) and x.dtype == torch.float32
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_channel_conversion_and_alpha(tmp_path: Path) -> None:
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    Image.fromarray(red).save(tmp_path / "red.png")
    grey = load_image(tmp_path / "red.png", channels=1)
    assert grey.shape == (1, 8, 8) and torch.allclose(grey, torch.full_like(grey, 0.299), atol=1e-6)

    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(tmp_path / "grey.png")
    rgb = load_image(tmp_path / "grey.png", channels=3)
    assert rgb.shape == (3, 8, 8) and torch.equal(rgb[0], rgb[1]) and torch.equal(rgb[1], rgb[2])

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :4, 3] = 255  # left half opaque black, right half fully transparent (black underneath)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    x = load_image(tmp_path / "rgba.png", channels=3)
    assert x.shape == (3, 8, 8)
    assert float(x[:, :, :4].max()) == 0.0 and float(x[:, :, 4:].min()) == 1.0

    grey16 = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    x16 = load_image(tmp_path / "g16.png")
    assert x16.shape == (1, 8, 8)
    assert torch.allclose(x16[0], torch.from_numpy(grey16.astype(np.float32) / 65535.0), atol=1e-6)


def test_exif_orientation_applied(tmp_path: Path) -> None:
    img = _noise_image(8, 12, "RGB", 0)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    img.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    assert load_image(tmp_path / "rot.jpg").shape == (3, 12, 8)
    assert MeasurementFolderDataset(tmp_path).size == (12, 8)


def test_folder_determinism_and_epochs(image_tree: Path) -> None:
    kw = dict(image_size=20, crop="random", random_scale=(1.2, 2.0), hflip=True)
    a, b = _all(image_tree, seed=3, **kw), _all(image_tree, seed=3, **kw)
    assert all(torch.equal(a[i], b[i]) for i in range(len(a)))
    assert torch.equal(a[0], a[0])  # pure in the index: same item twice
    c = _all(image_tree, seed=4, **kw)
    assert any(not torch.equal(a[i], c[i]) for i in range(len(a)))
    b.set_epoch(1)
    assert any(not torch.equal(a[i], b[i]) for i in range(len(a)))
    center = _all(image_tree, image_size=20, crop="center")
    assert torch.equal(center[1], center[1])


def test_missing_root(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match="nope"):
        ImageFolderDataset(missing, image_size=8)


def test_empty_folder_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"(?s)No images found for split 'train'.*empty.*\.png.*extensions="):
        ImageFolderDataset(tmp_path / "empty", image_size=8)

    one = tmp_path / "one"
    one.mkdir()
    _noise_image(8, 8, "RGB", 0).save(one / "x.png")
    with pytest.raises(ValueError, match=r"(?s)Split 'val' is empty.*split='all'"):
        ImageFolderDataset(one, image_size=8, split="val", split_fractions=(1.0, 0.0, 0.0))

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"nope")
    with pytest.warns(UserWarning, match="skipped 1"), pytest.raises(ValueError, match="unreadable"):
        ImageFolderDataset(bad, image_size=8, split="all")


def test_split_disjoint_and_stable_when_files_added(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    tiny = _noise_image(8, 8, "RGB", 0)
    for i in range(40):
        tiny.save(root / f"img_{i:03d}.png")

    def splits() -> dict[str, list[str]]:
        return {
            s: ImageFolderDataset(root, image_size=8, split=s, verify="none").files for s in ("train", "val", "test")
        }

    before = splits()
    files = [f for s in before.values() for f in s]
    assert sorted(files) == find_images(root) and len(set(files)) == len(files)
    assert len(before["train"]) > len(before["val"]) and len(before["val"]) > 0 and len(before["test"]) > 0

    for i in range(40, 55):
        tiny.save(root / f"img_{i:03d}.png")
    after = splits()
    for s in before:
        assert set(before[s]) <= set(after[s])
    assert all(split_of(f) == s for s, fs in after.items() for f in fs)
    assert split_of("img_000.png", split_seed=0) == split_of("img_000.png", split_seed=0)


def test_measurement_folder(tmp_path: Path) -> None:
    root = tmp_path / "meas"
    (root / "cam1").mkdir(parents=True)
    _noise_image(24, 20, "RGB", 0).save(root / "cam1" / "m0.png")
    _noise_image(24, 20, "L", 1).save(root / "m1.png")
    ds = MeasurementFolderDataset(root, channels=3)
    assert len(ds) == 2 and ds.size == (24, 20)
    x, rel = ds[0]
    assert x.shape == (3, 24, 20) and rel == "cam1/m0.png"
    expected = np.asarray(Image.open(root / "cam1" / "m0.png"), np.float32).transpose(2, 0, 1) / 255.0
    assert torch.allclose(x, torch.from_numpy(expected))
    batch, names = next(iter(DataLoader(ds, batch_size=2)))
    assert batch.shape == (2, 3, 24, 20) and list(names) == ["cam1/m0.png", "m1.png"]

    _noise_image(16, 16, "RGB", 2).save(root / "odd.png")
    with pytest.raises(ValueError, match="same size"):
        MeasurementFolderDataset(root)


# --------------------------------------------------------------------------------------------- embedded


def test_photo_test_split_is_64_crops_of_chelsea_and_coffee() -> None:
    ds = PhotoCrops("test")
    assert len(ds) == 64 and ds.sources == TEST_PHOTOS == ("chelsea", "coffee")
    names = [ds.crop_info(i)["name"] for i in range(len(ds))]
    assert names.count("chelsea") == 32 and names.count("coffee") == 32
    xs = torch.stack([ds[i] for i in range(len(ds))])
    assert xs.shape == (64, 3, 32, 32) and xs.dtype == torch.float32
    assert float(xs.min()) >= 0.0 and float(xs.max()) <= 1.0
    assert torch.equal(xs[5], PhotoCrops("test", seed=123)[5])  # the test set never depends on the seed
    assert PhotoCrops("test", channels=1)[0].shape == (1, 32, 32)


def test_photo_splits_share_no_photograph() -> None:
    train, val, test = (set(PhotoCrops(s, length=8).sources) for s in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert len(val) >= 1 and len(train) >= 3
    ds = PhotoCrops("train", length=32, random_scale=(3.0, 6.0))
    assert {ds.crop_info(i)["name"] for i in range(len(ds))} <= train


def test_photo_train_crops_vary_and_reproduce() -> None:
    a = PhotoCrops("train", length=16, seed=7, random_scale=(3.0, 6.0))
    b = PhotoCrops("train", length=16, seed=7, random_scale=(3.0, 6.0))
    xa = torch.stack([a[i] for i in range(16)])
    assert xa.shape == (16, 3, 32, 32) and float(xa.min()) >= 0.0 and float(xa.max()) <= 1.0
    assert torch.equal(xa, torch.stack([b[i] for i in range(16)]))
    assert len({xa[i].sum().item() for i in range(16)}) == 16  # different crops for different indices
    assert torch.equal(a[3], a[3])
    b.set_epoch(1)
    assert not torch.equal(a[3], b[3])
    assert not torch.equal(a[3], PhotoCrops("train", length=16, seed=8, random_scale=(3.0, 6.0))[3])
    assert len(PhotoCrops("train")) == 4096
    assert PhotoCrops("train", length=4, channels=1)[0].shape == (1, 32, 32)


def test_rotated_crop_at_a_right_angle_is_the_plain_crop_turned() -> None:
    """At 90° the bicubic rotation lands on the pixel grid, so the rotated crop is rot90 of the plain one."""
    img = _original_photo("camera")
    cx, cy, side = 256.0, 240.0, 96.0
    box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    plain = pil_to_tensor(img.resize((32, 32), Image.Resampling.BOX, box=box))
    turned = pil_to_tensor(_rotated_crop(img, cx, cy, side, 90.0, 32))
    assert torch.allclose(turned, torch.rot90(plain, 1, dims=(-2, -1)), atol=2 / 255)
    assert not torch.allclose(turned, plain, atol=0.05)  # the check above can tell turned from not turned
    same = pil_to_tensor(_rotated_crop(img, cx, cy, side, 360.0, 32))
    assert torch.allclose(same, plain, atol=2 / 255)


def test_stretched_crop_is_the_rectangle_squeezed_and_turned() -> None:
    """Aspect a: the √a·s x s/√a rectangle resized to the square; at 90° the s/√a x √a·s one, turned."""
    img = _original_photo("camera")
    cx, cy, side, aspect = 256.0, 240.0, 96.0, 1.6
    w, h = side * math.sqrt(aspect), side / math.sqrt(aspect)

    def plain(bw: float, bh: float) -> torch.Tensor:
        box = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
        return pil_to_tensor(img.resize((32, 32), Image.Resampling.BOX, box=box))

    straight = pil_to_tensor(_rotated_crop(img, cx, cy, side, 360.0, 32, aspect))
    assert torch.allclose(straight, plain(w, h), atol=2 / 255)
    assert not torch.allclose(straight, plain(side, side), atol=0.05)  # the stretch is visible
    turned = pil_to_tensor(_rotated_crop(img, cx, cy, side, 90.0, 32, aspect))
    assert torch.allclose(turned, torch.rot90(plain(h, w), 1, dims=(-2, -1)), atol=2 / 255)
    assert rotated_box_reach(0.0, aspect) == pytest.approx((math.sqrt(aspect), 1 / math.sqrt(aspect)))
    assert rotated_box_reach(90.0, aspect) == pytest.approx((1 / math.sqrt(aspect), math.sqrt(aspect)))


@pytest.mark.parametrize("aspect", [1.0, 0.5, 1.7])
def test_rotated_crops_never_reach_outside_the_photograph(aspect: float) -> None:
    """A constant photograph gives constant crops at every angle, scale and aspect: no fill colour leaks in,
    even when the turned rectangle touches the edge."""
    img = Image.new("RGB", (120, 90), (200, 100, 50))
    rng = np.random.default_rng(0)
    for angle in rng.uniform(0, 360, size=12):
        reach_w, reach_h = rotated_box_reach(float(angle), aspect)
        side = (90 - 2 * _ROTATION_PAD) / max(reach_w, reach_h)  # the largest that fits, pressed into the corner
        cx, cy = _ROTATION_PAD + side * reach_w / 2, _ROTATION_PAD + side * reach_h / 2
        x = pil_to_tensor(_rotated_crop(img, cx, cy, side, float(angle), 16, aspect))
        assert torch.allclose(x, torch.tensor([200, 100, 50]).view(3, 1, 1) / 255, atol=1 / 255), angle


def test_photo_train_crops_with_random_rotation() -> None:
    kw = dict(length=24, seed=3, random_scale=(1.5, 12.0))
    rot = PhotoCrops("train", random_rotation=True, **kw)
    xs = torch.stack([rot[i] for i in range(24)])
    assert xs.shape == (24, 3, 32, 32) and float(xs.min()) >= 0.0 and float(xs.max()) <= 1.0
    assert torch.equal(xs, torch.stack([PhotoCrops("train", random_rotation=True, **kw)[i] for i in range(24)]))
    infos = [rot.crop_info(i) for i in range(24)]
    angles = [info["angle"] for info in infos]
    assert min(angles) >= 0 and max(angles) < 360 and len(set(angles)) == 24
    for info in infos:  # the rotated square's bounding box lies inside the photograph
        w, h = _original_photo(info["name"]).size
        ext = info["side"] * rotated_box_reach(info["angle"])[0]
        assert info["left"] >= _ROTATION_PAD and info["top"] >= _ROTATION_PAD
        assert info["left"] + ext <= w + 1e-6 and info["top"] + ext <= h + 1e-6
    for i in range(6):  # each crop is the square its crop_info names, turned by its angle
        info = infos[i]
        ext = info["side"] * rotated_box_reach(info["angle"])[0]
        args = (_original_photo(info["name"]), info["left"] + ext / 2, info["top"] + ext / 2, info["side"])
        again = pil_to_tensor(_rotated_crop(*args, info["angle"], 32)).expand(3, -1, -1)
        assert torch.equal(xs[i], again.flip(-1) if info["flip"] else again)
        assert not torch.allclose(xs[i], pil_to_tensor(_rotated_crop(*args, 0.0, 32)).expand(3, -1, -1), atol=0.02)
    plain = PhotoCrops("train", **kw)
    assert "angle" not in plain.crop_info(0) and "aspect" not in plain.crop_info(0)
    assert not torch.equal(plain[0], xs[0])
    with pytest.raises(ValueError, match="random_rotation must be true or false"):
        PhotoCrops("train", random_rotation="yes")


@pytest.mark.parametrize("rotation", [False, True])
def test_photo_train_crops_with_random_aspect(rotation: bool) -> None:
    """Each crop is the rectangle its crop_info names (turned by its angle), inside the photograph."""
    kw = dict(length=16, seed=4, random_scale=(1.5, 12.0), random_rotation=rotation, random_aspect=(0.6, 1.6))
    ds = PhotoCrops("train", **kw)
    infos = [ds.crop_info(i) for i in range(16)]
    aspects = [info["aspect"] for info in infos]
    assert min(aspects) >= 0.6 and max(aspects) <= 1.6 and min(aspects) < 0.9 and max(aspects) > 1.1
    for i, info in enumerate(infos):
        img = _original_photo(info["name"])
        reach_w, reach_h = rotated_box_reach(info.get("angle", 0.0), info["aspect"])
        ext_w, ext_h = info["side"] * reach_w, info["side"] * reach_h
        assert info["left"] + ext_w <= img.size[0] + 1e-6 and info["top"] + ext_h <= img.size[1] + 1e-6
        centre = (info["left"] + ext_w / 2, info["top"] + ext_h / 2)
        again = pil_to_tensor(_rotated_crop(img, *centre, info["side"], info.get("angle", 360.0), 32, info["aspect"]))
        again = again.expand(3, -1, -1).flip(-1) if info["flip"] else again.expand(3, -1, -1)
        assert torch.allclose(ds[i], again, atol=2 / 255 if not rotation else 0.0)
    with pytest.raises(ValueError, match="random_aspect must be"):
        PhotoCrops("train", random_aspect=(1.5, 0.5))
    for split, bad in (("val", {"random_rotation": True}), ("test", {"random_aspect": (0.8, 1.2)})):
        with pytest.raises(ValueError, match=f"{next(iter(bad))} draw random training crops.*data.train"):
            PhotoCrops(split, **bad)
    with pytest.raises(ValueError, match="random_scale"):
        dataset_from_config({"name": "photos", "random_scale": [2.0, 4.0]}, "test")  # a key meant for data.train
    with pytest.raises(ValueError, match="data has no name.*data=photos"):
        dataset_from_config({"eval": {"random_rotation": True}}, "test")  # +data.eval.KEY without a data group


def test_turned_or_stretched_crops_never_upsample() -> None:
    """At every drawn angle and aspect the crop's factor stays >= 1 (no photograph pixel is stretched over more
    than one crop pixel); photographs too small for the widest crop at factor 1 are left out, not upsampled."""
    for a in (0.5, 0.8, 1.0, 1.6):
        worst = max(max(rotated_box_reach(angle, a)) for angle in np.linspace(0.0, 360.0, 3601))
        assert max_box_reach(True, (a, a)) == pytest.approx(worst, rel=1e-5)
        assert max_box_reach(False, (a, a)) == pytest.approx(max(rotated_box_reach(0.0, a)))
    for kw in (
        {"random_rotation": True},
        {"random_aspect": (0.3, 3.0)},
        {"random_rotation": True, "random_aspect": (0.7, 1.4)},
    ):
        ds = PhotoCrops("train", image_size=120, length=60, random_scale=(1.0, 1.5), min_std=0.0, **kw)
        assert "text" not in ds.sources and "rocket" in ds.sources  # text is 172 px high: too small here
        assert min(ds.crop_info(i)["downscale"] for i in range(len(ds))) >= 1.0
    with pytest.raises(ValueError, match="at least 1419 px.*image_size=1000"):
        PhotoCrops("train", image_size=1000, random_rotation=True, length=1)  # retina: 1411 px


def test_rotated_dataset_crops_of_constant_photographs_are_constant(monkeypatch) -> None:
    """Every train photograph replaced by a constant one of its own size: no rotated crop reaches past an edge."""
    import dirac.data.embedded as embedded

    sizes = {n: _original_photo(n).size for n in PhotoCrops("train", length=1).sources}
    monkeypatch.setattr(embedded, "_original_photo", lambda n: Image.new("RGB", sizes[n], (180, 90, 30)))
    kw = dict(random_scale=(1.5, 12.0), random_rotation=True, random_aspect=(0.5, 2.0), min_std=0.0)
    ds = PhotoCrops("train", length=200, **kw)
    xs = torch.stack([ds[i] for i in range(len(ds))])
    assert torch.allclose(xs, torch.tensor([180, 90, 30]).view(1, 3, 1, 1) / 255, atol=1 / 255)


def test_plain_train_crops_keep_the_stream_the_shipped_models_were_trained_on() -> None:
    """Without rotation a crop is (photo, log-uniform factor capped to fit, uniform corner, flip) drawn in this
    order from item_rng, as before random_rotation existed: the shipped recipes stay reproducible."""
    from dirac.data.transforms import item_rng, log_uniform

    ds = PhotoCrops("train", length=8, seed=5, random_scale=(1.5, 12.0))
    for i in range(8):
        rng = item_rng(5, 0, i)
        name = ds.sources[int(rng.integers(len(ds.sources)))]
        w, h = _original_photo(name).size
        factor = min(log_uniform(rng, 1.5, 12.0), min(w, h) / 32)
        left, top = float(rng.uniform(0.0, w - 32 * factor)), float(rng.uniform(0.0, h - 32 * factor))
        info = ds.crop_info(i)
        if float(ds[i].std()) >= ds.min_std:  # a flat first draw is redrawn from the same stream
            assert (info["name"], info["downscale"], info["left"], info["top"]) == (name, factor, left, top)


def test_a_crop_that_fills_the_photograph_exactly_does_not_crash() -> None:
    """factor = min side / size can round so that the corner's range is a hair below zero."""
    ds = PhotoCrops("train", length=64, image_size=83, random_scale=(3.0, 6.0))
    assert all(ds[i].shape == (3, 83, 83) for i in range(64))


def test_photo_val_split() -> None:
    ds = PhotoCrops("val", crops_per_image=8, image_size=16)
    assert len(ds) == 8 * len(ds.sources) and ds[0].shape == (3, 16, 16)
    with pytest.raises(ValueError, match="smaller than image_size"):
        PhotoCrops("test", image_size=128)


def test_faces_splits() -> None:
    sets = {s: FaceCrops(s) for s in ("train", "val", "test")}
    assert [len(sets[s]) for s in ("train", "val", "test")] == [80, 10, 10]
    idx = [set(d.indices) for d in sets.values()]
    assert not (idx[0] & idx[1]) and not (idx[0] & idx[2]) and not (idx[1] & idx[2])
    assert set().union(*idx) == set(range(100))
    x = sets["test"][0]
    assert x.shape == (1, 32, 32) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert FaceCrops("val", channels=3, image_size=24)[0].shape == (3, 24, 24)
    assert FaceCrops("test", seed=5).indices == sets["test"].indices  # split independent of seed
    a, b = FaceCrops("train", seed=1), FaceCrops("train", seed=1)
    assert all(torch.equal(a[i], b[i]) for i in range(10))


# --------------------------------------------------------------------------------------------- registry


def test_registry(image_tree: Path) -> None:
    assert {"photos", "faces", "folder"} <= set(available_datasets())
    assert len(build_dataset("photos", "test")) == 64
    assert len(build_dataset("faces", "val", image_size=16)) == 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = build_dataset("folder", "all", root=image_tree, image_size=8)
    assert isinstance(ds, ImageFolderDataset) and ds[0].shape == (3, 8, 8)
    with pytest.raises(ValueError, match="photos"):
        build_dataset("celeba", "train")
