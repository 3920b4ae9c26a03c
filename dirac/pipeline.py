"""``DiracPipeline``: load a model, degrade images, reconstruct them (diffusers-style, any size, any image type).

    pipe = DiracPipeline.from_pretrained("blur_default")   # a shipped name or a checkpoint folder
    y = pipe.degrade(image, generator=g)                     # synthetic measurement y = A_1 x + σ_y z (eq. 4)
    x = pipe(y, t_stop="do")                                 # reverse SDE (Alg. 1) stopped at DO, PO or a time

Images keep their type (PIL, NumPy ``(H, W, C)``, tensors, lists); any size runs (reflect-pad to the network
multiple inside the model; overlapping tiles above ``tile_size`` for shift-invariant degradations, so memory
is bounded by ``tile_batch`` tiles). With a list of generators, one per image, each result is independent of
the batch it runs in. After every call the data-consistency residual is compared with σ_y and a
:class:`DegradationMismatchWarning` names measurements that don't match the model's degradation.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .checkpoint import check_destination, write_checkpoint
from .degradations import DegradationProcess
from .degradations.base import GeneratorLike, check_generators
from .factory import load_checkpoint, require_role, sampler_from_config
from .image_types import MEASUREMENT_SLACK, check_range, to_tensors
from .sampling import ReverseSampler, SamplerOutput
from .sampling.mismatch import DegradationMismatchWarning, consistency_ratios, warn_mismatch
from .sampling.sampler import identical_samples_note
from .shipped import refuse_shipped, resolve_checkpoint
from .stopping_choice import (
    CHOICE_FILE,
    load_stopping_choice,
    stopping_point,
    weights_fingerprint,
    write_stopping_choice,
)
from .symmetry import check_symmetry, group_members, symmetric_apply
from .tiling import TILE_SIZE, child_seed, image_seeds, needs_tiles, seeded_generators, tile_count, tiled_apply

Callback = Callable[[int, float, Tensor], None]
SAMPLER_OPTIONS = ("steps", "step", "guidance", "guidance_strength", "output")


@dataclass
class DiracPipelineOutput:
    """``images``: the reconstructions (mean of the posterior samples when ``num_samples > 1``), in the input's
    type; ``std``: pixelwise std over the samples (same type) or None; ``samples``: ``(K, C, H, W)`` per input
    image; ``trajectory``: ``{t_i: x̂0(t_i)}`` per input image when asked; ``consistency``: the residual ratio
    ``‖A_1 x̂ − y‖ / (√n σ_y)`` per image (≈ 1 when the measurement matches the model). ``nfe``: network
    evaluations of one sampler run; ``nfe_per_image``: of one sample, ``nfe · |G|`` (|G| = 1 without
    ``ensemble``; ``num_samples`` multiplies it; tiles count as one image-sized evaluation), as ``sample.py``'s
    ``timing.nfe_per_image``."""

    images: Any
    t_stop: float
    nfe: int
    std: Any = None
    samples: list[Tensor] = field(default_factory=list)
    trajectory: list[dict[float, Tensor]] | None = None
    consistency: Tensor | None = None
    nfe_per_image: int = 0


class DiracPipeline:
    """A trained Dirac model with its degradation process and early-stopping choice."""

    def __init__(
        self,
        model: torch.nn.Module,
        process: DegradationProcess,
        state: dict[str, Any],
        choice: dict[str, Any] | None = None,
        choice_problem: str | None = None,
    ) -> None:
        self.model = model.eval()
        self.process = process
        self.state = state
        self.choice = choice
        self.choice_problem = choice_problem
        self.tile_size, self.tile_overlap, self.tile_batch, self.batch_size = TILE_SIZE, 32, 4, 8

    # --- loading and saving ---
    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, ema: bool = True, device: str = "cpu") -> DiracPipeline:
        """Load a shipped model by name (``blur_default``, ``inpaint_default``) or a checkpoint folder."""
        folder = resolve_checkpoint(name_or_path)
        model, process, state = load_checkpoint(folder, ema=ema, device=device)
        require_role(state, "dirac", str(name_or_path), key="from_pretrained")
        choice, problem = None, None
        try:
            choice = load_stopping_choice(folder / CHOICE_FILE, weights_fingerprint(folder, ema))
        except (FileNotFoundError, ValueError) as e:
            problem = str(e)
        return cls(model, process, state, choice, problem)

    def save_pretrained(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write the weights, ``state.json`` and the early-stopping choice; ``from_pretrained`` loads it back."""
        folder = Path(folder)
        refuse_shipped(folder)
        check_destination(folder, overwrite, how="pass overwrite=True")
        state = {k: v for k, v in self.state.items() if k != "format_version"}
        write_checkpoint(folder, model=self.model.net.state_dict(), state=state)
        if self.choice is not None:
            choice = {k: v for k, v in self.choice.items() if k != "weights"}
            write_stopping_choice(folder / CHOICE_FILE, choice, weights_fingerprint(folder, ema=False))
        return folder

    def to(self, device: str | torch.device) -> DiracPipeline:
        self.model.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def channels(self) -> int:
        return int(self.state["model"].get("channels", 3))

    # --- degradation and sampler ---
    def degrade(self, images: Any, generator: GeneratorLike = None) -> Any:
        """Synthetic measurement ``y = A_1 x + σ_y z`` of clean images in [0, 1], in the input's type.

        PIL and uint8 outputs are rounded and clipped to [0, 1]; float outputs keep the noise unclipped."""
        batches, restore = to_tensors(images, self.channels, "image")
        gens = _split_generators(generator, [len(b) for b in batches])
        outs = []
        for x, g in zip(batches, gens, strict=True):
            check_range(x, "image", tolerance=1e-6)
            outs.append(self.process.measure(x.to(self.device), g).cpu())
        return restore(outs)

    def sampler(self, t_stop: str | float = "do", **overrides: Any) -> ReverseSampler:
        """The reverse sampler for ``t_stop`` ("do", "po" or a time in [0, 1]); sampler settings come from the
        early-stopping choice (or the checkpoint's defaults), ``overrides`` (steps, step, guidance,
        guidance_strength, output) win."""
        settings = {"steps": 50, "step": "euler", "guidance": "none", "guidance_strength": 0.0, "output": "x0"}
        if isinstance(t_stop, str):
            t_stop = t_stop.lower()
            if self.choice is None:
                raise ValueError(f"t_stop={t_stop!r} needs the early-stopping choice: {self.choice_problem}")
            t, chosen = stopping_point(self.choice, t_stop)
            settings.update(chosen)
        else:
            try:  # None, a bool or a string other than the labels: refused below
                t = math.nan if isinstance(t_stop, bool) or t_stop is None else float(t_stop)
            except (TypeError, ValueError):
                t = math.nan
            if not 0.0 <= t <= 1.0:
                raise ValueError(f"t_stop must be 'do', 'po' or a float in [0, 1], got {t_stop!r}")
        unknown = sorted(set(overrides) - set(SAMPLER_OPTIONS))
        if unknown:
            raise TypeError(
                f"unknown option(s) {unknown}; sampler options: {', '.join(SAMPLER_OPTIONS)}; tiling options: "
                f"tile_size, tile_above, tile_overlap, tile_batch, batch_size"
            )
        settings.update({k: v for k, v in overrides.items() if v is not None})
        return sampler_from_config(self.process, settings, t_stop=t)

    def _warn_untrained_sizes(self, batches: list[Tensor]) -> None:
        """A position-dependent degradation (a centred mask in pixels) is only what the model was trained for at
        the training size; warn before running on other sizes."""
        size = int(self.state["model"].get("image_size", 0))
        if self.process.shift_invariant or not size:
            return
        other = sorted({f"{b.shape[-2]}x{b.shape[-1]}" for b in batches if tuple(b.shape[-2:]) != (size, size)})
        if other:
            warnings.warn(
                f"this {self.process.kind} model was trained on {size}x{size} images and its degradation depends on "
                f"the position (a centred mask of fixed width in pixels), so images of {', '.join(other)} are out of "
                f"its training distribution and may come out worse than the measurement; resize them to "
                f"{size}x{size}",
                DegradationMismatchWarning,
                stacklevel=3,
            )

    # --- reconstruction ---
    def __call__(
        self,
        images: Any,
        t_stop: str | float = "do",
        generator: GeneratorLike = None,
        num_samples: int = 1,
        callback: Callback | None = None,
        progress: bool | None = None,
        return_trajectory: bool = False,
        return_dict: bool = False,
        check_consistency: bool = True,
        ensemble: str | None = None,
        **sampler_settings: Any,
    ) -> Any:
        """Reconstruct measurements ``images`` (same type back, or a :class:`DiracPipelineOutput` with
        ``return_dict=True``). ``ensemble``: ``"flip"`` or ``"dihedral"`` averages the reconstructions of the
        measurement's rotated/flipped copies (:mod:`dirac.symmetry`; |G| sampler runs per sample, refused when the
        degradation does not commute with the group). ``sampler_settings``: steps, step, guidance,
        guidance_strength, output, tile_size (128; None: never tile), tile_above (pixels, default 256²),
        tile_overlap, tile_batch, batch_size."""
        if return_trajectory and not return_dict:
            raise ValueError("return_trajectory=True needs return_dict=True (the trajectory is in the output object)")
        if isinstance(num_samples, bool) or int(num_samples) != num_samples or num_samples < 1:
            raise ValueError(f"num_samples must be a whole number >= 1, got {num_samples!r}")
        run = _Run(self, int(num_samples), return_trajectory, sampler_settings, ensemble)
        batches, restore = to_tensors(images, self.channels, "measurement")
        for b in batches:  # a noisy measurement may stray from [0, 1]; [-1, 1] or 0–255 images stray further
            check_range(b, "measurement", tolerance=MEASUREMENT_SLACK)
            check_symmetry(self.process, b, ensemble)
        sampler = self.sampler(t_stop, **sampler_settings)
        if num_samples > 1 and not sampler.stochastic:
            warnings.warn(identical_samples_note(sampler, f"t_stop={t_stop!r}", int(num_samples)), stacklevel=2)
        for b in batches:  # refuse what cannot run (too large, untileable) before anything else
            run.tiled(b)
        self._warn_untrained_sizes(batches)
        seeds = image_seeds(generator, sum(len(b) for b in batches))
        results = run.all(sampler, batches, seeds, callback, progress)
        ratios = None
        if check_consistency:
            pairs = zip(results, batches, strict=True)
            ratios = torch.cat([consistency_ratios(self.process, r.mean, y) for r, y in pairs])
            warn_mismatch(ratios, self.process.sigma_y)
        if not return_dict:
            return restore([r.mean for r in results])
        return DiracPipelineOutput(
            images=restore([r.mean for r in results]),
            t_stop=sampler.grid[-1].item(),
            nfe=run.nfe,
            std=restore([r.std for r in results], floats=True) if num_samples > 1 else None,
            samples=[s for r in results for s in r.samples],
            trajectory=[t for r in results for t in r.trajectory] if return_trajectory else None,
            consistency=ratios,
            nfe_per_image=run.nfe * len(run.members),
        )


def _split_generators(generator: GeneratorLike, sizes: list[int]) -> list[GeneratorLike]:
    """Per-batch generators: a list of per-image generators is split along the batches."""
    if not isinstance(generator, (list, tuple)):
        return [generator] * len(sizes)
    generator = check_generators(generator, sum(sizes))
    starts = [sum(sizes[:k]) for k in range(len(sizes))]
    return [list(generator[s : s + n]) for s, n in zip(starts, sizes, strict=True)]


@dataclass
class _BatchResult:
    mean: Tensor
    std: Tensor
    samples: list[Tensor]
    trajectory: list[dict[float, Tensor]]


class _Run:
    """Bookkeeping of one pipeline call: rows (image × posterior sample × symmetry), batching or tiling, progress."""

    def __init__(
        self, pipe: DiracPipeline, num_samples: int, trajectory: bool, settings: dict[str, Any], ensemble: str | None
    ) -> None:
        self.pipe, self.k, self.want_trajectory = pipe, num_samples, trajectory
        self.members = group_members(ensemble) if ensemble is not None else (0,)
        self.tile_size = settings.pop("tile_size", pipe.tile_size)
        self.tile_above = settings.pop("tile_above", None)
        self.overlap = int(settings.pop("tile_overlap", pipe.tile_overlap))
        self.tile_batch = int(settings.pop("tile_batch", pipe.tile_batch))
        self.batch_size = int(settings.pop("batch_size", pipe.batch_size))
        if self.tile_batch < 1 or self.batch_size < 1:
            raise ValueError(f"tile_batch and batch_size must be >= 1, got {self.tile_batch} and {self.batch_size}")
        if self.tile_size is not None and not 0 <= self.overlap < int(self.tile_size):
            raise ValueError(f"tile_size must exceed tile_overlap={self.overlap}, got tile_size={self.tile_size}")

        self.nfe = 0

    def tiled(self, y: Tensor) -> bool:
        """Whether ``y`` runs as tiles (larger than a tile and a shift-invariant degradation)."""
        proc = self.pipe.process
        return needs_tiles(y.shape, self.tile_size, proc.shift_invariant, proc.kind, self.tile_above)

    def _runs(self, b: Tensor) -> int:
        """Sampler runs a batch needs (for the progress bar)."""
        rows = len(b) * self.k * len(self.members)
        if not self.tiled(b):
            return math.ceil(rows / self.batch_size)
        tiles = tile_count(*b.shape[-2:], int(self.tile_size), self.overlap)
        return math.ceil(rows * tiles / self.tile_batch)

    def all(self, sampler: ReverseSampler, batches: list[Tensor], seeds: list[int], callback, progress) -> list:
        """Reconstruct every batch; ``seeds`` has one entry per image across the batches."""
        per_run = len(sampler.grid) - 1 + int(sampler.output == "x0" or self.want_trajectory)
        total = per_run * sum(self._runs(b) for b in batches)
        show = total > 20 if progress is None else bool(progress)
        starts = [sum(len(p) for p in batches[:k]) for k in range(len(batches))]
        with tqdm(total=total, disable=not show, desc="dirac", unit="step") as bar:

            def on_step(i: int, t: float, x0: Tensor) -> None:
                bar.update(1)
                if callback is not None:
                    callback(i, t, x0)

            fn = self._sample_fn(sampler, on_step)
            return [self._batch(fn, b, seeds[s : s + len(b)], sampler) for b, s in zip(batches, starts, strict=True)]

    def _batch(self, fn, y: Tensor, seeds: list[int], sampler: ReverseSampler) -> _BatchResult:
        """All ``k`` posterior samples of every image of ``y (B, C, H, W)``; with an ensemble each sample is the
        average ``(1/|G|) Σ_g g⁻¹ R(g y)`` of one draw per member (:func:`dirac.symmetry.symmetric_apply`), as
        :class:`~dirac.symmetry.SymmetryEnsemble` returns it, so ``std`` is the spread of those averages."""
        stacked = symmetric_apply(lambda yg, sg: self._rows(fn, yg, sg), y, seeds, self.members)
        return self._split(sampler, stacked.mean(0), y.shape[1])

    def _rows(self, fn, y: Tensor, seeds: list[int]) -> Tensor:
        """``(B, k, C', H, W)``: the ``k`` runs of every image of ``y``; row seeds depend only on the image."""
        rows = y.to(self.pipe.device).repeat_interleave(self.k, 0)
        row_seeds = [child_seed(s, j) for s in seeds for j in range(self.k)]
        if self.tiled(y):
            stacked = tiled_apply(fn, rows, row_seeds, int(self.tile_size), self.overlap, self.tile_batch)
        else:
            chunks = range(0, len(rows), self.batch_size)
            gens = [seeded_generators(row_seeds[i : i + self.batch_size], rows.device) for i in chunks]
            stacked = torch.cat([fn(rows[i : i + self.batch_size], g) for i, g in zip(chunks, gens, strict=True)])
        return stacked.cpu().unflatten(0, (len(y), self.k))

    def _sample_fn(self, sampler: ReverseSampler, on_step: Callback):
        """``f(y, generators)`` running the sampler: its output and the x̂0 trajectory stacked along channels."""

        def fn(y: Tensor, gens: list[torch.Generator]) -> Tensor:
            record = "all" if self.want_trajectory else None
            out: SamplerOutput = sampler(self.pipe.model, y, gens, record_x0=record, callback=on_step)
            self.nfe = max(self.nfe, out.nfe)
            return torch.cat([out.output, *(out.x0_trajectory[i] for i in sorted(out.x0_trajectory))], dim=1)

        return fn

    def _split(self, sampler: ReverseSampler, stacked: Tensor, c: int) -> _BatchResult:
        """``stacked (B, k, C', H, W)`` -> samples, their mean and std, and the trajectory of the sample mean."""
        samples = stacked[:, :, :c]
        std = samples.std(1, unbiased=True) if samples.shape[1] > 1 else torch.zeros_like(samples[:, 0])
        trajectory: list[dict[float, Tensor]] = []
        if self.want_trajectory:
            times = [float(t) for t in sampler.grid]
            frames = stacked[:, :, c:].unflatten(2, (-1, c)).mean(1)
            trajectory = [dict(zip(times, f.unbind(0), strict=True)) for f in frames]
        return _BatchResult(samples.mean(1), std, list(samples.unbind(0)), trajectory)
