"""Train a DiracDiffusion model: ``python train.py experiment=blur_default [overrides]``.

Multi-GPU / multi-node: ``accelerate launch train.py …`` (same arguments). One training per run folder (a lock
on ``RUN/.dirac.lock``); resuming refuses a damaged ``checkpoints/last`` and a changed config unless
``resume_allow_changes=true``. Every error is one line (``error: …``) and a non-zero exit status.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dirac.checkpoint import list_checkpoints, require_keys, step_of, verify_checkpoint
from dirac.cli import hydra_command, hydra_record
from dirac.degradations import process_from_dict
from dirac.distributed import broadcast, init_processes, is_main, launched_ranks, on_main, shared_folder
from dirac.evaluation.outputs import MANIFEST
from dirac.factory import (
    LOSS_DEFAULTS,
    config_number,
    dataset_from_config,
    loss_from_config,
    model_from_config,
    process_from_config,
    schedule_from_config,
)
from dirac.io import atomic_write, to_json, write_json
from dirac.models import NCSNppConfig, Reconstructor, count_parameters
from dirac.models.gaussian_prior import fit_gaussian_prior, gaussian_fit_images
from dirac.models.ncsnpp import GAUSSIAN_INPUTS, PARAMETER_FREE, PRIOR_BUFFERS, stacked_input
from dirac.runlock import hold_run_folder
from dirac.shipped import refuse_shipped, resolve_checkpoint
from dirac.tracking import project_of, require_wandb, wandb_init_kwargs
from dirac.training import TrainConfig, Trainer, train_config_from_dict

log = logging.getLogger("dirac.train")

# keys that may differ on resume without resume_allow_changes: they change neither the weights nor the RNG draws
SAFE_TO_CHANGE = (
    "trainer.max_steps",
    "trainer.log_every",
    "trainer.val_every",
    "trainer.checkpoint_every",
    "trainer.keep_checkpoints",
    "trainer.progress",
    "trainer.val_images",
    "trainer.sample_steps",
    "trainer.num_workers",
    "trainer.compile",  # the same network, traced: equal to float tolerance, not bit for bit
    "trainer.compile_backend",
    "logger",
    "resume",
    "resume_allow_changes",
    "init_from",
    "init_new_input",
)
# keys added after runs existed: a run whose config lacks one was trained with this value (its code default)
ADDED_LATER = {
    "loss.t_final_prob": LOSS_DEFAULTS["t_final_prob"],
    "loss.norm": LOSS_DEFAULTS["norm"],
    "loss.teacher": LOSS_DEFAULTS["teacher"],
    "loss.teacher_weight": LOSS_DEFAULTS["teacher_weight"],
    "loss.teacher_group": LOSS_DEFAULTS["teacher_group"],
    "data.train.random_rotation": False,
    "data.train.random_aspect": None,
    "model.gaussian_shrinkage": NCSNppConfig.gaussian_shrinkage,
    "model.gaussian_smoothness": NCSNppConfig.gaussian_smoothness,
}
# what a checkpoint cannot continue under at all: the weights' shapes and the degradation process they learned
NEVER_CHANGE = ("model", "degradation", "schedule")


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def config_diff(old: dict[str, Any], new: dict[str, Any], ignore: tuple[str, ...] = SAFE_TO_CHANGE) -> list[str]:
    """``["trainer.lr: 0.001 -> 0.01", …]`` for every dotted key whose value differs, except ``ignore``d ones; a
    key of :data:`ADDED_LATER` absent from either counts as its default there."""
    a, b = ({**ADDED_LATER, **_flatten(c)} for c in (old, new))
    missing = object()
    lines = []
    for key in sorted(set(a) | set(b)):
        if any(key == s or key.startswith(s + ".") for s in ignore):
            continue
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            show = [("(absent)" if v is missing else to_json(v, nonfinite="null", indent=None)) for v in (va, vb)]
            lines.append(f"{key}: {show[0]} -> {show[1]}")
    return lines


def _intact_list(ckpt_dir: Path) -> list[Path]:
    out = []
    for p in list_checkpoints(ckpt_dir):
        try:
            verify_checkpoint(p, training=True)
            out.append(p)
        except (OSError, ValueError):
            pass
    return out


def _stop_with_choices(ckpt_dir: Path, problem: str) -> ValueError:
    intact = _intact_list(ckpt_dir)
    if not intact:
        return ValueError(f"{problem}, and {ckpt_dir} holds no intact checkpoint; start afresh in another run folder")
    names = ", ".join(p.name for p in intact)
    return ValueError(f"{problem}; intact checkpoints: {names}; resume with resume={intact[-1]} (or another of them)")


def _auto_resume_point(ckpt_dir: Path) -> Path | None:
    """``checkpoints/last`` when it is intact and the newest; ``None`` for a fresh folder; else a clear stop."""
    last = ckpt_dir / "last"
    found = list_checkpoints(ckpt_dir)
    if not found and not last.is_symlink() and not last.exists():
        return None
    if not last.is_symlink() and not last.exists():
        raise _stop_with_choices(ckpt_dir, f"{ckpt_dir} has checkpoints but no 'last'")
    try:
        verify_checkpoint(last, training=True)
    except (OSError, ValueError) as e:
        raise _stop_with_choices(ckpt_dir, f"{last} is dangling or damaged ({e})") from None
    if found and found[-1].resolve() != last.resolve():
        raise _stop_with_choices(ckpt_dir, f"{last} -> {os.readlink(last)} is not the newest checkpoint")
    return last


def resume_point(c: dict[str, Any], out: Path) -> Path | None:
    """The checkpoint to continue from (``resume`` = auto | never | PATH), or ``None`` to start at step 0."""
    ckpt_dir = out / "checkpoints"
    resume = c.get("resume", "auto")
    has_any = bool(list_checkpoints(ckpt_dir)) or (ckpt_dir / "last").is_symlink()
    if resume == "auto":
        return _auto_resume_point(ckpt_dir)
    if resume in ("never", None):
        if has_any:
            raise ValueError(
                f"{out} already holds checkpoints and resume=never; use resume=auto to continue it or pick "
                f"another hydra.run.dir"
            )
        return None
    path = Path(str(resume))
    verify_checkpoint(path, training=True)
    inside = path.resolve().parent == ckpt_dir.resolve()
    if has_any and not inside:
        raise ValueError(f"{out} already holds checkpoints of another run; resume {path} in an empty hydra.run.dir")
    newer = [p.name for p in list_checkpoints(ckpt_dir) if (step_of(p) or 0) > (step_of(path.resolve()) or 0)]
    if inside and newer:
        raise ValueError(
            f"{ckpt_dir} holds checkpoints newer than {path} ({', '.join(newer)}) that training on would replace; "
            f"resume from the newest, or copy {path} to another hydra.run.dir and resume there"
        )
    return path


def _comparable(key: str, value: Any) -> Any:
    """A config group as resuming compares it: the model with its defaults filled (a model key added to the
    configs later, e.g. ``gaussian_shrinkage``, does not stop an older run from resuming)."""
    if key == "model" and isinstance(value, dict):
        return NCSNppConfig.from_dict(dict(value)).to_dict()
    return value


def check_resume(state: dict[str, Any], c: dict[str, Any], where: Path, tcfg: TrainConfig) -> list[str]:
    """Refuse to continue under a changed config (the diff is in the message) unless ``resume_allow_changes``;
    never under another model, degradation or schedule. Returns the changes that will be applied."""
    require_keys(state, ("step", "config", "process", "model"), where)
    old = state["config"]
    for key in NEVER_CHANGE:
        if _comparable(key, old.get(key)) != _comparable(key, c.get(key)):
            raise ValueError(
                f"checkpoint {where} was trained with {key}={to_json(old.get(key), indent=None)}, but this run asks "
                f"for {key}={to_json(c.get(key), indent=None)}; start a new run (another hydra.run.dir) or use the "
                f"checkpoint's settings"
            )
    step = int(state["step"])
    if tcfg.max_steps < step:
        raise ValueError(
            f"trainer.max_steps={tcfg.max_steps} is below the step of {where} ({step}); pass trainer.max_steps>={step}"
        )
    diff = config_diff(old, c)
    if diff and c.get("resume_allow_changes") is not True:
        raise ValueError(
            f"the config differs from the one {where} was trained with: {'; '.join(diff)}; pass "
            f"resume_allow_changes=true to continue with these changes, or drop them"
        )
    return diff


def _process(c: dict[str, Any], state: dict[str, Any] | None, train_set: Any):
    if state is not None:
        return process_from_dict(state["process"])  # keeps the schedule computed when the run started
    process = process_from_config(c["degradation"])
    n = min(config_number(c["schedule"], "num_images", "schedule", int, 64), len(train_set))
    images = torch.stack([train_set[i] for i in range(n)])
    return process.with_schedule(schedule_from_config(process, images, c["schedule"]))


def _load_named(key: str, source: str) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """The checkpoint folder or shipped model that config key ``key`` names, from its EMA weights:
    ``(Reconstructor, process, state, record {path, weights fingerprint})``; a bad one is named in one line."""
    from dirac.factory import load_checkpoint
    from dirac.stopping_choice import weights_fingerprint

    try:
        folder = resolve_checkpoint(source)
        model, process, state = load_checkpoint(folder, ema=True)
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"{key}={source}: {' '.join(str(e).split())}") from None
    return model, process, state, {"path": str(source), "weights": weights_fingerprint(folder, ema=True)}


def _init_source(c: dict[str, Any]) -> tuple[dict[str, torch.Tensor], Any, dict[str, Any]] | None:
    """``init_from`` (fine-tuning): the EMA weights of a checkpoint folder or shipped model, its process when this
    run's degradation and schedule configs equal the ones it was trained with (so t keeps its meaning; ``None``:
    compute a fresh schedule), and a record for the run state. ``None`` when ``init_from`` is unset."""
    source = c.get("init_from")
    if not source:
        return None
    model, process, state, record = _load_named("init_from", source)
    theirs, ours = (NCSNppConfig.from_dict(dict(m)) for m in (state["model"], c["model"]))  # defaults filled
    # dropout (a regulariser) and the network's input (what it refines) own no parameters: the architecture check
    # ignores them; a change of input still needs init_new_input=true (_check_init_input)
    free = {k: getattr(NCSNppConfig(), k) for k in PARAMETER_FREE}
    if replace(theirs, **free) != replace(ours, **free):
        raise ValueError(
            f"init_from={source} holds a network of another architecture (its model config differs from this "
            f"run's model group); pick the same model=... it was trained with"
        )
    _check_init_input(source, theirs, ours, c)
    old = state.get("config") or {}
    same = old.get("degradation") == c["degradation"] and old.get("schedule") == c["schedule"]
    weights = {k: v for k, v in model.net.state_dict().items() if k not in PRIOR_BUFFERS}  # this run fits its own
    if ours.input == "tikhonov_gaussian" and theirs.input == "tikhonov":  # start as the source, on its estimate
        weights = stacked_input(weights)
    return weights, (process if same else None), {**record, "schedule_kept": same}


def _check_init_input(source: str, theirs: NCSNppConfig, ours: NCSNppConfig, c: dict[str, Any]) -> None:
    """A fine-tune keeps the input its weights were trained on unless ``init_new_input=true``: the model group's
    default (``measurement``) would otherwise silently replace, e.g., a shipped model's Tikhonov input."""
    a, b = theirs.input_settings(), ours.input_settings()
    if a == b:
        return
    if c.get("init_new_input") is True:  # allowed, but said: a setting left at its group default is a change too
        changed = ", ".join(f"{k} {a.get(k, '-')} -> {b.get(k, '-')}" for k in sorted(a | b) if a.get(k) != b.get(k))
        log.warning("init_from=%s: the network input changes (init_new_input=true): %s", source, changed)
        return
    keep = " ".join(f"model.{k}={v}" for k, v in a.items())
    raise ValueError(
        f"init_from={source} was trained on another network input ({a} -> this run's {b}); pass {keep} to keep "
        f"it, or init_new_input=true to retrain the network on the new input"
    )


def _fit_gaussian_input(net: Any, train_set: Any) -> None:
    """Fit the prior ``(μ, Σ)`` of a Gaussian-input network on the training items (a fresh run; a
    resumed run keeps the one in its checkpoint)."""
    cfg = net.config
    images = gaussian_fit_images(train_set)
    if tuple(images.shape[1:]) != (cfg.channels, cfg.image_size, cfg.image_size):
        raise ValueError(
            f"model.input={cfg.input} fits a prior on {cfg.channels}x{cfg.image_size}x{cfg.image_size} images but the "
            f"training items are {'x'.join(map(str, images.shape[1:]))}; set data.image_size=model.image_size"
        )
    net.set_gaussian_prior(*fit_gaussian_prior(images, cfg.gaussian_shrinkage, cfg.gaussian_smoothness))
    log.info(
        "Gaussian input prior fitted on %d training items (ρ=%g, ε=%g)",
        len(images), cfg.gaussian_shrinkage, cfg.gaussian_smoothness,
    )  # fmt: skip


def _load_teacher(c: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]] | None:
    """``loss.teacher`` (self-ensemble distillation): ``(Reconstructor, its process, record for the run state)``
    from the EMA weights of a checkpoint folder or shipped model; ``None`` when unset."""
    source = c["loss"].get("teacher")
    if not source:
        return None
    model, process, _, record = _load_named("loss.teacher", source)
    return model, process, {**record, "group": c["loss"].get("teacher_group", LOSS_DEFAULTS["teacher_group"])}


def _distillation_teacher(c: dict[str, Any], loaded: tuple[Any, Any, dict[str, Any]] | None, process: Any) -> Any:
    """The :class:`~dirac.distillation.SelfEnsembleTeacher` of a loaded ``loss.teacher``, refused unless it was
    trained on this run's process (the same ``A_t`` and ``σ(t)``, so its ``t`` means this run's ``t``)."""
    if loaded is None:
        return None
    from dirac.distillation import SelfEnsembleTeacher

    model, theirs, record = loaded
    if theirs.to_dict() != process.to_dict():
        raise ValueError(
            f"loss.teacher={record['path']} was trained on another degradation process or schedule than this run; "
            f"distil a model of the same degradation and schedule (e.g. the one named in init_from)"
        )
    return SelfEnsembleTeacher(model, process, record["group"])


def train(c: dict[str, Any], out: Path, on_start: Callable[[], None] | None = None) -> dict[str, Any]:
    """Train (or resume) the run in ``out`` with the resolved config ``c``; returns the summary. ``on_start`` runs
    once every check has passed, before the first file is written."""
    for key in ("resume_allow_changes", "init_new_input"):
        if not isinstance(c.get(key, False), bool):
            raise ValueError(f"{key} must be true or false, got {c[key]!r}")
    tcfg = train_config_from_dict(c["trainer"])  # first: a bad trainer value is named before any work
    resume_from = resume_point(c, out)
    state = None
    changes: list[str] = []
    if resume_from is not None:
        state = verify_checkpoint(resume_from, training=True)
        changes = check_resume(state, c, resume_from, tcfg)
    torch.manual_seed(tcfg.seed)  # reproducible initial weights
    net = model_from_config(c["model"])  # a size the network cannot take fails before any data work
    configured = process_from_config(c["degradation"])
    loss_from_config(configured, c["loss"])  # bad values fail before the schedule,
    Reconstructor(net, configured.noise, configured)  # and so does a network input this process cannot feed
    init = _init_source(c) if resume_from is None else None  # a resumed run already holds its weights
    loaded_teacher = _load_teacher(c)
    train_set = dataset_from_config(c["data"], "train")
    val_set = dataset_from_config(c["data"], "val")
    if init is not None and init[1] is not None:
        process = init[1]
    else:  # the main process's schedule on every rank (a data-dependent computation must not differ per device)
        process = broadcast(_process(c, state, train_set) if is_main() else None)
    teacher = _distillation_teacher(c, loaded_teacher, process)
    if net.config.input in GAUSSIAN_INPUTS and resume_from is None:
        _fit_gaussian_input(net, train_set)
    run_state = _run_state(c, state, changes, init, loaded_teacher)
    trainer = _make_trainer(c, tcfg, net, process, train_set, val_set, out, run_state, teacher)  # refusals first
    on_main(atomic_write, out / TRAINING_MARK, "the run folder of a dirac training\n")  # before any other file
    if on_start is not None:
        on_start()
    on_main(write_json, out / "schedule.json", process.schedule.to_dict())
    log.info("model: %.2f M parameters; process: %s", count_parameters(net) / 1e6, process)
    on_main(trainer.clean_partial_writes)  # leftovers of a killed write (the main process holds the run lock)
    if init is not None:
        trainer.load_initial_weights(init[0])
        log.info("initial weights from %s", init[2]["path"])
    if resume_from is not None:
        trainer.resume(resume_from)
        log.info("resuming from %s at step %d%s", resume_from, trainer.step, f"; applied {changes}" if changes else "")
    try:
        logs = trainer.fit()
    except FloatingPointError as e:
        last = out / "checkpoints" / "last"
        where = f"{last} -> {os.readlink(last)}" if last.is_symlink() else "no checkpoint was written"
        raise FloatingPointError(f"{e} ({where})") from None
    summary = {"step": trainer.step, "checkpoint": str(out / "checkpoints" / "last"), **logs}
    summary["processes"] = trainer.acc.num_processes
    summary["effective_batch_size"] = tcfg.batch_size * trainer.acc.num_processes
    on_main(write_json, out / "train_summary.json", summary, nonfinite="null")
    return summary


def _run_state(c: dict[str, Any], state: dict[str, Any] | None, changes: list[str], init: Any, teacher: Any) -> dict:
    """What every checkpoint of this run records besides its step: the config, where the initial weights and the
    teacher came from, and the config changes applied on each resume."""
    run_state = {"config": c, "model": c["model"], "data": c["data"]}
    if teacher is not None:
        run_state["teacher"] = teacher[2]
    if init is not None:
        run_state["init_from"] = init[2]
    elif state is not None and "init_from" in state:
        run_state["init_from"] = state["init_from"]
    if state is not None:
        history = list(state.get("config_changes", []))
        run_state["config_changes"] = history + ([{"step": state["step"], "changes": changes}] if changes else [])
    return run_state


def _make_trainer(c, tcfg, net, process, train_set, val_set, out, run_state, teacher=None) -> Trainer:
    logger = c.get("logger", {"backend": "none"})
    log_with = "wandb" if logger["backend"] == "wandb" else None
    tracker_init = {}
    if log_with:
        require_wandb()
        tracker_init = {"wandb": wandb_init_kwargs(logger, out)}
    return Trainer(
        net,
        process,
        loss_from_config(process, c["loss"], teacher),
        train_set,
        val_set,
        tcfg,
        out,
        run_state=run_state,
        log_with=log_with,
        tracker_init=tracker_init,
        project=project_of(logger),
    )


TRAINING_FILES = (
    ".hydra/config.yaml",
    ".hydra/overrides.yaml",
    "schedule.json",
    "train_log.jsonl",
    "train_summary.json",
)
"""Files of fixed names a training writes at the top of its run folder (besides ``checkpoints/`` and ``samples/``)."""


TRAINING_MARK = "checkpoints/.dirac-training"
"""Written by a training before its first other file (a refused run writes none): the folder is a dirac training's."""


def earlier_training(out: Path) -> bool:
    """Whether a dirac training has written into ``out``: its mark, or (a run of a dirac before the mark)
    ``step_N`` checkpoints."""
    return (out / TRAINING_MARK).is_file() or bool(list_checkpoints(out / "checkpoints"))


def check_training_folder(out: Path) -> None:
    """Refuse a run folder whose files training would replace without having written them: another command's
    outputs (a ``manifest.json``, as ``sample.py`` writes), a file where training makes a folder or, where no dirac
    training wrote before (:func:`earlier_training`), a file of a name training writes (:data:`TRAINING_FILES`,
    ``samples/``)."""
    if (out / MANIFEST).exists():
        raise FileExistsError(
            f"{out} holds another dirac command's outputs ({MANIFEST}, as sample.py writes); train into a folder of "
            f"its own (hydra.run.dir=...)"
        )
    for folder in (".hydra", "checkpoints", "samples"):
        if (out / folder).exists() and not (out / folder).is_dir():
            raise FileExistsError(
                f"{out / folder} is a file where training makes its {folder}/ folder; move it, or choose "
                f"another folder (hydra.run.dir=...)"
            )
    if earlier_training(out):
        return
    taken = [rel for rel in TRAINING_FILES if (out / rel).exists() or (out / rel).is_symlink()]
    if (out / "samples").is_dir() and any((out / "samples").iterdir()):
        taken.append("samples/")
    if taken:
        raise FileExistsError(
            f"{out / taken[0]} was not written by a dirac training and this run would replace it; move it (or, "
            f"from a training interrupted before its first checkpoint, delete it), or choose another folder "
            f"(hydra.run.dir=...)"
        )


def _write_record(record: dict[str, str], out: Path) -> None:
    for rel, text in record.items():
        atomic_write(out / rel, text)


def run(cfg: DictConfig, out: Path, record: bool = True) -> dict[str, Any]:
    """Hold the run folder (lock, main process), record the config and train; any error is a one-line
    ``SystemExit``. Under ``accelerate launch`` / ``torchrun`` every process joins the group here and works in
    the main process's run folder."""
    try:
        c = OmegaConf.to_container(cfg, resolve=True)
        if launched_ranks() > 1:
            init_processes(cpu=(c.get("trainer") or {}).get("cpu") is True)
            out = shared_folder(out)
        on_main(refuse_shipped, out, "train")  # before the lock file is made in it
        with hold_run_folder(out):
            on_main(check_training_folder, out)
            record_it = (lambda: _write_record(hydra_record(cfg), out)) if record and is_main() else None
            return train(c, out, on_start=record_it)
    except (ValueError, TypeError, KeyError, OSError, FloatingPointError, OmegaConfBaseException) as e:
        raise SystemExit(f"error: {' '.join(str(e).split())}") from None


@hydra.main(config_path="pkg://dirac.configs", config_name="train", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    summary = run(cfg, Path(HydraConfig.get().runtime.output_dir))
    print(to_json(summary, nonfinite="null"))


def main() -> None:
    """``train.py``, ``dirac-train``: the Hydra application as dirac's command (:func:`~dirac.cli.hydra_command`)."""
    hydra_command(_main)


if __name__ == "__main__":
    main()
