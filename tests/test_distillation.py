"""Self-ensemble distillation (issue 15's lever): the teacher's target, the loss's closed form, the CLI's checks."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import tiny_training, train_tiny

from dirac.degradations import GaussianBlurProcess, build_process
from dirac.degradations.noise import GeometricNoiseSchedule
from dirac.distillation import SelfEnsembleTeacher
from dirac.losses import IncrementalReconstructionLoss
from dirac.symmetry import GROUPS, inverse_transform, transform
from tests.conftest import smooth_images

BLUR = GaussianBlurProcess(0.3, 1.5, noise=GeometricNoiseSchedule(0.01, 0.05))


class Scaled(torch.nn.Module):
    """An equivariant map ``y ↦ a·y`` (every ``g`` commutes with it)."""

    def __init__(self, a: float = 0.9) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(a))

    def forward(self, y, t):
        return self.a * y


class Patterned(torch.nn.Module):
    """Not equivariant: ``y`` plus a fixed random pattern, so every member of the group gives another output."""

    def forward(self, y, t):
        return y + torch.rand(y.shape[-2:], generator=torch.Generator().manual_seed(5))


def test_an_equivariant_teacher_is_its_own_target_and_stays_frozen():
    teacher = SelfEnsembleTeacher(Scaled(), BLUR, "dihedral")
    y, t = torch.rand(6, 3, 8, 8), torch.rand(6)
    assert torch.allclose(teacher(y, t, torch.Generator().manual_seed(0)), 0.9 * y, atol=1e-6)
    assert not any(p.requires_grad for p in teacher.teacher.parameters())


def test_each_image_gets_one_members_prediction_and_the_draws_cover_the_group():
    patterned = Patterned()
    y = torch.rand(1, 1, 6, 6).expand(64, -1, -1, -1).contiguous()
    t = torch.ones(64)
    out = SelfEnsembleTeacher(patterned, BLUR, "dihedral")(y, t, torch.Generator().manual_seed(1))
    one = y[:1]
    candidates = torch.stack([inverse_transform(patterned(transform(one, k), t[:1]), k)[0] for k in GROUPS["dihedral"]])
    hits = [int(torch.isclose(o, candidates, atol=1e-6).flatten(1).all(1).nonzero()[0]) for o in out]
    assert len(set(hits)) == 8  # 64 draws miss none of the 8 members (chance of a miss < 1e-3)
    flips = SelfEnsembleTeacher(patterned, BLUR, "flip")(y, t, torch.Generator().manual_seed(1))
    assert all(any(torch.allclose(o, candidates[k]) for k in GROUPS["flip"]) for o in flips)


def test_a_group_that_does_not_commute_with_the_operator_is_refused():
    motion = build_process("kernel", kernel="example")
    with pytest.raises(ValueError, match="loss.teacher_group=dihedral: .*does not commute"):
        SelfEnsembleTeacher(Scaled(), motion, "dihedral")


def test_distilling_the_models_own_prediction_scales_the_loss_by_one_minus_the_weight_squared():
    """``target = (1−w) x0 + w T``: with the model equal to the teacher the error is ``(1−w)(A T − A x0)``, so the
    squared loss is ``(1−w)²`` times the plain one on the same draws; ``w = 1`` trains towards the teacher alone."""
    x0 = smooth_images(4, 3, 16)
    model = Scaled(0.8)
    plain = IncrementalReconstructionLoss(BLUR, delta_t=0.5, weighting="none")
    base = plain(model, x0, torch.Generator().manual_seed(3)).item()
    for w in (0.0, 0.5, 1.0):
        teacher = SelfEnsembleTeacher(Scaled(0.8), BLUR, "dihedral")
        distil = IncrementalReconstructionLoss(BLUR, delta_t=0.5, weighting="none", teacher=teacher, teacher_weight=w)
        assert distil(model, x0, torch.Generator().manual_seed(3)).item() == pytest.approx((1 - w) ** 2 * base)
    assert base > 1e-4
    with pytest.raises(ValueError, match="loss.teacher_weight"):
        IncrementalReconstructionLoss(BLUR, teacher_weight=1.5)


def test_the_training_cli_distils_a_checkpoint_and_refuses_a_teacher_of_another_process(tmp_path, monkeypatch):
    first = train_tiny(tmp_path / "a", [*tiny_training(), "trainer.max_steps=2"])
    run = [*tiny_training(), "trainer.max_steps=2", f"init_from={first}", f"loss.teacher={first}"]
    calls = []
    original = SelfEnsembleTeacher.__call__
    monkeypatch.setattr(SelfEnsembleTeacher, "__call__", lambda self, *a: calls.append(1) or original(self, *a))
    tuned = train_tiny(tmp_path / "b", [*run, "loss.teacher_weight=1.0"])
    assert len(calls) == 2  # the trainer's loss asked the teacher once per step
    state = json.loads((tuned / "state.json").read_text())
    assert state["teacher"]["group"] == "dihedral" and state["teacher"]["weights"].startswith("sha256:")
    with pytest.raises(SystemExit, match="loss.teacher=.*another degradation process"):
        train_tiny(tmp_path / "c", [*run, "degradation.noise.sigma_max=0.2"])
    with pytest.raises(SystemExit, match="loss.teacher=.*missing"):
        train_tiny(tmp_path / "d", [*tiny_training(), f"loss.teacher={tmp_path / 'missing'}"])
    with pytest.raises(SystemExit, match="loss.teacher_group='rot45'"):
        train_tiny(tmp_path / "e", [*run, "loss.teacher_group=rot45"])
