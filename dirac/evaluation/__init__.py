"""Evaluation: run any :class:`~dirac.reconstruction.Restorer` over a dataset, sweep early stopping, compare
methods, summarise and write outputs. ``sample.py`` is a thin CLI over these modules.

* :mod:`.restorers` — :class:`SamplerRestorer` (Dirac), :class:`TikhonovRestorer`, :class:`AdmmTvRestorer`
* :mod:`.runner` — batches, samples per measurement, per-image noise, mixed image sizes
* :mod:`.tuning` / :mod:`.methods` — λ tuned on the validation split; the registry of compared baselines
* :mod:`.sweep` / :mod:`.compare` — DO/PO chosen on val, every method evaluated on test
* :mod:`.summary`, :mod:`.write`, :mod:`.figures`, :mod:`.outputs` — summaries, images, figures, the manifest
* :mod:`.settings`, :mod:`.measurements` — checked CLI values and measurement folders
"""

from . import modes
from .compare import RunSettings, compare
from .methods import BASELINES, Baseline, register_baseline
from .modes import Context
from .outputs import OutputFolder
from .restorers import AdmmTvRestorer, SamplerRestorer, TikhonovRestorer
from .runner import RunResult, run_restorer
from .settings import check_settings
from .tuning import tune_lambda

__all__ = [
    "BASELINES",
    "AdmmTvRestorer",
    "Baseline",
    "Context",
    "OutputFolder",
    "RunResult",
    "RunSettings",
    "SamplerRestorer",
    "TikhonovRestorer",
    "check_settings",
    "compare",
    "modes",
    "register_baseline",
    "run_restorer",
    "tune_lambda",
]
