"""Preprocessing: detectron2 ResizeShortestEdge size rule, PIL bilinear, normalisation, zero padding to 32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from audiodetic.detector.config import DetectorConfig
from audiodetic.detector.preprocess import check_image, preprocess_image, resized_shape

CONFIG = DetectorConfig.r50()
MEAN = torch.tensor(CONFIG.pixel_mean).view(3, 1, 1)
STD = torch.tensor(CONFIG.pixel_std).view(3, 1, 1)


@pytest.mark.parametrize(
    ("size", "limits", "expected"),
    [
        ((480, 640), (800, 1333), (800, 1067)),  # the reference example
        ((640, 480), (800, 1333), (1067, 800)),
        ((2000, 500), (800, 1333), (1333, 333)),  # capped by max_size: 3200x800 * 1333/3200
        ((500, 2000), (800, 1333), (333, 1333)),
        ((800, 800), (800, 1333), (800, 800)),
        ((480, 640), (640, 640), (480, 640)),  # real-time setting: long side capped at 640
        ((100, 101), (800, 1333), (800, 808)),  # 808.0 -> int(808.5) = 808
        ((3, 5), (800, 1333), (800, 1333)),  # 1333.33 -> int(1333.83) = 1333
    ],
)
def test_resized_shape_follows_resize_shortest_edge(size, limits, expected):
    assert resized_shape(*size, *limits) == expected


def test_resized_shape_rounds_half_up():
    # scale = 800/3 -> new_w = 800/3*4 = 1066.67 -> int(1067.17) = 1067
    assert resized_shape(3, 4, 800, 1333) == (800, 1067)


def _reference(image: np.ndarray, h: int, w: int) -> torch.Tensor:
    resized = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR)).astype(np.float32)
    return (torch.from_numpy(resized).permute(2, 0, 1) - MEAN) / STD


def test_preprocess_resizes_with_pil_normalises_and_pads_with_zeros():
    image = np.random.default_rng(1).integers(0, 256, (61, 83, 3), dtype=np.uint8)
    out = preprocess_image(image, min_size=100, max_size=1000, pixel_mean=MEAN, pixel_std=STD, size_divisibility=32)
    h, w = resized_shape(61, 83, 100, 1000)
    assert out.resized_size == (h, w) == (100, 136)
    assert out.original_size == (61, 83)
    assert out.tensor.shape == (1, 3, 128, 160)  # padded to multiples of 32
    assert out.tensor.dtype == torch.float32
    torch.testing.assert_close(out.tensor[0, :, :h, :w], _reference(image, h, w), rtol=0, atol=0)
    assert torch.count_nonzero(out.tensor[0, :, h:, :]) == 0
    assert torch.count_nonzero(out.tensor[0, :, :, w:]) == 0
    assert out.scale == pytest.approx((83 / 136, 61 / 100))


def test_preprocess_downscale_is_antialiased_like_pil():
    # a one-pixel checkerboard averages to grey under PIL's antialiased bilinear (plain interpolation would not)
    board = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    image = np.repeat(board[:, :, None], 3, axis=2)
    out = preprocess_image(image, min_size=16, max_size=1000, pixel_mean=MEAN, pixel_std=STD, size_divisibility=1)
    pixels = out.tensor[0] * STD + MEAN
    assert out.tensor.shape == (1, 3, 16, 16)
    assert torch.all((pixels - 127.5).abs() < 2)


def test_preprocess_keeps_rgb_channel_order():
    image = np.zeros((32, 32, 3), np.uint8)
    image[..., 0] = 255  # pure red
    out = preprocess_image(image, min_size=32, max_size=32, pixel_mean=MEAN, pixel_std=STD)
    expected = (torch.tensor([255.0, 0.0, 0.0]) - MEAN.view(3)) / STD.view(3)
    torch.testing.assert_close(out.tensor[0, :, 5, 5], expected)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((10, 10), np.uint8), "shape"),
        (np.zeros((10, 10, 4), np.uint8), "shape"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        ([[0, 0, 0]], "numpy"),
    ],
)
def test_bad_images_raise_value_error(image, message):
    with pytest.raises(ValueError, match=message):
        check_image(image)


def test_non_contiguous_bgr_view_is_accepted():
    image = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    flipped = image[:, :, ::-1]
    out = preprocess_image(flipped, min_size=20, max_size=100, pixel_mean=MEAN, pixel_std=STD)
    again = preprocess_image(np.ascontiguousarray(flipped), min_size=20, max_size=100, pixel_mean=MEAN, pixel_std=STD)
    assert torch.equal(out.tensor, again.tensor)
