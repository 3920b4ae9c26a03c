"""Restorers (:class:`dirac.reconstruction.Restorer`) for the Dirac sampler and the classical baselines.

* :class:`SamplerRestorer`: the reverse sampler (paper Alg. 1) with a trained network, stopped at ``t_stop``;
* :class:`TikhonovRestorer`: ``argmin ‖A_1 x − y‖² + λ ‖L x‖²`` (:func:`dirac.baselines.tikhonov`);
* :class:`AdmmTvRestorer`: ``argmin ½‖A_1 x − y‖² + λ TV(x)`` (:func:`dirac.baselines.admm_tv`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..baselines import admm_tv, tikhonov
from ..degradations import DegradationProcess
from ..reconstruction import GeneratorLike, Reconstruction, Restorer
from ..sampling import ReverseSampler, data_consistency
from ..tiling import TILE_SIZE, image_seeds, needs_tiles, tiled_apply


class SamplerRestorer(Restorer):
    """``ReverseSampler`` + model as a restorer. ``record_x0`` (None, ``"all"`` or grid indices) keeps
    ``x̂0(t_i)`` in ``extras["x0_trajectory"]``; ``extras`` also holds ``data_consistency`` ``(points, B)``
    and ``t_grid``. The generator (one, or a list with one per image) goes to the sampler unchanged, except for
    images above ``tile_above`` pixels (default 256²) without trajectory recording: those run as seeded tiles
    (:func:`dirac.tiling.tiled_apply`), so memory stays bounded."""

    def __init__(
        self,
        model: torch.nn.Module,
        sampler: ReverseSampler,
        name: str = "dirac",
        record_x0: str | Sequence[int] | None = None,
        tile_size: int | None = TILE_SIZE,
        tile_overlap: int = 32,
        tile_above: int | None = None,
    ) -> None:
        self.model = model
        self.tile_size, self.tile_overlap, self.tile_above = tile_size, tile_overlap, tile_above
        self.sampler = sampler
        self.process = sampler.process
        self.name = name
        self.record_x0 = record_x0

    @property
    def stochastic(self) -> bool:
        return self.sampler.stochastic

    @property
    def t_stop(self) -> float:
        """The grid time the sampler stops at (``t_stop`` snapped to the grid)."""
        return float(self.sampler.grid[-1])

    def __call__(self, y: Tensor, generator: GeneratorLike = None) -> Reconstruction:
        tile = self.tile_size if self.record_x0 is None else None
        if needs_tiles(y.shape, tile, self.process.shift_invariant, self.process.kind, self.tile_above):
            return self._tiled(y, generator)
        res = self.sampler(self.model, y, generator, record_x0=self.record_x0)  # type: ignore[arg-type]
        extras = {"data_consistency": res.data_consistency, "t_grid": res.t_grid}
        if self.record_x0 is not None:
            extras["x0_trajectory"] = res.x0_trajectory
        return Reconstruction(res.output, nfe=res.nfe, extras=extras)

    def _tiled(self, y: Tensor, generator: GeneratorLike) -> Reconstruction:
        nfe = []

        def run(tiles: Tensor, gens: list[torch.Generator]) -> Tensor:
            out = self.sampler(self.model, tiles, gens)
            nfe.append(out.nfe)
            return out.output

        x = tiled_apply(run, y, image_seeds(generator, len(y)), int(self.tile_size), self.tile_overlap)
        dc = data_consistency(self.process, x, y)[None].cpu()
        return Reconstruction(
            x, nfe=nfe[0], extras={"data_consistency": dc, "t_grid": self.sampler.grid, "tiled": True}
        )


class TikhonovRestorer(Restorer):
    """Laplacian- (or gradient-, identity-) regularised least squares with a fixed λ (a Wiener-like baseline)."""

    def __init__(self, process: DegradationProcess, lam: float, regulariser: str = "laplacian") -> None:
        self.process = process
        self.lam = float(lam)
        self.regulariser = regulariser
        self.name = "tikhonov"

    def __call__(self, y: Tensor, generator: GeneratorLike = None) -> Reconstruction:
        x = tikhonov(self.process, y, self.lam, regulariser=self.regulariser)
        return Reconstruction(x, extras={"lambda": self.lam})  # type: ignore[arg-type]


class AdmmTvRestorer(Restorer):
    """Isotropic total-variation reconstruction by ADMM with a fixed λ and iteration count."""

    def __init__(self, process: DegradationProcess, lam: float, iterations: int = 100) -> None:
        self.process = process
        self.lam = float(lam)
        self.iterations = int(iterations)
        self.name = "admm_tv"

    def __call__(self, y: Tensor, generator: GeneratorLike = None) -> Reconstruction:
        x = admm_tv(self.process, y, self.lam, iterations=self.iterations)
        return Reconstruction(x, extras={"lambda": self.lam})  # type: ignore[arg-type]
