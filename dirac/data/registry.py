"""Name -> dataset factory, so Hydra configs can select a dataset by a string."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset

from .embedded import FaceCrops, PhotoCrops
from .folder import ImageFolderDataset

__all__ = ["available_datasets", "build_dataset", "register_dataset"]

_REGISTRY: dict[str, Callable[..., Dataset]] = {
    "photos": PhotoCrops,
    "faces": FaceCrops,
    "folder": ImageFolderDataset,
}


def available_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(_REGISTRY)


def register_dataset(name: str, factory: Callable[..., Dataset], overwrite: bool = False) -> None:
    """Register ``factory(split=..., **kwargs)`` under ``name``."""
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"dataset {name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[name] = factory


def build_dataset(name: str, split: str, **kwargs: Any) -> Dataset:
    """Build the dataset registered as ``name`` ('photos', 'faces', 'folder', ...) for ``split``.

    ``kwargs`` go to the dataset's constructor unchanged (e.g. ``root=`` and ``image_size=`` for 'folder').
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        known = ", ".join(available_datasets())
        raise ValueError(f"unknown dataset {name!r}; known datasets: {known}") from None
    return factory(split=split, **kwargs)
