"""Figures: each function writes a readable PNG plus a JSON with the data behind it, and rejects bad input."""

import json
import math

import numpy as np
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


def _grid_columns(n=10, side=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    rgb = torch.rand(n, 3, side, side, generator=g)
    return {
        "ground truth": rgb,
        "measurement": rgb.mean(1, keepdim=True),
        "missing": None,
        "DO (t=0.98)": rgb.clamp(0.2, 0.8),
        "std": torch.rand(n, 3, side, side, generator=g) * 0.1,
        "std (grey)": torch.rand(n, 1, side, side, generator=g) * 0.3,
    }


def _std_cells(data):
    return [cell for name, col in data["stats"].items() if col["kind"] == "std" for cell in col["images"]]


def test_image_grid_grey_rgb_std_share_one_scale(tmp_path):
    cols = _grid_columns()
    cols["std"][1] = 0  # an all-zero uncertainty map must not break the scale
    png = P.plot_image_grid(cols, tmp_path / "grid.png", max_rows=4, title="samples", caption="split: test")
    data, (w, h) = _check(png, min_w=400, min_h=400)
    assert data["columns"] == ["ground truth", "measurement", "DO (t=0.98)", "std", "std (grey)"]
    assert data["skipped"] == ["missing"]
    assert data["rows"] == 4 and data["rows_shown"] == [0, 1, 2, 3] and data["n_images"] == 10
    assert data["caption"].startswith("split: test") and "showing 4 of 10 images" in data["caption"]
    kinds = {k: v["kind"] for k, v in data["stats"].items()}
    assert kinds == {
        "ground truth": "rgb",
        "measurement": "grey",
        "DO (t=0.98)": "rgb",
        "std": "std",
        "std (grey)": "std",
    }
    assert data["stats"]["std"]["shape"] == [10, 3, 16, 16]
    # one scale for every std cell of every std column: 0 .. 99th percentile of all std values shown
    scale = data["std_scale"]
    shown = torch.cat([cols["std"][:4].mean(1).reshape(-1), cols["std (grey)"][:4].reshape(-1)])
    assert scale["shared"] and scale["vmin"] == 0.0
    assert scale["vmax"] == pytest.approx(float(np.percentile(shown.numpy(), 99)), rel=1e-6)
    assert scale["max"] == pytest.approx(float(shown.max()))
    assert {(c["vmin"], c["vmax"]) for c in _std_cells(data)} == {(0.0, scale["vmax"])}
    assert f"{scale['vmax']:.3g}" in data["caption"]  # the scale is stated on the figure
    # each cell is readable: >= ~1 inch at 150 dpi
    assert w / 5 >= 140 and h / 4 >= 140


def test_image_grid_scale_ignores_rows_not_shown(tmp_path):
    cols = _grid_columns()
    a = P.plot_image_grid(cols, tmp_path / "a.png", max_rows=3)
    cols["std"][5:] *= 100  # rows that are not shown
    b = P.plot_image_grid(cols, tmp_path / "b.png", max_rows=3)
    assert _check(a)[0]["std_scale"] == _check(b)[0]["std_scale"]


def test_image_grid_own_scale_per_map_and_all_rows(tmp_path):
    cols = _grid_columns(n=5)
    png = P.plot_image_grid(cols, tmp_path / "g.png", std_columns_share_scale=False)
    data, _ = _check(png)
    assert data["rows_shown"] == [0, 1, 2, 3, 4] and "showing" not in (data["caption"] or "")
    assert data["std_scale"]["shared"] is False
    cells = _std_cells(data)
    assert len(cells) == 10 and all(c["vmax"] == pytest.approx(c["max"]) for c in cells)
    assert len({round(c["vmax"], 6) for c in cells}) > 1
    png = P.plot_image_grid({"a": torch.rand(2, 1, 8, 8)}, tmp_path / "small.png", scale=0.8)
    data, _ = _check(png, min_w=100, min_h=100)
    assert data["cell_inches"] == 0.8 and data["std_scale"] is None


@pytest.mark.parametrize("n, per_page", [(9, 4), (4, 4), (1, 3)])
def test_image_grid_pages_cover_every_image_once(tmp_path, n, per_page):
    cols = _grid_columns(n=n, side=8)
    paths = P.plot_image_grid_pages(cols, tmp_path / "pages" / "samples", rows_per_page=per_page, title="DO vs PO")
    pages = math.ceil(n / per_page)
    assert paths == [tmp_path / "pages" / f"samples_{i:03d}.png" for i in range(1, pages + 1)]
    shown = []
    scales = set()
    for i, png in enumerate(paths, start=1):
        data, _ = _check(png, min_w=100, min_h=100)
        assert data["title"] == f"DO vs PO — page {i} of {pages}" and data["page"] == i and data["pages"] == pages
        assert len(data["rows_shown"]) <= per_page
        shown += data["rows_shown"]
        scales.add(json.dumps(data["std_scale"], sort_keys=True))
        assert {c["vmax"] for c in _std_cells(data)} == {data["std_scale"]["vmax"]}
    assert sorted(shown) == list(range(n))  # every image exactly once
    assert len(scales) == 1  # one std scale for all pages
    assert sorted(p.name for p in (tmp_path / "pages").iterdir()) == sorted(
        [p.name for p in paths] + [p.with_suffix(".json").name for p in paths]
    )  # nothing else (no temporary files) left behind


def test_image_grid_bad_inputs(tmp_path):
    ok = torch.rand(2, 3, 8, 8)
    cases = [
        ({"a": None}, "no columns"),
        ({}, "no columns"),
        ({"a": torch.rand(3, 8, 8)}, r"'a' must be \(B, C, H, W\)"),
        ({"a": torch.rand(2, 2, 8, 8)}, r"'a' has 2 channels.*grey \(1\) or RGB \(3\)"),
        ({"a": ok, "std": torch.rand(2, 4, 8, 8)}, r"'std' has 4 channels"),
        ({"a": ok, "b": torch.rand(3, 3, 8, 8)}, r"different batch sizes \('a': 2, 'b': 3\)"),
        ({"a": ok, "b": torch.full((2, 1, 8, 8), float("nan"))}, r"'b' contains NaN"),
        ({"a": torch.rand(0, 3, 8, 8)}, "empty batch"),
    ]
    for columns, match in cases:
        with pytest.raises(ValueError, match=match):
            P.plot_image_grid(columns, tmp_path / "g.png")
        with pytest.raises(ValueError, match=match):
            P.plot_image_grid_pages(columns, tmp_path / "g")
    with pytest.raises(ValueError, match="columns must be a dict"):
        P.plot_image_grid([ok], tmp_path / "g.png")
    with pytest.raises(ValueError, match="max_rows must be a positive int"):
        P.plot_image_grid({"a": ok}, tmp_path / "g.png", max_rows=0)
    with pytest.raises(ValueError, match="rows_per_page must be a positive int"):
        P.plot_image_grid_pages({"a": ok}, tmp_path / "g", rows_per_page=0)
    assert list(tmp_path.iterdir()) == []


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


def _every_figure(tmp_path, caption):
    t, psnr, perc = _trajectory(6)
    yield P.plot_perception_distortion(psnr, perc, t, tmp_path / "pd.png", 0, -1, caption=caption)
    yield P.plot_metrics_vs_t(t, {"PSNR": psnr}, tmp_path / "m.png", caption=caption)
    yield P.plot_data_consistency(t, perc, tmp_path / "dc.png", 0.01, caption=caption)
    yield P.plot_schedule(t, perc, tmp_path / "s.png", caption=caption)
    yield P.plot_curves(t, {"a": psnr}, tmp_path / "c.png", "x", "y", title=None, caption=caption)
    yield P.plot_image_grid({"a": torch.rand(2, 3, 8, 8)}, tmp_path / "g.png", caption=caption)
    yield from P.plot_image_grid_pages({"a": torch.rand(2, 3, 8, 8)}, tmp_path / "p", caption=caption)


def test_every_figure_stores_its_caption_and_title(tmp_path):
    caption = "split: test · checkpoint: blur_default · 2 images"
    pngs = list(_every_figure(tmp_path, caption))
    assert len(pngs) == 7
    for png in pngs:
        data, _ = _check(png, min_w=100, min_h=100)
        assert data["caption"].startswith(caption) and "title" in data  # grid pages add their image range
    # without a caption the figure is shorter by the caption line
    with_caption = _check(pngs[0])[1]
    t, psnr, perc = _trajectory(6)
    plain = _check(P.plot_perception_distortion(psnr, perc, t, tmp_path / "plain.png", 0, -1))
    assert plain[0]["caption"] is None and plain[1][1] < with_caption[1] and plain[1][0] == with_caption[0]


def test_json_is_strict_with_nonfinite_as_null(tmp_path):
    t, psnr, perc = _trajectory(6)
    png = P.plot_curves(t, {"a": [float("inf")] + psnr[1:]}, tmp_path / "c.png", "x", "y")
    text = png.with_suffix(".json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text)["curves"]["a"][0] is None


def test_image_grid_std_scale_of_mostly_or_all_zero_maps(tmp_path):
    std = torch.zeros(2, 1, 8, 8)
    std[1, 0, 3, 4] = 0.25  # one uncertain pixel: the 99th percentile is 0, so the scale falls back to the maximum
    data, _ = _check(P.plot_image_grid({"std": std}, tmp_path / "one.png"), min_w=100, min_h=100)
    assert data["std_scale"]["vmax"] == 0.25 and data["std_scale"]["rule"].startswith("maximum")
    data, _ = _check(P.plot_image_grid({"std": torch.zeros(2, 1, 8, 8)}, tmp_path / "zero.png"), min_w=100, min_h=100)
    assert data["std_scale"]["vmax"] == 1.0 and data["std_scale"]["max"] == 0.0
