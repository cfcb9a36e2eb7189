"""ResNet-50 (v1.5) bottom-up backbone with frozen batch norm, as used by Detic's ``R5021k`` configs.

The released checkpoints hold a timm ``ResNet(Bottleneck, [3, 4, 6, 3])`` (ImageNet-21k MIIL weights,
fine-tuned by Detic) whose BatchNorm layers were replaced by detectron2's ``FrozenBatchNorm2d``.
This module keeps timm's parameter names inside the backbone (``conv1``, ``bn1``, ``layer1.0.conv2``,
``layer1.0.downsample.0`` ...), so the checkpoint converter only renames a prefix.

Inference only: every parameter is frozen and there is no classifier (the unused timm ``fc`` head of
the checkpoint is dropped by the converter and never computed).

Speed (CPU): frozen BNs are computed into their convolution's output (``FrozenBatchNorm2d.forward_``, same
kernel, bit-identical) and the stem's max pool is two separable strided maxima (exact); the stride-1 3x3
convolutions are ``kernels.Conv3x3`` (NNPACK Winograd) and the 1x1 convolutions ``kernels.Conv1x1`` (oneDNN
GEMMs); both round differently from upstream's kernels (see ``kernels``) and are bit-exact with
``AUDIODETIC_NNPACK=0``. ``fold_frozen_bn`` remains available but is not applied by default: after the in-place BN
it saves little, and it changes outputs by rounding like Winograd does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiodetic.errors import InputError
from audiodetic.kernels import Conv1x1, Conv3x3

__all__ = ["FrozenBatchNorm2d", "Bottleneck", "ResNetBackbone"]


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine parameters (all four are buffers).

    ``y = (x - running_mean) / sqrt(running_var + eps) * weight + bias`` per channel,
    computed with ``F.batch_norm(training=False)`` exactly as detectron2 does at inference.
    Input and output: ``(B, C, H, W)`` float tensors.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.full((num_features,), 1.0 - eps))

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=self.eps
        )

    def forward_(self, x: Tensor) -> Tensor:
        """``forward`` computed into ``x`` itself (same kernel, bit-identical values) when no autograd is involved.

        Skips allocating a fresh output map: on CPU that allocation (page faults on every call) is most of a
        frozen BN's cost, ~8x its arithmetic. Only for temporaries the caller owns (a convolution's output).
        """
        if torch.is_grad_enabled() or x.requires_grad or not x.is_contiguous() or _has_hooks(self):
            return self(x)
        if x.dtype != self.weight.dtype:  # float16/bfloat16 maps under autocast: the out= kernel needs one dtype
            return self(x)
        torch.ops.aten.native_batch_norm.out(
            x, self.weight, self.bias, self.running_mean, self.running_var, False, 0.0, self.eps,
            out=x, save_mean=x.new_empty(0), save_invstd=x.new_empty(0),
        )
        return x

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


def _has_hooks(module: nn.Module) -> bool:
    """Forward (pre-)hooks on ``module`` or global ones: ``forward_`` then goes through ``__call__`` to run them."""
    from torch.nn.modules import module as module_globals

    return bool(
        module._forward_pre_hooks or module._forward_hooks
        or module_globals._global_forward_pre_hooks or module_globals._global_forward_hooks
    )


def _norm_(norm: nn.Module, x: Tensor) -> Tensor:
    """Apply a frozen BN in place on the temporary ``x`` (or whatever ``fold_frozen_bn`` left: ``Identity``)."""
    return norm.forward_(x) if isinstance(norm, FrozenBatchNorm2d) else norm(x)


def max_pool_3x3_s2(x: Tensor) -> Tensor:
    """``F.max_pool2d(x, 3, stride=2, padding=1)`` as two separable strided maxima (exactly equal: max is exact).

    About 3x faster on CPU than the pooling kernel, which also computes argmax indices it then discards.
    ``x``: ``(B, C, H, W)`` float; output ``(B, C, ceil(H/2), ceil(W/2))``.
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
    height, width = x.shape[-2:]
    out_h, out_w = (height + 1) // 2, (width + 1) // 2
    padded = F.pad(x, (1, 1, 1, 1), value=float("-inf"))
    columns = torch.maximum(padded[..., 0 : 2 * out_w : 2], padded[..., 1 : 2 * out_w + 1 : 2])
    columns = torch.maximum(columns, padded[..., 2 : 2 * out_w + 2 : 2])
    rows = torch.maximum(columns[..., 0 : 2 * out_h : 2, :], columns[..., 1 : 2 * out_h + 1 : 2, :])
    return torch.maximum(rows, columns[..., 2 : 2 * out_h + 2 : 2, :])


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck: 1x1 -> 3x3 (carries the stride) -> 1x1 (x4 channels), frozen BN, ReLU.

    ``downsample`` (1x1 conv with stride + frozen BN) is present on the first block of each stage.
    """

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int, with_downsample: bool) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = Conv1x1(in_channels, planes, bias=False)
        self.bn1: nn.Module = FrozenBatchNorm2d(planes)
        if stride == 1:  # same parameters; NNPACK's Winograd path on large maps (kernels.py)
            self.conv2: nn.Conv2d = Conv3x3(planes, planes, bias=False)
        else:
            self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = FrozenBatchNorm2d(planes)
        self.conv3 = Conv1x1(planes, out_channels, bias=False)
        self.bn3 = FrozenBatchNorm2d(out_channels)
        self.downsample: nn.Sequential | None = None
        if with_downsample:
            self.downsample = nn.Sequential(
                Conv1x1(in_channels, out_channels, stride=stride, bias=False),
                FrozenBatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else _norm_(self.downsample[1], self.downsample[0](x))
        y = F.relu(_norm_(self.bn1, self.conv1(x)), inplace=True)
        y = F.relu(_norm_(self.bn2, self.conv2(y)), inplace=True)
        y = _norm_(self.bn3, self.conv3(y))
        y += shortcut
        return F.relu(y, inplace=True)


class ResNetBackbone(nn.Module):
    """timm-style ResNet (Bottleneck, v1.5) returning the C3, C4, C5 feature maps.

    Args:
        layers: number of bottleneck blocks per stage; ``(3, 4, 6, 3)`` is ResNet-50.
        width: channels of the stem (64 for ResNet-50); stage ``i`` (1-based) has ``width * 2**(i-1)``
            bottleneck planes and ``4 * width * 2**(i-1)`` output channels.

    ``forward(x)``: ``x`` is a ``(B, 3, H, W)`` float32 normalised image batch of any size. Returns
    ``[C3, C4, C5]`` with strides 8/16/32 (each spatial size is ``ceil`` of the previous one / 2) and
    ``out_channels`` channels (512, 1024, 2048 for ResNet-50).
    """

    strides: tuple[int, int, int] = (8, 16, 32)

    def __init__(self, *, layers: tuple[int, int, int, int] = (3, 4, 6, 3), width: int = 64) -> None:
        super().__init__()
        if len(layers) != 4 or any(int(n) < 1 for n in layers):
            raise InputError(f"layers must be four positive block counts, got {layers!r}")
        if int(width) < 1:
            raise InputError(f"width must be a positive channel count, got {width!r}")
        self.layers_per_stage = tuple(int(n) for n in layers)
        self.width = int(width)
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = FrozenBatchNorm2d(width)
        in_channels = width
        for index, num_blocks in enumerate(self.layers_per_stage):
            planes = width * 2**index
            stride = 1 if index == 0 else 2
            blocks = []
            for block_index in range(num_blocks):
                blocks.append(
                    Bottleneck(
                        in_channels,
                        planes,
                        stride=stride if block_index == 0 else 1,
                        with_downsample=block_index == 0,
                    )
                )
                in_channels = planes * Bottleneck.expansion
            self.add_module(f"layer{index + 1}", nn.Sequential(*blocks))
        self.out_channels: tuple[int, int, int] = tuple(  # type: ignore[assignment]
            width * 2**i * Bottleneck.expansion for i in (1, 2, 3)
        )
        self.requires_grad_(False)
        self.eval()

    @torch.no_grad()
    def fold_frozen_bn(self) -> None:
        """Fold every FrozenBN into the convolution before it (in place; an inference speed-up of ~10 % on CPU).

        ``conv(x, W) * s + (b - m * s) == conv(x, W * s) + (b - m * s)`` with ``s = weight / sqrt(var + eps)``,
        computed in float64; outputs change by float rounding only (~1e-6 relative). Load the weights first: the
        folded module's ``state_dict`` no longer has BN entries. Calling it again does nothing.
        """
        pairs = [(self, "conv1", "bn1")]
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in stage:
                pairs += [(block, "conv1", "bn1"), (block, "conv2", "bn2"), (block, "conv3", "bn3")]
                if block.downsample is not None:
                    pairs.append((block.downsample, "0", "1"))
        for owner, conv_name, bn_name in pairs:
            conv, bn = getattr(owner, conv_name), getattr(owner, bn_name)
            if not isinstance(bn, FrozenBatchNorm2d):
                continue
            scale = bn.weight.double() * (bn.running_var.double() + bn.eps).rsqrt()
            weight = (conv.weight.double() * scale[:, None, None, None]).to(conv.weight.dtype)
            bias = (bn.bias.double() - bn.running_mean.double() * scale).to(conv.weight.dtype)
            conv.weight = nn.Parameter(weight, requires_grad=False)
            conv.bias = nn.Parameter(bias, requires_grad=False)
            setattr(owner, bn_name, nn.Identity())

    def forward(self, x: Tensor) -> list[Tensor]:
        x = F.relu(_norm_(self.bn1, self.conv1(x)), inplace=True)
        x = max_pool_3x3_s2(x)
        x = self.layer1(x)
        c3 = self.layer2(x)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c3, c4, c5]
