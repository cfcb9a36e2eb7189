"""Several images through the backbone and FPN in one pass, with the same encodings as one at a time.

Images are grouped by the shape of their padded network input (``(3, Hp, Wp)``); each group is stacked into one
``(B, 3, Hp, Wp)`` tensor for the backbone and FPN, whose maps are then cut back into per-image ``(1, C, h, w)``
slices for CenterNet, the proposals and the cascade (:meth:`Detector.encode_inputs`). Images of different shapes
are never padded to a common size: the extra zeros would change the features near the right and bottom edges, so
batching keeps every image's input exactly as it is alone. Every layer of the backbone and FPN treats the images
of a batch independently (convolutions, frozen batch norm), so the results equal one-at-a-time encoding up to the
float rounding of the convolution kernels a backend picks for the batch size: bit for bit with PyTorch's native
CPU convolutions (``torch.backends.mkldnn`` off); with oneDNN, some 3x3 convolutions round differently (~1e-6 on
the features, <= 1e-4 relative on proposal boxes: the same detections, a mask pixel at the threshold may flip).
cuDNN likewise picks algorithms per batch size.

Batching pays off on a GPU, where one image leaves most of the device idle; on a CPU it gains little.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from audiodetic.detector.preprocess import PreprocessedImage
from audiodetic.inputs import check_positive_int


def shape_groups(inputs: Sequence[PreprocessedImage], max_batch: int) -> list[list[int]]:
    """Indices of ``inputs`` in groups of equal input shape, at most ``max_batch`` each, in first-seen order."""
    check_positive_int(max_batch, argument="batch size")
    groups: dict[tuple[int, ...], list[list[int]]] = {}
    order: list[list[int]] = []
    for index, item in enumerate(inputs):
        chunks = groups.setdefault(tuple(item.tensor.shape), [])
        if not chunks or len(chunks[-1]) == max_batch:
            chunks.append([])
            order.append(chunks[-1])
        chunks[-1].append(index)
    return order


@torch.inference_mode()
def encode_batch(detector: Any, inputs: Sequence[PreprocessedImage], *, max_batch: int = 8) -> list[Any]:
    """``[detector.encode_inputs(x) for x in inputs]`` with one backbone + FPN pass per group of equal shape.

    Args:
        detector: an :class:`~audiodetic.detector.model.Detector`.
        inputs: from ``detector.preprocess`` (``(1, 3, Hp, Wp)`` float32 tensors on the detector's device).
        max_batch: the most images stacked into one backbone pass.

    Returns: one ``ImageEncoding`` per input, in the order given.
    """
    encodings: list[Any] = [None] * len(inputs)
    for group in shape_groups(inputs, max_batch):
        if len(group) == 1:
            encodings[group[0]] = detector.encode_inputs(inputs[group[0]])
            continue
        stacked = torch.cat([inputs[i].tensor for i in group])
        pyramid = detector.fpn(detector.backbone(stacked))
        for position, index in enumerate(group):
            own = [level[position : position + 1] for level in pyramid]
            encodings[index] = detector.encode_inputs(inputs[index], pyramid=own)
    return encodings
