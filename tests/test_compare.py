"""mode=tune / mode=compare: tuning only sees val, compare.json's schema and intervals, resources checked."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import smooth_images
from helpers import assert_one_line, sample, tiny_training, train_tiny

from dirac.evaluation.compare_mode import only_split, tune_peers
from dirac.evaluation.intervals import bootstrap_mean, bootstrap_set
from dirac.evaluation.methods import Resources
from dirac.evaluation.peers import check_prior, check_regressor, load_resources, select_methods
from dirac.evaluation.tuning import params_label

FAST = ["trainer.max_steps=2"]
ROW_KEYS = {"method", "psnr", "psnr_ci", "ssim", "ssim_ci", "perceptual", "perceptual_ci", "perceptual_metric", "nfe",
            "wall_s", "images_per_s", "data_consistency", "params", "oracle", "description",
            "psnr_per_image"}  # fmt: skip


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    """A tiny Dirac blur model, a tiny prior (identity process) and a tiny regressor with another σ_y."""
    root = tmp_path_factory.mktemp("peers")
    runs = {"dirac": tiny_training(), "prior": tiny_training(experiment="prior_photos"),
            "regressor": tiny_training(experiment="regressor_blur", degradation__noise__sigma_max=0.1)}  # fmt: skip
    for name, args in runs.items():
        overrides = [a for a in args if not a.startswith("schedule.")] if name != "dirac" else args
        train_tiny(root / name, [*overrides, *FAST])
    return {k: root / k / "checkpoints" / "last" for k in runs}


def _process(ckpts):
    from dirac.factory import load_checkpoint

    return load_checkpoint(ckpts["dirac"])[1]


def test_bootstrap_contains_mean_narrows_and_is_deterministic():
    rng = np.random.default_rng(0)
    small, large = rng.normal(20, 3, 10), rng.normal(20, 3, 1000)
    lo, hi = bootstrap_mean(small, 500, seed=1)
    assert lo <= small.mean() <= hi and lo < hi
    lo2, hi2 = bootstrap_mean(large, 500, seed=1)
    assert hi2 - lo2 < 0.5 * (hi - lo)
    assert bootstrap_mean(small, 500, seed=1) == (lo, hi) and bootstrap_mean(small, 500, seed=2) != (lo, hi)
    value = float(np.median(small))
    slo, shi = bootstrap_set(lambda idx: float(np.median(small[idx])), len(small), 100, seed=3)
    assert slo <= value <= shi and bootstrap_set(lambda i: float(np.median(small[i])), 10, 100, seed=3) == (slo, shi)


def test_tune_reads_only_val_and_keeps_the_argmax(ckpts):
    process = _process(ckpts)
    clean = smooth_images(4, 3, 16)
    asked = []

    def load(split):
        asked.append(split)
        if split != "val":
            raise AssertionError(f"tuning read the {split} split")
        return clean, process.measure(clean, __import__("torch").Generator().manual_seed(0))

    entries, n = tune_peers(select_methods(["tikhonov"]), Resources(process), load, "val", 4, 0)
    assert asked == ["val"] and n == 4
    scores = entries["tikhonov"]["scores"]
    assert len(scores) > 1 and params_label(entries["tikhonov"]["params"]) == max(scores, key=scores.get)
    with pytest.raises(RuntimeError, match="only 'val'"):
        only_split(load, "val")("test")


def test_unknown_method_is_one_line():
    with pytest.raises(ValueError) as e:
        select_methods(["tikhonov", "nonsense"])
    assert_one_line(str(e.value), "nonsense", "tikhonov", "admm_tv")


def test_resources_load_and_mismatches_are_refused(ckpts):
    from dirac.factory import load_checkpoint

    process = _process(ckpts)
    res, notes = load_resources(
        {"prior": str(ckpts["prior"]), "regressor": str(ckpts["dirac"])}, "x", process, 3, "cpu"
    )
    assert res.prior is not None and res.regressor is not None and not notes
    res, notes = load_resources({"prior": None, "regressor": "auto"}, "x", process, 3, "cpu")
    assert res.prior is None and res.regressor is None and len(notes) == 2
    _, _, blur_state = load_checkpoint(ckpts["dirac"])
    with pytest.raises(ValueError) as e:  # a "prior" trained on blur
        check_prior("blurprior", blur_state, 3)
    assert_one_line(str(e.value), "blurprior", "identity")
    _, reg_process, reg_state = load_checkpoint(ckpts["regressor"])
    with pytest.raises(ValueError) as e:  # a regressor trained with another σ_y
        check_regressor("reg", reg_process, process, reg_state, 3)
    assert_one_line(str(e.value), "reg", "sigma_y")
    with pytest.raises(ValueError) as e:
        load_resources({"prior": str(ckpts["prior"]), "regressor": None}, "x", process, 1, "cpu")
    assert_one_line(str(e.value), "channels")


def test_compare_end_to_end_and_refusals(ckpts, tmp_path):
    common = [f"checkpoint={ckpts['dirac']}", "num_images=4", "sampler.steps=4", "batch_size=4", "device=cpu"]
    sample(tmp_path, "s", *common, "mode=sweep", "sweep.baselines=[]", "sweep.po_samples=1")
    out = tmp_path / "c"
    summary = sample(
        tmp_path,
        "c",
        *common,
        "mode=compare",
        "compare.methods=[tikhonov]",
        "compare.oracle=[tikhonov]",
        "compare.bootstrap=20",
        "compare.bootstrap_set=5",
        "compare.grid_images=3",
        "+compare.ensemble.dirac_do=dihedral",
        "+compare.ensemble.tikhonov=flip",
        f"choice={tmp_path / 's' / 'early_stopping.json'}",
    )
    doc = json.loads((out / "compare.json").read_text())
    assert doc == json.loads(json.dumps(summary))
    assert doc["split"] == "test" and doc["tuned_on"] == "val" and doc["num_images"] == 4
    rows = {r["method"]: r for r in doc["rows"]}
    assert {"dirac_do", "dirac_po", "tikhonov", "tikhonov_oracle", "measurement"} <= set(rows)
    for r in rows.values():
        assert ROW_KEYS <= set(r) and r["perceptual_metric"] == "swd"
        for key in ("psnr", "ssim", "perceptual"):
            lo, hi = r[f"{key}_ci"]
            assert math.isfinite(r[key]) and lo <= r[key] <= hi
        assert len(r["psnr_per_image"]) == 4 and abs(sum(r["psnr_per_image"]) / 4 - r["psnr"]) < 1e-3
    assert rows["tikhonov_oracle"]["oracle"] and not rows["tikhonov"]["oracle"] and rows["dirac_do"]["nfe"] > 0
    assert doc["skipped"] == {} and doc["notes"]  # no default prior/regressor for a checkpoint path: noted
    for fig in ("compare_images", "perception_distortion", "psnr_vs_nfe"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000
    assert "tikhonov" in (out / "compare.md").read_text() and "Perception knob" in (out / "compare.md").read_text()
    ot = doc["ot_curves"]
    assert {r["method"] for r in ot} == {"dirac_do", "dirac_po", "tikhonov", "dirac_do+dihedral", "tikhonov+flip"}
    ens = rows["dirac_do+dihedral"]  # self-ensemble rows: 8 calls of the DO restorer; Tikhonov is equivariant
    assert ens["nfe"] == 8 * rows["dirac_do"]["nfe"] and ens["params"]["ensemble"] == "dihedral"
    assert abs(rows["tikhonov+flip"]["psnr"] - rows["tikhonov"]["psnr"]) < 1e-3
    for r in ot:  # α = 0 is the restorer's own output: its row
        assert r["alpha"] != 0 or abs(r["psnr"] - rows[r["method"]]["psnr"]) < 1e-4
    assert "2 val images" in doc["ot_fit"]["restored"] and "2 val images" in doc["ot_fit"]["clean"]
    listed = json.loads((out / "manifest.json").read_text())["files"]
    assert {"compare.json", "compare.md", "tuned.yaml", "figures/psnr_vs_nfe.png"} <= set(listed)
    tuned = yaml.safe_load((out / "tuned.yaml").read_text())
    assert tuned["split"] == "val" and "lam" in tuned["methods"]["tikhonov"]["params"]
    tuned["process"]["noise"]["sigma_max"] = 0.2  # tuned for another σ_y
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(tuned))
    one = [*common, "mode=compare", "compare.oracle=[tikhonov]"]
    with pytest.raises(ValueError) as e:
        sample(tmp_path, "bad", *one, "compare.methods=[tikhonov]", f"compare.tuned={other}")
    assert_one_line(str(e.value), "tuned for", "mode=tune")
    with pytest.raises(ValueError) as e:
        sample(tmp_path, "bad2", *one, "compare.methods=[tikhonov,nonsense]")
    assert_one_line(str(e.value), "compare.methods", "nonsense", "known methods")
    assert not (tmp_path / "bad2").exists()  # refused before any output was written
    with pytest.raises(ValueError) as e:
        sample(tmp_path, "bad3", *one, "compare.methods=[tikhonov]", "+compare.ensemble.dirac_do=rot45")
    assert_one_line(str(e.value), "compare.ensemble", "dihedral")
    with pytest.raises(ValueError) as e:  # a row the comparison lacks: refused before any row ran or was written
        sample(tmp_path, "bad4", *one, "compare.methods=[tikhonov]", "+compare.ensemble.dirac_xx=flip")
    assert_one_line(str(e.value), "compare.ensemble names row 'dirac_xx'", "dirac_full", "tikhonov")
    assert not (tmp_path / "bad4").exists()
