"""``python train.py [overrides]``: the same command as ``dirac-train`` (see :mod:`dirac.cli.train`)."""

from dirac.cli.train import main

if __name__ == "__main__":
    main()
