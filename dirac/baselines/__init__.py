"""Classical baselines on the SDP's own operator objects (the peers of the paper's comparison).

* :func:`tikhonov` / :func:`best_lambda_tikhonov`: Laplacian- (or gradient-, identity-) regularised least
  squares solved exactly by batched conjugate gradient;
* :func:`admm_tv` / :func:`best_lambda_tv`: total-variation reconstruction by ADMM;
* :mod:`.linalg`: batched CG and Neumann finite differences shared by both.

The ``best_lambda_*`` helpers choose λ with the ground truth: they are oracle upper bounds.
"""

from .admm_tv import TV_LAMBDAS, admm_tv, best_lambda_tv, shrink, total_variation, tv_objective
from .linalg import CGInfo, batch_dot, conjugate_gradient, gradient, gradient_adjoint, neg_laplacian
from .tikhonov import (
    REGULARISERS,
    TIKHONOV_LAMBDAS,
    best_lambda_tikhonov,
    regulariser_gram,
    tikhonov,
    tikhonov_operator,
)

__all__ = [
    "CGInfo",
    "REGULARISERS",
    "TIKHONOV_LAMBDAS",
    "TV_LAMBDAS",
    "admm_tv",
    "batch_dot",
    "best_lambda_tikhonov",
    "best_lambda_tv",
    "conjugate_gradient",
    "gradient",
    "gradient_adjoint",
    "neg_laplacian",
    "regulariser_gram",
    "shrink",
    "tikhonov",
    "tikhonov_operator",
    "total_variation",
    "tv_objective",
]
