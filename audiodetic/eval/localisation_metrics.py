"""Sound-source localisation metrics, computed as the public benchmarks' reference code computes them.

**Single-frame protocol (VGG-Sound Source, Flickr-SoundNet).** Maps live on a :data:`GRID` x :data:`GRID` grid over
the image. Ground truth: every annotation box, in grid pixels, sets ``map[y1:y2, x1:x2]``; VGG-SS takes the union
(boxes are normalised ``[x1, y1, x2, y2]``, clipped to ``[0, 1]``, scaled by 224 and truncated to integers);
Flickr-SoundNet adds up the annotators' boxes (given in a 256-pixel frame, scaled by ``224 / 256`` and truncated),
divides by 2 and clips at 1 (a pixel two annotators agree on counts fully, one annotator's half). The prediction is
min-max normalised (a constant map is left as it is), thresholded at its median - the value at index
``int(0.5 * 224 * 224)`` of the sorted map - and pixels ``>=`` the threshold are positive. Then
``cIoU = sum(pred * gt) / (sum(gt) + sum(pred * (gt == 0)))``. Over a dataset: ``cIoU@0.5`` is the fraction of
samples with ``cIoU >= 0.5`` (what papers report as "cIoU"), ``AUC`` the trapezoidal area under the success rate
``P(cIoU >= t)`` at ``t = 0, 0.05, ..., 1``, plus the mean cIoU.

**AVSBench S4 masks.** Per frame, ``IoU`` of the prediction binarised at ``> 0.5`` with the binary mask (a frame with
an empty mask scores the true-negative fraction of pixels instead); ``mIoU`` is the mean over a video's frames,
then over videos. F-score with ``beta^2 = 0.3``: for 255 thresholds ``linspace(0, 1 - 1e-10, 255)`` (``>=``),
precision ``tp / (predicted + 1e-20)`` and recall ``tp / (positives + 1e-20)`` per frame, ``F = (1 + b2) P R /
(b2 P + R)`` (``0`` where undefined), averaged over the video's frames with a non-empty mask; a video scores the
best threshold's mean (``0`` when every mask is empty, as the reference code counts it), and the dataset the mean
over videos. Predictions here are probabilities in ``[0, 1]``
(no sigmoid is applied).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from audiodetic.errors import InputError

GRID = 224
FLICKR_FRAME = 256
CIOU_SUCCESS = 0.5
AUC_STEPS = 21
S4_THRESHOLDS = 255
F_BETA2 = 0.3


def vggss_gt_map(boxes: Iterable[Sequence[float]], grid: int = GRID) -> np.ndarray:
    """Union map ``(grid, grid)`` float64 of normalised ``[x1, y1, x2, y2]`` boxes (VGG-SS)."""
    gt = np.zeros((grid, grid))
    for box in boxes:
        x1, y1, x2, y2 = (int(grid * min(max(float(v), 0.0), 1.0)) for v in box)
        gt[y1:y2, x1:x2] = 1.0
    return gt


def flickr_gt_map(boxes: Iterable[Sequence[float]], grid: int = GRID, frame: int = FLICKR_FRAME) -> np.ndarray:
    """Consensus map ``(grid, grid)`` of annotator boxes in a ``frame``-pixel image (Flickr-SoundNet)."""
    gt = np.zeros((grid, grid))
    for box in boxes:
        x1, y1, x2, y2 = (int(grid * int(v) / frame) for v in box)
        gt[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] += 1.0
    gt /= 2.0
    gt[gt > 1.0] = 1.0
    return gt


def normalise(values: np.ndarray) -> np.ndarray:
    """Min-max normalisation to ``[0, 1]``; a constant map is returned unchanged (as the reference code does)."""
    values = np.asarray(values, np.float64)
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else values


def median_threshold(values: np.ndarray) -> float:
    """The value at index ``int(0.5 * values.size)`` of the sorted map."""
    flat = np.sort(np.asarray(values, np.float64).reshape(-1))
    return float(flat[int(flat.size * 0.5)])


def ciou(predicted: np.ndarray, gt: np.ndarray) -> float:
    """``sum(pred * gt) / (sum(gt) + sum(pred * (gt == 0)))`` for a binary prediction and a (weighted) truth."""
    predicted = np.asarray(predicted, np.float64)
    gt = np.asarray(gt, np.float64)
    if predicted.shape != gt.shape:
        raise InputError(f"cIoU: prediction {predicted.shape} and ground truth {gt.shape} differ in shape")
    denominator = float(gt.sum() + (predicted * (gt == 0)).sum())
    return float((predicted * gt).sum() / denominator) if denominator > 0 else 0.0


def localisation_ciou(score_map: np.ndarray, gt: np.ndarray) -> float:
    """cIoU of a score map under the single-frame protocol (normalise, median threshold, ``>=``)."""
    normalised = normalise(score_map)
    return ciou(normalised >= median_threshold(normalised), gt)


def success_rates(cious: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds ``0, 0.05, ..., 1`` and the fraction of samples with ``cIoU >= t`` at each."""
    values = np.asarray(cious, np.float64)
    if values.size == 0:
        raise InputError("no samples to summarise")
    thresholds = np.array([0.05 * i for i in range(AUC_STEPS)])
    return thresholds, np.array([(values >= t).sum() / values.size for t in thresholds])


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def summarise_ciou(cious: Sequence[float]) -> dict[str, float]:
    """``{"cIoU@0.5", "AUC", "mean_cIoU", "samples"}`` (fractions in ``[0, 1]``)."""
    thresholds, rates = success_rates(cious)
    values = np.asarray(cious, np.float64)
    return {"cIoU@0.5": float(np.mean(values >= CIOU_SUCCESS)), "AUC": _trapezoid(rates, thresholds),
            "mean_cIoU": float(values.mean()), "samples": int(values.size)}


def mask_iou(probabilities: np.ndarray, gt: np.ndarray) -> float:
    """AVSBench's frame IoU: prediction ``> 0.5`` against a binary mask (empty mask: true-negative fraction)."""
    predicted = np.asarray(probabilities, np.float64) > 0.5
    truth = np.asarray(gt, bool)
    if predicted.shape != truth.shape:
        raise InputError(f"mask IoU: prediction {predicted.shape} and mask {truth.shape} differ in shape")
    if not truth.any():
        return float((~predicted & ~truth).sum() / truth.size)
    union = float((predicted | truth).sum())
    return float((predicted & truth).sum() / union)


def f_scores(probabilities: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """F-scores ``(255,)`` of one frame at AVSBench's thresholds (see the module doc)."""
    prediction = np.asarray(probabilities, np.float64).reshape(-1)
    truth = np.asarray(gt, bool).reshape(-1).astype(np.float64)
    thresholds = np.linspace(0.0, 1.0 - 1e-10, S4_THRESHOLDS)
    out = np.zeros(S4_THRESHOLDS)
    positives = truth.sum()
    for index, threshold in enumerate(thresholds):
        chosen = (prediction >= threshold).astype(np.float64)
        tp = float((chosen * truth).sum())
        precision, recall = tp / (chosen.sum() + 1e-20), tp / (positives + 1e-20)
        denominator = F_BETA2 * precision + recall
        out[index] = (1 + F_BETA2) * precision * recall / denominator if denominator > 0 else 0.0
    return out


def summarise_s4(videos: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]]) -> dict[str, float]:
    """``{"mIoU", "F", "videos", "frames"}`` over videos given as lists of ``(probabilities, mask)`` frames."""
    if not videos:
        raise InputError("no videos to summarise")
    ious, fs = [], []
    for frames in videos:
        if not frames:
            raise InputError("a video without frames cannot be scored")
        ious.append(float(np.mean([mask_iou(p, m) for p, m in frames])))
        scored = [f_scores(p, m) for p, m in frames if np.asarray(m, bool).any()]
        fs.append(float(np.max(np.mean(scored, axis=0))) if scored else 0.0)
    return {"mIoU": float(np.mean(ious)), "F": float(np.mean(fs)), "videos": len(videos),
            "frames": int(sum(len(frames) for frames in videos))}
