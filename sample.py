"""``python sample.py [overrides]``: the same command as ``dirac-sample`` (see :mod:`dirac.cli.sample`)."""

from dirac.cli.sample import main

if __name__ == "__main__":
    main()
