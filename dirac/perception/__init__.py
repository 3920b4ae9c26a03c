"""Perception control after the fact: the few-shot Gaussian optimal-transport map (:mod:`.ot`)."""

from .ot import GaussianOT, PerceptionControlled, gaussian_ot_matrix, sqrtm_psd

__all__ = ["GaussianOT", "PerceptionControlled", "gaussian_ot_matrix", "sqrtm_psd"]
