"""Hydra command-line entry points: ``dirac-train`` / ``dirac-sample`` (also ``python train.py`` /
``python sample.py`` at the repository's top level). Configs are read from the package (``dirac.configs``)."""
