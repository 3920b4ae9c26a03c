"""Small argument checks shared by the dataset modules (private)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def check_index(index: int, length: int) -> int:
    index = int(index)
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"index {index} out of range for a dataset of {length} items")
    return index


def float_pair(value: Sequence[float] | None, name: str) -> tuple[float, float] | None:
    if value is None:
        return None
    lo, hi = (float(v) for v in value)
    if not 0 < lo <= hi:
        raise ValueError(f"{name} must be (lo, hi) with 0 < lo <= hi, got {(lo, hi)}")
    return lo, hi


def epoch_items(dataset: object, epochs: int, limit: int) -> torch.Tensor:
    """The first ``limit`` items of epochs ``0..epochs-1`` stacked (a training set's per-epoch augmentations, e.g.
    random flips, differ between epochs); the dataset is left at epoch 0. Deterministic for a seeded dataset."""
    n = min(len(dataset), int(limit))  # type: ignore[arg-type]
    set_epoch = getattr(dataset, "set_epoch", lambda epoch: None)
    items = []
    for epoch in range(int(epochs)):
        set_epoch(epoch)
        items += [dataset[i] for i in range(n)]  # type: ignore[index]
    set_epoch(0)
    return torch.stack(items)
