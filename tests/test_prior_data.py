"""The prior's training levers (issue 15): procedural dead leaves, augmentations, cosine LR, fine-tuning."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import tiny_training, train_tiny

from dirac.checkpoint import read_weights
from dirac.data import FaceCrops, PhotoCrops
from dirac.data.augment import _SALT, Augmented, augment_image, hue_rotation_matrix
from dirac.data.procedural import DeadLeaves, ProceduralMix
from dirac.data.transforms import item_rng
from dirac.factory import dataset_from_config
from dirac.training import TrainConfig, lr_factor


def spectrum_slope(x: torch.Tensor) -> float:
    """Slope of log radial power against log frequency of a batch of images (natural images: about -2 to -3)."""
    g = x.mean(1)
    g = g - g.mean(dim=(-2, -1), keepdim=True)
    power = (torch.fft.fft2(g).abs() ** 2).mean(0)
    n = g.shape[-1]
    f = torch.fft.fftfreq(n)
    r = torch.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    keep = (r > 2 / n) & (r < 0.4)
    return float(np.polyfit(np.log(r[keep].numpy()), np.log(power[keep].numpy()), 1)[0])


def test_dead_leaves_are_images_with_a_natural_power_spectrum():
    leaves = DeadLeaves(image_size=64, channels=3, length=24, seed=3)
    x = torch.stack([leaves[i] for i in range(24)])
    assert x.shape == (24, 3, 64, 64) and x.min() >= 0 and x.max() <= 1
    assert -3.5 < spectrum_slope(x) < -2.0  # 1/f^2-like, as photographs (white noise would give 0)
    assert spectrum_slope(torch.rand(24, 3, 64, 64)) > -0.5  # the measure can tell the difference
    assert float(x.std(dim=(-2, -1)).mean()) > 0.05  # not flat


def test_dead_leaves_depend_only_on_seed_epoch_and_index():
    a, b = DeadLeaves(32, 1, 8, seed=1), DeadLeaves(32, 1, 8, seed=1)
    assert torch.equal(a[5], b[5])
    b.set_epoch(1)
    assert not torch.equal(a[5], b[5])
    assert a[5].shape == (1, 32, 32)


def test_procedural_mix_draws_the_configured_fraction():
    base = FaceCrops("train", image_size=16)
    mix = ProceduralMix(base, fraction=0.3, image_size=16, channels=1, seed=0)
    drawn = [not torch.equal(mix[i], base[i]) for i in range(len(base))]
    mix.set_epoch(1)
    base.set_epoch(1)
    drawn += [not torch.equal(mix[i], base[i]) for i in range(len(base))]
    n, k = len(drawn), sum(drawn)
    assert abs(k / n - 0.3) < 3.5 * math.sqrt(0.3 * 0.7 / n)  # binomial, 3.5 standard errors
    assert len(mix) == len(base)


def test_dihedral_and_channel_permutation_only_rearrange_values():
    x = torch.rand(3, 8, 8)
    for seed in range(6):
        y = augment_image(x, np.random.default_rng(seed), dihedral=True, color_permute=True)
        assert torch.equal(y.flatten().sort().values, x.flatten().sort().values)
        assert torch.equal(y.sort(dim=0).values.flatten().sort().values, x.sort(dim=0).values.flatten().sort().values)


def test_jitter_and_shift_keep_values_in_range_and_constants_constant():
    rng = np.random.default_rng(0)
    y = augment_image(torch.rand(3, 16, 16), rng, jitter=0.5, shift=3, scale=(0.8, 1.2))
    assert y.min() >= 0 and y.max() <= 1
    flat = augment_image(torch.full((1, 16, 16), 0.4), rng, shift=3, scale=(0.8, 1.2))
    assert torch.allclose(flat, torch.full_like(flat, 0.4), atol=1e-6)


def test_hue_rotation_is_a_rotation_about_grey_whose_third_turn_cycles_the_channels():
    for degrees in (-170.0, -35.0, 0.0, 60.0, 179.0):
        r = hue_rotation_matrix(degrees, torch.float64)
        assert torch.allclose(r @ r.T, torch.eye(3, dtype=torch.float64), atol=1e-12)  # orthogonal
        assert torch.allclose(r @ torch.ones(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64))  # grey fixed
        assert torch.linalg.det(r).item() == pytest.approx(1.0)
    cycle = hue_rotation_matrix(120.0, torch.float64)
    assert torch.allclose(cycle, cycle.round(), atol=1e-12) and torch.allclose(cycle.sum(0), torch.ones(3).double())
    assert not torch.allclose(cycle, torch.eye(3, dtype=torch.float64))  # a 3-cycle of R, G, B


def test_hue_augmentation_keeps_grey_levels_and_leaves_grey_images_alone():
    x = 0.4 + 0.2 * torch.rand(3, 8, 8)  # chroma below 0.17 around a grey in [0.4, 0.6]: no turn leaves [0, 1]
    ys = [augment_image(x, np.random.default_rng(seed), hue=180.0) for seed in range(4)]
    inside = [y for y in ys if 0 < y.min() and y.max() < 1]  # unclamped: grey level and chroma magnitude kept
    assert len(inside) == len(ys) and all(torch.allclose(y.mean(0), x.mean(0), atol=1e-5) for y in inside)
    assert all(torch.allclose((y - y.mean(0)).norm(dim=0), (x - x.mean(0)).norm(dim=0), atol=1e-5) for y in inside)
    assert any(not torch.allclose(y, x, atol=1e-3) for y in ys)
    g = torch.rand(1, 8, 8)
    assert torch.equal(augment_image(g, np.random.default_rng(0), hue=90.0), g)
    with pytest.raises(ValueError, match="augment.hue"):
        Augmented(PhotoCrops("train", image_size=16, length=2), hue=270)


def test_warp_is_a_smooth_small_displacement_that_keeps_constants():
    flat = torch.full((1, 24, 24), 0.3)
    assert torch.allclose(augment_image(flat, np.random.default_rng(0), warp=2.0), flat, atol=1e-6)
    ramp = torch.arange(24.0).repeat(24, 1)[None] / 23  # x(i, j) = j / 23: warping it reads off d_x in pixels
    for seed in range(4):
        d = (augment_image(ramp, np.random.default_rng(seed), warp=1.0) - ramp)[0, 3:-3, 3:-3] * 23
        assert 0.1 < d.abs().max() < 5.0  # moved, by pixels not by the image size
        assert (d[:, 1:] - d[:, :-1]).abs().max() < 0.5 * d.abs().max()  # smooth: neighbours move together
    x = torch.rand(1, 16, 16)
    assert torch.equal(augment_image(x, np.random.default_rng(0), warp=0.0), x)
    with pytest.raises(ValueError, match="warp"):
        Augmented([x], warp=-1.0)


def test_shading_is_a_smooth_positive_gain_shared_by_the_channels():
    black = torch.zeros(1, 24, 24)
    assert torch.equal(augment_image(black, np.random.default_rng(0), shading=0.3), black)
    grey = torch.full((1, 24, 24), 0.4)
    for seed in range(4):
        gain = (augment_image(grey, np.random.default_rng(seed), shading=0.2) / grey)[0].log()  # log-gain = g(p)
        assert 0.01 < gain.abs().max() < 1.2  # lit differently, by a factor near one
        assert (gain[:, 1:] - gain[:, :-1]).abs().max() < 0.5 * gain.abs().max()  # smooth over the image
    colour = torch.rand(3, 16, 16) * 0.5
    out = augment_image(colour, np.random.default_rng(1), shading=0.2)
    assert torch.allclose(out[0] / colour[0], out[1] / colour[1], rtol=1e-4)  # one field for every channel
    with pytest.raises(ValueError, match="augment.shading"):
        Augmented([colour], shading=2.0)


def test_mixup_blends_two_items_and_leaves_the_stream_of_other_augmentations_alone():
    base = [torch.full((1, 4, 4), v) for v in (0.0, 0.2, 0.6, 1.0)]
    mixed = Augmented(base, seed=3, mixup=1.0)
    values = [mixed[i] for i in range(len(base))]
    assert all(torch.allclose(v, v.mean().expand_as(v)) for v in values)  # a blend of constants is constant
    assert sum(not torch.allclose(v, b) for v, b in zip(values, base, strict=True)) >= 2  # j = i leaves one
    assert torch.equal(Augmented(base, seed=3, mixup=0.0)[2], base[2])
    photos = PhotoCrops("train", image_size=16, length=4)  # without mixup no extra number is drawn
    expected = augment_image(photos[1], item_rng(_SALT, 0, 1), jitter=0.3, shift=1)
    assert torch.equal(Augmented(photos, seed=0, jitter=0.3, shift=1)[1], expected)
    with pytest.raises(ValueError, match="mixup"):
        Augmented(base, mixup=1.5)


def test_augmented_dataset_is_reproducible_and_rejects_unknown_keys():
    base = PhotoCrops("train", image_size=16, length=8)
    a = Augmented(base, seed=0, dihedral=True, jitter=0.1)
    assert torch.equal(a[3], Augmented(base, seed=0, dihedral=True, jitter=0.1)[3])
    with pytest.raises(ValueError, match="unknown data.train.augment keys"):
        Augmented(base, rotate=True)


def test_config_builds_the_wrapped_training_set_only_for_train():
    cfg = {"name": "faces", "image_size": 16, "channels": 1, "seed": 0,
           "train": {"augment": {"shift": 1}, "procedural": {"fraction": 0.5}}}  # fmt: skip
    assert isinstance(dataset_from_config(cfg, "train"), ProceduralMix)
    assert isinstance(dataset_from_config(cfg, "test"), FaceCrops)
    with pytest.raises(ValueError, match="fraction"):
        dataset_from_config({**cfg, "train": {"procedural": {"r_min": 1}}}, "train")
    for key in ("warp", "shading", "mixup", "jitter"):  # a non-number is named by its key, not by float()'s message
        with pytest.raises(ValueError, match=f"data.train.augment.{key} must be a finite number, got 'abc'"):
            dataset_from_config({**cfg, "train": {"augment": {key: "abc"}}}, "train")


def test_cosine_schedule_warms_up_then_decays_to_its_floor():
    cfg = TrainConfig(max_steps=200, warmup_steps=20, lr_schedule="cosine", lr_min_ratio=0.1)
    f = [lr_factor(s, cfg) for s in range(cfg.max_steps)]
    assert f[0] == pytest.approx(1 / 20) and max(f) == pytest.approx(1.0)
    after = f[19:]
    assert all(b <= a + 1e-12 for a, b in zip(after, after[1:], strict=False))  # non-increasing
    assert lr_factor(cfg.max_steps - 1, cfg) == pytest.approx(0.1)
    constant = TrainConfig(max_steps=200, warmup_steps=20)
    assert lr_factor(150, constant) == 1.0
    with pytest.raises(ValueError, match="trainer.lr_schedule"):
        TrainConfig(lr_schedule="step")


def test_init_from_starts_a_run_from_anothers_weights_and_keeps_its_schedule(tmp_path):
    first = train_tiny(tmp_path / "a", [*tiny_training(), "trainer.max_steps=2"])
    tuned = train_tiny(
        tmp_path / "b",
        [*tiny_training(), "trainer.max_steps=1", "trainer.lr=1e-12", "trainer.warmup_steps=0", f"init_from={first}"],
    )
    start, now = read_weights(first, ema=True), read_weights(tuned, ema=False)
    assert all(torch.allclose(start[k], now[k], atol=1e-6) for k in start)
    schedule = (tmp_path / "a" / "schedule.json").read_text()
    assert json.loads((tmp_path / "b" / "schedule.json").read_text()) == json.loads(schedule)
    state = json.loads((tuned / "state.json").read_text())
    assert state["init_from"]["schedule_kept"] is True and state["init_from"]["weights"].startswith("sha256:")
    with pytest.raises(SystemExit, match="init_from"):
        train_tiny(tmp_path / "c", [*tiny_training(), "model=ncsnpp_small", f"init_from={first}"])
    # dropout is a regulariser without parameters: fine-tuning with it switched on starts from the same weights
    dropped = train_tiny(
        tmp_path / "d",
        [*tiny_training(), "trainer.max_steps=1", "trainer.lr=1e-12", "model.dropout=0.3", f"init_from={first}"],
    )
    assert json.loads((dropped / "state.json").read_text())["model"]["dropout"] == 0.3
