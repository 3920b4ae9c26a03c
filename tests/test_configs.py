"""Every shipped experiment config composes and builds: process, network at its image size, loss and sampler."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import compose_config, compose_train

from dirac.factory import loss_from_config, model_from_config, process_from_config, sampler_from_config
from dirac.models import count_parameters

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))


def test_the_four_experiments_exist():
    assert {"blur_default", "inpaint_default", "blur_celeba256", "inpaint_celeba256"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_builds_and_runs_one_step(name):
    c = compose_train(f"experiment={name}", *(["data.root=/your/images"] if name.endswith("celeba256") else []))
    process = process_from_config(c["degradation"])
    size, channels = c["data"]["image_size"], c["data"]["channels"]
    net = model_from_config(c["model"]).eval()
    if name.endswith("celeba256"):
        assert size == 256 and 60e6 < count_parameters(net) < 80e6  # paper scale (paper: 67 M)
    x = torch.rand(1, channels, size, size, generator=torch.Generator().manual_seed(0))
    y = process.measure(x, torch.Generator().manual_seed(1))
    assert y.shape == x.shape and torch.isfinite(y).all()
    loss = loss_from_config(process, c["loss"])
    assert 0.0 <= loss.delta_t <= 1.0
    s_cfg = compose_config("sample")["sampler"]
    assert s_cfg["t_stop"] == "auto"  # resolved per checkpoint (its early_stopping.json) by the sample CLI
    sampler = sampler_from_config(process, s_cfg, t_stop=0.0)
    assert sampler.steps >= 1
    with torch.no_grad():
        out = net(y, process.sigma(torch.ones(1)))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_unknown_key_is_rejected_by_hydra():
    with pytest.raises(Exception, match="no_such_key"):
        compose_train("trainer.no_such_key=1")


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml")))
def test_model_config_matches_its_preset(name):
    """configs/model/ncsnpp_X.yaml and the Python preset X build the same architecture (one definition each way)."""
    from dirac.models.ncsnpp import PRESETS, NCSNppConfig

    c = compose_train(f"model={name}")
    cfg = NCSNppConfig.from_dict(dict(c["model"]))
    preset = PRESETS[name.removeprefix("ncsnpp_")]
    keys = ("block_out_channels", "layers_per_block", "attention_resolutions", "norm_num_groups")
    assert {k: getattr(cfg, k) for k in keys} == {k: getattr(preset, k) for k in keys}
