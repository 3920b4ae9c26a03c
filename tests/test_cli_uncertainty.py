"""``sample.py mode=up`` and ``mode=perception_control`` end to end on a seconds-long tiny checkpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from helpers import sample, tiny_training, train_tiny

from dirac.evaluation.uncertainty_modes import unpaired_fit_sets


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("train_unc"), [*tiny_training(), "trainer.max_steps=2"])


def test_mode_up_writes_plane_calibration_and_maps(tiny, tmp_path):
    out = tmp_path / "up"
    sample(tmp_path, "up", f"checkpoint={tiny}", "mode=up", "num_images=4", "sampler.steps=3", "device=cpu",
           "up.samples=3", "up.patch=3", "up.show=2", "up.ks=[1,2]")  # fmt: skip
    r = json.loads((out / "up.json").read_text())
    assert math.isfinite(r["uncertainty_ratio_posterior_over_mmse"]) and r["expected_ratio_for_K"] == 1.5
    assert "mean of the K samples" in r["ratio_reported"] or "mean-of-K" in r["ratio_reported"]
    assert set(r["coverage"]) == {"1", "2"} and 0 <= r["coverage"]["1"] <= r["coverage"]["2"] <= 1
    assert len(r["trajectory"]["t"]) == 4 and {"tikhonov", "mean of K", "sample t=0"} <= set(r["points"])
    assert all(math.isfinite(p["uncertainty"]) and p["perception"] >= 0 for p in r["points"].values())
    assert len(r["bound"]["perception"]) == len(r["bound"]["uncertainty"])
    assert {"explained_squared_error", "unflagged_pixel_fraction"} <= set(r["hallucination"]["methods"]["tikhonov"])
    for fig in ("up_plane", "calibration", "uncertainty_maps", "hallucination"):
        assert (out / "figures" / f"{fig}.png").is_file() and (out / "figures" / f"{fig}.json").is_file()
    listed = json.loads((out / "manifest.json").read_text())["files"]
    assert "up.json" in listed and "figures/up_plane.png" in listed


def test_mode_perception_control_writes_alpha_rows(tiny, tmp_path):
    out = tmp_path / "pc"
    sample(tmp_path, "pc", f"checkpoint={tiny}", "mode=perception_control", "num_images=4", "sampler.steps=3",
           "device=cpu", "perception_control.fit_images=3", "perception_control.alphas=[0,0.5,1]",
           "perception_control.patch=3")  # fmt: skip
    r = json.loads((out / "perception_control.json").read_text())
    rows = r["rows"]
    assert [(x["method"], x["alpha"]) for x in rows] == [
        (m, a) for m in ("dirac_full", "tikhonov") for a in (0, 0.5, 1)
    ]
    assert all(math.isfinite(x["psnr"]) and math.isfinite(x["swd"]) for x in rows)
    assert r["fit"]["clean"].startswith("3 val") and r["fit"]["restored"].startswith("3 val")  # disjoint halves
    assert (out / "figures" / "perception_control.png").is_file()


def test_unpaired_fit_sets_never_pair_an_image_with_its_measurement():
    clean = torch.arange(10.0).view(10, 1, 1, 1)
    load = {"val": (clean, clean + 100), "train": (clean + 50, clean + 150)}.__getitem__
    pc = {"fit_split": "val", "clean_split": "val", "fit_images": 12}
    y, unpaired = unpaired_fit_sets(load, pc)
    assert y.flatten().tolist() == [100, 101, 102, 103, 104] and unpaired.flatten().tolist() == [5, 6, 7, 8, 9]
    y, unpaired = unpaired_fit_sets(load, {**pc, "clean_split": "train", "fit_images": 3})
    assert y.flatten().tolist() == [100, 101, 102] and unpaired.flatten().tolist() == [50, 51, 52]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"mode": "up", "up": {"samples": 1}}, ["up.samples", ">= 2"]),
        ({"mode": "perception_control", "perception_control": {"alphas": [0, 2]}}, ["perception_control.alphas"]),
        (
            {"mode": "perception_control", "perception_control": {"clean_split": "test"}},
            ["clean_split", "val or train"],
        ),
        ({"mode": "up", "measurements": "/some/folder"}, ["mode=up", "drop measurements="]),
    ],
)
def test_bad_uncertainty_settings_fail_in_one_line(changes, words):
    """Checked before any heavy import (the CLI turns the ValueError into one line, exit 1)."""
    from helpers import assert_one_line

    from dirac.evaluation.uncertainty_settings import check_uncertainty_settings

    with pytest.raises(ValueError) as e:
        check_uncertainty_settings({"split": "test", "measurements": None, **changes})
    assert_one_line(str(e.value), *words)
