"""Geometric self-ensemble: group algebra, the commutation check, and the properties of the average."""

from __future__ import annotations

import pytest
import torch

from dirac.degradations import GaussianBlurProcess, build_process
from dirac.degradations.noise import GeometricNoiseSchedule
from dirac.evaluation.restorers import TikhonovRestorer
from dirac.reconstruction import Reconstruction, Restorer
from dirac.symmetry import GROUPS, SymmetryEnsemble, commutation_errors, inverse_transform, transform
from tests.conftest import smooth_images

BLUR = GaussianBlurProcess(0.3, 1.5, noise=GeometricNoiseSchedule(0.01, 0.05))


class Biased(Restorer):
    """A restorer that is not equivariant: the measurement plus a fixed asymmetric pattern, and noise when asked."""

    def __init__(self, process, noisy: bool = False) -> None:
        self.process, self.noisy, self.name = process, noisy, "biased"
        self.calls = 0

    @property
    def stochastic(self) -> bool:
        return self.noisy

    def __call__(self, y, generator=None):
        self.calls += 1
        h, w = y.shape[-2:]
        ramp = torch.linspace(0, 0.2, w)[None, None, None, :] * torch.linspace(1, 0, h)[None, None, :, None]
        x = y + ramp
        if self.noisy:
            gens = generator if isinstance(generator, list) else [generator] * len(y)
            x = x + torch.stack([0.1 * torch.randn(y.shape[1:], generator=g) for g in gens])
        return Reconstruction(x, nfe=3)


def test_the_eight_transforms_are_distinct_and_each_inverse_undoes_its_transform():
    x = torch.rand(2, 3, 5, 7)
    for k in GROUPS["dihedral"]:
        assert torch.equal(inverse_transform(transform(x, k), k), x)
    square = torch.rand(1, 1, 4, 4)
    images = {tuple(transform(square, k).flatten().tolist()) for k in GROUPS["dihedral"]}
    assert len(images) == 8


def test_isotropic_blur_commutes_with_the_dihedral_group_and_a_motion_kernel_is_refused():
    y = torch.rand(1, 3, 16, 16)
    assert max(commutation_errors(BLUR, y, GROUPS["dihedral"]).values()) < 1e-5
    motion = build_process("kernel", kernel="example")
    with pytest.raises(ValueError, match="does not fit the kernel degradation.*group 'flip'"):
        SymmetryEnsemble(TikhonovRestorer(motion, 0.01), "dihedral")(y)
    with pytest.raises(ValueError, match="unknown symmetry group"):
        SymmetryEnsemble(TikhonovRestorer(BLUR, 0.01), "rot45")


def test_an_equivariant_restorer_is_its_own_ensemble():
    """Tikhonov with an isotropic kernel and the Laplacian commutes with every g: averaging changes nothing."""
    x = smooth_images(2, 3, 16)
    y = BLUR.measure(x, torch.Generator().manual_seed(0))
    base = TikhonovRestorer(BLUR, 0.05)
    out = SymmetryEnsemble(base, "dihedral")(y)
    assert torch.allclose(out.x, base(y).x, atol=1e-4)
    assert out.extras["members"] == 8 and float(out.extras["spread"].max()) < 1e-4
    from dirac.evaluation.compare import describe

    nested = SymmetryEnsemble(SymmetryEnsemble(base, "flip"), "dihedral")  # wrappers of wrappers keep the settings
    assert describe(nested) == {"method": "tikhonov+flip+dihedral", "lambda": 0.05, "ensemble": "dihedral"}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_the_average_is_never_further_from_the_truth_than_its_members_on_average(group):
    """Convexity: ‖mean_g e_g‖² ≤ mean_g ‖e_g‖², strictly when the members differ (an asymmetric bias)."""
    x = smooth_images(3, 3, 12)
    y = BLUR.measure(x, torch.Generator().manual_seed(1))
    base = Biased(BLUR)
    out = SymmetryEnsemble(base, group)(y)
    members = [inverse_transform(base(transform(y, k)).x, k) for k in GROUPS[group]]
    member_mse = torch.stack([(m - x).pow(2).mean() for m in members]).mean()
    assert float((out.x - x).pow(2).mean()) < float(member_mse)
    assert out.nfe == 3 * len(GROUPS[group]) and out.extras["data_consistency"].shape == (1, 3)


def test_stochastic_members_do_not_depend_on_the_batch():
    y = BLUR.measure(smooth_images(4, 3, 12), torch.Generator().manual_seed(2))
    ens = SymmetryEnsemble(Biased(BLUR, noisy=True), "flip")

    def gens(ids):
        return [torch.Generator().manual_seed(100 + i) for i in ids]

    whole = ens(y, gens(range(4))).x
    parts = torch.cat([ens(y[:1], gens([0])).x, ens(y[1:], gens([1, 2, 3])).x])
    assert torch.allclose(whole, parts, atol=1e-6)
    assert not torch.allclose(whole, ens(y, gens(range(10, 14))).x)  # the generators do matter


def test_compare_ensemble_rows_name_an_existing_row():
    from dirac.evaluation.compare_mode import ensemble_restorers

    entries = {"tikhonov": (TikhonovRestorer(BLUR, 0.05), {"params": {"lam": 0.05}, "description": "Tikhonov"})}
    rows = ensemble_restorers(entries, {"tikhonov": "flip"})
    assert set(rows) == {"tikhonov+flip"} and rows["tikhonov+flip"][1]["params"] == {"lam": 0.05, "ensemble": "flip"}
    with pytest.raises(ValueError, match="compare.ensemble names row 'dirac_do'.*rows: \\['tikhonov'\\]"):
        ensemble_restorers(entries, {"dirac_do": "flip"})
