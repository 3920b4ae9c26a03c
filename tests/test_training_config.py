"""Trainer settings typed on the command line are checked, with the key named in the error."""

from pathlib import Path

import pytest
import yaml
from helpers import compose_train

from dirac.training import TrainConfig, train_config_from_dict


def test_shipped_trainer_configs_are_valid():
    """Every trainer group option, composed as Hydra composes it (its own ``defaults`` included), is a valid
    ``TrainConfig``; an option that extends another differs from it only where it says so."""
    folder = Path(__file__).resolve().parents[1] / "configs" / "trainer"
    composed = {f.stem: compose_train(f"trainer={f.stem}")["trainer"] for f in folder.glob("*.yaml")}
    for name, trainer in composed.items():
        cfg = train_config_from_dict(trainer)
        assert cfg.lr > 0 and isinstance(cfg.lr, float), name
    own = yaml.safe_load((folder / "cpu_finetune.yaml").read_text())
    parent = composed[own.pop("defaults")[0]]
    assert own and set(composed["cpu_finetune"]) == set(parent)
    for key, value in composed["cpu_finetune"].items():
        assert value == own.get(key, parent[key]), key


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"lr": "abc"}, "trainer.lr must be float, got 'abc'"),
        ({"batch_size": 2.5}, "trainer.batch_size must be int"),
        ({"max_steps": 0}, "trainer.max_steps must be > 0"),
        ({"grad_clip": -1.0}, "trainer.grad_clip must be >= 0"),
        ({"ema_decay": 1.0}, "trainer.ema_decay must lie in [0, 1)"),
        ({"mixed_precision": "fp8"}, "trainer.mixed_precision must be 'no', 'fp16' or 'bf16'"),
        ({"cpu": "yes"}, "trainer.cpu must be bool"),
        ({"no_such": 1}, "unknown trainer keys ['no_such']"),
    ],
)
def test_bad_trainer_settings_are_named(bad, message):
    with pytest.raises(ValueError) as err:
        train_config_from_dict(bad)
    assert message in str(err.value)


def test_integers_are_accepted_where_floats_are_expected():
    assert TrainConfig(lr=1, grad_clip=0).lr == 1.0


def test_a_run_from_before_a_key_existed_resumes_as_if_it_had_the_default():
    """``loss.t_final_prob`` was added later: an old run's config lacks it, which means 0; only another value
    is a change that resuming must refuse without resume_allow_changes."""
    from dirac.cli.train import config_diff

    old = {"loss": {"delta_t": 1.0}}
    assert config_diff(old, {"loss": {"delta_t": 1.0, "t_final_prob": 0.0}}) == []
    assert config_diff(old, {"loss": {"delta_t": 1.0, "t_final_prob": 0.5}}) == ["loss.t_final_prob: 0.0 -> 0.5"]
    assert config_diff(old, {"loss": {"delta_t": 0.5}}) == ["loss.delta_t: 1.0 -> 0.5"]
    # loss.norm came later still: absent means l2
    assert config_diff(old, {"loss": {"delta_t": 1.0, "norm": "l2"}}) == []
    assert config_diff(old, {"loss": {"delta_t": 1.0, "norm": "l1"}}) == ['loss.norm: "l2" -> "l1"']
    # data.train.random_rotation too: absent means off
    photos = {"data": {"train": {"random_scale": [3.0, 6.0]}}}
    assert config_diff(photos, {"data": {"train": {"random_scale": [3.0, 6.0], "random_rotation": False}}}) == []
    on = {"data": {"train": {"random_scale": [3.0, 6.0], "random_rotation": True}}}
    assert config_diff(photos, on) == ["data.train.random_rotation: false -> true"]
    # and data.train.random_aspect: absent means squares
    assert config_diff(photos, {"data": {"train": {"random_scale": [3.0, 6.0], "random_aspect": None}}}) == []
    stretched = {"data": {"train": {"random_scale": [3.0, 6.0], "random_aspect": [0.8, 1.25]}}}
    assert config_diff(photos, stretched) == ["data.train.random_aspect: null -> [0.8, 1.25]"]
