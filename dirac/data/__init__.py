"""Datasets returning float ``(C, H, W)`` tensors in [0, 1]: image folders and embedded defaults.

* :class:`ImageFolderDataset` / :class:`MeasurementFolderDataset` — the user's own images.
* :class:`PhotoCrops` / :class:`FaceCrops` — defaults built from images shipped with scikit-image.
* :func:`build_dataset` — select by name ('photos', 'faces', 'folder') from configs.
"""

from .embedded import (
    TEST_PHOTOS,
    TRAIN_GREY_PHOTOS,
    TRAIN_RGB_PHOTOS,
    VAL_PHOTOS,
    FaceCrops,
    PhotoCrops,
    load_faces,
    load_photo,
    photo_names,
)
from .folder import DEFAULT_EXTENSIONS, ImageFolderDataset, MeasurementFolderDataset, find_images, split_of
from .registry import available_datasets, build_dataset, register_dataset
from .transforms import load_image, to_channels

__all__ = [
    "DEFAULT_EXTENSIONS",
    "TEST_PHOTOS",
    "TRAIN_GREY_PHOTOS",
    "TRAIN_RGB_PHOTOS",
    "VAL_PHOTOS",
    "FaceCrops",
    "ImageFolderDataset",
    "MeasurementFolderDataset",
    "PhotoCrops",
    "available_datasets",
    "build_dataset",
    "find_images",
    "load_faces",
    "load_image",
    "load_photo",
    "photo_names",
    "register_dataset",
    "split_of",
    "to_channels",
]
