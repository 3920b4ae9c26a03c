"""Smoke tests of the bench/ scripts: each ``main`` runs with ``--quick`` and writes finite positive ratios."""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = ("sampler_overhead", "train_step_overhead", "degradation_cost", "throughput")


@pytest.fixture
def bench_module(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    threads = torch.get_num_threads()

    def load(name: str):
        return importlib.import_module(name)

    yield load
    torch.set_num_threads(threads)
    for name in (*SCRIPTS, "run_all", "_benchutil", "pipeline_scale", "data_curve"):
        sys.modules.pop(name, None)


def _flat(d: dict) -> dict[str, float]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in _flat(v).items()})
        else:
            out[k] = v
    return out


def _check_ratios(ratios: dict) -> None:
    flat = _flat(ratios)
    assert flat, "no ratios written"
    for key, value in flat.items():
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (key, value)


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_quick(bench_module, tmp_path, name):
    result = bench_module(name).main(["--quick", "--out", str(tmp_path)])
    path = tmp_path / f"{name}.json"
    assert path.is_file()
    data = json.loads(path.read_text())
    assert data["name"] == name and data["config"]["quick"] is True
    assert data["config"]["model"] == "tiny" and data["config"]["image_size"] == 16
    _check_ratios(data["ratios"])
    assert data["ratios"] == result["ratios"]
    assert data["table"].strip()


def test_expected_ratio_keys(bench_module, tmp_path):
    data = bench_module("sampler_overhead").main(["--quick", "--out", str(tmp_path), "--steps", "1"])
    for kind in ("blur", "inpaint"):
        for key in ("W_over_NFE_F", "Wg_over_NFE_F", "Wg_over_NFE_FB", "Wg_over_ideal", "O_over_NFE_F"):
            assert f"{kind}.{key}" in data["ratios"]
        assert data["results"][kind]["nfe"] == 2  # 1 step + the final output forward
        assert all(data["results"][kind]["outputs_finite"].values())


def test_run_all_quick(bench_module, tmp_path):
    data = bench_module("run_all").main(
        ["--quick", "--out", str(tmp_path), "--only", "sampler_overhead", "degradation_cost"]
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["ratios"]) == {"sampler_overhead", "degradation_cost"}
    _check_ratios(summary["ratios"])
    assert (tmp_path / "sampler_overhead.json").is_file() and (tmp_path / "degradation_cost.json").is_file()
    assert "sampler" in data["table"] and "degradation" in data["table"]


def test_table_alignment(bench_module):
    bu = bench_module("_benchutil")
    text = bu.table(["name", "value"], [["a", "1.5"], ["longer", "10"]])
    lines = text.splitlines()
    assert lines[2] == "a         1.5" and lines[3] == "longer     10"


def test_pipeline_scale_quick(bench_module, tmp_path):
    """Each size runs in its own process; tiled and untiled runs of one size agree to < 0.1 dB (fixed seed: the
    shipped DO stops at t = 0.98, one stochastic step)."""
    data = bench_module("pipeline_scale").main(["--quick", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "pipeline_scale.json").read_text())["ratios"] == data["ratios"]
    assert all("error" not in r for r in data["results"]) and len(data["results"]) == 3
    _check_ratios(data["ratios"])
    assert data["ratios"]["96_64.psnr_gap_db"] < 0.1 and data["ratios"]["96_48.psnr_gap_db"] < 0.1
    assert all(r["psnr"] > r["psnr_measurement"] for r in data["results"])


def test_prior_ablation_reports_paired_gains(bench_module, tmp_path):
    ablation = bench_module("prior_ablation")
    sys.modules.pop("prior_ablation", None)

    def compare_json(name: str, do: list[float], tik: list[float]) -> str:
        rows = [{"method": m, "psnr": sum(v) / len(v), "psnr_ci": [0, 99], "psnr_per_image": v,
                 "params": {"lam": 0.1}, "perceptual": 1.0, "perceptual_metric": "swd"}
                for m, v in (("dirac_do", do), ("tikhonov", tik))]  # fmt: skip
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"rows": rows}))
        return f"{name}={path}"

    out = tmp_path / "ablation.json"
    before = compare_json("before", [20.0, 22.0, 24.0, 26.0], [21.0, 21.0, 23.0, 23.0])
    after = compare_json("after", [21.0, 23.5, 24.5, 27.0], [21.0, 21.0, 23.0, 23.0])
    lever = "t = 1 lever=" + compare_json("lever", [21.5, 23.5, 25.0, 27.0], [21.0, 21.0, 23.0, 23.0]).partition("=")[2]
    variants = ["--variant", before, "--variant", after, "--variant", lever]  # a label may hold "=" itself
    ablation.main(["--task", "blur", *variants, "--ref", "t = 1 lever=after", "--out", str(out)])
    entries = json.loads(out.read_text())["blur"]
    gain = entries[1]["gain_over_reference_db"]
    assert gain["mean"] == pytest.approx(1.0) and gain["ci"][0] <= 1.0 <= gain["ci"][1]
    assert entries[0]["gain_over_reference_db"]["mean"] == 0.0
    assert entries[1]["margin_over_tikhonov_db"]["mean"] == pytest.approx(2.0)
    assert entries[2]["reference"] == "after" and entries[2]["gain_over_reference_db"]["mean"] == pytest.approx(0.25)
    assert entries[2]["compare_json"] == f"{tmp_path.name}/lever.json"
    assert str(tmp_path) not in out.read_text()  # no local paths recorded
    md = out.with_suffix(".md").read_text()
    assert "| after |" in md and "| after | " in md.split("| t = 1 lever |")[1]
    with pytest.raises(SystemExit, match="--ref"):
        ablation.main(["--task", "blur", *variants, "--ref", "t = 1 lever=nope", "--out", str(out)])
    rows = json.loads((tmp_path / "after.json").read_text())["rows"]  # another row of a file stands as a variant
    rows.append({**rows[0], "method": "dirac_do+flip", "psnr_per_image": [21.0, 24.0, 25.0, 27.0]})
    (tmp_path / "after.json").write_text(json.dumps({"rows": rows}))
    ens = "after + flip=" + after.partition("=")[2] + "#dirac_do+flip"
    ablation.main(["--task", "ens", "--variant", after, "--variant", ens, "--out", str(out)])
    entries = json.loads(out.read_text())["ens"]
    assert entries[1]["row"] == "dirac_do+flip" and entries[1]["gain_over_reference_db"]["mean"] == pytest.approx(0.25)
    assert entries[1]["margin_over_tikhonov_db"]["mean"] == pytest.approx(2.25) and entries[0]["row"] == "dirac_do"
    with pytest.raises(SystemExit, match="no nope row"):
        ablation.main(["--task", "ens", "--variant", after + "#nope", "--out", str(out)])
    # --append: a label already in the table is only a reference (its file must reproduce it); new ones are added
    newer = compare_json("newer", [21.5, 24.0, 25.0, 27.5], [21.0, 21.0, 23.0, 23.0])
    ablation.main(["--task", "blur", "--append", "--variant", after, "--variant", newer, "--out", str(out)])
    entries = json.loads(out.read_text())["blur"]
    assert [e["variant"] for e in entries] == ["before", "after", "t = 1 lever", "newer"]
    assert entries[3]["reference"] == "after" and entries[3]["gain_over_reference_db"]["mean"] == pytest.approx(0.5)
    assert entries[1]["gain_over_reference_db"]["mean"] == pytest.approx(1.0)  # the kept row is untouched
    with pytest.raises(SystemExit, match="not the same model"):
        ablation.main(
            ["--task", "blur", "--append", "--variant", "after=" + newer.partition("=")[2], "--out", str(out)]
        )
    before_rename = json.loads(out.read_text())["blur"]  # relabel rows without their compare.json files
    for f in tmp_path.glob("*.json"):
        if f != out:
            f.unlink()
    ablation.main(["--task", "blur", "--rename", "after=shipped = now", "--out", str(out)])
    renamed = json.loads(out.read_text())["blur"]
    assert [e["variant"] for e in renamed] == ["before", "shipped = now", "t = 1 lever", "newer"]
    assert renamed[2]["reference"] == "shipped = now" and renamed[1]["do_psnr"] == before_rename[1]["do_psnr"]
    assert "| shipped = now |" in out.with_suffix(".md").read_text() and "ens" in json.loads(out.read_text())
    for bad in (
        ["--rename", "nope=x"],
        ["--rename", "before=x", "--variant", after],
        ["--rename", "before=newer"],
        ["--rename", "before=y", "--rename", "newer=y"],
        ["--rename", "before=x", "--rename", "before=y"],
        ["--rename", "before=x", "--append"],
    ):
        with pytest.raises(SystemExit, match="--rename"):
            ablation.main(["--task", "blur", *bad, "--out", str(out)])


def test_delta_t_ablation_trains_and_scores_each_look_ahead(bench_module, tmp_path):
    ablation = bench_module("delta_t_ablation")
    sys.modules.pop("delta_t_ablation", None)
    out, fig = tmp_path / "dt.json", tmp_path / "dt.png"
    ablation.main(["--deltas", "0", "1", "--steps", "1", "--runs", str(tmp_path / "runs"), "--out", str(out),
                   "--figure", str(fig)])  # fmt: skip
    rows = json.loads(out.read_text())["rows"]
    assert [r["delta_t"] for r in rows] == [0.0, 1.0] and fig.is_file()
    for r in rows:
        for key in ("measurement", "one_shot", "full_run"):
            lo, hi = r[key]["ci"]
            assert math.isfinite(r[key]["psnr"]) and lo <= r[key]["psnr"] <= hi
    assert (tmp_path / "runs" / "delta_1" / "checkpoints" / "last").exists()


def test_throughput_times_the_tikhonov_input_against_the_plain_one(bench_module, tmp_path):
    """``--input tikhonov`` writes its own file with F/F_y, the cost per NFE relative to the same weights on y_t."""
    result = bench_module("throughput").main(["--quick", "--input", "tikhonov", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "throughput_tikhonov.json").read_text())
    assert data["config"]["input"] == "tikhonov" and not (tmp_path / "throughput.json").exists()
    _check_ratios(data["ratios"])
    assert any(k.endswith("input_cost") for k in result["ratios"])  # a ratio of times: positive, not asserted > 1


def test_data_curve_fits_the_prior_on_subsets_and_reports_the_slope_per_doubling(bench_module, tmp_path):
    """``--quick``: sizes 4 and 8, one subset each; with two sizes one doubling apart the least-squares slope is
    their difference. A size beyond the training faces is refused in one line."""
    result = bench_module("data_curve").main(["--quick", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "data_curve.json").read_text())
    psnrs = {n: data["results"][n]["psnr"] for n in ("4", "8")}
    assert all(math.isfinite(v) and 10 < v < 50 for v in psnrs.values())
    assert result["ratios"]["db_per_doubling"] == pytest.approx(psnrs["8"] - psnrs["4"], abs=1e-9)
    with pytest.raises(SystemExit, match="--sizes must lie in"):
        bench_module("data_curve").main(["--sizes", "5000", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="is a blur model; use an inpainting one"):
        bench_module("data_curve").main(["--quick", "--checkpoint", "blur_default", "--out", str(tmp_path)])
