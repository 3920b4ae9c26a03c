"""Trainer settings typed on the command line are checked, with the key named in the error."""

from pathlib import Path

import pytest
import yaml

from dirac.training import TrainConfig, train_config_from_dict


def test_shipped_trainer_configs_are_valid():
    for f in (Path(__file__).resolve().parents[1] / "configs" / "trainer").glob("*.yaml"):
        cfg = train_config_from_dict(yaml.safe_load(f.read_text()))
        assert cfg.lr > 0 and isinstance(cfg.lr, float)


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
