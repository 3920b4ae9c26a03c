"""Several processes (``accelerate launch`` / ``torchrun``): who this process is, sharding and gathering.

Everything here is a no-op in a single process, so library code calls it unconditionally. Conventions:

* rank 0 (the *main* process) alone writes files; every rank computes;
* a set of ``N`` items is split into contiguous shards, rank ``r`` taking ``[r·N/W, (r+1)·N/W)``, so that
  concatenating the ranks' results in rank order gives the single-process order back;
* gathered results are Python objects (``torch.distributed.all_gather_object``): every rank receives all of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """``(rank, world size)`` of the initialised process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def launched_ranks() -> int:
    """World size a launcher announced in the environment (``WORLD_SIZE``, set by torchrun/accelerate), 1 if none."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def is_main() -> bool:
    """Whether this process writes files: rank 0, or the only process."""
    rank, _ = world()
    return rank == 0 and int(os.environ.get("RANK", "0") or 0) == 0


def init_processes(cpu: bool = False) -> torch.device:
    """Join the process group a launcher set up (gloo on CPU, NCCL on GPUs, via ``accelerate.PartialState``) and
    return this process's device; a plain ``python`` run stays one process (CUDA when available unless ``cpu``)."""
    from accelerate import PartialState

    return PartialState(cpu=cpu).device


def shard(n: int) -> range:
    """This rank's contiguous share of ``range(n)`` (sizes differ by at most one; ``rank < n % W`` get one more)."""
    rank, size = world()
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return range(lo, lo + base + (1 if rank < extra else 0))


def gather(obj: Any) -> list[Any]:
    """Every rank's ``obj`` in rank order (tensors should be on the CPU); ``[obj]`` in a single process."""
    _, size = world()
    if size == 1:
        return [obj]
    out: list[Any] = [None] * size
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj: Any) -> Any:
    """The main process's ``obj`` on every rank (``obj`` itself in a single process)."""
    _, size = world()
    if size == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait for every rank (nothing in a single process)."""
    if world()[1] > 1:
        dist.barrier()


def on_main(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` on the main process only (a write, a check); every rank returns its result or raises
    its error (same type and message), so no rank waits forever for a peer that failed. Plain call in one process."""
    if world()[1] == 1:
        return fn(*args, **kwargs)
    result, failure = None, None
    if is_main():
        try:
            result = fn(*args, **kwargs)
        except Exception as e:  # re-raised below on every rank
            failure = (type(e), str(e))
    result, failure = broadcast((result, failure))
    if failure is not None:
        try:
            error = failure[0](failure[1])
        except Exception:  # an exception type that needs other arguments
            error = RuntimeError(failure[1])
        raise error
    return result


def shared_folder(path: str | Path) -> Path:
    """The main process's ``path`` on every rank: Hydra's default run folder holds the launch time, which the
    ranks may resolve a second apart, so every rank writes (and reads) where rank 0 does."""
    return Path(broadcast(str(path)))


def to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor (in nested dicts, lists and tuples) moved to the CPU, ready for :func:`gather`."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


__all__ = [
    "barrier",
    "broadcast",
    "gather",
    "init_processes",
    "is_main",
    "launched_ranks",
    "on_main",
    "shard",
    "shared_folder",
    "to_cpu",
    "world",
]
