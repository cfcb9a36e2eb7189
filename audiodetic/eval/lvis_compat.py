"""Importing lvis-api 0.5.3 without OpenCV and running it on NumPy 2.

``lvis/__init__.py`` imports ``lvis.vis``, which needs ``cv2`` (opencv-python, not a dependency of audiodetic;
the README installs ``lvis`` with ``--no-deps``). Evaluation only needs ``lvis.lvis``, ``lvis.results`` and
``lvis.eval``, which need NumPy and pycocotools. When the package ``__init__`` fails on ``cv2`` we register an
empty package object for ``lvis`` with the installed package's search path, so the three submodules import
without it. ``LVISEval.accumulate`` uses the ``np.float`` alias that NumPy removed in 1.24;
:func:`numpy_float_alias` provides it for the duration of a call only.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from typing import Any, Iterator

import numpy as np

INSTALL_HINT = "LVIS evaluation needs lvis-api: pip install --no-deps lvis==0.5.3"


def _install_package_stub() -> None:
    spec = importlib.util.find_spec("lvis")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(INSTALL_HINT)
    package = types.ModuleType("lvis")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__file__ = spec.origin
    sys.modules["lvis"] = package


def import_lvis() -> tuple[Any, Any, Any]:
    """``(LVIS, LVISResults, LVISEval)`` from lvis-api, with or without OpenCV installed."""
    try:
        import lvis  # noqa: F401  (works when opencv is installed)
    except ModuleNotFoundError as error:
        if error.name == "lvis":
            raise ImportError(INSTALL_HINT) from None
        if error.name != "cv2":
            raise
        sys.modules.pop("lvis", None)
        for name in [n for n in sys.modules if n.startswith("lvis.")]:
            sys.modules.pop(name, None)
        _install_package_stub()
    lvis_module = importlib.import_module("lvis.lvis")
    results_module = importlib.import_module("lvis.results")
    eval_module = importlib.import_module("lvis.eval")
    return lvis_module.LVIS, results_module.LVISResults, eval_module.LVISEval


@contextlib.contextmanager
def numpy_float_alias() -> Iterator[None]:
    """Temporarily define ``np.float = float`` (removed in NumPy 1.24, still used by lvis-api 0.5.3)."""
    had_alias = "float" in np.__dict__
    if not had_alias:
        setattr(np, "float", float)
    try:
        yield
    finally:
        if not had_alias:
            delattr(np, "float")
