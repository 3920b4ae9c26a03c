"""Networks: NCSN++ (diffusers) and the t -> σ(t) adapter."""

from .ncsnpp import PRESETS, NCSNpp, NCSNppConfig, build_ncsnpp, count_parameters
from .reconstructor import Reconstructor

__all__ = ["NCSNpp", "NCSNppConfig", "PRESETS", "Reconstructor", "build_ncsnpp", "count_parameters"]
