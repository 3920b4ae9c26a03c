"""Geometric self-ensemble: average a restorer over the symmetries of the square that commute with ``A_1``.

For a symmetry ``g`` (a 90° rotation and/or a flip) with ``A_1(g x) = g A_1(x)`` and i.i.d. pixel noise,
``g y = A_1(g x) + g n`` is a measurement of ``g x`` with the same noise law, so ``g⁻¹ R(g y)`` is another estimate
of ``x``, and

    x̂ = (1/|G|) Σ_{g ∈ G} g⁻¹ R(g y)

averages them (the "geometric self-ensemble" of Lim et al. 2017, EDSR+). When the prior is invariant under ``G`` too
(photographs under the dihedral group; aligned faces under the left-right flip only), this moves a
distortion-optimised estimate towards the posterior mean; it costs ``|G|`` restorer calls and trains nothing. The
group is a hyper-parameter of the restorer: choose it on the validation split. Whether ``A_1`` commutes with
every member is checked on a random probe at each call, and a group that does not is refused with its reason.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .degradations import DegradationProcess
from .reconstruction import GeneratorLike, Reconstruction, Restorer, RestorerWrapper
from .sampling import data_consistency
from .tiling import child_seed, image_seeds, seeded_generators

GROUPS: dict[str, tuple[int, ...]] = {"flip": (0, 4), "dihedral": tuple(range(8))}
"""Members as indices ``k``: ``k % 4`` quarter turns, then a left-right flip when ``k >= 4``."""
COMMUTE_TOLERANCE = 1e-4
"""Largest relative difference ``‖A(g x) − g A(x)‖ / ‖A(x)‖`` accepted as commuting (float32 round-off)."""


def transform(x: Tensor, k: int) -> Tensor:
    """``g_k x``: rotate ``(…, H, W)`` by ``k % 4`` quarter turns, then flip left-right when ``k >= 4``."""
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


def inverse_transform(x: Tensor, k: int) -> Tensor:
    """``g_k⁻¹ x`` (undo the flip, then the rotation)."""
    x = x.flip(-1) if k >= 4 else x
    return torch.rot90(x, -(k % 4), dims=(-2, -1))


def commutation_errors(process: DegradationProcess, y: Tensor, members: tuple[int, ...]) -> dict[int, float]:
    """``{k: ‖A_1(g_k x) − g_k A_1(x)‖ / ‖A_1(x)‖}`` for a random image ``x`` of the shape ``y`` restores to."""
    shape = process.adjoint(y[:1], 1.0).shape
    probe = torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(y)
    ax = process.degrade(probe, 1.0)
    scale = float(ax.norm()) or 1.0
    return {k: float((process.degrade(transform(probe, k), 1.0) - transform(ax, k)).norm()) / scale for k in members}


def is_group(value: object) -> bool:
    """Whether ``value`` names a group of :data:`GROUPS` (a list or other unhashable value is not one)."""
    return isinstance(value, str) and value in GROUPS


def group_members(group: str) -> tuple[int, ...]:
    """The member indices of ``group`` (a key of :data:`GROUPS`); anything else is refused, naming the choices."""
    if not is_group(group):
        raise ValueError(f"unknown symmetry group {group!r}; choose one of {sorted(GROUPS)}")
    return GROUPS[group]


def member_seeds(seeds: list[int], k: int) -> list[int]:
    """Per-image seeds of member ``k``: each image's own for the identity, a child seed of it otherwise
    (independent noise per member, still independent of the batch). In the pipeline, whose plain run draws from
    the same per-image seeds, the identity member therefore reproduces the plain run; :class:`SymmetryEnsemble`
    derives its seeds from the generator it is given, so its members' noise differs from a plain call's."""
    return list(seeds) if k == 0 else [child_seed(s, k) for s in seeds]


def symmetric_apply(
    fn: Callable[[Tensor, list[int]], Tensor], y: Tensor, seeds: list[int], members: tuple[int, ...]
) -> Tensor:
    """``(|G|, …)``: ``g⁻¹ fn(g y, seeds_g)`` for every member ``g``; ``fn``'s output has ``H, W`` last."""
    return torch.stack([inverse_transform(fn(transform(y, k), member_seeds(seeds, k)), k) for k in members])


def check_symmetry(process: DegradationProcess, y: Tensor, group: str | None) -> None:
    """Refuse an unknown group, or one whose members do not commute with ``A_1`` at ``y``'s shape (the average
    would be biased); ``None`` (no ensemble) passes."""
    if group is None:
        return
    bad = {k: e for k, e in commutation_errors(process, y, group_members(group)).items() if e > COMMUTE_TOLERANCE}
    if bad:
        k, err = max(bad.items(), key=lambda kv: kv[1])
        raise ValueError(
            f"self-ensemble group {group!r} does not fit the {process.kind} degradation: A_1 does not commute "
            f"with {k % 4} quarter turn(s){' and a flip' if k >= 4 else ''} (relative difference {err:.2g}); "
            + (
                "run without an ensemble"
                if group == "flip"
                else "use group 'flip' if the degradation is left-right symmetric, or no ensemble"
            )
        )


class SymmetryEnsemble(RestorerWrapper):
    """``x̂ = (1/|G|) Σ_g g⁻¹ R(g y)`` (module docstring) for any :class:`~dirac.reconstruction.Restorer` ``R``.

    ``group``: ``"flip"`` (identity + left-right flip) or ``"dihedral"`` (the 8 symmetries of the square; on
    non-square images the quarter turns give transposed inputs, which shape-agnostic restorers accept). Stochastic
    members draw from seeds derived per image and member, so results do not depend on the batch. ``extras``:
    ``group``, ``members``, ``spread`` (per image, the mean pixelwise std over the members: how much the estimate
    depends on orientation) and ``data_consistency`` ``(1, B)`` of the average.
    """

    def __init__(self, base: Restorer, group: str = "dihedral") -> None:
        self.group, self.members = group, group_members(group)
        super().__init__(base, group)

    def __call__(self, y: Tensor, generator: GeneratorLike = None) -> Reconstruction:
        check_symmetry(self.process, y, self.group)
        nfe = []

        def run(yg: Tensor, seeds: list[int]) -> Tensor:
            rec = self.base(yg, seeded_generators(seeds, y.device) if self.stochastic else None)
            nfe.append(rec.nfe)
            return rec.x

        seeds = image_seeds(generator, len(y)) if self.stochastic else [0] * len(y)
        stack = symmetric_apply(run, y, seeds, self.members)
        x = stack.mean(0)
        extras = {
            "group": self.group,
            "members": len(self.members),
            "spread": stack.std(0, unbiased=False).flatten(1).mean(1).cpu(),
            "data_consistency": data_consistency(self.process, x, y)[None].cpu(),
        }
        return Reconstruction(x, nfe=sum(nfe), extras=extras)
