"""Backbones and FPN: shapes for any input size, and numerics against independent references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision

from audiodetic.detector.fpn import FPN, upsample_to
from audiodetic.detector.resnet import FrozenBatchNorm2d, ResNetBackbone
from audiodetic.detector.swin import SwinBackbone, SwinBlock, relative_position_index, shift_window_mask, window_layout

SIZES = [(64, 96), (67, 101), (33, 35), (20, 200), (7, 9)]


def _randomize(module: torch.nn.Module, seed: int = 0, std: float = 0.3) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in list(module.parameters()) + [b for b in module.buffers() if b.is_floating_point()]:
            tensor.copy_(torch.randn(tensor.shape, generator=gen) * std)
        for m in module.modules():
            if isinstance(m, FrozenBatchNorm2d):
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


@pytest.mark.parametrize("size", SIZES)
def test_resnet_shapes_any_size(size: tuple[int, int]) -> None:
    model = ResNetBackbone(layers=(1, 1, 1, 1), width=8)
    outputs = model(torch.randn(2, 3, *size))
    assert model.out_channels == (64, 128, 256)
    for out, channels, stride in zip(outputs, model.out_channels, model.strides):
        assert out.shape == (2, channels, math.ceil(size[0] / stride), math.ceil(size[1] / stride))


def test_resnet50_channels_and_no_classifier() -> None:
    model = ResNetBackbone()
    assert model.out_channels == (512, 1024, 2048)
    assert not any(name.startswith("fc") for name in model.state_dict())
    assert not any(p.requires_grad for p in model.parameters())


def test_frozen_bn_matches_batch_norm_formula() -> None:
    bn = FrozenBatchNorm2d(6)
    _randomize(bn)
    x = torch.randn(2, 6, 5, 7)
    expected = (x - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + 1e-5)
    expected = expected * bn.weight[:, None, None] + bn.bias[:, None, None]
    torch.testing.assert_close(bn(x), expected, rtol=1e-5, atol=1e-5)
    reference = F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False, eps=1e-5)
    assert torch.equal(bn(x), reference)
    assert set(dict(bn.named_buffers())) == {"weight", "bias", "running_mean", "running_var"}


def test_resnet50_equals_torchvision_resnet50_in_eval_mode() -> None:
    # torchvision's ResNet-50 is the same v1.5 graph (stride on the 3x3) with the same parameter names.
    reference = torchvision.models.resnet50(weights=None).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in reference.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) * 0.5 + 0.2)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    ours = ResNetBackbone()
    state = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.") and "num_batches" not in k}
    ours.load_state_dict(state, strict=True)
    x = torch.randn(1, 3, 70, 90, generator=gen)
    with torch.no_grad():
        y = reference.maxpool(reference.relu(reference.bn1(reference.conv1(x))))
        c2 = reference.layer1(y)
        c3 = reference.layer2(c2)
        c4 = reference.layer3(c3)
        c5 = reference.layer4(c4)
        outputs = ours(x)
    for got, want in zip(outputs, (c3, c4, c5)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_fold_frozen_bn_changes_outputs_by_rounding_only() -> None:
    model = ResNetBackbone(layers=(1, 2, 1, 1), width=8)
    _randomize(model, seed=5, std=0.3)
    x = torch.randn(1, 3, 50, 70)
    before = model(x)
    model.fold_frozen_bn()
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
    assert not any("running_mean" in name for name in model.state_dict())
    after = model(x)
    model.fold_frozen_bn()  # idempotent
    for a, b in zip(before, after):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))
    torch.testing.assert_close(model(x)[2], after[2], rtol=0, atol=0)


# ----------------------------------------------------------------------------------------------- Swin


def test_relative_position_index_definition() -> None:
    w = 3
    index = relative_position_index(w)
    assert index.shape == (9, 9) and index.dtype == torch.int64
    for i in range(9):
        for j in range(9):
            dy, dx = i // w - j // w, i % w - j % w
            assert index[i, j] == (dy + w - 1) * (2 * w - 1) + (dx + w - 1)
    assert relative_position_index(7).max() == 168


def _region(coordinate: int, padded: int, window: int, shift: int) -> int:
    if coordinate < padded - window:
        return 0
    return 1 if coordinate < padded - shift else 2


def test_shift_window_mask_by_brute_force() -> None:
    hp, wp, window, shift = 14, 21, 7, 3
    mask = shift_window_mask(hp, wp, window, shift)
    assert mask.shape == ((hp // window) * (wp // window), window * window, window * window)
    windows_per_row = wp // window
    for index in range(mask.shape[0]):
        top, left = (index // windows_per_row) * window, (index % windows_per_row) * window
        labels = [
            (_region(top + n // window, hp, window, shift), _region(left + n % window, wp, window, shift))
            for n in range(window * window)
        ]
        for i in range(window * window):
            for j in range(window * window):
                assert mask[index, i, j] == (0.0 if labels[i] == labels[j] else -100.0)


def test_window_layout_is_pad_roll_partition() -> None:
    h, w, ws, shift = 5, 9, 4, 2
    x = torch.arange(1.0, h * w + 1).view(1, h, w, 1)
    padded = F.pad(x, (0, 0, 0, 12 - w, 0, 8 - h))
    rolled = torch.roll(padded, (-shift, -shift), (1, 2))
    windows = rolled.view(1, 2, ws, 3, ws, 1).permute(0, 1, 3, 2, 4, 5).reshape(-1)
    layout = window_layout(h, w, ws, shift)
    flat = torch.cat([x.reshape(-1), torch.zeros(1)])
    assert torch.equal(flat[layout.gather], windows)
    assert torch.equal(windows[layout.scatter], x.reshape(-1))
    assert layout.num_windows == 6


def _naive_block(block: SwinBlock, x: torch.Tensor) -> torch.Tensor:
    """Explicit per-window loop: LN1, zero-pad, roll, attention with bias and -100 mask, unroll, crop, MLP."""
    b, h, w, c = x.shape
    ws, shift, attn = block.window_size, block.shift, block.attn
    heads, head_dim = attn.num_heads, c // attn.num_heads
    y = F.layer_norm(x, (c,), block.norm1.weight, block.norm1.bias, 1e-5)
    hp, wp = math.ceil(h / ws) * ws, math.ceil(w / ws) * ws
    padded = torch.zeros(b, hp, wp, c)
    padded[:, :h, :w] = y
    if shift:
        padded = torch.roll(padded, (-shift, -shift), (1, 2))
    table, index = attn.relative_position_bias_table, attn.relative_position_index
    out = torch.zeros_like(padded)
    for top in range(0, hp, ws):
        for left in range(0, wp, ws):
            tokens = padded[:, top:top + ws, left:left + ws].reshape(b, ws * ws, c)
            qkv = tokens @ attn.qkv.weight.T + attn.qkv.bias
            q, k, v = qkv.split(c, dim=-1)
            result = []
            for head in range(heads):
                part = slice(head * head_dim, (head + 1) * head_dim)
                logits = (q[..., part] * head_dim**-0.5) @ k[..., part].transpose(1, 2)
                logits = logits + table[index.reshape(-1), head].reshape(ws * ws, ws * ws)
                if shift:
                    for i in range(ws * ws):
                        for j in range(ws * ws):
                            ri = (_region(top + i // ws, hp, ws, shift), _region(left + i % ws, wp, ws, shift))
                            rj = (_region(top + j // ws, hp, ws, shift), _region(left + j % ws, wp, ws, shift))
                            if ri != rj:
                                logits[:, i, j] -= 100.0
                result.append(logits.softmax(-1) @ v[..., part])
            merged = torch.cat(result, dim=-1) @ attn.proj.weight.T + attn.proj.bias
            out[:, top:top + ws, left:left + ws] = merged.reshape(b, ws, ws, c)
    if shift:
        out = torch.roll(out, (shift, shift), (1, 2))
    x = x + out[:, :h, :w]
    hidden = F.gelu(F.layer_norm(x, (c,), block.norm2.weight, block.norm2.bias, 1e-5) @ block.mlp.fc1.weight.T
                    + block.mlp.fc1.bias)
    return x + hidden @ block.mlp.fc2.weight.T + block.mlp.fc2.bias


@pytest.mark.parametrize("shift", [0, 2])
@pytest.mark.parametrize("size", [(5, 5), (10, 7), (9, 13)])
def test_swin_block_equals_naive_window_attention(shift: int, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    block = SwinBlock(dim=8, num_heads=2, window_size=5, shift=shift, mlp_ratio=2.0)
    _randomize(block, seed=2, std=0.5)
    block.requires_grad_(False)
    x = torch.randn(2, *size, 8)
    hp, wp = math.ceil(size[0] / 5) * 5, math.ceil(size[1] / 5) * 5
    mask = shift_window_mask(hp, wp, 5, 2)
    layout = window_layout(size[0], size[1], 5, shift)
    torch.testing.assert_close(block(x, layout, mask), _naive_block(block, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", SIZES)
def test_swin_shapes_any_size(size: tuple[int, int]) -> None:
    model = SwinBackbone(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=7)
    outputs = model(torch.randn(1, 3, *size))
    assert model.out_channels == (32, 64, 128)
    for out, channels, stride in zip(outputs, model.out_channels, model.strides):
        assert out.shape == (1, channels, math.ceil(size[0] / stride), math.ceil(size[1] / stride))
        assert torch.isfinite(out).all()


def test_swin_batch_items_are_independent_and_masks_cached() -> None:
    model = SwinBackbone(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=7)
    _randomize(model, seed=3, std=0.2)
    x = torch.randn(2, 3, 70, 90)
    batched = model(x)
    single = model(x[1:])
    for a, b in zip(batched, single):
        torch.testing.assert_close(a[1:], b, rtol=1e-4, atol=1e-5)
    assert len(model.layers[0]._cache) == 1


def test_swin_b_dimensions() -> None:
    model = SwinBackbone()
    assert model.out_channels == (256, 512, 1024)
    names = model.state_dict()
    assert "layers.2.blocks.17.attn.relative_position_bias_table" in names
    assert names["layers.3.blocks.0.attn.relative_position_bias_table"].shape == (169, 32)
    assert "layers.3.downsample.reduction.weight" not in names


# ------------------------------------------------------------------------------------------------ FPN


def _reference_fpn(fpn: FPN, c3: torch.Tensor, c4: torch.Tensor, c5: torch.Tensor) -> list[torch.Tensor]:
    def conv(module: torch.nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, module.weight, module.bias, stride=module.stride, padding=module.padding)

    m5 = conv(fpn.lateral_convs[2], c5)
    m4 = conv(fpn.lateral_convs[1], c4) + F.interpolate(m5, scale_factor=2, mode="nearest")
    m3 = conv(fpn.lateral_convs[0], c3) + F.interpolate(m4, scale_factor=2, mode="nearest")
    p3, p4, p5 = conv(fpn.output_convs[0], m3), conv(fpn.output_convs[1], m4), conv(fpn.output_convs[2], m5)
    p6 = conv(fpn.p6, p5)
    return [p3, p4, p5, p6, conv(fpn.p7, F.relu(p6))]


def test_fpn_matches_detectron2_graph_on_padded_sizes() -> None:
    fpn = FPN(in_channels=(8, 16, 24), out_channels=32)
    _randomize(fpn, seed=4, std=0.2)
    c3, c4, c5 = torch.randn(1, 8, 12, 16), torch.randn(1, 16, 6, 8), torch.randn(1, 24, 3, 4)
    outputs = fpn([c3, c4, c5])
    expected = _reference_fpn(fpn, c3, c4, c5)
    assert [tuple(o.shape[-2:]) for o in outputs] == [(12, 16), (6, 8), (3, 4), (2, 2), (1, 1)]
    for got, want in zip(outputs, expected):
        assert torch.equal(got, want)


def test_fpn_odd_sizes_resize_to_lateral() -> None:
    fpn = FPN(in_channels=(8, 16, 24), out_channels=32)
    c3, c4, c5 = torch.randn(1, 8, 13, 7), torch.randn(1, 16, 7, 4), torch.randn(1, 24, 4, 2)
    outputs = fpn([c3, c4, c5])
    assert [tuple(o.shape[-2:]) for o in outputs] == [(13, 7), (7, 4), (4, 2), (2, 1), (1, 1)]
    x = torch.arange(12.0).view(1, 1, 3, 4)
    up = upsample_to(x, (5, 7))
    rows, cols = [math.floor(i * 3 / 5) for i in range(5)], [math.floor(j * 4 / 7) for j in range(7)]
    assert torch.equal(up[0, 0], x[0, 0][rows][:, cols])
    assert torch.equal(upsample_to(x, (6, 8)), x.repeat_interleave(2, 2).repeat_interleave(2, 3))


@pytest.mark.parametrize("bad", [{"in_channels": (8, 16)}, {"in_channels": (8, 16, 0)},
                                 {"in_channels": (8, 16, 24), "out_channels": 0}])
def test_fpn_rejects_bad_arguments(bad: dict) -> None:
    with pytest.raises(ValueError):
        FPN(**bad)


def test_backbones_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="layers"):
        ResNetBackbone(layers=(3, 4, 6))
    with pytest.raises(ValueError, match="divisible"):
        SwinBackbone(embed_dim=10, depths=(2, 2, 2, 2), num_heads=(3, 3, 3, 3))
