"""The CPU speed paths give the same results as the plain operators (exactly where claimed, else within rounding)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from audiodetic.detector import kernels
from audiodetic.detector.masks import MaskHead
from audiodetic.detector.resnet import FrozenBatchNorm2d, max_pool_3x3_s2


def _conv(cin: int, cout: int, bias: bool) -> kernels.Conv3x3:
    torch.manual_seed(0)
    conv = kernels.Conv3x3(cin, cout, bias=bias).requires_grad_(False)
    if bias:
        torch.nn.init.normal_(conv.bias, std=0.1)
    return conv


@pytest.mark.parametrize("shape", [(1, 8, 40, 40), (20, 8, 6, 6), (1, 8, 5, 7)])  # NNPACK, NNPACK (batch), oneDNN
@pytest.mark.parametrize("bias", [True, False])
def test_conv3x3_matches_conv2d(shape: tuple[int, ...], bias: bool) -> None:
    conv = _conv(shape[1], 6, bias)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ours = conv(x)
        reference = F.conv2d(x, conv.weight, conv.bias, padding=1)
    assert ours.shape == reference.shape
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=5e-5)  # Winograd rounding, ~1e-5


def test_conv3x3_disabled_by_environment_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIODETIC_NNPACK", "0")
    assert not kernels.nnpack_enabled()
    conv = _conv(8, 6, True)
    x = torch.randn(1, 8, 40, 40)
    with torch.inference_mode():
        assert torch.equal(conv(x), F.conv2d(x, conv.weight, conv.bias, padding=1))


def test_conv3x3_keeps_the_conv2d_state_dict() -> None:
    conv = _conv(4, 5, True)
    plain = torch.nn.Conv2d(4, 5, 3, padding=1)
    assert {k: v.shape for k, v in conv.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}


def test_mask_head_gemm_upsampling_matches_deconv_and_predictor() -> None:
    torch.manual_seed(0)
    head = MaskHead(16, num_convs=1).requires_grad_(False)
    torch.nn.init.normal_(head.deconv.bias, std=0.1)
    x = torch.randn(3, 16, 5, 5)
    with torch.inference_mode():
        ours = head.upsample_and_predict(x)
        reference = head.predictor(torch.relu(head.deconv(x)))
    assert ours.shape == (3, 1, 10, 10)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 3, 7, 9), (2, 4, 8, 8), (1, 2, 1, 1), (1, 1, 2, 3)])
def test_separable_max_pool_is_exact(shape: tuple[int, ...]) -> None:
    x = torch.randn(shape)
    with torch.inference_mode():
        assert torch.equal(max_pool_3x3_s2(x), F.max_pool2d(x, 3, stride=2, padding=1))


def test_frozen_bn_in_place_is_exact_and_respects_hooks() -> None:
    bn = FrozenBatchNorm2d(4)
    bn.weight.uniform_(0.5, 2.0)
    bn.bias.normal_()
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(1, 4, 6, 6)
    with torch.inference_mode():
        reference = bn(x)
        buffer = x.clone()
        assert bn.forward_(buffer) is buffer and torch.equal(buffer, reference)
    seen = []
    handle = bn.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape))
    try:
        with torch.inference_mode():
            assert torch.equal(bn.forward_(x.clone()), reference)
    finally:
        handle.remove()
    assert seen == [x.shape]
