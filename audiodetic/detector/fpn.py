"""Feature pyramid P3-P7 as detectron2's ``FPN`` with CenterNet2's ``LastLevelP6P7_P5`` top block.

``lateral_i = Conv1x1(C_i -> out)``; top-down ``merged_i = lateral_i + upsample_nearest_x2(merged_{i+1})``;
``P_i = Conv3x3(merged_i)``; ``P6 = Conv3x3/2(P5)``; ``P7 = Conv3x3/2(ReLU(P6))``. All convs have biases,
no normalisation, sum fusion.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from audiodetic.errors import InputError
from audiodetic.kernels import Conv1x1, Conv3x3

__all__ = ["FPN", "upsample_to"]


def upsample_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour upsampling of ``x`` ``(B, C, h, w)`` to ``size``.

    When ``size == (2h, 2w)`` (always the case for inputs padded to a multiple of the largest stride)
    this is exactly detectron2's ``F.interpolate(x, scale_factor=2, mode="nearest")``. Upstream would
    fail with a shape mismatch for other sizes (e.g. an odd C4 with an unpadded input); we then resize
    to the lateral's size instead (output pixel ``i`` takes input pixel ``floor(i * h / size)``).
    """
    h, w = x.shape[-2:]
    if (2 * h, 2 * w) == tuple(size):
        return F.interpolate(x, scale_factor=2.0, mode="nearest")
    return F.interpolate(x, size=tuple(size), mode="nearest")


class FPN(nn.Module):
    """Pyramid over three bottom-up maps (strides 8/16/32) producing P3..P7 (strides 8..128).

    Args:
        in_channels: channels of C3, C4, C5 (e.g. ``(512, 1024, 2048)`` for ResNet-50,
            ``(256, 512, 1024)`` for Swin-B).
        out_channels: channels of every pyramid level (256 upstream).

    ``forward([C3, C4, C5])`` -> ``[P3, P4, P5, P6, P7]``, each ``(B, out_channels, h_l, w_l)`` float32 with
    ``P3..P5`` the sizes of ``C3..C5`` and ``P6``/``P7`` each ``floor((n - 1) / 2) + 1`` of the level below.
    """

    strides: tuple[int, ...] = (8, 16, 32, 64, 128)

    def __init__(self, *, in_channels: Sequence[int], out_channels: int = 256) -> None:
        super().__init__()
        in_channels = tuple(int(c) for c in in_channels)
        if len(in_channels) != 3 or min(in_channels) < 1:
            raise InputError(f"in_channels must list the channels of C3, C4, C5, got {in_channels!r}")
        if int(out_channels) < 1:
            raise InputError(f"out_channels must be positive, got {out_channels!r}")
        self.in_channels = in_channels
        self.out_channels = int(out_channels)
        self.lateral_convs = nn.ModuleList(Conv1x1(c, out_channels) for c in in_channels)
        self.output_convs = nn.ModuleList(
            Conv3x3(out_channels, out_channels) for _ in in_channels
        )
        self.p6 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=2, padding=1)
        self.p7 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=2, padding=1)
        self.requires_grad_(False)
        self.eval()

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        if len(features) != 3:
            raise InputError(f"FPN expects [C3, C4, C5], got {len(features)} maps")
        merged = self.lateral_convs[2](features[2])
        outputs = [self.output_convs[2](merged)]
        for level in (1, 0):
            lateral = self.lateral_convs[level](features[level])
            merged = lateral.add_(upsample_to(merged, lateral.shape[-2:]))  # lateral is a temporary
            outputs.insert(0, self.output_convs[level](merged))
        p6 = self.p6(outputs[-1])
        p7 = self.p7(F.relu(p6))
        return outputs + [p6, p7]
