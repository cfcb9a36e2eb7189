"""The CPU speed paths give the same results as the plain operators (exactly where claimed, else within rounding)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from audiodetic import kernels
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


def _layer(cin: int, cout: int, bias: bool = True) -> torch.nn.Linear:
    torch.manual_seed(3)
    layer = torch.nn.Linear(cin, cout, bias=bias).requires_grad_(False)
    if bias:
        torch.nn.init.normal_(layer.bias, std=0.5)
    return layer


@pytest.mark.parametrize("activation", ["none", "relu", "gelu"])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_the_unfused_operators(activation: str, bias: bool) -> None:
    layer = _layer(256, 384, bias)
    x = torch.randn(2, 40, 256)  # 7.9 M multiply-adds: the oneDNN path where it exists
    plain = {"none": lambda y: y, "relu": torch.relu, "gelu": F.gelu}[activation]
    with torch.inference_mode():
        assert kernels.onednn_suits(x, layer.weight) == kernels._onednn_available()
        ours = kernels.linear(layer, x, activation=activation)
        reference = plain(F.linear(x, layer.weight, layer.bias))
    assert ours.shape == (2, 40, 384)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


def test_linear_fuses_a_residual_sum_and_rejects_bad_arguments() -> None:
    layer = _layer(256, 128)
    x, residual = torch.randn(300, 256), torch.randn(300, 128)
    with torch.inference_mode():
        ours = kernels.linear(layer, x, residual=residual)
        torch.testing.assert_close(ours, layer(x) + residual, rtol=1e-5, atol=1e-5)
        with pytest.raises(ValueError, match="activation must be one of"):
            kernels.linear(layer, x, activation="tanh")
        with pytest.raises(ValueError, match="not both"):
            kernels.linear(layer, x, activation="relu", residual=residual)


def test_linear_disabled_and_small_and_autograd_calls_run_the_plain_operators(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = _layer(64, 32)
    small = torch.randn(3, 64)  # below MIN_GEMM_MACS
    assert not kernels.onednn_suits(small, layer.weight)
    with torch.inference_mode():
        assert torch.equal(kernels.linear(layer, small, activation="relu"), torch.relu(layer(small)))
    monkeypatch.setenv("AUDIODETIC_NNPACK", "0")
    x, residual = torch.randn(4000, 64), torch.randn(4000, 32)
    assert not kernels.fast_kernels_enabled() and not kernels.onednn_suits(x, layer.weight)
    with torch.inference_mode():
        assert torch.equal(kernels.linear(layer, x, activation="gelu"), F.gelu(layer(x)))
        assert torch.equal(kernels.linear(layer, x, residual=residual), layer(x) + residual)
    monkeypatch.delenv("AUDIODETIC_NNPACK")
    trained = torch.nn.Linear(64, 32)  # requires grad: gradients must flow through the fallback
    out = kernels.linear(trained, x, activation="gelu")
    out.sum().backward()
    assert trained.weight.grad is not None and trained.weight.grad.shape == (32, 64)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("bias", [True, False])
def test_conv1x1_matches_conv2d_and_keeps_its_state_dict(stride: int, bias: bool) -> None:
    torch.manual_seed(4)
    conv = kernels.Conv1x1(64, 48, stride=stride, bias=bias).requires_grad_(False)
    x = torch.randn(1, 64, 37, 51)
    with torch.inference_mode():
        ours = conv(x)
        reference = F.conv2d(x, conv.weight, conv.bias, stride=stride)
        batched = conv(torch.cat([x, x]))  # batches keep torch's convolution
    assert ours.shape == reference.shape == (1, 48, -(-37 // stride), -(-51 // stride))
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(batched, torch.cat([reference, reference]), rtol=1e-5, atol=1e-5)
    plain = torch.nn.Conv2d(64, 48, 1, stride=stride, bias=bias)
    assert {k: v.shape for k, v in conv.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}


def test_conv1x1_disabled_by_environment_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIODETIC_NNPACK", "0")
    conv = kernels.Conv1x1(64, 48).requires_grad_(False)
    x = torch.randn(1, 64, 37, 51)
    with torch.inference_mode():
        assert torch.equal(conv(x), F.conv2d(x, conv.weight, conv.bias))


@pytest.mark.parametrize("bias_kv", [True, False])
@pytest.mark.parametrize("masked", [True, False])
def test_multihead_attention_matches_the_module(bias_kv: bool, masked: bool) -> None:
    torch.manual_seed(5)
    attn = torch.nn.MultiheadAttention(128, 4, bias=True, add_bias_kv=bias_kv).eval().requires_grad_(False)
    if bias_kv:
        torch.nn.init.normal_(attn.bias_k, std=0.5)
        torch.nn.init.normal_(attn.bias_v, std=0.5)
    x, residual = torch.randn(60, 3, 128), torch.randn(60, 3, 128)
    mask = torch.full((60, 60), float("-inf")).triu(1) if masked else None
    with torch.inference_mode():
        ours = kernels.multihead_attention(attn, x, attn_mask=mask, residual=residual)
        reference = residual + attn(x, x, x, need_weights=False, attn_mask=mask)[0]
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
