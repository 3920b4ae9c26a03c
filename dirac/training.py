"""Training loop on ``accelerate``: one code path for CPU, one GPU, many GPUs and many nodes.

``accelerate launch train.py …`` distributes it unchanged. EMA (torch's ``AveragedModel``), gradient
clipping, linear LR warm-up, mixed precision (accelerate), periodic validation and sample grids,
atomic pickle-free checkpoints (``dirac.checkpoint``) and exact resumption.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed
from numpy.random import SeedSequence
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from .checkpoint import (
    CheckpointError,
    list_checkpoints,
    load_nested,
    point_last,
    read_state,
    read_weights,
    require_keys,
    rng_state,
    set_rng_state,
    step_of,
    tensors_sha256,
    write_checkpoint,
)
from .degradations import DegradationProcess
from .distributed import gather, on_main, shard, to_cpu
from .io import atomic_write, save_grid, to_json
from .losses import IncrementalReconstructionLoss
from .metrics.fidelity import psnr
from .models import Reconstructor
from .models.ncsnpp import PRIOR_BUFFERS
from .sampling import ReverseSampler
from .tracking import log_image_files


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings (``configs/trainer/*.yaml``)."""

    max_steps: int = 1000
    batch_size: int = 32
    lr: float = 2e-4
    warmup_steps: int = 100
    lr_schedule: str = "constant"
    lr_min_ratio: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    mixed_precision: str = "no"
    compile: bool = False
    compile_backend: str = "inductor"
    log_every: int = 25
    val_every: int = 250
    checkpoint_every: int = 250
    keep_checkpoints: int = 2
    num_workers: int = 0
    seed: int = 0
    val_images: int = 32
    sample_steps: int = 20
    cpu: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        # Hydra passes whatever was typed on the command line: check types and ranges here, with the key's name
        for f in fields(self):
            v = getattr(self, f.name)
            kind = {"int": int, "float": float, "str": str, "bool": bool}[str(f.type)]
            if kind is float and type(v) is int:  # 1 for 1.0; bool is not accepted as a number
                v = float(v)
                setattr(self, f.name, v)
            if type(v) is not kind:
                raise ValueError(f"trainer.{f.name} must be {kind.__name__}, got {v!r}")
            if kind is float and not math.isfinite(v):
                raise ValueError(f"trainer.{f.name} must be a finite number, got {v!r}")
        positive = ("max_steps", "batch_size", "lr", "log_every", "val_every", "checkpoint_every", "keep_checkpoints")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"trainer.{name} must be > 0, got {getattr(self, name)}")
        for name in ("warmup_steps", "grad_clip", "num_workers", "val_images", "sample_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"trainer.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"trainer.ema_decay must lie in [0, 1), got {self.ema_decay}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"trainer.lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if not 0.0 <= self.lr_min_ratio <= 1.0:
            raise ValueError(f"trainer.lr_min_ratio must lie in [0, 1], got {self.lr_min_ratio}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError(f"trainer.mixed_precision must be 'no', 'fp16' or 'bf16', got {self.mixed_precision!r}")


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Learning-rate multiplier after ``step`` optimiser steps: linear warm-up to 1 over ``warmup_steps``, then
    constant, or a cosine from 1 down to ``lr_min_ratio`` at ``max_steps`` (Loshchilov & Hutter 2017, eq. 5)."""
    warm = max(1, cfg.warmup_steps)
    if step + 1 < warm:
        return (step + 1) / warm
    if cfg.lr_schedule == "constant":
        return 1.0
    progress = min(1.0, (step + 1 - warm) / max(1, cfg.max_steps - warm))
    return cfg.lr_min_ratio + (1.0 - cfg.lr_min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _release_precision(mixed_precision: str) -> None:
    """accelerate keeps one ``AcceleratorState`` per Python process and refuses a second ``Accelerator`` with another
    mixed precision ("restart your runtime"); a second training in the same process (a notebook, the tests) with
    another precision would fail. Only that state is dropped (the process group, ``PartialState``, is kept);
    accelerate has no public call for it."""
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision") not in (None, mixed_precision):
        AcceleratorState._reset_state(reset_partial_state=False)


class EpochShuffle(Sampler[int]):
    """A permutation of ``range(n)`` that depends only on ``(seed, epoch)``, so a resumed run sees the same
    order (torch's RandomSampler draws from a generator whose state we would otherwise have to carry)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class Trainer:
    """Trains ``Φθ`` with the incremental reconstruction loss on ``process``."""

    def __init__(
        self,
        net: torch.nn.Module,
        process: DegradationProcess,
        loss: IncrementalReconstructionLoss,
        train_set: Dataset,
        val_set: Dataset,
        config: TrainConfig,
        out_dir: str | Path,
        run_state: dict[str, Any],
        log_with: str | None = None,
        tracker_init: dict[str, Any] | None = None,
        project: str = "dirac",
    ) -> None:
        self.cfg = config
        self.process = process
        self.loss = loss
        self.out = Path(out_dir)
        self.ckpt_dir = self.out / "checkpoints"
        self.run_state = run_state  # config, model and data descriptions stored with every checkpoint
        _release_precision(config.mixed_precision)
        self.acc = Accelerator(
            mixed_precision=config.mixed_precision, cpu=config.cpu, log_with=log_with, project_dir=str(self.out)
        )
        set_seed(config.seed)
        if config.compile:
            net.compile_unet(config.compile_backend)  # in place: parameter names (checkpoints) unchanged
        self.model = Reconstructor(net, process.noise, process)
        if loss.teacher is not None and hasattr(loss.teacher, "to"):
            loss.teacher.to(self.acc.device)  # a distillation teacher (frozen) computes beside the model
        self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        # one scheduler step per optimiser step, on the global step: not handed to accelerate.prepare, whose
        # wrapper steps it once per process and would run the schedule num_processes times too fast
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: lr_factor(s, self.cfg))
        if len(train_set) < config.batch_size:
            raise ValueError(
                f"the training set has {len(train_set)} images, fewer than one batch of {config.batch_size}; "
                f"lower trainer.batch_size or add images"
            )
        self.sampler = EpochShuffle(len(train_set), config.seed)
        loader = DataLoader(
            train_set,
            batch_size=config.batch_size,
            sampler=self.sampler,
            drop_last=True,
            num_workers=config.num_workers,
            persistent_workers=False,
        )
        self.train_set = train_set
        self.model, self.opt, self.loader = self.acc.prepare(self.model, self.opt, loader)
        self.ema.to(self.acc.device)
        self.gen = torch.Generator(device=self.acc.device).manual_seed(config.seed * 7919 + 17 + self.acc.process_index)
        self.step = 0
        self.protected: set[Path] = set()  # resume source and any checkpoint newer than it: never deleted
        self._val_batch = self._fixed_val_batch(val_set)
        self.log_with = log_with
        if log_with:
            self.acc.init_trackers(project, config=run_state.get("config", {}), init_kwargs=tracker_init or {})

    # ----- validation -----
    def _fixed_val_batch(self, val_set: Dataset) -> dict[str, torch.Tensor]:
        n = min(self.cfg.val_images, len(val_set))
        x = torch.stack([val_set[i] for i in range(n)]).to(self.acc.device)
        g = torch.Generator(device=self.acc.device).manual_seed(1234)
        t = torch.rand(n, generator=g, device=self.acc.device).clamp_min(self.loss.t_min)
        return {"x": x, "t": t, "y_t": self.process.sample(x, t, g), "y": self.process.measure(x, g)}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Losses and PSNRs on the fixed validation batch, each process scoring its shard of the images
        (:func:`dirac.distributed.shard`) and the per-image values gathered, so the means are over every image;
        the main process also writes (and logs) a sample grid."""
        v = self._val_batch
        part = shard(len(v["x"]))
        x, t, y_t, y = (v[k][part.start : part.stop] for k in ("x", "t", "y_t", "y"))
        ema = self.ema.module.eval()
        raw = self.acc.unwrap_model(self.model).eval()
        one_shot = ema(y, torch.ones(len(y), device=y.device)).clamp(0, 1)
        per_image = {
            "val/loss": self.loss.per_sample(raw, x, t, y_t),
            "val/loss_ema": self.loss.per_sample(ema, x, t, y_t),
            "val/psnr_one_shot": psnr(one_shot, x),
            "val/psnr_measurement": psnr(y.clamp(0, 1), x),
        }
        parts = gather({k: val.detach().cpu() for k, val in per_image.items()})
        out = {k: torch.cat([p[k] for p in parts]).mean().item() for k in per_image}
        if self.acc.is_main_process:
            self._sample_grid(ema)
        raw.train()
        return out

    def _sample_grid(self, ema: torch.nn.Module) -> Path:
        """Clean | measurement | one-shot | ``sample_steps``-step sampler on up to 8 validation images (main only)."""
        v = self._val_batch
        k = min(8, len(v["x"]))
        one_shot = ema(v["y"][:k], torch.ones(k, device=v["y"].device)).clamp(0, 1)
        sampled = ReverseSampler(self.process, steps=self.cfg.sample_steps)(
            ema, v["y"][:k], torch.Generator(device=v["y"].device).manual_seed(0)
        ).output
        path = self.out / "samples" / f"step_{self.step:07d}.png"
        save_grid([v["x"][:k], v["y"][:k], one_shot, sampled], path, scale=2)
        if self.log_with == "wandb":
            log_image_files(self.acc.get_tracker("wandb", unwrap=True), {"samples": path}, self.step)
        return path

    # ----- checkpoints -----
    def save(self) -> Path | None:
        """Write ``checkpoints/step_N`` (main process, atomic, barriers around it) with every rank's RNG states;
        refuses when the ranks' weights differ (they must stay in sync). Returns the folder (``None`` off main)."""
        self.acc.wait_for_everyone()
        raw = self.acc.unwrap_model(self.model).net.state_dict()
        ranks = gather({"rng": to_cpu(rng_state(self.gen)), "weights": tensors_sha256(raw)})
        hashes = [r["weights"] for r in ranks]
        if len(set(hashes)) > 1:
            raise FloatingPointError(
                f"the weights of the {len(hashes)} processes differ at step {self.step} (SHA-256 {hashes}); "
                f"nothing was saved: the launch is broken (mixed devices or precisions?); resume from the last one"
            )
        state = {**self.run_state, "step": self.step, "process": self.process.to_dict(), "processes": len(ranks),
                 "effective_batch_size": self.cfg.batch_size * len(ranks),
                 "weights_sha256_per_rank": hashes}  # fmt: skip
        rng = ranks[0]["rng"] if len(ranks) == 1 else {"ranks": [r["rng"] for r in ranks]}
        folder = on_main(self._write, raw, rng, state)
        self.acc.wait_for_everyone()
        return folder if self.acc.is_main_process else None

    def _write(self, raw: dict[str, torch.Tensor], rng: dict[str, Any], state: dict[str, Any]) -> Path:
        name = f"step_{self.step:07d}"
        if (self.ckpt_dir / name).resolve() in self.protected:
            raise FileExistsError(
                f"{self.ckpt_dir / name} predates this run and would be overwritten; resume from the newest "
                f"checkpoint or train in another hydra.run.dir"
            )
        write_checkpoint(
            self.ckpt_dir / name,
            model=raw,
            ema=self.ema.module.net.state_dict(),
            optimizer={
                "optimizer": self.opt.state_dict(),
                "lr_scheduler": self.sched.state_dict(),
                "ema_n_averaged": self.ema.n_averaged,
            },
            rng=rng,
            state=state,
        )
        point_last(self.ckpt_dir, name)
        self.prune()
        return self.ckpt_dir / name

    def prune(self) -> list[Path]:
        """Keep the newest ``keep_checkpoints`` checkpoints by numeric step; never delete the target of
        ``last``, the checkpoint this run resumed from, or anything newer than it. Returns what was deleted."""
        found = list_checkpoints(self.ckpt_dir)
        last = self.ckpt_dir / "last"
        protected = self.protected | ({last.resolve()} if last.is_symlink() else set())
        deleted = []
        for p in found[: max(0, len(found) - self.cfg.keep_checkpoints)]:
            if p.resolve() not in protected:
                shutil.rmtree(p)
                deleted.append(p)
        return deleted

    def clean_partial_writes(self) -> list[Path]:
        """Remove the temporary folders a killed checkpoint write left behind (call it holding the run lock)."""
        stale = [p for p in self.ckpt_dir.glob(".tmp-step_*") if p.is_dir() and not p.is_symlink()]
        stale += [p for p in self.ckpt_dir.glob(".last-*") if p.is_symlink()]
        for p in stale:
            p.unlink() if p.is_symlink() else shutil.rmtree(p)
        return stale

    def weights_finite(self) -> bool:
        """Whether every raw and EMA parameter and buffer is finite."""
        raw = self.acc.unwrap_model(self.model).net.state_dict().values()
        ema = self.ema.module.net.state_dict().values()
        return all(bool(torch.isfinite(t).all()) for t in (*raw, *ema) if t.is_floating_point())

    def resume(self, folder: str | Path) -> None:
        """Restore weights, EMA, optimizer, LR schedule, RNG states and step from a checkpoint."""
        folder = Path(folder)
        state = read_state(folder)
        require_keys(state, ("step", "config", "process", "model"), folder)
        opt_state = load_nested(folder / "optimizer.safetensors", state)
        rng = load_nested(folder / "rng.safetensors", state)
        try:
            self.acc.unwrap_model(self.model).net.load_state_dict(read_weights(folder, ema=False))
            self.ema.module.net.load_state_dict(read_weights(folder, ema=True))
            self.opt.load_state_dict(opt_state["optimizer"])
            self.sched.load_state_dict(opt_state["lr_scheduler"])
            self.ema.n_averaged.copy_(opt_state["ema_n_averaged"])
            set_rng_state(self._own_rng(rng, folder), self.gen)
        except (RuntimeError, KeyError, TypeError, ValueError) as e:
            msg = " ".join(str(e).split())[:300]
            raise CheckpointError(f"cannot resume from {folder}: its states do not fit this run ({msg})") from None
        self.apply_optimiser_settings()
        self.step = int(state["step"])
        self._trim_log()
        newer = [p.resolve() for p in list_checkpoints(self.ckpt_dir) if (step_of(p) or 0) > self.step]
        self.protected = {folder.resolve(), *newer}

    def _own_rng(self, rng: dict[str, Any], folder: Path) -> dict[str, Any]:
        """This rank's RNG states from a checkpoint's ``rng`` (one state, or ``{"ranks": [...]}`` from several
        processes); the number of processes must not change, since each one's data shard and noise would."""
        states = rng["ranks"] if "ranks" in rng else [rng]
        if len(states) != self.acc.num_processes:
            raise CheckpointError(
                f"{folder} was written by {len(states)} process(es), this run has {self.acc.num_processes}; resume "
                f"with --num_processes {len(states)} (exact), or fine-tune from it with init_from={folder}"
            )
        return states[self.acc.process_index]

    def load_initial_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """Start from given network weights (raw and EMA alike; fresh optimiser state, step 0): fine-tuning."""
        for net in (self.acc.unwrap_model(self.model).net, self.ema.module.net):
            missing, unexpected = net.load_state_dict(weights, strict=False)  # a fitted input prior is not trained
            if set(missing) - set(PRIOR_BUFFERS) or unexpected:
                raise ValueError(
                    f"initial weights do not fit the network: missing {missing[:5]}, extra {unexpected[:5]}"
                )

    def apply_optimiser_settings(self) -> None:
        """Make the configured learning rate (and warm-up) rule after loading an optimizer/scheduler state,
        which would otherwise bring back the learning rate the checkpoint was trained with."""
        sched = self.sched
        factor = sched.lr_lambdas[0](sched.last_epoch)
        sched.base_lrs = [self.cfg.lr for _ in self.opt.param_groups]
        for g in self.opt.param_groups:
            g["initial_lr"] = self.cfg.lr
            g["lr"] = self.cfg.lr * factor
        sched._last_lr = [g["lr"] for g in self.opt.param_groups]

    # ----- loop -----
    def fit(self) -> dict[str, float]:
        cfg = self.cfg
        steps_per_epoch = len(self.loader)
        log_file = self.out / "train_log.jsonl"
        last_logs: dict[str, float] = {}
        bar = tqdm(
            total=cfg.max_steps,
            initial=self.step,
            disable=not (cfg.progress and self.acc.is_main_process),
            desc="train",
            dynamic_ncols=True,
        )
        t_last, step_last = time.perf_counter(), self.step
        running = 0.0
        self.model.train()
        while self.step < cfg.max_steps:
            epoch, skip = divmod(self.step, steps_per_epoch)
            if hasattr(self.train_set, "set_epoch"):
                self.train_set.set_epoch(epoch)
            loader = self.acc.skip_first_batches(self.loader, skip) if skip else self.loader
            # accelerate's loader re-seeds the sampler with its own iteration counter at every __iter__; pin
            # it to the true epoch so a resumed process (whose counter restarts at 0) sees the same order
            loader.set_epoch(epoch)
            for x0 in loader:
                running += self._update(x0)
                bar.update(1)
                end = self.step == cfg.max_steps
                if end or self.step % cfg.checkpoint_every == 0 or self.step % cfg.val_every == 0:
                    self._check_weights()  # before anything of these weights is saved
                logs: dict[str, float] = {}
                if self.step % cfg.log_every == 0 or end:
                    now = time.perf_counter()
                    n = self.step - step_last
                    logs = {
                        "train/loss": self._mean_over_ranks(running / max(n, 1)),
                        "lr": self.sched.get_last_lr()[0],
                        "train/images_per_s": n * cfg.batch_size * self.acc.num_processes / (now - t_last),
                    }
                    t_last, step_last, running = now, self.step, 0.0
                    bar.set_postfix(loss=f"{logs['train/loss']:.4g}")
                if cfg.val_every and (self.step % cfg.val_every == 0 or end):
                    logs.update(self.validate())
                if logs:
                    self._log(logs, log_file)
                    last_logs.update(logs)
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.max_steps:
                    self.save()
                if self.step >= cfg.max_steps:
                    break
        bar.close()
        self.acc.end_training()
        return last_logs

    def _update(self, x0: torch.Tensor) -> float:
        """One optimisation step on batch ``x0``; a non-finite loss stops before the weights change."""
        self._reseed()
        loss = self.loss(self.model, x0, self.gen)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"training loss became {loss.item()} at step {self.step}; lower trainer.lr, keep "
                f"trainer.grad_clip on, or check the data for NaNs. The last checkpoint is intact."
            )
        self.acc.backward(loss)
        if self.cfg.grad_clip > 0:
            self.acc.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        self.ema.update_parameters(self.acc.unwrap_model(self.model))
        self.step += 1
        return loss.item()

    def _mean_over_ranks(self, value: float) -> float:
        """The mean of a per-process number over every process (each saw its own shard of the batch)."""
        return self.acc.reduce(torch.tensor(float(value), device=self.acc.device), reduction="mean").item()

    def _check_weights(self) -> None:
        if not self.weights_finite():
            raise FloatingPointError(
                f"the weights became NaN/Inf at step {self.step}; nothing was saved for this step. Lower "
                f"trainer.lr or keep trainer.grad_clip on. The last checkpoint is intact."
            )

    def _trim_log(self) -> None:
        """Drop ``train_log.jsonl`` lines past the resumed step (a killed run logged steps it never saved), so
        the log of a resumed run has each step once; a torn last line from a kill is dropped too."""
        f = self.out / "train_log.jsonl"
        if not self.acc.is_main_process or not f.is_file():
            return
        kept = []
        for line in f.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("step"), int) and rec["step"] <= self.step:
                kept.append(line)
        atomic_write(f, "".join(k + "\n" for k in kept))

    def _reseed(self) -> None:
        """Seed the global torch RNG from ``(seed, step)`` alone, so dropout (and anything else drawing from it)
        does not depend on history: a resumed run draws exactly what the uninterrupted run drew."""
        word = SeedSequence([self.cfg.seed, self.step, self.acc.process_index]).generate_state(1)[0]
        torch.manual_seed(int(word))

    def _log(self, logs: dict[str, float], log_file: Path) -> None:
        self.acc.log(logs, step=self.step)
        if self.acc.is_main_process:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(log_file, "a") as f:  # append-only log; strict JSON, NaN/Inf as null
                f.write(to_json({"step": self.step, **logs}, nonfinite="null", indent=None) + "\n")


def train_config_from_dict(d: dict[str, Any]) -> TrainConfig:
    known = set(TrainConfig.__dataclass_fields__)
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown trainer keys {sorted(unknown)}; known: {sorted(known)}")
    return TrainConfig(**d)


__all__ = ["EpochShuffle", "TrainConfig", "Trainer", "lr_factor", "train_config_from_dict"]
