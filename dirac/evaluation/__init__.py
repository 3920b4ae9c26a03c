"""Evaluation: run any :class:`~dirac.reconstruction.Restorer` over a dataset, sweep early stopping, compare
methods, summarise and write outputs. ``sample.py`` is a thin CLI over these modules.

* :mod:`.restorers` — :class:`SamplerRestorer` (Dirac), :class:`TikhonovRestorer`, :class:`AdmmTvRestorer`
* :mod:`.runner` — batches, samples per measurement, per-image noise, mixed image sizes
* :mod:`.tuning` / :mod:`.methods` — hyper-parameters tuned on the validation split; the registry of compared methods
* :mod:`.sweep` / :mod:`.compare` — DO/PO chosen on val, every method evaluated on test
* :mod:`.compare_mode` (``mode=tune`` / ``mode=compare``), :mod:`.peers` (networks, tuned files),
  :mod:`.intervals` (bootstrap), :mod:`.compare_table`, :mod:`.compare_figures` — Dirac and its peers on test
* :mod:`.summary`, :mod:`.write`, :mod:`.figures`, :mod:`.outputs` — summaries, images, figures, the manifest
* :mod:`.settings`, :mod:`.measurements` — checked CLI values and measurement folders
"""

from __future__ import annotations

import importlib
from typing import Any

# names -> submodule; imported on first use (PEP 562), so validating CLI values needs no network code
_EXPORTS = {
    "modes": "", "RunSettings": "compare", "compare": "compare", "METHODS": "methods", "Method": "methods",
    "register_method": "methods", "Resources": "methods", "Context": "modes", "OutputFolder": "outputs",
    "AdmmTvRestorer": "restorers",
    "SamplerRestorer": "restorers", "TikhonovRestorer": "restorers", "RunResult": "runner",
    "run_restorer": "runner", "check_settings": "settings", "tune": "tuning",
}  # fmt: skip
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dirac.evaluation' has no attribute {name!r}")
    module = importlib.import_module(f".{_EXPORTS[name] or name}", __name__)
    return module if not _EXPORTS[name] else getattr(module, name)
