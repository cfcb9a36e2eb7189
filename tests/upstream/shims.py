"""Compatibility shims that let upstream detectron2 0.5 / CenterNet2 / Detic import on a current stack.

Test-only. The upstream packages (installed by ``tests/upstream/install_upstream.sh``) were written for
Pillow < 10, numpy < 1.24, timm 0.5 and an OpenCV install. This module bridges exactly those gaps so that the
parity tests and benches can run the *unmodified* upstream inference code:

* Pillow >= 10 removed ``Image.LINEAR`` (and friends), used as default arguments at class-definition time.
* numpy >= 1.24 removed the ``np.int`` / ``np.float`` / ``np.bool`` / ... aliases of Python builtins.
* timm >= 1.0 turned ``timm.models.resnet.default_cfgs`` into ``DefaultCfg`` objects (Detic assigns items into
  them) and ``build_model_with_cfg`` no longer accepts ``default_cfg=`` / ``pretrained_custom_load=``.
  These are fixed on *Detic's* module globals after import; timm itself is left untouched.
* OpenCV and OpenAI's ``clip`` package are not installed here; upstream imports them at module level but
  inference with a given classifier never calls them. Placeholder modules (only when genuinely missing) raise
  on any use, and they are removed from ``sys.modules`` again once upstream is imported, so that other code
  still sees those packages as absent.

audiodetic is never patched.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
import types
from collections.abc import Callable
from typing import Any

_APPLIED = False

# numpy aliases removed in numpy 1.24 / 2.0 -> the builtins they used to name.
_NUMPY_ALIASES: dict[str, type] = {
    "bool": bool,
    "int": int,
    "float": float,
    "complex": complex,
    "object": object,
    "str": str,
    "long": int,
    "unicode": str,
}


def _shim_pillow() -> None:
    from PIL import Image

    aliases = {
        "LINEAR": Image.Resampling.BILINEAR,
        "CUBIC": Image.Resampling.BICUBIC,
        "ANTIALIAS": Image.Resampling.LANCZOS,
    }
    for name, value in aliases.items():
        if not hasattr(Image, name):
            setattr(Image, name, value)


def _shim_numpy() -> None:
    import warnings

    import numpy as np

    for name, builtin in _NUMPY_ALIASES.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # probing a removed alias may warn before raising
            try:
                getattr(np, name)
            except AttributeError:
                setattr(np, name, builtin)


class _MissingModule(types.ModuleType):
    """Stand-in for an optional module that is not installed: importable, fails loudly when used."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise ModuleNotFoundError(
            f"{self.__name__}.{name} was used, but {self.__name__.split('.')[0]!r} is not installed "
            "(upstream was imported with a placeholder)"
        )


class _UnavailableClipTokenizer:
    """Detic imports CLIP's tokenizer at module level; only its (unused here) text encoder needs it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ModuleNotFoundError("the 'clip' package is not installed; Detic's text encoder is unavailable")


def _placeholder_modules() -> dict[str, types.ModuleType]:
    """Placeholders for upstream's import-time-only dependencies that are genuinely missing."""
    placeholders: dict[str, types.ModuleType] = {}
    if "cv2" not in sys.modules and importlib.util.find_spec("cv2") is None:
        cv2 = _MissingModule("cv2")
        cv2.__version__ = "0"  # detectron2 reads it at import (OpenCL switch for cv2 >= 3)
        placeholders["cv2"] = cv2
    if "clip" not in sys.modules and importlib.util.find_spec("clip") is None:
        clip = _MissingModule("clip")
        tokenizer = _MissingModule("clip.simple_tokenizer")
        tokenizer.SimpleTokenizer = _UnavailableClipTokenizer
        clip.simple_tokenizer = tokenizer
        placeholders["clip"] = clip
        placeholders["clip.simple_tokenizer"] = tokenizer
    return placeholders


def _legacy_timm_resnet_cfgs() -> dict[str, dict[str, Any]]:
    """timm >= 1.0 ``resnet.default_cfgs`` re-shaped as timm 0.5's ``{arch: {key: value}}`` plain dicts."""
    from timm.models import resnet

    legacy: dict[str, dict[str, Any]] = {}
    for arch, default_cfg in resnet.default_cfgs.items():
        legacy[arch] = copy.deepcopy(default_cfg.default.to_dict())
    return legacy


def _compat_build_model_with_cfg(build: Callable[..., Any]) -> Callable[..., Any]:
    """Accept timm 0.5 keywords (``default_cfg=``, ``pretrained_custom_load=``) on timm >= 1.0."""

    def build_model_with_cfg(model_cls, variant, pretrained, **kwargs):
        kwargs.pop("pretrained_custom_load", None)
        default_cfg = kwargs.pop("default_cfg", None)
        if default_cfg is not None and "pretrained_cfg" not in kwargs:
            kwargs["pretrained_cfg"] = dict(default_cfg)
        return build(model_cls, variant, pretrained, **kwargs)

    return build_model_with_cfg


def _shim_detic_timm_backbone() -> None:
    """Point Detic's timm backbone module at timm-0.5-shaped helpers (must run after importing it)."""
    import timm
    from timm.models import build_model_with_cfg

    module = sys.modules.get("detic.modeling.backbone.timm")
    if module is None or getattr(module, "_audiodetic_shimmed", False):
        return
    if int(timm.__version__.split(".")[0]) >= 1:
        module.default_cfgs_resnet = _legacy_timm_resnet_cfgs()
        module.build_model_with_cfg = _compat_build_model_with_cfg(build_model_with_cfg)
    module._audiodetic_shimmed = True


def import_upstream() -> types.SimpleNamespace:
    """Apply the shims and import upstream detectron2 + CenterNet2 + Detic (registering their modules).

    Returns a namespace with the upstream modules the tests use. Raises ``ImportError`` when the upstream
    packages are not installed (run ``tests/upstream/install_upstream.sh``).
    """
    global _APPLIED
    for name in ("detectron2", "centernet", "detic"):
        if importlib.util.find_spec(name) is None:
            raise ImportError(
                f"upstream package {name!r} is not installed; run tests/upstream/install_upstream.sh"
            )
    if not _APPLIED:
        _shim_pillow()
        _shim_numpy()
    placeholders = _placeholder_modules()
    sys.modules.update(placeholders)
    try:
        import centernet  # noqa: F401  (registers CenterNet modules)
        import detectron2
        import detic  # noqa: F401  (registers Detic modules)
        from centernet.config import add_centernet_config
        from detectron2.checkpoint import DetectionCheckpointer
        from detectron2.config import get_cfg
        from detectron2.data import MetadataCatalog
        from detectron2.engine.defaults import DefaultPredictor
        from detectron2.modeling import build_model
        from detic import predictor as detic_predictor
        from detic.config import add_detic_config
        from detic.modeling.utils import reset_cls_test
    finally:
        for name, module in placeholders.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    _shim_detic_timm_backbone()
    _APPLIED = True
    return types.SimpleNamespace(
        detectron2=detectron2,
        get_cfg=get_cfg,
        build_model=build_model,
        DetectionCheckpointer=DetectionCheckpointer,
        DefaultPredictor=DefaultPredictor,
        MetadataCatalog=MetadataCatalog,
        add_centernet_config=add_centernet_config,
        add_detic_config=add_detic_config,
        reset_cls_test=reset_cls_test,
        detic_predictor=detic_predictor,
    )
