"""Package layout that pyproject.toml cannot express: the top-level ``configs/`` and ``pretrained/`` folders
ship inside the wheel as the package data ``dirac.configs`` and ``dirac.pretrained`` (found by name from any
working directory), while staying at the repository's top level for people who browse it."""

from setuptools import find_packages, setup

DATA_PACKAGES = {"dirac.configs": "configs", "dirac.pretrained": "pretrained"}

setup(packages=find_packages(include=["dirac", "dirac.*"]) + list(DATA_PACKAGES), package_dir=DATA_PACKAGES)
