"""The shipped models load from safetensors + JSON, stay small, and actually restore held-out test images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dirac.factory import dataset_from_config, load_checkpoint
from dirac.metrics import psnr
from dirac.sampling import ReverseSampler

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"


def held_out_batch(name: str, n: int) -> tuple:
    model, process, state = load_checkpoint(PRETRAINED / name)
    ds = dataset_from_config(state["data"], "test")
    x = torch.stack([ds[i] for i in range(min(n, len(ds)))])
    y = process.measure(x, torch.Generator().manual_seed(123))
    return model, process, x, y


@pytest.mark.parametrize(("name", "kind"), [("blur_default", "blur"), ("inpaint_default", "inpaint")])
def test_shipped_model_is_small_and_self_describing(name, kind):
    folder = PRETRAINED / name
    assert sum(f.stat().st_size for f in folder.iterdir()) <= 10 * 2**20
    assert not list(folder.glob("*.pt")) and not list(folder.glob("*.bin")) and not list(folder.glob("*.pkl"))
    _, process, state = load_checkpoint(folder)
    assert process.kind == kind and process.schedule.kind == "greedy"
    choice = json.loads((folder / "early_stopping.json").read_text())
    assert 0.0 <= choice["do"]["t"] <= 1.0 and 0.0 <= choice["po"]["t"] <= 1.0


@torch.no_grad()
def test_shipped_blur_model_beats_the_measurement_by_3db():
    """One network call on 32 held-out test crops: the DO-style one-shot reconstruction is ≥ 3 dB over y."""
    model, process, x, y = held_out_batch("blur_default", 32)
    x0 = model(y, torch.ones(len(y))).clamp(0, 1)
    assert psnr(x0, x).mean() > psnr(y.clamp(0, 1), x).mean() + 3.0


def test_shipped_inpainting_model_fills_the_hole():
    """The sampler (DO stopping point, 20 steps) restores masked test crops better than the measurement."""
    model, process, x, y = held_out_batch("inpaint_default", 16)
    choice = json.loads((PRETRAINED / "inpaint_default" / "early_stopping.json").read_text())
    out = ReverseSampler(process, steps=20, t_stop=choice["do"]["t"])(
        model, y, generator=torch.Generator().manual_seed(0)
    )
    assert psnr(out.output.clamp(0, 1), x).mean() > psnr(y.clamp(0, 1), x).mean() + 5.0
