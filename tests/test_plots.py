"""Figures: each function writes a readable PNG plus a JSON with the data behind it, and rejects bad input."""

import json
import math

import pytest
import torch
from PIL import Image

from dirac.analysis import plots as P


def _check(png, min_w=300, min_h=200):
    assert png.suffix == ".png" and png.exists() and png.stat().st_size > 1000
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        w, h = im.size
    assert min_w <= w <= 6000 and min_h <= h <= 6000, (w, h)
    js = png.with_suffix(".json")
    assert js.exists()
    return json.loads(js.read_text()), (w, h)


def _trajectory(n=21):
    t = [1 - i / (n - 1) for i in range(n)]
    psnr = [28.0 - 5 * (1 - s) ** 2 + 0.2 * math.sin(7 * s) for s in t]
    perc = [30 * s**1.5 + 3 for s in t]
    return t, psnr, perc


def test_perception_distortion_png_and_json(tmp_path):
    t, psnr, perc = _trajectory()
    do = max(range(len(t)), key=psnr.__getitem__)
    po = min(range(len(t)), key=perc.__getitem__)
    extra = {"measurement": (50.0, 24.0), "Tikhonov": (40.0, 26.5)}
    png = P.plot_perception_distortion(psnr, perc, t, tmp_path / "pd.png", do, po, extra_points=extra)
    data, (w, h) = _check(png)
    assert w > h  # landscape
    assert data["psnr"] == psnr and data["perceptual"] == perc and data["t"] == t
    assert data["do_index"] == do and data["po_index"] == po
    assert data["do"] == {"index": do, "t": t[do], "psnr": psnr[do], "perceptual": perc[do]}
    assert data["po"]["t"] == t[po]
    assert data["extra_points"]["Tikhonov"] == {"perceptual": 40.0, "psnr": 26.5}
    # a few labelled points including both ends (unless taken by DO/PO), not all of them
    shown = set(data["labelled_indices"]) | {do, po}
    assert 2 <= len(data["labelled_indices"]) <= 7 and {0, len(t) - 1} <= shown


def test_perception_distortion_tensors_none_indices_and_negative_index(tmp_path):
    t, psnr, perc = _trajectory(5)
    png = P.plot_perception_distortion(
        torch.tensor(psnr), torch.tensor(perc), torch.tensor(t), tmp_path / "sub" / "pd", None, -1
    )
    assert png == tmp_path / "sub" / "pd.png"
    data, _ = _check(png)
    assert data["do"] is None and data["po_index"] == 4
    assert data["psnr"] == pytest.approx(psnr)


def test_perception_distortion_bad_inputs(tmp_path):
    t, psnr, perc = _trajectory(6)
    with pytest.raises(ValueError, match=r"length mismatch.*len\(psnr\)=6.*len\(perceptual\)=5"):
        P.plot_perception_distortion(psnr, perc[:-1], t, tmp_path / "x.png", 0, 1)
    with pytest.raises(ValueError, match="length mismatch"):
        P.plot_perception_distortion(psnr, perc, t[:3], tmp_path / "x.png", 0, 1)
    with pytest.raises(ValueError, match="do_index=6 out of range"):
        P.plot_perception_distortion(psnr, perc, t, tmp_path / "x.png", 6, 1)
    with pytest.raises(ValueError, match="psnr is empty"):
        P.plot_perception_distortion([], [], [], tmp_path / "x.png", None, None)
    with pytest.raises(ValueError, match="1-D"):
        P.plot_perception_distortion(torch.zeros(2, 3), perc, t, tmp_path / "x.png", None, None)
    with pytest.raises(ValueError, match=r"extra_points\['m'\]"):
        P.plot_perception_distortion(psnr, perc, t, tmp_path / "x.png", 0, 1, extra_points={"m": (1.0, 2.0, 3.0)})
    assert not (tmp_path / "x.png").exists()


def test_metrics_vs_t(tmp_path):
    t, psnr, perc = _trajectory()
    nan_metric = [float("nan")] + perc[1:]
    png = P.plot_metrics_vs_t(
        t,
        {"PSNR (dB)": psnr, "SWD": perc, "LPIPS": nan_metric},
        tmp_path / "m.png",
        marks={"DO": 1.0, "PO": 0.25},
    )
    data, (w, h) = _check(png)
    assert h > w  # three stacked panels
    assert data["t"] == t and data["metrics"]["PSNR (dB)"] == psnr and data["marks"] == {"DO": 1.0, "PO": 0.25}
    assert data["higher_is_better"] == {"PSNR (dB)": True, "SWD": False, "LPIPS": False}
    assert data["best"]["PSNR (dB)"]["index"] == max(range(len(t)), key=psnr.__getitem__)
    assert data["best"]["SWD"]["value"] == min(perc)
    assert data["metrics"]["LPIPS"][0] is None  # NaN stored as null (strict JSON)
    # explicit override
    png = P.plot_metrics_vs_t(t, {"score": perc}, tmp_path / "m2.png", higher_is_better={"score": True})
    data, _ = _check(png)
    assert data["best"]["score"]["value"] == max(perc)
    with pytest.raises(ValueError, match=r"len\(t\)=21 but len\(metrics\['SWD'\]\)=20"):
        P.plot_metrics_vs_t(t, {"SWD": perc[1:]}, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="metrics is empty"):
        P.plot_metrics_vs_t(t, {}, tmp_path / "bad.png")


def test_data_consistency(tmp_path):
    t, _, _ = _trajectory()
    dc = [0.05 * s + 0.011 for s in t]
    std = [0.002] * len(t)
    png = P.plot_data_consistency(t, dc, tmp_path / "dc.png", sigma_y=0.01, dc_std=std)
    data, _ = _check(png)
    assert data["dc_mean"] == dc and data["dc_std"] == std and data["sigma_y"] == 0.01 and data["t"] == t
    png = P.plot_data_consistency(torch.tensor(t), torch.tensor(dc), tmp_path / "dc_log.png", 0.01, logy=True)
    data, _ = _check(png)
    assert data["dc_std"] is None and data["logy"] is True
    with pytest.raises(ValueError, match=r"len\(dc_std\)=3"):
        P.plot_data_consistency(t, dc, tmp_path / "bad.png", 0.01, dc_std=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="sigma_y"):
        P.plot_data_consistency(t, dc, tmp_path / "bad.png", float("nan"))


def test_schedule(tmp_path):
    knots = [i / 10 for i in range(11)]
    sev = [0.3 + 3 * math.sqrt(k) for k in knots]
    png = P.plot_schedule(knots[::-1], sev[::-1], tmp_path / "s.png", linear=(0.3, 3.3))
    data, _ = _check(png)
    assert data["t_knots"] == knots[::-1] and data["severities"] == sev[::-1] and data["linear"] == [0.3, 3.3]
    assert data["severity_name"] == "blur std (px)"
    with pytest.raises(ValueError, match="length mismatch"):
        P.plot_schedule(knots, sev[:-2], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="s_min, s_max"):
        P.plot_schedule(knots, sev, tmp_path / "bad.png", linear=(1.0,))


def test_image_grid_grey_rgb_std(tmp_path):
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(10, 3, 32, 32, generator=g)
    grey = rgb.mean(1, keepdim=True)
    std = torch.rand(10, 3, 32, 32, generator=g) * 0.1
    std[1] = 0  # an all-zero uncertainty map must not break the per-image normalisation
    cols = {"clean": rgb, "measurement": grey, "missing": None, "recon": rgb.clamp(0.2, 0.8), "std (K=4)": std}
    png = P.plot_image_grid(cols, tmp_path / "grid.png")
    data, (w, h) = _check(png, min_w=400, min_h=400)
    assert data["columns"] == ["clean", "measurement", "recon", "std (K=4)"] and data["skipped"] == ["missing"]
    assert data["rows"] == 8  # max_rows
    assert data["stats"]["measurement"]["kind"] == "grey" and data["stats"]["clean"]["kind"] == "rgb"
    assert data["stats"]["std (K=4)"]["kind"] == "std" and data["stats"]["std (K=4)"]["shape"] == [10, 3, 32, 32]
    assert data["stats"]["std (K=4)"]["images"][1]["max"] == 0.0
    # each cell is readable: >= ~1 inch at 150 dpi, i.e. 32-px images upscaled at least 4x
    assert w / 4 >= 140 and h / 8 >= 140

    png = P.plot_image_grid({"a": grey[:3], "b": rgb[:2]}, tmp_path / "small.png", max_rows=8, scale=0.8)
    data, _ = _check(png, min_w=150, min_h=150)
    assert data["rows"] == 2 and data["cell_inches"] == 0.8


def test_image_grid_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="no columns"):
        P.plot_image_grid({"a": None}, tmp_path / "g.png")
    with pytest.raises(ValueError, match=r"'a' must be \(B, C, H, W\)"):
        P.plot_image_grid({"a": torch.rand(3, 8, 8)}, tmp_path / "g.png")
    with pytest.raises(ValueError, match="grey .1. or RGB .3."):
        P.plot_image_grid({"a": torch.rand(2, 2, 8, 8)}, tmp_path / "g.png")


def test_curves(tmp_path):
    bs = [1, 2, 4, 8, 16]
    curves = {"forward": [30.0, 58.0, 110.0, 200.0, 350.0], "guided": [12.0, 22.0, 45.0, 80.0, 140.0]}
    png = P.plot_curves(bs, curves, tmp_path / "c.png", "batch size", "images/s", logx=True, logy=True, title="T")
    data, _ = _check(png)
    assert data["x"] == bs and data["curves"] == curves and data["logx"] and data["xlabel"] == "batch size"
    with pytest.raises(ValueError, match=r"len\(x\)=5 but len\(curves\['guided'\]\)=4"):
        P.plot_curves(bs, {"guided": [1.0, 2.0, 3.0, 4.0]}, tmp_path / "bad.png", "x", "y")
    with pytest.raises(ValueError, match="numbers"):
        P.plot_curves(bs, {"a": ["x"] * 5}, tmp_path / "bad.png", "x", "y")
